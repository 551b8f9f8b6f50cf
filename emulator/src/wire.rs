//! The wire form of values that both faces of the emulator write: the HTTP API's JSON bodies and the
//! messaging endpoint's entities.

use jiff::Timestamp;

/// ISO-8601 / RFC 3339 in UTC with milliseconds, e.g. `2022-03-16T04:44:09.123Z`.
pub fn wire_time(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_times_are_rfc3339_utc_with_milliseconds() {
        let time = Timestamp::from_millisecond(1_647_405_849_123).expect("valid");
        assert_eq!(wire_time(time), "2022-03-16T04:44:09.123Z");
        let whole = Timestamp::from_second(1_647_405_849).expect("valid");
        assert_eq!(wire_time(whole), "2022-03-16T04:44:09.000Z");
    }
}
