//! The track file: every segment's GPS track, delta-encoded, in one append-only file that is
//! memory-mapped for the exact checks of near/bbox queries and for `Store::track`.
//!
//! ```text
//! <store>/catalog/tracks.ftt
//! header, 64 bytes: magic b"FTGTRACK", u16 version 1, u16 0, [16] store id, [32] 0,
//!                   u32 CRC32 of bytes 0..60
//! then records, back to back:
//!   u32 len        bytes after this field
//!   u32 crc        CRC32 of the bytes after this field
//!   u64 segment id
//!   i32 min_lat_e7, i32 min_lon_e7, i32 max_lat_e7, i32 max_lon_e7   (bounding box)
//!   u32 fix count
//!   fixes: the first as zigzag varints (time_us, lat_e7, lon_e7); each later one as zigzag
//!          varints of (time delta - previous time delta, lat delta, lon delta)
//! ```
//!
//! Invariants:
//! - the file is derived data: the checkpoint records how long its valid prefix is, opening
//!   cuts it back to that length, and replay re-appends the tracks of later commits;
//! - bytes past the mapped prefix live in memory (`tail`) until a checkpoint appends and
//!   fsyncs them *before* the checkpoint that names the new length is written;
//! - a record is used only after its CRC and segment id check out.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};
use crate::format::{DecodeError, Reader, Writer};
use crate::meta::GpsFix;

pub const TRACKS_FILE: &str = "tracks.ftt";
const MAGIC: [u8; 8] = *b"FTGTRACK";
const VERSION: u16 = 1;
pub const HEADER_LEN: u64 = 64;
/// Offset meaning "this segment has no GPS fixes".
pub const NO_TRACK: u64 = u64::MAX;

/// Encodes one track record.
pub fn encode(id: u64, fixes: &[GpsFix]) -> Vec<u8> {
    let mut body = Writer::new();
    body.u64(id);
    let (mut a, mut b, mut c, mut d) = (i32::MAX, i32::MAX, i32::MIN, i32::MIN);
    for f in fixes {
        a = a.min(f.lat_e7);
        b = b.min(f.lon_e7);
        c = c.max(f.lat_e7);
        d = d.max(f.lon_e7);
    }
    for v in [a, b, c, d] {
        body.u32(v as u32);
    }
    body.u32(fixes.len() as u32);
    let (mut pt, mut pdt, mut plat, mut plon) = (0i64, 0i64, 0i64, 0i64);
    for (i, f) in fixes.iter().enumerate() {
        if i == 0 {
            body.svarint(f.time_us);
        } else {
            let dt = f.time_us.wrapping_sub(pt);
            body.svarint(dt.wrapping_sub(pdt));
            pdt = dt;
        }
        body.svarint(i64::from(f.lat_e7) - plat);
        body.svarint(i64::from(f.lon_e7) - plon);
        pt = f.time_us;
        plat = i64::from(f.lat_e7);
        plon = i64::from(f.lon_e7);
    }
    let mut w = Writer::new();
    w.u32(body.buf.len() as u32 + 4);
    w.u32(crc32fast::hash(&body.buf));
    w.bytes(&body.buf);
    w.buf
}

/// A decoded track record, borrowing its fixes' encoding.
pub struct TrackRef<'a> {
    pub id: u64,
    /// (min_lat_e7, min_lon_e7, max_lat_e7, max_lon_e7).
    pub bbox: (i32, i32, i32, i32),
    pub count: u32,
    fixes: &'a [u8],
}

impl<'a> TrackRef<'a> {
    /// Parses the record at the start of `data`, checking its length and CRC.
    pub fn parse(data: &'a [u8]) -> Result<TrackRef<'a>, DecodeError> {
        let mut r = Reader::new(data, "track record");
        let len = r.u32()? as usize;
        if len < 4 + 28 {
            return Err(DecodeError::invalid("track record", "too short"));
        }
        let crc = r.u32()?;
        let body = r.take(len - 4)?;
        crate::format::check_crc("track record", crc, body)?;
        let mut b = Reader::new(body, "track record");
        let id = b.u64()?;
        let bbox = (
            b.u32()? as i32,
            b.u32()? as i32,
            b.u32()? as i32,
            b.u32()? as i32,
        );
        let count = b.u32()?;
        let fixes = b.take(b.remaining())?;
        Ok(TrackRef {
            id,
            bbox,
            count,
            fixes,
        })
    }

    /// The fixes, decoded lazily.
    pub fn fixes(&self) -> FixIter<'a> {
        FixIter {
            data: self.fixes,
            pos: 0,
            left: self.count,
            first: true,
            t: 0,
            dt: 0,
            lat: 0,
            lon: 0,
        }
    }

    /// All fixes, or an error if the encoding is damaged.
    pub fn to_vec(&self) -> Result<Vec<GpsFix>, DecodeError> {
        // Every fix takes at least 3 bytes: never reserve more than the bytes can hold (the
        // count is CRC-checked, but a decoder must not trust it with memory).
        let mut out = Vec::with_capacity((self.count as usize).min(self.fixes.len() / 3));
        for f in self.fixes() {
            out.push(f?);
        }
        Ok(out)
    }
}

/// Decodes a track's fixes (a hot loop of queries with an area: see [`read_varint`]).
pub struct FixIter<'a> {
    data: &'a [u8],
    pos: usize,
    left: u32,
    first: bool,
    t: i64,
    dt: i64,
    lat: i64,
    lon: i64,
}

/// Reads a varint (LEB128, at most 10 bytes: the encoding of `format::Writer::varint`) at
/// `*pos`, advancing it; `None` if the input ends or the varint is too long. Inline, with a
/// one-byte fast path: track and posting decoding spend most of their time here.
#[inline(always)]
pub(crate) fn read_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let b = *data.get(*pos)?;
    *pos += 1;
    if b < 0x80 {
        return Some(u64::from(b));
    }
    let mut v = u64::from(b & 0x7f);
    for shift in (7..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Zigzag decoding of [`read_varint`].
#[inline(always)]
pub(crate) fn read_svarint(data: &[u8], pos: &mut usize) -> Option<i64> {
    let u = read_varint(data, pos)?;
    Some(((u >> 1) as i64) ^ -((u & 1) as i64))
}

impl FixIter<'_> {
    #[inline(always)]
    fn svarint(&mut self) -> Result<i64, DecodeError> {
        read_svarint(self.data, &mut self.pos)
            .ok_or_else(|| DecodeError::invalid("track fixes", "truncated or overlong varint"))
    }

    #[inline(always)]
    fn step(&mut self) -> Result<GpsFix, DecodeError> {
        if self.first {
            self.t = self.svarint()?;
            self.first = false;
        } else {
            self.dt = self.dt.wrapping_add(self.svarint()?);
            self.t = self.t.wrapping_add(self.dt);
        }
        self.lat = self.lat.wrapping_add(self.svarint()?);
        self.lon = self.lon.wrapping_add(self.svarint()?);
        let lat = i32::try_from(self.lat).map_err(|_| DecodeError::invalid("track", "lat"))?;
        let lon = i32::try_from(self.lon).map_err(|_| DecodeError::invalid("track", "lon"))?;
        Ok(GpsFix {
            time_us: self.t,
            lat_e7: lat,
            lon_e7: lon,
        })
    }
}

impl Iterator for FixIter<'_> {
    type Item = Result<GpsFix, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let f = self.step();
        if f.is_err() {
            self.left = 0;
        }
        Some(f)
    }
}

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
        let header = header(store_id);
        if valid_len <= HEADER_LEN {
            // A fresh file (or a store that never had a checkpoint with tracks).
            crate::fsio::set_len(&file, 0).at(&path)?;
            crate::fsio::write_all_at(&file, &header, 0).at(&path)?;
            crate::fsio::sync_all(&file, "tracks.create").at(&path)?;
        } else {
            let mut got = [0u8; HEADER_LEN as usize];
            if len < valid_len || file.read_exact_at(&mut got, 0).is_err() || got != header {
                return Ok(None);
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
        if len < valid_len || file.read_exact_at(&mut got, 0).is_err() || got != header(store_id) {
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

fn header(store_id: &[u8; 16]) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[12..28].copy_from_slice(store_id);
    let crc = crc32fast::hash(&h[..60]);
    h[60..].copy_from_slice(&crc.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_round_trip_and_damage_is_detected() {
        let fixes: Vec<GpsFix> = (0..100)
            .map(|i| GpsFix {
                time_us: 1_700_000_000_000_000 + i * 5_000_000 + (i % 3),
                lat_e7: 515_080_000 + (i as i32) * 37,
                lon_e7: -1_247_000 - (i as i32) * 51,
            })
            .collect();
        let mut ts = TrackStore::in_memory();
        let off = ts.append(9, &fixes);
        let empty = ts.append(10, &[]);
        assert_eq!(ts.get(off, 9).unwrap().to_vec().unwrap(), fixes);
        assert!(ts.get(empty, 10).unwrap().to_vec().unwrap().is_empty());
        assert!(ts.get(off, 10).is_err());
        let rec = encode(9, &fixes);
        // Five bytes a fix or less for a regular walking track.
        assert!(rec.len() < 100 * 5 + 40, "{}", rec.len());
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x10;
            assert!(TrackRef::parse(&bad).is_err(), "byte {i}");
        }
    }
}
