//! One cache file: a 64-byte header and the stored bytes of one 1 MiB block of a segment's
//! cloud copy (docs/FORMAT.md, "Read cache files").
//!
//! ```text
//! offset size field
//!  0      4   magic "FTCB"
//!  4      2   version (1)
//!  6      2   flags: bit 0 = the payload is a sealed (AES-256-GCM) block
//!  8     16   store id
//! 24      8   segment id
//! 32      8   block index
//! 40      4   payload length
//! 44      4   CRC32 of the payload (the block's CRC32 in the segment's meta.json)
//! 48     12   zero
//! 60      4   CRC32 of bytes 0..60
//! 64      .   payload: the block exactly as the cloud stores it
//! ```
//!
//! Invariants: a file is accepted only if every header field matches what the reader
//! expects (store, segment, block, length, the `meta.json` CRC) and both CRCs hold; anything
//! else is a miss (and the caller drops the file). Names are `<segment, 20 digits>-<block, 10
//! digits>.blk`; fills are written under a `fill-*.tmp` name and renamed.

use std::path::Path;

/// Header bytes before the payload.
pub const HEADER_LEN: usize = 64;
pub const MAGIC: &[u8; 4] = b"FTCB";
pub const VERSION: u16 = 1;
/// `flags` bit: the payload is a sealed block (an encrypted store's cloud copy).
pub const FLAG_SEALED: u16 = 1;
/// Suffix of a cache file.
pub const SUFFIX: &str = ".blk";
/// Suffix of a fill in progress (removed at open).
pub const TEMP_SUFFIX: &str = ".tmp";

/// What a cache file must say about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub store_id: [u8; 16],
    pub segment: u64,
    pub block: u64,
    pub sealed: bool,
}

/// The file name of a block.
pub fn name(segment: u64, block: u64) -> String {
    format!("{segment:020}-{block:010}{SUFFIX}")
}

/// The (segment, block) a file name names, if it is a cache file's name.
pub fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (seg, block) = stem.split_once('-')?;
    if seg.len() != 20 || block.len() != 10 {
        return None;
    }
    if !seg.bytes().chain(block.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((seg.parse().ok()?, block.parse().ok()?))
}

/// Whether `path` is a fill a crash left behind.
pub fn is_temp(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("fill-") && n.ends_with(TEMP_SUFFIX))
}

/// The header of a file holding `payload` for `id`.
pub fn header(id: &Identity, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    let flags = if id.sealed { FLAG_SEALED } else { 0 };
    h[6..8].copy_from_slice(&flags.to_le_bytes());
    h[8..24].copy_from_slice(&id.store_id);
    h[24..32].copy_from_slice(&id.segment.to_le_bytes());
    h[32..40].copy_from_slice(&id.block.to_le_bytes());
    h[40..44].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[44..48].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let crc = crc32fast::hash(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file's header `h` and the `payload` that followed it against what the reader
/// expects: `len` payload bytes whose CRC32 is `crc` (from `meta.json`). Says why a file is
/// refused.
pub fn check(
    h: &[u8; HEADER_LEN],
    payload: &[u8],
    id: &Identity,
    len: usize,
    crc: u32,
) -> Result<(), String> {
    let u32_at = |o: usize| {
        h.get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let u64_at = |o: usize| {
        h.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    if crc32fast::hash(&h[..60]) != u32_at(60) {
        return Err("header fails its CRC32".into());
    }
    if &h[0..4] != MAGIC {
        return Err("not a cache file (magic)".into());
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != VERSION {
        return Err(format!("version {version}, this build reads {VERSION}"));
    }
    let want = header(id, &[]);
    if h[6..8] != want[6..8] || h[8..24] != want[8..24] {
        return Err("written for another store or encryption".into());
    }
    if u64_at(24) != id.segment || u64_at(32) != id.block {
        return Err(format!(
            "holds segment {} block {}, not segment {} block {}",
            u64_at(24),
            u64_at(32),
            id.segment,
            id.block
        ));
    }
    if u32_at(40) as usize != len || payload.len() != len {
        return Err(format!(
            "payload of {} bytes (header says {}), expected {len}",
            payload.len(),
            u32_at(40)
        ));
    }
    if u32_at(44) != crc || crc32fast::hash(payload) != crc {
        return Err("payload fails its CRC32".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            store_id: [7; 16],
            segment: 42,
            block: 3,
            sealed: false,
        }
    }

    #[test]
    fn a_file_round_trips_and_any_flipped_bit_is_refused() {
        let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let crc = crc32fast::hash(&payload);
        let h = header(&id(), &payload);
        let n = payload.len();
        assert_eq!(check(&h, &payload, &id(), n, crc), Ok(()));
        for bit in (0..(HEADER_LEN + n) * 8).step_by(97) {
            let (mut bh, mut bp) = (h, payload.clone());
            let byte = bit / 8;
            if byte < HEADER_LEN {
                bh[byte] ^= 1 << (bit % 8);
            } else {
                bp[byte - HEADER_LEN] ^= 1 << (bit % 8);
            }
            assert!(check(&bh, &bp, &id(), n, crc).is_err(), "bit {bit}");
        }
        let other = Identity { block: 4, ..id() };
        assert!(check(&h, &payload, &other, n, crc).is_err());
        let sealed = Identity {
            sealed: true,
            ..id()
        };
        assert!(check(&h, &payload, &sealed, n, crc).is_err());
        assert!(check(&h, &payload, &id(), n, crc ^ 1).is_err());
        assert!(check(&h, &payload[..10], &id(), n, crc).is_err());
    }

    #[test]
    fn names_parse_back_and_others_are_not_cache_files() {
        assert_eq!(parse_name(&name(42, 3)), Some((42, 3)));
        assert_eq!(parse_name("00000000000000000042-0000000003.tmp"), None);
        assert_eq!(parse_name("0042-3.blk"), None);
        assert_eq!(parse_name("+0000000000000000042-0000000003.blk"), None);
        assert!(is_temp(Path::new("/x/fill-1-2.tmp")));
        assert!(!is_temp(Path::new(
            "/x/00000000000000000042-0000000003.blk"
        )));
    }
}
