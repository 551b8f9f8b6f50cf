//! The operator's /metrics, /healthz and /readyz, scraped over HTTP from a real `ivschat-operator run`
//! process after a known scenario: one logging configuration and twenty rooms against an emulator that
//! enforces the IVS Chat rate quotas, so that some calls are throttled. Every AWS series must agree exactly
//! with the emulator's own request counters, and the labels must stay within their bounded sets.

use ivschat_emulator::{Emulator, EmulatorConfig};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testenv::ControlPlane;

const NAMESPACE: &str = "metrics";
const ROOMS: usize = 20;
const WAIT: Duration = Duration::from_secs(90);

fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = ControlPlane::shared()
        .kubectl()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("writing stdin");
    }
    drop(input);
    let output = child.wait_with_output().expect("kubectl");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

fn http_get(address: SocketAddr, path: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((status, head.to_ascii_lowercase(), body.to_owned()))
}

/// Samples as (series with labels, value).
fn samples(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(metrics: &str, series: &str) -> f64 {
    samples(metrics)
        .into_iter()
        .find(|(name, _)| name == series)
        .map(|(_, value)| value)
        .unwrap_or(0.0)
}

/// A label's value in a series such as `name{a="x",b="y"}`.
fn label<'a>(series: &'a str, key: &str) -> Option<&'a str> {
    let labels = series.split_once('{')?.1.trim_end_matches('}');
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.trim_matches('"'))
    })
}

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_known_scenario_match_the_emulator() {
    testenv::install_crypto_provider();
    let control_plane = ControlPlane::shared();
    let crds = ivschat_operator::crd::crds_yaml().expect("CRDs");
    control_plane
        .install_crds(&crds)
        .expect("installing the CRDs");
    kubectl(&["create", "namespace", NAMESPACE], None);
    let emulator = Emulator::start(
        "127.0.0.1:0".parse().expect("address"),
        EmulatorConfig {
            enforce_quotas: true,
            logging_transition_delay: Duration::from_millis(300),
            ..EmulatorConfig::default()
        },
    )
    .await
    .expect("starting the emulator");

    let metrics_at = free_port();
    let health_at = free_port();
    let log_path = control_plane.data_dir().join("operator-metrics.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_ivschat-operator"))
            .args(["run", "--namespace", NAMESPACE, "--resync-period", "1h"])
            .args(["--aws-endpoint-url", &emulator.url()])
            // No client-side spacing: the quota must throttle some calls for the throttle series to count.
            .args(["--aws-rate-limit", "none"])
            .args(["--log-format", "json"])
            .arg(format!("--metrics-bind-address={metrics_at}"))
            .arg(format!("--health-probe-bind-address={health_at}"))
            .env("KUBECONFIG", control_plane.kubeconfig_path())
            .env("AWS_REGION", &emulator.config().region)
            .env("AWS_ACCESS_KEY_ID", &emulator.config().access_key_id)
            .env(
                "AWS_SECRET_ACCESS_KEY",
                &emulator.config().secret_access_key,
            )
            // The driver's per-object debug line shows the reconcile span in the JSON.
            .env("RUST_LOG", "info,ivschat_operator=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the operator"),
    );

    // Probes: live and ready once up; the metrics endpoint answers in the exposition format.
    let deadline = Instant::now() + WAIT;
    while http_get(health_at, "/readyz").map(|(status, _, _)| status) != Some(200) {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, _) = http_get(health_at, "/healthz").expect("/healthz");
    assert_eq!(status, 200);
    let (status, head, body) = http_get(metrics_at, "/metrics").expect("/metrics");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    assert_eq!(
        value(&body, "ivschat_operator_leader"),
        1.0,
        "no election: leads"
    );
    assert_eq!(
        http_get(metrics_at, "/nothing").map(|(status, _, _)| status),
        Some(404)
    );

    // The scenario.
    let mut manifest = serde_yaml::to_string(&json!({
        "apiVersion": "ivschat.dev/v1alpha1",
        "kind": "ChatLoggingConfiguration",
        "metadata": {"name": "logs", "namespace": NAMESPACE},
        "spec": {"destinationConfiguration": {"s3": {"bucketName": "metrics-bucket"}}},
    }))
    .expect("yaml");
    for index in 0..ROOMS {
        manifest.push_str("---\n");
        manifest.push_str(
            &serde_yaml::to_string(&json!({
                "apiVersion": "ivschat.dev/v1alpha1",
                "kind": "ChatRoom",
                "metadata": {"name": format!("room-{index}"), "namespace": NAMESPACE},
                "spec": {"name": format!("room-{index}")},
            }))
            .expect("yaml"),
        );
    }
    kubectl(&["apply", "-f", "-"], Some(&manifest));
    kubectl(
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=90s",
            "-n",
            NAMESPACE,
            "chatrooms.ivschat.dev",
            "--all",
        ],
        None,
    );
    kubectl(
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=90s",
            "-n",
            NAMESPACE,
            "chatloggingconfigurations.ivschat.dev/logs",
        ],
        None,
    );
    // Let in-flight work settle: the counters must stop moving.
    let deadline = Instant::now() + WAIT;
    let body = loop {
        let before = http_get(metrics_at, "/metrics").expect("/metrics").2;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = http_get(metrics_at, "/metrics").expect("/metrics").2;
        let aws_of = |text: &str| -> Vec<(String, f64)> {
            samples(text)
                .into_iter()
                .filter(|(s, _)| s.starts_with("ivschat_operator_aws_"))
                .collect()
        };
        if aws_of(&before) == aws_of(&after) {
            break after;
        }
        assert!(Instant::now() < deadline, "AWS calls never settled");
    };

    // Exactly what the emulator saw, operation by operation.
    let seen = emulator.metrics();
    let operations: BTreeSet<&str> = seen.keys().map(|(op, _)| op.as_str()).collect();
    for operation in &operations {
        let total: f64 = samples(&body)
            .into_iter()
            .filter(|(s, _)| {
                s.starts_with("ivschat_operator_aws_requests_total{")
                    && label(s, "operation") == Some(*operation)
            })
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            total as u64,
            emulator.request_total(operation),
            "{operation}: operator metrics vs emulator counters\n{body}"
        );
        assert_eq!(
            value(
                &body,
                &format!(
                    "ivschat_operator_aws_requests_total{{operation=\"{operation}\",outcome=\"success\"}}"
                )
            ) as u64,
            emulator.request_count(operation, "success"),
            "{operation} successes"
        );
        assert_eq!(
            value(
                &body,
                &format!("ivschat_operator_aws_throttles_total{{operation=\"{operation}\"}}")
            ) as u64,
            emulator.request_count(operation, "ThrottlingException"),
            "{operation} throttles"
        );
    }
    // The scenario's own figures.
    assert_eq!(
        value(
            &body,
            "ivschat_operator_aws_requests_total{operation=\"CreateRoom\",outcome=\"success\"}"
        ),
        ROOMS as f64
    );
    assert_eq!(
        value(
            &body,
            "ivschat_operator_aws_requests_total{operation=\"CreateLoggingConfiguration\",outcome=\"success\"}"
        ),
        1.0
    );
    // Each create is preceded by its ownership lookup (ListRooms filtered by name): between them, the
    // burst exceeds the 5 TPS quotas, and every throttled attempt is in both counters.
    let mut throttled_total = 0.0;
    for operation in ["ListRooms", "CreateRoom"] {
        let throttled = value(
            &body,
            &format!("ivschat_operator_aws_throttles_total{{operation=\"{operation}\"}}"),
        );
        assert_eq!(
            value(
                &body,
                &format!(
                    "ivschat_operator_aws_requests_total{{operation=\"{operation}\",outcome=\"throttled\"}}"
                )
            ),
            throttled,
            "{operation}"
        );
        throttled_total += throttled;
    }
    assert!(
        throttled_total > 0.0,
        "{ROOMS} concurrent lookups and creates against 5 TPS quotas must be throttled:\n{body}"
    );

    // Reconciles: every room and the configuration reached Ready through at least one reconcile each, each
    // reconcile is in the duration histogram, and nothing is in flight at rest.
    let reconciles = |kind: &str| -> f64 {
        samples(&body)
            .into_iter()
            .filter(|(s, _)| {
                s.starts_with("ivschat_operator_reconciles_total{")
                    && label(s, "kind") == Some(kind)
            })
            .map(|(_, v)| v)
            .sum()
    };
    for (kind, objects) in [("ChatRoom", ROOMS), ("ChatLoggingConfiguration", 1)] {
        let ready = value(
            &body,
            &format!("ivschat_operator_reconciles_total{{kind=\"{kind}\",outcome=\"ready\"}}"),
        );
        assert!(
            ready >= objects as f64,
            "{kind}: {ready} ready reconciles\n{body}"
        );
        assert_eq!(
            value(
                &body,
                &format!("ivschat_operator_reconcile_duration_seconds_count{{kind=\"{kind}\"}}")
            ),
            reconciles(kind),
            "{kind}: one duration per reconcile"
        );
        assert_eq!(
            value(
                &body,
                &format!("ivschat_operator_reconciles_in_flight{{kind=\"{kind}\"}}")
            ),
            0.0
        );
    }
    assert_eq!(
        value(
            &body,
            "ivschat_operator_reconciles_total{kind=\"ChatRoom\",outcome=\"error\"}"
        ),
        0.0
    );

    // Bounded labels: operation names from the model, outcomes and kinds from fixed sets; no object names.
    for (series, _) in samples(&body) {
        if let Some(operation) = label(&series, "operation") {
            assert!(
                operation.chars().all(|c| c.is_ascii_alphabetic()),
                "{series}"
            );
        }
        if let Some(kind) = label(&series, "kind") {
            assert!(
                ["ChatRoom", "ChatLoggingConfiguration"].contains(&kind),
                "{series}"
            );
        }
        assert!(!series.contains("room-"), "an object name in {series}");
    }

    // SIGTERM: a clean exit.
    let status = Command::new("kill")
        .args(["-TERM", &operator.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = operator.0.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    // --log-format json: one JSON object per line, with level, message and timestamp.
    let log = std::fs::read_to_string(&log_path).expect("the operator's log");
    let lines: Vec<&str> = log.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(
        lines.iter().any(|line| line.contains("serving /metrics")),
        "{log}"
    );
    let mut reconcile_spans = 0;
    for line in lines {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON log line ({err}): {line}"));
        // Each reconcile runs in its own span naming the object (kube-runtime's "reconciling object").
        if entry["span"]["name"] == "reconciling object"
            && entry["span"]["object.ref"]
                .as_str()
                .is_some_and(|object| object.contains(NAMESPACE))
        {
            reconcile_spans += 1;
        }
        assert!(
            entry["level"].is_string()
                && entry["timestamp"].is_string()
                && entry["fields"].is_object(),
            "{line}"
        );
    }
    // One reconcile counted per reconcile run: the driver logs "reconciling" once per run (the log goes on
    // after the scrape, so it may have more).
    for kind in ["ChatRoom", "ChatLoggingConfiguration"] {
        let runs = log
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|entry| {
                entry["fields"]["message"] == "reconciling" && entry["fields"]["kind"] == kind
            })
            .count();
        assert!(
            reconciles(kind) as usize <= runs && runs > 0,
            "{kind}: {} reconciles counted, {runs} run",
            reconciles(kind)
        );
    }
    assert!(
        reconcile_spans >= ROOMS,
        "{reconcile_spans} log lines inside a reconcile span:\n{log}"
    );
    let _ = emulator.stop().await;
}
