//! Open time and catalog memory of a store with 100,000 segments.
//!
//! Fixtures (built once per run, untimed by criterion; the build time is printed):
//! - `checkpoint_100k`: 100,000 segments of 2 KiB, ingested by 16 threads (group commit),
//!   then `Store::checkpoint()` and `close()` (which writes nothing more: nothing was committed
//!   after the checkpoint). Opening it loads the checkpoint and replays nothing;
//! - `checkpoint_100k_log_10k`: a copy of the first, reopened, 10,000 more segments ingested,
//!   and the store dropped WITHOUT `close()`, so opening it loads the checkpoint and replays
//!   10,000 commit records from the log. Because `open` itself writes a checkpoint after a
//!   replay, the fixture's `catalog/` directory is restored from a pristine copy before every
//!   timed open (untimed), so every open replays the same 10,000 records;
//! - `empty`: a store with no segments, for reference.
//!
//! `checkpoint_every` is 1,000,000, so no checkpoint happens unless the bench asks for one.
//! Every open drops the previous `Store` first (the LOCK file). The page cache is warm.
//!
//! Memory: `catalog_heap_bytes() / len()` after open, and the growth of VmRSS across
//! `Store::open`, measured in a child process (this same binary, re-executed with
//! `FOOTAGE_BENCH_OPEN_RSS=<store dir>`), so that memory the allocator kept from building the
//! fixtures cannot hide the open's own allocations.
//!
//! Run: `cargo bench --bench open`.
//!
//! `FOOTAGE_BENCH_OPEN_1M=1 cargo bench --bench open` runs issue 14's cold open instead: a store
//! of 1,000,000 segments (written by `footage::testing::synthesize_store`, ten-minute segments
//! with a fix every 10 s) plus 9,999 ten-minute segments (the longest tail the default
//! `checkpoint_every` of 10,000 leaves) ingested through the write path
//! (4 KiB of video, a fix every second, all on one day, as a dock delivers them) and left in
//! the log tail (no close), opened
//! `FOOTAGE_BENCH_OPEN_RUNS` times (default 5) with the page cache dropped before each open
//! (`sync; echo 3 > /proc/sys/vm/drop_caches`: needs root) and the pristine catalog restored.
//! Prints each open's time, the median, the catalog's bytes per segment, the load average, one
//! warm open of the same tail (the CPU part), and the size of `catalog/` and `data/` with the
//! time to read each whole from a cold cache. `FOOTAGE_BENCH_OPEN_1M_DIR=<dir>` keeps the
//! fixture in `<dir>` and reuses it on later runs (no synthesis); `RUST_LOG=footage::store=debug`
//! logs the time of each step of the open and of the checkpoint it writes.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use footage::{Store, StoreOptions};

use common::KIB;

const BASE: usize = 100_000;
const TAIL: usize = 10_000;
const SEGMENT: usize = 2 * KIB;
const THREADS: usize = 16;
/// Distinct officers and devices.
const IDS: usize = 1000;
const CHILD_ENV: &str = "FOOTAGE_BENCH_OPEN_RSS";
/// Child processes per fixture for the memory measurement.
const CHILD_RUNS: usize = 3;

static UNIQUE: AtomicU64 = AtomicU64::new(1);

fn opts() -> StoreOptions {
    StoreOptions {
        checkpoint_every: 1_000_000,
        ..StoreOptions::default()
    }
}

/// Ingests `n` segments of `SEGMENT` bytes with `THREADS` threads.
fn ingest(store: &Store, n: usize) {
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                let mut buf = common::random_bytes(SEGMENT, 1000 + t as u64);
                let mut k = t;
                while k < n {
                    let u = UNIQUE.fetch_add(1, Ordering::Relaxed);
                    common::stamp(&mut buf, u);
                    let c = store
                        .ingest_bytes(common::meta(t, u, IDS), &buf)
                        .expect("ingest");
                    assert!(!c.duplicate);
                    k += THREADS;
                }
            });
        }
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for ent in std::fs::read_dir(from).expect("read_dir") {
        let ent = ent.expect("dir entry");
        let dst = to.join(ent.file_name());
        if ent.file_type().expect("file type").is_dir() {
            copy_dir(&ent.path(), &dst);
        } else {
            std::fs::copy(ent.path(), &dst).expect("copy");
        }
    }
}

struct Fixture {
    name: &'static str,
    store: PathBuf,
    /// Pristine `catalog/` to restore before each open, when opening changes it.
    pristine_catalog: Option<PathBuf>,
    segments: usize,
    replayed: usize,
}

impl Fixture {
    fn restore(&self) {
        if let Some(p) = &self.pristine_catalog {
            let cat = self.store.join("catalog");
            std::fs::remove_dir_all(&cat).expect("remove catalog");
            copy_dir(p, &cat);
        }
    }

    fn open(&self) -> (Store, Duration) {
        let t = Instant::now();
        let s = footage::testing::open_or_create_with(&self.store, &opts()).expect("open");
        let d = t.elapsed();
        assert_eq!(s.len(), self.segments, "{}: segments", self.name);
        assert_eq!(
            s.open_report().replayed,
            self.replayed,
            "{}: replayed",
            self.name
        );
        (s, d)
    }
}

fn build(root: &Path) -> Vec<Fixture> {
    let a = root.join("ckpt").join("store");
    let b = root.join("ckpt_log").join("store");
    let e = root.join("empty").join("store");

    let t = Instant::now();
    let store = footage::testing::open_or_create_with(&a, &opts()).expect("create store");
    ingest(&store, BASE);
    let ingest_a = t.elapsed();
    let grown_a = store.catalog_heap_bytes();
    let t = Instant::now();
    store.checkpoint().expect("checkpoint");
    let ckpt_time = t.elapsed();
    assert_eq!(store.len(), BASE);
    store.close().expect("close");
    println!(
        "open fixture: ingested {BASE} segments of {SEGMENT} B with {THREADS} threads in {} \
         ({:.0} commits/s); checkpoint took {}",
        common::fmt_duration(ingest_a),
        BASE as f64 / ingest_a.as_secs_f64(),
        common::fmt_duration(ckpt_time)
    );

    let t = Instant::now();
    copy_dir(&a, &b);
    let store = footage::testing::open_or_create_with(&b, &opts()).expect("reopen copy");
    ingest(&store, TAIL);
    assert_eq!(store.len(), BASE + TAIL);
    let grown_b = store.catalog_heap_bytes();
    drop(store); // no close(): the 10,000 commits stay in the log only
    let pristine = root.join("ckpt_log").join("catalog-pristine");
    copy_dir(&b.join("catalog"), &pristine);
    println!(
        "open fixture: copied it and ingested {TAIL} more (not checkpointed) in {}",
        common::fmt_duration(t.elapsed())
    );
    println!(
        "open fixture: catalog of the live store that ingested them (not reopened): {BASE} \
         segments {grown_a} B ({:.1} B/segment); {} segments {grown_b} B ({:.1} B/segment)",
        grown_a as f64 / BASE as f64,
        BASE + TAIL,
        grown_b as f64 / (BASE + TAIL) as f64
    );

    footage::testing::open_or_create_with(&e, &opts())
        .expect("create empty")
        .close()
        .expect("close empty");

    for dir in [&a, &b] {
        let mut bytes = 0u64;
        for ent in std::fs::read_dir(dir.join("data")).expect("data dir") {
            bytes += ent.expect("entry").metadata().expect("metadata").len();
        }
        let ckpts: Vec<String> = std::fs::read_dir(dir.join("catalog"))
            .expect("catalog dir")
            .map(|e| {
                let e = e.expect("entry");
                format!(
                    "{} ({} B)",
                    e.file_name().to_string_lossy(),
                    e.metadata().expect("metadata").len()
                )
            })
            .collect();
        println!(
            "  {}: volumes {:.0} MB, checkpoints {}",
            dir.display(),
            bytes as f64 / 1e6,
            ckpts.join(", ")
        );
    }

    vec![
        Fixture {
            name: "empty",
            store: e,
            pristine_catalog: None,
            segments: 0,
            replayed: 0,
        },
        Fixture {
            name: "checkpoint_100k",
            store: a,
            pristine_catalog: None,
            segments: BASE,
            replayed: 0,
        },
        Fixture {
            name: "checkpoint_100k_log_10k",
            store: b,
            pristine_catalog: Some(pristine),
            segments: BASE + TAIL,
            replayed: TAIL,
        },
    ]
}

/// Child mode: open the store once and print RSS before/after and the catalog's heap bytes.
fn rss_child(dir: &str) {
    let before = common::rss_bytes();
    let t = Instant::now();
    let s = footage::testing::open_or_create_with(dir, &opts()).expect("open");
    let d = t.elapsed();
    let after = common::rss_bytes();
    println!(
        "{} {} {} {} {}",
        before,
        after,
        s.len(),
        s.catalog_heap_bytes(),
        d.as_nanos()
    );
}

struct Memory {
    name: &'static str,
    segments: usize,
    heap: usize,
    rss_delta: i64,
    child_open: Duration,
}

/// Runs the child `CHILD_RUNS` times; keeps the run with the median open time.
fn measure_memory(fx: &Fixture) -> Memory {
    let mut runs: Vec<Memory> = (0..CHILD_RUNS)
        .map(|_| {
            fx.restore();
            let out = std::process::Command::new(std::env::current_exe().expect("current exe"))
                .env(CHILD_ENV, &fx.store)
                .output()
                .expect("run child");
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<u128> = text
                .split_whitespace()
                .map(|x| x.parse().expect("child output"))
                .collect();
            Memory {
                name: fx.name,
                segments: v[2] as usize,
                heap: v[3] as usize,
                rss_delta: v[1] as i64 - v[0] as i64,
                child_open: Duration::from_nanos(v[4] as u64),
            }
        })
        .collect();
    runs.sort_by_key(|m| m.child_open);
    runs.swap_remove(runs.len() / 2)
}

fn median_of(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Where the time of an open with a log tail goes, from what the public API can time: decoding
/// the checkpoint, and writing one (which `open` does after replaying a log tail).
fn breakdown(fx: &Fixture) {
    fx.restore();
    let ckpt = std::fs::read_dir(fx.store.join("catalog"))
        .expect("catalog dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .max()
        .expect("a checkpoint");
    let decode = median_of(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                let data = std::fs::read(&ckpt).expect("read checkpoint");
                let body = footage::decode_checkpoint_file(&data).expect("decode file");
                std::hint::black_box(footage::decode_checkpoint_body(&body).expect("decode body"));
                t.elapsed()
            })
            .collect(),
    );
    let (s, open) = fx.open();
    let write = median_of(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                s.checkpoint().expect("checkpoint");
                t.elapsed()
            })
            .collect(),
    );
    drop(s);
    fx.restore();
    println!(
        "{:<26} this open {}; of which (measured apart): read + decode the checkpoint {}, \
         write a checkpoint of {} segments {}",
        fx.name,
        common::fmt_duration(open),
        common::fmt_duration(decode),
        fx.segments,
        common::fmt_duration(write)
    );
}

/// Ten-minute segments of the 1 M store: officer and device cycle through 5,000, starts spread
/// over 30 days, a fix every `fix_every_s` seconds walking from central London.
fn ten_minute_meta(n: u64, fix_every_s: i64) -> footage::SegmentMeta {
    let who = n % 5_000;
    const DAY: i64 = 86_400_000_000;
    let start = common::DAY0_US - 30 * DAY + (n as i64 * 2_597_000_000) % (30 * DAY);
    let end = start + 600_000_000;
    let gps = (0..600 / fix_every_s)
        .map(|k| {
            let t = start + k * fix_every_s * 1_000_000;
            footage::GpsFix::from_degrees(
                t,
                51.5 + (who as f64 * 0.0007) % 0.2 + k as f64 * 1e-5,
                -0.12 + (who as f64 * 0.0011) % 0.3,
            )
            .expect("fix on the globe")
        })
        .collect();
    footage::SegmentMeta {
        officer: format!("OPEN-OFF-{who:05}"),
        device: format!("OPEN-DEV-{who:05}"),
        start_us: start,
        end_us: end,
        gps,
        ..footage::SegmentMeta::default()
    }
}

/// Issue 14's fixture: `n_base` synthesized segments, a checkpoint, then `tail` segments
/// ingested through the write path and left in the log (no close).
fn build_1m_fixture(dir: &Path, n_base: u64, tail: usize) {
    let t = Instant::now();
    let n = footage::testing::synthesize_store(dir, (1..=n_base).map(|n| ten_minute_meta(n, 10)))
        .expect("synthesize");
    println!(
        "1M open: synthesized {n} segments in {}",
        common::fmt_duration(t.elapsed())
    );
    let t = Instant::now();
    let store = Store::open_with(dir, &opts()).expect("open synthesized store");
    println!(
        "1M open: first (warm) open {}",
        common::fmt_duration(t.elapsed())
    );
    store.checkpoint().expect("checkpoint");
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..THREADS {
            let store = &store;
            s.spawn(move || {
                let mut buf = common::random_bytes(4 * KIB, 77 + th as u64);
                let mut k = th;
                while k < tail {
                    let u = UNIQUE.fetch_add(1, Ordering::Relaxed);
                    common::stamp(&mut buf, u);
                    // The tail is one busy day (a dock's delivery): 144 ten-minute slots.
                    let mut meta = ten_minute_meta(n_base + k as u64, 1);
                    let shift = common::DAY0_US + (k as i64 % 144) * 600_000_000 - meta.start_us;
                    meta.start_us += shift;
                    meta.end_us += shift;
                    for f in &mut meta.gps {
                        f.time_us += shift;
                    }
                    store.ingest_bytes(meta, &buf).expect("ingest");
                    k += THREADS;
                }
            });
        }
    });
    println!(
        "1M open: ingested {tail} ten-minute segments (600 fixes each) in {}",
        common::fmt_duration(t.elapsed())
    );
    drop(store); // no close(): the tail stays in the log
}

/// Issue 14: open of a 1,000,000-segment store with 10,000 ten-minute segments in the log
/// tail, cold page cache.
fn cold_open_1m() {
    const N: u64 = 1_000_000;
    // The default `checkpoint_every` (10,000, in the synthesized store's footage.toml) writes a
    // checkpoint at the 10,000th commit: 9,999 is the longest tail a default store replays.
    const TAIL_1M: usize = 9_999;
    let runs: usize = std::env::var("FOOTAGE_BENCH_OPEN_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // `FOOTAGE_BENCH_OPEN_1M_DIR=<dir>` keeps the fixture there and reuses it on the next run
    // (built only if `<dir>/catalog-pristine` is missing), for repeated experiments.
    let kept = std::env::var_os("FOOTAGE_BENCH_OPEN_1M_DIR").map(PathBuf::from);
    let scratch = kept.is_none().then(|| common::scratch("open1m-"));
    let root = kept.unwrap_or_else(|| scratch.as_ref().expect("scratch").path().to_path_buf());
    let dir = root.join("store");
    let pristine = root.join("catalog-pristine");
    if pristine.exists() {
        println!("1M open: reusing the fixture in {}", root.display());
    } else {
        if dir.exists() {
            // A build cut short.
            std::fs::remove_dir_all(&dir).expect("remove unfinished fixture");
        }
        build_1m_fixture(&dir, N, TAIL_1M);
        copy_dir(&dir.join("catalog"), &pristine);
    }
    let mut times = Vec::new();
    for r in 0..runs {
        std::fs::remove_dir_all(dir.join("catalog")).expect("remove catalog");
        copy_dir(&pristine, &dir.join("catalog"));
        let dropped = std::process::Command::new("sh")
            .args(["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"])
            .status()
            .is_ok_and(|s| s.success());
        let io0 = read_bytes();
        let t = Instant::now();
        let s = Store::open_with(&dir, &opts()).expect("open");
        let d = t.elapsed();
        let disk = read_bytes().saturating_sub(io0);
        assert_eq!(s.len(), N as usize + TAIL_1M);
        assert_eq!(s.open_report().replayed, TAIL_1M);
        println!(
            "1M open: run {r}: {} ({}), {:.1} MB read from disk, catalog {:.1} B/segment, \
             load average {}",
            common::fmt_duration(d),
            if dropped {
                "cold: page cache dropped"
            } else {
                "WARM: could not drop the page cache"
            },
            disk as f64 / 1e6,
            s.catalog_heap_bytes() as f64 / s.len() as f64,
            load_average()
        );
        times.push(d);
        drop(s);
    }
    // The same open with everything in the page cache: its CPU part.
    std::fs::remove_dir_all(dir.join("catalog")).expect("remove catalog");
    copy_dir(&pristine, &dir.join("catalog"));
    let _ = std::process::Command::new("sync").status();
    for ent in std::fs::read_dir(dir.join("catalog")).expect("read_dir") {
        let _ = std::fs::read(ent.expect("entry").path());
    }
    let t = Instant::now();
    let s = Store::open_with(&dir, &opts()).expect("open");
    println!(
        "1M open: warm open (same tail, page cache warm): {}, load average {}",
        common::fmt_duration(t.elapsed()),
        load_average()
    );
    drop(s);
    // What an open must at least read from a cold disk: the catalog/ files, and the volumes
    // (of which the tail scan reads only the records after the checkpoint).
    for sub in ["catalog", "data"] {
        let mut bytes = 0u64;
        let mut files = Vec::new();
        for ent in std::fs::read_dir(dir.join(sub)).expect("read_dir") {
            let ent = ent.expect("entry");
            let len = ent.metadata().expect("metadata").len();
            bytes += len;
            files.push(format!(
                "{} {:.1} MB",
                ent.file_name().to_string_lossy(),
                len as f64 / 1e6
            ));
        }
        let _ = std::process::Command::new("sh")
            .args(["-c", "sync && echo 3 > /proc/sys/vm/drop_caches"])
            .status();
        let t = Instant::now();
        for ent in std::fs::read_dir(dir.join(sub)).expect("read_dir") {
            let _ = std::fs::read(ent.expect("entry").path());
        }
        println!(
            "1M open: {sub}/ holds {:.1} MB ({}); reading it whole from a cold cache takes {}",
            bytes as f64 / 1e6,
            files.join(", "),
            common::fmt_duration(t.elapsed())
        );
    }
    let med = median_of(times);
    println!(
        "1M open: median {} over {runs} cold opens: {}",
        common::fmt_duration(med),
        if med < Duration::from_secs(1) {
            "< 1 s, goal met"
        } else {
            "GOAL MISSED (1 s)"
        }
    );
}

/// Bytes this process has caused to be read from the disk (`read_bytes` of /proc/self/io).
fn read_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("read_bytes: ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The first three fields of /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        rss_child(&dir);
        return;
    }
    if std::env::var("FOOTAGE_BENCH_OPEN_1M").is_ok_and(|v| v == "1") {
        cold_open_1m();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let root = common::scratch("open-");
    let fixtures = build(root.path());

    let mut g = c.benchmark_group("open");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for fx in &fixtures {
        g.bench_function(fx.name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fx.restore();
                    let (s, d) = fx.open();
                    total += d;
                    drop(s);
                }
                common::record("open", fx.name, iters, 0, total);
                total
            })
        });
    }
    g.finish();
    c.final_summary();

    println!();
    println!(
        "== open: memory (child process, one open each; median of {CHILD_RUNS} by open time) =="
    );
    println!(
        "{:<26} {:>9} {:>12} {:>10} {:>12} {:>10} {:>12}",
        "store", "segments", "catalog B", "B/seg", "RSS delta", "RSS B/seg", "open (child)"
    );
    let mut mems = Vec::new();
    for fx in &fixtures {
        let m = measure_memory(fx);
        let per = |x: f64| {
            if m.segments > 0 {
                format!("{:.1}", x / m.segments as f64)
            } else {
                "-".into()
            }
        };
        println!(
            "{:<26} {:>9} {:>12} {:>10} {:>12} {:>10} {:>12}",
            m.name,
            m.segments,
            m.heap,
            per(m.heap as f64),
            m.rss_delta,
            per(m.rss_delta as f64),
            common::fmt_duration(m.child_open)
        );
        mems.push(m);
    }

    println!();
    println!("== open: breakdown ==");
    for fx in fixtures.iter().filter(|f| f.segments > 0) {
        breakdown(fx);
    }

    println!();
    println!("== open: time (median of criterion's timed opens) vs goals ==");
    for (fx, m) in fixtures.iter().zip(&mems) {
        let Some(common::Summary {
            median: d,
            iters: n,
            ..
        }) = common::stats("open", fx.name)
        else {
            continue;
        };
        let per_seg = if m.segments > 0 {
            m.heap as f64 / m.segments as f64
        } else {
            0.0
        };
        println!(
            "{:<26} median open {:>10} over {:>3} opens: {}; catalog {:.1} B/segment: {}",
            fx.name,
            common::fmt_duration(d),
            n,
            if d < Duration::from_millis(200) {
                "< 200 ms, goal met"
            } else {
                "GOAL MISSED (200 ms)"
            },
            per_seg,
            if per_seg < 100.0 {
                "< 100 B, goal met"
            } else {
                "GOAL MISSED (100 B)"
            }
        );
    }
}
