//! `kubectl ivschat` end to end: the built plugin binary runs against the shared real kube-apiserver and an
//! in-process IVS Chat emulator. The operator is not involved: each test creates the AWS room with the SDK
//! and writes the ChatRoom's status (ARN, Ready condition) itself through the status subresource, so the
//! plugin's own behaviour is what is tested. Every command is checked in table and JSON (and YAML) form,
//! with the effect seen in the emulator, and every error path with its exit code and message. Rooms in a
//! ChatAccount's account are reached through the emulator's STS: the plugin assumes the account's role with
//! the test's own (static) credentials, and the emulator counts both the AssumeRole and the call's scope.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use aws_sdk_ivschat::Client as Aws;
use ivschat_emulator::{
    AccountConfig, Emulator, EmulatorConfig, RoleConfig, RoomEvent, RoomEventKind,
};
use ivschat_operator::crd::{CONDITION_READY, ChatAccount, ChatRoom};
use ivschat_testsupport::{control_plane, create_namespace, emulator, serial};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use testenv::ControlPlane;
use tokio::sync::RwLockReadGuard;
use tokio::sync::broadcast;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-ivschat");
/// The plugin's documented exit codes.
const EXIT_FAILURE: i32 = 1;
const EXIT_INVALID: i32 = 2;
const EXIT_NOT_FOUND: i32 = 3;
const EXIT_NOT_READY: i32 = 4;
/// Every IVS Chat operation the plugin may call.
const PLUGIN_OPERATIONS: [&str; 5] = [
    "CreateChatToken",
    "SendEvent",
    "DeleteMessage",
    "DisconnectUser",
    "GetRoom",
];

/// The policy a role (or user) needs for the plugin's calls: exactly [`PLUGIN_OPERATIONS`] on rooms, and the
/// README points to it, since the operator's own policy has none of the chat actions.
#[test]
fn the_data_plane_policy_allows_exactly_the_plugins_calls_on_rooms() {
    let file = "deploy/iam-policy-chat-data-plane.json";
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(ivschat_testsupport::command::repo_path(file)).expect(file),
    )
    .expect(file);
    let statements = policy["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(statements[0]["Resource"], "arn:aws:ivschat:*:*:room/*");
    let mut actions: Vec<&str> = statements[0]["Action"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|action| {
            action
                .as_str()
                .and_then(|action| action.strip_prefix("ivschat:"))
                .expect("an ivschat action")
        })
        .collect();
    actions.sort_unstable();
    let mut expected = PLUGIN_OPERATIONS.to_vec();
    expected.sort_unstable();
    assert_eq!(actions, expected);
    let operator: Value = serde_json::from_str(
        &std::fs::read_to_string(ivschat_testsupport::command::repo_path(
            "deploy/iam-policy.json",
        ))
        .expect("the operator's policy"),
    )
    .expect("JSON");
    assert!(
        !operator.to_string().contains("ivschat:CreateChatToken"),
        "if the operator's policy gains the chat actions, the README's advice changes"
    );
    let readme = std::fs::read_to_string(ivschat_testsupport::command::repo_path("README.md"))
        .expect("README");
    assert!(readme.contains(file), "the README explains {file}");
}

/// One test's world: its namespace, its emulator and SDK access to it.
struct World {
    namespace: String,
    rooms: Api<ChatRoom>,
    emulator: Emulator,
    aws: Aws,
    kubeconfig: PathBuf,
    /// Spawns plugin processes: never beside a test that must run alone.
    _heavy: RwLockReadGuard<'static, ()>,
}

/// What one plugin run produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "the plugin failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {}", self.stdout))
    }

    fn fails_with(self, code: i32, fragment: &str) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(fragment),
            "stderr should contain {fragment:?}: {}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "nothing on stdout: {}", self.stdout);
        self
    }
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
            _heavy: heavy,
            namespace: namespace.to_owned(),
            rooms: Api::namespaced(kube, namespace),
            emulator,
            aws,
            kubeconfig: control_plane.kubeconfig_path().to_owned(),
        }
    }

    /// An AWS room with the given settings; returns its ARN.
    async fn aws_room(&self, maximum_message_length: Option<i32>) -> String {
        self.aws
            .create_room()
            .name("plugin-room")
            .set_maximum_message_length(maximum_message_length)
            .tags("team", "chat")
            .send()
            .await
            .expect("CreateRoom")
            .arn()
            .expect("an ARN")
            .to_owned()
    }

    /// A ChatRoom with `spec`, and the status the operator would write: `arn` and a Ready condition.
    async fn chat_room(&self, name: &str, spec: Value, arn: Option<&str>, ready: Option<&str>) {
        self.rooms
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "ivschat.dev/v1alpha1",
                    "kind": "ChatRoom",
                    "metadata": {"name": name},
                    "spec": spec,
                }))
                .expect("ChatRoom"),
            )
            .await
            .expect("creating the ChatRoom");
        let mut status = json!({});
        if let Some(arn) = arn {
            status["arn"] = json!(arn);
        }
        if let Some(ready) = ready {
            let (reason, message) = if ready == "True" {
                ("Synced", "the room matches the spec")
            } else {
                ("UpdateFailed", "AWS refused the update")
            };
            status["conditions"] = json!([{
                "type": CONDITION_READY,
                "status": ready,
                "reason": reason,
                "message": message,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]);
        }
        self.rooms
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("writing the ChatRoom status");
    }

    /// A Ready ChatRoom `name` backed by a new AWS room; returns the ARN.
    async fn ready_room(&self, name: &str) -> String {
        let arn = self.aws_room(None).await;
        self.chat_room(
            name,
            json!({"name": "plugin-room"}),
            Some(&arn),
            Some("True"),
        )
        .await;
        arn
    }

    /// The plugin with this world's kubeconfig (by KUBECONFIG), namespace, emulator endpoint and credentials,
    /// and nothing from the machine's own AWS configuration.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(PLUGIN);
        command.args(args).args([
            "-n",
            &self.namespace,
            "--aws-endpoint-url",
            &self.emulator.url(),
        ]);
        isolate(&mut command, &self.kubeconfig, &self.emulator);
        command
    }

    async fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.command(args)
                .output()
                .await
                .expect("running the plugin"),
        )
    }

    /// Requests the plugin's operations reached the emulator with, whatever their outcome.
    fn aws_requests(&self) -> u64 {
        emulator::requests(&self.emulator, &PLUGIN_OPERATIONS)
    }

    fn room_events(&self) -> broadcast::Receiver<RoomEvent> {
        self.emulator.subscribe_room_events()
    }
}

/// Environment of a plugin run: the kubeconfig, the emulator's static credentials, and no shared AWS files,
/// profile, region or instance metadata from the machine.
fn isolate(command: &mut tokio::process::Command, kubeconfig: &Path, emulator: &Emulator) {
    emulator::isolate_aws_env(command.as_std_mut(), emulator);
    command.env_remove("NO_COLOR").env("KUBECONFIG", kubeconfig);
}

fn next_event(events: &mut broadcast::Receiver<RoomEvent>) -> RoomEvent {
    events
        .try_recv()
        .expect("the emulator published a room event")
}

// -------------------------------------------------------------------------------------------------------------
// Commands

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_issues_a_working_token_in_table_json_and_yaml() {
    let world = World::new("plugin-token").await;
    let arn = world.ready_room("lobby").await;

    let table = world
        .run(&[
            "token",
            "lobby",
            "--user-id",
            "ana",
            "--capability",
            "SEND_MESSAGE",
            "--capability",
            "delete-message",
            "--session-duration",
            "30",
            "--attribute",
            "colour=red",
        ])
        .await
        .ok();
    let line = |key: &str| -> String {
        table
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no {key} line in {}", table.stdout))
            .trim()
            .to_owned()
    };
    assert_eq!(line("Room"), arn);
    assert_eq!(line("User"), "ana");
    assert_eq!(line("Capabilities"), "SEND_MESSAGE, DELETE_MESSAGE");
    let issued = world
        .emulator
        .redeem_chat_token(&line("Token"))
        .expect("the printed token is one the emulator issued");
    assert_eq!(issued.room_arn, arn);
    assert_eq!(issued.user_id, "ana");
    assert_eq!(issued.capabilities, vec!["SEND_MESSAGE", "DELETE_MESSAGE"]);
    assert_eq!(
        issued.attributes,
        BTreeMap::from([("colour".to_owned(), "red".to_owned())])
    );
    assert_eq!(issued.session_duration.as_secs(), 30 * 60);

    let json = world
        .run(&["token", "lobby", "--user-id", "bo", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(json["roomArn"], json!(arn));
    assert_eq!(json["userId"], json!("bo"));
    assert_eq!(json["capabilities"], json!([]));
    let session_expires: jiff::Timestamp = json["sessionExpirationTime"]
        .as_str()
        .expect("a time")
        .parse()
        .expect("an RFC 3339 time");
    let token_expires: jiff::Timestamp = json["tokenExpirationTime"]
        .as_str()
        .expect("a time")
        .parse()
        .expect("an RFC 3339 time");
    assert!(session_expires > token_expires, "{json}");
    let issued = world
        .emulator
        .redeem_chat_token(json["token"].as_str().expect("a token"))
        .expect("a real token");
    assert!(issued.capabilities.is_empty());
    assert_eq!(
        issued.session_duration.as_secs(),
        60 * 60,
        "AWS default: 60 minutes"
    );

    let yaml = world
        .run(&["token", "lobby", "--user-id", "cy", "-o", "yaml"])
        .await
        .ok();
    let yaml: Value = serde_yaml::from_str(&yaml.stdout).expect("YAML output");
    assert_eq!(yaml["userId"], json!("cy"));
    assert_eq!(yaml["roomArn"], json!(arn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_delete_message_and_disconnect_user_reach_the_room() {
    let world = World::new("plugin-messaging").await;
    let arn = world.ready_room("lobby").await;
    let mut events = world.room_events();

    let sent = world
        .run(&[
            "send-event",
            "lobby",
            "--name",
            "quiz",
            "--attribute",
            "q=1+1",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    let event = next_event(&mut events);
    assert_eq!(event.room_arn, arn);
    assert_eq!(
        event.kind,
        RoomEventKind::Event {
            name: "quiz".into(),
            attributes: BTreeMap::from([("q".to_owned(), "1+1".to_owned())]),
        }
    );
    assert_eq!(
        sent,
        json!({"roomArn": arn, "eventName": "quiz", "id": event.id})
    );
    let table = world
        .run(&["send-event", "lobby", "--name", "bell"])
        .await
        .ok();
    let event = next_event(&mut events);
    assert_eq!(
        table.stdout,
        format!("sent event \"bell\" to {arn} (event id {})\n", event.id)
    );

    let deleted = world
        .run(&[
            "delete-message",
            "lobby",
            "--id",
            "abcDEF123456",
            "--reason",
            "spam",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    let event = next_event(&mut events);
    assert_eq!(
        event.kind,
        RoomEventKind::DeleteMessage {
            message_id: "abcDEF123456".into(),
            reason: Some("spam".into()),
        }
    );
    assert_eq!(
        deleted,
        json!({"roomArn": arn, "messageId": "abcDEF123456", "id": event.id})
    );
    let table = world
        .run(&["delete-message", "lobby", "--id", "xyzXYZ987654"])
        .await
        .ok();
    let event = next_event(&mut events);
    assert_eq!(
        table.stdout,
        format!(
            "asked the clients of {arn} to delete message xyzXYZ987654 (operation id {})\n",
            event.id
        )
    );

    let disconnected = world
        .run(&[
            "disconnect-user",
            "lobby",
            "--user-id",
            "troll",
            "--reason",
            "rude",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(disconnected, json!({"roomArn": arn, "userId": "troll"}));
    assert_eq!(
        next_event(&mut events).kind,
        RoomEventKind::DisconnectUser {
            user_id: "troll".into(),
            reason: Some("rude".into()),
        }
    );
    let table = world
        .run(&["disconnect-user", "lobby", "--user-id", "x"])
        .await
        .ok();
    assert_eq!(
        table.stdout,
        format!("disconnected user \"x\" from {arn}\n")
    );
    assert!(matches!(
        next_event(&mut events).kind,
        RoomEventKind::DisconnectUser { reason: None, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arn_acts_on_any_room_without_kubernetes() {
    let world = World::new("plugin-arn").await;
    let arn = world.aws_room(Some(200)).await;
    let mut events = world.room_events();
    let without_kubernetes = |args: &[&str]| {
        let mut command = tokio::process::Command::new(PLUGIN);
        command
            .args(args)
            .args(["--arn", &arn, "--aws-endpoint-url", &world.emulator.url()]);
        isolate(
            &mut command,
            Path::new("/nonexistent/kubeconfig"),
            &world.emulator,
        );
        command
    };

    let run = Run::from(
        without_kubernetes(&["send-event", "--name", "hello", "-o", "json"])
            .output()
            .await
            .expect("running the plugin"),
    )
    .ok();
    assert_eq!(run.json()["roomArn"], json!(arn));
    assert!(matches!(
        next_event(&mut events).kind,
        RoomEventKind::Event { .. }
    ));

    let status = Run::from(
        without_kubernetes(&["status", "-o", "json"])
            .output()
            .await
            .expect("running the plugin"),
    )
    .ok()
    .json();
    assert_eq!(status["arn"], json!(arn));
    assert_eq!(status["aws"], json!("found"));
    assert!(status.get("chatRoom").is_none());
    let field = |name: &str| {
        status["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|field| field["field"] == json!(name))
            .unwrap_or_else(|| panic!("no field {name}"))
            .clone()
    };
    assert_eq!(field("maximumMessageLength")["aws"], json!(200));
    assert_eq!(field("name")["aws"], json!("plugin-room"));
    assert_eq!(field("tags")["aws"], json!({"team": "chat"}));

    let table = Run::from(
        without_kubernetes(&["status"])
            .output()
            .await
            .expect("running the plugin"),
    )
    .ok();
    assert!(
        table.stdout.contains(&format!("ARN:      {arn}\n")),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains(
            "\nFIELD                                AWS\nname                                 plugin-room\nmaximumMessageLength                 200\n"
        ),
        "{}",
        table.stdout
    );

    // The endpoint also comes from the SDK's own service-specific variable.
    let mut from_environment = tokio::process::Command::new(PLUGIN);
    from_environment.args(["disconnect-user", "--user-id", "u", "--arn", &arn]);
    isolate(
        &mut from_environment,
        Path::new("/nonexistent/kubeconfig"),
        &world.emulator,
    );
    from_environment.env("AWS_ENDPOINT_URL_IVSCHAT", world.emulator.url());
    Run::from(from_environment.output().await.expect("running the plugin")).ok();
    assert!(matches!(
        next_event(&mut events).kind,
        RoomEventKind::DisconnectUser { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_rooms_and_compares_spec_with_aws() {
    let world = World::new("plugin-status").await;
    let synced = world.ready_room("synced").await;
    // A room whose AWS message length (100) differs from the spec's (200).
    let drifted = world.aws_room(Some(100)).await;
    world
        .chat_room(
            "drifted",
            json!({"name": "plugin-room", "maximumMessageLength": 200, "tags": {"team": "chat"}}),
            Some(&drifted),
            Some("False"),
        )
        .await;
    world.chat_room("pending", json!({}), None, None).await;

    let list = world.run(&["status"]).await.ok();
    assert_eq!(
        list.stdout,
        format!(
            "NAME     READY    REASON        ARN\n\
             drifted  False    UpdateFailed  {drifted}\n\
             pending  Unknown                -\n\
             synced   True     Synced        {synced}\n"
        )
    );
    let list = world.run(&["status", "-o", "json"]).await.ok().json();
    assert_eq!(list["namespace"], json!(world.namespace));
    assert_eq!(
        list["rooms"],
        json!([
            {"name": "drifted", "ready": "False", "reason": "UpdateFailed", "arn": drifted},
            {"name": "pending", "ready": "Unknown", "reason": "", "arn": null},
            {"name": "synced", "ready": "True", "reason": "Synced", "arn": synced},
        ])
    );

    let table = world.run(&["status", "drifted"]).await.ok();
    let text = &table.stdout;
    assert!(
        text.starts_with(&format!(
            "ChatRoom:   plugin-status/drifted\nAccount:    123456789012 (your own credentials)\nRegion:     us-west-2\nARN:        {drifted}\nAWS room:   found\nManagement: Manage\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("*  maximumMessageLength                 200"),
        "{text}"
    );
    assert!(text.contains("100\n"), "{text}");
    assert!(
        text.contains("   maximumMessageRatePerSecond          10"),
        "{text}"
    );
    assert!(
        text.contains("* the AWS value differs from the spec"),
        "{text}"
    );
    assert!(
        text.contains(
            "Ready      False   UpdateFailed  2026-01-01T00:00:00Z  AWS refused the update"
        ),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no colour when stdout is not a terminal: {text}"
    );
    let marked: Vec<&str> = text.lines().filter(|line| line.starts_with('*')).collect();
    assert_eq!(
        marked.len(),
        2,
        "one differing field plus the legend: {text}"
    );

    let json = world
        .run(&["status", "drifted", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(json["inSync"], json!(false));
    assert_eq!(json["chatRoom"], json!("plugin-status/drifted"));
    let differing: Vec<&Value> = json["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|field| field["differs"] == json!(true))
        .collect();
    assert_eq!(
        differing,
        vec![&json!({"field": "maximumMessageLength", "spec": 200, "aws": 100, "differs": true})]
    );
    assert_eq!(json["conditions"][0]["reason"], json!("UpdateFailed"));

    let json = world.run(&["status", "synced", "-o", "yaml"]).await.ok();
    let yaml: Value = serde_yaml::from_str(&json.stdout).expect("YAML");
    assert_eq!(yaml["inSync"], json!(true));
    assert_eq!(yaml["aws"], json!("found"));

    let pending = world.run(&["status", "pending"]).await.ok();
    assert!(
        pending.stdout.contains("AWS room:   no ARN yet"),
        "{}",
        pending.stdout
    );
    assert!(
        pending.stdout.contains("no conditions yet"),
        "{}",
        pending.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_context_and_namespace_are_honoured() {
    let world = World::new("plugin-context").await;
    let arn = world.ready_room("lobby").await;
    // A copy of the kubeconfig with a second context whose namespace is this test's.
    let mut kubeconfig: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&world.kubeconfig).expect("kubeconfig"))
            .expect("kubeconfig YAML");
    let mut context = kubeconfig["contexts"][0].clone();
    context["name"] = "plugin-context".into();
    context["context"]["namespace"] = world.namespace.clone().into();
    kubeconfig["contexts"]
        .as_sequence_mut()
        .expect("contexts")
        .push(context);
    let path = control_plane().data_dir().join("plugin-kubeconfig.yaml");
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig).expect("YAML")).expect("writing");

    let run = |args: Vec<String>| {
        let mut command = tokio::process::Command::new(PLUGIN);
        command
            .args(args)
            .args(["--aws-endpoint-url", &world.emulator.url()]);
        isolate(
            &mut command,
            Path::new("/nonexistent/kubeconfig"),
            &world.emulator,
        );
        async move { Run::from(command.output().await.expect("running the plugin")) }
    };
    let path = path.to_str().expect("utf-8 path").to_owned();
    let args = |extra: &[&str]| -> Vec<String> {
        ["status", "lobby", "-o", "json", "--kubeconfig", &path]
            .iter()
            .chain(extra)
            .map(|arg| (*arg).to_owned())
            .collect()
    };

    // The context's namespace is the default namespace.
    let json = run(args(&["--context", "plugin-context"]))
        .await
        .ok()
        .json();
    assert_eq!(json["arn"], json!(arn));
    // The current context's namespace is "default", where there is no such ChatRoom.
    run(args(&[])).await.fails_with(
        EXIT_NOT_FOUND,
        "ChatRoom \"lobby\" not found in namespace \"default\"",
    );
    // -n wins over the context's namespace.
    run(args(&["--context", "plugin-context", "-n", "default"]))
        .await
        .fails_with(EXIT_NOT_FOUND, "namespace \"default\"");
    run(args(&["--context", "no-such-context"]))
        .await
        .fails_with(EXIT_FAILURE, "no-such-context");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_the_plugin_from_the_path() {
    let world = World::new("plugin-kubectl").await;
    let arn = world.ready_room("lobby").await;
    let kubectl = ControlPlane::bin_dir()
        .expect("kubectl's directory")
        .join("kubectl");
    let plugin_dir = Path::new(PLUGIN).parent().expect("the plugin's directory");
    let path = format!(
        "{}:{}",
        plugin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut list = tokio::process::Command::new(&kubectl);
    list.args(["plugin", "list"]).env("PATH", &path);
    let list = Run::from(list.output().await.expect("kubectl plugin list"));
    assert!(
        list.stdout.contains("kubectl-ivschat"),
        "{}{}",
        list.stdout,
        list.stderr
    );

    let mut command = tokio::process::Command::new(&kubectl);
    command
        .args([
            "ivschat",
            "token",
            "lobby",
            "--user-id",
            "ana",
            "-o",
            "json",
            "-n",
        ])
        .arg(&world.namespace)
        .args(["--aws-endpoint-url", &world.emulator.url()]);
    isolate(&mut command, &world.kubeconfig, &world.emulator);
    command.env("PATH", &path);
    let json = Run::from(command.output().await.expect("kubectl ivschat"))
        .ok()
        .json();
    assert_eq!(json["roomArn"], json!(arn));
    world
        .emulator
        .redeem_chat_token(json["token"].as_str().expect("token"))
        .expect("a real token");

    // Exit codes pass through kubectl unchanged.
    let mut missing = tokio::process::Command::new(&kubectl);
    missing
        .args(["ivschat", "status", "nowhere", "-n"])
        .arg(&world.namespace);
    isolate(&mut missing, &world.kubeconfig, &world.emulator);
    missing.env("PATH", &path);
    Run::from(missing.output().await.expect("kubectl ivschat"))
        .fails_with(EXIT_NOT_FOUND, "ChatRoom \"nowhere\" not found");
}

// -------------------------------------------------------------------------------------------------------------
// Accounts and regions

/// The second account's id and the role the ChatAccounts of these tests name.
const FAR_ACCOUNT: &str = "111111111111";
const FAR_REGION: &str = "eu-west-1";
const FAR_ROLE: &str = "arn:aws:iam::111111111111:role/plugin-chat";
const FAR_EXTERNAL_ID: &str = "plugin-ext-7f3a";

/// An emulator whose second account has one role, assumable by the default account's credentials (the
/// test's own) with [`FAR_EXTERNAL_ID`].
fn two_accounts() -> EmulatorConfig {
    EmulatorConfig {
        accounts: vec![AccountConfig {
            id: FAR_ACCOUNT.into(),
            roles: vec![RoleConfig {
                external_id: Some(FAR_EXTERNAL_ID.into()),
                ..RoleConfig::new("plugin-chat")
            }],
        }],
        ..EmulatorConfig::default()
    }
}

impl World {
    /// A ChatAccount `name` (cluster-scoped, so named after the test) for [`FAR_ROLE`] with `external_id`,
    /// at this world's emulator, selecting this world's namespace. Its default region is not the rooms'
    /// region, so a test sees the room's own region win.
    async fn chat_account(&self, name: &str, external_id: &str) {
        let accounts: Api<ChatAccount> = Api::all(self.rooms.clone().into_client());
        let _ = accounts.delete(name, &Default::default()).await;
        accounts
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "ivschat.dev/v1alpha1",
                    "kind": "ChatAccount",
                    "metadata": {"name": name},
                    "spec": {
                        "roleArn": FAR_ROLE,
                        "externalId": external_id,
                        "sessionDurationSeconds": 900,
                        "defaultRegion": "ap-northeast-1",
                        "endpointUrl": self.emulator.url(),
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}},
                    },
                }))
                .expect("ChatAccount"),
            )
            .await
            .expect("creating the ChatAccount");
    }

    /// An SDK client in (`FAR_ACCOUNT`, `region`): the role's session, assumed with the static credentials.
    async fn far_client(&self, region: &str) -> Aws {
        let config = self.emulator.config();
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(self.emulator.url())
            .credentials_provider(aws_sdk_ivschat::config::Credentials::new(
                config.access_key_id.clone(),
                config.secret_access_key.clone(),
                None,
                None,
                "plugin-test",
            ))
            .load()
            .await;
        let session = aws_config::sts::AssumeRoleProvider::builder(FAR_ROLE)
            .session_name("plugin-test")
            .external_id(FAR_EXTERNAL_ID)
            .configure(&base)
            .build()
            .await;
        Aws::from_conf(
            aws_sdk_ivschat::config::Builder::from(&base)
                .credentials_provider(session)
                .build(),
        )
    }

    /// A room in (`FAR_ACCOUNT`, `FAR_REGION`) made with the role's session, and a ChatRoom `name` naming
    /// `account` whose status (written as the operator would, by server-side apply) records it; the ARN.
    async fn far_room(&self, name: &str, account: &str) -> String {
        let arn = self
            .far_client(FAR_REGION)
            .await
            .create_room()
            .name("far-room")
            .send()
            .await
            .expect("CreateRoom in the second account")
            .arn()
            .expect("an ARN")
            .to_owned();
        assert!(
            arn.starts_with(&format!("arn:aws:ivschat:{FAR_REGION}:{FAR_ACCOUNT}:room/")),
            "{arn}"
        );
        self.rooms
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "ivschat.dev/v1alpha1",
                    "kind": "ChatRoom",
                    "metadata": {"name": name},
                    "spec": {"name": "far-room", "accountRef": {"name": account}, "region": FAR_REGION},
                }))
                .expect("ChatRoom"),
            )
            .await
            .expect("creating the ChatRoom");
        self.rooms
            .patch_status(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(json!({
                    "apiVersion": "ivschat.dev/v1alpha1",
                    "kind": "ChatRoom",
                    "status": {
                        "arn": arn,
                        "region": FAR_REGION,
                        "accountId": FAR_ACCOUNT,
                        "conditions": [{
                            "type": CONDITION_READY,
                            "status": "True",
                            "reason": "Synced",
                            "message": "the room matches the spec",
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                        }],
                    },
                })),
            )
            .await
            .expect("writing the ChatRoom status");
        arn
    }

    /// The plugin with this world's kubeconfig, namespace and credentials but no endpoint flag: the
    /// ChatAccount's endpointUrl is then the only way to the emulator.
    async fn run_without_endpoint(&self, args: &[&str]) -> Run {
        let mut command = tokio::process::Command::new(PLUGIN);
        command.args(args).args(["-n", &self.namespace]);
        isolate(&mut command, &self.kubeconfig, &self.emulator);
        Run::from(command.output().await.expect("running the plugin"))
    }

    fn assume_roles(&self, outcome: &str) -> u64 {
        self.emulator.sts_request_count("AssumeRole", outcome)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_another_account_is_reached_by_assuming_its_accounts_role() {
    let world = World::with_emulator("plugin-far-room", two_accounts()).await;
    world
        .chat_account("plugin-far-room-account", FAR_EXTERNAL_ID)
        .await;
    let arn = world.far_room("far", "plugin-far-room-account").await;
    world.emulator.reset_metrics();

    let json = world
        .run_without_endpoint(&["token", "far", "--user-id", "ana", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(json["roomArn"], json!(arn));
    let issued = world
        .emulator
        .redeem_chat_token(json["token"].as_str().expect("a token"))
        .expect("a token the emulator issued");
    assert_eq!(issued.room_arn, arn);
    assert_eq!(
        world
            .emulator
            .request_count_in(FAR_ACCOUNT, FAR_REGION, "CreateChatToken"),
        1,
        "the token was asked for in the room's account and region"
    );
    assert_eq!(
        world.assume_roles("success"),
        1,
        "one AssumeRole for the command"
    );
    assert_eq!(
        world.emulator.sts_request_total("AssumeRole"),
        1,
        "and no refused one"
    );
    let default_account = world.emulator.default_account_id().to_owned();
    for region in ["us-west-2", FAR_REGION, "ap-northeast-1"] {
        assert_eq!(
            world
                .emulator
                .request_count_in(&default_account, region, "CreateChatToken"),
            0,
            "nothing with the user's own credentials ({region})"
        );
    }

    // status shows where the room lives, and reads it there.
    let status = world
        .run_without_endpoint(&["status", "far", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(status["aws"], json!("found"), "{status}");
    assert_eq!(status["account"], json!("plugin-far-room-account"));
    assert_eq!(status["accountId"], json!(FAR_ACCOUNT));
    assert_eq!(status["region"], json!(FAR_REGION));
    assert_eq!(status["inSync"], json!(true), "{status}");
    assert_eq!(
        world
            .emulator
            .request_count_in(FAR_ACCOUNT, FAR_REGION, "GetRoom"),
        1
    );
    let table = world.run_without_endpoint(&["status", "far"]).await.ok();
    assert!(
        table.stdout.starts_with(&format!(
            "ChatRoom:   plugin-far-room/far\n\
             Account:    {FAR_ACCOUNT} (ChatAccount plugin-far-room-account's role)\n\
             Region:     {FAR_REGION}\n\
             ARN:        {arn}\n\
             AWS room:   found\n"
        )),
        "{}",
        table.stdout
    );

    // --region overrides the room's region: the room is not in that region of the account.
    world
        .run_without_endpoint(&["send-event", "far", "--name", "e", "--region", "us-east-1"])
        .await
        .fails_with(EXIT_NOT_FOUND, &format!("room {arn} does not exist in AWS"));
    assert_eq!(
        world
            .emulator
            .request_count_in(FAR_ACCOUNT, "us-east-1", "SendEvent"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arn_with_account_assumes_that_accounts_role_and_without_uses_the_users_own() {
    let world = World::with_emulator("plugin-far-arn", two_accounts()).await;
    world
        .chat_account("plugin-far-arn-account", FAR_EXTERNAL_ID)
        .await;
    let arn = world.far_room("far", "plugin-far-arn-account").await;
    let mut events = world.room_events();
    world.emulator.reset_metrics();

    let sent = world
        .run(&[
            "send-event",
            "--arn",
            &arn,
            "--account",
            "plugin-far-arn-account",
            "--name",
            "hello",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(sent["roomArn"], json!(arn));
    let event = next_event(&mut events);
    assert_eq!(event.room_arn, arn);
    assert_eq!(
        world
            .emulator
            .request_count_in(FAR_ACCOUNT, FAR_REGION, "SendEvent"),
        1,
        "in the ARN's region, in the account's account"
    );
    assert_eq!(world.assume_roles("success"), 1);

    let status = world
        .run(&[
            "status",
            "--arn",
            &arn,
            "--account",
            "plugin-far-arn-account",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(status["aws"], json!("found"));
    assert_eq!(status["account"], json!("plugin-far-arn-account"));
    assert_eq!(status["accountId"], json!(FAR_ACCOUNT));
    assert_eq!(status["region"], json!(FAR_REGION));

    // Without --account: the user's own credentials, the default account, where that room is not; still
    // in the ARN's region, and no AssumeRole.
    world
        .run(&["send-event", "--arn", &arn, "--name", "hello"])
        .await
        .fails_with(EXIT_NOT_FOUND, &format!("room {arn} does not exist in AWS"));
    let default_account = world.emulator.default_account_id().to_owned();
    assert_eq!(
        world
            .emulator
            .request_count_in(&default_account, FAR_REGION, "SendEvent"),
        1
    );
    assert_eq!(world.emulator.sts_request_total("AssumeRole"), 2);

    // A ChatRoom's account is its spec's, never the flag's.
    world
        .run(&[
            "token",
            "far",
            "--account",
            "plugin-far-arn-account",
            "--user-id",
            "u",
        ])
        .await
        .fails_with(
            EXIT_INVALID,
            "--account \"plugin-far-arn-account\" goes with --arn",
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_account_that_does_not_exist_is_named_before_any_aws_call() {
    let world = World::with_emulator("plugin-no-account", two_accounts()).await;
    // A real room in the second account, and a ChatRoom naming an account nobody created.
    world
        .chat_account("plugin-no-account-real", FAR_EXTERNAL_ID)
        .await;
    let arn = world.far_room("orphan", "plugin-no-account-missing").await;
    world.emulator.reset_metrics();

    for args in [
        vec!["token", "orphan", "--user-id", "u"],
        vec!["status", "orphan"],
    ] {
        world.run(&args).await.fails_with(
            EXIT_FAILURE,
            "ChatAccount \"plugin-no-account-missing\" not found (ChatRoom plugin-no-account/orphan names it in spec.accountRef): check the name with `kubectl get chataccounts`",
        );
    }
    world
        .run(&[
            "disconnect-user",
            "--arn",
            &arn,
            "--account",
            "plugin-no-account-missing",
            "--user-id",
            "u",
        ])
        .await
        .fails_with(
            EXIT_FAILURE,
            "ChatAccount \"plugin-no-account-missing\" not found (given with --account)",
        );
    assert_eq!(world.aws_requests(), 0, "no IVS Chat call");
    assert_eq!(
        world.emulator.sts_request_total("AssumeRole"),
        0,
        "no STS call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_refuses_the_user_says_the_users_identity_must_be_trusted() {
    let world = World::with_emulator("plugin-refused", two_accounts()).await;
    world
        .chat_account("plugin-refused-wrong-id", "plugin-ext-wrong")
        .await;
    let arn = world.far_room("far", "plugin-refused-wrong-id").await;
    world.emulator.reset_metrics();

    let run = world
        .run(&["token", "far", "--user-id", "u"])
        .await
        .fails_with(
            EXIT_FAILURE,
            &format!("error: STS refused your AWS identity the role {FAR_ROLE} of ChatAccount plugin-refused-wrong-id (AccessDenied"),
        );
    assert!(
        run.stderr
            .contains("the role's trust policy must trust your identity too"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("sts:AssumeRole"), "{}", run.stderr);
    world
        .run(&[
            "send-event",
            "--arn",
            &arn,
            "--account",
            "plugin-refused-wrong-id",
            "--name",
            "e",
        ])
        .await
        .fails_with(EXIT_FAILURE, "(AccessDenied");
    assert_eq!(world.assume_roles("AccessDenied"), 2);

    // Without credentials of one's own there is nothing to assume the role with; without STS, no answer.
    let mut command = world.command(&["token", "far", "--user-id", "u"]);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    Run::from(command.output().await.expect("running the plugin")).fails_with(
        EXIT_FAILURE,
        &format!("error: no AWS credentials of your own to assume the role {FAR_ROLE} of ChatAccount plugin-refused-wrong-id with"),
    );
    let mut command = tokio::process::Command::new(PLUGIN);
    command.args([
        "token",
        "far",
        "--user-id",
        "u",
        "-n",
        &world.namespace,
        "--aws-endpoint-url",
        "http://127.0.0.1:9",
    ]);
    isolate(&mut command, &world.kubeconfig, &world.emulator);
    let run = Run::from(command.output().await.expect("running the plugin")).fails_with(
        EXIT_FAILURE,
        &format!("error: cannot reach STS to assume the role {FAR_ROLE}"),
    );
    assert!(
        !run.stderr.contains("ProviderError("),
        "no Debug dump: {}",
        run.stderr
    );
    assert_eq!(world.emulator.sts_request_total("AssumeRole"), 2);
    assert_eq!(world.assume_roles("success"), 0);
    assert_eq!(
        world.aws_requests(),
        0,
        "no IVS Chat call without a session"
    );
}

/// A copy of `kubeconfig` that impersonates `user`, who may do in `namespace` what `rules` (a Role's rules)
/// allow and nothing else.
pub(super) async fn kubeconfig_impersonating(
    kube: kube::Client,
    namespace: &str,
    kubeconfig: &std::path::Path,
    user: &str,
    rules: Value,
) -> std::path::PathBuf {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    Api::<Role>::namespaced(kube.clone(), namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": user}, "rules": rules}))
                .expect("Role"),
        )
        .await
        .expect("creating the Role");
    Api::<RoleBinding>::namespaced(kube, namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": user},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
            }))
            .expect("RoleBinding"),
        )
        .await
        .expect("creating the RoleBinding");
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig).expect("kubeconfig"))
            .expect("kubeconfig YAML");
    config["users"][0]["user"]["as"] = user.into();
    let path = control_plane()
        .data_dir()
        .join(format!("{user}-kubeconfig.yaml"));
    std::fs::write(&path, serde_yaml::to_string(&config).expect("YAML")).expect("writing");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_may_not_get_chat_accounts_is_told_which_permission_is_missing() {
    let world = World::with_emulator("plugin-rbac", two_accounts()).await;
    world
        .chat_account("plugin-rbac-account", FAR_EXTERNAL_ID)
        .await;
    world.far_room("far", "plugin-rbac-account").await;
    // A user who may read the namespace's ChatRooms and nothing else, through a copy of the kubeconfig
    // that impersonates them.
    let user = "plugin-rbac-reader";
    let path = kubeconfig_impersonating(
        world.rooms.clone().into_client(),
        &world.namespace,
        &world.kubeconfig,
        user,
        json!([{"apiGroups": ["ivschat.dev"], "resources": ["chatrooms"], "verbs": ["get", "list"]}]),
    )
    .await;
    world.emulator.reset_metrics();

    let mut command = tokio::process::Command::new(PLUGIN);
    command.args(["token", "far", "--user-id", "u", "-n", &world.namespace]);
    isolate(&mut command, &path, &world.emulator);
    let run = Run::from(command.output().await.expect("running the plugin")).fails_with(
        EXIT_FAILURE,
        "your Kubernetes user may not get ChatAccounts (cluster-scoped, chataccounts.ivschat.dev)",
    );
    assert!(
        run.stderr
            .contains("reading ChatAccount plugin-rbac-account"),
        "{}",
        run.stderr
    );
    // The ChatRoom itself was readable: the same user lists the namespace's rooms.
    let mut command = tokio::process::Command::new(PLUGIN);
    command.args(["status", "-n", &world.namespace]);
    isolate(&mut command, &path, &world.emulator);
    Run::from(command.output().await.expect("running the plugin")).ok();
    assert_eq!(world.emulator.sts_request_total("AssumeRole"), 0);
    assert_eq!(world.aws_requests(), 0);
}

// -------------------------------------------------------------------------------------------------------------
// Errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_unready_rooms_are_refused_before_any_aws_call() {
    let world = World::new("plugin-unready").await;
    let arn = world.aws_room(None).await;
    world.chat_room("no-arn", json!({}), None, None).await;
    world
        .chat_room("failing", json!({}), Some(&arn), Some("False"))
        .await;
    world.emulator.reset_metrics();

    for command in [
        vec!["token", "ROOM", "--user-id", "u"],
        vec!["send-event", "ROOM", "--name", "e"],
        vec!["delete-message", "ROOM", "--id", "abcDEF123456"],
        vec!["disconnect-user", "ROOM", "--user-id", "u"],
    ] {
        let with = |room: &'static str| -> Vec<&str> {
            command
                .iter()
                .map(|arg| if *arg == "ROOM" { room } else { *arg })
                .collect()
        };
        world.run(&with("absent")).await.fails_with(
            EXIT_NOT_FOUND,
            "error: ChatRoom \"absent\" not found in namespace \"plugin-unready\"",
        );
        world.run(&with("no-arn")).await.fails_with(
            EXIT_NOT_READY,
            "ChatRoom plugin-unready/no-arn has no ARN yet",
        );
        let failing = world.run(&with("failing")).await.fails_with(
            EXIT_NOT_READY,
            "ChatRoom plugin-unready/failing is not Ready; Ready=False (UpdateFailed: AWS refused the update)",
        );
        assert!(
            failing.stderr.contains(&format!("--arn {arn}")),
            "{}",
            failing.stderr
        );
    }
    world
        .run(&["status", "absent"])
        .await
        .fails_with(EXIT_NOT_FOUND, "ChatRoom \"absent\" not found");
    assert_eq!(
        world.aws_requests(),
        0,
        "no AWS call for a room that is not usable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_are_refused_before_any_call() {
    let world = World::new("plugin-invalid").await;
    world.ready_room("lobby").await;
    world.emulator.reset_metrics();
    let long_user = "u".repeat(129);
    let long_reason = "r".repeat(257);
    let long_name = "n".repeat(101);
    let big_attribute = format!("k={}", "v".repeat(1024));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["delete-message", "lobby", "--id", "short"],
            "--id \"short\" is not a message ID",
        ),
        (
            vec!["delete-message", "lobby", "--id", "abcDEF12345!"],
            "exactly 12 letters and digits",
        ),
        (
            vec![
                "delete-message",
                "lobby",
                "--id",
                "abcDEF123456",
                "--reason",
                &long_reason,
            ],
            "--reason is 257 characters long; at most 256",
        ),
        (
            vec!["token", "lobby", "--user-id", &long_user],
            "--user-id is 129 characters long",
        ),
        (
            vec!["token", "lobby", "--user-id", ""],
            "--user-id must not be empty",
        ),
        (
            vec!["token", "lobby", "--user-id", "u", "--capability", "BAN"],
            "--capability \"BAN\" is not one of SEND_MESSAGE, DISCONNECT_USER, DELETE_MESSAGE",
        ),
        (
            vec![
                "token",
                "lobby",
                "--user-id",
                "u",
                "--session-duration",
                "181",
            ],
            "--session-duration 181 is out of range",
        ),
        (
            vec![
                "token",
                "lobby",
                "--user-id",
                "u",
                "--session-duration",
                "0",
            ],
            "1 to 180 minutes",
        ),
        (
            vec!["token", "lobby", "--user-id", "u", "--attribute", "novalue"],
            "KEY=VALUE",
        ),
        (
            vec![
                "send-event",
                "lobby",
                "--name",
                "e",
                "--attribute",
                &big_attribute,
            ],
            "1025 bytes",
        ),
        (
            vec!["send-event", "lobby", "--name", &long_name],
            "--name is 101 characters",
        ),
        (
            vec!["disconnect-user", "lobby", "--user-id", "u", "--reason", ""],
            "--reason must not be empty",
        ),
        (
            vec!["token", "--user-id", "u"],
            "give a ChatRoom name (ROOM) or --arn",
        ),
        (
            vec![
                "token",
                "lobby",
                "--user-id",
                "u",
                "--arn",
                "arn:aws:ivschat:us-west-2:1:room/abc",
            ],
            "not both",
        ),
        (
            vec!["token", "--arn", "room-1", "--user-id", "u"],
            "is not a room ARN",
        ),
        (
            vec!["status", "--region", "Mars"],
            "is not an AWS region name",
        ),
    ];
    for (args, fragment) in cases {
        let run = world.run(&args).await;
        assert!(
            run.stderr.starts_with("error: invalid arguments:"),
            "{args:?}: {}",
            run.stderr
        );
        run.fails_with(EXIT_INVALID, fragment);
    }
    // Several problems are all reported in one run.
    let run = world
        .run(&[
            "token",
            "lobby",
            "--user-id",
            "",
            "--session-duration",
            "500",
        ])
        .await
        .fails_with(EXIT_INVALID, "--user-id must not be empty");
    assert!(
        run.stderr.contains("--session-duration 500"),
        "{}",
        run.stderr
    );
    // clap's own usage errors (missing required option, unknown command) use the same code.
    world
        .run(&["send-event", "lobby"])
        .await
        .fails_with(EXIT_INVALID, "--name");
    world
        .run(&["shout", "lobby"])
        .await
        .fails_with(EXIT_INVALID, "unrecognized subcommand");
    assert_eq!(world.aws_requests(), 0, "invalid arguments never reach AWS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_errors_are_translated_into_what_to_do() {
    let world = World::new("plugin-aws-errors").await;
    let arn = world.ready_room("lobby").await;

    // The room is deleted in AWS behind the operator's back.
    world
        .aws
        .delete_room()
        .identifier(&arn)
        .send()
        .await
        .expect("DeleteRoom");
    for args in [
        vec!["token", "lobby", "--user-id", "u"],
        vec!["send-event", "lobby", "--name", "e"],
        vec!["delete-message", "lobby", "--id", "abcDEF123456"],
        vec!["disconnect-user", "lobby", "--user-id", "u"],
    ] {
        world.run(&args).await.fails_with(
            EXIT_NOT_FOUND,
            &format!("error: room {arn} does not exist in AWS"),
        );
    }
    world
        .run(&["send-event", "--arn", &arn, "--name", "e"])
        .await
        .fails_with(EXIT_NOT_FOUND, "check the ARN and --region");
    // status still shows the ChatRoom, with AWS's side missing.
    let status = world.run(&["status", "lobby"]).await.ok();
    assert!(
        status
            .stdout
            .contains("AWS room:   NOT FOUND (deleted outside Kubernetes?)"),
        "{}",
        status.stdout
    );
    let json = world
        .run(&["status", "lobby", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(json["aws"], json!("notFound"));
    assert_eq!(json["inSync"], json!(false));

    // Credentials AWS does not recognise: an expired session or a wrong key.
    let arn = world.ready_room("second").await;
    let mut command = world.command(&["token", "second", "--user-id", "u"]);
    command.env("AWS_ACCESS_KEY_ID", "AKIAEXPIREDEXAMPLE");
    let run = Run::from(command.output().await.expect("running the plugin"))
        .fails_with(EXIT_FAILURE, "AWS does not recognise your credentials");
    assert!(
        run.stderr.contains("refresh your credentials"),
        "{}",
        run.stderr
    );
    let mut command = world.command(&["token", "second", "--user-id", "u"]);
    command.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    Run::from(command.output().await.expect("running the plugin"))
        .fails_with(EXIT_FAILURE, "AWS rejected the request signature");

    // No credentials at all.
    let mut command = world.command(&["token", "second", "--user-id", "u"]);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    Run::from(command.output().await.expect("running the plugin"))
        .fails_with(EXIT_FAILURE, "no AWS credentials for CreateChatToken");

    // Nothing listening at the endpoint.
    let mut command = tokio::process::Command::new(PLUGIN);
    command.args([
        "send-event",
        "--arn",
        &arn,
        "--name",
        "e",
        "--aws-endpoint-url",
        "http://127.0.0.1:9",
    ]);
    isolate(&mut command, &world.kubeconfig, &world.emulator);
    Run::from(command.output().await.expect("running the plugin"))
        .fails_with(EXIT_FAILURE, "cannot reach the IVS Chat endpoint");

    // An error AWS reports as a server fault says to retry (the SDK's own retries are spent first).
    world.emulator.set_fault_rate(1.0).expect("fault rate");
    world
        .run(&["disconnect-user", "second", "--user-id", "u"])
        .await
        .fails_with(EXIT_FAILURE, "retry later");
}

/// An HTTP server that answers every request with one AWS error (header-typed, as restJson1 services do),
/// for the errors the emulator never produces.
pub(super) async fn failing_endpoint(
    status: u16,
    error_type: &'static str,
    message: &'static str,
) -> String {
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::from_u16(status).expect("status code"),
            [
                ("x-amzn-errortype", error_type),
                ("content-type", "application/json"),
            ],
            json!({"message": message}).to_string(),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_and_session_errors_say_what_to_do() {
    let world = World::new("plugin-denied").await;
    let arn = "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234";
    let cases = [
        (
            403,
            "AccessDeniedException",
            "User is not authorized to perform: ivschat:CreateChatToken",
            "needs an IAM policy that allows ivschat:CreateChatToken on this room",
        ),
        (
            403,
            "ExpiredTokenException",
            "The security token included in the request is expired",
            "your AWS session has expired",
        ),
        (
            403,
            "PendingVerification",
            "Account pending verification",
            "the AWS account is pending verification",
        ),
        (
            400,
            "ValidationException",
            "1 validation error detected",
            "AWS rejected the CreateChatToken arguments as invalid (AWS said: 1 validation error detected)",
        ),
    ];
    for (status, error_type, message, advice) in cases {
        let endpoint = failing_endpoint(status, error_type, message).await;
        let mut command = tokio::process::Command::new(PLUGIN);
        command.args([
            "token",
            "--arn",
            arn,
            "--user-id",
            "u",
            "--aws-endpoint-url",
            &endpoint,
        ]);
        isolate(&mut command, &world.kubeconfig, &world.emulator);
        let expected_code = if error_type == "ValidationException" {
            EXIT_INVALID
        } else {
            EXIT_FAILURE
        };
        let run = Run::from(command.output().await.expect("running the plugin"))
            .fails_with(expected_code, advice);
        assert!(
            run.stderr.contains(&format!("AWS said: {message}")),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differences_are_coloured_only_on_a_terminal() {
    let world = World::new("plugin-colour").await;
    let arn = world.aws_room(Some(100)).await;
    world
        .chat_room(
            "drifted",
            json!({"name": "plugin-room", "maximumMessageLength": 200, "tags": {"team": "chat"}}),
            Some(&arn),
            Some("True"),
        )
        .await;
    // util-linux `script` gives the plugin a pseudo-terminal as stdout.
    let on_terminal = |no_color: bool| {
        let plugin = [
            PLUGIN,
            "status",
            "drifted",
            "-n",
            &world.namespace,
            "--aws-endpoint-url",
            &world.emulator.url(),
        ]
        .join(" ");
        let mut command = tokio::process::Command::new("script");
        command.args(["--quiet", "--return", "--command", &plugin, "/dev/null"]);
        isolate(&mut command, &world.kubeconfig, &world.emulator);
        if no_color {
            command.env("NO_COLOR", "1");
        }
        async move {
            Run::from(
                command
                    .output()
                    .await
                    .expect("running the plugin under `script` (util-linux)"),
            )
            .ok()
        }
    };
    let coloured = on_terminal(false).await.stdout;
    assert!(
        coloured.contains("\u{1b}[31m*  maximumMessageLength                 200"),
        "{coloured}"
    );
    assert!(
        !coloured.contains("\u{1b}[31m   name"),
        "only differing rows are red: {coloured}"
    );
    let plain = on_terminal(true).await.stdout;
    assert!(plain.contains("*  maximumMessageLength"), "{plain}");
    assert!(
        !plain.contains('\u{1b}'),
        "NO_COLOR turns colour off: {plain}"
    );
}
