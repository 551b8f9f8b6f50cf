//! `make demo` as a newcomer meets it (issue 14, "the first five minutes"). `make demo` runs with its own port and
//! state directory (IVSCHAT_DEMO_PORT, IVSCHAT_DEMO_STATE_DIR) on the binaries this test run built
//! (IVSCHAT_DEMO_BIN_DIR, so nothing is rebuilt). It must show one `kubectl ivschat token` and a line printed by
//! `kubectl ivschat tail`, and end with the lines to paste: KUBECONFIG, a PATH with kubectl and the plugin, and the
//! emulator's AWS environment. Those lines are then used exactly as printed: kubectl sees every example object
//! Ready, the plugin reaches the room through the emulator, and it tails the room of the demo's other account
//! (the ChatAccount's role assumed, its endpointUrl giving the messaging endpoint). `make demo-down` with the same settings must leave
//! none of the demo's processes running, nothing listening on the port and no state directory.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ivschat_testsupport::command::{ProcessState, process_state, repo_path};
use ivschat_testsupport::{http, serial};
use serde_json::Value;

const OPERATOR: &str = env!("CARGO_BIN_EXE_ivschat-operator");
const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-ivschat");

/// The demo's settings, and `make demo-down` with them when dropped, so a failed test leaves nothing running.
struct Demo {
    port: u16,
    state: PathBuf,
    bin_dir: PathBuf,
}

impl Demo {
    fn make(&self, target: &str) -> Output {
        Command::new("make")
            .args(["-s", target])
            .current_dir(repo_path(""))
            .env("IVSCHAT_DEMO_PORT", self.port.to_string())
            .env("IVSCHAT_DEMO_STATE_DIR", &self.state)
            .env("IVSCHAT_DEMO_BIN_DIR", &self.bin_dir)
            .output()
            .unwrap_or_else(|error| panic!("make {target}: {error}"))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.state.exists() {
            let _ = self.make("demo-down");
        }
    }
}

/// A child process killed when dropped, so a failed assertion leaves no tail retrying after the demo is gone.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of the printed `export NAME=value` (one `export` may set several names).
fn exported(lines: &str, name: &str) -> String {
    lines
        .lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .flat_map(str::split_whitespace)
        .find_map(|assignment| assignment.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("the demo printed no export of {name}:\n{lines}"))
        .to_owned()
}

/// The lines of a child's output, read by a thread as they come.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stream)).map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The first line containing `fragment` within 10 s.
fn wait_for(lines: &mpsc::Receiver<String>, fragment: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(fragment) => return line,
            Ok(_) => {}
            Err(error) => panic!("no line with {fragment:?}: {error}"),
        }
    }
}

/// The pids the demo recorded (its own processes and the control plane's), read before it is stopped.
fn recorded_pids(state: &Path) -> BTreeMap<String, u32> {
    let mut pids = BTreeMap::new();
    for dir in [state.to_path_buf(), state.join("cluster")] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|extension| extension == "pid")
                && let Some(pid) = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
            {
                pids.insert(path.display().to_string(), pid);
            }
        }
    }
    pids
}

/// True while the process runs or is still being torn down (a zombie waiting to be reaped has stopped).
fn running(pid: u32) -> bool {
    matches!(
        process_state(pid),
        ProcessState::Running | ProcessState::Exiting
    )
}

/// The (kind, name) of every object in examples/*.yaml, which the demo applies (as hack/demo.sh globs them:
/// examples/review-handler/ holds a Lambda function's code, no manifest).
fn example_objects() -> Vec<(String, String)> {
    let mut objects = Vec::new();
    for entry in std::fs::read_dir(repo_path("examples")).expect("examples/") {
        let path = entry.expect("an example").path();
        if path.extension().and_then(|extension| extension.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("an example");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let object: Value =
                serde::Deserialize::deserialize(document).expect("an example is YAML");
            if let (Some(kind), Some(name)) =
                (object["kind"].as_str(), object["metadata"]["name"].as_str())
            {
                objects.push((kind.to_owned(), name.to_owned()));
            }
        }
    }
    objects.sort();
    objects
}

#[tokio::test]
async fn make_demo_comes_up_ready_with_the_plugin_and_demo_down_leaves_nothing() {
    // A second control plane, an emulator, an operator and several child processes; the blocking `make` runs are
    // all this test's runtime has to do.
    let _heavy = serial::beside_others().await;
    let bin_dir = Path::new(OPERATOR)
        .parent()
        .expect("the binaries' directory")
        .to_path_buf();
    assert_eq!(Path::new(PLUGIN).parent(), Some(bin_dir.as_path()));
    if !bin_dir.join("testenv").exists() {
        // `cargo test --workspace` (make test) builds it, as testenv has integration tests; a run of this test
        // binary alone may not have.
        let status = Command::new("cargo")
            .args([
                "build", "--quiet", "--locked", "-p", "testenv", "--bin", "testenv",
            ])
            .current_dir(repo_path(""))
            .env(
                "CARGO_TARGET_DIR",
                bin_dir.parent().expect("the target directory"),
            )
            .status()
            .expect("cargo build -p testenv");
        assert!(status.success(), "building testenv for the demo");
    }
    let demo = Demo {
        port: http::free_port().port(),
        state: std::env::temp_dir().join(format!("ivschat-demo-test-{}", std::process::id())),
        bin_dir,
    };
    let _ = std::fs::remove_dir_all(&demo.state);

    let started = Instant::now();
    let up = demo.make("demo");
    let up_took = started.elapsed();
    let stdout = String::from_utf8_lossy(&up.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&up.stderr).into_owned();
    assert!(
        up.status.success(),
        "make demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    eprintln!("make demo took {:.1} s", up_took.as_secs_f64());

    // What the newcomer is told to paste.
    let endpoint = format!("http://127.0.0.1:{}", demo.port);
    assert_eq!(exported(&stdout, "AWS_ENDPOINT_URL"), endpoint, "{stdout}");
    assert_eq!(exported(&stdout, "AWS_ACCESS_KEY_ID"), "test");
    assert_eq!(exported(&stdout, "AWS_SECRET_ACCESS_KEY"), "test");
    assert_eq!(exported(&stdout, "AWS_REGION"), "us-west-2");
    let kubeconfig = exported(&stdout, "KUBECONFIG");
    assert!(
        Path::new(&kubeconfig).starts_with(&demo.state),
        "the control plane is the demo's own: {kubeconfig}"
    );
    let path = exported(&stdout, "PATH");
    let path_dirs: Vec<&str> = path.split(':').collect();
    assert!(
        path_dirs.contains(&demo.bin_dir.to_str().expect("UTF-8")),
        "the plugin is on the printed PATH: {path}"
    );
    assert!(
        path_dirs
            .iter()
            .any(|dir| Path::new(dir).join("kubectl").exists()),
        "kubectl is on the printed PATH: {path}"
    );
    assert!(
        stdout.contains(&format!(
            "IVSCHAT_DEMO_PORT={} IVSCHAT_DEMO_STATE_DIR={} make demo-down",
            demo.port,
            demo.state.display()
        )),
        "how to stop this demo: {stdout}"
    );

    // The plugin at work: one token, one tail line.
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("kubectl ivschat token printed no {name}: {stdout}"))
    };
    assert_eq!(field("User"), "ada");
    assert_eq!(field("Capabilities"), "SEND_MESSAGE");
    assert!(
        field("Room").starts_with("arn:aws:ivschat:us-west-2:"),
        "{stdout}"
    );
    assert!(!field("Token").is_empty());
    let tail_line = stdout
        .lines()
        .find(|line| line.contains("  EVENT  "))
        .unwrap_or_else(|| panic!("no tail line in:\n{stdout}"));
    assert!(
        tail_line.contains("app:demo") && tail_line.contains("greeting=hello"),
        "{tail_line}"
    );

    // Every example Ready, as the printed KUBECONFIG shows it.
    let kubectl = Path::new(
        path_dirs
            .iter()
            .find(|dir| Path::new(dir).join("kubectl").exists())
            .expect("kubectl's directory"),
    )
    .join("kubectl");
    let listed = Command::new(&kubectl)
        .args([
            "get",
            "chataccounts,chatloggingconfigurations,chatrooms",
            "-A",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("kubectl get");
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let mut ready = Vec::new();
    for item in listed["items"].as_array().expect("items") {
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        let kind = item["kind"].as_str().unwrap_or_default();
        let condition = item["status"]["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"));
        assert_eq!(
            condition.map(|c| &c["status"]),
            Some(&Value::from("True")),
            "{kind} {name} is Ready: {item}"
        );
        ready.push((kind.to_owned(), name.to_owned()));
    }
    ready.sort();
    assert_eq!(ready, example_objects(), "every example, and only them");

    // The printed AWS environment is all the plugin needs (no flags).
    let plugin = |exports: &[&str]| {
        let mut command = Command::new(PLUGIN);
        for variable in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_IVSCHAT",
            "AWS_DEFAULT_REGION",
        ] {
            command.env_remove(variable);
        }
        for name in exports {
            command.env(name, exported(&stdout, name));
        }
        command
            .env("KUBECONFIG", &kubeconfig)
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            );
        command
    };
    let all_exports = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
    ];
    let mut status = plugin(&all_exports);
    let status = status
        .args(["status", "test-room-1", "-o", "json"])
        .output()
        .expect("kubectl-ivschat status");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let view: Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(view["aws"], "found", "the AWS room is seen: {view}");
    assert_eq!(view["inSync"], true, "{view}");

    // The room in the demo's other account and region, tailed by name: the plugin assumes the ChatAccount's role
    // and finds the messaging endpoint from the account's endpointUrl (the demo rewrote it for its port), with
    // no AWS_ENDPOINT_URL at all.
    let mut tail = plugin(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]);
    let mut tail = Reaped(
        tail.args(["tail", "europe-room", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl-ivschat tail"),
    );
    let notes = lines_of(tail.0.stderr.take().expect("stderr"));
    let printed = lines_of(tail.0.stdout.take().expect("stdout"));
    let connected = wait_for(&notes, "connected to room");
    assert!(
        connected.contains(":eu-west-1:")
            && connected.contains(&format!("at ws://127.0.0.1:{}", demo.port)),
        "{connected}"
    );
    let sent = plugin(&all_exports)
        .args([
            "send-event",
            "europe-room",
            "--name",
            "app:europe",
            "-o",
            "json",
        ])
        .output()
        .expect("kubectl-ivschat send-event");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let sent: Value = serde_json::from_slice(&sent.stdout).expect("JSON");
    let line: Value = serde_json::from_str(&wait_for(&printed, "app:europe")).expect("a JSON line");
    assert_eq!(line["type"], "event", "{line}");
    assert_eq!(line["id"], sent["id"], "{line}");
    let interrupted = Command::new("kill")
        .args(["-INT", &tail.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    assert!(tail.0.wait().expect("the tail's exit").success());

    // demo-down: nothing of the demo is left.
    let pids = recorded_pids(&demo.state);
    assert!(
        pids.len() >= 4,
        "the emulator, the operator, etcd and kube-apiserver recorded their pids: {pids:?}"
    );
    assert!(pids.values().all(|pid| running(*pid)), "{pids:?}");
    assert!(TcpStream::connect(("127.0.0.1", demo.port)).is_ok());
    let down = demo.make("demo-down");
    assert!(
        down.status.success(),
        "make demo-down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    for (file, pid) in &pids {
        assert!(
            !running(*pid),
            "{file}: pid {pid} still runs after demo-down"
        );
    }
    assert!(
        TcpStream::connect(("127.0.0.1", demo.port)).is_err(),
        "nothing listens on {} after demo-down",
        demo.port
    );
    assert!(!demo.state.exists(), "demo-down removes its state");
}
