//! The harness of the index benches (issues 3 and 15): the footage index against SQLite on one
//! synthetic catalogue, in the same run. benches/index.rs (London, 1,500 officers) and
//! benches/index_force.rs (a county force, 4,000 officers) each describe their catalogue in a
//! [`Spec`] (name, segment generator, probe seed, query kinds and query maker) and call
//! [`run`]; everything else is here, the same for both, so their figures compare.
//!
//! Included only by those two benches (`#[path = "common/index_harness/mod.rs"] mod harness;`,
//! beside `common`), not from common/mod.rs, which every bench includes.
//!
//! Fixtures, built once per run (under `target/bench-tmp/`, removed at the end, or under
//! `FOOTAGE_BENCH_INDEX_DIR` and kept, in `<Spec::fixtures><n>/`, and reused by the next run with
//! the same count): footage through `footage::testing::synthesize_store` (the store's own
//! catalog, checkpoint and track file encoders; no video), fed the segments in the generator's
//! order (sorted by start); SQLite as sqlite.rs describes, from the same segments.
//!
//! Queries: each kind has `FOOTAGE_BENCH_QUERIES` instances (default 300), made by the spec
//! from a reservoir sample of the catalogue ([`Census::probes`]). Before any timing, every
//! instance runs on both engines and the id lists (sorted by start, id) must be identical.
//! footage's answer is every page (`Store::find_all`: a page holds at most `MAX_PAGE` results),
//! as SQLite returns every row; both are timed that way. Then criterion times each kind
//! (instances round-robin: the mean over the mix), and a hand-rolled pass times every instance 3
//! times on each engine, interleaved, and reports p50 and p99 over the instances of each one's
//! best run (the least disturbed by other processes).
//!
//! Open: `Store::open` in a child process (open.rs), once after dropping the page cache (if
//! /proc/sys/vm/drop_caches is writable: root) and 5 times warm.
//!
//! `-- --test` checks the answers and runs everything once. `FOOTAGE_BENCH_PROFILE=<kind>/
//! <footage|sqlite>` builds or reuses the fixtures, then runs only that kind for 10 s, for
//! `perf record`.

#[path = "open.rs"]
mod open;
#[path = "sqlite.rs"]
mod sqlite;

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use footage::{Area, GpsFix, Query, SegmentMeta};

use crate::common::{self, Rng};
use open::{dir_bytes, drop_caches, file_bytes, open_child, open_in_child, OpenRun};
use sqlite::Sqlite;

pub const SEGMENTS_ENV: &str = "FOOTAGE_BENCH_SEGMENTS";
pub const QUERIES_ENV: &str = "FOOTAGE_BENCH_QUERIES";
pub const DIR_ENV: &str = "FOOTAGE_BENCH_INDEX_DIR";
pub const CHILD_ENV: &str = "FOOTAGE_BENCH_INDEX_OPEN";
pub const PROFILE_ENV: &str = "FOOTAGE_BENCH_PROFILE";

pub const SEC: i64 = 1_000_000;
pub const MIN: i64 = 60 * SEC;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// A catalogue and its queries: what a bench gives [`run`].
pub struct Spec {
    /// Printed, and the criterion group: "index", "index_force".
    pub name: &'static str,
    /// Fixture subdirectory prefix (`<prefix><n>`): distinct per catalogue, so benches can share
    /// `FOOTAGE_BENCH_INDEX_DIR`.
    pub fixtures: &'static str,
    /// Segments when `FOOTAGE_BENCH_SEGMENTS` is unset.
    pub default_segments: usize,
    /// Officers of the catalogue (printed).
    pub officers: usize,
    /// The catalogue's first `n` segments, sorted by start; the same every call.
    pub segments: fn(usize) -> Box<dyn Iterator<Item = SegmentMeta>>,
    /// Seed of the reservoir sample of probes.
    pub probe_seed: u64,
    /// (name, description) of each query kind, in table order.
    pub kinds: &'static [(&'static str, &'static str)],
    /// `make_queries(census, kind, n)`: `n` instances of kind `kind`.
    pub make_queries: fn(&Census, usize, usize) -> Vec<Q>,
}

/// A segment remembered for drawing queries.
#[derive(Clone)]
pub struct Probe {
    pub officer: String,
    pub start: i64,
    pub fix: Option<GpsFix>,
    pub tag: Option<String>,
    pub category: Option<String>,
    /// The first case id (benches/index.rs draws no case queries).
    #[allow(dead_code)]
    pub case: Option<String>,
}

pub struct Census {
    pub segments: usize,
    pub fixes: u64,
    pub with_gps: usize,
    pub max_duration: i64,
    pub first_start: i64,
    pub last_start: i64,
    pub probes: Vec<Probe>,
    pub generate: Duration,
}

/// One pass over the catalogue without storing it: counts, probes (reservoir sample), time.
pub fn census(segments: impl Iterator<Item = SegmentMeta>, seed: u64) -> Census {
    const RESERVOIR: usize = 20_000;
    let mut r = Rng(seed);
    let mut c = Census {
        segments: 0,
        fixes: 0,
        with_gps: 0,
        max_duration: 0,
        first_start: i64::MAX,
        last_start: i64::MIN,
        probes: Vec::new(),
        generate: Duration::ZERO,
    };
    let t = Instant::now();
    for m in segments {
        c.segments += 1;
        c.fixes += m.gps.len() as u64;
        c.with_gps += usize::from(!m.gps.is_empty());
        c.max_duration = c.max_duration.max(m.end_us - m.start_us);
        c.first_start = c.first_start.min(m.start_us);
        c.last_start = c.last_start.max(m.start_us);
        let slot = if c.probes.len() < RESERVOIR {
            Some(c.probes.len())
        } else {
            let s = r.below(c.segments as u64) as usize;
            (s < RESERVOIR).then_some(s)
        };
        if let Some(s) = slot {
            let fix = (!m.gps.is_empty()).then(|| m.gps[r.below(m.gps.len() as u64) as usize]);
            let p = Probe {
                officer: m.officer,
                start: m.start_us,
                fix,
                tag: m.tags.first().cloned(),
                category: m.categories.first().cloned(),
                case: m.cases.first().cloned(),
            };
            if s == c.probes.len() {
                c.probes.push(p);
            } else {
                c.probes[s] = p;
            }
        }
    }
    c.generate = t.elapsed();
    c
}

/// One query instance, for both engines: a window and at most one of officers, area, label.
#[derive(Clone, Debug)]
pub struct Q {
    pub officers: Vec<String>,
    pub lo: i64,
    pub hi: i64,
    pub area: Option<Area>,
    pub case: Option<String>,
    pub tag: Option<String>,
    pub category: Option<String>,
}

impl Q {
    pub fn window(lo: i64, hi: i64) -> Q {
        Q {
            officers: Vec::new(),
            lo,
            hi,
            area: None,
            case: None,
            tag: None,
            category: None,
        }
    }

    pub fn footage(&self) -> Query {
        let mut q = Query::new().from(self.lo).to(self.hi);
        for o in &self.officers {
            q = q.officer(o.clone());
        }
        q.area = self.area;
        q.case = self.case.clone();
        q.tag = self.tag.clone();
        q.category = self.category.clone();
        q
    }
}

/// Every result of `q`, all pages, in order (as SQLite answers).
fn footage_ids(store: &footage::Store, q: &Query) -> Vec<u64> {
    store.find_all(q).map(|r| r.unwrap().id).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    let u = d.as_secs_f64() * 1e6;
    if u >= 10_000.0 {
        format!("{:.1} ms", u / 1000.0)
    } else if u >= 1000.0 {
        format!("{:.2} ms", u / 1000.0)
    } else {
        format!("{u:.1} µs")
    }
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn fmt(d: Duration) -> String {
    common::fmt_duration(d)
}

/// What the fixture build took (or took in the run that made reused fixtures).
struct Built {
    footage: Duration,
    sqlite: Duration,
    pieces: u64,
    generate: Duration,
}

/// Builds both fixtures under `root`, or reuses them (`built.txt` marks a complete build).
fn fixtures(spec: &Spec, root: &Path, n: usize, cen: &Census) -> Built {
    let store_dir = root.join("footage");
    let db_path = root.join("sqlite.db");
    let marker = root.join("built.txt");
    if let Ok(s) = std::fs::read_to_string(&marker) {
        let v: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
        println!(
            "fixtures reused from {} (build times of the run that made them)",
            root.display()
        );
        return Built {
            footage: Duration::from_nanos(v[0]),
            sqlite: Duration::from_nanos(v[1]),
            pieces: v[2],
            generate: Duration::from_nanos(v.get(3).copied().unwrap_or(0)),
        };
    }
    let _ = std::fs::remove_dir_all(&store_dir);
    let _ = std::fs::remove_file(&db_path);
    let t = Instant::now();
    let got = footage::testing::synthesize_store(&store_dir, (spec.segments)(n)).unwrap();
    let fb = t.elapsed();
    assert_eq!(got as usize, n);
    println!(
        "footage: synthesize_store {} (generation included; {} without it)",
        fmt(fb),
        fmt(fb.saturating_sub(cen.generate))
    );
    let t = Instant::now();
    let pieces = sqlite::build(&db_path, (spec.segments)(n));
    let sb = t.elapsed();
    println!(
        "sqlite: build {} (generation included; {} without it), {pieces} R*Tree pieces",
        fmt(sb),
        fmt(sb.saturating_sub(cen.generate))
    );
    std::fs::write(
        &marker,
        format!(
            "{} {} {pieces} {}",
            fb.as_nanos(),
            sb.as_nanos(),
            cen.generate.as_nanos()
        ),
    )
    .unwrap();
    Built {
        footage: fb,
        sqlite: sb,
        pieces,
        generate: cen.generate,
    }
}

/// Open timings: cold (if the page cache can be dropped) and the median of the warm runs.
struct Opened {
    cold: Option<OpenRun>,
    warm: Vec<OpenRun>,
    warm_open: Duration,
    warm_cpu: Duration,
    parts: [Duration; 3],
}

fn measure_open(store_dir: &Path, test_mode: bool) -> Opened {
    let cold = if !test_mode && drop_caches() {
        Some(open_in_child(store_dir))
    } else {
        None
    };
    let warm: Vec<OpenRun> = (0..if test_mode { 1 } else { 5 })
        .map(|_| open_in_child(store_dir))
        .collect();
    let mut warm_times: Vec<Duration> = warm.iter().map(|o| o.time).collect();
    warm_times.sort();
    let warm_open = warm_times[warm_times.len() / 2];
    let mut warm_cpus: Vec<Duration> = warm.iter().map(|o| o.cpu).collect();
    warm_cpus.sort();
    let warm_cpu = warm_cpus[warm_cpus.len() / 2];
    let mut by_parts: Vec<[Duration; 3]> = warm.iter().map(|o| o.parts).collect();
    by_parts.sort_by_key(|p| p[0] + p[1] + p[2]);
    let parts = by_parts[by_parts.len() / 2];
    println!(
        "open: CPU time (user + system) cold {}, warm {} (median)",
        cold.as_ref().map_or("n/a".into(), |c| fmt(c.cpu)),
        fmt(warm_cpu)
    );
    println!(
        "open: cold {}, warm {} (median of {}: {})",
        cold.as_ref()
            .map_or("n/a (cannot drop the page cache)".into(), |c| fmt(c.time)),
        fmt(warm_open),
        warm_times.len(),
        warm_times
            .iter()
            .map(|d| fmt(*d))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Opened {
        cold,
        warm,
        warm_open,
        warm_cpu,
        parts,
    }
}

/// Runs every instance on both engines and asserts identical answers; prints, per kind, the
/// mean result count, the empty answers, footage's plans and SQLite's plan. Returns the
/// total result count per kind.
fn check_answers(
    spec: &Spec,
    store: &footage::Store,
    sql: &Sqlite,
    queries: &[Vec<Q>],
    fqueries: &[Vec<Query>],
    nq: usize,
) -> Vec<usize> {
    println!();
    println!("== same answers (every instance, both engines) ==");
    let mut totals = Vec::new();
    for (k, (name, _)) in spec.kinds.iter().enumerate() {
        let mut total = 0;
        let mut empty = 0;
        let mut plans: HashMap<&'static str, usize> = HashMap::new();
        for (q, fq) in queries[k].iter().zip(&fqueries[k]) {
            // Every page (an answer holds at most MAX_PAGE results), as SQLite returns all.
            let page = store.find(fq).unwrap();
            *plans.entry(page.plan).or_default() += 1;
            let a: Vec<u64> = footage_ids(store, fq);
            let b = sql.find(q);
            assert_eq!(
                a,
                b,
                "{name}: footage and SQLite disagree on {q:?} ({} vs {} results)",
                a.len(),
                b.len()
            );
            total += a.len();
            empty += usize::from(a.is_empty());
        }
        println!(
            "{name:<16} identical on {nq} instances: {:.1} results on average, {empty} empty; \
             footage plans {plans:?}; SQLite plan: {}",
            total as f64 / nq as f64,
            sql.plan(&queries[k][0])
        );
        totals.push(total);
    }
    totals
}

/// Profiling mode: loops over one query kind on one engine for 10 s.
fn profile(
    spec: &Spec,
    p: &str,
    store: &footage::Store,
    sql: &Sqlite,
    queries: &[Vec<Q>],
    fqueries: &[Vec<Query>],
) {
    let nq = queries[0].len();
    let (kind, engine) = p
        .split_once('/')
        .expect("FOOTAGE_BENCH_PROFILE=<type>/<engine>");
    let k = spec
        .kinds
        .iter()
        .position(|x| x.0 == kind)
        .expect("query type");
    let t = Instant::now();
    let mut runs = 0usize;
    while t.elapsed() < Duration::from_secs(10) {
        let i = runs % nq;
        if engine == "footage" {
            black_box(footage_ids(store, &fqueries[k][i]));
        } else {
            black_box(sql.find(&queries[k][i]));
        }
        runs += 1;
    }
    println!(
        "profile: {p}: {runs} queries in 10 s, {} each",
        us(Duration::from_secs(10) / runs as u32)
    );
}

/// Percentiles: every instance `rounds` times on each engine, interleaved; per-instance
/// minimum (the run least disturbed by other processes on the 2 cores). Returns, per kind,
/// footage p50, p99, SQLite p50, p99.
fn percentiles(
    store: &footage::Store,
    sql: &Sqlite,
    queries: &[Vec<Q>],
    fqueries: &[Vec<Query>],
    rounds: usize,
) -> Vec<[Duration; 4]> {
    let mut rows = Vec::new();
    for (qs, fqs) in queries.iter().zip(fqueries) {
        let nq = qs.len();
        let mut f_t = vec![Vec::new(); nq];
        let mut s_t = vec![Vec::new(); nq];
        for _ in 0..rounds {
            for i in 0..nq {
                let t = Instant::now();
                black_box(footage_ids(store, &fqs[i]));
                f_t[i].push(t.elapsed());
                let t = Instant::now();
                black_box(sql.find(&qs[i]));
                s_t[i].push(t.elapsed());
            }
        }
        let med = |v: Vec<Vec<Duration>>| -> Vec<Duration> {
            let mut m: Vec<Duration> = v
                .into_iter()
                .map(|x| x.into_iter().min().unwrap())
                .collect();
            m.sort();
            m
        };
        let (f, s) = (med(f_t), med(s_t));
        rows.push([
            percentile(&f, 0.5),
            percentile(&f, 0.99),
            percentile(&s, 0.5),
            percentile(&s, 0.99),
        ]);
    }
    rows
}

/// The whole bench for one catalogue (see the module header).
pub fn run(spec: &Spec) {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        open_child(&dir);
        return;
    }
    let name = spec.name;
    let n: usize = std::env::var(SEGMENTS_ENV)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(spec.default_segments);
    let nq: usize = std::env::var(QUERIES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let test_mode = common::cli_test_mode() || std::env::var_os(PROFILE_ENV).is_some();
    let mut c = Criterion::default().configure_from_args();

    // Fixtures.
    let (scratch, root) = match std::env::var(DIR_ENV) {
        Ok(d) => (None, PathBuf::from(d)),
        Err(_) => {
            let s = common::scratch(&format!("{name}-"));
            let p = s.path().to_path_buf();
            (Some(s), p)
        }
    };
    let root = root.join(format!("{}{n}", spec.fixtures));
    std::fs::create_dir_all(&root).unwrap();
    let store_dir = root.join("footage");
    let db_path = root.join("sqlite.db");

    println!("{name} bench: {n} segments ({SEGMENTS_ENV}), {nq} queries per type ({QUERIES_ENV})");
    let cen = census((spec.segments)(n), spec.probe_seed);
    println!(
        "catalogue: {} segments ({} with GPS), {} fixes ({:.1} per segment), {} officers, \
         {:.1} days, longest segment {:.1} min; generating it alone takes {}",
        cen.segments,
        cen.with_gps,
        cen.fixes,
        cen.fixes as f64 / cen.segments as f64,
        spec.officers,
        (cen.last_start - cen.first_start) as f64 / DAY as f64,
        cen.max_duration as f64 / MIN as f64,
        fmt(cen.generate)
    );

    let built = fixtures(spec, &root, n, &cen);
    let catalog_bytes = dir_bytes(&store_dir.join("catalog"));
    let tracks_bytes = file_bytes(&store_dir.join("catalog").join("tracks.ftt"));
    let db_bytes = file_bytes(&db_path)
        + file_bytes(&root.join("sqlite.db-wal"))
        + file_bytes(&root.join("sqlite.db-shm"));

    let opened = measure_open(&store_dir, test_mode);

    // Both engines, and the queries.
    let store = footage::testing::open_or_create_default(&store_dir).unwrap();
    assert_eq!(store.len(), n);
    let sql = Sqlite::open(&db_path);
    let queries: Vec<Vec<Q>> = (0..spec.kinds.len())
        .map(|k| (spec.make_queries)(&cen, k, nq))
        .collect();
    let fqueries: Vec<Vec<Query>> = queries
        .iter()
        .map(|v| v.iter().map(Q::footage).collect())
        .collect();
    let totals = check_answers(spec, &store, &sql, &queries, &fqueries, nq);

    if let Ok(p) = std::env::var(PROFILE_ENV) {
        profile(spec, &p, &store, &sql, &queries, &fqueries);
        return;
    }

    // Criterion: each type, instances round-robin.
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (k, (kind, _)) in spec.kinds.iter().enumerate() {
        let mut i = 0usize;
        g.bench_function(format!("{kind}/footage"), |b| {
            b.iter(|| {
                let q = &fqueries[k][i % nq];
                i += 1;
                black_box(footage_ids(&store, q).len())
            })
        });
        let mut i = 0usize;
        g.bench_function(format!("{kind}/sqlite"), |b| {
            b.iter(|| {
                let q = &queries[k][i % nq];
                i += 1;
                black_box(sql.find(q).len())
            })
        });
    }
    g.finish();
    c.final_summary();

    const ROUNDS: usize = 3;
    let rounds = if test_mode { 1 } else { ROUNDS };
    let rows = percentiles(&store, &sql, &queries, &fqueries, rounds);

    println!();
    println!(
        "== {name}: latency per query ({nq} instances per type, best of {rounds} runs each) =="
    );
    println!(
        "| query | results (mean) | footage p50 | footage p99 | SQLite p50 | SQLite p99 | \
         p50 ratio | p99 ratio | goal (p50 >= 10x) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (k, [fp50, fp99, sp50, sp99]) in rows.iter().enumerate() {
        let (kind, what) = spec.kinds[k];
        let r50 = sp50.as_secs_f64() / fp50.as_secs_f64();
        let r99 = sp99.as_secs_f64() / fp99.as_secs_f64();
        println!(
            "| {kind}: {what} | {:.1} | {} | {} | {} | {} | {r50:.1}x | {r99:.1}x | {} |",
            totals[k] as f64 / nq as f64,
            us(*fp50),
            us(*fp99),
            us(*sp50),
            us(*sp99),
            if r50 >= 10.0 { "met" } else { "MISSED" }
        );
    }

    report(
        name,
        n,
        &cen,
        &built,
        &opened,
        catalog_bytes,
        tracks_bytes,
        db_bytes,
    );

    drop(store);
    drop(sql);
    if let Some(s) = scratch {
        common::remove_and_settle(s);
    }
}

/// The build, open, size and memory table, and the goals.
#[allow(clippy::too_many_arguments)]
fn report(
    name: &str,
    n: usize,
    cen: &Census,
    built: &Built,
    opened: &Opened,
    catalog_bytes: u64,
    tracks_bytes: u64,
    db_bytes: u64,
) {
    let Opened {
        cold,
        warm,
        warm_open,
        warm_cpu,
        parts: open_parts,
    } = opened;
    let (warm_open, warm_cpu) = (*warm_open, *warm_cpu);
    let o = &warm[0];
    let fixes = cen.fixes as f64;
    let segs = n as f64;
    let budget = 64.0 * segs + 4.0 * fixes;
    println!();
    println!("== {name}: build, open, size, memory ==");
    println!("| | footage | SQLite |");
    println!("| --- | ---: | ---: |");
    println!(
        "| build (wall clock, generation of the catalogue included / excluded) | {} / {} | {} / {} |",
        fmt(built.footage),
        fmt(built.footage.saturating_sub(built.generate)),
        fmt(built.sqlite),
        fmt(built.sqlite.saturating_sub(built.generate))
    );
    println!(
        "| on disk | {} (checkpoint {}, tracks.ftt {}) | {} ({} R*Tree pieces) |",
        mb(catalog_bytes),
        mb(catalog_bytes - tracks_bytes),
        mb(tracks_bytes),
        mb(db_bytes),
        built.pieces
    );
    println!(
        "| open (Store::open, child process) | cold {}, warm {} (CPU time: cold {}, warm {}) | - |",
        cold.as_ref().map_or("n/a".into(), |c| fmt(c.time)),
        fmt(warm_open),
        cold.as_ref().map_or("n/a".into(), |c| fmt(c.cpu)),
        fmt(warm_cpu)
    );
    println!(
        "| open breakdown (CPU time, warm, measured apart in the child) | read checkpoint {}, zstd {}, decode {} | - |",
        fmt(open_parts[0]),
        fmt(open_parts[1]),
        fmt(open_parts[2])
    );
    println!(
        "| index heap | {} B = {:.1} B/segment = {:.2} B/fix; {:.0}% of the goal (64 B/segment + 4 B/fix = {:.0} B) | - |",
        o.index_heap,
        o.index_heap as f64 / segs,
        o.index_heap as f64 / fixes,
        100.0 * o.index_heap as f64 / budget,
        budget
    );
    println!(
        "| spatial postings | {} = {:.1}/segment, {:.3}/fix ({} B each) | - |",
        o.postings,
        o.postings as f64 / segs,
        o.postings as f64 / fixes,
        24
    );
    println!(
        "| catalog heap (segment table, dedup, names) | {} B = {:.1} B/segment | - |",
        o.catalog_heap,
        o.catalog_heap as f64 / segs
    );
    println!(
        "| RSS growth across open | {} B = {:.1} B/segment (tracks.ftt mapped, {} on disk) | - |",
        o.rss_delta,
        o.rss_delta as f64 / segs,
        mb(o.track_bytes)
    );
    assert_eq!(o.segments, n);
    println!();
    let heap_ok = (o.index_heap as f64) < budget;
    println!(
        "goals: open < 1 s: {} (warm {}{}); index memory < 64 B/segment + 4 B/fix: {}",
        if warm_open < Duration::from_secs(1)
            && cold
                .as_ref()
                .is_none_or(|c| c.time < Duration::from_secs(1))
        {
            "met"
        } else {
            "MISSED"
        },
        fmt(warm_open),
        cold.as_ref()
            .map_or(String::new(), |c| format!(", cold {}", fmt(c.time))),
        if heap_ok { "met" } else { "MISSED" }
    );
}
