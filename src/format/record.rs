//! The 32-byte record header that precedes every record in a volume.
//!
//! ```text
//! offset size field
//!  0     4    magic        b"FTGR"
//!  4     1    version      1
//!  5     1    kind         1 chunk, 2 commit, 3 seal
//!  6     2    flags        chunk: bit 0 = block CRC trailer (`chunk::FLAG_BLOCK_CRCS`);
//!                           otherwise 0
//!  8     4    len          payload length in bytes
//! 12     4    payload_crc  CRC32 of the payload (of its block CRC trailer when bit 0 is set)
//! 16     8    a            chunk, commit: segment id; seal: volume id
//! 24     4    b            chunk: chunk index within the segment; otherwise 0
//! 28     4    header_crc   CRC32 of bytes 0..28
//! ```
//! Placement invariant: a record header always starts at an offset ≡ 4064 (mod 4096), so its
//! payload starts on a 4 KiB block boundary; the bytes between records are zero.

use super::{check_crc, DecodeError, BLOCK};

pub const RECORD_MAGIC: [u8; 4] = *b"FTGR";
pub const RECORD_VERSION: u8 = 1;
pub const HEADER_LEN: u64 = 32;
/// Largest payload a record may declare (a chunk is at most 16 MiB, a commit record with a
/// 24 h track at 4 Hz is a few MiB).
pub const MAX_PAYLOAD: u32 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Chunk = 1,
    Commit = 2,
    Seal = 3,
    Change = 4,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Chunk),
            2 => Some(Kind::Commit),
            3 => Some(Kind::Seal),
            4 => Some(Kind::Change),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: Kind,
    /// Chunk records: [`super::chunk::FLAG_BLOCK_CRCS`] or 0; other records: 0.
    pub flags: u16,
    pub len: u32,
    pub payload_crc: u32,
    pub a: u64,
    pub b: u32,
}

impl RecordHeader {
    pub fn new(kind: Kind, payload: &[u8], a: u64, b: u32) -> RecordHeader {
        RecordHeader {
            kind,
            flags: 0,
            len: payload.len() as u32,
            payload_crc: crc32fast::hash(payload),
            a,
            b,
        }
    }

    /// The header of a payload given in pieces, which are written one after the other.
    pub fn from_parts(kind: Kind, parts: &[&[u8]], a: u64, b: u32) -> RecordHeader {
        let mut crc = crc32fast::Hasher::new();
        let mut len = 0usize;
        for p in parts {
            crc.update(p);
            len += p.len();
        }
        RecordHeader {
            kind,
            flags: 0,
            len: len as u32,
            payload_crc: crc.finalize(),
            a,
            b,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[0..4].copy_from_slice(&RECORD_MAGIC);
        h[4] = RECORD_VERSION;
        h[5] = self.kind as u8;
        h[6..8].copy_from_slice(&self.flags.to_le_bytes());
        h[8..12].copy_from_slice(&self.len.to_le_bytes());
        h[12..16].copy_from_slice(&self.payload_crc.to_le_bytes());
        h[16..24].copy_from_slice(&self.a.to_le_bytes());
        h[24..28].copy_from_slice(&self.b.to_le_bytes());
        let crc = crc32fast::hash(&h[0..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(h: &[u8]) -> Result<RecordHeader, DecodeError> {
        let h: &[u8; 32] = h
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated("record header"))?;
        let field4 = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        if h[0..4] != RECORD_MAGIC {
            return Err(DecodeError::BadMagic("record header"));
        }
        check_crc("record header", field4(28), &h[0..28])?;
        if h[4] != RECORD_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "record",
                found: u32::from(h[4]),
                supported: u32::from(RECORD_VERSION),
            });
        }
        let kind = Kind::from_u8(h[5]).ok_or_else(|| {
            DecodeError::invalid("record header", format!("unknown kind {}", h[5]))
        })?;
        let len = field4(8);
        if len > MAX_PAYLOAD {
            return Err(DecodeError::invalid(
                "record header",
                format!("payload length {len} too large"),
            ));
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&h[16..24]);
        Ok(RecordHeader {
            kind,
            flags: u16::from_le_bytes([h[6], h[7]]),
            len,
            payload_crc: field4(12),
            a: u64::from_le_bytes(a),
            b: field4(24),
        })
    }

    /// The header of a chunk of `data_len` data bytes followed by `trailer`
    /// ([`super::chunk::build_trailer`]): the Blocks form, whose `payload_crc` covers the
    /// trailer.
    pub fn blocks_chunk(data_len: u32, trailer: &[u8], a: u64, b: u32) -> RecordHeader {
        RecordHeader {
            kind: Kind::Chunk,
            flags: super::chunk::FLAG_BLOCK_CRCS,
            len: data_len + trailer.len() as u32,
            payload_crc: crc32fast::hash(trailer),
            a,
            b,
        }
    }

    /// Whether this is a chunk whose payload ends with a block CRC trailer.
    pub fn has_block_crcs(&self) -> bool {
        self.kind == Kind::Chunk && self.flags & super::chunk::FLAG_BLOCK_CRCS != 0
    }

    /// Checks a whole payload against this header: its CRC, or for a chunk with a block CRC
    /// trailer the trailer and every block.
    pub fn check_payload(&self, payload: &[u8]) -> Result<(), DecodeError> {
        if payload.len() != self.len as usize {
            return Err(DecodeError::Truncated("record payload"));
        }
        if self.has_block_crcs() {
            return super::chunk::check_payload(payload, self.payload_crc);
        }
        check_crc("record payload", self.payload_crc, payload)
    }
}

/// Where the header of the first record after `end` goes: the next offset ≡ 4064 (mod 4096)
/// at or after `end`.
pub const fn next_header_pos(end: u64) -> u64 {
    super::align_up(end + HEADER_LEN) - HEADER_LEN
}

/// The offset just past a record whose header is at `pos`.
pub const fn record_end(pos: u64, len: u32) -> u64 {
    pos + HEADER_LEN + len as u64
}

/// Payload bytes in a full chunk of `chunk_size` bytes (a multiple of 4 KiB): header and
/// payload fill whole blocks, so consecutive chunk records waste no space.
pub const fn chunk_payload_capacity(chunk_size: u64) -> u64 {
    chunk_size - HEADER_LEN
}

/// True if `pos` is a legal record header position.
pub const fn is_header_pos(pos: u64) -> bool {
    pos % BLOCK == BLOCK - HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_each_flipped_bit() {
        let h = RecordHeader::new(Kind::Chunk, b"hello", 42, 7);
        let enc = h.encode();
        assert_eq!(RecordHeader::decode(&enc).unwrap(), h);
        for bit in 0..(32 * 8) {
            let mut bad = enc;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                RecordHeader::decode(&bad).is_err(),
                "bit {bit} flip undetected"
            );
        }
    }

    #[test]
    fn header_from_parts_equals_header_of_joined_payload() {
        let whole = RecordHeader::new(Kind::Chunk, b"hello world", 3, 1);
        let parts = RecordHeader::from_parts(Kind::Chunk, &[b"hel", b"", b"lo world"], 3, 1);
        assert_eq!(whole, parts);
    }

    #[test]
    fn unknown_version_is_refused_clearly() {
        let mut enc = RecordHeader::new(Kind::Commit, b"", 1, 0).encode();
        enc[4] = 9;
        let crc = crc32fast::hash(&enc[0..28]);
        enc[28..32].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            RecordHeader::decode(&enc),
            Err(DecodeError::UnsupportedVersion { found: 9, .. })
        ));
    }

    #[test]
    fn full_chunks_pack_without_padding() {
        let cap = chunk_payload_capacity(1 << 20);
        let first = BLOCK - HEADER_LEN;
        let end = record_end(first, cap as u32);
        assert_eq!(next_header_pos(end), end);
        assert!(is_header_pos(end));
        assert_eq!(
            next_header_pos(record_end(first, 10)),
            2 * BLOCK - HEADER_LEN
        );
    }
}
