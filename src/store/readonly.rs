//! Read-only opens ([`Store::open_read_only`]): a store that another process (the service)
//! owns and writes, opened beside it without its locks, RocksDB's "secondary instance". It
//! sees what was committed up to its open and catches up when asked ([`Store::refresh`]).
//!
//! Invariants:
//! - nothing in the store directory or its data dirs is created, written, cut, renamed,
//!   removed or chmod-ed: files are opened read-only, no lock is taken, no checkpoint is
//!   written, no torn tail is cut, nothing is appended to the audit log (reads that must be
//!   recorded go to an [`AuditSink`], else fail), no thread is started;
//! - every mutating `Store` method fails with [`Error::ReadOnly`] before it touches anything;
//! - volumes are read with `pread`, never memory-mapped: the owner may cut a volume back
//!   (after a failed fsync, even a seal record), and a read past the new end must be an
//!   error, not a SIGBUS;
//! - a commit record is applied only when its whole record passes both CRCs: the writer makes
//!   a segment's chunks durable before it writes its commit record, so every chunk a visible
//!   commit names is complete. Anything after the last valid record of an unsealed volume (a
//!   record being written, or a torn tail a crash left) is "not yet": the next `refresh`
//!   scans again from there. In an unsealed volume an invalid record is "not yet" too, even
//!   with valid records after it (records are appended in order: nothing after it is taken);
//! - `refresh` reads each volume only from where its last scan stopped (cost proportional to
//!   what is new). When it cannot know what it missed (a volume it had not read to its seal
//!   vanished, a volume id it never saw came and went, a volume is now shorter than what was
//!   read) it reloads from the newest checkpoint as open does; the owner writes a checkpoint
//!   before it removes a volume, so that checkpoint holds what the volume held;
//! - a change record that is a delta on a state not seen yet, or names a segment whose
//!   commit is not seen yet, is kept and tried again at the next refreshes (records in
//!   different volumes become visible in any order).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;

use super::{DataDir, Inner, OpenReport, Store};
use crate::catalog::{checkpoint, Catalog, VolumeState};
use crate::config::{Config, StoreOptions};
use crate::error::{Error, IoContext, Result};
use crate::format::change::ChangeRecord;
use crate::format::commit::CommitRecord;
use crate::index::tracks::TrackStore;
use crate::log::scan::{scan, ScanOutcome};
use crate::log::volume::Volume;

/// Times a load starts again because the owner rotated a checkpoint or removed a volume
/// while it read.
const LOAD_ATTEMPTS: usize = 4;
/// Refreshes a deferred change record waits for what it depends on before it is dropped
/// (and reported) as one whose base is missing.
const DEFER_ROUNDS: u32 = 8;

/// Where the reads and queries of a read-only open are recorded: the owner of the store
/// appends them to its audit log (a read-only open cannot). `footage serve` provides one
/// through its control channel.
///
/// ```no_run
/// use std::sync::Arc;
/// struct Relay;
/// impl footage::AuditSink for Relay {
///     fn append(&self, _actor: &str, _action: &str, _segment: Option<u64>, _details: &str)
///         -> footage::Result<()> {
///         // send (actor, action, segment, details) to the service; Ok once it is recorded
///         Ok(())
///     }
/// }
/// let store = footage::Store::open_read_only_with(
///     "/srv/footage", &footage::StoreOptions::default(), Some(Arc::new(Relay)))?;
/// let viewer = store.with_actor("reviewer (os:uid=1000 user=rev)")?;
/// let _hits = viewer.find(&footage::Query::new())?; // recorded through Relay
/// # Ok::<(), footage::Error>(())
/// ```
pub trait AuditSink: Send + Sync {
    /// Records an entry; returns once the owner has it (with the durability it gives the
    /// action). `details` is JSON text.
    fn append(&self, actor: &str, action: &str, segment: Option<u64>, details: &str) -> Result<()>;
}

/// What a [`Store::refresh`] found.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RefreshReport {
    /// Segments that became visible.
    pub segments: usize,
    /// Change records applied (labels, holds, tiering, deletions).
    pub changes: usize,
    /// Segments whose chunks moved (compaction).
    pub relocated: usize,
    /// Volumes seen for the first time.
    pub new_volumes: usize,
    /// Volumes gone (dropped by retention, replaced by compaction).
    pub removed_volumes: usize,
    /// Volumes read (from where the last scan stopped).
    pub scanned_volumes: usize,
    /// Change records kept for a later refresh (what they depend on is not visible yet).
    pub deferred: usize,
    /// The catalog was reloaded from the newest checkpoint (something was missed).
    pub reloaded: bool,
    /// Damage found in sealed volumes, and change records dropped for a missing base.
    pub damage: Vec<String>,
}

/// A read-only open's own state (`Inner::ro`).
pub(crate) struct ReadOnly {
    sink: Option<Arc<dyn AuditSink>>,
    follow: Mutex<Follow>,
}

/// How far each volume was read.
#[derive(Debug, Clone, Copy)]
struct Pos {
    end: u64,
    sealed: bool,
}

#[derive(Default)]
struct Follow {
    pos: HashMap<u32, Pos>,
    /// One past the highest volume id opened.
    next_id: u32,
    /// The loaded checkpoint's `next_volume_id` and volumes: a file with a lower id that it
    /// does not list was retired before it (a leftover the owner removes at its next open).
    ckpt_next_volume: u32,
    ckpt_volumes: HashSet<u32>,
    deferred: Vec<Deferred>,
}

struct Deferred {
    volume: u32,
    change: ChangeRecord,
    rounds: u32,
}

impl ReadOnly {
    /// Sends an entry to the sink, or refuses the action without one.
    fn relay(&self, actor: &str, action: &str, segment: Option<u64>, details: &str) -> Result<()> {
        match &self.sink {
            Some(sink) => sink.append(actor, action, segment, details),
            None => Err(Error::AuditSinkRequired {
                action: action.to_string(),
            }),
        }
    }
}

impl Store {
    /// Opens, read-only, a store that another process (`footage serve`) owns and writes:
    /// no lock is taken and nothing in the store is ever written. It sees every segment and
    /// change committed before the open; [`Store::refresh`] catches up. Any number can be
    /// open beside the writer. Every method that would change the store fails with
    /// [`Error::ReadOnly`]; reads through an actor handle ([`Store::with_actor`]) fail with
    /// [`Error::AuditSinkRequired`]: use [`Store::open_read_only_with`] and an
    /// [`AuditSink`] to have them recorded by the owner.
    ///
    /// ```no_run
    /// let store = footage::Store::open_read_only("/srv/footage", &Default::default())?;
    /// let before = store.len();
    /// // ... the service ingests ...
    /// let report = store.refresh()?;
    /// assert_eq!(store.len(), before + report.segments);
    /// # Ok::<(), footage::Error>(())
    /// ```
    pub fn open_read_only(root: impl AsRef<Path>, opts: &StoreOptions) -> Result<Store> {
        Store::open_read_only_with(root, opts, None)
    }

    /// [`Store::open_read_only`] with an [`AuditSink`] that records the reads and queries of
    /// actor handles (and [`Store::audit`] calls) in the owner's audit log.
    pub fn open_read_only_with(
        root: impl AsRef<Path>,
        opts: &StoreOptions,
        sink: Option<Arc<dyn AuditSink>>,
    ) -> Result<Store> {
        open_read_only(root.as_ref(), opts, sink)
    }

    /// Whether this store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.ro.is_some()
    }

    /// Catches up with the writer of a read-only open: new segments, label and hold
    /// changes, deletions, evictions, new and removed volumes, compaction moves. Costs what
    /// is new since the last refresh (a reload from the newest checkpoint when something was
    /// missed). On a store opened read-write it does nothing.
    pub fn refresh(&self) -> Result<RefreshReport> {
        match &self.inner.ro {
            Some(ro) => refresh(&self.inner, ro),
            None => Ok(RefreshReport::default()),
        }
    }

    /// `audit_with` on a read-only open: the sink records the entry, which is then read back
    /// from the owner's log (it is written there before the owner answers).
    pub(crate) fn relay_and_read_back(
        &self,
        actor: &str,
        action: &str,
        segment: Option<u64>,
        details: serde_json::Value,
    ) -> Result<crate::audit::AuditEntry> {
        self.relay_audit(actor, action, segment, &details.to_string())
            .unwrap_or(Ok(()))?;
        self.audit_entries(segment, None)?
            .into_iter()
            .rev()
            .find(|e| {
                e.actor == actor && e.action == action && e.segment == segment && e.details == details
            })
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the audit sink accepted {action:?} but the entry is not in the store's                      audit log at {}",
                    self.inner.audit.dir.display()
                ))
            })
    }

    /// Fails with [`Error::AuditSinkRequired`] on a read-only open without a sink: for
    /// actions always audited (export), checked before any byte leaves the store.
    pub(crate) fn audit_reachable(&self, action: &str) -> Result<()> {
        match &self.inner.ro {
            Some(ro) if ro.sink.is_none() => Err(Error::AuditSinkRequired {
                action: action.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Records an entry for a read-only open through its sink.
    pub(crate) fn relay_audit(
        &self,
        actor: &str,
        action: &str,
        segment: Option<u64>,
        details: &str,
    ) -> Option<Result<()>> {
        self.inner
            .ro
            .as_ref()
            .map(|ro| ro.relay(actor, action, segment, details))
    }
}

impl Inner {
    /// Fails with [`Error::ReadOnly`] on a read-only open.
    pub(crate) fn writable(&self, what: &str) -> Result<()> {
        if self.ro.is_some() {
            return Err(Error::ReadOnly {
                what: what.to_string(),
            });
        }
        Ok(())
    }

    /// On a read-only open, a refresh whose failure is left to the caller's own retry (a
    /// reader whose chunks moved); nothing on a read-write one.
    pub(crate) fn catch_up(&self) {
        if let Some(ro) = &self.ro {
            let _ = refresh(self, ro);
        }
    }

    /// The retention policy; a read-only open reads it and never writes the default.
    pub(crate) fn load_policy(&self) -> Result<crate::retention::policy::Policy> {
        use crate::retention::policy::{Policy, POLICY_FILE};
        if self.ro.is_none() {
            return Policy::load_or_create(&self.root);
        }
        let path = self.root.join(POLICY_FILE);
        let text = fs::read_to_string(&path).at(&path)?;
        Policy::parse(&text, &path)
    }
}

fn open_read_only(
    root: &Path,
    opts: &StoreOptions,
    sink: Option<Arc<dyn AuditSink>>,
) -> Result<Store> {
    let config_path = root.join(crate::config::CONFIG_FILE);
    let text = match fs::read_to_string(&config_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoStore {
                path: root.to_path_buf(),
            })
        }
        Err(e) => return Err(Error::io(&config_path, e)),
    };
    let config: Config = toml::from_str(&text).map_err(|e| Error::Config {
        path: config_path.clone(),
        what: e.to_string(),
    })?;
    config.validate(&config_path)?;
    let store_id = config.store_id_bytes().ok_or_else(|| Error::Config {
        path: config_path.clone(),
        what: "bad store_id".into(),
    })?;
    let crypt = super::open::store_crypt(root, &config, store_id, opts)?;
    let audit = crate::audit::AuditLog::open_read_only(root, store_id)?;
    let dirs: Vec<DataDir> = (0..config.data_dirs.len())
        .map(|i| DataDir {
            index: i as u16,
            path: config.data_dir(root, i).unwrap_or_default(),
            failed: Mutex::new(None),
        })
        .collect();
    let loaded = load(root, store_id, &dirs)?;
    let scrub = super::check::ScrubShared::load(root)?;
    // Handles on the store directory, never locked: the owner holds the locks.
    let handle = || fs::File::open(root).at(root);
    let cat = loaded.cat;
    let inner = Arc::new(Inner {
        root: root.to_path_buf(),
        store_id,
        dirs,
        volumes: RwLock::new(loaded.volumes),
        writers: Mutex::new(HashMap::new()),
        next_segment_id: AtomicU64::new(cat.next_segment_id),
        next_lsn: AtomicU64::new(cat.next_lsn),
        next_volume_id: Mutex::new(cat.next_volume_id.max(loaded.follow.next_id)),
        next_dir: AtomicUsize::new(0),
        since_checkpoint: AtomicU64::new(0),
        checkpoint_seq: Mutex::new(0),
        checkpoint_error: Mutex::new(None),
        gate: RwLock::new(()),
        pending: Mutex::new(HashSet::new()),
        pending_cv: Condvar::new(),
        change_lock: Mutex::new(()),
        tier: Mutex::new(None),
        punch_holes: std::sync::atomic::AtomicBool::new(false),
        crypt,
        catalog: RwLock::new(cat),
        report: loaded.report,
        config,
        audit,
        scrub,
        ro: Some(ReadOnly {
            sink,
            follow: Mutex::new(loaded.follow),
        }),
        _lock: handle()?,
        _dir_lock: handle()?,
    });
    Ok(Store { inner, actor: None })
}

struct Loaded {
    cat: Catalog,
    volumes: HashMap<u32, Arc<Volume>>,
    follow: Follow,
    report: OpenReport,
}

/// Loads the catalog as open does (newest checkpoint, then the log after it), reading only.
fn load(root: &Path, store_id: [u8; 16], dirs: &[DataDir]) -> Result<Loaded> {
    let catalog_dir = root.join("catalog");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt >= LOAD_ATTEMPTS;
        let mut report = OpenReport::default();
        let listed = checkpoint::list(&catalog_dir)?;
        let Some((mut cat, tracks_len)) = read_checkpoint(&listed, &store_id, &mut report)? else {
            if last {
                return Err(Error::Invalid(format!(
                    "the checkpoints in {} kept vanishing while they were read; try again",
                    catalog_dir.display()
                )));
            }
            continue; // a checkpoint vanished under us (rotated): list again
        };
        let tracks = match TrackStore::open_read_only(&catalog_dir, &store_id, tracks_len)? {
            Some(t) => t,
            None if !last => continue,
            None => {
                report.bad_checkpoints.push(format!(
                    "{}: shorter than the checkpoint needs or damaged; catalog rebuilt from the log",
                    catalog_dir
                        .join(crate::index::tracks::TRACKS_FILE)
                        .display()
                ));
                report.checkpoint = None;
                cat = Catalog::new();
                TrackStore::open_read_only(&catalog_dir, &store_id, 0)?
                    .ok_or_else(|| Error::Invalid("cannot read the track file".into()))?
            }
        };
        cat.index.tracks = tracks;
        let mut follow = Follow {
            ckpt_next_volume: cat.next_volume_id,
            ckpt_volumes: cat.volumes.keys().copied().collect(),
            ..Follow::default()
        };
        let files = list_all(dirs, &follow, &mut report);
        // A volume the checkpoint lists that is gone: retired after it. If the owner wrote a
        // newer checkpoint meanwhile, start again from that one.
        let mut missing = Vec::new();
        let mut never_made = Vec::new();
        for (id, v) in &cat.volumes {
            let dir_ok = dirs
                .get(usize::from(v.dir))
                .is_some_and(|d| d.failed.lock().is_none());
            if files.contains_key(id) || !dir_ok {
                continue;
            }
            if !v.sealed && v.replay_from == 0 {
                never_made.push(*id);
            } else {
                missing.push(*id);
            }
        }
        if !missing.is_empty() && !last && checkpoint::list(&catalog_dir)? != listed {
            continue;
        }
        for id in missing {
            report
                .bad_volumes
                .push(format!("volume {id} is missing from its data dir"));
        }
        for id in never_made {
            cat.volumes.remove(&id);
            cat.volume_live.remove(&id);
        }
        let mut volumes = HashMap::new();
        let mut rec = Records::default();
        let mut ids: Vec<u32> = files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some((dir, path)) = files.get(&id) else {
                continue;
            };
            let vol = match open_volume(path, *dir, store_id, id) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
                Err(e) => {
                    report.bad_volumes.push(e.to_string());
                    continue;
                }
            };
            follow.next_id = follow.next_id.max(id.saturating_add(1));
            let known = cat.volumes.get(&id).copied();
            let len = vol.len()?;
            let mut from = known.map_or(0, |k| k.replay_from);
            if from > len {
                from = 0;
            }
            let pos = if known.is_some_and(|k| k.sealed && k.replay_from >= len) {
                Pos {
                    end: len,
                    sealed: true,
                }
            } else {
                report.scanned_volumes += 1;
                let o = scan_visible(&vol, from)?;
                rec.take(id, o, &mut report.damage)
            };
            note_volume(&mut cat, id, vol.dir, pos);
            follow.pos.insert(id, pos);
            volumes.insert(id, vol);
        }
        let counts = rec.apply(&mut cat, &volumes, &mut follow.deferred);
        report.replayed = counts.segments;
        report.replayed_changes = counts.changes;
        report.relocated = counts.relocated;
        report.damage.extend(counts.damage);
        cat.shrink_to_fit();
        return Ok(Loaded {
            cat,
            volumes,
            follow,
            report,
        });
    }
}

/// The newest usable checkpoint: `None` if a listed file vanished (rotated by the owner).
fn read_checkpoint(
    listed: &[(u64, PathBuf)],
    store_id: &[u8; 16],
    report: &mut OpenReport,
) -> Result<Option<(Catalog, u64)>> {
    for (_, path) in listed {
        let data = match fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                report
                    .bad_checkpoints
                    .push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match checkpoint::decode_file(&data).and_then(|body| checkpoint::decode_body(&body)) {
            Ok((cat, id, tracks_len)) if &id == store_id => {
                report.checkpoint = Some(path.display().to_string());
                return Ok(Some((cat, tracks_len)));
            }
            Ok(_) => report
                .bad_checkpoints
                .push(format!("{}: belongs to another store", path.display())),
            Err(crate::format::DecodeError::UnsupportedVersion {
                found, supported, ..
            }) => {
                return Err(Error::UnsupportedVersion {
                    what: "checkpoint",
                    path: path.clone(),
                    found,
                    supported,
                })
            }
            Err(e) => report
                .bad_checkpoints
                .push(format!("{}: {e}", path.display())),
        }
    }
    Ok(Some((Catalog::new(), 0)))
}

/// Volume files of every data dir, by id (retired leftovers and unfinished compaction
/// targets left out). A dir that cannot be listed is marked failed.
fn list_all(
    dirs: &[DataDir],
    follow: &Follow,
    report: &mut OpenReport,
) -> HashMap<u32, (u16, PathBuf)> {
    let mut out = HashMap::new();
    for d in dirs {
        let rd = match fs::read_dir(&d.path) {
            Ok(rd) => rd,
            Err(e) => {
                let why = e.to_string();
                report
                    .failed_dirs
                    .push(format!("{}: {why}", d.path.display()));
                *d.failed.lock() = Some(why);
                continue;
            }
        };
        for ent in rd.flatten() {
            let Some(id) = ent
                .file_name()
                .to_str()
                .and_then(crate::log::parse_volume_file_name)
            else {
                continue;
            };
            if id < follow.ckpt_next_volume && !follow.ckpt_volumes.contains(&id) {
                continue; // retired before the checkpoint; the owner removes it
            }
            out.insert(id, (d.index, ent.path()));
        }
    }
    out
}

/// Opens a volume file read-only; `None` if it is not ready (a crash or the owner is
/// creating it: no header yet) or belongs to another store.
fn open_volume(path: &Path, dir: u16, store_id: [u8; 16], id: u32) -> Result<Option<Arc<Volume>>> {
    if super::open::unfinished_volume(path) {
        return Ok(None);
    }
    let v = Volume::open(path, dir, false)?;
    if v.header.store_id != store_id || v.id != id {
        return Ok(None);
    }
    Ok(Some(Arc::new(v)))
}

/// Scans a volume from `from`, keeping only what is visible: in an unsealed volume nothing
/// from the first invalid record on (it is being written).
fn scan_visible(vol: &Volume, from: u64) -> Result<ScanOutcome> {
    let mut o = scan(vol, from);
    if let Some(e) = o.unsupported.take() {
        return Err(e);
    }
    if !o.sealed {
        if let Some(cut) = o.damage.first().map(|d| d.from) {
            o.commits.retain(|(p, _)| *p < cut);
            o.changes.retain(|(p, _)| *p < cut);
            o.damage.clear();
            // `cut` is a header position, so the next scan starts there again.
            o.end = o.end.min(cut);
        }
    }
    Ok(o)
}

/// Records in the volume table what a scan found.
fn note_volume(cat: &mut Catalog, id: u32, dir: u16, pos: Pos) {
    let state = cat.volumes.entry(id).or_insert(VolumeState {
        id,
        dir,
        sealed: pos.sealed,
        replay_from: 0,
    });
    state.dir = dir;
    state.sealed = pos.sealed;
    state.replay_from = pos.end;
}

#[derive(Default)]
struct Counts {
    segments: usize,
    changes: usize,
    relocated: usize,
    damage: Vec<String>,
}

/// Commit and change records found by scans, to apply in LSN order.
#[derive(Default)]
struct Records {
    commits: Vec<(u32, u64, CommitRecord)>,
    changes: Vec<(u32, ChangeRecord, u32)>,
}

impl Records {
    /// Keeps a scan's records; returns where the volume was read to.
    fn take(&mut self, id: u32, o: ScanOutcome, damage: &mut Vec<String>) -> Pos {
        for d in &o.damage {
            damage.push(format!(
                "volume {id} offsets {}..{}: {}",
                d.from, d.to, d.what
            ));
        }
        for (pos, c) in o.commits {
            self.commits.push((id, pos, c));
        }
        for (_, c) in o.changes {
            self.changes.push((id, c, 0));
        }
        Pos {
            end: o.end,
            sealed: o.sealed,
        }
    }

    /// Applies everything in LSN order (with the deferred changes of earlier refreshes);
    /// changes that depend on what is not visible yet go back to `deferred`.
    fn apply(
        mut self,
        cat: &mut Catalog,
        volumes: &HashMap<u32, Arc<Volume>>,
        deferred: &mut Vec<Deferred>,
    ) -> Counts {
        let mut n = Counts::default();
        for d in deferred.drain(..) {
            self.changes.push((d.volume, d.change, d.rounds + 1));
        }
        let mut commits = self.commits;
        let mut changes = self.changes;
        commits.sort_by_key(|(_, _, c)| std::cmp::Reverse(c.lsn));
        changes.sort_by_key(|(_, c, _)| std::cmp::Reverse(c.lsn));
        cat.reserve_exact(commits.len());
        loop {
            let next_commit = commits.last().map(|(_, _, c)| c.lsn);
            let next_change = changes.last().map(|(_, c, _)| c.lsn);
            let commit_first = match (next_commit, next_change) {
                (None, None) => break,
                (Some(a), Some(b)) => a < b,
                (a, _) => a.is_some(),
            };
            if commit_first {
                let Some((vol, pos, c)) = commits.pop() else {
                    break;
                };
                if cat.apply_commit(&c, vol, pos) {
                    n.segments += 1;
                    continue;
                }
                // A second commit record of a known segment: a copy made by compaction.
                let old = cat.get(c.segment_id).copied().and_then(|e| {
                    let v = volumes.get(&e.meta_volume)?;
                    let (_, payload) = v.read_record(e.meta_offset()).ok()?;
                    CommitRecord::decode(&payload, false)
                        .ok()
                        .filter(|o| o.segment_id == c.segment_id)
                });
                let newer = old.as_ref().is_none_or(|o| o.lsn < c.lsn);
                if newer && cat.relocate(&c, vol, pos, old.as_ref()) {
                    n.relocated += 1;
                }
            } else {
                let Some((vol, c, rounds)) = changes.pop() else {
                    break;
                };
                let waits = cat.delta_without_base(&c)
                    || (cat.get(c.segment_id).is_none() && c.segment_id >= cat.next_segment_id);
                if waits {
                    if rounds < DEFER_ROUNDS {
                        deferred.push(Deferred {
                            volume: vol,
                            change: c,
                            rounds,
                        });
                    } else {
                        n.damage.push(format!(
                            "volume {vol}: the change record (LSN {}) of segment {} applies to \
                             a state (LSN {}) that never became visible; its labels may be out \
                             of date",
                            c.lsn,
                            c.segment_id,
                            c.base_lsn.unwrap_or(0)
                        ));
                    }
                    continue;
                }
                if cat.apply_change(&c, vol) {
                    n.changes += 1;
                }
            }
        }
        n
    }
}

/// One `refresh` of a read-only open.
fn refresh(inner: &Inner, ro: &ReadOnly) -> Result<RefreshReport> {
    let mut follow = ro.follow.lock();
    let mut out = RefreshReport::default();
    let mut scratch = OpenReport::default();
    let files = list_all(&inner.dirs, &follow, &mut scratch);
    let mut reload = false;
    // Volumes gone since the last refresh.
    let gone: Vec<u32> = follow
        .pos
        .keys()
        .filter(|id| !files.contains_key(id))
        .copied()
        .collect();
    for id in &gone {
        if follow.pos.get(id).is_some_and(|p| !p.sealed) {
            // Not read to its seal: what it held after our position is only in the
            // checkpoint the owner wrote before removing it.
            reload = true;
        }
    }
    // A volume id never seen that is gone already (made and removed between refreshes).
    let max_listed = files.keys().copied().max().unwrap_or(0);
    if (follow.next_id..max_listed).any(|id| !files.contains_key(&id)) {
        reload = true;
    }
    let mut rec = Records::default();
    let mut opened: Vec<(u32, Arc<Volume>, Pos)> = Vec::new();
    if !reload {
        let mut ids: Vec<u32> = files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let known = follow.pos.get(&id).copied();
            if known.is_some_and(|p| p.sealed) {
                continue;
            }
            let vol = match (known, inner.volume(id)) {
                (Some(_), Some(v)) => v,
                _ => {
                    let Some((dir, path)) = files.get(&id) else {
                        continue;
                    };
                    match open_volume(path, *dir, inner.store_id, id) {
                        Ok(Some(v)) => v,
                        // Being created (or vanished since the listing): next time.
                        Ok(None) => continue,
                        Err(Error::Io { source, .. })
                            if source.kind() == std::io::ErrorKind::NotFound =>
                        {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let from = known.map_or(0, |p| p.end);
            if vol.len()? < from {
                // Cut back (a write the owner failed to make durable): start over.
                reload = true;
                break;
            }
            out.scanned_volumes += 1;
            let o = scan_visible(&vol, from)?;
            let pos = rec.take(id, o, &mut out.damage);
            if known.is_none() {
                out.new_volumes += 1;
            }
            opened.push((id, vol, pos));
        }
    }
    if reload {
        let before = inner.catalog.read().len();
        let loaded = load(&inner.root, inner.store_id, &inner.dirs)?;
        let after = loaded.cat.len();
        out = RefreshReport {
            segments: after.saturating_sub(before),
            changes: loaded.report.replayed_changes,
            relocated: loaded.report.relocated,
            reloaded: true,
            deferred: loaded.follow.deferred.len(),
            damage: loaded.report.damage.clone(),
            ..RefreshReport::default()
        };
        let vols_before: HashSet<u32> = inner.volumes.read().keys().copied().collect();
        out.new_volumes = loaded
            .volumes
            .keys()
            .filter(|id| !vols_before.contains(id))
            .count();
        out.removed_volumes = vols_before
            .iter()
            .filter(|id| !loaded.volumes.contains_key(id))
            .count();
        // Readers never find a catalog entry whose volume is not in the map: the new
        // volumes join the old ones, the catalog is swapped, then the old ones leave.
        {
            let mut v = inner.volumes.write();
            for (id, vol) in &loaded.volumes {
                v.insert(*id, Arc::clone(vol));
            }
        }
        *inner.catalog.write() = loaded.cat;
        *inner.volumes.write() = loaded.volumes;
        *follow = loaded.follow;
        return Ok(out);
    }
    for (id, vol, pos) in &opened {
        follow.next_id = follow.next_id.max(id.saturating_add(1));
        follow.pos.insert(*id, *pos);
        inner.volumes.write().insert(*id, Arc::clone(vol));
    }
    {
        let volumes = inner.volumes.read().clone();
        let mut cat = inner.catalog.write();
        for (id, vol, pos) in &opened {
            note_volume(&mut cat, *id, vol.dir, *pos);
        }
        let mut deferred = std::mem::take(&mut follow.deferred);
        let counts = rec.apply(&mut cat, &volumes, &mut deferred);
        follow.deferred = deferred;
        out.segments = counts.segments;
        out.changes = counts.changes;
        out.relocated = counts.relocated;
        out.damage.extend(counts.damage);
        // Gone volumes leave only after the moves that replaced them were applied (their
        // old commit records were read above).
        for id in &gone {
            cat.volumes.remove(id);
            cat.volume_live.remove(id);
        }
    }
    for id in &gone {
        inner.volumes.write().remove(id);
        follow.pos.remove(id);
    }
    out.removed_volumes = gone.len();
    out.deferred = follow.deferred.len();
    Ok(out)
}
