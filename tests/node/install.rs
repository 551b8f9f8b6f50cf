//! The operator installed on the node as a user installs it: `kubectl apply -k` of deploy/ (and of its
//! namespaced overlay) with only the image and the AWS endpoint patched, and `helm install` of the chart.
//! The image is the test build of the operator packed by hack/image.py (the `make image` builder) and
//! imported into the node's containerd (`imagePullPolicy: Never`: there is no registry); AWS is the
//! emulator, in this process, listening on the node's address so Pods reach it.
//!
//! Nothing here stands in for the kubelet or the API server: probes, the security context, the projected
//! token, Services and leader election all run for real, and the checks read what they did (the kernel's
//! view of the container process, the kubelet's prober metrics, the emulator's per-client request log).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_testsupport::command::{ProcessState, process_state, repo_path, run, succeed, text};
use ivschat_testsupport::emulator::{self, WRITE_OPERATIONS};
use serde_json::Value;
use testenv::{ControlPlane, StartOptions};

use crate::host;

/// The image the tests install, and the one an upgrade starts from: the same build under two names, so
/// the Deployment really rolls from one image reference to another.
const IMAGE: &str = "docker.io/library/ivschat-operator:e2e";
const PREVIOUS_IMAGE: &str = "docker.io/library/ivschat-operator:e2e-previous";
/// The namespace deploy/ installs into, and the one the namespaced overlay watches.
const SYSTEM_NAMESPACE: &str = "ivschat-system";
const WATCHED_NAMESPACE: &str = "chat";
/// The README: a stopping leader releases its Lease, so a standby takes over "within one retry period"
/// (2/15 of the default 15 s lease = 2 s); the rest is the kubelet delivering SIGTERM.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(6);
/// How long the liveness probe must keep passing (it runs every 10 s).
const LIVENESS_SPAN: Duration = Duration::from_secs(150);

/// The node, its control plane, the emulator on the node's address and the imported images.
pub struct Cluster {
    control_plane: ControlPlane,
    runtime: tokio::runtime::Runtime,
    emulator: Emulator,
    scratch: PathBuf,
}

impl Cluster {
    /// # Panics
    /// When the node, the emulator or the images cannot be set up.
    pub fn start() -> Cluster {
        let control_plane = ControlPlane::start(StartOptions {
            with_node: true,
            ..StartOptions::default()
        })
        .unwrap_or_else(|err| panic!("starting a control plane with a node: {err:#}"));
        eprintln!(
            "node: control plane and node ready in {:.1} s",
            control_plane.startup_duration().as_secs_f64()
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let address = format!("{}:0", testenv::node::NODE_IP);
        let emulator = runtime
            .block_on(Emulator::start(
                address.parse().expect("address"),
                EmulatorConfig::default(),
            ))
            .expect("starting the emulator on the node's address");
        let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("node-tier");
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).expect("scratch dir");
        let cluster = Cluster {
            control_plane,
            runtime,
            emulator,
            scratch,
        };
        cluster.import_images();
        cluster
    }

    pub fn startup_seconds(&self) -> f64 {
        self.control_plane.startup_duration().as_secs_f64()
    }

    /// The operator binary of this build, stripped (a smaller layer), packed by hack/image.py under both
    /// names and imported into the node's containerd.
    fn import_images(&self) {
        let binary = self.scratch.join("ivschat-operator");
        let mut strip = Command::new("strip");
        strip
            .arg("-o")
            .arg(&binary)
            .arg(env!("CARGO_BIN_EXE_ivschat-operator"));
        succeed(strip, None);
        for name in [IMAGE, PREVIOUS_IMAGE] {
            let archive = self.scratch.join(format!(
                "{}.oci.tar",
                name.rsplit(':').next().unwrap_or("image")
            ));
            let mut build = Command::new("python3");
            build
                .arg(repo_path("hack/image.py"))
                .arg("--binary")
                .arg(&binary)
                .arg("--name")
                .arg(name)
                .arg("--output")
                .arg(&archive);
            succeed(build, None);
            testenv::node::import_image(&archive).unwrap_or_else(|err| panic!("{err:#}"));
        }
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut command = self.control_plane.kubectl();
        command.args(args);
        succeed(command, None)
    }

    fn kubectl_stdin(&self, args: &[&str], input: &str) -> String {
        let mut command = self.control_plane.kubectl();
        command.args(args);
        succeed(command, Some(input))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl -o json")
    }

    fn endpoint(&self) -> String {
        self.emulator.url()
    }

    /// The environment that points the operator at the emulator (its static credentials), as a user sets
    /// the region, endpoint and credentials of any AWS client.
    fn aws_env(&self) -> Vec<(&'static str, String)> {
        let config = self.emulator.config();
        vec![
            ("AWS_ACCESS_KEY_ID", config.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", config.secret_access_key.clone()),
            ("AWS_REGION", config.region.clone()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// A kustomization in the scratch dir over `base` (a repository path such as `deploy`): the image set to
    /// `image` with `imagePullPolicy: Never`, and the AWS environment added. kustomize only accepts
    /// relative paths to other kustomizations, hence the `../` walk to the repository.
    fn overlay(&self, name: &str, base: &str, image: &str) -> PathBuf {
        let dir = self.scratch.join(name);
        std::fs::create_dir_all(&dir).expect("overlay dir");
        let (image_name, tag) = image.rsplit_once(':').expect("a tagged image");
        let mut env_ops = String::new();
        for (variable, value) in self.aws_env() {
            env_ops.push_str(&format!(
                "      - op: add\n        path: /spec/template/spec/containers/0/env/-\n        value: {{name: {variable}, value: \"{value}\"}}\n"
            ));
        }
        let kustomization = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\nimages:\n  - name: ivschat-operator\n    newName: {image_name}\n    newTag: {tag}\npatches:\n  - target: {{kind: Deployment, name: ivschat-operator}}\n    patch: |-\n      - op: replace\n        path: /spec/template/spec/containers/0/imagePullPolicy\n        value: Never\n{env_ops}",
            relative(&dir, &repo_path(base)).display()
        );
        std::fs::write(dir.join("kustomization.yaml"), kustomization).expect("writing the overlay");
        dir
    }

    /// Waits until the Deployment has rolled out completely and is Available.
    fn wait_rolled_out(&self, namespace: &str, deployment: &str) {
        let mut rollout = self.control_plane.kubectl();
        rollout.args([
            "-n",
            namespace,
            "rollout",
            "status",
            &format!("deployment/{deployment}"),
            "--timeout=240s",
        ]);
        let output = run(rollout, None);
        if !output.status.success() {
            let mut describe = self.control_plane.kubectl();
            describe.args(["-n", namespace, "describe", "pods"]);
            panic!(
                "deployment {namespace}/{deployment} did not roll out: {}\n{}\n{}",
                text(&output.stderr),
                text(&run(describe, None).stdout),
                node_logs()
            );
        }
        self.kubectl(&[
            "-n",
            namespace,
            "wait",
            "--for=condition=Available",
            "--timeout=60s",
            &format!("deployment/{deployment}"),
        ]);
    }

    /// The Deployment's running pods (not terminating).
    fn pods(&self, namespace: &str, selector: &str) -> Vec<Value> {
        let list = self.json(&["-n", namespace, "get", "pods", "-l", selector]);
        list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
            .collect()
    }

    /// The pod name of the Lease's holder (the identity is `POD_NAME_suffix`), once someone holds it.
    fn leader(&self, namespace: &str, lease: &str) -> Option<String> {
        let mut command = self.control_plane.kubectl();
        command.args([
            "-n",
            namespace,
            "get",
            "lease",
            lease,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        let output = run(command, None);
        let identity = text(&output.stdout);
        let identity = identity.trim();
        (output.status.success() && !identity.is_empty()).then(|| {
            identity
                .rsplit_once('_')
                .map_or(identity, |(pod, _)| pod)
                .to_string()
        })
    }

    /// The Lease's holder once it is one of the Deployment's running pods (a Lease released by a pod of an
    /// earlier ReplicaSet may still name it) and not `not`.
    fn wait_for_leader(
        &self,
        namespace: &str,
        lease: &str,
        not: Option<&str>,
        within: Duration,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let running =
                pod_names(&self.pods(namespace, "app.kubernetes.io/name=ivschat-operator"));
            if let Some(leader) = self
                .leader(namespace, lease)
                .filter(|leader| Some(leader.as_str()) != not && running.contains(leader))
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no new holder of Lease {namespace}/{lease} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Applies a ChatLoggingConfiguration and a ChatRoom that refers to it by name in `namespace`.
    fn apply_room(&self, namespace: &str, room: &str, logging: Option<&str>) {
        let mut yaml = String::new();
        if let Some(logging) = logging {
            yaml.push_str(&format!(
                "apiVersion: ivschat.dev/v1alpha1\nkind: ChatLoggingConfiguration\nmetadata: {{name: {logging}, namespace: {namespace}}}\nspec:\n  name: {logging}\n  destinationConfiguration: {{s3: {{bucketName: e2e-chat-logs}}}}\n---\n"
            ));
        }
        yaml.push_str(&format!(
            "apiVersion: ivschat.dev/v1alpha1\nkind: ChatRoom\nmetadata: {{name: {room}, namespace: {namespace}}}\nspec:\n  name: {room}\n  maximumMessageLength: 256\n"
        ));
        if let Some(logging) = logging {
            yaml.push_str(&format!("  loggingConfigurations: [{{name: {logging}}}]\n"));
        }
        self.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    }

    fn wait_ready(&self, namespace: &str, resource: &str) {
        self.kubectl(&[
            "-n",
            namespace,
            "wait",
            "--for=condition=Ready",
            "--timeout=120s",
            resource,
        ]);
    }

    fn create_namespace(&self, namespace: &str) {
        self.kubectl_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n"),
        );
    }

    /// Rooms in the emulator with this name.
    fn rooms_named(&self, name: &str) -> usize {
        let rooms = self
            .runtime
            .block_on(emulator::all_rooms(&self.emulator.sdk_client()));
        rooms
            .iter()
            .filter(|room| room.name() == Some(name))
            .count()
    }

    /// The app names (pod names) of the callers of write operations since the emulator's log began.
    fn writers(&self) -> BTreeSet<String> {
        self.emulator
            .requests()
            .iter()
            .filter(|record| WRITE_OPERATIONS.contains(&record.operation))
            .map(|record| record.app.as_deref().unwrap_or("(none)").to_string())
            .collect()
    }

    /// Every caller's app name (any operation).
    fn callers(&self) -> BTreeSet<String> {
        self.emulator
            .requests()
            .iter()
            .map(|record| record.app.as_deref().unwrap_or("(none)").to_string())
            .collect()
    }

    fn creates(&self, operation: &str) -> usize {
        self.emulator
            .requests()
            .iter()
            .filter(|record| record.operation == operation && record.outcome == "success")
            .count()
    }

    /// Removes whatever an earlier test left behind when it failed half-way (its install, its ChatRooms,
    /// their finalizers that no operator will remove any more), so each test starts on an empty cluster.
    pub fn clean_slate(&self) {
        let quiet = |args: &[&str]| {
            let mut command = self.control_plane.kubectl();
            command.args(args);
            run(command, None)
        };
        for kind in ["chatrooms", "chatloggingconfigurations"] {
            let listed = quiet(&[
                "get",
                kind,
                "-A",
                "-o",
                "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
            ]);
            for object in text(&listed.stdout).split_whitespace() {
                if let Some((namespace, name)) = object.split_once('/') {
                    quiet(&[
                        "-n",
                        namespace,
                        "patch",
                        kind,
                        name,
                        "--type=merge",
                        "-p",
                        r#"{"metadata":{"finalizers":null}}"#,
                    ]);
                }
            }
        }
        let namespaces = quiet(&[
            "get",
            "namespaces",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        for namespace in text(&namespaces.stdout).split_whitespace() {
            if namespace.starts_with("chat") || namespace.starts_with("ivschat-") {
                quiet(&["delete", "namespace", namespace, "--timeout=120s"]);
            }
        }
        quiet(&[
            "delete",
            "crd",
            "chatrooms.ivschat.dev",
            "chatloggingconfigurations.ivschat.dev",
            "--ignore-not-found",
        ]);
        quiet(&[
            "delete",
            "clusterrole,clusterrolebinding",
            "-l",
            "app.kubernetes.io/name=ivschat-operator",
            "--ignore-not-found",
        ]);
        self.emulator.reset_metrics();
    }

    /// Deletes the ChatRooms' namespaces while the operator still runs (its finalizers delete the AWS
    /// resources), then the install itself.
    fn uninstall(&self, app_namespaces: &[&str], uninstall: &[&str]) {
        // The objects first, while the operator still runs and may still remove their finalizers; then
        // the install; then the namespaces. Deleting the namespace of the namespaced install first would
        // delete the operator's Role in it together with the objects, and their finalizers would stay.
        for namespace in app_namespaces {
            self.kubectl(&[
                "-n",
                namespace,
                "delete",
                "chatrooms,chatloggingconfigurations",
                "--all",
                "--timeout=180s",
            ]);
        }
        self.kubectl(uninstall);
        for namespace in app_namespaces {
            self.kubectl(&[
                "delete",
                "namespace",
                namespace,
                "--ignore-not-found",
                "--timeout=180s",
            ]);
        }
    }
}

/// The last lines of the node components' logs, for a failure message.
fn node_logs() -> String {
    let mut out = String::new();
    for name in [
        "kubelet",
        "containerd",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ] {
        let path = format!("/var/lib/ivschat-operator-node/{name}.log");
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        out.push_str(&format!(
            "--- last lines of {path}\n{}\n",
            lines[lines.len().saturating_sub(25)..].join("\n")
        ));
    }
    out
}

/// `to` as a path relative to the directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for component in &to[common..] {
        path.push(component);
    }
    path
}

/// The host's view of a container: its main process, found by the container id in its cgroup path.
fn container_process(container_id: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cgroups = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if cgroups.contains(container_id) && comm.trim() == "ivschat-operato" {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no process of container {container_id} on the host"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the kernel says about a container's main process: uid and gid (real, effective, saved, fs), its
/// capability sets, no_new_privs, and whether its root filesystem is mounted read-only.
fn assert_locked_down(pod: &Value) {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .and_then(|id| id.strip_prefix("containerd://"))
        .unwrap_or_else(|| panic!("pod {name} has no containerd container id"));
    let pid = container_process(id);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |key: &str| -> String {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(field("Uid:"), "65532 65532 65532 65532", "pod {name}: uids");
    assert_eq!(field("Gid:"), "65532 65532 65532 65532", "pod {name}: gids");
    // The runtime adds the primary group as a supplementary one; root's group must not be there.
    assert!(
        field("Groups:")
            .split(' ')
            .all(|group| group.is_empty() || group == "65532"),
        "pod {name}: groups {}",
        field("Groups:")
    );
    for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(
            field(set),
            "0000000000000000",
            "pod {name}: {set} (capabilities.drop ALL)"
        );
    }
    assert_eq!(
        field("NoNewPrivs:"),
        "1",
        "pod {name}: allowPrivilegeEscalation false"
    );
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let root = mountinfo
        .lines()
        .find(|line| line.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("pod {name}: no root mount"));
    let options = root.split(' ').nth(5).unwrap_or("");
    assert!(
        options.split(',').any(|option| option == "ro"),
        "pod {name}: root filesystem mounted {options}"
    );
    // The binary that runs is the image's, at the Dockerfile's path.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert_eq!(
        exe,
        Path::new("/usr/local/bin/ivschat-operator"),
        "pod {name}: executable"
    );
}

/// Every pod is Ready (its readiness probe passed, as the kubelet reports it) and never restarted.
fn assert_ready_and_never_restarted(pods: &[Value], replicas: usize) {
    assert_eq!(pods.len(), replicas, "running pods: {pods:#?}");
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or("?");
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|condition| condition["type"] == "Ready" && condition["status"] == "True");
        assert!(ready, "pod {name} not Ready: {:#}", pod["status"]);
        assert_eq!(
            pod["status"]["containerStatuses"][0]["restartCount"], 0,
            "pod {name} restarted"
        );
    }
}

fn pod_names(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// The kubelet's own count of probe results for a pod (`/metrics/probes`, through the API server's node
/// proxy): proof that it ran the probes, and how they ended.
fn probe_results(cluster: &Cluster, pod: &str, probe_type: &str) -> (f64, f64) {
    let metrics = cluster.kubectl(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/nodes/{}/proxy/metrics/probes",
            testenv::node::NODE_NAME
        ),
    ]);
    let mut successes = 0.0;
    let mut failures = 0.0;
    for (series, value) in ivschat_testsupport::metrics::samples(&metrics) {
        if !series.starts_with("prober_probe_total{")
            || ivschat_testsupport::metrics::label(&series, "pod") != Some(pod)
            || ivschat_testsupport::metrics::label(&series, "probe_type") != Some(probe_type)
        {
            continue;
        }
        match ivschat_testsupport::metrics::label(&series, "result") {
            Some("successful") => successes += value,
            _ => failures += value,
        }
    }
    (successes, failures)
}

/// `/metrics` of the operator through its Service (the API server's service proxy picks an endpoint, as
/// Prometheus' service discovery would reach each pod), until a scrape satisfies `done`.
fn scrape_until(
    cluster: &Cluster,
    namespace: &str,
    service: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) {
    let path =
        format!("/api/v1/namespaces/{namespace}/services/http:{service}:metrics/proxy/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut command = cluster.control_plane.kubectl();
        command.args(["get", "--raw", &path]);
        let output = run(command, None);
        if output.status.success() && done(&text(&output.stdout)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape of service {namespace}/{service} showed {what}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn metric(metrics: &str, series: &str) -> f64 {
    ivschat_testsupport::metrics::samples(metrics)
        .into_iter()
        .find(|(name, _)| name == series)
        .map_or(0.0, |(_, value)| value)
}

const OPERATOR_SELECTOR: &str =
    "app.kubernetes.io/name=ivschat-operator,app.kubernetes.io/component=operator";

pub fn kustomize_install_runs_two_ready_locked_down_replicas_that_reconcile_and_fail_over(
    cluster: &Cluster,
) {
    cluster.emulator.reset_metrics();
    let overlay = cluster.overlay("kustomize", "deploy", IMAGE);
    let overlay_arg = overlay.to_string_lossy().into_owned();
    let installed = Instant::now();
    cluster.kubectl(&["apply", "-k", &overlay_arg]);
    cluster.wait_rolled_out(SYSTEM_NAMESPACE, "ivschat-operator");
    eprintln!(
        "kustomize install Available in {:.1} s",
        installed.elapsed().as_secs_f64()
    );
    let pods = cluster.pods(SYSTEM_NAMESPACE, OPERATOR_SELECTOR);
    assert_ready_and_never_restarted(&pods, 2);
    for pod in &pods {
        assert_locked_down(pod);
        assert_eq!(pod["spec"]["containers"][0]["image"], IMAGE);
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Never");
        // The in-cluster configuration: the projected service-account token, nothing else.
        let mounts = pod["spec"]["containers"][0]["volumeMounts"].to_string();
        assert!(
            mounts.contains("/var/run/secrets/kubernetes.io/serviceaccount"),
            "{mounts}"
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "ivschat-operator");
    }
    let names = pod_names(&pods);

    // Reconciling through the in-cluster config and the deploy/ RBAC, against the emulator.
    let leader = cluster.wait_for_leader(
        SYSTEM_NAMESPACE,
        "ivschat-operator",
        None,
        Duration::from_secs(60),
    );
    assert!(
        names.contains(&leader),
        "leader {leader} is not one of {names:?}"
    );
    let standby = names
        .iter()
        .find(|name| **name != leader)
        .expect("a standby")
        .clone();
    // The kubelet's API through the API server, as a user debugging an install uses it: the leader's log
    // says it leads, and a command runs in the container (the image has no shell, the binary is there).
    let logs = cluster.kubectl(&["-n", SYSTEM_NAMESPACE, "logs", &leader]);
    assert!(
        logs.contains("became the leader"),
        "the leader's log:\n{logs}"
    );
    let version = cluster.kubectl(&[
        "-n",
        SYSTEM_NAMESPACE,
        "exec",
        &standby,
        "--",
        "/usr/local/bin/ivschat-operator",
        "--version",
    ]);
    assert!(version.starts_with("ivschat-operator "), "{version}");
    let app_namespace = "chat-e2e";
    cluster.create_namespace(app_namespace);
    cluster.apply_room(app_namespace, "room-one", Some("logs-one"));
    cluster.wait_ready(app_namespace, "chatloggingconfiguration/logs-one");
    cluster.wait_ready(app_namespace, "chatroom/room-one");
    assert_eq!(cluster.rooms_named("room-one"), 1);
    assert_eq!(
        cluster.writers(),
        BTreeSet::from([leader.clone()]),
        "only the leader writes to AWS"
    );
    assert!(
        !cluster.callers().contains(&standby),
        "the standby {standby} called AWS"
    );

    // The metrics Service, scraped through the cluster: the leader's series, and a standby's.
    let service = "ivschat-operator-metrics";
    scrape_until(
        cluster,
        SYSTEM_NAMESPACE,
        service,
        "the leader's reconciles",
        |metrics| {
            metric(metrics, "ivschat_operator_leader") == 1.0
                && metric(
                    metrics,
                    r#"ivschat_operator_reconciles_total{kind="ChatRoom",outcome="ready"}"#,
                ) >= 1.0
        },
    );
    scrape_until(cluster, SYSTEM_NAMESPACE, service, "a standby", |metrics| {
        metrics.contains("ivschat_operator_leader")
            && metric(metrics, "ivschat_operator_leader") == 0.0
    });
    // And at the Service's cluster IP, which only kube-proxy's rules route (to either replica).
    let cluster_ip = cluster.kubectl(&[
        "-n",
        SYSTEM_NAMESPACE,
        "get",
        "service",
        service,
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let address: std::net::SocketAddr = format!("{}:8080", cluster_ip.trim())
        .parse()
        .expect("the Service's cluster IP");
    let scraped = ivschat_testsupport::http::get(address, "/metrics")
        .unwrap_or_else(|| panic!("no answer from the metrics Service at {address}"));
    assert_eq!(scraped.status, 200, "{}", scraped.head);
    assert!(
        scraped.body.contains("ivschat_operator_leader"),
        "{}",
        scraped.body
    );

    // The liveness probe keeps passing: the kubelet ran it through the whole span, never failing.
    let age = installed.elapsed();
    if age < LIVENESS_SPAN {
        std::thread::sleep(LIVENESS_SPAN - age);
    }
    assert_ready_and_never_restarted(&cluster.pods(SYSTEM_NAMESPACE, OPERATOR_SELECTOR), 2);
    for name in &names {
        let (live_ok, live_failed) = probe_results(cluster, name, "Liveness");
        let (ready_ok, ready_failed) = probe_results(cluster, name, "Readiness");
        eprintln!(
            "pod {name}: liveness {live_ok} passed / {live_failed} failed, readiness {ready_ok} / {ready_failed}"
        );
        assert!(
            live_ok >= 10.0,
            "pod {name}: the kubelet ran liveness {live_ok} times over {LIVENESS_SPAN:?}"
        );
        assert_eq!(live_failed, 0.0, "pod {name}: failed liveness probes");
        assert!(
            ready_ok >= 20.0,
            "pod {name}: readiness ran {ready_ok} times"
        );
    }

    // Deleting the leader's pod: it releases the Lease on SIGTERM and the standby takes over.
    let deleted = Instant::now();
    cluster.kubectl(&[
        "-n",
        SYSTEM_NAMESPACE,
        "delete",
        "pod",
        &leader,
        "--wait=false",
    ]);
    let successor = cluster.wait_for_leader(
        SYSTEM_NAMESPACE,
        "ivschat-operator",
        Some(&leader),
        Duration::from_secs(30),
    );
    let takeover = deleted.elapsed();
    eprintln!(
        "leader {leader} deleted: {successor} took over in {:.1} s",
        takeover.as_secs_f64()
    );
    assert!(
        takeover <= TAKEOVER_LIMIT,
        "takeover took {takeover:?}, over {TAKEOVER_LIMIT:?}"
    );
    let writes_before = cluster.emulator.requests().len();
    cluster.apply_room(app_namespace, "room-two", None);
    cluster.wait_ready(app_namespace, "chatroom/room-two");
    let new_writers: BTreeSet<String> = cluster.emulator.requests()[writes_before..]
        .iter()
        .filter(|record| WRITE_OPERATIONS.contains(&record.operation))
        .map(|record| record.app.as_deref().unwrap_or("(none)").to_string())
        .collect();
    assert_eq!(
        new_writers,
        BTreeSet::from([successor.clone()]),
        "after the takeover only {successor} writes"
    );

    // A rollout restart while rooms are being created: none is lost, none is created twice.
    cluster.wait_rolled_out(SYSTEM_NAMESPACE, "ivschat-operator");
    let rooms: Vec<String> = (1..=6).map(|i| format!("restart-room-{i}")).collect();
    cluster.kubectl(&[
        "-n",
        SYSTEM_NAMESPACE,
        "rollout",
        "restart",
        "deployment/ivschat-operator",
    ]);
    for room in &rooms {
        cluster.apply_room(app_namespace, room, None);
        std::thread::sleep(Duration::from_millis(700));
    }
    cluster.wait_rolled_out(SYSTEM_NAMESPACE, "ivschat-operator");
    for room in &rooms {
        cluster.wait_ready(app_namespace, &format!("chatroom/{room}"));
        assert_eq!(cluster.rooms_named(room), 1, "room {room} in AWS");
    }
    let restarted = cluster.pods(SYSTEM_NAMESPACE, OPERATOR_SELECTOR);
    assert_ready_and_never_restarted(&restarted, 2);
    assert!(
        pod_names(&restarted)
            .iter()
            .all(|name| !names.contains(name)),
        "every pod was replaced"
    );
    assert_eq!(
        cluster.creates("CreateRoom"),
        2 + rooms.len(),
        "one CreateRoom per room"
    );

    cluster.uninstall(
        &[app_namespace],
        &["delete", "-k", &overlay_arg, "--timeout=180s"],
    );
    assert_eq!(
        cluster.rooms_named("room-one"),
        0,
        "the finalizer deleted the room in AWS"
    );
}

pub fn namespaced_overlay_reconciles_only_its_namespace(cluster: &Cluster) {
    cluster.emulator.reset_metrics();
    let overlay = cluster.overlay("namespaced", "deploy/overlays/namespaced", IMAGE);
    let overlay_arg = overlay.to_string_lossy().into_owned();
    // The overlay's Role lives in the watched namespace, which the user creates.
    cluster.create_namespace(WATCHED_NAMESPACE);
    cluster.kubectl(&["apply", "-k", &overlay_arg]);
    cluster.wait_rolled_out(SYSTEM_NAMESPACE, "ivschat-operator");
    assert_ready_and_never_restarted(&cluster.pods(SYSTEM_NAMESPACE, OPERATOR_SELECTOR), 2);
    let clusterroles = cluster.json(&[
        "get",
        "clusterroles",
        "-l",
        "app.kubernetes.io/part-of=ivschat-operator",
    ]);
    // Cluster-wide, only what ChatAccounts need: reading them (and patching their status), and reading the
    // watched namespace itself, by name.
    let clusterroles = clusterroles["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = clusterroles
        .iter()
        .filter_map(|role| role["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["ivschat-operator-accounts"],
        "cluster-wide permissions"
    );
    let rules: Vec<(String, String, String, String)> = clusterroles[0]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|rule| {
            let list = |key: &str| {
                rule[key]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|item| item.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            (
                list("resources"),
                list("verbs"),
                list("resourceNames"),
                list("apiGroups"),
            )
        })
        .collect();
    let rule = |resources: &str, verbs: &str, names: &str, group: &str| {
        (
            resources.to_owned(),
            verbs.to_owned(),
            names.to_owned(),
            group.to_owned(),
        )
    };
    assert_eq!(
        rules,
        [
            rule("chataccounts", "list,watch", "", "ivschat.dev"),
            rule("chataccounts/status", "patch", "", "ivschat.dev"),
            rule("namespaces", "list,watch", WATCHED_NAMESPACE, ""),
        ],
        "the accounts ClusterRole's rules"
    );

    let elsewhere = "chat-elsewhere";
    cluster.create_namespace(elsewhere);
    cluster.apply_room(WATCHED_NAMESPACE, "watched-room", None);
    cluster.apply_room(elsewhere, "unwatched-room", None);
    cluster.wait_ready(WATCHED_NAMESPACE, "chatroom/watched-room");
    assert_eq!(cluster.rooms_named("watched-room"), 1);
    // The other namespace's room: a reconcile would have created it in AWS by now (the watched one took
    // far less); leave it a few seconds more and check nothing touched it.
    std::thread::sleep(Duration::from_secs(5));
    let unwatched = cluster.json(&["-n", elsewhere, "get", "chatroom", "unwatched-room"]);
    assert!(
        unwatched["status"].is_null(),
        "the unwatched room got a status: {:#}",
        unwatched["status"]
    );
    assert!(
        unwatched["metadata"]["finalizers"].is_null(),
        "the unwatched room got a finalizer"
    );
    assert_eq!(cluster.rooms_named("unwatched-room"), 0);

    cluster.uninstall(
        &[WATCHED_NAMESPACE],
        &["delete", "-k", &overlay_arg, "--timeout=180s"],
    );
    cluster.kubectl(&["delete", "namespace", elsewhere, "--timeout=60s"]);
}

pub fn upgrade_to_a_new_image_applies_the_crds_first_and_loses_nothing(cluster: &Cluster) {
    cluster.emulator.reset_metrics();
    let previous = cluster.overlay("upgrade-from", "deploy", PREVIOUS_IMAGE);
    let current = cluster.overlay("upgrade-to", "deploy", IMAGE);
    cluster.kubectl(&["apply", "-k", &previous.to_string_lossy()]);
    cluster.wait_rolled_out(SYSTEM_NAMESPACE, "ivschat-operator");
    let app_namespace = "chat-upgrade";
    cluster.create_namespace(app_namespace);
    cluster.apply_room(app_namespace, "kept-room", Some("kept-logs"));
    cluster.wait_ready(app_namespace, "chatroom/kept-room");
    let old_pods = pod_names(&cluster.pods(SYSTEM_NAMESPACE, OPERATOR_SELECTOR));
    let arn_before = cluster.json(&["-n", app_namespace, "get", "chatroom", "kept-room"])["status"]
        ["arn"]
        .clone();

    // The README's upgrade: the CRDs first (server-side), then the operator.
    let crds = repo_path("crds/ivschat.dev.yaml");
    cluster.kubectl(&["apply", "--server-side", "-f", &crds.to_string_lossy()]);
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/chatrooms.ivschat.dev",
    ]);
    cluster.kubectl(&["apply", "-k", &current.to_string_lossy()]);
    cluster.wait_rolled_out(SYSTEM_NAMESPACE, "ivschat-operator");
    let pods = cluster.pods(SYSTEM_NAMESPACE, OPERATOR_SELECTOR);
    assert_ready_and_never_restarted(&pods, 2);
    for pod in &pods {
        assert_eq!(
            pod["spec"]["containers"][0]["image"], IMAGE,
            "upgraded image"
        );
        assert!(!old_pods.contains(&pod["metadata"]["name"].as_str().unwrap_or("").to_string()));
    }
    let leader = cluster.wait_for_leader(
        SYSTEM_NAMESPACE,
        "ivschat-operator",
        None,
        Duration::from_secs(60),
    );
    assert!(pod_names(&pods).contains(&leader), "a new pod leads");
    // A new object is reconciled by the new leader; the old one is neither recreated nor deleted.
    cluster.apply_room(app_namespace, "after-upgrade", None);
    cluster.wait_ready(app_namespace, "chatroom/after-upgrade");
    cluster.wait_ready(app_namespace, "chatroom/kept-room");
    let arn_after = cluster.json(&["-n", app_namespace, "get", "chatroom", "kept-room"])["status"]
        ["arn"]
        .clone();
    assert_eq!(arn_before, arn_after, "the room kept its AWS resource");
    assert_eq!(cluster.rooms_named("kept-room"), 1);
    assert_eq!(cluster.creates("CreateRoom"), 2, "no room created twice");
    assert_eq!(
        cluster.creates("DeleteRoom"),
        0,
        "nothing deleted by the upgrade"
    );

    cluster.uninstall(
        &[app_namespace],
        &["delete", "-k", &current.to_string_lossy(), "--timeout=180s"],
    );
}

pub fn helm_install_runs_ready_replicas_that_reconcile(cluster: &Cluster) {
    cluster.emulator.reset_metrics();
    let mut script = Command::new("bash");
    script.arg(repo_path("hack/helm.sh"));
    let helm_path = PathBuf::from(succeed(script, None).trim());
    let helm = |args: &[&str]| {
        let mut command = Command::new(&helm_path);
        let home = cluster.scratch.join("helm-home");
        command
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("KUBECONFIG", cluster.control_plane.kubeconfig_path())
            .args(args);
        succeed(command, None)
    };
    let namespace = "ivschat-helm";
    let (repository, tag) = IMAGE.rsplit_once(':').expect("tag");
    let chart = repo_path("deploy/helm/ivschat-operator");
    let config = cluster.emulator.config();
    helm(&[
        "install",
        "ivschat-operator",
        &chart.to_string_lossy(),
        "-n",
        namespace,
        "--create-namespace",
        "--set",
        &format!("image.repository={repository}"),
        "--set",
        &format!("image.tag={tag}"),
        "--set",
        "image.pullPolicy=Never",
        "--set",
        &format!("aws.endpointUrl={}", cluster.endpoint()),
        "--set",
        &format!("aws.region={}", config.region),
    ]);
    // The chart takes credentials from the standard AWS chain (IRSA, Pod Identity); here the emulator's
    // static keys go in as environment variables.
    cluster.kubectl(&[
        "-n",
        namespace,
        "set",
        "env",
        "deployment/ivschat-operator",
        &format!("AWS_ACCESS_KEY_ID={}", config.access_key_id),
        &format!("AWS_SECRET_ACCESS_KEY={}", config.secret_access_key),
    ]);
    cluster.wait_rolled_out(namespace, "ivschat-operator");
    let pods = cluster.pods(namespace, "app.kubernetes.io/instance=ivschat-operator");
    assert_ready_and_never_restarted(&pods, 2);
    for pod in &pods {
        assert_locked_down(pod);
    }
    let leader =
        cluster.wait_for_leader(namespace, "ivschat-operator", None, Duration::from_secs(60));
    let app_namespace = "chat-helm";
    cluster.create_namespace(app_namespace);
    cluster.apply_room(app_namespace, "helm-room", Some("helm-logs"));
    cluster.wait_ready(app_namespace, "chatloggingconfiguration/helm-logs");
    cluster.wait_ready(app_namespace, "chatroom/helm-room");
    assert_eq!(cluster.rooms_named("helm-room"), 1);
    assert_eq!(
        cluster.writers(),
        BTreeSet::from([leader]),
        "only the leader writes to AWS"
    );
    scrape_until(
        cluster,
        namespace,
        "ivschat-operator-metrics",
        "the leader's reconciles",
        |metrics| {
            metric(
                metrics,
                r#"ivschat_operator_reconciles_total{kind="ChatRoom",outcome="ready"}"#,
            ) >= 1.0
        },
    );

    cluster.kubectl(&["delete", "namespace", app_namespace, "--timeout=180s"]);
    helm(&["uninstall", "ivschat-operator", "-n", namespace, "--wait"]);
    // Helm never deletes the CRDs it installed from crds/.
    cluster.kubectl(&[
        "delete",
        "crd",
        "chatrooms.ivschat.dev",
        "chatloggingconfigurations.ivschat.dev",
    ]);
    cluster.kubectl(&["delete", "namespace", namespace, "--timeout=60s"]);
}

/// The node's guarantees for the machine: everything it changed is restored by its teardown (compared
/// with a reading of the host taken before it started, and checked to have changed while it ran), and a
/// second node asked for meanwhile (another test binary) waits for the machine's lock instead of
/// breaking the first.
pub fn a_node_restores_the_host_and_a_second_node_waits_for_the_first() {
    let before = host::snapshot();
    let first = ControlPlane::start(StartOptions {
        with_node: true,
        ..StartOptions::default()
    })
    .unwrap_or_else(|err| panic!("starting a node: {err:#}"));
    // A Pod makes the node use everything it has: a sandbox (netns, veth, cgroups, mounts), the bridge,
    // masquerading, kube-proxy's chains for the Service it creates.
    let mut apply = first.kubectl();
    apply.args(["apply", "-f", "-"]);
    succeed(
        apply,
        Some(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: sandbox, namespace: default}\nspec:\n  containers:\n  - {name: pause, image: registry.k8s.io/pause:ivschat-operator, imagePullPolicy: Never}\n",
        ),
    );
    let mut wait = first.kubectl();
    wait.args([
        "wait",
        "--for=condition=Ready",
        "--timeout=120s",
        "pod/sandbox",
    ]);
    if !run(wait, None).status.success() {
        let mut describe = first.kubectl();
        describe.args(["describe", "pod", "sandbox"]);
        panic!(
            "pod sandbox not Ready within 120 s:\n{}\n{}",
            text(&run(describe, None).stdout),
            node_logs()
        );
    }
    let during = host::snapshot();
    let changed = host::differences(&before, &during);
    for fact in [
        "links",
        "addresses on lo",
        "iptables-nft rules",
        "cgroups",
        "mount points",
        "netns",
    ] {
        assert!(
            changed
                .iter()
                .any(|line| line.starts_with(&format!("{fact}:"))),
            "a running node should change {fact}; the changes seen: {changed:#?}"
        );
    }

    drop(first);
    host::assert_restored(&before, "the node's teardown");

    // Another node while one runs (two test binaries at once): the second supervisor waits for the lock,
    // gets it only once the first node is torn down, and then starts on a clean host.
    let holder = ControlPlane::start(StartOptions {
        with_node: true,
        ..StartOptions::default()
    })
    .unwrap_or_else(|err| panic!("starting a node again: {err:#}"));
    // The second supervisor is started by hand (ControlPlane::start would wait for the lock itself), for
    // a control plane whose authorizer lets a kubelet in (its ServiceAccount admission stays off: no Pod
    // runs there).
    let second = ControlPlane::start(StartOptions {
        extra_apiserver_args: vec!["--authorization-mode=Node,RBAC".into()],
        ..StartOptions::default()
    })
    .expect("a second control plane");
    let second_log_path = second.data_dir().join("second-node.log");
    let second_log = std::fs::File::create(&second_log_path).expect("the second node's log");
    let second_log_tail = || {
        let log = std::fs::read_to_string(&second_log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let mut waiting = Command::new("bash");
    waiting
        .arg(repo_path("hack/node.sh"))
        .arg("run")
        .arg(second.data_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(second_log);
    let mut waiting = waiting.spawn().expect("a second node.sh");
    let stdout = waiting.stdout.take().expect("stdout");
    let first_supervisor: u32 =
        std::fs::read_to_string("/var/lib/ivschat-operator-node/supervisor.pid")
            .expect("the first node's supervisor.pid")
            .trim()
            .parse()
            .expect("a pid");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    // Each line of the second supervisor, with whether the first supervisor (which holds the lock until
    // its teardown is done and it exits) still ran its own code when the line came.
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            // Not merely "no zombie": the kernel releases an exiting process's flock before the process
            // turns into one, so under load a waiter can take the lock while its holder still shows R.
            let first_alive = process_state(first_supervisor) == ProcessState::Running;
            if lines_tx.send((first_alive, line)).is_err() {
                break;
            }
        }
    });
    match lines.recv_timeout(Duration::from_secs(8)) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        other => panic!("the second node did not wait for the first: {other:?}"),
    }
    // The first node still works while the second waits.
    let mut nodes = holder.kubectl();
    nodes.args([
        "wait",
        "--for=condition=Ready",
        "--timeout=10s",
        &format!("node/{}", testenv::node::NODE_NAME),
    ]);
    succeed(nodes, None);
    drop(holder);
    let (first_alive, line) = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the second node's lock");
    assert_eq!(line, "locked");
    assert!(
        !first_alive,
        "the lock was taken while the first node's supervisor still ran"
    );
    let (_, line) = lines
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|err| {
            panic!(
                "the second node is not ready ({err}):\n{}",
                second_log_tail()
            )
        });
    assert_eq!(line, "ready", "the second node started after the first");
    let mut nodes = second.kubectl();
    nodes.args([
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        &format!("node/{}", testenv::node::NODE_NAME),
    ]);
    succeed(nodes, None);
    drop(waiting.stdin.take());
    assert!(
        waiting
            .wait()
            .expect("the second node's teardown")
            .success()
    );
    drop(second);
    host::assert_restored(&before, "the second node's teardown");

    // A supervisor killed outright leaves its components running and its record behind;
    // `hack/node.sh teardown` (which every node start also runs first) restores the host from the record.
    let orphaned = ControlPlane::start(StartOptions {
        with_node: true,
        ..StartOptions::default()
    })
    .unwrap_or_else(|err| panic!("starting a node a third time: {err:#}"));
    let supervisor = std::fs::read_to_string("/var/lib/ivschat-operator-node/supervisor.pid")
        .expect("supervisor.pid");
    let mut kill = Command::new("kill");
    kill.args(["-KILL", supervisor.trim()]);
    succeed(kill, None);
    std::thread::sleep(Duration::from_secs(1));
    let left_running = host::differences(&before, &host::snapshot());
    assert!(
        left_running
            .iter()
            .any(|line| line.starts_with("node processes:")),
        "the components outlive a killed supervisor: {left_running:#?}"
    );
    let mut teardown = Command::new("bash");
    teardown.arg(repo_path("hack/node.sh")).arg("teardown");
    succeed(teardown, None);
    drop(orphaned);
    host::assert_restored(&before, "the teardown of a killed node");
}
