//! The command line of `kubectl ivschat`: clap types only. What the values mean and which combinations are
//! valid is checked in [`super::args`], so that every invalid argument is refused before any call.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Work with Amazon IVS Chat rooms managed as ChatRoom resources: issue chat tokens, send events, delete
/// messages, disconnect users, and compare a ChatRoom's spec with its room in AWS.
///
/// ROOM is the name of a ChatRoom in the current namespace; `--arn` names any room in AWS instead. A
/// ChatRoom with spec.accountRef is reached by assuming its ChatAccount's role with your own AWS
/// credentials (your identity must be trusted by that role), in the room's own region.
///
/// Exit codes: 0 success, 1 AWS or other error (also a missing ChatAccount, or a role STS refuses you),
/// 2 invalid arguments, 3 room not found (no such ChatRoom, or no such room in AWS), 4 the ChatRoom is not
/// Ready or has no ARN yet, 5 (send-message) the room refused the message.
#[derive(Debug, Parser)]
#[command(name = "kubectl-ivschat", bin_name = "kubectl ivschat", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, before or after the command name (as kubectl users expect).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Namespace of the ChatRoom (default: the kubeconfig context's namespace, else "default").
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,

    /// kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,

    /// Path of the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Act on this room ARN directly instead of a ChatRoom (no Kubernetes access is needed, unless
    /// --account is given too).
    #[arg(long, global = true, value_name = "ROOM_ARN")]
    pub arn: Option<String>,

    /// With --arn: assume the role of this ChatAccount (cluster-scoped; you need `get` on
    /// chataccounts.ivschat.dev) with your own AWS credentials, and use its endpointUrl. Omitted: your own
    /// credentials. A ChatRoom's account is its spec.accountRef, never this flag. With import: the account
    /// to read, which the manifests name in spec.accountRef.
    #[arg(long, global = true, value_name = "CHAT_ACCOUNT")]
    pub account: Option<String>,

    /// AWS region (default: the ChatRoom's status.region, else the region in the room's ARN, else its
    /// spec.region, else its ChatAccount's defaultRegion, else the AWS configuration's region).
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// IVS Chat and STS endpoint URL, e.g. a local emulator (default: the ChatAccount's endpointUrl, else
    /// AWS_ENDPOINT_URL_IVSCHAT / AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, AWS).
    #[arg(long, global = true, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,

    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Readable tables and text.
    Table,
    /// JSON, for scripts.
    Json,
    /// YAML, for scripts.
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Issue a chat token with which a client connects to the room as USER.
    Token(TokenArgs),
    /// Send an application-defined event to every client connected to the room.
    SendEvent(SendEventArgs),
    /// Tell the room's clients to remove a message.
    DeleteMessage(DeleteMessageArgs),
    /// Close every connection of a user to the room.
    DisconnectUser(DisconnectUserArgs),
    /// Without ROOM: the namespace's ChatRooms. With ROOM: its spec, the room in AWS and its conditions.
    Status(StatusArgs),
    /// Write manifests adopting the rooms and logging configurations no object of this cluster manages.
    ///
    /// ChatLoggingConfiguration and ChatRoom manifests (YAML, spec.adoptArn, every field as AWS reports
    /// it) for the resources of an account and region; applied, the operator adopts them with no AWS write
    /// but its ownership tags. Example: `kubectl ivschat import -n chat --region eu-west-1 --output-dir
    /// gitops/chat`. `-n` is the manifests' namespace, `--account` the ChatAccount they live in (its role
    /// is assumed to read them), `--region` the region read.
    ///
    /// Skipped and listed on stderr: ARNs that an object's status.arn or spec.adoptArn names, resources
    /// tagged ivschat.dev/owner-uid by an object of this cluster (or, without --include-orphaned, by one
    /// it does not have), logging configurations that are DELETING or failed. Object names: the AWS name
    /// lower-cased with other characters as '-', at most 63; unnamed resources, and names two resources
    /// (or an existing object) would share, get '-<id>'. The output is always YAML (-o does not apply).
    Import(super::import::ImportArgs),
    /// Send one chat message to the room and print what was delivered (or why it was not).
    #[command(long_about = super::send::LONG_ABOUT)]
    SendMessage(super::send::SendMessageArgs),
    /// Print the room's messages, events, deletions and disconnects as they arrive (no history).
    #[command(long_about = super::tail::LONG_ABOUT)]
    Tail(super::tail::TailArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// ChatRoom name (or use --arn).
    pub room: Option<String>,

    /// The user the token is for (1-128 characters).
    #[arg(long)]
    pub user_id: String,

    /// What the user may do besides receiving messages; repeat for several.
    #[arg(long = "capability", value_name = "CAPABILITY")]
    pub capabilities: Vec<String>,

    /// How long the chat session may last, in minutes (1-180; AWS default 60).
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true)]
    pub session_duration: Option<i64>,

    /// Attribute attached to the user's messages, `key=value`; repeat for several (1 KiB in total).
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    pub attributes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SendEventArgs {
    /// ChatRoom name (or use --arn).
    pub room: Option<String>,

    /// Event name (1-100 characters).
    #[arg(long)]
    pub name: String,

    /// Event attribute `key=value`; repeat for several (1 KiB in total).
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    pub attributes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteMessageArgs {
    /// ChatRoom name (or use --arn).
    pub room: Option<String>,

    /// ID of the message to delete (12 letters and digits, as clients receive it).
    #[arg(long, value_name = "MESSAGE_ID")]
    pub id: String,

    /// Why the message is deleted (1-256 characters), shown to clients.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct DisconnectUserArgs {
    /// ChatRoom name (or use --arn).
    pub room: Option<String>,

    /// The user to disconnect (1-128 characters).
    #[arg(long)]
    pub user_id: String,

    /// Why the user is disconnected (1-256 characters), shown to the user's clients.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// ChatRoom name; omitted: list the namespace's ChatRooms (or, with --arn, show that AWS room).
    pub room: Option<String>,
}
