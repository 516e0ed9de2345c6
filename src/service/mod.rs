//! `footage serve` as a station's long-running service: the background jobs it runs over the
//! store (retention, scrubbing, checkpoints, audit head publishing, disk pressure), their state
//! ([`ServiceStatus`], in `/api/stats`), the metrics registry (`/metrics`), log set-up,
//! readiness notification to systemd and the drain on SIGTERM.
//!
//! ```text
//!  serve.rs ── Ops (server/ops: metrics, draining flag, status sources) ──> server (App.ops)
//!     │              ▲ Jobs: status()/samples()                         ├─ ops/http.rs layer: 503 uploads while draining,
//!     └─ Service::start ─ jobs.rs threads ─ Store                       │  response/latency/video-byte counters
//!                         retention · checkpoint · audit-head · disk    └─ GET /metrics
//!                         (work.rs: what one run of each does)
//!                         + ScrubHandle (scrub.rs)
//! ```
//!
//! The service sits above the server: it attaches its jobs to the server's [`Ops`] through
//! the [`Jobs`] trait, and the server never imports the service.
//!
//! Invariants:
//! - every job runs on a thread of its own, never on the server's reactor, and holds a
//!   `Store` clone only while the service runs: [`Service::stop`] joins every job (a run in
//!   progress finishes) and stops the scrub (its cursor saved) before the caller closes the
//!   store;
//! - the retention job decides by the real clock (`Store::retention_apply(now_us())`), so a
//!   scheduled run can never act at a pretend time;
//! - a job's failure is visible (status `last_error`, a `..._errors_total` metric, an error
//!   log event, the audit log for retention) and never stops the service;
//! - [`Ops`] is the one handle others use: the server, the control channel (C), uploads (A)
//!   and the watched folder (D) read [`Ops::status`] and register metrics and status sections
//!   on it; it holds the service weakly, so it never keeps a stopped service alive.

/// `[service]` of footage.toml: parsed and checked with the rest of the store's configuration.
pub use crate::config::service as config;

pub mod jobs;
pub mod logs;
pub mod notify;
mod work;

use work::{checkpoint_work, disk_work, fleet_job, publish_work, restore_work, retention_work};

pub use crate::server::ops::{
    http, metrics, store_samples, Jobs, Metrics, Ops, Sample, SampleSource, StatusSource,
};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::input::time::format_time;
use crate::store::{ScrubHandle, ScrubOptions, ScrubStatus, Store};

pub use config::{ServiceConfig, Settings};
pub use jobs::JobStatus;

/// Actor of the service's retention and disk-pressure runs in the audit log.
pub const SERVICE_ACTOR: &str = "retention";

/// Free space of one data dir against the watermark (as the disk job last read it).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DiskSpace {
    pub path: String,
    pub available: bool,
    pub free_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    /// Used / total.
    pub used_ratio: Option<f64>,
    /// policy.toml `disk.high_watermark`.
    pub high_watermark: f64,
    pub over_watermark: bool,
}

/// The background scrub as the service shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScrubState {
    pub enabled: bool,
    pub bytes_per_sec: Option<u64>,
    /// Progress and findings since the service started (absent when off).
    pub status: Option<ScrubStatus>,
}

/// Everything an operator sees of the service (`/api/stats` → `service`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceStatus {
    pub started: String,
    pub drain_timeout_s: u64,
    /// `retention`, `checkpoint`, `audit_head`, `disk`, `restore`.
    pub jobs: BTreeMap<&'static str, JobStatus>,
    pub scrub: ScrubState,
    pub disks: Vec<DiskSpace>,
}

/// Running totals of what the service's jobs did (for `/metrics`).
#[derive(Default)]
struct Totals {
    uploaded: AtomicU64,
    evicted: AtomicU64,
    deleted: AtomicU64,
    bytes_reclaimed: AtomicU64,
    failed_actions: AtomicU64,
    checkpoints: AtomicU64,
    head_publishes: AtomicU64,
}

impl Totals {
    fn add(&self, s: &crate::retention::Summary) {
        self.uploaded
            .fetch_add(s.uploaded as u64, Ordering::Relaxed);
        self.evicted.fetch_add(s.evicted as u64, Ordering::Relaxed);
        self.deleted.fetch_add(s.deleted as u64, Ordering::Relaxed);
        self.bytes_reclaimed
            .fetch_add(s.bytes_reclaimed, Ordering::Relaxed);
        self.failed_actions
            .fetch_add(s.failed.len() as u64, Ordering::Relaxed);
    }
}

impl Jobs for Service {
    fn status(&self) -> serde_json::Value {
        serde_json::to_value(Service::status(self)).unwrap_or_default()
    }

    fn samples(&self) -> Vec<Sample> {
        Service::samples(self)
    }
}

/// The running background work of `footage serve`.
pub struct Service {
    settings: Settings,
    started: String,
    jobs: Mutex<Vec<jobs::Job>>,
    scrub: Mutex<Option<ScrubHandle>>,
    /// The scrub's status when it was stopped (kept for the last status reads).
    scrub_final: Mutex<Option<ScrubStatus>>,
    disks: Arc<Mutex<Vec<DiskSpace>>>,
    totals: Arc<Totals>,
}

impl Service {
    /// Starts the jobs `settings` turns on over `store` and attaches the service to `ops`.
    /// Fails (starting nothing) if the scrub cannot start or a thread cannot be made.
    pub fn start(store: &Store, settings: Settings, ops: &Arc<Ops>) -> Result<Arc<Service>> {
        let thread_err =
            |e: std::io::Error| Error::Invalid(format!("cannot start a background job: {e}"));
        if settings.retention_every.is_some() || settings.disk_check_every.is_some() {
            store.policy()?; // a bad policy.toml is reported now, not at the first run
        }
        let totals = Arc::new(Totals::default());
        let disks = Arc::new(Mutex::new(Vec::new()));
        let scrub = match settings.scrub_rate {
            Some(rate) => Some(store.start_scrub(ScrubOptions {
                bytes_per_sec: rate,
                ..ScrubOptions::default()
            })?),
            None => None,
        };
        let mut list = Vec::new();
        list.push(match settings.retention_every {
            Some(every) => jobs::Job::start(
                "retention",
                every,
                Duration::ZERO,
                retention_work(store, &totals),
            )
            .map_err(thread_err)?,
            None => jobs::Job::off("retention"),
        });
        list.push(match settings.checkpoint_every {
            Some(every) => {
                jobs::Job::start("checkpoint", every, every, checkpoint_work(store, &totals))
                    .map_err(thread_err)?
            }
            None => jobs::Job::off("checkpoint"),
        });
        list.push(match settings.publish_head_every {
            Some(every) => {
                jobs::Job::start("audit_head", every, every, publish_work(store, &totals))
                    .map_err(thread_err)?
            }
            None => jobs::Job::off("audit_head"),
        });
        list.push(match settings.disk_check_every {
            Some(every) => jobs::Job::start(
                "disk",
                every,
                Duration::ZERO,
                disk_work(store, &totals, &disks),
            )
            .map_err(thread_err)?,
            None => jobs::Job::off("disk"),
        });
        list.push(match settings.restore_rate {
            Some(rate) => jobs::Job::start(
                "restore",
                settings.restore_every,
                Duration::ZERO,
                restore_work(store, rate, settings.restore_every),
            )
            .map_err(thread_err)?,
            None => jobs::Job::off("restore"),
        });
        list.push(fleet_job(store, &settings)?);
        let service = Arc::new(Service {
            settings,
            started: format_time(crate::now_us()),
            jobs: Mutex::new(list),
            scrub: Mutex::new(scrub),
            scrub_final: Mutex::new(None),
            disks,
            totals,
        });
        let jobs: Arc<dyn Jobs> = service.clone();
        ops.attach_jobs(Arc::downgrade(&jobs));
        tracing::info!(
            retention_every_s = service.settings.retention_every.map(|d| d.as_secs()),
            scrub_rate = service.settings.scrub_rate,
            checkpoint_every_s = service.settings.checkpoint_every.map(|d| d.as_secs()),
            publish_head_every_s = service.settings.publish_head_every.map(|d| d.as_secs()),
            disk_check_every_s = service.settings.disk_check_every.map(|d| d.as_secs()),
            restore_rate = service.settings.restore_rate,
            fleet_publish_every_s = service.settings.fleet_publish_every.map(|d| d.as_secs()),
            "background jobs started"
        );
        Ok(service)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn scrub_status(&self) -> Option<ScrubStatus> {
        match &*self.scrub.lock() {
            Some(h) => Some(h.status()),
            None => self.scrub_final.lock().clone(),
        }
    }

    /// A snapshot of every job's state.
    pub fn status(&self) -> ServiceStatus {
        let jobs = self
            .jobs
            .lock()
            .iter()
            .map(|j| (j.name(), j.status()))
            .collect();
        ServiceStatus {
            started: self.started.clone(),
            drain_timeout_s: self.settings.drain_timeout.as_secs(),
            jobs,
            scrub: ScrubState {
                enabled: self.settings.scrub_rate.is_some(),
                bytes_per_sec: self.settings.scrub_rate,
                status: self.scrub_status(),
            },
            disks: self.disks.lock().clone(),
        }
    }

    /// Stops every job (waiting for runs in progress) and the scrub (saving its cursor).
    /// Idempotent; call before closing the store.
    pub fn stop(&self) {
        let mut jobs = std::mem::take(&mut *self.jobs.lock());
        for j in &mut jobs {
            tracing::info!(job = j.name(), "stopping background job");
            j.stop();
        }
        // Keep the final states visible.
        *self.jobs.lock() = jobs;
        if let Some(h) = self.scrub.lock().take() {
            tracing::info!("stopping the background scrub");
            *self.scrub_final.lock() = Some(h.stop());
        }
    }

    /// The jobs' samples for `/metrics`.
    pub fn samples(&self) -> Vec<Sample> {
        let t = &self.totals;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut v = Vec::new();
        for (action, n) in [
            ("uploaded", ld(&t.uploaded)),
            ("evicted", ld(&t.evicted)),
            ("deleted", ld(&t.deleted)),
        ] {
            v.push(
                Sample::counter(
                    "footage_retention_actions_total",
                    "Segments uploaded, evicted or deleted by the service's retention and disk-pressure runs",
                    n,
                )
                .label("action", action),
            );
        }
        v.push(Sample::counter(
            "footage_retention_reclaimed_bytes_total",
            "Bytes freed by the service's retention and disk-pressure runs",
            ld(&t.bytes_reclaimed),
        ));
        v.push(Sample::counter(
            "footage_retention_failed_actions_total",
            "Retention actions that failed (retried by the next run)",
            ld(&t.failed_actions),
        ));
        v.push(Sample::counter(
            "footage_checkpoints_total",
            "Catalog checkpoints written by the checkpoint job",
            ld(&t.checkpoints),
        ));
        v.push(Sample::counter(
            "footage_audit_head_publishes_total",
            "Audit chain heads published to the cloud tier",
            ld(&t.head_publishes),
        ));
        for j in self.jobs.lock().iter() {
            let s = j.status();
            v.push(
                Sample::counter(
                    "footage_job_runs_total",
                    "Background job runs finished",
                    s.runs,
                )
                .label("job", j.name()),
            );
            v.push(
                Sample::counter(
                    "footage_job_errors_total",
                    "Background job runs that failed",
                    s.errors,
                )
                .label("job", j.name()),
            );
            v.push(
                Sample::gauge(
                    "footage_job_enabled",
                    "1 when the background job is turned on",
                    if s.enabled { 1.0 } else { 0.0 },
                )
                .label("job", j.name()),
            );
        }
        if let Some(s) = self.scrub_status() {
            v.push(Sample::counter(
                "footage_scrub_bytes_total",
                "Bytes checked by the background scrub since the service started",
                s.bytes,
            ));
            v.push(Sample::counter(
                "footage_scrub_segments_total",
                "Segments checked by the background scrub since the service started",
                s.checked,
            ));
            for (kind, n) in [
                ("corrupt", s.corrupt),
                ("repaired", s.repaired),
                ("lost", s.lost),
            ] {
                v.push(
                    Sample::counter(
                        "footage_scrub_findings_total",
                        "Damaged segments found by the background scrub, by outcome",
                        n,
                    )
                    .label("kind", kind),
                );
            }
            v.push(Sample::counter(
                "footage_scrub_passes_total",
                "Complete scrub passes since the service started",
                s.passes_done,
            ));
        }
        v
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}
