//! Space reclaimed per second: hole punching vs compaction, on the same layout in the same
//! run. Each iteration builds a store of `SEGMENTS` segments of `SEGMENT_MB` MiB in 64 MiB
//! volumes (setup, not timed), then deletes every other segment and reclaims its space:
//! - "punch": `Store::delete` frees each deleted segment's chunks in place
//!   (`fallocate(PUNCH_HOLE)`);
//! - "compact": deletions leave their chunks (`set_punch_holes(false)`), then
//!   `Store::compact(0.3)` rewrites the live half of every volume into new volumes.
//!
//! Both time the deletions (change records, fsyncs) plus the reclamation. Throughput is
//! the deleted bytes; the bytes actually given back (allocated blocks before − after) are
//! printed with the ratio. `cargo bench --bench reclaim` (FOOTAGE_BENCH_RECLAIM_MB sets
//! the total size, default 256).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use footage::{SegmentMeta, Store, StoreOptions};
use rand::{Rng, SeedableRng};

const SEGMENT_MB: usize = 8;

fn allocated(store: &Store) -> u64 {
    store
        .stats()
        .unwrap()
        .volume_list
        .iter()
        .map(|v| v.allocated_bytes)
        .sum()
}

/// A fresh store of `n` segments; returns it with its temp dir and the ids to delete.
fn build(n: usize) -> (tempfile::TempDir, Store, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        volume_size: 64 << 20,
        ..StoreOptions::default()
    };
    let store = footage::testing::open_or_create_with(dir.path().join("s"), &opts).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut bytes = vec![0u8; SEGMENT_MB << 20];
    let mut doomed = Vec::new();
    for i in 0..n {
        rng.fill(&mut bytes[..]);
        let start = 1_759_276_800_000_000 + i as i64 * 1_000_000;
        let meta = SegmentMeta {
            officer: "MET-1".into(),
            device: "AX-1".into(),
            start_us: start,
            end_us: start + 600_000_000,
            ..SegmentMeta::default()
        };
        let id = store.ingest_bytes(meta, &bytes).unwrap().id;
        if i % 2 == 0 {
            doomed.push(id);
        }
    }
    store.checkpoint().unwrap();
    (dir, store, doomed)
}

fn reclaim(c: &mut Criterion) {
    let total_mb: usize = std::env::var("FOOTAGE_BENCH_RECLAIM_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let n = (total_mb / SEGMENT_MB).max(2);
    let deleted = (n.div_ceil(2) * (SEGMENT_MB << 20)) as u64;
    let mut group = c.benchmark_group(format!("reclaim/{total_mb}MiB"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(criterion::Throughput::Bytes(deleted));
    let mut freed = [(0u64, Duration::ZERO); 2];
    for (k, name) in ["punch", "compact"].iter().enumerate() {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let (_dir, store, doomed) = build(n);
                    let before = allocated(&store);
                    let t = Instant::now();
                    store.set_punch_holes(k == 0);
                    for id in &doomed {
                        store.delete(*id, "bench").unwrap();
                    }
                    if k == 1 {
                        let s = store.compact(0.3, "bench").unwrap();
                        assert!(s.failed.is_empty(), "{s:?}");
                    }
                    let took = t.elapsed();
                    spent += took;
                    freed[k].0 += before.saturating_sub(allocated(&store));
                    freed[k].1 += took;
                }
                spent
            })
        });
    }
    group.finish();
    let rate = |(b, t): (u64, Duration)| b as f64 / t.as_secs_f64().max(1e-9) / (1 << 20) as f64;
    let (p, q) = (rate(freed[0]), rate(freed[1]));
    eprintln!(
        "reclaim/{total_mb}MiB: bytes given back per second: punch {p:.0} MiB/s, compact {q:.0} MiB/s, punch/compact = {:.1}",
        p / q.max(1e-9)
    );
}

criterion_group!(benches, reclaim);
criterion_main!(benches);
