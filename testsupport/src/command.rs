//! Child processes of the tests (kubectl, helm, scripts): run with optional stdin, output captured; and where
//! any process is in its life ([`process_state`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A path in the repository (the workspace root).
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the support crate lives in the workspace")
        .join(relative)
}

/// Bytes of a process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command` to its end, feeding it `stdin` if given (else `/dev/null`), stdout and stderr captured.
pub fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let description = format!("{command:?}");
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("starting {description}: {err}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writing stdin");
    }
    child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("running {description}: {err}"))
}

/// [`run`] that fails the test unless the command succeeds; returns its stdout.
pub fn succeed(command: Command, stdin: Option<&str>) -> String {
    let description = format!("{command:?}");
    let output = run(command, stdin);
    assert!(
        output.status.success(),
        "{description} failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs the installer script `script` (a repository path such as `hack/awscli.sh`), which builds or finds a
/// tool in the cache and prints its path; fails the test with what the script needs when it cannot.
pub async fn install_tool(script: &str, what: &str, needs: &str) -> PathBuf {
    let path = repo_path(script);
    let output = tokio::process::Command::new(&path)
        .output()
        .await
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", path.display()));
    assert!(
        output.status.success(),
        "{script} could not install {what} (it needs {needs}):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).expect("utf-8 path").trim())
}

/// Where a process is in its life, as /proc/PID/stat tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Runs its own code.
    Running,
    /// Past its last instruction, not yet a zombie: the kernel is tearing it down (the PF_EXITING flag, or
    /// state X). Its descriptors close in this phase, so its flocks may already be released.
    Exiting,
    /// Exited, waiting for its parent to reap it.
    Zombie,
    /// No such process (reaped, or never was), or a stat that cannot be read.
    Gone,
}

/// The state of process `pid` (see [`ProcessState`]).
pub fn process_state(pid: u32) -> ProcessState {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcessState::Gone;
    };
    // After the command name in parentheses: state ppid pgrp session tty_nr tpgid flags …
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return ProcessState::Gone;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
    match fields.first() {
        None => ProcessState::Gone,
        Some(&"Z") => ProcessState::Zombie,
        Some(&"X") => ProcessState::Exiting,
        Some(_) if flags & PF_EXITING != 0 => ProcessState::Exiting,
        Some(_) => ProcessState::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_states_are_read_from_proc() {
        assert_eq!(process_state(std::process::id()), ProcessState::Running);
        let mut child = Command::new("true").spawn().expect("true");
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_state(pid) != ProcessState::Zombie {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                process_state(pid)
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().expect("reaped");
        assert_eq!(process_state(pid), ProcessState::Gone);
    }
}
