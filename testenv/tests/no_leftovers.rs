//! No etcd or kube-apiserver outlives the process that started it, however that process ends.
//!
//! This binary has no libtest harness: run plainly, it is the checker and re-executes itself with
//! `TESTENV_LEFTOVER_ROLE` set; in that role it starts a control plane, reports its data dir, and ends the
//! way the checker asks (panic, SIGKILL, Ctrl-C). The checker then expects every process naming the data dir
//! and the dir itself to be gone within a bounded wait.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use testenv::{ControlPlane, StartOptions};

const ROLE_ENV: &str = "TESTENV_LEFTOVER_ROLE";
/// The watchdog kills at once; the margin is for a machine busy with parallel builds.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// The shared control plane (a static: no destructor runs) and a panic on the main thread.
    SharedThenPanic,
    /// A private control plane on the panicking thread's stack: unwinding runs its Drop.
    PrivateThenPanic,
    /// The shared control plane and SIGKILL: nothing of the process runs any more.
    SharedThenSigkill,
    /// The shared control plane and SIGINT to the process group, as Ctrl-C in a terminal sends it.
    SharedThenCtrlC,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::SharedThenPanic,
        Scenario::PrivateThenPanic,
        Scenario::SharedThenSigkill,
        Scenario::SharedThenCtrlC,
    ];

    /// The name a test filter matches, as libtest would name it.
    fn name(self) -> String {
        format!("no_leftovers::{}", self.role())
    }

    fn role(self) -> &'static str {
        match self {
            Scenario::SharedThenPanic => "shared-panic",
            Scenario::PrivateThenPanic => "private-panic",
            Scenario::SharedThenSigkill => "shared-sigkill",
            Scenario::SharedThenCtrlC => "shared-ctrl-c",
        }
    }
}

fn main() -> Result<()> {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        return play_role(&role);
    }
    let selection = Selection::from_args(std::env::args().skip(1));
    if selection.list {
        for scenario in Scenario::ALL {
            println!("{}: test", scenario.name());
        }
        return Ok(());
    }
    let mut failures = 0;
    for scenario in Scenario::ALL
        .into_iter()
        .filter(|s| selection.includes(&s.name()))
    {
        let started = Instant::now();
        match check(scenario) {
            Ok(()) => println!(
                "test {} ... ok ({:.1?})",
                scenario.name(),
                started.elapsed()
            ),
            Err(err) => {
                failures += 1;
                println!("test {} ... FAILED\n{err:#}", scenario.name());
            }
        }
    }
    ensure!(failures == 0, "{failures} no_leftovers scenario(s) failed");
    Ok(())
}

/// The libtest arguments this harness-less binary honours, so `cargo test NAME`, `--skip`, `--exact` and
/// `--list` select the same scenarios they would in a libtest binary.
#[derive(Default)]
struct Selection {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
}

impl Selection {
    fn from_args(mut args: impl Iterator<Item = String>) -> Self {
        /// libtest options that take a separate value, which is not a filter.
        const WITH_VALUE: &[&str] = &[
            "--test-threads",
            "--format",
            "--color",
            "--logfile",
            "--shuffle-seed",
            "-Z",
        ];
        let mut selection = Selection::default();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--list" => selection.list = true,
                "--exact" => selection.exact = true,
                "--skip" => selection.skips.extend(args.next()),
                option if WITH_VALUE.contains(&option) => {
                    args.next();
                }
                option if option.starts_with('-') => {}
                filter => selection.filters.push(filter.to_string()),
            }
        }
        selection
    }

    fn includes(&self, name: &str) -> bool {
        let matches = |pattern: &String| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}

/// The child side: start a control plane, say where it lives, wait for the checker, then end as told.
fn play_role(role: &str) -> Result<()> {
    let private;
    let control_plane = if role == "private-panic" {
        private = ControlPlane::start(StartOptions::default())?;
        &private
    } else {
        ControlPlane::shared()
    };
    println!("READY {}", control_plane.data_dir().display());
    std::io::stdout().flush()?;
    // Block until the checker has seen the servers and writes a line (or closes stdin).
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    match role {
        "shared-panic" | "private-panic" => panic!("deliberate panic with a control plane running"),
        // SIGKILL / SIGINT arrive from the checker; keep the process alive until they do.
        _ => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
    }
}

fn check(scenario: Scenario) -> Result<()> {
    // Through `env --default-signal=INT`: a shell's background job (and all it starts) has SIGINT ignored,
    // and a child inheriting that cannot be stopped by a simulated Ctrl-C, while a terminal's foreground
    // job, which a real Ctrl-C reaches, always has it at its default.
    let mut child = Command::new("env")
        .arg("--default-signal=INT")
        .arg(std::env::current_exe()?)
        .env(ROLE_ENV, scenario.role())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so the simulated Ctrl-C reaches only the child (and whatever it leaves in the group).
        .process_group(0)
        .spawn()
        .context("re-executing this test binary")?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow!("no stderr pipe"))?;
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });

    let outcome = run_child(scenario, &mut child);
    if outcome.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let child_stderr = stderr_reader.join().unwrap_or_default();
    outcome.with_context(|| format!("child stderr:\n{child_stderr}"))
}

fn run_child(scenario: Scenario, child: &mut Child) -> Result<()> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    let mut ready_line = String::new();
    BufReader::new(stdout).read_line(&mut ready_line)?;
    let data_dir = PathBuf::from(
        ready_line
            .trim()
            .strip_prefix("READY ")
            .ok_or_else(|| anyhow!("the child did not report a data dir: {ready_line:?}"))?,
    );
    common::assert_servers_running(&data_dir)?;

    let pid = child.id();
    match scenario {
        Scenario::SharedThenPanic | Scenario::PrivateThenPanic => {
            let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin pipe"))?;
            stdin.write_all(b"panic now\n")?;
        }
        Scenario::SharedThenSigkill => child.kill()?,
        Scenario::SharedThenCtrlC => {
            ensure!(
                !ignores_sigint(pid),
                "the child has SIGINT ignored, so Ctrl-C cannot be simulated"
            );
            let status = Command::new("kill")
                .args(["-INT", "--", &format!("-{pid}")])
                .status()?;
            ensure!(status.success(), "kill -INT -{pid} failed: {status}");
        }
    }
    let status = wait_with_timeout(child, CLEANUP_TIMEOUT)?;
    let expected = match scenario {
        Scenario::SharedThenPanic | Scenario::PrivateThenPanic => status.code() == Some(101),
        Scenario::SharedThenSigkill => status.signal() == Some(9),
        Scenario::SharedThenCtrlC => status.signal() == Some(2),
    };
    ensure!(
        expected,
        "the child ended with {status}, not as {scenario:?} should"
    );

    common::wait_until_gone(&data_dir, CLEANUP_TIMEOUT)
}

/// Whether `pid` ignores SIGINT (bit 1 of SigIgn in /proc/PID/status, signal 2).
fn ignores_sigint(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << 1) != 0)
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            bail!("the child did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
