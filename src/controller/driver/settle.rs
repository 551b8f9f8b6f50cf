//! Creates that may still complete, and the copies they leave.
//!
//! AWS can carry out a create after its client saw it fail (a timeout, a 5xx after the commit, a late
//! commit): a lookup right after the failure finds nothing, the retry creates, and later a second resource
//! carrying the object's ownership tag appears. Two rules keep every object at one resource:
//! - **An unanswered create is settled, not forgotten.** A create that answers normally, in a pass that
//!   found no earlier attempt in status, clears its record at once (the normal create: nothing else can
//!   appear). Otherwise the record (`status.createAttempt`) stays beside the ARN until a complete listing
//!   that started one resync period after the attempt ([`settles_at`]): the periodic one, so settling costs
//!   no call of its own; the copies it shows are deleted, with an event, and the record goes. A deletion
//!   looks up at the horizon instead (it does not wait for the next listing) before its finalizer is
//!   released, so a late copy cannot outlive its object. A create AWS completes more than a resync period after it was sent is
//!   not covered by the record; the listing below still finds it while its object exists.
//! - **Copies the listing shows are deleted.** The listing loop marks objects whose ownership tag is on
//!   more than their own resource ([`Memory::note_copies`](super::memory::Memory::note_copies)); their next
//!   pass deletes the others (the resource in status is the one kept).

use super::apply::find_owned;
use super::report::{Report, Requeue, warning};
use super::scopes::Scope;
use super::{Context, ManagedKind};
use crate::controller::aws_error::AwsError;
use crate::controller::status::{Health, StatusDocument, reasons};
use crate::crd::CreateAttempt;
use kube::ResourceExt;
use kube::runtime::events::Event;
use std::time::Duration;
use tokio::time::Instant;

/// When no create the record stands for can still complete: one resync period after the attempt started
/// (the record holds the latest attempt; earlier ones started before it). `None` for a record whose time
/// cannot be read, which then settles at once rather than never.
pub(super) fn settles_at(
    attempt: &CreateAttempt,
    resync_period: Duration,
) -> Option<jiff::Timestamp> {
    let started: jiff::Timestamp = attempt.started_at.parse().ok()?;
    let period = jiff::SignedDuration::try_from(resync_period).ok()?;
    started.checked_add(period).ok()
}

/// The process-clock instant of a wall-clock time (a listing must start after it), clamped to now.
fn instant_of(at: jiff::Timestamp) -> Instant {
    let now = Instant::now();
    let ahead = at.duration_since(jiff::Timestamp::now());
    match Duration::try_from(ahead) {
        Ok(ahead) => now + ahead,
        Err(_) => now
            .checked_sub(Duration::try_from(-ahead).unwrap_or_default())
            .unwrap_or(now),
    }
}

/// Where an object with an unanswered create stands.
pub(super) enum Settlement {
    /// Nothing can still appear (no record), or the lookup after the horizon is in: these are the ARNs of
    /// the resources tagged as the object's, oldest first.
    Known(Vec<String>),
    /// A create may still complete, or the lookup after the horizon is not in yet: look again after this
    /// long.
    Pending(Duration),
}

/// When a listing that shows what the record in `current` may have left can start: `None` without a
/// record. An unreadable time settles at once rather than never.
fn horizon_of(current: &StatusDocument, resync_period: Duration) -> Option<Instant> {
    let attempt = current.create_attempt.as_ref()?;
    Some(settles_at(attempt, resync_period).map_or_else(Instant::now, instant_of))
}

/// Whether a listing that started at `listing_started` settles the record in `current`: the object's pass
/// can then settle it from that listing, with no AWS call of its own (the listing loop sends such objects
/// to their pass, and does not confirm them in place of it).
pub(super) fn settled_by(
    current: &StatusDocument,
    resync_period: Duration,
    listing_started: Instant,
) -> bool {
    horizon_of(current, resync_period).is_some_and(|horizon| horizon <= listing_started)
}

/// Settlement, when `current` has a record: the resources tagged as `object`'s once its unanswered create
/// can no longer complete, or how long until it can. A live object (`urgent` false) settles from the
/// periodic listing (the first complete one that started after the horizon), which costs no call; a
/// deleted one (`urgent`) looks up at once (by name, or asking for a listing), so that its deletion waits
/// no longer than the horizon.
pub(super) async fn settle<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    current: &StatusDocument,
    urgent: bool,
) -> Option<Settlement> {
    let horizon = horizon_of(current, ctx.timing.resync_period)?;
    let now = Instant::now();
    if now < horizon {
        return Some(Settlement::Pending(horizon - now));
    }
    if !urgent {
        let uid = object.uid().unwrap_or_default();
        return Some(match scope.inventory.since(Some(horizon)) {
            Some(snapshot) => Settlement::Known(snapshot.listing.owned_by(&uid)),
            None => Settlement::Pending(ctx.timing.resync_period),
        });
    }
    Some(
        match find_owned(object, ctx, scope, current, None, Some(horizon)).await {
            Ok(Some(owned)) => Settlement::Known(owned),
            Ok(None) => Settlement::Pending(ctx.timing.poll_interval),
            Err(err) => {
                tracing::debug!(object = %object.name_any(), %err, "cannot look for copies yet");
                Settlement::Pending(ctx.timing.poll_interval)
            }
        },
    )
}

/// What a deletion waiting for [`settle`] reports: why the finalizer stays, and until when.
pub(super) fn waiting_to_release(current: &StatusDocument, wait: Duration) -> Report {
    let started_at = current
        .create_attempt
        .as_ref()
        .map_or("", |attempt| attempt.started_at.as_str());
    let health = Health::progressing(
        reasons::SETTLING,
        format!(
            "A create sent at {started_at} got no answer and may still complete: the object is released \
             once a lookup {wait:.0?} from now shows what it left"
        ),
    );
    Report::new(health, Requeue::After(wait))
}

/// The ARNs of the resources of the latest complete listing tagged as `object`'s other than `keep`, if the
/// listing loop saw any (the memory's mark); the mark is taken.
pub(super) fn listed_copies<K: ManagedKind>(
    object: &K,
    ctx: &Context<K>,
    scope: &Scope<K::Summary>,
    keep: &str,
) -> Vec<String> {
    if !ctx.memory.take_copies(&super::memory::memory_key(object)) {
        return Vec::new();
    }
    let Some(snapshot) = scope.inventory.since(None) else {
        return Vec::new();
    };
    let uid = object.uid().unwrap_or_default();
    snapshot
        .listing
        .owned_by(&uid)
        .into_iter()
        .filter(|arn| arn != keep)
        .collect()
}

/// Deletes `copies` (the ARNs of resources tagged as the object's besides `kept`), one event each. An ARN
/// named twice (by the listing's mark and by a settlement, say) is deleted once.
pub(super) async fn delete_copies<K: ManagedKind>(
    scope: &Scope<K::Summary>,
    copies: impl IntoIterator<Item = String>,
    kept: &str,
) -> Result<Vec<Event>, AwsError> {
    let mut events = Vec::new();
    let mut deleted: Vec<String> = Vec::new();
    for copy in copies {
        if copy == kept || deleted.contains(&copy) {
            continue;
        }
        K::delete(&scope.aws, &copy, false).await?;
        events.push(warning(
            "DuplicateDeleted",
            "Delete",
            &format!("Deleted {copy}: a second AWS resource tagged as this object's (kept {kept})"),
        ));
        deleted.push(copy);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(started_at: &str) -> CreateAttempt {
        CreateAttempt {
            id: "0123456789abcdef".into(),
            started_at: started_at.into(),
            name: None,
        }
    }

    #[test]
    fn an_attempt_settles_one_resync_period_after_it_started() {
        let at = settles_at(&attempt("2026-12-01T10:00:00Z"), Duration::from_secs(30));
        assert_eq!(at, Some("2026-12-01T10:00:30Z".parse().expect("time")));
        assert_eq!(
            settles_at(&attempt("yesterday"), Duration::from_secs(30)),
            None,
            "an unreadable time settles at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wall_clock_times_map_onto_the_process_clock() {
        let now = Instant::now();
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5);
        let mapped = instant_of(later);
        assert!(
            mapped >= now + Duration::from_millis(4900) && mapped <= now + Duration::from_secs(5)
        );
        let earlier = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5);
        assert!(instant_of(earlier) <= now);
    }
}
