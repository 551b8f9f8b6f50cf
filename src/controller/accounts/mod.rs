//! AWS accounts and regions: which credentials, endpoint and rate budget each (account, region) uses, and
//! which objects may use which account.
//!
//! Everything that is per account in AWS is per [`ScopeKey`] here: the AWS client with its rate budget at
//! the IVS Chat quotas (each region of each account has its own quotas), and, in the driver, the listings
//! and ownership lookups. [`Accounts`] makes a scope's client the first time it is needed and keeps it
//! until its ChatAccount's spec changes: the operator's own credentials ([`Accounts::new`]'s home access,
//! in other regions the same credentials), or a ChatAccount's role sessions ([`credentials`]) for every
//! region of that account.
//!
//! Files: [`placement`] (the pure rules: an object's scope, or why its namespace may not use the account
//! it names), [`credentials`] (role sessions, cached and renewed), [`status`] (the ChatAccount controller,
//! which assumes each account's role and reports it).

pub mod credentials;
pub mod placement;
pub mod status;

pub use placement::{DEFAULT_ACCOUNT_LABEL, Placed, Refusal, ScopeKey, place, region_of};

use super::aws::Aws;
use super::digest::digest;
use super::rate_limit::RateLimiter;
use crate::crd::{ChatAccount, ChatAccountSpec};
use crate::metrics::Metrics;
use credentials::AccountCredentials;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The session name the operator's AssumeRole calls carry (visible in the target account's CloudTrail).
pub const SESSION_NAME: &str = "ivschat-operator";

/// The scopes' clients and the accounts' sessions, shared by every controller (see the module docs).
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    /// The operator's own access, in its own region.
    home: Aws,
    home_region: String,
    /// The one namespace the operator watches, if it watches one: it then checks only the accounts that
    /// select it (another operator checks the others).
    watched: Option<String>,
    accounts: Store<ChatAccount>,
    namespaces: Store<Namespace>,
    /// Per scope: the digest of the ChatAccount spec it was made from (0: the operator's own) and the client.
    clients: Mutex<HashMap<ScopeKey, (u64, Aws)>>,
    /// Per ChatAccount: the digest of the spec the sessions are for, and the sessions.
    sessions: Mutex<HashMap<String, (u64, Arc<AccountCredentials>)>>,
    /// The rate budgets of the scopes other than the home one, per AWS account id (the one in the role
    /// ARN; empty for the operator's own, whose id is not known), region and rate overrides: ChatAccounts
    /// that name one AWS account share its budget, as they share its quotas in AWS.
    limiters: Mutex<HashMap<(String, String, u64), Arc<RateLimiter>>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("home_region", &self.inner.home_region)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// `home` is the operator's own access (its client's region is the operator's region).
    pub fn new(
        home: Aws,
        watched: Option<String>,
        accounts: Store<ChatAccount>,
        namespaces: Store<Namespace>,
        metrics: Metrics,
    ) -> Self {
        let home_region = home.region().unwrap_or("us-east-1").to_owned();
        let mut clients = HashMap::new();
        clients.insert(ScopeKey::new(None, &home_region), (0, home.clone()));
        Accounts {
            inner: Arc::new(Inner {
                home,
                home_region,
                watched,
                accounts,
                namespaces,
                clients: Mutex::new(clients),
                sessions: Mutex::new(HashMap::new()),
                limiters: Mutex::new(HashMap::new()),
                metrics,
            }),
        }
    }

    /// Accounts over an SDK client that never sends (its region us-west-2) and empty stores: for unit tests
    /// of what reads accounts without calling AWS.
    #[cfg(test)]
    pub(crate) fn offline() -> Self {
        let config = aws_sdk_ivschat::Config::builder()
            .behavior_version(aws_sdk_ivschat::config::BehaviorVersion::latest())
            .region(aws_sdk_ivschat::config::Region::new("us-west-2"))
            .build();
        let home = Aws::unlimited(aws_sdk_ivschat::Client::from_conf(config));
        let (accounts, _) = kube::runtime::reflector::store();
        let (namespaces, _) = kube::runtime::reflector::store();
        Accounts::new(home, None, accounts, namespaces, Metrics::new())
    }

    /// The operator's own region: where objects without a region and without an account's default live.
    pub fn home_region(&self) -> &str {
        &self.inner.home_region
    }

    /// The scope of the operator's own credentials in its own region (listed from the start).
    pub fn home_scope(&self) -> ScopeKey {
        ScopeKey::new(None, &self.inner.home_region)
    }

    /// The operator's budget of `operation` in calls per second (every scope starts from it).
    pub fn budget(&self, operation: &str) -> Option<f64> {
        self.inner.home.budget(operation)
    }

    /// The ChatAccount named `name`, as the store has it.
    pub fn account(&self, name: &str) -> Option<Arc<ChatAccount>> {
        self.inner.accounts.get(&ObjectRef::new(name))
    }

    /// Resolves once the stores of accounts and namespaces have had their first list, so that a restart
    /// never takes an account or namespace not listed yet for a missing one.
    pub async fn ready(&self) {
        super::driver::store_ready(&self.inner.accounts).await;
        super::driver::store_ready(&self.inner.namespaces).await;
    }

    /// Whether this operator answers for `account`'s checks: watching every namespace, for every account;
    /// watching one, for the accounts that select it.
    pub fn checks(&self, account: &ChatAccount) -> bool {
        let Some(watched) = &self.inner.watched else {
            return true;
        };
        let namespace = self.inner.namespaces.get(&ObjectRef::new(watched));
        let labels = namespace
            .as_ref()
            .and_then(|ns| ns.metadata.labels.as_ref());
        account
            .spec
            .namespace_selector
            .as_ref()
            .is_some_and(|selector| {
                labels.is_some_and(|labels| placement::selector_matches(selector, labels))
            })
    }

    /// The scope of an object, or why it has none ([`place`] over the stores).
    pub fn place(&self, placed: &Placed<'_>) -> Result<ScopeKey, Refusal> {
        let account = placed.account_ref.and_then(|name| self.account(name));
        let namespace = self.inner.namespaces.get(&ObjectRef::new(placed.namespace));
        place(
            placed,
            account.as_deref(),
            namespace
                .as_ref()
                .and_then(|ns| ns.metadata.labels.as_ref()),
            &self.inner.home_region,
        )
    }

    /// The scope's key without the permission check: where a listing's review looks for the object.
    pub fn scope_of(&self, placed: &Placed<'_>) -> ScopeKey {
        let account = placed.account_ref.and_then(|name| self.account(name));
        ScopeKey::new(
            placed.account_ref,
            region_of(placed, account.as_deref(), &self.inner.home_region),
        )
    }

    /// Why STS refuses the operator the role of the ChatAccount `name`, while it does (the last
    /// AssumeRole, by the account's check or a renewal, was refused).
    pub fn refused(&self, name: &str) -> Option<Refusal> {
        let sessions = self.sessions().get(name)?.1.clone();
        let failure = sessions.failure().filter(|failure| failure.refused)?;
        Some(Refusal {
            reason: placement::reasons::ACCESS_DENIED,
            message: format!(
                "STS refuses the operator the role of ChatAccount {name} ({failure}): no AWS call is made until the account's check succeeds again"
            ),
        })
    }

    /// The client of a scope, made the first time (and again after its ChatAccount's spec changed).
    /// `None` when the scope's ChatAccount does not exist.
    pub async fn aws(&self, scope: &ScopeKey) -> Option<Aws> {
        let (spec_digest, account) = match &scope.account {
            None => (0, None),
            Some(name) => {
                let account = self.account(name)?;
                let spec_digest = digest(&spec_key(&account.spec));
                (spec_digest, Some(account))
            }
        };
        if let Some((made_from, aws)) = self.clients().get(scope)
            && *made_from == spec_digest
        {
            return Some(aws.clone());
        }
        let aws = match &account {
            None => self.inner.home.in_region(
                &scope.region,
                None,
                self.limiter(None, &scope.region),
                scope,
            ),
            Some(account) => {
                let sessions = self.sessions_of(account).await;
                self.inner.home.in_region(
                    &scope.region,
                    Some((sessions, account.spec.endpoint_url.as_deref())),
                    self.limiter(Some(&account.spec), &scope.region),
                    scope,
                )
            }
        };
        self.clients()
            .insert(scope.clone(), (spec_digest, aws.clone()));
        Some(aws)
    }

    /// The role sessions of `account`, made the first time (and again after its spec changed).
    pub async fn sessions_of(&self, account: &ChatAccount) -> Arc<AccountCredentials> {
        let name = kube::ResourceExt::name_any(account);
        let spec_digest = {
            let key = spec_key(&account.spec);
            digest(&key)
        };
        if let Some((made_from, sessions)) = self.sessions().get(&name)
            && *made_from == spec_digest
        {
            return sessions.clone();
        }
        let spec = &account.spec;
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(spec.role_arn.clone())
            .session_name(SESSION_NAME)
            .region(aws_config::Region::new(
                spec.default_region
                    .clone()
                    .unwrap_or_else(|| self.inner.home_region.clone()),
            ))
            .configure(&self.inner.home.sdk_config(spec.endpoint_url.as_deref()));
        if let Some(external_id) = &spec.external_id {
            builder = builder.external_id(external_id.clone());
        }
        if let Some(seconds) = spec.session_duration_seconds {
            builder =
                builder.session_length(Duration::from_secs(u64::try_from(seconds).unwrap_or(3600)));
        }
        let provider = match self.inner.home.credentials_provider() {
            Some(base) => builder.build_from_provider(base).await,
            None => builder.build().await,
        };
        let sessions = Arc::new(AccountCredentials::new(
            &name,
            provider,
            self.inner.metrics.clone(),
        ));
        self.sessions()
            .insert(name, (spec_digest, sessions.clone()));
        sessions
    }

    /// The rate budget of a scope other than the home one: the operator's quotas (none without a budget),
    /// with the account's overrides, shared with every scope of the same AWS account, region and overrides.
    fn limiter(&self, spec: Option<&ChatAccountSpec>, region: &str) -> Option<Arc<RateLimiter>> {
        let mut quotas = self.inner.home.quotas()?;
        let overrides = spec.map(|spec| &spec.api_rate_limits);
        for (operation, tps) in overrides.into_iter().flatten() {
            if let Some(slot) = quotas
                .iter_mut()
                .find(|(name, _)| **name == operation.as_str())
            {
                *slot.1 = *tps;
            }
        }
        let account_id = spec
            .and_then(ChatAccountSpec::account_id)
            .unwrap_or_default();
        let overrides_digest = digest(
            &overrides
                .into_iter()
                .flatten()
                .map(|(operation, tps)| (operation, tps.to_bits()))
                .collect::<Vec<_>>(),
        );
        let key = (account_id.to_owned(), region.to_owned(), overrides_digest);
        let mut limiters = self
            .inner
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(
            limiters
                .entry(key)
                .or_insert_with(|| Arc::new(RateLimiter::new(quotas)))
                .clone(),
        )
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<ScopeKey, (u64, Aws)>> {
        self.inner
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Arc<AccountCredentials>)>> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What of a ChatAccount's spec its clients and sessions are made from (not its namespace selector, which
/// changes nothing about them).
fn spec_key(spec: &ChatAccountSpec) -> impl std::hash::Hash + '_ {
    (
        &spec.role_arn,
        &spec.external_id,
        spec.session_duration_seconds,
        &spec.default_region,
        &spec.endpoint_url,
        spec.api_rate_limits
            .iter()
            .map(|(operation, tps)| (operation, tps.to_bits()))
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(role_arn: &str, overrides: &[(&str, f64)]) -> ChatAccountSpec {
        ChatAccountSpec {
            role_arn: role_arn.to_owned(),
            api_rate_limits: overrides
                .iter()
                .map(|(operation, tps)| ((*operation).to_owned(), *tps))
                .collect::<BTreeMap<_, _>>(),
            ..ChatAccountSpec::default()
        }
    }

    #[test]
    fn chat_accounts_of_one_aws_account_share_its_budget_in_each_region() {
        let config = aws_sdk_ivschat::Config::builder()
            .behavior_version(aws_sdk_ivschat::config::BehaviorVersion::latest())
            .region(aws_sdk_ivschat::config::Region::new("us-west-2"))
            .build();
        let home = Aws::limited(
            aws_sdk_ivschat::Client::from_conf(config),
            RateLimiter::new(super::super::rate_limit::quotas_with(&[])),
        );
        let (accounts, _) = kube::runtime::reflector::store();
        let (namespaces, _) = kube::runtime::reflector::store();
        let accounts = Accounts::new(home, None, accounts, namespaces, Metrics::new());
        let one = spec("arn:aws:iam::111122223333:role/a", &[]);
        let same_account = spec("arn:aws:iam::111122223333:role/b", &[]);
        let other_account = spec("arn:aws:iam::444455556666:role/a", &[]);
        let slower = spec("arn:aws:iam::111122223333:role/a", &[("CreateRoom", 2.0)]);
        let budget = |spec: &ChatAccountSpec, region| {
            accounts.limiter(Some(spec), region).expect("a budget")
        };
        let shared = budget(&one, "us-west-2");
        assert!(Arc::ptr_eq(&shared, &budget(&same_account, "us-west-2")));
        assert!(
            !Arc::ptr_eq(&shared, &budget(&one, "eu-west-1")),
            "each region has its own quotas"
        );
        assert!(!Arc::ptr_eq(&shared, &budget(&other_account, "us-west-2")));
        let slow = budget(&slower, "us-west-2");
        assert!(!Arc::ptr_eq(&shared, &slow));
        assert_eq!(slow.tps("CreateRoom"), Some(2.0));
        assert_eq!(shared.tps("CreateRoom"), Some(5.0));
    }
}
