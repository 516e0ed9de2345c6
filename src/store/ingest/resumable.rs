//! The writer's side of resumable uploads (`store/upload/`): a writer rebuilt from a session's
//! durable state, suspended between requests, its tail persisted as a short chunk, and the
//! volumes it writes to pinned.
//!
//! Invariant: what `persist_tail` and `sync_whole_chunks` report is durable (fdatasync'ed)
//! before they return.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::format::chunk::ChunkForm;
use crate::format::commit::Extent;
use crate::meta::SegmentMeta;
use crate::store::Inner;

use super::{failed_earlier, SegmentWriter};

impl SegmentWriter {
    /// A writer for segment `id` in data dir `dir` and volume day `day` (already chosen).
    pub(crate) fn with_parts(
        inner: Arc<Inner>,
        meta: SegmentMeta,
        actor: Arc<str>,
        id: u64,
        dir: u16,
        day: i64,
    ) -> SegmentWriter {
        let cipher = inner.crypt.as_ref().map(|c| c.segment(id));
        let form = ChunkForm::of(true, cipher.is_some());
        let capacity = form.capacity(u64::from(inner.config.chunk_size)) as usize;
        SegmentWriter {
            inner,
            actor,
            id,
            meta,
            dir,
            day,
            capacity,
            buf: Vec::new(),
            hasher: Sha256::new(),
            bytes: 0,
            extents: Vec::new(),
            touched: Vec::new(),
            failed: false,
            cipher,
            form,
            pins: None,
            hashed_by_caller: false,
        }
    }
    /// A writer that goes on after `extents` (durable chunks holding `bytes` bytes, which
    /// `hasher` has already seen): an upload session resumed after a restart or an error. Its
    /// chunks keep the form of the ones already written ([`chunk_form_of`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn resume(
        inner: Arc<Inner>,
        meta: SegmentMeta,
        actor: Arc<str>,
        (id, dir, day): (u64, u16, i64),
        extents: Vec<Extent>,
        bytes: u64,
        hasher: Sha256,
        pins: Arc<parking_lot::Mutex<std::collections::HashSet<u32>>>,
    ) -> Result<SegmentWriter> {
        let form = chunk_form_of(&inner, id, &extents)?;
        let mut w = SegmentWriter::with_parts(inner, meta, actor, id, dir, day);
        if form == ChunkForm::Plain {
            w.plain_chunks();
        }
        w.extents = extents;
        w.bytes = bytes;
        w.hasher = hasher;
        w.pins = Some(pins);
        Ok(w)
    }
    /// Records every volume this writer appends to in `pins`, so that compaction and the
    /// dropping of empty volumes leave them alone while the catalog does not yet count the
    /// chunks (a restore before its `Restored` record; upload sessions use [`Self::resume`]).
    pub(crate) fn pin_volumes_to(
        &mut self,
        pins: Arc<parking_lot::Mutex<std::collections::HashSet<u32>>>,
    ) {
        self.pins = Some(pins);
    }
    /// The hash state, length and chunks of a writer whose every byte is durable (after
    /// [`SegmentWriter::persist_tail`]), without its handle on the store: an upload session
    /// keeps this between requests (a writer kept inside the store would keep it open).
    /// None if a write failed or bytes are held back.
    pub(crate) fn suspend(self) -> Option<(Sha256, u64, Vec<Extent>)> {
        (!self.failed && self.buf.is_empty()).then_some((self.hasher, self.bytes, self.extents))
    }
    /// The SHA-256 state over every byte written so far (an upload request keeps the state
    /// it started from, to go back to it if its checksum does not match).
    pub(crate) fn hash_state(&self) -> Sha256 {
        self.hasher.clone()
    }
    /// Payload bytes of a full chunk.
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity as u32
    }
    /// How this writer's chunk payloads are laid out.
    pub(crate) fn form(&self) -> ChunkForm {
        self.form
    }
    /// Writes plain chunks (no block CRC trailers), as builds before commit record version 3
    /// did: for an upload session begun by such a build, whose earlier chunks are plain and
    /// hold up to the plain capacity. Only before the first byte is written.
    fn plain_chunks(&mut self) {
        if self.form == ChunkForm::Blocks {
            self.form = ChunkForm::Plain;
            self.capacity = self.form.capacity(u64::from(self.inner.config.chunk_size)) as usize;
        }
    }
    /// The chunks written so far (after [`SegmentWriter::persist_tail`]: all of them).
    pub(crate) fn extents(&self) -> &[Extent] {
        &self.extents
    }
    /// The metadata the commit record will carry (an upload fills in its end time last).
    pub(crate) fn meta_mut(&mut self) -> &mut SegmentMeta {
        &mut self.meta
    }
    /// Makes every byte written so far durable: the bytes held back for a partial chunk are
    /// written as a short chunk (which makes the segment's layout version 2) and every volume
    /// touched is fdatasync'ed. Afterwards [`SegmentWriter::extents`] describes all
    /// [`SegmentWriter::bytes`].
    pub(crate) fn persist_tail(&mut self) -> Result<()> {
        if self.failed {
            return Err(failed_earlier());
        }
        let r = (|| {
            if !self.buf.is_empty() {
                let chunk = std::mem::take(&mut self.buf);
                self.append_chunk(&[&chunk])?;
            }
            for (w, end) in &self.touched {
                w.sync_to(*end)?;
            }
            Ok(())
        })();
        if r.is_err() {
            self.failed = true;
        }
        r.map_err(|e| self.inner.explain_disk_full(e))
    }
    /// Makes the whole chunks written so far durable (the partial tail stays buffered);
    /// returns the bytes they hold. For progress checkpoints inside a long upload request.
    pub(crate) fn sync_whole_chunks(&mut self) -> Result<u64> {
        if self.failed {
            return Err(failed_earlier());
        }
        let r = (|| {
            for (w, end) in &self.touched {
                w.sync_to(*end)?;
            }
            Ok(())
        })();
        if r.is_err() {
            self.failed = true;
        }
        r.map_err(|e| self.inner.explain_disk_full(e))?;
        Ok(self.bytes - self.buf.len() as u64)
    }
}

/// The form of the chunks an upload session has written so far: Sealed in an encrypted store;
/// else what the first chunk's record header says (a session begun by a build before commit
/// record version 3 has plain chunks, and keeps writing them so that its segment has one
/// form); Blocks when there is no chunk yet.
pub(crate) fn chunk_form_of(inner: &Inner, id: u64, extents: &[Extent]) -> Result<ChunkForm> {
    if inner.crypt.is_some() {
        return Ok(ChunkForm::Sealed);
    }
    let Some(first) = extents.first() else {
        return Ok(ChunkForm::Blocks);
    };
    let vol = inner
        .volume(first.volume_id)
        .ok_or_else(|| crate::error::Error::Unavailable {
            segment: id,
            reason: format!("volume {} is missing", first.volume_id),
        })?;
    let h = vol.read_header(first.offset)?;
    Ok(if h.has_block_crcs() {
        ChunkForm::Blocks
    } else {
        ChunkForm::Plain
    })
}
