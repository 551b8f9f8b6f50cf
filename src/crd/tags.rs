//! [`Tags`]: `spec.tags` as the store keeps it. The operator holds every object it watches, and a
//! `BTreeMap` allocates a node for eleven entries (544 bytes of keys and values) for even one tag: 5 MiB
//! at 10,000 tagged objects, a tenth of the operator's memory. A sorted slice holds exactly the tags
//! given. The JSON form is the same map (the schema is [`schema::tags`](super::schema::tags)), and the
//! driver reads the tags as a map ([`Tags::to_map`]) only while it works on one object.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A map of tag keys to values, sorted by key, each key once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tags(Box<[(String, String)]>);

impl Tags {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The tags in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|at| self.0[at].1.as_str())
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

impl From<BTreeMap<String, String>> for Tags {
    fn from(map: BTreeMap<String, String>) -> Self {
        Tags(map.into_iter().collect())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Tags {
    /// A key given twice keeps its last value, as in a JSON object.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(tags: I) -> Self {
        tags.into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect::<BTreeMap<_, _>>()
            .into()
    }
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Tags::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_the_json_map_form_sorted_with_the_last_of_a_repeated_key() {
        let tags: Tags =
            serde_json::from_str(r#"{"team": "chat", "env": "prod", "team": "video"}"#)
                .expect("a JSON map");
        assert_eq!(tags.len(), 2);
        assert_eq!(
            tags.iter().collect::<Vec<_>>(),
            [("env", "prod"), ("team", "video")]
        );
        assert_eq!(tags.get("team"), Some("video"));
        assert_eq!(tags.get("cost"), None);
        assert_eq!(
            serde_json::to_string(&tags).expect("serialised"),
            r#"{"env":"prod","team":"video"}"#
        );
        assert_eq!(
            tags.to_map(),
            BTreeMap::from([
                ("env".to_owned(), "prod".to_owned()),
                ("team".to_owned(), "video".to_owned())
            ])
        );
        let empty: Tags = serde_json::from_str("{}").expect("an empty map");
        assert!(empty.is_empty());
        assert_eq!(
            Tags::from_iter([("b", "2"), ("a", "1"), ("b", "3")])
                .iter()
                .collect::<Vec<_>>(),
            [("a", "1"), ("b", "3")]
        );
    }

    #[test]
    fn one_tag_costs_its_strings_and_not_a_map_node() {
        // What the store pays per object beyond the strings: a boxed slice of one pair.
        assert_eq!(std::mem::size_of::<Tags>(), 16);
        assert_eq!(std::mem::size_of::<(String, String)>(), 48);
    }
}
