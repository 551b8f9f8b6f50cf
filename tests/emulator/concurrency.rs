//! Acceptance: the emulator stays consistent under concurrent use through the real SDK over HTTP.
//!
//! - 32 tasks create, update, tag, untag and delete their own rooms (and, some of them, their own logging
//!   configurations) while others attach shared logging configurations and page through ListRooms. Each task
//!   keeps the model of what it left behind; at the end every view of the store (ListRooms over all pages,
//!   ListRooms filtered by logging configuration, GetRoom, ListTagsForResource, the logging-configuration
//!   listings) must agree with each other and with the union of the tasks' models, and the request counters
//!   must equal the calls the tasks made.
//! - Limits checked by the store must hold when many requests race for the last free slot: the
//!   logging-configuration quota, the room quota and the 50-tag limit admit exactly as many as fit.
//!
//! The tasks use clients without retries: no request may fail unless the test expects it, and the request
//! counters then match the calls exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::error::SdkError;
use aws_sdk_ivschat::types::{
    CloudWatchLogsDestinationConfiguration, DestinationConfiguration, S3DestinationConfiguration,
};
use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_testsupport::{emulator, serial};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

const TASKS: usize = 32;
const ROUNDS_PER_TASK: usize = 12;
const SHARED_LOGGING_CONFIGURATIONS: usize = 4;
/// Small pages, so that listings cross many page boundaries while the store changes.
const PAGE_SIZE: i32 = 7;
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ExpectedRoom {
    name: String,
    maximum_message_length: i32,
    maximum_message_rate_per_second: i32,
    tags: HashMap<String, String>,
    logging_configurations: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ExpectedLoggingConfiguration {
    name: String,
    tags: HashMap<String, String>,
}

/// What one task knows it left behind, and how many successful calls it made per operation.
#[derive(Default)]
struct TaskOutcome {
    rooms: BTreeMap<String, ExpectedRoom>,
    logging_configurations: BTreeMap<String, ExpectedLoggingConfiguration>,
    calls: CallCounts,
}

/// Successful calls per operation.
type CallCounts = BTreeMap<&'static str, u64>;

fn count(calls: &mut CallCounts, operation: &'static str) {
    *calls.entry(operation).or_default() += 1;
}

fn s3_destination(bucket: &str) -> DestinationConfiguration {
    DestinationConfiguration::S3(
        S3DestinationConfiguration::builder()
            .bucket_name(bucket)
            .build()
            .expect("s3 destination"),
    )
}

fn cloudwatch_destination(group: &str) -> DestinationConfiguration {
    DestinationConfiguration::CloudWatchLogs(
        CloudWatchLogsDestinationConfiguration::builder()
            .log_group_name(group)
            .build()
            .expect("cloudwatch destination"),
    )
}

/// Pages through ListRooms; fails on an error or on a room listed twice in one traversal.
async fn list_all_rooms(
    client: &Client,
    logging_configuration: Option<&str>,
    calls: Option<&mut CallCounts>,
) -> Vec<aws_sdk_ivschat::types::RoomSummary> {
    let mut rooms = Vec::new();
    let mut seen = BTreeSet::new();
    let mut next_token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_rooms()
            .max_results(PAGE_SIZE)
            .set_logging_configuration_identifier(logging_configuration.map(str::to_owned))
            .set_next_token(next_token.take())
            .send()
            .await
            .expect("ListRooms");
        pages += 1;
        for room in page.rooms() {
            let arn = room.arn().expect("summary arn").to_owned();
            assert!(
                seen.insert(arn.clone()),
                "{arn} was listed twice in one traversal"
            );
            rooms.push(room.clone());
        }
        match page.next_token() {
            Some(token) => next_token = Some(token.to_owned()),
            None => break,
        }
    }
    if let Some(calls) = calls {
        for _ in 0..pages {
            count(calls, "ListRooms");
        }
    }
    rooms
}

/// One task's work: a reproducible mix of room operations on its own rooms, plus, for some tasks, a logging
/// configuration of their own and concurrent listings.
async fn churn(
    task: usize,
    client: Client,
    shared_logging: Arc<Vec<String>>,
    start: Arc<Barrier>,
) -> TaskOutcome {
    let mut dice = Dice::new(task as u64 + 1);
    let mut outcome = TaskOutcome::default();
    let mut calls = CallCounts::new();
    let mut created = 0;
    start.wait().await;

    // Every eighth task manages a logging configuration of its own; every sixteenth deletes it again.
    let own_logging = if task.is_multiple_of(8) {
        let tags = HashMap::from([("owner".to_owned(), format!("task-{task}"))]);
        let created = client
            .create_logging_configuration()
            .name(format!("own-{task}"))
            .destination_configuration(cloudwatch_destination(&format!("/ivschat/task-{task}")))
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .expect("CreateLoggingConfiguration");
        count(&mut calls, "CreateLoggingConfiguration");
        let arn = created.arn().expect("arn").to_owned();
        outcome.logging_configurations.insert(
            arn.clone(),
            ExpectedLoggingConfiguration {
                name: format!("own-{task}"),
                tags,
            },
        );
        Some(arn)
    } else {
        None
    };

    for round in 0..ROUNDS_PER_TASK {
        let owned: Vec<String> = outcome.rooms.keys().cloned().collect();
        let action = if owned.is_empty() || dice.chance(25) {
            0
        } else {
            1 + dice.below(4)
        };
        match action {
            0 => {
                created += 1;
                let name = format!("t{task}-r{created}");
                let tags = HashMap::from([
                    ("task".to_owned(), task.to_string()),
                    ("room".to_owned(), created.to_string()),
                ]);
                let logging_configurations: Vec<String> = if dice.chance(50) {
                    vec![shared_logging[dice.below(shared_logging.len())].clone()]
                } else {
                    Vec::new()
                };
                let length = 1 + dice.below(500) as i32;
                let rate = 1 + dice.below(100) as i32;
                let room = client
                    .create_room()
                    .name(&name)
                    .maximum_message_length(length)
                    .maximum_message_rate_per_second(rate)
                    .set_tags(Some(tags.clone()))
                    .set_logging_configuration_identifiers(Some(logging_configurations.clone()))
                    .send()
                    .await
                    .expect("CreateRoom");
                count(&mut calls, "CreateRoom");
                outcome.rooms.insert(
                    room.arn().expect("arn").to_owned(),
                    ExpectedRoom {
                        name,
                        maximum_message_length: length,
                        maximum_message_rate_per_second: rate,
                        tags,
                        logging_configurations,
                    },
                );
            }
            1 => {
                let arn = &owned[dice.below(owned.len())];
                let expected = outcome.rooms.get_mut(arn).expect("owned room");
                let mut update = client.update_room().identifier(arn);
                if dice.chance(70) {
                    expected.name = format!("t{task}-renamed-{round}");
                    update = update.name(&expected.name);
                }
                if dice.chance(50) {
                    expected.maximum_message_length = 1 + dice.below(500) as i32;
                    update = update.maximum_message_length(expected.maximum_message_length);
                }
                if dice.chance(50) {
                    let first = dice.below(shared_logging.len());
                    expected.logging_configurations = match dice.below(3) {
                        0 => Vec::new(),
                        1 => vec![shared_logging[first].clone()],
                        _ => vec![
                            shared_logging[first].clone(),
                            shared_logging[(first + 1) % shared_logging.len()].clone(),
                        ],
                    };
                    update = update.set_logging_configuration_identifiers(Some(
                        expected.logging_configurations.clone(),
                    ));
                }
                let updated = update.send().await.expect("UpdateRoom");
                count(&mut calls, "UpdateRoom");
                assert_eq!(
                    updated.name(),
                    Some(expected.name.as_str()),
                    "UpdateRoom echoes the room"
                );
            }
            2 => {
                let arn = &owned[dice.below(owned.len())];
                let expected = outcome.rooms.get_mut(arn).expect("owned room");
                let added: HashMap<String, String> = (0..1 + dice.below(3))
                    .map(|_| (format!("k{}", dice.below(6)), format!("v{round}")))
                    .collect();
                client
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(added.clone()))
                    .send()
                    .await
                    .expect("TagResource");
                count(&mut calls, "TagResource");
                expected.tags.extend(added);
            }
            3 => {
                let arn = &owned[dice.below(owned.len())];
                let expected = outcome.rooms.get_mut(arn).expect("owned room");
                // Existing keys and keys that were never set (untagging those is a no-op).
                let removed: Vec<String> = (0..1 + dice.below(2))
                    .map(|_| format!("k{}", dice.below(8)))
                    .collect();
                client
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(removed.clone()))
                    .send()
                    .await
                    .expect("UntagResource");
                count(&mut calls, "UntagResource");
                for key in removed {
                    expected.tags.remove(&key);
                }
            }
            _ => {
                let arn = owned[dice.below(owned.len())].clone();
                client
                    .delete_room()
                    .identifier(&arn)
                    .send()
                    .await
                    .expect("DeleteRoom");
                count(&mut calls, "DeleteRoom");
                outcome.rooms.remove(&arn);
            }
        }

        // Some tasks also read while everything changes: full listings and reads of rooms they do not own.
        if task % 4 == 1 {
            let listed = list_all_rooms(&client, None, Some(&mut calls)).await;
            for own in outcome.rooms.keys() {
                assert!(
                    listed.iter().any(|room| room.arn() == Some(own.as_str())),
                    "task {task}: its own room {own} is missing from a listing"
                );
            }
        }
    }

    if let Some(arn) = own_logging {
        let name = format!("own-{task}-updated");
        let updated = client
            .update_logging_configuration()
            .identifier(&arn)
            .name(&name)
            .destination_configuration(cloudwatch_destination(&format!("/ivschat/task-{task}/v2")))
            .send()
            .await
            .expect("UpdateLoggingConfiguration");
        count(&mut calls, "UpdateLoggingConfiguration");
        assert_eq!(updated.name(), Some(name.as_str()));
        client
            .tag_resource()
            .resource_arn(&arn)
            .tags("stage", "updated")
            .send()
            .await
            .expect("TagResource on a logging configuration");
        count(&mut calls, "TagResource");
        let expected = outcome
            .logging_configurations
            .get_mut(&arn)
            .expect("own configuration");
        expected.name = name;
        expected
            .tags
            .insert("stage".to_owned(), "updated".to_owned());
        if task.is_multiple_of(16) {
            client
                .delete_logging_configuration()
                .identifier(&arn)
                .send()
                .await
                .expect("DeleteLoggingConfiguration");
            count(&mut calls, "DeleteLoggingConfiguration");
            outcome.logging_configurations.remove(&arn);
        }
    }
    outcome.calls = calls;
    outcome
}

async fn concurrent_churn_leaves_a_consistent_store() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let setup = emulator.sdk_client_without_retries();

    let mut shared_logging = Vec::new();
    let mut expected_logging = BTreeMap::new();
    for index in 0..SHARED_LOGGING_CONFIGURATIONS {
        let name = format!("shared-{index}");
        let tags = HashMap::from([("shared".to_owned(), index.to_string())]);
        let created = setup
            .create_logging_configuration()
            .name(&name)
            .destination_configuration(s3_destination(&format!("shared-bucket-{index}")))
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .expect("create a shared logging configuration");
        let arn = created.arn().expect("arn").to_owned();
        shared_logging.push(arn.clone());
        expected_logging.insert(arn, ExpectedLoggingConfiguration { name, tags });
    }
    emulator.reset_metrics();

    let shared_logging = Arc::new(shared_logging);
    let start = Arc::new(Barrier::new(TASKS));
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        // One client (one connection pool) per task, as independent callers would have.
        let client = emulator.sdk_client_without_retries();
        tasks.spawn(churn(
            task,
            client,
            Arc::clone(&shared_logging),
            Arc::clone(&start),
        ));
    }
    let mut expected_rooms = BTreeMap::new();
    let mut calls = CallCounts::new();
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.expect("a churn task panicked");
        expected_rooms.extend(outcome.rooms);
        expected_logging.extend(outcome.logging_configurations);
        for (operation, count) in outcome.calls {
            *calls.entry(operation).or_default() += count;
        }
    }
    eprintln!(
        "churn: {} rooms and {} logging configurations left; successful calls: {calls:?}",
        expected_rooms.len(),
        expected_logging.len()
    );
    assert!(
        expected_rooms.len() > TASKS,
        "the churn should leave rooms behind (left {})",
        expected_rooms.len()
    );

    // The request counters saw exactly the calls the tasks made, all successful.
    for (operation, count) in &calls {
        assert_eq!(
            emulator.request_count(operation, "success"),
            *count,
            "successful {operation} requests counted by the emulator"
        );
        assert_eq!(
            emulator.request_total(operation),
            *count,
            "all {operation} requests succeeded"
        );
    }

    let client = emulator.sdk_client_without_retries();

    // ListRooms over all pages: exactly the rooms the tasks left, newest update first.
    let listed = list_all_rooms(&client, None, None).await;
    let listed_arns: BTreeSet<&str> = listed.iter().map(|room| room.arn().expect("arn")).collect();
    let expected_arns: BTreeSet<&str> = expected_rooms.keys().map(String::as_str).collect();
    assert_eq!(
        listed_arns, expected_arns,
        "ListRooms lists exactly the rooms left behind"
    );
    let update_times: Vec<_> = listed
        .iter()
        .map(|room| *room.update_time().expect("updateTime"))
        .collect();
    assert!(
        update_times.windows(2).all(|pair| pair[0] >= pair[1]),
        "ListRooms is ordered by updateTime, newest first"
    );

    // GetRoom and ListTagsForResource agree with the tasks' models and with the summaries.
    for summary in &listed {
        let arn = summary.arn().expect("arn");
        let expected = &expected_rooms[arn];
        let room = client
            .get_room()
            .identifier(arn)
            .send()
            .await
            .expect("GetRoom");
        assert_eq!(room.arn(), Some(arn));
        assert_eq!(room.name(), Some(expected.name.as_str()), "{arn} name");
        assert_eq!(
            room.maximum_message_length(),
            Some(expected.maximum_message_length),
            "{arn} length"
        );
        assert_eq!(
            room.maximum_message_rate_per_second(),
            Some(expected.maximum_message_rate_per_second),
            "{arn} rate"
        );
        assert_eq!(room.tags(), Some(&expected.tags), "{arn} tags in GetRoom");
        assert_eq!(
            room.logging_configuration_identifiers(),
            expected.logging_configurations.as_slice(),
            "{arn} logging configurations"
        );
        assert_eq!(
            summary.name(),
            room.name(),
            "{arn}: summary and GetRoom disagree on the name"
        );
        assert_eq!(
            summary.tags(),
            room.tags(),
            "{arn}: summary and GetRoom disagree on the tags"
        );
        assert_eq!(
            summary.create_time(),
            room.create_time(),
            "{arn}: createTime"
        );
        assert_eq!(
            summary.update_time(),
            room.update_time(),
            "{arn}: updateTime"
        );
        assert_eq!(
            summary.logging_configuration_identifiers(),
            room.logging_configuration_identifiers(),
            "{arn}: summary and GetRoom disagree on the logging configurations"
        );
        let tags = client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource");
        assert_eq!(
            tags.tags(),
            &expected.tags,
            "{arn} tags in ListTagsForResource"
        );
    }

    // The logging-configuration filter returns exactly the rooms attached to each shared configuration.
    for shared in shared_logging.iter() {
        let filtered: BTreeSet<String> = list_all_rooms(&client, Some(shared), None)
            .await
            .iter()
            .map(|room| room.arn().expect("arn").to_owned())
            .collect();
        let attached: BTreeSet<String> = expected_rooms
            .iter()
            .filter(|(_, room)| room.logging_configurations.contains(shared))
            .map(|(arn, _)| arn.clone())
            .collect();
        assert_eq!(filtered, attached, "rooms listed with the filter {shared}");
    }

    // Logging configurations: the list, Get and the tag listing agree with the models.
    let mut listed_logging = BTreeMap::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = client
            .list_logging_configurations()
            .max_results(3)
            .set_next_token(next_token.take())
            .send()
            .await
            .expect("ListLoggingConfigurations");
        for summary in page.logging_configurations() {
            let arn = summary.arn().expect("arn").to_owned();
            assert!(
                listed_logging
                    .insert(arn.clone(), summary.clone())
                    .is_none(),
                "{arn} listed twice"
            );
        }
        match page.next_token() {
            Some(token) => next_token = Some(token.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        listed_logging.keys().collect::<BTreeSet<_>>(),
        expected_logging.keys().collect::<BTreeSet<_>>(),
        "ListLoggingConfigurations lists exactly the configurations left behind"
    );
    for (arn, expected) in &expected_logging {
        let configuration = client
            .get_logging_configuration()
            .identifier(arn)
            .send()
            .await
            .expect("GetLoggingConfiguration");
        assert_eq!(
            configuration.name(),
            Some(expected.name.as_str()),
            "{arn} name"
        );
        assert_eq!(configuration.tags(), Some(&expected.tags), "{arn} tags");
        assert_eq!(
            listed_logging[arn].name(),
            configuration.name(),
            "{arn}: summary name"
        );
        assert_eq!(
            listed_logging[arn].tags(),
            configuration.tags(),
            "{arn}: summary tags"
        );
        let tags = client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource");
        assert_eq!(
            tags.tags(),
            &expected.tags,
            "{arn} tags in ListTagsForResource"
        );
    }

    emulator.stop().await.expect("stop the emulator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_churning_leave_a_consistent_store() {
    let _heavy = serial::beside_others().await;
    tokio::time::timeout(TEST_TIMEOUT, concurrent_churn_leaves_a_consistent_store())
        .await
        .expect("the concurrency test did not finish in time");
}

/// Starts `TASKS` requests at once (behind a barrier) and returns how many succeeded.
/// Whether a racing request was admitted; one that was not must have been refused for the limit.
fn admitted<T, E: std::fmt::Debug>(result: Result<T, E>, by_limit: impl Fn(&E) -> bool) -> bool {
    match result {
        Ok(_) => true,
        Err(error) => {
            assert!(by_limit(&error), "unexpected error: {error:?}");
            false
        }
    }
}

async fn race<F, Fut>(emulator: &Emulator, request: F) -> usize
where
    F: Fn(usize, Client) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let start = Arc::new(Barrier::new(TASKS));
    let mut tasks = JoinSet::new();
    for index in 0..TASKS {
        let start = Arc::clone(&start);
        let call = request(index, emulator.sdk_client_without_retries());
        tasks.spawn(async move {
            start.wait().await;
            call.await
        });
    }
    let mut succeeded = 0;
    while let Some(joined) = tasks.join_next().await {
        if joined.expect("a racing task panicked") {
            succeeded += 1;
        }
    }
    succeeded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_never_exceed_the_quotas() {
    let _heavy = serial::beside_others().await;
    let config = EmulatorConfig::default();
    let logging_quota = config.logging_configuration_quota as usize;
    let emulator = emulator::start(config).await;

    let created = race(&emulator, |index, client| async move {
        admitted(
            client
                .create_logging_configuration()
                .name(format!("racer-{index}"))
                .destination_configuration(s3_destination("race-bucket"))
                .send()
                .await
                .map_err(SdkError::into_service_error),
            |error| error.is_service_quota_exceeded_exception(),
        )
    })
    .await;
    assert_eq!(
        created, logging_quota,
        "logging configurations admitted by the quota"
    );
    let listed = emulator
        .sdk_client()
        .list_logging_configurations()
        .send()
        .await
        .expect("ListLoggingConfigurations");
    assert_eq!(listed.logging_configurations().len(), logging_quota);
    assert_eq!(
        emulator.request_count(
            "CreateLoggingConfiguration",
            "ServiceQuotaExceededException"
        ),
        (TASKS - logging_quota) as u64
    );

    const ROOM_QUOTA: u32 = 20;
    emulator.set_room_quota(Some(ROOM_QUOTA));
    let created = race(&emulator, |index, client| async move {
        admitted(
            client
                .create_room()
                .name(format!("racer-{index}"))
                .send()
                .await
                .map_err(SdkError::into_service_error),
            |error| error.is_service_quota_exceeded_exception(),
        )
    })
    .await;
    assert_eq!(
        created, ROOM_QUOTA as usize,
        "rooms admitted by the room quota"
    );
    let rooms = emulator
        .sdk_client()
        .list_rooms()
        .send()
        .await
        .expect("ListRooms");
    assert_eq!(rooms.rooms().len(), ROOM_QUOTA as usize);
    emulator.stop().await.expect("stop the emulator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tag_requests_never_exceed_fifty_tags() {
    let _heavy = serial::beside_others().await;
    const MAX_TAGS: usize = 50;
    const TAGS_PER_REQUEST: usize = 2;
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let room = emulator
        .sdk_client()
        .create_room()
        .name("tag-race")
        .send()
        .await
        .expect("CreateRoom");
    let arn = room.arn().expect("arn").to_owned();

    // 32 requests of two new keys each want 64 tags; exactly 25 fit under the limit of 50.
    let succeeded = race(&emulator, |index, client| {
        let arn = arn.clone();
        async move {
            admitted(
                client
                    .tag_resource()
                    .resource_arn(arn)
                    .tags(format!("a{index}"), "1")
                    .tags(format!("b{index}"), "2")
                    .send()
                    .await
                    .map_err(SdkError::into_service_error),
                |error| error.is_validation_exception(),
            )
        }
    })
    .await;
    assert_eq!(succeeded, MAX_TAGS / TAGS_PER_REQUEST);
    let tags = emulator
        .sdk_client()
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("ListTagsForResource");
    assert_eq!(tags.tags().len(), MAX_TAGS);
    // Each request was applied whole or not at all.
    for index in 0..TASKS {
        assert_eq!(
            tags.tags().contains_key(&format!("a{index}")),
            tags.tags().contains_key(&format!("b{index}")),
            "request {index} was applied partially"
        );
    }
    emulator.stop().await.expect("stop the emulator");
}
