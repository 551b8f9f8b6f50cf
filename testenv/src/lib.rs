//! A real Kubernetes control plane for tests: etcd and kube-apiserver (built from their Go modules at the
//! version pinned in `hack/k8s-version`) on free loopback ports, with TLS, RBAC, a throw-away PKI and an admin
//! kubeconfig usable by kubectl and kube-rs. No kubelet, scheduler or controllers: namespaces are never
//! finalized and owner references are not garbage-collected.
//!
//! [`ControlPlane::shared`] gives every test of a test binary the same control plane;
//! [`ControlPlane::start`] a private one (e.g. for a test that stops the apiserver). No etcd or
//! kube-apiserver outlives its owner: Drop stops a private one, and a watchdog process (see the `process`
//! module) cleans up after a test process that exits, panics, is interrupted or is SIGKILLed.
//! [`cluster`] holds the long-lived control plane of `testenv up` / `testenv down`.
//!
//! On demand ([`StartOptions::with_node`], [`ControlPlane::try_shared_with_node`]) the control plane grows into a
//! one-node cluster that runs Pods: see the [`node`] module (root only; one node per machine).

pub mod cluster;
pub mod node;

mod bins;
mod kubeconfig;
mod pki;
mod process;
mod readiness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use kube::config::Kubeconfig;
use serde::Deserialize as _;

pub use bins::{BIN_DIR_ENV, pinned_kubernetes_version};
pub use kubeconfig::install_crypto_provider;

use kubeconfig::Identity;
use process::{APISERVER, ETCD, Ports, Watchdog};

/// Marks a directory as a control plane's data dir, so `testenv down` and a reused `data_dir` never remove a
/// directory that is not ours.
const MARKER_FILE: &str = ".ivschat-testenv";
/// Start attempts when another process takes a picked port before the server binds it.
const START_ATTEMPTS: u32 = 3;
/// Lines of a server log quoted in an error.
const LOG_TAIL_LINES: usize = 40;

/// How [`ControlPlane::start`] sets up a control plane.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Directory for the certificates, etcd data, logs, PID files and kubeconfig. It must not exist yet, be
    /// empty, or be an earlier control plane's data dir. `None`: a new directory under the system temp dir.
    /// Removed when the control plane stops (unless `detached`).
    pub data_dir: Option<PathBuf>,
    /// Leave etcd and kube-apiserver running after the `ControlPlane` value and this process are gone
    /// (`testenv up`); they are stopped with `testenv down` ([`cluster::down`]). No watchdog is started.
    pub detached: bool,
    /// Upper bound for starting etcd and kube-apiserver and seeing the `default` namespace.
    pub ready_timeout: Duration,
    /// Extra kube-apiserver flags, e.g. `--feature-gates=...`, each replacing the default of the same flag
    /// if there is one (`--flag=value` form); also used by [`ControlPlane::start_apiserver`].
    pub extra_apiserver_args: Vec<String>,
    /// Also start this machine's node (kubelet, containerd, controller-manager, scheduler, kube-proxy) and
    /// run the API server as a cluster with a node needs it (see [`node`]). Waits for the node lock.
    pub with_node: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            detached: false,
            // A cold start takes seconds; the margin is for a machine busy with parallel builds.
            ready_timeout: Duration::from_secs(120),
            extra_apiserver_args: Vec::new(),
            with_node: false,
        }
    }
}

/// A running etcd + kube-apiserver pair.
pub struct ControlPlane {
    data_dir: PathBuf,
    kubeconfig_path: PathBuf,
    kubeconfig: Kubeconfig,
    bin_dir: PathBuf,
    apiserver_args: Vec<String>,
    ports: Ports,
    ready_timeout: Duration,
    startup_duration: Duration,
    /// Set only once a detached start succeeded: until then a failure cleans up like any other.
    detached: bool,
    etcd: Mutex<Option<Child>>,
    apiserver: Mutex<Option<Child>>,
    watchdog: Mutex<Option<Watchdog>>,
    node: Mutex<Option<node::Node>>,
}

impl ControlPlane {
    /// The control plane shared by all tests of this test binary, started on first use (blocking; callable
    /// from sync tests and from inside `#[tokio::test]`), torn down by the watchdog when the process exits.
    ///
    /// # Panics
    /// When it cannot be started: every test that needs it fails with the reason (including the tail of the
    /// failing server's log). A failed start is not retried by later callers.
    pub fn shared() -> &'static ControlPlane {
        match Self::try_shared() {
            Ok(control_plane) => control_plane,
            Err(err) => panic!("the shared test control plane is not available: {err:#}"),
        }
    }

    /// [`ControlPlane::shared`], with the start failure as an error instead of a panic.
    pub fn try_shared() -> Result<&'static ControlPlane> {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let control_plane =
                    Self::start(StartOptions::default()).map_err(|err| format!("{err:#}"))?;
                eprintln!(
                    "testenv: shared control plane ready at {} in {:.1?} (data dir {})",
                    control_plane.server_url(),
                    control_plane.startup_duration(),
                    control_plane.data_dir().display()
                );
                Ok(control_plane)
            })
            .as_ref()
            .map_err(|err| anyhow!("{err}"))
    }

    /// The control plane of this test binary that has a node ([`StartOptions::with_node`]), started on first
    /// use like [`ControlPlane::shared`]; its node is torn down when the process exits, however it exits.
    pub fn try_shared_with_node() -> Result<&'static ControlPlane> {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let control_plane = Self::start(StartOptions {
                    with_node: true,
                    ..StartOptions::default()
                })
                .map_err(|err| format!("{err:#}"))?;
                eprintln!(
                    "testenv: shared control plane with node {} ready at {} in {:.1?}",
                    node::NODE_NAME,
                    control_plane.server_url(),
                    control_plane.startup_duration()
                );
                Ok(control_plane)
            })
            .as_ref()
            .map_err(|err| anyhow!("{err}"))
    }

    /// Starts a private control plane: its own ports, certificates and data dir.
    pub fn start(options: StartOptions) -> Result<ControlPlane> {
        let bin_dir = Self::bin_dir()?;
        let mut attempt = 1;
        loop {
            match Self::start_once(&bin_dir, &options) {
                Ok(control_plane) => return Ok(control_plane),
                Err(err)
                    if attempt < START_ATTEMPTS
                        && format!("{err:#}").contains("address already in use") =>
                {
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn start_once(bin_dir: &Path, options: &StartOptions) -> Result<ControlPlane> {
        let started = Instant::now();
        let deadline = started + options.ready_timeout;
        let data_dir = prepare_data_dir(options.data_dir.as_deref())?;
        let prepared = (|| -> Result<_> {
            let ports = Ports::pick()?;
            let pki = pki::write_pki(&data_dir.join("pki"))?;
            let kubeconfig_path = data_dir.join("kubeconfig");
            let server = format!("https://127.0.0.1:{}", ports.apiserver);
            let kubeconfig = kubeconfig::write_admin_kubeconfig(&kubeconfig_path, &server, &pki)?;
            let apiserver_args = apiserver_args(
                &data_dir,
                &pki,
                ports,
                &options.extra_apiserver_args,
                options.with_node,
            );
            Ok((ports, kubeconfig_path, kubeconfig, apiserver_args))
        })();
        let (ports, kubeconfig_path, kubeconfig, apiserver_args) = match prepared {
            Ok(prepared) => prepared,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&data_dir);
                return Err(err);
            }
        };

        // From here on, Drop cleans up whatever has been started if a later step fails.
        let mut control_plane = ControlPlane {
            data_dir,
            kubeconfig_path,
            kubeconfig,
            bin_dir: bin_dir.to_path_buf(),
            apiserver_args,
            ports,
            ready_timeout: options.ready_timeout,
            startup_duration: Duration::ZERO,
            detached: false,
            etcd: Mutex::new(None),
            apiserver: Mutex::new(None),
            watchdog: Mutex::new(None),
            node: Mutex::new(None),
        };
        if !options.detached {
            // Before any server, so none can exist without someone to clean up after it.
            *lock(&control_plane.watchdog) = Some(Watchdog::spawn(&control_plane.data_dir)?);
        }
        control_plane.start_etcd(deadline)?;
        control_plane.spawn_apiserver()?;
        control_plane.wait_for_apiserver(deadline)?;
        if options.with_node {
            let node = node::Node::start(
                &control_plane.data_dir,
                options.detached,
                options.ready_timeout,
            )?;
            *lock(&control_plane.node) = Some(node);
        }
        control_plane.startup_duration = started.elapsed();
        control_plane.detached = options.detached;
        if control_plane.detached
            && let Some(node) = lock(&control_plane.node).take()
        {
            node.detach();
        }
        Ok(control_plane)
    }

    fn start_etcd(&self, deadline: Instant) -> Result<()> {
        let etcd_dir = self.data_dir.join("etcd");
        let client_url = format!("http://127.0.0.1:{}", self.ports.etcd_client);
        let peer_url = format!("http://127.0.0.1:{}", self.ports.etcd_peer);
        let args = [
            "--name".to_string(),
            "default".to_string(),
            "--data-dir".to_string(),
            path_arg(&etcd_dir),
            "--listen-client-urls".to_string(),
            client_url.clone(),
            "--advertise-client-urls".to_string(),
            client_url,
            "--listen-peer-urls".to_string(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".to_string(),
            peer_url.clone(),
            "--initial-cluster".to_string(),
            format!("default={peer_url}"),
            // Throw-away data: durability only costs time.
            "--unsafe-no-fsync=true".to_string(),
        ];
        let child = process::spawn_server(&self.bin_dir.join(ETCD), &args, &self.data_dir, ETCD)?;
        *lock(&self.etcd) = Some(child);
        readiness::wait_for_etcd(self.ports.etcd_client, deadline, &|| {
            self.check_running(&self.etcd, ETCD)
        })
        .map_err(|err| self.with_log(err, ETCD))
    }

    fn spawn_apiserver(&self) -> Result<()> {
        let child = process::spawn_server(
            &self.bin_dir.join(APISERVER),
            &self.apiserver_args,
            &self.data_dir,
            APISERVER,
        )?;
        *lock(&self.apiserver) = Some(child);
        Ok(())
    }

    fn wait_for_apiserver(&self, deadline: Instant) -> Result<()> {
        let kubeconfig = &self.kubeconfig;
        let alive = || {
            self.check_running(&self.etcd, ETCD)?;
            self.check_running(&self.apiserver, APISERVER)
        };
        readiness::block_on(async move {
            let client = kubeconfig::client(kubeconfig, Identity::Admin, false).await?;
            readiness::wait_for_apiserver(client, deadline, &alive).await
        })
        .and_then(|outcome| outcome)
        .map_err(|err| self.with_log(err, APISERVER))
    }

    /// `Err` (with its exit status and log) when the server in `slot` is not running.
    fn check_running(&self, slot: &Mutex<Option<Child>>, name: &str) -> Result<()> {
        match lock(slot).as_mut() {
            None => bail!("{name} is not running (stopped)"),
            Some(child) => match child.try_wait() {
                Ok(None) => Ok(()),
                Ok(Some(status)) => {
                    Err(self.with_log(anyhow!("{name} exited with {status}"), name))
                }
                Err(err) => Err(anyhow!(err).context(format!("checking whether {name} runs"))),
            },
        }
    }

    /// `err` followed by the tail of the server's log (once, however often the error passes by here).
    fn with_log(&self, err: anyhow::Error, name: &str) -> anyhow::Error {
        let tail = process::log_tail(&self.data_dir, name, LOG_TAIL_LINES);
        let message = format!("{err:#}");
        if message.contains(&tail) {
            err
        } else {
            anyhow!("{message}; {tail}")
        }
    }

    /// The admin kubeconfig (client certificate CN `admin`, O `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The kubectl of the pinned version, with `--kubeconfig` preset to the admin kubeconfig.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(self.bin_dir.join("kubectl"));
        command.arg("--kubeconfig").arg(&self.kubeconfig_path);
        command
    }

    /// Applies CustomResourceDefinitions (a multi-document YAML) with server-side apply and waits until each
    /// is Established. Idempotent, so every test binary can call it for the shared control plane.
    pub fn install_crds(&self, crds_yaml: &str) -> Result<()> {
        let names: Vec<String> = serde_yaml::Deserializer::from_str(crds_yaml)
            .map(|document| {
                let crd = serde_yaml::Value::deserialize(document)?;
                Ok(crd["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string())
            })
            .collect::<Result<Vec<_>, serde_yaml::Error>>()
            .context("parsing the CRD documents")?
            .into_iter()
            .filter(|name| !name.is_empty())
            .collect();
        if names.is_empty() {
            bail!("no CustomResourceDefinition with a metadata.name in the given YAML");
        }
        let mut apply = self.kubectl();
        apply.args([
            "apply",
            "--server-side",
            "--field-manager=testenv",
            "-f",
            "-",
        ]);
        run_with_stdin(apply, crds_yaml).context("kubectl apply of the CRDs")?;
        let mut wait = self.kubectl();
        wait.args(["wait", "--for=condition=Established", "--timeout=60s"])
            .args(names.iter().map(|name| format!("crd/{name}")));
        run_with_stdin(wait, "").context("waiting for the CRDs to be Established")?;
        Ok(())
    }

    /// A new admin client, bound to the runtime it is first used on (so create one per runtime / test).
    pub async fn client(&self) -> Result<kube::Client> {
        kubeconfig::client(&self.kubeconfig, Identity::Admin, true).await
    }

    /// A new client that impersonates `user` with `groups` (plus `system:authenticated`, which the
    /// apiserver adds), e.g. `system:serviceaccount:NS:NAME` to act with exactly that account's RBAC.
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<kube::Client> {
        kubeconfig::client(
            &self.kubeconfig,
            Identity::Impersonated { user, groups },
            true,
        )
        .await
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.apiserver)
    }

    /// Where the certificates, etcd data, logs (`etcd.log`, `kube-apiserver.log`) and kubeconfig are.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How long the start took until the `default` namespace existed.
    pub fn startup_duration(&self) -> Duration {
        self.startup_duration
    }

    /// The directory with kube-apiserver, etcd and kubectl: `$IVSCHAT_K8S_BIN_DIR`, else what
    /// `hack/k8s-bins.sh` prints (it builds them the first time on a machine, which takes minutes).
    pub fn bin_dir() -> Result<PathBuf> {
        bins::bin_dir()
    }

    /// Stops kube-apiserver (SIGKILL), leaving etcd and its data in place; for fault tests.
    pub fn stop_apiserver(&self) -> Result<()> {
        let mut slot = lock(&self.apiserver);
        match slot.as_mut() {
            Some(child) => process::stop_server(child, &self.data_dir, APISERVER)?,
            None => bail!("kube-apiserver is not running"),
        }
        *slot = None;
        Ok(())
    }

    /// Starts kube-apiserver again on the same port with the same certificates and waits until it is ready
    /// (clients created earlier reconnect). Does nothing if it is running.
    pub fn start_apiserver(&self) -> Result<()> {
        {
            let mut slot = lock(&self.apiserver);
            if let Some(child) = slot.as_mut() {
                match child.try_wait() {
                    Ok(None) => return Ok(()),
                    // It died on its own: reap it and start a new one below.
                    Ok(Some(_)) | Err(_) => *slot = None,
                }
            }
        }
        self.spawn_apiserver()?;
        self.wait_for_apiserver(Instant::now() + self.ready_timeout)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        // The node first: its teardown stops the kubelet before the API server it reports to goes away.
        drop(lock(&self.node).take());
        for (slot, name) in [(&self.apiserver, APISERVER), (&self.etcd, ETCD)] {
            if let Some(mut child) = lock(slot).take() {
                // Drop cannot report errors; the watchdog below kills whatever is still recorded.
                let _ = process::stop_server(&mut child, &self.data_dir, name);
            }
        }
        if let Some(watchdog) = lock(&self.watchdog).take() {
            let _ = watchdog.finish();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The mutexes only guard process handles: a panic while one was held leaves nothing half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// kube-apiserver flags: those controller-runtime's envtest uses, plus `--advertise-address` (without a
/// default route the apiserver cannot pick one) and our own serving certificate. With a node, what a real
/// cluster needs instead: the ServiceAccount admission plugin (Pods get their projected token), the Node
/// authorizer, the node's address advertised (a loopback address cannot be the `kubernetes` Service's
/// endpoint) and listened on, and a client certificate for `kubectl logs`/`exec` through the kubelet.
fn apiserver_args(
    data_dir: &Path,
    pki: &pki::Pki,
    ports: Ports,
    extra: &[String],
    with_node: bool,
) -> Vec<String> {
    let mut args: Vec<String> = [
        (
            "--etcd-servers",
            format!("http://127.0.0.1:{}", ports.etcd_client),
        ),
        ("--cert-dir", path_arg(&data_dir.join("pki"))),
        ("--tls-cert-file", path_arg(&pki.serving_cert)),
        ("--tls-private-key-file", path_arg(&pki.serving_key)),
        ("--secure-port", ports.apiserver.to_string()),
        ("--bind-address", "127.0.0.1".to_string()),
        ("--advertise-address", "127.0.0.1".to_string()),
        ("--service-cluster-ip-range", "10.0.0.0/24".to_string()),
        ("--allow-privileged", "true".to_string()),
        ("--authorization-mode", "RBAC".to_string()),
        // No controller-manager creates service-account tokens, so the plugin would reject pods.
        ("--disable-admission-plugins", "ServiceAccount".to_string()),
        ("--client-ca-file", path_arg(&pki.ca_cert)),
        (
            "--service-account-issuer",
            format!("https://127.0.0.1:{}/", ports.apiserver),
        ),
        (
            "--service-account-key-file",
            path_arg(&pki.service_account_public_key),
        ),
        (
            "--service-account-signing-key-file",
            path_arg(&pki.service_account_signing_key),
        ),
    ]
    .into_iter()
    // An extra flag replaces the default of the same name (list flags such as --authorization-mode would
    // otherwise add up and be refused).
    .filter(|(flag, _)| !extra.iter().any(|arg| arg.split('=').next() == Some(*flag)))
    .filter(|(flag, _)| {
        !with_node
            || !matches!(
                *flag,
                "--bind-address"
                    | "--advertise-address"
                    | "--authorization-mode"
                    | "--disable-admission-plugins"
            )
    })
    .map(|(flag, value)| format!("{flag}={value}"))
    .collect();
    if with_node {
        let pki_dir = data_dir.join("pki");
        args.extend([
            "--bind-address=0.0.0.0".to_string(),
            format!("--advertise-address={}", node::NODE_IP),
            "--authorization-mode=Node,RBAC".to_string(),
            "--kubelet-preferred-address-types=InternalIP".to_string(),
            format!(
                "--kubelet-client-certificate={}",
                path_arg(&pki_dir.join("admin.crt"))
            ),
            format!(
                "--kubelet-client-key={}",
                path_arg(&pki_dir.join("admin.key"))
            ),
        ]);
    }
    args.extend(extra.iter().cloned());
    args
}

/// Creates the data dir (a unique one under the temp dir when none is given) and marks it as ours.
fn prepare_data_dir(requested: Option<&Path>) -> Result<PathBuf> {
    let dir = match requested {
        Some(dir) => {
            // Absolute: the watchdog and `testenv down` recognise the servers by this path in their arguments.
            let dir = std::path::absolute(dir)
                .with_context(|| format!("making {} absolute", dir.display()))?;
            let dir = dir.as_path();
            if dir.exists() {
                let empty = std::fs::read_dir(dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .next()
                    .is_none();
                if !empty && !dir.join(MARKER_FILE).exists() {
                    bail!(
                        "{} is not empty and not a control plane data dir; refusing to use it",
                        dir.display()
                    );
                }
                if [ETCD, APISERVER]
                    .iter()
                    .any(|name| process::recorded_live_pid(dir, name).is_some())
                {
                    bail!(
                        "a control plane is still running in {}; stop it first",
                        dir.display()
                    );
                }
                std::fs::remove_dir_all(dir)
                    .with_context(|| format!("clearing {}", dir.display()))?;
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.to_path_buf()
        }
        None => {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.subsec_nanos());
            let dir = std::env::temp_dir().join(format!(
                "ivschat-testenv-{}-{}-{nanos}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            // create_dir, not create_dir_all: fails rather than share a directory with someone else.
            std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            dir
        }
    };
    std::fs::write(
        dir.join(MARKER_FILE),
        "data dir of an ivschat-operator test control plane (testenv); removed when it stops\n",
    )
    .with_context(|| format!("marking {}", dir.display()))?;
    Ok(dir)
}

/// Whether `dir` is a control plane data dir (has the marker file).
pub(crate) fn is_data_dir(dir: &Path) -> bool {
    dir.join(MARKER_FILE).is_file()
}

/// Runs `command` with `input` on stdin; an error carries its stderr.
fn run_with_stdin(mut command: Command, input: &str) -> Result<()> {
    use std::io::Write as _;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .context("writing to kubectl")?;
    }
    let output = child.wait_with_output().context("waiting for kubectl")?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(with_node: bool) -> Vec<String> {
        let pki = test_pki();
        let ports = Ports {
            etcd_client: 1,
            etcd_peer: 2,
            apiserver: 3,
        };
        apiserver_args(Path::new("/d"), &pki, ports, &[], with_node)
    }

    fn test_pki() -> pki::Pki {
        pki::Pki {
            ca_cert: "/d/pki/ca.crt".into(),
            serving_cert: "/d/pki/apiserver.crt".into(),
            serving_key: "/d/pki/apiserver.key".into(),
            service_account_public_key: "/d/pki/sa.pub".into(),
            service_account_signing_key: "/d/pki/sa.key".into(),
            ca_pem: String::new(),
            admin_cert_pem: String::new(),
            admin_key_pem: String::new(),
        }
    }

    #[test]
    fn an_extra_flag_replaces_the_default_of_the_same_name() {
        let extra = vec!["--authorization-mode=Node,RBAC".to_string()];
        let pki = test_pki();
        let ports = Ports {
            etcd_client: 1,
            etcd_peer: 2,
            apiserver: 3,
        };
        let with_extra = apiserver_args(Path::new("/d"), &pki, ports, &extra, false);
        let modes: Vec<&String> = with_extra
            .iter()
            .filter(|arg| arg.starts_with("--authorization-mode="))
            .collect();
        assert_eq!(modes, [&extra[0]]);
    }

    #[test]
    fn without_a_node_no_pod_needs_a_token_and_only_loopback_is_served() {
        let args = args(false);
        assert!(args.contains(&"--disable-admission-plugins=ServiceAccount".to_string()));
        assert!(args.contains(&"--bind-address=127.0.0.1".to_string()));
        assert!(args.contains(&"--authorization-mode=RBAC".to_string()));
    }

    #[test]
    fn with_a_node_pods_get_tokens_and_the_kubernetes_service_has_the_node_address() {
        let args = args(true);
        assert!(
            !args
                .iter()
                .any(|arg| arg.starts_with("--disable-admission-plugins"))
        );
        assert!(args.contains(&format!("--advertise-address={}", node::NODE_IP)));
        assert!(args.contains(&"--bind-address=0.0.0.0".to_string()));
        assert!(args.contains(&"--authorization-mode=Node,RBAC".to_string()));
        assert!(args.contains(&"--kubelet-client-certificate=/d/pki/admin.crt".to_string()));
        // Each flag once: the node's values replace the loopback ones instead of following them.
        for flag in [
            "--bind-address",
            "--advertise-address",
            "--authorization-mode",
        ] {
            let count = args
                .iter()
                .filter(|arg| arg.starts_with(&format!("{flag}=")))
                .count();
            assert_eq!(count, 1, "{flag} in {args:?}");
        }
    }
}
