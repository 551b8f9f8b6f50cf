//! Acceptance: message review handlers as real Lambda functions. A Python handler written here runs under the
//! AWS Lambda Runtime Interface Emulator with `awslambdaric` (hack/lambda-rie.sh builds and caches both), the
//! emulator invokes it through the Lambda Invoke API, and real WebSocket clients (and the official JS client,
//! tests/messaging_js/review_client.cjs) see what the handler decided: delivered, rewritten, denied, and each
//! failure (a raise, an invalid answer, a handler slower than the timeout, a stopped endpoint) resolved by the
//! room's fallbackResult, ALLOW and DENY. The payload the handler received is read back from the handler's own
//! record of it.

use std::time::Duration;

use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::types::{ChatTokenCapability, FallbackResult, MessageReviewHandler};
use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_testsupport::command::repo_path;
use ivschat_testsupport::emulator::{self, create_room_with};
use ivschat_testsupport::lambda::LambdaFunction;
use ivschat_testsupport::messaging::{Socket, expect_quiet, next_entity, send};
use ivschat_testsupport::serial;
use serde_json::{Value, json};

use super::messaging::{ALL, connect, entity_answering, join, token};
use super::messaging_js::{install_js_client, mint_tokens};
use super::tail::{interrupt_and_expect_success, plugin_command, spawn_tail};

/// The handler under test: its verdict is chosen by the message's first word, and it records every event.
const HANDLER: &str = r#"
import time


def handler(event, context):
    record(event)
    content = event["Content"]
    word = content.split(" ")[0]
    if word == "deny":
        return {"ReviewResult": "DENY", "Attributes": {"Reason": "Denied: " + content}}
    if word == "rewrite":
        attributes = dict(event["Attributes"], reviewed="yes")
        return {"ReviewResult": "ALLOW", "Content": content.upper() + " [reviewed]", "Attributes": attributes}
    if word == "slow":
        time.sleep(3)
    if word == "raise":
        raise ValueError("the handler failed on purpose")
    if word == "invalid":
        return {"ReviewResult": "MAYBE", "Content": content}
    return {"ReviewResult": "ALLOW", "Content": content, "Attributes": event["Attributes"]}
"#;

const FUNCTION_ARN: &str = "arn:aws:lambda:us-west-2:123456789012:function:moderate";
/// Long enough for a cold start on a loaded machine; the timeout case sets AWS's 200 ms.
const GENEROUS_TIMEOUT: Duration = Duration::from_secs(10);

/// An emulator whose handlers run at `function`, waited for [`GENEROUS_TIMEOUT`].
async fn emulator_invoking(function: &LambdaFunction) -> Emulator {
    let mut config = EmulatorConfig::default();
    config.lambda.endpoint = Some(function.endpoint());
    config.lambda.review_timeout = GENEROUS_TIMEOUT;
    emulator::start(config).await
}

async fn room_with_handler(client: &Client, fallback: FallbackResult) -> String {
    create_room_with(client, |room| {
        room.maximum_message_length(100).message_review_handler(
            MessageReviewHandler::builder()
                .uri(FUNCTION_ARN)
                .fallback_result(fallback)
                .build(),
        )
    })
    .await
}

fn message(request_id: &str, content: &str, attributes: Value) -> Value {
    json!({"Action": "SEND_MESSAGE", "RequestId": request_id, "Content": content, "Attributes": attributes})
}

/// The sender and another client both get the MESSAGE (the sender's answering its request); returns it.
async fn delivered(sender: &mut Socket, other: &mut Socket, request_id: &str) -> Value {
    let echoed = entity_answering(sender, request_id).await;
    assert_eq!(echoed["Type"], "MESSAGE", "{echoed}");
    let seen = next_entity(other).await;
    assert_eq!(seen["Type"], "MESSAGE", "{seen}");
    assert_eq!(seen["Id"], echoed["Id"], "one message for everyone");
    for member in ["Content", "Attributes", "Sender"] {
        assert_eq!(
            seen[member], echoed[member],
            "{member} is the same for everyone"
        );
    }
    assert!(
        seen.get("RequestId").is_none(),
        "only the sender's copy answers its request: {seen}"
    );
    echoed
}

/// The sender gets an ERROR 406 answering its request, the other client nothing; returns the ErrorMessage.
async fn refused(sender: &mut Socket, other: &mut Socket, request_id: &str) -> String {
    let error = entity_answering(sender, request_id).await;
    assert_eq!(
        (&error["Type"], &error["ErrorCode"]),
        (&json!("ERROR"), &json!(406)),
        "{error}"
    );
    expect_quiet(other).await;
    error["ErrorMessage"]
        .as_str()
        .expect("an ErrorMessage")
        .to_owned()
}

#[tokio::test]
async fn a_review_handler_delivers_rewrites_and_denies_messages() {
    let _heavy = serial::beside_others().await;
    let function = LambdaFunction::start(HANDLER).await;
    let emulator = emulator_invoking(&function).await;
    let client = emulator.sdk_client();
    let room = room_with_handler(&client, FallbackResult::Deny).await;
    let ada_token = token(&client, &room, "ada", ALL, &[("displayName", "Ada")]).await;
    let mut ada = connect(&emulator, &ada_token).await;
    let mut bob = join(&emulator, &room, "bob", &[]).await;

    // ALLOW as sent.
    send(
        &mut ada,
        message("m1", "hello there", json!({"emoji": "wave"})),
    )
    .await;
    let hello = delivered(&mut ada, &mut bob, "m1").await;
    assert_eq!(hello["Content"], "hello there");
    assert_eq!(hello["Attributes"], json!({"emoji": "wave"}));
    assert_eq!(
        hello["Sender"],
        json!({"UserId": "ada", "Attributes": {"displayName": "Ada"}})
    );

    // The payload, field by field, as the handler received it.
    let events = function.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["RoomArn"], json!(room));
    assert_eq!(
        event["MessageId"], hello["Id"],
        "the delivered message's id"
    );
    assert_eq!(event["Content"], "hello there");
    assert_eq!(event["Attributes"], json!({"emoji": "wave"}));
    assert_eq!(event["Sender"]["UserId"], "ada");
    assert_eq!(event["Sender"]["Attributes"], json!({"displayName": "Ada"}));
    assert_eq!(event["Sender"]["Ip"], "127.0.0.1");
    let mut keys: Vec<&str> = event
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["Attributes", "Content", "MessageId", "RoomArn", "Sender"]
    );

    // ALLOW with another content and other attributes: everyone gets the rewrite.
    send(
        &mut ada,
        message("m2", "rewrite me", json!({"emoji": "fire"})),
    )
    .await;
    let rewritten = delivered(&mut ada, &mut bob, "m2").await;
    assert_eq!(rewritten["Content"], "REWRITE ME [reviewed]");
    assert_eq!(
        rewritten["Attributes"],
        json!({"emoji": "fire", "reviewed": "yes"})
    );

    // DENY: the sender is told the handler's reason; nobody gets the message.
    send(&mut ada, message("m3", "deny this", json!({}))).await;
    assert_eq!(refused(&mut ada, &mut bob, "m3").await, "Denied: deny this");
    expect_quiet(&mut ada).await;
    assert_eq!(function.events().len(), 3, "one invocation per message");

    // A handler that allows everything unchanged still sees messages without attributes as `{}`.
    let mut carol = third_sender(&emulator, &client, &room).await;
    send(&mut carol, message("m4", "plain", json!(null))).await;
    let plain = next_entity(&mut ada).await;
    assert_eq!(plain["Content"], "plain");
    assert_eq!(function.events()[3]["Attributes"], json!({}));

    assert_eq!(emulator.review_count("allowed"), 2);
    assert_eq!(emulator.review_count("rewritten"), 1);
    assert_eq!(emulator.review_count("denied"), 1);
    let text = emulator.metrics_text();
    assert!(
        text.contains(
            "ivschat_emulator_message_reviews_total{outcome=\"denied\",result=\"DENY\"} 1"
        ),
        "{text}"
    );
}

/// A third client that may send.
async fn third_sender(emulator: &Emulator, client: &Client, room: &str) -> Socket {
    let token = token(
        client,
        room,
        "carol",
        &[ChatTokenCapability::SendMessage],
        &[],
    )
    .await;
    connect(emulator, &token).await
}

#[tokio::test]
async fn failing_handlers_follow_the_rooms_fallback_result() {
    let _heavy = serial::beside_others().await;
    let mut function = LambdaFunction::start(HANDLER).await;
    let emulator = emulator_invoking(&function).await;
    let client = emulator.sdk_client();
    for fallback in [FallbackResult::Allow, FallbackResult::Deny] {
        let room = room_with_handler(&client, fallback.clone()).await;
        let mut ada = join(&emulator, &room, "ada", ALL).await;
        let mut bob = join(&emulator, &room, "bob", &[]).await;
        // Warm: the runtime's cold start is not what the timeout case measures.
        send(&mut ada, message("warm", "hello", json!({}))).await;
        delivered(&mut ada, &mut bob, "warm").await;

        for (request_id, content, outcome) in [
            ("raise", "raise now", "function_error"),
            ("invalid", "invalid answer", "invalid_response"),
            ("slow", "slow handler", "timeout"),
        ] {
            if request_id == "slow" {
                // AWS's own timeout: the handler takes 3 s.
                emulator
                    .update_settings(|settings| {
                        settings.lambda.review_timeout = Duration::from_millis(200)
                    })
                    .expect("settings");
            }
            let before = emulator.review_count(outcome);
            send(&mut ada, message(request_id, content, json!({"k": "v"}))).await;
            match fallback {
                FallbackResult::Allow => {
                    let message = delivered(&mut ada, &mut bob, request_id).await;
                    assert_eq!(
                        (&message["Content"], &message["Attributes"]),
                        (&json!(content), &json!({"k": "v"})),
                        "a fallback ALLOW delivers the message as sent"
                    );
                }
                _ => {
                    let refusal = refused(&mut ada, &mut bob, request_id).await;
                    assert!(refusal.contains("fallbackResult is DENY"), "{refusal}");
                }
            }
            assert_eq!(emulator.review_count(outcome), before + 1, "{outcome}");
        }
        emulator
            .update_settings(|settings| settings.lambda.review_timeout = GENEROUS_TIMEOUT)
            .expect("settings");
        // The slow invocation still holds the RIE (it serves one at a time); the next message waits for it.
        send(&mut ada, message("after", "hello again", json!({}))).await;
        delivered(&mut ada, &mut bob, "after").await;
    }
    assert!(
        function.log().contains("the handler failed on purpose"),
        "the raise happened in the handler:\n{}",
        function.log()
    );

    // A stopped endpoint: nothing listens any more.
    function.stop().await;
    for fallback in [FallbackResult::Allow, FallbackResult::Deny] {
        let room = room_with_handler(&client, fallback.clone()).await;
        let mut ada = join(&emulator, &room, "ada", ALL).await;
        let mut bob = join(&emulator, &room, "bob", &[]).await;
        send(&mut ada, message("stopped", "anyone there", json!({}))).await;
        if fallback == FallbackResult::Allow {
            delivered(&mut ada, &mut bob, "stopped").await;
        } else {
            let refusal = refused(&mut ada, &mut bob, "stopped").await;
            assert!(refusal.contains("could not be reached"), "{refusal}");
        }
    }
    assert_eq!(emulator.review_count("unreachable"), 2);
    let counts = emulator.review_counts();
    for outcome in [
        "function_error",
        "invalid_response",
        "timeout",
        "unreachable",
    ] {
        for result in ["ALLOW", "DENY"] {
            assert_eq!(
                counts.get(&(outcome.to_string(), result.to_string())),
                Some(&1),
                "{outcome} then {result}: {counts:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_handler_of_another_account_or_region_is_not_invoked() {
    let _heavy = serial::beside_others().await;
    let function = LambdaFunction::start(HANDLER).await;
    let emulator = emulator_invoking(&function).await;
    let client = emulator.sdk_client();
    let room = create_room_with(&client, |room| {
        room.message_review_handler(
            MessageReviewHandler::builder()
                .uri("arn:aws:lambda:eu-west-1:123456789012:function:moderate")
                .fallback_result(FallbackResult::Deny)
                .build(),
        )
    })
    .await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    let mut bob = join(&emulator, &room, "bob", &[]).await;
    send(&mut ada, message("elsewhere", "hello", json!({}))).await;
    let refusal = refused(&mut ada, &mut bob, "elsewhere").await;
    assert!(refusal.contains("another account or region"), "{refusal}");
    assert!(function.events().is_empty(), "the handler was not invoked");
    assert_eq!(emulator.review_count("other_account_or_region"), 1);
}

/// The handler is read from the room at each message: an UpdateRoom that swaps it takes effect at once.
#[tokio::test]
async fn each_message_is_reviewed_by_the_rooms_current_handler() {
    let _heavy = serial::beside_others().await;
    let function = LambdaFunction::start(HANDLER).await;
    let other = LambdaFunction::prefixing("[other] ").await;
    let mut config = EmulatorConfig::default();
    config.lambda.endpoint = Some(function.endpoint());
    config
        .lambda
        .function_endpoints
        .insert("other".into(), other.endpoint());
    config.lambda.review_timeout = GENEROUS_TIMEOUT;
    let emulator = emulator::start(config).await;
    let client = emulator.sdk_client();
    let room = room_with_handler(&client, FallbackResult::Deny).await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    let mut bob = join(&emulator, &room, "bob", &[]).await;

    send(&mut ada, message("1", "rewrite one", json!({}))).await;
    assert_eq!(
        delivered(&mut ada, &mut bob, "1").await["Content"],
        "REWRITE ONE [reviewed]"
    );
    let update = |uri: &str| {
        client
            .update_room()
            .identifier(&room)
            .message_review_handler(
                MessageReviewHandler::builder()
                    .uri(uri)
                    .fallback_result(FallbackResult::Deny)
                    .build(),
            )
            .send()
    };
    update("arn:aws:lambda:us-west-2:123456789012:function:other")
        .await
        .expect("update room");
    send(&mut ada, message("2", "rewrite two", json!({}))).await;
    assert_eq!(
        delivered(&mut ada, &mut bob, "2").await["Content"],
        "[other] rewrite two",
        "the function endpoint of `other`"
    );
    assert_eq!(other.events().len(), 1);
    assert_eq!(function.events().len(), 1);

    // No handler: delivered unreviewed.
    update("").await.expect("update room");
    send(&mut ada, message("3", "rewrite three", json!({}))).await;
    assert_eq!(
        delivered(&mut ada, &mut bob, "3").await["Content"],
        "rewrite three"
    );
    assert_eq!(other.events().len() + function.events().len(), 2);
}

/// The official JS client sees the same outcomes: sendMessage resolves with the delivered (possibly rewritten)
/// message, and rejects with errorCode 406 and the handler's reason, or the fallback's refusal.
#[tokio::test]
async fn the_official_js_client_sees_the_review_outcomes() {
    let _heavy = serial::beside_others().await;
    let node_modules = install_js_client().await;
    let function = LambdaFunction::start(HANDLER).await;
    let emulator = emulator_invoking(&function).await;
    let client = emulator.sdk_client();
    for (fallback, name) in [
        (FallbackResult::Allow, "ALLOW"),
        (FallbackResult::Deny, "DENY"),
    ] {
        let room = room_with_handler(&client, fallback).await;
        let mut tokens = serde_json::Map::new();
        for user in ["ada", "bob"] {
            tokens.insert(
                user.into(),
                mint_tokens(&client, &room, user, ALL, None).await,
            );
        }
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new("node")
                .arg(repo_path("tests/messaging_js/review_client.cjs"))
                .env("NODE_PATH", &node_modules)
                .env("IVSCHAT_URL", emulator.messaging_url())
                .env("IVSCHAT_TOKENS", Value::Object(tokens).to_string())
                .env("IVSCHAT_FALLBACK", name)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the JS client finishes in time")
        .expect("run node");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "the JS client failed:\n{stderr}");
        let done: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "the JS client printed {:?}: {error}\n{stderr}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        assert_eq!(done["step"], "done", "{done}");
        assert_eq!(done["rewritten"], "REWRITE ME [reviewed]", "{done}");
        assert_eq!(done["denied"]["errorCode"], 406, "{done}");
        assert_eq!(done["denied"]["errorMessage"], "Denied: deny me", "{done}");
        match name {
            "ALLOW" => assert_eq!(done["failed"]["content"], "raise it", "{done}"),
            _ => assert_eq!(done["failed"]["errorCode"], 406, "{done}"),
        }
    }
}

/// examples/review-handler/app.py (the README's handler) under the RIE.
async fn example_function() -> LambdaFunction {
    let source = std::fs::read_to_string(repo_path("examples/review-handler/app.py"))
        .expect("the example handler");
    LambdaFunction::start(&source).await
}

/// examples/review-handler/app.py, the README's handler, does what the README shows: links denied with the
/// reason, masked words rewritten and marked, the rest delivered unchanged.
#[tokio::test]
async fn the_example_handler_does_what_the_readme_shows() {
    let _heavy = serial::beside_others().await;
    let function = example_function().await;
    let emulator = emulator_invoking(&function).await;
    let client = emulator.sdk_client();
    let room = room_with_handler(&client, FallbackResult::Allow).await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    let mut bob = join(&emulator, &room, "bob", &[]).await;

    send(&mut ada, message("1", "hello everyone", json!({}))).await;
    let hello = delivered(&mut ada, &mut bob, "1").await;
    assert_eq!(
        (&hello["Content"], &hello["Attributes"]),
        (&json!("hello everyone"), &json!({}))
    );
    send(
        &mut ada,
        message("2", "what the heck, spam!", json!({"lang": "en"})),
    )
    .await;
    let masked = delivered(&mut ada, &mut bob, "2").await;
    assert_eq!(
        (&masked["Content"], &masked["Attributes"]),
        (
            &json!("what the ****, ****!"),
            &json!({"lang": "en", "moderated": "true"})
        )
    );
    send(&mut ada, message("3", "see https://example.com", json!({}))).await;
    assert_eq!(
        refused(&mut ada, &mut bob, "3").await,
        "Links are not allowed in this room"
    );
    assert_eq!(emulator.review_count("allowed"), 1);
    assert_eq!(emulator.review_count("rewritten"), 1);
    assert_eq!(emulator.review_count("denied"), 1);
}

/// `kubectl ivschat send-message ARGS --arn ROOM --aws-endpoint-url EMULATOR` in the emulator's isolated AWS
/// environment.
async fn send_message_command(
    emulator: &Emulator,
    room: &str,
    args: &[&str],
) -> std::process::Output {
    let command = plugin_command(emulator, &[&["send-message", "--arn", room], args].concat());
    tokio::process::Command::from(command)
        .output()
        .await
        .expect("run kubectl ivschat send-message")
}

/// The README's moderation loop: the example handler under the RIE, `kubectl ivschat tail` watching, and
/// `kubectl ivschat send-message` showing a delivered, a rewritten and a refused message.
#[tokio::test]
async fn send_message_shows_what_the_review_handler_did_and_tail_agrees() {
    let _heavy = serial::beside_others().await;
    let function = example_function().await;
    let emulator = emulator_invoking(&function).await;
    let client = emulator.sdk_client();
    let room = room_with_handler(&client, FallbackResult::Deny).await;
    let (mut tail, mut lines, mut notes) = spawn_tail(&emulator, &["--arn", &room, "-o", "json"]);
    notes.until("connected to room").await;

    // Delivered as sent: the JSON line of tail's schema, with the message's and the sender's attributes.
    let sent = send_message_command(
        &emulator,
        &room,
        &[
            "hello everyone",
            "--attribute",
            "lang=en",
            "--sender-attribute",
            "displayName=Ops",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let line: Value = serde_json::from_slice(&sent.stdout).expect("one JSON line");
    assert_eq!(line["type"], "message", "{line}");
    assert_eq!(line["content"], "hello everyone");
    assert_eq!(line["attributes"], json!({"lang": "en"}));
    let user = line["sender"]["userId"].as_str().expect("a sender");
    assert!(user.starts_with("kubectl-ivschat-send-"), "{line}");
    assert_eq!(line["sender"]["attributes"], json!({"displayName": "Ops"}));
    assert_eq!(
        lines.json("the message at tail").await,
        line,
        "tail saw the same"
    );

    // Rewritten: what everyone got, readable by default.
    let sent = send_message_command(&emulator, &room, &["what the heck, spam!"]).await;
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let readable = String::from_utf8_lossy(&sent.stdout);
    assert!(
        readable.contains("what the ****, ****!") && readable.contains("moderated=true"),
        "{readable}"
    );
    let at_tail = lines.json("the rewrite at tail").await;
    assert_eq!(at_tail["content"], "what the ****, ****!");
    assert_eq!(at_tail["attributes"], json!({"moderated": "true"}));

    // Refused by the handler: exit 5, the reason on stderr, nothing at tail.
    let sent = send_message_command(&emulator, &room, &["see https://example.com"]).await;
    assert_eq!(sent.status.code(), Some(5));
    assert!(sent.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&sent.stderr);
    assert!(
        stderr.contains(
            "message not delivered: 406 Not Acceptable (refused in message review): Links are not allowed in this room"
        ),
        "{stderr}"
    );

    // Refused before review (longer than the room allows): 400; and invalid arguments fail before any call.
    let too_long = "x".repeat(101);
    let sent = send_message_command(&emulator, &room, &[&too_long]).await;
    assert_eq!(sent.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&sent.stderr).contains("400 Bad Request"),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let tokens = emulator.request_total("CreateChatToken");
    for args in [
        &[""][..],
        &["hi", "--attribute", "novalue"],
        &["hi", "-o", "yaml"],
    ] {
        let sent = send_message_command(&emulator, &room, args).await;
        assert_eq!(
            sent.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }
    assert_eq!(
        emulator.request_total("CreateChatToken"),
        tokens,
        "no call for invalid arguments"
    );

    interrupt_and_expect_success(&mut tail).await;
    let lines_left = lines.0.try_recv().ok();
    assert_eq!(lines_left, None, "tail printed nothing refused");
    assert_eq!(emulator.review_count("denied"), 1);
    assert_eq!(emulator.review_count("rewritten"), 1);
}
