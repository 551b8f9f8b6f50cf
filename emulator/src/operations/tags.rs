//! ListTagsForResource, TagResource and UntagResource, on rooms and logging configurations alike.

use std::collections::BTreeMap;

use ivschat_api::limits::MAX_TAGS;
use serde::Deserialize;
use serde_json::json;

use super::input::tag_keys_from_query;
use super::output::Output;
use crate::error::ApiError;
use crate::service::ScopedService;
use crate::validate::Validator;

pub(super) fn list_tags_for_resource(
    service: &ScopedService<'_>,
    arn: &str,
) -> Result<Output, ApiError> {
    let tags = service.read(|store, _| store.tags(arn))?;
    Ok(Output::Json(json!({ "tags": tags })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TagResourceInput {
    tags: Option<BTreeMap<String, String>>,
}

pub(super) async fn tag_resource(
    service: &ScopedService<'_>,
    arn: &str,
    input: TagResourceInput,
) -> Result<Output, ApiError> {
    let mut v = Validator::new();
    if let Some(tags) = v.required("tags", &input.tags) {
        v.tags("tags", tags);
    }
    v.finish()?;
    let tags = input.tags.unwrap_or_default();
    service
        .mutate(|store, _| store.tag(arn, tags, MAX_TAGS))
        .await?;
    Ok(Output::Json(json!({})))
}

pub(super) async fn untag_resource(
    service: &ScopedService<'_>,
    arn: &str,
    query: Option<&str>,
) -> Result<Output, ApiError> {
    let keys = tag_keys_from_query(query)?;
    let mut v = Validator::new();
    if let Some(keys) = v.required("tagKeys", &keys) {
        v.size("tagKeys", keys.len(), MAX_TAGS);
        for key in keys {
            v.tag_key("tagKeys", key);
        }
    }
    v.finish()?;
    let keys = keys.unwrap_or_default();
    service.mutate(|store, _| store.untag(arn, &keys)).await?;
    Ok(Output::Json(json!({})))
}
