//! Private control planes: kube-apiserver can be stopped and started again on the same port with the same
//! certificates, etcd keeps the data, existing clients reconnect, and dropping one leaves nothing behind;
//! a start that fails says why (with the server's log) and cleans up too.

use crate::common;

use std::time::Duration;

use anyhow::{Result, bail, ensure};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use testenv::{ControlPlane, StartOptions};

#[tokio::test]
async fn a_restarted_apiserver_keeps_its_port_and_data_and_clients_reconnect() -> Result<()> {
    let control_plane = ControlPlane::start(StartOptions::default())?;
    let data_dir = control_plane.data_dir().to_path_buf();
    let server_url = control_plane.server_url();
    let config_maps: Api<ConfigMap> = Api::namespaced(control_plane.client().await?, "default");
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("survives-restart".to_string()),
            ..ObjectMeta::default()
        },
        data: Some([("key".to_string(), "value".to_string())].into()),
        ..ConfigMap::default()
    };
    config_maps
        .create(&PostParams::default(), &config_map)
        .await?;

    control_plane.stop_apiserver()?;
    match tokio::time::timeout(Duration::from_secs(30), config_maps.get("survives-restart")).await {
        Ok(Err(_)) => {}
        Ok(Ok(found)) => bail!("the stopped apiserver still answered: {found:?}"),
        Err(_) => bail!("a request to the stopped apiserver neither failed nor answered in 30s"),
    }
    let kubectl = control_plane
        .kubectl()
        .args(["get", "namespace", "default", "--request-timeout=5s"])
        .output()?;
    ensure!(
        !kubectl.status.success(),
        "kubectl reached a stopped apiserver"
    );

    control_plane.start_apiserver()?;
    assert_eq!(control_plane.server_url(), server_url);
    // The client created before the stop, not a new one.
    let found = config_maps.get("survives-restart").await?;
    assert_eq!(found.data, config_map.data);
    let kubectl = control_plane
        .kubectl()
        .args(["get", "configmap", "survives-restart", "-o", "name"])
        .output()?;
    ensure!(
        kubectl.status.success(),
        "kubectl after the restart: {}",
        String::from_utf8_lossy(&kubectl.stderr)
    );
    // Starting a running apiserver is a no-op.
    control_plane.start_apiserver()?;

    common::assert_servers_running(&data_dir)?;
    drop(control_plane);
    // Drop is synchronous: nothing to wait for.
    common::wait_until_gone(&data_dir, Duration::ZERO)
}

#[test]
fn a_failed_start_reports_the_server_log_and_leaves_nothing_behind() -> Result<()> {
    let data_dir =
        std::env::temp_dir().join(format!("testenv-failed-start-{}", std::process::id()));
    let outcome = ControlPlane::start(StartOptions {
        data_dir: Some(data_dir.clone()),
        extra_apiserver_args: vec!["--no-such-flag-for-this-test".to_string()],
        ..StartOptions::default()
    });
    let message = match outcome {
        Ok(_) => bail!("kube-apiserver started with an unknown flag"),
        Err(err) => format!("{err:#}"),
    };
    ensure!(message.contains("kube-apiserver exited with"), "{message}");
    // The tail of the apiserver's own log names the cause.
    ensure!(message.contains("no-such-flag-for-this-test"), "{message}");
    ensure!(message.contains("kube-apiserver.log"), "{message}");
    common::wait_until_gone(&data_dir, Duration::ZERO)
}
