//! The emulator's shared state behind the HTTP layer: the store under one lock, persistence after each change,
//! the traffic switches, metrics, pagination-token codec, the room-event channel the messaging (WebSocket)
//! connections subscribe to, and the messaging endpoint's connection registry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use tokio::sync::broadcast;

use super::config::EmulatorConfig;
use super::connections::Connections;
use super::error::ApiError;
use super::ids::ArnScope;
use super::metrics::Metrics;
use super::pagination::TokenCodec;
use super::persistence::{self, Persister};
use super::store::{ChatTokenRejection, IssuedChatToken, Room, Store};
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
    pub scope: ArnScope,
    store: Mutex<Store>,
    pub traffic: Traffic,
    pub metrics: Metrics,
    persister: Option<Persister>,
    pub tokens: TokenCodec,
    events: broadcast::Sender<RoomEvent>,
    /// Open messaging connections and per-room message rates (see [`super::connections`]).
    pub connections: Arc<Connections>,
}

impl Service {
    /// Builds the service, loading the state file when one is configured.
    pub fn new(config: EmulatorConfig) -> anyhow::Result<Service> {
        config.validate()?;
        let scope = ArnScope {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        };
        let (mut store, persister) = match &config.state_file {
            Some(path) => {
                let state = persistence::load(path)?;
                (
                    Store::from_persisted(scope.clone(), state),
                    Some(Persister::new(path.clone(), 0)),
                )
            }
            None => (Store::new(scope.clone()), None),
        };
        store.set_chat_token_validity(config.chat_token_validity);
        let (events, _) = broadcast::channel(ROOM_EVENT_BUFFER);
        Ok(Service {
            traffic: Traffic::new(config.runtime_settings()),
            config,
            scope,
            store: Mutex::new(store),
            metrics: Metrics::default(),
            persister,
            tokens: TokenCodec::new(),
            events,
            connections: Arc::new(Connections::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the store half-changed in a way later requests would
        // misread (every operation validates before it mutates), so keep serving.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a read-only operation on the settled store.
    pub fn read<T>(
        &self,
        operation: impl FnOnce(&Store, Timestamp) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let now = Timestamp::now();
        let mut store = self.lock();
        store.settle(now);
        operation(&store, now)
    }

    /// Runs a mutating operation, then persists the new state (outside the lock) when it changed.
    pub async fn mutate<T>(
        &self,
        operation: impl FnOnce(&mut Store, Timestamp) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let (result, snapshot) = {
            let now = Timestamp::now();
            let mut store = self.lock();
            store.settle(now);
            let before = store.revision();
            let result = operation(&mut store, now);
            let changed = store.revision() != before;
            let snapshot = (self.persister.is_some() && changed)
                .then(|| (store.revision(), store.persisted_state()));
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

    pub fn room(&self, arn: &str) -> Option<Room> {
        self.lock().room(arn).ok().cloned()
    }
}
