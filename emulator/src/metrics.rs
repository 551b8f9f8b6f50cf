//! Request counters per operation and outcome, readable from Rust and as Prometheus text
//! (`GET /_emulator/metrics`). Labels are bounded: the operation is one of the 17 names or `unknown`, the
//! outcome is `success` or one of the error type names the emulator can produce.
//!
//! A lost response (see `lostResponseRate` in [`super::traffic`]) is counted under what the client saw,
//! `InternalServerException`, like any other 500, so request totals and error shares stay what the client
//! observed; a second counter, `ivschat_emulator_lost_responses_total{operation}`, counts those of them whose
//! change was nevertheless made, which no outcome label could tell apart from an injected fault.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Operation label for requests that match no operation.
pub const UNKNOWN_OPERATION: &str = "unknown";
/// Outcome label of a successful request.
pub const SUCCESS: &str = "success";

/// A copy of the counters: (operation, outcome) → count.
pub type MetricsSnapshot = BTreeMap<(String, String), u64>;

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Operation → requests whose change was made but whose response was replaced by a 500.
    lost_responses: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn record(&self, operation: &'static str, outcome: &'static str) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counters.entry((operation, outcome)).or_insert(0) += 1;
    }

    /// Counts a request of `operation` whose change was kept but whose response was dropped (its outcome is
    /// recorded separately with [`Metrics::record`]).
    pub fn record_lost_response(&self, operation: &'static str) {
        let mut lost = self
            .lost_responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *lost.entry(operation).or_insert(0) += 1;
    }

    /// Requests of `operation` whose change was made although the client got a 500.
    pub fn lost_responses(&self, operation: &str) -> u64 {
        let lost = self
            .lost_responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lost.get(operation).copied().unwrap_or(0)
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
        self.lost_responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
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
            "# HELP ivschat_emulator_lost_responses_total API requests whose change was made but whose response \
             was replaced by an injected 500 (also counted as InternalServerException above).\n\
             # TYPE ivschat_emulator_lost_responses_total counter\n",
        );
        let lost = self
            .lost_responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (operation, count) in lost {
            let _ = writeln!(
                text,
                "ivschat_emulator_lost_responses_total{{operation=\"{operation}\"}} {count}"
            );
        }
        text
    }
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
        metrics.reset();
        assert_eq!(metrics.total("CreateRoom"), 0);
        assert_eq!(metrics.lost_responses("UpdateRoom"), 0);
    }
}
