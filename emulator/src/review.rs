//! Message review handlers: for every SEND_MESSAGE to a room with a `messageReviewHandler`, the emulator calls
//! the AWS Lambda Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`, synchronous, SigV4 for
//! `lambda` with the emulator's static credentials) at a configured local endpoint, and delivers, rewrites or
//! refuses the message as the handler answers; the room's `fallbackResult` decides when the handler errs,
//! answers invalidly, is too slow or cannot be reached. Any local implementation of the Invoke API serves: the
//! AWS Lambda Runtime Interface Emulator (RIE), `sam local start-lambda`, LocalStack, `cargo lambda watch`. The
//! facts are in ivschat-review-handler.md.
//!
//! This module owns where a handler is invoked ([`LambdaEndpoint`], [`endpoint_for`]), the event sent
//! ([`event_payload`]), how an answer is read ([`read_answer`]), what it makes of the message ([`decide`]) and
//! the invocation itself ([`Reviewer`]). The pure parts come first; [`Reviewer`] is the I/O.
//!
//! # Choices where the sources say nothing (\[gap\])
//! - **Endpoint**: `--lambda-endpoint URL` for every handler, `--lambda-function-endpoint FUNCTION=URL` for
//!   one (FUNCTION is the handler ARN, or its part after `function:`, e.g. `moderate` or `moderate:live`);
//!   both are runtime settings too (`/_emulator/settings`). A URL with no path is a Lambda API base: the
//!   emulator appends `/2015-03-31/functions/{FunctionName}/invocations`, FunctionName being the part of the
//!   handler ARN after `function:`, percent-encoded as the SDKs do. A URL whose path ends in `/invocations` is
//!   the invocation URL itself: the RIE serves one function, always at
//!   `/2015-03-31/functions/function/invocations`. Only `http://` (local servers).
//! - **Without an endpoint** the handler cannot run: the `fallbackResult` decides, as if it had failed (what
//!   the emulator did before it could invoke handlers).
//! - **Account and region**: AWS invokes only a Lambda in the room's own account and region. A handler ARN of
//!   another one is not invoked; the `fallbackResult` decides.
//! - **Request**: `Content-Type: application/json`, `X-Amz-Invocation-Type: RequestResponse`, signed for the
//!   handler ARN's region. The event always has `Attributes` (`{}` when there are none) and a full `Sender`
//!   (`UserId`, `Attributes` of the chat token, `Ip` of the sender's connection); its `MessageId` is the `Id`
//!   of the MESSAGE that is delivered.
//! - **Timeout**: 200 ms (AWS's quota, not adjustable there; `--review-timeout` here, for machines where a
//!   handler's cold start takes longer), counted from when the message is reviewed.
//! - **One invocation at a time per endpoint**: the RIE serves one invocation at a time and crashes when a
//!   second arrives meanwhile (seen here: `ReserveFailed: AlreadyReserved`, then a nil-pointer panic). So an
//!   endpoint gets the next invocation only when it answered the one before (or after 15 minutes, Lambda's
//!   longest function timeout), even if that one's message has already fallen back. A message that waits for
//!   the endpoint past its timeout falls back without being invoked.
//! - **Answer**: valid is a JSON object with `ReviewResult` exactly `ALLOW` or `DENY`; on ALLOW a string
//!   `Content` of 1 to the room's `maximumMessageLength` code points; `Attributes`, when present, an object
//!   of strings. On ALLOW the returned `Attributes` replace the message's, and the message's stay when it
//!   returns none. DENY needs no `Content`; its `Attributes.Reason` is the sender's `ErrorMessage`.
//! - **Errors**: `X-Amz-Function-Error` (Lambda), a body that is a runtime's error object (`errorMessage` and
//!   `errorType`, what the RIE answers with status 200 when a handler raises), a status other than 2xx (a
//!   Lambda API error such as a 404 for an unknown function; cargo-lambda's function errors), a connection
//!   that fails, and a timeout each make the `fallbackResult` decide.
//! - **What clients see**: delivered → the MESSAGE (with the returned content and attributes) to every
//!   connection of the room, the sender's with its `RequestId`; denied → only the sender gets an ERROR 406
//!   with its `RequestId`, whose `ErrorMessage` is the handler's `Reason`, or says why the message was refused.
//! - **Counted** in `ivschat_emulator_message_reviews_total{outcome,result}` (see [`Outcome`]), and logged.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

use crate::store::FallbackResult;

/// The Lambda Invoke API's path: `{PREFIX}{FunctionName}{SUFFIX}`.
const INVOKE_PATH_PREFIX: &str = "/2015-03-31/functions/";
const INVOKE_PATH_SUFFIX: &str = "/invocations";
/// SigV4 signing name of AWS Lambda.
const SIGNING_SERVICE: &str = "lambda";
/// Largest answer read: Lambda's synchronous response payload limit (6 MB).
const MAX_ANSWER_BYTES: usize = 6 * 1024 * 1024;
/// How long an endpoint is waited for before the next invocation may go to it: Lambda's longest timeout.
const INVOCATION_LIMIT: Duration = Duration::from_secs(15 * 60);
/// How long a connection to an endpoint may take to open (beyond it, the message has timed out anyway).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The sender's ERROR code for a message refused in review ("Not Acceptable").
pub const DENIED_CODE: u16 = 406;

/// What the SDKs percent-encode in a path label: everything but unreserved characters (`:` of an ARN or an
/// alias becomes `%3A`).
const PATH_LABEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

// ---- where a handler runs -------------------------------------------------------------------------------------

/// A local Lambda Invoke API: a base URL (`http://127.0.0.1:3001`) or one function's invocation URL
/// (`http://127.0.0.1:8080/2015-03-31/functions/function/invocations`, the RIE's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaEndpoint {
    /// As given, without a trailing `/`.
    url: String,
    /// The URL is the invocation URL itself (its path ends in `/invocations`).
    invocation_url: bool,
}

impl LambdaEndpoint {
    pub fn parse(text: &str) -> Result<LambdaEndpoint, String> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix("http://") else {
            return Err(format!(
                "Lambda endpoint {text:?} must be an http:// URL (a local Lambda Invoke API, e.g. http://127.0.0.1:3001)"
            ));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "Lambda endpoint {text:?} must name a host and port (http://HOST:PORT)"
            ));
        }
        if path.contains(['?', '#']) {
            return Err(format!(
                "Lambda endpoint {text:?} must have no query or fragment"
            ));
        }
        let url = text.trim_end_matches('/').to_owned();
        let invocation_url = path.trim_end_matches('/').ends_with(INVOKE_PATH_SUFFIX);
        url.parse::<axum::http::Uri>()
            .map_err(|err| format!("Lambda endpoint {text:?} is not a valid URL: {err}"))?;
        Ok(LambdaEndpoint {
            url,
            invocation_url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Where the invocation of `function_name` goes.
    pub fn invoke_url(&self, function_name: &str) -> String {
        if self.invocation_url {
            return self.url.clone();
        }
        format!(
            "{}{INVOKE_PATH_PREFIX}{}{INVOKE_PATH_SUFFIX}",
            self.url,
            utf8_percent_encode(function_name, PATH_LABEL)
        )
    }
}

impl fmt::Display for LambdaEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// `FUNCTION=URL`, as `--lambda-function-endpoint` takes it.
pub fn parse_function_endpoint(text: &str) -> Result<(String, LambdaEndpoint), String> {
    let Some((function, url)) = text.split_once('=') else {
        return Err(format!(
            "{text:?} must be FUNCTION=URL (FUNCTION: a handler ARN or the function name after `function:`)"
        ));
    };
    let function = function.trim();
    if function.is_empty() {
        return Err(format!("{text:?} names no function before `=`"));
    }
    Ok((function.to_owned(), LambdaEndpoint::parse(url)?))
}

/// Where handlers are invoked, and how long they are waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    /// For every handler without an endpoint of its own.
    pub endpoint: Option<LambdaEndpoint>,
    /// Per function: keyed by handler ARN or by the part after `function:`.
    pub function_endpoints: BTreeMap<String, LambdaEndpoint>,
    pub review_timeout: Duration,
}

/// A handler ARN, `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, in parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerArn<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
    /// Everything after `function:`: the FunctionName sent (a name, or `name:qualifier`).
    pub function: &'a str,
}

impl<'a> HandlerArn<'a> {
    /// The parts of a URI that matches the model's pattern (CreateRoom / UpdateRoom validated it).
    pub fn parse(uri: &'a str) -> Option<HandlerArn<'a>> {
        let rest = uri.strip_prefix("arn:aws:lambda:")?;
        let (region, rest) = rest.split_once(':')?;
        let (account_id, rest) = rest.split_once(':')?;
        let function = rest.strip_prefix("function:")?;
        (!function.is_empty()).then_some(HandlerArn {
            region,
            account_id,
            function,
        })
    }
}

/// The endpoint for a handler: its own (by ARN, then by function), else the default one.
pub fn endpoint_for<'s>(
    settings: &'s LambdaSettings,
    uri: &str,
    handler: &HandlerArn<'_>,
) -> Option<&'s LambdaEndpoint> {
    settings
        .function_endpoints
        .get(uri)
        .or_else(|| settings.function_endpoints.get(handler.function))
        .or(settings.endpoint.as_ref())
}

// ---- the event ------------------------------------------------------------------------------------------------

/// A message as its review handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUnderReview {
    pub room_arn: String,
    /// The id the delivered MESSAGE will have.
    pub message_id: String,
    pub content: String,
    pub attributes: BTreeMap<String, String>,
    pub sender_user_id: String,
    /// The attributes of the sender's chat token.
    pub sender_attributes: BTreeMap<String, String>,
    /// The IP address of the sender's connection.
    pub sender_ip: String,
}

/// The event IVS Chat sends the handler (PascalCase keys, as documented).
pub fn event_payload(message: &MessageUnderReview) -> Value {
    json!({
        "Content": message.content,
        "MessageId": message.message_id,
        "RoomArn": message.room_arn,
        "Attributes": message.attributes,
        "Sender": {
            "Attributes": message.sender_attributes,
            "UserId": message.sender_user_id,
            "Ip": message.sender_ip,
        },
    })
}

// ---- the answer -----------------------------------------------------------------------------------------------

/// A valid answer of a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Deliver this content, with these attributes (`None`: the message's own).
    Allow {
        content: String,
        attributes: Option<BTreeMap<String, String>>,
    },
    /// Deliver nothing; the sender is told `reason` when the handler gave one.
    Deny { reason: Option<String> },
}

/// Why a handler gave no valid answer (then the room's `fallbackResult` decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No endpoint is configured for the handler.
    NoEndpoint,
    /// The handler is a Lambda of another account or region than the room's.
    OtherAccountOrRegion,
    /// No answer within the review timeout (or the endpoint was still busy with an earlier invocation).
    Timeout(String),
    /// The endpoint could not be reached (refused, reset, not HTTP).
    Unreachable(String),
    /// The Lambda API answered with an error status.
    InvokeError { status: u16, body: String },
    /// The function failed (`X-Amz-Function-Error`, or a runtime's error object).
    FunctionError(String),
    /// The function answered, but not with a valid review result.
    InvalidResponse(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoEndpoint => f.write_str(
                "no Lambda endpoint is configured for it in the emulator (--lambda-endpoint)",
            ),
            Failure::OtherAccountOrRegion => {
                f.write_str("it is a Lambda of another account or region than the room's")
            }
            Failure::Timeout(detail) => write!(f, "it timed out ({detail})"),
            Failure::Unreachable(detail) => {
                write!(f, "its endpoint could not be reached ({detail})")
            }
            Failure::InvokeError { status, body } => {
                write!(f, "the Lambda API answered {status}: {body}")
            }
            Failure::FunctionError(detail) => write!(f, "the function failed ({detail})"),
            Failure::InvalidResponse(detail) => write!(f, "its answer is invalid ({detail})"),
        }
    }
}

/// Reads an Invoke response: a valid answer, or why it is none. `max_length` is the room's
/// `maximumMessageLength` (the rewritten content must fit it too).
pub fn read_answer(
    status: u16,
    function_error: Option<&str>,
    body: &[u8],
    max_length: usize,
) -> Result<Answer, Failure> {
    let text = String::from_utf8_lossy(body);
    if !(200..300).contains(&status) {
        return Err(Failure::InvokeError {
            status,
            body: excerpt(&text),
        });
    }
    if let Some(kind) = function_error {
        return Err(Failure::FunctionError(format!(
            "X-Amz-Function-Error: {kind}: {}",
            excerpt(&text)
        )));
    }
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
        return Err(Failure::InvalidResponse(format!(
            "not a JSON object: {}",
            excerpt(&text)
        )));
    };
    let result = answer.get("ReviewResult");
    if result.is_none()
        && let (Some(Value::String(message)), Some(Value::String(kind))) =
            (answer.get("errorMessage"), answer.get("errorType"))
    {
        // A runtime's error object: what the RIE answers, with status 200, when the handler raises.
        return Err(Failure::FunctionError(format!("{kind}: {message}")));
    }
    let attributes = match answer.get("Attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(object)) => Some(string_map(object).ok_or_else(|| {
            Failure::InvalidResponse("Attributes must be an object of strings".into())
        })?),
        Some(_) => {
            return Err(Failure::InvalidResponse(
                "Attributes must be an object of strings".into(),
            ));
        }
    };
    match result {
        Some(Value::String(result)) if result == "ALLOW" => {
            let content = match answer.get("Content") {
                Some(Value::String(content)) => content,
                Some(_) => {
                    return Err(Failure::InvalidResponse("Content must be a string".into()));
                }
                None => {
                    return Err(Failure::InvalidResponse(
                        "an ALLOW needs the Content to deliver".into(),
                    ));
                }
            };
            let length = content.chars().count();
            if length == 0 || length > max_length {
                return Err(Failure::InvalidResponse(format!(
                    "Content must be 1 to {max_length} characters (the room's maximumMessageLength), got {length}"
                )));
            }
            Ok(Answer::Allow {
                content: content.clone(),
                attributes,
            })
        }
        Some(Value::String(result)) if result == "DENY" => Ok(Answer::Deny {
            reason: attributes.and_then(|mut attributes| attributes.remove("Reason")),
        }),
        Some(other) => Err(Failure::InvalidResponse(format!(
            "ReviewResult must be \"ALLOW\" or \"DENY\", got {other}"
        ))),
        None => Err(Failure::InvalidResponse("ReviewResult is missing".into())),
    }
}

fn string_map(object: &Map<String, Value>) -> Option<BTreeMap<String, String>> {
    object
        .iter()
        .map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
        .collect()
}

/// The first 200 characters of a body, for logs and errors.
fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

// ---- the decision ---------------------------------------------------------------------------------------------

/// What happens to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered to every connection of the room, with this content and these attributes.
    Deliver {
        content: String,
        attributes: BTreeMap<String, String>,
    },
    /// Delivered to no one; the sender gets an ERROR 406 with this message.
    Refuse { message: String },
}

/// How a review ended: the `outcome` label of the reviews counter (bounded: these ten values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The handler allowed the message unchanged.
    Allowed,
    /// The handler allowed it with another content or other attributes.
    Rewritten,
    /// The handler denied it.
    Denied,
    // The rest are failures, after which the fallbackResult decided.
    NoEndpoint,
    OtherAccountOrRegion,
    Timeout,
    Unreachable,
    InvokeError,
    FunctionError,
    InvalidResponse,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Outcome::Allowed,
        Outcome::Rewritten,
        Outcome::Denied,
        Outcome::NoEndpoint,
        Outcome::OtherAccountOrRegion,
        Outcome::Timeout,
        Outcome::Unreachable,
        Outcome::InvokeError,
        Outcome::FunctionError,
        Outcome::InvalidResponse,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Rewritten => "rewritten",
            Outcome::Denied => "denied",
            Outcome::NoEndpoint => "no_endpoint",
            Outcome::OtherAccountOrRegion => "other_account_or_region",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::InvokeError => "invoke_error",
            Outcome::FunctionError => "function_error",
            Outcome::InvalidResponse => "invalid_response",
        }
    }

    fn of_failure(failure: &Failure) -> Outcome {
        match failure {
            Failure::NoEndpoint => Outcome::NoEndpoint,
            Failure::OtherAccountOrRegion => Outcome::OtherAccountOrRegion,
            Failure::Timeout(_) => Outcome::Timeout,
            Failure::Unreachable(_) => Outcome::Unreachable,
            Failure::InvokeError { .. } => Outcome::InvokeError,
            Failure::FunctionError(_) => Outcome::FunctionError,
            Failure::InvalidResponse(_) => Outcome::InvalidResponse,
        }
    }
}

/// The `result` label: what was done with the message.
pub fn result_label(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Deliver { .. } => "ALLOW",
        Verdict::Refuse { .. } => "DENY",
    }
}

/// What the handler's answer (or its failure) makes of `message`, under the room's `fallback`.
pub fn decide(
    answer: Result<Answer, Failure>,
    fallback: FallbackResult,
    message: &MessageUnderReview,
) -> (Verdict, Outcome) {
    match answer {
        Ok(Answer::Allow {
            content,
            attributes,
        }) => {
            let attributes = attributes.unwrap_or_else(|| message.attributes.clone());
            let outcome = if content == message.content && attributes == message.attributes {
                Outcome::Allowed
            } else {
                Outcome::Rewritten
            };
            (
                Verdict::Deliver {
                    content,
                    attributes,
                },
                outcome,
            )
        }
        Ok(Answer::Deny { reason }) => (
            Verdict::Refuse {
                message: reason
                    .unwrap_or_else(|| "Message rejected by the message review handler".into()),
            },
            Outcome::Denied,
        ),
        Err(failure) => {
            let outcome = Outcome::of_failure(&failure);
            let verdict = match fallback {
                // No content came back: the message is delivered as sent.
                FallbackResult::Allow => Verdict::Deliver {
                    content: message.content.clone(),
                    attributes: message.attributes.clone(),
                },
                FallbackResult::Deny => Verdict::Refuse {
                    message: format!(
                        "Message rejected: the room's message review handler gave no valid answer ({failure}) and its fallbackResult is DENY"
                    ),
                },
            };
            (verdict, outcome)
        }
    }
}

// ---- the invocation -------------------------------------------------------------------------------------------

/// The emulator's Lambda client: signed Invoke requests, one at a time per endpoint.
pub struct Reviewer {
    client: Client<HttpConnector, Full<Bytes>>,
    access_key_id: String,
    secret_access_key: String,
    /// Invocation URL → its one permit (see "One invocation at a time per endpoint").
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A finished review: the verdict, how it came about, and the failure's text when there was one (for logs).
#[derive(Debug)]
pub struct Review {
    pub verdict: Verdict,
    pub outcome: Outcome,
    pub failure: Option<String>,
}

impl Reviewer {
    pub fn new(access_key_id: &str, secret_access_key: &str) -> Reviewer {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Reviewer {
            client: Client::builder(TokioExecutor::new()).build(connector),
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// Reviews `message` with the handler `uri` of a room in (`account_id`, `region`).
    pub async fn review(
        &self,
        settings: &LambdaSettings,
        uri: &str,
        fallback: FallbackResult,
        room_scope: (&str, &str),
        max_length: usize,
        message: &MessageUnderReview,
    ) -> Review {
        let answer = self
            .answer(settings, uri, room_scope, max_length, message)
            .await;
        let failure = answer.as_ref().err().map(ToString::to_string);
        let (verdict, outcome) = decide(answer, fallback, message);
        Review {
            verdict,
            outcome,
            failure,
        }
    }

    async fn answer(
        &self,
        settings: &LambdaSettings,
        uri: &str,
        (account_id, region): (&str, &str),
        max_length: usize,
        message: &MessageUnderReview,
    ) -> Result<Answer, Failure> {
        let deadline = Instant::now() + settings.review_timeout;
        // CreateRoom and UpdateRoom admit only URIs of the model's pattern, which this parses.
        let handler = HandlerArn::parse(uri)
            .ok_or_else(|| Failure::Unreachable(format!("{uri:?} is not a Lambda function ARN")))?;
        if handler.account_id != account_id || handler.region != region {
            return Err(Failure::OtherAccountOrRegion);
        }
        let endpoint = endpoint_for(settings, uri, &handler).ok_or(Failure::NoEndpoint)?;
        let url = endpoint.invoke_url(handler.function);
        let body = event_payload(message).to_string();
        let permit = tokio::time::timeout_at(deadline, self.endpoint_permit(&url))
            .await
            .map_err(|_| {
                Failure::Timeout(format!(
                    "{url} was still running an earlier invocation after {:?}",
                    settings.review_timeout
                ))
            })?;
        let request = self
            .signed_request(&url, handler.region, body)
            .map_err(Failure::Unreachable)?;
        let (answered, answer) = oneshot::channel();
        let client = self.client.clone();
        // The invocation runs to its end (holding the endpoint) even when the message stops waiting for it.
        tokio::spawn(async move {
            let _permit = permit;
            let result = tokio::time::timeout(INVOCATION_LIMIT, invoke(client, request)).await;
            let _ = answered.send(result.unwrap_or_else(|_| {
                Err(Failure::Timeout(format!(
                    "no answer after {INVOCATION_LIMIT:?}"
                )))
            }));
        });
        let (status, function_error, body) = tokio::time::timeout_at(deadline, answer)
            .await
            .map_err(|_| {
                Failure::Timeout(format!(
                    "no answer from {url} within {:?}",
                    settings.review_timeout
                ))
            })?
            .map_err(|_| Failure::Unreachable("the invocation was abandoned".into()))??;
        read_answer(status, function_error.as_deref(), &body, max_length)
    }

    async fn endpoint_permit(&self, url: &str) -> OwnedSemaphorePermit {
        let semaphore = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(url.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone();
        semaphore
            .acquire_owned()
            .await
            .expect("the endpoint semaphores are never closed")
    }

    /// The Invoke request, signed for `lambda` in `region` with the emulator's static credentials.
    fn signed_request(
        &self,
        url: &str,
        region: &str,
        body: String,
    ) -> Result<axum::http::Request<Full<Bytes>>, String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let uri: axum::http::Uri = url
            .parse()
            .map_err(|err| format!("invalid invocation URL {url}: {err}"))?;
        let host = uri
            .authority()
            .map(|authority| authority.as_str().to_owned())
            .ok_or_else(|| format!("invocation URL {url} has no host"))?;
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/json"),
            ("x-amz-invocation-type", "RequestResponse"),
        ];
        let identity = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "ivschat-emulator",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SIGNING_SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|err| format!("signing parameters: {err}"))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|err| format!("signing: {err}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|err| format!("signing: {err}"))?
            .into_parts();
        let mut builder = axum::http::Request::post(uri);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| format!("building the request: {err}"))
    }
}

/// Sends one Invoke request: status, `X-Amz-Function-Error`, body.
async fn invoke(
    client: Client<HttpConnector, Full<Bytes>>,
    request: axum::http::Request<Full<Bytes>>,
) -> Result<(u16, Option<String>, Bytes), Failure> {
    let response = client
        .request(request)
        .await
        .map_err(|err| Failure::Unreachable(error_chain(&err)))?;
    let status = response.status().as_u16();
    let function_error = response
        .headers()
        .get("x-amz-function-error")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|err| Failure::Unreachable(format!("reading the answer: {err}")))?
        .to_bytes();
    Ok((status, function_error, body))
}

/// An error and its sources on one line (hyper's own message is only "client error (Connect)").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> MessageUnderReview {
        MessageUnderReview {
            room_arn: "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234".into(),
            message_id: "ABCdef123456".into(),
            content: "hello".into(),
            attributes: [("emoji".to_string(), "wave".to_string())].into(),
            sender_user_id: "ada".into(),
            sender_attributes: [("displayName".to_string(), "Ada".to_string())].into(),
            sender_ip: "127.0.0.1".into(),
        }
    }

    #[test]
    fn endpoints_are_bases_or_invocation_urls() {
        let base = LambdaEndpoint::parse("http://127.0.0.1:3001/").expect("a base URL");
        assert_eq!(base.as_str(), "http://127.0.0.1:3001");
        assert_eq!(
            base.invoke_url("moderate:live"),
            "http://127.0.0.1:3001/2015-03-31/functions/moderate%3Alive/invocations"
        );
        let rie = LambdaEndpoint::parse(
            "http://127.0.0.1:8080/2015-03-31/functions/function/invocations",
        )
        .expect("an invocation URL");
        assert_eq!(
            rie.invoke_url("moderate"),
            "http://127.0.0.1:8080/2015-03-31/functions/function/invocations"
        );
        let prefixed = LambdaEndpoint::parse("http://localhost:4566/lambda").expect("a prefix");
        assert_eq!(
            prefixed.invoke_url("f"),
            "http://localhost:4566/lambda/2015-03-31/functions/f/invocations"
        );
        for bad in [
            "https://127.0.0.1:3001",
            "127.0.0.1:3001",
            "http://",
            "http:///x",
            "http://a@host:1",
            "http://host:1/?x=1",
        ] {
            assert!(LambdaEndpoint::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn function_endpoints_parse_and_are_chosen_before_the_default() {
        let (function, endpoint) =
            parse_function_endpoint("moderate=http://127.0.0.1:9001").expect("FUNCTION=URL");
        assert_eq!(function, "moderate");
        assert!(parse_function_endpoint("http://127.0.0.1:9001").is_err());
        assert!(parse_function_endpoint("=http://127.0.0.1:9001").is_err());
        let arn = "arn:aws:lambda:us-west-2:123456789012:function:other";
        let settings = LambdaSettings {
            endpoint: Some(LambdaEndpoint::parse("http://127.0.0.1:3001").expect("url")),
            function_endpoints: [
                (function, endpoint.clone()),
                (
                    arn.to_string(),
                    LambdaEndpoint::parse("http://127.0.0.1:9002").expect("url"),
                ),
            ]
            .into(),
            review_timeout: Duration::from_millis(200),
        };
        let uri = "arn:aws:lambda:us-west-2:123456789012:function:moderate";
        let handler = HandlerArn::parse(uri).expect("an ARN");
        assert_eq!(endpoint_for(&settings, uri, &handler), Some(&endpoint));
        let handler = HandlerArn::parse(arn).expect("an ARN");
        assert_eq!(
            endpoint_for(&settings, arn, &handler).map(LambdaEndpoint::as_str),
            Some("http://127.0.0.1:9002")
        );
        let uri = "arn:aws:lambda:us-west-2:123456789012:function:third";
        let handler = HandlerArn::parse(uri).expect("an ARN");
        assert_eq!(
            endpoint_for(&settings, uri, &handler).map(LambdaEndpoint::as_str),
            Some("http://127.0.0.1:3001")
        );
    }

    #[test]
    fn handler_arns_split_into_scope_and_function() {
        assert_eq!(
            HandlerArn::parse("arn:aws:lambda:eu-west-1:111122223333:function:review:live"),
            Some(HandlerArn {
                region: "eu-west-1",
                account_id: "111122223333",
                function: "review:live",
            })
        );
        assert_eq!(
            HandlerArn::parse("arn:aws:lambda:eu-west-1:111122223333:layer:x"),
            None
        );
        assert_eq!(
            HandlerArn::parse("arn:aws:lambda:eu-west-1:111122223333:function:"),
            None
        );
    }

    #[test]
    fn the_event_has_the_documented_shape() {
        assert_eq!(
            event_payload(&message()),
            json!({
                "Content": "hello",
                "MessageId": "ABCdef123456",
                "RoomArn": "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234",
                "Attributes": {"emoji": "wave"},
                "Sender": {"Attributes": {"displayName": "Ada"}, "UserId": "ada", "Ip": "127.0.0.1"},
            })
        );
    }

    fn read(body: &str) -> Result<Answer, Failure> {
        read_answer(200, None, body.as_bytes(), 10)
    }

    #[test]
    fn valid_answers_are_read() {
        assert_eq!(
            read(r#"{"ReviewResult":"ALLOW","Content":"hi [ok]","Attributes":{"a":"b"}}"#),
            Ok(Answer::Allow {
                content: "hi [ok]".into(),
                attributes: Some([("a".to_string(), "b".to_string())].into()),
            })
        );
        assert_eq!(
            read(r#"{"ReviewResult":"ALLOW","Content":"éééééééééé"}"#),
            Ok(Answer::Allow {
                content: "é".repeat(10),
                attributes: None,
            }),
            "the length is counted in code points"
        );
        assert_eq!(
            read(r#"{"ReviewResult":"DENY","Attributes":{"Reason":"spam"}}"#),
            Ok(Answer::Deny {
                reason: Some("spam".into())
            })
        );
        assert_eq!(
            read(r#"{"ReviewResult":"DENY","Content":null}"#),
            Ok(Answer::Deny { reason: None })
        );
    }

    #[test]
    fn invalid_answers_and_errors_are_failures() {
        let invalid = |body: &str| matches!(read(body), Err(Failure::InvalidResponse(_)));
        assert!(invalid("not json"));
        assert!(invalid("[1]"));
        assert!(invalid(r#""ALLOW""#));
        assert!(invalid(r#"{"Content":"hi"}"#));
        assert!(invalid(r#"{"ReviewResult":"allow","Content":"hi"}"#));
        assert!(invalid(r#"{"ReviewResult":true,"Content":"hi"}"#));
        assert!(invalid(r#"{"ReviewResult":"ALLOW"}"#));
        assert!(invalid(r#"{"ReviewResult":"ALLOW","Content":""}"#));
        assert!(invalid(
            r#"{"ReviewResult":"ALLOW","Content":"eleven char"}"#
        ));
        assert!(invalid(r#"{"ReviewResult":"ALLOW","Content":5}"#));
        assert!(invalid(
            r#"{"ReviewResult":"ALLOW","Content":"hi","Attributes":{"a":1}}"#
        ));
        assert!(invalid(r#"{"ReviewResult":"DENY","Attributes":"Reason"}"#));
        assert!(matches!(
            read(r#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#),
            Err(Failure::FunctionError(detail)) if detail == "ValueError: boom"
        ));
        assert!(matches!(
            read_answer(200, Some("Unhandled"), br#"{"errorMessage":"boom"}"#, 10),
            Err(Failure::FunctionError(_))
        ));
        assert!(matches!(
            read_answer(404, None, b"404 page not found", 10),
            Err(Failure::InvokeError { status: 404, body }) if body == "404 page not found"
        ));
        assert!(matches!(
            read_answer(500, None, br#"{"ReviewResult":"ALLOW","Content":"hi"}"#, 10),
            Err(Failure::InvokeError { status: 500, .. })
        ));
    }

    #[test]
    fn decisions_follow_the_answer_then_the_fallback() {
        let message = message();
        let (verdict, outcome) = decide(
            Ok(Answer::Allow {
                content: "hello".into(),
                attributes: None,
            }),
            FallbackResult::Deny,
            &message,
        );
        assert_eq!(outcome, Outcome::Allowed);
        assert_eq!(
            verdict,
            Verdict::Deliver {
                content: "hello".into(),
                attributes: message.attributes.clone()
            },
            "without Attributes the message keeps its own"
        );
        let (verdict, outcome) = decide(
            Ok(Answer::Allow {
                content: "hello".into(),
                attributes: Some(BTreeMap::new()),
            }),
            FallbackResult::Allow,
            &message,
        );
        assert_eq!(outcome, Outcome::Rewritten, "attributes removed");
        assert_eq!(
            verdict,
            Verdict::Deliver {
                content: "hello".into(),
                attributes: BTreeMap::new()
            }
        );
        let (verdict, outcome) = decide(
            Ok(Answer::Deny {
                reason: Some("no spam".into()),
            }),
            FallbackResult::Allow,
            &message,
        );
        assert_eq!(outcome, Outcome::Denied);
        assert_eq!(
            verdict,
            Verdict::Refuse {
                message: "no spam".into()
            }
        );
        let (verdict, outcome) = decide(
            Err(Failure::Timeout("slow".into())),
            FallbackResult::Allow,
            &message,
        );
        assert_eq!(outcome, Outcome::Timeout);
        assert_eq!(
            verdict,
            Verdict::Deliver {
                content: message.content.clone(),
                attributes: message.attributes.clone()
            },
            "a fallback ALLOW delivers the message as sent"
        );
        let (verdict, outcome) = decide(Err(Failure::NoEndpoint), FallbackResult::Deny, &message);
        assert_eq!(outcome, Outcome::NoEndpoint);
        let Verdict::Refuse { message: refusal } = verdict else {
            panic!("a fallback DENY refuses: {verdict:?}");
        };
        assert!(refusal.contains("fallbackResult is DENY"), "{refusal}");
        assert!(refusal.contains("--lambda-endpoint"), "{refusal}");
    }

    #[test]
    fn outcome_labels_are_distinct() {
        let labels: std::collections::BTreeSet<&str> =
            Outcome::ALL.iter().map(|outcome| outcome.label()).collect();
        assert_eq!(labels.len(), Outcome::ALL.len());
    }
}
