//! AWS errors, classified once, where the SDK error is seen.
//!
//! Everything downstream (conditions, events, requeue decisions) works on [`ErrorClass`], never on SDK
//! error enums: those are `#[non_exhaustive]` and differ per operation, so the classification falls back
//! on the error code (`ProvideErrorMetadata::code`) and then on the HTTP status.

use aws_sdk_ivschat::config::http::HttpResponse;
use aws_sdk_ivschat::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::time::Duration;

/// What an AWS failure means for the reconciler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The resource addressed by the call does not exist.
    NotFound,
    /// The request can never succeed as written (a spec AWS rejects, or a reference to a resource that does
    /// not exist): wait for a spec change, never retry on a timer.
    Terminal,
    /// The credentials lack permission, are not recognised, or the account is pending verification:
    /// outside help is needed, so retry only after a long backoff.
    AccessDenied,
    /// An account quota (rooms, logging configurations) is used up: retry after a long backoff.
    QuotaExceeded,
    /// The resource is busy (a logging configuration in transition, or still attached to a room): retry later.
    Conflict,
    /// Throttling, 5xx, timeouts, connection failures: retry with exponential backoff and jitter.
    Transient,
}

impl ErrorClass {
    /// The condition and event reason for this class (PascalCase, bounded).
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "NotFound",
            Self::Terminal => "InvalidSpec",
            Self::AccessDenied => "AccessDenied",
            Self::QuotaExceeded => "QuotaExceeded",
            Self::Conflict => "Conflict",
            Self::Transient => "AwsUnavailable",
        }
    }
}

/// A failed AWS call: the operation, its class, the error code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed ({code}): {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub class: ErrorClass,
    pub code: String,
    pub message: String,
}

impl AwsError {
    /// Classifies an SDK error of `operation`.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (class, code, message) = match &err {
            SdkError::ServiceError(context) => {
                let code = err.code().map(str::to_owned);
                let status = context.raw().status().as_u16();
                let message = err
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
                (
                    classify(code.as_deref(), Some(status)),
                    code.unwrap_or_else(|| format!("HTTP {status}")),
                    message,
                )
            }
            // The SDK could not even build the request: retrying the same input cannot help.
            SdkError::ConstructionFailure(_) => (
                ErrorClass::Terminal,
                "ConstructionFailure".to_owned(),
                DisplayErrorContext(&err).to_string(),
            ),
            SdkError::TimeoutError(_) => (
                ErrorClass::Transient,
                "Timeout".to_owned(),
                DisplayErrorContext(&err).to_string(),
            ),
            SdkError::DispatchFailure(_) => (
                ErrorClass::Transient,
                "DispatchFailure".to_owned(),
                DisplayErrorContext(&err).to_string(),
            ),
            _ => (
                ErrorClass::Transient,
                "ResponseError".to_owned(),
                DisplayErrorContext(&err).to_string(),
            ),
        };
        AwsError {
            operation,
            class,
            code,
            message,
        }
    }

    /// A call not sent because the ChatAccount's role could not be assumed: a refusal needs outside help
    /// (AccessDenied), STS's silence is retried like any outage.
    pub fn of_account(
        operation: &'static str,
        failure: &super::accounts::credentials::AssumeFailure,
    ) -> Self {
        AwsError {
            operation,
            class: if failure.refused {
                ErrorClass::AccessDenied
            } else {
                ErrorClass::Transient
            },
            code: failure.code.clone(),
            message: format!("cannot assume the ChatAccount's role: {}", failure.message),
        }
    }

    /// An attempt that got no answer within `limit` (it may still have run in AWS).
    pub fn timed_out(operation: &'static str, limit: Duration) -> Self {
        AwsError {
            operation,
            class: ErrorClass::Transient,
            code: "Timeout".to_owned(),
            message: format!("no answer within {}", humantime_secs(limit)),
        }
    }

    /// A call this replica may not make (or may not wait for) because its leadership is not confirmed: the
    /// fence ([`super::aws::Fence`]) passed before the call was sent, or while it was in flight. Transient,
    /// so the driver retries it later; a create abandoned in flight may have run, and is looked up first
    /// like any create whose answer was lost.
    pub fn not_leading(operation: &'static str) -> Self {
        AwsError {
            operation,
            class: ErrorClass::Transient,
            code: NOT_LEADING.to_owned(),
            message:
                "this replica's leadership is not confirmed (its Lease was not renewed in time): \
                      AWS calls are not sent, and those in flight are abandoned"
                    .to_owned(),
        }
    }

    /// Refused or abandoned by the fence: retrying at once cannot help (the fence stays down until a renewal).
    pub fn is_not_leading(&self) -> bool {
        self.code == NOT_LEADING
    }

    /// AWS refused the call for its rate quota (so it certainly did not run it).
    pub fn is_throttling(&self) -> bool {
        is_throttling_code(&self.code)
    }

    /// For calls that name *other* resources (a room's logging configurations on CreateRoom/UpdateRoom):
    /// "not found" there means the spec points at something that does not exist, which no retry fixes.
    pub fn not_found_is_terminal(mut self) -> Self {
        if self.class == ErrorClass::NotFound {
            self.class = ErrorClass::Terminal;
        }
        self
    }
}

/// The code of [`AwsError::not_leading`] (never an AWS code: those end in `Exception` or are HTTP statuses).
const NOT_LEADING: &str = "NotLeading";

fn humantime_secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// The error codes AWS uses for rate-quota refusals (`HTTP 429` when there is no code).
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "HTTP 429"
    )
}

/// The class of an AWS error from its code (preferred) or HTTP status.
pub fn classify(code: Option<&str>, http_status: Option<u16>) -> ErrorClass {
    match code {
        Some("ResourceNotFoundException") => ErrorClass::NotFound,
        Some(
            "ValidationException"
            | "SerializationException"
            | "RequestEntityTooLargeException"
            | "UnknownOperationException",
        ) => ErrorClass::Terminal,
        Some(
            "AccessDeniedException"
            | "PendingVerification"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationTokenException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch",
        ) => ErrorClass::AccessDenied,
        Some("ServiceQuotaExceededException") => ErrorClass::QuotaExceeded,
        Some("ConflictException") => ErrorClass::Conflict,
        Some(
            "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "InternalServerException"
            | "InternalFailure"
            | "ServiceUnavailableException"
            | "ServiceUnavailable",
        ) => ErrorClass::Transient,
        _ => match http_status {
            Some(401 | 403) => ErrorClass::AccessDenied,
            Some(402) => ErrorClass::QuotaExceeded,
            Some(404) => ErrorClass::NotFound,
            Some(409) => ErrorClass::Conflict,
            Some(429) => ErrorClass::Transient,
            Some(status) if (400..500).contains(&status) => ErrorClass::Terminal,
            _ => ErrorClass::Transient,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modeled_codes_win_over_the_status() {
        // Two error types share 403: the code tells them apart, and both need outside help.
        assert_eq!(
            classify(Some("AccessDeniedException"), Some(403)),
            ErrorClass::AccessDenied
        );
        assert_eq!(
            classify(Some("PendingVerification"), Some(403)),
            ErrorClass::AccessDenied
        );
        assert_eq!(
            classify(Some("ValidationException"), Some(400)),
            ErrorClass::Terminal
        );
        assert_eq!(
            classify(Some("ServiceQuotaExceededException"), Some(402)),
            ErrorClass::QuotaExceeded
        );
        assert_eq!(
            classify(Some("ThrottlingException"), Some(429)),
            ErrorClass::Transient
        );
        assert_eq!(
            classify(Some("ResourceNotFoundException"), Some(404)),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify(Some("ConflictException"), Some(409)),
            ErrorClass::Conflict
        );
        assert_eq!(
            classify(Some("ServiceUnavailableException"), Some(503)),
            ErrorClass::Transient
        );
    }

    #[test]
    fn unknown_codes_fall_back_on_the_status() {
        assert_eq!(
            classify(Some("Brand new"), Some(500)),
            ErrorClass::Transient
        );
        assert_eq!(classify(None, Some(502)), ErrorClass::Transient);
        assert_eq!(classify(None, Some(429)), ErrorClass::Transient);
        assert_eq!(classify(None, Some(400)), ErrorClass::Terminal);
        assert_eq!(classify(None, Some(403)), ErrorClass::AccessDenied);
        assert_eq!(classify(None, Some(402)), ErrorClass::QuotaExceeded);
        assert_eq!(classify(None, None), ErrorClass::Transient);
    }

    #[test]
    fn not_found_on_a_reference_is_terminal_and_nothing_else_changes() {
        let err = AwsError {
            operation: "CreateRoom",
            class: ErrorClass::NotFound,
            code: "ResourceNotFoundException".into(),
            message: "no such logging configuration".into(),
        };
        assert_eq!(
            err.clone().not_found_is_terminal().class,
            ErrorClass::Terminal
        );
        let throttled = AwsError {
            class: ErrorClass::Transient,
            ..err
        };
        assert_eq!(
            throttled.not_found_is_terminal().class,
            ErrorClass::Transient
        );
    }

    #[test]
    fn a_fenced_call_is_transient_and_named_as_such() {
        let fenced = AwsError::not_leading("CreateRoom");
        assert_eq!(fenced.class, ErrorClass::Transient);
        assert_eq!(fenced.class.reason(), "AwsUnavailable");
        assert!(fenced.is_not_leading());
        assert!(!fenced.is_throttling());
        assert!(!AwsError::timed_out("CreateRoom", Duration::from_secs(1)).is_not_leading());
    }

    #[test]
    fn reasons_are_pascal_case() {
        for class in [
            ErrorClass::NotFound,
            ErrorClass::Terminal,
            ErrorClass::AccessDenied,
            ErrorClass::QuotaExceeded,
            ErrorClass::Conflict,
            ErrorClass::Transient,
        ] {
            let reason = class.reason();
            assert!(
                reason.chars().all(|c| c.is_ascii_alphanumeric()),
                "{reason}"
            );
            assert!(
                reason.starts_with(|c: char| c.is_ascii_uppercase()),
                "{reason}"
            );
        }
    }
}
