//! Targets for settings files and HTTP requests: `policy.toml`, `footage.toml`, the tokens
//! file, the `Range` header and the search parameters of `GET /api/segments`.

use std::path::Path;

use super::text;
use crate::catalog::search::run;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::format::commit::CommitRecord;
use crate::meta::{GpsFix, SegmentMeta};
use crate::retention::policy::{parse_after, Policy};
use crate::server::api::find_args;
use crate::server::tokens::TokenSet;
use crate::server::video::{range_answer, sniff, RangeAnswer};

/// A `policy.toml`.
pub fn policy(data: &[u8]) {
    let text = text(data);
    let _ = parse_after(&text);
    let Ok(p) = Policy::parse(&text, Path::new("policy.toml")) else {
        return;
    };
    assert!(p.categories.contains_key("default"));
    assert!(p.high_watermark > 0.0 && p.high_watermark <= 1.0);
    let names: Vec<String> = p.categories.keys().cloned().collect();
    for e in [p.effective(&[]), p.effective(&names)] {
        for after in [e.evict_after, e.delete_after].into_iter().flatten() {
            assert!(after >= 0);
        }
    }
}

/// A `footage.toml`.
pub fn config(data: &[u8]) {
    let text = text(data);
    let Ok(cfg) = toml::from_str::<Config>(&text) else {
        return;
    };
    let path = Path::new("footage.toml");
    if cfg.validate(path).is_err() {
        return;
    }
    let id = match cfg.store_id_bytes() {
        Some(id) => id,
        None => panic!("a valid configuration has no store id"),
    };
    assert_eq!(
        crate::util::hex(&id),
        cfg.store_id.to_ascii_lowercase(),
        "store_id must be exactly 32 hex digits"
    );
    let written = match toml::to_string_pretty(&cfg) {
        Ok(t) => t,
        Err(e) => panic!("a valid configuration cannot be written: {e}"),
    };
    let back: Config = match toml::from_str(&written) {
        Ok(c) => c,
        Err(e) => panic!("a written configuration does not read back: {e}"),
    };
    assert_eq!(back, cfg, "configuration round trip");
    assert!(back.validate(path).is_ok());
    assert!(cfg.data_dir(Path::new("/store"), 0).is_some());
}

/// A tokens file (`tokens.json`).
pub fn tokens(data: &[u8]) {
    let Ok(set) = TokenSet::parse(&text(data)) else {
        return;
    };
    let written = match set.to_text() {
        Ok(t) => t,
        Err(e) => panic!("a parsed token set cannot be written: {e}"),
    };
    match TokenSet::parse(&written) {
        Ok(back) => assert_eq!(back.entries(), set.entries(), "tokens round trip"),
        Err(e) => panic!("a written tokens file does not parse: {e}"),
    }
    let _ = set.check("ftg_0000");
}

/// A `Range` header: the first 8 bytes are the segment length (little-endian), the rest the
/// header value.
pub fn range(data: &[u8]) {
    let _ = sniff(data);
    let (len, value) = match data.get(..8) {
        Some(b) => (
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            data.get(8..).unwrap_or_default(),
        ),
        None => (0, data),
    };
    let value = text(value);
    for len in [len, len % 10_000, 0] {
        match range_answer(Some(&value), len) {
            RangeAnswer::Part { start, end } => {
                assert!(
                    start <= end && end < len,
                    "range {start}-{end} of {len} bytes"
                );
            }
            RangeAnswer::Whole | RangeAnswer::Unsatisfiable(_) => {}
        }
    }
    assert_eq!(range_answer(None, len), RangeAnswer::Whole);
}

/// The query string of `GET /api/segments`, run against a small catalog.
pub fn find_query(data: &[u8]) {
    let Ok(args) = find_args(&text(data)) else {
        return;
    };
    let q = args.query();
    if q.validate().is_err() {
        return;
    }
    let cat = small_catalog();
    if let Ok(page) = run(&cat, &q) {
        if let Some(next) = page.next {
            let _ = run(&cat, &q.after(next));
        }
    }
}

/// Three segments of two officers, with labels and GPS tracks, around central London.
fn small_catalog() -> Catalog {
    let mut cat = Catalog::new();
    let t0 = 1_763_647_380_000_000i64;
    for i in 0..3u64 {
        let start = t0 + i as i64 * 600_000_000;
        let gps = (0..5)
            .filter_map(|k| {
                GpsFix::from_degrees(
                    start + k * 1_000_000,
                    51.50 + 0.001 * k as f64,
                    -0.12 + 0.001 * i as f64,
                )
                .ok()
            })
            .collect();
        let meta = SegmentMeta {
            officer: format!("MET-00{}", i % 2),
            device: format!("AX-{i}"),
            start_us: start,
            end_us: start + 300_000_000,
            gps,
            cases: vec!["C-1".into()],
            tags: vec![format!("t{i}")],
            categories: if i == 0 {
                vec!["evidential".into()]
            } else {
                vec![]
            },
        };
        let rec = CommitRecord {
            segment_id: i + 1,
            lsn: i + 1,
            committed_us: start,
            bytes: 0,
            sha256: [i as u8; 32],
            chunk_capacity: 0,
            meta,
            extents: Vec::new(),
            block_crcs: false,
            one_sync: false,
            durable_to: 0,
            actor: None,
        };
        cat.apply_commit(&rec, 1, 4064);
    }
    cat
}
