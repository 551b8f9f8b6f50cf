//! `kubectl ivschat tail` against the emulator (issue 14's acceptance): the built plugin runs as a child process
//! tailing a room by `--arn` in JSON mode, its messaging endpoint derived from `--aws-endpoint-url`. It must
//! print, field by field, a message sent by the official JavaScript client (tests/messaging_js/tail_peer.cjs),
//! an event from `kubectl ivschat send-event`, the deletion of that message by the id tail printed (through
//! `delete-message`) and the disconnect of the JS client's user (through `disconnect-user`); then live through
//! a session expiry (one "minute" of sessionDurationInMinutes is [`SESSION_MINUTE`] here) by reconnecting with
//! a new token and printing what comes next; and exit 0 promptly on SIGINT, its connection closed. A second test
//! loses the connection otherwise (the emulator stops) and checks the retries' growing delays and SIGINT while
//! the tail waits.

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_ivschat::types::ChatTokenCapability;
use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_testsupport::command::repo_path;
use ivschat_testsupport::{emulator, serial};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::mpsc;

use super::messaging_js::{install_js_client, mint_tokens};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-ivschat");
/// The tail's sessions last one such "minute": long enough for the steps before the expiry on a loaded machine,
/// short enough that waiting for it costs the test little.
const SESSION_MINUTE: Duration = Duration::from_secs(10);
/// Upper bound for one line or note to arrive.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon after SIGINT the tail must have exited.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Lines of a child's stdout or stderr, read as they come.
pub(crate) struct Lines(pub(crate) mpsc::UnboundedReceiver<String>);

impl Lines {
    fn of(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Lines {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(receiver)
    }

    async fn next(&mut self, what: &str) -> String {
        tokio::time::timeout(STEP_TIMEOUT, self.0.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("the stream ended before {what}"))
    }

    /// The next JSON line.
    pub(crate) async fn json(&mut self, what: &str) -> Value {
        let line = self.next(what).await;
        serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("{what}: not a JSON line ({error}): {line}"))
    }

    /// Skips lines until one contains `fragment`; that line.
    pub(crate) async fn until(&mut self, fragment: &str) -> String {
        loop {
            let line = self.next(fragment).await;
            if line.contains(fragment) {
                return line;
            }
        }
    }
}

/// `kubectl ivschat ARGS --aws-endpoint-url EMULATOR` in the emulator's isolated AWS environment (the test's
/// static credentials, nothing of the machine's).
pub(crate) fn plugin_command(emulator: &Emulator, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(PLUGIN);
    emulator::isolate_aws_env(&mut command, emulator);
    command
        .args(args)
        .args(["--aws-endpoint-url", &emulator.url()]);
    command
}

/// A plugin command against the emulator with the test's static credentials; its stdout as JSON.
async fn plugin_json(emulator: &Emulator, args: &[&str]) -> Value {
    let mut command = plugin_command(emulator, args);
    command.args(["-o", "json"]);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .expect("run the plugin");
    assert!(
        output.status.success(),
        "kubectl ivschat {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// Asserts the line's `time` is an RFC 3339 instant within the last minute.
fn assert_recent(line: &Value) {
    let time: jiff::Timestamp = line["time"]
        .as_str()
        .and_then(|time| time.parse().ok())
        .unwrap_or_else(|| panic!("time of {line}"));
    let age = jiff::Timestamp::now().duration_since(time);
    assert!(
        age >= jiff::SignedDuration::ZERO && age < jiff::SignedDuration::from_secs(60),
        "{line}"
    );
}

/// `kubectl ivschat tail ARGS --aws-endpoint-url EMULATOR` in the emulator's isolated AWS environment, and
/// its stdout (the room's traffic) and stderr (connection news) line by line.
pub(crate) fn spawn_tail(
    emulator: &Emulator,
    args: &[&str],
) -> (tokio::process::Child, Lines, Lines) {
    let mut tail = plugin_command(emulator, &[&["tail"], args].concat());
    tail.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut tail = tokio::process::Command::from(tail)
        .kill_on_drop(true)
        .spawn()
        .expect("run kubectl ivschat tail");
    let lines = Lines::of(tail.stdout.take().expect("stdout"));
    let notes = Lines::of(tail.stderr.take().expect("stderr"));
    (tail, lines, notes)
}

/// Sends SIGINT to tail, as Ctrl-C does, and expects it to exit 0 within [`STOP_TIMEOUT`].
pub(crate) async fn interrupt_and_expect_success(tail: &mut tokio::process::Child) {
    let pid = tail.id().expect("tail's pid").to_string();
    let kill = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(STOP_TIMEOUT, tail.wait())
        .await
        .expect("tail exits promptly on SIGINT")
        .expect("wait for tail");
    assert!(status.success(), "{status}");
}

fn tail_users(emulator: &Emulator, room: &str) -> Vec<String> {
    emulator
        .chat_connections(room)
        .into_iter()
        .filter(|user| user.starts_with("kubectl-ivschat-tail-"))
        .collect()
}

#[tokio::test]
async fn tail_prints_messages_events_deletions_and_disconnects_and_outlives_its_sessions() {
    let _heavy = serial::beside_others().await;
    let emulator = emulator::start(EmulatorConfig {
        chat_session_minute: SESSION_MINUTE,
        ..EmulatorConfig::default()
    })
    .await;
    let aws = emulator.sdk_client();
    let room = emulator::create_room_with(&aws, |room| room).await;
    let node_modules = install_js_client().await;

    let (mut tail, mut lines, mut notes) = spawn_tail(
        &emulator,
        &["--arn", &room, "-o", "json", "--session-duration", "1"],
    );
    let connected = notes.until("connected to room").await;
    assert!(
        connected.contains(&format!("at {}", emulator.messaging_url())),
        "the endpoint is derived from --aws-endpoint-url: {connected}"
    );
    assert!(connected.contains("no history"), "{connected}");
    let tail_user = tail_users(&emulator, &room);
    assert_eq!(
        tail_user.len(),
        1,
        "one view-only connection: {tail_user:?}"
    );

    // The official JS client sends a message.
    let mut tokens = serde_json::Map::new();
    tokens.insert(
        "ada".into(),
        mint_tokens(
            &aws,
            &room,
            "ada",
            &[ChatTokenCapability::SendMessage],
            None,
        )
        .await,
    );
    let mut node = tokio::process::Command::new("node");
    node.arg(repo_path("tests/messaging_js/tail_peer.cjs"))
        .env("NODE_PATH", &node_modules)
        .env("IVSCHAT_URL", emulator.messaging_url())
        .env("IVSCHAT_TOKENS", Value::Object(tokens).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut node = node.spawn().expect("run node");
    let mut peer = Lines::of(node.stdout.take().expect("node's stdout"));
    assert_eq!(
        peer.json("the JS client to connect").await["step"],
        "connected"
    );
    let sent = peer.json("the JS client's message").await;
    assert_eq!(sent["step"], "sent", "{sent}");
    let message_id = sent["id"].as_str().expect("message id").to_owned();

    let message = lines.json("the message line").await;
    assert_recent(&message);
    assert_eq!(
        json!({"type": message["type"], "id": message["id"], "content": message["content"],
               "sender": message["sender"], "attributes": message["attributes"]}),
        json!({"type": "message", "id": message_id, "content": "hello from js",
               "sender": {"userId": "ada", "attributes": {"displayName": "Ada"}},
               "attributes": {"emoji": "wave"}}),
        "{message}"
    );
    assert_eq!(
        message.as_object().map(|line| line.len()),
        Some(6),
        "{message}"
    );

    // An event from the plugin.
    let event_sent = plugin_json(
        &emulator,
        &[
            "send-event",
            "--arn",
            &room,
            "--name",
            "app:TAIL",
            "--attribute",
            "colour=red",
        ],
    )
    .await;
    let event = lines.json("the event line").await;
    assert_recent(&event);
    assert_eq!(
        event["time"].as_str().map(str::len),
        Some(24),
        "milliseconds: {event}"
    );
    let mut without_time = event.clone();
    without_time.as_object_mut().expect("object").remove("time");
    assert_eq!(
        without_time,
        json!({"type": "event", "id": event_sent["id"], "name": "app:TAIL", "attributes": {"colour": "red"}})
    );

    // The message deleted by the id tail printed.
    let printed_id = message["id"].as_str().expect("id");
    plugin_json(
        &emulator,
        &[
            "delete-message",
            "--arn",
            &room,
            "--id",
            printed_id,
            "--reason",
            "spam",
        ],
    )
    .await;
    let deletion = lines.json("the deletion line").await;
    assert_recent(&deletion);
    assert_eq!(deletion["type"], "deletion", "{deletion}");
    assert_eq!(deletion["messageId"], printed_id, "{deletion}");
    assert_eq!(deletion["reason"], "spam", "{deletion}");
    assert!(
        deletion["id"]
            .as_str()
            .is_some_and(|id| id.len() == 12 && id != printed_id),
        "the event's own id: {deletion}"
    );

    // The JS client's user disconnected: tail shows it and keeps running; the client sees a clean close.
    plugin_json(
        &emulator,
        &[
            "disconnect-user",
            "--arn",
            &room,
            "--user-id",
            "ada",
            "--reason",
            "bye",
        ],
    )
    .await;
    let disconnect = lines.json("the disconnect line").await;
    assert_recent(&disconnect);
    assert_eq!(disconnect["type"], "disconnect", "{disconnect}");
    assert_eq!(disconnect["userId"], "ada", "{disconnect}");
    assert_eq!(disconnect["reason"], "bye", "{disconnect}");
    let done = peer.json("the JS client's disconnect").await;
    assert_eq!(done["reason"], "serverDisconnect", "{done}");
    assert!(node.wait().await.expect("node").success());
    assert!(
        tail.try_wait().expect("tail's status").is_none(),
        "another user's disconnect does not end the tail"
    );

    // The session ends: tail renews it with a fresh token and goes on printing.
    notes.until("the chat session ended").await;
    notes.until("reconnected to room").await;
    let after_sent = plugin_json(
        &emulator,
        &["send-event", "--arn", &room, "--name", "app:AFTER"],
    )
    .await;
    let after = lines.json("the line after the reconnection").await;
    assert_eq!(after["type"], "event", "{after}");
    assert_eq!(after["id"], after_sent["id"], "{after}");
    assert_eq!(after["name"], "app:AFTER", "{after}");
    assert_eq!(after["attributes"], json!({}), "{after}");
    assert_eq!(
        tail_users(&emulator, &room),
        tail_user,
        "the same user, one connection"
    );

    // SIGINT: a clean close and exit 0, promptly.
    interrupt_and_expect_success(&mut tail).await;
    notes.until("stopped").await;
    assert!(
        lines.0.recv().await.is_none(),
        "nothing more on stdout after the last event"
    );
    // The emulator drops the connection once it has answered the close frame, just after the tail exits.
    let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
    while !tail_users(&emulator, &room).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the emulator saw the connection close"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection lost otherwise than by a session end (here the emulator going away: close 1001, then nothing
/// listening) is retried with a fresh token after a growing delay, said on stderr; SIGINT while it waits still
/// exits 0 at once. `--messaging-endpoint` is used as given.
#[tokio::test]
async fn tail_retries_a_lost_connection_with_backoff_and_stops_on_sigint_while_waiting() {
    let _heavy = serial::beside_others().await;
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let aws = emulator.sdk_client();
    let room = emulator::create_room_with(&aws, |room| room).await;
    let messaging = format!("{}/", emulator.messaging_url());
    let (mut tail, mut lines, mut notes) = spawn_tail(
        &emulator,
        &[
            "--arn",
            &room,
            "--user-id",
            "watcher",
            "--messaging-endpoint",
            &messaging,
        ],
    );
    let connected = notes.until("connected to room").await;
    assert!(
        connected.contains(&format!("as watcher at {}/ ", emulator.messaging_url())),
        "{connected}"
    );
    assert_eq!(emulator.chat_connections(&room), ["watcher"]);

    emulator.stop().await.expect("stop the emulator");
    let closed = notes.until("reconnecting with a new token in").await;
    assert!(
        closed.contains("the server closed the connection (1001 \"Emulator shutting down\")")
            && closed.ends_with("in 0.5 s"),
        "{closed}"
    );
    // Nothing listens any more: the next attempt fails, and the one after waits twice as long.
    let failed = notes.until("reconnecting with a new token in").await;
    assert!(
        failed.contains("cannot get a chat token") && failed.ends_with("in 1.0 s"),
        "{failed}"
    );
    assert!(
        tail.try_wait().expect("tail's status").is_none(),
        "still retrying"
    );

    interrupt_and_expect_success(&mut tail).await;
    notes.until("stopped").await;
    assert!(lines.0.recv().await.is_none(), "the room was quiet");
}
