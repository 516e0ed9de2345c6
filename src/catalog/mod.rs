//! The catalog: the in-memory table of committed segments, rebuilt from commit records and
//! persisted by checkpoints.
//!
//! Invariants:
//! - `entries` is sorted by segment id and holds each committed segment exactly once; applying
//!   the same commit record twice is a no-op, so replaying a log over a checkpoint that already
//!   contains part of it is safe;
//! - an entry is small and fixed-size (see [`SegmentEntry`]): everything else about a segment
//!   lives in its commit record on disk and is read on demand;
//! - the index (`index`) holds exactly the segments in `entries` and changes with them, under
//!   the same lock;
//! - `next_segment_id`, `next_lsn` and `next_volume_id` are above every id seen;
//! - after a log replay at open the tables hold no spare capacity ([`Catalog::reserve_exact`]
//!   before, [`Catalog::shrink_to_fit`] after), so a replayed catalog costs what a loaded
//!   checkpoint costs; a live store's `entries` still grows by doubling;
//! - a segment's mutable state (labels after changes, holds, tier flags) is in `states` once
//!   any change record touched it, with the LSN of that record: a change record is applied
//!   only if its LSN is newer, so replay over a checkpoint is safe;
//! - a deleted segment is flagged at once (`get` no longer finds it) and removed from
//!   `entries` by `compact`; index lists may name it until then and lookups skip it;
//! - `volume_live` counts, per volume, the chunk bytes of live local segments and the commit
//!   records of live segments: a sealed volume at (0, 0) holds nothing anyone needs.

pub mod checkpoint;
mod dedup;
mod interner;
pub mod search;

pub use dedup::{dedup_key, DedupIndex};
pub use interner::Interner;

use std::collections::{BTreeMap, HashMap};

use crate::format::change::{ChangeRecord, Op, SegmentState, FLAG_DELETED, FLAG_EVICTED};
use crate::format::commit::CommitRecord;
use crate::index::LabelKind;

/// The mutable state of a segment that changes touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    /// LSN of the change record that set it.
    pub lsn: u64,
    /// Volume holding that change record.
    pub volume: u32,
    pub state: SegmentState,
}

/// One committed segment, as held in memory (64 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEntry {
    pub id: u64,
    pub start_us: i64,
    pub end_us: i64,
    pub bytes: u64,
    /// Volume holding the segment's commit record.
    pub meta_volume: u32,
    /// Block (offset / 4096) of the commit record's header in that volume.
    pub meta_block: u32,
    /// Interned officer id.
    pub officer: u32,
    /// Interned device id.
    pub device: u32,
    /// Reserved for tier and state flags (0 = local only).
    pub flags: u32,
    /// Offset of the segment's GPS track in the track file (`NO_TRACK` if it has none).
    pub track: u64,
}

impl crate::index::Listed for SegmentEntry {
    fn id(&self) -> u64 {
        self.id
    }
    fn start_us(&self) -> i64 {
        self.start_us
    }
    fn end_us(&self) -> i64 {
        self.end_us
    }
    fn officer(&self) -> u32 {
        self.officer
    }
    fn device(&self) -> u32 {
        self.device
    }
}

impl SegmentEntry {
    /// Offset of the commit record header in its volume.
    pub fn meta_offset(&self) -> u64 {
        u64::from(self.meta_block) * crate::format::BLOCK + (crate::format::BLOCK - 32)
    }
}

/// What the catalog knows about one volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeState {
    pub id: u32,
    pub dir: u16,
    pub sealed: bool,
    /// Offset from which the log must be replayed on open; everything before it is in the
    /// checkpoint.
    pub replay_from: u64,
}

#[derive(Default)]
pub struct Catalog {
    entries: Vec<SegmentEntry>,
    pub index: crate::index::Index,
    pub dedup: DedupIndex,
    pub names: Interner,
    pub volumes: BTreeMap<u32, VolumeState>,
    pub next_segment_id: u64,
    pub next_lsn: u64,
    pub next_volume_id: u32,
    pub total_bytes: u64,
    pub states: HashMap<u64, StateEntry>,
    /// Per volume: (chunk bytes of live local segments, commit records of live segments).
    pub volume_live: HashMap<u32, (u64, u32)>,
    deleted: usize,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog {
            next_segment_id: 1,
            next_lsn: 1,
            next_volume_id: 1,
            ..Catalog::default()
        }
    }

    /// Live segments.
    pub fn len(&self) -> usize {
        self.entries.len() - self.deleted
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // called by the tests
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live segment, ascending by id.
    pub fn live(&self) -> impl Iterator<Item = &SegmentEntry> {
        self.entries.iter().filter(|e| e.flags & FLAG_DELETED == 0)
    }

    /// A live segment. Ids are handed out in order and entries are sorted by id, so while no
    /// id is missing an entry's rank is its id minus the first id: that slot is tried before
    /// the binary search (which costs a cache miss per level on a large catalog).
    #[inline]
    pub fn get(&self, id: u64) -> Option<&SegmentEntry> {
        let es = &self.entries;
        let guess = es
            .first()
            .and_then(|f| id.checked_sub(f.id))
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| es.get(i))
            .filter(|e| e.id == id);
        guess
            .or_else(|| {
                es.binary_search_by_key(&id, |e| e.id)
                    .ok()
                    .and_then(|i| es.get(i))
            })
            .filter(|e| e.flags & FLAG_DELETED == 0)
    }

    /// True when the catalog still lists `id` as deleted (a `Deleted` change record was
    /// applied and the table has not been compacted since).
    pub fn is_deleted(&self, id: u64) -> bool {
        self.entries
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .and_then(|i| self.entries.get(i))
            .is_some_and(|e| e.flags & FLAG_DELETED != 0)
    }

    /// The first live segment with an id above `after` (a scrub walks the catalog with it).
    pub fn next_live_after(&self, after: u64) -> Option<&SegmentEntry> {
        let start = self.entries.partition_point(|e| e.id <= after);
        self.entries
            .get(start..)
            .unwrap_or_default()
            .iter()
            .find(|e| e.flags & FLAG_DELETED == 0)
    }

    /// The state changes gave a segment, if any did.
    pub fn state(&self, id: u64) -> Option<&StateEntry> {
        self.states.get(&id)
    }

    /// Whether `c` is a delta whose base state is not the segment's current one (and which is
    /// not already applied): its predecessor was lost, so it cannot be applied.
    pub fn delta_without_base(&self, c: &ChangeRecord) -> bool {
        let Some(base) = c.base_lsn else {
            return false;
        };
        if self.get(c.segment_id).is_none() {
            return false;
        }
        match self.states.get(&c.segment_id) {
            Some(s) => s.lsn < c.lsn && s.lsn != base,
            None => true,
        }
    }

    /// Applies a change record found in volume `volume_id`. Returns false if it was already
    /// applied (or names a segment that no longer exists, or is a delta whose base is not the
    /// segment's current state: see [`Catalog::delta_without_base`]).
    pub fn apply_change(&mut self, c: &ChangeRecord, volume_id: u32) -> bool {
        self.next_lsn = self.next_lsn.max(c.lsn.saturating_add(1));
        // A delta: the state after it is its base with the op applied.
        let state = match c.base_lsn {
            None => c.state.clone(),
            Some(base) => match self.states.get(&c.segment_id) {
                Some(s) if s.lsn == base && base < c.lsn => {
                    let mut st = s.state.clone();
                    st.apply(c.op, &c.arg);
                    st
                }
                _ => return false,
            },
        };
        let Ok(i) = self.entries.binary_search_by_key(&c.segment_id, |e| e.id) else {
            return false;
        };
        let Some(e) = self.entries.get_mut(i) else {
            return false;
        };
        if e.flags & FLAG_DELETED != 0
            || self
                .states
                .get(&c.segment_id)
                .is_some_and(|s| s.lsn >= c.lsn)
        {
            return false;
        }
        for &(v, b) in &c.freed {
            let live = self.volume_live.entry(v).or_default();
            if c.op == Op::Restored {
                // The restored copy's chunks (named by the segment's newest commit record,
                // applied before this record in LSN order) are live from now on.
                live.0 = live.0.saturating_add(b);
            } else {
                live.0 = live.0.saturating_sub(b);
            }
        }
        e.flags = state.flags;
        let id = c.segment_id;
        if c.op == Op::Deleted {
            e.flags |= FLAG_DELETED;
            let (bytes, meta_volume) = (e.bytes, e.meta_volume);
            let live = self.volume_live.entry(meta_volume).or_default();
            live.1 = live.1.saturating_sub(1);
            self.total_bytes = self.total_bytes.saturating_sub(bytes);
            self.states.remove(&id);
            self.deleted += 1;
            if self.deleted > 1024 && self.deleted > self.entries.len() / 64 {
                self.compact();
            }
            return true;
        }
        let label = match c.op {
            Op::AddCategory | Op::RemoveCategory => Some(LabelKind::Category),
            Op::AddTag | Op::RemoveTag => Some(LabelKind::Tag),
            Op::AddCase | Op::RemoveCase | Op::Hold => Some(LabelKind::Case),
            _ => None,
        };
        if let Some(kind) = label {
            match c.op {
                Op::AddCategory | Op::AddTag | Op::AddCase | Op::Hold => {
                    self.index.add_label(kind, &c.arg, id)
                }
                _ => self.index.remove_label(kind, &c.arg, id),
            }
        }
        self.states.insert(
            id,
            StateEntry {
                lsn: c.lsn,
                volume: volume_id,
                state,
            },
        );
        true
    }

    /// Drops deleted segments from the table and the index lists.
    pub fn compact(&mut self) {
        if self.deleted == 0 {
            return;
        }
        self.entries.retain(|e| e.flags & FLAG_DELETED == 0);
        self.deleted = 0;
        let entries = std::mem::take(&mut self.entries);
        self.index.rebuild_lists(&entries);
        self.entries = entries;
        let live = |id: u64| self.entries.binary_search_by_key(&id, |e| e.id).is_ok();
        for lists in self.index.labels.iter_mut() {
            for l in lists.values_mut() {
                l.retain(|&id| live(id));
            }
            lists.retain(|_, l| !l.is_empty());
        }
    }

    /// Applies a commit record found at `offset` of volume `volume_id`. Returns false if the
    /// segment was already known (replay over a checkpoint).
    pub fn apply_commit(&mut self, rec: &CommitRecord, volume_id: u32, offset: u64) -> bool {
        self.next_segment_id = self.next_segment_id.max(rec.segment_id.saturating_add(1));
        self.next_lsn = self.next_lsn.max(rec.lsn.saturating_add(1));
        let pos = match self.entries.binary_search_by_key(&rec.segment_id, |e| e.id) {
            Ok(_) => return false,
            Err(pos) => pos,
        };
        let officer = self.names.intern(&rec.meta.officer);
        let device = self.names.intern(&rec.meta.device);
        let track = self.index.add(rec.segment_id, officer, device, &rec.meta);
        let entry = SegmentEntry {
            id: rec.segment_id,
            start_us: rec.meta.start_us,
            end_us: rec.meta.end_us,
            bytes: rec.bytes,
            meta_volume: volume_id,
            meta_block: (offset / crate::format::BLOCK) as u32,
            officer,
            device,
            flags: 0,
            track,
        };
        for x in &rec.extents {
            self.volume_live.entry(x.volume_id).or_default().0 += u64::from(x.len);
        }
        self.volume_live.entry(volume_id).or_default().1 += 1;
        // Ids are handed out in order and commits arrive nearly in order: this is an append
        // or a short move near the end.
        self.entries.insert(pos, entry);
        self.dedup
            .insert(dedup_key(&rec.meta.device, &rec.sha256), rec.segment_id);
        self.total_bytes = self.total_bytes.saturating_add(rec.bytes);
        true
    }

    /// Moves a live segment to the commit record `rec` found at `offset` of `volume_id`: a
    /// copy written by compaction (same segment, newer LSN, chunks moved into `volume_id`).
    /// `old` is the record it replaces, when it can still be read; without it the chunks
    /// named in `volume_id` are counted as moved there (compaction moves chunks only into
    /// the volume of the new commit record). Returns false if nothing changed (unknown or
    /// deleted segment, or already at that place).
    pub fn relocate(
        &mut self,
        rec: &CommitRecord,
        volume_id: u32,
        offset: u64,
        old: Option<&CommitRecord>,
    ) -> bool {
        self.next_lsn = self.next_lsn.max(rec.lsn + 1);
        let Ok(i) = self.entries.binary_search_by_key(&rec.segment_id, |e| e.id) else {
            return false;
        };
        let Some(e) = self.entries.get_mut(i) else {
            return false;
        };
        let block = (offset / crate::format::BLOCK) as u32;
        if e.flags & FLAG_DELETED != 0 || (e.meta_volume == volume_id && e.meta_block == block) {
            return false;
        }
        let (old_volume, evicted) = (e.meta_volume, e.flags & FLAG_EVICTED != 0);
        e.meta_volume = volume_id;
        e.meta_block = block;
        let live = self.volume_live.entry(old_volume).or_default();
        live.1 = live.1.saturating_sub(1);
        self.volume_live.entry(volume_id).or_default().1 += 1;
        if evicted {
            return true; // its chunk bytes were already given back
        }
        let key = |x: &crate::format::commit::Extent| (x.volume_id, x.offset);
        match old {
            Some(o) => {
                for x in &o.extents {
                    if !rec.extents.iter().any(|y| key(y) == key(x)) {
                        let live = self.volume_live.entry(x.volume_id).or_default();
                        live.0 = live.0.saturating_sub(u64::from(x.len));
                    }
                }
                for x in &rec.extents {
                    if !o.extents.iter().any(|y| key(y) == key(x)) {
                        self.volume_live.entry(x.volume_id).or_default().0 += u64::from(x.len);
                    }
                }
            }
            None => {
                for x in rec.extents.iter().filter(|x| x.volume_id == volume_id) {
                    self.volume_live.entry(volume_id).or_default().0 += u64::from(x.len);
                }
            }
        }
        true
    }

    /// Makes room for up to `n` more segments without over-allocating (before a replay).
    pub fn reserve_exact(&mut self, n: usize) {
        self.entries.reserve_exact(n);
        self.dedup.reserve_exact(n);
    }

    /// Releases spare capacity (after a replay): the entries and the dedup index then hold
    /// exactly one slot per segment.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        self.dedup.compact();
    }

    /// Replaces the whole segment table (checkpoint load) and rebuilds the index lists from
    /// it. `entries` must be sorted by id.
    pub fn set_entries(&mut self, entries: Vec<SegmentEntry>) {
        self.total_bytes = entries.iter().fold(0u64, |t, e| t.saturating_add(e.bytes));
        self.index.rebuild_lists(&entries);
        self.entries = entries;
        self.deleted = 0;
    }

    /// Bytes of heap memory held by the catalog (entries, dedup index, names; not the index).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<SegmentEntry>()
            + self.dedup.heap_bytes()
            + self.names.heap_bytes()
            + self.volumes.len() * 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_entry_stays_small() {
        assert!(std::mem::size_of::<SegmentEntry>() <= 64);
    }

    fn record(id: u64) -> CommitRecord {
        CommitRecord {
            segment_id: id,
            lsn: id,
            committed_us: 0,
            bytes: 10,
            sha256: [id as u8; 32],
            chunk_capacity: 4064,
            meta: crate::meta::SegmentMeta {
                officer: "O-1".into(),
                device: "D-1".into(),
                start_us: 0,
                end_us: 1,
                ..crate::meta::SegmentMeta::default()
            },
            extents: vec![crate::format::commit::Extent {
                volume_id: 1,
                offset: 4064,
                len: 10,
            }],
            block_crcs: false,
            one_sync: false,
            durable_to: 0,
            actor: None,
        }
    }

    #[test]
    fn replay_leaves_no_spare_capacity() {
        let mut cat = Catalog::new();
        cat.reserve_exact(10_000);
        for id in 1..=9_000 {
            assert!(cat.apply_commit(&record(id), 1, 4064));
        }
        // Already applied: a no-op.
        assert!(!cat.apply_commit(&record(5), 1, 4064));
        cat.shrink_to_fit();
        assert_eq!(cat.len(), 9_000);
        assert_eq!(cat.entries.capacity(), 9_000);
        assert_eq!(cat.dedup.len(), 9_000);
        let per_segment = (cat.heap_bytes() - cat.names.heap_bytes()) / cat.len();
        assert_eq!(per_segment, std::mem::size_of::<SegmentEntry>() + 16);
        assert!(cat.get(4_321).is_some());
    }
}
