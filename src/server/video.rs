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

mod answer;
pub mod opened;

use answer::first_piece;
pub use answer::{answer, range_answer, sniff, Answer, Ask, RangeAnswer};

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
