//! Opening a store: locks (an flock on `LOCK` and one on the store directory itself),
//! configuration, the newest valid checkpoint, then replay of the log
//! written after it, with torn tails cut back.
//!
//! Invariants:
//! - only record headers and commit records are read (never chunk payloads);
//! - commit records are applied in LSN order; applying one already in the checkpoint is a
//!   no-op; the catalog's tables are sized exactly for the result (no spare capacity);
//! - a torn tail is cut only from a volume that was still active (unsealed); damage inside a
//!   volume is reported and never "repaired" by truncation;
//! - a data dir or volume that cannot be read makes only its own segments unavailable;
//! - a volume header or scanned record in a newer format version fails the open with
//!   [`Error::UnsupportedVersion`]; that volume is never cut.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;

use super::{DataDir, Inner, Store};
use crate::catalog::{checkpoint, Catalog, VolumeState};
use crate::config::{Config, StoreOptions};
use crate::error::{Error, IoContext, Result};
use crate::format::change::ChangeRecord;
use crate::format::commit::CommitRecord;
use crate::index::tracks::TrackStore;
use crate::log::scan::scan;
use crate::log::volume::Volume;
use crate::log::writer::VolumeWriter;

/// What opening the store found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpenReport {
    /// Checkpoint file the catalog was loaded from, if any.
    pub checkpoint: Option<String>,
    /// Checkpoints that were present but unusable, with why.
    pub bad_checkpoints: Vec<String>,
    /// Commit records replayed from the log.
    pub replayed: usize,
    /// Change records (categories, holds, tiering, deletions) replayed from the log.
    pub replayed_changes: usize,
    /// Volumes whose headers were scanned.
    pub scanned_volumes: usize,
    /// Bytes cut from torn volume tails.
    pub torn_bytes: u64,
    /// Damaged regions found inside volumes ("volume N offsets a..b: why").
    pub damage: Vec<String>,
    /// Volumes that could not be opened, with why.
    pub bad_volumes: Vec<String>,
    /// Data dirs that could not be used, with why.
    pub failed_dirs: Vec<String>,
    /// Commit records replayed that moved a segment (copies written by compaction).
    pub relocated: usize,
    /// Files removed at open: volumes retired (compacted away or dropped) before a crash
    /// could remove them, and unfinished compaction targets (`*.ftv.compacting`).
    pub removed_files: Vec<String>,
}

/// Whether `open` may create the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// The store must exist; nothing is created in a directory without `footage.toml`.
    Existing,
    /// The store must not exist yet; the directory is created if needed.
    Create,
}

pub(super) fn open(root: &Path, opts: &StoreOptions, mode: Mode) -> Result<Store> {
    let config_path = root.join(crate::config::CONFIG_FILE);
    match mode {
        // Checked before anything is created (the LOCK file included), and again under the
        // lock below.
        Mode::Existing if !config_path.exists() => {
            return Err(Error::NoStore {
                path: root.to_path_buf(),
            })
        }
        Mode::Existing => {}
        Mode::Create => {
            // An unknown group fails before anything is created.
            let group = match &opts.group {
                Some(name) => Some((name, crate::perms::group_id(name)?)),
                None => None,
            };
            crate::fsio::create_dir_all(root).at(root)?;
            // The store owns its root: 0750 even if the directory was there before (unless
            // someone else owns that directory: then its owner decides).
            match crate::perms::set_dir_mode(root) {
                Err(e) if e.raw_os_error() != Some(libc::EPERM) => return Err(Error::io(root, e)),
                _ => {}
            }
            if let Some((name, gid)) = group {
                crate::perms::give_dir_to_group(root, name, gid)?;
            }
        }
    }
    let lock_path = root.join("LOCK");
    let lock = crate::perms::open_or_create(&lock_path).at(&lock_path)?;
    take_lock(&lock, root, &lock_path)?;
    // `LOCK` can be deleted from under its owner (an operator "clearing a stale lock"), and
    // a new file would lock fine: so the owner also locks the store directory itself, which
    // cannot be replaced while the store is in it. A second writer fails on one or the other.
    let dir_lock = fs::File::open(root).at(root)?;
    take_lock(&dir_lock, root, root)?;
    match (mode, config_path.exists()) {
        (Mode::Existing, false) => {
            return Err(Error::NoStore {
                path: root.to_path_buf(),
            })
        }
        (Mode::Create, true) => {
            return Err(Error::StoreExists {
                path: root.to_path_buf(),
            })
        }
        _ => {}
    }
    let config = Config::load_or_create(root, opts)?;
    let store_id = config.store_id_bytes().ok_or_else(|| Error::Config {
        path: root.join(crate::config::CONFIG_FILE),
        what: "bad store_id".into(),
    })?;
    let group = match &config.group {
        Some(name) => {
            let gid = crate::perms::group_id(name)?;
            crate::perms::give_dir_to_group(root, name, gid)?;
            Some((name.as_str(), gid))
        }
        None => None,
    };
    let crypt = store_crypt(root, &config, store_id, opts)?;
    let mut report = OpenReport::default();
    // The retention policy is written with its defaults on first use, for people to edit;
    // it is read (and validated) only by retention and the cloud tier.
    let policy = root.join(crate::policy::POLICY_FILE);
    if !policy.exists() {
        crate::log::write_atomic(&policy, crate::policy::DEFAULT_POLICY.as_bytes())?;
    }
    let audit = crate::audit::AuditLog::open(root, store_id)?;

    let (mut cat, ckpt_seq, tracks_len) = load_checkpoint(root, &store_id, &mut report)?;
    let catalog_dir = root.join("catalog");
    match TrackStore::open(&catalog_dir, &store_id, tracks_len)? {
        Some(tracks) => cat.index.tracks = tracks,
        None => {
            // The checkpoint relies on track bytes that are gone: rebuild everything from the
            // log (slow, but nothing is lost).
            report.bad_checkpoints.push(format!(
                "{}: shorter than the checkpoint needs or damaged; catalog rebuilt from the log",
                catalog_dir
                    .join(crate::index::tracks::TRACKS_FILE)
                    .display()
            ));
            report.checkpoint = None;
            cat = Catalog::new();
            cat.index.tracks = TrackStore::open(&catalog_dir, &store_id, 0)?
                .ok_or_else(|| Error::Invalid("cannot create the track file".into()))?;
        }
    }

    // Data dirs and the volumes in them.
    let mut dirs = Vec::new();
    let mut volumes: HashMap<u32, Arc<Volume>> = HashMap::new();
    let mut max_file_id = 0u32;
    for i in 0..config.data_dirs.len() {
        let path = config.data_dir(root, i).unwrap_or_default();
        let dir = DataDir {
            index: i as u16,
            path: path.clone(),
            failed: Mutex::new(None),
        };
        let listed = list_volumes(&path, &mut report).map_err(|e| e.to_string());
        // A data dir on another disk is given to the store's group like the root.
        let listed = match group {
            Some((name, gid)) => listed.and_then(|files| {
                crate::perms::give_dir_to_group(&path, name, gid)
                    .map(|_| files)
                    .map_err(|e| e.to_string())
            }),
            None => listed,
        };
        match listed {
            Ok(files) => {
                for (id, file) in files {
                    max_file_id = max_file_id.max(id);
                    if id < cat.next_volume_id && !cat.volumes.contains_key(&id) {
                        // Every volume below the checkpoint's next id is listed in it unless
                        // the store retired it (compaction or drop) before the checkpoint:
                        // this file is what a crash left before it could be removed.
                        crate::fsio::remove_file(&file).at(&file)?;
                        crate::log::sync_dir(&path, "open.retired.dir")?;
                        report.removed_files.push(format!(
                            "{}: volume retired before a crash, removed",
                            file.display()
                        ));
                        continue;
                    }
                    if id >= cat.next_volume_id && unfinished_volume(&file) {
                        // A power cut during `Volume::create`: the name reached the disk but
                        // not the header, so no record was ever written to it.
                        crate::fsio::remove_file(&file).at(&file)?;
                        crate::log::sync_dir(&path, "open.retired.dir")?;
                        report.removed_files.push(format!(
                            "{}: volume whose creation a crash cut short, removed",
                            file.display()
                        ));
                        continue;
                    }
                    match Volume::open(&file, i as u16, true) {
                        Ok(v) if v.header.store_id != store_id => report.bad_volumes.push(format!(
                            "{}: belongs to another store, ignored",
                            file.display()
                        )),
                        Ok(v) if v.id != id || volumes.contains_key(&id) => {
                            report.bad_volumes.push(format!(
                                "{}: volume id {} clashes, ignored",
                                file.display(),
                                v.id
                            ))
                        }
                        Ok(v) => {
                            volumes.insert(id, Arc::new(v));
                        }
                        Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
                        Err(e) => report.bad_volumes.push(e.to_string()),
                    }
                }
            }
            Err(e) => {
                report.failed_dirs.push(format!("{}: {e}", path.display()));
                *dir.failed.lock() = Some(e);
            }
        }
        dirs.push(dir);
    }
    let mut never_made = Vec::new();
    for (id, v) in &cat.volumes {
        let dir_ok = dirs
            .get(usize::from(v.dir))
            .is_some_and(|d| d.failed.lock().is_none());
        if !volumes.contains_key(id) && dir_ok {
            if !v.sealed && v.replay_from == 0 {
                // Listed when its id was taken, but its file was never made (a crash while
                // creating it, or an unfinished compaction target): nothing was in it.
                never_made.push(*id);
                continue;
            }
            report
                .bad_volumes
                .push(format!("volume {id} is missing from data dir {}", v.dir));
        }
    }
    for id in never_made {
        cat.volumes.remove(&id);
        cat.volume_live.remove(&id);
    }

    // Replay the log after the checkpoint.
    let mut commits: Vec<(u32, u64, CommitRecord)> = Vec::new();
    let mut changes: Vec<(u32, ChangeRecord)> = Vec::new();
    let mut active: Vec<(Arc<Volume>, u64)> = Vec::new();
    let mut ids: Vec<u32> = volumes.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let Some(vol) = volumes.get(&id).cloned() else {
            continue;
        };
        let known = cat.volumes.get(&id).copied();
        let len = vol.len()?;
        let mut from = known.map_or(0, |k| k.replay_from);
        if from > len {
            report.damage.push(format!(
                "volume {id} is shorter ({len} bytes) than the checkpoint recorded ({from}): rescanned"
            ));
            from = 0;
        }
        let outcome = if known.is_some_and(|k| k.sealed && k.replay_from >= len) {
            None
        } else {
            report.scanned_volumes += 1;
            Some(scan(&vol, from))
        };
        let (sealed, end) = match outcome {
            None => (true, len),
            Some(o) => {
                if let Some(e) = o.unsupported {
                    return Err(e);
                }
                for d in &o.damage {
                    report.damage.push(format!(
                        "volume {id} offsets {}..{}: {}",
                        d.from, d.to, d.what
                    ));
                }
                for (pos, c) in o.commits {
                    commits.push((id, pos, c));
                }
                for (_, c) in o.changes {
                    changes.push((id, c));
                }
                let sealed = o.sealed || known.is_some_and(|k| k.sealed);
                if !sealed && o.file_len > o.end {
                    // A power cut mid-append: drop the incomplete record(s).
                    crate::fsio::set_len(vol.file(), o.end).at(&vol.path)?;
                    crate::fsio::sync_all(vol.file(), "open.cut_tail").at(&vol.path)?;
                    report.torn_bytes += o.file_len - o.end;
                }
                if !sealed && !o.damage.is_empty() {
                    report
                        .damage
                        .push(format!("volume {id} will be sealed because it is damaged"));
                }
                if !sealed {
                    active.push((Arc::clone(&vol), o.end));
                }
                (sealed, o.end)
            }
        };
        if sealed {
            vol.map_sealed()?;
        }
        let state = cat.volumes.entry(id).or_insert(VolumeState {
            id,
            dir: vol.dir,
            sealed,
            replay_from: 0,
        });
        state.dir = vol.dir;
        state.sealed = sealed;
        state.replay_from = if sealed { end } else { state.replay_from };
    }
    // Commits and changes share one LSN sequence: apply them in it. The tables grow once,
    // by at most what the log holds, and give back what replay did not use (no doubling).
    commits.sort_by_key(|(_, _, c)| std::cmp::Reverse(c.lsn));
    changes.sort_by_key(|(_, c)| std::cmp::Reverse(c.lsn));
    let replaying = !commits.is_empty();
    if replaying {
        cat.reserve_exact(commits.len());
    }
    loop {
        let next_commit = commits.last().map(|(_, _, c)| c.lsn);
        let next_change = changes.last().map(|(_, c)| c.lsn);
        let commit_first = match (next_commit, next_change) {
            (None, None) => break,
            (Some(a), Some(b)) => a < b,
            (a, _) => a.is_some(),
        };
        if commit_first {
            if let Some((vol, pos, c)) = commits.pop() {
                if cat.apply_commit(&c, vol, pos) {
                    report.replayed += 1;
                } else {
                    // A second commit record of a known segment, later in LSN order than
                    // whatever placed it: a copy made by compaction. It wins.
                    let old = cat.get(c.segment_id).copied().and_then(|e| {
                        let v = volumes.get(&e.meta_volume)?;
                        let (_, payload) = v.read_record(e.meta_offset()).ok()?;
                        CommitRecord::decode(&payload, false)
                            .ok()
                            .filter(|o| o.segment_id == c.segment_id)
                    });
                    // Only a newer copy moves it: a rescan of an old volume (one shorter
                    // than its checkpoint said) must not move it back.
                    let newer = old.as_ref().is_none_or(|o| o.lsn < c.lsn);
                    if newer && cat.relocate(&c, vol, pos, old.as_ref()) {
                        report.relocated += 1;
                    }
                }
            }
        } else if let Some((vol, c)) = changes.pop() {
            if cat.delta_without_base(&c) {
                report.damage.push(format!(
                    "volume {vol}: the change record (LSN {}) of segment {} applies to a \
                     state (LSN {}) whose record is missing; the segment's labels may be \
                     out of date",
                    c.lsn,
                    c.segment_id,
                    c.base_lsn.unwrap_or(0)
                ));
            }
            if cat.apply_change(&c, vol) {
                report.replayed_changes += 1;
            }
        }
    }
    if replaying {
        cat.shrink_to_fit();
    }
    // Segments whose commit record now points at an unknown volume stay listed: `stats` and
    // reads report them unavailable.
    let next_volume_id = cat.next_volume_id.max(max_file_id.saturating_add(1));
    let scrub = super::integrity::check::ScrubShared::load(root)?;
    // Upload sessions reserved segment ids that no commit record names yet: never reuse them.
    let (uploads, upload_floor, bad_uploads) = super::upload::Registry::load(root)?;
    report.damage.extend(bad_uploads);
    let cache = open_cache(root, &config, store_id, &cat);
    let inner = Arc::new(Inner {
        cache,
        root: root.to_path_buf(),
        store_id,
        dirs,
        volumes: RwLock::new(volumes),
        writers: Mutex::new(HashMap::new()),
        next_segment_id: AtomicU64::new(cat.next_segment_id.max(upload_floor)),
        next_lsn: AtomicU64::new(cat.next_lsn),
        next_volume_id: Mutex::new(next_volume_id),
        next_dir: AtomicUsize::new(0),
        since_checkpoint: AtomicU64::new(
            (report.replayed + report.replayed_changes + report.relocated) as u64,
        ),
        checkpoint_seq: Mutex::new(ckpt_seq),
        checkpoint_error: Mutex::new(None),
        counters: Default::default(),
        gate: RwLock::new(()),
        pending: Mutex::new(HashSet::new()),
        pending_cv: Condvar::new(),
        change_lock: Mutex::new(()),
        tier: Mutex::new(None),
        punch_holes: std::sync::atomic::AtomicBool::new(true),
        crypt,
        restores: Default::default(),
        catalog: RwLock::new(cat),
        report,
        config,
        audit,
        scrub,
        ro: None,
        uploads,
        _lock: lock,
        _dir_lock: dir_lock,
    });
    // Recovery itself is crash-tested (tests/kill_campaign.rs): the log is replayed, torn
    // tails are cut, and the checkpoint below is still to come.
    crate::fail::point("open.replayed");
    reopen_active(&inner, active)?;
    if inner
        .since_checkpoint
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
        || inner.report.torn_bytes > 0
    {
        // Only a shortcut for the next open (replay is idempotent), so a full disk must not
        // keep the store from opening: the error is kept for `last_checkpoint_error`.
        if let Err(e) = inner.checkpoint() {
            *inner.checkpoint_error.lock() = Some(e.to_string());
            // `close` tries again.
            inner
                .since_checkpoint
                .store(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Ok(Store { inner, actor: None })
}

/// The read cache named by `[cache]`, if any. A cache that cannot be opened is logged and
/// left out: the store works without it (every read of evicted footage goes to the cloud).
fn open_cache(
    root: &Path,
    config: &Config,
    store_id: [u8; 16],
    cat: &crate::catalog::Catalog,
) -> Option<Arc<crate::cache::BlockCache>> {
    let cc = config.cache.as_ref().filter(|c| c.max_bytes > 0)?;
    let dir = cc.dir(root);
    match crate::cache::BlockCache::open(&dir, store_id, config.encrypted(), cc.max_bytes, |s| {
        cat.get(s).is_some()
    }) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "the read cache cannot be opened; reading evicted footage from the cloud only");
            None
        }
    }
}

/// The sealing context of an encrypted store; refuses a missing or wrong key before anything
/// else is read or written.
pub(super) fn store_crypt(
    root: &Path,
    config: &Config,
    store_id: [u8; 16],
    opts: &StoreOptions,
) -> Result<Option<Arc<crate::crypt::Crypt>>> {
    let Some(expected) = config.key_id.clone() else {
        return Ok(None);
    };
    let path = root.join(crate::config::CONFIG_FILE);
    let key = opts.key.clone().ok_or_else(|| Error::KeyRequired {
        path: root.to_path_buf(),
        key_id: expected.clone(),
    })?;
    let got = key.id();
    if !got.eq_ignore_ascii_case(&expected) {
        return Err(Error::WrongKey {
            path,
            expected,
            got,
        });
    }
    Ok(Some(Arc::new(crate::crypt::Crypt::new(key, store_id))))
}

/// Unsealed volumes take writes again (one per data dir and age day); the others are sealed.
fn reopen_active(inner: &Inner, active: Vec<(Arc<Volume>, u64)>) -> Result<()> {
    let damaged: HashSet<String> = inner.report.damage.iter().cloned().collect();
    for (vol, end) in active {
        let w = Arc::new(VolumeWriter::new(
            Arc::clone(&vol),
            end,
            inner.config.volume_size,
        ));
        let key = (vol.dir, vol.header.age_day);
        let is_damaged = damaged
            .iter()
            .any(|d| d.starts_with(&format!("volume {} ", vol.id)));
        let full = end + u64::from(inner.config.chunk_size) > inner.config.volume_size;
        let mut writers = inner.writers.lock();
        if is_damaged || full || writers.contains_key(&key) {
            drop(writers);
            inner.seal_writer(&w)?;
        } else {
            writers.insert(key, w);
        }
    }
    Ok(())
}

fn load_checkpoint(
    root: &Path,
    store_id: &[u8; 16],
    report: &mut OpenReport,
) -> Result<(Catalog, u64, u64)> {
    let files = checkpoint::list(&root.join("catalog"))?;
    let newest = files.first().map_or(0, |f| f.0);
    for (seq, path) in files {
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                report
                    .bad_checkpoints
                    .push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let decoded = checkpoint::decode(&data);
        match decoded {
            Ok((cat, id, tracks_len)) if &id == store_id => {
                report.checkpoint = Some(path.display().to_string());
                return Ok((cat, newest.max(seq), tracks_len));
            }
            Ok(_) => report
                .bad_checkpoints
                .push(format!("{}: belongs to another store", path.display())),
            Err(crate::format::DecodeError::UnsupportedVersion {
                found, supported, ..
            }) => {
                return Err(Error::UnsupportedVersion {
                    what: "checkpoint",
                    path,
                    found,
                    supported,
                })
            }
            Err(e) => report
                .bad_checkpoints
                .push(format!("{}: {e}", path.display())),
        }
    }
    Ok((Catalog::new(), newest, 0))
}

/// Whether the volume file at `path` is shorter than its header or has an all-zero header:
/// what a crash during its creation leaves (the header is made durable before the volume is
/// used, so such a file never held a record).
pub(super) fn unfinished_volume(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; crate::format::volume::VOLUME_HEADER_LEN];
    match f.read_exact_at(&mut head, 0) {
        Ok(()) => head.iter().all(|b| *b == 0),
        Err(e) => e.kind() == std::io::ErrorKind::UnexpectedEof,
    }
}

/// Volume files in a data dir, creating the dir if it does not exist. Unfinished compaction
/// targets (`*.ftv.compacting`, never renamed into place) are removed.
fn list_volumes(
    dir: &Path,
    report: &mut OpenReport,
) -> std::io::Result<Vec<(u32, std::path::PathBuf)>> {
    crate::fsio::create_dir_all(dir)?;
    let mut out = Vec::new();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let name = ent.file_name();
        if name
            .to_str()
            .is_some_and(|n| n.ends_with(crate::store::lifecycle::compact::COMPACTING_SUFFIX))
        {
            crate::fsio::remove_file(&ent.path())?;
            report.removed_files.push(format!(
                "{}: unfinished compaction, removed",
                ent.path().display()
            ));
            continue;
        }
        if let Some(id) = ent
            .file_name()
            .to_str()
            .and_then(crate::log::parse_volume_file_name)
        {
            out.push((id, ent.path()));
        }
    }
    Ok(out)
}

/// How long an open waits for a lock that is held before it reports [`Error::Locked`].
/// A store this process just closed can stay locked for an instant: a child process started
/// meanwhile by another thread (any `Command::spawn`) holds copies of every descriptor from
/// its fork until its exec, and an flock is released only when the last copy closes. A store
/// held by another process stays held: the wait only turns that instant into no error.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes the exclusive flock on `file` (naming `path` in errors), waiting at most
/// [`LOCK_WAIT`] for a holder to let go.
fn take_lock(file: &fs::File, root: &Path, path: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: root.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
    }
}
