//! The model's limits on fields (ivschat-api.md §2 and §5.3), for everything that checks a value before
//! IVS Chat sees it: the emulator's validation, the messaging endpoint and the `kubectl ivschat` plugin.
//!
//! String lengths count Unicode code points, as Smithy does; attribute sizes count UTF-8 bytes of keys and
//! values. The patterns stay with the code that checks them (simple character classes checked by hand).

use std::ops::RangeInclusive;
use std::time::Duration;

/// RoomName and LoggingConfigurationName (the empty string is a valid name).
pub const RESOURCE_NAME_CHARS: RangeInclusive<usize> = 0..=128;
/// RoomIdentifier, LoggingConfigurationIdentifier and the tag operations' ResourceArn (ARNs only).
pub const ARN_CHARS: RangeInclusive<usize> = 1..=128;
/// LambdaArn of a message review handler (the empty string means no handler).
pub const LAMBDA_ARN_CHARS: RangeInclusive<usize> = 0..=170;
/// Room, logging-configuration, message and operation ids are exactly this long (`[a-zA-Z0-9]`).
pub const ID_CHARS: usize = 12;
/// UserID of chat tokens and DisconnectUser (any text).
pub const USER_ID_CHARS: RangeInclusive<usize> = 1..=128;
/// Reason of DeleteMessage and DisconnectUser.
pub const REASON_CHARS: RangeInclusive<usize> = 1..=256;
/// EventName of SendEvent.
pub const EVENT_NAME_CHARS: RangeInclusive<usize> = 1..=100;
/// PaginationToken (`nextToken`).
pub const NEXT_TOKEN_CHARS: RangeInclusive<usize> = 0..=1024;
/// S3 BucketName of a logging destination.
pub const BUCKET_NAME_CHARS: RangeInclusive<usize> = 3..=63;
/// CloudWatch LogGroupName of a logging destination.
pub const LOG_GROUP_NAME_CHARS: RangeInclusive<usize> = 1..=512;
/// Firehose DeliveryStreamName of a logging destination.
pub const DELIVERY_STREAM_NAME_CHARS: RangeInclusive<usize> = 1..=64;
/// TagKey.
pub const TAG_KEY_CHARS: RangeInclusive<usize> = 1..=128;
/// TagValue.
pub const TAG_VALUE_CHARS: RangeInclusive<usize> = 0..=256;

/// Tags per resource (model and docs), and keys per UntagResource.
pub const MAX_TAGS: usize = 50;
/// Logging configurations attached to one room.
pub const MAX_LOGGING_CONFIGURATIONS_PER_ROOM: usize = 3;
/// Chat-token and event attributes: "1 KB" in total, keys and values.
pub const ATTRIBUTES_MAX_BYTES: usize = 1024;

/// `maximumMessageLength` of a room, in code points per message.
pub const MAXIMUM_MESSAGE_LENGTH: RangeInclusive<i64> = 1..=500;
/// The `maximumMessageLength` of a room created without one.
pub const DEFAULT_MAXIMUM_MESSAGE_LENGTH: i64 = 500;
/// `maximumMessageRatePerSecond` of a room, all its clients together.
pub const MAXIMUM_MESSAGE_RATE_PER_SECOND: RangeInclusive<i64> = 1..=100;
/// The `maximumMessageRatePerSecond` of a room created without one.
pub const DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND: i64 = 10;
/// `sessionDurationInMinutes` of CreateChatToken.
pub const SESSION_DURATION_MINUTES: RangeInclusive<i64> = 1..=180;
/// The session of a chat token requested without a duration.
pub const DEFAULT_SESSION_DURATION_MINUTES: i64 = 60;
/// `maxResults` of ListRooms and ListLoggingConfigurations; the upper end is also the default page size.
pub const MAX_RESULTS: RangeInclusive<i64> = 1..=50;

/// How long an issued chat token can be used to connect (the CLI documentation's "1 minute").
pub const CHAT_TOKEN_VALIDITY: Duration = Duration::from_secs(60);

/// How long IVS Chat waits for a message review handler's answer before the room's `fallbackResult` decides
/// (the service quota "Message review handler timeout period": 200 ms, not adjustable).
pub const MESSAGE_REVIEW_TIMEOUT: Duration = Duration::from_millis(200);

/// Size of chat-token or event attributes as IVS Chat counts it: the UTF-8 bytes of every key and value.
pub fn attributes_size<'a>(
    attributes: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> usize {
    attributes
        .into_iter()
        .map(|(key, value)| key.len() + value.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn defaults_lie_within_their_ranges() {
        assert!(MAXIMUM_MESSAGE_LENGTH.contains(&DEFAULT_MAXIMUM_MESSAGE_LENGTH));
        assert_eq!(
            DEFAULT_MAXIMUM_MESSAGE_LENGTH,
            *MAXIMUM_MESSAGE_LENGTH.end()
        );
        assert!(MAXIMUM_MESSAGE_RATE_PER_SECOND.contains(&DEFAULT_MAXIMUM_MESSAGE_RATE_PER_SECOND));
        assert!(SESSION_DURATION_MINUTES.contains(&DEFAULT_SESSION_DURATION_MINUTES));
    }

    #[test]
    fn attributes_count_utf8_bytes_of_keys_and_values() {
        let attributes: BTreeMap<String, String> = [
            ("é".to_string(), "ab".to_string()),
            ("k".to_string(), String::new()),
        ]
        .into();
        assert_eq!(attributes_size(&attributes), 2 + 2 + 1);
        assert_eq!(attributes_size(&BTreeMap::new()), 0);
    }
}
