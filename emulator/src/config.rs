//! Emulator configuration: the `ivschat-operator emulator` command-line flags ([`EmulatorArgs`]), the library
//! configuration ([`EmulatorConfig`]) and the subset that can be changed while the emulator runs
//! ([`RuntimeSettings`]); the regions IVS Chat is offered in ([`IVSCHAT_REGIONS`]) and which of them an
//! emulator serves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::AccountConfig;
use crate::review::{LambdaEndpoint, LambdaSettings, parse_function_endpoint};
pub use ivschat_api::duration::parse_duration;
use ivschat_api::limits::{CHAT_TOKEN_VALIDITY, MESSAGE_REVIEW_TIMEOUT};

/// Default listen address: loopback only, because the admin endpoints under `/_emulator/` are unauthenticated.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4510";
/// The AWS default quota of logging configurations per account and region (adjustable in AWS, so a flag here).
pub const DEFAULT_LOGGING_CONFIGURATION_QUOTA: u32 = 10;
/// How long after its 500 a late-committed write is carried out, unless configured.
pub const DEFAULT_LATE_COMMIT_DELAY: Duration = Duration::from_secs(2);
/// The regions where AWS offers IVS Chat: what an emulator serves unless `--regions` restricts it (one list
/// with the operator's, in the API facts crate).
pub use ivschat_api::regions::IVSCHAT_REGIONS;

/// Flags of `ivschat-operator emulator`. Every flag can also come from an `IVSCHAT_EMULATOR_*` variable.
#[derive(clap::Args, Debug, Clone)]
pub struct EmulatorArgs {
    /// Address to listen on (HOST:PORT). Loopback by default: the `/_emulator/*` admin endpoints are unsigned.
    #[arg(long, env = "IVSCHAT_EMULATOR_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The default AWS region (what `Emulator::sdk_config_builder` uses). Requests are served in the region of
    /// their SigV4 scope, which must be one of --regions.
    #[arg(long, env = "IVSCHAT_EMULATOR_REGION", default_value = "us-west-2")]
    pub region: String,
    /// The regions served: `all` (the seven IVS Chat regions, plus --region if it is another) or a
    /// comma-separated list, which must include --region. A request scoped to another region is refused.
    #[arg(long, env = "IVSCHAT_EMULATOR_REGIONS", default_value = "all", value_parser = parse_regions)]
    pub regions: Regions,
    /// The default AWS account: the static credentials' (user `emulator`), and the account of every
    /// request they sign.
    #[arg(
        long,
        env = "IVSCHAT_EMULATOR_ACCOUNT_ID",
        default_value = "123456789012"
    )]
    pub account_id: String,
    /// More accounts and their IAM roles (YAML, or JSON when the name ends in .json): `accounts: [{id,
    /// roles: [{name, externalId?, trustedPrincipals?, maxSessionDuration?}]}]`. See the README.
    #[arg(long, env = "IVSCHAT_EMULATOR_ACCOUNTS_FILE")]
    pub accounts_file: Option<PathBuf>,
    /// Caps the lifetime of every session STS issues from now on (e.g. `60s`, for credential-refresh tests;
    /// below AWS's 900 s minimum is allowed). Unlimited (the requested duration) when absent.
    #[arg(long, env = "IVSCHAT_EMULATOR_CREDENTIAL_LIFETIME", value_parser = parse_positive_duration)]
    pub credential_lifetime: Option<Duration>,
    /// The access key id of the static credentials (the default account's user). STS-issued session keys
    /// (`ASIA…`) are accepted beside it.
    #[arg(long, env = "IVSCHAT_EMULATOR_ACCESS_KEY_ID", default_value = "test")]
    pub access_key_id: String,
    /// The secret key SigV4 signatures are verified with.
    #[arg(
        long,
        env = "IVSCHAT_EMULATOR_SECRET_ACCESS_KEY",
        default_value = "test",
        hide_env_values = true
    )]
    pub secret_access_key: String,
    /// How long logging configurations stay CREATING / UPDATING / DELETING (e.g. `2s`, `500ms`).
    #[arg(long, env = "IVSCHAT_EMULATOR_LOGGING_TRANSITION_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub logging_transition_delay: Duration,
    /// Logging-configuration transitions that end in *_FAILED: a comma-separated subset of create,update,delete.
    #[arg(long, env = "IVSCHAT_EMULATOR_FAIL_TRANSITIONS", default_value = "", value_parser = parse_transition_failures)]
    pub fail_transitions: TransitionFailures,
    /// Enforce the per-operation TPS quotas of IVS Chat, per account and region (429 ThrottlingException past
    /// them).
    #[arg(long, env = "IVSCHAT_EMULATOR_ENFORCE_QUOTAS")]
    pub enforce_quotas: bool,
    /// Maximum number of rooms per account and region (402 ServiceQuotaExceededException past it).
    /// Unlimited when absent.
    #[arg(long, env = "IVSCHAT_EMULATOR_ROOM_QUOTA")]
    pub room_quota: Option<u32>,
    /// Maximum number of logging configurations per account and region (402 ServiceQuotaExceededException
    /// past it).
    #[arg(long, env = "IVSCHAT_EMULATOR_LOGGING_CONFIGURATION_QUOTA", default_value_t = DEFAULT_LOGGING_CONFIGURATION_QUOTA)]
    pub logging_configuration_quota: u32,
    /// Fraction (0..=1) of API requests answered with an injected 500 or 503.
    #[arg(long, env = "IVSCHAT_EMULATOR_FAULT_RATE", default_value_t = 0.0, value_parser = parse_fault_rate)]
    pub fault_rate: f64,
    /// Fraction (0..=1) of successful control-plane writes (Create/Update/Delete of rooms and logging
    /// configurations, TagResource, UntagResource) whose change is kept but whose response is replaced by a 500.
    #[arg(long, env = "IVSCHAT_EMULATOR_LOST_RESPONSE_RATE", default_value_t = 0.0, value_parser = parse_lost_response_rate)]
    pub lost_response_rate: f64,
    /// Fraction (0..=1) of control-plane writes (the same operations as lost responses) answered at once
    /// with a 500 and carried out only after --late-commit-delay: AWS completing a request after the
    /// client saw it fail.
    #[arg(long, env = "IVSCHAT_EMULATOR_LATE_COMMIT_RATE", default_value_t = 0.0, value_parser = parse_late_commit_rate)]
    pub late_commit_rate: f64,
    /// How long after its 500 a late-committed write is carried out (e.g. `2s`).
    #[arg(long, env = "IVSCHAT_EMULATOR_LATE_COMMIT_DELAY", default_value = "2s", value_parser = parse_duration)]
    pub late_commit_delay: Duration,
    /// Extra latency added to every API request (e.g. `50ms`).
    #[arg(long, env = "IVSCHAT_EMULATOR_EXTRA_LATENCY", default_value = "0s", value_parser = parse_duration)]
    pub extra_latency: Duration,
    /// Keep rooms, logging configurations and tags in this JSON file across restarts (written atomically).
    #[arg(long, env = "IVSCHAT_EMULATOR_STATE_FILE")]
    pub state_file: Option<PathBuf>,
    /// Where rooms' message review handlers run: a local AWS Lambda Invoke API (SAM's `sam local
    /// start-lambda`, LocalStack, `cargo lambda watch`: their base URL, e.g. http://127.0.0.1:3001; the Lambda
    /// Runtime Interface Emulator: its invocation URL,
    /// http://127.0.0.1:8080/2015-03-31/functions/function/invocations). Without it (and without a
    /// --lambda-function-endpoint for the handler) a handler cannot run and the room's fallbackResult decides.
    #[arg(long, env = "IVSCHAT_EMULATOR_LAMBDA_ENDPOINT", value_name = "URL", value_parser = LambdaEndpoint::parse)]
    pub lambda_endpoint: Option<LambdaEndpoint>,
    /// FUNCTION=URL: the endpoint of one handler, before --lambda-endpoint (repeatable; comma-separated in
    /// the variable). FUNCTION is the handler's ARN or its part after `function:` (`moderate`,
    /// `moderate:live`).
    #[arg(
        long = "lambda-function-endpoint",
        env = "IVSCHAT_EMULATOR_LAMBDA_FUNCTION_ENDPOINTS",
        value_delimiter = ',',
        value_name = "FUNCTION=URL",
        value_parser = parse_function_endpoint
    )]
    pub lambda_function_endpoints: Vec<(String, LambdaEndpoint)>,
    /// How long a message review handler is waited for before the room's fallbackResult decides. AWS: 200 ms,
    /// not adjustable; longer here for slow machines or a handler's cold start (e.g. `2s`).
    #[arg(long, env = "IVSCHAT_EMULATOR_REVIEW_TIMEOUT", default_value = "200ms", value_parser = parse_positive_duration)]
    pub review_timeout: Duration,
}

/// The regions an emulator serves: `None` = all of [`IVSCHAT_REGIONS`] (the `--regions all` default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Regions(pub Option<Vec<String>>);

/// `all` or `us-west-2,eu-west-1` (blanks around commas allowed, duplicates dropped).
pub fn parse_regions(text: &str) -> Result<Regions, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Ok(Regions(None));
    }
    let mut regions: Vec<String> = Vec::new();
    for region in text.split(',').map(str::trim) {
        if !is_region_name(region) {
            return Err(format!(
                "region {region:?} must match [a-z0-9-]+ (or give `all`)"
            ));
        }
        if !regions.iter().any(|known| known == region) {
            regions.push(region.to_owned());
        }
    }
    Ok(Regions(Some(regions)))
}

/// True for a region name that can appear in ARNs (`[a-z0-9-]+`).
pub fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The regions served, given the default region and `--regions`: the list as given, or every IVS Chat
/// region plus the default one when it is not among them (so an emulator that pretends to be elsewhere keeps
/// working as before).
pub fn enabled_regions(default_region: &str, regions: Option<&[String]>) -> Vec<String> {
    match regions {
        Some(regions) => regions.to_vec(),
        None => {
            let mut all: Vec<String> = IVSCHAT_REGIONS.iter().map(|r| r.to_string()).collect();
            if !all.iter().any(|region| region == default_region) {
                all.push(default_region.to_owned());
            }
            all
        }
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    ivschat_api::duration::parse_positive_duration(text)
}

/// Which logging-configuration transitions end in a `*_FAILED` state instead of succeeding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionFailures {
    pub create: bool,
    pub update: bool,
    pub delete: bool,
}

impl TransitionFailures {
    pub const NONE: TransitionFailures = TransitionFailures {
        create: false,
        update: false,
        delete: false,
    };
    pub const ALL: TransitionFailures = TransitionFailures {
        create: true,
        update: true,
        delete: true,
    };

    /// The names of the enabled failures, in the order create, update, delete (the admin API's list form).
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("create", self.create),
            ("update", self.update),
            ("delete", self.delete),
        ]
        .into_iter()
        .filter_map(|(name, enabled)| enabled.then_some(name))
        .collect()
    }

    /// Builds the set from names such as `["create", "delete"]`.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut failures = TransitionFailures::NONE;
        for name in names {
            match name.trim().to_ascii_lowercase().as_str() {
                "" => {}
                "create" => failures.create = true,
                "update" => failures.update = true,
                "delete" => failures.delete = true,
                "all" => failures = TransitionFailures::ALL,
                other => {
                    return Err(format!(
                        "unknown transition {other:?}: expected create, update, delete or all"
                    ));
                }
            }
        }
        Ok(failures)
    }
}

/// Library configuration of an [`super::Emulator`]. `Default` gives the same values as the CLI defaults.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The default region (of [`super::Emulator::sdk_config_builder`]).
    pub region: String,
    /// The regions served; `None`: every IVS Chat region (see [`enabled_regions`]).
    pub regions: Option<Vec<String>>,
    /// The default account: the static credentials' own.
    pub account_id: String,
    /// More accounts and their roles (see [`crate::accounts`]); the default account may be among them.
    pub accounts: Vec<AccountConfig>,
    /// An accounts file read at start, its accounts added to `accounts`.
    pub accounts_file: Option<PathBuf>,
    /// See [`RuntimeSettings::credential_lifetime`].
    pub credential_lifetime: Option<Duration>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub logging_transition_delay: Duration,
    pub fail_transitions: TransitionFailures,
    pub enforce_quotas: bool,
    pub room_quota: Option<u32>,
    pub logging_configuration_quota: u32,
    pub fault_rate: f64,
    /// See [`RuntimeSettings::lost_response_rate`].
    pub lost_response_rate: f64,
    /// See [`RuntimeSettings::late_commit_rate`].
    pub late_commit_rate: f64,
    pub late_commit_delay: Duration,
    pub extra_latency: Duration,
    pub state_file: Option<PathBuf>,
    /// How long a chat token can open a messaging connection (AWS: one minute). Tests shorten it.
    pub chat_token_validity: Duration,
    /// How long one minute of `sessionDurationInMinutes` lasts (AWS: 60 s), so tests can see sessions expire
    /// without waiting a real minute; `sessionExpirationTime` reflects the scaled duration.
    pub chat_session_minute: Duration,
    /// See [`RuntimeSettings::lambda`].
    pub lambda: LambdaSettings,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            region: "us-west-2".to_string(),
            regions: None,
            account_id: "123456789012".to_string(),
            accounts: Vec::new(),
            accounts_file: None,
            credential_lifetime: None,
            access_key_id: "test".to_string(),
            secret_access_key: "test".to_string(),
            logging_transition_delay: Duration::ZERO,
            fail_transitions: TransitionFailures::NONE,
            enforce_quotas: false,
            room_quota: None,
            logging_configuration_quota: DEFAULT_LOGGING_CONFIGURATION_QUOTA,
            fault_rate: 0.0,
            lost_response_rate: 0.0,
            late_commit_rate: 0.0,
            late_commit_delay: DEFAULT_LATE_COMMIT_DELAY,
            extra_latency: Duration::ZERO,
            state_file: None,
            chat_token_validity: CHAT_TOKEN_VALIDITY,
            chat_session_minute: Duration::from_secs(60),
            lambda: LambdaSettings {
                endpoint: None,
                function_endpoints: BTreeMap::new(),
                review_timeout: MESSAGE_REVIEW_TIMEOUT,
            },
        }
    }
}

impl EmulatorConfig {
    /// The settings that can later be changed at run time.
    pub fn runtime_settings(&self) -> RuntimeSettings {
        RuntimeSettings {
            logging_transition_delay: self.logging_transition_delay,
            fail_transitions: self.fail_transitions,
            enforce_quotas: self.enforce_quotas,
            room_quota: self.room_quota,
            logging_configuration_quota: self.logging_configuration_quota,
            fault_rate: self.fault_rate,
            lost_response_rate: self.lost_response_rate,
            late_commit_rate: self.late_commit_rate,
            late_commit_delay: self.late_commit_delay,
            extra_latency: self.extra_latency,
            credential_lifetime: self.credential_lifetime,
            lambda: self.lambda.clone(),
        }
    }

    /// The regions served (see [`enabled_regions`]).
    pub fn enabled_regions(&self) -> Vec<String> {
        enabled_regions(&self.region, self.regions.as_deref())
    }

    /// Rejects values the emulator cannot work with (an account id or region that would make invalid ARNs).
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.account_id.is_empty() || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            anyhow::bail!(
                "account id {:?} must be digits only (it appears in ARNs)",
                self.account_id
            );
        }
        if !is_region_name(&self.region) {
            anyhow::bail!(
                "region {:?} must match [a-z0-9-]+ (it appears in ARNs)",
                self.region
            );
        }
        if let Some(regions) = &self.regions {
            if let Some(bad) = regions.iter().find(|region| !is_region_name(region)) {
                anyhow::bail!("region {bad:?} must match [a-z0-9-]+ (it appears in ARNs)");
            }
            if !regions.contains(&self.region) {
                anyhow::bail!(
                    "the default region {:?} must be one of the regions served ({})",
                    self.region,
                    regions.join(", ")
                );
            }
        }
        for account in &self.accounts {
            account.validate().map_err(anyhow::Error::msg)?;
        }
        if self.access_key_id.is_empty() {
            anyhow::bail!("the access key id must not be empty");
        }
        if self.chat_token_validity.is_zero() || self.chat_session_minute.is_zero() {
            anyhow::bail!("the chat token validity and the chat session minute must be positive");
        }
        self.runtime_settings()
            .validate()
            .map_err(anyhow::Error::msg)
    }
}

impl From<EmulatorArgs> for EmulatorConfig {
    fn from(args: EmulatorArgs) -> Self {
        EmulatorConfig {
            region: args.region,
            regions: args.regions.0,
            account_id: args.account_id,
            accounts_file: args.accounts_file,
            credential_lifetime: args.credential_lifetime,
            access_key_id: args.access_key_id,
            secret_access_key: args.secret_access_key,
            logging_transition_delay: args.logging_transition_delay,
            fail_transitions: args.fail_transitions,
            enforce_quotas: args.enforce_quotas,
            room_quota: args.room_quota,
            logging_configuration_quota: args.logging_configuration_quota,
            fault_rate: args.fault_rate,
            late_commit_rate: args.late_commit_rate,
            late_commit_delay: args.late_commit_delay,
            lost_response_rate: args.lost_response_rate,
            extra_latency: args.extra_latency,
            state_file: args.state_file,
            lambda: LambdaSettings {
                endpoint: args.lambda_endpoint,
                function_endpoints: args.lambda_function_endpoints.into_iter().collect(),
                review_timeout: args.review_timeout,
            },
            ..EmulatorConfig::default()
        }
    }
}

/// Behaviour switches that tests flip while the emulator runs (Rust API and `/_emulator/settings`).
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSettings {
    /// Duration of CREATING / UPDATING / DELETING for transitions started from now on.
    pub logging_transition_delay: Duration,
    /// Transitions started from now on that end in `*_FAILED`.
    pub fail_transitions: TransitionFailures,
    pub enforce_quotas: bool,
    pub room_quota: Option<u32>,
    pub logging_configuration_quota: u32,
    /// Share of requests answered with an injected 500/503 before the operation runs (nothing changes).
    pub fault_rate: f64,
    /// Share of successful control-plane writes whose change is kept but whose response is replaced by a 500
    /// InternalServerException: the AWS hazard of a request that succeeded server-side while the client saw a
    /// failure (timeout, reset, 5xx after commit). Data-plane operations and reads are never affected.
    pub lost_response_rate: f64,
    /// Share of control-plane writes answered at once with a 500 InternalServerException and carried out
    /// only `late_commit_delay` later: the AWS hazard of a request that completes after the client gave up
    /// on it, so that a read right after the failure shows nothing and a later one shows the change.
    pub late_commit_rate: f64,
    pub late_commit_delay: Duration,
    pub extra_latency: Duration,
    /// Caps the lifetime of sessions STS issues from now on (`Expiration` says the capped time); a test knob,
    /// so below AWS's 900 s minimum is allowed. `None`: the requested `DurationSeconds` (default 1 h).
    pub credential_lifetime: Option<Duration>,
    /// Where message review handlers are invoked and how long they are waited for (see [`crate::review`]);
    /// a change applies to the next message.
    pub lambda: LambdaSettings,
}

impl RuntimeSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self
            .credential_lifetime
            .is_some_and(|lifetime| lifetime < Duration::from_secs(1))
        {
            return Err("the credential lifetime must be at least 1 s".to_owned());
        }
        if self.lambda.review_timeout.is_zero() {
            return Err("the review timeout must be positive".to_owned());
        }
        check_rate("fault rate", self.fault_rate)?;
        check_rate("lost response rate", self.lost_response_rate)?;
        check_rate("late commit rate", self.late_commit_rate)
    }
}

fn parse_transition_failures(text: &str) -> Result<TransitionFailures, String> {
    TransitionFailures::from_names(text.split(','))
}

/// A probability: `what` names the setting in the error (NaN is refused too, since it is in no range).
fn check_rate(what: &str, rate: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(format!("{what} {rate} must be between 0 and 1"))
    }
}

fn parse_rate(what: &str, text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|err| format!("invalid {what} {text:?}: {err}"))?;
    check_rate(what, rate)?;
    Ok(rate)
}

fn parse_fault_rate(text: &str) -> Result<f64, String> {
    parse_rate("fault rate", text)
}

fn parse_lost_response_rate(text: &str) -> Result<f64, String> {
    parse_rate("lost response rate", text)
}

fn parse_late_commit_rate(text: &str) -> Result<f64, String> {
    parse_rate("late commit rate", text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn transition_failures_parse_from_a_list() {
        assert_eq!(
            TransitionFailures::from_names("".split(',')),
            Ok(TransitionFailures::NONE)
        );
        let parsed = TransitionFailures::from_names("create, delete".split(','));
        assert_eq!(
            parsed,
            Ok(TransitionFailures {
                create: true,
                update: false,
                delete: true
            })
        );
        assert_eq!(
            TransitionFailures::from_names(["all"]),
            Ok(TransitionFailures::ALL)
        );
        assert!(TransitionFailures::from_names(["explode"]).is_err());
        assert_eq!(
            TransitionFailures::ALL.names(),
            vec!["create", "update", "delete"]
        );
    }

    #[test]
    fn cli_defaults_match_the_library_defaults() {
        let cli = Cli::try_parse_from(["emulator"]).expect("defaults must parse");
        assert_eq!(cli.args.listen.to_string(), DEFAULT_LISTEN);
        let from_cli = EmulatorConfig::from(cli.args);
        let default = EmulatorConfig::default();
        assert_eq!(from_cli.region, default.region);
        assert_eq!(from_cli.account_id, default.account_id);
        assert_eq!(from_cli.access_key_id, default.access_key_id);
        assert_eq!(from_cli.secret_access_key, default.secret_access_key);
        assert_eq!(from_cli.runtime_settings(), default.runtime_settings());
        assert_eq!(from_cli.state_file, None);
        assert_eq!(from_cli.regions, None);
        assert_eq!(from_cli.enabled_regions().len(), IVSCHAT_REGIONS.len());
        assert_eq!(from_cli.accounts_file, None);
        assert_eq!(from_cli.credential_lifetime, None);
    }

    #[test]
    fn regions_parse_and_must_hold_the_default_region() {
        assert_eq!(parse_regions("all"), Ok(Regions(None)));
        assert_eq!(
            parse_regions(" us-west-2, eu-west-1,us-west-2"),
            Ok(Regions(Some(vec!["us-west-2".into(), "eu-west-1".into()])))
        );
        assert!(parse_regions("us-west-2,").is_err());
        assert!(parse_regions("US-WEST-2").is_err());
        let cli = Cli::try_parse_from([
            "emulator",
            "--regions",
            "us-west-2,eu-west-1",
            "--credential-lifetime",
            "60s",
            "--accounts-file",
            "/tmp/accounts.yaml",
        ])
        .expect("flags must parse");
        let config = EmulatorConfig::from(cli.args);
        assert_eq!(config.enabled_regions(), ["us-west-2", "eu-west-1"]);
        assert_eq!(config.credential_lifetime, Some(Duration::from_secs(60)));
        assert_eq!(
            config.accounts_file,
            Some(PathBuf::from("/tmp/accounts.yaml"))
        );
        assert!(config.validate().is_ok());
        let without_default = EmulatorConfig {
            regions: Some(vec!["eu-west-1".into()]),
            ..EmulatorConfig::default()
        };
        assert!(without_default.validate().is_err());
        // An emulator pretending to be in a region without IVS Chat still serves it.
        assert!(enabled_regions("local-1", None).contains(&"local-1".to_string()));
        assert!(Cli::try_parse_from(["emulator", "--credential-lifetime", "0s"]).is_err());
    }

    #[test]
    fn cli_flags_are_parsed() {
        let cli = Cli::try_parse_from([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--logging-transition-delay",
            "2s",
            "--fail-transitions",
            "create,update,delete",
            "--enforce-quotas",
            "--room-quota",
            "7",
            "--fault-rate",
            "0.25",
            "--lost-response-rate",
            "0.5",
            "--late-commit-rate",
            "0.05",
            "--late-commit-delay",
            "3s",
            "--extra-latency",
            "10ms",
            "--state-file",
            "/tmp/state.json",
        ])
        .expect("flags must parse");
        let config = EmulatorConfig::from(cli.args);
        assert_eq!(config.logging_transition_delay, Duration::from_secs(2));
        assert_eq!(config.fail_transitions, TransitionFailures::ALL);
        assert!(config.enforce_quotas);
        assert_eq!(config.room_quota, Some(7));
        assert_eq!(config.fault_rate, 0.25);
        assert_eq!(config.lost_response_rate, 0.5);
        assert_eq!(config.late_commit_rate, 0.05);
        assert_eq!(config.late_commit_delay, Duration::from_secs(3));
        assert_eq!(config.extra_latency, Duration::from_millis(10));
        assert_eq!(config.state_file, Some(PathBuf::from("/tmp/state.json")));
        assert!(Cli::try_parse_from(["emulator", "--fault-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["emulator", "--lost-response-rate", "-0.1"]).is_err());
        assert!(Cli::try_parse_from(["emulator", "--lost-response-rate", "NaN"]).is_err());
        assert!(Cli::try_parse_from(["emulator", "--late-commit-rate", "2"]).is_err());
    }

    #[test]
    fn lambda_flags_are_parsed() {
        let default =
            EmulatorConfig::from(Cli::try_parse_from(["emulator"]).expect("defaults").args);
        assert_eq!(default.lambda.endpoint, None);
        assert!(default.lambda.function_endpoints.is_empty());
        assert_eq!(default.lambda.review_timeout, Duration::from_millis(200));
        let cli = Cli::try_parse_from([
            "emulator",
            "--lambda-endpoint",
            "http://127.0.0.1:3001",
            "--lambda-function-endpoint",
            "moderate=http://127.0.0.1:8080/2015-03-31/functions/function/invocations",
            "--lambda-function-endpoint",
            "arn:aws:lambda:us-west-2:123456789012:function:slow=http://127.0.0.1:8081",
            "--review-timeout",
            "2s",
        ])
        .expect("flags must parse");
        let config = EmulatorConfig::from(cli.args);
        assert_eq!(
            config.lambda.endpoint.as_ref().map(LambdaEndpoint::as_str),
            Some("http://127.0.0.1:3001")
        );
        let functions: Vec<&str> = config
            .lambda
            .function_endpoints
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            functions,
            [
                "arn:aws:lambda:us-west-2:123456789012:function:slow",
                "moderate"
            ]
        );
        assert_eq!(config.lambda.review_timeout, Duration::from_secs(2));
        assert_eq!(config.runtime_settings().lambda, config.lambda);
        assert!(Cli::try_parse_from(["emulator", "--lambda-endpoint", "https://x:1"]).is_err());
        assert!(
            Cli::try_parse_from(["emulator", "--lambda-function-endpoint", "http://x:1"]).is_err()
        );
        assert!(Cli::try_parse_from(["emulator", "--review-timeout", "0s"]).is_err());
    }

    #[test]
    fn invalid_account_ids_and_regions_are_refused() {
        let config = EmulatorConfig {
            account_id: "12ab".into(),
            ..EmulatorConfig::default()
        };
        assert!(config.validate().is_err());
        let config = EmulatorConfig {
            region: "US_WEST".into(),
            ..EmulatorConfig::default()
        };
        assert!(config.validate().is_err());
        assert!(EmulatorConfig::default().validate().is_ok());
    }
}
