//! The objects this process found, at its start, without a result or an attempt of a create in status.
//!
//! Write-ahead creates make an object with neither an ARN nor a recorded attempt safe to create without a
//! lookup, but only for creates sent by an operator that records attempts. An object that existed before
//! this process started may have been handled by an earlier operator version that created first and
//! recorded afterwards, and died in between (an upgrade right after a crash, say). Such an object is looked
//! up once before its create (or before its finalizer is released); objects that appear after the start,
//! the bulk of any creation wave, are not. The set holds only the objects that need it (no ARN and no
//! attempt at the start), so it is empty for an account at rest.

use std::collections::HashSet;
use std::sync::Mutex;

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Predating {
    /// Keys ([`memory_key`](super::memory::memory_key)) of the objects the store's first full list showed
    /// with neither an ARN nor a create attempt; `None` until that list is in.
    unrecorded: Mutex<Option<HashSet<String>>>,
}

impl Predating {
    fn unrecorded(&self) -> std::sync::MutexGuard<'_, Option<HashSet<String>>> {
        self.unrecorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The store's first full list is in: `keys` are its objects with neither an ARN nor an attempt.
    pub(super) fn found_at_start(&self, keys: HashSet<String>) {
        let mut unrecorded = self.unrecorded();
        if unrecorded.is_none() {
            *unrecorded = Some(keys);
        }
    }

    /// Whether the object may have been handled by an earlier process that did not record its creates:
    /// it was in the first full list without a record, or that list is not in yet (so nobody can tell).
    pub(super) fn may_predate(&self, key: &str) -> bool {
        self.unrecorded()
            .as_ref()
            .is_none_or(|keys| keys.contains(key))
    }

    /// The object's status now records an attempt (or the object is gone): the status says the rest.
    pub(super) fn settled(&self, key: &str) {
        if let Some(keys) = self.unrecorded().as_mut() {
            keys.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_found_unrecorded_at_the_start_may_predate_the_process() {
        let predating = Predating::default();
        assert!(
            predating.may_predate("a"),
            "before the first list, anything may"
        );
        predating.found_at_start(HashSet::from(["a".to_owned()]));
        assert!(predating.may_predate("a"));
        assert!(!predating.may_predate("b"), "appeared after the start");
        // A later (re)list changes nothing: what predates the process was decided once.
        predating.found_at_start(HashSet::from(["b".to_owned()]));
        assert!(!predating.may_predate("b"));
        predating.settled("a");
        assert!(
            !predating.may_predate("a"),
            "its status records the attempt"
        );
    }
}
