//! Moving segments between tiers and out of the store: upload to the cloud tier, eviction of
//! local bytes, deletion everywhere, and dropping volumes nothing needs any more.
//!
//! Invariants (the order of each step is what makes a crash at any point safe):
//! - upload: parts, read-back verification and `meta.json` first, then the `Uploaded` change
//!   record; a crash before the record only means the next apply uploads (resumes) again;
//! - evict: only with `Uploaded` recorded; holes are punched first, then the `Evicted` record;
//!   a crash between leaves a segment whose local reads fail and fall back to the cloud, and
//!   the next apply evicts it again (punching is idempotent);
//! - delete: refused while held; local holes, then the cloud copy, then the `Deleted` record,
//!   then the commit record is punched too (so no rebuild from the log can bring it back);
//! - each upload, eviction and deletion is recorded in the audit log after its change record
//!   (the segment's audit trail outlives the segment);
//! - a volume is dropped only when sealed and holding no chunk and no commit record of a live
//!   segment; the latest change records of live segments it holds are first restated in the
//!   active log.

use std::sync::Arc;

use super::{Inner, Store};
use crate::error::{Error, Result};
use crate::format::change::{Op, FLAG_DELETED, FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::record::HEADER_LEN;
use crate::retention::policy::Policy;
use crate::tier::{meta_for, Tier};

impl Inner {
    /// The cloud tier named by policy.toml (connected on first use).
    pub(crate) fn tier(&self) -> Result<Arc<Tier>> {
        let mut slot = self.tier.lock();
        if let Some(t) = slot.as_ref() {
            return Ok(Arc::clone(t));
        }
        let policy = Policy::load_or_create(&self.root)?;
        let t = Arc::new(
            Tier::open(&policy.cloud_url, &crate::store::hex(&self.store_id))?
                .with_crypt(self.crypt.clone()),
        );
        *slot = Some(Arc::clone(&t));
        Ok(t)
    }

    /// Punches a segment's chunks out of their volumes; returns bytes freed per volume.
    fn punch_chunks(&self, id: u64) -> Result<Vec<(u32, u64)>> {
        let rec = self.load_commit(id, false)?;
        // An encrypted chunk's record holds the nonce and tag beyond the extent's bytes.
        let sealed = if self.crypt.is_some() {
            crate::crypt::OVERHEAD as u64
        } else {
            0
        };
        let mut freed: Vec<(u32, u64)> = Vec::new();
        for x in &rec.extents {
            let Some(vol) = self.volume(x.volume_id) else {
                continue; // its disk is gone: nothing to free there
            };
            let n = vol.punch(x.offset, HEADER_LEN + u64::from(x.len) + sealed)?;
            match freed.iter_mut().find(|(v, _)| *v == x.volume_id) {
                Some(f) => f.1 += n,
                None => freed.push((x.volume_id, n)),
            }
        }
        Ok(freed)
    }
}

impl Store {
    /// Copies a segment to the cloud tier and verifies the copy (resuming an earlier attempt).
    /// Returns false if it already had a verified copy.
    pub fn upload(&self, id: u64, actor: &str, progress: &mut dyn FnMut(u64)) -> Result<bool> {
        let state = self.inner.current_state(id)?;
        if state.flags & FLAG_UPLOADED != 0 {
            return Ok(false);
        }
        let rec = self.inner.load_commit(id, true)?;
        let tier = self.inner.tier()?;
        let meta = meta_for(
            &crate::store::hex(&self.inner.store_id),
            id,
            &rec.meta,
            &state,
            rec.bytes,
            &rec.sha256,
            rec.committed_us,
            self.inner.now_us(),
        );
        let mut reader = self.open_segment(id)?;
        let mut read = |off: u64, len: usize| -> Result<Vec<u8>> {
            use std::io::{Read, Seek, SeekFrom};
            let mut buf = vec![0u8; len];
            reader
                .seek(SeekFrom::Start(off))
                .and_then(|_| reader.read_exact(&mut buf))
                .map_err(|e| Error::SegmentCorrupt {
                    segment: id,
                    offset: off,
                    what: e.to_string(),
                })?;
            Ok(buf)
        };
        tier.upload(meta, &mut read, progress)?;
        let _serial = self.inner.change_lock.lock();
        let mut state = self.inner.current_state(id)?;
        state.flags |= FLAG_UPLOADED;
        self.inner
            .append_change(id, Op::Uploaded, tier.url(), state, Vec::new(), actor)?;
        drop(_serial);
        self.audit(
            actor,
            "upload",
            Some(id),
            serde_json::json!({"url": tier.url(), "bytes": rec.bytes, "sha256": crate::store::hex(&rec.sha256)}),
        )?;
        self.inner.maybe_checkpoint()?;
        Ok(true)
    }

    /// Drops a segment's local bytes; it must have a verified cloud copy. Returns bytes freed.
    pub fn evict(&self, id: u64, actor: &str) -> Result<u64> {
        let _serial = self.inner.change_lock.lock();
        let mut state = self.inner.current_state(id)?;
        if state.flags & FLAG_UPLOADED == 0 {
            return Err(Error::Invalid(format!(
                "segment {id} has no verified cloud copy: it cannot be evicted"
            )));
        }
        if state.flags & FLAG_EVICTED != 0 {
            return Ok(0);
        }
        let freed = self.inner.punch_chunks(id)?;
        let total = freed.iter().map(|f| f.1).sum();
        state.flags |= FLAG_EVICTED;
        self.inner
            .append_change(id, Op::Evicted, "", state, freed, actor)?;
        drop(_serial);
        self.audit(
            actor,
            "evict",
            Some(id),
            serde_json::json!({"bytes_freed": total}),
        )?;
        self.inner.maybe_checkpoint()?;
        Ok(total)
    }

    /// Deletes a segment everywhere (local bytes, cloud copy, index). Refused while it is
    /// under a legal hold. Returns local bytes freed.
    pub fn delete(&self, id: u64, actor: &str) -> Result<u64> {
        let _serial = self.inner.change_lock.lock();
        let mut state = self.inner.current_state(id)?;
        if !state.holds.is_empty() {
            return Err(Error::Invalid(format!(
                "segment {id} is under a legal hold ({}): release it first",
                state.holds.join(", ")
            )));
        }
        let (meta_volume, meta_offset) = {
            let cat = self.inner.catalog.read();
            let e = cat.get(id).ok_or_else(|| Error::NotFound(id.to_string()))?;
            (e.meta_volume, e.meta_offset())
        };
        let freed = if state.flags & FLAG_EVICTED == 0 {
            self.inner.punch_chunks(id)?
        } else {
            Vec::new()
        };
        if state.flags & FLAG_UPLOADED != 0 {
            self.inner.tier()?.delete(id)?;
        }
        let total = freed.iter().map(|f| f.1).sum();
        state.flags |= FLAG_DELETED;
        self.inner
            .append_change(id, Op::Deleted, "", state, freed, actor)?;
        // The commit record goes too, so a rebuild from the log cannot bring the segment back.
        if let Some(vol) = self.inner.volume(meta_volume) {
            if let Ok(h) = vol.read_header(meta_offset) {
                vol.punch(meta_offset, HEADER_LEN + u64::from(h.len))?;
            }
        }
        drop(_serial);
        self.audit(
            actor,
            "delete",
            Some(id),
            serde_json::json!({"bytes_freed": total}),
        )?;
        self.inner.maybe_checkpoint()?;
        Ok(total)
    }

    /// Removes sealed volumes that hold nothing a live segment needs; returns bytes freed.
    pub fn drop_empty_volumes(&self, actor: &str) -> Result<u64> {
        let candidates: Vec<u32> = {
            let cat = self.inner.catalog.read();
            let active: Vec<u32> = self
                .inner
                .writers
                .lock()
                .values()
                .map(|w| w.volume.id)
                .collect();
            cat.volumes
                .values()
                .filter(|v| v.sealed && !active.contains(&v.id))
                .filter(|v| cat.volume_live.get(&v.id).is_none_or(|l| *l == (0, 0)))
                .map(|v| v.id)
                .collect()
        };
        let mut freed = 0;
        for vid in candidates {
            // Restate the newest changes of live segments that live in this volume.
            let restate: Vec<u64> = {
                let cat = self.inner.catalog.read();
                cat.states
                    .iter()
                    .filter(|(id, s)| s.volume == vid && cat.get(**id).is_some())
                    .map(|(id, _)| *id)
                    .collect()
            };
            {
                let _serial = self.inner.change_lock.lock();
                for id in restate {
                    let state = self.inner.current_state(id)?;
                    self.inner
                        .append_change(id, Op::Restate, "", state, Vec::new(), actor)?;
                }
            }
            // A checkpoint that no longer needs the volume must be durable before it goes.
            let vol = self.inner.volume(vid);
            self.inner.catalog.write().volumes.remove(&vid);
            self.inner.checkpoint()?;
            if let Some(vol) = vol {
                freed += vol.len().unwrap_or(0);
                self.inner.volumes.write().remove(&vid);
                std::fs::remove_file(&vol.path).map_err(|e| Error::io(&vol.path, e))?;
                if let Some(dir) = vol.path.parent() {
                    crate::log::sync_dir(dir)?;
                }
            }
        }
        Ok(freed)
    }
}
