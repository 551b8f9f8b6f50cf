//! The store's resources and the values its operations take and give: rooms, logging configurations (with
//! their lifecycle), chat tokens, room specs and patches, filters, pages and the persisted state.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::lifecycle::{LoggingState, Observed, Transition};
use crate::pagination::Cursor;

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
