//! Leader election with real operator processes: two `ivschat-operator run --leader-elect` processes against
//! one control plane and one emulator. Exactly one reconciles (AWS calls counted by the emulator and by each
//! process's own /metrics); SIGTERM of the leader hands over within a few seconds (the Lease is released);
//! SIGKILL of the leader hands over once the Lease expires. Plus the elector itself against the real API
//! server: exclusive, conflict-safe, released on demand.

use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_operator::crd::ChatRoom;
use ivschat_operator::leader::{LeaderElection, LeaseSettings};
use ivschat_testsupport::objects::wait_for_within;
use ivschat_testsupport::{
    apply, condition, control_plane, create_namespace, emulator, http, metrics, operator, serial,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Short enough for a test, long enough for a loaded machine: renew deadline 2.67 s, retry 0.53 s.
const LEASE_DURATION: Duration = Duration::from_secs(4);
const WAIT: Duration = Duration::from_secs(60);

struct Operator {
    process: operator::Process,
    metrics: SocketAddr,
    health: SocketAddr,
}

impl Operator {
    fn spawn(name: &str, emulator: &Emulator, namespace: &str, lease_namespace: &str) -> Operator {
        let control_plane = control_plane();
        let metrics = http::free_port();
        let health = http::free_port();
        let log = std::fs::File::create(
            control_plane
                .data_dir()
                .join(format!("operator-{namespace}-{name}.log")),
        )
        .expect("log file");
        let mut command = operator::run_command(
            Path::new(env!("CARGO_BIN_EXE_ivschat-operator")),
            control_plane,
            emulator,
            namespace,
        );
        command
            .args(["--resync-period", "30s"])
            .arg("--leader-elect")
            .args(["--leader-election-namespace", lease_namespace])
            .args(["--leader-election-lease-name", "ivschat-operator"])
            .arg(format!(
                "--leader-election-lease-duration={}s",
                LEASE_DURATION.as_secs()
            ))
            .arg(format!("--metrics-bind-address={metrics}"))
            .arg(format!("--health-probe-bind-address={health}"))
            .args(["--log-format", "json"])
            .env("POD_NAME", name)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        let operator = Operator {
            process: operator::Process::spawn(name, command),
            metrics,
            health,
        };
        // Up: the probe server answers.
        http::wait_ok(
            operator.health,
            "/readyz",
            WAIT,
            &format!("{name} never became ready"),
        );
        operator
    }

    fn metrics(&self) -> String {
        http::get(self.metrics, "/metrics")
            .map(|response| response.body)
            .unwrap_or_default()
    }

    fn is_leader(&self) -> bool {
        metrics::value(&self.metrics(), "ivschat_operator_leader") == 1.0
    }
}

/// The sum of every `ivschat_operator_aws_requests_total` sample.
fn aws_requests(exposed: &str) -> f64 {
    metrics::sum(exposed, "ivschat_operator_aws_requests_total")
}

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .expect("reading the Lease")
        .and_then(|lease| lease.spec)
        .and_then(|spec| spec.holder_identity)
        .filter(|holder| !holder.is_empty())
}

/// Waits until the holder's identity starts with `name` (identities are `NAME_suffix`); returns how long.
async fn wait_holder(leases: &Api<Lease>, name: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let current = holder(leases, "ivschat-operator").await;
        if current
            .as_deref()
            .is_some_and(|h| h.starts_with(&format!("{name}_")))
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{name} did not take the Lease within {within:?} (holder {current:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn apply_room(rooms: &Api<ChatRoom>, name: &str) {
    apply(rooms, name, json!({"name": name})).await;
}

async fn wait_ready(rooms: &Api<ChatRoom>, name: &str) {
    wait_for_within(rooms, name, "Ready", WAIT, |room| {
        condition(room, "Ready").is_some_and(|(status, _, _)| status == "True")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_processes_reconciles_and_hands_over_on_sigterm_and_sigkill() {
    // Hand-over bounds of a fraction of a second: these tests had their binary to themselves.
    let _alone = serial::alone().await;
    let control_plane = control_plane();
    let namespace = "leader-rooms";
    let lease_namespace = "leader-leases";
    let kube = control_plane.client().await.expect("client");
    create_namespace(&kube, namespace).await;
    create_namespace(&kube, lease_namespace).await;
    let leases: Api<Lease> = Api::namespaced(kube.clone(), lease_namespace);
    let rooms: Api<ChatRoom> = Api::namespaced(kube.clone(), namespace);
    let emulator = emulator::start(EmulatorConfig::default()).await;

    let mut first = Operator::spawn("first", &emulator, namespace, lease_namespace);
    wait_holder(&leases, "first", WAIT).await;
    let mut second = Operator::spawn("second", &emulator, namespace, lease_namespace);

    // Only the leader reconciles: every room is created exactly once, and the follower calls AWS never.
    for index in 0..5 {
        apply_room(&rooms, &format!("room-{index}")).await;
    }
    for index in 0..5 {
        wait_ready(&rooms, &format!("room-{index}")).await;
    }
    // Two more lease periods: a follower that wrongly reconciled would have done so by now.
    tokio::time::sleep(LEASE_DURATION * 2).await;
    assert_eq!(emulator.request_total("CreateRoom"), 5);
    assert!(first.is_leader());
    assert!(!second.is_leader());
    assert_eq!(aws_requests(&second.metrics()), 0.0, "{}", second.metrics());
    assert_eq!(
        aws_requests(&first.metrics()) as u64,
        emulator.metrics().values().sum::<u64>(),
        "the leader made every AWS call the emulator saw"
    );

    // SIGTERM: the leader stops its controllers, releases the Lease and exits 0; the follower takes over
    // at its next retry (0.53 s), far below the lease duration.
    let sigterm = Instant::now();
    first.process.signal("-TERM");
    let takeover = wait_holder(&leases, "second", WAIT).await;
    let exit = first.process.wait_exit(Duration::from_secs(30));
    assert!(
        exit.success(),
        "the leader exits cleanly on SIGTERM: {exit:?}"
    );
    eprintln!("takeover after SIGTERM: {takeover:.2?} (lease duration {LEASE_DURATION:?})");
    assert!(
        takeover < Duration::from_secs(3) && takeover < LEASE_DURATION,
        "takeover after SIGTERM took {takeover:?}"
    );
    let deadline = Instant::now() + WAIT;
    while !second.is_leader() {
        assert!(
            Instant::now() < deadline,
            "second never reported leadership"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "second reconciles {:.2?} after the SIGTERM",
        sigterm.elapsed()
    );
    apply_room(&rooms, "after-sigterm").await;
    wait_ready(&rooms, "after-sigterm").await;
    assert_eq!(emulator.request_total("CreateRoom"), 6);

    // A new standby, then SIGKILL of the leader: no release, so the standby waits for the Lease to expire.
    let third = Operator::spawn("third", &emulator, namespace, lease_namespace);
    tokio::time::sleep(LEASE_DURATION).await;
    assert!(!third.is_leader());
    second.process.signal("-KILL");
    let takeover = wait_holder(&leases, "third", WAIT).await;
    second.process.wait_exit(Duration::from_secs(10));
    eprintln!("takeover after SIGKILL: {takeover:.2?} (lease duration {LEASE_DURATION:?})");
    // Expiry is judged on the standby's clock from when it last saw the record change, so the bound is the
    // lease duration plus up to two retry periods (renewal and observation granularity) and scheduling.
    assert!(
        takeover >= LEASE_DURATION / 2,
        "a killed leader's Lease must not be taken before it expires ({takeover:?})"
    );
    assert!(
        takeover < LEASE_DURATION + Duration::from_secs(2),
        "takeover after SIGKILL took {takeover:?}"
    );
    apply_room(&rooms, "after-sigkill").await;
    wait_ready(&rooms, "after-sigkill").await;
    assert_eq!(emulator.request_total("CreateRoom"), 7);

    // A leader whose Lease was taken (here overwritten by hand) stops at its next renewal and exits with an
    // error, so that it never reconciles alongside the new holder.
    let mut third = third;
    let mut stolen = leases.get("ivschat-operator").await.expect("the Lease");
    if let Some(spec) = stolen.spec.as_mut() {
        spec.holder_identity = Some("intruder".to_owned());
    }
    leases
        .replace("ivschat-operator", &Default::default(), &stolen)
        .await
        .expect("overwriting the Lease");
    let exit = third.process.wait_exit(Duration::from_secs(10));
    assert!(
        !exit.success(),
        "a leader that lost its Lease must exit with an error"
    );
    assert_eq!(
        holder(&leases, "ivschat-operator").await.as_deref(),
        Some("intruder"),
        "the stopped leader does not release a Lease it no longer holds"
    );
    let _ = emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elector_is_exclusive_and_releases() {
    let _alone = serial::alone().await;
    let control_plane = control_plane();
    let namespace = "elector";
    create_namespace(&control_plane.client().await.expect("client"), namespace).await;
    let settings = |identity: &str| {
        LeaseSettings::new(
            namespace,
            "exclusive",
            identity.to_owned(),
            Duration::from_secs(3),
        )
    };
    let a = LeaderElection::new(control_plane.client().await.expect("client"), settings("a"));
    let b = LeaderElection::new(control_plane.client().await.expect("client"), settings("b"));
    tokio::time::timeout(Duration::from_secs(10), a.acquire())
        .await
        .expect("a acquires a free Lease at once")
        .expect("acquire");
    // b waits while a renews: well beyond the lease duration.
    let waited = tokio::time::timeout(Duration::from_secs(8), b.acquire()).await;
    assert!(waited.is_err(), "b must not acquire a Lease that a renews");
    let leases: Api<Lease> =
        Api::namespaced(control_plane.client().await.expect("client"), namespace);
    let lease = leases.get("exclusive").await.expect("the Lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(3));
    assert_eq!(spec.lease_transitions, Some(0));

    // Released: b takes it at its next retry (0.4 s), and the transition is counted.
    a.release().await.expect("release");
    let start = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), b.acquire())
        .await
        .expect("b acquires a released Lease quickly")
        .expect("acquire");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let spec = leases
        .get("exclusive")
        .await
        .expect("the Lease")
        .spec
        .expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    // a releasing again does not touch b's Lease.
    a.release()
        .await
        .expect("release of a Lease held by someone else");
    assert_eq!(holder(&leases, "exclusive").await.as_deref(), Some("b"));

    // Someone else overwrites the Lease: b notices at its next renewal and reports the loss.
    let mut stolen = leases.get("exclusive").await.expect("the Lease");
    if let Some(spec) = stolen.spec.as_mut() {
        spec.holder_identity = Some("intruder".to_owned());
    }
    leases
        .replace("exclusive", &Default::default(), &stolen)
        .await
        .expect("overwriting");
    tokio::time::timeout(Duration::from_secs(5), b.lost())
        .await
        .expect("b notices that it lost the Lease");
}
