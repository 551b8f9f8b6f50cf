//! The `ivschat-operator run` process: its flags (each with an environment variable), the log subscriber,
//! the Kubernetes and AWS clients, the HTTP servers for `/metrics` and the probes, leader election,
//! signals and shutdown. The controllers are the [`crate::controller`] library, which knows nothing of any
//! of this; [`operate`] wraps them in it.
//!
//! The order of a run: servers up, then (with `--leader-elect`) leadership won, then the controllers
//! started, their AWS access fenced by the leadership's validity ([`aws::Fence`], from
//! [`LeaderElection::leading_until`]); on SIGTERM (or when the controllers end on their own) the
//! controllers stop before the Lease is released, so a successor never overlaps with this replica and
//! takes over at once. When leadership is lost the fence is down already (no AWS call is sent or awaited
//! any more), the controllers are abandoned at once and the process exits with an error, to be restarted
//! as a standby.

use crate::controller::driver::Timing;
use crate::controller::{self, OperatorHandle, aws, rate_limit};
use crate::leader::{LeaderElection, LeaseSettings};
use crate::metrics::Metrics;
use crate::probes::Probes;
use anyhow::Context as _;
use axum::http::{HeaderName, StatusCode, header};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// `ivschat-operator run`: flags, each with an environment-variable equivalent.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// AWS region (default: from the standard AWS configuration chain).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,

    /// AWS endpoint URL, e.g. the local emulator `http://127.0.0.1:4510` (default: the AWS endpoint of the
    /// region).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,

    /// How often the account is listed to find and correct out-of-band changes (e.g. 10m, 30s). Stretched
    /// (with a warning, and the ivschat_operator_resync_period_seconds metric) when one complete listing
    /// does not fit in it within half of its List operation's rate budget, so that creates keep the rest.
    #[arg(long, env = "IVSCHAT_OPERATOR_RESYNC_PERIOD", default_value = "10m", value_parser = ivschat_api::duration::parse_positive_duration)]
    pub resync_period: Duration,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "IVSCHAT_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,

    /// Objects reconciled in parallel per kind.
    #[arg(long, env = "IVSCHAT_OPERATOR_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,

    /// Client-side AWS rate budget, shared by both controllers. `aws` (default): every call waits for its
    /// slot under the IVS Chat API rate quotas (5 TPS for room operations, 3 for logging configurations,
    /// 10 for tags; see --aws-quota), so a burst of thousands of rooms runs at the quota instead of being
    /// throttled. `none`: no client-side budget (throttling is still retried with backoff and jitter).
    #[arg(long, env = "IVSCHAT_OPERATOR_AWS_RATE_LIMIT", value_enum, default_value_t = AwsRateLimit::Aws)]
    pub aws_rate_limit: AwsRateLimit,

    /// Overrides of the rate budget, `NAME=TPS`, comma-separated or repeated: NAME is a group (`rooms`,
    /// `logging-configurations`, `tags`) or an operation (e.g. `GetRoom`). E.g. `rooms=2.5` leaves half the
    /// account's room quota to other clients.
    #[arg(long = "aws-quota", env = "IVSCHAT_OPERATOR_AWS_QUOTAS", value_delimiter = ',', value_parser = rate_limit::parse_quota_override)]
    pub aws_quotas: Vec<rate_limit::QuotaOverride>,

    /// Longest wait for one AWS call attempt (e.g. 15s); a call that times out is retried like a 5xx.
    #[arg(long, env = "IVSCHAT_OPERATOR_AWS_CALL_TIMEOUT", default_value = "15s", value_parser = ivschat_api::duration::parse_positive_duration)]
    pub aws_call_timeout: Duration,

    /// The app name every AWS call of this process carries in its User-Agent (`app/NAME`), so that AWS
    /// (CloudTrail's userAgent) and the emulator's request log tell replicas apart: letters, digits and
    /// !#$%&'*+-.^_|~ and the backtick. Default: the pod name (POD_NAME), else the host name (HOSTNAME),
    /// any other character replaced by '-', cut to 50 characters.
    #[arg(long, env = "IVSCHAT_OPERATOR_AWS_APP_NAME", value_parser = parse_app_name)]
    pub aws_app_name: Option<aws_config::AppName>,

    /// The chat messaging endpoint a ChatRoom's spec.export writes (ROOM_MESSAGING_ENDPOINT), `{region}`
    /// replaced by the room's region. Set it with --aws-endpoint-url: the emulator's is its own address with
    /// ws:// (e.g. `ws://127.0.0.1:4510`).
    #[arg(long, env = "IVSCHAT_OPERATOR_MESSAGING_ENDPOINT", default_value = controller::export::DEFAULT_MESSAGING_ENDPOINT, value_parser = parse_messaging_endpoint)]
    pub messaging_endpoint: String,

    /// Probes, metrics, leader election and log format.
    #[command(flatten)]
    pub operations: OperationsArgs,
}

/// `--messaging-endpoint`: a WebSocket URL (`ws://` or `wss://`), which applications connect to as given.
fn parse_messaging_endpoint(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("ws://"));
    match rest {
        Some(host) if !host.is_empty() && !url.contains(char::is_whitespace) => Ok(url.to_owned()),
        _ => Err(format!(
            "{url:?} is not a WebSocket URL: ws://HOST or wss://HOST, `{{region}}` allowed"
        )),
    }
}

/// `--aws-app-name`: a name the SDK accepts in the User-Agent.
fn parse_app_name(name: &str) -> Result<aws_config::AppName, String> {
    aws_config::AppName::new(name.to_owned()).map_err(|_| {
        format!("{name:?} is not an app name: letters, digits and !#$%&'*+-.^_`|~ only, not empty")
    })
}

/// The default `--aws-app-name`: `name` (the pod's or host's) with the characters an app name cannot
/// carry replaced by `-`, at most 50 characters (the SDK's recommendation); `None` for an empty name.
fn app_name_from(name: &str) -> Option<aws_config::AppName> {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    aws_config::AppName::new(cleaned).ok()
}

/// `--aws-rate-limit`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AwsRateLimit {
    /// No client-side limit: throttling is retried with backoff.
    None,
    /// The documented IVS Chat API rate quotas (with the --aws-quota overrides).
    #[default]
    Aws,
}

/// `ivschat-operator run` flags for running in a cluster.
#[derive(clap::Args, Debug, Clone)]
pub struct OperationsArgs {
    /// Serve Prometheus metrics on this address at /metrics (e.g. 0.0.0.0:8080). Default: not served.
    #[arg(long, env = "IVSCHAT_OPERATOR_METRICS_BIND_ADDRESS")]
    pub metrics_bind_address: Option<SocketAddr>,

    /// Serve /healthz (liveness) and /readyz (readiness) on this address (e.g. 0.0.0.0:8081). Default: not
    /// served.
    #[arg(long, env = "IVSCHAT_OPERATOR_HEALTH_PROBE_BIND_ADDRESS")]
    pub health_probe_bind_address: Option<SocketAddr>,

    /// Reconcile only while holding a coordination.k8s.io Lease, so that several replicas can run and
    /// exactly one reconciles.
    #[arg(long, env = "IVSCHAT_OPERATOR_LEADER_ELECT")]
    pub leader_elect: bool,

    /// Namespace of the Lease (default: the pod's namespace, POD_NAMESPACE, else the kubeconfig's).
    #[arg(long, env = "IVSCHAT_OPERATOR_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(
        long,
        env = "IVSCHAT_OPERATOR_LEADER_ELECTION_LEASE_NAME",
        default_value = "ivschat-operator"
    )]
    pub leader_election_lease_name: String,

    /// How long a Lease stays valid without renewal: a successor takes over this long after a leader died
    /// (a leader that stops releases the Lease at once).
    #[arg(long, env = "IVSCHAT_OPERATOR_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = ivschat_api::duration::parse_positive_duration)]
    pub leader_election_lease_duration: Duration,

    /// Log format: text (for people) or json (one object per line, for log pipelines).
    #[arg(long, env = "IVSCHAT_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the process's log subscriber (RUST_LOG filters; default `info`). Spans (one per reconcile) are
/// part of every line: as fields in JSON, as a prefix in text.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests, or a library user with its own subscriber) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

// ---------------------------------------------------------------------------------------------------------
// The command

/// `ivschat-operator run`: connects to Kubernetes (kubeconfig or in-cluster) and AWS (the standard
/// `aws-config` chain), then reconciles until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    // kube (ring) and the AWS SDK (aws-lc-rs) both enable rustls providers: pick one for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logging(args.operations.log_format);
    let kube = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client from the kubeconfig or the in-cluster config")?;
    let aws = aws_access(&args).await;
    // The process's one metrics registry: the controllers count into it, /metrics serves it.
    let metrics = Metrics::new();
    let options = controller::Options {
        timing: Timing {
            resync_period: args.resync_period,
            ..Timing::default()
        },
        metrics: metrics.clone(),
        namespace: args.namespace.clone(),
        concurrency: args.concurrency,
        messaging_endpoint: args.messaging_endpoint.clone(),
    };
    tracing::info!(
        namespace = args.namespace.as_deref().unwrap_or("<all>"),
        resync = ?args.resync_period,
        concurrency = args.concurrency,
        "starting the ChatRoom and ChatLoggingConfiguration controllers"
    );
    operate(
        &args.operations,
        kube.clone(),
        &metrics,
        move |fence| controller::start_with(kube, aws.fenced_by(fence), options),
        shutdown_signal(),
    )
    .await
}

/// The AWS access the flags describe: region and endpoint, the rate budget and the attempt timeout (the
/// controllers count every attempt in their metrics: [`aws::Aws::counted_in`]).
async fn aws_access(args: &RunArgs) -> aws::Aws {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = args.region.clone() {
        loader = loader.region(aws_config::Region::new(region));
    }
    if let Some(endpoint) = args.aws_endpoint_url.as_deref() {
        loader = loader.endpoint_url(endpoint);
    }
    let app_name = args
        .aws_app_name
        .clone()
        .or_else(|| app_name_from(&crate::leader::replica_name()));
    if let Some(app_name) = app_name {
        tracing::info!(%app_name, "AWS calls carry this app name in their User-Agent");
        loader = loader.app_name(app_name);
    }
    let shared = loader.load().await;
    let client = aws_sdk_ivschat::Client::new(&shared);
    let limiter = match args.aws_rate_limit {
        AwsRateLimit::Aws => Some(Arc::new(rate_limit::RateLimiter::new(
            rate_limit::quotas_with(&args.aws_quotas),
        ))),
        AwsRateLimit::None => None,
    };
    aws::Aws::new(
        client,
        limiter,
        aws::CallPolicy {
            attempt_timeout: args.aws_call_timeout,
            ..aws::CallPolicy::default()
        },
    )
    // The ChatAccounts' roles are assumed with the operator's own credentials, at its endpoint.
    .with_shared_config(shared)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT"),
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")
    }
}

// ---------------------------------------------------------------------------------------------------------
// Running the controllers under all of it

/// How long a stopping replica lets its in-flight reconciles finish before aborting them: most of the pod's
/// termination grace period (30 s), so that the Lease is still released before the kubelet's SIGKILL.
///
/// This is the process's one stop timeout. It is applied by [`OperatorHandle::stop_within`], not around it,
/// because only the handle holds the task it abandons: a timeout around the stop would drop the handle's
/// `JoinHandle`, which detaches the task (it would go on reconciling) instead of ending it. The handle
/// aborts it and waits for the abort, so nothing of the controllers runs once the stop returns.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// What [`operate`] runs and stops: the controllers' handle (or a stand-in in tests).
pub trait Stoppable: Send {
    /// Stops within `limit`, aborting whatever has not finished by then and waiting for the abort.
    fn stop_within(self, limit: Duration) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Whether it has ended on its own.
    fn is_finished(&self) -> bool;
}

impl Stoppable for OperatorHandle {
    fn stop_within(self, limit: Duration) -> impl Future<Output = anyhow::Result<()>> + Send {
        OperatorHandle::stop_within(self, limit)
    }

    fn is_finished(&self) -> bool {
        OperatorHandle::is_finished(self)
    }
}

/// Runs the controllers the way a deployment needs: probe and metrics servers first, then (with
/// `--leader-elect`) wait for the Lease, then `start` the controllers with the fence their AWS access must
/// respect (`None` without leader election); until `shutdown` resolves (SIGTERM), leadership is lost
/// (error, so the process exits and restarts), or the controllers end on their own. On shutdown the
/// controllers stop (in-flight reconciles finish within [`STOP_TIMEOUT`]) before the Lease is released,
/// so the successor never overlaps with this replica and takes over at once. On lost leadership they are
/// abandoned at once: their AWS calls are fenced off already, and a status they wrote now (AWS
/// unavailable) would contradict the new leader's.
pub async fn operate<H, S, F>(
    args: &OperationsArgs,
    kube: kube::Client,
    metrics: &Metrics,
    start: S,
    shutdown: F,
) -> anyhow::Result<()>
where
    H: Stoppable,
    S: FnOnce(Option<aws::Fence>) -> H,
    F: Future<Output = anyhow::Result<()>>,
{
    let probes = Arc::new(Probes::default());
    let servers = Servers::start(
        args.metrics_bind_address,
        args.health_probe_bind_address,
        {
            let metrics = metrics.clone();
            move || metrics.encode()
        },
        probes.clone(),
    )
    .await?;
    if let Some(address) = servers.metrics {
        tracing::info!(%address, "serving /metrics");
    }
    if let Some(address) = servers.health {
        tracing::info!(%address, "serving /healthz and /readyz");
    }
    probes.set_ready(true);
    let outcome = reconcile_while_leading(args, kube, metrics, start, shutdown, &probes).await;
    servers.stop().await;
    outcome
}

/// The middle of [`operate`], between the servers' start and stop.
async fn reconcile_while_leading<H, S, F>(
    args: &OperationsArgs,
    kube: kube::Client,
    metrics: &Metrics,
    start: S,
    shutdown: F,
    probes: &Probes,
) -> anyhow::Result<()>
where
    H: Stoppable,
    S: FnOnce(Option<aws::Fence>) -> H,
    F: Future<Output = anyhow::Result<()>>,
{
    tokio::pin!(shutdown);
    let election = if args.leader_elect {
        let election = LeaderElection::new(kube.clone(), lease_settings(args, &kube));
        let settings = election.settings();
        tracing::info!(
            namespace = %settings.namespace,
            lease = %settings.lease_name,
            identity = %settings.identity,
            "waiting for leadership"
        );
        metrics.set_leader(false);
        tokio::select! {
            result = election.acquire() => result?,
            result = &mut shutdown => {
                tracing::info!("shutting down before becoming the leader");
                return result;
            }
        }
        tracing::info!("became the leader");
        Some(election)
    } else {
        None
    };
    metrics.set_leader(true);

    let fence = election
        .as_ref()
        .map(|election| aws::Fence::new(election.leading_until()));
    let handle = start(fence);
    let ended = async {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if handle.is_finished() {
                return;
            }
        }
    };
    let lost = async {
        match &election {
            Some(election) => election.lost().await,
            None => std::future::pending().await,
        }
    };
    let (outcome, stop_limit) = tokio::select! {
        // A failed signal handler ends the run too, and stops the controllers like any other ending.
        result = &mut shutdown => (result.inspect(|()| {
            tracing::info!("shutting down: finishing in-flight reconciles");
        }), STOP_TIMEOUT),
        () = lost => {
            probes.set_broken();
            (Err(anyhow::anyhow!("lost the leader Lease (not renewed in time): stopping so that only the new leader reconciles")), Duration::ZERO)
        }
        () = ended => {
            probes.set_broken();
            (Err(anyhow::anyhow!("the controllers ended on their own (their watches failed)")), STOP_TIMEOUT)
        }
    };
    probes.set_ready(false);
    let stopped = handle.stop_within(stop_limit).await;
    metrics.set_leader(false);
    if let Some(election) = election {
        // Only after the controllers stopped: the successor must not start while we still reconcile.
        match election.release().await {
            Ok(()) => tracing::info!("released the leader Lease"),
            Err(error) => {
                tracing::warn!(%error, "cannot release the leader Lease; a successor takes over when it expires")
            }
        }
    }
    outcome.and(stopped)
}

/// Who competes for which Lease, from the flags.
fn lease_settings(args: &OperationsArgs, kube: &kube::Client) -> LeaseSettings {
    let namespace = lease_namespace(
        args.leader_election_namespace.as_deref(),
        std::env::var("POD_NAMESPACE").ok(),
        kube.default_namespace(),
    );
    LeaseSettings::new(
        &namespace,
        &args.leader_election_lease_name,
        crate::leader::default_identity(),
        args.leader_election_lease_duration,
    )
}

/// The Lease's namespace: the flag, else the pod's namespace (POD_NAMESPACE, when not empty), else the
/// kubeconfig's.
fn lease_namespace(flag: Option<&str>, pod_namespace: Option<String>, kubeconfig: &str) -> String {
    match flag {
        Some(namespace) => namespace.to_owned(),
        None => pod_namespace
            .filter(|namespace| !namespace.is_empty())
            .unwrap_or_else(|| kubeconfig.to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------------------
// The HTTP servers

/// The running metrics and probe servers, with the addresses they are bound to (useful with port 0).
struct Servers {
    metrics: Option<SocketAddr>,
    health: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Starts the metrics and probe servers (the same server when both addresses are equal). `encode` gives
    /// the metrics' text exposition at each scrape.
    async fn start<E: std::fmt::Display>(
        metrics_address: Option<SocketAddr>,
        health_address: Option<SocketAddr>,
        encode: impl Fn() -> Result<String, E> + Clone + Send + Sync + 'static,
        probes: Arc<Probes>,
    ) -> anyhow::Result<Servers> {
        // On an early error return, `Drop` aborts the servers already started.
        let mut servers = Servers {
            metrics: None,
            health: None,
            tasks: Vec::new(),
        };
        match (metrics_address, health_address) {
            (Some(metrics_at), Some(health_at)) if metrics_at == health_at => {
                let router = metrics_router(encode).merge(crate::probes::router(probes));
                let (bound, task) = serve(metrics_at, router, "metrics and probes").await?;
                servers.metrics = Some(bound);
                servers.health = Some(bound);
                servers.tasks.push(task);
            }
            (metrics_at, health_at) => {
                if let Some(address) = metrics_at {
                    let (bound, task) = serve(address, metrics_router(encode), "metrics").await?;
                    servers.metrics = Some(bound);
                    servers.tasks.push(task);
                }
                if let Some(address) = health_at {
                    let router = crate::probes::router(probes);
                    let (bound, task) = serve(address, router, "probes").await?;
                    servers.health = Some(bound);
                    servers.tasks.push(task);
                }
            }
        }
        Ok(servers)
    }

    /// Stops the servers and waits until they are gone (their ports closed).
    async fn stop(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `/metrics`: the text exposition `encode` gives at each scrape.
pub fn metrics_router<E: std::fmt::Display>(
    encode: impl Fn() -> Result<String, E> + Clone + Send + Sync + 'static,
) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move { metrics_answer(encode()) }),
    )
}

/// The answer to a scrape: the exposition, or a 500 saying why there is none.
fn metrics_answer<E: std::fmt::Display>(
    encoded: Result<String, E>,
) -> (StatusCode, [(HeaderName, &'static str); 1], String) {
    match encoded {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("cannot encode the metrics: {err}"),
        ),
    }
}

async fn serve(
    address: SocketAddr,
    router: axum::Router,
    what: &str,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for the {what}"))?;
    let bound = listener.local_addr().context("no local address")?;
    let what = what.to_owned();
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, server = %what, "HTTP server failed");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn run_flags_parse_with_their_defaults() {
        use clap::Parser as _;
        let cli = Cli::try_parse_from([
            "run",
            "--aws-endpoint-url",
            "http://127.0.0.1:4510",
            "--region",
            "us-west-2",
            "--resync-period",
            "30s",
            "--namespace",
            "chat",
            "--concurrency",
            "4",
        ])
        .expect("valid flags");
        assert_eq!(
            cli.run.aws_endpoint_url.as_deref(),
            Some("http://127.0.0.1:4510")
        );
        assert_eq!(cli.run.region.as_deref(), Some("us-west-2"));
        assert_eq!(cli.run.resync_period, Duration::from_secs(30));
        assert_eq!(cli.run.namespace.as_deref(), Some("chat"));
        assert_eq!(cli.run.concurrency, 4);
        assert_eq!(cli.run.aws_rate_limit, AwsRateLimit::Aws);
        assert_eq!(cli.run.aws_call_timeout, Duration::from_secs(15));
        assert!(cli.run.aws_app_name.is_none());
        assert!(cli.run.aws_quotas.is_empty());
        assert_eq!(
            cli.run.messaging_endpoint,
            "wss://edge.ivschat.{region}.amazonaws.com"
        );
        let emulated = Cli::try_parse_from(["run", "--messaging-endpoint", "ws://127.0.0.1:4510"])
            .expect("valid");
        assert_eq!(emulated.run.messaging_endpoint, "ws://127.0.0.1:4510");
        for wrong in ["http://127.0.0.1:4510", "ws://", "edge.ivschat.example"] {
            assert!(
                Cli::try_parse_from(["run", "--messaging-endpoint", wrong]).is_err(),
                "{wrong}"
            );
        }
        let unlimited = Cli::try_parse_from(["run", "--aws-rate-limit", "none"]).expect("valid");
        assert_eq!(unlimited.run.aws_rate_limit, AwsRateLimit::None);
        let tuned = Cli::try_parse_from([
            "run",
            "--aws-quota",
            "rooms=2.5,GetRoom=1",
            "--aws-quota",
            "tags=4",
        ])
        .expect("valid");
        let quotas = rate_limit::quotas_with(&tuned.run.aws_quotas);
        assert_eq!(quotas["CreateRoom"], 2.5);
        assert_eq!(quotas["GetRoom"], 1.0);
        assert_eq!(quotas["UntagResource"], 4.0);
        let named = Cli::try_parse_from(["run", "--aws-app-name", "first_1.a"]).expect("valid");
        assert_eq!(
            named.run.aws_app_name.as_ref().map(|name| name.to_string()),
            Some("first_1.a".to_owned())
        );
        let rejected = [
            ["--aws-app-name", "two words"],
            ["--aws-app-name", ""],
            ["--aws-quota", "rooms=0"],
            ["--resync-period", "never"],
            ["--resync-period", "0s"],
        ];
        for [flag, value] in rejected {
            assert!(
                Cli::try_parse_from(["run", flag, value]).is_err(),
                "{flag} {value}"
            );
        }
    }

    #[test]
    fn the_default_app_name_is_the_replicas_name_made_valid() {
        let long = "p".repeat(60);
        // (pod or host name) -> app name
        let cases = [
            (
                "ivschat-operator-7d9f8-x2x4q",
                Some("ivschat-operator-7d9f8-x2x4q"),
            ),
            ("node 1/operator", Some("node-1-operator")),
            (long.as_str(), Some(&long[..50])),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(
                app_name_from(name).map(|app| app.to_string()).as_deref(),
                expected,
                "{name:?}"
            );
        }
    }

    #[test]
    fn the_lease_namespace_is_the_flag_else_the_pods_else_the_kubeconfigs() {
        // (--leader-election-namespace, POD_NAMESPACE) -> namespace, the kubeconfig's being "kubeconfig"
        let cases = [
            (Some("flag"), Some("pod"), "flag"),
            (Some("flag"), None, "flag"),
            (None, Some("pod"), "pod"),
            (None, Some(""), "kubeconfig"),
            (None, None, "kubeconfig"),
        ];
        for (flag, pod, expected) in cases {
            assert_eq!(
                lease_namespace(flag, pod.map(str::to_owned), "kubeconfig"),
                expected,
                "flag {flag:?}, POD_NAMESPACE {pod:?}"
            );
        }
    }

    #[test]
    fn a_scrape_gets_the_exposition_or_a_500_saying_why() {
        let (status, [(_, content_type)], body) = metrics_answer::<String>(Ok("up 1\n".into()));
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("application/openmetrics-text"));
        assert_eq!(body, "up 1\n");
        let (status, [(_, content_type)], body) = metrics_answer(Err("no registry"));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type, "text/plain");
        assert_eq!(body, "cannot encode the metrics: no registry");
    }

    /// Controllers that record the stop they were given.
    struct StandIn {
        finished: bool,
        stopped_within: Arc<Mutex<Option<Duration>>>,
    }

    impl Stoppable for StandIn {
        fn stop_within(self, limit: Duration) -> impl Future<Output = anyhow::Result<()>> + Send {
            if let Ok(mut stopped_within) = self.stopped_within.lock() {
                *stopped_within = Some(limit);
            }
            std::future::ready(Ok(()))
        }

        fn is_finished(&self) -> bool {
            self.finished
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_controllers_are_stopped_within_the_stop_timeout_however_the_run_ends() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Never contacted: without --leader-elect, `operate` makes no Kubernetes call.
        let kube = kube::Client::try_from(kube::Config::new(
            "http://127.0.0.1:9".parse().expect("url"),
        ))
        .expect("client");
        let args = OperationsArgs {
            metrics_bind_address: None,
            health_probe_bind_address: None,
            leader_elect: false,
            leader_election_namespace: None,
            leader_election_lease_name: "ivschat-operator".to_owned(),
            leader_election_lease_duration: Duration::from_secs(15),
            log_format: LogFormat::Text,
        };
        // (shutdown signal: after how long, and its result; controllers ended on their own) ->
        // (the run's error, if any; when it ends)
        let cases = [
            ((1_000, Ok(())), false, None, 1_000),
            (
                (1_000, Err("cannot listen for SIGTERM")),
                false,
                Some("cannot listen for SIGTERM"),
                1_000,
            ),
            (
                (60_000, Ok(())),
                true,
                Some("the controllers ended on their own (their watches failed)"),
                500,
            ),
        ];
        for ((signal_after, signal), finished, error, ends_after) in cases {
            let stopped_within = Arc::new(Mutex::new(None));
            let stand_in = StandIn {
                finished,
                stopped_within: stopped_within.clone(),
            };
            let started = tokio::time::Instant::now();
            let shutdown = async move {
                tokio::time::sleep(Duration::from_millis(signal_after)).await;
                signal.map_err(anyhow::Error::msg)
            };
            let outcome = operate(
                &args,
                kube.clone(),
                &Metrics::new(),
                move |fence: Option<aws::Fence>| {
                    assert!(fence.is_none(), "no fence without leader election");
                    stand_in
                },
                shutdown,
            )
            .await;
            assert_eq!(
                outcome.err().map(|error| error.to_string()),
                error.map(str::to_owned),
                "{error:?}"
            );
            assert_eq!(started.elapsed(), Duration::from_millis(ends_after));
            assert_eq!(
                *stopped_within.lock().expect("lock"),
                Some(STOP_TIMEOUT),
                "{error:?}"
            );
        }
    }
}
