//! The read cache of evicted footage (`[cache]`): the first viewing of an evicted segment
//! (cache cold: every block from a `file://` cloud tier) and the second (cache warm), against a
//! local read of a never-evicted copy of the same bytes, in the same run. Goal: the second
//! viewing within 2x of the local read (a ratio of at least 0.5 in the table).
//!
//! Setup (untimed): a store with 64 MiB volumes and 1 MiB chunks, a read cache of twice the
//! segment, a `file://` tier in a temporary directory. One segment (`FOOTAGE_BENCH_CACHE_MIB`,
//! default 64 MiB) is ingested twice (two devices): one copy is uploaded and evicted, the other
//! stays local. Everything is read once first, so the page cache is warm for the volumes, the
//! cloud's part files and the cache files alike: the comparison is of the read paths.
//!
//! Groups, each reading the whole segment in 64 KiB ranges:
//! - `view_64KiB_reader`: one `SegmentReader`, `read_exact` of 64 KiB at a time (a player
//!   streaming the file);
//! - `view_64KiB_read_range`: `Store::read_range` per 64 KiB (a new reader per range, as the
//!   HTTP server does per range request). In the second viewing the first range of each block
//!   reads and checks its cache file, the other fifteen are served from the cache's memory
//!   layer of verified blocks (`crate::cache::memory`); the counts are printed at the end.
//!
//! Functions: `local` (the baseline: the never-evicted copy), `first_viewing` (the cache is
//! emptied before each viewing, untimed), `second_viewing` (the cache holds every block).
//!
//! Run: `cargo bench --bench cache` (`FOOTAGE_BENCH_CACHE_MIB=16` for a quicker run).

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use footage::{SegmentMeta, Store, StoreOptions};

use common::{KIB, MIB};

const RANGE: usize = 64 * KIB;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    evicted: u64,
    local: u64,
    len: usize,
    data: Vec<u8>,
}

fn meta(device: &str) -> SegmentMeta {
    SegmentMeta {
        officer: "MET-1".into(),
        device: device.into(),
        start_us: common::DAY0_US,
        end_us: common::DAY0_US + 60_000_000,
        ..SegmentMeta::default()
    }
}

fn build(len: usize) -> Fixture {
    let dir = common::scratch("cache-");
    let root = dir.path().join("store");
    let cloud = dir.path().join("cloud");
    let opts = StoreOptions {
        volume_size: 64 << 20,
        chunk_size: 1 << 20,
        ..StoreOptions::default()
    };
    footage::testing::open_or_create_with(&root, &opts)
        .expect("create store")
        .close()
        .expect("close");
    let cfg = root.join("footage.toml");
    let mut text = std::fs::read_to_string(&cfg).expect("read footage.toml");
    text.push_str(&format!("\n[cache]\nmax_bytes = {}\n", 2 * len + 4 * MIB));
    std::fs::write(&cfg, text).expect("write footage.toml");
    let policy = format!(
        "[cloud]\nurl = \"file://{}\"\n\n[category.default]\nupload = false\n\
         evict_after = \"never\"\ndelete_after = \"never\"\n\n[disk]\nhigh_watermark = 1.0\n",
        cloud.display()
    );
    std::fs::write(root.join("policy.toml"), policy).expect("write policy.toml");
    let store = footage::testing::open_or_create_with(&root, &opts).expect("open store");
    let data = common::random_bytes(len, 7);
    let evicted = store.ingest_bytes(meta("AX-1"), &data).expect("ingest").id;
    let local = store.ingest_bytes(meta("AX-2"), &data).expect("ingest").id;
    store.upload(evicted, "bench", &mut |_| {}).expect("upload");
    store.evict(evicted, "bench").expect("evict");
    let fx = Fixture {
        _dir: dir,
        store,
        evicted,
        local,
        len,
        data,
    };
    // Warm the page cache for the volumes and the cloud's parts, and check the bytes.
    for id in [fx.local, fx.evicted] {
        let mut back = Vec::with_capacity(len);
        fx.store
            .open_segment(id)
            .expect("open segment")
            .read_to_end(&mut back)
            .expect("read");
        assert!(back == fx.data, "segment {id} read back other bytes");
    }
    fx
}

/// Reads segment `id` in 64 KiB ranges, through one reader or a `read_range` per range.
fn view(fx: &Fixture, id: u64, per_range: bool, buf: &mut [u8]) {
    if per_range {
        let mut off = 0;
        while off < fx.len {
            let v = fx
                .store
                .read_range(id, off as u64, RANGE as u64)
                .expect("read_range");
            std::hint::black_box(&v);
            off += v.len();
        }
    } else {
        let mut r = fx.store.open_segment(id).expect("open segment");
        let mut off = 0;
        while off < fx.len {
            let n = RANGE.min(fx.len - off);
            r.read_exact(&mut buf[..n]).expect("read");
            std::hint::black_box(&buf[..n]);
            off += n;
        }
    }
}

fn bench(c: &mut Criterion, fx: &Fixture, per_range: bool) {
    let group = if per_range {
        "view_64KiB_read_range"
    } else {
        "view_64KiB_reader"
    };
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(fx.len as u64));
    let mut buf = vec![0u8; RANGE];
    let bytes = fx.len as u64;
    g.bench_function("local", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                view(fx, fx.local, per_range, &mut buf);
            }
            let d = t.elapsed();
            common::record(group, "local", iters, bytes, d);
            d
        })
    });
    g.bench_function("first_viewing", |b| {
        b.iter_custom(|iters| {
            let mut d = Duration::ZERO;
            for _ in 0..iters {
                fx.store.clear_read_cache();
                let t = Instant::now();
                view(fx, fx.evicted, per_range, &mut buf);
                d += t.elapsed();
            }
            common::record(group, "first_viewing", iters, bytes, d);
            d
        })
    });
    view(fx, fx.evicted, per_range, &mut buf);
    let blocks = fx.len.div_ceil(MIB) as u64;
    let cached = fx.store.read_cache_stats().map_or(0, |s| s.blocks);
    assert_eq!(cached, blocks, "the cache must hold every block");
    g.bench_function("second_viewing", |b| {
        b.iter_custom(|iters| {
            let misses = fx.store.read_cache_stats().map_or(0, |s| s.misses);
            let t = Instant::now();
            for _ in 0..iters {
                view(fx, fx.evicted, per_range, &mut buf);
            }
            let d = t.elapsed();
            let after = fx.store.read_cache_stats().map_or(0, |s| s.misses);
            assert_eq!(after, misses, "a second viewing must not reach the cloud");
            common::record(group, "second_viewing", iters, bytes, d);
            d
        })
    });
    g.finish();
}

fn main() {
    let mib: usize = std::env::var("FOOTAGE_BENCH_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut c = Criterion::default().configure_from_args();
    let fx = build(mib * MIB);
    println!(
        "cache fixture: a {mib} MiB segment evicted to file://, and a local copy of it; cache {:?}",
        fx.store.read_cache_stats().map(|s| s.max_bytes)
    );
    bench(&mut c, &fx, false);
    bench(&mut c, &fx, true);
    c.final_summary();
    if let Some(s) = fx.store.read_cache_stats() {
        println!(
            "read cache after the run: {} hits ({} from memory), {} misses, {} blocks in memory",
            s.hits, s.memory_hits, s.misses, s.memory_blocks
        );
    }
    common::print_ratio_table(
        &format!("viewing a {mib} MiB segment in 64 KiB ranges (warm page cache)"),
        &["local"],
        &["first_viewing", "second_viewing"],
    );
}
