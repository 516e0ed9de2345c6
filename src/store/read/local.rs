//! Loading and verifying one chunk of the local copy, in its form (docs/FORMAT.md §6): a Blocks
//! chunk block by block (header, trailer, then only the 16 KiB blocks a read needs), a Plain chunk
//! whole (its payload CRC), a Sealed chunk whole (CRC, then its AES-256-GCM tag).
//!
//! Invariant: nothing is returned that its checks did not pass; a failed disk is noted (the volume
//! is taken out of use) and damage is [`Error::SegmentCorrupt`] at the chunk's start.

use std::sync::Arc;

use super::{Cached, SegmentReader, VERIFY_AT_ONCE};
use crate::error::{Error, Result};
use crate::format::chunk::{ChunkForm, Trailer};
use crate::format::commit::Extent;
use crate::format::record::{Kind, RecordHeader, HEADER_LEN};
use crate::log::volume::{RecordBytes, Volume};

impl SegmentReader {
    /// Chunk `index` from the local copy: verified (CRC, and the AES-256-GCM tag in an
    /// encrypted store); of a chunk with block CRCs only the blocks holding `pos..pos + want`.
    pub(super) fn local_chunk(&self, index: usize, pos: u64, want: usize) -> Result<Cached> {
        let start = self.layout.start_of(index);
        match self.form {
            ChunkForm::Sealed => {
                let bytes = self.decrypted_chunk(index)?;
                return Ok(Cached::Decrypted { start, bytes });
            }
            ChunkForm::Blocks => return self.local_blocks(index, pos.saturating_sub(start), want),
            ChunkForm::Plain => {}
        }
        let (vol, epoch, bytes) = self.chunk(index)?;
        Ok(Cached::Local {
            start,
            vol,
            epoch,
            bytes,
        })
    }

    /// Loads chunk `index` of an encrypted segment, checks its CRC and its AES-256-GCM tag
    /// and returns the plaintext. The tag is checked on bytes that no punch has touched since
    /// they were read (a punch in between makes it read the chunk again).
    fn decrypted_chunk(&self, index: usize) -> Result<Vec<u8>> {
        let Some(cipher) = &self.cipher else {
            return Err(Error::Invalid("segment is not encrypted".into()));
        };
        loop {
            let (vol, epoch, sealed) = self.chunk(index)?;
            let opened = vol.unpunched(|now| {
                (now == epoch)
                    .then(|| cipher.open(crate::crypt::DOMAIN_CHUNK, index as u64, &sealed))
            });
            match opened {
                None => continue,
                Some(Ok(plain)) => return Ok(plain),
                Some(Err(t)) => {
                    return Err(Error::SegmentCorrupt {
                        segment: self.id,
                        offset: self.layout.start_of(index),
                        what: format!("chunk {index}: {t}"),
                    })
                }
            }
        }
    }

    /// The extent of chunk `index` and its volume.
    fn extent(&self, index: usize) -> Result<(Extent, Arc<Volume>)> {
        let ext = *self
            .extents
            .get(index)
            .ok_or_else(|| Error::SegmentCorrupt {
                segment: self.id,
                offset: self.layout.start_of(index),
                what: "chunk missing from commit record".into(),
            })?;
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
        Ok((ext, vol))
    }

    /// What a failed read of chunk `index` is reported as: a failed disk is noted (the volume
    /// is taken out of use), damage becomes [`Error::SegmentCorrupt`] at the chunk's start.
    fn chunk_error(&self, vol: &Volume, ext: Extent, index: usize, e: Error) -> Error {
        match e {
            e @ Error::Io { .. } => {
                self.inner.note_volume_failure(vol, &e.to_string());
                e
            }
            Error::Corruption { what, .. } => Error::SegmentCorrupt {
                segment: self.id,
                offset: self.layout.start_of(index),
                what: format!("volume {} offset {}: {what}", ext.volume_id, ext.offset),
            },
            other => other,
        }
    }

    /// Checks that the record header `h` is chunk `index` of this segment, in this segment's
    /// form, holding the extent's bytes.
    fn check_chunk_header(&self, h: &RecordHeader, ext: Extent, index: usize) -> Result<()> {
        let extra = self.form.extra(ext.len);
        if h.kind != Kind::Chunk
            || h.a != self.id
            || h.b as usize != index
            || Some(h.len) != ext.len.checked_add(extra)
            || h.has_block_crcs() != (self.form == ChunkForm::Blocks)
        {
            return Err(Error::SegmentCorrupt {
                segment: self.id,
                offset: self.layout.start_of(index),
                what: format!(
                    "volume {} offset {} holds another record (kind {:?}, segment {}, chunk {})",
                    ext.volume_id, ext.offset, h.kind, h.a, h.b
                ),
            });
        }
        Ok(())
    }

    /// Loads chunk `index` whole and verifies its payload; returns it with its volume and
    /// punch epoch.
    fn chunk(&self, index: usize) -> Result<(Arc<Volume>, u64, RecordBytes)> {
        let (ext, vol) = self.extent(index)?;
        let (epoch, got) = vol.unpunched(|epoch| (epoch, vol.read_record(ext.offset)));
        let (h, payload) = got.map_err(|e| self.chunk_error(&vol, ext, index, e))?;
        self.check_chunk_header(&h, ext, index)?;
        Ok((vol, epoch, payload))
    }

    /// The blocks of chunk `index` (a chunk with a block CRC trailer) holding its bytes
    /// `within..within + want` (at most [`VERIFY_AT_ONCE`] of them, at least the first):
    /// the header checked, the trailer checked against it, each block against the trailer.
    fn local_blocks(&self, index: usize, within: u64, want: usize) -> Result<Cached> {
        let (ext, vol) = self.extent(index)?;
        let (epoch, got) = vol.unpunched(|epoch| {
            let got = (|| {
                let h = vol.read_header(ext.offset)?;
                self.check_chunk_header(&h, ext, index)?;
                let data_at = ext.offset + HEADER_LEN;
                let trailer_at = data_at + u64::from(ext.len);
                let raw = vol.read_bytes(trailer_at, (h.len - ext.len) as usize)?;
                let t = Trailer::parse(&raw, ext.len, h.payload_crc)
                    .map_err(|e| Error::corruption(&vol.path, trailer_at, e.to_string()))?;
                let block = u64::from(t.block());
                let want = (want as u64).clamp(1, VERIFY_AT_ONCE);
                let first = (within / block) as u32;
                let end = ((within + want).div_ceil(block) as u32)
                    .min(t.blocks())
                    .max(first + 1);
                let (off, len) = t.span(first, end);
                let bytes = vol.read_bytes(data_at + u64::from(off), len as usize)?;
                t.check(first, &bytes).map_err(|bad| {
                    Error::corruption(
                        &vol.path,
                        data_at + u64::from(bad) * block,
                        format!("block {bad} of chunk {index} fails its CRC32"),
                    )
                })?;
                Ok((u64::from(off), bytes))
            })();
            (epoch, got)
        });
        let (off, bytes) = got.map_err(|e| self.chunk_error(&vol, ext, index, e))?;
        Ok(Cached::Local {
            start: self.layout.start_of(index) + off,
            vol,
            epoch,
            bytes,
        })
    }
}
