//! `kubectl ivschat send-message ROOM TEXT`: send one chat message the way a chat client does, and say what the
//! room did with it. The plugin mints a SEND_MESSAGE token for a user of its own (or `--user-id`), connects to
//! the room's messaging endpoint (the rule of `tail`), sends SEND_MESSAGE with a RequestId, and waits for the
//! entity that answers it: the MESSAGE as delivered (printed as `tail` prints it, so a message review handler's
//! rewrite is what shows) or an ERROR (the code and message on stderr, exit 5). It is how a message review
//! handler's work is seen from the command line.
//!
//! The options and their checks come first (pure), then the answer's reading ([`answer_to`]), then the I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::Access;
use super::error::PluginError;
use super::tail::{self, Entry, LineFormat, Received, Refusal};

/// `send-message --help`.
pub const LONG_ABOUT: &str = "Send one chat message to the room, as a chat client does, and print what was delivered: the message as everyone in the room received it (a readable line as `tail` prints it, or JSON with -o json), so the rewrite of a message review handler is what shows.

The message is sent by a user of its own (kubectl-ivschat-send-<random> unless --user-id is given) with a chat token that may only send. --attribute sets the message's attributes; --sender-attribute the sender's (the token's, which a review handler sees as Sender.Attributes).

Exit codes: 0 delivered; 5 not delivered: the room answered with an ERROR (406: refused in message review, with the handler's reason; 400: invalid, e.g. longer than the room's maximumMessageLength; 429: over the room's message rate), printed on stderr; 3 the room does not exist; 1 no answer within --timeout, or the endpoint could not be reached; 2 invalid arguments.";

/// The user id prefix of the command's own chat user.
pub const USER_ID_PREFIX: &str = "kubectl-ivschat-send-";
const CLOSE_REASON: &str = "kubectl ivschat send-message done";

#[derive(Debug, Args)]
pub struct SendMessageArgs {
    /// ChatRoom name (or use --arn, and give only TEXT).
    pub room: Option<String>,

    /// The message's content (1-500 characters; the room's maximumMessageLength may allow fewer).
    pub text: Option<String>,

    /// Message attribute `key=value`; repeat for several (1 KiB in total).
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    pub attributes: Vec<String>,

    /// The sender's attribute `key=value` (its chat token's: a review handler's Sender.Attributes); repeat for
    /// several (1 KiB in total).
    #[arg(long = "sender-attribute", value_name = "KEY=VALUE")]
    pub sender_attributes: Vec<String>,

    /// The sending user (1-128 characters; default kubectl-ivschat-send-<random>).
    #[arg(long)]
    pub user_id: Option<String>,

    /// How long to wait for the room's answer (e.g. 10s).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,

    /// The messaging WebSocket endpoint, ws:// or wss:// (default: as for `tail`).
    #[arg(long, value_name = "URL")]
    pub messaging_endpoint: Option<String>,
}

/// `send-message`'s options, checked (the text and the attribute lists in [`super::args`], with the other
/// commands' arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOptions {
    pub text: String,
    pub attributes: BTreeMap<String, String>,
    pub sender_attributes: BTreeMap<String, String>,
    pub user_id: Option<String>,
    pub timeout: Duration,
    pub messaging_endpoint: Option<String>,
    pub format: LineFormat,
}

/// Checks what only `send-message` has: the user, the timeout, the endpoint, the output format (the room,
/// the text and the attribute lists are checked with the other commands', in [`super::args`]).
pub fn check(
    args: &SendMessageArgs,
    format: super::cli::OutputFormat,
    problems: &mut Vec<String>,
) -> (Duration, LineFormat) {
    tail::check_own_user_id(args.user_id.as_deref(), problems);
    let timeout =
        ivschat_api::duration::parse_positive_duration(&args.timeout).unwrap_or_else(|error| {
            problems.push(format!("--timeout {:?}: {error}", args.timeout));
            Duration::ZERO
        });
    if let Some(url) = &args.messaging_endpoint
        && !(url.starts_with("ws://") || url.starts_with("wss://"))
    {
        problems.push(format!(
            "--messaging-endpoint {url:?} must be a ws:// or wss:// URL"
        ));
    }
    let format = match format {
        super::cli::OutputFormat::Table => LineFormat::Readable,
        super::cli::OutputFormat::Json => LineFormat::Json,
        super::cli::OutputFormat::Yaml => {
            problems.push(
                "-o yaml is not offered: send-message prints a readable line (-o table) or a JSON line (-o json), as tail does"
                    .to_owned(),
            );
            LineFormat::Json
        }
    };
    (timeout, format)
}

/// What answered the request: the delivered message, or the room's ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Delivered(Entry),
    Refused { code: i64, message: String },
}

/// Reads one frame: the answer to `request_id`, or `None` for anything else (other users' traffic, control
/// entities without a RequestId, frames that are no entity).
pub fn answer_to(text: &str, request_id: &str) -> Option<Answer> {
    let wire: Value = serde_json::from_str(text).ok()?;
    if wire.get("RequestId").and_then(Value::as_str) != Some(request_id) {
        return None;
    }
    match tail::parse(text).ok()? {
        Received::Entry(entry @ Entry::Message { .. }) => Some(Answer::Delivered(entry)),
        Received::Entry(_) => None,
        Received::Error { code, message } => Some(Answer::Refused { code, message }),
    }
}

/// The name of an ERROR code of the Messaging API (ivschat-messaging.md), for the sentence on stderr.
pub fn code_name(code: i64) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        406 => "Not Acceptable (refused in message review)",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "error",
    }
}

/// Sends the message to room `arn` and returns the line to print; an ERROR answer is the error.
pub(super) async fn run(
    arn: &str,
    aws: &Access,
    options: &SendOptions,
) -> Result<String, PluginError> {
    let user_id = tail::own_user_id(options.user_id.as_deref(), USER_ID_PREFIX);
    let output = aws
        .client
        .create_chat_token()
        .room_identifier(arn)
        .user_id(&user_id)
        .capabilities(aws_sdk_ivschat::types::ChatTokenCapability::SendMessage)
        .set_attributes(
            (!options.sender_attributes.is_empty())
                .then(|| options.sender_attributes.clone().into_iter().collect()),
        )
        .send()
        .await
        .map_err(|error| aws.error("CreateChatToken", arn, &error))?;
    let url = tail::messaging_endpoint(
        options.messaging_endpoint.as_deref(),
        aws.endpoint_url.as_deref(),
        &aws.region,
    );
    let mut socket = tail::handshake(&url, output.token().unwrap_or_default(), arn)
        .await
        .map_err(|refusal| match refusal {
            Refusal::RoomGone(why) => PluginError::RoomGone(why),
            Refusal::Other(why) => PluginError::Messaging(why),
        })?;
    let request_id = format!("kubectl-ivschat-{}", rand::random::<u64>());
    let request = json!({
        "Action": "SEND_MESSAGE",
        "RequestId": request_id,
        "Content": options.text,
        "Attributes": options.attributes,
    });
    socket
        .send(Message::text(request.to_string()))
        .await
        .map_err(|error| PluginError::Messaging(format!("cannot send to {url}: {error}")))?;
    let deadline = Instant::now() + options.timeout;
    let answer = loop {
        let frame = match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => {
                tail::close_normally(&mut socket, CLOSE_REASON).await;
                return Err(PluginError::Messaging(format!(
                    "no answer from {url} within {:?}: the message may or may not have been delivered",
                    options.timeout
                )));
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(error))) => {
                return Err(PluginError::Messaging(format!(
                    "the connection to {url} failed before the answer: {error}"
                )));
            }
            Ok(None) => {
                return Err(PluginError::Messaging(format!(
                    "{url} closed the connection before it answered"
                )));
            }
        };
        if let Some(answer) = answer_to(frame.as_str(), &request_id) {
            break answer;
        }
    };
    tail::close_normally(&mut socket, CLOSE_REASON).await;
    match answer {
        Answer::Delivered(entry) => Ok(format!("{}\n", tail::render(&entry, options.format))),
        Answer::Refused { code: 404, message } => Err(PluginError::RoomGone(format!(
            "message not delivered: 404 Not Found: {message}"
        ))),
        Answer::Refused { code, message } => Err(PluginError::NotDelivered(format!(
            "message not delivered: {code} {}: {message}",
            code_name(code)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_the_entity_with_the_request_id() {
        let message = r#"{"Type":"MESSAGE","Id":"AYk6xKitV4On","RequestId":"r1","Content":"HI [reviewed]",
            "Attributes":{"reviewed":"yes"},"SendTime":"2022-10-11T12:43:21.113Z",
            "Sender":{"UserId":"ada","Attributes":{}}}"#;
        let Some(Answer::Delivered(Entry::Message {
            content,
            attributes,
            ..
        })) = answer_to(message, "r1")
        else {
            panic!("a MESSAGE answering r1 is the delivery");
        };
        assert_eq!(content, "HI [reviewed]");
        assert_eq!(attributes.get("reviewed").map(String::as_str), Some("yes"));
        assert_eq!(answer_to(message, "r2"), None, "another request's answer");
        let other_user = message.replace(r#""RequestId":"r1","#, "");
        assert_eq!(
            answer_to(&other_user, "r1"),
            None,
            "no RequestId: someone else's"
        );
        assert_eq!(
            answer_to(
                r#"{"Type":"ERROR","Id":"x","RequestId":"r1","ErrorCode":406,"ErrorMessage":"No links"}"#,
                "r1"
            ),
            Some(Answer::Refused {
                code: 406,
                message: "No links".into()
            })
        );
        assert_eq!(answer_to("not json", "r1"), None);
        assert_eq!(code_name(406), "Not Acceptable (refused in message review)");
    }

    fn args(user_id: Option<&str>, timeout: &str) -> SendMessageArgs {
        SendMessageArgs {
            room: None,
            text: None,
            attributes: vec![],
            sender_attributes: vec![],
            user_id: user_id.map(str::to_owned),
            timeout: timeout.to_owned(),
            messaging_endpoint: None,
        }
    }

    #[test]
    fn users_timeouts_and_formats_are_checked() {
        use super::super::cli::OutputFormat;
        let mut problems = Vec::new();
        let (timeout, format) = check(&args(None, "2s"), OutputFormat::Json, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (timeout, format),
            (Duration::from_secs(2), LineFormat::Json)
        );
        for (user, timeout, expected) in [
            (Some(""), "10s", "--user-id"),
            (None, "0s", "--timeout"),
            (None, "soon", "--timeout"),
        ] {
            let mut problems = Vec::new();
            check(&args(user, timeout), OutputFormat::Table, &mut problems);
            assert!(
                problems.iter().any(|problem| problem.contains(expected)),
                "{user:?} {timeout}: {problems:?}"
            );
        }
        let mut problems = Vec::new();
        check(&args(None, "1s"), OutputFormat::Yaml, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
