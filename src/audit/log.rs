//! The live audit log: appends entries to the newest `audit-<seq>.log`, shares fsyncs between
//! concurrent writers (group commit, as `log::writer` does for volumes), rolls over to a new
//! file when one is full, and checkpoints the chain head (a `head` entry every
//! [`HEAD_EVERY`] entries and on close, and the `HEAD` file).
//!
//! Invariants:
//! - entries are appended under one lock, so indexes are consecutive and each entry holds the
//!   hash of the one before it; a failed write is cut back, so no partial entry stays behind;
//! - `sync_to(n)` returns only when the first `n` entries are durable; after a failed fsync
//!   the log is poisoned and every later append fails (no action can then be acknowledged
//!   without its record);
//! - a file is fsynced completely before the next one is started, so only the newest file
//!   can hold entries that are not durable;
//! - `HEAD` only ever names a durable chain head;
//! - a batched entry (a read or a query) never waits for an fsync: when its batch is due
//!   (64 entries waiting, or the last fsync a second old) it wakes the `footage-audit-flush`
//!   thread, which syncs at once; only a log without that thread (tests, `open_with`) syncs
//!   on the appender's thread. Under heavy ingest an fdatasync can take tens of milliseconds,
//!   and a reviewer's search must not pay for it (DESIGN §15).

mod sync;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::format::{FileHeader, RawEntry, FILE_HEADER_LEN, GENESIS, MAX_DETAILS};
use super::open::{open_files, Opened};
use super::{files, Durability};
use sync::{flush_batches, Kick};
use crate::error::{Error, Result};

/// A `head` entry is appended when the chain reaches a multiple of this many entries.
pub const HEAD_EVERY: u64 = 256;
/// A file is closed and the next one started when an entry would take it past this size.
pub const MAX_FILE: u64 = 16 << 20;
/// Batched entries (reads, queries) are fsynced once this many are waiting...
const BATCH_MAX: u64 = 64;
/// ... or once the last fsync is this old (checked at each append and by a background
/// thread).
pub const BATCH_DELAY: Duration = Duration::from_secs(1);
/// The actor of entries the store writes itself (heads, recovery reports).
pub const STORE_ACTOR: &str = "(footage)";

/// A point of the chain: entries so far and the hash of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub count: u64,
    pub hash: [u8; 32],
}

impl Chain {
    pub const EMPTY: Chain = Chain {
        count: 0,
        hash: GENESIS,
    };
}

/// Where the chain is durable up to.
#[derive(Debug, Clone, Copy)]
struct Durable {
    chain: Chain,
    seq: u32,
    end: u64,
}

struct WriteState {
    file: Arc<File>,
    seq: u32,
    path: PathBuf,
    end: u64,
    chain: Chain,
    last_was_head: bool,
    poisoned: bool,
}

struct SyncState {
    durable: Durable,
    syncing: bool,
    poisoned: bool,
    last_sync: Instant,
}

/// What opening the audit log found: torn bytes cut, problems (damage, truncation), notes.
#[derive(Debug, Clone, Default)]
pub struct OpenFindings {
    pub torn_bytes: u64,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

pub struct AuditLog {
    pub dir: PathBuf,
    store_id: [u8; 16],
    max_file: u64,
    head_every: u64,
    state: Mutex<WriteState>,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    /// Entries covered by the `HEAD` file; also serialises writing it.
    head_written: Mutex<u64>,
    pub findings: OpenFindings,
    /// Opened by a read-only store (`AuditLog::open_read_only`): appends are refused, and
    /// readers see the live log another process writes.
    read_only: bool,
    /// The flush thread's wake-up, once [`AuditLog::open`] started it.
    flusher: OnceLock<Arc<Kick>>,
    /// A `head` entry was appended by a batched entry: the flush thread writes `HEAD`.
    head_pending: AtomicBool,
}

/// Checks an actor name: 1 to 256 bytes without control characters.
pub fn validate_actor(actor: &str) -> Result<()> {
    if actor.is_empty() || actor.len() > 256 || actor.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "invalid audit actor {actor:?}: 1 to 256 bytes without control characters"
        )));
    }
    Ok(())
}

/// Checks what an entry may hold.
pub fn validate(actor: &str, action: &str, details: &str) -> Result<()> {
    validate_actor(actor)?;
    if action.is_empty() || action.len() > 64 || !action.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Invalid(format!(
            "invalid audit action {action:?}: 1 to 64 printable ASCII characters, no spaces"
        )));
    }
    if details.len() > MAX_DETAILS {
        return Err(Error::Invalid(format!(
            "audit details of {} bytes are larger than {MAX_DETAILS}",
            details.len()
        )));
    }
    Ok(())
}

impl AuditLog {
    /// Opens (or creates) the audit log of the store at `root`: cuts a torn tail, compares
    /// the chain with `HEAD`, and records anything wrong in a `audit-recovery` entry. A
    /// background thread makes batched entries durable within about [`BATCH_DELAY`]; it
    /// ends once the log is dropped.
    pub fn open(root: &Path, store_id: [u8; 16]) -> Result<Arc<AuditLog>> {
        let log = Arc::new(AuditLog::open_with(root, store_id, MAX_FILE, HEAD_EVERY)?);
        let weak = Arc::downgrade(&log);
        let kick = Arc::new(Kick::default());
        let k = Arc::clone(&kick);
        std::thread::Builder::new()
            .name("footage-audit-flush".into())
            .spawn(move || flush_batches(weak, &k))
            .map_err(|e| Error::io(&log.dir, e))?;
        let _ = log.flusher.set(kick);
        Ok(log)
    }

    pub fn open_with(
        root: &Path,
        store_id: [u8; 16],
        max_file: u64,
        head_every: u64,
    ) -> Result<AuditLog> {
        let dir = root.join(files::AUDIT_DIR);
        let Opened {
            file,
            seq,
            path,
            end,
            chain,
            last_was_head,
            head_count,
            findings,
        } = open_files(&dir, store_id)?;
        let log = AuditLog {
            dir,
            store_id,
            max_file,
            head_every: head_every.max(2),
            state: Mutex::new(WriteState {
                file: Arc::new(file),
                seq,
                path,
                end,
                chain,
                last_was_head,
                poisoned: false,
            }),
            sync: Mutex::new(SyncState {
                durable: Durable { chain, seq, end },
                syncing: false,
                poisoned: false,
                last_sync: Instant::now(),
            }),
            synced_cv: Condvar::new(),
            head_written: Mutex::new(head_count),
            findings,
            read_only: false,
            flusher: OnceLock::new(),
            head_pending: AtomicBool::new(false),
        };
        let f = &log.findings;
        if f.torn_bytes > 0 || !f.problems.is_empty() {
            let details = serde_json::json!({
                "torn_bytes": f.torn_bytes,
                "problems": f.problems,
                "notes": f.notes,
            });
            log.append(
                STORE_ACTOR,
                "audit-recovery",
                None,
                &details.to_string(),
                Durability::Durable,
            )?;
        }
        Ok(log)
    }

    /// Opens the audit log of a store another process owns, for reading only: nothing is
    /// created, cut or written (no torn tail is cut: a partial entry at the end of the newest
    /// file is one still being written, "not yet"), no thread is started, and `append`,
    /// `close` and `write_head_file` write nothing. `written` is [`super::LIVE`] and `head`
    /// is read from the files when asked.
    pub fn open_read_only(root: &Path, store_id: [u8; 16]) -> Result<Arc<AuditLog>> {
        let dir = root.join(files::AUDIT_DIR);
        // Never written: a read-only handle on the store directory stands in for the file.
        let file = File::open(root).map_err(|e| Error::io(root, e))?;
        let chain = super::open::live_chain(&dir, store_id);
        let (seq, path) = files::list(&dir)?
            .pop()
            .unwrap_or((0, dir.join(files::file_name(1))));
        Ok(Arc::new(AuditLog {
            dir,
            store_id,
            max_file: MAX_FILE,
            head_every: HEAD_EVERY,
            state: Mutex::new(WriteState {
                file: Arc::new(file),
                seq,
                path,
                end: 0,
                chain,
                last_was_head: true,
                poisoned: true,
            }),
            sync: Mutex::new(SyncState {
                durable: Durable { chain, seq, end: 0 },
                syncing: false,
                poisoned: true,
                last_sync: Instant::now(),
            }),
            synced_cv: Condvar::new(),
            // Nothing to write on drop: `HEAD` is the writer's.
            head_written: Mutex::new(u64::MAX),
            findings: OpenFindings::default(),
            read_only: true,
            flusher: OnceLock::new(),
            head_pending: AtomicBool::new(false),
        }))
    }

    /// Appends an entry for `action`, with the durability its kind asks for.
    pub fn record(
        &self,
        actor: &str,
        action: &super::Action,
        segment: Option<u64>,
        details: &str,
    ) -> Result<RawEntry> {
        self.append(actor, action.name(), segment, details, action.durability())
    }

    /// Appends an entry; with [`Durability::Durable`] returns only once it is durable.
    pub fn append(
        &self,
        actor: &str,
        action: &str,
        segment: Option<u64>,
        details: &str,
        durability: Durability,
    ) -> Result<RawEntry> {
        if self.read_only {
            return Err(Error::ReadOnly {
                what: format!("appending {action:?} to the audit log"),
            });
        }
        validate(actor, action, details)?;
        let (entry, head_due) = {
            let mut st = self.state.lock();
            let entry = self.append_locked(&mut st, actor, action, segment, details)?;
            let due = st.chain.count.is_multiple_of(self.head_every);
            if due {
                self.append_head_locked(&mut st)?;
            }
            (entry, due)
        };
        let wanted = entry.index + 1;
        let sync_now = head_due
            || match durability {
                Durability::Durable => true,
                Durability::Batched => {
                    let s = self.sync.lock();
                    wanted.saturating_sub(s.durable.chain.count) >= BATCH_MAX
                        || s.last_sync.elapsed() >= BATCH_DELAY
                }
            };
        crate::fail::point("audit.appended");
        if !sync_now {
            return Ok(entry);
        }
        if let (Durability::Batched, Some(kick)) = (durability, self.flusher.get()) {
            // The flush thread syncs (and writes HEAD) now; this caller does not wait.
            if head_due {
                self.head_pending.store(true, Ordering::SeqCst);
            }
            kick.kick();
            return Ok(entry);
        }
        self.sync_to(wanted)?;
        if head_due {
            self.write_head_file()?;
        }
        Ok(entry)
    }

    fn append_locked(
        &self,
        st: &mut WriteState,
        actor: &str,
        action: &str,
        segment: Option<u64>,
        details: &str,
    ) -> Result<RawEntry> {
        if st.poisoned {
            return Err(Error::Poisoned {
                path: st.path.clone(),
            });
        }
        let mut entry = RawEntry {
            index: st.chain.count,
            time_us: crate::util::now_us(),
            prev_hash: st.chain.hash,
            actor: actor.to_string(),
            action: action.to_string(),
            segment,
            details: details.to_string(),
            hash: [0; 32],
        };
        entry.hash = entry.compute_hash();
        let frame = entry.encode_frame();
        if st.end + frame.len() as u64 > self.max_file && st.end > FILE_HEADER_LEN as u64 {
            self.roll_over(st)?;
        }
        if let Err(e) = crate::fsio::write_all_at(&st.file, &frame, st.end) {
            // Cut back so no partial entry stays behind; if even that fails, stop writing.
            if crate::fsio::set_len(&st.file, st.end).is_err() {
                st.poisoned = true;
            }
            return Err(Error::io(&st.path, e));
        }
        st.end += frame.len() as u64;
        st.chain = Chain {
            count: entry.index + 1,
            hash: entry.hash,
        };
        st.last_was_head = action == "head" && actor == STORE_ACTOR;
        Ok(entry)
    }

    /// Records the chain head so far as an entry.
    fn append_head_locked(&self, st: &mut WriteState) -> Result<RawEntry> {
        let details = serde_json::json!({
            "count": st.chain.count,
            "head": crate::util::hex(&st.chain.hash),
        });
        self.append_locked(st, STORE_ACTOR, "head", None, &details.to_string())
    }

    /// Makes the current file durable and starts the next one.
    fn roll_over(&self, st: &mut WriteState) -> Result<()> {
        if let Err(e) = crate::fsio::sync_data(&st.file, "audit.roll_over") {
            st.poisoned = true;
            return Err(Error::io(&st.path, e));
        }
        let header = FileHeader {
            seq: st.seq + 1,
            store_id: self.store_id,
            first_index: st.chain.count,
            created_us: crate::util::now_us(),
            prev_hash: st.chain.hash,
        };
        let (file, path) = files::create(&self.dir, &header)?;
        st.file = Arc::new(file);
        st.seq = header.seq;
        st.path = path;
        st.end = FILE_HEADER_LEN as u64;
        Ok(())
    }

    pub fn write_head_file(&self) -> Result<()> {
        let mut written = self.head_written.lock();
        let d = self.sync.lock().durable;
        if d.chain.count <= *written {
            return Ok(());
        }
        let head = super::format::HeadFile {
            seq: d.seq,
            store_id: self.store_id,
            count: d.chain.count,
            end: d.end,
            hash: d.chain.hash,
            written_us: crate::util::now_us(),
        };
        files::write_head(&self.dir, &head)?;
        *written = d.chain.count;
        Ok(())
    }

    /// The durable chain head.
    pub fn head(&self) -> Chain {
        if self.read_only {
            return super::open::live_chain(&self.dir, self.store_id);
        }
        self.sync.lock().durable.chain
    }

    /// Whether this log was opened read-only ([`AuditLog::open_read_only`]).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Entries appended so far (durable or not): what a later `sync_to` must reach to cover
    /// every entry appended before this call.
    pub fn appended(&self) -> u64 {
        self.state.lock().chain.count
    }

    /// The newest file and how far it is written, for readers that must not see a partial
    /// entry.
    pub fn written(&self) -> (u32, u64) {
        if self.read_only {
            return super::LIVE;
        }
        let st = self.state.lock();
        (st.seq, st.end)
    }

    /// Appends a `head` entry (unless the last entry is one), makes everything durable and
    /// writes `HEAD`.
    pub fn close(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let n = {
            let mut st = self.state.lock();
            if st.chain.count > 0 && !st.last_was_head {
                self.append_head_locked(&mut st)?;
            }
            st.chain.count
        };
        self.sync_to(n)?;
        self.write_head_file()
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if self.read_only {
            return;
        }
        // Best effort: batched entries become durable and HEAD follows them.
        let n = self.state.lock().chain.count;
        if self.sync_to(n).is_ok() {
            let _ = self.write_head_file();
        }
    }
}
