//! The store's error type: every failure a caller can see, with the fields needed to act on it.
//!
//! Invariants: corruption is always reported with where it is (file and offset, or segment and
//! byte offset); messages say what is wrong and, where there is one, how to fix it. Lower
//! layers have their own enums ([`crate::format::DecodeError`]) that convert into this one.

use std::io;
use std::path::PathBuf;

/// What a full disk's error says to do when nothing more specific is known.
pub const DISK_FULL_HINT: &str = "free space or add a data dir to footage.toml";

/// Result alias for the store's API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the engine can fail with. New kinds of failure may be added without a major
/// version, so a `match` on it needs a `_` arm (`#[non_exhaustive]`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `hint` says what can free space (ingest says whether retention can evict or delete
    /// anything now).
    #[error("disk full writing {}: {hint}; nothing stored was lost, and nothing is dropped to make room (only segments with a verified cloud copy are evicted, only those past delete_after are deleted)", path.display())]
    DiskFull { path: PathBuf, hint: String },
    /// A restore (`footage restore`, the restore queue, prefetch) that would take every data
    /// dir past policy.toml's `disk.high_watermark`: refused before anything was written.
    /// `room` is the most any data dir (`path`) has below its watermark.
    #[error("segment {segment} not restored: it needs {needed} bytes ({:.1} MiB) and no data dir has that much room below the high watermark ({watermark_pct}% of the disk; the most is {room} bytes in {}): free space (`footage retention apply`, unpin footage no longer needed), add a data dir to footage.toml, or raise disk.high_watermark in policy.toml; a queued restore waits and is tried again", *needed as f64 / 1048576.0, path.display())]
    NoRoom {
        segment: u64,
        needed: u64,
        room: u64,
        path: PathBuf,
        watermark_pct: u32,
    },
    #[error("corrupt data in {} at offset {offset}: {what}", path.display())]
    Corruption {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("segment {segment} is corrupt at byte {offset}: {what}; run `footage verify` for a full report")]
    SegmentCorrupt {
        segment: u64,
        offset: u64,
        what: String,
    },
    #[error("segment {segment} is unreadable: {reason}")]
    Unavailable { segment: u64, reason: String },
    #[error("no segment with id {0}")]
    NotFound(String),
    /// `open` found no store (no `footage.toml`) in the directory: nothing was created there.
    #[error("no store at {} (create one with: footage init --store {})", path.display(), path.display())]
    NoStore { path: PathBuf },
    /// `create` found a store already in the directory: it was not changed.
    #[error("{} already holds a store", path.display())]
    StoreExists { path: PathBuf },
    #[error("store {} is locked by another process (is `footage serve` or another ingest running?)", path.display())]
    Locked { path: PathBuf },
    /// `retention apply` was asked to decide by a time later than the real clock (beyond
    /// [`crate::CLOCK_SKEW_US`]) on a store that was not created with a simulated clock.
    #[error("retention apply refused: --now {now} is later than the real clock ({real}, {tolerance_s} s of skew allowed); a pretend time would delete evidence early. Only a store created with `footage init --simulated-clock` accepts a future time (plan and --dry-run accept any time)")]
    ClockAhead {
        now: String,
        real: String,
        tolerance_s: u64,
    },
    #[error("{what} in {} has format version {found}, this build reads version {supported}: use a newer footage", path.display())]
    UnsupportedVersion {
        what: &'static str,
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("writes to {} are refused after a failed fsync (data may not be durable): reopen the store", path.display())]
    Poisoned { path: PathBuf },
    #[error("bad store configuration {}: {what}", path.display())]
    Config { path: PathBuf, what: String },
    #[error("cloud tier: {0}")]
    Cloud(String),
    #[error("store {} is encrypted (key id {key_id}): give its key with --key-file PATH or the FOOTAGE_KEY environment variable", path.display())]
    KeyRequired { path: PathBuf, key_id: String },
    #[error("wrong key for store {}: the store was encrypted with key id {expected}, the key given has id {got}", path.display())]
    WrongKey {
        path: PathBuf,
        expected: String,
        got: String,
    },
    #[error("encryption key: {0}")]
    Key(String),
    /// The group the store's files belong to (`group` in footage.toml) cannot be used.
    #[error("group {group:?}: {what}")]
    Group { group: String, what: String },
    /// An error of a layer above the engine that reached it through one of its callbacks:
    /// the control channel of `footage serve` relaying a read-only open's audit entries
    /// (`AuditSink`, src/control/). The message is the source's own.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A change asked of a store opened with [`crate::Store::open_read_only`]: the process
    /// that owns the store (the service) must make it.
    #[error("this store was opened read-only (the service owns it): {what} is refused; ask the running service (its control channel) to do it")]
    ReadOnly { what: String },
    /// A read that must be audited, on a read-only open that was given no
    /// [`crate::AuditSink`]: it cannot append to the audit log itself.
    #[error("{action} refused: reads of a store owned by a running service are recorded in its audit log through its control channel, and this read-only open has no audit sink (use Store::open_read_only_with with one)")]
    AuditSinkRequired { action: String },
}

impl Error {
    /// Wraps an I/O error with the path it happened on; ENOSPC becomes [`Error::DiskFull`].
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if source.raw_os_error() == Some(libc::ENOSPC)
            || source.kind() == io::ErrorKind::StorageFull
        {
            return Error::DiskFull {
                path,
                hint: DISK_FULL_HINT.into(),
            };
        }
        Error::Io { path, source }
    }

    pub fn corruption(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Error {
        Error::Corruption {
            path: path.into(),
            offset,
            what: what.into(),
        }
    }
}

/// Adds the path to a bare `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
