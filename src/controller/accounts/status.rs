//! The ChatAccount controller: assumes each account's role (a fresh AssumeRole, so that a revoked or
//! untrusted role shows at once) every check period, and reports it in the account's status: the account
//! id and session it got, or the last error, as kstatus conditions. Objects in the account are woken by the
//! status change (their watch of accounts), so a role fixed outside the cluster brings them back by itself.

use super::Accounts;
use super::credentials::{AssumeFailure, Session};
use crate::controller::driver::FIELD_MANAGER;
use crate::controller::status::{Health, merge_conditions};
use crate::crd::{ChatAccount, ChatAccountStatus};
use crate::metrics::Metrics;
use futures_util::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Condition reasons of a ChatAccount.
pub mod reasons {
    /// The role was assumed.
    pub const ROLE_ASSUMED: &str = "RoleAssumed";
    /// STS refused the role (not trusted, revoked, wrong external ID, invalid duration).
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// STS did not answer (network, throttling): retried.
    pub const STS_UNAVAILABLE: &str = "StsUnavailable";
}

struct Checks {
    kube: kube::Client,
    accounts: Accounts,
    every: Duration,
    metrics: Metrics,
}

/// Runs the ChatAccount controller until `stopped` resolves: each account is checked when it changes and
/// every `every` after (`every` is also the retry period of a refused role).
pub async fn run(
    kube: kube::Client,
    accounts: Accounts,
    every: Duration,
    metrics: Metrics,
    stopped: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<ChatAccount> = Api::all(kube.clone());
    let checks = Arc::new(Checks {
        kube,
        accounts,
        every,
        metrics,
    });
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(stopped)
        .run(check, retry, checks)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ChatAccount controller");
            }
        })
        .await;
}

async fn check(account: Arc<ChatAccount>, checks: Arc<Checks>) -> Result<Action, kube::Error> {
    checks.accounts.ready().await;
    if !checks.accounts.checks(&account) {
        // Another operator's account; looked at again in case the watched namespace's labels change.
        return Ok(Action::requeue(checks.every));
    }
    let name = account.name_any();
    let sessions = checks.accounts.sessions_of(&account).await;
    let outcome = sessions.assume_now().await;
    checks.metrics.set_account_ready(&name, outcome.is_ok());
    let now = Time(jiff::Timestamp::now());
    let status = status_after(&account, &outcome, &now);
    if account.status.as_ref() != Some(&status) {
        let patch = serde_json::json!({
            "apiVersion": ChatAccount::api_version(&()),
            "kind": ChatAccount::kind(&()),
            "status": status,
        });
        let api: Api<ChatAccount> = Api::all(checks.kube.clone());
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    Ok(Action::requeue(checks.every))
}

fn retry(_account: Arc<ChatAccount>, error: &kube::Error, checks: Arc<Checks>) -> Action {
    tracing::warn!(%error, "cannot write a ChatAccount's status");
    Action::requeue(checks.every.min(Duration::from_secs(30)))
}

/// The status an account's check leads to. Times and the account id of the last success are kept across a
/// failure, so the status still says which account the role was in.
pub fn status_after(
    account: &ChatAccount,
    outcome: &Result<Session, AssumeFailure>,
    now: &Time,
) -> ChatAccountStatus {
    let previous = account.status.clone().unwrap_or_default();
    let role = &account.spec.role_arn;
    let mut status = ChatAccountStatus {
        observed_generation: account.metadata.generation,
        ..previous.clone()
    };
    let health = match outcome {
        Ok(session) => {
            status.account_id = session
                .account_id
                .clone()
                .or_else(|| account.spec.account_id().map(str::to_owned));
            status.assumed_role_arn = status.account_id.as_ref().map(|id| {
                format!(
                    "arn:aws:sts::{id}:assumed-role/{}/{}",
                    role.rsplit('/').next().unwrap_or_default(),
                    super::SESSION_NAME
                )
            });
            status.last_assumed = Some(rfc3339(SystemTime::now()));
            status.session_expiration = session.credentials.expiry().map(rfc3339);
            status.last_error = None;
            Health::ready(
                reasons::ROLE_ASSUMED,
                format!(
                    "assumed {role} in account {}",
                    status.account_id.as_deref().unwrap_or("(unknown)")
                ),
            )
        }
        Err(failure) => {
            status.last_error = Some(failure.to_string());
            if failure.refused {
                Health::stalled(
                    reasons::ACCESS_DENIED,
                    format!("STS refused to let the operator assume {role}: {failure}"),
                )
            } else {
                Health::progressing(
                    reasons::STS_UNAVAILABLE,
                    format!("cannot reach STS to assume {role}: {failure}; retrying"),
                )
            }
        }
    };
    status.conditions = merge_conditions(&previous.conditions, &health, now);
    // Only a change of what the check found is written: the time of the last success moves only when the
    // outcome changes, so an account at rest is not written every check.
    if outcome.is_ok() && previous.last_error.is_none() && previous.account_id == status.account_id
    {
        status.last_assumed = previous.last_assumed.or(status.last_assumed);
        status.session_expiration = previous.session_expiration.or(status.session_expiration);
    }
    status
}

fn rfc3339(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ChatAccountSpec;
    use aws_credential_types::Credentials;

    fn account() -> ChatAccount {
        let mut account = ChatAccount::new(
            "prod",
            ChatAccountSpec {
                role_arn: "arn:aws:iam::111122223333:role/ivschat".into(),
                ..ChatAccountSpec::default()
            },
        );
        account.metadata.generation = Some(2);
        account
    }

    fn session() -> Session {
        Session {
            credentials: Credentials::new("ASIA", "s", Some("t".into()), None, "test"),
            account_id: Some("111122223333".into()),
            obtained: SystemTime::now(),
        }
    }

    #[test]
    fn a_check_reports_the_account_or_why_the_role_was_refused() {
        let now = Time(jiff::Timestamp::now());
        let mut account = account();
        let ok = status_after(&account, &Ok(session()), &now);
        assert_eq!(ok.account_id.as_deref(), Some("111122223333"));
        assert_eq!(
            ok.assumed_role_arn.as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/ivschat/ivschat-operator")
        );
        assert_eq!(ok.observed_generation, Some(2));
        assert!(
            ok.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
        account.status = Some(ok.clone());
        // At rest: the same status, so nothing is written.
        let again = status_after(&account, &Ok(session()), &Time(jiff::Timestamp::now()));
        assert_eq!(again, ok);
        let refused = AssumeFailure {
            code: "AccessDenied".into(),
            message: "not authorized".into(),
            refused: true,
        };
        let denied = status_after(&account, &Err(refused), &now);
        assert_eq!(denied.account_id.as_deref(), Some("111122223333"), "kept");
        assert_eq!(
            denied.last_error.as_deref(),
            Some("AccessDenied: not authorized")
        );
        let stalled = denied
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .expect("stalled");
        assert_eq!(stalled.reason, reasons::ACCESS_DENIED);
        let unavailable = AssumeFailure {
            code: "StsUnavailable".into(),
            message: "connection refused".into(),
            refused: false,
        };
        let retrying = status_after(&account, &Err(unavailable), &now);
        assert!(
            retrying
                .conditions
                .iter()
                .any(|c| c.type_ == "Reconciling" && c.status == "True")
        );
    }
}
