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
//!
//! Here: routes, headers, roles, OPTIONS/POST/HEAD/DELETE/GET; `writing.rs` (PATCH and its
//! worker); `metadata.rs` (`Upload-Metadata`).

// The helpers return a finished refusal (`Err(Response)`) that the handler sends at once: the
// size of a `Response` costs nothing on that path.
#![allow(clippy::result_large_err)]

mod metadata;
mod writing;

pub use metadata::parse_metadata;
use writing::patch;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::{blocking, json, ApiError, App, Caller};
use crate::store::{ChecksumAlgorithm, UploadRefusal, UploadStatus};

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
