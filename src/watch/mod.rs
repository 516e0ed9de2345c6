//! The watched dock folder (`footage serve --watch DIR`): every video a dock copies into
//! `DIR`, with its sidecar `<video>.json` (the fields of one ingest-manifest line), is
//! ingested into the store in-process and then moved to `DIR/done/` (or `DIR/failed/` with a
//! `.error` line saying why).
//!
//! Job: a polling thread ([`Watcher`]) runs passes of a [`Dock`] every `interval`; a pass lists
//! `DIR`, skips names that look partial, waits for each video's sidecar and for both files'
//! size and mtime to stay unchanged for `settle`, then ingests one video at a time.
//!
//! Invariants:
//! - a video leaves `DIR` only after the store acknowledged it (its commit returned: the
//!   segment and its audit entry are durable), or when it can never be ingested (`failed/`);
//!   a transient error (disk full, an I/O error of the store or of the source) leaves it in
//!   place to be tried again later, with a growing delay ([`RETRY_MAX`] at most);
//! - a crash anywhere leaves every video either in `DIR` (the next start ingests it again,
//!   gets it back as a duplicate, and moves it) or in `done/`/`failed/` with its note: the
//!   store's dedup makes ingest idempotent, so nothing is lost or stored twice;
//! - nothing in `DIR` is followed out of it: symbolic links are refused and moved to
//!   `failed/`, files are opened with `O_NOFOLLOW`, sidecars are read up to
//!   [`MAX_SIDECAR_BYTES`] and may name no other file;
//! - stopping ([`Watcher::stop`] or drop) ends an ingest in progress without a commit (the
//!   video stays in `DIR`, unacknowledged) and joins the thread.

mod dock;
mod place;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::Store;

pub use dock::{looks_partial, Dock, MAX_SIDECAR_BYTES, RETRY_MAX};
pub use place::{DONE_DIR, ERROR_SUFFIX, FAILED_DIR, RESULT_SUFFIX, RESULT_VERSION};

/// Default time a video and its sidecar must stay unchanged before they are taken: 5 s.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(5);
/// Default time between two passes over the folder: 2 s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// How a dock folder is watched.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The dock folder.
    pub dir: PathBuf,
    /// How long a video and its sidecar must keep their size and mtime before they are taken.
    /// Default [`DEFAULT_SETTLE`].
    pub settle: Duration,
    /// Time between passes. Default [`DEFAULT_INTERVAL`].
    pub interval: Duration,
    /// The audit actor of the ingests (see [`default_actor`]).
    pub actor: String,
    /// Steps by which the watcher thread lowers its scheduling priority (ingest is bulk work:
    /// [`crate::priority`]). Default [`crate::priority::BULK_NICE`].
    pub bulk_nice: i32,
}

impl WatchOptions {
    /// Options with the defaults and the actor `watch:DIR`.
    pub fn new(dir: impl Into<PathBuf>) -> WatchOptions {
        let dir = dir.into();
        let actor = default_actor(&dir, None);
        WatchOptions {
            dir,
            settle: DEFAULT_SETTLE,
            interval: DEFAULT_INTERVAL,
            actor,
            bulk_nice: crate::priority::BULK_NICE,
        }
    }
}

/// Longest folder name kept in the actor; longer ones are cut (with `...`).
const ACTOR_DIR_MAX: usize = 160;

/// The audit actor of a watcher: `watch:DIR`, followed by ` (IDENTITY)` when the OS identity
/// of the service is given (`footage serve` gives `os:uid=N user=NAME`). Control characters
/// in the folder name become `?` and a long name is cut, so the actor is always valid.
pub fn default_actor(dir: &Path, os_identity: Option<&str>) -> String {
    let mut shown: String = dir
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if shown.len() > ACTOR_DIR_MAX {
        let mut cut = ACTOR_DIR_MAX;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push_str("...");
    }
    match os_identity {
        Some(os) => format!("watch:{shown} ({os})"),
        None => format!("watch:{shown}"),
    }
}

/// Parses a duration for `--watch-settle`/`--watch-interval`: a number with `ms`, `s`
/// (default) or `m`, e.g. `500ms`, `2`, `1.5s`, `1m`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| {
        format!("{s:?} is not a duration: a number and ms, s or m (e.g. 500ms, 5s)")
    })?;
    let secs = v * scale;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s:?}: a duration from 0 to 24 h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What the watcher has seen and done: a snapshot for `/api/stats` and `/metrics`.
///
/// `pending` and its parts describe the last pass; the other counters count since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchStats {
    /// The dock folder.
    pub dir: String,
    /// Videos in the folder not yet taken (the sum of the next three).
    pub pending: u64,
    /// ... of which have no sidecar yet.
    pub waiting_for_sidecar: u64,
    /// ... of which are still changing or have not stayed unchanged for the settle time.
    pub settling: u64,
    /// ... of which failed with a transient error and wait to be tried again.
    pub retrying: u64,
    /// The video being ingested now.
    pub ingesting: Option<String>,
    /// Videos ingested and moved to `done/` (duplicates included).
    pub done: u64,
    /// ... of which the store already had (same device and bytes).
    pub duplicates: u64,
    /// Videos moved to `failed/`.
    pub failed: u64,
    /// Video bytes ingested.
    pub bytes: u64,
    /// Passes over the folder.
    pub passes: u64,
    /// The last error (a failed video's reason, a transient error, a folder error).
    pub last_error: Option<String>,
}

/// Reads a [`Watcher`]'s [`WatchStats`]; cheap to clone, shareable between threads.
#[derive(Clone)]
pub struct WatchStatsHandle(Arc<Mutex<WatchStats>>);

impl WatchStatsHandle {
    /// A snapshot of the counters.
    pub fn snapshot(&self) -> WatchStats {
        self.0.lock().clone()
    }
}

struct Shared {
    stop: AtomicBool,
    wake: Mutex<()>,
    cv: Condvar,
    stats: Arc<Mutex<WatchStats>>,
}

/// The watcher thread of `footage serve --watch`. Dropping it stops it (see [`Watcher::stop`]).
pub struct Watcher {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Checks the folder, creates `done/` and `failed/` in it, and starts the polling thread.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the folder is not a directory, `done/` or `failed/` is not a
    /// directory in it or is on another file system (a mount point: a move there would not be
    /// a rename), or the actor is invalid; [`Error::Io`] when they cannot be created.
    pub fn start(store: &Store, opts: WatchOptions) -> Result<Watcher> {
        let interval = opts.interval;
        let opts_nice = opts.bulk_nice;
        let mut dock = Dock::open(store, opts)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake: Mutex::new(()),
            cv: Condvar::new(),
            stats: dock.stats_handle(),
        });
        let inner = Arc::clone(&shared);
        let thread = crate::priority::spawn_bulk("footage-watch", opts_nice, move || loop {
            if inner.stop.load(Ordering::SeqCst) {
                break;
            }
            dock.pass(&inner.stop);
            let mut g = inner.wake.lock();
            if inner.stop.load(Ordering::SeqCst) {
                break;
            }
            inner.cv.wait_for(&mut g, interval);
        })
        .map_err(|e| Error::io("footage-watch thread", e))?;
        Ok(Watcher {
            shared,
            thread: Some(thread),
        })
    }

    /// A snapshot of what the watcher has seen and done.
    pub fn stats(&self) -> WatchStats {
        self.shared.stats.lock().clone()
    }

    /// A handle that reads the snapshot from elsewhere (the HTTP server's `/api/stats` and
    /// `/metrics`), also after the watcher stopped.
    pub fn stats_handle(&self) -> WatchStatsHandle {
        WatchStatsHandle(Arc::clone(&self.shared.stats))
    }

    /// Stops the thread and waits for it: an ingest in progress ends without a commit (its
    /// video stays in the folder); a commit already made is followed by its move.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let _g = self.shared.wake.lock();
            self.shared.cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.halt();
    }
}
