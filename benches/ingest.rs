//! Ingest throughput with fsync on commit, against a raw-file baseline measured in the same run.
//!
//! For each (segment size, streams) pair, one criterion group with three functions:
//! - `raw_file`: the same bytes appended to ONE plain file with `write_all` (one call per
//!   segment, the same buffer), then one `fdatasync` per segment. With several streams, each
//!   thread appends its segment under a mutex (so segments do not interleave) and then calls
//!   `sync_data` itself, outside the mutex, as the engine's committers do;
//! - `raw_file_sha256`: not a goal baseline but a reference: `raw_file` plus the SHA-256 of
//!   each segment computed on its stream's thread before the write, which the engine must
//!   compute for its dedup key. It shows how much of the gap is the hash itself;
//! - `footage`: `begin_segment` → `write` (the whole segment buffer in one call) → `commit`,
//!   one thread per stream, all sharing one `Store` (same data dir and footage day, hence the
//!   same active volume and group commit).
//!
//! Every iteration starts from an empty file / a freshly created store (setup outside the
//! timed region: the store is opened and its first volume created by an untimed 4 KiB segment;
//! the raw file is created and fsynced with its directory), and removes it afterwards, so
//! disk usage stays below ~2 GiB plus the buffers. After each removal the bench root directory
//! is fsynced (untimed) so the discards of the freed blocks (the filesystem is mounted with
//! `discard`) do not land in the next timed fsync.
//!
//! Every segment gets a unique 8-byte stamp at its start, so the engine never takes its
//! duplicate path.
//!
//! After each case's criterion group, an interleaved pass (`FOOTAGE_BENCH_ROUNDS`, default 5)
//! runs one iteration of each function back to back per round, order rotating, and reports the
//! median of the per-round ratios and the ratio of best times: the disk's noise (host
//! write-back stalls) only ever adds time, so best-time ratios are the stable figure.
//!
//! `FOOTAGE_BENCH_CRITERION=0` skips the criterion groups and runs only the interleaved pass.
//!
//! Run: `cargo bench --bench ingest`. The tables at the end give footage / raw ratios.

#[path = "common/mod.rs"]
mod common;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use footage::StoreOptions;
use sha2::{Digest, Sha256};

use common::{KIB, MIB};

/// Unique stamp source for every segment written in this process.
static UNIQUE: AtomicU64 = AtomicU64::new(1);

/// (segment size, concurrent streams, segments per stream per iteration).
const CASES: &[(usize, usize, usize)] = &[
    (MIB, 1, 64),
    (MIB, 8, 16),
    (16 * MIB, 1, 16),
    (16 * MIB, 8, 4),
    (256 * MIB, 1, 2),
    (256 * MIB, 8, 1),
];

fn size_name(bytes: usize) -> String {
    format!("{}MiB", bytes / MIB)
}

/// Runs `work(stream, buf)` on one thread per buffer, all released together; returns the
/// wall time from release to the last thread finishing.
fn run_streams<F>(bufs: &mut [Vec<u8>], work: F) -> Duration
where
    F: Fn(usize, &mut Vec<u8>) + Sync,
{
    let barrier = Barrier::new(bufs.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = bufs
            .iter_mut()
            .enumerate()
            .map(|(i, buf)| {
                let barrier = &barrier;
                let work = &work;
                s.spawn(move || {
                    barrier.wait();
                    work(i, buf);
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for h in handles {
            h.join().expect("stream thread panicked");
        }
        t.elapsed()
    })
}

fn sync_dir(dir: &Path) {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .expect("sync dir");
}

/// One iteration of the raw baseline: a new file, `per_stream` segments per stream. With
/// `hash`, each segment's SHA-256 is also computed (on its stream's thread, before the write),
/// as the engine must for its dedup key.
fn raw_iteration(bufs: &mut [Vec<u8>], per_stream: usize, hash: bool) -> Duration {
    let dir = common::scratch("ingest-raw-");
    let path = dir.path().join("raw.bin");
    let file = File::create(&path).expect("create raw file");
    file.sync_all().expect("sync raw file");
    sync_dir(dir.path());
    let append = Mutex::new(&file);
    let d = run_streams(bufs, |_, buf| {
        for _ in 0..per_stream {
            common::stamp(buf, UNIQUE.fetch_add(1, Ordering::Relaxed));
            if hash {
                std::hint::black_box(Sha256::digest(&buf[..]));
            }
            append.lock().unwrap().write_all(buf).expect("raw write");
            file.sync_data().expect("raw fdatasync");
        }
    });
    drop(file);
    common::remove_and_settle(dir);
    d
}

/// One iteration of footage: a new store, `per_stream` segments per stream.
fn footage_iteration(bufs: &mut [Vec<u8>], per_stream: usize) -> Duration {
    let dir = common::scratch("ingest-store-");
    let opts = StoreOptions {
        volume_size: 4 << 30,
        ..StoreOptions::default()
    };
    let store = footage::testing::open_or_create_with(dir.path(), &opts).expect("open store");
    // Create the active volume outside the timed region (same footage day as below).
    let mut first = common::random_bytes(4 * KIB, 7);
    common::stamp(&mut first, UNIQUE.fetch_add(1, Ordering::Relaxed));
    store
        .ingest_bytes(common::meta(0, 0, 16), &first)
        .expect("warm-up segment");
    let d = run_streams(bufs, |stream, buf| {
        for k in 0..per_stream {
            common::stamp(buf, UNIQUE.fetch_add(1, Ordering::Relaxed));
            let mut w = store
                .begin_segment(common::meta(stream, k as u64, 16))
                .expect("begin");
            w.write(buf).expect("write");
            let c = w.commit().expect("commit");
            assert!(!c.duplicate, "benchmark content must be unique");
        }
    });
    assert_eq!(store.len(), 1 + bufs.len() * per_stream);
    drop(store);
    common::remove_and_settle(dir);
    d
}

#[derive(Clone, Copy)]
enum Func {
    Raw,
    RawSha,
    Footage,
}

const FUNCS: [Func; 3] = [Func::Raw, Func::RawSha, Func::Footage];

impl Func {
    fn name(self) -> &'static str {
        match self {
            Func::Raw => "raw_file",
            Func::RawSha => "raw_file_sha256",
            Func::Footage => "footage",
        }
    }

    fn run(self, bufs: &mut [Vec<u8>], per_stream: usize) -> Duration {
        match self {
            Func::Raw => raw_iteration(bufs, per_stream, false),
            Func::RawSha => raw_iteration(bufs, per_stream, true),
            Func::Footage => footage_iteration(bufs, per_stream),
        }
    }
}

/// Rounds of the interleaved pass (`FOOTAGE_BENCH_ROUNDS`, default 5; 0 skips it).
fn rounds() -> usize {
    std::env::var("FOOTAGE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// False with `FOOTAGE_BENCH_CRITERION=0`: only the interleaved pass runs (quicker, and on a
/// noisy machine its best-of-rounds ratios are the figure that matters).
fn criterion_runs() -> bool {
    std::env::var("FOOTAGE_BENCH_CRITERION").map_or(true, |v| v != "0")
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The interleaved pass: each round runs one iteration of every function back to back (the
/// order rotating from round to round), so slow drifts in the machine's load hit all three
/// alike; the ratio of each round is taken within the round, and the median over rounds
/// printed. Less exposed to noise than ratios of criterion's separate runs.
fn interleaved(
    group: &str,
    bufs: &mut [Vec<u8>],
    per_stream: usize,
    bytes: u64,
    rounds: usize,
    out: &mut Vec<String>,
) {
    let mut times: Vec<[f64; 3]> = Vec::new();
    for r in 0..rounds {
        let mut t = [0f64; 3];
        for k in 0..FUNCS.len() {
            let i = (r + k) % FUNCS.len();
            t[i] = FUNCS[i].run(bufs, per_stream).as_secs_f64();
        }
        times.push(t);
    }
    let rate = |i: usize| median_f64(times.iter().map(|t| bytes as f64 / t[i] / 1e6).collect());
    // Throughput of `a` over throughput of `b`, per round, median over rounds.
    let ratio = |a: usize, b: usize| median_f64(times.iter().map(|t| t[b] / t[a]).collect());
    let best = |i: usize| times.iter().map(|t| t[i]).fold(f64::INFINITY, f64::min);
    out.push(format!(
        "{:<18} {:>8.0} {:>8.0} {:>8.0} {:>12.3} {:>7.3} {:>12.3} {:>7.3} {:>10.3}  [{}]",
        group,
        rate(0),
        rate(1),
        rate(2),
        ratio(2, 0),
        best(0) / best(2),
        ratio(2, 1),
        best(1) / best(2),
        ratio(1, 0),
        times
            .iter()
            .map(|t| format!("{:.2}", t[0] / t[2]))
            .collect::<Vec<_>>()
            .join(" ")
    ));
}

fn bench_ingest(c: &mut Criterion) -> Vec<String> {
    let filter = common::cli_filter();
    let rounds = if common::cli_test_mode() { 0 } else { rounds() };
    let mut paired = Vec::new();
    for &(seg, streams, per_stream) in CASES {
        let group_name = format!("ingest_{}_x{}", size_name(seg), streams);
        if filter
            .as_deref()
            .is_some_and(|f| !group_name.contains(f.split('/').next().unwrap_or(f)))
        {
            continue;
        }
        let bytes = (seg * streams * per_stream) as u64;
        let mut bufs: Vec<Vec<u8>> = (0..streams)
            .map(|i| common::random_bytes(seg, 0x5EED + i as u64))
            .collect();
        if !criterion_runs() {
            if rounds > 0 {
                interleaved(
                    &group_name,
                    &mut bufs,
                    per_stream,
                    bytes,
                    rounds,
                    &mut paired,
                );
            }
            continue;
        }
        let mut g = c.benchmark_group(&group_name);
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2))
            .throughput(Throughput::Bytes(bytes));
        for f in FUNCS {
            g.bench_function(BenchmarkId::from_parameter(f.name()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += f.run(&mut bufs, per_stream);
                    }
                    common::record(&group_name, f.name(), iters, bytes, total);
                    total
                })
            });
        }
        g.finish();
        if rounds > 0 {
            interleaved(
                &group_name,
                &mut bufs,
                per_stream,
                bytes,
                rounds,
                &mut paired,
            );
        }
    }
    paired
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let paired = bench_ingest(&mut c);
    c.final_summary();
    common::print_ratio_table(
        "ingest (fsync on commit), criterion runs",
        &["raw_file", "raw_file_sha256"],
        &["footage"],
    );
    if !paired.is_empty() {
        println!();
        println!(
            "== ingest, interleaved pass: {} rounds of raw_file, raw_file_sha256, footage back to \
             back; medians over rounds ==",
            rounds()
        );
        println!(
            "{:<20} {:>10} {:>10} {:>10} {:>14} {:>14} {:>16}  [footage/raw per round]",
            "group",
            "raw MB/s",
            "raw+sha",
            "footage",
            "footage/raw",
            "footage/r+sha",
            "raw+sha/raw"
        );
        for line in paired {
            println!("{line}");
        }
    }
}
