//! The model's constraints (ivschat-api.md §2; the limits are `ivschat_api::limits`): string lengths (in Unicode code points, as Smithy counts them),
//! patterns, integer ranges, list and map sizes and enums. A [`Validator`] collects every violation of a request
//! so that one ValidationException names all bad fields.
//!
//! The patterns are simple character classes, so they are checked by hand rather than with regexes.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use ivschat_api::limits::{self, ATTRIBUTES_MAX_BYTES};

use super::error::{ApiError, FieldError};
use super::ids;

/// Collects field violations of one request.
#[derive(Debug, Default)]
pub struct Validator {
    fields: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Validator::default()
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.fields.push(FieldError {
            name: field.to_string(),
            message: message.into(),
        });
    }

    /// `Ok(())` when nothing failed; otherwise one ValidationException listing every failure.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.fields))
        }
    }

    /// A required member; returns it when present so the caller can validate it further.
    pub fn required<'a, T>(&mut self, field: &str, value: &'a Option<T>) -> Option<&'a T> {
        if value.is_none() {
            self.fail(field, "Member must not be null");
        }
        value.as_ref()
    }

    /// Length bounds in Unicode code points. Returns false (after recording it) when violated.
    pub fn length(&mut self, field: &str, value: &str, allowed: RangeInclusive<usize>) -> bool {
        let (min, max) = allowed.into_inner();
        let length = value.chars().count();
        if length < min {
            self.fail(
                field,
                format!("Member must have length greater than or equal to {min}"),
            );
            false
        } else if length > max {
            self.fail(
                field,
                format!("Member must have length less than or equal to {max}"),
            );
            false
        } else {
            true
        }
    }

    /// A pattern check; `pattern` is the model's regex, quoted in the message.
    pub fn pattern(&mut self, field: &str, matches: bool, pattern: &str) -> bool {
        if !matches {
            self.fail(
                field,
                format!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
        matches
    }

    pub fn range(&mut self, field: &str, value: i64, allowed: RangeInclusive<i64>) -> bool {
        let (min, max) = allowed.into_inner();
        if value < min {
            self.fail(
                field,
                format!("Member must have value greater than or equal to {min}"),
            );
            false
        } else if value > max {
            self.fail(
                field,
                format!("Member must have value less than or equal to {max}"),
            );
            false
        } else {
            true
        }
    }

    pub fn size(&mut self, field: &str, size: usize, max: usize) -> bool {
        if size > max {
            self.fail(field, format!("Member must have at most {max} entries"));
            false
        } else {
            true
        }
    }

    pub fn one_of(&mut self, field: &str, value: &str, allowed: &[&str]) -> bool {
        let ok = allowed.contains(&value);
        if !ok {
            self.fail(
                field,
                format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
        ok
    }

    // ---- the model's shapes -------------------------------------------------------------------------------

    /// RoomName / LoggingConfigurationName: 0–128, `^[a-zA-Z0-9-_]*$`.
    pub fn resource_name(&mut self, field: &str, value: &str) {
        if self.length(field, value, limits::RESOURCE_NAME_CHARS) {
            self.pattern(field, is_resource_name(value), "^[a-zA-Z0-9-_]*$");
        }
    }

    /// RoomIdentifier: 1–128 and a room ARN.
    pub fn room_identifier(&mut self, field: &str, value: &str) {
        if self.length(field, value, limits::ARN_CHARS) {
            let ok = ids::parse_arn(value).is_some_and(|arn| arn.kind == ids::ResourceKind::Room);
            self.pattern(
                field,
                ok,
                "^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:room/[a-zA-Z0-9-]+$",
            );
        }
    }

    /// LoggingConfigurationIdentifier: 1–128 and a logging-configuration ARN.
    pub fn logging_configuration_identifier(&mut self, field: &str, value: &str) {
        if self.length(field, value, limits::ARN_CHARS) {
            let ok = ids::parse_arn(value)
                .is_some_and(|arn| arn.kind == ids::ResourceKind::LoggingConfiguration);
            self.pattern(
                field,
                ok,
                "^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:logging-configuration/[a-zA-Z0-9-]+$",
            );
        }
    }

    /// ResourceArn of the tag operations: 1–128 and a room or logging-configuration ARN (the model's regex,
    /// read literally, matches neither; see ivschat-api.md §2.1).
    pub fn resource_arn(&mut self, field: &str, value: &str) {
        if self.length(field, value, limits::ARN_CHARS) {
            self.pattern(
                field,
                ids::parse_arn(value).is_some(),
                "^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:(room|logging-configuration)/[a-zA-Z0-9-]+$",
            );
        }
    }

    /// LambdaArn: 0–170, empty or `^arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:function:.+`.
    pub fn lambda_arn(&mut self, field: &str, value: &str) {
        if self.length(field, value, limits::LAMBDA_ARN_CHARS) {
            self.pattern(
                field,
                is_lambda_arn(value),
                "^$|^arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:function:.+",
            );
        }
    }

    /// MessageID / ID: exactly 12 characters of `[a-zA-Z0-9]`.
    pub fn message_id(&mut self, field: &str, value: &str) {
        if self.length(field, value, limits::ID_CHARS..=limits::ID_CHARS) {
            self.pattern(
                field,
                value.bytes().all(|b| b.is_ascii_alphanumeric()),
                "^[a-zA-Z0-9]+$",
            );
        }
    }

    /// Tags: at most 50 entries, keys 1–128, values 0–256.
    pub fn tags(&mut self, field: &str, tags: &BTreeMap<String, String>) {
        self.size(field, tags.len(), limits::MAX_TAGS);
        for (key, value) in tags {
            self.tag_key(field, key);
            self.length(&format!("{field}.{key}"), value, limits::TAG_VALUE_CHARS);
        }
    }

    /// TagKey: 1–128.
    pub fn tag_key(&mut self, field: &str, key: &str) {
        if !limits::TAG_KEY_CHARS.contains(&key.chars().count()) {
            self.fail(
                field,
                format!(
                    "Tag keys must have a length between {} and {}",
                    limits::TAG_KEY_CHARS.start(),
                    limits::TAG_KEY_CHARS.end()
                ),
            );
        }
    }

    /// ChatTokenAttributes / EventAttributes: "1 KB total" (keys and values, counted in UTF-8 bytes).
    pub fn attributes(&mut self, field: &str, attributes: &BTreeMap<String, String>) {
        if limits::attributes_size(attributes) > ATTRIBUTES_MAX_BYTES {
            self.fail(
                field,
                format!("Attributes must not exceed {ATTRIBUTES_MAX_BYTES} bytes in total (keys and values)"),
            );
        }
    }
}

/// `^[a-zA-Z0-9-_]*$`
pub fn is_resource_name(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^$|^arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:function:.+`
pub fn is_lambda_arn(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let Some(rest) = value.strip_prefix("arn:aws:lambda:") else {
        return false;
    };
    let Some((region, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(function) = rest.strip_prefix("function:") else {
        return false;
    };
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    region_ok && account_ok && !function.is_empty()
}

/// BucketName: 3–63, `[a-z0-9-.]+`.
pub fn is_bucket_name(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// LogGroupName: `^[\.\-_/#A-Za-z0-9]+$`.
pub fn is_log_group_name(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-_/#".contains(&b))
}

/// DeliveryStreamName: `[a-zA-Z0-9_.-]+`.
pub fn is_delivery_stream_name(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(validator: Validator) -> Vec<String> {
        match validator.finish() {
            Ok(()) => Vec::new(),
            Err(ApiError::Validation { fields, .. }) => {
                fields.into_iter().map(|f| f.name).collect()
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn names() {
        let mut v = Validator::new();
        v.resource_name("name", "");
        v.resource_name("name", "test-room_1");
        assert!(fields_of(v).is_empty());
        let mut v = Validator::new();
        v.resource_name("a", "has space");
        v.resource_name("b", &"x".repeat(129));
        v.resource_name("c", "é");
        assert_eq!(fields_of(v), vec!["a", "b", "c"]);
    }

    #[test]
    fn lengths_count_code_points() {
        let mut v = Validator::new();
        assert!(v.length("userId", &"é".repeat(128), 1..=128));
        assert!(!v.length("userId", &"é".repeat(129), 1..=128));
        assert!(!v.length("userId", "", 1..=128));
        assert_eq!(fields_of(v), vec!["userId", "userId"]);
    }

    #[test]
    fn lambda_arns() {
        assert!(is_lambda_arn(""));
        assert!(is_lambda_arn(
            "arn:aws:lambda:us-west-2:123456789012:function:review"
        ));
        assert!(is_lambda_arn(
            "arn:aws:lambda:us-west-2:123456789012:function:review:$LATEST"
        ));
        assert!(!is_lambda_arn(
            "arn:aws:lambda:us-west-2:12345678901:function:review"
        ));
        assert!(!is_lambda_arn(
            "arn:aws:lambda:us-west-2:123456789012:function:"
        ));
        assert!(!is_lambda_arn("arn:aws:s3:::bucket"));
        let mut v = Validator::new();
        v.lambda_arn(
            "messageReviewHandler.uri",
            &format!(
                "arn:aws:lambda:us-west-2:123456789012:function:{}",
                "f".repeat(150)
            ),
        );
        assert_eq!(fields_of(v), vec!["messageReviewHandler.uri"]);
    }

    #[test]
    fn destinations() {
        assert!(is_bucket_name("demo-logging.bucket"));
        assert!(!is_bucket_name("Demo"));
        assert!(is_log_group_name("/aws/ivs#chat_log-group.1"));
        assert!(!is_log_group_name("a b"));
        assert!(is_delivery_stream_name("stream_1.a-b"));
        assert!(!is_delivery_stream_name("stream/1"));
    }

    #[test]
    fn identifiers() {
        let mut v = Validator::new();
        v.room_identifier(
            "identifier",
            "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234",
        );
        v.logging_configuration_identifier(
            "l",
            "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/x1",
        );
        v.resource_arn(
            "resourceArn",
            "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/x1",
        );
        assert!(fields_of(v).is_empty());
        let mut v = Validator::new();
        v.room_identifier("identifier", "abcdEFGH1234");
        v.room_identifier(
            "roomIdentifier",
            "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/x1",
        );
        v.logging_configuration_identifier("l", "arn:aws:ivschat:us-west-2:123456789012:room/x1");
        v.resource_arn(
            "resourceArn",
            "arn:aws:ivs:us-west-2:123456789012:channel/x1",
        );
        v.room_identifier(
            "long",
            &format!(
                "arn:aws:ivschat:us-west-2:123456789012:room/{}",
                "a".repeat(100)
            ),
        );
        assert_eq!(
            fields_of(v),
            vec!["identifier", "roomIdentifier", "l", "resourceArn", "long"]
        );
    }

    #[test]
    fn ranges_sizes_enums_ids() {
        let mut v = Validator::new();
        assert!(v.range("maximumMessageLength", 500, 1..=500));
        assert!(!v.range("maximumMessageLength", 501, 1..=500));
        assert!(!v.range("maximumMessageRatePerSecond", -1, 1..=100));
        assert!(!v.size("loggingConfigurationIdentifiers", 4, 3));
        assert!(!v.one_of("capabilities", "SHOUT", &["SEND_MESSAGE"]));
        v.message_id("id", "abcdefghijkl");
        v.message_id("badId", "abcdefghijk-");
        assert_eq!(
            fields_of(v),
            vec![
                "maximumMessageLength",
                "maximumMessageRatePerSecond",
                "loggingConfigurationIdentifiers",
                "capabilities",
                "badId"
            ]
        );
    }

    #[test]
    fn tags_and_attributes() {
        let mut v = Validator::new();
        let tags: BTreeMap<String, String> = (0..51)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        v.tags("tags", &tags);
        let mut v2 = Validator::new();
        let tags: BTreeMap<String, String> = [
            ("".to_string(), "v".to_string()),
            ("k".to_string(), "v".repeat(257)),
        ]
        .into();
        v2.tags("tags", &tags);
        assert_eq!(fields_of(v), vec!["tags"]);
        assert_eq!(fields_of(v2), vec!["tags", "tags.k"]);
        let mut v = Validator::new();
        let attributes: BTreeMap<String, String> = [("a".to_string(), "b".repeat(1023))].into();
        v.attributes("attributes", &attributes);
        assert!(fields_of(v).is_empty());
        let mut v = Validator::new();
        let attributes: BTreeMap<String, String> = [("ab".to_string(), "b".repeat(1023))].into();
        v.attributes("attributes", &attributes);
        assert_eq!(fields_of(v), vec!["attributes"]);
    }
}
