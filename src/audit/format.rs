//! Pure encoding and decoding of the audit files (no I/O), as specified in docs/FORMAT.md §14:
//! the 96-byte file header, the entry frame (magic, length, CRC32, body) and the 96-byte
//! `HEAD` file.
//!
//! Invariants:
//! - every structure has a magic and is covered by a CRC32, checked before any other field is
//!   trusted; an unknown version is [`DecodeError::UnsupportedVersion`];
//! - an entry's hash is the SHA-256 of its body up to (not including) the hash itself, and
//!   the body holds the previous entry's hash, so the hashes form a chain;
//! - decoders never panic and never trust a length the bytes present cannot hold.

use sha2::{Digest, Sha256};

use crate::format::{check_crc, DecodeError, Reader, Writer};

pub const FILE_MAGIC: [u8; 8] = *b"FTGAUDIT";
pub const FILE_VERSION: u16 = 1;
pub const FILE_HEADER_LEN: usize = 96;
pub const FRAME_MAGIC: [u8; 4] = *b"FTGE";
/// Magic, length, CRC.
pub const FRAME_HEADER_LEN: usize = 12;
pub const HEAD_MAGIC: [u8; 8] = *b"FTGAHEAD";
pub const HEAD_VERSION: u16 = 1;
pub const HEAD_LEN: usize = 96;
/// Largest `details` JSON accepted (bytes).
pub const MAX_DETAILS: usize = 1 << 20;
/// Largest entry body: the details plus actor, action and the fixed fields.
pub const MAX_BODY: usize = MAX_DETAILS + 4096;
/// The previous hash of the very first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The header at the start of every `audit-<seq>.log` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub seq: u32,
    pub store_id: [u8; 16],
    /// Index of the first entry in this file (= entries in all earlier files).
    pub first_index: u64,
    pub created_us: i64,
    /// Hash of entry `first_index - 1` (the last of the previous file), or [`GENESIS`].
    pub prev_hash: [u8; 32],
}

impl FileHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&FILE_MAGIC);
        w.u16(FILE_VERSION);
        w.u16(0);
        w.u32(self.seq);
        w.bytes(&self.store_id);
        w.u64(self.first_index);
        w.i64(self.created_us);
        w.bytes(&self.prev_hash);
        w.bytes(&[0; 12]);
        let mut v = w.buf;
        let crc = crc32fast::hash(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }

    pub fn decode(b: &[u8]) -> Result<FileHeader, DecodeError> {
        let b = b
            .get(..FILE_HEADER_LEN)
            .ok_or(DecodeError::Truncated("audit file header"))?;
        if b.get(..8) != Some(&FILE_MAGIC[..]) {
            return Err(DecodeError::BadMagic("footage audit file"));
        }
        let mut r = Reader::new(b, "audit file header");
        r.take(8)?;
        let version = r.u16()?;
        r.u16()?;
        let seq = r.u32()?;
        let store_id = r.array::<16>()?;
        let first_index = r.u64()?;
        let created_us = r.i64()?;
        let prev_hash = r.array::<32>()?;
        r.take(12)?;
        let stored = r.u32()?;
        check_crc("audit file header", stored, &b[..FILE_HEADER_LEN - 4])?;
        if version != FILE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "audit file",
                found: u32::from(version),
                supported: u32::from(FILE_VERSION),
            });
        }
        Ok(FileHeader {
            seq,
            store_id,
            first_index,
            created_us,
            prev_hash,
        })
    }
}

/// One entry of the chain, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    pub index: u64,
    pub time_us: i64,
    pub prev_hash: [u8; 32],
    pub actor: String,
    pub action: String,
    pub segment: Option<u64>,
    /// Compact JSON text, exactly the bytes hashed.
    pub details: String,
    /// Hash stored in the entry (a verifier recomputes it with [`RawEntry::compute_hash`]).
    pub hash: [u8; 32],
}

impl RawEntry {
    /// The body bytes the hash covers.
    fn hashed_part(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.index);
        w.i64(self.time_us);
        w.bytes(&self.prev_hash);
        w.str16(&self.actor);
        w.str16(&self.action);
        w.u8(u8::from(self.segment.is_some()));
        w.u64(self.segment.unwrap_or(0));
        w.u32(self.details.len() as u32);
        w.bytes(self.details.as_bytes());
        w.buf
    }

    /// SHA-256 of the body up to the hash: what `hash` must be.
    pub fn compute_hash(&self) -> [u8; 32] {
        Sha256::digest(self.hashed_part()).into()
    }

    /// The whole frame: magic, body length, CRC32 of (length, body), body. `hash` is written
    /// as stored; callers set it with [`RawEntry::compute_hash`] first.
    pub fn encode_frame(&self) -> Vec<u8> {
        let mut body = self.hashed_part();
        body.extend_from_slice(&self.hash);
        let len = (body.len() as u32).to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len);
        crc.update(&body);
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
        out.extend_from_slice(&FRAME_MAGIC);
        out.extend_from_slice(&len);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode_body(body: &[u8]) -> Result<RawEntry, DecodeError> {
        let mut r = Reader::new(body, "audit entry");
        let index = r.u64()?;
        let time_us = r.i64()?;
        let prev_hash = r.array::<32>()?;
        let actor = r.str16()?;
        let action = r.str16()?;
        let has_segment = r.u8()?;
        let segment = r.u64()?;
        let n = r.u32()? as usize;
        let details = std::str::from_utf8(r.take(n)?)
            .map_err(|_| DecodeError::invalid("audit entry", "details are not UTF-8"))?
            .to_string();
        let hash = r.array::<32>()?;
        r.finish()?;
        Ok(RawEntry {
            index,
            time_us,
            prev_hash,
            actor,
            action,
            segment: match has_segment {
                0 => None,
                1 => Some(segment),
                v => {
                    return Err(DecodeError::invalid(
                        "audit entry",
                        format!("segment flag {v}"),
                    ))
                }
            },
            details,
            hash,
        })
    }
}

/// What is at an offset of an audit file.
#[derive(Debug)]
pub enum Frame {
    /// A valid entry, ending at this offset.
    Entry(RawEntry, usize),
    /// Not a valid entry, and why.
    Bad(String),
}

/// Decodes the frame at `pos` of `data` (the whole file, or a prefix of it).
pub fn decode_frame(data: &[u8], pos: usize) -> Frame {
    let Some(head) = data.get(pos..pos + FRAME_HEADER_LEN) else {
        return Frame::Bad("incomplete entry header".into());
    };
    if head[..4] != FRAME_MAGIC {
        return Frame::Bad("bad entry magic".into());
    }
    let len_bytes = [head[4], head[5], head[6], head[7]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let stored = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if len > MAX_BODY {
        return Frame::Bad(format!("entry length {len} is too large"));
    }
    let start = pos + FRAME_HEADER_LEN;
    let Some(body) = data.get(start..start + len) else {
        return Frame::Bad(format!(
            "entry of {len} bytes runs past the end of the file"
        ));
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len_bytes);
    crc.update(body);
    let computed = crc.finalize();
    if computed != stored {
        return Frame::Bad(format!(
            "entry checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    match RawEntry::decode_body(body) {
        Ok(e) => Frame::Entry(e, start + len),
        Err(e) => Frame::Bad(e.to_string()),
    }
}

/// The chain head recorded in `audit/HEAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadFile {
    /// Audit file holding entry `count - 1`.
    pub seq: u32,
    pub store_id: [u8; 16],
    /// Entries in the chain when it was written.
    pub count: u64,
    /// Offset just past entry `count - 1` in file `seq`.
    pub end: u64,
    /// Hash of entry `count - 1` ([`GENESIS`] when `count` is 0).
    pub hash: [u8; 32],
    pub written_us: i64,
}

impl HeadFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&HEAD_MAGIC);
        w.u16(HEAD_VERSION);
        w.u16(0);
        w.u32(self.seq);
        w.bytes(&self.store_id);
        w.u64(self.count);
        w.u64(self.end);
        w.bytes(&self.hash);
        w.i64(self.written_us);
        w.u32(0);
        let mut v = w.buf;
        let crc = crc32fast::hash(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }

    pub fn decode(b: &[u8]) -> Result<HeadFile, DecodeError> {
        if b.len() != HEAD_LEN {
            return Err(DecodeError::Truncated("audit HEAD file"));
        }
        if b[..8] != HEAD_MAGIC {
            return Err(DecodeError::BadMagic("footage audit HEAD file"));
        }
        let mut r = Reader::new(b, "audit HEAD file");
        r.take(8)?;
        let version = r.u16()?;
        r.u16()?;
        let seq = r.u32()?;
        let store_id = r.array::<16>()?;
        let count = r.u64()?;
        let end = r.u64()?;
        let hash = r.array::<32>()?;
        let written_us = r.i64()?;
        r.u32()?;
        let stored = r.u32()?;
        check_crc("audit HEAD file", stored, &b[..HEAD_LEN - 4])?;
        if version != HEAD_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "audit HEAD file",
                found: u32::from(version),
                supported: u32::from(HEAD_VERSION),
            });
        }
        Ok(HeadFile {
            seq,
            store_id,
            count,
            end,
            hash,
            written_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, prev: [u8; 32]) -> RawEntry {
        let mut e = RawEntry {
            index,
            time_us: 1_763_647_380_000_000 + index as i64,
            prev_hash: prev,
            actor: "sgt.jones".into(),
            action: "read".into(),
            segment: Some(42),
            details: r#"{"bytes":1578}"#.into(),
            hash: [0; 32],
        };
        e.hash = e.compute_hash();
        e
    }

    #[test]
    fn headers_frames_and_head_round_trip_and_every_flipped_bit_is_caught() {
        let h = FileHeader {
            seq: 3,
            store_id: [7; 16],
            first_index: 99,
            created_us: 5,
            prev_hash: [9; 32],
        };
        let b = h.encode();
        assert_eq!(b.len(), FILE_HEADER_LEN);
        assert_eq!(FileHeader::decode(&b).unwrap(), h);
        let head = HeadFile {
            seq: 2,
            store_id: [7; 16],
            count: 10,
            end: 4000,
            hash: [3; 32],
            written_us: 8,
        };
        let hb = head.encode();
        assert_eq!(hb.len(), HEAD_LEN);
        assert_eq!(HeadFile::decode(&hb).unwrap(), head);
        let e = entry(5, [1; 32]);
        let f = e.encode_frame();
        match decode_frame(&f, 0) {
            Frame::Entry(d, end) => {
                assert_eq!(d, e);
                assert_eq!(end, f.len());
            }
            Frame::Bad(why) => panic!("{why}"),
        }
        for (bytes, what) in [(&b, "header"), (&hb, "head"), (&f, "frame")] {
            for bit in 0..bytes.len() * 8 {
                let mut c = bytes.clone();
                c[bit / 8] ^= 1 << (bit % 8);
                let caught = match what {
                    "header" => FileHeader::decode(&c).is_err(),
                    "head" => HeadFile::decode(&c).is_err(),
                    _ => matches!(decode_frame(&c, 0), Frame::Bad(_)),
                };
                assert!(caught, "{what}: flipped bit {bit} not caught");
            }
        }
    }

    #[test]
    fn the_hash_covers_every_field_and_links_to_the_previous_entry() {
        let a = entry(0, GENESIS);
        let b = entry(1, a.hash);
        assert_ne!(a.hash, b.hash);
        let mut c = b.clone();
        c.details = r#"{"bytes":1579}"#.into();
        assert_ne!(c.compute_hash(), b.hash);
        let mut d = b.clone();
        d.segment = None;
        assert_ne!(d.compute_hash(), b.hash);
        let mut e = b.clone();
        e.prev_hash = [0; 32];
        assert_ne!(e.compute_hash(), b.hash);
    }
}
