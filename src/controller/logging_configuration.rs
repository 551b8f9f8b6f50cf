//! ChatLoggingConfiguration ↔ AWS IVS Chat logging configuration, read top to bottom: the spec maps to
//! normalised fields (name, destination), the configuration is observed, diffed, and created / updated /
//! deleted through the SDK. Logging configurations have an asynchronous lifecycle: Create and Update answer
//! ACTIVE while Get reports CREATING / UPDATING, so every write is followed by a Get to learn the real state.
//! Deletion waits while ChatRooms in the namespace still name the configuration. ListLoggingConfigurations
//! summaries carry every field, so a listing alone confirms a configuration in sync.

use super::aws::{Aws, Retry, sdk_tags, sdk_time};
use super::aws_error::{AwsError, ErrorClass};
use super::driver::{Deletion, ManagedKind, Observed, Pending};
use super::export::MessagingEndpoint;
use super::inventory::{Listed, Page};
use super::room::referenced_names;
use super::status::{StatusDocument, reasons};
use crate::crd::{
    ChatLoggingConfiguration, ChatRoom, CloudWatchLogsDestination, DestinationConfiguration,
    FirehoseDestination, S3Destination,
};
use aws_sdk_ivschat::types::{
    CloudWatchLogsDestinationConfiguration, DestinationConfiguration as AwsDestination,
    FirehoseDestinationConfiguration, S3DestinationConfiguration,
};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use serde::Serialize;
use std::collections::BTreeMap;

/// The AWS logging-configuration fields the spec controls.
#[derive(Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct LoggingConfigurationFields {
    /// `""` when unnamed.
    pub name: String,
    pub destination_configuration: DestinationConfiguration,
}

/// The destination as the SDK type. An empty destination (the schema forbids it) is a terminal error.
pub fn to_aws_destination(
    destination: &DestinationConfiguration,
) -> Result<AwsDestination, AwsError> {
    let invalid = |message: String| AwsError {
        operation: "BuildDestination",
        class: ErrorClass::Terminal,
        code: "InvalidDestination".to_owned(),
        message,
    };
    if let Some(s3) = &destination.s3 {
        return S3DestinationConfiguration::builder()
            .bucket_name(&s3.bucket_name)
            .build()
            .map(AwsDestination::S3)
            .map_err(|err| invalid(err.to_string()));
    }
    if let Some(logs) = &destination.cloud_watch_logs {
        return CloudWatchLogsDestinationConfiguration::builder()
            .log_group_name(&logs.log_group_name)
            .build()
            .map(AwsDestination::CloudWatchLogs)
            .map_err(|err| invalid(err.to_string()));
    }
    if let Some(firehose) = &destination.firehose {
        return FirehoseDestinationConfiguration::builder()
            .delivery_stream_name(&firehose.delivery_stream_name)
            .build()
            .map(AwsDestination::Firehose)
            .map_err(|err| invalid(err.to_string()));
    }
    Err(invalid(
        "spec.destinationConfiguration sets none of s3, cloudWatchLogs, firehose".to_owned(),
    ))
}

/// The SDK destination in the spec's shape (an unknown future variant maps to an empty destination, which
/// differs from any valid spec and is therefore corrected).
pub fn from_aws_destination(destination: Option<&AwsDestination>) -> DestinationConfiguration {
    let mut mapped = DestinationConfiguration::default();
    match destination {
        Some(AwsDestination::S3(s3)) => {
            mapped.s3 = Some(S3Destination {
                bucket_name: s3.bucket_name().to_owned(),
            });
        }
        Some(AwsDestination::CloudWatchLogs(logs)) => {
            mapped.cloud_watch_logs = Some(CloudWatchLogsDestination {
                log_group_name: logs.log_group_name().to_owned(),
            });
        }
        Some(AwsDestination::Firehose(firehose)) => {
            mapped.firehose = Some(FirehoseDestination {
                delivery_stream_name: firehose.delivery_stream_name().to_owned(),
            });
        }
        _ => {}
    }
    mapped
}

/// The ChatLoggingConfigurations to reconcile when a room changes: those it names, and every one in its
/// namespace that is waiting to be deleted (the room may just have let go of it).
pub fn configurations_affected_by(
    configs: &Store<ChatLoggingConfiguration>,
    room: &ChatRoom,
) -> Vec<ObjectRef<ChatLoggingConfiguration>> {
    let namespace = room.namespace().unwrap_or_default();
    let mut affected: Vec<ObjectRef<ChatLoggingConfiguration>> = referenced_names(room)
        .map(|name| ObjectRef::new(name).within(&namespace))
        .collect();
    affected.extend(
        configs
            .state()
            .iter()
            .filter(|config| {
                config.namespace().as_deref() == Some(namespace.as_str())
                    && config.metadata.deletion_timestamp.is_some()
            })
            .map(|config| ObjectRef::from_obj(&**config)),
    );
    affected
}

/// [`Observed`] from any logging-configuration-shaped SDK answer: GetLoggingConfiguration,
/// CreateLoggingConfiguration and UpdateLoggingConfiguration return the same fields in three output
/// types, so one macro builds all three. `$arn`: the ARN to report if the answer has none.
macro_rules! observed_logging_configuration {
    ($config:expr, $arn:expr) => {{
        let config = $config;
        Observed {
            arn: config.arn().unwrap_or($arn).to_owned(),
            id: config.id().map(str::to_owned),
            create_time: sdk_time(config.create_time()),
            update_time: sdk_time(config.update_time()),
            state: config.state().map(|s| s.as_str().to_owned()),
            fields: LoggingConfigurationFields {
                name: config.name().unwrap_or_default().to_owned(),
                destination_configuration: from_aws_destination(config.destination_configuration()),
            },
            tags: sdk_tags(config.tags()),
        }
    }};
}

async fn get(
    aws: &Aws,
    arn: &str,
) -> Result<Option<Observed<LoggingConfigurationFields>>, AwsError> {
    let config = match aws
        .call("GetLoggingConfiguration", Retry::Idempotent, |client| {
            client.get_logging_configuration().identifier(arn).send()
        })
        .await
    {
        Ok(config) => config,
        Err(err) if err.class == ErrorClass::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    Ok(Some(observed_logging_configuration!(config, arn)))
}

/// After a write, AWS may already have forgotten the resource (deleted out of band in between): then the
/// write's own answer is the best knowledge there is.
async fn get_after_write(
    aws: &Aws,
    written: Observed<LoggingConfigurationFields>,
) -> Result<Observed<LoggingConfigurationFields>, AwsError> {
    Ok(get(aws, &written.arn).await?.unwrap_or(written))
}

impl ManagedKind for ChatLoggingConfiguration {
    const KIND: &'static str = "ChatLoggingConfiguration";
    const LIST_OPERATION: &'static str = "ListLoggingConfigurations";
    const LISTED_RESOURCES: &'static str = "logging configurations";
    type Fields = LoggingConfigurationFields;
    type Summary = LoggingConfigurationFields;
    type Context = Store<ChatRoom>;

    async fn context_ready(rooms: &Self::Context) {
        // Deletion must see every room that still names this configuration.
        super::driver::store_ready(rooms).await;
    }

    fn exported_values(
        status: &StatusDocument,
        _messaging_endpoint: &MessagingEndpoint,
    ) -> Option<BTreeMap<&'static str, String>> {
        super::export::logging_configuration_values(status)
    }

    fn desired(&self, _rooms: &Self::Context) -> Result<LoggingConfigurationFields, Pending> {
        Ok(LoggingConfigurationFields {
            name: self.spec.name.clone().unwrap_or_default(),
            destination_configuration: self.spec.destination_configuration.clone(),
        })
    }

    fn blocks_deletion(&self, rooms: &Self::Context) -> Option<Pending> {
        let namespace = self.namespace();
        let name = self.name_any();
        let mut users: Vec<String> = rooms
            .state()
            .iter()
            .filter(|room| room.namespace() == namespace)
            .filter(|room| referenced_names(room).any(|n| n == name))
            .map(|room| room.name_any())
            .collect();
        if users.is_empty() {
            return None;
        }
        users.sort();
        let count = users.len();
        users.truncate(10);
        Some(Pending {
            reason: reasons::IN_USE,
            message: format!(
                "Waiting for {count} ChatRoom(s) that still use this logging configuration: {}{}",
                users.join(", "),
                if count > 10 { ", ..." } else { "" }
            ),
            stalled: false,
        })
    }

    async fn observe(
        aws: &Aws,
        arn: &str,
    ) -> Result<Option<Observed<LoggingConfigurationFields>>, AwsError> {
        get(aws, arn).await
    }

    async fn create(
        aws: &Aws,
        desired: &LoggingConfigurationFields,
        tags_to_set: &BTreeMap<String, String>,
    ) -> Result<Observed<LoggingConfigurationFields>, AwsError> {
        let destination = to_aws_destination(&desired.destination_configuration)?;
        let created = aws
            .call(
                "CreateLoggingConfiguration",
                Retry::OnlyIfNotRun,
                |client| {
                    let mut request = client
                        .create_logging_configuration()
                        .destination_configuration(destination.clone())
                        .set_tags(Some(tags_to_set.clone().into_iter().collect()));
                    if !desired.name.is_empty() {
                        request = request.name(&desired.name);
                    }
                    request.send()
                },
            )
            .await?;
        let written = observed_logging_configuration!(created, "");
        get_after_write(aws, written).await
    }

    async fn update(
        aws: &Aws,
        arn: &str,
        desired: &LoggingConfigurationFields,
    ) -> Result<Observed<LoggingConfigurationFields>, AwsError> {
        let destination = to_aws_destination(&desired.destination_configuration)?;
        let updated = aws
            .call("UpdateLoggingConfiguration", Retry::Idempotent, |client| {
                client
                    .update_logging_configuration()
                    .identifier(arn)
                    .name(&desired.name)
                    .destination_configuration(destination.clone())
                    .send()
            })
            .await?;
        let written = observed_logging_configuration!(updated, arn);
        get_after_write(aws, written).await
    }

    async fn delete(aws: &Aws, arn: &str, retry_failed: bool) -> Result<Deletion, AwsError> {
        // Deletion completes after the call returns: look first, so a DELETING configuration is waited
        // for instead of being deleted again (which AWS refuses during a transition).
        let Some(current) = get(aws, arn).await? else {
            return Ok(Deletion::Gone);
        };
        match current.state.as_deref() {
            Some("DELETING") => return Ok(Deletion::InProgress("DELETING".to_owned())),
            // Reported first; retried only after the long backoff, not at every poll.
            Some(state @ "DELETE_FAILED") if !retry_failed => {
                return Ok(Deletion::Failed(state.to_owned()));
            }
            _ => {}
        }
        match aws
            .call("DeleteLoggingConfiguration", Retry::Idempotent, |client| {
                client.delete_logging_configuration().identifier(arn).send()
            })
            .await
        {
            Ok(_) => Ok(Deletion::InProgress("DELETING".to_owned())),
            Err(err) if err.class == ErrorClass::NotFound => Ok(Deletion::Gone),
            Err(err) => Err(err),
        }
    }

    async fn list_page(
        aws: &Aws,
        next_token: Option<String>,
    ) -> Result<Page<LoggingConfigurationFields>, AwsError> {
        let page = aws
            .call(Self::LIST_OPERATION, Retry::Idempotent, |client| {
                client
                    .list_logging_configurations()
                    .max_results(50)
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
        let listed = page
            .logging_configurations()
            .iter()
            .map(|summary| Listed {
                arn: summary.arn().unwrap_or_default().to_owned(),
                create_time: sdk_time(summary.create_time()),
                update_time: sdk_time(summary.update_time()),
                state: summary.state().map(|s| s.as_str().to_owned()),
                tags: sdk_tags(summary.tags()),
                summary: LoggingConfigurationFields {
                    name: summary.name().unwrap_or_default().to_owned(),
                    destination_configuration: from_aws_destination(
                        summary.destination_configuration(),
                    ),
                },
            })
            .collect();
        Ok((listed, page.next_token().map(str::to_owned)))
    }

    /// A listing shows every field.
    fn listed_summary(desired: &LoggingConfigurationFields) -> LoggingConfigurationFields {
        desired.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_destination_round_trips_through_the_sdk_type() {
        for destination in [
            DestinationConfiguration {
                s3: Some(S3Destination {
                    bucket_name: "demo-logging-bucket".into(),
                }),
                ..Default::default()
            },
            DestinationConfiguration {
                cloud_watch_logs: Some(CloudWatchLogsDestination {
                    log_group_name: "/chat/logs".into(),
                }),
                ..Default::default()
            },
            DestinationConfiguration {
                firehose: Some(FirehoseDestination {
                    delivery_stream_name: "stream".into(),
                }),
                ..Default::default()
            },
        ] {
            let aws = to_aws_destination(&destination).expect("valid destination");
            assert_eq!(from_aws_destination(Some(&aws)), destination);
        }
    }

    #[test]
    fn an_empty_destination_is_terminal_and_unknown_ones_differ_from_any_spec() {
        let err = to_aws_destination(&DestinationConfiguration::default()).expect_err("invalid");
        assert_eq!(err.class, ErrorClass::Terminal);
        assert_eq!(
            from_aws_destination(None),
            DestinationConfiguration::default()
        );
    }

    #[test]
    fn a_destination_change_is_one_changed_field() {
        let desired = LoggingConfigurationFields {
            name: "logs".into(),
            destination_configuration: DestinationConfiguration {
                s3: Some(S3Destination {
                    bucket_name: "a-bucket".into(),
                }),
                ..Default::default()
            },
        };
        let observed = LoggingConfigurationFields {
            destination_configuration: DestinationConfiguration {
                firehose: Some(FirehoseDestination {
                    delivery_stream_name: "s".into(),
                }),
                ..Default::default()
            },
            ..desired.clone()
        };
        assert_eq!(
            super::super::plan::changed_fields(&desired, &observed),
            vec!["destinationConfiguration".to_owned()]
        );
    }
}
