//! The block CRC32 list of an uploaded segment, kept locally (`<root>/cloud-crc/<segment id,
//! 20 digits>.crc`, FORMAT.md §23a): the CRC32 of every stored 1 MiB block of the segment's
//! cloud copy as the upload verified it, so a `meta.json` whose list was changed in the
//! bucket (with the bytes it describes) is refused. Pure encode/decode, no I/O.
//!
//! Invariants: one header and one body covered by a CRC32 (the shared state-file header);
//! the decoder checks the magic, the CRC and then the version before trusting any other
//! field, refuses a count the remaining bytes do not hold exactly, and refuses trailing
//! bytes.

use super::DecodeError;

pub const CLOUD_CRC_MAGIC: [u8; 8] = *b"FTGCLCRC";
pub const CLOUD_CRC_VERSION: u16 = 1;
/// `flags` bit: the listed blocks are sealed (an encrypted store's cloud copy).
pub const FLAG_SEALED: u8 = 1;

/// What the upload verified of a segment's cloud copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudCrcs {
    pub segment: u64,
    /// Plaintext bytes of the segment.
    pub bytes: u64,
    /// The blocks are sealed (AES-256-GCM).
    pub sealed: bool,
    /// CRC32 of every stored block, in order.
    pub block_crc32: Vec<u32>,
}

impl CloudCrcs {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = super::state_file::begin(&CLOUD_CRC_MAGIC, CLOUD_CRC_VERSION);
        w.u64(self.segment);
        w.u64(self.bytes);
        w.u8(if self.sealed { FLAG_SEALED } else { 0 });
        w.u32(self.block_crc32.len() as u32);
        for c in &self.block_crc32 {
            w.u32(*c);
        }
        super::state_file::seal(w)
    }

    pub fn decode(data: &[u8]) -> Result<CloudCrcs, DecodeError> {
        const WHAT: &str = "cloud block CRC list";
        let mut r = super::state_file::open(
            data,
            &CLOUD_CRC_MAGIC,
            CLOUD_CRC_VERSION,
            WHAT,
            "cloud block CRC list file",
        )?;
        let segment = r.u64()?;
        let bytes = r.u64()?;
        let flags = r.u8()?;
        if flags & !FLAG_SEALED != 0 {
            return Err(DecodeError::invalid(
                WHAT,
                format!("unknown flags {flags:#x}"),
            ));
        }
        let n = r.u32()? as usize;
        if n.checked_mul(4) != Some(r.remaining()) {
            return Err(DecodeError::invalid(
                WHAT,
                format!("{n} CRCs in {} bytes", r.remaining()),
            ));
        }
        let mut block_crc32 = Vec::with_capacity(n);
        for _ in 0..n {
            block_crc32.push(r.u32()?);
        }
        r.finish()?;
        Ok(CloudCrcs {
            segment,
            bytes,
            sealed: flags & FLAG_SEALED != 0,
            block_crc32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_round_trips_and_any_flipped_bit_or_cut_is_refused() {
        let l = CloudCrcs {
            segment: 42,
            bytes: 3 << 20,
            sealed: true,
            block_crc32: vec![1, 0xdead_beef, 7],
        };
        let b = l.encode();
        assert_eq!(CloudCrcs::decode(&b), Ok(l));
        for bit in 0..b.len() * 8 {
            let mut x = b.clone();
            x[bit / 8] ^= 1 << (bit % 8);
            assert!(CloudCrcs::decode(&x).is_err(), "bit {bit}");
        }
        for cut in 0..b.len() {
            assert!(CloudCrcs::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}
