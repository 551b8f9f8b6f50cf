//! Drift found by listing: [`run_inventory`] lists the kind once per resync period (the one in effect,
//! [`ResyncSchedule::period`](super::schedule), stretched when the account outgrows the configured one) and
//! reviews every object this process knows in sync; [`confirm_by_listing`] lets a due resync (or a first
//! look after a restart) be confirmed by a listing instead of a Get call.

use super::kube_io::FINALIZER;
use super::memory::{SyncMemory, fingerprint, jittered_backoff, memory_key};
use super::scopes::placed;
use super::settle::settled_by;
use super::{Context, ManagedKind};
use crate::controller::accounts::ScopeKey;
use crate::controller::aws::Aws;
use crate::controller::aws_error::{AwsError, ErrorClass};
use crate::controller::inventory::{Entry, Inventory, Listing, Snapshot};
use crate::controller::status::StatusDocument;
use crate::crd::{CONDITION_READY, ManagementPolicy, is_paused, tags_with_ownership};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::time::Instant;

/// Most pages one listing reads (50 resources a page): a runaway pagination ends in an error.
const MAX_LIST_PAGES: u64 = 10_000;

/// A resync (or a first look after a restart) of an object whose status records a full read that matched
/// its spec: a complete listing that started after that read and still shows the resource unchanged
/// confirms it without a Get call. `None`: a full read is needed.
pub(super) fn confirm_by_listing<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    inventory: &Inventory<K::Summary>,
    current: &StatusDocument,
    fingerprint: u64,
    verified_at: Option<Instant>,
) -> Option<Action> {
    let arn = current.arn.as_deref()?;
    // A status without the region (written by an operator version before accounts and regions) gets
    // one full pass, which records it.
    if !ready_at_generation(object, current) || current.region.is_none() {
        return None;
    }
    let key = memory_key(object);
    // An unanswered create due to be settled, or copies the listing showed: only a full pass deals with
    // them ([`settle`](super::settle)).
    let latest_listing = inventory.since(None).map(|snapshot| snapshot.started);
    let settles = latest_listing
        .is_some_and(|started| settled_by(current, ctx.timing.resync_period, started));
    if settles || ctx.memory.copies_noted(&key) {
        return None;
    }
    let confirm = |snapshot: &Snapshot<K::Summary>| {
        let listed = snapshot.listing.get(arn)?;
        listing_confirms(object, ctx, current, listed).then(|| {
            ctx.memory
                .remember_in_sync(&key, fingerprint, snapshot.started);
            Action::await_change()
        })
    };
    if let Some(snapshot) = inventory.since(verified_at) {
        return confirm(&snapshot);
    }
    // No listing since the last confirmation (a restart, or the listing loop is late or failing): the
    // object waits for the next one, unscheduled, up to one extra resync period; after that, or when the
    // listing does not confirm it, the resource itself is read.
    if verified_at.is_some_and(|at| ctx.memory.overdue(at)) {
        return None;
    }
    match wait_for_listing(ctx, inventory, &key, verified_at) {
        Some(snapshot) => confirm(&snapshot),
        None => Some(Action::await_change()),
    }
}

/// Leaves the object `key` waiting, unscheduled, for a listing that starts after `since` (the next
/// listing's review confirms it or hands it back) and asks for one; or, if such a listing was published
/// meanwhile, returns it instead. The listing loop publishes a listing before it reviews the objects that
/// wait, so one published just before the wait began may have been reviewed without this object: it is
/// looked for once more after the wait is recorded.
fn wait_for_listing<K: ManagedKind>(
    ctx: &Context<K>,
    inventory: &Inventory<K::Summary>,
    key: &str,
    since: Option<Instant>,
) -> Option<Arc<Snapshot<K::Summary>>> {
    ctx.memory.await_listing(key);
    if let Some(snapshot) = inventory.since(since) {
        ctx.memory.take_awaiting(key);
        return Some(snapshot);
    }
    inventory.request(since);
    None
}

/// Whether an object that the watch's list (at the start, or a relist after a failed watch) hands over
/// can do without a pass: its pass would end before any AWS call, as in sync and not due, or confirmed or
/// left waiting by a listing ([`confirm_by_listing`], which decides here as in the pass), so the object
/// is not queued at all. At 10,000 objects a restart otherwise queues 10,000 passes at once, about 8 MiB
/// in the controller's queue, that each conclude the same. Anything else (a pause, a deletion, no
/// finalizer yet, a create attempt, a kept outcome or copies, a resource the listing shows changed) gets
/// its pass.
pub fn listed_object_can_wait<K: ManagedKind>(object: &K, ctx: &Context<K>) -> bool {
    if is_paused(object.meta())
        || object.meta().deletion_timestamp.is_some()
        || !object.finalizers().iter().any(|f| f == FINALIZER)
    {
        return false;
    }
    let status = StatusDocument::of(object);
    if status.create_attempt.is_some() {
        return false;
    }
    // A namespace that lost its account's permission must hear so from its pass.
    if ctx.accounts.place(&placed(object, &status)).is_err() {
        return false;
    }
    let Some(scope) = ctx.listing_scope(object, &status) else {
        return false;
    };
    let key = memory_key(object);
    if ctx.memory.keeps_work(&key) {
        return false;
    }
    let fingerprint = fingerprint(object, &ctx.kind);
    let verified_at = match ctx.memory.sync_memory(&key, fingerprint) {
        SyncMemory::Fresh(_) => return true,
        SyncMemory::Due(verified_at) => Some(verified_at),
        SyncMemory::Unknown => None,
    };
    let inventory = ctx.scopes.inventory(&scope);
    confirm_by_listing(object, ctx, &inventory, &status, fingerprint, verified_at).is_some()
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
    listed: &Entry<K::Summary>,
) -> bool {
    if !listed.is_at(status.update_time.as_deref(), status.state.as_deref())
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
    listed.tags_in_line(&desired_tags, &status.managed_tag_keys)
        && listed.shows_summary(&K::listed_summary(&desired))
}

/// Every page of the kind's listing in one (account, region), and how many pages (calls) it took. Each page is kept as
/// it arrives as [`Entry`]s, so the listing never holds more than one page as listed.
async fn list_all<K: ManagedKind>(aws: &Aws) -> Result<(Listing<K::Summary>, u64), AwsError> {
    let mut listed = Listing::default();
    let mut next_token = None;
    for pages in 1..=MAX_LIST_PAGES {
        let (page, next) = K::list_page(aws, next_token).await?;
        listed.add(page);
        match next {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => return Ok((listed, pages)),
        }
    }
    Err(AwsError {
        operation: "List",
        class: ErrorClass::Transient,
        code: "TooManyPages".to_owned(),
        message: format!("the listing did not end after {MAX_LIST_PAGES} pages"),
    })
}

/// The listing loop of one kind: a complete listing once per resync period in effect (sooner when the
/// driver asks for one; the period is stretched after a listing too large for it), then a review of every
/// object the process knows in sync. Objects the listing confirms have their resync pushed out (no Get
/// call); the others, whose resource changed or vanished in AWS, are sent to `stale` to be reconciled now.
/// Beside it, once the store has its first full list, notes which objects predate this process without
/// any record of a create ([`Predating`](super::predating)). Runs until the task is dropped.
pub async fn run_inventory<K: ManagedKind>(
    ctx: Arc<Context<K>>,
    objects: Store<K>,
    stale: tokio::sync::mpsc::UnboundedSender<ObjectRef<K>>,
) {
    tokio::join!(
        note_objects_at_start(&ctx, &objects),
        listing_loops(ctx.clone(), objects.clone(), stale.clone()),
        wake_due_objects(&ctx, &objects, &stale),
    );
}

/// One listing loop per (account, region) scope: the operator's own from the start, every other one from
/// the first time a pass (or a restart's object) works in it. A scope's loop runs as long as the
/// controllers: a scope nobody uses any more costs one listing call per period.
async fn listing_loops<K: ManagedKind>(
    ctx: Arc<Context<K>>,
    objects: Store<K>,
    stale: tokio::sync::mpsc::UnboundedSender<ObjectRef<K>>,
) {
    let Some(mut started) = ctx.scopes.take_started() else {
        return;
    };
    ctx.scopes.inventory(&ctx.accounts.home_scope());
    let mut loops = futures_util::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(scope) = started.recv() => {
                loops.push(listing_loop(ctx.clone(), scope, objects.clone(), stale.clone()));
            }
            Some(()) = futures_util::StreamExt::next(&mut loops) => {}
            else => return,
        }
    }
}

/// Objects in sync have no timed requeue (a queued reference per object would cost about 1 KiB each,
/// for every object of the account): this loop hands over those whose resync is due without a listing
/// that confirmed them, or that waited for one too long ([`Memory::wake_due`](super::memory)). Checks
/// every twentieth of the period in effect, at least every poll interval apart, so an object wakes at
/// most 5 % of a period late.
async fn wake_due_objects<K: ManagedKind>(
    ctx: &Context<K>,
    objects: &Store<K>,
    stale: &tokio::sync::mpsc::UnboundedSender<ObjectRef<K>>,
) {
    loop {
        tokio::time::sleep(ctx.timing.poll_interval.max(ctx.schedule.period() / 20)).await;
        let now = Instant::now();
        for object in objects.state() {
            if ctx.memory.wake_due(&memory_key(&*object), now)
                && stale.send(ObjectRef::from_obj(&*object)).is_err()
            {
                return;
            }
        }
    }
}

/// The objects of the store's first full list whose status records neither an ARN nor a create attempt.
async fn note_objects_at_start<K: ManagedKind>(ctx: &Context<K>, objects: &Store<K>) {
    super::store_ready(objects).await;
    let unrecorded = objects
        .state()
        .iter()
        .filter(|object| {
            let status = StatusDocument::of(object.as_ref());
            status.arn.is_none() && status.create_attempt.is_none()
        })
        .map(|object| memory_key(object.as_ref()))
        .collect();
    ctx.predating.found_at_start(unrecorded);
}

async fn listing_loop<K: ManagedKind>(
    ctx: Arc<Context<K>>,
    scope: ScopeKey,
    objects: Store<K>,
    stale: tokio::sync::mpsc::UnboundedSender<ObjectRef<K>>,
) {
    let inventory = ctx.scopes.inventory(&scope);
    if scope == ctx.accounts.home_scope() {
        ctx.schedule.announce();
    }
    let mut failures = 0;
    let mut next_listing = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_listing) => {}
            () = inventory.requested() => {}
        }
        let started = Instant::now();
        inventory.begin(started);
        // The new listing is built beside the latest one, which stays in use until this one is complete:
        // dropping it now would save one snapshot's memory (about 2 MiB per 10,000 resources) but make
        // every confirmation and ownership lookup that needs a listing wait for this one, as long as a
        // listing takes (minutes for a large account under the rate budget).
        let listed = match ctx.accounts.aws(&scope).await {
            Some(aws) => list_all::<K>(&aws).await,
            None => Err(AwsError {
                operation: K::LIST_OPERATION,
                class: ErrorClass::AccessDenied,
                code: "AccountNotFound".to_owned(),
                message: format!("ChatAccount {} does not exist", scope.account_label()),
            }),
        };
        match listed {
            Ok((listing, pages)) => {
                failures = 0;
                let count = listing.len();
                // Before the review, which pushes the confirmed objects' resync out by the new period.
                let period = ctx.schedule.listed(&scope, pages);
                let snapshot = inventory.publish(Snapshot { started, listing });
                let changed = review_listing(&ctx, &objects, &scope, &snapshot);
                tracing::debug!(
                    kind = K::KIND,
                    %scope,
                    listed = count,
                    pages,
                    changed = changed.len(),
                    elapsed = ?started.elapsed(),
                    "listed AWS resources"
                );
                if started.elapsed() > period {
                    // Even the stretched period was too short: AWS is slow or throttles (another client
                    // shares the quota), or there is no client-side budget to stretch the period by. Drift
                    // is still found, only later than the period promises.
                    tracing::warn!(
                        kind = K::KIND,
                        %scope,
                        listed = count,
                        pages,
                        elapsed = ?started.elapsed(),
                        resync = ?period,
                        "listing the account took longer than the resync period; consider a longer --resync-period"
                    );
                }
                for object in changed {
                    if stale.send(object).is_err() {
                        return;
                    }
                }
                next_listing = started + period;
            }
            Err(error) => {
                tracing::warn!(kind = K::KIND, %scope, %error, "cannot list AWS resources; retrying");
                inventory.fail(error);
                failures += 1;
                next_listing = Instant::now()
                    + jittered_backoff(&ctx.timing, failures, rand::random_range(0.5..=1.0));
            }
        }
        // Requests that arrive while a listing runs are served by the next one, but never back to back.
        let earliest = started + ctx.timing.poll_interval;
        tokio::time::sleep_until(earliest).await;
    }
}

/// The objects a complete listing shows out of sync (their resource changed or vanished in AWS since the
/// last full read, a second resource carries their ownership tag, or an unanswered create of theirs is
/// due to be settled: see [`settle`](super::settle)); the others are marked verified as of the listing's start. The memory of
/// objects that left the store without the operator's cleanup is dropped on the way.
fn review_listing<K: ManagedKind>(
    ctx: &Context<K>,
    objects: &Store<K>,
    scope: &ScopeKey,
    snapshot: &Snapshot<K::Summary>,
) -> Vec<ObjectRef<K>> {
    let seen_at = Instant::now();
    let objects = objects.state();
    let present: HashSet<String> = objects.iter().map(|object| memory_key(&**object)).collect();
    ctx.memory.retain(&present, seen_at);
    let owned = snapshot.listing.owner_counts();
    let mut changed = Vec::new();
    for object in objects {
        if is_paused(object.meta()) || object.meta().deletion_timestamp.is_some() {
            continue;
        }
        let status = StatusDocument::of(&*object);
        // Only the objects of this listing's account and region: the others' resources are not in it.
        if ctx.listing_scope(&*object, &status).as_ref() != Some(scope) {
            continue;
        }
        let key = memory_key(&*object);
        let settle_due = settled_by(&status, ctx.timing.resync_period, snapshot.started);
        if let Some(arn) = status.arn.as_deref()
            && (settle_due || has_copies(&owned, snapshot, object.uid().as_deref(), arn))
        {
            ctx.memory.note_copies(&key);
            ctx.memory.forget_in_sync(&key);
            changed.push(ObjectRef::from_obj(&*object));
            continue;
        }
        let awaiting = ctx.memory.take_awaiting(&key);
        let verified_at = ctx.memory.verified_at(&key);
        let reviewed = match verified_at {
            // Confirmed since this listing started: nothing to review.
            Some(at) => at < snapshot.started,
            // Not known in sync: a first look waiting for this listing (after a restart, say) is
            // reviewed; any other object is being reconciled anyway.
            None => awaiting,
        };
        if !reviewed {
            continue;
        }
        let Some(arn) = status.arn.as_deref() else {
            // Nothing the listing could confirm: a first look goes to its pass, which reads AWS.
            if verified_at.is_none() {
                changed.push(ObjectRef::from_obj(&*object));
            }
            continue;
        };
        let unchanged = snapshot
            .listing
            .get(arn)
            .is_some_and(|listed| listing_confirms(&*object, ctx, &status, listed));
        match (unchanged, verified_at) {
            (true, Some(_)) => ctx.memory.reverify(&key, snapshot.started),
            (true, None) => {
                ctx.memory.remember_in_sync(
                    &key,
                    fingerprint(&*object, &ctx.kind),
                    snapshot.started,
                );
            }
            (false, _) => {
                ctx.memory.forget_in_sync(&key);
                changed.push(ObjectRef::from_obj(&*object));
            }
        }
    }
    changed
}

/// Whether the listing shows a resource tagged as the object's (`uid`) besides its own (`arn`).
fn has_copies<S>(
    owned: &HashMap<&str, usize>,
    snapshot: &Snapshot<S>,
    uid: Option<&str>,
    arn: &str,
) -> bool {
    let Some(uid) = uid else {
        return false;
    };
    let tagged = owned.get(uid).copied().unwrap_or(0);
    let own = snapshot
        .listing
        .get(arn)
        .is_some_and(|listed| listed.owner_uid() == Some(uid));
    tagged > usize::from(own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::inventory::Listed;

    fn listed(arn: &str, owner: Option<&str>) -> Listed<()> {
        Listed::tagged_for_test(arn, None, owner)
    }

    #[test]
    fn copies_are_resources_tagged_as_the_objects_besides_its_own() {
        let snapshot = Snapshot::new(
            Instant::now(),
            vec![
                listed("own", Some("a")),
                listed("copy", Some("a")),
                listed("alone", Some("b")),
                listed("untagged", None),
                listed("elsewhere", Some("c")),
            ],
        );
        let owned = snapshot.listing.owner_counts();
        assert!(has_copies(&owned, &snapshot, Some("a"), "own"));
        assert!(!has_copies(&owned, &snapshot, Some("b"), "alone"));
        // Its own resource is not in the listing (deleted out of band, say): one tagged resource is a copy.
        assert!(has_copies(&owned, &snapshot, Some("c"), "gone"));
        // A resource named in status but tagged for another object does not count as the object's own.
        assert!(!has_copies(&owned, &snapshot, Some("d"), "elsewhere"));
        assert!(
            !has_copies(&owned, &snapshot, None, "own"),
            "no UID, no copies"
        );
    }
}
