//! The web review page: one HTML file, one script and one style sheet, plus the vendored map
//! library (Leaflet, BSD-2, assets/vendor/leaflet/), compiled into the binary with
//! `include_str!`/`include_bytes!` so the page works with no internet access and no files
//! beside the binary.
//!
//! Invariants:
//! - the assets hold no footage data (everything comes from the API with the user's token),
//!   so they are served to anyone, like `/healthz`;
//! - the page's own files are `no-cache` (a new binary shows its new page at once); the
//!   vendored files carry their version in the path (`/vendor/leaflet-1.9.4/`) and may be
//!   cached for a year, since the bytes under one path never change;
//! - the Content-Security-Policy ([`content_security_policy`]) allows nothing from another
//!   origin, except images from the one tile server footage.toml names (`[map] tiles`).

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::App;

/// Version of the vendored Leaflet; it is in the path of every vendored file.
pub const LEAFLET_VERSION: &str = "1.9.4";

/// `Cache-Control` of the page's own files: revalidate every time.
const CACHE_PAGE: &str = "no-cache";
/// `Cache-Control` of vendored files, whose path changes with their version.
const CACHE_VERSIONED: &str = "public, max-age=31536000, immutable";

/// One file of the page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Under a versioned path: cached for a year.
    versioned: bool,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const PNG: &str = "image/png";
const TEXT: &str = "text/plain; charset=utf-8";

macro_rules! own {
    ($path:literal, $ctype:expr, $file:literal) => {
        Asset {
            path: $path,
            content_type: $ctype,
            body: include_bytes!($file),
            versioned: false,
        }
    };
}

macro_rules! vendored {
    ($name:literal, $ctype:expr) => {
        Asset {
            path: concat!("/vendor/leaflet-1.9.4/", $name),
            content_type: $ctype,
            body: include_bytes!(concat!("assets/vendor/leaflet/", $name)),
            versioned: true,
        }
    };
}

/// Every asset.
static ASSETS: [Asset; 12] = [
    own!("/", HTML, "assets/index.html"),
    own!("/index.html", HTML, "assets/index.html"),
    own!("/app.js", JS, "assets/app.js"),
    own!("/style.css", CSS, "assets/style.css"),
    vendored!("leaflet.js", JS),
    vendored!("leaflet.css", CSS),
    vendored!("LICENSE", TEXT),
    vendored!("images/layers.png", PNG),
    vendored!("images/layers-2x.png", PNG),
    vendored!("images/marker-icon.png", PNG),
    vendored!("images/marker-icon-2x.png", PNG),
    vendored!("images/marker-shadow.png", PNG),
];

/// Whether `path` is one of the page's assets.
pub fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

/// The Content-Security-Policy of every response: scripts, styles, media and API calls from
/// the server itself only; images also as `data:` URLs and, when footage.toml names a tile
/// server, from that one origin (already validated by `MapConfig::validate`: a bare
/// `scheme://host[:port]`).
pub fn content_security_policy(tile_origin: Option<&str>) -> String {
    let tiles = tile_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; \
         media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'"
    )
}

fn respond(a: &Asset) -> Response {
    let cache = if a.versioned {
        CACHE_VERSIONED
    } else {
        CACHE_PAGE
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, cache),
        ],
        a.body,
    )
        .into_response()
}

pub fn routes() -> Router<Arc<App>> {
    let mut r = Router::new();
    for a in ASSETS.iter() {
        r = r.route(a.path, get(move || async move { respond(a) }));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_paths_carry_the_version() {
        for a in ASSETS.iter().filter(|a| a.versioned) {
            assert!(
                a.path
                    .starts_with(&format!("/vendor/leaflet-{LEAFLET_VERSION}/")),
                "{}",
                a.path
            );
        }
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        for a in ASSETS
            .iter()
            .filter(|a| a.content_type != PNG && a.content_type != TEXT)
        {
            if a.path != "/" && a.path != "/index.html" {
                assert!(html.contains(a.path), "index.html does not load {}", a.path);
            }
        }
    }

    #[test]
    fn csp_names_no_origin_but_the_tile_server() {
        let plain = content_security_policy(None);
        assert!(plain.contains("img-src 'self' data:;"), "{plain}");
        assert!(!plain.contains("http"), "{plain}");
        let tiles = content_security_policy(Some("https://tiles.station.local"));
        assert!(
            tiles.contains("img-src 'self' data: https://tiles.station.local;"),
            "{tiles}"
        );
        // Only img-src widens.
        assert_eq!(tiles.matches("https://tiles.station.local").count(), 1);
        assert!(tiles.contains("script-src 'self';") && tiles.contains("connect-src 'self';"));
    }

    /// GET `path` from a running server: (status, content type, cache control, CSP, body).
    fn fetch(base: &str, path: &str) -> (u16, String, String, String, Vec<u8>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent.get(&format!("{base}{path}")).call().unwrap();
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (status, ct, cc, csp) = (
            r.status().as_u16(),
            h("content-type"),
            h("cache-control"),
            h("content-security-policy"),
        );
        let body = r.into_body().read_to_vec().unwrap();
        (status, ct, cc, csp, body)
    }

    fn serve(store: crate::Store) -> crate::server::RunningServer {
        let opts = crate::server::ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            publish_head_every: None,
            ..Default::default()
        };
        crate::server::spawn(store, opts).unwrap()
    }

    #[test]
    fn asset_routes_have_their_types_cache_headers_and_csp() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::open_or_create_default(dir.path()).unwrap();
        let server = serve(store);
        for a in ASSETS.iter() {
            let (status, ct, cc, csp, body) = fetch(&server.url(), a.path);
            assert_eq!(status, 200, "{}", a.path);
            assert_eq!(ct, a.content_type, "{}", a.path);
            assert_eq!(body, a.body, "{}", a.path);
            let want = if a.versioned {
                CACHE_VERSIONED
            } else {
                CACHE_PAGE
            };
            assert_eq!(cc, want, "{}", a.path);
            assert_eq!(csp, content_security_policy(None), "{}", a.path);
        }
        // No other version of the library is served.
        assert_eq!(
            fetch(&server.url(), "/vendor/leaflet-1.9.3/leaflet.js").0,
            404
        );
    }

    #[test]
    fn a_configured_tile_server_is_the_one_origin_images_may_come_from() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::open_or_create_default(dir.path())
            .unwrap()
            .close()
            .unwrap();
        let cfg = dir.path().join(crate::CONFIG_FILE);
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text += "\n[map]\ntiles = \"https://tiles.station.local:8443/osm/{z}/{x}/{y}.png\"\n";
        std::fs::write(&cfg, text).unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let server = serve(store);
        let (_, _, _, csp, _) = fetch(&server.url(), "/");
        assert_eq!(
            csp,
            content_security_policy(Some("https://tiles.station.local:8443"))
        );
        assert!(csp.contains("img-src 'self' data: https://tiles.station.local:8443;"));
        drop(server);

        // A template that would widen the CSP beyond one origin refuses the open, naming the
        // file.
        let text = std::fs::read_to_string(&cfg).unwrap().replace(
            "/osm/{z}/{x}/{y}.png\"",
            "/osm/{z}/{x}/{y}.png; script-src *\"",
        );
        std::fs::write(&cfg, text).unwrap();
        match crate::Store::open(dir.path()) {
            Err(crate::Error::Config { path, what }) => {
                assert_eq!(path, cfg);
                assert!(what.contains("map.tiles"), "{what}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a bad [map] was accepted"),
        }
    }
}
