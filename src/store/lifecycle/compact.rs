//! Compaction: rewrites what is still live in a sealed volume that holds mostly dead bytes
//! (chunks and commit records of deleted, evicted, duplicate or never-committed segments that
//! hole punching did not or could not free) into a new volume, then removes the old one.
//!
//! The steps, for one source volume `V` (dir `d`, footage day `a`):
//! 1. under `change_lock` (no eviction, deletion or label change runs meanwhile), list the
//!    segments with records in `V` (record headers only) and keep the live ones: those whose
//!    commit record is in `V`, or that have local (not evicted) chunks in `V`;
//! 2. restate, in the active log, the newest change record of every live segment that sits in
//!    `V` (as dropping a volume does), so no state lives only in `V`;
//! 3. take a new volume id `N` (listed in the catalog as active with `replay_from` 0) and
//!    write `<d>/vol-N.ftv.compacting`: each live chunk read from `V` with both CRCs checked
//!    and appended unchanged (same segment id and chunk index), fdatasync; then, for each
//!    live segment, a new commit record (same segment and metadata, a new LSN, its extents
//!    pointing at the copies); a seal record; fdatasync;
//! 4. rename it to `vol-N.ftv` and fsync the directory — **the commit point**: from here a
//!    replay applies the new commit records after the old ones (LSN order), and a second
//!    commit record of a known segment moves it (`Catalog::relocate`);
//! 5. in memory, under the catalog lock: move the segments, list `N` sealed, forget `V`;
//! 6. write a checkpoint (it lists `N` and not `V`);
//! 7. remove `V`'s file and fsync the directory.
//!
//! A crash before 4 leaves a `*.compacting` file, removed at open; `V` is untouched. A crash
//! between 4 and 6 replays `N` over a checkpoint that still lists `V`: the segments move to
//! `N`, and `V` (now holding nothing live) is dropped by the next apply. A crash between 6
//! and 7 leaves `V`'s file with an id below the checkpoint's `next_volume_id` that the
//! checkpoint does not list: open removes it. So after any crash every live segment is read
//! from exactly one place and nothing is counted twice.
//!
//! Readers stay correct: a reader that opened a segment before the move holds extents into
//! `V`; `V`'s `Volume` (file descriptor and map) lives as long as a reader holds it, and a
//! reader that finds `V` gone reloads the segment's commit record and goes on from `N`.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fail;
use crate::format::change::{Op, FLAG_EVICTED};
use crate::format::chunk::ChunkForm;
use crate::format::commit::CommitRecord;
use crate::format::record::{Kind, RecordHeader};
use crate::format::volume::{VolumeHeader, VOLUME_HEADER_LEN};
use crate::log::volume::Volume;
use crate::log::writer::{Appended, VolumeWriter};
use crate::store::Store;

/// Suffix of a compaction target while it is being written.
pub const COMPACTING_SUFFIX: &str = ".compacting";

/// A volume is worth compacting only if that frees at least this much (so a small volume
/// that holds only a few commit records is not rewritten again and again).
pub const MIN_GAIN: u64 = 256 << 10;

/// Bytes a live commit record is assumed to take in a compacted volume (one block).
const COMMIT_ESTIMATE: u64 = crate::format::BLOCK;

/// What a compaction run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CompactSummary {
    /// Volumes rewritten.
    pub volumes: usize,
    /// Live segments moved to new volumes.
    pub segments_moved: usize,
    /// Disk bytes of the volumes rewritten, before.
    pub bytes_before: u64,
    /// Disk bytes of the volumes that replaced them.
    pub bytes_after: u64,
    /// `bytes_before - bytes_after`, plus volumes dropped whole.
    pub bytes_reclaimed: u64,
    /// Volumes that could not be compacted, with why (nothing was changed for them).
    pub failed: Vec<String>,
}

/// One volume's numbers: on-disk size, live chunk bytes, live commit records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Occupancy {
    pub allocated: u64,
    pub live_bytes: u64,
    pub live_commits: u32,
}

impl Occupancy {
    /// Bytes compaction would free, estimated.
    pub fn dead(&self) -> u64 {
        let kept = VOLUME_HEADER_LEN as u64
            + self.live_bytes
            + u64::from(self.live_commits) * COMMIT_ESTIMATE;
        self.allocated.saturating_sub(kept)
    }

    /// Whether compacting frees at least `min_dead` of the volume (and at least `MIN_GAIN`).
    pub fn worth_it(&self, min_dead: f64) -> bool {
        let dead = self.dead();
        dead >= MIN_GAIN && dead as f64 >= min_dead * self.allocated as f64
    }
}

impl Store {
    /// Compacts every sealed volume in which at least `min_dead` (0..=1) of the disk space
    /// is dead, after dropping volumes that hold nothing live. A volume that fails (a chunk
    /// fails its CRC, the disk is full) is reported and left as it was.
    pub fn compact(&self, min_dead: f64, actor: &str) -> Result<CompactSummary> {
        self.inner.writable("compaction")?;
        if !(0.0..=1.0).contains(&min_dead) {
            return Err(Error::Invalid(format!(
                "min_dead {min_dead} must be between 0 and 1"
            )));
        }
        let mut s = CompactSummary {
            bytes_reclaimed: self.drop_empty_volumes(actor)?,
            ..CompactSummary::default()
        };
        for (vid, occ) in self.inner.sealed_occupancy() {
            if !occ.worth_it(min_dead) {
                continue;
            }
            match self.compact_volume(vid, actor) {
                Ok((moved, after)) => {
                    s.volumes += 1;
                    s.segments_moved += moved;
                    s.bytes_before += occ.allocated;
                    s.bytes_after += after;
                    s.bytes_reclaimed += occ.allocated.saturating_sub(after);
                }
                Err(e) => s.failed.push(format!("volume {vid}: {e}")),
            }
        }
        Ok(s)
    }

    /// Rewrites the live records of sealed volume `vid` into a new volume and removes it.
    /// Returns the segments moved and the new volume's size on disk.
    fn compact_volume(&self, vid: u32, actor: &str) -> Result<(usize, u64)> {
        let inner = &self.inner;
        let _serial = inner.change_lock.lock();
        let src = inner
            .volume(vid)
            .ok_or_else(|| Error::Invalid(format!("volume {vid} is not open")))?;
        let sealed = inner
            .catalog
            .read()
            .volumes
            .get(&vid)
            .is_some_and(|v| v.sealed);
        if !sealed || inner.active_volume_ids().contains(&vid) {
            return Err(Error::Invalid(format!("volume {vid} is not sealed")));
        }
        // 1. The live segments with records here.
        let ids: BTreeSet<u64> = crate::log::scan::headers(&src)
            .into_iter()
            .filter(|(_, h)| matches!(h.kind, Kind::Chunk | Kind::Commit))
            .map(|(_, h)| h.a)
            .collect();
        let mut moves: Vec<CommitRecord> = Vec::new();
        for id in ids {
            let Some(e) = inner.catalog.read().get(id).copied() else {
                continue;
            };
            let rec = inner.load_commit(id, true)?;
            let local = e.flags & FLAG_EVICTED == 0;
            if e.meta_volume == vid || (local && rec.extents.iter().any(|x| x.volume_id == vid)) {
                moves.push(rec);
            }
        }
        // 2. No state may live only in this volume.
        let restate: Vec<u64> = {
            let cat = inner.catalog.read();
            cat.states
                .iter()
                .filter(|(id, s)| s.volume == vid && cat.get(**id).is_some())
                .map(|(id, _)| *id)
                .collect()
        };
        for id in restate {
            let state = inner.current_state(id)?;
            inner.append_change(id, Op::Restate, "", state, Vec::new(), actor)?;
        }
        fail::point("compact.after_restate");
        // 3. The new volume, under a temporary name.
        let dir = src.dir;
        let data_dir = inner
            .dirs
            .get(usize::from(dir))
            .ok_or_else(|| Error::Invalid(format!("no data dir {dir}")))?
            .path
            .clone();
        let nid = inner.allocate_volume_id(dir);
        let name = crate::log::volume_file_name(nid);
        let tmp = data_dir.join(format!("{name}{COMPACTING_SUFFIX}"));
        let path = data_dir.join(&name);
        let written = self.write_compacted(&src, nid, &tmp, moves);
        let (placed, end) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = crate::fsio::remove_file(&tmp);
                inner.forget_volume(nid);
                return Err(e);
            }
        };
        fail::point("compact.after_copy");
        // 4. The commit point.
        if let Err(e) = crate::fsio::rename(&tmp, &path) {
            let _ = crate::fsio::remove_file(&tmp);
            inner.forget_volume(nid);
            return Err(Error::io(&path, e));
        }
        crate::log::sync_dir(&data_dir, "compact.rename.dir")?;
        fail::point("compact.after_rename");
        // 5. Switch readers and the catalog over.
        let new = Arc::new(Volume::open(&path, dir, true)?);
        new.map_sealed()?;
        let after = new.allocated();
        inner.volumes.write().insert(nid, Arc::clone(&new));
        {
            let mut cat = inner.catalog.write();
            for (rec, pos, old) in &placed {
                cat.relocate(rec, nid, *pos, Some(old));
            }
            cat.volumes.insert(
                nid,
                crate::catalog::VolumeState {
                    id: nid,
                    dir,
                    sealed: true,
                    replay_from: end,
                },
            );
            cat.volumes.remove(&vid);
            cat.volume_live.remove(&vid);
        }
        inner.volumes.write().remove(&vid);
        fail::point("compact.after_switch");
        // 6. A checkpoint that no longer needs the old volume, then 7. its file goes.
        inner.checkpoint()?;
        fail::point("compact.after_checkpoint");
        crate::fsio::remove_file(&src.path).map_err(|e| Error::io(&src.path, e))?;
        crate::log::sync_dir(&data_dir, "compact.unlink.dir")?;
        fail::point("compact.after_unlink");
        self.audit(
            actor,
            crate::audit::Action::Compact,
            None,
            serde_json::json!({"volume": vid, "into": nid, "segments": placed.len()}),
        )?;
        Ok((placed.len(), after))
    }

    /// Writes the compacted copy of `src` to `tmp` (volume id `nid`): the live chunks, then
    /// the new commit records, then a seal, each group durable before the next. Returns each
    /// new commit record with its offset and the record it replaces, and the volume's end.
    #[allow(clippy::type_complexity)]
    fn write_compacted(
        &self,
        src: &Volume,
        nid: u32,
        tmp: &std::path::Path,
        moves: Vec<CommitRecord>,
    ) -> Result<(Vec<(CommitRecord, u64, CommitRecord)>, u64)> {
        let inner = &self.inner;
        let header = VolumeHeader {
            volume_id: nid,
            store_id: inner.store_id,
            created_us: inner.now_us(),
            chunk_size: inner.config.chunk_size,
            age_day: src.header.age_day,
        };
        let vol = Arc::new(Volume::create(tmp, src.dir, header)?);
        let w = VolumeWriter::new(vol, VOLUME_HEADER_LEN as u64, u64::MAX);
        // A chunk record is copied as it is, header included: an encrypted one holds the
        // nonce and tag beyond its extent's bytes (its sealing binds it to the segment and
        // chunk, not the place), a Blocks one its block CRC trailer.
        let append = |header: RecordHeader, payload: &[u8]| -> Result<u64> {
            match w.append_record(header, &[payload])? {
                Appended::At(pos) => Ok(pos),
                Appended::Full => Err(Error::Invalid("compaction target refused a record".into())),
            }
        };
        let mut copies = Vec::with_capacity(moves.len());
        for old in moves {
            let mut rec = old.clone();
            // The copy is written chunks-first (its chunks are synced before any commit record
            // of the target), and the original's watermark is about another volume.
            rec.one_sync = false;
            rec.durable_to = 0;
            let layout = old.layout();
            let form = ChunkForm::of(old.block_crcs, inner.crypt.is_some());
            let evicted = inner
                .catalog
                .read()
                .get(rec.segment_id)
                .is_none_or(|e| e.flags & FLAG_EVICTED != 0);
            for (index, x) in rec.extents.iter_mut().enumerate() {
                if evicted || x.volume_id != src.id {
                    continue;
                }
                let corrupt = |what: String| Error::SegmentCorrupt {
                    segment: old.segment_id,
                    offset: layout.start_of(index),
                    what,
                };
                let (h, payload) = src
                    .read_record(x.offset)
                    .map_err(|e| corrupt(e.to_string()))?;
                if h.kind != Kind::Chunk
                    || h.a != old.segment_id
                    || h.b as usize != index
                    || h.len != x.len + form.extra(x.len)
                    || h.has_block_crcs() != (form == ChunkForm::Blocks)
                {
                    return Err(corrupt(format!(
                        "volume {} offset {} holds another record",
                        src.id, x.offset
                    )));
                }
                x.offset = append(h, &payload)?;
                x.volume_id = nid;
            }
            copies.push((rec, old));
        }
        // The chunks are durable before any commit record names them.
        w.sync_to(w.end())?;
        fail::point("compact.after_chunks");
        let mut placed = Vec::with_capacity(copies.len());
        for (mut rec, old) in copies {
            rec.lsn = inner.next_lsn.fetch_add(1, Ordering::SeqCst);
            let payload = rec.encode();
            let header = RecordHeader::new(Kind::Commit, &payload, rec.segment_id, 0);
            let pos = append(header, &payload)?;
            placed.push((rec, pos, old));
        }
        w.seal(inner.now_us())?;
        Ok((placed, w.end()))
    }
}

impl crate::store::Inner {
    /// Sealed volumes not taking appends, with their occupancy, by id.
    pub(crate) fn sealed_occupancy(&self) -> Vec<(u32, Occupancy)> {
        let active = self.active_volume_ids();
        // Volumes holding chunks of uploads in progress are not dead, whatever the catalog says.
        let pinned = self.busy_volumes();
        let sealed: Vec<(u32, (u64, u32))> = {
            let cat = self.catalog.read();
            cat.volumes
                .values()
                .filter(|v| v.sealed && !active.contains(&v.id) && !pinned.contains(&v.id))
                .map(|v| (v.id, cat.volume_live.get(&v.id).copied().unwrap_or((0, 0))))
                .collect()
        };
        sealed
            .into_iter()
            .filter_map(|(id, (live_bytes, live_commits))| {
                let vol = self.volume(id)?;
                Some((
                    id,
                    Occupancy {
                        allocated: vol.allocated(),
                        live_bytes,
                        live_commits,
                    },
                ))
            })
            .collect()
    }
}
