//! The local IVS Chat emulator: the AWS IVS Chat control-plane API (restJson1 over HTTP, SigV4-verified) in
//! every IVS Chat region and any number of accounts, with STS (AssumeRole, AssumeRoleWithWebIdentity,
//! GetCallerIdentity) on the same listener, served from memory with optional persistence, fault injection,
//! quotas and request counters for tests. The AWS CLI
//! and the Rust SDK work against it unchanged (`endpoint_url` / `--endpoint-url`). `ivschat-operator emulator`
//! serves it from the command line ([`run_cli`]); tests start it in-process ([`Emulator::start`]). The API's
//! facts (operations, quotas, field limits) come from the `ivschat-api` crate; nothing comes from the operator.
//!
//! Files: [`config`] (CLI flags, library config, runtime settings), [`http`] (routing, wire encoding, admin
//! API), [`operation`] (the 17 operations' HTTP bindings), [`operations`] (input decoding, validation,
//! defaults, outputs), [`validate`] (the model's constraints), [`store`] (resources and cross-resource
//! invariants), [`lifecycle`] (logging-configuration states), [`pagination`] (tokens), [`error`] (wire errors),
//! [`ids`] (ids, ARNs, tokens), [`wire`] (timestamps on the wire), [`traffic`] (quotas, faults, latency),
//! [`metrics`], [`persistence`], [`service`] (shared state, room events, the per-scope view operations get),
//! [`sigv4`] (signature verification), [`identity`] (who signed: the static key or a session key, and the
//! session's token and expiry), [`accounts`] (accounts, roles, trust, revocation, the accounts file),
//! [`sessions`] (the issued session credentials), [`sts`] (the STS query protocol and its three actions),
//! [`messaging`] (the chat Messaging API: WebSocket connections on the same listener, `ws://HOST:PORT`),
//! [`connections`] (the open messaging connections and per-room message rates), [`review`] (message review
//! handlers, invoked through the Lambda Invoke API at a configured local endpoint).
//!
//! # Scopes
//! Every IVS Chat request acts in one (account, region): the account of its credentials (the default
//! account `--account-id` for the static key, the session's for an STS-issued key) and the region of its
//! SigV4 credential scope, which must be one the emulator serves (`--regions`, default all seven IVS Chat
//! regions). Resources, ids, ARNs, pagination tokens and all quotas are per scope ([`store::Stores`]). The
//! accounts, roles, STS and the error choices for session credentials are documented in [`accounts`],
//! [`identity`] and [`sts`] (and in the README's "Accounts, regions and STS").
//!
//! # Behaviour where AWS documents nothing (see also ivschat-api.md §7)
//! - **Identifiers** must be ARNs (the model's patterns). An ARN of another region or account than the
//!   request's scope, or of a resource that does not exist, is a 404 ResourceNotFoundException whose `resourceId` is the ARN's id part and whose
//!   `resourceType` is `ROOM` (the model's only value, also for logging configurations).
//! - **Integers**: an explicit `0` for a boxed integer (`maximumMessage*`, `maxResults`,
//!   `sessionDurationInMinutes`) counts as "not set", because Smithy-2 SDKs may send their `@default(0)`.
//!   Non-integers and values beyond 64 bits are a 400 SerializationException; out-of-range values a
//!   ValidationException.
//! - **Bodies**: an empty body is `{}`; unknown members are ignored; `null` means absent. Invalid JSON, invalid
//!   UTF-8, a member given twice or a member of the wrong JSON type is 400 `SerializationException`. Bodies over 1 MiB are
//!   413 `RequestEntityTooLargeException`.
//! - **Rooms**: an omitted name is `""`. A `messageReviewHandler` without a `uri` (or with `""`) on CreateRoom
//!   means no handler; the response omits `messageReviewHandler` when there is none (as the CLI examples do).
//!   UpdateRoom is a patch: omitted members stay; `uri: ""` removes the handler; a `fallbackResult` alone
//!   changes the current handler's fallback. `loggingConfigurationIdentifiers` are stored as given, without
//!   duplicates; `[]` clears them. Attaching a logging configuration that does not exist is 404; one that is
//!   not ACTIVE is 409 (configurations already attached to the room are not re-checked on UpdateRoom).
//! - **Times**: create/update times have millisecond precision (what the wire shows: `2022-03-16T04:44:09.123Z`)
//!   and strictly increase within a scope, so updateTime orders are total; updates bump `updateTime`.
//! - **ListRooms**: filters AND together and match exactly; an empty filter string means no filter; an unknown
//!   `loggingConfigurationIdentifier` filter is 404. Both lists are ordered by updateTime descending (ties by
//!   id). `nextToken: ""` means the first page.
//! - **Pagination tokens** are signed cursors (see [`pagination`]); a bad token, or one from another list,
//!   filter set, scope or emulator process, is 400 ValidationException naming `nextToken`.
//! - **Logging configurations**: Create/Update answer `ACTIVE` (their output enums have only that value) while
//!   Get/List report CREATING / UPDATING / DELETING during the configured delay (see [`lifecycle`]). Update or
//!   Delete during a transition is 409. Deleting one that a room uses is 409. The quota counts every
//!   configuration that still exists (including DELETING and failed ones).
//! - **Quotas** count per (account, region): the room quota (optional) and the logging-configuration quota
//!   (default 10) answer 402 with `limit` = the quota and `resourceId` = the account id. TPS quotas (when
//!   enforced) are token buckets per account, region and operation (burst = TPS) and answer 429 ThrottlingException with `limit` = the TPS and `resourceId` = the
//!   account id; rejected requests still consume nothing.
//! - **Tags**: TagResource that would leave more than 50 tags is a ValidationException. UntagResource without any
//!   `tagKeys` parameter is a ValidationException (the member is required); missing keys are ignored. In the
//!   query, `+` is a literal plus (the SDKs encode spaces as `%20`).
//! - **Chat tokens** are opaque (`[A-Za-z0-9_-]`), valid for one minute (tests can shorten it and the session
//!   minute: `EmulatorConfig::chat_token_validity` / `chat_session_minute`), single-use, and kept in memory for the
//!   messaging endpoint ([`Emulator::redeem_chat_token`]); `sessionExpirationTime` = issue time + duration.
//!   SendEvent / DeleteMessage / DisconnectUser check the room exists and publish a [`RoomEvent`]
//!   ([`Emulator::subscribe_room_events`]); DeleteMessage does not check that the message exists. DeleteRoom
//!   publishes one too, and so do the messaging connections' actions; [`messaging`] delivers them.
//! - **Errors outside the model**: unknown path or method: 404 `UnknownOperationException`; authentication: 403
//!   with the SigV4 verifier's type, or 403 `ExpiredTokenException` for an expired session (see
//!   [`identity`]); a session of a revoked role: 403 `AccessDeniedException` (the model's); injected faults: 500
//!   `InternalServerException` / 503 `ServiceUnavailableException`. Order of checks: body size, extra latency,
//!   authentication, routing, revoked role, injected fault, TPS quota, then validation and the operation
//!   itself. STS requests are told apart before any of this (see [`sts`]).
//! - **Lost responses** (`lostResponseRate`, default 0): after a control-plane write succeeded (Create/Update/
//!   Delete of rooms and logging configurations, TagResource, UntagResource; never reads nor the data-plane
//!   CreateChatToken / SendEvent / DeleteMessage / DisconnectUser), that share of them answer 500
//!   `InternalServerException` saying the response was dropped after the change was made; the change stays
//!   (and is persisted). This is the AWS hazard an injected fault cannot show: CreateRoom and
//!   CreateLoggingConfiguration take no idempotency token, so a client that retries blindly creates twice.
//!   Counted as `InternalServerException` plus `ivschat_emulator_lost_responses_total` (see [`metrics`]).
//! - **Late commits** (`lateCommitRate`, default 0; `lateCommitDelay`, default 2 s): that share of the same
//!   control-plane writes answer 500 `InternalServerException` at once, before anything changed, and are
//!   carried out `lateCommitDelay` later (validated then, as a new request would be, past the TPS quota that
//!   admitted them): AWS completing a request after its client gave up. A read right after the 500 shows
//!   nothing; a later one shows the change. Counted as `InternalServerException` plus
//!   `ivschat_emulator_late_commits_total` (the writes that then succeeded).
//! - **Persistence** keeps rooms, logging configurations (with lifecycle timestamps) and tags of every scope
//!   (each resource's ARN names its scope, so the file format did not change and older files load); chat
//!   tokens, STS sessions, accounts added at run time, revocations and the pagination key are per process. A state file that cannot be written turns the request into a 500.
//! - **Message review handlers**: a SEND_MESSAGE to a room with a `messageReviewHandler` invokes it through the
//!   Lambda Invoke API at the configured local endpoint (`--lambda-endpoint`, `--lambda-function-endpoint`)
//!   and waits for it at most `--review-timeout` (AWS's 200 ms); without an endpoint the `fallbackResult`
//!   decides. See [`review`].
//! - **Admin API** under `/_emulator/` is unsigned (see [`http`]); the default listen address is loopback.

pub mod accounts;
pub mod config;
pub mod connections;
pub mod error;
pub mod http;
pub mod identity;
pub mod ids;
pub mod lifecycle;
pub mod messaging;
pub mod metrics;
pub mod operation;
pub mod operations;
pub mod pagination;
pub mod persistence;
pub mod review;
pub mod service;
pub mod sessions;
pub mod sigv4;
pub mod store;
pub mod sts;
pub mod traffic;
pub mod validate;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

pub use accounts::{AccountConfig, RoleConfig};
pub use config::{
    EmulatorArgs, EmulatorConfig, IVSCHAT_REGIONS, RuntimeSettings, TransitionFailures,
};
pub use metrics::MetricsSnapshot;
pub use service::{RoomEvent, RoomEventKind};
pub use store::ScopeSummary;
pub use store::{ChatTokenRejection, IssuedChatToken, Room};

use service::Service;

/// How long [`Emulator::stop`] waits for in-flight requests before it aborts the server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running emulator. Many can run in one process (each has its own state, port and settings).
pub struct Emulator {
    local_addr: SocketAddr,
    service: Arc<Service>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Emulator {
    /// Binds `addr` (use `127.0.0.1:0` for a free port) and serves until [`Emulator::stop`] or drop.
    pub async fn start(addr: SocketAddr, config: EmulatorConfig) -> anyhow::Result<Emulator> {
        let service = Arc::new(Service::new(config)?);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local_addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let app = http::router(Arc::clone(&service));
        let server = tokio::spawn(async move {
            // The peer address is the `Sender.Ip` a message review handler sees.
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                // Either an explicit stop or the Emulator being dropped (sender gone) ends the server.
                let _ = shutdown_signal.await;
            })
            .await
        });
        Ok(Emulator {
            local_addr,
            service,
            shutdown: Some(shutdown),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL for SDKs and the CLI.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// `ws://127.0.0.1:PORT`: the chat messaging endpoint for chat clients (the `regionOrUrl` of the JS client).
    pub fn messaging_url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configuration the emulator was started with (runtime settings may have changed since; see
    /// [`Emulator::settings`]).
    pub fn config(&self) -> &EmulatorConfig {
        &self.service.config
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 10 s) and waits for the server.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // Upgraded messaging connections outlive the HTTP server's graceful shutdown unless told to close.
        self.service.connections.shut_down();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(joined) => joined
                .context("the emulator server task failed")?
                .context("the emulator server failed"),
            Err(_) => {
                server.abort();
                anyhow::bail!("the emulator did not shut down within {SHUTDOWN_GRACE:?}; aborted")
            }
        }
    }

    // ---- SDK clients ----------------------------------------------------------------------------------------

    /// An SDK config builder aimed at this emulator: its default region, endpoint and static credentials.
    pub fn sdk_config_builder(&self) -> aws_sdk_ivschat::config::Builder {
        self.sdk_config_builder_in(&self.service.config.region)
    }

    /// An SDK config builder aimed at this emulator in `region`, with the static credentials (the default
    /// account).
    pub fn sdk_config_builder_in(&self, region: &str) -> aws_sdk_ivschat::config::Builder {
        let config = &self.service.config;
        aws_sdk_ivschat::Config::builder()
            .behavior_version(aws_sdk_ivschat::config::BehaviorVersion::latest())
            .region(aws_sdk_ivschat::config::Region::new(region.to_owned()))
            .endpoint_url(self.url())
            .credentials_provider(aws_sdk_ivschat::config::Credentials::new(
                config.access_key_id.clone(),
                config.secret_access_key.clone(),
                None,
                None,
                "ivschat-emulator",
            ))
    }

    /// An SDK client for this emulator with the SDK's default retry policy.
    pub fn sdk_client(&self) -> aws_sdk_ivschat::Client {
        aws_sdk_ivschat::Client::from_conf(self.sdk_config_builder().build())
    }

    /// An SDK client for this emulator, with the builder adjusted by `customize` (retries, timeouts,
    /// credentials, interceptors...).
    pub fn sdk_client_with(
        &self,
        customize: impl FnOnce(aws_sdk_ivschat::config::Builder) -> aws_sdk_ivschat::config::Builder,
    ) -> aws_sdk_ivschat::Client {
        aws_sdk_ivschat::Client::from_conf(customize(self.sdk_config_builder()).build())
    }

    /// An SDK client that makes exactly one attempt per call (so tests see injected faults and throttling).
    pub fn sdk_client_without_retries(&self) -> aws_sdk_ivschat::Client {
        self.sdk_client_with(|builder| {
            builder.retry_config(aws_sdk_ivschat::config::retry::RetryConfig::disabled())
        })
    }

    // ---- metrics ----------------------------------------------------------------------------------------------

    /// All request counters: (operation, outcome) → count. Outcome is `success` or the error type name.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.service.metrics.snapshot()
    }

    /// Requests of `operation` (e.g. `CreateRoom`, or `unknown`) that ended with `outcome`.
    pub fn request_count(&self, operation: &str, outcome: &str) -> u64 {
        self.service.metrics.count(operation, outcome)
    }

    /// Requests of `operation` with any outcome.
    pub fn request_total(&self, operation: &str) -> u64 {
        self.service.metrics.total(operation)
    }

    /// Requests of `operation` in (`account`, `region`), any outcome (authenticated requests only).
    pub fn request_count_in(&self, account: &str, region: &str, operation: &str) -> u64 {
        self.service
            .metrics
            .scoped_total(account, region, operation)
    }

    /// STS requests of `action` (`AssumeRole`, `AssumeRoleWithWebIdentity`, `GetCallerIdentity`, or
    /// `unknown`) that ended with `outcome` (`success` or the STS error code, e.g. `AccessDenied`).
    pub fn sts_request_count(&self, action: &str, outcome: &str) -> u64 {
        self.service.metrics.sts_count(action, outcome)
    }

    /// STS requests of `action` with any outcome.
    pub fn sts_request_total(&self, action: &str) -> u64 {
        self.service.metrics.sts_total(action)
    }

    /// The counters as Prometheus text (the same as `GET /_emulator/metrics`).
    pub fn metrics_text(&self) -> String {
        self.service.metrics.prometheus_text()
    }

    /// Requests of `operation` whose change was made although the response was replaced by a 500
    /// (`lostResponseRate`); they are also counted under `InternalServerException`.
    pub fn lost_response_count(&self, operation: &str) -> u64 {
        self.service.metrics.lost_responses(operation)
    }

    /// Requests of `operation` answered with a 500 and carried out successfully later (`lateCommitRate`);
    /// the 500s are also counted under `InternalServerException`.
    pub fn late_commit_count(&self, operation: &str) -> u64 {
        self.service.metrics.late_commits(operation)
    }

    /// Messages whose review ended with `outcome` (a label of [`review::Outcome`], e.g. `rewritten` or
    /// `timeout`), delivered or refused.
    pub fn review_count(&self, outcome: &str) -> u64 {
        self.service.metrics.reviews(outcome)
    }

    /// Reviewed messages by (outcome, result `ALLOW` / `DENY`).
    pub fn review_counts(&self) -> std::collections::BTreeMap<(String, String), u64> {
        self.service.metrics.review_counts()
    }

    /// The request log (the last 100,000 API requests, oldest first), each with its caller's app name: the
    /// same as `GET /_emulator/requests`.
    pub fn requests(&self) -> Vec<metrics::RequestRecord> {
        self.service.metrics.requests()
    }

    pub fn reset_metrics(&self) {
        self.service.metrics.reset();
    }

    // ---- runtime settings -------------------------------------------------------------------------------------

    pub fn settings(&self) -> RuntimeSettings {
        self.service.traffic.settings()
    }

    /// Changes runtime settings (the same as `POST /_emulator/settings`); an invalid result changes nothing.
    pub fn update_settings(
        &self,
        change: impl FnOnce(&mut RuntimeSettings),
    ) -> anyhow::Result<RuntimeSettings> {
        self.service
            .traffic
            .update(change)
            .map_err(anyhow::Error::msg)
    }

    /// Fraction (0..=1) of API requests answered with an injected 500 or 503.
    pub fn set_fault_rate(&self, rate: f64) -> anyhow::Result<()> {
        self.update_settings(|settings| settings.fault_rate = rate)
            .map(drop)
    }

    /// Fraction (0..=1) of successful control-plane writes whose change is kept but whose response is replaced
    /// by a 500 InternalServerException.
    pub fn set_lost_response_rate(&self, rate: f64) -> anyhow::Result<()> {
        self.update_settings(|settings| settings.lost_response_rate = rate)
            .map(drop)
    }

    /// Which logging-configuration transitions started from now on end in `*_FAILED`.
    pub fn set_fail_transitions(&self, failures: TransitionFailures) {
        let _ = self.update_settings(|settings| settings.fail_transitions = failures);
    }

    pub fn set_logging_transition_delay(&self, delay: Duration) {
        let _ = self.update_settings(|settings| settings.logging_transition_delay = delay);
    }

    pub fn set_enforce_quotas(&self, enforce: bool) {
        let _ = self.update_settings(|settings| settings.enforce_quotas = enforce);
    }

    pub fn set_room_quota(&self, quota: Option<u32>) {
        let _ = self.update_settings(|settings| settings.room_quota = quota);
    }

    pub fn set_extra_latency(&self, latency: Duration) {
        let _ = self.update_settings(|settings| settings.extra_latency = latency);
    }

    /// Caps the lifetime of sessions STS issues from now on (`None`: the requested duration). A lifetime
    /// under 1 s is refused (nothing changes).
    pub fn set_credential_lifetime(&self, lifetime: Option<Duration>) {
        let _ = self.update_settings(|settings| settings.credential_lifetime = lifetime);
    }

    // ---- accounts, regions and STS --------------------------------------------------------------------------

    /// The default account: the static credentials' own (`--account-id`).
    pub fn default_account_id(&self) -> &str {
        &self.service.config.account_id
    }

    /// The regions served.
    pub fn regions(&self) -> &[String] {
        &self.service.regions
    }

    /// Adds an account, or replaces its roles (the same as `POST /_emulator/accounts`). Panics on an invalid
    /// account (a test's own mistake); see [`Emulator::try_add_account`].
    pub fn add_account(&self, account: AccountConfig) {
        if let Err(error) = self.try_add_account(account) {
            panic!("invalid account: {error}");
        }
    }

    /// Adds an account, or replaces its roles; an invalid account changes nothing.
    pub fn try_add_account(&self, account: AccountConfig) -> anyhow::Result<()> {
        self.service
            .accounts_mut()
            .put(account)
            .map_err(anyhow::Error::msg)
    }

    /// Revokes a role: AssumeRole of it is AccessDenied and its sessions' IVS Chat calls get 403
    /// AccessDeniedException. Panics on a string that is no role ARN.
    pub fn revoke_role(&self, role_arn: &str) {
        let role = parse_role_arn(role_arn);
        self.service.accounts_mut().revoke(&role);
    }

    /// Undoes [`Emulator::revoke_role`]. Panics on a string that is no role ARN.
    pub fn restore_role(&self, role_arn: &str) {
        let role = parse_role_arn(role_arn);
        self.service.accounts_mut().restore(&role);
    }

    /// The rooms of one (account, region), ordered by id.
    pub fn rooms_in(&self, account: &str, region: &str) -> Vec<Room> {
        self.service.rooms_in(&ids::ArnScope::new(account, region))
    }

    /// Room and logging-configuration counts of every (account, region) used so far (the same as
    /// `GET /_emulator/scopes`).
    pub fn scopes(&self) -> Vec<ScopeSummary> {
        self.service.scope_summaries()
    }

    // ---- messaging bridge ---------------------------------------------------------------------------------

    /// Room events published by SendEvent, DeleteMessage, DisconnectUser, DeleteRoom and the messaging
    /// connections' actions (what the messaging endpoint delivers).
    pub fn subscribe_room_events(&self) -> broadcast::Receiver<RoomEvent> {
        self.service.subscribe()
    }

    /// Redeems a chat token for one messaging connection (each token works once, within its minute).
    pub fn redeem_chat_token(&self, token: &str) -> Result<IssuedChatToken, ChatTokenRejection> {
        self.service.redeem_chat_token(token)
    }

    /// The user ids of the room's open messaging connections (one entry per connection), sorted.
    pub fn chat_connections(&self, room_arn: &str) -> Vec<String> {
        self.service.connections.connected_users(room_arn)
    }

    /// The current settings of a room (for the messaging endpoint: message length and rate limits, handler).
    pub fn room(&self, arn: &str) -> Option<Room> {
        self.service.room(arn)
    }
}

fn parse_role_arn(role_arn: &str) -> accounts::RoleArn {
    accounts::RoleArn::parse(role_arn).unwrap_or_else(|| {
        panic!("{role_arn:?} is not arn:aws:iam::<12-digit account>:role/<name>")
    })
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Not stopped explicitly: ask the server to shut down gracefully in the background.
        self.service.connections.shut_down();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// `ivschat-operator emulator`: serves until SIGINT or SIGTERM.
pub async fn run_cli(args: EmulatorArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    // Logs go to stderr (colours only on a terminal); stdout carries the one "listening" line for scripts.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let listen = args.listen;
    let config = EmulatorConfig::from(args);
    let emulator = Emulator::start(listen, config).await?;
    let config = emulator.config();
    tracing::info!(
        url = %emulator.url(),
        messaging_url = %emulator.messaging_url(),
        region = %config.region,
        regions = ?emulator.regions(),
        account_id = %config.account_id,
        access_key_id = %config.access_key_id,
        state_file = ?config.state_file,
        settings = ?emulator.settings(),
        "IVS Chat emulator listening"
    );
    if !emulator.local_addr().ip().is_loopback() {
        tracing::warn!(
            "listening beyond loopback: the /_emulator/* admin endpoints are unauthenticated and reachable by anyone \
             who can reach this address"
        );
    }
    println!("IVS Chat emulator listening on {}", emulator.url());
    shutdown_signal().await?;
    tracing::info!("shutting down");
    emulator.stop().await
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT"),
        _ = terminate.recv() => Ok(()),
    }
}
