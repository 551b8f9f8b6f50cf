//! `status`: the comparison of a ChatRoom's spec (AWS defaults applied) with the room AWS reports, and the
//! one-line summaries of `status` without a room. Pure: the AWS side arrives as an [`AwsRoom`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::{Value, json};

use crate::crd::{
    CONDITION_READY, ChatRoom, LoggingConfigurationTarget, ManagedSpec, ManagementPolicy,
    RESERVED_AWS_TAG_PREFIX, RESERVED_OPERATOR_TAG_PREFIX, account_of_arn, region_of_arn,
};

/// The room as GetRoom describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsRoom {
    pub arn: String,
    pub id: String,
    pub name: String,
    pub maximum_message_length: i32,
    pub maximum_message_rate_per_second: i32,
    /// Empty when the room has no message review handler.
    pub message_review_handler_uri: String,
    /// `ALLOW` / `DENY`; AWS's default `ALLOW` when there is no handler.
    pub fallback_result: String,
    pub logging_configuration_identifiers: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
}

/// What the AWS side of `status` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsView {
    Found(Box<AwsRoom>),
    /// GetRoom answered 404.
    NotFound,
    /// The ChatRoom has no ARN yet, so there is nothing to ask AWS about.
    NoArn,
}

/// One compared field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldComparison {
    pub field: &'static str,
    /// The desired value (null for `status --arn`, where there is no spec).
    pub spec: Value,
    /// AWS's value (null when AWS has no room).
    pub aws: Value,
    pub differs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

/// `status ROOM` / `status --arn ARN`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomStatus {
    /// `namespace/name` of the ChatRoom; absent for `--arn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_room: Option<String>,
    /// The ChatAccount the room is reached through (spec.accountRef, or `--account`); absent: the user's
    /// own credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The AWS account the room lives in (status.accountId, else the ARN's); null while unknown.
    pub account_id: Option<String>,
    /// The AWS region the room lives in (status.region, else the ARN's); null while unknown.
    pub region: Option<String>,
    pub arn: Option<String>,
    /// `found`, `notFound` or `noArn`.
    pub aws: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<String>,
    pub paused: bool,
    pub fields: Vec<FieldComparison>,
    pub conditions: Vec<ConditionView>,
    /// The spec and AWS agree on every field (false when AWS has no room; true for `--arn`).
    pub in_sync: bool,
}

/// One line of `status` without a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    pub name: String,
    /// The Ready condition's status: `True`, `False` or `Unknown` (no condition yet).
    pub ready: String,
    pub reason: String,
    pub arn: Option<String>,
}

pub fn summary(room: &ChatRoom) -> RoomSummary {
    let ready = ready_condition(room);
    RoomSummary {
        name: room.name_any(),
        ready: ready
            .map(|condition| condition.status.clone())
            .unwrap_or_else(|| "Unknown".to_owned()),
        reason: ready
            .map(|condition| condition.reason.clone())
            .unwrap_or_default(),
        arn: room.status.as_ref().and_then(|status| status.arn.clone()),
    }
}

pub fn ready_condition(room: &ChatRoom) -> Option<&Condition> {
    room.status.as_ref().and_then(|status| {
        status
            .conditions
            .iter()
            .find(|condition| condition.type_ == CONDITION_READY)
    })
}

/// Compares a ChatRoom with AWS.
pub fn compare(room: &ChatRoom, aws: &AwsView) -> RoomStatus {
    let spec = &room.spec;
    let status = room.status.as_ref();
    let found = match aws {
        AwsView::Found(found) => Some(found.as_ref()),
        AwsView::NotFound | AwsView::NoArn => None,
    };

    // Logging configurations: references by ARN compare as given; references by name compare through the
    // ARNs the operator resolved them to (status, in spec order). An unresolved name is a difference.
    let references: Vec<String> = spec
        .logging_configurations
        .iter()
        .filter_map(|reference| match reference.target() {
            Some(LoggingConfigurationTarget::Name(name)) => Some(name.to_owned()),
            Some(LoggingConfigurationTarget::Arn(arn)) => Some(arn.to_owned()),
            None => None,
        })
        .collect();
    let resolved: BTreeSet<String> = spec
        .logging_configurations
        .iter()
        .enumerate()
        .filter_map(|(index, reference)| match reference.target() {
            Some(LoggingConfigurationTarget::Arn(arn)) => Some(arn.to_owned()),
            Some(LoggingConfigurationTarget::Name(_)) => status
                .and_then(|status| status.logging_configuration_arns.get(index))
                .cloned(),
            None => None,
        })
        .collect();
    let logging_differs = found.is_none_or(|found| {
        resolved.len() != references.len()
            || resolved
                != found
                    .logging_configuration_identifiers
                    .iter()
                    .cloned()
                    .collect::<BTreeSet<_>>()
    });

    // Tags: the spec's tags must be in AWS with the same value; tags others added in AWS are not drift
    // (the operator leaves them alone), and the operator's ownership tags are not shown.
    let aws_user_tags = found.map(|found| user_tags(&found.tags));
    let tags_differ = found.is_none_or(|found| {
        spec.tags
            .iter()
            .any(|(key, value)| found.tags.get(key).map(String::as_str) != Some(value))
    });

    let fields = vec![
        field(
            "name",
            json!(spec.name.clone().unwrap_or_default()),
            found.map(|found| json!(found.name)),
        ),
        field(
            "maximumMessageLength",
            json!(spec.effective_maximum_message_length()),
            found.map(|found| json!(found.maximum_message_length)),
        ),
        field(
            "maximumMessageRatePerSecond",
            json!(spec.effective_maximum_message_rate_per_second()),
            found.map(|found| json!(found.maximum_message_rate_per_second)),
        ),
        field(
            "messageReviewHandler.uri",
            json!(spec.effective_message_review_handler_uri()),
            found.map(|found| json!(found.message_review_handler_uri)),
        ),
        field(
            "messageReviewHandler.fallbackResult",
            json!(spec.effective_fallback_result().as_str()),
            found.map(|found| json!(found.fallback_result)),
        ),
        FieldComparison {
            field: "loggingConfigurations",
            spec: json!(references),
            aws: found
                .map(|found| json!(found.logging_configuration_identifiers))
                .unwrap_or(Value::Null),
            differs: logging_differs,
        },
        FieldComparison {
            field: "tags",
            spec: json!(spec.tags),
            aws: aws_user_tags.map(|tags| json!(tags)).unwrap_or(Value::Null),
            differs: tags_differ,
        },
    ];
    // An observe-only room's spec names the room to watch (adoptArn) and does not describe it, so its
    // fields are shown but nothing counts as a difference.
    let observe_only = spec.management_policy == ManagementPolicy::ObserveOnly;
    let fields: Vec<FieldComparison> = fields
        .into_iter()
        .map(|field| FieldComparison {
            differs: field.differs && !observe_only,
            ..field
        })
        .collect();
    let in_sync = found.is_some() && fields.iter().all(|field| !field.differs);
    let arn = status.and_then(|status| status.arn.as_deref());
    RoomStatus {
        chat_room: Some(format!(
            "{}/{}",
            room.namespace().unwrap_or_default(),
            room.name_any()
        )),
        account: spec.account_ref().map(str::to_owned),
        account_id: status
            .and_then(|status| status.account_id.as_deref())
            .or_else(|| arn.and_then(account_of_arn))
            .map(str::to_owned),
        region: status
            .and_then(|status| status.region.as_deref())
            .or_else(|| arn.and_then(region_of_arn))
            .map(str::to_owned),
        arn: arn.map(str::to_owned),
        aws: aws_label(aws),
        management_policy: Some(
            serde_json::to_value(spec.management_policy)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        paused: room.is_paused(),
        fields,
        conditions: status
            .map(|status| status.conditions.iter().map(condition_view).collect())
            .unwrap_or_default(),
        in_sync,
    }
}

/// `status --arn`: the AWS room alone (no spec to compare with), reached through `account` (`--account`).
pub fn aws_only(arn: &str, account: Option<&str>, aws: &AwsView) -> RoomStatus {
    let found = match aws {
        AwsView::Found(found) => Some(found.as_ref()),
        AwsView::NotFound | AwsView::NoArn => None,
    };
    let aws_field = |name: &'static str, value: Option<Value>| FieldComparison {
        field: name,
        spec: Value::Null,
        aws: value.unwrap_or(Value::Null),
        differs: false,
    };
    RoomStatus {
        chat_room: None,
        account: account.map(str::to_owned),
        account_id: account_of_arn(arn).map(str::to_owned),
        region: region_of_arn(arn).map(str::to_owned),
        arn: Some(arn.to_owned()),
        aws: aws_label(aws),
        management_policy: None,
        paused: false,
        fields: vec![
            aws_field("name", found.map(|found| json!(found.name))),
            aws_field(
                "maximumMessageLength",
                found.map(|found| json!(found.maximum_message_length)),
            ),
            aws_field(
                "maximumMessageRatePerSecond",
                found.map(|found| json!(found.maximum_message_rate_per_second)),
            ),
            aws_field(
                "messageReviewHandler.uri",
                found.map(|found| json!(found.message_review_handler_uri)),
            ),
            aws_field(
                "messageReviewHandler.fallbackResult",
                found.map(|found| json!(found.fallback_result)),
            ),
            aws_field(
                "loggingConfigurations",
                found.map(|found| json!(found.logging_configuration_identifiers)),
            ),
            aws_field("tags", found.map(|found| json!(found.tags))),
        ],
        conditions: Vec::new(),
        in_sync: found.is_some(),
    }
}

fn field(name: &'static str, spec: Value, aws: Option<Value>) -> FieldComparison {
    let differs = aws.as_ref() != Some(&spec);
    FieldComparison {
        field: name,
        spec,
        aws: aws.unwrap_or(Value::Null),
        differs,
    }
}

fn aws_label(aws: &AwsView) -> &'static str {
    match aws {
        AwsView::Found(_) => "found",
        AwsView::NotFound => "notFound",
        AwsView::NoArn => "noArn",
    }
}

fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(key, _)| {
            !key.starts_with(RESERVED_OPERATOR_TAG_PREFIX)
                && !key
                    .to_ascii_lowercase()
                    .starts_with(RESERVED_AWS_TAG_PREFIX)
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn condition_view(condition: &Condition) -> ConditionView {
    ConditionView {
        type_: condition.type_.clone(),
        status: condition.status.clone(),
        reason: condition.reason.clone(),
        message: condition.message.clone(),
        last_transition_time: condition.last_transition_time.0.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ChatRoomSpec, ChatRoomStatus, OWNER_UID_TAG};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const ARN: &str = "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234";
    const LOG_ARN: &str =
        "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/logLOG123456";

    fn chat_room(spec: serde_json::Value) -> ChatRoom {
        let spec: ChatRoomSpec = serde_json::from_value(spec).expect("spec");
        let mut room = ChatRoom::new("demo", spec);
        room.metadata.namespace = Some("ns".into());
        room.status = Some(ChatRoomStatus {
            arn: Some(ARN.into()),
            logging_configuration_arns: vec![LOG_ARN.into()],
            conditions: vec![Condition {
                type_: CONDITION_READY.into(),
                status: "True".into(),
                reason: "Synced".into(),
                message: "in sync".into(),
                observed_generation: Some(1),
                last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            }],
            ..ChatRoomStatus::default()
        });
        room
    }

    fn aws_room() -> AwsRoom {
        AwsRoom {
            arn: ARN.into(),
            id: "abcdEFGH1234".into(),
            name: "demo-room".into(),
            maximum_message_length: 500,
            maximum_message_rate_per_second: 10,
            message_review_handler_uri: String::new(),
            fallback_result: "ALLOW".into(),
            logging_configuration_identifiers: vec![LOG_ARN.into()],
            tags: [
                ("team".to_owned(), "chat".to_owned()),
                ("added-by-hand".to_owned(), "x".to_owned()),
                (OWNER_UID_TAG.to_owned(), "uid".to_owned()),
            ]
            .into(),
            ..AwsRoom::default()
        }
    }

    fn differing(status: &RoomStatus) -> Vec<&'static str> {
        status
            .fields
            .iter()
            .filter(|field| field.differs)
            .map(|field| field.field)
            .collect()
    }

    #[test]
    fn defaults_named_references_and_foreign_tags_are_not_drift() {
        let room = chat_room(json!({
            "name": "demo-room",
            "loggingConfigurations": [{"name": "logs"}],
            "tags": {"team": "chat"},
        }));
        let status = compare(&room, &AwsView::Found(Box::new(aws_room())));
        assert_eq!(differing(&status), Vec::<&str>::new());
        assert!(status.in_sync);
        assert_eq!(status.chat_room.as_deref(), Some("ns/demo"));
        assert_eq!(status.aws, "found");
        let tags = status
            .fields
            .iter()
            .find(|field| field.field == "tags")
            .expect("tags");
        assert_eq!(tags.aws, json!({"added-by-hand": "x", "team": "chat"}));
        assert_eq!(status.conditions[0].reason, "Synced");
    }

    #[test]
    fn every_differing_field_is_marked() {
        let room = chat_room(json!({
            "name": "other",
            "maximumMessageLength": 100,
            "maximumMessageRatePerSecond": 5,
            "messageReviewHandler": {"uri": "arn:aws:lambda:us-west-2:123456789012:function:review", "fallbackResult": "DENY"},
            "loggingConfigurations": [{"name": "logs"}, {"arn": "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/other1234567"}],
            "tags": {"team": "video"},
        }));
        let status = compare(&room, &AwsView::Found(Box::new(aws_room())));
        assert_eq!(
            differing(&status),
            vec![
                "name",
                "maximumMessageLength",
                "maximumMessageRatePerSecond",
                "messageReviewHandler.uri",
                "messageReviewHandler.fallbackResult",
                "loggingConfigurations",
                "tags"
            ]
        );
        assert!(!status.in_sync);
    }

    #[test]
    fn a_room_missing_in_aws_differs_everywhere() {
        let room = chat_room(json!({}));
        let status = compare(&room, &AwsView::NotFound);
        assert_eq!(status.aws, "notFound");
        assert_eq!(differing(&status).len(), status.fields.len());
        assert!(status.fields.iter().all(|field| field.aws.is_null()));
    }

    #[test]
    fn an_observe_only_spec_is_not_compared() {
        let room = chat_room(json!({
            "managementPolicy": "ObserveOnly",
            "adoptArn": ARN,
        }));
        let status = compare(&room, &AwsView::Found(Box::new(aws_room())));
        assert_eq!(differing(&status), Vec::<&str>::new());
        assert!(status.in_sync);
        assert_eq!(status.management_policy.as_deref(), Some("ObserveOnly"));
        assert!(
            !compare(&room, &AwsView::NotFound).in_sync,
            "a missing room is never in sync"
        );
    }

    #[test]
    fn arn_only_status_shows_aws_values() {
        let status = aws_only(ARN, Some("prod"), &AwsView::Found(Box::new(aws_room())));
        assert!(status.chat_room.is_none());
        assert_eq!(status.account.as_deref(), Some("prod"));
        assert_eq!(status.account_id.as_deref(), Some("123456789012"));
        assert_eq!(status.region.as_deref(), Some("us-west-2"));
        assert_eq!(status.fields[1].aws, json!(500));
        assert!(
            status
                .fields
                .iter()
                .all(|field| !field.differs && field.spec.is_null())
        );
    }

    #[test]
    fn the_account_and_region_are_the_recorded_ones_else_the_arns() {
        let mut room = chat_room(json!({"accountRef": {"name": "prod"}, "region": "eu-west-1"}));
        let status = compare(&room, &AwsView::NotFound);
        assert_eq!(status.account.as_deref(), Some("prod"));
        assert_eq!(
            status.account_id.as_deref(),
            Some("123456789012"),
            "the ARN's"
        );
        assert_eq!(status.region.as_deref(), Some("us-west-2"), "the ARN's");
        let recorded = room.status.as_mut().expect("status");
        recorded.account_id = Some("111111111111".into());
        recorded.region = Some("eu-central-1".into());
        let status = compare(&room, &AwsView::NotFound);
        assert_eq!(status.account_id.as_deref(), Some("111111111111"));
        assert_eq!(status.region.as_deref(), Some("eu-central-1"));
        let pending = ChatRoom::new("new", ChatRoomSpec::default());
        let status = compare(&pending, &AwsView::NoArn);
        assert_eq!(
            (status.account, status.account_id, status.region),
            (None, None, None)
        );
        let json = serde_json::to_value(compare(&room, &AwsView::NotFound)).expect("JSON");
        assert_eq!(json["account"], json!("prod"));
        assert_eq!(json["accountId"], json!("111111111111"));
        assert_eq!(json["region"], json!("eu-central-1"));
    }

    #[test]
    fn summaries_report_ready_and_arn() {
        let summary = summary(&chat_room(json!({})));
        assert_eq!(summary.ready, "True");
        assert_eq!(summary.reason, "Synced");
        assert_eq!(summary.arn.as_deref(), Some(ARN));
        let pending = ChatRoom::new("new", ChatRoomSpec::default());
        assert_eq!(super::summary(&pending).ready, "Unknown");
    }
}
