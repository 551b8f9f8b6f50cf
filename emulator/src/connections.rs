//! The registry of open messaging (WebSocket) connections: which users are connected to which room, each
//! room's recent SEND_MESSAGEs for its `maximumMessageRatePerSecond` (a sliding second, all connections of
//! the room together), and the shutdown signal every connection watches. The service holds one;
//! [`crate::messaging`] registers its connections here and asks here whether a message is admitted.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The window of `maximumMessageRatePerSecond`.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Which connections are open in which room (by user), each room's recent messages for the rate limit, and
/// the shutdown signal.
pub struct Connections {
    rooms: Mutex<HashMap<String, RoomActivity>>,
    next_connection_id: AtomicU64,
    shutdown: watch::Sender<bool>,
}

#[derive(Default)]
struct RoomActivity {
    /// Connection id → user id.
    connections: HashMap<u64, String>,
    /// When the SEND_MESSAGEs accepted within the last [`RATE_WINDOW`] arrived, oldest first.
    recent_messages: VecDeque<Instant>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections::new()
    }
}

impl Connections {
    pub fn new() -> Connections {
        Connections {
            rooms: Mutex::new(HashMap::new()),
            next_connection_id: AtomicU64::new(1),
            shutdown: watch::Sender::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, RoomActivity>> {
        // Every update below is a single insert/remove/push, so a poisoned map is still consistent.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user ids of the open connections of a room (one entry per connection), sorted.
    pub fn connected_users(&self, room_arn: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .lock()
            .get(room_arn)
            .map(|room| room.connections.values().cloned().collect())
            .unwrap_or_default();
        users.sort();
        users
    }

    /// Closes every connection (code 1001); connections opened afterwards are closed at once.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// The shutdown signal a connection waits on (`true` once [`Connections::shut_down`] was called).
    pub fn watch_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Enters a connection of `user_id` to the room; it stays until the returned registration is dropped.
    pub fn register(self: &Arc<Self>, room_arn: &str, user_id: &str) -> Registration {
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(room_arn.to_string())
            .or_default()
            .connections
            .insert(id, user_id.to_string());
        Registration {
            connections: Arc::clone(self),
            room_arn: room_arn.to_string(),
            id,
        }
    }

    /// Admits one SEND_MESSAGE to the room if fewer than `limit` were admitted in the last second.
    pub fn admit_message(&self, room_arn: &str, limit: usize, now: Instant) -> bool {
        let mut rooms = self.lock();
        let recent = &mut rooms
            .entry(room_arn.to_string())
            .or_default()
            .recent_messages;
        while recent
            .front()
            .is_some_and(|&arrived| now.duration_since(arrived) >= RATE_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= limit {
            return false;
        }
        recent.push_back(now);
        true
    }
}

/// An open connection's entry in the registry; dropping it (connection ended, or the upgrade failed) removes it.
pub struct Registration {
    connections: Arc<Connections>,
    room_arn: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut rooms = self.connections.lock();
        if let Some(room) = rooms.get_mut(&self.room_arn) {
            room.connections.remove(&self.id);
            if room.connections.is_empty() {
                // Nobody left to send: the rate window no longer matters.
                rooms.remove(&self.room_arn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_rate_is_a_sliding_second() {
        let connections = Connections::new();
        let start = Instant::now();
        assert!(connections.admit_message("room", 2, start));
        assert!(connections.admit_message("room", 2, start + Duration::from_millis(500)));
        assert!(!connections.admit_message("room", 2, start + Duration::from_millis(900)));
        assert!(
            connections.admit_message("other", 2, start + Duration::from_millis(900)),
            "rooms are counted apart"
        );
        assert!(connections.admit_message("room", 2, start + Duration::from_millis(1000)));
        assert!(!connections.admit_message("room", 2, start + Duration::from_millis(1400)));
        assert!(
            connections.admit_message("room", 3, start + Duration::from_millis(1400)),
            "a raised limit applies at once"
        );
    }

    #[test]
    fn registrations_leave_the_registry_when_dropped() {
        let connections = Arc::new(Connections::new());
        let first = connections.register("room", "ada");
        let second = connections.register("room", "bob");
        assert_eq!(connections.connected_users("room"), ["ada", "bob"]);
        drop(first);
        assert_eq!(connections.connected_users("room"), ["bob"]);
        drop(second);
        assert!(connections.connected_users("room").is_empty());
        assert!(connections.lock().is_empty(), "empty rooms are forgotten");
    }
}
