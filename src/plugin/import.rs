//! `kubectl ivschat import`: writes ChatLoggingConfiguration and ChatRoom manifests for the IVS Chat
//! resources of one account and region that no object of this cluster manages, so that applying them makes
//! the operator adopt each resource exactly as it is (`spec.adoptArn`, every field as AWS reports it): the
//! only AWS writes that follow are the operator's ownership tags.
//!
//! Read top to bottom: the command line ([`ImportArgs`]) and its validation ([`validate`]); the pure core,
//! which maps what AWS reported ([`AwsLoggingConfiguration`], [`AwsRoom`]) and what the cluster holds
//! ([`ClusterObjects`]) to a [`Plan`] (which resources to import under which object names, which to skip
//! and why); the rendering of a plan as one YAML stream or one file per object; and last the I/O
//! ([`run`]): listing the cluster's objects, listing and reading AWS, writing the output.
//!
//! Rules, each documented in `--help` and the README:
//! - **Skipped** (managed here): a resource whose ARN is some ChatRoom's or ChatLoggingConfiguration's
//!   `status.arn` or `spec.adoptArn` in any namespace, or whose `ivschat.dev/owner-uid` tag is the UID of an
//!   object of this cluster (a create whose answer was lost leaves the ARN out of status, the tag is there).
//! - **Skipped unless `--include-orphaned`**: a resource with an owner-uid tag naming no object of this
//!   cluster. The operator removes its tags when it lets a resource go (deletionPolicy Retain), so such a
//!   tag means the owner is either in another cluster sharing the account (importing would make two
//!   operators fight over one resource) or in a cluster that is gone (importing is then the recovery): only
//!   the user can tell which.
//! - Logging configurations in state DELETING, DELETE_FAILED or CREATE_FAILED are skipped: they are going
//!   away or never existed usefully.
//! - A resource with more user tags than the operator leaves room for ([`MAX_USER_TAGS`]) is skipped: the
//!   schema would refuse its manifest.
//! - **Names**: the AWS name lower-cased, every character outside `[a-z0-9-]` turned into `-`, leading and
//!   trailing `-` dropped, at most 63 characters. An unnamed resource is `room-<id>` or
//!   `logging-configuration-<id>`; when two imported resources of a kind would get the same name, or an
//!   object of that kind already has it in the target namespace, each of them gets `-<id>` appended (the
//!   id lower-cased, the base shortened to fit).
//! - **Fields**: the AWS name, both message limits, the message review handler (with its fallback result)
//!   when it has a URI, the logging configurations in AWS order (by `name` when the configuration is
//!   imported in the same run, else by `arn`), the destination, the tags without `aws:` and `ivschat.dev/`
//!   keys, `spec.region` (always: an object cannot move region, so the manifest must not depend on the
//!   operator's default), `spec.accountRef` with `--account`, and `deletionPolicy` (`--deletion-policy`,
//!   default Retain: deleting an imported manifest should not delete a room that predates it).
//! - With `--account`, a warning (not an error) when that ChatAccount does not select the namespace: the
//!   objects would be Stalled there until the platform team widens its selector.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use regex::Regex;

use super::cli::GlobalArgs;
use super::error::{AwsFailure, AwsFailureKind, PluginError};
use crate::controller::logging_configuration::from_aws_destination;
use crate::crd::{
    AccountReference, ChatLoggingConfiguration, ChatLoggingConfigurationSpec, ChatRoom,
    ChatRoomSpec, DeletionPolicy, DestinationConfiguration, FallbackResult,
    LoggingConfigurationReference, MAX_USER_TAGS, MessageReviewHandler, OWNER_NAME_TAG,
    OWNER_NAMESPACE_TAG, OWNER_UID_TAG, RESERVED_AWS_TAG_PREFIX, RESERVED_OPERATOR_TAG_PREFIX,
    region_of_arn,
};

/// A Kubernetes object name used as a file name or DNS label: at most this many characters.
const NAME_MAX: usize = 63;
/// Logging-configuration states whose resources are not imported.
const SKIPPED_STATES: [&str; 3] = ["DELETING", "DELETE_FAILED", "CREATE_FAILED"];

// -------------------------------------------------------------------------------------------------------------
// Command line

/// `kubectl ivschat import`: the arguments of the subcommand (the account and region are the global
/// `--account` and `--region`, the target namespace the global `-n`).
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Which resources to import.
    #[arg(long, value_enum, default_value_t = ImportKind::All)]
    pub kind: ImportKind,

    /// Only resources whose AWS name starts with this prefix.
    #[arg(long, value_name = "PREFIX", conflicts_with = "name_pattern")]
    pub name_prefix: Option<String>,

    /// Only resources whose AWS name matches this regular expression (unanchored: use ^ and $ for a
    /// whole-name match).
    #[arg(long, value_name = "REGEX")]
    pub name_pattern: Option<String>,

    /// Only resources with this tag (`KEY=VALUE`), or with this tag key whatever its value (`KEY`); repeat
    /// for several, all of which must match.
    #[arg(long = "tag", value_name = "KEY[=VALUE]")]
    pub tags: Vec<String>,

    /// Write one file per object into this directory (created if missing): `chatloggingconfiguration-NAME.yaml`
    /// and `chatroom-NAME.yaml`, so that `kubectl apply -f DIR` creates the logging configurations first.
    /// Existing files of the same name are replaced. Omitted: one YAML stream on stdout.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// The manifests' spec.deletionPolicy: Retain (default) leaves the AWS resource when the object is
    /// deleted, as it was before the import; Delete deletes it with the object.
    #[arg(long, value_enum, default_value_t = ImportDeletionPolicy::Retain)]
    pub deletion_policy: ImportDeletionPolicy,

    /// Also import resources whose ivschat.dev/owner-uid tag names an object this cluster does not have
    /// (managed by another cluster, or left by one that is gone). Omitted: they are skipped and listed.
    #[arg(long)]
    pub include_orphaned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportKind {
    /// Rooms only.
    Rooms,
    /// Logging configurations only.
    LoggingConfigurations,
    /// Both.
    All,
}

impl ImportKind {
    fn rooms(self) -> bool {
        self != ImportKind::LoggingConfigurations
    }

    fn logging_configurations(self) -> bool {
        self != ImportKind::Rooms
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportDeletionPolicy {
    #[value(name = "Retain")]
    Retain,
    #[value(name = "Delete")]
    Delete,
}

/// A valid import command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    pub kind: ImportKind,
    pub name_filter: NameFilter,
    pub tags: Vec<TagMatch>,
    pub output_dir: Option<PathBuf>,
    pub deletion_policy: DeletionPolicy,
    pub include_orphaned: bool,
}

/// Which AWS names are imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameFilter {
    Any,
    Prefix(String),
    /// A regular expression already checked to compile.
    Pattern(String),
}

/// One `--tag`: the key, and the value it must have (`None`: any value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMatch {
    pub key: String,
    pub value: Option<String>,
}

/// Checks the import arguments; each problem found is pushed to `problems`.
pub fn validate(
    global: &GlobalArgs,
    args: &ImportArgs,
    problems: &mut Vec<String>,
) -> ImportRequest {
    if let Some(arn) = &global.arn {
        problems.push(format!(
            "--arn ({arn:?}) does not go with import, which reads every room and logging configuration of the account and region (filter with --name-prefix, --name-pattern or --tag)"
        ));
    }
    let name_filter = match (&args.name_prefix, &args.name_pattern) {
        (Some(prefix), _) => NameFilter::Prefix(prefix.clone()),
        (None, Some(pattern)) => match Regex::new(pattern) {
            Ok(_) => NameFilter::Pattern(pattern.clone()),
            Err(error) => {
                problems.push(format!(
                    "--name-pattern {pattern:?} is not a regular expression: {error}"
                ));
                NameFilter::Any
            }
        },
        (None, None) => NameFilter::Any,
    };
    let mut tags = Vec::new();
    for text in &args.tags {
        let (key, value) = match text.split_once('=') {
            Some((key, value)) => (key, Some(value.to_owned())),
            None => (text.as_str(), None),
        };
        if key.is_empty() {
            problems.push(format!("--tag {text:?} has an empty key"));
        } else {
            tags.push(TagMatch {
                key: key.to_owned(),
                value,
            });
        }
    }
    ImportRequest {
        kind: args.kind,
        name_filter,
        tags,
        output_dir: args.output_dir.clone(),
        deletion_policy: match args.deletion_policy {
            ImportDeletionPolicy::Retain => DeletionPolicy::Retain,
            ImportDeletionPolicy::Delete => DeletionPolicy::Delete,
        },
        include_orphaned: args.include_orphaned,
    }
}

// -------------------------------------------------------------------------------------------------------------
// What AWS and the cluster hold

/// A logging configuration as ListLoggingConfigurations reports it (the summary has every field).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsLoggingConfiguration {
    pub arn: String,
    pub id: String,
    pub name: String,
    pub destination: DestinationConfiguration,
    pub state: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A room as GetRoom reports it (ListRooms lacks the two message limits).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsRoom {
    pub arn: String,
    pub id: String,
    pub name: String,
    pub maximum_message_length: i32,
    pub maximum_message_rate_per_second: i32,
    /// `""`: no message review handler.
    pub message_review_handler_uri: String,
    /// The handler's fallback result as AWS reports it (`None`: not reported, AWS's ALLOW).
    pub fallback_result: Option<String>,
    /// In AWS order, which the operator compares in.
    pub logging_configuration_arns: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// What the cluster's ChatRooms and ChatLoggingConfigurations (every namespace) say about AWS resources.
#[derive(Debug, Clone, Default)]
pub struct ClusterObjects {
    /// `status.arn` and `spec.adoptArn` of every object → `Kind namespace/name`.
    pub by_arn: BTreeMap<String, String>,
    /// UID of every object → `Kind namespace/name`.
    pub by_uid: BTreeMap<String, String>,
    /// Names of the ChatLoggingConfigurations in the target namespace.
    pub logging_configuration_names: BTreeSet<String>,
    /// Names of the ChatRooms in the target namespace.
    pub room_names: BTreeSet<String>,
}

impl ClusterObjects {
    /// Indexes the listed objects; `namespace` is the import's target namespace.
    pub fn index(
        rooms: &[ChatRoom],
        configs: &[ChatLoggingConfiguration],
        namespace: &str,
    ) -> ClusterObjects {
        let mut index = ClusterObjects::default();
        for room in rooms {
            let status_arn = room
                .status
                .as_ref()
                .and_then(|status| status.arn.as_deref());
            index.add(
                "ChatRoom",
                room,
                [status_arn, room.spec.adopt_arn.as_deref()],
            );
            if room.namespace().as_deref() == Some(namespace) {
                index.room_names.insert(room.name_any());
            }
        }
        for config in configs {
            let status_arn = config
                .status
                .as_ref()
                .and_then(|status| status.arn.as_deref());
            index.add(
                "ChatLoggingConfiguration",
                config,
                [status_arn, config.spec.adopt_arn.as_deref()],
            );
            if config.namespace().as_deref() == Some(namespace) {
                index.logging_configuration_names.insert(config.name_any());
            }
        }
        index
    }

    fn add<K: ResourceExt>(&mut self, kind: &str, object: &K, arns: [Option<&str>; 2]) {
        let label = format!(
            "{kind} {}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        );
        for arn in arns.into_iter().flatten() {
            self.by_arn.insert(arn.to_owned(), label.clone());
        }
        if let Some(uid) = object.uid() {
            self.by_uid.insert(uid, label);
        }
    }
}

// -------------------------------------------------------------------------------------------------------------
// The plan (pure)

/// Where and how the manifests place their objects.
#[derive(Debug, Clone)]
pub struct Placement {
    pub namespace: String,
    /// `--account`: the ChatAccount the objects name in spec.accountRef.
    pub account: Option<String>,
    pub deletion_policy: DeletionPolicy,
}

/// Which resources a run imports (compiled from the [`ImportRequest`]).
#[derive(Debug, Clone)]
pub struct Selection {
    pub kind: ImportKind,
    pub name_prefix: Option<String>,
    pub name_pattern: Option<Regex>,
    pub tags: Vec<TagMatch>,
    pub include_orphaned: bool,
}

impl Selection {
    pub fn of(request: &ImportRequest) -> Result<Selection, PluginError> {
        let (name_prefix, name_pattern) = match &request.name_filter {
            NameFilter::Any => (None, None),
            NameFilter::Prefix(prefix) => (Some(prefix.clone()), None),
            NameFilter::Pattern(pattern) => {
                let regex = Regex::new(pattern)
                    .map_err(|error| PluginError::Config(format!("--name-pattern: {error}")))?;
                (None, Some(regex))
            }
        };
        Ok(Selection {
            kind: request.kind,
            name_prefix,
            name_pattern,
            tags: request.tags.clone(),
            include_orphaned: request.include_orphaned,
        })
    }

    /// Whether the name and tag filters select a resource (every filter must).
    pub fn selects(&self, name: &str, tags: &BTreeMap<String, String>) -> bool {
        self.name_prefix
            .as_deref()
            .is_none_or(|prefix| name.starts_with(prefix))
            && self
                .name_pattern
                .as_ref()
                .is_none_or(|pattern| pattern.is_match(name))
            && self.tags.iter().all(|wanted| match &wanted.value {
                Some(value) => tags.get(&wanted.key) == Some(value),
                None => tags.contains_key(&wanted.key),
            })
    }
}

/// A resource left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub arn: String,
    pub reason: String,
}

/// What a run writes: the objects (each kind sorted by name) and what it left out (sorted by ARN).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub logging_configurations: Vec<ChatLoggingConfiguration>,
    pub rooms: Vec<ChatRoom>,
    pub skipped: Vec<Skipped>,
}

/// Why a resource with these tags and ARN must not be imported, if it must not.
pub fn managed_elsewhere(
    arn: &str,
    tags: &BTreeMap<String, String>,
    cluster: &ClusterObjects,
    include_orphaned: bool,
) -> Option<String> {
    if let Some(object) = cluster.by_arn.get(arn) {
        return Some(format!("managed by {object}"));
    }
    let uid = tags.get(OWNER_UID_TAG)?;
    if let Some(object) = cluster.by_uid.get(uid) {
        return Some(format!("managed by {object} (its ownership tag)"));
    }
    if include_orphaned {
        return None;
    }
    let tag = |key: &str| tags.get(key).map_or("?", String::as_str);
    Some(format!(
        "tagged as owned by {}/{} (uid {uid}), which this cluster does not have: another cluster may manage it; import it with --include-orphaned if that owner is gone",
        tag(OWNER_NAMESPACE_TAG),
        tag(OWNER_NAME_TAG)
    ))
}

/// The tags a manifest carries: AWS's without `aws:` keys (reserved by AWS, in any letter case) and
/// without the operator's `ivschat.dev/` keys (it sets those itself).
pub fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(key, _)| {
            !key.to_ascii_lowercase()
                .starts_with(RESERVED_AWS_TAG_PREFIX)
                && !key.starts_with(RESERVED_OPERATOR_TAG_PREFIX)
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// The object name an AWS name maps to before collisions are resolved (see the module docs); `None` when
/// nothing of it is usable (unnamed, or only separators).
pub fn base_name(aws_name: &str) -> Option<String> {
    let mapped: String = aws_name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let shortened: String = mapped.trim_matches('-').chars().take(NAME_MAX).collect();
    let name = shortened.trim_end_matches('-');
    (!name.is_empty()).then(|| name.to_owned())
}

/// `base` with `-<id>` appended, the base shortened so that the whole fits in 63 characters
/// (`NAME_MAX`).
pub fn suffixed_name(base: &str, id: &str) -> String {
    let id = id.to_ascii_lowercase();
    let room_for_base = NAME_MAX.saturating_sub(id.len() + 1);
    let base: String = base.chars().take(room_for_base).collect();
    format!("{}-{id}", base.trim_end_matches('-'))
}

/// Object names for `(aws name, id)` pairs of one kind: the base name where it is unique among them and not
/// `taken` in the namespace, else the base with the id; unnamed ones are `<unnamed>-<id>`.
pub fn object_names(
    resources: &[(&str, &str)],
    unnamed: &str,
    taken: &BTreeSet<String>,
) -> Vec<String> {
    let bases: Vec<Option<String>> = resources.iter().map(|(name, _)| base_name(name)).collect();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for base in bases.iter().flatten() {
        *uses.entry(base).or_default() += 1;
    }
    bases
        .iter()
        .zip(resources)
        .map(|(base, (_, id))| match base {
            Some(base) if uses[base.as_str()] == 1 && !taken.contains(base) => base.clone(),
            Some(base) => suffixed_name(base, id),
            None => suffixed_name(unnamed, id),
        })
        .collect()
}

/// Decides what to import and builds the objects (see the module docs for every rule).
pub fn plan(
    configs: &[AwsLoggingConfiguration],
    rooms: &[AwsRoom],
    cluster: &ClusterObjects,
    selection: &Selection,
    placement: &Placement,
) -> Plan {
    let mut skipped = Vec::new();
    let mut candidate_configs = Vec::new();
    if selection.kind.logging_configurations() {
        for config in configs {
            match config.state.as_deref() {
                Some(state) if SKIPPED_STATES.contains(&state) => {
                    // Reported only when the filters select it, like every skip.
                    if selection.selects(&config.name, &config.tags) {
                        skipped.push(Skipped {
                            arn: config.arn.clone(),
                            reason: format!("in state {state}"),
                        });
                    }
                }
                _ => candidate_configs.push(config),
            }
        }
    }
    let mut keep = |arn: &str, name: &str, tags: &BTreeMap<String, String>| -> bool {
        if !selection.selects(name, tags) {
            return false;
        }
        let reason = managed_elsewhere(arn, tags, cluster, selection.include_orphaned).or_else(|| {
            let count = user_tags(tags).len();
            (count > MAX_USER_TAGS).then(|| format!(
                "has {count} tags; a resource the operator manages can carry at most {MAX_USER_TAGS} besides its ownership tags"
            ))
        });
        match reason {
            Some(reason) => {
                skipped.push(Skipped {
                    arn: arn.to_owned(),
                    reason,
                });
                false
            }
            None => true,
        }
    };
    let chosen_configs: Vec<&AwsLoggingConfiguration> = candidate_configs
        .into_iter()
        .filter(|config| keep(&config.arn, &config.name, &config.tags))
        .collect();
    let chosen_rooms: Vec<&AwsRoom> = rooms
        .iter()
        .filter(|_| selection.kind.rooms())
        .filter(|room| keep(&room.arn, &room.name, &room.tags))
        .collect();

    let config_names = object_names(
        &chosen_configs
            .iter()
            .map(|config| (config.name.as_str(), config.id.as_str()))
            .collect::<Vec<_>>(),
        "logging-configuration",
        &cluster.logging_configuration_names,
    );
    let name_of_config: BTreeMap<&str, &str> = chosen_configs
        .iter()
        .zip(&config_names)
        .map(|(config, name)| (config.arn.as_str(), name.as_str()))
        .collect();
    let room_names = object_names(
        &chosen_rooms
            .iter()
            .map(|room| (room.name.as_str(), room.id.as_str()))
            .collect::<Vec<_>>(),
        "room",
        &cluster.room_names,
    );

    let mut logging_configurations: Vec<ChatLoggingConfiguration> = chosen_configs
        .iter()
        .zip(&config_names)
        .map(|(config, name)| logging_configuration_object(config, name, placement))
        .collect();
    let mut rooms: Vec<ChatRoom> = chosen_rooms
        .iter()
        .zip(&room_names)
        .map(|(room, name)| room_object(room, name, &name_of_config, placement))
        .collect();
    logging_configurations.sort_by_key(ResourceExt::name_any);
    rooms.sort_by_key(ResourceExt::name_any);
    skipped.sort_by(|a, b| a.arn.cmp(&b.arn));
    Plan {
        logging_configurations,
        rooms,
        skipped,
    }
}

/// The ChatLoggingConfiguration adopting `config` as it is.
pub fn logging_configuration_object(
    config: &AwsLoggingConfiguration,
    name: &str,
    placement: &Placement,
) -> ChatLoggingConfiguration {
    let spec = ChatLoggingConfigurationSpec {
        name: Some(config.name.clone()).filter(|name| !name.is_empty()),
        destination_configuration: config.destination.clone(),
        tags: user_tags(&config.tags).into(),
        deletion_policy: placement.deletion_policy,
        adopt_arn: Some(config.arn.clone()),
        account_ref: account_reference(placement),
        region: region_of_arn(&config.arn).map(str::to_owned),
        ..ChatLoggingConfigurationSpec::default()
    };
    let mut object = ChatLoggingConfiguration::new(name, spec);
    object.metadata.namespace = Some(placement.namespace.clone());
    object
}

/// The ChatRoom adopting `room` as it is; `name_of_config` maps the ARNs of the logging configurations
/// imported in the same run to their object names.
pub fn room_object(
    room: &AwsRoom,
    name: &str,
    name_of_config: &BTreeMap<&str, &str>,
    placement: &Placement,
) -> ChatRoom {
    // Without a URI the fallback result means nothing (the operator compares it as ALLOW): no handler.
    let message_review_handler =
        (!room.message_review_handler_uri.is_empty()).then(|| MessageReviewHandler {
            uri: Some(room.message_review_handler_uri.clone()),
            fallback_result: Some(match room.fallback_result.as_deref() {
                Some("DENY") => FallbackResult::Deny,
                _ => FallbackResult::Allow,
            }),
        });
    let logging_configurations = room
        .logging_configuration_arns
        .iter()
        .map(|arn| match name_of_config.get(arn.as_str()) {
            Some(name) => LoggingConfigurationReference {
                name: Some((*name).to_owned()),
                arn: None,
            },
            None => LoggingConfigurationReference {
                name: None,
                arn: Some(arn.clone()),
            },
        })
        .collect();
    let spec = ChatRoomSpec {
        name: Some(room.name.clone()).filter(|name| !name.is_empty()),
        maximum_message_length: Some(room.maximum_message_length),
        maximum_message_rate_per_second: Some(room.maximum_message_rate_per_second),
        message_review_handler,
        logging_configurations,
        tags: user_tags(&room.tags).into(),
        deletion_policy: placement.deletion_policy,
        adopt_arn: Some(room.arn.clone()),
        account_ref: account_reference(placement),
        region: region_of_arn(&room.arn).map(str::to_owned),
        ..ChatRoomSpec::default()
    };
    let mut object = ChatRoom::new(name, spec);
    object.metadata.namespace = Some(placement.namespace.clone());
    object
}

fn account_reference(placement: &Placement) -> Option<AccountReference> {
    placement
        .account
        .as_ref()
        .map(|name| AccountReference { name: name.clone() })
}

// -------------------------------------------------------------------------------------------------------------
// Rendering (pure)

/// One object as a YAML document, preceded by a comment naming the AWS resource it adopts. The fields
/// keep the order of the Rust types (serde_yaml's mapping is ordered), so a manifest reads like the CRD.
fn document<K: serde::Serialize>(object: &K, arn: &str) -> Result<String, PluginError> {
    let value = serde_yaml::to_value(object)
        .map_err(|error| PluginError::Output(format!("rendering {arn}: {error}")))?;
    let mut yaml = format!("# Imported by kubectl ivschat import from {arn}\n");
    write_yaml(&value, 0, &mut yaml);
    Ok(yaml)
}

/// Writes `value` as block YAML at `indent` spaces. Written here rather than by serde_yaml's serializer
/// because kubectl and most GitOps tools read YAML 1.1, where a plain `yes`, `off` or `y` is a boolean:
/// serde_yaml (YAML 1.2) leaves such strings unquoted, and a tag value `yes` would reach the API server as
/// `true`. Every string that is not plainly a word ([`plain_scalar`]) is written as a JSON string, which
/// YAML reads as the same double-quoted string.
fn write_yaml(value: &serde_yaml::Value, indent: usize, out: &mut String) {
    use serde_yaml::Value;
    let pad = " ".repeat(indent);
    match value {
        Value::Mapping(map) => {
            for (key, item) in map {
                out.push_str(&format!("{pad}{}:", leaf_text(key)));
                write_nested(item, indent, out);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                match item {
                    // `- ` then the mapping's first key on the same line, the rest aligned under it.
                    Value::Mapping(map) if !map.is_empty() => {
                        let mut nested = String::new();
                        write_yaml(item, indent + 2, &mut nested);
                        out.push_str(&format!("{pad}- {}", &nested[indent + 2..]));
                    }
                    _ => {
                        out.push_str(&format!("{pad}-"));
                        write_nested(item, indent, out);
                    }
                }
            }
        }
        Value::Tagged(tagged) => write_yaml(&tagged.value, indent, out),
        scalar => out.push_str(&format!("{pad}{}\n", leaf_text(scalar))),
    }
}

/// The rest of a `key:` or `-` line: a scalar or empty collection on the line, else the block below it.
fn write_nested(value: &serde_yaml::Value, indent: usize, out: &mut String) {
    use serde_yaml::Value;
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            out.push('\n');
            write_yaml(value, indent + 2, out);
        }
        Value::Sequence(items) if !items.is_empty() => {
            out.push('\n');
            write_yaml(value, indent + 2, out);
        }
        leaf => out.push_str(&format!(" {}\n", leaf_text(leaf))),
    }
}

/// A scalar (or empty collection) as it appears after `key:` or `- `.
fn leaf_text(value: &serde_yaml::Value) -> String {
    use serde_yaml::Value;
    match value {
        Value::String(text) => scalar_text(text),
        Value::Mapping(_) => "{}".to_owned(),
        Value::Sequence(_) => "[]".to_owned(),
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Tagged(tagged) => leaf_text(&tagged.value),
    }
}

/// A string as a YAML scalar: plain when [`plain_scalar`], else JSON-quoted.
fn scalar_text(text: &str) -> String {
    if plain_scalar(text) {
        text.to_owned()
    } else {
        serde_json::Value::String(text.to_owned()).to_string()
    }
}

/// Whether `text` reads back as the same string in YAML 1.1 and 1.2 when written plain: a letter, then
/// letters, digits, `-`, `_`, `.` and `/`, and none of the words YAML 1.1 reads as booleans or null.
pub fn plain_scalar(text: &str) -> bool {
    const SPECIAL: [&str; 12] = [
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "nil", "nan", "inf",
    ];
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !SPECIAL.contains(&text.to_ascii_lowercase().as_str())
}

/// The plan's objects as `(file name, document)`, logging configurations first, each kind by name.
pub fn documents(plan: &Plan) -> Result<Vec<(String, String)>, PluginError> {
    let mut documents = Vec::new();
    for config in &plan.logging_configurations {
        let arn = config.spec.adopt_arn.as_deref().unwrap_or_default();
        documents.push((
            format!("chatloggingconfiguration-{}.yaml", config.name_any()),
            document(config, arn)?,
        ));
    }
    for room in &plan.rooms {
        let arn = room.spec.adopt_arn.as_deref().unwrap_or_default();
        documents.push((
            format!("chatroom-{}.yaml", room.name_any()),
            document(room, arn)?,
        ));
    }
    Ok(documents)
}

/// The plan as one multi-document YAML stream (empty when nothing is imported).
pub fn stream(plan: &Plan) -> Result<String, PluginError> {
    Ok(documents(plan)?
        .into_iter()
        .map(|(_, document)| format!("---\n{document}"))
        .collect())
}

/// What a run says on stderr: the counts and every resource skipped with its reason.
pub fn summary(plan: &Plan) -> String {
    let mut text = format!(
        "imported {} logging configuration(s) and {} room(s)",
        plan.logging_configurations.len(),
        plan.rooms.len()
    );
    if !plan.skipped.is_empty() {
        text.push_str(&format!("; skipped {}:", plan.skipped.len()));
        for skipped in &plan.skipped {
            text.push_str(&format!("\n  {}: {}", skipped.arn, skipped.reason));
        }
    }
    text.push('\n');
    text
}

// -------------------------------------------------------------------------------------------------------------
// I/O

/// Runs the import: lists the cluster's objects and the account's resources, plans, writes the manifests
/// (stdout, or files whose paths go to stdout) and the summary (stderr). Returns what goes to stdout.
pub async fn run(global: &GlobalArgs, request: &ImportRequest) -> Result<String, PluginError> {
    let selection = Selection::of(request)?;
    let kube = super::KubeAccess::connect(global).await?;
    let account = match &global.account {
        Some(name) => Some(kube.account(name, None).await?),
        None => None,
    };
    if let (Some(name), Some(account)) = (&global.account, &account) {
        let labels = namespace_labels(&kube).await;
        if let Some(warning) = account_warning(name, &account.spec, &kube.namespace, &labels) {
            eprintln!("warning: {warning}");
        }
    }
    let cluster = cluster_objects(&kube).await?;
    let inputs = super::target::Inputs {
        region_flag: global.region.as_deref(),
        endpoint_flag: global.aws_endpoint_url.as_deref(),
        account: global
            .account
            .as_deref()
            .zip(account.as_ref().map(|account| &account.spec)),
        ..super::target::Inputs::default()
    };
    let aws = super::aws_client(&super::target::choose(&inputs)).await?;
    let configs = if selection.kind.logging_configurations() {
        list_logging_configurations(&aws).await?
    } else {
        Vec::new()
    };
    // With `--kind rooms` no configuration is imported, so every reference stays an ARN: no listing needed.
    let rooms = if selection.kind.rooms() {
        read_rooms(&aws, &selection, &cluster).await?
    } else {
        Vec::new()
    };
    let placement = Placement {
        namespace: kube.namespace.clone(),
        account: global.account.clone(),
        deletion_policy: request.deletion_policy,
    };
    let plan = plan(&configs, &rooms, &cluster, &selection, &placement);
    eprint!("{}", summary(&plan));
    match &request.output_dir {
        None => stream(&plan),
        Some(dir) => write_files(dir, &documents(&plan)?),
    }
}

/// The target namespace's labels, as a ChatAccount's selector sees them. A namespace not created yet will
/// carry its name label; one the user may not read is taken as that too (the warning is advice only).
async fn namespace_labels(kube: &super::KubeAccess) -> BTreeMap<String, String> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> =
        Api::all(kube.accounts.clone().into_client());
    let name_label = || {
        BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            kube.namespace.clone(),
        )])
    };
    match namespaces.get_opt(&kube.namespace).await {
        Ok(Some(namespace)) => namespace.metadata.labels.unwrap_or_else(name_label),
        _ => name_label(),
    }
}

/// Why the manifests naming `account` will not work in `namespace`, if they will not: a ChatAccount
/// serves only the namespaces its selector selects (none without one), and the operator leaves the others'
/// objects Stalled. Not an error: the platform team may widen the selector before the manifests are applied.
pub fn account_warning(
    account: &str,
    spec: &crate::crd::ChatAccountSpec,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    let selected = spec.namespace_selector.as_ref().is_some_and(|selector| {
        crate::controller::accounts::placement::selector_matches(selector, labels)
    });
    (!selected).then(|| format!(
        "ChatAccount {account} does not select namespace {namespace} (spec.namespaceSelector): the imported objects will be Stalled (AccountNotPermitted) there until it does"
    ))
}

/// Every ChatRoom and ChatLoggingConfiguration of the cluster, indexed; a refusal says which permission
/// the check needs, since importing without it could hand one AWS resource to two objects.
async fn cluster_objects(kube: &super::KubeAccess) -> Result<ClusterObjects, PluginError> {
    let client = kube.accounts.clone().into_client();
    let forbidden = |what: &str, error: kube::Error| match error {
        kube::Error::Api(status) if status.code == 403 => PluginError::Kubernetes(format!(
            "listing {what} in all namespaces: {}: import skips the AWS resources that objects of this cluster already manage, so it needs list on chatrooms.ivschat.dev and chatloggingconfigurations.ivschat.dev cluster-wide (a ClusterRole); without it, it cannot tell which resources are free",
            status.message
        )),
        error => super::kube_error(&error, &format!("listing {what} in all namespaces")),
    };
    let rooms = Api::<ChatRoom>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|error| forbidden("ChatRooms", error))?
        .items;
    let configs = Api::<ChatLoggingConfiguration>::all(client)
        .list(&ListParams::default())
        .await
        .map_err(|error| forbidden("ChatLoggingConfigurations", error))?
        .items;
    Ok(ClusterObjects::index(&rooms, &configs, &kube.namespace))
}

/// Every logging configuration of the account and region (ListLoggingConfigurations, 50 a page).
async fn list_logging_configurations(
    aws: &super::Access,
) -> Result<Vec<AwsLoggingConfiguration>, PluginError> {
    let mut found = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = aws
            .client
            .list_logging_configurations()
            .max_results(50)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|error| {
                read_error(
                    aws,
                    "ListLoggingConfigurations",
                    "the account's logging configurations",
                    &error,
                )
            })?;
        found.extend(
            page.logging_configurations()
                .iter()
                .map(|summary| AwsLoggingConfiguration {
                    arn: summary.arn().unwrap_or_default().to_owned(),
                    id: summary.id().unwrap_or_default().to_owned(),
                    name: summary.name().unwrap_or_default().to_owned(),
                    destination: from_aws_destination(summary.destination_configuration()),
                    state: summary.state().map(|state| state.as_str().to_owned()),
                    tags: crate::controller::aws::sdk_tags(summary.tags()),
                }),
        );
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => return Ok(found),
        }
    }
}

/// The rooms the selection could import, each read with GetRoom for its message limits. Rooms the filters
/// leave out, or that the cluster manages, are not read: their GetRoom would be a wasted call.
async fn read_rooms(
    aws: &super::Access,
    selection: &Selection,
    cluster: &ClusterObjects,
) -> Result<Vec<AwsRoom>, PluginError> {
    let mut summaries = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = aws
            .client
            .list_rooms()
            .max_results(50)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|error| read_error(aws, "ListRooms", "the account's rooms", &error))?;
        summaries.extend(page.rooms().iter().cloned());
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    let mut rooms = Vec::new();
    for summary in summaries {
        let arn = summary.arn().unwrap_or_default();
        let tags = crate::controller::aws::sdk_tags(summary.tags());
        let name = summary.name().unwrap_or_default();
        let skipped = managed_elsewhere(arn, &tags, cluster, selection.include_orphaned).is_some();
        if !selection.selects(name, &tags) || skipped {
            // Kept with what the summary says, so that the plan reports it like any other; a room that
            // is not imported needs no limits.
            rooms.push(room_from_summary(&summary, tags));
            continue;
        }
        match aws.client.get_room().identifier(arn).send().await {
            Ok(room) => rooms.push(AwsRoom {
                arn: room.arn().unwrap_or(arn).to_owned(),
                id: room.id().unwrap_or_default().to_owned(),
                name: room.name().unwrap_or_default().to_owned(),
                maximum_message_length: room
                    .maximum_message_length()
                    .unwrap_or_else(|| ChatRoomSpec::default().effective_maximum_message_length()),
                maximum_message_rate_per_second: room
                    .maximum_message_rate_per_second()
                    .unwrap_or_else(|| {
                        ChatRoomSpec::default().effective_maximum_message_rate_per_second()
                    }),
                message_review_handler_uri: room
                    .message_review_handler()
                    .and_then(|handler| handler.uri())
                    .unwrap_or_default()
                    .to_owned(),
                fallback_result: room
                    .message_review_handler()
                    .and_then(|handler| handler.fallback_result())
                    .map(|result| result.as_str().to_owned()),
                logging_configuration_arns: room.logging_configuration_identifiers().to_vec(),
                tags: crate::controller::aws::sdk_tags(room.tags()),
            }),
            // Deleted between the listing and the read: nothing to import.
            Err(error)
                if aws_sdk_ivschat::error::ProvideErrorMetadata::code(&error)
                    == Some("ResourceNotFoundException") => {}
            Err(error) => return Err(read_error(aws, "GetRoom", arn, &error)),
        }
    }
    Ok(rooms)
}

/// An AWS error of one of the import's reads. Access denied names the three actions the import needs: the
/// plugin's general sentence points at the data-plane policy, which has none of the list actions.
fn read_error<E>(
    aws: &super::Access,
    operation: &'static str,
    subject: &str,
    error: &aws_sdk_ivschat::error::SdkError<E, aws_sdk_ivschat::config::http::HttpResponse>,
) -> PluginError
where
    E: aws_sdk_ivschat::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = AwsFailure::from_sdk(operation, subject, error).signed_as(aws.role.clone());
    match &failure.kind {
        AwsFailureKind::Service {
            code: Some(code),
            message,
            ..
        } if code == "AccessDeniedException" => {
            let whose = aws.role.as_ref().map_or_else(
                || "your own AWS identity".to_owned(),
                |role| {
                    format!(
                        "the role {} of ChatAccount {}, assumed with your credentials",
                        role.role_arn, role.account
                    )
                },
            );
            PluginError::Config(format!(
                "access denied to ivschat:{operation} on {subject} (AWS said: {}): import reads with ivschat:ListRooms, ivschat:GetRoom and ivschat:ListLoggingConfigurations, which {whose} must be allowed in this account and region",
                message.as_deref().unwrap_or("no message")
            ))
        }
        _ => PluginError::Aws(failure),
    }
}

/// A room from its ListRooms summary (the message limits as the AWS defaults: the summary lacks them).
fn room_from_summary(
    summary: &aws_sdk_ivschat::types::RoomSummary,
    tags: BTreeMap<String, String>,
) -> AwsRoom {
    let defaults = ChatRoomSpec::default();
    AwsRoom {
        arn: summary.arn().unwrap_or_default().to_owned(),
        id: summary.id().unwrap_or_default().to_owned(),
        name: summary.name().unwrap_or_default().to_owned(),
        maximum_message_length: defaults.effective_maximum_message_length(),
        maximum_message_rate_per_second: defaults.effective_maximum_message_rate_per_second(),
        message_review_handler_uri: summary
            .message_review_handler()
            .and_then(|handler| handler.uri())
            .unwrap_or_default()
            .to_owned(),
        fallback_result: summary
            .message_review_handler()
            .and_then(|handler| handler.fallback_result())
            .map(|result| result.as_str().to_owned()),
        logging_configuration_arns: summary.logging_configuration_identifiers().to_vec(),
        tags,
    }
}

/// Writes every document into `dir` (created if missing); returns the paths written, one a line.
fn write_files(dir: &Path, documents: &[(String, String)]) -> Result<String, PluginError> {
    std::fs::create_dir_all(dir).map_err(|error| {
        PluginError::Output(format!("creating the directory {}: {error}", dir.display()))
    })?;
    let mut written = String::new();
    for (file, document) in documents {
        let path = dir.join(file);
        std::fs::write(&path, document)
            .map_err(|error| PluginError::Output(format!("writing {}: {error}", path.display())))?;
        written.push_str(&format!("{}\n", path.display()));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::logging_configuration::LoggingConfigurationFields;
    use crate::controller::plan::changed_fields;
    use crate::controller::room::{RoomFields, fields_from_spec};
    use crate::crd::{ChatRoomStatus, S3Destination};
    use clap::Parser;

    const REGION: &str = "eu-west-1";
    const ACCOUNT: &str = "111122223333";

    fn room_arn(id: &str) -> String {
        format!("arn:aws:ivschat:{REGION}:{ACCOUNT}:room/{id}")
    }

    fn config_arn(id: &str) -> String {
        format!("arn:aws:ivschat:{REGION}:{ACCOUNT}:logging-configuration/{id}")
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn aws_room(id: &str, name: &str) -> AwsRoom {
        AwsRoom {
            arn: room_arn(id),
            id: id.to_owned(),
            name: name.to_owned(),
            maximum_message_length: 500,
            maximum_message_rate_per_second: 10,
            message_review_handler_uri: String::new(),
            fallback_result: None,
            logging_configuration_arns: vec![],
            tags: BTreeMap::new(),
        }
    }

    fn aws_config(id: &str, name: &str) -> AwsLoggingConfiguration {
        AwsLoggingConfiguration {
            arn: config_arn(id),
            id: id.to_owned(),
            name: name.to_owned(),
            destination: DestinationConfiguration {
                s3: Some(S3Destination {
                    bucket_name: "chat-logs".into(),
                }),
                ..DestinationConfiguration::default()
            },
            state: Some("ACTIVE".into()),
            tags: BTreeMap::new(),
        }
    }

    fn everything() -> Selection {
        Selection {
            kind: ImportKind::All,
            name_prefix: None,
            name_pattern: None,
            tags: vec![],
            include_orphaned: false,
        }
    }

    fn placement() -> Placement {
        Placement {
            namespace: "chat".into(),
            account: None,
            deletion_policy: DeletionPolicy::Retain,
        }
    }

    fn names<K: ResourceExt>(objects: &[K]) -> Vec<String> {
        objects.iter().map(ResourceExt::name_any).collect()
    }

    #[test]
    fn aws_names_become_dns_labels() {
        assert_eq!(
            base_name("Support_Chat-EU").as_deref(),
            Some("support-chat-eu")
        );
        assert_eq!(base_name("__lobby__").as_deref(), Some("lobby"));
        assert_eq!(base_name("").as_deref(), None);
        assert_eq!(base_name("___").as_deref(), None);
        let long = "a".repeat(62) + "_b" + &"c".repeat(60);
        let name = base_name(&long).expect("a name");
        assert_eq!(name, "a".repeat(62), "cut at 63, without the trailing '-'");
        assert!(name.len() <= NAME_MAX);
        let suffixed = suffixed_name(&"x".repeat(80), "AbCdEf123456");
        assert_eq!(suffixed.len(), NAME_MAX);
        assert!(suffixed.ends_with("-abcdef123456"), "{suffixed}");
    }

    #[test]
    fn collisions_unnamed_and_taken_names_get_the_id() {
        let taken = BTreeSet::from(["taken".to_owned()]);
        let named = object_names(
            &[
                ("Lobby", "AAAAAAAAAAAA"),
                ("lobby", "BBBBBBBBBBBB"),
                ("", "CCCCCCCCCCCC"),
                ("solo", "DDDDDDDDDDDD"),
                ("taken", "EEEEEEEEEEEE"),
            ],
            "room",
            &taken,
        );
        assert_eq!(
            named,
            [
                "lobby-aaaaaaaaaaaa",
                "lobby-bbbbbbbbbbbb",
                "room-cccccccccccc",
                "solo",
                "taken-eeeeeeeeeeee",
            ]
        );
    }

    #[test]
    fn aws_and_operator_tags_are_dropped() {
        let all = tags(&[
            ("team", "chat"),
            ("aws:cloudformation:stack-name", "s"),
            ("AWS:Other", "x"),
            (OWNER_UID_TAG, "u"),
            ("ivschat.dev/name", "n"),
        ]);
        assert_eq!(user_tags(&all), tags(&[("team", "chat")]));
    }

    #[test]
    fn resources_the_cluster_manages_are_skipped_by_arn_or_owner_tag() {
        let mut adopted = ChatRoom::new("adopted", ChatRoomSpec::default());
        adopted.metadata.namespace = Some("other".into());
        adopted.spec.adopt_arn = Some(room_arn("ADOPTED00001"));
        let mut created = ChatRoom::new("created", ChatRoomSpec::default());
        created.metadata.namespace = Some("chat".into());
        created.metadata.uid = Some("uid-created".into());
        created.status = Some(ChatRoomStatus {
            arn: Some(room_arn("CREATED00001")),
            ..ChatRoomStatus::default()
        });
        let cluster = ClusterObjects::index(&[adopted, created], &[], "chat");
        assert_eq!(cluster.room_names, BTreeSet::from(["created".to_owned()]));

        let untagged = BTreeMap::new();
        assert_eq!(
            managed_elsewhere(&room_arn("ADOPTED00001"), &untagged, &cluster, false).as_deref(),
            Some("managed by ChatRoom other/adopted")
        );
        assert!(
            managed_elsewhere(&room_arn("CREATED00001"), &untagged, &cluster, true).is_some(),
            "--include-orphaned never takes a managed one"
        );
        // A create whose answer was lost: the ARN is not in status, the ownership tag is on the room.
        let owned = tags(&[(OWNER_UID_TAG, "uid-created")]);
        assert_eq!(
            managed_elsewhere(&room_arn("LOST00000001"), &owned, &cluster, true).as_deref(),
            Some("managed by ChatRoom chat/created (its ownership tag)")
        );
        let orphan = tags(&[
            (OWNER_UID_TAG, "uid-gone"),
            (OWNER_NAMESPACE_TAG, "old"),
            (OWNER_NAME_TAG, "lobby"),
        ]);
        let reason = managed_elsewhere(&room_arn("ORPHAN000001"), &orphan, &cluster, false)
            .expect("skipped");
        assert!(reason.contains("old/lobby (uid uid-gone)"), "{reason}");
        assert!(reason.contains("--include-orphaned"), "{reason}");
        assert_eq!(
            managed_elsewhere(&room_arn("ORPHAN000001"), &orphan, &cluster, true),
            None
        );
        assert_eq!(
            managed_elsewhere(&room_arn("FREE00000001"), &untagged, &cluster, false),
            None
        );
    }

    #[test]
    fn filters_select_by_name_prefix_pattern_and_every_tag() {
        let tagged = tags(&[("team", "chat"), ("env", "prod")]);
        let mut selection = everything();
        assert!(selection.selects("anything", &BTreeMap::new()));
        selection.name_prefix = Some("support-".into());
        assert!(selection.selects("support-eu", &tagged));
        assert!(!selection.selects("lobby", &tagged));
        selection.name_prefix = None;
        selection.name_pattern = Regex::new("^(eu|us)-[0-9]+$").ok();
        assert!(selection.selects("eu-1", &tagged));
        assert!(!selection.selects("eu-1x", &tagged));
        selection.name_pattern = None;
        selection.tags = vec![
            TagMatch {
                key: "team".into(),
                value: Some("chat".into()),
            },
            TagMatch {
                key: "env".into(),
                value: None,
            },
        ];
        assert!(selection.selects("x", &tagged));
        assert!(
            !selection.selects("x", &tags(&[("team", "chat")])),
            "env is missing"
        );
        assert!(!selection.selects("x", &tags(&[("team", "video"), ("env", "p")])));
    }

    #[test]
    fn a_room_maps_to_a_spec_the_operator_sees_no_difference_in() {
        let mut room = aws_room("ROOM00000001", "Support_EU");
        room.maximum_message_length = 256;
        room.maximum_message_rate_per_second = 5;
        room.message_review_handler_uri =
            "arn:aws:lambda:eu-west-1:111122223333:function:review".into();
        room.fallback_result = Some("DENY".into());
        room.logging_configuration_arns =
            vec![config_arn("IMPORTED0001"), config_arn("EXTERNAL0001")];
        room.tags = tags(&[("team", "chat"), ("aws:x", "y")]);
        let imported = BTreeMap::from([(config_arn("IMPORTED0001"), "logs".to_owned())]);
        let name_of_config = imported
            .iter()
            .map(|(arn, name)| (arn.as_str(), name.as_str()))
            .collect();
        let placement = Placement {
            account: Some("prod".into()),
            ..placement()
        };
        let object = room_object(&room, "support-eu", &name_of_config, &placement);
        assert_eq!(object.metadata.namespace.as_deref(), Some("chat"));
        let spec = &object.spec;
        assert_eq!(spec.adopt_arn.as_deref(), Some(room.arn.as_str()));
        assert_eq!(spec.region.as_deref(), Some(REGION));
        assert_eq!(
            spec.account_ref.as_ref().map(|a| a.name.as_str()),
            Some("prod")
        );
        assert_eq!(spec.deletion_policy, DeletionPolicy::Retain);
        assert_eq!(spec.tags.to_map(), tags(&[("team", "chat")]));
        assert_eq!(spec.logging_configurations[0].name.as_deref(), Some("logs"));
        assert_eq!(
            spec.logging_configurations[1].arn.as_deref(),
            Some(config_arn("EXTERNAL0001").as_str())
        );
        // The operator resolves the name to the configuration's ARN: the desired fields are AWS's.
        let desired = fields_from_spec(spec, room.logging_configuration_arns.clone());
        let observed = RoomFields {
            name: "Support_EU".into(),
            maximum_message_length: 256,
            maximum_message_rate_per_second: 5,
            message_review_handler_uri: room.message_review_handler_uri.clone(),
            fallback_result: "DENY".into(),
            logging_configuration_arns: room.logging_configuration_arns.clone(),
        };
        assert!(
            changed_fields(&desired, &observed).is_empty(),
            "{desired:?}"
        );

        // Unnamed, no handler (a stray fallback is meaningless), defaults reported: nothing omitted differs.
        let bare = aws_room("ROOM00000002", "");
        let object = room_object(&bare, "room-room00000002", &BTreeMap::new(), &placement);
        assert_eq!(object.spec.name, None);
        assert_eq!(object.spec.message_review_handler, None);
        assert_eq!(object.spec.maximum_message_length, Some(500));
        let desired = fields_from_spec(&object.spec, vec![]);
        assert_eq!(desired.name, "");
        assert_eq!(desired.fallback_result, "ALLOW");
    }

    #[test]
    fn a_logging_configuration_maps_to_its_destination_name_and_tags() {
        let mut config = aws_config("LOGS00000001", "Chat_Logs");
        config.tags = tags(&[("cost", "7"), (OWNER_NAME_TAG, "x")]);
        let object = logging_configuration_object(&config, "chat-logs", &placement());
        assert_eq!(object.spec.name.as_deref(), Some("Chat_Logs"));
        assert_eq!(object.spec.destination_configuration, config.destination);
        assert_eq!(object.spec.tags.to_map(), tags(&[("cost", "7")]));
        assert_eq!(object.spec.adopt_arn.as_deref(), Some(config.arn.as_str()));
        assert_eq!(object.spec.region.as_deref(), Some(REGION));
        assert_eq!(object.spec.account_ref, None);
        let desired = LoggingConfigurationFields {
            name: object.spec.name.clone().unwrap_or_default(),
            destination_configuration: object.spec.destination_configuration.clone(),
        };
        assert_eq!(desired.name, config.name);
        let unnamed =
            logging_configuration_object(&aws_config("LOGS00000002", ""), "n", &placement());
        assert_eq!(unnamed.spec.name, None);
    }

    #[test]
    fn the_plan_imports_free_resources_in_order_and_reports_the_rest() {
        let mut managed = ChatLoggingConfiguration::new(
            "existing",
            ChatLoggingConfigurationSpec {
                adopt_arn: Some(config_arn("MANAGED00001")),
                ..ChatLoggingConfigurationSpec::default()
            },
        );
        managed.metadata.namespace = Some("chat".into());
        let cluster = ClusterObjects::index(&[], &[managed], "chat");
        let mut deleting = aws_config("DELETING0001", "going");
        deleting.state = Some("DELETING".into());
        let configs = [
            aws_config("ZLOGS0000001", "z-logs"),
            aws_config("MANAGED00001", "existing"),
            aws_config("ALOGS0000001", "existing"),
            deleting,
        ];
        let mut referencing = aws_room("ROOM00000001", "b-room");
        referencing.logging_configuration_arns =
            vec![config_arn("ALOGS0000001"), config_arn("MANAGED00001")];
        let mut crowded = aws_room("CROWDED00001", "crowded");
        crowded.tags = (0..=MAX_USER_TAGS)
            .map(|n| (format!("k{n}"), "v".to_owned()))
            .collect();
        let rooms = [referencing, aws_room("ROOM00000002", "a-room"), crowded];

        let plan = plan(&configs, &rooms, &cluster, &everything(), &placement());
        // "existing" is the name of an object in the namespace: the import gets the id.
        assert_eq!(
            names(&plan.logging_configurations),
            ["existing-alogs0000001", "z-logs"]
        );
        assert_eq!(names(&plan.rooms), ["a-room", "b-room"]);
        let references = &plan.rooms[1].spec.logging_configurations;
        assert_eq!(references[0].name.as_deref(), Some("existing-alogs0000001"));
        assert_eq!(
            references[1].arn.as_deref(),
            Some(config_arn("MANAGED00001").as_str()),
            "a configuration managed elsewhere is named by ARN"
        );
        let skipped: Vec<(&str, &str)> = plan
            .skipped
            .iter()
            .map(|s| {
                (
                    s.arn.rsplit('/').next().unwrap_or_default(),
                    s.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert_eq!(skipped[0].0, "DELETING0001");
        assert_eq!(skipped[0].1, "in state DELETING");
        assert_eq!(skipped[1].0, "MANAGED00001");
        assert!(
            skipped[1]
                .1
                .contains("ChatLoggingConfiguration chat/existing")
        );
        assert_eq!(skipped[2].0, "CROWDED00001");
        assert!(skipped[2].1.contains("48 tags"), "{}", skipped[2].1);

        // --kind rooms: no configuration is imported, so every reference is an ARN.
        let rooms_only = Selection {
            kind: ImportKind::Rooms,
            ..everything()
        };
        let plan = super::plan(&configs, &rooms, &cluster, &rooms_only, &placement());
        assert!(plan.logging_configurations.is_empty());
        assert!(
            plan.rooms[1]
                .spec
                .logging_configurations
                .iter()
                .all(|reference| reference.arn.is_some())
        );
        // A filter that leaves a resource out does not report it.
        let prefixed = Selection {
            name_prefix: Some("a-".into()),
            ..everything()
        };
        let plan = super::plan(&configs, &rooms, &cluster, &prefixed, &placement());
        assert_eq!(names(&plan.rooms), ["a-room"]);
        assert!(plan.logging_configurations.is_empty());
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    }

    #[test]
    fn the_stream_is_one_document_per_object_configurations_first() {
        let plan = plan(
            &[aws_config("LOGS00000001", "logs")],
            &[aws_room("ROOM00000001", "lobby")],
            &ClusterObjects::default(),
            &everything(),
            &placement(),
        );
        let files = documents(&plan).expect("rendered");
        assert_eq!(
            files
                .iter()
                .map(|(file, _)| file.as_str())
                .collect::<Vec<_>>(),
            ["chatloggingconfiguration-logs.yaml", "chatroom-lobby.yaml"]
        );
        let text = stream(&plan).expect("rendered");
        assert_eq!(text.matches("---\n").count(), 2);
        let documents: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|document| serde::Deserialize::deserialize(document).expect("YAML"))
            .collect();
        assert_eq!(documents[0]["kind"], "ChatLoggingConfiguration");
        assert_eq!(documents[0]["apiVersion"], "ivschat.dev/v1alpha1");
        assert_eq!(documents[1]["kind"], "ChatRoom");
        assert_eq!(documents[1]["metadata"]["namespace"], "chat");
        assert_eq!(documents[1]["spec"]["adoptArn"], room_arn("ROOM00000001"));
        assert_eq!(documents[1]["spec"]["deletionPolicy"], "Retain");
        assert!(documents[1].get("status").is_none(), "{}", documents[1]);
        assert!(
            text.starts_with("---\n# Imported by kubectl ivschat import from arn:aws:ivschat:")
        );
        assert_eq!(stream(&Plan::default()).expect("rendered"), "");
    }

    #[test]
    fn yaml_quotes_what_yaml_1_1_would_read_as_another_type() {
        for word in [
            "yes", "No", "on", "OFF", "y", "true", "null", "0123", "1e3", "", "a: b", "#x", "- x",
        ] {
            assert!(!plain_scalar(word), "{word:?} must be quoted");
        }
        for word in [
            "chat",
            "Support_EU",
            "ivschat.dev/v1alpha1",
            "team-a",
            "yesterday",
        ] {
            assert!(plain_scalar(word), "{word:?} can stay plain");
        }
        let mut room = aws_room("ROOM00000001", "lobby");
        room.tags = tags(&[
            ("selected", "yes"),
            ("no", "1"),
            ("note", "a: b # c"),
            ("empty", ""),
        ]);
        room.logging_configuration_arns =
            vec![config_arn("LOGS00000001"), config_arn("LOGS00000002")];
        let object = room_object(&room, "lobby", &BTreeMap::new(), &placement());
        let text = document(&object, &room.arn).expect("rendered");
        assert!(text.contains("    selected: \"yes\"\n"), "{text}");
        assert!(text.contains("    \"no\": \"1\"\n"), "{text}");
        assert!(
            text.contains("  loggingConfigurations:\n    - arn: \"arn:aws:ivschat:"),
            "{text}"
        );
        // Whatever YAML reader: the document is the object.
        let read: serde_json::Value = serde_yaml::from_str(&text).expect("YAML");
        assert_eq!(read, serde_json::to_value(&object).expect("JSON"), "{text}");
    }

    #[test]
    fn an_account_that_does_not_select_the_namespace_is_warned_about() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
        let labels = tags(&[("kubernetes.io/metadata.name", "chat"), ("tier", "prod")]);
        let selecting = |selector: Option<LabelSelector>| crate::crd::ChatAccountSpec {
            namespace_selector: selector,
            ..crate::crd::ChatAccountSpec::default()
        };
        let by_label = LabelSelector {
            match_labels: Some(tags(&[("tier", "prod")])),
            ..LabelSelector::default()
        };
        assert_eq!(
            account_warning("prod", &selecting(Some(by_label)), "chat", &labels),
            None
        );
        assert_eq!(
            account_warning(
                "prod",
                &selecting(Some(LabelSelector::default())),
                "chat",
                &labels
            ),
            None,
            "{{}} selects every namespace"
        );
        let other = LabelSelector {
            match_labels: Some(tags(&[("tier", "dev")])),
            ..LabelSelector::default()
        };
        let warning =
            account_warning("prod", &selecting(Some(other)), "chat", &labels).expect("a warning");
        assert!(
            warning.contains("does not select namespace chat"),
            "{warning}"
        );
        assert!(
            account_warning("prod", &selecting(None), "chat", &labels).is_some(),
            "no selector: no namespace"
        );
    }

    fn parse(args: &[&str]) -> Result<super::super::args::Request, Vec<String>> {
        let cli =
            super::super::cli::Cli::try_parse_from(["kubectl-ivschat"].iter().chain(args).copied())
                .map_err(|error| vec![error.to_string()])?;
        super::super::args::validate(&cli.global, &cli.command).map_err(|invalid| invalid.0)
    }

    #[test]
    fn the_command_line_takes_an_account_alone_and_refuses_bad_filters() {
        let request = parse(&[
            "import",
            "--account",
            "prod",
            "--tag",
            "team=chat",
            "--tag",
            "env",
            "--name-pattern",
            "^eu-",
            "--deletion-policy",
            "Delete",
            "--kind",
            "logging-configurations",
        ])
        .expect("valid");
        let super::super::args::Request::Import(request) = request else {
            panic!("an import: {request:?}");
        };
        assert_eq!(request.kind, ImportKind::LoggingConfigurations);
        assert_eq!(request.name_filter, NameFilter::Pattern("^eu-".into()));
        assert_eq!(request.deletion_policy, DeletionPolicy::Delete);
        assert_eq!(
            request.tags,
            [
                TagMatch {
                    key: "team".into(),
                    value: Some("chat".into())
                },
                TagMatch {
                    key: "env".into(),
                    value: None
                }
            ]
        );
        let problems = parse(&[
            "import",
            "--name-pattern",
            "(",
            "--tag",
            "=x",
            "--arn",
            &room_arn("ROOM00000001"),
        ])
        .expect_err("invalid");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("--arn"), "{problems:?}");
        assert!(
            problems[1].contains("not a regular expression"),
            "{problems:?}"
        );
        assert!(problems[2].contains("empty key"), "{problems:?}");
        let both =
            parse(&["import", "--name-prefix", "a", "--name-pattern", "b"]).expect_err("exclusive");
        assert!(both[0].contains("cannot be used with"), "{both:?}");
        // Elsewhere --account still needs --arn.
        assert!(parse(&["status", "--account", "prod"]).is_err());
    }
}
