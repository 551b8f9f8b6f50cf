//! The wiring every kind gets, written once: the watch of its objects, the wake-ups from objects it
//! depends on, the channel by which its listing loop hands over objects whose AWS resource drifted, its
//! [`Context`], and the run until stopped. A kind costs one [`Registration`] chain in
//! [`start_with`](super::start_with).

use super::Options;
use super::aws::Aws;
use super::driver::{Context, ManagedKind, error_policy, reconcile, run_inventory};
use futures_util::StreamExt;
use kube::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// One kind's controller, being wired.
pub(super) struct Registration<K: ManagedKind> {
    controller: Controller<K>,
    store: Store<K>,
}

impl<K: ManagedKind> Registration<K> {
    /// Watches the kind's objects in `namespace` (`None`: all namespaces).
    pub(super) fn watch(kube: &kube::Client, namespace: Option<&str>) -> Self {
        let controller = Controller::new(api(kube, namespace), watcher::Config::default());
        let store = controller.store();
        Registration { controller, store }
    }

    /// The objects of the kind as the watch sees them (what other kinds' wake-ups and contexts read).
    pub(super) fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Also reconciles the objects `wakes` names whenever an object of kind `R` changes (e.g. a referenced
    /// object became ready).
    pub(super) fn woken_by<R, I>(
        self,
        kube: &kube::Client,
        namespace: Option<&str>,
        wakes: impl Fn(R) -> I + Send + Sync + 'static,
    ) -> Self
    where
        R: ManagedKind,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        Registration {
            controller: self.controller.watches(
                api::<R>(kube, namespace),
                watcher::Config::default(),
                wakes,
            ),
            store: self.store,
        }
    }

    /// Reconciles with `context` (one `aws` serves every kind: the quotas are per account), together with
    /// the kind's listing loop, until the returned sender fires or is dropped; running reconciles finish.
    pub(super) fn run(
        self,
        kube: &kube::Client,
        aws: &Aws,
        options: &Options,
        context: K::Context,
    ) -> (
        impl Future<Output = ()> + Send + 'static,
        oneshot::Sender<()>,
    ) {
        // Objects whose AWS resource a listing shows changed (drift) are reconciled at once.
        let (stale, stale_refs) = mpsc::unbounded_channel();
        let context = Arc::new(Context::<K>::new(
            kube.clone(),
            aws.clone(),
            recorder(
                kube,
                &format!("ivschat-operator/{}", K::KIND.to_lowercase()),
            ),
            options.timing.clone(),
            context,
            options.metrics.clone(),
        ));
        let listing = run_inventory(context.clone(), self.store.clone(), stale);
        let (stop, stopped) = oneshot::channel::<()>();
        let controller = self
            .controller
            .reconcile_on(receiver_stream(stale_refs))
            .with_config(kube::runtime::Config::default().concurrency(options.concurrency))
            .graceful_shutdown_on(async move {
                let _ = stopped.await;
            })
            .run(reconcile, error_policy, context)
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "{} controller", K::KIND);
                }
            });
        let run = async move {
            // The listing loop never ends on its own: it stops with the controller.
            tokio::select! {
                () = controller => {}
                () = listing => {}
            }
        };
        (run, stop)
    }
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

/// The receiving end of a channel as a stream (for `Controller::reconcile_on`).
fn receiver_stream<T: Send + 'static>(
    receiver: mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}
