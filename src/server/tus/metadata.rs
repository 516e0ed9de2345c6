//! `Upload-Metadata` (tus creation): the comma-separated `key base64` pairs turned into the
//! segment metadata of a new upload session.
//!
//! Invariant: parsing only (nothing is created here); a value that is not base64 or UTF-8, a
//! key given twice, a missing required key or metadata that fails validation is refused with
//! a message naming it; unknown keys (tus clients add `filename`...) are ignored.

use base64::Engine;

use crate::store::NewUpload;
use crate::SegmentMeta;

/// Parses `Upload-Metadata` (comma-separated `key base64value` pairs) into a new upload's
/// metadata. Keys: officer, device, start, end (optional: read from the MP4 at completion),
/// gps (GPX or CSV text), category, case, tag (comma-separated lists). Others are ignored
/// (tus clients add `filename`, `filetype`...).
pub fn parse_metadata(raw: &str, length: u64) -> Result<NewUpload, String> {
    let mut fields: std::collections::BTreeMap<String, String> = Default::default();
    for pair in raw.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match pair.split_once(' ') {
            Some((k, v)) => (k, v.trim()),
            None => (pair, ""),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| format!("Upload-Metadata: the value of {key:?} is not base64"))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("Upload-Metadata: the value of {key:?} is not UTF-8 text"))?;
        if fields.insert(key.to_string(), text).is_some() {
            return Err(format!("Upload-Metadata: {key:?} is given twice"));
        }
    }
    let need = |k: &str| {
        fields
            .get(k)
            .cloned()
            .ok_or_else(|| format!("Upload-Metadata must name {k:?}"))
    };
    let officer = need("officer")?;
    let device = need("device")?;
    let start_us = crate::input::parse_time_or_unix(&need("start")?)
        .map_err(|e| format!("Upload-Metadata start: {e}"))?;
    let end = match fields.get("end") {
        Some(e) => Some(
            crate::input::parse_time_or_unix(e).map_err(|e| format!("Upload-Metadata end: {e}"))?,
        ),
        None => None,
    };
    let gps = match fields.get("gps") {
        None => Vec::new(),
        Some(t) if t.trim_start().starts_with('<') => {
            crate::input::parse_gpx(t.as_bytes(), "Upload-Metadata gps")
                .map_err(|e| e.to_string())?
        }
        Some(t) => crate::input::parse_csv(t.as_bytes(), "Upload-Metadata gps")
            .map_err(|e| e.to_string())?,
    };
    let list = |k: &str| -> Vec<String> {
        fields
            .get(k)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let meta = SegmentMeta {
        officer,
        device,
        start_us,
        end_us: end.unwrap_or(start_us),
        gps,
        categories: list("category"),
        cases: list("case"),
        tags: list("tag"),
    };
    let mut check = meta.clone();
    check.normalize();
    check
        .validate()
        .map_err(|e| format!("Upload-Metadata: {e}"))?;
    Ok(NewUpload {
        length,
        meta,
        end_known: end.is_some(),
    })
}
