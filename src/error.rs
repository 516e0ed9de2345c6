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
    /// An operating-system call on a file or directory failed (other than a full disk).
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// `hint` says what can free space (ingest says whether retention can evict or delete
    /// anything now).
    #[error("disk full writing {}: {hint}; nothing stored was lost, and nothing is dropped to make room (only segments with a verified cloud copy are evicted, only those past delete_after are deleted)", path.display())]
    DiskFull {
        /// The file being written when the disk filled.
        path: PathBuf,
        /// What can free space, in words.
        hint: String,
    },
    /// A restore (`footage restore`, the restore queue, prefetch) that would take every data
    /// dir past policy.toml's `disk.high_watermark`: refused before anything was written.
    /// `room` is the most any data dir (`path`) has below its watermark.
    #[error("segment {segment} not restored: it needs {needed} bytes ({:.1} MiB) and no data dir has that much room below the high watermark ({watermark_pct}% of the disk; the most is {room} bytes in {}): free space (a retention apply, unpin footage no longer needed), add a data dir to footage.toml, or raise disk.high_watermark in policy.toml; a queued restore waits and is tried again", *needed as f64 / 1048576.0, path.display())]
    NoRoom {
        /// The segment that was to be restored.
        segment: u64,
        /// Bytes the restored segment takes on disk.
        needed: u64,
        /// The most bytes any data dir has free below its high watermark.
        room: u64,
        /// The data dir with that most room.
        path: PathBuf,
        /// The high watermark, in percent of the disk.
        watermark_pct: u32,
    },
    /// A file of the store holds bytes that fail their checksum or do not decode.
    #[error("corrupt data in {} at offset {offset}: {what}", path.display())]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset in that file where the damage was found.
        offset: u64,
        /// What is wrong there.
        what: String,
    },
    /// A segment's bytes fail their chunk CRC or SHA-256 check while being read.
    #[error("segment {segment} is corrupt at byte {offset}: {what}; a verify of the store gives a full report")]
    SegmentCorrupt {
        /// The segment id.
        segment: u64,
        /// Byte offset in the segment's video where the damage starts.
        offset: u64,
        /// What is wrong there.
        what: String,
    },
    /// A segment's bytes cannot be read at all now (evicted and the cloud tier unreachable,
    /// lost, or deleted).
    #[error("segment {segment} is unreadable: {reason}")]
    Unavailable {
        /// The segment id.
        segment: u64,
        /// Why, in words.
        reason: String,
    },
    /// No segment has this id (the id as given, in decimal).
    #[error("no segment with id {0}")]
    NotFound(String),
    /// `open` found no store (no `footage.toml`) in the directory: nothing was created there.
    #[error("no store at {}", path.display())]
    NoStore {
        /// The directory that was to hold the store.
        path: PathBuf,
    },
    /// `create` found a store already in the directory: it was not changed.
    #[error("{} already holds a store", path.display())]
    StoreExists {
        /// The store's directory.
        path: PathBuf,
    },
    /// Another process owns the store (holds its lock): only a read-only open is possible.
    #[error("store {} is locked by another process (is `footage serve` or another ingest running?)", path.display())]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },
    /// `retention apply` was asked to decide by a time later than the real clock (beyond
    /// [`crate::CLOCK_SKEW_US`]) on a store that was not created with a simulated clock.
    #[error("retention apply refused: the time given ({now}) is later than the real clock ({real}, {tolerance_s} s of skew allowed); a pretend time would delete evidence early. Only a store created with a simulated clock accepts a future time (a plan or a dry run accepts any time)")]
    ClockAhead {
        /// The time the apply was asked to decide by (RFC 3339, UTC).
        now: String,
        /// The real clock's time (RFC 3339, UTC).
        real: String,
        /// The skew allowed, in seconds.
        tolerance_s: u64,
    },
    /// A file was written by a newer build of the engine, in a format version this one does
    /// not read.
    #[error("{what} in {} has format version {found}, this build reads version {supported}: use a newer footage", path.display())]
    UnsupportedVersion {
        /// Which structure (for example "volume header").
        what: &'static str,
        /// The file it is in.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A request the engine refuses as given (a bad argument, metadata over a limit, a
    /// query that does not make sense); the message says which value and why.
    #[error("{0}")]
    Invalid(String),
    /// An fsync failed earlier, so the store refuses every further write until it is reopened
    /// (what was acknowledged before stays durable).
    #[error("writes to {} are refused after a failed fsync (data may not be durable): reopen the store", path.display())]
    Poisoned {
        /// The file whose fsync failed.
        path: PathBuf,
    },
    /// `footage.toml` or `policy.toml` does not parse or holds a value out of range.
    #[error("bad store configuration {}: {what}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// Which key is wrong and how.
        what: String,
    },
    /// The cloud tier failed (unreachable, refused, or a copy that does not verify).
    #[error("cloud tier: {0}")]
    Cloud(String),
    /// A request to the cloud tier's object store failed; `source` is the store's (or the
    /// I/O runtime's) own error.
    #[error("cloud tier: {what}: {source}")]
    CloudRequest {
        /// The request that failed (for example `reading segments/42/meta.json`).
        what: String,
        /// The object store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The store is encrypted at rest and was opened without a key.
    #[error("store {} is encrypted (key id {key_id}): open it with its key (StoreOptions::key)", path.display())]
    KeyRequired {
        /// The store's directory.
        path: PathBuf,
        /// The id of the key the store needs ([`crate::Key::id`]).
        key_id: String,
    },
    /// The store is encrypted with another key than the one given.
    #[error("wrong key for store {}: the store was encrypted with key id {expected}, the key given has id {got}", path.display())]
    WrongKey {
        /// The store's directory.
        path: PathBuf,
        /// The id of the store's key.
        expected: String,
        /// The id of the key given.
        got: String,
    },
    /// A key file or key text that is not a valid 32-byte key.
    #[error("encryption key: {0}")]
    Key(String),
    /// The group the store's files belong to (`group` in footage.toml) cannot be used.
    #[error("group {group:?}: {what}")]
    Group {
        /// The group's name.
        group: String,
        /// What is wrong with it.
        what: String,
    },
    /// An error of a layer above the engine that reached it through one of its callbacks:
    /// the control channel of `footage serve` relaying a read-only open's audit entries
    /// (`AuditSink`, src/control/). The message is the source's own.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A change asked of a store opened with [`crate::Store::open_read_only`]: the process
    /// that owns the store (the service) must make it.
    #[error("this store was opened read-only (the service owns it): {what} is refused; ask the running service (its control channel) to do it")]
    ReadOnly {
        /// The change that was refused.
        what: String,
    },
    /// A read that must be audited, on a read-only open that was given no
    /// [`crate::AuditSink`]: it cannot append to the audit log itself.
    #[error("{action} refused: reads of a store owned by a running service are recorded in its audit log through its control channel, and this read-only open has no audit sink (use Store::open_read_only_with with one)")]
    AuditSinkRequired {
        /// The read that was refused (its audit action).
        action: String,
    },
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

    /// An [`Error::Corruption`] at byte `offset` of `path`.
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
