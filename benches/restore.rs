//! Restore throughput: `Store::restore` of an evicted segment from a `file://` tier (fetch in
//! 8 MiB spans with the next span fetched while this one is written, CRC32 per 1 MiB block,
//! chunk records appended and fsynced, SHA-256 of the whole, commit record and `Restored`
//! change record, audit entry) against a plain object_store `get` of the same part object
//! into memory, in the same run. Goal: restore / get >= 0.9.
//!
//! Each iteration ingests, uploads and evicts a fresh segment (not timed), times the restore
//! (or the get of that segment's part), then deletes it (not timed) so the disk does not fill.
//! `cargo bench --bench restore` (FOOTAGE_BENCH_RESTORE_MB sets the segment size, default 64).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use footage::StoreOptions;
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;

const GROUP_FUNCS: [&str; 2] = ["object_store get", "footage restore"];

fn restore(c: &mut Criterion) {
    let mb: usize = std::env::var("FOOTAGE_BENCH_RESTORE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let len = mb * common::MIB;
    let dir = common::scratch("restore");
    let root = dir.path().join("store");
    let cloud = dir.path().join("cloud");
    let store = footage::testing::open_or_create_with(&root, &StoreOptions::default()).unwrap();
    let policy = std::fs::read_to_string(root.join("policy.toml"))
        .unwrap()
        .replace(
            "file:///var/lib/footage-cloud",
            &format!("file://{}", cloud.display()),
        );
    std::fs::write(root.join("policy.toml"), policy).unwrap();
    std::fs::create_dir_all(&cloud).unwrap();
    let base = object_store::local::LocalFileSystem::new_with_prefix(&cloud).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sid = store.config().store_id.to_ascii_lowercase();
    let mut n = 0u64;
    // A fresh evicted segment: (id, the object paths of its parts).
    let evicted = |n: &mut u64| -> (u64, Vec<ObjPath>) {
        *n += 1;
        let mut data = common::random_bytes(len, *n);
        common::stamp(&mut data, *n);
        let id = store
            .ingest_bytes(common::meta(0, *n, 4), &data)
            .unwrap()
            .id;
        store.upload(id, "bench", &mut |_| {}).unwrap();
        store.evict(id, "bench").unwrap();
        let parts = (len as u64).div_ceil(footage::tier::PART_SIZE);
        let paths = (0..parts)
            .map(|p| ObjPath::from(format!("{sid}/segments/{id:020}/part-{p:05}")))
            .collect();
        (id, paths)
    };
    let group_name = format!("restore/file/{mb}MiB");
    let mut group = c.benchmark_group(&group_name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(criterion::Throughput::Bytes(len as u64));
    group.bench_function(GROUP_FUNCS[0], |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (id, paths) = evicted(&mut n);
                let t = Instant::now();
                let mut got = 0;
                for path in &paths {
                    got += rt.block_on(async {
                        base.get(path).await.unwrap().bytes().await.unwrap().len()
                    });
                }
                let d = t.elapsed();
                assert_eq!(got, len);
                total += d;
                store.delete(id, "bench").unwrap();
            }
            common::record(&group_name, GROUP_FUNCS[0], iters, len as u64, total);
            total
        })
    });
    group.bench_function(GROUP_FUNCS[1], |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (id, _) = evicted(&mut n);
                let t = Instant::now();
                let o = store.restore(id, "bench").unwrap();
                let d = t.elapsed();
                assert_eq!(o.outcome, "restored");
                total += d;
                store.delete(id, "bench").unwrap();
            }
            common::record(&group_name, GROUP_FUNCS[1], iters, len as u64, total);
            total
        })
    });
    group.finish();
    common::print_ratio_table("restore", &[GROUP_FUNCS[0]], &[GROUP_FUNCS[1]]);
    drop(store);
    common::remove_and_settle(dir);
}

criterion_group!(benches, restore);
criterion_main!(benches);
