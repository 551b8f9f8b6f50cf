//! The controllers: `ivschat-operator run` reconciles ChatLoggingConfiguration and ChatRoom objects
//! against AWS IVS Chat (or any compatible endpoint, such as the local emulator).
//!
//! Files: [`driver`] (the one generic reconcile driver and the per-kind trait), [`room`] and
//! [`logging_configuration`] (the two kinds: mapping and AWS calls), `registration` (the wiring every
//! kind gets: one watch and store per kind shared by both controllers, wake-ups, drift channel,
//! context, run), [`plan`] (pure diffing and tag planning), [`status`] (conditions and the status
//! document), [`aws`] (every AWS call: rate budget, timeouts, retries, metrics), [`aws_error`] (error
//! classification), [`export`] (`spec.export`: the ConfigMaps of coordinates), [`rate_limit`] (the client-side rate budget and its quotas), [`inventory`] (complete
//! listings for drift detection and the ownership lookup), [`events`] (publishing Events, repeats as
//! series), [`digest`] (the digests kept in place of values that are only compared).
//! Metrics are [`crate::metrics`], handed in through [`Options::metrics`].
//!
//! [`start`] runs both controllers in-process on given clients and returns a handle that stops them. The
//! library knows nothing of the process around it (flags, logs, servers, leader election, signals): that is
//! `crate::run`, which uses it exactly as the tests and the benchmark do.

pub mod accounts;
pub mod aws;
pub mod aws_error;
pub mod digest;
pub mod driver;
pub mod events;
pub mod export;
pub mod inventory;
pub mod logging_configuration;
pub mod plan;
pub mod rate_limit;
mod registration;
pub mod room;
pub mod status;

use crate::crd::{ChatAccount, ChatLoggingConfiguration, ChatRoom};
use crate::metrics::Metrics;
use accounts::{Accounts, ScopeKey};
use anyhow::Context as _;
use driver::Timing;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::runtime::reflector::Store;
use kube::{Api, ResourceExt};
use registration::{Registration, SideWatch, Watch, using_account, using_an_account_in};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
    /// The messaging endpoint a room's export writes (`ROOM_MESSAGING_ENDPOINT`), `{region}` replaced by
    /// the room's region: AWS's by default, the emulator's (or another compatible one's) when the AWS
    /// endpoint is overridden.
    pub messaging_endpoint: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timing: Timing::default(),
            metrics: Metrics::new(),
            namespace: None,
            concurrency: 16,
            messaging_endpoint: export::DEFAULT_MESSAGING_ENDPOINT.to_owned(),
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

/// How long [`OperatorHandle::stop`] lets running reconciles (each bounded by its own timeouts) finish
/// before aborting them. A process picks its own limit with [`OperatorHandle::stop_within`].
pub const STOP_GRACE: Duration = Duration::from_secs(30);

impl OperatorHandle {
    /// Stops both controllers: no new reconciles start, running ones finish (within [`STOP_GRACE`]).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_within(STOP_GRACE).await
    }

    /// Stops both controllers: no new reconciles start; running ones get `limit` to finish, then are
    /// aborted. Either way nothing of the controllers runs any more when this returns.
    ///
    /// The stop's only timeout is here, with the caller's limit, because only the handle can end what it
    /// abandons: it aborts its task and waits for the abort. A timeout around this future instead would
    /// drop the `JoinHandle`, which detaches the task, so the reconciles would go on unseen.
    pub async fn stop_within(mut self, limit: Duration) -> anyhow::Result<()> {
        // kube-runtime holds its reconcile runner until the store's first list: stopped before that, it
        // would wait forever, and it has nothing to finish anyway.
        let listed =
            stores_listed(&self.room_store).await && stores_listed(&self.config_store).await;
        for signal in self.shutdown.drain(..) {
            let _ = signal.send(());
        }
        let limit = if listed { limit } else { Duration::ZERO };
        match tokio::time::timeout(limit, &mut self.task).await {
            Ok(result) => result.context("the controller task failed"),
            Err(_) => {
                if listed {
                    tracing::warn!(timeout = ?limit, "in-flight reconciles did not finish: abandoning them");
                }
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

/// [`start`] with a given AWS access (e.g. with a rate budget): the operator's own, in its own region.
/// Both controllers share it and the accounts and regions made from it ([`Accounts`]): the quotas are
/// per account and region, not per kind. Beside them runs the ChatAccount controller, which checks each
/// account's role every `options.timing.long_backoff`.
pub fn start_with(kube: kube::Client, aws: aws::Aws, options: Options) -> OperatorHandle {
    let home = ScopeKey::new(None, aws.region().unwrap_or("us-east-1"));
    let aws = aws.counted_in(&options.metrics, &home);
    let namespace = options.namespace.as_deref();
    // Accounts and namespaces are read for placement, and wake the objects that use them when they
    // change (a selector now selecting a namespace, an account whose role works again).
    let mut account_watch = SideWatch::new(
        Api::<ChatAccount>::all(kube.clone()),
        kube::runtime::watcher::Config::default(),
        registration::account_without_bookkeeping,
    );
    // Watching one namespace, the operator reads only that Namespace (by name, which RBAC's
    // resourceNames can authorise).
    let namespaces = match namespace {
        Some(name) => {
            kube::runtime::watcher::Config::default().fields(&format!("metadata.name={name}"))
        }
        None => kube::runtime::watcher::Config::default(),
    };
    let mut namespace_watch = SideWatch::new(
        Api::<Namespace>::all(kube.clone()),
        namespaces,
        registration::namespace_labels_only,
    );
    let accounts = Accounts::new(
        aws,
        options.namespace.clone(),
        account_watch.store(),
        namespace_watch.store(),
        options.metrics.clone(),
    );
    // The operator's exported ConfigMaps (and only those: the label selects them), read by both
    // controllers; a change wakes the object it exports, so one edited or deleted out of band is put back.
    let config_maps = match namespace {
        Some(namespace) => Api::<ConfigMap>::namespaced(kube.clone(), namespace),
        None => Api::<ConfigMap>::all(kube.clone()),
    };
    let mut config_map_watch = SideWatch::new(
        config_maps,
        kube::runtime::watcher::Config::default().labels(crate::crd::EXPORTED_BY_LABEL),
        export::config_map_essentials,
    );
    let exports = export::Exports {
        kube: kube.clone(),
        config_maps: config_map_watch.store(),
        messaging_endpoint: export::MessagingEndpoint::new(options.messaging_endpoint.clone()),
    };
    // One watch per kind, read by both controllers.
    let mut room_watch = Watch::<ChatRoom>::new(&kube, namespace);
    let mut config_watch = Watch::<ChatLoggingConfiguration>::new(&kube, namespace);
    let (room_store, config_store) = (room_watch.store(), config_watch.store());

    // A logging configuration's change (e.g. it became ACTIVE) wakes the rooms that name it; a room's
    // change wakes the configurations it names and those waiting to be deleted. Each kind's context is
    // the other's store.
    let rooms_of = room_store.clone();
    let (rooms_in_account, rooms_in_namespace) = (room_store.clone(), room_store.clone());
    let room_context = room::RoomContext {
        configs: config_store.clone(),
        accounts: accounts.clone(),
    };
    let (room_run, stop_rooms) = Registration::of(&mut room_watch)
        .woken_by(&mut config_watch, move |config| {
            room::rooms_referencing(&rooms_of, &config)
        })
        .woken_by_side(&mut account_watch, move |account| {
            using_account(&rooms_in_account, &account.name_any())
        })
        .woken_by_side(&mut namespace_watch, move |namespace| {
            using_an_account_in(&rooms_in_namespace, &namespace.name_any())
        })
        .woken_by_side(&mut config_map_watch, |config_map| {
            export::owners_of::<ChatRoom>(&config_map)
        })
        .run(&kube, &accounts, &options, room_context, &exports);
    let configs_of = config_store.clone();
    let (configs_in_account, configs_in_namespace) = (config_store.clone(), config_store.clone());
    let (config_run, stop_configs) = Registration::of(&mut config_watch)
        .woken_by(&mut room_watch, move |room| {
            logging_configuration::configurations_affected_by(&configs_of, &room)
        })
        .woken_by_side(&mut account_watch, move |account| {
            using_account(&configs_in_account, &account.name_any())
        })
        .woken_by_side(&mut namespace_watch, move |namespace| {
            using_an_account_in(&configs_in_namespace, &namespace.name_any())
        })
        .woken_by_side(&mut config_map_watch, |config_map| {
            export::owners_of::<ChatLoggingConfiguration>(&config_map)
        })
        .run(&kube, &accounts, &options, room_store.clone(), &exports);
    let (stop_checks, checks_stopped) = oneshot::channel::<()>();
    let account_checks = accounts::status::run(
        kube.clone(),
        accounts,
        options.timing.long_backoff,
        options.metrics.clone(),
        async move {
            let _ = checks_stopped.await;
        },
    );

    let watches = (
        room_watch.run(),
        config_watch.run(),
        account_watch.run(),
        namespace_watch.run(),
        config_map_watch.run(),
    );
    let task = tokio::spawn(async move {
        // The watches never end on their own: they stop with the controllers.
        tokio::select! {
            _ = async { tokio::join!(room_run, config_run, account_checks) } => {}
            _ = async { tokio::join!(watches.0, watches.1, watches.2, watches.3, watches.4) } => {}
        }
    });
    OperatorHandle {
        shutdown: vec![stop_rooms, stop_configs, stop_checks],
        task,
        room_store,
        config_store,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Sets its flag when dropped: the end of the task that owns it.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A handle over stand-in stores (listed or not) and a task that ends `finishes_after` its stop signal
    /// (never: `None`).
    fn handle(listed: bool, finishes_after: Option<Duration>) -> (OperatorHandle, Arc<AtomicBool>) {
        let (room_store, mut room_writer) = kube::runtime::reflector::store::<ChatRoom>();
        let (config_store, mut config_writer) =
            kube::runtime::reflector::store::<ChatLoggingConfiguration>();
        if listed {
            room_writer.apply_watcher_event(&watcher::Event::InitDone);
            config_writer.apply_watcher_event(&watcher::Event::InitDone);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let ended = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(ended.clone());
        let task = tokio::spawn(async move {
            // The writers live as long as the controllers, as in `start_with`.
            let _writers = (room_writer, config_writer);
            let _flag = flag;
            let _ = stopped.await;
            match finishes_after {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
        });
        let handle = OperatorHandle {
            shutdown: vec![stop],
            task,
            room_store,
            config_store,
        };
        (handle, ended)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_waits_for_running_reconciles_up_to_its_limit_then_aborts_them() {
        let limit = Duration::from_secs(20);
        // The time `stores_listed` gives the first store before deciding it is not listed (the second is
        // then not looked at).
        let not_listed = Duration::from_millis(20);
        // (stores listed, task ends this long after the signal) -> the stop returns after
        let cases = [
            (true, Some(Duration::from_secs(3)), Duration::from_secs(3)),
            (true, None, limit),
            (true, Some(Duration::from_secs(25)), limit),
            // Before the first list there is nothing to finish: aborted at once.
            (false, Some(Duration::from_secs(3)), not_listed),
        ];
        for (listed, finishes_after, returns_after) in cases {
            let (handle, ended) = handle(listed, finishes_after);
            let started = tokio::time::Instant::now();
            handle.stop_within(limit).await.expect("stopping");
            assert_eq!(
                started.elapsed(),
                returns_after,
                "listed {listed}, finishes after {finishes_after:?}"
            );
            assert!(
                ended.load(Ordering::SeqCst),
                "the task is gone when the stop returns (listed {listed}, finishes after {finishes_after:?})"
            );
        }
    }
}
