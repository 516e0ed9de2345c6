//! The scrub state file (`<root>/scrub/state`, FORMAT.md §19): where the background scrub is
//! in its pass over the segments, and the corrupt segments it (or `verify`) found that are
//! not repaired yet. Pure encode/decode, no I/O.
//!
//! Invariants: the file is one header and one body covered by a CRC32; the decoder checks
//! the magic, the CRC and then the version before trusting any other field, never trusts a
//! count the remaining bytes could not hold, and refuses trailing bytes.

use super::DecodeError;

pub const SCRUB_MAGIC: [u8; 8] = *b"FTGSCRUB";
pub const SCRUB_VERSION: u16 = 1;
/// Bytes before the CRC-covered body: magic, version, reserved, CRC.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
pub const SCRUB_HEADER_LEN: usize = super::state_file::HEADER_LEN;
/// Most findings kept: past this the oldest are dropped (the audit log keeps every one).
pub const MAX_FINDINGS: usize = 65_536;
/// Longest detail text kept for one finding, in bytes.
pub const MAX_DETAIL: usize = 1024;
/// Bytes a finding takes at least (id, time, kind, cloud flag, empty detail).
const FINDING_MIN: usize = 8 + 8 + 1 + 1 + 2;

/// What is wrong with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// Its local bytes (a chunk, its commit record, or its SHA-256) fail their checks.
    Corrupt = 1,
    /// Its local bytes could be repaired from the cloud copy but the repair failed.
    RepairFailed = 2,
}

/// One corrupt segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub segment: u64,
    pub found_us: i64,
    pub kind: FindingKind,
    /// The segment had a verified cloud copy when this was found.
    pub cloud_copy: bool,
    pub detail: String,
}

/// Everything in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrubState {
    /// Number of the pass in progress, from 1.
    pub pass: u64,
    /// Highest segment id this pass has finished checking (0: none yet).
    pub cursor: u64,
    pub pass_started_us: i64,
    /// When the last complete pass ended (0: never).
    pub last_pass_done_us: i64,
    /// Segments repaired from the cloud since the store was created.
    pub repaired_total: u64,
    pub findings: Vec<Finding>,
}

impl ScrubState {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = super::state_file::begin(&SCRUB_MAGIC, SCRUB_VERSION);
        w.u64(self.pass);
        w.u64(self.cursor);
        w.i64(self.pass_started_us);
        w.i64(self.last_pass_done_us);
        w.u64(self.repaired_total);
        let kept = &self.findings[self.findings.len().saturating_sub(MAX_FINDINGS)..];
        w.u32(kept.len() as u32);
        for f in kept {
            w.u64(f.segment);
            w.i64(f.found_us);
            w.u8(f.kind as u8);
            w.u8(u8::from(f.cloud_copy));
            w.str16(truncate(&f.detail, MAX_DETAIL));
        }
        super::state_file::seal(w)
    }

    pub fn decode(data: &[u8]) -> Result<ScrubState, DecodeError> {
        let mut r = super::state_file::open(
            data,
            &SCRUB_MAGIC,
            SCRUB_VERSION,
            "scrub state",
            "scrub state file",
        )?;
        let mut s = ScrubState {
            pass: r.u64()?,
            cursor: r.u64()?,
            pass_started_us: r.i64()?,
            last_pass_done_us: r.i64()?,
            repaired_total: r.u64()?,
            findings: Vec::new(),
        };
        let n = r.u32()? as usize;
        if n > MAX_FINDINGS || n.saturating_mul(FINDING_MIN) > r.remaining() {
            return Err(DecodeError::invalid(
                "scrub state",
                format!("{n} findings cannot fit"),
            ));
        }
        for _ in 0..n {
            let segment = r.u64()?;
            let found_us = r.i64()?;
            let kind = match r.u8()? {
                1 => FindingKind::Corrupt,
                2 => FindingKind::RepairFailed,
                k => {
                    return Err(DecodeError::invalid(
                        "scrub state",
                        format!("finding kind {k}"),
                    ))
                }
            };
            let cloud_copy = r.u8()? != 0;
            let detail = r.str16()?;
            s.findings.push(Finding {
                segment,
                found_us,
                kind,
                cloud_copy,
                detail,
            });
        }
        r.finish()?;
        Ok(s)
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ScrubState {
        ScrubState {
            pass: 3,
            cursor: 42,
            pass_started_us: 1_700_000_000_000_000,
            last_pass_done_us: 1_690_000_000_000_000,
            repaired_total: 2,
            findings: vec![Finding {
                segment: 7,
                found_us: 5,
                kind: FindingKind::Corrupt,
                cloud_copy: true,
                detail: "chunk 0 fails its CRC".into(),
            }],
        }
    }

    #[test]
    fn state_round_trips() {
        let s = sample();
        assert_eq!(ScrubState::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let bytes = sample().encode();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(ScrubState::decode(&b).is_err(), "bit {i}");
        }
        for n in 0..bytes.len() {
            assert!(ScrubState::decode(&bytes[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn a_newer_version_is_reported_as_such() {
        let mut b = sample().encode();
        b[8] = 2;
        let crc = super::super::state_file::crc_of(&b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            ScrubState::decode(&b),
            Err(DecodeError::UnsupportedVersion { found: 2, .. })
        ));
    }
}
