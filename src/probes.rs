//! The liveness and readiness probes: what the replica reports ([`Probes`]) and the `/healthz` and
//! `/readyz` routes that serve it ([`router`]). The process ([`crate::run`]) sets the state and serves the
//! routes.

use axum::http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the probes report.
#[derive(Debug, Default)]
pub struct Probes {
    /// Clients built, servers up: the replica can serve (a follower is ready too, or a rolling update could
    /// never finish).
    ready: AtomicBool,
    /// Set when the replica can no longer work (the controllers ended on their own, or leadership was lost):
    /// liveness fails so the kubelet restarts it.
    broken: AtomicBool,
}

impl Probes {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn set_broken(&self) {
        self.broken.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.is_broken()
    }

    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }
}

/// The `/healthz` answer: fails only once the replica is broken.
fn liveness(probes: &Probes) -> (StatusCode, &'static str) {
    if probes.is_broken() {
        (StatusCode::SERVICE_UNAVAILABLE, "broken\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

/// The `/readyz` answer.
fn readiness(probes: &Probes) -> (StatusCode, &'static str) {
    if probes.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// `/healthz` (liveness) and `/readyz` (readiness), answering from `probes`.
pub fn router(probes: Arc<Probes>) -> axum::Router {
    let live = probes.clone();
    axum::Router::new()
        .route(
            "/healthz",
            axum::routing::get(move || async move { liveness(&live) }),
        )
        .route(
            "/readyz",
            axum::routing::get(move || async move { readiness(&probes) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_fail_readiness_and_liveness_when_broken() {
        let probes = Probes::default();
        assert!(!probes.is_ready());
        probes.set_ready(true);
        assert!(probes.is_ready() && !probes.is_broken());
        probes.set_broken();
        assert!(!probes.is_ready() && probes.is_broken());
    }

    #[test]
    fn the_routes_answer_from_the_probe_state() {
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        // (ready set, broken set) -> (/healthz, /readyz)
        let cases = [
            (
                (false, false),
                (StatusCode::OK, "ok\n"),
                (unavailable, "not ready\n"),
            ),
            (
                (true, false),
                (StatusCode::OK, "ok\n"),
                (StatusCode::OK, "ok\n"),
            ),
            (
                (false, true),
                (unavailable, "broken\n"),
                (unavailable, "not ready\n"),
            ),
            (
                (true, true),
                (unavailable, "broken\n"),
                (unavailable, "not ready\n"),
            ),
        ];
        for ((ready, broken), healthz, readyz) in cases {
            let probes = Probes::default();
            probes.set_ready(ready);
            if broken {
                probes.set_broken();
            }
            assert_eq!(liveness(&probes), healthz, "ready {ready}, broken {broken}");
            assert_eq!(readiness(&probes), readyz, "ready {ready}, broken {broken}");
        }
    }
}
