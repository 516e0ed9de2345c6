//! The engine's small value types: a segment's id, a point in time, where a segment's bytes
//! are, and how long a pin lasts. Each is what the engine means by the value; each prints
//! and serialises exactly as the CLI's and the HTTP API's JSON always showed it (an id as a
//! decimal string, a time as RFC 3339 UTC), so typed results change no output.
//!
//! Invariants: a [`SegmentId`] parsed from text is positive (ids start at 1); a [`Timestamp`]
//! is microseconds since the Unix epoch, UTC, and prints with the shortest exact fraction
//! (none, milliseconds or microseconds); nothing here panics on any input.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::Error;
use crate::util::format_time;

/// A segment's id: a positive whole number, given by the store at ingest, never reused.
///
/// Prints (and serialises) as its decimal text, which is how users type it.
/// ```
/// use footage::SegmentId;
/// let id: SegmentId = "42".parse().unwrap();
/// assert_eq!(id.get(), 42);
/// assert_eq!(id.to_string(), "42");
/// assert!("0".parse::<SegmentId>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(u64);

impl SegmentId {
    /// The id as a number (what the `Store` methods take).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for SegmentId {
    fn from(id: u64) -> SegmentId {
        SegmentId(id)
    }
}

impl From<SegmentId> for u64 {
    fn from(id: SegmentId) -> u64 {
        id.0
    }
}

impl PartialEq<u64> for SegmentId {
    fn eq(&self, other: &u64) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for SegmentId {
    type Err = Error;
    /// Decimal text, surrounding white space allowed; zero and anything else is refused
    /// with [`Error::Invalid`].
    fn from_str(s: &str) -> Result<SegmentId, Error> {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|&id| id > 0)
            .map(SegmentId)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "invalid segment id {s:?}: ids are positive whole numbers"
                ))
            })
    }
}

impl Serialize for SegmentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A point in time: microseconds since the Unix epoch, UTC (the unit of every time the
/// store keeps: recording start and end, GPS fixes, commits, pins).
///
/// Prints (and serialises) as RFC 3339 UTC with `Z` and the shortest exact fraction.
/// ```
/// use footage::Timestamp;
/// let t: Timestamp = "2025-11-20T14:03:00.250Z".parse().unwrap();
/// assert_eq!(t.as_micros(), 1_763_647_380_250_000);
/// assert_eq!(t.to_string(), "2025-11-20T14:03:00.250Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The time `us` microseconds after the Unix epoch.
    pub fn from_micros(us: i64) -> Timestamp {
        Timestamp(us)
    }
    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format_time(self.0))
    }
}

impl FromStr for Timestamp {
    type Err = Error;
    /// RFC 3339 with an offset (`2025-11-20T14:03:00Z`, `...+01:00`); anything else is
    /// refused with [`Error::Invalid`].
    fn from_str(s: &str) -> Result<Timestamp, Error> {
        chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Timestamp(t.timestamp_micros()))
            .map_err(|e| Error::Invalid(format!("invalid time {s:?} (RFC 3339 expected): {e}")))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a segment's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TierState {
    /// On the station's disks only.
    Local,
    /// On the station's disks, and a verified copy in the cloud tier.
    LocalAndCloud,
    /// Evicted: only the cloud copy remains; reads fetch from it transparently.
    Cloud,
}

impl TierState {
    /// The name shown in JSON and tables: `local`, `local+cloud` or `cloud`.
    pub fn as_str(self) -> &'static str {
        match self {
            TierState::Local => "local",
            TierState::LocalAndCloud => "local+cloud",
            TierState::Cloud => "cloud",
        }
    }
    /// From the catalog's flags: uploaded and evicted.
    pub(crate) fn from_flags(uploaded: bool, evicted: bool) -> TierState {
        match (uploaded, evicted) {
            (true, true) => TierState::Cloud,
            (true, false) => TierState::LocalAndCloud,
            _ => TierState::Local,
        }
    }
}

impl fmt::Display for TierState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for TierState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How long a pin keeps a segment local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PinnedUntil {
    /// Until this time.
    Time(Timestamp),
    /// Until it is unpinned.
    Indefinitely,
}

impl PinnedUntil {
    /// From the change log's value (`PIN_FOREVER` is "indefinitely").
    pub(crate) fn from_micros(us: i64) -> PinnedUntil {
        if us == crate::format::change::PIN_FOREVER {
            PinnedUntil::Indefinitely
        } else {
            PinnedUntil::Time(Timestamp(us))
        }
    }
}

impl fmt::Display for PinnedUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinnedUntil::Time(t) => t.fmt(f),
            PinnedUntil::Indefinitely => f.pad("indefinitely"),
        }
    }
}

impl Serialize for PinnedUntil {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_as_users_type_them() {
        assert_eq!(" 7 ".parse::<SegmentId>().unwrap(), SegmentId(7));
        for bad in ["0", "-1", "x", "", "1.5", "18446744073709551616"] {
            assert!(bad.parse::<SegmentId>().is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&SegmentId(12)).unwrap(), "\"12\"");
        // Widths in tables apply as they did to the bare number and strings.
        assert_eq!(
            format!("{:>4}|{:<6}|", SegmentId(12), TierState::Cloud),
            "  12|cloud |"
        );
    }

    #[test]
    fn times_serialise_as_the_json_always_showed_them() {
        for (us, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_500, "1970-01-01T00:00:00.001500Z"),
            (-1_000_000, "1969-12-31T23:59:59Z"),
        ] {
            let t = Timestamp::from_micros(us);
            assert_eq!(t.to_string(), text);
            assert_eq!(text.parse::<Timestamp>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{text}\""));
        }
        assert!("yesterday".parse::<Timestamp>().is_err());
        // Out of chrono's range: printed as a note, never a panic.
        assert!(Timestamp::from_micros(i64::MIN)
            .to_string()
            .contains("out of range"));
    }

    #[test]
    fn tier_and_pin_names() {
        assert_eq!(TierState::from_flags(true, true), TierState::Cloud);
        assert_eq!(TierState::from_flags(true, false).as_str(), "local+cloud");
        assert_eq!(TierState::from_flags(false, true), TierState::Local);
        assert_eq!(
            PinnedUntil::from_micros(i64::MAX).to_string(),
            "indefinitely"
        );
        assert_eq!(
            serde_json::to_string(&PinnedUntil::from_micros(0)).unwrap(),
            "\"1970-01-01T00:00:00Z\""
        );
    }
}
