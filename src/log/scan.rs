//! Recovery scan of one volume: walks record headers from a starting offset, collects the
//! commit records, and finds where the valid log ends.
//!
//! Invariants:
//! - only record headers (32 bytes each) and commit/seal payloads are read, never chunk
//!   payloads: opening a store does not read video;
//! - the scan advises random access on the volume's descriptor only while it runs: normal
//!   readahead is restored when it returns, since the same descriptor (and the map of a sealed
//!   volume, made from it) then serves reads;
//! - a record counts only if its header CRC passes, its payload lies inside the file and, for
//!   commit and seal records, its payload CRC passes and it decodes;
//! - an invalid header followed by no valid commit or seal record is a torn tail (a power cut
//!   mid-write): `end` stops before it. An invalid header followed later by valid records is
//!   damage in the middle (bit rot): it is reported and skipped, and the scan resynchronises
//!   on the next valid commit or seal record (headers only ever start at 4064 mod 4096).

use std::os::unix::fs::FileExt;

use super::volume::Volume;
use crate::format::commit::CommitRecord;
use crate::format::record::{
    is_header_pos, next_header_pos, record_end, Kind, RecordHeader, HEADER_LEN,
};
use crate::format::volume::{Seal, VOLUME_HEADER_LEN};
use crate::format::BLOCK;

/// A region the scan could not read as records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub from: u64,
    pub to: u64,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// Commit records found, with the offset of each header.
    pub commits: Vec<(u64, CommitRecord)>,
    /// End of the last valid record (or of the volume header).
    pub end: u64,
    /// A seal record was found.
    pub sealed: bool,
    /// Damaged regions in the middle of the volume.
    pub damage: Vec<Damage>,
    /// Length of the file when scanned; `len > end` means a torn tail (or trailing garbage).
    pub file_len: u64,
}

enum Probe {
    Record(RecordHeader, Option<Box<CommitRecord>>, bool),
    Invalid(String),
    /// The header claims more bytes than the file holds.
    PastEnd,
}

fn read_at(vol: &Volume, pos: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    vol.file().read_exact_at(&mut buf, pos).ok()?;
    Some(buf)
}

fn probe(vol: &Volume, pos: u64, file_len: u64) -> Probe {
    let Some(hb) = read_at(vol, pos, HEADER_LEN as usize) else {
        return Probe::PastEnd;
    };
    let h = match RecordHeader::decode(&hb) {
        Ok(h) => h,
        Err(e) => return Probe::Invalid(e.to_string()),
    };
    if record_end(pos, h.len) > file_len {
        return Probe::PastEnd;
    }
    match h.kind {
        Kind::Chunk => Probe::Record(h, None, false),
        Kind::Commit | Kind::Seal => {
            let Some(payload) = read_at(vol, pos + HEADER_LEN, h.len as usize) else {
                return Probe::PastEnd;
            };
            if let Err(e) = h.check_payload(&payload) {
                return Probe::Invalid(e.to_string());
            }
            if h.kind == Kind::Seal {
                return match Seal::decode(&payload) {
                    Ok(_) => Probe::Record(h, None, true),
                    Err(e) => Probe::Invalid(e.to_string()),
                };
            }
            match CommitRecord::decode(&payload, false) {
                Ok(c) if c.segment_id == h.a => Probe::Record(h, Some(Box::new(c)), false),
                Ok(_) => {
                    Probe::Invalid("commit record names another segment than its header".into())
                }
                Err(e) => Probe::Invalid(e.to_string()),
            }
        }
    }
}

/// Scans `vol` from `from` (the end of a record already accounted for, or 0 for the start).
pub fn scan(vol: &Volume, from: u64) -> ScanOutcome {
    let file_len = vol.len().unwrap_or(0);
    // Random access while scanning; the descriptor is shared with reads (and the map of a
    // sealed volume), so normal readahead is restored when the scan ends, however it ends.
    let _advice = RandomAccess::advise(vol);
    let mut out = ScanOutcome {
        end: from.max(VOLUME_HEADER_LEN as u64),
        file_len,
        ..ScanOutcome::default()
    };
    let mut pos = next_header_pos(out.end);
    while pos + HEADER_LEN <= file_len && !out.sealed {
        match probe(vol, pos, file_len) {
            Probe::Record(h, commit, sealed) => {
                if let Some(c) = commit {
                    out.commits.push((pos, *c));
                }
                out.sealed = sealed;
                out.end = record_end(pos, h.len);
                pos = next_header_pos(out.end);
            }
            Probe::PastEnd => break,
            Probe::Invalid(what) => match resync(vol, pos, file_len) {
                Some(next) => {
                    out.damage.push(Damage {
                        from: pos,
                        to: next,
                        what,
                    });
                    pos = next;
                }
                None => break,
            },
        }
    }
    out
}

/// The next offset after `pos` holding a valid commit or seal record, if any.
fn resync(vol: &Volume, pos: u64, file_len: u64) -> Option<u64> {
    let mut q = pos + BLOCK;
    while q + HEADER_LEN <= file_len {
        debug_assert!(is_header_pos(q));
        if let Probe::Record(h, _, _) = probe(vol, q, file_len) {
            if h.kind != Kind::Chunk {
                return Some(q);
            }
        }
        q += BLOCK;
    }
    None
}

/// Tells the kernel not to read ahead on a volume's descriptor while it lives (the scan
/// touches one header per chunk), and restores normal readahead when dropped.
struct RandomAccess<'a> {
    vol: &'a Volume,
}

impl<'a> RandomAccess<'a> {
    fn advise(vol: &'a Volume) -> RandomAccess<'a> {
        fadvise(vol, libc::POSIX_FADV_RANDOM);
        RandomAccess { vol }
    }
}

impl Drop for RandomAccess<'_> {
    fn drop(&mut self) {
        fadvise(self.vol, libc::POSIX_FADV_NORMAL);
    }
}

fn fadvise(vol: &Volume, advice: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain advisory call on an open descriptor; failure is harmless.
    unsafe {
        libc::posix_fadvise(vol.file().as_raw_fd(), 0, 0, advice);
    }
}
