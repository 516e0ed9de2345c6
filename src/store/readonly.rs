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
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;

use super::follow::{load, refresh, Follow};
use super::{DataDir, Inner, Store};
use crate::audit::Action;
use crate::config::{Config, StoreOptions};
use crate::error::{Error, IoContext, Result};

/// Where the reads and queries of a read-only open are recorded: the owner of the store
/// appends them to its audit log (a read-only open cannot). `footage serve` provides one
/// through its control channel.
///
/// ```no_run
/// use std::sync::Arc;
/// struct Relay;
/// impl footage::AuditSink for Relay {
///     fn append(
///         &self,
///         _actor: &str,
///         _action: &footage::AuditAction,
///         _segment: Option<u64>,
///         _details: &str,
///     ) -> footage::Result<()> {
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
    fn append(
        &self,
        actor: &str,
        action: &Action,
        segment: Option<u64>,
        details: &str,
    ) -> Result<()>;
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
    pub(super) follow: Mutex<Follow>,
}

impl ReadOnly {
    /// Sends an entry to the sink, or refuses the action without one.
    fn relay(
        &self,
        actor: &str,
        action: &Action,
        segment: Option<u64>,
        details: &str,
    ) -> Result<()> {
        match &self.sink {
            Some(sink) => sink.append(actor, action, segment, details),
            None => Err(Error::AuditSinkRequired {
                action: action.name().to_string(),
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

    /// `audit_entry` on a read-only open: the sink records the entry, which is then read back
    /// from the owner's log (it is written there before the owner answers).
    pub(crate) fn relay_and_read_back(
        &self,
        actor: &str,
        action: &Action,
        segment: Option<u64>,
        details: serde_json::Value,
    ) -> Result<crate::audit::AuditEntry> {
        self.relay_audit(actor, action, segment, &details.to_string())
            .unwrap_or(Ok(()))?;
        self.audit_entries(segment, None)?
            .into_iter()
            .rev()
            .find(|e| {
                e.actor == actor
                    && e.action == action.name()
                    && e.segment == segment
                    && e.details == details
            })
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the audit sink accepted {:?} but the entry is not in the store's audit log at {}",
                    action.name(),
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
        action: &Action,
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
    pub(crate) fn load_policy(&self) -> Result<crate::policy::Policy> {
        use crate::policy::{Policy, POLICY_FILE};
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
    let loaded = load(root, store_id, &dirs, crypt.is_some())?;
    let scrub = super::integrity::check::ScrubShared::load(root)?;
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
        counters: Default::default(),
        uploads: super::upload::Registry::empty(),
        // The owner's cache is the owner's: a read-only open writes nothing, so it reads
        // evicted footage from the cloud only.
        cache: None,
        crypt,
        restores: Default::default(),
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
