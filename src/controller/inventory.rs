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
//! A snapshot holds every resource of the account, so it keeps of each only what those two purposes read
//! ([`Entry`]): the ARN, the create time and the owner UID exactly (an ownership lookup returns ARNs,
//! oldest first), and the values a listing is only ever *compared* with (update time, state, tags, the
//! kind's summary fields) as [`digest`](super::digest)s: at 10,000 rooms about 2 MiB a snapshot instead
//! of about 20 MiB of listed strings and maps.
//!
//! This module owns the snapshots, what they keep and the refresh requests; the driver runs the listing
//! loop and decides what the snapshots mean for each object.

use super::aws_error::AwsError;
use super::digest::digest;
use crate::crd::OWNER_UID_TAG;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One resource as a listing page reports it: identity, times, state and tags, plus the kind's summary
/// fields. A [`Listing`] keeps it as an [`Entry`].
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

/// One page of a listing and the token of the next page (`None` on the last).
pub type Page<S> = (Vec<Listed<S>>, Option<String>);

/// The digest of a resource's update time and state, the "version" a full read records in status.
fn version_digest(update_time: Option<&str>, state: Option<&str>) -> u64 {
    digest(&(update_time, state))
}

/// What a [`Listing`] keeps of one resource: exactly what its readers ask of it, since it keeps one for
/// every resource of the account.
#[derive(Debug)]
pub struct Entry<S> {
    /// Parsed, so that the oldest of several resources is found by time, not by how the times are written.
    created: Option<jiff::Timestamp>,
    owner_uid: Option<Box<str>>,
    /// [`version_digest`] of the listed update time and state.
    version: u64,
    /// [`digest`] of the kind's summary fields.
    summary: u64,
    /// The tags as ([`digest`] of the key, [`digest`] of the value), sorted by the key's digest.
    tags: Box<[(u64, u64)]>,
    /// The summary type whose digest this entry keeps, so that one kind's digests are never compared with
    /// another's.
    kind: PhantomData<fn(&S)>,
}

impl<S: Hash> Entry<S> {
    pub fn of(listed: &Listed<S>) -> Self {
        let mut tags: Vec<(u64, u64)> = listed
            .tags
            .iter()
            .map(|(key, value)| (digest(key.as_str()), digest(value.as_str())))
            .collect();
        tags.sort_unstable();
        Entry {
            created: listed.create_time.as_deref().and_then(|t| t.parse().ok()),
            owner_uid: listed
                .tags
                .get(OWNER_UID_TAG)
                .map(|uid| uid.as_str().into()),
            version: version_digest(listed.update_time.as_deref(), listed.state.as_deref()),
            summary: digest(&listed.summary),
            tags: tags.into_boxed_slice(),
            kind: PhantomData,
        }
    }

    /// Whether the listing shows the kind's summary fields equal to `summary`.
    pub fn shows_summary(&self, summary: &S) -> bool {
        self.summary == digest(summary)
    }
}

impl<S> Entry<S> {
    /// The UID of the Kubernetes object this resource was created for, if the operator created it.
    pub fn owner_uid(&self) -> Option<&str> {
        self.owner_uid.as_deref()
    }

    /// Whether the listing shows the resource at exactly this update time and state. Never without an
    /// update time: a resource whose listing does not say when it last changed cannot be shown unchanged.
    pub fn is_at(&self, update_time: Option<&str>, state: Option<&str>) -> bool {
        update_time.is_some() && self.version == version_digest(update_time, state)
    }

    /// Whether the listed tags need no tag call to reach `desired`: the rule of
    /// [`plan_tags`](crate::controller::plan::plan_tags) (its plan is empty), over the digests. Every
    /// desired tag is there with its value, and no key the operator set before (`previously_managed`) and
    /// no longer desires is left; tags others added are ignored.
    pub fn tags_in_line(
        &self,
        desired: &BTreeMap<String, String>,
        previously_managed: &[String],
    ) -> bool {
        let value_of = |key: &str| {
            let key = digest(key);
            self.tags
                .binary_search_by_key(&key, |&(listed_key, _)| listed_key)
                .ok()
                .map(|at| self.tags[at].1)
        };
        desired
            .iter()
            .all(|(key, value)| value_of(key) == Some(digest(value.as_str())))
            && previously_managed
                .iter()
                .filter(|key| !desired.contains_key(*key))
                .all(|key| value_of(key).is_none())
    }
}

/// Resources as one listing showed them, by ARN.
#[derive(Debug)]
pub struct Listing<S> {
    by_arn: HashMap<Box<str>, Entry<S>>,
}

impl<S> Default for Listing<S> {
    fn default() -> Self {
        Listing {
            by_arn: HashMap::new(),
        }
    }
}

impl<S: Hash> Listing<S> {
    /// Adds a page: each resource is kept as its [`Entry`], so that a long listing never holds its pages.
    pub fn add(&mut self, page: impl IntoIterator<Item = Listed<S>>) {
        for listed in page {
            let entry = Entry::of(&listed);
            self.by_arn.insert(listed.arn.into_boxed_str(), entry);
        }
    }
}

impl<S: Hash> FromIterator<Listed<S>> for Listing<S> {
    fn from_iter<I: IntoIterator<Item = Listed<S>>>(listed: I) -> Self {
        let mut listing = Listing::default();
        listing.add(listed);
        listing
    }
}

impl<S> Listing<S> {
    pub fn get(&self, arn: &str) -> Option<&Entry<S>> {
        self.by_arn.get(arn)
    }

    pub fn len(&self) -> usize {
        self.by_arn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_arn.is_empty()
    }

    /// The ARNs of the resources that carry the ownership tag of `uid`, oldest first (the oldest is the one
    /// to keep when a past failure left more than one).
    pub fn owned_by(&self, uid: &str) -> Vec<String> {
        let mut owned: Vec<(&Option<jiff::Timestamp>, &str)> = self
            .by_arn
            .iter()
            .filter(|(_, entry)| entry.owner_uid() == Some(uid))
            .map(|(arn, entry)| (&entry.created, &**arn))
            .collect();
        owned.sort_unstable();
        owned.into_iter().map(|(_, arn)| arn.to_owned()).collect()
    }

    /// How many resources carry each ownership tag (by owner UID).
    pub fn owner_counts(&self) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for uid in self.by_arn.values().filter_map(Entry::owner_uid) {
            *counts.entry(uid).or_insert(0) += 1;
        }
        counts
    }
}

/// A complete listing. Every resource that existed when the listing started, and still existed when it
/// ended, is in it.
#[derive(Debug)]
pub struct Snapshot<S> {
    pub started: Instant,
    pub listing: Listing<S>,
}

impl<S: Hash> Snapshot<S> {
    pub fn new(started: Instant, listed: impl IntoIterator<Item = Listed<S>>) -> Self {
        Snapshot {
            started,
            listing: listed.into_iter().collect(),
        }
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
    use crate::controller::plan::plan_tags;
    use std::time::Duration;

    fn listed(arn: &str, created: &str, owner: Option<&str>) -> Listed<()> {
        Listed::tagged_for_test(arn, Some(created), owner)
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
                // Written with a fraction, but later than arn:a: the order is by time.
                listed("arn:0", "2026-01-01T00:00:00.5Z", Some("uid-1")),
            ],
        );
        let owned = snapshot.listing.owned_by("uid-1");
        assert_eq!(owned, vec!["arn:a", "arn:0", "arn:b"]);
        assert!(snapshot.listing.owned_by("uid-3").is_empty());
        assert_eq!(
            snapshot.listing.owner_counts(),
            HashMap::from([("uid-1", 3), ("uid-2", 1)])
        );
        assert_eq!(
            snapshot.listing.get("arn:c").and_then(Entry::owner_uid),
            Some("uid-2")
        );
        assert_eq!(
            snapshot.listing.get("arn:d").and_then(Entry::owner_uid),
            None
        );
    }

    #[test]
    fn an_entry_is_at_the_listed_update_time_and_state_only() {
        let mut room = listed("arn:r", "2026-01-01T00:00:00Z", None);
        room.update_time = Some("2026-01-02T00:00:00Z".into());
        room.state = Some("ACTIVE".into());
        let entry = Entry::of(&room);
        assert!(entry.is_at(Some("2026-01-02T00:00:00Z"), Some("ACTIVE")));
        assert!(!entry.is_at(Some("2026-01-03T00:00:00Z"), Some("ACTIVE")));
        assert!(!entry.is_at(Some("2026-01-02T00:00:00Z"), None));
        assert!(!entry.is_at(None, Some("ACTIVE")));
        // Without a listed update time, nothing shows the resource unchanged, not even a status without one.
        room.update_time = None;
        assert!(!Entry::of(&room).is_at(None, Some("ACTIVE")));
    }

    #[test]
    fn an_entry_shows_exactly_the_listed_summary() {
        let entry = Entry::of(&Listed {
            arn: "arn:r".to_owned(),
            create_time: None,
            update_time: None,
            state: None,
            tags: BTreeMap::new(),
            summary: ("room".to_owned(), vec!["arn:logs".to_owned()]),
        });
        assert!(entry.shows_summary(&("room".to_owned(), vec!["arn:logs".to_owned()])));
        assert!(!entry.shows_summary(&("room".to_owned(), vec![])));
        assert!(!entry.shows_summary(&(String::new(), vec!["arn:logs".to_owned()])));
    }

    /// Every map over three keys and two values (each key absent or set to either), as tags.
    fn every_tag_map() -> Vec<BTreeMap<String, String>> {
        let mut maps = vec![BTreeMap::new()];
        for key in ["a", "b", "c"] {
            maps = maps
                .into_iter()
                .flat_map(|map| {
                    [None, Some("1"), Some("2")].map(|value| {
                        let mut map = map.clone();
                        if let Some(value) = value {
                            map.insert(key.to_owned(), value.to_owned());
                        }
                        map
                    })
                })
                .collect();
        }
        maps
    }

    #[test]
    fn listed_tags_are_in_line_exactly_when_the_tag_plan_is_empty() {
        let maps = every_tag_map();
        let managed_sets: Vec<Vec<String>> = (0..8u8)
            .map(|bits| {
                ["a", "b", "c"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, key)| (*key).to_owned())
                    .collect()
            })
            .collect();
        for observed in &maps {
            let mut resource = listed("arn:r", "2026-01-01T00:00:00Z", None);
            resource.tags = observed.clone();
            let entry = Entry::of(&resource);
            for desired in &maps {
                for managed in &managed_sets {
                    assert_eq!(
                        entry.tags_in_line(desired, managed),
                        plan_tags(desired, observed, managed).is_empty(),
                        "desired {desired:?}, observed {observed:?}, managed {managed:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_entry_stays_small_because_a_snapshot_keeps_one_per_resource() {
        let size = std::mem::size_of::<Entry<()>>();
        assert!(size <= 80, "{size} bytes");
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
