//! The emulator's shared state behind the HTTP layer: the stores of every (account, region) under one lock,
//! persistence after each change, the accounts and roles, the issued session credentials, the traffic
//! switches, metrics, pagination-token codec, the room-event channel the messaging (WebSocket) connections
//! subscribe to, and the messaging endpoint's connection registry.
//!
//! An IVS Chat operation sees the service through a [`ScopedService`]: the same state restricted to the one
//! (account, region) its request was authenticated for, so the operations need not know scopes exist.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use jiff::Timestamp;
use tokio::sync::broadcast;

use super::accounts::{self, Accounts};
use super::config::EmulatorConfig;
use super::connections::Connections;
use super::error::ApiError;
use super::ids::ArnScope;
use super::metrics::Metrics;
use super::pagination::{Cursor, TokenCodec};
use super::persistence::{self, Persister};
use super::review::{MessageUnderReview, Review, Reviewer};
use super::sessions::Sessions;
use super::store::{ChatTokenRejection, IssuedChatToken, Room, ScopeSummary, Store, Stores};
use super::traffic::Traffic;

/// Buffered room events per subscriber before a slow subscriber starts missing them.
const ROOM_EVENT_BUFFER: usize = 1024;

/// Something the control plane asks the messaging side to deliver to a room's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomEvent {
    pub room_arn: String,
    /// The 12-character id returned to the caller (SendEvent, DeleteMessage) or generated (DisconnectUser).
    pub id: String,
    pub send_time: Timestamp,
    pub kind: RoomEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEventKind {
    /// SendEvent: an application event for every connection of the room.
    Event {
        name: String,
        attributes: BTreeMap<String, String>,
    },
    /// DeleteMessage: the `aws:DELETE_MESSAGE` event.
    DeleteMessage {
        message_id: String,
        reason: Option<String>,
    },
    /// DisconnectUser: the `aws:DISCONNECT_USER` event, then the user's connections close.
    DisconnectUser {
        user_id: String,
        reason: Option<String>,
    },
    /// A chat message accepted from a messaging connection (SEND_MESSAGE); `id` is the message id.
    Message {
        sender_user_id: String,
        /// The attributes of the sender's chat token.
        sender_attributes: BTreeMap<String, String>,
        content: String,
        attributes: BTreeMap<String, String>,
    },
    /// DeleteRoom: the room's messaging connections close.
    RoomDeleted,
}

pub struct Service {
    pub config: EmulatorConfig,
    /// The default account in the default region.
    pub scope: ArnScope,
    /// The regions served (see [`EmulatorConfig::enabled_regions`]).
    pub regions: Vec<String>,
    stores: Mutex<Stores>,
    accounts: RwLock<Accounts>,
    /// Session credentials issued by STS.
    sessions: Mutex<Sessions>,
    pub traffic: Traffic,
    pub metrics: Metrics,
    persister: Option<Persister>,
    pub tokens: TokenCodec,
    events: broadcast::Sender<RoomEvent>,
    /// Open messaging connections and per-room message rates (see [`super::connections`]).
    pub connections: Arc<Connections>,
    /// Invokes message review handlers (see [`super::review`]).
    reviewer: Reviewer,
}

impl Service {
    /// Builds the service, loading the state file when one is configured.
    pub fn new(config: EmulatorConfig) -> anyhow::Result<Service> {
        config.validate()?;
        let scope = ArnScope {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        };
        let (stores, persister) = match &config.state_file {
            Some(path) => {
                let state = persistence::load(path)?;
                (
                    Stores::from_persisted(state, &scope, config.chat_token_validity),
                    Some(Persister::new(path.clone(), 0)),
                )
            }
            None => (Stores::new(config.chat_token_validity), None),
        };
        let mut configured = config.accounts.clone();
        if let Some(path) = &config.accounts_file {
            configured.extend(accounts::load_accounts_file(path)?);
        }
        let accounts =
            Accounts::new(&config.account_id, &configured).map_err(anyhow::Error::msg)?;
        let (events, _) = broadcast::channel(ROOM_EVENT_BUFFER);
        Ok(Service {
            reviewer: Reviewer::new(&config.access_key_id, &config.secret_access_key),
            traffic: Traffic::new(config.runtime_settings()),
            regions: config.enabled_regions(),
            config,
            scope,
            stores: Mutex::new(stores),
            accounts: RwLock::new(accounts),
            sessions: Mutex::new(Sessions::default()),
            metrics: Metrics::default(),
            persister,
            tokens: TokenCodec::new(),
            events,
            connections: Arc::new(Connections::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Stores> {
        // A panic while holding the lock cannot leave the store half-changed in a way later requests would
        // misread (every operation validates before it mutates), so keep serving.
        self.stores.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The service restricted to one (account, region).
    pub fn scoped(&self, scope: ArnScope) -> ScopedService<'_> {
        ScopedService {
            service: self,
            traffic: &self.traffic,
            tokens: ScopedTokens {
                codec: &self.tokens,
                scope_key: format!("{}/{}", scope.account_id, scope.region),
            },
            config: &self.config,
            scope,
        }
    }

    pub fn accounts(&self) -> RwLockReadGuard<'_, Accounts> {
        self.accounts.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn accounts_mut(&self) -> RwLockWriteGuard<'_, Accounts> {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a read-only operation on the settled store of `scope`.
    fn read<T>(
        &self,
        scope: &ArnScope,
        operation: impl FnOnce(&Store, Timestamp) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let now = Timestamp::now();
        let mut stores = self.lock();
        let store = stores.scope_mut(scope);
        store.settle(now);
        operation(store, now)
    }

    /// Runs a mutating operation on the store of `scope`, then persists the new state of every scope (outside
    /// the lock) when it changed.
    async fn mutate<T>(
        &self,
        scope: &ArnScope,
        operation: impl FnOnce(&mut Store, Timestamp) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let (result, snapshot) = {
            let now = Timestamp::now();
            let mut stores = self.lock();
            let store = stores.scope_mut(scope);
            store.settle(now);
            let before = store.revision();
            let result = operation(store, now);
            let changed = store.revision() != before;
            let snapshot = (self.persister.is_some() && changed)
                .then(|| (stores.revision(), stores.persisted_state()));
            (result, snapshot)
        };
        if let (Some(persister), Some((revision, state))) = (&self.persister, snapshot)
            && let Err(err) = persister.write(revision, state).await
        {
            tracing::error!(path = %persister.path().display(), error = format!("{err:#}"), "cannot write the state file");
            return Err(ApiError::InternalServer {
                message: format!("The emulator could not save its state: {err:#}"),
            });
        }
        result
    }

    pub fn publish(&self, event: RoomEvent) {
        // No subscriber (no messaging endpoint connected) is normal: the event simply has no audience.
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RoomEvent> {
        self.events.subscribe()
    }

    pub fn redeem_chat_token(&self, token: &str) -> Result<IssuedChatToken, ChatTokenRejection> {
        let now = Timestamp::now();
        self.lock().redeem_chat_token(token, now)
    }

    /// The room an ARN names, in whichever scope the ARN names.
    pub fn room(&self, arn: &str) -> Option<Room> {
        self.lock().room(arn).cloned()
    }

    /// The rooms of one scope, ordered by id.
    pub fn rooms_in(&self, scope: &ArnScope) -> Vec<Room> {
        self.lock().rooms_in(scope)
    }

    /// Room and logging-configuration counts of every scope used so far, settled now.
    pub fn scope_summaries(&self) -> Vec<ScopeSummary> {
        let mut stores = self.lock();
        stores.settle(Timestamp::now());
        stores.summaries()
    }

    /// Reviews a message sent to `room`, which has a review handler, with the current Lambda settings;
    /// counted and logged.
    pub async fn review_message(
        &self,
        room: &Room,
        handler: &super::store::MessageReviewHandler,
        message: &MessageUnderReview,
    ) -> Review {
        let settings = self.traffic.settings().lambda;
        // A stored room's ARN always parses; its scope is where the handler must be.
        let (account_id, region) =
            super::ids::parse_arn(&room.arn).map_or(("", ""), |arn| (arn.account_id, arn.region));
        let max_length = usize::try_from(room.maximum_message_length).unwrap_or(0);
        let review = self
            .reviewer
            .review(
                &settings,
                &handler.uri,
                handler.fallback_result,
                (account_id, region),
                max_length,
                message,
            )
            .await;
        self.metrics.record_review(review.outcome, &review.verdict);
        match &review.failure {
            Some(failure) => tracing::info!(
                room = %room.arn, message = %message.message_id, handler = %handler.uri,
                outcome = review.outcome.label(), fallback = handler.fallback_result.wire_name(),
                "message review failed ({failure}): the fallbackResult decided"
            ),
            None => tracing::debug!(
                room = %room.arn, message = %message.message_id, handler = %handler.uri,
                outcome = review.outcome.label(), "message reviewed"
            ),
        }
        review
    }

    /// Whether `region` is one the emulator serves.
    pub fn serves_region(&self, region: &str) -> bool {
        self.regions.iter().any(|served| served == region)
    }
}

/// The service as one IVS Chat operation sees it: the store, quotas and pagination tokens of the request's
/// (account, region); events, settings and configuration are shared.
pub struct ScopedService<'a> {
    service: &'a Service,
    pub scope: ArnScope,
    pub traffic: &'a Traffic,
    pub tokens: ScopedTokens<'a>,
    pub config: &'a EmulatorConfig,
}

impl ScopedService<'_> {
    /// Runs a read-only operation on this scope's settled store.
    pub fn read<T>(
        &self,
        operation: impl FnOnce(&Store, Timestamp) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.service.read(&self.scope, operation)
    }

    /// Runs a mutating operation on this scope's store, then persists the state when it changed.
    pub async fn mutate<T>(
        &self,
        operation: impl FnOnce(&mut Store, Timestamp) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.service.mutate(&self.scope, operation).await
    }

    pub fn publish(&self, event: RoomEvent) {
        self.service.publish(event);
    }
}

/// Pagination tokens bound to one scope: the scope is part of what a token's HMAC covers, so a token from
/// another account or region is refused like one from another filter set.
pub struct ScopedTokens<'a> {
    codec: &'a TokenCodec,
    scope_key: String,
}

impl ScopedTokens<'_> {
    fn filters<'f>(&'f self, filters: &[&'f str]) -> Vec<&'f str> {
        let mut scoped = Vec::with_capacity(filters.len() + 1);
        scoped.push(self.scope_key.as_str());
        scoped.extend_from_slice(filters);
        scoped
    }

    pub fn issue(&self, list: &str, filters: &[&str], cursor: Cursor) -> Result<String, ApiError> {
        self.codec.issue(list, &self.filters(filters), cursor)
    }

    pub fn open(&self, token: &str, list: &str, filters: &[&str]) -> Result<Cursor, ApiError> {
        self.codec.open(token, list, &self.filters(filters))
    }
}
