//! `GET`/`HEAD /api/segments/{id}/video`: a segment's bytes over HTTP, with single byte
//! ranges, `ETag` (the SHA-256) and conditional requests.
//!
//! Invariants:
//! - every video access goes through [`open_video`], and every answer to one is recorded in the
//!   audit log by a [`VideoRecord`] with the caller's name, the method, the `Range` asked, the
//!   status and the bytes sent: a body when it has been sent or is cut off (`read`), a HEAD,
//!   304 or 416 before it is answered (`video-head`, `video-not-modified`,
//!   `video-range-refused`: they send no footage and are never recorded as reads);
//! - bytes are streamed in [`STREAM_CHUNK`] pieces read through a CRC-checking
//!   [`SegmentReader`]: on the async worker when every page the piece's checks touch is in
//!   memory ([`SegmentReader::resident`]: no wait for the disk, bar a page the kernel drops in
//!   between), else on the blocking pool; the first piece is read in the same step as the
//!   open. Nothing holds more than one piece per response, and a slow client holds no thread
//!   (the next piece is read only when hyper asks for it);
//! - a segment is opened once for a run of requests (`opened`): the next request reuses its
//!   chunk list, ETag and content type while the catalog's entry for it is unchanged;
//! - a `Range` that is malformed, unsatisfiable, or asks for more than one range is answered
//!   416 with `Content-Range: bytes */LEN` (multi-range is not supported: the review page and
//!   video players never need it);
//! - `If-None-Match` matching the ETag gives 304; `If-Range` with another validator makes the
//!   request a whole-body 200.

use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use super::api::SegId;
use super::{blocking, ApiError, App, Caller};
use crate::audit::Action;
use crate::SegmentReader;

pub mod opened;

/// Bytes read from the store per step of a response body.
pub const STREAM_CHUNK: usize = 256 * 1024;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/segments/{id}/video", get(video))
}

/// A segment opened for a video response, with the answer decided and its first piece read.
pub struct OpenVideo {
    /// The segment's length in bytes.
    pub len: u64,
    /// The `ETag`: the SHA-256 in quotes.
    pub etag: String,
    pub content_type: &'static str,
    /// Stands just past `first`.
    pub reader: SegmentReader,
    pub answer: Answer,
    /// The first [`STREAM_CHUNK`] (at most) of a body answer, read in the same step as the
    /// open (or why it could not be: the body then ends there, recorded as cut off).
    pub first: Option<crate::Result<Bytes>>,
}

/// The headers of a video request that decide its answer.
#[derive(Debug, Default, Clone)]
pub struct Ask {
    pub head: bool,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_none_match: Option<String>,
}

impl Ask {
    fn of(method: &Method, headers: &HeaderMap) -> Ask {
        let get = |name| header_str(headers, name).map(str::to_string);
        Ask {
            head: method == Method::HEAD,
            range: get(header::RANGE),
            if_range: get(header::IF_RANGE),
            if_none_match: get(header::IF_NONE_MATCH),
        }
    }
}

/// What a video request is answered with.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// 304: the client's copy (`If-None-Match`) is current.
    NotModified,
    /// 416, and why.
    Refused(String),
    /// Bytes `[start, end)`: a 206 when `partial` (a `Range` applied), else a 200. A HEAD gets
    /// the same head without the body.
    Bytes { start: u64, end: u64, partial: bool },
}

/// Decides the answer to `ask` for a segment of `len` bytes with ETag `etag`.
pub fn answer(ask: &Ask, len: u64, etag: &str) -> Answer {
    if ask
        .if_none_match
        .as_deref()
        .is_some_and(|t| etag_listed(t, etag))
    {
        return Answer::NotModified;
    }
    // If-Range: the range applies only if the validator is still ours; else send it all.
    let range = match ask.if_range.as_deref() {
        Some(v) if v.trim() != etag => None,
        _ => ask.range.as_deref(),
    };
    match range_answer(range, len) {
        RangeAnswer::Whole => Answer::Bytes {
            start: 0,
            end: len,
            partial: false,
        },
        RangeAnswer::Part { start, end } => Answer::Bytes {
            start,
            end: end + 1,
            partial: true,
        },
        RangeAnswer::Unsatisfiable(why) => Answer::Refused(why),
    }
}

/// The content type of a segment from its first bytes: MP4 (an `ftyp` box) or unknown.
pub fn sniff(head: &[u8]) -> &'static str {
    if head.get(4..8) == Some(b"ftyp") {
        "video/mp4"
    } else {
        "application/octet-stream"
    }
}

/// The one path of every video access: opens segment `id` (or takes it from the segments
/// opened lately, [`opened`]), decides the answer to `ask` and reads the body's first piece.
/// All of it runs on the async worker when the piece is in memory already
/// ([`SegmentReader::resident`]), else in one step on the blocking pool, so a short range
/// costs at most one trip there. What is then answered is recorded by a [`VideoRecord`].
pub async fn open_video(app: &Arc<App>, id: u64, ask: Ask) -> Result<OpenVideo, ApiError> {
    if let Some(hit) = app.videos.get(&app.store, id) {
        let answer = answer(&ask, hit.reader.len(), &hit.etag);
        let part = first_piece(&answer, ask.head);
        let reader = hit.reader.fresh();
        let (etag, content_type) = (hit.etag.clone(), hit.content_type);
        if part.is_none_or(|(at, n)| reader.resident(at, n as u64)) {
            return begin(reader, etag, content_type, answer, part);
        }
        return blocking(move || begin(reader, etag, content_type, answer, part)).await;
    }
    let app = Arc::clone(app);
    blocking(move || {
        let store = &app.store;
        let before = store.catalog_entry(id);
        let mut reader = store.open_segment(id)?;
        let sha256 = match reader.sha256() {
            Some(s) => s,
            // The commit record is out of reach and the cloud copy serves: its meta.json.
            None => store.info(id)?.sha256,
        };
        let etag = format!("\"{}\"", crate::util::hex(&sha256));
        let head = reader.read_to_vec(12).map_err(internal)?;
        let content_type = sniff(&head);
        app.videos.keep(store, before, &reader, &etag, content_type);
        let answer = answer(&ask, reader.len(), &etag);
        let part = first_piece(&answer, ask.head);
        begin(reader, etag, content_type, answer, part)
    })
    .await
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Where the body of `answer` starts and the length of its first piece (None: no body).
fn first_piece(answer: &Answer, head: bool) -> Option<(u64, usize)> {
    match *answer {
        Answer::Bytes { start, end, .. } if !head && end > start => {
            Some((start, (end - start).min(STREAM_CHUNK as u64) as usize))
        }
        _ => None,
    }
}

/// Reads the first piece `part` (if any) and makes the [`OpenVideo`].
fn begin(
    mut reader: SegmentReader,
    etag: String,
    content_type: &'static str,
    answer: Answer,
    part: Option<(u64, usize)>,
) -> Result<OpenVideo, ApiError> {
    let first = part.map(|(at, n)| read_piece(&mut reader, at, n));
    Ok(OpenVideo {
        len: reader.len(),
        etag,
        content_type,
        reader,
        answer,
        first,
    })
}

/// Exactly `n` verified bytes at `at`.
fn read_piece(r: &mut SegmentReader, at: u64, n: usize) -> crate::Result<Bytes> {
    r.seek(SeekFrom::Start(at))
        .map_err(|e| crate::Error::Invalid(e.to_string()))?;
    let piece = r.read_to_vec(n)?;
    if piece.len() != n {
        return Err(crate::Error::SegmentCorrupt {
            segment: r.id(),
            offset: at,
            what: format!("{} bytes read, {n} expected", piece.len()),
        });
    }
    Ok(Bytes::from(piece))
}

/// Whether an `If-None-Match` / `If-Range` list names `etag` (weak comparison; `*` matches).
fn etag_listed(value: &str, etag: &str) -> bool {
    value.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t == etag
    })
}

/// What to send for a request's `Range`.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable(String),
}

/// Decides the range to send from the `Range` header of a segment of `len` bytes.
pub fn range_answer(range: Option<&str>, len: u64) -> RangeAnswer {
    let Some(value) = range else {
        return RangeAnswer::Whole;
    };
    let ranges = match http_range_header::parse_range_header(value) {
        Ok(r) => r,
        Err(e) => return RangeAnswer::Unsatisfiable(format!("bad Range {value:?}: {e}")),
    };
    if ranges.len() != 1 {
        return RangeAnswer::Unsatisfiable(
            "multiple ranges are not supported: ask for one range at a time".into(),
        );
    }
    match ranges.validate(len) {
        Ok(v) => match v.first() {
            Some(r) => RangeAnswer::Part {
                start: *r.start(),
                end: *r.end(),
            },
            // A suffix range of an empty segment: all of it, which is nothing.
            None => RangeAnswer::Whole,
        },
        Err(e) => RangeAnswer::Unsatisfiable(format!(
            "Range {value:?} cannot be served from {len} bytes: {e}"
        )),
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn set(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// The audit entry of one video answer. A body's entry is written when the body ends or is
/// dropped (the client went away, a chunk was corrupt), with the bytes handed to the
/// connection by then; any other answer's entry is written before it is sent.
pub struct VideoRecord {
    store: crate::Store,
    actor: String,
    id: u64,
    action: Action,
    method: String,
    /// The `Range` header as sent, if any.
    range: Option<String>,
    status: u16,
    /// The bytes `[start, end)` the answer was to send.
    start: u64,
    end: u64,
    sent: u64,
    done: bool,
}

impl VideoRecord {
    fn details(&self, complete: bool, error: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "method": self.method,
            "range": self.range,
            "status": self.status,
            "start": self.start,
            "end": self.end,
            "bytes_sent": self.sent,
            "complete": complete,
            "error": error,
        })
    }

    /// Writes the entry (once). An access entry is batched: one positioned write into the page
    /// cache, made durable by the audit log's flush thread, so it is written in place on the
    /// async worker (as `Drop` must anyway).
    fn write(&mut self, error: Option<&str>) -> Result<(), ApiError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let complete = error.is_none() && self.sent == self.end - self.start;
        let details = self.details(complete, error);
        super::api::record(
            &self.store,
            &self.actor,
            self.action.clone(),
            Some(self.id),
            details,
        )
    }

    /// Writes the entry of an answer without a body, before it is sent.
    fn write_now(mut self, action: Action, status: StatusCode) -> Result<(), ApiError> {
        self.action = action;
        self.status = status.as_u16();
        self.end = self.start;
        self.write(None)
    }
}

impl Drop for VideoRecord {
    /// A body dropped before its end (client gone, connection cut, server stopping): its
    /// entry is written here, in place. It is one buffered append of a batched entry (no
    /// fsync); handing it to the blocking pool could lose it while the runtime shuts down.
    fn drop(&mut self) {
        let cut = (self.sent < self.end - self.start).then_some("the response was cut off");
        if let Err(e) = self.write(cut) {
            tracing::error!(
                target: "footage::server",
                segment = self.id,
                actor = %self.actor,
                error = %e,
                "cannot audit the read of a segment"
            );
        }
    }
}

async fn video(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    SegId(id): SegId,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ask = Ask::of(&method, &headers);
    let range = ask.range.clone();
    let v = open_video(&app, id, ask).await?;
    let mut rec = VideoRecord {
        store: app.store.clone(),
        actor: caller.name.clone(),
        id,
        action: Action::Read,
        method: method.as_str().to_string(),
        range,
        status: 200,
        start: 0,
        end: 0,
        sent: 0,
        done: false,
    };
    let mut resp = Response::new(Body::empty());
    set(&mut resp, header::ETAG, &v.etag);
    set(&mut resp, header::ACCEPT_RANGES, "bytes");
    set(&mut resp, header::CACHE_CONTROL, "private, no-cache");
    let (start, end) = match v.answer {
        Answer::NotModified => {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            rec.write_now(Action::VideoNotModified, StatusCode::NOT_MODIFIED)?;
            return Ok(resp);
        }
        Answer::Refused(why) => {
            let mut r = super::json(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &serde_json::json!({ "error": why }),
            );
            set(&mut r, header::CONTENT_RANGE, &format!("bytes */{}", v.len));
            set(&mut r, header::ACCEPT_RANGES, "bytes");
            rec.write_now(Action::VideoRangeRefused, StatusCode::RANGE_NOT_SATISFIABLE)?;
            return Ok(r);
        }
        Answer::Bytes {
            start,
            end,
            partial,
        } => {
            if partial {
                *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                let range = format!("bytes {start}-{}/{}", end - 1, v.len);
                set(&mut resp, header::CONTENT_RANGE, &range);
            }
            (start, end)
        }
    };
    set(&mut resp, header::CONTENT_TYPE, v.content_type);
    set(
        &mut resp,
        header::CONTENT_LENGTH,
        &(end - start).to_string(),
    );
    rec.start = start;
    rec.status = resp.status().as_u16();
    if method == Method::HEAD {
        let status = resp.status();
        rec.write_now(Action::VideoHead, status)?;
        return Ok(resp);
    }
    rec.end = end;
    *resp.body_mut() = stream(v.reader, v.first, (start, end), rec);
    Ok(resp)
}

/// The body `[start, end)`: `first` (already read), then the rest one [`STREAM_CHUNK`] at a
/// time, each read on the async worker when it is in memory and on the blocking pool when it
/// is not. Writes `rec` when it ends (or, through `Drop`, when it is dropped before).
fn stream(
    reader: SegmentReader,
    first: Option<crate::Result<Bytes>>,
    (start, end): (u64, u64),
    rec: VideoRecord,
) -> Body {
    let state = Some((reader, first, start, rec));
    let s = futures::stream::unfold(state, move |state| async move {
        let (mut r, first, at, mut rec) = state?;
        if at >= end {
            // Everything was handed to the connection: record it, then end the body.
            if let Err(e) = rec.write(None) {
                tracing::error!(
                    target: "footage::server",
                    segment = r.id(),
                    error = %e,
                    "cannot audit the read of a segment"
                );
            }
            return None;
        }
        let n = (end - at).min(STREAM_CHUNK as u64) as usize;
        let read = match first {
            Some(got) => Ok((r, got)),
            None if r.resident(at, n as u64) => {
                let got = read_piece(&mut r, at, n);
                Ok((r, got))
            }
            None => {
                tokio::task::spawn_blocking(move || {
                    let got = read_piece(&mut r, at, n);
                    (r, got)
                })
                .await
            }
        };
        match read {
            Ok((r, Ok(piece))) => {
                let n = piece.len() as u64;
                rec.sent += n;
                Some((Ok(piece), Some((r, None, at + n, rec))))
            }
            Ok((r, Err(e))) => {
                tracing::error!(target: "footage::server", segment = r.id(), error = %e, "video read failed");
                let why = format!("read failed: {e}");
                let _ = rec.write(Some(&why));
                Some((Err(std::io::Error::other(e)), None))
            }
            Err(e) => {
                drop(rec);
                Some((Err(std::io::Error::other(e)), None))
            }
        }
    });
    Body::from_stream(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        assert_eq!(range_answer(None, 10), Whole);
        assert_eq!(
            range_answer(Some("bytes=2-4"), 10),
            Part { start: 2, end: 4 }
        );
        assert_eq!(
            range_answer(Some("bytes=-3"), 10),
            Part { start: 7, end: 9 }
        );
        assert_eq!(
            range_answer(Some("bytes=5-"), 10),
            Part { start: 5, end: 9 }
        );
        assert_eq!(
            range_answer(Some("bytes=5-100"), 10),
            Part { start: 5, end: 9 }
        );
        for bad in [
            "bytes=10-",
            "bytes=999999999999-",
            "bytes=5-1",
            "garbage",
            "bytes=0-1,3-4",
            "bytes=",
            "bytes=-0",
            "items=0-1",
            "bytes=99999999999999999999999999999999999-",
        ] {
            assert!(
                matches!(range_answer(Some(bad), 10), Unsatisfiable(_)),
                "{bad}"
            );
        }
        assert_eq!(range_answer(Some("bytes=-5"), 0), Whole);
    }

    #[test]
    fn etags() {
        assert!(etag_listed("\"ab\"", "\"ab\""));
        assert!(etag_listed("W/\"ab\", \"cd\"", "\"ab\""));
        assert!(etag_listed("*", "\"ab\""));
        assert!(!etag_listed("\"abc\"", "\"ab\""));
    }

    #[test]
    fn answers() {
        let etag = "\"ab\"";
        let ask = |range: Option<&str>, if_range: Option<&str>, inm: Option<&str>| Ask {
            head: false,
            range: range.map(str::to_string),
            if_range: if_range.map(str::to_string),
            if_none_match: inm.map(str::to_string),
        };
        let whole = Answer::Bytes {
            start: 0,
            end: 10,
            partial: false,
        };
        let part = Answer::Bytes {
            start: 2,
            end: 5,
            partial: true,
        };
        assert_eq!(answer(&ask(None, None, None), 10, etag), whole);
        assert_eq!(answer(&ask(Some("bytes=2-4"), None, None), 10, etag), part);
        let stale = ask(Some("bytes=2-4"), Some("\"old\""), None);
        assert_eq!(answer(&stale, 10, etag), whole);
        let current = ask(Some("bytes=2-4"), Some(etag), None);
        assert_eq!(answer(&current, 10, etag), part);
        let cached = ask(Some("bytes=2-4"), None, Some(etag));
        assert_eq!(answer(&cached, 10, etag), Answer::NotModified);
        assert!(matches!(
            answer(&ask(Some("bytes=10-"), None, None), 10, etag),
            Answer::Refused(_)
        ));
        let empty = Answer::Bytes {
            start: 0,
            end: 0,
            partial: false,
        };
        assert_eq!(answer(&ask(None, None, None), 0, etag), empty);
        assert_eq!(first_piece(&empty, false), None);
        assert_eq!(first_piece(&whole, true), None, "a HEAD reads no body");
        assert_eq!(first_piece(&part, false), Some((2, 3)));
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\0\0\0\x18ftypisom"), "video/mp4");
        assert_eq!(sniff(b"RIFF"), "application/octet-stream");
        assert_eq!(sniff(b""), "application/octet-stream");
    }
}
