//! The shared control plane of a test binary with the operator's CRDs installed, and namespaces on it.

use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};
use testenv::ControlPlane;

/// `kubectl` arguments that wait until both of the operator's CRDs are Established (a minute at most), for
/// tests that install them with kubectl themselves.
pub const WAIT_FOR_CRDS: [&str; 5] = [
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/chatrooms.ivschat.dev",
    "crd/chatloggingconfigurations.ivschat.dev",
];

/// A tracing subscriber writing to the test's output, once per process, for the suites that run the
/// controllers in-process: `RUST_LOG=ivschat_operator=debug,kube_runtime=debug` shows the operator's view of
/// a failing test.
pub fn install_test_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The test binary's shared control plane as it is: for tests of installing the CRDs themselves (another
/// test of the binary may have installed them already).
pub fn shared_control_plane() -> &'static ControlPlane {
    // kube links ring, the AWS SDK aws-lc-rs: rustls cannot pick a provider alone.
    testenv::install_crypto_provider();
    ControlPlane::shared()
}

/// The test binary's shared control plane, with the CRDs rendered from the Rust types installed (once per
/// process) and Established.
pub fn control_plane() -> &'static ControlPlane {
    let control_plane = shared_control_plane();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let yaml = ivschat_operator::crd::crds_yaml().expect("rendering the CRDs");
        control_plane
            .install_crds(&yaml)
            .expect("installing the CRDs");
    });
    control_plane
}

/// Creates the namespace `name` (each test uses its own, so an existing one is an error).
pub async fn create_namespace(kube: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(kube.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
                .expect("namespace"),
        )
        .await
        .unwrap_or_else(|err| panic!("creating namespace {name}: {err}"));
}
