//! The apply path: observe, diff, act. A pass first asks the object's memory whether AWS needs asking at
//! all (in sync and not due, or an outcome kept from a failed status write), then the listing (a resync the
//! latest listing confirms), and only then reads AWS; a create is always preceded by the ownership lookup.

use super::drift::confirm_by_listing;
use super::kube_io::finish;
use super::memory::{SyncMemory, fingerprint, memory_key};
use super::report::{Pass, Report, Requeue, health_of_state, normal, warning};
use super::{Context, ManagedKind, Observed, ReconcileError};
use crate::controller::aws::{Aws, Retry};
use crate::controller::aws_error::{AwsError, ErrorClass};
use crate::controller::inventory::Listed;
use crate::controller::plan::{changed_fields, managed_keys, plan_tags};
use crate::controller::status::{Health, StatusDocument, reasons};
use crate::crd::{
    CONDITION_READY, CONDITION_STALLED, DeletionPolicy, ManagementPolicy, tags_with_ownership,
};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use std::collections::BTreeMap;
use tokio::time::Instant;

pub(super) async fn apply<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    api: &Api<K>,
) -> Result<Pass, ReconcileError> {
    let current = StatusDocument::of(object);
    let generation = object.meta().generation;
    // A spec AWS rejected stays rejected: no AWS call until the generation changes.
    let stalled_on_spec = current
        .condition(CONDITION_STALLED)
        .is_some_and(|c| c.status == "True" && c.reason == ErrorClass::Terminal.reason());
    if stalled_on_spec && current.observed_generation == generation {
        return Ok(Pass::quiet(Action::await_change()));
    }
    let key = memory_key(object);
    let fingerprint = fingerprint(object, &ctx.kind);
    let verified_at = match ctx.memory.sync_memory(&key, fingerprint) {
        SyncMemory::Fresh(until_resync) => return Ok(Pass::quiet(Action::requeue(until_resync))),
        SyncMemory::Due(verified_at) => Some(verified_at),
        SyncMemory::Unknown => None,
    };
    let (next, report) = match ctx.memory.take_unwritten(&key, fingerprint) {
        Some(kept) => kept,
        None => {
            if let Some(action) =
                confirm_by_listing(object, ctx, &current, fingerprint, verified_at)
            {
                return Ok(Pass::quiet(action));
            }
            let mut next = current.clone();
            next.observed_generation = generation;
            let report = sync(object, ctx, &current, &mut next).await;
            (next, report)
        }
    };
    let ready = matches!(report.health, Health::Ready { .. });
    if ready {
        ctx.memory.set_ready_at(&key, generation);
    }
    let settled = ready && report.requeue == Requeue::Resync;
    let pass = match finish(object, ctx, api, &current, next.clone(), report.clone()).await {
        Ok(done) => done,
        Err(err) => {
            ctx.memory.keep_unwritten(&key, fingerprint, next, report);
            return Err(err);
        }
    };
    if settled {
        // The status write just made (if any) comes back as a watch event with this same fingerprint.
        let until_resync = ctx
            .memory
            .remember_in_sync(&key, fingerprint, Instant::now());
        return Ok(Pass {
            action: Action::requeue(until_resync),
            ..pass
        });
    }
    ctx.memory.forget_in_sync(&key);
    Ok(pass)
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
        let _attempt = ctx.memory.create_attempt(&memory_key(object));
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
pub(super) fn waiting_for_listing<K: ManagedKind>(ctx: &Context<K>) -> Report {
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
pub(super) async fn find_owned<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
) -> Result<Option<Vec<Listed<K::Summary>>>, AwsError> {
    let uid = object.uid().unwrap_or_default();
    if let Some(candidates) = object.search_owned(&ctx.aws).await? {
        return Ok(Some(
            crate::controller::inventory::owned_by(&candidates, &uid)
                .into_iter()
                .cloned()
                .collect(),
        ));
    }
    let since = ctx.memory.last_create_attempt(&memory_key(object));
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
        let was_in_sync = ctx
            .memory
            .was_ready_at(&memory_key(object), object.meta().generation)
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

async fn apply_tag_plan(
    aws: &Aws,
    arn: &str,
    plan: &crate::controller::plan::TagPlan,
) -> Result<(), AwsError> {
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
