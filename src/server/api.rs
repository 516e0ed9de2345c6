//! The JSON endpoints: search (`footage find` over HTTP), info, GPS track, stats, whoami,
//! health, video tickets, and the label and hold changes.
//!
//! Invariants:
//! - search takes the same parameters as `footage find`, parses them with the same functions,
//!   validates the same `Query` and prints the same lines (`FindLine`);
//! - every change goes through [`apply_change`], which refuses read-only callers (403) and
//!   records the caller's token name as the actor;
//! - every answer that reveals metadata (search, info, track, stats, a video ticket) is
//!   recorded in the audit log by [`record`] (the caller's name, the parameters and how much was
//!   revealed) before it is sent; if it cannot be recorded the request fails instead;
//! - releasing a legal hold needs the `holds` role: any other caller gets 403, and the refused
//!   attempt is recorded in the audit log (`release-refused`) before the answer;
//! - a request body is at most [`MAX_BODY`] bytes (413), a JSON object with no unknown fields (400),
//!   sent as `application/json` (415) within `body_timeout` (408).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{blocking, json, ApiError, App, Caller, MAX_BODY};
use crate::search::{FindLine, SearchArgs};
use crate::store::{parse_id, query_details, Change};

/// Results per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// Bytes of an oversized body read and dropped before answering 413.
const DRAIN: usize = 1 << 20;
/// Largest `limit` accepted (the library's page cap).
pub const MAX_LIMIT: usize = crate::index::query::MAX_PAGE;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/whoami", get(whoami))
        .route("/api/stats", get(stats))
        .route("/api/segments", get(search))
        .route("/api/segments/{id}", get(info))
        .route("/api/segments/{id}/track.geojson", get(track))
        .route("/api/segments/{id}/video-url", get(video_url))
        .route("/api/segments/{id}/hold", post(hold))
        .route("/api/segments/{id}/release", post(release))
        .route("/api/segments/{id}/category", post(category))
        .route("/api/segments/{id}/tags", post(tags))
}

/// A segment id from the path: 400 unless a positive whole number.
pub(crate) fn segment_id(raw: &str) -> Result<u64, ApiError> {
    parse_id(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The `{id}` of a path, checked: a bad one is a JSON 400 whatever made it bad.
pub struct SegId(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for SegId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("bad segment id: {e}")))?;
        segment_id(&raw).map(SegId)
    }
}

async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({"ok": true}))
}

#[derive(Serialize)]
struct WhoAmI<'a> {
    name: &'a str,
    read_only: bool,
    /// `read`, `write` or `holds`.
    role: &'a str,
    /// True when the store has tokens (requests need one).
    tokens_required: bool,
}

async fn whoami(Extension(caller): Extension<Caller>) -> Response {
    json(
        StatusCode::OK,
        &WhoAmI {
            name: &caller.name,
            read_only: caller.read_only,
            role: caller.role.as_str(),
            tokens_required: caller.by_token,
        },
    )
}

/// Records what a request revealed, under the caller's name: an access, so with a batched
/// fsync (`Action::durability`). Runs on the blocking pool (inside the caller's `blocking`
/// closure).
pub(crate) fn record(
    store: &crate::Store,
    caller: &str,
    action: crate::audit::Action,
    segment: Option<u64>,
    mut details: serde_json::Value,
) -> Result<(), ApiError> {
    if let Some(m) = details.as_object_mut() {
        m.insert("via".into(), "http".into());
    }
    store.audit(caller, action, segment, details)?;
    Ok(())
}

async fn stats(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let s = blocking(move || {
        let s = store.stats()?;
        record(
            &store,
            &caller.name,
            crate::audit::Action::Stats,
            None,
            serde_json::json!({}),
        )?;
        Ok(s)
    })
    .await?;
    // The service's state (background jobs, uploads, watched folder: src/service).
    let mut v = serde_json::to_value(&s).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(m) = v.as_object_mut() {
        m.insert("service".into(), app.ops.status());
    }
    Ok(json(StatusCode::OK, &v))
}

/// The search a query string asks for ([`crate::search::from_query_string`]); 400 if bad.
pub(crate) fn find_args(raw: &str) -> Result<SearchArgs, ApiError> {
    crate::search::from_query_string(raw).map_err(ApiError::BadRequest)
}

#[derive(Serialize)]
struct SearchPage {
    segments: Vec<FindLine>,
    next: Option<String>,
}

async fn search(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut args = find_args(raw.as_deref().unwrap_or(""))?;
    args.limit = Some(args.limit.unwrap_or(DEFAULT_LIMIT));
    let q = args.query();
    q.validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let store = app.store.clone();
    let page = blocking(move || {
        let with_hits = q.area.is_some();
        let page = store.find(&q)?;
        let segments = page
            .results
            .iter()
            .map(|r| FindLine::of(&store, r, with_hits))
            .collect::<crate::Result<Vec<_>>>()?;
        record(
            &store,
            &caller.name,
            crate::audit::Action::Query,
            None,
            serde_json::json!({
                "query": query_details(&q),
                "results": segments.len(),
                "next": page.next.is_some(),
            }),
        )?;
        Ok(SearchPage {
            segments,
            next: page.next,
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &page))
}

async fn info(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    SegId(id): SegId,
) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let info = blocking(move || {
        let info = store.info(id)?;
        record(
            &store,
            &caller.name,
            crate::audit::Action::Info,
            Some(id),
            serde_json::json!({}),
        )?;
        Ok(info)
    })
    .await?;
    Ok(json(StatusCode::OK, &info))
}

async fn track(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    SegId(id): SegId,
) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let fixes = blocking(move || {
        let fixes = store.track(id)?;
        let details = serde_json::json!({"format": "geojson", "fixes": fixes.len()});
        record(
            &store,
            &caller.name,
            crate::audit::Action::Track,
            Some(id),
            details,
        )?;
        Ok(fixes)
    })
    .await?;
    let mut resp = json(StatusCode::OK, &crate::meta::track_geojson(id, &fixes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/geo+json"),
    );
    Ok(resp)
}

/// A URL for a `<video>` element, which cannot send an Authorization header: with tokens it
/// carries a ticket that works for this segment's video only, for a few hours, and only while
/// the caller's token exists.
async fn video_url(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    SegId(id): SegId,
) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let name = caller.name.clone();
    let ticket = caller.by_token;
    blocking(move || {
        store.info(id)?;
        record(
            &store,
            &name,
            crate::audit::Action::Ticket,
            Some(id),
            serde_json::json!({"ticket": ticket}),
        )
    })
    .await?;
    let path = format!("/api/segments/{id}/video");
    let url = if caller.by_token {
        format!("{path}?ticket={}", app.tickets.issue(&caller, &path)?)
    } else {
        path
    };
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "url": url,
            "expires_in_s": super::auth::TICKET_LIFETIME.as_secs(),
        }),
    ))
}

/// Reads a JSON request body: `application/json`, at most [`MAX_BODY`] bytes, no unknown
/// fields, within the body timeout.
pub(crate) async fn json_body<T: DeserializeOwned>(app: &App, req: Request) -> Result<T, ApiError> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as Content-Type: application/json".into(),
        ));
    }
    let too_large = || ApiError::TooLarge(format!("the body is larger than {MAX_BODY} bytes"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut stream = req.into_body().into_data_stream();
        let mut bytes = Vec::new();
        while let Some(frame) = stream.next().await {
            let frame =
                frame.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
            if bytes.len() + frame.len() > MAX_BODY {
                // Read (and drop) a little more so that a client still sending sees the 413
                // instead of a reset connection; past DRAIN the connection is just closed.
                let mut drained = bytes.len() + frame.len();
                while drained <= DRAIN {
                    match stream.next().await {
                        Some(Ok(f)) => drained += f.len(),
                        _ => break,
                    }
                }
                return Err(too_large());
            }
            bytes.extend_from_slice(&frame);
        }
        Ok(bytes)
    };
    let bytes = tokio::time::timeout(app.body_timeout, read)
        .await
        .map_err(|_| ApiError::Timeout("the body did not arrive in time".into()))??;
    // An object, always: serde would also take a struct from an array (`[]` for `{}`).
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object, e.g. {}".into(),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))
}

pub(crate) fn refuse_read_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.read_only {
        return Err(ApiError::Forbidden(format!(
            "token {:?} is read-only: it cannot change segments",
            caller.name
        )));
    }
    Ok(())
}

/// The one path of every change: refuses read-only callers, then applies it durably with the
/// caller's name as the actor. (Audit recording belongs here.)
pub async fn apply_change(
    app: &App,
    caller: &Caller,
    id: u64,
    change: Change,
) -> Result<crate::SegmentInfo, ApiError> {
    refuse_read_only(caller)?;
    if matches!(change, Change::Release(_)) && !caller.role.may_release() {
        return Err(ApiError::Forbidden(format!(
            "token {:?} may not release legal holds (it needs the holds role)",
            caller.name
        )));
    }
    let store = app.store.clone();
    let actor = caller.name.clone();
    blocking(move || Ok(store.change(id, &change, &actor)?)).await
}

/// Parses the id, refuses read-only callers before reading the body, reads the body, and
/// applies the change it describes.
async fn change_endpoint<T: DeserializeOwned>(
    app: Arc<App>,
    caller: Caller,
    id: u64,
    req: Request,
    to_change: impl FnOnce(T) -> Change,
) -> Result<Response, ApiError> {
    refuse_read_only(&caller)?;
    let body: T = json_body(&app, req).await?;
    let info = apply_change(&app, &caller, id, to_change(body)).await?;
    Ok(json(StatusCode::OK, &info))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseBody {
    case: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryBody {
    category: String,
    #[serde(default)]
    remove: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    tag: String,
    #[serde(default)]
    remove: bool,
}

async fn hold(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    SegId(id): SegId,
    req: Request,
) -> Result<Response, ApiError> {
    change_endpoint(app, caller, id, req, |b: CaseBody| Change::Hold(b.case)).await
}

/// Releasing a hold lets footage be deleted: it needs the `holds` role. A refused attempt is
/// audited (with the case, when the body names one) before the 403.
async fn release(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    SegId(id): SegId,
    req: Request,
) -> Result<Response, ApiError> {
    if !caller.role.may_release() {
        let case = json_body::<CaseBody>(&app, req).await.ok().map(|b| b.case);
        let store = app.store.clone();
        let (actor, role) = (caller.name.clone(), caller.role);
        let details = serde_json::json!({ "case": case, "role": role.as_str() });
        let recorded = blocking(move || {
            Ok(store.audit(
                &actor,
                crate::audit::Action::ReleaseRefused,
                Some(id),
                details,
            )?)
        })
        .await;
        if let Err(e) = recorded {
            tracing::error!(
                target: "footage::server",
                segment = id,
                error = %e,
                "cannot audit a refused release"
            );
        }
        return Err(ApiError::Forbidden(format!(
            "token {:?} has the role {role}: releasing a legal hold needs the holds role \
             (footage token add NAME --role holds)",
            caller.name
        )));
    }
    change_endpoint(app, caller, id, req, |b: CaseBody| Change::Release(b.case)).await
}

async fn category(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    SegId(id): SegId,
    req: Request,
) -> Result<Response, ApiError> {
    change_endpoint(app, caller, id, req, |b: CategoryBody| {
        if b.remove {
            Change::Uncategorize(b.category)
        } else {
            Change::Categorize(b.category)
        }
    })
    .await
}

async fn tags(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    SegId(id): SegId,
    req: Request,
) -> Result<Response, ApiError> {
    change_endpoint(app, caller, id, req, |b: TagBody| {
        if b.remove {
            Change::Untag(b.tag)
        } else {
            Change::Tag(b.tag)
        }
    })
    .await
}

#[cfg(test)]
mod tests;
