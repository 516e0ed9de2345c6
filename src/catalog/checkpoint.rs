//! Checkpoints: a zstd-compressed snapshot of the catalog with its own CRC, written atomically
//! (temporary file, fsync, rename, fsync of the directory), so opening a store replays only the
//! log written after it.
//!
//! ```text
//! header, 64 bytes:
//!  0  8  magic      b"FTGCKPT\0"
//!  8  2  version    4 (3: postings without sub-cell masks; 2: states without their pin;
//!                   1: before the index)
//! 10  2  reserved   0
//! 12  4  body_crc   CRC32 of the compressed body
//! 16  8  body_len   compressed body length
//! 24  8  raw_len    uncompressed body length
//! 32  8  seq        checkpoint number (file checkpoint-<seq>.ckpt)
//! 40  8  created_us
//! 48 12  reserved   0
//! 60  4  header_crc CRC32 of bytes 0..60
//! body (zstd frame), uncompressed:
//!   [16] store id; u64 next_segment_id; u64 next_lsn; u32 next_volume_id
//!   u32 name count, names as str16 (interned officer/device ids, in number order)
//!   u32 volume count, each: u32 id, u16 dir, u8 sealed, u8 0, u64 replay_from
//!   u64 segment count, each 60 bytes: u64 id, i64 start_us, i64 end_us, u64 bytes,
//!       u32 meta_volume, u32 meta_block, u32 officer, u32 device, u32 flags, u64 track
//!   u64 dedup count, each: u64 key, u64 segment id
//!   u64 state count, each: u64 segment id, u64 lsn, u32 volume, segment state (see
//!       `format::change`; version 3: with its i64 pinned_until, as a version-3 change
//!       record holds it; version 2: without)
//!   u32 volume count, each: u32 volume id, u64 live chunk bytes, u32 live commit records
//!   index (see `index::Index::encode`): u64 track file length, i64 max duration,
//!       3 label maps (cases, tags, categories), spatial postings (version 4: with their
//!       sub-cell masks; version 3 and 2: without, read as every sub-cell)
//! ```
//! Invariant: a checkpoint file either decodes completely with every CRC matching or is
//! rejected; the loader then falls back to the previous checkpoint, then to a full log scan.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Catalog, DedupIndex, SegmentEntry, VolumeState};
use crate::error::{Error, IoContext, Result};
use crate::format::{check_crc, DecodeError, Reader, Writer};

pub const CHECKPOINT_MAGIC: [u8; 8] = *b"FTGCKPT\0";
pub const CHECKPOINT_VERSION: u16 = 4;
/// The version before postings carried their sub-cell masks (still read).
pub const CHECKPOINT_VERSION_3: u16 = 3;
/// The version before segment states carried their pin (still read).
pub const CHECKPOINT_VERSION_2: u16 = 2;
const HEADER_LEN: usize = 64;
/// Checkpoints kept on disk: the newest and one fallback.
const KEEP: usize = 2;

/// Serialises the catalog into an uncompressed body.
pub fn encode_body(cat: &Catalog, store_id: &[u8; 16]) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(store_id);
    w.u64(cat.next_segment_id);
    w.u64(cat.next_lsn);
    w.u32(cat.next_volume_id);
    let names = cat.names.names();
    w.u32(names.len() as u32);
    for n in names {
        w.str16(n);
    }
    w.u32(cat.volumes.len() as u32);
    for v in cat.volumes.values() {
        w.u32(v.id);
        w.u16(v.dir);
        w.u8(u8::from(v.sealed));
        w.u8(0);
        w.u64(v.replay_from);
    }
    w.u64(cat.len() as u64);
    for e in cat.live() {
        w.u64(e.id);
        w.i64(e.start_us);
        w.i64(e.end_us);
        w.u64(e.bytes);
        w.u32(e.meta_volume);
        w.u32(e.meta_block);
        w.u32(e.officer);
        w.u32(e.device);
        w.u32(e.flags);
        w.u64(e.track);
    }
    let pairs: Vec<(u64, u64)> = cat
        .dedup
        .pairs()
        .into_iter()
        .filter(|&(_, id)| cat.get(id).is_some())
        .collect();
    w.u64(pairs.len() as u64);
    for (k, id) in pairs {
        w.u64(k);
        w.u64(id);
    }
    let mut states: Vec<(&u64, &super::StateEntry)> = cat
        .states
        .iter()
        .filter(|(id, _)| cat.get(**id).is_some())
        .collect();
    states.sort_by_key(|(id, _)| **id);
    w.u64(states.len() as u64);
    for (id, s) in states {
        w.u64(*id);
        w.u64(s.lsn);
        w.u32(s.volume);
        s.state.encode(&mut w, true);
    }
    let mut live: Vec<(&u32, &(u64, u32))> = cat.volume_live.iter().collect();
    live.sort();
    w.u32(live.len() as u32);
    for (v, (bytes, commits)) in live {
        w.u32(*v);
        w.u64(*bytes);
        w.u32(*commits);
    }
    cat.index.encode(&mut w, |id| cat.get(id).is_some());
    w.buf
}

/// Decodes a whole checkpoint file of any supported version (framing, then body).
pub fn decode(data: &[u8]) -> Result<(Catalog, [u8; 16], u64), DecodeError> {
    let (version, body) = decode_file_any(data)?;
    decode_body_of(&body, version)
}

/// Rebuilds a catalog from an uncompressed body of the current version; returns it with the
/// store id it names and the length of the track file it relies on.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // called by the tests
pub fn decode_body(body: &[u8]) -> Result<(Catalog, [u8; 16], u64), DecodeError> {
    decode_body_of(body, CHECKPOINT_VERSION)
}

fn decode_body_of(body: &[u8], version: u16) -> Result<(Catalog, [u8; 16], u64), DecodeError> {
    let with_pin = version >= CHECKPOINT_VERSION_3;
    let with_masks = version >= CHECKPOINT_VERSION;
    let mut r = Reader::new(body, "checkpoint");
    let store_id = r.array::<16>()?;
    let mut cat = Catalog::new();
    cat.next_segment_id = r.u64()?;
    cat.next_lsn = r.u64()?;
    cat.next_volume_id = r.u32()?;
    let n = r.u32()? as usize;
    for _ in 0..n {
        let s = r.str16()?;
        cat.names.intern(&s);
    }
    let n = r.u32()? as usize;
    for _ in 0..n {
        let v = VolumeState {
            id: r.u32()?,
            dir: r.u16()?,
            sealed: r.u8()? != 0,
            replay_from: {
                r.u8()?;
                r.u64()?
            },
        };
        cat.volumes.insert(v.id, v);
    }
    let n = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
    if n.saturating_mul(60) > r.remaining() {
        return Err(DecodeError::Truncated("checkpoint segments"));
    }
    let mut entries = Vec::with_capacity(n);
    let mut prev = 0u64;
    for _ in 0..n {
        let e = SegmentEntry {
            id: r.u64()?,
            start_us: r.i64()?,
            end_us: r.i64()?,
            bytes: r.u64()?,
            meta_volume: r.u32()?,
            meta_block: r.u32()?,
            officer: r.u32()?,
            device: r.u32()?,
            flags: r.u32()?,
            track: r.u64()?,
        };
        if e.id <= prev || e.id >= cat.next_segment_id {
            return Err(DecodeError::invalid(
                "checkpoint",
                "segment ids out of order",
            ));
        }
        if e.flags & crate::format::change::FLAG_DELETED != 0 {
            // Checkpoints hold live segments only; a deleted one would make the catalog's
            // count disagree with its entries.
            return Err(DecodeError::invalid(
                "checkpoint",
                "a deleted segment in the segment table",
            ));
        }
        if e.officer as usize >= cat.names.names().len()
            || e.device as usize >= cat.names.names().len()
        {
            return Err(DecodeError::invalid(
                "checkpoint",
                "name number out of range",
            ));
        }
        prev = e.id;
        entries.push(e);
    }
    cat.set_entries(entries);
    let n = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
    if n.saturating_mul(16) > r.remaining() {
        return Err(DecodeError::Truncated("checkpoint dedup index"));
    }
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        pairs.push((r.u64()?, r.u64()?));
    }
    cat.dedup = DedupIndex::from_pairs(pairs);
    let n = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
    if n > r.remaining() / 20 {
        return Err(DecodeError::Truncated("checkpoint segment states"));
    }
    for _ in 0..n {
        let id = r.u64()?;
        let lsn = r.u64()?;
        let volume = r.u32()?;
        let state = crate::format::change::SegmentState::decode(&mut r, with_pin)?;
        cat.states
            .insert(id, super::StateEntry { lsn, volume, state });
    }
    let n = r.u32()?;
    for _ in 0..n {
        let v = r.u32()?;
        let bytes = r.u64()?;
        let commits = r.u32()?;
        cat.volume_live.insert(v, (bytes, commits));
    }
    let (mut index, tracks_len) = crate::index::Index::decode(&mut r, with_masks)?;
    r.finish()?;
    cat.index.labels = std::mem::take(&mut index.labels);
    cat.index.spatial = index.spatial;
    cat.index.max_duration = cat.index.max_duration.max(index.max_duration);
    Ok((cat, store_id, tracks_len))
}

/// Compresses a body and frames it with the checkpoint header.
pub fn encode_file(body: &[u8], seq: u64, created_us: i64) -> Result<Vec<u8>, std::io::Error> {
    let compressed = zstd::bulk::compress(body, 3)?;
    let mut w = Writer::new();
    w.bytes(&CHECKPOINT_MAGIC);
    w.u16(CHECKPOINT_VERSION);
    w.u16(0);
    w.u32(crc32fast::hash(&compressed));
    w.u64(compressed.len() as u64);
    w.u64(body.len() as u64);
    w.u64(seq);
    w.i64(created_us);
    w.bytes(&[0u8; 12]);
    let crc = crc32fast::hash(&w.buf);
    w.u32(crc);
    w.bytes(&compressed);
    Ok(w.buf)
}

/// Checks a checkpoint file's framing and returns its decompressed body (current version
/// only: [`decode`] reads every supported version).
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // called by the tests
pub fn decode_file(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    match decode_file_any(data)? {
        (CHECKPOINT_VERSION, body) => Ok(body),
        (version, _) => Err(DecodeError::UnsupportedVersion {
            what: "checkpoint",
            found: u32::from(version),
            supported: u32::from(CHECKPOINT_VERSION),
        }),
    }
}

fn decode_file_any(data: &[u8]) -> Result<(u16, Vec<u8>), DecodeError> {
    let head = data
        .get(..HEADER_LEN)
        .ok_or(DecodeError::Truncated("checkpoint header"))?;
    let mut r = Reader::new(head, "checkpoint header");
    if r.array::<8>()? != CHECKPOINT_MAGIC {
        return Err(DecodeError::BadMagic("footage checkpoint"));
    }
    let version = r.u16()?;
    let stored = u32::from_le_bytes(
        head.get(60..64)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]),
    );
    check_crc(
        "checkpoint header",
        stored,
        head.get(..60).unwrap_or_default(),
    )?;
    if !(CHECKPOINT_VERSION_2..=CHECKPOINT_VERSION).contains(&version) {
        return Err(DecodeError::UnsupportedVersion {
            what: "checkpoint",
            found: u32::from(version),
            supported: u32::from(CHECKPOINT_VERSION),
        });
    }
    r.u16()?;
    let body_crc = r.u32()?;
    let body_len = r.u64()?;
    let raw_len = r.u64()?;
    let body = data.get(HEADER_LEN..).unwrap_or_default();
    if body.len() as u64 != body_len {
        return Err(DecodeError::Truncated("checkpoint body"));
    }
    check_crc("checkpoint body", body_crc, body)?;
    // Decompress with a limit, so a header claiming an absurd size cannot exhaust memory.
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(body)
        .and_then(|d| d.take(raw_len.saturating_add(1)).read_to_end(&mut out))
        .map_err(|e| DecodeError::invalid("checkpoint body", e.to_string()))?;
    if out.len() as u64 != raw_len {
        return Err(DecodeError::invalid(
            "checkpoint body",
            "decompressed length differs from header",
        ));
    }
    Ok((version, out))
}

fn file_name(seq: u64) -> String {
    format!("checkpoint-{seq:012}.ckpt")
}

/// Checkpoint files in `dir`, newest first, as (seq, path).
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for ent in rd {
        let ent = ent.at(dir)?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name
            .strip_prefix("checkpoint-")
            .and_then(|s| s.strip_suffix(".ckpt"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((seq, ent.path()));
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.0));
    Ok(out)
}

/// Writes checkpoint `seq` atomically and removes all but the newest [`KEEP`].
pub fn write(dir: &Path, seq: u64, file: &[u8]) -> Result<PathBuf> {
    let dst = dir.join(file_name(seq));
    crate::log::write_atomic(&dst, file)?;
    for (_, old) in list(dir)?.into_iter().skip(KEEP) {
        let _ = crate::fsio::remove_file(&old);
    }
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flipped_byte_of_a_checkpoint_is_detected() {
        let mut cat = Catalog::new();
        cat.names.intern("MET-1");
        cat.next_segment_id = 5;
        cat.set_entries(vec![SegmentEntry {
            id: 3,
            start_us: 1,
            end_us: 2,
            bytes: 3,
            meta_volume: 1,
            meta_block: 0,
            officer: 0,
            device: 0,
            flags: 0,
            track: crate::index::tracks::NO_TRACK,
        }]);
        let body = encode_body(&cat, &[1; 16]);
        let file = encode_file(&body, 1, 0).unwrap();
        assert_eq!(decode_file(&file).unwrap(), body);
        let (back, id, _) = decode_body(&body).unwrap();
        assert_eq!(id, [1; 16]);
        assert!(back.live().eq(cat.live()));
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x01;
            assert!(decode_file(&bad).is_err(), "byte {i}");
        }
        for n in 0..body.len() {
            assert!(decode_body(&body[..n]).is_err());
        }
    }
}
