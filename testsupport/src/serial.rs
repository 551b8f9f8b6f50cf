//! Which tests of one binary may run at the same time. libtest runs a binary's tests on as many threads as
//! there are cores; when every suite was a binary of its own, a suite with a single test had the machine to
//! itself. The tests with tight time bounds (token expiry and quiet periods in the chat loop, lease
//! hand-over, metrics counted over a settling period, 300 ms AWS attempt timeouts, quota bursts) take
//! [`alone`]: no heavy test runs beside them. Heavy tests, the ones that run an operator or spawn clients
//! (plugin, AWS CLI, node) or dozens of tasks, take [`beside_others`]: they still run two at a time, as they
//! did within their own suites. Light tests (kubectl and schema checks, single SDK calls) take neither.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static HEAVY: RwLock<()> = RwLock::const_new(());

/// Held for the whole test: waits until no heavy test runs, and keeps them out until dropped. The lock is
/// fair, so a waiting `alone` test is not starved by heavy tests that start after it.
pub async fn alone() -> RwLockWriteGuard<'static, ()> {
    HEAVY.write().await
}

/// Held for the whole test (once: a second call while an `alone` test waits would deadlock): runs beside
/// other heavy tests, never beside one that runs [`alone`].
pub async fn beside_others() -> RwLockReadGuard<'static, ()> {
    HEAVY.read().await
}
