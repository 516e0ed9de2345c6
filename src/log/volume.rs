//! One volume file: its header, and verified reads of its records.
//!
//! Invariants:
//! - a sealed volume is never written again, so it is read through a read-only memory map;
//!   the store's lock file keeps other footage processes from truncating it underneath the
//!   map (a truncation by hand would make reads fault; hole-punched ranges read as zeros and
//!   fail their CRC);
//! - every record returned by `read_record` has passed its header CRC and payload CRC;
//!   `read_bytes` returns raw bytes for callers that check them themselves.

use std::fs::{File, OpenOptions};
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::RwLock;

use crate::error::{Error, IoContext, Result};
use crate::format::record::{next_header_pos, RecordHeader, HEADER_LEN};
use crate::format::volume::{VolumeHeader, VOLUME_HEADER_LEN};

/// Payload bytes of a verified record: borrowed from the map of a sealed volume, or owned.
pub enum RecordBytes {
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
    Owned(Vec<u8>),
}

impl Deref for RecordBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            RecordBytes::Mapped { map, start, len } => {
                map.get(*start..*start + *len).unwrap_or_default()
            }
            RecordBytes::Owned(v) => v,
        }
    }
}

pub struct Volume {
    pub id: u32,
    pub dir: u16,
    pub path: PathBuf,
    pub header: VolumeHeader,
    file: File,
    map: RwLock<Option<Arc<Mmap>>>,
    /// Held shared while a reader copies bytes it verified earlier, exclusively by `punch`.
    punch_lock: RwLock<()>,
    /// Bumped by every `punch`: a reader re-verifies cached bytes when it changed.
    epoch: AtomicU64,
}

impl Volume {
    /// Creates a new, empty volume file (header only) and makes its directory entry durable.
    pub fn create(path: &Path, dir: u16, header: VolumeHeader) -> Result<Volume> {
        let file = crate::fsio::create_file(path, crate::fsio::Existing::Refuse).at(path)?;
        let init = (|| {
            crate::fsio::write_all_at(&file, &header.encode(), 0)?;
            crate::fsio::sync_all(&file, "volume.create")
        })();
        if let Err(e) = init {
            let _ = crate::fsio::remove_file(path);
            return Err(Error::io(path, e));
        }
        if let Some(parent) = path.parent() {
            // The caller never learns of a volume whose creation failed: leave no file.
            if let Err(e) = super::sync_dir(parent, "volume.create.dir") {
                let _ = crate::fsio::remove_file(path);
                return Err(e);
            }
        }
        Ok(Volume {
            id: header.volume_id,
            dir,
            path: path.to_path_buf(),
            header,
            file,
            map: RwLock::new(None),
            punch_lock: RwLock::new(()),
            epoch: AtomicU64::new(0),
        })
    }

    /// Opens an existing volume and checks its header.
    pub fn open(path: &Path, dir: u16, writable: bool) -> Result<Volume> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .at(path)?;
        let mut head = [0u8; VOLUME_HEADER_LEN];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| Error::corruption(path, 0, format!("cannot read volume header: {e}")))?;
        let header = VolumeHeader::decode(&head).map_err(|e| match e {
            crate::format::DecodeError::UnsupportedVersion {
                found, supported, ..
            } => Error::UnsupportedVersion {
                what: "volume",
                path: path.to_path_buf(),
                found,
                supported,
            },
            e => Error::corruption(path, 0, e.to_string()),
        })?;
        Ok(Volume {
            id: header.volume_id,
            dir,
            path: path.to_path_buf(),
            header,
            file,
            map: RwLock::new(None),
            punch_lock: RwLock::new(()),
            epoch: AtomicU64::new(0),
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn len(&self) -> Result<u64> {
        Ok(self.file.metadata().at(&self.path)?.len())
    }

    /// Bytes the file occupies on disk (punched holes excluded).
    pub fn allocated(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().map_or(0, |m| m.blocks() * 512)
    }

    /// Frees `len` bytes at `offset` in place (the records of an evicted or deleted segment):
    /// a hole punched with fallocate where the filesystem supports it, else zeros written.
    /// The file keeps its length. Returns the bytes freed.
    pub fn punch(&self, offset: u64, len: u64) -> Result<u64> {
        self.punch_many(&[(offset, len)], true)
    }

    /// Frees several `(offset, len)` ranges as `punch` does (the records of one segment in
    /// one volume), with one fdatasync at the end when `durable`: a deletion's punch must
    /// survive a power cut (the footage must be gone); an eviction's need not, its `Evicted`
    /// record being durable first (a punch a power cut undoes leaves dead bytes, as a crash
    /// between the record and the punch does). Returns the bytes freed.
    pub fn punch_many(&self, ranges: &[(u64, u64)], durable: bool) -> Result<u64> {
        let _w = self.punch_lock.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        // One fallocate per run of neighbouring records, not one per record: ext4 takes
        // about as long per call as for the bytes (a segment's chunks mostly pack end to end).
        for (offset, len) in coalesce(ranges) {
            self.punch_range(offset, len)?;
        }
        let total = ranges.iter().map(|&(_, len)| len).sum();
        if durable {
            crate::fsio::sync_data(&self.file, "volume.punch").at(&self.path)?;
        }
        Ok(total)
    }

    /// One range to punch, without the fdatasync; the caller holds `punch_lock`.
    fn punch_range(&self, offset: u64, len: u64) -> Result<u64> {
        // KEEP_SIZE never changes the length, so mappings of the file stay valid (punched
        // pages read as zeros).
        if let Err(err) = crate::fsio::punch_hole(&self.file, offset, len) {
            if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(Error::io(&self.path, err));
            }
            let zeros = vec![0u8; 1 << 20];
            let mut done = 0u64;
            while done < len {
                let k = (len - done).min(zeros.len() as u64) as usize;
                crate::fsio::write_all_at(
                    &self.file,
                    zeros.get(..k).unwrap_or_default(),
                    offset + done,
                )
                .at(&self.path)?;
                done += k as u64;
            }
        }
        Ok(len)
    }

    /// Rewrites, in place, the record at `pos` with `header` and `payload`: the bytes a
    /// repair fetched from the cloud for a damaged chunk, which must be exactly the record
    /// that was written there (the caller checks the header against the commit record's
    /// extent). The header goes first and the payload last, then an fdatasync, so a crash
    /// part-way leaves a record that still fails its CRC (never a valid record with other
    /// bytes). Readers holding earlier bytes re-verify (the punch epoch moves).
    pub fn rewrite_record(&self, pos: u64, header: &RecordHeader, payload: &[u8]) -> Result<()> {
        let _w = self.punch_lock.write();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        crate::fsio::write_all_at(&self.file, &header.encode(), pos).at(&self.path)?;
        crate::fail::point("repair.torn");
        crate::fsio::write_all_at(&self.file, payload, pos + HEADER_LEN).at(&self.path)?;
        crate::fsio::sync_data(&self.file, "volume.repair").at(&self.path)
    }

    /// Runs `f` while no punch can happen; returns it with the punch epoch.
    pub fn unpunched<T>(&self, f: impl FnOnce(u64) -> T) -> T {
        let _r = self.punch_lock.read();
        f(self.epoch.load(Ordering::SeqCst))
    }

    /// Switches reads to a memory map. Only for sealed volumes, whose bytes never change
    /// except by `punch`, which zeroes ranges without changing the length.
    pub fn map_sealed(&self) -> Result<()> {
        let mut slot = self.map.write();
        if slot.is_none() {
            // SAFETY: the volume is sealed: this process never appends to it again, only
            // punches holes (the length never changes, readers re-verify after a punch), and
            // the store lock keeps other footage processes out.
            let map = unsafe { Mmap::map(&self.file) }.at(&self.path)?;
            *slot = Some(Arc::new(map));
        }
        Ok(())
    }

    pub fn is_mapped(&self) -> bool {
        self.map.read().is_some()
    }

    /// Whether bytes `pos..pos + len` are mapped and every page of them is in memory now
    /// (`mincore`), so reading them will not wait for the disk (unless the kernel drops a
    /// page in between). False for a volume read by `pread` (not sealed), and on any doubt.
    pub fn resident(&self, pos: u64, len: usize) -> bool {
        let guard = self.map.read();
        let Some(map) = guard.as_ref() else {
            return false;
        };
        let Ok(start) = usize::try_from(pos) else {
            return false;
        };
        if len == 0 || start.checked_add(len).is_none_or(|end| end > map.len()) {
            return len == 0;
        }
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(0);
        if page == 0 {
            return false;
        }
        let base = map.as_ptr() as usize;
        let first = (base + start) / page * page;
        let end = base + start + len;
        let mut vec = vec![0u8; (end - first).div_ceil(page)];
        // SAFETY: `first..end` lies within the live mapping `map` (held by the guard), starts
        // on a page boundary (the mapping does), and `vec` has one byte per page of it.
        let rc =
            unsafe { libc::mincore(first as *mut libc::c_void, end - first, vec.as_mut_ptr()) };
        rc == 0 && vec.iter().all(|b| b & 1 == 1)
    }

    /// Reads `len` bytes at `pos`, from the map when there is one (unverified: the caller
    /// checks them, as a chunk's blocks are checked against its block CRC trailer).
    pub fn read_bytes(&self, pos: u64, len: usize) -> Result<RecordBytes> {
        if let Some(e) = crate::fail::eio(&self.path) {
            return Err(Error::io(&self.path, e));
        }
        if let Some(map) = self.map.read().as_ref() {
            let start = usize::try_from(pos).unwrap_or(usize::MAX);
            if start.checked_add(len).is_none_or(|end| end > map.len()) {
                return Err(Error::corruption(
                    &self.path,
                    pos,
                    "record extends past the end of the volume",
                ));
            }
            return Ok(RecordBytes::Mapped {
                map: Arc::clone(map),
                start,
                len,
            });
        }
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, pos).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corruption(&self.path, pos, "record extends past the end of the volume")
            } else {
                Error::io(&self.path, e)
            }
        })?;
        Ok(RecordBytes::Owned(buf))
    }

    /// Reads the volume header again (through the map or `pread`): fails when the disk
    /// holding the volume cannot be read any more.
    pub fn probe(&self) -> Result<()> {
        self.read_bytes(0, VOLUME_HEADER_LEN).map(|_| ())?;
        self.file.metadata().at(&self.path).map(|_| ())
    }

    /// Reads and checks the record header at `pos`.
    pub fn read_header(&self, pos: u64) -> Result<RecordHeader> {
        let b = self.read_bytes(pos, HEADER_LEN as usize)?;
        RecordHeader::decode(&b).map_err(|e| Error::corruption(&self.path, pos, e.to_string()))
    }

    /// Reads the record at `pos` and checks both CRCs; returns its header and payload.
    pub fn read_record(&self, pos: u64) -> Result<(RecordHeader, RecordBytes)> {
        let h = self.read_header(pos)?;
        let payload = self.read_bytes(pos + HEADER_LEN, h.len as usize)?;
        h.check_payload(&payload)
            .map_err(|e| Error::corruption(&self.path, pos + HEADER_LEN, e.to_string()))?;
        Ok((h, payload))
    }
}

/// `(offset, len)` record ranges merged into runs: a range joins the previous one when it
/// starts where that one ends or at the next header position after it (the bytes between
/// are padding, which no record owns: FORMAT.md §5). Sorted by offset.
fn coalesce(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut runs: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
    for (offset, len) in sorted {
        let end = offset + len;
        match runs.last_mut() {
            Some((start, run_len))
                if offset == *start + *run_len || offset == next_header_pos(*start + *run_len) =>
            {
                *run_len = end.max(*start + *run_len) - *start;
            }
            _ => runs.push((offset, len)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::coalesce;

    #[test]
    fn neighbouring_records_are_punched_in_one_run_and_others_alone() {
        // Two full 1 MiB chunk records end to end, then a short one after padding.
        let a = (4064, 1 << 20);
        let b = (4064 + (1 << 20), 1 << 20);
        let c = (4064 + (2 << 20), 300);
        let after_pad = (crate::format::record::next_header_pos(c.0 + c.1), 1 << 20);
        let far = (after_pad.0 + (8 << 20), 4096);
        let runs = coalesce(&[far, after_pad, b, c, a]);
        assert_eq!(
            runs,
            vec![(a.0, after_pad.0 + after_pad.1 - a.0), far],
            "a, b, c and the record after c's padding in one run; the far one alone"
        );
        // A gap longer than padding (another record may sit there) is never bridged.
        let d = (after_pad.0 + after_pad.1 + 4096, 100);
        assert_eq!(coalesce(&[after_pad, d]).len(), 2);
    }
}
