//! Searches as the frontends take and give them, shared by `footage find` (src/cli) and the
//! review API (src/server) so that both parse the same parameters with the same functions and
//! answer the same lines: [`SearchArgs`] (flags or query-string parameters, turned into a
//! [`Query`]), the value parsers, and [`FindLine`] (one result as JSON).
//!
//! Invariants: one parser per parameter, used by both frontends; a value that does not parse
//! is an error naming the parameter, never a default; nothing here touches the store except
//! [`FindLine::of`], which reads a segment's `info`.

use serde::Serialize;

use crate::index::query::{Query, MAX_PAGE};
use crate::input::time::{format_time, parse_time};
use crate::store::SegmentInfo;
use crate::Store;

/// A search as a person or a script writes it: `footage find`'s flags, the review API's query
/// parameters. [`SearchArgs::query`] turns it into a [`Query`].
#[derive(Debug, Default, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SearchArgs {
    /// Officer id (repeat for any of several)
    #[cfg_attr(feature = "cli", arg(long, value_parser = label_arg, value_name = "ID"))]
    pub officer: Vec<String>,
    /// Camera id (repeat for any of several)
    #[cfg_attr(feature = "cli", arg(long, value_parser = label_arg, value_name = "ID"))]
    pub device: Vec<String>,
    /// Start of the window (RFC 3339, e.g. 2026-11-24T01:00:00Z)
    #[cfg_attr(feature = "cli", arg(long, value_parser = time_arg, value_name = "TIME"))]
    pub from: Option<i64>,
    /// End of the window (inclusive)
    #[cfg_attr(feature = "cli", arg(long, value_parser = time_arg, value_name = "TIME"))]
    pub to: Option<i64>,
    /// A point: footage whose GPS track came within --radius metres of it
    #[cfg_attr(feature = "cli", arg(long, value_parser = lat_lon, value_name = "LAT,LON", allow_hyphen_values = true, requires = "radius"))]
    pub near: Option<(f64, f64)>,
    /// Radius in metres for --near
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "METRES",
            requires = "near",
            allow_hyphen_values = true
        )
    )]
    pub radius: Option<f64>,
    /// A box: footage whose track entered it (MINLON > MAXLON crosses the antimeridian)
    #[cfg_attr(feature = "cli", arg(long, value_parser = bbox, value_name = "MINLAT,MINLON,MAXLAT,MAXLON", allow_hyphen_values = true, conflicts_with = "near"))]
    pub bbox: Option<(f64, f64, f64, f64)>,
    /// Case id
    #[cfg_attr(feature = "cli", arg(long, value_parser = label_arg, value_name = "ID"))]
    pub case: Option<String>,
    /// Tag
    #[cfg_attr(feature = "cli", arg(long, value_parser = label_arg, value_name = "TAG"))]
    pub tag: Option<String>,
    /// Category
    #[cfg_attr(feature = "cli", arg(long, value_parser = label_arg, value_name = "NAME"))]
    pub category: Option<String>,
    /// Print at most N results (1 to 1000); a `next` cursor for the rest goes to stderr
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub limit: Option<usize>,
    /// Report visits to the area less than this many seconds apart as one hit interval
    /// [default: 10; 0 keeps every run of matching fixes apart]
    #[cfg_attr(feature = "cli", arg(long, value_parser = hit_gap_arg, value_name = "SECONDS"))]
    pub hit_gap: Option<i64>,
    /// Continue after this cursor (from a previous --limit run)
    #[cfg_attr(feature = "cli", arg(long, value_name = "CURSOR"))]
    pub after: Option<String>,
}

/// Parses a time (RFC 3339) as µs since the epoch.
pub fn time_arg(s: &str) -> Result<i64, String> {
    parse_time(s).map_err(|e| e.to_string())
}

/// Parses an officer, device, case, tag or category id.
pub fn label_arg(s: &str) -> Result<String, String> {
    crate::meta::validate_id("value", s)?;
    Ok(s.to_string())
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
pub fn hit_gap_arg(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=86_400.0 * 366.0).contains(v))
        .map(|v| (v * 1e6).round() as i64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds from 0 to a year"))
}

pub fn lat_lon(s: &str) -> Result<(f64, f64), String> {
    let v = numbers(s, 2, "LAT,LON")?;
    Ok((v[0], v[1]))
}

pub fn bbox(s: &str) -> Result<(f64, f64, f64, f64), String> {
    let v = numbers(s, 4, "MINLAT,MINLON,MAXLAT,MAXLON")?;
    Ok((v[0], v[1], v[2], v[3]))
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

impl SearchArgs {
    /// The library query these arguments ask for (not yet validated: [`Query::validate`]).
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

/// Builds a search from a URL query string (`officer=A&near=51.5,-0.12&radius=100`), with the
/// parsers `footage find` uses. Empty values are skipped (an empty form field means "any");
/// `limit` must be 1 to [`MAX_PAGE`]. The error says which parameter is wrong and why.
pub fn from_query_string(raw: &str) -> Result<SearchArgs, String> {
    let mut a = SearchArgs::default();
    let bad = |k: &str, e: String| format!("{k}: {e}");
    let once = |k: &str, set: bool| {
        if set {
            Err(format!("{k} is given twice"))
        } else {
            Ok(())
        }
    };
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match &*k {
            "officer" => a.officer.push(label_arg(v).map_err(|e| bad(&k, e))?),
            "device" => a.device.push(label_arg(v).map_err(|e| bad(&k, e))?),
            "from" => {
                once(&k, a.from.is_some())?;
                a.from = Some(time_arg(v).map_err(|e| bad(&k, e))?);
            }
            "to" => {
                once(&k, a.to.is_some())?;
                a.to = Some(time_arg(v).map_err(|e| bad(&k, e))?);
            }
            "near" => {
                once(&k, a.near.is_some())?;
                a.near = Some(lat_lon(v).map_err(|e| bad(&k, e))?);
            }
            "radius" => {
                once(&k, a.radius.is_some())?;
                let r = v
                    .parse::<f64>()
                    .map_err(|_| bad(&k, format!("{v:?} is not a number of metres")))?;
                a.radius = Some(r);
            }
            "bbox" => {
                once(&k, a.bbox.is_some())?;
                a.bbox = Some(bbox(v).map_err(|e| bad(&k, e))?);
            }
            "case" => {
                once(&k, a.case.is_some())?;
                a.case = Some(label_arg(v).map_err(|e| bad(&k, e))?);
            }
            "tag" => {
                once(&k, a.tag.is_some())?;
                a.tag = Some(label_arg(v).map_err(|e| bad(&k, e))?);
            }
            "category" => {
                once(&k, a.category.is_some())?;
                a.category = Some(label_arg(v).map_err(|e| bad(&k, e))?);
            }
            "limit" => {
                once(&k, a.limit.is_some())?;
                let n = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(&k, format!("must be a number from 1 to {MAX_PAGE}")))?;
                a.limit = Some(n);
            }
            "hit_gap" => {
                once(&k, a.hit_gap.is_some())?;
                a.hit_gap = Some(hit_gap_arg(v).map_err(|e| bad(&k, e))?);
            }
            "cursor" => {
                once(&k, a.after.is_some())?;
                a.after = Some(v.to_string());
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; known: officer, device, from, to, near, radius, bbox, case, tag, category, limit, hit_gap, cursor"
                ))
            }
        }
    }
    match (a.near.is_some(), a.radius.is_some(), a.bbox.is_some()) {
        (true, false, _) => Err("near needs radius (metres)".into()),
        (false, true, _) => Err("radius needs near (LAT,LON)".into()),
        (true, true, true) => Err("near and bbox cannot be combined".into()),
        _ => Ok(a),
    }
}
