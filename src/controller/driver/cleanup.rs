//! Deletion: release or delete the AWS resource according to the policies, then drop the finalizer.

use super::apply::{find_owned, waiting_for_listing};
use super::kube_io::{finish, publish, remove_finalizer};
use super::report::{Report, Requeue, normal, state_reason, warning};
use super::{Context, Deletion, ManagedKind, ReconcileError, object_key};
use crate::controller::aws::{Aws, Retry};
use crate::controller::aws_error::ErrorClass;
use crate::controller::status::{Health, StatusDocument, reasons};
use crate::crd::{
    DeletionPolicy, ManagementPolicy, OWNER_NAME_TAG, OWNER_NAMESPACE_TAG, OWNER_UID_TAG,
};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::Event;

/// Deletion: release or delete the AWS resource according to the policies, then drop the finalizer.
/// Does not depend on the spec being valid, so a bad spec never blocks deletion.
pub(super) async fn cleanup<K: ManagedKind>(
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
