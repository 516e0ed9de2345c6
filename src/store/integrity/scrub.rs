//! The background scrub: a thread that walks every segment in id order, checks its local copy
//! (chunk CRCs and SHA-256, `check.rs`) at a limited bandwidth, records what it finds, and
//! repairs damaged chunks of segments that have a verified cloud copy (`repair.rs`).
//!
//! Invariants:
//! - one scrub thread per store; it holds only a weak reference to the store between
//!   segments, so dropping every `Store` ends it, and dropping (or `stop`ping) its
//!   [`ScrubHandle`] stops it within one chunk and joins it;
//! - the cursor (highest id checked in this pass) is persisted in `<root>/scrub/state` at
//!   most a second after it moves, when a finding changes, at the end of a pass and when the
//!   scrub stops, so a restart resumes where it was (at worst it re-checks the segments of
//!   the last second);
//! - it takes no lock for longer than one chunk read: ingest, reads and changes go on;
//! - bandwidth: after every chunk the thread sleeps until the bytes read so far fit
//!   `bytes_per_sec` since the pass segment started (a token bucket with no burst).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use super::check::Checked;
use crate::error::{Error, Result};
use crate::format::change::FLAG_UPLOADED;
use crate::store::{Inner, Store};

/// Settings of the background scrub.
#[derive(Debug, Clone)]
pub struct ScrubOptions {
    /// Bytes read per second at most. Default 50 MB/s (a 40 TB store in about 9 days).
    pub bytes_per_sec: u64,
    /// Repair damaged chunks from verified cloud copies. Default true.
    pub repair: bool,
    /// Pause after a complete pass before the next starts. Default 1 hour.
    pub pass_pause: Duration,
}

impl Default for ScrubOptions {
    fn default() -> Self {
        ScrubOptions {
            bytes_per_sec: 50_000_000,
            repair: true,
            pass_pause: Duration::from_secs(3600),
        }
    }
}

/// What the scrub has done since it was started, and where it is.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ScrubStatus {
    /// Whether the scrub thread is running.
    pub running: bool,
    /// The pass in progress (from 1).
    pub pass: u64,
    /// The highest segment id the pass in progress has finished.
    pub cursor: u64,
    /// Segments checked since this handle started.
    pub checked: u64,
    /// Video bytes checked since this handle started.
    pub bytes: u64,
    /// The first segment this handle checked (shows where it resumed).
    pub first: Option<u64>,
    /// Segments found corrupt since this handle started.
    pub corrupt: u64,
    /// Segments repaired from their cloud copy since this handle started.
    pub repaired: u64,
    /// Segments whose local copy could not be reached since this handle started.
    pub lost: u64,
    /// Passes completed since this handle started.
    pub passes_done: u64,
    /// The error that stopped the thread, if one did.
    pub error: Option<String>,
}

struct Control {
    stop: Mutex<bool>,
    wake: Condvar,
    status: Mutex<ScrubStatus>,
}

impl Control {
    /// Sleeps up to `d`; returns false if asked to stop.
    fn sleep(&self, d: Duration) -> bool {
        let mut stop = self.stop.lock();
        if !*stop && !d.is_zero() {
            self.wake.wait_for(&mut stop, d);
        }
        !*stop
    }

    fn stopped(&self) -> bool {
        *self.stop.lock()
    }
}

/// A running background scrub. Dropping it stops the thread and waits for it.
pub struct ScrubHandle {
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
    inner: Weak<Inner>,
}

impl ScrubHandle {
    /// What the scrub has done so far (a snapshot).
    pub fn status(&self) -> ScrubStatus {
        self.control.status.lock().clone()
    }

    /// Stops the scrub (after the chunk it is reading) and waits for the thread; the cursor
    /// is saved.
    pub fn stop(mut self) -> ScrubStatus {
        self.shutdown();
        self.status()
    }

    fn shutdown(&mut self) {
        *self.control.stop.lock() = true;
        self.control.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(inner) = self.inner.upgrade() {
            inner.scrub.running.store(false, Ordering::SeqCst);
        }
    }
}

impl Drop for ScrubHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Paces reads to a bandwidth: `consume(n)` sleeps until `n` more bytes fit.
struct Pacer {
    rate: u64,
    start: Instant,
    bytes: u64,
}

impl Pacer {
    fn new(rate: u64) -> Pacer {
        Pacer {
            rate: rate.max(1),
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// How long to wait after `n` more bytes.
    fn consume(&mut self, n: u64) -> Duration {
        self.bytes += n;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        due.saturating_sub(self.start.elapsed())
    }

    /// Forget the past (after a pause), so idle time is not spent as a burst.
    fn reset(&mut self) {
        self.start = Instant::now();
        self.bytes = 0;
    }
}

impl Store {
    /// Starts the background scrub (see the module docs). Fails if one is already running.
    pub fn start_scrub(&self, opts: ScrubOptions) -> Result<ScrubHandle> {
        self.inner.writable("the background scrub")?;
        if opts.bytes_per_sec == 0 {
            return Err(Error::Invalid(
                "the scrub rate must be at least 1 byte per second".into(),
            ));
        }
        if self.inner.scrub.running.swap(true, Ordering::SeqCst) {
            return Err(Error::Invalid(
                "a scrub is already running on this store".into(),
            ));
        }
        let control = Arc::new(Control {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            status: Mutex::new(ScrubStatus {
                running: true,
                ..ScrubStatus::default()
            }),
        });
        let weak = Arc::downgrade(&self.inner);
        let actor = self.actor.clone();
        let c = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name("footage-scrub".into())
            .spawn(move || {
                let result = run(&weak, actor, &opts, &c);
                let mut st = c.status.lock();
                st.running = false;
                if let Err(e) = result {
                    st.error = Some(e.to_string());
                }
            })
            .map_err(|e| {
                self.inner.scrub.running.store(false, Ordering::SeqCst);
                Error::Invalid(format!("cannot start the scrub thread: {e}"))
            })?;
        Ok(ScrubHandle {
            control,
            thread: Some(thread),
            inner: Arc::downgrade(&self.inner),
        })
    }

    /// Runs one scrub pass in the calling thread, from the saved cursor to the last segment
    /// (`footage scrub`); `progress` gets bytes checked.
    pub fn scrub_pass(
        &self,
        opts: &ScrubOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ScrubStatus> {
        self.inner.writable("a scrub pass (it saves its cursor)")?;
        let control = Control {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            status: Mutex::new(ScrubStatus {
                running: true,
                ..ScrubStatus::default()
            }),
        };
        let mut pacer = Pacer::new(opts.bytes_per_sec);
        while let Step::Checked = step(self, opts, &control, &mut pacer, progress)? {}
        self.inner.scrub.save()?;
        let mut st = control.status.lock().clone();
        st.running = false;
        Ok(st)
    }
}

enum Step {
    Checked,
    PassDone,
    Stopped,
}

fn run(
    weak: &Weak<Inner>,
    actor: Option<Arc<str>>,
    opts: &ScrubOptions,
    control: &Control,
) -> Result<()> {
    let mut pacer = Pacer::new(opts.bytes_per_sec);
    let mut last_save = Instant::now();
    loop {
        if control.stopped() {
            break;
        }
        let Some(inner) = weak.upgrade() else { break };
        let store = Store {
            inner,
            actor: actor.clone(),
        };
        let step = step(&store, opts, control, &mut pacer, &mut |_| {})?;
        if last_save.elapsed() >= Duration::from_secs(1) || !matches!(step, Step::Checked) {
            store.inner.scrub.save()?;
            last_save = Instant::now();
        }
        drop(store);
        match step {
            Step::Checked => {}
            Step::Stopped => break,
            Step::PassDone => {
                if !control.sleep(opts.pass_pause) {
                    break;
                }
                pacer.reset();
            }
        }
    }
    if let Some(inner) = weak.upgrade() {
        inner.scrub.save()?;
    }
    Ok(())
}

/// Checks the next segment after the cursor (or ends the pass).
fn step(
    store: &Store,
    opts: &ScrubOptions,
    control: &Control,
    pacer: &mut Pacer,
    progress: &mut dyn FnMut(u64),
) -> Result<Step> {
    let inner = &store.inner;
    let cursor = {
        let mut st = inner.scrub.state.lock();
        if st.pass == 0 {
            st.pass = 1;
            st.pass_started_us = inner.now_us();
        }
        st.cursor
    };
    let next = inner
        .catalog
        .read()
        .next_live_after(cursor)
        .map(|e| (e.id, e.bytes));
    let Some((id, _)) = next else {
        let mut st = inner.scrub.state.lock();
        st.last_pass_done_us = inner.now_us();
        st.pass += 1;
        st.cursor = 0;
        st.pass_started_us = inner.now_us();
        drop(st);
        let mut s = control.status.lock();
        s.passes_done += 1;
        s.pass = inner.scrub.state.lock().pass;
        s.cursor = 0;
        return Ok(Step::PassDone);
    };
    let mut read = 0u64;
    let checked = inner.check_local(id, &mut |n| {
        read += n;
        progress(n);
        control.sleep(pacer.consume(n))
    });
    if matches!(checked, Checked::Interrupted) {
        return Ok(Step::Stopped);
    }
    store.record_check(id, &checked)?;
    let lost = matches!(checked, Checked::Lost(_));
    let corrupt = matches!(checked, Checked::Corrupt { .. });
    let uploaded = inner
        .catalog
        .read()
        .get(id)
        .is_some_and(|e| e.flags & FLAG_UPLOADED != 0);
    let repaired = if corrupt && opts.repair && uploaded {
        matches!(
            store.repair_checked(id, checked)?,
            crate::store::RepairOutcome::Repaired { .. }
        )
    } else {
        false
    };
    {
        let mut st = inner.scrub.state.lock();
        // Another pass may have begun meanwhile (a concurrent `scrub_pass`): never move back.
        if st.cursor < id {
            st.cursor = id;
        }
    }
    let mut s = control.status.lock();
    s.checked += 1;
    s.bytes += read;
    s.first.get_or_insert(id);
    s.corrupt += u64::from(corrupt);
    s.repaired += u64::from(repaired);
    s.lost += u64::from(lost);
    let st = inner.scrub.state.lock();
    s.pass = st.pass;
    s.cursor = st.cursor;
    Ok(Step::Checked)
}
