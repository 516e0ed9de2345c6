//! Segment metadata as the library's users see it: who recorded, on which camera, when, where.
//!
//! Invariants (enforced by [`SegmentMeta::validate`] before anything is written):
//! - officer and device ids are 1..=64 bytes of printable ASCII without spaces;
//! - `start <= end`, both as microseconds since the Unix epoch (UTC);
//! - every GPS fix has a latitude in [-90, 90] and a longitude in [-180, 180], stored as
//!   integer 1e-7 degrees (about 1 cm), and fixes are sorted by time;
//! - case ids, tags and category names obey the same rules as officer ids.

use serde::{Deserialize, Serialize};

/// Longest officer, device, case, tag or category id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Most GPS fixes one segment may carry: a 24 h recording at 4 Hz.
pub const MAX_GPS_FIXES: usize = 24 * 3600 * 4;
/// Most case ids, tags or categories one segment may carry.
pub const MAX_LABELS: usize = 256;

/// Degrees are stored as integers in units of 1e-7 degree.
pub const DEGREE_SCALE: f64 = 1e7;

/// One GPS fix: time (µs since the Unix epoch, UTC) and position in 1e-7 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GpsFix {
    /// When the fix was taken, µs since the Unix epoch (UTC).
    pub time_us: i64,
    /// Latitude in units of 1e-7 degree (WGS 84; north positive).
    pub lat_e7: i32,
    /// Longitude in units of 1e-7 degree (WGS 84; east positive).
    pub lon_e7: i32,
}

impl GpsFix {
    /// Builds a fix from degrees, refusing positions off the globe or non-finite values.
    pub fn from_degrees(time_us: i64, lat: f64, lon: f64) -> Result<GpsFix, String> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(format!("latitude {lat} is outside -90..90"));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(format!("longitude {lon} is outside -180..180"));
        }
        Ok(GpsFix {
            time_us,
            lat_e7: (lat * DEGREE_SCALE).round() as i32,
            lon_e7: (lon * DEGREE_SCALE).round() as i32,
        })
    }

    /// Latitude in degrees.
    pub fn lat(&self) -> f64 {
        f64::from(self.lat_e7) / DEGREE_SCALE
    }

    /// Longitude in degrees.
    pub fn lon(&self) -> f64 {
        f64::from(self.lon_e7) / DEGREE_SCALE
    }
}

/// What the caller tells the store about a segment when it begins ingesting it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Id of the officer who wore the camera (at most [`MAX_ID_LEN`] bytes of printable text).
    pub officer: String,
    /// Id of the camera that recorded the footage.
    pub device: String,
    /// Recording start, µs since the Unix epoch (UTC).
    pub start_us: i64,
    /// Recording end, µs since the Unix epoch (UTC); not before `start_us`.
    pub end_us: i64,
    /// The GPS track, fixes sorted by time (at most [`MAX_GPS_FIXES`]).
    pub gps: Vec<GpsFix>,
    /// Case ids the footage is attached to (at most [`MAX_LABELS`]).
    pub cases: Vec<String>,
    /// Free tags (at most [`MAX_LABELS`]).
    pub tags: Vec<String>,
    /// Retention categories (policy.toml's `category.<name>`; none means `default`).
    pub categories: Vec<String>,
}

/// Checks one id-like string (officer, device, case, tag, category).
pub fn validate_id(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!(
            "{what} {value:?} is {} bytes long; the limit is {MAX_ID_LEN}",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{what} {value:?} contains {c:?}; use printable ASCII without spaces"
        ));
    }
    Ok(())
}

impl SegmentMeta {
    /// Validates every field; the message names the offending field and how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        validate_id("officer", &self.officer)?;
        validate_id("device", &self.device)?;
        if self.end_us < self.start_us {
            return Err("end is before start".to_string());
        }
        for (what, list) in [
            ("case", &self.cases),
            ("tag", &self.tags),
            ("category", &self.categories),
        ] {
            if list.len() > MAX_LABELS {
                return Err(format!("too many {what} values (limit {MAX_LABELS})"));
            }
            for v in list {
                validate_id(what, v)?;
            }
        }
        if self.gps.len() > MAX_GPS_FIXES {
            return Err(format!(
                "GPS track has {} fixes; the limit is {MAX_GPS_FIXES}",
                self.gps.len()
            ));
        }
        for (i, f) in self.gps.iter().enumerate() {
            if !(-900_000_000..=900_000_000).contains(&f.lat_e7)
                || !(-1_800_000_000..=1_800_000_000).contains(&f.lon_e7)
            {
                return Err(format!("GPS fix {i} is off the globe"));
            }
        }
        if self.gps.windows(2).any(|w| w[0].time_us > w[1].time_us) {
            return Err("GPS fixes must be sorted by time".to_string());
        }
        Ok(())
    }

    /// Sorts and de-duplicates the label lists and sorts the GPS track by time, so two
    /// equivalent descriptions encode to the same bytes.
    pub fn normalize(&mut self) {
        for list in [&mut self.cases, &mut self.tags, &mut self.categories] {
            list.sort();
            list.dedup();
        }
        self.gps.sort_by_key(|f| f.time_us);
    }
}

/// A GPS track as a GeoJSON Feature: a LineString (a Point for one fix) with the fix times
/// (RFC 3339) in `properties.times`, in the same order as the coordinates.
pub fn track_geojson(id: u64, fixes: &[GpsFix]) -> serde_json::Value {
    let coords: Vec<[f64; 2]> = fixes.iter().map(|f| [f.lon(), f.lat()]).collect();
    let times: Vec<String> = fixes
        .iter()
        .map(|f| crate::util::format_time(f.time_us))
        .collect();
    let geometry = match coords.as_slice() {
        [one] => serde_json::json!({"type": "Point", "coordinates": one}),
        _ => serde_json::json!({"type": "LineString", "coordinates": coords}),
    };
    serde_json::json!({
        "type": "Feature",
        "geometry": geometry,
        "properties": {"segment": id.to_string(), "times": times},
    })
}
