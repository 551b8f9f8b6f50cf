//! What this process remembers of each object between passes: consecutive failures (backoff), whether it
//! was found in sync (and when its resync is due), its last create attempt, outcomes whose status write
//! failed, failed deletions, and the generation it was last Ready at.

use super::report::Report;
use super::{Context, ManagedKind, Timing};
use crate::controller::status::StatusDocument;
use crate::crd::is_paused;
use kube::ResourceExt;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

impl<K: ManagedKind> Context<K> {
    pub(super) fn was_ready_at(&self, key: &str, generation: Option<i64>) -> bool {
        self.ready_generation
            .lock()
            .ok()
            .is_some_and(|ready| ready.get(key) == Some(&generation))
    }

    pub(super) fn set_ready_at(&self, key: &str, generation: Option<i64>) {
        if let Ok(mut ready) = self.ready_generation.lock() {
            ready.insert(key.to_owned(), generation);
        }
    }

    pub(super) fn forget_ready_at(&self, key: &str) {
        if let Ok(mut ready) = self.ready_generation.lock() {
            ready.remove(key);
        }
    }

    /// Whether a failed deletion was reported at least the long backoff ago (so it is time to retry).
    pub(super) fn deletion_retry_due(&self, key: &str) -> bool {
        self.deletion_failed_at
            .lock()
            .ok()
            .and_then(|failed| failed.get(key).copied())
            .is_some_and(|at| at.elapsed() >= self.timing.long_backoff)
    }

    /// Records a failed deletion (keeping the first time it was seen); `false` clears the record.
    pub(super) fn record_deletion_failed(&self, key: &str, failed: bool) {
        if let Ok(mut records) = self.deletion_failed_at.lock() {
            if failed {
                records.entry(key.to_owned()).or_insert_with(Instant::now);
            } else {
                records.remove(key);
            }
        }
    }

    /// What this process knows of an object's sync with AWS, given its current fingerprint.
    pub(super) fn sync_memory(&self, key: &str, fingerprint: u64) -> SyncMemory {
        let Ok(in_sync) = self.in_sync.lock() else {
            return SyncMemory::Unknown;
        };
        match in_sync.get(key) {
            Some(entry) if entry.fingerprint == fingerprint => {
                let now = Instant::now();
                if now < entry.due {
                    SyncMemory::Fresh(entry.due - now)
                } else {
                    SyncMemory::Due(entry.verified_at)
                }
            }
            _ => SyncMemory::Unknown,
        }
    }

    /// When AWS last confirmed the object in sync, if this process knows it to be.
    pub(super) fn verified_at(&self, key: &str) -> Option<Instant> {
        self.in_sync
            .lock()
            .ok()
            .and_then(|in_sync| in_sync.get(key).map(|entry| entry.verified_at))
    }

    /// The object matched AWS as of `verified_at`: its resync is due a little over one resync period later,
    /// after the next listing (which starts one period after the previous one) has had time to complete.
    pub(super) fn remember_in_sync(
        &self,
        key: &str,
        fingerprint: u64,
        verified_at: Instant,
    ) -> Duration {
        let due = verified_at + self.resync_delay();
        if let Ok(mut in_sync) = self.in_sync.lock() {
            in_sync.insert(
                key.to_owned(),
                InSync {
                    fingerprint,
                    verified_at,
                    due,
                },
            );
        }
        due.saturating_duration_since(Instant::now())
    }

    /// A listing that started at `verified_at` confirmed the object: push its resync out.
    pub(super) fn reverify(&self, key: &str, verified_at: Instant) {
        let due = verified_at + self.resync_delay();
        if let Ok(mut in_sync) = self.in_sync.lock()
            && let Some(entry) = in_sync.get_mut(key)
            && entry.verified_at < verified_at
        {
            entry.verified_at = verified_at;
            entry.due = due;
        }
    }

    /// One resync period plus 5-25 %: later than the next listing, and spread so objects do not wake
    /// together.
    pub(super) fn resync_delay(&self) -> Duration {
        self.timing
            .resync_period
            .mul_f64(rand::random_range(1.05..=1.25))
    }

    /// Marks a create of `key` as sent. The time is taken when the returned guard drops, i.e. once the call
    /// has returned, failed or been cancelled: the call may wait seconds for its rate-budget slot, and a
    /// listing that starts during that wait cannot show what the call creates afterwards.
    pub(super) fn create_attempt(&self, key: &str) -> CreateAttempt<'_> {
        CreateAttempt {
            attempts: &self.create_attempts,
            key: key.to_owned(),
        }
    }

    pub(super) fn last_create_attempt(&self, key: &str) -> Option<Instant> {
        self.create_attempts
            .lock()
            .ok()
            .and_then(|attempts| attempts.get(key).copied())
    }

    /// Keeps the outcome of a pass whose status write failed.
    pub(super) fn keep_unwritten(
        &self,
        key: &str,
        fingerprint: u64,
        next: StatusDocument,
        report: Report,
    ) {
        if let Ok(mut unwritten) = self.unwritten.lock() {
            unwritten.insert(
                key.to_owned(),
                Unwritten {
                    fingerprint,
                    at: Instant::now(),
                    next,
                    report,
                },
            );
        }
    }

    /// The kept outcome for the object in this shape, if it is recent (younger than a resync period).
    pub(super) fn take_unwritten(
        &self,
        key: &str,
        fingerprint: u64,
    ) -> Option<(StatusDocument, Report)> {
        let kept = self.unwritten.lock().ok()?.remove(key)?;
        (kept.fingerprint == fingerprint && kept.at.elapsed() < self.timing.resync_period)
            .then_some((kept.next, kept.report))
    }

    pub(super) fn forget_create_attempt(&self, key: &str) {
        if let Ok(mut attempts) = self.create_attempts.lock() {
            attempts.remove(key);
        }
    }

    pub(super) fn forget_in_sync(&self, key: &str) {
        if let Ok(mut in_sync) = self.in_sync.lock() {
            in_sync.remove(key);
        }
    }

    pub(super) fn reset_failures(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }

    /// The next exponential backoff for `key`, with jitter (50-100 % of the nominal delay).
    pub(super) fn next_backoff(&self, key: &str) -> Duration {
        let attempt = self
            .failures
            .lock()
            .map(|mut failures| {
                let count = failures.entry(key.to_owned()).or_insert(0);
                *count = count.saturating_add(1);
                *count
            })
            .unwrap_or(1);
        jittered_backoff(&self.timing, attempt, rand::random_range(0.5..=1.0))
    }
}

/// An AWS outcome not yet in status: see [`Context::keep_unwritten`].
pub(super) struct Unwritten {
    fingerprint: u64,
    at: Instant,
    next: StatusDocument,
    report: Report,
}

/// A create in flight: see [`Context::create_attempt`].
pub(super) struct CreateAttempt<'a> {
    attempts: &'a Mutex<HashMap<String, Instant>>,
    key: String,
}

impl Drop for CreateAttempt<'_> {
    fn drop(&mut self) {
        if let Ok(mut attempts) = self.attempts.lock() {
            attempts.insert(std::mem::take(&mut self.key), Instant::now());
        }
    }
}

/// An object found in sync: see [`Context::sync_memory`].
#[derive(Clone, Copy, Debug)]
pub(super) struct InSync {
    fingerprint: u64,
    verified_at: Instant,
    due: Instant,
}

/// What the process remembers of an object's sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SyncMemory {
    /// In sync, and not due for a resync for this long.
    Fresh(Duration),
    /// In sync as of the given instant, and due for a resync.
    Due(Instant),
    /// Never seen in sync by this process in its current shape.
    Unknown,
}

/// `base * 2^(attempt-1)`, capped, scaled by `jitter` (0..=1).
pub fn jittered_backoff(timing: &Timing, attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let nominal = timing
        .base_backoff
        .saturating_mul(1 << exponent)
        .min(timing.max_backoff);
    nominal.mul_f64(jitter.clamp(0.0, 1.0))
}

/// What decides whether an object needs an AWS pass: its generation (the spec), its deletion and
/// finalizers, and the desired state computed from the context (e.g. the referenced configurations' ARNs
/// and states). Status writes and unrelated changes of referenced objects leave it unchanged.
pub(super) fn fingerprint<K: ManagedKind>(object: &K, context: &K::Context) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    object.meta().generation.hash(&mut hasher);
    object.meta().deletion_timestamp.is_some().hash(&mut hasher);
    object.finalizers().hash(&mut hasher);
    is_paused(object.meta()).hash(&mut hasher);
    match object.desired(context) {
        Ok(desired) => serde_json::to_string(&desired)
            .unwrap_or_default()
            .hash(&mut hasher),
        Err(pending) => pending.message.hash(&mut hasher),
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        ChatLoggingConfiguration, ChatLoggingConfigurationSpec, ChatLoggingConfigurationStatus,
        ChatRoom, ChatRoomSpec, ChatRoomStatus, LoggingConfigurationReference,
    };
    use kube::runtime::reflector::store;
    use kube::runtime::watcher;

    #[test]
    fn fingerprint_ignores_status_but_not_spec_pause_or_references() {
        let (configs, mut writer) = store::<ChatLoggingConfiguration>();
        let mut room = ChatRoom::new(
            "room",
            ChatRoomSpec {
                logging_configurations: vec![LoggingConfigurationReference {
                    name: Some("logs".into()),
                    arn: None,
                }],
                ..ChatRoomSpec::default()
            },
        );
        room.metadata.namespace = Some("ns".into());
        room.metadata.generation = Some(1);
        let base = fingerprint(&room, &configs);

        // The operator's own status write: same fingerprint, so no AWS call.
        let mut written = room.clone();
        written.status = Some(ChatRoomStatus {
            arn: Some("arn".into()),
            ..Default::default()
        });
        assert_eq!(fingerprint(&written, &configs), base);

        let mut respecced = room.clone();
        respecced.metadata.generation = Some(2);
        assert_ne!(fingerprint(&respecced, &configs), base);

        let mut paused = room.clone();
        paused
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(crate::crd::PAUSED_ANNOTATION.into(), "true".into());
        assert_ne!(fingerprint(&paused, &configs), base);

        // The referenced configuration becomes ACTIVE: the desired state changes.
        let mut config =
            ChatLoggingConfiguration::new("logs", ChatLoggingConfigurationSpec::default());
        config.metadata.namespace = Some("ns".into());
        config.status = Some(ChatLoggingConfigurationStatus {
            arn: Some("arn:logs".into()),
            state: Some("ACTIVE".into()),
            ..Default::default()
        });
        writer.apply_watcher_event(&watcher::Event::Apply(config));
        assert_ne!(fingerprint(&room, &configs), base);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_scales_it() {
        let timing = Timing {
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..Timing::default()
        };
        assert_eq!(jittered_backoff(&timing, 1, 1.0), Duration::from_secs(1));
        assert_eq!(jittered_backoff(&timing, 3, 1.0), Duration::from_secs(4));
        assert_eq!(jittered_backoff(&timing, 9, 1.0), Duration::from_secs(10));
        assert_eq!(jittered_backoff(&timing, 60, 1.0), Duration::from_secs(10));
        assert_eq!(jittered_backoff(&timing, 3, 0.5), Duration::from_secs(2));
    }
}
