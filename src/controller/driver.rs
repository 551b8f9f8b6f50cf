//! The one reconcile driver both kinds share, over the small per-kind trait [`ManagedKind`].
//!
//! The driver owns everything that is the same for every kind: pause, the finalizer (added before any AWS
//! call), observe-only, adoption, deletion policy, out-of-band deletion, tag management, error handling,
//! conditions, events and requeue decisions. A kind only says how its spec maps to normalised AWS fields
//! and how to call its four AWS operations (observe / create / update / delete).

use super::aws_error::{AwsError, ErrorClass};
use super::plan::{changed_fields, managed_keys, plan_tags};
use super::rate_limit::Aws;
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
    /// Objects found in sync: what they looked like ([`fingerprint`]) and when their resync is due. A
    /// reconcile triggered by the operator's own status write (or by an unrelated change of a referenced
    /// object) then costs no AWS call.
    in_sync: Mutex<HashMap<String, (u64, Instant)>>,
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

    /// How long until the resync of an object still in the state it was found in sync in.
    fn in_sync_for(&self, key: &str, fingerprint: u64) -> Option<Duration> {
        let in_sync = self.in_sync.lock().ok()?;
        let (known, due) = in_sync.get(key)?;
        let now = Instant::now();
        (*known == fingerprint && now < *due).then(|| *due - now)
    }

    fn remember_in_sync(&self, key: &str, fingerprint: u64, resync: Duration) {
        if let Ok(mut in_sync) = self.in_sync.lock() {
            in_sync.insert(key.to_owned(), (fingerprint, Instant::now() + resync));
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
    crate::observability::timed_reconcile(K::KIND, reconcile_object(object, ctx)).await
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
    if let Some(until_resync) = ctx.in_sync_for(&key, fingerprint) {
        return Ok(Action::requeue(until_resync));
    }
    let mut next = current.clone();
    next.observed_generation = generation;
    let report = sync(object, ctx, &current, &mut next).await;
    let ready = matches!(report.health, Health::Ready { .. });
    if ready {
        ctx.set_ready_at(&key, generation);
    }
    let settled = ready && report.requeue == Requeue::Resync;
    let (action, delay) = finish(object, ctx, api, &current, next, report).await?;
    if settled {
        // The status write just made (if any) comes back as a watch event with this same fingerprint.
        if let Some(resync) = delay {
            ctx.remember_in_sync(&key, fingerprint, resync);
        }
    } else {
        ctx.forget_in_sync(&key);
    }
    Ok(action)
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
        return create::<K>(ctx, &desired, &desired_tags, next, None).await;
    };
    let observed = match K::observe(&ctx.aws, &arn).await {
        Ok(Some(observed)) => observed,
        Ok(None) if known_arn.is_some() && policies.deletion == DeletionPolicy::Delete => {
            let note = format!("{arn} was deleted outside the operator; creating it again");
            return create::<K>(ctx, &desired, &desired_tags, next, Some(note)).await;
        }
        Ok(None) => {
            let why = if known_arn.is_some() {
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
    let adopted = known_arn.is_none();
    mirror::<K>(next, &observed);
    if let Some((health, requeue)) = health_of_state(observed.state.as_deref()) {
        return Report::new(health, requeue);
    }

    let mut events = Vec::new();
    let mut changes = changed_fields(&desired, &observed.fields);
    let mut latest = observed;
    if !changes.is_empty() {
        match K::update(&ctx.aws, &arn, &desired).await {
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

    let plan = plan_tags(&desired_tags, &latest.tags, &current.managed_tag_keys);
    if !plan.is_empty() {
        // Until the calls succeed, keep remembering every key the operator may have set.
        let mut remembered = current.managed_tag_keys.clone();
        remembered.extend(managed_keys(&desired_tags));
        remembered.sort();
        remembered.dedup();
        next.managed_tag_keys = remembered;
        if let Err(err) = apply_tag_plan(&ctx.aws, &arn, &plan).await {
            return Report::from_error(&err);
        }
        changes.push(format!("tags ({})", plan.keys().join(", ")));
    }
    next.managed_tag_keys = managed_keys(&desired_tags);

    if adopted {
        events.push(normal(
            "Adopted",
            "Adopt",
            &format!("Took over {arn} (spec.adoptArn)"),
        ));
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
        aws.ready("TagResource")
            .await
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(plan.set.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|err| AwsError::from_sdk("TagResource", err))?;
    }
    if !plan.remove.is_empty() {
        aws.ready("UntagResource")
            .await
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(plan.remove.iter().cloned().collect()))
            .send()
            .await
            .map_err(|err| AwsError::from_sdk("UntagResource", err))?;
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
    let arn = current.arn.clone().or_else(|| policies.adopt_arn.clone());
    let outcome = match (policies.management, arn) {
        (ManagementPolicy::ObserveOnly, _) | (_, None) => Ok(None),
        (ManagementPolicy::Manage, Some(arn)) => match policies.deletion {
            DeletionPolicy::Retain => release(&ctx.aws, &arn).await.map(|()| {
                Some(normal(
                    "Retained",
                    "Delete",
                    &format!(
                        "Left {arn} in AWS (deletionPolicy Retain) and removed the ownership tags"
                    ),
                ))
            }),
            DeletionPolicy::Delete => match object.blocks_deletion(&ctx.kind) {
                Some(pending) => Err(Report::new(
                    Health::progressing(pending.reason, pending.message),
                    Requeue::Resync,
                )),
                None => match K::delete(&ctx.aws, &arn, ctx.deletion_retry_due(&key)).await {
                    Ok(Deletion::Gone) => {
                        Ok(Some(normal("Deleted", "Delete", &format!("Deleted {arn}"))))
                    }
                    Ok(Deletion::InProgress(state)) => {
                        ctx.record_deletion_failed(&key, false);
                        Err(Report::new(
                            Health::progressing(
                                reasons::DELETING,
                                format!("AWS reports state {state} for {arn}"),
                            ),
                            Requeue::Poll,
                        ))
                    }
                    Ok(Deletion::Failed(state)) => {
                        ctx.record_deletion_failed(&key, true);
                        let message = format!(
                            "AWS reports state {state} for {arn}; deletion is retried later"
                        );
                        Err(Report::new(
                            Health::stalled(&state_reason(&state), &message),
                            Requeue::Long,
                        )
                        .with_event(warning(
                            &state_reason(&state),
                            "Delete",
                            &message,
                        )))
                    }
                    Err(err) if err.class == ErrorClass::Conflict => {
                        let message =
                            format!("AWS refused to delete {arn} while it is in use: {err}");
                        Err(Report::new(
                            Health::progressing(reasons::IN_USE, &message),
                            Requeue::Backoff,
                        )
                        .with_event(warning(
                            reasons::IN_USE,
                            "Delete",
                            &message,
                        )))
                    }
                    Err(err) => Err(Report::from_error(&err)),
                },
            },
        },
    };
    match outcome {
        Ok(event) => {
            remove_finalizer(api, object).await?;
            if let Some(event) = event {
                publish(ctx, object, &event).await;
            }
            ctx.reset_failures(&key);
            ctx.forget_in_sync(&key);
            ctx.record_deletion_failed(&key, false);
            ctx.forget_ready_at(&key);
            Ok(Action::await_change())
        }
        Err(report) => {
            let next = current.clone();
            Ok(finish(object, ctx, api, &current, next, report).await?.0)
        }
    }
}

/// Retain: the resource stays in AWS, minus the operator's ownership tags.
async fn release(aws: &Aws, arn: &str) -> Result<(), Report> {
    let result = aws
        .ready("UntagResource")
        .await
        .untag_resource()
        .resource_arn(arn)
        .tag_keys(OWNER_UID_TAG)
        .tag_keys(OWNER_NAMESPACE_TAG)
        .tag_keys(OWNER_NAME_TAG)
        .send()
        .await
        .map_err(|err| AwsError::from_sdk("UntagResource", err));
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
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

async fn publish<K: ManagedKind>(ctx: &Context<K>, object: &K, event: &Event) {
    if let Err(error) = ctx.recorder.publish(event, &object.object_ref(&())).await {
        tracing::warn!(object = %object_key(object), reason = %event.reason, %error, "cannot publish event");
    }
}

/// Adds the finalizer; the resourceVersion precondition makes a concurrent change fail instead of losing
/// someone else's finalizer.
async fn add_finalizer<K: ManagedKind>(api: &Api<K>, object: &K) -> Result<(), kube::Error> {
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    patch_finalizers(api, object, finalizers).await
}

async fn remove_finalizer<K: ManagedKind>(api: &Api<K>, object: &K) -> Result<(), kube::Error> {
    let finalizers = object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    match patch_finalizers(api, object, finalizers).await {
        // Already gone: the goal is met.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}

async fn patch_finalizers<K: ManagedKind>(
    api: &Api<K>,
    object: &K,
    finalizers: Vec<String>,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.resource_version(),
        }
    });
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
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
