//! Rooms: create (within the room quota), update (a patch), delete, list with filters, and which logging
//! configurations a room may have attached.

use jiff::Timestamp;

use crate::error::ApiError;
use crate::ids::ResourceKind;
use crate::lifecycle::LoggingState;
use crate::pagination::Cursor;

use super::model::{
    FallbackResult, HandlerChange, MessageReviewHandler, Page, Room, RoomFilter, RoomPatch,
    RoomSpec,
};
use super::{Store, dedup, paginate};

impl Store {
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
}
