//! The footage index: finds segments by time, officer, device, case, tag, category and place.
//!
//! ```text
//!  time        Vec<(start, id)> sorted            window overlap: seek to from - max_duration
//!  officer     sym -> Vec<(start, id)> sorted     one list per officer (and per device)
//!  labels      case/tag/category -> ids sorted    persisted in the checkpoint
//!  spatial     postings (cell, t_first, duration, sub-cells, id) at 4 cell sizes, see `spatial`
//!  tracks      every segment's track, delta-encoded in catalog/tracks.ftt (mmap), see `tracks`
//! ```
//!
//! The time, officer and device lists are rebuilt from the catalog entries when a checkpoint
//! is loaded (a sort of data already in memory); labels and spatial postings are persisted in
//! the checkpoint because rebuilding them would need every commit record.
//!
//! Invariants:
//! - every catalog entry is in `time`, in its officer's and device's list, and in the label
//!   lists of its labels, exactly once; its track (if it has fixes) is in the track store and
//!   its postings in the spatial index;
//! - `max_duration` is at least `end - start` of every indexed segment;
//! - the index changes only under the catalog's write lock, in the same step as the catalog,
//!   so it recovers exactly like the catalog (checkpoint + replay of commit records).

pub mod geo;
pub mod query;
pub mod spatial;
pub mod track_record;
pub mod tracks;

use std::collections::HashMap;

use crate::format::{DecodeError, Reader, Writer};
use crate::meta::SegmentMeta;
use spatial::SpatialIndex;
use tracks::{TrackStore, NO_TRACK};

/// Label kinds, in their checkpoint order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    Case = 0,
    Tag = 1,
    Category = 2,
}

/// (start, id) pairs sorted ascending: the order results are returned in.
pub type TimeList = Vec<(i64, u64)>;

/// What the index's time, officer and device lists need of a segment; the catalog's entries
/// provide it (`catalog::SegmentEntry`), so the index does not depend on the catalog.
pub trait Listed {
    fn id(&self) -> u64;
    fn start_us(&self) -> i64;
    fn end_us(&self) -> i64;
    /// Interned officer number.
    fn officer(&self) -> u32;
    /// Interned device number.
    fn device(&self) -> u32;
}

pub struct Index {
    pub(crate) time: TimeList,
    pub(crate) by_officer: HashMap<u32, TimeList>,
    pub(crate) by_device: HashMap<u32, TimeList>,
    pub(crate) labels: [HashMap<String, Vec<u64>>; 3],
    pub(crate) spatial: SpatialIndex,
    pub(crate) tracks: TrackStore,
    pub(crate) max_duration: i64,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            time: Vec::new(),
            by_officer: HashMap::new(),
            by_device: HashMap::new(),
            labels: Default::default(),
            spatial: SpatialIndex::default(),
            tracks: TrackStore::in_memory(),
            max_duration: 0,
        }
    }
}

fn insert_sorted<T: Ord>(v: &mut Vec<T>, x: T) {
    let pos = v.partition_point(|y| *y < x);
    if v.get(pos) != Some(&x) {
        v.insert(pos, x);
    }
}

impl Index {
    /// Indexes a newly committed segment; returns where its track was stored.
    pub fn add(&mut self, id: u64, officer: u32, device: u32, meta: &SegmentMeta) -> u64 {
        let key = (meta.start_us, id);
        insert_sorted(&mut self.time, key);
        insert_sorted(self.by_officer.entry(officer).or_default(), key);
        insert_sorted(self.by_device.entry(device).or_default(), key);
        for (kind, list) in [
            (LabelKind::Case, &meta.cases),
            (LabelKind::Tag, &meta.tags),
            (LabelKind::Category, &meta.categories),
        ] {
            for l in list {
                self.add_label(kind, l, id);
            }
        }
        self.max_duration = self
            .max_duration
            .max(meta.end_us.saturating_sub(meta.start_us));
        if meta.gps.is_empty() {
            return NO_TRACK;
        }
        self.spatial.insert(spatial::postings_of(id, &meta.gps));
        self.tracks.append(id, &meta.gps)
    }

    pub fn add_label(&mut self, kind: LabelKind, label: &str, id: u64) {
        let lists = &mut self.labels[kind as usize];
        match lists.get_mut(label) {
            Some(l) => insert_sorted(l, id),
            None => {
                lists.insert(label.to_string(), vec![id]);
            }
        }
    }

    pub fn remove_label(&mut self, kind: LabelKind, label: &str, id: u64) {
        let lists = &mut self.labels[kind as usize];
        if let Some(l) = lists.get_mut(label) {
            if let Ok(i) = l.binary_search(&id) {
                l.remove(i);
            }
            if l.is_empty() {
                lists.remove(label);
            }
        }
    }

    /// Rebuilds the time, officer and device lists from catalog entries (checkpoint load).
    pub fn rebuild_lists<E: Listed>(&mut self, entries: &[E]) {
        let mut time: TimeList = entries.iter().map(|e| (e.start_us(), e.id())).collect();
        time.sort_unstable();
        for e in entries {
            self.max_duration = self
                .max_duration
                .max(e.end_us().saturating_sub(e.start_us()));
        }
        // Name numbers are dense (the interner hands them out from 0), so the lists are built
        // in vectors indexed by number, at their exact size, without hashing every entry.
        let names = entries
            .iter()
            .map(|e| e.officer().max(e.device()) as usize + 1)
            .max()
            .unwrap_or(0);
        if names > entries.len().saturating_mul(2) + 1024 {
            // Sparse numbers (not from a checkpoint this build wrote): hash them.
            let mut officers: HashMap<u32, TimeList> = HashMap::new();
            let mut devices: HashMap<u32, TimeList> = HashMap::new();
            for e in entries {
                officers
                    .entry(e.officer())
                    .or_default()
                    .push((e.start_us(), e.id()));
                devices
                    .entry(e.device())
                    .or_default()
                    .push((e.start_us(), e.id()));
            }
            for l in officers.values_mut().chain(devices.values_mut()) {
                l.sort_unstable();
                l.shrink_to_fit();
            }
            self.by_officer = officers;
            self.by_device = devices;
        } else {
            let by = |sym: fn(&E) -> u32| {
                let mut counts = vec![0usize; names];
                for e in entries {
                    counts[sym(e) as usize] += 1;
                }
                let mut lists: Vec<TimeList> =
                    counts.iter().map(|&c| Vec::with_capacity(c)).collect();
                for e in entries {
                    lists[sym(e) as usize].push((e.start_us(), e.id()));
                }
                lists
                    .into_iter()
                    .enumerate()
                    .filter(|(_, l)| !l.is_empty())
                    .map(|(i, mut l)| {
                        l.sort_unstable();
                        (i as u32, l)
                    })
                    .collect::<HashMap<u32, TimeList>>()
            };
            self.by_officer = by(|e| e.officer());
            self.by_device = by(|e| e.device());
        }
        self.time = time;
    }

    /// The ids carrying a label, sorted (empty if none).
    pub fn label(&self, kind: LabelKind, label: &str) -> &[u64] {
        self.labels[kind as usize]
            .get(label)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Serialises the persisted parts (labels, spatial postings, track file length) for a
    /// checkpoint; postings and labels of segments `keep` rejects are left out.
    pub fn encode(&self, w: &mut Writer, keep: impl Fn(u64) -> bool) {
        w.u64(self.tracks.len());
        w.i64(self.max_duration);
        for lists in &self.labels {
            let mut names: Vec<&String> = lists.keys().collect();
            names.sort();
            w.u32(names.len() as u32);
            for name in names {
                let ids: Vec<u64> = lists[name].iter().copied().filter(|&i| keep(i)).collect();
                w.str16(name);
                w.u64(ids.len() as u64);
                let mut prev = 0;
                for id in ids {
                    w.varint(id - prev);
                    prev = id;
                }
            }
        }
        self.spatial.encode(w, keep);
    }

    /// Reads what [`Self::encode`] wrote (postings `with_masks` from checkpoint version 4 on);
    /// returns the index and the track file length it names.
    pub fn decode(r: &mut Reader, with_masks: bool) -> Result<(Index, u64), DecodeError> {
        let mut idx = Index::default();
        let tracks_len = r.u64()?;
        idx.max_duration = r.i64()?;
        for lists in idx.labels.iter_mut() {
            let n = r.u32()?;
            for _ in 0..n {
                let name = r.str16()?;
                let count = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
                if count > r.remaining() {
                    return Err(DecodeError::Truncated("label list"));
                }
                let mut ids = Vec::with_capacity(count);
                let mut prev = 0u64;
                for i in 0..count {
                    let d = r.varint()?;
                    if i > 0 && d == 0 {
                        return Err(DecodeError::invalid("label list", "ids out of order"));
                    }
                    prev = prev
                        .checked_add(d)
                        .ok_or_else(|| DecodeError::invalid("label list", "id overflow"))?;
                    ids.push(prev);
                }
                lists.insert(name, ids);
            }
        }
        idx.spatial = SpatialIndex::decode(r, with_masks)?;
        Ok((idx, tracks_len))
    }

    /// Heap bytes held by the index (the mapped track file is not heap).
    pub fn heap_bytes(&self) -> usize {
        let list = std::mem::size_of::<(i64, u64)>();
        let lists: usize = self
            .by_officer
            .values()
            .chain(self.by_device.values())
            .map(|l| l.capacity() * list + 48)
            .sum();
        let labels: usize = self
            .labels
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| k.capacity() + v.capacity() * 8 + 56)
            .sum();
        self.time.capacity() * list
            + lists
            + labels
            + self.spatial.heap_bytes()
            + self.tracks.heap_bytes()
    }

    /// Postings in the spatial index.
    pub fn postings(&self) -> usize {
        self.spatial.len()
    }
}
