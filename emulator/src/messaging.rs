//! The chat Messaging API: a WebSocket endpoint on the emulator's own listener, so `ws://HOST:PORT` works
//! wherever a client takes the endpoint URL (the official JS client `amazon-ivs-chat-messaging` uses a `ws://`
//! URL exactly as given). The facts it follows are in ivschat-messaging.md; this module owns the handshake
//! (token checks), the client actions SEND_MESSAGE / DELETE_MESSAGE / DISCONNECT_USER, the MESSAGE / EVENT /
//! ERROR entities sent to clients, the per-room message rate and session expiry. The registry of open
//! connections and the rate window are [`super::connections`]'s.
//!
//! Every delivery to a room goes through the service's room-event channel ([`super::service::RoomEvent`]): the
//! HTTP SendEvent / DeleteMessage / DisconnectUser / DeleteRoom publish there, and so do the socket actions. Each
//! connection subscribes before its 101 response is sent (so nothing published after the handshake is missed),
//! keeps the events of its room, and adds the `RequestId` to the copy that answers one of its own requests.
//!
//! # Choices where the sources say nothing (\[gap\]) or only suggest (\[inference\])
//! - **Where**: upgrades are accepted on the root path `/` (any query), the bare host the SDK connects to. A
//!   WebSocket upgrade elsewhere is an ordinary (unknown) API request. The upgrade is not an API operation: it is
//!   not signed and not counted in the request metrics.
//! - **Token**: the first value of `Sec-WebSocket-Protocol` is the token; it is echoed as the selected subprotocol.
//! - **Refused handshakes** answer with an HTTP status and a JSON body `{"ErrorCode", "ErrorMessage"}` instead of
//!   the 101: a malformed handshake (no `Sec-WebSocket-Key`, version other than 13...) → axum's status (400,
//!   426...); no token → 401; an unknown, already used or expired token → 401 (the error table's "connection
//!   expired or chat token missing"); a token whose room was deleted → 404.
//! - **Session expiry**: at `sessionExpirationTime` the connection gets an `ERROR` 401 without `RequestId` (the
//!   SDK's "connection expired" signal, which makes it reconnect with a new token), then a close frame 1000.
//!   tests/emulator/messaging_js.rs shows the official client renewing its connection on this, without a
//!   disconnect.
//! - **DisconnectUser** (HTTP or socket): every connection of the room gets the `aws:DISCONNECT_USER` event, then
//!   each of the user's connections is closed with code 1001 (what the old Android demo read as "disconnected by
//!   moderator") and the reason text (or `Disconnected by moderator`), cut to the 123 bytes a close frame allows.
//!   A close frame is always sent, because a dropped TCP connection makes the SDK reconnect.
//! - **DeleteRoom**: every connection of the room gets an `ERROR` 404 without `RequestId`, then a close 1001.
//! - **Emulator shutdown** closes every connection with 1001.
//! - **RequestId** appears only in the copy sent to the connection that made the request (MESSAGE echo,
//!   `aws:DELETE_MESSAGE`, `aws:DISCONNECT_USER`, ERROR); other connections get the entity without it.
//!   Control-plane events have none.
//! - **Content** must be 1..=`maximumMessageLength` Unicode code points (the limit is inclusive), read from the
//!   room's current settings at each message, so an UpdateRoom applies at once. Too long or empty → 400.
//! - **Attributes** of SEND_MESSAGE must be an object of string values (400 otherwise) and at most 1 KiB in
//!   total, keys and values, like CreateChatToken and SendEvent (413 past it).
//! - **Rate**: at most `maximumMessageRatePerSecond` SEND_MESSAGE accepted per room in any sliding second, all
//!   connections together, with the room's current setting; past it → 429. DELETE_MESSAGE and DISCONNECT_USER
//!   do not count, and there is no per-connection rate or account TPS quota on the socket.
//! - **Order of checks**: JSON → `Action` → capability (403) → fields (400 / 413) → room exists (404, then the
//!   connection closes) → rate (429) → message review.
//! - **Message review**: a SEND_MESSAGE to a room with a `messageReviewHandler` (read at each message, so an
//!   UpdateRoom applies to the next one) is reviewed by invoking the handler ([`super::review`]) after every
//!   other check; the connection waits for the verdict (at most the review timeout) before it reads its next
//!   frame, so one sender's messages keep their order. Delivered: the MESSAGE, with the content and attributes
//!   the handler returned, to every connection; refused: an ERROR 406 to the sender only. Without a configured
//!   Lambda endpoint the handler cannot run and the room's `fallbackResult` decides.
//! - **DELETE_MESSAGE / DISCONNECT_USER fields** follow the control plane: `Id` is 12 characters of
//!   `[a-zA-Z0-9]` (the message need not exist), `UserId` 1–128 characters, `Reason` 1–256 characters.
//!   The event's attributes are `MessageId` and `MessageID` (the SDK requires the deprecated spelling) and
//!   `Reason`, or `UserId` and `Reason`; an absent `Reason` is left out.
//! - **Malformed frames**: not JSON, not an object, a binary frame, a missing or unknown `Action`, or a
//!   non-string `RequestId` → `ERROR` 400 (with the `RequestId` when one could be read). Frames over 1 MiB end
//!   the connection (the WebSocket layer refuses them).
//! - **Ids**: every entity has a fresh 12-character id (the message id for MESSAGE, the operation id for events
//!   from the control plane), so ids are unique per connection as the SDK requires. `SendTime` is when the
//!   emulator accepted the action, with milliseconds.
//! - **Attributes** of MESSAGE / EVENT and `Sender.Attributes` are always present (`{}` when there are none).
//! - **No greeting and no server pings**: the server sends nothing on open; client pings are answered.
//! - **Slow readers**: a connection that falls more than the event buffer (1024) behind loses the oldest events
//!   (logged), like a lossy fan-out; it stays open.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::FromRequestParts as _;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use ivschat_api::limits::{self, ATTRIBUTES_MAX_BYTES, REASON_CHARS, USER_ID_CHARS};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::connections::Registration;
use super::ids;
use super::review::{self, MessageUnderReview, Verdict};
use super::service::{RoomEvent, RoomEventKind, Service};
use super::store::{ChatTokenRejection, IssuedChatToken};
use super::wire::wire_time;

/// Largest frame a client may send (a SEND_MESSAGE is a few KiB at most).
const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Close code for DisconnectUser, DeleteRoom and shutdown ("going away").
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_NORMAL: u16 = 1000;
/// Longest close reason a close frame can carry (125-byte control frame minus the code).
const MAX_CLOSE_REASON_BYTES: usize = 123;
/// How long a closing connection waits for the client's close frame before dropping the socket.
const CLOSE_HANDSHAKE_WAIT: Duration = Duration::from_secs(2);

const SEND_MESSAGE: &str = "SEND_MESSAGE";
const DELETE_MESSAGE: &str = "DELETE_MESSAGE";
const DISCONNECT_USER: &str = "DISCONNECT_USER";

// ---- handshake ------------------------------------------------------------------------------------------------

/// True for a WebSocket upgrade request that the messaging endpoint answers (root path, `Upgrade: websocket`).
pub fn is_messaging_upgrade(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    method == Method::GET
        && path == "/"
        && headers
            .get(header::UPGRADE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("websocket"))
}

/// Answers a messaging upgrade: 101 with the token echoed as the subprotocol, or the refusal.
pub async fn upgrade(service: Arc<Service>, mut parts: Parts) -> Response {
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        // Not a valid WebSocket handshake (method, headers, version): the same JSON refusal as a bad token.
        Err(rejection) => return refuse(rejection.status(), &rejection.body_text()),
    };
    let Some(token_header) = upgrade.requested_protocols().next().cloned() else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Chat token missing: send it as the WebSocket subprotocol",
        );
    };
    let token = match token_header.to_str() {
        Ok(token) => token,
        Err(_) => return refuse(StatusCode::UNAUTHORIZED, "Invalid chat token"),
    };
    // Subscribe before the token is checked against its room: a DeleteRoom that lands in between is then seen.
    let events = service.subscribe();
    let shutdown = service.connections.watch_shutdown();
    let issued = match service.redeem_chat_token(token) {
        Ok(issued) => issued,
        Err(rejection) => {
            let (status, message) = match rejection {
                ChatTokenRejection::Unknown => (StatusCode::UNAUTHORIZED, "Invalid chat token"),
                ChatTokenRejection::AlreadyUsed => (
                    StatusCode::UNAUTHORIZED,
                    "Chat token already used: each token opens one connection",
                ),
                ChatTokenRejection::Expired => (StatusCode::UNAUTHORIZED, "Chat token expired"),
                ChatTokenRejection::RoomGone => (StatusCode::NOT_FOUND, "Room not found"),
            };
            tracing::debug!(?rejection, "messaging handshake refused");
            return refuse(status, message);
        }
    };
    // Subscribed and registered before the 101 goes out: whatever happens after the client sees it reaches it.
    let registration = service
        .connections
        .register(&issued.room_arn, &issued.user_id);
    let session_left = duration_until(issued.session_expiration_time);
    // Every connection comes through `Emulator::start`'s server, which records the peer address.
    let peer_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(String::new, |ConnectInfo(peer)| peer.ip().to_string());
    let connection = Connection {
        service,
        token: issued,
        peer_ip,
        events,
        shutdown,
        pending_requests: HashMap::new(),
        _registration: registration,
    };
    let mut upgrade = upgrade.max_message_size(MAX_FRAME_BYTES);
    upgrade.set_selected_protocol(token_header);
    upgrade
        .on_failed_upgrade(|error| tracing::debug!(%error, "messaging upgrade failed"))
        .on_upgrade(move |socket| connection.run(socket, Instant::now() + session_left))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = json!({ "ErrorCode": status.as_u16(), "ErrorMessage": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn duration_until(time: Timestamp) -> Duration {
    Duration::try_from(time.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO)
}

// ---- connection -----------------------------------------------------------------------------------------------

struct Connection {
    service: Arc<Service>,
    token: IssuedChatToken,
    /// The client's IP address (a review handler's `Sender.Ip`).
    peer_ip: String,
    events: broadcast::Receiver<RoomEvent>,
    shutdown: watch::Receiver<bool>,
    /// Room-event id → the RequestId of this connection's action that published it.
    pending_requests: HashMap<String, String>,
    _registration: Registration,
}

/// What woke a connection up.
enum Wake {
    Frame(Option<Result<Message, axum::Error>>),
    RoomEvent(Result<RoomEvent, broadcast::error::RecvError>),
    SessionEnd,
    Shutdown,
}

/// What the connection does after handling something.
enum Next {
    Continue,
    /// Send a close frame with this code and reason, then end.
    Close {
        code: u16,
        reason: String,
    },
    /// The client is gone (or the socket failed): end without sending anything.
    Gone,
}

/// An ERROR for the client: code, message, and the RequestId of the failed action if there was one.
struct ActionError {
    code: u16,
    message: String,
    request_id: Option<String>,
}

impl ActionError {
    fn new(code: u16, message: impl Into<String>, request_id: Option<&str>) -> ActionError {
        ActionError {
            code,
            message: message.into(),
            request_id: request_id.map(str::to_string),
        }
    }
}

impl Connection {
    async fn run(mut self, mut socket: WebSocket, session_end: Instant) {
        tracing::debug!(room = %self.token.room_arn, user = %self.token.user_id, "messaging connection opened");
        let next = loop {
            // The select only waits; handling happens after it, when `self` is free to borrow again.
            let woken = tokio::select! {
                frame = socket.recv() => Wake::Frame(frame),
                event = self.events.recv() => Wake::RoomEvent(event),
                () = tokio::time::sleep_until(session_end) => Wake::SessionEnd,
                _ = self.shutdown.wait_for(|stopping| *stopping) => Wake::Shutdown,
            };
            let next = match woken {
                Wake::Frame(Some(Ok(frame))) => self.on_frame(&mut socket, frame).await,
                Wake::Frame(Some(Err(_)) | None) => Next::Gone,
                Wake::RoomEvent(Ok(event)) => self.on_room_event(&mut socket, event).await,
                Wake::RoomEvent(Err(broadcast::error::RecvError::Lagged(missed))) => {
                    tracing::warn!(user = %self.token.user_id, missed, "slow messaging connection missed room events");
                    Next::Continue
                }
                // The sender lives in the service, so a closed channel means the emulator is going away; so
                // does a shutdown signal (or its sender being dropped).
                Wake::RoomEvent(Err(broadcast::error::RecvError::Closed)) | Wake::Shutdown => {
                    Next::Close {
                        code: CLOSE_GOING_AWAY,
                        reason: "Emulator shutting down".into(),
                    }
                }
                Wake::SessionEnd => {
                    let expired =
                        ActionError::new(401, "Connection expired: the chat session ended", None);
                    match send_entity(&mut socket, &error_entity(&expired)).await {
                        Next::Continue => Next::Close {
                            code: CLOSE_NORMAL,
                            reason: "Session expired".into(),
                        },
                        other => other,
                    }
                }
            };
            match next {
                Next::Continue => continue,
                other => break other,
            }
        };
        if let Next::Close { code, reason } = next {
            close(&mut socket, code, &reason).await;
        }
        tracing::debug!(room = %self.token.room_arn, user = %self.token.user_id, "messaging connection closed");
    }

    async fn on_frame(&mut self, socket: &mut WebSocket, frame: Message) -> Next {
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let error = ActionError::new(400, "Frames must be text frames of JSON", None);
                return send_entity(socket, &error_entity(&error)).await;
            }
            // tungstenite answers pings itself. After a client's close frame it sends the reply on the next read,
            // which then reports the end of the connection: keep reading so the client sees a clean close.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Next::Continue,
        };
        match self.on_action(text.as_str()).await {
            Ok(()) => Next::Continue,
            Err(error) => {
                let room_gone = error.code == 404;
                match send_entity(socket, &error_entity(&error)).await {
                    Next::Continue if room_gone => Next::Close {
                        code: CLOSE_GOING_AWAY,
                        reason: "Room deleted".into(),
                    },
                    other => other,
                }
            }
        }
    }

    /// Handles one client action; success publishes to the room, failure is the ERROR for this client.
    async fn on_action(&mut self, text: &str) -> Result<(), ActionError> {
        let request: Value = serde_json::from_str(text)
            .map_err(|err| ActionError::new(400, format!("Invalid JSON: {err}"), None))?;
        let Value::Object(request) = request else {
            return Err(ActionError::new(
                400,
                "The request must be a JSON object",
                None,
            ));
        };
        let request_id = match request.get("RequestId") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.as_str()),
            Some(_) => {
                return Err(ActionError::new(400, "RequestId must be a string", None));
            }
        };
        let action = match request.get("Action") {
            Some(Value::String(action)) => action.as_str(),
            _ => {
                return Err(ActionError::new(
                    400,
                    "Action is required: SEND_MESSAGE, DELETE_MESSAGE or DISCONNECT_USER",
                    request_id,
                ));
            }
        };
        let fields = Fields {
            request: &request,
            request_id,
        };
        // The id of what is published: for a message, also the MessageId its review handler sees.
        let id = ids::new_id();
        let kind = match action {
            SEND_MESSAGE => {
                self.require_capability(SEND_MESSAGE, request_id)?;
                self.send_message(&fields, &id).await?
            }
            DELETE_MESSAGE => {
                self.require_capability(DELETE_MESSAGE, request_id)?;
                let message_id = fields.required_string("Id")?;
                if !ids::is_valid_id(message_id) {
                    return Err(fields.invalid(format!(
                        "Id must be {} characters of [a-zA-Z0-9]",
                        limits::ID_CHARS
                    )));
                }
                let reason = fields.reason()?;
                self.require_room(request_id)?;
                RoomEventKind::DeleteMessage {
                    message_id: message_id.to_string(),
                    reason,
                }
            }
            DISCONNECT_USER => {
                self.require_capability(DISCONNECT_USER, request_id)?;
                let user_id = fields.required_string("UserId")?;
                let length = user_id.chars().count();
                if !USER_ID_CHARS.contains(&length) {
                    return Err(fields.invalid(format!(
                        "UserId must be {} to {} characters",
                        USER_ID_CHARS.start(),
                        USER_ID_CHARS.end()
                    )));
                }
                let reason = fields.reason()?;
                self.require_room(request_id)?;
                RoomEventKind::DisconnectUser {
                    user_id: user_id.to_string(),
                    reason,
                }
            }
            other => {
                return Err(ActionError::new(
                    400,
                    format!(
                        "Unknown Action {other:?}: expected SEND_MESSAGE, DELETE_MESSAGE or DISCONNECT_USER"
                    ),
                    request_id,
                ));
            }
        };
        if let Some(request_id) = request_id {
            self.pending_requests
                .insert(id.clone(), request_id.to_string());
        }
        self.service.publish(RoomEvent {
            room_arn: self.token.room_arn.clone(),
            id,
            send_time: Timestamp::now(),
            kind,
        });
        Ok(())
    }

    fn require_capability(
        &self,
        capability: &str,
        request_id: Option<&str>,
    ) -> Result<(), ActionError> {
        if self
            .token
            .capabilities
            .iter()
            .any(|held| held == capability)
        {
            Ok(())
        } else {
            Err(ActionError::new(
                403,
                format!("The chat token does not have the {capability} capability"),
                request_id,
            ))
        }
    }

    fn require_room(&self, request_id: Option<&str>) -> Result<super::store::Room, ActionError> {
        self.service
            .room(&self.token.room_arn)
            .ok_or_else(|| ActionError::new(404, "Room not found", request_id))
    }

    /// A SEND_MESSAGE checked, rate-limited and reviewed: the message to publish as `id`.
    async fn send_message(
        &self,
        fields: &Fields<'_>,
        id: &str,
    ) -> Result<RoomEventKind, ActionError> {
        let content = fields.required_string("Content")?;
        let attributes = fields.attributes()?;
        // The room's settings as they are now: an UpdateRoom applies to the next message.
        let room = self.require_room(fields.request_id)?;
        let length = content.chars().count();
        let max_length = usize::try_from(room.maximum_message_length).unwrap_or(0);
        if length == 0 {
            return Err(fields.invalid("Message content must not be empty"));
        }
        if length > max_length {
            return Err(fields.invalid(format!(
                "Message content must be at most {max_length} characters (got {length})"
            )));
        }
        let rate = usize::try_from(room.maximum_message_rate_per_second).unwrap_or(0);
        if !self
            .service
            .connections
            .admit_message(&room.arn, rate, Instant::now())
        {
            return Err(ActionError::new(
                429,
                format!("Too many messages: the room accepts {rate} per second"),
                fields.request_id,
            ));
        }
        let (content, attributes) = match &room.message_review_handler {
            None => (content.to_string(), attributes),
            Some(handler) => {
                let message = MessageUnderReview {
                    room_arn: room.arn.clone(),
                    message_id: id.to_owned(),
                    content: content.to_string(),
                    attributes,
                    sender_user_id: self.token.user_id.clone(),
                    sender_attributes: self.token.attributes.clone(),
                    sender_ip: self.peer_ip.clone(),
                };
                match self
                    .service
                    .review_message(&room, handler, &message)
                    .await
                    .verdict
                {
                    Verdict::Deliver {
                        content,
                        attributes,
                    } => (content, attributes),
                    Verdict::Refuse { message } => {
                        return Err(ActionError::new(
                            review::DENIED_CODE,
                            message,
                            fields.request_id,
                        ));
                    }
                }
            }
        };
        Ok(RoomEventKind::Message {
            sender_user_id: self.token.user_id.clone(),
            sender_attributes: self.token.attributes.clone(),
            content,
            attributes,
        })
    }

    async fn on_room_event(&mut self, socket: &mut WebSocket, event: RoomEvent) -> Next {
        if event.room_arn != self.token.room_arn {
            return Next::Continue;
        }
        let request_id = self.pending_requests.remove(&event.id);
        let (entity, then) = match &event.kind {
            RoomEventKind::RoomDeleted => {
                let error = ActionError::new(404, "Room not found: the room was deleted", None);
                (
                    error_entity(&error),
                    Next::Close {
                        code: CLOSE_GOING_AWAY,
                        reason: "Room deleted".into(),
                    },
                )
            }
            RoomEventKind::DisconnectUser { user_id, reason } if *user_id == self.token.user_id => {
                let reason = reason
                    .clone()
                    .unwrap_or_else(|| "Disconnected by moderator".into());
                (
                    entity_for(&event, request_id.as_deref()),
                    Next::Close {
                        code: CLOSE_GOING_AWAY,
                        reason,
                    },
                )
            }
            _ => (entity_for(&event, request_id.as_deref()), Next::Continue),
        };
        match send_entity(socket, &entity).await {
            Next::Continue => then,
            other => other,
        }
    }
}

/// The fields of one client request, for reading them with errors that carry its RequestId.
struct Fields<'a> {
    request: &'a Map<String, Value>,
    request_id: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn invalid(&self, message: impl Into<String>) -> ActionError {
        ActionError::new(400, message, self.request_id)
    }

    fn required_string(&self, name: &str) -> Result<&'a str, ActionError> {
        match self.request.get(name) {
            Some(Value::String(value)) => Ok(value),
            None | Some(Value::Null) => Err(self.invalid(format!("{name} is required"))),
            Some(_) => Err(self.invalid(format!("{name} must be a string"))),
        }
    }

    fn reason(&self) -> Result<Option<String>, ActionError> {
        match self.request.get("Reason") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(reason)) if REASON_CHARS.contains(&reason.chars().count()) => {
                Ok(Some(reason.clone()))
            }
            Some(_) => Err(self.invalid(format!(
                "Reason must be a string of {} to {} characters",
                REASON_CHARS.start(),
                REASON_CHARS.end()
            ))),
        }
    }

    fn attributes(&self) -> Result<BTreeMap<String, String>, ActionError> {
        let object = match self.request.get("Attributes") {
            None | Some(Value::Null) => return Ok(BTreeMap::new()),
            Some(Value::Object(object)) => object,
            Some(_) => return Err(self.invalid("Attributes must be an object of strings")),
        };
        let mut attributes = BTreeMap::new();
        for (key, value) in object {
            let Value::String(value) = value else {
                return Err(self.invalid(format!("Attribute {key:?} must be a string")));
            };
            attributes.insert(key.clone(), value.clone());
        }
        if limits::attributes_size(&attributes) > ATTRIBUTES_MAX_BYTES {
            return Err(ActionError::new(
                413,
                format!(
                    "Attributes must not exceed {ATTRIBUTES_MAX_BYTES} bytes in total (keys and values)"
                ),
                self.request_id,
            ));
        }
        Ok(attributes)
    }
}

// ---- entities -------------------------------------------------------------------------------------------------

/// The MESSAGE or EVENT a room event becomes for one connection (`request_id` when it answers its request).
fn entity_for(event: &RoomEvent, request_id: Option<&str>) -> Value {
    let mut entity = Map::new();
    let event_entity = |entity: &mut Map<String, Value>, name: &str, attributes: Value| {
        entity.insert("Type".into(), json!("EVENT"));
        entity.insert("Id".into(), json!(event.id));
        entity.insert("EventName".into(), json!(name));
        entity.insert("Attributes".into(), attributes);
    };
    match &event.kind {
        RoomEventKind::Message {
            sender_user_id,
            sender_attributes,
            content,
            attributes,
        } => {
            entity.insert("Type".into(), json!("MESSAGE"));
            entity.insert("Id".into(), json!(event.id));
            entity.insert("Content".into(), json!(content));
            entity.insert("Attributes".into(), json!(attributes));
            entity.insert(
                "Sender".into(),
                json!({ "UserId": sender_user_id, "Attributes": sender_attributes }),
            );
        }
        RoomEventKind::Event { name, attributes } => {
            event_entity(&mut entity, name, json!(attributes));
        }
        RoomEventKind::DeleteMessage { message_id, reason } => {
            let mut attributes = Map::new();
            attributes.insert("MessageId".into(), json!(message_id));
            // Deprecated spelling, but the JS SDK 1.1.1 requires it.
            attributes.insert("MessageID".into(), json!(message_id));
            if let Some(reason) = reason {
                attributes.insert("Reason".into(), json!(reason));
            }
            event_entity(&mut entity, "aws:DELETE_MESSAGE", Value::Object(attributes));
        }
        RoomEventKind::DisconnectUser { user_id, reason } => {
            let mut attributes = Map::new();
            attributes.insert("UserId".into(), json!(user_id));
            if let Some(reason) = reason {
                attributes.insert("Reason".into(), json!(reason));
            }
            event_entity(
                &mut entity,
                "aws:DISCONNECT_USER",
                Value::Object(attributes),
            );
        }
        RoomEventKind::RoomDeleted => {
            let error = ActionError::new(404, "Room not found: the room was deleted", None);
            return error_entity(&error);
        }
    }
    if let Some(request_id) = request_id {
        entity.insert("RequestId".into(), json!(request_id));
    }
    entity.insert("SendTime".into(), json!(wire_time(event.send_time)));
    Value::Object(entity)
}

fn error_entity(error: &ActionError) -> Value {
    let mut entity = Map::new();
    entity.insert("Type".into(), json!("ERROR"));
    entity.insert("Id".into(), json!(ids::new_id()));
    if let Some(request_id) = &error.request_id {
        entity.insert("RequestId".into(), json!(request_id));
    }
    entity.insert("ErrorCode".into(), json!(error.code));
    entity.insert("ErrorMessage".into(), json!(error.message));
    Value::Object(entity)
}

async fn send_entity(socket: &mut WebSocket, entity: &Value) -> Next {
    match socket
        .send(Message::Text(Utf8Bytes::from(entity.to_string())))
        .await
    {
        Ok(()) => Next::Continue,
        Err(_) => Next::Gone,
    }
}

/// Sends a close frame and waits briefly for the client's, so the client sees a clean close.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(truncate_to_bytes(reason, MAX_CLOSE_REASON_BYTES)),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE_WAIT, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate_to_bytes(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_on_character_boundaries() {
        assert_eq!(truncate_to_bytes("spam", 123), "spam");
        let long = "é".repeat(100);
        let cut = truncate_to_bytes(&long, MAX_CLOSE_REASON_BYTES);
        assert_eq!(cut.len(), 122, "61 two-byte characters");
        assert!(long.starts_with(cut));
    }

    fn event(kind: RoomEventKind) -> RoomEvent {
        RoomEvent {
            room_arn: "arn".into(),
            id: "AYk6xKitV4On".into(),
            send_time: Timestamp::from_millisecond(1_665_492_201_113)
                .unwrap_or(Timestamp::UNIX_EPOCH),
            kind,
        }
    }

    #[test]
    fn entities_have_the_documented_shapes() {
        let message = entity_for(
            &event(RoomEventKind::Message {
                sender_user_id: "ada".into(),
                sender_attributes: [("displayName".to_string(), "Ada".to_string())].into(),
                content: "hi".into(),
                attributes: BTreeMap::new(),
            }),
            Some("req-1"),
        );
        assert_eq!(
            message,
            json!({
                "Type": "MESSAGE", "Id": "AYk6xKitV4On", "RequestId": "req-1", "Content": "hi",
                "Attributes": {}, "SendTime": "2022-10-11T12:43:21.113Z",
                "Sender": {"UserId": "ada", "Attributes": {"displayName": "Ada"}}
            })
        );
        let deleted = entity_for(
            &event(RoomEventKind::DeleteMessage {
                message_id: "abcdefghijkl".into(),
                reason: None,
            }),
            None,
        );
        assert_eq!(
            deleted,
            json!({
                "Type": "EVENT", "Id": "AYk6xKitV4On", "EventName": "aws:DELETE_MESSAGE",
                "Attributes": {"MessageId": "abcdefghijkl", "MessageID": "abcdefghijkl"},
                "SendTime": "2022-10-11T12:43:21.113Z"
            })
        );
        let error = error_entity(&ActionError::new(429, "slow down", Some("req-2")));
        assert_eq!(error["ErrorCode"], 429);
        assert_eq!(error["RequestId"], "req-2");
        assert!(ids::is_valid_id(error["Id"].as_str().unwrap_or_default()));
    }

    #[test]
    fn upgrades_are_recognised_on_the_root_path_only() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(is_messaging_upgrade(&Method::GET, "/", &headers));
        assert!(!is_messaging_upgrade(&Method::GET, "/ListRooms", &headers));
        assert!(!is_messaging_upgrade(&Method::POST, "/", &headers));
        assert!(!is_messaging_upgrade(&Method::GET, "/", &HeaderMap::new()));
    }
}
