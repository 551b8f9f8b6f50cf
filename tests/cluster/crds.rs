//! The CRDs: the committed YAML matches the Rust types, its shape is what `kubectl` users and the
//! controllers rely on, and a real kube-apiserver (testenv) installs it, documents it, accepts every
//! example and rejects every manifest of `tests/invalid-manifests/` with a message naming the field.
//!
//! Corpus format: each file starts with `# expect: <fragment>` (a fragment of the API server's message,
//! naming the offending field). A file with one YAML document is applied with `--dry-run=server` and must
//! be rejected. A file with two documents is an update case: the first is created for real, the second
//! is applied over it with `--dry-run=server` and must be rejected.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ivschat_operator::crd::{
    self, CONDITION_READY, CONDITION_RECONCILING, ChatLoggingConfiguration, ChatRoom, ChatRoomSpec,
    ChatRoomStatus,
};
use ivschat_testsupport::cluster::{WAIT_FOR_CRDS, shared_control_plane as control_plane};
use ivschat_testsupport::command::{repo_path, run, succeed, text};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{CustomResourceExt, Resource};
use serde_json::json;
use testenv::ControlPlane;

const CRDS_FILE: &str = "crds/ivschat.dev.yaml";
const REGENERATE: &str = "make crds (cargo run --quiet --locked -- crds > crds/ivschat.dev.yaml)";
/// How long the API server may take to publish a new CRD in discovery and OpenAPI.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);
/// kubectl gives up on a request after this, so a stuck API server fails the test instead of hanging it.
const REQUEST_TIMEOUT: &str = "--request-timeout=60s";

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path(dir))
        .unwrap_or_else(|err| panic!("reading {dir}: {err}"))
        .map(|entry| {
            entry
                .unwrap_or_else(|err| panic!("listing {dir}: {err}"))
                .path()
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------------------
// Pure tests: no API server.

#[test]
fn committed_crds_match_the_rust_types() {
    let generated = crd::crds_yaml().expect("rendering the CRDs");
    let committed = std::fs::read_to_string(repo_path(CRDS_FILE))
        .unwrap_or_else(|err| panic!("reading {CRDS_FILE} ({err}): run `{REGENERATE}`"));
    assert!(
        generated == committed,
        "{CRDS_FILE} is out of date with the Rust types in src/crd: run `{REGENERATE}` and commit the result"
    );
}

fn version_schema(crd: &CustomResourceDefinition) -> &JSONSchemaProps {
    crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|schema| schema.open_api_v3_schema.as_ref())
        .expect("the CRD has a schema")
}

fn property<'a>(schema: &'a JSONSchemaProps, path: &[&str]) -> &'a JSONSchemaProps {
    path.iter().fold(schema, |schema, name| {
        schema
            .properties
            .as_ref()
            .and_then(|properties| properties.get(*name))
            .unwrap_or_else(|| panic!("no property {name} in {path:?}"))
    })
}

#[test]
fn names_categories_columns_and_status_subresource() {
    for (crd, kind, short_name) in [
        (ChatRoom::crd(), "ChatRoom", "chr"),
        (
            ChatLoggingConfiguration::crd(),
            "ChatLoggingConfiguration",
            "chlc",
        ),
    ] {
        assert_eq!(crd.spec.group, "ivschat.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(
            crd.spec.names.short_names,
            Some(vec![short_name.to_owned()])
        );
        assert_eq!(crd.spec.names.categories, Some(vec!["ivschat".to_owned()]));
        assert_eq!(crd.spec.versions.len(), 1);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{kind} has a status subresource"
        );
    }

    let columns = |crd: CustomResourceDefinition| -> Vec<(String, String, i32)> {
        crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.json_path, c.priority.unwrap_or(0)))
            .collect()
    };
    let ready = r#".status.conditions[?(@.type=="Ready")]"#;
    let col = |name: &str, path: &str, priority: i32| (name.to_owned(), path.to_owned(), priority);
    assert_eq!(
        columns(ChatRoom::crd()),
        vec![
            col("ID", ".status.id", 0),
            col("Ready", &format!("{ready}.status"), 0),
            col("Reason", &format!("{ready}.reason"), 0),
            col("Age", ".metadata.creationTimestamp", 0),
            col("ARN", ".status.arn", 1),
            col("Region", ".status.region", 1),
            col("Account", ".status.accountId", 1),
        ]
    );
    assert_eq!(
        columns(ChatLoggingConfiguration::crd()),
        vec![
            col("ID", ".status.id", 0),
            col("State", ".status.state", 0),
            col("Ready", &format!("{ready}.status"), 0),
            col("Age", ".metadata.creationTimestamp", 0),
            col("ARN", ".status.arn", 1),
            col("Region", ".status.region", 1),
            col("Account", ".status.accountId", 1),
        ]
    );
}

#[test]
fn conditions_are_a_list_map_keyed_on_type() {
    for crd in crd::crds() {
        let conditions = property(version_schema(&crd), &["status", "conditions"]);
        assert_eq!(conditions.x_kubernetes_list_type.as_deref(), Some("map"));
        assert_eq!(
            conditions.x_kubernetes_list_map_keys,
            Some(vec!["type".to_owned()])
        );
    }
}

/// Walks a schema; `visit` gets the JSON path and the node.
fn walk(path: &str, schema: &JSONSchemaProps, visit: &mut dyn FnMut(&str, &JSONSchemaProps)) {
    visit(path, schema);
    for (name, child) in schema.properties.iter().flatten() {
        walk(&format!("{path}.{name}"), child, visit);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) =
        &schema.items
    {
        walk(&format!("{path}[*]"), items, visit);
    }
}

#[test]
fn spec_schemas_are_documented_structural_and_not_nullable() {
    for crd in crd::crds() {
        let kind = crd.spec.names.kind.clone();
        let root = version_schema(&crd);
        // The kinds that own AWS resources can be paused; a ChatAccount only names an account.
        assert_eq!(
            root.description
                .as_deref()
                .is_some_and(|d| d.contains(crd::PAUSED_ANNOTATION)),
            kind != "ChatAccount",
            "{kind}'s description documents the pause annotation if the kind has one"
        );
        let mut problems = Vec::new();
        walk("spec", property(root, &["spec"]), &mut |path, node| {
            if node.description.as_deref().is_none_or(str::is_empty) && !path.ends_with("[*]") {
                problems.push(format!("{path} has no description"));
            }
            if node.nullable.is_some() {
                problems.push(format!(
                    "{path} is nullable (null would bypass the CEL rules)"
                ));
            }
            if node.any_of.is_some() || node.one_of.is_some() || node.all_of.is_some() {
                problems.push(format!("{path} uses anyOf/oneOf/allOf"));
            }
            if node.type_.is_none() {
                problems.push(format!("{path} has no type (not structural)"));
            }
            if node
                .description
                .as_deref()
                .is_some_and(|d| d.contains('\n'))
            {
                problems.push(format!("{path} has a line break in its description"));
            }
        });
        assert!(problems.is_empty(), "{kind}: {problems:#?}");
    }
}

#[test]
fn every_cel_message_names_its_field() {
    for crd in crd::crds() {
        let mut messages = Vec::new();
        walk(
            "spec",
            property(version_schema(&crd), &["spec"]),
            &mut |path, node| {
                for rule in node.x_kubernetes_validations.iter().flatten() {
                    let message = rule.message.clone().unwrap_or_default();
                    assert!(
                        message.starts_with("spec."),
                        "rule {} at {path} has message {message:?}",
                        rule.rule
                    );
                    messages.push(message);
                }
            },
        );
        assert!(messages.len() >= 4, "{messages:?}");
    }
}

#[test]
fn schema_patterns_are_the_exported_patterns() {
    let room = ChatRoom::crd();
    let spec = property(version_schema(&room), &["spec"]);
    let pattern = |path: &[&str]| property(spec, path).pattern.clone().unwrap_or_default();
    assert_eq!(pattern(&["name"]), crd::patterns::AWS_NAME);
    assert_eq!(pattern(&["adoptArn"]), crd::patterns::ROOM_ARN);
    assert_eq!(
        pattern(&["messageReviewHandler", "uri"]),
        crd::patterns::LAMBDA_ARN
    );
    let logging = ChatLoggingConfiguration::crd();
    let spec = property(version_schema(&logging), &["spec"]);
    let pattern = |path: &[&str]| property(spec, path).pattern.clone().unwrap_or_default();
    assert_eq!(
        pattern(&["adoptArn"]),
        crd::patterns::LOGGING_CONFIGURATION_ARN
    );
    assert_eq!(
        pattern(&["destinationConfiguration", "s3", "bucketName"]),
        crd::patterns::BUCKET_NAME
    );
}

#[test]
fn exported_patterns_accept_the_aws_documentation_examples() {
    let matches = |pattern: &str, value: &str| {
        regex::Regex::new(pattern)
            .unwrap_or_else(|err| panic!("{pattern}: {err}"))
            .is_match(value)
    };
    use crd::patterns::*;
    assert!(matches(
        ROOM_ARN,
        "arn:aws:ivschat:us-west-2:123456789012:room/g1H2I3j4k5L6"
    ));
    assert!(!matches(
        ROOM_ARN,
        "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/ABcdef34ghIJ"
    ));
    assert!(matches(
        LOGGING_CONFIGURATION_ARN,
        "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/ABcdef34ghIJ"
    ));
    assert!(matches(AWS_NAME, "test-room_1") && matches(AWS_NAME, "") && !matches(AWS_NAME, "a b"));
    assert!(
        matches(LAMBDA_ARN, "")
            && matches(
                LAMBDA_ARN,
                "arn:aws:lambda:us-west-2:123456789012:function:f"
            )
    );
    assert!(!matches(
        LAMBDA_ARN,
        "arn:aws:lambda:us-west-2:12345:function:f"
    ));
    assert!(matches(BUCKET_NAME, "demo-logging-bucket") && !matches(BUCKET_NAME, "Demo"));
    assert!(matches(LOG_GROUP_NAME, "/aws/ivschat/demo#1") && !matches(LOG_GROUP_NAME, "a b"));
    assert!(
        matches(DELIVERY_STREAM_NAME, "demo_stream.1-a") && !matches(DELIVERY_STREAM_NAME, "a/b")
    );
    assert!(matches(OBJECT_NAME, "test-logging-config") && !matches(OBJECT_NAME, "Test"));
}

#[test]
fn examples_deserialize_into_the_rust_types() {
    let files = yaml_files("examples");
    assert!(files.len() >= 7, "{files:?}");
    let mut kinds = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("reading an example");
        let value: serde_json::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("{file:?}: {err}"));
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "ChatRoom" => {
                serde_json::from_value::<ChatRoom>(value)
                    .unwrap_or_else(|err| panic!("{file:?}: {err}"));
            }
            "ChatLoggingConfiguration" => {
                serde_json::from_value::<ChatLoggingConfiguration>(value)
                    .unwrap_or_else(|err| panic!("{file:?}: {err}"));
            }
            "ChatAccount" => {
                serde_json::from_value::<ivschat_operator::crd::ChatAccount>(value)
                    .unwrap_or_else(|err| panic!("{file:?}: {err}"));
            }
            other => panic!("{file:?} has unexpected kind {other:?}"),
        }
        kinds.insert(kind);
    }
    assert_eq!(kinds.len(), 3);
}

// ---------------------------------------------------------------------------------------------------
// Against a real kube-apiserver.

/// Runs kubectl with `args` and asserts that it succeeds; returns its stdout.
fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> String {
    let mut command = control_plane().kubectl();
    command.args(args).arg(REQUEST_TIMEOUT);
    succeed(command, stdin)
}

/// Retries `kubectl args` until it succeeds and its stdout satisfies `done` (discovery and OpenAPI
/// publish a new CRD asynchronously); fails with the last output after [`PUBLISH_TIMEOUT`].
fn kubectl_eventually(args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PUBLISH_TIMEOUT;
    loop {
        let mut command = control_plane().kubectl();
        command.args(args).arg(REQUEST_TIMEOUT);
        let output = run(command, None);
        let stdout = text(&output.stdout);
        if output.status.success() && done(&stdout) {
            return stdout;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {args:?} did not give the expected output within {PUBLISH_TIMEOUT:?}: {stdout}{}",
            text(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Installs the committed CRDs once per test binary and waits until both are Established. The shared control
/// plane may already have the CRDs rendered from the Rust types (other modules install those, and
/// `committed_crds_match_the_rust_types` proves the two are the same); the API server checks the committed
/// file either way.
fn crds_installed() -> &'static ControlPlane {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let control_plane = control_plane();
    INSTALLED.get_or_init(|| {
        let path = repo_path(CRDS_FILE);
        kubectl_ok(
            &["apply", "--server-side", "-f", &path.to_string_lossy()],
            None,
        );
        kubectl_ok(&WAIT_FOR_CRDS, None);
    });
    control_plane
}

/// A namespace of its own for one test (the names are fixed and unique among the modules sharing the API
/// server).
fn namespace(name: &str) -> String {
    crds_installed();
    kubectl_ok(&["create", "namespace", name], None);
    name.to_owned()
}

#[test]
fn crds_install_and_become_established() {
    crds_installed();
    for crd in [
        "chatrooms.ivschat.dev",
        "chatloggingconfigurations.ivschat.dev",
    ] {
        let conditions = kubectl_ok(
            &[
                "get",
                "crd",
                crd,
                "-o",
                "jsonpath={range .status.conditions[*]}{.type}={.status} {end}",
            ],
            None,
        );
        assert!(
            conditions.contains("Established=True"),
            "{crd}: {conditions}"
        );
        assert!(
            conditions.contains("NamesAccepted=True"),
            "{crd}: {conditions}"
        );
    }
    let resources = kubectl_eventually(
        &["api-resources", "--api-group=ivschat.dev", "-o", "wide"],
        |out| out.contains("chatrooms") && out.contains("chatloggingconfigurations"),
    );
    for expected in ["chr", "chlc", "ivschat"] {
        assert!(
            resources.contains(expected),
            "{expected} missing from {resources}"
        );
    }
}

#[test]
fn kubectl_explain_shows_the_field_docs() {
    crds_installed();
    // kubectl wraps descriptions at 80 columns: compare with whitespace runs collapsed.
    let flat = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let room = flat(kubectl_eventually(&["explain", "chatroom.spec"], |out| {
        out.contains("maximumMessageLength")
    }));
    for expected in [
        "AWS applies",
        "default of 500",
        "ObserveOnly",
        "never writes to AWS",
        "Retain",
        "adoptArn",
        "cannot be changed or removed",
        "at most 3 entries",
        "reserved by AWS",
        "read with envFrom",
        "ConfigMapConflict",
    ] {
        assert!(
            room.contains(expected),
            "`kubectl explain chatroom.spec` lacks {expected:?}:\n{room}"
        );
    }
    let root = flat(kubectl_eventually(&["explain", "chatroom"], |out| {
        out.contains("ChatRoom")
    }));
    assert!(
        root.contains("ivschat.dev/paused"),
        "the pause annotation is documented:\n{root}"
    );

    let destination = flat(kubectl_eventually(
        &[
            "explain",
            "chatloggingconfiguration.spec.destinationConfiguration",
        ],
        |out| out.contains("cloudWatchLogs"),
    ));
    for expected in [
        "exactly one of s3, cloudWatchLogs, firehose",
        "s3",
        "firehose",
        "Amazon S3 bucket",
    ] {
        assert!(
            destination.contains(expected),
            "explain destinationConfiguration lacks {expected:?}:\n{destination}"
        );
    }
    let bucket = flat(kubectl_eventually(
        &[
            "explain",
            "chlc.spec.destinationConfiguration.s3.bucketName",
        ],
        |out| out.contains("bucketName"),
    ));
    assert!(bucket.contains("3-63 characters"), "{bucket}");
}

#[test]
fn every_example_is_accepted_by_the_api_server() {
    let ns = namespace("examples-dry-run");
    let files = yaml_files("examples");
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let out = kubectl_ok(
            &[
                "apply",
                "--dry-run=server",
                "-n",
                &ns,
                "-f",
                &file.to_string_lossy(),
            ],
            None,
        );
        assert!(out.contains("(server dry run)"), "{file:?}: {out}");
    }
}

#[test]
fn kubectl_get_ivschat_lists_both_kinds() {
    let ns = namespace("get-ivschat");
    let examples = repo_path("examples");
    kubectl_ok(
        &[
            "apply",
            "-n",
            &ns,
            "-f",
            &examples
                .join("chatloggingconfiguration-s3.yaml")
                .to_string_lossy(),
        ],
        None,
    );
    kubectl_ok(
        &[
            "apply",
            "-n",
            &ns,
            "-f",
            &examples.join("chatroom.yaml").to_string_lossy(),
        ],
        None,
    );
    let listed = kubectl_eventually(&["get", "ivschat", "-n", &ns, "-o", "name"], |out| {
        out.lines().count() == 2
    });
    assert_eq!(
        listed.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "chatroom.ivschat.dev/test-room-1",
            "chatloggingconfiguration.ivschat.dev/test-logging-config"
        ]),
    );
    // Short names resolve, and the table has the declared columns.
    let rooms = kubectl_ok(&["get", "chr", "-n", &ns], None);
    let header: Vec<&str> = rooms
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "ID", "READY", "REASON", "AGE"], "{rooms}");
    let configs = kubectl_ok(&["get", "chlc", "-n", &ns, "-o", "wide"], None);
    let header: Vec<&str> = configs
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "ID", "STATE", "READY", "AGE", "ARN", "REGION", "ACCOUNT"
        ],
        "{configs}"
    );
}

#[test]
fn defaults_are_applied_and_nulls_are_dropped() {
    let ns = namespace("defaults");
    let manifest = json!({
        "apiVersion": "ivschat.dev/v1alpha1",
        "kind": "ChatRoom",
        "metadata": { "name": "edges" },
        "spec": {
            // Lower and upper bounds, and the empty values AWS accepts.
            "name": "",
            "maximumMessageLength": 1,
            "maximumMessageRatePerSecond": 100,
            "messageReviewHandler": { "uri": "" },
            "loggingConfigurations": [
                { "name": "a" },
                { "name": "a.b-c" },
                { "arn": "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/ABcdef34ghIJ" }
            ],
            // 47 tags, a 128-character key and a 256-character (512-byte) value.
            "tags": (0..46)
                .map(|i| (format!("k{i:02}"), json!("")))
                .chain([("x".repeat(128), json!("é".repeat(256)))])
                .collect::<serde_json::Map<_, _>>(),
            // An explicit null means "omitted": pruned, so no CEL rule sees it, and then defaulted.
            "adoptArn": null,
            "deletionPolicy": null,
        }
    });
    let stored = kubectl_ok(
        &["create", "-n", &ns, "-o", "json", "-f", "-"],
        Some(&manifest.to_string()),
    );
    let room: ChatRoom =
        serde_json::from_str(&stored).unwrap_or_else(|err| panic!("{err}: {stored}"));
    assert_eq!(room.spec.deletion_policy, crd::DeletionPolicy::Delete);
    assert_eq!(room.spec.management_policy, crd::ManagementPolicy::Manage);
    assert_eq!(room.spec.adopt_arn, None);
    assert_eq!(room.spec.tags.len(), 47);
    assert_eq!(room.spec.effective_maximum_message_length(), 1);
    let raw: serde_json::Value = serde_json::from_str(&stored).expect("JSON from kubectl");
    assert!(raw["spec"].get("adoptArn").is_none(), "{raw}");
}

#[test]
fn every_invalid_manifest_is_rejected_with_a_message_naming_the_field() {
    let ns = namespace("invalid-manifests");
    let files = yaml_files("tests/invalid-manifests");
    assert!(
        files.len() >= 40,
        "the corpus has {} files, expected at least 40",
        files.len()
    );
    let mut failures = Vec::new();
    let mut update_cases = 0;
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let content = std::fs::read_to_string(file).expect("reading a corpus file");
        let expect = content
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name} does not start with `# expect: <fragment>`"))
            .trim()
            .to_owned();
        assert!(
            expect.contains("spec"),
            "{name}: the expected fragment {expect:?} does not name a field"
        );
        let documents: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&content)
            .map(|document| {
                serde::Deserialize::deserialize(document)
                    .unwrap_or_else(|err| panic!("{name}: {err}"))
            })
            .collect();
        let (setup, rejected) = match documents.as_slice() {
            [rejected] => (None, rejected),
            [setup, rejected] => (Some(setup), rejected),
            other => panic!("{name}: {} documents, expected 1 or 2", other.len()),
        };
        if let Some(setup) = setup {
            update_cases += 1;
            kubectl_ok(&["apply", "-n", &ns, "-f", "-"], Some(&setup.to_string()));
        }
        let mut command = control_plane().kubectl();
        command.args(["apply", "--dry-run=server", "-n", &ns, "-f", "-"]);
        let output = run(command, Some(&rejected.to_string()));
        let message = format!("{}{}", text(&output.stdout), text(&output.stderr));
        if output.status.success() {
            failures.push(format!(
                "{name}: accepted, expected a rejection with {expect:?}: {message}"
            ));
        } else if !message.contains(&expect) {
            failures.push(format!("{name}: rejected without {expect:?}: {message}"));
        }
    }
    assert!(update_cases >= 3, "only {update_cases} update cases");
    assert!(
        failures.is_empty(),
        "{} of {} manifests:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

fn condition(type_: &str, status: &str, reason: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: format!("{type_} is {status}"),
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
        observed_generation: Some(1),
    }
}

#[tokio::test]
async fn status_subresource_keeps_spec_and_status_apart() {
    let ns = namespace("status-subresource");
    let client = crds_installed().client().await.expect("a client");
    let rooms: Api<ChatRoom> = Api::namespaced(client, &ns);
    let spec = ChatRoomSpec {
        name: Some("status-room".into()),
        maximum_message_length: Some(256),
        ..ChatRoomSpec::default()
    };
    let created = rooms
        .create(
            &PostParams::default(),
            &ChatRoom::new("status-room", spec.clone()),
        )
        .await
        .expect("creating a ChatRoom");
    assert_eq!(created.meta().generation, Some(1));
    assert_eq!(created.status, None);

    // Two field managers each own one condition: the list-map merges them instead of replacing the list.
    let arn = "arn:aws:ivschat:us-west-2:123456789012:room/g1H2I3j4k5L6";
    let ready = ChatRoomStatus {
        arn: Some(arn.into()),
        id: Some("g1H2I3j4k5L6".into()),
        create_time: Some("2024-06-01T12:00:00.000Z".into()),
        update_time: Some("2024-06-01T12:00:00.000Z".into()),
        region: Some("us-west-2".into()),
        account_id: Some("123456789012".into()),
        observed_generation: Some(1),
        logging_configuration_arns: vec![
            "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/ABcdef34ghIJ".into(),
        ],
        managed_tag_keys: vec!["team".into()],
        create_attempt: None,
        conditions: vec![condition(CONDITION_READY, "True", "Synced")],
    };
    let status_patch = |status: &ChatRoomStatus| {
        Patch::Apply(json!({
            "apiVersion": ChatRoom::api_version(&()),
            "kind": ChatRoom::kind(&()),
            "status": status,
        }))
    };
    rooms
        .patch_status(
            "status-room",
            &PatchParams::apply("crd-test-a").force(),
            &status_patch(&ready),
        )
        .await
        .expect("patching status as manager a");
    let reconciling = ChatRoomStatus {
        conditions: vec![condition(CONDITION_RECONCILING, "False", "Idle")],
        ..ChatRoomStatus::default()
    };
    let after = rooms
        .patch_status(
            "status-room",
            &PatchParams::apply("crd-test-b").force(),
            &status_patch(&reconciling),
        )
        .await
        .expect("patching status as manager b");
    let status = after.status.clone().expect("a status");
    assert_eq!(status.arn.as_deref(), Some(arn));
    assert_eq!(status.logging_configuration_arns.len(), 1);
    let types: BTreeSet<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        BTreeSet::from([CONDITION_READY, CONDITION_RECONCILING])
    );
    assert_eq!(
        after.meta().generation,
        Some(1),
        "status writes do not bump the generation"
    );
    assert_eq!(after.spec, spec, "status writes do not touch the spec");

    // A spec write through the main resource ignores status and bumps the generation.
    let mut changed = after.clone();
    changed.spec.maximum_message_length = Some(300);
    changed.status = Some(ChatRoomStatus::default());
    let replaced = rooms
        .replace("status-room", &PostParams::default(), &changed)
        .await
        .expect("replacing the ChatRoom");
    assert_eq!(replaced.meta().generation, Some(2));
    assert_eq!(
        replaced.status,
        Some(status),
        "the main resource cannot change status"
    );

    // The printer columns read the status.
    let table = kubectl_ok(
        &["get", "chr", "status-room", "-n", &ns, "-o", "wide"],
        None,
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row.first().copied(), Some("status-room"), "{table}");
    assert_eq!(row.get(1).copied(), Some("g1H2I3j4k5L6"), "{table}");
    assert_eq!(row.get(2).copied(), Some("True"), "{table}");
    assert_eq!(row.get(3).copied(), Some("Synced"), "{table}");
    // -o wide: then the ARN, the region and the account id.
    assert_eq!(
        row[row.len().saturating_sub(3)..],
        [arn, "us-west-2", "123456789012"],
        "{table}"
    );
}
