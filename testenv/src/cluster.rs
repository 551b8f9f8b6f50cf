//! The long-lived control plane of `testenv up` / `testenv down` (`make cluster-up` / `make cluster-down`):
//! a detached [`ControlPlane`] whose state dir (default `~/.cache/ivschat-operator/cluster`) holds its
//! kubeconfig, data, logs and PID files. Whether it runs is read from the PID files, so every command is a
//! separate process and nothing else needs to be remembered.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use kube::config::Kubeconfig;

use crate::process::{self, APISERVER, ETCD};
use crate::{ControlPlane, StartOptions, is_data_dir};

/// Overrides the state dir of `testenv up` / `down`.
pub const STATE_DIR_ENV: &str = "IVSCHAT_CLUSTER_DIR";

/// The default state dir: `<cache>/cluster`, where `<cache>` is resolved as in `hack/k8s-bins.sh`
/// (`$IVSCHAT_CACHE_DIR`, else `$XDG_CACHE_HOME/ivschat-operator`, else `~/.cache/ivschat-operator`).
pub fn default_state_dir() -> Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let cache = if let Some(dir) = non_empty("IVSCHAT_CACHE_DIR") {
        PathBuf::from(dir)
    } else if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        PathBuf::from(dir).join("ivschat-operator")
    } else {
        let home = non_empty("HOME")
            .ok_or_else(|| anyhow!("HOME is not set; pass --state-dir or set {STATE_DIR_ENV}"))?;
        PathBuf::from(home).join(".cache/ivschat-operator")
    };
    Ok(cache.join("cluster"))
}

/// A control plane running from a state dir.
#[derive(Debug, Clone)]
pub struct RunningCluster {
    pub kubeconfig_path: PathBuf,
    pub server_url: String,
    pub bin_dir: PathBuf,
}

/// What `up` did.
#[derive(Debug)]
pub enum Up {
    Started {
        cluster: RunningCluster,
        startup_duration: Duration,
    },
    AlreadyRunning(RunningCluster),
}

/// Starts a detached control plane in `state_dir`, unless one already runs there. Leftovers of one that
/// died (e.g. at a reboot) are cleaned up first. `with_node`: with this machine's node (see [`crate::node`]).
pub fn up(state_dir: &Path, ready_timeout: Duration, with_node: bool) -> Result<Up> {
    let state_dir = absolute(state_dir)?;
    let _exclusive = lock_state_dir(&state_dir)?;
    if let Some(cluster) = status(&state_dir)? {
        return Ok(Up::AlreadyRunning(cluster));
    }
    if state_dir.exists() && is_data_dir(&state_dir) {
        process::clean_now(&state_dir)?;
    }
    let control_plane = ControlPlane::start(StartOptions {
        data_dir: Some(state_dir),
        detached: true,
        ready_timeout,
        with_node,
        ..StartOptions::default()
    })?;
    Ok(Up::Started {
        cluster: RunningCluster {
            kubeconfig_path: control_plane.kubeconfig_path().to_path_buf(),
            server_url: control_plane.server_url(),
            bin_dir: ControlPlane::bin_dir()?,
        },
        startup_duration: control_plane.startup_duration(),
    })
}

/// The control plane running in `state_dir`, if both of its servers are alive.
pub fn status(state_dir: &Path) -> Result<Option<RunningCluster>> {
    let state_dir = absolute(state_dir)?;
    if !is_data_dir(&state_dir) {
        return Ok(None);
    }
    let running = [ETCD, APISERVER]
        .iter()
        .all(|name| process::recorded_live_pid(&state_dir, name).is_some());
    if !running {
        return Ok(None);
    }
    let kubeconfig_path = state_dir.join("kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&kubeconfig_path)
        .with_context(|| format!("reading {}", kubeconfig_path.display()))?;
    let server_url = kubeconfig
        .clusters
        .iter()
        .find_map(|named| named.cluster.as_ref()?.server.clone())
        .ok_or_else(|| anyhow!("{} names no server", kubeconfig_path.display()))?;
    Ok(Some(RunningCluster {
        kubeconfig_path,
        server_url,
        bin_dir: ControlPlane::bin_dir()?,
    }))
}

/// Stops the control plane of `state_dir` and removes the dir. `Ok(false)` when there was nothing to stop.
pub fn down(state_dir: &Path) -> Result<bool> {
    let state_dir = absolute(state_dir)?;
    let _exclusive = lock_state_dir(&state_dir)?;
    if !state_dir.exists() {
        return Ok(false);
    }
    if !is_data_dir(&state_dir) {
        bail!(
            "{} is not a control plane state dir; refusing to remove it",
            state_dir.display()
        );
    }
    let was_running = [ETCD, APISERVER]
        .iter()
        .any(|name| process::recorded_live_pid(&state_dir, name).is_some());
    // A node joined to this control plane is torn down first (while its API server still answers).
    if state_dir.join("node.log").exists() {
        crate::node::stop_detached(&state_dir)?;
    }
    process::clean_now(&state_dir)?;
    Ok(was_running)
}

/// Serialises `up` and `down` on one state dir: two concurrent `up`s would otherwise both find nothing
/// running and start two control planes into the same directory. The lock file sits next to the state dir,
/// which `down` removes; the lock is released when the returned file is dropped.
fn lock_state_dir(state_dir: &Path) -> Result<File> {
    let mut lock_name = state_dir
        .file_name()
        .ok_or_else(|| anyhow!("{} has no directory name", state_dir.display()))?
        .to_os_string();
    lock_name.push(".lock");
    let lock_path = state_dir.with_file_name(lock_name);
    if let Some(parent) = lock_path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    Ok(lock)
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).with_context(|| format!("making {} absolute", dir.display()))
}
