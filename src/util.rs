//! Small helpers every layer uses, with no dependency on any other module of the crate: the
//! bottom of the import graph (docs/DESIGN.md, "Module map").
//!
//! Invariants: nothing here touches the disk or takes a lock; each function is total (never
//! panics, whatever its input). Also the phase clock of timing logs ([`Phases`]).

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

/// Lower-case hex of some bytes (how SHA-256 sums and hashes are shown and stored in text).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SHA-256 sum from its 64 hex digits (either case); `None` for anything else.
pub fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Serialises bytes (a SHA-256 sum) as lower-case hex text (serde's `serialize_with`).
pub fn serialize_hex<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
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

/// Where an operation's time went, phase by phase, for a debug log at its end (the benches
/// read these to see which step to make faster): shown as `name=1.2ms name=0.3ms ...`.
pub(crate) struct Phases {
    start: Instant,
    last: Instant,
    marks: Vec<(&'static str, Duration)>,
}

impl Phases {
    pub(crate) fn start() -> Phases {
        let now = Instant::now();
        Phases {
            start: now,
            last: now,
            marks: Vec::new(),
        }
    }

    /// Ends phase `name` now (it began at the previous mark, or at the start).
    pub(crate) fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.marks.push((name, now - self.last));
        self.last = now;
    }

    /// Milliseconds since the start.
    pub(crate) fn total_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e3
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, d)) in self.marks.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{name}={:.1}ms", d.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_round_trips_and_refuses_the_rest() {
        let sum: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(parse_sha256(&hex(&sum)), Some(sum));
        assert_eq!(parse_sha256(&hex(&sum).to_uppercase()), Some(sum));
        let plus = format!("+f{}", &hex(&sum)[2..]);
        for bad in ["", "00", &hex(&sum)[1..], &plus] {
            assert_eq!(parse_sha256(bad), None, "{bad}");
        }
    }
}
