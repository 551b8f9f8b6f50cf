//! `kubectl ivschat`: the kubectl plugin for ChatRooms. It issues chat tokens, sends events, deletes
//! messages and disconnects users in the AWS room behind a ChatRoom (or any room by `--arn`), shows a
//! ChatRoom's spec, its AWS room and its conditions side by side, tails a room live ([`tail`], which owns
//! its WebSocket loop and writes to stdout itself) and sends one message as a chat client ([`send`]).
//!
//! This module owns the plugin's I/O: reading the ChatRoom and its ChatAccount through the Kubernetes API
//! (kubeconfig, `--context`, `-n`), building the IVS Chat client from the AWS configuration chain
//! (`--region`, `--aws-endpoint-url`), assuming the ChatAccount's role with the user's own credentials when
//! the room has one, making the calls and writing the output. The logic is in pure modules: [`cli`] (the
//! command line), [`args`] (validation before any call), [`target`] (region, endpoint and role),
//! [`status`] (spec vs AWS), [`render`] (tables, JSON, YAML) and [`error`] (exit codes, AWS and STS errors
//! as sentences).
//!
//! Exit codes ([`error::exit_code`]): 0 success; 1 AWS, STS, Kubernetes or configuration error (a missing
//! ChatAccount too); 2 invalid arguments (before any call, or rejected by AWS as invalid); 3 room not found
//! (no ChatRoom of that name, or no such room in AWS); 4 the ChatRoom is not Ready or has no ARN yet; 5 the
//! room refused a message (`send-message`).

pub mod args;
pub mod cli;
pub mod error;
pub mod import;
pub mod render;
pub mod send;
pub mod status;
pub mod tail;
pub mod target;

use std::io::{IsTerminal, Write};

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_ivschat::Client as IvsChat;
use aws_sdk_ivschat::config::{BehaviorVersion, Region};
use aws_sdk_ivschat::primitives::{DateTime, DateTimeFormat};
use aws_sdk_ivschat::types::ChatTokenCapability;
use clap::Parser;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::crd::{ChatAccount, ChatRoom, ChatRoomSpec, ManagedSpec};
use args::{Request, RoomTarget};
use cli::{Cli, GlobalArgs};
use error::{AssumeRoleFailure, AwsFailure, AwsFailureKind, PluginError};
use render::{EventSent, MessageDeleted, RoomList, TokenIssued, UserDisconnected};
use status::{AwsRoom, AwsView};

/// The binary's entry point: parses the command line (clap exits with 2 on usage errors), runs the
/// command, writes the result to stdout or `error: …` to stderr, and returns the documented exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // kube (ring) and the AWS SDK each link a rustls provider, so the process must choose one; an Err only
    // means one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::from(error::exit_code::FAILURE);
        }
    };
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let result = runtime.block_on(run(&cli, colour)).and_then(|text| {
        std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|error| PluginError::Output(error.to_string()))
    });
    match result {
        Ok(()) => std::process::ExitCode::from(error::exit_code::SUCCESS),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::from(error.exit_code())
        }
    }
}

/// Runs one command and returns what it writes to stdout.
pub async fn run(cli: &Cli, colour: bool) -> Result<String, PluginError> {
    let global = &cli.global;
    let request = args::validate(global, &cli.command).map_err(PluginError::InvalidArguments)?;
    let format = global.output;
    match request {
        Request::Import(request) => import::run(global, &request).await,
        Request::ListRooms => {
            let kube = KubeAccess::connect(global).await?;
            let rooms = kube.list().await?;
            let list = RoomList {
                namespace: kube.namespace.clone(),
                rooms: rooms.iter().map(status::summary).collect(),
            };
            render::render(&list, format, colour)
        }
        Request::RoomStatus {
            room: RoomTarget::Arn(arn),
        } => {
            let aws = arn_client(global, &arn).await?;
            let view = get_room(&aws, &arn).await?;
            render::render(
                &status::aws_only(&arn, global.account.as_deref(), &view),
                format,
                colour,
            )
        }
        Request::RoomStatus {
            room: RoomTarget::ChatRoom(name),
        } => {
            let kube = KubeAccess::connect(global).await?;
            let room = kube.get(&name).await?;
            let view = match room
                .status
                .as_ref()
                .and_then(|status| status.arn.as_deref())
            {
                None => AwsView::NoArn,
                Some(arn) => {
                    let aws = room_client(global, &kube, &room).await?;
                    get_room(&aws, arn).await?
                }
            };
            render::render(&status::compare(&room, &view), format, colour)
        }
        Request::Token {
            room,
            user_id,
            capabilities,
            session_duration_minutes,
            attributes,
        } => {
            let (arn, aws) = locate(global, &room).await?;
            let output = aws
                .client
                .create_chat_token()
                .room_identifier(&arn)
                .user_id(&user_id)
                .set_capabilities(Some(
                    capabilities
                        .iter()
                        .map(|capability| ChatTokenCapability::from(capability.as_str()))
                        .collect(),
                ))
                .set_session_duration_in_minutes(session_duration_minutes)
                .set_attributes(
                    (!attributes.is_empty()).then_some(attributes.into_iter().collect()),
                )
                .send()
                .await
                .map_err(|error| aws.error("CreateChatToken", &arn, &error))?;
            let issued = TokenIssued {
                room_arn: arn,
                user_id,
                capabilities: capabilities
                    .iter()
                    .map(|capability| capability.as_str().to_owned())
                    .collect(),
                token: output.token().unwrap_or_default().to_owned(),
                token_expiration_time: time_text(output.token_expiration_time()),
                session_expiration_time: time_text(output.session_expiration_time()),
            };
            render::render(&issued, format, colour)
        }
        Request::SendEvent {
            room,
            event_name,
            attributes,
        } => {
            let (arn, aws) = locate(global, &room).await?;
            let output = aws
                .client
                .send_event()
                .room_identifier(&arn)
                .event_name(&event_name)
                .set_attributes(
                    (!attributes.is_empty()).then_some(attributes.into_iter().collect()),
                )
                .send()
                .await
                .map_err(|error| aws.error("SendEvent", &arn, &error))?;
            let sent = EventSent {
                room_arn: arn,
                event_name,
                id: output.id().unwrap_or_default().to_owned(),
            };
            render::render(&sent, format, colour)
        }
        Request::DeleteMessage {
            room,
            message_id,
            reason,
        } => {
            let (arn, aws) = locate(global, &room).await?;
            let output = aws
                .client
                .delete_message()
                .room_identifier(&arn)
                .id(&message_id)
                .set_reason(reason)
                .send()
                .await
                .map_err(|error| aws.error("DeleteMessage", &arn, &error))?;
            let deleted = MessageDeleted {
                room_arn: arn,
                message_id,
                id: output.id().unwrap_or_default().to_owned(),
            };
            render::render(&deleted, format, colour)
        }
        Request::DisconnectUser {
            room,
            user_id,
            reason,
        } => {
            let (arn, aws) = locate(global, &room).await?;
            aws.client
                .disconnect_user()
                .room_identifier(&arn)
                .user_id(&user_id)
                .set_reason(reason)
                .send()
                .await
                .map_err(|error| aws.error("DisconnectUser", &arn, &error))?;
            let disconnected = UserDisconnected {
                room_arn: arn,
                user_id,
            };
            render::render(&disconnected, format, colour)
        }
        Request::SendMessage { room, options } => {
            let (arn, aws) = locate(global, &room).await?;
            send::run(&arn, &aws, &options).await
        }
        // Streams to stdout itself until stopped: nothing is left to print at the end.
        Request::Tail { room, options } => {
            let (arn, aws) = locate(global, &room).await?;
            tail::run(&arn, &aws, &options)
                .await
                .map(|()| String::new())
        }
    }
}

/// The ARN a messaging command acts on (`--arn` as given, or the ARN of a Ready ChatRoom) and the client to
/// act on it with. A room that is missing or not Ready is refused before its ChatAccount is read or AWS is
/// called.
async fn locate(global: &GlobalArgs, room: &RoomTarget) -> Result<(String, Access), PluginError> {
    match room {
        RoomTarget::Arn(arn) => Ok((arn.clone(), arn_client(global, arn).await?)),
        RoomTarget::ChatRoom(name) => {
            let kube = KubeAccess::connect(global).await?;
            let room = kube.get(name).await?;
            let arn = ready_room_arn(&room, &kube.namespace)?;
            let aws = room_client(global, &kube, &room).await?;
            Ok((arn, aws))
        }
    }
}

/// The client for `--arn`: in the ARN's region, with the role of `--account` if given (read from
/// Kubernetes), else the user's own credentials (no Kubernetes access).
async fn arn_client(global: &GlobalArgs, arn: &str) -> Result<Access, PluginError> {
    let account = match &global.account {
        Some(name) => Some(
            KubeAccess::connect(global)
                .await?
                .account(name, None)
                .await?,
        ),
        None => None,
    };
    let inputs = target::Inputs {
        region_flag: global.region.as_deref(),
        endpoint_flag: global.aws_endpoint_url.as_deref(),
        arn: Some(arn),
        account: global
            .account
            .as_deref()
            .zip(account.as_ref().map(|account| &account.spec)),
        ..target::Inputs::default()
    };
    aws_client(&target::choose(&inputs)).await
}

/// The client for a ChatRoom: in its own region, with its ChatAccount's role if it names one.
async fn room_client(
    global: &GlobalArgs,
    kube: &KubeAccess,
    room: &ChatRoom,
) -> Result<Access, PluginError> {
    let account_name = room.spec.account_ref();
    let account = match account_name {
        Some(name) => {
            let referrer = format!(
                "{}/{}",
                kube.namespace,
                room.metadata.name.as_deref().unwrap_or_default()
            );
            Some(kube.account(name, Some(referrer)).await?)
        }
        None => None,
    };
    let status = room.status.as_ref();
    let inputs = target::Inputs {
        region_flag: global.region.as_deref(),
        endpoint_flag: global.aws_endpoint_url.as_deref(),
        arn: status.and_then(|status| status.arn.as_deref()),
        status_region: status.and_then(|status| status.region.as_deref()),
        spec_region: room.spec.region(),
        account: account_name.zip(account.as_ref().map(|account| &account.spec)),
    };
    aws_client(&target::choose(&inputs)).await
}

/// The ChatRoom's ARN if it has one and is Ready; otherwise why not, and what to do.
pub fn ready_room_arn(room: &ChatRoom, namespace: &str) -> Result<String, PluginError> {
    let name = room.metadata.name.clone().unwrap_or_default();
    let ready = status::ready_condition(room);
    let ready_text = match ready {
        Some(condition) if condition.message.is_empty() => {
            format!("Ready={} ({})", condition.status, condition.reason)
        }
        Some(condition) => format!(
            "Ready={} ({}: {})",
            condition.status, condition.reason, condition.message
        ),
        None => "no Ready condition yet: is the operator running?".to_owned(),
    };
    let not_ready = |detail: String| PluginError::RoomNotReady {
        namespace: namespace.to_owned(),
        name: name.clone(),
        detail,
    };
    let Some(arn) = room.status.as_ref().and_then(|status| status.arn.clone()) else {
        return Err(not_ready(format!(
            "has no ARN yet, the operator has not created its AWS room; {ready_text}. Wait and retry, or see `kubectl ivschat status {name} -n {namespace}`"
        )));
    };
    match ready {
        Some(condition) if condition.status == "True" => Ok(arn),
        _ => Err(not_ready(format!(
            "is not Ready; {ready_text}. See `kubectl ivschat status {name} -n {namespace}`, or act on its AWS room anyway with --arn {arn}"
        ))),
    }
}

/// GetRoom as the AWS side of `status`; a 404 is a view ("not found"), not an error.
async fn get_room(aws: &Access, arn: &str) -> Result<AwsView, PluginError> {
    let aws_defaults = ChatRoomSpec::default();
    match aws.client.get_room().identifier(arn).send().await {
        Ok(room) => Ok(AwsView::Found(Box::new(AwsRoom {
            arn: room.arn().unwrap_or(arn).to_owned(),
            id: room.id().unwrap_or_default().to_owned(),
            name: room.name().unwrap_or_default().to_owned(),
            // AWS always reports both; an absent value can only mean its default.
            maximum_message_length: room
                .maximum_message_length()
                .unwrap_or_else(|| aws_defaults.effective_maximum_message_length()),
            maximum_message_rate_per_second: room
                .maximum_message_rate_per_second()
                .unwrap_or_else(|| aws_defaults.effective_maximum_message_rate_per_second()),
            message_review_handler_uri: room
                .message_review_handler()
                .and_then(|handler| handler.uri())
                .unwrap_or_default()
                .to_owned(),
            fallback_result: room
                .message_review_handler()
                .and_then(|handler| handler.fallback_result())
                .map(|result| result.as_str().to_owned())
                .unwrap_or_else(|| "ALLOW".to_owned()),
            logging_configuration_identifiers: room.logging_configuration_identifiers().to_vec(),
            tags: room
                .tags()
                .map(|tags| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            create_time: room.create_time().map(|time| time_text(Some(time))),
            update_time: room.update_time().map(|time| time_text(Some(time))),
        }))),
        Err(error) => {
            let failure = AwsFailure::from_sdk("GetRoom", arn, &error).signed_as(aws.role.clone());
            match &failure.kind {
                AwsFailureKind::Service { code, .. }
                    if code.as_deref() == Some("ResourceNotFoundException") =>
                {
                    Ok(AwsView::NotFound)
                }
                _ => Err(PluginError::Aws(failure)),
            }
        }
    }
}

/// An IVS Chat client and the ChatAccount role it signs with (`None`: the user's own credentials), which
/// an access-denied error names.
struct Access {
    client: IvsChat,
    role: Option<target::Role>,
    /// The region the client calls (where the room is, so where its messaging endpoint is too).
    region: String,
    /// The IVS Chat endpoint as configured, in the SDK's order: `--aws-endpoint-url` or the ChatAccount's
    /// endpointUrl, then AWS_ENDPOINT_URL_IVSCHAT, then AWS_ENDPOINT_URL or the profile's; `None`: AWS's own.
    /// `tail` derives the messaging endpoint from it.
    endpoint_url: Option<String>,
}

impl Access {
    fn error<E>(
        &self,
        operation: &'static str,
        arn: &str,
        error: &aws_sdk_ivschat::error::SdkError<E, aws_sdk_ivschat::config::http::HttpResponse>,
    ) -> PluginError
    where
        E: aws_sdk_ivschat::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        PluginError::Aws(AwsFailure::from_sdk(operation, arn, error).signed_as(self.role.clone()))
    }
}

/// An IVS Chat client at `target`, from the AWS configuration chain (the user's own credentials). With a
/// role, the role is assumed once here, with those credentials as the base, and the client signs with the
/// session: a refusal is reported as STS's before any IVS Chat call, and one command costs one AssumeRole
/// (aws-config's provider does not cache, so a client holding the provider would assume again).
async fn aws_client(target: &target::Target) -> Result<Access, PluginError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &target.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let base = loader.load().await;
    let Some(region) = base.region().cloned() else {
        return Err(PluginError::Config(
            "no AWS region: pass --region or set AWS_REGION".to_owned(),
        ));
    };
    let endpoint_url = target
        .endpoint_url
        .clone()
        .or_else(|| {
            std::env::var("AWS_ENDPOINT_URL_IVSCHAT")
                .ok()
                .filter(|url| !url.is_empty())
        })
        .or_else(|| base.endpoint_url().map(str::to_owned));
    let Some(role) = &target.role else {
        return Ok(Access {
            client: IvsChat::new(&base),
            role: None,
            region: region.to_string(),
            endpoint_url,
        });
    };
    let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
        .session_name(target::SESSION_NAME)
        // STS in the room's region: the regional endpoint, signed for it.
        .region(region.clone())
        .configure(&base);
    if let Some(external_id) = &role.external_id {
        builder = builder.external_id(external_id.clone());
    }
    if let Some(length) = role.session_length {
        builder = builder.session_length(length);
    }
    let credentials = builder
        .build()
        .await
        .provide_credentials()
        .await
        .map_err(|error| {
            PluginError::AssumeRole(AssumeRoleFailure::from_credentials_error(
                &role.account,
                &role.role_arn,
                &error,
            ))
        })?;
    let config = aws_sdk_ivschat::config::Builder::from(&base)
        .credentials_provider(credentials)
        .build();
    Ok(Access {
        client: IvsChat::from_conf(config),
        role: Some(role.clone()),
        region: region.to_string(),
        endpoint_url,
    })
}

fn time_text(time: Option<&DateTime>) -> String {
    time.and_then(|time| time.fmt(DateTimeFormat::DateTime).ok())
        .unwrap_or_default()
}

/// The ChatRoom API of the chosen kubeconfig context and namespace, and the (cluster-scoped) ChatAccounts.
struct KubeAccess {
    rooms: Api<ChatRoom>,
    accounts: Api<ChatAccount>,
    namespace: String,
}

impl KubeAccess {
    /// `--kubeconfig` (else $KUBECONFIG / ~/.kube/config, else in-cluster) with `--context`; the namespace
    /// is `-n`, else the context's, else "default".
    async fn connect(global: &GlobalArgs) -> Result<KubeAccess, PluginError> {
        let options = KubeConfigOptions {
            context: global.context.clone(),
            cluster: None,
            user: None,
        };
        let config = match (&global.kubeconfig, &global.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|error| {
                    PluginError::Config(format!(
                        "cannot read the kubeconfig {}: {error}",
                        path.display()
                    ))
                })?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|error| kubeconfig_error(&error))?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options)
                .await
                .map_err(|error| kubeconfig_error(&error))?,
            (None, None) => Config::infer().await.map_err(|error| {
                PluginError::Config(format!(
                    "no Kubernetes configuration: set KUBECONFIG or pass --kubeconfig ({error})"
                ))
            })?,
        };
        let namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)
            .map_err(|error| PluginError::Kubernetes(format!("cannot build a client: {error}")))?;
        Ok(KubeAccess {
            rooms: Api::namespaced(client.clone(), &namespace),
            accounts: Api::all(client),
            namespace,
        })
    }

    /// The ChatAccount `name`; `referenced_by` is the ChatRoom naming it (`None`: `--account`).
    async fn account(
        &self,
        name: &str,
        referenced_by: Option<String>,
    ) -> Result<ChatAccount, PluginError> {
        match self.accounts.get_opt(name).await {
            Ok(Some(account)) => Ok(account),
            Ok(None) => Err(PluginError::ChatAccountNotFound {
                name: name.to_owned(),
                referenced_by,
            }),
            Err(kube::Error::Api(status)) if status.code == 403 => Err(PluginError::Kubernetes(
                account_forbidden(name, &status.message),
            )),
            Err(error) => Err(kube_error(&error, &format!("reading ChatAccount {name}"))),
        }
    }

    async fn get(&self, name: &str) -> Result<ChatRoom, PluginError> {
        match self.rooms.get_opt(name).await {
            Ok(Some(room)) => Ok(room),
            Ok(None) => Err(PluginError::ChatRoomNotFound {
                namespace: self.namespace.clone(),
                name: name.to_owned(),
            }),
            Err(error) => Err(kube_error(&error, &format!("reading ChatRoom {name}"))),
        }
    }

    async fn list(&self) -> Result<Vec<ChatRoom>, PluginError> {
        let mut rooms = self
            .rooms
            .list(&ListParams::default())
            .await
            .map_err(|error| kube_error(&error, "listing ChatRooms"))?
            .items;
        rooms.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(rooms)
    }
}

/// A 403 reading a ChatAccount: which permission is missing, and the way around it.
fn account_forbidden(name: &str, message: &str) -> String {
    format!(
        "reading ChatAccount {name}: {message}: your Kubernetes user may not get ChatAccounts (cluster-scoped, chataccounts.ivschat.dev), which the plugin reads to know which role to assume; ask for a ClusterRole with get on chataccounts.ivschat.dev, or act with your own AWS credentials: --arn ROOM_ARN without --account"
    )
}

fn kubeconfig_error(error: &kube::config::KubeconfigError) -> PluginError {
    PluginError::Config(format!(
        "cannot use the kubeconfig: {error} (check --kubeconfig and --context)"
    ))
}

fn kube_error(error: &kube::Error, doing: &str) -> PluginError {
    let hint = match error {
        kube::Error::Api(status) if status.code == 404 => {
            " (are the ivschat.dev CRDs installed in this cluster?)"
        }
        kube::Error::Api(status) if status.code == 403 => {
            " (your Kubernetes user may not read ChatRooms in this namespace)"
        }
        kube::Error::Api(_) => "",
        _ => " (is the API server reachable? check --context and --kubeconfig)",
    };
    PluginError::Kubernetes(format!("{doing}: {error}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{CONDITION_READY, ChatRoomSpec, ChatRoomStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    const ARN: &str = "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234";

    fn room(arn: Option<&str>, ready: Option<&str>) -> ChatRoom {
        let mut room = ChatRoom::new("demo", ChatRoomSpec::default());
        room.status = Some(ChatRoomStatus {
            arn: arn.map(str::to_owned),
            conditions: ready
                .map(|status| Condition {
                    type_: CONDITION_READY.into(),
                    status: status.into(),
                    reason: "Reason".into(),
                    message: "the message".into(),
                    observed_generation: None,
                    last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                })
                .into_iter()
                .collect(),
            ..ChatRoomStatus::default()
        });
        room
    }

    #[test]
    fn a_forbidden_account_read_names_the_permission() {
        let text = account_forbidden("prod", "chataccounts.ivschat.dev \"prod\" is forbidden");
        assert!(
            text.contains("may not get ChatAccounts (cluster-scoped, chataccounts.ivschat.dev)"),
            "{text}"
        );
        assert!(text.contains("--arn ROOM_ARN without --account"), "{text}");
    }

    #[test]
    fn a_ready_room_gives_its_arn() {
        assert_eq!(
            ready_room_arn(&room(Some(ARN), Some("True")), "ns")
                .ok()
                .as_deref(),
            Some(ARN)
        );
    }

    #[test]
    fn a_room_without_arn_is_not_ready() {
        let error = ready_room_arn(&room(None, None), "ns").expect_err("no ARN");
        assert_eq!(error.exit_code(), error::exit_code::ROOM_NOT_READY);
        let text = error.to_string();
        assert!(text.contains("ChatRoom ns/demo has no ARN yet"), "{text}");
        assert!(text.contains("is the operator running?"), "{text}");
    }

    #[test]
    fn a_room_with_arn_but_not_ready_suggests_arn() {
        let error = ready_room_arn(&room(Some(ARN), Some("False")), "ns").expect_err("not ready");
        assert_eq!(error.exit_code(), error::exit_code::ROOM_NOT_READY);
        let text = error.to_string();
        assert!(
            text.contains("is not Ready; Ready=False (Reason: the message)"),
            "{text}"
        );
        assert!(text.contains(&format!("--arn {ARN}")), "{text}");
    }
}
