//! `footage find` (search the index, one JSON object per result) and `footage track`.

use clap::Args;
use serde::Serialize;

use super::{id_arg, print_json, println_out, segment_arg, time_arg};
use crate::index::query::Query;
use crate::input::time::format_time;
use crate::store::SegmentInfo;
use crate::Store;

#[derive(Args, Debug, Default)]
pub struct FindArgs {
    /// Officer id (repeat for any of several)
    #[arg(long, value_parser = id_arg, value_name = "ID")]
    pub officer: Vec<String>,
    /// Camera id (repeat for any of several)
    #[arg(long, value_parser = id_arg, value_name = "ID")]
    pub device: Vec<String>,
    /// Start of the window (RFC 3339, e.g. 2026-11-24T01:00:00Z)
    #[arg(long, value_parser = time_arg, value_name = "TIME")]
    pub from: Option<i64>,
    /// End of the window (inclusive)
    #[arg(long, value_parser = time_arg, value_name = "TIME")]
    pub to: Option<i64>,
    /// A point: footage whose GPS track came within --radius metres of it
    #[arg(long, value_parser = lat_lon, value_name = "LAT,LON", allow_hyphen_values = true, requires = "radius")]
    pub near: Option<(f64, f64)>,
    /// Radius in metres for --near
    #[arg(
        long,
        value_name = "METRES",
        requires = "near",
        allow_hyphen_values = true
    )]
    pub radius: Option<f64>,
    /// A box: footage whose track entered it (MINLON > MAXLON crosses the antimeridian)
    #[arg(long, value_parser = bbox, value_name = "MINLAT,MINLON,MAXLAT,MAXLON", allow_hyphen_values = true, conflicts_with = "near")]
    pub bbox: Option<(f64, f64, f64, f64)>,
    /// Case id
    #[arg(long, value_parser = id_arg, value_name = "ID")]
    pub case: Option<String>,
    /// Tag
    #[arg(long, value_parser = id_arg, value_name = "TAG")]
    pub tag: Option<String>,
    /// Category
    #[arg(long, value_parser = id_arg, value_name = "NAME")]
    pub category: Option<String>,
    /// Print at most N results (1 to 1000); a `next` cursor for the rest goes to stderr
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Report visits to the area less than this many seconds apart as one hit interval
    /// [default: 10; 0 keeps every run of matching fixes apart]
    #[arg(long, value_parser = hit_gap_arg, value_name = "SECONDS")]
    pub hit_gap: Option<i64>,
    /// Continue after this cursor (from a previous --limit run)
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
}

fn numbers(s: &str, n: usize, what: &str) -> Result<Vec<f64>, String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("expected {what}, e.g. {}", example(n)))?;
    if v.len() != n || v.iter().any(|x| !x.is_finite()) {
        return Err(format!("expected {what}, e.g. {}", example(n)));
    }
    Ok(v)
}

fn example(n: usize) -> &'static str {
    if n == 2 {
        "51.5080,-0.1247"
    } else {
        "51.50,-0.13,51.52,-0.11"
    }
}

/// Seconds (a number, 0 or more) as µs, for `--hit-gap`.
pub(crate) fn hit_gap_arg(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=86_400.0 * 366.0).contains(v))
        .map(|v| (v * 1e6).round() as i64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds from 0 to a year"))
}

pub(crate) fn lat_lon(s: &str) -> Result<(f64, f64), String> {
    let v = numbers(s, 2, "LAT,LON")?;
    Ok((v[0], v[1]))
}

pub(crate) fn bbox(s: &str) -> Result<(f64, f64, f64, f64), String> {
    let v = numbers(s, 4, "MINLAT,MINLON,MAXLAT,MAXLON")?;
    Ok((v[0], v[1], v[2], v[3]))
}

#[derive(Args, Debug)]
pub struct TrackArgs {
    /// Segment id
    #[arg(value_parser = segment_arg)]
    pub id: u64,
    /// Print a GeoJSON Feature (LineString with per-fix times) instead of one fix per line
    #[arg(long)]
    pub geojson: bool,
}

/// A time range of matching fixes, as printed.
#[derive(Serialize)]
pub struct HitOut {
    pub from: String,
    pub to: String,
}

/// One line of `find` output: the `info` fields plus `hits` for near/bbox queries.
#[derive(Serialize)]
pub struct FindLine {
    #[serde(flatten)]
    pub info: SegmentInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hits: Option<Vec<HitOut>>,
    /// Hit intervals past the per-result cap, not listed (absent when none are omitted).
    #[serde(skip_serializing_if = "is_zero")]
    pub hits_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl FindLine {
    /// The line for one result: its `info`, and its `hits` when the query has an area.
    pub fn of(store: &Store, r: &crate::FindResult, with_hits: bool) -> crate::Result<FindLine> {
        Ok(FindLine {
            info: store.info(r.id)?,
            hits: with_hits.then(|| {
                r.hits
                    .iter()
                    .map(|h| HitOut {
                        from: format_time(h.from_us),
                        to: format_time(h.to_us),
                    })
                    .collect()
            }),
            hits_omitted: r.hits_omitted,
        })
    }
}

impl FindArgs {
    pub fn query(&self) -> Query {
        let mut q = Query {
            officers: self.officer.clone(),
            devices: self.device.clone(),
            from_us: self.from,
            to_us: self.to,
            case: self.case.clone(),
            tag: self.tag.clone(),
            category: self.category.clone(),
            limit: self.limit,
            cursor: self.after.clone(),
            hit_gap_us: self.hit_gap,
            area: None,
        };
        if let (Some((lat, lon)), Some(r)) = (self.near, self.radius) {
            q = q.near(lat, lon, r);
        }
        if let Some((a, b, c, d)) = self.bbox {
            q = q.bbox(a, b, c, d);
        }
        q
    }
}

pub fn find(store: &Store, args: FindArgs) -> anyhow::Result<i32> {
    let q = args.query();
    if let Err(e) = q.validate() {
        // A query that cannot be right is a usage error, like a malformed argument.
        eprintln!("error: {e}");
        return Ok(super::EXIT_USAGE);
    }
    let with_hits = q.area.is_some();
    let print = |r: crate::FindResult| -> anyhow::Result<()> {
        println_out(&serde_json::to_string(&FindLine::of(
            store, &r, with_hits,
        )?)?)
    };
    if q.limit.is_some() {
        let page = store.find(&q)?;
        let next = page.next.clone();
        for r in page {
            print(r)?;
        }
        if let Some(c) = next {
            eprintln!("more results: continue with --after {c}");
        }
    } else {
        for r in store.find_all(&q) {
            print(r?)?;
        }
    }
    Ok(super::EXIT_OK)
}

pub fn track(store: &Store, args: TrackArgs) -> anyhow::Result<i32> {
    let fixes = store.track(args.id)?;
    if args.geojson {
        print_json(&crate::meta::track_geojson(args.id, &fixes))?;
    } else {
        for f in fixes {
            let line = serde_json::json!({
                "time": format_time(f.time_us),
                "lat": f.lat(),
                "lon": f.lon(),
            });
            println_out(&line.to_string())?;
        }
    }
    Ok(super::EXIT_OK)
}
