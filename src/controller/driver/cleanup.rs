//! Deletion: release or delete the AWS resource according to the policies, then drop the finalizer.

use super::apply::{find_owned, may_own_unrecorded, waiting_for_listing};
use super::kube_io::{finish, publish, remove_finalizer};
use super::memory::memory_key;
use super::report::{Pass, Report, Requeue, normal, state_reason, warning};
use super::scopes::Scope;
use super::settle::{self, Settlement};
use super::{Context, Deletion, ManagedKind, ReconcileError};
use crate::controller::aws::{Aws, Retry};
use crate::controller::aws_error::ErrorClass;
use crate::controller::export::{self, Owner};
use crate::controller::status::{Health, StatusDocument, reasons};
use crate::crd::{
    CONDITION_EXPORTED, DeletionPolicy, ManagementPolicy, OWNER_NAME_TAG, OWNER_NAMESPACE_TAG,
    OWNER_UID_TAG,
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
) -> Result<Pass, ReconcileError> {
    let policies = object.policies();
    let current = StatusDocument::of(object);
    let key = memory_key(object);
    let scope = match ctx.scope(object, &current).await {
        Ok(scope) => Some(scope),
        Err(refusal) if refusal.is_temporary() => {
            let report = Report::new(
                Health::stalled(refusal.reason, &refusal.message),
                Requeue::Long,
            );
            return finish(object, ctx, api, &current, current.clone(), report).await;
        }
        Err(refusal) => {
            // No AWS call for a namespace the account does not (or no longer) permit, nor in an account
            // that is gone: whatever the object had in AWS stays there, with its ownership tags, and the
            // object goes (a finalizer kept for an account nobody may use would block its namespace).
            if current.arn.is_some() || current.create_attempt.is_some() {
                let message = format!(
                    "{}; the AWS resource (if any) is left in place, with its ownership tags",
                    refusal.message
                );
                publish(ctx, object, &warning(refusal.reason, "Delete", &message)).await;
            }
            None
        }
    };
    let outcome = match (policies.management, &scope) {
        (ManagementPolicy::ObserveOnly, _) | (_, None) => Ok(Vec::new()),
        (ManagementPolicy::Manage, Some(scope)) => {
            match resources_to_release(object, ctx, scope, &current).await {
                Ok((arns, copy_events)) => {
                    let mut events = copy_events;
                    let mut outcome = Ok(());
                    for arn in arns {
                        match release_or_delete(object, ctx, scope, &key, &arn).await {
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
            }
        }
    };
    match outcome {
        Ok(events) => {
            // The exported ConfigMaps go before the finalizer: nothing else deletes them where no garbage
            // collector runs, and afterwards the object that owns them is gone.
            let owner = Owner::of(object);
            if owner.export.is_some() || current.condition(CONDITION_EXPORTED).is_some() {
                export::remove_all(&ctx.exports, &owner).await?;
            }
            remove_finalizer(api, object).await?;
            for event in &events {
                publish(ctx, object, event).await;
            }
            // The object is gone: nothing of it may outlive it, or be inherited by an object created again
            // under the same name (it has another UID anyway).
            ctx.memory.forget(&key);
            ctx.predating.settled(&key);
            Ok(Pass::quiet(Action::await_change()))
        }
        Err(report) => {
            let next = current.clone();
            finish(object, ctx, api, &current, next, report).await
        }
    }
}

/// The AWS resources a deleted object answers for: with a create attempt in status (one that got no
/// answer, which may still complete), the one in status and every one carrying its ownership tag, once
/// the attempt is settled ([`settle`](super::settle)); otherwise the one in status (or spec.adoptArn), or,
/// when the status names none, any carrying its ownership tag if this process sent a create or the object
/// may predate it. An object with neither an ARN nor an attempt never had a create sent: nothing to look
/// for.
async fn resources_to_release<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    current: &StatusDocument,
) -> Result<(Vec<String>, Vec<Event>), Report> {
    let known = current.arn.clone().or_else(|| object.policies().adopt_arn);
    // A create that may still complete (a record in status): release only once nothing more can appear.
    if let Some(settlement) = settle::settle(object, ctx, scope, current, true).await {
        return match (settlement, known) {
            // Copies of the known resource are deleted whatever the deletion policy: only the resource
            // the object named is the user's to retain.
            (Settlement::Known(owned), Some(arn)) => {
                match settle::delete_copies::<K>(scope, owned, &arn).await {
                    Ok(events) => Ok((vec![arn], events)),
                    Err(err) => Err(Report::from_error(&err)),
                }
            }
            (Settlement::Known(owned), None) => Ok((owned, Vec::new())),
            (Settlement::Pending(wait), _) => Err(settle::waiting_to_release(current, wait)),
        };
    }
    if let Some(arn) = known {
        return Ok((vec![arn], Vec::new()));
    }
    if !may_own_unrecorded(object, ctx, current) {
        return Ok((Vec::new(), Vec::new()));
    }
    match find_owned(object, ctx, scope, current, None, None).await {
        Ok(Some(owned)) => Ok((owned, Vec::new())),
        Ok(None) => Err(waiting_for_listing(scope)),
        Err(err) => Err(Report::from_error(&err)),
    }
}

/// Applies the deletion policy to one resource: the event to publish once the finalizer is gone, or why
/// the finalizer must stay for now.
async fn release_or_delete<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    key: &str,
    arn: &str,
) -> Result<Event, Report> {
    if object.policies().deletion == DeletionPolicy::Retain {
        return release(&scope.aws, arn).await.map(|()| {
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
    // When a failed deletion is sent again is the memory's rule (`Memory::retry_failed_deletion`); the
    // Long requeue below is the timer that brings the object back once it is due.
    let deletion = K::delete(&scope.aws, arn, ctx.memory.retry_failed_deletion(key)).await;
    if let Ok(deletion) = &deletion {
        ctx.memory.deletion_reported(key, deletion);
    }
    match deletion {
        Ok(Deletion::Gone) => Ok(normal("Deleted", "Delete", &format!("Deleted {arn}"))),
        Ok(Deletion::InProgress(state)) => Err(Report::new(
            Health::progressing(
                reasons::DELETING,
                format!("AWS reports state {state} for {arn}"),
            ),
            Requeue::Poll,
        )),
        Ok(Deletion::Failed(state)) => {
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
