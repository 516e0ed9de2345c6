//! Resumable uploads over HTTP: tus 1.0.0 (core, creation, termination, expiration, checksum) at
//! `/api/uploads`, over the store's upload sessions (`Store::create_upload` and friends).
//!
//! ```text
//! OPTIONS /api/uploads          Tus-Version, Tus-Extension, Tus-Max-Size
//! POST    /api/uploads          Upload-Length + Upload-Metadata → 201 Location
//! GET     /api/uploads          JSON list of sessions in progress (role read)
//! HEAD    /api/uploads/{id}     Upload-Offset, Upload-Length (+ Footage-* once complete)
//! PATCH   /api/uploads/{id}     application/offset+octet-stream at Upload-Offset
//!                               (+ Upload-Checksum: sha1|sha256 <base64>: 460 if it differs)
//! DELETE  /api/uploads/{id}     terminate
//! ```
//!
//! Invariants:
//! - creating, writing, reading the offset of and terminating an upload need the `write`
//!   role (any upload) or the `ingest` role (only the uploads that token created: 403 for
//!   another's); listing needs `read` and is recorded in the audit log;
//! - a PATCH body is streamed to a blocking worker through a small bounded channel, never
//!   buffered whole; when the body ends, normally or cut off, the worker makes what arrived
//!   durable (`UploadPatch::finish`) and only then is the new `Upload-Offset` answered;
//! - a request refused for its headers (offset, content type, length, metadata, role) never
//!   writes to the store; a body longer than announced by `Content-Length` is refused before
//!   anything is written;
//! - a PATCH with `Upload-Checksum` counts only if its whole body has that digest: else it
//!   answers 460 (413 if the body went past the upload's length) and the offset stays where
//!   it was (`UploadPatch::expect_checksum`); an unknown algorithm or a malformed header is
//!   400 before anything is written;
//! - the PATCH that completes an upload answers with `Footage-Segment`, `Footage-Sha256` and
//!   `Footage-Duplicate`, after the segment is durable; HEAD repeats them while the completed
//!   session is kept.

// The helpers return a finished refusal (`Err(Response)`) that the handler sends at once: the
// size of a `Response` costs nothing on that path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine;
use futures::StreamExt;

use super::{blocking, json, ApiError, App, Caller};
use crate::store::{
    ChecksumAlgorithm, NewUpload, UploadChecksum, UploadPatch, UploadRefusal, UploadStatus,
};
use crate::SegmentMeta;

/// The protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// Extensions supported.
pub const TUS_EXTENSIONS: &str = "creation,termination,expiration,checksum";
/// The status of a PATCH whose body does not have the checksum it announced (tus checksum).
pub const CHECKSUM_MISMATCH: u16 = 460;
/// Body pieces queued between the socket and the writer (each at most what hyper reads).
const QUEUE: usize = 16;
/// How long a PATCH waits for another request on the same upload to end.
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// Largest `Upload-Metadata` header accepted (a GPS track of a long shift fits).
const MAX_METADATA: usize = 4 << 20;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/uploads", get(list).post(create).options(options))
        .route(
            "/api/uploads/{id}",
            axum::routing::head(head)
                .patch(patch)
                .delete(terminate)
                .options(options),
        )
}

/// A tus error: JSON `{"error": ...}` with the protocol header.
fn tus_error(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut r = json(status, &serde_json::json!({ "error": msg.into() }));
    r.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    r
}

fn with_tus(mut r: Response) -> Response {
    r.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    r
}

fn api_error(e: ApiError) -> Response {
    with_tus(e.into_response())
}

fn may_upload(caller: &Caller) -> Result<(), Response> {
    if caller.role.may_upload() {
        Ok(())
    } else {
        Err(tus_error(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} may not upload (it needs the write or ingest role)",
                caller.name
            ),
        ))
    }
}

/// An `ingest` token may touch only the uploads it created (the session's recorded actor is
/// its name); `write` and `holds` tokens (the station's staff) may touch any.
fn may_touch(caller: &Caller, s: &UploadStatus) -> Result<(), ApiError> {
    if caller.role.uploads_only() && s.caller != caller.name {
        return Err(ApiError::Forbidden(format!(
            "upload {} was created by another caller: an ingest token may only touch its own",
            s.id
        )));
    }
    Ok(())
}

/// Requests other than OPTIONS must speak our version (412 otherwise).
fn check_version(h: &HeaderMap) -> Result<(), Response> {
    match h.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => {
            let mut r = tus_error(
                StatusCode::PRECONDITION_FAILED,
                format!("send Tus-Resumable: {TUS_VERSION}"),
            );
            r.headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
            Err(r)
        }
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> Result<Option<u64>, Response> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            tus_error(
                StatusCode::BAD_REQUEST,
                format!("{name} must be a non-negative whole number"),
            )
        })
}

async fn options(State(app): State<Arc<App>>) -> Response {
    let max = app.store.upload_options().max_length;
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(ChecksumAlgorithm::NAMES),
    );
    if let Ok(v) = HeaderValue::from_str(&max.to_string()) {
        h.insert("tus-max-size", v);
    }
    r
}

/// Parses `Upload-Metadata` (comma-separated `key base64value` pairs) into a new upload's
/// metadata. Keys: officer, device, start, end (optional: read from the MP4 at completion),
/// gps (GPX or CSV text), category, case, tag (comma-separated lists). Others are ignored
/// (tus clients add `filename`, `filetype`...).
pub fn parse_metadata(raw: &str, length: u64) -> Result<NewUpload, String> {
    let mut fields: std::collections::BTreeMap<String, String> = Default::default();
    for pair in raw.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match pair.split_once(' ') {
            Some((k, v)) => (k, v.trim()),
            None => (pair, ""),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| format!("Upload-Metadata: the value of {key:?} is not base64"))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("Upload-Metadata: the value of {key:?} is not UTF-8 text"))?;
        if fields.insert(key.to_string(), text).is_some() {
            return Err(format!("Upload-Metadata: {key:?} is given twice"));
        }
    }
    let need = |k: &str| {
        fields
            .get(k)
            .cloned()
            .ok_or_else(|| format!("Upload-Metadata must name {k:?}"))
    };
    let officer = need("officer")?;
    let device = need("device")?;
    let start_us = crate::input::parse_time_or_unix(&need("start")?)
        .map_err(|e| format!("Upload-Metadata start: {e}"))?;
    let end = match fields.get("end") {
        Some(e) => Some(
            crate::input::parse_time_or_unix(e).map_err(|e| format!("Upload-Metadata end: {e}"))?,
        ),
        None => None,
    };
    let gps = match fields.get("gps") {
        None => Vec::new(),
        Some(t) if t.trim_start().starts_with('<') => {
            crate::input::parse_gpx(t.as_bytes(), "Upload-Metadata gps")
                .map_err(|e| e.to_string())?
        }
        Some(t) => crate::input::parse_csv(t.as_bytes(), "Upload-Metadata gps")
            .map_err(|e| e.to_string())?,
    };
    let list = |k: &str| -> Vec<String> {
        fields
            .get(k)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let meta = SegmentMeta {
        officer,
        device,
        start_us,
        end_us: end.unwrap_or(start_us),
        gps,
        categories: list("category"),
        cases: list("case"),
        tags: list("tag"),
    };
    let mut check = meta.clone();
    check.normalize();
    check
        .validate()
        .map_err(|e| format!("Upload-Metadata: {e}"))?;
    Ok(NewUpload {
        length,
        meta,
        end_known: end.is_some(),
    })
}

/// An HTTP date for `Upload-Expires`.
fn http_date(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_version(&headers).and_then(|()| may_upload(&caller)) {
        return r;
    }
    if headers.contains_key("upload-defer-length") {
        return tus_error(
            StatusCode::BAD_REQUEST,
            "Upload-Defer-Length is not supported: send Upload-Length",
        );
    }
    let length = match header_u64(&headers, "upload-length") {
        Ok(Some(n)) => n,
        Ok(None) => return tus_error(StatusCode::BAD_REQUEST, "Upload-Length is required"),
        Err(r) => return r,
    };
    let max = app.store.upload_options().max_length;
    if length > max {
        return tus_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Upload-Length {length} is over Tus-Max-Size {max}"),
        );
    }
    let raw = match headers.get("upload-metadata").map(|v| v.to_str()) {
        None => "",
        Some(Ok(s)) if s.len() <= MAX_METADATA => s,
        Some(_) => {
            return tus_error(
                StatusCode::BAD_REQUEST,
                "Upload-Metadata must be ASCII text of at most 4 MiB",
            )
        }
    };
    let new = match parse_metadata(raw, length) {
        Ok(n) => n,
        Err(e) => return tus_error(StatusCode::BAD_REQUEST, e),
    };
    let store = app.store.clone();
    let actor = caller.name.clone();
    match blocking(move || Ok(store.create_upload(new, &actor)?)).await {
        Ok(s) => {
            let mut r = StatusCode::CREATED.into_response();
            let h = r.headers_mut();
            h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
            if let Ok(v) = HeaderValue::from_str(&format!("/api/uploads/{}", s.id)) {
                h.insert(header::LOCATION, v);
            }
            if let Ok(v) = HeaderValue::from_str(&http_date(s.expires_us)) {
                h.insert("upload-expires", v);
            }
            r
        }
        Err(e) => api_error(e),
    }
}

/// The headers describing a session's durable state.
fn state_headers(r: &mut Response, s: &UploadStatus) {
    let h = r.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut put = |name: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(name, v);
        }
    };
    put("upload-offset", s.offset.to_string());
    put("upload-length", s.length.to_string());
    match &s.completed {
        Some(c) => {
            put("footage-segment", c.id.to_string());
            put("footage-sha256", c.sha256_hex());
            put("footage-duplicate", c.duplicate.to_string());
        }
        None => put("upload-expires", http_date(s.expires_us)),
    }
}

fn refusal(e: UploadRefusal) -> Response {
    let status = match &e {
        UploadRefusal::OffsetMismatch { .. } | UploadRefusal::Completed => StatusCode::CONFLICT,
        UploadRefusal::Busy => StatusCode::LOCKED,
        UploadRefusal::Store(e) => {
            return api_error(ApiError::Store(clone_error(e)));
        }
    };
    tus_error(status, e.to_string())
}

/// The store error again (it is not `Clone`): same kind and message.
fn clone_error(e: &crate::Error) -> crate::Error {
    match e {
        crate::Error::NotFound(s) => crate::Error::NotFound(s.clone()),
        crate::Error::Invalid(s) => crate::Error::Invalid(s.clone()),
        other => crate::Error::Invalid(other.to_string()),
    }
}

async fn head(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_version(&headers).and_then(|()| may_upload(&caller)) {
        return r;
    }
    let store = app.store.clone();
    let actor = caller.name.clone();
    let got = blocking(move || {
        let s = store.upload_status(&id)?;
        may_touch(&caller, &s)?;
        if s.offset == s.length && s.completed.is_none() {
            // Every byte is durable but the completion failed (a full disk at the commit):
            // try it again, so the dock learns its segment.
            // If it fails again (say, no end time can be found), HEAD still answers the state.
            if let Ok(p) = store.upload_patch(&id, s.offset, &actor, BUSY_WAIT) {
                if let Ok(done) = p.finish() {
                    return Ok(done);
                }
            }
            return Ok(store.upload_status(&id)?);
        }
        Ok(s)
    })
    .await;
    match got {
        Ok(s) => {
            let mut r = StatusCode::OK.into_response();
            state_headers(&mut r, &s);
            r
        }
        Err(e) => api_error(e),
    }
}

/// What the writer worker of one PATCH ends with.
struct Written {
    result: crate::Result<UploadStatus>,
    /// The body went on past the upload's length.
    overflow: bool,
    /// The request had a checksum its bytes did not match (or went past the length): none
    /// of its bytes count.
    discarded: bool,
}

/// Writes the body pieces it receives, then makes them durable whatever ended the body.
fn worker(mut p: UploadPatch, mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Written {
    let mut overflow = false;
    let mut failed = None;
    while let Some(data) = rx.blocking_recv() {
        let room = usize::try_from(p.remaining()).unwrap_or(usize::MAX);
        let part = data.get(..room.min(data.len())).unwrap_or_default();
        if let Err(e) = p.write(part) {
            failed = Some(e);
            break;
        }
        if part.len() < data.len() {
            overflow = true;
            break;
        }
    }
    drop(rx);
    if failed.is_none() && (!p.checksum_matches() || (overflow && p.has_checksum())) {
        return Written {
            result: Ok(p.discard()),
            overflow,
            discarded: true,
        };
    }
    Written {
        result: match failed {
            Some(e) => Err(e),
            None => p.finish(),
        },
        overflow,
        discarded: false,
    }
}

async fn patch(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    if let Err(r) = check_version(&headers).and_then(|()| may_upload(&caller)) {
        return r;
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype != "application/offset+octet-stream" {
        return tus_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a PATCH body must be sent as Content-Type: application/offset+octet-stream",
        );
    }
    let offset = match header_u64(&headers, "upload-offset") {
        Ok(Some(n)) => n,
        Ok(None) => return tus_error(StatusCode::BAD_REQUEST, "Upload-Offset is required"),
        Err(r) => return r,
    };
    let content_length = match header_u64(&headers, header::CONTENT_LENGTH.as_str()) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let checksum = match headers.get("upload-checksum").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match UploadChecksum::parse(v) {
            Ok(c) => Some(c),
            Err(e) => return tus_error(StatusCode::BAD_REQUEST, e.to_string()),
        },
        Some(Err(_)) => {
            return tus_error(
                StatusCode::BAD_REQUEST,
                "Upload-Checksum must be ASCII text",
            )
        }
    };
    let store = app.store.clone();
    let actor = caller.name.clone();
    let id2 = id.clone();
    let started = blocking(move || {
        let s = store.upload_status(&id2)?;
        may_touch(&caller, &s)?;
        if let Some(n) = content_length {
            if offset.checked_add(n).is_none_or(|end| end > s.length) {
                return Ok(Err(tus_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the body ({n} bytes at offset {offset}) goes past the upload's length ({})",
                        s.length
                    ),
                )));
            }
        }
        let mut p = match store.upload_patch(&id2, offset, &actor, BUSY_WAIT) {
            Ok(p) => p,
            Err(e) => return Ok(Err(refusal(e))),
        };
        if let Some(c) = checksum {
            p.expect_checksum(c)?;
        }
        Ok(Ok(p))
    })
    .await;
    let p = match started {
        Ok(Ok(p)) => p,
        Ok(Err(r)) => return r,
        Err(e) => return api_error(e),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(QUEUE);
    // The worker hashes and writes: bulk work, on a thread of its own at a lowered priority
    // (never tokio's blocking pool, whose threads also serve queries: see crate::priority).
    let (done_tx, job) = tokio::sync::oneshot::channel::<Written>();
    let spawned = crate::priority::spawn_bulk("footage-upload", app.bulk_nice, move || {
        let _ = done_tx.send(worker(p, rx));
    });
    if let Err(e) = spawned {
        return api_error(ApiError::Internal(format!(
            "cannot start an upload worker: {e}"
        )));
    }
    let mut body = req.into_body().into_data_stream();
    while let Some(piece) = body.next().await {
        match piece {
            Ok(b) if b.is_empty() => {}
            Ok(b) => {
                if tx.send(b).await.is_err() {
                    break; // the worker stopped (a write failed or the length was reached)
                }
            }
            // Cut off mid-body: what arrived is made durable all the same.
            Err(_) => break,
        }
    }
    drop(tx);
    let written = match job.await {
        Ok(w) => w,
        Err(e) => {
            return api_error(ApiError::Internal(format!("upload worker failed: {e}")));
        }
    };
    match written.result {
        Ok(s) if written.discarded => {
            let (status, msg) = if written.overflow {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the body went past the upload's length: with a checksum none of it counts",
                )
            } else {
                (
                    StatusCode::from_u16(CHECKSUM_MISMATCH).unwrap_or(StatusCode::BAD_REQUEST),
                    "Checksum Mismatch: the body does not have the Upload-Checksum it was sent \
                     with; none of it is counted (HEAD gives the offset to resend from)",
                )
            };
            let mut r = tus_error(status, msg);
            state_headers(&mut r, &s);
            r
        }
        Ok(s) if written.overflow => {
            let mut r = tus_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body went past the upload's length: the bytes up to it are stored",
            );
            state_headers(&mut r, &s);
            r
        }
        Ok(s) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            state_headers(&mut r, &s);
            r
        }
        Err(e) => api_error(ApiError::Store(e)),
    }
}

async fn terminate(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_version(&headers).and_then(|()| may_upload(&caller)) {
        return r;
    }
    let store = app.store.clone();
    let actor = caller.name.clone();
    let ended = blocking(move || {
        may_touch(&caller, &store.upload_status(&id)?)?;
        Ok(store.terminate_upload(&id, &actor)?)
    });
    match ended.await {
        Ok(()) => with_tus(StatusCode::NO_CONTENT.into_response()),
        Err(e) => api_error(e),
    }
}

async fn list(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> Response {
    let store = app.store.clone();
    let name = caller.name.clone();
    let got = blocking(move || {
        let _ = store.expire_uploads();
        let list = store.uploads();
        store.audit(
            &name,
            crate::audit::Action::List,
            None,
            serde_json::json!({ "uploads": list.len() }),
        )?;
        Ok(list)
    })
    .await;
    match got {
        Ok(list) => json(StatusCode::OK, &serde_json::json!({ "uploads": list })),
        Err(e) => e.into_response(),
    }
}
