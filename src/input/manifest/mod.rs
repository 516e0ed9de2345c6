//! The `footage ingest --manifest FILE.jsonl` format: one JSON object per line, one clip each.
//!
//! ```text
//! {"file": "clips/a.mp4", "officer": "PC1234", "device": "CAM-07",
//!  "start": "2026-11-20T14:03:00Z", "end": null,
//!  "gps": [[1763647380, -33.8688, 151.2093]], "case": "C-2026-17", "tags": ["arrest"],
//!  "category": "evidence"}
//! ```
//!
//! Fields: `file`, `officer`, `device`, `start` are required; `end` (or null), `gps`
//! (`[[unix_seconds, lat, lon], ...]`) or `gps_file` (a GPX or CSV track), `case` or `cases`,
//! `tags`, `category` or `categories` are optional. Times are RFC 3339 strings or JSON numbers
//! of unix seconds. `gps` may also be a string holding GPX or CSV text (as a `gps_file`
//! would).
//!
//! A dock sidecar (`footage serve --watch`, [`parse_sidecar`]) is one such object for the
//! video beside it: the same fields and rules, `file` optional, `gps_file` refused.
//!
//! Invariants:
//! - blank lines are skipped; line numbers in errors are 1-based lines of the file;
//! - unknown fields, wrong JSON types, bad times, bad ids (per [`validate_id`]), `end` before
//!   `start`, and both `gps` and `gps_file` on one line are errors naming the line;
//! - relative `file` and `gps_file` paths are resolved against the manifest's directory;
//!   the clip itself is not opened here;
//! - each entry's GPS track is sorted by time (stable); `case`+`cases` and
//!   `category`+`categories` are concatenated in that order;
//! - a `gps` array is read point by point straight into [`GpsFix`] values (no JSON tree), and
//!   refused as soon as it holds more than [`MAX_GPS_FIXES`](crate::meta::MAX_GPS_FIXES)
//!   points: reading a manifest takes its text plus 16 bytes per fix, whatever it holds.
//!
//! Here: entries, reading and the line and sidecar rules; `fields.rs` (the fields read by
//! hand: labels, times, the `gps` array); `tests.rs`.

mod fields;

use fields::{GpsPoints, Labels, Scalar, GPS_ERROR_MARK};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::meta::{validate_id, GpsFix};

use super::gps::parse_gps_file;
use super::time::{format_time, parse_time, parse_time_or_unix, unix_seconds_to_us};
use super::InputError;

/// Largest manifest file read by [`read_manifest`]: 256 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// One clip to ingest, as described by one manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// 1-based line of the manifest this entry came from.
    pub line: usize,
    pub file: PathBuf,
    pub officer: String,
    pub device: String,
    pub start_us: i64,
    pub end_us: Option<i64>,
    pub gps: Vec<GpsFix>,
    pub cases: Vec<String>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    /// Required on a manifest line; optional in a dock sidecar ([`parse_sidecar`]).
    #[serde(default)]
    file: Option<String>,
    officer: String,
    device: String,
    start: Scalar,
    #[serde(default)]
    end: Option<Scalar>,
    #[serde(default)]
    gps: Option<GpsPoints>,
    #[serde(default)]
    gps_file: Option<String>,
    #[serde(default)]
    case: Option<String>,
    #[serde(default)]
    cases: Option<Labels>,
    #[serde(default)]
    tags: Option<Labels>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    categories: Option<Labels>,
}

/// Reads and parses the manifest at `path`; relative paths inside it are resolved against
/// its directory.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestEntry>, InputError> {
    let len = std::fs::metadata(path)
        .map_err(|e| InputError::io(path, e))?
        .len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    if len > MAX_MANIFEST_BYTES {
        return Err(InputError::invalid(format!(
            "{name}: manifest is larger than {} MiB; split it into several files",
            MAX_MANIFEST_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| InputError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        InputError::invalid(format!(
            "{name}: manifest is not UTF-8 text (bad byte at offset {}); save it as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    parse_manifest_named(&text, base, &name)
}

/// Parses manifest text; errors are prefixed `manifest line N`.
pub fn parse_manifest(text: &str, base_dir: &Path) -> Result<Vec<ManifestEntry>, InputError> {
    parse_manifest_named(text, base_dir, "manifest")
}

/// Parses manifest text; errors are prefixed `{name} line N`.
pub fn parse_manifest_named(
    text: &str,
    base_dir: &Path,
    name: &str,
) -> Result<Vec<ManifestEntry>, InputError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let line = i + 1;
        if raw_line.trim().is_empty() {
            continue;
        }
        let at = format!("{name} line {line}");
        let entry = parse_line(raw_line, line, base_dir).map_err(|e| e.context(&at))?;
        entries.push(entry);
    }
    Ok(entries)
}

fn invalid(what: String) -> InputError {
    InputError::invalid(what)
}

fn json_error(e: &serde_json::Error) -> InputError {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);
    if let Some(gps) = message.strip_prefix(GPS_ERROR_MARK) {
        return invalid(gps.to_string());
    }
    invalid(format!(
        "{message} (column {}); each line must be one JSON object such as \
         {{\"file\": \"a.mp4\", \"officer\": \"PC1\", \"device\": \"CAM1\", \
         \"start\": \"2026-11-20T14:03:00Z\"}}",
        e.column()
    ))
}

/// Unix seconds given as a JSON number, to microseconds (integers exactly).
fn number_to_us(n: &serde_json::Number) -> Result<i64, InputError> {
    if n.is_i64() || n.is_u64() {
        return parse_time_or_unix(&n.to_string());
    }
    unix_seconds_to_us(n.as_f64().unwrap_or(f64::NAN))
}

fn time_field(value: Option<&Scalar>, field: &str) -> Result<Option<i64>, InputError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Text(s)) => parse_time(s).map(Some).map_err(|e| e.context(field)),
        Some(Scalar::Num(n)) => number_to_us(n).map(Some).map_err(|e| e.context(field)),
        Some(other) => Err(invalid(format!(
            "{field} must be an RFC 3339 string such as \"2026-11-20T14:03:00Z\" or a number \
             of unix seconds, not {other}"
        ))),
    }
}

fn parse_line(text: &str, line: usize, base_dir: &Path) -> Result<ManifestEntry, InputError> {
    if !text.trim_start().starts_with('{') {
        return Err(invalid(format!(
            "expected a JSON object {{...}} on each line, found {:?}; write one clip per line",
            text.trim().chars().take(40).collect::<String>()
        )));
    }
    let raw: RawEntry = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    let file = match &raw.file {
        None => return Err(invalid("missing field `file`".into())),
        Some(f) if f.trim().is_empty() => {
            return Err(invalid(
                "file must name the clip to ingest; it is empty".into(),
            ))
        }
        Some(f) => base_dir.join(f),
    };
    entry_from(raw, line, base_dir, file)
}

/// Parses a dock sidecar (`footage serve --watch`): the whole text is one JSON object with
/// the fields of a manifest line, for the video `video` in the folder `dir`. `file` may be
/// left out; if given it must be the video's own file name. `gps_file` is refused (a sidecar
/// names no other file: give the track inline in `gps`, as fixes or as GPX or CSV text).
pub fn parse_sidecar(
    text: &str,
    dir: &Path,
    video: &std::ffi::OsStr,
) -> Result<ManifestEntry, InputError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.trim_start().starts_with('{') {
        return Err(invalid(
            "a sidecar must be one JSON object {...} with officer, device and start".into(),
        ));
    }
    let raw: RawEntry = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    if let Some(f) = &raw.file {
        if std::ffi::OsStr::new(f) != video {
            return Err(invalid(format!(
                "file {f:?} is not this sidecar's video {:?}; leave file out or name the video",
                video.to_string_lossy()
            )));
        }
    }
    if raw.gps_file.is_some() {
        return Err(invalid(
            "gps_file is not accepted in a sidecar: give the track inline in gps, as \
             [[unix_seconds, lat, lon], ...] or as GPX or CSV text"
                .into(),
        ));
    }
    entry_from(raw, 1, dir, dir.join(video))
}

fn entry_from(
    raw: RawEntry,
    line: usize,
    base_dir: &Path,
    file: PathBuf,
) -> Result<ManifestEntry, InputError> {
    validate_id("officer", &raw.officer).map_err(invalid)?;
    validate_id("device", &raw.device).map_err(invalid)?;
    let start_us = time_field(Some(&raw.start), "start")?
        .ok_or_else(|| invalid("start is required; give an RFC 3339 time".into()))?;
    let end_us = time_field(raw.end.as_ref(), "end")?;
    if let Some(end) = end_us {
        if end < start_us {
            return Err(invalid(format!(
                "end {} is before start {}; swap them or fix the clock",
                format_time(end),
                format_time(start_us)
            )));
        }
    }
    let mut gps = match (raw.gps, raw.gps_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give either gps or gps_file, not both; drop one of them".into(),
            ))
        }
        (Some(points), None) => points.0,
        (None, Some(track)) => {
            let path = base_dir.join(&track);
            parse_gps_file(&path).map_err(|e| match e {
                InputError::Io { source, .. } => {
                    invalid(format!("cannot read gps_file {}: {source}", path.display()))
                }
                other => other.context(&format!("gps_file {track:?}")),
            })?
        }
        (None, None) => Vec::new(),
    };
    gps.sort_by_key(|f| f.time_us);
    let cases: Vec<String> = raw
        .case
        .into_iter()
        .chain(raw.cases.into_iter().flat_map(|l| l.0))
        .collect();
    let tags = raw.tags.map(|l| l.0).unwrap_or_default();
    let categories: Vec<String> = raw
        .category
        .into_iter()
        .chain(raw.categories.into_iter().flat_map(|l| l.0))
        .collect();
    for (what, list) in [("case", &cases), ("tag", &tags), ("category", &categories)] {
        for v in list {
            validate_id(what, v).map_err(invalid)?;
        }
    }
    Ok(ManifestEntry {
        line,
        file,
        officer: raw.officer,
        device: raw.device,
        start_us,
        end_us,
        gps,
        cases,
        tags,
        categories,
    })
}

#[cfg(test)]
mod tests;
