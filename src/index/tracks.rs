//! The track file: every segment's GPS track in one append-only file that is memory-mapped
//! for the exact checks of near/bbox queries and for `Store::track`. The records' encoding is
//! in `super::track_record` (FORMAT §9a).
//!
//! ```text
//! <store>/catalog/tracks.ftt
//! header, 64 bytes: magic b"FTGTRACK", u16 version (2; 1 before issue 15), u16 0,
//!                   [16] store id, [32] 0, u32 CRC32 of bytes 0..60
//! then records back to back (version 1 or 2, each marked in its own length field)
//! ```
//!
//! Invariants:
//! - the file is derived data: the checkpoint records how long its valid prefix is, opening
//!   cuts it back to that length, and replay re-appends the tracks of later commits;
//! - a file with a version-1 header may hold only version-1 records: the owner's open
//!   rewrites the header to version 2 before any version-2 record is appended, so a build
//!   that knows only version 1 rebuilds the file instead of misreading it;
//! - bytes past the mapped prefix live in memory (`tail`) until a checkpoint appends and
//!   fsyncs them *before* the checkpoint that names the new length is written;
//! - a record is used only after its CRCs and segment id check out.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};
use crate::meta::GpsFix;

pub use super::track_record::{encode, TrackRef};

pub const TRACKS_FILE: &str = "tracks.ftt";
const MAGIC: [u8; 8] = *b"FTGTRACK";
/// The header version written; version 1 headers are read too (and rewritten by the owner).
const VERSION: u16 = 2;
pub const HEADER_LEN: u64 = 64;
/// Offset meaning "this segment has no GPS fixes".
pub const NO_TRACK: u64 = u64::MAX;

/// The track file plus the records not yet appended to it.
pub struct TrackStore {
    path: PathBuf,
    file: Option<File>,
    map: Option<Mmap>,
    /// Length of the durable, mapped prefix of the file.
    mapped_len: u64,
    /// Records logically at offsets `mapped_len..`, not yet in the file.
    tail: Vec<u8>,
}

impl TrackStore {
    /// A store with no file behind it (tests, in-memory indexes).
    pub fn in_memory() -> TrackStore {
        TrackStore {
            path: PathBuf::new(),
            file: None,
            map: None,
            mapped_len: HEADER_LEN,
            tail: Vec::new(),
        }
    }

    /// Opens (or creates) the track file, keeping only its first `valid_len` bytes. Returns
    /// `Ok(None)` if the file is missing or shorter than `valid_len` or has a bad header:
    /// the caller then rebuilds every track from the log.
    pub fn open(dir: &Path, store_id: &[u8; 16], valid_len: u64) -> Result<Option<TrackStore>> {
        let path = dir.join(TRACKS_FILE);
        crate::fsio::create_dir_all(dir).at(dir)?;
        let file = crate::fsio::create_file(&path, crate::fsio::Existing::Keep).at(&path)?;
        let len = file.metadata().at(&path)?.len();
        let header = header(store_id, VERSION);
        if valid_len <= HEADER_LEN {
            // A fresh file (or a store that never had a checkpoint with tracks).
            crate::fsio::set_len(&file, 0).at(&path)?;
            crate::fsio::write_all_at(&file, &header, 0).at(&path)?;
            crate::fsio::sync_all(&file, "tracks.create").at(&path)?;
        } else {
            let mut got = [0u8; HEADER_LEN as usize];
            let version = match file.read_exact_at(&mut got, 0) {
                Ok(()) => version_of(&got, store_id),
                Err(_) => None,
            };
            let Some(version) = version.filter(|_| len >= valid_len) else {
                return Ok(None);
            };
            if version < VERSION {
                // Version-2 records are about to follow version-1 ones: say so in the header
                // first, durably (see the module's invariants).
                crate::fsio::write_all_at(&file, &header, 0).at(&path)?;
                crate::fsio::sync_all(&file, "tracks.upgrade").at(&path)?;
                tracing::info!(path = %path.display(), "track file header upgraded to version 2");
            }
            if len > valid_len {
                crate::fsio::set_len(&file, valid_len).at(&path)?;
                crate::fsio::sync_all(&file, "tracks.cut").at(&path)?;
            }
        }
        let valid_len = valid_len.max(HEADER_LEN);
        // SAFETY: the mapped prefix is never written again: the file only grows by appends
        // past it, and opening truncates only bytes beyond what any checkpoint maps.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(valid_len as usize)
                .map(&file)
        }
        .at(&path)?;
        Ok(Some(TrackStore {
            path,
            file: Some(file),
            map: Some(map),
            mapped_len: valid_len,
            tail: Vec::new(),
        }))
    }

    /// Opens the track file of a store another process owns, for reading only: maps its
    /// first `valid_len` bytes (the prefix a checkpoint names, which the owner never rewrites)
    /// and writes nothing. Returns `Ok(None)` if the file is missing, shorter than
    /// `valid_len` or has a bad header. Its [`TrackStore::writer`] writes nothing.
    pub fn open_read_only(
        dir: &Path,
        store_id: &[u8; 16],
        valid_len: u64,
    ) -> Result<Option<TrackStore>> {
        let path = dir.join(TRACKS_FILE);
        if valid_len <= HEADER_LEN {
            // Nothing durable to map: every track is in the tail.
            return Ok(Some(TrackStore {
                path,
                ..TrackStore::in_memory()
            }));
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let len = file.metadata().at(&path)?.len();
        let mut got = [0u8; HEADER_LEN as usize];
        if len < valid_len
            || file.read_exact_at(&mut got, 0).is_err()
            || version_of(&got, store_id).is_none()
        {
            return Ok(None);
        }
        // SAFETY: the owner never rewrites or truncates the prefix a checkpoint names while
        // it runs (it only appends past it); see `open`.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(valid_len as usize)
                .map(&file)
        }
        .at(&path)?;
        Ok(Some(TrackStore {
            path,
            file: None,
            map: Some(map),
            mapped_len: valid_len,
            tail: Vec::new(),
        }))
    }

    /// Total logical length (file prefix plus tail): the length the next checkpoint names.
    pub fn len(&self) -> u64 {
        self.mapped_len + self.tail.len() as u64
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER_LEN
    }

    /// Appends a segment's track; returns its offset.
    pub fn append(&mut self, id: u64, fixes: &[GpsFix]) -> u64 {
        let off = self.len();
        self.tail.extend_from_slice(&encode(id, fixes));
        off
    }

    /// The track record at `offset`, checked to belong to segment `id`.
    pub fn get(&self, offset: u64, id: u64) -> Result<TrackRef<'_>> {
        let data: &[u8] = if offset >= self.mapped_len {
            self.tail
                .get((offset - self.mapped_len) as usize..)
                .unwrap_or_default()
        } else {
            self.map
                .as_deref()
                .and_then(|m| m.get(offset as usize..))
                .unwrap_or_default()
        };
        let t = TrackRef::parse(data).map_err(|e| self.damaged(offset, id, e.to_string()))?;
        if t.id != id {
            return Err(self.damaged(offset, id, format!("holds segment {}", t.id)));
        }
        Ok(t)
    }

    /// A hint that the record at `offset` will be read soon: its first cache lines are
    /// fetched without waiting (x86-64; nothing elsewhere). Any offset is accepted.
    #[inline]
    pub fn prefetch(&self, offset: u64) {
        #[cfg(target_arch = "x86_64")]
        if let Some(line) = self
            .map
            .as_deref()
            .and_then(|m| m.get(usize::try_from(offset).ok()?..))
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            for at in [0usize, 64] {
                if let Some(b) = line.get(at) {
                    // SAFETY: a prefetch reads nothing and cannot fault; the pointer is into
                    // the live map, and SSE is part of every x86-64 target.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(b).cast()) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = offset;
    }

    fn damaged(&self, offset: u64, id: u64, what: String) -> Error {
        Error::corruption(
            &self.path,
            offset,
            format!(
                "track record of segment {id}: {what}; the track file is derived data: \
                 delete it and reopen the store to rebuild it from the log"
            ),
        )
    }

    /// The bytes a checkpoint must make durable: (file offset, bytes).
    pub fn pending(&self) -> (u64, Vec<u8>) {
        (self.mapped_len, self.tail.clone())
    }

    /// A handle that appends pending bytes to the file without holding the catalog lock.
    pub fn writer(&self) -> Result<TrackWriter> {
        let file = match &self.file {
            Some(f) => Some(f.try_clone().at(&self.path)?),
            None => None,
        };
        Ok(TrackWriter {
            file,
            path: self.path.clone(),
        })
    }

    /// After a checkpoint: the first `new_len` logical bytes are in the file; map them and drop
    /// them from the tail.
    pub fn advance(&mut self, new_len: u64) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if new_len <= self.mapped_len {
            return Ok(());
        }
        // SAFETY: as in `open`: this prefix is durable and never rewritten.
        let map =
            unsafe { memmap2::MmapOptions::new().len(new_len as usize).map(file) }.at(&self.path)?;
        let moved = (new_len - self.mapped_len) as usize;
        self.tail.drain(..moved.min(self.tail.len()));
        self.map = Some(map);
        self.mapped_len = new_len;
        Ok(())
    }

    /// Heap bytes held (the mapped file is page cache, not heap).
    pub fn heap_bytes(&self) -> usize {
        self.tail.capacity()
    }

    /// Bytes of the file on disk.
    pub fn file_bytes(&self) -> u64 {
        self.mapped_len
    }
}

/// Writes checkpoint-bound track bytes (only checkpoints, which are serialised, use it).
pub struct TrackWriter {
    file: Option<File>,
    path: PathBuf,
}

impl TrackWriter {
    /// Writes `bytes` at `offset` and makes them durable.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        if let Some(f) = &self.file {
            crate::fsio::write_all_at(f, bytes, offset).at(&self.path)?;
            crate::fsio::sync_data(f, "tracks.write").at(&self.path)?;
        }
        Ok(())
    }
}

/// The version of a header of this store's track file that this build reads (1 or 2).
fn version_of(got: &[u8; HEADER_LEN as usize], store_id: &[u8; 16]) -> Option<u16> {
    (1..=VERSION).find(|&v| *got == header(store_id, v))
}

fn header(store_id: &[u8; 16], version: u16) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&version.to_le_bytes());
    h[12..28].copy_from_slice(store_id);
    let crc = crc32fast::hash(&h[..60]);
    h[60..].copy_from_slice(&crc.to_le_bytes());
    h
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::track_record::encode_v1;

    fn walk(n: i64, lat0: i32) -> Vec<GpsFix> {
        (0..n)
            .map(|i| GpsFix {
                time_us: 1_700_000_000_000_000 + i * 5_000_000,
                lat_e7: lat0 + (i as i32) * 37,
                lon_e7: -1_247_000 - (i as i32) * 51,
            })
            .collect()
    }

    #[test]
    fn records_are_found_by_offset_and_id() {
        let fixes = walk(100, 515_080_000);
        let mut ts = TrackStore::in_memory();
        let off = ts.append(9, &fixes);
        let empty = ts.append(10, &[]);
        assert_eq!(ts.get(off, 9).unwrap().to_vec().unwrap(), fixes);
        assert!(ts.get(empty, 10).unwrap().to_vec().unwrap().is_empty());
        assert!(ts.get(off, 10).is_err());
    }

    /// A file written by a build of version 1 keeps its records readable; the owner's open
    /// marks it version 2 before appending version-2 records; a follower reads both.
    #[test]
    fn a_version_1_file_is_read_and_upgraded_before_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let id = [7u8; 16];
        let old = walk(50, 515_000_000);
        let mut file = header(&id, 1).to_vec();
        file.extend_from_slice(&encode_v1(1, &old));
        let len = file.len() as u64;
        std::fs::write(dir.path().join(TRACKS_FILE), &file).unwrap();

        let ro = TrackStore::open_read_only(dir.path(), &id, len).unwrap().unwrap();
        assert_eq!(ro.get(HEADER_LEN, 1).unwrap().to_vec().unwrap(), old);
        drop(ro);

        let mut ts = TrackStore::open(dir.path(), &id, len).unwrap().unwrap();
        let on_disk = std::fs::read(dir.path().join(TRACKS_FILE)).unwrap();
        assert_eq!(on_disk[..64], header(&id, 2), "header upgraded");
        assert_eq!(on_disk[64..], file[64..], "records untouched");
        let new = walk(40, 516_000_000);
        let off = ts.append(2, &new);
        let (at, bytes) = ts.pending();
        ts.writer().unwrap().write(at, &bytes).unwrap();
        ts.advance(ts.len()).unwrap();
        let total = ts.len();
        assert_eq!(ts.get(HEADER_LEN, 1).unwrap().to_vec().unwrap(), old);
        assert_eq!(ts.get(off, 2).unwrap().to_vec().unwrap(), new);
        drop(ts);

        let ro = TrackStore::open_read_only(dir.path(), &id, total).unwrap().unwrap();
        assert_eq!(ro.get(off, 2).unwrap().to_vec().unwrap(), new);
        // Another store's file, or an unknown version, is not used.
        assert!(TrackStore::open_read_only(dir.path(), &[8u8; 16], total).unwrap().is_none());
        let mut bad = std::fs::read(dir.path().join(TRACKS_FILE)).unwrap();
        bad[..64].copy_from_slice(&header(&id, 3));
        std::fs::write(dir.path().join(TRACKS_FILE), &bad).unwrap();
        assert!(TrackStore::open(dir.path(), &id, total).unwrap().is_none());
    }
}
