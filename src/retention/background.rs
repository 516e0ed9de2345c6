//! Background retention: `Store::start_retention` runs `retention apply` (uploads, evictions,
//! deletions, dropping and compacting volumes) periodically on a thread of its own.
//!
//! Invariants:
//! - the thread holds only a weak reference to the store between runs, so it never keeps a
//!   store open by itself; it ends when the handle is dropped (or stopped: the call waits
//!   for a run in progress to finish) or when the store is gone;
//! - a failed run, or a run with failed actions, is logged (an error event) and recorded in the
//!   audit log (action `retention-error`, durable) and the thread goes on; a panic inside a
//!   run is caught and treated the same way, so nothing is left half-stopped;
//! - a run that changed something is recorded in the audit log (action `retention`, its
//!   summary), under the handle's actor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::Summary;
use crate::audit::Action;
use crate::error::{Error, Result};
use crate::store::{Inner, Store};

/// A clock for retention decisions: microseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Settings of background retention.
#[derive(Clone)]
pub struct RetentionOptions {
    /// Time between the end of one run and the start of the next. Default: 1 hour.
    pub interval: Duration,
    /// Actor of the changes and audit entries. Default: `retention`.
    pub actor: String,
    /// The time each run decides by. Default: the system clock. Tests inject their own.
    pub clock: Option<Clock>,
}

impl Default for RetentionOptions {
    fn default() -> RetentionOptions {
        RetentionOptions {
            interval: Duration::from_secs(3600),
            actor: "retention".into(),
            clock: None,
        }
    }
}

struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
    runs: AtomicU64,
    /// The outcome of the newest run.
    last: Mutex<Option<std::result::Result<Summary, String>>>,
    ran: Condvar,
}

/// Runs retention in the background until dropped (or [`RetentionHandle::stop`]ped).
pub struct RetentionHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Store {
    /// Starts running `retention apply` every `opts.interval` on a background thread (the
    /// first run starts at once). Drop the handle, or call `stop`, before closing the store
    /// for a clean stop; the thread also ends by itself once the store is dropped.
    pub fn start_retention(&self, opts: RetentionOptions) -> Result<RetentionHandle> {
        self.inner.writable("background retention")?;
        crate::store::check_actor(&opts.actor)?;
        self.policy()?; // a bad policy.toml is reported now, not only in stderr
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            runs: AtomicU64::new(0),
            last: Mutex::new(None),
            ran: Condvar::new(),
        });
        let weak = Arc::downgrade(&self.inner);
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("footage-retention".into())
            .spawn(move || run_loop(weak, sh, opts))
            .map_err(|e| Error::Invalid(format!("cannot start the retention thread: {e}")))?;
        Ok(RetentionHandle {
            shared,
            thread: Some(thread),
        })
    }
}

fn run_loop(weak: Weak<Inner>, sh: Arc<Shared>, opts: RetentionOptions) {
    loop {
        if *sh.stop.lock() {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        let store = Store { inner, actor: None };
        let now = opts
            .clock
            .as_ref()
            .map_or_else(crate::util::now_us, |c| c());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.retention_apply(now, false, &opts.actor, &mut |_| {})
        }));
        let outcome = match outcome {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("retention run panicked".to_string()),
        };
        record_retention_run(&store, &opts.actor, &outcome);
        drop(store);
        {
            // Counted under the same lock waiters check it with, so none misses the wake-up.
            let mut last = sh.last.lock();
            *last = Some(outcome);
            sh.runs.fetch_add(1, Ordering::SeqCst);
            sh.ran.notify_all();
        }
        let mut stop = sh.stop.lock();
        if !*stop {
            sh.wake.wait_for(&mut stop, opts.interval);
        }
    }
}

/// Writes what a run did to the audit log, and its failures to the log too. The service's
/// scheduled runs (src/service) record theirs here as well.
pub(crate) fn record_retention_run(
    store: &Store,
    actor: &str,
    outcome: &std::result::Result<Summary, String>,
) {
    let entry = match outcome {
        Ok(s) if !s.failed.is_empty() => Some((Action::RetentionError, serde_json::json!(s))),
        Ok(s) if s.uploaded + s.evicted + s.deleted + s.compacted > 0 || s.bytes_reclaimed > 0 => {
            Some((Action::Retention, serde_json::json!(s)))
        }
        Ok(_) => None,
        Err(e) => Some((Action::RetentionError, serde_json::json!({ "error": e }))),
    };
    let Some((action, details)) = entry else {
        return;
    };
    if action == Action::RetentionError {
        tracing::error!(target: "footage::retention", %details, "background retention failed");
    }
    if let Err(e) = store.audit(actor, action, None, details) {
        tracing::error!(target: "footage::retention", error = %e, "background retention: cannot record in the audit log");
    }
}

impl RetentionHandle {
    /// Runs finished so far.
    pub fn runs(&self) -> u64 {
        self.shared.runs.load(Ordering::SeqCst)
    }

    /// The summary of the newest run (or why it failed).
    pub fn last(&self) -> Option<std::result::Result<Summary, String>> {
        self.shared.last.lock().clone()
    }

    /// Waits until at least `n` runs have finished, or `timeout` passed; true if they have.
    pub fn wait_for_runs(&self, n: u64, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut last = self.shared.last.lock();
        while self.runs() < n {
            if self.shared.ran.wait_until(&mut last, deadline).timed_out() {
                return self.runs() >= n;
            }
        }
        true
    }

    /// Stops the thread, waiting for a run in progress to finish.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RetentionHandle {
    fn drop(&mut self) {
        self.halt();
    }
}
