//! `kubectl ivschat import` end to end: resources made outside the cluster (with the real AWS CLI, or the
//! SDK where only the plugin's filtering is under test) in a private emulator, the built plugin binary
//! against the shared kube-apiserver, and, for the round trip, `kubectl apply` of what it wrote and the
//! operator in-process. The round trip is the proof that an import is exact: every imported object becomes
//! Ready and the emulator counts no AWS write but the one TagResource per object that adds the operator's
//! ownership tags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_ivschat::Client as Aws;
use ivschat_emulator::{AccountConfig, Emulator, EmulatorConfig, RoleConfig};
use ivschat_operator::controller::{self, OperatorHandle, Options};
use ivschat_operator::crd::{
    ChatAccount, ChatLoggingConfiguration, ChatRoom, OWNER_NAME_TAG, OWNER_NAMESPACE_TAG,
    OWNER_UID_TAG,
};
use ivschat_testsupport::awscli::AwsCli;
use ivschat_testsupport::cluster::install_test_tracing;
use ivschat_testsupport::operator::test_timing;
use ivschat_testsupport::{
    apply, control_plane, create_namespace, emulator, is_ready, serial, status_arn, wait_for,
};
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use testenv::ControlPlane;
use tokio::sync::RwLockReadGuard;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-ivschat");
/// The emulator's default region, where every resource of these tests lives.
const REGION: &str = "us-west-2";
const RESYNC: Duration = Duration::from_secs(2);
/// Every AWS write but TagResource: an exact import causes none of them.
const WRITES_BUT_TAGGING: [&str; 7] = [
    "CreateRoom",
    "UpdateRoom",
    "DeleteRoom",
    "CreateLoggingConfiguration",
    "UpdateLoggingConfiguration",
    "DeleteLoggingConfiguration",
    "UntagResource",
];

/// One test's namespace, emulator and access to both.
struct World {
    namespace: String,
    kube: Client,
    emulator: Emulator,
    aws: Aws,
    kubeconfig: PathBuf,
    operator: Option<OperatorHandle>,
    /// Spawns processes and may run an operator: never beside a test that must run alone.
    _heavy: RwLockReadGuard<'static, ()>,
}

/// What one plugin run printed.
struct Run {
    stdout: String,
    stderr: String,
}

impl World {
    async fn new(namespace: &str) -> World {
        World::with_emulator(namespace, EmulatorConfig::default()).await
    }

    async fn with_emulator(namespace: &str, config: EmulatorConfig) -> World {
        let heavy = serial::beside_others().await;
        let control_plane = control_plane();
        let kube = control_plane.client().await.expect("kube client");
        create_namespace(&kube, namespace).await;
        let emulator = emulator::start(config).await;
        let aws = emulator.sdk_client();
        World {
            namespace: namespace.to_owned(),
            kube,
            emulator,
            aws,
            kubeconfig: control_plane.kubeconfig_path().to_owned(),
            operator: None,
            _heavy: heavy,
        }
    }

    /// The controllers in-process, for this namespace only.
    fn start_operator(&mut self) {
        install_test_tracing();
        self.operator = Some(controller::start(
            self.kube.clone(),
            self.emulator.sdk_client(),
            Options {
                timing: test_timing(RESYNC),
                namespace: Some(self.namespace.clone()),
                concurrency: 4,
                ..Options::default()
            },
        ));
    }

    fn rooms(&self) -> Api<ChatRoom> {
        Api::namespaced(self.kube.clone(), &self.namespace)
    }

    fn configs(&self) -> Api<ChatLoggingConfiguration> {
        Api::namespaced(self.kube.clone(), &self.namespace)
    }

    /// `kubectl ivschat import -n <namespace> --region us-west-2 <args>` against the emulator, with nothing
    /// from the machine's AWS configuration; it must succeed.
    async fn import(&self, args: &[&str]) -> Run {
        let (code, run) = self.import_as(&self.kubeconfig, args).await;
        assert_eq!(
            code,
            Some(0),
            "import {args:?} failed\nstdout: {}\nstderr: {}",
            run.stdout,
            run.stderr
        );
        run
    }

    /// [`World::import`] through `kubeconfig`, whatever its outcome: the exit code and the output.
    async fn import_as(&self, kubeconfig: &Path, args: &[&str]) -> (Option<i32>, Run) {
        let mut command = tokio::process::Command::new(PLUGIN);
        command.arg("import").args(args).args([
            "-n",
            &self.namespace,
            "--region",
            REGION,
            "--aws-endpoint-url",
            &self.emulator.url(),
        ]);
        emulator::isolate_aws_env(command.as_std_mut(), &self.emulator);
        command.env("KUBECONFIG", kubeconfig);
        let output = command.output().await.expect("running the plugin");
        let run = Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        (output.status.code(), run)
    }

    /// The tags AWS has on `arn`.
    async fn aws_tags(&self, arn: &str) -> BTreeMap<String, String> {
        self.aws
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource")
            .tags()
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    fn requests(&self, operation: &str) -> u64 {
        self.emulator.request_total(operation)
    }
}

/// The YAML documents of a stream (or file), as JSON values.
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| {
            serde::Deserialize::deserialize(document)
                .unwrap_or_else(|error| panic!("not YAML ({error}): {yaml}"))
        })
        .collect()
}

/// `(kind, name)` of each document, in stream order.
fn kinds_and_names(documents: &[Value]) -> Vec<(String, String)> {
    documents
        .iter()
        .map(|document| {
            (
                document["kind"].as_str().unwrap_or_default().to_owned(),
                document["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// The file names in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("the output directory")
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    files
}

fn only_document(dir: &Path, file: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(file)).expect(file);
    let mut documents = documents(&text);
    assert_eq!(documents.len(), 1, "{file}: {text}");
    documents.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_manifests_are_adopted_with_no_aws_write_but_the_ownership_tags() {
    let mut world = World::new("plugin-import-trip").await;
    let cli = AwsCli::install().await;
    world.start_operator();

    // Already managed: a room the operator created for a ChatRoom (ownership tags, status.arn), and a
    // logging configuration a ChatLoggingConfiguration adopted (spec.adoptArn).
    let managed_room = apply(&world.rooms(), "managed", json!({"name": "managed-room"})).await;
    let managed_room = wait_for(&world.rooms(), &managed_room.name_any(), "Ready", is_ready).await;
    let managed_room_arn = status_arn(&managed_room);
    let adopted_logs = cli
        .json(
            &world.emulator,
            REGION,
            &[
                "ivschat",
                "create-logging-configuration",
                "--name",
                "adopted_logs",
                "--destination-configuration",
                "firehose={deliveryStreamName=adopted-stream}",
            ],
        )
        .await["arn"]
        .as_str()
        .expect("an ARN")
        .to_owned();
    apply(
        &world.configs(),
        "adopted",
        json!({
            "adoptArn": adopted_logs,
            "destinationConfiguration": {"firehose": {"deliveryStreamName": "adopted-stream"}},
            "name": "adopted_logs",
        }),
    )
    .await;
    wait_for(&world.configs(), "adopted", "Ready", is_ready).await;

    // Made outside the cluster with the AWS CLI: two logging configurations and three rooms.
    let create = |args: Vec<&'static str>| {
        let cli = &cli;
        let emulator = &world.emulator;
        async move {
            let mut full = vec!["ivschat"];
            full.extend(args);
            cli.json(emulator, REGION, &full).await["arn"]
                .as_str()
                .expect("an ARN")
                .to_owned()
        }
    };
    let chat_logs = create(vec![
        "create-logging-configuration",
        "--name",
        "Chat_Logs",
        "--destination-configuration",
        "s3={bucketName=chat-logs-bucket}",
        "--tags",
        "team=chat,env=prod",
    ])
    .await;
    let audit_logs = create(vec![
        "create-logging-configuration",
        "--name",
        "audit",
        "--destination-configuration",
        "cloudWatchLogs={logGroupName=/ivs/chat/audit}",
    ])
    .await;
    let support = create(vec![
        "create-room",
        "--name",
        "Support_EU",
        "--maximum-message-length",
        "256",
        "--maximum-message-rate-per-second",
        "5",
        "--tags",
        "team=chat",
    ])
    .await;
    // Attached after creation, as users do; the room then lists both, in this order.
    let moderated = create(vec![
        "create-room",
        "--name",
        "moderated",
        "--message-review-handler",
        "uri=arn:aws:lambda:us-west-2:123456789012:function:review,fallbackResult=DENY",
        "--tags",
        "team=moderation,selected=yes",
    ])
    .await;
    cli.json(
        &world.emulator,
        REGION,
        &[
            "ivschat",
            "update-room",
            "--identifier",
            &support,
            "--logging-configuration-identifiers",
            &chat_logs,
        ],
    )
    .await;
    cli.json(
        &world.emulator,
        REGION,
        &[
            "ivschat",
            "update-room",
            "--identifier",
            &moderated,
            "--logging-configuration-identifiers",
            &audit_logs,
            &adopted_logs,
        ],
    )
    .await;
    let unnamed = create(vec!["create-room"]).await;
    let unnamed_id = unnamed
        .rsplit('/')
        .next()
        .expect("an id")
        .to_ascii_lowercase();

    let dir = std::env::temp_dir().join(format!("ivschat-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    world.emulator.reset_metrics();
    let run = world
        .import(&["--output-dir", dir.to_str().expect("a UTF-8 path")])
        .await;

    // The files, one per object, the written paths on stdout, the managed resources skipped on stderr.
    let unnamed_file = format!("chatroom-room-{unnamed_id}.yaml");
    let expected_files = [
        "chatloggingconfiguration-audit.yaml".to_owned(),
        "chatloggingconfiguration-chat-logs.yaml".to_owned(),
        "chatroom-moderated.yaml".to_owned(),
        unnamed_file.clone(),
        "chatroom-support-eu.yaml".to_owned(),
    ];
    assert_eq!(files_in(&dir), expected_files);
    assert_eq!(
        run.stdout.lines().count(),
        expected_files.len(),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("imported 2 logging configuration(s) and 3 room(s); skipped 2:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "{managed_room_arn}: managed by ChatRoom {}/managed",
            world.namespace
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "{adopted_logs}: managed by ChatLoggingConfiguration {}/adopted",
            world.namespace
        )),
        "{}",
        run.stderr
    );

    let chat_logs_doc = only_document(&dir, "chatloggingconfiguration-chat-logs.yaml");
    assert_eq!(chat_logs_doc["apiVersion"], "ivschat.dev/v1alpha1");
    assert_eq!(
        chat_logs_doc["metadata"]["namespace"],
        json!(world.namespace)
    );
    assert_eq!(
        chat_logs_doc["spec"],
        json!({
            "name": "Chat_Logs",
            "destinationConfiguration": {"s3": {"bucketName": "chat-logs-bucket"}},
            "tags": {"env": "prod", "team": "chat"},
            "deletionPolicy": "Retain",
            "managementPolicy": "Manage",
            "adoptArn": chat_logs,
            "region": REGION,
        })
    );
    assert_eq!(
        only_document(&dir, "chatloggingconfiguration-audit.yaml")["spec"]["destinationConfiguration"],
        json!({"cloudWatchLogs": {"logGroupName": "/ivs/chat/audit"}})
    );
    let support_doc = only_document(&dir, "chatroom-support-eu.yaml");
    assert_eq!(
        support_doc["spec"],
        json!({
            "name": "Support_EU",
            "maximumMessageLength": 256,
            "maximumMessageRatePerSecond": 5,
            "loggingConfigurations": [{"name": "chat-logs"}],
            "tags": {"team": "chat"},
            "deletionPolicy": "Retain",
            "managementPolicy": "Manage",
            "adoptArn": support,
            "region": REGION,
        })
    );
    let moderated_doc = only_document(&dir, "chatroom-moderated.yaml");
    assert_eq!(
        moderated_doc["spec"]["messageReviewHandler"],
        json!({"uri": "arn:aws:lambda:us-west-2:123456789012:function:review", "fallbackResult": "DENY"})
    );
    assert_eq!(
        moderated_doc["spec"]["loggingConfigurations"],
        json!([{"name": "audit"}, {"arn": adopted_logs}]),
        "imported configurations by name, the one managed elsewhere by ARN, in AWS order"
    );
    let unnamed_doc = only_document(&dir, &unnamed_file);
    assert_eq!(unnamed_doc["spec"].get("name"), None);
    assert_eq!(unnamed_doc["spec"]["maximumMessageLength"], 500);
    assert_eq!(unnamed_doc["spec"]["maximumMessageRatePerSecond"], 10);
    assert_eq!(
        world.requests("TagResource")
            + WRITES_BUT_TAGGING
                .iter()
                .map(|op| world.requests(op))
                .sum::<u64>(),
        0,
        "the import itself only reads"
    );

    // Applied as a GitOps tool would, then adopted by the operator.
    let kubectl = ControlPlane::bin_dir()
        .expect("kubectl's directory")
        .join("kubectl");
    let applied = tokio::process::Command::new(&kubectl)
        .arg("apply")
        .arg("-f")
        .arg(&dir)
        .env("KUBECONFIG", &world.kubeconfig)
        .output()
        .await
        .expect("kubectl apply");
    assert!(
        applied.status.success(),
        "kubectl apply -f {}: {}",
        dir.display(),
        String::from_utf8_lossy(&applied.stderr)
    );
    let mut adopted = Vec::new();
    for name in ["chat-logs", "audit"] {
        let config = wait_for(&world.configs(), name, "Ready", is_ready).await;
        adopted.push((status_arn(&config), config.uid().expect("a UID")));
    }
    for name in ["support-eu", "moderated", &format!("room-{unnamed_id}")] {
        let room = wait_for(&world.rooms(), name, "Ready", is_ready).await;
        adopted.push((status_arn(&room), room.uid().expect("a UID")));
    }
    let mut arns: Vec<&str> = adopted.iter().map(|(arn, _)| arn.as_str()).collect();
    arns.sort_unstable();
    let mut expected_arns = vec![
        chat_logs.as_str(),
        audit_logs.as_str(),
        support.as_str(),
        moderated.as_str(),
        unnamed.as_str(),
    ];
    expected_arns.sort_unstable();
    assert_eq!(arns, expected_arns, "each object adopted its resource");

    // A resync later nothing more has been written: the import was exact.
    tokio::time::sleep(RESYNC * 2).await;
    for operation in WRITES_BUT_TAGGING {
        assert_eq!(world.requests(operation), 0, "{operation} after the import");
    }
    assert_eq!(
        world.requests("TagResource"),
        5,
        "one TagResource per object: its ownership tags"
    );
    for (arn, uid) in &adopted {
        let tags = world.aws_tags(arn).await;
        assert_eq!(tags.get(OWNER_UID_TAG), Some(uid), "{arn}: {tags:?}");
        assert_eq!(
            tags.get(OWNER_NAMESPACE_TAG),
            Some(&world.namespace),
            "{arn}: {tags:?}"
        );
        assert!(tags.contains_key(OWNER_NAME_TAG), "{arn}: {tags:?}");
    }
    let room = world
        .aws
        .get_room()
        .identifier(&moderated)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(
        room.logging_configuration_identifiers(),
        [audit_logs.clone(), adopted_logs.clone()],
        "the attachments are as they were"
    );

    // Imported again: everything is managed now, so nothing is written.
    let again = world.import(&[]).await;
    assert_eq!(again.stdout, "", "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("imported 0 logging configuration(s) and 0 room(s); skipped 7:"),
        "{}",
        again.stderr
    );

    if let Some(operator) = world.operator.take() {
        operator.stop().await.expect("stopping the operator");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_by_name_and_tags_and_the_stream_goes_to_stdout() {
    let world = World::new("plugin-import-filters").await;
    let room = |name: &'static str, tags: &'static [(&'static str, &'static str)]| {
        let aws = world.aws.clone();
        async move {
            let mut request = aws.create_room().name(name);
            for (key, value) in tags {
                request = request.tags(*key, *value);
            }
            request
                .send()
                .await
                .expect("CreateRoom")
                .arn()
                .expect("an ARN")
                .to_owned()
        }
    };
    room("eu-lobby", &[("team", "chat")]).await;
    room("eu-support", &[("team", "support"), ("import", "yes")]).await;
    room("us-lobby", &[("import", "yes")]).await;
    let orphan = room(
        "eu-orphan",
        &[
            (OWNER_UID_TAG, "a-uid-no-object-has"),
            (OWNER_NAMESPACE_TAG, "old-team"),
            (OWNER_NAME_TAG, "orphan"),
            ("team", "chat"),
        ],
    )
    .await;
    let first_dup = room("dup", &[]).await;
    let second_dup = room("dup", &[]).await;
    world
        .aws
        .create_logging_configuration()
        .name("eu-logs")
        .destination_configuration(aws_sdk_ivschat::types::DestinationConfiguration::S3(
            aws_sdk_ivschat::types::S3DestinationConfiguration::builder()
                .bucket_name("eu-logs")
                .build()
                .expect("a destination"),
        ))
        .tags("import", "yes")
        .send()
        .await
        .expect("CreateLoggingConfiguration");
    world.emulator.reset_metrics();

    // By prefix, to stdout: logging configurations first; the orphan skipped with the way to take it.
    let by_prefix = world.import(&["--name-prefix", "eu-"]).await;
    let streamed = documents(&by_prefix.stdout);
    assert_eq!(
        kinds_and_names(&streamed),
        [
            ("ChatLoggingConfiguration".to_owned(), "eu-logs".to_owned()),
            ("ChatRoom".to_owned(), "eu-lobby".to_owned()),
            ("ChatRoom".to_owned(), "eu-support".to_owned()),
        ]
    );
    assert!(
        by_prefix.stderr.contains(&format!(
            "{orphan}: tagged as owned by old-team/orphan (uid a-uid-no-object-has), which this cluster does not have"
        )),
        "{}",
        by_prefix.stderr
    );
    assert!(
        by_prefix.stderr.contains("--include-orphaned"),
        "{}",
        by_prefix.stderr
    );

    // By tag, rooms only.
    let by_tag = world
        .import(&["--tag", "import=yes", "--kind", "rooms"])
        .await;
    assert_eq!(
        kinds_and_names(&documents(&by_tag.stdout)),
        [
            ("ChatRoom".to_owned(), "eu-support".to_owned()),
            ("ChatRoom".to_owned(), "us-lobby".to_owned()),
        ]
    );
    let by_tag_and_name = world
        .import(&["--tag", "import", "--tag", "team=support"])
        .await;
    assert_eq!(
        kinds_and_names(&documents(&by_tag_and_name.stdout)),
        [("ChatRoom".to_owned(), "eu-support".to_owned())],
        "every --tag must match"
    );

    // By pattern, the orphan taken on request, without the old owner's tags.
    let orphaned = world
        .import(&[
            "--name-pattern",
            "^eu-(lobby|orphan)$",
            "--include-orphaned",
        ])
        .await;
    let orphaned = documents(&orphaned.stdout);
    assert_eq!(
        kinds_and_names(&orphaned),
        [
            ("ChatRoom".to_owned(), "eu-lobby".to_owned()),
            ("ChatRoom".to_owned(), "eu-orphan".to_owned()),
        ]
    );
    assert_eq!(orphaned[1]["spec"]["tags"], json!({"team": "chat"}));
    assert_eq!(orphaned[1]["spec"]["adoptArn"], json!(orphan));

    // Two rooms of one name: each gets its id.
    let dups = documents(&world.import(&["--name-pattern", "^dup$"]).await.stdout);
    let id = |arn: &str| {
        arn.rsplit('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let mut expected = vec![
        ("ChatRoom".to_owned(), format!("dup-{}", id(&first_dup))),
        ("ChatRoom".to_owned(), format!("dup-{}", id(&second_dup))),
    ];
    expected.sort();
    assert_eq!(kinds_and_names(&dups), expected);

    assert_eq!(emulator::writes(&world.emulator), 0, "import only reads");
    assert_eq!(
        world.requests("GetRoom"),
        2 + 2 + 1 + 2 + 2,
        "one GetRoom per room each run selects, none for the others"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_may_not_list_objects_cluster_wide_is_told_why_the_import_needs_it() {
    let world = World::new("plugin-import-rbac").await;
    world
        .aws
        .create_room()
        .name("free")
        .send()
        .await
        .expect("CreateRoom");
    // A user who may list the namespace's ChatRooms and ChatLoggingConfigurations, not the cluster's,
    // through a copy of the kubeconfig that impersonates them.
    let user = "plugin-import-reader";
    let rules = json!([{
        "apiGroups": ["ivschat.dev"],
        "resources": ["chatrooms", "chatloggingconfigurations"],
        "verbs": ["get", "list"],
    }]);
    let path = super::plugin::kubeconfig_impersonating(
        world.kube.clone(),
        &world.namespace,
        &world.kubeconfig,
        user,
        rules,
    )
    .await;
    world.emulator.reset_metrics();

    let (code, run) = world.import_as(&path, &[]).await;
    assert_eq!(
        code,
        Some(1),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no manifest: {}", run.stdout);
    assert!(
        run.stderr.contains("listing ChatRooms in all namespaces")
            && run.stderr.contains(
                "needs list on chatrooms.ivschat.dev and chatloggingconfigurations.ivschat.dev cluster-wide"
            ),
        "{}",
        run.stderr
    );
    assert_eq!(
        emulator::requests(
            &world.emulator,
            &["ListRooms", "ListLoggingConfigurations", "GetRoom"]
        ),
        0,
        "refused before any AWS call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_account_the_import_reads_through_its_role_and_names_it_in_the_manifests() {
    const FAR_ACCOUNT: &str = "111111111111";
    const ROLE: &str = "arn:aws:iam::111111111111:role/importer";
    const EXTERNAL_ID: &str = "import-ext-2b9c";
    let world = World::with_emulator(
        "plugin-import-account",
        EmulatorConfig {
            accounts: vec![AccountConfig {
                id: FAR_ACCOUNT.into(),
                roles: vec![RoleConfig {
                    external_id: Some(EXTERNAL_ID.into()),
                    ..RoleConfig::new("importer")
                }],
            }],
            ..EmulatorConfig::default()
        },
    )
    .await;
    let account = "plugin-import-far";
    let accounts: Api<ChatAccount> = Api::all(world.kube.clone());
    let _ = accounts.delete(account, &Default::default()).await;
    accounts
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "ivschat.dev/v1alpha1",
                "kind": "ChatAccount",
                "metadata": {"name": account},
                "spec": {
                    "roleArn": ROLE,
                    "externalId": EXTERNAL_ID,
                    "endpointUrl": world.emulator.url(),
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": world.namespace}},
                },
            }))
            .expect("ChatAccount"),
        )
        .await
        .expect("creating the ChatAccount");
    let far = emulator::assumed_client(&world.emulator, ROLE, Some(EXTERNAL_ID), REGION).await;
    let far_room = far
        .create_room()
        .name("far_lobby")
        .send()
        .await
        .expect("CreateRoom in the second account")
        .arn()
        .expect("an ARN")
        .to_owned();
    // A room of the default account, which an import through the role must not see.
    world
        .aws
        .create_room()
        .name("near_lobby")
        .send()
        .await
        .expect("CreateRoom");
    world.emulator.reset_metrics();

    let run = world.import(&["--account", account]).await;
    let imported = documents(&run.stdout);
    assert_eq!(
        kinds_and_names(&imported),
        [("ChatRoom".to_owned(), "far-lobby".to_owned())],
        "{}",
        run.stderr
    );
    assert_eq!(imported[0]["spec"]["adoptArn"], json!(far_room));
    assert_eq!(imported[0]["spec"]["accountRef"], json!({"name": account}));
    assert_eq!(imported[0]["spec"]["region"], REGION);
    assert!(
        !run.stderr.contains("warning:"),
        "the account selects the namespace: {}",
        run.stderr
    );
    assert_eq!(world.emulator.sts_request_count("AssumeRole", "success"), 1);
    assert_eq!(
        world
            .emulator
            .request_count_in(FAR_ACCOUNT, REGION, "ListRooms"),
        1
    );
    let _ = accounts.delete(account, &Default::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_names_the_three_actions_the_import_needs() {
    let world = World::new("plugin-import-denied").await;
    let denying = super::plugin::failing_endpoint(
        400,
        "AccessDeniedException",
        "User is not authorized to perform: ivschat:ListLoggingConfigurations",
    )
    .await;
    let mut command = tokio::process::Command::new(PLUGIN);
    command.args([
        "import",
        "-n",
        &world.namespace,
        "--region",
        REGION,
        "--aws-endpoint-url",
        &denying,
    ]);
    emulator::isolate_aws_env(command.as_std_mut(), &world.emulator);
    command.env("KUBECONFIG", &world.kubeconfig);
    let output = command.output().await.expect("running the plugin");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "no manifest");
    assert!(
        stderr.contains(
            "access denied to ivschat:ListLoggingConfigurations on the account's logging configurations (AWS said: User is not authorized"
        ) && stderr.contains(
            "import reads with ivschat:ListRooms, ivschat:GetRoom and ivschat:ListLoggingConfigurations, which your own AWS identity must be allowed"
        ),
        "{stderr}"
    );
}
