//! `testenv up` starts a control plane that outlives the command, a second `up` reuses it, `env` points at
//! it, and `testenv down` stops it and removes its state dir.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, ensure};

const TESTENV: &str = env!("CARGO_BIN_EXE_testenv");

/// Runs `testenv down` for the state dir if the test ends early, so a failure leaves no cluster running.
struct DownOnDrop(PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = testenv_command("down", &self.0);
        // The lock file `up`/`down` leave next to the state dir.
        let _ = std::fs::remove_file(self.0.with_extension("lock"));
    }
}

fn testenv_command(action: &str, state_dir: &Path) -> Result<Output> {
    Command::new(TESTENV)
        .arg(action)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .with_context(|| format!("running testenv {action}"))
}

fn succeeded(action: &str, output: Output) -> Result<(String, String)> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    ensure!(
        output.status.success(),
        "testenv {action} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    Ok((stdout, stderr))
}

#[test]
fn up_outlives_itself_a_second_up_reuses_it_and_down_removes_it() -> Result<()> {
    let state_dir = std::env::temp_dir().join(format!("testenv-up-down-{}", std::process::id()));
    let _cleanup = DownOnDrop(state_dir.clone());
    let kubeconfig = state_dir.join("kubeconfig");
    let export_line = format!("export KUBECONFIG={}", kubeconfig.display());

    let (stdout, stderr) = succeeded("up", testenv_command("up", &state_dir)?)?;
    ensure!(stdout.lines().any(|line| line == export_line), "{stdout}");
    ensure!(stderr.contains("ready at https://127.0.0.1:"), "{stderr}");
    eprintln!("{}", stderr.trim());
    let bin_dir = testenv::ControlPlane::bin_dir()?;
    let path_line = format!("export PATH={}:\"$PATH\"", bin_dir.display());
    ensure!(stdout.lines().any(|line| line == path_line), "{stdout}");

    // `up` has exited; its servers serve.
    common::assert_servers_running(&state_dir)?;
    let kubectl = Command::new(bin_dir.join("kubectl"))
        .env("KUBECONFIG", &kubeconfig)
        .args(["get", "namespace", "default", "-o", "name"])
        .output()?;
    ensure!(
        kubectl.status.success(),
        "{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&kubectl.stdout).trim(),
        "namespace/default"
    );

    let (stdout, stderr) = succeeded("up", testenv_command("up", &state_dir)?)?;
    ensure!(stderr.contains("already running"), "{stderr}");
    ensure!(stdout.lines().any(|line| line == export_line), "{stdout}");

    let (stdout, _) = succeeded("env", testenv_command("env", &state_dir)?)?;
    ensure!(stdout.lines().any(|line| line == export_line), "{stdout}");

    let (_, stderr) = succeeded("down", testenv_command("down", &state_dir)?)?;
    ensure!(stderr.contains("stopped"), "{stderr}");
    // `down` waits for the servers to exit before it returns.
    common::wait_until_gone(&state_dir, Duration::ZERO)?;

    let (_, stderr) = succeeded("down", testenv_command("down", &state_dir)?)?;
    ensure!(stderr.contains("no control plane was running"), "{stderr}");
    let (stdout, _) = succeeded("env", testenv_command("env", &state_dir)?)?;
    ensure!(!stdout.contains("KUBECONFIG"), "{stdout}");
    Ok(())
}
