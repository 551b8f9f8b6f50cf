//! Request counters per operation and outcome, readable from Rust, as Prometheus text
//! (`GET /_emulator/metrics`) and as JSON (`GET /_emulator/metrics/json`). Labels are bounded: the operation is
//! one of the 17 names or `unknown`, the outcome is `success` or one of the error type names the emulator can
//! produce.
//!
//! Four families:
//! - `ivschat_emulator_requests_total{operation,outcome}`: every IVS Chat API request, as before accounts
//!   and regions existed (so totals stay comparable).
//! - `ivschat_emulator_scope_requests_total{account,region,operation,outcome}`: the IVS Chat requests whose
//!   caller was authenticated, by the scope they ran in. The account is a known one (the default or a
//!   configured account: sessions exist only for those) and the region an enabled one, so these labels are
//!   bounded too; a request refused before authentication has no scope and is only in the first family.
//! - `ivschat_emulator_sts_requests_total{action,outcome}`: STS requests by action (`AssumeRole`,
//!   `AssumeRoleWithWebIdentity`, `GetCallerIdentity` or `unknown`) and outcome (`success` or the STS error
//!   code). STS requests are in neither IVS Chat family nor in the request log.
//! - `ivschat_emulator_message_reviews_total{outcome,result}`: messages sent to a room with a review
//!   handler, by how the review ended (one of [`Outcome`]'s ten labels) and the result applied (`ALLOW` or
//!   `DENY`); see [`crate::review`].
//!
//! A lost response (see `lostResponseRate` in [`super::traffic`]) is counted under what the client saw,
//! `InternalServerException`, like any other 500, so request totals and error shares stay what the client
//! observed; a second counter, `ivschat_emulator_lost_responses_total{operation}`, counts those of them whose
//! change was nevertheless made, which no outcome label could tell apart from an injected fault. A late
//! commit (`lateCommitRate`) is counted the same way: the 500 under `InternalServerException`, and the write
//! carried out later under `ivschat_emulator_late_commits_total{operation}`.
//!
//! Beside the counters, the **request log** keeps the last [`REQUEST_LOG_CAPACITY`] API requests in the
//! order they were answered, each with its caller's identity: the app name of its User-Agent (`app/NAME`,
//! what the AWS SDKs' `app_name` setting adds), so a test can tell two clients apart, e.g. which of two
//! operator processes wrote and when (`GET /_emulator/requests`). Names are not labels of the counters:
//! they come from clients, so they are unbounded.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use crate::ids::ArnScope;
use crate::review::{Outcome, Verdict, result_label};

/// Operation label for requests that match no operation.
pub const UNKNOWN_OPERATION: &str = "unknown";
/// Outcome label of a successful request.
pub const SUCCESS: &str = "success";

/// A copy of the counters: (operation, outcome) → count.
pub type MetricsSnapshot = BTreeMap<(String, String), u64>;

/// Requests the log keeps (the oldest are dropped first): enough for any test, a few MiB at most.
pub const REQUEST_LOG_CAPACITY: usize = 100_000;

/// One answered API request, as the request log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// 1, 2, ...: the order in which the emulator answered (an answer follows its change at once), counted
    /// from the last reset.
    pub sequence: u64,
    pub operation: &'static str,
    /// `success` or the error type name, as in the counters.
    pub outcome: &'static str,
    /// The caller's app name (`app/NAME` in its User-Agent), if it sent one.
    pub app: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct RequestLog {
    records: VecDeque<RequestRecord>,
    /// Sequence number of the last record.
    last: u64,
    /// App names seen, shared by their records.
    apps: BTreeMap<String, Arc<str>>,
}

/// (scope, operation, outcome) → count.
type ScopedCounters = BTreeMap<(ArnScope, &'static str, &'static str), u64>;

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    scoped: Mutex<ScopedCounters>,
    /// (action, outcome) → STS requests.
    sts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Operation → requests whose change was made but whose response was replaced by a 500.
    lost_responses: Mutex<BTreeMap<&'static str, u64>>,
    /// Operation → requests answered with a 500 and carried out later (only those that then succeeded).
    late_commits: Mutex<BTreeMap<&'static str, u64>>,
    /// (outcome, result) → reviewed messages.
    reviews: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    log: Mutex<RequestLog>,
}

impl Metrics {
    /// Counts a request of an unnamed caller (see [`Metrics::record_from`]).
    pub fn record(&self, operation: &'static str, outcome: &'static str) {
        self.record_from(operation, outcome, None);
    }

    /// Counts a request and logs it with its caller's app name.
    pub fn record_from(&self, operation: &'static str, outcome: &'static str, app: Option<&str>) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counters.entry((operation, outcome)).or_insert(0) += 1;
        drop(counters);
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let app = app.map(|name| match log.apps.get(name) {
            Some(shared) => shared.clone(),
            None => {
                let shared: Arc<str> = Arc::from(name);
                log.apps.insert(name.to_owned(), shared.clone());
                shared
            }
        });
        log.last += 1;
        let sequence = log.last;
        if log.records.len() == REQUEST_LOG_CAPACITY {
            log.records.pop_front();
        }
        log.records.push_back(RequestRecord {
            sequence,
            operation,
            outcome,
            app,
        });
    }

    /// Counts an authenticated IVS Chat request by the scope it ran in (beside [`Metrics::record_from`]).
    pub fn record_scoped(&self, scope: &ArnScope, operation: &'static str, outcome: &'static str) {
        *self
            .scoped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((scope.clone(), operation, outcome))
            .or_insert(0) += 1;
    }

    /// Requests of `operation` in (`account`, `region`), any outcome.
    pub fn scoped_total(&self, account: &str, region: &str, operation: &str) -> u64 {
        self.scoped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((scope, op, _), _)| {
                scope.account_id == account && scope.region == region && *op == operation
            })
            .map(|(_, count)| *count)
            .sum()
    }

    /// Counts an STS request.
    pub fn record_sts(&self, action: &'static str, outcome: &'static str) {
        *self
            .sts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((action, outcome))
            .or_insert(0) += 1;
    }

    /// STS requests of `action` that ended with `outcome` (`success` or the error code).
    pub fn sts_count(&self, action: &str, outcome: &str) -> u64 {
        self.sts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((a, o), _)| *a == action && *o == outcome)
            .map(|(_, count)| *count)
            .sum()
    }

    /// STS requests of `action`, any outcome.
    pub fn sts_total(&self, action: &str) -> u64 {
        self.sts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((a, _), _)| *a == action)
            .map(|(_, count)| *count)
            .sum()
    }

    /// All three families as JSON (`GET /_emulator/metrics/json`): `{"requests": [{operation, outcome,
    /// count}], "scopeRequests": [{account, region, operation, outcome, count}], "stsRequests": [{action,
    /// outcome, count}]}`.
    pub fn json(&self) -> Value {
        let requests: Vec<Value> = self
            .snapshot()
            .into_iter()
            .map(|((operation, outcome), count)| {
                json!({"operation": operation, "outcome": outcome, "count": count})
            })
            .collect();
        let scoped: Vec<Value> = self
            .scoped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((scope, operation, outcome), count)| {
                json!({"account": scope.account_id, "region": scope.region, "operation": operation,
                       "outcome": outcome, "count": count})
            })
            .collect();
        let sts: Vec<Value> = self
            .sts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((action, outcome), count)| {
                json!({"action": action, "outcome": outcome, "count": count})
            })
            .collect();
        let reviews: Vec<Value> = self
            .review_counts()
            .into_iter()
            .map(|((outcome, result), count)| {
                json!({"outcome": outcome, "result": result, "count": count})
            })
            .collect();
        json!({"requests": requests, "scopeRequests": scoped, "stsRequests": sts,
               "messageReviews": reviews})
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.records.iter().cloned().collect()
    }

    /// Counts a request of `operation` whose change was kept but whose response was dropped (its outcome is
    /// recorded separately with [`Metrics::record`]).
    pub fn record_lost_response(&self, operation: &'static str) {
        bump(&self.lost_responses, operation);
    }

    /// Requests of `operation` whose change was made although the client got a 500.
    pub fn lost_responses(&self, operation: &str) -> u64 {
        count_of(&self.lost_responses, operation)
    }

    /// A late-committed request of `operation`, carried out successfully after its 500.
    pub fn record_late_commit(&self, operation: &'static str) {
        bump(&self.late_commits, operation);
    }

    /// Requests of `operation` carried out (successfully) after their client got a 500.
    pub fn late_commits(&self, operation: &str) -> u64 {
        count_of(&self.late_commits, operation)
    }

    /// Counts a reviewed message: how its review ended and what was done with it.
    pub fn record_review(&self, outcome: Outcome, verdict: &Verdict) {
        *self
            .reviews
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((outcome.label(), result_label(verdict)))
            .or_insert(0) += 1;
    }

    /// Reviewed messages whose review ended with `outcome` (its label, e.g. `timeout`), either result.
    pub fn reviews(&self, outcome: &str) -> u64 {
        self.reviews
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((o, _), _)| *o == outcome)
            .map(|(_, count)| *count)
            .sum()
    }

    /// Reviewed messages by (outcome, result).
    pub fn review_counts(&self) -> BTreeMap<(String, String), u64> {
        self.reviews
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((outcome, result), count)| ((outcome.to_string(), result.to_string()), *count))
            .collect()
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counters
            .iter()
            .map(|((operation, outcome), count)| {
                ((operation.to_string(), outcome.to_string()), *count)
            })
            .collect()
    }

    /// Requests of `operation` that ended with `outcome` (`success` or an error type name).
    pub fn count(&self, operation: &str, outcome: &str) -> u64 {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counters
            .iter()
            .filter(|((op, out), _)| *op == operation && *out == outcome)
            .map(|(_, count)| *count)
            .sum()
    }

    /// Requests of `operation` with any outcome.
    pub fn total(&self, operation: &str) -> u64 {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counters
            .iter()
            .filter(|((op, _), _)| *op == operation)
            .map(|(_, count)| *count)
            .sum()
    }

    pub fn reset(&self) {
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.scoped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.sts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.reviews
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        for counts in [&self.lost_responses, &self.late_commits] {
            counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
        }
        *self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = RequestLog::default();
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn prometheus_text(&self) -> String {
        let mut text = String::from(
            "# HELP ivschat_emulator_requests_total API requests handled by the IVS Chat emulator, by operation and outcome.\n\
             # TYPE ivschat_emulator_requests_total counter\n",
        );
        for ((operation, outcome), count) in self.snapshot() {
            // Label values are fixed identifiers (no quotes, backslashes or newlines to escape).
            let _ = writeln!(
                text,
                "ivschat_emulator_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        text.push_str(
            "# HELP ivschat_emulator_scope_requests_total Authenticated IVS Chat requests by account, region, \
             operation and outcome.\n\
             # TYPE ivschat_emulator_scope_requests_total counter\n",
        );
        let scoped = self
            .scoped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((scope, operation, outcome), count) in scoped {
            // Accounts are digits and regions [a-z0-9-]: nothing to escape.
            let _ = writeln!(
                text,
                "ivschat_emulator_scope_requests_total{{account=\"{}\",region=\"{}\",operation=\"{operation}\",outcome=\"{outcome}\"}} {count}",
                scope.account_id, scope.region
            );
        }
        text.push_str(
            "# HELP ivschat_emulator_sts_requests_total STS requests by action and outcome.\n\
             # TYPE ivschat_emulator_sts_requests_total counter\n",
        );
        let sts = self
            .sts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((action, outcome), count) in sts {
            let _ = writeln!(
                text,
                "ivschat_emulator_sts_requests_total{{action=\"{action}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        text.push_str(
            "# HELP ivschat_emulator_message_reviews_total Messages reviewed by their room's review handler, by \
             how the review ended (allowed, rewritten, denied, or the failure after which the fallbackResult \
             decided) and the result applied (ALLOW, DENY).\n\
             # TYPE ivschat_emulator_message_reviews_total counter\n",
        );
        for ((outcome, result), count) in self.review_counts() {
            let _ = writeln!(
                text,
                "ivschat_emulator_message_reviews_total{{outcome=\"{outcome}\",result=\"{result}\"}} {count}"
            );
        }
        for (name, help, counts) in [
            (
                "ivschat_emulator_lost_responses_total",
                "API requests whose change was made but whose response was replaced by an injected 500 \
                 (also counted as InternalServerException above).",
                &self.lost_responses,
            ),
            (
                "ivschat_emulator_late_commits_total",
                "API requests answered with an injected 500 and carried out successfully later (also \
                 counted as InternalServerException above).",
                &self.late_commits,
            ),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter");
            let counts = counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            for (operation, count) in counts {
                let _ = writeln!(text, "{name}{{operation=\"{operation}\"}} {count}");
            }
        }
        text
    }
}

/// Adds one to `operation`'s count.
fn bump(counts: &Mutex<BTreeMap<&'static str, u64>>, operation: &'static str) {
    *counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(operation)
        .or_insert(0) += 1;
}

fn count_of(counts: &Mutex<BTreeMap<&'static str, u64>>, operation: &str) -> u64 {
    counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(operation)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_text() {
        let metrics = Metrics::default();
        metrics.record("CreateRoom", SUCCESS);
        metrics.record("CreateRoom", SUCCESS);
        metrics.record("CreateRoom", "ValidationException");
        metrics.record(UNKNOWN_OPERATION, "UnknownOperationException");
        assert_eq!(metrics.count("CreateRoom", SUCCESS), 2);
        assert_eq!(metrics.total("CreateRoom"), 3);
        assert_eq!(metrics.count("GetRoom", SUCCESS), 0);
        let text = metrics.prometheus_text();
        assert!(
            text.contains(
                "ivschat_emulator_requests_total{operation=\"CreateRoom\",outcome=\"success\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("{operation=\"unknown\",outcome=\"UnknownOperationException\"} 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE ivschat_emulator_requests_total counter"));
        assert!(text.contains("# TYPE ivschat_emulator_lost_responses_total counter"));
        assert!(
            !text.contains("ivschat_emulator_lost_responses_total{"),
            "{text}"
        );

        metrics.record("UpdateRoom", "InternalServerException");
        metrics.record_lost_response("UpdateRoom");
        assert_eq!(metrics.lost_responses("UpdateRoom"), 1);
        assert_eq!(metrics.lost_responses("CreateRoom"), 0);
        assert_eq!(metrics.count("UpdateRoom", "InternalServerException"), 1);
        let text = metrics.prometheus_text();
        assert!(
            text.contains("ivschat_emulator_lost_responses_total{operation=\"UpdateRoom\"} 1\n"),
            "{text}"
        );
        metrics.record_late_commit("CreateRoom");
        assert_eq!(metrics.late_commits("CreateRoom"), 1);
        assert!(
            metrics
                .prometheus_text()
                .contains("ivschat_emulator_late_commits_total{operation=\"CreateRoom\"} 1\n")
        );
        metrics.reset();
        assert_eq!(metrics.total("CreateRoom"), 0);
        assert_eq!(metrics.lost_responses("UpdateRoom"), 0);
        assert_eq!(metrics.late_commits("CreateRoom"), 0);
    }

    #[test]
    fn scoped_and_sts_counters() {
        let metrics = Metrics::default();
        let west = ArnScope::new("111111111111", "us-west-2");
        let eu = ArnScope::new("111111111111", "eu-west-1");
        metrics.record_scoped(&west, "CreateRoom", SUCCESS);
        metrics.record_scoped(&west, "CreateRoom", "ThrottlingException");
        metrics.record_scoped(&eu, "CreateRoom", SUCCESS);
        metrics.record_sts("AssumeRole", SUCCESS);
        metrics.record_sts("AssumeRole", "AccessDenied");
        assert_eq!(
            metrics.scoped_total("111111111111", "us-west-2", "CreateRoom"),
            2
        );
        assert_eq!(
            metrics.scoped_total("111111111111", "eu-west-1", "CreateRoom"),
            1
        );
        assert_eq!(
            metrics.scoped_total("222222222222", "us-west-2", "CreateRoom"),
            0
        );
        assert_eq!(metrics.sts_count("AssumeRole", "AccessDenied"), 1);
        assert_eq!(metrics.sts_total("AssumeRole"), 2);
        let text = metrics.prometheus_text();
        assert!(
            text.contains("ivschat_emulator_scope_requests_total{account=\"111111111111\",region=\"eu-west-1\",operation=\"CreateRoom\",outcome=\"success\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ivschat_emulator_sts_requests_total{action=\"AssumeRole\",outcome=\"AccessDenied\"} 1\n"),
            "{text}"
        );
        let json = metrics.json();
        assert_eq!(json["scopeRequests"].as_array().map(Vec::len), Some(3));
        assert_eq!(json["stsRequests"][0]["action"], "AssumeRole");
        metrics.reset();
        assert_eq!(metrics.sts_total("AssumeRole"), 0);
        assert_eq!(
            metrics.scoped_total("111111111111", "us-west-2", "CreateRoom"),
            0
        );
    }

    #[test]
    fn the_request_log_keeps_order_caller_and_outcome_and_is_bounded() {
        let metrics = Metrics::default();
        metrics.record_from("CreateRoom", SUCCESS, Some("first"));
        metrics.record_from("GetRoom", "ResourceNotFoundException", Some("second"));
        metrics.record("ListRooms", SUCCESS);
        metrics.record_from("UpdateRoom", SUCCESS, Some("first"));
        let log = metrics.requests();
        let seen: Vec<(u64, &str, &str, Option<&str>)> = log
            .iter()
            .map(|r| (r.sequence, r.operation, r.outcome, r.app.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (1, "CreateRoom", SUCCESS, Some("first")),
                (2, "GetRoom", "ResourceNotFoundException", Some("second")),
                (3, "ListRooms", SUCCESS, None),
                (4, "UpdateRoom", SUCCESS, Some("first")),
            ]
        );
        // One copy of each name, shared by its records.
        assert!(Arc::ptr_eq(
            log[0].app.as_ref().expect("app"),
            log[3].app.as_ref().expect("app")
        ));
        // The counters count the same requests.
        assert_eq!(metrics.total("CreateRoom") + metrics.total("UpdateRoom"), 2);

        for _ in 0..REQUEST_LOG_CAPACITY {
            metrics.record("GetRoom", SUCCESS);
        }
        let log = metrics.requests();
        assert_eq!(log.len(), REQUEST_LOG_CAPACITY);
        assert_eq!(log[0].sequence, 5, "the oldest are dropped first");
        assert_eq!(
            log.last().map(|r| r.sequence),
            Some(4 + REQUEST_LOG_CAPACITY as u64)
        );
        metrics.reset();
        assert!(metrics.requests().is_empty());
        metrics.record("GetRoom", SUCCESS);
        assert_eq!(metrics.requests()[0].sequence, 1, "numbered from the reset");
    }
}
