//! The spatio-temporal index: for every segment, the grid cells its track visited and when,
//! at several cell sizes, as postings sorted by (cell, first second, segment).
//!
//! A *visit* is a run of consecutive fixes in one cell, cut so that it never lasts more than
//! [`MAX_VISIT_S`]; its posting holds the whole seconds of its first and last fix and which
//! of the cell's 4 × 4 sub-cells its fixes lay in. A query looks up each cell of its cover,
//! seeks to `from - MAX_VISIT_S` (no interval tree needed) and passes on a posting only if
//! one of its sub-cells meets the area: candidates come at a sixteenth of a cell, not a cell.
//!
//! Invariants:
//! - `base` is sorted by (key, t_first, id), and `dir` holds each distinct key of `base` with
//!   the index of its first posting; `mem` (an ordered set of recent postings) stays
//!   below an eighth of `base` (or [`MEM_LIMIT`]) and is then merged into it;
//! - for every fix of every indexed segment and every level there is a posting with the fix's
//!   cell, `t_first <= sec(fix) <= t_last` and the fix's sub-cell bit in its mask, where `sec`
//!   floors to whole seconds and clamps to the u32 range (so postings are a superset:
//!   candidates are checked exactly). A posting read from a checkpoint older than masks has
//!   every bit set;
//! - postings of removed segments may linger until the next rebuild; lookups skip ids the
//!   catalog no longer has.

use std::collections::BTreeSet;

use super::geo::{cell_of, sub_cell_bit, Cover, ALL_SUB_CELLS, LEVELS};
use super::track_record::read_varint;
use crate::format::{DecodeError, Reader, Writer};
use crate::meta::GpsFix;

/// Longest a visit may last, in seconds.
pub const MAX_VISIT_S: u32 = 3600;
/// Postings held in the ordered insert buffer before it is merged into the base run.
const MEM_LIMIT: usize = 1 << 16;

/// One visit (24 bytes): ordered by cell, first second, duration, sub-cells, segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Posting {
    pub key: u64,
    pub t_first: u32,
    /// Seconds from the first fix to the last, at most [`MAX_VISIT_S`].
    pub dur: u16,
    /// The sub-cells the visit's fixes lay in (bits as [`sub_cell_bit`] numbers them).
    pub mask: u16,
    pub id: u64,
}

impl Posting {
    /// The whole second of the visit's last fix.
    pub fn t_last(&self) -> u32 {
        self.t_first + u32::from(self.dur)
    }
}

/// Whole seconds of a time, clamped to u32.
pub fn sec(time_us: i64) -> u32 {
    time_us.div_euclid(1_000_000).clamp(0, i64::from(u32::MAX)) as u32
}

/// The postings of one segment's track.
pub fn postings_of(id: u64, fixes: &[GpsFix]) -> Vec<Posting> {
    let mut out = Vec::new();
    for &level in &LEVELS {
        let mut cur: Option<Posting> = None;
        for f in fixes {
            let key = cell_of(level, f);
            let bit = sub_cell_bit(level, f);
            let t = sec(f.time_us);
            match &mut cur {
                Some(p) if p.key == key && t >= p.t_first && t - p.t_first <= MAX_VISIT_S => {
                    // At most MAX_VISIT_S, which fits.
                    p.dur = p.dur.max((t - p.t_first) as u16);
                    p.mask |= bit;
                }
                _ => {
                    if let Some(p) = cur.take() {
                        out.push(p);
                    }
                    cur = Some(Posting {
                        key,
                        t_first: t,
                        dur: 0,
                        mask: bit,
                        id,
                    });
                }
            }
        }
        out.extend(cur);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A prepared lookup: the base run's postings of each cell of a cover, for one time range,
/// with the sub-cells of each cell that meet the area.
pub struct Lookup<'a> {
    idx: &'a SpatialIndex,
    cells: Vec<(u64, u16, &'a [Posting])>,
    from: u32,
    to: u32,
}

impl Lookup<'_> {
    /// Postings to scan (the buffer counted by its size, which is small).
    pub fn cost(&self) -> usize {
        self.cells.iter().map(|c| c.2.len() + 1).sum::<usize>() + self.idx.mem.len().min(64)
    }

    /// Calls `f` with the id of every posting that overlaps the time range and was in a
    /// sub-cell that meets the area.
    pub fn for_each(&self, mut f: impl FnMut(u64)) {
        for &(key, mask, run) in &self.cells {
            for p in run
                .iter()
                .chain(self.idx.mem_range(key, self.from, self.to))
            {
                if p.t_last() >= self.from && p.mask & mask != 0 {
                    f(p.id);
                }
            }
        }
    }
}

/// The directory of a sorted run: each distinct key and where its postings start.
fn directory(base: &[Posting]) -> Vec<(u64, usize)> {
    let mut dir: Vec<(u64, usize)> = Vec::new();
    for (i, p) in base.iter().enumerate() {
        if dir.last().is_none_or(|d| d.0 != p.key) {
            dir.push((p.key, i));
        }
    }
    dir.shrink_to_fit();
    dir
}

#[derive(Debug, Default)]
pub struct SpatialIndex {
    base: Vec<Posting>,
    mem: BTreeSet<Posting>,
    /// Each distinct key of `base` with the index of its first posting, ascending: a small
    /// directory that lookups search instead of the whole run (a cache miss per level).
    dir: Vec<(u64, usize)>,
}

impl SpatialIndex {
    pub fn insert(&mut self, postings: Vec<Posting>) {
        self.mem.extend(postings);
        // Merge when the buffer reaches an eighth of the base run (at least MEM_LIMIT), so
        // building a large index costs O(n log n), not O(n²).
        if self.mem.len() > MEM_LIMIT.max(self.base.len() / 8) {
            self.merge();
        }
    }

    fn merge(&mut self) {
        let mut out = Vec::with_capacity(self.base.len() + self.mem.len());
        out.extend(self.sorted());
        self.base = out;
        self.dir = directory(&self.base);
        self.mem.clear();
    }

    /// Every posting in order (the base run merged with the buffer).
    pub fn sorted(&self) -> impl Iterator<Item = Posting> + '_ {
        let mut a = self.base.iter().copied().peekable();
        let mut b = self.mem.iter().copied().peekable();
        std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x <= y => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        })
    }

    pub fn len(&self) -> usize {
        self.base.len() + self.mem.len()
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Postings of `key` that may hold a fix in seconds `[from, to]`.
    fn range(&self, key: u64, from: u32, to: u32) -> &[Posting] {
        let i = self.dir.partition_point(|d| d.0 < key);
        let run = match self.dir.get(i) {
            Some(&(k, first)) if k == key => {
                let end = self.dir.get(i + 1).map_or(self.base.len(), |d| d.1);
                self.base.get(first..end).unwrap_or_default()
            }
            _ => return &[],
        };
        let lo_t = from.saturating_sub(MAX_VISIT_S);
        let lo = run.partition_point(|p| p.t_first < lo_t);
        let hi = run.partition_point(|p| p.t_first <= to);
        run.get(lo..hi.max(lo)).unwrap_or_default()
    }

    fn mem_range(&self, key: u64, from: u32, to: u32) -> impl Iterator<Item = &Posting> {
        let lo = Posting {
            key,
            t_first: from.saturating_sub(MAX_VISIT_S),
            dur: 0,
            mask: 0,
            id: 0,
        };
        let hi = Posting {
            key,
            t_first: to,
            dur: u16::MAX,
            mask: u16::MAX,
            id: u64::MAX,
        };
        self.mem.range(lo..=hi)
    }

    /// The postings of each cell of `cover` that may hold a fix in seconds [from, to]: found
    /// once, then costed ([`Lookup::cost`]) and read ([`Lookup::for_each`]).
    pub fn prepare(&self, cover: &Cover, from: u32, to: u32) -> Lookup<'_> {
        Lookup {
            idx: self,
            cells: cover
                .keys()
                .map(|key| (key, cover.sub_mask(key), self.range(key, from, to)))
                .collect(),
            from,
            to,
        }
    }

    /// Calls `f` with the id of every posting in the cover that overlaps seconds [from, to].
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
    pub fn lookup(&self, cover: &Cover, from: u32, to: u32, f: impl FnMut(u64)) {
        self.prepare(cover, from, to).for_each(f);
    }

    /// An estimate of the work of [`Self::lookup`] (see [`Lookup::cost`]).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
    pub fn cost(&self, cover: &Cover, from: u32, to: u32) -> usize {
        self.prepare(cover, from, to).cost()
    }

    /// Serialises the live postings (those `keep` accepts), delta-encoded, with their
    /// sub-cell masks (checkpoint version 4).
    pub fn encode(&self, w: &mut Writer, keep: impl Fn(u64) -> bool) {
        let live = || self.sorted().filter(|p| keep(p.id));
        w.u64(live().count() as u64);
        let (mut pk, mut pt, mut pid) = (0u64, 0u32, 0u64);
        for p in live() {
            w.varint(p.key - pk);
            let t_base = if p.key == pk { pt } else { 0 };
            w.varint(u64::from(p.t_first - t_base));
            w.varint(u64::from(p.dur));
            w.varint(u64::from(p.mask));
            w.svarint(p.id.wrapping_sub(pid) as i64);
            pk = p.key;
            pt = p.t_first;
            pid = p.id;
        }
    }

    /// Reads what [`Self::encode`] wrote (`with_masks`), or what a version-3 checkpoint holds
    /// (no masks: every sub-cell set). The postings are the last part of a checkpoint body
    /// and by far its largest: this consumes the rest of `r` and decodes it with the inline
    /// varint reader, then fails unless every byte was used.
    pub fn decode(r: &mut Reader, with_masks: bool) -> Result<SpatialIndex, DecodeError> {
        let n = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
        if n > r.remaining() / 4 {
            return Err(DecodeError::Truncated("spatial index"));
        }
        let data = r.take(r.remaining())?;
        let mut pos = 0usize;
        let bad = || DecodeError::invalid("spatial index", "posting out of range");
        let mut base = Vec::with_capacity(n);
        let (mut pk, mut pt, mut pid) = (0u64, 0u32, 0u64);
        let mut prev: Option<Posting> = None;
        for _ in 0..n {
            let mut next =
                || read_varint(data, &mut pos).ok_or(DecodeError::Truncated("spatial index"));
            let key = pk.checked_add(next()?).ok_or_else(bad)?;
            let t_base = if key == pk { pt } else { 0 };
            let dt = u32::try_from(next()?).map_err(|_| bad())?;
            let t_first = t_base.checked_add(dt).ok_or_else(bad)?;
            let dur = u32::try_from(next()?)
                .ok()
                .filter(|&d| d <= MAX_VISIT_S)
                .ok_or_else(bad)?;
            t_first.checked_add(dur).ok_or_else(bad)?;
            let mask = match with_masks {
                true => u16::try_from(next()?).map_err(|_| bad())?,
                false => ALL_SUB_CELLS,
            };
            let d = next()?;
            let id = pid.wrapping_add((((d >> 1) as i64) ^ -((d & 1) as i64)) as u64);
            let p = Posting {
                key,
                t_first,
                dur: dur as u16,
                mask,
                id,
            };
            if prev.is_some_and(|q| q > p) {
                return Err(DecodeError::invalid(
                    "spatial index",
                    "postings out of order",
                ));
            }
            base.push(p);
            prev = Some(p);
            (pk, pt, pid) = (key, t_first, id);
        }
        if pos != data.len() {
            return Err(DecodeError::invalid(
                "spatial index",
                format!("{} unexpected trailing bytes", data.len() - pos),
            ));
        }
        Ok(SpatialIndex {
            dir: directory(&base),
            base,
            mem: BTreeSet::new(),
        })
    }

    pub fn heap_bytes(&self) -> usize {
        // A B-tree node holds up to 11 postings; count it as half full.
        (self.base.capacity() + self.mem.len() * 2) * std::mem::size_of::<Posting>()
            + self.dir.capacity() * std::mem::size_of::<(u64, usize)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::geo::Area;

    fn fix(t: i64, lat: f64, lon: f64) -> GpsFix {
        GpsFix::from_degrees(t * 1_000_000, lat, lon).unwrap()
    }

    #[test]
    fn lookups_after_merges_match_a_scan() {
        // Enough postings to merge the buffer into the base run (and rebuild the directory)
        // several times, some left in the buffer.
        let mut idx = SpatialIndex::default();
        let mut all = Vec::new();
        for id in 0..40_000u64 {
            let t0 = 1_000 + (id as i64 * 37) % 50_000;
            let lat = 51.3 + (id % 97) as f64 * 0.004;
            let lon = -0.4 + (id % 89) as f64 * 0.008;
            let fixes: Vec<GpsFix> = (0..8)
                .map(|i| fix(t0 + i * 60, lat + i as f64 * 0.0007, lon))
                .collect();
            let p = postings_of(id, &fixes);
            all.extend(p.iter().copied());
            idx.insert(p);
        }
        assert!(!idx.base.is_empty() && !idx.mem.is_empty());
        for (k, area) in [
            Area::Near {
                lat: 51.45,
                lon: -0.2,
                radius_m: 800.0,
            },
            Area::BBox {
                min_lat: 51.35,
                min_lon: -0.3,
                max_lat: 51.5,
                max_lon: 0.1,
            },
        ]
        .iter()
        .enumerate()
        {
            for (from, to) in [(0u32, 100_000u32), (20_000, 21_000), (4_000, 4_000)] {
                let level = LEVELS[k];
                let cover = area.cover(level);
                let mut got = Vec::new();
                idx.lookup(&cover, from, to, |id| got.push(id));
                got.sort_unstable();
                let mut want: Vec<u64> = all
                    .iter()
                    .filter(|p| cover.contains(p.key))
                    .filter(|p| p.t_last() >= from && p.t_first <= to)
                    .filter(|p| p.mask & cover.sub_mask(p.key) != 0)
                    .map(|p| p.id)
                    .collect();
                want.sort_unstable();
                assert_eq!(got, want, "{area:?} {from}..{to}");
            }
        }
    }

    #[test]
    fn sub_cells_narrow_a_cell_and_older_checkpoints_read_as_whole_cells() {
        // Two segments in opposite corners of one level-16 cell (305 m × 380 m here).
        let a = fix(1_000, 51.49869, -0.12579);
        let b = fix(1_000, 51.50088, -0.12140);
        assert_eq!(cell_of(16, &a), cell_of(16, &b));
        assert_ne!(sub_cell_bit(16, &a), sub_cell_bit(16, &b));
        let mut idx = SpatialIndex::default();
        idx.insert(postings_of(1, &[a]));
        idx.insert(postings_of(2, &[b]));
        let near_a = Area::Near {
            lat: a.lat(),
            lon: a.lon(),
            radius_m: 20.0,
        };
        let cover = near_a.cover(16);
        let got = |idx: &SpatialIndex| {
            let mut v = Vec::new();
            idx.lookup(&cover, 0, 10_000, |id| v.push(id));
            v.sort_unstable();
            v
        };
        assert_eq!(got(&idx), vec![1]);
        // Encoded, then read as a version-3 checkpoint would be (the same bytes without the
        // masks): every posting names its whole cell.
        let mut w = Writer::new();
        w.u64(idx.len() as u64);
        for (i, p) in idx.sorted().enumerate() {
            let prev = (i > 0).then(|| idx.sorted().nth(i - 1)).flatten();
            w.varint(p.key - prev.map_or(0, |q| q.key));
            let same = prev.is_some_and(|q| q.key == p.key);
            w.varint(u64::from(p.t_first - prev.filter(|_| same).map_or(0, |q| q.t_first)));
            w.varint(u64::from(p.dur));
            w.svarint(p.id.wrapping_sub(prev.map_or(0, |q| q.id)) as i64);
        }
        let old = SpatialIndex::decode(&mut Reader::new(&w.buf, "t"), false).unwrap();
        assert!(old.sorted().all(|p| p.mask == ALL_SUB_CELLS));
        assert_eq!(got(&old), vec![1, 2]);
    }

    #[test]
    fn lookups_find_segments_by_place_and_time_and_survive_encoding() {
        let mut idx = SpatialIndex::default();
        let walk: Vec<GpsFix> = (0..720)
            .map(|i| fix(1_000 + i * 5, 51.5 + i as f64 * 1e-5, -0.12))
            .collect();
        idx.insert(postings_of(1, &walk));
        idx.insert(postings_of(2, &[fix(50_000, -33.86, 151.21)]));
        let here = Area::Near {
            lat: 51.5,
            lon: -0.12,
            radius_m: 10.0,
        };
        let mut got = Vec::new();
        idx.lookup(&here.cover(16), 1_000, 1_000, |id| got.push(id));
        assert_eq!(got, vec![1]);
        got.clear();
        idx.lookup(&here.cover(16), 40_000, 60_000, |id| got.push(id));
        assert!(got.is_empty());
        let mut w = Writer::new();
        idx.encode(&mut w, |_| true);
        let back = SpatialIndex::decode(&mut Reader::new(&w.buf, "t"), true).unwrap();
        let all: Vec<Posting> = idx.sorted().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(back.base, all);
    }
}
