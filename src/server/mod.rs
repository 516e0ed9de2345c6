//! `footage serve`: an HTTP API over a store (search, metadata, GPS tracks, video with Range
//! requests, label and hold changes) and the web review page that uses it.
//!
//! ```text
//!  TCP accept (max_connections, max_connections_per_client) ─ hyper http1 (header timeout) ─ idle watchdog per connection
//!        └─ axum Router ─ security headers ─ auth::check (token / ticket / loopback rules)
//!              ├─ page.rs    GET /, /app.js, /style.css, /vendor/leaflet-*/  (bundled in the binary)
//!              ├─ station.rs GET /api/latest, /api/config        (the page's opening view, map)
//!              ├─ api.rs     search, info, track, stats, whoami, changes  ─┐
//!              ├─ keep.rs    pins and restores of a segment or a case    ─┤
//!              ├─ video.rs   GET/HEAD video (Range, ETag, 304, 416)      ─┤
//!              └─ tus.rs     resumable uploads at /api/uploads (tus 1.0) ─┴─ Store (blocking pool)
//! ```
//!
//! Invariants:
//! - every store call runs on tokio's blocking pool, never on a reactor thread (one exception:
//!   the audit entry of a video body dropped before its end, a single buffered append);
//! - every read of video bytes goes through [`video::open_video`] and every change through
//!   [`api::apply_change`];
//! - a video is streamed chunk by chunk through a [`crate::SegmentReader`] (CRC-checked), never
//!   loaded whole; a corrupt chunk ends the response early (the connection is cut) rather
//!   than sending wrong bytes;
//! - hostile input gets a 4xx JSON error `{"error": ...}` and never changes the store;
//! - one client (IP address, IPv6 /64) holds at most `max_connections_per_client` connections:
//!   more are closed as soon as they are accepted (admission.rs), so idle sockets from one
//!   client cannot take the slots of others;
//! - every request that reveals footage or metadata is in the audit log with the caller's name
//!   and what it revealed (api.rs, video.rs); token changes made by `footage token` are copied
//!   into it by the server (token_audit.rs);
//! - a connection with no bytes moving for `idle_timeout`, or whose request head takes longer
//!   than `header_timeout`, is closed;
//! - while it runs, the audit chain head is published to the cloud tier every
//!   `publish_head_every` when the chain moved (only for a store that already has a head
//!   there), and never over a head the local chain does not contain.
//!
//! Here: options, errors, the shared `App` and the router; `run.rs` runs it (bind, accept
//! loop, drain, head publication, `spawn`).

pub mod admission;
pub mod api;
pub mod auth;
pub mod keep;
pub mod ops;
pub mod page;
mod run;
pub mod station;
pub mod token_audit;
pub mod tokens;
pub mod tus;
pub mod video;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::Store;

pub use auth::Caller;
pub use run::{serve, spawn, RunningServer, Server};
pub use tokens::{Role, TokenEntry, TokenSet};

/// At most one log event per this long about connections refused by the per-client cap.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Largest request body accepted (JSON bodies of changes).
pub const MAX_BODY: usize = 64 * 1024;

/// How a server is run.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on; port 0 picks a free one ([`Server::local_addr`] tells which).
    pub addr: SocketAddr,
    /// The actor of changes when the store has no tokens (loopback only).
    pub local_actor: String,
    /// One log event per request (`footage::http`, info).
    pub log_requests: bool,
    /// A request head must arrive within this.
    pub header_timeout: Duration,
    /// A connection on which no byte moves for this long is closed.
    pub idle_timeout: Duration,
    /// A request body must arrive within this.
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connections open at once from one client (an IP address; an IPv6 client is its /64);
    /// more from it are closed as soon as they are accepted.
    pub max_connections_per_client: usize,
    /// Video tickets kept at once per token name.
    pub max_tickets_per_user: usize,
    /// Publish the audit chain head to the cloud tier this often, when the chain moved and the
    /// store already has a head there ([`Store::republish_audit_head`]); None: never.
    /// Default = every 5 minutes ([`PUBLISH_HEAD_EVERY`]).
    pub publish_head_every: Option<Duration>,
    /// On shutdown, requests in flight may take this long to finish before their connections
    /// are cut. Default 5 s (`footage serve --drain-timeout`, default 30 s, sets it).
    pub drain_timeout: Duration,
    /// Metrics, drain state and service status shared with `footage serve`'s background work
    /// (src/service); None: the server makes its own (metrics only).
    pub ops: Option<Arc<ops::Ops>>,
    /// Steps by which tus upload workers lower their scheduling priority, so searches and
    /// video reads come first when both want a core ([`crate::priority`]). Default
    /// [`crate::priority::BULK_NICE`]; 0 = the server's own priority.
    pub bulk_nice: i32,
}

pub use crate::config::service::PUBLISH_HEAD_EVERY;

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            local_actor: "local".into(),
            log_requests: false,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            max_connections: 512,
            max_connections_per_client: 64,
            max_tickets_per_user: auth::MAX_TICKETS_PER_USER,
            publish_head_every: Some(PUBLISH_HEAD_EVERY),
            drain_timeout: Duration::from_secs(5),
            ops: None,
            bulk_nice: crate::priority::BULK_NICE,
        }
    }
}

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to listen on {0}, which is not a loopback address, while the store has no access tokens: add one with `footage token add NAME` (or listen on 127.0.0.1)")]
    NoTokens(SocketAddr),
    #[error(transparent)]
    Store(#[from] crate::Error),
    #[error("server runtime: {0}")]
    Runtime(String),
}

/// An API error: answered as `{"error": "..."}` with the matching status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Store(#[from] crate::Error),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use crate::Error as E;
        match self {
            ApiError::Store(e) => match e {
                E::NotFound(_) => StatusCode::NOT_FOUND,
                E::Invalid(_) => StatusCode::BAD_REQUEST,
                E::Unavailable { .. } | E::Poisoned { .. } | E::Locked { .. } => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                E::DiskFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(target: "footage::server", status = status.as_u16(), error = %self, "request failed");
        }
        let mut resp = json(status, &serde_json::json!({ "error": self.to_string() }));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"footage\""),
            );
        }
        resp
    }
}

/// A JSON response.
pub fn json(status: StatusCode, v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from(body),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"error\":\"cannot encode the response: {e}\"}}"),
        )
            .into_response(),
    }
}

/// Runs a store call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

/// State shared by every request.
pub struct App {
    pub store: Store,
    /// Segments opened lately for video (`video/opened.rs`).
    pub videos: video::opened::OpenedVideos,
    pub tokens: auth::TokenCache,
    pub tickets: auth::Tickets,
    /// Bound to a non-loopback address: refuse everything while no token exists.
    pub require_tokens: bool,
    pub local_actor: String,
    pub body_timeout: Duration,
    /// Metrics, the draining flag and the service status (src/service).
    pub ops: Arc<ops::Ops>,
    /// Priority steps of bulk work (upload workers), from [`ServerOptions::bulk_nice`].
    pub bulk_nice: i32,
}

/// The router: every endpoint, the auth check and the security headers.
pub fn router(app: Arc<App>, log_requests: bool) -> Router {
    use tower_http::set_header::SetResponseHeaderLayer;
    // Images may also come from the station's tile server, if footage.toml names one.
    let tile_origin = app
        .store
        .config()
        .map
        .as_ref()
        .and_then(|m| m.origin().ok());
    let csp = page::content_security_policy(tile_origin.as_deref());
    let csp = HeaderValue::from_str(&csp)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let r = Router::new()
        .merge(page::routes())
        .merge(api::routes())
        .merge(keep::routes())
        .merge(station::routes())
        .merge(video::routes())
        .merge(ops::http::routes())
        .merge(tus::routes())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
        })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            auth::check,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::Internal("the request handler panicked".into()).into_response()
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            ops::http::layer,
        ))
        .with_state(app);
    if log_requests {
        r.layer(axum::middleware::from_fn(log_request))
    } else {
        r
    }
}

/// One log event per request: method, path (never the query: it may hold a ticket), status,
/// time to the response head.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let t = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    tracing::info!(
        target: "footage::http",
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        ms = (t.elapsed().as_secs_f64() * 1e4).round() / 10.0,
        "{method} {path} {}",
        resp.status().as_u16()
    );
    resp
}
