//! Chat tokens: issued by CreateChatToken, redeemed once by the messaging endpoint before they expire, kept in
//! memory only.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::error::ApiError;
use crate::ids;

use super::model::{ChatTokenRejection, IssuedChatToken};
use super::{ChatTokenEntry, Store, add, millis_floor};

impl Store {
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
