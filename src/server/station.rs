//! The review page's station endpoints: `GET /api/latest` (the store's newest segments, what
//! the page opens on) and `GET /api/config` (what the page needs to draw its map).
//!
//! Invariants:
//! - `/api/latest` reveals metadata like a search, so it takes the same path as one: any
//!   caller (role read and up), parameters checked before the store is touched (400), the
//!   answer built as `footage find` lines (`FindLine`) and recorded in the audit log
//!   (action `query`, details `{"latest": N, "results": K, "via": "http"}`) before it is sent;
//! - `/api/config` reveals no footage, only footage.toml's `[map]` table (tile URL template,
//!   attribution, zoom), so it is not audited, like `whoami`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;

use super::api::record;
use super::{blocking, json, ApiError, App, Caller};
use crate::search::FindLine;

/// Segments `/api/latest` returns when the request names no `limit`.
pub const DEFAULT_LATEST: usize = 20;
/// Deepest zoom of the degree grid (drawn in the browser, so any depth works; 22 is ~4 cm a
/// pixel, past what GPS can tell apart).
const GRID_MAX_ZOOM: u8 = 22;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/latest", get(latest))
        .route("/api/config", get(config))
}

/// `limit` from a query string: 1 to `MAX_PAGE`, default [`DEFAULT_LATEST`]; nothing else is
/// accepted.
pub(crate) fn latest_limit(raw: &str) -> Result<usize, ApiError> {
    let mut limit = None;
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        match &*k {
            "limit" if limit.is_none() => {
                let n = v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=crate::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit: must be a number from 1 to {}",
                            crate::MAX_PAGE
                        ))
                    })?;
                limit = Some(n);
            }
            "limit" => return Err(ApiError::BadRequest("limit is given twice".into())),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {other:?}; known: limit"
                )))
            }
        }
    }
    Ok(limit.unwrap_or(DEFAULT_LATEST))
}

#[derive(Serialize)]
struct LatestPage {
    /// Newest first.
    segments: Vec<FindLine>,
}

async fn latest(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let n = latest_limit(raw.as_deref().unwrap_or(""))?;
    let store = app.store.clone();
    let page = blocking(move || {
        let results = store.latest(n)?;
        let segments = results
            .iter()
            .map(|r| FindLine::of(&store, r, false))
            .collect::<crate::Result<Vec<_>>>()?;
        record(
            &store,
            &caller.name,
            crate::audit::Action::Query,
            None,
            serde_json::json!({"latest": n, "results": segments.len()}),
        )?;
        Ok(LatestPage { segments })
    })
    .await?;
    Ok(json(StatusCode::OK, &page))
}

#[derive(Serialize)]
struct MapOut<'a> {
    /// Tile URL template, or null: draw the degree grid.
    tiles: Option<&'a str>,
    attribution: Option<&'a str>,
    max_zoom: u8,
}

async fn config(
    State(app): State<Arc<App>>,
    Extension(_caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let map = app.store.config().map.as_ref();
    let out = MapOut {
        tiles: map.map(|m| m.tiles.as_str()),
        attribution: map.and_then(|m| m.attribution.as_deref()),
        max_zoom: map.map_or(GRID_MAX_ZOOM, |m| m.max_zoom()),
    };
    Ok(json(StatusCode::OK, &serde_json::json!({ "map": out })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_params() {
        assert_eq!(latest_limit("").unwrap(), DEFAULT_LATEST);
        assert_eq!(latest_limit("limit=5").unwrap(), 5);
        for bad in [
            "limit=0",
            "limit=x",
            "limit=1000000",
            "limit=1&limit=2",
            "officer=A",
        ] {
            assert!(latest_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn latest_lists_the_newest_starts_first_and_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::open_or_create_default(dir.path()).unwrap();
        // Ingested out of time order: ids do not follow start times.
        let starts = [
            3_000_000_000i64,
            1_000_000_000,
            5_000_000_000,
            2_000_000_000,
        ];
        for (i, start_us) in starts.iter().enumerate() {
            let meta = crate::SegmentMeta {
                officer: format!("MET-{i}"),
                device: "AX-1".into(),
                start_us: *start_us,
                end_us: start_us + 1_000_000,
                ..Default::default()
            };
            store.ingest_bytes(meta, &[i as u8; 100]).unwrap();
        }
        let mut want: Vec<(i64, u64)> = starts
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as u64 + 1))
            .collect();
        want.sort_unstable_by(|a, b| b.cmp(a));
        let want: Vec<u64> = want.iter().take(3).map(|w| w.1).collect();
        let got: Vec<u64> = store.latest(3).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(got, want);
        assert!(store.latest(0).is_err());
        assert!(store.latest(crate::MAX_PAGE + 1).is_err());

        let opts = crate::server::ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            publish_head_every: None,
            ..Default::default()
        };
        let server = crate::server::spawn(store.clone(), opts).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let get = |path: &str| {
            let r = agent
                .get(&format!("{}{path}", server.url()))
                .call()
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&r.into_body().read_to_vec().unwrap()).unwrap();
            (status, body)
        };
        let (status, body) = get("/api/latest?limit=3");
        assert_eq!(status, 200, "{body}");
        let ids: Vec<u64> = body["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, want);
        assert_eq!(get("/api/latest?limit=0").0, 400);
        assert_eq!(get("/api/latest?officer=x").0, 400);
        let (status, cfg) = get("/api/config");
        assert_eq!(status, 200);
        assert!(cfg["map"]["tiles"].is_null(), "{cfg}");
        drop(server);
        let audited = store
            .audit_entries(None, None)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "query" && e.details.get("latest").is_some())
            .collect::<Vec<_>>();
        assert_eq!(audited.len(), 1, "{audited:?}");
        assert_eq!(audited[0].details["results"], 3);
        assert_eq!(audited[0].details["via"], "http");
    }
}
