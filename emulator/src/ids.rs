//! Identifiers in the AWS formats: 12-character alphanumeric resource / message / event ids, room and
//! logging-configuration ARNs (build and parse), request ids and opaque chat tokens.

use base64::Engine as _;
use ivschat_api::limits::ID_CHARS;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh random id: 12 characters of `[a-zA-Z0-9]`, like `g1H2I3j4k5L6`.
pub fn new_id() -> String {
    (0..ID_CHARS)
        .map(|_| char::from(ALPHANUMERIC[rand::random_range(0..ALPHANUMERIC.len())]))
        .collect()
}

/// True for a well-formed 12-character alphanumeric id (MessageID, RoomID, ...).
pub fn is_valid_id(id: &str) -> bool {
    id.len() == ID_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A request id in the UUID layout AWS uses for `x-amzn-RequestId`.
pub fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An opaque chat token. URL-safe base64 without padding, so only `[A-Za-z0-9_-]` appears: the WebSocket
/// subprotocol header that carries the token accepts those characters (see ivschat-messaging.md §1).
pub fn new_chat_token() -> String {
    let bytes: [u8; 48] = rand::random();
    format!(
        "AQICAH{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The two resource types that have ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Room,
    LoggingConfiguration,
}

impl ResourceKind {
    /// The resource-type segment of the ARN (`room/...`, `logging-configuration/...`).
    pub fn arn_segment(self) -> &'static str {
        match self {
            ResourceKind::Room => "room",
            ResourceKind::LoggingConfiguration => "logging-configuration",
        }
    }
}

/// The region and account a set of ARNs belongs to (the partition is always `aws`): the unit that holds
/// resources, ids, quotas and pagination (one [`crate::store::Store`] each).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArnScope {
    pub region: String,
    pub account_id: String,
}

impl ArnScope {
    pub fn new(account_id: &str, region: &str) -> ArnScope {
        ArnScope {
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        }
    }

    pub fn arn(&self, kind: ResourceKind, id: &str) -> String {
        format!(
            "arn:aws:ivschat:{}:{}:{}/{}",
            self.region,
            self.account_id,
            kind.arn_segment(),
            id
        )
    }
}

/// A syntactically valid IVS Chat ARN, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedArn<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
    pub kind: ResourceKind,
    pub id: &'a str,
}

impl ParsedArn<'_> {
    /// The scope the resource belongs to.
    pub fn scope(&self) -> ArnScope {
        ArnScope::new(self.account_id, self.region)
    }

    /// True when the ARN names a resource of this region and account.
    pub fn is_in(&self, scope: &ArnScope) -> bool {
        self.region == scope.region && self.account_id == scope.account_id
    }
}

/// Parses `arn:aws:ivschat:<region>:<account>:<room|logging-configuration>/<id>` with the character classes of
/// the model's patterns (`[a-z0-9-]+` region, `[0-9]+` account, `[a-zA-Z0-9-]+` id). Returns `None` when the
/// text does not match.
pub fn parse_arn(text: &str) -> Option<ParsedArn<'_>> {
    let rest = text.strip_prefix("arn:aws:ivschat:")?;
    let (region, rest) = rest.split_once(':')?;
    let (account_id, rest) = rest.split_once(':')?;
    let (kind_text, id) = rest.split_once('/')?;
    let kind = match kind_text {
        "room" => ResourceKind::Room,
        "logging-configuration" => ResourceKind::LoggingConfiguration,
        _ => return None,
    };
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let account_ok = !account_id.is_empty() && account_id.bytes().all(|b| b.is_ascii_digit());
    let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (region_ok && account_ok && id_ok).then_some(ParsedArn {
        region,
        account_id,
        kind,
        id,
    })
}

/// The id part of anything that looks like an ARN (text after the last `/`), reduced to the characters the
/// error member `resourceId` allows (`[a-zA-Z0-9]+`); used to name a resource in 404 / 409 errors.
pub fn resource_id_for_error(identifier: &str) -> String {
    let tail = identifier.rsplit('/').next().unwrap_or(identifier);
    let cleaned: String = tail.chars().filter(char::is_ascii_alphanumeric).collect();
    if cleaned.is_empty() {
        "unknown".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ArnScope {
        ArnScope {
            region: "us-west-2".into(),
            account_id: "123456789012".into(),
        }
    }

    #[test]
    fn ids_have_the_aws_format_and_differ() {
        let ids: std::collections::HashSet<String> = (0..200).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 200, "ids must not repeat");
        for id in &ids {
            assert!(is_valid_id(id), "{id}");
        }
        assert!(!is_valid_id("short"));
        assert!(!is_valid_id("abcdefghijk!"));
        assert!(!is_valid_id("abcdefghijklm"));
    }

    #[test]
    fn arns_round_trip() {
        let arn = scope().arn(ResourceKind::Room, "g1H2I3j4k5L6");
        assert_eq!(
            arn,
            "arn:aws:ivschat:us-west-2:123456789012:room/g1H2I3j4k5L6"
        );
        let parsed = parse_arn(&arn).expect("room arn parses");
        assert_eq!(parsed.kind, ResourceKind::Room);
        assert_eq!(parsed.id, "g1H2I3j4k5L6");
        assert!(parsed.is_in(&scope()));

        let arn = scope().arn(ResourceKind::LoggingConfiguration, "ABcdef34ghIJ");
        assert_eq!(
            arn,
            "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/ABcdef34ghIJ"
        );
        assert_eq!(
            parse_arn(&arn).map(|p| p.kind),
            Some(ResourceKind::LoggingConfiguration)
        );
    }

    #[test]
    fn foreign_and_malformed_arns() {
        let foreign =
            parse_arn("arn:aws:ivschat:eu-west-1:123456789012:room/abc").expect("valid syntax");
        assert!(!foreign.is_in(&scope()));
        for bad in [
            "",
            "g1H2I3j4k5L6",
            "arn:aws:ivs:us-west-2:123456789012:channel/abc",
            "arn:aws-cn:ivschat:cn-north-1:123456789012:room/abc",
            "arn:aws:ivschat:US-WEST-2:123456789012:room/abc",
            "arn:aws:ivschat:us-west-2:12345678901x:room/abc",
            "arn:aws:ivschat:us-west-2:123456789012:room/",
            "arn:aws:ivschat:us-west-2:123456789012:room/a_b",
            "arn:aws:ivschat:us-west-2:123456789012:room/a/b",
            "arn:aws:ivschat:us-west-2:123456789012:channel/abc",
        ] {
            assert_eq!(parse_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_ids_and_tokens() {
        let request_id = new_request_id();
        assert_eq!(request_id.len(), 36);
        assert_eq!(request_id.matches('-').count(), 4);
        let token = new_chat_token();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
        assert_ne!(token, new_chat_token());
    }

    #[test]
    fn error_resource_ids_are_alphanumeric() {
        assert_eq!(
            resource_id_for_error("arn:aws:ivschat:us-west-2:1:room/abc-DEF"),
            "abcDEF"
        );
        assert_eq!(resource_id_for_error("///"), "unknown");
    }
}
