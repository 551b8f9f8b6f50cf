//! Publishing Events (events.k8s.io/v1) on the objects, as kube's `Recorder` does, with a memory sized
//! for tens of thousands of objects.
//!
//! An event that repeats one published within [`SERIES_WINDOW`] (same type, reason, action, object and
//! related object) becomes a series: the first Event's `series` (count, last time) is patched instead of
//! a new Event being created, so a failure repeated on every retry shows as one Event with a count. To
//! know what repeats, kube's Recorder keeps a whole copy of every Event it published for the window (about
//! 2 KiB each: at 10,000 rooms created at once, one `Created` event each, a quarter of the operator's
//! heap) and sweeps that map on every publish. [`EventRecorder`] keeps, per event, only the [`digest`] of
//! what makes it repeat, the Event's name and its count ([`Published`], under 100 bytes), sweeps at most
//! once per [`SWEEP_EVERY`], and remembers at most [`MAX_REMEMBERED`] events (beyond that, a repeat is
//! published as a new Event rather than counted: still seen, never a memory leak).
//!
//! This module owns what an Event says besides its reason, action and note (reporter, times, name,
//! series); the driver decides which events a pass publishes ([`report`](super::driver)).

use super::digest::digest;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// How long after an event a repeat of it is counted in its series (kube's Recorder uses the same).
pub const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// How often, at most, events older than the window are forgotten.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_secs(30);
/// Most events remembered at once (about 10 MiB): a bound even when events come faster than the window
/// lets them go.
const MAX_REMEMBERED: usize = 100_000;

/// Publishes the events of one controller, repeats as series.
pub struct EventRecorder {
    client: kube::Client,
    /// `reportingController`.
    controller: String,
    /// `reportingInstance`: the pod's name, or the controller's when it is not known.
    instance: String,
    published: Mutex<Published>,
}

impl EventRecorder {
    pub fn new(client: kube::Client, controller: String, instance: Option<String>) -> Self {
        EventRecorder {
            client,
            instance: instance.unwrap_or_else(|| controller.clone()),
            controller,
            published: Mutex::new(Published::default()),
        }
    }

    fn published(&self) -> MutexGuard<'_, Published> {
        // The map is only a memory of what repeats: after a panic elsewhere it is still good enough.
        self.published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes `event` on the object `regarding`: a new Event, or the next count of the series it repeats.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = series_key(event, regarding);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let repeat = self.published().repeat_of(key, now);
        let (name, count) = match repeat {
            Some((name, count)) => {
                let series = serde_json::json!({
                    "series": {"count": count, "lastObservedTime": MicroTime(now)}
                });
                let patched = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                    .await;
                if let Err(error) = patched {
                    // The Event is gone or unreachable: the next repeat starts a new one.
                    self.published().forget(key);
                    return Err(error);
                }
                (name, count)
            }
            None => {
                let created = self.new_event(event, regarding, now);
                let name = created.metadata.name.clone().unwrap_or_default();
                api.create(&PostParams::default(), &created).await?;
                (name.into_boxed_str(), 1)
            }
        };
        self.published().remember(key, name, count, now);
        Ok(())
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(type_name(event.type_).to_owned()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                // Unique per object and instant, as kube names them.
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                ..ObjectMeta::default()
            },
            ..K8sEvent::default()
        }
    }
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// What makes an event a repeat of an earlier one, as for kube's Recorder: its type, reason and action, and
/// the object it is about and the related object, each at the same resourceVersion (the reporter is the
/// recorder's own). So a warning repeated by retries on an unchanged object is counted, while the same
/// reason after the object changed (a second drift corrected, say) is a new Event with its own note. The
/// note is not part of it: a series keeps the first Event's note.
fn series_key(event: &Event, regarding: &ObjectReference) -> u64 {
    /// An object at one resourceVersion.
    fn object(reference: &ObjectReference) -> [Option<&str>; 7] {
        [
            reference.api_version.as_deref(),
            reference.kind.as_deref(),
            reference.namespace.as_deref(),
            reference.name.as_deref(),
            reference.uid.as_deref(),
            reference.resource_version.as_deref(),
            reference.field_path.as_deref(),
        ]
    }
    digest(&(
        type_name(event.type_),
        event.reason.as_str(),
        event.action.as_str(),
        object(regarding),
        event.secondary.as_ref().map(object),
    ))
}

/// The events published within the window, by [`series_key`].
#[derive(Default)]
struct Published {
    by_key: HashMap<u64, Series>,
    swept_at: Option<Timestamp>,
}

/// One published Event and how many times it has happened so far.
#[derive(Debug, PartialEq)]
struct Series {
    name: Box<str>,
    count: i32,
    last: Timestamp,
}

impl Published {
    /// The Event the event with `key` repeats at `now`, and the count it reaches with it: `None` when none
    /// was published within the window (a new Event is created).
    fn repeat_of(&self, key: u64, now: Timestamp) -> Option<(Box<str>, i32)> {
        self.by_key
            .get(&key)
            .filter(|series| series.last + SERIES_WINDOW > now)
            .map(|series| (series.name.clone(), series.count.saturating_add(1)))
    }

    /// The Event `name` was published (`count` 1) or patched to `count` at `now`.
    fn remember(&mut self, key: u64, name: Box<str>, count: i32, now: Timestamp) {
        if self
            .swept_at
            .is_none_or(|swept_at| swept_at + SWEEP_EVERY <= now)
        {
            self.by_key
                .retain(|_, series| series.last + SERIES_WINDOW > now);
            self.swept_at = Some(now);
        }
        if self.by_key.len() >= MAX_REMEMBERED && !self.by_key.contains_key(&key) {
            return;
        }
        self.by_key.insert(
            key,
            Series {
                name,
                count,
                last: now,
            },
        );
    }

    fn forget(&mut self, key: u64) {
        self.by_key.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(type_: EventType, reason: &str, note: &str) -> Event {
        Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.to_owned()),
            action: "Create".to_owned(),
            secondary: None,
        }
    }

    fn room(name: &str, uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("ivschat.dev/v1alpha1".into()),
            kind: Some("ChatRoom".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(uid.into()),
            resource_version: Some("1".into()),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn an_event_repeats_another_of_the_same_kind_about_the_same_object_version_whatever_its_note() {
        let key = series_key(
            &event(EventType::Warning, "Throttled", "one"),
            &room("a", "1"),
        );
        assert_eq!(
            key,
            series_key(
                &event(EventType::Warning, "Throttled", "two"),
                &room("a", "1")
            )
        );
        let mut newer = room("a", "1");
        newer.resource_version = Some("2".into());
        for other in [
            // The object changed since: a new Event.
            series_key(&event(EventType::Warning, "Throttled", "one"), &newer),
            series_key(
                &event(EventType::Normal, "Throttled", "one"),
                &room("a", "1"),
            ),
            series_key(
                &event(EventType::Warning, "Created", "one"),
                &room("a", "1"),
            ),
            series_key(
                &event(EventType::Warning, "Throttled", "one"),
                &room("b", "1"),
            ),
            // The same name again is another object.
            series_key(
                &event(EventType::Warning, "Throttled", "one"),
                &room("a", "2"),
            ),
        ] {
            assert_ne!(key, other);
        }
    }

    #[test]
    fn repeats_within_the_window_count_in_the_first_events_series() {
        let mut published = Published::default();
        let start: Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        assert_eq!(published.repeat_of(7, start), None, "nothing published yet");
        published.remember(7, "room.1".into(), 1, start);
        let later = start + SignedDuration::from_mins(5);
        assert_eq!(published.repeat_of(7, later), Some(("room.1".into(), 2)));
        published.remember(7, "room.1".into(), 2, later);
        // The window runs from the last repeat.
        let much_later = later + SignedDuration::from_mins(5);
        assert_eq!(
            published.repeat_of(7, much_later),
            Some(("room.1".into(), 3))
        );
        assert_eq!(published.repeat_of(8, much_later), None, "another event");
        // Past the window, a new Event.
        let past = later + SERIES_WINDOW;
        assert_eq!(published.repeat_of(7, past), None);
        published.forget(7);
        assert_eq!(published.repeat_of(7, later), None, "forgotten");
    }

    #[test]
    fn events_past_the_window_are_swept_and_the_memory_is_bounded() {
        let mut published = Published::default();
        let start: Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        let after = |seconds: i64| start + SignedDuration::from_secs(seconds);
        let window = SERIES_WINDOW.as_secs();
        published.remember(1, "a.1".into(), 1, start);
        published.remember(2, "b.1".into(), 1, after(window - 10));
        assert_eq!(
            published.by_key.len(),
            2,
            "swept, but the first is still within the window"
        );
        // Expired, but swept only once SWEEP_EVERY has passed since the last sweep.
        published.remember(3, "c.1".into(), 1, after(window + 5));
        assert_eq!(published.by_key.len(), 3);
        assert_eq!(
            published.repeat_of(1, after(window + 5)),
            None,
            "expired all the same"
        );
        published.remember(4, "d.1".into(), 1, after(window + 20));
        let mut keys: Vec<u64> = published.by_key.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, [2, 3, 4]);

        let mut full = Published::default();
        for key in 0..MAX_REMEMBERED as u64 {
            full.by_key.insert(
                key,
                Series {
                    name: "x.1".into(),
                    count: 1,
                    last: start,
                },
            );
        }
        full.swept_at = Some(start);
        full.remember(u64::MAX, "new.1".into(), 1, start);
        assert_eq!(
            full.repeat_of(u64::MAX, start),
            None,
            "not remembered once full"
        );
        full.remember(0, "x.1".into(), 2, start);
        assert_eq!(
            full.repeat_of(0, start),
            Some(("x.1".into(), 3)),
            "a series already remembered goes on"
        );
    }

    #[test]
    fn a_remembered_event_is_small_because_one_is_kept_per_object_for_the_window() {
        let size = std::mem::size_of::<(u64, Series)>();
        assert!(size <= 48, "{size} bytes");
    }
}
