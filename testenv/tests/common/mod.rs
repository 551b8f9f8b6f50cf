//! Helpers shared by the testenv integration tests: finding the processes that belong to a data dir.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// A process whose command line names a data dir.
#[derive(Debug)]
pub struct OwnedProcess {
    pub pid: u32,
    pub command_line: String,
}

impl OwnedProcess {
    /// The program's file name, e.g. `etcd`.
    pub fn program(&self) -> &str {
        let program = self.command_line.split(' ').next().unwrap_or_default();
        program.rsplit('/').next().unwrap_or(program)
    }
}

/// Every process (of any kind) whose command line contains `dir`.
pub fn processes_naming(dir: &Path) -> Vec<OwnedProcess> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let command_line = String::from_utf8_lossy(&raw).replace('\0', " ");
            command_line.contains(&needle).then(|| OwnedProcess {
                pid,
                command_line: command_line.trim().to_string(),
            })
        })
        .collect()
}

/// Fails unless etcd and kube-apiserver of `dir` are running: proves the leftover checks can see them.
pub fn assert_servers_running(dir: &Path) -> Result<()> {
    let processes = processes_naming(dir);
    for program in ["etcd", "kube-apiserver"] {
        if !processes.iter().any(|process| process.program() == program) {
            bail!(
                "no {program} running for {}; found {processes:#?}",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Waits up to `timeout` until no process names `dir` and `dir` is gone.
pub fn wait_until_gone(dir: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let processes = processes_naming(dir);
        if processes.is_empty() && !dir.exists() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "after {timeout:?}: processes still naming {}: {processes:#?}; dir exists: {}",
                dir.display(),
                dir.exists()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
