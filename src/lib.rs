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

// Every public item of the engine is documented (the frontends behind `server`/`cli` are
// hidden from the docs and not checked).
#![cfg_attr(not(feature = "server"), warn(missing_docs))]

/// Declares an internal module: private in a normal build, public but hidden from the docs
/// with the `internals` feature (which only the tests, benches and the fuzz crate turn on, to
/// reach decoders, encoders and helpers directly). Not a stable API. Without the server (the
/// engine alone) what only the frontends call is allowed to be unused; items only the tests
/// call say so with their own `allow(dead_code)` under `not(feature = "internals")`.
macro_rules! internal {
    ($($(#[$m:meta])* mod $name:ident;)*) => {$(
        $(#[$m])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$m])*
        #[cfg(not(feature = "internals"))]
        #[cfg_attr(not(feature = "server"), allow(dead_code))]
        mod $name;
    )*};
}

// The engine's public surface: the root re-exports below, and these modules.
/// Force-wide search: the catalogue as a Delta Lake table beside the cloud tier (feature
/// `fleet`).
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod meta;
pub mod policy;
pub mod retention;

// The engine's internals (see `internal!`).
internal! {
    mod audit;
    mod cache;
    mod crypt;
    mod fail;
    mod format;
    mod index;
    // Parts of these two only the tests call (inside files being split elsewhere).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    mod input;
    mod perms;
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    mod tier;
}
mod catalog;
mod config;
mod error;
mod fsio;
mod log;
mod store;
mod types;
mod util;

/// Helpers for tests and benches (a catalogue written directly, a store opened or created in
/// one call). Only with the `internals` feature.
#[cfg(any(test, feature = "internals"))]
#[doc(hidden)]
pub mod testing;

/// Fuzz entry points (`tests/fuzz.rs`, the cargo-fuzz crate in `fuzz/`). Only with the
/// `internals` feature.
#[cfg(all(feature = "server", feature = "internals"))]
#[doc(hidden)]
pub mod fuzz;

// The frontends: public for the `footage` binary and the tests, not part of the engine's API.
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod control;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod priority;
#[cfg(feature = "server")]
mod search;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod server;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod service;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod watch;

// Internals the tests, benches and fuzz targets reach at the root (`internals` feature).
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use catalog::checkpoint::{
    decode_body as decode_checkpoint_body, decode_file as decode_checkpoint_file,
};
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use fsio::faults;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use fsio::record as power;
/// A segment id as users type it (decimal) parsed; for the frontends.
#[doc(hidden)]
pub use store::parse_id;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use store::{hex, now_us, MAX_FAILURES, RESTORE_QUEUE, RETRY_STREAK, SCRUB_STATE};
#[cfg(not(feature = "internals"))]
#[allow(unused_imports)] // some only for the tests
pub(crate) use store::{hex, now_us, MAX_FAILURES, RESTORE_QUEUE, RETRY_STREAK, SCRUB_STATE};

// The frontends' types (resumable uploads and their checksums), public for the server.
#[cfg(feature = "server")]
#[doc(hidden)]
pub use store::{ChecksumAlgorithm, ChecksumHeaderError, UploadChecksum};
#[cfg(feature = "server")]
#[doc(hidden)]
pub use store::{
    NewUpload, UploadOptions, UploadPatch, UploadRefusal, UploadStats, UploadStatus,
    UPLOAD_PROGRESS_EVERY,
};
// Without the server they are used only inside store/; naming them here keeps those
// modules' re-exports from being flagged unused.
#[cfg(not(feature = "server"))]
#[allow(unused_imports)]
use {
    store::{ChecksumAlgorithm, ChecksumHeaderError, UploadChecksum},
    store::{
        NewUpload, UploadOptions, UploadPatch, UploadRefusal, UploadStats, UploadStatus,
        UPLOAD_PROGRESS_EVERY,
    },
};
// Used by the tests only: named for the same reason.
#[cfg(not(feature = "internals"))]
#[allow(unused_imports)]
use tier::{RESTORE_IN_FLIGHT, RESTORE_SPAN_BLOCKS};

pub use audit::{
    Action as AuditAction, AuditEntry, AuditHead, AuditReport, BrokenLink, Durability,
};
pub use cache::CacheStats;
pub use config::{CacheConfig, Config, MapConfig, StoreOptions, CONFIG_FILE};
pub use crypt::Key;
pub use error::{Error, Result};
pub use index::geo::{haversine_m, Area};
pub use index::query::{
    FindResult, Hit, Page, Query, DEFAULT_HIT_GAP_US, MAX_HITS_PER_SEGMENT, MAX_PAGE, MAX_PAGE_HITS,
};
pub use meta::{GpsFix, SegmentMeta};
pub use policy::Policy;
pub use retention::{Clock as RetentionClock, RetentionHandle, RetentionOptions, CLOCK_SKEW_US};
pub use store::{
    AuditSink, Change, Committed, CompactSummary, CorruptSegment, DiskStats, Exported, FindingInfo,
    IndexStats, IngestCounts, LostSegment, OpenReport, PinStats, PinnedSegment, RecoverReport,
    RefreshReport, RepairOutcome, RestoreOutcome, RestoreRun, RestoreStats, RunLimits, ScrubHandle,
    ScrubOptions, ScrubStatus, ScrubSummary, SegmentInfo, SegmentReader, SegmentWriter, Stats,
    Store, VerifiedReader, VerifyOptions, VerifyReport, VolumeStats, SYSTEM_ACTOR,
};
pub use tier::CloudProblem;
pub use types::{PinnedUntil, SegmentId, TierState, Timestamp};
