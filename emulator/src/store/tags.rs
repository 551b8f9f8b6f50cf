//! The tags of rooms and logging configurations, with the per-resource limit.

use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::ids::{self, ResourceKind};

use super::Store;

impl Store {
    fn tags_mut(&mut self, arn: &str) -> Result<&mut BTreeMap<String, String>, ApiError> {
        let kind = ids::parse_arn(arn).map(|parsed| parsed.kind);
        match kind {
            Some(ResourceKind::Room) => Ok(&mut self.room_mut(arn)?.tags),
            Some(ResourceKind::LoggingConfiguration) => {
                Ok(&mut self.logging_configuration_mut(arn)?.tags)
            }
            None => Err(ApiError::not_found(
                format!("Resource {arn} not found"),
                ids::resource_id_for_error(arn),
            )),
        }
    }

    pub fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, ApiError> {
        match ids::parse_arn(arn).map(|parsed| parsed.kind) {
            Some(ResourceKind::Room) => Ok(self.room(arn)?.tags.clone()),
            Some(ResourceKind::LoggingConfiguration) => {
                Ok(self.logging_configuration(arn)?.tags.clone())
            }
            None => Err(ApiError::not_found(
                format!("Resource {arn} not found"),
                ids::resource_id_for_error(arn),
            )),
        }
    }

    /// Adds or overwrites tags; the result may hold at most `max_tags` (ValidationException otherwise).
    pub fn tag(
        &mut self,
        arn: &str,
        tags: BTreeMap<String, String>,
        max_tags: usize,
    ) -> Result<(), ApiError> {
        let current = self.tags_mut(arn)?;
        let new_keys = tags
            .keys()
            .filter(|key| !current.contains_key(*key))
            .count();
        if current.len() + new_keys > max_tags {
            return Err(ApiError::field(
                "tags",
                format!(
                    "A resource can have at most {max_tags} tags; it has {} and {new_keys} would be added",
                    current.len()
                ),
            ));
        }
        current.extend(tags);
        self.changed();
        Ok(())
    }

    /// Removes tags; keys that are not present are ignored (UntagResource is idempotent).
    pub fn untag(&mut self, arn: &str, keys: &[String]) -> Result<(), ApiError> {
        let current = self.tags_mut(arn)?;
        let removed = keys
            .iter()
            .filter(|key| current.remove(key.as_str()).is_some())
            .count();
        if removed > 0 {
            self.changed();
        }
        Ok(())
    }
}
