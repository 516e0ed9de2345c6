//! PATCH: one request's bytes streamed from the body to a blocking worker that writes them to
//! the upload session (`UploadPatch`) and makes them durable before the new offset is answered.
//!
//! Invariant: the body is never buffered whole (a small bounded channel); the offset answered
//! is durable; a checksum mismatch leaves the offset where it was.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::StreamExt;

use crate::server::{blocking, ApiError, App, Caller};
use crate::store::{UploadChecksum, UploadPatch, UploadStatus};

use super::{
    api_error, check_version, header_u64, may_touch, may_upload, refusal, state_headers, tus_error,
    BUSY_WAIT, CHECKSUM_MISMATCH, QUEUE,
};

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

pub(super) async fn patch(
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
