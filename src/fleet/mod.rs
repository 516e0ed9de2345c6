//! Force-wide search (issue 16): every station's catalogue as one Delta Lake table beside
//! the cloud tier, `<cloud url>/fleet/`, that Spark, Databricks, DuckDB, DataFusion or the
//! `deltalake` package read as they are, and `fleet find` / `fleet get` over it.
//!
//! ```text
//! <cloud url>/fleet/_delta_log/00000000000000000000.json   protocol, schema (version 0)
//! <cloud url>/fleet/_delta_log/<version, 20 digits>.json     one publish of one station
//! <cloud url>/fleet/day=<YYYY-MM-DD>/station=<name>/<store id>-<hash>.parquet
//! ```
//! One data file per (station, day): the rows of the segments that started that UTC day
//! ([`FleetRow`], schema in `data_file`). A publish rewrites only the days whose rows changed
//! (a new file, the old one removed in the same commit), so it is incremental; it commits
//! with "create if absent" on the next log version and, when another station won that
//! version, reads the commits it missed and tries again, so many stations publish at once.
//!
//! Invariants:
//! - a data file is written in full before the commit that names it, and its name holds the
//!   hash of the station's live rows it was built from: a publish cut short leaves at most
//!   unreferenced files that the next publish rewrites under the same name and commits;
//! - a station only ever adds and removes files under its own `station=` partition;
//! - readers see a table version, never a part of a publish (Delta's atomic commits);
//! - `find` answers with the local `find`'s exact semantics (`crate::index::query`): the
//!   rows' tracks are tested fix by fix with the same `Area::contains` and hit rules.
//!
//! Here: the connection ([`Fleet`]); `row.rs` (a row, its hash), `data_file.rs` (Parquet),
//! `delta.rs` (the log: snapshot, commit), `actions.rs` (a publish's add and remove actions), `compact.rs` (log compactions, so a reader does not
//! replay every commit), `checkpoint.rs` (Delta checkpoints, the same for other engines), `cleanup.rs`
//! (old commits deleted once a checkpoint older than the log's retention covers them), `publish.rs`, `find.rs`, `get.rs`.

mod actions;
mod checkpoint;
mod cleanup;
mod compact;
mod data_file;
mod delta;
mod find;
mod get;
mod publish;
mod row;

pub use find::{FleetAnswer, FleetHit};
pub use get::{parse_target, Fetched};
pub use publish::PublishReport;
pub use row::{day_of, FleetRow};

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, Result};
use crate::tier::cloud;

/// The table's folder under the cloud url.
pub const TABLE_DIR: &str = "fleet";
/// The version of the table's schema, in its `metaData.configuration` as
/// `footage.fleet.version` (docs/FORMAT.md, "The fleet table").
pub const TABLE_VERSION: u32 = 2;
/// The actor of `fleet` actions in the audit log.
pub const FLEET_ACTOR: &str = "fleet";

/// A connection to the fleet table at `<cloud url>/fleet`.
pub struct Fleet {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    url: String,
    root: ObjPath,
    /// The table as last read: brought up to date (the commits after it) before each
    /// query, so a long-lived connection replays the log once.
    latest: Mutex<delta::Snapshot>,
}

/// Whether `name` may name a station: 1 to 64 of `A-Z a-z 0-9 - _ .`, not starting with a
/// dot (it is a path segment of the table).
pub fn check_station(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "station name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

impl Fleet {
    /// Connects to the table under `cloud_url` (the tier's url in policy.toml; the same
    /// credentials).
    pub fn open(cloud_url: &str) -> Result<Fleet> {
        let store = crate::tier::connect(cloud_url)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(cloud("cannot start the I/O runtime"))?;
        Ok(Fleet {
            store,
            rt,
            url: cloud_url.trim_end_matches('/').to_string(),
            root: ObjPath::from(TABLE_DIR),
            latest: Mutex::new(delta::Snapshot::default()),
        })
    }

    /// Connects to the table under the cloud url of `store`'s policy.toml.
    pub fn for_store(store: &crate::Store) -> Result<Fleet> {
        Fleet::open(&store.inner.load_policy()?.cloud_url)
    }

    /// The same connection, its requests going through `wrap` (tests: a bucket that fails).
    #[cfg(feature = "internals")]
    pub fn map_object_store(
        mut self,
        wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Fleet {
        self.store = wrap(self.store);
        self
    }

    /// The table's url (what an engine is pointed at).
    pub fn table_url(&self) -> String {
        format!("{}/{TABLE_DIR}", self.url)
    }

    /// The cloud url the table lives under.
    pub fn cloud_url(&self) -> &str {
        &self.url
    }

    fn path(&self, rel: &str) -> ObjPath {
        rel.split('/')
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    /// The object at `rel` (relative to the table), or `None` if absent.
    fn read(&self, rel: &str) -> Result<Option<Bytes>> {
        let path = self.path(rel);
        self.rt.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r
                    .bytes()
                    .await
                    .map(Some)
                    .map_err(cloud(format!("read {path}"))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(cloud(format!("read {path}"))(e)),
            }
        })
    }

    /// The rows of a live data file of the table.
    fn read_rows(&self, f: &delta::DataFile) -> Result<Vec<FleetRow>> {
        self.read_rows_with(f, true)
    }

    /// The rows of a live data file, their tracks only `with_track`.
    fn read_rows_with(&self, f: &delta::DataFile, with_track: bool) -> Result<Vec<FleetRow>> {
        let data = self.read(&f.path)?.ok_or_else(|| {
            Error::Invalid(format!("fleet table: data file {} is missing", f.path))
        })?;
        data_file::decode_with(data, &f.station, with_track)
            .map_err(|e| Error::Invalid(format!("{}: {e}", f.path)))
    }

    /// The rows of `files`, in order.
    fn rows_of_files(&self, files: &[delta::DataFile]) -> Result<Vec<FleetRow>> {
        let mut out = Vec::new();
        for f in files {
            out.extend(self.read_rows(f)?);
        }
        Ok(out)
    }

    /// The table's latest version: the cached snapshot with the commits made since (the
    /// whole log, listed, the first time).
    /// `strict`: make sure no log cleanup passed the cached snapshot by (before a publish).
    fn latest(&self, strict: bool) -> Result<MutexGuard<'_, delta::Snapshot>> {
        let mut snap = self
            .latest
            .lock()
            .map_err(|_| Error::Invalid("fleet: a query panicked".into()))?;
        if snap.version.is_none() {
            *snap = delta::snapshot(self)?;
        } else {
            delta::bring_up(self, &mut snap, strict)?;
        }
        Ok(snap)
    }

    /// Writes (or replaces) the object at `rel`.
    fn put(&self, rel: &str, data: Bytes) -> Result<()> {
        let path = self.path(rel);
        self.rt
            .block_on(self.store.put(&path, PutPayload::from_bytes(data)))
            .map(|_| ())
            .map_err(cloud(format!("write {path}")))
    }

    /// Writes the object at `rel` only if there is none: false if one was there.
    fn put_new(&self, rel: &str, data: Bytes) -> Result<bool> {
        let path = self.path(rel);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.rt.block_on(
            self.store
                .put_opts(&path, PutPayload::from_bytes(data), opts),
        ) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(cloud(format!("create {path}"))(e)),
        }
    }

    /// The names of the objects directly under `rel`.
    fn list(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self
            .list_meta(rel, None)?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    /// The names of the objects under `rel` whose path (relative to the table) sorts after
    /// `after` (all of them if `None`).
    fn list_after(&self, rel: &str, after: Option<&str>) -> Result<Vec<String>> {
        Ok(self
            .list_meta(rel, after)?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    /// Deletes the objects at `rels` (relative to the table); one already gone is not an
    /// error. Batched where the store allows (S3, Azure).
    fn delete_all(&self, rels: &[String]) -> Result<()> {
        use futures::StreamExt;
        let paths: Vec<object_store::Result<ObjPath>> =
            rels.iter().map(|r| Ok(self.path(r))).collect();
        let results: Vec<_> = self.rt.block_on(
            self.store
                .delete_stream(futures::stream::iter(paths).boxed())
                .collect(),
        );
        for r in results {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(cloud("delete from the fleet log")(e)),
            }
        }
        Ok(())
    }

    /// The names and modification times (ms since 1970) of the objects directly under `rel`
    /// (not in folders below it) whose path (relative to the table) sorts after `after` (all
    /// of them if `None`).
    fn list_meta(&self, rel: &str, after: Option<&str>) -> Result<Vec<(String, i64)>> {
        use futures::TryStreamExt;
        let path = self.path(rel);
        let listing = match after {
            Some(a) => self.store.list_with_offset(Some(&path), &self.path(a)),
            None => self.store.list(Some(&path)),
        };
        let metas: Vec<_> = self
            .rt
            .block_on(listing.try_collect())
            .map_err(cloud(format!("list {path}")))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                if m.location.prefix_match(&path)?.count() != 1 {
                    return None;
                }
                let name = m.location.filename()?.to_string();
                Some((name, m.last_modified.timestamp_millis()))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
