//! Keeping footage on the station over HTTP: pins and restores of one segment or of a case
//! (the same operations as `footage pin`, `unpin` and `restore --queue`; DESIGN.md §27).
//!
//! ```text
//! POST /api/segments/{id}/pin      {"until": "2027-03-01T00:00:00Z"} or {}  → the segment's info
//! POST /api/segments/{id}/unpin    {}                                      → the segment's info
//! POST /api/segments/{id}/restore  {}                                      → 202 queued / 200 local
//! POST /api/cases/{case}/pin|unpin|restore                                 → every segment of the case
//! ```
//!
//! Invariants:
//! - a read-only token is refused (403) before the body is read; an `ingest` token never gets
//!   here (auth.rs denies it every endpoint but uploads);
//! - the caller's token name is the actor of each change record and audit entry, as for holds;
//! - a restore over HTTP is only *queued*: the service's restore job brings the bytes back at
//!   `[service] restore_rate` (a multi-gigabyte restore never holds a request or a worker);
//!   the answer says how many segments wait in the queue;
//! - bodies follow the API's rules (JSON, no unknown fields, at most `MAX_BODY` bytes).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};

use super::api::{json_body, refuse_read_only, SegId};
use super::{blocking, json, ApiError, App, Caller};
use crate::input::time::parse_time;
use crate::{SegmentInfo, Store};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/segments/{id}/pin", post(pin))
        .route("/api/segments/{id}/unpin", post(unpin))
        .route("/api/segments/{id}/restore", post(restore))
        .route("/api/cases/{case}/pin", post(pin))
        .route("/api/cases/{case}/unpin", post(unpin))
        .route("/api/cases/{case}/restore", post(restore))
}

/// A pin's body: when it ends (RFC 3339), or nothing for a pin with no end.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    #[serde(default)]
    until: Option<String>,
}

/// The body of unpin and restore: `{}` (JSON, so that the API's rules on bodies hold).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// What a case operation answers: the segments it touched, as `info` shows them.
#[derive(Serialize)]
struct Segments {
    segments: Vec<SegmentInfo>,
}

/// What a restore request answers.
#[derive(Serialize)]
struct Queued {
    /// Segments added to the restore queue by this request.
    queued: usize,
    /// Segments of the request that are evicted (queued now or before): the service's
    /// restore job brings them back; `info` shows `local+cloud` once it has.
    waiting: usize,
    segments: Vec<SegmentInfo>,
}

/// What the caller named: one segment or a case's segments.
#[derive(Clone)]
enum Target {
    Segment(u64),
    Case(String),
}

impl Target {
    /// The ids it names (a case with no segments is 404, as on the CLI).
    fn ids(&self, store: &Store) -> Result<Vec<u64>, ApiError> {
        match self {
            Target::Segment(id) => Ok(vec![*id]),
            Target::Case(c) => {
                let ids = store.case_segments(c);
                if ids.is_empty() {
                    return Err(ApiError::NotFound(format!(
                        "no segment is linked to case {c:?}"
                    )));
                }
                Ok(ids)
            }
        }
    }
}

/// Refuses read-only callers, then reads the body.
async fn body<T: serde::de::DeserializeOwned>(
    app: &App,
    caller: &Caller,
    req: Request,
) -> Result<T, ApiError> {
    refuse_read_only(caller)?;
    json_body(app, req).await
}

async fn pin(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    let b: PinBody = body(&app, &caller, req).await?;
    let until = b
        .until
        .as_deref()
        .map(parse_time)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("until: {e}")))?;
    change(
        &app,
        &caller,
        target,
        move |s, id, actor| s.pin(id, until, actor),
        move |s, case, actor| s.pin_case(case, until, actor),
    )
    .await
}

async fn unpin(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    let Empty {} = body(&app, &caller, req).await?;
    change(&app, &caller, target, Store::unpin, Store::unpin_case).await
}

/// A pin or an unpin on the blocking pool, as the caller: one segment answers its `info`, a
/// case `{"segments": [info...]}`.
async fn change(
    app: &App,
    caller: &Caller,
    target: Target,
    one: impl FnOnce(&Store, u64, &str) -> crate::Result<SegmentInfo> + Send + 'static,
    case: impl FnOnce(&Store, &str, &str) -> crate::Result<Vec<SegmentInfo>> + Send + 'static,
) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let actor = caller.name.clone();
    blocking(move || {
        Ok(match target {
            Target::Segment(id) => json(StatusCode::OK, &one(&store, id, &actor)?),
            Target::Case(c) => json(
                StatusCode::OK,
                &Segments {
                    segments: case(&store, &c, &actor)?,
                },
            ),
        })
    })
    .await
}

async fn restore(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    target: Target,
    req: Request,
) -> Result<Response, ApiError> {
    let Empty {} = body(&app, &caller, req).await?;
    let store = app.store.clone();
    let actor = caller.name.clone();
    blocking(move || {
        let ids = target.ids(&store)?;
        // info first: an unknown segment is a 404 before anything is queued.
        let before = ids
            .iter()
            .map(|&id| store.info(id))
            .collect::<crate::Result<Vec<_>>>()?;
        let reason = match &target {
            Target::Segment(_) => "http".to_string(),
            Target::Case(c) => format!("http:case:{c}"),
        };
        let queued = store.queue_restore(&ids, &actor, &reason)?;
        let waiting = before
            .iter()
            .filter(|i| i.tier == crate::TierState::Cloud)
            .count();
        let status = if waiting > 0 {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        Ok(json(
            status,
            &Queued {
                queued,
                waiting,
                segments: before,
            },
        ))
    })
    .await
}

impl<S: Send + Sync> FromRequestParts<S> for Target {
    type Rejection = ApiError;

    /// The `{id}` of `/api/segments/{id}/...` (checked as [`SegId`] checks it) or the
    /// `{case}` of `/api/cases/{case}/...` (non-empty; a name no segment carries is a 404).
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.path().starts_with("/api/cases/") {
            let Path(case) = Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::BadRequest(format!("bad case: {e}")))?;
            if case.is_empty() {
                return Err(ApiError::BadRequest("the case is empty".into()));
            }
            return Ok(Target::Case(case));
        }
        let SegId(id) = SegId::from_request_parts(parts, state).await?;
        Ok(Target::Segment(id))
    }
}
