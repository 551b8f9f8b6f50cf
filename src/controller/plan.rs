//! Pure planning: which fields differ between the desired and the observed AWS state, and which tag calls
//! bring the tags in line without touching tags that others added in AWS.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The names (camelCase, as in the spec) of the top-level fields whose normalised values differ.
///
/// Both sides are the same normalised struct (defaults applied), so this is an exact comparison of values
/// and an omitted field that AWS defaults never shows as a difference.
pub fn changed_fields<F: Serialize>(desired: &F, observed: &F) -> Vec<String> {
    let as_map = |value: &F| match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (desired, observed) = (as_map(desired), as_map(observed));
    let keys: BTreeSet<&String> = desired.keys().chain(observed.keys()).collect();
    keys.into_iter()
        .filter(|key| desired.get(*key) != observed.get(*key))
        .cloned()
        .collect()
}

/// The tag calls that bring a resource's tags to the desired set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagPlan {
    /// TagResource: keys missing in AWS or with another value.
    pub set: BTreeMap<String, String>,
    /// UntagResource: keys the operator set before, no longer desired, still present in AWS.
    pub remove: BTreeSet<String>,
}

impl TagPlan {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// The keys this plan touches, for events.
    pub fn keys(&self) -> Vec<&str> {
        let keys: BTreeSet<&str> = self
            .set
            .keys()
            .chain(self.remove.iter())
            .map(String::as_str)
            .collect();
        keys.into_iter().collect()
    }
}

/// Plans the tag calls. Only keys in `desired` or in `previously_managed` are ever touched: a key someone
/// else added in AWS is neither changed nor removed.
pub fn plan_tags(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
    previously_managed: &[String],
) -> TagPlan {
    let set = desired
        .iter()
        .filter(|(key, value)| observed.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let remove = previously_managed
        .iter()
        .filter(|key| !desired.contains_key(*key) && observed.contains_key(*key))
        .cloned()
        .collect();
    TagPlan { set, remove }
}

/// The keys the operator manages once `desired` is applied (sorted, as status stores them).
pub fn managed_keys(desired: &BTreeMap<String, String>) -> Vec<String> {
    desired.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        name: String,
        maximum_message_length: i32,
        handler: Option<String>,
    }

    #[test]
    fn equal_values_have_no_changes() {
        let a = Fields {
            name: "n".into(),
            maximum_message_length: 500,
            handler: None,
        };
        assert!(changed_fields(&a, &a).is_empty());
    }

    #[test]
    fn each_differing_field_is_named_once() {
        let desired = Fields {
            name: "n".into(),
            maximum_message_length: 256,
            handler: Some("arn".into()),
        };
        let observed = Fields {
            name: "n".into(),
            maximum_message_length: 500,
            handler: None,
        };
        assert_eq!(
            changed_fields(&desired, &observed),
            vec!["handler".to_owned(), "maximumMessageLength".to_owned()]
        );
    }

    #[test]
    fn tags_add_change_and_remove_only_managed_keys() {
        let desired = tags(&[("team", "chat"), ("env", "prod")]);
        let observed = tags(&[("team", "video"), ("old", "x"), ("foreign", "kept")]);
        let plan = plan_tags(&desired, &observed, &["team".into(), "old".into()]);
        assert_eq!(plan.set, tags(&[("team", "chat"), ("env", "prod")]));
        assert_eq!(plan.remove, BTreeSet::from(["old".to_owned()]));
        assert_eq!(plan.keys(), vec!["env", "old", "team"]);
    }

    #[test]
    fn tags_at_rest_plan_nothing() {
        let desired = tags(&[("team", "chat")]);
        let observed = tags(&[("team", "chat"), ("foreign", "x")]);
        let plan = plan_tags(&desired, &observed, &managed_keys(&desired));
        assert!(plan.is_empty());
    }

    #[test]
    fn a_managed_key_already_gone_is_not_untagged_again() {
        let plan = plan_tags(&tags(&[]), &tags(&[("foreign", "x")]), &["old".into()]);
        assert!(plan.is_empty());
    }
}
