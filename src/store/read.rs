//! Reads: verified chunk access, `read_range`, and a `Read + Seek` reader over a segment,
//! local or (for evicted segments) through the cloud tier.
//!
//! Invariants:
//! - every byte handed out comes from a chunk whose header names this segment and chunk
//!   index and whose payload CRC matched (for a chunk with a block CRC trailer: whose
//!   trailer matched the header's CRC and whose 16 KiB blocks holding the bytes matched
//!   their CRCs in it), or from a cloud block whose CRC32 matched;
//!   otherwise the read fails with [`Error::SegmentCorrupt`] naming the segment and the byte
//!   offset (never wrong bytes); a cloud block may come from the read cache (`crate::cache`),
//!   checked again against the same CRC32;
//! - bytes verified earlier are copied out only while no hole can be punched in their volume
//!   and only if none was punched since they were verified (else they are re-verified);
//! - a segment with a verified cloud copy is read from the cloud when its local bytes are
//!   gone (evicted), fail their checks, or cannot be read (volume missing, disk failed: then
//!   even its commit record may be out of reach, and the catalog's length and the cloud's
//!   `meta.json` are enough);
//! - a reader whose chunks were moved by compaction after it opened (their volume is gone)
//!   reloads the segment's commit record once and reads the copies;
//! - through an actor handle (`Store::with_actor`), opening a segment or reading a range is
//!   recorded in the audit log (action `read`) before any byte is handed out.
//! - in an encrypted store every chunk is opened (AES-256-GCM tag checked, bound to this
//!   segment and chunk index) before any of its bytes are handed out; a failed tag is
//!   reported as tampering, never returned as data.
//!
//! Here: the reader, its cache of verified bytes and `Read`/`Seek`; `read/local.rs`: loading
//! and verifying one chunk of the local copy, in each chunk form.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use super::{Inner, Store};
use crate::error::{Error, Result};
use crate::format::change::{FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::chunk::ChunkForm;
use crate::format::commit::{ChunkLayout, Extent};
use crate::log::volume::{RecordBytes, Volume};

mod local;

/// Bytes fetched from the cloud tier at a time when reading an evicted segment.
const CLOUD_READ: u64 = 4 << 20;
/// Most bytes of a chunk with block CRCs verified at a time: a read checks only the blocks it
/// needs, and a long read checks and copies piece by piece while each piece is in the CPU's
/// cache.
const VERIFY_AT_ONCE: u64 = 128 << 10;

/// Verified bytes a reader holds, starting at segment offset `start`.
enum Cached {
    /// A local chunk, verified at punch epoch `epoch` of `vol`.
    Local {
        start: u64,
        vol: Arc<Volume>,
        epoch: u64,
        bytes: RecordBytes,
    },
    /// Verified plaintext from the cloud tier or the read cache (shared with the read
    /// cache's memory when it came from there).
    Cloud { start: u64, bytes: bytes::Bytes },
    /// A local chunk of an encrypted store, authenticated and decrypted (a copy: holes
    /// punched later do not affect it).
    Decrypted { start: u64, bytes: Vec<u8> },
}

impl Cached {
    fn span(&self) -> (u64, usize) {
        match self {
            Cached::Local { start, bytes, .. } => (*start, bytes.len()),
            Cached::Cloud { start, bytes } => (*start, bytes.len()),
            Cached::Decrypted { start, bytes } => (*start, bytes.len()),
        }
    }
}

/// A segment open for reading. Keeps the verified chunk (or cloud range) it last read, so
/// sequential reads check each chunk's CRC once.
pub struct SegmentReader {
    inner: Arc<Inner>,
    id: u64,
    len: u64,
    /// Where each chunk starts in the segment (version 1: by division; 2: prefix sums).
    layout: Arc<ChunkLayout>,
    extents: Arc<[Extent]>,
    pos: u64,
    current: Option<Cached>,
    /// Read from the cloud tier (the local bytes are gone or failed).
    from_cloud: bool,
    /// A verified cloud copy exists to fall back on.
    uploaded: bool,
    /// Opens chunk payloads in an encrypted store.
    cipher: Option<Arc<crate::crypt::SegmentCipher>>,
    /// How the chunk payloads are laid out (Blocks: verified block by block).
    form: ChunkForm,
    /// Cloud blocks may come from (and go to) the read cache; off for verification, which
    /// must reach the cloud copy itself.
    cache: bool,
    /// The SHA-256 its commit record names (unknown when the record was out of reach).
    sha256: Option<[u8; 32]>,
}

impl Store {
    /// Opens segment `id` for reading.
    pub fn open_segment(&self, id: u64) -> Result<SegmentReader> {
        let r = self.reader(id)?;
        self.record_access(
            crate::audit::Action::Read,
            Some(id),
            serde_json::json!({ "bytes": r.len }),
        )?;
        Ok(r)
    }

    /// The catalog's entry of segment `id` now (None: no such segment, or deleted). Any change
    /// to where or how its bytes are kept (compaction, upload, eviction, restore) changes it.
    #[cfg(feature = "server")]
    pub(crate) fn catalog_entry(&self, id: u64) -> Option<crate::catalog::SegmentEntry> {
        self.inner.catalog.read().get(id).copied()
    }

    /// Whether this handle records reads in the audit log itself (an actor handle).
    #[cfg(feature = "server")]
    pub(crate) fn records_access(&self) -> bool {
        self.actor.is_some()
    }

    /// Opens segment `id` for reading without recording it (for the store's own checks).
    pub(crate) fn reader(&self, id: u64) -> Result<SegmentReader> {
        let (flags, bytes) = self
            .inner
            .catalog
            .read()
            .get(id)
            .map(|e| (e.flags, e.bytes))
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let rec = match self.inner.load_commit(id, false) {
            Ok(rec) => rec,
            Err(e @ Error::NotFound(_)) => return Err(e),
            Err(e) => {
                self.inner.note_read_failure(id, &e);
                if flags & FLAG_UPLOADED == 0 {
                    return Err(e);
                }
                // The metadata's disk is gone or damaged: the verified cloud copy serves
                // (its meta.json gives the length and the block CRCs).
                return Ok(SegmentReader {
                    inner: Arc::clone(&self.inner),
                    id,
                    len: bytes,
                    layout: Arc::new(ChunkLayout::Uniform { capacity: 0 }),
                    extents: Arc::from(Vec::new()),
                    pos: 0,
                    current: None,
                    from_cloud: true,
                    uploaded: true,
                    cipher: None,
                    form: ChunkForm::Plain,
                    cache: true,
                    sha256: None,
                });
            }
        };
        let form = ChunkForm::of(rec.block_crcs, self.inner.crypt.is_some());
        Ok(SegmentReader {
            inner: Arc::clone(&self.inner),
            id,
            form,
            len: rec.bytes,
            layout: Arc::new(rec.layout()),
            extents: rec.extents.into(),
            pos: 0,
            current: None,
            from_cloud: flags & FLAG_EVICTED != 0,
            uploaded: flags & FLAG_UPLOADED != 0,
            cipher: self.inner.crypt.as_ref().map(|c| Arc::new(c.segment(id))),
            cache: true,
            sha256: Some(rec.sha256),
        })
    }

    /// Reads `len` bytes at `offset` of segment `id` (fewer at the end of the segment).
    pub fn read_range(&self, id: u64, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut r = self.reader(id)?;
        if offset > r.len {
            return Err(Error::Invalid(format!(
                "offset {offset} is past the end of segment {id} ({} bytes)",
                r.len
            )));
        }
        let n = len.min(r.len - offset);
        let details = serde_json::json!({ "offset": offset, "length": n });
        self.record_access(crate::audit::Action::Read, Some(id), details)?;
        let mut out =
            vec![0u8; usize::try_from(n).map_err(|_| Error::Invalid("range too large".into()))?];
        r.pos = offset;
        r.read_into(&mut out)?;
        Ok(out)
    }
}

impl SegmentReader {
    /// A reader over chunks no commit record names yet (an upload session's, to hash them
    /// again after a restart or read an MP4 header before the commit): local copy only.
    pub(crate) fn over_extents(
        inner: Arc<Inner>,
        id: u64,
        (capacity, form): (u32, ChunkForm),
        extents: Vec<Extent>,
    ) -> SegmentReader {
        let len = extents.iter().map(|e| u64::from(e.len)).sum();
        SegmentReader {
            cipher: inner.crypt.as_ref().map(|c| Arc::new(c.segment(id))),
            inner,
            id,
            len,
            layout: Arc::new(ChunkLayout::of(capacity, &extents)),
            extents: extents.into(),
            pos: 0,
            current: None,
            from_cloud: false,
            uploaded: false,
            form,
            cache: false,
            sha256: None,
        }
    }

    /// The same reader, reading cloud blocks from the cloud only (never the read cache):
    /// for verification, which must not take a cached block for the cloud copy.
    pub(crate) fn bypass_cache(mut self) -> SegmentReader {
        self.cache = false;
        self
    }

    /// The segment being read.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Segment length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the segment has no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader of the same segment at its start, holding no verified bytes (a copy of an
    /// opened reader, without reading the commit record again).
    pub fn fresh(&self) -> SegmentReader {
        SegmentReader {
            inner: Arc::clone(&self.inner),
            id: self.id,
            len: self.len,
            layout: Arc::clone(&self.layout),
            extents: Arc::clone(&self.extents),
            pos: 0,
            current: None,
            from_cloud: self.from_cloud,
            uploaded: self.uploaded,
            cipher: self.cipher.clone(),
            form: self.form,
            cache: self.cache,
            sha256: self.sha256,
        }
    }

    /// Whether reading `len` bytes from `start` would take only bytes in memory now: the
    /// bytes this reader holds verified, or whole local chunk records of sealed volumes whose
    /// pages are all resident (`Volume::resident`). False for the cloud and for encrypted
    /// chunks (decrypting a whole chunk is work for the blocking pool either way).
    pub fn resident(&self, start: u64, len: u64) -> bool {
        if self.from_cloud || self.form == ChunkForm::Sealed {
            return false;
        }
        let end = start.saturating_add(len).min(self.len);
        let mut pos = start;
        while pos < end {
            let held = self.current.as_ref().and_then(|c| {
                let (s, n) = c.span();
                (s <= pos && pos < s + n as u64).then_some(s + n as u64)
            });
            if let Some(next) = held {
                pos = next;
                continue;
            }
            let Some(index) = self.layout.index_of(pos) else {
                return false;
            };
            let Some(ext) = self.extents.get(index) else {
                return false;
            };
            let Some(vol) = self.inner.volume(ext.volume_id) else {
                return false;
            };
            let record = crate::format::record::HEADER_LEN as usize
                + ext.len as usize
                + self.form.extra(ext.len) as usize;
            if !vol.resident(ext.offset, record) {
                return false;
            }
            pos = self.layout.start_of(index) + u64::from(ext.len);
        }
        true
    }

    /// The SHA-256 of the whole segment as its commit record names it; `None` when the record
    /// was out of reach and the cloud copy serves (`Store::info` then has it from `meta.json`).
    pub fn sha256(&self) -> Option<[u8; 32]> {
        self.sha256
    }

    /// Whether the bytes come from the cloud tier.
    pub fn is_remote(&self) -> bool {
        self.from_cloud
    }

    /// Loads and verifies the bytes holding `pos` (for a chunk with block CRCs: the blocks
    /// holding `pos..pos + want`, or the first of them).
    fn fill(&mut self, pos: u64, want: usize) -> Result<Cached> {
        if !self.from_cloud {
            let Some(index) = self.layout.index_of(pos) else {
                return Err(Error::SegmentCorrupt {
                    segment: self.id,
                    offset: pos,
                    what: "commit record has no chunk size".into(),
                });
            };
            let mut got = self.local_chunk(index, pos, want);
            if got.is_err() && self.reload_extents() {
                // Compaction moved the segment since this reader opened it.
                got = self.local_chunk(index, pos, want);
            }
            match got {
                Ok(cached) => return Ok(cached),
                Err(e) if !self.uploaded => return Err(e),
                // The local copy is damaged or gone: the verified cloud copy serves.
                Err(_) => self.from_cloud = true,
            }
        }
        let tier = self.inner.tier()?;
        // A block the read cache holds is read alone (a local read of one block); otherwise
        // a longer range saves round trips to the cloud (and fills the cache).
        // A cached block is read whole, from its start: the tier then shares the cache's
        // verified plaintext without copying it, and later reads in the same block are served
        // from it.
        let (pos, bytes) = if self.cache && tier.is_cached(self.id, pos) {
            let n = pos / crate::tier::BLOCK_SIZE;
            (n * crate::tier::BLOCK_SIZE, tier.read_block(self.id, n)?)
        } else {
            let end = self.len.min(pos.saturating_add(CLOUD_READ));
            let v = tier.read_range_with(self.id, pos..end, self.cache)?;
            (pos, bytes::Bytes::from(v))
        };
        if bytes.is_empty() {
            return Err(Error::SegmentCorrupt {
                segment: self.id,
                offset: pos,
                what: "the cloud copy is shorter than the segment".into(),
            });
        }
        Ok(Cached::Cloud { start: pos, bytes })
    }

    /// Re-reads the segment's commit record; true if its chunks moved (compaction).
    fn reload_extents(&mut self) -> bool {
        // A read-only open learns of the move from the owner's log first.
        self.inner.catch_up();
        match self.inner.load_commit(self.id, false) {
            Ok(rec) if *rec.extents != *self.extents => {
                self.extents = rec.extents.into();
                true
            }
            _ => false,
        }
    }

    /// Fills `out` from the current position; fails rather than return unverified bytes.
    fn read_into(&mut self, out: &mut [u8]) -> Result<usize> {
        let mut at = 0;
        self.read_with(out.len(), &mut |piece| {
            out[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        })
    }

    /// Reads up to `n` bytes from the current position into a new buffer (fewer only at the
    /// end of the segment), copying each verified piece once and never zero-filling.
    pub fn read_to_vec(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(usize::try_from(self.len).unwrap_or(n)));
        self.read_with(n, &mut |piece| out.extend_from_slice(piece))?;
        Ok(out)
    }

    /// Hands `put` the next `want` bytes from the current position, verified, in pieces (fewer
    /// at the end of the segment); returns how many. Fails rather than hand out unverified
    /// bytes.
    fn read_with(&mut self, want: usize, put: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let mut done = 0;
        while done < want && self.pos < self.len {
            let pos = self.pos;
            let covered = self.current.as_ref().is_some_and(|c| {
                let (start, len) = c.span();
                start <= pos && pos < start + len as u64
            });
            if !covered {
                self.current = Some(self.fill(pos, want - done)?);
            }
            let Some(cached) = &self.current else {
                break;
            };
            let left = want - done;
            let mut give = |bytes: &[u8], start: u64| {
                let piece = take(bytes, pos - start, left);
                put(piece);
                piece.len()
            };
            let copied = match cached {
                Cached::Local {
                    start,
                    vol,
                    epoch,
                    bytes,
                } => vol.unpunched(|now| (now == *epoch).then(|| give(bytes, *start))),
                Cached::Cloud { start, bytes } => Some(give(bytes, *start)),
                Cached::Decrypted { start, bytes } => Some(give(bytes, *start)),
            };
            match copied {
                // A hole was punched since the chunk was verified: verify it again.
                None => self.current = None,
                Some(0) => {
                    return Err(Error::SegmentCorrupt {
                        segment: self.id,
                        offset: pos,
                        what: "chunk shorter than expected".into(),
                    })
                }
                Some(n) => {
                    done += n;
                    self.pos += n as u64;
                }
            }
        }
        Ok(done)
    }
}

/// Up to `want` bytes of `src` from `within`.
fn take(src: &[u8], within: u64, want: usize) -> &[u8] {
    let src = usize::try_from(within)
        .ok()
        .and_then(|w| src.get(w..))
        .unwrap_or_default();
    &src[..src.len().min(want)]
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_into(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl Seek for SegmentReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the segment",
            )),
        }
    }
}
