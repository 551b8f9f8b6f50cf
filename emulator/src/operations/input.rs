//! Reading an operation's input off the wire: the JSON body (lenient as AWS is), the `resourceArn` path label
//! and `tagKeys` query of the tag operations, the model's boxed integers, and the input members that more than
//! one operation validates the same way (identifiers, `maxResults`, `nextToken`).

use ivschat_api::limits;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::validate::Validator;

/// Decodes a JSON body; an empty body counts as `{}` (every operation's members are optional on the wire).
/// Unknown members are ignored and `null` means absent, as AWS does.
pub(super) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|err| ApiError::Serialization {
        message: format!("Could not parse the request body as the operation's input: {err}"),
    })
}

/// Percent-decodes the `{resourceArn}` label and validates it as a room or logging-configuration ARN.
pub(super) fn resource_arn(label: Option<&str>) -> Result<String, ApiError> {
    let label = label.unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(label)
        .decode_utf8()
        .map_err(|_| {
            ApiError::field(
                "resourceArn",
                "Member must be valid UTF-8 after percent-decoding",
            )
        })?
        .into_owned();
    let mut v = Validator::new();
    v.resource_arn("resourceArn", &decoded);
    v.finish()?;
    Ok(decoded)
}

/// The values of every `tagKeys` query parameter, percent-decoded (`+` is taken literally, as the SDKs encode a
/// space as `%20`). `None` when the parameter is absent.
pub(super) fn tag_keys_from_query(query: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    let mut keys: Option<Vec<String>> = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| {
                    ApiError::field(
                        "tagKeys",
                        "Query parameters must be valid UTF-8 after percent-decoding",
                    )
                })
        };
        if decode(name)? == "tagKeys" {
            keys.get_or_insert_with(Vec::new).push(decode(value)?);
        }
    }
    Ok(keys)
}

/// The model's boxed integers carry `@default(0)` in Smithy-2 SDKs, so an explicit 0 is read as "not set".
pub(super) fn unset_if_zero(value: Option<i64>) -> Option<i64> {
    value.filter(|value| *value != 0)
}

pub(super) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IdentifierInput {
    identifier: Option<String>,
}

pub(super) fn required_identifier(input: &IdentifierInput, room: bool) -> Result<String, ApiError> {
    let mut v = Validator::new();
    if let Some(identifier) = v.required("identifier", &input.identifier) {
        if room {
            v.room_identifier("identifier", identifier);
        } else {
            v.logging_configuration_identifier("identifier", identifier);
        }
    }
    v.finish()?;
    Ok(input.identifier.clone().unwrap_or_default())
}

pub(super) fn max_results(v: &mut Validator, value: Option<i64>) -> usize {
    // The largest page is also the default one.
    let value = unset_if_zero(value).unwrap_or(*limits::MAX_RESULTS.end());
    if v.range("maxResults", value, limits::MAX_RESULTS) {
        usize::try_from(value).unwrap_or(1)
    } else {
        1
    }
}

pub(super) fn validate_next_token(v: &mut Validator, token: &Option<String>) {
    if let Some(token) = token {
        v.length("nextToken", token, limits::NEXT_TOKEN_CHARS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::rooms::CreateRoomInput;

    #[test]
    fn tag_keys_come_from_repeated_query_parameters() {
        assert_eq!(tag_keys_from_query(None).expect("ok"), None);
        assert_eq!(tag_keys_from_query(Some("other=1")).expect("ok"), None);
        let keys =
            tag_keys_from_query(Some("tagKeys=a&tagKeys=b%20c&tagKeys=d%2Be+f&x=y")).expect("ok");
        assert_eq!(
            keys,
            Some(vec![
                "a".to_string(),
                "b c".to_string(),
                "d+e+f".to_string()
            ])
        );
        assert_eq!(
            tag_keys_from_query(Some("tagKeys=")).expect("ok"),
            Some(vec![String::new()])
        );
        assert!(tag_keys_from_query(Some("tagKeys=%FF")).is_err());
    }

    #[test]
    fn resource_arn_labels_are_percent_decoded_and_validated() {
        let label = "arn%3Aaws%3Aivschat%3Aus-west-2%3A123456789012%3Aroom%2FabcdEFGH1234";
        assert_eq!(
            resource_arn(Some(label)).expect("valid"),
            "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234"
        );
        assert!(matches!(
            resource_arn(Some("not-an-arn")),
            Err(ApiError::Validation { .. })
        ));
        assert!(matches!(
            resource_arn(Some("%FF%FE")),
            Err(ApiError::Validation { .. })
        ));
    }

    #[test]
    fn bodies_decode_leniently_but_reject_wrong_types() {
        let input: IdentifierInput = decode(b"").expect("empty body is {}");
        assert!(input.identifier.is_none());
        let input: IdentifierInput = decode(br#"{"identifier": null, "unknown": [1, 2]}"#)
            .expect("null and unknown members");
        assert!(input.identifier.is_none());
        for bad in [
            &b"{"[..],
            b"[]",
            b"\"x\"",
            b"{\"identifier\": 5}",
            b"\xff\xfe",
            b"{\"identifier\": \"\xff\"}",
        ] {
            assert!(
                matches!(
                    decode::<IdentifierInput>(bad),
                    Err(ApiError::Serialization { .. })
                ),
                "{bad:?}"
            );
        }
        // Floats and integers beyond i64 are not integers of the model: serialization errors, not panics.
        for bad in [
            &br#"{"maximumMessageLength": 1e3}"#[..],
            br#"{"maximumMessageLength": 99999999999999999999}"#,
        ] {
            assert!(matches!(
                decode::<CreateRoomInput>(bad),
                Err(ApiError::Serialization { .. })
            ));
        }
    }
}
