//! Committing a segment: the remaining chunk, the commit record, the fdatasync(s) that make
//! both durable (group commit), the catalog, the audit entry, and the answer.
//!
//! Two ways to make a segment durable (DESIGN §8, FORMAT §11):
//! - **one sync** (segments up to [`ONE_SYNC_MAX`]): the commit record is appended right behind
//!   the chunks and one fdatasync of its volume makes both durable (other volumes the chunks
//!   went to, after a rotation, are synced too). The record says so (`one_sync`) and carries
//!   the volume's durable watermark (`durable_to`); recovery accepts it only if every chunk not
//!   below a later watermark passes its CRCs. At most the last group-commit round of small
//!   segments is checked after a crash;
//! - **chunks first** (larger segments): every volume holding a chunk is fdatasync'ed before
//!   the commit record is appended, then the record's volume again: recovery never reads
//!   their chunks, however long they are.
//!
//! Invariants: a segment is visible (in the catalog) only once its chunks and its commit
//! record are durable, and `commit` returns only after that. The ingest audit entry of a new
//! segment is batched (its commit record names the actor: recovery rewrites a lost entry) and
//! appended before the checkpoint gate is released; a duplicate's entry is durable before
//! `commit` returns.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{MutexGuard, RwLockReadGuard};
use sha2::Digest;

use crate::error::{Error, Result};
use crate::format::chunk::ChunkForm;
use crate::format::commit::CommitRecord;
use crate::format::record::{record_end, Kind, RecordHeader};

use super::{failed_earlier, Committed, SegmentWriter};
use crate::log::writer::Appended;
use crate::store::Inner;

/// Largest segment committed with one fdatasync (chunks and commit record together). A crash
/// leaves at most one group-commit round of such segments for recovery to check, so this
/// bounds what an open after a crash reads: streams × 16 MiB.
pub(crate) const ONE_SYNC_MAX: u64 = 16 << 20;

impl SegmentWriter {
    /// Makes the segment durable and visible; returns its id and SHA-256. If the same device
    /// already delivered the same bytes, returns that segment with `duplicate: true`.
    pub fn commit(self) -> Result<Committed> {
        let inner = Arc::clone(&self.inner);
        self.commit_inner().map_err(|e| inner.explain_disk_full(e))
    }
    fn commit_inner(mut self) -> Result<Committed> {
        if self.failed {
            return Err(failed_earlier());
        }
        if self.hashed_by_caller {
            return Err(Error::Invalid(
                "this writer's bytes were hashed by its caller: it cannot commit a segment".into(),
            ));
        }
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.append_chunk(&[&chunk])?;
        }
        // 1. Large segments: the chunks are durable before a commit record names them.
        if !self.one_sync() {
            for (w, end) in &self.touched {
                w.sync_to(*end)?;
            }
        }
        crate::fail::point("ingest.chunks_durable");
        let sha256: [u8; 32] = self.hasher.clone().finalize().into();
        let inner = Arc::clone(&self.inner);
        let (officer, device) = (self.meta.officer.clone(), self.meta.device.clone());
        // 2. One commit per (device, hash) at a time; a retry waits for the first to finish.
        let key = crate::catalog::dedup_key(&self.meta.device, &sha256);
        let (committed, hold) = loop {
            {
                let mut p = inner.pending.lock();
                while p.contains(&key) {
                    inner.pending_cv.wait(&mut p);
                }
                p.insert(key);
            }
            let result = self.commit_record(&inner, sha256);
            inner.pending.lock().remove(&key);
            inner.pending_cv.notify_all();
            let (committed, gate) = result?;
            if let Some(gate) = gate {
                break (committed, Hold::Gate(gate));
            }
            if !committed.duplicate {
                // This upload's own segment, committed before a crash or a failed append.
                break (committed, Hold::Nothing);
            }
            // A duplicate is acknowledged as the segment it names only while that segment
            // exists: `change_lock` keeps a deletion (retention) from running between this
            // check and the audit entry; one that ran first makes these bytes a new segment.
            let serial = inner.change_lock.lock();
            if inner.catalog.read().get(committed.id).is_some() {
                break (committed, Hold::Serial(serial));
            }
        };
        inner
            .counters
            .ingested(committed.bytes, committed.duplicate);
        crate::fail::point("ingest.before_audit");
        // 4. The chain of custody has it before the dock is told it is stored.
        let details = serde_json::json!({
            "sha256": committed.sha256_hex(),
            "bytes": committed.bytes,
            "duplicate": committed.duplicate,
            "officer": officer,
            "device": device,
        });
        // A segment this call committed has its actor in its commit record: the entry is
        // batched, and recovery writes it again from the record if a crash loses it. Held
        // at the gate until it is appended, so no checkpoint covers the commit without it.
        // A duplicate has no record of this upload: its entry is durable before the answer.
        let durability = match hold {
            Hold::Gate(_) => crate::audit::Durability::Batched,
            Hold::Serial(_) | Hold::Nothing => crate::audit::Durability::Durable,
        };
        inner.audit.append(
            &self.actor,
            crate::audit::Action::Ingest.name(),
            Some(committed.id),
            &details.to_string(),
            durability,
        )?;
        crate::fail::point("ingest.audited");
        drop(hold);
        if !committed.duplicate {
            inner.maybe_checkpoint();
        }
        Ok(committed)
    }
    /// Whether this segment is committed with one fdatasync (chunks and record together).
    fn one_sync(&self) -> bool {
        self.bytes <= ONE_SYNC_MAX
    }
    /// Appends and syncs the commit record, or finds the segment these bytes already are
    /// (no gate returned). A new commit returns the checkpoint gate, still held.
    fn commit_record<'i>(
        &mut self,
        inner: &'i Inner,
        sha256: [u8; 32],
    ) -> Result<(Committed, Option<RwLockReadGuard<'i, ()>>)> {
        if let Some(id) = inner.find_duplicate(&self.meta.device, &sha256)? {
            // The segment found may be this one: an upload whose commit record became durable
            // before a crash (or a failed audit append) completes again after it. It is the
            // dock's own segment, not a duplicate of another (`Footage-Duplicate: false`).
            let found = Committed {
                id,
                sha256,
                bytes: self.bytes,
                duplicate: id != self.id,
            };
            return Ok((found, None));
        }
        let gate = inner.gate.read();
        let one_sync = self.one_sync();
        let mut rec = CommitRecord {
            segment_id: self.id,
            lsn: inner.next_lsn.fetch_add(1, Ordering::SeqCst),
            committed_us: inner.now_us(),
            bytes: self.bytes,
            sha256,
            chunk_capacity: self.capacity as u32,
            meta: std::mem::take(&mut self.meta),
            extents: std::mem::take(&mut self.extents),
            block_crcs: self.form == ChunkForm::Blocks,
            one_sync,
            durable_to: 0,
            actor: Some(self.actor.to_string()),
        };
        // The watermark is of the volume the record lands in: taken again after a rotation.
        let (w, pos, len) = loop {
            let w = inner.writer_for(self.dir, self.day)?;
            if let Some(p) = &self.pins {
                p.lock().insert(w.volume.id);
            }
            rec.durable_to = w.synced();
            let payload = rec.encode();
            let header = RecordHeader::new(Kind::Commit, &payload, self.id, 0);
            match w.append_record(header, &[&payload])? {
                Appended::At(pos) => break (w, pos, payload.len() as u32),
                Appended::Full => inner.rotate(self.dir, self.day, &w)?,
            }
        };
        // 3. The chunks (one sync: in other volumes than the record's) and the commit record
        //    are durable before the segment is visible or acknowledged.
        if one_sync {
            for (t, end) in &self.touched {
                if !Arc::ptr_eq(t, &w) {
                    t.sync_to(*end)?;
                }
            }
        }
        crate::fail::point("ingest.one_sync_appended");
        w.sync_to(record_end(pos, len))?;
        crate::fail::point("ingest.commit_durable");
        inner.catalog.write().apply_commit(&rec, w.volume.id, pos);
        let committed = Committed {
            id: self.id,
            sha256,
            bytes: self.bytes,
            duplicate: false,
        };
        Ok((committed, Some(gate)))
    }
}

/// What a commit holds until its audit entry is appended: the checkpoint gate (a new
/// segment), the change lock (a duplicate, against a deletion of the segment it names), or
/// nothing (the upload's own segment, committed before).
enum Hold<'i> {
    Gate(#[allow(dead_code)] RwLockReadGuard<'i, ()>),
    Serial(#[allow(dead_code)] MutexGuard<'i, ()>),
    Nothing,
}
