//! One kind's (account, region) scopes: per scope, the latest complete listing ([`Inventory`]) and its
//! listing loop (started the first time a pass or a restart's object needs the scope; the operator's own
//! scope from the start). A pass works in one scope ([`Scope`]): its AWS client and its listing, so that
//! ownership lookups, confirmations and copies are only ever looked for where the object's resource lives.

use super::{Context, ManagedKind};
use crate::controller::accounts::{Placed, Refusal, ScopeKey, placement::reasons};
use crate::controller::aws::Aws;
use crate::controller::inventory::Inventory;
use crate::controller::status::StatusDocument;
use crate::crd::ManagedSpec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where one pass works: the scope, its client and its latest listing.
pub(super) struct Scope<S> {
    pub key: ScopeKey,
    pub aws: Aws,
    pub inventory: Arc<Inventory<S>>,
}

/// The inventories of a kind's scopes, and the channel by which a new scope reaches the listing side.
pub(super) struct Scopes<S> {
    inventories: Mutex<HashMap<ScopeKey, Arc<Inventory<S>>>>,
    started: mpsc::UnboundedSender<ScopeKey>,
    /// Taken once by the listing side ([`Scopes::take_started`]).
    receiver: Mutex<Option<mpsc::UnboundedReceiver<ScopeKey>>>,
}

impl<S> Default for Scopes<S> {
    fn default() -> Self {
        let (started, receiver) = mpsc::unbounded_channel();
        Scopes {
            inventories: Mutex::new(HashMap::new()),
            started,
            receiver: Mutex::new(Some(receiver)),
        }
    }
}

impl<S> Scopes<S> {
    fn inventories(&self) -> std::sync::MutexGuard<'_, HashMap<ScopeKey, Arc<Inventory<S>>>> {
        self.inventories
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The scope's inventory; a scope seen for the first time gets one, and its listing loop is started.
    pub(super) fn inventory(&self, key: &ScopeKey) -> Arc<Inventory<S>> {
        let mut inventories = self.inventories();
        if let Some(inventory) = inventories.get(key) {
            return inventory.clone();
        }
        let inventory = Arc::new(Inventory::default());
        inventories.insert(key.clone(), inventory.clone());
        // Without a listing side (it has stopped) nothing lists: the passes' lookups then wait, as they
        // would for a listing that fails.
        let _ = self.started.send(key.clone());
        inventory
    }

    /// The scopes started from now on (and those started before the first call), for the listing side.
    pub(super) fn take_started(&self) -> Option<mpsc::UnboundedReceiver<ScopeKey>> {
        self.receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// What placing `object` reads of it (its namespace, spec and recorded status).
pub(super) fn placed<'a, K: ManagedKind>(object: &'a K, status: &'a StatusDocument) -> Placed<'a> {
    let spec = object.spec();
    Placed {
        namespace: object.meta().namespace.as_deref().unwrap_or_default(),
        account_ref: spec.account_ref(),
        spec_region: spec.region(),
        status_region: status.region.as_deref(),
        status_arn: status.arn.as_deref(),
    }
}

impl<K: ManagedKind> Context<K> {
    /// The scope a pass of `object` works in, or why its namespace may not use the account it names (then
    /// no AWS call is made for it).
    pub(super) async fn scope(
        &self,
        object: &K,
        status: &StatusDocument,
    ) -> Result<Scope<K::Summary>, Refusal> {
        let key = self.accounts.place(&placed(object, status))?;
        if let Some(refusal) = key
            .account
            .as_deref()
            .and_then(|name| self.accounts.refused(name))
        {
            return Err(refusal);
        }
        let Some(aws) = self.accounts.aws(&key).await else {
            return Err(Refusal {
                reason: reasons::ACCOUNT_NOT_FOUND,
                message: format!("ChatAccount {} does not exist", key.account_label()),
            });
        };
        Ok(Scope {
            inventory: self.scopes.inventory(&key),
            key,
            aws,
        })
    }

    /// The scope whose listing can confirm `object` without a pass, without the permission check (a pass
    /// makes it): `None` when the object names a ChatAccount the store does not have, so its scope is not
    /// known.
    pub(super) fn listing_scope(&self, object: &K, status: &StatusDocument) -> Option<ScopeKey> {
        let placed = placed(object, status);
        if let Some(name) = placed.account_ref
            && self.accounts.account(name).is_none()
        {
            return None;
        }
        Some(self.accounts.scope_of(&placed))
    }
}
