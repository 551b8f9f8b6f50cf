//! Create/Get/Update/Delete/ListLoggingConfiguration(s): their inputs, the destination union, and the
//! logging-configuration output shape.

use std::collections::BTreeMap;

use ivschat_api::limits;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input::{
    IdentifierInput, max_results, non_empty, required_identifier, validate_next_token,
};
use super::output::{Output, page_json};
use crate::error::ApiError;
use crate::service::ScopedService;
use crate::store::{Destination, LoggingConfiguration};
use crate::validate::{self, Validator};
use crate::wire::wire_time;

const LOGGING_CONFIGURATIONS_LIST: &str = "loggingConfigurations";

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateLoggingConfigurationInput {
    destination_configuration: Option<DestinationInput>,
    name: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

pub(super) async fn create_logging_configuration(
    service: &ScopedService<'_>,
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

pub(super) fn get_logging_configuration(
    service: &ScopedService<'_>,
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
pub(super) struct UpdateLoggingConfigurationInput {
    identifier: Option<String>,
    name: Option<String>,
    destination_configuration: Option<DestinationInput>,
}

pub(super) async fn update_logging_configuration(
    service: &ScopedService<'_>,
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

pub(super) async fn delete_logging_configuration(
    service: &ScopedService<'_>,
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
pub(super) struct ListLoggingConfigurationsInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) fn list_logging_configurations(
    service: &ScopedService<'_>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
