//! `kubectl ivschat tail ROOM`: watch a room live. The plugin mints a view-only chat token (no capabilities)
//! for a user of its own, connects to the room's messaging endpoint with it (the token as the WebSocket
//! subprotocol, as every IVS Chat client does; see ivschat-messaging.md) and prints each MESSAGE and EVENT it
//! receives as one line on stdout: readable by default, JSON with `-o json`. Everything about the connection
//! itself (connected, session ended, reconnecting, stopped) goes to stderr, so stdout is the room's traffic
//! only and can be piped.
//!
//! The pure parts come first: the options and their checks, where the messaging endpoint is, the received
//! frames read into [`Received`], the two line formats and the reconnection rule ([`after`]). The I/O loop
//! ([`run`]) is last.
//!
//! Choices:
//! - **Endpoint**: `--messaging-endpoint`; else derived from the configured IVS Chat endpoint when it is not
//!   AWS's own (`--aws-endpoint-url`, the ChatAccount's endpointUrl, AWS_ENDPOINT_URL_IVSCHAT,
//!   AWS_ENDPOINT_URL): `http://HOST:PORT/…` → `ws://HOST:PORT`, `https://` → `wss://`, because the emulator
//!   serves the API and the messaging socket on one listener, at its root; else AWS's
//!   `wss://edge.ivschat.REGION.amazonaws.com` in the room's region.
//! - **No history**: IVS Chat keeps none, so there is no `--since`; the tail starts with what is sent after it
//!   connects, and what is sent while it reconnects is not seen (stderr says when that happens).
//! - **Reconnecting**: a session that ends (the server's ERROR 401, then its close) is renewed at once with a
//!   new token; a dropped socket, another close or a failed connection is retried with a fresh token after an
//!   exponential backoff (0.5 s doubling to 30 s, reset after a connection that lasted). The first connection
//!   must work (a wrong room or credentials fail at once with the usual exit codes); after it, only a deleted
//!   room (exit 3) or a moderator disconnecting the tail's own user (exit 1) end the tail.
//! - **Stopping**: Ctrl-C (SIGINT) or SIGTERM send a close frame (1000), wait briefly for the server's, and exit
//!   0.
//! - **JSON lines** are this plugin's own schema (`type`: `message`, `event`, `deletion`, `disconnect`), with
//!   camelCase fields and always-present `attributes`, not the wire entities: `aws:DELETE_MESSAGE` and
//!   `aws:DISCONNECT_USER` become deletions and disconnects, as the official clients present them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use clap::Args;
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use ivschat_api::limits::{SESSION_DURATION_MINUTES, USER_ID_CHARS};

use super::cli::{GlobalArgs, OutputFormat};
use super::error::{PluginError, exit_code};
use super::{Access, time_text};

/// `tail --help`: what it prints, where, and what it cannot do.
pub const LONG_ABOUT: &str = "Print the room's messages, events, deletions and disconnects as they arrive, one line each: readable by default, JSON lines with -o json. Message ids are the ones `kubectl ivschat delete-message --id` takes.

There is no history: IVS Chat keeps none, so the tail shows only what is sent after it connects (no --since).

The tail connects as a view-only user of its own (a chat token without capabilities, user kubectl-ivschat-tail-<random> unless --user-id is given). When the session ends or the connection drops it reconnects with a fresh token (messages sent meanwhile are not seen), saying so on stderr. Ctrl-C stops it (exit 0).";

/// The user id prefix of the tail's own chat user (a random suffix follows), recognisable in a room's
/// connections and in the CloudTrail of CreateChatToken.
pub const USER_ID_PREFIX: &str = "kubectl-ivschat-tail-";
/// The close frame the tail sends when it is stopped.
const STOP_REASON: &str = "kubectl ivschat tail stopped";
/// How long the tail waits for the server's answer to its close frame when it is stopped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long a WebSocket handshake may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First and last retry delays after a failure.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long was a working one: the backoff starts again from its first delay.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct TailArgs {
    /// ChatRoom name (or use --arn).
    pub room: Option<String>,

    /// The tail's own chat user (1-128 characters; default kubectl-ivschat-tail-<random>). It has no
    /// capabilities: it only receives.
    #[arg(long)]
    pub user_id: Option<String>,

    /// How long each chat session lasts, in minutes (1-180; AWS default 60); the tail reconnects with a new
    /// token when it ends.
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true)]
    pub session_duration: Option<i64>,

    /// The messaging WebSocket endpoint, ws:// or wss:// (default: derived from --aws-endpoint-url or the
    /// ChatAccount's endpointUrl when one is set, http://HOST:PORT giving ws://HOST:PORT as the emulator
    /// serves both on one listener; else wss://edge.ivschat.REGION.amazonaws.com).
    #[arg(long, value_name = "URL")]
    pub messaging_endpoint: Option<String>,
}

/// `tail`'s options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailOptions {
    /// `None`: a generated [`USER_ID_PREFIX`] user.
    pub user_id: Option<String>,
    pub session_duration_minutes: Option<i32>,
    pub messaging_endpoint: Option<String>,
    pub format: LineFormat,
}

/// How each received entity is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// `-o table` (the default): one readable line.
    Readable,
    /// `-o json`: one JSON object a line.
    Json,
}

/// The options of `tail`, and every problem with them (the room is checked with the other commands').
pub fn check(global: &GlobalArgs, args: &TailArgs) -> (TailOptions, Vec<String>) {
    let mut problems = Vec::new();
    let format = match global.output {
        OutputFormat::Table => LineFormat::Readable,
        OutputFormat::Json => LineFormat::Json,
        OutputFormat::Yaml => {
            problems.push(
                "-o yaml does not stream: tail prints readable lines (-o table) or JSON lines (-o json)"
                    .to_owned(),
            );
            LineFormat::Json
        }
    };
    check_own_user_id(args.user_id.as_deref(), &mut problems);
    let session_duration_minutes = match args.session_duration {
        None => None,
        Some(minutes) if SESSION_DURATION_MINUTES.contains(&minutes) => i32::try_from(minutes).ok(),
        Some(minutes) => {
            problems.push(format!(
                "--session-duration {minutes} is out of range: a session lasts {} to {} minutes",
                SESSION_DURATION_MINUTES.start(),
                SESSION_DURATION_MINUTES.end()
            ));
            None
        }
    };
    if let Some(url) = &args.messaging_endpoint
        && !(url.starts_with("ws://") || url.starts_with("wss://"))
    {
        problems.push(format!(
            "--messaging-endpoint {url:?} must be a ws:// or wss:// URL"
        ));
    }
    let options = TailOptions {
        user_id: args.user_id.clone(),
        session_duration_minutes,
        messaging_endpoint: args.messaging_endpoint.clone(),
        format,
    };
    (options, problems)
}

/// The problem with a `--user-id` for the command's own chat user, if any (shared with `send-message`).
pub(super) fn check_own_user_id(user_id: Option<&str>, problems: &mut Vec<String>) {
    if let Some(user_id) = user_id {
        let chars = user_id.chars().count();
        if !USER_ID_CHARS.contains(&chars) {
            problems.push(format!(
                "--user-id must be {} to {} characters (it is {chars})",
                USER_ID_CHARS.start(),
                USER_ID_CHARS.end()
            ));
        }
    }
}

// ---- where to connect ---------------------------------------------------------------------------------------

/// The messaging endpoint (see the module docs): the flag, else the configured IVS Chat endpoint's host and
/// port with the matching WebSocket scheme when it is not AWS's own, else AWS's edge endpoint of `region`.
pub fn messaging_endpoint(flag: Option<&str>, endpoint_url: Option<&str>, region: &str) -> String {
    if let Some(url) = flag {
        return url.to_owned();
    }
    let derived = endpoint_url.and_then(|url| {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
            ("ws", rest)
        } else {
            ("wss", url.strip_prefix("https://")?)
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let host_name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name);
        let aws = ["amazonaws.com", "amazonaws.com.cn", "api.aws"]
            .iter()
            .any(|domain| host_name.ends_with(&format!(".{domain}")));
        (!host.is_empty() && !aws).then(|| format!("{scheme}://{host}"))
    });
    derived.unwrap_or_else(|| format!("wss://edge.ivschat.{region}.amazonaws.com"))
}

/// The tail's chat user: the given one, or [`USER_ID_PREFIX`] and 8 random letters and digits.
fn tail_user_id(given: Option<&str>) -> String {
    own_user_id(given, USER_ID_PREFIX)
}

/// The given user, or `prefix` and 8 random letters and digits (shared with `send-message`).
pub(super) fn own_user_id(given: Option<&str>, prefix: &str) -> String {
    given.map_or_else(
        || {
            const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            let suffix: String = (0..8)
                .map(|_| char::from(CHARS[rand::random_range(0..CHARS.len())]))
                .collect();
            format!("{prefix}{suffix}")
        },
        str::to_owned,
    )
}

// ---- what arrives -------------------------------------------------------------------------------------------

/// A received entity the tail prints: the room's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Entry {
    /// A chat message (its `id` is what `delete-message --id` takes).
    #[serde(rename_all = "camelCase")]
    Message {
        id: String,
        time: String,
        sender: Sender,
        content: String,
        attributes: BTreeMap<String, String>,
    },
    /// An application event (SendEvent), or a system event other than the two below.
    #[serde(rename_all = "camelCase")]
    Event {
        id: String,
        time: String,
        name: String,
        attributes: BTreeMap<String, String>,
    },
    /// `aws:DELETE_MESSAGE`: clients are told to remove message `message_id`.
    #[serde(rename_all = "camelCase")]
    Deletion {
        id: String,
        time: String,
        message_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `aws:DISCONNECT_USER`: every connection of `user_id` is being closed.
    #[serde(rename_all = "camelCase")]
    Disconnect {
        id: String,
        time: String,
        user_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sender {
    pub user_id: String,
    /// The attributes in the sender's chat token.
    pub attributes: BTreeMap<String, String>,
}

/// One text frame from the server, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Entry(Entry),
    /// An ERROR entity. The tail sends no requests, so these are the server's own: 401 when the session
    /// ends, 404 when the room is deleted.
    Error {
        code: i64,
        message: String,
    },
}

/// The wire form of the server's entities (ivschat-messaging.md §3), every field optional so that each
/// entity type can say which it needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireEntity {
    #[serde(rename = "Type")]
    kind: String,
    id: Option<String>,
    send_time: Option<String>,
    content: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
    sender: Option<WireSender>,
    event_name: Option<String>,
    error_code: Option<i64>,
    error_message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireSender {
    user_id: String,
    attributes: Option<BTreeMap<String, String>>,
}

/// Reads one text frame; `Err` says what is wrong with it (the tail then warns and goes on).
pub fn parse(text: &str) -> Result<Received, String> {
    let wire: WireEntity =
        serde_json::from_str(text).map_err(|error| format!("not an IVS Chat entity: {error}"))?;
    let missing = |field: &str| format!("a {} without {field}", wire.kind);
    if wire.kind == "ERROR" {
        return Ok(Received::Error {
            code: wire.error_code.ok_or_else(|| missing("ErrorCode"))?,
            message: wire.error_message.unwrap_or_default(),
        });
    }
    let id = wire.id.clone().ok_or_else(|| missing("Id"))?;
    let time = wire.send_time.clone().ok_or_else(|| missing("SendTime"))?;
    let mut attributes = wire.attributes.clone().unwrap_or_default();
    let entry = match wire.kind.as_str() {
        "MESSAGE" => {
            let sender = wire.sender.ok_or_else(|| missing("Sender"))?;
            Entry::Message {
                id,
                time,
                sender: Sender {
                    user_id: sender.user_id,
                    attributes: sender.attributes.unwrap_or_default(),
                },
                content: wire.content.ok_or_else(|| missing("Content"))?,
                attributes,
            }
        }
        "EVENT" => {
            let name = wire
                .event_name
                .clone()
                .ok_or_else(|| missing("EventName"))?;
            match name.as_str() {
                "aws:DELETE_MESSAGE" => Entry::Deletion {
                    id,
                    time,
                    // `MessageId` is current, `MessageID` the deprecated spelling some servers still send.
                    message_id: attributes
                        .remove("MessageId")
                        .or_else(|| attributes.remove("MessageID"))
                        .ok_or_else(|| missing("Attributes.MessageId"))?,
                    reason: attributes.remove("Reason"),
                },
                "aws:DISCONNECT_USER" => Entry::Disconnect {
                    id,
                    time,
                    user_id: attributes
                        .remove("UserId")
                        .ok_or_else(|| missing("Attributes.UserId"))?,
                    reason: attributes.remove("Reason"),
                },
                _ => Entry::Event {
                    id,
                    time,
                    name,
                    attributes,
                },
            }
        }
        other => return Err(format!("an entity of unknown Type {other:?}")),
    };
    Ok(Received::Entry(entry))
}

// ---- how it is printed --------------------------------------------------------------------------------------

/// One output line (without its newline).
pub fn render(entry: &Entry, format: LineFormat) -> String {
    match format {
        // Serialising these plain structs cannot fail; the empty object keeps the line count honest if it did.
        LineFormat::Json => serde_json::to_string(entry).unwrap_or_else(|_| "{}".to_owned()),
        LineFormat::Readable => readable(entry),
    }
}

/// `TIME  TYPE  what  id=ID  attributes`: the time as the server sent it, a fixed-width type, the sender and
/// content (or event name, deleted message, disconnected user), the entity id, then `key=value` attributes.
fn readable(entry: &Entry) -> String {
    let (time, kind, what, id, attributes) = match entry {
        Entry::Message {
            id,
            time,
            sender,
            content,
            attributes,
        } => {
            let mut shown = pairs(attributes, "");
            let sender_attributes = pairs(&sender.attributes, "sender.");
            if !sender_attributes.is_empty() {
                shown.push_str(&sender_attributes);
            }
            (
                time,
                "MESSAGE",
                format!("{}: {}", sender.user_id, quoted(content)),
                id,
                shown,
            )
        }
        Entry::Event {
            id,
            time,
            name,
            attributes,
        } => (time, "EVENT", name.clone(), id, pairs(attributes, "")),
        Entry::Deletion {
            id,
            time,
            message_id,
            reason,
        } => (
            time,
            "DELETION",
            format!("message {message_id}{}", because(reason.as_deref())),
            id,
            String::new(),
        ),
        Entry::Disconnect {
            id,
            time,
            user_id,
            reason,
        } => (
            time,
            "DISCONNECT",
            format!("user {user_id}{}", because(reason.as_deref())),
            id,
            String::new(),
        ),
    };
    format!("{time}  {kind:<10}  {what}  id={id}{attributes}")
}

fn because(reason: Option<&str>) -> String {
    reason.map_or_else(String::new, |reason| format!(" ({})", quoted(reason)))
}

/// `  key=value` for each attribute (keys sorted), values quoted when they would not read as one word.
fn pairs(attributes: &BTreeMap<String, String>, prefix: &str) -> String {
    attributes
        .iter()
        .map(|(key, value)| {
            let value = if !value.is_empty()
                && value
                    .chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && c != '"')
            {
                value.clone()
            } else {
                quoted(value)
            };
            format!("  {prefix}{key}={value}")
        })
        .collect()
}

/// Text in double quotes with quotes, backslashes and control characters escaped, so a line stays one line.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- when to reconnect --------------------------------------------------------------------------------------

/// How one connection (or attempt) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Ctrl-C or SIGTERM.
    Stopped,
    /// The server said the session ended (ERROR 401), then closed or dropped the socket.
    SessionEnded,
    /// The room is gone (ERROR 404, or a handshake refused with 404).
    RoomGone(String),
    /// A moderator disconnected the tail's own user.
    Kicked(Option<String>),
    /// Anything else: a close frame, a dropped socket, a failed connection or token. `lasted`: how long the
    /// connection was open (zero if it never opened).
    Lost { why: String, lasted: Duration },
}

/// What the tail does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Connect again with a fresh token after this delay.
    Reconnect(Duration),
    /// Exit: successfully (`None`) or with this error.
    Exit(Option<String>),
}

/// The reconnection rule (module docs): `failures` counts the attempts that failed in a row before this one
/// and is updated for the next.
pub fn after(ended: &Ended, failures: &mut u32) -> Next {
    match ended {
        Ended::Stopped => Next::Exit(None),
        Ended::RoomGone(why) => Next::Exit(Some(why.clone())),
        Ended::Kicked(reason) => Next::Exit(Some(format!(
            "a moderator disconnected the tail's user{}",
            because(reason.as_deref())
        ))),
        Ended::SessionEnded => {
            *failures = 0;
            Next::Reconnect(Duration::ZERO)
        }
        Ended::Lost { lasted, .. } => {
            if *lasted >= STABLE_CONNECTION {
                *failures = 0;
            }
            *failures = failures.saturating_add(1);
            Next::Reconnect(backoff(*failures))
        }
    }
}

/// The delay before retry number `failures` (1 = the first): 0.5 s, doubling, at most 30 s.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

// ---- the loop -----------------------------------------------------------------------------------------------

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Tails the room `arn` until stopped (Ok) or ended for good (Err). The first token and connection must work.
pub(super) async fn run(arn: &str, aws: &Access, options: &TailOptions) -> Result<(), PluginError> {
    let user_id = tail_user_id(options.user_id.as_deref());
    let url = messaging_endpoint(
        options.messaging_endpoint.as_deref(),
        aws.endpoint_url.as_deref(),
        &aws.region,
    );
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut failures = 0u32;
    let mut connected_once = false;
    loop {
        let ended = tokio::select! {
            biased;
            () = &mut stop => Ended::Stopped,
            ended = connect(arn, aws, options, &user_id, &url, connected_once) => match ended {
                Ok(socket) => {
                    connected_once = true;
                    receive(socket, &user_id, options.format, &mut stop).await?
                }
                Err(Fatal(error)) => return Err(error),
                Err(Retry(ended)) => ended,
            },
        };
        match after(&ended, &mut failures) {
            Next::Exit(None) => {
                note("stopped");
                return Ok(());
            }
            Next::Exit(Some(why)) => {
                return Err(match ended {
                    Ended::RoomGone(_) => PluginError::RoomGone(why),
                    _ => PluginError::Messaging(why),
                });
            }
            Next::Reconnect(delay) => {
                match &ended {
                    Ended::SessionEnded => {
                        note("the chat session ended: reconnecting with a new token")
                    }
                    Ended::Lost { why, .. } => note(&format!(
                        "{why}: reconnecting with a new token in {:.1} s",
                        delay.as_secs_f64()
                    )),
                    _ => {}
                }
                tokio::select! {
                    biased;
                    () = &mut stop => {
                        note("stopped");
                        return Ok(());
                    }
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Why an attempt to connect failed: for good, or worth retrying (how it ended).
enum Failure {
    Fatal(PluginError),
    Retry(Ended),
}
use Failure::{Fatal, Retry};

/// Mints a token and opens the socket with it. Before the first connection every failure is fatal (with the
/// error the other commands would give); afterwards only a missing room is.
async fn connect(
    arn: &str,
    aws: &Access,
    options: &TailOptions,
    user_id: &str,
    url: &str,
    connected_once: bool,
) -> Result<Socket, Failure> {
    let output = aws
        .client
        .create_chat_token()
        .room_identifier(arn)
        .user_id(user_id)
        .set_session_duration_in_minutes(options.session_duration_minutes)
        .send()
        .await
        .map_err(|error| {
            let error = aws.error("CreateChatToken", arn, &error);
            if !connected_once || error.exit_code() == exit_code::ROOM_NOT_FOUND {
                Fatal(error)
            } else {
                Retry(Ended::Lost {
                    why: format!("cannot get a chat token ({error})"),
                    lasted: Duration::ZERO,
                })
            }
        })?;
    let token = output.token().unwrap_or_default();
    let socket = match handshake(url, token, arn).await {
        Ok(socket) => socket,
        Err(Refusal::RoomGone(why)) => return Err(Fatal(PluginError::RoomGone(why))),
        Err(Refusal::Other(why)) if connected_once => {
            return Err(Retry(Ended::Lost {
                why,
                lasted: Duration::ZERO,
            }));
        }
        Err(Refusal::Other(why)) => return Err(Fatal(PluginError::Messaging(why))),
    };
    note(&format!(
        "{} room {arn} as {user_id} at {url} (session until {}); no history: only what is sent from now on",
        if connected_once {
            "reconnected to"
        } else {
            "connected to"
        },
        time_text(output.session_expiration_time())
    ));
    Ok(socket)
}

/// Why a messaging handshake failed: the endpoint does not know the room (HTTP 404), or anything else.
pub(super) enum Refusal {
    RoomGone(String),
    Other(String),
}

/// Opens the messaging socket of room `arn` at `url` with `token` as the subprotocol, as every IVS Chat
/// client does (shared with `send-message`).
pub(super) async fn handshake(url: &str, token: &str, arn: &str) -> Result<Socket, Refusal> {
    let mut request = url
        .into_client_request()
        .map_err(|error| Refusal::Other(format!("{url}: {error}")))?;
    let protocol = HeaderValue::from_str(token)
        .map_err(|_| Refusal::Other("the chat token is not a valid subprotocol".to_owned()))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Err(_) => Err(Refusal::Other(format!("connecting to {url} timed out"))),
        Ok(Err(WsError::Http(response))) if response.status().as_u16() == 404 => {
            Err(Refusal::RoomGone(format!(
                "{url} does not know room {arn} (HTTP 404): was it deleted?"
            )))
        }
        Ok(Err(WsError::Http(response))) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            Err(Refusal::Other(format!(
                "{url} refused the connection (HTTP {}) {body}",
                response.status().as_u16()
            )))
        }
        Ok(Err(error)) => Err(Refusal::Other(format!("cannot connect to {url}: {error}"))),
        Ok(Ok((socket, _response))) => Ok(socket),
    }
}

/// Prints what arrives on one connection until it ends, and says how it ended.
async fn receive(
    mut socket: Socket,
    user_id: &str,
    format: LineFormat,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<Ended, PluginError> {
    let opened = Instant::now();
    // Set by what the server said before it closed: a session end, a deleted room, our own user kicked.
    let mut verdict: Option<Ended> = None;
    // The server's close frame, once it came: reading on lets tungstenite send the reply, then the stream ends.
    let mut closed: Option<String> = None;
    loop {
        let frame = tokio::select! {
            biased;
            () = &mut *stop => {
                stop_connection(&mut socket).await;
                return Ok(Ended::Stopped);
            }
            frame = socket.next() => frame,
        };
        let ended = |why: String| {
            verdict.clone().unwrap_or(Ended::Lost {
                why: closed.clone().unwrap_or(why),
                lasted: opened.elapsed(),
            })
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                closed = Some(close.map_or_else(
                    || "the server closed the connection".to_owned(),
                    |frame| {
                        format!(
                            "the server closed the connection ({} {:?})",
                            u16::from(frame.code),
                            frame.reason.as_str()
                        )
                    },
                ));
                continue;
            }
            // Pings are answered by tungstenite; binary frames are no IVS Chat entity.
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Ok(ended(format!("the connection failed: {error}"))),
            None => return Ok(ended("the connection was dropped".to_owned())),
        };
        match parse(text.as_str()) {
            Ok(Received::Entry(entry)) => {
                if let Entry::Disconnect {
                    user_id: kicked,
                    reason,
                    ..
                } = &entry
                    && kicked == user_id
                {
                    verdict = Some(Ended::Kicked(reason.clone()));
                }
                print_line(&render(&entry, format))?;
            }
            Ok(Received::Error { code: 401, .. }) => verdict = Some(Ended::SessionEnded),
            Ok(Received::Error { code: 404, message }) => {
                verdict = Some(Ended::RoomGone(format!("the room is gone: {message}")));
            }
            Ok(Received::Error { code, message }) => {
                note(&format!("the server sent ERROR {code}: {message}"));
            }
            Err(why) => note(&format!("skipped a frame, {why}: {}", text.as_str())),
        }
    }
}

/// Sends the close frame and waits (briefly) for the server's, so the server sees a clean close.
async fn stop_connection(socket: &mut Socket) {
    close_normally(socket, STOP_REASON).await;
}

/// Sends a close frame 1000 with `reason` and waits (briefly) for the server's (shared with `send-message`).
pub(super) async fn close_normally(socket: &mut Socket, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

/// One line on stdout, flushed at once (the output is usually a terminal or a pipe someone reads live).
fn print_line(line: &str) -> Result<(), PluginError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|error| PluginError::Output(error.to_string()))
}

/// A note about the connection, on stderr.
fn note(text: &str) {
    eprintln!("tail: {text}");
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM; never if the handlers cannot be installed.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::cli::Cli;
    use clap::Parser;
    use serde_json::{Value, json};

    fn options(args: &[&str]) -> Result<TailOptions, Vec<String>> {
        let cli = Cli::try_parse_from(
            ["kubectl-ivschat", "tail", "lobby"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .expect("clap accepts the command line");
        let crate::plugin::cli::Command::Tail(tail) = &cli.command else {
            panic!("not tail");
        };
        let (options, problems) = check(&cli.global, tail);
        if problems.is_empty() {
            Ok(options)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(
            options(&["-o", "json", "--session-duration", "1", "--user-id", "me"]),
            Ok(TailOptions {
                user_id: Some("me".into()),
                session_duration_minutes: Some(1),
                messaging_endpoint: None,
                format: LineFormat::Json,
            })
        );
        assert_eq!(
            options(&[]).map(|options| options.format),
            Ok(LineFormat::Readable)
        );
        let problems = options(&[
            "-o",
            "yaml",
            "--session-duration",
            "181",
            "--user-id",
            "",
            "--messaging-endpoint",
            "http://x",
        ])
        .expect_err("invalid");
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("-o yaml does not stream"));
        assert!(problems[1].contains("--user-id must be 1 to 128"));
        assert!(problems[2].contains("1 to 180 minutes"));
        assert!(problems[3].contains("ws:// or wss://"));
    }

    #[test]
    fn the_help_says_there_is_no_history() {
        let mut command = <Cli as clap::CommandFactory>::command();
        let help = command
            .find_subcommand_mut("tail")
            .expect("tail")
            .render_long_help()
            .to_string();
        assert!(help.contains("There is no history"), "{help}");
        assert!(help.contains("no --since"), "{help}");
        assert!(help.contains("--messaging-endpoint"), "{help}");
    }

    #[test]
    fn the_endpoint_is_the_flag_then_a_non_aws_api_endpoint_then_the_edge() {
        assert_eq!(
            messaging_endpoint(
                Some("ws://flag:1"),
                Some("http://127.0.0.1:4510"),
                "eu-west-1"
            ),
            "ws://flag:1"
        );
        assert_eq!(
            messaging_endpoint(None, Some("http://127.0.0.1:4510"), "eu-west-1"),
            "ws://127.0.0.1:4510"
        );
        assert_eq!(
            messaging_endpoint(
                None,
                Some("https://chat.example.com:8443/api?x=1"),
                "eu-west-1"
            ),
            "wss://chat.example.com:8443"
        );
        assert_eq!(
            messaging_endpoint(
                None,
                Some("https://ivschat.us-east-1.amazonaws.com"),
                "eu-west-1"
            ),
            "wss://edge.ivschat.eu-west-1.amazonaws.com",
            "AWS's own API endpoint: the region's edge"
        );
        assert_eq!(
            messaging_endpoint(None, None, "us-west-2"),
            "wss://edge.ivschat.us-west-2.amazonaws.com"
        );
        assert_eq!(
            messaging_endpoint(None, Some("localhost:4510"), "us-west-2"),
            "wss://edge.ivschat.us-west-2.amazonaws.com",
            "not a URL the SDK would take either"
        );
    }

    #[test]
    fn generated_users_are_recognisable_and_distinct() {
        let one = tail_user_id(None);
        assert!(one.starts_with(USER_ID_PREFIX), "{one}");
        assert_eq!(one.len(), USER_ID_PREFIX.len() + 8);
        assert_ne!(one, tail_user_id(None));
        assert_eq!(tail_user_id(Some("me")), "me");
    }

    const TIME: &str = "2022-10-11T12:43:21.113Z";

    fn parsed(entity: &Value) -> Received {
        parse(&entity.to_string()).expect("parses")
    }

    #[test]
    fn messages_and_events_are_read_and_printed() {
        let message = parsed(&json!({
            "Type": "MESSAGE", "Id": "AYk6xKitV4On", "RequestId": "r", "Content": "hi \"there\"\nnext",
            "Attributes": {"emoji": "wave", "note": "two words"}, "SendTime": TIME,
            "Sender": {"UserId": "ada", "Attributes": {"displayName": "Ada"}}
        }));
        let Received::Entry(entry) = message else {
            panic!("{message:?}")
        };
        assert_eq!(
            render(&entry, LineFormat::Readable),
            format!(
                "{TIME}  MESSAGE     ada: \"hi \\\"there\\\"\\nnext\"  id=AYk6xKitV4On  emoji=wave  note=\"two words\"  sender.displayName=Ada"
            )
        );
        let json: Value =
            serde_json::from_str(&render(&entry, LineFormat::Json)).expect("a JSON line");
        assert_eq!(
            json,
            json!({
                "type": "message", "id": "AYk6xKitV4On", "time": TIME, "content": "hi \"there\"\nnext",
                "sender": {"userId": "ada", "attributes": {"displayName": "Ada"}},
                "attributes": {"emoji": "wave", "note": "two words"}
            })
        );

        let Received::Entry(event) = parsed(&json!({
            "Type": "EVENT", "Id": "ev0000000001", "EventName": "app:HELLO", "SendTime": TIME
        })) else {
            panic!("an entry")
        };
        assert_eq!(
            render(&event, LineFormat::Readable),
            format!("{TIME}  EVENT       app:HELLO  id=ev0000000001")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&render(&event, LineFormat::Json)).expect("JSON"),
            json!({"type": "event", "id": "ev0000000001", "time": TIME, "name": "app:HELLO", "attributes": {}})
        );
    }

    #[test]
    fn system_events_become_deletions_and_disconnects() {
        let Received::Entry(deletion) = parsed(&json!({
            "Type": "EVENT", "Id": "del000000001", "EventName": "aws:DELETE_MESSAGE", "SendTime": TIME,
            "Attributes": {"MessageId": "AYk6xKitV4On", "MessageID": "AYk6xKitV4On", "Reason": "spam"}
        })) else {
            panic!("an entry")
        };
        assert_eq!(
            deletion,
            Entry::Deletion {
                id: "del000000001".into(),
                time: TIME.into(),
                message_id: "AYk6xKitV4On".into(),
                reason: Some("spam".into()),
            }
        );
        assert_eq!(
            render(&deletion, LineFormat::Readable),
            format!("{TIME}  DELETION    message AYk6xKitV4On (\"spam\")  id=del000000001")
        );
        // Only the deprecated spelling, and no reason: still a deletion, and no `reason` key in JSON.
        let Received::Entry(old) = parsed(&json!({
            "Type": "EVENT", "Id": "del000000002", "EventName": "aws:DELETE_MESSAGE", "SendTime": TIME,
            "Attributes": {"MessageID": "AYk6xKitV4On"}
        })) else {
            panic!("an entry")
        };
        assert_eq!(
            serde_json::from_str::<Value>(&render(&old, LineFormat::Json)).expect("JSON"),
            json!({"type": "deletion", "id": "del000000002", "time": TIME, "messageId": "AYk6xKitV4On"})
        );
        let Received::Entry(disconnect) = parsed(&json!({
            "Type": "EVENT", "Id": "dis000000001", "EventName": "aws:DISCONNECT_USER", "SendTime": TIME,
            "Attributes": {"UserId": "bob", "Reason": "Spam"}
        })) else {
            panic!("an entry")
        };
        assert_eq!(
            serde_json::from_str::<Value>(&render(&disconnect, LineFormat::Json)).expect("JSON"),
            json!({"type": "disconnect", "id": "dis000000001", "time": TIME, "userId": "bob", "reason": "Spam"})
        );
        assert_eq!(
            render(&disconnect, LineFormat::Readable),
            format!("{TIME}  DISCONNECT  user bob (\"Spam\")  id=dis000000001")
        );
    }

    #[test]
    fn errors_and_bad_frames_are_told_apart() {
        assert_eq!(
            parsed(
                &json!({"Type": "ERROR", "Id": "e", "ErrorCode": 401, "ErrorMessage": "expired"})
            ),
            Received::Error {
                code: 401,
                message: "expired".into()
            }
        );
        for (frame, why) in [
            ("not json", "not an IVS Chat entity"),
            (r#"{"Type":"PING","Id":"x","SendTime":"t"}"#, "unknown Type"),
            (
                r#"{"Type":"MESSAGE","Id":"x","SendTime":"t","Content":"c"}"#,
                "without Sender",
            ),
            (
                r#"{"Type":"EVENT","Id":"x","SendTime":"t"}"#,
                "without EventName",
            ),
            (
                r#"{"Type":"EVENT","Id":"x","SendTime":"t","EventName":"aws:DISCONNECT_USER"}"#,
                "without Attributes.UserId",
            ),
            (
                r#"{"Type":"EVENT","Id":"x","SendTime":"t","EventName":"e","Attributes":{"n":1}}"#,
                "not an IVS Chat entity",
            ),
        ] {
            let error = parse(frame).expect_err(frame);
            assert!(error.contains(why), "{frame}: {error}");
        }
    }

    #[test]
    fn sessions_are_renewed_at_once_and_failures_back_off() {
        let mut failures = 3;
        assert_eq!(
            after(&Ended::SessionEnded, &mut failures),
            Next::Reconnect(Duration::ZERO)
        );
        assert_eq!(failures, 0);
        let lost = |seconds| Ended::Lost {
            why: "dropped".into(),
            lasted: Duration::from_secs(seconds),
        };
        let delays: Vec<Duration> = (0..9)
            .map(|_| match after(&lost(0), &mut failures) {
                Next::Reconnect(delay) => delay,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000].map(Duration::from_millis)
        );
        assert_eq!(
            after(&lost(10), &mut failures),
            Next::Reconnect(BACKOFF_FIRST),
            "a connection that lasted resets the backoff"
        );
        assert_eq!(after(&Ended::Stopped, &mut failures), Next::Exit(None));
        assert!(matches!(
            after(&Ended::Kicked(Some("bye".into())), &mut failures),
            Next::Exit(Some(why)) if why.contains("disconnected the tail's user (\"bye\")")
        ));
        assert!(matches!(
            after(&Ended::RoomGone("gone".into()), &mut failures),
            Next::Exit(Some(_))
        ));
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
