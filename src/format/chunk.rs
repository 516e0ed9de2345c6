//! The three forms of a chunk record's payload (docs/FORMAT.md §6), and the block CRC trailer
//! that lets a reader verify a range by checking only the 16 KiB blocks it touches.
//!
//! ```text
//! Plain   payload = data                              header payload_crc = CRC32(data)
//! Sealed  payload = nonce ‖ ciphertext ‖ tag          header payload_crc = CRC32(payload)
//! Blocks  payload = data ‖ crc[n] ‖ u32 block_size    header payload_crc = CRC32(trailer)
//!         (record header flag FLAG_BLOCK_CRCS; crc[i] = CRC32 of data block i, every block
//!          `block_size` bytes but the last; n = ceil(len(data) / block_size))
//! ```
//!
//! Invariants: in the Blocks form every data byte is covered by exactly one block CRC, the
//! block CRCs and the block size are covered by the header's `payload_crc`, and the header by
//! its own CRC: a reader that checked the header, the trailer and the blocks it returns has
//! verified every byte it returns. A whole-payload check (scrub, verify, compaction) checks
//! every block, so it is exactly as strong as the Plain form's CRC.

use super::{check_crc, DecodeError};

/// Record header flag of a chunk whose payload ends with a block CRC trailer.
pub const FLAG_BLOCK_CRCS: u16 = 1;
/// Block size of the trailers this build writes: a 64 KiB range read checks ~80 KiB.
pub const CRC_BLOCK: u32 = 16 * 1024;
/// Smallest and largest block size a trailer may declare.
const BLOCK_RANGE: std::ops::RangeInclusive<u32> = 512..=(1 << 24);

/// How a segment's chunk payloads are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkForm {
    /// The data itself (commit record versions 1 and 2, plaintext stores).
    Plain,
    /// The data and a block CRC trailer (commit record version 3).
    Blocks,
    /// AES-256-GCM sealed data (encrypted stores, §20).
    Sealed,
}

impl ChunkForm {
    /// The form of a segment's chunks: sealed in an encrypted store, else as its commit record
    /// says.
    pub fn of(block_crcs: bool, encrypted: bool) -> ChunkForm {
        match (encrypted, block_crcs) {
            (true, _) => ChunkForm::Sealed,
            (false, true) => ChunkForm::Blocks,
            (false, false) => ChunkForm::Plain,
        }
    }

    /// Payload bytes beyond the `data_len` bytes of the segment a chunk holds.
    pub fn extra(self, data_len: u32) -> u32 {
        match self {
            ChunkForm::Plain => 0,
            ChunkForm::Sealed => crate::crypt::OVERHEAD as u32,
            ChunkForm::Blocks => trailer_len(data_len, CRC_BLOCK),
        }
    }

    /// Data bytes of a full chunk whose record is `chunk_size` bytes (header included).
    pub fn capacity(self, chunk_size: u64) -> u64 {
        let payload = super::record::chunk_payload_capacity(chunk_size);
        match self {
            ChunkForm::Blocks => {
                // The largest data length whose trailer still fits.
                let per = u64::from(CRC_BLOCK) + 4;
                let n = (payload.saturating_sub(4)).div_ceil(per);
                payload.saturating_sub(4 + 4 * n)
            }
            other => payload.saturating_sub(u64::from(other.extra(0))),
        }
    }
}

/// Length of the trailer after `data_len` bytes cut into blocks of `block`.
pub fn trailer_len(data_len: u32, block: u32) -> u32 {
    4 * data_len.div_ceil(block.max(1)) + 4
}

/// The trailer of a chunk whose data is the concatenation of `parts`: one CRC32 per
/// [`CRC_BLOCK`] bytes, then the block size.
pub fn build_trailer(parts: &[&[u8]]) -> Vec<u8> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(trailer_len(total as u32, CRC_BLOCK) as usize);
    let block = CRC_BLOCK as usize;
    let mut h = crc32fast::Hasher::new();
    let mut filled = 0usize;
    for p in parts {
        let mut p = *p;
        while !p.is_empty() {
            let take = (block - filled).min(p.len());
            let (now, rest) = p.split_at(take);
            h.update(now);
            filled += take;
            p = rest;
            if filled == block {
                out.extend_from_slice(&std::mem::take(&mut h).finalize().to_le_bytes());
                filled = 0;
            }
        }
    }
    if filled > 0 {
        out.extend_from_slice(&h.finalize().to_le_bytes());
    }
    out.extend_from_slice(&CRC_BLOCK.to_le_bytes());
    out
}

/// A trailer whose CRC matched its record header: the block CRCs can be trusted.
#[derive(Debug, Clone, Copy)]
pub struct Trailer<'a> {
    crcs: &'a [u8],
    block: u32,
    data_len: u32,
}

impl<'a> Trailer<'a> {
    /// Checks `trailer` (the payload bytes after `data_len` bytes of data) against the header's
    /// `payload_crc`, then its shape.
    pub fn parse(
        trailer: &'a [u8],
        data_len: u32,
        payload_crc: u32,
    ) -> Result<Trailer<'a>, DecodeError> {
        check_crc("chunk block CRC trailer", payload_crc, trailer)?;
        let Some((crcs, size)) = trailer.split_last_chunk::<4>() else {
            return Err(DecodeError::Truncated("chunk block CRC trailer"));
        };
        let block = u32::from_le_bytes(*size);
        if !BLOCK_RANGE.contains(&block) || trailer.len() != trailer_len(data_len, block) as usize
        {
            return Err(DecodeError::invalid(
                "chunk block CRC trailer",
                format!(
                    "{} bytes with block size {block} do not describe {data_len} data bytes",
                    trailer.len()
                ),
            ));
        }
        Ok(Trailer {
            crcs,
            block,
            data_len,
        })
    }

    /// Bytes per block (the last block may be shorter).
    pub fn block(&self) -> u32 {
        self.block
    }

    /// Number of blocks.
    pub fn blocks(&self) -> u32 {
        (self.crcs.len() / 4) as u32
    }

    /// The data span `(offset, len)` of blocks `first..end` (clamped to the data).
    pub fn span(&self, first: u32, end: u32) -> (u32, u32) {
        let from = first.saturating_mul(self.block).min(self.data_len);
        let to = end.saturating_mul(self.block).min(self.data_len);
        (from, to - from)
    }

    /// Checks `data`, the bytes of blocks `first..` (whole blocks, the last one possibly the
    /// data's short last block). On a mismatch returns the first bad block's index.
    pub fn check(&self, first: u32, data: &[u8]) -> Result<(), u32> {
        for (i, piece) in data.chunks(self.block as usize).enumerate() {
            let index = first + i as u32;
            let at = index as usize * 4;
            let stored = self
                .crcs
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes);
            let whole = piece.len() == self.block as usize
                || index as u64 * u64::from(self.block) + piece.len() as u64
                    == u64::from(self.data_len);
            if stored != Some(crc32fast::hash(piece)) || !whole {
                return Err(index);
            }
        }
        Ok(())
    }
}

/// The data length of a Blocks-form payload of `payload_len` bytes with blocks of `block`:
/// the one solution of `data + 4 * ceil(data / block) + 4 = payload_len`, if there is one.
pub fn data_len_of(payload_len: u32, block: u32) -> Option<u32> {
    let without = u64::from(payload_len.checked_sub(4)?);
    let n = without.div_ceil(u64::from(block.max(1)) + 4);
    let data_len = without.checked_sub(4 * n)?;
    (data_len.div_ceil(u64::from(block.max(1))) == n).then_some(data_len as u32)
}

/// Checks a whole Blocks-form payload (data and trailer) against the header's `payload_crc`:
/// the trailer, then every block.
pub fn check_payload(payload: &[u8], payload_crc: u32) -> Result<(), DecodeError> {
    let Some((_, size)) = payload.split_last_chunk::<4>() else {
        return Err(DecodeError::Truncated("chunk block CRC trailer"));
    };
    let block = u32::from_le_bytes(*size);
    if !BLOCK_RANGE.contains(&block) {
        return Err(DecodeError::invalid(
            "chunk block CRC trailer",
            format!("block size {block}"),
        ));
    }
    let Some(data_len) = data_len_of(payload.len() as u32, block) else {
        return Err(DecodeError::invalid(
            "chunk block CRC trailer",
            "payload length fits no block count",
        ));
    };
    let (data, trailer) = payload.split_at(data_len as usize);
    let t = Trailer::parse(trailer, data_len, payload_crc)?;
    t.check(0, data).map_err(|bad| {
        DecodeError::invalid(
            "chunk payload",
            format!("block {bad} ({} bytes) fails its CRC32", t.block),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(data: &[u8]) -> (Vec<u8>, u32) {
        let trailer = build_trailer(&[data]);
        let crc = crc32fast::hash(&trailer);
        let mut p = data.to_vec();
        p.extend_from_slice(&trailer);
        (p, crc)
    }

    #[test]
    fn capacity_fills_a_record_exactly() {
        for chunk_size in [64 << 10, 1 << 20, 4 << 20, 16 << 20] {
            let cap = ChunkForm::Blocks.capacity(chunk_size) as u32;
            let payload = super::super::record::chunk_payload_capacity(chunk_size) as u32;
            assert!(cap + ChunkForm::Blocks.extra(cap) <= payload, "{chunk_size}");
            assert!(cap + 1 + ChunkForm::Blocks.extra(cap + 1) > payload, "{chunk_size}");
        }
        assert_eq!(ChunkForm::Plain.capacity(1 << 20), (1 << 20) - 32);
        assert_eq!(ChunkForm::Blocks.capacity(1 << 20), (1 << 20) - 32 - 260);
    }

    #[test]
    fn trailers_round_trip_for_every_shape() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 300) as u8).collect();
        for len in [1, 100, 16_383, 16_384, 16_385, 32_768, 70_000] {
            let (p, crc) = payload(&data[..len]);
            check_payload(&p, crc).unwrap();
            // Split anywhere, the trailer is the same.
            let (a, b) = data[..len].split_at(len / 3);
            assert_eq!(build_trailer(&[a, b]), build_trailer(&[&data[..len]]));
        }
    }

    #[test]
    fn every_flipped_bit_is_found_by_the_whole_check_and_by_the_block_holding_it() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let (p, crc) = payload(&data);
        for byte in (0..p.len()).step_by(97).chain([0, p.len() - 1]) {
            let mut bad = p.clone();
            bad[byte] ^= 0x10;
            assert!(check_payload(&bad, crc).is_err(), "byte {byte}");
            if byte < data.len() {
                let t = Trailer::parse(&bad[data.len()..], data.len() as u32, crc).unwrap();
                let b = byte as u32 / CRC_BLOCK;
                let (off, len) = t.span(b, b + 1);
                let piece = &bad[off as usize..(off + len) as usize];
                assert_eq!(t.check(b, piece), Err(b));
            }
        }
    }

    #[test]
    fn a_trailer_for_other_data_or_a_torn_block_is_refused() {
        let data = vec![5u8; 20_000];
        let (p, crc) = payload(&data);
        let t = Trailer::parse(&p[20_000..], 20_000, crc).unwrap();
        assert_eq!(t.blocks(), 2);
        assert!(Trailer::parse(&p[20_000..], 40_000, crc).is_err());
        // A short piece in place of a whole block is not a block.
        assert_eq!(t.check(0, &data[..100]), Err(0));
        assert_eq!(t.check(1, &data[16_384..]), Ok(()));
        assert!(check_payload(&p[..10], crc).is_err());
        assert_eq!(data_len_of(p.len() as u32, CRC_BLOCK), Some(20_000));
        assert_eq!(data_len_of(3, CRC_BLOCK), None);
        assert!(check_payload(&[], crc).is_err());
    }
}
