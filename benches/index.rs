//! The footage index against SQLite (issue 3), on the same synthetic catalogue in the same run.
//!
//! Catalogue (deterministic, seeded): 1,500 officers (`MET-004217`-style ids) from 12 London
//! stations working 8-10 h early, late or night shifts, five days in seven, with cameras from
//! their station's pool; 8-20 segments a shift, 30 s to 40 min long (log-uniform); a GPS fix every
//! 5 s while recording, from walking (about 1.4 m/s, with stops) or driving (8-13 m/s, turns,
//! lights) tracks that wander from the station and are pulled back when too far; dropouts of
//! 1-6 minutes; 3 % of segments without GPS; categories, tags and case ids on some segments.
//! `FOOTAGE_BENCH_SEGMENTS` sets the number of segments (default 1,000,000; about 15,000 a day,
//! so 1,000,000 is about 67 days).
//!
//! Fixtures, built once per run (under `target/bench-tmp/`, removed at the end, or under
//! `FOOTAGE_BENCH_INDEX_DIR` and kept, and reused by the next run with the same count):
//! - footage: `footage::testing::synthesize_store` (the store's own catalog, checkpoint and
//!   track file encoders; no video), fed the segments sorted by start;
//! - SQLite (bundled, WAL, `synchronous=NORMAL`): `segments` with B-tree indexes on
//!   (officer, start, end), (device, start, end) and (start, end); `officers`, `devices`;
//!   `labels(kind, label, seg)` (WITHOUT ROWID); an `rtree_i32` R*Tree over track pieces (up to
//!   12 consecutive fixes, cut at gaps over 60 s: lat/lon box in 1e-7 degrees and whole-second
//!   time range) whose auxiliary columns hold the segment id and the piece's fixes (a packed
//!   blob: i64 base time, then u32 time offset, i32 lat, i32 lon per fix); indexes created after
//!   the bulk load, then `ANALYZE`. The exact test (`haversine_m`, box) runs in Rust on the
//!   pieces the R*Tree returns. Window queries use the longest segment duration (kept in `meta`)
//!   to bound the start range, as the footage index does.
//!
//! Queries: seven types, `FOOTAGE_BENCH_QUERIES` instances each (default 300), drawn (seeded)
//! around real segments and fixes so they have results. Before any timing, every instance runs
//! on both engines and the id lists (sorted by start, id) must be identical. footage's answer
//! is every page (`Store::find_all`: a page holds at most `MAX_PAGE` results), as SQLite
//! returns every row; both are timed that way. Then criterion
//! times each type (instances round-robin: the mean over the mix), and a hand-rolled pass times
//! every instance 3 times on each engine, interleaved, and reports p50 and p99 over the
//! instances of each one's best run (the least disturbed by other processes).
//!
//! Open: `Store::open` in a child process (this binary, re-executed), once after dropping the
//! page cache (if /proc/sys/vm/drop_caches is writable: root) and 5 times warm; wall-clock and
//! CPU time (user + system, which other processes on the cores barely change), RSS growth,
//! `index_stats()`, and a breakdown (CPU time to read, decompress and decode the checkpoint,
//! timed apart) come from the same child.
//!
//! Run: `cargo bench --bench index` (about 15 min at 1,000,000 segments on 2 cores);
//! `FOOTAGE_BENCH_SEGMENTS=100000 cargo bench --bench index` for a quick run;
//! `cargo bench --bench index -- --test` checks the answers and runs everything once.
//! `FOOTAGE_BENCH_PROFILE=<type>/<footage|sqlite>` (e.g. `c_near150m_2h/footage`) builds or
//! reuses the fixtures, then runs only that query type for 10 s, for `perf record`.

#[path = "common/mod.rs"]
mod common;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Rng;
use criterion::{Criterion, SamplingMode};
use footage::index::geo::EARTH_RADIUS_M;
use footage::{Area, GpsFix, Query, SegmentMeta};
use rusqlite::{params, Connection};

const SEED: u64 = 0x0F00_7A6E_1D3E_0003;
const SEGMENTS_ENV: &str = "FOOTAGE_BENCH_SEGMENTS";
const QUERIES_ENV: &str = "FOOTAGE_BENCH_QUERIES";
const DIR_ENV: &str = "FOOTAGE_BENCH_INDEX_DIR";
const CHILD_ENV: &str = "FOOTAGE_BENCH_INDEX_OPEN";
const PROFILE_ENV: &str = "FOOTAGE_BENCH_PROFILE";

/// Monday 2025-11-03 00:00 UTC (London is on UTC then).
const T0_US: i64 = 1_762_128_000_000_000;
const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

const STATIONS: [(&str, f64, f64); 12] = [
    ("Charing Cross", 51.5080, -0.1247),
    ("Brixton", 51.4613, -0.1156),
    ("Hackney", 51.5450, -0.0553),
    ("Stoke Newington", 51.5616, -0.0740),
    ("Lewisham", 51.4610, -0.0106),
    ("Ealing", 51.5128, -0.3037),
    ("Tottenham", 51.5975, -0.0691),
    ("Wembley", 51.5526, -0.2966),
    ("Croydon", 51.3730, -0.0989),
    ("Romford", 51.5770, 0.1837),
    ("Kingston", 51.4106, -0.3020),
    ("Stratford", 51.5422, -0.0032),
];
const OFFICERS_PER_STATION: usize = 125;
const DEVICES_PER_STATION: usize = 140;
const OFFICERS: usize = STATIONS.len() * OFFICERS_PER_STATION;

const CATEGORIES: [(&str, u32); 10] = [
    ("stop-and-search", 18),
    ("arrest", 12),
    ("traffic-stop", 14),
    ("domestic", 10),
    ("public-order", 8),
    ("theft", 9),
    ("assault", 7),
    ("mental-health", 5),
    ("welfare-check", 9),
    ("other", 8),
];
const TAGS: [(&str, u32); 12] = [
    ("evidential", 30),
    ("use-of-force", 10),
    ("handcuffs", 12),
    ("taser", 3),
    ("juvenile", 8),
    ("vulnerable-adult", 7),
    ("pursuit", 3),
    ("firearm", 1),
    ("complaint", 4),
    ("injury", 5),
    ("dog", 2),
    ("drugs", 9),
];

/// London, generously (M25 and a bit).
const LONDON: (f64, f64, f64, f64) = (51.28, -0.52, 51.70, 0.34);
const M_PER_DEG: f64 = 111_320.0;

// ---------------------------------------------------------------------------------------------
// The catalogue

fn unit(r: &mut Rng) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn range(r: &mut Rng, a: f64, b: f64) -> f64 {
    a + (b - a) * unit(r)
}

fn chance(r: &mut Rng, p: f64) -> bool {
    unit(r) < p
}

fn weighted<'a>(r: &mut Rng, items: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|x| x.1).sum();
    let mut x = r.below(u64::from(total)) as u32;
    for &(name, w) in items {
        if x < w {
            return name;
        }
        x -= w;
    }
    items[0].0
}

fn mix(a: u64, b: u64) -> u64 {
    Rng(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

fn officer_id(k: usize) -> String {
    // 7919 is prime to 10^6: distinct ids for every officer.
    format!("MET-{:06}", (4217 + k * 7919) % 1_000_000)
}

fn device_id(station: usize, d: usize) -> String {
    format!("X6A-{:02}{:05}", station + 10, (d * 37 + 11) % 100_000)
}

/// Moves a point `north` and `east` metres.
fn offset(lat: f64, lon: f64, north: f64, east: f64) -> (f64, f64) {
    (
        lat + north / M_PER_DEG,
        lon + east / (M_PER_DEG * lat.to_radians().cos()),
    )
}

/// (north, east) metres from a to b (equirectangular; fine at city scale).
fn delta_m(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (
        (b.0 - a.0) * M_PER_DEG,
        (b.1 - a.1) * M_PER_DEG * a.0.to_radians().cos(),
    )
}

#[derive(Clone, Copy)]
struct Shift {
    start_us: i64,
    officer: u32,
    day: u32,
}

/// Every shift of `days` days, sorted by start.
fn shifts(days: usize) -> Vec<Shift> {
    let mut out = Vec::new();
    for day in 0..days {
        for k in 0..OFFICERS {
            let team = k % 7;
            if (day + team) % 7 >= 5 {
                continue; // rest day
            }
            let kind = (day / 7 + k % 3) % 3;
            let base = [7 * HOUR, 15 * HOUR, 22 * HOUR][kind];
            let mut r = Rng(mix(SEED, ((day as u64) << 20) | k as u64));
            let jitter = ((unit(&mut r) - 0.5) * 90.0 * MIN as f64) as i64;
            out.push(Shift {
                start_us: T0_US + day as i64 * DAY + base + jitter,
                officer: k as u32,
                day: day as u32,
            });
        }
    }
    out.sort_by_key(|s| (s.start_us, s.officer));
    out
}

/// The wandering of one officer.
struct Walker {
    pos: (f64, f64),
    home: (f64, f64),
    heading: f64,
    stopped: u32,
}

impl Walker {
    fn step(&mut self, r: &mut Rng, dt: f64, driving: bool) {
        let speed = if self.stopped > 0 {
            self.stopped -= 1;
            0.0
        } else if driving {
            if chance(r, 0.04) {
                self.stopped = 1 + r.below(8) as u32; // lights, junctions
            }
            if chance(r, 0.1) {
                let turn = if chance(r, 0.5) { 1.0 } else { -1.0 };
                self.heading += turn * std::f64::consts::FRAC_PI_2;
            }
            self.heading += (unit(r) - 0.5) * 0.1;
            range(r, 8.0, 13.0)
        } else {
            if chance(r, 0.02) {
                self.stopped = 5 + r.below(40) as u32; // at a scene
            }
            self.heading += (unit(r) - 0.5) * 0.9;
            1.4 * range(r, 0.8, 1.2)
        };
        let (n, e) = delta_m(self.pos, self.home);
        let limit = if driving { 7000.0 } else { 2500.0 };
        if n * n + e * e > limit * limit {
            self.heading = e.atan2(n) + (unit(r) - 0.5) * 0.8;
        }
        let d = speed * dt;
        self.pos = offset(
            self.pos.0,
            self.pos.1,
            d * self.heading.cos(),
            d * self.heading.sin(),
        );
    }

    /// Goes towards a job for `dt` seconds (between recordings: no fixes, one step).
    fn travel(&mut self, r: &mut Rng, dt: f64, response: bool) {
        let radius = if response { 6000.0 } else { 2000.0 };
        let rr = radius * unit(r).sqrt();
        let b = range(r, 0.0, std::f64::consts::TAU);
        let target = offset(self.home.0, self.home.1, rr * b.cos(), rr * b.sin());
        let (n, e) = delta_m(self.pos, target);
        let dist = (n * n + e * e).sqrt().max(1e-9);
        let go = (if response { 9.0 } else { 1.3 } * dt).min(dist);
        self.pos = offset(self.pos.0, self.pos.1, n / dist * go, e / dist * go);
        self.heading = range(r, 0.0, std::f64::consts::TAU);
    }
}

fn yyyymmdd(day: u32) -> String {
    // Days from 2025-11-03; enough for a year of footage.
    let mut d = day as i64 + 2; // days since 2025-11-01
    let months: [(i64, i64, i64); 14] = [
        (2025, 11, 30),
        (2025, 12, 31),
        (2026, 1, 31),
        (2026, 2, 28),
        (2026, 3, 31),
        (2026, 4, 30),
        (2026, 5, 31),
        (2026, 6, 30),
        (2026, 7, 31),
        (2026, 8, 31),
        (2026, 9, 30),
        (2026, 10, 31),
        (2026, 11, 30),
        (2026, 12, 31),
    ];
    for (y, m, len) in months {
        if d < len {
            return format!("{y}{m:02}{:02}", d + 1);
        }
        d -= len;
    }
    format!("2027{:04}", d)
}

/// The segments of one shift, in start order.
fn gen_shift(sh: &Shift) -> Vec<SegmentMeta> {
    let k = sh.officer as usize;
    let station = k / OFFICERS_PER_STATION;
    let local = k % OFFICERS_PER_STATION;
    let response = local.is_multiple_of(3);
    let mut r = Rng(mix(SEED ^ 0x5EED, ((sh.day as u64) << 20) | k as u64));
    let len_us = range(&mut r, 8.0, 10.0) * HOUR as f64;
    let n = 8 + r.below(13) as usize;
    let mut durs: Vec<f64> = (0..n)
        .map(|_| 30.0 * SEC as f64 * (unit(&mut r) * 80f64.ln()).exp())
        .collect();
    let total: f64 = durs.iter().sum();
    if total > 0.85 * len_us {
        let f = 0.85 * len_us / total;
        durs.iter_mut().for_each(|d| *d *= f);
    }
    let total: f64 = durs.iter().sum();
    let mut gaps: Vec<f64> = (0..=n).map(|_| -(1.0 - unit(&mut r)).ln()).collect();
    let gsum: f64 = gaps.iter().sum();
    gaps.iter_mut()
        .for_each(|g| *g = *g / gsum * (len_us - total));

    let device = if chance(&mut r, 0.2) {
        device_id(station, r.below(DEVICES_PER_STATION as u64) as usize)
    } else {
        device_id(station, local % DEVICES_PER_STATION)
    };
    let officer = officer_id(k);
    let cases: Vec<String> = (0..r.below(3))
        .map(|_| format!("CAD-{}-{:05}", yyyymmdd(sh.day), r.below(100_000)))
        .collect();
    let (slat, slon, _) = (STATIONS[station].1, STATIONS[station].2, ());
    let home = (slat, slon);
    let mut w = Walker {
        pos: offset(
            slat,
            slon,
            range(&mut r, -150.0, 150.0),
            range(&mut r, -150.0, 150.0),
        ),
        home,
        heading: range(&mut r, 0.0, std::f64::consts::TAU),
        stopped: 0,
    };

    let mut out = Vec::with_capacity(n);
    let mut t = sh.start_us as f64;
    for (j, &dur) in durs.iter().enumerate() {
        t += gaps[j];
        if j > 0 {
            w.travel(&mut r, gaps[j] / SEC as f64, response);
        }
        let start = t as i64;
        let end = start + dur.max(1.0) as i64;
        t = end as f64;
        let driving = chance(&mut r, if response { 0.35 } else { 0.08 });
        let no_gps = chance(&mut r, 0.03);
        let mut gps = Vec::new();
        let mut tick = start + r.below(5 * SEC as u64) as i64;
        let mut last = start;
        let mut dropout_until = i64::MIN;
        while tick <= end {
            w.step(&mut r, (tick - last) as f64 / SEC as f64, driving);
            last = tick;
            if tick >= dropout_until {
                if chance(&mut r, 1.0 / 500.0) {
                    dropout_until = tick + range(&mut r, 60.0, 360.0) as i64 * SEC;
                } else if !no_gps {
                    let (lat, lon) = offset(
                        w.pos.0,
                        w.pos.1,
                        (unit(&mut r) + unit(&mut r) - 1.0) * 4.0,
                        (unit(&mut r) + unit(&mut r) - 1.0) * 4.0,
                    );
                    let time = tick + r.below(200) as i64 * 1000;
                    if time <= end {
                        gps.push(GpsFix::from_degrees(time, lat, lon).unwrap());
                    }
                }
            }
            tick += 5 * SEC;
        }
        let mut meta = SegmentMeta {
            officer: officer.clone(),
            device: device.clone(),
            start_us: start,
            end_us: end,
            gps,
            ..SegmentMeta::default()
        };
        if chance(&mut r, 0.6) {
            meta.categories
                .push(weighted(&mut r, &CATEGORIES).to_string());
        }
        if chance(&mut r, 0.25) {
            meta.tags.push(weighted(&mut r, &TAGS).to_string());
            if chance(&mut r, 0.3) {
                meta.tags.push(weighted(&mut r, &TAGS).to_string());
            }
        }
        if !cases.is_empty() && chance(&mut r, 0.25) {
            meta.cases
                .push(cases[r.below(cases.len() as u64) as usize].clone());
        }
        meta.normalize();
        out.push(meta);
    }
    out
}

struct Pending {
    key: (i64, u32, usize),
    meta: SegmentMeta,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}

/// The catalogue's first `n` segments, sorted by (start, officer), generated shift by shift.
struct Catalogue {
    shifts: Vec<Shift>,
    next: usize,
    heap: BinaryHeap<Reverse<Pending>>,
    left: usize,
}

impl Catalogue {
    fn new(n: usize) -> Catalogue {
        // About 15,000 segments a day; one spare day so the last one is complete.
        let per_day = OFFICERS as f64 * 5.0 / 7.0 * 14.0;
        let days = (n as f64 / per_day).ceil() as usize + 1;
        Catalogue {
            shifts: shifts(days),
            next: 0,
            heap: BinaryHeap::new(),
            left: n,
        }
    }
}

impl Iterator for Catalogue {
    type Item = SegmentMeta;

    fn next(&mut self) -> Option<SegmentMeta> {
        if self.left == 0 {
            return None;
        }
        loop {
            let bound = self.shifts.get(self.next).map(|s| s.start_us);
            match (self.heap.peek(), bound) {
                (Some(Reverse(p)), Some(b)) if p.key.0 < b => break,
                (Some(_), None) => break,
                (_, Some(_)) => {
                    let sh = self.shifts[self.next];
                    for (j, meta) in gen_shift(&sh).into_iter().enumerate() {
                        self.heap.push(Reverse(Pending {
                            key: (meta.start_us, sh.officer, j),
                            meta,
                        }));
                    }
                    self.next += 1;
                }
                (None, None) => return None,
            }
        }
        self.left -= 1;
        self.heap.pop().map(|Reverse(p)| p.meta)
    }
}

/// A segment remembered for drawing queries.
#[derive(Clone)]
struct Probe {
    officer: String,
    start: i64,
    fix: Option<GpsFix>,
    tag: Option<String>,
    category: Option<String>,
}

struct Census {
    segments: usize,
    fixes: u64,
    with_gps: usize,
    max_duration: i64,
    first_start: i64,
    last_start: i64,
    probes: Vec<Probe>,
    generate: Duration,
}

/// One pass over the catalogue without storing it: counts, probes (reservoir sample), time.
fn census(n: usize) -> Census {
    const RESERVOIR: usize = 20_000;
    let mut r = Rng(SEED ^ 0xC0FFEE);
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
    for m in Catalogue::new(n) {
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

// ---------------------------------------------------------------------------------------------
// Queries

const KINDS: [(&str, &str); 7] = [
    ("a_officer_2h", "officer + 2 h window"),
    ("b_window_2h", "every segment in 01:00-03:00"),
    ("c_near150m_2h", "within 150 m + 2 h window"),
    ("d_near150m_30d", "within 150 m + 30 days"),
    ("e_bbox_night", "1.5 km box + one night (22:00-06:00)"),
    ("f_london_15min", "all-London box + 15 min"),
    ("g_label_24h", "tag or category + 24 h"),
];

#[derive(Clone, Debug)]
struct Q {
    officer: Option<String>,
    lo: i64,
    hi: i64,
    area: Option<Area>,
    tag: Option<String>,
    category: Option<String>,
}

impl Q {
    fn window(lo: i64, hi: i64) -> Q {
        Q {
            officer: None,
            lo,
            hi,
            area: None,
            tag: None,
            category: None,
        }
    }

    fn footage(&self) -> Query {
        let mut q = Query::new().from(self.lo).to(self.hi);
        if let Some(o) = &self.officer {
            q = q.officer(o.clone());
        }
        q.area = self.area;
        q.tag = self.tag.clone();
        q.category = self.category.clone();
        q
    }
}

/// Every result of `q`, all pages, in order (as SQLite answers).
fn footage_ids(store: &footage::Store, q: &Query) -> Vec<u64> {
    store.find_all(q).map(|r| r.unwrap().id).collect()
}

fn day_of(t: i64) -> i64 {
    T0_US + (t - T0_US).div_euclid(DAY) * DAY
}

fn make_queries(c: &Census, kind: usize, n: usize) -> Vec<Q> {
    let mut r = Rng(mix(SEED ^ 0x9E7, kind as u64));
    let with_fix: Vec<&Probe> = c.probes.iter().filter(|p| p.fix.is_some()).collect();
    let night: Vec<&Probe> = with_fix
        .iter()
        .copied()
        .filter(|p| {
            let t = p.fix.map_or(0, |f| f.time_us);
            let h = (t - day_of(t)) / HOUR;
            !(6..22).contains(&h)
        })
        .collect();
    let labelled: Vec<&Probe> = c
        .probes
        .iter()
        .filter(|p| p.tag.is_some() || p.category.is_some())
        .collect();
    let pick = |r: &mut Rng, v: &[&Probe]| -> Probe { v[r.below(v.len() as u64) as usize].clone() };
    let near_point = |r: &mut Rng, f: GpsFix, max_m: f64| {
        let d = max_m * unit(r).sqrt();
        let b = range(r, 0.0, std::f64::consts::TAU);
        offset(f.lat(), f.lon(), d * b.cos(), d * b.sin())
    };
    (0..n)
        .map(|i| match kind {
            0 => {
                let p = pick(&mut r, &c.probes.iter().collect::<Vec<_>>());
                let lo = p.start - range(&mut r, 0.0, 2.0 * HOUR as f64) as i64;
                Q {
                    officer: Some(p.officer),
                    ..Q::window(lo, lo + 2 * HOUR)
                }
            }
            1 => {
                let p = pick(&mut r, &c.probes.iter().collect::<Vec<_>>());
                let d = day_of(p.start);
                Q::window(d + HOUR, d + 3 * HOUR)
            }
            2 | 3 => {
                let f = pick(&mut r, &with_fix).fix.unwrap();
                let (lat, lon) = near_point(&mut r, f, 100.0);
                let span = if kind == 2 { 2 * HOUR } else { 30 * DAY };
                let lo = f.time_us - range(&mut r, 0.0, span as f64) as i64;
                Q {
                    area: Some(Area::Near {
                        lat,
                        lon,
                        radius_m: 150.0,
                    }),
                    ..Q::window(lo, lo + span)
                }
            }
            4 => {
                let f = pick(&mut r, &night).fix.unwrap();
                let (lat, lon) = near_point(&mut r, f, 300.0);
                let (a, b) = offset(lat, lon, -750.0, -750.0);
                let (c2, d2) = offset(lat, lon, 750.0, 750.0);
                let t = f.time_us;
                let d = day_of(t);
                let from = if t - d >= 22 * HOUR {
                    d + 22 * HOUR
                } else {
                    d - 2 * HOUR
                };
                Q {
                    area: Some(Area::BBox {
                        min_lat: a,
                        min_lon: b,
                        max_lat: c2,
                        max_lon: d2,
                    }),
                    ..Q::window(from, from + 8 * HOUR)
                }
            }
            5 => {
                let f = pick(&mut r, &with_fix).fix.unwrap();
                let lo = f.time_us - range(&mut r, 0.0, 15.0 * MIN as f64) as i64;
                Q {
                    area: Some(Area::BBox {
                        min_lat: LONDON.0,
                        min_lon: LONDON.1,
                        max_lat: LONDON.2,
                        max_lon: LONDON.3,
                    }),
                    ..Q::window(lo, lo + 15 * MIN)
                }
            }
            _ => {
                let p = pick(&mut r, &labelled);
                let lo = p.start - range(&mut r, 0.0, DAY as f64) as i64;
                let mut q = Q::window(lo, lo + DAY);
                // Even instances prefer the tag, odd ones the category.
                if (i % 2 == 0 && p.tag.is_some()) || p.category.is_none() {
                    q.tag = p.tag;
                } else {
                    q.category = p.category;
                }
                q
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// SQLite

const PIECE_FIXES: usize = 12;
const PIECE_GAP_US: i64 = 60 * SEC;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -262144;
PRAGMA temp_store = MEMORY;
CREATE TABLE officers(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE devices(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE segments(
    id INTEGER PRIMARY KEY,
    officer INTEGER NOT NULL,
    device INTEGER NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL
);
CREATE TABLE labels(
    kind INTEGER NOT NULL,   -- 0 case, 1 tag, 2 category
    label TEXT NOT NULL,
    seg INTEGER NOT NULL,
    PRIMARY KEY (kind, label, seg)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE pieces USING rtree_i32(
    id, min_lat, max_lat, min_lon, max_lon, t0, t1, +seg INTEGER, +fixes BLOB
);
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

const INDEXES: &str = "
CREATE INDEX segments_officer ON segments(officer, start_us, end_us);
CREATE INDEX segments_device ON segments(device, start_us, end_us);
CREATE INDEX segments_time ON segments(start_us, end_us);
ANALYZE;
";

fn encode_piece(fixes: &[GpsFix]) -> Vec<u8> {
    let base = fixes[0].time_us;
    let mut b = Vec::with_capacity(8 + 12 * fixes.len());
    b.extend_from_slice(&base.to_le_bytes());
    for f in fixes {
        b.extend_from_slice(&((f.time_us - base) as u32).to_le_bytes());
        b.extend_from_slice(&f.lat_e7.to_le_bytes());
        b.extend_from_slice(&f.lon_e7.to_le_bytes());
    }
    b
}

fn decode_piece(b: &[u8]) -> impl Iterator<Item = GpsFix> + '_ {
    let base = i64::from_le_bytes(b[..8].try_into().unwrap());
    b[8..].chunks_exact(12).map(move |c| GpsFix {
        time_us: base + i64::from(u32::from_le_bytes(c[..4].try_into().unwrap())),
        lat_e7: i32::from_le_bytes(c[4..8].try_into().unwrap()),
        lon_e7: i32::from_le_bytes(c[8..12].try_into().unwrap()),
    })
}

/// Pieces of a track: runs of up to `PIECE_FIXES` fixes without a gap over `PIECE_GAP_US`.
fn pieces(gps: &[GpsFix]) -> Vec<&[GpsFix]> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..=gps.len() {
        if i == gps.len()
            || i - from == PIECE_FIXES
            || gps[i].time_us - gps[i - 1].time_us > PIECE_GAP_US
        {
            if i > from {
                out.push(&gps[from..i]);
            }
            from = i;
        }
    }
    out
}

/// Builds the SQLite database; returns the number of R*Tree pieces.
fn sqlite_build(path: &Path, n: usize) -> u64 {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let mut officers: HashMap<String, i64> = HashMap::new();
    let mut devices: HashMap<String, i64> = HashMap::new();
    let mut cat = Catalogue::new(n).peekable();
    let mut id = 0i64;
    let mut piece_id = 0i64;
    let mut max_dur = 0i64;
    while cat.peek().is_some() {
        let tx = conn.transaction().unwrap();
        {
            let mut ins_off = tx
                .prepare_cached("INSERT INTO officers(id, name) VALUES (?1, ?2)")
                .unwrap();
            let mut ins_dev = tx
                .prepare_cached("INSERT INTO devices(id, name) VALUES (?1, ?2)")
                .unwrap();
            let mut ins_seg = tx
                .prepare_cached(
                    "INSERT INTO segments(id, officer, device, start_us, end_us) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .unwrap();
            let mut ins_label = tx
                .prepare_cached("INSERT INTO labels(kind, label, seg) VALUES (?1, ?2, ?3)")
                .unwrap();
            let mut ins_piece = tx
                .prepare_cached(
                    "INSERT INTO pieces(id, min_lat, max_lat, min_lon, max_lon, t0, t1, seg, \
                     fixes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .unwrap();
            for m in cat.by_ref().take(10_000) {
                id += 1;
                let next = officers.len() as i64 + 1;
                let o = *officers.entry(m.officer.clone()).or_insert_with(|| {
                    ins_off.execute(params![next, m.officer]).unwrap();
                    next
                });
                let next = devices.len() as i64 + 1;
                let d = *devices.entry(m.device.clone()).or_insert_with(|| {
                    ins_dev.execute(params![next, m.device]).unwrap();
                    next
                });
                ins_seg
                    .execute(params![id, o, d, m.start_us, m.end_us])
                    .unwrap();
                max_dur = max_dur.max(m.end_us - m.start_us);
                for (kind, list) in [(0, &m.cases), (1, &m.tags), (2, &m.categories)] {
                    for l in list {
                        ins_label.execute(params![kind, l, id]).unwrap();
                    }
                }
                for p in pieces(&m.gps) {
                    piece_id += 1;
                    let min_lat = p.iter().map(|f| f.lat_e7).min().unwrap();
                    let max_lat = p.iter().map(|f| f.lat_e7).max().unwrap();
                    let min_lon = p.iter().map(|f| f.lon_e7).min().unwrap();
                    let max_lon = p.iter().map(|f| f.lon_e7).max().unwrap();
                    let t0 = p[0].time_us.div_euclid(SEC);
                    let t1 = (p[p.len() - 1].time_us + SEC - 1).div_euclid(SEC);
                    ins_piece
                        .execute(params![
                            piece_id,
                            min_lat,
                            max_lat,
                            min_lon,
                            max_lon,
                            t0,
                            t1,
                            id,
                            encode_piece(p)
                        ])
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    conn.execute_batch(INDEXES).unwrap();
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('max_duration_us', ?1)",
        params![max_dur],
    )
    .unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    piece_id as u64
}

struct Sqlite {
    conn: Connection,
    max_dur: i64,
}

const SQL_OFFICER: &str = "SELECT s.id FROM segments s \
     WHERE s.officer = (SELECT id FROM officers WHERE name = ?1) \
     AND s.start_us BETWEEN ?2 AND ?3 AND s.end_us >= ?4 ORDER BY s.start_us, s.id";
const SQL_WINDOW: &str = "SELECT id FROM segments \
     WHERE start_us BETWEEN ?1 AND ?2 AND end_us >= ?3 ORDER BY start_us, id";
const SQL_LABEL: &str = "SELECT s.id FROM labels l JOIN segments s ON s.id = l.seg \
     WHERE l.kind = ?1 AND l.label = ?2 \
     AND s.start_us BETWEEN ?3 AND ?4 AND s.end_us >= ?5 ORDER BY s.start_us, s.id";
const SQL_PIECES: &str = "SELECT seg, fixes FROM pieces \
     WHERE max_lat >= ?1 AND min_lat <= ?2 AND max_lon >= ?3 AND min_lon <= ?4 \
     AND t1 >= ?5 AND t0 <= ?6";
const SQL_SEGMENT: &str = "SELECT start_us, end_us FROM segments WHERE id = ?1";

/// Latitude and longitude ranges (degrees) holding an area (London: no pole, no antimeridian).
fn area_box(a: &Area) -> (f64, f64, f64, f64) {
    match *a {
        Area::BBox {
            min_lat,
            min_lon,
            max_lat,
            max_lon,
        } => (min_lat, max_lat, min_lon, max_lon),
        Area::Near { lat, lon, radius_m } => {
            let theta = radius_m / EARTH_RADIUS_M;
            let dlat = theta.to_degrees() * (1.0 + 1e-9) + 1e-7;
            let dlon =
                (theta.sin() / lat.to_radians().cos()).asin().to_degrees() * (1.0 + 1e-9) + 1e-7;
            (lat - dlat, lat + dlat, lon - dlon, lon + dlon)
        }
        _ => unreachable!("the bench builds only boxes and circles"),
    }
}

impl Sqlite {
    fn open(path: &Path) -> Sqlite {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA cache_size = -262144; PRAGMA mmap_size = 17179869184; \
             PRAGMA temp_store = MEMORY;",
        )
        .unwrap();
        let max_dur = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'max_duration_us'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        Sqlite { conn, max_dur }
    }

    fn plan(&self, q: &Q) -> String {
        let (sql, n) = match (&q.area, &q.officer, q.tag.is_some() || q.category.is_some()) {
            (Some(_), _, _) => (SQL_PIECES, 6),
            (None, Some(_), _) => (SQL_OFFICER, 4),
            (None, None, true) => (SQL_LABEL, 5),
            _ => (SQL_WINDOW, 3),
        };
        let mut st = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let args: Vec<i64> = vec![0; n];
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    }

    fn find(&self, q: &Q) -> Vec<u64> {
        let (lo, hi) = (q.lo, q.hi);
        let min_start = lo - self.max_dur;
        let ids = |st: &mut rusqlite::CachedStatement, p: &[&dyn rusqlite::ToSql]| -> Vec<u64> {
            st.query_map(p, |r| r.get::<_, i64>(0))
                .unwrap()
                .map(|x| x.unwrap() as u64)
                .collect()
        };
        if let Some(area) = &q.area {
            let (a, b, c, d) = area_box(area);
            let e7 = |v: f64, up: bool| -> i64 {
                let x = v * 1e7;
                if up {
                    x.ceil() as i64 + 1
                } else {
                    x.floor() as i64 - 1
                }
            };
            let mut st = self.conn.prepare_cached(SQL_PIECES).unwrap();
            let mut rows = st
                .query(params![
                    e7(a, false),
                    e7(b, true),
                    e7(c, false),
                    e7(d, true),
                    lo.div_euclid(SEC),
                    hi.div_euclid(SEC) + 1
                ])
                .unwrap();
            let mut matched: HashSet<u64> = HashSet::new();
            while let Some(row) = rows.next().unwrap() {
                let seg = row.get::<_, i64>(0).unwrap() as u64;
                if matched.contains(&seg) {
                    continue;
                }
                let blob = row.get_ref(1).unwrap().as_blob().unwrap();
                if decode_piece(blob)
                    .any(|f| lo <= f.time_us && f.time_us <= hi && area.contains(&f))
                {
                    matched.insert(seg);
                }
            }
            drop(rows);
            let mut seg = self.conn.prepare_cached(SQL_SEGMENT).unwrap();
            let mut out: Vec<(i64, u64)> = matched
                .into_iter()
                .filter_map(|id| {
                    let (s, e): (i64, i64) = seg
                        .query_row(params![id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                        .unwrap();
                    (s <= hi && e >= lo).then_some((s, id))
                })
                .collect();
            out.sort_unstable();
            return out.into_iter().map(|x| x.1).collect();
        }
        if let Some(o) = &q.officer {
            let mut st = self.conn.prepare_cached(SQL_OFFICER).unwrap();
            return ids(&mut st, &[o, &min_start, &hi, &lo]);
        }
        let label = match (&q.tag, &q.category) {
            (Some(t), _) => Some((1, t)),
            (None, Some(c)) => Some((2, c)),
            _ => None,
        };
        if let Some((kind, l)) = label {
            let mut st = self.conn.prepare_cached(SQL_LABEL).unwrap();
            return ids(&mut st, &[&kind, l, &min_start, &hi, &lo]);
        }
        let mut st = self.conn.prepare_cached(SQL_WINDOW).unwrap();
        ids(&mut st, &[&min_start, &hi, &lo])
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures, open, memory

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let md = e.metadata().unwrap();
            total += if md.is_dir() {
                dir_bytes(&e.path())
            } else {
                md.len()
            };
        }
    }
    total
}

fn file_bytes(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// CPU time (user + system) of this process so far: unlike wall-clock time, barely changed by
/// other processes competing for the 2 cores.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct passed; all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Child mode: one open; prints RSS before/after, open time and the index sizes.
fn open_child(dir: &str) {
    let before = common::rss_bytes();
    let cpu = cpu_time();
    let t = Instant::now();
    let s = footage::testing::open_or_create_default(dir).expect("open");
    let d = t.elapsed();
    let cpu = cpu_time() - cpu;
    let after = common::rss_bytes();
    let st = s.index_stats();
    drop(s);
    // Where the time goes, measured apart in the same process: reading the checkpoint,
    // decompressing it, decoding it (which includes rebuilding the time/officer/device lists).
    let ckpt = std::fs::read_dir(Path::new(dir).join("catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .max()
        .unwrap();
    // CPU time, not wall clock: these run after the open, when other processes may hold the
    // cores.
    let t = cpu_time();
    let data = std::fs::read(&ckpt).unwrap();
    let read = cpu_time() - t;
    let t = cpu_time();
    let body = footage::decode_checkpoint_file(&data).unwrap();
    let unzip = cpu_time() - t;
    let t = cpu_time();
    black_box(footage::decode_checkpoint_body(&body).unwrap());
    let decode = cpu_time() - t;
    println!(
        "{before} {after} {} {} {} {} {} {} {} {} {} {}",
        d.as_nanos(),
        cpu.as_nanos(),
        read.as_nanos(),
        unzip.as_nanos(),
        decode.as_nanos(),
        st.segments,
        st.postings,
        st.catalog_heap_bytes,
        st.index_heap_bytes,
        st.track_file_bytes
    );
}

struct OpenRun {
    rss_delta: i64,
    time: Duration,
    cpu: Duration,
    parts: [Duration; 3],
    segments: usize,
    postings: usize,
    catalog_heap: usize,
    index_heap: usize,
    track_bytes: u64,
}

fn open_in_child(store: &Path) -> OpenRun {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    OpenRun {
        rss_delta: v[1] as i64 - v[0] as i64,
        time: Duration::from_nanos(v[2]),
        cpu: Duration::from_nanos(v[3]),
        parts: [
            Duration::from_nanos(v[4]),
            Duration::from_nanos(v[5]),
            Duration::from_nanos(v[6]),
        ],
        segments: v[7] as usize,
        postings: v[8] as usize,
        catalog_heap: v[9] as usize,
        index_heap: v[10] as usize,
        track_bytes: v[11],
    }
}

fn drop_caches() -> bool {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
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

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        open_child(&dir);
        return;
    }
    let n: usize = std::env::var(SEGMENTS_ENV)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
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
            let s = common::scratch("index-");
            let p = s.path().to_path_buf();
            (Some(s), p)
        }
    };
    let root = root.join(format!("n{n}"));
    std::fs::create_dir_all(&root).unwrap();
    let store_dir = root.join("footage");
    let db_path = root.join("sqlite.db");
    let marker = root.join("built.txt");

    println!("index bench: {n} segments ({SEGMENTS_ENV}), {nq} queries per type ({QUERIES_ENV})");
    let cen = census(n);
    println!(
        "catalogue: {} segments ({} with GPS), {} fixes ({:.1} per segment), {} officers, \
         {:.1} days, longest segment {:.1} min; generating it alone takes {}",
        cen.segments,
        cen.with_gps,
        cen.fixes,
        cen.fixes as f64 / cen.segments as f64,
        OFFICERS,
        (cen.last_start - cen.first_start) as f64 / DAY as f64,
        cen.max_duration as f64 / MIN as f64,
        common::fmt_duration(cen.generate)
    );

    // Build times, and the generation time of the run that built (subtracted from them).
    let (footage_build, sqlite_build, pieces, generate): (Duration, Duration, u64, Duration) =
        if let Ok(s) = std::fs::read_to_string(&marker) {
            let v: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
            println!(
                "fixtures reused from {} (build times of the run that made them)",
                root.display()
            );
            (
                Duration::from_nanos(v[0]),
                Duration::from_nanos(v[1]),
                v[2],
                Duration::from_nanos(v.get(3).copied().unwrap_or(0)),
            )
        } else {
            let _ = std::fs::remove_dir_all(&store_dir);
            let _ = std::fs::remove_file(&db_path);
            let t = Instant::now();
            let got = footage::testing::synthesize_store(&store_dir, Catalogue::new(n)).unwrap();
            let fb = t.elapsed();
            assert_eq!(got as usize, n);
            println!(
                "footage: synthesize_store {} (generation included; {} without it)",
                common::fmt_duration(fb),
                common::fmt_duration(fb.saturating_sub(cen.generate))
            );
            let t = Instant::now();
            let pieces = sqlite_build(&db_path, n);
            let sb = t.elapsed();
            println!(
                "sqlite: build {} (generation included; {} without it), {pieces} R*Tree pieces",
                common::fmt_duration(sb),
                common::fmt_duration(sb.saturating_sub(cen.generate))
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
            (fb, sb, pieces, cen.generate)
        };
    let catalog_bytes = dir_bytes(&store_dir.join("catalog"));
    let tracks_bytes = file_bytes(&store_dir.join("catalog").join("tracks.ftt"));
    let db_bytes = file_bytes(&db_path)
        + file_bytes(&root.join("sqlite.db-wal"))
        + file_bytes(&root.join("sqlite.db-shm"));

    // Open: cold (if the page cache can be dropped), then warm.
    let cold = if !test_mode && drop_caches() {
        Some(open_in_child(&store_dir))
    } else {
        None
    };
    let warm: Vec<OpenRun> = (0..if test_mode { 1 } else { 5 })
        .map(|_| open_in_child(&store_dir))
        .collect();
    let mut warm_times: Vec<Duration> = warm.iter().map(|o| o.time).collect();
    warm_times.sort();
    let warm_open = warm_times[warm_times.len() / 2];
    let mut warm_cpus: Vec<Duration> = warm.iter().map(|o| o.cpu).collect();
    warm_cpus.sort();
    let warm_cpu = warm_cpus[warm_cpus.len() / 2];
    let mut by_parts: Vec<[Duration; 3]> = warm.iter().map(|o| o.parts).collect();
    by_parts.sort_by_key(|p| p[0] + p[1] + p[2]);
    let open_parts = by_parts[by_parts.len() / 2];
    println!(
        "open: CPU time (user + system) cold {}, warm {} (median)",
        cold.as_ref()
            .map_or("n/a".into(), |c| common::fmt_duration(c.cpu)),
        common::fmt_duration(warm_cpu)
    );
    let o = &warm[0];
    println!(
        "open: cold {}, warm {} (median of {}: {})",
        cold.as_ref()
            .map_or("n/a (cannot drop the page cache)".into(), |c| {
                common::fmt_duration(c.time)
            }),
        common::fmt_duration(warm_open),
        warm_times.len(),
        warm_times
            .iter()
            .map(|d| common::fmt_duration(*d))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Both engines, and the queries.
    let store = footage::testing::open_or_create_default(&store_dir).unwrap();
    assert_eq!(store.len(), n);
    let sql = Sqlite::open(&db_path);
    let queries: Vec<Vec<Q>> = (0..KINDS.len())
        .map(|k| make_queries(&cen, k, nq))
        .collect();
    let fqueries: Vec<Vec<Query>> = queries
        .iter()
        .map(|v| v.iter().map(Q::footage).collect())
        .collect();

    println!();
    println!("== same answers (every instance, both engines) ==");
    let mut result_counts: Vec<(usize, usize, HashMap<&'static str, usize>)> = Vec::new();
    for (k, (name, _)) in KINDS.iter().enumerate() {
        let mut total = 0;
        let mut empty = 0;
        let mut plans: HashMap<&'static str, usize> = HashMap::new();
        for (q, fq) in queries[k].iter().zip(&fqueries[k]) {
            // Every page (an answer holds at most MAX_PAGE results), as SQLite returns all.
            let page = store.find(fq).unwrap();
            *plans.entry(page.plan).or_default() += 1;
            let a: Vec<u64> = footage_ids(&store, fq);
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
        result_counts.push((total, empty, plans));
    }

    // Profiling mode: loop over one query type on one engine, then stop.
    if let Ok(p) = std::env::var(PROFILE_ENV) {
        let (kind, engine) = p
            .split_once('/')
            .expect("FOOTAGE_BENCH_PROFILE=<type>/<engine>");
        let k = KINDS.iter().position(|x| x.0 == kind).expect("query type");
        let t = Instant::now();
        let mut runs = 0usize;
        while t.elapsed() < Duration::from_secs(10) {
            let i = runs % nq;
            if engine == "footage" {
                black_box(footage_ids(&store, &fqueries[k][i]));
            } else {
                black_box(sql.find(&queries[k][i]));
            }
            runs += 1;
        }
        println!(
            "profile: {p}: {runs} queries in 10 s, {} each",
            us(Duration::from_secs(10) / runs as u32)
        );
        return;
    }

    // Criterion: each type, instances round-robin.
    let mut g = c.benchmark_group("index");
    g.sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (k, (name, _)) in KINDS.iter().enumerate() {
        let mut i = 0usize;
        g.bench_function(format!("{name}/footage"), |b| {
            b.iter(|| {
                let q = &fqueries[k][i % nq];
                i += 1;
                black_box(footage_ids(&store, q).len())
            })
        });
        let mut i = 0usize;
        g.bench_function(format!("{name}/sqlite"), |b| {
            b.iter(|| {
                let q = &queries[k][i % nq];
                i += 1;
                black_box(sql.find(q).len())
            })
        });
    }
    g.finish();
    c.final_summary();

    // Percentiles: every instance 3 times on each engine, interleaved; per-instance minimum
    // (the run least disturbed by other processes on the 2 cores).
    const ROUNDS: usize = 3;
    let rounds = if test_mode { 1 } else { ROUNDS };
    let mut rows = Vec::new();
    for (k, (name, what)) in KINDS.iter().enumerate() {
        let mut f_t = vec![Vec::new(); nq];
        let mut s_t = vec![Vec::new(); nq];
        for _ in 0..rounds {
            for i in 0..nq {
                let t = Instant::now();
                black_box(footage_ids(&store, &fqueries[k][i]));
                f_t[i].push(t.elapsed());
                let t = Instant::now();
                black_box(sql.find(&queries[k][i]));
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
        rows.push((
            *name,
            *what,
            percentile(&f, 0.5),
            percentile(&f, 0.99),
            percentile(&s, 0.5),
            percentile(&s, 0.99),
        ));
    }

    println!();
    println!(
        "== index: latency per query ({nq} instances per type, best of {rounds} runs each) =="
    );
    println!(
        "| query | results (mean) | footage p50 | footage p99 | SQLite p50 | SQLite p99 | \
         p50 ratio | p99 ratio | goal (p50 >= 10x) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (k, (name, what, fp50, fp99, sp50, sp99)) in rows.iter().enumerate() {
        let r50 = sp50.as_secs_f64() / fp50.as_secs_f64();
        let r99 = sp99.as_secs_f64() / fp99.as_secs_f64();
        println!(
            "| {name}: {what} | {:.1} | {} | {} | {} | {} | {r50:.1}x | {r99:.1}x | {} |",
            result_counts[k].0 as f64 / nq as f64,
            us(*fp50),
            us(*fp99),
            us(*sp50),
            us(*sp99),
            if r50 >= 10.0 { "met" } else { "MISSED" }
        );
    }

    let fixes = cen.fixes as f64;
    let segs = n as f64;
    let budget = 64.0 * segs + 4.0 * fixes;
    println!();
    println!("== index: build, open, size, memory ==");
    println!("| | footage | SQLite |");
    println!("| --- | ---: | ---: |");
    println!(
        "| build (wall clock, generation of the catalogue included / excluded) | {} / {} | {} / {} |",
        common::fmt_duration(footage_build),
        common::fmt_duration(footage_build.saturating_sub(generate)),
        common::fmt_duration(sqlite_build),
        common::fmt_duration(sqlite_build.saturating_sub(generate))
    );
    println!(
        "| on disk | {} (checkpoint {}, tracks.ftt {}) | {} ({pieces} R*Tree pieces) |",
        mb(catalog_bytes),
        mb(catalog_bytes - tracks_bytes),
        mb(tracks_bytes),
        mb(db_bytes)
    );
    println!(
        "| open (Store::open, child process) | cold {}, warm {} (CPU time: cold {}, warm {}) | - |",
        cold.as_ref()
            .map_or("n/a".into(), |c| common::fmt_duration(c.time)),
        common::fmt_duration(warm_open),
        cold.as_ref()
            .map_or("n/a".into(), |c| common::fmt_duration(c.cpu)),
        common::fmt_duration(warm_cpu)
    );
    println!(
        "| open breakdown (CPU time, warm, measured apart in the child) | read checkpoint {}, zstd {}, decode {} | - |",
        common::fmt_duration(open_parts[0]),
        common::fmt_duration(open_parts[1]),
        common::fmt_duration(open_parts[2])
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
        common::fmt_duration(warm_open),
        cold.as_ref().map_or(String::new(), |c| format!(
            ", cold {}",
            common::fmt_duration(c.time)
        )),
        if heap_ok { "met" } else { "MISSED" }
    );

    drop(store);
    drop(sql);
    if let Some(s) = scratch {
        common::remove_and_settle(s);
    }
}
