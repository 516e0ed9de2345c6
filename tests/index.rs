//! The index against a brute-force evaluator: random stores (tracks at the poles, across the
//! antimeridian, on the equator, with dropouts) and random queries, before and after reopen,
//! crash recovery and paging.

mod common;

use common::copy_dir;
use footage::{GpsFix, Query, SegmentMeta, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// The distance as the specification states it, written out independently of the library.
fn spec_distance(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let r = 6_371_008.8_f64;
    let p1 = lat1.to_radians();
    let p2 = lat2.to_radians();
    let s1 = ((p2 - p1) / 2.0).sin();
    let s2 = ((lon2 - lon1).to_radians() / 2.0).sin();
    let a = s1 * s1 + p1.cos() * p2.cos() * s2 * s2;
    2.0 * r * a.sqrt().min(1.0).asin()
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Near(f64, f64, f64),
    BBox(f64, f64, f64, f64),
}

fn in_shape(s: Shape, f: &GpsFix) -> bool {
    let (lat, lon) = (f.lat_e7 as f64 / 1e7, f.lon_e7 as f64 / 1e7);
    match s {
        Shape::Near(plat, plon, r) => spec_distance(plat, plon, lat, lon) <= r,
        Shape::BBox(a, b, c, d) => {
            a <= lat
                && lat <= c
                && if b <= d {
                    b <= lon && lon <= d
                } else {
                    lon >= b || lon <= d
                }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Q {
    officers: Vec<String>,
    devices: Vec<String>,
    from: Option<i64>,
    to: Option<i64>,
    shape: Option<Shape>,
    tag: Option<String>,
    case: Option<String>,
    category: Option<String>,
}

fn to_query(q: &Q) -> Query {
    let mut out = Query::new();
    for o in &q.officers {
        out = out.officer(o.clone());
    }
    for d in &q.devices {
        out = out.device(d.clone());
    }
    if let Some(f) = q.from {
        out = out.from(f);
    }
    if let Some(t) = q.to {
        out = out.to(t);
    }
    match q.shape {
        Some(Shape::Near(a, b, r)) => out = out.near(a, b, r),
        Some(Shape::BBox(a, b, c, d)) => out = out.bbox(a, b, c, d),
        None => {}
    }
    out.tag = q.tag.clone();
    out.case = q.case.clone();
    out.category = q.category.clone();
    out
}

/// (id, start, hits) of one match.
type Match = (u64, i64, Vec<(i64, i64)>);

/// Every match, sorted by (start, id).
fn brute(segs: &[(u64, SegmentMeta)], q: &Q) -> Vec<Match> {
    let lo = q.from.unwrap_or(i64::MIN);
    let hi = q.to.unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for (id, m) in segs {
        if !(m.start_us <= hi && m.end_us >= lo) {
            continue;
        }
        if !q.officers.is_empty() && !q.officers.contains(&m.officer) {
            continue;
        }
        if !q.devices.is_empty() && !q.devices.contains(&m.device) {
            continue;
        }
        if q.tag.as_ref().is_some_and(|t| !m.tags.contains(t))
            || q.case.as_ref().is_some_and(|t| !m.cases.contains(t))
            || q.category
                .as_ref()
                .is_some_and(|t| !m.categories.contains(t))
        {
            continue;
        }
        let mut hits: Vec<(i64, i64)> = Vec::new();
        if let Some(s) = q.shape {
            let mut prev = false;
            for f in &m.gps {
                let ok = lo <= f.time_us && f.time_us <= hi && in_shape(s, f);
                if ok && prev {
                    hits.last_mut().unwrap().1 = f.time_us;
                } else if ok {
                    hits.push((f.time_us, f.time_us));
                }
                prev = ok;
            }
            if hits.is_empty() {
                continue;
            }
            // The documented merge rule: runs less than the hit gap apart are one interval;
            // then only the first MAX_HITS_PER_SEGMENT are listed.
            let mut merged: Vec<(i64, i64)> = Vec::new();
            for h in hits {
                match merged.last_mut() {
                    Some(last) if h.0 - last.1 < footage::DEFAULT_HIT_GAP_US => last.1 = h.1,
                    _ => merged.push(h),
                }
            }
            merged.truncate(footage::MAX_HITS_PER_SEGMENT);
            hits = merged;
        }
        out.push((*id, m.start_us, hits));
    }
    out.sort_by_key(|r| (r.1, r.0));
    out
}

const T0: i64 = 1_763_600_000_000_000;
const HOTSPOTS: [(f64, f64); 6] = [
    (51.5080, -0.1247), // a London station
    (89.995, 0.0),      // the north pole
    (-89.99, 45.0),     // the south pole
    (10.0, 179.998),    // the antimeridian
    (0.0, 0.0),         // the equator and the prime meridian
    (-33.86, 151.21),   // Sydney
];

fn wrap_lon(mut lon: f64) -> f64 {
    while lon > 180.0 {
        lon -= 360.0;
    }
    while lon < -180.0 {
        lon += 360.0;
    }
    lon
}

fn random_meta(rng: &mut StdRng, i: usize) -> SegmentMeta {
    let (clat, clon) = HOTSPOTS[rng.random_range(0..HOTSPOTS.len())];
    let start = T0 + rng.random_range(0..3 * 86_400) * 1_000_000;
    let secs = rng.random_range(0..2400);
    let step = if rng.random_bool(0.5) {
        0.00006
    } else {
        0.0005
    };
    let (mut lat, mut lon) = (
        clat + rng.random_range(-0.02..0.02),
        wrap_lon(clon + rng.random_range(-0.02..0.02)),
    );
    let mut gps = Vec::new();
    let mut t = start - rng.random_range(0..20) * 1_000_000;
    while t <= start + secs * 1_000_000 && rng.random_bool(0.995) {
        if rng.random_bool(0.03) {
            t += rng.random_range(60..600) * 1_000_000; // a dropout
        }
        lat = (lat + rng.random_range(-step..step)).clamp(-90.0, 90.0);
        lon = wrap_lon(lon + rng.random_range(-step..step));
        gps.push(GpsFix::from_degrees(t, lat, lon).unwrap());
        t += 5_000_000;
    }
    if rng.random_bool(0.1) {
        gps.clear();
    }
    let pick = |rng: &mut StdRng, pre: &str, n: usize| -> Vec<String> {
        (0..rng.random_range(0..3))
            .map(|_| format!("{pre}{}", rng.random_range(0..n)))
            .collect()
    };
    let mut m = SegmentMeta {
        officer: format!("MET-{:03}", rng.random_range(0..12)),
        device: format!("AX-{:02}", rng.random_range(0..8)),
        start_us: start,
        end_us: start + secs * 1_000_000,
        gps,
        cases: pick(rng, "CASE-", 4),
        tags: pick(rng, "tag", 5),
        categories: pick(rng, "cat", 3),
    };
    m.normalize();
    let _ = i;
    m
}

fn random_query(rng: &mut StdRng, segs: &[(u64, SegmentMeta)]) -> Q {
    let mut q = Q::default();
    if rng.random_bool(0.3) {
        for _ in 0..rng.random_range(1..3) {
            q.officers
                .push(format!("MET-{:03}", rng.random_range(0..13)));
        }
    }
    if rng.random_bool(0.15) {
        q.devices.push(format!("AX-{:02}", rng.random_range(0..8)));
    }
    if rng.random_bool(0.7) {
        let f = T0 + rng.random_range(-3_600..3 * 86_400) * 1_000_000;
        let len = [0, 60, 3_600, 7_200, 86_400][rng.random_range(0..5)] * 1_000_000;
        if rng.random_bool(0.8) {
            q.from = Some(f);
        }
        if rng.random_bool(0.8) {
            q.to = Some(f + len);
        }
    }
    if rng.random_bool(0.7) {
        let (lat, lon) = match segs.get(rng.random_range(0..segs.len().max(1))) {
            Some((_, m)) if !m.gps.is_empty() && rng.random_bool(0.6) => {
                let f = m.gps[rng.random_range(0..m.gps.len())];
                (f.lat_e7 as f64 / 1e7, f.lon_e7 as f64 / 1e7)
            }
            _ => HOTSPOTS[rng.random_range(0..HOTSPOTS.len())],
        };
        if rng.random_bool(0.7) {
            let r = 10f64.powf(rng.random_range(0.0..4.7));
            // Sometimes a radius that puts a fix exactly on the circle.
            let r = match segs.get(rng.random_range(0..segs.len().max(1))) {
                Some((_, m)) if !m.gps.is_empty() && rng.random_bool(0.2) => {
                    let f = m.gps[rng.random_range(0..m.gps.len())];
                    spec_distance(lat, lon, f.lat_e7 as f64 / 1e7, f.lon_e7 as f64 / 1e7)
                }
                _ => r,
            };
            q.shape = Some(Shape::Near(lat, lon, r));
        } else {
            let dlat = rng.random_range(0.0001..0.5);
            let dlon = rng.random_range(0.0001..0.5);
            let a = (lat - dlat).max(-90.0);
            let c = (lat + dlat).min(90.0);
            q.shape = Some(Shape::BBox(
                a,
                wrap_lon(lon - dlon),
                c,
                wrap_lon(lon + dlon),
            ));
        }
    }
    if rng.random_bool(0.15) {
        q.tag = Some(format!("tag{}", rng.random_range(0..6)));
    }
    if rng.random_bool(0.1) {
        q.case = Some(format!("CASE-{}", rng.random_range(0..4)));
    }
    if rng.random_bool(0.1) {
        q.category = Some(format!("cat{}", rng.random_range(0..3)));
    }
    q
}

fn options() -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 1 << 20,
        checkpoint_every: 70,
        ..StoreOptions::default()
    }
}

fn build(dir: &Path, seed: u64, n: usize) -> (Store, Vec<(u64, SegmentMeta)>) {
    let store = footage::testing::open_or_create_with(dir, &options()).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut segs = Vec::new();
    for i in 0..n {
        let m = random_meta(&mut rng, i);
        let c = store
            .ingest_bytes(m.clone(), format!("segment {i}").as_bytes())
            .unwrap();
        segs.push((c.id, m));
    }
    (store, segs)
}

fn check(store: &Store, segs: &[(u64, SegmentMeta)], seed: u64, queries: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut nonempty, mut with_hits) = (0, 0);
    let mut plans = std::collections::BTreeMap::new();
    for n in 0..queries {
        let q = random_query(&mut rng, segs);
        let want = brute(segs, &q);
        let limit = rng.random_range(1..8);
        let query = to_query(&q).limit(limit);
        let mut got = Vec::new();
        for r in store.find_all(&query) {
            let r = r.unwrap();
            got.push((
                r.id,
                r.start_us,
                r.hits
                    .iter()
                    .map(|h| (h.from_us, h.to_us))
                    .collect::<Vec<_>>(),
            ));
        }
        assert_eq!(got, want, "query {n}: {q:?}");
        nonempty += usize::from(!want.is_empty());
        with_hits += usize::from(want.iter().any(|w| !w.2.is_empty()));
        *plans
            .entry(store.find(&to_query(&q)).unwrap().plan)
            .or_insert(0) += 1;
    }
    // The random queries must exercise real matches and every index, or this test proves little.
    assert!(
        nonempty * 3 > queries,
        "only {nonempty} of {queries} queries matched"
    );
    assert!(with_hits * 5 > queries, "only {with_hits} queries had hits");
    eprintln!("plans used: {plans:?}");
    assert!(plans.len() >= 4, "{plans:?}");
}

#[test]
fn queries_match_brute_force_before_and_after_reopen_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (store, segs) = build(&dir.path().join("s"), 1, 400);
    check(&store, &segs, 100, 1500);
    // Crash: a copy of the open store (no final checkpoint, partly replayed).
    copy_dir(&dir.path().join("s"), &dir.path().join("crash"));
    let crashed =
        footage::testing::open_or_create_with(dir.path().join("crash"), &options()).unwrap();
    check(&crashed, &segs, 101, 400);
    drop(crashed);
    store.close().unwrap();
    let store = footage::testing::open_or_create_with(dir.path().join("s"), &options()).unwrap();
    assert!(store.open_report().checkpoint.is_some());
    assert_eq!(store.open_report().replayed, 0);
    check(&store, &segs, 102, 400);
    // A lost track file is rebuilt from the log.
    drop(store);
    std::fs::remove_file(dir.path().join("s/catalog/tracks.ftt")).unwrap();
    let store = footage::testing::open_or_create_with(dir.path().join("s"), &options()).unwrap();
    assert_eq!(store.open_report().replayed, segs.len());
    check(&store, &segs, 103, 300);
    for (id, m) in segs.iter().take(50) {
        assert_eq!(store.track(*id).unwrap(), m.gps);
    }
}

#[test]
fn bad_queries_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = footage::testing::open_or_create_with(dir.path(), &options()).unwrap();
    for (q, want) in [
        (Query::new().near(91.0, 0.0, 10.0), "latitude"),
        (Query::new().near(0.0, 181.0, 10.0), "longitude"),
        (Query::new().near(0.0, 0.0, -1.0), "radius"),
        (Query::new().near(0.0, 0.0, f64::NAN), "radius"),
        (Query::new().from(10).to(5), "after"),
        (Query::new().bbox(2.0, 0.0, 1.0, 1.0), "box"),
        (Query::new().limit(0), "limit"),
        (Query::new().after("garbage"), "cursor"),
    ] {
        let e = store.find(&q).unwrap_err().to_string();
        assert!(e.contains(want), "{q:?}: {e}");
    }
}
