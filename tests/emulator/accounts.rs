//! Accounts, regions and STS in the emulator: the real SDK's `AssumeRoleProvider` assuming roles (external
//! ids, refresh through the identity cache), raw STS query requests signed like the SDK signs them (errors,
//! GetCallerIdentity, the unsigned AssumeRoleWithWebIdentity), session credentials on IVS Chat calls (token,
//! expiry, revocation), quotas and counters per (account, region), the admin endpoints, the accounts file,
//! the state file and the messaging endpoint across scopes.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::config::{Credentials, Region, SharedCredentialsProvider};
use aws_sdk_ivschat::error::ProvideErrorMetadata;
use ivschat_emulator::{AccountConfig, Emulator, EmulatorConfig, RoleConfig};
use ivschat_testsupport::sigv4::Signer;
use ivschat_testsupport::{emulator, messaging, serial};
use serde_json::{Value, json};

use super::sdk::{RawResponse, send_raw, status_of};

const DEFAULT: &str = "123456789012";
const SECOND: &str = "111122223333";
const THIRD: &str = "444455556666";
const OPERATOR_ROLE: &str = "arn:aws:iam::111122223333:role/ivs-operator";
const PLAIN_ROLE: &str = "arn:aws:iam::111122223333:role/plain";
const EXTERNAL_ID: &str = "ext-123";

/// The second account: `ivs-operator` (external id, 2 h sessions) and `plain`, both trusting the default
/// account. The third account is open (no roles listed).
fn accounts() -> Vec<AccountConfig> {
    vec![
        AccountConfig {
            id: SECOND.into(),
            roles: vec![
                RoleConfig {
                    external_id: Some(EXTERNAL_ID.into()),
                    max_session_duration: Some(Duration::from_secs(7200)),
                    ..RoleConfig::new("ivs-operator")
                },
                RoleConfig::new("plain"),
            ],
        },
        AccountConfig {
            id: THIRD.into(),
            roles: vec![],
        },
    ]
}

async fn start() -> Emulator {
    emulator::start(EmulatorConfig {
        accounts: accounts(),
        ..EmulatorConfig::default()
    })
    .await
}

// ---- clients ---------------------------------------------------------------------------------------------------

/// The SdkConfig an operator would build: static base credentials, the emulator as the endpoint of every
/// service (STS included).
async fn base_config(emulator: &Emulator, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(emulator.url())
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

/// An IVS Chat client in `region` whose credentials come from AssumeRole of `role` (through the emulator).
async fn assumed_client(
    emulator: &Emulator,
    role: &str,
    external_id: Option<&str>,
    region: &str,
) -> Client {
    let base = base_config(emulator, region).await;
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(role).session_name("ivs-op");
    if let Some(external_id) = external_id {
        provider = provider.external_id(external_id);
    }
    let provider = provider.configure(&base).build().await;
    let mut builder = aws_sdk_ivschat::config::Builder::from(&base);
    builder.set_credentials_provider(Some(SharedCredentialsProvider::new(provider)));
    let conf = builder
        .retry_config(aws_sdk_ivschat::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// Temporary credentials as STS answered them.
#[derive(Debug, Clone)]
struct Issued {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
    assumed_role_id: String,
    arn: String,
}

impl Issued {
    fn from_xml(body: &str) -> Issued {
        let text =
            |tag: &str| xml_text(body, tag).unwrap_or_else(|| panic!("no <{tag}> in {body}"));
        Issued {
            access_key_id: text("AccessKeyId"),
            secret_access_key: text("SecretAccessKey"),
            session_token: text("SessionToken"),
            expiration: text("Expiration"),
            assumed_role_id: text("AssumedRoleId"),
            arn: text("Arn"),
        }
    }

    fn signer(&self, region: &str) -> Signer {
        Signer::new(&self.access_key_id, &self.secret_access_key, region)
            .with_session_token(&self.session_token)
    }

    fn client(&self, emulator: &Emulator, region: &str) -> Client {
        let credentials = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            None,
            "issued",
        );
        emulator.sdk_client_with(|builder| {
            builder
                .region(Region::new(region.to_owned()))
                .credentials_provider(credentials)
                .retry_config(aws_sdk_ivschat::config::retry::RetryConfig::disabled())
        })
    }
}

/// The text of the first `<tag>` element.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_string())
}

fn body_text(response: &RawResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// A raw STS request (`POST /`, a form body), signed by `signer` for `sts` or unsigned.
async fn sts(emulator: &Emulator, signer: Option<Signer>, form: &str) -> RawResponse {
    let host = emulator.local_addr().to_string();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.clone()),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ),
    ];
    if let Some(signer) = signer {
        let signed = signer
            .for_service("sts")
            .headers(
                "POST",
                &format!("http://{host}/"),
                &headers,
                form.as_bytes(),
            )
            .expect("sign");
        headers.extend(signed);
    }
    send_raw(
        emulator.local_addr(),
        b"POST",
        b"/",
        &headers,
        form.as_bytes(),
    )
    .await
}

fn static_signer(region: &str) -> Signer {
    Signer::new("test", "test", region)
}

fn assume_role_form(role: &str, session: &str, extra: &str) -> String {
    format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={session}{extra}",
        percent_encoding::utf8_percent_encode(role, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// AssumeRole with the static credentials; panics unless it succeeds.
async fn assume(emulator: &Emulator, role: &str, extra: &str) -> Issued {
    let response = sts(
        emulator,
        Some(static_signer("us-west-2")),
        &assume_role_form(role, "raw-session", extra),
    )
    .await;
    assert_eq!(response.status, 200, "{}", body_text(&response));
    Issued::from_xml(&body_text(&response))
}

/// The STS error code and HTTP status of a refused request.
fn sts_error(response: &RawResponse) -> (u16, String) {
    let body = body_text(response);
    assert!(
        body.starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"),
        "{body}"
    );
    assert!(xml_text(&body, "RequestId").is_some(), "{body}");
    (response.status, xml_text(&body, "Code").expect("a code"))
}

/// A raw IVS Chat request signed by `signer` (JSON body).
async fn ivschat(
    emulator: &Emulator,
    signer: &Signer,
    operation: &str,
    body: &Value,
) -> RawResponse {
    let host = emulator.local_addr().to_string();
    let body = body.to_string();
    let path = format!("/{operation}");
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host.clone()),
        ("content-type".into(), "application/json".into()),
    ];
    let signed = signer
        .headers(
            "POST",
            &format!("http://{host}{path}"),
            &headers,
            body.as_bytes(),
        )
        .expect("sign");
    headers.extend(signed);
    send_raw(
        emulator.local_addr(),
        b"POST",
        path.as_bytes(),
        &headers,
        body.as_bytes(),
    )
    .await
}

/// An unsigned admin request with a JSON body.
async fn admin(emulator: &Emulator, method: &str, path: &str, body: &Value) -> RawResponse {
    let body = body.to_string();
    let headers = vec![
        ("host".to_string(), emulator.local_addr().to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    send_raw(
        emulator.local_addr(),
        method.as_bytes(),
        path.as_bytes(),
        &headers,
        body.as_bytes(),
    )
    .await
}

async fn create_room(client: &Client, name: &str) -> String {
    client
        .create_room()
        .name(name)
        .send()
        .await
        .expect("create room")
        .arn()
        .expect("arn")
        .to_string()
}

// ---- AssumeRole through the SDK --------------------------------------------------------------------------------

#[tokio::test]
async fn the_sdk_assumes_a_role_with_an_external_id_and_creates_rooms_in_that_account() {
    let emulator = start().await;
    let client = assumed_client(&emulator, OPERATOR_ROLE, Some(EXTERNAL_ID), "eu-west-1").await;
    let arn = create_room(&client, "tenant").await;
    assert!(
        arn.starts_with("arn:aws:ivschat:eu-west-1:111122223333:room/"),
        "{arn}"
    );
    let listed = client.list_rooms().send().await.expect("list");
    assert_eq!(listed.rooms().len(), 1);
    assert_eq!(emulator.rooms_in(SECOND, "eu-west-1").len(), 1);
    assert!(emulator.rooms_in(DEFAULT, "eu-west-1").is_empty());
    assert!(
        emulator
            .sdk_client_with(|b| b.region(Region::new("eu-west-1")))
            .list_rooms()
            .send()
            .await
            .expect("list in the default account")
            .rooms()
            .is_empty(),
        "the default account does not see the second account's room"
    );
    assert_eq!(
        emulator.request_count_in(SECOND, "eu-west-1", "CreateRoom"),
        1
    );
    assert_eq!(
        emulator.request_count_in(DEFAULT, "eu-west-1", "CreateRoom"),
        0
    );
    assert_eq!(emulator.sts_request_count("AssumeRole", "success"), 1);
    let metrics = emulator.metrics_text();
    assert!(
        metrics.contains("ivschat_emulator_scope_requests_total{account=\"111122223333\",region=\"eu-west-1\",operation=\"CreateRoom\",outcome=\"success\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "ivschat_emulator_sts_requests_total{action=\"AssumeRole\",outcome=\"success\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "ivschat_emulator_requests_total{operation=\"CreateRoom\",outcome=\"success\"} 1\n"
        ),
        "the unlabelled totals stay: {metrics}"
    );
    let json = admin(&emulator, "GET", "/_emulator/metrics/json", &json!({}))
        .await
        .json();
    assert!(
        json["scopeRequests"]
            .as_array()
            .is_some_and(|series| series.contains(&json!({
                "account": SECOND, "region": "eu-west-1", "operation": "CreateRoom",
                "outcome": "success", "count": 1
            }))),
        "{json}"
    );
    assert!(
        json["stsRequests"].as_array().is_some_and(|series| series
            .contains(&json!({"action": "AssumeRole", "outcome": "success", "count": 1}))),
        "{json}"
    );
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn a_wrong_or_missing_external_id_and_unknown_roles_are_access_denied() {
    let emulator = start().await;
    let client = assumed_client(&emulator, OPERATOR_ROLE, Some("ext-999"), "us-west-2").await;
    client
        .create_room()
        .send()
        .await
        .expect_err("no credentials for a wrong external id");
    assert!(emulator.sts_request_count("AssumeRole", "AccessDenied") >= 1);
    assert_eq!(
        emulator.request_total("CreateRoom"),
        0,
        "nothing reached IVS Chat"
    );

    for (role, extra, what) in [
        (OPERATOR_ROLE, "&ExternalId=ext-999", "a wrong external id"),
        (OPERATOR_ROLE, "", "a missing external id"),
        (
            "arn:aws:iam::111122223333:role/not-listed",
            "",
            "a role the account does not list",
        ),
        (
            "arn:aws:iam::999999999999:role/anything",
            "",
            "an unconfigured account",
        ),
    ] {
        let response = sts(
            &emulator,
            Some(static_signer("us-west-2")),
            &assume_role_form(role, "s1", extra),
        )
        .await;
        assert_eq!(sts_error(&response), (403, "AccessDenied".into()), "{what}");
        assert!(
            body_text(&response).contains(&format!(
                "User: arn:aws:iam::123456789012:user/emulator is not authorized to perform: sts:AssumeRole on resource: {role}"
            )),
            "{what}: {}",
            body_text(&response)
        );
    }
    // Open accounts: any role name, trusted by the default account, no external id needed.
    let open = assume(&emulator, "arn:aws:iam::444455556666:role/whatever", "").await;
    assert_eq!(
        open.arn,
        "arn:aws:sts::444455556666:assumed-role/whatever/raw-session"
    );
    let default = assume(&emulator, "arn:aws:iam::123456789012:role/any-name", "").await;
    assert!(
        default
            .arn
            .starts_with("arn:aws:sts::123456789012:assumed-role/any-name/")
    );
    // A session of the third account is not trusted by the second account's roles (they trust the default).
    let response = sts(
        &emulator,
        Some(open.signer("us-west-2")),
        &assume_role_form(PLAIN_ROLE, "s2", ""),
    )
    .await;
    assert_eq!(sts_error(&response), (403, "AccessDenied".into()));
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn assume_role_validates_its_parameters_and_session_lengths() {
    let emulator = start().await;
    let issued = assume(
        &emulator,
        OPERATOR_ROLE,
        "&ExternalId=ext-123&DurationSeconds=7200",
    )
    .await;
    assert!(issued.access_key_id.starts_with("ASIA") && issued.access_key_id.len() == 20);
    assert!(
        issued.access_key_id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{}",
        issued.access_key_id
    );
    assert!(
        issued.assumed_role_id.starts_with("AROA")
            && issued.assumed_role_id.ends_with(":raw-session")
    );
    assert_eq!(
        issued.arn,
        "arn:aws:sts::111122223333:assumed-role/ivs-operator/raw-session"
    );
    let expiration: jiff::Timestamp = issued.expiration.parse().expect("an ISO-8601 Expiration");
    let lifetime = expiration.as_second() - jiff::Timestamp::now().as_second();
    assert!((7190..=7200).contains(&lifetime), "{lifetime}");

    for (extra, needle) in [
        (
            "&ExternalId=ext-123&DurationSeconds=7201",
            "exceeds the MaxSessionDuration set for this role",
        ),
        (
            "&ExternalId=ext-123&DurationSeconds=899",
            "Member must have value greater than or equal to 900",
        ),
        (
            "&ExternalId=ext-123&DurationSeconds=43201",
            "Member must have value less than or equal to 43200",
        ),
    ] {
        let response = sts(
            &emulator,
            Some(static_signer("us-west-2")),
            &assume_role_form(OPERATOR_ROLE, "s1", extra),
        )
        .await;
        assert_eq!(
            sts_error(&response),
            (400, "ValidationError".into()),
            "{extra}"
        );
        assert!(
            body_text(&response).contains(needle),
            "{extra}: {}",
            body_text(&response)
        );
    }
    let response = sts(
        &emulator,
        Some(static_signer("us-west-2")),
        &assume_role_form(OPERATOR_ROLE, "bad%20name", "&ExternalId=ext-123"),
    )
    .await;
    assert_eq!(sts_error(&response), (400, "ValidationError".into()));
    assert!(body_text(&response).contains("at 'roleSessionName' failed to satisfy constraint"));

    // Role chaining: a session may not ask for more than 1 h, whatever the role allows (ivs-operator allows
    // 2 h and trusts the default account, so a session of a default-account role may assume it).
    let chain = assume(&emulator, "arn:aws:iam::123456789012:role/chain", "").await;
    let response = sts(
        &emulator,
        Some(chain.signer("us-west-2")),
        &assume_role_form(
            OPERATOR_ROLE,
            "chained",
            "&ExternalId=ext-123&DurationSeconds=3601",
        ),
    )
    .await;
    assert_eq!(sts_error(&response), (400, "ValidationError".into()));
    assert!(
        body_text(&response).contains("1 hour session limit for roles assumed by role chaining")
    );
    let response = sts(
        &emulator,
        Some(chain.signer("us-west-2")),
        &assume_role_form(
            OPERATOR_ROLE,
            "chained",
            "&ExternalId=ext-123&DurationSeconds=3600",
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", body_text(&response));

    let response = sts(
        &emulator,
        Some(static_signer("us-west-2")),
        "Action=AssumeRoles&Version=2011-06-15",
    )
    .await;
    assert_eq!(sts_error(&response), (400, "InvalidAction".into()));
    assert_eq!(emulator.sts_request_count("unknown", "InvalidAction"), 1);
    assert_eq!(
        emulator.sts_request_count("AssumeRole", "ValidationError"),
        5
    );
    emulator.stop().await.expect("stop");
}

// ---- session credentials on IVS Chat calls ---------------------------------------------------------------------

#[tokio::test]
async fn session_credentials_need_their_token_and_expire() {
    let _serial = serial::alone().await;
    let emulator = start().await;
    emulator.set_credential_lifetime(Some(Duration::from_secs(2)));
    let issued = assume(&emulator, PLAIN_ROLE, "").await;
    let expiration: jiff::Timestamp = issued.expiration.parse().expect("Expiration");
    let lifetime = expiration.as_millisecond() - jiff::Timestamp::now().as_millisecond();
    assert!(
        (0..=2000).contains(&lifetime),
        "the Expiration says the capped time: {lifetime} ms"
    );

    let created = ivschat(
        &emulator,
        &issued.signer("ap-south-1"),
        "CreateRoom",
        &json!({"name": "s"}),
    )
    .await;
    assert_eq!(created.status, 200, "{}", body_text(&created));
    assert!(
        created.json()["arn"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws:ivschat:ap-south-1:111122223333:room/")),
        "{}",
        body_text(&created)
    );
    let unsigned_token = Signer::new(
        &issued.access_key_id,
        &issued.secret_access_key,
        "ap-south-1",
    );
    let response = ivschat(&emulator, &unsigned_token, "ListRooms", &json!({})).await;
    assert_eq!(
        (response.status, response.error_type()),
        (403, Some("UnrecognizedClientException")),
        "a session key without its token"
    );
    let wrong_token = unsigned_token.clone().with_session_token("not-the-token");
    let response = ivschat(&emulator, &wrong_token, "ListRooms", &json!({})).await;
    assert_eq!(
        (response.status, response.error_type()),
        (403, Some("UnrecognizedClientException")),
        "a session key with another token"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = ivschat(
        &emulator,
        &issued.signer("ap-south-1"),
        "ListRooms",
        &json!({}),
    )
    .await;
    assert_eq!(
        (response.status, response.error_type()),
        (403, Some("ExpiredTokenException"))
    );
    assert_eq!(
        response.json()["message"],
        "The security token included in the request is expired"
    );
    let response = sts(
        &emulator,
        Some(issued.signer("us-west-2")),
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(sts_error(&response), (400, "ExpiredTokenException".into()));
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn the_sdk_identity_cache_reuses_a_session_and_refreshes_it_before_it_expires() {
    let _serial = serial::alone().await;
    let emulator = start().await;
    // 12 s: more than the identity cache's 10 s buffer at first (reused), less than 5 s left after 7.5 s
    // (reloaded, whatever the buffer's jitter).
    emulator.set_credential_lifetime(Some(Duration::from_secs(12)));
    let client = assumed_client(&emulator, PLAIN_ROLE, None, "us-west-2").await;
    client.list_rooms().send().await.expect("first call");
    client.list_rooms().send().await.expect("second call");
    assert_eq!(
        emulator.sts_request_total("AssumeRole"),
        1,
        "the session is cached"
    );
    tokio::time::sleep(Duration::from_millis(7500)).await;
    client
        .list_rooms()
        .send()
        .await
        .expect("a call near the expiry");
    assert_eq!(
        emulator.sts_request_total("AssumeRole"),
        2,
        "the cache reloaded the session"
    );
    assert_eq!(
        emulator.request_count("ListRooms", "ExpiredTokenException"),
        0
    );
    assert_eq!(
        emulator.request_count_in(SECOND, "us-west-2", "ListRooms"),
        3
    );
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn revoked_roles_are_refused_until_restored() {
    let emulator = start().await;
    let issued = assume(&emulator, PLAIN_ROLE, "").await;
    let client = issued.client(&emulator, "us-west-2");
    create_room(&client, "before").await;

    emulator.revoke_role(PLAIN_ROLE);
    let error = client.list_rooms().send().await.expect_err("revoked");
    assert_eq!(
        (status_of(&error), error.code()),
        (403, Some("AccessDeniedException"))
    );
    let response = sts(
        &emulator,
        Some(static_signer("us-west-2")),
        &assume_role_form(PLAIN_ROLE, "again", ""),
    )
    .await;
    assert_eq!(sts_error(&response), (403, "AccessDenied".into()));
    // GetCallerIdentity needs no permission: it still answers for the revoked role's session.
    let response = sts(
        &emulator,
        Some(issued.signer("us-west-2")),
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(response.status, 200, "{}", body_text(&response));

    emulator.restore_role(PLAIN_ROLE);
    client
        .list_rooms()
        .send()
        .await
        .expect("restored: the old session works again");
    assume(&emulator, PLAIN_ROLE, "").await;

    // The same through the admin API.
    let revoked = admin(
        &emulator,
        "POST",
        "/_emulator/roles/revoke",
        &json!({"roleArn": PLAIN_ROLE}),
    )
    .await;
    assert_eq!(
        revoked.json(),
        json!({"roleArn": PLAIN_ROLE, "revoked": true})
    );
    let listed = admin(&emulator, "GET", "/_emulator/accounts", &json!({})).await;
    assert_eq!(listed.json()["revokedRoles"], json!([PLAIN_ROLE]));
    assert_eq!(
        client
            .list_rooms()
            .send()
            .await
            .expect_err("revoked")
            .code(),
        Some("AccessDeniedException")
    );
    let restored = admin(
        &emulator,
        "POST",
        "/_emulator/roles/restore",
        &json!({"roleArn": PLAIN_ROLE}),
    )
    .await;
    assert_eq!(restored.json()["revoked"], false);
    client.list_rooms().send().await.expect("restored");
    let bad = admin(
        &emulator,
        "POST",
        "/_emulator/roles/revoke",
        &json!({"roleArn": "arn:aws:iam::1:user/x"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn get_caller_identity_answers_for_static_and_session_credentials() {
    let emulator = start().await;
    let response = sts(
        &emulator,
        Some(static_signer("us-east-1")),
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    let body = body_text(&response);
    assert_eq!(response.status, 200, "{body}");
    assert!(
        body.starts_with(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        ),
        "{body}"
    );
    assert_eq!(xml_text(&body, "Account").as_deref(), Some(DEFAULT));
    assert_eq!(
        xml_text(&body, "Arn").as_deref(),
        Some("arn:aws:iam::123456789012:user/emulator")
    );
    assert!(
        xml_text(&body, "UserId").is_some_and(|id| id.starts_with("AIDA")),
        "{body}"
    );
    assert!(xml_text(&body, "RequestId").is_some(), "{body}");

    let issued = assume(&emulator, OPERATOR_ROLE, "&ExternalId=ext-123").await;
    let response = sts(
        &emulator,
        Some(issued.signer("eu-central-1")),
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    let body = body_text(&response);
    assert_eq!(
        xml_text(&body, "Account").as_deref(),
        Some(SECOND),
        "{body}"
    );
    assert_eq!(xml_text(&body, "Arn"), Some(issued.arn.clone()));
    assert_eq!(
        xml_text(&body, "UserId"),
        Some(issued.assumed_role_id.clone())
    );

    for (signer, expected) in [
        (
            Some(Signer::new("test", "wrong", "us-west-2")),
            (403, "SignatureDoesNotMatch"),
        ),
        (
            Some(Signer::new("AKIAUNKNOWN", "test", "us-west-2")),
            (403, "InvalidClientTokenId"),
        ),
        (
            Some(Signer::new(
                &issued.access_key_id,
                &issued.secret_access_key,
                "us-west-2",
            )),
            (403, "InvalidClientTokenId"),
        ),
        (
            Some(static_signer("ca-central-1")),
            (403, "SignatureDoesNotMatch"),
        ),
    ] {
        let response = sts(
            &emulator,
            signer.clone(),
            "Action=GetCallerIdentity&Version=2011-06-15",
        )
        .await;
        assert_eq!(
            sts_error(&response),
            (expected.0, expected.1.to_string()),
            "{signer:?}"
        );
    }
    assert_eq!(
        emulator.sts_request_count("GetCallerIdentity", "success"),
        2
    );
    assert_eq!(emulator.sts_request_total("GetCallerIdentity"), 6);
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn an_unsigned_assume_role_with_web_identity_gives_working_credentials() {
    let emulator = start().await;
    // A JWT whose payload is {"sub":"system:serviceaccount:ivs:operator","aud":"sts.amazonaws.com",
    // "iss":"https://oidc.eks.example/id/X"} (its signature is not checked: any bytes do).
    let payload = "eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aXZzOm9wZXJhdG9yIiwiYXVkIjoic3RzLmFtYXpvbmF3cy5jb20iLCJpc3MiOiJodHRwczovL29pZGMuZWtzLmV4YW1wbGUvaWQvWCJ9";
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl");
    let form = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName=irsa&WebIdentityToken={token}&DurationSeconds=900",
        percent_encoding::utf8_percent_encode(PLAIN_ROLE, percent_encoding::NON_ALPHANUMERIC)
    );
    let response = sts(&emulator, None, &form).await;
    let body = body_text(&response);
    assert_eq!(response.status, 200, "{body}");
    assert!(body.starts_with("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult>"), "{body}");
    assert_eq!(
        xml_text(&body, "SubjectFromWebIdentityToken").as_deref(),
        Some("system:serviceaccount:ivs:operator")
    );
    assert_eq!(
        xml_text(&body, "Audience").as_deref(),
        Some("sts.amazonaws.com")
    );
    let issued = Issued::from_xml(&body);
    assert_eq!(
        issued.arn,
        "arn:aws:sts::111122223333:assumed-role/plain/irsa"
    );
    let arn = create_room(&issued.client(&emulator, "ap-northeast-2"), "irsa").await;
    assert!(
        arn.starts_with("arn:aws:ivschat:ap-northeast-2:111122223333:room/"),
        "{arn}"
    );

    let short = form.replace(&format!("WebIdentityToken={token}"), "WebIdentityToken=abc");
    assert_eq!(
        sts_error(&sts(&emulator, None, &short).await),
        (400, "ValidationError".into())
    );
    let unconfigured = form.replace("111122223333", "999999999999");
    assert_eq!(
        sts_error(&sts(&emulator, None, &unconfigured).await),
        (403, "AccessDenied".into())
    );
    // Only AssumeRoleWithWebIdentity goes unsigned.
    let response = sts(
        &emulator,
        None,
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(
        (response.status, response.error_type()),
        (403, Some("MissingAuthenticationTokenException")),
        "an unsigned POST / of another action is no STS request: IVS Chat refuses it"
    );
    assert_eq!(
        emulator.sts_request_count("AssumeRoleWithWebIdentity", "success"),
        1
    );
    assert_eq!(emulator.sts_request_total("AssumeRoleWithWebIdentity"), 3);
    emulator.stop().await.expect("stop");
}

// ---- quotas, scopes, configuration ----------------------------------------------------------------------------

#[tokio::test]
async fn quotas_are_per_account_and_region() {
    let _serial = serial::alone().await;
    let emulator = start().await;
    let default_client = emulator.sdk_client_without_retries();
    let second = assume(&emulator, PLAIN_ROLE, "")
        .await
        .client(&emulator, "us-west-2");
    emulator.set_enforce_quotas(true);
    // 5 TPS CreateRoom in two accounts at once: each gets its full rate.
    let burst = |client: Client| async move {
        let calls = (0..5).map(|i| {
            let client = client.clone();
            async move { client.create_room().name(format!("r{i}")).send().await }
        });
        futures_util::future::join_all(calls).await
    };
    let (first, other) = tokio::join!(burst(default_client.clone()), burst(second.clone()));
    for result in first.iter().chain(other.iter()) {
        assert!(result.is_ok(), "{result:?}");
    }
    let error = default_client
        .create_room()
        .send()
        .await
        .expect_err("a sixth CreateRoom in the same second of the same account");
    assert_eq!(error.code(), Some("ThrottlingException"));
    assert_eq!(
        emulator.request_count_in(DEFAULT, "us-west-2", "CreateRoom"),
        6
    );
    assert_eq!(
        emulator.request_count_in(SECOND, "us-west-2", "CreateRoom"),
        5
    );
    let eu = Client::from_conf(
        emulator
            .sdk_config_builder_in("eu-west-1")
            .retry_config(aws_sdk_ivschat::config::retry::RetryConfig::disabled())
            .build(),
    );
    eu.create_room()
        .send()
        .await
        .expect("another region has its own bucket");
    emulator.set_enforce_quotas(false);

    // The room quota counts per (account, region) as well.
    emulator.set_room_quota(Some(5));
    eu.create_room()
        .send()
        .await
        .expect("the second room in eu-west-1");
    let error = default_client
        .create_room()
        .send()
        .await
        .expect_err("a sixth room in us-west-2");
    assert_eq!(error.code(), Some("ServiceQuotaExceededException"));

    let scopes = admin(&emulator, "GET", "/_emulator/scopes", &json!({}))
        .await
        .json();
    let counts: Vec<(String, String, u64)> = scopes["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .map(|s| {
            (
                s["accountId"].as_str().expect("account").to_string(),
                s["region"].as_str().expect("region").to_string(),
                s["rooms"].as_u64().expect("rooms"),
            )
        })
        .collect();
    // By account, then region.
    assert_eq!(
        counts,
        [
            (SECOND.to_string(), "us-west-2".to_string(), 5),
            (DEFAULT.to_string(), "eu-west-1".to_string(), 2),
            (DEFAULT.to_string(), "us-west-2".to_string(), 5),
        ]
    );
    emulator.stop().await.expect("stop");
}

#[tokio::test]
async fn accounts_come_from_a_file_and_the_admin_api() {
    let dir = std::env::temp_dir().join(format!("ivschat-accounts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("accounts.yaml");
    std::fs::write(
        &file,
        "accounts:\n  - id: \"555566667777\"\n    roles:\n      - name: deployer\n        externalId: from-file\n",
    )
    .expect("write");
    let emulator = emulator::start(EmulatorConfig {
        accounts_file: Some(file.clone()),
        ..EmulatorConfig::default()
    })
    .await;
    let role = "arn:aws:iam::555566667777:role/deployer";
    assume(&emulator, role, "&ExternalId=from-file").await;
    let response = sts(
        &emulator,
        Some(static_signer("us-west-2")),
        &assume_role_form(role, "s1", ""),
    )
    .await;
    assert_eq!(sts_error(&response), (403, "AccessDenied".into()));

    let added = admin(
        &emulator,
        "POST",
        "/_emulator/accounts",
        &json!({"id": "888899990000", "roles": [{"name": "runtime", "maxSessionDuration": "2h"}]}),
    )
    .await;
    assert_eq!(added.status, 200, "{}", body_text(&added));
    assume(
        &emulator,
        "arn:aws:iam::888899990000:role/runtime",
        "&DurationSeconds=7200",
    )
    .await;
    let invalid = admin(
        &emulator,
        "POST",
        "/_emulator/accounts",
        &json!({"id": "12"}),
    )
    .await;
    assert_eq!(invalid.status, 400);
    // Replacing an account replaces its roles; the Rust API does the same. A session of a role that is
    // gone may no longer act.
    let runtime = assume(&emulator, "arn:aws:iam::888899990000:role/runtime", "").await;
    let runtime_client = runtime.client(&emulator, "us-west-2");
    runtime_client
        .list_rooms()
        .send()
        .await
        .expect("the role exists");
    emulator.add_account(AccountConfig {
        id: "888899990000".into(),
        roles: vec![RoleConfig::new("other")],
    });
    let response = sts(
        &emulator,
        Some(static_signer("us-west-2")),
        &assume_role_form("arn:aws:iam::888899990000:role/runtime", "s1", ""),
    )
    .await;
    assert_eq!(sts_error(&response), (403, "AccessDenied".into()));
    assert_eq!(
        runtime_client
            .list_rooms()
            .send()
            .await
            .expect_err("the role is gone")
            .code(),
        Some("AccessDeniedException")
    );
    emulator.stop().await.expect("stop");

    std::fs::write(&file, "accounts:\n  - id: \"12\"\n").expect("write");
    let error = Emulator::start(
        "127.0.0.1:0".parse().expect("address"),
        EmulatorConfig {
            accounts_file: Some(file),
            ..EmulatorConfig::default()
        },
    )
    .await
    .err()
    .expect("an invalid accounts file stops the start");
    assert!(format!("{error:#}").contains("12 digits"), "{error:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_state_file_and_the_messaging_endpoint_work_in_every_scope() {
    let dir = std::env::temp_dir().join(format!("ivschat-scopes-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let state_file = dir.join("state.json");
    let _ = std::fs::remove_file(&state_file);
    let config = EmulatorConfig {
        accounts: accounts(),
        state_file: Some(state_file.clone()),
        ..EmulatorConfig::default()
    };
    let emulator = emulator::start(config.clone()).await;
    let session = assume(&emulator, PLAIN_ROLE, "").await;
    let tenant = session.client(&emulator, "ap-northeast-1");
    let tenant_room = create_room(&tenant, "tenant").await;
    let own_room = create_room(&emulator.sdk_client(), "own").await;

    let token = tenant
        .create_chat_token()
        .room_identifier(&tenant_room)
        .user_id("viewer")
        .send()
        .await
        .expect("chat token")
        .token()
        .expect("token")
        .to_string();
    let socket = messaging::try_connect(&emulator.messaging_url(), Some(&token))
        .await
        .expect("a room of another scope accepts its chat token");
    drop(socket);
    emulator.stop().await.expect("stop");

    let restarted = emulator::start(config).await;
    assert_eq!(
        restarted
            .rooms_in(SECOND, "ap-northeast-1")
            .iter()
            .map(|room| room.arn.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&tenant_room)
    );
    assert_eq!(restarted.rooms_in(DEFAULT, "us-west-2").len(), 1);
    assert!(restarted.room(&own_room).is_some());
    assert!(restarted.room(&tenant_room).is_some());
    restarted.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}
