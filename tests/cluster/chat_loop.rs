//! The end-to-end chat loop (issue 7 acceptance): a ChatRoom applied with `kubectl apply` to the real test
//! control plane, reconciled by the in-process operator into an in-process IVS Chat emulator, used by real
//! WebSocket clients that get their tokens from `kubectl ivschat` (run by kubectl's plugin mechanism) and
//! moderated with the same plugin. Every step is one the issue lists, in its order; each checks the entities
//! the clients see, not just that a command succeeded. A second test changes a room's message review handler
//! with `kubectl apply` and checks that the next message is reviewed by the new one (issue 15).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt as _;
use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_operator::controller::{self, Options};
use ivschat_operator::crd::{CONDITION_READY, ChatRoom};
use ivschat_testsupport::lambda::LambdaFunction;
use ivschat_testsupport::messaging::{
    DELIVERY_TIMEOUT, Socket, expect_quiet, next_entity, send, send_message, try_connect,
};
use ivschat_testsupport::operator::test_timing;
use ivschat_testsupport::{control_plane, create_namespace, emulator, serial};
use kube::api::Api;
use serde_json::{Value, json};
use testenv::ControlPlane;
use tokio::io::AsyncWriteExt as _;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-ivschat");
const NAMESPACE: &str = "chat-loop";
const ROOM: &str = "lobby";
/// How long a chat token can open a connection here (a minute on AWS): long enough for a loaded machine to
/// connect right after minting, short enough that the expired-token step costs the test little.
const TOKEN_VALIDITY: Duration = Duration::from_secs(4);
/// Upper bound for the operator to make the room Ready or apply a change.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// The test's world: the kube client, the emulator (with short-lived tokens) and the running operator.
struct World {
    control_plane: &'static ControlPlane,
    namespace: &'static str,
    rooms: Api<ChatRoom>,
    emulator: Emulator,
    operator: controller::OperatorHandle,
    /// PATH with the plugin's directory first, so that `kubectl ivschat` finds `kubectl-ivschat`.
    path: String,
    kubectl: PathBuf,
}

impl World {
    /// The world of a test in `namespace`, with an emulator of `config`.
    async fn new(namespace: &'static str, config: EmulatorConfig) -> World {
        let control_plane = control_plane();
        let kube = control_plane.client().await.expect("kube client");
        create_namespace(&kube, namespace).await;
        let emulator = emulator::start(config).await;
        let operator = controller::start(
            kube.clone(),
            emulator.sdk_client(),
            Options {
                timing: test_timing(Duration::from_secs(30)),
                namespace: Some(namespace.to_owned()),
                concurrency: 2,
                ..Options::default()
            },
        );
        let plugin_dir = Path::new(PLUGIN).parent().expect("the plugin's directory");
        World {
            control_plane,
            namespace,
            rooms: Api::namespaced(kube, namespace),
            emulator,
            operator,
            path: format!(
                "{}:{}",
                plugin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
            kubectl: ControlPlane::bin_dir()
                .expect("kubectl's directory")
                .join("kubectl"),
        }
    }

    /// `kubectl apply -f -` of the room's manifest with `maximumMessageLength`, as a user would.
    async fn apply_room(&self, maximum_message_length: u32) {
        self.apply_room_spec(&format!(
            "  maximumMessageLength: {maximum_message_length}\n"
        ))
        .await;
    }

    /// `kubectl apply -f -` of the room's manifest with `spec` (YAML lines indented by two spaces).
    async fn apply_room_spec(&self, spec: &str) {
        let manifest = format!(
            "apiVersion: ivschat.dev/v1alpha1\nkind: ChatRoom\nmetadata:\n  name: {ROOM}\n  namespace: {}\n\
             spec:\n{spec}",
            self.namespace
        );
        let mut apply = tokio::process::Command::from(self.control_plane.kubectl());
        apply
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = apply.spawn().expect("running kubectl apply");
        let mut stdin = child.stdin.take().expect("kubectl's stdin");
        stdin
            .write_all(manifest.as_bytes())
            .await
            .expect("writing the manifest");
        drop(stdin);
        let output = child.wait_with_output().await.expect("kubectl apply");
        assert!(
            output.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits until the operator has observed the room's current generation and reports it Ready; its ARN.
    async fn wait_until_synced(&self) -> String {
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let room = self.rooms.get(ROOM).await.expect("reading the ChatRoom");
            let status = room.status.clone().unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .any(|condition| condition.type_ == CONDITION_READY && condition.status == "True");
            if ready && status.observed_generation == room.metadata.generation {
                return status.arn.expect("a Ready ChatRoom has an ARN");
            }
            assert!(
                Instant::now() < deadline,
                "the ChatRoom was not synced in {SYNC_TIMEOUT:?}: generation {:?}, status {status:?}",
                room.metadata.generation
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kubectl ivschat ARGS -n NS --aws-endpoint-url URL -o json` through kubectl's plugin mechanism, with
    /// the test's kubeconfig and the emulator's credentials and nothing from the machine's AWS setup.
    async fn ivschat(&self, args: &[&str]) -> Value {
        let mut command = tokio::process::Command::new(&self.kubectl);
        command
            .arg("ivschat")
            .args(args)
            .args([
                "-n",
                self.namespace,
                "--aws-endpoint-url",
                &self.emulator.url(),
            ])
            .args(["-o", "json"]);
        emulator::isolate_aws_env(command.as_std_mut(), &self.emulator);
        command
            .env("PATH", &self.path)
            .env("KUBECONFIG", self.control_plane.kubeconfig_path());
        let output = command.output().await.expect("running kubectl ivschat");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kubectl ivschat {args:?} failed\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("kubectl ivschat printed no JSON ({error}): {stdout}"))
    }

    /// A token from `kubectl ivschat token`, with the plugin's whole JSON answer.
    async fn token(&self, user: &str, extra: &[&str]) -> (String, Value) {
        let mut args = vec!["token", ROOM, "--user-id", user];
        args.extend_from_slice(extra);
        let answer = self.ivschat(&args).await;
        assert_eq!(answer["userId"], user, "{answer}");
        let token = answer["token"].as_str().expect("a token").to_owned();
        (token, answer)
    }

    async fn connect(&self, token: &str) -> Socket {
        try_connect(&self.emulator.messaging_url(), Some(token))
            .await
            .expect("the messaging connection opens")
    }

    /// The handshake with `token` is refused: the HTTP status and the error message.
    async fn refusal(&self, token: &str) -> (StatusCode, String) {
        match try_connect(&self.emulator.messaging_url(), Some(token)).await {
            Err(WsError::Http(response)) => {
                let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or(b""))
                    .expect("a JSON error body");
                let message = body["ErrorMessage"].as_str().unwrap_or_default().to_owned();
                (response.status(), message)
            }
            Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
            Ok(_) => panic!("expected the handshake to be refused"),
        }
    }

    /// Waits until the room's open connections are those of `users`.
    async fn wait_for_connections(&self, arn: &str, users: &[&str]) {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        while self.emulator.chat_connections(arn) != users {
            assert!(
                Instant::now() < deadline,
                "connections {:?}, expected {users:?}",
                self.emulator.chat_connections(arn)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sends a `SEND_MESSAGE` with `content`.
async fn send_text(socket: &mut Socket, request_id: &str, content: &str) {
    send(socket, send_message(request_id, content)).await;
}

/// The entity without the fields the server generates per delivery (`SendTime`), after checking it is set.
fn without_send_time(mut entity: Value) -> Value {
    let send_time = entity
        .as_object_mut()
        .and_then(|fields| fields.remove("SendTime"));
    assert!(
        send_time
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|time| time.parse::<jiff::Timestamp>().is_ok()),
        "SendTime {send_time:?}"
    );
    entity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_room_applied_with_kubectl_carries_a_moderated_conversation() {
    // Token expiry and quiet periods are timed: this test had its binary to itself.
    let _alone = serial::alone().await;
    let world = World::new(
        NAMESPACE,
        EmulatorConfig {
            chat_token_validity: TOKEN_VALIDITY,
            ..EmulatorConfig::default()
        },
    )
    .await;

    // The ChatRoom becomes Ready, and the AWS room has the manifest's limit.
    world.apply_room(10).await;
    let arn = world.wait_until_synced().await;
    let aws_room = world
        .emulator
        .room(&arn)
        .expect("the operator created the room");
    assert_eq!(aws_room.maximum_message_length, 10);

    // Minted now and left unused: by the last step it has expired.
    let (expiring, expiring_answer) = world.token("eve", &["--capability", "SEND_MESSAGE"]).await;
    let expires: jiff::Timestamp = expiring_answer["tokenExpirationTime"]
        .as_str()
        .and_then(|time| time.parse().ok())
        .expect("tokenExpirationTime is a time");

    // Tokens for two users; both connect (each right after minting: tokens expire fast here).
    let (ada_token, ada_answer) = world
        .token(
            "ada",
            &[
                "--capability",
                "SEND_MESSAGE",
                "--attribute",
                "displayName=Ada",
            ],
        )
        .await;
    assert_eq!(ada_answer["roomArn"], arn.as_str());
    assert_eq!(ada_answer["capabilities"], json!(["SEND_MESSAGE"]));
    let mut ada = world.connect(&ada_token).await;
    let (bob_token, _) = world.token("bob", &["--capability", "SEND_MESSAGE"]).await;
    let mut bob = world.connect(&bob_token).await;
    // A viewer without SEND_MESSAGE.
    let (cy_token, cy_answer) = world.token("cy", &[]).await;
    assert_eq!(cy_answer["capabilities"], json!([]));
    let mut cy = world.connect(&cy_token).await;
    world
        .wait_for_connections(&arn, &["ada", "bob", "cy"])
        .await;

    // A token opens one connection only: reused while still valid, it is refused.
    let (status, message) = world.refusal(&ada_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("already used"), "{message}");
    world
        .wait_for_connections(&arn, &["ada", "bob", "cy"])
        .await;

    // Ada's message reaches Bob, with her user id and the attributes of her token.
    send_text(&mut ada, "m1", "hello bob").await;
    let echoed = next_entity(&mut ada).await;
    let message_id = echoed["Id"].as_str().expect("a message id").to_owned();
    let expected = json!({
        "Type": "MESSAGE", "Id": message_id, "Content": "hello bob", "Attributes": {},
        "Sender": {"UserId": "ada", "Attributes": {"displayName": "Ada"}},
    });
    let mut own = expected.clone();
    own["RequestId"] = json!("m1");
    assert_eq!(without_send_time(echoed), own);
    assert_eq!(without_send_time(next_entity(&mut bob).await), expected);
    assert_eq!(without_send_time(next_entity(&mut cy).await), expected);

    // `send-event` reaches everyone, with the id the plugin printed.
    let sent = world
        .ivschat(&[
            "send-event",
            ROOM,
            "--name",
            "app:quiz",
            "--attribute",
            "q=1",
        ])
        .await;
    let event_id = sent["id"].as_str().expect("an event id");
    for socket in [&mut ada, &mut bob, &mut cy] {
        assert_eq!(
            without_send_time(next_entity(socket).await),
            json!({"Type": "EVENT", "Id": event_id, "EventName": "app:quiz", "Attributes": {"q": "1"}})
        );
    }

    // `delete-message` reaches everyone with the message's id.
    let deleted = world
        .ivschat(&[
            "delete-message",
            ROOM,
            "--id",
            &message_id,
            "--reason",
            "spam",
        ])
        .await;
    assert_eq!(deleted["messageId"], message_id.as_str());
    for socket in [&mut ada, &mut bob, &mut cy] {
        assert_eq!(
            without_send_time(next_entity(socket).await),
            json!({"Type": "EVENT", "Id": deleted["id"], "EventName": "aws:DELETE_MESSAGE",
                   "Attributes": {"MessageId": message_id, "MessageID": message_id, "Reason": "spam"}})
        );
    }

    // `disconnect-user` tells everyone, then closes Bob's socket and only his.
    let disconnected = world
        .ivschat(&[
            "disconnect-user",
            ROOM,
            "--user-id",
            "bob",
            "--reason",
            "rude",
        ])
        .await;
    assert_eq!(disconnected, json!({"roomArn": arn, "userId": "bob"}));
    for socket in [&mut ada, &mut bob, &mut cy] {
        let event = without_send_time(next_entity(socket).await);
        assert_eq!(event["EventName"], "aws:DISCONNECT_USER", "{event}");
        assert_eq!(
            event["Attributes"],
            json!({"UserId": "bob", "Reason": "rude"})
        );
    }
    match tokio::time::timeout(DELIVERY_TIMEOUT, bob.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => {
            assert_eq!(frame.code, CloseCode::Away);
            assert_eq!(frame.reason.as_str(), "rude");
        }
        other => panic!("expected Bob's connection to close, got {other:?}"),
    }
    world.wait_for_connections(&arn, &["ada", "cy"]).await;

    // Longer than the room's limit of 10: refused, delivered to nobody.
    let long = "hello everyone";
    send_text(&mut ada, "m2", long).await;
    let refused = next_entity(&mut ada).await;
    assert_eq!(
        (
            &refused["Type"],
            &refused["ErrorCode"],
            &refused["RequestId"]
        ),
        (&json!("ERROR"), &json!(400), &json!("m2")),
        "{refused}"
    );
    expect_quiet(&mut cy).await;

    // `kubectl apply` raises the limit; once the operator has synced it, the same message goes through.
    world.apply_room(20).await;
    assert_eq!(world.wait_until_synced().await, arn, "the same AWS room");
    assert_eq!(
        world
            .emulator
            .room(&arn)
            .expect("the room")
            .maximum_message_length,
        20
    );
    send_text(&mut ada, "m3", long).await;
    let echoed = next_entity(&mut ada).await;
    assert_eq!(
        (&echoed["Type"], &echoed["Content"], &echoed["RequestId"]),
        (&json!("MESSAGE"), &json!(long), &json!("m3")),
        "{echoed}"
    );
    let received = next_entity(&mut cy).await;
    assert_eq!(received["Id"], echoed["Id"]);
    assert_eq!(received["Content"], long);
    assert_eq!(received["Sender"]["UserId"], "ada");

    // Cy's token has no SEND_MESSAGE: refused with 403, and Ada sees nothing.
    send_text(&mut cy, "m4", "me too").await;
    let forbidden = next_entity(&mut cy).await;
    assert_eq!(
        (
            &forbidden["Type"],
            &forbidden["ErrorCode"],
            &forbidden["RequestId"]
        ),
        (&json!("ERROR"), &json!(403), &json!("m4")),
        "{forbidden}"
    );
    expect_quiet(&mut ada).await;

    // The token minted at the start, never used, is refused once its expiration time has passed.
    let remaining = expires.duration_since(jiff::Timestamp::now());
    if remaining.is_positive() {
        let remaining = Duration::try_from(remaining).expect("a positive duration");
        tokio::time::sleep(remaining + Duration::from_millis(200)).await;
    }
    let (status, message) = world.refusal(&expiring).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("expired"), "{message}");
    world.wait_for_connections(&arn, &["ada", "cy"]).await;

    world.operator.stop().await.expect("stopping the operator");
    world.emulator.stop().await.expect("stopping the emulator");
}

/// Issue 15: a review handler set, swapped and removed with `kubectl apply` (operator → UpdateRoom) reviews the
/// very next message. The handlers are real Lambda functions (Python under the Lambda RIE), one endpoint each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_handler_changed_with_kubectl_reviews_the_next_message() {
    let _heavy = serial::beside_others().await;
    let moderate = LambdaFunction::prefixing("[moderated] ").await;
    let strict = LambdaFunction::start(
        r#"
def handler(event, context):
    record(event)
    return {"ReviewResult": "DENY", "Attributes": {"Reason": "strict: " + event["Content"]}}
"#,
    )
    .await;
    let mut config = EmulatorConfig::default();
    for (function, lambda) in [("moderate", &moderate), ("strict", &strict)] {
        config
            .lambda
            .function_endpoints
            .insert(function.into(), lambda.endpoint());
    }
    // A cold start on a loaded machine can take longer than AWS's 200 ms.
    config.lambda.review_timeout = Duration::from_secs(10);
    let world = World::new("review-loop", config).await;
    let handler = |function: &str| {
        format!(
            "  messageReviewHandler:\n    uri: arn:aws:lambda:us-west-2:123456789012:function:{function}\n    \
             fallbackResult: DENY\n"
        )
    };

    world.apply_room_spec(&handler("moderate")).await;
    let arn = world.wait_until_synced().await;
    let (ada_token, _) = world.token("ada", &["--capability", "SEND_MESSAGE"]).await;
    let mut ada = world.connect(&ada_token).await;
    let (cy_token, _) = world.token("cy", &[]).await;
    let mut cy = world.connect(&cy_token).await;
    world.wait_for_connections(&arn, &["ada", "cy"]).await;

    send_text(&mut ada, "r1", "first").await;
    let echoed = next_entity(&mut ada).await;
    assert_eq!(
        (&echoed["Type"], &echoed["Content"], &echoed["RequestId"]),
        (&json!("MESSAGE"), &json!("[moderated] first"), &json!("r1")),
        "{echoed}"
    );
    assert_eq!(next_entity(&mut cy).await["Content"], "[moderated] first");
    assert_eq!(moderate.events()[0]["RoomArn"], json!(arn));

    world.apply_room_spec(&handler("strict")).await;
    assert_eq!(world.wait_until_synced().await, arn, "the same AWS room");
    send_text(&mut ada, "r2", "second").await;
    let refused = next_entity(&mut ada).await;
    assert_eq!(
        (
            &refused["Type"],
            &refused["ErrorCode"],
            &refused["ErrorMessage"]
        ),
        (&json!("ERROR"), &json!(406), &json!("strict: second")),
        "{refused}"
    );
    expect_quiet(&mut cy).await;

    // No handler: delivered as sent, and neither function is invoked again.
    world.apply_room_spec("  maximumMessageLength: 100\n").await;
    assert_eq!(world.wait_until_synced().await, arn);
    assert!(
        world
            .emulator
            .room(&arn)
            .expect("the room")
            .message_review_handler
            .is_none(),
        "the operator removed the handler"
    );
    send_text(&mut ada, "r3", "third").await;
    assert_eq!(next_entity(&mut ada).await["Content"], "third");
    assert_eq!(next_entity(&mut cy).await["Content"], "third");
    // `kubectl ivschat send-message` by the ChatRoom's name: what it printed is what the room got.
    let sent = world.ivschat(&["send-message", ROOM, "fourth"]).await;
    assert_eq!(
        (&sent["type"], &sent["content"]),
        (&json!("message"), &json!("fourth")),
        "{sent}"
    );
    let received = next_entity(&mut cy).await;
    assert_eq!(
        (&received["Id"], &received["Content"]),
        (&sent["id"], &json!("fourth"))
    );
    assert_eq!(
        (moderate.events().len(), strict.events().len()),
        (1, 1),
        "one invocation each"
    );

    world.operator.stop().await.expect("stopping the operator");
    world.emulator.stop().await.expect("stopping the emulator");
}
