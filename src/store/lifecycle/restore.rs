//! Restore: brings an evicted segment's bytes back from its verified cloud copy into local
//! volumes, so reads are local again (`footage restore`, the service's restore queue, and
//! prefetch by case: see restore_queue.rs).
//!
//! The steps, for one evicted segment (FORMAT.md §13a):
//! 0. room: the data dir written to must stay at or below policy.toml's
//!    `disk.high_watermark` afterwards (restore_room.rs), else the restore is refused with
//!    [`Error::NoRoom`] before anything is fetched (a queued one waits for a later pass);
//! 1. fetch the cloud copy front to back in spans of whole 1 MiB blocks, several requests in
//!    flight on a fetch thread (tier/restore.rs), each block checked against its CRC32 in
//!    `meta.json`; hash every span on a SHA-256 thread of its own while this thread appends it
//!    as chunk records through the ingest writer (`SegmentWriter`, same segment id, the data
//!    dir chosen in 0, the volume of the footage's day; each chunk's write-out to the device
//!    starts as it is appended); then one fdatasync per volume makes every chunk durable;
//! 2. check the SHA-256 and length of what was written against the segment's commit record
//!    (the hash recorded at ingest): on a mismatch nothing is recorded and the chunks stay as
//!    dead bytes (a corrupt cloud copy is never restored);
//! 3. under `change_lock`: append a new commit record (same segment and metadata, a new LSN,
//!    extents naming the restored chunks), durable; the catalog moves the segment's metadata
//!    to it (`Catalog::relocate`), still evicted;
//! 4. append the `Restored` change record (full state without `FLAG_EVICTED`; its `freed`
//!    list gives the chunk bytes now live per volume), durable — **the commit point**: from
//!    here reads are local;
//! 5. punch the old commit record (so the log holds one copy of the segment's metadata that
//!    names local chunks);
//! 6. the `restore` audit entry (with the record's `lsn`).
//!
//! A crash before 3 leaves dead chunks; between 3 and 4 a commit record that an evicted
//! segment's catalog entry points at (its chunks are not claimed: dead bytes); either way the
//! segment is still evicted and a new restore starts again from 1. After 4 it is local; a
//! crash before 5 leaves one more dead commit record, before 6 a restore the audit log lacks
//! (never acknowledged). Compaction and volume dropping reclaim dead bytes as always. A
//! failed audit append in 6 does not fail the restore (it has happened): the outcome carries
//! `audit_error` and the failure is logged at error level.
//!
//! Invariants: nothing counts as local before its whole SHA-256 matched; no restore starts
//! that would take its data dir past the high watermark (each checks the free space when it
//! starts, so two restores started together may each fit alone); the cloud copy stays
//! (`FLAG_UPLOADED` stays) and retention may evict the segment again unless it is pinned;
//! restoring a segment that is already local does nothing; one restore per segment runs at a
//! time in this process.

mod fetch;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fail;
use crate::format::change::{Op, FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::chunk::ChunkForm;
use crate::format::commit::CommitRecord;
use crate::format::record::{record_end, Kind, HEADER_LEN};
use crate::log::writer::Appended;
use crate::store::{hex, Inner, SegmentWriter, Store};
use fetch::fetch_hash_append;

/// Restore state shared by a store's handles (in `Inner`).
#[derive(Default)]
pub(crate) struct Restores {
    /// Segments being restored now (a second restore of one of them waits for none: it is
    /// refused as busy).
    in_flight: Mutex<HashSet<u64>>,
    /// Per restore in flight: the volumes it has appended chunks to. The catalog counts those
    /// chunks only from the `Restored` record on, so until then compaction and the dropping
    /// of empty volumes must leave these volumes alone ([`Inner::busy_volumes`]).
    volumes: Mutex<HashMap<u64, Arc<Mutex<HashSet<u32>>>>>,
    /// The queue file is read and rewritten under this lock (restore_queue.rs).
    pub queue_lock: Mutex<()>,
    /// This process's counters (for `stats` and `/metrics`): restores done, failed, bytes.
    pub done: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
}

/// What one restore did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// The segment id (decimal).
    pub id: String,
    /// `restored`, or `already_local` (nothing to do).
    pub outcome: &'static str,
    /// Bytes brought back (0 when already local).
    pub bytes: u64,
    /// SHA-256 of the segment, lower-case hex (the restored bytes match it).
    pub sha256: String,
    /// `info`'s tier afterwards: `local+cloud`.
    pub tier: &'static str,
    /// The restore happened (its `Restored` change record is durable) but its `restore`
    /// audit entry could not be written: why (logged at error level too). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_error: Option<String>,
}

/// Removes a segment from `in_flight` when a restore ends, however it ends.
struct InFlight<'a>(&'a Restores, u64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.volumes.lock().remove(&self.1);
        self.0.in_flight.lock().remove(&self.1);
    }
}

impl Restores {
    /// Volumes holding chunks of restores in progress.
    pub(crate) fn pinned_volumes(&self) -> HashSet<u32> {
        let pins: Vec<Arc<Mutex<HashSet<u32>>>> = self.volumes.lock().values().cloned().collect();
        pins.iter()
            .flat_map(|p| p.lock().iter().copied().collect::<Vec<_>>())
            .collect()
    }
}

impl Inner {
    /// Volumes that compaction and the dropping of empty volumes must leave alone whatever
    /// the catalog counts in them: chunks of upload sessions in progress and of restores not
    /// yet recorded.
    pub(crate) fn busy_volumes(&self) -> HashSet<u32> {
        let mut v = self.uploads.pinned_volumes();
        v.extend(self.restores.pinned_volumes());
        v
    }
}

impl Store {
    /// Brings evicted segment `id` back into local volumes from its verified cloud copy (see
    /// the module doc). A segment that is already local is left as it is.
    pub fn restore(&self, id: u64, actor: &str) -> Result<RestoreOutcome> {
        self.restore_paced(id, actor, &mut |_| {})
    }

    /// [`Store::restore`], calling `pace` with the bytes of each span fetched (a background
    /// restore sleeps there to keep to its rate).
    pub fn restore_paced(
        &self,
        id: u64,
        actor: &str,
        pace: &mut dyn FnMut(u64),
    ) -> Result<RestoreOutcome> {
        self.inner.writable("restore from the cloud tier")?;
        crate::store::audit::check_actor(actor)?;
        let state = self.inner.current_state(id)?;
        let rec = self.inner.load_commit(id, true)?;
        let local = |bytes| RestoreOutcome {
            id: id.to_string(),
            outcome: "already_local",
            bytes,
            sha256: hex(&rec.sha256),
            tier: if state.flags & FLAG_UPLOADED != 0 {
                "local+cloud"
            } else {
                "local"
            },
            audit_error: None,
        };
        if state.flags & FLAG_EVICTED == 0 {
            return Ok(local(0));
        }
        if !self.inner.restores.in_flight.lock().insert(id) {
            return Err(Error::Invalid(format!(
                "segment {id} is being restored already: try again when that restore ends"
            )));
        }
        let _guard = InFlight(&self.inner.restores, id);
        // A restore that ended between the check above and the insert has made it local.
        if self.inner.current_state(id)?.flags & FLAG_EVICTED == 0 {
            return Ok(local(0));
        }
        let r = self.restore_evicted(id, &rec, actor, pace);
        match &r {
            Ok(o) if o.outcome == "restored" => {
                let rs = &self.inner.restores;
                rs.done.fetch_add(1, Ordering::Relaxed);
                rs.bytes.fetch_add(o.bytes, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                self.inner.restores.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(segment = id, error = %e, "restore failed");
            }
        }
        r
    }

    fn restore_evicted(
        &self,
        id: u64,
        rec: &CommitRecord,
        actor: &str,
        pace: &mut dyn FnMut(u64),
    ) -> Result<RestoreOutcome> {
        let inner = &self.inner;
        let tier = inner.tier()?;
        let cloud = tier.meta(id)?;
        if cloud.bytes != rec.bytes || !cloud.sha256.eq_ignore_ascii_case(&hex(&rec.sha256)) {
            return Err(Error::SegmentCorrupt {
                segment: id,
                offset: 0,
                what: "the cloud copy's meta.json does not name the bytes recorded at ingest \
                       (length or SHA-256 differ): not restored"
                    .into(),
            });
        }
        // 0. Room below the high watermark, before a byte is fetched (restore_room.rs).
        let watermark = inner.load_policy()?.high_watermark;
        let dir = inner.room_for_restore(id, inner.restore_footprint(rec.bytes), watermark)?;
        let mut clock = crate::util::Phases::start();
        // 1. Fetch, hash and append, overlapped.
        let day = Inner::day_of(rec.meta.start_us);
        let mut w = SegmentWriter::with_parts(
            Arc::clone(inner),
            rec.meta.clone(),
            Arc::from(actor),
            id,
            dir,
            day,
        );
        let pins = Arc::new(Mutex::new(HashSet::new()));
        inner.restores.volumes.lock().insert(id, Arc::clone(&pins));
        w.pin_volumes_to(pins);
        let spans = tier.restore_spans(id)?;
        let sha256 = fetch_hash_append(&tier, id, spans, &mut w, pace)?;
        clock.mark("fetch_write");
        w.persist_tail()?;
        clock.mark("fdatasync");
        fail::point("restore.after_chunks");
        let capacity = w.capacity();
        let block_crcs = w.form() == ChunkForm::Blocks;
        // The writer's own hash state saw none of these bytes (`write_hashed_by_caller`).
        let (_, bytes, extents) = w.suspend().ok_or_else(|| {
            Error::Invalid(format!(
                "segment {id}: the restored chunks are not all durable"
            ))
        })?;
        // 2. The whole SHA-256, before anything is recorded.
        if bytes != rec.bytes || sha256 != rec.sha256 {
            return Err(Error::SegmentCorrupt {
                segment: id,
                offset: 0,
                what: format!(
                    "the cloud copy ({bytes} bytes, SHA-256 {}) does not match the segment \
                     recorded at ingest ({} bytes, SHA-256 {}): not restored",
                    hex(&sha256),
                    rec.bytes,
                    hex(&rec.sha256)
                ),
            });
        }
        let serial = inner.change_lock.lock();
        let mut state = inner.current_state(id)?;
        if state.flags & FLAG_EVICTED == 0 {
            // Restored meanwhile (by another process's run before a restart, say): the chunks
            // just written are dead bytes.
            return Ok(RestoreOutcome {
                id: id.to_string(),
                outcome: "already_local",
                bytes: 0,
                sha256: hex(&rec.sha256),
                tier: "local+cloud",
                audit_error: None,
            });
        }
        let old_meta = {
            let cat = inner.catalog.read();
            cat.get(id)
                .map(|e| (e.meta_volume, e.meta_offset()))
                .ok_or_else(|| Error::NotFound(id.to_string()))?
        };
        // 3. The new commit record.
        let new = CommitRecord {
            segment_id: id,
            lsn: 0,
            committed_us: rec.committed_us,
            bytes,
            sha256,
            chunk_capacity: capacity,
            meta: rec.meta.clone(),
            extents,
            block_crcs,
            one_sync: false,
            durable_to: 0,
            actor: None,
        };
        self.append_restored_commit(new, rec, dir, day)?;
        clock.mark("commit_record");
        fail::point("restore.after_commit");
        // 4. The commit point.
        let mut taken: Vec<(u32, u64)> = Vec::new();
        let extents = inner.load_commit(id, false)?.extents;
        for x in &extents {
            match taken.iter_mut().find(|(v, _)| *v == x.volume_id) {
                Some(t) => t.1 += u64::from(x.len),
                None => taken.push((x.volume_id, u64::from(x.len))),
            }
        }
        state.flags &= !FLAG_EVICTED;
        let lsn = inner.append_change(id, Op::Restored, "", state, taken, actor)?;
        clock.mark("restored_record");
        fail::point("restore.after_record");
        // 5. The old commit record goes.
        if let Some(vol) = inner.volume(old_meta.0) {
            if let Ok(h) = vol.read_header(old_meta.1) {
                if h.kind == Kind::Commit && h.a == id {
                    // Past the commit point the restore has happened: a failed punch leaves
                    // only a dead record (compaction reclaims it), never a failed restore
                    // without its audit entry.
                    if let Err(e) = vol.punch(old_meta.1, HEADER_LEN + u64::from(h.len)) {
                        tracing::warn!(segment = id, error = %e, "restore: the old commit record could not be punched (dead bytes until compaction)");
                    }
                }
            }
        }
        drop(serial);
        fail::point("restore.after_punch");
        // 6. The chain of custody. Past the commit point the restore has happened (the bytes
        // are local, the change record durable): a failed audit append is reported with it,
        // loudly, not as a failed restore that a retry would find done.
        let audited = if fail::error("restore.audit") {
            Err(Error::Invalid("audit append: injected failure".into()))
        } else {
            self.audit(
                actor,
                crate::audit::Action::Restore,
                Some(id),
                serde_json::json!({
                    "bytes": bytes,
                    "sha256": hex(&sha256),
                    "url": tier.url(),
                    "lsn": lsn,
                }),
            )
        };
        let audit_error = audited.err().map(|e| {
            tracing::error!(segment = id, lsn, error = %e, "restore: the segment is restored (change record durable) but its audit entry could not be written: the audit log lacks this restore");
            e.to_string()
        });
        clock.mark("audit");
        // Where the time went (the restore bench and DESIGN §27 read these to see which step
        // to make faster).
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                segment = id,
                bytes,
                total_ms = clock.total_ms(),
                phases = %clock,
                "restore timing"
            );
        }
        inner.maybe_checkpoint();
        Ok(RestoreOutcome {
            id: id.to_string(),
            outcome: "restored",
            bytes,
            sha256: hex(&sha256),
            tier: "local+cloud",
            audit_error,
        })
    }

    /// Appends the restored copy's commit record (step 3), durable, and moves the catalog's
    /// entry to it. The caller holds `change_lock`.
    fn append_restored_commit(
        &self,
        mut new: CommitRecord,
        old: &CommitRecord,
        dir: u16,
        day: i64,
    ) -> Result<()> {
        let inner = &self.inner;
        let _gate = inner.gate.read();
        new.lsn = inner.next_lsn.fetch_add(1, Ordering::SeqCst);
        let payload = new.encode();
        let (w, pos) = loop {
            let w = inner.writer_for(dir, day)?;
            match w.append(Kind::Commit, new.segment_id, 0, &[&payload])? {
                Appended::At(pos) => break (w, pos),
                Appended::Full => inner.rotate(dir, day, &w)?,
            }
        };
        w.sync_to(record_end(pos, payload.len() as u32))?;
        inner
            .catalog
            .write()
            .relocate(&new, w.volume.id, pos, Some(old));
        Ok(())
    }

    /// Restores every evicted segment of case `case`, in id order; one failure does not stop
    /// the others (each outcome or error is listed).
    pub fn restore_case(
        &self,
        case: &str,
        actor: &str,
    ) -> Result<Vec<std::result::Result<RestoreOutcome, (u64, Error)>>> {
        let ids = self.case_segments(case);
        if ids.is_empty() {
            return Err(Error::NotFound(format!("case {case:?}")));
        }
        Ok(ids
            .into_iter()
            .map(|id| self.restore(id, actor).map_err(|e| (id, e)))
            .collect())
    }

    /// The live segments linked to `case`, ascending.
    pub fn case_segments(&self, case: &str) -> Vec<u64> {
        let cat = self.inner.catalog.read();
        let mut ids: Vec<u64> = cat.index.labels[crate::index::LabelKind::Case as usize]
            .get(case)
            .map(|l| {
                l.iter()
                    .copied()
                    .filter(|id| cat.get(*id).is_some())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
