//! The Delta `add` and `remove` actions of a publish: an added file's statistics (for
//! engines that prune on them) and footage's exact tags (`delta::TAG_*`: first start, last
//! end, tracks' box, officers, devices, labels) that `fleet find` prunes on.
//!
//! Invariants: the tags describe the file's live rows exactly (deleted rows never match a
//! query, so they are left out of the key tags); a key tag with more than
//! `delta::MAX_KEYS` values is left out rather than cut short.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::delta::{self, DataFile};
use super::row::{bbox_of, FleetRow};

fn iso_ms(us: i64, round_up: bool) -> String {
    let ms = if round_up {
        us.div_euclid(1000) + i64::from(us.rem_euclid(1000) != 0)
    } else {
        us.div_euclid(1000)
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// The `add` action of a file of `rows` (their statistics for engines that prune, and exact
/// values in `tags` for `fleet find`).
pub fn add_action(path: &str, f: &DataFile, rows: &[FleetRow], now_ms: i64) -> Value {
    let boxes: Vec<_> = rows.iter().filter_map(FleetRow::bbox).collect();
    let deg = |v: i32| f64::from(v) / 1e7;
    let min_start = rows.iter().map(|r| r.start_us).min().unwrap_or(0);
    let max_start = rows.iter().map(|r| r.start_us).max().unwrap_or(0);
    let min_end = rows.iter().map(|r| r.end_us).min().unwrap_or(0);
    let max_end = rows.iter().map(|r| r.end_us).max().unwrap_or(0);
    let min_id = rows.iter().map(|r| r.segment_id).min().unwrap_or(0);
    let max_id = rows.iter().map(|r| r.segment_id).max().unwrap_or(0);
    let mut min_values = json!({"segment_id": min_id, "start": iso_ms(min_start, false),
        "end": iso_ms(min_end, false)});
    let mut max_values = json!({"segment_id": max_id, "start": iso_ms(max_start, true),
        "end": iso_ms(max_end, true)});
    let nulls = rows.len() - boxes.len();
    if !boxes.is_empty() {
        let col = |pick: fn(&(i32, i32, i32, i32)) -> i32| {
            let v = boxes.iter().map(pick);
            (deg(v.clone().min().unwrap_or(0)), deg(v.max().unwrap_or(0)))
        };
        for (name, pick) in [
            ("min_lat", (|b| b.0) as fn(&(i32, i32, i32, i32)) -> i32),
            ("min_lon", |b| b.1),
            ("max_lat", |b| b.2),
            ("max_lon", |b| b.3),
        ] {
            let (lo, hi) = col(pick);
            min_values[name] = json!(lo);
            max_values[name] = json!(hi);
        }
    }
    let stats = json!({
        "numRecords": rows.len(),
        "minValues": min_values,
        "maxValues": max_values,
        "nullCount": {"min_lat": nulls, "max_lat": nulls, "min_lon": nulls, "max_lon": nulls},
    });
    let bbox = bbox_of(boxes.iter().map(|b| (b.0, b.2, b.1, b.3)))
        .map_or("none".to_string(), |b| {
            format!("{},{},{},{}", b.0, b.1, b.2, b.3)
        });
    let mut add = json!({"add": {
        "path": path,
        "partitionValues": {"day": f.day, "station": f.station},
        "size": f.size,
        "modificationTime": now_ms,
        "dataChange": true,
        "stats": stats.to_string(),
        "tags": {
            delta::TAG_LIVE: f.live_rows,
            delta::TAG_MIN_START: min_start.to_string(),
            delta::TAG_MAX_END: max_end.to_string(),
            delta::TAG_BBOX: bbox,
        },
    }});
    if let Some(fp) = &f.catalog_fp {
        add["add"]["tags"][delta::TAG_CATALOG] = fp.as_str().into();
    }
    let live = || rows.iter().filter(|r| !r.deleted);
    let sets = [
        (
            delta::TAG_OFFICERS,
            live().map(|r| r.officer.clone()).collect::<BTreeSet<_>>(),
        ),
        (
            delta::TAG_DEVICES,
            live().map(|r| r.device.clone()).collect(),
        ),
        (delta::TAG_LABELS, live().flat_map(label_keys).collect()),
    ];
    for (key, set) in sets {
        if set.len() <= delta::MAX_KEYS {
            let list: Vec<String> = set.into_iter().collect();
            add["add"]["tags"][key] = json!(serde_json::to_string(&list).unwrap_or_default());
        }
    }
    add
}

/// A row's labels as the `footage.labels` tag lists them.
pub fn label_keys(r: &FleetRow) -> Vec<String> {
    let tagged = |kind: &str, v: &[String]| -> Vec<String> {
        v.iter().map(|x| format!("{kind}:{x}")).collect()
    };
    let mut out = tagged("category", &r.categories);
    out.extend(tagged("case", &r.cases));
    out.extend(tagged("tag", &r.tags));
    out
}

pub fn remove_action(f: &DataFile, now_ms: i64) -> Value {
    json!({"remove": {
        "path": f.path,
        "deletionTimestamp": now_ms,
        "dataChange": true,
        "extendedFileMetadata": true,
        "partitionValues": {"day": f.day, "station": f.station},
        "size": f.size,
    }})
}
