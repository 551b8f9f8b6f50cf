//! Schema pieces schemars cannot derive on its own: the tags map (value bounds, key rules in CEL) and the
//! transform that keeps optional fields non-nullable and descriptions in one paragraph.
//!
//! Why non-nullable: schemars marks every `Option` field `nullable: true`. The API server then keeps an
//! explicit `null` in the stored object, and CEL `has(self.x)` is true for it, so "exactly one of" rules
//! would count `s3: null` as set. Without `nullable`, the API server prunes nulls before validation and
//! `x: null` means the same as leaving `x` out.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;

/// Container transform (`#[schemars(transform = for_kubernetes)]`), applied to this schema and all its
/// subschemas:
/// - turns every `type: [T, "null"]` into `type: T` and removes `null` from `enum` lists; kube's own
///   transforms (`AddNullable`, `OptionalEnum`) run later on the whole CRD and then find no `null` left
///   to turn into `nullable: true`;
/// - joins the lines of wrapped doc comments, so that `kubectl explain` reflows each description as one
///   paragraph instead of keeping the source line breaks (blank lines still separate paragraphs).
pub fn for_kubernetes(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        rewrite(object);
    }
}

fn rewrite(object: &mut serde_json::Map<String, Value>) {
    if let Some(Value::String(description)) = object.get_mut("description") {
        *description = unwrap_lines(description);
    }
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".to_owned(), only);
        }
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    // `Option<Enum>` comes out as `anyOf: [<enum schema>, {type: null}]`: keep the enum schema alone.
    if let Some(Value::Array(any_of)) = object.get("anyOf") {
        let non_null: Vec<Value> = any_of
            .iter()
            .filter(|s| !is_null_schema(s))
            .cloned()
            .collect();
        if non_null.len() < any_of.len() {
            object.remove("anyOf");
            if let [Value::Object(single)] = non_null.as_slice() {
                for (key, value) in single {
                    object.entry(key.clone()).or_insert_with(|| value.clone());
                }
            } else if !non_null.is_empty() {
                object.insert("anyOf".to_owned(), Value::Array(non_null));
            }
        }
    }
    for value in object.values_mut() {
        match value {
            Value::Object(child) => rewrite(child),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(child) = item {
                        rewrite(child);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Joins lines within a paragraph with a space; paragraphs (separated by a blank line) stay separate.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        || schema
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|values| values.iter().all(Value::is_null))
}

/// Schema of the `tags` field of both kinds: a map of at most 47 entries (AWS allows 50 per resource and
/// the operator adds 3 ownership tags), keys 1-128 characters and not under a reserved prefix, values
/// 0-256 characters. Key rules are CEL (structural schemas have no `propertyNames`); the map bound keeps
/// their cost low.
pub fn tags(_generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "AWS tags for the resource (key to value). At most 47 entries: AWS allows 50 tags per \
            resource and the operator adds three ownership tags (ivschat.dev/owner-uid, ivschat.dev/namespace, \
            ivschat.dev/name). Keys are 1-128 characters and must not start with `aws:` (reserved by AWS, any \
            letter case) or `ivschat.dev/` (reserved for the operator); values are 0-256 characters.",
        "type": "object",
        "maxProperties": super::MAX_USER_TAGS,
        "additionalProperties": {
            "type": "string",
            "maxLength": 256,
        },
        "x-kubernetes-validations": [
            {
                "rule": "self.all(k, size(k) >= 1 && size(k) <= 128)",
                "message": "spec.tags keys must be 1 to 128 characters long",
            },
            {
                "rule": "self.all(k, !k.lowerAscii().startsWith('aws:'))",
                "message": "spec.tags keys must not start with aws: (reserved by AWS)",
            },
            {
                "rule": "self.all(k, !k.startsWith('ivschat.dev/'))",
                "message": "spec.tags keys must not start with ivschat.dev/ (reserved for the operator's ownership tags)",
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transformed(value: Value) -> Value {
        let mut schema = Schema::try_from(value).expect("a schema object");
        for_kubernetes(&mut schema);
        schema.to_value()
    }

    #[test]
    fn optional_scalars_lose_their_null_type() {
        let out = transformed(json!({
            "type": "object",
            "properties": { "name": { "type": ["string", "null"], "maxLength": 3 } }
        }));
        assert_eq!(
            out["properties"]["name"],
            json!({ "type": "string", "maxLength": 3 })
        );
    }

    #[test]
    fn optional_enums_lose_their_null_branch() {
        let out = transformed(json!({
            "properties": { "mode": { "anyOf": [
                { "type": "string", "enum": ["A", "B"] },
                { "type": "null" }
            ], "description": "d" } }
        }));
        assert_eq!(
            out["properties"]["mode"],
            json!({ "type": "string", "enum": ["A", "B"], "description": "d" })
        );
        let out = transformed(json!({ "type": ["string", "null"], "enum": ["A", null] }));
        assert_eq!(out, json!({ "type": "string", "enum": ["A"] }));
    }

    #[test]
    fn wrapped_descriptions_become_one_paragraph() {
        let out = transformed(json!({
            "description": "first line\nsecond line\n\nnext paragraph\nends",
            "properties": { "a": { "type": "string", "description": "x\ny" } }
        }));
        assert_eq!(
            out["description"],
            "first line second line\n\nnext paragraph ends"
        );
        assert_eq!(out["properties"]["a"]["description"], "x y");
    }

    #[test]
    fn nested_arrays_are_visited() {
        let out = transformed(json!({
            "type": ["array", "null"],
            "items": { "type": "object", "properties": { "a": { "type": ["integer", "null"] } } }
        }));
        assert_eq!(out["type"], "array");
        assert_eq!(out["items"]["properties"]["a"]["type"], "integer");
    }
}
