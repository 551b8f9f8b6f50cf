//! Everything a pass writes to the API server: the status (server-side apply with one field manager, only
//! when it changed; a create attempt's record on the version read, [`write_status_at_version`]), events,
//! and the finalizer; each call bounded by [`KUBE_CALL_TIMEOUT`].

use super::memory::memory_key;
use super::report::{Pass, Report, Requeue, outcome_of};
use super::{Context, ManagedKind, ReconcileError, object_key};
use crate::controller::export::{ExportReport, with_export_condition};
use crate::controller::status::{StatusDocument, merge_conditions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Event;
use std::future::Future;
use std::time::Duration;

/// The finalizer that keeps an object until its AWS resource is deleted (or released).
pub const FINALIZER: &str = "ivschat.dev/finalizer";
/// The one field manager of every status write.
pub const FIELD_MANAGER: &str = "ivschat-operator";
/// Longest wait for one Kubernetes API call (status, finalizer, event): a hung connection must not hold a
/// reconcile, and with it the object, forever.
const KUBE_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the status if it changed, publishes the events and turns the report into a [`Pass`]: when to
/// look again, and the health reported.
pub(super) async fn finish<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    api: &Api<K>,
    current: &StatusDocument,
    mut next: StatusDocument,
    report: Report,
) -> Result<Pass, ReconcileError> {
    let now = Time(jiff::Timestamp::now());
    let merged = merge_conditions(&current.conditions, &report.health, &now);
    next.conditions = with_export_condition(&current.conditions, merged, &report.export, &now);
    if next != *current {
        write_status(api, object, &next).await?;
    }
    for event in &report.events {
        publish(ctx, object, event).await;
    }
    let key = memory_key(object);
    let delay = match report.requeue {
        Requeue::Resync => {
            ctx.memory.reset_failures(&key);
            Some(ctx.schedule.period().mul_f64(rand::random_range(0.9..=1.1)))
        }
        Requeue::Poll => {
            ctx.memory.reset_failures(&key);
            Some(ctx.timing.poll_interval)
        }
        Requeue::Backoff => Some(ctx.memory.next_backoff(&key)),
        Requeue::Long => Some(ctx.timing.long_backoff),
        Requeue::AwaitChange => {
            ctx.memory.reset_failures(&key);
            None
        }
        Requeue::After(delay) => {
            ctx.memory.reset_failures(&key);
            Some(delay)
        }
    };
    Ok(Pass {
        action: delay.map_or_else(Action::await_change, Action::requeue),
        reported: Some(outcome_of(&report.health)),
    })
}

/// Writes only a new `Exported` condition into the stored status (a pass that found the object in sync
/// needs nothing else written), if it changed.
pub(super) async fn write_export_condition<K: ManagedKind>(
    api: &Api<K>,
    object: &K,
    current: &StatusDocument,
    export: &ExportReport,
) -> Result<(), ReconcileError> {
    let now = Time(jiff::Timestamp::now());
    let mut next = current.clone();
    next.conditions = with_export_condition(
        &current.conditions,
        current.conditions.clone(),
        export,
        &now,
    );
    if next != *current {
        write_status(api, object, &next).await?;
    }
    Ok(())
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
    apply_status(api, object, &patch).await.map(|_| ())
}

/// Writes the status of a create attempt (the write-ahead record) on exactly the version of the object this
/// pass read: the resourceVersion is a precondition, so the write fails with 409 Conflict when the object
/// changed since (a newer status this pass did not see, which may record an attempt of its own, or a
/// deletion). A create is only sent after this write is confirmed, so every create ever sent for an object
/// follows a recorded attempt on the version it was decided on. Returns the resourceVersion written.
pub(super) async fn write_status_at_version<K: ManagedKind>(
    api: &Api<K>,
    object: &K,
    status: &StatusDocument,
) -> Result<Option<String>, ReconcileError> {
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"resourceVersion": object.resource_version()},
        "status": status,
    });
    apply_status(api, object, &patch)
        .await
        .map(|written| written.resource_version())
}

async fn apply_status<K: ManagedKind>(
    api: &Api<K>,
    object: &K,
    patch: &serde_json::Value,
) -> Result<K, ReconcileError> {
    let name = object.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    bounded(
        "the status write",
        api.patch_status(&name, &params, &Patch::Apply(patch)),
    )
    .await
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

pub(super) async fn publish<K: ManagedKind>(ctx: &Context<K>, object: &K, event: &Event) {
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
pub(super) async fn add_finalizer<K: ManagedKind>(
    api: &Api<K>,
    object: &K,
) -> Result<(), ReconcileError> {
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    patch_finalizers(api, object, finalizers).await
}

pub(super) async fn remove_finalizer<K: ManagedKind>(
    api: &Api<K>,
    object: &K,
) -> Result<(), ReconcileError> {
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
