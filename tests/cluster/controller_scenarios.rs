//! The operator end to end: each test runs the controllers in-process against the shared real
//! kube-apiserver (its own namespace) and its own IVS Chat emulator (with a nonzero logging-configuration
//! transition delay), then asserts AWS state through the SDK and Kubernetes state through the API.

use aws_sdk_ivschat::Client as Aws;
use ivschat_emulator::{Emulator, EmulatorConfig, TransitionFailures};
use ivschat_operator::controller::driver::FIELD_MANAGER;
use ivschat_operator::controller::{self, OperatorHandle, Options};
use ivschat_operator::crd::{
    ChatLoggingConfiguration, ChatRoom, OWNER_NAME_TAG, OWNER_NAMESPACE_TAG, OWNER_UID_TAG,
    PAUSED_ANNOTATION,
};
use ivschat_testsupport::cluster::install_test_tracing;
use ivschat_testsupport::operator::test_timing;
use ivschat_testsupport::{
    apply_with, condition, control_plane, create_namespace, emulator, is_ready, serial, wait_for,
    wait_gone,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::RwLockReadGuard;

const RESYNC: Duration = Duration::from_secs(2);
const TRANSITION_DELAY: Duration = Duration::from_millis(600);
const WAIT: Duration = Duration::from_secs(30);

/// One test's world: a namespace, an emulator, SDK access to it, and the operator (also the export tests').
pub(super) struct Scenario {
    pub(super) namespace: String,
    pub(super) kube: Client,
    pub(super) emulator: Emulator,
    pub(super) aws: Aws,
    operator: Option<OperatorHandle>,
    /// Runs an operator: never beside a test that must run alone.
    _heavy: RwLockReadGuard<'static, ()>,
}

impl Scenario {
    pub(super) async fn new(namespace: &str) -> Scenario {
        Self::with_emulator(namespace, EmulatorConfig::default()).await
    }

    async fn with_emulator(namespace: &str, config: EmulatorConfig) -> Scenario {
        let heavy = serial::beside_others().await;
        install_test_tracing();
        let control_plane = control_plane();
        let kube = control_plane.client().await.expect("kube client");
        create_namespace(&kube, namespace).await;
        let emulator = emulator::start(EmulatorConfig {
            logging_transition_delay: TRANSITION_DELAY,
            ..config
        })
        .await;
        let aws = emulator.sdk_client();
        let mut scenario = Scenario {
            namespace: namespace.to_owned(),
            kube,
            emulator,
            aws,
            operator: None,
            _heavy: heavy,
        };
        scenario.start_operator(scenario.emulator.sdk_client());
        scenario
    }

    fn start_operator(&mut self, aws: Aws) {
        self.operator = Some(controller::start(
            self.kube.clone(),
            aws,
            Options {
                timing: test_timing(RESYNC),
                namespace: Some(self.namespace.clone()),
                concurrency: 4,
                // As `run` is told with the emulator as its AWS endpoint.
                messaging_endpoint: self.emulator.messaging_url(),
                ..Options::default()
            },
        ));
    }

    async fn stop_operator(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.stop().await.expect("stopping the operator");
        }
    }

    pub(super) fn rooms(&self) -> Api<ChatRoom> {
        Api::namespaced(self.kube.clone(), &self.namespace)
    }

    pub(super) fn configs(&self) -> Api<ChatLoggingConfiguration> {
        Api::namespaced(self.kube.clone(), &self.namespace)
    }

    /// Server-side apply of a whole spec (and optional metadata), as `kubectl apply` would.
    async fn apply<K>(&self, name: &str, metadata: Value, spec: Value) -> K
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.kube.clone(), &self.namespace);
        apply_with(&api, "test", name, metadata, spec).await
    }

    pub(super) async fn room(&self, name: &str, spec: Value) -> ChatRoom {
        self.apply(name, json!({}), spec).await
    }

    pub(super) async fn config(&self, name: &str, spec: Value) -> ChatLoggingConfiguration {
        self.apply(name, json!({}), spec).await
    }

    pub(super) fn writes(&self) -> u64 {
        emulator::writes(&self.emulator)
    }

    pub(super) async fn events(&self, object: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.kube.clone(), &self.namespace);
        api.list(&ListParams::default())
            .await
            .expect("listing events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
            .collect()
    }

    pub(super) async fn wait_event(&self, object: &str, reason: &str) -> Event {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(event) = self
                .events(object)
                .await
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
            {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} event for {object}: {:?}",
                self.events(object)
                    .await
                    .iter()
                    .map(|e| (e.reason.clone(), e.note.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(super) async fn finish(mut self) {
        self.stop_operator().await;
        let _ = self.emulator.stop().await;
    }
}

fn ready_reason<K: serde::Serialize>(object: &K) -> String {
    condition(object, "Ready")
        .map(|(status, reason, _)| format!("{status}/{reason}"))
        .unwrap_or_default()
}

fn room_arn(room: &ChatRoom) -> String {
    room.status
        .as_ref()
        .and_then(|s| s.arn.clone())
        .expect("the room has an ARN in status")
}

fn config_arn(config: &ChatLoggingConfiguration) -> String {
    config
        .status
        .as_ref()
        .and_then(|s| s.arn.clone())
        .expect("the configuration has an ARN in status")
}

fn sorted(tags: Option<&HashMap<String, String>>) -> Vec<(String, String)> {
    let mut tags: Vec<_> = tags.cloned().unwrap_or_default().into_iter().collect();
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_and_delete_with_a_reference_created_after_the_room() {
    let s = Scenario::new("lifecycle").await;

    // The room comes first and waits for its logging configuration, touching nothing in AWS.
    s.room(
        "room",
        json!({"name": "test-room-1", "loggingConfigurations": [{"name": "logs"}], "tags": {"team": "chat"}}),
    )
    .await;
    let waiting = wait_for(&s.rooms(), "room", "waiting", |r: &ChatRoom| {
        condition(r, "Ready")
            .is_some_and(|(_, reason, _)| reason == "WaitingForLoggingConfiguration")
    })
    .await;
    let (_, _, message) = condition(&waiting, "Ready").expect("Ready");
    assert!(message.contains("logs"), "{message}");
    assert_eq!(s.emulator.request_total("CreateRoom"), 0);
    assert!(
        waiting
            .finalizers()
            .iter()
            .any(|f| f == "ivschat.dev/finalizer")
    );

    s.config(
        "logs",
        json!({"name": "test-logging-config", "destinationConfiguration": {"s3": {"bucketName": "demo-logging-bucket"}}}),
    )
    .await;
    let config = wait_for(&s.configs(), "logs", "Ready", is_ready).await;
    assert_eq!(
        config.status.as_ref().and_then(|s| s.state.as_deref()),
        Some("ACTIVE")
    );
    let logs_arn = config_arn(&config);

    let room = wait_for(&s.rooms(), "room", "Ready", is_ready).await;
    let arn = room_arn(&room);
    let aws_room = s
        .aws
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(aws_room.name(), Some("test-room-1"));
    assert_eq!(aws_room.maximum_message_length(), Some(500));
    assert_eq!(aws_room.maximum_message_rate_per_second(), Some(10));
    assert_eq!(
        aws_room.logging_configuration_identifiers(),
        std::slice::from_ref(&logs_arn)
    );
    let tags = sorted(aws_room.tags());
    let uid = room.uid().expect("uid");
    assert_eq!(
        tags,
        vec![
            (OWNER_NAME_TAG.to_owned(), "room".to_owned()),
            (OWNER_NAMESPACE_TAG.to_owned(), "lifecycle".to_owned()),
            (OWNER_UID_TAG.to_owned(), uid),
            ("team".to_owned(), "chat".to_owned()),
        ]
    );
    let status = room.status.as_ref().expect("status");
    assert_eq!(status.id.as_deref(), aws_room.id());
    assert!(status.create_time.is_some());
    assert_eq!(status.logging_configuration_arns, vec![logs_arn.clone()]);
    // Omitted fields are AWS defaults: creating the room needed no update.
    assert_eq!(s.emulator.request_total("CreateRoom"), 1);
    assert_eq!(s.emulator.request_total("UpdateRoom"), 0);

    // Update every field.
    s.room(
        "room",
        json!({
            "name": "renamed",
            "maximumMessageLength": 256,
            "maximumMessageRatePerSecond": 5,
            "messageReviewHandler": {"uri": "arn:aws:lambda:us-west-2:123456789012:function:review", "fallbackResult": "DENY"},
            "loggingConfigurations": [],
            "tags": {"team": "chat"},
        }),
    )
    .await;
    wait_for(&s.rooms(), "room", "Ready", is_ready).await;
    let aws_room = s
        .aws
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(aws_room.name(), Some("renamed"));
    assert_eq!(aws_room.maximum_message_length(), Some(256));
    assert_eq!(aws_room.maximum_message_rate_per_second(), Some(5));
    let handler = aws_room.message_review_handler().expect("handler");
    assert_eq!(
        handler.uri(),
        Some("arn:aws:lambda:us-west-2:123456789012:function:review")
    );
    assert_eq!(handler.fallback_result().map(|f| f.as_str()), Some("DENY"));
    assert!(aws_room.logging_configuration_identifiers().is_empty());
    assert_eq!(s.emulator.request_total("UpdateRoom"), 1);
    s.wait_event("room", "Updated").await;

    // And back to defaults: the handler is removed, the omitted values return to the AWS defaults.
    s.room("room", json!({"loggingConfigurations": [{"name": "logs"}]}))
        .await;
    wait_for(&s.rooms(), "room", "Ready", is_ready).await;
    let aws_room = s
        .aws
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(aws_room.name(), Some(""));
    assert_eq!(aws_room.maximum_message_length(), Some(500));
    assert!(
        aws_room
            .message_review_handler()
            .is_none_or(|h| h.uri().unwrap_or_default().is_empty())
    );
    assert_eq!(
        aws_room.logging_configuration_identifiers(),
        std::slice::from_ref(&logs_arn)
    );
    // The removed spec tag is gone from AWS.
    assert!(aws_room.tags().is_some_and(|t| !t.contains_key("team")));

    // Update the logging configuration's destination.
    s.config(
        "logs",
        json!({"name": "test-logging-config", "destinationConfiguration": {"firehose": {"deliveryStreamName": "stream"}}}),
    )
    .await;
    wait_for(&s.configs(), "logs", "Ready after update", is_ready).await;
    let aws_config = s
        .aws
        .get_logging_configuration()
        .identifier(&logs_arn)
        .send()
        .await
        .expect("GetLoggingConfiguration");
    assert!(
        aws_config
            .destination_configuration()
            .is_some_and(|d| d.is_firehose())
    );
    assert_eq!(aws_config.state().map(|s| s.as_str()), Some("ACTIVE"));

    // Delete: the room goes first; the configuration waits while the room still uses it.
    s.configs()
        .delete("logs", &DeleteParams::default())
        .await
        .expect("deleting the configuration");
    let blocked = wait_for(
        &s.configs(),
        "logs",
        "waiting for rooms",
        |c: &ChatLoggingConfiguration| {
            condition(c, "Ready").is_some_and(|(_, reason, _)| reason == "InUse")
        },
    )
    .await;
    assert!(condition(&blocked, "Ready").is_some_and(|(_, _, m)| m.contains("room")));
    assert_eq!(s.emulator.request_total("DeleteLoggingConfiguration"), 0);

    s.rooms()
        .delete("room", &DeleteParams::default())
        .await
        .expect("deleting the room");
    wait_gone(&s.rooms(), "room").await;
    let gone = s.aws.get_room().identifier(&arn).send().await;
    assert!(gone.is_err(), "the AWS room still exists");
    wait_gone(&s.configs(), "logs").await;
    let gone = s
        .aws
        .get_logging_configuration()
        .identifier(&logs_arn)
        .send()
        .await;
    assert!(gone.is_err(), "the AWS logging configuration still exists");
    s.finish().await;
}

fn user_tags(tags: Option<&HashMap<String, String>>) -> Vec<(String, String)> {
    sorted(tags)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("ivschat.dev/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_follow_the_spec_and_foreign_tags_are_kept() {
    let s = Scenario::new("tags").await;
    s.room("room", json!({"tags": {"team": "chat", "env": "dev"}}))
        .await;
    let arn = room_arn(&wait_for(&s.rooms(), "room", "Ready", is_ready).await);
    // Someone adds a tag in AWS: the operator must leave it alone.
    s.aws
        .tag_resource()
        .resource_arn(&arn)
        .tags("owner", "someone-else")
        .send()
        .await
        .expect("TagResource");

    // Change one tag, remove one, add one.
    s.room("room", json!({"tags": {"team": "video", "cost": "42"}}))
        .await;
    wait_for(&s.rooms(), "room", "Ready", is_ready).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let room = s
            .aws
            .get_room()
            .identifier(&arn)
            .send()
            .await
            .expect("GetRoom");
        let tags = user_tags(room.tags());
        let expected = vec![
            ("cost".to_owned(), "42".to_owned()),
            ("owner".to_owned(), "someone-else".to_owned()),
            ("team".to_owned(), "video".to_owned()),
        ];
        if tags == expected {
            assert_eq!(sorted(room.tags()).len(), 6, "plus 3 ownership tags");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tags {tags:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let room = s.rooms().get("room").await.expect("room");
    let managed = &room.status.as_ref().expect("status").managed_tag_keys;
    assert!(managed.contains(&"cost".to_owned()) && !managed.contains(&"env".to_owned()));
    assert!(!managed.contains(&"owner".to_owned()));

    // Tags on a logging configuration work the same way.
    s.config(
        "logs",
        json!({"destinationConfiguration": {"cloudWatchLogs": {"logGroupName": "/chat"}}, "tags": {"a": "1"}}),
    )
    .await;
    let logs_arn = config_arn(&wait_for(&s.configs(), "logs", "Ready", is_ready).await);
    s.config(
        "logs",
        json!({"destinationConfiguration": {"cloudWatchLogs": {"logGroupName": "/chat"}}, "tags": {"b": "2"}}),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let config = s
            .aws
            .get_logging_configuration()
            .identifier(&logs_arn)
            .send()
            .await
            .expect("GetLoggingConfiguration");
        if user_tags(config.tags()) == vec![("b".to_owned(), "2".to_owned())] {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", config.tags());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_corrected_within_one_resync_and_reported() {
    let s = Scenario::new("drift").await;
    s.config(
        "logs",
        json!({"name": "logs", "destinationConfiguration": {"s3": {"bucketName": "bucket-a"}}}),
    )
    .await;
    s.room(
        "room",
        json!({
            "name": "room",
            "maximumMessageLength": 300,
            "maximumMessageRatePerSecond": 7,
            "messageReviewHandler": {"uri": "arn:aws:lambda:us-west-2:123456789012:function:f", "fallbackResult": "DENY"},
            "loggingConfigurations": [{"name": "logs"}],
            "tags": {"team": "chat"},
        }),
    )
    .await;
    let arn = room_arn(&wait_for(&s.rooms(), "room", "Ready", is_ready).await);
    let logs_arn = config_arn(&wait_for(&s.configs(), "logs", "Ready", is_ready).await);

    // Out-of-band edits of every room field and of a managed tag, as someone at the console would.
    s.aws
        .update_room()
        .identifier(&arn)
        .name("hacked")
        .maximum_message_length(1)
        .maximum_message_rate_per_second(1)
        .message_review_handler(
            aws_sdk_ivschat::types::MessageReviewHandler::builder()
                .uri("")
                .build(),
        )
        .set_logging_configuration_identifiers(Some(vec![]))
        .send()
        .await
        .expect("UpdateRoom");
    s.aws
        .tag_resource()
        .resource_arn(&arn)
        .tags("team", "hacked")
        .send()
        .await
        .expect("TagResource");
    let edited = Instant::now();

    // Within one resync (plus the transition delay and a margin) AWS is back to the spec.
    let deadline = edited + RESYNC * 2 + TRANSITION_DELAY * 2 + Duration::from_secs(3);
    loop {
        let room = s
            .aws
            .get_room()
            .identifier(&arn)
            .send()
            .await
            .expect("GetRoom");
        let room_ok = room.name() == Some("room")
            && room.maximum_message_length() == Some(300)
            && room.maximum_message_rate_per_second() == Some(7)
            && room.message_review_handler().and_then(|h| h.uri())
                == Some("arn:aws:lambda:us-west-2:123456789012:function:f")
            && room.logging_configuration_identifiers() == [logs_arn.clone()]
            && room.tags().and_then(|t| t.get("team")).map(String::as_str) == Some("chat");
        if room_ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "room drift not corrected in time: {room:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let event = s.wait_event("room", "DriftCorrected").await;
    let note = event.note.unwrap_or_default();
    for field in [
        "name",
        "maximumMessageLength",
        "maximumMessageRatePerSecond",
        "messageReviewHandlerUri",
        "loggingConfigurationArns",
        "tags (team)",
    ] {
        assert!(note.contains(field), "{field} missing from {note}");
    }
    // The review handler's fallback result drifting on its own (the handler itself unchanged).
    let fallback = |room: &aws_sdk_ivschat::operation::get_room::GetRoomOutput| {
        room.message_review_handler()
            .and_then(|handler| handler.fallback_result())
            .map(|result| result.as_str().to_string())
    };
    s.aws
        .update_room()
        .identifier(&arn)
        .message_review_handler(
            aws_sdk_ivschat::types::MessageReviewHandler::builder()
                .uri("arn:aws:lambda:us-west-2:123456789012:function:f")
                .fallback_result(aws_sdk_ivschat::types::FallbackResult::Allow)
                .build(),
        )
        .send()
        .await
        .expect("UpdateRoom of the fallback result");
    let deadline = Instant::now() + RESYNC * 2 + Duration::from_secs(3);
    loop {
        let room = s
            .aws
            .get_room()
            .identifier(&arn)
            .send()
            .await
            .expect("GetRoom");
        if fallback(&room).as_deref() == Some("DENY") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fallbackResult drift not corrected in time: {room:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then the logging configuration (its transition delay applies).
    s.aws
        .update_logging_configuration()
        .identifier(&logs_arn)
        .name("hacked")
        .destination_configuration(aws_sdk_ivschat::types::DestinationConfiguration::Firehose(
            aws_sdk_ivschat::types::FirehoseDestinationConfiguration::builder()
                .delivery_stream_name("elsewhere")
                .build()
                .expect("destination"),
        ))
        .send()
        .await
        .expect("UpdateLoggingConfiguration");
    let deadline = Instant::now() + RESYNC * 2 + TRANSITION_DELAY * 4 + Duration::from_secs(3);
    loop {
        let config = s
            .aws
            .get_logging_configuration()
            .identifier(&logs_arn)
            .send()
            .await
            .expect("GetLoggingConfiguration");
        if config.name() == Some("logs")
            && config
                .destination_configuration()
                .and_then(|d| d.as_s3().ok())
                .map(|s3| s3.bucket_name())
                == Some("bucket-a")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "configuration drift not corrected: {config:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let event = s.wait_event("logs", "DriftCorrected").await;
    assert!(
        event
            .note
            .unwrap_or_default()
            .contains("destinationConfiguration"),
        "config drift event"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_deleted_out_of_band_are_recreated_or_reported() {
    let s = Scenario::new("out-of-band").await;
    s.room("kept", json!({"maximumMessageLength": 99})).await;
    s.room("retained", json!({"deletionPolicy": "Retain"}))
        .await;
    let kept_arn = room_arn(&wait_for(&s.rooms(), "kept", "Ready", is_ready).await);
    let retained_arn = room_arn(&wait_for(&s.rooms(), "retained", "Ready", is_ready).await);
    for arn in [&kept_arn, &retained_arn] {
        s.aws
            .delete_room()
            .identifier(arn.as_str())
            .send()
            .await
            .expect("DeleteRoom");
    }

    // Policy Delete: created again, with a new ARN, and an event says so.
    let recreated = wait_for(&s.rooms(), "kept", "recreated", |r: &ChatRoom| {
        is_ready(r) && r.status.as_ref().and_then(|s| s.arn.as_deref()) != Some(kept_arn.as_str())
    })
    .await;
    let new_arn = room_arn(&recreated);
    let room = s
        .aws
        .get_room()
        .identifier(&new_arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(room.maximum_message_length(), Some(99));
    s.wait_event("kept", "Recreated").await;

    // Policy Retain: reported, not recreated.
    let reported = wait_for(&s.rooms(), "retained", "reported", |r: &ChatRoom| {
        condition(r, "Stalled")
            .is_some_and(|(status, reason, _)| status == "True" && reason == "NotFoundInAws")
    })
    .await;
    assert!(!is_ready(&reported));
    assert_eq!(
        s.emulator.request_total("CreateRoom"),
        3,
        "only the Delete-policy room is recreated"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_states_are_mirrored_and_failures_reported() {
    let s = Scenario::new("states").await;
    s.config(
        "doomed",
        json!({"destinationConfiguration": {"s3": {"bucketName": "bucket-d"}}}),
    )
    .await;
    s.config(
        "logs",
        json!({"destinationConfiguration": {"s3": {"bucketName": "bucket-a"}}}),
    )
    .await;
    // While AWS reports CREATING the object is Reconciling, with the state mirrored.
    let creating = wait_for(
        &s.configs(),
        "logs",
        "creating",
        |c: &ChatLoggingConfiguration| {
            c.status.as_ref().and_then(|s| s.state.as_deref()) == Some("CREATING")
        },
    )
    .await;
    assert_eq!(
        condition(&creating, "Reconciling").map(|(status, reason, _)| (status, reason)),
        Some(("True".to_owned(), "Creating".to_owned()))
    );
    wait_for(&s.configs(), "logs", "Ready", is_ready).await;

    // A failed transition: Ready=False with the AWS state in the reason, the state mirrored.
    s.emulator.set_fail_transitions(TransitionFailures {
        create: true,
        update: true,
        delete: false,
    });
    s.config(
        "broken",
        json!({"destinationConfiguration": {"s3": {"bucketName": "bucket-b"}}}),
    )
    .await;
    let failed = wait_for(
        &s.configs(),
        "broken",
        "CREATE_FAILED",
        |c: &ChatLoggingConfiguration| {
            condition(c, "Ready")
                .is_some_and(|(status, reason, _)| status == "False" && reason == "CreateFailed")
        },
    )
    .await;
    assert_eq!(
        failed.status.as_ref().and_then(|s| s.state.as_deref()),
        Some("CREATE_FAILED")
    );
    assert!(condition(&failed, "Stalled").is_some_and(|(status, _, _)| status == "True"));

    s.config(
        "logs",
        json!({"destinationConfiguration": {"s3": {"bucketName": "bucket-c"}}}),
    )
    .await;
    let failed = wait_for(
        &s.configs(),
        "logs",
        "UPDATE_FAILED",
        |c: &ChatLoggingConfiguration| {
            condition(c, "Ready").is_some_and(|(_, reason, _)| reason == "UpdateFailed")
        },
    )
    .await;
    assert_eq!(
        failed.status.as_ref().and_then(|s| s.state.as_deref()),
        Some("UPDATE_FAILED")
    );
    // A failed deletion: reported with the state in the reason, the finalizer kept, no loop of calls.
    wait_for(&s.configs(), "doomed", "Ready", is_ready).await;
    s.emulator.set_fail_transitions(TransitionFailures {
        create: false,
        update: false,
        delete: true,
    });
    s.configs()
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete");
    let failed = wait_for(
        &s.configs(),
        "doomed",
        "DELETE_FAILED",
        |c: &ChatLoggingConfiguration| {
            condition(c, "Ready").is_some_and(|(_, reason, _)| reason == "DeleteFailed")
        },
    )
    .await;
    assert!(condition(&failed, "Ready").is_some_and(|(_, _, m)| m.contains("DELETE_FAILED")));
    let deletes = s.emulator.request_total("DeleteLoggingConfiguration");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        s.emulator.request_total("DeleteLoggingConfiguration"),
        deletes,
        "retried at once"
    );
    // Once AWS lets it go, the retry after the long backoff completes the deletion.
    s.emulator.set_fail_transitions(TransitionFailures::NONE);
    wait_gone(&s.configs(), "doomed").await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_leaves_the_resource_without_ownership_tags() {
    let s = Scenario::new("retain").await;
    s.room(
        "room",
        json!({"deletionPolicy": "Retain", "tags": {"team": "chat"}}),
    )
    .await;
    s.config(
        "logs",
        json!({"deletionPolicy": "Retain", "destinationConfiguration": {"s3": {"bucketName": "bucket-a"}}}),
    )
    .await;
    let arn = room_arn(&wait_for(&s.rooms(), "room", "Ready", is_ready).await);
    let logs_arn = config_arn(&wait_for(&s.configs(), "logs", "Ready", is_ready).await);
    s.rooms()
        .delete("room", &DeleteParams::default())
        .await
        .expect("delete");
    s.configs()
        .delete("logs", &DeleteParams::default())
        .await
        .expect("delete");
    wait_gone(&s.rooms(), "room").await;
    wait_gone(&s.configs(), "logs").await;
    let room = s
        .aws
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("the room is retained");
    assert_eq!(
        sorted(room.tags()),
        vec![("team".to_owned(), "chat".to_owned())]
    );
    let config = s
        .aws
        .get_logging_configuration()
        .identifier(&logs_arn)
        .send()
        .await
        .expect("the configuration is retained");
    assert!(sorted(config.tags()).is_empty());
    assert_eq!(s.emulator.request_total("DeleteRoom"), 0);
    assert_eq!(s.emulator.request_total("DeleteLoggingConfiguration"), 0);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_takes_over_and_brings_the_resource_to_the_spec() {
    let s = Scenario::new("adopt").await;
    let existing = s
        .aws
        .create_room()
        .name("outside")
        .maximum_message_length(100)
        .tags("foreign", "kept")
        .send()
        .await
        .expect("CreateRoom");
    let arn = existing.arn().expect("arn").to_owned();
    s.room(
        "room",
        json!({"adoptArn": arn, "name": "adopted", "maximumMessageLength": 200, "tags": {"team": "chat"}}),
    )
    .await;
    let room = wait_for(&s.rooms(), "room", "Ready", is_ready).await;
    assert_eq!(room_arn(&room), arn);
    let aws_room = s
        .aws
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(aws_room.name(), Some("adopted"));
    assert_eq!(aws_room.maximum_message_length(), Some(200));
    let tags = sorted(aws_room.tags());
    assert!(tags.contains(&("foreign".to_owned(), "kept".to_owned())));
    assert!(tags.contains(&("team".to_owned(), "chat".to_owned())));
    assert!(tags.iter().any(|(k, _)| k == OWNER_UID_TAG));
    s.wait_event("room", "Adopted").await;
    // Only one room exists: adoption never creates.
    assert_eq!(s.emulator.request_total("CreateRoom"), 1);

    // An adoptArn that does not exist is reported, not created.
    s.room(
        "missing",
        json!({"adoptArn": "arn:aws:ivschat:us-west-2:123456789012:room/AAAAAAAAAAAA"}),
    )
    .await;
    wait_for(&s.rooms(), "missing", "reported", |r: &ChatRoom| {
        condition(r, "Ready").is_some_and(|(_, reason, _)| reason == "NotFoundInAws")
    })
    .await;
    assert_eq!(s.emulator.request_total("CreateRoom"), 1);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_only_mirrors_aws_and_never_writes() {
    let s = Scenario::new("observe").await;
    let room = s
        .aws
        .create_room()
        .name("outside")
        .send()
        .await
        .expect("CreateRoom");
    let arn = room.arn().expect("arn").to_owned();
    let config = s
        .aws
        .create_logging_configuration()
        .destination_configuration(aws_sdk_ivschat::types::DestinationConfiguration::S3(
            aws_sdk_ivschat::types::S3DestinationConfiguration::builder()
                .bucket_name("bucket-a")
                .build()
                .expect("destination"),
        ))
        .send()
        .await
        .expect("CreateLoggingConfiguration");
    let logs_arn = config.arn().expect("arn").to_owned();
    let writes_before = s.writes();

    // The spec differs from AWS: observe-only must not "fix" it.
    s.room(
        "room",
        json!({"managementPolicy": "ObserveOnly", "adoptArn": arn, "name": "different", "tags": {"a": "b"}}),
    )
    .await;
    s.config(
        "logs",
        json!({"managementPolicy": "ObserveOnly", "adoptArn": logs_arn, "destinationConfiguration": {"s3": {"bucketName": "other"}}}),
    )
    .await;
    let observed = wait_for(&s.rooms(), "room", "Ready", is_ready).await;
    assert_eq!(ready_reason(&observed), "True/Observed");
    assert_eq!(
        observed.status.as_ref().and_then(|s| s.id.as_deref()),
        room.id()
    );
    let observed = wait_for(&s.configs(), "logs", "Ready", is_ready).await;
    assert_eq!(
        observed.status.as_ref().and_then(|s| s.state.as_deref()),
        Some("ACTIVE")
    );

    // Over a couple of resyncs and a deletion: zero write calls.
    tokio::time::sleep(RESYNC * 2).await;
    s.rooms()
        .delete("room", &DeleteParams::default())
        .await
        .expect("delete");
    s.configs()
        .delete("logs", &DeleteParams::default())
        .await
        .expect("delete");
    wait_gone(&s.rooms(), "room").await;
    wait_gone(&s.configs(), "logs").await;
    assert_eq!(s.writes(), writes_before, "observe-only wrote to AWS");
    assert!(
        s.emulator.request_total("GetRoom") >= 1,
        "the room was read"
    );
    let room = s
        .aws
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("still there");
    assert_eq!(room.name(), Some("outside"));
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_object_is_neither_read_nor_written() {
    let s = Scenario::new("pause").await;
    s.room("room", json!({"maximumMessageLength": 100})).await;
    let arn = room_arn(&wait_for(&s.rooms(), "room", "Ready", is_ready).await);
    s.apply::<ChatRoom>(
        "room",
        json!({"annotations": {PAUSED_ANNOTATION: "true"}}),
        json!({"maximumMessageLength": 200}),
    )
    .await;
    // Let any reconcile in flight finish, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls_before = s.emulator.metrics_text();
    let gets_before = s.emulator.request_total("GetRoom");
    let writes_before = s.writes();
    tokio::time::sleep(RESYNC * 2).await;
    assert_eq!(
        s.emulator.request_total("GetRoom"),
        gets_before,
        "paused room was read"
    );
    assert_eq!(
        s.writes(),
        writes_before,
        "paused room was written: {calls_before}"
    );
    let room = s
        .aws
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(room.maximum_message_length(), Some(100));

    // Deletion waits too: the finalizer stays while paused.
    s.rooms()
        .delete("room", &DeleteParams::default())
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(s.rooms().get_opt("room").await.expect("get").is_some());
    assert_eq!(s.emulator.request_total("DeleteRoom"), 0);

    // Unpaused: deletion proceeds.
    s.apply::<ChatRoom>(
        "room",
        json!({"annotations": {PAUSED_ANNOTATION: "false"}}),
        json!({"maximumMessageLength": 200}),
    )
    .await;
    wait_gone(&s.rooms(), "room").await;
    assert_eq!(s.emulator.request_total("DeleteRoom"), 1);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpausing_applies_the_changes_made_while_paused() {
    let s = Scenario::new("unpause").await;
    s.apply::<ChatRoom>(
        "room",
        json!({"annotations": {PAUSED_ANNOTATION: "true"}}),
        json!({"maximumMessageLength": 100}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.emulator.request_total("CreateRoom"), 0);
    s.apply::<ChatRoom>(
        "room",
        json!({"annotations": {}}),
        json!({"maximumMessageLength": 100}),
    )
    .await;
    let arn = room_arn(&wait_for(&s.rooms(), "room", "Ready", is_ready).await);
    let room = s
        .aws
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(room.maximum_message_length(), Some(100));
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_aws_rejects_stalls_after_one_call_until_the_spec_changes() {
    let s = Scenario::new("rejected").await;
    let missing = "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/AAAAAAAAAAAA";
    s.room("room", json!({"loggingConfigurations": [{"arn": missing}]}))
        .await;
    let stalled = wait_for(&s.rooms(), "room", "Stalled", |r: &ChatRoom| {
        condition(r, "Stalled").is_some_and(|(status, _, _)| status == "True")
    })
    .await;
    let (_, reason, message) = condition(&stalled, "Stalled").expect("Stalled");
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("CreateRoom"), "{message}");
    let event = s.wait_event("room", "InvalidSpec").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.note.unwrap_or_default().len() <= 1024);
    // No loop: several resync periods later, still exactly one call besides the account-wide listings.
    tokio::time::sleep(RESYNC * 2).await;
    assert_eq!(s.emulator.request_total("CreateRoom"), 1);
    let calls: HashMap<String, u64> = s
        .emulator
        .metrics()
        .into_iter()
        .filter(|((operation, _), _)| !operation.starts_with("List"))
        .map(|((operation, outcome), count)| (format!("{operation} {outcome}"), count))
        .collect();
    assert_eq!(
        calls.values().sum::<u64>(),
        1,
        "no AWS call but the create (and listings): {calls:?}"
    );

    // A spec change is retried at once.
    s.room("room", json!({})).await;
    wait_for(&s.rooms(), "room", "Ready", is_ready).await;
    assert!(
        condition(&s.rooms().get("room").await.expect("room"), "Stalled").is_none(),
        "Stalled is removed once resolved"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified_into_conditions_and_events() {
    let mut s = Scenario::new("errors").await;
    // Quota: Ready=False with reason QuotaExceeded, and recovery once there is room again.
    s.emulator.set_room_quota(Some(0));
    s.room("quota", json!({})).await;
    wait_for(&s.rooms(), "quota", "QuotaExceeded", |r: &ChatRoom| {
        condition(r, "Ready")
            .is_some_and(|(status, reason, _)| status == "False" && reason == "QuotaExceeded")
    })
    .await;
    s.wait_event("quota", "QuotaExceeded").await;
    s.emulator.set_room_quota(None);
    wait_for(&s.rooms(), "quota", "Ready", is_ready).await;

    // Transient (every request a 5xx): backoff, then recovery.
    s.emulator.set_fault_rate(1.0).expect("fault rate");
    s.room("flaky", json!({})).await;
    wait_for(&s.rooms(), "flaky", "AwsUnavailable", |r: &ChatRoom| {
        condition(r, "Ready").is_some_and(|(_, reason, _)| reason == "AwsUnavailable")
    })
    .await;
    s.emulator.set_fault_rate(0.0).expect("fault rate");
    wait_for(&s.rooms(), "flaky", "Ready", is_ready).await;

    // A resync read that fails says nothing about the room: it stays Ready, its status is not rewritten,
    // and a Warning event tells what happened.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let version = s
        .rooms()
        .get("flaky")
        .await
        .expect("room")
        .resource_version();
    let gets = s.emulator.request_total("GetRoom");
    s.emulator.set_fault_rate(1.0).expect("fault rate");
    let deadline = Instant::now() + RESYNC * 3;
    while s.emulator.request_total("GetRoom") == gets {
        assert!(Instant::now() < deadline, "no resync read");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = s.rooms().get("flaky").await.expect("room");
    assert!(
        is_ready(&during),
        "a failed resync read flipped Ready: {:?}",
        during.status
    );
    assert_eq!(
        during.resource_version(),
        version,
        "status rewritten on a failed read"
    );
    s.emulator.set_fault_rate(0.0).expect("fault rate");

    // Access denied (credentials AWS does not accept): Stalled with reason AccessDenied.
    s.stop_operator().await;
    let denied = s.emulator.sdk_client_with(|builder| {
        builder.credentials_provider(aws_sdk_ivschat::config::Credentials::new(
            "test",
            "not-the-secret",
            None,
            None,
            "test",
        ))
    });
    s.start_operator(denied);
    s.room("denied", json!({})).await;
    wait_for(&s.rooms(), "denied", "AccessDenied", |r: &ChatRoom| {
        condition(r, "Stalled").is_some_and(|(_, reason, _)| reason == "AccessDenied")
    })
    .await;
    s.wait_event("denied", "AccessDenied").await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_rest_there_are_no_aws_writes_and_no_status_writes() {
    let s = Scenario::new("steady").await;
    s.config(
        "logs",
        json!({"destinationConfiguration": {"s3": {"bucketName": "bucket-a"}}}),
    )
    .await;
    for name in ["a", "b", "c"] {
        s.room(
            name,
            json!({"maximumMessageLength": 120, "loggingConfigurations": [{"name": "logs"}], "tags": {"team": "chat"}}),
        )
        .await;
    }
    for name in ["a", "b", "c"] {
        wait_for(&s.rooms(), name, "Ready", is_ready).await;
    }
    wait_for(&s.configs(), "logs", "Ready", is_ready).await;
    // Let the last status writes' own watch events settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let versions = |rooms: Vec<ChatRoom>| -> Vec<String> {
        rooms.iter().filter_map(|r| r.resource_version()).collect()
    };
    let before = versions(
        s.rooms()
            .list(&ListParams::default())
            .await
            .expect("list")
            .items,
    );
    let config_before = s
        .configs()
        .get("logs")
        .await
        .expect("logs")
        .resource_version();
    let writes_before = s.writes();
    let gets_before = s.emulator.request_total("GetRoom");
    let lists_before = s.emulator.request_total("ListRooms");

    let periods = 3;
    tokio::time::sleep(RESYNC * periods + Duration::from_millis(500)).await;

    assert_eq!(s.writes(), writes_before, "AWS writes at rest");
    let after = versions(
        s.rooms()
            .list(&ListParams::default())
            .await
            .expect("list")
            .items,
    );
    assert_eq!(after, before, "ChatRoom objects were written at rest");
    assert_eq!(
        s.configs()
            .get("logs")
            .await
            .expect("logs")
            .resource_version(),
        config_before,
        "the ChatLoggingConfiguration was written at rest"
    );
    // Resyncs read the account-wide listing (one ListRooms page per period for 3 rooms), never each room.
    let gets = s.emulator.request_total("GetRoom") - gets_before;
    assert_eq!(gets, 0, "GetRoom calls at rest over {periods} resyncs");
    let lists = s.emulator.request_total("ListRooms") - lists_before;
    assert!(
        (periods as u64 - 1..=periods as u64 + 1).contains(&lists),
        "{lists} ListRooms calls over {periods} resyncs"
    );
    s.finish().await;
}

/// `spec` with `name` set, if given.
fn with_name(mut spec: Value, name: Option<&str>) -> Value {
    if let Some(name) = name {
        spec["name"] = json!(name);
    }
    spec
}

/// Creates an AWS room carrying the ownership tags of `object`, as a create whose result never reached
/// the object's status (a crash, a lost response) leaves behind.
async fn orphaned_room(s: &Scenario, object: &ChatRoom, name: Option<&str>) -> String {
    let room = s
        .aws
        .create_room()
        .set_name(name.map(str::to_owned))
        .tags(OWNER_UID_TAG, object.uid().expect("uid"))
        .tags(OWNER_NAMESPACE_TAG, &s.namespace)
        .tags(OWNER_NAME_TAG, object.name_any())
        .send()
        .await
        .expect("CreateRoom");
    room.arn().expect("arn").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_created_before_a_crash_is_recovered_and_extra_copies_deleted() {
    let mut s = Scenario::new("recover").await;
    // Named (the lookup filters ListRooms by name) and unnamed (it reads the account-wide listing).
    for (object_name, room_name) in [("named", Some("recovered")), ("unnamed", None)] {
        // The previous operator process created the room (twice, as a bug of old might have) and died
        // before recording it.
        s.stop_operator().await;
        let spec = with_name(json!({"maximumMessageLength": 200}), room_name);
        let object = s.room(object_name, spec).await;
        let first = orphaned_room(&s, &object, room_name).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = orphaned_room(&s, &object, room_name).await;
        s.start_operator(s.emulator.sdk_client());
        let ready = wait_for(&s.rooms(), object_name, "Ready", is_ready).await;
        assert_eq!(
            room_arn(&ready),
            first,
            "{object_name}: the oldest copy is kept"
        );
        let kept = s
            .aws
            .get_room()
            .identifier(&first)
            .send()
            .await
            .expect("GetRoom");
        assert_eq!(
            kept.maximum_message_length(),
            Some(200),
            "brought to the spec"
        );
        let gone = s.aws.get_room().identifier(&second).send().await;
        assert!(
            gone.is_err(),
            "{object_name}: the extra copy {second} is left"
        );
        let recovered = s.wait_event(object_name, "Recovered").await;
        assert!(
            recovered.note.unwrap_or_default().contains(&first),
            "{object_name}"
        );
        s.wait_event(object_name, "DuplicateDeleted").await;
    }
    assert_eq!(
        s.emulator.request_total("CreateRoom"),
        4,
        "the operator created nothing (the 4 are the test's)"
    );
    s.finish().await;
}

/// A create whose answer was lost leaves a room named as the spec said then; the spec's name changed
/// before the next pass. The lookup searches by the name the recorded attempt sent, so the room is
/// found and renamed, not created a second time under the new name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_renamed_after_an_unanswered_create_is_found_by_the_name_the_create_sent() {
    let mut s = Scenario::new("renamed").await;
    s.stop_operator().await;
    let object = s.room("room", json!({"name": "before"})).await;
    // What a process that died after sending its create leaves: the attempt in status (written as the
    // operator writes it, by server-side apply as its field manager), the room in AWS.
    s.rooms()
        .patch_status(
            "room",
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(json!({
                "apiVersion": "ivschat.dev/v1alpha1",
                "kind": "ChatRoom",
                "status": {"createAttempt": {
                "id": "0123456789abcdef",
                "startedAt": "2026-12-01T00:00:00Z",
                "name": "before",
            }}})),
        )
        .await
        .expect("recording the attempt");
    let created = orphaned_room(&s, &object, Some("before")).await;
    s.room("room", json!({"name": "after"})).await;
    s.start_operator(s.emulator.sdk_client());

    let ready = wait_for(&s.rooms(), "room", "Ready", |room: &ChatRoom| {
        is_ready(room)
            && room
                .status
                .as_ref()
                .and_then(|status| status.observed_generation)
                == room.metadata.generation
    })
    .await;
    assert_eq!(
        room_arn(&ready),
        created,
        "the room the attempt created is adopted"
    );
    let status = ready.status.as_ref().expect("status");
    assert_eq!(status.create_attempt, None, "the ARN replaced the attempt");
    let room = s
        .aws
        .get_room()
        .identifier(&created)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(room.name(), Some("after"), "renamed to the spec");
    s.wait_event("room", "Recovered").await;
    assert_eq!(
        s.emulator.request_total("CreateRoom"),
        1,
        "the operator created nothing (the one create is the test's)"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_object_whose_status_lost_its_arn_deletes_its_room() {
    let mut s = Scenario::new("orphan").await;
    // Waits for a logging configuration that never comes: finalizer on, nothing created by the operator.
    for (object_name, room_name) in [("named", Some("orphan")), ("unnamed", None)] {
        let spec = json!({"loggingConfigurations": [{"name": "missing"}]});
        s.room(object_name, with_name(spec, room_name)).await;
        let waiting = wait_for(&s.rooms(), object_name, "waiting", |r: &ChatRoom| {
            condition(r, "Ready")
                .is_some_and(|(_, reason, _)| reason == "WaitingForLoggingConfiguration")
                && !r.finalizers().is_empty()
        })
        .await;
        // A create by a process that died before recording it (the spec changed since, say).
        s.stop_operator().await;
        let orphan = orphaned_room(&s, &waiting, room_name).await;
        s.start_operator(s.emulator.sdk_client());
        s.rooms()
            .delete(object_name, &DeleteParams::default())
            .await
            .expect("delete");
        wait_gone(&s.rooms(), object_name).await;
        let gone = s.aws.get_room().identifier(&orphan).send().await;
        assert!(gone.is_err(), "{object_name}: {orphan} outlived its object");
    }
    s.finish().await;
}

/// An object deleted without the operator's cleanup (its finalizer removed by hand) and created again
/// under the same name is a new object, with a new UID: it gets its own AWS room at once, not after a
/// resync period spent on what the process remembered of the old object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_recreated_under_the_same_name_is_created_at_once() {
    let mut s = Scenario::new("recreated").await;
    // A resync period far beyond the test, so that only the recreation itself can create the new room.
    s.stop_operator().await;
    s.operator = Some(controller::start(
        s.kube.clone(),
        s.emulator.sdk_client(),
        Options {
            timing: test_timing(Duration::from_secs(600)),
            namespace: Some(s.namespace.clone()),
            ..Options::default()
        },
    ));
    let spec = json!({"name": "recreated-room", "tags": {"team": "chat"}});
    s.room("room", spec.clone()).await;
    let first = wait_for(&s.rooms(), "room", "Ready", is_ready).await;
    let first_arn = room_arn(&first);

    // Paused first, so that the operator neither cleans up nor puts its finalizer back while the
    // finalizer is removed by hand; the object then goes away at once, leaving its room in AWS.
    s.rooms()
        .patch(
            "room",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {PAUSED_ANNOTATION: "true"}}})),
        )
        .await
        .expect("pausing the room");
    let unfinalized = json!([
        {"op": "test", "path": "/metadata/finalizers", "value": ["ivschat.dev/finalizer"]},
        {"op": "remove", "path": "/metadata/finalizers"},
    ]);
    s.rooms()
        .patch(
            "room",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(unfinalized).expect("a JSON patch")),
        )
        .await
        .expect("removing the finalizer by hand");
    s.rooms()
        .delete("room", &DeleteParams::default())
        .await
        .expect("deleting the room");
    wait_gone(&s.rooms(), "room").await;

    let recreated_at = Instant::now();
    let creates_before = s.emulator.request_total("CreateRoom");
    s.room("room", spec).await;
    let within = Duration::from_secs(10);
    let second = loop {
        let room = s.rooms().get_opt("room").await.expect("reading the room");
        if let Some(room) = room.filter(is_ready) {
            break room;
        }
        assert!(
            recreated_at.elapsed() < within,
            "the recreated room is not Ready within {within:?} (resync period 600 s): {:#?}",
            s.rooms().get_opt("room").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let second_arn = room_arn(&second);
    assert_ne!(second_arn, first_arn, "a new object gets a new room");
    assert_ne!(second.uid(), first.uid());
    assert_eq!(
        s.emulator.request_total("CreateRoom"),
        creates_before + 1,
        "exactly one create for the new object"
    );
    let created = s
        .aws
        .get_room()
        .identifier(&second_arn)
        .send()
        .await
        .expect("the new room exists in AWS");
    assert_eq!(
        created
            .tags()
            .and_then(|tags| tags.get(OWNER_UID_TAG))
            .cloned(),
        second.uid()
    );
    // The old object's room was left behind (its cleanup never ran) and is still tagged as the old one's.
    let old = s
        .aws
        .get_room()
        .identifier(&first_arn)
        .send()
        .await
        .expect("the old room is still in AWS");
    assert_eq!(
        old.tags().and_then(|tags| tags.get(OWNER_UID_TAG)).cloned(),
        first.uid()
    );
    s.finish().await;
}
