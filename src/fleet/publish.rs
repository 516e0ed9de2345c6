//! `fleet publish`: one station's catalogue into the fleet table, day by day, only the days
//! whose rows changed since the table's current files of that station.
//!
//! Steps: (1) the store's segments grouped by the UTC day of their start (the catalogue's
//! time list; no video read); (2) the table's snapshot, this station's files by day; (3) for
//! each day of either: the live rows (`Store::info`, `Store::track`) and their hash; a day
//! whose one file carries that hash is done; else its old files' rows that are no longer
//! live are kept marked `deleted`, the new file is written (point `fleet.file_written`), and
//! an `add` and a `remove` per old file join the commit; (4) the commit, on the next version
//! (point `fleet.committed` after it); when that version is taken, the snapshot is brought
//! up to date and, if this station's files did not change meanwhile, the same actions are
//! committed on the next free version, else the publish starts over; (5) one audit entry.
//!
//! Invariants: nothing is removed from the table without its rows being carried into the
//! file that replaces it (deleted segments stay as `deleted` rows); a crash at any step
//! leaves the previous version intact and the next publish completes the work.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::actions::{add_action, remove_action};
use super::delta::{self, DataFile, Snapshot};
use super::row::{rows_hash, FleetRow};
use super::{check_station, checkpoint, cleanup, compact, data_file, Fleet};
use crate::audit::Action;
use crate::error::{Error, Result};
use crate::index::query::Query;
use crate::store::Store;

/// Attempts at a commit before giving up (each after other stations took the version).
const MAX_ATTEMPTS: u32 = 50;

/// What a publish did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishReport {
    /// The station published.
    pub station: String,
    /// The table (`<cloud url>/fleet`).
    pub table: String,
    /// The table version this publish committed; `None` when nothing had changed.
    pub version: Option<u64>,
    /// Days whose file was (re)written.
    pub days_written: usize,
    /// Days already up to date.
    pub days_unchanged: usize,
    /// Days whose segments were read from the store (the others' catalogue fingerprint
    /// matched their file's: nothing of them changed since it was written).
    pub days_read: usize,
    /// Live segments published (in the days written).
    pub rows: usize,
    /// Rows kept as deleted (in the days written).
    pub deleted_rows: usize,
    /// Files the commit removed (replaced by the new ones).
    pub files_removed: usize,
    /// Bytes of the data files written.
    pub bytes_written: u64,
    /// Live segments whose record or track could not be read (a damaged or missing volume):
    /// their previously published rows were kept as they were (a segment never published
    /// before is left out until it can be read). `footage verify` tells what is wrong.
    pub unreadable: Vec<u64>,
    /// Commit attempts (more than 1 when other stations committed at the same time).
    pub attempts: u32,
}

/// A day's new file and the actions that put it in the table.
struct DayChange {
    actions: Vec<Value>,
    live: usize,
    deleted: usize,
    removed: usize,
    bytes: u64,
}

/// A day's live rows as the store gives them, and the segments it could not read.
struct DayRows {
    rows: Vec<FleetRow>,
    unreadable: Vec<u64>,
}

/// Where a publish's rows come from: a day's rows, and a fingerprint of what the day's rows
/// are made of, from memory (`None`: no fingerprint, always read the rows).
struct Source<'a> {
    rows_of: &'a mut dyn FnMut(&str) -> Result<DayRows>,
    fingerprint: &'a dyn Fn(&str) -> Option<String>,
}

/// The fingerprint of segments `ids` (one day's, in catalogue order): the table version,
/// the store, and per segment its id, its catalogue flags (tier) and its changed labels and
/// holds. What a row holds besides is fixed at ingest (the commit record and track never
/// change), so equal fingerprints mean equal rows; a pin or a label put back changes it
/// without changing the rows (then the day is read once more, and re-tagged).
fn catalog_fp(store: &Store, store_id: &str, ids: &[u64]) -> String {
    let cat = store.inner.catalog.read();
    let mut h = Sha256::new();
    h.update(super::TABLE_VERSION.to_le_bytes());
    h.update(store_id.as_bytes());
    for &id in ids {
        h.update(id.to_le_bytes());
        h.update(cat.get(id).map_or(u32::MAX, |e| e.flags).to_le_bytes());
        match cat.state(id) {
            None => h.update([0]),
            Some(s) => {
                h.update([1]);
                let st = &s.state;
                for list in [&st.categories, &st.cases, &st.tags, &st.holds] {
                    h.update((list.len() as u64).to_le_bytes());
                    for v in list {
                        h.update((v.len() as u64).to_le_bytes());
                        h.update(v.as_bytes());
                    }
                }
            }
        }
    }
    crate::util::hex(&h.finalize()[..16])
}

/// The `add` of live file `f` again (same path, `dataChange: false`) with catalogue
/// fingerprint `fp`; `None` if the snapshot has no `add` line for it.
fn retag(snap: &Snapshot, f: &DataFile, fp: &str) -> Option<Value> {
    let mut a: Value = serde_json::from_str(snap.adds.get(&f.path)?).ok()?;
    let add = a.get_mut("add")?;
    if !(add["tags"].is_object() || add["tags"].is_null()) {
        return None;
    }
    add["dataChange"] = false.into();
    add["tags"][delta::TAG_CATALOG] = fp.into();
    Some(a)
}

impl Fleet {
    /// Publishes `store`'s catalogue as station `station`. An encrypted store's metadata
    /// (officers, places, labels) would leave the station in plaintext: it is refused unless
    /// `allow_plaintext` says the force accepts that.
    pub fn publish(
        &self,
        store: &Store,
        station: &str,
        allow_plaintext: bool,
    ) -> Result<PublishReport> {
        check_station(station)?;
        if store.config().encryption.is_some() && !allow_plaintext {
            return Err(Error::Invalid(
                "this store is encrypted at rest; the fleet table holds officers, places and labels \
                 in plaintext in the bucket: publish with --allow-plaintext-metadata if the force accepts that"
                    .into(),
            ));
        }
        let store_id = store.config().store_id.clone();
        // Reads below are the publish's own, recorded once at the end: not a query each.
        let quiet = Store {
            inner: std::sync::Arc::clone(&store.inner),
            actor: None,
        };
        let mut by_day: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for r in quiet.find_all(&Query::new()) {
            let r = r?;
            by_day
                .entry(super::row::day_of(r.start_us))
                .or_default()
                .push(r.id);
        }
        let days: BTreeSet<String> = by_day.keys().cloned().collect();
        let mut source = Source {
            rows_of: &mut |day: &str| {
                let ids = by_day.get(day).map(Vec::as_slice).unwrap_or(&[]);
                day_rows(&quiet, station, &store_id, ids)
            },
            fingerprint: &|day: &str| Some(catalog_fp(&quiet, &store_id, by_day.get(day)?)),
        };
        let now_ms = store.inner.now_us().div_euclid(1000);
        let report = self.publish_days(station, &store_id, &days, true, now_ms, &mut source)?;
        store.audit(
            store.actor(),
            Action::FleetPublish,
            None,
            json!({"table": report.table, "station": station, "version": report.version,
                "days_written": report.days_written, "rows": report.rows,
                "deleted_rows": report.deleted_rows}),
        )?;
        Ok(report)
    }

    /// Tests and benchmarks: publishes `rows` (by UTC day of their start) as station
    /// `station`'s rows of those days, as `publish` would from a store holding them; other
    /// days of the station are left as they are.
    #[cfg(feature = "internals")]
    pub fn publish_rows(
        &self,
        station: &str,
        store_id: &str,
        rows: &BTreeMap<String, Vec<FleetRow>>,
    ) -> Result<PublishReport> {
        check_station(station)?;
        let days: BTreeSet<String> = rows.keys().cloned().collect();
        let mut source = Source {
            rows_of: &mut |day: &str| {
                Ok(DayRows {
                    rows: rows.get(day).cloned().unwrap_or_default(),
                    unreadable: Vec::new(),
                })
            },
            fingerprint: &|_: &str| None,
        };
        let now_ms = crate::util::now_us().div_euclid(1000);
        self.publish_days(station, store_id, &days, false, now_ms, &mut source)
    }

    /// Publishes the rows `rows_of` gives for `days` (with `whole`, `days` are all the
    /// station has: its other days in the table have only deleted rows left), committing
    /// again on a lost version and starting over when the station's own files changed.
    fn publish_days(
        &self,
        station: &str,
        store_id: &str,
        days: &BTreeSet<String>,
        whole: bool,
        now_ms: i64,
        source: &mut Source<'_>,
    ) -> Result<PublishReport> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts > MAX_ATTEMPTS {
                return Err(Error::Invalid(format!(
                    "fleet publish: the table's next version was taken {MAX_ATTEMPTS} times in a row"
                )));
            }
            if let Some(r) =
                self.publish_once(station, store_id, (days, whole), now_ms, source, attempts)?
            {
                return Ok(r);
            }
        }
    }

    /// One attempt: `None` if this station's files changed under it (start over).
    fn publish_once(
        &self,
        station: &str,
        store_id: &str,
        (source_days, whole): (&BTreeSet<String>, bool),
        now_ms: i64,
        source: &mut Source<'_>,
        attempts: u32,
    ) -> Result<Option<PublishReport>> {
        let mut snap = self.latest(true)?;
        if snap.version.is_none() {
            delta::create(self, now_ms)?;
            delta::refresh(self, &mut snap)?;
        }
        if let Some(w) = snap.min_writer.filter(|&w| w > 2) {
            return Err(Error::Invalid(format!(
                "fleet publish: the table asks for Delta writer version {w} (another engine upgraded it); \
                 footage writes version 2 and does not publish to it"
            )));
        }
        let mine = files_of(&snap, station);
        let days: BTreeSet<&String> = if whole {
            source_days.iter().chain(mine.keys()).collect()
        } else {
            source_days.iter().collect()
        };
        let mut report = PublishReport {
            station: station.to_string(),
            table: self.table_url(),
            version: None,
            days_written: 0,
            days_unchanged: 0,
            days_read: 0,
            rows: 0,
            deleted_rows: 0,
            files_removed: 0,
            bytes_written: 0,
            unreadable: Vec::new(),
            attempts,
        };
        let mut actions = Vec::new();
        for day in days {
            let old = mine.get(day).map(Vec::as_slice).unwrap_or(&[]);
            let fp = (source.fingerprint)(day);
            if let (Some(fp), [f]) = (fp.as_deref(), old) {
                if f.catalog_fp.as_deref() == Some(fp) {
                    report.days_unchanged += 1;
                    continue;
                }
            }
            let got = (source.rows_of)(day)?;
            report.days_read += 1;
            // A day with an unreadable segment is read again next time.
            let fp = fp.filter(|_| got.unreadable.is_empty());
            report.unreadable.extend(&got.unreadable);
            match self.day_change(got, (station, store_id, day), old, fp.as_deref(), now_ms)? {
                None => {
                    report.days_unchanged += 1;
                    // Same rows, new fingerprint (a pin, a label put back): the file's
                    // `add` again with it, so the day is not read next time.
                    if let (Some(fp), [f]) = (fp, old) {
                        if let Some(a) = retag(&snap, f, &fp) {
                            actions.push(a);
                        }
                    }
                }
                Some(c) => {
                    report.days_written += 1;
                    report.rows += c.live;
                    report.deleted_rows += c.deleted;
                    report.files_removed += c.removed;
                    report.bytes_written += c.bytes;
                    actions.extend(c.actions);
                }
            }
        }
        if actions.is_empty() {
            return Ok(Some(report));
        }
        if let Some(meta) = delta::upgrade(&snap)? {
            actions.insert(0, meta);
        }
        actions.push(json!({"commitInfo": {
            "timestamp": now_ms, "operation": "WRITE",
            "operationParameters": {"mode": "Append", "station": station},
            "engineInfo": format!("footage {}", env!("CARGO_PKG_VERSION")),
        }}));
        loop {
            let version = snap.version.map_or(0, |v| v + 1);
            crate::fail::hook("fleet.before_commit");
            if delta::commit(self, version, &actions)? {
                crate::fail::point("fleet.committed");
                report.version = Some(version);
                if compact::due(version) {
                    // Only a reader's shortcut: the commit stands whatever happens here.
                    let done = delta::refresh(self, &mut snap)
                        .and_then(|()| compact::write(self, &snap, now_ms))
                        .and_then(|()| checkpoint::write(self, &snap, now_ms))
                        .and_then(|()| cleanup::run(self, now_ms).map(|_| ()));
                    if let Err(e) = done {
                        tracing::warn!(version, error = %e, "fleet table: log compaction, checkpoint or cleanup not done");
                    }
                }
                return Ok(Some(report));
            }
            // Another writer took the version: go on if it left this station's files alone.
            delta::refresh(self, &mut snap)?;
            if files_of(&snap, station) != mine {
                return Ok(None);
            }
            report.attempts += 1;
        }
    }

    /// The change of one day: `None` if its one file already holds exactly these live rows.
    /// An unreadable segment keeps the row the old files have for it (not marked deleted).
    fn day_change(
        &self,
        got: DayRows,
        (station, store_id, day): (&str, &str, &str),
        old: &[DataFile],
        catalog_fp: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<DayChange>> {
        let DayRows {
            mut rows,
            unreadable,
        } = got;
        let mut old_rows = None;
        if !unreadable.is_empty() {
            let all = self.rows_of_files(old)?;
            let wanted: BTreeSet<u64> = unreadable.iter().copied().collect();
            rows.extend(
                all.iter()
                    .filter(|r| {
                        !r.deleted && r.store_id == store_id && wanted.contains(&r.segment_id)
                    })
                    .cloned(),
            );
            old_rows = Some(all);
        }
        rows.sort_by(|a, b| (&a.store_id, a.segment_id).cmp(&(&b.store_id, b.segment_id)));
        let live_hash = rows_hash(&rows);
        if let [f] = old {
            if f.live_rows.as_deref() == Some(live_hash.as_str()) {
                return Ok(None);
            }
        }
        let live = rows.len();
        let have: BTreeSet<(String, u64)> = rows
            .iter()
            .map(|r| (r.store_id.clone(), r.segment_id))
            .collect();
        let old_rows = match old_rows {
            Some(r) => r,
            None => self.rows_of_files(old)?,
        };
        let mut carried = BTreeMap::new();
        for mut r in old_rows {
            if !have.contains(&(r.store_id.clone(), r.segment_id)) {
                r.deleted = true;
                carried.insert((r.store_id.clone(), r.segment_id), r);
            }
        }
        if rows.is_empty() && carried.is_empty() && old.is_empty() {
            return Ok(None);
        }
        let deleted = carried.len();
        rows.extend(carried.into_values());
        rows.sort_by(|a, b| (&a.store_id, a.segment_id).cmp(&(&b.store_id, b.segment_id)));
        let path = format!(
            "day={day}/station={station}/{store_id}-{}.parquet",
            &live_hash[..32]
        );
        let bytes = data_file::encode(&rows)?;
        let file = DataFile {
            path: path.clone(),
            station: station.to_string(),
            day: day.to_string(),
            size: bytes.len() as u64,
            live_rows: Some(live_hash),
            min_start_us: None,
            max_end_us: None,
            bbox: None,
            officers: None,
            devices: None,
            labels: None,
            catalog_fp: catalog_fp.map(str::to_string),
        };
        self.put(&path, bytes)?;
        crate::fail::point("fleet.file_written");
        let mut actions = vec![add_action(&path, &file, &rows, now_ms)];
        // A file rewritten under the same name (a publish cut short) is added again, not removed.
        actions.extend(
            old.iter()
                .filter(|f| f.path != path)
                .map(|f| remove_action(f, now_ms)),
        );
        Ok(Some(DayChange {
            removed: actions.len() - 1,
            actions,
            live,
            deleted,
            bytes: file.size,
        }))
    }
}

/// The rows of segments `ids` (one day's) of `store`: a segment gone meanwhile is left out,
/// one that cannot be read is named in `unreadable` (and logged) instead of failing the
/// publish.
fn day_rows(store: &Store, station: &str, store_id: &str, ids: &[u64]) -> Result<DayRows> {
    let mut out = DayRows {
        rows: Vec::with_capacity(ids.len()),
        unreadable: Vec::new(),
    };
    for &id in ids {
        match FleetRow::of(store, station, store_id, id) {
            Ok(Some(r)) => out.rows.push(r),
            Ok(None) => {}
            Err(
                e @ (Error::Io { .. }
                | Error::Corruption { .. }
                | Error::SegmentCorrupt { .. }
                | Error::Unavailable { .. }),
            ) => {
                tracing::warn!(segment = id, error = %e, "fleet publish: segment unreadable, its published row is kept");
                out.unreadable.push(id);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// `station`'s live files, by day.
fn files_of(snap: &Snapshot, station: &str) -> BTreeMap<String, Vec<DataFile>> {
    let mut out: BTreeMap<String, Vec<DataFile>> = BTreeMap::new();
    for f in snap.files.values().filter(|f| f.station == station) {
        out.entry(f.day.clone()).or_default().push(f.clone());
    }
    out
}
