//! `Store`: the public face of the engine. Opens a store directory, ingests segments, reads
//! them back, verifies them, and writes checkpoints.
//!
//! ```text
//! <store>/footage.toml          configuration (data dirs, volume and chunk size, store id)
//! <store>/LOCK                  held (flock) by the one process that owns the store, which
//!                               also holds an flock on <store> itself
//! <store>/catalog/checkpoint-*.ckpt   catalog snapshots (newest two)
//! <data dir>/vol-00000001.ftv   volumes, in every data dir (by default <store>/data)
//! <store>/audit/                the hash-chained audit log (see `crate::audit`)
//! ```
//!
//! Invariants:
//! - one process owns a store (flocks on LOCK and on the store directory); inside it every method is safe to call from
//!   many threads; other processes may open it read-only beside the owner (`readonly.rs`:
//!   no lock, no write of any kind, catch-up by `Store::refresh`);
//! - a segment is visible (in the catalog) only once its chunks and then its commit record
//!   are durable; it is acknowledged (commit returns) only after that;
//! - the catalog lock is never held while waiting for an fsync;
//! - every change (ingest, label and hold changes, export) is in the audit log, durably,
//!   before it is acknowledged.
//!
//! Rooms: the core path at the top (`open/`, `ingest.rs`, `read.rs`, `volumes.rs`,
//! `checkpointing.rs`, `info.rs`, `find.rs`, `latest.rs`, `stats.rs`, `audit.rs`, the
//! read-only `readonly.rs` + `follow/`, ...); `integrity/` (verify, scrub, repair);
//! `lifecycle/` (changes, pins, tiering, restore, compaction, export, recover); `upload/`
//! (resumable upload sessions).

pub(crate) mod audit;
mod checkpointing;
mod counters;
mod find;
mod follow;
mod info;
mod ingest;
pub(crate) mod integrity;
mod latest;
pub(crate) mod lifecycle;
mod open;
use crate::types::{PinnedUntil, SegmentId, TierState, Timestamp};
pub use crate::util::{hex, now_us};
pub(crate) use lifecycle::pin::show_pin;
mod read;
mod readcache;
mod readonly;
mod space;
mod stats;
mod volumes;
pub(crate) use lifecycle::tiering::RunClock;
pub(crate) mod upload;

pub(crate) use audit::check_actor;
#[cfg(feature = "server")]
pub(crate) use audit::query_details;
pub use audit::SYSTEM_ACTOR;
pub use integrity::verified::VerifiedReader;
pub use lifecycle::export::Exported;

pub use counters::IngestCounts;
pub use find::IndexStats;
pub use ingest::{Committed, SegmentWriter};
pub use integrity::check::SCRUB_STATE;
pub use integrity::lost::LostSegment;
pub use integrity::repair::RepairOutcome;
pub use integrity::scrub::{ScrubHandle, ScrubOptions, ScrubStatus};
pub use integrity::verify::{
    CorruptSegment, FindingInfo, ScrubSummary, VerifyOptions, VerifyReport,
};
pub use lifecycle::change::Change;
pub use lifecycle::compact::CompactSummary;
pub use lifecycle::recover::RecoverReport;
pub use lifecycle::restore::RestoreOutcome;
pub use lifecycle::restore_queue::{
    RestoreRun, RestoreStats, RunLimits, MAX_FAILURES, RESTORE_QUEUE, RETRY_STREAK,
};
pub use open::OpenReport;
pub use read::SegmentReader;
pub use readonly::{AuditSink, RefreshReport};
pub use stats::{DiskStats, PinStats, PinnedSegment, Stats, VolumeStats};
pub use upload::checksum::{ChecksumAlgorithm, ChecksumHeaderError, UploadChecksum};
pub use upload::{
    NewUpload, UploadOptions, UploadPatch, UploadRefusal, UploadStats, UploadStatus,
    PROGRESS_EVERY as UPLOAD_PROGRESS_EVERY,
};

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::config::{Config, StoreOptions};
use crate::error::{Error, Result};
use crate::format::commit::CommitRecord;
use crate::format::record::Kind;
use crate::log::volume::Volume;
use crate::log::writer::VolumeWriter;

/// Active volumes one data dir keeps open at once (one per footage age bucket).
const MAX_ACTIVE_PER_DIR: usize = 4;
/// Microseconds in a day: volumes group footage by the UTC day it was recorded.
const DAY_US: i64 = 86_400_000_000;

/// A segment id as users see it: a decimal number.
pub fn parse_id(s: &str) -> Result<u64> {
    s.parse::<crate::SegmentId>().map(u64::from)
}

/// One data directory (normally one disk).
pub(crate) struct DataDir {
    pub index: u16,
    pub path: PathBuf,
    /// Why the directory cannot be used, if it cannot.
    pub failed: Mutex<Option<String>>,
}

/// Everything `info` shows about a segment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SegmentInfo {
    /// The segment id.
    pub id: SegmentId,
    /// Id of the officer who wore the camera.
    pub officer: String,
    /// Id of the camera.
    pub device: String,
    /// Recording start.
    pub start: Timestamp,
    /// Recording end.
    pub end: Timestamp,
    /// Length of the video, bytes.
    pub bytes: u64,
    /// SHA-256 of the video (computed at ingest); lower-case hex in JSON
    /// ([`SegmentInfo::sha256_hex`]).
    #[serde(serialize_with = "crate::util::serialize_hex")]
    pub sha256: [u8; 32],
    /// Retention categories.
    pub categories: Vec<String>,
    /// Case ids the segment is attached to.
    pub cases: Vec<String>,
    /// Free tags.
    pub tags: Vec<String>,
    /// Case ids with a legal hold on the segment: while any remains it is never deleted.
    pub holds: Vec<String>,
    /// Number of GPS fixes in its track.
    pub gps_fixes: usize,
    /// Where its bytes are.
    pub tier: TierState,
    /// Kept local by a pin until then; `None` (JSON null) when not pinned.
    pub pinned_until: Option<PinnedUntil>,
    /// When it was committed.
    pub ingested: Timestamp,
    /// The store's clock: `"real"`, or `"simulated"` for a test or demo store.
    pub clock: &'static str,
}

impl SegmentInfo {
    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

pub(crate) struct Inner {
    pub root: PathBuf,
    pub config: Config,
    pub store_id: [u8; 16],
    pub dirs: Vec<DataDir>,
    pub volumes: RwLock<HashMap<u32, Arc<Volume>>>,
    /// Active volume per (data dir, footage age day).
    pub writers: Mutex<HashMap<(u16, i64), Arc<VolumeWriter>>>,
    pub catalog: RwLock<Catalog>,
    /// Commits hold it shared from appending their commit record until the catalog has it;
    /// a checkpoint holds it exclusively, so it never misses a durable commit.
    pub gate: RwLock<()>,
    /// Dedup keys of commits in flight, so two docks sending the same file store it once.
    pub pending: Mutex<HashSet<u64>>,
    pub pending_cv: Condvar,
    /// Serialises changes to segments (each computes a new state from the current one).
    pub change_lock: Mutex<()>,
    /// The cloud tier, connected on first use.
    pub tier: Mutex<Option<Arc<crate::tier::Tier>>>,
    /// Whether evictions and deletions punch their chunks out at once (default) or leave
    /// them for compaction (`Store::set_punch_holes`, for benchmarks).
    pub punch_holes: std::sync::atomic::AtomicBool,
    /// The store key's sealing context when the store is encrypted (footage.toml
    /// `encryption`): chunk payloads and cloud copies are sealed with it.
    pub crypt: Option<Arc<crate::crypt::Crypt>>,
    pub next_segment_id: AtomicU64,
    pub next_lsn: AtomicU64,
    pub next_volume_id: Mutex<u32>,
    pub next_dir: AtomicUsize,
    pub since_checkpoint: AtomicU64,
    pub checkpoint_seq: Mutex<u64>,
    /// Why the last automatic checkpoint failed, until one succeeds.
    pub checkpoint_error: Mutex<Option<String>>,
    pub report: OpenReport,
    /// The audit log (`<root>/audit/`).
    pub audit: Arc<crate::audit::AuditLog>,
    /// Corrupt segments found and the background scrub's cursor (`<root>/scrub/state`).
    pub scrub: integrity::check::ScrubShared,
    /// Set on a read-only open ([`Store::open_read_only`]): nothing may be written.
    pub(crate) ro: Option<readonly::ReadOnly>,
    /// What this process ingested since the open (counters.rs, for /metrics).
    pub counters: counters::Counters,
    /// Resumable upload sessions (`<root>/uploads/`).
    pub uploads: upload::Registry,
    /// The read cache of evicted footage (`[cache]` in footage.toml; `crate::cache`); none
    /// in a read-only open (which writes nothing) or when not configured.
    pub cache: Option<Arc<crate::cache::BlockCache>>,
    /// Restores in flight, the restore queue's lock and restore counters (restore.rs).
    pub restores: lifecycle::restore::Restores,
    _lock: File,
    /// flock on the store directory: unlike `LOCK`, it cannot be deleted from under the owner.
    _dir_lock: File,
}

/// An open store. Cheap to clone; all clones share one state. A handle made with
/// [`Store::with_actor`] records what it does in the audit log under that actor.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    pub(crate) actor: Option<Arc<str>>,
}

impl Store {
    /// Opens the existing store at `root`. A directory that holds no store (no
    /// `footage.toml`) is refused with [`Error::NoStore`] and left untouched: a typo in a
    /// path never creates an empty store beside the real one. Create stores with
    /// [`Store::create`].
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(root, &StoreOptions::default())
    }
    /// Opens the existing store at `root` with `opts` (the key of an encrypted store; the
    /// other settings are the store's own, from its `footage.toml`).
    pub fn open_with(root: impl AsRef<Path>, opts: &StoreOptions) -> Result<Store> {
        open::open(root.as_ref(), opts, open::Mode::Existing)
    }
    /// Creates a new store at `root` (the directory may exist, but must hold no store:
    /// [`Error::StoreExists`] otherwise) with default settings, and opens it.
    pub fn create(root: impl AsRef<Path>) -> Result<Store> {
        Store::create_with(root, &StoreOptions::default())
    }
    /// Creates a new store at `root` with `opts`, and opens it.
    pub fn create_with(root: impl AsRef<Path>, opts: &StoreOptions) -> Result<Store> {
        open::open(root.as_ref(), opts, open::Mode::Create)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The store's configuration (`footage.toml`).
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
    /// What opening the store found: checkpoint used, log replayed, torn tails cut, damage.
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }
    /// Number of committed segments.
    pub fn len(&self) -> usize {
        self.inner.catalog.read().len()
    }

    /// Whether the store holds no segment.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Ids of all committed segments, ascending.
    pub fn segment_ids(&self) -> Vec<u64> {
        self.inner.catalog.read().live().map(|e| e.id).collect()
    }
    /// Heap bytes held by the catalog.
    pub fn catalog_heap_bytes(&self) -> usize {
        self.inner.catalog.read().heap_bytes()
    }
    /// Starts ingesting a segment; write its bytes to the returned writer, then `commit`.
    /// Its commit is recorded in the audit log (action `ingest`) under this handle's actor.
    pub fn begin_segment(&self, meta: crate::meta::SegmentMeta) -> Result<SegmentWriter> {
        self.inner.writable("ingest")?;
        SegmentWriter::begin(Arc::clone(&self.inner), meta, self.actor().into())
    }
    /// Ingests a whole segment from a reader.
    pub fn ingest_reader(
        &self,
        meta: crate::meta::SegmentMeta,
        mut r: impl std::io::Read,
    ) -> Result<Committed> {
        let mut w = self.begin_segment(meta)?;
        w.copy_from(&mut r)?;
        w.commit()
    }
    /// Ingests a segment held in memory.
    pub fn ingest_bytes(&self, meta: crate::meta::SegmentMeta, data: &[u8]) -> Result<Committed> {
        let mut w = self.begin_segment(meta)?;
        w.write(data)?;
        w.commit()
    }
    /// The id of a stored segment with these bytes from this device, if there is one.
    pub fn find_duplicate(&self, device: &str, sha256: &[u8; 32]) -> Result<Option<u64>> {
        self.inner.find_duplicate(device, sha256)
    }
    /// Writes a checkpoint of the catalog now.
    pub fn checkpoint(&self) -> Result<PathBuf> {
        self.inner.writable("a checkpoint")?;
        let r = self.inner.checkpoint();
        if r.is_ok() {
            *self.inner.checkpoint_error.lock() = None;
        }
        r
    }
    /// Why the last automatic checkpoint (the one every `checkpoint_every` commits) failed, if
    /// none has succeeded since. Such a failure does not fail the commit that triggered it
    /// (the commit is durable in the log); it only makes the next open replay more log.
    pub fn last_checkpoint_error(&self) -> Option<String> {
        self.inner.checkpoint_error.lock().clone()
    }
    /// Writes a final checkpoint and a chain-head entry in the audit log, and releases the
    /// store.
    pub fn close(self) -> Result<()> {
        if self.inner.ro.is_some() {
            return Ok(()); // nothing to write; the owner keeps the store
        }
        if self.inner.since_checkpoint.load(Ordering::Relaxed) > 0 {
            self.inner.checkpoint()?;
        }
        self.inner.audit.close()
    }
}

impl Inner {
    pub fn now_us(&self) -> i64 {
        now_us()
    }
    /// Reads and decodes the commit record of segment `id`.
    pub fn load_commit(&self, id: u64, with_gps: bool) -> Result<CommitRecord> {
        let entry = *self
            .catalog
            .read()
            .get(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let vol = self
            .volume(entry.meta_volume)
            .ok_or_else(|| Error::Unavailable {
                segment: id,
                reason: format!(
                    "volume {} holding its metadata is missing",
                    entry.meta_volume
                ),
            })?;
        let offset = entry.meta_offset();
        let damaged = |what: String| Error::SegmentCorrupt {
            segment: id,
            offset: 0,
            what: format!(
                "its commit record in {} at offset {offset} is damaged: {what}",
                vol.path.display()
            ),
        };
        let (h, payload) = vol.read_record(offset).map_err(|e| match e {
            Error::Corruption { what, .. } => damaged(what),
            other => other,
        })?;
        if h.kind != Kind::Commit || h.a != id {
            return Err(damaged(format!(
                "found another record (kind {:?}, segment {})",
                h.kind, h.a
            )));
        }
        CommitRecord::decode(&payload, with_gps).map_err(|e| damaged(e.to_string()))
    }
    pub fn find_duplicate(&self, device: &str, sha256: &[u8; 32]) -> Result<Option<u64>> {
        let key = crate::catalog::dedup_key(device, sha256);
        let candidates = self.catalog.read().dedup.candidates(key);
        for id in candidates {
            // A candidate whose metadata is unreadable cannot be confirmed: store again.
            if let Ok(rec) = self.load_commit(id, false) {
                if rec.sha256 == *sha256 && rec.meta.device == device {
                    return Ok(Some(id));
                }
            }
        }
        Ok(None)
    }
}
