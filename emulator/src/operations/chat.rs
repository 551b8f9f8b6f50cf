//! The operations on a room's chat: CreateChatToken, SendEvent, DeleteMessage and DisconnectUser. The last
//! three publish a room event that the messaging endpoint delivers.

use std::collections::BTreeMap;

use ivschat_api::limits;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::input::unset_if_zero;
use super::output::Output;
use crate::error::ApiError;
use crate::ids;
use crate::service::{RoomEvent, RoomEventKind, ScopedService};
use crate::validate::Validator;
use crate::wire::wire_time;

const CAPABILITIES: [&str; 3] = ["SEND_MESSAGE", "DISCONNECT_USER", "DELETE_MESSAGE"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateChatTokenInput {
    room_identifier: Option<String>,
    user_id: Option<String>,
    capabilities: Option<Vec<String>>,
    session_duration_in_minutes: Option<i64>,
    attributes: Option<BTreeMap<String, String>>,
}

fn validate_room_and_user(v: &mut Validator, room: &Option<String>, user: Option<&Option<String>>) {
    if let Some(room) = v.required("roomIdentifier", room) {
        v.room_identifier("roomIdentifier", room);
    }
    if let Some(user) = user
        && let Some(user) = v.required("userId", user)
    {
        v.length("userId", user, limits::USER_ID_CHARS);
    }
}

fn validate_reason(v: &mut Validator, reason: &Option<String>) {
    if let Some(reason) = reason {
        v.length("reason", reason, limits::REASON_CHARS);
    }
}

pub(super) async fn create_chat_token(
    service: &ScopedService<'_>,
    input: CreateChatTokenInput,
) -> Result<Output, ApiError> {
    let minutes = unset_if_zero(input.session_duration_in_minutes)
        .unwrap_or(limits::DEFAULT_SESSION_DURATION_MINUTES);
    let mut v = Validator::new();
    validate_room_and_user(&mut v, &input.room_identifier, Some(&input.user_id));
    for capability in input.capabilities.iter().flatten() {
        v.one_of("capabilities", capability, &CAPABILITIES);
    }
    v.range(
        "sessionDurationInMinutes",
        minutes,
        limits::SESSION_DURATION_MINUTES,
    );
    if let Some(attributes) = &input.attributes {
        v.attributes("attributes", attributes);
    }
    v.finish()?;
    let room = input.room_identifier.unwrap_or_default();
    let user = input.user_id.unwrap_or_default();
    let capabilities = input.capabilities.unwrap_or_default();
    let attributes = input.attributes.unwrap_or_default();
    // One "minute" is configurable so tests can watch sessions expire (see EmulatorConfig::chat_session_minute).
    let session = service
        .config
        .chat_session_minute
        .saturating_mul(u32::try_from(minutes).unwrap_or(1));
    // Tokens are not persisted: the store's revision does not move, so no state-file write follows.
    let (token, issued) = service
        .mutate(|store, now| {
            store.issue_chat_token(&room, user, capabilities, attributes, session, now)
        })
        .await?;
    Ok(Output::Json(json!({
        "token": token,
        "tokenExpirationTime": wire_time(issued.token_expiration_time),
        "sessionExpirationTime": wire_time(issued.session_expiration_time),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SendEventInput {
    room_identifier: Option<String>,
    event_name: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
}

fn existing_room_arn(service: &ScopedService<'_>, identifier: &str) -> Result<String, ApiError> {
    service.read(|store, _| Ok(store.room(identifier)?.arn.clone()))
}

pub(super) fn send_event(
    service: &ScopedService<'_>,
    input: SendEventInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    validate_room_and_user(&mut v, &input.room_identifier, None);
    if let Some(name) = v.required("eventName", &input.event_name) {
        v.length("eventName", name, limits::EVENT_NAME_CHARS);
    }
    if let Some(attributes) = &input.attributes {
        v.attributes("attributes", attributes);
    }
    v.finish()?;
    let room_arn = existing_room_arn(
        service,
        input.room_identifier.as_deref().unwrap_or_default(),
    )?;
    let id = ids::new_id();
    service.publish(RoomEvent {
        room_arn,
        id: id.clone(),
        send_time: Timestamp::now(),
        kind: RoomEventKind::Event {
            name: input.event_name.unwrap_or_default(),
            attributes: input.attributes.unwrap_or_default(),
        },
    });
    Ok(Output::Json(json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteMessageInput {
    room_identifier: Option<String>,
    id: Option<String>,
    reason: Option<String>,
}

pub(super) fn delete_message(
    service: &ScopedService<'_>,
    input: DeleteMessageInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    validate_room_and_user(&mut v, &input.room_identifier, None);
    if let Some(id) = v.required("id", &input.id) {
        v.message_id("id", id);
    }
    validate_reason(&mut v, &input.reason);
    v.finish()?;
    let room_arn = existing_room_arn(
        service,
        input.room_identifier.as_deref().unwrap_or_default(),
    )?;
    let id = ids::new_id();
    service.publish(RoomEvent {
        room_arn,
        id: id.clone(),
        send_time: Timestamp::now(),
        kind: RoomEventKind::DeleteMessage {
            message_id: input.id.unwrap_or_default(),
            reason: input.reason,
        },
    });
    Ok(Output::Json(json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DisconnectUserInput {
    room_identifier: Option<String>,
    user_id: Option<String>,
    reason: Option<String>,
}

pub(super) fn disconnect_user(
    service: &ScopedService<'_>,
    input: DisconnectUserInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    validate_room_and_user(&mut v, &input.room_identifier, Some(&input.user_id));
    validate_reason(&mut v, &input.reason);
    v.finish()?;
    let room_arn = existing_room_arn(
        service,
        input.room_identifier.as_deref().unwrap_or_default(),
    )?;
    service.publish(RoomEvent {
        room_arn,
        id: ids::new_id(),
        send_time: Timestamp::now(),
        kind: RoomEventKind::DisconnectUser {
            user_id: input.user_id.unwrap_or_default(),
            reason: input.reason,
        },
    });
    Ok(Output::Json(json!({})))
}
