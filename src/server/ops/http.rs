//! The service's HTTP parts: `GET /metrics` and the layer every request passes through first
//! (counts and times it, refuses new uploads while draining).
//!
//! Invariants:
//! - while the service drains, `POST`/`PATCH` under `/api/uploads` are answered `503` with
//!   `Retry-After` before anything else runs (no upload is started or extended; an upload cut
//!   by the drain is resumed by the client after the restart from its last durable offset);
//! - every response is counted by status class, and every query endpoint is timed (from the
//!   request reaching the server to the response head; for video, the body is counted as it
//!   streams);
//! - `/metrics` goes through the same authentication as every endpoint (any token role,
//!   `read` included; loopback rules without tokens) and is not audited: it reveals counts,
//!   sizes and timings, never footage, metadata or names (the only label values are data dir
//!   paths from footage.toml, status classes and fixed kind names).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::Ops;
use crate::server::{blocking, App};

/// Seconds a refused upload is told to wait (`Retry-After`): about a service restart.
pub const RETRY_AFTER_S: u64 = 30;

/// The prefix of the upload endpoints (tus, helper A's `/api/uploads`).
pub const UPLOADS_PREFIX: &str = "/api/uploads";

/// The content type of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let store = app.store.clone();
    let samples = blocking(move || Ok(super::store_samples(&store)))
        .await
        .unwrap_or_default();
    let text = app.ops.render_metrics(samples);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// Which timed kind a request is (see [`super::metrics::QUERY_KINDS`]), if any.
pub fn query_kind(method: &Method, path: &str, query: Option<&str>) -> Option<&'static str> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if path == "/api/stats" {
        return Some("stats");
    }
    if path == "/api/segments" {
        let mut keys = std::collections::HashSet::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !v.trim().is_empty() {
                keys.insert(k.into_owned());
            }
        }
        let has = |k: &str| keys.contains(k);
        return Some(if has("near") {
            "search_near"
        } else if has("bbox") {
            "search_bbox"
        } else if has("case") || has("tag") || has("category") {
            "search_label"
        } else if has("officer") {
            "search_officer"
        } else if has("device") {
            "search_device"
        } else if has("from") || has("to") {
            "search_time"
        } else {
            "search_all"
        });
    }
    let rest = path.strip_prefix("/api/segments/")?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match tail {
        "" => Some("info"),
        "track.geojson" => Some("track"),
        "video" => Some("video"),
        _ => None,
    }
}

fn is_upload_write(method: &Method, path: &str) -> bool {
    (method == Method::POST || method == Method::PATCH)
        && (path == UPLOADS_PREFIX || path.starts_with("/api/uploads/"))
}

/// The outermost layer: drain refusals, response counts, query timing, video bytes.
pub async fn layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let ops = Arc::clone(&app.ops);
    if ops.is_draining() && is_upload_write(req.method(), req.uri().path()) {
        ops.metrics.drain_refusal();
        ops.metrics.response(503);
        let mut r = crate::server::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({
                "error": "the service is stopping: resume the upload after it restarts"
            }),
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&RETRY_AFTER_S.to_string())
                .unwrap_or(HeaderValue::from_static("30")),
        );
        return r;
    }
    let kind = query_kind(req.method(), req.uri().path(), req.uri().query());
    let t = Instant::now();
    let resp = next.run(req).await;
    ops.metrics.response(resp.status().as_u16());
    if let Some(k) = kind {
        ops.metrics.query(k, t.elapsed());
    }
    if kind == Some("video") && resp.status().is_success() {
        let (parts, body) = resp.into_parts();
        return Response::from_parts(parts, Body::new(Counted { inner: body, ops }));
    }
    resp
}

/// A response body that adds its bytes to the video counter as they are sent.
struct Counted {
    inner: Body,
    ops: Arc<Ops>,
}

impl HttpBody for Counted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let Some(d) = f.data_ref() {
                self.ops.metrics.video_bytes(d.len() as u64);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let g = Method::GET;
        assert_eq!(
            query_kind(&g, "/api/segments", Some("near=1,2&radius=5&officer=A")),
            Some("search_near")
        );
        assert_eq!(
            query_kind(&g, "/api/segments", Some("officer=A&from=")),
            Some("search_officer")
        );
        assert_eq!(
            query_kind(&g, "/api/segments", Some("tag=x")),
            Some("search_label")
        );
        assert_eq!(
            query_kind(&g, "/api/segments", Some("from=2026-01-01T00:00:00Z")),
            Some("search_time")
        );
        assert_eq!(query_kind(&g, "/api/segments", None), Some("search_all"));
        assert_eq!(query_kind(&g, "/api/segments/12", None), Some("info"));
        assert_eq!(
            query_kind(&g, "/api/segments/12/track.geojson", None),
            Some("track")
        );
        assert_eq!(
            query_kind(&Method::HEAD, "/api/segments/12/video", None),
            Some("video")
        );
        assert_eq!(
            query_kind(&Method::POST, "/api/segments/12/tags", None),
            None
        );
        assert_eq!(query_kind(&g, "/api/segments/x/video", None), None);
        assert!(is_upload_write(&Method::PATCH, "/api/uploads/abc"));
        assert!(is_upload_write(&Method::POST, "/api/uploads"));
        assert!(!is_upload_write(&Method::HEAD, "/api/uploads/abc"));
        assert!(!is_upload_write(&Method::POST, "/api/uploadsx"));
    }
}
