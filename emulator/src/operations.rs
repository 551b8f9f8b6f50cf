//! The 17 operations: decode the restJson1 input (body members, plus the `resourceArn` label and `tagKeys`
//! query of the tag operations), validate it against the model, apply the documented defaults, run it against the
//! store and encode the output members.

use std::collections::BTreeMap;

use ivschat_api::Operation;
use ivschat_api::limits::{self, MAX_TAGS};
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::ids;
use super::service::{RoomEvent, RoomEventKind, Service};
use super::store::{
    Destination, FallbackResult, HandlerChange, LoggingConfiguration, MessageReviewHandler, Page,
    Room, RoomFilter, RoomPatch, RoomSpec,
};
use super::validate::{self, Validator};
use super::wire::wire_time;
const CAPABILITIES: [&str; 3] = ["SEND_MESSAGE", "DISCONNECT_USER", "DELETE_MESSAGE"];
const FALLBACK_RESULTS: [&str; 2] = ["ALLOW", "DENY"];

const ROOMS_LIST: &str = "rooms";
const LOGGING_CONFIGURATIONS_LIST: &str = "loggingConfigurations";

/// A successful response.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with this plain-text body (the admin metrics endpoint).
    Text(String),
    /// 204 without a body.
    NoContent,
}

/// The HTTP-level parts of a request an operation reads.
pub struct Request<'a> {
    /// The raw (percent-encoded) `{resourceArn}` path label of the tag operations.
    pub resource_arn_label: Option<&'a str>,
    /// The raw query string.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

pub async fn execute(
    service: &Service,
    operation: Operation,
    request: Request<'_>,
) -> Result<Output, ApiError> {
    match operation {
        Operation::CreateRoom => create_room(service, decode(request.body)?).await,
        Operation::GetRoom => get_room(service, decode(request.body)?),
        Operation::UpdateRoom => update_room(service, decode(request.body)?).await,
        Operation::DeleteRoom => delete_room(service, decode(request.body)?).await,
        Operation::ListRooms => list_rooms(service, decode(request.body)?),
        Operation::CreateLoggingConfiguration => {
            create_logging_configuration(service, decode(request.body)?).await
        }
        Operation::GetLoggingConfiguration => {
            get_logging_configuration(service, decode(request.body)?)
        }
        Operation::UpdateLoggingConfiguration => {
            update_logging_configuration(service, decode(request.body)?).await
        }
        Operation::DeleteLoggingConfiguration => {
            delete_logging_configuration(service, decode(request.body)?).await
        }
        Operation::ListLoggingConfigurations => {
            list_logging_configurations(service, decode(request.body)?)
        }
        Operation::CreateChatToken => create_chat_token(service, decode(request.body)?).await,
        Operation::SendEvent => send_event(service, decode(request.body)?),
        Operation::DeleteMessage => delete_message(service, decode(request.body)?),
        Operation::DisconnectUser => disconnect_user(service, decode(request.body)?),
        Operation::ListTagsForResource => {
            list_tags_for_resource(service, &resource_arn(request.resource_arn_label)?)
        }
        Operation::TagResource => {
            let arn = resource_arn(request.resource_arn_label)?;
            tag_resource(service, &arn, decode(request.body)?).await
        }
        Operation::UntagResource => {
            let arn = resource_arn(request.resource_arn_label)?;
            untag_resource(service, &arn, request.query).await
        }
    }
}

// ---- wire decoding ----------------------------------------------------------------------------------------

/// Decodes a JSON body; an empty body counts as `{}` (every operation's members are optional on the wire).
/// Unknown members are ignored and `null` means absent, as AWS does.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|err| ApiError::Serialization {
        message: format!("Could not parse the request body as the operation's input: {err}"),
    })
}

/// Percent-decodes the `{resourceArn}` label and validates it as a room or logging-configuration ARN.
fn resource_arn(label: Option<&str>) -> Result<String, ApiError> {
    let label = label.unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(label)
        .decode_utf8()
        .map_err(|_| {
            ApiError::field(
                "resourceArn",
                "Member must be valid UTF-8 after percent-decoding",
            )
        })?
        .into_owned();
    let mut v = Validator::new();
    v.resource_arn("resourceArn", &decoded);
    v.finish()?;
    Ok(decoded)
}

/// The values of every `tagKeys` query parameter, percent-decoded (`+` is taken literally, as the SDKs encode a
/// space as `%20`). `None` when the parameter is absent.
fn tag_keys_from_query(query: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    let mut keys: Option<Vec<String>> = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| {
                    ApiError::field(
                        "tagKeys",
                        "Query parameters must be valid UTF-8 after percent-decoding",
                    )
                })
        };
        if decode(name)? == "tagKeys" {
            keys.get_or_insert_with(Vec::new).push(decode(value)?);
        }
    }
    Ok(keys)
}

/// The model's boxed integers carry `@default(0)` in Smithy-2 SDKs, so an explicit 0 is read as "not set".
fn unset_if_zero(value: Option<i64>) -> Option<i64> {
    value.filter(|value| *value != 0)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

// ---- output encoding ----------------------------------------------------------------------------------------

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

fn destination_json(destination: &Destination) -> Value {
    match destination {
        Destination::S3 { bucket_name } => json!({ "s3": { "bucketName": bucket_name } }),
        Destination::CloudWatchLogs { log_group_name } => {
            json!({ "cloudWatchLogs": { "logGroupName": log_group_name } })
        }
        Destination::Firehose {
            delivery_stream_name,
        } => {
            json!({ "firehose": { "deliveryStreamName": delivery_stream_name } })
        }
    }
}

/// `state` is passed in: Create and Update responses always say ACTIVE (their state enums have only that value).
fn logging_configuration_json(config: &LoggingConfiguration, state: &str) -> Value {
    json!({
        "arn": config.arn,
        "id": config.id,
        "name": config.name,
        "createTime": wire_time(config.create_time),
        "updateTime": wire_time(config.update_time),
        "destinationConfiguration": destination_json(&config.destination),
        "state": state,
        "tags": config.tags,
    })
}

fn page_json<T>(
    service: &Service,
    list: &str,
    filters: &[&str],
    page: Page<T>,
    item: impl Fn(&T) -> Value,
) -> Result<Value, ApiError> {
    let mut body = Map::new();
    body.insert(
        list.to_string(),
        Value::Array(page.items.iter().map(item).collect()),
    );
    if let Some(cursor) = page.next {
        body.insert(
            "nextToken".into(),
            json!(service.tokens.issue(list, filters, cursor)?),
        );
    }
    Ok(Value::Object(body))
}

// ---- shared input shapes ----------------------------------------------------------------------------------

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
struct IdentifierInput {
    identifier: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Input {
    bucket_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudWatchLogsInput {
    log_group_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FirehoseInput {
    delivery_stream_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DestinationInput {
    s3: Option<S3Input>,
    cloud_watch_logs: Option<CloudWatchLogsInput>,
    firehose: Option<FirehoseInput>,
}

/// The DestinationConfiguration union: exactly one member, whose required member is valid.
fn validate_destination(v: &mut Validator, input: &DestinationInput) -> Option<Destination> {
    const FIELD: &str = "destinationConfiguration";
    let set = [
        input.s3.is_some(),
        input.cloud_watch_logs.is_some(),
        input.firehose.is_some(),
    ];
    if set.iter().filter(|set| **set).count() != 1 {
        v.fail(
            FIELD,
            "Exactly one of s3, cloudWatchLogs or firehose must be set",
        );
        return None;
    }
    if let Some(s3) = &input.s3 {
        let field = "destinationConfiguration.s3.bucketName";
        let name = v.required(field, &s3.bucket_name)?;
        let ok = v.length(field, name, limits::BUCKET_NAME_CHARS)
            && v.pattern(field, validate::is_bucket_name(name), "[a-z0-9-.]+");
        return ok.then(|| Destination::S3 {
            bucket_name: name.clone(),
        });
    }
    if let Some(logs) = &input.cloud_watch_logs {
        let field = "destinationConfiguration.cloudWatchLogs.logGroupName";
        let name = v.required(field, &logs.log_group_name)?;
        let ok = v.length(field, name, limits::LOG_GROUP_NAME_CHARS)
            && v.pattern(
                field,
                validate::is_log_group_name(name),
                "^[\\.\\-_/#A-Za-z0-9]+$",
            );
        return ok.then(|| Destination::CloudWatchLogs {
            log_group_name: name.clone(),
        });
    }
    if let Some(firehose) = &input.firehose {
        let field = "destinationConfiguration.firehose.deliveryStreamName";
        let name = v.required(field, &firehose.delivery_stream_name)?;
        let ok = v.length(field, name, limits::DELIVERY_STREAM_NAME_CHARS)
            && v.pattern(
                field,
                validate::is_delivery_stream_name(name),
                "[a-zA-Z0-9_.-]+",
            );
        return ok.then(|| Destination::Firehose {
            delivery_stream_name: name.clone(),
        });
    }
    None
}

fn required_identifier(input: &IdentifierInput, room: bool) -> Result<String, ApiError> {
    let mut v = Validator::new();
    if let Some(identifier) = v.required("identifier", &input.identifier) {
        if room {
            v.room_identifier("identifier", identifier);
        } else {
            v.logging_configuration_identifier("identifier", identifier);
        }
    }
    v.finish()?;
    Ok(input.identifier.clone().unwrap_or_default())
}

// ---- rooms ------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRoomInput {
    name: Option<String>,
    maximum_message_rate_per_second: Option<i64>,
    maximum_message_length: Option<i64>,
    message_review_handler: Option<HandlerInput>,
    tags: Option<BTreeMap<String, String>>,
    logging_configuration_identifiers: Option<Vec<String>>,
}

async fn create_room(service: &Service, input: CreateRoomInput) -> Result<Output, ApiError> {
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

fn get_room(service: &Service, input: IdentifierInput) -> Result<Output, ApiError> {
    let identifier = required_identifier(&input, true)?;
    let room = service.read(|store, _| store.room(&identifier).cloned())?;
    Ok(Output::Json(room_json(&room, true)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateRoomInput {
    identifier: Option<String>,
    name: Option<String>,
    maximum_message_rate_per_second: Option<i64>,
    maximum_message_length: Option<i64>,
    message_review_handler: Option<HandlerInput>,
    logging_configuration_identifiers: Option<Vec<String>>,
}

async fn update_room(service: &Service, input: UpdateRoomInput) -> Result<Output, ApiError> {
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

async fn delete_room(service: &Service, input: IdentifierInput) -> Result<Output, ApiError> {
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
struct ListRoomsInput {
    name: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    message_review_handler_uri: Option<String>,
    logging_configuration_identifier: Option<String>,
}

fn max_results(v: &mut Validator, value: Option<i64>) -> usize {
    // The largest page is also the default one.
    let value = unset_if_zero(value).unwrap_or(*limits::MAX_RESULTS.end());
    if v.range("maxResults", value, limits::MAX_RESULTS) {
        usize::try_from(value).unwrap_or(1)
    } else {
        1
    }
}

fn validate_next_token(v: &mut Validator, token: &Option<String>) {
    if let Some(token) = token {
        v.length("nextToken", token, limits::NEXT_TOKEN_CHARS);
    }
}

fn list_rooms(service: &Service, input: ListRoomsInput) -> Result<Output, ApiError> {
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

// ---- logging configurations -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateLoggingConfigurationInput {
    destination_configuration: Option<DestinationInput>,
    name: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

async fn create_logging_configuration(
    service: &Service,
    input: CreateLoggingConfigurationInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    let destination = v
        .required("destinationConfiguration", &input.destination_configuration)
        .and_then(|destination| validate_destination(&mut v, destination));
    if let Some(name) = &input.name {
        v.resource_name("name", name);
    }
    if let Some(tags) = &input.tags {
        v.tags("tags", tags);
    }
    v.finish()?;
    let destination = destination
        .ok_or_else(|| ApiError::field("destinationConfiguration", "Member must not be null"))?;
    let settings = service.traffic.settings();
    let name = input.name.unwrap_or_default();
    let tags = input.tags.unwrap_or_default();
    let config = service
        .mutate(|store, now| {
            store.create_logging_configuration(name, destination, tags, &settings, now)
        })
        .await?;
    Ok(Output::Json(logging_configuration_json(&config, "ACTIVE")))
}

fn get_logging_configuration(
    service: &Service,
    input: IdentifierInput,
) -> Result<Output, ApiError> {
    let identifier = required_identifier(&input, false)?;
    let body = service.read(|store, now| {
        let config = store.logging_configuration(&identifier)?;
        Ok(logging_configuration_json(
            config,
            config.state(now).wire_name(),
        ))
    })?;
    Ok(Output::Json(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateLoggingConfigurationInput {
    identifier: Option<String>,
    name: Option<String>,
    destination_configuration: Option<DestinationInput>,
}

async fn update_logging_configuration(
    service: &Service,
    input: UpdateLoggingConfigurationInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    if let Some(identifier) = v.required("identifier", &input.identifier) {
        v.logging_configuration_identifier("identifier", identifier);
    }
    if let Some(name) = &input.name {
        v.resource_name("name", name);
    }
    let destination = input
        .destination_configuration
        .as_ref()
        .and_then(|destination| validate_destination(&mut v, destination));
    v.finish()?;
    let settings = service.traffic.settings();
    let identifier = input.identifier.unwrap_or_default();
    let name = input.name;
    let config = service
        .mutate(|store, now| {
            store.update_logging_configuration(&identifier, name, destination, &settings, now)
        })
        .await?;
    Ok(Output::Json(logging_configuration_json(&config, "ACTIVE")))
}

async fn delete_logging_configuration(
    service: &Service,
    input: IdentifierInput,
) -> Result<Output, ApiError> {
    let identifier = required_identifier(&input, false)?;
    let settings = service.traffic.settings();
    service
        .mutate(|store, now| store.delete_logging_configuration(&identifier, &settings, now))
        .await?;
    Ok(Output::NoContent)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListLoggingConfigurationsInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn list_logging_configurations(
    service: &Service,
    input: ListLoggingConfigurationsInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    let limit = max_results(&mut v, input.max_results);
    validate_next_token(&mut v, &input.next_token);
    v.finish()?;
    let cursor = match non_empty(input.next_token) {
        Some(token) => Some(
            service
                .tokens
                .open(&token, LOGGING_CONFIGURATIONS_LIST, &[])?,
        ),
        None => None,
    };
    let (page, now) = service.read(|store, now| {
        Ok((
            store.list_logging_configurations(limit, cursor.as_ref()),
            now,
        ))
    })?;
    let body = page_json(service, LOGGING_CONFIGURATIONS_LIST, &[], page, |config| {
        logging_configuration_json(config, config.state(now).wire_name())
    })?;
    Ok(Output::Json(body))
}

// ---- chat tokens and messaging ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateChatTokenInput {
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

async fn create_chat_token(
    service: &Service,
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
struct SendEventInput {
    room_identifier: Option<String>,
    event_name: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
}

fn existing_room_arn(service: &Service, identifier: &str) -> Result<String, ApiError> {
    service.read(|store, _| Ok(store.room(identifier)?.arn.clone()))
}

fn send_event(service: &Service, input: SendEventInput) -> Result<Output, ApiError> {
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
struct DeleteMessageInput {
    room_identifier: Option<String>,
    id: Option<String>,
    reason: Option<String>,
}

fn delete_message(service: &Service, input: DeleteMessageInput) -> Result<Output, ApiError> {
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
struct DisconnectUserInput {
    room_identifier: Option<String>,
    user_id: Option<String>,
    reason: Option<String>,
}

fn disconnect_user(service: &Service, input: DisconnectUserInput) -> Result<Output, ApiError> {
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

// ---- tags -------------------------------------------------------------------------------------------------

fn list_tags_for_resource(service: &Service, arn: &str) -> Result<Output, ApiError> {
    let tags = service.read(|store, _| store.tags(arn))?;
    Ok(Output::Json(json!({ "tags": tags })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResourceInput {
    tags: Option<BTreeMap<String, String>>,
}

async fn tag_resource(
    service: &Service,
    arn: &str,
    input: TagResourceInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    if let Some(tags) = v.required("tags", &input.tags) {
        v.tags("tags", tags);
    }
    v.finish()?;
    let tags = input.tags.unwrap_or_default();
    service
        .mutate(|store, _| store.tag(arn, tags, MAX_TAGS))
        .await?;
    Ok(Output::Json(json!({})))
}

async fn untag_resource(
    service: &Service,
    arn: &str,
    query: Option<&str>,
) -> Result<Output, ApiError> {
    let keys = tag_keys_from_query(query)?;
    let mut v = Validator::new();
    if let Some(keys) = v.required("tagKeys", &keys) {
        v.size("tagKeys", keys.len(), MAX_TAGS);
        for key in keys {
            v.tag_key("tagKeys", key);
        }
    }
    v.finish()?;
    let keys = keys.unwrap_or_default();
    service.mutate(|store, _| store.untag(arn, &keys)).await?;
    Ok(Output::Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys_come_from_repeated_query_parameters() {
        assert_eq!(tag_keys_from_query(None).expect("ok"), None);
        assert_eq!(tag_keys_from_query(Some("other=1")).expect("ok"), None);
        let keys =
            tag_keys_from_query(Some("tagKeys=a&tagKeys=b%20c&tagKeys=d%2Be+f&x=y")).expect("ok");
        assert_eq!(
            keys,
            Some(vec![
                "a".to_string(),
                "b c".to_string(),
                "d+e+f".to_string()
            ])
        );
        assert_eq!(
            tag_keys_from_query(Some("tagKeys=")).expect("ok"),
            Some(vec![String::new()])
        );
        assert!(tag_keys_from_query(Some("tagKeys=%FF")).is_err());
    }

    #[test]
    fn resource_arn_labels_are_percent_decoded_and_validated() {
        let label = "arn%3Aaws%3Aivschat%3Aus-west-2%3A123456789012%3Aroom%2FabcdEFGH1234";
        assert_eq!(
            resource_arn(Some(label)).expect("valid"),
            "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234"
        );
        assert!(matches!(
            resource_arn(Some("not-an-arn")),
            Err(ApiError::Validation { .. })
        ));
        assert!(matches!(
            resource_arn(Some("%FF%FE")),
            Err(ApiError::Validation { .. })
        ));
    }

    #[test]
    fn bodies_decode_leniently_but_reject_wrong_types() {
        let input: IdentifierInput = decode(b"").expect("empty body is {}");
        assert!(input.identifier.is_none());
        let input: IdentifierInput = decode(br#"{"identifier": null, "unknown": [1, 2]}"#)
            .expect("null and unknown members");
        assert!(input.identifier.is_none());
        for bad in [
            &b"{"[..],
            b"[]",
            b"\"x\"",
            b"{\"identifier\": 5}",
            b"\xff\xfe",
            b"{\"identifier\": \"\xff\"}",
        ] {
            assert!(
                matches!(
                    decode::<IdentifierInput>(bad),
                    Err(ApiError::Serialization { .. })
                ),
                "{bad:?}"
            );
        }
        // Floats and integers beyond i64 are not integers of the model: serialization errors, not panics.
        for bad in [
            &br#"{"maximumMessageLength": 1e3}"#[..],
            br#"{"maximumMessageLength": 99999999999999999999}"#,
        ] {
            assert!(matches!(
                decode::<CreateRoomInput>(bad),
                Err(ApiError::Serialization { .. })
            ));
        }
    }

    #[test]
    fn destination_union_needs_exactly_one_member() {
        let decode_destination = |json: &str| -> Result<Option<Destination>, ApiError> {
            let input: DestinationInput = serde_json::from_str(json).expect("json");
            let mut v = Validator::new();
            let destination = validate_destination(&mut v, &input);
            v.finish().map(|()| destination)
        };
        assert_eq!(
            decode_destination(r#"{"s3": {"bucketName": "demo-bucket"}}"#).expect("valid"),
            Some(Destination::S3 {
                bucket_name: "demo-bucket".into()
            })
        );
        assert!(decode_destination(r#"{}"#).is_err());
        assert!(
            decode_destination(
                r#"{"s3": {"bucketName": "demo-bucket"}, "firehose": {"deliveryStreamName": "s"}}"#
            )
            .is_err()
        );
        assert!(decode_destination(r#"{"s3": {}}"#).is_err());
        assert!(decode_destination(r#"{"cloudWatchLogs": {"logGroupName": "a b"}}"#).is_err());
        assert!(decode_destination(r#"{"firehose": {"deliveryStreamName": ""}}"#).is_err());
    }
}
