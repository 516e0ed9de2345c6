//! One record of the track file (FORMAT §9a): its encoding, and the checked, lazy decoding of
//! its fixes for the exact checks of near/bbox queries and for `Store::track`.
//!
//! Two forms, told apart by bit 31 of the record's `len`:
//! - **version 1** (bit clear; written before issue 15): one CRC over the whole record, the
//!   fixes one delta stream. Read as a track of one block whose times are unknown.
//! - **version 2** (bit set; written now): a head (segment id, box, fix count, block
//!   directory) under one CRC, then blocks of [`BLOCK_FIXES`] fixes, each its own delta stream
//!   from an absolute first fix, with its own CRC, time range and box in the directory. A query
//!   checks the head and decodes only the blocks that meet its window and area.
//!
//! Invariants: nothing read from a record is used before the CRC covering it checks out; a
//! count read from a record never sizes an allocation beyond what its bytes can hold; every
//! directory offset lies inside the record (checked when the block is taken).

use crate::format::{DecodeError, Reader, Writer};
use crate::meta::GpsFix;

/// Fixes per block of a version-2 record (the last block may hold fewer).
pub const BLOCK_FIXES: usize = 32;
/// Bit 31 of `len`: a version-2 (blocked) record.
pub(crate) const BLOCKED: u32 = 1 << 31;
/// Bytes of a directory entry: u32 end, u32 crc, i64 first time, i64 last time, 4 × i32 box.
pub(crate) const DIR_ENTRY: usize = 40;
/// Bytes of a version-1 head: u64 id, 4 × i32 box, u32 count.
const V1_HEAD: usize = 28;
/// Bytes of a version-2 head before the directory: the version-1 head, u16 fixes per block,
/// u16 0.
pub(crate) const V2_HEAD: usize = 32;

/// A bounding box: (min_lat_e7, min_lon_e7, max_lat_e7, max_lon_e7).
pub type E7Rect = (i32, i32, i32, i32);

/// The bounding box of `fixes` (`(MAX, MAX, MIN, MIN)` when there are none).
fn rect_of(fixes: &[GpsFix]) -> E7Rect {
    fixes.iter().fold(
        (i32::MAX, i32::MAX, i32::MIN, i32::MIN),
        |(a, b, c, d), f| (a.min(f.lat_e7), b.min(f.lon_e7), c.max(f.lat_e7), d.max(f.lon_e7)),
    )
}

fn put_rect(w: &mut Writer, (a, b, c, d): E7Rect) {
    for v in [a, b, c, d] {
        w.u32(v as u32);
    }
}

/// One delta stream: the first fix as zigzag varints (time_us, lat_e7, lon_e7), each later
/// one as zigzag varints of (time delta − previous time delta, lat delta, lon delta).
fn put_fixes(w: &mut Writer, fixes: &[GpsFix]) {
    let (mut pt, mut pdt, mut plat, mut plon) = (0i64, 0i64, 0i64, 0i64);
    for (i, f) in fixes.iter().enumerate() {
        if i == 0 {
            w.svarint(f.time_us);
        } else {
            let dt = f.time_us.wrapping_sub(pt);
            w.svarint(dt.wrapping_sub(pdt));
            pdt = dt;
        }
        w.svarint(i64::from(f.lat_e7) - plat);
        w.svarint(i64::from(f.lon_e7) - plon);
        pt = f.time_us;
        plat = i64::from(f.lat_e7);
        plon = i64::from(f.lon_e7);
    }
}

/// Encodes one track record (version 2). `fixes` are sorted by time (checked at ingest).
pub fn encode(id: u64, fixes: &[GpsFix]) -> Vec<u8> {
    let mut blocks = Writer::new();
    let mut head = Writer::new();
    head.u64(id);
    put_rect(&mut head, rect_of(fixes));
    head.u32(fixes.len() as u32);
    head.u16(BLOCK_FIXES as u16);
    head.u16(0);
    for block in fixes.chunks(BLOCK_FIXES) {
        let start = blocks.buf.len();
        put_fixes(&mut blocks, block);
        let times = block.iter().fold((i64::MAX, i64::MIN), |(a, b), f| {
            (a.min(f.time_us), b.max(f.time_us))
        });
        head.u32(blocks.buf.len() as u32);
        head.u32(crc32fast::hash(&blocks.buf[start..]));
        head.i64(times.0);
        head.i64(times.1);
        put_rect(&mut head, rect_of(block));
    }
    let mut w = Writer::new();
    w.u32((4 + head.buf.len() + blocks.buf.len()) as u32 | BLOCKED);
    w.u32(crc32fast::hash(&head.buf));
    w.bytes(&head.buf);
    w.bytes(&blocks.buf);
    w.buf
}

/// Encodes one track record in version 1 (tests of old files only).
#[cfg(any(test, feature = "internals"))]
pub fn encode_v1(id: u64, fixes: &[GpsFix]) -> Vec<u8> {
    let mut body = Writer::new();
    body.u64(id);
    put_rect(&mut body, rect_of(fixes));
    body.u32(fixes.len() as u32);
    put_fixes(&mut body, fixes);
    let mut w = Writer::new();
    w.u32(body.buf.len() as u32 + 4);
    w.u32(crc32fast::hash(&body.buf));
    w.bytes(&body.buf);
    w.buf
}

/// A track record whose head checked out.
pub struct TrackRef<'a> {
    pub id: u64,
    pub bbox: E7Rect,
    pub count: u32,
    form: Form<'a>,
}

enum Form<'a> {
    /// Version 1: the whole fix stream, its CRC already checked.
    Whole(&'a [u8]),
    /// Version 2: the checked directory and the blocks (each checked when decoded).
    Blocks {
        per_block: u32,
        dir: &'a [u8],
        data: &'a [u8],
    },
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

fn read_rect(r: &mut Reader) -> Result<E7Rect, DecodeError> {
    Ok((
        r.u32()? as i32,
        r.u32()? as i32,
        r.u32()? as i32,
        r.u32()? as i32,
    ))
}

impl<'a> TrackRef<'a> {
    /// Parses the record at the start of `data`, checking its length and the CRC of its head
    /// (of the whole record in version 1).
    pub fn parse(data: &'a [u8]) -> Result<TrackRef<'a>, DecodeError> {
        const WHAT: &str = "track record";
        let mut r = Reader::new(data, WHAT);
        let raw = r.u32()?;
        let len = (raw & !BLOCKED) as usize;
        let blocked = raw & BLOCKED != 0;
        if len < 4 + if blocked { V2_HEAD } else { V1_HEAD } {
            return Err(DecodeError::invalid(WHAT, "too short"));
        }
        let crc = r.u32()?;
        let body = r.take(len - 4)?;
        let mut b = Reader::new(body, WHAT);
        let id = b.u64()?;
        let bbox = read_rect(&mut b)?;
        let count = b.u32()?;
        if !blocked {
            crate::format::check_crc(WHAT, crc, body)?;
            return Ok(TrackRef {
                id,
                bbox,
                count,
                form: Form::Whole(b.take(b.remaining())?),
            });
        }
        let per_block = u32::from(b.u16()?);
        let reserved = b.u16()?;
        let n = count.div_ceil(per_block.max(1)) as usize;
        let head_len = n
            .checked_mul(DIR_ENTRY)
            .and_then(|d| d.checked_add(V2_HEAD))
            .filter(|&h| h <= body.len())
            .ok_or_else(|| DecodeError::invalid(WHAT, "block directory past the record"))?;
        crate::format::check_crc(WHAT, crc, &body[..head_len])?;
        if per_block == 0 || reserved != 0 {
            return Err(DecodeError::invalid(WHAT, "bad block size"));
        }
        let dir = &body[V2_HEAD..head_len];
        let data = &body[head_len..];
        let last_end = dir.len().checked_sub(DIR_ENTRY).map_or(0, |e| le_u32(dir, e));
        if last_end as usize != data.len() {
            return Err(DecodeError::invalid(WHAT, "blocks do not fill the record"));
        }
        Ok(TrackRef {
            id,
            bbox,
            count,
            form: Form::Blocks {
                per_block,
                dir,
                data,
            },
        })
    }

    /// The blocks in time order; a version-1 record is one block with unknown times.
    pub fn blocks(&self) -> Blocks<'a> {
        Blocks {
            form: match self.form {
                Form::Whole(d) => Form::Whole(d),
                Form::Blocks {
                    per_block,
                    dir,
                    data,
                } => Form::Blocks {
                    per_block,
                    dir,
                    data,
                },
            },
            count: self.count,
            bbox: self.bbox,
            next: 0,
            start: 0,
        }
    }

    /// The fixes, decoded lazily, each block checked before its first fix.
    pub fn fixes(&self) -> TrackFixes<'a> {
        TrackFixes {
            blocks: self.blocks(),
            current: None,
        }
    }

    /// All fixes, or an error if the encoding is damaged.
    pub fn to_vec(&self) -> Result<Vec<GpsFix>, DecodeError> {
        let bytes = match self.form {
            Form::Whole(d) => d.len(),
            Form::Blocks { data, .. } => data.len(),
        };
        // Every fix takes at least 3 bytes: never reserve more than the bytes can hold.
        let mut out = Vec::with_capacity((self.count as usize).min(bytes / 3));
        for f in self.fixes() {
            out.push(f?);
        }
        Ok(out)
    }
}

/// A run of consecutive fixes of a track.
pub struct Block<'a> {
    /// Times of its first and last fix; `None` in a version-1 record (unknown until decoded).
    pub times: Option<(i64, i64)>,
    pub bbox: E7Rect,
    count: u32,
    crc: Option<u32>,
    bytes: &'a [u8],
}

impl<'a> Block<'a> {
    /// Its fixes, after checking its CRC.
    pub fn fixes(&self) -> Result<FixIter<'a>, DecodeError> {
        if let Some(crc) = self.crc {
            crate::format::check_crc("track block", crc, self.bytes)?;
        }
        Ok(FixIter::new(self.bytes, self.count))
    }
}

/// The blocks of a track (see [`TrackRef::blocks`]).
pub struct Blocks<'a> {
    form: Form<'a>,
    count: u32,
    bbox: E7Rect,
    next: usize,
    /// Where the next block starts in the block bytes.
    start: usize,
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Result<Block<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let i = self.next;
        self.next += 1;
        match self.form {
            Form::Whole(bytes) => (i == 0).then_some(Ok(Block {
                times: None,
                bbox: self.bbox,
                count: self.count,
                crc: None,
                bytes,
            })),
            Form::Blocks {
                per_block,
                dir,
                data,
            } => {
                let e = dir.get(i * DIR_ENTRY..(i + 1) * DIR_ENTRY)?;
                let end = le_u32(e, 0) as usize;
                let Some(bytes) = data.get(self.start..end) else {
                    self.next = usize::MAX / DIR_ENTRY;
                    return Some(Err(DecodeError::invalid("track record", "block offsets")));
                };
                self.start = end;
                let done = (i as u32).saturating_mul(per_block);
                let rect = |at| le_u32(e, at) as i32;
                Some(Ok(Block {
                    times: Some((le_i64(e, 8), le_i64(e, 16))),
                    bbox: (rect(24), rect(28), rect(32), rect(36)),
                    count: per_block.min(self.count.saturating_sub(done)),
                    crc: Some(le_u32(e, 4)),
                    bytes,
                }))
            }
        }
    }
}

/// Every fix of a track, block after block (see [`TrackRef::fixes`]).
pub struct TrackFixes<'a> {
    blocks: Blocks<'a>,
    current: Option<FixIter<'a>>,
}

impl Iterator for TrackFixes<'_> {
    type Item = Result<GpsFix, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(f) = self.current.as_mut().and_then(Iterator::next) {
                return Some(f);
            }
            match self.blocks.next()?.and_then(|b| b.fixes()) {
                Ok(it) => self.current = Some(it),
                Err(e) => {
                    self.blocks.next = usize::MAX / DIR_ENTRY;
                    self.current = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Decodes one delta stream (a hot loop of queries with an area: see [`read_varint`]).
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

impl<'a> FixIter<'a> {
    fn new(data: &'a [u8], count: u32) -> FixIter<'a> {
        FixIter {
            data,
            pos: 0,
            left: count,
            first: true,
            t: 0,
            dt: 0,
            lat: 0,
            lon: 0,
        }
    }

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

#[cfg(test)]
mod tests;
