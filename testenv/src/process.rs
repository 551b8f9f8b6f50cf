//! The server processes of a control plane and the guarantee that none outlives its owner.
//!
//! etcd and kube-apiserver are spawned in their own process group (Ctrl-C in a terminal reaches only the
//! owner), log into `<data dir>/<name>.log` and record their PID in `<data dir>/<name>.pid`.
//!
//! Rust runs no destructors for statics and none at all on SIGKILL, so Drop alone cannot clean up the shared
//! control plane. A watchdog (`sh`) holds the read end of a pipe whose only write end lives in the owning
//! process (Rust opens pipes close-on-exec, so no other child inherits it). However the owner ends —
//! normal exit, panic, Ctrl-C, SIGKILL — the kernel closes that end, the watchdog reads EOF and kills
//! the recorded processes, then removes the data dir. `testenv down` runs the same script without waiting.
//! A PID is only killed while its command line still names the data dir, so a reused PID is never hit.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// Process names, used for the log and PID file names.
pub(crate) const ETCD: &str = "etcd";
pub(crate) const APISERVER: &str = "kube-apiserver";

/// Kills the processes recorded in a data dir and removes the dir; in `watch` mode first waits for EOF on
/// stdin, i.e. for the owner to go away. Arguments: `$1` = `watch` | `clean`, `$2` = data dir.
const CLEANUP_SCRIPT: &str = r#"
set -u
mode=$1
dir=$2
# Ctrl-C and a closing terminal reach the whole foreground process group; this script must outlive the
# owner to clean up after it.
trap '' INT HUP QUIT
if [ "$mode" = watch ]; then
  while read -r _; do :; done
fi
owned_pids() {
  for name in kube-apiserver etcd; do
    f="$dir/$name.pid"
    [ -r "$f" ] || continue
    read -r pid < "$f" || continue
    case $pid in ''|*[!0-9]*) continue ;; esac
    grep -qaF -- "$dir" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
  done
}
# The killed servers that have not exited yet. Their cmdline empties while they are still dying, before they
# become zombies, so waiting on owned_pids alone could end while they still run (a demo test saw it).
unexited() {
  for pid in $pids; do
    line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    state=${line##*) }
    [ "${state%% *}" = Z ] || echo "$pid"
  done
}
pids=$(owned_pids)
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
n=0
while [ -n "$(unexited)" ] && [ "$n" -lt 100 ]; do
  sleep 0.1
  n=$((n + 1))
done
rm -rf -- "$dir"
"#;

/// Loopback ports of one control plane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    pub(crate) etcd_client: u16,
    pub(crate) etcd_peer: u16,
    pub(crate) apiserver: u16,
}

impl Ports {
    /// Three distinct ports the kernel considers free right now. Another process may take one before the
    /// servers bind it; the caller retries with new ports when a server reports "address already in use".
    pub(crate) fn pick() -> Result<Self> {
        let listeners = (0..3)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<std::io::Result<Vec<_>>>()
            .context("binding loopback ports to find free ones")?;
        let ports = listeners
            .iter()
            .map(|listener| listener.local_addr().map(|addr| addr.port()))
            .collect::<std::io::Result<Vec<_>>>()
            .context("reading the picked ports")?;
        match ports.as_slice() {
            [etcd_client, etcd_peer, apiserver] => Ok(Self {
                etcd_client: *etcd_client,
                etcd_peer: *etcd_peer,
                apiserver: *apiserver,
            }),
            _ => bail!("expected three ports, got {ports:?}"),
        }
    }
}

/// Spawns a server that logs (appending, so a restart keeps the earlier log) into `<dir>/<name>.log` and
/// records its PID in `<dir>/<name>.pid` for the watchdog and `testenv down`.
pub(crate) fn spawn_server(
    program: &Path,
    args: &[String],
    dir: &Path,
    name: &str,
) -> Result<Child> {
    let log_path = dir.join(format!("{name}.log"));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let log_for_stderr = log
        .try_clone()
        .with_context(|| format!("duplicating the handle of {}", log_path.display()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let pid_path = dir.join(format!("{name}.pid"));
    if let Err(err) = std::fs::write(&pid_path, format!("{}\n", child.id())) {
        // Unrecorded, the process would escape the watchdog: do not let it run.
        let _ = child.kill();
        let _ = child.wait();
        return Err(err).with_context(|| format!("writing {}", pid_path.display()));
    }
    Ok(child)
}

/// Kills and reaps a server this process spawned, and forgets its PID file.
pub(crate) fn stop_server(child: &mut Child, dir: &Path, name: &str) -> Result<()> {
    // SIGKILL: the data is thrown away or, for fault tests, an abrupt stop is the point.
    match child.kill() {
        Ok(()) => {}
        // Already exited: nothing to kill, only to reap.
        Err(err) if err.kind() == std::io::ErrorKind::InvalidInput => {}
        Err(err) => return Err(err).with_context(|| format!("killing {name}")),
    }
    child
        .wait()
        .with_context(|| format!("waiting for {name} to exit"))?;
    match std::fs::remove_file(dir.join(format!("{name}.pid"))) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing the PID file of {name}"))
        }
        _ => Ok(()),
    }
}

/// The PID recorded for `name` in `dir`, if that process is still running with the data dir on its
/// command line (a dead or reused PID yields `None`).
pub(crate) fn recorded_live_pid(dir: &Path, name: &str) -> Option<u32> {
    let recorded = std::fs::read_to_string(dir.join(format!("{name}.pid"))).ok()?;
    let pid: u32 = recorded.trim().parse().ok()?;
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    contains(&command_line, dir.as_os_str().as_bytes()).then_some(pid)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The last `max_lines` lines of a server log, for error messages.
pub(crate) fn log_tail(dir: &Path, name: &str, max_lines: usize) -> String {
    const MAX_BYTES: u64 = 64 * 1024;
    let path = dir.join(format!("{name}.log"));
    let read = || -> std::io::Result<String> {
        let mut file = File::open(&path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(max_lines)..].join("\n");
            format!("last lines of {}:\n{tail}", path.display())
        }
        Err(err) => format!("(could not read {}: {err})", path.display()),
    }
}

/// The process that cleans up after the owner of a data dir, however the owner ends.
pub(crate) struct Watchdog {
    process: Child,
}

impl Watchdog {
    /// Starts the watchdog for `dir`. Its stdin is the lifeline: the write end stays in this process only.
    pub(crate) fn spawn(dir: &Path) -> Result<Self> {
        let process = Command::new("sh")
            .arg("-c")
            .arg(CLEANUP_SCRIPT)
            .arg("testenv-watchdog")
            .arg("watch")
            .arg(dir)
            .stdin(Stdio::piped())
            // Not the owner's stdout/stderr: a reader of those pipes would otherwise wait for the watchdog.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the watchdog (sh)")?;
        Ok(Self { process })
    }

    /// Closes the lifeline and waits until the watchdog has cleaned up and exited.
    pub(crate) fn finish(mut self) -> Result<()> {
        drop(self.process.stdin.take());
        let status = self
            .process
            .wait()
            .context("waiting for the watchdog to exit")?;
        if !status.success() {
            bail!("the watchdog exited with {status}");
        }
        Ok(())
    }
}

/// Kills the processes recorded in `dir` and removes it, now (the `testenv down` path).
pub(crate) fn clean_now(dir: &Path) -> Result<()> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(CLEANUP_SCRIPT)
        .arg("testenv-cleanup")
        .arg("clean")
        .arg(dir)
        .stdin(Stdio::null())
        .status()
        .context("running the cleanup script (sh)")?;
    if !status.success() {
        bail!("cleaning up {} failed: {status}", dir.display());
    }
    if dir.exists() {
        bail!("{} still exists after cleanup", dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_finds_only_whole_needles() {
        assert!(contains(b"etcd\0--data-dir\0/tmp/x/etcd\0", b"/tmp/x"));
        assert!(!contains(b"etcd\0--data-dir\0/tmp/y/etcd\0", b"/tmp/x"));
        assert!(!contains(b"anything", b""));
    }

    #[test]
    fn picked_ports_are_distinct() -> Result<()> {
        let ports = Ports::pick()?;
        assert_ne!(ports.etcd_client, ports.etcd_peer);
        assert_ne!(ports.etcd_client, ports.apiserver);
        assert_ne!(ports.etcd_peer, ports.apiserver);
        Ok(())
    }
}
