//! The fleet table's Delta Lake transaction log: creating the table (version 0: protocol,
//! schema, partition columns), reading a snapshot (the live data files of the latest
//! version), and committing one publish with "create if absent" on the next version.
//!
//! Protocol: reader version 1, writer version 2 (no table features); commits are JSON lines
//! of `add` / `remove` / `commitInfo` actions (docs/FORMAT.md, "The fleet table").
//!
//! Invariants: a snapshot is replayed from version 0, or from a log compaction of versions 0
//! to c, with no gap after; a table written by a newer protocol, or whose
//! `footage.fleet.version` is newer than [`TABLE_VERSION`], is refused rather than half-read
//! (and one whose writer protocol is above 2 is read but not published to); a commit either
//! creates its version's file whole or finds it taken; a snapshot whose next commits a log
//! cleanup deleted is noticed (`_last_checkpoint` past it) and read again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use super::{Fleet, TABLE_VERSION};
use crate::error::{Error, Result};

/// The log's folder under the table.
pub const LOG_DIR: &str = "_delta_log";
/// `add.tags` key: the hash of the station's live rows the file was built from.
pub const TAG_LIVE: &str = "footage.live_rows";
/// `add.tags` keys: the file's first start and last end (µs), and its tracks' box
/// (`min_lat,min_lon,max_lat,max_lon` in 1e-7 degrees), exact, for pruning.
pub const TAG_MIN_START: &str = "footage.min_start_us";
pub const TAG_MAX_END: &str = "footage.max_end_us";
pub const TAG_BBOX: &str = "footage.bbox_e7";
/// `add.tags` keys: the distinct officers, devices and labels (`category:`, `case:`, `tag:`
/// followed by the label) of the file's live rows, a JSON array of strings, sorted; absent
/// when there are more than [`MAX_KEYS`] (the file is then read for such queries).
pub const TAG_OFFICERS: &str = "footage.officers";
pub const TAG_DEVICES: &str = "footage.devices";
pub const TAG_LABELS: &str = "footage.labels";
/// `add.tags` key: the catalogue fingerprint of the station's segments of that day when the
/// file was written (`publish::catalog_fp`): a publish that finds it unchanged does not read
/// the day's segments. Absent when a segment could not be read.
pub const TAG_CATALOG: &str = "footage.catalog_fp";
/// The most values a key tag lists.
pub const MAX_KEYS: usize = 256;

/// A live data file of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Relative to the table.
    pub path: String,
    pub station: String,
    pub day: String,
    pub size: u64,
    pub live_rows: Option<String>,
    pub min_start_us: Option<i64>,
    pub max_end_us: Option<i64>,
    /// The tracks' box; `Some(None)`: no fixes at all; `None`: not known (no tag).
    pub bbox: Option<Option<(i32, i32, i32, i32)>>,
    /// The live rows' officers, devices and labels (`TAG_LABELS`' form), sorted; `None`: not
    /// known.
    pub officers: Option<Vec<String>>,
    pub devices: Option<Vec<String>>,
    pub labels: Option<Vec<String>>,
    /// The catalogue fingerprint the file was written from (`TAG_CATALOG`).
    pub catalog_fp: Option<String>,
}

/// The table at one version.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The latest version; `None` if the table does not exist yet.
    pub version: Option<u64>,
    /// Live files by path.
    pub files: BTreeMap<String, DataFile>,
    /// The actions as read (JSON lines), for a log compaction (`compact.rs`): the protocol,
    /// the metadata, each live file's `add` (by path), and the `remove`s with their deletion
    /// time (ms).
    pub(super) protocol: Option<String>,
    /// `footage.fleet.version` of the table's metadata.
    pub table_version: Option<u32>,
    pub(super) metadata: Option<String>,
    pub(super) adds: BTreeMap<String, String>,
    pub(super) removes: Vec<(i64, String, String)>,
    /// The protocol's `minWriterVersion` (footage writes version 2).
    pub min_writer: Option<u64>,
    /// Whether the log holds actions footage does not write (`txn`, `domainMetadata`, ...):
    /// a compaction or checkpoint of it would drop them, so none is written.
    pub(super) foreign: bool,
    /// When `_last_checkpoint` was last compared with this snapshot.
    pointer_checked: Option<Instant>,
}

/// How long a connection goes without comparing its snapshot with `_last_checkpoint` (a
/// log cleanup only deletes commits older than 30 days).
const POINTER_CHECK: Duration = Duration::from_secs(600);
/// The largest version footage reads (Delta versions are signed 64-bit): `v + 1` never
/// overflows.
pub(super) const MAX_VERSION: u64 = i64::MAX as u64;

pub(super) fn bad(what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("fleet table log: {what}"))
}

pub(super) fn log_name(version: u64) -> String {
    format!("{LOG_DIR}/{version:020}.json")
}

/// The Delta schema (its `schemaString`): the data files' columns, then the partition ones.
fn schema_string() -> String {
    let f =
        |name: &str, t: Value| json!({"name": name, "type": t, "nullable": true, "metadata": {}});
    let list = |t: Value| json!({"type": "array", "elementType": t, "containsNull": true});
    let fix = json!({"type": "struct", "fields": [
        f("time", json!("timestamp")), f("lat_e7", json!("integer")), f("lon_e7", json!("integer"))
    ]});
    let fields = vec![
        f("store_id", json!("string")),
        f("segment_id", json!("long")),
        f("officer", json!("string")),
        f("device", json!("string")),
        f("start", json!("timestamp")),
        f("end", json!("timestamp")),
        f("bytes", json!("long")),
        f("sha256", json!("string")),
        f("categories", list(json!("string"))),
        f("cases", list(json!("string"))),
        f("tags", list(json!("string"))),
        f("holds", list(json!("string"))),
        f("tier", json!("string")),
        f("cloud_key", json!("string")),
        f("deleted", json!("boolean")),
        f("gps_fixes", json!("long")),
        f("min_lat", json!("double")),
        f("max_lat", json!("double")),
        f("min_lon", json!("double")),
        f("max_lon", json!("double")),
        f("h3_cells", list(json!("long"))),
        f("track", list(fix)),
        f("day", json!("date")),
        f("station", json!("string")),
    ];
    json!({"type": "struct", "fields": fields}).to_string()
}

pub(super) fn lines(actions: &[Value]) -> Bytes {
    let mut out = String::new();
    for a in actions {
        out.push_str(&a.to_string());
        out.push('\n');
    }
    Bytes::from(out)
}

fn random_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h = crate::util::hex(&b);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Creates the table (version 0) unless it exists.
pub fn create(fleet: &Fleet, now_ms: i64) -> Result<()> {
    let actions = [
        json!({"commitInfo": {"timestamp": now_ms, "operation": "CREATE TABLE",
            "operationParameters": {}, "engineInfo": format!("footage {}", env!("CARGO_PKG_VERSION"))}}),
        json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
        json!({"metaData": {
            "id": random_uuid(),
            "name": "footage_fleet",
            "description": "Body-worn-video segments of every station (footage fleet publish)",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema_string(),
            "partitionColumns": ["day", "station"],
            "configuration": {"footage.fleet.version": TABLE_VERSION.to_string()},
            "createdTime": now_ms,
        }}),
    ];
    fleet.put_new(&log_name(0), lines(&actions))?;
    Ok(())
}

/// The `metaData` action that brings a table of an older `footage.fleet.version` to
/// [`TABLE_VERSION`] (its schema and version; id, partitions and creation time kept), or
/// `None` if it is current. Version 1 lacked the `h3_cells` column: its files stay as they
/// are (engines read the column as null there) until their day is rewritten.
pub fn upgrade(snap: &Snapshot) -> Result<Option<Value>> {
    if snap.table_version.is_none_or(|v| v >= TABLE_VERSION) {
        return Ok(None);
    }
    let line = snap.metadata.as_deref().unwrap_or("");
    let mut a: Value =
        serde_json::from_str(line).map_err(|e| bad(format!("the metadata is not JSON: {e}")))?;
    let m = &mut a["metaData"];
    m["schemaString"] = schema_string().into();
    m["configuration"]["footage.fleet.version"] = TABLE_VERSION.to_string().into();
    Ok(Some(a))
}

/// Commits `actions` as `version`: false if another writer took it first.
pub fn commit(fleet: &Fleet, version: u64, actions: &[Value]) -> Result<bool> {
    fleet.put_new(&log_name(version), lines(actions))
}

pub(super) fn parse_version(name: &str) -> Option<u64> {
    version_digits(name.strip_suffix(".json")?)
}

/// A version written as 20 digits, at most [`MAX_VERSION`].
pub(super) fn version_digits(d: &str) -> Option<u64> {
    (d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
        .then(|| d.parse().ok())
        .flatten()
        .filter(|&v| v <= MAX_VERSION)
}

fn tag<'a>(add: &'a Value, key: &str) -> Option<&'a str> {
    add.get("tags")?.get(key)?.as_str()
}

fn data_file(add: &Value) -> Result<DataFile> {
    let path = add["path"]
        .as_str()
        .ok_or_else(|| bad("an add action without a path"))?;
    let part = |k: &str| add["partitionValues"][k].as_str().unwrap_or("").to_string();
    let int = |k: &str| tag(add, k).and_then(|v| v.parse::<i64>().ok());
    let bbox = tag(add, TAG_BBOX).and_then(|v| {
        if v == "none" {
            return Some(None);
        }
        let p: Vec<i32> = v.split(',').filter_map(|x| x.parse().ok()).collect();
        (p.len() == 4).then(|| Some((p[0], p[1], p[2], p[3])))
    });
    Ok(DataFile {
        path: path.to_string(),
        station: part("station"),
        day: part("day"),
        size: add["size"].as_u64().unwrap_or(0),
        live_rows: tag(add, TAG_LIVE).map(str::to_string),
        min_start_us: int(TAG_MIN_START),
        max_end_us: int(TAG_MAX_END),
        bbox,
        officers: keys(add, TAG_OFFICERS),
        devices: keys(add, TAG_DEVICES),
        labels: keys(add, TAG_LABELS),
        catalog_fp: tag(add, TAG_CATALOG).map(str::to_string),
    })
}

/// A key tag's values, sorted (`None` if absent or not a JSON array of strings).
fn keys(add: &Value, key: &str) -> Option<Vec<String>> {
    let mut v: Vec<String> = serde_json::from_str(tag(add, key)?).ok()?;
    v.sort_unstable();
    Some(v)
}

/// Applies the commit `text` (version `v`; or a log compaction ending at `v`) to `snap`.
pub(super) fn apply(snap: &mut Snapshot, v: u64, text: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(text).map_err(|_| bad(format!("version {v} is not UTF-8")))?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let a: Value = serde_json::from_str(line)
            .map_err(|e| bad(format!("version {v}: an action is not JSON: {e}")))?;
        if let Some(p) = a.get("protocol") {
            let r = p["minReaderVersion"].as_u64().unwrap_or(u64::MAX);
            if r > 1 {
                return Err(bad(format!(
                    "version {v} asks for Delta reader version {r}; this build reads version 1"
                )));
            }
            snap.min_writer = p["minWriterVersion"].as_u64();
            snap.protocol = Some(line.to_string());
        } else if let Some(m) = a.get("metaData") {
            let tv = m["configuration"]["footage.fleet.version"]
                .as_str()
                .and_then(|s| s.parse::<u32>().ok());
            match tv {
                Some(t) if t <= TABLE_VERSION => {}
                Some(t) => {
                    return Err(bad(format!(
                        "the table is fleet version {t}; this build knows up to {TABLE_VERSION}"
                    )))
                }
                None => return Err(bad("the table's metadata is not a footage fleet table's")),
            }
            snap.table_version = tv;
            snap.metadata = Some(line.to_string());
        } else if let Some(add) = a.get("add") {
            let f = data_file(add)?;
            snap.adds.insert(f.path.clone(), line.to_string());
            snap.files.insert(f.path.clone(), f);
        } else if let Some(rm) = a.get("remove") {
            if let Some(p) = rm["path"].as_str() {
                snap.files.remove(p);
                snap.adds.remove(p);
                let at = rm["deletionTimestamp"].as_i64().unwrap_or(0);
                snap.removes.push((at, p.to_string(), line.to_string()));
            }
        } else if a.get("commitInfo").is_none() {
            snap.foreign = true;
        }
    }
    snap.version = Some(v);
    Ok(())
}

/// The table's latest version and its live files (an empty snapshot if there is no table):
/// from the log compaction at the version `_last_checkpoint` names, else the newest log
/// compaction of versions 0 to N among the listed log, if there is one that reads, then the
/// commits after it.
pub fn snapshot(fleet: &Fleet) -> Result<Snapshot> {
    let checked = Instant::now();
    let mut snap = match from_last_checkpoint(fleet) {
        Ok(Some(snap)) => snap,
        Ok(None) => from_listing(fleet)?,
        Err(e) => {
            tracing::warn!(error = %e, "fleet table: the log after _last_checkpoint does not read; listing the whole log");
            from_listing(fleet)?
        }
    };
    snap.pointer_checked = Some(checked);
    Ok(snap)
}

/// The shortcut: the compaction at the version `_last_checkpoint` names, then the commits
/// listed after it (`None` if there is no pointer or no such compaction).
fn from_last_checkpoint(fleet: &Fleet) -> Result<Option<Snapshot>> {
    let Some(c) = super::checkpoint::last(fleet) else {
        return Ok(None);
    };
    let Some(mut snap) = super::compact::at(fleet, c)? else {
        return Ok(None);
    };
    let names = fleet.list_after(LOG_DIR, Some(&log_name(c)))?;
    catch_up(fleet, &mut snap, &versions_in(&names))?;
    Ok(Some(snap))
}

/// The whole log listed: from its newest compaction that reads, or from version 0.
fn from_listing(fleet: &Fleet) -> Result<Snapshot> {
    let names = fleet.list(LOG_DIR)?;
    let mut snap = super::compact::newest(fleet, &names)?.unwrap_or_default();
    catch_up(fleet, &mut snap, &versions_in(&names))?;
    Ok(snap)
}

/// The commit versions among `names`, sorted.
fn versions_in(names: &[String]) -> Vec<u64> {
    let mut v: Vec<u64> = names.iter().filter_map(|n| parse_version(n)).collect();
    v.sort_unstable();
    v
}

/// Applies `versions` (sorted, from the one after `snap`'s) to `snap`; versions committed
/// after the listing are read too, until one is absent.
fn catch_up(fleet: &Fleet, snap: &mut Snapshot, versions: &[u64]) -> Result<()> {
    let first = snap.version.map_or(0, |v| v + 1);
    let mut next = first;
    for &v in versions.iter().filter(|&&v| v >= first) {
        if v != next {
            return Err(bad(format!(
                "version {next} is missing before {v} (footage starts from version 0 or from a log compaction of versions 0 to c; the log's start was deleted without one)"
            )));
        }
        let text = fleet
            .read(&log_name(v))?
            .ok_or_else(|| bad(format!("version {v} vanished while read")))?;
        apply(snap, v, &text)?;
        next = v + 1;
    }
    while let Some(text) = fleet.read(&log_name(next))? {
        apply(snap, next, &text)?;
        next += 1;
    }
    Ok(())
}

/// Brings `snap` up to the latest version.
pub fn refresh(fleet: &Fleet, snap: &mut Snapshot) -> Result<()> {
    bring_up(fleet, snap, false)
}

/// Brings `snap` up to the latest version. A snapshot not refreshed for longer than the
/// log's retention would look current after a cleanup deleted the commits after it (the
/// next one is absent): so when `strict` (before a publish plans), or when it was last done
/// more than [`POINTER_CHECK`] ago, `_last_checkpoint` is read (the log after the snapshot
/// listed if it does not read), and a checkpoint or commit past the snapshot makes it read
/// again from the start.
pub fn bring_up(fleet: &Fleet, snap: &mut Snapshot, strict: bool) -> Result<()> {
    catch_up(fleet, snap, &[])?;
    if strict
        || snap
            .pointer_checked
            .is_none_or(|t| t.elapsed() >= POINTER_CHECK)
    {
        let checked = Instant::now();
        let pointer = super::checkpoint::last(fleet);
        let passed = match (pointer, snap.version) {
            (Some(c), v) => v.is_none_or(|v| c > v),
            // No pointer that reads: a commit listed after the next (absent) one.
            (None, Some(v)) => fleet
                .list_after(LOG_DIR, Some(&log_name(v)))?
                .iter()
                .filter_map(|n| parse_version(n))
                .any(|w| w > v + 1),
            (None, None) => false,
        };
        if passed {
            tracing::warn!(
                version = snap.version,
                checkpoint = pointer,
                "fleet table: the log moved past this connection's snapshot (a cleanup); reading it again"
            );
            *snap = snapshot(fleet)?;
        }
        snap.pointer_checked = Some(checked);
    }
    Ok(())
}
