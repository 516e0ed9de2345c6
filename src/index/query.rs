//! Queries: the `Query` builder, its validation, and its evaluation against the catalog and
//! index (pick the cheapest candidate source, then check every predicate exactly).
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

use super::geo::{Area, E7Box, LEVELS};
use super::spatial::sec;
use super::tracks::NO_TRACK;
use super::{LabelKind, TimeList};
use crate::catalog::{Catalog, SegmentEntry};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Covers with more cells than this are not looked up cell by cell (a coarser level, or the
/// time list, serves instead).
const MAX_COVER_CELLS: u64 = 256;

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
    pub officers: Vec<String>,
    pub devices: Vec<String>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub area: Option<Area>,
    pub case: Option<String>,
    pub tag: Option<String>,
    pub category: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// Hit runs separated by less than this many µs merge into one interval (default
    /// [`DEFAULT_HIT_GAP_US`]; 0 keeps every run apart).
    pub hit_gap_us: Option<i64>,
}

impl Query {
    pub fn new() -> Query {
        Query::default()
    }
    pub fn officer(mut self, id: impl Into<String>) -> Query {
        self.officers.push(id.into());
        self
    }
    pub fn device(mut self, id: impl Into<String>) -> Query {
        self.devices.push(id.into());
        self
    }
    pub fn from(mut self, us: i64) -> Query {
        self.from_us = Some(us);
        self
    }
    pub fn to(mut self, us: i64) -> Query {
        self.to_us = Some(us);
        self
    }
    pub fn near(mut self, lat: f64, lon: f64, radius_m: f64) -> Query {
        self.area = Some(Area::Near { lat, lon, radius_m });
        self
    }
    pub fn bbox(mut self, min_lat: f64, min_lon: f64, max_lat: f64, max_lon: f64) -> Query {
        self.area = Some(Area::BBox {
            min_lat,
            min_lon,
            max_lat,
            max_lon,
        });
        self
    }
    pub fn case(mut self, id: impl Into<String>) -> Query {
        self.case = Some(id.into());
        self
    }
    pub fn tag(mut self, t: impl Into<String>) -> Query {
        self.tag = Some(t.into());
        self
    }
    pub fn category(mut self, c: impl Into<String>) -> Query {
        self.category = Some(c.into());
        self
    }
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
                return bad("--from is after --to".into());
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
            return bad("--limit must be at least 1".into());
        }
        if self.limit.is_some_and(|n| n > MAX_PAGE) {
            return bad(format!(
                "--limit must be at most {MAX_PAGE} (page through the rest with --after)"
            ));
        }
        if self.hit_gap_us.is_some_and(|g| g < 0) {
            return bad("--hit-gap must be 0 or more seconds".into());
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
    pub from_us: i64,
    pub to_us: i64,
}

/// One matching segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindResult {
    pub id: u64,
    pub start_us: i64,
    pub end_us: i64,
    /// Empty unless the query has an area. At most [`MAX_HITS_PER_SEGMENT`], the first ones.
    pub hits: Vec<Hit>,
    /// Intervals past the first [`MAX_HITS_PER_SEGMENT`], not listed (0 when all are).
    pub hits_omitted: u64,
}

/// One page of results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
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

fn cursor_of(start: i64, id: u64) -> String {
    format!("{start}.{id}")
}

fn parse_cursor(c: &str) -> Result<(i64, u64)> {
    c.split_once('.')
        .and_then(|(s, i)| Some((s.parse().ok()?, i.parse().ok()?)))
        .ok_or_else(|| Error::Invalid(format!("invalid cursor {c:?}: pass a page's `next` value")))
}

/// The part of a (start, id) list that may overlap [lo, hi] and comes after the cursor.
fn window(list: &[(i64, u64)], lo: i64, hi: i64, max_dur: i64, after: (i64, u64)) -> &[(i64, u64)] {
    let min_start = lo.saturating_sub(max_dur);
    // Both conditions hold on a prefix of the sorted list, so their union does too.
    let a = list.partition_point(|&k| k.0 < min_start || k <= after);
    let b = list.partition_point(|&(s, _)| s <= hi);
    list.get(a..b.max(a)).unwrap_or_default()
}

/// The live catalog entry of `id`.
#[inline]
fn entry(cat: &Catalog, id: u64) -> Option<&SegmentEntry> {
    cat.get(id)
}

/// Evaluates a query.
pub fn run<'a>(cat: &'a Catalog, q: &Query) -> Result<Page> {
    q.validate()?;
    let idx = &cat.index;
    let lo = q.from_us.unwrap_or(i64::MIN);
    let hi = q.to_us.unwrap_or(i64::MAX);
    let after = match &q.cursor {
        Some(c) => parse_cursor(c)?,
        None => (i64::MIN, 0),
    };
    let limit = q.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let gap = q.hit_gap_us.unwrap_or(DEFAULT_HIT_GAP_US).max(0);
    let empty = Page::default();

    let resolve = |ids: &[String]| -> Option<Vec<u32>> {
        (!ids.is_empty()).then(|| ids.iter().filter_map(|o| cat.names.lookup(o)).collect())
    };
    let officers = resolve(&q.officers);
    let devices = resolve(&q.devices);
    if officers.as_ref().is_some_and(Vec::is_empty) || devices.as_ref().is_some_and(Vec::is_empty) {
        return Ok(empty);
    }
    let mut labels: Vec<&[u64]> = Vec::new();
    for (kind, v) in [
        (LabelKind::Case, &q.case),
        (LabelKind::Tag, &q.tag),
        (LabelKind::Category, &q.category),
    ] {
        if let Some(v) = v {
            let l = idx.label(kind, v);
            if l.is_empty() {
                return Ok(empty);
            }
            labels.push(l);
        }
    }

    // Candidate sources and their costs (items to look at).
    let md = idx.max_duration;
    let lists_of = |syms: &Option<Vec<u32>>, map: &'a HashMap<u32, TimeList>| {
        syms.as_ref().map(|s| {
            s.iter()
                .filter_map(|k| map.get(k))
                .map(|l| window(l, lo, hi, md, after))
                .collect::<Vec<_>>()
        })
    };
    let officer_lists = lists_of(&officers, &idx.by_officer);
    let device_lists = lists_of(&devices, &idx.by_device);
    let sum = |ls: &Option<Vec<&[(i64, u64)]>>| {
        ls.as_ref()
            .map(|v| v.iter().map(|l| l.len()).sum::<usize>())
    };
    let (s_lo, s_hi) = (sec(lo), sec(hi));
    let cover = q.area.and_then(|a| {
        LEVELS
            .iter()
            .map(|&l| a.cover(l))
            .find(|c| c.len() <= MAX_COVER_CELLS)
    });
    let spatial = cover.as_ref().map(|c| idx.spatial.prepare(c, s_lo, s_hi));
    let mut plan = ("time", usize::MAX);
    for (name, cost) in [
        ("officer", sum(&officer_lists)),
        ("device", sum(&device_lists)),
        ("label", labels.iter().map(|l| l.len() * 2).min()),
        (
            "spatial",
            spatial.as_ref().map(|s| s.cost().saturating_mul(2)),
        ),
    ] {
        if let Some(c) = cost {
            if c < plan.1 {
                plan = (name, c);
            }
        }
    }
    // The time list is the fallback; finding its window costs two binary searches over every
    // segment, skipped when another source is already this cheap.
    const CHEAP: usize = 64;
    let time = if plan.1 > CHEAP {
        let time = window(&idx.time, lo, hi, md, after);
        if time.len() < plan.1 {
            plan = ("time", time.len());
        }
        time
    } else {
        &[]
    };

    // Candidates as (start, id), ascending.
    let by_ids = |mut ids: Vec<u64>| -> Vec<(i64, u64)> {
        ids.sort_unstable();
        ids.dedup();
        let mut v: Vec<(i64, u64)> = ids
            .into_iter()
            .filter_map(|id| entry(cat, id).map(|e| (e.start_us, id)))
            .filter(|&k| k > after)
            .collect();
        v.sort_unstable();
        v
    };
    let merged = |lists: Vec<&[(i64, u64)]>| -> Vec<(i64, u64)> {
        let mut v: Vec<(i64, u64)> = lists.concat();
        v.sort_unstable();
        v.dedup();
        v
    };
    let owned: Vec<(i64, u64)>;
    let candidates: &[(i64, u64)] = match (plan.0, &officer_lists, &device_lists) {
        // One officer (or device): its window is already sorted.
        ("officer", Some(l), _) | ("device", _, Some(l)) if l.len() == 1 => l[0],
        ("officer", _, _) => {
            owned = merged(officer_lists.unwrap_or_default());
            &owned
        }
        ("device", _, _) => {
            owned = merged(device_lists.unwrap_or_default());
            &owned
        }
        ("label", _, _) => {
            let shortest = labels.iter().min_by_key(|l| l.len()).copied();
            owned = by_ids(shortest.unwrap_or_default().to_vec());
            &owned
        }
        ("spatial", _, _) => {
            let mut ids = Vec::new();
            if let Some(s) = &spatial {
                s.for_each(|id| ids.push(id));
            }
            owned = by_ids(ids);
            &owned
        }
        _ => time,
    };
    // Label checks only need the part of each label list between the candidates' least and
    // greatest ids: a short, cache-resident slice when ids follow time, as they do.
    if !labels.is_empty() {
        let (min_id, max_id) = candidates
            .iter()
            .fold((u64::MAX, 0), |(a, b), &(_, id)| (a.min(id), b.max(id)));
        for l in labels.iter_mut() {
            let a = l.partition_point(|&x| x < min_id);
            let b = l.partition_point(|&x| x <= max_id);
            *l = l.get(a..b.max(a)).unwrap_or_default();
        }
    }
    let pre = q.area.map(|a| a.e7_box());

    let mut page = Page {
        plan: plan.0,
        ..Page::default()
    };
    let mut page_hits = 0usize;
    for &(_, id) in candidates {
        let Some(e) = entry(cat, id) else { continue };
        if !(e.start_us <= hi && e.end_us >= lo) {
            continue;
        }
        if officers.as_ref().is_some_and(|o| !o.contains(&e.officer))
            || devices.as_ref().is_some_and(|d| !d.contains(&e.device))
            || labels.iter().any(|l| l.binary_search(&id).is_err())
        {
            continue;
        }
        let (hits, hits_omitted) = match (&q.area, &pre) {
            (Some(area), Some(pre)) => {
                let found = hits_of(cat, e, area, pre, lo, hi, gap)?;
                if found.0.is_empty() {
                    continue;
                }
                found
            }
            _ => (Vec::new(), 0),
        };
        let full = page.results.len() == limit
            || (!page.results.is_empty() && page_hits + hits.len() > MAX_PAGE_HITS);
        if full {
            page.next = page.results.last().map(|r| cursor_of(r.start_us, r.id));
            break;
        }
        page_hits += hits.len();
        page.results.push(FindResult {
            id,
            start_us: e.start_us,
            end_us: e.end_us,
            hits,
            hits_omitted,
        });
    }
    Ok(page)
}

/// The runs of consecutive fixes of segment `e` inside the window and the area, runs less
/// than `gap` µs apart merged: the first [`MAX_HITS_PER_SEGMENT`] intervals and the count of
/// the rest. `pre` is the area's integer box: it rules out whole tracks (by their bounding
/// box) and most fixes before the exact test; fixes are in time order, so decoding stops
/// after the window.
#[allow(clippy::too_many_arguments)]
fn hits_of(
    cat: &Catalog,
    e: &SegmentEntry,
    area: &Area,
    pre: &E7Box,
    lo: i64,
    hi: i64,
    gap: i64,
) -> Result<(Vec<Hit>, u64)> {
    if e.track == NO_TRACK {
        return Ok((Vec::new(), 0));
    }
    let t = cat.index.tracks.get(e.track, e.id)?;
    if !pre.meets(t.bbox) {
        return Ok((Vec::new(), 0));
    }
    let mut hits = HitList::new(gap);
    let mut open = false;
    for f in t.fixes() {
        let f = f.map_err(|err| Error::SegmentCorrupt {
            segment: e.id,
            offset: 0,
            what: format!("GPS track: {err}"),
        })?;
        if f.time_us > hi {
            break;
        }
        let m = lo <= f.time_us && pre.holds(f.lat_e7, f.lon_e7) && area.contains(&f);
        if m {
            hits.fix(f.time_us, open);
        }
        open = m;
    }
    Ok(hits.finish())
}

/// Hit intervals as they are found: the listed ones (at most [`MAX_HITS_PER_SEGMENT`]), the
/// interval being extended, and the count of those past the cap.
struct HitList {
    gap: i64,
    listed: Vec<Hit>,
    current: Option<Hit>,
    omitted: u64,
}

impl HitList {
    fn new(gap: i64) -> HitList {
        HitList {
            gap,
            listed: Vec::new(),
            current: None,
            omitted: 0,
        }
    }

    /// A matching fix at `t`; `continues` if the fix before it matched too.
    fn fix(&mut self, t: i64, continues: bool) {
        if let Some(h) = &mut self.current {
            if continues || t.saturating_sub(h.to_us) < self.gap {
                h.to_us = t;
                return;
            }
        }
        self.close();
        self.current = Some(Hit {
            from_us: t,
            to_us: t,
        });
    }

    fn close(&mut self) {
        if let Some(h) = self.current.take() {
            if self.listed.len() < MAX_HITS_PER_SEGMENT {
                self.listed.push(h);
            } else {
                self.omitted += 1;
            }
        }
    }

    fn finish(mut self) -> (Vec<Hit>, u64) {
        self.close();
        (self.listed, self.omitted)
    }
}
