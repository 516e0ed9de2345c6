//! Queries: the `Query` builder, its validation and its answers (`Page`, `FindResult`, `Hit`);
//! the evaluation against the catalog and this index is `catalog::search::run` (pick the
//! cheapest candidate source, then check every predicate exactly).
//!
//! Semantics (exact; tests compare with brute force):
//! - a segment matches the window [from, to] if [start, end] overlaps it, bounds inclusive;
//! - with an area, it must also have a GPS fix whose time is in the window and which lies in
//!   the area ([`Area::contains`]); `hits` are the maximal runs of consecutive such fixes,
//!   then any two runs separated by less than the query's hit gap (default
//!   [`DEFAULT_HIT_GAP_US`], 10 s) merged into one; a result lists at most
//!   [`MAX_HITS_PER_SEGMENT`] of them (the first ones) and counts the rest in `hits_omitted`;
//! - officers (and devices) OR together; every other filter ANDs;
//! - results come sorted by (start, id); a page holds at most `limit` results (at most
//!   [`MAX_PAGE`], the default) and, past its first result, at most [`MAX_PAGE_HITS`] hit
//!   intervals; `next` is the cursor of its last result when more follow.
//!
//! Bounds: one query decodes each candidate track once (at most `MAX_GPS_FIXES` fixes) and
//! holds at most `MAX_PAGE` results of at most `MAX_HITS_PER_SEGMENT` intervals, whatever the
//! tracks look like, so its answer is bounded.

use serde::Serialize;

use super::geo::Area;
use crate::error::{Error, Result};

/// Hit runs separated by less than this (µs) are reported as one interval unless the query
/// says otherwise ([`Query::hit_gap`]): a track wobbling across the area's edge is one visit.
pub const DEFAULT_HIT_GAP_US: i64 = 10_000_000;
/// Most hit intervals listed for one result; the rest are counted in `hits_omitted`.
pub const MAX_HITS_PER_SEGMENT: usize = 100;
/// Largest page (`limit`) a query may ask for, and the page size when it names none.
pub const MAX_PAGE: usize = 1000;
/// Most hit intervals one page holds (past its first result): a page of segments with many
/// intervals each ends early, with `next` set.
pub const MAX_PAGE_HITS: usize = 10_000;

/// A search over the footage. Build it with the chained methods, then run `Store::find`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Matches footage of any of these officers (ids as ingested); empty matches every officer.
    pub officers: Vec<String>,
    /// Matches footage of any of these devices (camera ids); empty matches every device.
    pub devices: Vec<String>,
    /// Start of the time window, µs since the Unix epoch (UTC), inclusive; a segment matches if it
    /// overlaps the window.
    pub from_us: Option<i64>,
    /// End of the time window, µs since the Unix epoch (UTC), inclusive.
    pub to_us: Option<i64>,
    /// A place the segment's GPS track must pass through during the window (see [`Area`]).
    pub area: Option<Area>,
    /// Matches only footage attached to this case id.
    pub case: Option<String>,
    /// Matches only footage carrying this tag.
    pub tag: Option<String>,
    /// Matches only footage in this retention category.
    pub category: Option<String>,
    /// Most results in one page (1 to [`MAX_PAGE`]; default [`MAX_PAGE`]).
    pub limit: Option<usize>,
    /// Where to continue: the `next` cursor of the previous [`Page`].
    pub cursor: Option<String>,
    /// Hit runs separated by less than this many µs merge into one interval (default
    /// [`DEFAULT_HIT_GAP_US`]; 0 keeps every run apart).
    pub hit_gap_us: Option<i64>,
}

impl Query {
    /// An empty query: matches every segment.
    pub fn new() -> Query {
        Query::default()
    }
    /// Adds an officer (ORed with the others given).
    pub fn officer(mut self, id: impl Into<String>) -> Query {
        self.officers.push(id.into());
        self
    }
    /// Adds a device (ORed with the others given).
    pub fn device(mut self, id: impl Into<String>) -> Query {
        self.devices.push(id.into());
        self
    }
    /// Sets the start of the time window, µs since the Unix epoch (UTC), inclusive.
    pub fn from(mut self, us: i64) -> Query {
        self.from_us = Some(us);
        self
    }
    /// Sets the end of the time window, µs since the Unix epoch (UTC), inclusive.
    pub fn to(mut self, us: i64) -> Query {
        self.to_us = Some(us);
        self
    }
    /// Restricts to footage with a GPS fix within `radius_m` metres of (`lat`, `lon`) (degrees, WGS
    /// 84).
    pub fn near(mut self, lat: f64, lon: f64, radius_m: f64) -> Query {
        self.area = Some(Area::Near { lat, lon, radius_m });
        self
    }
    /// Restricts to footage with a GPS fix inside a box (degrees, bounds inclusive; `min_lon >
    /// max_lon` crosses the antimeridian).
    pub fn bbox(mut self, min_lat: f64, min_lon: f64, max_lat: f64, max_lon: f64) -> Query {
        self.area = Some(Area::BBox {
            min_lat,
            min_lon,
            max_lat,
            max_lon,
        });
        self
    }
    /// Restricts to footage attached to case `id`.
    pub fn case(mut self, id: impl Into<String>) -> Query {
        self.case = Some(id.into());
        self
    }
    /// Restricts to footage carrying tag `t`.
    pub fn tag(mut self, t: impl Into<String>) -> Query {
        self.tag = Some(t.into());
        self
    }
    /// Restricts to footage in retention category `c`.
    pub fn category(mut self, c: impl Into<String>) -> Query {
        self.category = Some(c.into());
        self
    }
    /// Sets the page size: at most `n` results (1 to [`MAX_PAGE`]).
    pub fn limit(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self
    }
    /// Merges hit runs separated by less than `us` µs (0: every run of consecutive matching
    /// fixes is its own interval).
    pub fn hit_gap(mut self, us: i64) -> Query {
        self.hit_gap_us = Some(us);
        self
    }
    /// Continues after a page: pass the previous page's `next`.
    pub fn after(mut self, cursor: impl Into<String>) -> Query {
        self.cursor = Some(cursor.into());
        self
    }

    /// Checks the query; the error says which argument is wrong and why.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if let (Some(f), Some(t)) = (self.from_us, self.to_us) {
            if f > t {
                return bad("the start of the time range (from) is after its end (to)".into());
            }
        }
        let lat_ok = |v: f64| v.is_finite() && (-90.0..=90.0).contains(&v);
        let lon_ok = |v: f64| v.is_finite() && (-180.0..=180.0).contains(&v);
        match self.area {
            Some(Area::Near { lat, lon, radius_m }) => {
                if !lat_ok(lat) {
                    return bad(format!("latitude {lat} is outside -90..90"));
                }
                if !lon_ok(lon) {
                    return bad(format!("longitude {lon} is outside -180..180"));
                }
                if !(radius_m.is_finite() && radius_m >= 0.0) {
                    return bad(format!(
                        "radius {radius_m} must be a number of metres, 0 or more"
                    ));
                }
            }
            Some(Area::BBox {
                min_lat,
                min_lon,
                max_lat,
                max_lon,
            }) => {
                if !lat_ok(min_lat) || !lat_ok(max_lat) {
                    return bad("box latitudes must be within -90..90".into());
                }
                if !lon_ok(min_lon) || !lon_ok(max_lon) {
                    return bad("box longitudes must be within -180..180".into());
                }
                if min_lat > max_lat {
                    return bad(format!(
                        "box minimum latitude {min_lat} is above its maximum {max_lat}"
                    ));
                }
            }
            None => {}
        }
        if self.limit == Some(0) {
            return bad("the page size (limit) must be at least 1".into());
        }
        if self.limit.is_some_and(|n| n > MAX_PAGE) {
            return bad(format!(
                "the page size (limit) must be at most {MAX_PAGE} (page through the rest with a cursor: after)"
            ));
        }
        if self.hit_gap_us.is_some_and(|g| g < 0) {
            return bad("the hit gap must be 0 or more".into());
        }
        if let Some(c) = &self.cursor {
            parse_cursor(c)?;
        }
        Ok(())
    }
}

/// A time range (µs, inclusive) of consecutive matching fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// First fix time of the run, µs since the Unix epoch (UTC).
    pub from_us: i64,
    /// Last fix time of the run, µs since the Unix epoch (UTC).
    pub to_us: i64,
}

/// One matching segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindResult {
    /// The segment id.
    pub id: u64,
    /// Recording start, µs since the Unix epoch (UTC).
    pub start_us: i64,
    /// Recording end, µs since the Unix epoch (UTC).
    pub end_us: i64,
    /// Empty unless the query has an area. At most [`MAX_HITS_PER_SEGMENT`], the first ones.
    pub hits: Vec<Hit>,
    /// Intervals past the first [`MAX_HITS_PER_SEGMENT`], not listed (0 when all are).
    pub hits_omitted: u64,
}

/// One page of results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The matching segments of this page, sorted by (start, id).
    pub results: Vec<FindResult>,
    /// Cursor for the next page (`Query::after`), if more results follow.
    pub next: Option<String>,
    /// Which index answered: "time", "officer", "device", "label" or "spatial".
    pub plan: &'static str,
}

impl IntoIterator for Page {
    type Item = FindResult;
    type IntoIter = std::vec::IntoIter<FindResult>;
    fn into_iter(self) -> Self::IntoIter {
        self.results.into_iter()
    }
}

pub(crate) fn cursor_of(start: i64, id: u64) -> String {
    format!("{start}.{id}")
}

pub(crate) fn parse_cursor(c: &str) -> Result<(i64, u64)> {
    c.split_once('.')
        .and_then(|(s, i)| Some((s.parse().ok()?, i.parse().ok()?)))
        .ok_or_else(|| Error::Invalid(format!("invalid cursor {c:?}: pass a page's `next` value")))
}

/// The part of a (start, id) list that may overlap [lo, hi] and comes after the cursor.
pub(crate) fn window(
    list: &[(i64, u64)],
    lo: i64,
    hi: i64,
    max_dur: i64,
    after: (i64, u64),
) -> &[(i64, u64)] {
    let min_start = lo.saturating_sub(max_dur);
    // Both conditions hold on a prefix of the sorted list, so their union does too.
    let a = list.partition_point(|&k| k.0 < min_start || k <= after);
    let b = list.partition_point(|&(s, _)| s <= hi);
    list.get(a..b.max(a)).unwrap_or_default()
}
