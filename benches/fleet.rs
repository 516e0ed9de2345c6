//! The fleet table (issue 16) against one local store, in the same run: `fleet find` over a
//! simulated force of 100 stations × 30 days, and the same queries on one store holding every
//! segment.
//!
//! Force: the London catalogue of benches/index.rs (`common/london.rs`), its first
//! `FOOTAGE_BENCH_SEGMENTS` segments (default 450,000: 30 days at about 15,000 a day, 44 M
//! fixes), split among 100 stations: a segment's station is one of the 8 or 9 sub-stations of
//! its camera's home station (12 home stations), picked by its officer, so each station's
//! footage lies around its home station as a borough's does.
//!
//! Fixtures (under `target/bench-tmp/`, removed at the end, or under `FOOTAGE_BENCH_FLEET_DIR`
//! in `n<segments>/` and kept and reused):
//! - local: `footage::testing::synthesize_store` with every segment (ids 1..n, in start order);
//! - the table, in a `file://` bucket: each station publishes each day once, in day order
//!   (`Fleet::publish_rows`, the publish's own code from the rows on: hash, Parquet, add
//!   actions, commit), so the log has one commit per (station, day) as after a month of daily
//!   publishes (3,000), without a Delta checkpoint. Its build time is printed: the write side
//!   of publishing (Parquet and commits) per row.
//!
//! Queries: the seven kinds of benches/index.rs (`london::make_queries`), `FOOTAGE_BENCH_QUERIES`
//! each (default 60). Every instance runs on both and the segment ids must be equal (the
//! table's rows carry the local store's ids). Then each instance is timed twice on the table
//! (`Fleet::find` on a connection that has read the log: what `footage serve` or a review app
//! holding the connection sees; each find still fetches the commit after the latest) and three
//! times on the local store (`Store::find_all`), best of each; p50 and p99 over the instances,
//! and the table's files read per query (of its files; the rest pruned by their tags). A cold
//! find (a new connection: the whole log listed and replayed, then the query: what one
//! `footage fleet find` command costs) is timed 3 times on the first query of each kind.
//!
//! Run: `cargo bench --bench fleet` (about 10 min on 2 cores);
//! `FOOTAGE_BENCH_SEGMENTS=20000 FOOTAGE_BENCH_QUERIES=10 cargo bench --bench fleet` for a quick run.

#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "common/index_harness/mod.rs"]
mod harness;
#[path = "common/london.rs"]
mod london;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use footage::fleet::{day_of, Fleet, FleetRow};
use footage::{SegmentMeta, Store};

const STATIONS: usize = 100;
const HOMES: usize = 12;

/// The station (0..100) of a segment: a sub-station of its camera's home station, by officer.
fn station_of(m: &SegmentMeta) -> usize {
    let home = m
        .device
        .get(4..6)
        .and_then(|s| s.parse::<usize>().ok())
        .map_or(0, |h| h.saturating_sub(10) % HOMES);
    let (lo, hi) = (home * STATIONS / HOMES, (home + 1) * STATIONS / HOMES);
    let h = m.officer.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    lo + (h % (hi - lo) as u64) as usize
}

fn station_name(s: usize) -> String {
    format!("st{s:03}")
}

fn store_id(s: usize) -> String {
    format!("{:032x}", 0xF1EE_7000 + s)
}

fn row(id: u64, s: usize, m: SegmentMeta) -> FleetRow {
    FleetRow {
        station: station_name(s),
        store_id: store_id(s),
        segment_id: id,
        officer: m.officer,
        device: m.device,
        start_us: m.start_us,
        end_us: m.end_us,
        bytes: 50_000_000 + id * 7 % 400_000_000,
        sha256: format!("{id:064x}"),
        categories: m.categories,
        cases: m.cases,
        tags: m.tags,
        holds: Vec::new(),
        tier: "local".into(),
        cloud_key: None,
        deleted: false,
        track: m.gps,
    }
}

/// Builds the local store and the table under `dir` unless they are there.
fn fixtures(dir: &Path, n: usize) -> (PathBuf, String) {
    let local = dir.join("local");
    let bucket = dir.join("bucket");
    let url = format!("file://{}", bucket.display());
    if dir.join("done").exists() {
        println!("fixtures: reusing {}", dir.display());
        return (local, url);
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("fixture dir");
    let t = Instant::now();
    footage::testing::synthesize_store(&local, london::Catalogue::new(n)).expect("local store");
    println!(
        "local store: {n} segments in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut by_station: Vec<BTreeMap<String, Vec<FleetRow>>> = vec![BTreeMap::new(); STATIONS];
    let mut days = std::collections::BTreeSet::new();
    for (i, m) in london::Catalogue::new(n).enumerate() {
        let s = station_of(&m);
        let day = day_of(m.start_us);
        days.insert(day.clone());
        by_station[s]
            .entry(day)
            .or_default()
            .push(row(i as u64 + 1, s, m));
    }
    let generated = t.elapsed();
    let fleet = Fleet::open(&url).expect("bucket");
    let t = Instant::now();
    let (mut commits, mut files, mut bytes, mut rows) = (0, 0, 0u64, 0);
    for day in &days {
        for (s, days) in by_station.iter_mut().enumerate() {
            let Some(day_rows) = days.remove(day) else {
                continue;
            };
            let one = BTreeMap::from([(day.clone(), day_rows)]);
            let r = fleet
                .publish_rows(&station_name(s), &store_id(s), &one)
                .expect("publish");
            commits += usize::from(r.version.is_some());
            files += r.days_written;
            bytes += r.bytes_written;
            rows += r.rows;
        }
    }
    let took = t.elapsed();
    println!(
        "table: {rows} rows, {files} files ({:.1} MiB), {commits} commits in {:.1} s \
         ({:.1} µs a row; rows generated in {:.1} s)",
        bytes as f64 / 1048576.0,
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / rows.max(1) as f64,
        generated.as_secs_f64()
    );
    std::fs::write(dir.join("done"), b"").expect("mark fixtures");
    (local, url)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len().saturating_sub(1))]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = common::env_usize("FOOTAGE_BENCH_SEGMENTS", 450_000);
    let per_kind = common::env_usize("FOOTAGE_BENCH_QUERIES", 60);
    let (scratch, dir) = match std::env::var_os("FOOTAGE_BENCH_FLEET_DIR") {
        Some(d) => (None, PathBuf::from(d).join(format!("n{n}"))),
        None => {
            let s = common::scratch("fleet");
            let d = s.path().join(format!("n{n}"));
            (Some(s), d)
        }
    };
    let (local, url) = fixtures(&dir, n);
    let census = harness::census(london::Catalogue::new(n), london::SEED ^ 0xC0FFEE);
    println!(
        "force: {} segments, {} fixes, {:.1} days, {STATIONS} stations",
        census.segments,
        census.fixes,
        (census.last_start - census.first_start) as f64 / harness::DAY as f64
    );
    let store = Store::open(&local).expect("local store");
    let t = Instant::now();
    let fleet = Fleet::open(&url).expect("table");
    let first = fleet
        .find(&footage::Query::new().from(0).to(0))
        .expect("find");
    println!(
        "table version {:?}, {} files; first read of the log {:.0} ms",
        first.version,
        first.files,
        t.elapsed().as_secs_f64() * 1e3
    );

    println!(
        "\n| query | local p50 | local p99 | fleet p50 | fleet p99 | p50 ratio | files read (mean / max of {}) | rows read (mean) | cold find (best of 3) |",
        first.files
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (kind, (_, desc)) in london::KINDS.iter().enumerate() {
        let queries: Vec<footage::Query> = london::make_queries(&census, kind, per_kind)
            .iter()
            .map(harness::Q::footage)
            .collect();
        let (mut tl, mut tf, mut files, mut rows) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
        for q in &queries {
            let mut want: Vec<u64> = store
                .find_all(q)
                .map(|r| r.expect("local find").id)
                .collect();
            want.sort_unstable();
            let mut best_f = Duration::MAX;
            let mut ans = None;
            for _ in 0..2 {
                let t = Instant::now();
                let a = fleet.find(q).expect("fleet find");
                best_f = best_f.min(t.elapsed());
                ans = Some(a);
            }
            let ans = ans.expect("ran");
            let mut got: Vec<u64> = ans.results.iter().map(|h| h.row.segment_id).collect();
            got.sort_unstable();
            assert_eq!(
                got, want,
                "{desc}: fleet find differs from the local find: {q:?}"
            );
            files.push(ans.files_read);
            rows += ans.rows_read;
            let mut best_l = Duration::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                let c = store.find_all(q).count();
                best_l = best_l.min(t.elapsed());
                assert_eq!(c, want.len());
            }
            tl.push(best_l);
            tf.push(best_f);
        }
        let mut cold = Duration::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let f = Fleet::open(&url).expect("table");
            f.find(&queries[0]).expect("cold find");
            cold = cold.min(t.elapsed());
        }
        tl.sort_unstable();
        tf.sort_unstable();
        let mean_files = files.iter().sum::<usize>() as f64 / files.len() as f64;
        println!(
            "| {desc} | {:.1} µs | {:.1} µs | {:.1} ms | {:.1} ms | {:.0}× | {mean_files:.1} / {} | {:.0} | {:.0} ms |",
            us(pct(&tl, 0.5)),
            us(pct(&tl, 0.99)),
            us(pct(&tf, 0.5)) / 1e3,
            us(pct(&tf, 0.99)) / 1e3,
            us(pct(&tf, 0.5)) / us(pct(&tl, 0.5)).max(0.001),
            files.iter().max().unwrap_or(&0),
            rows as f64 / queries.len() as f64,
            cold.as_secs_f64() * 1e3,
        );
    }
    drop(store);
    if let Some(s) = scratch {
        common::remove_and_settle(s);
    }
}
