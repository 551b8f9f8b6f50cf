//! The session credentials STS issued: a table from access key id (`ASIA` + 16 `[A-Z0-9]`) to the session
//! (account, role, session name, secret, token, expiry), kept in memory only (after a restart every session
//! key is unknown, as an emulator restart should look to a client: its credentials are refreshed).
//!
//! Also the identifier formats of IAM: role ids (`AROA` + 16, derived from the role so one role always has
//! the same id, as in AWS) and user ids (`AIDA` + 16).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::accounts::Principal;

/// The characters of access key ids and IAM unique ids after their prefix.
const KEY_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters after the `ASIA` / `AROA` / `AIDA` prefix.
const ID_SUFFIX_LEN: usize = 16;
/// How long an expired session stays known (answering ExpiredTokenException rather than an unknown key).
const EXPIRED_SESSION_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// One issued set of temporary credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub account_id: String,
    pub role_name: String,
    /// The role ARN as the caller named it.
    pub role_arn: String,
    pub session_name: String,
    /// Whole seconds, exactly what `Expiration` said.
    pub expiration: Timestamp,
    /// `AROA…:<session name>`.
    pub assumed_role_id: String,
}

impl Session {
    pub fn principal(&self) -> Principal {
        Principal::AssumedRole {
            account_id: self.account_id.clone(),
            role_name: self.role_name.clone(),
            session_name: self.session_name.clone(),
        }
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expiration
    }
}

/// What a session is issued for.
pub struct SessionRequest<'a> {
    pub account_id: &'a str,
    pub role_name: &'a str,
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub lifetime: Duration,
}

#[derive(Debug, Default)]
pub struct Sessions {
    by_key: HashMap<String, Session>,
    /// Table size after the last purge (purges are amortised over issues).
    after_purge: usize,
}

impl Sessions {
    /// Issues new credentials valid for `lifetime` from `now` (the expiry is rounded down to the second, so
    /// the `Expiration` the client reads is exactly when the emulator stops accepting them).
    pub fn issue(&mut self, request: &SessionRequest<'_>, now: Timestamp) -> Session {
        self.purge(now);
        let expiration = whole_seconds(add(now, request.lifetime));
        let access_key_id = loop {
            let key = format!("ASIA{}", random_id_suffix());
            if !self.by_key.contains_key(&key) {
                break key;
            }
        };
        let session = Session {
            access_key_id: access_key_id.clone(),
            secret_access_key: random_base64(30),
            session_token: format!("IQoJb3JpZ2luX2VtdWxhdG9y{}", random_base64(96)),
            account_id: request.account_id.to_owned(),
            role_name: request.role_name.to_owned(),
            role_arn: request.role_arn.to_owned(),
            session_name: request.session_name.to_owned(),
            expiration,
            assumed_role_id: format!(
                "{}:{}",
                role_id(request.account_id, request.role_name),
                request.session_name
            ),
        };
        self.by_key.insert(access_key_id, session.clone());
        session
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Session> {
        self.by_key.get(access_key_id)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn purge(&mut self, now: Timestamp) {
        if self.by_key.len() >= 2 * self.after_purge.max(1024) {
            let horizon = now
                .checked_sub(jiff::SignedDuration::from_secs(
                    EXPIRED_SESSION_RETENTION.as_secs() as i64,
                ))
                .unwrap_or(now);
            self.by_key
                .retain(|_, session| session.expiration > horizon);
            self.after_purge = self.by_key.len();
        }
    }
}

/// `AROA` + 16: the unique id of a role, the same for the same (account, role name).
pub fn role_id(account_id: &str, role_name: &str) -> String {
    format!(
        "AROA{}",
        stable_id_suffix(&format!("role:{account_id}:{role_name}"))
    )
}

/// `AIDA` + 16: the unique id of an IAM user, the same for the same (account, user name).
pub fn user_id(account_id: &str, user_name: &str) -> String {
    format!(
        "AIDA{}",
        stable_id_suffix(&format!("user:{account_id}:{user_name}"))
    )
}

/// The unique id GetCallerIdentity answers as `UserId`: `AIDA…` for a user, `AROA…:<session>` for a
/// session (the same as its `AssumedRoleId`).
pub fn principal_id(principal: &Principal) -> String {
    match principal {
        Principal::User { account_id, name } => user_id(account_id, name),
        Principal::AssumedRole {
            account_id,
            role_name,
            session_name,
        } => format!("{}:{session_name}", role_id(account_id, role_name)),
    }
}

/// True for a key STS issues (`ASIA` + 16 `[A-Z0-9]`).
pub fn is_session_key(access_key_id: &str) -> bool {
    access_key_id.len() == 4 + ID_SUFFIX_LEN
        && access_key_id.starts_with("ASIA")
        && access_key_id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn random_id_suffix() -> String {
    (0..ID_SUFFIX_LEN)
        .map(|_| char::from(KEY_CHARS[rand::random_range(0..KEY_CHARS.len())]))
        .collect()
}

fn stable_id_suffix(seed: &str) -> String {
    Sha256::digest(seed.as_bytes())
        .iter()
        .take(ID_SUFFIX_LEN)
        .map(|byte| char::from(KEY_CHARS[usize::from(*byte) % KEY_CHARS.len()]))
        .collect()
}

/// `bytes` random bytes as standard base64 (the alphabet of AWS secrets and session tokens).
fn random_base64(bytes: usize) -> String {
    let data: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(data)
}

fn add(time: Timestamp, duration: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(duration)
        .ok()
        .and_then(|duration| time.checked_add(duration).ok())
        .unwrap_or(Timestamp::MAX)
}

fn whole_seconds(time: Timestamp) -> Timestamp {
    Timestamp::from_second(time.as_second()).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lifetime: Duration) -> SessionRequest<'static> {
        SessionRequest {
            account_id: "111122223333",
            role_name: "ivs-operator",
            role_arn: "arn:aws:iam::111122223333:role/ivs-operator",
            session_name: "op",
            lifetime,
        }
    }

    #[test]
    fn issued_credentials_have_the_aws_formats() {
        let mut sessions = Sessions::default();
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let session = sessions.issue(&request(Duration::from_secs(900)), now);
        assert!(
            is_session_key(&session.access_key_id),
            "{}",
            session.access_key_id
        );
        assert_eq!(session.secret_access_key.len(), 40);
        assert!(session.session_token.len() > 100);
        assert_eq!(session.expiration.as_second(), 1_800_000_900);
        assert!(session.assumed_role_id.starts_with("AROA"));
        assert!(session.assumed_role_id.ends_with(":op"));
        assert_eq!(
            session.principal().arn(),
            "arn:aws:sts::111122223333:assumed-role/ivs-operator/op"
        );
        assert_eq!(sessions.get(&session.access_key_id), Some(&session));
        let again = sessions.issue(&request(Duration::from_secs(900)), now);
        assert_ne!(again.access_key_id, session.access_key_id);
        assert_ne!(again.session_token, session.session_token);
        assert_eq!(
            again.assumed_role_id, session.assumed_role_id,
            "a role's id is stable"
        );
        assert_eq!(principal_id(&session.principal()), session.assumed_role_id);
        assert_eq!(sessions.len(), 2);
    }

    #[test]
    fn expiry_is_whole_seconds_and_inclusive() {
        let mut sessions = Sessions::default();
        let now = Timestamp::from_millisecond(1_800_000_000_700).expect("time");
        let session = sessions.issue(&request(Duration::from_secs(2)), now);
        assert_eq!(session.expiration.as_second(), 1_800_000_002);
        assert!(!session.is_expired(now));
        assert!(session.is_expired(Timestamp::from_second(1_800_000_002).expect("time")));
    }

    #[test]
    fn ids_have_their_prefixes() {
        assert!(user_id("123456789012", "emulator").starts_with("AIDA"));
        assert_eq!(role_id("1", "a"), role_id("1", "a"));
        assert_ne!(role_id("1", "a"), role_id("1", "b"));
        assert!(!is_session_key("AKIAABCDEFGHIJKLMNOP"));
        assert!(!is_session_key("ASIAabcdefghijklmnop"));
    }
}
