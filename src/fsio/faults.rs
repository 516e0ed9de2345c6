//! Fault injection for the I/O layer (tests only; doc-hidden): make the N-th write, fsync or
//! length change of the injecting thread fail with `ENOSPC` or `EIO`, or write only part of
//! its buffer. An injected fsync failure also drops what that file had not made durable,
//! as a kernel that lost the dirty pages would: while armed, the layer keeps an undo log of
//! every file changed since its last successful fsync (the bytes each write or cut replaced,
//! the length at that fsync) and, when an fsync of the file fails, puts the old bytes back
//! and restores the length. An engine that ignored the error would then lose acknowledged
//! data, which the fault sweep sees.
//!
//! ```
//! use footage::faults::{self, Fault, Op};
//! faults::inject(Op::Sync, 3, Fault::Eio, false); // the 3rd fsync from here fails
//! // ... ingest, expect an error ...
//! let seen = faults::clear();                    // disarm; ops counted while armed
//! assert!(seen.fired <= 1);
//! ```
//!
//! Invariants: while nothing is armed (every production run) a check is one relaxed atomic
//! load and changes nothing; only operations made by the thread that armed the injector are
//! counted or failed, so background threads (the audit flush thread) cannot make a test's
//! positions shift; an injected short write really writes the bytes it reports; every
//! thread's writes are kept in the undo log (a failed fsync loses them all, whoever wrote).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::Ordering;
use std::thread::ThreadId;

use parking_lot::Mutex;

use super::{HOOKS, HOOK_FAULTS};

/// The kinds of operation that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// One `pwrite` call (a write of a record may take several).
    Write,
    /// One `fdatasync` or `fsync` (of a file or a directory).
    Sync,
    /// One `ftruncate` (cutting back a failed append, or a torn tail).
    SetLen,
}

/// What a failing operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails with `ENOSPC` (a full disk).
    NoSpace,
    /// Fails with `EIO` (a failing device; for fsync: written pages lost).
    Eio,
    /// A write stores only the first half of its buffer and reports that count; the next
    /// write fails with `ENOSPC` (how a disk fills up in the middle of a write).
    ShortThenNoSpace,
    /// A write stores only the first half of its buffer and reports that count; nothing
    /// fails (the caller must write the rest). Acts as `Eio` on other operations.
    ShortCount,
}

/// What the injector saw while it was armed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub writes: u64,
    pub syncs: u64,
    pub set_lens: u64,
    /// Faults that fired (a sticky fault counts each time).
    pub fired: u64,
}

struct Plan {
    op: Op,
    /// 1-based position of the failing operation of kind `op`; 0 = count only.
    nth: u64,
    fault: Fault,
    /// Every operation of kind `op` from the `nth` on fails (a disk that stays full).
    sticky: bool,
}

struct Injector {
    thread: ThreadId,
    plans: Vec<Plan>,
    /// A short write happened: the next write fails with ENOSPC.
    nospace_next: bool,
    seen: Seen,
}

static INJECTOR: Mutex<Option<Injector>> = Mutex::new(None);

/// What a file held at its last successful fsync, as far as the armed injector saw it: its
/// length then, and the bytes each later write or cut replaced (oldest first).
struct Undo {
    synced_len: u64,
    replaced: Vec<(u64, Vec<u8>)>,
}

/// Undo logs by inode, while the injector is armed.
static UNDO: Mutex<Option<HashMap<u64, Undo>>> = Mutex::new(None);

fn armed() -> bool {
    HOOKS.load(Ordering::Relaxed) & HOOK_FAULTS != 0
}

/// Arms the injector for the calling thread: the `nth` (1-based) operation of kind `op` from
/// now on fails with `fault` (with `sticky`, every one from the `nth` on). `nth == 0` only
/// counts. Replaces any earlier injection and resets the counts.
pub fn inject(op: Op, nth: u64, fault: Fault, sticky: bool) {
    *INJECTOR.lock() = Some(Injector {
        thread: std::thread::current().id(),
        plans: vec![Plan {
            op,
            nth,
            fault,
            sticky,
        }],
        nospace_next: false,
        seen: Seen::default(),
    });
    *UNDO.lock() = Some(HashMap::new());
    HOOKS.fetch_or(HOOK_FAULTS, Ordering::Relaxed);
}

/// Adds a second fault to the armed injector (positions count from its arming), e.g. a
/// failed write whose cut-back fails too. Does nothing when it is not armed.
pub fn inject_also(op: Op, nth: u64, fault: Fault) {
    if let Some(inj) = INJECTOR.lock().as_mut() {
        inj.plans.push(Plan {
            op,
            nth,
            fault,
            sticky: false,
        });
    }
}

/// Counts the calling thread's operations without failing any.
pub fn count() {
    inject(Op::Write, 0, Fault::Eio, false);
}

/// What has been seen since the injector was armed (zero when disarmed).
pub fn seen() -> Seen {
    INJECTOR.lock().as_ref().map(|i| i.seen).unwrap_or_default()
}

/// Disarms the injector; returns what it saw.
pub fn clear() -> Seen {
    HOOKS.fetch_and(!HOOK_FAULTS, Ordering::Relaxed);
    *UNDO.lock() = None;
    INJECTOR.lock().take().map(|i| i.seen).unwrap_or_default()
}

/// A fault that fired for one operation.
pub(crate) struct Fired(Fault);

/// Called by the I/O layer before each operation: `Some` when it must fail.
#[inline]
pub(crate) fn check(op: Op) -> Option<Fired> {
    if !armed() {
        return None;
    }
    check_slow(op)
}

#[cold]
fn check_slow(op: Op) -> Option<Fired> {
    let mut guard = INJECTOR.lock();
    let inj = guard.as_mut()?;
    if inj.thread != std::thread::current().id() {
        return None;
    }
    let n = match op {
        Op::Write => {
            inj.seen.writes += 1;
            inj.seen.writes
        }
        Op::Sync => {
            inj.seen.syncs += 1;
            inj.seen.syncs
        }
        Op::SetLen => {
            inj.seen.set_lens += 1;
            inj.seen.set_lens
        }
    };
    if op == Op::Write && inj.nospace_next {
        inj.nospace_next = false;
        inj.seen.fired += 1;
        return Some(Fired(Fault::NoSpace));
    }
    let fault = inj
        .plans
        .iter()
        .find(|p| p.op == op && p.nth > 0 && (n == p.nth || (p.sticky && n > p.nth)))?
        .fault;
    inj.seen.fired += 1;
    if op == Op::Write && fault == Fault::ShortThenNoSpace {
        inj.nospace_next = true;
    }
    Some(Fired(fault))
}

fn os_error(fault: Fault) -> io::Error {
    match fault {
        Fault::NoSpace | Fault::ShortThenNoSpace => io::Error::from_raw_os_error(libc::ENOSPC),
        Fault::Eio | Fault::ShortCount => io::Error::from_raw_os_error(libc::EIO),
    }
}

impl Fired {
    /// The failing form of a `pwrite`.
    pub(crate) fn write_at(self, file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
        match self.0 {
            Fault::ShortThenNoSpace | Fault::ShortCount if buf.len() > 1 => {
                let half = buf.get(..buf.len() / 2).unwrap_or_default();
                file.write_at(half, offset)
            }
            Fault::ShortCount => file.write_at(buf, offset),
            f => Err(os_error(f)),
        }
    }

    /// The failing form of an fsync or length change.
    pub(crate) fn fail(self) -> io::Result<()> {
        Err(os_error(self.0))
    }
}

/// Before a write (or hole punch) of `len` bytes at `offset`: keeps the bytes it replaces.
pub(crate) fn before_write(file: &File, offset: u64, len: u64) {
    if armed() {
        keep_replaced(file, offset, offset.saturating_add(len));
    }
}

/// Before a length change: keeps the bytes a cut removes.
pub(crate) fn before_set_len(file: &File, len: u64) {
    if armed() {
        keep_replaced(file, len, u64::MAX);
    }
}

fn keep_replaced(file: &File, from: u64, to: u64) {
    let Ok(m) = file.metadata() else { return };
    let mut guard = UNDO.lock();
    let Some(map) = guard.as_mut() else { return };
    let undo = map.entry(m.ino()).or_insert(Undo {
        synced_len: m.len(),
        replaced: Vec::new(),
    });
    let to = to.min(m.len());
    if to <= from {
        return;
    }
    let mut old = vec![0u8; (to - from) as usize];
    if file.read_exact_at(&mut old, from).is_ok() {
        undo.replaced.push((from, old));
    }
}

/// After a successful fsync: the file's current content is what a crash keeps.
pub(crate) fn synced(file: &File) {
    if !armed() {
        return;
    }
    let Ok(m) = file.metadata() else { return };
    if let Some(map) = UNDO.lock().as_mut() {
        map.remove(&m.ino());
    }
}

/// After an injected fsync failure: the file goes back to what its last successful fsync
/// made durable (replaced bytes restored newest first, then the length), as the page cache
/// of a kernel that dropped the dirty pages would.
pub(crate) fn drop_unsynced(file: &File) {
    let Ok(m) = file.metadata() else { return };
    let undo = UNDO.lock().as_mut().and_then(|map| map.remove(&m.ino()));
    if let Some(undo) = undo {
        for (offset, old) in undo.replaced.iter().rev() {
            let _ = file.write_all_at(old, *offset);
        }
        let _ = file.set_len(undo.synced_len);
    }
}
