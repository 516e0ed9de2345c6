//! `fleet find`: a [`Query`] over every station's rows in the fleet table, with the local
//! `find`'s semantics (`crate::index::query`): officers and devices OR together, every other
//! filter ANDs, windows overlap with bounds inclusive, an area needs a fix inside it at a
//! time in the window (`Area::contains`: haversine, R = 6,371,008.8 m), hits are the same
//! intervals. Deleted rows never match.
//!
//! Pruning: a data file is read only if its exact tags (first start, last end, tracks' box,
//! the officers, devices and labels of its live rows) can meet the query; a file without a
//! tag (written by another engine, or with too many values) is read. Without an area, the
//! `track` column is not read. [`FleetAnswer`] says how many of the table's files were read.

use super::delta::DataFile;
use super::row::FleetRow;
use super::Fleet;
use crate::catalog::search::hits_in_fixes;
use crate::error::{Error, Result};
use crate::index::query::{Hit, Query, DEFAULT_HIT_GAP_US};

/// One matching segment of some station: its published row (without its track, which the
/// hits summarise) and where the query met it.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetHit {
    /// The row as the station published it, `track` left empty.
    pub row: FleetRow,
    /// Hit intervals (only with an area), as the local `find` gives them.
    pub hits: Vec<Hit>,
    pub hits_omitted: u64,
}

impl FleetHit {
    /// Whether a verified cloud copy exists (`fleet get` can fetch it).
    pub fn cloud_copy(&self) -> bool {
        self.row.cloud_key.is_some()
    }
}

/// The answer of [`Fleet::find`].
#[derive(Debug, Clone, Default)]
pub struct FleetAnswer {
    /// Sorted by (start, station, store id, segment id).
    pub results: Vec<FleetHit>,
    /// The table version read (`None`: no table yet).
    pub version: Option<u64>,
    /// Live data files of that version.
    pub files: usize,
    /// Files read (the others were pruned by their tags).
    pub files_read: usize,
    /// Rows read from them.
    pub rows_read: usize,
}

fn may_hold(f: &DataFile, q: &Query, lo: i64, hi: i64) -> bool {
    if f.min_start_us.is_some_and(|s| s > hi) || f.max_end_us.is_some_and(|e| e < lo) {
        return false;
    }
    // A key tag lists every value of the file's live rows: a wanted value absent from it
    // cannot match there.
    let meets = |wanted: &[String], have: &Option<Vec<String>>| {
        wanted.is_empty()
            || have
                .as_ref()
                .is_none_or(|h| wanted.iter().any(|w| h.binary_search(w).is_ok()))
    };
    let labels = [
        ("category", &q.category),
        ("case", &q.case),
        ("tag", &q.tag),
    ];
    let wanted_labels = labels
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}:{v}")));
    if !meets(&q.officers, &f.officers)
        || !meets(&q.devices, &f.devices)
        || wanted_labels
            .into_iter()
            .any(|l| !meets(std::slice::from_ref(&l), &f.labels))
    {
        return false;
    }
    match (&q.area, f.bbox) {
        // No fix in the file: no area can be met.
        (Some(_), Some(None)) => false,
        (Some(area), Some(Some(b))) => area.e7_box().meets(b),
        _ => true,
    }
}

/// The hit intervals of `r` for `q` if it matches (an empty list without an area).
fn matches(r: &FleetRow, q: &Query, lo: i64, hi: i64, gap: i64) -> Option<(Vec<Hit>, u64)> {
    let has = |list: &[String], v: &Option<String>| v.as_ref().is_none_or(|v| list.contains(v));
    let any = |wanted: &[String], v: &str| wanted.is_empty() || wanted.iter().any(|w| w == v);
    let ok = !r.deleted
        && r.start_us <= hi
        && r.end_us >= lo
        && any(&q.officers, &r.officer)
        && any(&q.devices, &r.device)
        && has(&r.cases, &q.case)
        && has(&r.tags, &q.tag)
        && has(&r.categories, &q.category);
    if !ok {
        return None;
    }
    match &q.area {
        None => Some((Vec::new(), 0)),
        Some(area) => {
            let (hits, omitted) = hits_in_fixes(area, &r.track, lo, hi, gap);
            (!hits.is_empty()).then_some((hits, omitted))
        }
    }
}

impl Fleet {
    /// [`Fleet::find`], recorded in `local`'s audit log as a `query` under its actor (the
    /// answer reveals other stations' metadata): the query, the table, the results and files
    /// read.
    pub fn find_audited(&self, local: &crate::Store, q: &Query) -> Result<FleetAnswer> {
        let ans = self.find(q)?;
        let mut details = crate::store::audit::query_details(q);
        details["fleet"] = self.table_url().into();
        details["results"] = ans.results.len().into();
        details["files_read"] = ans.files_read.into();
        local.audit(local.actor(), crate::audit::Action::Query, None, details)?;
        Ok(ans)
    }

    /// Every row of the table's latest version (deleted ones included), in file order: what
    /// an engine reading the table sees.
    pub fn rows(&self) -> Result<Vec<FleetRow>> {
        let snap = self.latest(false)?;
        let files: Vec<DataFile> = snap.files.values().cloned().collect();
        drop(snap);
        self.rows_of_files(&files)
    }

    /// Every segment of every station matching `q` (its `limit` and `cursor` are not used:
    /// the whole answer comes back).
    pub fn find(&self, q: &Query) -> Result<FleetAnswer> {
        q.validate()?;
        if q.cursor.is_some() {
            return Err(Error::Invalid("fleet find answers whole: no cursor".into()));
        }
        let snap = self.latest(false)?;
        let lo = q.from_us.unwrap_or(i64::MIN);
        let hi = q.to_us.unwrap_or(i64::MAX);
        let gap = q.hit_gap_us.unwrap_or(DEFAULT_HIT_GAP_US).max(0);
        let mut ans = FleetAnswer {
            version: snap.version,
            files: snap.files.len(),
            ..FleetAnswer::default()
        };
        for f in snap.files.values().filter(|f| may_hold(f, q, lo, hi)) {
            let rows = self.read_rows_with(f, q.area.is_some())?;
            ans.files_read += 1;
            ans.rows_read += rows.len();
            for r in rows {
                if let Some((hits, hits_omitted)) = matches(&r, q, lo, hi, gap) {
                    ans.results.push(FleetHit {
                        row: FleetRow {
                            track: Vec::new(),
                            ..r
                        },
                        hits,
                        hits_omitted,
                    });
                }
            }
        }
        ans.results.sort_by(|a, b| {
            let (a, b) = (&a.row, &b.row);
            (a.start_us, &a.station, &a.store_id, a.segment_id).cmp(&(
                b.start_us,
                &b.station,
                &b.store_id,
                b.segment_id,
            ))
        });
        Ok(ans)
    }
}
