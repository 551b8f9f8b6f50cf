//! Test switches that act on requests around an operation: the runtime settings themselves, TPS quota
//! enforcement (one token bucket per (account, region, operation), as AWS enforces quotas per account and
//! region; capacity and refill rate = the operation's TPS quota), injected
//! 500/503 faults and extra latency (all before the operation runs), and lost responses (after it succeeded).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ivschat_api::Operation;

use super::config::RuntimeSettings;
use super::error::ApiError;
use super::ids::ArnScope;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// Current runtime settings and the quota buckets.
#[derive(Debug)]
pub struct Traffic {
    settings: RwLock<RuntimeSettings>,
    buckets: Mutex<HashMap<(ArnScope, Operation), Bucket>>,
}

impl Traffic {
    pub fn new(settings: RuntimeSettings) -> Traffic {
        Traffic {
            settings: RwLock::new(settings),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> RuntimeSettings {
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the settings; refused (nothing changes) when the result is invalid.
    pub fn update(
        &self,
        change: impl FnOnce(&mut RuntimeSettings),
    ) -> Result<RuntimeSettings, String> {
        let mut settings = self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut updated = settings.clone();
        change(&mut updated);
        updated.validate()?;
        if updated.enforce_quotas && !settings.enforce_quotas {
            // Quotas switched on: start every operation with a full bucket.
            self.buckets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        *settings = updated.clone();
        Ok(updated)
    }

    /// A 429 ThrottlingException (`resourceId` = the account) when quotas are enforced and `operation`
    /// exceeded its TPS in `scope`.
    pub fn admit(&self, operation: Operation, scope: &ArnScope) -> Result<(), ApiError> {
        if !self.settings().enforce_quotas {
            return Ok(());
        }
        let limit = operation.tps_quota();
        let capacity = f64::from(limit);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry((scope.clone(), operation)).or_insert(Bucket {
            tokens: capacity,
            refilled_at: now,
        });
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * capacity).min(capacity);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::Throttling {
                message: format!(
                    "Rate exceeded: {} allows {limit} requests per second",
                    operation.name()
                ),
                resource_id: scope.account_id.clone(),
                limit,
            })
        }
    }

    /// An injected InternalServerException or ServiceUnavailableException for a `fault_rate` share of requests.
    pub fn injected_fault(&self) -> Option<ApiError> {
        let rate = self.settings().fault_rate;
        if rate <= 0.0 || rand::random::<f64>() >= rate {
            return None;
        }
        Some(if rand::random::<bool>() {
            ApiError::InternalServer {
                message: "Injected fault: internal server error".to_string(),
            }
        } else {
            ApiError::ServiceUnavailable {
                message: "Injected fault: service unavailable".to_string(),
            }
        })
    }

    /// For a `lost_response_rate` share of successful control-plane writes ([`loses_responses`]), the 500
    /// InternalServerException that replaces the response although the change was made and kept.
    pub fn lost_response(&self, operation: Operation) -> Option<ApiError> {
        let rate = self.settings().lost_response_rate;
        if !loses_responses(operation) || rate <= 0.0 || rand::random::<f64>() >= rate {
            return None;
        }
        Some(ApiError::InternalServer {
            message: format!(
                "Injected lost response: {} was carried out and its change kept, but its response was dropped",
                operation.name()
            ),
        })
    }

    /// For a `late_commit_rate` share of control-plane writes ([`loses_responses`]), how long after its
    /// immediate 500 the write is to be carried out.
    pub fn late_commit(&self, operation: Operation) -> Option<Duration> {
        let settings = self.settings();
        let rate = settings.late_commit_rate;
        if !loses_responses(operation) || rate <= 0.0 || rand::random::<f64>() >= rate {
            return None;
        }
        Some(settings.late_commit_delay)
    }
}

/// Whether `operation` is subject to lost responses and late commits: the control-plane writes whose outcome a client must find
/// out by reading back (Create/Update/Delete of rooms and logging configurations, TagResource, UntagResource).
/// Reads never are (nothing to lose), nor are the data-plane operations CreateChatToken, SendEvent,
/// DeleteMessage and DisconnectUser (they change no resource the operator reconciles). Exhaustive on purpose:
/// a new operation has to be classified here.
pub fn loses_responses(operation: Operation) -> bool {
    match operation {
        Operation::CreateRoom
        | Operation::UpdateRoom
        | Operation::DeleteRoom
        | Operation::CreateLoggingConfiguration
        | Operation::UpdateLoggingConfiguration
        | Operation::DeleteLoggingConfiguration
        | Operation::TagResource
        | Operation::UntagResource => true,
        Operation::GetRoom
        | Operation::ListRooms
        | Operation::GetLoggingConfiguration
        | Operation::ListLoggingConfigurations
        | Operation::ListTagsForResource
        | Operation::CreateChatToken
        | Operation::SendEvent
        | Operation::DeleteMessage
        | Operation::DisconnectUser => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmulatorConfig;

    #[test]
    fn buckets_allow_the_quota_then_throttle() {
        let traffic = Traffic::new(RuntimeSettings {
            enforce_quotas: true,
            ..EmulatorConfig::default().runtime_settings()
        });
        let scope = ArnScope::new("111111111111", "us-west-2");
        let admitted = (0..10)
            .filter(|_| {
                traffic
                    .admit(Operation::CreateLoggingConfiguration, &scope)
                    .is_ok()
            })
            .count();
        // 3 TPS: the full bucket admits 3 (a few more could refill during a very slow loop, never 10).
        assert!((3..10).contains(&admitted), "{admitted}");
        match traffic.admit(Operation::CreateLoggingConfiguration, &scope) {
            Err(ApiError::Throttling {
                limit, resource_id, ..
            }) => assert_eq!((limit, resource_id.as_str()), (3, "111111111111")),
            other => panic!("expected throttling, got {other:?}"),
        }
        assert!(
            traffic.admit(Operation::GetRoom, &scope).is_ok(),
            "buckets are per operation"
        );
        for other in [
            ArnScope::new("222222222222", "us-west-2"),
            ArnScope::new("111111111111", "eu-west-1"),
        ] {
            assert!(
                traffic
                    .admit(Operation::CreateLoggingConfiguration, &other)
                    .is_ok(),
                "buckets are per account and region: {other:?}"
            );
        }
    }

    #[test]
    fn no_throttling_unless_enforced_and_faults_follow_the_rate() {
        let traffic = Traffic::new(EmulatorConfig::default().runtime_settings());
        assert!((0..100).all(|_| {
            traffic
                .admit(
                    Operation::CreateLoggingConfiguration,
                    &ArnScope::new("111111111111", "us-west-2"),
                )
                .is_ok()
        }));
        assert!((0..100).all(|_| traffic.injected_fault().is_none()));
        traffic
            .update(|settings| settings.fault_rate = 1.0)
            .expect("valid");
        assert!((0..100).all(|_| traffic.injected_fault().is_some()));
        assert!(
            traffic
                .update(|settings| settings.fault_rate = 2.0)
                .is_err()
        );
        assert_eq!(
            traffic.settings().fault_rate,
            1.0,
            "an invalid update changes nothing"
        );
    }

    #[test]
    fn late_commits_follow_the_rate_hit_only_control_plane_writes_and_carry_the_delay() {
        let traffic = Traffic::new(EmulatorConfig::default().runtime_settings());
        assert!(
            Operation::ALL
                .iter()
                .all(|operation| (0..50).all(|_| traffic.late_commit(*operation).is_none())),
            "rate 0 never delays a write"
        );
        traffic
            .update(|settings| {
                settings.late_commit_rate = 1.0;
                settings.late_commit_delay = Duration::from_millis(1500);
            })
            .expect("valid");
        for operation in Operation::ALL {
            let delayed = (0..50)
                .filter_map(|_| traffic.late_commit(operation))
                .collect::<Vec<_>>();
            let expected = if loses_responses(operation) { 50 } else { 0 };
            assert_eq!(delayed.len(), expected, "{}", operation.name());
            assert!(
                delayed
                    .iter()
                    .all(|delay| *delay == Duration::from_millis(1500))
            );
        }
        let refused = traffic.update(|settings| settings.late_commit_rate = 1.5);
        assert!(refused.is_err(), "a rate above 1 is refused");
    }

    #[test]
    fn lost_responses_follow_the_rate_and_hit_only_control_plane_writes() {
        let traffic = Traffic::new(EmulatorConfig::default().runtime_settings());
        assert!(
            Operation::ALL
                .iter()
                .all(|operation| (0..50).all(|_| traffic.lost_response(*operation).is_none())),
            "rate 0 never loses a response"
        );
        traffic
            .update(|settings| settings.lost_response_rate = 1.0)
            .expect("valid");
        for operation in Operation::ALL {
            let lost = (0..50)
                .filter(|_| traffic.lost_response(operation).is_some())
                .count();
            let expected = if loses_responses(operation) { 50 } else { 0 };
            assert_eq!(lost, expected, "{}", operation.name());
        }
        match traffic.lost_response(Operation::CreateRoom) {
            Some(ApiError::InternalServer { message }) => {
                assert!(message.contains("CreateRoom"), "{message}");
                assert!(message.contains("change kept"), "{message}");
            }
            other => panic!("expected an InternalServerException, got {other:?}"),
        }
        assert!(
            !loses_responses(Operation::CreateChatToken) && !loses_responses(Operation::GetRoom)
        );

        for invalid in [-0.1, 1.5, f64::NAN] {
            let refused = traffic.update(|settings| settings.lost_response_rate = invalid);
            assert!(refused.is_err(), "{invalid} must be refused");
        }
        assert_eq!(
            traffic.settings().lost_response_rate,
            1.0,
            "an invalid update changes nothing"
        );
        assert_eq!(
            traffic.settings().fault_rate,
            0.0,
            "the two rates are independent"
        );
    }
}
