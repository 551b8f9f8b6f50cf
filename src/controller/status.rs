//! The status both kinds report, and how it is merged and written.
//!
//! One [`StatusDocument`] shape covers both kinds (fields a kind does not use stay empty and are omitted, as
//! in the CRD types). Conditions follow kstatus: `Ready` is always present; `Reconciling` and `Stalled`
//! (abnormal-true polarity) appear only while true. [`merge_conditions`] keeps `lastTransitionTime` unless
//! the condition's status really changes, so a status at rest compares equal to the one already stored and
//! is not written again.

use crate::crd::{CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::{Deserialize, Serialize};

/// Condition reasons the operator sets (besides the error classes' reasons and AWS states).
pub mod reasons {
    /// The AWS resource matches the spec.
    pub const SYNCED: &str = "Synced";
    /// ObserveOnly: the AWS resource was read and mirrored.
    pub const OBSERVED: &str = "Observed";
    /// The AWS resource the status (or adoptArn) names is gone and will not be recreated.
    pub const NOT_FOUND_IN_AWS: &str = "NotFoundInAws";
    /// A ChatRoom names a ChatLoggingConfiguration that is missing or not ACTIVE yet.
    pub const WAITING_FOR_LOGGING_CONFIGURATION: &str = "WaitingForLoggingConfiguration";
    /// Deletion waits for ChatRooms (or AWS rooms) that still use the logging configuration.
    pub const IN_USE: &str = "InUse";
    /// Deletion of the AWS resource is in progress.
    pub const DELETING: &str = "Deleting";
    /// Before creating again after an attempt whose result was not recorded (or before releasing a deleted
    /// object with such an attempt), the operator is listing AWS for a resource that already carries the
    /// object's ownership tag.
    pub const LOOKING_UP: &str = "LookingUpOwnedResource";
    /// The create attempt is recorded in status (`status.createAttempt`) and the create is being sent.
    pub const CREATING: &str = "Creating";
    /// A create got no answer and may still complete: the operator waits one resync period after it before
    /// looking for a copy (and, for a deleted object, before releasing it).
    pub const SETTLING: &str = "SettlingUnansweredCreate";
}

crate::crd::managed_status! {
    /// The status of either kind, as the operator writes it (camelCase like the CRD types).
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct StatusDocument describing "resource" {
        /// ChatLoggingConfiguration only: the AWS state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub state: Option<String>,

        /// ChatRoom only: the logging configuration ARNs the room has.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub logging_configuration_arns: Vec<String>,
    }
}

impl StatusDocument {
    /// The status of an object as stored (an absent or unreadable status reads as empty: the operator then
    /// rewrites it in full).
    pub fn of<K: Serialize>(object: &K) -> StatusDocument {
        serde_json::to_value(object)
            .ok()
            .and_then(|mut value| value.get_mut("status").map(serde_json::Value::take))
            .and_then(|status| serde_json::from_value(status).ok())
            .unwrap_or_default()
    }

    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether `type_` is present with status "True".
    pub fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }
}

/// The health the reconciler concluded, which becomes the kstatus conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Ready=True.
    Ready { reason: String, message: String },
    /// Ready=False and Reconciling=True: work in progress, or a retry is scheduled.
    Progressing { reason: String, message: String },
    /// Ready=False and Stalled=True: no progress without a spec change or outside help.
    Stalled { reason: String, message: String },
}

impl Health {
    pub fn ready(reason: &str, message: impl Into<String>) -> Self {
        Self::Ready {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    pub fn progressing(reason: &str, message: impl Into<String>) -> Self {
        Self::Progressing {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    pub fn stalled(reason: &str, message: impl Into<String>) -> Self {
        Self::Stalled {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// The conditions this health stands for: (type, status, reason, message).
    fn conditions(&self) -> Vec<(&'static str, bool, &str, &str)> {
        match self {
            Self::Ready { reason, message } => vec![(CONDITION_READY, true, reason, message)],
            Self::Progressing { reason, message } => vec![
                (CONDITION_READY, false, reason, message),
                (CONDITION_RECONCILING, true, reason, message),
            ],
            Self::Stalled { reason, message } => vec![
                (CONDITION_READY, false, reason, message),
                (CONDITION_STALLED, true, reason, message),
            ],
        }
    }
}

/// Longest condition message written (the API server allows 32 KiB; people read the first lines).
const MAX_CONDITION_MESSAGE: usize = 1024;

/// The conditions for `health`, reusing `existing` entries' `lastTransitionTime` when their status did not
/// change, and `now` otherwise. Sorted by type, so that equal conditions compare equal.
pub fn merge_conditions(existing: &[Condition], health: &Health, now: &Time) -> Vec<Condition> {
    let mut merged: Vec<Condition> = health
        .conditions()
        .into_iter()
        .map(|(type_, status, reason, message)| {
            let status = if status { "True" } else { "False" };
            let last_transition_time = existing
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: truncate(message, MAX_CONDITION_MESSAGE),
                last_transition_time,
                observed_generation: None,
            }
        })
        .collect();
    merged.sort_by(|a, b| a.type_.cmp(&b.type_));
    merged
}

/// `text` cut to at most `max` bytes on a character boundary, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = merge_conditions(&[], &Health::progressing("Creating", "creating"), &at(10));
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|c| c.last_transition_time == at(10)));

        // Same status, new reason and message: the transition time stays.
        let second = merge_conditions(
            &first,
            &Health::progressing("Updating", "updating"),
            &at(20),
        );
        assert!(second.iter().all(|c| c.last_transition_time == at(10)));
        assert_eq!(second[0].reason, "Updating");

        // Ready flips to True: its time moves, and Reconciling disappears.
        let third = merge_conditions(&second, &Health::ready("Synced", "in sync"), &at(30));
        assert_eq!(third.len(), 1);
        assert_eq!(third[0].type_, "Ready");
        assert_eq!(third[0].status, "True");
        assert_eq!(third[0].last_transition_time, at(30));

        // At rest: identical output, so nothing is written.
        assert_eq!(
            merge_conditions(&third, &Health::ready("Synced", "in sync"), &at(40)),
            third
        );
    }

    #[test]
    fn stalled_sets_ready_false_and_stalled_true() {
        let conditions = merge_conditions(&[], &Health::stalled("InvalidSpec", "bad"), &at(1));
        let summary: Vec<_> = conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(summary, vec![("Ready", "False"), ("Stalled", "True")]);
    }

    #[test]
    fn long_messages_are_bounded_on_a_char_boundary() {
        let message = "é".repeat(2000);
        let conditions = merge_conditions(&[], &Health::stalled("X", message), &at(1));
        assert!(conditions[0].message.len() <= MAX_CONDITION_MESSAGE);
        assert!(conditions[0].message.ends_with("..."));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn status_document_reads_the_crd_status() {
        let mut room = crate::crd::ChatRoom::new("r", Default::default());
        assert_eq!(StatusDocument::of(&room), StatusDocument::default());
        room.status = Some(crate::crd::ChatRoomStatus {
            arn: Some("arn:aws:ivschat:us-west-2:123456789012:room/abc".into()),
            observed_generation: Some(3),
            managed_tag_keys: vec!["team".into()],
            logging_configuration_arns: vec!["arn:l".into()],
            ..Default::default()
        });
        let doc = StatusDocument::of(&room);
        assert_eq!(doc.observed_generation, Some(3));
        assert_eq!(doc.managed_tag_keys, vec!["team".to_owned()]);
        assert_eq!(doc.logging_configuration_arns, vec!["arn:l".to_owned()]);
        // Round trip: the document serialises exactly like the CRD status type.
        assert_eq!(
            serde_json::to_value(&doc).ok(),
            serde_json::to_value(room.status.as_ref()).ok()
        );
    }
}
