//! Chaos tests of the operator binary (`ivschat-operator run`, a child process, with its default AWS rate
//! budget) against a real kube-apiserver and an in-process IVS Chat emulator. They prove issue #5: whatever
//! instant the operator dies at, and however long the API server is away, AWS ends up holding exactly one
//! resource per object — no duplicate from a create repeated after a crash, no orphan from a delete or a
//! create cut short.
//!
//! - [`sigkill_during_creates_and_deletes_leaves_no_duplicates_and_no_orphans`]: 100 ChatRooms (named,
//!   unnamed, sharing names, referencing logging configurations, with user tags) and 3
//!   ChatLoggingConfigurations are created while the operator is SIGKILLed and restarted at random instants
//!   at least 10 times; once all are Ready, AWS holds exactly one resource per object, tagged with that
//!   object's ownership tags and named by its status.arn. Then every object is deleted (and 20 more rooms
//!   are applied and deleted before they can be Ready, so deletes race creates) under another 10+ kills;
//!   the namespace drains and AWS holds nothing.
//! - [`api_server_outage_is_survived`]: a private control plane whose API server is stopped for 20 s while
//!   rooms are out-of-band deleted and changed in AWS; the operator process stays up and converges
//!   everything (the deleted room recreated, the changed one corrected, new and changed objects applied).
//! - [`late_commits_end_in_one_resource_per_object_and_none_after_deletion`]: the emulator answers 10 % of
//!   control-plane writes with a 500 and carries them out 2 s later (and fails 5 % of all requests with a
//!   plain 5xx); 60 rooms and 3 configurations end
//!   Ready with their unanswered creates settled and exactly one resource each, and 10 rooms deleted while
//!   their creates may still complete leave nothing in AWS. Half of the rooms live in a second AWS account
//!   (a ChatAccount), so the lookups and settlements are proven per (account, region) too.
//!
//! The random instants come from a seeded RNG: the seed is printed first (`CHAOS_SEED=N` replays it).
//! `CHAOS_OPERATOR_BIN=/path/to/ivschat-operator` runs the tests against another build of the binary (e.g.
//! an older commit's, to see them fail). Each operator run's stderr is appended to a log under the control
//! plane's data dir; on failure its path and last lines are printed (the data dir is removed when the test
//! process ends).

use aws_sdk_ivschat::Client as Aws;
use aws_sdk_ivschat::types::DestinationConfiguration as AwsDestination;
use futures_util::StreamExt as _;
use ivschat_emulator::{AccountConfig, Emulator, EmulatorConfig, RoleConfig};
use ivschat_operator::crd::{
    ChatAccount, ChatLoggingConfiguration, ChatRoom, OWNER_NAME_TAG, OWNER_NAMESPACE_TAG,
    OWNER_UID_TAG,
};
use ivschat_testsupport::{
    apply, apply_with, control_plane, create_namespace, emulator, is_ready, operator,
};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Resource, ResourceExt};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use testenv::{ControlPlane, StartOptions};

/// How often the operator re-reads AWS to find out-of-band changes.
const RESYNC_PERIOD: &str = "10s";
/// ChatLoggingConfigurations stay CREATING/UPDATING/DELETING this long in the emulator.
const TRANSITION_DELAY: Duration = Duration::from_millis(300);
const CONFIGS: usize = 3;
const ROOMS: usize = 100;
/// Rooms applied and deleted again while the deletes of the others are in flight.
const LATE_ROOMS: usize = 20;
/// SIGKILLs per phase.
const KILLS: usize = 12;
/// Bounds of the random time between two kills.
const KILL_INTERVAL_MS: std::ops::RangeInclusive<u64> = 200..=2500;
/// Upper bound for convergence after the last restart (creates and deletes run at 5 TPS per operation).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_millis(500);
const FINALIZER: &str = "ivschat.dev/finalizer";
/// Outage test: rooms before the outage, rooms applied after it, and how long the API server is away.
const OUTAGE_ROOMS: usize = 30;
const OUTAGE_LATE_ROOMS: usize = 10;
const OUTAGE: Duration = Duration::from_secs(20);
/// Runs the tests against another build of the operator binary (e.g. an older commit's, to see them fail).
const OPERATOR_BIN_ENV: &str = "CHAOS_OPERATOR_BIN";
/// Lines of the operator log printed when a test fails.
const LOG_TAIL_LINES: usize = 60;

// ---- seed, control plane, Kubernetes helpers --------------------------------------------------------------

/// The seed of this run's random instants: `CHAOS_SEED`, else a fresh one. Printed first, so a failure can be
/// replayed.
fn chaos_seed(test: &str) -> u64 {
    let seed = match std::env::var("CHAOS_SEED") {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|err| panic!("CHAOS_SEED={value:?} is not a u64: {err}")),
        Err(_) => rand::random(),
    };
    println!("chaos seed: {seed} (replay: CHAOS_SEED={seed} cargo test --test chaos {test})");
    seed
}

async fn start_emulator() -> Emulator {
    emulator::start(EmulatorConfig {
        logging_transition_delay: TRANSITION_DELAY,
        ..EmulatorConfig::default()
    })
    .await
}

/// Applies `(name, spec)` pairs, a few at a time.
async fn apply_all<K>(api: &Api<K>, objects: Vec<(String, Value)>)
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    futures_util::stream::iter(objects)
        .map(|(name, spec)| async move {
            apply(api, &name, spec).await;
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// `name: Ready=<status>/<reason> <message> [deleting] [finalizers]`, for failure messages.
fn describe<K: serde::Serialize + Resource>(object: &K) -> String {
    let value = serde_json::to_value(object).unwrap_or_default();
    let ready = value["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"))
        .map(|c| format!("{}/{} {}", c["status"], c["reason"], c["message"]))
        .unwrap_or_else(|| "no Ready condition".to_owned());
    format!(
        "{}: generation {:?}, observed {}, Ready={ready}{}, finalizers {:?}",
        object.meta().name.as_deref().unwrap_or_default(),
        object.meta().generation,
        value["status"]["observedGeneration"],
        if object.meta().deletion_timestamp.is_some() {
            ", deleting"
        } else {
            ""
        },
        object.meta().finalizers.as_deref().unwrap_or_default(),
    )
}

async fn list<K>(api: &Api<K>) -> Vec<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .unwrap_or_else(|err| panic!("listing: {err}"))
        .items
}

// ---- the operator process ---------------------------------------------------------------------------------

/// The operator binary as a child process, SIGKILLed on every exit path (Drop), with each run's stderr
/// appended to one log file.
struct OperatorProcess {
    child: Option<Child>,
    target: operator::Target,
    namespace: String,
    log_path: PathBuf,
    runs: u32,
}

impl OperatorProcess {
    fn start(control_plane: &ControlPlane, emulator: &Emulator, namespace: &str) -> Self {
        let mut operator = OperatorProcess {
            child: None,
            target: operator::Target::new(control_plane, emulator),
            namespace: namespace.to_owned(),
            log_path: control_plane
                .data_dir()
                .join(format!("chaos-operator-{namespace}.log")),
            runs: 0,
        };
        operator.spawn();
        operator
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|err| panic!("opening {}: {err}", self.log_path.display()));
        // A header per run, so a failure can be traced to the run that caused it.
        writeln!(log, "==== operator run {} ====", self.runs).expect("writing the operator log");
        let binary = std::env::var_os(OPERATOR_BIN_ENV).map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_ivschat-operator")),
            PathBuf::from,
        );
        let child = self
            .target
            .command(&binary, &self.namespace)
            .args(["--resync-period", RESYNC_PERIOD])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the operator binary");
        self.child = Some(child);
    }

    /// SIGKILL (`Child::kill` on unix) and reap.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Fails the test if the operator exited without being killed.
    fn assert_running(&mut self, while_doing: &str) {
        let Some(child) = self.child.as_mut() else {
            panic!("the operator is not running ({while_doing})");
        };
        if let Some(status) = child.try_wait().expect("checking the operator process") {
            panic!(
                "the operator (run {}) exited on its own with {status} while {while_doing}; log: {}",
                self.runs,
                self.log_path.display()
            );
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            eprintln!(
                "operator log ({} runs): {}\n---- last {LOG_TAIL_LINES} lines ----\n{tail}",
                self.runs,
                self.log_path.display()
            );
        }
    }
}

/// Sleeps a random interval, SIGKILLs the operator and restarts it, [`KILLS`] times; returns the kill count.
async fn kill_repeatedly(
    operator: &mut OperatorProcess,
    rng: &mut StdRng,
    emulator: &Emulator,
    phase: &str,
) -> usize {
    let started = Instant::now();
    for kill in 1..=KILLS {
        let pause = Duration::from_millis(rng.random_range(KILL_INTERVAL_MS));
        tokio::time::sleep(pause).await;
        operator.assert_running(phase);
        operator.restart();
        println!(
            "{phase}: kill {kill} at {:.1?}: so far CreateRoom {}, DeleteRoom {}, CreateLoggingConfiguration {}, DeleteLoggingConfiguration {}",
            started.elapsed(),
            emulator.request_total("CreateRoom"),
            emulator.request_total("DeleteRoom"),
            emulator.request_total("CreateLoggingConfiguration"),
            emulator.request_total("DeleteLoggingConfiguration"),
        );
    }
    KILLS
}

/// The test's own SDK access to the emulator. It counts its calls, so that the printed figures are the
/// operator's calls alone (the emulator counts everyone's).
struct Probe {
    /// One client per account whose resources are compared: the default account's, and others'.
    clients: Vec<Aws>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl Probe {
    fn new(emulator: &Emulator) -> Self {
        Self::over(vec![emulator.sdk_client()])
    }

    /// A probe over the accounts of `clients` (their resources together are what AWS holds).
    fn over(clients: Vec<Aws>) -> Self {
        Probe {
            clients,
            calls: Mutex::new(BTreeMap::new()),
        }
    }

    /// The client of the emulator's default account (the first).
    fn default_account(&self) -> &Aws {
        &self.clients[0]
    }

    fn count(&self, operation: &'static str, calls: u64) {
        let mut counts = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry(operation).or_insert(0) += calls;
    }

    fn reset(&self) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Requests per AWS operation as the emulator counted them, less the probe's own.
    fn operator_calls(&self, emulator: &Emulator) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for ((operation, _outcome), count) in emulator.metrics() {
            *totals.entry(operation).or_insert(0) += count;
        }
        let own = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        for (operation, calls) in own.iter() {
            if let Some(total) = totals.get_mut(*operation) {
                *total = total.saturating_sub(*calls);
            }
        }
        totals.retain(|_, total| *total > 0);
        totals
    }
}

// ---- what AWS holds, and what it should hold --------------------------------------------------------------

/// One AWS resource as the tests compare it: identity, tags, and the fields a spec controls.
#[derive(Debug)]
struct AwsResource {
    arn: String,
    tags: BTreeMap<String, String>,
    fields: Value,
}

/// What one Kubernetes object expects of its AWS resource.
#[derive(Debug)]
struct Expected {
    object: String,
    uid: String,
    status_arn: Option<String>,
    user_tags: BTreeMap<String, String>,
    fields: Value,
}

fn to_btree(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|tags| tags.clone().into_iter().collect())
        .unwrap_or_default()
}

/// Every room of every account of the probe (all ListRooms pages), with the message limits from GetRoom.
async fn aws_rooms(probe: &Probe) -> Result<Vec<AwsResource>, String> {
    let mut rooms = Vec::new();
    for aws in &probe.clients {
        rooms.extend(aws_rooms_of(probe, aws).await?);
    }
    Ok(rooms)
}

async fn aws_rooms_of(probe: &Probe, aws: &Aws) -> Result<Vec<AwsResource>, String> {
    let pages = aws
        .list_rooms()
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|err| format!("ListRooms: {err:?}"))?;
    probe.count("ListRooms", pages.len() as u64);
    let mut rooms = Vec::new();
    for summary in pages.iter().flat_map(|page| page.rooms()) {
        let arn = summary.arn().unwrap_or_default().to_owned();
        probe.count("GetRoom", 1);
        let room = aws
            .get_room()
            .identifier(&arn)
            .send()
            .await
            .map_err(|err| format!("GetRoom {arn}: {err:?}"))?;
        rooms.push(AwsResource {
            arn,
            tags: to_btree(room.tags()),
            fields: json!({
                "name": room.name().unwrap_or_default(),
                "maximumMessageLength": room.maximum_message_length(),
                "maximumMessageRatePerSecond": room.maximum_message_rate_per_second(),
                "loggingConfigurationArns": room.logging_configuration_identifiers(),
            }),
        });
    }
    Ok(rooms)
}

/// Every logging configuration of every account of the probe (all ListLoggingConfigurations pages).
async fn aws_configs(probe: &Probe) -> Result<Vec<AwsResource>, String> {
    let mut configs = Vec::new();
    for aws in &probe.clients {
        configs.extend(aws_configs_of(probe, aws).await?);
    }
    Ok(configs)
}

async fn aws_configs_of(probe: &Probe, aws: &Aws) -> Result<Vec<AwsResource>, String> {
    let pages = aws
        .list_logging_configurations()
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|err| format!("ListLoggingConfigurations: {err:?}"))?;
    probe.count("ListLoggingConfigurations", pages.len() as u64);
    Ok(pages
        .iter()
        .flat_map(|page| page.logging_configurations())
        .map(|summary| {
            let destination = match summary.destination_configuration() {
                Some(AwsDestination::S3(s3)) => format!("s3:{}", s3.bucket_name()),
                Some(AwsDestination::CloudWatchLogs(logs)) => {
                    format!("cloudWatchLogs:{}", logs.log_group_name())
                }
                Some(AwsDestination::Firehose(firehose)) => {
                    format!("firehose:{}", firehose.delivery_stream_name())
                }
                other => format!("unexpected: {other:?}"),
            };
            AwsResource {
                arn: summary.arn().unwrap_or_default().to_owned(),
                tags: to_btree(summary.tags()),
                fields: json!({
                    "name": summary.name().unwrap_or_default(),
                    "destination": destination,
                    "state": summary.state().map(|state| state.as_str()),
                }),
            }
        })
        .collect())
}

fn status_arn_of_config(config: &ChatLoggingConfiguration) -> Option<String> {
    config.status.as_ref().and_then(|status| status.arn.clone())
}

fn status_arn_of_room(room: &ChatRoom) -> Option<String> {
    room.status.as_ref().and_then(|status| status.arn.clone())
}

/// The room each ChatRoom's spec describes, with AWS defaults applied and references resolved through the
/// ChatLoggingConfigurations' status.arn.
fn expected_rooms(rooms: &[ChatRoom], configs: &[ChatLoggingConfiguration]) -> Vec<Expected> {
    let config_arns: HashMap<String, String> = configs
        .iter()
        .filter_map(|config| Some((config.name_any(), status_arn_of_config(config)?)))
        .collect();
    rooms
        .iter()
        .map(|room| {
            let logging: Vec<String> = room
                .spec
                .logging_configurations
                .iter()
                .map(|reference| match (&reference.name, &reference.arn) {
                    (Some(name), _) => config_arns
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| format!("<{name} has no status.arn>")),
                    (None, Some(arn)) => arn.clone(),
                    (None, None) => "<empty reference>".to_owned(),
                })
                .collect();
            Expected {
                object: room.name_any(),
                uid: room.uid().unwrap_or_default(),
                status_arn: status_arn_of_room(room),
                user_tags: room.spec.tags.to_map(),
                fields: json!({
                    "name": room.spec.name.clone().unwrap_or_default(),
                    "maximumMessageLength": room.spec.maximum_message_length.unwrap_or(500),
                    "maximumMessageRatePerSecond": room.spec.maximum_message_rate_per_second.unwrap_or(10),
                    "loggingConfigurationArns": logging,
                }),
            }
        })
        .collect()
}

fn expected_configs(configs: &[ChatLoggingConfiguration]) -> Vec<Expected> {
    configs
        .iter()
        .map(|config| {
            let destination = &config.spec.destination_configuration;
            let destination = if let Some(s3) = &destination.s3 {
                format!("s3:{}", s3.bucket_name)
            } else if let Some(logs) = &destination.cloud_watch_logs {
                format!("cloudWatchLogs:{}", logs.log_group_name)
            } else if let Some(firehose) = &destination.firehose {
                format!("firehose:{}", firehose.delivery_stream_name)
            } else {
                "<no destination>".to_owned()
            };
            Expected {
                object: config.name_any(),
                uid: config.uid().unwrap_or_default(),
                status_arn: status_arn_of_config(config),
                user_tags: config.spec.tags.to_map(),
                fields: json!({
                    "name": config.spec.name.clone().unwrap_or_default(),
                    "destination": destination,
                    "state": "ACTIVE",
                }),
            }
        })
        .collect()
}

/// Everything that keeps `actual` (all of one kind in AWS) from being exactly one resource per expected
/// object: wrong count, resources without an owner or owned by no object (orphans), several resources of
/// one owner (duplicates), a status.arn naming no resource or a resource owned by someone else, wrong
/// ownership or user tags, wrong fields. Empty when AWS is exactly right.
fn ownership_problems(
    kind: &str,
    namespace: &str,
    expected: &[Expected],
    actual: &[AwsResource],
) -> Vec<String> {
    let mut problems = Vec::new();
    if actual.len() != expected.len() {
        problems.push(format!(
            "{kind}: AWS holds {} resources, expected exactly {}",
            actual.len(),
            expected.len()
        ));
    }
    let by_uid: HashMap<&str, &Expected> = expected
        .iter()
        .map(|object| (object.uid.as_str(), object))
        .collect();
    let mut owned: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for resource in actual {
        match resource.tags.get(OWNER_UID_TAG) {
            None => problems.push(format!(
                "{kind} {} has no {OWNER_UID_TAG} tag (orphan): tags {:?}",
                resource.arn, resource.tags
            )),
            Some(uid) if !by_uid.contains_key(uid.as_str()) => problems.push(format!(
                "{kind} {} is owned by {uid}, which is no object (orphan): tags {:?}",
                resource.arn, resource.tags
            )),
            Some(uid) => owned
                .entry(by_uid[uid.as_str()].object.as_str())
                .or_default()
                .push(resource.arn.as_str()),
        }
    }
    for (object, arns) in &owned {
        if arns.len() > 1 {
            problems.push(format!(
                "{kind} {object} owns {} resources (duplicates): {arns:?}",
                arns.len()
            ));
        }
    }
    let by_arn: HashMap<&str, &AwsResource> = actual
        .iter()
        .map(|resource| (resource.arn.as_str(), resource))
        .collect();
    for object in expected {
        let Some(arn) = &object.status_arn else {
            problems.push(format!("{kind} {} has no status.arn", object.object));
            continue;
        };
        let Some(resource) = by_arn.get(arn.as_str()) else {
            problems.push(format!(
                "{kind} {}: status.arn {arn} is not in AWS",
                object.object
            ));
            continue;
        };
        let mut tags = object.user_tags.clone();
        tags.insert(OWNER_UID_TAG.to_owned(), object.uid.clone());
        tags.insert(OWNER_NAMESPACE_TAG.to_owned(), namespace.to_owned());
        tags.insert(OWNER_NAME_TAG.to_owned(), object.object.clone());
        if resource.tags != tags {
            problems.push(format!(
                "{kind} {} ({arn}): tags {:?}, expected {tags:?}",
                object.object, resource.tags
            ));
        }
        if resource.fields != object.fields {
            problems.push(format!(
                "{kind} {} ({arn}): fields {}, expected {}",
                object.object, resource.fields, object.fields
            ));
        }
    }
    problems
}

/// Everything that keeps AWS from matching the objects of `namespace` exactly (see [`ownership_problems`]).
async fn aws_problems(
    probe: &Probe,
    namespace: &str,
    rooms: &[ChatRoom],
    configs: &[ChatLoggingConfiguration],
) -> Vec<String> {
    let mut problems = Vec::new();
    match aws_rooms(probe).await {
        Ok(actual) => problems.extend(ownership_problems(
            "room",
            namespace,
            &expected_rooms(rooms, configs),
            &actual,
        )),
        Err(err) => problems.push(err),
    }
    match aws_configs(probe).await {
        Ok(actual) => problems.extend(ownership_problems(
            "logging configuration",
            namespace,
            &expected_configs(configs),
            &actual,
        )),
        Err(err) => problems.push(err),
    }
    problems
}

/// Polls until every room and configuration is Ready at its generation (or fails after
/// [`CONVERGE_TIMEOUT`] naming those that are not); returns them.
async fn wait_all_ready(
    rooms: &Api<ChatRoom>,
    configs: &Api<ChatLoggingConfiguration>,
    operator: &mut OperatorProcess,
    (room_count, config_count): (usize, usize),
) -> (Vec<ChatRoom>, Vec<ChatLoggingConfiguration>) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        operator.assert_running("waiting for Ready");
        let listed_rooms = list(rooms).await;
        let listed_configs = list(configs).await;
        let not_ready: Vec<String> = listed_rooms
            .iter()
            .filter(|room| !is_ready(*room))
            .map(describe)
            .chain(
                listed_configs
                    .iter()
                    .filter(|config| !is_ready(*config))
                    .map(describe),
            )
            .collect();
        if not_ready.is_empty()
            && listed_rooms.len() == room_count
            && listed_configs.len() == config_count
        {
            return (listed_rooms, listed_configs);
        }
        assert!(
            Instant::now() < deadline,
            "not all of {room_count} rooms and {config_count} logging configurations Ready within {CONVERGE_TIMEOUT:?} \
             ({} rooms, {} configurations exist); {} not Ready:\n{}",
            listed_rooms.len(),
            listed_configs.len(),
            not_ready.len(),
            not_ready.join("\n")
        );
        tokio::time::sleep(POLL).await;
    }
}

// ---- test 1: SIGKILL during creates, then during deletes --------------------------------------------------

/// A mix of every shape the ownership lookup has to handle: unnamed rooms (the ListRooms name filter cannot
/// narrow the lookup), rooms sharing one AWS name, uniquely named rooms, references to the logging
/// configurations, user tags, non-default limits.
fn chaos_room_spec(index: usize) -> Value {
    let logs = format!("logs-{}", index % CONFIGS);
    match index % 4 {
        0 => json!({}),
        1 => json!({
            "name": format!("chaos-shared-{}", index % 3),
            "tags": {"team": format!("team-{}", index % 5)},
        }),
        2 => json!({
            "loggingConfigurations": [{"name": logs}],
            "tags": {"index": index.to_string(), "chaos": "true"},
        }),
        _ => json!({
            "name": format!("chaos-room-{index}"),
            "maximumMessageLength": 100 + index,
            "loggingConfigurations": [{"name": logs}],
        }),
    }
}

fn chaos_config_spec(index: usize) -> Value {
    match index {
        0 => json!({
            "name": "chaos-logs-s3",
            "destinationConfiguration": {"s3": {"bucketName": "chaos-bucket"}},
        }),
        1 => json!({
            "destinationConfiguration": {"cloudWatchLogs": {"logGroupName": "/chaos/chat"}},
            "tags": {"team": "chaos"},
        }),
        _ => json!({
            "name": "chaos-logs-firehose",
            "destinationConfiguration": {"firehose": {"deliveryStreamName": "chaos-stream"}},
        }),
    }
}

/// Applies the [`CONFIGS`] logging configurations and `rooms` rooms of the chaos specs.
async fn apply_chaos_objects(
    configs: &Api<ChatLoggingConfiguration>,
    rooms: &Api<ChatRoom>,
    room_count: usize,
) {
    apply_all(
        configs,
        (0..CONFIGS)
            .map(|i| (format!("logs-{i}"), chaos_config_spec(i)))
            .collect(),
    )
    .await;
    apply_all(
        rooms,
        (0..room_count)
            .map(|i| (format!("room-{i:03}"), chaos_room_spec(i)))
            .collect(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_creates_and_deletes_leaves_no_duplicates_and_no_orphans() {
    let seed = chaos_seed("sigkill_during_creates_and_deletes_leaves_no_duplicates_and_no_orphans");
    let mut rng = StdRng::seed_from_u64(seed);
    let control_plane = control_plane();
    let kube = control_plane.client().await.expect("kube client");
    let namespace = "chaos-sigkill";
    create_namespace(&kube, namespace).await;
    let emulator = start_emulator().await;
    let probe = Probe::new(&emulator);
    let room_api: Api<ChatRoom> = Api::namespaced(kube.clone(), namespace);
    let config_api: Api<ChatLoggingConfiguration> = Api::namespaced(kube.clone(), namespace);

    // ---- phase 1: creates under SIGKILL ----
    apply_chaos_objects(&config_api, &room_api, ROOMS).await;
    let mut operator = OperatorProcess::start(control_plane, &emulator, namespace);
    let creates_started = Instant::now();
    let create_kills = kill_repeatedly(&mut operator, &mut rng, &emulator, "creates").await;
    let last_restart = Instant::now();
    let (rooms, configs) =
        wait_all_ready(&room_api, &config_api, &mut operator, (ROOMS, CONFIGS)).await;
    let to_ready = last_restart.elapsed();
    // Checked at the moment everything is Ready: a duplicate cleaned up later was still a duplicate.
    let problems = aws_problems(&probe, namespace, &rooms, &configs).await;
    println!(
        "creates: {create_kills} kills; all {ROOMS} rooms + {CONFIGS} logging configurations Ready {to_ready:.1?} after the last restart ({:.1?} after the first start)",
        creates_started.elapsed()
    );
    println!(
        "creates: AWS calls per operation: {:?}",
        probe.operator_calls(&emulator)
    );
    assert!(
        problems.is_empty(),
        "after {create_kills} SIGKILLs during creates, AWS does not hold exactly one resource per object ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );

    // ---- phase 2: deletes (and creates racing deletes) under SIGKILL ----
    emulator.reset_metrics();
    probe.reset();
    let deletes_started = Instant::now();
    room_api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("deleting every ChatRoom");
    config_api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("deleting every ChatLoggingConfiguration");
    // Each late room lives for a random moment before its delete: some are deleted before the operator sees
    // them, some while their create is under way; all while the operator is being killed.
    let late_lifetimes: Vec<Duration> = (0..LATE_ROOMS)
        .map(|_| Duration::from_millis(rng.random_range(0..=1500)))
        .collect();
    let late_api = room_api.clone();
    let late_rooms = tokio::spawn(async move {
        for (i, lifetime) in late_lifetimes.into_iter().enumerate() {
            let name = format!("late-{i:02}");
            apply(&late_api, &name, chaos_room_spec(i)).await;
            tokio::time::sleep(lifetime).await;
            late_api
                .delete(&name, &DeleteParams::default())
                .await
                .unwrap_or_else(|err| panic!("deleting {name}: {err}"));
        }
    });
    let delete_kills = kill_repeatedly(&mut operator, &mut rng, &emulator, "deletes").await;
    late_rooms
        .await
        .expect("applying and deleting the late rooms");
    let last_restart = Instant::now();
    let deadline = last_restart + CONVERGE_TIMEOUT;
    loop {
        operator.assert_running("waiting for the namespace to drain");
        let remaining: Vec<String> = list(&room_api)
            .await
            .iter()
            .map(describe)
            .chain(list(&config_api).await.iter().map(describe))
            .collect();
        if remaining.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} objects still exist {CONVERGE_TIMEOUT:?} after the last restart (stuck with {FINALIZER}?):\n{}",
            remaining.len(),
            remaining.join("\n")
        );
        tokio::time::sleep(POLL).await;
    }
    let drained = deletes_started.elapsed();
    let drained_after_restart = last_restart.elapsed();
    let after_drain = aws_problems(&probe, namespace, &[], &[]).await;
    // A create still in flight would land after the drain: stop the operator and look again.
    operator.kill();
    let after_stop = aws_problems(&probe, namespace, &[], &[]).await;
    println!(
        "deletes: {delete_kills} kills; {} objects (+{LATE_ROOMS} late rooms) drained in {drained:.1?} ({drained_after_restart:.1?} after the last restart)",
        ROOMS + CONFIGS
    );
    println!(
        "deletes: AWS calls per operation: {:?}",
        probe.operator_calls(&emulator)
    );
    assert!(
        after_drain.is_empty() && after_stop.is_empty(),
        "after {delete_kills} SIGKILLs during deletes, AWS is not empty:\nwhen drained:\n{}\nafter stopping the operator:\n{}",
        after_drain.join("\n"),
        after_stop.join("\n")
    );
    drop(operator);
    let _ = emulator.stop().await;
}

// ---- test 2: API server outage ----------------------------------------------------------------------------

fn outage_room_spec(index: usize) -> Value {
    if index.is_multiple_of(3) {
        json!({"maximumMessageLength": 100 + index, "tags": {"index": index.to_string()}})
    } else {
        json!({
            "name": format!("outage-{index}"),
            "maximumMessageLength": 100 + index,
            "tags": {"index": index.to_string()},
        })
    }
}

/// Runs a blocking control-plane operation (it waits for servers) off the runtime's worker threads, which
/// keep serving the emulator meanwhile.
async fn on_control_plane<T: Send + 'static>(
    control_plane: &Arc<ControlPlane>,
    what: &str,
    operation: impl FnOnce(&ControlPlane) -> anyhow::Result<T> + Send + 'static,
) -> T {
    let control_plane = Arc::clone(control_plane);
    tokio::task::spawn_blocking(move || operation(&control_plane))
        .await
        .unwrap_or_else(|err| panic!("{what}: {err}"))
        .unwrap_or_else(|err| panic!("{what}: {err:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_outage_is_survived() {
    testenv::install_crypto_provider();
    // Its own control plane: stopping the shared API server would break every other test.
    let control_plane = Arc::new(
        tokio::task::spawn_blocking(|| ControlPlane::start(StartOptions::default()))
            .await
            .expect("starting the private control plane")
            .expect("starting the private control plane"),
    );
    let crds = ivschat_operator::crd::crds_yaml().expect("rendering the CRDs");
    on_control_plane(&control_plane, "installing the CRDs", move |cp| {
        cp.install_crds(&crds)
    })
    .await;
    let kube = control_plane.client().await.expect("kube client");
    let namespace = "outage";
    create_namespace(&kube, namespace).await;
    let emulator = start_emulator().await;
    let probe = Probe::new(&emulator);
    let room_api: Api<ChatRoom> = Api::namespaced(kube.clone(), namespace);

    apply_all(
        &room_api,
        (0..OUTAGE_ROOMS)
            .map(|i| (format!("room-{i:02}"), outage_room_spec(i)))
            .collect(),
    )
    .await;
    let mut operator = OperatorProcess::start(&control_plane, &emulator, namespace);

    // Some rooms Ready (others still being created): the outage hits a busy operator.
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let ready = loop {
        operator.assert_running("waiting for the first rooms");
        let mut ready: Vec<ChatRoom> = list(&room_api).await.into_iter().filter(is_ready).collect();
        if ready.len() >= 5 {
            ready.sort_by_key(|room| room.name_any());
            break ready;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 5 rooms Ready within {CONVERGE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deleted = ready[0].name_any();
    let deleted_arn = status_arn_of_room(&ready[0]).expect("a Ready room has status.arn");
    let tampered = ready[1].name_any();
    let tampered_arn = status_arn_of_room(&ready[1]).expect("a Ready room has status.arn");
    println!(
        "outage: {} rooms Ready; deleting {deleted} ({deleted_arn}) and changing {tampered} ({tampered_arn}) in AWS during the outage",
        ready.len()
    );

    on_control_plane(&control_plane, "stopping the API server", |cp| {
        cp.stop_apiserver()
    })
    .await;
    let outage_started = Instant::now();
    probe.count("DeleteRoom", 1);
    probe
        .default_account()
        .delete_room()
        .identifier(&deleted_arn)
        .send()
        .await
        .expect("out-of-band DeleteRoom");
    probe.count("UpdateRoom", 1);
    probe
        .default_account()
        .update_room()
        .identifier(&tampered_arn)
        .name("tampered")
        .maximum_message_length(1)
        .maximum_message_rate_per_second(100)
        .send()
        .await
        .expect("out-of-band UpdateRoom");
    while outage_started.elapsed() < OUTAGE {
        operator.assert_running("the API server is down");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    on_control_plane(&control_plane, "restarting the API server", |cp| {
        cp.start_apiserver()
    })
    .await;
    let restarted = Instant::now();
    operator.assert_running("the API server came back");

    apply_all(
        &room_api,
        (OUTAGE_ROOMS..OUTAGE_ROOMS + OUTAGE_LATE_ROOMS)
            .map(|i| (format!("room-{i:02}"), outage_room_spec(i)))
            .collect(),
    )
    .await;
    let changed = format!("room-{:02}", OUTAGE_ROOMS - 1);
    apply(
        &room_api,
        &changed,
        json!({"name": "changed-after-outage", "maximumMessageLength": 42, "tags": {"changed": "yes"}}),
    )
    .await;

    // Converged: every object Ready at its generation and AWS holding exactly the rooms they describe,
    // with the out-of-band deletion and change repaired (the resync finds them; the stale Ready of those two
    // rooms does not count).
    let total = OUTAGE_ROOMS + OUTAGE_LATE_ROOMS;
    let deadline = restarted + CONVERGE_TIMEOUT;
    loop {
        operator.assert_running("converging after the outage");
        let rooms = list(&room_api).await;
        let mut problems: Vec<String> = rooms
            .iter()
            .filter(|room| !is_ready(*room))
            .map(|room| format!("not Ready: {}", describe(room)))
            .collect();
        if rooms.len() != total {
            problems.push(format!("{} ChatRooms exist, expected {total}", rooms.len()));
        }
        problems.extend(aws_problems(&probe, namespace, &rooms, &[]).await);
        let arn_of = |name: &str| {
            rooms
                .iter()
                .find(|room| room.name_any() == name)
                .and_then(status_arn_of_room)
        };
        if arn_of(&deleted).as_deref() == Some(deleted_arn.as_str()) {
            problems.push(format!(
                "{deleted}: status.arn is still the out-of-band deleted {deleted_arn}"
            ));
        }
        if arn_of(&tampered).as_deref() != Some(tampered_arn.as_str()) {
            problems.push(format!(
                "{tampered}: status.arn {:?} is not its original room {tampered_arn} (it should be corrected in place)",
                arn_of(&tampered)
            ));
        }
        if problems.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not converged {CONVERGE_TIMEOUT:?} after the API server came back ({} problems):\n{}",
            problems.len(),
            problems.join("\n")
        );
        tokio::time::sleep(POLL).await;
    }
    println!(
        "outage: converged {:.1?} after the API server came back ({OUTAGE:?} outage); AWS calls per operation: {:?}",
        restarted.elapsed(),
        probe.operator_calls(&emulator)
    );
    operator.assert_running("the test ended");
    drop(operator);
    let _ = emulator.stop().await;
}

// ---- test 3: late commits ---------------------------------------------------------------------------------

/// Share of control-plane writes the emulator answers with a 500 and carries out [`LATE_COMMIT_DELAY`]
/// later. 10 %, not fewer: with about a hundred writes, the test must see some.
const LATE_COMMIT_RATE: f64 = 0.1;
const LATE_COMMIT_DELAY: Duration = Duration::from_secs(2);
const LATE_COMMIT_ROOMS: usize = 60;
const LATE_COMMIT_DELETED_ROOMS: usize = 10;

/// The second AWS account of the late-commit test, and its role (trusting the emulator's default account).
const SECOND_ACCOUNT: &str = "222233334444";
const SECOND_ROLE: &str = "chaos-operator";

fn second_role_arn() -> String {
    format!("arn:aws:iam::{SECOND_ACCOUNT}:role/{SECOND_ROLE}")
}

/// A chaos room spec, in the ChatAccount `account` if it names no logging configuration (a room only uses
/// configurations in its own account, and the configurations stay in the default one): about half of them.
fn in_second_account(mut spec: Value, account: &str) -> Value {
    if spec.get("loggingConfigurations").is_none() {
        spec["accountRef"] = json!({"name": account});
    }
    spec
}

/// Creates that fail at once and complete two seconds later: a lookup right after the failure finds
/// nothing, so the retry creates a second resource and the late one appears beside it. Every object ends
/// Ready with exactly one resource once its unanswered creates are settled; objects deleted while their
/// creates may still complete leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commits_end_in_one_resource_per_object_and_none_after_deletion() {
    let control_plane = control_plane();
    let kube = control_plane.client().await.expect("kube client");
    let namespace = "chaos-late-commit";
    create_namespace(&kube, namespace).await;
    let emulator = emulator::start(EmulatorConfig {
        logging_transition_delay: TRANSITION_DELAY,
        late_commit_rate: LATE_COMMIT_RATE,
        late_commit_delay: LATE_COMMIT_DELAY,
        // Also plain 5xx, of which nothing is made: their records must settle too, with nothing to delete.
        fault_rate: 0.05,
        accounts: vec![AccountConfig {
            id: SECOND_ACCOUNT.into(),
            roles: vec![RoleConfig::new(SECOND_ROLE)],
        }],
        ..EmulatorConfig::default()
    })
    .await;
    // The second account's rooms are compared too, through a session of its role (retried, like the
    // default account's client: the emulator fails 5 % of the probe's calls as well).
    let second = emulator::assumed_client(&emulator, &second_role_arn(), None, "us-west-2").await;
    let second = Aws::from_conf(
        second
            .config()
            .to_builder()
            .retry_config(aws_sdk_ivschat::config::retry::RetryConfig::standard())
            .build(),
    );
    let probe = Probe::over(vec![emulator.sdk_client(), second]);
    let room_api: Api<ChatRoom> = Api::namespaced(kube.clone(), namespace);
    let config_api: Api<ChatLoggingConfiguration> = Api::namespaced(kube.clone(), namespace);
    let account = "chaos-second-account";
    apply_with(
        &Api::<ChatAccount>::all(kube.clone()),
        "chaos",
        account,
        json!({}),
        json!({
            "roleArn": second_role_arn(),
            "endpointUrl": emulator.url(),
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        }),
    )
    .await;
    apply_all(
        &config_api,
        (0..CONFIGS)
            .map(|i| (format!("logs-{i}"), chaos_config_spec(i)))
            .collect(),
    )
    .await;
    apply_all(
        &room_api,
        (0..LATE_COMMIT_ROOMS)
            .map(|i| {
                (
                    format!("room-{i:03}"),
                    in_second_account(chaos_room_spec(i), account),
                )
            })
            .collect(),
    )
    .await;
    let started = Instant::now();
    let mut operator = OperatorProcess::start(control_plane, &emulator, namespace);
    wait_all_ready(
        &room_api,
        &config_api,
        &mut operator,
        (LATE_COMMIT_ROOMS, CONFIGS),
    )
    .await;
    let ready = started.elapsed();

    // Settled: no create is left that may still complete, and AWS holds one resource per object.
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        operator.assert_running("waiting for the unanswered creates to settle");
        let (rooms, configs) = (list(&room_api).await, list(&config_api).await);
        let mut problems: Vec<String> = rooms
            .iter()
            .filter(|room| {
                room.status
                    .as_ref()
                    .is_some_and(|s| s.create_attempt.is_some())
            })
            .map(|room| format!("not settled: {}", describe(room)))
            .chain(
                configs
                    .iter()
                    .filter(|c| {
                        c.status
                            .as_ref()
                            .is_some_and(|s| s.create_attempt.is_some())
                    })
                    .map(|config| format!("not settled: {}", describe(config))),
            )
            .collect();
        problems.extend(aws_problems(&probe, namespace, &rooms, &configs).await);
        if problems.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled {CONVERGE_TIMEOUT:?} after all were Ready ({} problems):\n{}",
            problems.len(),
            problems.join("\n")
        );
        tokio::time::sleep(POLL).await;
    }
    let late_creates = emulator.late_commit_count("CreateRoom")
        + emulator.late_commit_count("CreateLoggingConfiguration");
    println!(
        "late commits: {LATE_COMMIT_ROOMS} rooms + {CONFIGS} logging configurations Ready in {ready:.1?}, settled with one \
         resource each in {:.1?}; {late_creates} creates carried out {LATE_COMMIT_DELAY:?} after their 500; AWS calls \
         per operation: {:?}",
        started.elapsed(),
        probe.operator_calls(&emulator)
    );
    assert!(late_creates > 0, "no create was committed late");
    let in_second = (0..LATE_COMMIT_ROOMS)
        .filter(|i| {
            in_second_account(chaos_room_spec(*i), account)
                .get("accountRef")
                .is_some()
        })
        .count();
    assert_eq!(
        emulator.rooms_in(SECOND_ACCOUNT, "us-west-2").len(),
        in_second,
        "the second account holds exactly its objects' rooms"
    );

    // Rooms deleted at once, some while their create may still complete: nothing of them may remain.
    for i in 0..LATE_COMMIT_DELETED_ROOMS {
        let name = format!("short-{i:02}");
        apply(
            &room_api,
            &name,
            in_second_account(chaos_room_spec(i), account),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
        room_api
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap_or_else(|err| panic!("deleting {name}: {err}"));
    }
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        operator.assert_running("waiting for the deleted rooms to go");
        let rooms = list(&room_api).await;
        if rooms.len() == LATE_COMMIT_ROOMS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deleted rooms are still there after {CONVERGE_TIMEOUT:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    // A late commit would land within its delay: wait it out, then AWS must hold only the remaining rooms.
    tokio::time::sleep(LATE_COMMIT_DELAY * 2).await;
    let (rooms, configs) = (list(&room_api).await, list(&config_api).await);
    let problems = aws_problems(&probe, namespace, &rooms, &configs).await;
    assert!(
        problems.is_empty(),
        "after deleting rooms whose creates were committed late:\n{}",
        problems.join("\n")
    );
    drop(operator);
    let _ = emulator.stop().await;
}
