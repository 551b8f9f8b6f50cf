//! Robustness: arbitrary requests sent to a live emulator over real HTTP never cause a 5xx, never kill a
//! connection without an answer, and are always answered in the AWS error format.
//!
//! Requests are written byte by byte on a TCP connection (so anything can be sent, including request
//! targets that no HTTP library would produce) and, where the target is a valid URI, signed with the
//! aws-sigv4 crate the SDK uses, so that they get past authentication and reach the operation handlers.
//! The inputs: random bytes, random JSON, and JSON objects with an operation's member names holding random
//! values (sometimes well-formed, sometimes naming resources that exist); the 17 operation routes and odd
//! paths (doubled or dot segments, percent-encodings, encoded invalid UTF-8, random segments); random
//! methods and query strings; unsigned requests too.
//!
//! What must hold for every request that is valid HTTP:
//! - a complete response arrives (a handler that panics drops the connection instead);
//! - the status is not 5xx (no faults are injected here);
//! - every response carries `x-amzn-RequestId`; every error response carries `X-Amzn-Errortype` and, unless
//!   it answers a HEAD request, a JSON object body with a string `message`; a 200 carries a JSON object;
//! - a signed request is never refused for its signature (the verifier agrees with the SDK's signer).
//!
//! Request lines that are not valid HTTP (raw non-ASCII bytes in the target) are rejected by the HTTP parser
//! before any emulator code runs, so only "4xx or connection closed, never 5xx" is required of them. After
//! every property the emulator must still answer a normal SDK call.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_testsupport::emulator;
use ivschat_testsupport::sigv4::Signer;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// How long one exchange may take before the test calls it a hang.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Cases per property: together they run in a few seconds. The operation routes get the most, since that is
/// where the handlers are.
const ROUTED_CASES: u32 = 1024;
const OTHER_CASES: u32 = 256;

/// The emulator's 17 routes (method, path, operation; `{arn}` is the tag operations' label).
const ROUTES: [(&str, &str, &str); 17] = [
    ("POST", "/CreateChatToken", "CreateChatToken"),
    (
        "POST",
        "/CreateLoggingConfiguration",
        "CreateLoggingConfiguration",
    ),
    ("POST", "/CreateRoom", "CreateRoom"),
    (
        "POST",
        "/DeleteLoggingConfiguration",
        "DeleteLoggingConfiguration",
    ),
    ("POST", "/DeleteMessage", "DeleteMessage"),
    ("POST", "/DeleteRoom", "DeleteRoom"),
    ("POST", "/DisconnectUser", "DisconnectUser"),
    (
        "POST",
        "/GetLoggingConfiguration",
        "GetLoggingConfiguration",
    ),
    ("POST", "/GetRoom", "GetRoom"),
    (
        "POST",
        "/ListLoggingConfigurations",
        "ListLoggingConfigurations",
    ),
    ("POST", "/ListRooms", "ListRooms"),
    ("GET", "/tags/{arn}", "ListTagsForResource"),
    ("POST", "/SendEvent", "SendEvent"),
    ("POST", "/tags/{arn}", "TagResource"),
    ("DELETE", "/tags/{arn}", "UntagResource"),
    (
        "POST",
        "/UpdateLoggingConfiguration",
        "UpdateLoggingConfiguration",
    ),
    ("POST", "/UpdateRoom", "UpdateRoom"),
];

/// The JSON body members of each route, from the model (ivschat-api.md §1).
fn body_members(path: &str) -> &'static [&'static str] {
    match path {
        "/CreateChatToken" => &[
            "roomIdentifier",
            "userId",
            "capabilities",
            "sessionDurationInMinutes",
            "attributes",
        ],
        "/CreateLoggingConfiguration" => &["destinationConfiguration", "name", "tags"],
        "/CreateRoom" => &[
            "name",
            "maximumMessageRatePerSecond",
            "maximumMessageLength",
            "messageReviewHandler",
            "tags",
            "loggingConfigurationIdentifiers",
        ],
        "/DeleteLoggingConfiguration" | "/DeleteRoom" | "/GetLoggingConfiguration" | "/GetRoom" => {
            &["identifier"]
        }
        "/DeleteMessage" => &["roomIdentifier", "id", "reason"],
        "/DisconnectUser" => &["roomIdentifier", "userId", "reason"],
        "/ListLoggingConfigurations" => &["nextToken", "maxResults"],
        "/ListRooms" => &[
            "name",
            "nextToken",
            "maxResults",
            "messageReviewHandlerUri",
            "loggingConfigurationIdentifier",
        ],
        "/SendEvent" => &["roomIdentifier", "eventName", "attributes"],
        "/UpdateLoggingConfiguration" => &["identifier", "name", "destinationConfiguration"],
        "/UpdateRoom" => &[
            "identifier",
            "name",
            "maximumMessageRatePerSecond",
            "maximumMessageLength",
            "messageReviewHandler",
            "loggingConfigurationIdentifiers",
        ],
        _ => &["tags"],
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A raw HTTP/1.1 exchange
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }
}

/// Sends `request` on a new connection and reads the whole answer (the request asks for `Connection:
/// close`). `Ok(None)` means the server closed the connection without answering.
async fn exchange(
    addr: SocketAddr,
    request: &[u8],
    head: bool,
) -> Result<Option<RawResponse>, String> {
    let work = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        let (mut reader, mut writer) = stream.into_split();
        // Read while writing: the server may answer (and close) before it has read a large body, and an answer
        // must be read before the reset that closing with unread data causes. A failed write is not a failure
        // of the exchange; the answer is what counts.
        let write = async {
            let _ = writer.write_all(request).await;
            writer
        };
        let read = async {
            let mut received = Vec::new();
            let outcome = reader.read_to_end(&mut received).await;
            (received, outcome)
        };
        let (_writer, (received, outcome)) = tokio::join!(write, read);
        match outcome {
            Ok(_) => {}
            Err(_) if !received.is_empty() => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(error) => return Err(format!("read: {error}")),
        }
        if received.is_empty() {
            return Ok(None);
        }
        parse_response(&received, head).map(Some)
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {EXCHANGE_TIMEOUT:?}"))?
}

fn parse_response(received: &[u8], head: bool) -> Result<RawResponse, String> {
    let split = received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or("the response has no end of headers")?;
    let head_text =
        std::str::from_utf8(&received[..split]).map_err(|_| "response headers are not UTF-8")?;
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, Vec<u8>)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().as_bytes().to_vec()))
        .collect();
    let raw_body = &received[split + 4..];
    let chunked = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case(b"chunked")
    });
    let body = if head {
        Vec::new()
    } else if chunked {
        decode_chunked(raw_body)?
    } else {
        raw_body.to_vec()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|window| window == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text =
            std::str::from_utf8(&raw[..line_end]).map_err(|_| "chunk size is not text")?;
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if raw.len() < size + 2 {
            return Err("truncated chunk".to_owned());
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct FuzzRequest {
    method: String,
    /// Path and query exactly as they go on the request line.
    target: Vec<u8>,
    body: Vec<u8>,
    sign: bool,
}

/// Emulator address and credentials, and what a signed request needs.
struct Target {
    addr: SocketAddr,
    host: String,
    access_key_id: String,
    secret_access_key: String,
    region: String,
}

impl Target {
    /// The request's bytes, and whether it went out signed (a target that is not a valid URI cannot be).
    fn encode(&self, request: &FuzzRequest) -> (Vec<u8>, bool) {
        let mut headers: Vec<(String, String)> = vec![
            ("host".to_owned(), self.host.clone()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        let mut signed = false;
        if request.sign
            && let Ok(target) = std::str::from_utf8(&request.target)
            && let Some(signature_headers) =
                self.signature_headers(&request.method, target, &headers, &request.body)
        {
            headers.extend(signature_headers);
            signed = true;
        }
        let mut bytes = Vec::with_capacity(256 + request.body.len());
        bytes.extend_from_slice(request.method.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(&request.target);
        bytes.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &headers {
            bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        bytes.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                request.body.len()
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(&request.body);
        (bytes, signed)
    }

    /// The headers the SDK's signer adds, or `None` when it cannot sign this target.
    fn signature_headers(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Option<Vec<(String, String)>> {
        let url = format!("http://{}{target}", self.host);
        url.parse::<axum::http::Uri>().ok()?;
        Signer::new(&self.access_key_id, &self.secret_access_key, &self.region)
            .headers(method, &url, headers, body)
            .ok()
    }

    /// Sends one request and checks every property in the module docs; `Err` describes the violation.
    async fn check(&self, request: &FuzzRequest) -> Result<(), String> {
        let (bytes, signed) = self.encode(request);
        let head = request.method == "HEAD";
        let valid_http = request.target.iter().all(|byte| byte.is_ascii_graphic());
        let response = exchange(self.addr, &bytes, head).await?;
        let Some(response) = response else {
            return if valid_http {
                Err("the connection closed without an answer (did a handler panic?)".to_owned())
            } else {
                Ok(())
            };
        };
        if response.status >= 500 {
            return Err(format!(
                "{} answered {}: {}",
                request.method,
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        if !valid_http {
            return if (400..500).contains(&response.status) {
                Ok(())
            } else {
                Err(format!(
                    "an invalid request line was answered {}",
                    response.status
                ))
            };
        }
        if response.header("x-amzn-requestid").is_none() {
            return Err(format!(
                "status {} without x-amzn-RequestId",
                response.status
            ));
        }
        if response.status >= 400 {
            let error_type = response
                .header("x-amzn-errortype")
                .ok_or_else(|| format!("error {} without X-Amzn-Errortype", response.status))?;
            let error_type = String::from_utf8_lossy(error_type);
            if signed && error_type == "InvalidSignatureException" {
                return Err(format!(
                    "a request signed by the SDK's signer was refused: {}",
                    String::from_utf8_lossy(&response.body)
                ));
            }
            if !head {
                let body: Value = serde_json::from_slice(&response.body).map_err(|error| {
                    format!(
                        "error {} ({error_type}) body is not JSON ({error}): {:?}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    )
                })?;
                if !body.get("message").is_some_and(Value::is_string) {
                    return Err(format!(
                        "error {} ({error_type}) body without a message: {body}",
                        response.status
                    ));
                }
            }
        } else if response.status == 200 && !head {
            let body: Value = serde_json::from_slice(&response.body)
                .map_err(|error| format!("a 200 body is not JSON ({error})"))?;
            if !body.is_object() {
                return Err(format!("a 200 body is not a JSON object: {body}"));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------------------------

/// ARNs that exist in the emulator (so some shaped requests go deep), plus look-alikes that do not.
#[derive(Clone, Debug)]
struct KnownArns {
    room: String,
    logging_configuration: String,
}

fn known_identifier(arns: &KnownArns) -> impl Strategy<Value = String> + use<> {
    prop_oneof![
        Just(arns.room.clone()),
        Just(arns.logging_configuration.clone()),
        "[a-zA-Z0-9]{12}"
            .prop_map(|id| format!("arn:aws:ivschat:us-west-2:123456789012:room/{id}")),
        "[a-zA-Z0-9]{12}".prop_map(|id| format!(
            "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/{id}"
        )),
        "[a-z0-9-]{0,12}:[0-9]{0,14}:[a-z-]{0,24}/[a-zA-Z0-9-]{0,14}"
            .prop_map(|tail| format!("arn:aws:ivschat:{tail}")),
    ]
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,24}",
        "[a-zA-Z0-9_-]{1,140}",
        ".{0,8}",
        (1usize..2048).prop_map(|length| "x".repeat(length)),
        Just("\u{0}\u{7f}\u{feff}\u{10ffff}".to_owned()),
    ]
}

fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-5i64..600).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e300f64..1.0e300).prop_map(Value::from),
        Just(json!(0)),
        Just(json!(-0.0)),
        Just(json!(1.5)),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number(),
        any_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("\\PC{0,12}", inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn string_map() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(any_string(), any_string(), 0..60).prop_map(|members| {
        Value::Object(
            members
                .into_iter()
                .map(|(key, value)| (key, Value::String(value)))
                .collect(),
        )
    })
}

fn destination() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_string().prop_map(|name| json!({ "s3": { "bucketName": name } })),
        any_string().prop_map(|name| json!({ "cloudWatchLogs": { "logGroupName": name } })),
        any_string().prop_map(|name| json!({ "firehose": { "deliveryStreamName": name } })),
        Just(
            json!({ "s3": { "bucketName": "demo-bucket" }, "firehose": { "deliveryStreamName": "two" } })
        ),
        Just(json!({})),
        Just(json!({ "s3": {} })),
        Just(json!({ "s3": null })),
    ]
}

/// A value the model accepts for the member (identifiers name resources that exist, though not always of
/// the kind the operation wants), so that whole requests often pass validation and reach the store.
fn valid_member_value(member: &'static str, arns: &KnownArns) -> BoxedStrategy<Value> {
    let lambda = "[a-z0-9-]{1,10}"
        .prop_map(|name| format!("arn:aws:lambda:us-west-2:123456789012:function:{name}"));
    let small_map = proptest::collection::btree_map("[a-z]{1,10}", "[a-z]{0,10}", 0..5)
        .prop_map(|map| json!(map));
    match member {
        "identifier" | "roomIdentifier" => prop_oneof![
            Just(json!(arns.room)),
            Just(json!(arns.logging_configuration))
        ]
        .boxed(),
        "loggingConfigurationIdentifier" => Just(json!(arns.logging_configuration)).boxed(),
        "loggingConfigurationIdentifiers" => {
            prop_oneof![Just(json!([])), Just(json!([arns.logging_configuration]))].boxed()
        }
        "name" => "[a-zA-Z0-9_-]{0,20}".prop_map(|name| json!(name)).boxed(),
        "userId" | "reason" => "\\PC{1,40}".prop_map(|text| json!(text)).boxed(),
        "eventName" => "[a-zA-Z:]{1,20}".prop_map(|name| json!(name)).boxed(),
        "id" => "[a-zA-Z0-9]{12}".prop_map(|id| json!(id)).boxed(),
        "capabilities" => proptest::sample::subsequence(
            vec!["SEND_MESSAGE", "DISCONNECT_USER", "DELETE_MESSAGE"],
            0..=3,
        )
        .prop_map(|capabilities| json!(capabilities))
        .boxed(),
        "sessionDurationInMinutes" => (1i64..=180).prop_map(|minutes| json!(minutes)).boxed(),
        "maximumMessageRatePerSecond" => (1i64..=100).prop_map(|rate| json!(rate)).boxed(),
        "maximumMessageLength" => (1i64..=500).prop_map(|length| json!(length)).boxed(),
        "maxResults" => (1i64..=50).prop_map(|results| json!(results)).boxed(),
        "nextToken" => prop_oneof![
            Just(json!("")),
            "[a-zA-Z0-9]{1,30}".prop_map(|token| json!(token))
        ]
        .boxed(),
        "messageReviewHandlerUri" => {
            prop_oneof![Just(json!("")), lambda.prop_map(|uri| json!(uri))].boxed()
        }
        "tags" | "attributes" => small_map.boxed(),
        "destinationConfiguration" => prop_oneof![
            "[a-z0-9-]{3,20}".prop_map(|name| json!({ "s3": { "bucketName": name } })),
            "[a-zA-Z0-9/_-]{1,20}"
                .prop_map(|name| json!({ "cloudWatchLogs": { "logGroupName": name } })),
            "[a-zA-Z0-9_.-]{1,20}"
                .prop_map(|name| json!({ "firehose": { "deliveryStreamName": name } })),
        ]
        .boxed(),
        "messageReviewHandler" => (
            prop_oneof![Just(String::new()), lambda],
            prop_oneof![Just("ALLOW"), Just("DENY")],
        )
            .prop_map(|(uri, fallback)| json!({ "uri": uri, "fallbackResult": fallback }))
            .boxed(),
        _ => "[a-zA-Z0-9]{1,20}".prop_map(|text| json!(text)).boxed(),
    }
}

/// A value for a named member: usually of the member's kind (with random content), sometimes anything.
fn member_value(member: &'static str, arns: &KnownArns) -> BoxedStrategy<Value> {
    let anything = any_json().boxed();
    let typed: BoxedStrategy<Value> = match member {
        "identifier" | "roomIdentifier" | "loggingConfigurationIdentifier" => {
            known_identifier(arns).prop_map(Value::String).boxed()
        }
        "loggingConfigurationIdentifiers" => {
            proptest::collection::vec(known_identifier(arns), 0..5)
                .prop_map(|identifiers| json!(identifiers))
                .boxed()
        }
        "tags" | "attributes" => string_map().boxed(),
        "destinationConfiguration" => destination().boxed(),
        "messageReviewHandler" => (
            proptest::option::of(prop_oneof![
                Just(String::new()),
                "[a-z0-9-]{1,10}".prop_map(|name| format!(
                    "arn:aws:lambda:us-west-2:123456789012:function:{name}"
                )),
                any_string(),
            ]),
            proptest::option::of(prop_oneof![
                Just("ALLOW".to_owned()),
                Just("DENY".to_owned()),
                any_string()
            ]),
        )
            .prop_map(|(uri, fallback)| {
                let mut handler = Map::new();
                if let Some(uri) = uri {
                    handler.insert("uri".to_owned(), Value::String(uri));
                }
                if let Some(fallback) = fallback {
                    handler.insert("fallbackResult".to_owned(), Value::String(fallback));
                }
                Value::Object(handler)
            })
            .boxed(),
        "capabilities" => proptest::collection::vec(
            prop_oneof![
                Just("SEND_MESSAGE".to_owned()),
                Just("DISCONNECT_USER".to_owned()),
                Just("DELETE_MESSAGE".to_owned()),
                any_string(),
            ],
            0..5,
        )
        .prop_map(|capabilities| json!(capabilities))
        .boxed(),
        "maximumMessageRatePerSecond"
        | "maximumMessageLength"
        | "sessionDurationInMinutes"
        | "maxResults" => any_number().boxed(),
        _ => any_string().prop_map(Value::String).boxed(),
    };
    prop_oneof![5 => valid_member_value(member, arns), 2 => typed, 1 => anything].boxed()
}

/// A JSON object with a random subset of `members`, each with a random value of roughly the right kind.
fn shaped_body(members: &'static [&'static str], arns: &KnownArns) -> BoxedStrategy<Vec<u8>> {
    let values: Vec<BoxedStrategy<Option<(&'static str, Value)>>> = members
        .iter()
        .map(|member| {
            proptest::option::of(member_value(member, arns).prop_map(move |value| (*member, value)))
                .boxed()
        })
        .collect();
    values
        .prop_map(|chosen| {
            let object: Map<String, Value> = chosen
                .into_iter()
                .flatten()
                .map(|(member, value)| (member.to_owned(), value))
                .collect();
            serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
        })
        .boxed()
}

/// JSON texts that serde_json::Value cannot hold: huge or odd numbers, lone surrogates, deep nesting, and
/// trailing garbage.
fn odd_json_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(br#"{"maxResults": 123456789012345678901234567890}"#.to_vec()),
        Just(br#"{"maximumMessageLength": 1e400}"#.to_vec()),
        Just(br#"{"maximumMessageLength": -1e-400}"#.to_vec()),
        Just(br#"{"name": "\ud800"}"#.to_vec()),
        Just(br#"{"name": "a"} trailing"#.to_vec()),
        Just(br#"{"name": "a", "name": "b"}"#.to_vec()),
        (1usize..4000)
            .prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        (1usize..4000).prop_map(|depth| format!(
            "{}1{}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        )
        .into_bytes()),
    ]
}

fn any_body(members: &'static [&'static str], arns: &KnownArns) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        2 => proptest::collection::vec(any::<u8>(), 0..512),
        2 => any_json().prop_map(|value| serde_json::to_vec(&value).unwrap_or_default()),
        1 => odd_json_text(),
        6 => shaped_body(members, arns),
    ]
    .boxed()
}

/// Percent-encodes every byte that is not unreserved, so any bytes can travel in a valid target.
fn encode_component(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn tag_label(arns: &KnownArns) -> impl Strategy<Value = String> + use<> {
    prop_oneof![
        4 => known_identifier(arns).prop_map(|arn| encode_component(arn.as_bytes())),
        1 => known_identifier(arns),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| encode_component(&bytes)),
        1 => Just("%FF%FE%80".to_owned()),
        1 => Just("%zz%".to_owned()),
    ]
}

fn query_string() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        any_string().prop_map(|key| format!("tagKeys={}", encode_component(key.as_bytes()))),
        ("[a-zA-Z%+=._~-]{0,12}", "[a-zA-Z0-9%+._~-]{0,12}")
            .prop_map(|(key, value)| format!("{key}={value}")),
        Just("tagKeys".to_owned()),
        Just("tagKeys=%FF".to_owned()),
    ];
    proptest::collection::vec(pair, 0..6).prop_map(|pairs| pairs.join("&"))
}

/// A request to one of the 17 routes (method and path right, everything else random).
fn routed_request(arns: KnownArns) -> impl Strategy<Value = FuzzRequest> {
    // One request in eight goes out unsigned.
    (0..ROUTES.len(), proptest::bool::weighted(0.125)).prop_flat_map(move |(route, unsigned)| {
        let (method, path, _) = ROUTES[route];
        let members = body_members(path);
        let path = if path.contains("{arn}") {
            tag_label(&arns)
                .prop_map(|label| format!("/tags/{label}"))
                .boxed()
        } else {
            Just(path.to_owned()).boxed()
        };
        (
            path,
            proptest::option::of(query_string()),
            any_body(members, &arns),
        )
            .prop_map(move |(path, query, body)| {
                let target = match query {
                    Some(query) => format!("{path}?{query}"),
                    None => path,
                };
                FuzzRequest {
                    method: method.to_owned(),
                    target: target.into_bytes(),
                    body,
                    sign: !unsigned,
                }
            })
    })
}

fn any_method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("PUT".to_owned()),
        Just("DELETE".to_owned()),
        Just("PATCH".to_owned()),
        Just("HEAD".to_owned()),
        Just("OPTIONS".to_owned()),
        "[A-Z]{1,10}",
    ]
}

/// Odd paths: doubled and dot segments, encoded invalid UTF-8, route names in the wrong places.
fn odd_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("tags".to_owned()),
        Just("CreateRoom".to_owned()),
        Just("ListRooms".to_owned()),
        Just("%FF%C0%AF".to_owned()),
        Just("%00".to_owned()),
        "[a-zA-Z0-9._~-]{1,12}",
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(|bytes| encode_component(&bytes)),
    ];
    proptest::collection::vec(segment, 0..6)
        .prop_map(|segments| format!("/{}", segments.join("/")))
        // The admin API is unsigned and can switch faults on: it is not what this test is about.
        .prop_filter("not the admin API", |path| !path.starts_with("/_emulator"))
}

fn odd_request() -> impl Strategy<Value = FuzzRequest> {
    (
        any_method(),
        odd_path(),
        proptest::option::of(query_string()),
        prop_oneof![
            Just(Vec::new()),
            proptest::collection::vec(any::<u8>(), 0..256),
            any_json().prop_map(|value| serde_json::to_vec(&value).unwrap_or_default()),
        ],
        any::<bool>(),
    )
        .prop_map(|(method, path, query, body, sign)| FuzzRequest {
            method,
            target: match query {
                Some(query) => format!("{path}?{query}").into_bytes(),
                None => path.into_bytes(),
            },
            body,
            sign,
        })
}

/// Request targets with raw bytes that are not allowed on a request line (non-ASCII, controls).
fn raw_byte_request() -> impl Strategy<Value = FuzzRequest> {
    (
        prop_oneof![Just("/CreateRoom"), Just("/tags/"), Just("/")],
        proptest::collection::vec(prop_oneof![0x80u8..=0xff, 0x00u8..0x20], 1..12),
        any::<bool>(),
    )
        .prop_map(|(prefix, raw, sign)| {
            let mut target = prefix.as_bytes().to_vec();
            target.extend(
                raw.iter()
                    .filter(|byte| !matches!(byte, b'\r' | b'\n' | b' ')),
            );
            FuzzRequest {
                method: "POST".to_owned(),
                target,
                body: b"{}".to_vec(),
                sign,
            }
        })
}

// ---------------------------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------------------------

struct Harness {
    runtime: Runtime,
    emulator: Option<Emulator>,
    target: Target,
    arns: KnownArns,
}

impl Harness {
    fn start() -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (emulator, arns) = runtime.block_on(async {
            let emulator = emulator::start(EmulatorConfig::default()).await;
            let client = emulator.sdk_client();
            let logging = client
                .create_logging_configuration()
                .name("fuzz")
                .destination_configuration(aws_sdk_ivschat::types::DestinationConfiguration::S3(
                    aws_sdk_ivschat::types::S3DestinationConfiguration::builder()
                        .bucket_name("fuzz-bucket")
                        .build()
                        .expect("s3 destination"),
                ))
                .send()
                .await
                .expect("create a logging configuration");
            let room = client
                .create_room()
                .name("fuzz")
                .logging_configuration_identifiers(logging.arn().expect("arn"))
                .send()
                .await
                .expect("create a room");
            let arns = KnownArns {
                room: room.arn().expect("arn").to_owned(),
                logging_configuration: logging.arn().expect("arn").to_owned(),
            };
            // Count only the fuzzed requests.
            emulator.reset_metrics();
            (emulator, arns)
        });
        let config = emulator.config();
        let target = Target {
            addr: emulator.local_addr(),
            host: emulator.local_addr().to_string(),
            access_key_id: config.access_key_id.clone(),
            secret_access_key: config.secret_access_key.clone(),
            region: config.region.clone(),
        };
        Harness {
            runtime,
            emulator: Some(emulator),
            target,
            arns,
        }
    }

    fn run(&self, name: &str, cases: u32, strategy: impl Strategy<Value = FuzzRequest>) {
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            // Shrinking re-sends requests; a bounded number keeps a failing run short.
            max_shrink_iters: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let result = runner.run(&strategy, |request| {
            self.runtime
                .block_on(self.target.check(&request))
                .map_err(|violation| {
                    TestCaseError::fail(format!("{violation}\nrequest: {}", describe(&request)))
                })
        });
        if let Err(failure) = result {
            panic!("{name}: {failure}");
        }
        self.assert_still_serving(name);
    }

    /// Every operation got requests that passed authentication, so the handlers themselves were fuzzed.
    fn assert_every_operation_was_reached(&self) {
        let emulator = self.emulator.as_ref().expect("running emulator");
        let metrics = emulator.metrics();
        let mut table = String::new();
        for ((operation, outcome), count) in &metrics {
            table.push_str(&format!("  {operation:<28} {outcome:<36} {count}\n"));
        }
        eprintln!("outcomes of the routed requests:\n{table}");
        const AUTHENTICATION_FAILURES: [&str; 3] = [
            "MissingAuthenticationTokenException",
            "UnrecognizedClientException",
            "InvalidSignatureException",
        ];
        for operation in ROUTES.map(|(_, _, operation)| operation) {
            let reached: u64 = metrics
                .iter()
                .filter(|((name, outcome), _)| {
                    name == operation && !AUTHENTICATION_FAILURES.contains(&outcome.as_str())
                })
                .map(|(_, count)| count)
                .sum();
            assert!(
                reached > 0,
                "no fuzzed {operation} request got past authentication:\n{table}"
            );
        }
        let successes: u64 = metrics
            .iter()
            .filter(|((_, outcome), _)| outcome == "success")
            .map(|(_, count)| count)
            .sum();
        assert!(successes > 0, "no fuzzed request succeeded:\n{table}");
    }

    /// A normal SDK call still works: the emulator survived whatever came before.
    fn assert_still_serving(&self, after: &str) {
        let emulator = self.emulator.as_ref().expect("running emulator");
        self.runtime.block_on(async {
            emulator
                .sdk_client_without_retries()
                .list_rooms()
                .send()
                .await
                .unwrap_or_else(|error| {
                    panic!("the emulator no longer serves ListRooms after {after}: {error:?}")
                });
        });
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            let _ = self.runtime.block_on(emulator.stop());
        }
    }
}

fn describe(request: &FuzzRequest) -> String {
    format!(
        "{} {} (signed: {}) body {:?}",
        request.method,
        String::from_utf8_lossy(&request.target),
        request.sign,
        String::from_utf8_lossy(&request.body)
            .chars()
            .take(300)
            .collect::<String>()
    )
}

#[test]
fn arbitrary_requests_never_crash_or_escape_the_error_format() {
    let harness = Harness::start();
    harness.run(
        "requests to the operation routes",
        ROUTED_CASES,
        routed_request(harness.arns.clone()),
    );
    harness.assert_every_operation_was_reached();
    harness.run("odd methods, paths and queries", OTHER_CASES, odd_request());
    harness.run(
        "raw invalid bytes on the request line",
        OTHER_CASES,
        raw_byte_request(),
    );

    // A body far over the 1 MiB cap, signed, is a 4xx in the error format rather than a failure.
    let huge = FuzzRequest {
        method: "POST".to_owned(),
        target: b"/CreateRoom".to_vec(),
        body: serde_json::to_vec(&json!({ "name": "x".repeat(3 * 1024 * 1024) }))
            .unwrap_or_default(),
        sign: true,
    };
    harness
        .runtime
        .block_on(harness.target.check(&huge))
        .unwrap_or_else(|violation| panic!("huge body: {violation}"));
    harness.assert_still_serving("a huge body");
}

/// The properties above only mean something if they can fail: a 5xx, a missing error type, a non-JSON
/// error body and a dropped connection are each caught by the checker.
#[test]
fn the_checker_rejects_what_it_must() {
    let answer = |text: &str| parse_response(text.as_bytes(), false).expect("parse");
    let errors = BTreeMap::from([
        (
            "server error",
            "HTTP/1.1 500 Internal\r\nx-amzn-RequestId: r\r\nx-amzn-errortype: X\r\ncontent-length: 15\r\n\r\n{\"message\":\"m\"}",
        ),
        (
            "no error type",
            "HTTP/1.1 400 Bad\r\nx-amzn-RequestId: r\r\ncontent-length: 15\r\n\r\n{\"message\":\"m\"}",
        ),
        (
            "body not JSON",
            "HTTP/1.1 400 Bad\r\nx-amzn-RequestId: r\r\nx-amzn-errortype: X\r\ncontent-length: 3\r\n\r\nbad",
        ),
        (
            "no message",
            "HTTP/1.1 404 Nope\r\nx-amzn-RequestId: r\r\nx-amzn-errortype: X\r\ncontent-length: 2\r\n\r\n{}",
        ),
        (
            "no request id",
            "HTTP/1.1 404 Nope\r\nx-amzn-errortype: X\r\ncontent-length: 15\r\n\r\n{\"message\":\"m\"}",
        ),
        (
            "ok not an object",
            "HTTP/1.1 200 OK\r\nx-amzn-RequestId: r\r\ncontent-length: 2\r\n\r\n[]",
        ),
    ]);
    let good = "HTTP/1.1 404 Nope\r\nx-amzn-RequestId: r\r\nx-amzn-errortype: X\r\ntransfer-encoding: chunked\r\n\r\n\
                f\r\n{\"message\":\"m\"}\r\n0\r\n\r\n";
    // Serve each canned answer from a one-shot TCP server and run the real checker against it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let serve = |canned: Option<&'static str>| async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                if let Ok((mut socket, _)) = listener.accept().await {
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    if let Some(canned) = canned {
                        let _ = socket.write_all(canned.as_bytes()).await;
                    }
                }
            });
            Target {
                addr,
                host: addr.to_string(),
                access_key_id: "test".to_owned(),
                secret_access_key: "test".to_owned(),
                region: "us-west-2".to_owned(),
            }
        };
        let request = FuzzRequest {
            method: "POST".to_owned(),
            target: b"/GetRoom".to_vec(),
            body: b"{}".to_vec(),
            sign: false,
        };
        for (what, canned) in errors {
            let target = serve(Some(canned)).await;
            assert!(
                target.check(&request).await.is_err(),
                "the checker accepted: {what}"
            );
        }
        let target = serve(None).await;
        assert!(
            target.check(&request).await.is_err(),
            "the checker accepted a dropped connection"
        );
        let target = serve(Some(good)).await;
        assert_eq!(
            target.check(&request).await,
            Ok(()),
            "the checker refused a good chunked answer"
        );
    });
    assert_eq!(answer(good).status, 404);
}
