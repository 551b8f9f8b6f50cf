//! What AWS holds of one kind, account-wide, as complete listings (ListRooms / ListLoggingConfigurations,
//! 50 resources a page). The listings serve two purposes:
//!
//! - **Cheap drift detection.** A listing of 2,000 rooms is 40 calls; reading each room is 2,000. A listed
//!   summary carries the update time, tags and most fields, so a resource whose summary still shows the
//!   update time of the driver's last full read (recorded in the object's status) has not changed, and
//!   needs no Get call.
//! - **Crash-safe creates.** Create calls take no idempotency token, so before creating, the driver looks
//!   for a resource already carrying the object's ownership tag. A [`Snapshot`] that *started* after a
//!   create was attempted is proof that whatever that attempt created is in it.
//!
//! This module owns the snapshots and the refresh requests; the driver runs the listing loop and decides
//! what the snapshots mean for each object.

use super::aws_error::AwsError;
use crate::crd::OWNER_UID_TAG;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One resource as a listing reports it: identity, times, state and tags, plus the kind's summary fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed<S> {
    pub arn: String,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
    /// The AWS lifecycle state, for kinds that have one.
    pub state: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub summary: S,
}

#[cfg(test)]
impl Listed<()> {
    /// A listed resource with only what ownership tests look at: its ARN, create time and owner UID tag.
    pub(crate) fn tagged_for_test(arn: &str, created: Option<&str>, owner: Option<&str>) -> Self {
        Listed {
            arn: arn.to_owned(),
            create_time: created.map(str::to_owned),
            update_time: None,
            state: None,
            tags: owner
                .map(|uid| BTreeMap::from([(OWNER_UID_TAG.to_owned(), uid.to_owned())]))
                .unwrap_or_default(),
            summary: (),
        }
    }
}

impl<S> Listed<S> {
    /// The UID of the Kubernetes object this resource was created for, if the operator created it.
    pub fn owner_uid(&self) -> Option<&str> {
        self.tags.get(OWNER_UID_TAG).map(String::as_str)
    }
}

/// One page of a listing and the token of the next page (`None` on the last).
pub type Page<S> = (Vec<Listed<S>>, Option<String>);

/// The resources in `listed` that carry the ownership tag of `uid`, oldest first (the oldest is the one to
/// keep when a past failure left more than one).
pub fn owned_by<'a, S: 'a>(
    listed: impl IntoIterator<Item = &'a Listed<S>>,
    uid: &str,
) -> Vec<&'a Listed<S>> {
    let mut owned: Vec<&Listed<S>> = listed
        .into_iter()
        .filter(|listed| listed.owner_uid() == Some(uid))
        .collect();
    // By time, not by text: AWS times drop trailing zeros of the fraction (`…:01Z`, `…:01.5Z`, `…:01.52Z`),
    // so their text does not sort in time order.
    owned.sort_by_cached_key(|listed| (created_at(listed), listed.arn.clone()));
    owned
}

/// When the resource was created, as far as its listed time can be read (unreadable or absent: first).
fn created_at<S>(listed: &Listed<S>) -> Option<jiff::Timestamp> {
    listed.create_time.as_deref()?.parse().ok()
}

/// A complete listing. Every resource that existed when the listing started, and still existed when it
/// ended, is in it.
#[derive(Debug)]
pub struct Snapshot<S> {
    pub started: Instant,
    pub by_arn: HashMap<String, Listed<S>>,
}

impl<S> Snapshot<S> {
    pub fn new(started: Instant, listed: Vec<Listed<S>>) -> Self {
        Snapshot {
            started,
            by_arn: listed
                .into_iter()
                .map(|listed| (listed.arn.clone(), listed))
                .collect(),
        }
    }

    pub fn owned_by(&self, uid: &str) -> Vec<&Listed<S>> {
        owned_by(self.by_arn.values(), uid)
    }
}

/// The latest complete listing of one kind and the requests for a fresher one.
#[derive(Debug)]
pub struct Inventory<S> {
    latest: Mutex<Option<Arc<Snapshot<S>>>>,
    /// When the listing under way started, if one is.
    in_progress_since: Mutex<Option<Instant>>,
    /// Why the last listing failed, until one succeeds.
    last_error: Mutex<Option<AwsError>>,
    refresh: Notify,
}

impl<S> Default for Inventory<S> {
    fn default() -> Self {
        Inventory {
            latest: Mutex::new(None),
            in_progress_since: Mutex::new(None),
            last_error: Mutex::new(None),
            refresh: Notify::new(),
        }
    }
}

impl<S> Inventory<S> {
    /// The latest complete listing if it started after `since` (`None`: any listing of this process, all of
    /// which started after the process did).
    pub fn since(&self, since: Option<Instant>) -> Option<Arc<Snapshot<S>>> {
        let latest = self.latest.lock().ok()?.clone()?;
        since
            .is_none_or(|since| latest.started > since)
            .then_some(latest)
    }

    /// Asks for a listing that starts after `since`, unless the one under way already does.
    pub fn request(&self, since: Option<Instant>) {
        let covered = self
            .in_progress_since
            .lock()
            .ok()
            .and_then(|in_progress| *in_progress)
            .is_some_and(|started| since.is_none_or(|since| started > since));
        if !covered {
            self.refresh.notify_one();
        }
    }

    /// Resolves when a listing is requested (a request made while none is awaited is kept for the next wait).
    pub async fn requested(&self) {
        self.refresh.notified().await;
    }

    /// A listing starts now.
    pub fn begin(&self, started: Instant) {
        if let Ok(mut in_progress) = self.in_progress_since.lock() {
            *in_progress = Some(started);
        }
    }

    /// The listing under way completed.
    pub fn publish(&self, snapshot: Snapshot<S>) -> Arc<Snapshot<S>> {
        let snapshot = Arc::new(snapshot);
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(snapshot.clone());
        }
        self.set_last_error(None);
        self.end();
        snapshot
    }

    /// The listing under way failed (the latest complete one stays).
    pub fn fail(&self, error: AwsError) {
        self.set_last_error(Some(error));
        self.end();
    }

    /// Why the last listing failed, if the last one did: what objects waiting for a listing report.
    pub fn last_error(&self) -> Option<AwsError> {
        self.last_error.lock().ok().and_then(|error| error.clone())
    }

    fn set_last_error(&self, error: Option<AwsError>) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }

    fn end(&self) {
        if let Ok(mut in_progress) = self.in_progress_since.lock() {
            *in_progress = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn listed(arn: &str, created: &str, owner: Option<&str>) -> Listed<()> {
        Listed::tagged_for_test(arn, Some(created), owner)
    }

    #[test]
    fn the_oldest_is_the_earliest_in_time_whatever_the_fraction_digits() {
        let listed = [
            listed("c", "2026-12-01T10:00:01.52Z", Some("u")),
            listed("b", "2026-12-01T10:00:01.5Z", Some("u")),
            listed("a", "2026-12-01T10:00:01Z", Some("u")),
        ];
        let order: Vec<&str> = owned_by(&listed, "u")
            .into_iter()
            .map(|listed| listed.arn.as_str())
            .collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn ownership_is_found_by_uid_oldest_first() {
        let snapshot = Snapshot::new(
            Instant::now(),
            vec![
                listed("arn:b", "2026-01-02T00:00:00Z", Some("uid-1")),
                listed("arn:a", "2026-01-01T00:00:00Z", Some("uid-1")),
                listed("arn:c", "2026-01-01T00:00:00Z", Some("uid-2")),
                listed("arn:d", "2026-01-01T00:00:00Z", None),
            ],
        );
        let owned: Vec<&str> = snapshot
            .owned_by("uid-1")
            .iter()
            .map(|l| l.arn.as_str())
            .collect();
        assert_eq!(owned, vec!["arn:a", "arn:b"]);
        assert!(snapshot.owned_by("uid-3").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_proves_only_what_existed_when_it_started() {
        let inventory = Inventory::<()>::default();
        assert!(inventory.since(None).is_none(), "no listing yet");
        let before = Instant::now();
        tokio::time::advance(Duration::from_millis(2)).await;
        let started = Instant::now();
        inventory.begin(started);
        tokio::time::advance(Duration::from_secs(3)).await;
        inventory.publish(Snapshot::new(started, vec![]));
        assert!(inventory.since(None).is_some());
        assert!(inventory.since(Some(before)).is_some());
        // A create attempted at the very instant the listing started, or later, may be missing from it.
        assert!(inventory.since(Some(started)).is_none());
        let attempt = Instant::now();
        assert!(inventory.since(Some(attempt)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_kept_until_the_loop_waits_and_skipped_when_covered() {
        let inventory = Inventory::<()>::default();
        inventory.request(None);
        tokio::time::timeout(Duration::from_secs(1), inventory.requested())
            .await
            .expect("a request made before the wait is kept");
        // A listing under way that started after `since` covers the request.
        let since = Instant::now();
        tokio::time::advance(Duration::from_millis(2)).await;
        inventory.begin(Instant::now());
        inventory.request(Some(since));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), inventory.requested())
                .await
                .is_err()
        );
        // One that started before does not.
        inventory.request(Some(Instant::now()));
        tokio::time::timeout(Duration::from_secs(1), inventory.requested())
            .await
            .expect("an uncovered request wakes the loop");
        // Once the listing ended, nothing covers a request any more.
        inventory.fail(AwsError {
            operation: "ListRooms",
            class: crate::controller::aws_error::ErrorClass::Transient,
            code: "InternalServerException".into(),
            message: String::new(),
        });
        assert!(inventory.last_error().is_some());
        inventory.request(Some(since));
        tokio::time::timeout(Duration::from_secs(1), inventory.requested())
            .await
            .expect("no listing under way: the request wakes the loop");
    }
}
