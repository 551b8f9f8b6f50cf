//! The operator's Prometheus metrics, with bounded label sets only (kinds, outcomes and AWS operation
//! names, never object names). A leaf: it knows nothing of the controllers or the process. Whoever runs
//! the operator creates one [`Metrics`], hands clones to the controllers (`controller::Options::metrics`)
//! and serves [`Metrics::encode`] on `/metrics`; the controllers record into it through their context,
//! and every HTTP attempt of the IVS Chat client is counted by the interceptor [`instrument_aws`] adds.

use aws_sdk_ivschat::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_ivschat::config::{ConfigBag, Intercept, RuntimeComponents};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// How a reconcile ended (the label values of `ivschat_operator_reconciles_total`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ReconcileOutcome {
    /// The object is Ready (or deleted, or observed as asked).
    ready,
    /// Waiting: a reference, an AWS transition, a transient error being retried.
    progressing,
    /// Needs a change or outside help (rejected spec, access denied, failed AWS state).
    stalled,
    /// Nothing to do (paused, or the object is gone).
    skipped,
    /// The Kubernetes API refused a write; retried with backoff.
    error,
}

/// How an AWS call ended (the label values of `ivschat_operator_aws_requests_total`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AwsOutcome {
    success,
    not_found,
    throttled,
    client_error,
    server_error,
    /// No HTTP response at all (connection failure, timeout).
    network_error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: &'static str,
    outcome: ReconcileOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsLabels {
    operation: &'static str,
    outcome: AwsOutcome,
    account: Arc<str>,
    region: &'static str,
}

/// The (account, region) of an AWS call as its labels show it: the ChatAccount's name (`default` for the
/// operator's own credentials; ChatAccounts are few and made by administrators) and the region, one of the
/// IVS Chat regions or `other`, so that no object can grow the label set.
#[derive(Clone, Debug)]
pub struct ScopeLabels {
    account: Arc<str>,
    region: &'static str,
}

impl ScopeLabels {
    pub fn new(account: &str, region: &str) -> Self {
        ScopeLabels {
            account: Arc::from(account),
            region: ivschat_api::regions::IVSCHAT_REGIONS
                .iter()
                .find(|known| **known == region)
                .copied()
                .unwrap_or("other"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AssumptionLabels {
    account: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// The IVS Chat operations (the only values of the `operation` label, with "Other" for anything else).
const OPERATIONS: [&str; 17] = [
    "CreateChatToken",
    "CreateLoggingConfiguration",
    "CreateRoom",
    "DeleteLoggingConfiguration",
    "DeleteMessage",
    "DeleteRoom",
    "DisconnectUser",
    "GetLoggingConfiguration",
    "GetRoom",
    "ListLoggingConfigurations",
    "ListRooms",
    "ListTagsForResource",
    "SendEvent",
    "TagResource",
    "UntagResource",
    "UpdateLoggingConfiguration",
    "UpdateRoom",
];

/// The operator's metrics: a registry and its families. Cheap to clone (every clone records into the
/// same registry), so each controller and the AWS client's interceptor hold their own handle.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Families>,
}

#[derive(Debug)]
struct Families {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Family<KindLabels, Histogram>,
    aws_requests: Family<AwsLabels, Counter>,
    aws_throttles: Family<OperationLabels, Counter>,
    queue_depth: Family<KindLabels, Gauge>,
    leader: Gauge,
    resync_period: Family<KindLabels, Gauge<f64, AtomicU64>>,
    resync_stretched: Family<KindLabels, Gauge>,
    listing_pages: Family<KindLabels, Gauge>,
    role_assumptions: Family<AssumptionLabels, Counter>,
    account_ready: Family<AccountLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered (and no samples yet).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ivschat_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by kind and outcome",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            // 1 ms .. ~33 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, by kind",
            reconcile_duration.clone(),
        );
        let aws_requests = Family::<AwsLabels, Counter>::default();
        registry.register(
            "aws_requests",
            "HTTP requests to IVS Chat (each SDK attempt), by operation and outcome",
            aws_requests.clone(),
        );
        let aws_throttles = Family::<OperationLabels, Counter>::default();
        registry.register(
            "aws_throttles",
            "IVS Chat requests refused by throttling (HTTP 429 or a throttling error code), by operation",
            aws_throttles.clone(),
        );
        let queue_depth = Family::<KindLabels, Gauge>::default();
        // kube-runtime's scheduler does not expose its queue, so the depth measured is the work in progress.
        registry.register(
            "reconciles_in_flight",
            "Reconciles started and not yet finished, by kind",
            queue_depth.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease (or runs without leader election), else 0",
            leader.clone(),
        );
        let resync_period = Family::<KindLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "resync_period_seconds",
            "The resync period in effect, by kind: the configured one, or longer when one complete listing \
             of the account does not fit in it under the rate budget",
            resync_period.clone(),
        );
        let resync_stretched = Family::<KindLabels, Gauge>::default();
        registry.register(
            "resync_stretched",
            "1 while the kind's resync period is stretched beyond the configured one, else 0",
            resync_stretched.clone(),
        );
        let listing_pages = Family::<KindLabels, Gauge>::default();
        registry.register(
            "listing_pages",
            "Pages (list calls, 50 resources each) of the kind's last complete account-wide listing",
            listing_pages.clone(),
        );
        let role_assumptions = Family::<AssumptionLabels, Counter>::default();
        registry.register(
            "account_role_assumptions",
            "STS AssumeRole calls for ChatAccounts' sessions (renewals and checks), by account and outcome \
             (success, refused, unavailable)",
            role_assumptions.clone(),
        );
        let account_ready = Family::<AccountLabels, Gauge>::default();
        registry.register(
            "account_ready",
            "1 while the ChatAccount's role could be assumed at its last check, else 0",
            account_ready.clone(),
        );
        Metrics {
            inner: Arc::new(Families {
                role_assumptions,
                account_ready,
                registry,
                reconciles,
                reconcile_duration,
                aws_requests,
                aws_throttles,
                queue_depth,
                leader,
                resync_period,
                resync_stretched,
                listing_pages,
            }),
        }
    }

    /// Records a finished reconcile of `kind` (a static kind name such as "ChatRoom").
    pub fn reconcile_finished(
        &self,
        kind: &'static str,
        outcome: ReconcileOutcome,
        duration: Duration,
    ) {
        self.inner
            .reconciles
            .get_or_create(&ReconcileLabels { kind, outcome })
            .inc();
        self.inner
            .reconcile_duration
            .get_or_create(&KindLabels { kind })
            .observe(duration.as_secs_f64());
    }

    /// Marks a reconcile of `kind` as started; the returned guard ends it (and records nothing else), so the
    /// in-flight gauge stays right even when a reconcile future is dropped.
    pub fn reconcile_started(&self, kind: &'static str) -> InFlight {
        let gauge = self
            .inner
            .queue_depth
            .get_or_create(&KindLabels { kind })
            .clone();
        gauge.inc();
        InFlight { gauge }
    }

    /// Measures one reconcile of `kind`: in flight while it runs, then its duration and its outcome, which
    /// `outcome` reads from a finished reconcile's value (`None`: nothing was reported, e.g. paused:
    /// `skipped`); a failed reconcile is `error`.
    pub async fn timed_reconcile<T, E>(
        &self,
        kind: &'static str,
        reconcile: impl Future<Output = Result<T, E>>,
        outcome: impl FnOnce(&T) -> Option<ReconcileOutcome>,
    ) -> Result<T, E> {
        let _in_flight = self.reconcile_started(kind);
        let started = tokio::time::Instant::now();
        // The whole reconcile (every poll, not only the first) stays in the span it started in: kube-runtime's
        // "reconciling object" span naming the object, so every log line of a reconcile says which object.
        let result = tracing::Instrument::instrument(reconcile, tracing::Span::current()).await;
        let outcome = match &result {
            Err(_) => ReconcileOutcome::error,
            Ok(value) => outcome(value).unwrap_or(ReconcileOutcome::skipped),
        };
        self.reconcile_finished(kind, outcome, started.elapsed());
        result
    }

    /// Records one AWS call of `operation` (an IVS Chat operation name; others are counted as "Other") in
    /// `scope`.
    pub fn aws_call(&self, operation: &str, outcome: AwsOutcome, scope: &ScopeLabels) {
        let operation = operation_label(operation);
        self.inner
            .aws_requests
            .get_or_create(&AwsLabels {
                operation,
                outcome,
                account: scope.account.clone(),
                region: scope.region,
            })
            .inc();
        if outcome == AwsOutcome::throttled {
            self.inner
                .aws_throttles
                .get_or_create(&OperationLabels { operation })
                .inc();
        }
    }

    /// The resync period in effect for `kind`, and whether it is stretched beyond the configured one.
    pub fn set_resync_period(&self, kind: &'static str, period: Duration, stretched: bool) {
        let labels = KindLabels { kind };
        self.inner
            .resync_period
            .get_or_create(&labels)
            .set(period.as_secs_f64());
        self.inner
            .resync_stretched
            .get_or_create(&labels)
            .set(i64::from(stretched));
    }

    /// A complete listing of `kind` took `pages` calls.
    pub fn listing_completed(&self, kind: &'static str, pages: u64) {
        self.inner
            .listing_pages
            .get_or_create(&KindLabels { kind })
            .set(i64::try_from(pages).unwrap_or(i64::MAX));
    }

    /// An AssumeRole for the ChatAccount `account` ended with `outcome`.
    pub fn credentials_assumed(&self, account: &str, outcome: &'static str) {
        self.inner
            .role_assumptions
            .get_or_create(&AssumptionLabels {
                account: account.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Whether the ChatAccount `account`'s role could be assumed at its last check.
    pub fn set_account_ready(&self, account: &str, ready: bool) {
        self.inner
            .account_ready
            .get_or_create(&AccountLabels {
                account: account.to_owned(),
            })
            .set(i64::from(ready));
    }

    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }
}

/// A reconcile in flight (see [`Metrics::reconcile_started`]).
pub struct InFlight {
    gauge: Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

fn operation_label(operation: &str) -> &'static str {
    OPERATIONS
        .iter()
        .find(|known| **known == operation)
        .copied()
        .unwrap_or("Other")
}

/// The outcome of an AWS response from its HTTP status and error code (`x-amzn-errortype`, whose part before
/// a `:` is the code).
pub fn aws_outcome(status: Option<u16>, error_type: Option<&str>) -> AwsOutcome {
    let code = error_type
        .map(|value| value.split(':').next().unwrap_or_default())
        .unwrap_or_default();
    match status {
        None => AwsOutcome::network_error,
        Some(429) => AwsOutcome::throttled,
        Some(_) if code.contains("Throttl") || code == "TooManyRequestsException" => {
            AwsOutcome::throttled
        }
        Some(200..=299) => AwsOutcome::success,
        Some(404) => AwsOutcome::not_found,
        Some(_) if code == "ResourceNotFoundException" => AwsOutcome::not_found,
        Some(500..) => AwsOutcome::server_error,
        Some(_) => AwsOutcome::client_error,
    }
}

/// Counts every HTTP attempt of an IVS Chat client in its [`Metrics`].
#[derive(Debug)]
struct AwsCallCounter {
    metrics: Metrics,
    scope: ScopeLabels,
}

impl Intercept for AwsCallCounter {
    fn name(&self) -> &'static str {
        "ivschat-operator metrics"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_ivschat::error::BoxError> {
        // The SDK names the operation in the config bag; the request itself is gone once transmitted.
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("Other", |metadata| operation_label(metadata.name()));
        let response = context.response();
        let outcome = aws_outcome(
            response.map(|r| r.status().as_u16()),
            response.and_then(|r| r.headers().get("x-amzn-errortype")),
        );
        self.metrics.aws_call(operation, outcome, &self.scope);
        Ok(())
    }
}

/// The same client with every request counted in `metrics`, labelled with its `scope`.
pub fn instrument_aws(
    client: &aws_sdk_ivschat::Client,
    metrics: &Metrics,
    scope: ScopeLabels,
) -> aws_sdk_ivschat::Client {
    let config = client
        .config()
        .to_builder()
        .interceptor(AwsCallCounter {
            metrics: metrics.clone(),
            scope,
        })
        .build();
    aws_sdk_ivschat::Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_come_from_status_and_error_code() {
        assert_eq!(aws_outcome(Some(200), None), AwsOutcome::success);
        assert_eq!(aws_outcome(Some(429), None), AwsOutcome::throttled);
        assert_eq!(
            aws_outcome(Some(400), Some("ThrottlingException:http://internal")),
            AwsOutcome::throttled
        );
        assert_eq!(
            aws_outcome(Some(404), Some("ResourceNotFoundException")),
            AwsOutcome::not_found
        );
        assert_eq!(
            aws_outcome(Some(400), Some("ValidationException")),
            AwsOutcome::client_error
        );
        assert_eq!(aws_outcome(Some(503), None), AwsOutcome::server_error);
        assert_eq!(aws_outcome(None, None), AwsOutcome::network_error);
    }

    #[test]
    fn metrics_are_exposed_with_bounded_labels() {
        let metrics = Metrics::new();
        metrics.reconcile_finished(
            "ChatRoom",
            ReconcileOutcome::ready,
            Duration::from_millis(3),
        );
        let home = ScopeLabels::new("default", "us-west-2");
        metrics.aws_call("CreateRoom", AwsOutcome::success, &home);
        metrics.aws_call("GetRoom", AwsOutcome::throttled, &home);
        let elsewhere = ScopeLabels::new("prod", "xx-nowhere-9");
        metrics.aws_call(
            "arn:aws:ivschat:room/unbounded",
            AwsOutcome::client_error,
            &elsewhere,
        );
        let in_flight = metrics.reconcile_started("ChatRoom");
        metrics.set_leader(true);
        let text = metrics.encode().expect("encoding");
        assert!(
            text.contains(
                "ivschat_operator_reconciles_total{kind=\"ChatRoom\",outcome=\"ready\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("ivschat_operator_reconcile_duration_seconds_count{kind=\"ChatRoom\"} 1"),
            "{text}"
        );
        assert!(text.contains("ivschat_operator_aws_requests_total{operation=\"CreateRoom\",outcome=\"success\",account=\"default\",region=\"us-west-2\"} 1"), "{text}");
        assert!(
            text.contains("ivschat_operator_aws_throttles_total{operation=\"GetRoom\"} 1"),
            "{text}"
        );
        // Neither an unknown operation nor an unknown region can grow the label set.
        assert!(text.contains("ivschat_operator_aws_requests_total{operation=\"Other\",outcome=\"client_error\",account=\"prod\",region=\"other\"} 1"), "{text}");
        assert!(
            text.contains("ivschat_operator_reconciles_in_flight{kind=\"ChatRoom\"} 1"),
            "{text}"
        );
        assert!(text.contains("ivschat_operator_leader 1"), "{text}");
        drop(in_flight);
        let text = metrics.encode().expect("encoding");
        assert!(
            text.contains("ivschat_operator_reconciles_in_flight{kind=\"ChatRoom\"} 0"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn timed_reconciles_take_their_outcome_from_the_reported_value() {
        let metrics = Metrics::new();
        let count = |outcome: &str| -> f64 {
            let text = metrics.encode().expect("encoding");
            let series = format!(
                "ivschat_operator_reconciles_total{{kind=\"TestKind\",outcome=\"{outcome}\"}} "
            );
            text.lines()
                .find_map(|line| line.strip_prefix(series.as_str()))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0.0)
        };
        let reported = |value: &Option<ReconcileOutcome>| *value;
        let ok: Result<_, ()> = metrics
            .timed_reconcile(
                "TestKind",
                async { Ok(Some(ReconcileOutcome::stalled)) },
                reported,
            )
            .await;
        assert_eq!(ok, Ok(Some(ReconcileOutcome::stalled)));
        let _: Result<_, ()> = metrics
            .timed_reconcile(
                "TestKind",
                async { Ok(Some(ReconcileOutcome::ready)) },
                reported,
            )
            .await;
        let _: Result<_, ()> = metrics
            .timed_reconcile("TestKind", async { Ok(None) }, reported)
            .await;
        let _: Result<Option<ReconcileOutcome>, ()> = metrics
            .timed_reconcile("TestKind", async { Err(()) }, reported)
            .await;
        assert_eq!(count("stalled"), 1.0);
        assert_eq!(count("ready"), 1.0);
        assert_eq!(count("skipped"), 1.0);
        assert_eq!(count("error"), 1.0);
        let text = metrics.encode().expect("encoding");
        assert!(
            text.contains("ivschat_operator_reconciles_in_flight{kind=\"TestKind\"} 0"),
            "{text}"
        );
        // Clones record into the same registry; a new Metrics is a registry of its own.
        metrics
            .clone()
            .reconcile_finished("TestKind", ReconcileOutcome::ready, Duration::ZERO);
        assert_eq!(count("ready"), 2.0);
        assert!(
            !Metrics::new()
                .encode()
                .expect("encoding")
                .contains("TestKind")
        );
    }
}
