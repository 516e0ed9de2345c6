//! Range-read throughput from sealed (memory-mapped) volumes, against `pread` of the same bytes
//! from a plain file, measured in the same run with a warm page cache for both.
//!
//! Setup (untimed): a store with 64 MiB volumes and 1 MiB chunks receives one 256 MiB segment
//! (257 chunks over 5 volumes), then a 64 MiB filler segment, so every volume holding the big
//! segment is full and sealed (read through mmap); the same 256 MiB go to a plain file. Both
//! are then read once in full, so the page cache is warm and the comparison is of the read
//! paths, not of the disk.
//!
//! Groups (each with the baseline `raw_pread` and footage variants):
//! - `read_random_64KiB`, `read_random_1MiB`: ranges at random (unaligned) offsets, the same
//!   sequence of offsets for every function. `raw_pread`: `read_exact_at` into a reused
//!   buffer; `footage_read_range`: `Store::read_range` (opens the segment, reads its commit
//!   record, returns a new Vec); `footage_reader_seek`: one `SegmentReader` kept open,
//!   `seek` + `read_exact` into a reused buffer; `raw_pread_crc_chunks` (a reference, not a
//!   goal baseline): pread of the whole 1 MiB chunk(s) covering the range from the plain file,
//!   CRC32 of each, copy of the range: the cost of the engine's verify-the-whole-chunk design
//!   without the engine;
//! - `read_sequential_256MiB`: the whole segment in 1 MiB reads. `raw_pread`: `read_exact_at`
//!   loop; `footage_reader`: `open_segment` + `read_exact` loop.
//!
//! Run: `cargo bench --bench read`. The table at the end gives footage / pread ratios.

#[path = "common/mod.rs"]
mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use footage::{Store, StoreOptions};

use common::{KIB, MIB};

const SEGMENT: usize = 256 * MIB;
const OFFSETS: usize = 4096;
/// Payload bytes per chunk with the store's 1 MiB chunks (a 32-byte record header each).
const CHUNK: usize = MIB - 32;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    id: u64,
    raw: File,
}

fn build() -> Fixture {
    let dir = common::scratch("read-");
    let t = Instant::now();
    let opts = StoreOptions {
        volume_size: 64 << 20,
        chunk_size: 1 << 20,
        ..StoreOptions::default()
    };
    let store =
        footage::testing::open_or_create_with(dir.path().join("store"), &opts).expect("open store");
    let data = common::random_bytes(SEGMENT, 42);
    let id = store
        .ingest_bytes(common::meta(0, 0, 1), &data)
        .expect("ingest")
        .id;
    let filler = common::random_bytes(64 * MIB, 43);
    store
        .ingest_bytes(common::meta(0, 1, 1), &filler)
        .expect("ingest filler");
    let stats = store.stats().expect("stats");
    let sealed = stats.volume_list.iter().filter(|v| v.sealed).count();
    println!(
        "read fixture: {} volumes, {} sealed (the 256 MiB segment spans the first 5)",
        stats.volume_list.len(),
        sealed
    );
    assert!(
        stats.volume_list.iter().take(5).all(|v| v.sealed),
        "the volumes holding the segment must be sealed: {:?}",
        stats.volume_list
    );
    let raw_path = dir.path().join("raw.bin");
    std::fs::write(&raw_path, &data).expect("write raw file");
    let raw = File::open(&raw_path).expect("open raw file");
    raw.sync_all().expect("sync raw");

    // Warm both: read everything once and check the bytes.
    let mut back = Vec::with_capacity(SEGMENT);
    store
        .open_segment(id)
        .expect("open segment")
        .read_to_end(&mut back)
        .expect("read segment");
    assert!(back == data, "footage returned other bytes");
    let mut raw_back = vec![0u8; SEGMENT];
    raw.read_exact_at(&mut raw_back, 0).expect("read raw");
    assert!(raw_back == data, "raw file returned other bytes");
    println!(
        "read fixture built in {} (store + raw file, both read once)",
        common::fmt_duration(t.elapsed())
    );
    Fixture {
        _dir: dir,
        store,
        id,
        raw,
    }
}

fn offsets(len: usize, seed: u64) -> Vec<u64> {
    let mut rng = common::Rng(seed);
    (0..OFFSETS)
        .map(|_| rng.below((SEGMENT - len) as u64 + 1))
        .collect()
}

fn bench_random(c: &mut Criterion, fx: &Fixture, len: usize, name: &str) {
    let offs = offsets(len, len as u64);
    let group = format!("read_random_{name}");
    let mut g = c.benchmark_group(&group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(len as u64));
    let mut buf = vec![0u8; len];
    let mut next = 0usize;
    g.bench_function("raw_pread", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let off = offs[next % OFFSETS];
                next += 1;
                fx.raw.read_exact_at(&mut buf, off).expect("pread");
                std::hint::black_box(&buf);
            }
            let d = t.elapsed();
            common::record(&group, "raw_pread", iters, len as u64, d);
            d
        })
    });
    // Reference: what verifying whole chunks costs without the engine: pread the 1 MiB chunk(s)
    // covering the range (footage's chunk payload is 1 MiB - 32 B), CRC32 each, copy the range.
    let mut span = vec![0u8; 3 * MIB];
    g.bench_function("raw_pread_crc_chunks", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let off = offs[next % OFFSETS] as usize;
                next += 1;
                let first = off / CHUNK * CHUNK;
                let last = ((off + len).div_ceil(CHUNK) * CHUNK).min(SEGMENT);
                let span = &mut span[..last - first];
                fx.raw.read_exact_at(span, first as u64).expect("pread");
                for piece in span.chunks(CHUNK) {
                    std::hint::black_box(crc32fast::hash(piece));
                }
                buf.copy_from_slice(&span[off - first..off - first + len]);
                std::hint::black_box(&buf);
            }
            let d = t.elapsed();
            common::record(&group, "raw_pread_crc_chunks", iters, len as u64, d);
            d
        })
    });
    g.bench_function("footage_read_range", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let off = offs[next % OFFSETS];
                next += 1;
                let v = fx
                    .store
                    .read_range(fx.id, off, len as u64)
                    .expect("read_range");
                assert_eq!(v.len(), len);
                std::hint::black_box(v);
            }
            let d = t.elapsed();
            common::record(&group, "footage_read_range", iters, len as u64, d);
            d
        })
    });
    let mut reader = fx.store.open_segment(fx.id).expect("open segment");
    g.bench_function("footage_reader_seek", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let off = offs[next % OFFSETS];
                next += 1;
                reader.seek(SeekFrom::Start(off)).expect("seek");
                reader.read_exact(&mut buf).expect("read");
                std::hint::black_box(&buf);
            }
            let d = t.elapsed();
            common::record(&group, "footage_reader_seek", iters, len as u64, d);
            d
        })
    });
    g.finish();
}

fn bench_sequential(c: &mut Criterion, fx: &Fixture) {
    let group = "read_sequential_256MiB".to_string();
    let mut g = c.benchmark_group(&group);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SEGMENT as u64));
    let mut buf = vec![0u8; MIB];
    g.bench_function("raw_pread", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let mut off = 0;
                while off < SEGMENT {
                    fx.raw.read_exact_at(&mut buf, off as u64).expect("pread");
                    std::hint::black_box(&buf);
                    off += MIB;
                }
            }
            let d = t.elapsed();
            common::record(&group, "raw_pread", iters, SEGMENT as u64, d);
            d
        })
    });
    g.bench_function("footage_reader", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let mut r = fx.store.open_segment(fx.id).expect("open segment");
                let mut off = 0;
                while off < SEGMENT {
                    r.read_exact(&mut buf).expect("read");
                    std::hint::black_box(&buf);
                    off += MIB;
                }
            }
            let d = t.elapsed();
            common::record(&group, "footage_reader", iters, SEGMENT as u64, d);
            d
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let fx = build();
    bench_random(&mut c, &fx, 64 * KIB, "64KiB");
    bench_random(&mut c, &fx, MIB, "1MiB");
    bench_sequential(&mut c, &fx);
    c.final_summary();
    common::print_ratio_table(
        "range reads (warm page cache)",
        &["raw_pread"],
        &[
            "raw_pread_crc_chunks",
            "footage_read_range",
            "footage_reader_seek",
            "footage_reader",
        ],
    );
}
