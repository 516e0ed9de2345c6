//! The county force of benches/index_force.rs (issue 15's second catalogue): 40 West Midlands
//! stations (position, kind, weight), 10 roads, 4,000 officers with roles, teams and habits,
//! station camera pools of three models (fix every 1, 2 or 5 s), label vocabularies with Zipf
//! weights, and the bench's random streams ([`Rnd`], seeded from [`SEED`]). Built once
//! ([`force`]); the same every run. Positions are metres on a local plane around central
//! Birmingham ([`to_xy`], [`to_deg`]).
//!
//! Included only by benches/index_force.rs (`#[path = "common/force_model.rs"] mod force;`).

use std::collections::HashMap;
use std::f64::consts::{FRAC_PI_2, TAU};
use std::sync::OnceLock;

use crate::common::Rng;
use crate::harness::SEC;

/// The seed of every random stream of the force bench.
pub const SEED: u64 = 0xF0CE_2026_15B0_D1E5;
pub const OFFICERS: usize = 4000;

/// The local plane: metres east (x) and north (y) of central Birmingham.
const LAT0: f64 = 52.48;
const LON0: f64 = -1.89;
const M_PER_DEG_LAT: f64 = 111_250.0;

fn m_per_deg_lon() -> f64 {
    M_PER_DEG_LAT * LAT0.to_radians().cos()
}

pub fn to_xy(lat: f64, lon: f64) -> (f64, f64) {
    ((lon - LON0) * m_per_deg_lon(), (lat - LAT0) * M_PER_DEG_LAT)
}

pub fn to_deg(p: (f64, f64)) -> (f64, f64) {
    (LAT0 + p.1 / M_PER_DEG_LAT, LON0 + p.0 / m_per_deg_lon())
}

pub fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Core,
    Town,
    Rural,
    Roads,
}

/// Name, latitude, longitude, kind, weight (officers).
pub const STATIONS: [(&str, f64, f64, Kind, f64); 40] = [
    ("Birmingham Central", 52.4843, -1.8953, Kind::Core, 2.0),
    ("Digbeth", 52.4755, -1.8853, Kind::Core, 1.2),
    ("Ladywood", 52.4800, -1.9200, Kind::Core, 1.0),
    ("Handsworth", 52.5085, -1.9290, Kind::Core, 1.0),
    ("Aston", 52.4990, -1.8800, Kind::Core, 1.0),
    ("Erdington", 52.5240, -1.8380, Kind::Core, 1.0),
    ("Stechford", 52.4830, -1.8100, Kind::Core, 0.9),
    ("Sparkhill", 52.4560, -1.8600, Kind::Core, 1.0),
    ("Kings Heath", 52.4350, -1.8930, Kind::Core, 0.9),
    ("Northfield", 52.4140, -1.9680, Kind::Core, 0.9),
    ("Harborne", 52.4590, -1.9520, Kind::Core, 0.7),
    ("Acocks Green", 52.4480, -1.8200, Kind::Core, 0.8),
    ("Sutton Coldfield", 52.5640, -1.8230, Kind::Core, 0.9),
    ("Solihull", 52.4130, -1.7780, Kind::Core, 1.0),
    ("Chelmsley Wood", 52.4800, -1.7370, Kind::Core, 0.8),
    ("West Bromwich", 52.5180, -1.9950, Kind::Core, 1.1),
    ("Smethwick", 52.4930, -1.9680, Kind::Core, 0.8),
    ("Oldbury", 52.5050, -2.0160, Kind::Core, 0.8),
    ("Dudley", 52.5120, -2.0810, Kind::Core, 1.1),
    ("Brierley Hill", 52.4810, -2.1200, Kind::Core, 0.8),
    ("Halesowen", 52.4490, -2.0500, Kind::Core, 0.7),
    ("Walsall", 52.5860, -1.9820, Kind::Core, 1.2),
    ("Bloxwich", 52.6180, -2.0040, Kind::Core, 0.6),
    ("Wolverhampton", 52.5860, -2.1280, Kind::Core, 1.5),
    ("Bilston", 52.5660, -2.0730, Kind::Core, 0.7),
    ("Coventry Central", 52.4080, -1.5100, Kind::Core, 1.6),
    ("Coventry Willenhall", 52.3870, -1.4700, Kind::Core, 0.8),
    ("Coventry Foleshill", 52.4300, -1.5000, Kind::Core, 0.8),
    ("Stourbridge", 52.4560, -2.1480, Kind::Town, 0.7),
    ("Lichfield", 52.6820, -1.8270, Kind::Town, 0.6),
    ("Tamworth", 52.6340, -1.6950, Kind::Town, 0.6),
    ("Kidderminster", 52.3880, -2.2500, Kind::Town, 0.6),
    ("Bromsgrove", 52.3350, -2.0610, Kind::Town, 0.5),
    ("Redditch", 52.3070, -1.9400, Kind::Town, 0.6),
    ("Nuneaton", 52.5230, -1.4680, Kind::Town, 0.6),
    ("Coleshill", 52.4980, -1.7060, Kind::Rural, 0.3),
    ("Meriden", 52.4370, -1.6460, Kind::Rural, 0.25),
    ("Codsall", 52.6280, -2.1930, Kind::Rural, 0.25),
    (
        "Perry Barr traffic base",
        52.5350,
        -1.9000,
        Kind::Roads,
        1.0,
    ),
    ("Ryton traffic base", 52.3730, -1.4310, Kind::Roads, 0.9),
];

/// Roads (lat, lon polylines); the first four are motorways.
pub const ROADS: [&[(f64, f64)]; 10] = [
    // M6
    &[
        (52.4510, -1.3900),
        (52.4700, -1.5200),
        (52.4950, -1.6900),
        (52.5100, -1.8300),
        (52.5150, -1.8700),
        (52.5370, -1.9400),
        (52.5800, -2.0000),
        (52.6150, -2.0500),
        (52.6700, -2.0900),
    ],
    // M5
    &[
        (52.5300, -1.9850),
        (52.4950, -2.0300),
        (52.4500, -2.0200),
        (52.4000, -2.0300),
        (52.3600, -2.0700),
        (52.2900, -2.1300),
    ],
    // M42
    &[
        (52.3300, -1.9600),
        (52.3700, -1.8600),
        (52.4100, -1.7800),
        (52.4600, -1.7200),
        (52.5100, -1.7000),
        (52.5700, -1.6600),
        (52.6400, -1.6000),
    ],
    // M54
    &[(52.6100, -2.0700), (52.6300, -2.1500), (52.6600, -2.2700)],
    // A45
    &[
        (52.4700, -1.8700),
        (52.4550, -1.7800),
        (52.4350, -1.6800),
        (52.4100, -1.5900),
        (52.3850, -1.4500),
    ],
    // A38
    &[
        (52.4800, -1.8900),
        (52.5150, -1.8650),
        (52.5600, -1.8300),
        (52.6200, -1.8000),
        (52.6900, -1.8000),
    ],
    // A449
    &[
        (52.5900, -2.1300),
        (52.5300, -2.1750),
        (52.4600, -2.2000),
        (52.3900, -2.2500),
    ],
    // A46
    &[
        (52.3300, -1.5800),
        (52.3700, -1.5400),
        (52.4200, -1.4300),
        (52.4900, -1.4000),
        (52.5300, -1.4500),
    ],
    // A41
    &[
        (52.4800, -1.8950),
        (52.5100, -1.9700),
        (52.5500, -2.0400),
        (52.5860, -2.1280),
    ],
    // A34
    &[
        (52.4800, -1.8950),
        (52.5300, -1.9300),
        (52.5860, -1.9820),
        (52.6500, -2.0300),
    ],
];
const MOTORWAYS: usize = 4;

/// (min_lat, min_lon, max_lat, max_lon): the force area, then local policing areas.
pub const FORCE_BOX: (f64, f64, f64, f64) = (52.20, -2.50, 52.80, -1.20);
pub const LPAS: [(f64, f64, f64, f64); 4] = [
    (52.38, -2.03, 52.61, -1.72), // Birmingham
    (52.42, -2.21, 52.64, -1.95), // Black Country
    (52.34, -1.62, 52.56, -1.38), // Coventry and north Warwickshire
    (52.36, -1.84, 52.52, -1.62), // Solihull
];

/// Camera models: name, seconds between fixes, share of segments without GPS.
pub const MODELS: [(&str, i64, f64); 3] = [("AX3", 1, 0.005), ("VB4", 2, 0.01), ("D5", 5, 0.03)];

pub const CATEGORIES: [&str; 18] = [
    "asb",
    "stop-search",
    "shoplifting",
    "public-order",
    "violence-with-injury",
    "mental-health",
    "arrest",
    "concern-for-welfare",
    "domestic-abuse",
    "burglary",
    "criminal-damage",
    "vehicle-crime",
    "drugs",
    "missing-person",
    "hate-crime",
    "sexual-offence",
    "sudden-death",
    "firearms-incident",
];
pub const ROADS_CATEGORIES: [&str; 8] = [
    "traffic-offence",
    "road-traffic-collision",
    "drink-drive",
    "no-insurance",
    "speeding",
    "pursuit",
    "vehicle-seizure",
    "arrest",
];
pub const TAGS: [&str; 26] = [
    "evidential",
    "nfa",
    "victim-account",
    "witness-account",
    "first-account",
    "handcuffs",
    "use-of-force",
    "juvenile",
    "vulnerable",
    "pava",
    "taser-drawn",
    "injury",
    "complaint",
    "interpreter",
    "spit-guard",
    "baton",
    "taser-fired",
    "knife",
    "dog-unit",
    "anpr-hit",
    "drone",
    "firearm-seen",
    "search-warrant",
    "s136",
    "s165-seizure",
    "courts",
];

// ---------------------------------------------------------------------------------------------
// Random numbers (this bench's own streams: SEED, then the parts that name a stream)

pub struct Rnd(Rng);

impl Rnd {
    pub fn new(parts: &[u64]) -> Rnd {
        let mut h = SEED;
        for &p in parts {
            h = Rng(h ^ p.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64();
        }
        Rnd(Rng(h))
    }
    pub fn f(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn between(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f()
    }
    pub fn coin(&mut self, p: f64) -> bool {
        self.f() < p
    }
    pub fn int(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.f();
        (-2.0 * u.ln()).sqrt() * (TAU * self.f()).cos()
    }
    pub fn log_uniform(&mut self, a: f64, b: f64) -> f64 {
        a * (b / a).powf(self.f())
    }
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
    pub fn poisson(&mut self, mean: f64) -> usize {
        let limit = (-mean).exp();
        let (mut k, mut p) = (0, self.f());
        while p > limit {
            k += 1;
            p *= self.f();
        }
        k
    }
    /// An index drawn by cumulative weights.
    pub fn pick(&mut self, cum: &[f64]) -> usize {
        let x = self.f() * cum[cum.len() - 1];
        cum.partition_point(|&c| c <= x).min(cum.len() - 1)
    }
    /// A point within `r` metres of `c`, uniform over the disc.
    pub fn disc(&mut self, c: (f64, f64), r: f64) -> (f64, f64) {
        let d = r * self.f().sqrt();
        let b = self.between(0.0, TAU);
        (c.0 + d * b.cos(), c.1 + d * b.sin())
    }
}

/// Cumulative Zipf weights (1 / rank^s) of `n` items.
fn zipf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (1..=n)
        .map(|i| {
            acc += 1.0 / (i as f64).powf(s);
            acc
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The force: stations, officers, cameras, roads (fixed for every run)

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Response,
    Neighbourhood,
    Roads,
}

pub struct Station {
    pub home: (f64, f64),
    pub patch_m: f64,
    pub hotspots: Vec<(f64, f64)>,
    /// Street-grid orientation (radians).
    pub grid: f64,
    pub devices: Vec<usize>,
    pub officers: Vec<usize>,
    /// Roads within 12 km (all roads if none).
    pub roads: Vec<usize>,
}

pub struct Officer {
    pub id: String,
    pub station: usize,
    pub role: Role,
    pub team: usize,
    pub habit: f64,
    pub restart: f64,
}

pub struct Device {
    pub id: String,
    pub fix_us: i64,
    pub no_gps: f64,
}

pub struct Road {
    pub pts: Vec<(f64, f64)>,
    /// Distance along the road at each point.
    pub cum: Vec<f64>,
    pub motorway: bool,
}

impl Road {
    pub fn length(&self) -> f64 {
        self.cum[self.cum.len() - 1]
    }
    /// The point `s` metres along, and the direction there.
    pub fn at(&self, s: f64) -> ((f64, f64), f64) {
        let s = s.clamp(0.0, self.length());
        let i = self
            .cum
            .partition_point(|&c| c <= s)
            .clamp(1, self.pts.len() - 1);
        let (a, b) = (self.pts[i - 1], self.pts[i]);
        let seg = (self.cum[i] - self.cum[i - 1]).max(1e-9);
        let u = (s - self.cum[i - 1]) / seg;
        (
            (a.0 + (b.0 - a.0) * u, a.1 + (b.1 - a.1) * u),
            (b.1 - a.1).atan2(b.0 - a.0),
        )
    }
}

pub struct Force {
    pub stations: Vec<Station>,
    pub officers: Vec<Officer>,
    pub devices: Vec<Device>,
    pub roads: Vec<Road>,
    pub by_id: HashMap<String, usize>,
    pub cum_categories: Vec<f64>,
    pub cum_roads_categories: Vec<f64>,
    pub cum_tags: Vec<f64>,
}

pub fn force() -> &'static Force {
    static FORCE: OnceLock<Force> = OnceLock::new();
    FORCE.get_or_init(Force::build)
}

impl Force {
    fn build() -> Force {
        let mut r = Rnd::new(&[0x000F_04CE]);
        let roads: Vec<Road> = ROADS
            .iter()
            .enumerate()
            .map(|(i, pts)| {
                let pts: Vec<(f64, f64)> = pts.iter().map(|&(a, b)| to_xy(a, b)).collect();
                let mut cum = vec![0.0];
                for w in pts.windows(2) {
                    cum.push(cum[cum.len() - 1] + dist(w[0], w[1]));
                }
                Road {
                    pts,
                    cum,
                    motorway: i < MOTORWAYS,
                }
            })
            .collect();
        let total_w: f64 = STATIONS.iter().map(|s| s.4).sum();
        let mut stations = Vec::new();
        let mut officers = Vec::new();
        let mut devices = Vec::new();
        for (si, &(_, lat, lon, kind, w)) in STATIONS.iter().enumerate() {
            let home = to_xy(lat, lon);
            let patch_m = match kind {
                Kind::Core => 3500.0,
                Kind::Town => 7000.0,
                Kind::Rural => 11_000.0,
                Kind::Roads => 15_000.0,
            };
            // The first hotspot is the centre (high street) near the station.
            let mut hotspots = vec![r.disc(home, 400.0)];
            for _ in 0..1 + r.int(3) {
                hotspots.push(r.disc(home, patch_m * 0.6));
            }
            // Officers: the last station takes the rounding.
            let count = if si + 1 == STATIONS.len() {
                OFFICERS - officers.len()
            } else {
                (OFFICERS as f64 * w / total_w).round() as usize
            };
            let (resp, nbh) = match kind {
                Kind::Core => (0.55, 0.40),
                Kind::Town => (0.45, 0.45),
                Kind::Rural => (0.40, 0.45),
                Kind::Roads => (0.0, 0.0),
            };
            let mut ids = Vec::new();
            for j in 0..count {
                let k = officers.len();
                let x = (j as f64 + 0.5) / count as f64;
                let role = if x < resp {
                    Role::Response
                } else if x < resp + nbh {
                    Role::Neighbourhood
                } else {
                    Role::Roads
                };
                officers.push(Officer {
                    // 6131 is prime to 10^5: distinct ids.
                    id: format!("WMP-{:05}", (20_011 + k * 6131) % 100_000),
                    station: si,
                    role,
                    team: if role == Role::Neighbourhood {
                        j % 7
                    } else {
                        j % 8
                    },
                    habit: r.lognormal(1.0, 0.5).clamp(0.2, 4.0),
                    restart: r.between(0.2, 0.65),
                });
                ids.push(k);
            }
            let mix = match kind {
                Kind::Core => [0.25, 0.60, 0.15],
                Kind::Town => [0.10, 0.40, 0.50],
                Kind::Rural => [0.0, 0.30, 0.70],
                Kind::Roads => [1.0, 0.0, 0.0],
            };
            let cum = [mix[0], mix[0] + mix[1], 1.0];
            let pool = (count as f64 * 0.65).ceil() as usize + 4;
            let mut devs = Vec::new();
            for d in 0..pool {
                let (model, fix_s, no_gps) = MODELS[r.pick(&cum)];
                devs.push(devices.len());
                devices.push(Device {
                    id: format!("{model}-{:02}{:04}", si + 10, (d * 389 + 17) % 10_000),
                    fix_us: fix_s * SEC,
                    no_gps,
                });
            }
            let near: Vec<usize> = (0..roads.len())
                .filter(|&i| road_dist(&roads[i], home) < 12_000.0)
                .collect();
            stations.push(Station {
                home,
                patch_m,
                hotspots,
                grid: r.between(0.0, FRAC_PI_2),
                devices: devs,
                officers: ids,
                roads: if near.is_empty() {
                    (0..roads.len()).collect()
                } else {
                    near
                },
            });
        }
        let by_id = officers
            .iter()
            .enumerate()
            .map(|(k, o)| (o.id.clone(), k))
            .collect();
        Force {
            stations,
            officers,
            devices,
            roads,
            by_id,
            cum_categories: zipf(CATEGORIES.len(), 1.1),
            cum_roads_categories: zipf(ROADS_CATEGORIES.len(), 1.0),
            cum_tags: zipf(TAGS.len(), 1.0),
        }
    }

    /// Officers of the same station, role and team as `k` (then of the same station and role),
    /// not `k` itself: who attends with them.
    pub fn peers(&self, k: usize) -> Vec<usize> {
        let o = &self.officers[k];
        let same = |x: &&usize| {
            let p = &self.officers[**x];
            **x != k && p.role == o.role
        };
        let st = &self.stations[o.station].officers;
        let mut v: Vec<usize> = st
            .iter()
            .filter(same)
            .filter(|&&x| self.officers[x].team == o.team)
            .copied()
            .collect();
        v.extend(
            st.iter()
                .filter(same)
                .filter(|&&x| self.officers[x].team != o.team),
        );
        v
    }
}

/// Distance (m) from `p` to the nearest point of the road (sampled every 250 m).
fn road_dist(road: &Road, p: (f64, f64)) -> f64 {
    let steps = (road.length() / 250.0).ceil() as usize;
    (0..=steps)
        .map(|i| dist(road.at(i as f64 * 250.0).0, p))
        .fold(f64::INFINITY, f64::min)
}
