//! Who signed a request: SigV4 verification ([`super::sigv4`]) against every key the emulator knows (the
//! static pair and the STS-issued session keys), then the session's own checks. Both the IVS Chat front end
//! and STS authenticate through [`authenticate`]; each answers a failure in its protocol's words.
//!
//! For a session key (`ASIA…`), in order, after the signature verified with the session's secret:
//! 1. `X-Amz-Security-Token` must be present and equal to the session's token, else the failure is
//!    [`AuthFailure::Signature`] with [`AuthError::UnrecognizedClient`] (IVS Chat:
//!    `UnrecognizedClientException`, "The security token included in the request is invalid.", the
//!    verifier's existing choice for a key it does not know; STS: `InvalidClientTokenId`);
//! 2. the session must not have expired ([`AuthFailure::Expired`]: `ExpiredTokenException`, "The security
//!    token included in the request is expired").
//!
//! Whether the role is revoked is not decided here: IVS Chat refuses a revoked role's sessions
//! (`AccessDeniedException`) while STS still answers their GetCallerIdentity, as AWS does under a deny.
//! The static key needs no token; one sent with it is ignored, as before sessions existed.

use jiff::Timestamp;

use crate::accounts::{Principal, STATIC_USER_NAME};
use crate::ids::ArnScope;
use crate::service::Service;
use crate::sessions::Session;
use crate::sigv4::{self, AuthError, SignedParts};

/// The header a session key's requests carry their token in.
pub const SECURITY_TOKEN_HEADER: &str = "x-amz-security-token";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// The region the request was signed for.
    pub region: String,
    /// The session, for a session key.
    pub session: Option<Session>,
}

impl Caller {
    /// The (account, region) the caller's IVS Chat requests act in.
    pub fn scope(&self) -> ArnScope {
        ArnScope::new(self.principal.account_id(), &self.region)
    }
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// The signature, the key or the session token (see the module docs).
    Signature(AuthError),
    /// A session key whose session expired.
    Expired,
}

/// Verifies the request's signature for `signing_service`, scoped to one of `regions`, and returns its
/// caller.
pub fn authenticate(
    service: &Service,
    request: &SignedParts<'_>,
    regions: &[&str],
    signing_service: &str,
    now: Timestamp,
) -> Result<Caller, AuthFailure> {
    let config = &service.config;
    let secret_for = |access_key_id: &str| {
        if access_key_id == config.access_key_id {
            Some(config.secret_access_key.clone())
        } else {
            service
                .sessions()
                .get(access_key_id)
                .map(|session| session.secret_access_key.clone())
        }
    };
    let verified = sigv4::verify_scoped(request, &secret_for, regions, signing_service, now)
        .map_err(AuthFailure::Signature)?;
    if verified.access_key_id == config.access_key_id {
        return Ok(Caller {
            principal: Principal::User {
                account_id: config.account_id.clone(),
                name: STATIC_USER_NAME.to_owned(),
            },
            region: verified.region,
            session: None,
        });
    }
    let session = service
        .sessions()
        .get(&verified.access_key_id)
        .cloned()
        .ok_or(AuthFailure::Signature(AuthError::UnrecognizedClient))?;
    let token = request
        .headers
        .get(SECURITY_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok());
    check_session(&session, token, now)?;
    Ok(Caller {
        principal: session.principal(),
        region: verified.region,
        session: Some(session),
    })
}

/// The checks of a verified session key: its token, then its expiry.
pub fn check_session(
    session: &Session,
    token: Option<&str>,
    now: Timestamp,
) -> Result<(), AuthFailure> {
    let token_matches = token.is_some_and(|token| {
        use subtle::ConstantTimeEq as _;
        bool::from(token.as_bytes().ct_eq(session.session_token.as_bytes()))
    });
    if !token_matches {
        return Err(AuthFailure::Signature(AuthError::UnrecognizedClient));
    }
    if session.is_expired(now) {
        return Err(AuthFailure::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sessions::{SessionRequest, Sessions};

    #[test]
    fn a_session_needs_its_token_then_its_time() {
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let session = Sessions::default().issue(
            &SessionRequest {
                account_id: "111122223333",
                role_name: "r",
                role_arn: "arn:aws:iam::111122223333:role/r",
                session_name: "s",
                lifetime: Duration::from_secs(60),
            },
            now,
        );
        let token = session.session_token.clone();
        assert_eq!(check_session(&session, Some(&token), now), Ok(()));
        let unrecognized = Err(AuthFailure::Signature(AuthError::UnrecognizedClient));
        assert_eq!(check_session(&session, None, now), unrecognized);
        assert_eq!(check_session(&session, Some("other"), now), unrecognized);
        let later = Timestamp::from_second(1_800_000_060).expect("time");
        assert_eq!(
            check_session(&session, Some(&token), later),
            Err(AuthFailure::Expired)
        );
        assert_eq!(
            check_session(&session, Some("other"), later),
            unrecognized,
            "a wrong token is not told it expired"
        );
    }
}
