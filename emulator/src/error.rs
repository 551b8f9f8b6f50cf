//! Errors the emulator answers with, and their restJson1 wire form: HTTP status, `X-Amzn-Errortype` header and
//! a JSON body holding exactly the members the model gives the error shape (`message` always; `resourceId`,
//! `resourceType`, `limit`, `reason`, `fieldList` where modeled).

use serde::Serialize;
use serde_json::{Value, json};

/// The only value of the model's `ResourceType` enum; the model uses it for logging-configuration errors too.
pub const RESOURCE_TYPE_ROOM: &str = "ROOM";

/// One entry of a ValidationException's `fieldList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The member path, e.g. `name`, `messageReviewHandler.uri`, `destinationConfiguration.s3.bucketName`.
    pub name: String,
    pub message: String,
}

/// The model's `ValidationExceptionReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationReason {
    FieldValidationFailed,
    UnknownOperation,
    Other,
}

impl ValidationReason {
    fn wire_name(self) -> &'static str {
        match self {
            ValidationReason::FieldValidationFailed => "FIELD_VALIDATION_FAILED",
            ValidationReason::UnknownOperation => "UNKNOWN_OPERATION",
            ValidationReason::Other => "OTHER",
        }
    }
}

/// An error response. Every variant maps to one error type name (the `X-Amzn-Errortype` value).
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Validation {
        message: String,
        reason: ValidationReason,
        fields: Vec<FieldError>,
    },
    ResourceNotFound {
        message: String,
        resource_id: String,
    },
    Conflict {
        message: String,
        resource_id: String,
    },
    ServiceQuotaExceeded {
        message: String,
        resource_id: String,
        limit: u32,
    },
    Throttling {
        message: String,
        resource_id: String,
        limit: u32,
    },
    /// Injected fault (the model's InternalServerException).
    InternalServer { message: String },
    /// Injected fault (not modeled; SDKs treat 503 as a retryable server error).
    ServiceUnavailable { message: String },
    /// The body is not JSON, or a member has the wrong JSON type.
    Serialization { message: String },
    /// No operation has this method and path.
    UnknownOperation { message: String },
    /// The body exceeds the emulator's size cap.
    PayloadTooLarge { limit_bytes: usize },
    /// The caller is authenticated but may not act: a session of a revoked role (the model's
    /// AccessDeniedException, 403).
    AccessDenied { message: String },
    /// SigV4 verification failed; `error_type` comes from the verifier.
    Authentication {
        error_type: &'static str,
        message: String,
    },
}

impl ApiError {
    /// A ValidationException with reason FIELD_VALIDATION_FAILED naming each bad field.
    pub fn fields(fields: Vec<FieldError>) -> ApiError {
        let details: Vec<String> = fields
            .iter()
            .map(|field| {
                format!(
                    "Value at '{}' failed to satisfy constraint: {}",
                    field.name, field.message
                )
            })
            .collect();
        let count = fields.len();
        let noun = if count == 1 { "error" } else { "errors" };
        ApiError::Validation {
            message: format!("{count} validation {noun} detected: {}", details.join("; ")),
            reason: ValidationReason::FieldValidationFailed,
            fields,
        }
    }

    /// A ValidationException about a single field.
    pub fn field(name: &str, message: impl Into<String>) -> ApiError {
        ApiError::fields(vec![FieldError {
            name: name.to_string(),
            message: message.into(),
        }])
    }

    pub fn not_found(message: impl Into<String>, resource_id: impl Into<String>) -> ApiError {
        ApiError::ResourceNotFound {
            message: message.into(),
            resource_id: resource_id.into(),
        }
    }

    pub fn conflict(message: impl Into<String>, resource_id: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            message: message.into(),
            resource_id: resource_id.into(),
        }
    }

    /// The error type name sent in `X-Amzn-Errortype`; also the `outcome` label of the request metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "ValidationException",
            ApiError::ResourceNotFound { .. } => "ResourceNotFoundException",
            ApiError::Conflict { .. } => "ConflictException",
            ApiError::ServiceQuotaExceeded { .. } => "ServiceQuotaExceededException",
            ApiError::Throttling { .. } => "ThrottlingException",
            ApiError::InternalServer { .. } => "InternalServerException",
            ApiError::ServiceUnavailable { .. } => "ServiceUnavailableException",
            ApiError::Serialization { .. } => "SerializationException",
            ApiError::UnknownOperation { .. } => "UnknownOperationException",
            ApiError::PayloadTooLarge { .. } => "RequestEntityTooLargeException",
            ApiError::AccessDenied { .. } => "AccessDeniedException",
            ApiError::Authentication { error_type, .. } => error_type,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::Validation { .. } | ApiError::Serialization { .. } => 400,
            ApiError::Authentication { .. } | ApiError::AccessDenied { .. } => 403,
            ApiError::ResourceNotFound { .. } | ApiError::UnknownOperation { .. } => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::ServiceQuotaExceeded { .. } => 402,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::Throttling { .. } => 429,
            ApiError::InternalServer { .. } => 500,
            ApiError::ServiceUnavailable { .. } => 503,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::Validation { message, .. }
            | ApiError::ResourceNotFound { message, .. }
            | ApiError::Conflict { message, .. }
            | ApiError::ServiceQuotaExceeded { message, .. }
            | ApiError::Throttling { message, .. }
            | ApiError::InternalServer { message }
            | ApiError::ServiceUnavailable { message }
            | ApiError::Serialization { message }
            | ApiError::UnknownOperation { message }
            | ApiError::AccessDenied { message }
            | ApiError::Authentication { message, .. } => message.clone(),
            ApiError::PayloadTooLarge { limit_bytes } => {
                format!("Request body is larger than the {limit_bytes} bytes this endpoint accepts")
            }
        }
    }

    /// The JSON body: the modeled members of the error shape.
    pub fn body(&self) -> Value {
        let message = self.message();
        match self {
            ApiError::Validation { reason, fields, .. } => {
                let mut body = json!({ "message": message, "reason": reason.wire_name() });
                if !fields.is_empty() {
                    body["fieldList"] = json!(fields);
                }
                body
            }
            ApiError::ResourceNotFound { resource_id, .. }
            | ApiError::Conflict { resource_id, .. } => {
                json!({ "message": message, "resourceId": resource_id, "resourceType": RESOURCE_TYPE_ROOM })
            }
            ApiError::ServiceQuotaExceeded {
                resource_id, limit, ..
            }
            | ApiError::Throttling {
                resource_id, limit, ..
            } => {
                json!({ "message": message, "resourceId": resource_id, "resourceType": RESOURCE_TYPE_ROOM, "limit": limit })
            }
            _ => json!({ "message": message }),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type(), self.message())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_list_every_field() {
        let error = ApiError::fields(vec![
            FieldError {
                name: "name".into(),
                message: "Member must have length less than or equal to 128".into(),
            },
            FieldError {
                name: "tags".into(),
                message: "Member must have at most 50 entries".into(),
            },
        ]);
        assert_eq!(error.status(), 400);
        assert_eq!(error.error_type(), "ValidationException");
        let body = error.body();
        assert_eq!(body["reason"], "FIELD_VALIDATION_FAILED");
        assert_eq!(body["fieldList"][0]["name"], "name");
        assert_eq!(body["fieldList"][1]["name"], "tags");
        let message = body["message"].as_str().expect("message is a string");
        assert!(
            message.starts_with("2 validation errors detected"),
            "{message}"
        );
    }

    #[test]
    fn modeled_members_are_present() {
        let body = ApiError::not_found("Room not found", "abc").body();
        assert_eq!(
            body,
            json!({"message": "Room not found", "resourceId": "abc", "resourceType": "ROOM"})
        );
        let quota = ApiError::ServiceQuotaExceeded {
            message: "m".into(),
            resource_id: "r".into(),
            limit: 3,
        };
        assert_eq!(
            (quota.status(), quota.body()["limit"].clone()),
            (402, json!(3))
        );
        let throttle = ApiError::Throttling {
            message: "m".into(),
            resource_id: "r".into(),
            limit: 5,
        };
        assert_eq!(throttle.status(), 429);
        assert_eq!(throttle.body()["resourceType"], "ROOM");
        let unknown = ApiError::UnknownOperation {
            message: "no".into(),
        };
        assert_eq!(
            (unknown.status(), unknown.body()),
            (404, json!({"message": "no"}))
        );
    }
}
