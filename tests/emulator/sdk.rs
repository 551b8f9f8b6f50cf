//! Acceptance tests of the emulator through the real `aws-sdk-ivschat` over HTTP, plus hand-made signed and
//! unsigned HTTP requests (aws-sigv4 signer over a raw TCP connection) for what the typed SDK cannot send or
//! does not show: raw bodies and headers, malformed input, unions with two members, unsigned requests.
//!
//! Every test starts its own emulator on `127.0.0.1:0`.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ivschat::primitives::DateTime;
use aws_sdk_ivschat::types::{
    ChatTokenCapability, CreateLoggingConfigurationState, DestinationConfiguration, FallbackResult,
    FirehoseDestinationConfiguration, LoggingConfigurationState, MessageReviewHandler,
    ResourceType, S3DestinationConfiguration, UpdateLoggingConfigurationState,
    ValidationExceptionReason,
};
use ivschat_emulator::{
    ChatTokenRejection, Emulator, EmulatorConfig, RoomEventKind, TransitionFailures,
};
use ivschat_testsupport::sigv4::Signer;
use ivschat_testsupport::{emulator, serial};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LAMBDA: &str = "arn:aws:lambda:us-west-2:123456789012:function:review";

// ---- harness ---------------------------------------------------------------------------------------------------

fn s3(bucket: &str) -> DestinationConfiguration {
    DestinationConfiguration::S3(
        S3DestinationConfiguration::builder()
            .bucket_name(bucket)
            .build()
            .expect("bucket name set"),
    )
}

async fn create_logging_configuration(client: &Client, name: &str) -> String {
    let created = client
        .create_logging_configuration()
        .name(name)
        .destination_configuration(s3("demo-logging-bucket"))
        .send()
        .await
        .expect("create logging configuration");
    created.arn().expect("arn").to_string()
}

async fn create_room(client: &Client, name: &str) -> String {
    let created = client
        .create_room()
        .name(name)
        .send()
        .await
        .expect("create room");
    created.arn().expect("arn").to_string()
}

fn id_of(arn: &str) -> &str {
    arn.rsplit('/').next().expect("arn has an id")
}

fn is_aws_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn seconds_from_now(time: &DateTime) -> i64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    time.secs() - i64::try_from(now).expect("seconds fit")
}

type HttpResponse = aws_sdk_ivschat::config::http::HttpResponse;

/// The modeled error behind an SDK error.
fn modeled<E>(error: SdkError<E, HttpResponse>) -> aws_sdk_ivschat::Error
where
    aws_sdk_ivschat::Error: From<SdkError<E, HttpResponse>>,
{
    error.into()
}

fn validation<E>(
    error: SdkError<E, HttpResponse>,
) -> aws_sdk_ivschat::types::error::ValidationException
where
    aws_sdk_ivschat::Error: From<SdkError<E, HttpResponse>>,
{
    match modeled(error) {
        aws_sdk_ivschat::Error::ValidationException(validation) => validation,
        other => panic!("expected ValidationException, got {other:?}"),
    }
}

/// The modeled error of a call expected to fail; `None` when it succeeded.
fn failure<T, E>(result: Result<T, SdkError<E, HttpResponse>>) -> Option<aws_sdk_ivschat::Error>
where
    aws_sdk_ivschat::Error: From<SdkError<E, HttpResponse>>,
{
    result.err().map(Into::into)
}

pub(super) fn status_of<E>(error: &SdkError<E, HttpResponse>) -> u16 {
    error
        .raw_response()
        .map(|response| response.status().as_u16())
        .unwrap_or_default()
}

// ---- raw HTTP ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Auth {
    Signed,
    WrongSecret,
    UnknownKey,
    Unsigned,
}

#[derive(Debug)]
pub(super) struct RawResponse {
    pub(super) status: u16,
    pub(super) headers: HashMap<String, String>,
    pub(super) body: Vec<u8>,
}

impl RawResponse {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(super) fn error_type(&self) -> Option<&str> {
        self.header("x-amzn-errortype")
    }
}

/// Sends one request over a fresh TCP connection, signed (or not) like the SDK signs.
async fn raw(
    emulator: &Emulator,
    auth: Auth,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> RawResponse {
    let host = emulator.local_addr().to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.clone()),
        ("content-type".into(), "application/json".into()),
    ];
    if auth != Auth::Unsigned {
        let (key, secret) = match auth {
            Auth::WrongSecret => ("test", "not-the-secret"),
            Auth::UnknownKey => ("AKIDUNKNOWN", "test"),
            _ => ("test", "test"),
        };
        let url = format!("http://{host}{path_and_query}");
        let signed = Signer::new(key, secret, "us-west-2")
            .headers(method, &url, &headers, body)
            .expect("sign");
        headers.extend(signed);
    }
    send_raw(
        emulator.local_addr(),
        method.as_bytes(),
        path_and_query.as_bytes(),
        &headers,
        body,
    )
    .await
}

pub(super) async fn send_raw(
    addr: SocketAddr,
    method: &[u8],
    path_and_query: &[u8],
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let mut request = Vec::new();
    request.extend_from_slice(method);
    request.push(b' ');
    request.extend_from_slice(path_and_query);
    request.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(&request).await.expect("write request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    parse_response(&response)
}

fn parse_response(response: &[u8]) -> RawResponse {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut body = response[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn encode_label(arn: &str) -> String {
    percent_encoding::utf8_percent_encode(arn, percent_encoding::NON_ALPHANUMERIC).to_string()
}

// ---- rooms -----------------------------------------------------------------------------------------------------

#[tokio::test]
async fn rooms_round_trip_every_member() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let logging = create_logging_configuration(&client, "room-logs").await;
    let handler = MessageReviewHandler::builder()
        .uri(LAMBDA)
        .fallback_result(FallbackResult::Deny)
        .build();

    let created = client
        .create_room()
        .name("test-room-1")
        .maximum_message_rate_per_second(5)
        .maximum_message_length(256)
        .message_review_handler(handler.clone())
        .tags("team", "chat")
        .tags("env", "test")
        .logging_configuration_identifiers(&logging)
        .send()
        .await
        .expect("create room");
    let arn = created.arn().expect("arn");
    let id = created.id().expect("id");
    assert!(is_aws_id(id), "{id}");
    assert_eq!(
        arn,
        format!("arn:aws:ivschat:us-west-2:123456789012:room/{id}")
    );
    assert_eq!(created.name(), Some("test-room-1"));
    assert_eq!(created.maximum_message_rate_per_second(), Some(5));
    assert_eq!(created.maximum_message_length(), Some(256));
    assert_eq!(created.message_review_handler(), Some(&handler));
    let expected_tags: HashMap<String, String> = [
        ("team".to_string(), "chat".to_string()),
        ("env".to_string(), "test".to_string()),
    ]
    .into();
    assert_eq!(created.tags(), Some(&expected_tags));
    assert_eq!(
        created.logging_configuration_identifiers(),
        std::slice::from_ref(&logging)
    );
    assert_eq!(created.create_time(), created.update_time());
    assert!(seconds_from_now(created.create_time().expect("createTime")).abs() <= 5);

    let got = client
        .get_room()
        .identifier(arn)
        .send()
        .await
        .expect("get room");
    assert_eq!(got.arn(), Some(arn));
    assert_eq!(got.id(), Some(id));
    assert_eq!(got.name(), created.name());
    assert_eq!(got.create_time(), created.create_time());
    assert_eq!(got.update_time(), created.update_time());
    assert_eq!(got.maximum_message_rate_per_second(), Some(5));
    assert_eq!(got.maximum_message_length(), Some(256));
    assert_eq!(got.message_review_handler(), Some(&handler));
    assert_eq!(got.tags(), Some(&expected_tags));
    assert_eq!(
        got.logging_configuration_identifiers(),
        std::slice::from_ref(&logging)
    );

    let listed = client.list_rooms().send().await.expect("list rooms");
    let [summary] = listed.rooms() else {
        panic!("one room expected: {listed:?}")
    };
    assert_eq!(summary.arn(), Some(arn));
    assert_eq!(summary.id(), Some(id));
    assert_eq!(summary.name(), Some("test-room-1"));
    assert_eq!(summary.message_review_handler(), Some(&handler));
    assert_eq!(summary.create_time(), created.create_time());
    assert_eq!(summary.update_time(), created.update_time());
    assert_eq!(summary.tags(), Some(&expected_tags));
    assert_eq!(
        summary.logging_configuration_identifiers(),
        std::slice::from_ref(&logging)
    );
    assert_eq!(listed.next_token(), None);

    // The wire form: ISO-8601 strings, summaries without the maximumMessage* members.
    let raw_get = raw(
        &emulator,
        Auth::Signed,
        "POST",
        "/GetRoom",
        json!({"identifier": arn}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(raw_get.status, 200);
    assert_eq!(raw_get.header("content-type"), Some("application/json"));
    let body = raw_get.json();
    let create_time = body["createTime"].as_str().expect("createTime is a string");
    assert!(
        create_time.parse::<jiff::Timestamp>().is_ok()
            && create_time.ends_with('Z')
            && create_time.len() == "2022-03-16T04:44:09.123Z".len(),
        "{create_time}"
    );
    assert_eq!(
        body["messageReviewHandler"],
        json!({"uri": LAMBDA, "fallbackResult": "DENY"})
    );
    let raw_list = raw(&emulator, Auth::Signed, "POST", "/ListRooms", b"{}")
        .await
        .json();
    let summary = raw_list["rooms"][0].as_object().expect("summary object");
    let keys: BTreeSet<&str> = summary.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "arn",
            "id",
            "name",
            "createTime",
            "updateTime",
            "messageReviewHandler",
            "tags",
            "loggingConfigurationIdentifiers"
        ])
    );

    // DeleteRoom: 204 without a body, then 404.
    let deleted = raw(
        &emulator,
        Auth::Signed,
        "POST",
        "/DeleteRoom",
        json!({"identifier": arn}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.body.is_empty());
    client
        .delete_room()
        .identifier(arn)
        .send()
        .await
        .expect_err("already deleted");
    let error = client
        .get_room()
        .identifier(arn)
        .send()
        .await
        .expect_err("deleted room");
    assert_eq!(status_of(&error), 404);
    let aws_sdk_ivschat::Error::ResourceNotFoundException(not_found) = modeled(error) else {
        panic!("404 expected")
    };
    assert_eq!(not_found.resource_id(), id);
    assert_eq!(not_found.resource_type(), &ResourceType::Room);
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn create_room_applies_documented_defaults() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let bare = client
        .create_room()
        .send()
        .await
        .expect("create without members");
    assert_eq!(bare.name(), Some(""));
    assert_eq!(bare.maximum_message_rate_per_second(), Some(10));
    assert_eq!(bare.maximum_message_length(), Some(500));
    assert_eq!(bare.message_review_handler(), None);
    assert_eq!(
        bare.tags(),
        Some(&HashMap::new()),
        "tags are {{}} when empty, not absent"
    );
    assert!(bare.logging_configuration_identifiers().is_empty());
    let raw_body = raw(
        &emulator,
        Auth::Signed,
        "POST",
        "/GetRoom",
        json!({"identifier": bare.arn()}).to_string().as_bytes(),
    )
    .await
    .json();
    assert_eq!(raw_body["tags"], json!({}));
    assert_eq!(raw_body["loggingConfigurationIdentifiers"], json!([]));

    let with_uri = client
        .create_room()
        .message_review_handler(MessageReviewHandler::builder().uri(LAMBDA).build())
        .send()
        .await
        .expect("handler without fallback");
    let handler = with_uri.message_review_handler().expect("handler");
    assert_eq!(handler.fallback_result(), Some(&FallbackResult::Allow));

    // Smithy-2 SDKs may send their @default(0): read as "not set".
    let zeros = raw(
        &emulator,
        Auth::Signed,
        "POST",
        "/CreateRoom",
        br#"{"maximumMessageRatePerSecond": 0, "maximumMessageLength": 0}"#,
    )
    .await
    .json();
    assert_eq!(
        (
            zeros["maximumMessageRatePerSecond"].clone(),
            zeros["maximumMessageLength"].clone()
        ),
        (json!(10), json!(500))
    );
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn update_room_is_a_patch_and_bumps_update_time() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let logging = create_logging_configuration(&client, "patch-logs").await;
    let created = client
        .create_room()
        .name("before")
        .maximum_message_length(100)
        .message_review_handler(
            MessageReviewHandler::builder()
                .uri(LAMBDA)
                .fallback_result(FallbackResult::Deny)
                .build(),
        )
        .logging_configuration_identifiers(&logging)
        .tags("k", "v")
        .send()
        .await
        .expect("create");
    let arn = created.arn().expect("arn");

    let renamed = client
        .update_room()
        .identifier(arn)
        .name("after")
        .send()
        .await
        .expect("rename");
    assert_eq!(renamed.name(), Some("after"));
    assert_eq!(
        renamed.maximum_message_length(),
        Some(100),
        "omitted members stay"
    );
    assert_eq!(renamed.maximum_message_rate_per_second(), Some(10));
    assert_eq!(
        renamed.logging_configuration_identifiers(),
        std::slice::from_ref(&logging)
    );
    assert_eq!(
        renamed
            .message_review_handler()
            .and_then(|h| h.fallback_result()),
        Some(&FallbackResult::Deny)
    );
    assert_eq!(renamed.tags().map(HashMap::len), Some(1));
    assert_eq!(renamed.create_time(), created.create_time());
    assert!(
        renamed.update_time() > created.update_time(),
        "updateTime moves forward"
    );

    let updated = client
        .update_room()
        .identifier(arn)
        .maximum_message_rate_per_second(100)
        .message_review_handler(
            MessageReviewHandler::builder()
                .fallback_result(FallbackResult::Allow)
                .build(),
        )
        .send()
        .await
        .expect("fallback only");
    assert_eq!(updated.maximum_message_rate_per_second(), Some(100));
    let handler = updated.message_review_handler().expect("handler kept");
    assert_eq!(
        (handler.uri(), handler.fallback_result()),
        (Some(LAMBDA), Some(&FallbackResult::Allow))
    );

    let cleared = client
        .update_room()
        .identifier(arn)
        .message_review_handler(MessageReviewHandler::builder().uri("").build())
        .set_logging_configuration_identifiers(Some(vec![]))
        .send()
        .await
        .expect("clear handler and logging");
    assert_eq!(cleared.message_review_handler(), None);
    assert!(cleared.logging_configuration_identifiers().is_empty());
    let got = client.get_room().identifier(arn).send().await.expect("get");
    assert_eq!(got.message_review_handler(), None);
    assert!(got.logging_configuration_identifiers().is_empty());
    assert_eq!(got.update_time(), cleared.update_time());
    emulator.stop().await.expect("stop");
}

// ---- validation ------------------------------------------------------------------------------------------------

fn field_names(error: &aws_sdk_ivschat::types::error::ValidationException) -> BTreeSet<String> {
    assert_eq!(
        error.reason(),
        &ValidationExceptionReason::FieldValidationFailed
    );
    error
        .field_list()
        .iter()
        .map(|field| field.name().to_string())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| name.to_string()).collect()
}

#[tokio::test]
async fn validation_errors_name_every_bad_field() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let logging = create_logging_configuration(&client, "v").await;
    let room = create_room(&client, "v").await;
    let many_tags: HashMap<String, String> = (0..51)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();

    let error = client
        .create_room()
        .name("not a valid name")
        .maximum_message_rate_per_second(101)
        .maximum_message_length(501)
        .message_review_handler(
            MessageReviewHandler::builder()
                .uri("arn:aws:s3:::bucket")
                .build(),
        )
        .set_tags(Some(many_tags.clone()))
        .set_logging_configuration_identifiers(Some(vec![logging.clone(); 4]))
        .send()
        .await
        .expect_err("invalid room");
    assert_eq!(status_of(&error), 400);
    let room_error = validation(error);
    assert_eq!(
        field_names(&room_error),
        names(&[
            "name",
            "maximumMessageRatePerSecond",
            "maximumMessageLength",
            "messageReviewHandler.uri",
            "tags",
            "loggingConfigurationIdentifiers"
        ])
    );
    assert!(
        room_error
            .message()
            .starts_with("6 validation errors detected"),
        "{}",
        room_error.message()
    );

    let firehose = DestinationConfiguration::Firehose(
        FirehoseDestinationConfiguration::builder()
            .delivery_stream_name("no spaces")
            .build()
            .expect("stream name set"),
    );
    let keys: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
    // Each invalid call (run one after another, in this order) with the fields its error must name.
    let cases: Vec<(&str, &[&str], Option<aws_sdk_ivschat::Error>)> = vec![
        (
            "id instead of ARN",
            &["identifier"],
            failure(client.get_room().identifier("g1H2I3j4k5L6").send().await),
        ),
        (
            "room ARN as logging identifier",
            &["loggingConfigurationIdentifiers"],
            failure(
                client
                    .update_room()
                    .identifier(&room)
                    .set_logging_configuration_identifiers(Some(vec![room.clone()]))
                    .send()
                    .await,
            ),
        ),
        (
            "invalid token request",
            &[
                "userId",
                "capabilities",
                "sessionDurationInMinutes",
                "attributes",
            ],
            failure(
                client
                    .create_chat_token()
                    .room_identifier(&room)
                    .user_id("")
                    .capabilities(ChatTokenCapability::from("SHOUT"))
                    .session_duration_in_minutes(181)
                    .attributes("big", "x".repeat(1100))
                    .send()
                    .await,
            ),
        ),
        (
            "invalid event",
            &["eventName", "attributes"],
            failure(
                client
                    .send_event()
                    .room_identifier(&room)
                    .event_name("e".repeat(101))
                    .attributes("a", "b".repeat(1024))
                    .send()
                    .await,
            ),
        ),
        (
            "bad id",
            &["id", "reason"],
            failure(
                client
                    .delete_message()
                    .room_identifier(&room)
                    .id("short")
                    .reason("")
                    .send()
                    .await,
            ),
        ),
        (
            "bad disconnect",
            &["userId", "reason"],
            failure(
                client
                    .disconnect_user()
                    .room_identifier(&room)
                    .user_id("u".repeat(129))
                    .reason("r".repeat(257))
                    .send()
                    .await,
            ),
        ),
        (
            "bad list",
            &["maxResults", "name"],
            failure(
                client
                    .list_rooms()
                    .max_results(51)
                    .name("bad name")
                    .send()
                    .await,
            ),
        ),
        (
            "bad list",
            &["maxResults"],
            failure(
                client
                    .list_logging_configurations()
                    .max_results(-1)
                    .send()
                    .await,
            ),
        ),
        (
            "bad logging configuration",
            &["name", "destinationConfiguration.s3.bucketName"],
            failure(
                client
                    .create_logging_configuration()
                    .name("bad/name")
                    .destination_configuration(s3("A"))
                    .send()
                    .await,
            ),
        ),
        (
            "bad destination",
            &["destinationConfiguration.firehose.deliveryStreamName"],
            failure(
                client
                    .update_logging_configuration()
                    .identifier(&logging)
                    .destination_configuration(firehose)
                    .send()
                    .await,
            ),
        ),
        (
            "51 tags",
            &["tags"],
            failure(
                client
                    .tag_resource()
                    .resource_arn(&room)
                    .set_tags(Some(many_tags))
                    .send()
                    .await,
            ),
        ),
        (
            "51 keys",
            &["tagKeys"],
            failure(
                client
                    .untag_resource()
                    .resource_arn(&room)
                    .set_tag_keys(Some(keys))
                    .send()
                    .await,
            ),
        ),
        (
            "not an ivschat ARN",
            &["resourceArn"],
            failure(
                client
                    .list_tags_for_resource()
                    .resource_arn("arn:aws:ivs:us-west-2:123456789012:channel/abc")
                    .send()
                    .await,
            ),
        ),
    ];
    for (what, fields, error) in cases {
        match error {
            Some(aws_sdk_ivschat::Error::ValidationException(error)) => {
                assert_eq!(field_names(&error), names(fields), "{what}");
            }
            other => panic!("{what}: expected ValidationException, got {other:?}"),
        }
    }

    // What the typed SDK cannot send: a union with two members, a missing union, a missing required member,
    // UntagResource without tagKeys.
    let check_fields = |response: RawResponse, expected: &[&str]| {
        assert_eq!(response.status, 400, "{response:?}");
        assert_eq!(response.error_type(), Some("ValidationException"));
        let body = response.json();
        assert_eq!(body["reason"], "FIELD_VALIDATION_FAILED");
        let fields: BTreeSet<String> = body["fieldList"]
            .as_array()
            .expect("fieldList")
            .iter()
            .map(|field| field["name"].as_str().expect("name").to_string())
            .collect();
        assert_eq!(fields, names(expected));
    };
    let two = json!({"destinationConfiguration": {"s3": {"bucketName": "abc"}, "firehose": {"deliveryStreamName": "s"}}});
    let path = format!("/tags/{}", encode_label(&room));
    let raw_cases: [(&str, &str, Vec<u8>, &[&str]); 5] = [
        (
            "POST",
            "/CreateLoggingConfiguration",
            two.to_string().into_bytes(),
            &["destinationConfiguration"],
        ),
        (
            "POST",
            "/CreateLoggingConfiguration",
            b"{}".to_vec(),
            &["destinationConfiguration"],
        ),
        (
            "POST",
            "/CreateChatToken",
            b"{}".to_vec(),
            &["roomIdentifier", "userId"],
        ),
        ("DELETE", &path, Vec::new(), &["tagKeys"]),
        ("POST", &path, b"{}".to_vec(), &["tags"]),
    ];
    for (method, path, body, expected) in raw_cases {
        check_fields(
            raw(&emulator, Auth::Signed, method, path, &body).await,
            expected,
        );
    }

    // Malformed JSON and wrong member types are serialization errors.
    for body in [
        &b"{\"name\": "[..],
        b"[1, 2]",
        b"{\"maximumMessageLength\": \"ten\"}",
        b"{\"tags\": {\"k\": 1}}",
        b"\xff\xfe{}",
    ] {
        let response = raw(&emulator, Auth::Signed, "POST", "/CreateRoom", body).await;
        assert_eq!(
            (response.status, response.error_type()),
            (400, Some("SerializationException")),
            "{body:?}"
        );
        assert!(response.json()["message"].is_string());
    }
    emulator.stop().await.expect("stop");
}

// ---- 404 / 409 / 402 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_resources_are_404_with_resource_id_and_type() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let room = "arn:aws:ivschat:us-west-2:123456789012:room/missingRoom1";
    let logging = "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/missingLogs1";
    let foreign = "arn:aws:ivschat:eu-west-1:123456789012:room/foreignRoom1";

    // Each call with the resource id its error must name (calls run one after another, in this order).
    let errors: Vec<(&str, Option<aws_sdk_ivschat::Error>)> = vec![
        (
            "missingRoom1",
            failure(client.get_room().identifier(room).send().await),
        ),
        (
            "foreignRoom1",
            failure(client.get_room().identifier(foreign).send().await),
        ),
        (
            "missingRoom1",
            failure(client.update_room().identifier(room).name("x").send().await),
        ),
        (
            "missingRoom1",
            failure(client.delete_room().identifier(room).send().await),
        ),
        (
            "missingRoom1",
            failure(
                client
                    .create_chat_token()
                    .room_identifier(room)
                    .user_id("u")
                    .send()
                    .await,
            ),
        ),
        (
            "missingRoom1",
            failure(
                client
                    .send_event()
                    .room_identifier(room)
                    .event_name("e")
                    .send()
                    .await,
            ),
        ),
        (
            "missingRoom1",
            failure(
                client
                    .delete_message()
                    .room_identifier(room)
                    .id("abcdefghijkl")
                    .send()
                    .await,
            ),
        ),
        (
            "missingRoom1",
            failure(
                client
                    .disconnect_user()
                    .room_identifier(room)
                    .user_id("u")
                    .send()
                    .await,
            ),
        ),
        (
            "missingLogs1",
            failure(
                client
                    .get_logging_configuration()
                    .identifier(logging)
                    .send()
                    .await,
            ),
        ),
        (
            "missingLogs1",
            failure(
                client
                    .update_logging_configuration()
                    .identifier(logging)
                    .name("n")
                    .send()
                    .await,
            ),
        ),
        (
            "missingLogs1",
            failure(
                client
                    .delete_logging_configuration()
                    .identifier(logging)
                    .send()
                    .await,
            ),
        ),
        (
            "missingRoom1",
            failure(
                client
                    .list_tags_for_resource()
                    .resource_arn(room)
                    .send()
                    .await,
            ),
        ),
        (
            "missingLogs1",
            failure(
                client
                    .tag_resource()
                    .resource_arn(logging)
                    .tags("a", "b")
                    .send()
                    .await,
            ),
        ),
        (
            "missingRoom1",
            failure(
                client
                    .untag_resource()
                    .resource_arn(room)
                    .tag_keys("a")
                    .send()
                    .await,
            ),
        ),
        (
            "missingLogs1",
            failure(
                client
                    .list_rooms()
                    .logging_configuration_identifier(logging)
                    .send()
                    .await,
            ),
        ),
        (
            "missingLogs1",
            failure(
                client
                    .create_room()
                    .logging_configuration_identifiers(logging)
                    .send()
                    .await,
            ),
        ),
    ];
    for (index, (expected_id, error)) in errors.into_iter().enumerate() {
        match error {
            Some(aws_sdk_ivschat::Error::ResourceNotFoundException(not_found)) => {
                assert_eq!(not_found.resource_id(), expected_id, "case {index}");
                assert_eq!(
                    not_found.resource_type(),
                    &ResourceType::Room,
                    "case {index}"
                );
                assert!(!not_found.message().is_empty());
            }
            other => panic!("case {index}: expected ResourceNotFoundException, got {other:?}"),
        }
    }
    assert_eq!(
        emulator.request_count("GetRoom", "ResourceNotFoundException"),
        2
    );

    // Unknown operations: 404 UnknownOperationException (signed, so authentication is not the reason).
    for (method, path) in [
        ("POST", "/CreateRooms"),
        ("GET", "/CreateRoom"),
        ("PUT", "/tags/x"),
        ("POST", "/"),
    ] {
        let response = raw(&emulator, Auth::Signed, method, path, b"{}").await;
        assert_eq!(
            (response.status, response.error_type()),
            (404, Some("UnknownOperationException")),
            "{method} {path}"
        );
    }
    assert_eq!(
        emulator.request_count("unknown", "UnknownOperationException"),
        4
    );
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn conflicts_are_409() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let logging = create_logging_configuration(&client, "attached").await;
    let room = client
        .create_room()
        .logging_configuration_identifiers(&logging)
        .send()
        .await
        .expect("room");

    let error = client
        .delete_logging_configuration()
        .identifier(&logging)
        .send()
        .await
        .expect_err("attached");
    assert_eq!(status_of(&error), 409);
    let aws_sdk_ivschat::Error::ConflictException(conflict) = modeled(error) else {
        panic!("409 expected")
    };
    assert_eq!(conflict.resource_id(), id_of(&logging));
    assert_eq!(conflict.resource_type(), &ResourceType::Room);
    client
        .get_logging_configuration()
        .identifier(&logging)
        .send()
        .await
        .expect("nothing changed");

    // Not ACTIVE yet: cannot be attached, updated or deleted.
    emulator.set_logging_transition_delay(Duration::from_secs(30));
    let creating = create_logging_configuration(&client, "creating").await;
    let error = client
        .create_room()
        .logging_configuration_identifiers(&creating)
        .send()
        .await
        .expect_err("CREATING");
    assert_eq!(error.code(), Some("ConflictException"));
    let error = client
        .update_room()
        .identifier(room.arn().expect("arn"))
        .logging_configuration_identifiers(&creating)
        .send()
        .await;
    assert_eq!(
        error.expect_err("CREATING").code(),
        Some("ConflictException")
    );
    let error = client
        .update_logging_configuration()
        .identifier(&creating)
        .name("x")
        .send()
        .await
        .expect_err("busy");
    assert_eq!(error.code(), Some("ConflictException"));
    let error = client
        .delete_logging_configuration()
        .identifier(&creating)
        .send()
        .await
        .expect_err("busy");
    assert_eq!(error.code(), Some("ConflictException"));
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn quotas_are_402_with_the_limit() {
    let emulator = emulator::start(EmulatorConfig {
        room_quota: Some(2),
        logging_configuration_quota: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let client = emulator.sdk_client();
    create_room(&client, "a").await;
    let second = create_room(&client, "b").await;
    let error = client.create_room().send().await.expect_err("room quota");
    assert_eq!(status_of(&error), 402);
    let aws_sdk_ivschat::Error::ServiceQuotaExceededException(quota) = modeled(error) else {
        panic!("402 expected")
    };
    assert_eq!(quota.limit(), 2);
    assert_eq!(quota.resource_type(), &ResourceType::Room);
    assert!(!quota.resource_id().is_empty());
    client
        .delete_room()
        .identifier(&second)
        .send()
        .await
        .expect("delete");
    create_room(&client, "c").await;

    create_logging_configuration(&client, "only").await;
    let error = client
        .create_logging_configuration()
        .destination_configuration(s3("abc"))
        .send()
        .await
        .expect_err("quota");
    let aws_sdk_ivschat::Error::ServiceQuotaExceededException(quota) = modeled(error) else {
        panic!("402 expected")
    };
    assert_eq!(quota.limit(), 1);

    // Raised at run time.
    emulator.set_room_quota(None);
    create_room(&client, "d").await;
    emulator.stop().await.expect("stop");
}

// ---- throttling, faults, latency -------------------------------------------------------------------------------

#[tokio::test]
async fn tps_quotas_throttle_with_429_when_enforced() {
    // Bursts must outrun the quotas: never beside a heavy test.
    let _alone = serial::alone().await;
    let emulator = emulator::start(EmulatorConfig {
        enforce_quotas: true,
        ..EmulatorConfig::default()
    })
    .await;
    let client = emulator.sdk_client_without_retries();
    let logging = create_logging_configuration(&client, "throttled").await;

    // GetLoggingConfiguration allows 3 TPS: a quick burst of 10 must see 429s.
    let body = json!({"identifier": logging}).to_string();
    let mut throttled = None;
    let mut passed = 0;
    for _ in 0..10 {
        let response = raw(
            &emulator,
            Auth::Signed,
            "POST",
            "/GetLoggingConfiguration",
            body.as_bytes(),
        )
        .await;
        match response.status {
            200 => passed += 1,
            429 => throttled = Some(response),
            other => panic!("unexpected status {other}"),
        }
    }
    let throttled = throttled.expect("at least one request is throttled");
    assert!(
        passed >= 2,
        "the bucket admits a burst of 3 (the create used one)"
    );
    assert_eq!(throttled.error_type(), Some("ThrottlingException"));
    let body = throttled.json();
    assert_eq!(body["limit"], 3);
    assert_eq!(body["resourceType"], "ROOM");
    assert!(body["resourceId"].is_string());
    assert!(emulator.request_count("GetLoggingConfiguration", "ThrottlingException") >= 1);

    // SendEvent models ThrottlingException: the SDK parses its members. 100 TPS: a concurrent burst of 300.
    let room = create_room(&client, "events").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let client = client.clone();
        let room = room.clone();
        tasks.spawn(async move {
            client
                .send_event()
                .room_identifier(room)
                .event_name("e")
                .send()
                .await
        });
    }
    let mut limits = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Err(error) = result.expect("task") {
            let aws_sdk_ivschat::Error::ThrottlingException(throttling) = modeled(error) else {
                panic!("only throttling errors expected")
            };
            limits.push(throttling.limit());
        }
    }
    assert!(!limits.is_empty(), "300 events at once exceed 100 TPS");
    assert!(limits.iter().all(|limit| *limit == 100));

    emulator.set_enforce_quotas(false);
    for _ in 0..10 {
        client
            .get_logging_configuration()
            .identifier(&logging)
            .send()
            .await
            .expect("no quota any more");
    }
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn injected_faults_and_latency() {
    let emulator = emulator::start(EmulatorConfig {
        fault_rate: 1.0,
        ..EmulatorConfig::default()
    })
    .await;
    let client = emulator.sdk_client_without_retries();
    let mut codes = BTreeSet::new();
    for _ in 0..40 {
        let error = client
            .list_rooms()
            .send()
            .await
            .expect_err("every request faults");
        let status = status_of(&error);
        let code = error.code().map(str::to_string);
        match (status, code.as_deref()) {
            (500, Some("InternalServerException")) | (503, Some("ServiceUnavailableException")) => {
            }
            other => panic!("unexpected fault {other:?}"),
        }
        codes.insert(status);
    }
    assert_eq!(
        codes,
        BTreeSet::from([500, 503]),
        "both kinds of faults are injected"
    );
    assert_eq!(
        emulator.request_count("ListRooms", "InternalServerException")
            + emulator.request_count("ListRooms", "ServiceUnavailableException"),
        40
    );

    // The modeled InternalServerException of the tag operations is parsed by the SDK.
    let error = client
        .list_tags_for_resource()
        .resource_arn("arn:aws:ivschat:us-west-2:123456789012:room/abc")
        .send()
        .await;
    let error = error.expect_err("fault").into_service_error();
    assert!(
        error.is_internal_server_exception() || error.code() == Some("ServiceUnavailableException"),
        "{error:?}"
    );

    // Admin endpoint: switch faults off and add latency.
    let response = send_raw(
        emulator.local_addr(),
        b"POST",
        b"/_emulator/settings",
        &[],
        br#"{"faultRate": 0, "extraLatency": "300ms"}"#,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["faultRate"], 0.0);
    assert_eq!(response.json()["extraLatency"], "300ms");
    let started = std::time::Instant::now();
    client
        .list_rooms()
        .send()
        .await
        .expect("no faults any more");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    emulator.set_extra_latency(Duration::ZERO);

    // A partial rate: some requests fault, some do not.
    emulator.set_fault_rate(0.5).expect("valid rate");
    let mut outcomes = BTreeSet::new();
    for _ in 0..60 {
        outcomes.insert(client.list_rooms().send().await.is_ok());
    }
    assert_eq!(outcomes, BTreeSet::from([false, true]));
    assert!(emulator.set_fault_rate(1.5).is_err());
    let response = send_raw(
        emulator.local_addr(),
        b"POST",
        b"/_emulator/settings",
        &[],
        br#"{"faultRate": 7}"#,
    )
    .await;
    assert_eq!(
        (response.status, response.error_type()),
        (400, Some("ValidationException"))
    );
    emulator.stop().await.expect("stop");
}

/// Names of the rooms ListRooms shows (one page is enough for these tests).
async fn listed_room_names(client: &Client) -> Vec<String> {
    let listed = client.list_rooms().send().await.expect("ListRooms");
    listed
        .rooms()
        .iter()
        .filter_map(|room| room.name().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn late_commits_answer_500_at_once_and_carry_the_write_out_after_the_delay() {
    let delay = Duration::from_millis(800);
    let emulator = emulator::start(EmulatorConfig {
        late_commit_rate: 1.0,
        late_commit_delay: delay,
        ..EmulatorConfig::default()
    })
    .await;
    let client = emulator.sdk_client_without_retries();
    let sent = std::time::Instant::now();
    let error = client
        .create_room()
        .name("late-create")
        .tags("owner", "test")
        .send()
        .await
        .expect_err("answered with a 500");
    assert_eq!(status_of(&error), 500);
    assert_eq!(error.code(), Some("InternalServerException"));
    let message = error.message().unwrap_or_default();
    assert!(
        message.contains("CreateRoom") && message.contains("late commit"),
        "{message}"
    );
    let named = |client: aws_sdk_ivschat::Client| async move {
        client
            .list_rooms()
            .name("late-create")
            .send()
            .await
            .expect("reads are never delayed")
            .rooms()
            .to_vec()
    };
    assert!(
        named(client.clone()).await.is_empty(),
        "nothing is made before the delay"
    );
    assert_eq!(emulator.late_commit_count("CreateRoom"), 0);
    let rooms = loop {
        let rooms = named(client.clone()).await;
        if !rooms.is_empty() {
            break rooms;
        }
        assert!(
            sent.elapsed() < delay * 10,
            "the late commit was never carried out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(sent.elapsed() >= delay, "carried out before its delay");
    assert_eq!(rooms.len(), 1, "carried out once");
    let tags = rooms[0].tags().expect("tags");
    assert_eq!(tags.get("owner").map(String::as_str), Some("test"));
    assert_eq!(emulator.late_commit_count("CreateRoom"), 1);
    assert_eq!(
        emulator.request_count("CreateRoom", "InternalServerException"),
        1
    );
    assert!(
        emulator
            .metrics_text()
            .contains("ivschat_emulator_late_commits_total{operation=\"CreateRoom\"} 1\n")
    );
    // Reads are never delayed, and the setting reads back as set.
    let settings = emulator.settings();
    assert_eq!(
        (settings.late_commit_rate, settings.late_commit_delay),
        (1.0, delay)
    );
    let _ = emulator.stop().await;
}

#[tokio::test]
async fn lost_responses_keep_the_change_behind_a_500() {
    let emulator = emulator::start(EmulatorConfig {
        lost_response_rate: 1.0,
        ..EmulatorConfig::default()
    })
    .await;
    let client = emulator.sdk_client_without_retries();

    // CreateRoom: the client sees a 500 saying the response was dropped, yet the room exists.
    let error = client
        .create_room()
        .name("lost-create")
        .send()
        .await
        .expect_err("the response is lost");
    assert_eq!(status_of(&error), 500);
    assert_eq!(error.code(), Some("InternalServerException"));
    let message = error.message().unwrap_or_default();
    assert!(
        message.contains("CreateRoom") && message.contains("response was dropped"),
        "{message}"
    );
    let listed = client
        .list_rooms()
        .name("lost-create")
        .send()
        .await
        .expect("reads never lose their response");
    assert_eq!(listed.rooms().len(), 1, "the create was made exactly once");
    let arn = listed.rooms()[0].arn().expect("arn").to_string();
    assert_eq!(
        emulator.request_count("CreateRoom", "InternalServerException"),
        1
    );
    assert_eq!(emulator.request_count("CreateRoom", "success"), 0);
    assert_eq!(emulator.lost_response_count("CreateRoom"), 1);
    assert!(
        emulator
            .metrics_text()
            .contains("ivschat_emulator_lost_responses_total{operation=\"CreateRoom\"} 1\n")
    );

    // UpdateRoom and TagResource: errors for the client, effects on the room.
    let error = client
        .update_room()
        .identifier(&arn)
        .maximum_message_length(123)
        .send()
        .await
        .expect_err("the response is lost");
    assert_eq!(status_of(&error), 500);
    let error = client
        .tag_resource()
        .resource_arn(&arn)
        .tags("env", "test")
        .tags("team", "chat")
        .send()
        .await
        .expect_err("the response is lost")
        .into_service_error();
    assert!(
        error.is_internal_server_exception(),
        "TagResource models InternalServerException: {error:?}"
    );
    let room = client
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect("GetRoom");
    assert_eq!(room.maximum_message_length(), Some(123));
    let tags = room.tags().expect("tags");
    assert_eq!(tags.get("env").map(String::as_str), Some("test"));

    let error = client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("env")
        .send()
        .await
        .expect_err("the response is lost");
    assert_eq!(status_of(&error), 500);
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("ListTagsForResource");
    assert_eq!(
        tags.tags().keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["team"]
    );

    // Logging configurations too.
    let error = client
        .create_logging_configuration()
        .name("lost-logging")
        .destination_configuration(s3("demo-logging-bucket"))
        .send()
        .await
        .expect_err("the response is lost");
    assert_eq!(status_of(&error), 500);
    let configurations = client
        .list_logging_configurations()
        .send()
        .await
        .expect("ListLoggingConfigurations");
    let names: Vec<_> = configurations
        .logging_configurations()
        .iter()
        .filter_map(|configuration| configuration.name())
        .collect();
    assert_eq!(names, vec!["lost-logging"]);

    // A write that fails changed nothing and answers its own error, not a lost response.
    let missing = "arn:aws:ivschat:us-west-2:123456789012:room/abcdABCD1234";
    let error = client
        .update_room()
        .identifier(missing)
        .maximum_message_length(5)
        .send()
        .await
        .expect_err("no such room");
    assert_eq!(status_of(&error), 404);
    assert_eq!(emulator.lost_response_count("UpdateRoom"), 1);

    // The data plane is never affected.
    client
        .create_chat_token()
        .room_identifier(&arn)
        .user_id("viewer")
        .send()
        .await
        .expect("CreateChatToken keeps its response");
    client
        .send_event()
        .room_identifier(&arn)
        .event_name("e")
        .send()
        .await
        .expect("SendEvent keeps its response");

    // DeleteRoom: a 500, and the room is gone.
    let error = client
        .delete_room()
        .identifier(&arn)
        .send()
        .await
        .expect_err("the response is lost");
    assert_eq!(status_of(&error), 500);
    let error = client
        .get_room()
        .identifier(&arn)
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(status_of(&error), 404);

    // The hazard: a client that retries a create without an idempotency token makes one room per attempt.
    let retrying = emulator.sdk_client_with(|builder| {
        builder.retry_config(
            aws_sdk_ivschat::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
    });
    retrying
        .create_room()
        .name("retried")
        .send()
        .await
        .expect_err("every attempt loses its response");
    let retried = listed_room_names(&client)
        .await
        .into_iter()
        .filter(|name| name == "retried")
        .count();
    assert_eq!(retried, 3, "one room per attempt");

    // Admin API: the setting is visible and can be switched off; then everything is normal again.
    let settings = send_raw(
        emulator.local_addr(),
        b"GET",
        b"/_emulator/settings",
        &[],
        b"",
    )
    .await;
    assert_eq!(settings.json()["lostResponseRate"], 1.0);
    let response = send_raw(
        emulator.local_addr(),
        b"PUT",
        b"/_emulator/settings",
        &[],
        br#"{"lostResponseRate": 0}"#,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["lostResponseRate"], 0.0);
    assert_eq!(emulator.settings().lost_response_rate, 0.0);
    let arn = create_room(&client, "normal").await;
    client
        .update_room()
        .identifier(&arn)
        .maximum_message_length(99)
        .send()
        .await
        .expect("UpdateRoom answers normally");
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags("env", "test")
        .send()
        .await
        .expect("TagResource answers normally");
    client
        .delete_room()
        .identifier(&arn)
        .send()
        .await
        .expect("DeleteRoom answers normally");
    assert_eq!(emulator.lost_response_count("CreateRoom"), 4);
    assert_eq!(emulator.request_count("CreateRoom", "success"), 1);

    // The Rust setter and the admin API refuse rates outside 0..=1 and change nothing.
    emulator.set_lost_response_rate(0.5).expect("valid rate");
    assert!(emulator.set_lost_response_rate(1.5).is_err());
    assert!(emulator.set_lost_response_rate(-1.0).is_err());
    let response = send_raw(
        emulator.local_addr(),
        b"POST",
        b"/_emulator/settings",
        &[],
        br#"{"lostResponseRate": 2}"#,
    )
    .await;
    assert_eq!(
        (response.status, response.error_type()),
        (400, Some("ValidationException"))
    );
    assert_eq!(emulator.settings().lost_response_rate, 0.5);
    emulator.stop().await.expect("stop");
}

// ---- authentication --------------------------------------------------------------------------------------------

#[tokio::test]
async fn authentication_failures_are_403() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let wrong_secret = emulator.sdk_client_with(|builder| {
        builder.credentials_provider(aws_sdk_ivschat::config::Credentials::new(
            "test", "wrong", None, None, "t",
        ))
    });
    let error = wrong_secret
        .list_rooms()
        .send()
        .await
        .expect_err("wrong secret");
    assert_eq!(
        (status_of(&error), error.code()),
        (403, Some("InvalidSignatureException"))
    );

    let unknown_key = emulator.sdk_client_with(|builder| {
        builder.credentials_provider(aws_sdk_ivschat::config::Credentials::new(
            "AKIDOTHER",
            "test",
            None,
            None,
            "t",
        ))
    });
    let error = unknown_key
        .list_rooms()
        .send()
        .await
        .expect_err("unknown key");
    assert_eq!(
        (status_of(&error), error.code()),
        (403, Some("UnrecognizedClientException"))
    );

    // Every IVS Chat region is served by default; one outside `--regions` (ca-central-1 has no IVS Chat) is
    // refused by the signature's scope.
    let unserved_region = emulator.sdk_client_with(|builder| {
        builder.region(aws_sdk_ivschat::config::Region::new("ca-central-1"))
    });
    let error = unserved_region
        .list_rooms()
        .send()
        .await
        .expect_err("a region outside --regions");
    assert_eq!(
        (status_of(&error), error.code()),
        (403, Some("InvalidSignatureException"))
    );
    assert!(
        error
            .message()
            .is_some_and(|message| message.contains("not 'ca-central-1'")),
        "{error:?}"
    );

    let unsigned = raw(&emulator, Auth::Unsigned, "POST", "/ListRooms", b"{}").await;
    assert_eq!(
        (unsigned.status, unsigned.error_type()),
        (403, Some("MissingAuthenticationTokenException"))
    );
    assert!(unsigned.json()["message"].is_string());
    let raw_wrong = raw(&emulator, Auth::WrongSecret, "POST", "/ListRooms", b"{}").await;
    assert_eq!(
        (raw_wrong.status, raw_wrong.error_type()),
        (403, Some("InvalidSignatureException"))
    );
    let raw_unknown = raw(&emulator, Auth::UnknownKey, "POST", "/ListRooms", b"{}").await;
    assert_eq!(
        (raw_unknown.status, raw_unknown.error_type()),
        (403, Some("UnrecognizedClientException"))
    );
    // Authentication comes before routing: an unsigned unknown path is 403 too.
    let unsigned_unknown = raw(&emulator, Auth::Unsigned, "POST", "/Nope", b"{}").await;
    assert_eq!(unsigned_unknown.status, 403);

    assert_eq!(
        emulator.request_count("ListRooms", "MissingAuthenticationTokenException"),
        1
    );
    assert_eq!(
        emulator.request_count("ListRooms", "InvalidSignatureException"),
        3
    );
    assert_eq!(
        emulator.request_count("ListRooms", "UnrecognizedClientException"),
        2
    );
    assert_eq!(emulator.request_count("ListRooms", "success"), 0);
    emulator.stop().await.expect("stop");
}

// ---- pagination and listing ------------------------------------------------------------------------------------

#[tokio::test]
async fn pagination_crosses_pages_and_rejects_bad_tokens() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(create_room(&client, &format!("room-{i}")).await);
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut page_sizes = Vec::new();
    loop {
        let page = client
            .list_rooms()
            .max_results(3)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("page");
        page_sizes.push(page.rooms().len());
        seen.extend(
            page.rooms()
                .iter()
                .map(|room| room.arn().expect("arn").to_string()),
        );
        match page.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(page_sizes, vec![3, 3, 1]);
    let expected: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(seen, expected, "newest first, each room once");

    let via_paginator: Vec<String> = client
        .list_rooms()
        .max_results(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate")
        .iter()
        .flat_map(|page| page.rooms())
        .map(|room| room.arn().expect("arn").to_string())
        .collect();
    assert_eq!(via_paginator, expected);

    // Deleting between pages neither skips nor repeats the others.
    let first = client
        .list_rooms()
        .max_results(3)
        .send()
        .await
        .expect("page 1");
    client
        .delete_room()
        .identifier(&expected[0])
        .send()
        .await
        .expect("delete listed");
    client
        .delete_room()
        .identifier(&expected[4])
        .send()
        .await
        .expect("delete unlisted");
    let second = client
        .list_rooms()
        .max_results(3)
        .set_next_token(first.next_token().map(str::to_string))
        .send()
        .await;
    let second: Vec<String> = second
        .expect("page 2")
        .rooms()
        .iter()
        .map(|r| r.arn().expect("arn").to_string())
        .collect();
    assert_eq!(
        second,
        vec![
            expected[3].clone(),
            expected[5].clone(),
            expected[6].clone()
        ]
    );

    // Bad, foreign and filter-mismatched tokens.
    let token = client
        .list_rooms()
        .max_results(1)
        .send()
        .await
        .expect("page")
        .next_token()
        .map(str::to_string);
    let token = token.expect("more pages");
    for (label, result) in [
        (
            "garbage",
            client
                .list_rooms()
                .next_token("page3")
                .send()
                .await
                .map(drop),
        ),
        (
            "other filter",
            client
                .list_rooms()
                .name("room-1")
                .next_token(&token)
                .send()
                .await
                .map(drop),
        ),
        (
            "tampered",
            client
                .list_rooms()
                .next_token(format!("{token}x"))
                .send()
                .await
                .map(drop),
        ),
    ] {
        assert_eq!(
            field_names(&validation(result.expect_err(label))),
            names(&["nextToken"]),
            "{label}"
        );
    }
    let error = client
        .list_logging_configurations()
        .next_token(&token)
        .send()
        .await
        .expect_err("room token for logging list");
    assert_eq!(field_names(&validation(error)), names(&["nextToken"]));
    client
        .list_rooms()
        .next_token("")
        .send()
        .await
        .expect("an empty token is the first page");

    // Logging configurations paginate the same way.
    let mut logging = Vec::new();
    for i in 0..5 {
        logging.push(create_logging_configuration(&client, &format!("logs-{i}")).await);
    }
    let listed: Vec<String> = client
        .list_logging_configurations()
        .max_results(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate")
        .iter()
        .flat_map(|page| page.logging_configurations())
        .map(|config| config.arn().expect("arn").to_string())
        .collect();
    assert_eq!(listed, logging.iter().rev().cloned().collect::<Vec<_>>());
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn list_rooms_filters_and_update_time_order() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let logging = create_logging_configuration(&client, "filter").await;
    let other_lambda = "arn:aws:lambda:us-west-2:123456789012:function:other";
    let a1 = create_room(&client, "alpha").await;
    let b = client
        .create_room()
        .name("beta")
        .message_review_handler(MessageReviewHandler::builder().uri(LAMBDA).build())
        .logging_configuration_identifiers(&logging)
        .send()
        .await
        .expect("beta")
        .arn()
        .expect("arn")
        .to_string();
    let a2 = client
        .create_room()
        .name("alpha")
        .message_review_handler(MessageReviewHandler::builder().uri(other_lambda).build())
        .logging_configuration_identifiers(&logging)
        .send()
        .await
        .expect("alpha 2")
        .arn()
        .expect("arn")
        .to_string();

    let arns = |output: aws_sdk_ivschat::operation::list_rooms::ListRoomsOutput| -> Vec<String> {
        output
            .rooms()
            .iter()
            .map(|room| room.arn().expect("arn").to_string())
            .collect()
    };
    assert_eq!(
        arns(client.list_rooms().send().await.expect("all")),
        vec![a2.clone(), b.clone(), a1.clone()]
    );
    assert_eq!(
        arns(
            client
                .list_rooms()
                .name("alpha")
                .send()
                .await
                .expect("name")
        ),
        vec![a2.clone(), a1.clone()]
    );
    assert_eq!(
        arns(
            client
                .list_rooms()
                .message_review_handler_uri(LAMBDA)
                .send()
                .await
                .expect("uri")
        ),
        vec![b.clone()]
    );
    assert_eq!(
        arns(
            client
                .list_rooms()
                .logging_configuration_identifier(&logging)
                .send()
                .await
                .expect("logging")
        ),
        vec![a2.clone(), b.clone()]
    );
    assert_eq!(
        arns(
            client
                .list_rooms()
                .name("alpha")
                .logging_configuration_identifier(&logging)
                .send()
                .await
                .expect("and")
        ),
        vec![a2.clone()]
    );
    assert!(
        arns(
            client
                .list_rooms()
                .name("gamma")
                .send()
                .await
                .expect("none")
        )
        .is_empty()
    );

    // An update moves a room to the front.
    client
        .update_room()
        .identifier(&a1)
        .maximum_message_length(10)
        .send()
        .await
        .expect("update");
    assert_eq!(
        arns(client.list_rooms().send().await.expect("all")),
        vec![a1.clone(), a2.clone(), b.clone()]
    );
    // Tagging does not: tags are not part of the room's settings, so updateTime and the order stay.
    client
        .tag_resource()
        .resource_arn(&b)
        .tags("k", "v")
        .send()
        .await
        .expect("tag");
    assert_eq!(
        arns(client.list_rooms().send().await.expect("all")),
        vec![a1, a2, b]
    );
    emulator.stop().await.expect("stop");
}

// ---- tags ------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn tags_on_rooms_and_logging_configurations() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let room = create_room(&client, "tagged").await;
    let logging = create_logging_configuration(&client, "tagged").await;
    for arn in [&room, &logging] {
        let tags = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let list = || async {
            client
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .expect("list tags")
                .tags()
                .clone()
        };
        assert_eq!(list().await, tags(&[]));
        client
            .tag_resource()
            .resource_arn(arn)
            .tags("a", "1")
            .tags("b", "2")
            .send()
            .await
            .expect("add");
        client
            .tag_resource()
            .resource_arn(arn)
            .tags("a", "3")
            .tags("key with spaces/+", "")
            .send()
            .await
            .expect("overwrite");
        assert_eq!(
            list().await,
            tags(&[("a", "3"), ("b", "2"), ("key with spaces/+", "")])
        );
        client
            .untag_resource()
            .resource_arn(arn)
            .tag_keys("a")
            .tag_keys("key with spaces/+")
            .tag_keys("never-there")
            .send()
            .await
            .expect("untag");
        client
            .untag_resource()
            .resource_arn(arn)
            .tag_keys("a")
            .send()
            .await
            .expect("untag is idempotent");
        assert_eq!(list().await, tags(&[("b", "2")]));

        // 50 tags per resource.
        let fifty: HashMap<String, String> =
            (0..49).map(|i| (format!("k{i}"), i.to_string())).collect();
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(fifty))
            .send()
            .await
            .expect("50 in total");
        client
            .tag_resource()
            .resource_arn(arn)
            .tags("b", "overwritten")
            .send()
            .await
            .expect("overwrite at 50");
        let error = client
            .tag_resource()
            .resource_arn(arn)
            .tags("one-too-many", "x")
            .send()
            .await
            .expect_err("51");
        assert_eq!(field_names(&validation(error)), names(&["tags"]));
        assert_eq!(list().await.len(), 50);
    }
    // Tags show up in Get and List.
    let got = client
        .get_room()
        .identifier(&room)
        .send()
        .await
        .expect("get room");
    assert_eq!(got.tags().map(HashMap::len), Some(50));
    let got = client
        .get_logging_configuration()
        .identifier(&logging)
        .send()
        .await
        .expect("get logging");
    assert_eq!(
        got.tags()
            .and_then(|tags| tags.get("b"))
            .map(String::as_str),
        Some("overwritten")
    );
    let listed = client
        .list_logging_configurations()
        .send()
        .await
        .expect("list");
    assert_eq!(
        listed.logging_configurations()[0].tags().map(HashMap::len),
        Some(50)
    );
    // Tags given at creation.
    let created = client
        .create_logging_configuration()
        .destination_configuration(s3("abc"))
        .tags("created", "yes")
        .send()
        .await
        .expect("create with tags");
    let arn = created.arn().expect("arn");
    let tags = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tags().get("created").map(String::as_str), Some("yes"));
    // Tag responses are `{}`.
    let path = format!("/tags/{}?tagKeys=created", encode_label(arn));
    let response = raw(&emulator, Auth::Signed, "DELETE", &path, b"").await;
    assert_eq!((response.status, response.json()), (200, json!({})));
    let path = format!("/tags/{}", encode_label(arn));
    let response = raw(
        &emulator,
        Auth::Signed,
        "POST",
        &path,
        br#"{"tags": {"x": "y"}}"#,
    )
    .await;
    assert_eq!((response.status, response.json()), (200, json!({})));
    emulator.stop().await.expect("stop");
}

// ---- logging configurations ------------------------------------------------------------------------------------

async fn state_of(client: &Client, arn: &str) -> Option<LoggingConfigurationState> {
    match client
        .get_logging_configuration()
        .identifier(arn)
        .send()
        .await
    {
        Ok(output) => output.state().cloned(),
        Err(error) => {
            assert_eq!(error.code(), Some("ResourceNotFoundException"), "{error:?}");
            None
        }
    }
}

#[tokio::test]
async fn logging_configurations_round_trip_every_member() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let created = client
        .create_logging_configuration()
        .name("test-logging-config")
        .destination_configuration(s3("demo-logging-bucket"))
        .tags("key1", "value1")
        .send()
        .await
        .expect("create");
    let arn = created.arn().expect("arn");
    let id = created.id().expect("id");
    assert!(is_aws_id(id));
    assert_eq!(
        arn,
        format!("arn:aws:ivschat:us-west-2:123456789012:logging-configuration/{id}")
    );
    assert_eq!(
        created.state(),
        Some(&CreateLoggingConfigurationState::Active)
    );
    assert_eq!(
        created.destination_configuration(),
        Some(&s3("demo-logging-bucket"))
    );
    assert_eq!(created.name(), Some("test-logging-config"));
    assert_eq!(
        created
            .tags()
            .and_then(|tags| tags.get("key1"))
            .map(String::as_str),
        Some("value1")
    );

    let got = client
        .get_logging_configuration()
        .identifier(arn)
        .send()
        .await
        .expect("get");
    assert_eq!(got.state(), Some(&LoggingConfigurationState::Active));
    assert_eq!(
        (got.arn(), got.id(), got.name()),
        (Some(arn), Some(id), Some("test-logging-config"))
    );
    assert_eq!(
        got.destination_configuration(),
        created.destination_configuration()
    );
    assert_eq!(
        (got.create_time(), got.update_time()),
        (created.create_time(), created.update_time())
    );

    let logs = DestinationConfiguration::CloudWatchLogs(
        aws_sdk_ivschat::types::CloudWatchLogsDestinationConfiguration::builder()
            .log_group_name("/aws/ivschat/logs")
            .build()
            .expect("group set"),
    );
    let updated = client
        .update_logging_configuration()
        .identifier(arn)
        .destination_configuration(logs.clone())
        .send()
        .await
        .expect("update");
    assert_eq!(
        updated.state(),
        Some(&UpdateLoggingConfigurationState::Active)
    );
    assert_eq!(updated.destination_configuration(), Some(&logs));
    assert_eq!(
        updated.name(),
        Some("test-logging-config"),
        "name unchanged"
    );
    assert!(updated.update_time() > created.update_time());
    let firehose = DestinationConfiguration::Firehose(
        FirehoseDestinationConfiguration::builder()
            .delivery_stream_name("stream_1")
            .build()
            .expect("stream set"),
    );
    let updated = client
        .update_logging_configuration()
        .identifier(arn)
        .name("renamed")
        .destination_configuration(firehose.clone())
        .send()
        .await
        .expect("update");
    assert_eq!(
        (updated.name(), updated.destination_configuration()),
        (Some("renamed"), Some(&firehose))
    );

    let listed = client
        .list_logging_configurations()
        .send()
        .await
        .expect("list");
    let [summary] = listed.logging_configurations() else {
        panic!("one configuration: {listed:?}")
    };
    assert_eq!(
        (summary.arn(), summary.name()),
        (Some(arn), Some("renamed"))
    );
    assert_eq!(summary.state(), Some(&LoggingConfigurationState::Active));
    assert_eq!(summary.destination_configuration(), Some(&firehose));

    let deleted = raw(
        &emulator,
        Auth::Signed,
        "POST",
        "/DeleteLoggingConfiguration",
        json!({"identifier": arn}).to_string().as_bytes(),
    )
    .await;
    assert_eq!((deleted.status, deleted.body.len()), (204, 0));
    assert_eq!(state_of(&client, arn).await, None);
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn logging_configuration_lifecycle_with_delay_and_failures() {
    let delay = Duration::from_millis(1500);
    let emulator = emulator::start(EmulatorConfig {
        logging_transition_delay: delay,
        ..EmulatorConfig::default()
    })
    .await;
    let client = emulator.sdk_client();

    let created = client
        .create_logging_configuration()
        .destination_configuration(s3("abc"))
        .send()
        .await
        .expect("create");
    assert_eq!(
        created.state(),
        Some(&CreateLoggingConfigurationState::Active),
        "Create answers ACTIVE as modeled"
    );
    let arn = created.arn().expect("arn").to_string();
    assert_eq!(
        state_of(&client, &arn).await,
        Some(LoggingConfigurationState::Creating)
    );
    let listed = client
        .list_logging_configurations()
        .send()
        .await
        .expect("list");
    assert_eq!(
        listed.logging_configurations()[0].state(),
        Some(&LoggingConfigurationState::Creating)
    );
    tokio::time::sleep(delay).await;
    assert_eq!(
        state_of(&client, &arn).await,
        Some(LoggingConfigurationState::Active)
    );

    let updated = client
        .update_logging_configuration()
        .identifier(&arn)
        .name("u")
        .send()
        .await
        .expect("update");
    assert_eq!(
        updated.state(),
        Some(&UpdateLoggingConfigurationState::Active)
    );
    assert_eq!(
        state_of(&client, &arn).await,
        Some(LoggingConfigurationState::Updating)
    );
    tokio::time::sleep(delay).await;
    assert_eq!(
        state_of(&client, &arn).await,
        Some(LoggingConfigurationState::Active)
    );

    client
        .delete_logging_configuration()
        .identifier(&arn)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        state_of(&client, &arn).await,
        Some(LoggingConfigurationState::Deleting)
    );
    tokio::time::sleep(delay).await;
    assert_eq!(state_of(&client, &arn).await, None, "gone after the delay");

    // Failures, switched on through the Rust API and through the admin endpoint.
    emulator.set_fail_transitions(TransitionFailures {
        create: true,
        ..TransitionFailures::NONE
    });
    let failed = create_logging_configuration(&client, "fails").await;
    tokio::time::sleep(delay).await;
    assert_eq!(
        state_of(&client, &failed).await,
        Some(LoggingConfigurationState::CreateFailed)
    );
    let error = client
        .create_room()
        .logging_configuration_identifiers(&failed)
        .send()
        .await
        .expect_err("not ACTIVE");
    assert_eq!(error.code(), Some("ConflictException"));

    let response = send_raw(
        emulator.local_addr(),
        b"POST",
        b"/_emulator/settings",
        &[],
        br#"{"failTransitions": ["update", "delete"]}"#,
    )
    .await;
    assert_eq!(
        response.json()["failTransitions"],
        json!(["update", "delete"])
    );
    client
        .update_logging_configuration()
        .identifier(&failed)
        .name("again")
        .send()
        .await
        .expect("update");
    tokio::time::sleep(delay).await;
    assert_eq!(
        state_of(&client, &failed).await,
        Some(LoggingConfigurationState::UpdateFailed)
    );
    client
        .delete_logging_configuration()
        .identifier(&failed)
        .send()
        .await
        .expect("delete");
    tokio::time::sleep(delay).await;
    assert_eq!(
        state_of(&client, &failed).await,
        Some(LoggingConfigurationState::DeleteFailed)
    );

    // Switched off again: the retried delete succeeds.
    emulator.set_fail_transitions(TransitionFailures::NONE);
    emulator.set_logging_transition_delay(Duration::ZERO);
    client
        .delete_logging_configuration()
        .identifier(&failed)
        .send()
        .await
        .expect("delete again");
    assert_eq!(state_of(&client, &failed).await, None);
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn failing_transitions_flag_at_start_up() {
    let emulator = emulator::start(EmulatorConfig {
        fail_transitions: TransitionFailures::ALL,
        ..EmulatorConfig::default()
    })
    .await;
    let client = emulator.sdk_client();
    let arn = create_logging_configuration(&client, "f").await;
    assert_eq!(
        state_of(&client, &arn).await,
        Some(LoggingConfigurationState::CreateFailed),
        "zero delay fails at once"
    );
    emulator.stop().await.expect("stop");
}

// ---- chat tokens and messaging operations ----------------------------------------------------------------------

#[tokio::test]
async fn chat_tokens_and_messaging_operations() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let room = create_room(&client, "chat").await;
    let mut events = emulator.subscribe_room_events();

    let token = client
        .create_chat_token()
        .room_identifier(&room)
        .user_id("11231234")
        .capabilities(ChatTokenCapability::SendMessage)
        .capabilities(ChatTokenCapability::DeleteMessage)
        .session_duration_in_minutes(30)
        .attributes("displayName", "Ada")
        .send()
        .await
        .expect("token");
    let text = token.token().expect("token text");
    assert!(
        text.len() >= 32
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{text}"
    );
    let token_expiry = seconds_from_now(token.token_expiration_time().expect("token expiry"));
    assert!(
        (55..=61).contains(&token_expiry),
        "token valid one minute: {token_expiry}"
    );
    let session_expiry = seconds_from_now(token.session_expiration_time().expect("session expiry"));
    assert!(
        (30 * 60 - 5..=30 * 60 + 1).contains(&session_expiry),
        "{session_expiry}"
    );

    let issued = emulator.redeem_chat_token(text).expect("redeem");
    assert_eq!(issued.room_arn, room);
    assert_eq!(issued.user_id, "11231234");
    assert_eq!(
        issued.capabilities,
        vec!["SEND_MESSAGE".to_string(), "DELETE_MESSAGE".to_string()]
    );
    assert_eq!(
        issued.attributes.get("displayName").map(String::as_str),
        Some("Ada")
    );
    assert_eq!(issued.session_duration, Duration::from_secs(30 * 60));
    assert_eq!(
        emulator.redeem_chat_token(text),
        Err(ChatTokenRejection::AlreadyUsed)
    );
    assert_eq!(
        emulator.redeem_chat_token("made-up"),
        Err(ChatTokenRejection::Unknown)
    );

    let default = client
        .create_chat_token()
        .room_identifier(&room)
        .user_id("u")
        .send()
        .await
        .expect("defaults");
    let session_expiry =
        seconds_from_now(default.session_expiration_time().expect("session expiry"));
    assert!(
        (60 * 60 - 5..=60 * 60 + 1).contains(&session_expiry),
        "default 60 minutes: {session_expiry}"
    );

    let sent = client
        .send_event()
        .room_identifier(&room)
        .event_name("app:HELLO")
        .attributes("k", "v")
        .send()
        .await
        .expect("event");
    let event_id = sent.id().expect("id");
    assert!(is_aws_id(event_id));
    let event = events.recv().await.expect("event published");
    assert_eq!(
        (event.room_arn.as_str(), event.id.as_str()),
        (room.as_str(), event_id)
    );
    assert_eq!(
        event.kind,
        RoomEventKind::Event {
            name: "app:HELLO".into(),
            attributes: [("k".to_string(), "v".to_string())].into()
        }
    );

    let deleted = client
        .delete_message()
        .room_identifier(&room)
        .id("AYk6xKitV4On")
        .reason("spam")
        .send()
        .await
        .expect("delete");
    assert!(is_aws_id(deleted.id().expect("operation id")));
    assert_ne!(
        deleted.id(),
        Some("AYk6xKitV4On"),
        "the operation has its own id"
    );
    let event = events.recv().await.expect("delete published");
    assert_eq!(
        event.kind,
        RoomEventKind::DeleteMessage {
            message_id: "AYk6xKitV4On".into(),
            reason: Some("spam".into())
        }
    );

    client
        .disconnect_user()
        .room_identifier(&room)
        .user_id("11231234")
        .reason("bye")
        .send()
        .await
        .expect("disconnect");
    let event = events.recv().await.expect("disconnect published");
    assert_eq!(
        event.kind,
        RoomEventKind::DisconnectUser {
            user_id: "11231234".into(),
            reason: Some("bye".into())
        }
    );
    let raw_disconnect = raw(
        &emulator,
        Auth::Signed,
        "POST",
        "/DisconnectUser",
        json!({"roomIdentifier": room, "userId": "x"})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(
        (raw_disconnect.status, raw_disconnect.json()),
        (200, json!({}))
    );

    // A token for a room deleted before the connection opens is refused.
    let orphan = client
        .create_chat_token()
        .room_identifier(&room)
        .user_id("u")
        .send()
        .await
        .expect("token");
    client
        .delete_room()
        .identifier(&room)
        .send()
        .await
        .expect("delete room");
    assert_eq!(
        emulator.redeem_chat_token(orphan.token().expect("token")),
        Err(ChatTokenRejection::RoomGone)
    );
    emulator.stop().await.expect("stop");
}

// ---- persistence -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!(
        "ivschat-emulator-sdk-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let state_file = dir.join("state.json");
    let config = EmulatorConfig {
        state_file: Some(state_file.clone()),
        ..EmulatorConfig::default()
    };

    let emulator = emulator::start(config.clone()).await;
    let client = emulator.sdk_client();
    let logging = client
        .create_logging_configuration()
        .name("kept")
        .destination_configuration(s3("kept-bucket"))
        .tags("t", "1")
        .send()
        .await
        .expect("logging");
    let logging_arn = logging.arn().expect("arn").to_string();
    let room = client
        .create_room()
        .name("kept")
        .maximum_message_length(42)
        .message_review_handler(
            MessageReviewHandler::builder()
                .uri(LAMBDA)
                .fallback_result(FallbackResult::Deny)
                .build(),
        )
        .logging_configuration_identifiers(&logging_arn)
        .tags("owner", "me")
        .send()
        .await
        .expect("room");
    let room_arn = room.arn().expect("arn").to_string();
    let second = create_room(&client, "second").await;
    client
        .tag_resource()
        .resource_arn(&second)
        .tags("late", "tag")
        .send()
        .await
        .expect("tag");
    let page = client
        .list_rooms()
        .max_results(1)
        .send()
        .await
        .expect("page");
    let old_token = page.next_token().expect("more").to_string();
    let before_rooms = client
        .get_room()
        .identifier(&room_arn)
        .send()
        .await
        .expect("get");
    let before_logging = client
        .get_logging_configuration()
        .identifier(&logging_arn)
        .send()
        .await
        .expect("get");
    emulator.stop().await.expect("stop");

    let saved: Value =
        serde_json::from_slice(&std::fs::read(&state_file).expect("state file written"))
            .expect("valid JSON");
    assert_eq!(saved["rooms"].as_array().map(Vec::len), Some(2));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");

    let restarted = emulator::start(config).await;
    let client = restarted.sdk_client();
    let after_room = client
        .get_room()
        .identifier(&room_arn)
        .send()
        .await
        .expect("room kept");
    assert_eq!(
        after_room,
        before_rooms_without_request_id(&before_rooms, &after_room)
    );
    let after_logging = client
        .get_logging_configuration()
        .identifier(&logging_arn)
        .send()
        .await
        .expect("logging kept");
    assert_eq!(after_logging.name(), before_logging.name());
    assert_eq!(
        after_logging.destination_configuration(),
        before_logging.destination_configuration()
    );
    assert_eq!(after_logging.tags(), before_logging.tags());
    assert_eq!(
        (after_logging.create_time(), after_logging.update_time()),
        (before_logging.create_time(), before_logging.update_time())
    );
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&second)
        .send()
        .await
        .expect("tags kept");
    assert_eq!(tags.tags().get("late").map(String::as_str), Some("tag"));
    let order: Vec<String> = client
        .list_rooms()
        .send()
        .await
        .expect("list")
        .rooms()
        .iter()
        .map(|r| r.arn().expect("arn").to_string())
        .collect();
    assert_eq!(order, vec![second.clone(), room_arn.clone()]);
    // New resources after a restart keep later update times than the restored ones.
    let third = create_room(&client, "third").await;
    let order: Vec<String> = client
        .list_rooms()
        .send()
        .await
        .expect("list")
        .rooms()
        .iter()
        .map(|r| r.arn().expect("arn").to_string())
        .collect();
    assert_eq!(order, vec![third, second, room_arn.clone()]);
    // Pagination tokens are per process.
    let error = client
        .list_rooms()
        .next_token(old_token)
        .send()
        .await
        .expect_err("old token");
    assert_eq!(error.code(), Some("ValidationException"));
    // Deletions are persisted too.
    client
        .delete_room()
        .identifier(&room_arn)
        .send()
        .await
        .expect("delete");
    restarted.stop().await.expect("stop");
    let again = emulator::start(EmulatorConfig {
        state_file: Some(state_file),
        ..EmulatorConfig::default()
    })
    .await;
    let error = again
        .sdk_client()
        .get_room()
        .identifier(&room_arn)
        .send()
        .await
        .expect_err("deleted stays deleted");
    assert_eq!(error.code(), Some("ResourceNotFoundException"));
    again.stop().await.expect("stop");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// The SDK output carries the response's request id; compare everything else.
fn before_rooms_without_request_id(
    before: &aws_sdk_ivschat::operation::get_room::GetRoomOutput,
    after: &aws_sdk_ivschat::operation::get_room::GetRoomOutput,
) -> aws_sdk_ivschat::operation::get_room::GetRoomOutput {
    assert_eq!(before.arn(), after.arn());
    assert_eq!(before.id(), after.id());
    assert_eq!(before.name(), after.name());
    assert_eq!(before.create_time(), after.create_time());
    assert_eq!(before.update_time(), after.update_time());
    assert_eq!(
        before.maximum_message_length(),
        after.maximum_message_length()
    );
    assert_eq!(
        before.maximum_message_rate_per_second(),
        after.maximum_message_rate_per_second()
    );
    assert_eq!(
        before.message_review_handler(),
        after.message_review_handler()
    );
    assert_eq!(before.tags(), after.tags());
    assert_eq!(
        before.logging_configuration_identifiers(),
        after.logging_configuration_identifiers()
    );
    after.clone()
}

// ---- metrics and wire details ----------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_count_requests_by_operation_and_outcome() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client_without_retries();
    let room = create_room(&client, "m").await;
    client
        .get_room()
        .identifier(&room)
        .send()
        .await
        .expect("get");
    client
        .get_room()
        .identifier(&room)
        .send()
        .await
        .expect("get");
    client
        .get_room()
        .identifier("arn:aws:ivschat:us-west-2:123456789012:room/nope")
        .send()
        .await
        .expect_err("404");
    client
        .list_rooms()
        .max_results(99)
        .send()
        .await
        .expect_err("400");
    raw(&emulator, Auth::Signed, "POST", "/Unknown", b"{}").await;

    assert_eq!(emulator.request_count("CreateRoom", "success"), 1);
    assert_eq!(emulator.request_count("GetRoom", "success"), 2);
    assert_eq!(
        emulator.request_count("GetRoom", "ResourceNotFoundException"),
        1
    );
    assert_eq!(emulator.request_total("GetRoom"), 3);
    assert_eq!(
        emulator.request_count("ListRooms", "ValidationException"),
        1
    );
    assert_eq!(
        emulator.request_count("unknown", "UnknownOperationException"),
        1
    );

    let response = send_raw(
        emulator.local_addr(),
        b"GET",
        b"/_emulator/metrics",
        &[],
        b"",
    )
    .await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/plain"))
    );
    let text = String::from_utf8(response.body).expect("utf-8");
    for line in [
        "ivschat_emulator_requests_total{operation=\"GetRoom\",outcome=\"success\"} 2",
        "ivschat_emulator_requests_total{operation=\"GetRoom\",outcome=\"ResourceNotFoundException\"} 1",
        "ivschat_emulator_requests_total{operation=\"CreateRoom\",outcome=\"success\"} 1",
        "ivschat_emulator_requests_total{operation=\"unknown\",outcome=\"UnknownOperationException\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert_eq!(text, emulator.metrics_text(), "admin calls are not counted");
    assert_eq!(emulator.metrics().values().sum::<u64>(), 6);

    let reset = send_raw(
        emulator.local_addr(),
        b"POST",
        b"/_emulator/metrics/reset",
        &[],
        b"",
    )
    .await;
    assert_eq!(reset.status, 200);
    assert_eq!(emulator.request_total("GetRoom"), 0);
    let unknown_admin = send_raw(
        emulator.local_addr(),
        b"GET",
        b"/_emulator/nothing",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        (unknown_admin.status, unknown_admin.error_type()),
        (404, Some("UnknownOperationException"))
    );
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn every_response_has_a_request_id_and_hostile_input_gets_4xx() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let room = create_room(&client, "hostile").await;
    let identifier = json!({"identifier": room}).to_string();
    let big = vec![b'x'; 2 * 1024 * 1024];
    let mut cases: Vec<(RawResponse, u16)> = vec![
        (
            raw(
                &emulator,
                Auth::Signed,
                "POST",
                "/GetRoom",
                identifier.as_bytes(),
            )
            .await,
            200,
        ),
        (
            raw(&emulator, Auth::Signed, "POST", "/GetRoom", b"{").await,
            400,
        ),
        (
            raw(&emulator, Auth::Signed, "POST", "/CreateRoom", &big).await,
            413,
        ),
        (
            raw(&emulator, Auth::Unsigned, "POST", "/GetRoom", b"").await,
            403,
        ),
        (
            raw(&emulator, Auth::Signed, "POST", "/tags/%FF%FE", b"{}").await,
            400,
        ),
        (
            raw(
                &emulator,
                Auth::Signed,
                "GET",
                "/tags/arn%3Aaws%3Aivschat%3Aus-west-2%3A1%3Aroom%2Fa/extra",
                b"",
            )
            .await,
            404,
        ),
        (
            raw(
                &emulator,
                Auth::Signed,
                "POST",
                "/GetRoom?x=%00&y",
                identifier.as_bytes(),
            )
            .await,
            200,
        ),
        (
            raw(
                &emulator,
                Auth::Signed,
                "POST",
                "/CreateRoom",
                br#"{"tags": {"k": "v"}, "tags": {"k": "w"}}"#,
            )
            .await,
            400,
        ),
        (
            raw(
                &emulator,
                Auth::Signed,
                "POST",
                "/CreateRoom",
                format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes(),
            )
            .await,
            400,
        ),
        (
            send_raw(
                emulator.local_addr(),
                b"POST",
                b"/_emulator/settings",
                &[],
                b"not json",
            )
            .await,
            400,
        ),
        (
            send_raw(
                emulator.local_addr(),
                b"GET",
                b"/_emulator/health",
                &[],
                b"",
            )
            .await,
            200,
        ),
    ];
    // Raw bytes over TCP: invalid UTF-8 in the path is answered (by the HTTP layer or the emulator) with a 4xx.
    let host = vec![("host".to_string(), emulator.local_addr().to_string())];
    cases.push((
        send_raw(
            emulator.local_addr(),
            b"POST",
            b"/Get\xffRoom",
            &host,
            b"{}",
        )
        .await,
        400,
    ));
    for (index, (response, expected)) in cases.iter().enumerate() {
        assert_eq!(response.status, *expected, "case {index}: {response:?}");
        if response.status >= 400 && response.headers.contains_key("x-amzn-requestid") {
            assert!(
                response.error_type().is_some(),
                "case {index}: errors name their type"
            );
            assert!(
                response.json()["message"].is_string(),
                "case {index}: errors have a message"
            );
        }
        if index != cases.len() - 1 {
            assert!(
                response
                    .header("x-amzn-requestid")
                    .is_some_and(|id| id.len() == 36),
                "case {index}: request id"
            );
        }
    }
    // Still serving.
    client
        .get_room()
        .identifier(&room)
        .send()
        .await
        .expect("alive");
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn concurrent_creates_are_all_listed_once() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let client = client.clone();
        tasks.spawn(async move { create_room(&client, &format!("c{i}")).await });
    }
    let mut created = BTreeSet::new();
    while let Some(arn) = tasks.join_next().await {
        created.insert(arn.expect("task"));
    }
    let listed: BTreeSet<String> = client
        .list_rooms()
        .max_results(5)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("list")
        .iter()
        .flat_map(|page| page.rooms())
        .map(|room| room.arn().expect("arn").to_string())
        .collect();
    assert_eq!(created.len(), 24);
    assert_eq!(listed, created);
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn regions_hold_separate_rooms_and_only_served_regions_answer() {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let west = Client::from_conf(emulator.sdk_config_builder_in("us-west-2").build());
    let eu = Client::from_conf(emulator.sdk_config_builder_in("eu-west-1").build());
    let west_room = create_room(&west, "west").await;
    let eu_room = create_room(&eu, "eu").await;
    assert!(
        west_room.starts_with("arn:aws:ivschat:us-west-2:123456789012:room/"),
        "{west_room}"
    );
    assert!(
        eu_room.starts_with("arn:aws:ivschat:eu-west-1:123456789012:room/"),
        "{eu_room}"
    );
    for (client, own) in [(&west, &west_room), (&eu, &eu_room)] {
        let listed: Vec<String> = emulator::all_rooms(client)
            .await
            .iter()
            .map(|room| room.arn().expect("arn").to_string())
            .collect();
        assert_eq!(
            &listed,
            std::slice::from_ref(own),
            "each region lists only its own rooms"
        );
    }
    // A room is found only in its own region.
    let error = west
        .get_room()
        .identifier(&eu_room)
        .send()
        .await
        .expect_err("another region's room");
    assert_eq!(status_of(&error), 404);
    assert_eq!(
        emulator.room(&eu_room).map(|room| room.name),
        Some("eu".to_string())
    );
    assert_eq!(emulator.rooms_in("123456789012", "eu-west-1").len(), 1);
    assert_eq!(
        emulator.request_count_in("123456789012", "eu-west-1", "CreateRoom"),
        1
    );
    assert_eq!(
        emulator.request_count_in("123456789012", "us-west-2", "ListRooms"),
        1
    );
    // Pagination tokens belong to their region too.
    for _ in 0..2 {
        create_room(&eu, "eu").await;
    }
    let page = eu
        .list_rooms()
        .max_results(1)
        .send()
        .await
        .expect("first page");
    let token = page.next_token().expect("a next page").to_string();
    let error = west
        .list_rooms()
        .max_results(1)
        .next_token(&token)
        .send()
        .await
        .expect_err("another region's token");
    assert_eq!(error.code(), Some("ValidationException"));
    emulator.stop().await.expect("stop");

    let restricted = emulator::start(EmulatorConfig {
        regions: Some(vec!["us-west-2".into()]),
        ..EmulatorConfig::default()
    })
    .await;
    let error = Client::from_conf(restricted.sdk_config_builder_in("eu-west-1").build())
        .list_rooms()
        .send()
        .await
        .expect_err("eu-west-1 is not among --regions");
    assert_eq!(
        (status_of(&error), error.code()),
        (403, Some("InvalidSignatureException"))
    );
    restricted
        .sdk_client()
        .list_rooms()
        .send()
        .await
        .expect("the default region is served");
    restricted.stop().await.expect("stop");
}

#[tokio::test]
async fn many_emulators_run_side_by_side() {
    let first = emulator::start(EmulatorConfig::default()).await;
    let second = emulator::start(EmulatorConfig {
        region: "eu-west-1".into(),
        account_id: "999999999999".into(),
        ..EmulatorConfig::default()
    })
    .await;
    assert_ne!(first.url(), second.url());
    assert!(first.url().starts_with("http://127.0.0.1:"));
    let arn = create_room(&second.sdk_client(), "x").await;
    assert!(
        arn.starts_with("arn:aws:ivschat:eu-west-1:999999999999:room/"),
        "{arn}"
    );
    assert!(
        first
            .sdk_client()
            .list_rooms()
            .send()
            .await
            .expect("list")
            .rooms()
            .is_empty(),
        "no shared state"
    );
    assert_eq!(first.request_total("CreateRoom"), 0);
    first.stop().await.expect("stop");
    second.stop().await.expect("stop");
}
