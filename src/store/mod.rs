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

mod audit;
mod counters;
mod find;
mod follow;
mod ingest;
pub(crate) mod integrity;
mod latest;
pub(crate) mod lifecycle;
mod open;
pub use crate::util::{hex, now_us};
pub(crate) use lifecycle::pin::show_pin;
mod read;
mod readcache;
mod readonly;
mod space;
mod stats;
pub(crate) use lifecycle::tiering::RunClock;
pub(crate) mod upload;

pub(crate) use audit::check_actor;
#[cfg(feature = "server")]
pub(crate) use audit::query_details;
pub use audit::{READ_ACTIONS, SYSTEM_ACTOR};
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

use crate::catalog::{checkpoint, Catalog};
use crate::config::{Config, StoreOptions};
use crate::error::{Error, Result};
use crate::format::change::{FLAG_EVICTED, FLAG_UPLOADED};
use crate::format::commit::CommitRecord;
use crate::format::record::Kind;
use crate::format::volume::VolumeHeader;
use crate::input::time::format_time;
use crate::log::volume::Volume;
use crate::log::writer::VolumeWriter;

/// Active volumes one data dir keeps open at once (one per footage age bucket).
const MAX_ACTIVE_PER_DIR: usize = 4;
/// Microseconds in a day: volumes group footage by the UTC day it was recorded.
const DAY_US: i64 = 86_400_000_000;

/// A segment id as users see it: a decimal number.
pub fn parse_id(s: &str) -> Result<u64> {
    s.trim()
        .parse::<u64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "invalid segment id {s:?}: ids are positive whole numbers"
            ))
        })
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
    pub id: String,
    pub officer: String,
    pub device: String,
    pub start: String,
    pub end: String,
    pub bytes: u64,
    pub sha256: String,
    pub categories: Vec<String>,
    pub cases: Vec<String>,
    pub tags: Vec<String>,
    pub holds: Vec<String>,
    pub gps_fixes: usize,
    pub tier: &'static str,
    /// Kept local by a pin until then (RFC 3339, or `"indefinitely"`); null when not pinned.
    pub pinned_until: Option<String>,
    pub ingested: String,
    /// The store's clock: `"real"`, or `"simulated"` for a test or demo store.
    pub clock: &'static str,
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

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

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

    /// The full metadata of a segment.
    pub fn info(&self, id: u64) -> Result<SegmentInfo> {
        let rec = match self.inner.load_commit(id, true) {
            Ok(rec) => rec,
            Err(e @ Error::NotFound(_)) => return Err(e),
            Err(e) => return self.info_from_cloud(id).map_err(|_| e),
        };
        let state = self.inner.state_with(id, Some(&rec))?;
        let tier = match (
            state.flags & FLAG_UPLOADED != 0,
            state.flags & FLAG_EVICTED != 0,
        ) {
            (true, true) => "cloud",
            (true, false) => "local+cloud",
            _ => "local",
        };
        Ok(SegmentInfo {
            id: id.to_string(),
            officer: rec.meta.officer,
            device: rec.meta.device,
            start: format_time(rec.meta.start_us),
            end: format_time(rec.meta.end_us),
            bytes: rec.bytes,
            sha256: hex(&rec.sha256),
            categories: state.categories,
            cases: state.cases,
            tags: state.tags,
            holds: state.holds,
            gps_fixes: rec.meta.gps.len(),
            tier,
            pinned_until: state
                .pinned_until
                .filter(|t| *t > self.inner.now_us())
                .map(lifecycle::pin::show_pin),
            ingested: format_time(rec.committed_us),
            clock: self.inner.config.clock_name(),
        })
    }

    /// `info` of an uploaded segment whose commit record is out of reach (its disk failed):
    /// the cloud's `meta.json` holds the same facts, the catalog the current state.
    fn info_from_cloud(&self, id: u64) -> Result<SegmentInfo> {
        let flags = self.inner.catalog.read().get(id).map_or(0, |e| e.flags);
        if flags & FLAG_UPLOADED == 0 {
            return Err(Error::NotFound(id.to_string()));
        }
        let state = self
            .inner
            .catalog
            .read()
            .state(id)
            .map(|s| s.state.clone())
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let m = self.inner.tier()?.meta(id)?;
        Ok(SegmentInfo {
            id: id.to_string(),
            officer: m.officer.clone(),
            device: m.device.clone(),
            start: format_time(m.start_us),
            end: format_time(m.end_us),
            bytes: m.bytes,
            sha256: m.sha256.clone(),
            categories: state.categories,
            cases: state.cases,
            tags: state.tags,
            holds: state.holds,
            gps_fixes: m.gps.len(),
            tier: if flags & FLAG_EVICTED != 0 {
                "cloud"
            } else {
                "local+cloud"
            },
            pinned_until: state
                .pinned_until
                .filter(|t| *t > self.inner.now_us())
                .map(lifecycle::pin::show_pin),
            ingested: format_time(m.committed_us),
            clock: self.inner.config.clock_name(),
        })
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
    pub fn volume(&self, id: u32) -> Option<Arc<Volume>> {
        self.volumes.read().get(&id).cloned()
    }

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

    /// The active writer for footage of `day` in data dir `dir`, creating a volume if needed.
    pub fn writer_for(&self, dir: u16, day: i64) -> Result<Arc<VolumeWriter>> {
        self.writable("appending to a volume")?;
        let mut writers = self.writers.lock();
        if let Some(w) = writers.get(&(dir, day)) {
            if !w.is_sealed() {
                return Ok(Arc::clone(w));
            }
        }
        // Keep few volumes open per dir: seal the one holding the oldest footage.
        let in_dir: Vec<(u16, i64)> = writers.keys().filter(|k| k.0 == dir).copied().collect();
        if in_dir.len() >= MAX_ACTIVE_PER_DIR {
            if let Some(oldest) = in_dir
                .iter()
                .filter(|k| k.1 != day)
                .min_by_key(|k| k.1)
                .copied()
            {
                if let Some(w) = writers.remove(&oldest) {
                    self.seal_writer(&w)?;
                }
            }
        }
        let w = Arc::new(self.create_volume(dir, day)?);
        writers.insert((dir, day), Arc::clone(&w));
        Ok(w)
    }

    fn create_volume(&self, dir: u16, day: i64) -> Result<VolumeWriter> {
        let d = self
            .dirs
            .get(usize::from(dir))
            .ok_or_else(|| Error::Invalid(format!("no data dir {dir}")))?;
        if let Some(why) = d.failed.lock().clone() {
            return Err(Error::Io {
                path: d.path.clone(),
                source: std::io::Error::other(why),
            });
        }
        let id = self.allocate_volume_id(dir);
        let header = VolumeHeader {
            volume_id: id,
            store_id: self.store_id,
            created_us: self.now_us(),
            chunk_size: self.config.chunk_size,
            age_day: day,
        };
        let path = d.path.join(crate::log::volume_file_name(id));
        let vol = match Volume::create(&path, dir, header) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                self.forget_volume(id);
                return Err(e);
            }
        };
        let end = crate::format::volume::VOLUME_HEADER_LEN as u64;
        self.volumes.write().insert(id, Arc::clone(&vol));
        Ok(VolumeWriter::new(vol, end, self.config.volume_size))
    }

    /// Takes the next volume id and lists the volume in the catalog (active, replay from its
    /// start) in the same step, under the catalog lock: so every checkpoint lists every volume
    /// with an id below its `next_volume_id` that was not retired (dropped or compacted
    /// away), and open can recognise a retired volume's leftover file by its id.
    pub(crate) fn allocate_volume_id(&self, dir: u16) -> u32 {
        let mut cat = self.catalog.write();
        let id = {
            let mut next = self.next_volume_id.lock();
            let id = *next;
            *next += 1;
            id
        };
        cat.volumes.insert(
            id,
            crate::catalog::VolumeState {
                id,
                dir,
                sealed: false,
                replay_from: 0,
            },
        );
        id
    }

    /// Takes back a volume id whose file was never made.
    pub(crate) fn forget_volume(&self, id: u32) {
        let mut cat = self.catalog.write();
        cat.volumes.remove(&id);
        cat.volume_live.remove(&id);
    }

    /// Seals a writer's volume and records it in the catalog.
    pub fn seal_writer(&self, w: &VolumeWriter) -> Result<()> {
        w.seal(self.now_us())?;
        crate::fail::point("volume.sealed");
        // Everything in a sealed volume is applied by the time a checkpoint can run (it
        // waits for in-flight commits), so replay can skip the whole volume.
        if let Some(v) = self.catalog.write().volumes.get_mut(&w.volume.id) {
            v.sealed = true;
            v.replay_from = w.end();
        }
        Ok(())
    }

    /// Seals a full writer and replaces it with a fresh volume for the same key.
    pub fn rotate(&self, dir: u16, day: i64, full: &Arc<VolumeWriter>) -> Result<()> {
        {
            let mut writers = self.writers.lock();
            if writers
                .get(&(dir, day))
                .is_some_and(|w| Arc::ptr_eq(w, full))
            {
                writers.remove(&(dir, day));
            }
        }
        self.seal_writer(full)
    }

    /// Picks the data dir for a new segment: round robin over the dirs that work.
    pub fn pick_dir(&self) -> Result<u16> {
        let n = self.dirs.len();
        let start = self.next_dir.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let d = &self.dirs[(start + k) % n];
            if d.failed.lock().is_none() {
                return Ok(d.index);
            }
        }
        Err(Error::Invalid(
            "every data dir is unavailable: check the disks listed in footage.toml".into(),
        ))
    }

    pub fn day_of(us: i64) -> i64 {
        us.div_euclid(DAY_US)
    }

    /// Writes a checkpoint. Commits pause while the catalog is serialised (not while it is
    /// compressed and written).
    pub fn checkpoint(&self) -> Result<PathBuf> {
        self.writable("a checkpoint")?;
        let mut seq = self.checkpoint_seq.lock();
        let mut to_sync = Vec::new();
        let (body, tracks_len, (tracks_off, tracks_bytes)) = {
            let _gate = self.gate.write();
            let writers: Vec<Arc<VolumeWriter>> = self.writers.lock().values().cloned().collect();
            let mut cat = self.catalog.write();
            for w in writers {
                let end = w.end();
                if let Some(v) = cat.volumes.get_mut(&w.volume.id) {
                    v.replay_from = end;
                }
                to_sync.push((w, end));
            }
            cat.next_segment_id = cat
                .next_segment_id
                .max(self.next_segment_id.load(Ordering::SeqCst));
            cat.next_lsn = cat.next_lsn.max(self.next_lsn.load(Ordering::SeqCst));
            cat.next_volume_id = cat.next_volume_id.max(*self.next_volume_id.lock());
            self.since_checkpoint.store(0, Ordering::Relaxed);
            cat.compact();
            // Queries go on while the catalog is serialised; commits wait at the gate.
            let cat = parking_lot::RwLockWriteGuard::downgrade(cat);
            (
                checkpoint::encode_body(&cat, &self.store_id),
                cat.index.tracks.len(),
                cat.index.tracks.pending(),
            )
        };
        // Replay must never start beyond what a power cut can leave: make it durable first,
        // and the track bytes the checkpoint names too.
        for (w, end) in to_sync {
            w.sync_to(end)?;
        }
        crate::fail::point("checkpoint.log_durable");
        let track_writer = self.catalog.read().index.tracks.writer()?;
        track_writer.write(tracks_off, &tracks_bytes)?;
        crate::fail::point("checkpoint.tracks_written");
        *seq += 1;
        let file = checkpoint::encode_file(&body, *seq, self.now_us())
            .map_err(|e| Error::io(&self.root, e))?;
        let path = checkpoint::write(&self.root.join("catalog"), *seq, &file)?;
        crate::fail::point("checkpoint.written");
        self.catalog.write().index.tracks.advance(tracks_len)?;
        Ok(path)
    }

    /// Called after each commit: writes a checkpoint every `checkpoint_every` commits.
    ///
    /// A failure does not fail the caller: its commit or change is already durable and in the
    /// log, which a checkpoint only shortcuts, so failing it would tell a dock that footage
    /// stored for good was not stored (a lost acknowledgement). The error is kept for
    /// [`crate::Store::last_checkpoint_error`], the count is kept so the next commit tries
    /// again, and `close` reports it if it still fails then.
    pub fn maybe_checkpoint(&self) {
        let n = self.since_checkpoint.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.config.checkpoint_every && self.checkpoint_seq.try_lock().is_some() {
            match self.checkpoint() {
                Ok(_) => *self.checkpoint_error.lock() = None,
                Err(e) => {
                    self.since_checkpoint.fetch_add(n, Ordering::Relaxed);
                    *self.checkpoint_error.lock() = Some(e.to_string());
                }
            }
        }
    }
}
