//! Message review handlers as real Lambda functions: a Python handler written by the test, run by the AWS
//! Lambda Runtime Interface Emulator (RIE) with the Python runtime interface client `awslambdaric`, both built
//! and cached by hack/lambda-rie.sh, answering the Lambda Invoke API on a free loopback port. No container:
//! the RIE starts the runtime as its child process.
//!
//! Every handler gets `record(event)` (prepended to its source), which appends the event it received to a
//! file, so a test can assert the payload as the handler saw it ([`LambdaFunction::events`]).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ivschat_emulator::review::LambdaEndpoint;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::command::install_tool;
use crate::http::free_port;

/// Prepended to every handler: `record(event)` appends `event` as a JSON line to `events.jsonl` beside it.
const RECORD_PRELUDE: &str = r#"import json as _json
import os as _os

_EVENTS = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "events.jsonl")


def record(event):
    with open(_EVENTS, "a") as events:
        events.write(_json.dumps(event) + "\n")


"#;

/// How long the RIE may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running RIE with one handler (`app.handler` of the source given), stopped on drop.
pub struct LambdaFunction {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl LambdaFunction {
    /// A handler that records each message and delivers it with `prefix` before its content (ALLOW with
    /// a rewrite), so a test can tell from what was delivered which handler reviewed it.
    pub async fn prefixing(prefix: &str) -> LambdaFunction {
        let prefix = serde_json::to_string(prefix).expect("a string serializes");
        LambdaFunction::start(&format!(
            r#"
def handler(event, context):
    record(event)
    return {{"ReviewResult": "ALLOW", "Content": {prefix} + event["Content"]}}
"#
        ))
        .await
    }

    /// Writes `source` (Python defining `handler(event, context)`, which may call `record(event)`) into a
    /// private directory and serves it with the RIE; returns once the RIE accepts connections.
    pub async fn start(source: &str) -> LambdaFunction {
        let installed = install_tool(
            "hack/lambda-rie.sh",
            "the Lambda Runtime Interface Emulator and awslambdaric",
            "the go toolchain, python3 with venv and access to the Go module proxy and PyPI",
        )
        .await;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ivschat-lambda-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the handler's directory");
        std::fs::write(dir.join("app.py"), format!("{RECORD_PRELUDE}{source}"))
            .expect("write the handler");
        let port = free_port().port();
        let runtime_api = free_port();
        let log = std::fs::File::create(dir.join("rie.log")).expect("create the RIE log");
        let child = Command::new(installed.join("bin/aws-lambda-rie"))
            .arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{port}"))
            // The default (127.0.0.1:9001) would collide between two functions.
            .arg("--runtime-api-address")
            .arg(runtime_api.to_string())
            .arg(installed.join("venv/bin/python"))
            .args(["-m", "awslambdaric", "app.handler"])
            .current_dir(&dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            // Its own process group, so that stopping it stops the runtime it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start aws-lambda-rie");
        let function = LambdaFunction {
            child: Some(child),
            dir,
            port,
        };
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aws-lambda-rie did not listen on 127.0.0.1:{port} within {START_TIMEOUT:?}:\n{}",
                function.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        function
    }

    /// The RIE's invocation URL (it serves one function, always named `function`): what the emulator's
    /// `--lambda-endpoint` takes.
    pub fn invocation_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/function/invocations",
            self.port
        )
    }

    /// [`LambdaFunction::invocation_url`] as the emulator's settings take it.
    pub fn endpoint(&self) -> LambdaEndpoint {
        LambdaEndpoint::parse(&self.invocation_url()).expect("the RIE's URL is a Lambda endpoint")
    }

    /// The events the handler recorded, oldest first.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("recorded events are JSON"))
            .collect()
    }

    /// What the RIE and the handler logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rie.log")).unwrap_or_default()
    }

    /// Stops the RIE and its runtime and waits for the RIE: its port then refuses connections.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&child);
            let _ = child.kill().await;
        }
    }
}

/// SIGKILL to the child's process group (the RIE and the runtime it started).
fn kill_group(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_group(child);
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
