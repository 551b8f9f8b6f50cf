//! Durations as people write them on the command line and in the emulator's admin API: `10m`, `30s`,
//! `1h30m`, `500ms` (jiff's friendly format), or a bare, possibly fractional, number of seconds.
//!
//! It lives in this crate rather than in the operator because the operator's flags and the emulator's
//! (flags and admin API) must read durations the same way, and the emulator depends on nothing of the
//! operator: this small crate is what both already share.

use std::time::Duration;

/// Parses a duration; zero is allowed (`0`, `0s`), negative durations are not.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|err| format!("invalid duration {text:?}: {err}"));
    }
    let signed: jiff::SignedDuration = text.parse().map_err(|err| {
        format!("invalid duration {text:?} (expected e.g. 10m, 30s, 500ms): {err}")
    })?;
    Duration::try_from(signed).map_err(|_| format!("duration {text:?} must not be negative"))
}

/// Like [`parse_duration`], for periods that must be longer than zero (a resync period, a lease).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("duration {:?} must be positive", text.trim()));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_and_bare_durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 45 "), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn positive_durations_refuse_zero() {
        assert_eq!(parse_positive_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("-5s").is_err());
    }
}
