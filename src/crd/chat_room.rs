//! The `ChatRoom` kind: one Amazon IVS Chat room (`CreateRoom` / `UpdateRoom` / `DeleteRoom`).
//!
//! Field names mirror the AWS API. Every bound of ivschat-api.md §2 is in the schema, so the API server
//! rejects what AWS would reject; the rules spanning several fields are CEL rules on `spec`.

use super::patterns;
use super::schema::for_kubernetes;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// AWS default of `maximumMessageLength` when the field is omitted.
pub const DEFAULT_MAXIMUM_MESSAGE_LENGTH: i32 = 500;
/// AWS default of `maximumMessageRatePerSecond` when the field is omitted.
pub const DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND: i32 = 10;

managed_spec! {
    /// Desired state of an Amazon IVS Chat room.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[allow(
        clippy::duplicated_attributes,
        reason = "each printcolumn(...) repeats `type_ = \"string\"`; they are separate columns, not duplicates"
    )]
    #[kube(
        group = "ivschat.dev",
        version = "v1alpha1",
        kind = "ChatRoom",
        namespaced,
        status = "ChatRoomStatus",
        derive = "PartialEq",
        shortname = "chr",
        category = "ivschat",
        doc = "ChatRoom is an Amazon IVS Chat room managed by the ivschat-operator. The operator creates the room \
            (or adopts the one named by spec.adoptArn), keeps it equal to the spec, and reports it in status. \
            Set the annotation `ivschat.dev/paused: \"true\"` to pause reconciliation: the operator then makes no \
            AWS call for the object (deletion waits until the annotation is removed or set to another value).",
        printcolumn(
            name = "ID",
            type_ = "string",
            json_path = ".status.id",
            description = "AWS room ID"
        ),
        printcolumn(
            name = "Ready",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].status",
            description = "Status of the Ready condition"
        ),
        printcolumn(
            name = "Reason",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
            description = "Reason of the Ready condition"
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
            description = "AWS room ARN"
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
    pub struct ChatRoomSpec {
        /// Name of the room in AWS (not the Kubernetes object name): 0-128 characters of letters, digits, `-`
        /// and `_`. Names need not be unique in AWS. Omitted: the room has no name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 128), pattern(patterns::AWS_NAME))]
        pub name: Option<String>,

        /// Maximum number of characters (Unicode code points) in a single message, 1-500. Omitted: AWS applies
        /// its default of 500.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 500))]
        pub maximum_message_length: Option<i32>,

        /// Maximum number of messages per second that can be sent to the room (by all clients together),
        /// 1-100. Omitted: AWS applies its default of 10.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 100))]
        pub maximum_message_rate_per_second: Option<i32>,

        /// Lambda function that reviews every message before it is delivered. Omitted (or an empty uri): no
        /// review.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message_review_handler: Option<MessageReviewHandler>,

        /// Logging configurations the room sends its messages and events to: at most 3 entries, each naming
        /// either a ChatLoggingConfiguration in the same namespace (`name`) or an existing AWS logging
        /// configuration (`arn`), without duplicates. Omitted or empty: the room logs nowhere.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(
            length(max = 3),
            extend("x-kubernetes-validations" = [{
                "rule": "self.all(x, self.exists_one(y, y == x))",
                "message": "spec.loggingConfigurations must not contain the same entry twice",
            }])
        )]
        pub logging_configurations: Vec<LoggingConfigurationReference>,
    }
    adopt_arn_pattern = patterns::ROOM_ARN;
    deletion_policy_doc = "What happens to the AWS room when this object is deleted. `Delete` (default): the room \
        is deleted. `Retain`: the room is left in AWS, untouched, and only the Kubernetes object \
        goes away.";
    management_policy_doc = "Whether the operator may write to AWS. `Manage` (default): the operator creates, \
        updates, tags and deletes the room so that it matches this spec. `ObserveOnly`: the \
        operator never writes to AWS (no create, update, tag or delete, whatever deletionPolicy \
        says); it only reads the room named by adoptArn, which is then required, and mirrors it \
        into status.";
    adopt_arn_doc = "ARN of an existing AWS room to take over instead of creating a new one \
        (`arn:aws:ivschat:<region>:<account>:room/<id>`). With managementPolicy Manage the \
        operator then updates and tags that room like one it created. Required when \
        managementPolicy is ObserveOnly. Can only be set when the object is created, and cannot \
        be changed or removed afterwards.";
    export_schema = "crate::crd::export::room_export";
}

/// The Lambda function that reviews messages, and what happens when it fails.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = for_kubernetes)]
pub struct MessageReviewHandler {
    /// ARN of the Lambda function (`arn:aws:lambda:<region>:<12-digit account>:function:<name>`), at most
    /// 170 characters. Empty or omitted: no message review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 170), pattern(patterns::LAMBDA_ARN))]
    pub uri: Option<String>,

    /// What to do with a message when the handler returns an invalid response, fails or times out: `ALLOW`
    /// delivers it, `DENY` drops it. Omitted: AWS applies its default, ALLOW.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_result: Option<FallbackResult>,
}

/// `fallbackResult` of a message review handler (the AWS `FallbackResult` enum).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FallbackResult {
    /// Deliver the message.
    #[default]
    Allow,
    /// Drop the message.
    Deny,
}

impl FallbackResult {
    /// The AWS wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "ALLOW",
            Self::Deny => "DENY",
        }
    }
}

/// One logging configuration of a room: exactly one of `name` or `arn`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    transform = for_kubernetes,
    extend("x-kubernetes-validations" = [{
        "rule": "has(self.name) != has(self.arn)",
        "message": "spec.loggingConfigurations entries must set exactly one of name, arn",
    }])
)]
pub struct LoggingConfigurationReference {
    /// Name of a ChatLoggingConfiguration in the same namespace; the operator uses its status.arn once it
    /// is Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(patterns::OBJECT_NAME))]
    pub name: Option<String>,

    /// ARN of an AWS logging configuration not managed in this namespace
    /// (`arn:aws:ivschat:<region>:<account>:logging-configuration/<id>`), at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        pattern(patterns::LOGGING_CONFIGURATION_ARN)
    )]
    pub arn: Option<String>,
}

/// What a [`LoggingConfigurationReference`] points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoggingConfigurationTarget<'a> {
    /// A ChatLoggingConfiguration object in the room's namespace.
    Name(&'a str),
    /// An AWS logging-configuration ARN.
    Arn(&'a str),
}

impl LoggingConfigurationReference {
    /// The single target of this entry; `None` when both or neither field is set (the schema forbids that).
    pub fn target(&self) -> Option<LoggingConfigurationTarget<'_>> {
        match (&self.name, &self.arn) {
            (Some(name), None) => Some(LoggingConfigurationTarget::Name(name)),
            (None, Some(arn)) => Some(LoggingConfigurationTarget::Arn(arn)),
            _ => None,
        }
    }
}

managed_status! {
    /// Observed state of the AWS room, following kstatus (conditions Ready, Reconciling, Stalled).
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = for_kubernetes, transform = super::managed::conditions_by_type)]
    pub struct ChatRoomStatus describing "room" {
        /// ARNs of the logging configurations the room was given, in spec order (names resolved to ARNs).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub logging_configuration_arns: Vec<String>,
    }
}

impl ChatRoomSpec {
    /// `maximumMessageLength` with the AWS default applied.
    pub fn effective_maximum_message_length(&self) -> i32 {
        self.maximum_message_length
            .unwrap_or(DEFAULT_MAXIMUM_MESSAGE_LENGTH)
    }

    /// `maximumMessageRatePerSecond` with the AWS default applied.
    pub fn effective_maximum_message_rate_per_second(&self) -> i32 {
        self.maximum_message_rate_per_second
            .unwrap_or(DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND)
    }

    /// The message review handler's Lambda ARN; empty when there is no handler (AWS's "no review").
    pub fn effective_message_review_handler_uri(&self) -> &str {
        self.message_review_handler
            .as_ref()
            .and_then(|handler| handler.uri.as_deref())
            .unwrap_or("")
    }

    /// The handler's `fallbackResult` with the AWS default (ALLOW) applied.
    pub fn effective_fallback_result(&self) -> FallbackResult {
        self.message_review_handler
            .as_ref()
            .and_then(|handler| handler.fallback_result)
            .unwrap_or_default()
    }
}

impl ChatRoom {
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
    fn aws_defaults_apply_when_fields_are_omitted() {
        let spec = ChatRoomSpec::default();
        assert_eq!(spec.effective_maximum_message_length(), 500);
        assert_eq!(spec.effective_maximum_message_rate_per_second(), 10);
        assert_eq!(spec.effective_message_review_handler_uri(), "");
        assert_eq!(spec.effective_fallback_result(), FallbackResult::Allow);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
        assert_eq!(spec.management_policy, ManagementPolicy::Manage);
    }

    #[test]
    fn explicit_values_win_over_defaults() {
        let spec = ChatRoomSpec {
            maximum_message_length: Some(256),
            maximum_message_rate_per_second: Some(5),
            message_review_handler: Some(MessageReviewHandler {
                uri: Some("arn:aws:lambda:us-west-2:123456789012:function:review".into()),
                fallback_result: Some(FallbackResult::Deny),
            }),
            ..ChatRoomSpec::default()
        };
        assert_eq!(spec.effective_maximum_message_length(), 256);
        assert_eq!(spec.effective_maximum_message_rate_per_second(), 5);
        assert_eq!(
            spec.effective_message_review_handler_uri(),
            "arn:aws:lambda:us-west-2:123456789012:function:review"
        );
        assert_eq!(spec.effective_fallback_result(), FallbackResult::Deny);
        assert_eq!(FallbackResult::Deny.as_str(), "DENY");
        assert_eq!(FallbackResult::Allow.as_str(), "ALLOW");
    }

    #[test]
    fn a_handler_without_fallback_still_defaults_to_allow() {
        let spec = ChatRoomSpec {
            message_review_handler: Some(MessageReviewHandler::default()),
            ..ChatRoomSpec::default()
        };
        assert_eq!(spec.effective_fallback_result(), FallbackResult::Allow);
        assert_eq!(spec.effective_message_review_handler_uri(), "");
    }

    #[test]
    fn reference_target_is_the_one_field_set() {
        let by_name = LoggingConfigurationReference {
            name: Some("logs".into()),
            arn: None,
        };
        assert_eq!(
            by_name.target(),
            Some(LoggingConfigurationTarget::Name("logs"))
        );
        let by_arn = LoggingConfigurationReference {
            name: None,
            arn: Some("arn:x".into()),
        };
        assert_eq!(
            by_arn.target(),
            Some(LoggingConfigurationTarget::Arn("arn:x"))
        );
        assert_eq!(LoggingConfigurationReference::default().target(), None);
        let both = LoggingConfigurationReference {
            name: Some("a".into()),
            arn: Some("b".into()),
        };
        assert_eq!(both.target(), None);
    }

    #[test]
    fn spec_round_trips_with_aws_field_names() {
        let json = serde_json::json!({
            "name": "test-room-1",
            "maximumMessageLength": 256,
            "maximumMessageRatePerSecond": 5,
            "messageReviewHandler": { "uri": "", "fallbackResult": "DENY" },
            "loggingConfigurations": [{ "name": "test-logging-config" }],
            "tags": { "team": "chat" },
            "deletionPolicy": "Retain",
            "managementPolicy": "ObserveOnly",
            "adoptArn": "arn:aws:ivschat:us-west-2:123456789012:room/g1H2I3j4k5L6",
        });
        let spec: ChatRoomSpec = serde_json::from_value(json.clone()).expect("a valid spec");
        assert_eq!(spec.deletion_policy, DeletionPolicy::Retain);
        assert_eq!(spec.management_policy, ManagementPolicy::ObserveOnly);
        assert_eq!(serde_json::to_value(&spec).ok(), Some(json));
    }

    #[test]
    fn paused_reads_the_annotation() {
        let mut room = ChatRoom::new("room", ChatRoomSpec::default());
        assert!(!room.is_paused());
        room.metadata
            .annotations
            .get_or_insert_default()
            .insert(crate::crd::PAUSED_ANNOTATION.into(), "true".into());
        assert!(room.is_paused());
    }

    #[test]
    fn omitted_fields_are_not_serialized() {
        let value = serde_json::to_value(ChatRoomSpec::default()).expect("serializable");
        assert_eq!(
            value,
            serde_json::json!({ "deletionPolicy": "Delete", "managementPolicy": "Manage" })
        );
    }
}
