//! Upload session records (`<store>/uploads/<id>.upl`): the durable state of a resumable
//! upload, as an append-only sequence of frames (docs/FORMAT.md "Upload session records").
//!
//! ```text
//! frame:
//!   [4]  magic "FTUP"
//!   u16  version (1)
//!   u8   kind: 1 header, 2 progress, 3 completed
//!   u8   0
//!   u32  body length
//!   body
//!   u32  CRC32 of the frame from the magic to the end of the body
//!
//! header body:    u64 reserved segment id, u16 data dir, i64 volume day,
//!                 i64 created_us, i64 expires_us, u64 upload length, str16 actor,
//!                 u8 end known (0/1), i64 start_us, i64 end_us, str16 officer, str16 device,
//!                 list categories, list cases, list tags, track (as in commit records)
//! progress body:  u64 offset (bytes durable after this frame), u32 count, then per new
//!                 chunk: u32 volume id, u64 header offset, u32 length
//! completed body: u64 segment id (the existing one for a duplicate), [32] SHA-256,
//!                 u8 duplicate (0/1), i64 completed_us
//! ```
//!
//! Invariants (checked by [`decode_file`]): the first frame is the header and there is one;
//! every progress frame's offset equals the sum of the lengths of every chunk listed so far
//! and never passes the upload length; a completed frame comes last. A frame that is cut short or fails its CRC ends the file (a torn append: its
//! bytes are reported so the writer can cut them off); nothing after it is trusted.

use super::commit::{decode_track, encode_track, Extent};
use super::{check_crc, DecodeError, Reader, Writer};
use crate::meta::SegmentMeta;

pub const UPLOAD_MAGIC: [u8; 4] = *b"FTUP";
pub const UPLOAD_VERSION: u16 = 1;
/// Magic, version, kind, reserved byte and body length.
const FRAME_HEAD: usize = 12;
/// Largest frame body accepted (a header with a long GPS track; progress frames are tiny).
pub const MAX_FRAME_BODY: u32 = 64 << 20;

const KIND_HEADER: u8 = 1;
const KIND_PROGRESS: u8 = 2;
const KIND_COMPLETED: u8 = 3;

/// What never changes in a session: who created it, for what, and where its chunks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHeader {
    pub segment_id: u64,
    pub dir: u16,
    pub day: i64,
    pub created_us: i64,
    pub expires_us: i64,
    pub length: u64,
    pub actor: String,
    /// False when the end time is to be read from the MP4 header at completion.
    pub end_known: bool,
    pub meta: SegmentMeta,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionDone {
    pub segment_id: u64,
    pub sha256: [u8; 32],
    pub duplicate: bool,
    pub completed_us: i64,
}

/// Everything a session file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFile {
    pub header: SessionHeader,
    /// Every durable chunk, in order.
    pub extents: Vec<Extent>,
    pub offset: u64,
    pub done: Option<SessionDone>,
    /// Length of the valid frames: bytes past it are a torn append.
    pub valid_len: u64,
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&UPLOAD_MAGIC);
    w.u16(UPLOAD_VERSION);
    w.u8(kind);
    w.u8(0);
    w.u32(body.len() as u32);
    w.bytes(body);
    let crc = crc32fast::hash(&w.buf);
    w.u32(crc);
    w.buf
}

pub fn encode_header(h: &SessionHeader) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(h.segment_id);
    w.u16(h.dir);
    w.i64(h.day);
    w.i64(h.created_us);
    w.i64(h.expires_us);
    w.u64(h.length);
    w.str16(&h.actor);
    w.u8(u8::from(h.end_known));
    w.i64(h.meta.start_us);
    w.i64(h.meta.end_us);
    w.str16(&h.meta.officer);
    w.str16(&h.meta.device);
    w.str_list(&h.meta.categories);
    w.str_list(&h.meta.cases);
    w.str_list(&h.meta.tags);
    encode_track(&mut w, &h.meta.gps);
    frame(KIND_HEADER, &w.buf)
}

pub fn encode_progress(offset: u64, new: &[Extent]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(offset);
    Extent::encode_list(&mut w, new);
    frame(KIND_PROGRESS, &w.buf)
}

pub fn encode_done(d: &SessionDone) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(d.segment_id);
    w.bytes(&d.sha256);
    w.u8(u8::from(d.duplicate));
    w.i64(d.completed_us);
    frame(KIND_COMPLETED, &w.buf)
}

/// A frame's kind, body and total length in bytes.
type Frame<'a> = (u8, &'a [u8], usize);

/// One frame at the start of `data`: its kind, body and total length. `Ok(None)` when the
/// frame is cut short or fails its CRC (a torn append).
fn next_frame(data: &[u8]) -> Result<Option<Frame<'_>>, DecodeError> {
    let mut r = Reader::new(data, "upload session frame");
    let Ok(head) = r.take(FRAME_HEAD) else {
        return Ok(None);
    };
    if head.get(..4) != Some(&UPLOAD_MAGIC[..]) {
        return Ok(None);
    }
    let mut h = Reader::new(head.get(4..).unwrap_or_default(), "upload session frame");
    let version = h.u16()?;
    let kind = h.u8()?;
    let _ = h.u8()?;
    let len = h.u32()?;
    if len > MAX_FRAME_BODY {
        return Ok(None);
    }
    let Ok(body) = r.take(len as usize) else {
        return Ok(None);
    };
    let Ok(stored) = r.u32() else {
        return Ok(None);
    };
    let total = FRAME_HEAD + len as usize;
    if check_crc(
        "upload session frame",
        stored,
        data.get(..total).unwrap_or_default(),
    )
    .is_err()
    {
        return Ok(None);
    }
    // Checked only once the CRC passed: a newer writer's frame, not damage.
    if version != UPLOAD_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            what: "upload session record",
            found: u32::from(version),
            supported: u32::from(UPLOAD_VERSION),
        });
    }
    Ok(Some((kind, body, total + 4)))
}

fn decode_header(body: &[u8]) -> Result<SessionHeader, DecodeError> {
    let mut r = Reader::new(body, "upload session header");
    let segment_id = r.u64()?;
    let dir = r.u16()?;
    let day = r.i64()?;
    let created_us = r.i64()?;
    let expires_us = r.i64()?;
    let length = r.u64()?;
    let actor = r.str16()?;
    let end_known = r.u8()? != 0;
    let start_us = r.i64()?;
    let end_us = r.i64()?;
    let officer = r.str16()?;
    let device = r.str16()?;
    let categories = r.str_list()?;
    let cases = r.str_list()?;
    let tags = r.str_list()?;
    let gps = decode_track(&mut r)?;
    r.finish()?;
    Ok(SessionHeader {
        segment_id,
        dir,
        day,
        created_us,
        expires_us,
        length,
        actor,
        end_known,
        meta: SegmentMeta {
            officer,
            device,
            start_us,
            end_us,
            gps,
            cases,
            tags,
            categories,
        },
    })
}

/// Decodes a whole session file. A file whose first frame is not a valid header is an error
/// (nothing was ever acknowledged from it: its creation was cut short, or it is damaged).
pub fn decode_file(data: &[u8]) -> Result<SessionFile, DecodeError> {
    let Some((kind, body, mut at)) = next_frame(data)? else {
        return Err(DecodeError::Truncated("upload session header"));
    };
    if kind != KIND_HEADER {
        return Err(DecodeError::invalid(
            "upload session record",
            "does not start with a header",
        ));
    }
    let header = decode_header(body)?;
    let mut f = SessionFile {
        header,
        extents: Vec::new(),
        offset: 0,
        done: None,
        valid_len: at as u64,
    };
    while let Some((kind, body, n)) = next_frame(data.get(at..).unwrap_or_default())? {
        if f.done.is_some() {
            return Err(DecodeError::invalid(
                "upload session record",
                "a frame follows the completion",
            ));
        }
        let mut r = Reader::new(body, "upload session frame");
        match kind {
            KIND_PROGRESS => {
                let offset = r.u64()?;
                let mut total = f.offset;
                for e in Extent::decode_list(&mut r, "upload progress extents")? {
                    if e.len == 0 {
                        return Err(DecodeError::invalid("upload progress", "empty chunk"));
                    }
                    total += u64::from(e.len);
                    f.extents.push(e);
                }
                r.finish()?;
                if total != offset || offset > f.header.length {
                    return Err(DecodeError::invalid(
                        "upload progress",
                        format!(
                            "offset {offset} does not match its chunks ({total} bytes) or \
                             passes the length {}",
                            f.header.length
                        ),
                    ));
                }
                f.offset = offset;
            }
            KIND_COMPLETED => {
                let segment_id = r.u64()?;
                let sha256 = r.array::<32>()?;
                let duplicate = r.u8()? != 0;
                let completed_us = r.i64()?;
                r.finish()?;
                f.done = Some(SessionDone {
                    segment_id,
                    sha256,
                    duplicate,
                    completed_us,
                });
            }
            other => {
                return Err(DecodeError::invalid(
                    "upload session record",
                    format!("unknown frame kind {other}"),
                ))
            }
        }
        at += n;
        f.valid_len = at as u64;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SessionHeader {
        SessionHeader {
            segment_id: 42,
            dir: 0,
            day: 20_412,
            created_us: 1,
            expires_us: 2,
            length: 30,
            actor: "dock-7".into(),
            end_known: false,
            meta: SegmentMeta {
                officer: "MET-1".into(),
                device: "AX-1".into(),
                start_us: 5,
                end_us: 5,
                tags: vec!["t".into()],
                ..SegmentMeta::default()
            },
        }
    }

    fn ext(len: u32) -> Extent {
        Extent {
            volume_id: 1,
            offset: 4064,
            len,
        }
    }

    #[test]
    fn session_file_round_trips_and_a_torn_last_frame_is_ignored() {
        let mut data = encode_header(&header());
        data.extend(encode_progress(10, &[ext(10)]));
        data.extend(encode_progress(30, &[ext(15), ext(5)]));
        let whole = data.len() as u64;
        let done = SessionDone {
            segment_id: 42,
            sha256: [7; 32],
            duplicate: false,
            completed_us: 9,
        };
        let last = encode_done(&done);
        let f = decode_file(&data).unwrap();
        assert_eq!(f.header, header());
        assert_eq!((f.offset, f.extents.len(), f.valid_len), (30, 3, whole));
        for cut in 1..last.len() {
            let mut torn = data.clone();
            torn.extend_from_slice(&last[..cut]);
            let f = decode_file(&torn).unwrap();
            assert_eq!((f.offset, f.done, f.valid_len), (30, None, whole));
        }
        data.extend(last);
        assert_eq!(decode_file(&data).unwrap().done, Some(done));
    }

    #[test]
    fn progress_that_does_not_add_up_is_refused_and_nothing_panics() {
        let mut data = encode_header(&header());
        data.extend(encode_progress(11, &[ext(10)]));
        assert!(decode_file(&data).is_err());
        let mut over = encode_header(&header());
        over.extend(encode_progress(31, &[ext(31)]));
        assert!(decode_file(&over).is_err());
        let good = {
            let mut d = encode_header(&header());
            d.extend(encode_progress(10, &[ext(10)]));
            d
        };
        for n in 0..good.len() {
            let _ = decode_file(&good[..n]);
        }
        assert!(decode_file(&good[..20]).is_err());
    }
}
