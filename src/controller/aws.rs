//! Every IVS Chat call the controllers make goes through [`Aws::call`], which owns the three things no
//! call may skip:
//!
//! - the **rate budget**: the call waits for its operation's slot in the shared [`RateLimiter`] (both
//!   controllers hold the same one: quotas are per account), and so does every retry;
//! - a **timeout** on each attempt, so a reconcile never hangs on a silent endpoint;
//! - **retries** with exponential backoff and full jitter. Throttling is always retried (AWS did not run the
//!   call) and also slows that operation's budget for a moment, since another client is using the quota.
//!   5xx, timeouts and connection failures are retried only for calls that are safe to repeat
//!   ([`Retry::Idempotent`]); a create that failed that way may still have happened, so it goes back to the
//!   driver, whose ownership-tag lookup finds it instead of creating another.
//!
//! The SDK's own retries are switched off: they would resend outside the budget.
//!
//! And, for a replica that leads by a Lease, the **fence** ([`Fence`]): a call is not sent once the
//! leadership's validity has passed, and a call in flight when it passes is abandoned, so a leader that
//! could not renew its Lease makes no AWS call by the time a successor may take over. The controllers get
//! the fence as a value (an instant that renewals move on); who moves it is the process's business.

use super::accounts::ScopeKey;
use super::accounts::credentials::AccountCredentials;
use super::aws_error::{AwsError, ErrorClass};
use super::rate_limit::RateLimiter;
use crate::metrics::Metrics;
use aws_sdk_ivschat::config::http::HttpResponse;
use aws_sdk_ivschat::config::retry::RetryConfig;
use aws_sdk_ivschat::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ivschat::primitives::{DateTime, DateTimeFormat};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
// The runtime's clock, like the elector's that sets the fence, so that both can be tested with a paused clock.
use tokio::time::Instant;

/// Whether a failed call may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Repeating the call cannot do harm (reads, updates to a given state, tagging, deletes).
    Idempotent,
    /// A repeat could do the work twice (creates): retry only when AWS certainly did not run the call.
    OnlyIfNotRun,
}

/// Attempts, backoff and timeouts of AWS calls.
#[derive(Clone, Debug)]
pub struct CallPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, then full jitter.
    pub base_backoff: Duration,
    /// Cap of one retry delay.
    pub max_backoff: Duration,
    /// Longest wait for one attempt's answer.
    pub attempt_timeout: Duration,
    /// How long an operation's budget pauses after AWS throttled it.
    pub throttle_pause: Duration,
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(15),
            throttle_pause: Duration::from_secs(1),
        }
    }
}

impl CallPolicy {
    /// The delay before retry number `retry` (1-based): `base * 2^(retry-1)`, capped, times `jitter` (0..=1).
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(16);
        self.base_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff)
            .mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Whether a failed attempt is sent again under `retry`.
pub fn should_retry(err: &AwsError, retry: Retry) -> bool {
    // The fence stays down until a renewal, which no backoff here would wait for.
    if err.class != ErrorClass::Transient || err.is_not_leading() {
        return false;
    }
    err.is_throttling() || retry == Retry::Idempotent
}

/// Until when this replica may call AWS: `Some(instant)` while it leads (the instant moves on with every
/// renewal of its Lease), `None` when it does not lead. Clones watch the same value.
#[derive(Clone, Debug)]
pub struct Fence {
    valid_until: watch::Receiver<Option<Instant>>,
}

impl Fence {
    pub fn new(valid_until: watch::Receiver<Option<Instant>>) -> Self {
        Fence { valid_until }
    }

    /// Whether a call may be sent now.
    pub fn holds(&self) -> bool {
        matches!(*self.valid_until.borrow(), Some(until) if Instant::now() < until)
    }

    /// Resolves once the fence is down: its instant passed without a renewal moving it on, or leadership
    /// ended. At once when it is down already.
    pub async fn fired(&self) {
        let mut valid_until = self.valid_until.clone();
        loop {
            let Some(until) = *valid_until.borrow_and_update() else {
                return;
            };
            if Instant::now() >= until {
                return;
            }
            tokio::select! {
                // Then look again: a renewal may have moved the instant on meanwhile.
                () = tokio::time::sleep_until(until) => {}
                changed = valid_until.changed() => {
                    if changed.is_err() {
                        // Nobody renews any more: the last instant is final.
                        tokio::time::sleep_until(until).await;
                        return;
                    }
                }
            }
        }
    }

    /// `work` unless the fence is down already, and abandoned (dropped) when the fence goes down first.
    async fn guard<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, AwsError>>,
    ) -> Result<T, AwsError> {
        if !self.holds() {
            return Err(AwsError::not_leading(operation));
        }
        tokio::select! {
            biased;
            () = self.fired() => Err(AwsError::not_leading(operation)),
            result = work => result,
        }
    }
}

/// The IVS Chat client the controllers use in one (account, region): the SDK client, the scope's rate
/// budget, the call policy and (for a replica that leads by a Lease) the fence. The operator's own access
/// makes the other scopes' ([`Aws::in_region`]).
#[derive(Clone, Debug)]
pub struct Aws {
    /// As given, without the metrics interceptor: what the other scopes' clients are made from.
    base: aws_sdk_ivschat::Client,
    client: aws_sdk_ivschat::Client,
    limiter: Option<Arc<RateLimiter>>,
    policy: CallPolicy,
    fence: Option<Fence>,
    /// Where the calls are counted (set by [`Aws::counted_in`]), by scope.
    metrics: Option<Metrics>,
    /// The shared AWS configuration the operator's own client was made from (credentials, endpoint, HTTP
    /// client), when given ([`Aws::with_shared_config`]): the ChatAccounts' AssumeRole calls are made with
    /// it. Without it they use the default credential chain and AWS's STS endpoint.
    shared: Option<aws_config::SdkConfig>,
    /// A ChatAccount's role sessions, for this scope's calls: a failure to assume the role is the call's
    /// failure ([`AccountCredentials::failure`]).
    sessions: Option<Arc<AccountCredentials>>,
}

impl Aws {
    /// Calls without a client-side budget (throttling is still retried).
    pub fn unlimited(client: aws_sdk_ivschat::Client) -> Self {
        Self::new(client, None, CallPolicy::default())
    }

    /// Calls spaced by `limiter` (shared by every clone of this `Aws`).
    pub fn limited(client: aws_sdk_ivschat::Client, limiter: RateLimiter) -> Self {
        Self::new(client, Some(Arc::new(limiter)), CallPolicy::default())
    }

    pub fn new(
        client: aws_sdk_ivschat::Client,
        limiter: Option<Arc<RateLimiter>>,
        policy: CallPolicy,
    ) -> Self {
        // Retries are ours (inside the budget); the SDK would resend outside it.
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        let client = aws_sdk_ivschat::Client::from_conf(config);
        Aws {
            base: client.clone(),
            client,
            limiter,
            policy,
            fence: None,
            metrics: None,
            shared: None,
            sessions: None,
        }
    }

    /// The same access, knowing the shared configuration its client was made from, whose credentials and
    /// endpoint the ChatAccounts' AssumeRole calls then use.
    pub fn with_shared_config(mut self, shared: aws_config::SdkConfig) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The region this access calls.
    pub fn region(&self) -> Option<&str> {
        self.base.config().region().map(|region| region.as_ref())
    }

    /// The credentials this access signs with, when its shared configuration is known.
    pub fn credentials_provider(
        &self,
    ) -> Option<aws_credential_types::provider::SharedCredentialsProvider> {
        self.shared.as_ref()?.credentials_provider()
    }

    /// The calls per second of every operation the budget limits (`None`: no budget).
    pub fn quotas(&self) -> Option<HashMap<&'static str, f64>> {
        self.limiter.as_ref().map(|limiter| limiter.quotas())
    }

    /// The shared AWS configuration for the STS clients of the ChatAccounts' sessions: this access's own
    /// (else one with its region and HTTP client only), at `endpoint_url` when an account names one.
    pub fn sdk_config(&self, endpoint_url: Option<&str>) -> aws_config::SdkConfig {
        let mut builder = match &self.shared {
            Some(shared) => shared.to_builder(),
            None => {
                let config = self.base.config();
                let mut builder = aws_config::SdkConfig::builder()
                    .behavior_version(aws_config::BehaviorVersion::latest())
                    .region(config.region().cloned());
                if let Some(http) = config.http_client() {
                    builder = builder.http_client(http);
                }
                builder
            }
        };
        if let Some(endpoint) = endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        // The STS client needs a clock and a sleep (a loaded configuration has them; one built by hand
        // may not): the IVS Chat client's own.
        let config = self.base.config();
        if self
            .shared
            .as_ref()
            .is_none_or(|shared| shared.time_source().is_none())
        {
            builder.set_time_source(config.time_source());
        }
        if self
            .shared
            .as_ref()
            .is_none_or(|shared| shared.sleep_impl().is_none())
        {
            builder.set_sleep_impl(config.sleep_impl());
        }
        builder.build()
    }

    /// The access of another scope made from this one (the operator's own): `region`, and either these
    /// credentials or a ChatAccount's `sessions` (at its endpoint, if it names one), with `limiter` as its
    /// budget and the same policy and fence; counted with the scope's labels where this one is counted.
    pub fn in_region(
        &self,
        region: &str,
        account: Option<(Arc<AccountCredentials>, Option<&str>)>,
        limiter: Option<Arc<RateLimiter>>,
        scope: &ScopeKey,
    ) -> Aws {
        let mut builder = self
            .base
            .config()
            .to_builder()
            .region(aws_sdk_ivschat::config::Region::new(region.to_owned()));
        let mut sessions = None;
        if let Some((account_sessions, endpoint)) = account {
            builder = builder
                .credentials_provider(AccountSessions(account_sessions.clone()))
                // The sessions cache themselves, shared by the account's regions.
                .identity_cache(aws_sdk_ivschat::config::IdentityCache::no_cache());
            if let Some(endpoint) = endpoint {
                builder = builder.endpoint_url(endpoint);
            }
            sessions = Some(account_sessions);
        }
        let base = aws_sdk_ivschat::Client::from_conf(builder.build());
        let client = match &self.metrics {
            Some(metrics) => crate::metrics::instrument_aws(&base, metrics, scope_labels(scope)),
            None => base.clone(),
        };
        Aws {
            base,
            client,
            limiter,
            policy: self.policy.clone(),
            fence: self.fence.clone(),
            metrics: self.metrics.clone(),
            shared: self.shared.clone(),
            sessions,
        }
    }

    /// The same access, calling AWS only while `fence` holds (`None`: always, as without leader election).
    pub fn fenced_by(mut self, fence: Option<Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// The client-side budget of `operation` in calls per second; `None` when it is not limited.
    pub fn budget(&self, operation: &str) -> Option<f64> {
        self.limiter.as_ref()?.tps(operation)
    }

    /// The same access with every HTTP attempt counted in `metrics` (by operation and outcome, and by
    /// `scope`), and so the scopes made from it.
    pub fn counted_in(mut self, metrics: &Metrics, scope: &ScopeKey) -> Self {
        self.client = crate::metrics::instrument_aws(&self.base, metrics, scope_labels(scope));
        self.metrics = Some(metrics.clone());
        self
    }

    /// The same client and budget with another call policy.
    pub fn with_policy(mut self, policy: CallPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &CallPolicy {
        &self.policy
    }

    /// Sends one IVS Chat call: each attempt waits for a slot of `operation`, is bounded by the attempt
    /// timeout and by the fence, and failures are retried as [`Retry`] allows. `send` builds and sends the
    /// request.
    pub async fn call<T, E, Fut>(
        &self,
        operation: &'static str,
        retry: Retry,
        send: impl Fn(&aws_sdk_ivschat::Client) -> Fut,
    ) -> Result<T, AwsError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut attempt = 1;
        loop {
            let err = match &self.fence {
                None => self.attempt(operation, &send).await,
                Some(fence) => fence.guard(operation, self.attempt(operation, &send)).await,
            };
            let err = match err {
                Ok(output) => return Ok(output),
                Err(err) => err,
            };
            // (Every attempt, throttled or not, is counted by the client's metrics interceptor, when the
            // client is `counted_in` metrics.)
            if err.is_throttling()
                && let Some(limiter) = &self.limiter
            {
                limiter.pause(operation, self.policy.throttle_pause);
            }
            if attempt >= self.policy.max_attempts || !should_retry(&err, retry) {
                return Err(err);
            }
            let delay = self
                .policy
                .backoff(attempt, rand::random_range(0.0..=1.0))
                .max(Duration::from_millis(10));
            tracing::debug!(operation, attempt, ?delay, error = %err, "retrying an AWS call");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One attempt: its slot in the budget, then the request, bounded by the attempt timeout.
    async fn attempt<T, E, Fut>(
        &self,
        operation: &'static str,
        send: &impl Fn(&aws_sdk_ivschat::Client) -> Fut,
    ) -> Result<T, AwsError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(operation).await;
        }
        // The slot may have taken long: nothing is sent once the fence is down (the guard around this
        // attempt fires too, but only at its timer's next tick).
        if let Some(fence) = &self.fence
            && !fence.holds()
        {
            return Err(AwsError::not_leading(operation));
        }
        match tokio::time::timeout(self.policy.attempt_timeout, send(&self.client)).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(err)) if !matches!(err, SdkError::ServiceError(_)) => {
                // Not sent, or no answer: when the account's role could not be assumed, that is why.
                match self
                    .sessions
                    .as_ref()
                    .and_then(|sessions| sessions.failure())
                {
                    Some(failure) => Err(AwsError::of_account(operation, &failure)),
                    None => Err(AwsError::from_sdk(operation, err)),
                }
            }
            Ok(Err(err)) => Err(AwsError::from_sdk(operation, err)),
            Err(_) => Err(AwsError::timed_out(operation, self.policy.attempt_timeout)),
        }
    }
}

/// A ChatAccount's sessions as a client's credentials provider.
#[derive(Debug)]
struct AccountSessions(Arc<AccountCredentials>);

impl aws_credential_types::provider::ProvideCredentials for AccountSessions {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide_credentials()
    }
}

fn scope_labels(scope: &ScopeKey) -> crate::metrics::ScopeLabels {
    crate::metrics::ScopeLabels::new(scope.account_label(), &scope.region)
}

/// An SDK timestamp as the status records it (RFC 3339).
pub fn sdk_time(value: Option<&DateTime>) -> Option<String> {
    value.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
}

/// SDK tags, ordered (absent: none).
pub fn sdk_tags(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.clone().into_iter().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, class: ErrorClass) -> AwsError {
        AwsError {
            operation: "CreateRoom",
            class,
            code: code.to_owned(),
            message: String::new(),
        }
    }

    #[test]
    fn creates_are_retried_only_when_aws_did_not_run_them() {
        let throttled = error("ThrottlingException", ErrorClass::Transient);
        let server_error = error("InternalServerException", ErrorClass::Transient);
        let timeout = AwsError::timed_out("CreateRoom", Duration::from_secs(1));
        assert!(should_retry(&throttled, Retry::OnlyIfNotRun));
        assert!(!should_retry(&server_error, Retry::OnlyIfNotRun));
        assert!(!should_retry(&timeout, Retry::OnlyIfNotRun));
        assert!(should_retry(&server_error, Retry::Idempotent));
        assert!(should_retry(&timeout, Retry::Idempotent));
    }

    #[test]
    fn only_transient_errors_are_retried() {
        for class in [
            ErrorClass::NotFound,
            ErrorClass::Terminal,
            ErrorClass::AccessDenied,
            ErrorClass::QuotaExceeded,
            ErrorClass::Conflict,
        ] {
            assert!(
                !should_retry(&error("X", class), Retry::Idempotent),
                "{class:?}"
            );
        }
    }

    #[test]
    fn a_fenced_call_is_never_retried_here() {
        let fenced = AwsError::not_leading("UpdateRoom");
        assert!(!should_retry(&fenced, Retry::Idempotent));
        assert!(!should_retry(&fenced, Retry::OnlyIfNotRun));
    }

    /// An SDK client that is never used to send (the tests' `send` answers by itself).
    fn offline_aws() -> Aws {
        let config = aws_sdk_ivschat::Config::builder()
            .behavior_version(aws_sdk_ivschat::config::BehaviorVersion::latest())
            .region(aws_sdk_ivschat::config::Region::new("us-west-2"))
            .build();
        Aws::unlimited(aws_sdk_ivschat::Client::from_conf(config))
    }

    type GetRoomResult =
        Result<(), SdkError<aws_sdk_ivschat::operation::get_room::GetRoomError, HttpResponse>>;

    #[tokio::test(start_paused = true)]
    async fn the_fence_refuses_calls_once_down_and_abandons_those_in_flight() {
        let seconds = Duration::from_secs;
        // (fence valid until, seconds from the start; a renewal: (when, valid until); the call starts
        // after; the call's answer takes, None = never) -> (sends made, the call's outcome: Ok or
        // NotLeading, when it ends)
        type Case = (
            Option<u64>,
            Option<(u64, u64)>,
            u64,
            Option<u64>,
            usize,
            bool,
            u64,
        );
        let cases: [Case; 7] = [
            // Not leading, or the fence passed: not even sent.
            (None, None, 0, Some(0), 0, false, 0),
            (Some(3), None, 3, Some(0), 0, false, 3),
            (Some(3), None, 5, Some(0), 0, false, 5),
            // Answered before the fence: fine.
            (Some(3), None, 0, Some(2), 1, true, 2),
            // In flight when the fence goes down: abandoned right then, not at the attempt timeout (15 s).
            (Some(3), None, 1, None, 1, false, 3),
            // A renewal moves the fence on: the call in flight goes on until the new instant.
            (Some(3), Some((2, 6)), 1, None, 1, false, 6),
            (Some(3), Some((2, 6)), 1, Some(4), 1, true, 5),
        ];
        for (until, renewal, starts_after, answer_after, sends, succeeds, ends_after) in cases {
            let what = format!("{until:?} {renewal:?} {starts_after} {answer_after:?}");
            let base = Instant::now();
            let at = move |s: u64| base + seconds(s);
            let (valid_until, fence) = watch::channel(until.map(at));
            let aws = offline_aws().fenced_by(Some(Fence::new(fence)));
            let renewer = tokio::spawn(async move {
                if let Some((when, until)) = renewal {
                    tokio::time::sleep_until(at(when)).await;
                    valid_until.send_replace(Some(at(until)));
                }
                // Kept until the case ends, so the fence still has a renewer.
                std::future::pending::<()>().await;
            });
            tokio::time::sleep_until(at(starts_after)).await;
            let sent = std::sync::atomic::AtomicUsize::new(0);
            let outcome = aws
                .call("GetRoom", Retry::Idempotent, |_| {
                    sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move {
                        match answer_after {
                            Some(after) => tokio::time::sleep(seconds(after)).await,
                            None => std::future::pending().await,
                        }
                        GetRoomResult::Ok(())
                    }
                })
                .await;
            renewer.abort();
            assert_eq!(sent.into_inner(), sends, "{what}");
            match outcome {
                Ok(()) => assert!(succeeds, "{what}"),
                Err(err) => assert!(!succeeds && err.is_not_leading(), "{what}: {err}"),
            }
            assert_eq!(base.elapsed(), seconds(ends_after), "{what}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fence_fires_at_its_instant_unless_renewed_and_when_leadership_ends() {
        let base = Instant::now();
        let (valid_until, receiver) = watch::channel(Some(base + Duration::from_secs(4)));
        let fence = Fence::new(receiver);
        assert!(fence.holds());
        // Renewed at 3 s to 7 s, then leadership ends at 5 s.
        let renewer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            valid_until.send_replace(Some(base + Duration::from_secs(7)));
            tokio::time::sleep(Duration::from_secs(2)).await;
            valid_until.send_replace(None);
            valid_until
        });
        fence.fired().await;
        assert_eq!(base.elapsed(), Duration::from_secs(5));
        assert!(!fence.holds());
        // With nobody renewing, the last instant is final.
        let valid_until = renewer.await.expect("renewer");
        valid_until.send_replace(Some(Instant::now() + Duration::from_secs(2)));
        drop(valid_until);
        let dropped_at = Instant::now();
        fence.fired().await;
        assert_eq!(dropped_at.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_jitter_scales_it() {
        let policy = CallPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..CallPolicy::default()
        };
        assert_eq!(policy.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_millis(400));
        assert_eq!(policy.backoff(4, 1.0), Duration::from_millis(500));
        assert_eq!(policy.backoff(40, 1.0), Duration::from_millis(500));
        assert_eq!(policy.backoff(2, 0.5), Duration::from_millis(100));
        assert_eq!(policy.backoff(2, 0.0), Duration::ZERO);
    }
}
