//! The optional `[map]` table of `footage.toml`: the station's own tile server for the review
//! page's map. Without it the page draws a degree grid and makes no request anywhere.
//!
//! ```toml
//! [map]
//! tiles = "https://tiles.station.local/{z}/{x}/{y}.png"
//! attribution = "© OpenStreetMap contributors"
//! max_zoom = 19
//! ```
//!
//! Invariants (checked by [`MapConfig::validate`] when the store is opened):
//! - `tiles` is an `http` or `https` URL template with `{z}`, `{x}` and `{y}` (or `{-y}`)
//!   and one fixed origin (no `{s}` subdomains), made only of URL characters (no quotes,
//!   spaces, `;` or `,`), so the origin the server adds to its Content-Security-Policy
//!   `img-src` ([`MapConfig::origin`]) is exactly one origin and cannot inject a directive;
//! - `attribution` is plain text (no control characters, at most [`MAX_ATTRIBUTION`] bytes):
//!   the page shows it as text, never as HTML;
//! - `max_zoom` is at most [`MAX_ZOOM`].

use serde::{Deserialize, Serialize};

/// Longest `attribution` accepted, in bytes.
pub const MAX_ATTRIBUTION: usize = 200;
/// Deepest zoom level a tile server may name (Leaflet's practical limit for raster tiles).
pub const MAX_ZOOM: u8 = 22;
/// Zoom used when `max_zoom` is absent (what OpenStreetMap-style servers render).
pub const DEFAULT_MAX_ZOOM: u8 = 19;
/// Longest `tiles` template accepted, in bytes.
const MAX_TEMPLATE: usize = 512;

/// The station's tile server (`[map]` in footage.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapConfig {
    /// URL template of the raster tiles, e.g. `https://tiles.station.local/{z}/{x}/{y}.png`.
    pub tiles: String,
    /// Text shown in the map's corner (the tiles' licence); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// Deepest zoom the server has tiles for; absent: 19 (`DEFAULT_MAX_ZOOM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_zoom: Option<u8>,
}

impl MapConfig {
    /// Checks the table; the error says what is wrong (the caller names the file).
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.tiles;
        if t.len() > MAX_TEMPLATE {
            return Err(format!("map.tiles is longer than {MAX_TEMPLATE} bytes"));
        }
        // URL characters only: no quote, space, ';' or ',' can reach the CSP header or the page.
        if let Some(c) = t
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&()*+=%{}".contains(*c)))
        {
            return Err(format!(
                "map.tiles {t:?} has the character {c:?}, which a tile URL template may not hold"
            ));
        }
        if !(t.starts_with("https://") || t.starts_with("http://")) {
            return Err(format!(
                "map.tiles {t:?} must start with https:// or http://"
            ));
        }
        for part in ["{z}", "{x}"] {
            if !t.contains(part) {
                return Err(format!("map.tiles {t:?} must contain {part}"));
            }
        }
        if !(t.contains("{y}") || t.contains("{-y}")) {
            return Err(format!("map.tiles {t:?} must contain {{y}} (or {{-y}})"));
        }
        self.origin()?;
        if let Some(a) = &self.attribution {
            if a.len() > MAX_ATTRIBUTION || a.chars().any(char::is_control) {
                return Err(format!(
                    "map.attribution must be plain text of at most {MAX_ATTRIBUTION} bytes"
                ));
            }
        }
        if self.max_zoom.is_some_and(|z| z > MAX_ZOOM) {
            return Err(format!("map.max_zoom must be at most {MAX_ZOOM}"));
        }
        Ok(())
    }

    /// The one origin tiles come from (`https://tiles.station.local`, with a port if not the
    /// scheme's), for the CSP's `img-src`.
    pub fn origin(&self) -> Result<String, String> {
        let bad = |why: &str| format!("map.tiles {:?}: {why}", self.tiles);
        // The authority ends at the first '/' after the scheme.
        let rest = self
            .tiles
            .split_once("://")
            .map(|(_, r)| r)
            .ok_or_else(|| bad("not a URL"))?;
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('{') {
            return Err(bad(
                "the host must be fixed ({s} subdomains are not supported: name one host)",
            ));
        }
        if authority.contains('@') {
            return Err(bad("a user name or password in the URL is not supported"));
        }
        let url = url::Url::parse(&self.tiles).map_err(|e| bad(&e.to_string()))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        let origin = url.origin();
        if !origin.is_tuple() {
            return Err(bad("no origin"));
        }
        Ok(origin.ascii_serialization())
    }

    /// `max_zoom`, or the default.
    pub fn max_zoom(&self) -> u8 {
        self.max_zoom.unwrap_or(DEFAULT_MAX_ZOOM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(tiles: &str) -> MapConfig {
        MapConfig {
            tiles: tiles.into(),
            attribution: None,
            max_zoom: None,
        }
    }

    #[test]
    fn origin_of_a_station_tile_server() {
        let m = map("https://tiles.station.local/{z}/{x}/{y}.png");
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.origin().as_deref(), Ok("https://tiles.station.local"));
        let m = map("http://10.1.2.3:8080/osm/{z}/{x}/{-y}.png?style=day");
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.origin().as_deref(), Ok("http://10.1.2.3:8080"));
        // The scheme's own port is left out, as browsers compare origins.
        assert_eq!(
            map("https://t.example:443/{z}/{x}/{y}.png")
                .origin()
                .as_deref(),
            Ok("https://t.example")
        );
    }

    #[test]
    fn templates_that_could_widen_the_csp_are_refused() {
        for bad in [
            "https://tiles.station.local/{z}/{x}/{y}.png; script-src *",
            "https://tiles.station.local/{z}/{x}/{y}.png https://evil.example",
            "https://a.example/{z}/{x}/{y}.png,https://b.example",
            "https://{s}.tile.example/{z}/{x}/{y}.png",
            "https://user:pw@tiles.example/{z}/{x}/{y}.png",
            "ftp://tiles.example/{z}/{x}/{y}.png",
            "javascript:alert(1)//{z}{x}{y}",
            "https://tiles.example/{z}/{x}.png",
            "https:///{z}/{x}/{y}.png",
            "https://tiles.example/\"{z}/{x}/{y}.png",
            "",
        ] {
            assert!(map(bad).validate().is_err(), "{bad}");
        }
        let mut m = map("https://tiles.example/{z}/{x}/{y}.png");
        m.attribution = Some("a\nb".into());
        assert!(m.validate().is_err());
        m.attribution = Some("© OpenStreetMap contributors".into());
        m.max_zoom = Some(MAX_ZOOM + 1);
        assert!(m.validate().is_err());
        m.max_zoom = Some(18);
        assert_eq!(m.validate(), Ok(()));
    }
}
