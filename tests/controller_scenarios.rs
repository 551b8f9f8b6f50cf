//! The operator end to end: each test runs the controllers in-process against the shared real
//! kube-apiserver (its own namespace) and its own IVS Chat emulator (with a nonzero logging-configuration
//! transition delay), then asserts AWS state through the SDK and Kubernetes state through the API.

use aws_sdk_ivschat::Client as Aws;
use ivschat_operator::controller::{self, OperatorHandle, Options, driver::Timing};
use ivschat_operator::crd::{
    ChatLoggingConfiguration, ChatRoom, OWNER_NAME_TAG, OWNER_NAMESPACE_TAG, OWNER_UID_TAG,
    PAUSED_ANNOTATION,
};
use ivschat_operator::emulator::{Emulator, EmulatorConfig, TransitionFailures};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testenv::ControlPlane;

const RESYNC: Duration = Duration::from_secs(2);
const TRANSITION_DELAY: Duration = Duration::from_millis(600);
const WAIT: Duration = Duration::from_secs(30);
/// AWS operations that change something.
const WRITE_OPERATIONS: [&str; 8] = [
    "CreateRoom",
    "UpdateRoom",
    "DeleteRoom",
    "CreateLoggingConfiguration",
    "UpdateLoggingConfiguration",
    "DeleteLoggingConfiguration",
    "TagResource",
    "UntagResource",
];

fn control_plane() -> &'static ControlPlane {
    // kube (ring) and the SDK (aws-lc-rs) both link a rustls provider: pick kube's for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let control_plane = ControlPlane::shared();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let yaml = ivschat_operator::crd::crds_yaml().expect("rendering the CRDs");
        let path = control_plane.data_dir().join("controller-crds.yaml");
        std::fs::write(&path, yaml).expect("writing the CRDs");
        for args in [
            vec![
                "apply",
                "--server-side",
                "-f",
                path.to_str().expect("utf-8 path"),
            ],
            vec![
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/chatrooms.ivschat.dev",
                "crd/chatloggingconfigurations.ivschat.dev",
            ],
        ] {
            let output = control_plane
                .kubectl()
                .args(&args)
                .output()
                .expect("running kubectl");
            assert!(
                output.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    });
    control_plane
}

/// One test's world: a namespace, an emulator, SDK access to it, and the operator.
struct Scenario {
    namespace: String,
    kube: Client,
    emulator: Emulator,
    aws: Aws,
    operator: Option<OperatorHandle>,
}

fn test_timing() -> Timing {
    Timing {
        resync_period: RESYNC,
        poll_interval: Duration::from_millis(200),
        base_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        long_backoff: Duration::from_secs(3),
    }
}

impl Scenario {
    async fn new(namespace: &str) -> Scenario {
        Self::with_emulator(namespace, EmulatorConfig::default()).await
    }

    async fn with_emulator(namespace: &str, config: EmulatorConfig) -> Scenario {
        let control_plane = control_plane();
        let kube = control_plane.client().await.expect("kube client");
        let namespaces: Api<Namespace> = Api::all(kube.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": namespace}}))
                    .expect("namespace"),
            )
            .await
            .expect("creating the namespace");
        let emulator = Emulator::start(
            "127.0.0.1:0".parse().expect("address"),
            EmulatorConfig {
                logging_transition_delay: TRANSITION_DELAY,
                ..config
            },
        )
        .await
        .expect("starting the emulator");
        let aws = emulator.sdk_client();
        let mut scenario = Scenario {
            namespace: namespace.to_owned(),
            kube,
            emulator,
            aws,
            operator: None,
        };
        scenario.start_operator(scenario.emulator.sdk_client());
        scenario
    }

    fn start_operator(&mut self, aws: Aws) {
        self.operator = Some(controller::start(
            self.kube.clone(),
            aws,
            Options {
                timing: test_timing(),
                namespace: Some(self.namespace.clone()),
                concurrency: 4,
            },
        ));
    }

    async fn stop_operator(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.stop().await.expect("stopping the operator");
        }
    }

    fn rooms(&self) -> Api<ChatRoom> {
        Api::namespaced(self.kube.clone(), &self.namespace)
    }

    fn configs(&self) -> Api<ChatLoggingConfiguration> {
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
        let mut metadata = metadata;
        metadata["name"] = json!(name);
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": metadata,
            "spec": spec,
        });
        api.patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap_or_else(|err| panic!("applying {name}: {err}"))
    }

    async fn room(&self, name: &str, spec: Value) -> ChatRoom {
        self.apply(name, json!({}), spec).await
    }

    async fn config(&self, name: &str, spec: Value) -> ChatLoggingConfiguration {
        self.apply(name, json!({}), spec).await
    }

    fn writes(&self) -> u64 {
        WRITE_OPERATIONS
            .iter()
            .map(|op| self.emulator.request_total(op))
            .sum()
    }

    async fn events(&self, object: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.kube.clone(), &self.namespace);
        api.list(&ListParams::default())
            .await
            .expect("listing events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
            .collect()
    }

    async fn wait_event(&self, object: &str, reason: &str) -> Event {
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

    async fn finish(mut self) {
        self.stop_operator().await;
        let _ = self.emulator.stop().await;
    }
}

/// Polls `get` until `done` holds, or fails with the last value.
async fn wait_for<K, F>(api: &Api<K>, name: &str, what: &str, done: F) -> K
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let object = api.get_opt(name).await.expect("reading the object");
        if let Some(object) = &object
            && done(object)
        {
            return object.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: not {what} within {WAIT:?}: {object:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + WAIT;
    while let Some(object) = api.get_opt(name).await.expect("reading the object") {
        assert!(
            Instant::now() < deadline,
            "{name} still exists: {object:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (status, reason) of a condition in the object's status.
fn condition<K: serde::Serialize>(object: &K, type_: &str) -> Option<(String, String, String)> {
    let value = serde_json::to_value(object).ok()?;
    value["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

/// Ready=True for the current generation.
fn is_ready<K: serde::Serialize + Resource>(object: &K) -> bool {
    let observed = serde_json::to_value(object)
        .ok()
        .and_then(|v| v["status"]["observedGeneration"].as_i64());
    observed == object.meta().generation
        && condition(object, "Ready").is_some_and(|(status, _, _)| status == "True")
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
        [logs_arn.clone()]
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
        [logs_arn.clone()]
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
