//! The one reconcile driver both kinds share, over the small per-kind trait [`ManagedKind`].
//!
//! The driver owns everything that is the same for every kind: pause, the finalizer (added before any AWS
//! call), observe-only, adoption, deletion policy, out-of-band deletion, tag management, error handling,
//! conditions, events and requeue decisions, and when a pass runs the export step of `spec.export`
//! ([`crate::controller::export`]: in every apply pass before the status write, and in the cleanup). A kind only says how its spec maps to normalised AWS fields
//! and how to call its AWS operations (observe / create / update / delete / list).
//!
//! Two rules keep AWS honest and cheap:
//! - **Creates are written ahead.** Creates take no idempotency token, so before a create is sent the
//!   object's status records the attempt (`status.createAttempt`, written on the version the pass read and
//!   confirmed before the call), and the create's ARN replaces it. Only where an attempt may have left a
//!   resource nobody recorded (an attempt in status without an ARN, a create this process sent, a known
//!   resource that vanished), and before releasing a finalizer in that case, does the driver look for a
//!   resource that already carries the object's ownership tag: a fresh filtered listing where the kind has
//!   one (rooms by name), otherwise a complete [`Snapshot`](crate::controller::inventory::Snapshot) that
//!   started after this object's last create attempt. A crash or a lost response between the create and
//!   the status write therefore ends in adoption, never a duplicate, while a normal create is one AWS call.
//! - **Drift is found by listing.** [`run_inventory`] lists the kind once per resync period and compares
//!   each summary with the last full read recorded in status (update time, tags, summary fields); only
//!   objects whose resource changed or vanished are reconciled, and only those cost a Get call.
//!
//! Files, in the order a pass runs through them: [`kind`] (the trait and its types), [`memory`] (what this
//! process remembers of each object between passes), [`apply`] (observe, diff, act), [`drift`] (the
//! listing loop and confirmation by listing), [`schedule`] (the resync period in effect: the configured
//! one, stretched when the account's listing outgrows it under the rate budget), [`cleanup`] (deletion),
//! [`report`] (what a pass concluded: health, requeue, events), [`kube_io`] (status, events and
//! finalizers on the API server), [`predating`] (objects found at the start that an earlier operator
//! version may have created for) and [`settle`] (creates that may still complete after their failure, and
//! the copies they leave).

mod apply;
mod cleanup;
mod drift;
mod kind;
mod kube_io;
mod memory;
mod predating;
mod report;
mod schedule;
mod scopes;
mod settle;

pub use drift::{listed_object_can_wait, run_inventory};
pub use kind::{Deletion, ManagedKind, Observed, Pending, store_ready};
pub use kube_io::{FIELD_MANAGER, FINALIZER};
pub use memory::jittered_backoff;
pub use report::{StateKind, state_kind, state_reason};

use apply::apply;
use cleanup::cleanup;
use kube_io::add_finalizer;
use memory::{Memory, memory_key};
use predating::Predating;
use report::Pass;
use schedule::ResyncSchedule;
use scopes::Scopes;

use crate::controller::accounts::Accounts;
use crate::controller::events::EventRecorder;
use crate::controller::export::Exports;
use crate::crd::is_paused;
use crate::metrics::Metrics;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use std::sync::Arc;
use std::time::Duration;

/// Longest reconcile: the last guard, above every per-call timeout and rate-budget wait.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(300);

/// Timing of requeues.
#[derive(Clone, Debug)]
pub struct Timing {
    /// How often the account is listed, so out-of-band changes are found and corrected. Stretched when one
    /// complete listing does not fit in it under the rate budget ([`schedule`]).
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
    /// The (account, region) scopes' clients, and which objects may use which account.
    pub accounts: Accounts,
    pub recorder: EventRecorder,
    pub timing: Timing,
    pub kind: K::Context,
    /// Where reconciles are counted and timed.
    pub metrics: Metrics,
    /// The operator's exported ConfigMaps and what they say ([`crate::controller::export`]).
    pub exports: Exports,
    /// What the process remembers of each object between passes, one record per UID.
    memory: Memory,
    /// The objects found at the start without a record of a create: see [`predating`].
    predating: Predating,
    /// The resync period in effect, which the listings and the objects' memory both follow.
    schedule: Arc<ResyncSchedule>,
    /// Per (account, region), the latest complete listing of the kind.
    scopes: Scopes<K::Summary>,
}

impl<K: ManagedKind> Context<K> {
    pub fn new(
        kube: kube::Client,
        accounts: Accounts,
        recorder: EventRecorder,
        timing: Timing,
        kind: K::Context,
        metrics: Metrics,
        exports: Exports,
    ) -> Self {
        let schedule = Arc::new(ResyncSchedule::of::<K>(
            timing.resync_period,
            accounts.budget(K::LIST_OPERATION),
            metrics.clone(),
        ));
        Context {
            memory: Memory::new(timing.clone(), schedule.clone()),
            schedule,
            predating: Predating::default(),
            kube,
            accounts,
            recorder,
            timing,
            kind,
            metrics,
            exports,
            scopes: Scopes::default(),
        }
    }
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

/// The controller's reconcile function for any kind, measured (in flight, duration, outcome) for metrics.
pub async fn reconcile<K: ManagedKind>(
    object: Arc<K>,
    ctx: Arc<Context<K>>,
) -> Result<Action, ReconcileError> {
    let metrics = ctx.metrics.clone();
    let pass = async {
        tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_object(object, ctx))
            .await
            .unwrap_or(Err(ReconcileError::Timeout("the reconcile")))
    };
    metrics
        .timed_reconcile(K::KIND, pass, |pass: &Pass| pass.reported)
        .await
        .map(|pass| pass.action)
}

async fn reconcile_object<K: ManagedKind>(
    object: Arc<K>,
    ctx: Arc<Context<K>>,
) -> Result<Pass, ReconcileError> {
    // Paused: no AWS call at all, not even for deletion; unpausing is an object change that wakes us.
    if is_paused(object.meta()) {
        return Ok(Pass::quiet(Action::await_change()));
    }
    let namespace = object.namespace().ok_or(ReconcileError::NoNamespace)?;
    let api: Api<K> = Api::namespaced(ctx.kube.clone(), &namespace);
    tracing::debug!(kind = K::KIND, object = %object_key(object.as_ref()), "reconciling");
    K::context_ready(&ctx.kind).await;
    ctx.accounts.ready().await;
    let has_finalizer = object.finalizers().iter().any(|f| f == FINALIZER);
    if object.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            // Going away without the operator's cleanup (its finalizer removed by hand).
            ctx.memory.forget(&memory_key(&*object));
            ctx.predating.settled(&memory_key(&*object));
            return Ok(Pass::quiet(Action::await_change()));
        }
        return cleanup(&*object, &ctx, &api).await;
    }
    if !has_finalizer {
        // Before any AWS call, so that nothing created in AWS can outlive the object unnoticed.
        return match add_finalizer(&api, &*object).await {
            Ok(()) => Ok(Pass::quiet(Action::await_change())),
            // The object changed since the version this pass read: most often this very finalizer, added
            // by a pass that a wake-up (an account's or a logging configuration's change) followed before
            // the store saw the result. The newer version's watch event brings the object back; the
            // requeue is a safety net. Not a failure.
            Err(ReconcileError::Kube(kube::Error::Api(status))) if status.code == 409 => {
                Ok(Pass::quiet(Action::requeue(ctx.timing.poll_interval)))
            }
            Err(err) => Err(err),
        };
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
    Action::requeue(ctx.memory.next_backoff(&memory_key(&*object)))
}

fn object_key<K: ManagedKind>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}
