//! Operating the operator: the `run` flags for probes, metrics, leader election and logs; the process's
//! one [`Metrics`] registry (defined in [`crate::metrics`]); the HTTP server for `/metrics`, `/healthz` and
//! `/readyz`; structured logs (text or JSON); and [`operate`], which
//! wraps the controllers in all of it (servers up, leadership won, controllers started, and on SIGTERM
//! controllers stopped before the Lease is released so a successor takes over at once).

use crate::leader::{LeaderElection, LeaseSettings};
use crate::metrics::Metrics;
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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
    #[arg(long, env = "IVSCHAT_OPERATOR_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = crate::duration::parse_positive_duration)]
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
// Metrics (the families and their recording live in `crate::metrics`)

/// The process's metrics: served on /metrics, set by leader election, and handed to the controllers by
/// `run` (`controller::Options::metrics`), so that all of them are one registry.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

// ---------------------------------------------------------------------------------------------------------
// Probes and the HTTP server

/// What the probes report.
#[derive(Debug, Default)]
pub struct Probes {
    /// Clients built, servers up: the replica can serve (a follower is ready too, or a rolling update could
    /// never finish).
    ready: AtomicBool,
    /// Set when the replica can no longer work (the controllers ended on their own, or leadership was lost):
    /// liveness fails so the kubelet restarts it.
    broken: AtomicBool,
}

impl Probes {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn set_broken(&self) {
        self.broken.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.is_broken()
    }

    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }
}

/// The running HTTP servers; [`Servers::addresses`] gives the bound ports (useful with port 0).
pub struct Servers {
    pub metrics: Option<SocketAddr>,
    pub health: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn metrics_router() -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            match metrics().encode() {
                Ok(text) => (
                    axum::http::StatusCode::OK,
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                ),
                Err(err) => (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    [(axum::http::header::CONTENT_TYPE, "text/plain")],
                    format!("cannot encode the metrics: {err}"),
                ),
            }
        }),
    )
}

fn health_router(probes: Arc<Probes>) -> axum::Router {
    let live = probes.clone();
    axum::Router::new()
        .route(
            "/healthz",
            axum::routing::get(move || async move {
                if live.is_broken() {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "broken\n")
                } else {
                    (axum::http::StatusCode::OK, "ok\n")
                }
            }),
        )
        .route(
            "/readyz",
            axum::routing::get(move || async move {
                if probes.is_ready() {
                    (axum::http::StatusCode::OK, "ok\n")
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        )
}

async fn serve(
    address: SocketAddr,
    router: axum::Router,
    what: &str,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
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

/// Starts the metrics and probe servers (the same server when both addresses are equal).
pub async fn start_servers(
    metrics_address: Option<SocketAddr>,
    health_address: Option<SocketAddr>,
    probes: Arc<Probes>,
) -> anyhow::Result<Servers> {
    let mut servers = Servers {
        metrics: None,
        health: None,
        tasks: Vec::new(),
    };
    match (metrics_address, health_address) {
        (Some(metrics_at), Some(health_at)) if metrics_at == health_at => {
            let (bound, task) = serve(
                metrics_at,
                metrics_router().merge(health_router(probes)),
                "metrics and probes",
            )
            .await?;
            servers.metrics = Some(bound);
            servers.health = Some(bound);
            servers.tasks.push(task);
        }
        (metrics_at, health_at) => {
            if let Some(address) = metrics_at {
                let (bound, task) = serve(address, metrics_router(), "metrics").await?;
                servers.metrics = Some(bound);
                servers.tasks.push(task);
            }
            if let Some(address) = health_at {
                let (bound, task) = serve(address, health_router(probes), "probes").await?;
                servers.health = Some(bound);
                servers.tasks.push(task);
            }
        }
    }
    Ok(servers)
}

// ---------------------------------------------------------------------------------------------------------
// Running the controllers under all of it

/// How long a stopping replica waits for its in-flight reconciles.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Something that runs until told to stop (the controllers' handle).
pub trait Stoppable: Send {
    fn stop(self) -> impl Future<Output = anyhow::Result<()>> + Send;
    fn is_finished(&self) -> bool;
}

impl Stoppable for crate::controller::OperatorHandle {
    fn stop(self) -> impl Future<Output = anyhow::Result<()>> + Send {
        crate::controller::OperatorHandle::stop(self)
    }

    fn is_finished(&self) -> bool {
        crate::controller::OperatorHandle::is_finished(self)
    }
}

/// Runs the controllers the way a deployment needs: probe and metrics servers first, then (with
/// `--leader-elect`) wait for the Lease, then `start` the controllers; until `shutdown` resolves (SIGTERM),
/// leadership is lost (error, so the process exits and restarts), or the controllers end on their own.
/// On shutdown the controllers stop (in-flight reconciles finish) before the Lease is released, so the
/// successor never overlaps with this replica and takes over at once.
pub async fn operate<H, S, F>(
    args: &OperationsArgs,
    kube: kube::Client,
    start: S,
    shutdown: F,
) -> anyhow::Result<()>
where
    H: Stoppable,
    S: FnOnce() -> H,
    F: Future<Output = anyhow::Result<()>>,
{
    let probes = Arc::new(Probes::default());
    let servers = start_servers(
        args.metrics_bind_address,
        args.health_probe_bind_address,
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
    tokio::pin!(shutdown);

    let mut election = if args.leader_elect {
        let namespace = match &args.leader_election_namespace {
            Some(namespace) => namespace.clone(),
            None => std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| kube.default_namespace().to_owned()),
        };
        let settings = LeaseSettings::new(
            &namespace,
            &args.leader_election_lease_name,
            crate::leader::default_identity(),
            args.leader_election_lease_duration,
        );
        tracing::info!(
            namespace = %settings.namespace,
            lease = %settings.lease_name,
            identity = %settings.identity,
            "waiting for leadership"
        );
        let election = LeaderElection::new(kube.clone(), settings);
        metrics().set_leader(false);
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
    metrics().set_leader(true);

    let handle = start();
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
    let outcome = tokio::select! {
        result = &mut shutdown => {
            result?;
            tracing::info!("shutting down: finishing in-flight reconciles");
            Ok(())
        }
        () = lost => {
            probes.set_broken();
            Err(anyhow::anyhow!("lost the leader Lease (not renewed in time): stopping so that only the new leader reconciles"))
        }
        () = ended => {
            probes.set_broken();
            Err(anyhow::anyhow!("the controllers ended on their own (their watches failed)"))
        }
    };
    probes.set_ready(false);
    // In-flight reconciles get most of the pod's termination grace period (30 s) to finish; past that they
    // are abandoned (the process exits right after), so the Lease is still released before SIGKILL.
    let stopped = match tokio::time::timeout(STOP_TIMEOUT, handle.stop()).await {
        Ok(stopped) => stopped,
        Err(_) => {
            tracing::warn!(timeout = ?STOP_TIMEOUT, "in-flight reconciles did not finish: abandoning them");
            Ok(())
        }
    };
    metrics().set_leader(false);
    if let Some(election) = election.take() {
        // Only after the controllers stopped: the successor must not start while we still reconcile.
        match election.release().await {
            Ok(()) => tracing::info!("released the leader Lease"),
            Err(error) => {
                tracing::warn!(%error, "cannot release the leader Lease; a successor takes over when it expires")
            }
        }
    }
    drop(servers);
    outcome.and(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_fail_readiness_and_liveness_when_broken() {
        let probes = Probes::default();
        assert!(!probes.is_ready());
        probes.set_ready(true);
        assert!(probes.is_ready() && !probes.is_broken());
        probes.set_broken();
        assert!(!probes.is_ready() && probes.is_broken());
    }
}
