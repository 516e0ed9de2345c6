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
//!   refused as soon as it holds more than [`MAX_GPS_FIXES`] points: reading a manifest takes
//!   its text plus 16 bytes per fix, whatever it holds.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Number, Value};

use crate::meta::{validate_id, GpsFix, MAX_GPS_FIXES, MAX_LABELS};

use super::gps::{parse_csv, parse_gps_file, parse_gpx};
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

/// A list of case ids, tags or categories, refused past [`MAX_LABELS`] entries while read.
struct Labels(Vec<String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Labels, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    if v.len() == MAX_LABELS {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_LABELS} values in a list; the limit is {MAX_LABELS}"
                        )));
                    }
                    v.push(s);
                }
                Ok(Labels(v))
            }
        }
        d.deserialize_seq(V)
    }
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

/// Marks a `gps` error raised inside the JSON parser, so it is reported as it is (without
/// the JSON-syntax hint).
const GPS_ERROR_MARK: &str = "\u{1}gps: ";

fn gps_error<E: de::Error>(e: InputError) -> E {
    E::custom(format!("{GPS_ERROR_MARK}{e}"))
}

/// A manifest's `gps` array, read point by point into fixes.
struct GpsPoints(Vec<GpsFix>);

impl<'de> Deserialize<'de> for GpsPoints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GpsPoints, D::Error> {
        d.deserialize_any(PointsVisitor)
    }
}

struct PointsVisitor;

impl<'de> Visitor<'de> for PointsVisitor {
    type Value = GpsPoints;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of GPS points [unix_seconds, lat, lon], or GPX or CSV text")
    }

    /// GPX or CSV text in place of the array (a `<` first: GPX).
    fn visit_str<E: de::Error>(self, v: &str) -> Result<GpsPoints, E> {
        let body = v.strip_prefix('\u{feff}').unwrap_or(v).trim_start();
        let fixes = if body.is_empty() {
            Vec::new()
        } else if body.starts_with('<') {
            parse_gpx(v.as_bytes(), "gps").map_err(gps_error)?
        } else {
            parse_csv(v.as_bytes(), "gps").map_err(gps_error)?
        };
        Ok(GpsPoints(fixes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GpsPoints, A::Error> {
        let mut fixes = Vec::new();
        loop {
            let index = fixes.len();
            let Some(item) = seq.next_element::<PointItem>()? else {
                break;
            };
            if index == MAX_GPS_FIXES {
                return Err(gps_error(invalid(format!(
                    "gps has more than {MAX_GPS_FIXES} points; the limit is {MAX_GPS_FIXES} \
                     (24 h at 4 Hz): split the clip or thin its track"
                ))));
            }
            fixes.push(gps_point(index, item).map_err(gps_error)?);
        }
        Ok(GpsPoints(fixes))
    }
}

/// One element of a `gps` array: three numbers, or what it was instead (for the message).
enum PointItem {
    Point([Number; 3]),
    Other(String),
}

/// One JSON value where a number or a string is expected (a time, an item of a point): kept
/// if it is one, else only a short rendering of it (an array or object is skipped, not built).
enum Scalar {
    Null,
    Num(Number),
    Text(String),
    Other(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Num(n) => write!(f, "{n}"),
            Scalar::Text(s) => f.write_str(&quoted(s)),
            Scalar::Other(s) => f.write_str(s),
        }
    }
}

/// Renders a JSON string as JSON.
fn quoted(v: &str) -> String {
    Value::String(v.to_string()).to_string()
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Number::from_f64(v).map_or_else(|| Scalar::Other(v.to_string()), Scalar::Num))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("[...]".into()))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("{...}".into()))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct PointVisitor;

impl<'de> Visitor<'de> for PointVisitor {
    type Value = PointItem;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GPS point [unix_seconds, lat, lon]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PointItem, A::Error> {
        // At most four items are kept (three and one too many), whatever the array holds.
        let mut items: Vec<Scalar> = Vec::with_capacity(4);
        let mut more = false;
        while let Some(v) = seq.next_element::<Scalar>()? {
            if items.len() == 4 {
                more = true;
            } else {
                items.push(v);
            }
        }
        if let [Scalar::Num(t), Scalar::Num(lat), Scalar::Num(lon)] = items.as_slice() {
            return Ok(PointItem::Point([t.clone(), lat.clone(), lon.clone()]));
        }
        let mut text: Vec<String> = items.iter().map(ToString::to_string).collect();
        if more {
            text.push("...".into());
        }
        Ok(PointItem::Other(format!("[{}]", text.join(","))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PointItem, E> {
        Ok(PointItem::Other(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PointItem, E> {
        Ok(PointItem::Other(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<PointItem, E> {
        Ok(PointItem::Other(
            ScalarVisitor.visit_f64::<E>(v)?.to_string(),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PointItem, E> {
        Ok(PointItem::Other(quoted(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<PointItem, E> {
        Ok(PointItem::Other(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<PointItem, E> {
        Ok(PointItem::Other("null".into()))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<PointItem, A::Error> {
        Ok(PointItem::Other(ScalarVisitor.visit_map(map)?.to_string()))
    }
}

impl<'de> Deserialize<'de> for PointItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PointItem, D::Error> {
        d.deserialize_any(PointVisitor)
    }
}

fn gps_point(index: usize, item: PointItem) -> Result<GpsFix, InputError> {
    let shape = |value: &str| {
        invalid(format!(
            "gps[{index}] is {value}; each GPS point must be [unix_seconds, lat, lon], \
             three numbers"
        ))
    };
    let [t, lat, lon] = match item {
        PointItem::Point(p) => p,
        PointItem::Other(text) => return Err(shape(&text)),
    };
    let time_us = number_to_us(&t).map_err(|e| e.context(&format!("gps[{index}] time")))?;
    let (Some(lat_d), Some(lon_d)) = (lat.as_f64(), lon.as_f64()) else {
        return Err(shape(&format!("[{t},{lat},{lon}]")));
    };
    GpsFix::from_degrees(time_us, lat_d, lon_d).map_err(|e| invalid(format!("gps[{index}]: {e}")))
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
mod tests {
    use super::*;

    const T0: i64 = 1_763_647_380_000_000; // 2025-11-20T14:03:00Z
    const BASE: &str = "/evidence/batch7";

    fn parse(text: &str) -> Result<Vec<ManifestEntry>, InputError> {
        parse_manifest_named(text, Path::new(BASE), "manifest.jsonl")
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    fn line(extra: &str) -> String {
        format!(
            r#"{{"file": "a.mp4", "officer": "PC1234", "device": "CAM-07", "start": "2025-11-20T14:03:00Z"{extra}}}"#
        )
    }

    #[test]
    fn minimal_and_full_entries() {
        let text = format!(
            "\u{feff}{}\n\n   \r\n{}\r\n",
            line(""),
            r#"{"file": "/abs/b.mp4", "officer": "PC9", "device": "D1", "start": 1763647380.5, "end": "2025-11-20T14:13:00Z", "gps": [[1763647390, -33.5, 151.25], [1763647381.25, 90, -180]], "case": "C-1", "cases": ["C-2"], "tags": ["arrest", "use-of-force"], "category": null, "categories": ["evidence"]}"#
        );
        let entries = parse(&text).unwrap();
        assert_eq!(entries.len(), 2);
        let a = &entries[0];
        assert_eq!(a.line, 1);
        assert_eq!(a.file, Path::new(BASE).join("a.mp4"));
        assert_eq!(
            (a.officer.as_str(), a.device.as_str()),
            ("PC1234", "CAM-07")
        );
        assert_eq!((a.start_us, a.end_us), (T0, None));
        assert!(a.gps.is_empty() && a.cases.is_empty() && a.tags.is_empty());
        assert!(a.categories.is_empty());
        let b = &entries[1];
        assert_eq!(b.line, 4);
        assert_eq!(b.file, PathBuf::from("/abs/b.mp4"));
        assert_eq!(b.start_us, T0 + 500_000);
        assert_eq!(b.end_us, Some(T0 + 600_000_000));
        assert_eq!(
            b.gps,
            [
                GpsFix::from_degrees(T0 + 1_250_000, 90.0, -180.0).unwrap(),
                GpsFix::from_degrees(T0 + 10_000_000, -33.5, 151.25).unwrap(),
            ]
        );
        assert_eq!(b.cases, ["C-1", "C-2"]);
        assert_eq!(b.tags, ["arrest", "use-of-force"]);
        assert_eq!(b.categories, ["evidence"]);
        assert!(parse("").unwrap().is_empty());
        let nulls = parse(&line(
            r#", "end": null, "gps": null, "case": null, "tags": null"#,
        ));
        assert_eq!(nulls.unwrap()[0].end_us, None);
        let unix = parse(&line(r#", "end": 1763647400"#)).unwrap();
        assert_eq!(unix[0].end_us, Some(T0 + 20_000_000));
    }

    #[test]
    fn json_and_field_errors_name_the_line() {
        let good = line("");
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{good}\n{{not json"),
                "manifest.jsonl line 2: key must be a string",
            ),
            (
                format!("{good}\n\n[1,2]"),
                "manifest.jsonl line 3: expected a JSON object {...} on each line, found \"[1,2]\"",
            ),
            (
                line(r#", "colour": "red""#),
                "line 1: unknown field `colour`",
            ),
            (
                r#"{"file": "a.mp4", "device": "D", "start": 0}"#.into(),
                "line 1: missing field `officer`",
            ),
            (
                line(r#", "tags": "arrest""#),
                "line 1: invalid type: string \"arrest\", expected a sequence",
            ),
            (
                r#"{"file": 5, "officer": "P", "device": "D", "start": 0}"#.into(),
                "line 1: invalid type: integer `5`",
            ),
            (
                line(r#", "file": "b.mp4""#),
                "line 1: duplicate field `file`",
            ),
        ];
        for (text, want) in cases {
            let e = err(&text);
            assert!(e.contains(want), "got {e:?}, want {want:?}");
            assert!(e.starts_with("manifest.jsonl line "), "{e}");
            assert!(!e.contains("at line 1 column"), "{e}");
        }
    }

    #[test]
    fn value_errors() {
        let base = r#"{"file": "a.mp4", "officer": "PC1", "device": "CAM1""#;
        let cases: Vec<(String, &str)> = vec![
            (
                format!(r#"{base}, "start": "yesterday"}}"#),
                "line 1: start: invalid time \"yesterday\": expected RFC 3339",
            ),
            (
                format!(r#"{base}, "start": null}}"#),
                "line 1: start is required",
            ),
            (
                format!(r#"{base}, "start": true}}"#),
                "line 1: start must be an RFC 3339 string",
            ),
            (
                format!(r#"{base}, "start": -5}}"#),
                "line 1: start: time \"-5\" is outside the years 1970..=9999",
            ),
            (
                format!(r#"{base}, "start": 1e13}}"#),
                "outside the years 1970..=9999",
            ),
            (
                line(r#", "end": "2025-11-20T14:02:59Z""#),
                "line 1: end 2025-11-20T14:02:59Z is before start 2025-11-20T14:03:00Z",
            ),
            (
                line(r#", "end": {}"#),
                "line 1: end must be an RFC 3339 string",
            ),
            (
                r#"{"file": " ", "officer": "P", "device": "D", "start": 0}"#.into(),
                "line 1: file must name the clip",
            ),
            (
                r#"{"file": "a", "officer": "P C", "device": "D", "start": 0}"#.into(),
                "line 1: officer \"P C\" contains ' '",
            ),
            (
                r#"{"file": "a", "officer": "P", "device": "", "start": 0}"#.into(),
                "line 1: device must not be empty",
            ),
            (
                line(r#", "case": "ok", "cases": ["bad case"]"#),
                "line 1: case \"bad case\" contains",
            ),
            (line(r#", "tags": ["é"]"#), "line 1: tag \"é\" contains"),
            (
                line(r#", "categories": ["x", ""]"#),
                "line 1: category must not be empty",
            ),
            (
                line(r#", "gps": [[1763647380, 1]]"#),
                "line 1: gps[0] is [1763647380,1]; each GPS point must be [unix_seconds, lat, lon]",
            ),
            (
                line(r#", "gps": [[1763647380, 1, 2], [1763647380, "1", 2]]"#),
                "line 1: gps[1] is",
            ),
            (line(r#", "gps": [5]"#), "line 1: gps[0] is 5;"),
            (line(r#", "gps": [[1763647380, 1, 2, 3]]"#), "three numbers"),
            (
                line(r#", "gps": [[1763647380, 91, 2]]"#),
                "line 1: gps[0]: latitude 91 is outside -90..90",
            ),
            (
                line(r#", "gps": [[1763647380, 1, -181]]"#),
                "line 1: gps[0]: longitude -181 is outside -180..180",
            ),
            (
                line(r#", "gps": [[-1, 1, 2]]"#),
                "line 1: gps[0] time: time \"-1\" is outside",
            ),
            (
                line(r#", "gps": [], "gps_file": "t.csv""#),
                "line 1: give either gps or gps_file, not both",
            ),
        ];
        for (text, want) in cases {
            let e = err(&text);
            assert!(e.contains(want), "got {e:?}, want {want:?}");
            assert!(e.starts_with("manifest.jsonl line 1:"), "{e}");
        }
        let e = parse_manifest(&line(r#", "x": 1"#), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("manifest line 1: unknown field `x`"), "{e}");
    }

    #[test]
    fn gps_file_and_read_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tracks")).unwrap();
        std::fs::write(
            dir.path().join("tracks/t.csv"),
            "time,lat,lon\n1763647381,1,2\n1763647380,3,4\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("tracks/bad.csv"),
            "time,lat,lon\n1763647381,1,200\n",
        )
        .unwrap();
        let text = format!(
            "{}\n{}\n",
            line(r#", "gps_file": "tracks/t.csv""#),
            line(r#", "gps_file": "tracks/bad.csv""#)
        );
        let manifest = dir.path().join("batch.jsonl");
        std::fs::write(&manifest, &text).unwrap();
        let e = read_manifest(&manifest).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "batch.jsonl line 2: gps_file \"tracks/bad.csv\": bad.csv line 2: longitude 200"
            ),
            "{e}"
        );
        let first = text.lines().next().unwrap_or_default();
        std::fs::write(&manifest, first).unwrap();
        let entries = read_manifest(&manifest).unwrap();
        assert_eq!(entries[0].file, dir.path().join("a.mp4"));
        assert_eq!(
            entries[0].gps,
            [
                GpsFix::from_degrees(T0, 3.0, 4.0).unwrap(),
                GpsFix::from_degrees(T0 + 1_000_000, 1.0, 2.0).unwrap(),
            ]
        );
        std::fs::write(&manifest, line(r#", "gps_file": "missing.gpx""#)).unwrap();
        let e = read_manifest(&manifest).unwrap_err().to_string();
        assert!(
            e.starts_with("batch.jsonl line 1: cannot read gps_file"),
            "{e}"
        );
        assert!(e.contains("missing.gpx"), "{e}");
        std::fs::write(&manifest, b"{\"file\": \"\xff\"}").unwrap();
        let e = read_manifest(&manifest).unwrap_err().to_string();
        assert!(e.contains("batch.jsonl: manifest is not UTF-8"), "{e}");
        let missing = dir.path().join("nope.jsonl");
        assert!(matches!(
            read_manifest(&missing),
            Err(InputError::Io { .. })
        ));
    }
}
