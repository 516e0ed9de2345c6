//! The SQLite side of the index benches: a careful design for the same queries, built from the
//! same segments.
//!
//! Schema (bundled SQLite, WAL, `synchronous=NORMAL`): `segments` with B-tree indexes on
//! (officer, start, end), (device, start, end) and (start, end); `officers`, `devices`;
//! `labels(kind, label, seg)` (WITHOUT ROWID; kind 0 case, 1 tag, 2 category); an `rtree_i32`
//! R*Tree over track pieces (up to 12 consecutive fixes, cut at gaps over 60 s: lat/lon box in
//! 1e-7 degrees and whole-second time range) whose auxiliary columns hold the segment id and the
//! piece's fixes (a packed blob: i64 base time, then u32 time offset, i32 lat, i32 lon per fix);
//! indexes created after the bulk load, then `ANALYZE`. The exact test (`haversine_m`, box) runs
//! in Rust on the pieces the R*Tree returns. Window queries use the longest segment duration
//! (kept in `meta`) to bound the start range, as the footage index does. Several officers: one
//! statement, `officer IN (SELECT id FROM officers WHERE name IN (...))`, so SQLite probes the
//! (officer, start, end) index once per officer and sorts the union.
//!
//! Answers are segment ids sorted by (start, id), as footage returns them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use footage::index::geo::EARTH_RADIUS_M;
use footage::{Area, GpsFix, SegmentMeta};
use rusqlite::{params, Connection};

use super::{Q, SEC};

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

/// Builds the SQLite database from `segments` (ids 1, 2, ... in order, as footage numbers
/// them); returns the number of R*Tree pieces.
pub fn build(path: &Path, segments: impl Iterator<Item = SegmentMeta>) -> u64 {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let mut officers: HashMap<String, i64> = HashMap::new();
    let mut devices: HashMap<String, i64> = HashMap::new();
    let mut cat = segments.peekable();
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

pub struct Sqlite {
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

/// `k` officers (k > 1): the names are ?1..?k, then min start, max start, min end.
fn sql_officers(k: usize) -> String {
    let names: Vec<String> = (1..=k).map(|i| format!("?{i}")).collect();
    format!(
        "SELECT s.id FROM segments s \
         WHERE s.officer IN (SELECT id FROM officers WHERE name IN ({})) \
         AND s.start_us BETWEEN ?{} AND ?{} AND s.end_us >= ?{} ORDER BY s.start_us, s.id",
        names.join(", "),
        k + 1,
        k + 2,
        k + 3
    )
}

/// Latitude and longitude ranges (degrees) holding an area (no pole, no antimeridian: both
/// catalogues are in England).
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
    pub fn open(path: &Path) -> Sqlite {
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

    /// SQLite's plan for the statement that answers `q`.
    pub fn plan(&self, q: &Q) -> String {
        let labelled = q.case.is_some() || q.tag.is_some() || q.category.is_some();
        let (sql, n) = match (&q.area, q.officers.len(), labelled) {
            (Some(_), _, _) => (SQL_PIECES.to_string(), 6),
            (None, 1, _) => (SQL_OFFICER.to_string(), 4),
            (None, k, _) if k > 1 => (sql_officers(k), k + 3),
            (None, _, true) => (SQL_LABEL.to_string(), 5),
            _ => (SQL_WINDOW.to_string(), 3),
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

    /// The ids matching `q`, sorted by (start, id). A query has an area, or officers, or a
    /// label, or only a window (the benches combine nothing else).
    pub fn find(&self, q: &Q) -> Vec<u64> {
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
        match q.officers.as_slice() {
            [] => {}
            [o] => {
                let mut st = self.conn.prepare_cached(SQL_OFFICER).unwrap();
                return ids(&mut st, &[o, &min_start, &hi, &lo]);
            }
            many => {
                let mut st = self.conn.prepare_cached(&sql_officers(many.len())).unwrap();
                let mut p: Vec<&dyn rusqlite::ToSql> =
                    many.iter().map(|o| o as &dyn rusqlite::ToSql).collect();
                p.extend([&min_start as &dyn rusqlite::ToSql, &hi, &lo]);
                return ids(&mut st, &p);
            }
        }
        let label = match (&q.case, &q.tag, &q.category) {
            (Some(c), _, _) => Some((0, c)),
            (None, Some(t), _) => Some((1, t)),
            (None, None, Some(c)) => Some((2, c)),
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
