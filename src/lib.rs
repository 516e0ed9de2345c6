//! # footage
//!
//! An embedded storage engine for police body-worn-video footage: a log-structured store of
//! video segments (append-only volumes of CRC-checked chunk records, crash-safe tail
//! recovery, mmap reads, idempotent ingest), with the metadata needed to find footage by
//! officer, device, time and place, and a hash-chained audit log of everything done to it
//! (the chain of custody).
//!
//! ```no_run
//! use footage::{SegmentMeta, Store};
//!
//! let store = Store::open("/var/lib/footage")?;
//! let meta = SegmentMeta {
//!     officer: "MET-004217".into(),
//!     device: "AX-B3-00123".into(),
//!     start_us: 1_763_647_380_000_000,
//!     end_us: 1_763_647_980_000_000,
//!     ..SegmentMeta::default()
//! };
//! let mut w = store.begin_segment(meta)?;
//! w.write(b"...mp4 bytes...")?;
//! let c = w.commit()?;
//! let bytes = store.read_range(c.id, 0, 3)?;
//! # Ok::<(), footage::Error>(())
//! ```
//!
//! The on-disk format is specified in docs/FORMAT.md and the architecture in docs/DESIGN.md.

pub mod audit;
pub mod cache;
mod catalog;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
#[cfg(feature = "cli")]
pub mod control;
pub mod crypt;
mod error;
#[doc(hidden)]
pub mod fail;
pub mod format;
mod fsio;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod fuzz;
pub mod index;
pub mod input;
mod log;
pub mod meta;
pub mod perms;
pub mod policy;
#[cfg(feature = "server")]
pub mod priority;
pub mod retention;
pub mod search;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod service;
mod store;
#[doc(hidden)]
pub mod testing;
pub mod tier;
mod util;
#[cfg(feature = "server")]
pub mod watch;

#[doc(hidden)]
pub use fsio::faults;
#[doc(hidden)]
pub use fsio::record as power;

pub use audit::{AuditEntry, AuditHead, AuditReport, BrokenLink, Durability};
pub use catalog::checkpoint::{
    decode_body as decode_checkpoint_body, decode_file as decode_checkpoint_file,
};
pub use config::{CacheConfig, MapConfig};
pub use config::{Config, StoreOptions, CONFIG_FILE};
pub use crypt::Key;
pub use error::{Error, Result};
pub use index::geo::{haversine_m, Area};
pub use index::query::{
    FindResult, Hit, Page, Query, DEFAULT_HIT_GAP_US, MAX_HITS_PER_SEGMENT, MAX_PAGE, MAX_PAGE_HITS,
};
pub use meta::{GpsFix, SegmentMeta};
pub use retention::{Clock as RetentionClock, RetentionHandle, RetentionOptions, CLOCK_SKEW_US};
pub use store::IngestCounts;
pub use store::{
    hex, now_us, parse_id, Change, Committed, CompactSummary, CorruptSegment, DiskStats, Exported,
    FindingInfo, IndexStats, LostSegment, OpenReport, RecoverReport, RepairOutcome, ScrubHandle,
    ScrubOptions, ScrubStatus, ScrubSummary, SegmentInfo, SegmentReader, SegmentWriter, Stats,
    Store, VerifiedReader, VerifyOptions, VerifyReport, VolumeStats, SCRUB_STATE, SYSTEM_ACTOR,
};
pub use store::{AuditSink, RefreshReport};
pub use store::{ChecksumAlgorithm, ChecksumHeaderError, UploadChecksum};
pub use store::{
    NewUpload, UploadOptions, UploadPatch, UploadRefusal, UploadStats, UploadStatus,
    UPLOAD_PROGRESS_EVERY,
};
pub use store::{
    PinStats, PinnedSegment, RestoreOutcome, RestoreRun, RestoreStats, RunLimits, MAX_FAILURES,
    RESTORE_QUEUE, RETRY_STREAK,
};
