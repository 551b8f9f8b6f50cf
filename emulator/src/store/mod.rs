//! The resource store: rooms, logging configurations, their tags and issued chat tokens, with the invariants
//! that span resources (quotas, attachments between rooms and logging configurations, lifecycle, unique ids,
//! strictly increasing update times). Everything here is synchronous and pure over `now`; callers hold one lock
//! around the store for the duration of an operation.
//!
//! One store holds one (account, region) scope; `scopes` keeps the store of every scope ([`Stores`]).
//! This file holds the store itself (ids, times, lookups, settling of transitions, paging); the operations on
//! each kind of resource are in `rooms`, `logging`, `tags` and `chat_tokens` (each an `impl Store`), the values in
//! `model`.

mod chat_tokens;
mod logging;
mod model;
mod rooms;
mod scopes;
mod tags;

use std::collections::HashMap;
use std::time::Duration;

use ivschat_api::limits::CHAT_TOKEN_VALIDITY;
use jiff::Timestamp;

use crate::error::ApiError;
use crate::ids::{self, ArnScope, ResourceKind};
use crate::lifecycle::Observed;
use crate::pagination::{self, Cursor};

pub use self::model::{
    ChatTokenRejection, Destination, FallbackResult, HandlerChange, IssuedChatToken,
    LoggingConfiguration, MessageReviewHandler, Page, PersistedState, Room, RoomFilter, RoomPatch,
    RoomSpec,
};
pub use self::scopes::{ScopeSummary, Stores};

#[derive(Debug)]
pub struct Store {
    scope: ArnScope,
    rooms: HashMap<String, Room>,
    logging_configurations: HashMap<String, LoggingConfiguration>,
    /// The most recent create/update time handed out; later ones are strictly greater.
    last_time: Timestamp,
    /// Bumped by every change that the state file must reflect.
    revision: u64,
    chat_tokens: HashMap<String, ChatTokenEntry>,
    /// How long an issued chat token can be redeemed ([`CHAT_TOKEN_VALIDITY`] unless a test shortens it).
    chat_token_validity: Duration,
    /// Token count after the last purge of expired tokens (purges are amortised over inserts).
    chat_tokens_after_purge: usize,
}

#[derive(Debug, Clone)]
struct ChatTokenEntry {
    issued: IssuedChatToken,
    used: bool,
}

fn millis_floor(time: Timestamp) -> Timestamp {
    let millis = time.as_millisecond();
    Timestamp::from_millisecond(millis).unwrap_or(time)
}

impl Store {
    pub fn new(scope: ArnScope) -> Store {
        Store {
            scope,
            rooms: HashMap::new(),
            logging_configurations: HashMap::new(),
            last_time: Timestamp::UNIX_EPOCH,
            revision: 0,
            chat_tokens: HashMap::new(),
            chat_token_validity: CHAT_TOKEN_VALIDITY,
            chat_tokens_after_purge: 0,
        }
    }

    /// A store holding a previously persisted state (ARNs are kept as stored).
    pub fn from_persisted(scope: ArnScope, state: PersistedState) -> Store {
        let mut store = Store::new(scope);
        for room in state.rooms {
            store.last_time = store.last_time.max(room.update_time).max(room.create_time);
            store.rooms.insert(room.id.clone(), room);
        }
        for config in state.logging_configurations {
            store.last_time = store
                .last_time
                .max(config.update_time)
                .max(config.create_time);
            store
                .logging_configurations
                .insert(config.id.clone(), config);
        }
        store
    }

    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Logging configurations that still exist (including DELETING and failed ones, as the quota counts).
    pub fn logging_configuration_count(&self) -> usize {
        self.logging_configurations.len()
    }

    /// Everything the state file keeps, in a stable order.
    pub fn persisted_state(&self) -> PersistedState {
        let mut rooms: Vec<Room> = self.rooms.values().cloned().collect();
        rooms.sort_by(|a, b| a.id.cmp(&b.id));
        let mut logging_configurations: Vec<LoggingConfiguration> =
            self.logging_configurations.values().cloned().collect();
        logging_configurations.sort_by(|a, b| a.id.cmp(&b.id));
        PersistedState {
            rooms,
            logging_configurations,
        }
    }

    fn changed(&mut self) {
        self.revision += 1;
    }

    /// A create/update time: `now` at millisecond precision (what the wire shows), strictly after every time
    /// handed out before, so that the updateTime order of ListRooms is total and stable.
    fn next_time(&mut self, now: Timestamp) -> Timestamp {
        let mut time = millis_floor(now);
        if time <= self.last_time {
            time = self
                .last_time
                .checked_add(jiff::SignedDuration::from_millis(1))
                .unwrap_or(self.last_time);
        }
        self.last_time = time;
        time
    }

    fn unused_id(&self, kind: ResourceKind) -> String {
        loop {
            let id = ids::new_id();
            let taken = match kind {
                ResourceKind::Room => self.rooms.contains_key(&id),
                ResourceKind::LoggingConfiguration => self.logging_configurations.contains_key(&id),
            };
            if !taken {
                return id;
            }
        }
    }

    /// Applies transitions that completed by `now`: removes configurations whose deletion succeeded and
    /// records the final state of the others. Idempotent; call before every operation.
    pub fn settle(&mut self, now: Timestamp) {
        let mut gone = Vec::new();
        for (id, config) in &mut self.logging_configurations {
            let Some(transition) = &config.transition else {
                continue;
            };
            if !transition.is_complete(now) {
                continue;
            }
            match transition.observe(now) {
                Observed::Gone => gone.push(id.clone()),
                Observed::Exists(state) => {
                    config.settled_state = state;
                    config.transition = None;
                }
            }
        }
        for id in gone {
            self.logging_configurations.remove(&id);
        }
        // Settling derives from persisted timestamps, so it does not change what the state file means:
        // no revision bump.
    }

    // ---- lookups ----------------------------------------------------------------------------------------

    /// The id of a resource of this emulator named by a (syntactically valid) ARN, if it is ours.
    fn own_id<'a>(&self, arn: &'a str, kind: ResourceKind) -> Option<&'a str> {
        ids::parse_arn(arn)
            .filter(|parsed| parsed.kind == kind && parsed.is_in(&self.scope))
            .map(|parsed| parsed.id)
    }

    pub fn room(&self, identifier: &str) -> Result<&Room, ApiError> {
        self.own_id(identifier, ResourceKind::Room)
            .and_then(|id| self.rooms.get(id))
            .ok_or_else(|| room_not_found(identifier))
    }

    fn room_mut(&mut self, identifier: &str) -> Result<&mut Room, ApiError> {
        let id = self
            .own_id(identifier, ResourceKind::Room)
            .ok_or_else(|| room_not_found(identifier))?;
        self.rooms
            .get_mut(id)
            .ok_or_else(|| room_not_found(identifier))
    }

    pub fn logging_configuration(
        &self,
        identifier: &str,
    ) -> Result<&LoggingConfiguration, ApiError> {
        self.own_id(identifier, ResourceKind::LoggingConfiguration)
            .and_then(|id| self.logging_configurations.get(id))
            .ok_or_else(|| logging_not_found(identifier))
    }

    fn logging_configuration_mut(
        &mut self,
        identifier: &str,
    ) -> Result<&mut LoggingConfiguration, ApiError> {
        let id = self
            .own_id(identifier, ResourceKind::LoggingConfiguration)
            .ok_or_else(|| logging_not_found(identifier))?;
        self.logging_configurations
            .get_mut(id)
            .ok_or_else(|| logging_not_found(identifier))
    }
}

fn add(time: Timestamp, duration: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|duration| time.checked_add(duration).ok())
        .unwrap_or(Timestamp::MAX)
}

fn room_not_found(identifier: &str) -> ApiError {
    ApiError::not_found(
        format!("Room {identifier} not found"),
        ids::resource_id_for_error(identifier),
    )
}

fn logging_not_found(identifier: &str) -> ApiError {
    ApiError::not_found(
        format!("Logging configuration {identifier} not found"),
        ids::resource_id_for_error(identifier),
    )
}

fn dedup(identifiers: Vec<String>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::with_capacity(identifiers.len());
    for identifier in identifiers {
        if !unique.contains(&identifier) {
            unique.push(identifier);
        }
    }
    unique
}

/// Sorts by (updateTime, id) descending and cuts one page after `after`.
fn paginate<'a, T: Clone + 'a>(
    items: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> (Timestamp, &str),
    limit: usize,
    after: Option<&Cursor>,
) -> Page<T> {
    let mut candidates: Vec<&T> = items
        .filter(|item| {
            let (time, id) = key(item);
            after.is_none_or(|cursor| pagination::is_after(cursor, time.as_nanosecond(), id))
        })
        .collect();
    candidates.sort_by(|a, b| key(b).cmp(&key(a)));
    let more = candidates.len() > limit;
    candidates.truncate(limit);
    let next = if more {
        candidates.last().map(|item| {
            let (time, id) = key(item);
            Cursor {
                update_time_ns: time.as_nanosecond(),
                id: id.to_string(),
            }
        })
    } else {
        None
    };
    Page {
        items: candidates.into_iter().cloned().collect(),
        next,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{RuntimeSettings, TransitionFailures};
    use crate::lifecycle::LoggingState;

    fn store() -> Store {
        Store::new(ArnScope {
            region: "us-west-2".into(),
            account_id: "123456789012".into(),
        })
    }

    fn settings() -> RuntimeSettings {
        super::super::config::EmulatorConfig::default().runtime_settings()
    }

    fn spec(name: &str) -> RoomSpec {
        RoomSpec {
            name: name.into(),
            maximum_message_rate_per_second:
                ivschat_api::limits::DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND,
            maximum_message_length: ivschat_api::limits::DEFAULT_MAXIMUM_MESSAGE_LENGTH,
            message_review_handler: None,
            logging_configuration_identifiers: Vec::new(),
            tags: BTreeMap::new(),
        }
    }

    fn s3() -> Destination {
        Destination::S3 {
            bucket_name: "bucket".into(),
        }
    }

    #[test]
    fn update_times_strictly_increase_and_order_listings() {
        let mut store = store();
        let now = Timestamp::now();
        let a = store.create_room(spec("a"), None, now).expect("a");
        let b = store.create_room(spec("b"), None, now).expect("b");
        assert!(b.update_time > a.update_time);
        let patch = RoomPatch {
            name: None,
            maximum_message_rate_per_second: None,
            maximum_message_length: None,
            message_review_handler: HandlerChange::Keep,
            logging_configuration_identifiers: None,
        };
        let a2 = store.update_room(&a.arn, patch, now).expect("update");
        assert!(a2.update_time > b.update_time);
        let page = store
            .list_rooms(&RoomFilter::default(), 50, None)
            .expect("list");
        let names: Vec<&str> = page.items.iter().map(|room| room.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
    }

    #[test]
    fn pages_follow_the_cursor_even_when_items_are_deleted() {
        let mut store = store();
        let now = Timestamp::now();
        let rooms: Vec<Room> = (0..5)
            .map(|i| {
                store
                    .create_room(spec(&format!("r{i}")), None, now)
                    .expect("room")
            })
            .collect();
        let first = store
            .list_rooms(&RoomFilter::default(), 2, None)
            .expect("page 1");
        assert_eq!(
            first
                .items
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            vec!["r4", "r3"]
        );
        store.delete_room(&rooms[4].arn).expect("delete listed");
        store.delete_room(&rooms[1].arn).expect("delete unlisted");
        let second = store
            .list_rooms(&RoomFilter::default(), 2, first.next.as_ref())
            .expect("page 2");
        assert_eq!(
            second
                .items
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            vec!["r2", "r0"]
        );
        assert!(second.next.is_none());
    }

    #[test]
    fn room_quota_and_logging_quota() {
        let mut store = store();
        let now = Timestamp::now();
        store
            .create_room(spec("a"), Some(1), now)
            .expect("first room");
        let error = store
            .create_room(spec("b"), Some(1), now)
            .expect_err("quota");
        assert!(matches!(
            error,
            ApiError::ServiceQuotaExceeded { limit: 1, .. }
        ));
        let settings = RuntimeSettings {
            logging_configuration_quota: 1,
            ..settings()
        };
        store
            .create_logging_configuration("l".into(), s3(), BTreeMap::new(), &settings, now)
            .expect("first config");
        let error = store
            .create_logging_configuration("l".into(), s3(), BTreeMap::new(), &settings, now)
            .expect_err("quota");
        assert!(matches!(
            error,
            ApiError::ServiceQuotaExceeded { limit: 1, .. }
        ));
    }

    #[test]
    fn attached_configurations_cannot_be_deleted() {
        let mut store = store();
        let now = Timestamp::now();
        let config = store
            .create_logging_configuration("l".into(), s3(), BTreeMap::new(), &settings(), now)
            .expect("config");
        let room = store
            .create_room(
                RoomSpec {
                    logging_configuration_identifiers: vec![config.arn.clone(), config.arn.clone()],
                    ..spec("a")
                },
                None,
                now,
            )
            .expect("room");
        assert_eq!(
            room.logging_configuration_identifiers,
            vec![config.arn.clone()]
        );
        let error = store
            .delete_logging_configuration(&config.arn, &settings(), now)
            .expect_err("attached");
        assert!(matches!(error, ApiError::Conflict { .. }));
        store.delete_room(&room.arn).expect("delete room");
        store
            .delete_logging_configuration(&config.arn, &settings(), now)
            .expect("now deletable");
        assert!(matches!(
            store.logging_configuration(&config.arn),
            Err(ApiError::ResourceNotFound { .. })
        ));
    }

    #[test]
    fn lifecycle_with_delay_and_failures() {
        let mut store = store();
        let start = Timestamp::now();
        let later = start
            .checked_add(jiff::SignedDuration::from_secs(5))
            .expect("time");
        let slow = RuntimeSettings {
            logging_transition_delay: Duration::from_secs(2),
            ..settings()
        };
        let config = store
            .create_logging_configuration("l".into(), s3(), BTreeMap::new(), &slow, start)
            .expect("config");
        assert_eq!(config.state(start), LoggingState::Creating);
        let error = store.create_room(
            RoomSpec {
                logging_configuration_identifiers: vec![config.arn.clone()],
                ..spec("a")
            },
            None,
            start,
        );
        assert!(
            matches!(error, Err(ApiError::Conflict { .. })),
            "not ACTIVE yet"
        );
        assert!(matches!(
            store.delete_logging_configuration(&config.arn, &slow, start),
            Err(ApiError::Conflict { .. })
        ));
        store.settle(later);
        assert_eq!(
            store
                .logging_configuration(&config.arn)
                .expect("exists")
                .state(later),
            LoggingState::Active
        );

        let failing = RuntimeSettings {
            fail_transitions: TransitionFailures {
                update: true,
                ..TransitionFailures::NONE
            },
            ..slow.clone()
        };
        store
            .update_logging_configuration(&config.arn, Some("n".into()), None, &failing, later)
            .expect("update");
        let much_later = later
            .checked_add(jiff::SignedDuration::from_secs(5))
            .expect("time");
        store.settle(much_later);
        let config = store
            .logging_configuration(&config.arn)
            .expect("exists")
            .clone();
        assert_eq!(config.state(much_later), LoggingState::UpdateFailed);
        assert_eq!(config.name, "n");

        store
            .delete_logging_configuration(&config.arn, &slow, much_later)
            .expect("delete");
        assert_eq!(
            store
                .logging_configuration(&config.arn)
                .expect("still there")
                .state(much_later),
            LoggingState::Deleting
        );
        let end = much_later
            .checked_add(jiff::SignedDuration::from_secs(5))
            .expect("time");
        store.settle(end);
        assert!(store.logging_configuration(&config.arn).is_err());
    }

    #[test]
    fn tags_add_overwrite_remove_and_limit() {
        let mut store = store();
        let room = store
            .create_room(spec("a"), None, Timestamp::now())
            .expect("room");
        store
            .tag(
                &room.arn,
                [("a".into(), "1".into()), ("b".into(), "2".into())].into(),
                50,
            )
            .expect("tag");
        store
            .tag(&room.arn, [("a".into(), "3".into())].into(), 50)
            .expect("overwrite");
        assert_eq!(
            store.tags(&room.arn).expect("tags"),
            [
                ("a".to_string(), "3".to_string()),
                ("b".to_string(), "2".to_string())
            ]
            .into()
        );
        store
            .untag(&room.arn, &["a".into(), "missing".into()])
            .expect("untag");
        store.untag(&room.arn, &["a".into()]).expect("idempotent");
        assert_eq!(store.tags(&room.arn).expect("tags").len(), 1);
        let many: BTreeMap<String, String> =
            (0..50).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(matches!(
            store.tag(&room.arn, many, 50),
            Err(ApiError::Validation { .. })
        ));
        let foreign = room.arn.replace("us-west-2", "eu-west-1");
        assert!(matches!(
            store.tags(&foreign),
            Err(ApiError::ResourceNotFound { .. })
        ));
    }

    #[test]
    fn chat_tokens_are_single_use_and_expire() {
        let mut store = store();
        let now = Timestamp::now();
        let room = store.create_room(spec("a"), None, now).expect("room");
        let (token, issued) = store
            .issue_chat_token(
                &room.arn,
                "user".into(),
                vec![],
                BTreeMap::new(),
                Duration::from_secs(3600),
                now,
            )
            .expect("token");
        assert_eq!(
            issued.token_expiration_time,
            add(millis_floor(now), CHAT_TOKEN_VALIDITY)
        );
        assert_eq!(
            store.redeem_chat_token(&token, now).map(|t| t.user_id),
            Ok("user".to_string())
        );
        assert_eq!(
            store.redeem_chat_token(&token, now),
            Err(ChatTokenRejection::AlreadyUsed)
        );
        let (token, _) = store
            .issue_chat_token(
                &room.arn,
                "user".into(),
                vec![],
                BTreeMap::new(),
                Duration::from_secs(60),
                now,
            )
            .expect("token");
        let expired = now
            .checked_add(jiff::SignedDuration::from_secs(61))
            .expect("time");
        assert_eq!(
            store.redeem_chat_token(&token, expired),
            Err(ChatTokenRejection::Expired)
        );
        assert_eq!(
            store.redeem_chat_token("nope", now),
            Err(ChatTokenRejection::Unknown)
        );
    }

    #[test]
    fn persisted_state_round_trips() {
        let mut store = store();
        let now = Timestamp::now();
        store.create_room(spec("a"), None, now).expect("room");
        store
            .create_logging_configuration("l".into(), s3(), BTreeMap::new(), &settings(), now)
            .expect("config");
        let state = store.persisted_state();
        let json = serde_json::to_string(&state).expect("serialize");
        let back: PersistedState = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, state);
        let restored = Store::from_persisted(store.scope().clone(), back);
        assert_eq!(restored.persisted_state(), state);
    }
}
