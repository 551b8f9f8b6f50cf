//! The one reconcile driver both kinds share, over the small per-kind trait [`ManagedKind`].
//!
//! The driver owns everything that is the same for every kind: pause, the finalizer (added before any AWS
//! call), observe-only, adoption, deletion policy, out-of-band deletion, tag management, error handling,
//! conditions, events and requeue decisions. A kind only says how its spec maps to normalised AWS fields
//! and how to call its AWS operations (observe / create / update / delete / list).
//!
//! Two rules keep AWS honest and cheap:
//! - **No create without a lookup.** Creates take no idempotency token, so before every create (and
//!   before releasing a finalizer with no ARN in status) the driver looks for a resource that already
//!   carries the object's ownership tag: a fresh filtered listing where the kind has one (rooms by name),
//!   otherwise a complete [`Snapshot`] that started after this object's last create attempt. A crash or a
//!   lost response between the create and the status write therefore ends in adoption, never a duplicate.
//! - **Drift is found by listing.** [`run_inventory`] lists the kind once per resync period and compares
//!   each summary with the last full read recorded in status (update time, tags, summary fields); only
//!   objects whose resource changed or vanished are reconciled, and only those cost a Get call.

use super::aws::{Aws, Retry};
use super::aws_error::{AwsError, ErrorClass};
use super::inventory::{Inventory, Listed, Page, Snapshot};
use super::plan::{changed_fields, managed_keys, plan_tags};
use super::status::{Health, StatusDocument, merge_conditions, reasons, truncate};
use crate::crd::{
    CONDITION_READY, CONDITION_STALLED, DeletionPolicy, ManagementPolicy, OWNER_NAME_TAG,
    OWNER_NAMESPACE_TAG, OWNER_UID_TAG, is_paused, tags_with_ownership,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The finalizer that keeps an object until its AWS resource is deleted (or released).
pub const FINALIZER: &str = "ivschat.dev/finalizer";
/// The one field manager of every status write.
pub const FIELD_MANAGER: &str = "ivschat-operator";
/// Longest event note (the Events API limit).
const MAX_EVENT_NOTE: usize = 1024;
/// Longest wait for one Kubernetes API call (status, finalizer, event): a hung connection must not hold a
/// reconcile, and with it the object, forever.
const KUBE_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest reconcile: the last guard, above every per-call timeout and rate-budget wait.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(300);
/// Most pages one listing reads (50 resources a page): a runaway pagination ends in an error.
const MAX_LIST_PAGES: usize = 10_000;

/// What the spec says about the AWS resource's life, common to both kinds.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    pub deletion: DeletionPolicy,
    pub management: ManagementPolicy,
    pub adopt_arn: Option<String>,
    /// The user's tags (without the ownership tags).
    pub tags: BTreeMap<String, String>,
}

/// An AWS resource as read (or as returned by a write): identity, times, state, normalised fields and tags.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed<F> {
    pub arn: String,
    pub id: Option<String>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
    /// The AWS lifecycle state, for kinds that have one.
    pub state: Option<String>,
    pub fields: F,
    pub tags: BTreeMap<String, String>,
}

/// The desired state cannot be computed yet (a reference is missing or not ready), or deletion must wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub reason: &'static str,
    pub message: String,
}

/// Progress of a delete call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The AWS resource no longer exists.
    Gone,
    /// AWS is deleting it (state given): check again soon.
    InProgress(String),
    /// The last deletion failed in AWS (state given): report it and try again after the long backoff.
    Failed(String),
}

/// One kind of AWS-backed custom resource.
pub trait ManagedKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The kind's name, for metrics labels (static, so label sets stay bounded).
    const KIND: &'static str;

    /// The normalised AWS fields the spec controls (defaults applied), compared with [`changed_fields`].
    type Fields: Serialize + Clone + PartialEq + Debug + Send + Sync + 'static;
    /// What a listing reports of a resource besides identity, times, state and tags.
    type Summary: Clone + Debug + Send + Sync + 'static;
    /// What the kind needs besides the object to compute its desired state (e.g. a store of referenced
    /// objects).
    type Context: Send + Sync + 'static;

    fn policies(&self) -> Policies;

    /// Maps the spec to the desired AWS fields.
    fn desired(&self, context: &Self::Context) -> Result<Self::Fields, Pending>;

    /// Resolves once the context can be trusted (e.g. a store of referenced objects has its first full
    /// list), so that a restart never mistakes an empty store for missing references.
    fn context_ready(_context: &Self::Context) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Whether deleting the AWS resource must wait (e.g. rooms still use a logging configuration).
    fn blocks_deletion(&self, _context: &Self::Context) -> Option<Pending> {
        None
    }

    /// Kind-specific status fields mirrored from the observed fields.
    fn mirror_fields(_fields: &Self::Fields, _status: &mut StatusDocument) {}

    /// Reads the resource; `None` when AWS does not know it.
    fn observe(
        aws: &Aws,
        arn: &str,
    ) -> impl Future<Output = Result<Option<Observed<Self::Fields>>, AwsError>> + Send;

    fn create(
        aws: &Aws,
        desired: &Self::Fields,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Observed<Self::Fields>, AwsError>> + Send;

    /// Sets every field to `desired` (tags are the driver's business).
    fn update(
        aws: &Aws,
        arn: &str,
        desired: &Self::Fields,
    ) -> impl Future<Output = Result<Observed<Self::Fields>, AwsError>> + Send;

    /// Deletes the resource; NotFound is [`Deletion::Gone`]. `retry_failed`: a failed deletion was already
    /// reported and waited for, so try again rather than report it once more.
    fn delete(
        aws: &Aws,
        arn: &str,
        retry_failed: bool,
    ) -> impl Future<Output = Result<Deletion, AwsError>> + Send;

    /// One page of the account-wide listing, and the token of the next page.
    fn list_page(
        aws: &Aws,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Self::Summary>, AwsError>> + Send;

    /// A fresh, narrowed listing of the resources that may carry this object's ownership tag (rooms: by
    /// the spec's name), every page; `None` when the kind has no filter that narrows the search for this
    /// object, so the lookup uses a complete account-wide [`Snapshot`] instead.
    fn search_owned(
        &self,
        _aws: &Aws,
    ) -> impl Future<Output = Result<Option<Vec<Listed<Self::Summary>>>, AwsError>> + Send {
        async { Ok(None) }
    }

    /// Whether a listed summary agrees with the desired fields, as far as the summary tells.
    fn summary_matches(summary: &Self::Summary, desired: &Self::Fields) -> bool;
}

/// Resolves once `store` has had its first full list (or its writer is gone).
///
/// Each attempt is a fresh `wait_until_ready` bounded by a short timeout: a waiter registered before the
/// store became ready was observed never to be woken, while a new one sees the ready state at once.
pub async fn store_ready<K>(store: &kube::runtime::reflector::Store<K>)
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    while tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready())
        .await
        .is_err()
    {}
}

/// Timing of requeues.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Every resource is read from AWS at least this often, so out-of-band changes are corrected.
    pub resync_period: Duration,
    /// How soon to look again while AWS reports a transition (CREATING, UPDATING, DELETING).
    pub poll_interval: Duration,
    /// First retry after a transient error; doubles per consecutive failure.
    pub base_backoff: Duration,
    /// Cap of the exponential backoff.
    pub max_backoff: Duration,
    /// Retry period for errors that need outside help (access denied, quotas, failed states).
    pub long_backoff: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            resync_period: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            long_backoff: Duration::from_secs(300),
        }
    }
}

/// Shared state of one controller.
pub struct Context<K: ManagedKind> {
    pub kube: kube::Client,
    pub aws: Aws,
    pub recorder: Recorder,
    pub timing: Timing,
    pub kind: K::Context,
    /// Consecutive failures per object ("namespace/name"), for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Objects found in sync: what they looked like ([`fingerprint`]), when AWS last confirmed it, and when
    /// their resync is due. A reconcile triggered by the operator's own status write (or by an unrelated
    /// change of a referenced object) then costs no AWS call.
    in_sync: Mutex<HashMap<String, InSync>>,
    /// The latest complete listing of the kind.
    pub inventory: Inventory<K::Summary>,
    /// When a create was last sent per object: only a listing that started later proves it created nothing.
    create_attempts: Mutex<HashMap<String, Instant>>,
    /// Outcomes of AWS passes whose status write failed (the API server is down, say): the retry writes
    /// them instead of repeating the AWS calls.
    unwritten: Mutex<HashMap<String, Unwritten>>,
    /// When a failed AWS deletion was first reported, per object: it is retried after the long backoff,
    /// not on the watch event of the status write that reported it.
    deletion_failed_at: Mutex<HashMap<String, Instant>>,
    /// The generation each object was last Ready at: a difference found while the generation is unchanged
    /// was made outside the operator (drift), whatever transitions happened in between.
    ready_generation: Mutex<HashMap<String, Option<i64>>>,
}

impl<K: ManagedKind> Context<K> {
    pub fn new(
        kube: kube::Client,
        aws: Aws,
        recorder: Recorder,
        timing: Timing,
        kind: K::Context,
    ) -> Self {
        Context {
            kube,
            aws,
            recorder,
            timing,
            kind,
            failures: Mutex::new(HashMap::new()),
            in_sync: Mutex::new(HashMap::new()),
            inventory: Inventory::default(),
            create_attempts: Mutex::new(HashMap::new()),
            unwritten: Mutex::new(HashMap::new()),
            deletion_failed_at: Mutex::new(HashMap::new()),
            ready_generation: Mutex::new(HashMap::new()),
        }
    }

    fn was_ready_at(&self, key: &str, generation: Option<i64>) -> bool {
        self.ready_generation
            .lock()
            .ok()
            .is_some_and(|ready| ready.get(key) == Some(&generation))
    }

    fn set_ready_at(&self, key: &str, generation: Option<i64>) {
        if let Ok(mut ready) = self.ready_generation.lock() {
            ready.insert(key.to_owned(), generation);
        }
    }

    fn forget_ready_at(&self, key: &str) {
        if let Ok(mut ready) = self.ready_generation.lock() {
            ready.remove(key);
        }
    }

    /// Whether a failed deletion was reported at least the long backoff ago (so it is time to retry).
    fn deletion_retry_due(&self, key: &str) -> bool {
        self.deletion_failed_at
            .lock()
            .ok()
            .and_then(|failed| failed.get(key).copied())
            .is_some_and(|at| at.elapsed() >= self.timing.long_backoff)
    }

    /// Records a failed deletion (keeping the first time it was seen); `false` clears the record.
    fn record_deletion_failed(&self, key: &str, failed: bool) {
        if let Ok(mut records) = self.deletion_failed_at.lock() {
            if failed {
                records.entry(key.to_owned()).or_insert_with(Instant::now);
            } else {
                records.remove(key);
            }
        }
    }

    /// What this process knows of an object's sync with AWS, given its current fingerprint.
    fn sync_memory(&self, key: &str, fingerprint: u64) -> SyncMemory {
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
    fn verified_at(&self, key: &str) -> Option<Instant> {
        self.in_sync
            .lock()
            .ok()
            .and_then(|in_sync| in_sync.get(key).map(|entry| entry.verified_at))
    }

    /// The object matched AWS as of `verified_at`: its resync is due a little over one resync period later,
    /// after the next listing (which starts one period after the previous one) has had time to complete.
    fn remember_in_sync(&self, key: &str, fingerprint: u64, verified_at: Instant) -> Duration {
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
    fn reverify(&self, key: &str, verified_at: Instant) {
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
    fn resync_delay(&self) -> Duration {
        self.timing
            .resync_period
            .mul_f64(rand::random_range(1.05..=1.25))
    }

    /// Marks a create of `key` as sent. The time is taken when the returned guard drops, i.e. once the call
    /// has returned, failed or been cancelled: the call may wait seconds for its rate-budget slot, and a
    /// listing that starts during that wait cannot show what the call creates afterwards.
    fn create_attempt(&self, key: &str) -> CreateAttempt<'_> {
        CreateAttempt {
            attempts: &self.create_attempts,
            key: key.to_owned(),
        }
    }

    fn last_create_attempt(&self, key: &str) -> Option<Instant> {
        self.create_attempts
            .lock()
            .ok()
            .and_then(|attempts| attempts.get(key).copied())
    }

    /// Keeps the outcome of a pass whose status write failed.
    fn keep_unwritten(&self, key: &str, fingerprint: u64, next: StatusDocument, report: Report) {
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
    fn take_unwritten(&self, key: &str, fingerprint: u64) -> Option<(StatusDocument, Report)> {
        let kept = self.unwritten.lock().ok()?.remove(key)?;
        (kept.fingerprint == fingerprint && kept.at.elapsed() < self.timing.resync_period)
            .then_some((kept.next, kept.report))
    }

    fn forget_create_attempt(&self, key: &str) {
        if let Ok(mut attempts) = self.create_attempts.lock() {
            attempts.remove(key);
        }
    }

    fn forget_in_sync(&self, key: &str) {
        if let Ok(mut in_sync) = self.in_sync.lock() {
            in_sync.remove(key);
        }
    }

    fn reset_failures(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }

    /// The next exponential backoff for `key`, with jitter (50-100 % of the nominal delay).
    fn next_backoff(&self, key: &str) -> Duration {
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
struct Unwritten {
    fingerprint: u64,
    at: Instant,
    next: StatusDocument,
    report: Report,
}

/// A create in flight: see [`Context::create_attempt`].
struct CreateAttempt<'a> {
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
struct InSync {
    fingerprint: u64,
    verified_at: Instant,
    due: Instant,
}

/// What the process remembers of an object's sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncMemory {
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

/// Failures that are not about AWS: the Kubernetes API refused a finalizer or status write.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("the object has no namespace")]
    NoNamespace,
}

/// When to look at the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Requeue {
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
}

/// What one pass concluded.
struct Report {
    health: Health,
    requeue: Requeue,
    events: Vec<Event>,
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
        }
    }
}

impl Report {
    fn new(health: Health, requeue: Requeue) -> Self {
        Report {
            health,
            requeue,
            events: Vec::new(),
        }
    }

    fn with_event(mut self, event: Event) -> Self {
        self.events.push(event);
        self
    }

    /// A failed *read* of a resource that was Ready at this generation: a throttled or failed resync says
    /// nothing about the resource, so Ready stays as it is (no status write) while the read is retried with
    /// backoff. Anything else is [`Report::from_error`].
    fn from_read_error<K: ManagedKind>(
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
    fn from_error(err: &AwsError) -> Self {
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

fn warning(reason: &str, action: &str, note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(truncate(note, MAX_EVENT_NOTE)),
        action: action.to_owned(),
        secondary: None,
    }
}

fn normal(reason: &str, action: &str, note: &str) -> Event {
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

/// Copies what AWS reported into the status.
fn mirror<K: ManagedKind>(status: &mut StatusDocument, observed: &Observed<K::Fields>) {
    status.arn = Some(observed.arn.clone());
    status.id = observed.id.clone();
    status.create_time = observed.create_time.clone();
    status.update_time = observed.update_time.clone();
    status.state = observed.state.clone();
    K::mirror_fields(&observed.fields, status);
}

/// Health for an observed state that is not stable, if any.
fn health_of_state(observed_state: Option<&str>) -> Option<(Health, Requeue)> {
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

/// The controller's reconcile function for any kind, measured (in flight, duration, outcome) for metrics.
pub async fn reconcile<K: ManagedKind>(
    object: Arc<K>,
    ctx: Arc<Context<K>>,
) -> Result<Action, ReconcileError> {
    crate::observability::timed_reconcile(K::KIND, async {
        tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_object(object, ctx))
            .await
            .unwrap_or(Err(ReconcileError::Timeout("the reconcile")))
    })
    .await
}

async fn reconcile_object<K: ManagedKind>(
    object: Arc<K>,
    ctx: Arc<Context<K>>,
) -> Result<Action, ReconcileError> {
    // Paused: no AWS call at all, not even for deletion; unpausing is an object change that wakes us.
    if is_paused(object.meta()) {
        return Ok(Action::await_change());
    }
    let namespace = object.namespace().ok_or(ReconcileError::NoNamespace)?;
    let api: Api<K> = Api::namespaced(ctx.kube.clone(), &namespace);
    tracing::debug!(kind = K::KIND, object = %object_key(object.as_ref()), "reconciling");
    K::context_ready(&ctx.kind).await;
    let has_finalizer = object.finalizers().iter().any(|f| f == FINALIZER);
    if object.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        return cleanup(&*object, &ctx, &api).await;
    }
    if !has_finalizer {
        // Before any AWS call, so that nothing created in AWS can outlive the object unnoticed.
        add_finalizer(&api, &*object).await?;
        return Ok(Action::await_change());
    }
    apply(&*object, &ctx, &api).await
}

/// Requeue for failures of the Kubernetes API itself.
pub fn error_policy<K: ManagedKind>(
    object: Arc<K>,
    error: &ReconcileError,
    ctx: Arc<Context<K>>,
) -> Action {
    tracing::warn!(kind = K::KIND, object = %object_key(&*object), %error, "reconcile failed");
    Action::requeue(ctx.next_backoff(&object_key(&*object)))
}

fn object_key<K: ManagedKind>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

async fn apply<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    api: &Api<K>,
) -> Result<Action, ReconcileError> {
    let current = StatusDocument::of(object);
    let generation = object.meta().generation;
    // A spec AWS rejected stays rejected: no AWS call until the generation changes.
    let stalled_on_spec = current
        .condition(CONDITION_STALLED)
        .is_some_and(|c| c.status == "True" && c.reason == ErrorClass::Terminal.reason());
    if stalled_on_spec && current.observed_generation == generation {
        return Ok(Action::await_change());
    }
    let key = object_key(object);
    let fingerprint = fingerprint(object, &ctx.kind);
    let verified_at = match ctx.sync_memory(&key, fingerprint) {
        SyncMemory::Fresh(until_resync) => return Ok(Action::requeue(until_resync)),
        SyncMemory::Due(verified_at) => Some(verified_at),
        SyncMemory::Unknown => None,
    };
    let (next, report) = match ctx.take_unwritten(&key, fingerprint) {
        Some(kept) => kept,
        None => {
            if let Some(action) =
                confirm_by_listing(object, ctx, &current, fingerprint, verified_at)
            {
                return Ok(action);
            }
            let mut next = current.clone();
            next.observed_generation = generation;
            let report = sync(object, ctx, &current, &mut next).await;
            (next, report)
        }
    };
    let ready = matches!(report.health, Health::Ready { .. });
    if ready {
        ctx.set_ready_at(&key, generation);
    }
    let settled = ready && report.requeue == Requeue::Resync;
    let (action, _) = match finish(object, ctx, api, &current, next.clone(), report.clone()).await {
        Ok(done) => done,
        Err(err) => {
            ctx.keep_unwritten(&key, fingerprint, next, report);
            return Err(err);
        }
    };
    if settled {
        // The status write just made (if any) comes back as a watch event with this same fingerprint.
        let until_resync = ctx.remember_in_sync(&key, fingerprint, Instant::now());
        return Ok(Action::requeue(until_resync));
    }
    ctx.forget_in_sync(&key);
    Ok(action)
}

/// A resync (or a first look after a restart) of an object whose status records a full read that matched
/// its spec: a complete listing that started after that read and still shows the resource unchanged
/// confirms it without a Get call. `None`: a full read is needed.
fn confirm_by_listing<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    current: &StatusDocument,
    fingerprint: u64,
    verified_at: Option<Instant>,
) -> Option<Action> {
    let arn = current.arn.as_deref()?;
    if !ready_at_generation(object, current) {
        return None;
    }
    let key = object_key(object);
    match ctx.inventory.since(verified_at) {
        Some(snapshot) => {
            let listed = snapshot.by_arn.get(arn)?;
            listing_confirms(object, ctx, current, listed)
                .then(|| Action::requeue(ctx.remember_in_sync(&key, fingerprint, snapshot.started)))
        }
        // No listing since the last confirmation: the listing loop is late or failing. Ask for one and
        // look again shortly, up to one extra resync period; after that, read the resource itself.
        None => {
            let overdue = verified_at.is_some_and(|at| at.elapsed() > ctx.timing.resync_period * 2);
            if overdue {
                return None;
            }
            ctx.inventory.request(verified_at);
            Some(Action::requeue(
                ctx.timing.poll_interval.max(ctx.timing.resync_period / 20),
            ))
        }
    }
}

/// Whether the status says AWS matched this very generation of the spec.
fn ready_at_generation<K: ManagedKind>(object: &K, status: &StatusDocument) -> bool {
    status.observed_generation == object.meta().generation
        && status
            .condition(CONDITION_READY)
            .is_some_and(|c| c.status == "True")
}

/// Whether a listed resource is still what the status recorded at the last full read (same update time and
/// state) and, for managed objects, still agrees with the spec as far as the listing shows (summary fields
/// and tags). Fields a listing does not carry can only change through an update, which moves the update time.
fn listing_confirms<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    status: &StatusDocument,
    listed: &Listed<K::Summary>,
) -> bool {
    if listed.update_time.is_none()
        || listed.update_time != status.update_time
        || listed.state != status.state
        || !ready_at_generation(object, status)
    {
        return false;
    }
    let policies = object.policies();
    if policies.management == ManagementPolicy::ObserveOnly {
        return true;
    }
    let Ok(desired) = object.desired(&ctx.kind) else {
        return false;
    };
    let desired_tags = tags_with_ownership(
        Some(&policies.tags),
        &object.uid().unwrap_or_default(),
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    );
    plan_tags(&desired_tags, &listed.tags, &status.managed_tag_keys).is_empty()
        && K::summary_matches(&listed.summary, &desired)
}

/// Every page of the kind's account-wide listing.
async fn list_all<K: ManagedKind>(aws: &Aws) -> Result<Vec<Listed<K::Summary>>, AwsError> {
    let mut listed = Vec::new();
    let mut next_token = None;
    for _ in 0..MAX_LIST_PAGES {
        let (page, next) = K::list_page(aws, next_token).await?;
        listed.extend(page);
        match next {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => return Ok(listed),
        }
    }
    Err(AwsError {
        operation: "List",
        class: ErrorClass::Transient,
        code: "TooManyPages".to_owned(),
        message: format!("the listing did not end after {MAX_LIST_PAGES} pages"),
    })
}

/// The listing loop of one kind: a complete listing once per resync period (sooner when the driver asks
/// for one), then a review of every object the process knows in sync. Objects the listing confirms have
/// their resync pushed out (no Get call); the others, whose resource changed or vanished in AWS, are sent
/// to `stale` to be reconciled now. Runs until the task is dropped.
pub async fn run_inventory<K: ManagedKind>(
    ctx: Arc<Context<K>>,
    objects: Store<K>,
    stale: tokio::sync::mpsc::UnboundedSender<ObjectRef<K>>,
) {
    let mut failures = 0;
    let mut next_listing = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_listing) => {}
            () = ctx.inventory.requested() => {}
        }
        let started = Instant::now();
        ctx.inventory.begin(started);
        match list_all::<K>(&ctx.aws).await {
            Ok(listed) => {
                failures = 0;
                let count = listed.len();
                let snapshot = ctx.inventory.publish(Snapshot::new(started, listed));
                let changed = review_listing(&ctx, &objects, &snapshot);
                tracing::debug!(
                    kind = K::KIND,
                    listed = count,
                    changed = changed.len(),
                    elapsed = ?started.elapsed(),
                    "listed AWS resources"
                );
                if started.elapsed() > ctx.timing.resync_period {
                    // The rate budget cannot list the account once per period: drift is still found,
                    // only later than the resync period promises.
                    tracing::warn!(
                        kind = K::KIND,
                        listed = count,
                        elapsed = ?started.elapsed(),
                        resync = ?ctx.timing.resync_period,
                        "listing the account took longer than the resync period; consider a longer --resync-period"
                    );
                }
                for object in changed {
                    if stale.send(object).is_err() {
                        return;
                    }
                }
                next_listing = tokio::time::Instant::from_std(started) + ctx.timing.resync_period;
            }
            Err(error) => {
                tracing::warn!(kind = K::KIND, %error, "cannot list AWS resources; retrying");
                ctx.inventory.fail(error);
                failures += 1;
                next_listing = tokio::time::Instant::now()
                    + jittered_backoff(&ctx.timing, failures, rand::random_range(0.5..=1.0));
            }
        }
        // Requests that arrive while a listing runs are served by the next one, but never back to back.
        let earliest = tokio::time::Instant::from_std(started) + ctx.timing.poll_interval;
        tokio::time::sleep_until(earliest).await;
    }
}

/// The objects a complete listing shows out of sync (their resource changed or vanished in AWS since the
/// last full read); the others are marked verified as of the listing's start.
fn review_listing<K: ManagedKind>(
    ctx: &Context<K>,
    objects: &Store<K>,
    snapshot: &Snapshot<K::Summary>,
) -> Vec<ObjectRef<K>> {
    let mut changed = Vec::new();
    for object in objects.state() {
        if is_paused(object.meta()) || object.meta().deletion_timestamp.is_some() {
            continue;
        }
        let key = object_key(&*object);
        // Objects not known in sync are being reconciled anyway.
        let Some(verified_at) = ctx.verified_at(&key) else {
            continue;
        };
        if verified_at >= snapshot.started {
            continue;
        }
        let status = StatusDocument::of(&*object);
        let Some(arn) = status.arn.as_deref() else {
            continue;
        };
        let unchanged = snapshot
            .by_arn
            .get(arn)
            .is_some_and(|listed| listing_confirms(&*object, ctx, &status, listed));
        if unchanged {
            ctx.reverify(&key, snapshot.started);
        } else {
            ctx.forget_in_sync(&key);
            changed.push(ObjectRef::from_obj(&*object));
        }
    }
    changed
}

/// What decides whether an object needs an AWS pass: its generation (the spec), its deletion and
/// finalizers, and the desired state computed from the context (e.g. the referenced configurations' ARNs
/// and states). Status writes and unrelated changes of referenced objects leave it unchanged.
fn fingerprint<K: ManagedKind>(object: &K, context: &K::Context) -> u64 {
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

/// Observe, diff, act: the body of an apply pass. Never fails: every failure becomes a [`Report`].
async fn sync<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    current: &StatusDocument,
    next: &mut StatusDocument,
) -> Report {
    let policies = object.policies();
    let known_arn = current.arn.clone();
    let target_arn = known_arn.clone().or_else(|| policies.adopt_arn.clone());

    if policies.management == ManagementPolicy::ObserveOnly {
        let Some(arn) = target_arn else {
            return Report::new(
                Health::stalled(
                    reasons::NOT_FOUND_IN_AWS,
                    "managementPolicy ObserveOnly needs spec.adoptArn",
                ),
                Requeue::AwaitChange,
            );
        };
        return match K::observe(&ctx.aws, &arn).await {
            Ok(Some(observed)) => {
                mirror::<K>(next, &observed);
                let (health, requeue) = health_of_state(observed.state.as_deref()).unwrap_or((
                    Health::ready(reasons::OBSERVED, format!("Mirroring {arn} (ObserveOnly)")),
                    Requeue::Resync,
                ));
                Report::new(health, requeue)
            }
            Ok(None) => Report::new(
                Health::stalled(
                    reasons::NOT_FOUND_IN_AWS,
                    format!(
                        "{arn} does not exist in AWS (ObserveOnly: the operator never creates it)"
                    ),
                ),
                Requeue::Resync,
            ),
            Err(err) => Report::from_read_error(&err, object, current),
        };
    }

    let desired = match object.desired(&ctx.kind) {
        Ok(desired) => desired,
        // A watch on the referenced objects wakes us; the resync is only a safety net.
        Err(pending) => {
            return Report::new(
                Health::progressing(pending.reason, pending.message),
                Requeue::Resync,
            );
        }
    };
    let uid = object.uid().unwrap_or_default();
    let namespace = object.namespace().unwrap_or_default();
    let desired_tags =
        tags_with_ownership(Some(&policies.tags), &uid, &namespace, &object.name_any());

    let Some(arn) = target_arn else {
        return create_unless_owned(object, ctx, &desired, &desired_tags, current, next, None)
            .await;
    };
    let origin = if known_arn.is_some() {
        Origin::Known
    } else {
        Origin::AdoptArn
    };
    sync_existing(
        object,
        ctx,
        &arn,
        origin,
        &desired,
        &desired_tags,
        current,
        next,
    )
    .await
}

/// Where the ARN a pass works on came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The status (the operator created or adopted it earlier).
    Known,
    /// spec.adoptArn, taken over now.
    AdoptArn,
    /// Found by its ownership tag: created for this object by an attempt whose result never reached the
    /// status (a crash, a lost response, a failed status write).
    Recovered,
}

/// Creates the resource, unless one carrying this object's ownership tag exists already: then that one is
/// adopted (and any further ones, left by an earlier failure, deleted).
async fn create_unless_owned<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    desired: &K::Fields,
    desired_tags: &BTreeMap<String, String>,
    current: &StatusDocument,
    next: &mut StatusDocument,
    recreate_note: Option<String>,
) -> Report {
    let owned = match find_owned(object, ctx).await {
        Ok(Some(owned)) => owned,
        Ok(None) => return waiting_for_listing(ctx),
        Err(err) => return Report::from_error(&err),
    };
    // A resource the status named but AWS no longer has may still show in an older listing.
    let mut owned: Vec<Listed<K::Summary>> = owned
        .into_iter()
        .filter(|listed| Some(&listed.arn) != current.arn.as_ref())
        .collect();
    if owned.is_empty() {
        let _attempt = ctx.create_attempt(&object_key(object));
        return create::<K>(ctx, desired, desired_tags, next, recreate_note).await;
    }
    let keep = owned.remove(0);
    let mut events = Vec::new();
    for duplicate in owned {
        match K::delete(&ctx.aws, &duplicate.arn, false).await {
            Ok(_) => events.push(warning(
                "DuplicateDeleted",
                "Delete",
                &format!(
                    "Deleted {}: a second AWS resource tagged as this object's (kept {})",
                    duplicate.arn, keep.arn
                ),
            )),
            Err(err) => return Report::from_error(&err),
        }
    }
    let mut report = sync_existing(
        object,
        ctx,
        &keep.arn,
        Origin::Recovered,
        desired,
        desired_tags,
        current,
        next,
    )
    .await;
    events.append(&mut report.events);
    report.events = events;
    report
}

/// The lookup waits for a complete listing: say so, or say why listings fail.
fn waiting_for_listing<K: ManagedKind>(ctx: &Context<K>) -> Report {
    match ctx.inventory.last_error() {
        Some(err) => Report::from_error(&err),
        None => Report::new(looking_for_owned(), Requeue::Poll),
    }
}

fn looking_for_owned() -> Health {
    Health::progressing(
        reasons::LOOKING_UP,
        "Listing AWS resources to find one this object may already own before creating another",
    )
}

/// The AWS resources carrying this object's ownership tag, oldest first; `None` while no listing fresh
/// enough to prove it exists yet (one has been requested).
async fn find_owned<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
) -> Result<Option<Vec<Listed<K::Summary>>>, AwsError> {
    let uid = object.uid().unwrap_or_default();
    if let Some(candidates) = object.search_owned(&ctx.aws).await? {
        return Ok(Some(
            super::inventory::owned_by(&candidates, &uid)
                .into_iter()
                .cloned()
                .collect(),
        ));
    }
    let since = ctx.last_create_attempt(&object_key(object));
    match ctx.inventory.since(since) {
        Some(snapshot) => Ok(Some(snapshot.owned_by(&uid).into_iter().cloned().collect())),
        None => {
            ctx.inventory.request(since);
            Ok(None)
        }
    }
}

/// Observe, diff and act on an existing resource.
#[allow(clippy::too_many_arguments)]
async fn sync_existing<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    arn: &str,
    origin: Origin,
    desired: &K::Fields,
    desired_tags: &BTreeMap<String, String>,
    current: &StatusDocument,
    next: &mut StatusDocument,
) -> Report {
    let policies = object.policies();
    let arn = arn.to_owned();
    let observed = match K::observe(&ctx.aws, &arn).await {
        Ok(Some(observed)) => observed,
        Ok(None) if origin == Origin::Recovered => {
            // Deleted since it was listed: look again.
            return Report::new(looking_for_owned(), Requeue::Poll);
        }
        Ok(None) if origin == Origin::Known && policies.deletion == DeletionPolicy::Delete => {
            let note = format!("{arn} was deleted outside the operator; creating it again");
            // Boxed: the create path comes back here for a recovered resource (never recursing further).
            return Box::pin(create_unless_owned(
                object,
                ctx,
                desired,
                desired_tags,
                current,
                next,
                Some(note),
            ))
            .await;
        }
        Ok(None) => {
            let why = if origin == Origin::Known {
                "was deleted outside the operator; with deletionPolicy Retain it is not recreated"
            } else {
                "(spec.adoptArn) does not exist in AWS"
            };
            let message = format!("{arn} {why}");
            return Report::new(
                Health::stalled(reasons::NOT_FOUND_IN_AWS, &message),
                Requeue::Long,
            )
            .with_event(warning(reasons::NOT_FOUND_IN_AWS, "Observe", &message));
        }
        Err(err) => return Report::from_read_error(&err, object, current),
    };
    let adopted = origin != Origin::Known;
    mirror::<K>(next, &observed);
    if let Some((health, requeue)) = health_of_state(observed.state.as_deref()) {
        return Report::new(health, requeue);
    }

    let mut events = Vec::new();
    let mut changes = changed_fields(desired, &observed.fields);
    let mut latest = observed;
    if !changes.is_empty() {
        match K::update(&ctx.aws, &arn, desired).await {
            Ok(updated) => {
                mirror::<K>(next, &updated);
                // Update responses may omit tags; the observed ones are still what AWS has.
                let tags = if updated.tags.is_empty() {
                    latest.tags
                } else {
                    updated.tags.clone()
                };
                latest = Observed { tags, ..updated };
            }
            Err(err) => return Report::from_error(&err),
        }
    }

    let plan = plan_tags(desired_tags, &latest.tags, &current.managed_tag_keys);
    if !plan.is_empty() {
        // Until the calls succeed, keep remembering every key the operator may have set.
        let mut remembered = current.managed_tag_keys.clone();
        remembered.extend(managed_keys(desired_tags));
        remembered.sort();
        remembered.dedup();
        next.managed_tag_keys = remembered;
        if let Err(err) = apply_tag_plan(&ctx.aws, &arn, &plan).await {
            return Report::from_error(&err);
        }
        changes.push(format!("tags ({})", plan.keys().join(", ")));
    }
    next.managed_tag_keys = managed_keys(desired_tags);

    match origin {
        Origin::Known => {}
        Origin::AdoptArn => events.push(normal(
            "Adopted",
            "Adopt",
            &format!("Took over {arn} (spec.adoptArn)"),
        )),
        Origin::Recovered => events.push(normal(
            "Recovered",
            "Adopt",
            &format!(
                "Found {arn}, created for this object by an earlier attempt whose result was not \
                 recorded (operator restart or lost response); using it instead of creating another"
            ),
        )),
    }
    if !changes.is_empty() {
        // The object was already Ready at this generation (per this process's memory, or per the status
        // it wrote): the difference came from outside.
        let was_in_sync = ctx.was_ready_at(&object_key(object), object.meta().generation)
            || (current.observed_generation == object.meta().generation
                && current
                    .condition(CONDITION_READY)
                    .is_some_and(|c| c.status == "True"));
        let (reason, verb) = if was_in_sync && !adopted {
            (
                "DriftCorrected",
                "Corrected changes made outside the operator to",
            )
        } else {
            ("Updated", "Updated")
        };
        events.push(normal(
            reason,
            "Update",
            &format!("{verb} {}", changes.join(", ")),
        ));
    }
    let (health, requeue) = health_of_state(latest.state.as_deref()).unwrap_or((
        Health::ready(reasons::SYNCED, format!("{arn} matches the spec")),
        Requeue::Resync,
    ));
    let mut report = Report::new(health, requeue);
    report.events = events;
    report
}

async fn create<K: ManagedKind>(
    ctx: &Context<K>,
    desired: &K::Fields,
    tags: &BTreeMap<String, String>,
    next: &mut StatusDocument,
    recreate_note: Option<String>,
) -> Report {
    match K::create(&ctx.aws, desired, tags).await {
        Ok(created) => {
            mirror::<K>(next, &created);
            next.managed_tag_keys = managed_keys(tags);
            let (health, requeue) = health_of_state(created.state.as_deref()).unwrap_or((
                Health::ready(reasons::SYNCED, format!("{} matches the spec", created.arn)),
                Requeue::Resync,
            ));
            let event = match recreate_note {
                Some(note) => normal("Recreated", "Create", &format!("{note}: {}", created.arn)),
                None => normal("Created", "Create", &format!("Created {}", created.arn)),
            };
            Report::new(health, requeue).with_event(event)
        }
        Err(err) => Report::from_error(&err),
    }
}

async fn apply_tag_plan(aws: &Aws, arn: &str, plan: &super::plan::TagPlan) -> Result<(), AwsError> {
    if !plan.set.is_empty() {
        aws.call("TagResource", Retry::Idempotent, |client| {
            client
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(plan.set.clone().into_iter().collect()))
                .send()
        })
        .await?;
    }
    if !plan.remove.is_empty() {
        aws.call("UntagResource", Retry::Idempotent, |client| {
            client
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(plan.remove.iter().cloned().collect()))
                .send()
        })
        .await?;
    }
    Ok(())
}

/// Deletion: release or delete the AWS resource according to the policies, then drop the finalizer.
/// Does not depend on the spec being valid, so a bad spec never blocks deletion.
async fn cleanup<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    api: &Api<K>,
) -> Result<Action, ReconcileError> {
    let policies = object.policies();
    let current = StatusDocument::of(object);
    let key = object_key(object);
    let outcome = match policies.management {
        ManagementPolicy::ObserveOnly => Ok(Vec::new()),
        ManagementPolicy::Manage => match resources_to_release(object, ctx, &current).await {
            Ok(arns) => {
                let mut events = Vec::new();
                let mut outcome = Ok(());
                for arn in arns {
                    match release_or_delete(object, ctx, &key, &arn).await {
                        Ok(event) => events.push(event),
                        Err(report) => {
                            outcome = Err(report);
                            break;
                        }
                    }
                }
                outcome.map(|()| events)
            }
            Err(report) => Err(report),
        },
    };
    match outcome {
        Ok(events) => {
            remove_finalizer(api, object).await?;
            for event in &events {
                publish(ctx, object, event).await;
            }
            ctx.reset_failures(&key);
            ctx.forget_in_sync(&key);
            ctx.record_deletion_failed(&key, false);
            ctx.forget_ready_at(&key);
            ctx.forget_create_attempt(&key);
            Ok(Action::await_change())
        }
        Err(report) => {
            let next = current.clone();
            Ok(finish(object, ctx, api, &current, next, report).await?.0)
        }
    }
}

/// The AWS resources a deleted object answers for: the one in status (or spec.adoptArn), or, when the
/// status names none, any carrying its ownership tag (a create whose result never reached the status).
async fn resources_to_release<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    current: &StatusDocument,
) -> Result<Vec<String>, Report> {
    if let Some(arn) = current.arn.clone().or_else(|| object.policies().adopt_arn) {
        return Ok(vec![arn]);
    }
    match find_owned(object, ctx).await {
        Ok(Some(owned)) => Ok(owned.into_iter().map(|listed| listed.arn).collect()),
        Ok(None) => Err(waiting_for_listing(ctx)),
        Err(err) => Err(Report::from_error(&err)),
    }
}

/// Applies the deletion policy to one resource: the event to publish once the finalizer is gone, or why
/// the finalizer must stay for now.
async fn release_or_delete<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    key: &str,
    arn: &str,
) -> Result<Event, Report> {
    if object.policies().deletion == DeletionPolicy::Retain {
        return release(&ctx.aws, arn).await.map(|()| {
            normal(
                "Retained",
                "Delete",
                &format!(
                    "Left {arn} in AWS (deletionPolicy Retain) and removed the ownership tags"
                ),
            )
        });
    }
    if let Some(pending) = object.blocks_deletion(&ctx.kind) {
        return Err(Report::new(
            Health::progressing(pending.reason, pending.message),
            Requeue::Resync,
        ));
    }
    match K::delete(&ctx.aws, arn, ctx.deletion_retry_due(key)).await {
        Ok(Deletion::Gone) => Ok(normal("Deleted", "Delete", &format!("Deleted {arn}"))),
        Ok(Deletion::InProgress(state)) => {
            ctx.record_deletion_failed(key, false);
            Err(Report::new(
                Health::progressing(
                    reasons::DELETING,
                    format!("AWS reports state {state} for {arn}"),
                ),
                Requeue::Poll,
            ))
        }
        Ok(Deletion::Failed(state)) => {
            ctx.record_deletion_failed(key, true);
            let message = format!("AWS reports state {state} for {arn}; deletion is retried later");
            Err(Report::new(
                Health::stalled(&state_reason(&state), &message),
                Requeue::Long,
            )
            .with_event(warning(&state_reason(&state), "Delete", &message)))
        }
        Err(err) if err.class == ErrorClass::Conflict => {
            let message = format!("AWS refused to delete {arn} while it is in use: {err}");
            Err(Report::new(
                Health::progressing(reasons::IN_USE, &message),
                Requeue::Backoff,
            )
            .with_event(warning(reasons::IN_USE, "Delete", &message)))
        }
        Err(err) => Err(Report::from_error(&err)),
    }
}

/// Retain: the resource stays in AWS, minus the operator's ownership tags.
async fn release(aws: &Aws, arn: &str) -> Result<(), Report> {
    let result = aws
        .call("UntagResource", Retry::Idempotent, |client| {
            client
                .untag_resource()
                .resource_arn(arn)
                .tag_keys(OWNER_UID_TAG)
                .tag_keys(OWNER_NAMESPACE_TAG)
                .tag_keys(OWNER_NAME_TAG)
                .send()
        })
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.class == ErrorClass::NotFound => Ok(()),
        Err(err) => Err(Report::from_error(&err)),
    }
}

/// Writes the status if it changed, publishes the events and turns the report into an [`Action`] (and
/// its delay, when it has one).
async fn finish<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    api: &Api<K>,
    current: &StatusDocument,
    mut next: StatusDocument,
    report: Report,
) -> Result<(Action, Option<Duration>), ReconcileError> {
    let now = Time(jiff::Timestamp::now());
    next.conditions = merge_conditions(&current.conditions, &report.health, &now);
    crate::observability::record_health(&report.health);
    if next != *current {
        write_status(api, object, &next).await?;
    }
    for event in &report.events {
        publish(ctx, object, event).await;
    }
    let key = object_key(object);
    let delay = match report.requeue {
        Requeue::Resync => {
            ctx.reset_failures(&key);
            Some(
                ctx.timing
                    .resync_period
                    .mul_f64(rand::random_range(0.9..=1.1)),
            )
        }
        Requeue::Poll => {
            ctx.reset_failures(&key);
            Some(ctx.timing.poll_interval)
        }
        Requeue::Backoff => Some(ctx.next_backoff(&key)),
        Requeue::Long => Some(ctx.timing.long_backoff),
        Requeue::AwaitChange => {
            ctx.reset_failures(&key);
            None
        }
    };
    let action = delay.map_or_else(Action::await_change, Action::requeue);
    Ok((action, delay))
}

/// Server-side apply of the whole status with the operator's one field manager.
async fn write_status<K: ManagedKind>(
    api: &Api<K>,
    object: &K,
    status: &StatusDocument,
) -> Result<(), ReconcileError> {
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let name = object.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    bounded(
        "the status write",
        api.patch_status(&name, &params, &Patch::Apply(&patch)),
    )
    .await
    .map(|_| ())
}

/// A Kubernetes API call bounded by [`KUBE_CALL_TIMEOUT`].
async fn bounded<T>(
    what: &'static str,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ReconcileError> {
    match tokio::time::timeout(KUBE_CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(ReconcileError::Kube),
        Err(_) => Err(ReconcileError::Timeout(what)),
    }
}

async fn publish<K: ManagedKind>(ctx: &Context<K>, object: &K, event: &Event) {
    let reference = object.object_ref(&());
    match tokio::time::timeout(KUBE_CALL_TIMEOUT, ctx.recorder.publish(event, &reference)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(object = %object_key(object), reason = %event.reason, %error, "cannot publish event")
        }
        Err(_) => {
            tracing::warn!(object = %object_key(object), reason = %event.reason, "publishing an event timed out")
        }
    }
}

/// Adds the finalizer; the resourceVersion precondition makes a concurrent change fail instead of losing
/// someone else's finalizer.
async fn add_finalizer<K: ManagedKind>(api: &Api<K>, object: &K) -> Result<(), ReconcileError> {
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    patch_finalizers(api, object, finalizers).await
}

async fn remove_finalizer<K: ManagedKind>(api: &Api<K>, object: &K) -> Result<(), ReconcileError> {
    let finalizers = object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    match patch_finalizers(api, object, finalizers).await {
        // Already gone: the goal is met.
        Err(ReconcileError::Kube(kube::Error::Api(status))) if status.code == 404 => Ok(()),
        other => other,
    }
}

async fn patch_finalizers<K: ManagedKind>(
    api: &Api<K>,
    object: &K,
    finalizers: Vec<String>,
) -> Result<(), ReconcileError> {
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.resource_version(),
        }
    });
    let name = object.name_any();
    let params = PatchParams::default();
    bounded(
        "the finalizer update",
        api.patch(&name, &params, &Patch::Merge(&patch)),
    )
    .await
    .map(|_| ())
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
