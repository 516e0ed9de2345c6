//! Geometry for the spatial index: the exact distance and box tests that decide a match, the
//! grid cells fixes are indexed under, and the cell covers of query areas.
//!
//! Invariants:
//! - [`haversine_m`] is computed exactly as the query semantics state (docs/DESIGN.md), so a
//!   fix on the circle matches on every machine;
//! - a cover is a superset: every fix that passes [`Area::contains`] lies in a cell of
//!   [`Area::cover`] at that level (covers of circles carry slack for rounding; box covers use
//!   the same monotone cell function as the fixes, so they need none).

use crate::meta::{GpsFix, DEGREE_SCALE};

/// Mean Earth radius used by the distance test, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Grid levels, finest first: level `k` cuts latitude into 2^k rows and longitude into 2^k
/// columns (level 16: cells of 305 m north-south, 611 m × cos(latitude) east-west).
pub const LEVELS: [u8; 4] = [16, 13, 10, 7];

/// The distance in metres between a point (1) and a fix (2), as specified.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let p1 = lat1.to_radians();
    let p2 = lat2.to_radians();
    let s1 = ((p2 - p1) / 2.0).sin();
    let s2 = ((lon2 - lon1).to_radians() / 2.0).sin();
    let a = s1 * s1 + p1.cos() * p2.cos() * s2 * s2;
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// A fast, exact-where-it-answers test for a circle: bounds of the haversine term from
/// polynomials that say "certainly inside" or "certainly outside" for every fix except those
/// within about a relative 10⁻⁶ of the edge, which go to [`haversine_m`] (see
/// [`Area::disc_test`]).
#[derive(Debug, Clone, Copy)]
pub struct DiscTest {
    lat: f64,
    lon: f64,
    /// cos φ₁ and sin φ₁ of the centre.
    cos1: f64,
    sin1: f64,
    /// The haversine term of the radius, less and more a part in 10⁶.
    a_in: f64,
    a_out: f64,
}

impl DiscTest {
    /// `Some(true)` if the position certainly passes the exact test, `Some(false)` if it
    /// certainly fails it, `None` if only the exact test can tell.
    ///
    /// Why: the haversine term is a = sin²(Δφ/2) + cos φ₁ cos φ₂ sin²(Δλ/2), and a fix is in
    /// the circle iff a ≤ sin²(θ/2). For 0 ≤ x ≤ 0.3, (x − x³/6)² ≤ sin² x ≤ x²; cos φ₂ =
    /// cos φ₁ cos Δφ − sin φ₁ sin Δφ is bounded the same way (1 − Δφ²/2 ≤ cos Δφ ≤ 1, sin Δφ
    /// between Δφ − Δφ³/6 and Δφ). The margin of 10⁻⁶ on a is far above the rounding of
    /// either computation (θ ≥ 10⁻⁶ rad, so angle errors of 10⁻¹⁵ rad are below 10⁻⁹ of a).
    #[inline]
    pub fn classify(&self, lat_e7: i32, lon_e7: i32) -> Option<bool> {
        let d = (f64::from(lat_e7) / DEGREE_SCALE - self.lat).to_radians();
        let x = (0.5 * d).abs();
        let y = (0.5 * (f64::from(lon_e7) / DEGREE_SCALE - self.lon).to_radians()).abs();
        if x > 0.3 || y > 0.3 {
            return None;
        }
        let d2 = d * d;
        // sin Δφ in [su, sv], then sin φ₁ sin Δφ in [pu, pv].
        let cubic = d - d * d2 / 6.0;
        let (su, sv) = if d >= 0.0 { (cubic, d) } else { (d, cubic) };
        let (pu, pv) = if self.sin1 >= 0.0 {
            (self.sin1 * su, self.sin1 * sv)
        } else {
            (self.sin1 * sv, self.sin1 * su)
        };
        let cos2_lo = self.cos1 * (1.0 - d2 / 2.0) - pv;
        let cos2_hi = self.cos1 - pu;
        if x * x + self.cos1 * cos2_hi * y * y <= self.a_in {
            return Some(true);
        }
        let (sx, sy) = (x - x * x * x / 6.0, y - y * y * y / 6.0);
        if sx * sx + self.cos1 * cos2_lo.max(0.0) * sy * sy >= self.a_out {
            return Some(false);
        }
        None
    }
}

/// A query area.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Area {
    /// Within `radius_m` metres of a point.
    Near {
        /// Latitude of the centre, degrees (WGS 84).
        lat: f64,
        /// Longitude of the centre, degrees (WGS 84).
        lon: f64,
        /// Radius, metres (great-circle distance).
        radius_m: f64,
    },
    /// Inside a box, bounds inclusive; `min_lon > max_lon` crosses the antimeridian.
    BBox {
        /// Southern edge, degrees latitude.
        min_lat: f64,
        /// Western edge, degrees longitude.
        min_lon: f64,
        /// Northern edge, degrees latitude.
        max_lat: f64,
        /// Eastern edge, degrees longitude.
        max_lon: f64,
    },
}

/// A cell key: level in the top bits, then row and column.
pub fn cell_key(level: u8, row: u32, col: u32) -> u64 {
    (u64::from(level) << 48) | (u64::from(row) << 24) | u64::from(col)
}

fn row_of(level: u8, lat: f64) -> u32 {
    let n = 1u32 << level;
    let v = ((lat + 90.0) / 180.0 * f64::from(n)).floor();
    v.clamp(0.0, f64::from(n - 1)) as u32
}

fn col_of(level: u8, lon: f64) -> u32 {
    let n = 1u32 << level;
    let v = ((lon + 180.0) / 360.0 * f64::from(n)).floor();
    v.clamp(0.0, f64::from(n - 1)) as u32
}

/// The cell of a fix at `level`.
pub fn cell_of(level: u8, fix: &GpsFix) -> u64 {
    cell_key(level, row_of(level, fix.lat()), col_of(level, fix.lon()))
}

/// Levels between a cell and its sub-cells: a cell holds 4 × 4 sub-cells.
pub const SUB_LEVELS: u8 = 2;
/// A sub-cell mask naming every sub-cell (what a posting of an older checkpoint carries).
pub const ALL_SUB_CELLS: u16 = u16::MAX;

/// The bit of a fix's sub-cell within its cell of `level`: bit `4 · r + c` for the sub-cell in
/// row `r` and column `c` (each 0..4, south to north and west to east) of the cell's 4 × 4
/// cells at `level + 2`. A cell at `level + 2` lies in the cell of `level` of its row and
/// column shifted right by 2 (the grid's coordinates are scaled by powers of two, which is
/// exact in floating point).
pub fn sub_cell_bit(level: u8, fix: &GpsFix) -> u16 {
    let fine = level + SUB_LEVELS;
    let (r, c) = (row_of(fine, fix.lat()) & 3, col_of(fine, fix.lon()) & 3);
    1 << (4 * r + c)
}

/// Cells of one level covering an area: rows `rows` × each column range, and the area's
/// cover two levels finer (`fine`), which names the sub-cells of each cell the area meets.
#[derive(Debug, Clone, PartialEq)]
pub struct Cover {
    pub level: u8,
    pub rows: (u32, u32),
    pub cols: Vec<(u32, u32)>,
    fine: Option<Box<Cover>>,
}

impl Cover {
    pub fn len(&self) -> u64 {
        let rows = u64::from(self.rows.1 - self.rows.0 + 1);
        let cols: u64 = self.cols.iter().map(|(a, b)| u64::from(b - a + 1)).sum();
        rows * cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a cell key is in the cover.
    pub fn contains(&self, key: u64) -> bool {
        let (level, row, col) = (
            (key >> 48) as u8,
            ((key >> 24) & 0xFF_FFFF) as u32,
            (key & 0xFF_FFFF) as u32,
        );
        level == self.level && self.holds(row, col)
    }

    fn holds(&self, row: u32, col: u32) -> bool {
        (self.rows.0..=self.rows.1).contains(&row)
            && self.cols.iter().any(|&(a, b)| (a..=b).contains(&col))
    }

    /// The sub-cells (bits as [`sub_cell_bit`] numbers them) of cell `key` of this cover that
    /// hold a fix in the area: every fix in the area lies in a sub-cell of the finer cover.
    pub fn sub_mask(&self, key: u64) -> u16 {
        let Some(fine) = &self.fine else {
            return ALL_SUB_CELLS;
        };
        let (row, col) = (((key >> 24) & 0xFF_FFFF) as u32, (key & 0xFF_FFFF) as u32);
        let mut mask = 0u16;
        for r in 0..4 {
            for c in 0..4 {
                if fine.holds(4 * row + r, 4 * col + c) {
                    mask |= 1 << (4 * r + c);
                }
            }
        }
        mask
    }

    /// Every cell key of the cover, row by row.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        (self.rows.0..=self.rows.1).flat_map(move |r| {
            self.cols
                .iter()
                .flat_map(move |&(a, b)| (a..=b).map(move |c| cell_key(self.level, r, c)))
        })
    }
}

/// An area's bounding box in 1e-7 degrees (see [`Area::e7_box`]): a latitude range and up to
/// two longitude ranges (an empty range is `(1, 0)`), bounds inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E7Box {
    pub lat: (i32, i32),
    pub lons: [(i32, i32); 2],
    /// A box inside the area, (lat range, lon range) in 1e-7 degrees, empty as `(1, 0)`s: a
    /// position in it certainly passes the exact test ([`Area::inner_e7`]).
    pub inner: ((i32, i32), (i32, i32)),
}

impl E7Box {
    /// Whether a position certainly lies in the area (no exact test needed).
    #[inline]
    pub fn surely_holds(&self, lat_e7: i32, lon_e7: i32) -> bool {
        let ((a, b), (c, d)) = self.inner;
        a <= lat_e7 && lat_e7 <= b && c <= lon_e7 && lon_e7 <= d
    }

    /// Whether every position in a bounding box (min_lat, min_lon, max_lat, max_lon)
    /// certainly lies in the area.
    #[inline]
    pub fn surely_holds_rect(&self, (min_lat, min_lon, max_lat, max_lon): (i32, i32, i32, i32)) -> bool {
        self.surely_holds(min_lat, min_lon) && self.surely_holds(max_lat, max_lon)
    }

    /// Whether a position may lie in the area.
    #[inline]
    pub fn holds(&self, lat_e7: i32, lon_e7: i32) -> bool {
        self.lat.0 <= lat_e7
            && lat_e7 <= self.lat.1
            && self.lons.iter().any(|&(a, b)| a <= lon_e7 && lon_e7 <= b)
    }

    /// Whether a bounding box (min_lat, min_lon, max_lat, max_lon) may hold a position in the
    /// area.
    pub fn meets(&self, (min_lat, min_lon, max_lat, max_lon): (i32, i32, i32, i32)) -> bool {
        min_lat <= self.lat.1
            && max_lat >= self.lat.0
            && self
                .lons
                .iter()
                .any(|&(a, b)| a <= b && min_lon <= b && max_lon >= a)
    }
}

/// Slack added to circle covers, in degrees (about 1 cm): far above f64 rounding.
const SLACK_DEG: f64 = 1e-7;

impl Area {
    /// Whether a fix lies in the area (the exact test).
    pub fn contains(&self, fix: &GpsFix) -> bool {
        let (lat, lon) = (fix.lat(), fix.lon());
        match *self {
            Area::Near {
                lat: plat,
                lon: plon,
                radius_m,
            } => haversine_m(plat, plon, lat, lon) <= radius_m,
            Area::BBox {
                min_lat,
                min_lon,
                max_lat,
                max_lon,
            } => {
                let lat_ok = min_lat <= lat && lat <= max_lat;
                let lon_ok = if min_lon <= max_lon {
                    min_lon <= lon && lon <= max_lon
                } else {
                    lon >= min_lon || lon <= max_lon
                };
                lat_ok && lon_ok
            }
        }
    }

    /// The latitude range and longitude ranges (each within -180..=180) that hold the area.
    fn bounds(&self) -> ((f64, f64), Vec<(f64, f64)>) {
        match *self {
            Area::BBox {
                min_lat,
                min_lon,
                max_lat,
                max_lon,
            } => {
                let lons = if min_lon <= max_lon {
                    vec![(min_lon, max_lon)]
                } else {
                    vec![(min_lon, 180.0), (-180.0, max_lon)]
                };
                ((min_lat, max_lat), lons)
            }
            Area::Near { lat, lon, radius_m } => {
                let theta = radius_m / EARTH_RADIUS_M;
                let all = vec![(-180.0, 180.0)];
                if theta >= std::f64::consts::PI {
                    return ((-90.0, 90.0), all);
                }
                let dlat = theta.to_degrees() * (1.0 + 1e-9) + SLACK_DEG;
                let (lo, hi) = (lat - dlat, lat + dlat);
                if lo <= -90.0 || hi >= 90.0 {
                    // The cap holds a pole: every longitude.
                    return ((lo.max(-90.0), hi.min(90.0)), all);
                }
                let ratio = theta.sin() / lat.to_radians().cos();
                if ratio.is_nan() || ratio >= 1.0 {
                    return ((lo, hi), all);
                }
                let dlon = ratio.asin().to_degrees() * (1.0 + 1e-9) + SLACK_DEG;
                if dlon >= 180.0 {
                    return ((lo, hi), all);
                }
                let (a, b) = (lon - dlon, lon + dlon);
                let mut lons = vec![(a.max(-180.0), b.min(180.0))];
                if a < -180.0 {
                    lons.push((a + 360.0, 180.0));
                }
                if b > 180.0 {
                    lons.push((-180.0, b - 360.0));
                }
                ((lo, hi), lons)
            }
        }
    }

    /// A box in 1e-7 degrees holding every fix in the area: an integer test that rules out
    /// most fixes (and whole tracks, by their bounding box) before the exact one.
    pub fn e7_box(&self) -> E7Box {
        let ((lat0, lat1), lons) = self.bounds();
        // One unit of margin beyond rounding: a fix whose degrees pass a bound has an integer
        // coordinate within a unit of that bound times 1e7.
        let lo = |v: f64| {
            let x = (v * DEGREE_SCALE).floor() - 1.0;
            x.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        };
        let hi = |v: f64| {
            let x = (v * DEGREE_SCALE).ceil() + 1.0;
            x.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        };
        let mut b = E7Box {
            lat: (lo(lat0), hi(lat1)),
            lons: [(1, 0); 2],
            inner: self.inner_e7().unwrap_or(((1, 0), (1, 0))),
        };
        for (slot, &(a, c)) in b.lons.iter_mut().zip(&lons) {
            *slot = (lo(a), hi(c));
        }
        if lons.len() > 2 {
            b.lons = [(i32::MIN, i32::MAX), (1, 0)];
        }
        b
    }

    /// For a circle with an inner box ([`Area::inner_e7`]) and a radius of at least 10⁻⁶ of
    /// the Earth's (6.4 m): the `DiscTest` that spares most fixes the trigonometry.
    pub fn disc_test(&self) -> Option<DiscTest> {
        let Area::Near { lat, lon, radius_m } = *self else {
            return None;
        };
        let theta = radius_m / EARTH_RADIUS_M;
        if !(1e-6..0.1).contains(&theta) || self.inner_e7().is_none() {
            return None;
        }
        let a = (theta / 2.0).sin().powi(2);
        Some(DiscTest {
            lat,
            lon,
            cos1: lat.to_radians().cos(),
            sin1: lat.to_radians().sin(),
            a_in: a * (1.0 - 1e-6),
            a_out: a * (1.0 + 1e-6),
        })
    }

    /// A box of positions (1e-7 degrees) certainly within the area: most fixes of a track that
    /// crosses a circle then skip the haversine, and whole blocks of fixes inside it match
    /// undecoded. None when no useful box exists (for a circle: a radius over ~600 km, a cap
    /// near a pole, a box across the antimeridian; for a box: one across the antimeridian).
    ///
    /// For a circle:
    ///
    /// Why a position in the box passes the exact test: with |Δlat| ≤ α and |Δlon| ≤ β the
    /// haversine term is sin²(Δφ/2) + cos φ₁ cos φ₂ sin²(Δλ/2) ≤ sin²(α/2) + cos φ₁ c sin²(β/2)
    /// (c: the cosine of the box's latitude nearest the equator, at least cos φ₂), and α and β
    /// are chosen so that each part is at most ½ sin²(θ/2) (θ = r / R): the
    /// distance is then at most r. Both are shrunk by a part in 10⁶ and by 10⁻⁹ degrees, far
    /// more than the rounding of the f64 haversine or of a fix's degrees.
    ///
    /// For a box that does not cross the antimeridian: its own bounds, pulled in by one unit
    /// beyond rounding (an integer coordinate one unit inside a bound passes the f64 test).
    pub fn inner_e7(&self) -> Option<((i32, i32), (i32, i32))> {
        let (lat, lon, radius_m) = match *self {
            Area::Near { lat, lon, radius_m } => (lat, lon, radius_m),
            Area::BBox {
                min_lat,
                min_lon,
                max_lat,
                max_lon,
            } => {
                let all = [min_lat, min_lon, max_lat, max_lon];
                if min_lon > max_lon || all.iter().any(|v| !v.is_finite() || v.abs() > 180.0) {
                    return None;
                }
                let e7 = |lo: f64, hi: f64| {
                    (
                        (lo * DEGREE_SCALE).ceil() as i32 + 1,
                        (hi * DEGREE_SCALE).floor() as i32 - 1,
                    )
                };
                return Some((e7(min_lat, max_lat), e7(min_lon, max_lon)));
            }
        };
        let theta = radius_m / EARTH_RADIUS_M;
        if theta.is_nan() || theta <= 0.0 || theta >= 0.1 || lat.abs() > 80.0 {
            return None;
        }
        let half = (theta / 2.0).sin() / std::f64::consts::SQRT_2;
        let shrink = |rad: f64| rad.to_degrees() * (1.0 - 1e-6) - 1e-9;
        let alpha_rad = 2.0 * half.asin();
        let alpha = shrink(alpha_rad);
        // cos φ₂ is at most the cosine of the latitude in the band nearest the equator.
        let nearest = (lat.abs().to_radians() - alpha_rad).max(0.0);
        let ratio = half / (lat.to_radians().cos() * nearest.cos()).sqrt();
        // NaN (a cosine of 0 at a pole) fails this too.
        if ratio.is_nan() || ratio >= 1.0 {
            return None;
        }
        let beta = shrink(2.0 * ratio.asin());
        if alpha <= 0.0 || beta <= 0.0 || lon - beta <= -180.0 || lon + beta >= 180.0 {
            return None;
        }
        let e7 = |lo: f64, hi: f64| {
            (
                (lo * DEGREE_SCALE).ceil() as i32,
                (hi * DEGREE_SCALE).floor() as i32,
            )
        };
        Some((
            e7(lat - alpha, lat + alpha),
            e7(lon - beta, lon + beta),
        ))
    }

    /// The cells of `level` that hold every fix in the area, with the cover two levels finer
    /// that says which of their sub-cells do.
    pub fn cover(&self, level: u8) -> Cover {
        let mut cover = self.cover_at(level);
        if level + SUB_LEVELS <= 24 {
            cover.fine = Some(Box::new(self.cover_at(level + SUB_LEVELS)));
        }
        cover
    }

    fn cover_at(&self, level: u8) -> Cover {
        let ((lat0, lat1), lons) = self.bounds();
        let mut cols: Vec<(u32, u32)> = lons
            .iter()
            .map(|&(a, b)| (col_of(level, a), col_of(level, b)))
            .collect();
        cols.sort_unstable();
        // Merge overlapping column ranges so no cell is listed twice.
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(cols.len());
        for (a, b) in cols {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Cover {
            level,
            rows: (row_of(level, lat0), row_of(level, lat1)),
            cols: merged,
            fine: None,
        }
    }
}

#[cfg(test)]
mod tests;
