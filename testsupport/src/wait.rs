//! Polling until something holds, with a bound: the one wait loop of the suites.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `probe` every `interval` until it returns `Ok`, and returns that value; fails the test with `what`
/// and the last `Err` once `within` has passed.
pub async fn until<T, E, F, Fut>(
    within: Duration,
    interval: Duration,
    what: &str,
    mut probe: F,
) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what} within {within:?}: {last:#?}"
            ),
        }
        tokio::time::sleep(interval).await;
    }
}

/// [`until`] for synchronous probes on a plain thread (no runtime), sleeping the thread between tries.
pub fn until_blocking<T, E, F>(within: Duration, interval: Duration, what: &str, mut probe: F) -> T
where
    E: Debug,
    F: FnMut() -> Result<T, E>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what} within {within:?}: {last:#?}"
            ),
        }
        std::thread::sleep(interval);
    }
}
