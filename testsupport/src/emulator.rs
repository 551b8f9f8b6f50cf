//! The in-process IVS Chat emulator of a test: starting it on a free port, creating rooms in it, reading its
//! request counters, and the environment of AWS client processes pointed at it.

use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::operation::create_room::builders::CreateRoomFluentBuilder;
use ivschat_emulator::{Emulator, EmulatorConfig};

/// The AWS operations that change something: at rest, an operator calls none of them.
pub const WRITE_OPERATIONS: [&str; 8] = [
    "CreateRoom",
    "UpdateRoom",
    "DeleteRoom",
    "CreateLoggingConfiguration",
    "UpdateLoggingConfiguration",
    "DeleteLoggingConfiguration",
    "TagResource",
    "UntagResource",
];

/// An emulator with `config` on a free loopback port.
pub async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start("127.0.0.1:0".parse().expect("address"), config)
        .await
        .expect("starting the emulator")
}

/// Requests of `operations` the emulator answered (any outcome).
pub fn requests(emulator: &Emulator, operations: &[&str]) -> u64 {
    operations
        .iter()
        .map(|operation| emulator.request_total(operation))
        .sum()
}

/// Write requests ([`WRITE_OPERATIONS`]) the emulator answered.
pub fn writes(emulator: &Emulator) -> u64 {
    requests(emulator, &WRITE_OPERATIONS)
}

/// Requests of any operation the emulator answered with `outcome` (e.g. `ThrottlingException`).
pub fn with_outcome(emulator: &Emulator, outcome: &str) -> u64 {
    emulator
        .metrics()
        .iter()
        .filter(|((_, answered), _)| answered == outcome)
        .map(|(_, count)| count)
        .sum()
}

/// The environment of an AWS client process (the plugin, the CLI) talking to `emulator`: its static
/// credentials, and no profile, region, endpoint, session token, shared files or instance metadata from the
/// machine, so what the machine has configured never leaks into a test.
pub fn isolate_aws_env(command: &mut std::process::Command, emulator: &Emulator) {
    for variable in [
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_IVSCHAT",
        "AWS_ENDPOINT_URL_STS",
    ] {
        command.env_remove(variable);
    }
    let config = emulator.config();
    command
        .env("AWS_ACCESS_KEY_ID", &config.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &config.secret_access_key)
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

/// Creates a room with the settings `customize` gives; its ARN.
pub async fn create_room_with(
    client: &Client,
    customize: impl FnOnce(CreateRoomFluentBuilder) -> CreateRoomFluentBuilder,
) -> String {
    customize(client.create_room())
        .send()
        .await
        .expect("create room")
        .arn()
        .expect("arn")
        .to_string()
}

/// Every room the client's account holds, all ListRooms pages.
pub async fn all_rooms(aws: &Client) -> Vec<aws_sdk_ivschat::types::RoomSummary> {
    let mut rooms = Vec::new();
    let mut next_token = None;
    loop {
        let page = aws
            .list_rooms()
            .max_results(50)
            .set_next_token(next_token)
            .send()
            .await
            .expect("ListRooms");
        rooms.extend(page.rooms().iter().cloned());
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() {
            return rooms;
        }
    }
}

/// The shared AWS configuration of a client of `emulator` in `region`, as an operator builds one: the
/// emulator's endpoint for every service (STS included) and its static credentials (its default account).
pub async fn shared_config(emulator: &Emulator, region: &str) -> aws_config::SdkConfig {
    let config = emulator.config();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(emulator.url())
        .credentials_provider(aws_sdk_ivschat::config::Credentials::new(
            config.access_key_id.clone(),
            config.secret_access_key.clone(),
            None,
            None,
            "emulator",
        ))
        .load()
        .await
}

/// An IVS Chat client in `region` whose credentials are sessions of `role` (STS AssumeRole through the
/// emulator, with `external_id` if given), without the SDK's retries.
pub async fn assumed_client(
    emulator: &Emulator,
    role: &str,
    external_id: Option<&str>,
    region: &str,
) -> Client {
    let base = shared_config(emulator, region).await;
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(role).session_name("ivs-test");
    if let Some(external_id) = external_id {
        provider = provider.external_id(external_id);
    }
    let provider = provider.configure(&base).build().await;
    let mut builder = aws_sdk_ivschat::config::Builder::from(&base);
    builder.set_credentials_provider(Some(
        aws_sdk_ivschat::config::SharedCredentialsProvider::new(provider),
    ));
    Client::from_conf(
        builder
            .retry_config(aws_sdk_ivschat::config::retry::RetryConfig::disabled())
            .build(),
    )
}
