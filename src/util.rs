//! Small helpers every layer uses, with no dependency on any other module of the crate: the
//! bottom of the import graph (docs/DESIGN.md, "Module map").
//!
//! Invariants: nothing here touches the disk or takes a lock; each function is total (never
//! panics, whatever its input).

use chrono::{DateTime, SecondsFormat, Utc};

/// Lower-case hex of some bytes (how SHA-256 sums and hashes are shown and stored in text).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Current time in microseconds since the Unix epoch (the wall clock).
pub fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// Formats microseconds since the epoch as RFC 3339 UTC with `Z`: no fraction for whole
/// seconds, else milliseconds when exact, else microseconds.
pub fn format_time(us: i64) -> String {
    let Some(dt) = DateTime::<Utc>::from_timestamp_micros(us) else {
        return format!("<time out of range: {us} µs since 1970>");
    };
    let sub = us.rem_euclid(1_000_000);
    let precision = if sub == 0 {
        SecondsFormat::Secs
    } else if sub % 1000 == 0 {
        SecondsFormat::Millis
    } else {
        SecondsFormat::Micros
    };
    dt.to_rfc3339_opts(precision, true)
}
