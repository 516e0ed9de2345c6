//! Committing a segment: the remaining chunk, the fsync of every volume written, the commit
//! record (group commit), the catalog, the audit entry, and the answer.
//!
//! Invariant: a segment is visible (in the catalog) only once its chunks and then its commit
//! record are durable, and `commit` returns only after that (DESIGN §8).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sha2::Digest;

use crate::error::{Error, Result};
use crate::format::chunk::ChunkForm;
use crate::format::commit::CommitRecord;
use crate::format::record::{record_end, Kind, RecordHeader};

use super::{failed_earlier, Committed, SegmentWriter};

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
        // 1. The chunks are durable before any commit record can name them.
        for (w, end) in &self.touched {
            w.sync_to(*end)?;
        }
        crate::fail::point("ingest.chunks_durable");
        let sha256: [u8; 32] = self.hasher.clone().finalize().into();
        let inner = Arc::clone(&self.inner);
        let (officer, device) = (self.meta.officer.clone(), self.meta.device.clone());
        // 2. One commit per (device, hash) at a time; a retry waits for the first to finish.
        let key = crate::catalog::dedup_key(&self.meta.device, &sha256);
        let (committed, serial) = loop {
            {
                let mut p = inner.pending.lock();
                while p.contains(&key) {
                    inner.pending_cv.wait(&mut p);
                }
                p.insert(key);
            }
            let result = self.commit_record(sha256);
            inner.pending.lock().remove(&key);
            inner.pending_cv.notify_all();
            let committed = result?;
            if !committed.duplicate {
                break (committed, None);
            }
            // A duplicate is acknowledged as the segment it names only while that segment
            // exists: `change_lock` keeps a deletion (retention) from running between this
            // check and the audit entry; one that ran first makes these bytes a new segment.
            let serial = inner.change_lock.lock();
            if inner.catalog.read().get(committed.id).is_some() {
                break (committed, Some(serial));
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
        inner.audit.record(
            &self.actor,
            &crate::audit::Action::Ingest,
            Some(committed.id),
            &details.to_string(),
        )?;
        crate::fail::point("ingest.audited");
        drop(serial);
        if !committed.duplicate {
            inner.maybe_checkpoint();
        }
        Ok(committed)
    }
    fn commit_record(&mut self, sha256: [u8; 32]) -> Result<Committed> {
        let inner = Arc::clone(&self.inner);
        if let Some(id) = inner.find_duplicate(&self.meta.device, &sha256)? {
            // The segment found may be this one: an upload whose commit record became durable
            // before a crash (or a failed audit append) completes again after it. It is the
            // dock's own segment, not a duplicate of another (`Footage-Duplicate: false`).
            return Ok(Committed {
                id,
                sha256,
                bytes: self.bytes,
                duplicate: id != self.id,
            });
        }
        let _gate = inner.gate.read();
        let rec = CommitRecord {
            segment_id: self.id,
            lsn: inner.next_lsn.fetch_add(1, Ordering::SeqCst),
            committed_us: inner.now_us(),
            bytes: self.bytes,
            sha256,
            chunk_capacity: self.capacity as u32,
            meta: std::mem::take(&mut self.meta),
            extents: std::mem::take(&mut self.extents),
            block_crcs: self.form == ChunkForm::Blocks,
        };
        let payload = rec.encode();
        let header = RecordHeader::new(Kind::Commit, &payload, self.id, 0);
        let (w, pos) = self.append(header, &[&payload])?;
        // 3. The commit record is durable before the segment is visible or acknowledged.
        w.sync_to(record_end(pos, payload.len() as u32))?;
        crate::fail::point("ingest.commit_durable");
        inner.catalog.write().apply_commit(&rec, w.volume.id, pos);
        Ok(Committed {
            id: self.id,
            sha256,
            bytes: self.bytes,
            duplicate: false,
        })
    }
}
