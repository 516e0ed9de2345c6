//! The catalog: the in-memory table of committed segments, rebuilt from commit records and
//! persisted by checkpoints.
//!
//! Invariants:
//! - `entries` is sorted by segment id and holds each committed segment exactly once; applying
//!   the same commit record twice is a no-op, so replaying a log over a checkpoint that already
//!   contains part of it is safe;
//! - an entry is small and fixed-size (see [`SegmentEntry`]): everything else about a segment
//!   lives in its commit record on disk and is read on demand;
//! - `next_segment_id`, `next_lsn` and `next_volume_id` are above every id seen;
//! - after a log replay at open the tables hold no spare capacity ([`Catalog::reserve_exact`]
//!   before, [`Catalog::shrink_to_fit`] after), so a replayed catalog costs what a loaded
//!   checkpoint costs; a live store's `entries` still grows by doubling.

pub mod checkpoint;
mod dedup;
mod interner;

pub use dedup::{dedup_key, DedupIndex};
pub use interner::Interner;

use std::collections::BTreeMap;

use crate::format::commit::CommitRecord;

/// One committed segment, as held in memory (56 bytes).
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

#[derive(Debug, Default)]
pub struct Catalog {
    entries: Vec<SegmentEntry>,
    pub dedup: DedupIndex,
    pub names: Interner,
    pub volumes: BTreeMap<u32, VolumeState>,
    pub next_segment_id: u64,
    pub next_lsn: u64,
    pub next_volume_id: u32,
    pub total_bytes: u64,
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

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[SegmentEntry] {
        &self.entries
    }

    pub fn get(&self, id: u64) -> Option<&SegmentEntry> {
        self.entries
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// Applies a commit record found at `offset` of volume `volume_id`. Returns false if the
    /// segment was already known (replay over a checkpoint).
    pub fn apply_commit(&mut self, rec: &CommitRecord, volume_id: u32, offset: u64) -> bool {
        self.next_segment_id = self.next_segment_id.max(rec.segment_id + 1);
        self.next_lsn = self.next_lsn.max(rec.lsn + 1);
        let pos = match self.entries.binary_search_by_key(&rec.segment_id, |e| e.id) {
            Ok(_) => return false,
            Err(pos) => pos,
        };
        let entry = SegmentEntry {
            id: rec.segment_id,
            start_us: rec.meta.start_us,
            end_us: rec.meta.end_us,
            bytes: rec.bytes,
            meta_volume: volume_id,
            meta_block: (offset / crate::format::BLOCK) as u32,
            officer: self.names.intern(&rec.meta.officer),
            device: self.names.intern(&rec.meta.device),
            flags: 0,
        };
        // Ids are handed out in order and commits arrive nearly in order: this is an append
        // or a short move near the end.
        self.entries.insert(pos, entry);
        self.dedup
            .insert(dedup_key(&rec.meta.device, &rec.sha256), rec.segment_id);
        self.total_bytes += rec.bytes;
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

    /// Replaces the whole segment table (checkpoint load). `entries` must be sorted by id.
    pub fn set_entries(&mut self, entries: Vec<SegmentEntry>) {
        self.total_bytes = entries.iter().map(|e| e.bytes).sum();
        self.entries = entries;
    }

    /// Bytes of heap memory held by the catalog (entries, dedup index, names).
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
        assert!(std::mem::size_of::<SegmentEntry>() <= 56);
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
