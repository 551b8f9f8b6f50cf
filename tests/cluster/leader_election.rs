//! Leader election with real operator processes: two `ivschat-operator run --leader-elect` processes against
//! one control plane and one emulator. Exactly one reconciles (AWS calls counted by the emulator and by each
//! process's own /metrics); SIGTERM of the leader hands over within a few seconds (the Lease is released);
//! SIGKILL of the leader hands over once the Lease expires. Fenced: a leader cut off from the API server by a
//! silent partition (a proxy that stops forwarding) makes no AWS write once its successor writes, and after
//! the partition heals the restarted process is a standby. Plus the elector itself against the real API
//! server: exclusive, conflict-safe, released on demand.

use ivschat_emulator::metrics::RequestRecord;
use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_operator::crd::ChatRoom;
use ivschat_operator::leader::{LeaderElection, LeaseSettings};
use ivschat_testsupport::emulator::WRITE_OPERATIONS;
use ivschat_testsupport::objects::wait_for_within;
use ivschat_testsupport::proxy::{self, Proxy};
use ivschat_testsupport::{
    apply, condition, control_plane, create_namespace, emulator, http, metrics, operator, serial,
    status_arn,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
        let target = operator::Target::new(control_plane(), emulator);
        Operator::spawn_with(name, &target, namespace, lease_namespace, "30s")
    }

    /// A process named `name` (its POD_NAME, hence its Lease identity `name_suffix` and its AWS app name)
    /// reaching the API server and the emulator as `target` says; a restart appends to the same log.
    fn spawn_with(
        name: &str,
        target: &operator::Target,
        namespace: &str,
        lease_namespace: &str,
        resync_period: &str,
    ) -> Operator {
        let control_plane = control_plane();
        let metrics = http::free_port();
        let health = http::free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(
                control_plane
                    .data_dir()
                    .join(format!("operator-{namespace}-{name}.log")),
            )
            .expect("log file");
        let mut command =
            target.command(Path::new(env!("CARGO_BIN_EXE_ivschat-operator")), namespace);
        command
            .args(["--resync-period", resync_period])
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

/// The sequence numbers of the requests `app` made of `operations` (all: `None`), in the emulator's log.
fn sequences(log: &[RequestRecord], app: &str, operations: Option<&[&str]>) -> Vec<u64> {
    log.iter()
        .filter(|record| record.app.as_deref() == Some(app))
        .filter(|record| operations.is_none_or(|operations| operations.contains(&record.operation)))
        .map(|record| record.sequence)
        .collect()
}

/// Waits until `app` has made at least `count` AWS writes after sequence number `after`.
async fn wait_writes(emulator: &Emulator, app: &str, after: u64, count: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let writes = sequences(&emulator.requests(), app, Some(&WRITE_OPERATIONS));
        if writes.iter().filter(|sequence| **sequence > after).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{app} did not make {count} AWS writes within {WAIT:?} (after #{after}: {writes:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn last_sequence(emulator: &Emulator) -> u64 {
    emulator
        .requests()
        .last()
        .map_or(0, |record| record.sequence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_writing_to_aws_before_its_successor_starts() {
    // The renew deadline is 2.67 s and a successor takes over 4 s or more after the last renewal: the
    // margin the fence must keep, so nothing heavy beside it.
    let _alone = serial::alone().await;
    let control_plane = control_plane();
    let namespace = "fencing-rooms";
    let lease_namespace = "fencing-leases";
    let kube = control_plane.client().await.expect("client");
    create_namespace(&kube, namespace).await;
    create_namespace(&kube, lease_namespace).await;
    let leases: Api<Lease> = Api::namespaced(kube.clone(), lease_namespace);
    let rooms: Api<ChatRoom> = Api::namespaced(kube.clone(), namespace);
    let emulator = emulator::start(EmulatorConfig::default()).await;
    // The first leader reaches the API server only through the proxy; the standby directly.
    let proxy = Proxy::start(proxy::api_server_address(control_plane)).await;
    let proxied = proxy.kubeconfig(
        control_plane,
        &control_plane.data_dir().join("kubeconfig-fencing-proxy"),
    );
    let through_proxy = operator::Target::new(control_plane, &emulator).with_kubeconfig(proxied);
    let direct = operator::Target::new(control_plane, &emulator);
    // A listing every 2 s (the poll interval bounds it), so drift is found and corrected within seconds.
    let resync = "1s";
    let mut first =
        Operator::spawn_with("first", &through_proxy, namespace, lease_namespace, resync);
    wait_holder(&leases, "first", WAIT).await;
    let mut second = Operator::spawn_with("second", &direct, namespace, lease_namespace, resync);

    let names: Vec<String> = (0..24).map(|index| format!("fenced-{index}")).collect();
    for name in &names {
        apply_room(&rooms, name).await;
    }
    let mut arns = Vec::new();
    for name in &names {
        wait_ready(&rooms, name).await;
        arns.push(status_arn(&rooms.get(name).await.expect("room")));
    }

    // Out-of-band changes, one room after the other, all along: whoever leads corrects each with an
    // UpdateRoom, so a leader that still reconciled would be seen writing. Slow enough that the rooms
    // changed after the takeover outnumber what an unfenced old leader could correct before it (each of
    // its corrections then hangs on the status write): without the fence and the bounded renewal, it
    // was seen writing 6 times after its successor's first write. (The test's own client sends no app
    // name.)
    let drifting = Arc::new(AtomicBool::new(true));
    let drift = tokio::spawn({
        let client = emulator.sdk_client();
        let drifting = drifting.clone();
        async move {
            let mut round = 0;
            while drifting.load(Ordering::SeqCst) {
                let arn = &arns[round % arns.len()];
                let length = if round / arns.len() % 2 == 0 {
                    400
                } else {
                    450
                };
                let _ = client
                    .update_room()
                    .identifier(arn)
                    .maximum_message_length(length)
                    .send()
                    .await;
                round += 1;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
    });
    wait_writes(&emulator, "first", 0, 3).await;

    // The partition: the leader's requests to the API server hang, unanswered and unclosed.
    let stalled_at = last_sequence(&emulator);
    let stall = Instant::now();
    proxy.stall();
    let takeover = wait_holder(&leases, "second", WAIT).await;
    eprintln!("takeover after the partition: {takeover:.2?} (lease duration {LEASE_DURATION:?})");
    assert!(
        takeover >= LEASE_DURATION / 2,
        "the partitioned leader's Lease must not be taken before it expires ({takeover:?})"
    );
    // It gives up at its renew deadline, abandons its reconciles, and exits with an error instead of
    // hanging on its release.
    let exit = first.process.wait_exit(Duration::from_secs(30));
    assert!(
        !exit.success(),
        "a leader that lost its Lease exits with an error: {exit:?}"
    );
    eprintln!(
        "the partitioned leader exited {:.2?} after the partition",
        stall.elapsed()
    );
    wait_writes(&emulator, "second", stalled_at, 3).await;
    drifting.store(false, Ordering::SeqCst);
    drift.await.expect("the drift task");

    let log = emulator.requests();
    let old_writes = sequences(&log, "first", Some(&WRITE_OPERATIONS));
    let new_writes = sequences(&log, "second", Some(&WRITE_OPERATIONS));
    let successor_starts = new_writes[0];
    assert!(
        successor_starts > stalled_at,
        "the standby wrote to AWS before the partition (#{successor_starts}, partition at #{stalled_at})"
    );
    let late_writes: Vec<&u64> = old_writes
        .iter()
        .filter(|sequence| **sequence > successor_starts)
        .collect();
    assert!(
        late_writes.is_empty(),
        "the old leader wrote to AWS after its successor's first write #{successor_starts}: {late_writes:?}"
    );
    // The fence covers reads too: once it is down the old leader sends nothing at all.
    let old_requests = sequences(&log, "first", None);
    let late_requests: Vec<&u64> = old_requests
        .iter()
        .filter(|sequence| **sequence > successor_starts)
        .collect();
    assert!(
        late_requests.is_empty(),
        "the old leader called AWS after its successor's first write: {late_requests:?}"
    );
    eprintln!(
        "old leader: {} writes before the partition, {} during it; successor's first write #{successor_starts}",
        old_writes.iter().filter(|s| **s <= stalled_at).count(),
        old_writes.iter().filter(|s| **s > stalled_at).count(),
    );

    // The partition heals: the process, restarted as it would be in its pod, rejoins as a standby.
    proxy.resume();
    let restarted_at = last_sequence(&emulator);
    let restarted =
        Operator::spawn_with("first", &through_proxy, namespace, lease_namespace, resync);
    tokio::time::sleep(LEASE_DURATION * 2).await;
    assert!(!restarted.is_leader());
    assert!(second.is_leader());
    assert!(
        holder(&leases, "ivschat-operator")
            .await
            .is_some_and(|holder| holder.starts_with("second_")),
        "the Lease stays with the new leader"
    );
    assert_eq!(
        aws_requests(&restarted.metrics()),
        0.0,
        "{}",
        restarted.metrics()
    );
    assert!(
        sequences(&emulator.requests(), "first", None)
            .iter()
            .all(|sequence| *sequence <= restarted_at),
        "a standby calls AWS never"
    );
    // A live standby, through the healed proxy: it takes over when the leader hands over, and reconciles.
    second.process.signal("-TERM");
    wait_holder(&leases, "first", WAIT).await;
    let exit = second.process.wait_exit(Duration::from_secs(30));
    assert!(
        exit.success(),
        "the leader exits cleanly on SIGTERM: {exit:?}"
    );
    apply_room(&rooms, "after-rejoin").await;
    wait_ready(&rooms, "after-rejoin").await;
    assert!(
        sequences(&emulator.requests(), "first", Some(&["CreateRoom"]))
            .iter()
            .any(|sequence| *sequence > restarted_at),
        "the rejoined process creates the new room"
    );
    drop(restarted);
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
