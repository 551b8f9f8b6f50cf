//! STS on the emulator's listener: the AWS query protocol (`POST /`, a form body `Action=…&Version=2011-06-15`,
//! XML answers) for `AssumeRole`, `AssumeRoleWithWebIdentity` and `GetCallerIdentity`, with the shapes and
//! error codes of aws-accounts-regions.md §1.
//!
//! A request is STS's ([`is_sts_request`]) when it is `POST /` and its SigV4 credential scope names the
//! service `sts`, or when it is unsigned and its form says `Action=AssumeRoleWithWebIdentity` (the one
//! unsigned STS operation). IVS Chat binds nothing to `POST /`, so the two never meet.
//!
//! # Behaviour
//! - **Signing**: AssumeRole and GetCallerIdentity are SigV4-verified for the service `sts` in any region the
//!   emulator serves, or `us-east-1` (the legacy global endpoint's scope), with the static key or a session
//!   key (whose `X-Amz-Security-Token` must match, see [`super::identity`]). Failures, as STS words them:
//!   no `Authorization`: 403 `MissingAuthenticationToken`; unknown key or wrong session token: 403
//!   `InvalidClientTokenId`; a bad signature or scope: 403 `SignatureDoesNotMatch`; an expired session: 400
//!   `ExpiredTokenException` (the model's code and status).
//!   AssumeRoleWithWebIdentity is never verified (the model marks it `noAuth`): an `Authorization` header on
//!   it is ignored.
//! - **Validation** (400 `ValidationError`, `N validation error(s) detected: Value '…' at 'roleArn' failed to
//!   satisfy constraint: …`, one clause per violation): RoleArn (required, 20-2048), RoleSessionName
//!   (required, 2-64, `[\w+=,.@-]*`), DurationSeconds (an integer, 900-43200), ExternalId (2-1224,
//!   `[\w+=,.@:\/-]*`), WebIdentityToken (required, 4-20000). A RoleArn that is no `arn:aws:iam::<12
//!   digits>:role/<name>` is a ValidationError too. Session policies, policy ARNs, tags, source identity and
//!   MFA parameters are accepted and not applied.
//! - **AssumeRole**: a session of a revoked role (or of one its account no longer lists) calling it, a role
//!   that does not exist, one that does not trust
//!   the caller, a missing or wrong ExternalId, or a revoked role: 403 `AccessDenied`, `User: <caller ARN> is
//!   not authorized to perform: sts:AssumeRole on resource: <role ARN>` (the message does not tell which).
//!   Then DurationSeconds (default 3600) above the role's maximum session duration is a ValidationError
//!   (`The requested DurationSeconds exceeds the MaxSessionDuration set for this role.`), and a session
//!   caller (role chaining) asking for more than 3600 s one too (`… exceeds the 1 hour session limit for
//!   roles assumed by role chaining.`).
//! - **AssumeRoleWithWebIdentity**: the token is **not verified**: any 4-20000 characters are accepted. The
//!   role must exist (default account: any name; a configured account: its roles) and not be revoked, else
//!   403 `AccessDenied` (`Not authorized to perform sts:AssumeRoleWithWebIdentity`); trust lists and
//!   external ids do not apply. When the token is a JWT, its (unverified) `sub`, `aud` and `iss` are echoed
//!   as `SubjectFromWebIdentityToken`, `Audience` and `Provider`.
//! - **Credentials**: `ASIA` + 16 `[A-Z0-9]`, a 40-character secret, an opaque token; `Expiration` = now +
//!   the duration, capped by the credential lifetime setting, rounded down to the second (the time the
//!   emulator stops accepting them). `AssumedRoleUser` is `AROA…:<session>` and
//!   `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
//! - **GetCallerIdentity** answers for the static user (`AIDA…`, the default account,
//!   `arn:aws:iam::<account>:user/emulator`) and for sessions (also of revoked roles: it needs no permission).
//! - **Anything else**: an unknown or missing Action, or a Version other than `2011-06-15`: 400
//!   `InvalidAction`.
//! - **Test switches**: injected faults, extra latency, lost responses and TPS quotas apply to IVS Chat only;
//!   STS always answers at once. Role ARNs need 12-digit account ids, so roles of the default account can be
//!   assumed only when `--account-id` has 12 digits (the default does).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use jiff::Timestamp;
use percent_encoding::percent_decode_str;

use crate::accounts::{
    DEFAULT_MAX_SESSION_DURATION, RoleArn, matches_external_id_pattern, matches_name_pattern,
};
use crate::identity::{self, AuthFailure, Caller};
use crate::ids;
use crate::metrics::SUCCESS;
use crate::service::Service;
use crate::sessions::{self, Session, SessionRequest};
use crate::sigv4::{self, AuthError, SignedParts};

/// The XML namespace of every STS answer.
pub const XML_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The API version every request must name.
pub const API_VERSION: &str = "2011-06-15";
/// The SigV4 signing name.
pub const SIGNING_SERVICE: &str = "sts";
/// The scope of the legacy global endpoint, accepted beside the regions served.
pub const GLOBAL_ENDPOINT_REGION: &str = "us-east-1";
/// The session limit of role chaining (a session assuming a role).
pub const ROLE_CHAINING_LIMIT: Duration = Duration::from_secs(3600);

const DURATION_SECONDS: std::ops::RangeInclusive<u64> = 900..=43200;
const ROLE_ARN_LENGTH: std::ops::RangeInclusive<usize> = 20..=2048;
const SESSION_NAME_LENGTH: std::ops::RangeInclusive<usize> = 2..=64;
const EXTERNAL_ID_LENGTH: std::ops::RangeInclusive<usize> = 2..=1224;
const WEB_IDENTITY_TOKEN_LENGTH: std::ops::RangeInclusive<usize> = 4..=20000;

/// The operations served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AssumeRole,
    AssumeRoleWithWebIdentity,
    GetCallerIdentity,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::AssumeRole => "AssumeRole",
            Action::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            Action::GetCallerIdentity => "GetCallerIdentity",
        }
    }

    fn from_name(name: &str) -> Option<Action> {
        [
            Action::AssumeRole,
            Action::AssumeRoleWithWebIdentity,
            Action::GetCallerIdentity,
        ]
        .into_iter()
        .find(|action| action.name() == name)
    }
}

/// The metrics label of a request that names no served action.
pub const UNKNOWN_ACTION: &str = "unknown";

/// An STS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl StsError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> StsError {
        StsError {
            status,
            code,
            message: message.into(),
        }
    }

    fn access_denied(message: impl Into<String>) -> StsError {
        StsError::new(403, "AccessDenied", message)
    }

    fn validation(message: impl Into<String>) -> StsError {
        StsError::new(400, "ValidationError", message)
    }

    fn from_auth(failure: AuthFailure) -> StsError {
        match failure {
            AuthFailure::Expired => StsError::new(
                400,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ),
            AuthFailure::Signature(AuthError::MissingAuthentication) => StsError::new(
                403,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ),
            AuthFailure::Signature(AuthError::UnrecognizedClient) => StsError::new(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ),
            AuthFailure::Signature(AuthError::InvalidSignature(message)) => {
                StsError::new(403, "SignatureDoesNotMatch", message)
            }
        }
    }
}

// ---- routing -------------------------------------------------------------------------------------------------

/// Whether a request is for STS (see the module docs).
pub fn is_sts_request(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    if method != Method::POST || path != "/" {
        return false;
    }
    match sigv4::scope_service(headers) {
        Some(service) => service == SIGNING_SERVICE,
        None => {
            !headers.contains_key(header::AUTHORIZATION)
                && parse_form(body).get("Action").map(String::as_str)
                    == Some(Action::AssumeRoleWithWebIdentity.name())
        }
    }
}

/// Answers one STS request and counts it.
pub fn handle(
    service: &Service,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let request_id = ids::new_request_id();
    let form = parse_form(body);
    let action = form.get("Action").and_then(|name| Action::from_name(name));
    let request = SignedParts {
        method,
        uri,
        headers,
        body,
    };
    let result = answer(service, &request, &form, action, Timestamp::now());
    let label = action.map_or(UNKNOWN_ACTION, Action::name);
    let outcome = match &result {
        Ok(_) => SUCCESS,
        Err(error) => error.code,
    };
    service.metrics.record_sts(label, outcome);
    if let Err(error) = &result {
        tracing::debug!(action = label, %request_id, code = error.code, message = %error.message, "STS request refused");
    }
    respond(result, action, &request_id)
}

fn answer(
    service: &Service,
    request: &SignedParts<'_>,
    form: &BTreeMap<String, String>,
    action: Option<Action>,
    now: Timestamp,
) -> Result<String, StsError> {
    let version = form.get("Version").map_or("", String::as_str);
    let action = match action {
        Some(action) if version == API_VERSION => action,
        _ => {
            return Err(StsError::new(
                400,
                "InvalidAction",
                format!(
                    "Could not find operation {} for version {version}",
                    form.get("Action").map_or("", String::as_str)
                ),
            ));
        }
    };
    if action == Action::AssumeRoleWithWebIdentity {
        return assume_role_with_web_identity(service, form, now);
    }
    let mut regions: Vec<&str> = service.regions.iter().map(String::as_str).collect();
    if !regions.contains(&GLOBAL_ENDPOINT_REGION) {
        regions.push(GLOBAL_ENDPOINT_REGION);
    }
    let caller = identity::authenticate(service, request, &regions, SIGNING_SERVICE, now)
        .map_err(StsError::from_auth)?;
    if action == Action::AssumeRole {
        assume_role(service, &caller, form, now)
    } else {
        Ok(get_caller_identity(&caller))
    }
}

// ---- the form ------------------------------------------------------------------------------------------------

/// Decodes an `application/x-www-form-urlencoded` body (`+` is a space; invalid UTF-8 becomes U+FFFD); the
/// first value of a repeated name wins.
pub fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body);
    let decode = |part: &str| {
        percent_decode_str(&part.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut form = BTreeMap::new();
    for pair in text.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        form.entry(decode(name)).or_insert_with(|| decode(value));
    }
    form
}

// ---- validation (pure) ---------------------------------------------------------------------------------------

/// Collects constraint violations in AWS's wording, then turns them into one ValidationError.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn add(&mut self, field: &str, value: Option<&str>, constraint: &str) {
        let value = value.map_or_else(|| "null".to_owned(), |value| format!("'{value}'"));
        self.0.push(format!(
            "Value {value} at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn length(&mut self, field: &str, value: &str, range: &std::ops::RangeInclusive<usize>) {
        let length = value.chars().count();
        if length < *range.start() {
            self.add(
                field,
                Some(value),
                &format!(
                    "Member must have length greater than or equal to {}",
                    range.start()
                ),
            );
        } else if length > *range.end() {
            self.add(
                field,
                Some(value),
                &format!(
                    "Member must have length less than or equal to {}",
                    range.end()
                ),
            );
        }
    }

    fn required<'f>(
        &mut self,
        form: &'f BTreeMap<String, String>,
        name: &str,
        field: &str,
    ) -> Option<&'f str> {
        let value = form.get(name).map(String::as_str);
        if value.is_none() {
            self.add(field, None, "Member must not be null");
        }
        value
    }

    fn finish(self) -> Result<(), StsError> {
        match self.0.len() {
            0 => Ok(()),
            count => Err(StsError::validation(format!(
                "{count} validation {} detected: {}",
                if count == 1 { "error" } else { "errors" },
                self.0.join("; ")
            ))),
        }
    }
}

/// The parameters AssumeRole and AssumeRoleWithWebIdentity share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRequest {
    pub role: RoleArn,
    pub session_name: String,
    /// `DurationSeconds`, when given.
    pub duration: Option<Duration>,
}

fn role_request(
    form: &BTreeMap<String, String>,
    violations: &mut Violations,
) -> (Option<String>, Option<String>, Option<Duration>) {
    let role_arn = violations.required(form, "RoleArn", "roleArn");
    if let Some(arn) = role_arn {
        violations.length("roleArn", arn, &ROLE_ARN_LENGTH);
    }
    let session_name = violations.required(form, "RoleSessionName", "roleSessionName");
    if let Some(name) = session_name {
        violations.length("roleSessionName", name, &SESSION_NAME_LENGTH);
        if !matches_name_pattern(name) {
            violations.add(
                "roleSessionName",
                Some(name),
                "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
            );
        }
    }
    let duration = form
        .get("DurationSeconds")
        .and_then(|text| match text.parse::<u64>() {
            Ok(seconds) if DURATION_SECONDS.contains(&seconds) => {
                Some(Duration::from_secs(seconds))
            }
            Ok(seconds) if seconds < *DURATION_SECONDS.start() => {
                violations.add(
                    "durationSeconds",
                    Some(text),
                    "Member must have value greater than or equal to 900",
                );
                None
            }
            Ok(_) => {
                violations.add(
                    "durationSeconds",
                    Some(text),
                    "Member must have value less than or equal to 43200",
                );
                None
            }
            Err(_) => {
                violations.add("durationSeconds", Some(text), "Member must be an integer");
                None
            }
        });
    (
        role_arn.map(str::to_owned),
        session_name.map(str::to_owned),
        duration,
    )
}

fn finish_role_request(
    violations: Violations,
    (role_arn, session_name, duration): (Option<String>, Option<String>, Option<Duration>),
) -> Result<RoleRequest, StsError> {
    violations.finish()?;
    let role_arn = role_arn.unwrap_or_default();
    let role = RoleArn::parse(&role_arn).ok_or_else(|| {
        StsError::validation(format!(
            "{role_arn} is not a valid role ARN (arn:aws:iam::<12-digit account id>:role/<name>)"
        ))
    })?;
    Ok(RoleRequest {
        role,
        session_name: session_name.unwrap_or_default(),
        duration,
    })
}

/// AssumeRole's parameters, validated: the role request and the ExternalId.
pub fn parse_assume_role(
    form: &BTreeMap<String, String>,
) -> Result<(RoleRequest, Option<String>), StsError> {
    let mut violations = Violations::default();
    let shared = role_request(form, &mut violations);
    let external_id = form.get("ExternalId").cloned();
    if let Some(external_id) = &external_id {
        violations.length("externalId", external_id, &EXTERNAL_ID_LENGTH);
        if !matches_external_id_pattern(external_id) {
            violations.add(
                "externalId",
                Some(external_id),
                "Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
            );
        }
    }
    Ok((finish_role_request(violations, shared)?, external_id))
}

/// AssumeRoleWithWebIdentity's parameters, validated: the role request and the token.
pub fn parse_assume_role_with_web_identity(
    form: &BTreeMap<String, String>,
) -> Result<(RoleRequest, String), StsError> {
    let mut violations = Violations::default();
    let shared = role_request(form, &mut violations);
    let token = violations
        .required(form, "WebIdentityToken", "webIdentityToken")
        .map(str::to_owned);
    if let Some(token) = &token {
        // The token is secret: its clause names its length, not its value.
        let length = token.chars().count();
        if !WEB_IDENTITY_TOKEN_LENGTH.contains(&length) {
            violations.0.push(format!(
                "Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between {} and {} (it has {length})",
                WEB_IDENTITY_TOKEN_LENGTH.start(),
                WEB_IDENTITY_TOKEN_LENGTH.end()
            ));
        }
    }
    Ok((
        finish_role_request(violations, shared)?,
        token.unwrap_or_default(),
    ))
}

/// The session's lifetime: the requested duration (default 1 h) checked against the role's maximum and,
/// for a session caller, the role-chaining limit; then capped by the credential lifetime setting.
pub fn session_lifetime(
    requested: Option<Duration>,
    role_maximum: Duration,
    chained: bool,
    cap: Option<Duration>,
) -> Result<Duration, StsError> {
    let requested = requested.unwrap_or(DEFAULT_MAX_SESSION_DURATION);
    if chained && requested > ROLE_CHAINING_LIMIT {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if requested > role_maximum {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(cap.map_or(requested, |cap| requested.min(cap)))
}

// ---- the actions ---------------------------------------------------------------------------------------------

fn assume_role(
    service: &Service,
    caller: &Caller,
    form: &BTreeMap<String, String>,
    now: Timestamp,
) -> Result<String, StsError> {
    let (request, external_id) = parse_assume_role(form)?;
    let denied = || {
        StsError::access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
            caller.principal.arn(),
            request.role.arn
        ))
    };
    let accounts = service.accounts();
    if let Some(session) = &caller.session
        && accounts
            .session_denial(&session.account_id, &session.role_name)
            .is_some()
    {
        return Err(denied());
    }
    let role = accounts
        .authorize(&caller.principal, &request.role, external_id.as_deref())
        .map_err(|_| denied())?;
    drop(accounts);
    let lifetime = session_lifetime(
        request.duration,
        role.max_session_duration,
        caller.session.is_some(),
        service.traffic.settings().credential_lifetime,
    )?;
    let session = issue(service, &request, lifetime, now);
    Ok(credentials_response("AssumeRole", &session, ""))
}

fn assume_role_with_web_identity(
    service: &Service,
    form: &BTreeMap<String, String>,
    now: Timestamp,
) -> Result<String, StsError> {
    let (request, token) = parse_assume_role_with_web_identity(form)?;
    let role = service
        .accounts()
        .authorize_web_identity(&request.role)
        .map_err(|_| {
            StsError::access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
        })?;
    let lifetime = session_lifetime(
        request.duration,
        role.max_session_duration,
        false,
        service.traffic.settings().credential_lifetime,
    )?;
    let session = issue(service, &request, lifetime, now);
    let claims = unverified_claims(&token);
    let mut extra = String::new();
    if let Some(subject) = &claims.subject {
        let _ = write!(
            extra,
            "<SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken>",
            xml_escape(subject)
        );
    }
    if let Some(audience) = &claims.audience {
        let _ = write!(extra, "<Audience>{}</Audience>", xml_escape(audience));
    }
    if let Some(provider) = &claims.provider {
        let _ = write!(extra, "<Provider>{}</Provider>", xml_escape(provider));
    }
    Ok(credentials_response(
        "AssumeRoleWithWebIdentity",
        &session,
        &extra,
    ))
}

fn issue(service: &Service, request: &RoleRequest, lifetime: Duration, now: Timestamp) -> Session {
    service.sessions().issue(
        &SessionRequest {
            account_id: &request.role.account_id,
            role_name: &request.role.name,
            role_arn: &request.role.arn,
            session_name: &request.session_name,
            lifetime,
        },
        now,
    )
}

fn get_caller_identity(caller: &Caller) -> String {
    let user_id = sessions::principal_id(&caller.principal);
    format!(
        "<GetCallerIdentityResult><UserId>{}</UserId><Account>{}</Account><Arn>{}</Arn></GetCallerIdentityResult>",
        xml_escape(&user_id),
        xml_escape(caller.principal.account_id()),
        xml_escape(&caller.principal.arn())
    )
}

/// `<{action}Result>` with Credentials and AssumedRoleUser, then `extra` members.
fn credentials_response(action: &str, session: &Session, extra: &str) -> String {
    format!(
        "<{action}Result><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
         <AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>{extra}</{action}Result>",
        xml_escape(&session.access_key_id),
        xml_escape(&session.secret_access_key),
        xml_escape(&session.session_token),
        session.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        xml_escape(&session.assumed_role_id),
        xml_escape(&session.principal().arn()),
    )
}

/// What a JWT says about itself, unverified.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Claims {
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub provider: Option<String>,
}

/// The `sub`, first `aud` and `iss` (without its scheme) of a JWT's payload; nothing for other tokens.
pub fn unverified_claims(token: &str) -> Claims {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Claims::default();
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))
    else {
        return Claims::default();
    };
    let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice(&bytes) else {
        return Claims::default();
    };
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let audience = match claims.get("aud") {
        Some(serde_json::Value::Array(items)) => {
            items.first().and_then(|v| v.as_str()).map(str::to_owned)
        }
        _ => text("aud"),
    };
    Claims {
        subject: text("sub"),
        audience,
        provider: text("iss").map(|issuer| {
            issuer
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_owned()
        }),
    }
}

// ---- the wire ------------------------------------------------------------------------------------------------

/// Escapes text content (every value goes into element content, never into an attribute, so quotes stay:
/// AWS's messages read `Value 'x' at 'roleArn'`).
pub fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The XML document of an answer: `<{Action}Response>` around the result and the request id, or the
/// `ErrorResponse`.
pub fn response_document(
    result: &Result<String, StsError>,
    action: Option<Action>,
    request_id: &str,
) -> String {
    match (result, action) {
        (Ok(result), Some(action)) => format!(
            "<{name}Response xmlns=\"{XML_NAMESPACE}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{name}Response>",
            name = action.name()
        ),
        (Ok(_), None) => String::new(),
        (Err(error), _) => format!(
            "<ErrorResponse xmlns=\"{XML_NAMESPACE}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            if error.status >= 500 {
                "Receiver"
            } else {
                "Sender"
            },
            error.code,
            xml_escape(&error.message)
        ),
    }
}

fn respond(result: Result<String, StsError>, action: Option<Action>, request_id: &str) -> Response {
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(error) => StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
    };
    let document = response_document(&result, action, request_id);
    let mut response = Response::new(Body::from(document));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(text: &str) -> BTreeMap<String, String> {
        parse_form(text.as_bytes())
    }

    #[test]
    fn forms_decode_like_the_sdks_encode() {
        let parsed = form(
            "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fr&Name=a+b&Empty=&Action=x",
        );
        assert_eq!(parsed["Action"], "AssumeRole", "the first value wins");
        assert_eq!(parsed["RoleArn"], "arn:aws:iam::111122223333:role/r");
        assert_eq!(parsed["Name"], "a b");
        assert_eq!(parsed["Empty"], "");
    }

    #[test]
    fn assume_role_parameters_are_validated_in_aws_words() {
        let ok = form(
            "RoleArn=arn:aws:iam::111122223333:role/ivs-operator&RoleSessionName=op&ExternalId=ext-123&DurationSeconds=900",
        );
        let (request, external_id) = parse_assume_role(&ok).expect("valid");
        assert_eq!(request.role.account_id, "111122223333");
        assert_eq!(request.duration, Some(Duration::from_secs(900)));
        assert_eq!(external_id.as_deref(), Some("ext-123"));

        let error = parse_assume_role(&form("RoleSessionName=a")).expect_err("invalid");
        assert_eq!(error.code, "ValidationError");
        assert_eq!(
            error.message,
            "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; \
             Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"
        );
        for (text, needle) in [
            (
                "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=a%20b",
                "regular expression pattern: [\\w+=,.@-]*",
            ),
            (
                "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=ab&DurationSeconds=899",
                "greater than or equal to 900",
            ),
            (
                "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=ab&DurationSeconds=43201",
                "less than or equal to 43200",
            ),
            (
                "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=ab&DurationSeconds=1h",
                "must be an integer",
            ),
            (
                "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=ab&ExternalId=x",
                "'externalId'",
            ),
            (
                "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=ab&ExternalId=a%20b",
                "[\\w+=,.@:\\/-]*",
            ),
            (
                "RoleArn=short&RoleSessionName=ab",
                "'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20",
            ),
            (
                "RoleArn=arn:aws:iam::111122223333:user/someone&RoleSessionName=ab",
                "is not a valid role ARN",
            ),
        ] {
            let error = parse_assume_role(&form(text)).expect_err(text);
            assert_eq!(
                (error.status, error.code),
                (400, "ValidationError"),
                "{text}"
            );
            assert!(error.message.contains(needle), "{text}: {}", error.message);
        }
    }

    #[test]
    fn web_identity_tokens_need_4_to_20000_characters() {
        let base = "RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=ab";
        assert!(
            parse_assume_role_with_web_identity(&form(&format!("{base}&WebIdentityToken=abcd")))
                .is_ok()
        );
        for token in ["abc".to_owned(), "a".repeat(20001)] {
            let error = parse_assume_role_with_web_identity(&form(&format!(
                "{base}&WebIdentityToken={token}"
            )))
            .expect_err("length");
            assert!(
                error.message.contains("'webIdentityToken'"),
                "{}",
                error.message
            );
            assert!(!error.message.contains(&token), "the token is not echoed");
        }
        let error = parse_assume_role_with_web_identity(&form(base)).expect_err("missing");
        assert!(error.message.contains("Value null at 'webIdentityToken'"));
    }

    #[test]
    fn lifetimes_respect_the_role_the_chain_and_the_cap() {
        let hour = Duration::from_secs(3600);
        assert_eq!(session_lifetime(None, hour, false, None), Ok(hour));
        assert_eq!(
            session_lifetime(
                Some(Duration::from_secs(7200)),
                Duration::from_secs(7200),
                false,
                None
            ),
            Ok(Duration::from_secs(7200))
        );
        let too_long = session_lifetime(Some(Duration::from_secs(7200)), hour, false, None)
            .expect_err("above the role's maximum");
        assert!(too_long.message.contains("MaxSessionDuration"));
        let chained = session_lifetime(
            Some(Duration::from_secs(3601)),
            Duration::from_secs(43200),
            true,
            None,
        )
        .expect_err("role chaining");
        assert!(chained.message.contains("role chaining"));
        assert_eq!(
            session_lifetime(Some(hour), hour, true, Some(Duration::from_secs(2))),
            Ok(Duration::from_secs(2)),
            "the cap goes below the 900 s minimum"
        );
    }

    #[test]
    fn jwt_claims_are_read_without_verification() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"system:serviceaccount:ns:sa","aud":["sts.amazonaws.com"],"iss":"https://oidc.example/id/1"}"#);
        let claims = unverified_claims(&format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"));
        assert_eq!(
            claims,
            Claims {
                subject: Some("system:serviceaccount:ns:sa".into()),
                audience: Some("sts.amazonaws.com".into()),
                provider: Some("oidc.example/id/1".into()),
            }
        );
        assert_eq!(unverified_claims("opaque-token"), Claims::default());
    }

    #[test]
    fn documents_have_the_query_protocol_shapes() {
        let error = StsError::access_denied("User: a is not <authorized>");
        let document = response_document(&Err(error), Some(Action::AssumeRole), "rid");
        assert_eq!(
            document,
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
             <Code>AccessDenied</Code><Message>User: a is not &lt;authorized&gt;</Message></Error>\
             <RequestId>rid</RequestId></ErrorResponse>"
        );
        let ok = response_document(
            &Ok("<GetCallerIdentityResult/>".into()),
            Some(Action::GetCallerIdentity),
            "rid",
        );
        assert_eq!(
            ok,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult/>\
             <ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        );
    }
}
