//! A periodic background job: a thread that runs one piece of work every `every`, and the
//! state an operator sees of it ([`JobStatus`]).
//!
//! Invariants:
//! - one run at a time per job; the next starts `every` after the previous one ended (a slow
//!   run never piles up runs behind it);
//! - a run's error, or a panic inside it, is recorded in the status (and logged) and the job
//!   goes on; a job never takes the service down;
//! - [`Job::stop`] wakes a sleeping job at once and waits for a run in progress to finish
//!   (the work itself decides its safe points: a retention run completes the segment it is
//!   on and the rest of its pass), so nothing is left half-done when the store closes.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use crate::input::time::format_time;

/// The work of one run: a JSON summary of what it did, or why it failed.
pub type Work = Box<dyn FnMut() -> Result<serde_json::Value, String> + Send>;

/// What an operator sees of a job (`/api/stats` → `service.jobs`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct JobStatus {
    pub enabled: bool,
    /// Seconds between the end of a run and the start of the next.
    pub every_s: Option<u64>,
    pub running: bool,
    /// Runs finished, and how many of them failed.
    pub runs: u64,
    pub errors: u64,
    /// Times of the newest run (RFC 3339, UTC).
    pub last_start: Option<String>,
    pub last_end: Option<String>,
    pub last_duration_s: Option<f64>,
    /// What the newest successful run did.
    pub last_outcome: Option<serde_json::Value>,
    /// Why the newest run failed (cleared by a success).
    pub last_error: Option<String>,
    pub next_run: Option<String>,
}

struct Shared {
    status: Mutex<JobStatus>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// A running job; stops (waiting for a run in progress) when [`Job::stop`]ped or dropped.
pub struct Job {
    name: &'static str,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Job {
    /// A job that is off: it only reports `enabled: false`.
    pub fn off(name: &'static str) -> Job {
        Job {
            name,
            shared: Arc::new(Shared {
                status: Mutex::new(JobStatus::default()),
                stop: Mutex::new(true),
                wake: Condvar::new(),
            }),
            thread: None,
        }
    }

    /// Starts `work` every `every`; the first run after `first` (zero: at once).
    pub fn start(
        name: &'static str,
        every: Duration,
        first: Duration,
        mut work: Work,
    ) -> std::io::Result<Job> {
        let shared = Arc::new(Shared {
            status: Mutex::new(JobStatus {
                enabled: true,
                every_s: Some(every.as_secs()),
                next_run: Some(at(first)),
                ..JobStatus::default()
            }),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("footage-{name}"))
            .spawn(move || {
                let mut wait = first;
                loop {
                    {
                        let mut stop = sh.stop.lock();
                        if !*stop && !wait.is_zero() {
                            sh.wake.wait_for(&mut stop, wait);
                        }
                        if *stop {
                            return;
                        }
                    }
                    run_once(name, &sh, &mut work, every);
                    wait = every;
                }
            })?;
        Ok(Job {
            name,
            shared,
            thread: Some(thread),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn status(&self) -> JobStatus {
        self.shared.status.lock().clone()
    }

    /// Stops the job: at once if it sleeps, after the run in progress otherwise.
    pub fn stop(&mut self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(job = self.name, "background job thread panicked");
            }
            self.shared.status.lock().next_run = None;
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The RFC 3339 time `d` from now.
fn at(d: Duration) -> String {
    let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    format_time(crate::now_us().saturating_add(us))
}

fn run_once(name: &'static str, sh: &Shared, work: &mut Work, every: Duration) {
    let started = Instant::now();
    {
        let mut s = sh.status.lock();
        s.running = true;
        s.last_start = Some(format_time(crate::now_us()));
        s.next_run = None;
    }
    tracing::debug!(job = name, "background job started");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *work))
        .unwrap_or_else(|_| Err(format!("the {name} job panicked")));
    let took = started.elapsed();
    let mut s = sh.status.lock();
    s.running = false;
    s.runs += 1;
    s.last_end = Some(format_time(crate::now_us()));
    s.last_duration_s = Some(took.as_secs_f64());
    s.next_run = Some(at(every));
    match outcome {
        Ok(v) => {
            // The disk check runs every minute, and a run with nothing to do (the restore
            // queue every 10 s while empty) says only that: their routine runs are debug
            // events (the disk check warns by itself when a dir crosses the watermark).
            if name == "disk" || v.get("skipped").is_some() {
                tracing::debug!(job = name, took_s = took.as_secs_f64(), outcome = %v, "background job finished");
            } else {
                tracing::info!(job = name, took_s = took.as_secs_f64(), outcome = %v, "background job finished");
            }
            s.last_outcome = Some(v);
            s.last_error = None;
        }
        Err(e) => {
            tracing::error!(job = name, took_s = took.as_secs_f64(), error = %e, "background job failed");
            s.errors += 1;
            s.last_error = Some(e);
        }
    }
}
