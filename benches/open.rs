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

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        rss_child(&dir);
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
