//! The apply path: observe, diff, act. A pass first asks the object's memory whether AWS needs asking at
//! all (in sync and not due, or an outcome kept from a failed status write), then the listing (a resync the
//! latest listing confirms), and only then reads AWS.
//!
//! Creates are written ahead: before a create is sent, the status records the attempt
//! (`status.createAttempt`, written on the version of the object the pass read), and the create's ARN
//! replaces it. The ownership lookup runs only where an attempt may have created something nobody recorded:
//! an attempt in status without an ARN (a crash, a lost answer, a timeout, a deposed leader), a create this
//! process sent (its memory), or a known resource that vanished. An object with none of these never had a
//! create sent, so its create is one AWS call.
//!
//! Every apply pass ends with the export step ([`crate::controller::export`]) before its status write,
//! against the status it writes; a pass that finds the object in sync runs only that step ([`in_sync`]).

use super::drift::confirm_by_listing;
use super::kube_io::{finish, publish, write_export_condition, write_status_at_version};
use super::memory::{SyncMemory, fingerprint, memory_key};
use super::report::{Pass, Report, Requeue, health_of_state, normal, warning};
use super::scopes::Scope;
use super::settle::{self, Settlement};
use super::{Context, ManagedKind, Observed, ReconcileError};
use crate::controller::accounts::{Refusal, ScopeKey};
use crate::controller::aws::{Aws, Retry};
use crate::controller::aws_error::{AwsError, ErrorClass};
use crate::controller::export::{self, ExportReport, Owner, Recheck};
use crate::controller::inventory::Listing;
use crate::controller::plan::{changed_fields, managed_keys, plan_tags};
use crate::controller::status::{Health, StatusDocument, merge_conditions, reasons};
use crate::crd::{
    CONDITION_EXPORTED, CONDITION_READY, CONDITION_STALLED, CreateAttempt, DeletionPolicy,
    ManagementPolicy, account_of_arn, tags_with_ownership,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
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
    // Before anything else, even the memory of being in sync: a namespace whose account no longer
    // selects it must stop at once, without an AWS call.
    let scope = match ctx.scope(object, &current).await {
        Ok(scope) => scope,
        Err(refusal) => return refused(object, ctx, api, &current, &refusal).await,
    };
    let key = memory_key(object);
    if ctx
        .memory
        .is_outdated_view(&key, object.resource_version().as_deref())
    {
        // The store still shows the record of this process's own create attempt, not yet the outcome it
        // wrote: deciding from it could repeat the create or overwrite the outcome. The newer version's
        // watch event brings the object back; the requeue is a safety net.
        return Ok(Pass::quiet(Action::requeue(ctx.timing.poll_interval)));
    }
    let fingerprint = fingerprint(object, &ctx.kind);
    let verified_at = match ctx.memory.sync_memory(&key, fingerprint) {
        // Not due: the listing loop wakes it when it is ([`Memory::wake_due`](super::memory)). Only its
        // export is looked at (a watch of the operator's ConfigMaps may be what woke it).
        SyncMemory::Fresh(_) => return in_sync(object, ctx, api, &current).await,
        SyncMemory::Due(verified_at) => Some(verified_at),
        SyncMemory::Unknown => None,
    };
    let (next, report) = match ctx.memory.take_unwritten(&key, fingerprint) {
        Some(kept) => kept,
        None => {
            if let Some(action) = confirm_by_listing(
                object,
                ctx,
                &scope.inventory,
                &current,
                fingerprint,
                verified_at,
            ) {
                return Ok(Pass::quiet(action));
            }
            let mut next = current.clone();
            next.observed_generation = generation;
            match sync(object, ctx, &scope, api, &current, &mut next).await {
                Ok(report) => {
                    record_scope(ctx, &scope.key, &mut next);
                    (next, report)
                }
                // The create attempt could not be recorded on the version read: the object changed since
                // (its watch event brings the newer version), so nothing was sent and nothing is written.
                Err(ReconcileError::Kube(kube::Error::Api(status))) if status.code == 409 => {
                    tracing::debug!(object = %object.name_any(), "object changed before its create attempt was recorded");
                    return Ok(Pass::quiet(Action::requeue(ctx.timing.poll_interval)));
                }
                Err(err) => return Err(err),
            }
        }
    };
    let mut report = report;
    report.export = export(object, ctx, &current, &next).await;
    if let Some((reason, message)) = report.export.warning(&current.conditions) {
        report.events.push(warning(reason, "Export", message));
    }
    let export_retry = export_requeue(ctx, &key, &report.export);
    let ready = matches!(report.health, Health::Ready { .. });
    if ready {
        ctx.memory.set_ready_at(&key, generation);
    }
    let settled = ready && report.requeue == Requeue::Resync;
    let pass = match finish(object, ctx, api, &current, next.clone(), report.clone()).await {
        Ok(done) => {
            if let Some(version) = &report.attempt_version {
                ctx.memory.attempt_superseded(&key, version);
            }
            done
        }
        Err(err) => {
            ctx.memory.keep_unwritten(&key, fingerprint, next, report);
            return Err(err);
        }
    };
    if settled {
        // The status write just made (if any) comes back as a watch event with this same fingerprint.
        // No timed requeue: the listing loop confirms the object or wakes it when its resync is due.
        ctx.memory
            .remember_in_sync(&key, fingerprint, Instant::now());
        return Ok(Pass {
            action: export_retry.map_or_else(Action::await_change, Action::requeue),
            ..pass
        });
    }
    ctx.memory.forget_in_sync(&key);
    Ok(pass)
}

/// The export step of a pass, against `status`, the status the pass writes ([`export::sync`]). An object
/// that neither exports nor did (no `Exported` condition in its stored status) costs nothing.
async fn export<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    stored: &StatusDocument,
    status: &StatusDocument,
) -> ExportReport {
    let owner = Owner::of(object);
    if owner.export.is_none() && stored.condition(CONDITION_EXPORTED).is_none() {
        return ExportReport::Absent;
    }
    let values = K::exported_values(status, &ctx.exports.messaging_endpoint);
    export::sync(&ctx.exports, &owner, values).await
}

/// When an object that is otherwise settled is looked at again for its export's sake.
fn export_requeue<K: ManagedKind>(
    ctx: &Context<K>,
    key: &str,
    export: &ExportReport,
) -> Option<std::time::Duration> {
    match export.recheck()? {
        Recheck::Soon => Some(ctx.memory.next_backoff(key)),
        Recheck::Later => Some(ctx.timing.long_backoff),
    }
}

/// Longest wait for the read of an object before its export is repaired (like every Kubernetes call).
const KUBE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A pass that finds the object in sync and not due: no AWS call, only the export, against the stored
/// status (a ConfigMap edited or deleted out of band is put back), and the `Exported` condition if it
/// changed.
async fn in_sync<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    api: &Api<K>,
    current: &StatusDocument,
) -> Result<Pass, ReconcileError> {
    let key = memory_key(object);
    let owner = Owner::of(object);
    let mut current = current.clone();
    let values = K::exported_values(&current, &ctx.exports.messaging_endpoint);
    if !export::is_up_to_date(&ctx.exports, &owner, values.as_ref()) {
        // About to write from the store's status, which may be older than the one this process just
        // wrote (the ConfigMap's watch event can come before the status's): read the object first, so a
        // pass never puts an old ARN back. Only a ConfigMap to repair costs this read: a list by name,
        // since the operator may list its kinds but not get them.
        let by_name = ListParams::default().fields(&format!("metadata.name={}", object.name_any()));
        let listed = tokio::time::timeout(KUBE_READ_TIMEOUT, api.list(&by_name))
            .await
            .map_err(|_| ReconcileError::Timeout("reading the object before its export"))??;
        match listed.items.into_iter().next() {
            Some(fresh) if fresh.uid() == object.uid() => current = StatusDocument::of(&fresh),
            // Gone or replaced: its own watch event brings the pass that deals with it.
            _ => return Ok(Pass::quiet(Action::await_change())),
        }
    }
    let current = &current;
    let report = export(object, ctx, current, current).await;
    if !report.is_reflected_in(&current.conditions) {
        if let Some((reason, message)) = report.warning(&current.conditions) {
            publish(ctx, object, &warning(reason, "Export", message)).await;
        }
        write_export_condition(api, object, current, &report).await?;
    }
    let retry = export_requeue(ctx, &key, &report);
    Ok(Pass::quiet(
        retry.map_or_else(Action::await_change, Action::requeue),
    ))
}

/// A pass refused before any AWS call: the object's namespace may not use the account it names (Stalled),
/// or the account does not exist (Progressing: it may be on its way). Either way until the account or the
/// namespace changes, whose watch wakes it.
async fn refused<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    api: &Api<K>,
    current: &StatusDocument,
    refusal: &Refusal,
) -> Result<Pass, ReconcileError> {
    ctx.memory.forget_in_sync(&memory_key(object));
    let mut next = current.clone();
    next.observed_generation = object.meta().generation;
    let health = if refusal.is_waiting() {
        Health::progressing(refusal.reason, &refusal.message)
    } else {
        Health::stalled(refusal.reason, &refusal.message)
    };
    let report = Report::new(health, Requeue::AwaitChange).with_event(warning(
        refusal.reason,
        "Place",
        &refusal.message,
    ));
    finish(object, ctx, api, current, next, report).await
}

/// Records in the status where the resource lives: the region, and the account id (from the ARN, else
/// the ChatAccount's role).
fn record_scope<K: ManagedKind>(ctx: &Context<K>, scope: &ScopeKey, next: &mut StatusDocument) {
    next.region = Some(scope.region.to_string());
    let from_account = || {
        let account = ctx.accounts.account(scope.account.as_deref()?)?;
        let checked = account.status.as_ref().and_then(|s| s.account_id.clone());
        checked.or_else(|| account.spec.account_id().map(str::to_owned))
    };
    next.account_id = next
        .arn
        .as_deref()
        .and_then(account_of_arn)
        .map(str::to_owned)
        .or_else(from_account);
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

/// Observe, diff, act: the body of an apply pass. Every AWS failure becomes a [`Report`]; the only error is
/// a failed write of a create attempt's record, after which nothing was sent to AWS.
async fn sync<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    api: &Api<K>,
    current: &StatusDocument,
    next: &mut StatusDocument,
) -> Result<Report, ReconcileError> {
    let policies = object.policies();
    let known_arn = current.arn.clone();
    let target_arn = known_arn.clone().or_else(|| policies.adopt_arn.clone());

    if policies.management == ManagementPolicy::ObserveOnly {
        let Some(arn) = target_arn else {
            return Ok(Report::new(
                Health::stalled(
                    reasons::NOT_FOUND_IN_AWS,
                    "managementPolicy ObserveOnly needs spec.adoptArn",
                ),
                Requeue::AwaitChange,
            ));
        };
        return Ok(match K::observe(&scope.aws, &arn).await {
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
        });
    }

    let desired = match object.desired(&ctx.kind) {
        Ok(desired) => desired,
        // A watch on the referenced objects wakes us; the resync is only a safety net.
        Err(pending) if pending.stalled => {
            return Ok(Report::new(
                Health::stalled(pending.reason, pending.message),
                Requeue::AwaitChange,
            ));
        }
        Err(pending) => {
            return Ok(Report::new(
                Health::progressing(pending.reason, pending.message),
                Requeue::Resync,
            ));
        }
    };
    let uid = object.uid().unwrap_or_default();
    let namespace = object.namespace().unwrap_or_default();
    let desired_tags =
        tags_with_ownership(Some(&policies.tags), &uid, &namespace, &object.name_any());

    let Some(arn) = target_arn else {
        let create = Create {
            api,
            desired: &desired,
            tags: &desired_tags,
            recreate_note: None,
        };
        return create_unless_owned(object, ctx, scope, create, current, next).await;
    };
    let origin = if known_arn.is_some() {
        Origin::Known
    } else {
        Origin::AdoptArn
    };
    let create = Create {
        api,
        desired: &desired,
        tags: &desired_tags,
        recreate_note: None,
    };
    sync_existing(object, ctx, scope, (&arn, origin), create, current, next).await
}

/// What a create (or the sync of an existing resource, which may lead to one) works with: the API the
/// attempt is recorded through, the desired fields and tags, and, when the resource is created again
/// because it vanished, what to say about it.
struct Create<'a, K: ManagedKind> {
    api: &'a Api<K>,
    desired: &'a K::Fields,
    tags: &'a BTreeMap<String, String>,
    recreate_note: Option<String>,
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

/// Whether a create of `object` may already have left a resource nobody recorded, so that the ownership
/// lookup must run before creating (or before releasing a deleted object): an attempt recorded in status
/// (whatever the ARN says: a resource created again after vanishing records one too), a create this
/// process sent (its memory: also covers a status write computed from an older view that dropped the
/// record), or an object found at the start without any record, which an operator version that did not
/// record attempts may have created for ([`Predating`](super::predating)).
pub(super) fn may_own_unrecorded<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    current: &StatusDocument,
) -> bool {
    let key = memory_key(object);
    current.create_attempt.is_some()
        || ctx.memory.last_create_attempt(&key).is_some()
        || ctx.predating.may_predate(&key)
}

/// Creates the resource, unless one carrying this object's ownership tag may exist already and does: then
/// that one is adopted (and any further ones, left by an earlier failure, deleted).
async fn create_unless_owned<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    create: Create<'_, K>,
    current: &StatusDocument,
    next: &mut StatusDocument,
) -> Result<Report, ReconcileError> {
    // A resource that vanished is looked up too: a copy left by a failure before this operator recorded
    // attempts costs one lookup on a rare path, not a second resource.
    if !(may_own_unrecorded(object, ctx, current) || create.recreate_note.is_some()) {
        return create_recorded(object, ctx, scope, create, current, next).await;
    }
    let vanished_name = create
        .recreate_note
        .is_some()
        .then(|| K::search_name(create.desired))
        .flatten();
    let owned = match find_owned(object, ctx, scope, current, vanished_name, None).await {
        Ok(Some(owned)) => owned,
        Ok(None) => return Ok(waiting_for_listing(scope)),
        Err(err) => return Ok(Report::from_error(&err)),
    };
    // A resource the status named but AWS no longer has may still show in an older listing.
    let mut owned: Vec<String> = owned
        .into_iter()
        .filter(|arn| Some(arn) != current.arn.as_ref())
        .collect();
    if owned.is_empty() {
        return create_recorded(object, ctx, scope, create, current, next).await;
    }
    let keep = owned.remove(0);
    let mut events = match settle::delete_copies::<K>(scope, owned, &keep).await {
        Ok(events) => events,
        Err(err) => return Ok(Report::from_error(&err)),
    };
    let mut report = sync_existing(
        object,
        ctx,
        scope,
        (&keep, Origin::Recovered),
        create,
        current,
        next,
    )
    .await?;
    events.append(&mut report.events);
    report.events = events;
    Ok(report)
}

/// Records the attempt in status (confirmed before anything is sent), then creates. The record stays in
/// `next` until the create's ARN replaces it, so whatever this pass writes keeps it.
async fn create_recorded<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    create: Create<'_, K>,
    current: &StatusDocument,
    next: &mut StatusDocument,
) -> Result<Report, ReconcileError> {
    let attempt = CreateAttempt {
        id: format!("{:016x}", rand::random::<u64>()),
        started_at: jiff::Timestamp::now().to_string(),
        name: K::search_name(create.desired),
    };
    let mut recorded = next.clone();
    recorded.create_attempt = Some(attempt.clone());
    recorded.conditions = merge_conditions(
        &current.conditions,
        &Health::progressing(
            reasons::CREATING,
            format!("Creating the AWS resource (attempt {})", attempt.id),
        ),
        &Time(jiff::Timestamp::now()),
    );
    let written = write_status_at_version(create.api, object, &recorded).await?;
    let key = memory_key(object);
    ctx.predating.settled(&key);
    let _in_flight = ctx.memory.create_attempt(&key, attempt.name.as_deref());
    next.create_attempt = Some(attempt);
    // Only a create answered in a pass that found no earlier attempt in status settles its record at once:
    // after an earlier unanswered one, a copy may still appear ([`settle`](super::settle)).
    let settles = current.create_attempt.is_none();
    let mut report = self::create::<K>(scope, create, next, settles).await;
    report.attempt_version = written;
    Ok(report)
}

/// The lookup waits for a complete listing: say so, or say why listings fail.
pub(super) fn waiting_for_listing<S>(scope: &Scope<S>) -> Report {
    match scope.inventory.last_error() {
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

/// The ARNs of the AWS resources carrying this object's ownership tag, oldest first; `None` while no
/// listing fresh enough to prove it exists yet (one has been requested). Searches by name where every
/// create that may have left a resource is known by the name it sent ([`searchable_names`]), else in a
/// complete listing that started after this process's last create of the object and after `not_before`.
/// A search by name starts now: a caller with a `not_before` calls only once it has passed.
pub(super) async fn find_owned<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    current: &StatusDocument,
    vanished_name: Option<String>,
    not_before: Option<Instant>,
) -> Result<Option<Vec<String>>, AwsError> {
    let uid = object.uid().unwrap_or_default();
    if let Some(names) = searchable_names(object, ctx, current, vanished_name) {
        let mut candidates = Listing::default();
        for name in names {
            candidates.add(K::search_named(&scope.aws, &name).await?);
        }
        return Ok(Some(candidates.owned_by(&uid)));
    }
    let since = ctx
        .memory
        .last_create_attempt(&memory_key(object))
        .max(not_before);
    match scope.inventory.since(since) {
        Some(snapshot) => Ok(Some(snapshot.listing.owned_by(&uid))),
        None => {
            scope.inventory.request(since);
            Ok(None)
        }
    }
}

/// The names a lookup for `object` can narrow its search to: those its unconfirmed creates sent (the
/// attempt in status, the last create this process sent) and the name of a known resource that vanished.
/// `None` when a create that may have left a resource cannot be searched for by name (an unnamed room, a
/// kind without a name filter, an object that may predate this process, whose earlier creates are known
/// by nothing), so only a complete listing can tell. Searching by the spec's current name instead would
/// miss a resource created before the name was changed.
fn searchable_names<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    current: &StatusDocument,
    vanished_name: Option<String>,
) -> Option<Vec<String>> {
    let key = memory_key(object);
    if ctx.predating.may_predate(&key) {
        return None;
    }
    let mut names = Vec::new();
    if let Some(attempt) = &current.create_attempt {
        names.push(attempt.name.clone()?);
    }
    if ctx.memory.last_create_attempt(&key).is_some() {
        names.push(ctx.memory.last_create_name(&key)?);
    }
    names.extend(vanished_name);
    names.sort();
    names.dedup();
    (!names.is_empty()).then_some(names)
}

/// Observe, diff and act on an existing resource.
async fn sync_existing<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    (arn, origin): (&str, Origin),
    create: Create<'_, K>,
    current: &StatusDocument,
    next: &mut StatusDocument,
) -> Result<Report, ReconcileError> {
    let (desired, desired_tags) = (create.desired, create.tags);
    let policies = object.policies();
    let arn = arn.to_owned();
    let observed = match K::observe(&scope.aws, &arn).await {
        Ok(Some(observed)) => observed,
        Ok(None) if origin == Origin::Recovered => {
            // Deleted since it was listed: look again.
            return Ok(Report::new(looking_for_owned(), Requeue::Poll));
        }
        Ok(None) if origin == Origin::Known && policies.deletion == DeletionPolicy::Delete => {
            let recreate = Create {
                recreate_note: Some(format!(
                    "{arn} was deleted outside the operator; creating it again"
                )),
                ..create
            };
            // Boxed: the create path comes back here for a recovered resource (never recursing further).
            return Box::pin(create_unless_owned(
                object, ctx, scope, recreate, current, next,
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
            return Ok(Report::new(
                Health::stalled(reasons::NOT_FOUND_IN_AWS, &message),
                Requeue::Long,
            )
            .with_event(warning(reasons::NOT_FOUND_IN_AWS, "Observe", &message)));
        }
        Err(err) => return Ok(Report::from_read_error(&err, object, current)),
    };
    let adopted = origin != Origin::Known;
    mirror::<K>(next, &observed);
    // An attempt's result found by the lookup (Recovered) keeps its record: another unanswered attempt may
    // still complete. Settled here once it can no longer, with the copies found then deleted.
    // Before its horizon the record waits: the first listing after it sends the object here again.
    let mut copies = settle::listed_copies(object, ctx, scope, &arn);
    if let Some(Settlement::Known(owned)) = settle::settle(object, ctx, scope, next, false).await {
        copies.extend(owned);
        next.create_attempt = None;
    }
    let copy_events = match settle::delete_copies::<K>(scope, copies, &arn).await {
        Ok(events) => events,
        Err(err) => return Ok(Report::from_error(&err)),
    };
    if let Some((health, requeue)) = health_of_state(observed.state.as_deref()) {
        let mut report = Report::new(health, requeue);
        report.events = copy_events;
        return Ok(report);
    }

    let mut events = copy_events;
    let mut changes = changed_fields(desired, &observed.fields);
    let mut latest = observed;
    if !changes.is_empty() {
        match K::update(&scope.aws, &arn, desired).await {
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
            Err(err) => return Ok(Report::from_error(&err)),
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
        if let Err(err) = apply_tag_plan(&scope.aws, &arn, &plan).await {
            return Ok(Report::from_error(&err));
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
    Ok(report)
}

async fn create<K: ManagedKind>(
    scope: &Scope<K::Summary>,
    create: Create<'_, K>,
    next: &mut StatusDocument,
    settles: bool,
) -> Report {
    let (desired, tags, recreate_note) = (create.desired, create.tags, create.recreate_note);
    match K::create(&scope.aws, desired, tags).await {
        Ok(created) => {
            mirror::<K>(next, &created);
            if settles {
                // The answer is in and no earlier create is unanswered: the ARN replaces the record.
                next.create_attempt = None;
            }
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
