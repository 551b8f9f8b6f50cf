//! The wiring every kind gets, written once: the one watch of its objects ([`Watch`]: one watcher and
//! one store per kind, whatever number of controllers read it), the wake-ups from objects it depends on,
//! the channel by which its listing loop hands over objects whose AWS resource drifted, its [`Context`],
//! and the run until stopped. A kind costs one [`Watch`] and one [`Registration`] chain in
//! [`start_with`](super::start_with).
//!
//! The store keeps only what reconciling reads: [`strip`] removes the field managers' bookkeeping,
//! the labels and every annotation but the pause annotation (kubectl's last-applied copy among them)
//! before an object enters it (together often larger than the rest of the object).

use super::Options;
use super::accounts::Accounts;
use super::driver::{
    Context, ManagedKind, error_policy, listed_object_can_wait, reconcile, run_inventory,
};
use super::events::EventRecorder;
use super::export::Exports;
use crate::crd::{ManagedSpec, PAUSED_ANNOTATION};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Changed objects queued for one controller before the watch waits for it: the controllers take them
/// at once (a trigger becomes a queued reference), so this only bounds copies in flight.
const FAN_OUT_BUFFER: usize = 256;

/// The one watch of a kind: a watcher whose objects, [`strip`]ped, go into the kind's one store and on
/// to every controller that reacts to the kind: its own controller (objects created or changed), and
/// the controllers it wakes (also objects deleted). [`Watch::run`] drives it.
pub(super) struct Watch<K: ManagedKind> {
    api: Api<K>,
    store: Store<K>,
    writer: reflector::store::Writer<K>,
    /// The kind's own controller: a deleted object needs no trigger (the finalizer's pass saw it go).
    applied: Vec<mpsc::Sender<Applied<K>>>,
    /// Controllers woken by the kind: a deletion may be what they wait for (a room letting go of a
    /// configuration that waits to be deleted).
    touched: Vec<mpsc::Sender<Arc<K>>>,
}

impl<K: ManagedKind> Watch<K> {
    /// The kind's objects in `namespace` (`None`: all namespaces).
    pub(super) fn new(kube: &kube::Client, namespace: Option<&str>) -> Self {
        let (store, writer) = reflector::store();
        Watch {
            api: api(kube, namespace),
            store,
            writer,
            applied: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// The objects of the kind as the watch sees them (what controllers, wake-ups and contexts read).
    pub(super) fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Objects created or changed, for the kind's own controller.
    fn applied(&mut self) -> impl Stream<Item = Applied<K>> + Send + 'static {
        subscribe(&mut self.applied)
    }

    /// Objects created, changed or deleted, for a controller the kind wakes.
    fn touched(&mut self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        subscribe(&mut self.touched)
    }

    /// Runs the watch: never ends on its own (a failed watch is retried with backoff), so it runs beside
    /// the controllers and stops with them. A controller that has stopped no longer takes objects, and is
    /// skipped.
    pub(super) fn run(self) -> impl Future<Output = ()> + Send + 'static {
        let Watch {
            api,
            writer,
            applied,
            touched,
            ..
        } = self;
        let config = watcher::Config::default();
        watch_and_fan_out(api, config, strip::<K>, writer, applied, touched)
    }
}

/// Watches `api`, keeps the [`strip`]ped objects in the store `writer` fills and hands each event on
/// ([`fan_out`]); a failed watch is retried with backoff, so this never ends on its own.
async fn watch_and_fan_out<K>(
    api: Api<K>,
    config: watcher::Config,
    strip: fn(&mut K),
    writer: reflector::store::Writer<K>,
    applied: Vec<mpsc::Sender<Applied<K>>>,
    touched: Vec<mpsc::Sender<Arc<K>>>,
) where
    K: Watched,
{
    let events = watcher(api, config)
        .default_backoff()
        .modify(strip)
        .reflect(writer);
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => fan_out(event, &applied, &touched).await,
            Err(error) => tracing::warn!(kind = %K::kind(&()), %error, "watch failed; retrying"),
        }
    }
}

/// A new subscriber's end of one of a watch's fan-outs.
fn subscribe<T: Send + 'static>(
    subscribers: &mut Vec<mpsc::Sender<T>>,
) -> impl Stream<Item = T> + Send + 'static {
    let (sender, receiver) = mpsc::channel(FAN_OUT_BUFFER);
    subscribers.push(sender);
    receiver_stream(receiver)
}

/// What a watch can watch: any kind the API server serves whose objects can be kept in a store.
pub(super) trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// The watch of a kind the controllers only read and are woken by (ChatAccounts, Namespaces): its store
/// and the objects created, changed or deleted, for every controller it wakes. `strip` removes what no
/// reader needs before an object enters the store.
pub(super) struct SideWatch<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    api: Api<K>,
    config: watcher::Config,
    store: Store<K>,
    writer: reflector::store::Writer<K>,
    touched: Vec<mpsc::Sender<Arc<K>>>,
    strip: fn(&mut K),
}

impl<K> SideWatch<K>
where
    K: Watched,
{
    pub(super) fn new(api: Api<K>, config: watcher::Config, strip: fn(&mut K)) -> Self {
        let (store, writer) = reflector::store();
        SideWatch {
            api,
            config,
            store,
            writer,
            touched: Vec::new(),
            strip,
        }
    }

    pub(super) fn store(&self) -> Store<K> {
        self.store.clone()
    }

    fn touched(&mut self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        subscribe(&mut self.touched)
    }

    /// Runs the watch; like [`Watch::run`], it never ends on its own.
    pub(super) fn run(self) -> impl Future<Output = ()> + Send + 'static {
        let SideWatch {
            api,
            config,
            writer,
            touched,
            strip,
            ..
        } = self;
        watch_and_fan_out(api, config, strip, writer, Vec::new(), touched)
    }
}

/// The objects of `store` that name the ChatAccount `account`.
pub(super) fn using_account<K: ManagedKind>(store: &Store<K>, account: &str) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|object| object.spec().account_ref() == Some(account))
        .map(|object| ObjectRef::from_obj(&**object))
        .collect()
}

/// The objects of `store` in `namespace` that name a ChatAccount (whose permission the namespace's labels
/// decide).
pub(super) fn using_an_account_in<K: ManagedKind>(
    store: &Store<K>,
    namespace: &str,
) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|object| {
            object.meta().namespace.as_deref() == Some(namespace)
                && object.spec().account_ref().is_some()
        })
        .map(|object| ObjectRef::from_obj(&**object))
        .collect()
}

/// Keeps of a Namespace only its name and labels (what a ChatAccount's selector reads).
pub(super) fn namespace_labels_only(namespace: &mut k8s_openapi::api::core::v1::Namespace) {
    namespace.metadata.managed_fields = None;
    namespace.metadata.annotations = None;
    namespace.spec = None;
    namespace.status = None;
}

/// Keeps of a ChatAccount what the controllers read (spec and status, not the field managers' records).
pub(super) fn account_without_bookkeeping(account: &mut crate::crd::ChatAccount) {
    account.metadata.managed_fields = None;
    account.metadata.annotations = None;
}

/// An object created or changed, as the kind's own controller receives it.
struct Applied<K> {
    object: Arc<K>,
    /// Handed over by the watch's list (at the start, or a relist after a failed watch) rather than as
    /// a change: such an object may wait for the drift listing instead of a pass
    /// ([`listed_object_can_wait`]).
    listed: bool,
}

/// Hands one watch event (already in the store) on: an object created or changed to every controller,
/// a deleted one only to the controllers the kind wakes. A controller that has stopped is skipped.
async fn fan_out<K>(
    event: watcher::Event<K>,
    applied: &[mpsc::Sender<Applied<K>>],
    touched: &[mpsc::Sender<Arc<K>>],
) {
    let (object, listed, deleted) = match event {
        watcher::Event::Apply(object) => (object, false, false),
        watcher::Event::InitApply(object) => (object, true, false),
        watcher::Event::Delete(object) => (object, false, true),
        watcher::Event::Init | watcher::Event::InitDone => return,
    };
    let object = Arc::new(object);
    // An error: that controller has stopped and dropped its end.
    if !deleted {
        for receiver in applied {
            let applied = Applied {
                object: object.clone(),
                listed,
            };
            let _ = receiver.send(applied).await;
        }
    }
    for receiver in touched {
        let _ = receiver.send(object.clone()).await;
    }
}

/// Removes from an object what reconciling never reads, before it enters the store: `managedFields`
/// (server-side apply's record of who set which field, one entry per field manager: the operator's
/// status and finalizer writes included), the labels, and every annotation but the operator's own
/// pause annotation: kubectl's last-applied copy of the whole manifest, GitOps tools' tracking labels
/// and annotations (each map costs a 544-byte node for even one entry, per object). Status writes are
/// server-side apply patches and the finalizer a merge patch: neither needs them.
pub(super) fn strip<K: kube::Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    meta.labels = None;
    meta.annotations = meta
        .annotations
        .take()
        .and_then(|mut annotations| annotations.remove_entry(PAUSED_ANNOTATION))
        .map(|pause| BTreeMap::from([pause]));
}

/// One kind's controller, being wired. The controller itself is made in [`Registration::run`], where the
/// context its trigger filter reads ([`listed_object_can_wait`]) exists.
pub(super) struct Registration<K: ManagedKind> {
    applied: BoxStream<'static, Applied<K>>,
    store: Store<K>,
    /// The wake-ups from other kinds, added to the controller once it is made.
    woken_by: Vec<AddWakeUps<K>>,
}

/// Adds one kind's wake-ups to a controller ([`Registration::woken_by`]).
type AddWakeUps<K> = Box<dyn FnOnce(Controller<K>) -> Controller<K> + Send>;

impl<K: ManagedKind> Registration<K> {
    /// Reconciles the objects of `watch` as they are created or changed.
    pub(super) fn of(watch: &mut Watch<K>) -> Self {
        Registration {
            applied: watch.applied().boxed(),
            store: watch.store(),
            woken_by: Vec::new(),
        }
    }

    /// Also reconciles the objects `wakes` names whenever an object of `watch` (another kind, `R`)
    /// changes (e.g. a referenced object became ready) or goes away.
    pub(super) fn woken_by<R, I>(
        self,
        watch: &mut Watch<R>,
        wakes: impl Fn(Arc<R>) -> I + Send + Sync + 'static,
    ) -> Self
    where
        R: ManagedKind,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        let touched = watch.touched();
        self.woken_by_stream(touched, wakes)
    }

    /// [`woken_by`](Registration::woken_by) for a kind the controllers only read (ChatAccounts, Namespaces).
    pub(super) fn woken_by_side<R, I>(
        self,
        watch: &mut SideWatch<R>,
        wakes: impl Fn(Arc<R>) -> I + Send + Sync + 'static,
    ) -> Self
    where
        R: Watched,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        let touched = watch.touched();
        self.woken_by_stream(touched, wakes)
    }

    fn woken_by_stream<R, I>(
        self,
        touched: impl Stream<Item = Arc<R>> + Send + 'static,
        wakes: impl Fn(Arc<R>) -> I + Send + Sync + 'static,
    ) -> Self
    where
        R: Watched,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        let mut registration = self;
        registration
            .woken_by
            .push(Box::new(move |controller: Controller<K>| {
                controller.watches_shared_stream(touched, wakes)
            }));
        registration
    }

    /// Reconciles with `context` (one `accounts` serves every kind: the quotas are per account and
    /// region, not per kind), together with the kind's listing loops, until the returned sender fires or
    /// is dropped; running reconciles finish.
    pub(super) fn run(
        self,
        kube: &kube::Client,
        accounts: &Accounts,
        options: &Options,
        context: K::Context,
        exports: &Exports,
    ) -> (
        impl Future<Output = ()> + Send + 'static,
        oneshot::Sender<()>,
    ) {
        // Objects whose AWS resource a listing shows changed (drift) are reconciled at once.
        let (stale, stale_refs) = mpsc::unbounded_channel();
        let context = Arc::new(Context::<K>::new(
            kube.clone(),
            accounts.clone(),
            recorder(
                kube,
                &format!("ivschat-operator/{}", K::KIND.to_lowercase()),
            ),
            options.timing.clone(),
            context,
            options.metrics.clone(),
            exports.clone(),
        ));
        let listing = run_inventory(context.clone(), self.store.clone(), stale);
        let waits = context.clone();
        let triggers = self.applied.filter_map(move |applied| {
            let can_wait = applied.listed && listed_object_can_wait(&*applied.object, &waits);
            std::future::ready((!can_wait).then_some(applied.object))
        });
        let controller = self.woken_by.into_iter().fold(
            Controller::for_shared_stream(triggers, self.store.clone()),
            |controller, wake| wake(controller),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let controller = controller
            .reconcile_on(unbounded_receiver_stream(stale_refs))
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

fn recorder(client: &kube::Client, controller: &str) -> EventRecorder {
    EventRecorder::new(
        client.clone(),
        controller.to_owned(),
        std::env::var("POD_NAME").ok(),
    )
}

/// The receiving end of a channel as a stream (for `Controller::reconcile_on`).
fn unbounded_receiver_stream<T: Send + 'static>(
    receiver: mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + Send {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

/// The receiving end of a bounded channel as a stream (a controller's trigger).
fn receiver_stream<T: Send + 'static>(receiver: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ChatRoom, ChatRoomSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    /// The annotation `kubectl apply` (client-side) keeps its copy of the applied manifest in.
    const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

    #[test]
    fn the_store_keeps_no_managed_fields_no_labels_and_no_annotation_but_the_pause() {
        let mut room = ChatRoom::new("room", ChatRoomSpec::default());
        room.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..ManagedFieldsEntry::default()
        }]);
        room.metadata.labels = Some(BTreeMap::from([(
            "kustomize.toolkit.fluxcd.io/name".to_owned(),
            "chat".to_owned(),
        )]));
        room.metadata.annotations = Some(BTreeMap::from([
            (
                LAST_APPLIED_ANNOTATION.to_owned(),
                "{\"spec\":{}}".to_owned(),
            ),
            (
                "argocd.argoproj.io/tracking-id".to_owned(),
                "chat:ivschat.dev/ChatRoom:default/room".to_owned(),
            ),
            (PAUSED_ANNOTATION.to_owned(), "true".to_owned()),
        ]));
        strip(&mut room);
        assert_eq!(room.metadata.managed_fields, None);
        assert_eq!(room.metadata.labels, None);
        assert_eq!(
            room.metadata.annotations,
            Some(BTreeMap::from([(
                PAUSED_ANNOTATION.to_owned(),
                "true".to_owned()
            )]))
        );
        assert!(
            crate::crd::is_paused(&room.metadata),
            "the pause still reads"
        );
        // Nothing left: no empty map either.
        let mut applied = ChatRoom::new("applied", ChatRoomSpec::default());
        applied.metadata.annotations = Some(BTreeMap::from([(
            LAST_APPLIED_ANNOTATION.to_owned(),
            "{}".to_owned(),
        )]));
        strip(&mut applied);
        assert_eq!(applied.metadata.annotations, None);
        assert_eq!(applied.spec, ChatRoomSpec::default());
    }

    #[tokio::test]
    async fn changes_reach_every_controller_and_deletions_only_those_the_kind_wakes() {
        let (own, own_events) = mpsc::channel(4);
        let (woken, woken_events) = mpsc::channel(4);
        let (stopped, stopped_events) = mpsc::channel(4);
        drop(stopped_events);
        let (applied, touched) = (vec![own], vec![stopped, woken]);
        let room = |name: &str| ChatRoom::new(name, ChatRoomSpec::default());
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(room("listed")),
            watcher::Event::InitDone,
            watcher::Event::Apply(room("changed")),
            watcher::Event::Delete(room("deleted")),
        ] {
            fan_out(event, &applied, &touched).await;
        }
        drop((applied, touched));
        let names = |mut events: mpsc::Receiver<Arc<ChatRoom>>| {
            let mut names = Vec::new();
            while let Ok(room) = events.try_recv() {
                names.push(room.metadata.name.clone().unwrap_or_default());
            }
            names
        };
        let mut own_events = own_events;
        let mut own = Vec::new();
        while let Ok(applied) = own_events.try_recv() {
            own.push((
                applied.object.metadata.name.clone().unwrap_or_default(),
                applied.listed,
            ));
        }
        assert_eq!(
            own,
            [("listed".to_owned(), true), ("changed".to_owned(), false)],
            "the kind's own controller is told which objects came from the watch's list"
        );
        assert_eq!(names(woken_events), ["listed", "changed", "deleted"]);
    }
}
