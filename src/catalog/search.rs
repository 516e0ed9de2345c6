//! Evaluates a [`Query`] against the catalog and its index: picks the cheapest source of
//! candidates (a label list, an officer's or device's time list, the spatial cells of the
//! area, or the time list), then checks every predicate of each candidate exactly, and for an
//! area query walks each candidate's track once, decoding only the blocks of fixes that meet
//! the window and the area, to report its hit intervals. The semantics are specified in
//! src/index/query.rs (tests compare with brute force).
//!
//! Invariants: an answer is bounded by `MAX_PAGE` results and `MAX_PAGE_HITS` intervals;
//! nothing here writes; the catalog is borrowed for the whole query (the caller holds its read
//! lock).

use std::collections::HashMap;

use super::{Catalog, SegmentEntry};
use crate::error::{Error, Result};
use crate::format::DecodeError;
use crate::index::geo::{Area, DiscTest, E7Box, LEVELS};
use crate::index::query::{
    cursor_of, parse_cursor, window, FindResult, Hit, Page, Query, DEFAULT_HIT_GAP_US,
    MAX_HITS_PER_SEGMENT, MAX_PAGE, MAX_PAGE_HITS,
};
use crate::index::spatial::sec;
use crate::index::tracks::NO_TRACK;
use crate::index::{LabelKind, TimeList};
use crate::meta::GpsFix;

/// Covers with more cells than this are not looked up cell by cell (a coarser level, or the
/// time list, serves instead).
const MAX_COVER_CELLS: u64 = 256;

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
        // The time list is walked from the cursor and the walk stops when the page is full:
        // with a label of `l` segments among `n`, that is about limit · n / l candidates. A
        // label's list has no time order, so its plan reads all of it for every page: a long
        // answer read page by page would cost a whole list per page.
        let n = idx.time.len().max(1);
        let until_full = labels
            .iter()
            .map(|l| limit.saturating_mul(n) / l.len().max(1))
            .min()
            .unwrap_or(usize::MAX);
        let cost = time.len().min(until_full);
        if cost < plan.1 {
            plan = ("time", cost);
        }
        time
    } else {
        &[]
    };

    // Candidates as (start, id), ascending; those outside the window are dropped before the
    // sort (a label's list spans all time).
    let in_window = |id: u64| {
        entry(cat, id)
            .filter(|e| e.start_us <= hi && e.end_us >= lo)
            .map(|e| (e.start_us, id))
            .filter(|&k| k > after)
    };
    let by_ids = |mut ids: Vec<u64>| -> Vec<(i64, u64)> {
        ids.sort_unstable();
        ids.dedup();
        let mut v: Vec<(i64, u64)> = ids.into_iter().filter_map(in_window).collect();
        v.sort_unstable();
        v
    };
    let owned: Vec<(i64, u64)>;
    let candidates: &[(i64, u64)] = match (plan.0, &officer_lists, &device_lists) {
        // One officer (or device): its window is already sorted.
        ("officer", Some(l), _) | ("device", _, Some(l)) if l.len() == 1 => l[0],
        ("officer", _, _) => {
            owned = merge(officer_lists.unwrap_or_default());
            &owned
        }
        ("device", _, _) => {
            owned = merge(device_lists.unwrap_or_default());
            &owned
        }
        ("label", _, _) => {
            // A label list is sorted and without duplicates already.
            let shortest = labels.iter().min_by_key(|l| l.len()).copied();
            let mut v: Vec<(i64, u64)> = shortest
                .unwrap_or_default()
                .iter()
                .filter_map(|&id| in_window(id))
                .collect();
            v.sort_unstable();
            owned = v;
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
    let disc = q.area.and_then(|a| a.disc_test());

    let mut page = Page {
        plan: plan.0,
        results: Vec::with_capacity(candidates.len().min(limit)),
        ..Page::default()
    };
    let mut page_hits = 0usize;
    // An area query touches each candidate's track record, a cache miss in a large map:
    // ask for the record a few candidates ahead so that the misses overlap.
    const AHEAD: usize = 4;
    for (i, &(_, id)) in candidates.iter().enumerate() {
        if q.area.is_some() {
            if let Some(next) = candidates.get(i + AHEAD).and_then(|&(_, n)| entry(cat, n)) {
                idx.tracks.prefetch(next.track);
            }
        }
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
                let found = hits_of(cat, e, (area, pre, disc), lo, hi, gap)?;
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

/// The union of sorted lists, sorted, without duplicates: a merge of the lists' heads when
/// they are few (a handful of officers), a sort of their concatenation otherwise.
fn merge(lists: Vec<&[(i64, u64)]>) -> Vec<(i64, u64)> {
    const FEW: usize = 8;
    let mut out: Vec<(i64, u64)> = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
    if lists.len() > FEW {
        out.extend(lists.concat());
        out.sort_unstable();
        out.dedup();
        return out;
    }
    let mut heads = lists;
    loop {
        let Some((k, &least)) = heads
            .iter()
            .enumerate()
            .filter_map(|(k, l)| l.first().map(|x| (k, x)))
            .min_by_key(|&(_, x)| *x)
        else {
            return out;
        };
        if out.last() != Some(&least) {
            out.push(least);
        }
        heads[k] = &heads[k][1..];
    }
}

/// The runs of consecutive fixes of segment `e` inside the window and the area, runs less
/// than `gap` µs apart merged: the first [`MAX_HITS_PER_SEGMENT`] intervals and the count of
/// the rest. `pre` is the area's integer box: it rules out whole tracks and whole blocks of
/// fixes (by their boxes) and most fixes before the exact test; `disc`, a circle's fast test,
/// decides most of the rest without the trigonometry. Only the blocks that meet the window and
/// the box are decoded; a block inside both the window and the area's inner box matches
/// whole, undecoded. Fixes are in time order, so the walk stops after the window.
fn hits_of(
    cat: &Catalog,
    e: &SegmentEntry,
    (area, pre, disc): (&Area, &E7Box, Option<DiscTest>),
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
    let damaged = |err: DecodeError| Error::SegmentCorrupt {
        segment: e.id,
        offset: 0,
        what: format!("GPS track: {err}"),
    };
    let mut hits = HitList::new(gap);
    // Whether the fix before the next one matched.
    let mut open = false;
    for b in t.blocks() {
        let b = b.map_err(damaged)?;
        if let Some((first, last)) = b.times {
            if first > hi {
                break;
            }
            if last < lo || !pre.meets(b.bbox) {
                open = false;
                continue;
            }
            if lo <= first && last <= hi && pre.surely_holds_rect(b.bbox) {
                // Every fix matches: the run goes on from `first` to `last`.
                hits.fix(first, open);
                hits.fix(last, true);
                open = true;
                continue;
            }
        }
        for f in b.fixes().map_err(damaged)? {
            let f = f.map_err(damaged)?;
            if f.time_us > hi {
                return Ok(hits.finish());
            }
            let m = lo <= f.time_us
                && pre.holds(f.lat_e7, f.lon_e7)
                && (pre.surely_holds(f.lat_e7, f.lon_e7)
                    || disc
                        .and_then(|d| d.classify(f.lat_e7, f.lon_e7))
                        .unwrap_or_else(|| area.contains(&f)));
            if m {
                hits.fix(f.time_us, open);
            }
            open = m;
        }
    }
    Ok(hits.finish())
}

/// The hit intervals of a whole track for `area` and the window [lo, hi], by the plain
/// definition (every fix tested with [`Area::contains`]): what [`hits_of`] computes from a
/// stored track record, for tracks held elsewhere (the fleet table's rows).
#[cfg_attr(not(feature = "fleet"), allow(dead_code))]
pub fn hits_in_fixes(area: &Area, fixes: &[GpsFix], lo: i64, hi: i64, gap: i64) -> (Vec<Hit>, u64) {
    let mut hits = HitList::new(gap);
    let mut open = false;
    for f in fixes {
        if f.time_us > hi {
            break;
        }
        let m = lo <= f.time_us && area.contains(f);
        if m {
            hits.fix(f.time_us, open);
        }
        open = m;
    }
    hits.finish()
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

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn merging_sorted_lists_gives_their_sorted_union_once() {
        let a = [(1, 1), (3, 3), (5, 5)];
        let b = [(2, 2), (3, 3), (6, 6)];
        let want = vec![(1, 1), (2, 2), (3, 3), (5, 5), (6, 6)];
        assert_eq!(merge(vec![&a, &b, &a]), want);
        let many: Vec<&[(i64, u64)]> = (0..10)
            .map(|i| if i % 2 == 0 { &a[..] } else { &b[..] })
            .collect();
        assert_eq!(merge(many), want);
        assert!(merge(vec![&[], &[]]).is_empty());
    }
}
