//! Which tests of one binary may run at the same time. libtest runs a binary's tests on as many threads as
//! there are cores; when the suites were separate binaries, a suite with a single test had the machine to
//! itself. Those tests are timing-sensitive (token expiry, lease hand-over, counts over a quiet period), so
//! they take [`alone`]: no other heavy test (one that runs an operator) runs beside them. Heavy tests that
//! always ran next to one another take [`beside_others`]. Light tests (kubectl, schema checks) take neither.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static HEAVY: RwLock<()> = RwLock::const_new(());

/// Held for the whole test: waits until no heavy test runs, and keeps them out until dropped.
pub async fn alone() -> RwLockWriteGuard<'static, ()> {
    HEAVY.write().await
}

/// Held for the whole test: runs beside other heavy tests, never beside one that runs [`alone`].
pub async fn beside_others() -> RwLockReadGuard<'static, ()> {
    HEAVY.read().await
}
