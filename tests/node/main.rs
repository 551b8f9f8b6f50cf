//! The node tier: the operator as a real Pod on a real one-node cluster (testenv's node: kubelet,
//! containerd, runc, the bridge CNI plugin, kube-controller-manager, kube-scheduler, kube-proxy), installed
//! the ways the README documents, against the emulator on the host; and the node's own guarantees (the
//! teardown restores the host, two nodes on one machine wait for each other).
//!
//! Its own harness (`harness = false`), because a machine that cannot run a node (not root, no cgroups, no
//! containerd) must not count these tests as passed: there the binary prints `node tier: NOT RUN: <why>`
//! and no `test result:` line, so `make test`'s total leaves them out and its last lines say so. Where a
//! node can run, it prints libtest's result line (which `make test` adds up) and `node tier: ran ...`.
//! The tests run one after another: they share one node, and each installs the operator cluster-wide.
//! Arguments that are not flags filter tests by substring, as libtest does.

mod host;
mod install;

use std::process::ExitCode;
use std::time::Instant;

/// A test of this tier: its name and body (which panics to fail).
struct NodeTest {
    name: &'static str,
    run: fn(&install::Cluster),
}

/// The tests that run on the shared node, in order.
const TESTS: &[NodeTest] = &[
    NodeTest {
        name: "kustomize_install_runs_two_ready_locked_down_replicas_that_reconcile_and_fail_over",
        run: install::kustomize_install_runs_two_ready_locked_down_replicas_that_reconcile_and_fail_over,
    },
    NodeTest {
        name: "namespaced_overlay_reconciles_only_its_namespace",
        run: install::namespaced_overlay_reconciles_only_its_namespace,
    },
    NodeTest {
        name: "upgrade_to_a_new_image_applies_the_crds_first_and_loses_nothing",
        run: install::upgrade_to_a_new_image_applies_the_crds_first_and_loses_nothing,
    },
    NodeTest {
        name: "helm_install_runs_ready_replicas_that_reconcile",
        run: install::helm_install_runs_ready_replicas_that_reconcile,
    },
];
/// Runs before the shared node exists: it starts and stops nodes of its own.
const TEARDOWN_TEST: &str = "a_node_restores_the_host_and_a_second_node_waits_for_the_first";

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let selected = |name: &str| {
        filters.is_empty() || filters.iter().any(|filter| name.contains(filter.as_str()))
    };
    // `cargo test --list` and friends: list and stop.
    if std::env::args().any(|arg| arg == "--list") {
        for name in std::iter::once(TEARDOWN_TEST).chain(TESTS.iter().map(|test| test.name)) {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if let Some(reason) = testenv::node::unsupported_reason() {
        println!("node tier: NOT RUN: {reason}; its tests were not run and are not counted");
        return ExitCode::SUCCESS;
    }
    testenv::install_crypto_provider();
    let started = Instant::now();
    let mut passed = 0;
    let mut failed = Vec::new();
    let mut filtered = 0;
    let mut record = |name: &str, outcome: std::thread::Result<()>, took: f64| match outcome {
        Ok(()) => {
            println!("test {name} ... ok ({took:.1} s)");
            passed += 1;
        }
        Err(_) => {
            println!("test {name} ... FAILED ({took:.1} s)");
            failed.push(name.to_string());
        }
    };

    // A node left by an earlier run or by a failed test of this one is torn down first (this waits for
    // the machine's lock), so each reading of the host starts from a clean one.
    let clean_host = || {
        let mut teardown = std::process::Command::new("bash");
        teardown
            .arg(ivschat_testsupport::command::repo_path("hack/node.sh"))
            .arg("teardown");
        ivschat_testsupport::command::succeed(teardown, None);
    };
    clean_host();
    if selected(TEARDOWN_TEST) {
        let test_started = Instant::now();
        let outcome = std::panic::catch_unwind(
            install::a_node_restores_the_host_and_a_second_node_waits_for_the_first,
        );
        record(TEARDOWN_TEST, outcome, test_started.elapsed().as_secs_f64());
    } else {
        filtered += 1;
    }

    let chosen: Vec<&NodeTest> = TESTS.iter().filter(|test| selected(test.name)).collect();
    filtered += TESTS.len() - chosen.len();
    let mut node_start = None;
    if !chosen.is_empty() {
        clean_host();
        let before = host::snapshot();
        match std::panic::catch_unwind(install::Cluster::start) {
            Ok(cluster) => {
                node_start = Some(cluster.startup_seconds());
                for test in chosen {
                    let test_started = Instant::now();
                    cluster.clean_slate();
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        (test.run)(&cluster)
                    }));
                    record(test.name, outcome, test_started.elapsed().as_secs_f64());
                }
                drop(cluster);
                let left = host::differences(&before, &host::snapshot());
                if !left.is_empty() {
                    println!(
                        "test shared_node_teardown ... FAILED: the host differs after the teardown:"
                    );
                    for difference in left {
                        println!("{difference}");
                    }
                    failed.push("shared_node_teardown".into());
                }
            }
            Err(_) => {
                for test in chosen {
                    record(test.name, Err(Box::new("no node")), 0.0);
                }
            }
        }
    }

    let total = started.elapsed().as_secs_f64();
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {filtered} filtered out; finished in {total:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    println!(
        "node tier: ran {} tests in {total:.0} s{}",
        passed + failed.len(),
        node_start.map_or(String::new(), |seconds| format!(
            " (shared node up in {seconds:.1} s)"
        ))
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
