//! Fault injection for the I/O layer (tests only; doc-hidden): make the N-th write, fsync or
//! length change of the injecting thread fail with `ENOSPC` or `EIO`, or write only part of
//! its buffer.
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
//! positions shift; an injected short write really writes the bytes it reports.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;

use parking_lot::Mutex;

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

static ARMED: AtomicBool = AtomicBool::new(false);
static INJECTOR: Mutex<Option<Injector>> = Mutex::new(None);

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
    ARMED.store(true, Ordering::Relaxed);
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
    ARMED.store(false, Ordering::Relaxed);
    INJECTOR.lock().take().map(|i| i.seen).unwrap_or_default()
}

/// A fault that fired for one operation.
pub(crate) struct Fired(Fault);

/// Called by the I/O layer before each operation: `Some` when it must fail.
#[inline]
pub(crate) fn check(op: Op) -> Option<Fired> {
    if !ARMED.load(Ordering::Relaxed) {
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
