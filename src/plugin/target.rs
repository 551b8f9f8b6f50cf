//! Where the plugin's AWS calls go: the region, the endpoint and the IAM role to assume, chosen from the flags,
//! the ChatRoom (or `--arn`) and its ChatAccount. Pure: [`choose`] maps an [`Inputs`] to a [`Target`].
//!
//! The rules, each first match winning:
//! - **Region**: `--region`; the ChatRoom's `status.region`; the region in the room's ARN (`status.arn` or
//!   `--arn`); the ChatRoom's `spec.region`; the ChatAccount's `defaultRegion`; else `None`, the AWS
//!   configuration's own (AWS_REGION, the profile). A room only exists in its own region, so what the status
//!   recorded wins over any default: after `--region`, the operator's own rule
//!   ([`named_region`](crate::controller::accounts::placement::named_region)).
//! - **Endpoint**: `--aws-endpoint-url`; the ChatAccount's `endpointUrl`; else `None`, the configuration
//!   chain's (AWS_ENDPOINT_URL_IVSCHAT / AWS_ENDPOINT_URL / AWS). It serves both STS and IVS Chat.
//! - **Role**: the ChatAccount's `roleArn`, `externalId` and `sessionDurationSeconds`, assumed with the user's
//!   own credentials as the session [`SESSION_NAME`]; without a ChatAccount, no role: the user's credentials.

use std::time::Duration;

use crate::controller::accounts::placement::{Placed, named_region};
use crate::crd::ChatAccountSpec;

/// The session name of the plugin's AssumeRole calls (visible in the target account's CloudTrail, and in
/// the assumed-role ARN), distinct from the operator's.
pub const SESSION_NAME: &str = "kubectl-ivschat";

/// What the choice reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// `--region`.
    pub region_flag: Option<&'a str>,
    /// `--aws-endpoint-url`.
    pub endpoint_flag: Option<&'a str>,
    /// The room's ARN: the ChatRoom's `status.arn`, or `--arn`.
    pub arn: Option<&'a str>,
    /// The ChatRoom's `status.region`.
    pub status_region: Option<&'a str>,
    /// The ChatRoom's `spec.region`.
    pub spec_region: Option<&'a str>,
    /// The ChatAccount whose role to assume (the ChatRoom's `spec.accountRef`, or `--account`): its name and
    /// spec.
    pub account: Option<(&'a str, &'a ChatAccountSpec)>,
}

/// Where the calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `None`: the AWS configuration's region.
    pub region: Option<String>,
    /// `None`: the configuration chain's endpoint.
    pub endpoint_url: Option<String>,
    /// `None`: the user's own credentials.
    pub role: Option<Role>,
}

/// A ChatAccount's role, as the plugin assumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The ChatAccount's name, for messages.
    pub account: String,
    pub role_arn: String,
    pub external_id: Option<String>,
    /// `None`: STS's default (1 h), nothing sent.
    pub session_length: Option<Duration>,
}

/// Chooses the region, endpoint and role (see the module docs).
pub fn choose(inputs: &Inputs<'_>) -> Target {
    let account = inputs.account.map(|(_, spec)| spec);
    // The operator's own rule for where a resource lives, then the configuration's region.
    let placed = Placed {
        spec_region: inputs.spec_region,
        status_region: inputs.status_region,
        status_arn: inputs.arn,
        ..Placed::default()
    };
    let region = inputs
        .region_flag
        .or_else(|| named_region(&placed, account))
        .map(str::to_owned);
    let endpoint_url = inputs
        .endpoint_flag
        .or_else(|| account.and_then(|spec| spec.endpoint_url.as_deref()))
        .map(str::to_owned);
    let role = inputs.account.map(|(name, spec)| Role {
        account: name.to_owned(),
        role_arn: spec.role_arn.clone(),
        external_id: spec.external_id.clone(),
        session_length: spec
            .session_duration_seconds
            .and_then(|seconds| u64::try_from(seconds).ok())
            .map(Duration::from_secs),
    });
    Target {
        region,
        endpoint_url,
        role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:ivschat:eu-west-1:111111111111:room/abcdEFGH1234";

    fn account() -> ChatAccountSpec {
        ChatAccountSpec {
            role_arn: "arn:aws:iam::111111111111:role/chat".into(),
            external_id: Some("ext-1".into()),
            session_duration_seconds: Some(900),
            default_region: Some("ap-northeast-1".into()),
            endpoint_url: Some("http://127.0.0.1:4510".into()),
            ..ChatAccountSpec::default()
        }
    }

    #[test]
    fn the_region_is_the_flag_then_the_status_then_the_arn_then_the_spec_then_the_account() {
        let spec = account();
        let all = Inputs {
            region_flag: Some("us-east-1"),
            status_region: Some("eu-central-1"),
            arn: Some(ARN),
            spec_region: Some("us-west-2"),
            account: Some(("prod", &spec)),
            ..Inputs::default()
        };
        let region = |inputs: Inputs<'_>| choose(&inputs).region;
        assert_eq!(region(all).as_deref(), Some("us-east-1"));
        let all = Inputs {
            region_flag: None,
            ..all
        };
        assert_eq!(region(all).as_deref(), Some("eu-central-1"));
        let all = Inputs {
            status_region: None,
            ..all
        };
        assert_eq!(region(all).as_deref(), Some("eu-west-1"), "the ARN's");
        let all = Inputs { arn: None, ..all };
        assert_eq!(region(all).as_deref(), Some("us-west-2"), "the spec's");
        let all = Inputs {
            spec_region: None,
            ..all
        };
        assert_eq!(
            region(all).as_deref(),
            Some("ap-northeast-1"),
            "the account's default"
        );
        let all = Inputs {
            account: None,
            ..all
        };
        assert_eq!(region(all), None, "the AWS configuration's");
    }

    #[test]
    fn an_arn_without_a_region_field_falls_through() {
        let inputs = Inputs {
            arn: Some("arn:aws:ivschat::111111111111:room/x"),
            spec_region: Some("us-west-2"),
            ..Inputs::default()
        };
        assert_eq!(choose(&inputs).region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn the_endpoint_flag_wins_over_the_accounts_endpoint() {
        let spec = account();
        let with_account = Inputs {
            account: Some(("prod", &spec)),
            ..Inputs::default()
        };
        assert_eq!(
            choose(&with_account).endpoint_url.as_deref(),
            Some("http://127.0.0.1:4510")
        );
        let flagged = Inputs {
            endpoint_flag: Some("http://localhost:1"),
            ..with_account
        };
        assert_eq!(
            choose(&flagged).endpoint_url.as_deref(),
            Some("http://localhost:1")
        );
        assert_eq!(choose(&Inputs::default()).endpoint_url, None);
        let no_endpoint = ChatAccountSpec {
            endpoint_url: None,
            ..account()
        };
        assert_eq!(
            choose(&Inputs {
                account: Some(("prod", &no_endpoint)),
                ..Inputs::default()
            })
            .endpoint_url,
            None,
            "the configuration chain's"
        );
    }

    #[test]
    fn the_role_is_the_accounts_with_its_external_id_and_session_length() {
        let spec = account();
        let target = choose(&Inputs {
            arn: Some(ARN),
            account: Some(("prod", &spec)),
            ..Inputs::default()
        });
        assert_eq!(
            target.role,
            Some(Role {
                account: "prod".into(),
                role_arn: "arn:aws:iam::111111111111:role/chat".into(),
                external_id: Some("ext-1".into()),
                session_length: Some(Duration::from_secs(900)),
            })
        );
        let bare = ChatAccountSpec {
            role_arn: "arn:aws:iam::111111111111:role/chat".into(),
            ..ChatAccountSpec::default()
        };
        let role = choose(&Inputs {
            account: Some(("bare", &bare)),
            ..Inputs::default()
        })
        .role
        .expect("a role");
        assert_eq!((role.external_id, role.session_length), (None, None));
        assert_eq!(
            choose(&Inputs {
                arn: Some(ARN),
                ..Inputs::default()
            })
            .role,
            None,
            "without an account: the user's own credentials"
        );
    }
}
