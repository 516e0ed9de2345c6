//! The footage index against SQLite on a second catalogue (issue 15): a county force, shaped
//! like a real one (many officers, short segments, mixed windows), with its own generator, seed
//! and queries. The harness (benches/common/index_harness/: fixtures, SQLite design, answer
//! check, criterion and p50/p99 timing, open in a child) is the one benches/index.rs uses, so
//! the figures compare.
//!
//! Catalogue (deterministic; its own seed and random streams, `force::SEED`; from Monday
//! 2026-01-05, UTC; positions on a local plane around central Birmingham, 52.48 N 1.89 W). The
//! force itself (stations, roads, officers, cameras, label vocabularies) is
//! benches/common/force_model.rs; this file makes shifts, jobs, segments and tracks.
//! - 40 stations in the West Midlands: 28 in the conurbation (Birmingham, the Black Country,
//!   Coventry), 7 market towns, 3 rural, 2 roads-policing bases; each with a patch (3.5 km
//!   conurbation, 7 km town, 11 km rural) and 2-4 hotspots. Fixes span about 65 x 52 km
//!   (52.25-52.72 N, 2.34-1.37 W).
//! - 4,000 officers (`WMP-20011`-style ids), by station weight; response (55 % in the
//!   conurbation, fewer in towns), neighbourhood (40-45 %), roads policing (5-15 %, and every
//!   officer of the two bases; about 11 % in all). Response and roads work 4 on, 4 off (10 h;
//!   earlies, lates, nights), neighbourhood 5 in 7 (8 h, 08:00 or 14:00); 7 % of shifts are
//!   leave. Each officer has a habit (lognormal, median 1, sigma 0.5: jobs a shift) and a
//!   restart propensity (0.2-0.65: the chance of stopping and starting again within a job).
//! - Cameras from the station's pool (0.65 per officer), drawn per shift (5 % swap mid-shift).
//!   Three models with their own GPS fix interval: `AX3` 1 s, `VB4` 2 s, `D5` 5 s (conurbation
//!   25/60/15 %, towns 10/40/50 %, rural 0/30/70 %, roads bases all `AX3`).
//! - Jobs a shift: Poisson, mean 3.0 response (x1.25 at night, x1.3 more on Friday and Saturday
//!   nights), 1.4 neighbourhood, 2.6 roads, times the habit; each job 1 + geometric(restart)
//!   segments (at most 8; one more in custody after 60 % of arrests), 3 s to 4 min apart
//!   (log-uniform). Kinds: incidents and domestics (response, near a hotspot or anywhere in the
//!   patch; domestics mostly indoors), foot patrol in the town centre (neighbourhood), traffic
//!   stops, road patrol and collisions on 10 roads (M5, M6, M42, M54, A34, A38, A41, A45, A46,
//!   A449).
//! - Segment lengths by activity: a share under a minute (log-uniform 4-60 s; 2-35 %), a
//!   lognormal body (median 100-900 s) and a long tail (lognormal, median 15-40 min; half of
//!   the collision segments); at most 2 h. Overall (first 20,000): median 2.4 min, mean
//!   6.2 min, 32 % under 1 min, 4 % over 30 min, 0.2 % cut at 2 h; 177 fixes a segment.
//! - Tracks: foot at a scene (0.4-1.3 m/s, tethered, pauses), foot patrol (1.2-1.6 m/s on a
//!   street grid, stops), urban driving (6-15 m/s, lights, junctions), roads (13-22 m/s on
//!   A-roads, 24-31 m/s on motorways, congestion), indoors (still, drifting fixes). A fix every
//!   1, 2 or 5 s after a time to first fix (within the interval, or 5-45 s cold for 12 %);
//!   noise 3 m (8 m indoors); dropouts (8 s-5 min, every 15 min outdoors, 2 min indoors); jumps
//!   of 50-800 m for 2-40 s (every 30 min outdoors, 5 min indoors). No GPS at all: custody
//!   (always), 20 % of indoor segments, 0.5-3 % by model, and short segments that end before
//!   the first fix: about 7 % of segments.
//! - Labels, skewed (Zipf): 18 categories (8 for roads policing) on about 70 % of segments
//!   (a job's category on its segments; `arrest` added on 8 % of incidents), 26 tags (45 % of
//!   segments have one, some two or three), case ids (`WM-260105-0457` log numbers on 15-90 %
//!   of jobs by kind, `CRN-` crime numbers on some; about 40 % of segments) shared by a job's
//!   segments.
//!
//! About 10,600 segments a day (100,000 span 9.4 days), so the default 300,000
//! (`FOOTAGE_BENCH_SEGMENTS`) is about 28 days; a 100,000 run (build included) takes about
//! 2 min on 2 cores (footage build 7.5 s, SQLite 21 s), 300,000 a few minutes.
//!
//! Queries: seven kinds covering those of benches/index.rs, plus several officers, each over a
//! mix of windows (and radii, box sizes) cycled across its instances:
//! `a_officer_mix` officer; `b_officers_mix` 2-5 officers of one station and team; `c_window_mix`
//! every segment; `d_near_mix` within a radius; `e_bbox_mix` in a box; `f_wide_short` the whole
//! force area or one local policing area with a short window; `g_label_mix` a tag, category or
//! case id (see `KINDS`). Fixtures go to `force-n<segments>/` (FOOTAGE_BENCH_INDEX_DIR is shared
//! with benches/index.rs, which uses `n<segments>/`).
//!
//! Run: `cargo bench --bench index_force`; `FOOTAGE_BENCH_SEGMENTS=100000 cargo bench --bench
//! index_force` for a quick run; `-- --test` checks the answers and runs everything once;
//! `FOOTAGE_BENCH_PROFILE=<kind>/<footage|sqlite>` as in benches/index.rs.

#[path = "common/mod.rs"]
mod common;
#[path = "common/force_model.rs"]
mod force;
#[path = "common/index_harness/mod.rs"]
mod harness;

use std::f64::consts::{FRAC_PI_2, TAU};

use footage::{Area, GpsFix, SegmentMeta};
use force::*;
use harness::{Census, Probe, DAY, HOUR, MIN, Q, SEC};

/// Monday 2026-01-05 00:00 UTC (the UK is on UTC until 29 March).
const T0_US: i64 = 1_767_571_200_000_000;

// ---------------------------------------------------------------------------------------------
// Shifts, jobs, segments

/// (start, length) of officer `k`'s shift on `day`, if any (rota, then leave).
fn shift_time(o: &Officer, day: usize, r: &mut Rnd) -> Option<(i64, i64)> {
    let (start_h, len_h) = match o.role {
        Role::Response | Role::Roads => {
            let p = (day + o.team) % 8;
            if p >= 4 {
                return None;
            }
            let starts = if o.role == Role::Response {
                [7, 7, 15, 22]
            } else {
                [6, 6, 16, 21]
            };
            (starts[p], 10)
        }
        Role::Neighbourhood => {
            if (day + o.team) % 7 >= 5 {
                return None;
            }
            // Alternate weeks of earlies (08:00) and lates (14:00).
            let late = !(day / 7 + o.team).is_multiple_of(2);
            (if late { 14 } else { 8 }, 8)
        }
    };
    if r.coin(0.07) {
        return None;
    }
    let jitter = (r.between(-20.0, 20.0) * MIN as f64) as i64;
    Some((
        T0_US + day as i64 * DAY + start_h * HOUR + jitter,
        len_h * HOUR,
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JobKind {
    Incident,
    Domestic,
    Patrol,
    TrafficStop,
    RoadPatrol,
    Collision,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Act {
    /// On foot at a scene: slow, tethered, pauses.
    Scene,
    /// Foot patrol on the street grid.
    Patrol,
    /// Driving in town.
    Drive,
    /// Driving on a road (roads policing).
    Road,
    /// At the roadside (a stop).
    Roadside,
    /// At a collision: as at the roadside, longer, over a wider scene.
    Collision,
    Indoor,
    /// Custody suite: no GPS.
    Custody,
}

/// Segment length in seconds: (share under a minute, body median, body sigma, long share, long
/// median).
fn duration_s(act: Act, r: &mut Rnd) -> f64 {
    let (quick, med, sigma, long, long_med) = match act {
        Act::Scene => (0.30, 150.0, 0.85, 0.08, 1200.0),
        Act::Patrol => (0.25, 180.0, 0.9, 0.15, 1500.0),
        Act::Drive => (0.35, 100.0, 0.7, 0.03, 900.0),
        Act::Road => (0.15, 240.0, 0.8, 0.05, 1500.0),
        Act::Roadside => (0.15, 300.0, 0.6, 0.05, 1500.0),
        Act::Collision => (0.02, 900.0, 0.6, 0.5, 2400.0),
        Act::Indoor => (0.15, 420.0, 0.8, 0.10, 1800.0),
        Act::Custody => (0.0, 600.0, 0.5, 0.20, 1500.0),
    };
    let x = r.f();
    let s = if x < quick {
        r.log_uniform(4.0, 60.0)
    } else if x < quick + long {
        r.lognormal(long_med, 0.7)
    } else {
        r.lognormal(med, sigma)
    };
    s.clamp(3.0, 7200.0)
}

/// Where an officer is, and how they move.
struct Mover {
    pos: (f64, f64),
    anchor: (f64, f64),
    heading: f64,
    speed: f64,
    target: f64,
    pause_s: f64,
    road: usize,
    along: f64,
    dir: f64,
}

impl Mover {
    fn step(&mut self, f: &Force, st: &Station, act: Act, dt: f64, r: &mut Rnd) {
        if self.pause_s > 0.0 {
            self.pause_s -= dt;
            return;
        }
        let to_anchor = (self.anchor.1 - self.pos.1).atan2(self.anchor.0 - self.pos.0);
        let away = dist(self.pos, self.anchor);
        match act {
            Act::Scene | Act::Roadside | Act::Collision => {
                if r.coin(dt / 40.0) {
                    self.pause_s = r.between(10.0, 90.0);
                }
                self.heading += r.normal() * 0.8;
                let tether = match act {
                    Act::Scene => 40.0,
                    Act::Roadside => 25.0,
                    _ => 60.0,
                };
                if away > tether {
                    self.heading = to_anchor + r.normal() * 0.5;
                }
                self.speed = r.between(0.4, 1.3);
            }
            Act::Patrol => {
                if r.coin(dt / 150.0) {
                    self.pause_s = r.between(15.0, 240.0);
                }
                if r.coin(self.speed * dt / 90.0) {
                    let turn = [-1.0, 0.0, 1.0][r.int(3)];
                    self.heading += turn * FRAC_PI_2;
                }
                if away > 1200.0 {
                    let k = ((to_anchor - st.grid) / FRAC_PI_2).round();
                    self.heading = st.grid + k * FRAC_PI_2;
                }
            }
            Act::Drive => {
                if r.coin(dt / 45.0) {
                    self.pause_s = r.between(8.0, 50.0);
                }
                self.speed += (self.target - self.speed) * (0.3 * dt).min(1.0);
                if r.coin(self.speed * dt / 150.0) {
                    self.heading += if r.coin(0.5) { FRAC_PI_2 } else { -FRAC_PI_2 };
                }
                if away > 200.0 && r.coin(0.2) {
                    self.heading = to_anchor + r.normal() * 0.3;
                }
                if away > st.patch_m {
                    self.heading = to_anchor;
                }
            }
            Act::Road => {
                let road = &f.roads[self.road];
                if r.coin(dt / 400.0) {
                    self.speed = r.between(3.0, 8.0); // congestion, then back up to speed
                }
                self.speed += (self.target - self.speed) * (0.05 * dt).min(1.0)
                    + r.normal() * 0.5 * dt.sqrt();
                self.speed = self.speed.max(0.0);
                self.along += self.dir * self.speed * dt;
                if self.along <= 0.0 || self.along >= road.length() {
                    self.dir = -self.dir;
                    self.along = self.along.clamp(0.0, road.length());
                }
                let (p, h) = road.at(self.along);
                let lane = self.dir * 5.0;
                self.pos = (p.0 + lane * h.sin(), p.1 - lane * h.cos());
                return;
            }
            Act::Indoor | Act::Custody => return,
        }
        let d = self.speed * dt;
        self.pos.0 += d * self.heading.cos();
        self.pos.1 += d * self.heading.sin();
    }
}

/// The fixes of one segment, moving `mv` through it.
#[allow(clippy::too_many_arguments)]
fn track(
    f: &Force,
    st: &Station,
    mv: &mut Mover,
    act: Act,
    dev: &Device,
    start: i64,
    end: i64,
    r: &mut Rnd,
) -> Vec<GpsFix> {
    let indoor = act == Act::Indoor;
    let no_gps = match act {
        Act::Custody => true,
        Act::Indoor => r.coin(0.2),
        _ => false,
    } || r.coin(dev.no_gps);
    let step = dev.fix_us;
    let ttff = if r.coin(0.88) {
        (r.f() * step as f64) as i64
    } else {
        (r.log_uniform(5.0, 45.0) * SEC as f64) as i64
    };
    let (noise, drop_every, jump_every) = if indoor {
        (8.0, 120.0, 300.0)
    } else {
        (3.0, 900.0, 1800.0)
    };
    let mut gps = Vec::new();
    let mut t = start + ttff;
    let mut last = start;
    let mut dropout_until = i64::MIN;
    let mut jump_until = i64::MIN;
    let mut jump = (0.0, 0.0);
    let mut drift = (0.0, 0.0);
    while t <= end {
        let dt = (t - last) as f64 / SEC as f64;
        last = t;
        mv.step(f, st, act, dt, r);
        if no_gps || t < dropout_until {
            t += step;
            continue;
        }
        if r.coin(dt / drop_every) {
            dropout_until = t + (r.log_uniform(8.0, 300.0) * SEC as f64) as i64;
            t += step;
            continue;
        }
        if t >= jump_until && r.coin(dt / jump_every) {
            jump_until = t + (r.log_uniform(2.0, 40.0) * SEC as f64) as i64;
            let (d, b) = (r.log_uniform(50.0, 800.0), r.between(0.0, TAU));
            jump = (d * b.cos(), d * b.sin());
        }
        if indoor {
            drift.0 += r.normal() * 2.0;
            drift.1 += r.normal() * 2.0;
            let m = drift.0.hypot(drift.1);
            if m > 60.0 {
                drift = (drift.0 * 60.0 / m, drift.1 * 60.0 / m);
            }
        }
        let (jx, jy) = if t < jump_until { jump } else { (0.0, 0.0) };
        let p = (
            mv.pos.0 + drift.0 + jx + r.normal() * noise,
            mv.pos.1 + drift.1 + jy + r.normal() * noise,
        );
        let time = t + r.int(100) as i64 * 1000;
        if time <= end {
            let (lat, lon) = to_deg(p);
            gps.push(GpsFix::from_degrees(time, lat, lon).unwrap());
        }
        t += step;
    }
    gps
}

/// `WM-260105` (the date of `t`, UTC): the prefix of a day's log numbers.
fn log_prefix(t: i64) -> String {
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = t.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("WM-{:02}{m:02}{d:02}", y % 100)
}

/// The segments of officer `k`'s shift on `day` (none on a rest day), in start order, all
/// starting at or after the shift's start.
fn shift_segments(f: &Force, k: usize, day: usize) -> Vec<SegmentMeta> {
    let o = &f.officers[k];
    let st = &f.stations[o.station];
    let mut r = Rnd::new(&[1, day as u64, k as u64]);
    let Some((start, len)) = shift_time(o, day, &mut r) else {
        return Vec::new();
    };
    let end = start + len;
    let mut dev = &f.devices[st.devices[r.int(st.devices.len())]];
    let swap = r.coin(0.05).then(|| start + len / 2);
    let hour = (start - T0_US).rem_euclid(DAY) / HOUR;
    let night = hour >= 20;
    let weekend_night = night && matches!(day % 7, 4 | 5);
    let mean = match o.role {
        Role::Response => {
            3.0 * if night { 1.25 } else { 1.0 } * if weekend_night { 1.3 } else { 1.0 }
        }
        Role::Neighbourhood => 1.4,
        Role::Roads => 2.6,
    } * o.habit;
    let jobs = r.poisson(mean).min(14);
    let mut times: Vec<i64> = (0..jobs)
        .map(|_| start + 20 * MIN + (r.f() * (len - 40 * MIN) as f64) as i64)
        .collect();
    times.sort_unstable();
    let mut mv = Mover {
        pos: st.home,
        anchor: st.home,
        heading: 0.0,
        speed: 0.0,
        target: 0.0,
        pause_s: 0.0,
        road: 0,
        along: 0.0,
        dir: 1.0,
    };
    let mut out = Vec::new();
    let mut free = start + 15 * MIN;
    for jt in times {
        let mut t = jt.max(free + (r.between(60.0, 600.0) * SEC as f64) as i64);
        if t > end - 5 * MIN {
            break;
        }
        let kind = match o.role {
            Role::Response => [JobKind::Domestic, JobKind::Incident][usize::from(!r.coin(0.15))],
            Role::Neighbourhood => {
                let x = r.f();
                if x < 0.55 {
                    JobKind::Patrol
                } else if x < 0.9 {
                    JobKind::Incident
                } else {
                    JobKind::Domestic
                }
            }
            Role::Roads => {
                let x = r.f();
                if x < 0.5 {
                    JobKind::TrafficStop
                } else if x < 0.85 {
                    JobKind::RoadPatrol
                } else {
                    JobKind::Collision
                }
            }
        };
        // The place.
        let place = if matches!(
            kind,
            JobKind::TrafficStop | JobKind::RoadPatrol | JobKind::Collision
        ) {
            mv.road = st.roads[r.int(st.roads.len())];
            let road = &f.roads[mv.road];
            // Somewhere on the road within 15 km of the station if possible.
            let mut along = r.f() * road.length();
            for _ in 0..10 {
                if dist(road.at(along).0, st.home) < 15_000.0 {
                    break;
                }
                along = r.f() * road.length();
            }
            mv.along = along;
            mv.dir = if r.coin(0.5) { 1.0 } else { -1.0 };
            road.at(along).0
        } else if kind == JobKind::Patrol {
            let h = st.hotspots[if r.coin(0.7) {
                0
            } else {
                r.int(st.hotspots.len())
            }];
            (h.0 + r.normal() * 300.0, h.1 + r.normal() * 300.0)
        } else if r.coin(if o.role == Role::Neighbourhood {
            0.85
        } else {
            0.55
        }) {
            let h = st.hotspots[r.int(st.hotspots.len())];
            (h.0 + r.normal() * 350.0, h.1 + r.normal() * 350.0)
        } else {
            r.disc(st.home, st.patch_m)
        };
        // The job's labels.
        let roads_job = o.role == Role::Roads;
        let category = match kind {
            JobKind::Domestic => Some("domestic-abuse"),
            JobKind::Collision => Some("road-traffic-collision"),
            _ if r.coin(match o.role {
                Role::Response => 0.75,
                Role::Neighbourhood => 0.5,
                Role::Roads => 0.8,
            }) =>
            {
                Some(if roads_job {
                    ROADS_CATEGORIES[r.pick(&f.cum_roads_categories)]
                } else {
                    CATEGORIES[r.pick(&f.cum_categories)]
                })
            }
            _ => None,
        };
        let arrest = kind == JobKind::Incident && r.coin(0.08);
        let case_p = match (kind, o.role) {
            (JobKind::Domestic | JobKind::Collision, _) => 0.9,
            (_, Role::Response) => 0.45,
            (_, Role::Neighbourhood) => 0.15,
            (_, Role::Roads) => 0.35,
        };
        let mut cases = Vec::new();
        if r.coin(case_p) {
            cases.push(format!("{}-{:04}", log_prefix(t), 1 + r.int(9999)));
            if r.coin(0.1) {
                cases.push(format!("CRN-{:07}", r.int(10_000_000)));
            }
        }
        // The segments: the officer stops and starts again.
        let mut n = 1;
        while n < 8 && r.coin(o.restart) {
            n += 1;
        }
        if arrest && r.coin(0.6) {
            n += 1; // the last one in custody
        }
        mv.anchor = place;
        if !(kind == JobKind::Incident || kind == JobKind::Domestic) || r.coin(0.8) {
            mv.pos = place;
        }
        for s in 0..n {
            let act = if arrest && s == n - 1 && n > 1 {
                Act::Custody
            } else {
                match kind {
                    JobKind::Incident | JobKind::Domestic if s == 0 && mv.pos != place => {
                        Act::Drive
                    }
                    JobKind::Incident => [Act::Scene, Act::Indoor][usize::from(r.coin(0.1))],
                    JobKind::Domestic => [Act::Scene, Act::Indoor][usize::from(r.coin(0.55))],
                    JobKind::Patrol => [Act::Scene, Act::Patrol][usize::from(r.coin(0.8))],
                    JobKind::TrafficStop if s == 0 && r.coin(0.4) => Act::Road,
                    JobKind::RoadPatrol if r.coin(0.85) => Act::Road,
                    JobKind::Collision => Act::Collision,
                    _ => Act::Roadside,
                }
            };
            match act {
                Act::Custody => mv.pos = st.home,
                Act::Drive => mv.target = r.between(6.0, 15.0),
                Act::Patrol => {
                    mv.speed = r.between(1.2, 1.6);
                    mv.heading = st.grid + r.int(4) as f64 * FRAC_PI_2;
                }
                Act::Road => {
                    mv.target = if f.roads[mv.road].motorway {
                        r.between(24.0, 31.0)
                    } else {
                        r.between(13.0, 22.0)
                    };
                    mv.speed = mv.target * r.between(0.5, 1.0);
                }
                _ => {}
            }
            let dur = (duration_s(act, &mut r) * SEC as f64) as i64;
            if swap.is_some_and(|w| t >= w) {
                dev = &f.devices[st.devices[(k + day) % st.devices.len()]];
            }
            let gps = track(f, st, &mut mv, act, dev, t, t + dur, &mut r);
            let mut meta = SegmentMeta {
                officer: o.id.clone(),
                device: dev.id.clone(),
                start_us: t,
                end_us: t + dur,
                gps,
                ..SegmentMeta::default()
            };
            if let Some(c) = category {
                if r.coin(0.95) {
                    meta.categories.push(c.to_string());
                }
            }
            if arrest {
                meta.categories.push("arrest".to_string());
            }
            for c in &cases {
                if r.coin(0.9) {
                    meta.cases.push(c.clone());
                }
            }
            if r.coin(0.45) {
                meta.tags.push(TAGS[r.pick(&f.cum_tags)].to_string());
                while meta.tags.len() < 3 && r.coin(0.3) {
                    meta.tags.push(TAGS[r.pick(&f.cum_tags)].to_string());
                }
            }
            meta.normalize();
            out.push(meta);
            match act {
                Act::Drive => mv.pos = place,
                // A stop happens where the followed vehicle pulled over.
                Act::Road => mv.anchor = mv.pos,
                _ => {}
            }
            t += dur + (r.log_uniform(3.0, 240.0) * SEC as f64) as i64;
        }
        free = t;
    }
    out
}

/// The catalogue's first `n` segments, sorted by (start, officer, order in the shift), made a
/// day at a time: every shift starts after 05:30, so once a day's shifts are made, every
/// segment starting that day is known.
struct Catalogue {
    force: &'static Force,
    day: usize,
    ready: std::vec::IntoIter<SegmentMeta>,
    carry: Vec<((i64, usize, usize), SegmentMeta)>,
    left: usize,
}

impl Catalogue {
    fn new(n: usize) -> Catalogue {
        Catalogue {
            force: force(),
            day: 0,
            ready: Vec::new().into_iter(),
            carry: Vec::new(),
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
            if let Some(m) = self.ready.next() {
                self.left -= 1;
                return Some(m);
            }
            for k in 0..self.force.officers.len() {
                for (j, m) in shift_segments(self.force, k, self.day)
                    .into_iter()
                    .enumerate()
                {
                    self.carry.push(((m.start_us, k, j), m));
                }
            }
            self.carry.sort_unstable_by_key(|x| x.0);
            let bound = T0_US + (self.day as i64 + 1) * DAY;
            let split = self.carry.partition_point(|x| x.0 .0 < bound);
            let later = self.carry.split_off(split);
            let today = std::mem::replace(&mut self.carry, later);
            self.ready = today
                .into_iter()
                .map(|x| x.1)
                .collect::<Vec<_>>()
                .into_iter();
            self.day += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Queries

const KINDS: [(&str, &str); 7] = [
    (
        "a_officer_mix",
        "officer + 10 min / 1 h / 8 h / 24 h / 7 d / 30 d",
    ),
    (
        "b_officers_mix",
        "2-5 officers of one station + 10 min ... 30 d",
    ),
    ("c_window_mix", "every segment in 10 min / 1 h / 8 h / 24 h"),
    ("d_near_mix", "within 25 m-2 km (7 radii) + 10 min ... 30 d"),
    ("e_bbox_mix", "250 m-5 km box + 1 h / 8 h / 24 h / 7 d"),
    (
        "f_wide_short",
        "force area or an LPA box + 5 min / 15 min / 1 h",
    ),
    ("g_label_mix", "tag, category or case id + 10 min ... 30 d"),
];

/// The window mix of kinds a, b, d and g.
const WINDOWS: [i64; 6] = [10 * MIN, HOUR, 8 * HOUR, DAY, 7 * DAY, 30 * DAY];
const RADII_M: [f64; 7] = [25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0];
const BOX_SIDES_M: [f64; 5] = [250.0, 500.0, 1000.0, 2000.0, 5000.0];

fn bbox(b: (f64, f64, f64, f64)) -> Area {
    Area::BBox {
        min_lat: b.0,
        min_lon: b.1,
        max_lat: b.2,
        max_lon: b.3,
    }
}

/// Instance `i` of kind `kind`: windows, radii and sizes cycle with `i` (every combination
/// once per cycle); places and times come from the probes.
fn make_queries(c: &Census, kind: usize, n: usize) -> Vec<Q> {
    let f = force();
    let mut r = Rnd::new(&[0x9E7, kind as u64]);
    let all: Vec<&Probe> = c.probes.iter().collect();
    let with_fix: Vec<&Probe> = all.iter().copied().filter(|p| p.fix.is_some()).collect();
    let tagged: Vec<&Probe> = all.iter().copied().filter(|p| p.tag.is_some()).collect();
    let categorised: Vec<&Probe> = all
        .iter()
        .copied()
        .filter(|p| p.category.is_some())
        .collect();
    let cased: Vec<&Probe> = all.iter().copied().filter(|p| p.case.is_some()).collect();
    let pick = |r: &mut Rnd, v: &[&Probe]| -> Probe { v[r.int(v.len())].clone() };
    let around = |r: &mut Rnd, t: i64, span: i64| {
        let lo = t - (r.f() * span as f64) as i64;
        Q::window(lo, lo + span)
    };
    (0..n)
        .map(|i| {
            let w = WINDOWS[i % WINDOWS.len()];
            match kind {
                0 => {
                    let p = pick(&mut r, &all);
                    Q {
                        officers: vec![p.officer],
                        ..around(&mut r, p.start, w)
                    }
                }
                1 => {
                    let p = pick(&mut r, &all);
                    let mut peers = f.peers(f.by_id[&p.officer]);
                    // Mostly the same team (who attend together); the rest of the list after.
                    let want = (1 + i % 4).min(peers.len());
                    let mut officers = vec![p.officer.clone()];
                    for _ in 0..want {
                        let j = r.int(peers.len().min(8));
                        officers.push(f.officers[peers.remove(j)].id.clone());
                    }
                    Q {
                        officers,
                        ..around(&mut r, p.start, w)
                    }
                }
                2 => {
                    let p = pick(&mut r, &all);
                    around(&mut r, p.start, [10 * MIN, HOUR, 8 * HOUR, DAY][i % 4])
                }
                3 => {
                    let fix = pick(&mut r, &with_fix).fix.unwrap();
                    let radius_m = RADII_M[(i / WINDOWS.len()) % RADII_M.len()];
                    let at = to_xy(fix.lat(), fix.lon());
                    let (lat, lon) = to_deg(r.disc(at, 0.7 * radius_m));
                    Q {
                        area: Some(Area::Near { lat, lon, radius_m }),
                        ..around(&mut r, fix.time_us, w)
                    }
                }
                4 => {
                    let fix = pick(&mut r, &with_fix).fix.unwrap();
                    let side = BOX_SIDES_M[(i / 4) % BOX_SIDES_M.len()];
                    let at = r.disc(to_xy(fix.lat(), fix.lon()), side / 3.0);
                    let (a, b) = to_deg((at.0 - side / 2.0, at.1 - side / 2.0));
                    let (c2, d2) = to_deg((at.0 + side / 2.0, at.1 + side / 2.0));
                    let span = [HOUR, 8 * HOUR, DAY, 7 * DAY][i % 4];
                    Q {
                        area: Some(bbox((a, b, c2, d2))),
                        ..around(&mut r, fix.time_us, span)
                    }
                }
                5 => {
                    let fix = pick(&mut r, &with_fix).fix.unwrap();
                    let span = [5 * MIN, 15 * MIN, HOUR][i % 3];
                    let (lat, lon) = (fix.lat(), fix.lon());
                    let lpa = LPAS
                        .iter()
                        .find(|b| b.0 <= lat && lat <= b.2 && b.1 <= lon && lon <= b.3);
                    let area = match lpa {
                        Some(b) if (i / 3) % 2 == 1 => *b,
                        _ => FORCE_BOX,
                    };
                    Q {
                        area: Some(bbox(area)),
                        ..around(&mut r, fix.time_us, span)
                    }
                }
                _ => {
                    let x = i % 20;
                    let p = if x < 9 {
                        pick(&mut r, &tagged)
                    } else if x < 16 {
                        pick(&mut r, &categorised)
                    } else {
                        pick(&mut r, &cased)
                    };
                    let mut q = around(&mut r, p.start, w);
                    if x < 9 {
                        q.tag = p.tag;
                    } else if x < 16 {
                        q.category = p.category;
                    } else {
                        q.case = p.case;
                    }
                    q
                }
            }
        })
        .collect()
}

fn main() {
    harness::run(&harness::Spec {
        name: "index_force",
        fixtures: "force-n",
        default_segments: 300_000,
        officers: OFFICERS,
        segments: |n| Box::new(Catalogue::new(n)),
        probe_seed: SEED ^ 0x00CE_4505,
        kinds: &KINDS,
        make_queries,
    });
}
