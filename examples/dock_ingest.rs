//! Embedding the engine in a docking station: create (or open) a store, ingest a camera's file
//! with its metadata and GPS track, and ingest it again after a dock reboot without storing it
//! twice.
//!
//! Run: `cargo run --example dock_ingest` (a store in a new temporary directory), or
//! `cargo run --example dock_ingest -- --store DIR [FILE]` to ingest a file of your own into
//! the store at DIR (created if absent). Uses only the public API: [`Store`], [`SegmentMeta`],
//! [`GpsFix`], [`Committed`].
//!
//! What it shows:
//! - `Store::create` and `Store::open` are separate: opening a directory with no store is an
//!   error ([`Error::NoStore`]), never a silent create;
//! - a segment is acknowledged (`ingest_reader` returns) only once it is durable;
//! - ingest is idempotent per (device, SHA-256): the second ingest of the same bytes from the
//!   same camera returns the first segment's id with `duplicate` set, and stores nothing.

use std::path::{Path, PathBuf};

use footage::{Committed, Error, GpsFix, SegmentMeta, Store};

/// 2025-11-20 14:03:00 UTC, µs since the Unix epoch: when the sample recording starts.
const START_US: i64 = 1_763_647_380_000_000;
/// Length of the sample recording: 10 minutes, in µs.
const LENGTH_US: i64 = 600_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: dock_ingest [--store DIR] [FILE]   (default: a temporary store, sample bytes)"
        );
        return Ok(());
    }
    let (store_dir, file) = parse(&args)?;
    let _temp; // keeps a temporary store alive until the end
    let root = match store_dir {
        Some(dir) => dir,
        None => {
            _temp = tempfile::tempdir()?;
            _temp.path().join("store")
        }
    };

    let store = open_or_create(&root)?;
    let meta = sample_meta()?;

    // The dock reads the camera's file; the store streams it into chunk records.
    let first = ingest(&store, &meta, file.as_deref())?;
    println!(
        "stored segment {} ({} bytes, sha256 {})",
        first.id,
        first.bytes,
        first.sha256_hex()
    );

    // The dock rebooted mid-transfer and offers the same file again: nothing new is stored.
    let again = ingest(&store, &meta, file.as_deref())?;
    assert!(again.duplicate && again.id == first.id);
    println!(
        "re-ingest: duplicate of segment {}, nothing stored",
        again.id
    );

    let info = store.info(first.id)?;
    println!(
        "officer {} device {}: {} GPS fixes, {} segment(s) in the store",
        info.officer,
        info.device,
        info.gps_fixes,
        store.len()
    );
    store.close()?;
    Ok(())
}

/// Opens the store at `root`, or creates it when the directory holds none.
fn open_or_create(root: &Path) -> footage::Result<Store> {
    match Store::open(root) {
        Err(Error::NoStore { .. }) => Store::create(root),
        other => other,
    }
}

/// What the dock knows about the recording: who wore the camera, which camera, when, where.
fn sample_meta() -> Result<SegmentMeta, String> {
    // One fix every 10 s along a street (degrees, WGS 84), as the camera's GPS log gives them.
    let gps = (0..60)
        .map(|i| {
            let t = START_US + i * 10_000_000;
            GpsFix::from_degrees(t, 51.5007 + i as f64 * 1e-4, -0.1246 + i as f64 * 1e-4)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SegmentMeta {
        officer: "MET-004217".into(),
        device: "AX-B3-00123".into(),
        start_us: START_US,
        end_us: START_US + LENGTH_US,
        gps,
        categories: vec!["evidential".into()],
        ..SegmentMeta::default()
    })
}

/// Ingests `file`, or sample bytes standing in for an MP4 when none is given.
fn ingest(store: &Store, meta: &SegmentMeta, file: Option<&Path>) -> footage::Result<Committed> {
    match file {
        Some(path) => {
            let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            store.ingest_reader(meta.clone(), f)
        }
        None => store.ingest_bytes(meta.clone(), &sample_video()),
    }
}

/// 3 MiB of bytes standing in for a recording.
fn sample_video() -> Vec<u8> {
    (0..3u32 << 20).map(|i| (i % 251) as u8).collect()
}

/// `[--store DIR] [FILE]`.
fn parse(args: &[String]) -> Result<(Option<PathBuf>, Option<PathBuf>), String> {
    let (mut store, mut file) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => store = Some(PathBuf::from(it.next().ok_or("--store needs a DIR")?)),
            f if !f.starts_with('-') && file.is_none() => file = Some(PathBuf::from(f)),
            other => return Err(format!("unexpected argument {other:?} (try --help)")),
        }
    }
    Ok((store, file))
}
