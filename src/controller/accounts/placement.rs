//! Where an object's AWS resource lives, and whether its namespace may put it there: pure rules over the
//! object's spec and status, its ChatAccount and its namespace's labels, written once for the passes, the
//! listings' reviews and the logging-configuration references.

use crate::crd::{ChatAccount, ChatAccountSpec, region_of_arn};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Condition reasons of an object that cannot be placed.
pub mod reasons {
    /// The object names a ChatAccount that does not exist.
    pub const ACCOUNT_NOT_FOUND: &str = "AccountNotFound";
    /// The object's ChatAccount does not select the object's namespace.
    pub const ACCOUNT_NOT_PERMITTED: &str = "AccountNotPermitted";
    /// STS refuses the operator the object's ChatAccount's role (revoked, untrusted): the object waits
    /// for the account's check to succeed again.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// A ChatRoom names a logging configuration in another account or region.
    pub const LOGGING_CONFIGURATION_ELSEWHERE: &str = "LoggingConfigurationInOtherAccountOrRegion";
}

/// One (account, region): what the rate budget, the listings, the ownership lookups and the AWS clients
/// are kept per. The account is the ChatAccount's name (`None`: the operator's own credentials).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeKey {
    pub account: Option<Arc<str>>,
    pub region: Arc<str>,
}

impl ScopeKey {
    pub fn new(account: Option<&str>, region: &str) -> Self {
        ScopeKey {
            account: account.map(Arc::from),
            region: Arc::from(region),
        }
    }

    /// The account's name as metrics and logs show it: the ChatAccount, or `default`.
    pub fn account_label(&self) -> &str {
        self.account.as_deref().unwrap_or(DEFAULT_ACCOUNT_LABEL)
    }
}

impl fmt::Display for ScopeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account_label(), self.region)
    }
}

/// The `account` label of the operator's own credentials.
pub const DEFAULT_ACCOUNT_LABEL: &str = "default";

/// Why an object cannot be placed: a condition reason and a message for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    /// Whether the refusal may lift by itself (a role refused now may be restored): a deletion then
    /// waits, where for an account that does not exist or permit the namespace it goes ahead without AWS.
    pub fn is_temporary(&self) -> bool {
        self.reason == reasons::ACCESS_DENIED
    }

    /// Whether the object waits rather than being stuck: a ChatAccount that does not exist (yet) is like a
    /// missing logging configuration, since GitOps applies an account and its objects together and their
    /// watch events arrive in any order (Progressing, woken by the account's watch); a namespace the
    /// account does not permit, or a refused role, needs someone to act (Stalled).
    pub fn is_waiting(&self) -> bool {
        self.reason == reasons::ACCOUNT_NOT_FOUND
    }
}

/// What placing an object reads of it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Placed<'a> {
    pub namespace: &'a str,
    pub account_ref: Option<&'a str>,
    pub spec_region: Option<&'a str>,
    /// The region the status recorded (the resource's, once the operator first acted for the object).
    pub status_region: Option<&'a str>,
    /// The ARN the status recorded: its region wins over everything but the status's region (objects of
    /// operator versions that recorded no region).
    pub status_arn: Option<&'a str>,
}

/// The region an object's resource lives in: the one recorded (status, else the recorded ARN's), else the
/// spec's, else the account's default, else the operator's. The recorded one wins, so that a changed
/// default (an account's or the operator's) never moves an existing resource.
pub fn region_of<'a>(
    placed: &Placed<'a>,
    account: Option<&'a ChatAccount>,
    home_region: &'a str,
) -> &'a str {
    named_region(placed, account.map(|account| &account.spec)).unwrap_or(home_region)
}

/// [`region_of`] up to the operator's own region: the region the object's status, spec or account names,
/// `None` when none does (the plugin then falls back on its own configuration's region).
pub fn named_region<'a>(
    placed: &Placed<'a>,
    account: Option<&'a ChatAccountSpec>,
) -> Option<&'a str> {
    placed
        .status_region
        .or_else(|| placed.status_arn.and_then(region_of_arn))
        .or(placed.spec_region)
        .or_else(|| account.and_then(|spec| spec.default_region.as_deref()))
}

/// Places an object: its scope, or why its namespace may not use the account it names. `account` is the
/// named ChatAccount as the store has it (`None`: missing); `namespace_labels` the namespace's labels
/// (`None`: the namespace is not known).
pub fn place(
    placed: &Placed<'_>,
    account: Option<&ChatAccount>,
    namespace_labels: Option<&BTreeMap<String, String>>,
    home_region: &str,
) -> Result<ScopeKey, Refusal> {
    let Some(name) = placed.account_ref else {
        return Ok(ScopeKey::new(None, region_of(placed, None, home_region)));
    };
    let Some(account) = account else {
        return Err(Refusal {
            reason: reasons::ACCOUNT_NOT_FOUND,
            message: format!(
                "ChatAccount {name} does not exist: no AWS call is made until it is created"
            ),
        });
    };
    let selected = account
        .spec
        .namespace_selector
        .as_ref()
        .is_some_and(|selector| {
            namespace_labels.is_some_and(|labels| selector_matches(selector, labels))
        });
    if !selected {
        return Err(Refusal {
            reason: reasons::ACCOUNT_NOT_PERMITTED,
            message: format!(
                "ChatAccount {name} does not permit namespace {}: its spec.namespaceSelector does not select it (no AWS call is made)",
                placed.namespace
            ),
        });
    }
    Ok(ScopeKey::new(
        Some(name),
        region_of(placed, Some(account), home_region),
    ))
}

/// Whether `selector` selects an object with `labels`, as the API server matches label selectors: every
/// `matchLabels` pair and every `matchExpressions` requirement must hold; an empty selector selects all.
/// A requirement with an unknown operator selects nothing (the API server would have refused it).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let requirements = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| requirement_holds(requirement, labels));
    pairs && requirements
}

fn requirement_holds(
    requirement: &LabelSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let value = labels.get(&requirement.key);
    let values = requirement.values.as_deref().unwrap_or_default();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|value| values.contains(value)),
        "NotIn" => value.is_none_or(|value| !values.contains(value)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ChatAccountSpec;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn account(selector: Option<LabelSelector>, default_region: Option<&str>) -> ChatAccount {
        ChatAccount::new(
            "prod",
            ChatAccountSpec {
                role_arn: "arn:aws:iam::111122223333:role/ivschat".into(),
                default_region: default_region.map(str::to_owned),
                namespace_selector: selector,
                ..ChatAccountSpec::default()
            },
        )
    }

    #[test]
    fn selectors_match_as_the_api_server_does() {
        let team_a = labels(&[("kubernetes.io/metadata.name", "team-a"), ("tier", "gold")]);
        let by_name = LabelSelector {
            match_labels: Some(labels(&[("kubernetes.io/metadata.name", "team-a")])),
            ..LabelSelector::default()
        };
        assert!(selector_matches(&by_name, &team_a));
        assert!(!selector_matches(
            &by_name,
            &labels(&[("kubernetes.io/metadata.name", "team-b")])
        ));
        assert!(
            selector_matches(&LabelSelector::default(), &BTreeMap::new()),
            "{{}} selects all"
        );
        let cases = [
            (requirement("tier", "In", &["gold", "silver"]), true),
            (requirement("tier", "In", &["bronze"]), false),
            (requirement("tier", "NotIn", &["bronze"]), true),
            (requirement("tier", "NotIn", &["gold"]), false),
            (requirement("absent", "NotIn", &["gold"]), true),
            (requirement("tier", "Exists", &[]), true),
            (requirement("absent", "Exists", &[]), false),
            (requirement("absent", "DoesNotExist", &[]), true),
            (requirement("tier", "DoesNotExist", &[]), false),
            (requirement("tier", "Gt", &["1"]), false),
        ];
        for (requirement, holds) in cases {
            let selector = LabelSelector {
                match_expressions: Some(vec![requirement.clone()]),
                ..LabelSelector::default()
            };
            assert_eq!(
                selector_matches(&selector, &team_a),
                holds,
                "{requirement:?}"
            );
        }
    }

    #[test]
    fn an_object_without_an_account_lives_in_the_operators_own_in_the_first_region_given() {
        let placed = Placed {
            namespace: "team-a",
            ..Placed::default()
        };
        assert_eq!(
            place(&placed, None, None, "us-west-2"),
            Ok(ScopeKey::new(None, "us-west-2"))
        );
        let named = Placed {
            spec_region: Some("eu-west-1"),
            ..placed
        };
        assert_eq!(
            place(&named, None, None, "us-west-2"),
            Ok(ScopeKey::new(None, "eu-west-1"))
        );
        // What was recorded wins: a changed default never moves a resource.
        let recorded = Placed {
            status_arn: Some("arn:aws:ivschat:ap-south-1:123456789012:room/abc"),
            ..placed
        };
        assert_eq!(region_of(&recorded, None, "us-west-2"), "ap-south-1");
        let both = Placed {
            status_region: Some("us-east-1"),
            ..recorded
        };
        assert_eq!(region_of(&both, None, "us-west-2"), "us-east-1");
    }

    #[test]
    fn an_account_is_used_only_by_the_namespaces_it_selects() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("kubernetes.io/metadata.name", "team-a")])),
            ..LabelSelector::default()
        };
        let prod = account(Some(selector), Some("eu-west-1"));
        let team_a = labels(&[("kubernetes.io/metadata.name", "team-a")]);
        let team_b = labels(&[("kubernetes.io/metadata.name", "team-b")]);
        let placed = |namespace| Placed {
            namespace,
            account_ref: Some("prod"),
            ..Placed::default()
        };
        assert_eq!(
            place(&placed("team-a"), Some(&prod), Some(&team_a), "us-west-2"),
            Ok(ScopeKey::new(Some("prod"), "eu-west-1")),
            "the account's default region"
        );
        let refused = place(&placed("team-b"), Some(&prod), Some(&team_b), "us-west-2")
            .expect_err("team-b is not selected");
        assert_eq!(refused.reason, reasons::ACCOUNT_NOT_PERMITTED);
        assert!(
            refused.message.contains("prod") && refused.message.contains("team-b"),
            "{}",
            refused.message
        );
        assert!(
            !refused.is_waiting(),
            "a namespace not permitted needs someone to act"
        );
        let missing = place(&placed("team-a"), None, Some(&team_a), "us-west-2")
            .expect_err("no such account");
        assert!(missing.is_waiting(), "an account may be on its way");
        assert_eq!(
            place(&placed("team-a"), Some(&prod), None, "us-west-2")
                .map_err(|refusal| refusal.reason),
            Err(reasons::ACCOUNT_NOT_PERMITTED),
            "an unknown namespace is not selected"
        );
        let unselective = account(None, None);
        assert_eq!(
            place(
                &placed("team-a"),
                Some(&unselective),
                Some(&team_a),
                "us-west-2"
            )
            .map_err(|refusal| refusal.reason),
            Err(reasons::ACCOUNT_NOT_PERMITTED),
            "no selector selects nothing"
        );
        assert_eq!(
            place(&placed("team-a"), None, Some(&team_a), "us-west-2")
                .map_err(|refusal| refusal.reason),
            Err(reasons::ACCOUNT_NOT_FOUND)
        );
    }
}
