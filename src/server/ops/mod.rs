//! The operational face of a running server: [`Ops`] (the metrics registry, the draining flag,
//! status sections that uploads, the dock folder and the service's jobs register), the
//! `/metrics` endpoint and the layer that counts responses and latencies (http.rs), the
//! Prometheus text registry (metrics.rs) and the store's own samples ([`store_samples`]).
//!
//! Invariants: [`Ops`] holds what registers on it weakly or as cheap closures, so it never
//! keeps a stopped service alive; reading it never touches the store (the store's samples are
//! read by the caller, on the blocking pool); the server depends on nothing above it (the
//! service attaches its jobs through [`Jobs`]).

pub mod http;
pub mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

pub use metrics::{Metrics, Sample, SampleSource};

use crate::store::Store;

/// A status section a component adds to `/api/stats` → `service` (called per request).
pub type StatusSource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What a running service shows through [`Ops`]: its background jobs' state (`/api/stats` →
/// `service`) and their metric samples (src/service implements it).
pub trait Jobs: Send + Sync {
    /// The jobs' state as JSON.
    fn status(&self) -> serde_json::Value;
    /// The jobs' samples for `/metrics`.
    fn samples(&self) -> Vec<Sample>;
}

/// Shared by the server and the service: metrics, the draining flag, status sections.
#[derive(Default)]
pub struct Ops {
    pub metrics: Metrics,
    draining: AtomicBool,
    jobs: Mutex<Option<Weak<dyn Jobs>>>,
    sections: Mutex<Vec<(String, StatusSource)>>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl Ops {
    /// Marks the service as draining: uploads are refused with 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Adds a section `name` to the service status (`/api/stats` → `service.NAME`); uploads
    /// (`uploads`) and the watched folder (`watch`) register theirs here. A second
    /// registration under a name replaces the first.
    pub fn register_status(&self, name: &str, source: StatusSource) {
        let mut s = self.sections.lock();
        s.retain(|(n, _)| n != name);
        s.push((name.to_string(), source));
    }

    /// Attaches the background jobs of a running service (held weakly: a stopped service is
    /// not kept alive by the server).
    pub fn attach_jobs(&self, jobs: Weak<dyn Jobs>) {
        *self.jobs.lock() = Some(jobs);
    }

    fn jobs(&self) -> Option<Arc<dyn Jobs>> {
        self.jobs.lock().as_ref().and_then(Weak::upgrade)
    }

    /// The service state as JSON (what `/api/stats` shows under `service`): the background
    /// jobs when a service runs, `draining`, and every registered section. Cheap: reads
    /// snapshots, never the store.
    pub fn status(&self) -> serde_json::Value {
        let mut v = match self.jobs() {
            Some(s) => s.status(),
            None => serde_json::json!({ "background": false }),
        };
        let sections: Vec<(String, StatusSource)> = self.sections.lock().clone();
        if let Some(m) = v.as_object_mut() {
            m.insert("draining".into(), self.is_draining().into());
            for (name, src) in sections {
                m.insert(name, src());
            }
        }
        v
    }

    /// The `/metrics` exposition: the server's counters, the service's jobs, `store_samples`
    /// (read from the store by the caller, on the blocking pool) and the registered sources.
    pub fn render_metrics(&self, store_samples: Vec<Sample>) -> String {
        let mut extra = store_samples;
        extra.push(Sample::gauge(
            "footage_service_draining",
            "1 while the service drains before stopping",
            if self.is_draining() { 1.0 } else { 0.0 },
        ));
        if let Some(s) = self.jobs() {
            extra.extend(s.samples());
        }
        self.metrics.render(extra)
    }
}

/// The samples read from the store itself: ingest counters, segments, bytes, free space per
/// data dir. Reads `stats()` (statvfs, the volume list): call on a blocking thread.
pub fn store_samples(store: &Store) -> Vec<Sample> {
    let mut v = Vec::new();
    let c = store.ingest_counts();
    v.push(Sample::counter(
        "footage_ingest_segments_total",
        "New segments committed by this process since it opened the store",
        c.segments,
    ));
    v.push(Sample::counter(
        "footage_ingest_bytes_total",
        "Bytes of the new segments committed by this process since it opened the store",
        c.bytes,
    ));
    v.push(Sample::counter(
        "footage_ingest_duplicates_total",
        "Ingests answered with an already stored segment",
        c.duplicates,
    ));
    v.push(Sample::gauge(
        "footage_commits_since_checkpoint",
        "Commits and changes not yet in a checkpoint",
        store.commits_since_checkpoint() as f64,
    ));
    if let Some(c) = store.read_cache_stats() {
        v.extend(metrics::read_cache_samples(&c));
    }
    let r = store.restore_stats();
    v.push(Sample::gauge(
        "footage_restore_pending",
        "Evicted segments waiting in the restore queue",
        r.pending as f64,
    ));
    v.push(Sample::gauge(
        "footage_restore_pending_bytes",
        "Bytes of the segments waiting in the restore queue",
        r.pending_bytes as f64,
    ));
    for (outcome, n) in [("done", r.done), ("failed", r.failed)] {
        v.push(
            Sample::counter(
                "footage_restores_total",
                "Restores from the cloud tier by this process since it opened the store",
                n,
            )
            .label("outcome", outcome),
        );
    }
    v.push(Sample::counter(
        "footage_restore_bytes_total",
        "Bytes restored from the cloud tier by this process since it opened the store",
        r.bytes,
    ));
    let p = store.pin_stats();
    v.push(Sample::gauge(
        "footage_pinned_segments",
        "Segments kept local by a pin in force",
        p.segments as f64,
    ));
    v.push(Sample::gauge(
        "footage_pinned_bytes",
        "Bytes of the segments kept local by a pin in force",
        p.bytes as f64,
    ));
    match store.stats() {
        Ok(s) => {
            v.push(Sample::gauge(
                "footage_store_segments",
                "Segments in the store",
                s.segments as f64,
            ));
            v.push(Sample::gauge(
                "footage_store_bytes",
                "Bytes of the segments in the store",
                s.bytes as f64,
            ));
            v.push(Sample::gauge(
                "footage_store_volumes",
                "Volume files in the store",
                s.volumes as f64,
            ));
            v.push(Sample::gauge(
                "footage_store_unavailable_segments",
                "Segments whose local copy cannot be reached",
                s.unavailable_segments as f64,
            ));
            for d in &s.disks {
                v.push(
                    Sample::gauge(
                        "footage_data_dir_up",
                        "1 when the data dir is reachable",
                        if d.available { 1.0 } else { 0.0 },
                    )
                    .label("dir", &d.path),
                );
                if let (Some(free), Some(total)) = (d.free_bytes, d.total_bytes) {
                    v.push(
                        Sample::gauge(
                            "footage_data_dir_free_bytes",
                            "Free bytes of the data dir's filesystem",
                            free as f64,
                        )
                        .label("dir", &d.path),
                    );
                    v.push(
                        Sample::gauge(
                            "footage_data_dir_size_bytes",
                            "Size in bytes of the data dir's filesystem",
                            total as f64,
                        )
                        .label("dir", &d.path),
                    );
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the store's statistics");
        }
    }
    v
}
