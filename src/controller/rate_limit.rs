//! Client-side AWS rate limiting: every IVS Chat call waits for its operation's slot, so a burst of
//! reconciles runs at the account's TPS quota instead of being throttled (AWS rate quotas cannot be raised:
//! ivschat-api.md §5.1). Calls of one operation are spaced evenly at `1 / TPS`; callers that would exceed
//! the rate sleep until their slot rather than failing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The default IVS Chat API rate quotas (TPS), per operation the controllers call.
pub fn aws_default_quotas() -> HashMap<&'static str, u32> {
    HashMap::from([
        ("CreateRoom", 5),
        ("DeleteRoom", 5),
        ("GetRoom", 5),
        ("ListRooms", 5),
        ("UpdateRoom", 5),
        ("CreateLoggingConfiguration", 3),
        ("DeleteLoggingConfiguration", 3),
        ("GetLoggingConfiguration", 3),
        ("ListLoggingConfigurations", 3),
        ("UpdateLoggingConfiguration", 3),
        ("ListTagsForResource", 10),
        ("TagResource", 10),
        ("UntagResource", 10),
    ])
}

/// Evenly spaced slots per operation.
#[derive(Debug)]
pub struct RateLimiter {
    intervals: HashMap<&'static str, Duration>,
    /// Per operation, the earliest time the next call may start.
    next_slot: Mutex<HashMap<&'static str, Instant>>,
}

impl RateLimiter {
    /// A limiter with the given TPS per operation (operations not listed are not limited).
    pub fn new(tps: HashMap<&'static str, u32>) -> Self {
        let intervals = tps
            .into_iter()
            .filter(|(_, tps)| *tps > 0)
            .map(|(operation, tps)| (operation, Duration::from_secs(1) / tps))
            .collect();
        RateLimiter {
            intervals,
            next_slot: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves the next slot of `operation` and returns how long to wait for it.
    pub fn reserve(&self, operation: &'static str, now: Instant) -> Duration {
        let Some(interval) = self.intervals.get(operation) else {
            return Duration::ZERO;
        };
        let Ok(mut next_slot) = self.next_slot.lock() else {
            return Duration::ZERO;
        };
        let slot = next_slot
            .get(operation)
            .map_or(now, |next| (*next).max(now));
        next_slot.insert(operation, slot + *interval);
        slot - now
    }

    /// Waits for the next slot of `operation`.
    pub async fn acquire(&self, operation: &'static str) {
        let wait = self.reserve(operation, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The IVS Chat client the controllers use: the SDK client plus the optional rate limiter.
#[derive(Clone, Debug)]
pub struct Aws {
    pub client: aws_sdk_ivschat::Client,
    limiter: Option<std::sync::Arc<RateLimiter>>,
}

impl Aws {
    /// No client-side limit (e.g. against the emulator without quotas).
    pub fn unlimited(client: aws_sdk_ivschat::Client) -> Self {
        Aws {
            client,
            limiter: None,
        }
    }

    /// Calls spaced to the given TPS per operation.
    pub fn limited(client: aws_sdk_ivschat::Client, tps: HashMap<&'static str, u32>) -> Self {
        Aws {
            client,
            limiter: Some(std::sync::Arc::new(RateLimiter::new(tps))),
        }
    }

    /// Waits until a call of `operation` may start, then hands out the client.
    pub async fn ready(&self, operation: &'static str) -> &aws_sdk_ivschat::Client {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(operation).await;
        }
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_spaced_at_the_operation_rate() {
        let limiter = RateLimiter::new(HashMap::from([("GetRoom", 5), ("TagResource", 10)]));
        let now = Instant::now();
        let waits: Vec<_> = (0..4).map(|_| limiter.reserve("GetRoom", now)).collect();
        assert_eq!(
            waits,
            vec![
                Duration::ZERO,
                Duration::from_millis(200),
                Duration::from_millis(400),
                Duration::from_millis(600)
            ]
        );
        // Operations are independent, and unknown ones are not limited.
        assert_eq!(limiter.reserve("TagResource", now), Duration::ZERO);
        assert_eq!(
            limiter.reserve("TagResource", now),
            Duration::from_millis(100)
        );
        assert_eq!(limiter.reserve("Other", now), Duration::ZERO);
        // Idle time is not banked as a burst: after a pause, calls are spaced again.
        let later = now + Duration::from_secs(10);
        assert_eq!(limiter.reserve("GetRoom", later), Duration::ZERO);
        assert_eq!(
            limiter.reserve("GetRoom", later),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn the_defaults_are_the_documented_quotas() {
        let quotas = aws_default_quotas();
        assert_eq!(quotas["CreateRoom"], 5);
        assert_eq!(quotas["GetLoggingConfiguration"], 3);
        assert_eq!(quotas["UntagResource"], 10);
    }
}
