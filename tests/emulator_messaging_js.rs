//! Acceptance: the official IVS Chat JavaScript client (`amazon-ivs-chat-messaging`, installed with `ws` by
//! hack/ivschat-js.sh, versions pinned there) runs under Node against the emulator's messaging endpoint at
//! `ws://127.0.0.1:PORT`. The client script is tests/messaging_js/chat_client.cjs: two rooms connect, receive a
//! SendEvent made here through the SDK, exchange a message, get a 400 and a 403, delete a message, and one
//! disconnects the other, which must end with a clean server close and no reconnect.
//!
//! Needs `node` and `npm` with access to the npm registry (first run only); a failed install fails the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_ivschat::types::ChatTokenCapability;
use ivschat_operator::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};

const MAX_MESSAGE_LENGTH: i32 = 10;
/// The whole scenario takes about a second; this bounds a hung client.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Installs the JS client (or finds it installed) through hack/ivschat-js.sh and returns its node_modules.
async fn install_js_client() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/ivschat-js.sh");
    let output = tokio::process::Command::new(&script)
        .output()
        .await
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "hack/ivschat-js.sh could not install the JS chat client (it needs node, npm and the npm registry):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = PathBuf::from(String::from_utf8(output.stdout).expect("utf-8 path").trim());
    let modules = dir.join("node_modules");
    assert!(
        modules.join("amazon-ivs-chat-messaging").is_dir(),
        "hack/ivschat-js.sh printed {}, which holds no amazon-ivs-chat-messaging",
        dir.display()
    );
    modules
}

#[tokio::test]
async fn the_official_js_client_chats_through_the_emulator() {
    let node_modules = install_js_client().await;
    let emulator = Emulator::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        EmulatorConfig::default(),
    )
    .await
    .expect("the emulator starts");
    let client = emulator.sdk_client();
    let room = client
        .create_room()
        .maximum_message_length(MAX_MESSAGE_LENGTH)
        .send()
        .await
        .expect("create room")
        .arn()
        .expect("arn")
        .to_string();

    // Four tokens each: the first connection plus the SDK's three retries, should it ever reconnect.
    let mut tokens = serde_json::Map::new();
    for (user, capabilities) in [
        (
            "ada",
            vec![
                ChatTokenCapability::SendMessage,
                ChatTokenCapability::DeleteMessage,
                ChatTokenCapability::DisconnectUser,
            ],
        ),
        ("bob", vec![ChatTokenCapability::SendMessage]),
    ] {
        let mut issued = Vec::new();
        for _ in 0..4 {
            let token = client
                .create_chat_token()
                .room_identifier(&room)
                .user_id(user)
                .set_capabilities(Some(capabilities.clone()))
                .attributes("displayName", if user == "ada" { "Ada" } else { "Bob" })
                .send()
                .await
                .expect("create chat token");
            issued.push(json!(token.token().expect("token")));
        }
        tokens.insert(user.to_string(), Value::Array(issued));
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/messaging_js/chat_client.cjs");
    let mut node = tokio::process::Command::new("node")
        .arg(&script)
        .env("NODE_PATH", &node_modules)
        .env("IVSCHAT_URL", format!("ws://{}", emulator.local_addr()))
        .env("IVSCHAT_TOKENS", Value::Object(tokens).to_string())
        .env("IVSCHAT_MAX_LENGTH", MAX_MESSAGE_LENGTH.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
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
                        .room_identifier(&room)
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

    assert_eq!(done["bobDisconnectReason"], "serverDisconnect", "{done}");
    assert_eq!(done["bobState"], "disconnected", "{done}");
    assert_eq!(done["adaDisconnectReason"], "clientDisconnect", "{done}");
    assert_eq!(
        done["tokenFetches"],
        json!({"ada": 1, "bob": 1}),
        "no reconnects: every close was clean ({errors})"
    );
    assert!(
        done["messageId"]
            .as_str()
            .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_alphanumeric())),
        "{done}"
    );
    // The SDK logs every ERROR it receives: exactly the two refusals the script provoked, nothing else.
    let sdk_errors: Vec<&str> = errors
        .lines()
        .filter(|line| line.starts_with("sdk error") || line.starts_with("sdk warn"))
        .collect();
    assert_eq!(sdk_errors.len(), 2, "{errors}");
    assert!(sdk_errors[0].contains(r#""ErrorCode":400"#), "{errors}");
    assert!(sdk_errors[1].contains(r#""ErrorCode":403"#), "{errors}");
}
