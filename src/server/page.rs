//! The web review page: one HTML file, one script and one style sheet, compiled into the
//! binary with `include_str!` so the page works with no internet access and no files beside
//! the binary.
//!
//! Invariant: the assets hold no footage data (everything comes from the API with the user's
//! token), so they are served to anyone, like `/healthz`.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::App;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// (path, content type, body) of every asset.
const ASSETS: [(&str, &str, &str); 4] = [
    ("/", "text/html; charset=utf-8", INDEX_HTML),
    ("/index.html", "text/html; charset=utf-8", INDEX_HTML),
    ("/app.js", "text/javascript; charset=utf-8", APP_JS),
    ("/style.css", "text/css; charset=utf-8", STYLE_CSS),
];

/// Whether `path` is one of the page's assets.
pub fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|(p, _, _)| *p == path)
}

fn asset(ctype: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub fn routes() -> Router<Arc<App>> {
    let mut r = Router::new();
    for (path, ctype, body) in ASSETS {
        r = r.route(path, get(move || async move { asset(ctype, body) }));
    }
    r
}
