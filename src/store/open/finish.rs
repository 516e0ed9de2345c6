//! Opening, steps 8 and 9, and what comes between replay and them: the scrub's findings, the
//! upload sessions, the read cache, the assembled `Inner`; then the unsealed volumes take
//! writes again and, if anything was replayed or cut, a checkpoint is written.
//!
//! Invariants:
//! - a segment id reserved by an upload session is never handed out again;
//! - a read cache that cannot be opened does not fail the open (reads go to the cloud);
//! - the checkpoint after replay is only a shortcut: its failure does not fail the open.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::config::Settings;
use super::lock::Locks;
use super::volumes::Found;
use super::OpenReport;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{IoContext, Result};
use crate::log::volume::Volume;
use crate::log::writer::VolumeWriter;
use crate::store::Inner;

/// What `assemble` puts together besides the catalog and the volumes.
pub(super) struct Parts {
    pub settings: Settings,
    pub locks: Locks,
    pub crypt: Option<Arc<crate::crypt::Crypt>>,
    pub audit: Arc<crate::audit::AuditLog>,
    pub ckpt_seq: u64,
}

/// Loads the scrub's findings, the upload sessions and the read cache, and builds `Inner`.
pub(super) fn assemble(
    root: &Path,
    parts: Parts,
    cat: Catalog,
    found: Found,
    mut report: OpenReport,
) -> Result<Arc<Inner>> {
    let Parts {
        settings,
        locks,
        crypt,
        audit,
        ckpt_seq,
    } = parts;
    let Settings {
        config, store_id, ..
    } = settings;
    // Segments whose commit record now points at an unknown volume stay listed: `stats` and
    // reads report them unavailable.
    let next_volume_id = cat.next_volume_id.max(found.max_file_id.saturating_add(1));
    let scrub = crate::store::integrity::check::ScrubShared::load(root)?;
    // Upload sessions reserved segment ids that no commit record names yet: never reuse them.
    let (uploads, upload_floor, bad_uploads) = crate::store::upload::Registry::load(root)?;
    report.damage.extend(bad_uploads);
    let cache = open_cache(root, &config, store_id, &cat);
    Ok(Arc::new(Inner {
        cache,
        root: root.to_path_buf(),
        store_id,
        dirs: found.dirs,
        volumes: RwLock::new(found.volumes),
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
        _lock: locks.lock,
        _dir_lock: locks.dir_lock,
    }))
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

/// Step 8: unsealed volumes take writes again (one per data dir and age day); the others
/// (full, damaged, holding a chunk of an unconfirmed commit, or a second one of the same dir
/// and day) are sealed.
pub(super) fn reopen_active(
    inner: &Inner,
    active: Vec<(Arc<Volume>, u64)>,
    seal: &[u32],
) -> Result<()> {
    let damaged: HashSet<String> = inner.report.damage.iter().cloned().collect();
    for (vol, end) in active {
        // A writer takes everything below `end` as durable, and its commit records say so
        // (`durable_to`, FORMAT §11): after a crash of the process alone, the records just
        // replayed may still be only in the page cache. Make them durable first.
        crate::fsio::sync_data(vol.file(), "open.active").at(&vol.path)?;
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
        if is_damaged || full || seal.contains(&vol.id) || writers.contains_key(&key) {
            drop(writers);
            inner.seal_writer(&w)?;
        } else {
            writers.insert(key, w);
        }
    }
    Ok(())
}

/// Step 9: if any record was replayed or any torn tail cut, a checkpoint, so the next open
/// starts from here.
pub(super) fn checkpoint_after_replay(inner: &Inner) {
    if inner.since_checkpoint.load(Ordering::Relaxed) > 0 || inner.report.torn_bytes > 0 {
        // Only a shortcut for the next open (replay is idempotent), so a full disk must not
        // keep the store from opening: the error is kept for `last_checkpoint_error`.
        if let Err(e) = inner.checkpoint() {
            *inner.checkpoint_error.lock() = Some(e.to_string());
            // `close` tries again.
            inner.since_checkpoint.store(1, Ordering::Relaxed);
        }
    }
}
