//! Argument validation: turns the parsed command line into a [`Request`] whose every value is within the
//! limits IVS Chat documents (`ivschat_api::limits`), so an invalid argument is refused with all its problems
//! listed before the plugin talks to Kubernetes or AWS.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use regex::Regex;

use ivschat_api::limits::{
    ARN_CHARS, ATTRIBUTES_MAX_BYTES, EVENT_NAME_CHARS, ID_CHARS, MAXIMUM_MESSAGE_LENGTH,
    REASON_CHARS, SESSION_DURATION_MINUTES, USER_ID_CHARS, attributes_size,
};

/// A message's content: 1 code point up to the longest `maximumMessageLength` a room can have (the room's
/// own may allow fewer; the room says so when it refuses the message).
const MESSAGE_CHARS: RangeInclusive<usize> = 1..=(*MAXIMUM_MESSAGE_LENGTH.end() as usize);

use super::cli::{Command, GlobalArgs};
use super::import::ImportRequest;
use crate::crd::patterns;

/// What a chat token lets its user do besides receiving messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    SendMessage,
    DisconnectUser,
    DeleteMessage,
}

impl Capability {
    pub const ALL: [Capability; 3] = [
        Capability::SendMessage,
        Capability::DisconnectUser,
        Capability::DeleteMessage,
    ];

    /// The AWS enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::SendMessage => "SEND_MESSAGE",
            Capability::DisconnectUser => "DISCONNECT_USER",
            Capability::DeleteMessage => "DELETE_MESSAGE",
        }
    }

    /// Accepts the AWS spelling, also in lower case or with `-` for `_` (`send-message`).
    pub fn parse(text: &str) -> Option<Capability> {
        let normalised = text.trim().to_ascii_uppercase().replace('-', "_");
        Capability::ALL
            .into_iter()
            .find(|capability| capability.as_str() == normalised)
    }
}

/// Which room a command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomTarget {
    /// A ChatRoom object in the namespace; its `status.arn` names the AWS room.
    ChatRoom(String),
    /// An AWS room ARN given with `--arn`.
    Arn(String),
}

/// A command whose arguments are all valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Token {
        room: RoomTarget,
        user_id: String,
        capabilities: Vec<Capability>,
        session_duration_minutes: Option<i32>,
        attributes: BTreeMap<String, String>,
    },
    SendEvent {
        room: RoomTarget,
        event_name: String,
        attributes: BTreeMap<String, String>,
    },
    DeleteMessage {
        room: RoomTarget,
        message_id: String,
        reason: Option<String>,
    },
    DisconnectUser {
        room: RoomTarget,
        user_id: String,
        reason: Option<String>,
    },
    /// `status` without a room: the namespace's ChatRooms.
    ListRooms,
    /// `status ROOM` or `status --arn ARN`.
    RoomStatus { room: RoomTarget },
    /// `import`: manifests for the account's unmanaged resources.
    Import(ImportRequest),
    /// `send-message ROOM TEXT`: its own options are checked in [`super::send::check`].
    SendMessage {
        room: RoomTarget,
        options: super::send::SendOptions,
    },
    /// `tail ROOM`: its own options are checked in [`super::tail::check`].
    Tail {
        room: RoomTarget,
        options: super::tail::TailOptions,
    },
}

/// Every problem found in the arguments, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidArguments(pub Vec<String>);

/// Collects problems so that one run reports all of them.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    /// A length within `allowed` (whose lower end is 1: every limited argument is required to be non-empty).
    fn text_length(&mut self, flag: &str, value: &str, allowed: RangeInclusive<usize>) {
        let chars = value.chars().count();
        let max = *allowed.end();
        if chars < *allowed.start() {
            self.add(format!("{flag} must not be empty"));
        } else if chars > max {
            self.add(format!(
                "{flag} is {chars} characters long; at most {max} are allowed"
            ));
        }
    }
}

/// Validates the global options and the command's arguments.
pub fn validate(global: &GlobalArgs, command: &Command) -> Result<Request, InvalidArguments> {
    let mut problems = Problems::default();
    validate_global(global, matches!(command, Command::Import(_)), &mut problems);
    let request = match command {
        Command::Token(args) => {
            let room = room_target(args.room.as_deref(), global.arn.as_deref(), &mut problems);
            problems.text_length("--user-id", &args.user_id, USER_ID_CHARS);
            let mut capabilities = Vec::new();
            for text in &args.capabilities {
                match Capability::parse(text) {
                    Some(capability) if !capabilities.contains(&capability) => {
                        capabilities.push(capability)
                    }
                    Some(_) => {}
                    None => problems.add(format!(
                        "--capability {text:?} is not one of {}",
                        Capability::ALL.map(Capability::as_str).join(", ")
                    )),
                }
            }
            capabilities.sort();
            let session_duration_minutes = match args.session_duration {
                None => None,
                Some(minutes) if SESSION_DURATION_MINUTES.contains(&minutes) => {
                    i32::try_from(minutes).ok()
                }
                Some(minutes) => {
                    problems.add(format!(
                        "--session-duration {minutes} is out of range: a session lasts {} to {} minutes",
                        SESSION_DURATION_MINUTES.start(),
                        SESSION_DURATION_MINUTES.end()
                    ));
                    None
                }
            };
            let attributes = attributes("--attribute", &args.attributes, &mut problems);
            Request::Token {
                room,
                user_id: args.user_id.clone(),
                capabilities,
                session_duration_minutes,
                attributes,
            }
        }
        Command::SendEvent(args) => {
            let room = room_target(args.room.as_deref(), global.arn.as_deref(), &mut problems);
            problems.text_length("--name", &args.name, EVENT_NAME_CHARS);
            let attributes = attributes("--attribute", &args.attributes, &mut problems);
            Request::SendEvent {
                room,
                event_name: args.name.clone(),
                attributes,
            }
        }
        Command::DeleteMessage(args) => {
            let room = room_target(args.room.as_deref(), global.arn.as_deref(), &mut problems);
            if !is_message_id(&args.id) {
                problems.add(format!(
                    "--id {:?} is not a message ID: message IDs are exactly {ID_CHARS} letters and digits",
                    args.id
                ));
            }
            if let Some(reason) = &args.reason {
                problems.text_length("--reason", reason, REASON_CHARS);
            }
            Request::DeleteMessage {
                room,
                message_id: args.id.clone(),
                reason: args.reason.clone(),
            }
        }
        Command::DisconnectUser(args) => {
            let room = room_target(args.room.as_deref(), global.arn.as_deref(), &mut problems);
            problems.text_length("--user-id", &args.user_id, USER_ID_CHARS);
            if let Some(reason) = &args.reason {
                problems.text_length("--reason", reason, REASON_CHARS);
            }
            Request::DisconnectUser {
                room,
                user_id: args.user_id.clone(),
                reason: args.reason.clone(),
            }
        }
        Command::SendMessage(args) => {
            // With --arn the one positional argument is the text.
            let (room, text) = match (global.arn.as_deref(), &args.room, &args.text) {
                (Some(_), Some(text), None) => (None, Some(text.as_str())),
                (_, room, text) => (room.as_deref(), text.as_deref()),
            };
            let room = room_target(room, global.arn.as_deref(), &mut problems);
            match text {
                None => problems.add("TEXT is required: the message to send".to_owned()),
                Some(text) => problems.text_length("TEXT", text, MESSAGE_CHARS),
            }
            let mut found = Vec::new();
            let (timeout, format) = super::send::check(args, global.output, &mut found);
            found.into_iter().for_each(|problem| problems.add(problem));
            Request::SendMessage {
                room,
                options: super::send::SendOptions {
                    text: text.unwrap_or_default().to_owned(),
                    attributes: attributes("--attribute", &args.attributes, &mut problems),
                    sender_attributes: attributes(
                        "--sender-attribute",
                        &args.sender_attributes,
                        &mut problems,
                    ),
                    user_id: args.user_id.clone(),
                    timeout,
                    messaging_endpoint: args.messaging_endpoint.clone(),
                    format,
                },
            }
        }
        Command::Tail(args) => {
            let room = room_target(args.room.as_deref(), global.arn.as_deref(), &mut problems);
            let (options, found) = super::tail::check(global, args);
            found.into_iter().for_each(|problem| problems.add(problem));
            Request::Tail { room, options }
        }
        Command::Status(args) => match (args.room.as_deref(), global.arn.as_deref()) {
            (None, None) => Request::ListRooms,
            (room, arn) => Request::RoomStatus {
                room: room_target(room, arn, &mut problems),
            },
        },
        Command::Import(args) => {
            Request::Import(super::import::validate(global, args, &mut problems.0))
        }
    };
    if problems.0.is_empty() {
        Ok(request)
    } else {
        Err(InvalidArguments(problems.0))
    }
}

/// `account_alone`: the command takes `--account` without `--arn` (import names the account to read).
fn validate_global(global: &GlobalArgs, account_alone: bool, problems: &mut Problems) {
    if let Some(namespace) = &global.namespace
        && !is_dns_label(namespace)
    {
        problems.add(format!(
            "--namespace {namespace:?} is not a valid namespace name (lower-case letters, digits and '-', at most 63)"
        ));
    }
    if let Some(region) = &global.region
        && !is_region(region)
    {
        problems.add(format!(
            "--region {region:?} is not an AWS region name (e.g. us-west-2)"
        ));
    }
    if let Some(url) = &global.aws_endpoint_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        problems.add(format!(
            "--aws-endpoint-url {url:?} must be an http:// or https:// URL"
        ));
    }
    if global.context.as_deref() == Some("") {
        problems.add("--context must not be empty");
    }
    if let Some(account) = &global.account {
        if !is_object_name(account) {
            problems.add(format!(
                "--account {account:?} is not a valid ChatAccount name (lower-case letters, digits, '-' and '.')"
            ));
        }
        if global.arn.is_none() && !account_alone {
            problems.add(format!(
                "--account {account:?} goes with --arn: a ChatRoom's account is its spec.accountRef"
            ));
        }
    }
}

/// Exactly one of ROOM and `--arn`, each well-formed.
fn room_target(room: Option<&str>, arn: Option<&str>, problems: &mut Problems) -> RoomTarget {
    match (room, arn) {
        (Some(room), Some(arn)) => {
            problems.add(format!(
                "give either ROOM ({room:?}) or --arn ({arn:?}), not both"
            ));
            RoomTarget::Arn(arn.to_owned())
        }
        (Some(room), None) => {
            if !is_object_name(room) {
                problems.add(format!(
                    "ROOM {room:?} is not a valid ChatRoom name (lower-case letters, digits, '-' and '.')"
                ));
            }
            RoomTarget::ChatRoom(room.to_owned())
        }
        (None, Some(arn)) => {
            if !is_room_arn(arn) {
                problems.add(format!(
                    "--arn {arn:?} is not a room ARN (arn:aws:ivschat:REGION:ACCOUNT:room/ID)"
                ));
            }
            RoomTarget::Arn(arn.to_owned())
        }
        (None, None) => {
            problems.add("name a room: give a ChatRoom name (ROOM) or --arn ROOM_ARN");
            RoomTarget::ChatRoom(String::new())
        }
    }
}

/// `key=value` pairs (the value may contain `=`; keys are unique), within the 1 KiB total.
fn attributes(flag: &str, pairs: &[String], problems: &mut Problems) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some(("", _)) => problems.add(format!("{flag} {pair:?} has an empty key")),
            Some((key, value)) => {
                if attributes
                    .insert(key.to_owned(), value.to_owned())
                    .is_some()
                {
                    problems.add(format!("{flag} {key:?} is given more than once"));
                }
            }
            None => problems.add(format!("{flag} {pair:?} is not of the form KEY=VALUE")),
        }
    }
    let total = attributes_size(&attributes);
    if total > ATTRIBUTES_MAX_BYTES {
        problems.add(format!(
            "the {flag} values take {total} bytes (keys and values); at most {ATTRIBUTES_MAX_BYTES} are allowed"
        ));
    }
    attributes
}

pub fn is_message_id(text: &str) -> bool {
    text.len() == ID_CHARS && text.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

pub fn is_room_arn(text: &str) -> bool {
    ARN_CHARS.contains(&text.len())
        && Regex::new(patterns::ROOM_ARN).is_ok_and(|pattern| pattern.is_match(text))
}

fn is_object_name(text: &str) -> bool {
    text.len() <= 253
        && Regex::new(patterns::OBJECT_NAME).is_ok_and(|pattern| pattern.is_match(text))
}

fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn is_region(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::cli::Cli;
    use clap::Parser;

    const ARN: &str = "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234";

    fn parse(args: &[&str]) -> Result<Request, InvalidArguments> {
        let cli =
            Cli::try_parse_from(std::iter::once("kubectl-ivschat").chain(args.iter().copied()))
                .expect("clap accepts the command line");
        validate(&cli.global, &cli.command)
    }

    fn problems(args: &[&str]) -> Vec<String> {
        parse(args).expect_err("invalid arguments").0
    }

    #[test]
    fn token_with_every_option() {
        let request = parse(&[
            "token",
            "demo",
            "--user-id",
            "ana",
            "--capability",
            "send-message",
            "--capability",
            "DELETE_MESSAGE",
            "--capability",
            "SEND_MESSAGE",
            "--session-duration",
            "180",
            "--attribute",
            "colour=red",
            "--attribute",
            "eq=a=b",
        ])
        .expect("valid");
        assert_eq!(
            request,
            Request::Token {
                room: RoomTarget::ChatRoom("demo".into()),
                user_id: "ana".into(),
                capabilities: vec![Capability::SendMessage, Capability::DeleteMessage],
                session_duration_minutes: Some(180),
                attributes: [("colour".into(), "red".into()), ("eq".into(), "a=b".into())].into(),
            }
        );
    }

    #[test]
    fn global_options_after_the_command_and_arn_instead_of_room() {
        let request =
            parse(&["send-event", "--name", "ping", "--arn", ARN, "-o", "json"]).expect("valid");
        assert_eq!(
            request,
            Request::SendEvent {
                room: RoomTarget::Arn(ARN.into()),
                event_name: "ping".into(),
                attributes: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let found = problems(&[
            "token",
            "--user-id",
            "",
            "--capability",
            "SHOUT",
            "--session-duration",
            "0",
            "--attribute",
            "novalue",
            "--attribute",
            "=x",
        ]);
        assert_eq!(found.len(), 6, "{found:#?}");
        assert!(found[0].contains("ROOM"));
        assert!(found[1].contains("--user-id must not be empty"));
        assert!(found[2].contains("SEND_MESSAGE, DISCONNECT_USER, DELETE_MESSAGE"));
        assert!(found[3].contains("1 to 180 minutes"));
        assert!(found[4].contains("KEY=VALUE"));
        assert!(found[5].contains("empty key"));
    }

    #[test]
    fn lengths_are_counted_in_characters_at_their_limits() {
        let user = "é".repeat(*USER_ID_CHARS.end());
        assert!(parse(&["disconnect-user", "r", "--user-id", &user]).is_ok());
        let user = "é".repeat(USER_ID_CHARS.end() + 1);
        assert!(
            problems(&["disconnect-user", "r", "--user-id", &user])[0].contains("129 characters")
        );
        let reason = "x".repeat(*REASON_CHARS.end());
        assert!(
            parse(&[
                "disconnect-user",
                "r",
                "--user-id",
                "u",
                "--reason",
                &reason
            ])
            .is_ok()
        );
        let reason = "x".repeat(REASON_CHARS.end() + 1);
        assert!(
            problems(&[
                "disconnect-user",
                "r",
                "--user-id",
                "u",
                "--reason",
                &reason
            ])[0]
                .contains("--reason is 257")
        );
        let name = "n".repeat(EVENT_NAME_CHARS.end() + 1);
        assert!(problems(&["send-event", "r", "--name", &name])[0].contains("at most 100"));
        assert!(problems(&["send-event", "r", "--name", ""])[0].contains("must not be empty"));
    }

    #[test]
    fn a_message_text_is_one_to_500_characters_and_follows_the_room_or_the_arn() {
        let Ok(Request::SendMessage { room, options }) = parse(&["send-message", "r", "hello"])
        else {
            panic!("a valid send-message");
        };
        assert_eq!(
            (room, options.text.as_str()),
            (RoomTarget::ChatRoom("r".into()), "hello")
        );
        let Ok(Request::SendMessage { room, options }) =
            parse(&["send-message", "--arn", ARN, "hello"])
        else {
            panic!("a valid send-message by ARN");
        };
        assert_eq!(
            (room, options.text.as_str()),
            (RoomTarget::Arn(ARN.into()), "hello")
        );
        let longest = "é".repeat(500);
        assert!(parse(&["send-message", "r", &longest]).is_ok());
        let too_long = "é".repeat(501);
        for (given, expected) in [
            (vec!["send-message", "r"], "TEXT is required"),
            (vec!["send-message", "r", ""], "TEXT must not be empty"),
            (vec!["send-message", "r", &too_long], "at most 500"),
        ] {
            let found = problems(&given);
            assert!(
                found.iter().any(|problem| problem.contains(expected)),
                "{given:?}: {found:?}"
            );
        }
    }

    #[test]
    fn message_ids_are_twelve_letters_and_digits() {
        assert!(parse(&["delete-message", "r", "--id", "abcDEF123456"]).is_ok());
        for bad in ["abcDEF12345", "abcDEF1234567", "abcDEF12345-", ""] {
            assert!(
                problems(&["delete-message", "r", "--id", bad])[0].contains("not a message ID"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn attributes_are_limited_to_one_kib_in_total() {
        let fits = format!("k={}", "v".repeat(ATTRIBUTES_MAX_BYTES - 1));
        assert!(parse(&["send-event", "r", "--name", "e", "--attribute", &fits]).is_ok());
        let too_big = format!("k={}", "v".repeat(ATTRIBUTES_MAX_BYTES));
        assert!(
            problems(&["send-event", "r", "--name", "e", "--attribute", &too_big])[0]
                .contains("1025 bytes")
        );
        assert!(
            problems(&[
                "send-event",
                "r",
                "--name",
                "e",
                "--attribute",
                "a=1",
                "--attribute",
                "a=2"
            ])[0]
                .contains("more than once")
        );
    }

    #[test]
    fn room_and_arn_are_exclusive_and_checked() {
        assert!(problems(&["token", "r", "--arn", ARN, "--user-id", "u"])[0].contains("not both"));
        assert!(
            problems(&["token", "--arn", "room/x", "--user-id", "u"])[0].contains("not a room ARN")
        );
        assert!(
            problems(&["token", "Bad_Name", "--user-id", "u"])[0].contains("not a valid ChatRoom")
        );
        assert_eq!(parse(&["status"]), Ok(Request::ListRooms));
        assert_eq!(
            parse(&["status", "--arn", ARN]),
            Ok(Request::RoomStatus {
                room: RoomTarget::Arn(ARN.into())
            })
        );
    }

    #[test]
    fn global_options_are_checked() {
        let found = problems(&[
            "status",
            "-n",
            "Not_A_Namespace",
            "--region",
            "US",
            "--aws-endpoint-url",
            "localhost:1",
        ]);
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn account_goes_with_arn_and_is_a_name() {
        assert!(parse(&["token", "--arn", ARN, "--account", "prod", "--user-id", "u"]).is_ok());
        assert!(parse(&["status", "--arn", ARN, "--account", "prod"]).is_ok());
        assert!(
            problems(&["token", "lobby", "--account", "prod", "--user-id", "u"])[0].contains(
                "--account \"prod\" goes with --arn: a ChatRoom's account is its spec.accountRef"
            )
        );
        assert!(problems(&["status", "--account", "prod"])[0].contains("goes with --arn"));
        assert!(
            problems(&["status", "--arn", ARN, "--account", "Prod_1"])[0]
                .contains("not a valid ChatAccount name")
        );
    }
}
