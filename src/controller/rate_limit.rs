//! The client-side AWS rate budget: every IVS Chat call waits for its operation's slot, so a burst of
//! reconciles runs at the account's TPS quota instead of being throttled (AWS rate quotas cannot be raised:
//! ivschat-api.md §5.1). Calls of one operation are spaced evenly at `1 / TPS` (a token bucket of one
//! token: idle time is never banked into a burst); callers that would exceed the rate sleep until their
//! slot rather than failing. A slot is taken when it is due, not reserved ahead: reserved slots of callers
//! that all woke late (a busy machine stalls timers) would go out together, a burst the quota throttles. Also owns which operations are budgeted (their quotas are ivschat-api's) and the
//! `--aws-quota` overrides.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ivschat_api::{Operation, OperationGroup};
use tokio::time::Instant;

/// The operation groups the controllers call, so the ones the budget covers; the messaging operations are
/// the plugin's, one call per command, and are never budgeted.
const BUDGETED_GROUPS: [OperationGroup; 3] = [
    OperationGroup::Rooms,
    OperationGroup::LoggingConfigurations,
    OperationGroup::Tags,
];

fn budgeted_operations() -> impl Iterator<Item = Operation> {
    BUDGETED_GROUPS
        .into_iter()
        .flat_map(OperationGroup::operations)
}

/// The default IVS Chat API rate quotas (TPS), per operation the controllers call.
pub fn aws_default_quotas() -> HashMap<&'static str, u32> {
    budgeted_operations()
        .map(|operation| (operation.name(), operation.tps_quota()))
        .collect()
}

/// One `--aws-quota` entry: an operation (e.g. `GetRoom`) or a group (`rooms`, `logging-configurations`,
/// `tags`) and its calls per second.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaOverride {
    pub operations: Vec<&'static str>,
    pub tps: f64,
}

/// Parses `NAME=TPS` (TPS a positive number, fractions allowed, e.g. `rooms=2.5` to leave part of the
/// account's quota to other clients).
pub fn parse_quota_override(text: &str) -> Result<QuotaOverride, String> {
    let (name, tps) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=TPS (e.g. rooms=4 or GetRoom=2), got {text:?}"))?;
    let tps: f64 = tps
        .trim()
        .parse()
        .ok()
        .filter(|tps: &f64| tps.is_finite() && *tps > 0.0)
        .ok_or_else(|| {
            format!("the rate in {text:?} must be a positive number of calls per second")
        })?;
    let name = name.trim();
    // Groups share one documented quota, so `rooms=4` sets all five room operations.
    let operations = match BUDGETED_GROUPS.iter().find(|group| group.name() == name) {
        Some(group) => group.operations().map(Operation::name).collect(),
        None => match budgeted_operations().find(|operation| operation.name() == name) {
            Some(operation) => vec![operation.name()],
            None => {
                return Err(format!(
                    "unknown operation or group {name:?}: use rooms, logging-configurations, tags or an \
                     operation name such as GetRoom"
                ));
            }
        },
    };
    Ok(QuotaOverride { operations, tps })
}

/// The default quotas with the overrides applied in order.
pub fn quotas_with(overrides: &[QuotaOverride]) -> HashMap<&'static str, f64> {
    let mut quotas: HashMap<&'static str, f64> = aws_default_quotas()
        .into_iter()
        .map(|(operation, tps)| (operation, f64::from(tps)))
        .collect();
    for entry in overrides {
        for operation in &entry.operations {
            quotas.insert(operation, entry.tps);
        }
    }
    quotas
}

/// Evenly spaced slots per operation.
#[derive(Debug)]
pub struct RateLimiter {
    /// The calls per second as configured: the intervals are rounded to the nanosecond, and the resync
    /// schedule compares listing sizes with the budget itself.
    tps: HashMap<&'static str, f64>,
    intervals: HashMap<&'static str, Duration>,
    /// Per operation, the earliest time the next call may start.
    next_slot: Mutex<HashMap<&'static str, Instant>>,
}

impl RateLimiter {
    /// A limiter with the given TPS per operation (operations not listed are not limited).
    pub fn new(tps: HashMap<&'static str, f64>) -> Self {
        let tps: HashMap<&'static str, f64> = tps
            .into_iter()
            .filter(|(_, tps)| tps.is_finite() && *tps > 0.0)
            .collect();
        let intervals = tps
            .iter()
            .map(|(operation, tps)| (*operation, Duration::from_secs_f64(1.0 / tps)))
            .collect();
        RateLimiter {
            tps,
            intervals,
            next_slot: Mutex::new(HashMap::new()),
        }
    }

    /// Takes the slot of `operation` if one is due at `now` (the next one is then one interval after
    /// `now`, whenever the caller actually came); otherwise says how long until one is.
    pub fn try_take(&self, operation: &'static str, now: Instant) -> Result<(), Duration> {
        let Some(interval) = self.intervals.get(operation) else {
            return Ok(());
        };
        let Ok(mut next_slot) = self.next_slot.lock() else {
            return Ok(());
        };
        match next_slot.get(operation) {
            Some(next) if *next > now => Err(*next - now),
            _ => {
                next_slot.insert(operation, now + *interval);
                Ok(())
            }
        }
    }

    /// AWS throttled `operation` anyway (another client shares the account's quota): no slot of it starts
    /// within `pause` from now.
    pub fn pause(&self, operation: &'static str, pause: Duration) {
        if !self.intervals.contains_key(operation) {
            return;
        }
        if let Ok(mut next_slot) = self.next_slot.lock() {
            let resume = Instant::now() + pause;
            let slot = next_slot.entry(operation).or_insert(resume);
            *slot = (*slot).max(resume);
        }
    }

    /// The calls per second of every limited operation (to make another scope's budget like this one).
    pub fn quotas(&self) -> HashMap<&'static str, f64> {
        self.tps.clone()
    }

    /// The budget's calls per second for `operation`, if it is limited.
    pub fn tps(&self, operation: &str) -> Option<f64> {
        self.tps.get(operation).copied()
    }

    /// Waits for a slot of `operation` and takes it. Waiters race for each slot (no queue order): a caller
    /// that loses sleeps until the next one.
    pub async fn acquire(&self, operation: &'static str) {
        while let Err(wait) = self.try_take(operation, Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_spaced_at_the_operation_rate() {
        let limiter = RateLimiter::new(HashMap::from([("GetRoom", 5.0), ("TagResource", 10.0)]));
        let now = Instant::now();
        assert_eq!(limiter.try_take("GetRoom", now), Ok(()));
        assert_eq!(
            limiter.try_take("GetRoom", now),
            Err(Duration::from_millis(200))
        );
        let at = |ms| now + Duration::from_millis(ms);
        assert_eq!(
            limiter.try_take("GetRoom", at(150)),
            Err(Duration::from_millis(50))
        );
        assert_eq!(limiter.try_take("GetRoom", at(200)), Ok(()));
        // Operations are independent, and unknown ones are not limited.
        assert_eq!(limiter.try_take("TagResource", now), Ok(()));
        assert_eq!(
            limiter.try_take("TagResource", now),
            Err(Duration::from_millis(100))
        );
        assert_eq!(limiter.try_take("Other", now), Ok(()));
        // Idle time is not banked as a burst: after a pause, calls are spaced again.
        let later = now + Duration::from_secs(10);
        assert_eq!(limiter.try_take("GetRoom", later), Ok(()));
        assert_eq!(
            limiter.try_take("GetRoom", later),
            Err(Duration::from_millis(200))
        );
    }

    #[test]
    fn callers_that_woke_late_together_are_spaced_again_not_sent_at_once() {
        // Three callers were due 0, 200 and 400 ms after the last call, and a stalled machine woke them all
        // 1 s late: one goes, the others wait a full interval each from then.
        let limiter = RateLimiter::new(HashMap::from([("CreateRoom", 5.0)]));
        let start = Instant::now();
        assert_eq!(limiter.try_take("CreateRoom", start), Ok(()));
        let woke = start + Duration::from_secs(1);
        let outcomes: Vec<_> = (0..3)
            .map(|_| limiter.try_take("CreateRoom", woke))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                Ok(()),
                Err(Duration::from_millis(200)),
                Err(Duration::from_millis(200))
            ]
        );
    }

    #[test]
    fn the_budget_is_reported_as_configured() {
        let limiter = RateLimiter::new(HashMap::from([("ListRooms", 3.0), ("GetRoom", 0.0)]));
        // Exactly 3, not the inverse of a 333,333,333 ns interval.
        assert_eq!(limiter.tps("ListRooms"), Some(3.0));
        assert_eq!(limiter.tps("GetRoom"), None, "not a budget");
        assert_eq!(limiter.tps("Other"), None);
    }

    #[test]
    fn a_throttled_operation_pauses_only_itself() {
        let limiter = RateLimiter::new(HashMap::from([("GetRoom", 5.0), ("TagResource", 10.0)]));
        limiter.pause("GetRoom", Duration::from_secs(2));
        let wait = limiter
            .try_take("GetRoom", Instant::now())
            .expect_err("paused");
        assert!(wait > Duration::from_millis(1900), "{wait:?}");
        assert_eq!(limiter.try_take("TagResource", Instant::now()), Ok(()));
        // Unknown operations stay unlimited.
        limiter.pause("Other", Duration::from_secs(2));
        assert_eq!(limiter.try_take("Other", Instant::now()), Ok(()));
    }

    #[test]
    fn overrides_name_groups_or_operations() {
        let rooms = parse_quota_override("rooms=2.5").expect("valid");
        assert_eq!(rooms.operations.len(), 5);
        assert_eq!(rooms.tps, 2.5);
        let get = parse_quota_override(" GetRoom = 1 ").expect("valid");
        assert_eq!(get.operations, vec!["GetRoom"]);
        let quotas = quotas_with(&[rooms, get]);
        assert_eq!(quotas["ListRooms"], 2.5);
        assert_eq!(quotas["GetRoom"], 1.0);
        assert_eq!(quotas["TagResource"], 10.0);
        for bad in [
            "rooms",
            "rooms=0",
            "rooms=-1",
            "rooms=fast",
            "Rooms=1",
            "SendEvent=1",
            "=3",
        ] {
            assert!(parse_quota_override(bad).is_err(), "{bad}");
        }
        let message = parse_quota_override("room=1").expect_err("unknown");
        assert!(message.contains("logging-configurations"), "{message}");
    }

    #[test]
    fn the_defaults_are_the_documented_quotas() {
        let quotas = aws_default_quotas();
        assert_eq!(quotas["CreateRoom"], 5);
        assert_eq!(quotas["GetLoggingConfiguration"], 3);
        assert_eq!(quotas["UntagResource"], 10);
    }
}
