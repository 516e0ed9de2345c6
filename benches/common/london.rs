//! The London catalogue of benches/index.rs (issue 3) and its seven query kinds, shared with
//! benches/fleet.rs (issue 16), which splits the same segments among 100 stations: 1,500
//! officers (`MET-004217`-style ids) from 12 London stations working 8-10 h early, late or
//! night shifts, five days in seven, with cameras from their station's pool (device ids
//! `X6A-<station + 10><5 digits>`); 8-20 segments a shift, 30 s to 40 min long; a GPS fix every
//! 5 s while recording, from walking or driving tracks; dropouts; 3 % of segments without
//! GPS; categories, tags and case ids on some segments. Deterministic (seeded): the same
//! segments every run. benches/index.rs's header describes it in full.
//!
//! Included as `#[path = "common/london.rs"] mod london;` beside `common` and `harness`.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::common::Rng;
use crate::harness::{Census, Probe, DAY, HOUR, MIN, Q, SEC};
use footage::{Area, GpsFix, SegmentMeta};

pub const SEED: u64 = 0x0F00_7A6E_1D3E_0003;

/// Monday 2025-11-03 00:00 UTC (London is on UTC then).
pub const T0_US: i64 = 1_762_128_000_000_000;

pub const STATIONS: [(&str, f64, f64); 12] = [
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
pub const OFFICERS_PER_STATION: usize = 125;
pub const DEVICES_PER_STATION: usize = 140;
pub const OFFICERS: usize = STATIONS.len() * OFFICERS_PER_STATION;

pub const CATEGORIES: [(&str, u32); 10] = [
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
pub const TAGS: [(&str, u32); 12] = [
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
pub const LONDON: (f64, f64, f64, f64) = (51.28, -0.52, 51.70, 0.34);
pub const M_PER_DEG: f64 = 111_320.0;

// ---------------------------------------------------------------------------------------------
// The catalogue

pub fn unit(r: &mut Rng) -> f64 {
    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

pub fn range(r: &mut Rng, a: f64, b: f64) -> f64 {
    a + (b - a) * unit(r)
}

pub fn chance(r: &mut Rng, p: f64) -> bool {
    unit(r) < p
}

pub fn weighted<'a>(r: &mut Rng, items: &[(&'a str, u32)]) -> &'a str {
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

pub fn mix(a: u64, b: u64) -> u64 {
    Rng(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

pub fn officer_id(k: usize) -> String {
    // 7919 is prime to 10^6: distinct ids for every officer.
    format!("MET-{:06}", (4217 + k * 7919) % 1_000_000)
}

pub fn device_id(station: usize, d: usize) -> String {
    format!("X6A-{:02}{:05}", station + 10, (d * 37 + 11) % 100_000)
}

/// Moves a point `north` and `east` metres.
pub fn offset(lat: f64, lon: f64, north: f64, east: f64) -> (f64, f64) {
    (
        lat + north / M_PER_DEG,
        lon + east / (M_PER_DEG * lat.to_radians().cos()),
    )
}

/// (north, east) metres from a to b (equirectangular; fine at city scale).
pub fn delta_m(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (
        (b.0 - a.0) * M_PER_DEG,
        (b.1 - a.1) * M_PER_DEG * a.0.to_radians().cos(),
    )
}

#[derive(Clone, Copy)]
pub struct Shift {
    start_us: i64,
    officer: u32,
    day: u32,
}

/// Every shift of `days` days, sorted by start.
pub fn shifts(days: usize) -> Vec<Shift> {
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
pub struct Walker {
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

pub fn yyyymmdd(day: u32) -> String {
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
pub fn gen_shift(sh: &Shift) -> Vec<SegmentMeta> {
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

pub struct Pending {
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
pub struct Catalogue {
    shifts: Vec<Shift>,
    next: usize,
    heap: BinaryHeap<Reverse<Pending>>,
    left: usize,
}

impl Catalogue {
    pub fn new(n: usize) -> Catalogue {
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

// ---------------------------------------------------------------------------------------------
// Queries

pub const KINDS: [(&str, &str); 7] = [
    ("a_officer_2h", "officer + 2 h window"),
    ("b_window_2h", "every segment in 01:00-03:00"),
    ("c_near150m_2h", "within 150 m + 2 h window"),
    ("d_near150m_30d", "within 150 m + 30 days"),
    ("e_bbox_night", "1.5 km box + one night (22:00-06:00)"),
    ("f_london_15min", "all-London box + 15 min"),
    ("g_label_24h", "tag or category + 24 h"),
];

pub fn day_of(t: i64) -> i64 {
    T0_US + (t - T0_US).div_euclid(DAY) * DAY
}

pub fn make_queries(c: &Census, kind: usize, n: usize) -> Vec<Q> {
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
                    officers: vec![p.officer],
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
