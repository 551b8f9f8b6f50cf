//! The `ChatLoggingConfiguration` kind: one Amazon IVS Chat logging configuration
//! (`CreateLoggingConfiguration` / `UpdateLoggingConfiguration` / `DeleteLoggingConfiguration`).
//!
//! Field names mirror the AWS API. The AWS `DestinationConfiguration` union is three optional fields plus a
//! CEL "exactly one" rule, which keeps the schema structural and the error message readable.

use super::patterns;
use super::schema::for_kubernetes;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

managed_spec! {
    /// Desired state of an Amazon IVS Chat logging configuration.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[allow(
        clippy::duplicated_attributes,
        reason = "each printcolumn(...) repeats `type_ = \"string\"`; they are separate columns, not duplicates"
    )]
    #[kube(
        group = "ivschat.dev",
        version = "v1alpha1",
        kind = "ChatLoggingConfiguration",
        namespaced,
        status = "ChatLoggingConfigurationStatus",
        derive = "PartialEq",
        shortname = "chlc",
        category = "ivschat",
        doc = "ChatLoggingConfiguration is an Amazon IVS Chat logging configuration (where rooms send their \
            messages and events: an S3 bucket, a CloudWatch Logs log group or a Firehose delivery stream), \
            managed by the ivschat-operator. ChatRooms in the same namespace refer to it by name. Set the \
            annotation `ivschat.dev/paused: \"true\"` to pause reconciliation: the operator then makes no AWS \
            call for the object (deletion waits until the annotation is removed or set to another value).",
        printcolumn(
            name = "ID",
            type_ = "string",
            json_path = ".status.id",
            description = "AWS logging configuration ID"
        ),
        printcolumn(
            name = "State",
            type_ = "string",
            json_path = ".status.state",
            description = "AWS state"
        ),
        printcolumn(
            name = "Ready",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].status",
            description = "Status of the Ready condition"
        ),
        printcolumn(
            name = "Age",
            type_ = "date",
            json_path = ".metadata.creationTimestamp"
        ),
        printcolumn(
            name = "ARN",
            type_ = "string",
            json_path = ".status.arn",
            priority = 1,
            description = "AWS logging configuration ARN"
        ),
        printcolumn(
            name = "Region",
            type_ = "string",
            json_path = ".status.region",
            priority = 1,
            description = "The AWS region the resource lives in"
        ),
        printcolumn(
            name = "Account",
            type_ = "string",
            json_path = ".status.accountId",
            priority = 1,
            description = "The AWS account id the resource lives in"
        )
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = for_kubernetes)]
    pub struct ChatLoggingConfigurationSpec {
        /// Name of the logging configuration in AWS (not the Kubernetes object name): 0-128 characters of
        /// letters, digits, `-` and `_`. Names need not be unique in AWS. Omitted: no name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 128), pattern(patterns::AWS_NAME))]
        pub name: Option<String>,

        /// Where the logs go: exactly one of s3, cloudWatchLogs, firehose. Can be changed after creation.
        pub destination_configuration: DestinationConfiguration,
    }
    adopt_arn_pattern = patterns::LOGGING_CONFIGURATION_ARN;
    deletion_policy_doc = "What happens to the AWS logging configuration when this object is deleted. `Delete` \
        (default): it is deleted. `Retain`: it is left in AWS, untouched, and only the \
        Kubernetes object goes away.";
    management_policy_doc = "Whether the operator may write to AWS. `Manage` (default): the operator creates, \
        updates, tags and deletes the logging configuration so that it matches this spec. \
        `ObserveOnly`: the operator never writes to AWS (whatever deletionPolicy says); it only \
        reads the logging configuration named by adoptArn, which is then required, and mirrors \
        it into status.";
    adopt_arn_doc = "ARN of an existing AWS logging configuration to take over instead of creating a new one \
        (`arn:aws:ivschat:<region>:<account>:logging-configuration/<id>`). With managementPolicy \
        Manage the operator then updates and tags it like one it created. Required when \
        managementPolicy is ObserveOnly. Can only be set when the object is created, and cannot \
        be changed or removed afterwards.";
    export_schema = "crate::crd::export::logging_configuration_export";
}

/// The AWS `DestinationConfiguration` union: exactly one member is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    transform = for_kubernetes,
    extend("x-kubernetes-validations" = [{
        "rule": "(has(self.s3) ? 1 : 0) + (has(self.cloudWatchLogs) ? 1 : 0) + (has(self.firehose) ? 1 : 0) == 1",
        "message": "spec.destinationConfiguration must set exactly one of s3, cloudWatchLogs, firehose",
    }])
)]
pub struct DestinationConfiguration {
    /// Send logs to an Amazon S3 bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Destination>,

    /// Send logs to an Amazon CloudWatch Logs log group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logs: Option<CloudWatchLogsDestination>,

    /// Send logs to an Amazon Kinesis Data Firehose delivery stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firehose: Option<FirehoseDestination>,
}

/// An Amazon S3 destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Destination {
    /// Name of the S3 bucket: 3-63 characters of lowercase letters, digits, `-` and `.`.
    #[schemars(length(min = 3, max = 63), pattern(patterns::BUCKET_NAME))]
    pub bucket_name: String,
}

/// An Amazon CloudWatch Logs destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchLogsDestination {
    /// Name of the log group: 1-512 characters of letters, digits, `.`, `-`, `_`, `/` and `#`.
    #[schemars(length(min = 1, max = 512), pattern(patterns::LOG_GROUP_NAME))]
    pub log_group_name: String,
}

/// An Amazon Kinesis Data Firehose destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseDestination {
    /// Name of the delivery stream: 1-64 characters of letters, digits, `_`, `.` and `-`.
    #[schemars(length(min = 1, max = 64), pattern(patterns::DELIVERY_STREAM_NAME))]
    pub delivery_stream_name: String,
}

managed_status! {
    /// Observed state of the AWS logging configuration, following kstatus (conditions Ready, Reconciling,
    /// Stalled).
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = for_kubernetes, transform = super::managed::conditions_by_type)]
    pub struct ChatLoggingConfigurationStatus describing "logging configuration" {
        /// The AWS state: CREATING, CREATE_FAILED, DELETING, DELETE_FAILED, UPDATING, UPDATE_FAILED or ACTIVE.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub state: Option<String>,
    }
}

impl ChatLoggingConfiguration {
    /// Whether reconciliation is paused by the `ivschat.dev/paused: "true"` annotation.
    pub fn is_paused(&self) -> bool {
        super::is_paused(&self.metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{DeletionPolicy, ManagementPolicy};

    #[test]
    fn spec_round_trips_with_aws_field_names() {
        let json = serde_json::json!({
            "name": "test-logging-config",
            "destinationConfiguration": { "s3": { "bucketName": "demo-logging-bucket" } },
            "tags": { "team": "chat" },
            "deletionPolicy": "Delete",
            "managementPolicy": "Manage",
        });
        let spec: ChatLoggingConfigurationSpec =
            serde_json::from_value(json.clone()).expect("a valid spec");
        assert_eq!(
            spec.destination_configuration.s3,
            Some(S3Destination {
                bucket_name: "demo-logging-bucket".into()
            })
        );
        assert_eq!(serde_json::to_value(&spec).ok(), Some(json));
    }

    #[test]
    fn policies_default_when_omitted() {
        let spec: ChatLoggingConfigurationSpec = serde_json::from_value(serde_json::json!({
            "destinationConfiguration": { "firehose": { "deliveryStreamName": "s" } },
        }))
        .expect("a valid spec");
        assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
        assert_eq!(spec.management_policy, ManagementPolicy::Manage);
        assert!(spec.destination_configuration.firehose.is_some());
    }

    #[test]
    fn paused_reads_the_annotation() {
        let mut config =
            ChatLoggingConfiguration::new("logs", ChatLoggingConfigurationSpec::default());
        assert!(!config.is_paused());
        config
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(crate::crd::PAUSED_ANNOTATION.into(), "true".into());
        assert!(config.is_paused());
    }
}
