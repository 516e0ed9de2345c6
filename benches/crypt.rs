//! The cost of encryption at rest: the same work on a plain store (the baseline) and on an
//! encrypted one (AES-256-GCM, `StoreOptions { key: Some(..), .. }`), in the same run.
//!
//! Groups (functions `plain` and `encrypted` in each):
//! - `ingest_16MiB`: `Store::ingest_bytes` of a 16 MiB segment (unique bytes each time) with
//!   its durable commit (fdatasync of chunks and commit record, audit entry);
//! - `read_sequential_64MiB`: a whole 64 MiB segment through `open_segment` in 1 MiB reads,
//!   warm page cache (so the comparison is of the read paths, not of the disk);
//! - `read_random_64KiB`: `read_range` of 64 KiB at random unaligned offsets of that segment
//!   (the same offsets for both);
//! - `aead_1MiB` (a reference for the crypto alone): `encrypted` seals 1 MiB with
//!   `crate::crypt`, `plain` copies 1 MiB (the copy sealing makes anyway).
//!
//! Run: `cargo bench --bench crypt`. The table at the end gives encrypted / plain throughput
//! ratios (below 1: encryption is slower). AES-NI is used when the CPU has it (`grep aes
//! /proc/cpuinfo`): the `aes` crate detects it at run time.

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use footage::{Key, Store, StoreOptions};

use common::{KIB, MIB};

const INGEST: usize = 16 * MIB;
const SEGMENT: usize = 64 * MIB;
const OFFSETS: usize = 1024;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    /// The 64 MiB segment read by the read groups.
    id: u64,
}

fn fixture(name: &str, encrypt: bool) -> Fixture {
    let dir = common::scratch(&format!("crypt-{name}-"));
    let opts = StoreOptions {
        volume_size: 256 << 20,
        chunk_size: 1 << 20,
        key: encrypt.then(|| Key::from_bytes([0x5a; 32])),
        ..StoreOptions::default()
    };
    let store =
        footage::testing::open_or_create_with(dir.path().join("store"), &opts).expect("open store");
    let data = common::random_bytes(SEGMENT, 42);
    let id = store
        .ingest_bytes(common::meta(0, 0, 1), &data)
        .expect("ingest")
        .id;
    // Warm the page cache.
    let got = store.read_range(id, 0, SEGMENT as u64).expect("read");
    assert_eq!(got, data);
    Fixture {
        _dir: dir,
        store,
        id,
    }
}

fn bench_ingest(c: &mut Criterion, fx: &[(&str, Fixture)]) {
    let group = "ingest_16MiB";
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(INGEST as u64));
    let mut data = common::random_bytes(INGEST, 7);
    let mut unique = 1u64 << 40;
    for (name, f) in fx {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    unique += 1;
                    common::stamp(&mut data, unique);
                    let t = Instant::now();
                    f.store
                        .ingest_bytes(common::meta(0, 1 + i, 1), &data)
                        .expect("ingest");
                    total += t.elapsed();
                }
                common::record(group, name, iters, INGEST as u64, total);
                total
            })
        });
    }
    g.finish();
}

fn bench_sequential(c: &mut Criterion, fx: &[(&str, Fixture)]) {
    let group = "read_sequential_64MiB";
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SEGMENT as u64));
    let mut buf = vec![0u8; MIB];
    for (name, f) in fx {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    let mut r = f.store.open_segment(f.id).expect("open");
                    for _ in 0..SEGMENT / MIB {
                        r.read_exact(&mut buf).expect("read");
                        std::hint::black_box(&buf);
                    }
                }
                let d = t.elapsed();
                common::record(group, name, iters, SEGMENT as u64, d);
                d
            })
        });
    }
    g.finish();
}

fn bench_random(c: &mut Criterion, fx: &[(&str, Fixture)]) {
    let group = "read_random_64KiB";
    let len = 64 * KIB;
    let mut rng = common::Rng(99);
    let offs: Vec<u64> = (0..OFFSETS)
        .map(|_| rng.below((SEGMENT - len) as u64))
        .collect();
    let mut g = c.benchmark_group(group);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(len as u64));
    for (name, f) in fx {
        let mut next = 0usize;
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    let off = offs[next % OFFSETS];
                    next += 1;
                    let v = f.store.read_range(f.id, off, len as u64).expect("read");
                    std::hint::black_box(&v);
                }
                let d = t.elapsed();
                common::record(group, name, iters, len as u64, d);
                d
            })
        });
    }
    g.finish();
}

fn bench_aead(c: &mut Criterion) {
    let group = "aead_1MiB";
    let crypt = footage::crypt::Crypt::new(Key::from_bytes([1; 32]), [2; 16]);
    let seg = crypt.segment(1);
    let data = common::random_bytes(MIB, 3);
    let mut g = c.benchmark_group(group);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("plain", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(data.clone());
            }
            let d = t.elapsed();
            common::record(group, "plain", iters, MIB as u64, d);
            d
        })
    });
    g.bench_function("encrypted", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for i in 0..iters {
                std::hint::black_box(seg.seal(footage::crypt::DOMAIN_CHUNK, i, &[&data]));
            }
            let d = t.elapsed();
            common::record(group, "encrypted", iters, MIB as u64, d);
            d
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let aes_ni = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .split_whitespace()
        .any(|w| w == "aes");
    println!("AES-NI available: {aes_ni}");
    let fx = [
        ("plain", fixture("plain", false)),
        ("encrypted", fixture("enc", true)),
    ];
    bench_aead(&mut c);
    bench_sequential(&mut c, &fx);
    bench_random(&mut c, &fx);
    bench_ingest(&mut c, &fx);
    c.final_summary();
    common::print_ratio_table("encryption at rest", &["plain"], &["encrypted"]);
    for (_, f) in fx {
        common::remove_and_settle(f._dir);
    }
}
