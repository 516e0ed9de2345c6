//! A review application beside the station's service: open the store read-only, find an
//! officer's footage in a time window near a place, and read part of a segment with its
//! SHA-256 checked.
//!
//! Run: `cargo run --example review` (it first writes a small sample store in a temporary
//! directory), or `cargo run --example review -- --store DIR [--officer ID]` against an
//! existing store (read-only: it changes nothing there). Uses only the public API: [`Store`],
//! [`Query`], [`Page`], [`footage::VerifiedReader`].
//!
//! What it shows:
//! - `Store::open_read_only` opens a store another process owns (no lock taken, nothing
//!   written); `refresh` catches up with what the owner committed since;
//! - a [`Query`] ANDs its filters (officer, time window, area) and answers one page, sorted by
//!   (start, id), with the GPS hit intervals inside the area;
//! - `read_range` returns a byte range checked against the chunk CRCs; `open_verified` streams
//!   the whole segment and fails at the end unless its SHA-256 is the one recorded at ingest.

use std::io::Read;
use std::path::PathBuf;

use footage::{GpsFix, Query, SegmentMeta, Store, StoreOptions};

/// 2025-11-20 14:03:00 UTC, µs since the Unix epoch: the first sample recording's start.
const T0_US: i64 = 1_763_647_380_000_000;
/// One minute, in µs.
const MINUTE_US: i64 = 60_000_000;
/// Westminster Bridge (degrees, WGS 84): where the query looks.
const PLACE: (f64, f64) = (51.5007, -0.1220);
/// How far from `PLACE` a fix may be to count, metres.
const RADIUS_M: f64 = 250.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: review [--store DIR] [--officer ID]   (default: a temporary sample store)"
        );
        return Ok(());
    }
    let mut store_dir = None;
    let mut officer = "MET-004217".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => store_dir = Some(PathBuf::from(it.next().ok_or("--store needs a DIR")?)),
            "--officer" => officer = it.next().ok_or("--officer needs an ID")?.clone(),
            other => return Err(format!("unexpected argument {other:?} (try --help)").into()),
        }
    }
    let _temp;
    let root = match store_dir {
        Some(dir) => dir,
        None => {
            _temp = tempfile::tempdir()?;
            let root = _temp.path().join("store");
            write_sample_store(&root)?;
            root
        }
    };

    // The review app never owns the store: the station's service may be running.
    let store = Store::open_read_only(&root, &StoreOptions::default())?;
    store.refresh()?;

    // The officer's footage of the first hour that passed within RADIUS_M of PLACE.
    let query = Query::new()
        .officer(officer.as_str())
        .from(T0_US)
        .to(T0_US + 60 * MINUTE_US)
        .near(PLACE.0, PLACE.1, RADIUS_M)
        .limit(50);
    let page = store.find(&query)?;
    println!(
        "{} result(s) for {officer} near ({}, {}) (index used: {})",
        page.results.len(),
        PLACE.0,
        PLACE.1,
        page.plan
    );
    for r in &page.results {
        let seconds = |us: i64| (us - r.start_us) / 1_000_000;
        let hits: Vec<String> = r
            .hits
            .iter()
            .map(|h| format!("{}s..{}s", seconds(h.from_us), seconds(h.to_us)))
            .collect();
        println!("  segment {}: near the place at {}", r.id, hits.join(", "));
    }

    let Some(first) = page.results.first() else {
        return Ok(());
    };
    // The first 64 KiB, as a player asks for them: a ranged read, CRC-checked.
    let head = store.read_range(first.id, 0, 64 * 1024)?;
    println!(
        "read {} bytes from the start of segment {}",
        head.len(),
        first.id
    );

    // An export-grade read: every byte, and the SHA-256 checked at the end.
    let mut reader = store.open_verified(first.id)?;
    let mut sink = Vec::with_capacity(usize::try_from(reader.len()).unwrap_or(0));
    reader.read_to_end(&mut sink)?;
    let info = store.info(first.id)?;
    println!(
        "segment {}: {} bytes, SHA-256 {} verified",
        first.id,
        sink.len(),
        info.sha256_hex()
    );
    Ok(())
}

/// Two officers' footage: one walks across the bridge, the other stays a mile away.
fn write_sample_store(root: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::create(root)?;
    for (i, (officer, lat0, lon0)) in [
        ("MET-004217", 51.5007, -0.1300),
        ("MET-004217", 51.5150, -0.1000),
        ("MET-001066", 51.5007, -0.1250),
    ]
    .into_iter()
    .enumerate()
    {
        let start = T0_US + i as i64 * 10 * MINUTE_US;
        // A fix every 10 s for 5 minutes, walking east about 45 m per fix.
        let gps = (0..30)
            .map(|k| GpsFix::from_degrees(start + k * 10_000_000, lat0, lon0 + k as f64 * 6.5e-4))
            .collect::<Result<Vec<_>, _>>()?;
        let meta = SegmentMeta {
            officer: officer.into(),
            device: format!("AX-B3-{i:05}"),
            start_us: start,
            end_us: start + 5 * MINUTE_US,
            gps,
            ..SegmentMeta::default()
        };
        let video: Vec<u8> = (0..(1u32 << 20) + i as u32)
            .map(|b| (b % 253) as u8)
            .collect();
        store.ingest_bytes(meta, &video)?;
    }
    store.close()?;
    Ok(())
}
