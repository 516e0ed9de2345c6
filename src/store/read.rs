//! Reads: verified chunk access, `read_range`, and a `Read + Seek` reader over a segment.
//!
//! Invariant: every byte handed out comes from a chunk whose header names this segment and
//! chunk index and whose payload CRC matched; otherwise the read fails with
//! [`Error::SegmentCorrupt`] naming the segment and the byte offset (never wrong bytes).
//! Through an actor handle (`Store::with_actor`), opening a segment or reading a range is
//! recorded in the audit log (action `read`) before any byte is handed out.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use super::{Inner, Store};
use crate::error::{Error, Result};
use crate::format::commit::Extent;
use crate::format::record::Kind;
use crate::log::volume::RecordBytes;

/// A segment open for reading. Keeps the verified chunk it last read, so sequential reads
/// check each chunk's CRC once.
pub struct SegmentReader {
    inner: Arc<Inner>,
    id: u64,
    len: u64,
    capacity: u64,
    extents: Arc<[Extent]>,
    pos: u64,
    current: Option<(usize, RecordBytes)>,
}

impl Store {
    /// Opens segment `id` for reading.
    pub fn open_segment(&self, id: u64) -> Result<SegmentReader> {
        let r = self.reader(id)?;
        self.record_access("read", Some(id), serde_json::json!({ "bytes": r.len }))?;
        Ok(r)
    }

    /// Opens segment `id` for reading without recording it (for the store's own checks).
    pub(crate) fn reader(&self, id: u64) -> Result<SegmentReader> {
        let rec = self.inner.load_commit(id, false)?;
        Ok(SegmentReader {
            inner: Arc::clone(&self.inner),
            id,
            len: rec.bytes,
            capacity: u64::from(rec.chunk_capacity),
            extents: rec.extents.into(),
            pos: 0,
            current: None,
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
        self.record_access("read", Some(id), details)?;
        let mut out =
            vec![0u8; usize::try_from(n).map_err(|_| Error::Invalid("range too large".into()))?];
        r.pos = offset;
        r.read_into(&mut out)?;
        Ok(out)
    }
}

impl SegmentReader {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Segment length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Loads and verifies chunk `index`.
    fn chunk(&self, index: usize) -> Result<RecordBytes> {
        let at = index as u64 * self.capacity;
        let corrupt = |what: String| Error::SegmentCorrupt {
            segment: self.id,
            offset: at,
            what,
        };
        let ext = *self
            .extents
            .get(index)
            .ok_or_else(|| corrupt("chunk missing from commit record".into()))?;
        let vol = self
            .inner
            .volume(ext.volume_id)
            .ok_or_else(|| Error::Unavailable {
                segment: self.id,
                reason: format!(
                    "volume {} is missing or its disk is unavailable",
                    ext.volume_id
                ),
            })?;
        let (h, payload) = vol.read_record(ext.offset).map_err(|e| match e {
            Error::Corruption { what, .. } => corrupt(format!(
                "volume {} offset {}: {what}",
                ext.volume_id, ext.offset
            )),
            other => other,
        })?;
        if h.kind != Kind::Chunk || h.a != self.id || h.b as usize != index || h.len != ext.len {
            return Err(corrupt(format!(
                "volume {} offset {} holds another record (kind {:?}, segment {}, chunk {})",
                ext.volume_id, ext.offset, h.kind, h.a, h.b
            )));
        }
        Ok(payload)
    }

    /// Fills `out` from the current position; fails rather than return unverified bytes.
    fn read_into(&mut self, out: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < out.len() && self.pos < self.len && self.capacity > 0 {
            let index = (self.pos / self.capacity) as usize;
            if self.current.as_ref().is_none_or(|(i, _)| *i != index) {
                self.current = Some((index, self.chunk(index)?));
            }
            let Some((_, bytes)) = &self.current else {
                break;
            };
            let within = (self.pos - index as u64 * self.capacity) as usize;
            let src = bytes.get(within..).unwrap_or_default();
            let n = src.len().min(out.len() - done);
            if n == 0 {
                return Err(Error::SegmentCorrupt {
                    segment: self.id,
                    offset: self.pos,
                    what: "chunk shorter than expected".into(),
                });
            }
            out[done..done + n].copy_from_slice(&src[..n]);
            done += n;
            self.pos += n as u64;
        }
        Ok(done)
    }
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
