//! Opaque pagination tokens for ListRooms and ListLoggingConfigurations.
//!
//! Lists are ordered by `updateTime` descending, ties broken by id descending. A token is a *cursor*: the
//! (updateTime, id) of the last item of the previous page, so deleting items between pages never skips or repeats
//! the others. An item updated between pages moves to the front of the order; if it was not listed yet it is not
//! listed in the remaining pages either (the usual caveat of cursor pagination over a mutable order).
//!
//! A token also records which list and which filters it belongs to, and carries an HMAC under a key drawn when
//! the emulator starts, so a token that was tampered with, comes from another list or filter set, or from an
//! earlier emulator process is rejected with a ValidationException (ivschat-api.md §7).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use ivschat_api::limits::NEXT_TOKEN_CHARS;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Bytes of the HMAC kept in a token (128 bits is plenty against guessing).
const TAG_BYTES: usize = 16;

/// The model's PaginationToken length limit.
const MAX_TOKEN_LENGTH: usize = *NEXT_TOKEN_CHARS.end();

/// Position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// `updateTime` of the last item returned, in nanoseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub update_time_ns: i128,
    #[serde(rename = "i")]
    pub id: String,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Which list (`rooms` / `loggingConfigurations`).
    #[serde(rename = "l")]
    list: String,
    /// Digest of the filters the listing was started with.
    #[serde(rename = "f")]
    filters: String,
    #[serde(rename = "c")]
    cursor: Cursor,
}

/// Issues and checks the tokens of one emulator instance.
pub struct TokenCodec {
    key: [u8; 32],
}

impl Default for TokenCodec {
    fn default() -> Self {
        TokenCodec::new()
    }
}

impl TokenCodec {
    /// A codec with a fresh random key.
    pub fn new() -> Self {
        TokenCodec {
            key: rand::random(),
        }
    }

    fn mac(&self, data: &[u8]) -> Result<HmacSha256, ApiError> {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).map_err(|err| ApiError::InternalServer {
                message: format!("pagination key rejected by HMAC: {err}"),
            })?;
        mac.update(data);
        Ok(mac)
    }

    /// A token for the page after `cursor` in `list`, listed with `filters` (any stable description of them).
    pub fn issue(&self, list: &str, filters: &[&str], cursor: Cursor) -> Result<String, ApiError> {
        let payload = Payload {
            list: list.to_string(),
            filters: filter_digest(filters),
            cursor,
        };
        let json = serde_json::to_vec(&payload).map_err(|err| ApiError::InternalServer {
            message: format!("could not encode a pagination token: {err}"),
        })?;
        let tag = self.mac(&json)?.finalize().into_bytes();
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        ))
    }

    /// The cursor of a token issued by this codec for the same list and filters, or a ValidationException
    /// naming `nextToken`.
    pub fn open(&self, token: &str, list: &str, filters: &[&str]) -> Result<Cursor, ApiError> {
        let invalid = || ApiError::field("nextToken", "The pagination token is invalid or expired");
        if token.len() > MAX_TOKEN_LENGTH {
            return Err(ApiError::field(
                "nextToken",
                format!("Member must have length less than or equal to {MAX_TOKEN_LENGTH}"),
            ));
        }
        let (payload_text, tag_text) = token.split_once('.').ok_or_else(invalid)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload_text)
            .map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag_text).map_err(|_| invalid())?;
        if tag.len() != TAG_BYTES {
            return Err(invalid());
        }
        self.mac(&json)?
            .verify_truncated_left(&tag)
            .map_err(|_| invalid())?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if payload.list != list || payload.filters != filter_digest(filters) {
            return Err(ApiError::field(
                "nextToken",
                "The pagination token belongs to another list or other filters",
            ));
        }
        Ok(payload.cursor)
    }
}

fn filter_digest(filters: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for filter in filters {
        // Length-prefixed so that ("ab", "") and ("a", "b") differ.
        hasher.update((filter.len() as u64).to_be_bytes());
        hasher.update(filter.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

/// True when an item with this (update time, id) comes after `cursor` in updateTime-descending order.
pub fn is_after(cursor: &Cursor, update_time_ns: i128, id: &str) -> bool {
    (update_time_ns, id) < (cursor.update_time_ns, cursor.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            update_time_ns: 1_700_000_000_000_000_000,
            id: "abcdEFGH1234".into(),
        }
    }

    #[test]
    fn tokens_round_trip() {
        let codec = TokenCodec::new();
        let token = codec
            .issue("rooms", &["name", ""], cursor())
            .expect("issue");
        assert!(token.len() <= MAX_TOKEN_LENGTH);
        assert_eq!(
            codec.open(&token, "rooms", &["name", ""]).expect("open"),
            cursor()
        );
    }

    #[test]
    fn foreign_tampered_and_garbage_tokens_are_rejected() {
        let codec = TokenCodec::new();
        let token = codec.issue("rooms", &["name"], cursor()).expect("issue");
        let is_next_token_error = |result: Result<Cursor, ApiError>| match result {
            Err(ApiError::Validation { fields, .. }) => {
                fields.iter().any(|f| f.name == "nextToken")
            }
            _ => false,
        };
        assert!(is_next_token_error(codec.open(
            &token,
            "loggingConfigurations",
            &["name"]
        )));
        assert!(is_next_token_error(codec.open(&token, "rooms", &["other"])));
        assert!(is_next_token_error(TokenCodec::new().open(
            &token,
            "rooms",
            &["name"]
        )));
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(is_next_token_error(codec.open(
            &tampered,
            "rooms",
            &["name"]
        )));
        for garbage in ["page3", "", ".", "a.b", "%%%.%%%", &"x".repeat(2000)] {
            assert!(
                is_next_token_error(codec.open(garbage, "rooms", &["name"])),
                "{garbage}"
            );
        }
        let (payload, _) = token.split_once('.').expect("dot");
        assert!(is_next_token_error(codec.open(
            &format!("{payload}.AAAA"),
            "rooms",
            &["name"]
        )));
    }

    #[test]
    fn filter_digests_are_unambiguous() {
        assert_ne!(filter_digest(&["ab", ""]), filter_digest(&["a", "b"]));
    }

    #[test]
    fn cursor_order_is_update_time_then_id_descending() {
        let c = cursor();
        assert!(is_after(&c, c.update_time_ns - 1, "zzzzzzzzzzzz"));
        assert!(is_after(&c, c.update_time_ns, "abcdEFGH1233"));
        assert!(!is_after(&c, c.update_time_ns, "abcdEFGH1234"));
        assert!(!is_after(&c, c.update_time_ns + 1, "000000000000"));
    }
}
