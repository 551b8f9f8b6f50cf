//! Many AWS accounts and regions from one operator, with tenancy enforced: ChatAccounts, objects placed by
//! `spec.accountRef` and `spec.region`, namespaces an account does not select, logging configurations in
//! another account or region, a revoked role, and sessions that expire every minute.
//!
//! The operator runs cluster-wide (namespaces of several tenants), so each test has its own control plane:
//! an operator watching every namespace of a shared one would reconcile the other tests' objects. The emulator holds three accounts: its own default one (the operator's static credentials) and two
//! whose role `ivschat-tenant` trusts the default account (the first requires an external ID).

use ivschat_emulator::{AccountConfig, Emulator, EmulatorConfig, RoleConfig};
use ivschat_operator::controller::aws::Aws;
use ivschat_operator::controller::driver::Timing;
use ivschat_operator::controller::{self, OperatorHandle, Options};
use ivschat_operator::crd::{ChatAccount, ChatLoggingConfiguration, ChatRoom};
use ivschat_testsupport::cluster::install_test_tracing;
use ivschat_testsupport::objects::wait_for_within;
use ivschat_testsupport::operator::test_timing;
use ivschat_testsupport::{apply_with, condition, emulator, is_ready, metrics, serial};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testenv::{ControlPlane, StartOptions};

const ONE: &str = "111111111111";
const TWO: &str = "222222222222";
const ROLE: &str = "ivschat-tenant";
const EXTERNAL_ID: &str = "tenant-one-7f3a";
const WAIT: Duration = Duration::from_secs(60);

fn role_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{ROLE}")
}

/// A control plane of the test's own: its operator runs cluster-wide, and on a shared one it would reconcile
/// the objects of the module's other tests (which run at the same time, with operators of their own).
fn control_plane() -> ControlPlane {
    install_test_tracing();
    testenv::install_crypto_provider();
    let control_plane =
        ControlPlane::start(StartOptions::default()).expect("starting a control plane");
    let crds = ivschat_operator::crd::crds_yaml().expect("rendering the CRDs");
    control_plane
        .install_crds(&crds)
        .expect("installing the CRDs");
    control_plane
}

/// The emulator's two tenant accounts, each with the role the operator assumes.
fn tenant_accounts() -> Vec<AccountConfig> {
    vec![
        AccountConfig {
            id: ONE.into(),
            roles: vec![RoleConfig {
                name: ROLE.into(),
                external_id: Some(EXTERNAL_ID.into()),
                trusted_principals: Vec::new(),
                max_session_duration: None,
            }],
        },
        AccountConfig {
            id: TWO.into(),
            roles: vec![RoleConfig {
                name: ROLE.into(),
                external_id: None,
                trusted_principals: Vec::new(),
                max_session_duration: None,
            }],
        },
    ]
}

/// One test's world: namespaces `<prefix>-a`, `-b`, `-c`, an emulator with the tenant accounts and an
/// operator over every namespace.
struct World {
    prefix: String,
    /// Stopped when the test ends.
    _control_plane: ControlPlane,
    kube: Client,
    emulator: Emulator,
    /// Where the operator counts.
    metrics: ivschat_operator::metrics::Metrics,
    operator: Option<OperatorHandle>,
}

impl World {
    async fn new(prefix: &str, config: EmulatorConfig, timing: Timing) -> World {
        let mut world = World::without_operator(prefix, config).await;
        world.operator = Some(controller::start_with(
            world.kube.clone(),
            Aws::unlimited(world.emulator.sdk_client())
                .with_shared_config(emulator::shared_config(&world.emulator, "us-west-2").await),
            Options {
                timing,
                metrics: world.metrics.clone(),
                namespace: None,
                concurrency: 4,
                ..Options::default()
            },
        ));
        world
    }

    /// The world without the in-process operator (a test that runs the binary).
    async fn without_operator(prefix: &str, config: EmulatorConfig) -> World {
        let control_plane = control_plane();
        let kube = control_plane.client().await.expect("kube client");
        for suffix in ["a", "b", "c"] {
            ivschat_testsupport::create_namespace(&kube, &format!("{prefix}-{suffix}")).await;
        }
        let emulator = emulator::start(EmulatorConfig {
            accounts: tenant_accounts(),
            ..config
        })
        .await;
        World {
            prefix: prefix.to_owned(),
            _control_plane: control_plane,
            kube,
            emulator,
            metrics: ivschat_operator::metrics::Metrics::new(),
            operator: None,
        }
    }

    fn namespace(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    fn rooms(&self, suffix: &str) -> Api<ChatRoom> {
        Api::namespaced(self.kube.clone(), &self.namespace(suffix))
    }

    fn configs(&self, suffix: &str) -> Api<ChatLoggingConfiguration> {
        Api::namespaced(self.kube.clone(), &self.namespace(suffix))
    }

    fn accounts(&self) -> Api<ChatAccount> {
        Api::all(self.kube.clone())
    }

    /// A ChatAccount `<prefix>-<name>` for `account`'s tenant role at this emulator, selecting the namespaces
    /// with the given suffixes.
    async fn account(
        &self,
        name: &str,
        account: &str,
        default_region: &str,
        selects: &[&str],
    ) -> String {
        let name = format!("{}-{name}", self.prefix);
        let namespaces: Vec<String> = selects
            .iter()
            .map(|suffix| self.namespace(suffix))
            .collect();
        let mut spec = json!({
            "roleArn": role_arn(account),
            "defaultRegion": default_region,
            "endpointUrl": self.emulator.url(),
            "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces},
            ]},
        });
        if account == ONE {
            spec["externalId"] = json!(EXTERNAL_ID);
        }
        apply_with(&self.accounts(), "test", &name, json!({}), spec).await;
        name
    }

    async fn room(&self, suffix: &str, name: &str, spec: Value) -> ChatRoom {
        apply_with(&self.rooms(suffix), "test", name, json!({}), spec).await
    }

    async fn config(&self, suffix: &str, name: &str, spec: Value) -> ChatLoggingConfiguration {
        apply_with(&self.configs(suffix), "test", name, json!({}), spec).await
    }

    async fn ready_room(&self, suffix: &str, name: &str) -> ChatRoom {
        wait_for_within(&self.rooms(suffix), name, "Ready", WAIT, is_ready).await
    }

    async fn ready_config(&self, suffix: &str, name: &str) -> ChatLoggingConfiguration {
        wait_for_within(&self.configs(suffix), name, "Ready", WAIT, is_ready).await
    }

    /// Waits until the room is Stalled with `reason`, and returns its Ready condition's message.
    async fn stalled_room(&self, suffix: &str, name: &str, reason: &str) -> String {
        let room = wait_for_within(&self.rooms(suffix), name, reason, WAIT, |room| {
            condition(room, "Stalled")
                .is_some_and(|(status, why, _)| status == "True" && why == reason)
        })
        .await;
        condition(&room, "Ready")
            .map(|(_, _, message)| message)
            .unwrap_or_default()
    }

    async fn stop(mut self) {
        if let Some(operator) = self.operator.take() {
            operator.stop().await.expect("stopping the operator");
        }
    }
}

fn arn_of<K: serde::Serialize>(object: &K) -> String {
    serde_json::to_value(object).expect("json")["status"]["arn"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn status_field<K: serde::Serialize>(object: &K, field: &str) -> String {
    serde_json::to_value(object).expect("json")["status"][field]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// CreateRoom requests the emulator answered in (account, region).
fn creates_in(emulator: &Emulator, account: &str, region: &str) -> u64 {
    emulator.request_count_in(account, region, "CreateRoom")
}

#[tokio::test]
async fn objects_live_in_the_account_and_region_their_namespace_may_use() {
    let _heavy = serial::beside_others().await;
    let world = World::new(
        "acct",
        EmulatorConfig::default(),
        test_timing(Duration::from_secs(2)),
    )
    .await;
    let own = world.emulator.default_account_id().to_owned();
    let one = world.account("one", ONE, "us-west-2", &["a"]).await;
    let two = world.account("two", TWO, "eu-west-1", &["b"]).await;

    // Namespace a: account one in its default region and in eu-west-1, and the operator's own account;
    // namespace b: account two.
    world
        .config(
            "a",
            "logs",
            json!({
                "accountRef": {"name": one},
                "destinationConfiguration": {"s3": {"bucketName": "chat-logs"}},
            }),
        )
        .await;
    world
        .room(
            "a",
            "west",
            json!({"accountRef": {"name": one}, "loggingConfigurations": [{"name": "logs"}]}),
        )
        .await;
    world
        .room(
            "a",
            "europe",
            json!({"accountRef": {"name": one}, "region": "eu-west-1"}),
        )
        .await;
    world.room("a", "home", json!({})).await;
    world
        .room("b", "tenant-two", json!({"accountRef": {"name": two}}))
        .await;

    let logs = world.ready_config("a", "logs").await;
    assert!(
        arn_of(&logs).starts_with(&format!(
            "arn:aws:ivschat:us-west-2:{ONE}:logging-configuration/"
        )),
        "{}",
        arn_of(&logs)
    );
    for (suffix, name, region, account) in [
        ("a", "west", "us-west-2", ONE),
        ("a", "europe", "eu-west-1", ONE),
        ("a", "home", "us-west-2", own.as_str()),
        ("b", "tenant-two", "eu-west-1", TWO),
    ] {
        let room = world.ready_room(suffix, name).await;
        let arn = arn_of(&room);
        assert!(
            arn.starts_with(&format!("arn:aws:ivschat:{region}:{account}:room/")),
            "{name}: {arn}"
        );
        assert_eq!(status_field(&room, "region"), region, "{name}");
        assert_eq!(status_field(&room, "accountId"), account, "{name}");
        assert!(
            world
                .emulator
                .rooms_in(account, region)
                .iter()
                .any(|room| room.arn == arn),
            "{name}: {arn} is in {account}/{region} in the emulator"
        );
    }
    let west = world.ready_room("a", "west").await;
    assert_eq!(
        west.status
            .as_ref()
            .map(|s| s.logging_configuration_arns.clone()),
        Some(vec![arn_of(&logs)])
    );

    // Each (account, region) had its own create, ownership lookups and drift listings, and no other did.
    for (account, region) in [
        (ONE, "us-west-2"),
        (ONE, "eu-west-1"),
        (TWO, "eu-west-1"),
        (own.as_str(), "us-west-2"),
    ] {
        assert_eq!(
            creates_in(&world.emulator, account, region),
            1,
            "CreateRoom in {account}/{region}"
        );
        assert!(
            world
                .emulator
                .request_count_in(account, region, "ListRooms")
                >= 1,
            "ListRooms in {account}/{region}"
        );
    }
    assert_eq!(
        world
            .emulator
            .request_count_in(TWO, "us-west-2", "ListRooms"),
        0,
        "no object in two/us-west-2"
    );
    assert_eq!(creates_in(&world.emulator, own.as_str(), "eu-west-1"), 0);

    // The operator's own counts say where each call went, by ChatAccount (or `default`) and region.
    let text = world.metrics.encode().expect("metrics");
    for (account, region) in [
        (one.as_str(), "us-west-2"),
        (one.as_str(), "eu-west-1"),
        (two.as_str(), "eu-west-1"),
        ("default", "us-west-2"),
    ] {
        let series = format!(
            "ivschat_operator_aws_requests_total{{operation=\"CreateRoom\",outcome=\"success\",account=\"{account}\",region=\"{region}\"}}"
        );
        assert_eq!(metrics::value(&text, &series), 1.0, "{series}\n{text}");
    }

    // The accounts report what their role resolved to.
    for (name, account) in [(&one, ONE), (&two, TWO)] {
        let checked = wait_for_within(
            &world.accounts(),
            name,
            "Ready",
            WAIT,
            |account: &ChatAccount| {
                condition(account, "Ready").is_some_and(|(status, _, _)| status == "True")
            },
        )
        .await;
        assert_eq!(
            checked
                .status
                .as_ref()
                .and_then(|s| s.account_id.as_deref()),
            Some(account)
        );
    }

    // Namespace c is not selected by account one: Stalled, and not a single AWS call for it.
    let before = creates_in(&world.emulator, ONE, "us-west-2");
    world
        .room("c", "outsider", json!({"accountRef": {"name": one}}))
        .await;
    let message = world
        .stalled_room("c", "outsider", "AccountNotPermitted")
        .await;
    assert!(
        message.contains(&one) && message.contains(&world.namespace("c")),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        creates_in(&world.emulator, ONE, "us-west-2"),
        before,
        "no create for a namespace not permitted"
    );
    let outsider = world.rooms("c").get("outsider").await.expect("outsider");
    assert_eq!(arn_of(&outsider), "");

    // Selecting it afterwards makes the room Ready without anyone touching the room.
    let generation = outsider.metadata.generation;
    world.account("one", ONE, "us-west-2", &["a", "c"]).await;
    let outsider = world.ready_room("c", "outsider").await;
    assert_eq!(outsider.metadata.generation, generation);
    let outsider_arn = arn_of(&outsider);
    assert!(outsider_arn.starts_with(&format!("arn:aws:ivschat:us-west-2:{ONE}:room/")));

    // Deselected again, then deleted: the namespace may no longer act in the account, so the object goes
    // without any AWS call and its room stays in AWS (an event says so).
    world.account("one", ONE, "us-west-2", &["a"]).await;
    world
        .stalled_room("c", "outsider", "AccountNotPermitted")
        .await;
    let deletes = world
        .emulator
        .request_count_in(ONE, "us-west-2", "DeleteRoom");
    world
        .rooms("c")
        .delete("outsider", &kube::api::DeleteParams::default())
        .await
        .expect("deleting the outsider");
    ivschat_testsupport::wait_gone(&world.rooms("c"), "outsider").await;
    assert_eq!(
        world
            .emulator
            .request_count_in(ONE, "us-west-2", "DeleteRoom"),
        deletes
    );
    assert!(
        world
            .emulator
            .rooms_in(ONE, "us-west-2")
            .iter()
            .any(|room| room.arn == outsider_arn),
        "the room of a namespace no longer permitted is left in AWS"
    );

    // A logging configuration in another region (by name) or another account (by ARN): refused, no call.
    world
        .config(
            "a",
            "logs-europe",
            json!({
                "accountRef": {"name": one},
                "region": "eu-west-1",
                "destinationConfiguration": {"s3": {"bucketName": "chat-logs-eu"}},
            }),
        )
        .await;
    world.ready_config("a", "logs-europe").await;
    let (one_west, two_europe) = (
        creates_in(&world.emulator, ONE, "us-west-2"),
        creates_in(&world.emulator, TWO, "eu-west-1"),
    );
    world
        .room("a", "crossed-region", json!({"accountRef": {"name": one}, "loggingConfigurations": [{"name": "logs-europe"}]}))
        .await;
    world
        .room("b", "crossed-account", json!({"accountRef": {"name": two}, "region": "us-west-2", "loggingConfigurations": [{"arn": arn_of(&logs)}]}))
        .await;
    let reason = "LoggingConfigurationInOtherAccountOrRegion";
    let region_message = world.stalled_room("a", "crossed-region", reason).await;
    assert!(
        region_message.contains("logs-europe") && region_message.contains("eu-west-1"),
        "{region_message}"
    );
    let account_message = world.stalled_room("b", "crossed-account", reason).await;
    assert!(account_message.contains(ONE), "{account_message}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(creates_in(&world.emulator, ONE, "us-west-2"), one_west);
    assert_eq!(creates_in(&world.emulator, TWO, "eu-west-1"), two_europe);
    assert_eq!(creates_in(&world.emulator, TWO, "us-west-2"), 0);

    // Moving an object to another account or region is refused at apply.
    let moved = world
        .rooms("a")
        .patch("europe", &PatchParams::apply("test").force(), &Patch::Apply(json!({
            "apiVersion": "ivschat.dev/v1alpha1", "kind": "ChatRoom", "metadata": {"name": "europe"},
            "spec": {"accountRef": {"name": one}, "region": "us-east-1"},
        })))
        .await
        .expect_err("a region change is refused");
    assert!(moved.to_string().contains("spec.region"), "{moved}");
    world.stop().await;
}

#[tokio::test]
async fn a_revoked_role_stalls_its_account_and_objects_and_a_restored_one_recovers_them() {
    let _heavy = serial::beside_others().await;
    let world = World::new(
        "revoke",
        EmulatorConfig::default(),
        test_timing(Duration::from_secs(2)),
    )
    .await;
    let two = world.account("two", TWO, "us-west-2", &["a"]).await;
    world
        .room("a", "room", json!({"accountRef": {"name": two}}))
        .await;
    world.ready_room("a", "room").await;

    let revoked_at = Instant::now();
    world.emulator.revoke_role(&role_arn(TWO));
    let denied = |account: &ChatAccount| {
        condition(account, "Ready")
            .is_some_and(|(status, reason, _)| status == "False" && reason == "AccessDenied")
    };
    // One retry period (the test timing's long backoff, 3 s) plus a margin for the watch and the write.
    let account = wait_for_within(
        &world.accounts(),
        &two,
        "AccessDenied",
        Duration::from_secs(10),
        denied,
    )
    .await;
    assert!(
        account
            .status
            .as_ref()
            .and_then(|s| s.last_error.as_deref())
            .is_some_and(|e| e.contains("AccessDenied"))
    );
    world.stalled_room("a", "room", "AccessDenied").await;
    assert!(
        revoked_at.elapsed() < Duration::from_secs(15),
        "{:?}",
        revoked_at.elapsed()
    );

    world.emulator.restore_role(&role_arn(TWO));
    wait_for_within(
        &world.accounts(),
        &two,
        "Ready",
        Duration::from_secs(10),
        |account: &ChatAccount| {
            condition(account, "Ready").is_some_and(|(status, _, _)| status == "True")
        },
    )
    .await;
    world.ready_room("a", "room").await;
    world.stop().await;
}

/// Sessions the emulator issues for 60 s, over a 5-minute run of rooms that are read, listed and updated
/// throughout: every session is renewed before it expires (no call is answered ExpiredToken), no reconcile
/// fails, and the renewals are counted by both sides.
#[tokio::test]
async fn sessions_expiring_every_minute_are_renewed_without_a_failed_reconcile() {
    let _heavy = serial::beside_others().await;
    let config = EmulatorConfig {
        credential_lifetime: Some(Duration::from_secs(60)),
        ..EmulatorConfig::default()
    };
    // The account check only at the start: the renewals are the calls' own.
    let timing = Timing {
        long_backoff: Duration::from_secs(600),
        ..test_timing(Duration::from_secs(2))
    };
    let world = World::new("expiry", config, timing).await;
    let metrics = world.metrics.clone();
    let one = world.account("one", ONE, "us-west-2", &["a"]).await;
    let rooms = ["r0", "r1", "r2", "r3"];
    for room in rooms {
        world
            .room("a", room, json!({"accountRef": {"name": one}}))
            .await;
    }
    for room in rooms {
        world.ready_room("a", room).await;
    }
    let started = Instant::now();
    let mut length = 100;
    while started.elapsed() < Duration::from_secs(300) {
        // An update every 10 s, to one room in turn; every room stays Ready or is on its way to it.
        length += 1;
        let room = rooms[(length as usize) % rooms.len()];
        world
            .room(
                "a",
                room,
                json!({"accountRef": {"name": one}, "maximumMessageLength": length}),
            )
            .await;
        for _ in 0..10 {
            for room in rooms {
                let object = world.rooms("a").get(room).await.expect("room");
                if let Some((_, reason, message)) =
                    condition(&object, "Ready").filter(|(status, _, _)| status == "False")
                {
                    assert!(
                        reason == "Reconciling"
                            || reason == "Updating"
                            || !message.contains("Expired") && reason != "AccessDenied",
                        "{room} after {:?}: {reason}: {message}",
                        started.elapsed()
                    );
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    for room in rooms {
        world.ready_room("a", room).await;
    }
    let expired = emulator::with_outcome(&world.emulator, "ExpiredTokenException");
    assert_eq!(expired, 0, "no call was signed with an expired session");
    let assumed = world.emulator.sts_request_count("AssumeRole", "success");
    // 300 s of 60 s sessions renewed at 45 s: at least 6 sessions after the first.
    assert!(assumed >= 7, "{assumed} AssumeRole calls");
    let text = metrics.encode().expect("metrics");
    let counted = metrics::value(
        &text,
        &format!(
            "ivschat_operator_account_role_assumptions_total{{account=\"{one}\",outcome=\"success\"}}"
        ),
    );
    assert_eq!(
        counted as u64, assumed,
        "the operator counts what STS answered"
    );
    assert_eq!(
        failed_or_stalled(&text),
        0.0,
        "no reconcile failed or stalled\n{text}"
    );
    eprintln!(
        "sessions renewed over {:?}: {assumed} AssumeRole",
        started.elapsed()
    );
    world.stop().await;
}

/// Reconciles that ended failed or stalled, as the operator counted them.
fn failed_or_stalled(text: &str) -> f64 {
    metrics::sum(text, "ivschat_operator_reconciles_total") - ready_and_progressing(text)
}

fn ready_and_progressing(text: &str) -> f64 {
    ["ready", "progressing", "skipped"]
        .iter()
        .map(|outcome| {
            metrics::samples(text)
                .into_iter()
                .filter(|(series, _)| {
                    series.starts_with("ivschat_operator_reconciles_total{")
                        && metrics::label(series, "outcome") == Some(outcome)
                })
                .map(|(_, value)| value)
                .sum::<f64>()
        })
        .sum()
}

/// IRSA: the operator process's own identity is a web-identity role (the token file and role ARN the EKS
/// Pod Identity webhook injects; no static keys at all), so every ChatAccount session is role chaining. Its
/// room in its own account and a room in a ChatAccount are both Ready, through AssumeRoleWithWebIdentity
/// and then AssumeRole from the web-identity session.
#[tokio::test]
async fn an_operator_with_a_web_identity_assumes_chat_account_roles_from_it() {
    let _heavy = serial::beside_others().await;
    let world = World::without_operator("irsa", EmulatorConfig::default()).await;
    let token = std::env::temp_dir().join(format!("ivschat-irsa-token-{}", std::process::id()));
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aXZzY2hhdC1zeXN0ZW06aXZzY2hhdC1vcGVyYXRvciJ9.c2lnbmF0dXJl")
        .expect("writing the token");
    let url = world.emulator.url();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ivschat-operator"));
    command
        .args(["run", "--aws-endpoint-url", &url, "--resync-period", "2s"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBECONFIG", world._control_plane.kubeconfig_path())
        .env("AWS_REGION", "us-west-2")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
        .env(
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/irsa-operator",
        )
        .env("AWS_ROLE_SESSION_NAME", "ivschat-operator-pod")
        // The web-identity provider's STS client is reached through the environment only.
        .env("AWS_ENDPOINT_URL_STS", &url)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    let mut operator = ivschat_testsupport::operator::Process::spawn("irsa operator", command);
    let one = world.account("one", ONE, "eu-west-1", &["a"]).await;
    world.room("a", "own", json!({})).await;
    world
        .room("a", "tenant", json!({"accountRef": {"name": one}}))
        .await;
    let own = world.ready_room("a", "own").await;
    let tenant = world.ready_room("a", "tenant").await;
    assert!(
        arn_of(&own).starts_with("arn:aws:ivschat:us-west-2:123456789012:room/"),
        "{}",
        arn_of(&own)
    );
    assert!(
        arn_of(&tenant).starts_with(&format!("arn:aws:ivschat:eu-west-1:{ONE}:room/")),
        "{}",
        arn_of(&tenant)
    );
    assert!(
        world
            .emulator
            .sts_request_count("AssumeRoleWithWebIdentity", "success")
            >= 1
    );
    assert!(world.emulator.sts_request_count("AssumeRole", "success") >= 1);
    assert_eq!(
        world.emulator.sts_request_total("AssumeRole"),
        world.emulator.sts_request_count("AssumeRole", "success")
    );
    operator.kill();
    let _ = std::fs::remove_file(&token);
    world.stop().await;
}
