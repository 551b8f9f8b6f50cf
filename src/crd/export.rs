//! `spec.export`, shared by both kinds: the ConfigMap the operator writes with the resource's coordinates
//! (ARN, id, region, ...), so that applications read them with `envFrom` instead of asking AWS or the
//! operator. This module owns the field's type, the default key names of each kind and the schema that
//! validates them: a DNS-subdomain name (a ConfigMap's), and renames (`keys`) that only name the kind's
//! known keys and give each a distinct environment variable name. The controller side (what is written,
//! when, and who owns it) is [`crate::controller::export`].

use schemars::{Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
#[cfg(test)]
use serde_json::Value;
use serde_json::json;
use std::collections::BTreeMap;

/// The label on every ConfigMap the operator exports: its value is the UID of the exporting object.
/// A UID rather than `kind.name`: object names run to 253 characters and label values stop at 63. With
/// the controller ownerReference, it is how the operator tells its ConfigMaps from anyone else's, and
/// what its watch of ConfigMaps selects (it never sees, nor keeps in memory, any other ConfigMap).
pub const EXPORTED_BY_LABEL: &str = "ivschat.dev/exported-by";

/// The keys a ChatRoom exports, as written unless renamed.
pub mod room_keys {
    pub const ARN: &str = "ROOM_ARN";
    pub const ID: &str = "ROOM_ID";
    pub const REGION: &str = "ROOM_REGION";
    pub const ACCOUNT_ID: &str = "ROOM_ACCOUNT_ID";
    pub const MESSAGING_ENDPOINT: &str = "ROOM_MESSAGING_ENDPOINT";
    pub const ALL: [&str; 5] = [ARN, ID, REGION, ACCOUNT_ID, MESSAGING_ENDPOINT];
}

/// The keys a ChatLoggingConfiguration exports, as written unless renamed.
pub mod logging_configuration_keys {
    pub const ARN: &str = "LOGGING_CONFIGURATION_ARN";
    pub const ID: &str = "LOGGING_CONFIGURATION_ID";
    pub const STATE: &str = "LOGGING_CONFIGURATION_STATE";
    pub const ALL: [&str; 3] = [ARN, ID, STATE];
}

/// What a new key name must look like: a C identifier, which is a valid ConfigMap key and an environment
/// variable name every shell and `envFrom` (of any Kubernetes version) accepts as it is.
pub const KEY_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";
/// A ConfigMap's name: a DNS subdomain (RFC 1123).
pub const CONFIG_MAP_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// `spec.export`: the ConfigMap to write and, optionally, other names for its keys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    pub config_map_name: String,
    /// Renames: a default key (e.g. `ROOM_ARN`) to the key written instead (e.g. `CHAT_ROOM_ARN`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
}

/// Schema of a ChatRoom's `spec.export`.
pub fn room_export(_generator: &mut SchemaGenerator) -> Schema {
    export_schema("room", &room_keys::ALL)
}

/// Schema of a ChatLoggingConfiguration's `spec.export`.
pub fn logging_configuration_export(_generator: &mut SchemaGenerator) -> Schema {
    export_schema("logging configuration", &logging_configuration_keys::ALL)
}

/// The export schema for a kind whose default keys are `known`. The key rules are CEL: a structural
/// schema has no `propertyNames`, and "distinct after renaming" spans entries. `keys` is bounded by the
/// number of known keys, which keeps the rules' cost low.
fn export_schema(resource: &str, known: &[&str]) -> Schema {
    let listed = known.join(", ");
    let known_cel = format!(
        "[{}]",
        known
            .iter()
            .map(|key| format!("'{key}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let value = json!({
        "description": format!(
            "Writes the AWS {resource}'s coordinates into a ConfigMap in this namespace, for applications \
            to read with envFrom. Its keys are {listed} (each renameable with keys), present once the \
            {resource} has an ARN. The operator owns the ConfigMap (a controller ownerReference to this \
            object and the label ivschat.dev/exported-by), keeps it current and deletes it with this object, \
            or when export is removed or names another ConfigMap. A ConfigMap of that name it does not own \
            is never touched: the condition Exported then says so (reason ConfigMapConflict)."
        ),
        "type": "object",
        "required": ["configMapName"],
        "properties": {
            "configMapName": {
                "description": "Name of the ConfigMap (in this namespace) the operator writes.",
                "type": "string",
                "minLength": 1,
                "maxLength": 253,
                "pattern": CONFIG_MAP_NAME_PATTERN,
            },
            "keys": {
                "description": format!(
                    "Other names for the exported keys: a default key ({listed}) to the key written \
                    instead, a C identifier (letters, digits, `_`; not starting with a digit) so that envFrom \
                    takes it as it is. Keys not named here keep their default name; all names must be distinct."
                ),
                "type": "object",
                "maxProperties": known.len(),
                "additionalProperties": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 253,
                    "pattern": KEY_NAME_PATTERN,
                },
                "x-kubernetes-validations": [
                    {
                        "rule": format!("self.all(k, k in {known_cel})"),
                        "message": format!("spec.export.keys may only rename the known keys: {listed}"),
                    },
                    {
                        "rule": "self.all(k, self.exists_one(j, self[j] == self[k]))",
                        "message": "spec.export.keys must not give two keys the same name",
                    },
                    {
                        "rule": format!(
                            "self.all(k, !(self[k] in {known_cel}) || self[k] == k || self[k] in self)"
                        ),
                        "message": "spec.export.keys must not rename a key to another default key that is not renamed itself",
                    },
                ],
            },
        },
    });
    Schema::try_from(value).unwrap_or_default()
}

/// The data an export writes: each default key that has a value, under its new name if renamed. The
/// schema keeps renames distinct and within the known keys; a rename of a key without a value is unused.
pub fn exported_data(
    values: &BTreeMap<&'static str, String>,
    renames: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(key, value)| {
            let name = renames.get(*key).map_or(*key, String::as_str);
            (name.to_owned(), value.clone())
        })
        .collect()
}

/// Whether `schema` (as JSON) names `key` in its known-keys rule: for tests of the generated CRD.
#[cfg(test)]
fn rule_names(schema: &Value, key: &str) -> bool {
    schema["properties"]["keys"]["x-kubernetes-validations"][0]["rule"]
        .as_str()
        .is_some_and(|rule| rule.contains(&format!("'{key}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            (
                room_keys::ARN,
                "arn:aws:ivschat:eu-west-1:1:room/abc".to_owned(),
            ),
            (room_keys::ID, "abc".to_owned()),
        ])
    }

    #[test]
    fn default_keys_are_written_as_they_are() {
        let data = exported_data(&values(), &BTreeMap::new());
        assert_eq!(
            data,
            BTreeMap::from([
                (
                    "ROOM_ARN".to_owned(),
                    "arn:aws:ivschat:eu-west-1:1:room/abc".to_owned()
                ),
                ("ROOM_ID".to_owned(), "abc".to_owned()),
            ])
        );
    }

    #[test]
    fn renamed_keys_replace_their_defaults_and_the_others_stay() {
        let renames = BTreeMap::from([
            ("ROOM_ARN".to_owned(), "CHAT_ARN".to_owned()),
            // Renaming a key without a value (the endpoint is not in `values`) writes nothing.
            ("ROOM_MESSAGING_ENDPOINT".to_owned(), "CHAT_WS".to_owned()),
        ]);
        let data = exported_data(&values(), &renames);
        assert_eq!(
            data,
            BTreeMap::from([
                (
                    "CHAT_ARN".to_owned(),
                    "arn:aws:ivschat:eu-west-1:1:room/abc".to_owned()
                ),
                ("ROOM_ID".to_owned(), "abc".to_owned()),
            ])
        );
    }

    #[test]
    fn swapping_two_default_names_is_allowed_and_swaps_the_values() {
        let renames = BTreeMap::from([
            ("ROOM_ARN".to_owned(), "ROOM_ID".to_owned()),
            ("ROOM_ID".to_owned(), "ROOM_ARN".to_owned()),
        ]);
        let data = exported_data(&values(), &renames);
        assert_eq!(data["ROOM_ID"], "arn:aws:ivschat:eu-west-1:1:room/abc");
        assert_eq!(data["ROOM_ARN"], "abc");
    }

    #[test]
    fn each_kind_s_schema_allows_renaming_exactly_its_own_keys() {
        let room = room_export(&mut SchemaGenerator::default()).to_value();
        let logging = logging_configuration_export(&mut SchemaGenerator::default()).to_value();
        for key in room_keys::ALL {
            assert!(rule_names(&room, key), "{key} in the room's rule");
            assert!(!rule_names(&logging, key), "{key} not in the logging rule");
        }
        for key in logging_configuration_keys::ALL {
            assert!(rule_names(&logging, key), "{key} in the logging rule");
            assert!(!rule_names(&room, key), "{key} not in the room's rule");
        }
        assert_eq!(room["properties"]["keys"]["maxProperties"], 5);
        assert_eq!(logging["properties"]["keys"]["maxProperties"], 3);
    }

    #[test]
    fn default_key_names_match_the_pattern_for_new_names() {
        let pattern = regex::Regex::new(KEY_NAME_PATTERN).expect("the pattern compiles");
        for key in room_keys::ALL
            .iter()
            .chain(logging_configuration_keys::ALL.iter())
        {
            assert!(pattern.is_match(key), "{key}");
        }
        assert!(!pattern.is_match("1ROOM"));
        assert!(!pattern.is_match("ROOM-ARN"));
    }
}
