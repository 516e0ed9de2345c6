//! `fleet publish` (issue 16) of one real store against plain object_store puts of the same
//! files, in the same run.
//!
//! Store: the London catalogue of benches/index.rs (`common/london.rs`), its first
//! `FOOTAGE_BENCH_SEGMENTS` segments (default 1,000,000: 67 days, 98 M fixes), each ingested
//! through `Store::ingest_bytes` with a 256-byte video of its own (so the store has every commit
//! record and track a publish reads; the video's size does not matter to a publish). Built once
//! (under `target/bench-tmp/`, removed at the end, or under `FOOTAGE_BENCH_FLEET_DIR` in
//! `publish-n<segments>/` and kept). Ingest syncs every commit: building 1 M segments takes
//! hours on this disk, so run the build under `eatmydata` (which turns fsync into nothing;
//! the timed publishes below write to a `file://` bucket, which object_store does not fsync
//! either, so their figures do not change under it).
//!
//! Timed, each into a fresh `file://` bucket on the same disk:
//! - `first`: the first publish of the whole store (every day written);
//! - `unchanged`: the publish right after, nothing changed (every segment's record and track
//!   read and hashed, nothing written);
//! - `changed`: after a tag on the 100 newest segments (a day's reviewing: the days they
//!   started on are rewritten);
//! - baseline `puts`: the data files the first publish wrote, read into memory, then written
//!   with plain `ObjectStore::put` into another prefix (the bytes a publish must write, with
//!   no store to read and no Parquet to encode).
//!
//! Run: `FOOTAGE_BENCH_FLEET_DIR=/work/fleetbench eatmydata cargo bench --bench fleet_publish`;
//! `FOOTAGE_BENCH_SEGMENTS=20000 cargo bench --bench fleet_publish` for a quick run.

#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "common/index_harness/mod.rs"]
mod harness;
#[path = "common/london.rs"]
mod london;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use footage::fleet::Fleet;
use footage::{Store, StoreOptions};
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// The store under `dir/store`, ingested unless `dir/done` says it was.
fn fixture(dir: &Path, n: usize) -> Store {
    let root = dir.join("store");
    if dir.join("done").exists() {
        println!("store: reusing {}", root.display());
        return Store::open(&root).expect("open the store");
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("fixture dir");
    let store = Store::create_with(&root, &StoreOptions::default()).expect("create");
    let t = Instant::now();
    let mut video = [0u8; 256];
    for (i, meta) in london::Catalogue::new(n).enumerate() {
        video[..8].copy_from_slice(&(i as u64).to_le_bytes());
        store.ingest_bytes(meta, &video).expect("ingest");
        if (i + 1) % 100_000 == 0 {
            println!("  ingested {} in {:.0} s", i + 1, t.elapsed().as_secs_f64());
        }
    }
    store.checkpoint().expect("checkpoint");
    println!(
        "store: {n} segments ingested in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::fs::write(dir.join("done"), b"").expect("mark");
    store
}

fn bucket(dir: &Path, name: &str) -> (PathBuf, String) {
    let p = dir.join(name);
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("bucket");
    let url = format!("file://{}", p.display());
    (p, url)
}

/// Every file under `root` (recursively) whose name ends in `.parquet`.
fn parquet_files(root: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(root).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            parquet_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = common::env_usize("FOOTAGE_BENCH_SEGMENTS", 1_000_000);
    let (scratch, dir) = match std::env::var_os("FOOTAGE_BENCH_FLEET_DIR") {
        Some(d) => (None, PathBuf::from(d).join(format!("publish-n{n}"))),
        None => {
            let s = common::scratch("fleet-publish");
            let d = s.path().join(format!("publish-n{n}"));
            (Some(s), d)
        }
    };
    let store = fixture(&dir, n);
    let (fixes, days) = {
        let c = harness::census(london::Catalogue::new(n), london::SEED);
        (
            c.fixes,
            (c.last_start - c.first_start) as f64 / harness::DAY as f64,
        )
    };
    println!("{n} segments, {fixes} fixes, {days:.1} days");

    let (bucket_dir, url) = bucket(&dir, "bucket");
    let fleet = Fleet::open(&url).expect("bucket");
    let t = Instant::now();
    let first = fleet
        .publish(&store, "westminster", false)
        .expect("publish");
    let first_s = t.elapsed().as_secs_f64();
    let mut files = Vec::new();
    parquet_files(&bucket_dir.join("fleet"), &mut files);
    let t = Instant::now();
    let again = fleet
        .publish(&store, "westminster", false)
        .expect("publish");
    let unchanged_s = t.elapsed().as_secs_f64();
    assert_eq!(again.days_written, 0, "{again:?}");
    // A day's work: the 100 newest segments reviewed (a tag new to them: the fixture is
    // kept between runs).
    let ids = store.segment_ids();
    let tag = format!("reviewed-{}", footage::now_us());
    for id in ids.iter().rev().take(100) {
        store
            .change(*id, &footage::Change::Tag(tag.clone()), "bench")
            .expect("tag");
    }
    let t = Instant::now();
    let changed = fleet
        .publish(&store, "westminster", false)
        .expect("publish");
    let changed_s = t.elapsed().as_secs_f64();

    // Baseline: the first publish's files, put as they are into another prefix.
    let datas: Vec<(String, bytes::Bytes)> = files
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&bucket_dir).expect("under the bucket");
            (
                format!("baseline/{}", rel.display()),
                bytes::Bytes::from(std::fs::read(p).expect("read")),
            )
        })
        .collect();
    let total: u64 = datas.iter().map(|(_, b)| b.len() as u64).sum();
    let (base_dir, _) = bucket(&dir, "baseline-bucket");
    let os: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(&base_dir).expect("fs"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t = Instant::now();
    rt.block_on(async {
        for (name, b) in &datas {
            os.put(&name.as_str().into(), PutPayload::from_bytes(b.clone()))
                .await
                .expect("put");
        }
    });
    let puts_s = t.elapsed().as_secs_f64();

    println!(
        "\n| publish | time | days read | rows | days written | MiB written | µs a segment | ÷ plain puts |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, s, r) in [
        ("first", first_s, &first),
        ("unchanged", unchanged_s, &again),
        ("100 tags changed", changed_s, &changed),
    ] {
        println!(
            "| {name} | {s:.1} s | {} | {} | {} | {:.1} | {:.1} | {:.1}× |",
            r.days_read,
            r.rows,
            r.days_written,
            r.bytes_written as f64 / 1048576.0,
            s * 1e6 / n as f64,
            s / puts_s
        );
    }
    println!(
        "| baseline: plain object_store puts of the first publish's {} files | {puts_s:.1} s | | | | {:.1} | {:.1} | 1.0× |",
        datas.len(),
        total as f64 / 1048576.0,
        puts_s * 1e6 / n as f64
    );
    drop(store);
    if let Some(s) = scratch {
        common::remove_and_settle(s);
    }
}
