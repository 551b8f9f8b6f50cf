//! Acceptance tests of the emulator's chat Messaging API: real WebSocket clients (tokio-tungstenite) on the
//! emulator's own listener (`ws://127.0.0.1:PORT`), chat tokens and room settings through the real SDK over HTTP.
//!
//! Every test starts its own emulator on `127.0.0.1:0`. Time-dependent behaviour (token expiry, session expiry)
//! uses the emulator's test knobs so the suite stays fast.

use std::time::Duration;

use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::types::{ChatTokenCapability, FallbackResult, MessageReviewHandler};
use futures_util::{SinkExt as _, StreamExt as _};
use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_testsupport::emulator::{self, create_room_with};
use ivschat_testsupport::messaging::{
    DELIVERY_TIMEOUT, QUIET_PERIOD, Socket, expect_quiet, next_entity, send, send_message,
    try_connect,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

// ---- harness ---------------------------------------------------------------------------------------------------

/// A fresh emulator with default settings, an SDK client for it and one room (its ARN).
async fn emulator_with_room() -> (Emulator, Client, String) {
    configured_emulator_with_room(EmulatorConfig::default()).await
}

/// Like [`emulator_with_room`], with `config`.
async fn configured_emulator_with_room(config: EmulatorConfig) -> (Emulator, Client, String) {
    let emulator = emulator::start(config).await;
    let client = emulator.sdk_client();
    let room = create_room(&client).await;
    (emulator, client, room)
}

async fn create_room(client: &Client) -> String {
    create_room_with(client, |room| room).await
}

pub(crate) const ALL: &[ChatTokenCapability] = &[
    ChatTokenCapability::SendMessage,
    ChatTokenCapability::DeleteMessage,
    ChatTokenCapability::DisconnectUser,
];

pub(crate) async fn token(
    client: &Client,
    room: &str,
    user: &str,
    capabilities: &[ChatTokenCapability],
    attributes: &[(&str, &str)],
) -> String {
    let mut request = client
        .create_chat_token()
        .room_identifier(room)
        .user_id(user)
        .set_capabilities(Some(capabilities.to_vec()));
    for (key, value) in attributes {
        request = request.attributes(*key, *value);
    }
    request
        .send()
        .await
        .expect("create chat token")
        .token()
        .expect("token")
        .to_string()
}

pub(crate) async fn connect(emulator: &Emulator, token: &str) -> Socket {
    try_connect(&emulator.messaging_url(), Some(token))
        .await
        .expect("the messaging connection opens")
}

/// A user connected to a room with the given capabilities.
pub(crate) async fn join(
    emulator: &Emulator,
    room: &str,
    user: &str,
    capabilities: &[ChatTokenCapability],
) -> Socket {
    let client = emulator.sdk_client();
    let token = token(&client, room, user, capabilities, &[]).await;
    connect(emulator, &token).await
}

/// The HTTP status of a refused handshake.
async fn refused_status(url: &str, token: Option<&str>) -> StatusCode {
    match try_connect(url, token).await {
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let body: Value = serde_json::from_str(&body).expect("a JSON error body");
            assert_eq!(body["ErrorCode"], response.status().as_u16());
            assert!(body["ErrorMessage"].is_string(), "{body}");
            response.status()
        }
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected the handshake to be refused"),
    }
}

/// The connection is open and its messages are accepted.
async fn assert_still_served(socket: &mut Socket) {
    send(socket, send_message("still-served", "still here")).await;
    let echoed = entity_answering(socket, "still-served").await;
    assert_eq!(echoed["Type"], "MESSAGE", "{echoed}");
}

/// The next entity that answers `request_id` (others are skipped).
pub(crate) async fn entity_answering(socket: &mut Socket, request_id: &str) -> Value {
    loop {
        let entity = next_entity(socket).await;
        if entity.get("RequestId") == Some(&json!(request_id)) {
            return entity;
        }
    }
}

/// Reads until the server's close frame and returns it; panics on entities or a close without a frame.
async fn expect_close(socket: &mut Socket) -> CloseFrame {
    loop {
        let frame = tokio::time::timeout(DELIVERY_TIMEOUT, socket.next())
            .await
            .expect("the connection closes in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return frame,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn is_aws_id(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `2022-10-11T12:56:41.113Z`: UTC with milliseconds.
fn is_send_time(value: &Value) -> bool {
    value.as_str().is_some_and(|text| {
        text.len() == 24 && text.ends_with('Z') && text.parse::<jiff::Timestamp>().is_ok()
    })
}

// ---- messages and events ---------------------------------------------------------------------------------------

#[tokio::test]
async fn two_users_receive_a_message_with_the_sender_and_its_attributes() {
    let (emulator, client, room) = emulator_with_room().await;
    let ada_token = token(
        &client,
        &room,
        "ada",
        &[ChatTokenCapability::SendMessage],
        &[("displayName", "Ada")],
    )
    .await;
    let mut ada = connect(&emulator, &ada_token).await;
    let mut bob = join(&emulator, &room, "bob", &[]).await;
    assert_eq!(emulator.chat_connections(&room), ["ada", "bob"]);

    // The JS client's wire form: Action, RequestId, then the fields.
    send(
        &mut ada,
        json!({"Action": "SEND_MESSAGE", "RequestId": "c56d1f1e-8a1c-4c55-9f3e-2b1a0d2c9e11",
               "Content": "hello", "Attributes": {"emoji": "wave"}}),
    )
    .await;
    let echoed = next_entity(&mut ada).await;
    let received = next_entity(&mut bob).await;
    assert!(is_aws_id(&echoed["Id"]), "{echoed}");
    assert!(is_send_time(&echoed["SendTime"]), "{echoed}");
    let expected = |request_id: Option<&str>| {
        let mut entity = json!({
            "Type": "MESSAGE", "Id": echoed["Id"], "Content": "hello", "Attributes": {"emoji": "wave"},
            "SendTime": echoed["SendTime"], "Sender": {"UserId": "ada", "Attributes": {"displayName": "Ada"}}
        });
        if let Some(request_id) = request_id {
            entity["RequestId"] = json!(request_id);
        }
        entity
    };
    assert_eq!(
        echoed,
        expected(Some("c56d1f1e-8a1c-4c55-9f3e-2b1a0d2c9e11")),
        "the sender's copy answers its request"
    );
    assert_eq!(received, expected(None), "the other user's copy");

    // A request without RequestId still gets its echo; every entity has its own id.
    send(
        &mut ada,
        json!({"Action": "SEND_MESSAGE", "Content": "again"}),
    )
    .await;
    let second = next_entity(&mut ada).await;
    assert!(second.get("RequestId").is_none(), "{second}");
    assert_eq!(second["Attributes"], json!({}));
    assert_ne!(second["Id"], echoed["Id"]);
    assert_eq!(next_entity(&mut bob).await["Content"], "again");

    // The upgrade is not an API operation: no request was counted for it.
    assert_eq!(emulator.request_total("unknown"), 0);
    assert_eq!(emulator.request_total("CreateChatToken"), 2);
    assert_eq!(emulator.metrics().len(), 2, "{:?}", emulator.metrics());
}

#[tokio::test]
async fn connections_only_receive_their_own_room() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let first = create_room(&client).await;
    let second = create_room(&client).await;
    let mut ada = join(&emulator, &first, "ada", ALL).await;
    let mut bob = join(&emulator, &second, "bob", ALL).await;
    send(&mut ada, send_message("r1", "only here")).await;
    assert_eq!(next_entity(&mut ada).await["Content"], "only here");
    client
        .send_event()
        .room_identifier(&first)
        .event_name("app:PING")
        .send()
        .await
        .expect("send event");
    assert_eq!(next_entity(&mut ada).await["EventName"], "app:PING");
    expect_quiet(&mut bob).await;
}

#[tokio::test]
async fn send_event_reaches_every_connection_of_the_room() {
    let (emulator, client, room) = emulator_with_room().await;
    let mut ada = join(&emulator, &room, "ada", &[]).await;
    let mut bob = join(&emulator, &room, "bob", &[]).await;
    let sent = client
        .send_event()
        .room_identifier(&room)
        .event_name("app:DELETE_BY_USER")
        .attributes("userId", "mallory")
        .send()
        .await
        .expect("send event");
    let id = sent.id().expect("event id");
    for socket in [&mut ada, &mut bob] {
        let event = next_entity(socket).await;
        assert!(is_send_time(&event["SendTime"]), "{event}");
        assert_eq!(
            event,
            json!({"Type": "EVENT", "Id": id, "EventName": "app:DELETE_BY_USER",
                   "Attributes": {"userId": "mallory"}, "SendTime": event["SendTime"]}),
            "no RequestId for control-plane events"
        );
    }
}

#[tokio::test]
async fn delete_message_from_the_api_and_the_socket_reaches_everyone() {
    let (emulator, client, room) = emulator_with_room().await;
    let mut moderator = join(&emulator, &room, "mod", ALL).await;
    let mut viewer = join(&emulator, &room, "viewer", &[]).await;

    send(&mut moderator, send_message("m1", "spam")).await;
    let message_id = next_entity(&mut moderator).await["Id"].clone();
    assert_eq!(next_entity(&mut viewer).await["Id"], message_id);

    // From the control plane: no RequestId; the event id is DeleteMessage's operation id.
    let deleted = client
        .delete_message()
        .room_identifier(&room)
        .id(message_id.as_str().expect("id"))
        .reason("spam")
        .send()
        .await
        .expect("delete message");
    for socket in [&mut moderator, &mut viewer] {
        let event = next_entity(socket).await;
        assert_eq!(event["Type"], "EVENT");
        assert_eq!(event["Id"], deleted.id().expect("operation id"));
        assert_eq!(event["EventName"], "aws:DELETE_MESSAGE");
        assert_eq!(
            event["Attributes"],
            json!({"MessageId": message_id, "MessageID": message_id, "Reason": "spam"})
        );
        assert!(event.get("RequestId").is_none(), "{event}");
    }

    // From the socket: the requester's copy carries its RequestId; Reason is optional.
    send(
        &mut moderator,
        json!({"Action": "DELETE_MESSAGE", "RequestId": "d1", "Id": message_id}),
    )
    .await;
    let own = next_entity(&mut moderator).await;
    let other = next_entity(&mut viewer).await;
    assert_eq!(own["RequestId"], "d1");
    assert!(other.get("RequestId").is_none(), "{other}");
    for event in [&own, &other] {
        assert_eq!(event["EventName"], "aws:DELETE_MESSAGE");
        assert_eq!(
            event["Attributes"],
            json!({"MessageId": message_id, "MessageID": message_id})
        );
        assert!(is_aws_id(&event["Id"]) && is_send_time(&event["SendTime"]));
    }
    assert_eq!(own["Id"], other["Id"]);

    // A malformed message id is refused with the request's id.
    send(
        &mut moderator,
        json!({"Action": "DELETE_MESSAGE", "RequestId": "d2", "Id": "short"}),
    )
    .await;
    let error = next_entity(&mut moderator).await;
    assert_eq!(
        (&error["Type"], &error["ErrorCode"], &error["RequestId"]),
        (&json!("ERROR"), &json!(400), &json!("d2"))
    );
    expect_quiet(&mut viewer).await;
}

#[tokio::test]
async fn disconnect_user_from_the_api_closes_all_of_that_users_connections_and_only_theirs() {
    let (emulator, client, room) = emulator_with_room().await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    // The JS client holds two connections while it refreshes its token.
    let mut carol_first = join(&emulator, &room, "carol", ALL).await;
    let mut carol_second = join(&emulator, &room, "carol", ALL).await;
    assert_eq!(emulator.chat_connections(&room), ["ada", "carol", "carol"]);

    client
        .disconnect_user()
        .room_identifier(&room)
        .user_id("carol")
        .reason("Spam")
        .send()
        .await
        .expect("disconnect user");
    for socket in [&mut ada, &mut carol_first, &mut carol_second] {
        let event = next_entity(socket).await;
        assert_eq!(event["EventName"], "aws:DISCONNECT_USER");
        assert_eq!(
            event["Attributes"],
            json!({"UserId": "carol", "Reason": "Spam"})
        );
        assert!(event.get("RequestId").is_none(), "{event}");
    }
    for socket in [&mut carol_first, &mut carol_second] {
        let frame = expect_close(socket).await;
        assert_eq!(frame.code, CloseCode::Away);
        assert_eq!(frame.reason.as_str(), "Spam");
    }

    // Ada is still connected and served.
    send(&mut ada, send_message("after", "still here")).await;
    assert_eq!(next_entity(&mut ada).await["Content"], "still here");
    wait_for_connections(&emulator, &room, &["ada"]).await;
}

#[tokio::test]
async fn disconnect_user_from_the_socket_answers_the_requester_and_closes_the_target() {
    let (emulator, _, room) = emulator_with_room().await;
    let mut moderator = join(&emulator, &room, "mod", ALL).await;
    let mut bob = join(&emulator, &room, "bob", &[]).await;
    let mut viewer = join(&emulator, &room, "viewer", &[]).await;

    send(
        &mut moderator,
        json!({"Action": "DISCONNECT_USER", "RequestId": "k1", "UserId": "bob"}),
    )
    .await;
    let own = next_entity(&mut moderator).await;
    assert_eq!(own["RequestId"], "k1");
    assert_eq!(own["EventName"], "aws:DISCONNECT_USER");
    assert_eq!(own["Attributes"], json!({"UserId": "bob"}));
    for socket in [&mut bob, &mut viewer] {
        let event = next_entity(socket).await;
        assert_eq!(
            (event["Id"].clone(), event.get("RequestId")),
            (own["Id"].clone(), None)
        );
    }
    let frame = expect_close(&mut bob).await;
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(frame.reason.as_str(), "Disconnected by moderator");
    expect_quiet(&mut viewer).await;
    wait_for_connections(&emulator, &room, &["mod", "viewer"]).await;
}

async fn wait_for_connections(emulator: &Emulator, room: &str, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    while emulator.chat_connections(room) != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections {:?}, expected {expected:?}",
            emulator.chat_connections(room)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- limits ----------------------------------------------------------------------------------------------------

#[tokio::test]
async fn message_length_counts_code_points_and_follows_update_room() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let room = create_room_with(&client, |room| room.maximum_message_length(5)).await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;

    // Five two-byte (and then four-byte) characters: ten or twenty bytes, but exactly the limit.
    for content in ["ééééé", "😀😀😀😀😀"] {
        send(&mut ada, send_message("fits", content)).await;
        let echoed = next_entity(&mut ada).await;
        assert_eq!(
            (&echoed["Type"], &echoed["Content"]),
            (&json!("MESSAGE"), &json!(content))
        );
    }
    send(&mut ada, send_message("too-long", "éééééé")).await;
    let error = next_entity(&mut ada).await;
    assert_eq!(error["Type"], "ERROR");
    assert_eq!(error["ErrorCode"], 400);
    assert_eq!(error["RequestId"], "too-long");
    assert!(is_aws_id(&error["Id"]), "{error}");
    assert!(
        error["ErrorMessage"]
            .as_str()
            .is_some_and(|m| m.contains('5')),
        "{error}"
    );

    // The operator changes the room through UpdateRoom: the next message sees the new limit.
    client
        .update_room()
        .identifier(&room)
        .maximum_message_length(6)
        .send()
        .await
        .expect("update room");
    send(&mut ada, send_message("now-fits", "éééééé")).await;
    let echoed = next_entity(&mut ada).await;
    assert_eq!(
        (&echoed["Type"], &echoed["RequestId"]),
        (&json!("MESSAGE"), &json!("now-fits"))
    );

    send(&mut ada, send_message("empty", "")).await;
    assert_eq!(next_entity(&mut ada).await["ErrorCode"], 400);
    send(
        &mut ada,
        json!({"Action": "SEND_MESSAGE", "RequestId": "big", "Content": "x",
               "Attributes": {"k": "v".repeat(1100)}}),
    )
    .await;
    let error = next_entity(&mut ada).await;
    assert_eq!(
        (&error["ErrorCode"], &error["RequestId"]),
        (&json!(413), &json!("big"))
    );
    send(
        &mut ada,
        json!({"Action": "SEND_MESSAGE", "RequestId": "num", "Content": "x", "Attributes": {"k": 1}}),
    )
    .await;
    assert_eq!(next_entity(&mut ada).await["ErrorCode"], 400);
}

#[tokio::test]
async fn the_room_message_rate_is_enforced_across_connections_with_its_current_setting() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let room = create_room_with(&client, |room| room.maximum_message_rate_per_second(2)).await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    let mut bob = join(&emulator, &room, "bob", ALL).await;

    send(&mut ada, send_message("a1", "one")).await;
    send(&mut bob, send_message("b1", "two")).await;
    send(&mut ada, send_message("a2", "three")).await;
    // Ada sees both messages and her refusal (in some order); the refusal is the third request.
    let mut ada_entities = Vec::new();
    for _ in 0..3 {
        ada_entities.push(next_entity(&mut ada).await);
    }
    let refusal = ada_entities
        .iter()
        .find(|entity| entity["Type"] == "ERROR")
        .expect("a refusal");
    assert_eq!(
        (&refusal["ErrorCode"], &refusal["RequestId"]),
        (&json!(429), &json!("a2"))
    );
    assert_eq!(
        ada_entities
            .iter()
            .filter(|entity| entity["Type"] == "MESSAGE")
            .count(),
        2
    );

    // Raising the limit applies to the very next message.
    client
        .update_room()
        .identifier(&room)
        .maximum_message_rate_per_second(3)
        .send()
        .await
        .expect("update room");
    send(&mut ada, send_message("a3", "four")).await;
    let accepted = entity_answering(&mut ada, "a3").await;
    assert_eq!(accepted["Type"], "MESSAGE");

    // After a second the window is free again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut ada, send_message("a4", "five")).await;
    let accepted = entity_answering(&mut ada, "a4").await;
    assert_eq!(accepted["Type"], "MESSAGE");
}

#[tokio::test]
async fn actions_need_their_capability() {
    let (emulator, _, room) = emulator_with_room().await;
    let mut viewer = join(&emulator, &room, "viewer", &[]).await;
    let mut other = join(&emulator, &room, "other", &[]).await;
    for (request_id, action) in [
        ("s", json!({"Action": "SEND_MESSAGE", "Content": "hi"})),
        (
            "d",
            json!({"Action": "DELETE_MESSAGE", "Id": "AYk6xKitV4On"}),
        ),
        ("k", json!({"Action": "DISCONNECT_USER", "UserId": "other"})),
    ] {
        let mut action = action;
        action["RequestId"] = json!(request_id);
        send(&mut viewer, action).await;
        let error = next_entity(&mut viewer).await;
        assert_eq!(
            (&error["Type"], &error["ErrorCode"], &error["RequestId"]),
            (&json!("ERROR"), &json!(403), &json!(request_id)),
            "{error}"
        );
    }
    expect_quiet(&mut other).await;

    // A token with only DELETE_MESSAGE cannot send.
    let mut deleter = join(
        &emulator,
        &room,
        "deleter",
        &[ChatTokenCapability::DeleteMessage],
    )
    .await;
    send(&mut deleter, send_message("s2", "hi")).await;
    assert_eq!(next_entity(&mut deleter).await["ErrorCode"], 403);
}

#[tokio::test]
async fn malformed_frames_get_a_400_error() {
    let (emulator, _, room) = emulator_with_room().await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;

    ada.send(Message::text("not json")).await.expect("send");
    let error = next_entity(&mut ada).await;
    assert_eq!(
        (&error["ErrorCode"], error.get("RequestId")),
        (&json!(400), None)
    );
    // Each frame with the members the error must have (`Content is required` for the last one).
    let cases = [
        (json!(["an", "array"]), json!({"ErrorCode": 400})),
        (
            json!({"Action": "SHOUT", "RequestId": "x1"}),
            json!({"ErrorCode": 400, "RequestId": "x1"}),
        ),
        (
            json!({"RequestId": "x2", "Content": "no action"}),
            json!({"RequestId": "x2"}),
        ),
        (
            json!({"Action": "SEND_MESSAGE", "RequestId": 7, "Content": "x"}),
            json!({"ErrorCode": 400}),
        ),
        (
            json!({"Action": "SEND_MESSAGE", "RequestId": "x3"}),
            json!({"ErrorCode": 400}),
        ),
    ];
    for (frame, expected) in cases {
        send(&mut ada, frame.clone()).await;
        let error = next_entity(&mut ada).await;
        for (member, value) in expected.as_object().expect("members") {
            assert_eq!(
                &error[member], value,
                "{member} of the answer to {frame}: {error}"
            );
        }
    }
    ada.send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    assert_eq!(next_entity(&mut ada).await["ErrorCode"], 400);

    // The connection is still usable.
    assert_still_served(&mut ada).await;
}

/// Without a Lambda endpoint (the default) a review handler cannot run, so its room's fallbackResult decides
/// every message (tests/emulator/review.rs runs real handlers).
#[tokio::test]
async fn without_a_lambda_endpoint_the_fallback_result_decides() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let handler = |fallback| {
        MessageReviewHandler::builder()
            .uri("arn:aws:lambda:us-west-2:123456789012:function:review")
            .fallback_result(fallback)
            .build()
    };
    let room = create_room_with(&client, |room| {
        room.message_review_handler(handler(FallbackResult::Deny))
    })
    .await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    let mut bob = join(&emulator, &room, "bob", &[]).await;
    send(&mut ada, send_message("r1", "reviewed")).await;
    let error = next_entity(&mut ada).await;
    assert_eq!(
        (&error["ErrorCode"], &error["RequestId"]),
        (&json!(406), &json!("r1"))
    );
    let refusal = error["ErrorMessage"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("fallbackResult is DENY") && refusal.contains("--lambda-endpoint"),
        "the sender is told why: {error}"
    );
    expect_quiet(&mut bob).await;
    assert_eq!(emulator.review_count("no_endpoint"), 1);

    client
        .update_room()
        .identifier(&room)
        .message_review_handler(handler(FallbackResult::Allow))
        .send()
        .await
        .expect("update room");
    assert_still_served(&mut ada).await;
    assert_eq!(next_entity(&mut bob).await["Content"], "still here");
    assert_eq!(emulator.review_count("no_endpoint"), 2);
}

// ---- tokens, sessions and lifecycle -------------------------------------------------------------------------------

#[tokio::test]
async fn handshakes_without_a_valid_token_are_refused() {
    let (emulator, client, room) = emulator_with_room().await;
    let url = emulator.messaging_url();

    assert_eq!(refused_status(&url, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused_status(&url, Some("AQICAHmadeup")).await,
        StatusCode::UNAUTHORIZED
    );

    // Single use: the second connection with the same token is refused, the first stays open.
    let reused = token(&client, &room, "ada", ALL, &[]).await;
    let mut first = connect(&emulator, &reused).await;
    assert_eq!(
        refused_status(&url, Some(&reused)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_still_served(&mut first).await;

    // The room was deleted before the connection opened.
    let orphan = token(&client, &room, "carol", ALL, &[]).await;
    client
        .delete_room()
        .identifier(&room)
        .send()
        .await
        .expect("delete room");
    assert_eq!(
        refused_status(&url, Some(&orphan)).await,
        StatusCode::NOT_FOUND
    );

    // Refused handshakes are not API operations either.
    assert_eq!(emulator.request_total("unknown"), 0);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    // Tokens can be redeemed for 300 ms here (a minute on AWS).
    let (emulator, client, room) = configured_emulator_with_room(EmulatorConfig {
        chat_token_validity: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    let expiring = token(&client, &room, "bob", ALL, &[]).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        refused_status(&emulator.messaging_url(), Some(&expiring)).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_connection_closes_when_the_session_expires() {
    // One "minute" of sessionDurationInMinutes lasts 600 ms here.
    let (emulator, client, room) = configured_emulator_with_room(EmulatorConfig {
        chat_session_minute: Duration::from_millis(600),
        ..EmulatorConfig::default()
    })
    .await;
    let issued = client
        .create_chat_token()
        .room_identifier(&room)
        .user_id("ada")
        .capabilities(ChatTokenCapability::SendMessage)
        .session_duration_in_minutes(1)
        .send()
        .await
        .expect("token");
    let session_expiry = issued
        .session_expiration_time()
        .expect("session expiry")
        .to_millis()
        .expect("millis");
    let mut ada = connect(&emulator, issued.token().expect("token")).await;
    assert_eq!(emulator.chat_connections(&room), ["ada"]);

    // Nothing arrives before the session ends; then the expiry signal, then a clean close.
    let expired = next_entity(&mut ada).await;
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(
        now >= session_expiry,
        "not before sessionExpirationTime ({now} < {session_expiry})"
    );
    assert_eq!(
        (
            &expired["Type"],
            &expired["ErrorCode"],
            expired.get("RequestId")
        ),
        (&json!("ERROR"), &json!(401), None),
        "the SDK's connection-expired signal"
    );
    assert_eq!(expect_close(&mut ada).await.code, CloseCode::Normal);
    wait_for_connections(&emulator, &room, &[]).await;
}

#[tokio::test]
async fn deleting_the_room_closes_its_connections() {
    let (emulator, client, room) = emulator_with_room().await;
    let other_room = create_room(&client).await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    let mut bob = join(&emulator, &room, "bob", ALL).await;
    let mut elsewhere = join(&emulator, &other_room, "eve", ALL).await;
    client
        .delete_room()
        .identifier(&room)
        .send()
        .await
        .expect("delete room");
    for socket in [&mut ada, &mut bob] {
        let error = next_entity(socket).await;
        assert_eq!(
            (&error["Type"], &error["ErrorCode"]),
            (&json!("ERROR"), &json!(404))
        );
        assert_eq!(expect_close(socket).await.code, CloseCode::Away);
    }
    wait_for_connections(&emulator, &room, &[]).await;
    assert_still_served(&mut elsewhere).await;
}

#[tokio::test]
async fn the_signed_api_and_the_admin_api_still_work_beside_the_socket() {
    let (emulator, client, room) = emulator_with_room().await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    // API requests on the same listener while a socket is open.
    let listed = client.list_rooms().send().await.expect("list rooms");
    assert_eq!(listed.rooms().len(), 1);
    let health = raw_http(
        &emulator,
        "GET /_emulator/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let health: Value =
        serde_json::from_str(health.split("\r\n\r\n").nth(1).expect("a body")).expect("JSON");
    assert_eq!(health, json!({"status": "ok"}));
    // A malformed handshake on the root path is refused in the messaging format, not as an API error.
    let malformed = raw_http(
        &emulator,
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
    let body: Value =
        serde_json::from_str(malformed.split("\r\n\r\n").nth(1).expect("a body")).expect("JSON");
    assert_eq!(body["ErrorCode"], 400, "{body}");
    assert_eq!(emulator.request_total("unknown"), 0);
    // A WebSocket upgrade on an API path is not the messaging endpoint.
    let token = token(&client, &room, "bob", ALL, &[]).await;
    assert!(matches!(
        try_connect(
            &format!("{}/ListRooms", emulator.messaging_url()),
            Some(&token)
        )
        .await,
        Err(WsError::Http(_))
    ));
    assert_still_served(&mut ada).await;
}

#[tokio::test]
async fn a_client_close_is_answered_and_the_connection_forgotten() {
    let (emulator, _, room) = emulator_with_room().await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    ada.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .expect("send a close frame");
    let reply = expect_close(&mut ada).await;
    assert_eq!(reply.code, CloseCode::Normal, "the server echoes the close");
    wait_for_connections(&emulator, &room, &[]).await;
}

#[tokio::test]
async fn stopping_the_emulator_closes_the_connections() {
    let (emulator, _, room) = emulator_with_room().await;
    let mut ada = join(&emulator, &room, "ada", ALL).await;
    let stopping = tokio::spawn(emulator.stop());
    assert_eq!(expect_close(&mut ada).await.code, CloseCode::Away);
    stopping
        .await
        .expect("the stop task")
        .expect("the emulator stops");
}

/// Sends one raw HTTP/1.1 request and returns what the server answers within the quiet period (or until it
/// closes the connection).
async fn raw_http(emulator: &Emulator, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = TcpStream::connect(emulator.local_addr())
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(QUIET_PERIOD, stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}
