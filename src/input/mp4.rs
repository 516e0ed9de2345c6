//! Duration and creation time of an MP4/MOV clip, read from its `moov` box.
//!
//! Job: tell the ingest path how long a clip plays and when the camera says it was made,
//! without reading the media data.
//!
//! Invariants:
//! - the file is never read whole: top-level boxes are walked by their headers (32-bit size,
//!   64-bit largesize, size 0 = to end of file), `mdat` and everything else is seeked over,
//!   and only the `moov` box (at most [`MAX_MOOV_BYTES`]) is read into memory;
//! - `Ok(None)` means "not an MP4 we can use": the first box is not a known top-level box
//!   type, or the walk ends (or hits a damaged box) before any `moov`;
//! - a `moov` that is truncated, oversized or does not decode is an error, never a panic;
//! - inside `moov` only `mvhd`, `trak/tkhd`, `trak/mdia/mdhd` and `mvex/mehd` are decoded
//!   (with `mp4-atom`), so unusual codec boxes elsewhere cannot make a good header fail.
//!
//! Duration: `mvhd` duration / timescale; when that is 0 or all ones ("unknown"), the
//! fragmented-MP4 `mehd` duration, else the longest track (`tkhd` in the movie timescale or
//! `mdhd` in the track's own timescale); `None` when none of them is known.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use mp4_atom::{Decode, Mdhd, Mehd, Mvhd, Tkhd};

use super::time::MAX_US;
use super::InputError;

/// Largest `moov` box read: 64 MiB (a 24 h clip's sample tables fit well below this).
pub const MAX_MOOV_BYTES: u64 = 64 << 20;

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_EPOCH_TO_UNIX_SECS: u64 = 2_082_844_800;

/// Box types that may open an MP4/MOV/3GP file.
const FIRST_BOX_KINDS: [&[u8; 4]; 14] = [
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp", b"sidx",
    b"moof", b"meta", b"pdin", b"junk",
];

/// What the `moov` box says about a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp4Info {
    /// Presentation duration in microseconds, if the header knows it.
    pub duration_us: Option<i64>,
    /// `mvhd` creation time as microseconds since the Unix epoch; `None` when the camera
    /// wrote 0 or a time outside 1970..=9999.
    pub creation_time_us: Option<i64>,
}

/// Duration of the clip at `path` in microseconds; `Ok(None)` if it is not an MP4 or its
/// header does not know the duration.
pub fn mp4_duration_us(path: &Path) -> Result<Option<i64>, InputError> {
    Ok(mp4_info(path)?.and_then(|i| i.duration_us))
}

/// Creation time of the clip at `path` in microseconds since the Unix epoch; `Ok(None)` if it
/// is not an MP4 or the camera left the creation time at 0.
pub fn mp4_creation_time_us(path: &Path) -> Result<Option<i64>, InputError> {
    Ok(mp4_info(path)?.and_then(|i| i.creation_time_us))
}

/// Reads both values with one pass over the file; `Ok(None)` if it is not an MP4.
pub fn mp4_info(path: &Path) -> Result<Option<Mp4Info>, InputError> {
    let shown = path.display().to_string();
    let moov = find_moov(path).map_err(|e| e.context(&shown))?;
    match moov {
        Some(body) => parse_moov(&body).map(Some).map_err(|e| e.context(&shown)),
        None => Ok(None),
    }
}

/// Like [`mp4_info`], for a clip already in memory (the fuzz targets use it).
pub fn mp4_info_bytes(data: &[u8]) -> Result<Option<Mp4Info>, InputError> {
    let io = |e| InputError::io(Path::new("<memory>"), e);
    let mut cursor = std::io::Cursor::new(data);
    match find_moov_in(&mut cursor, data.len() as u64, io)? {
        Some(body) => parse_moov(&body).map(Some),
        None => Ok(None),
    }
}

/// Like [`mp4_info`], over any seekable reader of `len` bytes (an upload's stored chunks).
pub fn mp4_info_reader<R: Read + Seek>(mut r: R, len: u64) -> Result<Option<Mp4Info>, InputError> {
    let io = |e| InputError::io(Path::new("<upload>"), e);
    match find_moov_in(&mut r, len, io)? {
        Some(body) => parse_moov(&body).map(Some),
        None => Ok(None),
    }
}

/// Walks the top-level boxes and returns the body of the `moov` box; `None` means no usable
/// `moov` was found.
fn find_moov(path: &Path) -> Result<Option<Vec<u8>>, InputError> {
    let io = |e| InputError::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    find_moov_in(&mut file, len, io)
}

/// [`find_moov`] over any seekable reader of `len` bytes.
fn find_moov_in<R: Read + Seek>(
    file: &mut R,
    len: u64,
    io: impl Fn(std::io::Error) -> InputError,
) -> Result<Option<Vec<u8>>, InputError> {
    let io = &io;
    let mut pos = 0u64;
    loop {
        if len.saturating_sub(pos) < 8 {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        let mut head = [0u8; 8];
        file.read_exact(&mut head).map_err(io)?;
        let [s0, s1, s2, s3, k0, k1, k2, k3] = head;
        let size = u64::from(u32::from_be_bytes([s0, s1, s2, s3]));
        let kind = [k0, k1, k2, k3];
        if pos == 0 && !FIRST_BOX_KINDS.contains(&&kind) {
            return Ok(None);
        }
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Ok(None);
        }
        let (header_len, total) = match size {
            0 => (8, len - pos),
            1 => {
                if len - pos < 16 {
                    return Ok(None);
                }
                let mut large = [0u8; 8];
                file.read_exact(&mut large).map_err(io)?;
                (16, u64::from_be_bytes(large))
            }
            n => (8, n),
        };
        let is_moov = &kind == b"moov";
        let end = pos
            .checked_add(total)
            .filter(|&e| total >= header_len && e <= len);
        let Some(end) = end else {
            if !is_moov {
                // A damaged or cut-off box before any moov: no usable header.
                return Ok(None);
            }
            return Err(InputError::invalid(format!(
                "the moov box at byte {pos} claims {total} bytes but the file has {} left; \
                 the file is truncated or damaged (re-export it from the camera)",
                len - pos
            )));
        };
        if !is_moov {
            pos = end;
            continue;
        }
        let body_len = total - header_len;
        if body_len > MAX_MOOV_BYTES {
            return Err(InputError::invalid(format!(
                "the moov box is {body_len} bytes; the limit is {} MiB, so this is not a \
                 body-worn-camera clip or its header is damaged",
                MAX_MOOV_BYTES >> 20
            )));
        }
        // body_len <= 64 MiB, so it fits in usize on every supported platform.
        let mut body = vec![0u8; body_len as usize];
        file.read_exact(&mut body).map_err(io)?;
        return Ok(Some(body));
    }
}

/// One child box inside a container: its type, the whole box and its body.
struct Child<'a> {
    kind: [u8; 4],
    whole: &'a [u8],
    body: &'a [u8],
}

/// Splits a container body into its child boxes. Fewer than 8 trailing bytes are padding
/// (QuickTime writes a 4-byte terminator); anything else that does not fit is an error.
fn children<'a>(parent: &str, mut rest: &'a [u8]) -> Result<Vec<Child<'a>>, InputError> {
    let mut out = Vec::new();
    let bad = |what: String| {
        InputError::invalid(format!(
            "damaged MP4 header inside {parent}: {what}; the file is truncated or corrupt"
        ))
    };
    while rest.len() >= 8 {
        let (size, kind) = match rest {
            [s0, s1, s2, s3, k0, k1, k2, k3, ..] => (
                u64::from(u32::from_be_bytes([*s0, *s1, *s2, *s3])),
                [*k0, *k1, *k2, *k3],
            ),
            _ => break,
        };
        let shown = String::from_utf8_lossy(&kind).into_owned();
        let (header_len, total) = match size {
            0 => (8u64, rest.len() as u64),
            1 => match rest.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(large) => (16, u64::from_be_bytes(large)),
                None => return Err(bad(format!("box {shown:?} has a cut-off 64-bit size"))),
            },
            n => (8, n),
        };
        if total < header_len || total > rest.len() as u64 {
            return Err(bad(format!(
                "box {shown:?} claims {total} bytes but {} remain",
                rest.len()
            )));
        }
        // Both bounds were just checked against rest.len().
        let (whole, tail) = rest.split_at(total as usize);
        let body = whole.get(header_len as usize..).unwrap_or_default();
        out.push(Child { kind, whole, body });
        rest = tail;
    }
    Ok(out)
}

fn decode<T: Decode>(what: &str, whole: &[u8]) -> Result<T, InputError> {
    let mut buf = whole;
    T::decode(&mut buf).map_err(|e| {
        InputError::invalid(format!(
            "damaged MP4 header: cannot decode {what}: {e}; the file is truncated or corrupt"
        ))
    })
}

/// Converts `duration` ticks of `timescale` per second to microseconds; `None` when the
/// value means "unknown" (0 or all ones) or cannot be represented.
fn ticks_to_us(duration: u64, timescale: u32) -> Option<i64> {
    if timescale == 0 || duration == 0 || duration == u64::from(u32::MAX) || duration == u64::MAX {
        return None;
    }
    let us = u128::from(duration) * 1_000_000 / u128::from(timescale);
    i64::try_from(us).ok().filter(|&v| v <= MAX_US)
}

fn parse_moov(body: &[u8]) -> Result<Mp4Info, InputError> {
    let mut mvhd: Option<Mvhd> = None;
    let mut mehd_ticks: Option<u64> = None;
    let mut track_us: Option<i64> = None;
    let mut track_ticks: Vec<u64> = Vec::new();
    for child in children("moov", body)? {
        match &child.kind {
            b"mvhd" => mvhd = Some(decode("moov/mvhd", child.whole)?),
            b"mvex" => {
                for c in children("moov/mvex", child.body)? {
                    if &c.kind == b"mehd" {
                        let mehd: Mehd = decode("moov/mvex/mehd", c.whole)?;
                        mehd_ticks = Some(mehd.fragment_duration);
                    }
                }
            }
            b"trak" => {
                for c in children("moov/trak", child.body)? {
                    match &c.kind {
                        b"tkhd" => {
                            let tkhd: Tkhd = decode("moov/trak/tkhd", c.whole)?;
                            track_ticks.push(tkhd.duration);
                        }
                        b"mdia" => {
                            for m in children("moov/trak/mdia", c.body)? {
                                if &m.kind == b"mdhd" {
                                    let mdhd: Mdhd = decode("moov/trak/mdia/mdhd", m.whole)?;
                                    let us = ticks_to_us(mdhd.duration, mdhd.timescale);
                                    track_us = track_us.max(us);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let Some(mvhd) = mvhd else {
        return Err(InputError::invalid(
            "the moov box has no mvhd (movie header); the file is corrupt or uses a \
             compressed QuickTime header, which is not supported",
        ));
    };
    if mvhd.timescale == 0 {
        return Err(InputError::invalid(
            "the movie header (mvhd) has a timescale of 0; the file is corrupt",
        ));
    }
    let scale = mvhd.timescale;
    let tkhd_us = track_ticks
        .iter()
        .filter_map(|&t| ticks_to_us(t, scale))
        .max();
    let duration_us = ticks_to_us(mvhd.duration, scale)
        .or_else(|| mehd_ticks.and_then(|t| ticks_to_us(t, scale)))
        .or(tkhd_us.max(track_us));
    let creation_time_us = mvhd
        .creation_time
        .checked_sub(MP4_EPOCH_TO_UNIX_SECS)
        .filter(|_| mvhd.creation_time != 0)
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| s.checked_mul(1_000_000))
        .filter(|&us| us <= MAX_US);
    Ok(Mp4Info {
        duration_us,
        creation_time_us,
    })
}

#[cfg(test)]
mod tests;
