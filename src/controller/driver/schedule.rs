//! The resync schedule of one kind: how often its account-wide listing runs, and so how long an object
//! confirmed in sync is left alone. Both follow one period, the one [`ResyncSchedule::period`] gives.
//!
//! The configured period (`--resync-period`) holds while one complete listing of the account fits in it
//! under the listing operation's rate budget. When the account outgrows it (100,000 rooms are 2,000
//! ListRooms calls, 400 s at 5 TPS), listing on the configured period would spend the whole ListRooms
//! budget on listings, and the ownership lookups that precede some creates (a filtered ListRooms) would
//! wait behind them: creates would starve. So the period is stretched instead, to the time the listing
//! needs within [`LISTING_SHARE`] of the budget, and the process says so: a warning when it changes, and
//! the `ivschat_operator_resync_period_seconds`, `ivschat_operator_resync_stretched` and
//! `ivschat_operator_listing_pages` metrics. Drift is then found later than configured, but it is found,
//! and creates keep their share.

use super::ManagedKind;
use crate::controller::accounts::ScopeKey;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The share of the listing operation's rate budget that listings may use over time. The other half is
/// left to the calls that share the operation's budget and that someone waits for: the ownership lookups
/// before creates (ListRooms filtered by name) and the complete listings creates ask for. Half keeps a
/// lookup's wait for a slot short even while a listing runs, and leaves the period twice the listing's
/// own duration at the budget's pace.
pub const LISTING_SHARE: f64 = 0.5;

/// Resources per listing page (the most ListRooms and ListLoggingConfigurations return).
pub const PAGE_SIZE: u64 = 50;

/// The most pages a listing may take per `period` under `listing_budget` calls per second, at
/// [`LISTING_SHARE`] of it.
pub fn pages_per_period(period: Duration, listing_budget: f64) -> u64 {
    // The relative tolerance absorbs binary fractions: 180 s x 0.7/s x 0.5 is 63 pages, which floating
    // point computes as 62.99999999999999.
    let pages = period.as_secs_f64() * listing_budget * LISTING_SHARE * (1.0 + 1e-9);
    if pages.is_finite() && pages > 0.0 {
        pages.floor() as u64
    } else {
        0
    }
}

/// The resync period to keep after a complete listing of `last_listing_pages` pages (calls): `configured`
/// while that many pages fit in it at [`LISTING_SHARE`] of `listing_budget` (the listing operation's
/// calls per second), else the time that share needs for them, rounded up to the millisecond. No budget
/// (`--aws-rate-limit none`, or an operation it does not limit) leaves nothing to fit: `configured`; so
/// does an unknown page count, before the first listing.
pub fn effective_resync_period(
    configured: Duration,
    listing_budget: Option<f64>,
    last_listing_pages: Option<u64>,
) -> Duration {
    let (Some(budget), Some(pages)) = (listing_budget, last_listing_pages) else {
        return configured;
    };
    if !(budget.is_finite() && budget > 0.0) || pages <= pages_per_period(configured, budget) {
        return configured;
    }
    let needed_ms = (pages as f64 * 1000.0 / (budget * LISTING_SHARE)).ceil();
    configured.max(Duration::from_millis(needed_ms as u64))
}

/// The schedule of one kind's listings and resyncs, shared by its listing loop and its objects' memory.
#[derive(Debug)]
pub(super) struct ResyncSchedule {
    kind: &'static str,
    /// The listing's operation (`ListRooms`) and, in words, what it lists (`rooms`), for the log lines.
    list_operation: &'static str,
    listed_resources: &'static str,
    configured: Duration,
    /// The listing operation's calls per second under the client-side budget, if it has one.
    listing_budget: Option<f64>,
    /// The period in effect: `configured` until a listing shows an account does not fit in it.
    period: Mutex<Duration>,
    /// The pages of each (account, region)'s last complete listing: the largest sets the period, which
    /// every scope's listings and every object's memory follow (each scope has the same budget).
    pages: Mutex<HashMap<ScopeKey, u64>>,
    metrics: Metrics,
}

impl ResyncSchedule {
    /// The schedule of `K`, whose listing operation has `listing_budget` calls per second under the
    /// client-side budget (`None`: unlimited).
    pub(super) fn of<K: ManagedKind>(
        configured: Duration,
        listing_budget: Option<f64>,
        metrics: Metrics,
    ) -> Self {
        metrics.set_resync_period(K::KIND, configured, false);
        ResyncSchedule {
            kind: K::KIND,
            list_operation: K::LIST_OPERATION,
            listed_resources: K::LISTED_RESOURCES,
            configured,
            listing_budget,
            period: Mutex::new(configured),
            pages: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn period_lock(&self) -> MutexGuard<'_, Duration> {
        // A duration cannot be left half written.
        self.period
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The resync period in effect: listings start this far apart, and an object confirmed in sync is
    /// left alone for about as long.
    pub(super) fn period(&self) -> Duration {
        *self.period_lock()
    }

    /// How long an object confirmed in sync is left alone: one period plus 5-25 %, so later than the next
    /// listing (which starts one period after the previous one) and spread so objects do not wake together.
    pub(super) fn in_sync_for(&self) -> Duration {
        self.period().mul_f64(rand::random_range(1.05..=1.25))
    }

    /// Says at start-up what one configured period can list under the budget, so that an account near
    /// the limit is noticed before the period stretches.
    pub(super) fn announce(&self) {
        match self.listing_budget {
            Some(budget) => tracing::info!(
                kind = self.kind,
                resync = ?self.configured,
                budget,
                "a resync period of {:?} lists at most {} {} under the {} budget of {budget}/s (listings keep to {}% of it; a larger account stretches the period)",
                self.configured,
                pages_per_period(self.configured, budget) * PAGE_SIZE,
                self.listed_resources,
                self.list_operation,
                LISTING_SHARE * 100.0,
            ),
            None => tracing::info!(
                kind = self.kind,
                resync = ?self.configured,
                "no client-side budget for {}: the resync period of {:?} is kept whatever the number of {}",
                self.list_operation,
                self.configured,
                self.listed_resources,
            ),
        }
    }

    /// A complete listing of `scope` took `pages` calls: the period that follows it (the next listing
    /// starts that long after this one started), set by the largest scope's last listing. Says so when the
    /// period changes.
    pub(super) fn listed(&self, scope: &ScopeKey, pages: u64) -> Duration {
        let pages = {
            let mut by_scope = self
                .pages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            by_scope.insert(scope.clone(), pages);
            by_scope.values().copied().max().unwrap_or(pages)
        };
        let period = effective_resync_period(self.configured, self.listing_budget, Some(pages));
        let stretched = period > self.configured;
        self.metrics.listing_completed(self.kind, pages);
        self.metrics.set_resync_period(self.kind, period, stretched);
        let previous = std::mem::replace(&mut *self.period_lock(), period);
        if period != previous {
            if stretched {
                tracing::warn!(
                    kind = self.kind,
                    pages,
                    configured = ?self.configured,
                    stretched = ?period,
                    budget = self.listing_budget,
                    "one complete listing of the account ({pages} {} calls, about {} {}) does not fit in the resync period of {:?} under the rate budget: the resync period is stretched to {period:?}, so that creates keep their share of the budget",
                    self.list_operation,
                    pages * PAGE_SIZE,
                    self.listed_resources,
                    self.configured,
                );
            } else {
                tracing::info!(
                    kind = self.kind,
                    pages,
                    resync = ?period,
                    "the account's listing ({pages} {} calls) fits in the resync period again: back to {period:?}",
                    self.list_operation,
                );
            }
        }
        period
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ChatRoom;

    const PERIOD: Duration = Duration::from_secs(30);

    #[test]
    fn a_listing_that_fits_in_its_share_keeps_the_configured_period() {
        // 30 s at half of 5/s: 75 pages, 3,750 rooms.
        assert_eq!(pages_per_period(PERIOD, 5.0), 75);
        for pages in [1, 40, 75] {
            assert_eq!(
                effective_resync_period(PERIOD, Some(5.0), Some(pages)),
                PERIOD,
                "{pages} pages"
            );
        }
    }

    #[test]
    fn a_listing_that_does_not_fit_stretches_the_period_to_what_its_share_needs() {
        // One page over the boundary: 76 pages at 2.5/s.
        assert_eq!(
            effective_resync_period(PERIOD, Some(5.0), Some(76)),
            Duration::from_millis(30_400)
        );
        // The example: 100,000 rooms, 2,000 pages, 400 s at the whole 5/s, so 800 s at half.
        assert_eq!(
            effective_resync_period(PERIOD, Some(5.0), Some(2_000)),
            Duration::from_secs(800)
        );
        // Logging configurations at 3/s: 46 pages at 1.5/s, rounded up to the millisecond.
        assert_eq!(pages_per_period(PERIOD, 3.0), 45);
        assert_eq!(
            effective_resync_period(PERIOD, Some(3.0), Some(46)),
            Duration::from_millis(30_667)
        );
    }

    #[test]
    fn without_a_budget_or_a_page_count_the_configured_period_holds() {
        assert_eq!(effective_resync_period(PERIOD, None, Some(2_000)), PERIOD);
        assert_eq!(effective_resync_period(PERIOD, Some(5.0), None), PERIOD);
        assert_eq!(
            effective_resync_period(PERIOD, Some(0.0), Some(2_000)),
            PERIOD
        );
        assert_eq!(
            effective_resync_period(PERIOD, Some(f64::INFINITY), Some(2_000)),
            PERIOD
        );
    }

    #[test]
    fn the_boundary_holds_for_fractional_periods_and_budgets() {
        // 100 ms x 3/s x 0.5 is 0.15 pages: none fits, so one page needs 667 ms.
        assert_eq!(pages_per_period(Duration::from_millis(100), 3.0), 0);
        assert_eq!(
            effective_resync_period(Duration::from_millis(100), Some(3.0), Some(1)),
            Duration::from_millis(667)
        );
        // 1 s x 2.5/s x 0.5 = 1.25: one page fits, two need 1.6 s.
        assert_eq!(pages_per_period(Duration::from_secs(1), 2.5), 1);
        assert_eq!(
            effective_resync_period(Duration::from_secs(1), Some(2.5), Some(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            effective_resync_period(Duration::from_secs(1), Some(2.5), Some(2)),
            Duration::from_millis(1_600)
        );
        // Exact in decimal, not in binary: 180 s x 0.7/s x 0.5 is 63 pages, not 62.
        assert_eq!(pages_per_period(Duration::from_secs(180), 0.7), 63);
        assert_eq!(
            effective_resync_period(Duration::from_secs(180), Some(0.7), Some(63)),
            Duration::from_secs(180)
        );
    }

    fn gauge(metrics: &Metrics, series: &str) -> Option<f64> {
        let text = metrics.encode().expect("encoding");
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{series} ")))
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn the_schedule_follows_the_last_listing_and_shows_it_in_the_metrics() {
        let metrics = Metrics::new();
        let schedule = ResyncSchedule::of::<ChatRoom>(PERIOD, Some(5.0), metrics.clone());
        let period = "ivschat_operator_resync_period_seconds{kind=\"ChatRoom\"}";
        let stretched = "ivschat_operator_resync_stretched{kind=\"ChatRoom\"}";
        let pages = "ivschat_operator_listing_pages{kind=\"ChatRoom\"}";
        assert_eq!(schedule.period(), PERIOD, "before the first listing");
        assert_eq!(gauge(&metrics, period), Some(30.0));
        assert_eq!(gauge(&metrics, stretched), Some(0.0));

        assert_eq!(schedule.listed(&home(), 2_000), Duration::from_secs(800));
        assert_eq!(schedule.period(), Duration::from_secs(800));
        assert_eq!(gauge(&metrics, period), Some(800.0));
        assert_eq!(gauge(&metrics, stretched), Some(1.0));
        assert_eq!(gauge(&metrics, pages), Some(2_000.0));
        let in_sync_for = schedule.in_sync_for();
        assert!(
            in_sync_for >= Duration::from_secs(840) && in_sync_for <= Duration::from_secs(1_000),
            "objects follow the stretched period: {in_sync_for:?}"
        );

        // The account shrank: back to the configured period.
        assert_eq!(schedule.listed(&home(), 10), PERIOD);
        assert_eq!(gauge(&metrics, period), Some(30.0));
        assert_eq!(gauge(&metrics, stretched), Some(0.0));
        assert_eq!(gauge(&metrics, pages), Some(10.0));

        // Another scope's larger listing sets the period for all, until it shrinks too.
        let other = ScopeKey::new(Some("prod"), "eu-west-1");
        assert_eq!(schedule.listed(&other, 2_000), Duration::from_secs(800));
        assert_eq!(schedule.listed(&home(), 10), Duration::from_secs(800));
        assert_eq!(schedule.listed(&other, 5), PERIOD);
    }

    fn home() -> ScopeKey {
        ScopeKey::new(None, "us-west-2")
    }
}
