//! The HTTP front end: one axum fallback handler that routes every request itself, so unknown paths and methods,
//! bodies and headers of any shape reach code that answers them in the AWS error format.
//!
//! API requests go through: body read (capped at [`MAX_BODY_BYTES`], 413 past it) → extra latency → SigV4
//! verification and session checks (403) → routing (404 UnknownOperationException) → revoked role (403
//! AccessDeniedException) → injected fault (500/503) → TPS quota of the request's scope (429) →
//! the operation → lost response (a successful control-plane write's response replaced by a 500, its change
//! kept; see [`super::traffic::loses_responses`]). Every response carries `x-amzn-RequestId`; every error carries
//! `X-Amzn-Errortype` and a JSON body with `message`. Each API request is counted once by operation and outcome
//! (a lost response as `InternalServerException`, and also in the lost-responses counter), and logged with its
//! caller's app name: the `app/NAME` token of its `User-Agent` (else of `X-Amz-User-Agent`), see [`caller_app`].
//!
//! A request is authenticated ([`identity`]) with the static key or an STS session key; its scope is the
//! caller's account (the default one for the static key, the session's for a session key) and the region of
//! its SigV4 credential scope, which must be a served region. A session of a revoked role (or of one its
//! account no longer lists) is then refused with 403 AccessDeniedException (after routing, before faults and
//! quotas). Authenticated requests are also
//! counted by scope.
//!
//! A WebSocket upgrade (`GET /` with `Upgrade: websocket`) goes to the chat messaging endpoint ([`messaging`])
//! before any of this, and an STS request ([`sts::is_sts_request`]: `POST /` signed for `sts`, or the unsigned
//! AssumeRoleWithWebIdentity) to [`sts`].
//!
//! `/_emulator/*` is the unsigned admin API for tests (never counted in the metrics):
//! - `GET /_emulator/metrics`: the request counters as Prometheus text; `GET /_emulator/metrics/json` the same
//!   as JSON (see [`super::metrics`]); `POST /_emulator/metrics/reset` zeroes them and empties the request log.
//! - `GET /_emulator/scopes`: `{"scopes": [{"accountId", "region", "rooms", "loggingConfigurations"}]}`, every
//!   (account, region) used so far, by account then region.
//! - `GET /_emulator/accounts`: the configured accounts and the revoked roles; `POST /_emulator/accounts` with
//!   one account `{"id": "111122223333", "roles": [{"name", "externalId", "trustedPrincipals",
//!   "maxSessionDuration"}]}` (the accounts file's entry, see [`super::accounts`]) adds it or replaces its roles.
//! - `POST /_emulator/roles/revoke` and `POST /_emulator/roles/restore` with `{"roleArn": "arn:aws:iam::…"}`:
//!   revoke a role (AssumeRole of it is AccessDenied, its sessions get AccessDeniedException) or undo that.
//! - `GET /_emulator/requests`: the request log, oldest first: `{"requests": [{"sequence": 1, "operation":
//!   "CreateRoom", "outcome": "success", "app": "NAME" | null}, ...]}` (the last 100,000 requests).
//! - `GET /_emulator/settings`: the runtime settings as JSON; `POST /_emulator/settings` with any subset of
//!   `{"loggingTransitionDelay": "2s", "failTransitions": ["create","update","delete"], "enforceQuotas": true,
//!   "roomQuota": 5 | null, "loggingConfigurationQuota": 10, "faultRate": 0.1, "lostResponseRate": 0.1,
//!   "extraLatency": "50ms", "credentialLifetime": "60s" | null, "lambdaEndpoint": "http://…" | null,
//!   "lambdaFunctionEndpoints": {"moderate": "http://…"} (replaces the map), "reviewTimeout": "200ms"}` changes
//!   them and returns the result (message review handlers: see [`super::review`]).
//! - `GET /_emulator/health`: `{"status":"ok"}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::accounts::{AccountEntry, Denial, RoleArn};
use super::config::{RuntimeSettings, TransitionFailures, parse_duration};
use super::error::ApiError;
use super::identity::{self, AuthFailure};
use super::ids::{self, ArnScope};
use super::messaging;
use super::metrics::{RequestRecord, SUCCESS, UNKNOWN_OPERATION};
use super::operation;
use super::operations::{self, Output};
use super::review::LambdaEndpoint;
use super::service::Service;
use super::sigv4::SignedParts;
use super::sts;
use ivschat_api::Operation;

/// Largest request body accepted (IVS Chat inputs are a few KiB at most).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// SigV4 signing name of the service.
const SIGNING_SERVICE: &str = "ivschat";
const ADMIN_PREFIX: &str = "/_emulator";

pub fn router(service: Arc<Service>) -> Router {
    Router::new().fallback(handle).with_state(service)
}

async fn handle(State(service): State<Arc<Service>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if messaging::is_messaging_upgrade(&parts.method, parts.uri.path(), &parts.headers) {
        // The chat messaging endpoint shares the listener; it is not an API operation (unsigned, uncounted).
        return messaging::upgrade(service, parts).await;
    }
    let request_id = ids::new_request_id();
    let path = parts.uri.path();
    let too_large =
        content_length(&parts.headers).is_some_and(|length| length > MAX_BODY_BYTES as u64);
    let body = if too_large {
        None
    } else {
        axum::body::to_bytes(body, MAX_BODY_BYTES).await.ok()
    };

    if path == ADMIN_PREFIX || path.starts_with("/_emulator/") {
        let result = match &body {
            Some(body) => admin(&service, &parts.method, path, body),
            None => Err(ApiError::PayloadTooLarge {
                limit_bytes: MAX_BODY_BYTES,
            }),
        };
        return respond(result, &request_id);
    }
    if let Some(body) = &body
        && sts::is_sts_request(&parts.method, path, &parts.headers, body)
    {
        return sts::handle(&service, &parts.method, &parts.uri, &parts.headers, body);
    }

    let route = operation::route(&parts.method, path);
    let operation_label = route
        .as_ref()
        .map_or(UNKNOWN_OPERATION, |route| route.operation.name());
    let mut scope = None;
    let result = match body {
        Some(body) => {
            let request = SignedParts {
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
                body: &body,
            };
            api(&service, &request, route, &mut scope).await
        }
        None => Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        }),
    };
    let outcome = match &result {
        Ok(_) => SUCCESS,
        Err(error) => error.error_type(),
    };
    service
        .metrics
        .record_from(operation_label, outcome, caller_app(&parts.headers));
    if let Some(scope) = &scope {
        service
            .metrics
            .record_scoped(scope, operation_label, outcome);
    }
    if let Err(error) = &result {
        tracing::debug!(operation = operation_label, %request_id, status = error.status(), error = %error, "request failed");
    }
    respond(result, &request_id)
}

/// Longest app name the request log keeps (the SDKs recommend at most 50 characters).
const MAX_APP_NAME: usize = 64;

/// The caller's app name: the `app/NAME` token of the `User-Agent` header, else of `X-Amz-User-Agent` (the AWS
/// SDKs put their `app_name` setting in both). Only a name of the characters the SDKs allow, at most
/// [`MAX_APP_NAME`] long, counts.
pub fn caller_app(headers: &HeaderMap) -> Option<&str> {
    let valid = |name: &&str| {
        !name.is_empty()
            && name.len() <= MAX_APP_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
    };
    [header::USER_AGENT.as_str(), "x-amz-user-agent"]
        .into_iter()
        .filter_map(|name| headers.get(name)?.to_str().ok())
        .find_map(|agent| {
            agent
                .split_whitespace()
                .filter_map(|token| token.strip_prefix("app/"))
                .find(valid)
        })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Answers one IVS Chat API request; `scope` is set once the caller is authenticated.
async fn api(
    service: &Arc<Service>,
    request: &SignedParts<'_>,
    route: Option<operation::Route<'_>>,
    scope: &mut Option<ArnScope>,
) -> Result<Output, ApiError> {
    let latency = service.traffic.settings().extra_latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let regions: Vec<&str> = service.regions.iter().map(String::as_str).collect();
    let caller = identity::authenticate(
        service,
        request,
        &regions,
        SIGNING_SERVICE,
        jiff::Timestamp::now(),
    )
    .map_err(authentication_error)?;
    *scope = Some(caller.scope());
    let route = route.ok_or_else(|| ApiError::UnknownOperation {
        message: format!(
            "No IVS Chat operation is bound to {} {}",
            request.method,
            request.uri.path()
        ),
    })?;
    if let Some(session) = &caller.session
        && let Some(denial) = service
            .accounts()
            .session_denial(&session.account_id, &session.role_name)
    {
        let why = match denial {
            Denial::NoSuchRole => "no longer exists",
            _ => "is revoked",
        };
        return Err(ApiError::AccessDenied {
            message: format!(
                "User: {} is not authorized to perform: ivschat:{} because the role {} {why}",
                caller.principal.arn(),
                route.operation.name(),
                session.role_arn
            ),
        });
    }
    if let Some(fault) = service.traffic.injected_fault() {
        return Err(fault);
    }
    let scope = caller.scope();
    service.traffic.admit(route.operation, &scope)?;
    let operation_request = operations::Request {
        resource_arn_label: route.resource_arn_label,
        query: request.uri.query(),
        body: request.body,
    };
    if let Some(delay) = service.traffic.late_commit(route.operation) {
        return Err(commit_late(
            service,
            scope,
            route.operation,
            operation_request,
            delay,
        ));
    }
    let output =
        operations::execute(&service.scoped(scope), route.operation, operation_request).await?;
    // Drawn only after success: a failed operation changed nothing, so there is no lost change to simulate.
    if let Some(lost) = service.traffic.lost_response(route.operation) {
        service.metrics.record_lost_response(route.operation.name());
        tracing::debug!(
            operation = route.operation.name(),
            "change kept, response replaced by an injected 500"
        );
        return Err(lost);
    }
    Ok(output)
}

/// The IVS Chat answer to an authentication failure: the verifier's error type (see [`super::sigv4`]), or
/// 403 ExpiredTokenException for an expired session.
fn authentication_error(failure: AuthFailure) -> ApiError {
    match failure {
        AuthFailure::Signature(error) => ApiError::Authentication {
            error_type: error.error_type(),
            message: error.message(),
        },
        AuthFailure::Expired => ApiError::Authentication {
            error_type: "ExpiredTokenException",
            message: "The security token included in the request is expired".to_owned(),
        },
    }
}

/// Carries out `operation` `delay` from now, in the background, and returns the 500 that answers it now
/// (`lateCommitRate`). The write is validated and applied only then, as AWS completing a request the client
/// gave up on would; its own outcome reaches nobody but the log and the late-commit count.
fn commit_late(
    service: &Arc<Service>,
    scope: ArnScope,
    operation: Operation,
    request: operations::Request<'_>,
    delay: Duration,
) -> ApiError {
    let service = service.clone();
    let label = request.resource_arn_label.map(str::to_owned);
    let query = request.query.map(str::to_owned);
    let body = request.body.to_vec();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let request = operations::Request {
            resource_arn_label: label.as_deref(),
            query: query.as_deref(),
            body: &body,
        };
        match operations::execute(&service.scoped(scope), operation, request).await {
            Ok(_) => {
                service.metrics.record_late_commit(operation.name());
                tracing::debug!(
                    operation = operation.name(),
                    ?delay,
                    "late commit carried out"
                );
            }
            Err(error) => tracing::debug!(
                operation = operation.name(),
                error = error.error_type(),
                "late commit failed when carried out"
            ),
        }
    });
    ApiError::InternalServer {
        message: format!(
            "Injected late commit: {} failed for now, but will be carried out in {delay:?}",
            operation.name()
        ),
    }
}

fn respond(result: Result<Output, ApiError>, request_id: &str) -> Response {
    const JSON: &str = "application/json";
    let (status, error_type, body) = match result {
        Ok(Output::Json(body)) => (StatusCode::OK, None, Some((JSON, body.to_string()))),
        Ok(Output::Text(text)) => (
            StatusCode::OK,
            None,
            Some(("text/plain; version=0.0.4; charset=utf-8", text)),
        ),
        Ok(Output::NoContent) => (StatusCode::NO_CONTENT, None, None),
        Err(error) => {
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                Some(error.error_type()),
                Some((JSON, error.body().to_string())),
            )
        }
    };
    let mut response = match body {
        Some((content_type, body)) => {
            let mut response = Response::new(Body::from(body));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    if let Some(error_type) = error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    response
}

// ---- admin API ----------------------------------------------------------------------------------------------

fn admin(service: &Service, method: &Method, path: &str, body: &[u8]) -> Result<Output, ApiError> {
    match (method.clone(), path.trim_start_matches(ADMIN_PREFIX)) {
        (Method::GET, "/metrics") => Ok(Output::Text(service.metrics.prometheus_text())),
        (Method::POST, "/metrics/reset") => {
            service.metrics.reset();
            Ok(Output::Json(json!({})))
        }
        (Method::GET, "/requests") => Ok(Output::Json(requests_json(&service.metrics.requests()))),
        (Method::GET, "/settings") => Ok(Output::Json(settings_json(&service.traffic.settings()))),
        (Method::POST | Method::PUT | Method::PATCH, "/settings") => {
            let changes = parse_settings_changes(body)?;
            let updated = service
                .traffic
                .update(|settings| changes.apply(settings))
                .map_err(|message| ApiError::Validation {
                    message,
                    reason: super::error::ValidationReason::Other,
                    fields: vec![],
                })?;
            tracing::info!(settings = ?updated, "emulator settings changed");
            Ok(Output::Json(settings_json(&updated)))
        }
        (Method::GET, "/metrics/json") => Ok(Output::Json(service.metrics.json())),
        (Method::GET, "/scopes") => Ok(Output::Json(scopes_json(service))),
        (Method::GET, "/accounts") => Ok(Output::Json(accounts_json(service))),
        (Method::POST | Method::PUT, "/accounts") => {
            let entry: AccountEntry =
                serde_json::from_slice(body).map_err(|err| ApiError::Serialization {
                    message: format!(
                        "An account must be a JSON object {{\"id\", \"roles\"}}: {err}"
                    ),
                })?;
            let account = entry
                .into_config()
                .map_err(|message| ApiError::Validation {
                    message,
                    reason: super::error::ValidationReason::FieldValidationFailed,
                    fields: vec![],
                })?;
            tracing::info!(account = %account.id, roles = account.roles.len(), "account configured");
            service
                .accounts_mut()
                .put(account)
                .map_err(|message| ApiError::Validation {
                    message,
                    reason: super::error::ValidationReason::FieldValidationFailed,
                    fields: vec![],
                })?;
            Ok(Output::Json(accounts_json(service)))
        }
        (Method::POST, "/roles/revoke" | "/roles/restore") => {
            let role = parse_role_arn_body(body)?;
            let revoke = path.ends_with("/revoke");
            let mut accounts = service.accounts_mut();
            if revoke {
                accounts.revoke(&role);
            } else {
                accounts.restore(&role);
            }
            let revoked = accounts.is_revoked(&role.account_id, &role.name);
            tracing::info!(role = %role.arn, revoked, "role revocation changed");
            Ok(Output::Json(
                json!({ "roleArn": role.arn, "revoked": revoked }),
            ))
        }
        (Method::GET, "/health") => Ok(Output::Json(json!({ "status": "ok" }))),
        _ => Err(ApiError::UnknownOperation {
            message: format!("No emulator admin endpoint at {method} {path}"),
        }),
    }
}

fn scopes_json(service: &Service) -> Value {
    let scopes: Vec<Value> = service
        .scope_summaries()
        .into_iter()
        .map(|summary| {
            json!({
                "accountId": summary.scope.account_id,
                "region": summary.scope.region,
                "rooms": summary.rooms,
                "loggingConfigurations": summary.logging_configurations,
            })
        })
        .collect();
    json!({ "scopes": scopes })
}

fn accounts_json(service: &Service) -> Value {
    let accounts = service.accounts();
    let configured: Vec<Value> = accounts
        .configured()
        .map(|account| {
            let roles: Vec<Value> = account
                .roles
                .iter()
                .map(|role| {
                    json!({
                        "name": role.name,
                        "externalId": role.external_id,
                        "trustedPrincipals": role.trusted_principals,
                        "maxSessionDuration": role.max_session_duration.map(|d| d.as_secs()),
                    })
                })
                .collect();
            json!({ "id": account.id, "roles": roles })
        })
        .collect();
    json!({
        "defaultAccountId": accounts.default_account(),
        "accounts": configured,
        "revokedRoles": accounts.revoked_roles(),
    })
}

fn parse_role_arn_body(body: &[u8]) -> Result<RoleArn, ApiError> {
    let object: Map<String, Value> =
        serde_json::from_slice(body).map_err(|err| ApiError::Serialization {
            message: format!("Expected {{\"roleArn\": \"arn:aws:iam::…:role/…\"}}: {err}"),
        })?;
    let text = object
        .get("roleArn")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::field("roleArn", "a role ARN is required"))?;
    RoleArn::parse(text).ok_or_else(|| {
        ApiError::field(
            "roleArn",
            format!("{text:?} is not arn:aws:iam::<12-digit account>:role/<name>"),
        )
    })
}

fn requests_json(requests: &[RequestRecord]) -> Value {
    let requests: Vec<Value> = requests
        .iter()
        .map(|request| {
            json!({
                "sequence": request.sequence,
                "operation": request.operation,
                "outcome": request.outcome,
                "app": request.app.as_deref(),
            })
        })
        .collect();
    json!({ "requests": requests })
}

fn settings_json(settings: &RuntimeSettings) -> Value {
    json!({
        "loggingTransitionDelay": format_duration(settings.logging_transition_delay),
        "failTransitions": settings.fail_transitions.names(),
        "enforceQuotas": settings.enforce_quotas,
        "roomQuota": settings.room_quota,
        "loggingConfigurationQuota": settings.logging_configuration_quota,
        "faultRate": settings.fault_rate,
        "lostResponseRate": settings.lost_response_rate,
        "lateCommitRate": settings.late_commit_rate,
        "lateCommitDelay": format_duration(settings.late_commit_delay),
        "extraLatency": format_duration(settings.extra_latency),
        "credentialLifetime": settings.credential_lifetime.map(format_duration),
        "lambdaEndpoint": settings.lambda.endpoint.as_ref().map(LambdaEndpoint::as_str),
        "lambdaFunctionEndpoints": settings
            .lambda
            .function_endpoints
            .iter()
            .map(|(function, endpoint)| (function.clone(), json!(endpoint.as_str())))
            .collect::<Map<String, Value>>(),
        "reviewTimeout": format_duration(settings.lambda.review_timeout),
    })
}

fn format_duration(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// Requested changes to the runtime settings; `None` = keep.
#[derive(Default)]
struct SettingsChanges {
    logging_transition_delay: Option<Duration>,
    fail_transitions: Option<TransitionFailures>,
    enforce_quotas: Option<bool>,
    room_quota: Option<Option<u32>>,
    logging_configuration_quota: Option<u32>,
    fault_rate: Option<f64>,
    lost_response_rate: Option<f64>,
    late_commit_rate: Option<f64>,
    late_commit_delay: Option<Duration>,
    extra_latency: Option<Duration>,
    credential_lifetime: Option<Option<Duration>>,
    lambda_endpoint: Option<Option<LambdaEndpoint>>,
    lambda_function_endpoints: Option<BTreeMap<String, LambdaEndpoint>>,
    review_timeout: Option<Duration>,
}

impl SettingsChanges {
    fn apply(self, settings: &mut RuntimeSettings) {
        if let Some(value) = self.logging_transition_delay {
            settings.logging_transition_delay = value;
        }
        if let Some(value) = self.fail_transitions {
            settings.fail_transitions = value;
        }
        if let Some(value) = self.enforce_quotas {
            settings.enforce_quotas = value;
        }
        if let Some(value) = self.room_quota {
            settings.room_quota = value;
        }
        if let Some(value) = self.logging_configuration_quota {
            settings.logging_configuration_quota = value;
        }
        if let Some(value) = self.fault_rate {
            settings.fault_rate = value;
        }
        if let Some(value) = self.lost_response_rate {
            settings.lost_response_rate = value;
        }
        if let Some(value) = self.late_commit_rate {
            settings.late_commit_rate = value;
        }
        if let Some(value) = self.late_commit_delay {
            settings.late_commit_delay = value;
        }
        if let Some(value) = self.extra_latency {
            settings.extra_latency = value;
        }
        if let Some(value) = self.credential_lifetime {
            settings.credential_lifetime = value;
        }
        if let Some(value) = self.lambda_endpoint {
            settings.lambda.endpoint = value;
        }
        if let Some(value) = self.lambda_function_endpoints {
            settings.lambda.function_endpoints = value;
        }
        if let Some(value) = self.review_timeout {
            settings.lambda.review_timeout = value;
        }
    }
}

fn parse_settings_changes(body: &[u8]) -> Result<SettingsChanges, ApiError> {
    let object: Map<String, Value> =
        serde_json::from_slice(if body.is_empty() { b"{}" } else { body }).map_err(|err| {
            ApiError::Serialization {
                message: format!("Settings must be a JSON object: {err}"),
            }
        })?;
    let mut changes = SettingsChanges::default();
    let bad = |field: &str, expected: &str| ApiError::field(field, format!("expected {expected}"));
    let duration = |field: &str, value: &Value| -> Result<Duration, ApiError> {
        match value {
            Value::String(text) => {
                parse_duration(text).map_err(|message| ApiError::field(field, message))
            }
            Value::Number(number) => number
                .as_f64()
                .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                .ok_or_else(|| bad(field, "a non-negative number of seconds")),
            _ => Err(bad(
                field,
                "a duration such as \"2s\" or a number of seconds",
            )),
        }
    };
    let rate = |field: &str, value: &Value| -> Result<f64, ApiError> {
        value
            .as_f64()
            .ok_or_else(|| bad(field, "a number between 0 and 1"))
    };
    let count = |field: &str, value: &Value| -> Result<u32, ApiError> {
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(field, "a non-negative integer"))
    };
    for (key, value) in &object {
        match key.as_str() {
            "loggingTransitionDelay" => {
                changes.logging_transition_delay = Some(duration(key, value)?)
            }
            "extraLatency" => changes.extra_latency = Some(duration(key, value)?),
            "credentialLifetime" => {
                changes.credential_lifetime = Some(if value.is_null() {
                    None
                } else {
                    Some(duration(key, value)?)
                });
            }
            "lateCommitDelay" => changes.late_commit_delay = Some(duration(key, value)?),
            "reviewTimeout" => changes.review_timeout = Some(duration(key, value)?),
            "lambdaEndpoint" => {
                changes.lambda_endpoint = Some(match value {
                    Value::Null => None,
                    Value::String(url) => Some(
                        LambdaEndpoint::parse(url)
                            .map_err(|message| ApiError::field(key, message))?,
                    ),
                    _ => return Err(bad(key, "an http:// URL or null")),
                });
            }
            "lambdaFunctionEndpoints" => {
                let Value::Object(object) = value else {
                    return Err(bad(key, "an object of FUNCTION: URL"));
                };
                let mut endpoints = BTreeMap::new();
                for (function, url) in object {
                    let url = url
                        .as_str()
                        .ok_or_else(|| bad(key, "an object of FUNCTION: URL"))?;
                    let endpoint = LambdaEndpoint::parse(url)
                        .map_err(|message| ApiError::field(key, message))?;
                    endpoints.insert(function.clone(), endpoint);
                }
                changes.lambda_function_endpoints = Some(endpoints);
            }
            "failTransitions" => {
                let names = match value {
                    Value::Array(items) => items
                        .iter()
                        .map(|item| item.as_str().ok_or_else(|| bad(key, "a list of strings")))
                        .collect::<Result<Vec<&str>, ApiError>>()?,
                    Value::String(text) => text.split(',').collect(),
                    _ => return Err(bad(key, "a list such as [\"create\", \"delete\"]")),
                };
                changes.fail_transitions = Some(
                    TransitionFailures::from_names(names)
                        .map_err(|message| ApiError::field(key, message))?,
                );
            }
            "enforceQuotas" => {
                changes.enforce_quotas = Some(value.as_bool().ok_or_else(|| bad(key, "a boolean"))?)
            }
            "roomQuota" => {
                changes.room_quota = Some(if value.is_null() {
                    None
                } else {
                    Some(count(key, value)?)
                });
            }
            "loggingConfigurationQuota" => {
                changes.logging_configuration_quota = Some(count(key, value)?)
            }
            "faultRate" => changes.fault_rate = Some(rate(key, value)?),
            "lostResponseRate" => changes.lost_response_rate = Some(rate(key, value)?),
            "lateCommitRate" => changes.late_commit_rate = Some(rate(key, value)?),
            other => return Err(ApiError::field(other, "unknown setting")),
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmulatorConfig;

    fn apply(body: &str) -> Result<RuntimeSettings, ApiError> {
        let mut settings = RuntimeSettings {
            room_quota: Some(5),
            ..EmulatorConfig::default().runtime_settings()
        };
        parse_settings_changes(body.as_bytes())?.apply(&mut settings);
        Ok(settings)
    }

    #[test]
    fn settings_changes_apply_only_what_is_given() {
        let settings = apply(r#"{"loggingTransitionDelay": "2s", "failTransitions": "create,delete", "faultRate": 0.5, "lostResponseRate": 0.25}"#)
            .expect("valid");
        assert_eq!(settings.logging_transition_delay, Duration::from_secs(2));
        assert_eq!(
            settings.fail_transitions,
            TransitionFailures {
                create: true,
                update: false,
                delete: true
            }
        );
        assert_eq!(settings.fault_rate, 0.5);
        assert_eq!(settings.lost_response_rate, 0.25);
        assert_eq!(settings.room_quota, Some(5), "untouched");
        let late = apply(r#"{"lateCommitRate": 0.05, "lateCommitDelay": "3s"}"#).expect("valid");
        assert_eq!(
            (late.late_commit_rate, late.late_commit_delay),
            (0.05, Duration::from_secs(3))
        );
        assert_eq!(
            apply(r#"{"roomQuota": null}"#).expect("valid").room_quota,
            None
        );
        assert_eq!(
            apply(r#"{"roomQuota": 7, "extraLatency": 0.25}"#)
                .expect("valid")
                .extra_latency,
            Duration::from_millis(250)
        );
        assert_eq!(
            apply("").expect("empty body changes nothing").room_quota,
            Some(5)
        );
        assert_eq!(
            apply(r#"{"credentialLifetime": "60s"}"#)
                .expect("valid")
                .credential_lifetime,
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            apply(r#"{"credentialLifetime": null}"#)
                .expect("valid")
                .credential_lifetime,
            None
        );
    }

    #[test]
    fn lambda_settings_change_at_run_time() {
        let settings = apply(
            r#"{"lambdaEndpoint": "http://127.0.0.1:8080/2015-03-31/functions/function/invocations",
                "lambdaFunctionEndpoints": {"moderate": "http://127.0.0.1:3001"}, "reviewTimeout": "2s"}"#,
        )
        .expect("valid");
        assert_eq!(
            settings
                .lambda
                .endpoint
                .as_ref()
                .map(LambdaEndpoint::as_str),
            Some("http://127.0.0.1:8080/2015-03-31/functions/function/invocations")
        );
        assert_eq!(
            settings
                .lambda
                .function_endpoints
                .get("moderate")
                .map(LambdaEndpoint::as_str),
            Some("http://127.0.0.1:3001")
        );
        assert_eq!(settings.lambda.review_timeout, Duration::from_secs(2));
        let json = settings_json(&settings);
        assert_eq!(json["reviewTimeout"], "2000ms");
        assert_eq!(
            json["lambdaFunctionEndpoints"],
            json!({"moderate": "http://127.0.0.1:3001"})
        );
        let cleared =
            apply(r#"{"lambdaEndpoint": null, "lambdaFunctionEndpoints": {}}"#).expect("valid");
        assert_eq!(cleared.lambda.endpoint, None);
        assert!(cleared.lambda.function_endpoints.is_empty());
        assert_eq!(settings_json(&cleared)["lambdaEndpoint"], Value::Null);
        for bad in [
            r#"{"lambdaEndpoint": "https://x:1"}"#,
            r#"{"lambdaEndpoint": 5}"#,
            r#"{"lambdaFunctionEndpoints": {"f": "ftp://x"}}"#,
            r#"{"lambdaFunctionEndpoints": ["http://x:1"]}"#,
        ] {
            assert!(apply(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn bad_settings_name_the_field() {
        for (body, field) in [
            (r#"{"faultRat": 1}"#, "faultRat"),
            (r#"{"lostResponseRate": "all"}"#, "lostResponseRate"),
            (r#"{"lateCommitRate": "some"}"#, "lateCommitRate"),
            (r#"{"roomQuota": -1}"#, "roomQuota"),
            (r#"{"enforceQuotas": "yes"}"#, "enforceQuotas"),
            (r#"{"failTransitions": ["explode"]}"#, "failTransitions"),
            (r#"{"extraLatency": "soon"}"#, "extraLatency"),
        ] {
            match apply(body) {
                Err(ApiError::Validation { fields, .. }) => {
                    assert_eq!(fields[0].name, field, "{body}")
                }
                other => panic!("{body}: expected a validation error, got {other:?}"),
            }
        }
        assert!(matches!(apply("[1]"), Err(ApiError::Serialization { .. })));
    }

    #[test]
    fn the_caller_is_the_user_agents_app_name() {
        let sdk = "aws-sdk-rust/1.3.9 ua/2.1 api/ivschat/1.120.0 os/linux lang/rust/1.95.0 m/E app/first_1.a";
        let long = format!("app/{}", "a".repeat(MAX_APP_NAME + 1));
        // (User-Agent, X-Amz-User-Agent) -> app
        let cases = [
            (Some(sdk), None, Some("first_1.a")),
            (None, Some(sdk), Some("first_1.a")),
            (Some("aws-cli/2.15 app/cli"), Some(sdk), Some("cli")),
            // No app token in the User-Agent: the SDK's other header still tells.
            (Some("curl/8.5"), Some(sdk), Some("first_1.a")),
            (Some("aws-sdk-rust/1.3.9 os/linux"), None, None),
            (Some("app/"), None, None),
            (Some("app/bad(name)"), None, None),
            (Some(long.as_str()), None, None),
            (None, None, None),
        ];
        for (user_agent, amz_user_agent, expected) in cases {
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("user-agent", user_agent),
                ("x-amz-user-agent", amz_user_agent),
            ] {
                if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                    headers.insert(name, value);
                }
            }
            assert_eq!(
                caller_app(&headers),
                expected,
                "{user_agent:?} {amz_user_agent:?}"
            );
        }
    }

    #[test]
    fn the_request_log_renders_as_json() {
        let json = requests_json(&[RequestRecord {
            sequence: 7,
            operation: "CreateRoom",
            outcome: SUCCESS,
            app: Some(std::sync::Arc::from("first")),
        }]);
        assert_eq!(
            json,
            serde_json::json!({"requests": [{"sequence": 7, "operation": "CreateRoom", "outcome": "success", "app": "first"}]})
        );
    }

    #[test]
    fn settings_render_as_json() {
        let settings = EmulatorConfig {
            room_quota: Some(2),
            ..EmulatorConfig::default()
        }
        .runtime_settings();
        let json = settings_json(&settings);
        assert_eq!(json["roomQuota"], 2);
        assert_eq!(json["loggingTransitionDelay"], "0ms");
        assert_eq!(json["failTransitions"], serde_json::json!([]));
        assert_eq!(json["lostResponseRate"], 0.0);
    }
}
