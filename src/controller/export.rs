//! `spec.export`: the ConfigMap that carries an object's AWS coordinates to applications (`envFrom`).
//!
//! What is written: the kind's values by default key ([`ManagedKind::exported_values`]: a room's ARN,
//! id, region, account id and messaging endpoint; a logging configuration's ARN, id and state), taken from
//! the status the pass is about to write, renamed as `spec.export.keys` says ([`exported_data`]). Nothing
//! is written before the resource has an ARN.
//!
//! Who owns it: a ConfigMap is the operator's for an object when it carries the label
//! [`EXPORTED_BY_LABEL`] with the object's UID *and* a controller ownerReference to it; the operator
//! writes such ConfigMaps only, and deletes them only by UID precondition, so a ConfigMap that replaced
//! one of its own is never deleted either. A ConfigMap of the exported name it does not own is left
//! untouched: the condition `Exported` is False with reason `ConfigMapConflict`, and the operator looks
//! again every long backoff (the foreign ConfigMap is outside its watch).
//!
//! When: in every apply pass, after the AWS part and before the status write, against the status that
//! write carries, so a room recreated out of band (new ARN) has its ConfigMap follow in that same pass;
//! and in the passes that find the object in sync, against its stored status, which repairs a ConfigMap
//! edited or deleted out of band (a watch of the operator's ConfigMaps wakes the owner). Writes happen
//! only when the data differs from the stored ConfigMap, so an object at rest costs no Kubernetes write
//! and no AWS call. The ConfigMaps come from one watch selected by the label: the operator keeps in memory
//! only its own ConfigMaps (data, labels, owner references), so objects without `export` cost nothing.
//! Creates and updates are server-side apply with the operator's field manager; a create first reads the
//! name (a GET), because an apply onto a foreign ConfigMap would merge into it.
//!
//! Removal: when `export` goes from the spec or names another ConfigMap, and in the object's cleanup
//! (before its finalizer goes: a control plane without a garbage collector must not keep them).
//!
//! Why `Exported` is not part of `Ready`: Ready says the AWS resource matches its spec, which is what
//! GitOps health checks and `kubectl wait` (and rooms waiting for a logging configuration) depend on. An
//! export conflict is a naming clash in the namespace; failing Ready for it would block rollouts and
//! dependants of a resource that is perfectly usable. The condition and a Warning event make it visible.

use crate::controller::driver::ReconcileError;
use crate::controller::status::StatusDocument;
use crate::crd::export::{exported_data, logging_configuration_keys, room_keys};
use crate::crd::{
    CONDITION_EXPORTED, EXPORTED_BY_LABEL, Export, ManagedSpec, account_of_arn, region_of_arn,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// The messaging endpoint exported when `--messaging-endpoint` is not given: AWS's, per region.
pub const DEFAULT_MESSAGING_ENDPOINT: &str = "wss://edge.ivschat.{region}.amazonaws.com";
/// Longest wait for one ConfigMap call: like every Kubernetes call of a pass, bounded.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Reasons of the `Exported` condition.
pub mod reasons {
    /// The ConfigMap holds the resource's current coordinates.
    pub const UP_TO_DATE: &str = "ConfigMapUpToDate";
    /// A ConfigMap of that name exists and is not the operator's for this object.
    pub const CONFLICT: &str = "ConfigMapConflict";
    /// The resource has no ARN yet: nothing to export.
    pub const WAITING_FOR_ARN: &str = "WaitingForArn";
    /// The API server refused (or did not answer) a ConfigMap call; retried with backoff.
    pub const FAILED: &str = "ConfigMapWriteFailed";
}

/// The messaging endpoint template, `{region}` replaced by the resource's region.
#[derive(Clone, Debug)]
pub struct MessagingEndpoint(String);

impl MessagingEndpoint {
    pub fn new(template: impl Into<String>) -> Self {
        MessagingEndpoint(template.into())
    }

    pub fn for_region(&self, region: &str) -> String {
        self.0.replace("{region}", region)
    }
}

impl Default for MessagingEndpoint {
    fn default() -> Self {
        MessagingEndpoint::new(DEFAULT_MESSAGING_ENDPOINT)
    }
}

/// What the controllers of both kinds share for exports: the operator's ConfigMaps (one watch) and the
/// messaging endpoint.
#[derive(Clone)]
pub struct Exports {
    pub kube: kube::Client,
    pub config_maps: Store<ConfigMap>,
    pub messaging_endpoint: MessagingEndpoint,
}

/// When a failed export is looked at again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// With the object's exponential backoff (a failed call).
    Soon,
    /// After the long backoff (a conflict).
    Later,
}

/// What one export step concluded, for the object's `Exported` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportReport {
    /// This pass did not look: keep the condition as it is (deletion, refused passes).
    Unchanged,
    /// No `spec.export`: no condition.
    Absent,
    /// The condition to set.
    Condition {
        exported: bool,
        reason: &'static str,
        message: String,
    },
}

impl ExportReport {
    fn set(exported: bool, reason: &'static str, message: String) -> Self {
        ExportReport::Condition {
            exported,
            reason,
            message,
        }
    }

    /// Whether to look again although nothing changes: a conflict later (its foreign ConfigMap is outside
    /// the operator's watch, so nothing says when it goes), a failed call soon; else never.
    pub fn recheck(&self) -> Option<Recheck> {
        match self {
            ExportReport::Condition { reason, .. } if *reason == reasons::CONFLICT => {
                Some(Recheck::Later)
            }
            ExportReport::Condition { reason, .. } if *reason == reasons::FAILED => {
                Some(Recheck::Soon)
            }
            _ => None,
        }
    }

    /// The Warning a newly failed export deserves (a conflict or a failed call), none when `conditions`
    /// already say so: one event per change, not one per pass.
    pub fn warning(&self, conditions: &[Condition]) -> Option<(&'static str, &str)> {
        match self {
            ExportReport::Condition {
                exported: false,
                reason,
                message,
            } if (*reason == reasons::CONFLICT || *reason == reasons::FAILED)
                && !self.is_reflected_in(conditions) =>
            {
                Some((reason, message))
            }
            _ => None,
        }
    }

    /// Whether `conditions` already say what this report says (message included).
    pub fn is_reflected_in(&self, conditions: &[Condition]) -> bool {
        let current = conditions.iter().find(|c| c.type_ == CONDITION_EXPORTED);
        match (self, current) {
            (ExportReport::Unchanged, _) | (ExportReport::Absent, None) => true,
            (
                ExportReport::Condition {
                    exported,
                    reason,
                    message,
                },
                Some(current),
            ) => {
                current.status == status_word(*exported)
                    && current.reason == *reason
                    && current.message == *message
            }
            _ => false,
        }
    }
}

fn status_word(exported: bool) -> &'static str {
    if exported { "True" } else { "False" }
}

/// `merged` (the pass's other conditions) with the `Exported` condition `report` asks for; its
/// `lastTransitionTime` moves only when its status does (`previous` holds the stored one).
pub fn with_export_condition(
    previous: &[Condition],
    mut merged: Vec<Condition>,
    report: &ExportReport,
    now: &Time,
) -> Vec<Condition> {
    merged.retain(|c| c.type_ != CONDITION_EXPORTED);
    let stored = previous.iter().find(|c| c.type_ == CONDITION_EXPORTED);
    let condition = match report {
        ExportReport::Unchanged => stored.cloned(),
        ExportReport::Absent => None,
        ExportReport::Condition {
            exported,
            reason,
            message,
        } => {
            let status = status_word(*exported);
            let last_transition_time = stored
                .filter(|c| c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Some(Condition {
                type_: CONDITION_EXPORTED.to_owned(),
                status: status.to_owned(),
                reason: (*reason).to_owned(),
                message: crate::controller::status::truncate(message, 1024),
                last_transition_time,
                observed_generation: None,
            })
        }
    };
    merged.extend(condition);
    merged.sort_by(|a, b| a.type_.cmp(&b.type_));
    merged
}

/// A room's coordinates by default key, from its status: `None` until it has an ARN. The region and
/// account id fall back on the ARN's (a status written before they were recorded).
pub fn room_values(
    status: &StatusDocument,
    endpoint: &MessagingEndpoint,
) -> Option<BTreeMap<&'static str, String>> {
    let arn = status.arn.as_deref()?;
    let region = status
        .region
        .as_deref()
        .or_else(|| region_of_arn(arn))
        .map(str::to_owned);
    let account_id = status
        .account_id
        .as_deref()
        .or_else(|| account_of_arn(arn))
        .map(str::to_owned);
    let endpoint = region.as_deref().map(|region| endpoint.for_region(region));
    let values = [
        (room_keys::ARN, Some(arn.to_owned())),
        (room_keys::ID, status.id.clone()),
        (room_keys::REGION, region),
        (room_keys::ACCOUNT_ID, account_id),
        (room_keys::MESSAGING_ENDPOINT, endpoint),
    ];
    Some(present(values))
}

/// A logging configuration's coordinates by default key, from its status: `None` until it has an ARN.
pub fn logging_configuration_values(
    status: &StatusDocument,
) -> Option<BTreeMap<&'static str, String>> {
    let arn = status.arn.as_deref()?;
    let values = [
        (logging_configuration_keys::ARN, Some(arn.to_owned())),
        (logging_configuration_keys::ID, status.id.clone()),
        (logging_configuration_keys::STATE, status.state.clone()),
    ];
    Some(present(values))
}

fn present<const N: usize>(
    values: [(&'static str, Option<String>); N],
) -> BTreeMap<&'static str, String> {
    values
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
        .collect()
}

/// The object an export belongs to, as the export step needs it.
pub struct Owner<'a> {
    pub kind: &'static str,
    pub api_version: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub export: Option<&'a Export>,
}

impl<'a> Owner<'a> {
    pub fn of<K>(object: &'a K) -> Self
    where
        K: Resource<DynamicType = ()> + kube::core::object::HasSpec,
        K::Spec: ManagedSpec,
    {
        Owner {
            kind: kind_name::<K>(),
            api_version: K::api_version(&()).into_owned(),
            name: object.name_any(),
            namespace: object.namespace().unwrap_or_default(),
            uid: object.uid().unwrap_or_default(),
            export: object.spec().export(),
        }
    }

    fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.to_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

fn kind_name<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(kind) => kind,
        std::borrow::Cow::Owned(_) => "Unknown",
    }
}

/// Whether `config_map` is the operator's export for the object with `uid`: its label and a controller
/// ownerReference both say so.
pub fn is_owned_by(config_map: &ConfigMap, uid: &str) -> bool {
    let labelled = config_map
        .labels()
        .get(EXPORTED_BY_LABEL)
        .map(String::as_str)
        == Some(uid);
    let referenced = config_map
        .owner_references()
        .iter()
        .any(|owner| owner.uid == uid && owner.controller == Some(true));
    labelled && referenced
}

/// The ConfigMap the operator applies for `owner`: its name, label, ownerReference and data, nothing else.
pub fn desired_config_map(
    owner: &Owner<'_>,
    name: &str,
    data: BTreeMap<String, String>,
) -> ConfigMap {
    let mut config_map = ConfigMap {
        data: Some(data),
        ..ConfigMap::default()
    };
    config_map.metadata.name = Some(name.to_owned());
    config_map.metadata.namespace = Some(owner.namespace.clone());
    config_map.metadata.labels = Some(BTreeMap::from([(
        EXPORTED_BY_LABEL.to_owned(),
        owner.uid.clone(),
    )]));
    config_map.metadata.owner_references = Some(vec![owner.reference()]);
    config_map
}

/// The objects of kind `K` that ConfigMap `config_map` is an export of (its controller ownerReference),
/// for the watch of the operator's ConfigMaps that wakes them.
pub fn owners_of<K: Resource<DynamicType = ()>>(config_map: &ConfigMap) -> Vec<ObjectRef<K>> {
    let Some(namespace) = config_map.namespace() else {
        return Vec::new();
    };
    config_map
        .owner_references()
        .iter()
        .filter(|owner| {
            owner.controller == Some(true)
                && owner.kind == K::kind(&())
                && owner.api_version == K::api_version(&())
        })
        .map(|owner| ObjectRef::new(&owner.name).within(&namespace))
        .collect()
}

/// Keeps of an exported ConfigMap what the export step compares and checks (data, labels, owners).
pub fn config_map_essentials(config_map: &mut ConfigMap) {
    config_map.metadata.managed_fields = None;
    config_map.metadata.annotations = None;
    config_map.binary_data = None;
}

/// Makes `owner`'s exported ConfigMap match `values` (its coordinates by default key; `None`: no ARN
/// yet) and removes the operator's ConfigMaps of this owner under any other name.
pub async fn sync(
    exports: &Exports,
    owner: &Owner<'_>,
    values: Option<BTreeMap<&'static str, String>>,
) -> ExportReport {
    super::driver::store_ready(&exports.config_maps).await;
    let api: Api<ConfigMap> = Api::namespaced(exports.kube.clone(), &owner.namespace);
    let keep = owner.export.map(|export| export.config_map_name.as_str());
    if let Err(error) = remove_stale(exports, &api, owner, keep).await {
        return failed(keep.unwrap_or_default(), &error);
    }
    let Some(export) = owner.export else {
        return ExportReport::Absent;
    };
    let name = export.config_map_name.as_str();
    let Some(values) = values else {
        return ExportReport::set(
            false,
            reasons::WAITING_FOR_ARN,
            format!("ConfigMap {name} is written once the AWS resource has an ARN"),
        );
    };
    let data = exported_data(&values, &export.keys);
    let written = written_message(name, &data);
    let stored = exports
        .config_maps
        .get(&ObjectRef::new(name).within(&owner.namespace));
    match stored {
        Some(stored) if is_owned_by(&stored, &owner.uid) => {
            if stored.data.as_ref() == Some(&data) {
                return ExportReport::set(true, reasons::UP_TO_DATE, written);
            }
            let desired = desired_config_map(owner, name, data);
            match apply(&api, name, desired, stored.resource_version()).await {
                Ok(()) => ExportReport::set(true, reasons::UP_TO_DATE, written),
                Err(error) => failed(name, &error),
            }
        }
        // Labelled by the operator, but for another object (one of the same name before it, say).
        Some(_) => conflict(owner, name),
        None => match bounded(api.get_opt(name)).await {
            Ok(Some(found)) if !is_owned_by(&found, &owner.uid) => conflict(owner, name),
            Ok(found) => {
                // Ours but not in the store yet (just written), or absent: apply.
                let version = found.and_then(|found| found.resource_version());
                let desired = desired_config_map(owner, name, data);
                match apply(&api, name, desired, version).await {
                    Ok(()) => ExportReport::set(true, reasons::UP_TO_DATE, written),
                    Err(error) => failed(name, &error),
                }
            }
            Err(error) => failed(name, &error),
        },
    }
}

/// Whether the store shows `owner`'s export exactly as `values` would write it, or there is nothing to
/// write (no export, or no ARN yet): then [`sync`] writes no ConfigMap data.
pub fn is_up_to_date(
    exports: &Exports,
    owner: &Owner<'_>,
    values: Option<&BTreeMap<&'static str, String>>,
) -> bool {
    let (Some(export), Some(values)) = (owner.export, values) else {
        return true;
    };
    let data = exported_data(values, &export.keys);
    exports
        .config_maps
        .get(&ObjectRef::new(&export.config_map_name).within(&owner.namespace))
        .is_some_and(|stored| {
            is_owned_by(&stored, &owner.uid) && stored.data.as_ref() == Some(&data)
        })
}

/// Deletes every ConfigMap the operator exported for `owner` (its cleanup): those its store shows, and
/// the one the spec names, read directly in case the store has not seen it yet.
pub async fn remove_all(exports: &Exports, owner: &Owner<'_>) -> Result<(), ReconcileError> {
    super::driver::store_ready(&exports.config_maps).await;
    let api: Api<ConfigMap> = Api::namespaced(exports.kube.clone(), &owner.namespace);
    remove_stale(exports, &api, owner, None).await?;
    if let Some(export) = owner.export
        && let Some(found) = bounded(api.get_opt(&export.config_map_name)).await?
        && is_owned_by(&found, &owner.uid)
    {
        delete(&api, &found).await?;
    }
    Ok(())
}

/// Deletes the owner's ConfigMaps in the store other than `keep`. Only objects that export (or did)
/// have any, so the scan is over the operator's own ConfigMaps and skipped for everyone else.
async fn remove_stale(
    exports: &Exports,
    api: &Api<ConfigMap>,
    owner: &Owner<'_>,
    keep: Option<&str>,
) -> Result<(), ReconcileError> {
    let stale: Vec<_> = exports
        .config_maps
        .state()
        .into_iter()
        .filter(|config_map| {
            config_map.namespace().as_deref() == Some(owner.namespace.as_str())
                && Some(config_map.name_any().as_str()) != keep
                && is_owned_by(config_map, &owner.uid)
        })
        .collect();
    for config_map in stale {
        delete(api, &config_map).await?;
    }
    Ok(())
}

/// Deletes one ConfigMap on the UID the operator saw, so a ConfigMap that replaced it is never deleted;
/// gone (404) or replaced (409) both count as done.
async fn delete(api: &Api<ConfigMap>, config_map: &ConfigMap) -> Result<(), ReconcileError> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: config_map.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match bounded(api.delete(&config_map.name_any(), &params)).await {
        Ok(_) => Ok(()),
        Err(ReconcileError::Kube(kube::Error::Api(status)))
            if status.code == 404 || status.code == 409 =>
        {
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Server-side apply of the whole ConfigMap with the operator's field manager. On a ConfigMap that
/// exists, the resourceVersion the operator checked is a precondition: if it changed since (perhaps
/// replaced by someone else's), the write fails and the next pass looks again.
async fn apply(
    api: &Api<ConfigMap>,
    name: &str,
    mut desired: ConfigMap,
    resource_version: Option<String>,
) -> Result<(), ReconcileError> {
    desired.metadata.resource_version = resource_version;
    let mut patch = serde_json::to_value(&desired)
        .map_err(|error| ReconcileError::Kube(kube::Error::SerdeError(error)))?;
    patch["apiVersion"] = "v1".into();
    patch["kind"] = "ConfigMap".into();
    let params = PatchParams::apply(super::driver::FIELD_MANAGER).force();
    bounded(api.patch(name, &params, &Patch::Apply(&patch)))
        .await
        .map(|_| ())
}

/// A ConfigMap call bounded by [`CALL_TIMEOUT`].
async fn bounded<T>(
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ReconcileError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(ReconcileError::Kube),
        Err(_) => Err(ReconcileError::Timeout("a ConfigMap call")),
    }
}

fn written_message(name: &str, data: &BTreeMap<String, String>) -> String {
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    format!("ConfigMap {name} holds {}", keys.join(", "))
}

fn conflict(owner: &Owner<'_>, name: &str) -> ExportReport {
    ExportReport::set(
        false,
        reasons::CONFLICT,
        format!(
            "ConfigMap {name} exists and is not this {kind}'s export (no label {EXPORTED_BY_LABEL}={uid} \
             and controller ownerReference to it): the operator leaves it untouched; delete or rename it, or \
             export to another name",
            kind = owner.kind,
            uid = owner.uid,
        ),
    )
}

fn failed(name: &str, error: &ReconcileError) -> ExportReport {
    ExportReport::set(
        false,
        reasons::FAILED,
        format!("writing ConfigMap {name} failed: {error}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(export: Option<&Export>) -> Owner<'_> {
        Owner {
            kind: "ChatRoom",
            api_version: "ivschat.dev/v1alpha1".to_owned(),
            name: "lobby".to_owned(),
            namespace: "team-a".to_owned(),
            uid: "uid-1".to_owned(),
            export,
        }
    }

    #[test]
    fn a_room_exports_nothing_before_its_arn_then_every_coordinate() {
        let endpoint = MessagingEndpoint::default();
        assert_eq!(room_values(&StatusDocument::default(), &endpoint), None);
        let status = StatusDocument {
            arn: Some("arn:aws:ivschat:eu-west-1:111122223333:room/AbCd".to_owned()),
            id: Some("AbCd".to_owned()),
            region: Some("eu-west-1".to_owned()),
            account_id: Some("111122223333".to_owned()),
            ..StatusDocument::default()
        };
        let values = room_values(&status, &endpoint).expect("an ARN");
        assert_eq!(
            values,
            BTreeMap::from([
                (
                    "ROOM_ARN",
                    "arn:aws:ivschat:eu-west-1:111122223333:room/AbCd".to_owned()
                ),
                ("ROOM_ID", "AbCd".to_owned()),
                ("ROOM_REGION", "eu-west-1".to_owned()),
                ("ROOM_ACCOUNT_ID", "111122223333".to_owned()),
                (
                    "ROOM_MESSAGING_ENDPOINT",
                    "wss://edge.ivschat.eu-west-1.amazonaws.com".to_owned()
                ),
            ])
        );
    }

    #[test]
    fn a_room_status_without_region_or_account_takes_them_from_its_arn() {
        let status = StatusDocument {
            arn: Some("arn:aws:ivschat:ap-south-1:444455556666:room/Zz".to_owned()),
            ..StatusDocument::default()
        };
        let values =
            room_values(&status, &MessagingEndpoint::new("ws://emu/{region}")).expect("an ARN");
        assert_eq!(values["ROOM_REGION"], "ap-south-1");
        assert_eq!(values["ROOM_ACCOUNT_ID"], "444455556666");
        assert_eq!(values["ROOM_MESSAGING_ENDPOINT"], "ws://emu/ap-south-1");
        // No id in the status: no key, rather than an empty value an application would take for one.
        assert!(!values.contains_key("ROOM_ID"));
    }

    #[test]
    fn a_logging_configuration_exports_its_arn_id_and_state() {
        assert_eq!(
            logging_configuration_values(&StatusDocument::default()),
            None
        );
        let status = StatusDocument {
            arn: Some("arn:aws:ivschat:us-east-1:1:logging-configuration/Lc".to_owned()),
            id: Some("Lc".to_owned()),
            state: Some("ACTIVE".to_owned()),
            region: Some("us-east-1".to_owned()),
            ..StatusDocument::default()
        };
        assert_eq!(
            logging_configuration_values(&status).expect("an ARN"),
            BTreeMap::from([
                (
                    "LOGGING_CONFIGURATION_ARN",
                    "arn:aws:ivschat:us-east-1:1:logging-configuration/Lc".to_owned()
                ),
                ("LOGGING_CONFIGURATION_ID", "Lc".to_owned()),
                ("LOGGING_CONFIGURATION_STATE", "ACTIVE".to_owned()),
            ])
        );
    }

    #[test]
    fn the_endpoint_template_takes_the_region() {
        assert_eq!(
            MessagingEndpoint::default().for_region("eu-west-1"),
            "wss://edge.ivschat.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            MessagingEndpoint::new("ws://127.0.0.1:4510").for_region("eu-west-1"),
            "ws://127.0.0.1:4510"
        );
    }

    #[test]
    fn a_desired_config_map_is_labelled_and_controlled_by_its_owner_and_so_counts_as_owned() {
        let config_map = desired_config_map(&owner(None), "coords", BTreeMap::new());
        assert!(is_owned_by(&config_map, "uid-1"));
        assert!(!is_owned_by(&config_map, "uid-2"));
        let reference = &config_map.owner_references()[0];
        assert_eq!(
            (reference.kind.as_str(), reference.name.as_str()),
            ("ChatRoom", "lobby")
        );
        assert_eq!(reference.block_owner_deletion, Some(true));
        assert_eq!(
            owners_of::<crate::crd::ChatRoom>(&config_map),
            vec![ObjectRef::new("lobby").within("team-a")]
        );
        assert!(owners_of::<crate::crd::ChatLoggingConfiguration>(&config_map).is_empty());
    }

    #[test]
    fn a_label_without_the_owner_reference_or_the_reverse_is_not_ownership() {
        let mut labelled_only = desired_config_map(&owner(None), "coords", BTreeMap::new());
        labelled_only.metadata.owner_references = None;
        assert!(!is_owned_by(&labelled_only, "uid-1"));
        let mut referenced_only = desired_config_map(&owner(None), "coords", BTreeMap::new());
        referenced_only.metadata.labels = None;
        assert!(!is_owned_by(&referenced_only, "uid-1"));
    }

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).expect("a timestamp"))
    }

    #[test]
    fn the_exported_condition_keeps_its_transition_time_until_its_status_changes() {
        let up_to_date = ExportReport::set(true, reasons::UP_TO_DATE, "holds A".to_owned());
        let first = with_export_condition(&[], Vec::new(), &up_to_date, &time(1));
        assert_eq!(first[0].last_transition_time, time(1));
        assert!(up_to_date.is_reflected_in(&first));

        let renamed = ExportReport::set(true, reasons::UP_TO_DATE, "holds B".to_owned());
        assert!(!renamed.is_reflected_in(&first));
        let second = with_export_condition(&first, Vec::new(), &renamed, &time(2));
        assert_eq!(second[0].last_transition_time, time(1));

        let conflict = ExportReport::set(false, reasons::CONFLICT, "foreign".to_owned());
        let third = with_export_condition(&second, Vec::new(), &conflict, &time(3));
        assert_eq!(
            (
                third[0].status.as_str(),
                third[0].last_transition_time.clone()
            ),
            ("False", time(3))
        );

        assert!(
            with_export_condition(&third, Vec::new(), &ExportReport::Absent, &time(4)).is_empty()
        );
        assert_eq!(
            with_export_condition(&third, Vec::new(), &ExportReport::Unchanged, &time(4)),
            third
        );
    }

    #[test]
    fn only_conflicts_and_failures_are_looked_at_again_at_rest_and_warned_of_once() {
        let of = |reason| ExportReport::set(false, reason, "m".to_owned());
        assert_eq!(of(reasons::CONFLICT).recheck(), Some(Recheck::Later));
        assert_eq!(of(reasons::FAILED).recheck(), Some(Recheck::Soon));
        assert_eq!(of(reasons::WAITING_FOR_ARN).recheck(), None);
        assert_eq!(ExportReport::Absent.recheck(), None);

        let conflict = of(reasons::CONFLICT);
        assert_eq!(conflict.warning(&[]), Some((reasons::CONFLICT, "m")));
        let reported = with_export_condition(&[], Vec::new(), &conflict, &time(1));
        assert_eq!(conflict.warning(&reported), None);
        assert_eq!(of(reasons::WAITING_FOR_ARN).warning(&[]), None);
    }
}
