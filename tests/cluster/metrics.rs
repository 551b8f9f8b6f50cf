//! The operator's /metrics, /healthz and /readyz, scraped over HTTP from a real `ivschat-operator run`
//! process after a known scenario: one logging configuration and twenty rooms against an emulator that
//! enforces the IVS Chat rate quotas, so that some calls are throttled. Every AWS series must agree exactly
//! with the emulator's own request counters, and the labels must stay within their bounded sets.

use ivschat_emulator::EmulatorConfig;
use ivschat_testsupport::command::succeed;
use ivschat_testsupport::metrics::{label, samples, value};
use ivschat_testsupport::{control_plane, emulator, http, operator, serial};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "metrics";
const ROOMS: usize = 20;
const WAIT: Duration = Duration::from_secs(90);

/// Runs kubectl against the shared control plane; fails the test unless it succeeds; its stdout.
fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let mut command = control_plane().kubectl();
    command.args(args);
    succeed(command, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_known_scenario_match_the_emulator() {
    // Counts over a settling period and a log of every reconcile: this test had its binary to itself.
    let _alone = serial::alone().await;
    let control_plane = control_plane();
    kubectl(&["create", "namespace", NAMESPACE], None);
    let emulator = emulator::start(EmulatorConfig {
        enforce_quotas: true,
        logging_transition_delay: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;

    let metrics_at = http::free_port();
    let health_at = http::free_port();
    let log_path = control_plane.data_dir().join("operator-metrics.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut command = operator::run_command(
        Path::new(env!("CARGO_BIN_EXE_ivschat-operator")),
        control_plane,
        &emulator,
        NAMESPACE,
    );
    command
        .args(["--resync-period", "1h"])
        // No client-side spacing: the quota must throttle some calls for the throttle series to count.
        .args(["--aws-rate-limit", "none"])
        .args(["--log-format", "json"])
        .arg(format!("--metrics-bind-address={metrics_at}"))
        .arg(format!("--health-probe-bind-address={health_at}"))
        // The driver's per-object debug line shows the reconcile span in the JSON.
        .env("RUST_LOG", "info,ivschat_operator=debug")
        .stdout(Stdio::null())
        .stderr(log);
    let mut operator = operator::Process::spawn("the operator", command);

    // Probes: live and ready once up; the metrics endpoint answers in the exposition format.
    http::wait_ok(health_at, "/readyz", WAIT, "never ready");
    let status = http::status(health_at, "/healthz").expect("/healthz");
    assert_eq!(status, 200);
    let http::Response { status, head, body } =
        http::get(metrics_at, "/metrics").expect("/metrics");
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
    assert_eq!(http::status(metrics_at, "/nothing"), Some(404));

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
        let before = http::get(metrics_at, "/metrics").expect("/metrics").body;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = http::get(metrics_at, "/metrics").expect("/metrics").body;
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
                    "ivschat_operator_aws_requests_total{{operation=\"{operation}\",outcome=\"success\",account=\"default\",region=\"us-west-2\"}}"
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
            "ivschat_operator_aws_requests_total{operation=\"CreateRoom\",outcome=\"success\",account=\"default\",region=\"us-west-2\"}"
        ),
        ROOMS as f64
    );
    assert_eq!(
        value(
            &body,
            "ivschat_operator_aws_requests_total{operation=\"CreateLoggingConfiguration\",outcome=\"success\",account=\"default\",region=\"us-west-2\"}"
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
                    "ivschat_operator_aws_requests_total{{operation=\"{operation}\",outcome=\"throttled\",account=\"default\",region=\"us-west-2\"}}"
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
        // No client-side budget (--aws-rate-limit none): nothing to stretch the period by.
        assert_eq!(
            value(
                &body,
                &format!("ivschat_operator_resync_period_seconds{{kind=\"{kind}\"}}")
            ),
            3600.0,
            "{kind}: --resync-period 1h"
        );
        assert_eq!(
            value(
                &body,
                &format!("ivschat_operator_resync_stretched{{kind=\"{kind}\"}}")
            ),
            0.0
        );
        // One listing, at the start, of an account still empty or nearly: one page.
        assert_eq!(
            value(
                &body,
                &format!("ivschat_operator_listing_pages{{kind=\"{kind}\"}}")
            ),
            1.0,
            "{kind}: pages of the last listing"
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
    operator.signal("-TERM");
    let exit = operator.wait_exit(Duration::from_secs(30));
    assert!(exit.success(), "{exit:?}");
    // --log-format json: one JSON object per line, with level, message and timestamp.
    let log = std::fs::read_to_string(&log_path).expect("the operator's log");
    let lines: Vec<&str> = log.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(
        lines.iter().any(|line| line.contains("serving /metrics")),
        "{log}"
    );
    // At start-up, per kind, what the budget means for the resync period (here: there is none).
    for operation in ["ListRooms", "ListLoggingConfigurations"] {
        assert!(
            lines
                .iter()
                .any(|line| line.contains(&format!("no client-side budget for {operation}"))),
            "{log}"
        );
    }
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
