//! Opening a store: locks (an flock on `LOCK` and one on the store directory itself),
//! configuration, the newest valid checkpoint, then replay of the log
//! written after it, with torn tails cut back. `open` reads as the steps of FORMAT.md §11
//! ("Opening, step by step"), one function per step, in one file per group of steps:
//! `lock.rs` (1), `config.rs` (2: configuration, key, policy, audit log), `catalog.rs` (3),
//! `volumes.rs` (4, 5), `replay.rs` and `audited.rs` (6, 7), `finish.rs` (assembly, 8, 9).
//!
//! Invariants:
//! - only record headers and commit records are decoded (never chunk payloads; log/scan.rs
//!   reads runs of small records in windows);
//! - commit records are applied in LSN order; applying one already in the checkpoint is a
//!   no-op; the catalog's tables are sized exactly for the result (no spare capacity);
//! - a torn tail is cut only from a volume that was still active (unsealed); damage inside a
//!   volume is reported and never "repaired" by truncation;
//! - a data dir or volume that cannot be read makes only its own segments unavailable;
//! - a volume header or scanned record in a newer format version fails the open with
//!   [`Error::UnsupportedVersion`](crate::Error::UnsupportedVersion); that volume is never cut.

mod audited;
mod catalog;
mod config;
pub(crate) mod confirm;
mod finish;
mod lock;
mod replay;
mod volumes;

pub(super) use config::store_crypt;
pub(super) use volumes::unfinished_volume;

use std::path::Path;

use serde::Serialize;

use super::Store;
use crate::config::StoreOptions;
use crate::error::Result;

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
    /// Segments left out because their commit record, written with its chunks under one
    /// fdatasync, names a chunk that did not become durable (a crash before that fdatasync
    /// returned: the segment was never acknowledged, like a torn tail). The volume holding the
    /// chunk is sealed, and the segment's id is not handed out again.
    pub unconfirmed: Vec<u64>,
    /// Segments whose `ingest` audit entry a crash had lost, written again from their commit
    /// records (marked `"recovered": true`).
    pub recovered_audit_entries: Vec<u64>,
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
    let mut clock = PhaseClock::new();
    // 1. The root (created only for a new store) and the two flocks.
    lock::prepare_root(root, opts, mode)?;
    let locks = lock::take_locks(root)?;
    lock::check_mode(root, mode)?;
    // 2. Configuration, key, default policy, audit log.
    let settings = config::read_config(root, opts)?;
    let store_id = settings.store_id;
    let crypt = config::store_crypt(root, &settings.config, store_id, opts)?;
    let mut report = OpenReport::default();
    config::write_default_policy(root)?;
    let audit = crate::audit::AuditLog::open(root, store_id)?;
    clock.lap("locks, configuration, audit log");
    // 3. The newest usable checkpoint (and its track file).
    let (mut cat, ckpt_seq) = catalog::load_catalog(root, &store_id, &mut report)?;
    clock.lap("checkpoint and track file");
    // 4, 5. Data dirs and the volumes in them.
    let found = volumes::open_volumes(root, &settings, &cat, &mut report)?;
    volumes::forget_never_made(&mut cat, &found, &mut report);
    clock.lap("volumes opened");
    // 6, 7. Replay the log after the checkpoint.
    let mut scanned = replay::scan_volumes(&mut cat, &found.volumes, crypt.is_some(), &mut report)?;
    clock.lap("log scanned");
    let candidates: Vec<(u64, [u8; 32], i64)> = scanned
        .unconfirmed
        .iter()
        .map(|u| (u.segment, u.sha256, u.committed_us))
        .collect();
    let acked = audited::acknowledged(&audit, &candidates);
    replay::leave_out(&mut cat, &mut scanned, &acked, &mut report);
    clock.lap("unconfirmed commits decided");
    let ingested = replay::replay(
        &mut cat,
        scanned.commits,
        scanned.changes,
        &found.volumes,
        &mut report,
    );
    clock.lap("records replayed");
    // Ingest entries a power cut lost (batched: their commit records name the actors).
    report.recovered_audit_entries = audited::rewrite_lost(&audit, &ingested)?;
    clock.lap("ingest audit entries checked");
    let parts = finish::Parts {
        settings,
        locks,
        crypt,
        audit,
        ckpt_seq,
    };
    let inner = finish::assemble(root, parts, cat, found, report)?;
    clock.lap("assembled");
    // Recovery itself is crash-tested (tests/kill_campaign.rs): the log is replayed, torn
    // tails are cut, and the checkpoint below is still to come.
    crate::fail::point("open.replayed");
    // 8. Unsealed volumes take writes again.
    finish::reopen_active(&inner, scanned.active, &scanned.seal)?;
    clock.lap("active volumes reopened");
    // 9. A checkpoint if anything was replayed or cut.
    finish::checkpoint_after_replay(&inner);
    clock.lap("checkpoint after replay");
    Ok(Store { inner, actor: None })
}

/// Times the steps of one open, for `footage::store::open=debug` logs.
struct PhaseClock {
    start: std::time::Instant,
    last: std::time::Instant,
}

impl PhaseClock {
    fn new() -> PhaseClock {
        let now = std::time::Instant::now();
        PhaseClock {
            start: now,
            last: now,
        }
    }

    fn lap(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        tracing::debug!(
            step,
            ms = (now - self.last).as_secs_f64() * 1e3,
            total_ms = (now - self.start).as_secs_f64() * 1e3,
            "open step done"
        );
        self.last = now;
    }
}
