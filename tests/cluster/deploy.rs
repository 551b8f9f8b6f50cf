//! The install artefacts against the real API server: the kustomize base and overlays and the Helm chart
//! are accepted by `kubectl apply --dry-run=server`, describe the same RBAC and Deployment, carry the CRDs
//! generated from the Rust types, and grant exactly what the operator needs: the controllers run a full
//! scenario as the deploy/ ServiceAccount (impersonation), and `kubectl auth can-i --as` shows what that
//! account cannot do. The IAM policies list exactly the ivschat operations the controllers call.

use ivschat_emulator::EmulatorConfig;
use ivschat_operator::controller::{self, Options};
use ivschat_operator::crd::{ChatLoggingConfiguration, ChatRoom};
use ivschat_operator::metrics::Metrics;
use ivschat_operator::run::{LogFormat, OperationsArgs, operate};
use ivschat_testsupport::cluster::{WAIT_FOR_CRDS, install_test_tracing};
use ivschat_testsupport::command::{repo_path, run, succeed, text};
use ivschat_testsupport::operator::test_timing;
use ivschat_testsupport::{apply, create_namespace, is_ready, status_arn, wait_for, wait_gone};
use ivschat_testsupport::{emulator, serial};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testenv::{ControlPlane, StartOptions};

const OPERATOR_NAMESPACE: &str = "ivschat-system";
/// The namespace the single-namespace overlay watches.
const WATCHED_NAMESPACE: &str = "chat";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:ivschat-system:ivschat-operator";
const SERVICE_ACCOUNT_GROUPS: [&str; 2] = [
    "system:serviceaccounts",
    "system:serviceaccounts:ivschat-system",
];
const WAIT: Duration = Duration::from_secs(30);

fn kubectl(args: &[&str]) -> Command {
    let mut command = control_plane().kubectl();
    command.args(args);
    command
}

/// The helm binary that hack/helm.sh builds (once per machine) and caches.
fn helm() -> Command {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    let path = HELM.get_or_init(|| {
        let mut script = Command::new("bash");
        script.arg(repo_path("hack/helm.sh"));
        PathBuf::from(succeed(script, None).trim())
    });
    let mut command = Command::new(path);
    // No user configuration or repositories leak into the tests.
    let home = std::env::temp_dir().join("ivschat-helm-home");
    command
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"));
    command
}

fn chart() -> String {
    repo_path("deploy/helm/ivschat-operator")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// `helm template RELEASE deploy/helm/ivschat-operator -n NAMESPACE --include-crds [--set ...]`.
fn helm_template(release: &str, namespace: &str, set: &[&str]) -> String {
    let mut command = helm();
    command.args([
        "template",
        release,
        &chart(),
        "--namespace",
        namespace,
        "--include-crds",
        "--kube-version",
        testenv::pinned_kubernetes_version().expect("pinned version"),
    ]);
    for value in set {
        command.args(["--set", value]);
    }
    succeed(command, None)
}

fn kustomize(dir: &str) -> String {
    succeed(
        kubectl(&["kustomize", repo_path(dir).to_str().expect("utf-8 path")]),
        None,
    )
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| {
            let value: Value = serde::Deserialize::deserialize(document).expect("valid YAML");
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn get<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(objects, kind, name).unwrap_or_else(|| {
        let present: Vec<String> = objects
            .iter()
            .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
            .collect();
        panic!("no {kind} {name} among {present:?}")
    })
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// This module's own control plane: its scenario runs the controllers cluster-wide (as the base install
/// does), and such an operator would reconcile the other modules' objects on the shared one.
fn control_plane() -> &'static ControlPlane {
    install_test_tracing();
    testenv::install_crypto_provider();
    static PRIVATE: OnceLock<ControlPlane> = OnceLock::new();
    PRIVATE.get_or_init(|| {
        ControlPlane::start(StartOptions::default()).expect("starting the deploy control plane")
    })
}

fn can_i(verb: &str, resource: &str, scope: &[&str]) -> bool {
    let mut args = vec!["auth", "can-i", verb, resource, "--as", SERVICE_ACCOUNT];
    for group in SERVICE_ACCOUNT_GROUPS {
        args.extend(["--as-group", group]);
    }
    args.extend_from_slice(scope);
    let output = run(kubectl(&args), None);
    // can-i prints yes/no and exits 0 for yes, 1 for no; anything else is a failed check.
    let answer = text(&output.stdout).trim().to_owned();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl {args:?}: {answer} {}",
        text(&output.stderr)
    );
    answer == "yes"
}

fn assert_allowed(verb: &str, resource: &str, scope: &[&str]) {
    assert!(
        can_i(verb, resource, scope),
        "the operator's ServiceAccount must be allowed to {verb} {resource} {scope:?}"
    );
}

fn assert_denied(verb: &str, resource: &str, scope: &[&str]) {
    assert!(
        !can_i(verb, resource, scope),
        "the operator's ServiceAccount must NOT be allowed to {verb} {resource} {scope:?}"
    );
}

/// What the operator may do in the watched namespace, in any install.
fn assert_allowed_in(namespace: &str) {
    let scope = ["-n", namespace];
    for resource in [
        "chatrooms.ivschat.dev",
        "chatloggingconfigurations.ivschat.dev",
    ] {
        for verb in ["list", "watch", "patch"] {
            assert_allowed(verb, resource, &scope);
        }
        // Everything else on its own kinds is refused: it never creates, replaces or deletes them.
        for verb in ["create", "update", "delete", "deletecollection", "get"] {
            assert_denied(verb, resource, &scope);
        }
        assert_allowed(
            "patch",
            resource,
            &["-n", namespace, "--subresource", "status"],
        );
        assert_denied(
            "update",
            resource,
            &["-n", namespace, "--subresource", "status"],
        );
    }
    assert_allowed("create", "events.events.k8s.io", &scope);
    assert_allowed("patch", "events.events.k8s.io", &scope);
    assert_denied("delete", "events.events.k8s.io", &scope);
    // ConfigMaps, for spec.export: its own watched by label, a name read before it is taken, written by
    // server-side apply (a create when new), deleted on their UID.
    for verb in ["get", "list", "watch", "create", "patch", "delete"] {
        assert_allowed(verb, "configmaps", &scope);
    }
}

/// What the operator may never do, in any install.
fn assert_never_allowed() {
    for scope in [
        &["-A"][..],
        &["-n", OPERATOR_NAMESPACE][..],
        &["-n", WATCHED_NAMESPACE][..],
    ] {
        for verb in ["get", "list", "watch", "create", "update", "delete"] {
            assert_denied(verb, "secrets", scope);
        }
        // ConfigMaps: exactly what assert_allowed_in grants where it watches, never more.
        for verb in ["update", "deletecollection"] {
            assert_denied(verb, "configmaps", scope);
        }
        for resource in [
            "pods",
            "services",
            "deployments.apps",
            "serviceaccounts",
            "roles.rbac.authorization.k8s.io",
            "customresourcedefinitions.apiextensions.k8s.io",
            "events",
        ] {
            for verb in ["get", "list", "create", "patch", "delete"] {
                assert_denied(verb, resource, scope);
            }
        }
    }
    // Leases only in its own namespace, and only its own Lease may be read or renewed.
    for namespace in ["default", WATCHED_NAMESPACE, "kube-system"] {
        for verb in ["get", "list", "create", "update", "patch", "delete"] {
            assert_denied(verb, "leases.coordination.k8s.io", &["-n", namespace]);
        }
    }
    let own = ["-n", OPERATOR_NAMESPACE];
    assert_allowed("create", "leases.coordination.k8s.io", &own);
    assert_allowed("get", "leases.coordination.k8s.io/ivschat-operator", &own);
    assert_allowed(
        "update",
        "leases.coordination.k8s.io/ivschat-operator",
        &own,
    );
    assert_denied("update", "leases.coordination.k8s.io/someone-else", &own);
    assert_denied("get", "leases.coordination.k8s.io/someone-else", &own);
    assert_denied(
        "delete",
        "leases.coordination.k8s.io/ivschat-operator",
        &own,
    );
    assert_denied("list", "leases.coordination.k8s.io", &own);
}

/// The control plane with both installs checked in turn: first the single-namespace overlay (applied for
/// real, its permissions checked), then the cluster-wide base on top of it, which the other tests use.
fn installed() -> &'static ControlPlane {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let control_plane = control_plane();
    INSTALLED.get_or_init(|| {
        for namespace in [OPERATOR_NAMESPACE, WATCHED_NAMESPACE] {
            let manifest =
                format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n");
            succeed(kubectl(&["apply", "-f", "-"]), Some(&manifest));
        }
        let overlay = repo_path("deploy/overlays/namespaced");
        succeed(
            kubectl(&["apply", "-k", overlay.to_str().expect("utf-8 path")]),
            None,
        );
        succeed(kubectl(&WAIT_FOR_CRDS), None);
        // The single-namespace install: its namespace and nothing cluster-wide.
        assert_allowed_in(WATCHED_NAMESPACE);
        for resource in [
            "chatrooms.ivschat.dev",
            "chatloggingconfigurations.ivschat.dev",
        ] {
            assert_denied("list", resource, &["-A"]);
            assert_denied("list", resource, &["-n", "default"]);
            assert_denied("patch", resource, &["-n", "default"]);
        }
        assert_denied("create", "events.events.k8s.io", &["-n", "default"]);
        for verb in ["get", "list", "create", "patch", "delete"] {
            assert_denied(verb, "configmaps", &["-A"]);
            assert_denied(verb, "configmaps", &["-n", "default"]);
            assert_denied(verb, "configmaps", &["-n", OPERATOR_NAMESPACE]);
        }
        assert_never_allowed();

        succeed(
            kubectl(&[
                "apply",
                "-k",
                repo_path("deploy").to_str().expect("utf-8 path"),
            ]),
            None,
        );
    });
    control_plane
}

#[test]
fn deploy_and_chart_crds_are_the_generated_crds() {
    let generated = ivschat_operator::crd::crds_yaml().expect("rendering the CRDs");
    for copy in [
        "crds/ivschat.dev.yaml",
        "deploy/base/crds.yaml",
        "deploy/helm/ivschat-operator/crds/ivschat.dev.yaml",
    ] {
        let committed = std::fs::read_to_string(repo_path(copy))
            .unwrap_or_else(|err| panic!("reading {copy}: {err}"));
        assert!(
            committed == generated,
            "{copy} differs from the CRDs generated from the Rust types: run `make crds`"
        );
    }
}

#[test]
fn kustomizations_are_accepted_by_the_api_server() {
    installed();
    for dir in [
        "deploy",
        "deploy/overlays/namespaced",
        "deploy/examples/irsa",
    ] {
        let path = repo_path(dir);
        let output = succeed(
            kubectl(&[
                "apply",
                "--dry-run=server",
                "-k",
                path.to_str().expect("utf-8 path"),
            ]),
            None,
        );
        assert!(output.contains("(server dry run)"), "{dir}: {output}");
    }
    let base = documents(&kustomize("deploy"));
    assert_eq!(
        kinds(&base),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "Namespace",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
        .map(str::to_owned)
        .into_iter()
        .collect()
    );
    let namespaced = documents(&kustomize("deploy/overlays/namespaced"));
    assert!(find(&namespaced, "ClusterRole", "ivschat-operator").is_none());
    assert!(find(&namespaced, "ClusterRoleBinding", "ivschat-operator").is_none());
    let args = &get(&namespaced, "Deployment", "ivschat-operator")["spec"]["template"]["spec"]["containers"]
        [0]["args"];
    assert!(
        args.as_array()
            .expect("args")
            .contains(&json!("--namespace=chat")),
        "{args}"
    );
    let irsa = documents(&kustomize("deploy/examples/irsa"));
    assert!(
        get(&irsa, "ServiceAccount", "ivschat-operator")["metadata"]["annotations"]
            ["eks.amazonaws.com/role-arn"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws:iam::"))
    );
}

#[test]
fn helm_chart_lints_renders_and_is_accepted_by_the_api_server() {
    installed();
    succeed(
        {
            let mut lint = helm();
            lint.args(["lint", "--strict", &chart()]);
            lint
        },
        None,
    );
    // Its own release name and namespace, so nothing collides with the kustomize install (a Deployment's
    // selector cannot change).
    for (namespace, set) in [
        ("helm-cluster", vec![]),
        (
            "helm-namespaced",
            vec![
                "watchNamespace=chat",
                "aws.region=us-west-2",
                "aws.endpointUrl=http://ivschat-emulator:4510",
                "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/ivschat-operator",
            ],
        ),
    ] {
        let manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n");
        succeed(kubectl(&["apply", "-f", "-"]), Some(&manifest));
        let rendered = helm_template("helm-ivschat-operator", namespace, &set);
        let output = succeed(
            kubectl(&["apply", "--dry-run=server", "-f", "-"]),
            Some(&rendered),
        );
        assert!(output.contains("(server dry run)"), "{output}");
        let objects = documents(&rendered);
        assert!(
            kinds(&objects).contains("CustomResourceDefinition"),
            "the chart's crds/ are rendered"
        );
    }
    // Several replicas without leader election would all reconcile: the chart refuses to render that.
    let mut unsafe_values = helm();
    unsafe_values.args([
        "template",
        "x",
        &chart(),
        "--set",
        "leaderElection.enabled=false",
    ]);
    let refused = run(unsafe_values, None);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("needs leaderElection.enabled=true"),
        "{}",
        text(&refused.stderr)
    );
    let single = documents(&helm_template(
        "ivschat-operator",
        OPERATOR_NAMESPACE,
        &["leaderElection.enabled=false", "replicaCount=1"],
    ));
    let args =
        get(&single, "Deployment", "ivschat-operator")["spec"]["template"]["spec"]["containers"][0]
            ["args"]
            .to_string();
    assert!(!args.contains("--leader-elect"), "{args}");
    assert!(find(&single, "Role", "ivschat-operator-leader-election").is_none());

    // The optional ServiceMonitor renders (its CRD belongs to prometheus-operator, absent here).
    let with_monitor = documents(&helm_template(
        "ivschat-operator",
        OPERATOR_NAMESPACE,
        &[
            "serviceMonitor.enabled=true",
            "serviceMonitor.labels.release=prometheus",
        ],
    ));
    let monitor = get(&with_monitor, "ServiceMonitor", "ivschat-operator");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let service = get(&with_monitor, "Service", "ivschat-operator-metrics");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "the ServiceMonitor selects the metrics Service"
        );
    }
}

/// The parts of an install that decide what the operator can do and how it runs.
fn essentials(objects: &[Value]) -> BTreeMap<String, Value> {
    let mut essentials = BTreeMap::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let key = format!("{kind} {namespace}/{name}");
        let value = match kind {
            "ClusterRole" | "Role" => object["rules"].clone(),
            "ClusterRoleBinding" | "RoleBinding" => {
                json!({"roleRef": object["roleRef"], "subjects": object["subjects"]})
            }
            "Deployment" => json!({
                "replicas": object["spec"]["replicas"],
                "pod": object["spec"]["template"]["spec"],
            }),
            "Service" => object["spec"]["ports"].clone(),
            "ServiceAccount" => json!({}),
            _ => continue,
        };
        essentials.insert(key, value);
    }
    essentials
}

fn assert_same(kustomize: &BTreeMap<String, Value>, helm: &BTreeMap<String, Value>) {
    assert_eq!(
        kustomize.keys().collect::<Vec<_>>(),
        helm.keys().collect::<Vec<_>>(),
        "the same objects"
    );
    for (key, value) in kustomize {
        assert_eq!(
            Some(value),
            helm.get(key),
            "{key} differs between kustomize and Helm"
        );
    }
}

#[test]
fn kustomize_and_helm_describe_the_same_rbac_and_deployment() {
    control_plane();
    let kustomize_base = essentials(&documents(&kustomize("deploy")));
    let helm_default = essentials(&documents(&helm_template(
        "ivschat-operator",
        OPERATOR_NAMESPACE,
        &[],
    )));
    assert!(kustomize_base.contains_key("ClusterRole /ivschat-operator"));
    assert!(kustomize_base.contains_key("Deployment ivschat-system/ivschat-operator"));
    assert_same(&kustomize_base, &helm_default);

    let kustomize_namespaced = essentials(&documents(&kustomize("deploy/overlays/namespaced")));
    let helm_namespaced = essentials(&documents(&helm_template(
        "ivschat-operator",
        OPERATOR_NAMESPACE,
        &["watchNamespace=chat"],
    )));
    assert!(kustomize_namespaced.contains_key("Role chat/ivschat-operator"));
    assert_same(&kustomize_namespaced, &helm_namespaced);

    // The hardening the issue asks for, stated once more so that a change to both files still fails here.
    let pod = &kustomize_base["Deployment ivschat-system/ivschat-operator"]["pod"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    for field in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][field][resource].is_string(),
                "resources.{field}.{resource}"
            );
        }
    }
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    // Every rule is explicit: no wildcard verbs, resources or groups.
    for (key, value) in kustomize_base.iter().chain(&kustomize_namespaced) {
        if key.starts_with("ClusterRole ") || key.starts_with("Role ") {
            for rule in value.as_array().expect("rules") {
                for field in ["verbs", "resources", "apiGroups"] {
                    assert!(
                        !rule[field].as_array().expect("list").contains(&json!("*")),
                        "{key}: wildcard in {field}"
                    );
                }
            }
        }
    }
}

#[test]
fn rbac_allows_what_the_operator_needs_and_nothing_more() {
    installed();
    for namespace in [WATCHED_NAMESPACE, "default", "any-namespace"] {
        assert_allowed_in(namespace);
    }
    for resource in [
        "chatrooms.ivschat.dev",
        "chatloggingconfigurations.ivschat.dev",
    ] {
        assert_allowed("list", resource, &["-A"]);
        assert_allowed("watch", resource, &["-A"]);
    }
    // ChatAccounts and Namespaces are read (which account permits which namespace), and only the
    // accounts' status is written (the role check): the operator never makes, changes or removes either.
    for resource in ["chataccounts.ivschat.dev", "namespaces"] {
        assert_allowed("list", resource, &[]);
        assert_allowed("watch", resource, &[]);
        for verb in ["create", "update", "patch", "delete"] {
            assert_denied(verb, resource, &[]);
        }
    }
    assert_allowed(
        "patch",
        "chataccounts.ivschat.dev",
        &["--subresource", "status"],
    );
    assert_denied(
        "update",
        "chataccounts.ivschat.dev",
        &["--subresource", "status"],
    );
    assert_never_allowed();
}

/// The AWS operations the controllers call, read from their source (`.create_room()` → `CreateRoom`), so
/// a new call without a policy update fails this test.
fn operations_called_by_the_controllers() -> BTreeSet<String> {
    let call = regex::Regex::new(r"\.((?:create|get|update|delete|list|tag|untag)_[a-z_]+)\(\)")
        .expect("regex");
    let mut operations = BTreeSet::new();
    // Every source file under src/controller, subdirectories (e.g. the driver's) included.
    let mut directories = vec![repo_path("src/controller")];
    let mut files = Vec::new();
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory).expect("src/controller") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                directories.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let source = std::fs::read_to_string(&path).expect("source");
        for capture in call.captures_iter(&source) {
            let pascal: String = capture[1]
                .split('_')
                .map(|word| {
                    let mut chars = word.chars();
                    chars
                        .next()
                        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect();
            operations.insert(pascal);
        }
    }
    // Calls on the Kubernetes API look alike; keep only IVS Chat operations.
    operations.retain(|op| ivschat_api::Operation::from_name(op).is_some());
    operations
}

fn policy_actions(file: &str) -> (BTreeSet<String>, Vec<Value>) {
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path(file)).unwrap_or_else(|err| panic!("{file}: {err}")),
    )
    .unwrap_or_else(|err| panic!("{file} is not JSON: {err}"));
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().expect("Statement").clone();
    let mut actions = BTreeSet::new();
    for statement in &statements {
        assert_eq!(statement["Effect"], "Allow");
        for action in statement["Action"].as_array().expect("Action list") {
            let action = action.as_str().expect("action");
            let operation = action
                .strip_prefix("ivschat:")
                .unwrap_or_else(|| panic!("{file}: {action} is not an ivschat action"));
            assert!(!operation.contains('*'), "{file}: wildcard action {action}");
            actions.insert(operation.to_owned());
        }
        let resources: Vec<&str> = match &statement["Resource"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            other => panic!("{file}: Resource {other}"),
        };
        // List calls have no resource-level permissions in IAM: they, and only they, need "*".
        let only_lists = statement["Action"]
            .as_array()
            .expect("Action list")
            .iter()
            .all(|action| {
                action
                    .as_str()
                    .is_some_and(|a| a.starts_with("ivschat:List"))
            });
        for resource in resources {
            assert!(
                resource == "arn:aws:ivschat:*:*:room/*"
                    || resource == "arn:aws:ivschat:*:*:logging-configuration/*"
                    || (resource == "*" && only_lists),
                "{file}: resource {resource} is not scoped to rooms or logging configurations"
            );
        }
    }
    (actions, statements)
}

#[test]
fn iam_policies_grant_exactly_the_ivschat_calls_the_operator_makes() {
    let called = operations_called_by_the_controllers();
    assert!(called.contains("CreateRoom") && called.contains("GetLoggingConfiguration"));
    let (full, statements) = policy_actions("deploy/iam-policy.json");
    assert_eq!(
        full, called,
        "deploy/iam-policy.json vs the controllers' calls"
    );
    // Room actions only on rooms, logging-configuration actions only on logging configurations.
    for statement in &statements {
        let resources = statement["Resource"].to_string();
        for action in statement["Action"].as_array().expect("actions") {
            let action = action.as_str().expect("action");
            if action.ends_with("Room") {
                assert!(!resources.contains("logging-configuration/"), "{action}");
            }
            if action.ends_with("LoggingConfiguration") {
                assert!(!resources.contains("room/"), "{action}");
            }
        }
    }
    let (observe, _) = policy_actions("deploy/iam-policy-observe-only.json");
    let reads: BTreeSet<String> = called
        .iter()
        .filter(|op| op.starts_with("Get") || op.starts_with("List"))
        .cloned()
        .collect();
    assert_eq!(observe, reads, "the observe-only policy is the read calls");
}

/// A ChatAccount's role: the operator's own role may assume it (and nothing else of STS), and the target
/// role trusts exactly the operator's role and only with the ChatAccount's external ID.
#[test]
fn the_chat_account_policies_allow_only_assuming_the_target_role_with_its_external_id() {
    let read = |file: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(repo_path(file)).expect(file)).expect(file)
    };
    let assume = read("deploy/iam-policy-assume-chat-accounts.json");
    let statements = assume["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Action"], "sts:AssumeRole");
    let role_arn = regex::Regex::new(ivschat_operator::crd::patterns::ROLE_ARN).expect("pattern");
    for resource in statements[0]["Resource"].as_array().expect("resources") {
        let resource = resource.as_str().expect("resource");
        assert!(
            role_arn.is_match(resource),
            "{resource} is a role ARN a ChatAccount accepts"
        );
    }
    let trust = read("deploy/iam-trust-policy-target-role.json");
    let statement = &trust["Statement"][0];
    assert_eq!(statement["Action"], "sts:AssumeRole");
    assert!(
        statement["Principal"]["AWS"]
            .as_str()
            .is_some_and(|principal| principal.ends_with(":role/ivschat-operator"))
    );
    assert!(statement["Condition"]["StringEquals"]["sts:ExternalId"].is_string());
    // The target role's own permissions are the operator's (deploy/iam-policy.json); the README says so.
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README");
    for file in [
        "deploy/iam-policy-assume-chat-accounts.json",
        "deploy/iam-trust-policy-target-role.json",
    ] {
        assert!(readme.contains(file), "the README explains {file}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// The controllers as the deploy/ ServiceAccount.

/// The operator's reporter name on events it published.
fn operator_events(events: &[Event], object: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
        .filter(|e| {
            e.reporting_controller
                .as_deref()
                .is_some_and(|c| c.starts_with("ivschat-operator"))
        })
        .filter_map(|e| e.reason.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_run_a_full_scenario_as_the_deploy_service_account() {
    let control_plane = installed();
    let _heavy = serial::beside_others().await;
    let _one_operator = OPERATOR_RUNNING.lock().await;
    let namespace = "rbac-scenario";
    let admin = control_plane.client().await.expect("admin client");
    create_namespace(&admin, namespace).await;
    let operator: Client = control_plane
        .client_as(SERVICE_ACCOUNT, &SERVICE_ACCOUNT_GROUPS)
        .await
        .expect("impersonating client");
    // Impersonation really is in effect: the account cannot read Secrets.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(operator.clone(), namespace);
    let refused = secrets.list(&ListParams::default()).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(status)) if status.code == 403),
        "{refused:?}"
    );

    let emulator = emulator::start(EmulatorConfig {
        logging_transition_delay: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    let aws = emulator.sdk_client();
    let emulator_client = emulator.sdk_client();
    // The production path of `run --leader-elect` (probes and metrics aside), cluster-wide like the base
    // install: the Lease in ivschat-system is created and renewed as the ServiceAccount.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operations = OperationsArgs {
        metrics_bind_address: None,
        health_probe_bind_address: None,
        leader_elect: true,
        leader_election_namespace: Some(OPERATOR_NAMESPACE.to_owned()),
        leader_election_lease_name: "ivschat-operator".to_owned(),
        leader_election_lease_duration: Duration::from_secs(3),
        log_format: LogFormat::Text,
    };
    let lease_client = operator.clone();
    let operator_task = tokio::spawn(async move {
        let aws = emulator_client;
        let metrics = Metrics::new();
        let controller_metrics = metrics.clone();
        operate(
            &operations,
            lease_client,
            &metrics,
            move |fence| {
                controller::start_with(
                    operator,
                    controller::aws::Aws::unlimited(aws).fenced_by(fence),
                    Options {
                        timing: test_timing(Duration::from_secs(2)),
                        metrics: controller_metrics,
                        namespace: None,
                        concurrency: 4,
                        ..Options::default()
                    },
                )
            },
            async move {
                let _ = stopped.await;
                Ok(())
            },
        )
        .await
    });
    let leases: Api<Lease> = Api::namespaced(admin.clone(), OPERATOR_NAMESPACE);
    let deadline = Instant::now() + WAIT;
    loop {
        let holder = leases
            .get_opt("ivschat-operator")
            .await
            .expect("reading the Lease")
            .and_then(|lease| lease.spec)
            .and_then(|spec| spec.holder_identity);
        if holder.is_some_and(|h| !h.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ServiceAccount never took the leader Lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let rooms: Api<ChatRoom> = Api::namespaced(admin.clone(), namespace);
    let configs: Api<ChatLoggingConfiguration> = Api::namespaced(admin.clone(), namespace);
    // A room that waits for its logging configuration, then both become Ready.
    apply(
        &rooms,
        "room",
        json!({"name": "rbac-room", "loggingConfigurations": [{"name": "logs"}], "tags": {"team": "chat"}}),
    )
    .await;
    apply(
        &configs,
        "logs",
        json!({"name": "rbac-logs", "destinationConfiguration": {"s3": {"bucketName": "demo-logging-bucket"}}}),
    )
    .await;
    let config = wait_for(&configs, "logs", "Ready", is_ready).await;
    let room = wait_for(&rooms, "room", "Ready", is_ready).await;
    let room_arn = status_arn(&room);
    let config_arn = status_arn(&config);
    let aws_room = aws
        .get_room()
        .identifier(&room_arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(aws_room.name(), Some("rbac-room"));
    assert_eq!(
        aws_room.logging_configuration_identifiers(),
        std::slice::from_ref(&config_arn)
    );

    // An update of the spec (with an export: the ServiceAccount watches, reads and creates ConfigMaps),
    // and drift corrected in AWS: each reported with an event.
    apply(
        &rooms,
        "room",
        json!({"name": "rbac-room-2", "maximumMessageLength": 200, "loggingConfigurations": [{"name": "logs"}], "export": {"configMapName": "rbac-room"}}),
    )
    .await;
    wait_for(&rooms, "room", "Ready after the update", is_ready).await;
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(admin.clone(), namespace);
    let exported_as = |key: &'static str| {
        let arn = room_arn.clone();
        move |config_map: &k8s_openapi::api::core::v1::ConfigMap| {
            config_map
                .data
                .as_ref()
                .is_some_and(|data| data.get(key) == Some(&arn))
        }
    };
    wait_for(
        &config_maps,
        "rbac-room",
        "exported",
        exported_as("ROOM_ARN"),
    )
    .await;
    aws.update_room()
        .identifier(&room_arn)
        .maximum_message_rate_per_second(3)
        .send()
        .await
        .expect("out-of-band UpdateRoom");
    let deadline = Instant::now() + WAIT;
    loop {
        let current = aws
            .get_room()
            .identifier(&room_arn)
            .send()
            .await
            .expect("GetRoom");
        if current.maximum_message_rate_per_second() == Some(10)
            && current.name() == Some("rbac-room-2")
        {
            assert_eq!(current.maximum_message_length(), Some(200));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drift not corrected: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events_api: Api<Event> = Api::namespaced(admin.clone(), namespace);
    let deadline = Instant::now() + WAIT;
    loop {
        let events = events_api
            .list(&ListParams::default())
            .await
            .expect("events")
            .items;
        let reasons = operator_events(&events, "room");
        if reasons.len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the operator published no events as its ServiceAccount: {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A renamed key: the ServiceAccount patches its ConfigMap (server-side apply).
    apply(
        &rooms,
        "room",
        json!({"name": "rbac-room-2", "maximumMessageLength": 200, "loggingConfigurations": [{"name": "logs"}], "export": {"configMapName": "rbac-room", "keys": {"ROOM_ARN": "CHAT_ROOM_ARN"}}}),
    )
    .await;
    wait_for(
        &config_maps,
        "rbac-room",
        "renamed",
        exported_as("CHAT_ROOM_ARN"),
    )
    .await;

    // Deletion: finalizers removed, AWS resources gone, the export deleted by the ServiceAccount.
    rooms
        .delete("room", &DeleteParams::default())
        .await
        .expect("deleting the room");
    configs
        .delete("logs", &DeleteParams::default())
        .await
        .expect("deleting the configuration");
    wait_gone(&rooms, "room").await;
    wait_gone(&configs, "logs").await;
    assert!(aws.get_room().identifier(&room_arn).send().await.is_err());
    assert!(
        config_maps
            .get_opt("rbac-room")
            .await
            .expect("reading")
            .is_none(),
        "the export outlived its room"
    );
    assert!(
        aws.get_logging_configuration()
            .identifier(&config_arn)
            .send()
            .await
            .is_err()
    );
    assert!(
        !operator_task.is_finished(),
        "the controllers ended on their own"
    );
    let _ = stop.send(());
    operator_task
        .await
        .expect("the operator task")
        .expect("a clean stop");
    // Released on the way out, as the ServiceAccount.
    let released = leases
        .get("ivschat-operator")
        .await
        .expect("the Lease")
        .spec
        .and_then(|spec| spec.holder_identity);
    assert!(
        released.as_deref().is_none_or(str::is_empty),
        "{released:?}"
    );
    let _ = emulator.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// GitOps: Argo CD's view of the operator's status.

/// Tests that run the controllers one at a time: two cluster-wide operators would race for the same objects.
static OPERATOR_RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// deploy/gitops/argocd-health.lua evaluated by gopher-lua (the interpreter Argo CD embeds), built by
/// hack/argocd-health.sh: (status, message).
fn argocd_health(object: &Value) -> (String, String) {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    let tool = TOOL.get_or_init(|| {
        let mut script = Command::new("bash");
        script.arg(repo_path("hack/argocd-health.sh"));
        PathBuf::from(succeed(script, None).trim())
    });
    let mut command = Command::new(tool);
    command.arg(repo_path("deploy/gitops/argocd-health.lua"));
    let output = succeed(command, Some(&object.to_string()));
    let result: Value = serde_json::from_str(&output).expect("the tool prints JSON");
    (
        result["status"].as_str().unwrap_or_default().to_owned(),
        result["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn the_argocd_configmap_carries_the_tested_health_script() {
    let script = std::fs::read_to_string(repo_path("deploy/gitops/argocd-health.lua"))
        .expect("the health script");
    let configmap: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_path("deploy/gitops/argocd-cm.yaml"))
            .expect("argocd-cm.yaml"),
    )
    .expect("YAML");
    for kind in ["ChatRoom", "ChatLoggingConfiguration"] {
        let key = format!("resource.customizations.health.ivschat.dev_{kind}");
        assert_eq!(
            configmap["data"][&key].as_str(),
            Some(script.as_str()),
            "{key} must be deploy/gitops/argocd-health.lua"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_health_reads_the_statuses_the_operator_writes() {
    let control_plane = installed();
    let _heavy = serial::beside_others().await;
    let _one_operator = OPERATOR_RUNNING.lock().await;
    let namespace = "argocd-health";
    let admin = control_plane.client().await.expect("admin client");
    create_namespace(&admin, namespace).await;
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let operator = control_plane
        .client_as(SERVICE_ACCOUNT, &SERVICE_ACCOUNT_GROUPS)
        .await
        .expect("impersonating client");
    let handle = controller::start(
        operator,
        emulator.sdk_client(),
        Options {
            timing: test_timing(Duration::from_secs(30)),
            namespace: Some(namespace.to_owned()),
            concurrency: 4,
            ..Options::default()
        },
    );
    let rooms: Api<ChatRoom> = Api::namespaced(admin.clone(), namespace);
    let configs: Api<ChatLoggingConfiguration> = Api::namespaced(admin.clone(), namespace);
    // Healthy: Ready for the current generation.
    apply(
        &configs,
        "logs",
        json!({"destinationConfiguration": {"s3": {"bucketName": "argo-bucket"}}}),
    )
    .await;
    let config = wait_for(&configs, "logs", "Ready", is_ready).await;
    let (status, message) = argocd_health(&as_json(&config));
    assert_eq!(status, "Healthy", "{message}");

    // Progressing: waiting for a reference.
    apply(
        &rooms,
        "waiting",
        json!({"loggingConfigurations": [{"name": "absent"}]}),
    )
    .await;
    let waiting = wait_for(&rooms, "waiting", "waiting", |room: &ChatRoom| {
        serde_json::to_string(room)
            .is_ok_and(|text| text.contains("WaitingForLoggingConfiguration"))
    })
    .await;
    let (status, message) = argocd_health(&as_json(&waiting));
    assert_eq!(status, "Progressing");
    assert!(
        message.contains("WaitingForLoggingConfiguration"),
        "{message}"
    );

    // Degraded: a spec AWS rejects is Stalled.
    apply(
        &rooms,
        "rejected",
        json!({"loggingConfigurations": [{"arn": "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/doesNotExist"}]}),
    )
    .await;
    let rejected = wait_for(&rooms, "rejected", "Stalled", |room: &ChatRoom| {
        serde_json::to_value(room).is_ok_and(|value| {
            value["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Stalled" && c["status"] == "True")
            })
        })
    })
    .await;
    let (status, message) = argocd_health(&as_json(&rejected));
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("InvalidSpec"), "{message}");

    // Progressing: a new spec the operator has not observed yet; no status at all yet.
    let mut newer = as_json(&config);
    newer["metadata"]["generation"] = json!(config.metadata.generation.unwrap_or(1) + 1);
    assert_eq!(argocd_health(&newer).0, "Progressing");
    let mut fresh = as_json(&config);
    fresh["status"] = Value::Null;
    assert_eq!(argocd_health(&fresh).0, "Progressing");

    // Suspended: paused.
    let mut paused = as_json(&config);
    paused["metadata"]["annotations"] = json!({"ivschat.dev/paused": "true"});
    assert_eq!(argocd_health(&paused).0, "Suspended");

    handle.stop().await.expect("stopping the operator");
    let _ = emulator.stop().await;
}

fn as_json<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("serialisable")
}

// ---------------------------------------------------------------------------------------------------------
// Documentation that cannot drift: every flag and every chart value is in the README.

#[test]
fn every_run_flag_and_chart_value_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    let mut help = Command::new(env!("CARGO_BIN_EXE_ivschat-operator"));
    help.args(["run", "--help"]);
    let help = succeed(help, None);
    let flag = regex::Regex::new(r"--([a-z][a-z-]+)").expect("regex");
    let flags: BTreeSet<String> = flag
        .captures_iter(&help)
        .map(|c| c[1].to_owned())
        .filter(|f| f != "help")
        .collect();
    assert!(flags.contains("leader-elect") && flags.contains("metrics-bind-address"));
    for name in &flags {
        assert!(
            readme.contains(&format!("`--{name}`")),
            "README.md does not document --{name}"
        );
    }

    let values: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_path("deploy/helm/ivschat-operator/values.yaml"))
            .expect("values.yaml"),
    )
    .expect("values.yaml is YAML");
    // Free-form maps are documented as a whole.
    const WHOLE: [&str; 1] = ["resources"];
    fn leaves(prefix: &str, value: &Value, out: &mut Vec<String>) {
        match value.as_object() {
            Some(map) if !map.is_empty() && !WHOLE.contains(&prefix) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    leaves(&path, child, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut paths = Vec::new();
    leaves("", &values, &mut paths);
    assert!(paths.contains(&"leaderElection.leaseName".to_owned()));
    for path in paths {
        assert!(
            readme.contains(&format!("`{path}`")),
            "README.md does not document the chart value {path}"
        );
    }
}

#[test]
fn the_image_uses_the_documented_release_build_and_the_deployments_user() {
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).expect("Dockerfile");
    let makefile = std::fs::read_to_string(repo_path("Makefile")).expect("Makefile");
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    let stages = dockerfile
        .lines()
        .filter(|line| line.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "a multi-stage build");
    assert!(
        dockerfile.contains("make release"),
        "the Dockerfile builds with make release"
    );
    let release_recipe = makefile
        .split("\nrelease:\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("a release target in the Makefile");
    assert!(
        release_recipe.contains("build --release --locked"),
        "{release_recipe}"
    );
    assert!(readme.contains("`make release`"));
    // The final stage runs as the user the Deployment requires.
    let final_stage = dockerfile.rsplit("\nFROM ").next().expect("final stage");
    assert!(final_stage.contains("USER 65532:65532"), "{final_stage}");
    let base = documents(
        &std::fs::read_to_string(repo_path("deploy/base/deployment.yaml")).expect("deployment"),
    );
    let pod = &base[0]["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod["runAsUser"], 65532);
    assert_eq!(pod["runAsGroup"], 65532);
}
