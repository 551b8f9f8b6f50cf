//! The custom resources `ChatRoom`, `ChatLoggingConfiguration` and `ChatAccount` (group `ivschat.dev`,
//! version `v1alpha1`).
//!
//! This module owns the Kubernetes API of the operator: the Rust types (kube derive + schemars), every
//! validation rule the API server enforces on them (OpenAPI bounds and CEL rules, so an invalid manifest
//! fails at `kubectl apply` and never later in a controller), the names the controllers share with users
//! (annotation, ownership tag keys, condition types), and small pure helpers that apply the AWS defaults.
//!
//! [`crds_yaml`] renders both CustomResourceDefinitions exactly as `crds/ivschat.dev.yaml` holds them
//! (regenerate with `make crds`, i.e. `cargo run --quiet --locked -- crds > crds/ivschat.dev.yaml`).

#[macro_use]
mod managed;
mod chat_account;
mod chat_logging_configuration;
mod chat_room;
pub mod export;
mod schema;
mod tags;

pub use chat_account::{
    AccountReference, ChatAccount, ChatAccountSpec, ChatAccountStatus, account_of_arn,
    region_of_arn,
};
pub use chat_logging_configuration::{
    ChatLoggingConfiguration, ChatLoggingConfigurationSpec, ChatLoggingConfigurationStatus,
    CloudWatchLogsDestination, DestinationConfiguration, FirehoseDestination, S3Destination,
};
pub use chat_room::{
    ChatRoom, ChatRoomSpec, ChatRoomStatus, FallbackResult, LoggingConfigurationReference,
    LoggingConfigurationTarget, MessageReviewHandler,
};
pub use export::{EXPORTED_BY_LABEL, Export};
pub(crate) use managed::managed_status;
pub use managed::{CreateAttempt, ManagedSpec, Policies};
pub use tags::Tags;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API group of both kinds.
pub const API_GROUP: &str = "ivschat.dev";
/// The API version of both kinds.
pub const API_VERSION: &str = "v1alpha1";

/// Annotation that pauses reconciliation of one object: with the value `"true"` the operator neither
/// reads nor writes AWS for it (deletion included, the finalizer stays until the object is unpaused).
pub const PAUSED_ANNOTATION: &str = "ivschat.dev/paused";

/// AWS tag the operator adds to every resource it creates: the UID of the owning Kubernetes object.
pub const OWNER_UID_TAG: &str = "ivschat.dev/owner-uid";
/// AWS tag the operator adds to every resource it creates: the namespace of the owning object.
pub const OWNER_NAMESPACE_TAG: &str = "ivschat.dev/namespace";
/// AWS tag the operator adds to every resource it creates: the name of the owning object.
pub const OWNER_NAME_TAG: &str = "ivschat.dev/name";
/// Prefix of tag keys reserved for the operator's ownership tags; users cannot set such keys.
pub const RESERVED_OPERATOR_TAG_PREFIX: &str = "ivschat.dev/";
/// Prefix of tag keys reserved by AWS (in any letter case); users cannot set such keys.
pub const RESERVED_AWS_TAG_PREFIX: &str = "aws:";
/// AWS allows 50 tags per resource; the operator adds its 3 ownership tags, which leaves 47 for users.
pub const MAX_USER_TAGS: usize = 47;

/// kstatus condition: the AWS resource exists and matches the spec (or, for ObserveOnly, was observed).
pub const CONDITION_READY: &str = "Ready";
/// kstatus condition: the operator is working towards the desired state (abnormal-true polarity).
pub const CONDITION_RECONCILING: &str = "Reconciling";
/// kstatus condition: progress stopped on an error that needs a spec change or outside help.
pub const CONDITION_STALLED: &str = "Stalled";
/// Condition of an object with `spec.export`: whether its ConfigMap holds the resource's current
/// coordinates (normal-true polarity; absent without `spec.export`). Not part of Ready: see
/// [`crate::controller::export`].
pub const CONDITION_EXPORTED: &str = "Exported";

/// The spec and status schemas of both kinds reject or omit these; kept in one place so unit tests can
/// check values against exactly the patterns the API server enforces.
pub mod patterns {
    /// AWS room and logging-configuration names (`RoomName`, `LoggingConfigurationName`).
    pub const AWS_NAME: &str = r"^[a-zA-Z0-9-_]*$";
    /// `RoomArn` / `RoomIdentifier`.
    pub const ROOM_ARN: &str = r"^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:room/[a-zA-Z0-9-]+$";
    /// `LoggingConfigurationArn` / `LoggingConfigurationIdentifier`.
    pub const LOGGING_CONFIGURATION_ARN: &str =
        r"^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:logging-configuration/[a-zA-Z0-9-]+$";
    /// `LambdaArn` (the message review handler URI), verbatim from the Smithy model.
    pub const LAMBDA_ARN: &str = r"^$|^arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:function:.+";
    /// `BucketName`.
    pub const BUCKET_NAME: &str = r"^[a-z0-9-.]+$";
    /// `LogGroupName`.
    pub const LOG_GROUP_NAME: &str = r"^[\.\-_/#A-Za-z0-9]+$";
    /// `DeliveryStreamName`.
    pub const DELIVERY_STREAM_NAME: &str = r"^[a-zA-Z0-9_.-]+$";
    /// A Kubernetes object name (RFC 1123 DNS subdomain), for references to other objects.
    pub const OBJECT_NAME: &str =
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    /// An AWS region name (`us-west-2`, `ap-northeast-1`, `us-gov-west-1`).
    pub const REGION: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$";
    /// An IAM role ARN (`RoleArn` of AssumeRole), in any partition, with an optional path.
    pub const ROLE_ARN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$";
    /// `ExternalId` of AssumeRole.
    pub const EXTERNAL_ID: &str = r"^[\w+=,.@:/-]*$";
    /// An HTTP(S) endpoint URL (scheme, host, optional port and path).
    pub const ENDPOINT_URL: &str = r"^https?://[^\s/?#]+(/[^\s?#]*)?$";
}

/// What happens to the AWS resource when the Kubernetes object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the AWS resource, then release the object.
    #[default]
    Delete,
    /// Leave the AWS resource (and its ownership tags) in place and only release the object.
    Retain,
}

/// Whether the operator may write to AWS for this object.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ManagementPolicy {
    /// Create, update, tag and delete the AWS resource so that it matches the spec.
    #[default]
    Manage,
    /// Never write to AWS: only read the resource named by `adoptArn` and mirror it into status.
    ObserveOnly,
}

/// Whether the object carries the pause annotation ([`PAUSED_ANNOTATION`] set to exactly `"true"`).
pub fn is_paused(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|annotations| annotations.get(PAUSED_ANNOTATION))
        .is_some_and(|value| value == "true")
}

/// The tags to put on the AWS resource: the user's tags plus the operator's three ownership tags.
///
/// The schema already forbids user keys under `ivschat.dev/`, so the ownership tags cannot be shadowed;
/// they are inserted last anyway so that they win even for objects stored before a schema change.
pub fn tags_with_ownership(
    user_tags: Option<&BTreeMap<String, String>>,
    owner_uid: &str,
    namespace: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let mut tags = user_tags.cloned().unwrap_or_default();
    tags.insert(OWNER_UID_TAG.to_owned(), owner_uid.to_owned());
    tags.insert(OWNER_NAMESPACE_TAG.to_owned(), namespace.to_owned());
    tags.insert(OWNER_NAME_TAG.to_owned(), name.to_owned());
    tags
}

/// Every CustomResourceDefinition, those referred to first (a ChatRoom refers to a ChatLoggingConfiguration,
/// both to a ChatAccount).
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    vec![
        ChatAccount::crd(),
        ChatLoggingConfiguration::crd(),
        ChatRoom::crd(),
    ]
}

/// Every CRD as one multi-document YAML stream, exactly what `crds/ivschat.dev.yaml` holds.
pub fn crds_yaml() -> anyhow::Result<String> {
    let mut out = String::from(
        "# Generated from the Rust types in src/crd by `ivschat-operator crds` (make crds). Do not edit.\n",
    );
    for crd in crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let yaml = serde_yaml::to_string(&crd)
            .map_err(|err| anyhow::anyhow!("rendering CRD {name} as YAML: {err}"))?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_with_annotation(value: &str) -> ObjectMeta {
        ObjectMeta {
            annotations: Some(BTreeMap::from([(
                PAUSED_ANNOTATION.to_owned(),
                value.to_owned(),
            )])),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn paused_only_with_the_exact_value_true() {
        assert!(is_paused(&meta_with_annotation("true")));
        assert!(!is_paused(&meta_with_annotation("false")));
        assert!(!is_paused(&meta_with_annotation("True")));
        assert!(!is_paused(&meta_with_annotation("")));
        assert!(!is_paused(&ObjectMeta::default()));
    }

    #[test]
    fn ownership_tags_are_added_and_win() {
        let user = BTreeMap::from([
            ("team".to_owned(), "chat".to_owned()),
            (OWNER_NAME_TAG.to_owned(), "spoofed".to_owned()),
        ]);
        let tags = tags_with_ownership(Some(&user), "uid-1", "ns-1", "room-1");
        assert_eq!(tags.len(), 4);
        assert_eq!(tags["team"], "chat");
        assert_eq!(tags[OWNER_UID_TAG], "uid-1");
        assert_eq!(tags[OWNER_NAMESPACE_TAG], "ns-1");
        assert_eq!(tags[OWNER_NAME_TAG], "room-1");
        assert_eq!(tags_with_ownership(None, "u", "n", "x").len(), 3);
    }

    #[test]
    fn ownership_tag_keys_use_the_reserved_prefix_and_fit_the_aws_limit() {
        for key in [OWNER_UID_TAG, OWNER_NAMESPACE_TAG, OWNER_NAME_TAG] {
            assert!(key.starts_with(RESERVED_OPERATOR_TAG_PREFIX), "{key}");
        }
        assert_eq!(MAX_USER_TAGS + 3, 50);
    }

    #[test]
    fn yaml_has_one_document_per_kind() {
        let yaml = crds_yaml().expect("rendering the CRDs");
        assert_eq!(
            yaml.matches("\n---\n").count() + usize::from(yaml.starts_with("---")),
            3
        );
        assert!(yaml.contains("name: chataccounts.ivschat.dev"));
        assert!(yaml.contains("name: chatrooms.ivschat.dev"));
        assert!(yaml.contains("name: chatloggingconfigurations.ivschat.dev"));
    }
}
