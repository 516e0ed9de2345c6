//! The commit record: the durable fact that a segment exists. It is self-describing (every
//! field of the segment's metadata, its SHA-256 and where its chunks are), so the catalog and
//! every index can be rebuilt from the volumes alone.
//!
//! ```text
//! payload (after the 32-byte record header; kind = 2, a = segment id):
//!   u16  commit format version (1, 2 or 3, see below)
//!   u64  segment id
//!   u64  lsn            store-wide sequence number of this commit
//!   i64  committed_us   when the store acknowledged it
//!   i64  start_us, i64 end_us
//!   u64  bytes          segment length
//!   [32] sha256         of the whole segment
//!   u32  chunk_capacity version 1: payload bytes of every chunk but the last; version 2: the
//!                       most any chunk holds (0, with no extents, for a segment recovered
//!                       from the cloud tier: its bytes are only there)
//!   version 3 only: u16 flags, u64 durable_to, and with FLAG_ACTOR a str16 actor
//!   str16 officer, str16 device          (u16 length + UTF-8)
//!   list categories, list cases, list tags  (u16 count + str16 each)
//!   u32  extent count, then per chunk in order: u32 volume id, u64 header offset, u32 length
//!   u32  fix count, then fixes: the first as zigzag varints (time_us, lat_e7, lon_e7),
//!        every later one as zigzag varint deltas from the previous fix
//! ```
//!
//! Version 2 has exactly the same fields; only the rule on chunk lengths differs. In version 1
//! every chunk but the last is full (`chunk_capacity`), so the chunk holding byte `pos` is
//! `pos / chunk_capacity`. In version 2 (written by resumable uploads, whose every
//! acknowledged request ends in a short chunk) any chunk may be shorter, 1..=capacity bytes,
//! and the chunk holding `pos` is found by a binary search over the prefix sums of the
//! extent lengths ([`ChunkLayout`]). `encode` writes version 1 whenever the chunks are uniform,
//! for segments whose chunks are plain (encrypted stores, and stores written before version 3).
//!
//! Version 3 has the fields and the chunk length rule of version 2; it says that every chunk
//! record of the segment carries a block CRC trailer (`super::chunk`, the Blocks form), so
//! a reader verifies a range by checking only the 16 KiB blocks it touches. Plaintext stores
//! write version 3 for every new segment; builds before it refuse the record as an unknown
//! version (never as damage).

use super::{DecodeError, Reader, Writer};
use crate::meta::{GpsFix, SegmentMeta};

/// Version written for uniform chunks (every chunk but the last full).
pub const COMMIT_VERSION: u16 = 1;
/// Version written when some chunk before the last is short (resumable uploads).
pub const COMMIT_VERSION_VARIABLE: u16 = 2;
/// Version 3: the layout rule of version 2, and after `chunk_capacity` a `u16` of flags
/// ([`FLAG_BLOCK_CRCS`], [`FLAG_ONE_SYNC`]) and the `u64` `durable_to`.
pub const COMMIT_VERSION_BLOCKS: u16 = 3;
/// Commit flag: every chunk of the segment carries a block CRC trailer (the Blocks form).
pub const FLAG_BLOCK_CRCS: u16 = 1;
/// Commit flag: the chunks were written just before this record and made durable by the same
/// fdatasync; recovery checks those not below the volume's durable watermark (FORMAT §11).
pub const FLAG_ONE_SYNC: u16 = 2;
/// Commit flag: a `str16` actor (who ingested the segment) follows `durable_to`. Its ingest
/// audit entry was batched: recovery writes it again from this record if a crash lost it
/// (FORMAT §11, "Ingest entries recovered from commit records").
pub const FLAG_ACTOR: u16 = 4;
/// Every flag this build reads.
const KNOWN_FLAGS: u16 = FLAG_BLOCK_CRCS | FLAG_ONE_SYNC | FLAG_ACTOR;

/// How a segment's byte offsets map onto its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkLayout {
    /// Version 1: every chunk but the last holds `capacity` bytes (a division finds a chunk).
    Uniform { capacity: u64 },
    /// Version 2: `starts[i]` is the segment offset of chunk `i` (a binary search finds one).
    Variable { starts: Vec<u64> },
}

impl ChunkLayout {
    /// The layout of these extents: uniform when every chunk but the last holds `capacity`.
    pub fn of(capacity: u32, extents: &[Extent]) -> ChunkLayout {
        if is_uniform(capacity, extents) {
            return ChunkLayout::Uniform {
                capacity: u64::from(capacity),
            };
        }
        let mut at = 0u64;
        let starts = extents
            .iter()
            .map(|e| {
                let s = at;
                at += u64::from(e.len);
                s
            })
            .collect();
        ChunkLayout::Variable { starts }
    }

    /// The chunk holding segment byte `pos` (None past the chunks, or for capacity 0).
    pub fn index_of(&self, pos: u64) -> Option<usize> {
        match self {
            ChunkLayout::Uniform { capacity } => (*capacity > 0).then(|| (pos / capacity) as usize),
            ChunkLayout::Variable { starts } => match starts.binary_search(&pos) {
                Ok(i) => Some(i),
                Err(0) => None,
                Err(i) => Some(i - 1),
            },
        }
    }

    /// The segment offset where chunk `index` starts.
    pub fn start_of(&self, index: usize) -> u64 {
        match self {
            ChunkLayout::Uniform { capacity } => index as u64 * capacity,
            ChunkLayout::Variable { starts } => starts
                .get(index)
                .copied()
                .unwrap_or_else(|| starts.last().copied().unwrap_or(0)),
        }
    }
}

/// Whether every chunk but the last holds exactly `capacity` bytes (version 1 rules).
fn is_uniform(capacity: u32, extents: &[Extent]) -> bool {
    let last = extents.len().saturating_sub(1);
    extents
        .iter()
        .enumerate()
        .all(|(i, e)| e.len <= capacity && (i == last || e.len == capacity))
}

/// Where one chunk of a segment is: the volume and the offset of its record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub volume_id: u32,
    pub offset: u64,
    pub len: u32,
}

impl Extent {
    /// `u32` count, then per chunk: `u32` volume id, `u64` header offset, `u32` length (the
    /// layout commit records and upload progress frames share).
    pub(crate) fn encode_list(w: &mut Writer, extents: &[Extent]) {
        w.u32(extents.len() as u32);
        for e in extents {
            w.u32(e.volume_id);
            w.u64(e.offset);
            w.u32(e.len);
        }
    }

    /// Reads what [`Extent::encode_list`] wrote; a count the bytes left cannot hold is
    /// `Truncated(what)` before anything is allocated.
    pub(crate) fn decode_list(
        r: &mut Reader,
        what: &'static str,
    ) -> Result<Vec<Extent>, DecodeError> {
        let n = r.u32()? as usize;
        if n.saturating_mul(16) > r.remaining() {
            return Err(DecodeError::Truncated(what));
        }
        let mut extents = Vec::with_capacity(n);
        for _ in 0..n {
            extents.push(Extent {
                volume_id: r.u32()?,
                offset: r.u64()?,
                len: r.u32()?,
            });
        }
        Ok(extents)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    pub segment_id: u64,
    pub lsn: u64,
    pub committed_us: i64,
    pub bytes: u64,
    pub sha256: [u8; 32],
    pub chunk_capacity: u32,
    pub meta: SegmentMeta,
    pub extents: Vec<Extent>,
    /// The chunks carry block CRC trailers (written as version 3).
    pub block_crcs: bool,
    /// The chunks were made durable by the same fdatasync as this record (version 3).
    pub one_sync: bool,
    /// Version 3: every byte of this record's volume below this offset was durable (an
    /// fdatasync covering it had returned) when the record was appended; 0 if unknown.
    pub durable_to: u64,
    /// Version 3 with [`FLAG_ACTOR`]: who ingested the segment (the actor of its `ingest`
    /// audit entry, which was batched). None for records written without it.
    pub actor: Option<String>,
}

impl CommitRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let v3 = self.block_crcs || self.one_sync || self.actor.is_some();
        w.u16(if v3 {
            COMMIT_VERSION_BLOCKS
        } else if is_uniform(self.chunk_capacity, &self.extents) {
            COMMIT_VERSION
        } else {
            COMMIT_VERSION_VARIABLE
        });
        w.u64(self.segment_id);
        w.u64(self.lsn);
        w.i64(self.committed_us);
        w.i64(self.meta.start_us);
        w.i64(self.meta.end_us);
        w.u64(self.bytes);
        w.bytes(&self.sha256);
        w.u32(self.chunk_capacity);
        if v3 {
            let mut flags = 0;
            if self.block_crcs {
                flags |= FLAG_BLOCK_CRCS;
            }
            if self.one_sync {
                flags |= FLAG_ONE_SYNC;
            }
            if self.actor.is_some() {
                flags |= FLAG_ACTOR;
            }
            w.u16(flags);
            w.u64(self.durable_to);
            if let Some(actor) = &self.actor {
                w.str16(actor);
            }
        }
        w.str16(&self.meta.officer);
        w.str16(&self.meta.device);
        w.str_list(&self.meta.categories);
        w.str_list(&self.meta.cases);
        w.str_list(&self.meta.tags);
        Extent::encode_list(&mut w, &self.extents);
        encode_track(&mut w, &self.meta.gps);
        w.buf
    }

    /// Decodes a commit payload. With `with_gps = false` the track is skipped (reads only need
    /// the extents), and `meta.gps` is left empty.
    pub fn decode(data: &[u8], with_gps: bool) -> Result<CommitRecord, DecodeError> {
        let mut r = Reader::new(data, "commit record");
        let version = r.u16()?;
        if !(COMMIT_VERSION..=COMMIT_VERSION_BLOCKS).contains(&version) {
            return Err(DecodeError::UnsupportedVersion {
                what: "commit record",
                found: u32::from(version),
                supported: u32::from(COMMIT_VERSION_BLOCKS),
            });
        }
        let segment_id = r.u64()?;
        let lsn = r.u64()?;
        let committed_us = r.i64()?;
        let start_us = r.i64()?;
        let end_us = r.i64()?;
        let bytes = r.u64()?;
        let sha256 = r.array::<32>()?;
        let chunk_capacity = r.u32()?;
        let (flags, durable_to) = if version == COMMIT_VERSION_BLOCKS {
            (r.u16()?, r.u64()?)
        } else {
            (0, 0)
        };
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::UnsupportedVersion {
                what: "commit record flags",
                found: u32::from(flags),
                supported: u32::from(KNOWN_FLAGS),
            });
        }
        let actor = if flags & FLAG_ACTOR != 0 {
            Some(r.str16()?)
        } else {
            None
        };
        let officer = r.str16()?;
        let device = r.str16()?;
        let categories = r.str_list()?;
        let cases = r.str_list()?;
        let tags = r.str_list()?;
        let extents = Extent::decode_list(&mut r, "commit record extents")?;
        let gps = if with_gps {
            let gps = decode_track(&mut r)?;
            r.finish()?;
            gps
        } else {
            Vec::new()
        };
        let rec = CommitRecord {
            segment_id,
            lsn,
            committed_us,
            bytes,
            sha256,
            chunk_capacity,
            meta: SegmentMeta {
                officer,
                device,
                start_us,
                end_us,
                gps,
                cases,
                tags,
                categories,
            },
            extents,
            block_crcs: flags & FLAG_BLOCK_CRCS != 0,
            one_sync: flags & FLAG_ONE_SYNC != 0,
            durable_to,
            actor,
        };
        rec.check_layout(version != COMMIT_VERSION)?;
        Ok(rec)
    }

    /// How this segment's offsets map onto its chunks.
    pub fn layout(&self) -> ChunkLayout {
        ChunkLayout::of(self.chunk_capacity, &self.extents)
    }

    /// The extents must describe exactly `bytes` bytes: in version 1 full chunks, then one
    /// shorter or equal last chunk; in version 2 (`variable`) chunks of 1..=capacity bytes.
    /// The one exception is a segment recovered from the cloud tier: no extents and chunk
    /// capacity 0 (its bytes are only in the cloud).
    fn check_layout(&self, variable: bool) -> Result<(), DecodeError> {
        let cap = u64::from(self.chunk_capacity);
        if cap == 0 && self.extents.is_empty() {
            return Ok(());
        }
        if cap == 0 && self.bytes > 0 {
            return Err(DecodeError::invalid("commit record", "chunk capacity is 0"));
        }
        let mut total: u64 = 0;
        let last = self.extents.len().saturating_sub(1);
        for (i, e) in self.extents.iter().enumerate() {
            let len = u64::from(e.len);
            if len > cap || (!variable && i < last && len != cap) || len == 0 {
                return Err(DecodeError::invalid(
                    "commit record",
                    format!("chunk {i} has length {len}, capacity {cap}"),
                ));
            }
            total += len;
        }
        if total != self.bytes {
            return Err(DecodeError::invalid(
                "commit record",
                format!("chunks hold {total} bytes, segment has {}", self.bytes),
            ));
        }
        Ok(())
    }
}

/// Writes a GPS track as a count and zigzag varint deltas.
pub fn encode_track(w: &mut Writer, gps: &[GpsFix]) {
    w.u32(gps.len() as u32);
    let mut prev = GpsFix {
        time_us: 0,
        lat_e7: 0,
        lon_e7: 0,
    };
    for f in gps {
        w.svarint(f.time_us.wrapping_sub(prev.time_us));
        w.svarint(i64::from(f.lat_e7) - i64::from(prev.lat_e7));
        w.svarint(i64::from(f.lon_e7) - i64::from(prev.lon_e7));
        prev = *f;
    }
}

/// Reads a track written by [`encode_track`].
pub fn decode_track(r: &mut Reader) -> Result<Vec<GpsFix>, DecodeError> {
    let n = r.u32()? as usize;
    // Every fix takes at least 3 bytes.
    if n.saturating_mul(3) > r.remaining() {
        return Err(DecodeError::Truncated("GPS track"));
    }
    let mut out = Vec::with_capacity(n);
    let (mut t, mut lat, mut lon) = (0i64, 0i64, 0i64);
    for _ in 0..n {
        t = t.wrapping_add(r.svarint()?);
        lat = lat.saturating_add(r.svarint()?);
        lon = lon.saturating_add(r.svarint()?);
        let (Ok(lat_e7), Ok(lon_e7)) = (i32::try_from(lat), i32::try_from(lon)) else {
            return Err(DecodeError::invalid("GPS track", "coordinate out of range"));
        };
        out.push(GpsFix {
            time_us: t,
            lat_e7,
            lon_e7,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
