//! What one pass concluded, as a [`Report`]: the health (which becomes the conditions), when to look again
//! ([`Requeue`]) and the events to publish. The one place an AWS failure or an AWS state becomes health.

use super::ManagedKind;
use crate::controller::aws_error::{AwsError, ErrorClass};
use crate::controller::export::ExportReport;
use crate::controller::status::{Health, StatusDocument, truncate};
use crate::crd::CONDITION_READY;
use crate::metrics::ReconcileOutcome;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

/// Longest event note (the Events API limit).
const MAX_EVENT_NOTE: usize = 1024;

/// When to look at the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Requeue {
    /// At rest: the next resync (with jitter, so many objects spread out).
    Resync,
    /// AWS is in a transition.
    Poll,
    /// Exponential backoff with jitter.
    Backoff,
    /// Outside help needed: long backoff.
    Long,
    /// Only a change of the object helps.
    AwaitChange,
    /// At a known time (an unanswered create's horizon: see [`settle`](super::settle)).
    After(std::time::Duration),
}

/// What one reconcile did: when to look again, and the health its pass reported (the outcome label of
/// the reconcile metric), if it got as far as reporting one.
pub(super) struct Pass {
    pub(super) action: Action,
    pub(super) reported: Option<ReconcileOutcome>,
}

impl Pass {
    /// A reconcile that reported nothing (paused, nothing due, a finalizer added or released): counted
    /// as `skipped`.
    pub(super) fn quiet(action: Action) -> Self {
        Pass {
            action,
            reported: None,
        }
    }
}

/// The outcome label of a reconcile that reported `health`.
pub(super) fn outcome_of(health: &Health) -> ReconcileOutcome {
    match health {
        Health::Ready { .. } => ReconcileOutcome::ready,
        Health::Progressing { .. } => ReconcileOutcome::progressing,
        Health::Stalled { .. } => ReconcileOutcome::stalled,
    }
}

/// What one pass concluded.
pub(super) struct Report {
    pub(super) health: Health,
    pub(super) requeue: Requeue,
    pub(super) events: Vec<Event>,
    /// The resourceVersion of the create attempt's record this pass wrote, if it wrote one: once the pass
    /// writes its outcome, that version is outdated.
    pub(super) attempt_version: Option<String>,
    /// What the pass's export step concluded, for the `Exported` condition ([`crate::controller::export`]).
    pub(super) export: ExportReport,
}

impl Clone for Report {
    fn clone(&self) -> Self {
        // kube's Event is not Clone.
        let events = self
            .events
            .iter()
            .map(|event| Event {
                type_: event.type_,
                reason: event.reason.clone(),
                note: event.note.clone(),
                action: event.action.clone(),
                secondary: event.secondary.clone(),
            })
            .collect();
        Report {
            health: self.health.clone(),
            requeue: self.requeue,
            events,
            attempt_version: self.attempt_version.clone(),
            export: self.export.clone(),
        }
    }
}

impl Report {
    pub(super) fn new(health: Health, requeue: Requeue) -> Self {
        Report {
            health,
            requeue,
            events: Vec::new(),
            attempt_version: None,
            export: ExportReport::Unchanged,
        }
    }

    pub(super) fn with_event(mut self, event: Event) -> Self {
        self.events.push(event);
        self
    }

    /// A failed *read* of a resource that was Ready at this generation: a throttled or failed resync says
    /// nothing about the resource, so Ready stays as it is (no status write) while the read is retried with
    /// backoff. Anything else is [`Report::from_error`].
    pub(super) fn from_read_error<K: ManagedKind>(
        err: &AwsError,
        object: &K,
        current: &StatusDocument,
    ) -> Self {
        let retryable = matches!(err.class, ErrorClass::Transient | ErrorClass::Conflict);
        let ready = current.condition(CONDITION_READY).filter(|c| {
            c.status == "True" && current.observed_generation == object.meta().generation
        });
        match ready {
            Some(ready) if retryable => Report::new(
                Health::ready(&ready.reason, ready.message.clone()),
                Requeue::Backoff,
            )
            .with_event(warning(err.class.reason(), err.operation, &err.to_string())),
            _ => Report::from_error(err),
        }
    }

    /// The one place an AWS failure becomes health, a requeue and a Warning event.
    pub(super) fn from_error(err: &AwsError) -> Self {
        let reason = err.class.reason();
        let message = err.to_string();
        let (health, requeue) = match err.class {
            ErrorClass::Terminal => (Health::stalled(reason, &message), Requeue::AwaitChange),
            ErrorClass::AccessDenied => (Health::stalled(reason, &message), Requeue::Long),
            ErrorClass::QuotaExceeded => (Health::progressing(reason, &message), Requeue::Long),
            ErrorClass::Conflict | ErrorClass::Transient | ErrorClass::NotFound => {
                (Health::progressing(reason, &message), Requeue::Backoff)
            }
        };
        Report::new(health, requeue).with_event(warning(reason, err.operation, &message))
    }
}

pub(super) fn warning(reason: &str, action: &str, note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(truncate(note, MAX_EVENT_NOTE)),
        action: action.to_owned(),
        secondary: None,
    }
}

pub(super) fn normal(reason: &str, action: &str, note: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: reason.to_owned(),
        note: Some(truncate(note, MAX_EVENT_NOTE)),
        action: action.to_owned(),
        secondary: None,
    }
}

/// `CREATE_FAILED` → `CreateFailed`: AWS states as condition reasons.
pub fn state_reason(state: &str) -> String {
    state
        .split('_')
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// What an AWS state means for the reconciler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateKind {
    Stable,
    Transitioning(String),
    Failed(String),
}

pub fn state_kind(state: Option<&str>) -> StateKind {
    match state {
        Some(state @ ("CREATING" | "UPDATING" | "DELETING")) => {
            StateKind::Transitioning(state.to_owned())
        }
        Some(state) if state.ends_with("_FAILED") => StateKind::Failed(state.to_owned()),
        _ => StateKind::Stable,
    }
}

/// Health for an observed state that is not stable, if any.
pub(super) fn health_of_state(observed_state: Option<&str>) -> Option<(Health, Requeue)> {
    match state_kind(observed_state) {
        StateKind::Stable => None,
        StateKind::Transitioning(state) => Some((
            Health::progressing(&state_reason(&state), format!("AWS reports state {state}")),
            Requeue::Poll,
        )),
        StateKind::Failed(state) => Some((
            Health::stalled(
                &state_reason(&state),
                format!("AWS reports state {state}: the last AWS transition failed"),
            ),
            Requeue::Long,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_become_pascal_case_reasons() {
        assert_eq!(state_reason("CREATE_FAILED"), "CreateFailed");
        assert_eq!(state_reason("CREATING"), "Creating");
        assert_eq!(state_reason("ACTIVE"), "Active");
    }

    #[test]
    fn states_are_classified() {
        assert_eq!(state_kind(None), StateKind::Stable);
        assert_eq!(state_kind(Some("ACTIVE")), StateKind::Stable);
        assert_eq!(
            state_kind(Some("UPDATING")),
            StateKind::Transitioning("UPDATING".into())
        );
        assert_eq!(
            state_kind(Some("DELETE_FAILED")),
            StateKind::Failed("DELETE_FAILED".into())
        );
    }

    #[test]
    fn failed_states_stall_and_transitions_poll() {
        let (health, requeue) = health_of_state(Some("UPDATE_FAILED")).expect("not stable");
        assert!(matches!(health, Health::Stalled { ref reason, .. } if reason == "UpdateFailed"));
        assert_eq!(requeue, Requeue::Long);
        let (health, requeue) = health_of_state(Some("CREATING")).expect("not stable");
        assert!(matches!(health, Health::Progressing { ref reason, .. } if reason == "Creating"));
        assert_eq!(requeue, Requeue::Poll);
        assert!(health_of_state(Some("ACTIVE")).is_none());
    }

    #[test]
    fn every_error_class_has_a_requeue_and_a_warning() {
        for (class, stalled, requeue) in [
            (ErrorClass::Terminal, true, Requeue::AwaitChange),
            (ErrorClass::AccessDenied, true, Requeue::Long),
            (ErrorClass::QuotaExceeded, false, Requeue::Long),
            (ErrorClass::Transient, false, Requeue::Backoff),
            (ErrorClass::Conflict, false, Requeue::Backoff),
        ] {
            let report = Report::from_error(&AwsError {
                operation: "CreateRoom",
                class,
                code: "X".into(),
                message: "m".repeat(5000),
            });
            assert_eq!(
                matches!(report.health, Health::Stalled { .. }),
                stalled,
                "{class:?}"
            );
            assert_eq!(report.requeue, requeue, "{class:?}");
            assert_eq!(report.events.len(), 1);
            assert_eq!(report.events[0].type_, EventType::Warning);
            assert!(
                report.events[0]
                    .note
                    .as_ref()
                    .is_some_and(|n| n.len() <= MAX_EVENT_NOTE)
            );
        }
    }
}
