//! Operator benchmark (`cargo bench --bench operator`): the operator binary (`ivschat-operator run`, a child
//! process) against the shared test control plane and an in-process emulator. Prints:
//! - the time from applying 1,000 ChatRooms (+ 3 ChatLoggingConfigurations) to all Ready, without and with
//!   the AWS API rate quotas (ivschat-api.md §5.1) enforced by the emulator (with quotas: once with the
//!   operator's default rate budget `--aws-rate-limit aws`, once without it, `none`, retrying throttled
//!   calls with backoff alone), and with the quotas and the budget over two AWS accounts (half the rooms
//!   and configurations in a second account, through a ChatAccount: each account has its own quotas, so
//!   the same rooms converge in about half the time);
//! - AWS calls per created resource from the first apply to all Ready (every request the emulator answered,
//!   throttled ones included, divided by the rooms and configurations created; issue #12 asks for at most
//!   1.05), and how many of them were listings (drift detection and the ownership lookups share them);
//! - AWS calls per room in one resync period at steady state (and that none of them is a write);
//! - the operator's peak RSS (VmHWM of the child process, so the emulator and the benchmark are not
//!   counted), and again for a second process started over the Ready rooms (a restart: the watch's first
//!   list and the first listing of AWS at once).
//!
//! Knobs (environment):
//! - `IVSCHAT_BENCH_ROOMS`: the number of rooms (default 1000);
//! - `IVSCHAT_BENCH_SCENARIOS`: which scenarios run, comma-separated among `free`, `limited`, `quotas`,
//!   `two-accounts` (default all four; beyond a few thousand rooms only `free` finishes in reasonable time, the quotas
//!   allow 5 CreateRoom a second);
//! - `IVSCHAT_BENCH_RESYNC`: the operator's `--resync-period` (default 30 s; e.g. `10m`, the operator's
//!   own default). The drift-detection listings during a creation wave are part of the calls per created
//!   resource: a period shorter than the wave adds one listing of the account per period. The steady-state
//!   window and the restart take one to two periods more; the figures to Ready are printed as soon as all
//!   are Ready (stderr);
//! - `IVSCHAT_BENCH_WRAPPER`: a command the operator runs under, split on spaces, e.g. a heap profiler
//!   (`heaptrack -o /tmp/operator`); the RSS figures are then the wrapper's and are not printed.

use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use ivschat_emulator::{AccountConfig, Emulator, EmulatorConfig, RoleConfig};
use ivschat_operator::crd::{ChatAccount, ChatLoggingConfiguration, ChatRoom};
use ivschat_testsupport::{
    apply_with, control_plane, create_namespace, emulator, is_ready, operator,
};
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::json;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testenv::ControlPlane;

const CONFIGS: usize = 3;
/// The resync period of every run unless `IVSCHAT_BENCH_RESYNC` says otherwise, where steady state is
/// measured: a resync is a listing (1,000 rooms = 20 ListRooms calls, 4 s of the 5 TPS quota), so even a
/// short period fits under the quotas.
const DEFAULT_RESYNC: Duration = Duration::from_secs(30);

/// `IVSCHAT_BENCH_RESYNC`, else [`DEFAULT_RESYNC`].
fn resync_period() -> anyhow::Result<Duration> {
    match std::env::var("IVSCHAT_BENCH_RESYNC") {
        Ok(text) => ivschat_api::duration::parse_positive_duration(&text)
            .map_err(|err| anyhow::anyhow!("IVSCHAT_BENCH_RESYNC: {err}")),
        Err(_) => Ok(DEFAULT_RESYNC),
    }
}
const READY_TIMEOUT: Duration = Duration::from_secs(1500);

fn main() -> anyhow::Result<()> {
    let rooms: usize = std::env::var("IVSCHAT_BENCH_ROOMS")
        .ok()
        .map(|n| n.parse())
        .transpose()
        .context("IVSCHAT_BENCH_ROOMS must be a number")?
        .unwrap_or(1000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?
        .block_on(bench(rooms))
}

struct Outcome {
    label: &'static str,
    to_ready: Duration,
    writes_to_ready: u64,
    throttled_to_ready: u64,
    calls_per_created: f64,
    listings_to_ready: u64,
    steady_calls_per_room: Option<f64>,
    steady_writes: Option<u64>,
    peak_rss_kib: u64,
    restarted_peak_rss_kib: u64,
}

async fn bench(rooms: usize) -> anyhow::Result<()> {
    let control_plane = control_plane();
    let kube = control_plane.client().await?;
    let mut outcomes = Vec::new();
    let selected = std::env::var("IVSCHAT_BENCH_SCENARIOS").ok();
    // The operator's `--aws-rate-limit`: `aws` (default) spaces its own calls to the quotas; `none`
    // retries throttling with backoff and jitter alone.
    for (label, namespace, enforce_quotas, rate_limit, accounts) in [
        ("no quotas, no budget", "bench-free", false, "none", 1),
        ("quotas, default budget", "bench-limited", true, "aws", 1),
        ("quotas, backoff only", "bench-quotas", true, "none", 1),
        (
            "quotas, budget, 2 accounts",
            "bench-two-accounts",
            true,
            "aws",
            2,
        ),
    ] {
        let short = namespace.trim_start_matches("bench-");
        if selected
            .as_deref()
            .is_some_and(|selected| !selected.split(',').any(|s| s.trim() == short))
        {
            continue;
        }
        outcomes.push(
            scenario(
                control_plane,
                &kube,
                label,
                namespace,
                (enforce_quotas, rate_limit),
                accounts,
                rooms,
            )
            .await?,
        );
    }
    println!();
    println!(
        "ivschat-operator: {rooms} ChatRooms + {CONFIGS} ChatLoggingConfigurations per account; resync {:?}",
        resync_period()?
    );
    println!(
        "{:<26} {:>12} {:>13} {:>10} {:>14} {:>9} {:>18} {:>14} {:>12}",
        "scenario",
        "apply→Ready",
        "write calls",
        "throttled",
        "calls/created",
        "listings",
        "calls/room/resync",
        "steady writes",
        "peak RSS"
    );
    for o in &outcomes {
        println!(
            "{:<26} {:>11.1}s {:>13} {:>10} {:>14.3} {:>9} {:>18} {:>14} {:>8.1} MiB",
            o.label,
            o.to_ready.as_secs_f64(),
            o.writes_to_ready,
            o.throttled_to_ready,
            o.calls_per_created,
            o.listings_to_ready,
            o.steady_calls_per_room
                .map_or("-".to_owned(), |c| format!("{c:.3}")),
            o.steady_writes.map_or("-".to_owned(), |w| w.to_string()),
            o.peak_rss_kib as f64 / 1024.0,
        );
    }
    println!();
    println!(
        "{:<26} {:>14} {:>20}",
        "scenario", "peak RSS", "peak RSS, restarted"
    );
    for o in &outcomes {
        println!(
            "{:<26} {:>14} {:>20}",
            o.label,
            mib(o.peak_rss_kib),
            mib(o.restarted_peak_rss_kib)
        );
    }
    if wrapper().is_some() {
        println!("(the operator ran under IVSCHAT_BENCH_WRAPPER: its RSS figures are not its own)");
    }
    Ok(())
}

/// `IVSCHAT_BENCH_WRAPPER`, split on spaces.
fn wrapper() -> Option<Vec<String>> {
    std::env::var("IVSCHAT_BENCH_WRAPPER")
        .ok()
        .map(|wrapper| {
            wrapper
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|wrapper| !wrapper.is_empty())
}

/// A VmHWM figure in MiB, or `-` for a process under a wrapper.
fn mib(kib: u64) -> String {
    if wrapper().is_some() {
        "-".to_owned()
    } else {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    }
}

/// The operator binary as a child process, so its memory is its own.
fn spawn_operator(
    control_plane: &ControlPlane,
    emulator: &Emulator,
    namespace: &str,
    rate_limit: &str,
    resync: Duration,
) -> anyhow::Result<Child> {
    // Appended to: the restarted process logs after the first.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(
        control_plane
            .data_dir()
            .join(format!("operator-{namespace}.log")),
    )?;
    let mut command = operator::run_command(
        Path::new(env!("CARGO_BIN_EXE_ivschat-operator")),
        control_plane,
        emulator,
        namespace,
    );
    if let Some(wrapper) = wrapper() {
        let mut wrapped = std::process::Command::new(&wrapper[0]);
        wrapped
            .args(&wrapper[1..])
            .arg(command.get_program())
            .args(command.get_args())
            // Its own process group, so that the stop reaches the operator under the wrapper.
            .process_group(0);
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                wrapped.env(key, value);
            }
        }
        command = wrapped;
    }
    command
        .args(["--concurrency", "32"])
        .args(["--aws-rate-limit", rate_limit])
        .arg("--resync-period")
        .arg(format!("{}s", resync.as_secs()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting the operator binary")
}

/// Ends the operator: SIGKILL, or under a wrapper SIGTERM to the operator alone (a profiler writes its
/// findings once the operator has exited), then SIGKILL to the wrapper's process group after a minute.
async fn stop_operator(operator: &mut Child) {
    if wrapper().is_some() {
        for pid in operators_in_group(operator.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = operator.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", operator.id())])
            .status();
    }
    let _ = operator.kill();
    let _ = operator.wait();
}

/// The `ivschat-operator` processes in process group `group` (the wrapper's).
fn operators_in_group(group: u32) -> Vec<u32> {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    processes
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: "PID (COMM) STATE PPID PGRP ..."; COMM is cut at 15 bytes.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let Some((comm, rest)) = stat.split_once(") ") else {
                    return false;
                };
                comm.ends_with("(ivschat-operato")
                    && rest.split_whitespace().nth(2) == Some(group.to_string().as_str())
            })
        })
        .collect()
}

fn read_peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/PID/status")
}

/// The second account of the two-account scenario, whose role trusts the emulator's default account.
const SECOND_ACCOUNT: &str = "222222222222";

async fn scenario(
    control_plane: &ControlPlane,
    kube: &Client,
    label: &'static str,
    namespace: &str,
    (enforce_quotas, rate_limit): (bool, &str),
    accounts: usize,
    rooms: usize,
) -> anyhow::Result<Outcome> {
    create_namespace(kube, namespace).await;
    let emulator = emulator::start(EmulatorConfig {
        logging_transition_delay: Duration::from_millis(500),
        enforce_quotas,
        accounts: vec![AccountConfig {
            id: SECOND_ACCOUNT.into(),
            roles: vec![RoleConfig {
                name: "bench".into(),
                external_id: None,
                trusted_principals: Vec::new(),
                max_session_duration: None,
            }],
        }],
        ..EmulatorConfig::default()
    })
    .await;
    // Object i lives in account i % accounts: the default one, or the second through this ChatAccount.
    let second = format!("{namespace}-second");
    if accounts > 1 {
        apply_with::<ChatAccount>(
            &Api::all(kube.clone()),
            "bench",
            &second,
            json!({}),
            json!({
                "roleArn": format!("arn:aws:iam::{SECOND_ACCOUNT}:role/bench"),
                "endpointUrl": emulator.url(),
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            }),
        )
        .await;
    }
    let account_of = |i: usize| (i % accounts == 1).then(|| json!({"name": second}));
    let configs = CONFIGS * accounts;
    let resync = resync_period()?;
    let mut operator = spawn_operator(control_plane, &emulator, namespace, rate_limit, resync)?;
    eprintln!("{label}: applying {rooms} rooms and {CONFIGS} logging configurations");

    let start = Instant::now();
    let config_api: Api<ChatLoggingConfiguration> = Api::namespaced(kube.clone(), namespace);
    let room_api: Api<ChatRoom> = Api::namespaced(kube.clone(), namespace);
    // Configuration i is in the account of i too, so each room's configuration is in its own account.
    for i in 0..configs {
        let mut spec = json!({"destinationConfiguration": {"s3": {"bucketName": format!("bench-bucket-{i}")}}});
        if let Some(account) = account_of(i) {
            spec["accountRef"] = account;
        }
        apply_with::<ChatLoggingConfiguration>(
            &config_api,
            "bench",
            &format!("logs-{i}"),
            json!({}),
            spec,
        )
        .await;
    }
    futures_util::stream::iter(0..rooms)
        .map(|i| {
            let room_api = room_api.clone();
            let mut spec = json!({
                "maximumMessageLength": 200,
                "loggingConfigurations": [{"name": format!("logs-{}", i % configs)}],
                "tags": {"bench": "true"},
            });
            if let Some(account) = account_of(i) {
                spec["accountRef"] = account;
            }
            async move {
                apply_with::<ChatRoom>(
                    &room_api,
                    "bench",
                    &format!("room-{i:04}"),
                    json!({}),
                    spec,
                )
                .await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let applied = start.elapsed();
    eprintln!("{label}: applied in {applied:.1?}; waiting for Ready");

    let mut last_report = Instant::now();
    loop {
        let ready_rooms = room_api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|room| is_ready(*room))
            .count();
        let ready_configs = config_api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|config| is_ready(*config))
            .count();
        if ready_rooms == rooms && ready_configs == configs {
            break;
        }
        if start.elapsed() > READY_TIMEOUT {
            stop_operator(&mut operator).await;
            bail!("{label}: only {ready_rooms}/{rooms} rooms Ready after {READY_TIMEOUT:?}");
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "{label}: {ready_rooms}/{rooms} rooms Ready after {:.0?}",
                start.elapsed()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let to_ready = start.elapsed();
    let writes_to_ready = emulator::writes(&emulator);
    let throttled_to_ready = emulator::with_outcome(&emulator, "ThrottlingException");
    let calls_to_ready: u64 = emulator.metrics().values().sum();
    let calls_per_created = calls_to_ready as f64 / (rooms + configs) as f64;
    let listings_to_ready =
        emulator.request_total("ListRooms") + emulator.request_total("ListLoggingConfigurations");
    eprintln!(
        "{label}: all Ready in {to_ready:.1?} ({writes_to_ready} AWS writes; {calls_per_created:.3} AWS calls \
         per created resource, {listings_to_ready} of them listings)"
    );

    // Steady state: skip the resync wave of the creation burst, then count exactly one period.
    tokio::time::sleep(resync + resync / 5).await;
    emulator.reset_metrics();
    tokio::time::sleep(resync).await;
    let calls: u64 = emulator.metrics().values().sum();
    let (steady_calls_per_room, steady_writes) = (
        Some(calls as f64 / (rooms + configs) as f64),
        Some(emulator::writes(&emulator)),
    );
    let peak_rss_kib = read_peak_rss_kib(operator.id())?;
    stop_operator(&mut operator).await;

    // A restart over the Ready rooms: the new process's peak is its first list of the objects, its first
    // listing of AWS and the confirmation of every room by that listing (no Get call). Its peak is read
    // once it has completed a listing and had half a period to review it.
    emulator.reset_metrics();
    let mut restarted = spawn_operator(control_plane, &emulator, namespace, rate_limit, resync)?;
    // Each account's rooms are listed in their own (account, region).
    let pages = (accounts * rooms.div_ceil(accounts).div_ceil(50)) as u64;
    let restarted_at = Instant::now();
    while emulator::requests(&emulator, &["ListRooms"]) < pages {
        if restarted_at.elapsed() > READY_TIMEOUT {
            stop_operator(&mut restarted).await;
            bail!(
                "{label}: the restarted operator did not list the rooms within {READY_TIMEOUT:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(resync / 2).await;
    let restarted_peak_rss_kib = read_peak_rss_kib(restarted.id())?;
    eprintln!(
        "{label}: restarted operator listed the rooms after {:.1?}",
        restarted_at.elapsed()
    );
    stop_operator(&mut restarted).await;
    let _ = emulator.stop().await;
    Ok(Outcome {
        label,
        to_ready,
        writes_to_ready,
        throttled_to_ready,
        calls_per_created,
        listings_to_ready,
        steady_calls_per_room,
        steady_writes,
        peak_rss_kib,
        restarted_peak_rss_kib,
    })
}
