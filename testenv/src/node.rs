//! The one node a control plane can grow into ([`crate::StartOptions::with_node`]): kubelet, containerd,
//! runc, the bridge CNI plugin, kube-controller-manager, kube-scheduler and kube-proxy, run by
//! `hack/node.sh`.
//!
//! The node changes host-wide state (sysctls, iptables, a bridge, an address on `lo`, cgroups, mounts,
//! fixed paths), so it lives in a supervisor process rather than in this one: the script takes the
//! machine's node lock, records the host, starts the node, and tears it down when its stdin reaches EOF.
//! That stdin is a pipe whose only write end is in the owning process, so the teardown runs however the
//! owner ends (exit, panic, Ctrl-C, SIGKILL) and the lock is held until the host is restored. A detached
//! node (`testenv up --with-node`) waits for SIGTERM instead (`hack/node.sh down`).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// The address on `lo` the node and the API server advertise (loopback addresses cannot be the endpoints
/// of the `kubernetes` Service). Pods reach host servers bound to it.
pub const NODE_IP: &str = "10.199.0.1";
/// The node's name in the cluster.
pub const NODE_NAME: &str = "ivschat-node";
/// The supervisor's log, in the control plane's data dir.
const SUPERVISOR_LOG: &str = "node.log";

/// Why this machine cannot run a node, or `None` when it can: root, and the tools the node uses
/// (`hack/node-deps.sh` installs the Debian packages).
pub fn unsupported_reason() -> Option<String> {
    // Reading /proc/self/status avoids a libc call for geteuid.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("");
    if uid != "0" {
        return Some(format!(
            "a node needs root (effective uid {})",
            if uid.is_empty() { "unknown" } else { uid }
        ));
    }
    let missing: Vec<&str> = [
        "containerd",
        "containerd-shim-runc-v2",
        "runc",
        "ctr",
        "iptables",
        "ip",
        "gcc",
    ]
    .into_iter()
    .filter(|tool| !on_path(tool))
    .collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing {} (bash hack/node-deps.sh installs them)",
            missing.join(", ")
        ));
    }
    if !Path::new("/usr/lib/cni/bridge").is_file() {
        return Some(
            "missing /usr/lib/cni/bridge (bash hack/node-deps.sh installs containernetworking-plugins)"
                .into(),
        );
    }
    if !Path::new("/sys/fs/cgroup/memory").is_dir()
        && !Path::new("/sys/fs/cgroup/cgroup.controllers").is_file()
    {
        return Some("no memory cgroup (neither cgroup v1's nor a cgroup v2 hierarchy)".into());
    }
    None
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/node.sh")
}

/// A node joined to a control plane, torn down when dropped (or, detached, by `hack/node.sh down`).
pub(crate) struct Node {
    supervisor: Child,
    lifeline: Option<ChildStdin>,
    log_path: PathBuf,
}

impl Node {
    /// Starts the node for the control plane in `control_plane_dir` (whose API server runs with the node
    /// flags). Waits without limit for the machine's node lock (another test binary's node), then at most
    /// `ready_timeout` for the node to be Ready.
    pub(crate) fn start(
        control_plane_dir: &Path,
        detached: bool,
        ready_timeout: Duration,
    ) -> Result<Node> {
        if let Some(reason) = unsupported_reason() {
            bail!("this machine cannot run a node: {reason}");
        }
        let log_path = control_plane_dir.join(SUPERVISOR_LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut command = Command::new("bash");
        command
            .arg(script())
            .arg("run")
            .arg(control_plane_dir)
            .arg(if detached {
                "--until-term"
            } else {
                "--until-eof"
            })
            .stdin(if detached {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(log)
            // Its own process group: Ctrl-C reaches only the owner, the supervisor tears down after it.
            .process_group(0);
        let mut supervisor = command.spawn().context("starting hack/node.sh")?;
        let lifeline = supervisor.stdin.take();
        let stdout = supervisor
            .stdout
            .take()
            .ok_or_else(|| anyhow!("hack/node.sh has no stdout pipe"))?;
        let mut node = Node {
            supervisor,
            lifeline,
            log_path,
        };
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut ready_deadline: Option<Instant> = None;
        let mut announced_wait = false;
        loop {
            let wait = match ready_deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(node
                            .failure(&format!("the node was not Ready within {ready_timeout:?}")));
                    }
                    left
                }
                None => Duration::from_secs(5),
            };
            match lines.recv_timeout(wait) {
                Ok(line) if line == "locked" => {
                    ready_deadline = Some(Instant::now() + ready_timeout);
                }
                Ok(line) if line == "ready" => return Ok(node),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if ready_deadline.is_none() => {
                    if !announced_wait {
                        eprintln!(
                            "testenv: waiting for this machine's node lock (another node is running)"
                        );
                        announced_wait = true;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(node.failure("hack/node.sh exited before the node was Ready"));
                }
            }
        }
    }

    /// `message` with the tail of the supervisor's log (the components' last lines are in it).
    fn failure(&mut self, message: &str) -> anyhow::Error {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        anyhow!(
            "{message}; last lines of {}:\n{tail}",
            self.log_path.display()
        )
    }

    /// Leaves a detached node running: its supervisor waits for `hack/node.sh down`.
    pub(crate) fn detach(self) {
        std::mem::forget(self);
    }

    /// Closes the lifeline and waits for the supervisor's teardown.
    fn stop_in_place(&mut self) -> Result<()> {
        drop(self.lifeline.take());
        let status = self
            .supervisor
            .wait()
            .context("waiting for the node's teardown")?;
        if !status.success() {
            return Err(self.failure(&format!("the node's teardown failed ({status})")));
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(err) = self.stop_in_place() {
            eprintln!("testenv: {err:#}");
        }
    }
}

/// Stops the detached node of the control plane in `control_plane_dir` (`testenv down`): `hack/node.sh
/// down`, which waits for its teardown (and leaves any other node alone).
pub(crate) fn stop_detached(control_plane_dir: &Path) -> Result<()> {
    let status = Command::new("bash")
        .arg(script())
        .arg("down")
        .arg(control_plane_dir)
        .stdin(Stdio::null())
        .status()
        .context("running hack/node.sh down")?;
    if !status.success() {
        bail!("hack/node.sh down failed ({status})");
    }
    Ok(())
}

/// Imports an image archive (OCI layout or `docker save` tar, e.g. `make image`'s) into the node's
/// containerd, where Pods with `imagePullPolicy: Never` find it: there is no registry.
pub fn import_image(archive: &Path) -> Result<()> {
    let output = Command::new("ctr")
        .args([
            "--address",
            "/var/lib/ivschat-operator-node/containerd/containerd.sock",
            "-n",
            "k8s.io",
            "images",
            "import",
        ])
        .arg(archive)
        .stdin(Stdio::null())
        .output()
        .context("running ctr images import")?;
    if !output.status.success() {
        bail!(
            "ctr images import {} failed: {}",
            archive.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
