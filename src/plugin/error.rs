//! The plugin's errors, their exit codes, and the translation of AWS failures into a sentence that says
//! what went wrong and what to do about it. The translation works on [`AwsFailure`], a plain description of
//! an SDK error, so it is unit-tested without any network.

use std::fmt;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ivschat::config::http::HttpResponse;
use aws_sdk_ivschat::error::{ProvideErrorMetadata, SdkError};

use super::args::InvalidArguments;
use super::target::Role;
use crate::controller::accounts::credentials::AssumeFailure;

/// Exit codes scripts can rely on.
pub mod exit_code {
    pub const SUCCESS: u8 = 0;
    /// An AWS error (other than "not found" and invalid input), Kubernetes or configuration trouble,
    /// including a ChatAccount that does not exist and a role STS will not let the user assume: the room
    /// may well exist, so these are not [`ROOM_NOT_FOUND`].
    pub const FAILURE: u8 = 1;
    /// Invalid arguments (also clap's code for usage errors), or input AWS rejected as invalid.
    pub const INVALID_ARGUMENTS: u8 = 2;
    /// No such ChatRoom, or no such room in AWS.
    pub const ROOM_NOT_FOUND: u8 = 3;
    /// The ChatRoom is not Ready or has no ARN yet.
    pub const ROOM_NOT_READY: u8 = 4;
    /// `send-message`: the room answered the message with an ERROR (e.g. 406, refused in message review).
    pub const NOT_DELIVERED: u8 = 5;
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("invalid arguments:\n  - {}", .0.0.join("\n  - "))]
    InvalidArguments(InvalidArguments),

    #[error(
        "ChatRoom {name:?} not found in namespace {namespace:?}: check the name and the namespace (-n), or list the ChatRooms with `kubectl ivschat status -n {namespace}`"
    )]
    ChatRoomNotFound { namespace: String, name: String },

    #[error("ChatRoom {namespace}/{name} {detail}")]
    RoomNotReady {
        namespace: String,
        name: String,
        detail: String,
    },

    #[error("{0}")]
    Aws(AwsFailure),

    /// The ChatAccount a ChatRoom's spec.accountRef (or `--account`) names does not exist.
    #[error(
        "ChatAccount {name:?} not found ({}): check the name with `kubectl get chataccounts`; without it the plugin cannot know which role to assume",
        referenced_by.as_ref().map_or_else(|| "given with --account".to_owned(), |room| format!("ChatRoom {room} names it in spec.accountRef"))
    )]
    ChatAccountNotFound {
        name: String,
        /// `namespace/name` of the ChatRoom that names it; `None` for `--account`.
        referenced_by: Option<String>,
    },

    #[error("{0}")]
    AssumeRole(AssumeRoleFailure),

    #[error("Kubernetes: {0}")]
    Kubernetes(String),

    #[error("{0}")]
    Config(String),

    #[error("cannot write the output: {0}")]
    Output(String),

    /// `tail`: the room's messaging endpoint refused or ended the tail for good (a moderator disconnected
    /// its user, or the endpoint cannot be reached at all).
    #[error("messaging: {0}")]
    Messaging(String),

    /// `tail`: the room was deleted while it was being tailed (or its messaging endpoint does not know it).
    #[error("{0}")]
    RoomGone(String),

    /// `send-message`: the room answered with an ERROR (its code, name and message).
    #[error("{0}")]
    NotDelivered(String),
}

impl PluginError {
    pub fn exit_code(&self) -> u8 {
        match self {
            PluginError::InvalidArguments(_) => exit_code::INVALID_ARGUMENTS,
            PluginError::ChatRoomNotFound { .. } => exit_code::ROOM_NOT_FOUND,
            PluginError::RoomNotReady { .. } => exit_code::ROOM_NOT_READY,
            PluginError::Aws(failure) => failure.exit_code(),
            PluginError::ChatAccountNotFound { .. }
            | PluginError::AssumeRole(_)
            | PluginError::Kubernetes(_)
            | PluginError::Config(_)
            | PluginError::Output(_)
            | PluginError::Messaging(_) => exit_code::FAILURE,
            PluginError::RoomGone(_) => exit_code::ROOM_NOT_FOUND,
            PluginError::NotDelivered(_) => exit_code::NOT_DELIVERED,
        }
    }
}

/// One failed AWS call, described without SDK types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// The IVS Chat operation, e.g. `CreateChatToken`.
    pub operation: &'static str,
    pub room_arn: String,
    pub kind: AwsFailureKind,
    /// The ChatAccount role the call was signed with; `None`: the user's own credentials. Boxed, so that
    /// every `Result<_, PluginError>` stays small.
    pub role: Option<Box<Role>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsFailureKind {
    /// The service answered with an error.
    Service {
        code: Option<String>,
        message: Option<String>,
        status: u16,
    },
    /// No answer in time.
    Timeout,
    /// The endpoint could not be reached (connection refused, DNS, TLS...).
    Unreachable { detail: String },
    /// No credentials could be loaded from the AWS credential chain.
    NoCredentials { detail: String },
    /// The request could not be built (e.g. no region) or the answer not read.
    Other { detail: String },
}

impl AwsFailure {
    /// Describes an SDK error of `operation` on `room_arn`.
    pub fn from_sdk<E>(
        operation: &'static str,
        room_arn: &str,
        error: &SdkError<E, HttpResponse>,
    ) -> AwsFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let detail = error_chain(error);
        let kind = match error {
            SdkError::ServiceError(context) => AwsFailureKind::Service {
                code: error.code().map(str::to_owned),
                message: error.message().map(str::to_owned),
                status: context.raw().status().as_u16(),
            },
            SdkError::TimeoutError(_) => AwsFailureKind::Timeout,
            SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
                if failure.is_timeout() {
                    AwsFailureKind::Timeout
                } else {
                    AwsFailureKind::Unreachable { detail }
                }
            }
            _ if mentions_credentials(&detail) => AwsFailureKind::NoCredentials { detail },
            SdkError::DispatchFailure(_) => AwsFailureKind::Unreachable { detail },
            _ => AwsFailureKind::Other { detail },
        };
        AwsFailure {
            operation,
            room_arn: room_arn.to_owned(),
            kind,
            role: None,
        }
    }

    /// The same failure of a call signed with `role`'s session.
    pub fn signed_as(self, role: Option<Role>) -> AwsFailure {
        AwsFailure {
            role: role.map(Box::new),
            ..self
        }
    }

    pub fn exit_code(&self) -> u8 {
        match &self.kind {
            AwsFailureKind::Service { code, status, .. } => match code.as_deref() {
                Some("ResourceNotFoundException") => exit_code::ROOM_NOT_FOUND,
                Some("ValidationException") => exit_code::INVALID_ARGUMENTS,
                Some(_) => exit_code::FAILURE,
                None if *status == 404 => exit_code::ROOM_NOT_FOUND,
                None => exit_code::FAILURE,
            },
            _ => exit_code::FAILURE,
        }
    }

    /// What happened and what to do, in one or two sentences.
    pub fn sentence(&self) -> String {
        let operation = self.operation;
        let arn = &self.room_arn;
        match &self.kind {
            AwsFailureKind::Service {
                code,
                message,
                status,
            } => {
                let said = message
                    .as_deref()
                    .filter(|message| !message.is_empty())
                    .map(|message| format!(" (AWS said: {message})"))
                    .unwrap_or_default();
                match code.as_deref().unwrap_or("") {
                    "ResourceNotFoundException" => format!(
                        "room {arn} does not exist in AWS{said}: it was deleted or never created in this account and region; check the ARN and --region, or the ChatRoom's status"
                    ),
                    "AccessDeniedException" => match &self.role {
                        None => format!(
                            "access denied to ivschat:{operation} on {arn}{said}: your AWS identity needs an IAM policy that allows ivschat:{operation} on this room (deploy/iam-policy-chat-data-plane.json)"
                        ),
                        Some(role) => format!(
                            "access denied to ivschat:{operation} on {arn}{said}: the call was made as the role {} of ChatAccount {}, assumed with your credentials; that role needs an IAM policy that allows ivschat:{operation} on this room (deploy/iam-policy-chat-data-plane.json: the operator's own policy has no chat actions)",
                            role.role_arn, role.account
                        ),
                    },
                    "PendingVerification" => format!(
                        "the AWS account is pending verification{said}: IVS Chat accepts {operation} once AWS has verified the account; try again later or contact AWS Support"
                    ),
                    "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => format!(
                        "your AWS session has expired{said}: refresh your credentials (e.g. `aws sso login`, or new temporary credentials) and run the command again"
                    ),
                    "UnrecognizedClientException" | "InvalidClientTokenId" => format!(
                        "AWS does not recognise your credentials{said}: your session may have expired or the access key is wrong; refresh your credentials (e.g. `aws sso login`) or check AWS_PROFILE / AWS_ACCESS_KEY_ID"
                    ),
                    "InvalidSignatureException" | "SignatureDoesNotMatch" => format!(
                        "AWS rejected the request signature{said}: the secret access key does not match the access key id, or the clock is off; check your credentials and the system time"
                    ),
                    "MissingAuthenticationTokenException" => {
                        format!("the request reached AWS unsigned{said}: configure AWS credentials")
                    }
                    "ValidationException" => format!(
                        "AWS rejected the {operation} arguments as invalid{said}: correct them and run the command again"
                    ),
                    "ThrottlingException" => format!(
                        "AWS throttled {operation} on {arn}{said}: too many requests per second; wait a moment and retry, or slow down a script"
                    ),
                    "ServiceQuotaExceededException" => format!(
                        "an IVS Chat quota is exhausted for {operation}{said}: request a quota increase in the Service Quotas console, or free resources"
                    ),
                    "ConflictException" => format!(
                        "{operation} conflicts with the current state of {arn}{said}: wait until the room is no longer changing and retry"
                    ),
                    "InternalServerException" | "ServiceUnavailableException" => format!(
                        "IVS Chat failed on its side while running {operation} (HTTP {status}){said}: retry later"
                    ),
                    "" if *status == 404 => format!(
                        "room {arn} does not exist in AWS (HTTP 404): check the ARN and --region"
                    ),
                    other => {
                        let code = if other.is_empty() { "error" } else { other };
                        format!("IVS Chat answered {operation} with {code} (HTTP {status}){said}")
                    }
                }
            }
            AwsFailureKind::Timeout => format!(
                "IVS Chat did not answer {operation} in time: check the network and --aws-endpoint-url, then retry"
            ),
            AwsFailureKind::Unreachable { detail } => format!(
                "cannot reach the IVS Chat endpoint for {operation}: check --aws-endpoint-url / AWS_ENDPOINT_URL, --region and the network ({detail})"
            ),
            AwsFailureKind::NoCredentials { detail } => format!(
                "no AWS credentials for {operation}: set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or log in (`aws sso login`) ({detail})"
            ),
            AwsFailureKind::Other { detail } => {
                format!("{operation} on {arn} failed: {detail}")
            }
        }
    }
}

impl fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sentence())
    }
}

/// An AssumeRole of a ChatAccount's role, with the user's own credentials, that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleFailure {
    /// The ChatAccount's name.
    pub account: String,
    pub role_arn: String,
    /// What STS said (or that it could not be asked).
    pub failure: AssumeFailure,
}

impl AssumeRoleFailure {
    /// Describes the provider's error: what STS said, as the operator reads it
    /// ([`failure_of`](crate::controller::accounts::credentials::failure_of)); without an answer from STS,
    /// the error chain written once each, not the SDK's Debug dump.
    pub fn from_credentials_error(
        account: &str,
        role_arn: &str,
        error: &CredentialsError,
    ) -> AssumeRoleFailure {
        let mut failure = crate::controller::accounts::credentials::failure_of(error);
        if !failure.refused {
            failure.message = error_chain(error);
        }
        AssumeRoleFailure {
            account: account.to_owned(),
            role_arn: role_arn.to_owned(),
            failure,
        }
    }

    /// What happened and what to do, in one or two sentences.
    pub fn sentence(&self) -> String {
        let AssumeRoleFailure {
            account,
            role_arn,
            failure,
        } = self;
        let said = if failure.message.is_empty() {
            format!(" ({})", failure.code)
        } else {
            format!(" ({}: {})", failure.code, failure.message)
        };
        let role = format!("the role {role_arn} of ChatAccount {account}");
        match failure.code.as_str() {
            "AccessDenied" => format!(
                "STS refused your AWS identity {role}{said}: the plugin assumes that role with your own credentials, so your identity needs sts:AssumeRole on it and the role's trust policy must trust your identity too (not only the operator's), with the ChatAccount's external ID; or act with your own credentials: --arn ROOM_ARN without --account"
            ),
            "ExpiredToken" | "ExpiredTokenException" => format!(
                "your own AWS session has expired, so STS will not give you {role}{said}: refresh your credentials (e.g. `aws sso login`) and run the command again"
            ),
            "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException" => {
                format!(
                    "STS does not accept your own AWS credentials, with which the plugin assumes {role}{said}: refresh them (e.g. `aws sso login`) or check AWS_PROFILE / AWS_ACCESS_KEY_ID"
                )
            }
            "RegionDisabledException" => format!(
                "STS is not activated in this region for your account, so it cannot give you {role}{said}: pass another --region or ask your AWS administrator to activate it"
            ),
            "ValidationError" => format!(
                "STS refused the AssumeRole parameters of {role}{said}: check the ChatAccount's sessionDurationSeconds (at most the role's maximum session duration, and 3600 when your own credentials are an assumed role) and externalId"
            ),
            _ if failure.refused => format!("STS refused {role}{said}"),
            _ if finds_no_credentials(&failure.message) => format!(
                "no AWS credentials of your own to assume {role} with: set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or log in (`aws sso login`){said}"
            ),
            _ => format!(
                "cannot reach STS to assume {role}{said}: check --aws-endpoint-url (or the ChatAccount's endpointUrl), --region and the network, then retry"
            ),
        }
    }
}

impl fmt::Display for AssumeRoleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sentence())
    }
}

/// An error and its sources as `a: b: c`, each written once (SDK errors often repeat their source's text),
/// without the Debug dump the SDK's own context printer appends.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

/// Whether an error chain says the credential chain found nothing to sign with. Both that and an
/// unreachable endpoint are "an error occurred while loading credentials: dispatch failure: …" from the
/// assume-role provider, so the chain's own words tell them apart.
fn finds_no_credentials(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    [
        "no credentials found",
        "credential provider was not enabled",
        "no providers in chain",
    ]
    .iter()
    .any(|words| lower.contains(words))
}

fn mentions_credentials(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("credential") || lower.contains("identity")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234";

    fn service(code: &str, status: u16) -> AwsFailure {
        AwsFailure {
            operation: "CreateChatToken",
            room_arn: ARN.into(),
            kind: AwsFailureKind::Service {
                code: Some(code.into()),
                message: Some("the message".into()),
                status,
            },
            role: None,
        }
    }

    #[test]
    fn not_found_says_the_room_is_gone_and_exits_3() {
        let failure = service("ResourceNotFoundException", 404);
        assert_eq!(failure.exit_code(), exit_code::ROOM_NOT_FOUND);
        let sentence = failure.sentence();
        assert!(
            sentence.contains(&format!("room {ARN} does not exist in AWS")),
            "{sentence}"
        );
        assert!(sentence.contains("AWS said: the message"), "{sentence}");
    }

    #[test]
    fn permission_and_session_problems_say_what_to_do() {
        let denied = service("AccessDeniedException", 403).sentence();
        assert!(
            denied.contains("IAM policy that allows ivschat:CreateChatToken"),
            "{denied}"
        );
        for code in ["ExpiredToken", "ExpiredTokenException", "RequestExpired"] {
            let expired = service(code, 403).sentence();
            assert!(expired.contains("session has expired"), "{expired}");
            assert!(expired.contains("aws sso login"), "{expired}");
        }
        let unknown_key = service("UnrecognizedClientException", 403).sentence();
        assert!(
            unknown_key.contains("refresh your credentials"),
            "{unknown_key}"
        );
        assert_eq!(
            service("AccessDeniedException", 403).exit_code(),
            exit_code::FAILURE
        );
        let through_role = service("AccessDeniedException", 403)
            .signed_as(Some(Role {
                account: "prod".into(),
                role_arn: "arn:aws:iam::111111111111:role/chat".into(),
                external_id: None,
                session_length: None,
            }))
            .sentence();
        assert!(
            through_role.contains(
                "the call was made as the role arn:aws:iam::111111111111:role/chat of ChatAccount prod"
            ),
            "{through_role}"
        );
        assert!(
            through_role.contains("deploy/iam-policy-chat-data-plane.json"),
            "{through_role}"
        );
    }

    #[test]
    fn validation_exits_2_and_throttling_says_retry() {
        assert_eq!(
            service("ValidationException", 400).exit_code(),
            exit_code::INVALID_ARGUMENTS
        );
        assert!(
            service("ThrottlingException", 429)
                .sentence()
                .contains("retry")
        );
        assert!(
            service("InternalServerException", 500)
                .sentence()
                .contains("HTTP 500")
        );
        assert!(
            service("ServiceQuotaExceededException", 402)
                .sentence()
                .contains("quota increase")
        );
    }

    #[test]
    fn unknown_codes_and_transport_failures_still_read_as_sentences() {
        let odd = service("BrandNewException", 418).sentence();
        assert!(odd.contains("BrandNewException (HTTP 418)"), "{odd}");
        let unreachable = AwsFailure {
            operation: "SendEvent",
            room_arn: ARN.into(),
            kind: AwsFailureKind::Unreachable {
                detail: "connection refused".into(),
            },
            role: None,
        };
        assert!(unreachable.sentence().contains("--aws-endpoint-url"));
        assert_eq!(unreachable.exit_code(), exit_code::FAILURE);
        let anonymous = AwsFailure {
            operation: "SendEvent",
            room_arn: ARN.into(),
            kind: AwsFailureKind::NoCredentials {
                detail: "no providers".into(),
            },
            role: None,
        };
        assert!(anonymous.sentence().contains("AWS_PROFILE"));
    }

    #[test]
    fn error_chains_are_written_once_each() {
        #[derive(Debug, thiserror::Error)]
        #[error("dispatch failure")]
        struct Outer(#[source] Middle);
        #[derive(Debug, thiserror::Error)]
        #[error("io error: connection refused")]
        struct Middle(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("connection refused")]
        struct Inner;
        assert_eq!(
            error_chain(&Outer(Middle(Inner))),
            "dispatch failure: io error: connection refused"
        );
    }

    fn assume_failure(code: &str, message: &str, refused: bool) -> PluginError {
        PluginError::AssumeRole(AssumeRoleFailure {
            account: "prod".into(),
            role_arn: "arn:aws:iam::111111111111:role/chat".into(),
            failure: AssumeFailure {
                code: code.into(),
                message: message.into(),
                refused,
            },
        })
    }

    #[test]
    fn a_refused_role_says_the_users_identity_must_be_trusted() {
        let denied = assume_failure("AccessDenied", "User: x is not authorized", true);
        assert_eq!(denied.exit_code(), exit_code::FAILURE);
        let text = denied.to_string();
        assert!(
            text.contains("STS refused your AWS identity the role arn:aws:iam::111111111111:role/chat of ChatAccount prod (AccessDenied: User: x is not authorized)"),
            "{text}"
        );
        assert!(
            text.contains("the role's trust policy must trust your identity too"),
            "{text}"
        );
        assert!(text.contains("sts:AssumeRole"), "{text}");
        let expired = assume_failure("ExpiredToken", "expired", true).to_string();
        assert!(
            expired.contains("your own AWS session has expired"),
            "{expired}"
        );
        let invalid = assume_failure("ValidationError", "DurationSeconds", true).to_string();
        assert!(invalid.contains("sessionDurationSeconds"), "{invalid}");
        let other = assume_failure("MalformedPolicyDocument", "bad", true).to_string();
        assert!(other.starts_with("STS refused the role"), "{other}");
    }

    #[test]
    fn an_unanswered_assume_role_says_whether_credentials_or_sts_are_missing() {
        let anonymous = assume_failure(
            "StsUnavailable",
            "an error occurred while loading credentials: dispatch failure: other: the credential provider was not enabled: no credentials found in chain",
            false,
        )
        .to_string();
        assert!(
            anonymous.starts_with("no AWS credentials of your own to assume the role"),
            "{anonymous}"
        );
        let unreachable = assume_failure(
            "StsUnavailable",
            "an error occurred while loading credentials: dispatch failure: io error: connection refused",
            false,
        )
        .to_string();
        assert!(
            unreachable.starts_with("cannot reach STS to assume the role"),
            "{unreachable}"
        );
        assert!(unreachable.contains("endpointUrl"), "{unreachable}");
    }

    #[test]
    fn a_missing_account_names_its_referrer_and_exits_1() {
        let by_room = PluginError::ChatAccountNotFound {
            name: "prod".into(),
            referenced_by: Some("ns/lobby".into()),
        };
        assert_eq!(by_room.exit_code(), exit_code::FAILURE);
        assert!(
            by_room.to_string().starts_with(
                "ChatAccount \"prod\" not found (ChatRoom ns/lobby names it in spec.accountRef)"
            ),
            "{by_room}"
        );
        let by_flag = PluginError::ChatAccountNotFound {
            name: "prod".into(),
            referenced_by: None,
        };
        assert!(
            by_flag.to_string().contains("(given with --account)"),
            "{by_flag}"
        );
    }

    #[test]
    fn plugin_errors_map_to_documented_exit_codes() {
        let not_found = PluginError::ChatRoomNotFound {
            namespace: "ns".into(),
            name: "r".into(),
        };
        assert_eq!(not_found.exit_code(), 3);
        assert!(
            not_found
                .to_string()
                .contains("ChatRoom \"r\" not found in namespace \"ns\"")
        );
        let not_ready = PluginError::RoomNotReady {
            namespace: "ns".into(),
            name: "r".into(),
            detail: "has no ARN yet".into(),
        };
        assert_eq!(not_ready.exit_code(), 4);
        let invalid = PluginError::InvalidArguments(InvalidArguments(vec!["a".into(), "b".into()]));
        assert_eq!(invalid.exit_code(), 2);
        assert_eq!(invalid.to_string(), "invalid arguments:\n  - a\n  - b");
    }
}
