//! The controllers: `ivschat-operator run` reconciles ChatLoggingConfiguration and ChatRoom objects
//! against AWS IVS Chat (or any compatible endpoint, such as the local emulator).
//!
//! Files: [`driver`] (the one generic reconcile driver and the per-kind trait), [`room`] and
//! [`logging_configuration`] (the two kinds: mapping and AWS calls), `registration` (the wiring every
//! kind gets: watches, wake-ups, drift channel, context, run), [`plan`] (pure diffing and tag planning),
//! [`status`] (conditions and the status document), [`aws`] (every AWS call: rate budget, timeouts,
//! retries, metrics), [`aws_error`] (error classification), [`rate_limit`] (the client-side rate budget
//! and its quotas), [`inventory`] (complete listings for drift detection and the ownership lookup).
//! Metrics are [`crate::metrics`], handed in through [`Options::metrics`].
//!
//! [`start`] runs both controllers in-process on given clients (what the tests and the benchmark use) and
//! returns a handle that stops them; [`run`] is the command-line entry point.

pub mod aws;
pub mod aws_error;
pub mod driver;
pub mod inventory;
pub mod logging_configuration;
pub mod plan;
pub mod rate_limit;
mod registration;
pub mod room;
pub mod status;

use crate::crd::{ChatLoggingConfiguration, ChatRoom};
use crate::metrics::Metrics;
use anyhow::Context as _;
use driver::Timing;
use kube::runtime::reflector::Store;
use registration::Registration;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
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

    /// How often every resource is read from AWS to correct out-of-band changes (e.g. 10m, 30s).
    #[arg(long, env = "IVSCHAT_OPERATOR_RESYNC_PERIOD", default_value = "10m", value_parser = crate::duration::parse_positive_duration)]
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
    #[arg(long, env = "IVSCHAT_OPERATOR_AWS_CALL_TIMEOUT", default_value = "15s", value_parser = crate::duration::parse_positive_duration)]
    pub aws_call_timeout: Duration,

    /// Probes, metrics, leader election and log format.
    #[command(flatten)]
    pub operations: crate::observability::OperationsArgs,
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

/// How the in-process operator runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub timing: Timing,
    /// Where the controllers count reconciles and AWS calls; the process serves the same [`Metrics`] on
    /// /metrics.
    pub metrics: Metrics,
    /// Watch only this namespace (`None`: all).
    pub namespace: Option<String>,
    /// Objects reconciled in parallel per kind.
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timing: Timing::default(),
            metrics: Metrics::new(),
            namespace: None,
            concurrency: 16,
        }
    }
}

/// The running controllers; [`OperatorHandle::stop`] ends them.
pub struct OperatorHandle {
    shutdown: Vec<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    room_store: Store<ChatRoom>,
    config_store: Store<ChatLoggingConfiguration>,
}

/// How long a stop waits for running reconciles (each bounded by its own timeouts) before cutting them off.
const STOP_GRACE: Duration = Duration::from_secs(30);

impl OperatorHandle {
    /// Stops both controllers: no new reconciles start, running ones finish (within a grace period).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // kube-runtime holds its reconcile runner until the store's first list: stopped before that, it
        // would wait forever, and it has nothing to finish anyway.
        let listed =
            stores_listed(&self.room_store).await && stores_listed(&self.config_store).await;
        for signal in self.shutdown.drain(..) {
            let _ = signal.send(());
        }
        let grace = if listed { STOP_GRACE } else { Duration::ZERO };
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(result) => result.context("the controller task failed"),
            Err(_) => {
                self.task.abort();
                let _ = (&mut self.task).await;
                Ok(())
            }
        }
    }

    /// Whether the controllers have ended on their own (they only do when their watches fail for good).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Whether a store has had its first full list (checked, not awaited).
async fn stores_listed<K>(store: &Store<K>) -> bool
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    tokio::time::timeout(Duration::from_millis(20), store.wait_until_ready())
        .await
        .is_ok_and(|ready| ready.is_ok())
}

/// Starts both controllers on the given clients, without a client-side rate budget (tests against an
/// emulator that enforces no quotas). Must be called inside a tokio runtime.
pub fn start(kube: kube::Client, aws: aws_sdk_ivschat::Client, options: Options) -> OperatorHandle {
    start_with(kube, aws::Aws::unlimited(aws), options)
}

/// [`start`] with a given AWS access (e.g. with a rate budget). One `Aws` serves both controllers: the
/// quotas are per account, not per kind.
pub fn start_with(kube: kube::Client, aws: aws::Aws, options: Options) -> OperatorHandle {
    let aws = aws.counted_in(&options.metrics);
    let namespace = options.namespace.as_deref();
    let rooms = Registration::<ChatRoom>::watch(&kube, namespace);
    let configs = Registration::<ChatLoggingConfiguration>::watch(&kube, namespace);
    let (room_store, config_store) = (rooms.store(), configs.store());

    // A logging configuration's change (e.g. it became ACTIVE) wakes the rooms that name it; a room's
    // change wakes the configurations it names and those waiting to be deleted. Each kind's context is
    // the other's store.
    let rooms_of = room_store.clone();
    let (room_run, stop_rooms) = rooms
        .woken_by(&kube, namespace, move |config| {
            room::rooms_referencing(&rooms_of, &config)
        })
        .run(&kube, &aws, &options, config_store.clone());
    let configs_of = config_store.clone();
    let (config_run, stop_configs) = configs
        .woken_by(&kube, namespace, move |room| {
            logging_configuration::configurations_affected_by(&configs_of, &room)
        })
        .run(&kube, &aws, &options, room_store.clone());

    let task = tokio::spawn(async move {
        tokio::join!(room_run, config_run);
    });
    OperatorHandle {
        shutdown: vec![stop_rooms, stop_configs],
        task,
        room_store,
        config_store,
    }
}

/// `ivschat-operator run`: connects to Kubernetes (kubeconfig or in-cluster) and AWS (the standard
/// `aws-config` chain), then reconciles until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    // kube (ring) and the AWS SDK (aws-lc-rs) both enable rustls providers: pick one for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::observability::init_logging(args.operations.log_format);
    let kube = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client from the kubeconfig or the in-cluster config")?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = args.region.clone() {
        loader = loader.region(aws_config::Region::new(region));
    }
    if let Some(endpoint) = args.aws_endpoint_url.as_deref() {
        loader = loader.endpoint_url(endpoint);
    }
    let client = aws_sdk_ivschat::Client::new(&loader.load().await);
    let options = Options {
        timing: Timing {
            resync_period: args.resync_period,
            ..Timing::default()
        },
        // The registry the process serves on /metrics.
        metrics: crate::observability::metrics().clone(),
        namespace: args.namespace.clone(),
        concurrency: args.concurrency,
    };
    let limiter = match args.aws_rate_limit {
        AwsRateLimit::Aws => Some(Arc::new(rate_limit::RateLimiter::new(
            rate_limit::quotas_with(&args.aws_quotas),
        ))),
        AwsRateLimit::None => None,
    };
    let aws = aws::Aws::new(
        client,
        limiter,
        aws::CallPolicy {
            attempt_timeout: args.aws_call_timeout,
            ..aws::CallPolicy::default()
        },
    );
    tracing::info!(
        namespace = args.namespace.as_deref().unwrap_or("<all>"),
        resync = ?args.resync_period,
        concurrency = args.concurrency,
        "starting the ChatRoom and ChatLoggingConfiguration controllers"
    );
    // Probes and metrics first, then leadership (with --leader-elect), then the controllers until SIGTERM.
    crate::observability::operate(
        &args.operations,
        kube.clone(),
        move || start_with(kube, aws, options),
        shutdown_signal(),
    )
    .await
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(cli.run.aws_quotas.is_empty());
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
        assert!(Cli::try_parse_from(["run", "--aws-quota", "rooms=0"]).is_err());
        assert!(Cli::try_parse_from(["run", "--resync-period", "never"]).is_err());
        assert!(Cli::try_parse_from(["run", "--resync-period", "0s"]).is_err());
    }
}
