//! The controllers: `ivschat-operator run` reconciles ChatLoggingConfiguration and ChatRoom objects
//! against AWS IVS Chat (or any compatible endpoint, such as the local emulator).
//!
//! Files: [`driver`] (the one generic reconcile driver and the per-kind trait), [`room`] and
//! [`logging_configuration`] (the two kinds: mapping and AWS calls), [`plan`] (pure diffing and tag
//! planning), [`status`] (conditions and the status document), [`aws`] (every AWS call: rate budget,
//! timeouts, retries), [`aws_error`] (error classification), [`rate_limit`] (the client-side rate budget
//! and its quotas), [`inventory`] (complete listings for drift detection and the ownership lookup).
//!
//! [`start`] runs both controllers in-process on given clients and returns a handle that stops them. The
//! library knows nothing of the process around it (flags, logs, servers, leader election, signals): that is
//! `crate::run`, which uses it exactly as the tests and the benchmark do.

pub mod aws;
pub mod aws_error;
pub mod driver;
pub mod inventory;
pub mod logging_configuration;
pub mod plan;
pub mod rate_limit;
pub mod room;
pub mod status;

use crate::crd::{ChatLoggingConfiguration, ChatRoom};
use anyhow::Context as _;
use driver::{Context, Timing, error_policy, reconcile};
use futures_util::StreamExt;
use kube::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How the in-process operator runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub timing: Timing,
    /// Watch only this namespace (`None`: all).
    pub namespace: Option<String>,
    /// Objects reconciled in parallel per kind.
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timing: Timing::default(),
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

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

fn recorder(client: &kube::Client, controller: &str) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: controller.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        },
    )
}

/// Starts both controllers on the given clients, without a client-side rate budget (tests against an
/// emulator that enforces no quotas). Must be called inside a tokio runtime.
pub fn start(kube: kube::Client, aws: aws_sdk_ivschat::Client, options: Options) -> OperatorHandle {
    start_with(kube, aws::Aws::unlimited(aws), options)
}

/// [`start`] with a given AWS access (e.g. with a rate budget). One `Aws` serves both controllers: the
/// quotas are per account, not per kind.
pub fn start_with(kube: kube::Client, aws: aws::Aws, options: Options) -> OperatorHandle {
    let namespace = options.namespace.as_deref();
    let config = kube::runtime::Config::default().concurrency(options.concurrency);
    let rooms: Api<ChatRoom> = api(&kube, namespace);
    let configs: Api<ChatLoggingConfiguration> = api(&kube, namespace);

    let room_controller = Controller::new(rooms.clone(), watcher::Config::default());
    let room_store = room_controller.store();
    let config_controller = Controller::new(configs.clone(), watcher::Config::default());
    let config_store = config_controller.store();
    // Objects whose AWS resource a listing shows changed (drift) are reconciled at once.
    let (stale_rooms, stale_room_refs) = mpsc::unbounded_channel();
    let (stale_configs, stale_config_refs) = mpsc::unbounded_channel();

    // A logging configuration's change (e.g. it became ACTIVE) wakes the rooms that name it.
    let rooms_of = room_store.clone();
    let room_controller = room_controller
        .watches(configs, watcher::Config::default(), move |config| {
            room::rooms_referencing(&rooms_of, &config)
        })
        .reconcile_on(receiver_stream(stale_room_refs))
        .with_config(config.clone());
    // A room's change wakes the configurations it names and those waiting to be deleted.
    let configs_of = config_store.clone();
    let config_controller = config_controller
        .watches(rooms, watcher::Config::default(), move |room| {
            logging_configuration::configurations_affected_by(&configs_of, &room)
        })
        .reconcile_on(receiver_stream(stale_config_refs))
        .with_config(config);

    let (stop_rooms, rooms_stopped) = oneshot::channel::<()>();
    let (stop_configs, configs_stopped) = oneshot::channel::<()>();
    let room_context = Arc::new(Context::<ChatRoom>::new(
        kube.clone(),
        aws.clone(),
        recorder(&kube, "ivschat-operator/chatroom"),
        options.timing.clone(),
        config_store.clone(),
    ));
    let config_context = Arc::new(Context::<ChatLoggingConfiguration>::new(
        kube.clone(),
        aws,
        recorder(&kube, "ivschat-operator/chatloggingconfiguration"),
        options.timing,
        room_store.clone(),
    ));
    let room_listing = driver::run_inventory(room_context.clone(), room_store.clone(), stale_rooms);
    let config_listing =
        driver::run_inventory(config_context.clone(), config_store.clone(), stale_configs);
    let room_run = room_controller
        .graceful_shutdown_on(async move {
            let _ = rooms_stopped.await;
        })
        .run(reconcile, error_policy, room_context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ChatRoom controller");
            }
        });
    let config_run = config_controller
        .graceful_shutdown_on(async move {
            let _ = configs_stopped.await;
        })
        .run(reconcile, error_policy, config_context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ChatLoggingConfiguration controller");
            }
        });
    let task = tokio::spawn(async move {
        // The listing loops never end on their own: they stop when both controllers have.
        tokio::select! {
            _ = async { tokio::join!(room_run, config_run) } => {}
            _ = async { tokio::join!(room_listing, config_listing) } => {}
        }
    });
    OperatorHandle {
        shutdown: vec![stop_rooms, stop_configs],
        task,
        room_store,
        config_store,
    }
}

/// The receiving end of a channel as a stream (for `Controller::reconcile_on`).
fn receiver_stream<T: Send + 'static>(
    receiver: mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
