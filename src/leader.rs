//! Leader election through a `coordination.k8s.io` Lease, so that several replicas can run and exactly one
//! reconciles.
//!
//! The algorithm is client-go's: a candidate reads the Lease every retry period; it takes the Lease when
//! nobody holds it (released, or never held) or when the holder's record has not changed for a whole lease
//! duration *as observed locally* (so clock skew between nodes does not matter). Every write is a
//! `replace` carrying the resourceVersion that was read, so two candidates can never both win: the second
//! gets 409 Conflict. The leader renews every retry period and gives up (see [`LeaderElection::lost`]) when
//! it could not renew for the renew deadline, which is shorter than the lease duration, so it stops before
//! anyone else may take over. [`LeaderElection::release`] empties the holder, so a successor takes over at
//! its next retry instead of waiting for expiry.
//!
//! Fenced: every Lease call is bounded in time (a renewal by the time left before the renew deadline, an
//! acquisition or release by the renew deadline), so a call that hangs cannot keep a leader leading past
//! its deadline. While it leads, [`LeaderElection::leading_until`] says until when: the start of the last
//! successful renewal plus the renew deadline (the start, because the API server recorded the renewal no
//! earlier, and a standby counts the lease duration from when it saw the record change). That instant is
//! the fence the process hands its AWS access, which sends nothing past it.
//!
//! Written here rather than taken from a crate: the only kube-5 compatible crate (kube-lease-manager 0.13)
//! lets followers sleep until the observed expiry, so a released Lease is only taken after a full lease
//! duration, and it unwraps in library code.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
// The runtime's clock, so that the lease timing can be tested with a paused clock.
use tokio::time::Instant;

/// Who competes for which Lease, and the timing.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub lease_name: String,
    /// This replica's name in `holderIdentity`.
    pub identity: String,
    /// How long a holder's record stays valid without change.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops leading (must be below `lease_duration`).
    pub renew_deadline: Duration,
    /// How often candidates look and the leader renews.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// The client-go proportions: renew deadline 2/3 and retry period 2/15 of the lease duration (15 s →
    /// 10 s and 2 s).
    pub fn new(
        namespace: &str,
        lease_name: &str,
        identity: String,
        lease_duration: Duration,
    ) -> Self {
        LeaseSettings {
            namespace: namespace.to_owned(),
            lease_name: lease_name.to_owned(),
            identity,
            lease_duration,
            renew_deadline: lease_duration.mul_f64(2.0 / 3.0),
            retry_period: lease_duration.mul_f64(2.0 / 15.0),
        }
    }
}

/// This replica's name: the pod name (POD_NAME), else the host name (HOSTNAME), else `ivschat-operator`.
pub fn replica_name() -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "ivschat-operator".to_owned())
}

/// This replica's identity: [`replica_name`] plus a random suffix so that two processes on one host never
/// share an identity.
pub fn default_identity() -> String {
    format!("{}_{:08x}", replica_name(), rand::random::<u32>())
}

/// What a candidate should do with the Lease it just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// Write ourselves as holder (acquire or renew).
    Take,
    /// Someone else holds a valid Lease.
    Wait,
}

/// The holder's record as last seen, and when it was first seen in that form (local clock).
#[derive(Clone, Debug)]
pub struct Observation {
    record: Option<LeaseSpec>,
    since: Instant,
}

impl Observation {
    /// What a candidate remembers after reading `record` at `now`: an unchanged record keeps the time it was
    /// first seen, a changed one (a renewal, a new holder) starts the clock again.
    fn after(
        previous: Option<Observation>,
        record: Option<LeaseSpec>,
        now: Instant,
    ) -> Observation {
        match previous {
            Some(previous) if previous.record == record => previous,
            _ => Observation { record, since: now },
        }
    }
}

/// What a candidate has seen of the Lease across its looks.
#[derive(Debug, Default)]
struct Sightings {
    last: Option<Observation>,
}

impl Sightings {
    /// One look at the Lease just read (`None`: there is none), now: what to do, and the sighting recorded.
    fn look(
        &mut self,
        identity: &str,
        lease: Option<&Lease>,
        lease_duration: Duration,
    ) -> Decision {
        let now = Instant::now();
        let record = lease.and_then(|lease| lease.spec.clone());
        // A Lease without a spec is free.
        let observed = lease.map(|_| record.clone().unwrap_or_default());
        let decision = decide(
            identity,
            observed.as_ref(),
            self.last.as_ref(),
            now,
            lease_duration,
        );
        self.last = Some(Observation::after(self.last.take(), record, now));
        decision
    }
}

/// The pure decision: `observed` is the Lease's spec just read (`None`: no Lease), `previous` what this
/// candidate saw before.
pub fn decide(
    identity: &str,
    observed: Option<&LeaseSpec>,
    previous: Option<&Observation>,
    now: Instant,
    lease_duration: Duration,
) -> Decision {
    let Some(spec) = observed else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() || holder == identity {
        return Decision::Take;
    }
    // Expired when the record has not changed for the holder's lease duration since we first saw it.
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
        .unwrap_or(lease_duration);
    match previous {
        Some(previous) if previous.record.as_ref() == Some(spec) => {
            if now.duration_since(previous.since) >= duration {
                Decision::Take
            } else {
                Decision::Wait
            }
        }
        _ => Decision::Wait,
    }
}

/// A candidate (and, once [`LeaderElection::acquire`] returned, the leader).
pub struct LeaderElection {
    api: Api<Lease>,
    settings: LeaseSettings,
    sightings: Mutex<Sightings>,
    /// Until when this replica leads (`None`: it does not): set on acquisition, moved on by every renewal,
    /// `None` once the renewal task gives up or the Lease is released.
    leading_until: watch::Sender<Option<Instant>>,
    renewal: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Why a Lease write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("another replica changed the Lease first")]
    Conflict,
    #[error("Kubernetes API call on the Lease failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("no answer from the Kubernetes API on the Lease within {0:?}")]
    TimedOut(Duration),
}

/// `call` bounded by `limit` (a timeout is a failed call like any other).
async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, LeaseError>>,
) -> Result<T, LeaseError> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or(Err(LeaseError::TimedOut(limit)))
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl LeaderElection {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        LeaderElection {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            sightings: Mutex::new(Sightings::default()),
            leading_until: watch::channel(None).0,
            renewal: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// Until when this replica leads, as renewals move it on (`None`: it does not lead): the fence for
    /// whatever must stop before a successor may take over.
    pub fn leading_until(&self) -> watch::Receiver<Option<Instant>> {
        self.leading_until.subscribe()
    }

    /// Waits until this replica holds the Lease, then keeps renewing it in the background.
    pub async fn acquire(&self) -> anyhow::Result<()> {
        let acquired_at = acquire_when_free(&self.settings, || self.try_acquire_or_renew()).await;
        self.leading_until
            .send_replace(Some(acquired_at + self.settings.renew_deadline));
        let renewer = Renewer {
            api: self.api.clone(),
            settings: self.settings.clone(),
            leading_until: self.leading_until.clone(),
            acquired_at,
        };
        let task = tokio::spawn(renewer.run());
        if let Ok(mut slot) = self.renewal.lock()
            && let Some(old) = slot.replace(task)
        {
            old.abort();
        }
        Ok(())
    }

    /// Resolves when this replica stops leading because the Lease could not be renewed in time.
    pub async fn lost(&self) {
        let mut leading_until = self.leading_until.subscribe();
        // Ends when the value is `None` (also right away if it already is).
        let _ = leading_until.wait_for(Option::is_none).await;
    }

    /// One step: read the Lease and, if we may, write ourselves as its holder. `Ok(true)`: we hold it.
    async fn try_acquire_or_renew(&self) -> Result<bool, LeaseError> {
        let current = self.api.get_opt(&self.settings.lease_name).await?;
        let decision = self
            .sightings
            .lock()
            .map_err(|_| LeaseError::Conflict)?
            .look(
                &self.settings.identity,
                current.as_ref(),
                self.settings.lease_duration,
            );
        match decision {
            Decision::Wait => Ok(false),
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.lease_name.clone()),
                        namespace: Some(self.settings.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(held_by(&self.settings, None)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        Err(LeaseError::Conflict)
                    }
                    Err(error) => Err(error.into()),
                }
            }
            Decision::Take => {
                let Some(mut lease) = current else {
                    return Err(LeaseError::Conflict);
                };
                lease.spec = Some(held_by(&self.settings, lease.spec.as_ref()));
                replace(&self.api, &self.settings.lease_name, &lease).await?;
                Ok(true)
            }
        }
    }

    /// Gives the Lease up (holder emptied, so candidates take it at their next look) and stops renewing.
    /// Does nothing when another replica holds it. Bounded by the renew deadline: an API server that does
    /// not answer leaves the Lease to expire.
    pub async fn release(&self) -> anyhow::Result<()> {
        let renewal = self.renewal.lock().ok().and_then(|mut slot| slot.take());
        if let Some(task) = renewal {
            // Awaited, so that no renewal can land after the release below.
            task.abort();
            let _ = task.await;
        }
        self.leading_until.send_replace(None);
        bounded(self.settings.renew_deadline, self.empty_holder())
            .await
            .map_err(anyhow::Error::from)
    }

    /// The release's Lease calls: the holder emptied if it is us.
    async fn empty_holder(&self) -> Result<(), LeaseError> {
        let Some(mut lease) = self.api.get_opt(&self.settings.lease_name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
        replace(&self.api, &self.settings.lease_name, &lease).await
    }
}

/// The candidate's timing: `attempt` (read the Lease, take it if we may; `Ok(true)`: we hold it) every
/// retry period, each bounded by the renew deadline, until one wins. Returns when that attempt started,
/// from which the leadership's validity counts.
async fn acquire_when_free<A, F>(settings: &LeaseSettings, mut attempt: A) -> Instant
where
    A: FnMut() -> F,
    F: Future<Output = Result<bool, LeaseError>>,
{
    loop {
        let started = Instant::now();
        match bounded(settings.renew_deadline, attempt()).await {
            Ok(true) => return started,
            Ok(false) | Err(LeaseError::Conflict) => {}
            Err(error) => tracing::warn!(%error, "cannot read or write the leader Lease"),
        }
        tokio::time::sleep(settings.retry_period).await;
    }
}

/// The Lease spec with us as holder: acquire and transition times move only when the holder changes.
fn held_by(settings: &LeaseSettings, previous: Option<&LeaseSpec>) -> LeaseSpec {
    let now = now_micro();
    let was_ours =
        previous.and_then(|p| p.holder_identity.as_deref()) == Some(settings.identity.as_str());
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    let had_holder = previous
        .and_then(|p| p.holder_identity.as_deref())
        .is_some_and(|h| !h.is_empty());
    LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(
            i32::try_from(settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
        ),
        acquire_time: if was_ours {
            previous.and_then(|p| p.acquire_time.clone())
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        lease_transitions: Some(if was_ours || !had_holder && previous.is_none() {
            transitions
        } else {
            transitions.saturating_add(1)
        }),
        ..LeaseSpec::default()
    }
}

/// `replace` with the resourceVersion that was read: 409 means someone else wrote first.
async fn replace(api: &Api<Lease>, name: &str, lease: &Lease) -> Result<(), LeaseError> {
    match api.replace(name, &PostParams::default(), lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Err(LeaseError::Conflict),
        Err(error) => Err(error.into()),
    }
}

/// The leader's background renewal.
struct Renewer {
    api: Api<Lease>,
    settings: LeaseSettings,
    leading_until: watch::Sender<Option<Instant>>,
    /// When the winning acquisition started.
    acquired_at: Instant,
}

impl Renewer {
    async fn run(self) {
        renew_until_lost(
            &self.settings,
            self.acquired_at,
            &self.leading_until,
            || self.renew_once(),
        )
        .await;
        self.leading_until.send_replace(None);
    }

    async fn renew_once(&self) -> Result<(), RenewError> {
        let mut lease = self
            .api
            .get(&self.settings.lease_name)
            .await
            .map_err(|e| RenewError::Failed(e.into()))?;
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref());
        if holder != Some(self.settings.identity.as_str()) {
            return Err(RenewError::Lost);
        }
        lease.spec = Some(held_by(&self.settings, lease.spec.as_ref()));
        match replace(&self.api, &self.settings.lease_name, &lease).await {
            Ok(()) => Ok(()),
            Err(LeaseError::Conflict) => Err(RenewError::Failed(LeaseError::Conflict)),
            Err(error) => Err(RenewError::Failed(error)),
        }
    }
}

enum RenewError {
    Lost,
    Failed(LeaseError),
}

/// The leader's timing: `renew` every retry period, each attempt bounded by the time left before the renew
/// deadline (counted from the start of the last successful renewal, or of the acquisition at
/// `acquired_at`); every success moves `leading_until` on to its start plus the renew deadline. Returns
/// when leadership ends, because another replica holds the Lease or because no renewal succeeded in time.
async fn renew_until_lost<R, F>(
    settings: &LeaseSettings,
    acquired_at: Instant,
    leading_until: &watch::Sender<Option<Instant>>,
    mut renew: R,
) where
    R: FnMut() -> F,
    F: Future<Output = Result<(), RenewError>>,
{
    let mut valid_until = acquired_at + settings.renew_deadline;
    loop {
        tokio::time::sleep(settings.retry_period).await;
        let started = Instant::now();
        // A renewal the deadline cuts off is of no use even if it would succeed later.
        let left = valid_until.saturating_duration_since(started);
        match tokio::time::timeout(left, renew()).await {
            Ok(Ok(())) => {
                valid_until = started + settings.renew_deadline;
                leading_until.send_replace(Some(valid_until));
            }
            Ok(Err(RenewError::Lost)) => {
                tracing::warn!("another replica holds the leader Lease now");
                return;
            }
            Ok(Err(RenewError::Failed(error))) => {
                tracing::warn!(%error, "cannot renew the leader Lease");
            }
            Err(_) => tracing::warn!(
                timeout = ?left,
                "no answer to the Lease renewal before the renew deadline"
            ),
        }
        if Instant::now() >= valid_until {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn held(holder: &str, renewed_seconds: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(10),
            renew_time: Some(MicroTime(
                k8s_openapi::jiff::Timestamp::from_second(renewed_seconds).expect("timestamp"),
            )),
            ..LeaseSpec::default()
        }
    }

    fn lease(spec: Option<LeaseSpec>) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec,
        }
    }

    #[test]
    fn a_missing_lease_is_created_and_a_free_or_own_lease_is_taken() {
        let now = Instant::now();
        let lease = Duration::from_secs(10);
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..LeaseSpec::default()
        };
        let cases = [
            ("no Lease", None, Decision::Create),
            ("no holder", Some(LeaseSpec::default()), Decision::Take),
            ("released", Some(released), Decision::Take),
            ("our own", Some(held("me", 1)), Decision::Take),
        ];
        for (what, observed, expected) in cases {
            assert_eq!(
                decide("me", observed.as_ref(), None, now, lease),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn another_holder_expires_only_after_an_unchanged_lease_duration_seen_locally() {
        let start = Instant::now();
        let lease = Duration::from_secs(15);
        let other = held("other", 100);
        // First sight: wait, whatever the timestamps say (the clocks may differ).
        assert_eq!(
            decide("me", Some(&other), None, start, lease),
            Decision::Wait
        );
        let seen = Observation {
            record: Some(other.clone()),
            since: start,
        };
        let renewed = held("other", 102);
        // (record read, seconds since first sight) -> decision
        let cases = [
            // The record's own duration (10 s) counts, not ours.
            (&other, 9, Decision::Wait),
            (&other, 10, Decision::Take),
            // A renewal (a changed record) restarts the clock.
            (&renewed, 30, Decision::Wait),
        ];
        for (observed, seconds, expected) in cases {
            let now = start + Duration::from_secs(seconds);
            assert_eq!(
                decide("me", Some(observed), Some(&seen), now, lease),
                expected,
                "{seconds} s"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_candidate_takes_a_lease_over_once_unchanged_for_its_duration_on_its_own_clock() {
        let ours = Duration::from_secs(15);
        let other = lease(Some(held("other", 100)));
        let renewed = lease(Some(held("other", 102)));
        let no_spec = lease(None);
        let without_duration = lease(Some(LeaseSpec {
            lease_duration_seconds: None,
            ..held("other", 100)
        }));
        // Steps of (seconds passed since the previous look, Lease read) -> decision, each case a fresh
        // candidate.
        let cases = [
            (
                "the record's 10 s count from first sight",
                vec![
                    (0, Some(&other), Decision::Wait),
                    (9, Some(&other), Decision::Wait),
                    (1, Some(&other), Decision::Take),
                ],
            ),
            (
                "a renewal restarts the clock",
                vec![
                    (0, Some(&other), Decision::Wait),
                    (6, Some(&renewed), Decision::Wait),
                    (6, Some(&renewed), Decision::Wait),
                    (4, Some(&renewed), Decision::Take),
                ],
            ),
            (
                "without a duration in the record, ours (15 s) counts",
                vec![
                    (0, Some(&without_duration), Decision::Wait),
                    (10, Some(&without_duration), Decision::Wait),
                    (5, Some(&without_duration), Decision::Take),
                ],
            ),
            (
                "a Lease without a spec is free, a missing one is created",
                vec![
                    (0, Some(&no_spec), Decision::Take),
                    (0, None, Decision::Create),
                ],
            ),
            (
                "a Lease that disappears and comes back is seen anew",
                vec![
                    (0, Some(&other), Decision::Wait),
                    (8, None, Decision::Create),
                    (8, Some(&other), Decision::Wait),
                    (9, Some(&other), Decision::Wait),
                    (1, Some(&other), Decision::Take),
                ],
            ),
        ];
        for (what, steps) in cases {
            let mut sightings = Sightings::default();
            for (step, (seconds, read, expected)) in steps.into_iter().enumerate() {
                advance(Duration::from_secs(seconds)).await;
                assert_eq!(
                    sightings.look("me", read, ours),
                    expected,
                    "{what}: step {step}"
                );
            }
        }
    }

    #[test]
    fn holding_keeps_the_acquire_time_and_counts_transitions() {
        let settings = LeaseSettings::new("ns", "lease", "me".to_owned(), Duration::from_secs(15));
        assert_eq!(settings.renew_deadline, Duration::from_secs(10));
        assert_eq!(settings.retry_period, Duration::from_secs(2));
        let first = held_by(&settings, None);
        assert_eq!(first.lease_transitions, Some(0));
        assert_eq!(first.lease_duration_seconds, Some(15));
        let renewed = held_by(&settings, Some(&first));
        assert_eq!(renewed.acquire_time, first.acquire_time);
        assert_eq!(renewed.lease_transitions, Some(0));
        let taken_over = held_by(&settings, Some(&held("other", 5)));
        assert_eq!(taken_over.lease_transitions, Some(1));
        assert_eq!(taken_over.holder_identity.as_deref(), Some("me"));
    }

    /// How one renewal attempt ends, in a scripted run.
    #[derive(Clone, Copy, Debug)]
    enum Answer {
        Renewed,
        Failed,
        Lost,
    }

    #[tokio::test(start_paused = true)]
    async fn the_leader_renews_every_retry_period_and_stops_at_the_renew_deadline() {
        use Answer::{Failed, Lost, Renewed};
        // Renew deadline 10 s, retry period 2 s.
        let settings = LeaseSettings::new("ns", "lease", "me".to_owned(), Duration::from_secs(15));
        // (answers of the successive renewals, every later one failing) -> leadership ends after, seconds
        let cases: [(&[Answer], u64); 6] = [
            (&[], 10),
            (&[Renewed, Renewed, Renewed], 16),
            // A renewal just in time (at 10 s, after four failures) keeps the lead for another deadline.
            (&[Failed, Failed, Failed, Failed, Renewed], 20),
            (&[Lost], 2),
            (&[Renewed, Lost], 4),
            (&[Renewed, Failed, Failed, Renewed, Lost], 10),
        ];
        for (answers, ends_after) in cases {
            let started = Instant::now();
            let mut attempts = Vec::new();
            let mut script = answers.iter().copied();
            let leading_until = watch::channel(None).0;
            renew_until_lost(&settings, started, &leading_until, || {
                attempts.push(started.elapsed());
                let answer = script.next().unwrap_or(Failed);
                async move {
                    match answer {
                        Renewed => Ok(()),
                        Failed => Err(RenewError::Failed(LeaseError::Conflict)),
                        Lost => Err(RenewError::Lost),
                    }
                }
            })
            .await;
            assert_eq!(
                started.elapsed(),
                Duration::from_secs(ends_after),
                "{answers:?}"
            );
            let every_retry_period: Vec<Duration> = (1..=ends_after / 2)
                .map(|n| Duration::from_secs(2 * n))
                .collect();
            assert_eq!(attempts, every_retry_period, "{answers:?}");
        }
    }

    /// How one Lease call ends, in a scripted run with hanging and slow calls.
    #[derive(Clone, Copy, Debug)]
    enum Call {
        Answers(u64, Answer),
        Hangs,
    }

    impl Call {
        async fn run(self) -> Result<(), RenewError> {
            match self {
                Call::Answers(after, answer) => {
                    tokio::time::sleep(Duration::from_secs(after)).await;
                    match answer {
                        Answer::Renewed => Ok(()),
                        Answer::Failed => Err(RenewError::Failed(LeaseError::Conflict)),
                        Answer::Lost => Err(RenewError::Lost),
                    }
                }
                Call::Hangs => std::future::pending().await,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_renewal_ends_leadership_at_the_renew_deadline_and_the_fence_counts_from_each_start()
     {
        use Answer::{Failed, Renewed};
        use Call::{Answers, Hangs};
        // Renew deadline 10 s, retry period 2 s.
        let settings = LeaseSettings::new("ns", "lease", "me".to_owned(), Duration::from_secs(15));
        // (calls, every later one hanging) -> (attempts at, seconds; leadership ends after; last validity
        // published, None: none after the acquisition)
        type Case = (&'static [Call], &'static [u64], u64, Option<u64>);
        let cases: [Case; 5] = [
            // The first renewal hangs: cut off at the deadline, not left to hang.
            (&[], &[2], 10, None),
            (&[Answers(0, Renewed)], &[2, 4], 12, Some(12)),
            // A slow success counts from its start (2 s), not its answer (5 s).
            (&[Answers(3, Renewed)], &[2, 7], 12, Some(12)),
            // A failure, then a hang: the hang gets only what is left (10 - 4 = 6 s).
            (&[Answers(0, Failed)], &[2, 4], 10, None),
            // A slow answer past the deadline is of no use.
            (&[Answers(20, Renewed)], &[2], 10, None),
        ];
        for (calls, attempts_at, ends_after, last_valid_until) in cases {
            let started = Instant::now();
            let leading_until = watch::channel(None).0;
            let mut attempts = Vec::new();
            let mut script = calls.iter().copied();
            renew_until_lost(&settings, started, &leading_until, || {
                attempts.push(started.elapsed());
                script.next().unwrap_or(Hangs).run()
            })
            .await;
            let what = format!("{calls:?}");
            assert_eq!(started.elapsed(), Duration::from_secs(ends_after), "{what}");
            let expected: Vec<Duration> = attempts_at
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect();
            assert_eq!(attempts, expected, "{what}");
            assert_eq!(
                *leading_until.borrow(),
                last_valid_until.map(|s| started + Duration::from_secs(s)),
                "{what}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_candidate_bounds_each_attempt_and_leads_from_the_winning_attempts_start() {
        let settings = LeaseSettings::new("ns", "lease", "me".to_owned(), Duration::from_secs(15));
        // (attempt results: None hangs, Some(after, holds)) -> (attempts at; the winner started at)
        type Attempt = Option<(u64, bool)>;
        let cases: [(&[Attempt], &[u64], u64); 3] = [
            (&[Some((0, true))], &[0], 0),
            // A hanging attempt is cut off at the renew deadline (10 s), then the retry period (2 s).
            (&[None, Some((0, false)), Some((1, true))], &[0, 12, 14], 14),
            // A slow win counts from its start.
            (&[Some((0, false)), Some((4, true))], &[0, 2], 2),
        ];
        for (script, attempts_at, won_at) in cases {
            let started = Instant::now();
            let mut attempts = Vec::new();
            let mut script = script.iter().copied();
            let won = acquire_when_free(&settings, || {
                attempts.push(started.elapsed());
                let attempt = script.next().flatten();
                async move {
                    match attempt {
                        Some((after, holds)) => {
                            tokio::time::sleep(Duration::from_secs(after)).await;
                            Ok(holds)
                        }
                        None => std::future::pending().await,
                    }
                }
            })
            .await;
            let expected: Vec<Duration> = attempts_at
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect();
            assert_eq!(attempts, expected, "{attempts_at:?}");
            assert_eq!(
                won,
                started + Duration::from_secs(won_at),
                "{attempts_at:?}"
            );
        }
    }
}
