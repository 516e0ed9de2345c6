//! Tests of `index::geo`: distances, covers, integer boxes and inner boxes against the
//! specified haversine.

use super::*;
use rand::{Rng, SeedableRng};

#[test]
fn haversine_matches_known_distances() {
    // One degree of latitude on this sphere.
    let d = haversine_m(0.0, 0.0, 1.0, 0.0);
    assert!((d - 111_195.08).abs() < 0.01, "{d}");
    assert_eq!(haversine_m(51.5, -0.12, 51.5, -0.12), 0.0);
    // Across the antimeridian.
    let d = haversine_m(0.0, 179.9, 0.0, -179.9);
    assert!((d - 22_239.0).abs() < 1.0, "{d}");
}

#[test]
fn every_position_in_the_inner_box_of_a_circle_matches_and_its_corners_are_near_the_edge() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let mut boxes = 0;
    for _ in 0..3000 {
        let lat: f64 = rng.random_range(-85.0..=85.0);
        let lon: f64 = rng.random_range(-180.0..=180.0);
        let radius_m = 10f64.powf(rng.random_range(-0.5..6.0));
        let area = Area::Near { lat, lon, radius_m };
        let Some(((a, b), (c, d))) = area.inner_e7() else {
            continue;
        };
        boxes += 1;
        assert_eq!(area.e7_box().inner, ((a, b), (c, d)));
        let corners = [(a, c), (a, d), (b, c), (b, d)];
        let mut far = 0.0f64;
        for (la, lo) in corners.into_iter().chain((0..40).map(|_| {
            (rng.random_range(a..=b), rng.random_range(c..=d))
        })) {
            let fix = GpsFix {
                time_us: 0,
                lat_e7: la,
                lon_e7: lo,
            };
            assert!(area.contains(&fix), "{area:?}: {fix:?} in the inner box");
            far = far.max(haversine_m(lat, lon, fix.lat(), fix.lon()));
        }
        // Not a box too small to matter: its corners reach the circle (to the 1e-7° grid).
        if radius_m > 50.0 {
            assert!(far > radius_m * 0.99, "{area:?}: corners at {far} m");
        }
    }
    assert!(boxes > 2500, "{boxes}");
    // No box where the proof does not hold or cannot help.
    for (lat, lon, r) in [(89.0, 0.0, 100.0), (0.0, 179.99999, 100.0), (0.0, 0.0, 1e6)] {
        let area = Area::Near {
            lat,
            lon,
            radius_m: r,
        };
        assert!(area.inner_e7().is_none(), "{area:?}");
    }
}

#[test]
fn the_inner_box_of_a_box_holds_only_matching_positions_and_reaches_its_edges() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    for _ in 0..3000 {
        let (la, lb) = (rng.random_range(-90.0..=90.0), rng.random_range(-90.0..=90.0));
        let (oa, ob) = (
            rng.random_range(-180.0..=180.0),
            rng.random_range(-180.0..=180.0),
        );
        let area = Area::BBox {
            min_lat: f64::min(la, lb),
            min_lon: f64::min(oa, ob),
            max_lat: f64::max(la, lb),
            max_lon: f64::max(oa, ob),
        };
        let ((a, b), (c, d)) = area.inner_e7().unwrap();
        let pre = area.e7_box();
        // Just inside the inner box matches; just outside it may or may not.
        for (la, lo) in [(a, c), (a, d), (b, c), (b, d)] {
            let fix = GpsFix {
                time_us: 0,
                lat_e7: la,
                lon_e7: lo,
            };
            if a <= b && c <= d {
                assert!(area.contains(&fix) && pre.holds(la, lo), "{area:?}: {fix:?}");
            }
        }
        // Pulled in by at most 2 units of 1e-7°.
        let Area::BBox { min_lat, .. } = area else { unreachable!() };
        assert!((f64::from(a) - min_lat * 1e7).abs() <= 2.0, "{area:?}");
    }
    let across = Area::BBox {
        min_lat: 0.0,
        min_lon: 170.0,
        max_lat: 1.0,
        max_lon: -170.0,
    };
    assert!(across.inner_e7().is_none());
}

#[test]
fn covers_hold_every_matching_fix() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..3000 {
        let lat = rng.random_range(-90.0..=90.0);
        let lon = rng.random_range(-180.0..=180.0);
        let radius_m = 10f64.powf(rng.random_range(0.0..7.0));
        let area = Area::Near { lat, lon, radius_m };
        let covers: Vec<Cover> = LEVELS.iter().map(|&l| area.cover(l)).collect();
        let pre = area.e7_box();
        for _ in 0..50 {
            // Fixes near the edge of the circle, some inside and some outside.
            let bearing: f64 = rng.random_range(0.0..std::f64::consts::TAU);
            let dist = radius_m * rng.random_range(0.9..1.0001);
            let d = dist / EARTH_RADIUS_M;
            let (p1, l1) = (lat.to_radians(), lon.to_radians());
            let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * bearing.cos()).asin();
            let l2 =
                l1 + (bearing.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
            let mut lon2 = l2.to_degrees();
            while lon2 > 180.0 {
                lon2 -= 360.0;
            }
            while lon2 < -180.0 {
                lon2 += 360.0;
            }
            let Ok(fix) = GpsFix::from_degrees(0, p2.to_degrees().clamp(-90.0, 90.0), lon2)
            else {
                continue;
            };
            if area.contains(&fix) {
                assert!(
                    pre.holds(fix.lat_e7, fix.lon_e7),
                    "{area:?} box misses {fix:?}"
                );
                let b = (fix.lat_e7, fix.lon_e7, fix.lat_e7, fix.lon_e7);
                assert!(pre.meets(b), "{area:?} box misses {fix:?}");
                for c in &covers {
                    let key = cell_of(c.level, &fix);
                    assert!(c.contains(key), "{area:?} level {} misses {fix:?}", c.level);
                    let bit = sub_cell_bit(c.level, &fix);
                    assert!(
                        c.sub_mask(key) & bit != 0,
                        "{area:?} level {} sub-cells miss {fix:?}",
                        c.level
                    );
                }
            }
        }
    }
}

#[test]
fn antimeridian_boxes_cover_both_sides() {
    let area = Area::BBox {
        min_lat: -1.0,
        min_lon: 179.0,
        max_lat: 1.0,
        max_lon: -179.0,
    };
    let east = GpsFix::from_degrees(0, 0.0, 179.5).unwrap();
    let west = GpsFix::from_degrees(0, 0.0, -179.5).unwrap();
    let far = GpsFix::from_degrees(0, 0.0, 0.0).unwrap();
    assert!(area.contains(&east) && area.contains(&west) && !area.contains(&far));
    let c = area.cover(10);
    assert!(c.keys().any(|k| k == cell_of(10, &east)));
    assert!(c.keys().any(|k| k == cell_of(10, &west)));
    assert_eq!(c.cols.len(), 2);
    let pre = area.e7_box();
    assert!(pre.holds(east.lat_e7, east.lon_e7) && pre.holds(west.lat_e7, west.lon_e7));
    assert!(!pre.holds(far.lat_e7, far.lon_e7));
    // A track from the far fix to the east one meets the box; one around the far fix not.
    assert!(pre.meets((0, 0, 0, east.lon_e7)));
    assert!(!pre.meets((0, -10, 0, 10)));
}

#[test]
fn integer_boxes_hold_boundary_fixes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..20_000 {
        let lat0: f64 = rng.random_range(-90.0..90.0);
        let lat1: f64 = rng.random_range(lat0..=90.0);
        let lon0: f64 = rng.random_range(-180.0..=180.0);
        let lon1: f64 = rng.random_range(-180.0..=180.0);
        let area = Area::BBox {
            min_lat: lat0,
            min_lon: lon0,
            max_lat: lat1,
            max_lon: lon1,
        };
        let pre = area.e7_box();
        // Fixes on and just around each corner.
        for (la, lo) in [(lat0, lon0), (lat1, lon1), (lat0, lon1), (lat1, lon0)] {
            let (a, b) = ((la * 1e7).round() as i64, (lo * 1e7).round() as i64);
            for da in -2..=2 {
                for db in -2..=2 {
                    let fix = GpsFix {
                        time_us: 0,
                        lat_e7: (a + da).clamp(-900_000_000, 900_000_000) as i32,
                        lon_e7: (b + db).clamp(-1_800_000_000, 1_800_000_000) as i32,
                    };
                    if area.contains(&fix) {
                        assert!(pre.holds(fix.lat_e7, fix.lon_e7), "{area:?} {fix:?}");
                    }
                }
            }
        }
    }
}

/// The fast circle test agrees with the haversine wherever it answers, and answers for all but
/// a thin band at the edge.
#[test]
fn the_disc_test_agrees_with_the_haversine_and_leaves_only_the_edge_to_it() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let (mut asked, mut undecided, mut tests) = (0u64, 0u64, 0);
    for _ in 0..3000 {
        let lat: f64 = rng.random_range(-80.0..=80.0);
        let lon: f64 = rng.random_range(-179.0..=179.0);
        let radius_m = 10f64.powf(rng.random_range(0.5..5.8));
        let area = Area::Near { lat, lon, radius_m };
        let Some(disc) = area.disc_test() else {
            continue;
        };
        tests += 1;
        let pre = area.e7_box();
        for i in 0..200 {
            // Positions all over the integer box, and many near the circle's edge.
            let (la, lo) = if i % 2 == 0 {
                let a = rng.random_range(pre.lat.0..=pre.lat.1);
                let (l0, l1) = pre.lons[0];
                (a, rng.random_range(l0..=l1))
            } else {
                let bearing: f64 = rng.random_range(0.0..std::f64::consts::TAU);
                let d = radius_m * rng.random_range(0.999..1.001) / EARTH_RADIUS_M;
                let (p1, l1) = (lat.to_radians(), lon.to_radians());
                let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * bearing.cos()).asin();
                let l2 = l1
                    + (bearing.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
                (
                    (p2.to_degrees() * 1e7).round() as i32,
                    (l2.to_degrees() * 1e7).round() as i32,
                )
            };
            if !pre.holds(la, lo) {
                continue;
            }
            let fix = GpsFix {
                time_us: 0,
                lat_e7: la,
                lon_e7: lo,
            };
            asked += 1;
            match disc.classify(la, lo) {
                Some(inside) => assert_eq!(inside, area.contains(&fix), "{area:?}: {fix:?}"),
                None => undecided += 1,
            }
        }
    }
    assert!(tests > 2500, "{tests}");
    // Half the positions lie within 0.1 % of the edge; about 1 % of all are left undecided.
    assert!(undecided * 50 < asked, "{undecided} of {asked} undecided");
    // No test where its bounds do not hold.
    for (lat, lon, r) in [(85.0, 0.0, 100.0), (0.0, 179.99999, 100.0), (0.0, 0.0, 1e6), (0.0, 0.0, 1.0)] {
        let area = Area::Near {
            lat,
            lon,
            radius_m: r,
        };
        assert!(area.disc_test().is_none(), "{area:?}");
    }
}
