//! Where kube-apiserver, etcd and kubectl come from: `hack/k8s-bins.sh` (which builds and caches them for the
//! version pinned in `hack/k8s-version`), or a directory named by `IVSCHAT_K8S_BIN_DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};

/// Overrides the build script with a directory that already holds the three binaries.
pub const BIN_DIR_ENV: &str = "IVSCHAT_K8S_BIN_DIR";
const BINARIES: &[&str] = &["kube-apiserver", "etcd", "kubectl"];
/// The single place the Kubernetes version is pinned.
const VERSION_FILE: &str = include_str!("../../hack/k8s-version");

/// The Kubernetes version the binaries are built at, e.g. `v1.36.3` (from `hack/k8s-version`).
pub fn pinned_kubernetes_version() -> Result<&'static str> {
    VERSION_FILE
        .lines()
        .find_map(|line| line.trim().strip_prefix("KUBE_VERSION="))
        .map(str::trim)
        .filter(|version| !version.is_empty())
        .ok_or_else(|| anyhow!("hack/k8s-version has no KUBE_VERSION= line"))
}

/// The directory holding the binaries, located (and, the first time on a machine, built) once per process.
pub(crate) fn bin_dir() -> Result<PathBuf> {
    static BIN_DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN_DIR
        .get_or_init(|| locate().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(|err| anyhow!(err))
}

fn locate() -> Result<PathBuf> {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => run_build_script()?,
    };
    for binary in BINARIES {
        let path = dir.join(binary);
        if !path.is_file() {
            bail!(
                "{} is missing (bin dir from {})",
                path.display(),
                if std::env::var_os(BIN_DIR_ENV).is_some() {
                    BIN_DIR_ENV
                } else {
                    "hack/k8s-bins.sh"
                }
            );
        }
    }
    Ok(dir)
}

fn run_build_script() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/k8s-bins.sh");
    // stderr is inherited: a first build takes minutes and its progress should be visible.
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}); set {BIN_DIR_ENV} to a directory with kube-apiserver, etcd and kubectl to skip it",
            script.display(),
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .ok_or_else(|| anyhow!("{} printed no directory", script.display()))?;
    Ok(PathBuf::from(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_version_is_a_v1_release() -> Result<()> {
        let version = pinned_kubernetes_version()?;
        assert!(version.starts_with("v1."), "{version}");
        assert_eq!(version.split('.').count(), 3, "{version}");
        Ok(())
    }
}
