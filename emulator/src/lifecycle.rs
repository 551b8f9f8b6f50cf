//! Logging-configuration lifecycle, derived from timestamps at read time (no background timers).
//!
//! Create, Update and Delete start a [`Transition`] that completes at `start + delay` (the delay configured when
//! the transition starts). Until then Get/List report CREATING / UPDATING / DELETING; afterwards the transition
//! *settles* into ACTIVE (create, update), removal (delete), or, when failures were switched on for that kind of
//! transition when it started, CREATE_FAILED / UPDATE_FAILED / DELETE_FAILED. A failed configuration keeps its
//! (updated) settings and can be updated or deleted again.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransitionKind {
    Create,
    Update,
    Delete,
}

/// A transition in flight (or completed but not yet settled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub kind: TransitionKind,
    pub completes_at: Timestamp,
    /// Ends in the `*_FAILED` state of its kind instead of succeeding.
    pub fails: bool,
}

/// The model's LoggingConfigurationState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoggingState {
    Creating,
    CreateFailed,
    Deleting,
    DeleteFailed,
    Updating,
    UpdateFailed,
    Active,
}

impl LoggingState {
    pub fn wire_name(self) -> &'static str {
        match self {
            LoggingState::Creating => "CREATING",
            LoggingState::CreateFailed => "CREATE_FAILED",
            LoggingState::Deleting => "DELETING",
            LoggingState::DeleteFailed => "DELETE_FAILED",
            LoggingState::Updating => "UPDATING",
            LoggingState::UpdateFailed => "UPDATE_FAILED",
            LoggingState::Active => "ACTIVE",
        }
    }

    /// True while a transition is running (no new transition may start, nothing may attach to it).
    pub fn is_transitioning(self) -> bool {
        matches!(
            self,
            LoggingState::Creating | LoggingState::Updating | LoggingState::Deleting
        )
    }
}

/// What a configuration looks like at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Exists(LoggingState),
    /// A successful deletion has completed.
    Gone,
}

impl Transition {
    pub fn start(
        kind: TransitionKind,
        now: Timestamp,
        delay: std::time::Duration,
        fails: bool,
    ) -> Transition {
        let delay = jiff::SignedDuration::try_from(delay).unwrap_or(jiff::SignedDuration::MAX);
        let completes_at = now.checked_add(delay).unwrap_or(Timestamp::MAX);
        Transition {
            kind,
            completes_at,
            fails,
        }
    }

    pub fn is_complete(&self, now: Timestamp) -> bool {
        now >= self.completes_at
    }

    /// The state at `now`.
    pub fn observe(&self, now: Timestamp) -> Observed {
        let in_progress = !self.is_complete(now);
        match (self.kind, in_progress, self.fails) {
            (TransitionKind::Create, true, _) => Observed::Exists(LoggingState::Creating),
            (TransitionKind::Update, true, _) => Observed::Exists(LoggingState::Updating),
            (TransitionKind::Delete, true, _) => Observed::Exists(LoggingState::Deleting),
            (TransitionKind::Create, false, true) => Observed::Exists(LoggingState::CreateFailed),
            (TransitionKind::Update, false, true) => Observed::Exists(LoggingState::UpdateFailed),
            (TransitionKind::Delete, false, true) => Observed::Exists(LoggingState::DeleteFailed),
            (TransitionKind::Create | TransitionKind::Update, false, false) => {
                Observed::Exists(LoggingState::Active)
            }
            (TransitionKind::Delete, false, false) => Observed::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).expect("valid timestamp")
    }

    #[test]
    fn successful_transitions() {
        let create =
            Transition::start(TransitionKind::Create, at(0), Duration::from_secs(2), false);
        assert_eq!(
            create.observe(at(1)),
            Observed::Exists(LoggingState::Creating)
        );
        assert_eq!(
            create.observe(at(2)),
            Observed::Exists(LoggingState::Active)
        );
        let update =
            Transition::start(TransitionKind::Update, at(0), Duration::from_secs(2), false);
        assert_eq!(
            update.observe(at(0)),
            Observed::Exists(LoggingState::Updating)
        );
        assert_eq!(
            update.observe(at(3)),
            Observed::Exists(LoggingState::Active)
        );
        let delete =
            Transition::start(TransitionKind::Delete, at(0), Duration::from_secs(2), false);
        assert_eq!(
            delete.observe(at(1)),
            Observed::Exists(LoggingState::Deleting)
        );
        assert_eq!(delete.observe(at(2)), Observed::Gone);
    }

    #[test]
    fn failing_transitions_end_in_failed_states() {
        for (kind, failed) in [
            (TransitionKind::Create, LoggingState::CreateFailed),
            (TransitionKind::Update, LoggingState::UpdateFailed),
            (TransitionKind::Delete, LoggingState::DeleteFailed),
        ] {
            let transition = Transition::start(kind, at(0), Duration::from_secs(1), true);
            assert!(
                matches!(transition.observe(at(0)), Observed::Exists(state) if state.is_transitioning())
            );
            assert_eq!(transition.observe(at(1)), Observed::Exists(failed));
        }
    }

    #[test]
    fn zero_delay_completes_immediately() {
        let create = Transition::start(TransitionKind::Create, at(0), Duration::ZERO, false);
        assert_eq!(
            create.observe(at(0)),
            Observed::Exists(LoggingState::Active)
        );
    }
}
