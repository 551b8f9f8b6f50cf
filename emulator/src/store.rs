//! The resource store: rooms, logging configurations, their tags and issued chat tokens, with the invariants
//! that span resources (quotas, attachments between rooms and logging configurations, lifecycle, unique ids,
//! strictly increasing update times). Everything here is synchronous and pure over `now`; callers hold one lock
//! around the store for the duration of an operation.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ivschat_api::limits::CHAT_TOKEN_VALIDITY;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::config::{RuntimeSettings, TransitionFailures};
use super::error::ApiError;
use super::ids::{self, ArnScope, ResourceKind};
use super::lifecycle::{LoggingState, Observed, Transition, TransitionKind};
use super::pagination::{self, Cursor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FallbackResult {
    Allow,
    Deny,
}

impl FallbackResult {
    pub fn wire_name(self) -> &'static str {
        match self {
            FallbackResult::Allow => "ALLOW",
            FallbackResult::Deny => "DENY",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageReviewHandler {
    pub uri: String,
    pub fallback_result: FallbackResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub maximum_message_rate_per_second: i64,
    pub maximum_message_length: i64,
    pub message_review_handler: Option<MessageReviewHandler>,
    /// Logging-configuration ARNs, in the order given, without duplicates.
    pub logging_configuration_identifiers: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// The DestinationConfiguration union.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Destination {
    S3 { bucket_name: String },
    CloudWatchLogs { log_group_name: String },
    Firehose { delivery_stream_name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingConfiguration {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub destination: Destination,
    pub tags: BTreeMap<String, String>,
    /// The state once no transition is running.
    pub settled_state: LoggingState,
    /// The transition in flight, if any (see the lifecycle module).
    pub transition: Option<Transition>,
}

impl LoggingConfiguration {
    /// The state reported at `now`.
    pub fn state(&self, now: Timestamp) -> LoggingState {
        match self
            .transition
            .as_ref()
            .map(|transition| transition.observe(now))
        {
            Some(Observed::Exists(state)) => state,
            // Only reachable before `settle` ran; the configuration is about to disappear.
            Some(Observed::Gone) => LoggingState::Deleting,
            None => self.settled_state,
        }
    }
}

/// Settings of a new room (already validated, defaults applied).
#[derive(Debug, Clone)]
pub struct RoomSpec {
    pub name: String,
    pub maximum_message_rate_per_second: i64,
    pub maximum_message_length: i64,
    pub message_review_handler: Option<MessageReviewHandler>,
    pub logging_configuration_identifiers: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// How UpdateRoom changes the review handler.
#[derive(Debug, Clone, PartialEq)]
pub enum HandlerChange {
    Keep,
    Remove,
    /// Set the URI (and the fallback result if given; otherwise keep the current one, or ALLOW).
    Set {
        uri: String,
        fallback_result: Option<FallbackResult>,
    },
    /// Only change the fallback result of the current handler (no effect without one).
    Fallback(FallbackResult),
}

/// UpdateRoom: `None` members stay unchanged.
#[derive(Debug, Clone)]
pub struct RoomPatch {
    pub name: Option<String>,
    pub maximum_message_rate_per_second: Option<i64>,
    pub maximum_message_length: Option<i64>,
    pub message_review_handler: HandlerChange,
    pub logging_configuration_identifiers: Option<Vec<String>>,
}

/// ListRooms filters (empty strings were already mapped to `None`).
#[derive(Debug, Clone, Default)]
pub struct RoomFilter {
    pub name: Option<String>,
    pub message_review_handler_uri: Option<String>,
    pub logging_configuration_identifier: Option<String>,
}

/// One page of a listing plus the cursor of its last item when more items follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// A chat token issued by CreateChatToken, kept for the messaging (WebSocket) endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedChatToken {
    pub room_arn: String,
    pub user_id: String,
    pub capabilities: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub token_expiration_time: Timestamp,
    pub session_duration: Duration,
    pub session_expiration_time: Timestamp,
}

/// Why a chat token cannot open a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTokenRejection {
    Unknown,
    AlreadyUsed,
    Expired,
    RoomGone,
}

/// What the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistedState {
    pub rooms: Vec<Room>,
    pub logging_configurations: Vec<LoggingConfiguration>,
}

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

    /// Checks that every logging configuration to attach exists (404) and is ACTIVE (409). Identifiers in
    /// `already_attached` are not re-checked, so a room keeps working while its configuration is being updated.
    fn check_attachable(
        &self,
        identifiers: &[String],
        already_attached: &[String],
        now: Timestamp,
    ) -> Result<(), ApiError> {
        for identifier in identifiers {
            let config = self.logging_configuration(identifier)?;
            if already_attached.contains(identifier) {
                continue;
            }
            let state = config.state(now);
            if state != LoggingState::Active {
                return Err(ApiError::conflict(
                    format!(
                        "Logging configuration {identifier} is {} and cannot be attached to a room",
                        state.wire_name()
                    ),
                    config.id.clone(),
                ));
            }
        }
        Ok(())
    }

    // ---- rooms ------------------------------------------------------------------------------------------

    pub fn create_room(
        &mut self,
        spec: RoomSpec,
        room_quota: Option<u32>,
        now: Timestamp,
    ) -> Result<Room, ApiError> {
        if let Some(limit) = room_quota
            && self.rooms.len() >= limit as usize
        {
            return Err(ApiError::ServiceQuotaExceeded {
                message: format!("The maximum number of rooms ({limit}) has been reached"),
                resource_id: self.scope.account_id.clone(),
                limit,
            });
        }
        let identifiers = dedup(spec.logging_configuration_identifiers);
        self.check_attachable(&identifiers, &[], now)?;
        let id = self.unused_id(ResourceKind::Room);
        let time = self.next_time(now);
        let room = Room {
            arn: self.scope.arn(ResourceKind::Room, &id),
            id: id.clone(),
            name: spec.name,
            create_time: time,
            update_time: time,
            maximum_message_rate_per_second: spec.maximum_message_rate_per_second,
            maximum_message_length: spec.maximum_message_length,
            message_review_handler: spec.message_review_handler,
            logging_configuration_identifiers: identifiers,
            tags: spec.tags,
        };
        self.rooms.insert(id, room.clone());
        self.changed();
        Ok(room)
    }

    pub fn update_room(
        &mut self,
        identifier: &str,
        patch: RoomPatch,
        now: Timestamp,
    ) -> Result<Room, ApiError> {
        let current = self
            .room(identifier)?
            .logging_configuration_identifiers
            .clone();
        let identifiers = patch.logging_configuration_identifiers.map(dedup);
        if let Some(identifiers) = &identifiers {
            self.check_attachable(identifiers, &current, now)?;
        }
        let time = self.next_time(now);
        let room = self.room_mut(identifier)?;
        if let Some(name) = patch.name {
            room.name = name;
        }
        if let Some(rate) = patch.maximum_message_rate_per_second {
            room.maximum_message_rate_per_second = rate;
        }
        if let Some(length) = patch.maximum_message_length {
            room.maximum_message_length = length;
        }
        match patch.message_review_handler {
            HandlerChange::Keep => {}
            HandlerChange::Remove => room.message_review_handler = None,
            HandlerChange::Set {
                uri,
                fallback_result,
            } => {
                let fallback_result = fallback_result
                    .or(room
                        .message_review_handler
                        .as_ref()
                        .map(|handler| handler.fallback_result))
                    .unwrap_or(FallbackResult::Allow);
                room.message_review_handler = Some(MessageReviewHandler {
                    uri,
                    fallback_result,
                });
            }
            HandlerChange::Fallback(fallback_result) => {
                if let Some(handler) = &mut room.message_review_handler {
                    handler.fallback_result = fallback_result;
                }
            }
        }
        if let Some(identifiers) = identifiers {
            room.logging_configuration_identifiers = identifiers;
        }
        room.update_time = time;
        let room = room.clone();
        self.changed();
        Ok(room)
    }

    pub fn delete_room(&mut self, identifier: &str) -> Result<(), ApiError> {
        let id = self.room(identifier)?.id.clone();
        self.rooms.remove(&id);
        self.changed();
        Ok(())
    }

    /// Rooms matching `filter` (ANDed), updateTime descending, at most `limit`, after `after`.
    pub fn list_rooms(
        &self,
        filter: &RoomFilter,
        limit: usize,
        after: Option<&Cursor>,
    ) -> Result<Page<Room>, ApiError> {
        if let Some(identifier) = &filter.logging_configuration_identifier {
            self.logging_configuration(identifier)?;
        }
        let matching = self.rooms.values().filter(|room| {
            filter.name.as_ref().is_none_or(|name| &room.name == name)
                && filter
                    .message_review_handler_uri
                    .as_ref()
                    .is_none_or(|uri| {
                        room.message_review_handler
                            .as_ref()
                            .is_some_and(|handler| &handler.uri == uri)
                    })
                && filter
                    .logging_configuration_identifier
                    .as_ref()
                    .is_none_or(|arn| room.logging_configuration_identifiers.contains(arn))
        });
        Ok(paginate(
            matching,
            |room| (room.update_time, room.id.as_str()),
            limit,
            after,
        ))
    }

    // ---- logging configurations -------------------------------------------------------------------------

    pub fn create_logging_configuration(
        &mut self,
        name: String,
        destination: Destination,
        tags: BTreeMap<String, String>,
        settings: &RuntimeSettings,
        now: Timestamp,
    ) -> Result<LoggingConfiguration, ApiError> {
        let limit = settings.logging_configuration_quota;
        if self.logging_configurations.len() >= limit as usize {
            return Err(ApiError::ServiceQuotaExceeded {
                message: format!(
                    "The maximum number of logging configurations ({limit}) has been reached"
                ),
                resource_id: self.scope.account_id.clone(),
                limit,
            });
        }
        let id = self.unused_id(ResourceKind::LoggingConfiguration);
        let time = self.next_time(now);
        let transition = start_transition(TransitionKind::Create, settings, now);
        let config = LoggingConfiguration {
            arn: self.scope.arn(ResourceKind::LoggingConfiguration, &id),
            id: id.clone(),
            name,
            create_time: time,
            update_time: time,
            destination,
            tags,
            settled_state: LoggingState::Active,
            transition,
        };
        self.logging_configurations.insert(id, config.clone());
        self.changed();
        Ok(config)
    }

    pub fn update_logging_configuration(
        &mut self,
        identifier: &str,
        name: Option<String>,
        destination: Option<Destination>,
        settings: &RuntimeSettings,
        now: Timestamp,
    ) -> Result<LoggingConfiguration, ApiError> {
        ensure_not_transitioning(self.logging_configuration(identifier)?, now)?;
        let time = self.next_time(now);
        let transition = start_transition(TransitionKind::Update, settings, now);
        let config = self.logging_configuration_mut(identifier)?;
        if let Some(name) = name {
            config.name = name;
        }
        if let Some(destination) = destination {
            config.destination = destination;
        }
        config.update_time = time;
        match transition {
            Some(transition) => config.transition = Some(transition),
            None => config.settled_state = LoggingState::Active,
        }
        let config = config.clone();
        self.changed();
        Ok(config)
    }

    pub fn delete_logging_configuration(
        &mut self,
        identifier: &str,
        settings: &RuntimeSettings,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let config = self.logging_configuration(identifier)?;
        ensure_not_transitioning(config, now)?;
        let arn = config.arn.clone();
        let id = config.id.clone();
        if let Some(room) = self
            .rooms
            .values()
            .find(|room| room.logging_configuration_identifiers.contains(&arn))
        {
            return Err(ApiError::conflict(
                format!(
                    "Logging configuration {arn} is attached to room {} and cannot be deleted",
                    room.arn
                ),
                id,
            ));
        }
        match start_transition(TransitionKind::Delete, settings, now) {
            None => {
                self.logging_configurations.remove(&id);
            }
            Some(transition) => {
                if let Some(config) = self.logging_configurations.get_mut(&id) {
                    config.transition = Some(transition);
                }
            }
        }
        self.changed();
        Ok(())
    }

    pub fn list_logging_configurations(
        &self,
        limit: usize,
        after: Option<&Cursor>,
    ) -> Page<LoggingConfiguration> {
        paginate(
            self.logging_configurations.values(),
            |config| (config.update_time, config.id.as_str()),
            limit,
            after,
        )
    }

    // ---- tags -------------------------------------------------------------------------------------------

    fn tags_mut(&mut self, arn: &str) -> Result<&mut BTreeMap<String, String>, ApiError> {
        let kind = ids::parse_arn(arn).map(|parsed| parsed.kind);
        match kind {
            Some(ResourceKind::Room) => Ok(&mut self.room_mut(arn)?.tags),
            Some(ResourceKind::LoggingConfiguration) => {
                Ok(&mut self.logging_configuration_mut(arn)?.tags)
            }
            None => Err(ApiError::not_found(
                format!("Resource {arn} not found"),
                ids::resource_id_for_error(arn),
            )),
        }
    }

    pub fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, ApiError> {
        match ids::parse_arn(arn).map(|parsed| parsed.kind) {
            Some(ResourceKind::Room) => Ok(self.room(arn)?.tags.clone()),
            Some(ResourceKind::LoggingConfiguration) => {
                Ok(self.logging_configuration(arn)?.tags.clone())
            }
            None => Err(ApiError::not_found(
                format!("Resource {arn} not found"),
                ids::resource_id_for_error(arn),
            )),
        }
    }

    /// Adds or overwrites tags; the result may hold at most `max_tags` (ValidationException otherwise).
    pub fn tag(
        &mut self,
        arn: &str,
        tags: BTreeMap<String, String>,
        max_tags: usize,
    ) -> Result<(), ApiError> {
        let current = self.tags_mut(arn)?;
        let new_keys = tags
            .keys()
            .filter(|key| !current.contains_key(*key))
            .count();
        if current.len() + new_keys > max_tags {
            return Err(ApiError::field(
                "tags",
                format!(
                    "A resource can have at most {max_tags} tags; it has {} and {new_keys} would be added",
                    current.len()
                ),
            ));
        }
        current.extend(tags);
        self.changed();
        Ok(())
    }

    /// Removes tags; keys that are not present are ignored (UntagResource is idempotent).
    pub fn untag(&mut self, arn: &str, keys: &[String]) -> Result<(), ApiError> {
        let current = self.tags_mut(arn)?;
        let removed = keys
            .iter()
            .filter(|key| current.remove(key.as_str()).is_some())
            .count();
        if removed > 0 {
            self.changed();
        }
        Ok(())
    }

    // ---- chat tokens ------------------------------------------------------------------------------------

    /// Sets how long chat tokens issued from now on can be redeemed.
    pub fn set_chat_token_validity(&mut self, validity: Duration) {
        self.chat_token_validity = validity;
    }

    /// Records an issued chat token (the room must exist) and returns it.
    pub fn issue_chat_token(
        &mut self,
        room_identifier: &str,
        user_id: String,
        capabilities: Vec<String>,
        attributes: BTreeMap<String, String>,
        session_duration: Duration,
        now: Timestamp,
    ) -> Result<(String, IssuedChatToken), ApiError> {
        let room_arn = self.room(room_identifier)?.arn.clone();
        let now = millis_floor(now);
        let issued = IssuedChatToken {
            room_arn,
            user_id,
            capabilities,
            attributes,
            token_expiration_time: add(now, self.chat_token_validity),
            session_duration,
            session_expiration_time: add(now, session_duration),
        };
        self.purge_expired_chat_tokens(now);
        let token = ids::new_chat_token();
        self.chat_tokens.insert(
            token.clone(),
            ChatTokenEntry {
                issued: issued.clone(),
                used: false,
            },
        );
        Ok((token, issued))
    }

    fn purge_expired_chat_tokens(&mut self, now: Timestamp) {
        if self.chat_tokens.len() >= 2 * self.chat_tokens_after_purge.max(512) {
            self.chat_tokens
                .retain(|_, entry| !entry.used && entry.issued.token_expiration_time > now);
            self.chat_tokens_after_purge = self.chat_tokens.len();
        }
    }

    /// Redeems a chat token for one messaging connection: each token works once, before it expires, while its
    /// room exists.
    pub fn redeem_chat_token(
        &mut self,
        token: &str,
        now: Timestamp,
    ) -> Result<IssuedChatToken, ChatTokenRejection> {
        let entry = self
            .chat_tokens
            .get(token)
            .ok_or(ChatTokenRejection::Unknown)?;
        if entry.used {
            return Err(ChatTokenRejection::AlreadyUsed);
        }
        if now >= entry.issued.token_expiration_time {
            return Err(ChatTokenRejection::Expired);
        }
        if self.room(&entry.issued.room_arn).is_err() {
            return Err(ChatTokenRejection::RoomGone);
        }
        let issued = entry.issued.clone();
        if let Some(entry) = self.chat_tokens.get_mut(token) {
            entry.used = true;
        }
        Ok(issued)
    }
}

fn add(time: Timestamp, duration: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|duration| time.checked_add(duration).ok())
        .unwrap_or(Timestamp::MAX)
}

fn start_transition(
    kind: TransitionKind,
    settings: &RuntimeSettings,
    now: Timestamp,
) -> Option<Transition> {
    let TransitionFailures {
        create,
        update,
        delete,
    } = settings.fail_transitions;
    let fails = match kind {
        TransitionKind::Create => create,
        TransitionKind::Update => update,
        TransitionKind::Delete => delete,
    };
    // With no delay and no failure the transition is over at once: no need to record it.
    if settings.logging_transition_delay.is_zero() && !fails {
        return None;
    }
    Some(Transition::start(
        kind,
        now,
        settings.logging_transition_delay,
        fails,
    ))
}

fn ensure_not_transitioning(config: &LoggingConfiguration, now: Timestamp) -> Result<(), ApiError> {
    let state = config.state(now);
    if state.is_transitioning() {
        return Err(ApiError::conflict(
            format!(
                "Logging configuration {} is {}; retry when the operation has finished",
                config.arn,
                state.wire_name()
            ),
            config.id.clone(),
        ));
    }
    Ok(())
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
    use super::*;

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
            ..slow
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
