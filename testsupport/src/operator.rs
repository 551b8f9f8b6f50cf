//! Starting the operator for a test: the driver timing the suites use in-process, and the command line and
//! environment of the `ivschat-operator run` binary pointed at a control plane and an emulator.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use ivschat_emulator::Emulator;
use ivschat_operator::controller::driver::Timing;
use testenv::ControlPlane;

/// The driver's timing in the suites: `resync_period` as the test needs, and polling and backoff short
/// enough that a test sees a retry within a second or two.
pub fn test_timing(resync_period: Duration) -> Timing {
    Timing {
        resync_period,
        poll_interval: Duration::from_millis(200),
        base_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        long_backoff: Duration::from_secs(3),
    }
}

/// What an `ivschat-operator run` process is pointed at: a control plane's kubeconfig and an emulator's
/// endpoint, region and static credentials (owned, so a process can be restarted from it).
#[derive(Debug, Clone)]
pub struct Target {
    kubeconfig: PathBuf,
    endpoint: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
}

impl Target {
    pub fn new(control_plane: &ControlPlane, emulator: &Emulator) -> Target {
        let config = emulator.config();
        Target {
            kubeconfig: control_plane.kubeconfig_path().to_owned(),
            endpoint: emulator.url(),
            region: config.region.clone(),
            access_key_id: config.access_key_id.clone(),
            secret_access_key: config.secret_access_key.clone(),
        }
    }

    /// The same target reached through another kubeconfig (e.g. one whose server is a
    /// [`crate::proxy::Proxy`]).
    pub fn with_kubeconfig(mut self, kubeconfig: PathBuf) -> Target {
        self.kubeconfig = kubeconfig;
        self
    }

    /// `BINARY run --namespace NAMESPACE --aws-endpoint-url EMULATOR` with the kubeconfig, region and
    /// credentials in the environment; the caller adds its own flags and where the output goes. `binary` is
    /// the caller's `env!("CARGO_BIN_EXE_ivschat-operator")` (Cargo gives that path only to the package's
    /// own tests and benchmarks).
    pub fn command(&self, binary: &Path, namespace: &str) -> Command {
        let mut command = Command::new(binary);
        command
            .args(["run", "--namespace", namespace])
            .args(["--aws-endpoint-url", &self.endpoint])
            .env("KUBECONFIG", &self.kubeconfig)
            .env("AWS_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_access_key);
        command
    }
}

/// [`Target::command`] for one control plane and emulator.
pub fn run_command(
    binary: &Path,
    control_plane: &ControlPlane,
    emulator: &Emulator,
    namespace: &str,
) -> Command {
    Target::new(control_plane, emulator).command(binary, namespace)
}

/// An operator process of a test, SIGKILLed and reaped on every exit path (Drop).
pub struct Process {
    name: String,
    child: Child,
}

impl Process {
    /// Spawns `command`; `name` is how failures refer to it.
    pub fn spawn(name: &str, mut command: Command) -> Process {
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("starting the operator binary ({name}): {err}"));
        Process {
            name: name.to_owned(),
            child,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`-TERM`, `-KILL`, ...) with kill(1), as a container runtime would.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    /// The exit status if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waiting for the operator")
    }

    /// Waits for the process to end; fails the test after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (`Child::kill` on unix) and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
