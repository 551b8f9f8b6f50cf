//! What this process remembers of each object between passes: one [`ObjectMemory`] record per object,
//! keyed by the object's UID, so that an object deleted and created again under the same name starts
//! with nothing (it is a new object, with a new AWS resource to create), and removed when the object goes
//! away ([`Memory::forget`] once the finalizer is released, [`Memory::retain`] for objects that left
//! the store without the operator's cleanup), so that nothing leaks.
//!
//! Each part of a record protects one thing:
//! - **failures**: consecutive failures, for the exponential backoff; reset by any pass that ends well.
//! - **in sync**: what the object looked like ([`fingerprint`]) when AWS last confirmed it, and when its
//!   resync is due. A reconcile triggered by the operator's own status write (or by an unrelated change of
//!   a referenced object) then costs no AWS call, and a listing can push the resync out. An object in
//!   sync has no timed requeue: the listing loop wakes it when it is due ([`Memory::wake_due`]), so
//!   the controller's queue holds only objects with work to do, not every object of the account.
//! - **awaiting a listing**: the object's pass found no listing to confirm it by and left it to the
//!   next one ([`Memory::await_listing`]): that listing's review confirms it or hands it back.
//! - **last create attempt**: creates take no idempotency token, so only a listing that *started* after
//!   the last attempt proves the attempt created nothing (the crash-safe create's snapshot rule). Its
//!   presence alone also makes the next create of the object look up first, whatever the status says (a
//!   status write computed from an older view of the object may have dropped the attempt's record).
//! - **superseded version**: the resourceVersion the write of a create attempt's record produced, once
//!   the same pass wrote its outcome over it: a pass handed that version (the store not yet showing the
//!   outcome) would decide from a status without the outcome, so it waits for the newer version.
//! - **unwritten outcome**: the AWS outcome of a pass whose status write failed (the API server is down,
//!   say), written by the retry instead of repeating the AWS calls.
//! - **failed deletion**: when AWS first reported a failed deletion; see [`Memory::retry_failed_deletion`].
//! - **ready generation**: the generation the object was last Ready at, so that a difference found at the
//!   same generation is reported as drift, whatever transitions happened in between.

use super::report::Report;
use super::schedule::ResyncSchedule;
use super::{Deletion, ManagedKind, Timing};
use crate::controller::status::StatusDocument;
use crate::crd::is_paused;
use kube::{Resource, ResourceExt};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Everything the process remembers of one object. A missing record and a default one mean the same:
/// nothing known.
#[derive(Default)]
struct ObjectMemory {
    /// When the record last changed: [`Memory::retain`] never drops a record younger than the store
    /// view it prunes by.
    touched: Option<Instant>,
    failures: u32,
    in_sync: Option<InSync>,
    last_create_attempt: Option<Instant>,
    /// The name that create sent, when the kind's lookup can search by it ([`ManagedKind::search_name`]).
    last_create_name: Option<Box<str>>,
    /// See [`Memory::attempt_superseded`].
    superseded_version: Option<String>,
    /// Boxed: rare (a failed status write), and a record is in the map for every object, so the
    /// outcome's size would otherwise be paid 10,000 times over at 10,000 objects.
    unwritten: Option<Box<Unwritten>>,
    deletion_failed_at: Option<Instant>,
    /// `Some(generation)` once Ready (the generation itself may be unset).
    ready_generation: Option<Option<i64>>,
    /// See [`Memory::note_copies`].
    copies_listed: bool,
    /// See [`Memory::await_listing`].
    awaiting_listing: bool,
    /// Woken once for the due time of `in_sync` ([`Memory::wake_due`]): a pass that then fails retries
    /// on its own backoff. Beside the other flags rather than in [`InSync`], where it would add 8
    /// bytes of padding to every record.
    woken_when_due: bool,
}

/// The object matched AWS: see [`Memory::sync_memory`].
#[derive(Clone, Copy, Debug)]
struct InSync {
    fingerprint: u64,
    verified_at: Instant,
    due: Instant,
}

/// An AWS outcome not yet in status: see [`Memory::keep_unwritten`].
struct Unwritten {
    fingerprint: u64,
    at: Instant,
    next: StatusDocument,
    report: Report,
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

/// The memory records of one controller's objects, keyed by UID ([`memory_key`]).
pub(super) struct Memory {
    timing: Timing,
    /// When an object in sync is due again: the kind's resync period in effect, not the configured one.
    schedule: Arc<ResyncSchedule>,
    /// Boxed records: a table for 10,000 objects has 16,384 slots, and a slot holding a pointer rather
    /// than a whole record saves about 1 MiB there, 2 MiB while the table grows (old and new side by side).
    records: Mutex<HashMap<String, Box<ObjectMemory>>>,
}

/// The key of an object's record: its UID. Only objects that never went through the API server (unit
/// tests) have none; they fall back on their namespace and name.
pub(super) fn memory_key<K: Resource>(object: &K) -> String {
    object.uid().unwrap_or_else(|| {
        format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    })
}

impl Memory {
    pub(super) fn new(timing: Timing, schedule: Arc<ResyncSchedule>) -> Self {
        Memory {
            timing,
            schedule,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn records(&self) -> MutexGuard<'_, HashMap<String, Box<ObjectMemory>>> {
        // A panic while holding the lock cannot leave a record half written in a way that matters more
        // than losing the memory altogether would.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the record of `key`, creating it if needed.
    fn update<T>(&self, key: &str, change: impl FnOnce(&mut ObjectMemory) -> T) -> T {
        let mut records = self.records();
        let record = records.entry(key.to_owned()).or_default();
        record.touched = Some(Instant::now());
        change(record)
    }

    /// Reads the record of `key` (`None`: nothing remembered).
    fn read<T>(&self, key: &str, read: impl FnOnce(&ObjectMemory) -> T) -> Option<T> {
        self.records().get(key).map(|record| read(record))
    }

    // -- Lifetime -----------------------------------------------------------------------------------------

    /// The object is gone (its finalizer released, or it went away without one): forget all of it.
    pub(super) fn forget(&self, key: &str) {
        self.records().remove(key);
    }

    /// Drops the records of objects no longer in the store (deleted without the operator's cleanup, e.g.
    /// their finalizer removed by hand). `present`: the keys of the objects the store held at `seen_at`;
    /// a record touched since then belongs to an object the view may have missed, and stays.
    pub(super) fn retain(&self, present: &HashSet<String>, seen_at: Instant) {
        self.records().retain(|key, record| {
            present.contains(key) || record.touched.is_some_and(|touched| touched >= seen_at)
        });
    }

    /// How many objects have a record.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.records().len()
    }

    // -- Backoff ------------------------------------------------------------------------------------------

    /// The next exponential backoff of the object, with jitter (50-100 % of the nominal delay).
    pub(super) fn next_backoff(&self, key: &str) -> Duration {
        let attempt = self.update(key, |record| {
            record.failures = record.failures.saturating_add(1);
            record.failures
        });
        jittered_backoff(&self.timing, attempt, rand::random_range(0.5..=1.0))
    }

    /// A pass ended well: the next failure starts the backoff over.
    pub(super) fn reset_failures(&self, key: &str) {
        if self.read(key, |record| record.failures > 0) == Some(true) {
            self.update(key, |record| record.failures = 0);
        }
    }

    // -- In sync ------------------------------------------------------------------------------------------

    /// What this process knows of the object's sync with AWS, given its current fingerprint.
    pub(super) fn sync_memory(&self, key: &str, fingerprint: u64) -> SyncMemory {
        match self.read(key, |record| record.in_sync).flatten() {
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
        self.read(key, |record| record.in_sync.map(|entry| entry.verified_at))
            .flatten()
    }

    /// The object matched AWS as of `verified_at`: its resync is due a little over one resync period later,
    /// after the next listing (which starts one period after the previous one) has had time to complete.
    /// Returns how long until then.
    pub(super) fn remember_in_sync(
        &self,
        key: &str,
        fingerprint: u64,
        verified_at: Instant,
    ) -> Duration {
        let due = verified_at + self.schedule.in_sync_for();
        self.update(key, |record| {
            record.in_sync = Some(InSync {
                fingerprint,
                verified_at,
                due,
            });
            record.awaiting_listing = false;
            record.woken_when_due = false;
        });
        due.saturating_duration_since(Instant::now())
    }

    /// A listing that started at `verified_at` confirmed the object: push its resync out.
    pub(super) fn reverify(&self, key: &str, verified_at: Instant) {
        let due = verified_at + self.schedule.in_sync_for();
        self.update(key, |record| {
            if let Some(entry) = &mut record.in_sync
                && entry.verified_at < verified_at
            {
                entry.verified_at = verified_at;
                entry.due = due;
                record.awaiting_listing = false;
                record.woken_when_due = false;
            }
        });
    }

    pub(super) fn forget_in_sync(&self, key: &str) {
        if self.read(key, |record| {
            record.in_sync.is_some() || record.awaiting_listing
        }) == Some(true)
        {
            self.update(key, |record| {
                record.in_sync = None;
                record.awaiting_listing = false;
            });
        }
    }

    // -- Waking -------------------------------------------------------------------------------------------

    /// Whether the record keeps something only a pass deals with: an unwritten outcome, a superseded
    /// create attempt's version, or copies the listing showed.
    pub(super) fn keeps_work(&self, key: &str) -> bool {
        self.read(key, |record| {
            record.unwritten.is_some()
                || record.superseded_version.is_some()
                || record.copies_listed
        }) == Some(true)
    }

    /// The object's pass needs a listing that is not in yet: the object waits, unscheduled, until the
    /// next listing's review confirms it or hands it back ([`Memory::take_awaiting`]).
    pub(super) fn await_listing(&self, key: &str) {
        self.update(key, |record| record.awaiting_listing = true);
    }

    /// Whether the object was waiting for a listing (the wait ends).
    pub(super) fn take_awaiting(&self, key: &str) -> bool {
        if self.read(key, |record| record.awaiting_listing) != Some(true) {
            return false;
        }
        self.update(key, |record| record.awaiting_listing = false);
        true
    }

    /// Whether an object in sync needs a pass now, which nothing else would start (it has no timed
    /// requeue): its resync is due and it does not wait for a listing yet (the pass asks for one), or it
    /// has waited so long (two periods in effect since its last confirmation: listings are failing) that
    /// the pass should read the resource itself ([`confirm_by_listing`](super::drift::confirm_by_listing)
    /// decides by the same [`Memory::overdue`]). Each is woken once: the wait ends with the wake-up,
    /// and a due object is not woken again until a confirmation sets a new due time (a pass that fails
    /// in between retries on its own backoff).
    pub(super) fn wake_due(&self, key: &str, now: Instant) -> bool {
        let overdue_after = self.overdue_after();
        let mut records = self.records();
        let Some(record) = records.get_mut(key) else {
            return false;
        };
        let Some(in_sync) = record.in_sync else {
            return false;
        };
        if !record.awaiting_listing {
            if record.woken_when_due || now < in_sync.due {
                return false;
            }
            record.woken_when_due = true;
            return true;
        }
        if now.saturating_duration_since(in_sync.verified_at) > overdue_after {
            record.awaiting_listing = false;
            return true;
        }
        false
    }

    /// Whether a confirmation as old as `verified_at` is too old to wait for a listing any longer.
    pub(super) fn overdue(&self, verified_at: Instant) -> bool {
        verified_at.elapsed() > self.overdue_after()
    }

    fn overdue_after(&self) -> Duration {
        self.schedule.period() * 2
    }

    // -- Ready generation ---------------------------------------------------------------------------------

    pub(super) fn was_ready_at(&self, key: &str, generation: Option<i64>) -> bool {
        self.read(key, |record| record.ready_generation == Some(generation)) == Some(true)
    }

    pub(super) fn set_ready_at(&self, key: &str, generation: Option<i64>) {
        self.update(key, |record| record.ready_generation = Some(generation));
    }

    // -- Create attempts ----------------------------------------------------------------------------------

    /// Marks a create of the object as sent. The time is taken when the returned guard drops, i.e. once
    /// the call has returned, failed or been cancelled: the call may wait seconds for its rate-budget slot,
    /// and a listing that starts during that wait cannot show what the call creates afterwards.
    pub(super) fn create_attempt(&self, key: &str, name: Option<&str>) -> CreateInFlight<'_> {
        CreateInFlight {
            memory: self,
            key: key.to_owned(),
            name: name.map(Box::from),
        }
    }

    /// When a create of the object was last sent: only a listing that started later proves it created
    /// nothing.
    pub(super) fn last_create_attempt(&self, key: &str) -> Option<Instant> {
        self.read(key, |record| record.last_create_attempt)
            .flatten()
    }

    /// The name the last create sent (see [`Memory::last_create_attempt`]), if the lookup can search by it.
    pub(super) fn last_create_name(&self, key: &str) -> Option<String> {
        self.read(key, |record| {
            record.last_create_name.as_deref().map(str::to_owned)
        })
        .flatten()
    }

    /// The listing showed resources tagged as the object's besides its own: its next pass deletes them
    /// ([`settle`](super::settle)).
    pub(super) fn note_copies(&self, key: &str) {
        self.update(key, |record| record.copies_listed = true);
    }

    /// Whether the listing showed copies not yet dealt with.
    pub(super) fn copies_noted(&self, key: &str) -> bool {
        self.read(key, |record| record.copies_listed) == Some(true)
    }

    /// Whether the listing showed copies since the last call (the mark is taken).
    pub(super) fn take_copies(&self, key: &str) -> bool {
        if self.read(key, |record| record.copies_listed) != Some(true) {
            return false;
        }
        self.update(key, |record| record.copies_listed = false);
        true
    }

    /// The pass that wrote a create attempt's record, producing `resource_version`, then wrote its outcome.
    pub(super) fn attempt_superseded(&self, key: &str, resource_version: &str) {
        self.update(key, |record| {
            record.superseded_version = Some(resource_version.to_owned());
        });
    }

    /// Whether the object as handed to a pass, at `resource_version`, is an attempt's record this process
    /// has since overwritten with the outcome (an outdated view). Any other version means the view moved
    /// on: the superseded one is forgotten.
    pub(super) fn is_outdated_view(&self, key: &str, resource_version: Option<&str>) -> bool {
        let Some(superseded) = self
            .read(key, |record| record.superseded_version.clone())
            .flatten()
        else {
            return false;
        };
        if resource_version == Some(superseded.as_str()) {
            return true;
        }
        self.update(key, |record| record.superseded_version = None);
        false
    }

    // -- Unwritten outcomes -------------------------------------------------------------------------------

    /// Keeps the outcome of a pass whose status write failed.
    pub(super) fn keep_unwritten(
        &self,
        key: &str,
        fingerprint: u64,
        next: StatusDocument,
        report: Report,
    ) {
        self.update(key, |record| {
            record.unwritten = Some(Box::new(Unwritten {
                fingerprint,
                at: Instant::now(),
                next,
                report,
            }));
        });
    }

    /// The kept outcome for the object in this shape, if it is recent (younger than a resync period).
    pub(super) fn take_unwritten(
        &self,
        key: &str,
        fingerprint: u64,
    ) -> Option<(StatusDocument, Report)> {
        let mut records = self.records();
        let kept = records.get_mut(key)?.unwritten.take()?;
        (kept.fingerprint == fingerprint && kept.at.elapsed() < self.schedule.period())
            .then_some((kept.next, kept.report))
    }

    // -- Failed deletions ---------------------------------------------------------------------------------

    /// The one rule for retrying a deletion that failed in AWS (e.g. DELETE_FAILED): the failure is
    /// reported, and the delete is sent again only once the long backoff has passed since it was first
    /// reported, not at the watch event of the status write that reported it (the pass that reports it
    /// requeues after the long backoff). `true`: send the delete again.
    pub(super) fn retry_failed_deletion(&self, key: &str) -> bool {
        self.read(key, |record| record.deletion_failed_at)
            .flatten()
            .is_some_and(|at| at.elapsed() >= self.timing.long_backoff)
    }

    /// What a delete call reported: a failure is remembered from the first time it is seen; progress
    /// (AWS deleting) clears it, so a later failure waits the long backoff again.
    pub(super) fn deletion_reported(&self, key: &str, deletion: &Deletion) {
        match deletion {
            Deletion::Failed(_) => self.update(key, |record| {
                record.deletion_failed_at.get_or_insert_with(Instant::now);
            }),
            Deletion::InProgress(_) => self.update(key, |record| record.deletion_failed_at = None),
            Deletion::Gone => {}
        }
    }
}

/// A create in flight: see [`Memory::create_attempt`].
pub(super) struct CreateInFlight<'a> {
    memory: &'a Memory,
    key: String,
    name: Option<Box<str>>,
}

impl Drop for CreateInFlight<'_> {
    fn drop(&mut self) {
        let name = self.name.take();
        self.memory.update(&self.key, |record| {
            record.last_create_attempt = Some(Instant::now());
            record.last_create_name = name;
        });
    }
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
        let configs = crate::controller::room::RoomContext {
            configs,
            accounts: crate::controller::accounts::Accounts::offline(),
        };
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

    /// Everything a record can hold, for tests of its lifetime.
    fn remember_everything(memory: &Memory, key: &str) {
        memory.remember_in_sync(key, 7, Instant::now());
        memory.set_ready_at(key, Some(1));
        drop(memory.create_attempt(key, None));
        memory.next_backoff(key);
        memory.deletion_reported(key, &Deletion::Failed("DELETE_FAILED".into()));
        memory.keep_unwritten(
            key,
            7,
            StatusDocument::default(),
            Report::new(
                crate::controller::status::Health::ready("Synced", "in sync"),
                super::super::report::Requeue::Resync,
            ),
        );
    }

    #[test]
    fn records_are_per_uid_and_removed_with_the_object() {
        let memory = memory_with(Timing::default());
        remember_everything(&memory, "uid-old");
        // The same name created again is another object (another UID): it inherits nothing.
        assert_eq!(memory.sync_memory("uid-new", 7), SyncMemory::Unknown);
        assert!(!memory.was_ready_at("uid-new", Some(1)));
        assert_eq!(memory.last_create_attempt("uid-new"), None);
        assert!(memory.take_unwritten("uid-new", 7).is_none());
        assert!(matches!(
            memory.sync_memory("uid-old", 7),
            SyncMemory::Fresh(_)
        ));
        // Cleanup (or the object going away) removes the whole record.
        memory.forget("uid-old");
        assert_eq!(memory.len(), 0);
        assert_eq!(memory.sync_memory("uid-old", 7), SyncMemory::Unknown);
        assert_eq!(memory.last_create_attempt("uid-old"), None);
    }

    #[test]
    fn copies_noted_by_the_listing_are_taken_once() {
        let memory = memory_with(paused_timing());
        assert!(!memory.copies_noted("uid") && !memory.take_copies("uid"));
        memory.note_copies("uid");
        assert!(memory.copies_noted("uid"), "peeking leaves the mark");
        assert!(memory.take_copies("uid"));
        assert!(!memory.copies_noted("uid") && !memory.take_copies("uid"));
    }

    #[test]
    fn a_record_stays_small_because_every_object_has_one() {
        // Without the box, a record carried a whole unwritten outcome (status document and report) for
        // every object, though almost none has one.
        let size = std::mem::size_of::<ObjectMemory>();
        assert!(size <= 160, "{size} bytes");
    }

    #[test]
    fn the_memory_key_is_the_uid() {
        let mut room = ChatRoom::new("room", ChatRoomSpec::default());
        room.metadata.namespace = Some("ns".into());
        assert_eq!(memory_key(&room), "ns/room");
        room.metadata.uid = Some("3f1c".into());
        assert_eq!(memory_key(&room), "3f1c");
    }

    /// A memory whose schedule keeps `timing`'s resync period (no rate budget to stretch it).
    fn memory_with(timing: Timing) -> Memory {
        let schedule = ResyncSchedule::of::<ChatRoom>(
            timing.resync_period,
            None,
            crate::metrics::Metrics::new(),
        );
        Memory::new(timing, Arc::new(schedule))
    }

    /// Round numbers, so the expected instants read plainly.
    fn paused_timing() -> Timing {
        Timing {
            resync_period: Duration::from_secs(100),
            poll_interval: Duration::from_secs(2),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            long_backoff: Duration::from_secs(300),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_per_failure_up_to_the_cap_and_restarts_after_a_success() {
        let memory = memory_with(paused_timing());
        for nominal in [1, 2, 4, 8, 8, 8] {
            let nominal = Duration::from_secs(nominal);
            let delay = memory.next_backoff("uid");
            assert!(
                delay >= nominal / 2 && delay <= nominal,
                "{delay:?} for {nominal:?}"
            );
        }
        // Another object has its own count.
        assert!(memory.next_backoff("other") <= Duration::from_secs(1));
        memory.reset_failures("uid");
        assert!(memory.next_backoff("uid") <= Duration::from_secs(1));
        assert!(memory.next_backoff("uid") > Duration::from_secs(1) / 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_in_sync_is_fresh_until_a_little_over_one_resync_period() {
        let memory = memory_with(paused_timing());
        let verified_at = Instant::now();
        let until = memory.remember_in_sync("uid", 7, verified_at);
        // One period plus 5-25 %: after the next listing, spread over 20 s.
        assert!(
            until >= Duration::from_secs(105) && until <= Duration::from_secs(125),
            "{until:?}"
        );
        assert_eq!(memory.sync_memory("uid", 7), SyncMemory::Fresh(until));
        assert_eq!(
            memory.sync_memory("uid", 8),
            SyncMemory::Unknown,
            "another shape of the object is not known in sync"
        );
        tokio::time::advance(until - Duration::from_secs(1)).await;
        assert_eq!(
            memory.sync_memory("uid", 7),
            SyncMemory::Fresh(Duration::from_secs(1))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(memory.sync_memory("uid", 7), SyncMemory::Due(verified_at));

        // A listing that started later confirms it: due again a little over a period after that listing.
        let listed_at = Instant::now() - Duration::from_secs(10);
        memory.reverify("uid", listed_at);
        assert_eq!(memory.verified_at("uid"), Some(listed_at));
        let SyncMemory::Fresh(left) = memory.sync_memory("uid", 7) else {
            panic!("reverified: {:?}", memory.sync_memory("uid", 7));
        };
        assert!(
            left >= Duration::from_secs(95) && left <= Duration::from_secs(115),
            "{left:?}"
        );
        // An older listing changes nothing.
        memory.reverify("uid", verified_at);
        assert_eq!(memory.verified_at("uid"), Some(listed_at));
        memory.forget_in_sync("uid");
        assert_eq!(memory.sync_memory("uid", 7), SyncMemory::Unknown);
        assert_eq!(memory.verified_at("uid"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_in_sync_is_woken_when_due_and_again_when_its_wait_for_a_listing_is_overdue()
    {
        let memory = memory_with(paused_timing());
        assert!(
            !memory.wake_due("uid", Instant::now()),
            "nothing known: nothing to wake"
        );
        let verified_at = Instant::now();
        let until = memory.remember_in_sync("uid", 7, verified_at);
        assert!(!memory.wake_due("uid", Instant::now()), "not due yet");
        tokio::time::advance(until).await;
        assert!(memory.wake_due("uid", Instant::now()), "due");
        assert!(
            !memory.wake_due("uid", Instant::now()),
            "woken once per due time: a pass that fails retries on its own"
        );
        // Its pass found no listing to confirm it by: it waits, and is not woken again while it waits...
        memory.await_listing("uid");
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(!memory.wake_due("uid", Instant::now()));
        // ...until two periods since its confirmation, when its pass reads the resource itself. The wake
        // ends the wait, so a failing read is not woken again at every check.
        tokio::time::advance(Duration::from_secs(200) - until - Duration::from_secs(50)).await;
        assert!(!memory.overdue(verified_at), "exactly two periods");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(memory.overdue(verified_at));
        assert!(memory.wake_due("uid", Instant::now()));
        assert!(!memory.take_awaiting("uid"), "the wake ended the wait");

        // A listing that confirms a waiting object ends its wait; so does forgetting it in sync.
        memory.await_listing("uid");
        memory.reverify("uid", Instant::now());
        assert!(!memory.take_awaiting("uid"));
        assert!(
            !memory.wake_due("uid", Instant::now()),
            "reverified: not due"
        );
        memory.await_listing("uid");
        memory.forget_in_sync("uid");
        assert!(!memory.take_awaiting("uid"));
        assert!(!memory.wake_due("uid", Instant::now() + Duration::from_secs(1_000)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_look_waits_for_a_listing_until_one_confirms_it() {
        let memory = memory_with(paused_timing());
        memory.await_listing("uid");
        // Never confirmed by this process: nothing to be overdue from; the listing decides.
        tokio::time::advance(Duration::from_secs(1_000)).await;
        assert!(!memory.wake_due("uid", Instant::now()));
        assert!(memory.take_awaiting("uid"));
        assert!(!memory.take_awaiting("uid"), "taken once");
        memory.await_listing("uid");
        memory.remember_in_sync("uid", 7, Instant::now());
        assert!(!memory.take_awaiting("uid"), "confirmed: no longer waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn objects_in_sync_follow_the_stretched_resync_period() {
        let timing = paused_timing();
        // 100 s at half of 1/s lists 50 pages: 200 pages need 400 s.
        let schedule = Arc::new(ResyncSchedule::of::<ChatRoom>(
            timing.resync_period,
            Some(1.0),
            crate::metrics::Metrics::new(),
        ));
        let memory = Memory::new(timing, schedule.clone());
        let before = memory.remember_in_sync("before", 7, Instant::now());
        assert!(before <= Duration::from_secs(125), "{before:?}");
        assert_eq!(
            schedule.listed(
                &crate::controller::accounts::ScopeKey::new(None, "us-west-2"),
                200
            ),
            Duration::from_secs(400)
        );
        let after = memory.remember_in_sync("after", 7, Instant::now());
        assert!(
            after >= Duration::from_secs(420) && after <= Duration::from_secs(500),
            "due after the next listing of the stretched schedule: {after:?}"
        );
        // A listing confirms the earlier one: it too follows the stretched period from now on.
        tokio::time::advance(Duration::from_secs(1)).await;
        memory.reverify("before", Instant::now());
        let SyncMemory::Fresh(left) = memory.sync_memory("before", 7) else {
            panic!("reverified: {:?}", memory.sync_memory("before", 7));
        };
        assert!(left >= Duration::from_secs(420), "{left:?}");
        // A kept outcome stays trustworthy for the period in effect too.
        memory.keep_unwritten(
            "kept",
            7,
            StatusDocument::default(),
            Report::new(
                crate::controller::status::Health::ready("Synced", "in sync"),
                super::super::report::Requeue::Resync,
            ),
        );
        tokio::time::advance(Duration::from_secs(200)).await;
        assert!(memory.take_unwritten("kept", 7).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_deletion_is_sent_again_one_long_backoff_after_it_was_first_reported() {
        let memory = memory_with(paused_timing());
        let failed = Deletion::Failed("DELETE_FAILED".into());
        assert!(!memory.retry_failed_deletion("uid"));
        memory.deletion_reported("uid", &failed);
        assert!(!memory.retry_failed_deletion("uid"));
        // Reported again (the watch event of the status write): the first report still counts.
        tokio::time::advance(Duration::from_secs(200)).await;
        memory.deletion_reported("uid", &failed);
        tokio::time::advance(Duration::from_secs(99)).await;
        assert!(!memory.retry_failed_deletion("uid"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(memory.retry_failed_deletion("uid"));
        // AWS deleting again: a later failure waits the whole long backoff once more.
        memory.deletion_reported("uid", &Deletion::InProgress("DELETING".into()));
        assert!(!memory.retry_failed_deletion("uid"));
        memory.deletion_reported("uid", &failed);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(!memory.retry_failed_deletion("uid"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(memory.retry_failed_deletion("uid"));
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_listing_started_after_the_create_attempt_ended_can_prove_it() {
        use crate::controller::inventory::{Inventory, Snapshot};
        let memory = memory_with(paused_timing());
        let inventory = Inventory::<()>::default();
        assert_eq!(memory.last_create_attempt("uid"), None);
        let attempt = memory.create_attempt("uid", Some("room"));
        // The call waits for its rate-budget slot while a listing starts and completes.
        tokio::time::advance(Duration::from_secs(1)).await;
        let during = Instant::now();
        inventory.begin(during);
        tokio::time::advance(Duration::from_secs(2)).await;
        inventory.publish(Snapshot::new(during, vec![]));
        assert_eq!(
            memory.last_create_attempt("uid"),
            None,
            "the time is taken when the call ends"
        );
        assert_eq!(memory.last_create_name("uid"), None);
        drop(attempt);
        assert_eq!(memory.last_create_attempt("uid"), Some(Instant::now()));
        assert_eq!(
            memory.last_create_name("uid").as_deref(),
            Some("room"),
            "the name the create sent, for a narrowed lookup"
        );
        assert!(
            inventory.since(memory.last_create_attempt("uid")).is_none(),
            "a listing that started while the create was pending proves nothing"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let after = Instant::now();
        inventory.begin(after);
        inventory.publish(Snapshot::new(after, vec![]));
        assert!(
            inventory
                .since(memory.last_create_attempt("uid"))
                .is_some_and(|snapshot| snapshot.started == after)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unwritten_outcomes_are_given_back_once_for_the_same_shape_within_a_period() {
        let memory = memory_with(paused_timing());
        let report = || {
            Report::new(
                crate::controller::status::Health::ready("Synced", "in sync"),
                super::super::report::Requeue::Resync,
            )
        };
        memory.keep_unwritten("uid", 7, StatusDocument::default(), report());
        assert!(memory.take_unwritten("uid", 8).is_none(), "another shape");
        assert!(
            memory.take_unwritten("uid", 7).is_none(),
            "taken (and dropped) above"
        );
        memory.keep_unwritten("uid", 7, StatusDocument::default(), report());
        assert!(memory.take_unwritten("uid", 7).is_some());
        assert!(memory.take_unwritten("uid", 7).is_none(), "only once");
        memory.keep_unwritten("uid", 7, StatusDocument::default(), report());
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(
            memory.take_unwritten("uid", 7).is_none(),
            "too old to trust"
        );
    }

    #[test]
    fn only_the_superseded_attempt_version_is_an_outdated_view() {
        let memory = memory_with(paused_timing());
        assert!(!memory.is_outdated_view("uid", Some("7")));
        memory.attempt_superseded("uid", "7");
        assert!(
            memory.is_outdated_view("uid", Some("7")),
            "until the store moves on"
        );
        assert!(
            !memory.is_outdated_view("uid", Some("8")),
            "the outcome's version"
        );
        assert!(
            !memory.is_outdated_view("uid", Some("7")),
            "forgotten once moved on"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_of_objects_gone_from_the_store_are_dropped_unless_touched_since() {
        let memory = memory_with(paused_timing());
        remember_everything(&memory, "present");
        remember_everything(&memory, "gone");
        tokio::time::advance(Duration::from_secs(1)).await;
        let seen_at = Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        // Created after the store was looked at: the view may simply not show it yet.
        memory.set_ready_at("new", Some(1));
        memory.retain(&HashSet::from(["present".to_owned()]), seen_at);
        assert_eq!(memory.len(), 2);
        assert!(memory.was_ready_at("present", Some(1)));
        assert!(memory.was_ready_at("new", Some(1)));
        assert!(!memory.was_ready_at("gone", Some(1)));
        assert_eq!(memory.last_create_attempt("gone"), None);
    }
}
