//! Ingest: the streaming segment writer.
//!
//! Lifecycle of a segment: `begin` (validate metadata, pick a data dir, reserve an id) →
//! `write` (bytes are cut into chunk records of `chunk_size`, each appended to the active
//! volume for this dir and footage day, and its write-out to the device started at once; the
//! SHA-256 of a large write is computed on a helper thread at the same time, so hashing, the
//! copy into the page cache and the device's writing overlap) → `commit`: the last partial
//! chunk is written, every volume holding a chunk is fsynced up to it, the (device, SHA-256)
//! pair is checked against stored segments (a retried dock gets the existing id back with
//! `duplicate`), the commit record is appended and fsynced, and only then is the segment in
//! the catalog; finally an `ingest` entry is written to the audit log (batched for a new
//! segment, whose commit record names the actor so that open can rewrite a lost entry;
//! durable for a duplicate) and the commit returns.
//!
//! Invariants: a commit record is never written before the chunks it names are durable; a
//! writer that is dropped without `commit` leaves only dead chunks, never a visible segment;
//! a writer whose `write` failed refuses to commit (its hash and length would not match the
//! chunks on disk); a commit is acknowledged only once its audit entry is written (if that
//! fails, the segment is stored but the commit reports the error: a retry gets it back as a
//! duplicate and is recorded then).
//!
//! In an encrypted store each chunk payload is sealed (`crate::crypt`, domain `FTC1`, the
//! chunk index as AAD position) just before it is appended; the chunk capacity shrinks by the
//! 28 bytes of nonce and tag so that a full chunk record is still exactly `chunk_size` bytes.
//! Extents and the SHA-256 describe the plaintext.
//!
//! Here: `begin`, `write`, `copy_from` and the chunk cutting; `commit.rs` (`commit`);
//! `resumable.rs` (what upload sessions need: resume, suspend, persist the tail).

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{hex, Inner};
use crate::error::{Error, Result};
use crate::format::chunk::ChunkForm;
use crate::format::commit::Extent;
use crate::format::record::{record_end, Kind, RecordHeader};
use crate::log::writer::{Appended, VolumeWriter};
use crate::meta::SegmentMeta;

/// Writes of at least this many bytes are hashed on a helper thread while their chunks are
/// appended; shorter ones inline (starting a thread costs ~20-50 µs, hashing 64 KiB ~40 µs).
const PARALLEL_HASH_MIN: usize = 256 * 1024;
/// Chunks `copy_from` gathers before each `write`, so a reader's bytes are hashed in large
/// batches alongside their appends.
const COPY_CHUNKS: usize = 8;

/// What `commit` returns: the segment's id and hash, and whether it was already stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Committed {
    /// The segment id (the first segment's id when `duplicate`).
    pub id: u64,
    /// SHA-256 of the video.
    #[serde(serialize_with = "crate::util::serialize_hex")]
    pub sha256: [u8; 32],
    /// Length of the video, bytes.
    pub bytes: u64,
    /// True when the same device had already stored these bytes: nothing new was stored.
    pub duplicate: bool,
}

fn failed_earlier() -> Error {
    Error::Invalid(
        "an earlier write to this segment failed, so it cannot be committed: begin it again".into(),
    )
}

impl Committed {
    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// A segment being ingested ([`crate::Store::begin_segment`]): `write` its bytes, then
/// `commit`; dropped uncommitted, nothing of it becomes visible.
pub struct SegmentWriter {
    inner: Arc<Inner>,
    /// Who is ingesting, for the audit log.
    actor: Arc<str>,
    id: u64,
    meta: SegmentMeta,
    dir: u16,
    day: i64,
    capacity: usize,
    buf: Vec<u8>,
    hasher: Sha256,
    bytes: u64,
    extents: Vec<Extent>,
    /// Volumes written to, with the end of our last record in each.
    touched: Vec<(Arc<VolumeWriter>, u64)>,
    /// An append failed: the hash and length no longer describe the chunks on disk.
    failed: bool,
    /// Seals chunk payloads in an encrypted store.
    cipher: Option<crate::crypt::SegmentCipher>,
    /// Sealed in an encrypted store; else Blocks (a block CRC trailer per chunk), or Plain
    /// for an upload session an earlier build began.
    form: ChunkForm,
    /// Volumes an upload session has chunks in (kept from compaction and volume dropping):
    /// each is added before the first append to it.
    pins: Option<Arc<parking_lot::Mutex<std::collections::HashSet<u32>>>>,
    /// Bytes were written with [`SegmentWriter::write_hashed_by_caller`]: `hasher` has not
    /// seen them, so this writer can never commit (a restore hashes on its own thread and
    /// records its own commit record).
    hashed_by_caller: bool,
}

impl SegmentWriter {
    pub(super) fn begin(
        inner: Arc<Inner>,
        mut meta: SegmentMeta,
        actor: Arc<str>,
    ) -> Result<SegmentWriter> {
        meta.normalize();
        meta.validate().map_err(Error::Invalid)?;
        let dir = inner.pick_dir()?;
        let id = inner.next_segment_id.fetch_add(1, Ordering::SeqCst);
        let day = Inner::day_of(meta.start_us);
        Ok(SegmentWriter::with_parts(inner, meta, actor, id, dir, day))
    }
    /// The id this segment will have if it is committed (and is not a duplicate).
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// Appends bytes to the segment. After an error the segment cannot be committed (begin
    /// it again); what was written stays as dead chunks.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.failed {
            return Err(failed_earlier());
        }
        self.bytes += data.len() as u64;
        let r = if data.len() < PARALLEL_HASH_MIN {
            self.hasher.update(data);
            self.cut(data)
        } else {
            self.hash_while_cutting(data)
        };
        if r.is_err() {
            self.failed = true;
        }
        r.map_err(|e| self.inner.explain_disk_full(e))
    }
    /// Appends bytes that the caller hashes itself (a restore hashes every span on a thread
    /// of its own, overlapped with the next spans' writes, instead of a thread per write).
    /// The writer's own hash then no longer describes its bytes: it refuses to `commit`.
    pub(crate) fn write_hashed_by_caller(&mut self, data: &[u8]) -> Result<()> {
        if self.failed {
            return Err(failed_earlier());
        }
        self.hashed_by_caller = true;
        self.bytes += data.len() as u64;
        let r = self.cut(data);
        if r.is_err() {
            self.failed = true;
        }
        r.map_err(|e| self.inner.explain_disk_full(e))
    }
    /// Hashes `data` on a helper thread while this thread cuts it into chunks and appends them:
    /// the hash (about as fast as the disk) then costs no time of its own. Falls back to
    /// hashing inline if no thread can be started.
    fn hash_while_cutting(&mut self, data: &[u8]) -> Result<()> {
        let mut helper_hasher = self.hasher.clone();
        std::thread::scope(|s| {
            let helper = std::thread::Builder::new()
                .name("footage-sha256".into())
                .spawn_scoped(s, move || {
                    helper_hasher.update(data);
                    helper_hasher
                });
            match helper {
                Ok(handle) => {
                    let r = self.cut(data);
                    match handle.join() {
                        Ok(h) => self.hasher = h,
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                    r
                }
                Err(_) => {
                    self.hasher.update(data);
                    self.cut(data)
                }
            }
        })
    }
    /// Cuts bytes into chunks. Whole chunks go straight from `data` to the volume; a chunk
    /// that starts with bytes held back from an earlier call is written from both buffers in
    /// place; only a final partial chunk is copied, into `buf`, to wait for more bytes or for
    /// `commit`.
    fn cut(&mut self, mut data: &[u8]) -> Result<()> {
        if !self.buf.is_empty() {
            let need = self.capacity - self.buf.len();
            if data.len() < need {
                self.buf.extend_from_slice(data);
                return Ok(());
            }
            let (head, rest) = data.split_at(need);
            let held = std::mem::take(&mut self.buf);
            let r = self.append_chunk(&[&held, head]);
            self.buf = held;
            self.buf.clear();
            r?;
            data = rest;
        }
        while data.len() >= self.capacity {
            let (chunk, rest) = data.split_at(self.capacity);
            self.append_chunk(&[chunk])?;
            data = rest;
        }
        if !data.is_empty() {
            if self.buf.capacity() < self.capacity {
                self.buf.reserve_exact(self.capacity);
            }
            self.buf.extend_from_slice(data);
        }
        Ok(())
    }
    /// Copies everything from a reader into the segment, in batches of several chunks.
    pub fn copy_from(&mut self, r: &mut dyn Read) -> Result<u64> {
        let mut buf = vec![0u8; self.capacity * COPY_CHUNKS];
        let mut total = 0u64;
        loop {
            // Fill the batch (short reads are normal for pipes and sockets).
            let mut n = 0;
            let mut eof = false;
            while n < buf.len() {
                match r.read(buf.get_mut(n..).unwrap_or_default()) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Error::Io {
                            path: "<input>".into(),
                            source: e,
                        })
                    }
                }
            }
            self.write(buf.get(..n).unwrap_or_default())?;
            total += n as u64;
            if eof {
                return Ok(total);
            }
        }
    }
    /// Appends the next chunk, whose payload is the concatenation of `parts`.
    fn append_chunk(&mut self, parts: &[&[u8]]) -> Result<()> {
        let index = u32::try_from(self.extents.len())
            .map_err(|_| Error::Invalid("segment has too many chunks".into()))?;
        let len = parts.iter().map(|p| p.len()).sum::<usize>() as u32;
        let (writer, pos) = match (&self.cipher, self.form) {
            (Some(c), _) => {
                let sealed = c.seal(crate::crypt::DOMAIN_CHUNK, u64::from(index), parts);
                let header = RecordHeader::from_parts(Kind::Chunk, &[&sealed], self.id, index);
                self.append(header, &[&sealed])?
            }
            (None, ChunkForm::Blocks) => {
                let trailer = crate::format::chunk::build_trailer(parts);
                let header = RecordHeader::blocks_chunk(len, &trailer, self.id, index);
                let mut all = parts.to_vec();
                all.push(&trailer);
                self.append(header, &all)?
            }
            (None, _) => {
                let header = RecordHeader::from_parts(Kind::Chunk, parts, self.id, index);
                self.append(header, parts)?
            }
        };
        self.extents.push(Extent {
            volume_id: writer.volume.id,
            offset: pos,
            len,
        });
        Ok(())
    }
    /// Appends a record to the active volume for this segment, moving to a new volume when
    /// the current one is full.
    fn append(
        &mut self,
        header: RecordHeader,
        parts: &[&[u8]],
    ) -> Result<(Arc<VolumeWriter>, u64)> {
        let (kind, len) = (header.kind, header.len);
        loop {
            let w = self.inner.writer_for(self.dir, self.day)?;
            if let Some(p) = &self.pins {
                p.lock().insert(w.volume.id);
            }
            match w.append_record(header, parts)? {
                Appended::At(pos) => {
                    let end = record_end(pos, len);
                    if kind == Kind::Chunk {
                        // Let the device start on this chunk while the next one is cut and
                        // hashed; the commit's fdatasync then has little left to wait for.
                        w.start_writeback(pos, end);
                    }
                    match self.touched.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &w)) {
                        Some(t) => t.1 = end,
                        None => self.touched.push((Arc::clone(&w), end)),
                    }
                    return Ok((w, pos));
                }
                Appended::Full => self.inner.rotate(self.dir, self.day, &w)?,
            }
        }
    }
}

mod commit;
mod resumable;

pub(crate) use resumable::chunk_form_of;

#[cfg(test)]
pub(crate) mod tests;
