//! Moving segments between tiers and out of the store: upload to the cloud tier, eviction of
//! local bytes, deletion everywhere, and dropping volumes nothing needs any more.
//!
//! Invariants (the order of each step is what makes a crash at any point safe):
//! - upload: parts, read-back verification and `meta.json` first, then the `Uploaded` change
//!   record; a crash before the record only means the next apply uploads (resumes) again;
//! - evict: only with `Uploaded` recorded; the `Evicted` record first (durable), then the
//!   holes, not synced: a crash between, or a power cut that undoes the punch, leaves dead
//!   local bytes (reclaimed by compaction or dropping the volume), never a half-evicted
//!   segment that `verify` would call corrupt;
//! - delete: refused while held; the `Deleted` record first, then local holes, synced (its
//!   chunks, or those an evicted segment's eviction left in place, and the commit record, so
//!   no rebuild from the log can bring it back), then the cloud copy, whose pending deletion is
//!   kept in `cloud-deletes` until done;
//! - each upload, eviction and deletion is recorded in the audit log after its change record
//!   (the segment's audit trail outlives the segment);
//! - a volume is dropped only when sealed and holding no chunk and no commit record of a live
//!   segment; the latest change records of live segments it holds are first restated in the
//!   active log.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fail;
use crate::format::change::{Op, FLAG_DELETED, FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::chunk::ChunkForm;
use crate::format::commit::Extent;
use crate::format::record::HEADER_LEN;
use crate::store::{Inner, Store};
use crate::tier::{meta_for, Tier};

/// Chunk payload bytes freed per volume (the `freed` list of a change record).
type Freed = Vec<(u32, u64)>;

impl Inner {
    /// Ids of the volumes that take appends now.
    pub(crate) fn active_volume_ids(&self) -> Vec<u32> {
        self.writers.lock().values().map(|w| w.volume.id).collect()
    }

    /// The cloud tier named by policy.toml (connected on first use).
    pub(crate) fn tier(&self) -> Result<Arc<Tier>> {
        let mut slot = self.tier.lock();
        if let Some(t) = slot.as_ref() {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(self.connect_tier()?);
        *slot = Some(Arc::clone(&t));
        Ok(t)
    }

    fn connect_tier(&self) -> Result<Tier> {
        let policy = self.load_policy()?;
        Ok(
            Tier::open(&policy.cloud_url, &crate::store::hex(&self.store_id))?
                .with_crypt(self.crypt.clone())
                .with_cache(self.cache.clone())
                .with_local_crcs(Some(self.root.join(crate::tier::local_crc::LOCAL_CRC_DIR))),
        )
    }

    /// Tests only: connects the cloud tier anew through `wrap` (`crate::testing::wrap_cloud`).
    #[cfg(feature = "internals")]
    pub(crate) fn wrap_tier(
        &self,
        wrap: impl FnOnce(Arc<dyn object_store::ObjectStore>) -> Arc<dyn object_store::ObjectStore>,
    ) -> Result<()> {
        let t = Arc::new(self.connect_tier()?.map_object_store(wrap));
        *self.tier.lock() = Some(t);
        Ok(())
    }

    /// Chunk payload bytes per volume of a segment's local chunks (what its eviction or
    /// deletion frees, in the units of `Catalog::volume_live`), and its extents.
    fn local_chunks(&self, id: u64) -> Result<(Freed, Vec<Extent>, ChunkForm)> {
        let rec = self.load_commit(id, false)?;
        let form = ChunkForm::of(rec.block_crcs, self.crypt.is_some());
        let mut freed: Vec<(u32, u64)> = Vec::new();
        for x in &rec.extents {
            match freed.iter_mut().find(|(v, _)| *v == x.volume_id) {
                Some(f) => f.1 += u64::from(x.len),
                None => freed.push((x.volume_id, u64::from(x.len))),
            }
        }
        Ok((freed, rec.extents, form))
    }

    /// Punches chunk records (of the given form) out of their volumes, durably or not
    /// ([`crate::log::volume::Volume::punch_many`]); returns the bytes freed on disk.
    fn punch_extents(&self, extents: &[Extent], form: ChunkForm, durable: bool) -> Result<u64> {
        if !self.punch_holes.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(0); // left as dead bytes for compaction
        }
        // A chunk's record may hold more than the extent's bytes: the nonce and tag of an
        // encrypted one, the block CRC trailer of a Blocks one.
        // One fdatasync per volume, not per chunk.
        let mut by_volume: std::collections::BTreeMap<u32, Vec<(u64, u64)>> = Default::default();
        for x in extents {
            by_volume
                .entry(x.volume_id)
                .or_default()
                .push((x.offset, HEADER_LEN + u64::from(x.len + form.extra(x.len))));
        }
        let mut total = 0;
        for (vid, ranges) in by_volume {
            let Some(vol) = self.volume(vid) else {
                continue; // its disk is gone (or it was compacted away): nothing to free there
            };
            total += vol.punch_many(&ranges, durable)?;
        }
        Ok(total)
    }

    /// The chunk records of an evicted segment still in place, punched durably: its
    /// eviction's punch (not synced) may have been undone by a power cut, and a deletion
    /// leaves no footage behind whatever happened to the eviction. A record is punched only
    /// while its header still names this segment and chunk (one already punched reads as
    /// zeros and costs no sync; a volume compacted or dropped since is gone, its id never
    /// reused).
    fn punch_leftover_chunks(&self, id: u64, extents: &[Extent], form: ChunkForm) -> Result<u64> {
        let left: Vec<Extent> = extents
            .iter()
            .enumerate()
            .filter(|(i, x)| {
                self.volume(x.volume_id)
                    .and_then(|v| v.read_header(x.offset).ok())
                    .is_some_and(|h| {
                        h.kind == crate::format::record::Kind::Chunk
                            && h.a == id
                            && h.b as usize == *i
                    })
            })
            .map(|(_, x)| *x)
            .collect();
        if left.is_empty() {
            return Ok(0);
        }
        tracing::debug!(
            segment = id,
            chunks = left.len(),
            "deleting an evicted segment: punching chunks its eviction left in place"
        );
        self.punch_extents(&left, form, true)
    }

    /// Deletes the cloud copy of a segment already deleted locally, then drops it from the
    /// pending list. The caller holds `change_lock`.
    fn delete_cloud_copy(&self, id: u64) -> Result<()> {
        self.tier()?.delete(id)?;
        let mut pending = self.pending_cloud_deletes()?;
        if pending.contains(&id) {
            pending.retain(|p| *p != id);
            self.set_pending_cloud_deletes(&pending)?;
        }
        Ok(())
    }
}

impl Store {
    /// Whether evictions and deletions free their chunks at once by hole punching (the
    /// default) or leave them as dead bytes for `compact` (to compare the two).
    #[doc(hidden)]
    pub fn set_punch_holes(&self, on: bool) {
        self.inner
            .punch_holes
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Copies a segment to the cloud tier and verifies the copy (resuming an earlier attempt).
    /// Returns false if it already had a verified copy.
    pub fn upload(&self, id: u64, actor: &str, progress: &mut dyn FnMut(u64)) -> Result<bool> {
        self.inner.writable("upload to the cloud tier")?;
        self.upload_in_run(id, actor, progress, None)
    }

    /// `upload`, as part of a retention run whose clock goes in the audit entry.
    pub(crate) fn upload_in_run(
        &self,
        id: u64,
        actor: &str,
        progress: &mut dyn FnMut(u64),
        run: Option<&RunClock>,
    ) -> Result<bool> {
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
        let mut clock = crate::util::Phases::start();
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
        clock.mark("tier_upload");
        let serial = self.inner.change_lock.lock();
        let mut state = match self.inner.current_state(id) {
            Ok(s) => s,
            Err(Error::NotFound(_)) => {
                // Deleted while it was uploading: the copy just made must go too.
                let mut pending = self.inner.pending_cloud_deletes()?;
                pending.push(id);
                self.inner.set_pending_cloud_deletes(&pending)?;
                self.inner.delete_cloud_copy(id)?;
                return Err(Error::NotFound(id.to_string()));
            }
            Err(e) => return Err(e),
        };
        state.flags |= FLAG_UPLOADED;
        let lsn =
            self.inner
                .append_change(id, Op::Uploaded, tier.url(), state, Vec::new(), actor)?;
        drop(serial);
        clock.mark("uploaded_record");
        fail::point("upload.after_record");
        self.audit(
            actor,
            crate::audit::Action::Upload,
            Some(id),
            stamp(run, serde_json::json!({"url": tier.url(), "bytes": rec.bytes, "sha256": crate::store::hex(&rec.sha256), "lsn": lsn})),
        )?;
        clock.mark("audit");
        tracing::debug!(
            segment = id,
            bytes = rec.bytes,
            url = tier.url(),
            total_ms = clock.total_ms(),
            phases = %clock,
            "uploaded to the cloud tier and verified"
        );
        self.inner.maybe_checkpoint();
        Ok(true)
    }

    /// Drops a segment's local bytes; it must have a verified cloud copy. Returns bytes freed.
    pub fn evict(&self, id: u64, actor: &str) -> Result<u64> {
        self.inner.writable("eviction")?;
        self.evict_in_run(id, actor, None)
    }

    /// `evict`, as part of a retention run whose clock goes in the audit entry.
    pub(crate) fn evict_in_run(&self, id: u64, actor: &str, run: Option<&RunClock>) -> Result<u64> {
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
        // A pin placed after a retention run took its snapshot is seen here, under the lock
        // that orders it with this eviction: a pinned segment stays local.
        let now = run.map_or_else(|| self.inner.now_us(), |r| r.now_us);
        if let Some(until) = state.pinned_until.filter(|&t| t > now) {
            return Err(Error::Invalid(format!(
                "segment {id} is pinned (until {}): it stays local; unpin it first",
                crate::input::time::format_time(until)
            )));
        }
        // The record first (the decision, durable): from then on reads go to the cloud copy.
        // Then the holes. A crash between leaves only dead local bytes, reclaimed by
        // compaction or when the volume is dropped; the segment is never half evicted (its
        // local copy is either whole or no longer claimed), so `verify` stays clean.
        let mut clock = crate::util::Phases::start();
        let (freed, extents, form) = self.inner.local_chunks(id)?;
        state.flags |= FLAG_EVICTED;
        let lsn = self
            .inner
            .append_change(id, Op::Evicted, "", state, freed, actor)?;
        clock.mark("evicted_record");
        fail::point("evict.after_record");
        // Not synced: the record above is the durable decision (see `Volume::punch_many`); a
        // deletion later punches whatever a power cut put back (`punch_leftover_chunks`).
        let total = self.inner.punch_extents(&extents, form, false)?;
        clock.mark("punch");
        drop(_serial);
        fail::point("evict.after_punch");
        self.audit(
            actor,
            crate::audit::Action::Evict,
            Some(id),
            stamp(run, serde_json::json!({"bytes_freed": total, "lsn": lsn})),
        )?;
        clock.mark("audit");
        tracing::debug!(
            segment = id,
            bytes_freed = total,
            total_ms = clock.total_ms(),
            phases = %clock,
            "evicted: only the cloud copy remains"
        );
        self.inner.maybe_checkpoint();
        Ok(total)
    }

    /// Deletes a segment everywhere (local bytes, cloud copy, index). Refused while it is
    /// under a legal hold. Returns local bytes freed on disk.
    ///
    /// The `Deleted` record comes first (the decision, durable), then the space is released:
    /// local chunks and the commit record are punched, then the cloud copy is deleted. A
    /// crash after the record leaves only dead bytes (reclaimed by compaction or when the
    /// volume is dropped) and, for an uploaded segment, an entry in `cloud-deletes` that the
    /// next `retention apply` finishes. A crash before it leaves the segment untouched.
    pub fn delete(&self, id: u64, actor: &str) -> Result<u64> {
        self.inner.writable("deletion")?;
        self.delete_in_run(id, actor, None)
    }

    /// `delete`, as part of a retention run whose clock goes in the audit entry.
    pub(crate) fn delete_in_run(
        &self,
        id: u64,
        actor: &str,
        run: Option<&RunClock>,
    ) -> Result<u64> {
        let serial = self.inner.change_lock.lock();
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
        let evicted = state.flags & FLAG_EVICTED != 0;
        // An unreadable commit record does not stop a deletion: its chunks then stay as dead
        // bytes until their volume is compacted or dropped.
        // (An evicted segment frees nothing more: its chunks were counted out at eviction.)
        let (freed, extents, form) = match self.inner.local_chunks(id) {
            Ok((_, x, form)) if evicted => (Vec::new(), x, form),
            Ok(chunks) => chunks,
            Err(_) => (Vec::new(), Vec::new(), ChunkForm::Plain),
        };
        let uploaded = state.flags & FLAG_UPLOADED != 0;
        if uploaded {
            let mut pending = self.inner.pending_cloud_deletes()?;
            if !pending.contains(&id) {
                pending.push(id);
                self.inner.set_pending_cloud_deletes(&pending)?;
            }
        }
        // The audit entry before the record: a deletion that happened is never missing from
        // the trail (a crash between leaves a `delete` entry for a segment the next run
        // deletes and records again), and `verify` can tell a deleted segment from a lost one
        // (crosscheck.rs) even after its commit record is punched.
        let local: u64 = freed.iter().map(|&(_, b)| b).sum();
        self.audit(
            actor,
            crate::audit::Action::Delete,
            Some(id),
            stamp(
                run,
                serde_json::json!({"bytes_local": local, "cloud_copy": uploaded}),
            ),
        )?;
        fail::point("delete.before_record");
        state.flags |= FLAG_DELETED;
        self.inner
            .append_change(id, Op::Deleted, "", state, freed, actor)?;
        fail::point("delete.after_record");
        // Its cached blocks go with it (a crash before this: the next open drops them).
        if let Some(c) = &self.inner.cache {
            c.drop_segment(id);
        }
        let total = if evicted {
            self.inner.punch_leftover_chunks(id, &extents, form)?
        } else {
            self.inner.punch_extents(&extents, form, true)?
        };
        // The commit record goes too, so a rebuild from the log cannot bring the segment back.
        if let Some(vol) = self.inner.volume(meta_volume) {
            if let Ok(h) = vol.read_header(meta_offset) {
                if h.kind == crate::format::record::Kind::Commit && h.a == id {
                    vol.punch(meta_offset, HEADER_LEN + u64::from(h.len))?;
                }
            }
        }
        fail::point("delete.after_local");
        if uploaded {
            self.inner.delete_cloud_copy(id)?;
        }
        fail::point("delete.after_cloud");
        drop(serial);
        tracing::debug!(segment = id, bytes_freed = total, uploaded, "deleted");
        self.inner.maybe_checkpoint();
        Ok(total)
    }
}

/// An audit entry's details, with the retention run's clock when there is one.
fn stamp(run: Option<&RunClock>, details: serde_json::Value) -> serde_json::Value {
    match run {
        Some(r) => r.stamp(details),
        None => details,
    }
}

/// The clock a retention run (src/retention) decides by: recorded in its summary and in the
/// audit entries of the evictions it makes.
#[derive(Debug, Clone)]
pub(crate) struct RunClock {
    /// `"real"` or `"simulated"` (the store's clock).
    pub clock: &'static str,
    /// The time used, RFC 3339.
    pub now: String,
    /// The same time, µs (what a pin is compared with when the run evicts).
    pub now_us: i64,
}

impl RunClock {
    /// Adds `clock` and `now` to an audit entry's details (an object).
    pub fn stamp(&self, mut details: serde_json::Value) -> serde_json::Value {
        if let Some(m) = details.as_object_mut() {
            m.insert("clock".into(), self.clock.into());
            m.insert("now".into(), self.now.clone().into());
        }
        details
    }
}
