//! Ingest throughput with fsync on commit, against baselines measured in the same run
//! (issue 14's table).
//!
//! For each (segment size, streams) pair, five functions write the same bytes:
//! - `raw`, **the baseline**: the strongest plain program. One file preallocated with
//!   `fallocate` to the iteration's size (fsynced with its directory, untimed); each segment is
//!   one `pwrite` at its own offset (offsets handed out by an atomic counter, so with several
//!   streams the writes run in parallel), then one `fdatasync` per segment;
//! - `raw_sha256`: `raw` plus each segment's SHA-256, computed on a second thread while the
//!   segment is written (joined before the fdatasync): the bound for a single stream, since no
//!   program ingests one stream faster than it can hash it;
//! - `raw_append`: the old baseline, kept for continuity: a plain file grown by `write_all`
//!   (one call per segment, under a mutex with several streams), one `fdatasync` per segment
//!   outside the mutex;
//! - `files_sqlite`: the Moonfire NVR / Frigate way: one file per segment (write, `fsync` the
//!   file, `fsync` the directory) and one row per segment in a SQLite index in WAL mode with
//!   `synchronous = FULL` (one connection under a mutex: SQLite has one writer). No hash: the
//!   peer as those systems run, which is the harder baseline;
//! - `footage`: `begin_segment` → `write` (the whole segment buffer in one call) → `commit`,
//!   one thread per stream, all sharing one `Store` (same data dir and footage day, hence the
//!   same active volume and group commit).
//!
//! Every iteration starts from an empty file / directory / freshly created store (setup outside
//! the timed region: the store is opened and its first volume created by an untimed 4 KiB
//! segment) and removes it afterwards, with the bench root fsynced (untimed) so the discards of
//! the freed blocks (the filesystem is mounted with `discard`) do not land in the next timed
//! fsync. Every segment gets a unique 8-byte stamp at its start, so the engine never takes its
//! duplicate path.
//!
//! The interleaved pass (`FOOTAGE_BENCH_ROUNDS`, default 5) runs one iteration of each function
//! back to back per round, order rotating, and reports per function the median throughput, and
//! the ratios footage / raw, footage / raw_sha256, footage / raw_append and footage /
//! files_sqlite as the median of per-round ratios and as the ratio of best times (the disk's
//! noise only ever adds time, so best-time ratios are the stable figure). For footage and
//! `raw_sha256` it also reports the CPU seconds (user + system, `getrusage`) per GB ingested,
//! and for footage the bytes this process wrote to the device per byte ingested
//! (`/proc/self/io` `write_bytes`).
//!
//! `FOOTAGE_BENCH_CRITERION=0` skips the criterion groups and runs only the interleaved pass.
//!
//! Run: `FOOTAGE_BENCH_CRITERION=0 cargo bench --bench ingest`.

#[path = "common/mod.rs"]
mod common;

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
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

/// One iteration of `raw_append`: a new file grown by appends, `per_stream` segments per
/// stream, one fdatasync per segment.
fn raw_append_iteration(bufs: &mut [Vec<u8>], per_stream: usize) -> Duration {
    let dir = common::scratch("ingest-raw-");
    let path = dir.path().join("raw.bin");
    let file = File::create(&path).expect("create raw file");
    file.sync_all().expect("sync raw file");
    sync_dir(dir.path());
    let append = Mutex::new(&file);
    let d = run_streams(bufs, |_, buf| {
        for _ in 0..per_stream {
            common::stamp(buf, UNIQUE.fetch_add(1, Ordering::Relaxed));
            append.lock().unwrap().write_all(buf).expect("raw write");
            file.sync_data().expect("raw fdatasync");
        }
    });
    drop(file);
    common::remove_and_settle(dir);
    d
}

/// One iteration of `raw` (and, with `hash`, `raw_sha256`): a file preallocated to the
/// iteration's size, each segment one `pwrite` at its own offset and one fdatasync. With
/// `hash`, the segment's SHA-256 runs on a second thread during the write.
fn raw_iteration(bufs: &mut [Vec<u8>], per_stream: usize, hash: bool) -> Duration {
    let dir = common::scratch("ingest-raw-");
    let path = dir.path().join("raw.bin");
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("create raw file");
    let total: usize = bufs.iter().map(|b| b.len() * per_stream).sum();
    // SAFETY: fallocate on a file descriptor this function owns; no memory is passed.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, total as libc::off_t) };
    assert_eq!(rc, 0, "fallocate: {}", std::io::Error::last_os_error());
    file.sync_all().expect("sync raw file");
    sync_dir(dir.path());
    let next = AtomicU64::new(0);
    let d = run_streams(bufs, |_, buf| {
        for _ in 0..per_stream {
            common::stamp(buf, UNIQUE.fetch_add(1, Ordering::Relaxed));
            let at = next.fetch_add(buf.len() as u64, Ordering::Relaxed);
            if hash {
                std::thread::scope(|s| {
                    let hasher = s.spawn(|| Sha256::digest(&buf[..]));
                    file.write_all_at(buf, at).expect("raw pwrite");
                    std::hint::black_box(hasher.join().expect("hash thread"));
                });
            } else {
                file.write_all_at(buf, at).expect("raw pwrite");
            }
            file.sync_data().expect("raw fdatasync");
        }
    });
    drop(file);
    common::remove_and_settle(dir);
    d
}

/// One iteration of `files_sqlite`: one file per segment (written, fsynced, directory
/// fsynced) and one row per segment in a WAL-mode SQLite index, committed per segment.
fn files_sqlite_iteration(bufs: &mut [Vec<u8>], per_stream: usize) -> Duration {
    let dir = common::scratch("ingest-files-");
    let video = dir.path().join("video");
    std::fs::create_dir(&video).expect("create video dir");
    let db = rusqlite::Connection::open(dir.path().join("index.db")).expect("open sqlite");
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE segments (id INTEGER PRIMARY KEY, officer TEXT NOT NULL,
             device TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER NOT NULL,
             bytes INTEGER NOT NULL, path TEXT NOT NULL);
         CREATE INDEX segments_start ON segments (start_us);
         CREATE INDEX segments_officer ON segments (officer, start_us);",
    )
    .expect("sqlite schema");
    sync_dir(dir.path());
    let db = Mutex::new(db);
    let d = run_streams(bufs, |stream, buf| {
        for k in 0..per_stream {
            let unique = UNIQUE.fetch_add(1, Ordering::Relaxed);
            common::stamp(buf, unique);
            let path = video.join(format!("{unique}.mp4"));
            let mut f = File::create(&path).expect("create segment file");
            f.write_all(buf).expect("write segment file");
            f.sync_all().expect("fsync segment file");
            sync_dir(&video);
            let m = common::meta(stream, k as u64, 16);
            db.lock()
                .unwrap()
                .execute(
                    "INSERT INTO segments (officer, device, start_us, end_us, bytes, path)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        m.officer,
                        m.device,
                        m.start_us,
                        m.end_us,
                        buf.len() as i64,
                        path.to_string_lossy()
                    ],
                )
                .expect("sqlite insert");
        }
    });
    drop(db);
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Func {
    Raw,
    RawSha,
    RawAppend,
    FilesSqlite,
    Footage,
}

const FUNCS: [Func; 5] = [
    Func::Raw,
    Func::RawSha,
    Func::RawAppend,
    Func::FilesSqlite,
    Func::Footage,
];

impl Func {
    fn name(self) -> &'static str {
        match self {
            Func::Raw => "raw",
            Func::RawSha => "raw_sha256",
            Func::RawAppend => "raw_append",
            Func::FilesSqlite => "files_sqlite",
            Func::Footage => "footage",
        }
    }

    fn run(self, bufs: &mut [Vec<u8>], per_stream: usize) -> Duration {
        match self {
            Func::Raw => raw_iteration(bufs, per_stream, false),
            Func::RawSha => raw_iteration(bufs, per_stream, true),
            Func::RawAppend => raw_append_iteration(bufs, per_stream),
            Func::FilesSqlite => files_sqlite_iteration(bufs, per_stream),
            Func::Footage => footage_iteration(bufs, per_stream),
        }
    }
}

/// CPU seconds (user + system) this process has used so far, all threads.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Bytes this process has caused to be written to storage (`write_bytes` of /proc/self/io).
fn device_write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
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
/// order rotating from round to round), so slow drifts in the machine's load hit all alike;
/// ratios are taken within each round (median over rounds printed) and between best times.
fn interleaved(
    group: &str,
    bufs: &mut [Vec<u8>],
    per_stream: usize,
    bytes: u64,
    rounds: usize,
    out: &mut Vec<String>,
) {
    let n = FUNCS.len();
    let mut times: Vec<Vec<f64>> = Vec::new();
    let mut cpu = vec![Vec::new(); n];
    let mut written = Vec::new();
    for r in 0..rounds {
        let mut t = vec![0f64; n];
        for k in 0..n {
            let i = (r + k) % n;
            let (c0, w0) = (cpu_seconds(), device_write_bytes());
            t[i] = FUNCS[i].run(bufs, per_stream).as_secs_f64();
            // Setup and removal are inside this window: the figure is an upper bound.
            cpu[i].push((cpu_seconds() - c0) / (bytes as f64 / 1e9));
            if FUNCS[i] == Func::Footage {
                written.push((device_write_bytes() - w0) as f64 / bytes as f64);
            }
        }
        times.push(t);
    }
    let at = |f: Func| FUNCS.iter().position(|&g| g == f).expect("function listed");
    let rate = |i: usize| median_f64(times.iter().map(|t| bytes as f64 / t[i] / 1e6).collect());
    let ratio = |a: usize, b: usize| median_f64(times.iter().map(|t| t[b] / t[a]).collect());
    let best = |i: usize| times.iter().map(|t| t[i]).fold(f64::INFINITY, f64::min);
    let both = |b: Func| {
        let (f, b) = (at(Func::Footage), at(b));
        format!("{:.3}/{:.3}", ratio(f, b), best(b) / best(f))
    };
    out.push(format!(
        "{:<18} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>12} {:>12} {:>12} {:>12} {:>6.2} {:>6.2} {:>6.3}",
        group,
        rate(at(Func::Raw)),
        rate(at(Func::RawSha)),
        rate(at(Func::RawAppend)),
        rate(at(Func::FilesSqlite)),
        rate(at(Func::Footage)),
        both(Func::Raw),
        both(Func::RawSha),
        both(Func::RawAppend),
        both(Func::FilesSqlite),
        median_f64(cpu[at(Func::RawSha)].clone()),
        median_f64(cpu[at(Func::Footage)].clone()),
        median_f64(written),
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
        &["raw", "raw_sha256", "raw_append", "files_sqlite"],
        &["footage"],
    );
    if !paired.is_empty() {
        println!();
        println!(
            "== ingest, interleaved pass: {} rounds of raw, raw_sha256, raw_append, files_sqlite, \
             footage back to back; throughput MB/s (median over rounds); footage / baseline as \
             median of round ratios / ratio of best times; CPU s per GB; device bytes written \
             per byte ingested ==",
            rounds()
        );
        println!(
            "{:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>12} {:>12} {:>12} {:>12} {:>6} {:>6} {:>6}",
            "group",
            "raw",
            "raw+sha",
            "append",
            "f+sql",
            "footage",
            "/raw",
            "/raw+sha",
            "/append",
            "/files+sql",
            "cpu r+s",
            "cpu ftg",
            "wr/B"
        );
        for line in paired {
            println!("{line}");
        }
    }
}
