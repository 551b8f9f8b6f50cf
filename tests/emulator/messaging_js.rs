//! Acceptance: the official IVS Chat JavaScript client (`amazon-ivs-chat-messaging`, installed with `ws` by
//! hack/ivschat-js.sh, versions pinned there) runs under Node against the emulator's messaging endpoint at
//! `ws://127.0.0.1:PORT`. The client scenarios are in tests/messaging_js/:
//! - chat_client.cjs: two rooms connect, receive a SendEvent made here through the SDK, exchange a message, get a
//!   400 and a 403, delete a message, and one disconnects the other, which must end with a clean server close
//!   and no reconnect;
//! - session_expiry.cjs: a session ends, and the client reconnects with a new token without a disconnect.
//!
//! Needs `node` and `npm` with access to the npm registry (first run only); a failed install fails the test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::types::ChatTokenCapability;
use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_testsupport::command::{install_tool, repo_path};
use ivschat_testsupport::{emulator, serial};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

const MAX_MESSAGE_LENGTH: i32 = 10;
/// A scenario takes a few seconds; this bounds a hung client.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Installs the JS client (or finds it installed) through hack/ivschat-js.sh and returns its node_modules.
pub(crate) async fn install_js_client() -> PathBuf {
    let dir = install_tool(
        "hack/ivschat-js.sh",
        "the JS chat client",
        "node, npm and the npm registry",
    )
    .await;
    let modules = dir.join("node_modules");
    assert!(
        modules.join("amazon-ivs-chat-messaging").is_dir(),
        "hack/ivschat-js.sh printed {}, which holds no amazon-ivs-chat-messaging",
        dir.display()
    );
    modules
}

/// Chat tokens for `user`, the first with a session of `first_session_minutes`, the rest with the default.
pub(crate) async fn mint_tokens(
    client: &Client,
    room: &str,
    user: &str,
    capabilities: &[ChatTokenCapability],
    first_session_minutes: Option<i32>,
) -> Value {
    let display_name = format!("{}{}", user[..1].to_uppercase(), &user[1..]);
    let mut issued = Vec::new();
    // Four: the first connection plus the SDK's three retries, should it ever reconnect.
    for index in 0..4 {
        let token = client
            .create_chat_token()
            .room_identifier(room)
            .user_id(user)
            .set_capabilities(Some(capabilities.to_vec()))
            .attributes("displayName", &display_name)
            .set_session_duration_in_minutes(if index == 0 {
                first_session_minutes
            } else {
                None
            })
            .send()
            .await
            .expect("create chat token");
        issued.push(json!(token.token().expect("token")));
    }
    Value::Array(issued)
}

/// What a scenario reported at its end, and everything it wrote to stderr.
struct ScenarioRun {
    done: Value,
    stderr: String,
}

/// Runs `script` under Node against the emulator. When it reports `{"step":"connected"}`, SendEvent(app:HELLO,
/// greeting=hi) is sent to `room`. Fails the test unless the script exits successfully after reporting done.
async fn run_scenario(
    emulator: &Emulator,
    room: &str,
    script: &str,
    tokens: serde_json::Map<String, Value>,
    extra_env: &[(&str, String)],
) -> ScenarioRun {
    let node_modules = install_js_client().await;
    let client = emulator.sdk_client();
    let script = repo_path("tests/messaging_js").join(script);
    let mut node = tokio::process::Command::new("node");
    node.arg(&script)
        .env("NODE_PATH", &node_modules)
        .env("IVSCHAT_URL", emulator.messaging_url())
        .env("IVSCHAT_TOKENS", Value::Object(tokens).to_string())
        .envs(extra_env.iter().map(|(name, value)| (*name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut node = node.spawn().expect("run node");
    let mut stdout = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut stderr = node.stderr.take().expect("stderr");

    let scenario = async {
        let mut done = None;
        while let Some(line) = stdout.next_line().await.expect("read the client's output") {
            let step: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("the client printed {line:?}: {error}"));
            match step["step"].as_str() {
                Some("connected") => {
                    client
                        .send_event()
                        .room_identifier(room)
                        .event_name("app:HELLO")
                        .attributes("greeting", "hi")
                        .send()
                        .await
                        .expect("send event");
                }
                Some("done") => done = Some(step),
                _ => panic!("unexpected line from the client: {line}"),
            }
        }
        let status = node.wait().await.expect("wait for node");
        (status, done)
    };
    let (status, done) = tokio::time::timeout(SCRIPT_TIMEOUT, scenario)
        .await
        .expect("the JS client finishes in time");
    let mut errors = String::new();
    let _ = stderr.read_to_string(&mut errors).await;
    assert!(
        status.success(),
        "the JS client failed ({status}):\n{errors}"
    );
    let done = done.unwrap_or_else(|| panic!("the client never reported done:\n{errors}"));
    ScenarioRun {
        done,
        stderr: errors,
    }
}

async fn create_room(client: &Client, maximum_message_length: i32) -> String {
    emulator::create_room_with(client, |room| {
        room.maximum_message_length(maximum_message_length)
    })
    .await
}

#[tokio::test]
async fn the_official_js_client_chats_through_the_emulator() {
    let _heavy = serial::beside_others().await;
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let room = create_room(&client, MAX_MESSAGE_LENGTH).await;
    let mut tokens = serde_json::Map::new();
    tokens.insert(
        "ada".into(),
        mint_tokens(
            &client,
            &room,
            "ada",
            &[
                ChatTokenCapability::SendMessage,
                ChatTokenCapability::DeleteMessage,
                ChatTokenCapability::DisconnectUser,
            ],
            None,
        )
        .await,
    );
    tokens.insert(
        "bob".into(),
        mint_tokens(
            &client,
            &room,
            "bob",
            &[ChatTokenCapability::SendMessage],
            None,
        )
        .await,
    );

    let ScenarioRun { done, stderr } = run_scenario(
        &emulator,
        &room,
        "chat_client.cjs",
        tokens,
        &[("IVSCHAT_MAX_LENGTH", MAX_MESSAGE_LENGTH.to_string())],
    )
    .await;
    assert_eq!(done["bobDisconnectReason"], "serverDisconnect", "{done}");
    assert_eq!(done["bobState"], "disconnected", "{done}");
    assert_eq!(done["adaDisconnectReason"], "clientDisconnect", "{done}");
    assert_eq!(
        done["tokenFetches"],
        json!({"ada": 1, "bob": 1}),
        "no reconnects: every close was clean ({stderr})"
    );
    assert!(
        done["messageId"]
            .as_str()
            .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_alphanumeric())),
        "{done}"
    );
    // The SDK logs every ERROR it receives: exactly the two refusals the script provoked, nothing else.
    let sdk_errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("sdk error") || line.starts_with("sdk warn"))
        .collect();
    assert_eq!(sdk_errors.len(), 2, "{stderr}");
    assert!(sdk_errors[0].contains(r#""ErrorCode":400"#), "{stderr}");
    assert!(sdk_errors[1].contains(r#""ErrorCode":403"#), "{stderr}");
}

#[tokio::test]
async fn the_official_js_client_renews_its_connection_when_the_session_ends() {
    let _heavy = serial::beside_others().await;
    // One "minute" of sessionDurationInMinutes lasts a second: the first session ends a second after it opens.
    let emulator = emulator::start(EmulatorConfig {
        chat_session_minute: Duration::from_secs(1),
        ..EmulatorConfig::default()
    })
    .await;
    let client = emulator.sdk_client();
    let room = create_room(&client, 500).await;
    let mut tokens = serde_json::Map::new();
    tokens.insert(
        "ada".into(),
        mint_tokens(
            &client,
            &room,
            "ada",
            &[ChatTokenCapability::SendMessage],
            Some(1),
        )
        .await,
    );
    let ScenarioRun { done, stderr } =
        run_scenario(&emulator, &room, "session_expiry.cjs", tokens, &[]).await;
    assert_eq!(done["connects"], 2, "{done}\n{stderr}");
    assert_eq!(done["tokenFetches"], json!({"ada": 2}), "{done}\n{stderr}");
    assert_eq!(done["disconnectReason"], "clientDisconnect", "{done}");
}
