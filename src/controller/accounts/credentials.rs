//! The credentials of one ChatAccount: sessions of its role, assumed with STS AssumeRole from the
//! operator's own identity, cached and renewed before they expire.
//!
//! aws-config's `AssumeRoleProvider` does not cache (each call is an AssumeRole), and the SDK's identity
//! cache is partitioned per provider and capped at 64 partitions. So the cache is here, one per account,
//! shared by that account's clients in every region, and the clients run without an identity cache of
//! their own. Renewal happens on the request path once a quarter of the session (at most 5 minutes) is
//! left, so calls never carry credentials about to expire. A failed AssumeRole is remembered for
//! [`FAILURE_HOLD`] and answered from memory meanwhile: a revoked role then costs one STS call per hold,
//! not one per AWS call of every object in the account.

use crate::metrics::Metrics;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use aws_sdk_ivschat::error::ProvideErrorMetadata;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How long a failed AssumeRole is answered from memory before STS is asked again.
pub const FAILURE_HOLD: Duration = Duration::from_secs(5);

/// Most of a session left unused: renewal starts once less than this remains (or a quarter of it).
const MAX_RENEWAL_MARGIN: Duration = Duration::from_secs(300);

/// Why the role could not be assumed, as STS said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumeFailure {
    /// The STS error code (`AccessDenied`, `ExpiredToken`, ...) or, without an answer, `StsUnavailable`.
    pub code: String,
    pub message: String,
    /// Whether STS answered (a refusal needs outside help; no answer is retried like any outage).
    pub refused: bool,
}

impl std::fmt::Display for AssumeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A session of the role as the account's status reports it.
#[derive(Clone, Debug)]
pub struct Session {
    pub credentials: Credentials,
    pub account_id: Option<String>,
    pub obtained: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    session: Option<Session>,
    failure: Option<(Instant, AssumeFailure)>,
}

/// One ChatAccount's role sessions (see the module docs).
#[derive(Debug)]
pub struct AccountCredentials {
    /// The ChatAccount's name, for logs and metrics.
    account: String,
    provider: aws_config::sts::AssumeRoleProvider,
    state: Mutex<State>,
    /// One AssumeRole at a time: callers that find the session due wait for the renewal under way.
    renewal: tokio::sync::Mutex<()>,
    metrics: Metrics,
}

impl AccountCredentials {
    pub fn new(
        account: &str,
        provider: aws_config::sts::AssumeRoleProvider,
        metrics: Metrics,
    ) -> Self {
        AccountCredentials {
            account: account.to_owned(),
            provider,
            state: Mutex::new(State::default()),
            renewal: tokio::sync::Mutex::new(()),
            metrics,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current session if it is not due for renewal, else a new one (or the remembered failure).
    pub async fn current(&self) -> Result<Session, AssumeFailure> {
        if let Some(usable) = self.usable(SystemTime::now()) {
            return usable;
        }
        let _renewal = self.renewal.lock().await;
        // Another caller may have renewed while this one waited.
        if let Some(usable) = self.usable(SystemTime::now()) {
            return usable;
        }
        self.assume().await
    }

    /// A new session now, whatever the cached one (the account's check: a revoked role shows at once).
    pub async fn assume_now(&self) -> Result<Session, AssumeFailure> {
        let _renewal = self.renewal.lock().await;
        self.assume().await
    }

    /// The last AssumeRole's failure, while it is the latest outcome.
    pub fn failure(&self) -> Option<AssumeFailure> {
        self.state()
            .failure
            .as_ref()
            .map(|(_, failure)| failure.clone())
    }

    fn usable(&self, now: SystemTime) -> Option<Result<Session, AssumeFailure>> {
        let state = self.state();
        if let Some((at, failure)) = &state.failure
            && at.elapsed() < FAILURE_HOLD
        {
            return Some(Err(failure.clone()));
        }
        let session = state.session.as_ref()?;
        (!renewal_due(session, now)).then(|| Ok(session.clone()))
    }

    async fn assume(&self) -> Result<Session, AssumeFailure> {
        let outcome = self.provider.provide_credentials().await;
        let mut state = self.state();
        match outcome {
            Ok(credentials) => {
                self.metrics.credentials_assumed(&self.account, "success");
                let session = Session {
                    account_id: credentials.account_id().map(|id| id.as_str().to_owned()),
                    credentials,
                    obtained: SystemTime::now(),
                };
                state.failure = None;
                state.session = Some(session.clone());
                tracing::debug!(account = %self.account, expires = ?session.credentials.expiry(), "assumed the account's role");
                Ok(session)
            }
            Err(error) => {
                let failure = failure_of(&error);
                self.metrics.credentials_assumed(
                    &self.account,
                    if failure.refused {
                        "refused"
                    } else {
                        "unavailable"
                    },
                );
                tracing::warn!(account = %self.account, %failure, "cannot assume the account's role");
                state.failure = Some((Instant::now(), failure.clone()));
                // A refused role (revoked, untrusted) must not keep acting on an older session.
                if failure.refused {
                    state.session = None;
                }
                Err(failure)
            }
        }
    }
}

/// Whether a session should be renewed at `now`: once less than a quarter of it (at most
/// [`MAX_RENEWAL_MARGIN`]) is left. A session without an expiry is kept 15 minutes.
pub fn renewal_due(session: &Session, now: SystemTime) -> bool {
    let expiry = session
        .credentials
        .expiry()
        .unwrap_or(session.obtained + Duration::from_secs(900));
    let lifetime = expiry
        .duration_since(session.obtained)
        .unwrap_or(Duration::ZERO);
    let margin = (lifetime / 4).min(MAX_RENEWAL_MARGIN);
    expiry
        .duration_since(now)
        .map_or(true, |left| left <= margin)
}

/// The AssumeRole call's SDK error, as aws-config's provider keeps it as its source.
type StsError = aws_sdk_sts::error::SdkError<
    aws_sdk_sts::operation::assume_role::AssumeRoleError,
    aws_sdk_sts::config::http::HttpResponse,
>;

/// What STS said, from the provider's error (whose source is the AssumeRole call's SDK error). Also the
/// plugin's reading of its own AssumeRole, so both tell a refusal from an outage alike.
pub fn failure_of(error: &CredentialsError) -> AssumeFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(sdk) = current.downcast_ref::<StsError>()
            && let Some(code) = sdk.code()
        {
            return AssumeFailure {
                code: code.to_owned(),
                message: sdk.message().unwrap_or_default().to_owned(),
                refused: !matches!(
                    code,
                    "Throttling" | "ThrottlingException" | "InternalFailure" | "ServiceUnavailable"
                ),
            };
        }
        source = current.source();
    }
    let refused = matches!(error, CredentialsError::InvalidConfiguration(_));
    AssumeFailure {
        code: if refused {
            "InvalidConfiguration"
        } else {
            "StsUnavailable"
        }
        .to_owned(),
        message: aws_sdk_ivschat::error::DisplayErrorContext(error).to_string(),
        refused,
    }
}

impl ProvideCredentials for AccountCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.current()
                .await
                .map(|session| session.credentials)
                .map_err(|failure| CredentialsError::not_loaded(failure.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(lifetime: Option<Duration>) -> Session {
        let obtained = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        Session {
            credentials: Credentials::new(
                "ASIA",
                "secret",
                Some("token".into()),
                lifetime.map(|l| obtained + l),
                "test",
            ),
            account_id: None,
            obtained,
        }
    }

    #[test]
    fn a_session_is_renewed_once_a_quarter_of_it_at_most_five_minutes_is_left() {
        let s = Duration::from_secs;
        // (lifetime, time since obtained) -> due
        let cases = [
            (Some(s(60)), s(44), false),
            (Some(s(60)), s(45), true),
            (Some(s(60)), s(90), true),
            (Some(s(3600)), s(3299), false),
            (Some(s(3600)), s(3300), true),
            (None, s(674), false),
            (None, s(675), true),
        ];
        for (lifetime, after, due) in cases {
            let session = session(lifetime);
            assert_eq!(
                renewal_due(&session, session.obtained + after),
                due,
                "{lifetime:?} after {after:?}"
            );
        }
    }
}
