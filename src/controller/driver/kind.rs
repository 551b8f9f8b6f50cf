//! The per-kind trait [`ManagedKind`] and the types it speaks in: what a kind tells the driver about its
//! spec ([`Policies`], [`Pending`]) and about its AWS resource ([`Observed`], [`Deletion`], listings).

use crate::controller::aws::Aws;
use crate::controller::aws_error::AwsError;
use crate::controller::export::MessagingEndpoint;
use crate::controller::inventory::{Listed, Page};
use crate::controller::status::StatusDocument;
use crate::crd::{ManagedSpec, Policies};
use kube::Resource;
use kube::core::NamespaceResourceScope;
use kube::core::object::HasSpec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

/// An AWS resource as read (or as returned by a write): identity, times, state, normalised fields and tags.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed<F> {
    pub arn: String,
    pub id: Option<String>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
    /// The AWS lifecycle state, for kinds that have one.
    pub state: Option<String>,
    pub fields: F,
    pub tags: BTreeMap<String, String>,
}

/// The desired state cannot be computed yet (a reference is missing or not ready), or deletion must wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub reason: &'static str,
    pub message: String,
    /// Only a spec change can help (the object is Stalled rather than waiting).
    pub stalled: bool,
}

/// Progress of a delete call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The AWS resource no longer exists.
    Gone,
    /// AWS is deleting it (state given): check again soon.
    InProgress(String),
    /// The last deletion failed in AWS (state given): report it and try again after the long backoff.
    Failed(String),
}

/// One kind of AWS-backed custom resource.
pub trait ManagedKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + HasSpec<Spec: ManagedSpec>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The kind's name, for metrics labels (static, so label sets stay bounded).
    const KIND: &'static str;
    /// The operation of the account-wide listing ([`list_page`](ManagedKind::list_page)), whose rate
    /// budget decides how often a complete listing fits ([`ResyncSchedule`](super::schedule)).
    const LIST_OPERATION: &'static str;
    /// What the listing lists, in words ("rooms"), for log lines.
    const LISTED_RESOURCES: &'static str;

    /// The normalised AWS fields the spec controls (defaults applied), compared with [`changed_fields`](crate::controller::plan::changed_fields).
    type Fields: Serialize + Clone + PartialEq + Debug + Send + Sync + 'static;
    /// What a listing reports of a resource besides identity, times, state and tags. Hashed: a snapshot
    /// keeps only its [`digest`](crate::controller::digest).
    type Summary: Clone + Debug + Hash + Send + Sync + 'static;
    /// What the kind needs besides the object to compute its desired state (e.g. a store of referenced
    /// objects).
    type Context: Send + Sync + 'static;

    /// What the spec says about the AWS resource's life (the part every managed spec shares).
    fn policies(&self) -> Policies {
        self.spec().policies()
    }

    /// Maps the spec to the desired AWS fields.
    fn desired(&self, context: &Self::Context) -> Result<Self::Fields, Pending>;

    /// Resolves once the context can be trusted (e.g. a store of referenced objects has its first full
    /// list), so that a restart never mistakes an empty store for missing references.
    fn context_ready(_context: &Self::Context) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Whether deleting the AWS resource must wait (e.g. rooms still use a logging configuration).
    fn blocks_deletion(&self, _context: &Self::Context) -> Option<Pending> {
        None
    }

    /// Kind-specific status fields mirrored from the observed fields.
    fn mirror_fields(_fields: &Self::Fields, _status: &mut StatusDocument) {}

    /// What `spec.export` writes, by default key, from a status: `None` until it has an ARN.
    fn exported_values(
        status: &StatusDocument,
        messaging_endpoint: &MessagingEndpoint,
    ) -> Option<BTreeMap<&'static str, String>>;

    /// Reads the resource; `None` when AWS does not know it.
    fn observe(
        aws: &Aws,
        arn: &str,
    ) -> impl Future<Output = Result<Option<Observed<Self::Fields>>, AwsError>> + Send;

    fn create(
        aws: &Aws,
        desired: &Self::Fields,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Observed<Self::Fields>, AwsError>> + Send;

    /// Sets every field to `desired` (tags are the driver's business).
    fn update(
        aws: &Aws,
        arn: &str,
        desired: &Self::Fields,
    ) -> impl Future<Output = Result<Observed<Self::Fields>, AwsError>> + Send;

    /// Deletes the resource; NotFound is [`Deletion::Gone`]. `retry_failed`: a failed deletion was already
    /// reported and waited for, so try again rather than report it once more.
    fn delete(
        aws: &Aws,
        arn: &str,
        retry_failed: bool,
    ) -> impl Future<Output = Result<Deletion, AwsError>> + Send;

    /// One page of the account-wide listing, and the token of the next page.
    fn list_page(
        aws: &Aws,
        next_token: Option<String>,
    ) -> impl Future<Output = Result<Page<Self::Summary>, AwsError>> + Send;

    /// The name by which [`search_named`](ManagedKind::search_named) narrows the lookup for a resource
    /// created from `desired` (rooms: their AWS name, if any); `None` when the kind's listing has no such
    /// filter, so the lookup uses a complete account-wide
    /// [`Snapshot`](crate::controller::inventory::Snapshot). A create records the name it sent, and the
    /// lookup searches by that name, not by the spec's current one, which may have changed since.
    fn search_name(_desired: &Self::Fields) -> Option<String> {
        None
    }

    /// A fresh listing of the resources named `name` (one that [`search_name`](ManagedKind::search_name)
    /// gave), every page. Only called for names `search_name` gives, so a kind without a filter keeps the
    /// default, which lists nothing.
    fn search_named(
        _aws: &Aws,
        _name: &str,
    ) -> impl Future<Output = Result<Vec<Listed<Self::Summary>>, AwsError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// What a listing shows of a resource that has exactly the `desired` fields: a listed summary equal to
    /// it agrees with the spec, as far as a summary tells.
    fn listed_summary(desired: &Self::Fields) -> Self::Summary;
}

/// Resolves once `store` has had its first full list (or its writer is gone).
///
/// Each attempt is a fresh `wait_until_ready` bounded by a short timeout: a waiter registered before the
/// store became ready was observed never to be woken, while a new one sees the ready state at once.
pub async fn store_ready<K>(store: &kube::runtime::reflector::Store<K>)
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    while tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready())
        .await
        .is_err()
    {}
}
