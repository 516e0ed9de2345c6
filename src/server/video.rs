//! `GET`/`HEAD /api/segments/{id}/video`: a segment's bytes over HTTP, with single byte
//! ranges, `ETag` (the SHA-256) and conditional requests.
//!
//! Invariants:
//! - every video access goes through [`open_video`], and every answer to one is recorded in the
//!   audit log by a [`VideoRecord`] with the caller's name, the method, the `Range` asked, the
//!   status and the bytes sent: a body when it has been sent or is cut off (`read`), a HEAD,
//!   304 or 416 before it is answered (`video-head`, `video-not-modified`,
//!   `video-range-refused`: they send no footage and are never recorded as reads);
//! - bytes are streamed in [`STREAM_CHUNK`] pieces read on the blocking pool through a
//!   CRC-checking [`SegmentReader`]; nothing holds more than one piece per response, and a
//!   slow client holds no thread (the next piece is read only when hyper asks for it);
//! - a `Range` that is malformed, unsatisfiable, or asks for more than one range is answered
//!   416 with `Content-Range: bytes */LEN` (multi-range is not supported: the review page and
//!   video players never need it);
//! - `If-None-Match` matching the ETag gives 304; `If-Range` with another validator makes the
//!   request a whole-body 200.

use std::io::{Read, Seek, SeekFrom};
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
use crate::{SegmentInfo, SegmentReader};

/// Bytes read from the store per step of a response body.
pub const STREAM_CHUNK: usize = 256 * 1024;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/segments/{id}/video", get(video))
}

/// A segment opened for a video response.
pub struct OpenVideo {
    pub info: SegmentInfo,
    pub content_type: &'static str,
    pub reader: SegmentReader,
}

/// The content type of a segment from its first bytes: MP4 (an `ftyp` box) or unknown.
pub fn sniff(head: &[u8]) -> &'static str {
    if head.get(4..8) == Some(b"ftyp") {
        "video/mp4"
    } else {
        "application/octet-stream"
    }
}

/// The one path of every video access: opens segment `id` (its metadata and first bytes, for
/// the content type). What is then answered is recorded by a [`VideoRecord`].
pub async fn open_video(app: &App, id: u64) -> Result<OpenVideo, ApiError> {
    let store = app.store.clone();
    blocking(move || {
        let info = store.info(id)?;
        let mut reader = store.open_segment(id)?;
        let mut head = [0u8; 12];
        let mut n = 0;
        while n < head.len() {
            match reader.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(ApiError::Internal(e.to_string())),
            }
        }
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(OpenVideo {
            info,
            content_type: sniff(&head[..n]),
            reader,
        })
    })
    .await
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

    /// Writes the entry (once). Blocking I/O: call it on the blocking pool, or from `Drop`.
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
    async fn write_now(mut self, action: Action, status: StatusCode) -> Result<(), ApiError> {
        self.action = action;
        self.status = status.as_u16();
        self.end = self.start;
        blocking(move || self.write(None)).await
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
    let v = open_video(&app, id).await?;
    let len = v.info.bytes;
    let mut rec = VideoRecord {
        store: app.store.clone(),
        actor: caller.name.clone(),
        id,
        action: Action::Read,
        method: method.as_str().to_string(),
        range: header_str(&headers, header::RANGE).map(str::to_string),
        status: 200,
        start: 0,
        end: 0,
        sent: 0,
        done: false,
    };
    let etag = format!("\"{}\"", v.info.sha256_hex());
    let mut resp = Response::new(Body::empty());
    set(&mut resp, header::ETAG, &etag);
    set(&mut resp, header::ACCEPT_RANGES, "bytes");
    set(&mut resp, header::CACHE_CONTROL, "private, no-cache");
    if header_str(&headers, header::IF_NONE_MATCH).is_some_and(|t| etag_listed(t, &etag)) {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        rec.write_now(Action::VideoNotModified, StatusCode::NOT_MODIFIED)
            .await?;
        return Ok(resp);
    }
    let range = header_str(&headers, header::RANGE);
    // If-Range: the range applies only if the validator is still ours; else send it all.
    let range = match header_str(&headers, header::IF_RANGE) {
        Some(v) if v.trim() != etag => None,
        _ => range,
    };
    let (start, end) = match range_answer(range, len) {
        RangeAnswer::Whole => (0, len),
        RangeAnswer::Part { start, end } => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(
                &mut resp,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{len}"),
            );
            (start, end + 1)
        }
        RangeAnswer::Unsatisfiable(why) => {
            let mut r = super::json(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &serde_json::json!({ "error": why }),
            );
            set(&mut r, header::CONTENT_RANGE, &format!("bytes */{len}"));
            set(&mut r, header::ACCEPT_RANGES, "bytes");
            rec.write_now(Action::VideoRangeRefused, StatusCode::RANGE_NOT_SATISFIABLE)
                .await?;
            return Ok(r);
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
        rec.write_now(Action::VideoHead, status).await?;
        return Ok(resp);
    }
    rec.end = end;
    *resp.body_mut() = stream(v.reader, start, end - start, rec);
    Ok(resp)
}

/// A body that reads `len` bytes from `start`, one piece at a time on the blocking pool, and
/// writes `rec` when it ends (or, through `Drop`, when it is dropped before).
fn stream(reader: SegmentReader, start: u64, len: u64, rec: VideoRecord) -> Body {
    let state = Some((reader, start, len, true, rec));
    let s = futures::stream::unfold(state, |state| async move {
        let (mut r, start, left, first, mut rec) = state?;
        if left == 0 {
            // Everything was handed to the connection: record it, then end the body.
            match blocking(move || rec.write(None)).await {
                Ok(()) => return None,
                Err(e) => {
                    tracing::error!(
                        target: "footage::server",
                        segment = r.id(),
                        error = %e,
                        "cannot audit the read of a segment"
                    );
                    return None;
                }
            }
        }
        let n = left.min(STREAM_CHUNK as u64) as usize;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            let res = (if first {
                r.seek(SeekFrom::Start(start)).map(|_| ())
            } else {
                Ok(())
            })
            .and_then(|_| r.read_exact(&mut buf));
            (r, buf, res)
        })
        .await;
        match read {
            Ok((r, buf, Ok(()))) => {
                rec.sent += n as u64;
                Some((
                    Ok(Bytes::from(buf)),
                    Some((r, start, left - n as u64, false, rec)),
                ))
            }
            Ok((r, _, Err(e))) => {
                tracing::error!(target: "footage::server", segment = r.id(), error = %e, "video read failed");
                let why = format!("read failed: {e}");
                let _ = blocking(move || rec.write(Some(&why))).await;
                Some((Err(e), None))
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
    fn sniffing() {
        assert_eq!(sniff(b"\0\0\0\x18ftypisom"), "video/mp4");
        assert_eq!(sniff(b"RIFF"), "application/octet-stream");
        assert_eq!(sniff(b""), "application/octet-stream");
    }
}
