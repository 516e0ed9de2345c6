//! Whether a one-sync commit record (FORMAT §11, "One-sync commits") may be applied: its
//! chunks were written just before it and made durable by the same fdatasync, so a crash
//! before that fdatasync returned can leave the record on disk without them.
//!
//! A chunk needs no check when something proves it durable:
//! - it lies wholly below the durable watermark of its volume: the highest `durable_to` of the
//!   commit records found in that volume (each says an fdatasync covering those bytes had
//!   returned when it was appended); a volume that was not scanned is sealed and durable;
//! - the segment was visible before (the catalog loaded from a checkpoint has it), or a later
//!   change record names it (evicted, deleted, relabelled...): a segment is visible only once
//!   its commit's fdatasync has returned. This is what keeps a commit whose chunks were since
//!   punched (eviction, deletion) from being taken for one that never became durable.
//!
//! Every other chunk must be the chunk the record names and pass its CRCs (the Blocks form:
//! its trailer and every block). Invariant: the ids and LSNs of rejected commits are never
//! handed out again (the caller raises the catalog's counters), so a later change record of
//! the same id can only be about this segment.

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::format::change::ChangeRecord;
use crate::format::chunk::ChunkForm;
use crate::format::commit::CommitRecord;
use crate::format::record::{record_end, Kind};
use crate::log::volume::Volume;

/// A commit record left out: which segment, and the chunk that failed.
pub(crate) struct Unconfirmed {
    pub segment: u64,
    pub lsn: u64,
    pub committed_us: i64,
    pub sha256: [u8; 32],
    /// The volume holding the chunk, and the chunk record's offset in it.
    pub volume: u32,
    pub offset: u64,
    pub why: String,
}

/// What proves chunks durable, for the records of one replay.
pub(crate) struct Durable<'a> {
    volumes: &'a HashMap<u32, Arc<Volume>>,
    /// Durable watermark of each scanned volume.
    watermarks: HashMap<u32, u64>,
    /// The newest change-record LSN of each segment among the records replayed.
    changed: HashMap<u64, u64>,
    encrypted: bool,
}

impl<'a> Durable<'a> {
    pub(crate) fn new<'c>(
        volumes: &'a HashMap<u32, Arc<Volume>>,
        watermarks: HashMap<u32, u64>,
        changes: impl IntoIterator<Item = &'c ChangeRecord>,
        encrypted: bool,
    ) -> Durable<'a> {
        let mut changed: HashMap<u64, u64> = HashMap::new();
        for c in changes {
            let e = changed.entry(c.segment_id).or_insert(0);
            *e = (*e).max(c.lsn);
        }
        Durable {
            volumes,
            watermarks,
            changed,
            encrypted,
        }
    }

    /// The durable watermark of each volume some of `commits` (volume, position, record) are
    /// in: the highest `durable_to` among them.
    pub(crate) fn watermarks<'c>(
        commits: impl IntoIterator<Item = &'c (u32, u64, CommitRecord)>,
    ) -> HashMap<u32, u64> {
        let mut marks: HashMap<u32, u64> = HashMap::new();
        for (vol, _, c) in commits {
            let m = marks.entry(*vol).or_insert(0);
            *m = (*m).max(c.durable_to);
        }
        marks
    }

    /// Ok if `c` may be applied to `cat` (the catalog before `c` is applied).
    pub(crate) fn check(&self, c: &CommitRecord, cat: &Catalog) -> Result<(), Unconfirmed> {
        if !c.one_sync
            || cat.get(c.segment_id).is_some()
            || self.changed.get(&c.segment_id).is_some_and(|l| *l > c.lsn)
        {
            return Ok(());
        }
        let form = ChunkForm::of(c.block_crcs, self.encrypted);
        for (index, x) in c.extents.iter().enumerate() {
            let len = x.len + form.extra(x.len);
            let mark = self
                .watermarks
                .get(&x.volume_id)
                .copied()
                .unwrap_or(u64::MAX);
            if record_end(x.offset, len) <= mark {
                continue;
            }
            let why = match self.volumes.get(&x.volume_id) {
                None => Some("its volume is missing".to_string()),
                Some(v) => match v.read_record(x.offset) {
                    Ok((h, _)) => (h.kind != Kind::Chunk
                        || h.a != c.segment_id
                        || h.b as usize != index
                        || h.len != len
                        || h.has_block_crcs() != c.block_crcs)
                        .then(|| format!("chunk {index}: another record is there")),
                    Err(e) => Some(format!("chunk {index}: {e}")),
                },
            };
            if let Some(why) = why {
                return Err(Unconfirmed {
                    segment: c.segment_id,
                    lsn: c.lsn,
                    committed_us: c.committed_us,
                    sha256: c.sha256,
                    volume: x.volume_id,
                    offset: x.offset,
                    why,
                });
            }
        }
        Ok(())
    }
}
