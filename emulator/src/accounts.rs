//! The emulator's accounts and IAM roles, and who may assume which role: the configuration types
//! ([`AccountConfig`], [`RoleConfig`]), the accounts file (`--accounts-file`, YAML or JSON), the registry
//! ([`Accounts`]) with revoked roles, the principals that call ([`Principal`]), and role ARNs.
//!
//! # The model
//! - The static credentials (`--access-key-id` / `--secret-access-key`) are the IAM user
//!   `arn:aws:iam::<default account>:user/emulator` ([`STATIC_USER_NAME`]).
//! - An account with no roles listed (the default account unless it is configured with roles, and any
//!   configured account whose `roles` is empty or absent) is **open**: every role name exists in it, trusts
//!   the default account, needs no external id and has a maximum session duration of 1 h.
//! - An account with roles listed has exactly those roles.
//! - A role trusts the principals of its `trustedPrincipals` (default: the default account). An entry is an
//!   account id (every principal of that account: its IAM user, every session of its roles) or a principal
//!   ARN: `arn:aws:iam::<acct>:user/<name>`, `arn:aws:iam::<acct>:role/<name>` (every session of that
//!   role) or `arn:aws:sts::<acct>:assumed-role/<role>/<session>` (that one session).
//! - Any account not configured (other than the default one) has no roles: assuming one is AccessDenied.
//! - A revoked role (by ARN, see [`Accounts::revoke`]) can no longer be assumed, and its sessions are refused;
//!   restoring it undoes both.
//! - Adding an account that exists replaces its roles; sessions already issued for a role it no longer lists
//!   are refused from then on, like a revoked role's (in AWS a deleted role's sessions lose its permissions).
//!
//! # The accounts file
//! ```yaml
//! accounts:
//!   - id: "111122223333"            # quote ids in YAML: a bare number loses leading zeros
//!     roles:
//!       - name: ivs-operator
//!         externalId: ext-123        # optional: AssumeRole must then pass it
//!         trustedPrincipals:         # optional: default [the default account]
//!           - "123456789012"
//!           - arn:aws:iam::444455556666:role/ci
//!         maxSessionDuration: 2h     # optional: 1h-12h (a duration or seconds), default 1h
//!   - id: "444455556666"             # no roles: an open account
//! ```
//! JSON with the same members works too (the file is read as JSON when its name ends in `.json`, else as
//! YAML). Unknown members are errors, so a typo does not silently open a role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::config::parse_duration;

/// The user name of the static credentials in their ARN, `arn:aws:iam::<default account>:user/emulator`.
pub const STATIC_USER_NAME: &str = "emulator";
/// A role's maximum session duration unless configured (AWS's default for a role).
pub const DEFAULT_MAX_SESSION_DURATION: Duration = Duration::from_secs(3600);
/// The range AWS allows for a role's maximum session duration (1 to 12 hours).
pub const MAX_SESSION_DURATION_RANGE: std::ops::RangeInclusive<u64> = 3600..=43200;

/// One account and its roles (an empty list: every role name exists, see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// 12 digits.
    pub id: String,
    pub roles: Vec<RoleConfig>,
}

/// One IAM role of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfig {
    /// The role name (`[\w+=,.@-]`, 1-64 characters): the last part of its ARN.
    pub name: String,
    /// When set, AssumeRole must pass exactly this `ExternalId`.
    pub external_id: Option<String>,
    /// Account ids or principal ARNs allowed to assume the role; empty: the default account.
    pub trusted_principals: Vec<String>,
    /// The role's maximum session duration (1-12 h); `None`: 1 h.
    pub max_session_duration: Option<Duration>,
}

impl RoleConfig {
    /// A role trusting the default account, without external id, with the default maximum session.
    pub fn new(name: impl Into<String>) -> RoleConfig {
        RoleConfig {
            name: name.into(),
            external_id: None,
            trusted_principals: Vec::new(),
            max_session_duration: None,
        }
    }
}

// ---- validation (pure) --------------------------------------------------------------------------------------

/// `[\w+=,.@-]`: the characters of role names and session names (and, with `:` and `/`, external ids).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// True for a 12-digit AWS account id.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// True when `text` matches `[\w+=,.@-]*` (RoleSessionName, SourceIdentity, role names).
pub fn matches_name_pattern(text: &str) -> bool {
    text.chars().all(is_name_char)
}

/// True when `text` matches the ExternalId pattern `[\w+=,.@:\/-]*`.
pub fn matches_external_id_pattern(text: &str) -> bool {
    text.chars()
        .all(|c| is_name_char(c) || c == ':' || c == '/')
}

fn validate_principal(entry: &str) -> Result<(), String> {
    if is_account_id(entry)
        || Principal::parse_arn(entry).is_some()
        || RoleArn::parse(entry).is_some()
    {
        Ok(())
    } else {
        Err(format!(
            "trusted principal {entry:?} is neither a 12-digit account id nor an arn:aws:iam::<account>:user/<name>, \
             arn:aws:iam::<account>:role/<name> or arn:aws:sts::<account>:assumed-role/<role>/<session> ARN"
        ))
    }
}

impl AccountConfig {
    /// Checks the account id and every role (names unique, external ids and durations in AWS's ranges).
    pub fn validate(&self) -> Result<(), String> {
        if !is_account_id(&self.id) {
            return Err(format!("account id {:?} must be 12 digits", self.id));
        }
        let mut names = BTreeSet::new();
        for role in &self.roles {
            role.validate()
                .map_err(|error| format!("account {}: {error}", self.id))?;
            if !names.insert(role.name.as_str()) {
                return Err(format!(
                    "account {}: role {:?} is listed twice",
                    self.id, role.name
                ));
            }
        }
        Ok(())
    }
}

impl RoleConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=64).contains(&self.name.len()) || !matches_name_pattern(&self.name) {
            return Err(format!(
                "role name {:?} must be 1-64 characters of [A-Za-z0-9_+=,.@-]",
                self.name
            ));
        }
        if let Some(external_id) = &self.external_id
            && (!(2..=1224).contains(&external_id.len())
                || !matches_external_id_pattern(external_id))
        {
            return Err(format!(
                "role {}: external id {external_id:?} must be 2-1224 characters of [A-Za-z0-9_+=,.@:/-]",
                self.name
            ));
        }
        for entry in &self.trusted_principals {
            validate_principal(entry).map_err(|error| format!("role {}: {error}", self.name))?;
        }
        if let Some(duration) = self.max_session_duration
            && (duration.subsec_nanos() != 0
                || !MAX_SESSION_DURATION_RANGE.contains(&duration.as_secs()))
        {
            return Err(format!(
                "role {}: maxSessionDuration {duration:?} must be whole seconds between 1 h and 12 h",
                self.name
            ));
        }
        Ok(())
    }
}

// ---- the file ------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountsFile {
    accounts: Vec<AccountEntry>,
}

/// One account as the file and the admin API (`POST /_emulator/accounts`) spell it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountEntry {
    id: IdText,
    #[serde(default)]
    roles: Vec<RoleEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleEntry {
    name: String,
    external_id: Option<String>,
    #[serde(default)]
    trusted_principals: Vec<IdText>,
    max_session_duration: Option<DurationText>,
}

/// An id written as a string or (in YAML, unquoted) as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdText {
    Text(String),
    Number(u64),
}

impl IdText {
    fn into_string(self) -> String {
        match self {
            IdText::Text(text) => text,
            IdText::Number(number) => number.to_string(),
        }
    }
}

/// A duration written as text (`2h`, `3600s`) or as a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationText {
    Seconds(u64),
    Text(String),
}

impl AccountEntry {
    /// The validated account.
    pub fn into_config(self) -> Result<AccountConfig, String> {
        let mut roles = Vec::with_capacity(self.roles.len());
        for role in self.roles {
            let max_session_duration = match role.max_session_duration {
                None => None,
                Some(DurationText::Seconds(seconds)) => Some(Duration::from_secs(seconds)),
                Some(DurationText::Text(text)) => {
                    Some(parse_duration(&text).map_err(|error| {
                        format!("role {}: maxSessionDuration: {error}", role.name)
                    })?)
                }
            };
            roles.push(RoleConfig {
                name: role.name,
                external_id: role.external_id,
                trusted_principals: role
                    .trusted_principals
                    .into_iter()
                    .map(IdText::into_string)
                    .collect(),
                max_session_duration,
            });
        }
        let account = AccountConfig {
            id: self.id.into_string(),
            roles,
        };
        account.validate()?;
        Ok(account)
    }
}

/// Parses the accounts file's text (`json`: JSON, else YAML) into validated accounts.
pub fn parse_accounts(text: &str, json: bool) -> Result<Vec<AccountConfig>, String> {
    let file: AccountsFile = if json {
        serde_json::from_str(text).map_err(|error| error.to_string())?
    } else {
        serde_yaml::from_str(text).map_err(|error| error.to_string())?
    };
    let mut ids = BTreeSet::new();
    let mut accounts = Vec::with_capacity(file.accounts.len());
    for entry in file.accounts {
        let account = entry.into_config()?;
        if !ids.insert(account.id.clone()) {
            return Err(format!("account {} is listed twice", account.id));
        }
        accounts.push(account);
    }
    Ok(accounts)
}

/// Reads and parses `--accounts-file`.
pub fn load_accounts_file(path: &Path) -> anyhow::Result<Vec<AccountConfig>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the accounts file {}", path.display()))?;
    let json = path
        .extension()
        .is_some_and(|extension| extension == "json");
    parse_accounts(&text, json)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("the accounts file {} is not valid", path.display()))
}

// ---- ARNs and principals -------------------------------------------------------------------------------------

/// `arn:aws:iam::<account>:role/<path/>name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub account_id: String,
    /// The last path element: what the role is called.
    pub name: String,
    /// The ARN as given (with its path, if any).
    pub arn: String,
}

impl RoleArn {
    pub fn parse(text: &str) -> Option<RoleArn> {
        let rest = text.strip_prefix("arn:aws:iam::")?;
        let (account_id, resource) = rest.split_once(':')?;
        let path = resource.strip_prefix("role/")?;
        let name = path.rsplit('/').next()?;
        let valid = is_account_id(account_id)
            && (1..=64).contains(&name.len())
            && matches_name_pattern(name)
            && path
                .split('/')
                .all(|part| !part.is_empty() && matches_name_pattern(part));
        valid.then(|| RoleArn {
            account_id: account_id.to_owned(),
            name: name.to_owned(),
            arn: text.to_owned(),
        })
    }

    /// The role without its path: what revocation and trust compare.
    pub fn key(&self) -> (String, String) {
        (self.account_id.clone(), self.name.clone())
    }
}

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An IAM user: the static credentials are `emulator` of the default account.
    User { account_id: String, name: String },
    /// A session of an assumed role.
    AssumedRole {
        account_id: String,
        role_name: String,
        session_name: String,
    },
}

impl Principal {
    pub fn account_id(&self) -> &str {
        match self {
            Principal::User { account_id, .. } | Principal::AssumedRole { account_id, .. } => {
                account_id
            }
        }
    }

    /// `arn:aws:iam::<acct>:user/<name>` or `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    pub fn arn(&self) -> String {
        match self {
            Principal::User { account_id, name } => {
                format!("arn:aws:iam::{account_id}:user/{name}")
            }
            Principal::AssumedRole {
                account_id,
                role_name,
                session_name,
            } => format!("arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"),
        }
    }

    /// Parses a user or assumed-role ARN (the two principal forms a trust list may name besides roles).
    pub fn parse_arn(text: &str) -> Option<Principal> {
        if let Some(rest) = text.strip_prefix("arn:aws:iam::") {
            let (account_id, name) = rest.split_once(":user/")?;
            let valid = is_account_id(account_id) && !name.is_empty() && matches_name_pattern(name);
            return valid.then(|| Principal::User {
                account_id: account_id.to_owned(),
                name: name.to_owned(),
            });
        }
        let rest = text.strip_prefix("arn:aws:sts::")?;
        let (account_id, rest) = rest.split_once(":assumed-role/")?;
        let (role_name, session_name) = rest.split_once('/')?;
        let valid = is_account_id(account_id)
            && !role_name.is_empty()
            && matches_name_pattern(role_name)
            && !session_name.is_empty()
            && matches_name_pattern(session_name);
        valid.then(|| Principal::AssumedRole {
            account_id: account_id.to_owned(),
            role_name: role_name.to_owned(),
            session_name: session_name.to_owned(),
        })
    }

    /// Whether one `trustedPrincipals` entry covers this principal (see the module docs).
    pub fn is_covered_by(&self, entry: &str) -> bool {
        if entry == self.account_id() || entry == self.arn() {
            return true;
        }
        match (self, RoleArn::parse(entry)) {
            (
                Principal::AssumedRole {
                    account_id,
                    role_name,
                    ..
                },
                Some(role),
            ) => role.account_id == *account_id && role.name == *role_name,
            _ => false,
        }
    }
}

// ---- the registry --------------------------------------------------------------------------------------------

/// A role that exists, with its effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRole {
    pub external_id: Option<String>,
    pub trusted_principals: Vec<String>,
    pub max_session_duration: Duration,
}

/// Why a role cannot be assumed; every case is answered `AccessDenied` (the message does not tell which,
/// as AWS's does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    NoSuchRole,
    NotTrusted,
    ExternalIdMismatch,
    Revoked,
}

/// The accounts and roles the emulator knows, and the revoked roles.
#[derive(Debug, Clone)]
pub struct Accounts {
    default_account: String,
    configured: BTreeMap<String, AccountConfig>,
    revoked: BTreeSet<(String, String)>,
}

impl Accounts {
    /// The registry of `configured` accounts (validated) beside the default account.
    pub fn new(default_account: &str, configured: &[AccountConfig]) -> Result<Accounts, String> {
        let mut accounts = Accounts {
            default_account: default_account.to_owned(),
            configured: BTreeMap::new(),
            revoked: BTreeSet::new(),
        };
        for account in configured {
            if accounts.configured.contains_key(&account.id) {
                return Err(format!("account {} is configured twice", account.id));
            }
            accounts.put(account.clone())?;
        }
        Ok(accounts)
    }

    pub fn default_account(&self) -> &str {
        &self.default_account
    }

    /// Adds an account or replaces its roles (revocations stay as they are).
    pub fn put(&mut self, account: AccountConfig) -> Result<(), String> {
        account.validate()?;
        self.configured.insert(account.id.clone(), account);
        Ok(())
    }

    /// The configured accounts, by id.
    pub fn configured(&self) -> impl Iterator<Item = &AccountConfig> {
        self.configured.values()
    }

    /// Every account that can hold resources: the default one and the configured ones (what bounds the
    /// `account` label of the metrics).
    pub fn is_known(&self, account_id: &str) -> bool {
        account_id == self.default_account || self.configured.contains_key(account_id)
    }

    pub fn revoke(&mut self, role: &RoleArn) {
        self.revoked.insert(role.key());
    }

    pub fn restore(&mut self, role: &RoleArn) {
        self.revoked.remove(&role.key());
    }

    /// The revoked roles, as `arn:aws:iam::<account>:role/<name>`.
    pub fn revoked_roles(&self) -> Vec<String> {
        self.revoked
            .iter()
            .map(|(account_id, name)| format!("arn:aws:iam::{account_id}:role/{name}"))
            .collect()
    }

    pub fn is_revoked(&self, account_id: &str, role_name: &str) -> bool {
        self.revoked
            .contains(&(account_id.to_owned(), role_name.to_owned()))
    }

    /// Why a session of `role_name` in `account_id` may no longer act, if so: its role was revoked or no
    /// longer exists.
    pub fn session_denial(&self, account_id: &str, role_name: &str) -> Option<Denial> {
        if self.is_revoked(account_id, role_name) {
            return Some(Denial::Revoked);
        }
        let role = RoleArn {
            account_id: account_id.to_owned(),
            name: role_name.to_owned(),
            arn: format!("arn:aws:iam::{account_id}:role/{role_name}"),
        };
        self.role(&role).is_none().then_some(Denial::NoSuchRole)
    }

    /// The role an ARN names, if it exists.
    pub fn role(&self, role: &RoleArn) -> Option<ResolvedRole> {
        let open = || ResolvedRole {
            external_id: None,
            trusted_principals: vec![self.default_account.clone()],
            max_session_duration: DEFAULT_MAX_SESSION_DURATION,
        };
        match self.configured.get(&role.account_id) {
            None if role.account_id == self.default_account => Some(open()),
            None => None,
            Some(account) if account.roles.is_empty() => Some(open()),
            Some(account) => account
                .roles
                .iter()
                .find(|configured| configured.name == role.name)
                .map(|configured| ResolvedRole {
                    external_id: configured.external_id.clone(),
                    trusted_principals: if configured.trusted_principals.is_empty() {
                        vec![self.default_account.clone()]
                    } else {
                        configured.trusted_principals.clone()
                    },
                    max_session_duration: configured
                        .max_session_duration
                        .unwrap_or(DEFAULT_MAX_SESSION_DURATION),
                }),
        }
    }

    /// Whether `caller` may assume `role` with `external_id`: the role exists, trusts the caller, the
    /// external id is the role's (when it has one), and the role is not revoked.
    pub fn authorize(
        &self,
        caller: &Principal,
        role: &RoleArn,
        external_id: Option<&str>,
    ) -> Result<ResolvedRole, Denial> {
        let resolved = self.role(role).ok_or(Denial::NoSuchRole)?;
        if !resolved
            .trusted_principals
            .iter()
            .any(|entry| caller.is_covered_by(entry))
        {
            return Err(Denial::NotTrusted);
        }
        if let Some(required) = &resolved.external_id
            && external_id != Some(required.as_str())
        {
            return Err(Denial::ExternalIdMismatch);
        }
        if self.is_revoked(&role.account_id, &role.name) {
            return Err(Denial::Revoked);
        }
        Ok(resolved)
    }

    /// Whether a web identity may assume `role` (AssumeRoleWithWebIdentity): it exists and is not revoked.
    /// The token is not verified, so trust lists and external ids do not apply.
    pub fn authorize_web_identity(&self, role: &RoleArn) -> Result<ResolvedRole, Denial> {
        let resolved = self.role(role).ok_or(Denial::NoSuchRole)?;
        if self.is_revoked(&role.account_id, &role.name) {
            return Err(Denial::Revoked);
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "123456789012";

    fn user() -> Principal {
        Principal::User {
            account_id: DEFAULT.into(),
            name: STATIC_USER_NAME.into(),
        }
    }

    fn session(account: &str, role: &str) -> Principal {
        Principal::AssumedRole {
            account_id: account.into(),
            role_name: role.into(),
            session_name: "s".into(),
        }
    }

    fn role(arn: &str) -> RoleArn {
        RoleArn::parse(arn).expect("a role ARN")
    }

    #[test]
    fn the_file_parses_as_yaml_and_json() {
        let yaml = r#"
accounts:
  - id: "111122223333"
    roles:
      - name: ivs-operator
        externalId: ext-123
        trustedPrincipals: ["123456789012", "arn:aws:iam::444455556666:role/ci"]
        maxSessionDuration: 2h
      - name: plain
  - id: 444455556666
"#;
        let accounts = parse_accounts(yaml, false).expect("valid YAML");
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].roles[0].external_id.as_deref(), Some("ext-123"));
        assert_eq!(
            accounts[0].roles[0].max_session_duration,
            Some(Duration::from_secs(7200))
        );
        assert_eq!(accounts[1].id, "444455556666", "an unquoted id is read too");
        assert!(accounts[1].roles.is_empty());
        let json = r#"{"accounts": [{"id": "111122223333", "roles": [{"name": "r", "maxSessionDuration": 3600}]}]}"#;
        let accounts = parse_accounts(json, true).expect("valid JSON");
        assert_eq!(
            accounts[0].roles[0].max_session_duration,
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn invalid_files_say_what_is_wrong() {
        for (text, needle) in [
            ("accounts: [{id: '123'}]", "12 digits"),
            (
                "accounts: [{id: '111122223333', roles: [{name: 'a b'}]}]",
                "role name",
            ),
            (
                "accounts: [{id: '111122223333', roles: [{name: r, externalId: x}]}]",
                "external id",
            ),
            (
                "accounts: [{id: '111122223333', roles: [{name: r, maxSessionDuration: 60}]}]",
                "1 h and 12 h",
            ),
            (
                "accounts: [{id: '111122223333', roles: [{name: r, trustedPrincipals: [me]}]}]",
                "trusted principal",
            ),
            (
                "accounts: [{id: '111122223333', roles: [{name: r}, {name: r}]}]",
                "twice",
            ),
            (
                "accounts: [{id: '111122223333'}, {id: '111122223333'}]",
                "twice",
            ),
            (
                "accounts: [{id: '111122223333', role: []}]",
                "unknown field",
            ),
        ] {
            let error = parse_accounts(text, false).expect_err(text);
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn role_and_principal_arns_parse() {
        let parsed = role("arn:aws:iam::111122223333:role/team/ivs-operator");
        assert_eq!(
            (parsed.account_id.as_str(), parsed.name.as_str()),
            ("111122223333", "ivs-operator")
        );
        for bad in [
            "arn:aws:iam::1111:role/x",
            "arn:aws:iam::111122223333:user/x",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/a b",
            "arn:aws:sts::111122223333:role/x",
        ] {
            assert_eq!(RoleArn::parse(bad), None, "{bad}");
        }
        let assumed = session("111122223333", "r");
        assert_eq!(Principal::parse_arn(&assumed.arn()), Some(assumed.clone()));
        assert_eq!(Principal::parse_arn(&user().arn()), Some(user()));
        assert_eq!(user().arn(), "arn:aws:iam::123456789012:user/emulator");
    }

    #[test]
    fn open_accounts_trust_the_default_account_only() {
        let accounts = Accounts::new(DEFAULT, &[]).expect("registry");
        let any = role("arn:aws:iam::123456789012:role/anything");
        assert!(accounts.authorize(&user(), &any, None).is_ok());
        assert!(
            accounts
                .authorize(&session(DEFAULT, "x"), &any, None)
                .is_ok()
        );
        assert_eq!(
            accounts.authorize(&session("111122223333", "x"), &any, None),
            Err(Denial::NotTrusted)
        );
        assert_eq!(
            accounts.authorize(&user(), &role("arn:aws:iam::111122223333:role/r"), None),
            Err(Denial::NoSuchRole),
            "an unconfigured account has no roles"
        );
        assert_eq!(
            accounts.role(&any).map(|r| r.max_session_duration),
            Some(DEFAULT_MAX_SESSION_DURATION)
        );
    }

    #[test]
    fn listed_roles_are_the_only_ones_with_their_trust_and_external_id() {
        let mut accounts = Accounts::new(
            DEFAULT,
            &[AccountConfig {
                id: "111122223333".into(),
                roles: vec![
                    RoleConfig {
                        external_id: Some("ext-123".into()),
                        trusted_principals: vec![
                            "arn:aws:iam::444455556666:role/ci".into(),
                            "arn:aws:iam::123456789012:user/emulator".into(),
                        ],
                        ..RoleConfig::new("ivs-operator")
                    },
                    RoleConfig::new("plain"),
                ],
            }],
        )
        .expect("registry");
        let target = role("arn:aws:iam::111122223333:role/ivs-operator");
        assert!(
            accounts
                .authorize(&user(), &target, Some("ext-123"))
                .is_ok()
        );
        assert_eq!(
            accounts.authorize(&user(), &target, Some("ext-999")),
            Err(Denial::ExternalIdMismatch)
        );
        assert_eq!(
            accounts.authorize(&user(), &target, None),
            Err(Denial::ExternalIdMismatch)
        );
        assert!(
            accounts
                .authorize(&session("444455556666", "ci"), &target, Some("ext-123"))
                .is_ok()
        );
        assert_eq!(
            accounts.authorize(&session("444455556666", "other"), &target, Some("ext-123")),
            Err(Denial::NotTrusted)
        );
        assert_eq!(
            accounts.authorize(&user(), &role("arn:aws:iam::111122223333:role/nope"), None),
            Err(Denial::NoSuchRole)
        );
        // A role without an external id accepts calls that pass one anyway (AWS ignores it then).
        assert!(
            accounts
                .authorize(
                    &user(),
                    &role("arn:aws:iam::111122223333:role/plain"),
                    Some("x1")
                )
                .is_ok()
        );

        accounts.revoke(&role("arn:aws:iam::111122223333:role/path/ivs-operator"));
        assert_eq!(
            accounts.authorize(&user(), &target, Some("ext-123")),
            Err(Denial::Revoked),
            "revocation is by account and name, whatever the path"
        );
        assert!(accounts.is_revoked("111122223333", "ivs-operator"));
        assert_eq!(
            accounts.session_denial("111122223333", "ivs-operator"),
            Some(Denial::Revoked)
        );
        accounts.restore(&target);
        assert!(
            accounts
                .authorize(&user(), &target, Some("ext-123"))
                .is_ok()
        );
        assert_eq!(
            accounts.session_denial("111122223333", "ivs-operator"),
            None
        );
        accounts
            .put(AccountConfig {
                id: "111122223333".into(),
                roles: vec![RoleConfig::new("plain")],
            })
            .expect("replace the roles");
        assert_eq!(
            accounts.session_denial("111122223333", "ivs-operator"),
            Some(Denial::NoSuchRole),
            "a role the account no longer lists"
        );
        assert_eq!(accounts.session_denial("111122223333", "plain"), None);
        assert!(accounts.is_known("111122223333") && accounts.is_known(DEFAULT));
        assert!(!accounts.is_known("999999999999"));
    }
}
