//! Times as people and devices write them, to and from microseconds since the Unix epoch.
//!
//! Job: parse RFC 3339 text (any offset, optional fractional seconds) and unix seconds into
//! `i64` microseconds UTC, and format such a value back as RFC 3339 with a `Z`.
//!
//! Invariants:
//! - every value returned by a parser lies in [`MIN_US`]..=[`MAX_US`], i.e. the UTC years
//!   1970..=9999; anything else is an error that says so;
//! - digits finer than a microsecond are truncated, never rounded up into the next second;
//! - `parse_time(&format_time(t)) == Ok(t)` for every `t` in range.

use chrono::DateTime;

use super::InputError;

/// 1970-01-01T00:00:00Z, the earliest time accepted.
pub const MIN_US: i64 = 0;
/// 9999-12-31T23:59:59.999999Z, the latest time accepted.
pub const MAX_US: i64 = 253_402_300_799_999_999;

const EXAMPLE: &str = "2026-11-20T14:03:00Z";

fn check_range(us: i64, original: &str) -> Result<i64, InputError> {
    if (MIN_US..=MAX_US).contains(&us) {
        Ok(us)
    } else {
        Err(InputError::invalid(format!(
            "time {original:?} is outside the years 1970..=9999 (UTC); \
             give a time such as {EXAMPLE}"
        )))
    }
}

/// Parses an RFC 3339 time such as `2026-11-20T14:03:00Z`, `2026-11-20T15:03:00.25+01:00`
/// into microseconds since the Unix epoch (UTC). Surrounding whitespace is ignored.
pub fn parse_time(s: &str) -> Result<i64, InputError> {
    let t = s.trim();
    let dt = DateTime::parse_from_rfc3339(t).map_err(|e| {
        InputError::invalid(format!(
            "invalid time {s:?}: expected RFC 3339 such as {EXAMPLE} ({e})"
        ))
    })?;
    // Years 0000..=9999 with any offset stay far inside i64 microseconds.
    check_range(dt.timestamp_micros(), s)
}

/// Like [`parse_time`], but also accepts unix seconds: `1763647380` or `1763647380.5`.
pub fn parse_time_or_unix(s: &str) -> Result<i64, InputError> {
    let t = s.trim();
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    let looks_numeric = !unsigned.is_empty()
        && unsigned.chars().all(|c| c.is_ascii_digit() || c == '.')
        && unsigned.chars().any(|c| c.is_ascii_digit());
    if !looks_numeric {
        return parse_time(s).map_err(|_| {
            InputError::invalid(format!(
                "invalid time {s:?}: expected RFC 3339 such as {EXAMPLE} \
                 or unix seconds such as 1763647380"
            ))
        });
    }
    let bad = || {
        InputError::invalid(format!(
            "invalid time {s:?}: unix seconds must look like 1763647380 or 1763647380.5"
        ))
    };
    if t.starts_with('-') {
        return check_range(-1, s);
    }
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (unsigned, ""),
    };
    if int_part.is_empty() || frac_part.contains('.') {
        return Err(bad());
    }
    let trimmed_int = int_part.trim_start_matches('0');
    if trimmed_int.len() > 12 {
        // More than 12 digits of seconds is far past the year 9999.
        return check_range(-1, s);
    }
    let secs: i64 = if trimmed_int.is_empty() {
        0
    } else {
        trimmed_int.parse().map_err(|_| bad())?
    };
    let mut micros: i64 = 0;
    let mut scale: i64 = 100_000;
    for c in frac_part.chars().take(6) {
        let digit = c.to_digit(10).ok_or_else(bad)?;
        micros += i64::from(digit) * scale;
        scale /= 10;
    }
    let us = secs
        .checked_mul(1_000_000)
        .and_then(|v| v.checked_add(micros))
        .unwrap_or(-1);
    check_range(us, s)
}

/// Converts unix seconds given as a floating-point number (as in JSON) to microseconds,
/// rounding to the nearest microsecond and refusing non-finite or out-of-range values.
pub fn unix_seconds_to_us(secs: f64) -> Result<i64, InputError> {
    let shown = format!("{secs}");
    if !(0.0..253_402_300_800.0).contains(&secs) {
        return check_range(-1, &shown);
    }
    // In range, so the product fits comfortably in i64.
    check_range((secs * 1e6).round() as i64, &shown)
}

pub use crate::util::format_time;

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_763_647_380_000_000; // 2025-11-20T14:03:00Z

    #[test]
    fn parses_rfc3339_variants() {
        assert_eq!(parse_time("2025-11-20T14:03:00Z").unwrap(), T0);
        assert_eq!(parse_time(" 2025-11-20T15:03:00+01:00 ").unwrap(), T0);
        assert_eq!(parse_time("2025-11-20T09:03:00-05:00").unwrap(), T0);
        assert_eq!(parse_time("2025-11-20T14:03:00.25Z").unwrap(), T0 + 250_000);
        assert_eq!(parse_time("2025-11-20t14:03:00.000001z").unwrap(), T0 + 1);
        // Nanoseconds are truncated, not rounded.
        assert_eq!(
            parse_time("2025-11-20T14:03:00.9999999Z").unwrap(),
            T0 + 999_999
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("9999-12-31T23:59:59.999999Z").unwrap(), MAX_US);
    }

    #[test]
    fn rejects_bad_times() {
        for bad in [
            "",
            "x",
            "2025-11-20",
            "2025-11-20T14:03:00",
            "2025-13-01T00:00:00Z",
        ] {
            let e = parse_time(bad).unwrap_err().to_string();
            assert!(
                e.contains("expected RFC 3339 such as 2026-11-20T14:03:00Z"),
                "{e}"
            );
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        for early in [
            "1969-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "1970-01-01T00:30:00+01:00",
        ] {
            let e = parse_time(early).unwrap_err().to_string();
            assert!(e.contains("outside the years 1970..=9999"), "{e}");
        }
        let e = parse_time("9999-12-31T23:00:00-05:00")
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the years 1970..=9999"), "{e}");
    }

    #[test]
    fn parses_unix_seconds() {
        assert_eq!(parse_time_or_unix("1763647380").unwrap(), T0);
        assert_eq!(parse_time_or_unix("1763647380.5").unwrap(), T0 + 500_000);
        assert_eq!(parse_time_or_unix("+1763647380.000001").unwrap(), T0 + 1);
        assert_eq!(
            parse_time_or_unix("1763647380.1234569").unwrap(),
            T0 + 123_456
        );
        assert_eq!(parse_time_or_unix("0").unwrap(), 0);
        assert_eq!(parse_time_or_unix("1763647380.").unwrap(), T0);
        assert_eq!(parse_time_or_unix("2025-11-20T14:03:00Z").unwrap(), T0);
        for bad in [".5", "1.2.3", "abc", "12a"] {
            assert!(parse_time_or_unix(bad).is_err(), "{bad}");
        }
        let e = parse_time_or_unix("abc").unwrap_err().to_string();
        assert!(e.contains("or unix seconds"), "{e}");
        for out in ["-1", "253402300800", "99999999999999999999999"] {
            let e = parse_time_or_unix(out).unwrap_err().to_string();
            assert!(e.contains("outside the years 1970..=9999"), "{out}: {e}");
        }
        assert_eq!(
            parse_time_or_unix("253402300799").unwrap(),
            MAX_US - 999_999
        );
    }

    #[test]
    fn converts_float_seconds() {
        assert_eq!(unix_seconds_to_us(1_763_647_380.5).unwrap(), T0 + 500_000);
        assert_eq!(unix_seconds_to_us(0.0).unwrap(), 0);
        for bad in [f64::NAN, f64::INFINITY, -0.5, 1e12] {
            assert!(unix_seconds_to_us(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_with_minimal_precision() {
        assert_eq!(format_time(T0), "2025-11-20T14:03:00Z");
        assert_eq!(format_time(T0 + 250_000), "2025-11-20T14:03:00.250Z");
        assert_eq!(format_time(T0 + 1), "2025-11-20T14:03:00.000001Z");
        assert_eq!(format_time(T0 + 120), "2025-11-20T14:03:00.000120Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert!(format_time(i64::MAX).contains("out of range"));
    }

    #[test]
    fn round_trips() {
        let samples = [
            0,
            1,
            999,
            1000,
            999_999,
            T0,
            T0 + 1,
            T0 + 250_000,
            T0 + 123_456,
            MAX_US,
        ];
        for us in samples {
            let s = format_time(us);
            assert_eq!(parse_time(&s).unwrap(), us, "{s}");
            assert_eq!(parse_time_or_unix(&s).unwrap(), us, "{s}");
        }
        // A cheap pseudo-random sweep over the whole range.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let us = (x % (MAX_US as u64 + 1)) as i64;
            assert_eq!(parse_time(&format_time(us)).unwrap(), us);
            let secs = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
            assert_eq!(parse_time_or_unix(&secs).unwrap(), us);
        }
    }
}
