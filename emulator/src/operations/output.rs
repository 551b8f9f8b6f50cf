//! What a successful operation answers ([`Output`]) and the page shape both list operations share.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::service::ScopedService;
use crate::store::Page;

/// A successful response.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with this plain-text body (the admin metrics endpoint).
    Text(String),
    /// 204 without a body.
    NoContent,
}

pub(super) fn page_json<T>(
    service: &ScopedService<'_>,
    list: &str,
    filters: &[&str],
    page: Page<T>,
    item: impl Fn(&T) -> Value,
) -> Result<Value, ApiError> {
    let mut body = Map::new();
    body.insert(
        list.to_string(),
        Value::Array(page.items.iter().map(item).collect()),
    );
    if let Some(cursor) = page.next {
        body.insert(
            "nextToken".into(),
            json!(service.tokens.issue(list, filters, cursor)?),
        );
    }
    Ok(Value::Object(body))
}
