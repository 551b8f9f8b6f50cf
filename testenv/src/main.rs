//! `testenv`: a local etcd + kube-apiserver for people and scripts (`make cluster-up` / `make cluster-down`).
//!
//! Shell lines (`export ...`) go to stdout so `eval "$(testenv up)"` works; messages go to stderr.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use testenv::ControlPlane;
use testenv::cluster::{self, RunningCluster, STATE_DIR_ENV, Up};

#[derive(Parser)]
#[command(
    name = "testenv",
    about = "A local Kubernetes control plane (etcd + kube-apiserver, TLS, RBAC) for ivschat-operator"
)]
struct Cli {
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Start a control plane that keeps running after this command; print `export KUBECONFIG=...`.
    Up {
        #[command(flatten)]
        state: StateDir,
        /// Seconds to wait for the control plane to become ready.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Also start this machine's one node (kubelet, containerd, ...), so Pods run; needs root.
        #[arg(long)]
        with_node: bool,
    },
    /// Stop the control plane started by `up` and remove its data.
    Down {
        #[command(flatten)]
        state: StateDir,
    },
    /// Print shell lines that put the Kubernetes binaries on PATH and, if a control plane runs, set KUBECONFIG.
    Env {
        #[command(flatten)]
        state: StateDir,
    },
    /// Print the directory holding kube-apiserver, etcd and kubectl (building them the first time).
    BinDir,
}

#[derive(clap::Args)]
struct StateDir {
    /// Where the control plane keeps its kubeconfig, data and logs [default: ~/.cache/ivschat-operator/cluster]
    #[arg(long = "state-dir", env = STATE_DIR_ENV)]
    dir: Option<PathBuf>,
}

impl StateDir {
    fn resolve(self) -> Result<PathBuf> {
        match self.dir {
            Some(dir) => Ok(dir),
            None => cluster::default_state_dir(),
        }
    }
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Action::Up {
            state,
            timeout,
            with_node,
        } => {
            let state_dir = state.resolve()?;
            match cluster::up(&state_dir, Duration::from_secs(timeout), with_node)? {
                Up::Started {
                    cluster,
                    startup_duration,
                } => {
                    eprintln!(
                        "testenv: control plane {} ready at {} in {:.1?}; stop it with `testenv down`",
                        testenv::pinned_kubernetes_version()?,
                        cluster.server_url,
                        startup_duration
                    );
                    print_exports(&cluster);
                }
                Up::AlreadyRunning(cluster) => {
                    eprintln!(
                        "testenv: a control plane is already running at {} (state in {})",
                        cluster.server_url,
                        state_dir.display()
                    );
                    print_exports(&cluster);
                }
            }
        }
        Action::Down { state } => {
            let state_dir = state.resolve()?;
            if cluster::down(&state_dir)? {
                eprintln!(
                    "testenv: control plane stopped, {} removed",
                    state_dir.display()
                );
            } else {
                eprintln!(
                    "testenv: no control plane was running in {}",
                    state_dir.display()
                );
            }
        }
        Action::Env { state } => {
            let state_dir = state.resolve()?;
            match cluster::status(&state_dir)? {
                Some(cluster) => print_exports(&cluster),
                None => print_path(&ControlPlane::bin_dir()?),
            }
        }
        Action::BinDir => println!("{}", ControlPlane::bin_dir()?.display()),
    }
    Ok(())
}

fn print_exports(cluster: &RunningCluster) {
    println!(
        "export KUBECONFIG={}",
        shell_quote(&cluster.kubeconfig_path.to_string_lossy())
    );
    print_path(&cluster.bin_dir);
}

/// The pinned kubectl first on PATH: a system kubectl may be far outside the supported version skew.
fn print_path(bin_dir: &Path) {
    println!(
        "export PATH={}:\"$PATH\"",
        shell_quote(&bin_dir.to_string_lossy())
    );
}

/// `value` as one shell word: unchanged when it only has safe characters, else single-quoted.
fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:@,%".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quote_leaves_plain_paths_alone_and_quotes_the_rest() {
        assert_eq!(
            shell_quote("/root/.cache/ivschat-operator/cluster/kubeconfig"),
            "/root/.cache/ivschat-operator/cluster/kubeconfig"
        );
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
