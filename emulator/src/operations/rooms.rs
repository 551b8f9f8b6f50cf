//! CreateRoom, GetRoom, UpdateRoom, DeleteRoom and ListRooms: their inputs, validation, defaults and the room
//! output shape.

use std::collections::BTreeMap;

use ivschat_api::limits;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::input::{
    IdentifierInput, max_results, non_empty, required_identifier, unset_if_zero,
    validate_next_token,
};
use super::output::{Output, page_json};
use crate::error::ApiError;
use crate::ids;
use crate::service::{RoomEvent, RoomEventKind, ScopedService};
use crate::store::{
    FallbackResult, HandlerChange, MessageReviewHandler, Room, RoomFilter, RoomPatch, RoomSpec,
};
use crate::validate::Validator;
use crate::wire::wire_time;

const FALLBACK_RESULTS: [&str; 2] = ["ALLOW", "DENY"];

const ROOMS_LIST: &str = "rooms";

fn room_json(room: &Room, full: bool) -> Value {
    let mut body = Map::new();
    body.insert("arn".into(), json!(room.arn));
    body.insert("id".into(), json!(room.id));
    body.insert("name".into(), json!(room.name));
    body.insert("createTime".into(), json!(wire_time(room.create_time)));
    body.insert("updateTime".into(), json!(wire_time(room.update_time)));
    if full {
        body.insert(
            "maximumMessageRatePerSecond".into(),
            json!(room.maximum_message_rate_per_second),
        );
        body.insert(
            "maximumMessageLength".into(),
            json!(room.maximum_message_length),
        );
    }
    if let Some(handler) = &room.message_review_handler {
        body.insert(
            "messageReviewHandler".into(),
            json!({ "uri": handler.uri, "fallbackResult": handler.fallback_result.wire_name() }),
        );
    }
    body.insert("tags".into(), json!(room.tags));
    body.insert(
        "loggingConfigurationIdentifiers".into(),
        json!(room.logging_configuration_identifiers),
    );
    Value::Object(body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandlerInput {
    uri: Option<String>,
    fallback_result: Option<String>,
}

fn validate_handler(v: &mut Validator, handler: &HandlerInput) -> Option<FallbackResult> {
    if let Some(uri) = &handler.uri {
        v.lambda_arn("messageReviewHandler.uri", uri);
    }
    let fallback = handler.fallback_result.as_deref()?;
    if !v.one_of(
        "messageReviewHandler.fallbackResult",
        fallback,
        &FALLBACK_RESULTS,
    ) {
        return None;
    }
    Some(if fallback == "DENY" {
        FallbackResult::Deny
    } else {
        FallbackResult::Allow
    })
}

fn validate_logging_identifiers(v: &mut Validator, identifiers: &[String]) {
    const FIELD: &str = "loggingConfigurationIdentifiers";
    v.size(
        FIELD,
        identifiers.len(),
        limits::MAX_LOGGING_CONFIGURATIONS_PER_ROOM,
    );
    for identifier in identifiers {
        v.logging_configuration_identifier(FIELD, identifier);
    }
}

fn validate_max_message_settings(v: &mut Validator, rate: Option<i64>, length: Option<i64>) {
    if let Some(rate) = rate {
        v.range(
            "maximumMessageRatePerSecond",
            rate,
            limits::MAXIMUM_MESSAGE_RATE_PER_SECOND,
        );
    }
    if let Some(length) = length {
        v.range(
            "maximumMessageLength",
            length,
            limits::MAXIMUM_MESSAGE_LENGTH,
        );
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateRoomInput {
    name: Option<String>,
    maximum_message_rate_per_second: Option<i64>,
    maximum_message_length: Option<i64>,
    message_review_handler: Option<HandlerInput>,
    tags: Option<BTreeMap<String, String>>,
    logging_configuration_identifiers: Option<Vec<String>>,
}

pub(super) async fn create_room(
    service: &ScopedService<'_>,
    input: CreateRoomInput,
) -> Result<Output, ApiError> {
    let rate = unset_if_zero(input.maximum_message_rate_per_second);
    let length = unset_if_zero(input.maximum_message_length);
    let mut v = Validator::new();
    if let Some(name) = &input.name {
        v.resource_name("name", name);
    }
    validate_max_message_settings(&mut v, rate, length);
    let fallback = input
        .message_review_handler
        .as_ref()
        .and_then(|handler| validate_handler(&mut v, handler));
    if let Some(tags) = &input.tags {
        v.tags("tags", tags);
    }
    if let Some(identifiers) = &input.logging_configuration_identifiers {
        validate_logging_identifiers(&mut v, identifiers);
    }
    v.finish()?;
    // A handler without a URI has nothing to call: the room gets no handler.
    let handler = input.message_review_handler.and_then(|handler| {
        non_empty(handler.uri).map(|uri| MessageReviewHandler {
            uri,
            fallback_result: fallback.unwrap_or(FallbackResult::Allow),
        })
    });
    let spec = RoomSpec {
        name: input.name.unwrap_or_default(),
        maximum_message_rate_per_second: rate
            .unwrap_or(limits::DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND),
        maximum_message_length: length.unwrap_or(limits::DEFAULT_MAXIMUM_MESSAGE_LENGTH),
        message_review_handler: handler,
        logging_configuration_identifiers: input
            .logging_configuration_identifiers
            .unwrap_or_default(),
        tags: input.tags.unwrap_or_default(),
    };
    let room_quota = service.traffic.settings().room_quota;
    let room = service
        .mutate(|store, now| store.create_room(spec, room_quota, now))
        .await?;
    Ok(Output::Json(room_json(&room, true)))
}

pub(super) fn get_room(
    service: &ScopedService<'_>,
    input: IdentifierInput,
) -> Result<Output, ApiError> {
    let identifier = required_identifier(&input, true)?;
    let room = service.read(|store, _| store.room(&identifier).cloned())?;
    Ok(Output::Json(room_json(&room, true)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateRoomInput {
    identifier: Option<String>,
    name: Option<String>,
    maximum_message_rate_per_second: Option<i64>,
    maximum_message_length: Option<i64>,
    message_review_handler: Option<HandlerInput>,
    logging_configuration_identifiers: Option<Vec<String>>,
}

pub(super) async fn update_room(
    service: &ScopedService<'_>,
    input: UpdateRoomInput,
) -> Result<Output, ApiError> {
    let rate = unset_if_zero(input.maximum_message_rate_per_second);
    let length = unset_if_zero(input.maximum_message_length);
    let mut v = Validator::new();
    if let Some(identifier) = v.required("identifier", &input.identifier) {
        v.room_identifier("identifier", identifier);
    }
    if let Some(name) = &input.name {
        v.resource_name("name", name);
    }
    validate_max_message_settings(&mut v, rate, length);
    let fallback = input
        .message_review_handler
        .as_ref()
        .and_then(|handler| validate_handler(&mut v, handler));
    if let Some(identifiers) = &input.logging_configuration_identifiers {
        validate_logging_identifiers(&mut v, identifiers);
    }
    v.finish()?;
    let handler_change = match input.message_review_handler {
        None => HandlerChange::Keep,
        Some(HandlerInput { uri: Some(uri), .. }) if uri.is_empty() => HandlerChange::Remove,
        Some(HandlerInput { uri: Some(uri), .. }) => HandlerChange::Set {
            uri,
            fallback_result: fallback,
        },
        Some(HandlerInput { uri: None, .. }) => {
            fallback.map_or(HandlerChange::Keep, HandlerChange::Fallback)
        }
    };
    let patch = RoomPatch {
        name: input.name,
        maximum_message_rate_per_second: rate,
        maximum_message_length: length,
        message_review_handler: handler_change,
        logging_configuration_identifiers: input.logging_configuration_identifiers,
    };
    let identifier = input.identifier.unwrap_or_default();
    let room = service
        .mutate(|store, now| store.update_room(&identifier, patch, now))
        .await?;
    Ok(Output::Json(room_json(&room, true)))
}

pub(super) async fn delete_room(
    service: &ScopedService<'_>,
    input: IdentifierInput,
) -> Result<Output, ApiError> {
    let identifier = required_identifier(&input, true)?;
    let room_arn = service
        .mutate(|store, _| {
            let arn = store.room(&identifier)?.arn.clone();
            store.delete_room(&identifier)?;
            Ok(arn)
        })
        .await?;
    // The room's chat connections close (see messaging).
    service.publish(RoomEvent {
        room_arn,
        id: ids::new_id(),
        send_time: Timestamp::now(),
        kind: RoomEventKind::RoomDeleted,
    });
    Ok(Output::NoContent)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListRoomsInput {
    name: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    message_review_handler_uri: Option<String>,
    logging_configuration_identifier: Option<String>,
}

pub(super) fn list_rooms(
    service: &ScopedService<'_>,
    input: ListRoomsInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    let limit = max_results(&mut v, input.max_results);
    validate_next_token(&mut v, &input.next_token);
    if let Some(name) = &input.name {
        v.resource_name("name", name);
    }
    if let Some(uri) = &input.message_review_handler_uri {
        v.lambda_arn("messageReviewHandlerUri", uri);
    }
    if let Some(identifier) = &input.logging_configuration_identifier {
        v.logging_configuration_identifier("loggingConfigurationIdentifier", identifier);
    }
    v.finish()?;
    // Empty filter strings mean "no filter" (the CLI passes `--next-token ""` the same way).
    let filter = RoomFilter {
        name: non_empty(input.name),
        message_review_handler_uri: non_empty(input.message_review_handler_uri),
        logging_configuration_identifier: non_empty(input.logging_configuration_identifier),
    };
    let filter_key = [
        filter.name.as_deref().unwrap_or_default(),
        filter
            .message_review_handler_uri
            .as_deref()
            .unwrap_or_default(),
        filter
            .logging_configuration_identifier
            .as_deref()
            .unwrap_or_default(),
    ];
    let cursor = match non_empty(input.next_token) {
        Some(token) => Some(service.tokens.open(&token, ROOMS_LIST, &filter_key)?),
        None => None,
    };
    let page = service.read(|store, _| store.list_rooms(&filter, limit, cursor.as_ref()))?;
    Ok(Output::Json(page_json(
        service,
        ROOMS_LIST,
        &filter_key,
        page,
        |room| room_json(room, false),
    )?))
}
