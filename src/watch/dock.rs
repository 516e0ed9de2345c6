//! One pass over a dock folder: find the videos that are complete, ingest them one at a time,
//! and file them (`place`).
//!
//! A video is taken when all of these hold: its name does not look partial
//! ([`looks_partial`]); it is a regular file (a symbolic link or a FIFO is failed, a
//! directory ignored); its sidecar `<video>.json` exists; and the sizes and mtimes of both have
//! not changed for the settle time. After reading the video to its end, its size and mtime are
//! checked again: a file that changed while it was read is not committed (it settles again).
//!
//! What happens on an error (see DESIGN.md, "The dock folder"):
//! - failed (moved to `failed/` with a one-line `.error`), since trying again cannot help:
//!   a sidecar that is not valid (JSON, fields, ids, times, GPS), too large, a link or not a
//!   file; a video that is a link or not a file, unreadable for lack of permission, whose
//!   end time is neither given nor in its MP4 header, or that the store refuses as invalid
//!   (`Error::Invalid`);
//! - transient (left in place, tried again after a delay growing to [`RETRY_MAX`]): every
//!   other store error (disk full, I/O, a poisoned volume, ...), an I/O error reading the
//!   video or sidecar, and an error moving the files (the next try is a duplicate).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

mod take;

use super::place::{self, with_suffix, DONE_DIR, ERROR_SUFFIX, FAILED_DIR, RESULT_SUFFIX};
use super::{WatchOptions, WatchStats};
use crate::error::{Error, Result};
use crate::input::format_time;
use crate::{Committed, Store};

/// Largest sidecar read: 32 MiB (a full day's track at 4 Hz inline is about 14 MB).
pub const MAX_SIDECAR_BYTES: u64 = 32 << 20;
/// Longest wait before a video that failed with a transient error is tried again: 5 minutes.
pub const RETRY_MAX: Duration = Duration::from_secs(300);
/// Longest video name handled: the notes add up to 12 bytes and a slot 6 to a name, and a
/// file name has at most 255 bytes.
const MAX_NAME: usize = 230;
/// Suffixes of names that copy tools give files still being written (compared ignoring case).
const PARTIAL_SUFFIXES: [&str; 5] = [".part", ".tmp", ".crdownload", ".partial", ".download"];

/// Whether a name looks like a file still being written, or not a video: a dotfile, a `~`
/// suffix, one of `.part`, `.tmp`, `.crdownload`, `.partial`, `.download` (any case), or a
/// sidecar (`.json`). Such names are never taken as videos.
pub fn looks_partial(name: &OsStr) -> bool {
    let b = name.as_bytes();
    if b.first() == Some(&b'.') || b.last() == Some(&b'~') {
        return true;
    }
    let lower = b.to_ascii_lowercase();
    PARTIAL_SUFFIXES
        .iter()
        .chain(std::iter::once(&place::SIDECAR_SUFFIX))
        .any(|s| lower.ends_with(s.as_bytes()))
}

/// What a pass saw of one video and its sidecar: taken only after it stays the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    size: u64,
    mtime_ns: i128,
    side_size: u64,
    side_mtime_ns: i128,
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

struct Retry {
    at: Instant,
    tries: u32,
}

/// What became of one video in a pass.
enum Outcome {
    /// Not taken now (no sidecar, settling, changed while read, stopping, vanished).
    Wait(Waiting),
    Done(Committed),
    Failed(String),
    Transient(String),
}

#[derive(Clone, Copy)]
enum Waiting {
    Sidecar,
    Settling,
    /// A transient error: tried again later.
    Retry,
    Nothing,
}

/// A dock folder and what the passes over it have seen. [`super::Watcher`] runs its passes
/// on a thread; a test may call [`Dock::pass`] itself.
pub struct Dock {
    store: Store,
    dir: PathBuf,
    settle: Duration,
    interval: Duration,
    seen: HashMap<OsString, (Look, Instant)>,
    retry: HashMap<OsString, Retry>,
    stats: Arc<Mutex<WatchStats>>,
}

impl Dock {
    /// Checks `opts.dir` and creates `done/` and `failed/` in it (see [`super::Watcher::start`]).
    pub fn open(store: &Store, opts: WatchOptions) -> Result<Dock> {
        let shown = opts.dir.display().to_string();
        let meta = std::fs::metadata(&opts.dir).map_err(|e| Error::io(&opts.dir, e))?;
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "--watch {shown}: not a directory; give the folder the docks copy into"
            )));
        }
        let dir = opts
            .dir
            .canonicalize()
            .map_err(|e| Error::io(&opts.dir, e))?;
        for sub in [DONE_DIR, FAILED_DIR] {
            ensure_sub(&dir, sub, meta.dev())?;
        }
        let store = store.with_actor(&opts.actor)?;
        let stats = WatchStats {
            dir: dir.display().to_string(),
            ..WatchStats::default()
        };
        Ok(Dock {
            store,
            dir,
            settle: opts.settle,
            interval: opts.interval,
            seen: HashMap::new(),
            retry: HashMap::new(),
            stats: Arc::new(Mutex::new(stats)),
        })
    }

    /// The shared snapshot this dock updates as it goes.
    pub(crate) fn stats_handle(&self) -> Arc<Mutex<WatchStats>> {
        Arc::clone(&self.stats)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> WatchStats {
        self.stats.lock().clone()
    }

    /// One pass: lists the folder and handles each video in it (name order), one at a time,
    /// until done or `stop` is set. Errors are counted in the stats, never returned.
    pub fn pass(&mut self, stop: &AtomicBool) {
        let listed = match self.list() {
            Ok(l) => l,
            Err(e) => {
                self.note_error(format!("cannot list {}: {e}", self.dir.display()));
                return;
            }
        };
        let present: HashSet<&OsString> = listed.iter().map(|(n, _)| n).collect();
        self.seen.retain(|k, _| present.contains(k));
        self.retry.retain(|k, _| present.contains(k));
        let (mut sidecar, mut settling, mut retrying) = (0u64, 0u64, 0u64);
        for (name, kind) in &listed {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if kind.is_dir() || looks_partial(name) {
                continue;
            }
            if name.len() > MAX_NAME {
                self.note_error(format!(
                    "{:?}: a name longer than {MAX_NAME} bytes is not taken; rename it",
                    name.to_string_lossy()
                ));
                continue;
            }
            if let Some(r) = self.retry.get(name) {
                if Instant::now() < r.at {
                    retrying += 1;
                    continue;
                }
            }
            let outcome = if kind.is_symlink() {
                Outcome::Failed(
                    "the video is a symbolic link: docks must copy the file into the folder \
                     (links are never followed)"
                        .into(),
                )
            } else if !kind.is_file() {
                Outcome::Failed("not a regular file (a FIFO, socket or device)".into())
            } else {
                self.consider(name, stop)
            };
            match self.settle_outcome(name, outcome) {
                Some(Waiting::Sidecar) => sidecar += 1,
                Some(Waiting::Settling) => settling += 1,
                Some(Waiting::Retry) => retrying += 1,
                Some(Waiting::Nothing) | None => {}
            }
        }
        // Sidecars left alone by a crash between the two renames of a move.
        for (name, kind) in &listed {
            let Some(video) = name.as_bytes().strip_suffix(b".json") else {
                continue;
            };
            let video = OsStr::from_bytes(video);
            if !kind.is_file() || present.contains(&video.to_os_string()) || video.is_empty() {
                continue;
            }
            if let Err(e) = place::adopt_orphan(&self.dir, video) {
                self.note_error(format!("{}: {e}", name.to_string_lossy()));
            }
        }
        let mut s = self.stats.lock();
        s.passes += 1;
        s.waiting_for_sidecar = sidecar;
        s.settling = settling;
        s.retrying = retrying;
        s.pending = s.waiting_for_sidecar + s.settling + s.retrying;
    }

    /// Files a finished video, counts it; returns what it waits for if it is not finished.
    fn settle_outcome(&mut self, name: &OsStr, outcome: Outcome) -> Option<Waiting> {
        let shown = name.to_string_lossy().into_owned();
        match outcome {
            Outcome::Wait(w) => Some(w),
            Outcome::Done(c) => {
                let note = result_json(name, &c);
                match place::file(&self.dir, DONE_DIR, name, RESULT_SUFFIX, note.as_bytes()) {
                    Ok(_) => {
                        self.forget(name);
                        let mut s = self.stats.lock();
                        s.done += 1;
                        s.duplicates += u64::from(c.duplicate);
                        if !c.duplicate {
                            s.bytes += c.bytes;
                        }
                        None
                    }
                    Err(e) => {
                        self.transient(
                            name,
                            format!(
                                "{shown}: stored as segment {}, but cannot be moved to done/: {e}",
                                c.id
                            ),
                        );
                        Some(Waiting::Retry)
                    }
                }
            }
            Outcome::Failed(why) => {
                let line = format!("{}\n", one_line(&why));
                match place::file(&self.dir, FAILED_DIR, name, ERROR_SUFFIX, line.as_bytes()) {
                    Ok(_) => {
                        self.forget(name);
                        let mut s = self.stats.lock();
                        s.failed += 1;
                        s.last_error = Some(format!("{shown}: {}", one_line(&why)));
                    }
                    Err(e) => {
                        self.transient(
                            name,
                            format!(
                                "{shown}: failed ({}), and cannot be moved to failed/: {e}",
                                one_line(&why)
                            ),
                        );
                        return Some(Waiting::Retry);
                    }
                }
                None
            }
            Outcome::Transient(why) => {
                self.transient(name, format!("{shown}: {why} (will try again)"));
                Some(Waiting::Retry)
            }
        }
    }

    fn forget(&mut self, name: &OsStr) {
        self.seen.remove(name);
        self.retry.remove(name);
    }

    fn transient(&mut self, name: &OsStr, why: String) {
        self.seen.remove(name);
        let r = self.retry.entry(name.to_os_string()).or_insert(Retry {
            at: Instant::now(),
            tries: 0,
        });
        r.tries = r.tries.saturating_add(1);
        let base = self.interval.max(Duration::from_millis(100));
        let delay = base.saturating_mul(1u32 << r.tries.min(16)).min(RETRY_MAX);
        r.at = Instant::now() + delay;
        self.note_error(why);
    }

    fn note_error(&self, why: String) {
        self.stats.lock().last_error = Some(one_line(&why));
    }

    /// The folder's entries (name, type without following links), in name order.
    fn list(&self) -> io::Result<Vec<(OsString, std::fs::FileType)>> {
        for sub in [DONE_DIR, FAILED_DIR] {
            let p = self.dir.join(sub);
            match std::fs::symlink_metadata(&p) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => crate::fsio::create_dir_all(&p)?,
                _ => place::check_subdir(&p)?,
            }
        }
        let mut v = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name();
            let kind = e.file_type()?;
            if kind.is_dir() && (name == DONE_DIR || name == FAILED_DIR) {
                continue;
            }
            v.push((name, kind));
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    }

    /// Decides about one regular file: waits, or takes it.
    fn consider(&mut self, name: &OsStr, stop: &AtomicBool) -> Outcome {
        let video = self.dir.join(name);
        let side_path = self.dir.join(with_suffix(name, ".json"));
        let side = match std::fs::symlink_metadata(&side_path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.seen.remove(name);
                return Outcome::Wait(Waiting::Sidecar);
            }
            Err(e) => return Outcome::Transient(format!("cannot read its sidecar: {e}")),
        };
        if side.file_type().is_symlink() {
            return Outcome::Failed(
                "its sidecar is a symbolic link (links are never followed)".into(),
            );
        }
        if !side.is_file() {
            return Outcome::Failed("its sidecar is not a regular file".into());
        }
        if side.len() > MAX_SIDECAR_BYTES {
            return Outcome::Failed(format!(
                "its sidecar has {} bytes; the limit is {} MiB",
                side.len(),
                MAX_SIDECAR_BYTES >> 20
            ));
        }
        let m = match std::fs::symlink_metadata(&video) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Outcome::Wait(Waiting::Nothing)
            }
            Err(e) => return Outcome::Transient(format!("cannot read it: {e}")),
        };
        let look = Look {
            size: m.len(),
            mtime_ns: mtime_ns(&m),
            side_size: side.len(),
            side_mtime_ns: mtime_ns(&side),
        };
        let now = Instant::now();
        match self.seen.get(name) {
            Some((l, since)) if *l == look => {
                if now.duration_since(*since) < self.settle {
                    return Outcome::Wait(Waiting::Settling);
                }
            }
            _ => {
                self.seen.insert(name.to_os_string(), (look, now));
                if !self.settle.is_zero() {
                    return Outcome::Wait(Waiting::Settling);
                }
            }
        }
        self.stats.lock().ingesting = Some(name.to_string_lossy().into_owned());
        let outcome = self.take(name, &video, &side_path, look, stop);
        self.stats.lock().ingesting = None;
        outcome
    }
}

/// Creates `dir/sub` if missing; refuses a link, a non-directory, or another file system.
fn ensure_sub(dir: &Path, sub: &str, dev: u64) -> Result<()> {
    let p = dir.join(sub);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            return Err(Error::Invalid(format!(
                "{} must be a directory of the dock folder, not a link or a file: move it away",
                p.display()
            )))
        }
        Ok(m) if m.dev() != dev => {
            return Err(Error::Invalid(format!(
                "{} is on another file system than {} (a mount point): moving a video there \
                 would be a copy, not an atomic rename; unmount it or watch another folder",
                p.display(),
                dir.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            crate::fsio::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        Err(e) => return Err(Error::io(&p, e)),
    }
    Ok(())
}

/// The text of `done/<slot>.result.json` (docs/FORMAT.md, "Dock folder result file").
fn result_json(name: &OsStr, c: &Committed) -> String {
    let v = serde_json::json!({
        "version": place::RESULT_VERSION,
        "file": name.to_string_lossy(),
        "id": c.id.to_string(),
        "sha256": c.sha256_hex(),
        "bytes": c.bytes,
        "duplicate": c.duplicate,
        "stored_at": format_time(crate::now_us()),
    });
    format!("{v}\n")
}

/// `s` on one line: line breaks and other control characters become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
