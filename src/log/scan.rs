//! Recovery scan of one volume: walks record headers from a starting offset, collects the
//! commit and change records, and finds where the valid log ends.
//!
//! Invariants:
//! - only record headers (32 bytes each) and commit/seal/change payloads are decoded, never
//!   chunk payloads. Where chunks are small (at most [`SMALL_CHUNK`]) the records are dense and
//!   the scan reads them in windows of up to [`MAX_WINDOW`] (one disk round trip per window,
//!   not two per record); after a larger chunk it reads each header and payload alone, so
//!   opening a store of video-sized chunks does not read video (see [`Reader`] for the bound);
//! - the scan advises random access on the volume's descriptor only while it runs (the kernel
//!   then reads ahead nothing of its own; the windows are the scan's): normal readahead is
//!   restored when it returns, since the same descriptor (and the map of a sealed volume, made
//!   from it) then serves reads;
//! - a record counts only if its header CRC passes, its payload lies inside the file and, for
//!   commit and seal records, its payload CRC passes and it decodes;
//! - an invalid header followed by no valid commit or seal record is a torn tail (a power cut
//!   mid-write): `end` stops before it. An invalid header followed later by valid records is
//!   damage in the middle (bit rot): it is reported and skipped, and the scan resynchronises
//!   on the next valid commit or seal record (headers only ever start at 4064 mod 4096);
//! - an invalid region that ends at a one-sync commit record (FORMAT §11) and lies at or past
//!   the volume's durable watermark (the highest `durable_to` of its commit records) is crash
//!   residue, not damage: writes that a crash kept from the disk before the fdatasync that
//!   was to cover them returned. It is reported apart (`residue`), and the volume must take no
//!   more writes (a later watermark would make it look durable);
//! - a record whose CRCs pass but whose format version is newer than this build's stops the
//!   scan and is reported in `unsupported`: it is neither damage nor a torn tail;
//! - an all-zero header is a punched hole (the records of a deleted segment): skipped, not
//!   damage.

use std::os::unix::fs::FileExt;

use super::volume::Volume;
use crate::error::Error;
use crate::format::change::ChangeRecord;
use crate::format::commit::CommitRecord;
use crate::format::record::{
    is_header_pos, next_header_pos, record_end, Kind, RecordHeader, HEADER_LEN,
};
use crate::format::volume::{Seal, VOLUME_HEADER_LEN};
use crate::format::{DecodeError, BLOCK};

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
    /// Change records found, with the offset of each header.
    pub changes: Vec<(u64, ChangeRecord)>,
    /// End of the last valid record (or of the volume header).
    pub end: u64,
    /// A seal record was found.
    pub sealed: bool,
    /// Damaged regions in the middle of the volume.
    pub damage: Vec<Damage>,
    /// Regions never made durable before a crash, ending at a one-sync commit record.
    pub residue: Vec<Damage>,
    /// Length of the file when scanned; `len > end` means a torn tail (or trailing garbage).
    pub file_len: u64,
    /// A record written by a newer format version stopped the scan: the volume must not be
    /// used or cut by this build.
    pub unsupported: Option<Error>,
}

/// A decoded metadata record.
enum Entry {
    Commit(Box<CommitRecord>),
    Change(Box<ChangeRecord>),
}

enum Probe {
    Record(RecordHeader, Option<Entry>, bool),
    /// An all-zero header: space freed by hole punching (a deleted segment's records).
    Hole,
    Invalid(String),
    /// A record with valid CRCs in a format version this build does not read.
    Newer {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    /// The header claims more bytes than the file holds.
    PastEnd,
}

/// Chunk records at most this long are "small": the records around them are dense, and
/// reading ahead through them costs less than a disk round trip per header.
const SMALL_CHUNK: u64 = 64 * 1024;
/// The first read-ahead window after a small chunk, and the largest it grows to.
const MIN_WINDOW: usize = 16 * 1024;
const MAX_WINDOW: usize = 1024 * 1024;

/// Reads a volume for the scan. Where records are dense (small chunks), one `pread` of a
/// window serves many headers and payloads; the window starts at [`MIN_WINDOW`] after a small
/// chunk and doubles at each window read while chunks stay small, up to [`MAX_WINDOW`]. A large
/// chunk turns read-ahead off again: each header and payload is then read alone, so the scan
/// of a log of video-sized chunks still reads no video. Bytes read ahead and not used are
/// at most the last window, which is at most twice what the dense run before it used, plus
/// [`MIN_WINDOW`] per change from large to small chunks.
struct Reader<'a> {
    vol: &'a Volume,
    file_len: u64,
    /// The bytes of `start..start + buf.len()`.
    buf: Vec<u8>,
    start: u64,
    /// How far the next read beyond `buf` reads ahead (0: only what is asked).
    window: usize,
    /// Bytes read from the file so far, and in how many reads.
    #[cfg(test)]
    read_bytes: u64,
    #[cfg(test)]
    reads: u64,
}

impl<'a> Reader<'a> {
    fn new(vol: &'a Volume, file_len: u64) -> Reader<'a> {
        Reader {
            vol,
            file_len,
            buf: Vec::new(),
            start: 0,
            window: 0,
            #[cfg(test)]
            read_bytes: 0,
            #[cfg(test)]
            reads: 0,
        }
    }

    /// `len` bytes at `pos`, or `None` if they cannot be read (past the end of the file).
    fn read(&mut self, pos: u64, len: usize) -> Option<&[u8]> {
        let end = pos.checked_add(len as u64)?;
        let cached = pos >= self.start && end <= self.start + self.buf.len() as u64;
        if !cached {
            self.fill(pos, len)?;
        }
        let from = usize::try_from(pos - self.start).ok()?;
        self.buf.get(from..from + len)
    }

    fn fill(&mut self, pos: u64, len: usize) -> Option<()> {
        let ahead = self
            .window
            .min(usize::try_from(self.file_len.saturating_sub(pos)).unwrap_or(usize::MAX));
        self.buf.clear();
        self.start = pos;
        if ahead > len {
            self.buf.resize(ahead, 0);
            if self.vol.file().read_exact_at(&mut self.buf, pos).is_ok() {
                #[cfg(test)]
                {
                    self.read_bytes += ahead as u64;
                    self.reads += 1;
                }
                self.window = (self.window * 2).min(MAX_WINDOW);
                return Some(());
            }
            // A read error ahead (in bytes the scan may never need): read only what is asked.
            self.buf.clear();
        }
        self.buf.resize(len, 0);
        if self.vol.file().read_exact_at(&mut self.buf, pos).is_err() {
            self.buf.clear();
            return None;
        }
        #[cfg(test)]
        {
            self.read_bytes += len as u64;
            self.reads += 1;
        }
        Some(())
    }

    /// The scan passed a record with this header: a small chunk turns read-ahead on, a large
    /// one turns it off.
    fn passed(&mut self, h: &RecordHeader) {
        if h.kind != Kind::Chunk {
            return;
        }
        if u64::from(h.len) > SMALL_CHUNK {
            self.window = 0;
        } else if self.window == 0 {
            self.window = MIN_WINDOW;
        }
    }
}

fn probe(rd: &mut Reader, pos: u64) -> Probe {
    let file_len = rd.file_len;
    let Some(hb) = rd.read(pos, HEADER_LEN as usize) else {
        return Probe::PastEnd;
    };
    if hb.iter().all(|&b| b == 0) {
        return Probe::Hole;
    }
    let h = match RecordHeader::decode(hb) {
        Ok(h) => h,
        Err(e) => return unusable(None, e),
    };
    if record_end(pos, h.len) > file_len {
        return Probe::PastEnd;
    }
    match h.kind {
        Kind::Chunk => Probe::Record(h, None, false),
        Kind::Commit | Kind::Seal | Kind::Change => {
            let Some(payload) = rd.read(pos + HEADER_LEN, h.len as usize) else {
                return Probe::PastEnd;
            };
            if let Err(e) = h.check_payload(payload) {
                return unusable(Some(&h), e);
            }
            if h.kind == Kind::Seal {
                return match Seal::decode(payload) {
                    Ok(_) => Probe::Record(h, None, true),
                    Err(e) => Probe::Invalid(e.to_string()),
                };
            }
            if h.kind == Kind::Change {
                return match ChangeRecord::decode(payload, h.a) {
                    Ok(c) => Probe::Record(h, Some(Entry::Change(Box::new(c))), false),
                    Err(e) => unusable(Some(&h), e),
                };
            }
            match CommitRecord::decode(payload, true) {
                Ok(c) if c.segment_id == h.a => {
                    Probe::Record(h, Some(Entry::Commit(Box::new(c))), false)
                }
                Ok(_) => {
                    Probe::Invalid("commit record names another segment than its header".into())
                }
                Err(e) => unusable(Some(&h), e),
            }
        }
    }
}

/// Why a record is unusable; names the segment of a commit record whose header is valid.
fn unusable(h: Option<&RecordHeader>, e: DecodeError) -> Probe {
    match (e, h) {
        (
            DecodeError::UnsupportedVersion {
                what,
                found,
                supported,
            },
            _,
        ) => Probe::Newer {
            what,
            found,
            supported,
        },
        (e, Some(h)) if h.kind == Kind::Commit => {
            Probe::Invalid(format!("commit record of segment {}: {e}", h.a))
        }
        (e, _) => Probe::Invalid(e.to_string()),
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
    let mut rd = Reader::new(vol, file_len);
    let mut pos = next_header_pos(out.end);
    while pos + HEADER_LEN <= file_len && !out.sealed {
        match probe(&mut rd, pos) {
            Probe::Record(h, entry, sealed) => {
                rd.passed(&h);
                match entry {
                    Some(Entry::Commit(c)) => out.commits.push((pos, *c)),
                    Some(Entry::Change(c)) => out.changes.push((pos, *c)),
                    None => {}
                }
                out.sealed = sealed;
                out.end = record_end(pos, h.len);
                pos = next_header_pos(out.end);
            }
            Probe::PastEnd => break,
            // A punched hole: look for the next record one block on (without moving `end`,
            // so zeros up to the end of the file still count as a torn tail).
            Probe::Hole => pos += BLOCK,
            Probe::Newer {
                what,
                found,
                supported,
            } => {
                out.unsupported = Some(Error::UnsupportedVersion {
                    what,
                    path: vol.path.clone(),
                    found,
                    supported,
                });
                break;
            }
            Probe::Invalid(what) => match resync(&mut rd, pos) {
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
    separate_residue(&mut out);
    out
}

/// Moves the invalid regions that are crash residue from `damage` to `residue`: each ends at
/// a one-sync commit record and starts at or past the highest durable watermark any commit
/// record of the volume gives (bytes below it were durable, so damage there is damage).
fn separate_residue(out: &mut ScanOutcome) {
    let mark = out
        .commits
        .iter()
        .map(|(_, c)| c.durable_to)
        .max()
        .unwrap_or(0);
    let (residue, damage): (Vec<Damage>, Vec<Damage>) =
        std::mem::take(&mut out.damage).into_iter().partition(|d| {
            d.from >= mark
                && out
                    .commits
                    .iter()
                    .any(|(pos, c)| *pos == d.to && c.one_sync)
        });
    out.damage = damage;
    out.residue = residue;
}

/// Every valid record header of a volume, in file order, up to its seal record (holes and
/// damaged regions skipped). Used by compaction to learn which segments have records in a
/// volume; reads headers and metadata payloads only.
pub fn headers(vol: &Volume) -> Vec<(u64, RecordHeader)> {
    let file_len = vol.len().unwrap_or(0);
    let mut rd = Reader::new(vol, file_len);
    let mut out = Vec::new();
    let mut pos = next_header_pos(VOLUME_HEADER_LEN as u64);
    while pos + HEADER_LEN <= file_len {
        match probe(&mut rd, pos) {
            Probe::Record(h, _, sealed) => {
                rd.passed(&h);
                out.push((pos, h));
                if sealed {
                    break;
                }
                pos = next_header_pos(record_end(pos, h.len));
            }
            Probe::PastEnd | Probe::Newer { .. } => break,
            Probe::Hole | Probe::Invalid(_) => pos += BLOCK,
        }
    }
    out
}

/// Whether a valid seal record ends exactly at `end`. A checkpoint written before this was
/// checked for could record a volume as active with its replay start just past its seal
/// record (the writer was sealed while the checkpoint listed it): open must not take such a
/// volume for active and seal it a second time.
pub fn seal_ends_at(vol: &Volume, end: u64) -> bool {
    let Some(pos) = end.checked_sub(HEADER_LEN + u64::from(Seal::LEN)) else {
        return false;
    };
    if !is_header_pos(pos) {
        return false;
    }
    let mut rd = Reader::new(vol, vol.len().unwrap_or(0));
    matches!(probe(&mut rd, pos), Probe::Record(h, _, true) if record_end(pos, h.len) == end)
}

/// The next offset after `pos` holding a valid commit or seal record, if any.
fn resync(rd: &mut Reader, pos: u64) -> Option<u64> {
    let mut q = pos + BLOCK;
    while q + HEADER_LEN <= rd.file_len {
        debug_assert!(is_header_pos(q));
        match probe(rd, q) {
            Probe::Record(h, _, _) if h.kind != Kind::Chunk => return Some(q),
            Probe::Newer { .. } => return Some(q),
            _ => {}
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

#[cfg(test)]
mod tests;
