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
    if err.class != ErrorClass::Transient {
        return false;
    }
    err.is_throttling() || retry == Retry::Idempotent
}

/// The IVS Chat client the controllers use: the SDK client, the shared rate budget and the call policy.
#[derive(Clone, Debug)]
pub struct Aws {
    client: aws_sdk_ivschat::Client,
    limiter: Option<Arc<RateLimiter>>,
    policy: CallPolicy,
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
        Aws {
            client: aws_sdk_ivschat::Client::from_conf(config),
            limiter,
            policy,
        }
    }

    /// The same access with every HTTP attempt counted in `metrics` (by operation and outcome).
    pub fn counted_in(mut self, metrics: &Metrics) -> Self {
        self.client = crate::metrics::instrument_aws(&self.client, metrics);
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
    /// timeout, and failures are retried as [`Retry`] allows. `send` builds and sends the request.
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
            if let Some(limiter) = &self.limiter {
                limiter.acquire(operation).await;
            }
            let err =
                match tokio::time::timeout(self.policy.attempt_timeout, send(&self.client)).await {
                    Ok(Ok(output)) => return Ok(output),
                    Ok(Err(err)) => AwsError::from_sdk(operation, err),
                    Err(_) => AwsError::timed_out(operation, self.policy.attempt_timeout),
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
