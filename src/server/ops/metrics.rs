//! The service's metrics and their Prometheus text exposition (`GET /metrics`, format 0.0.4).
//!
//! Invariants:
//! - counters only go up (atomics, `Relaxed`: a scrape may see two counters a few events
//!   apart, never a counter going down), and every counter's name ends in `_total`; values
//!   are in base units (seconds, bytes);
//! - a family is written once per scrape: `# HELP` and `# TYPE` lines, then its samples; a
//!   histogram's buckets are cumulative, end with `le="+Inf"`, and that bucket equals
//!   `_count`;
//! - label values are escaped (`\\`, `"`, newline) so no label can break the text format;
//! - components outside this module (uploads, the watched folder, ...) add their metrics by
//!   [`Metrics::register`]ing a callback that returns [`Sample`]s; the callback runs at scrape
//!   time and must be cheap and must not block on the store.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds (seconds) of the latency histogram buckets: 1 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The kinds of query timed by the server, by endpoint (and, for searches, by the first
/// criterion of the query that the index uses: area before label before officer/device
/// before time).
pub const QUERY_KINDS: [&str; 11] = [
    "search_near",
    "search_bbox",
    "search_label",
    "search_officer",
    "search_device",
    "search_time",
    "search_all",
    "info",
    "track",
    "video",
    "stats",
];

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One sample of a counter or gauge, as a registered component reports it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Full metric name (`footage_uploads_active`); a counter's ends in `_total`.
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn counter(name: &str, help: &str, value: u64) -> Sample {
        Sample {
            name: name.into(),
            help: help.into(),
            kind: Kind::Counter,
            labels: vec![],
            value: value as f64,
        }
    }

    pub fn gauge(name: &str, help: &str, value: f64) -> Sample {
        Sample {
            name: name.into(),
            help: help.into(),
            kind: Kind::Gauge,
            labels: vec![],
            value,
        }
    }

    /// The same sample with one more label.
    pub fn label(mut self, k: &str, v: &str) -> Sample {
        self.labels.push((k.into(), v.into()));
        self
    }
}

/// A scrape-time source of samples (see [`Metrics::register`]).
pub type SampleSource = Arc<dyn Fn() -> Vec<Sample> + Send + Sync>;

/// A latency histogram with fixed buckets ([`LATENCY_BUCKETS`]).
#[derive(Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is above the highest bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counters the server updates on every request, and the registry of other sources.
#[derive(Default)]
pub struct Metrics {
    /// Responses by status class 1xx..5xx (index 0..5).
    responses: [AtomicU64; 5],
    queries: [Histogram; QUERY_KINDS.len()],
    video_bytes: AtomicU64,
    /// Upload requests answered 503 while draining.
    drain_refusals: AtomicU64,
    sources: Mutex<Vec<(String, SampleSource)>>,
}

impl Metrics {
    /// Counts a response by its status class.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).saturating_sub(1);
        if let Some(c) = self.responses.get(class) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Times a query of `kind` (one of [`QUERY_KINDS`]; others are ignored).
    pub fn query(&self, kind: &str, took: Duration) {
        if let Some(i) = QUERY_KINDS.iter().position(|k| *k == kind) {
            if let Some(h) = self.queries.get(i) {
                h.observe(took);
            }
        }
    }

    /// Counts bytes of video sent to clients.
    pub fn video_bytes(&self, n: u64) {
        self.video_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn drain_refusal(&self) {
        self.drain_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds a source of samples read at every scrape, under `name` (a second registration
    /// under the same name replaces the first). Upload sessions and the watched folder
    /// register here.
    pub fn register(&self, name: &str, source: SampleSource) {
        let mut s = self.sources.lock();
        s.retain(|(n, _)| n != name);
        s.push((name.to_string(), source));
    }

    /// The server's own samples (not the registered sources).
    fn own_samples(&self, out: &mut Families) {
        for (i, c) in self.responses.iter().enumerate() {
            out.add(
                Sample::counter(
                    "footage_http_responses_total",
                    "HTTP responses sent, by status class",
                    c.load(Ordering::Relaxed),
                )
                .label("class", &format!("{}xx", i + 1)),
            );
        }
        out.add(Sample::counter(
            "footage_video_bytes_served_total",
            "Bytes of video sent in response bodies",
            self.video_bytes.load(Ordering::Relaxed),
        ));
        out.add(Sample::counter(
            "footage_drain_refused_requests_total",
            "Upload requests answered 503 because the service was draining",
            self.drain_refusals.load(Ordering::Relaxed),
        ));
        for (kind, h) in QUERY_KINDS.iter().zip(&self.queries) {
            out.add(
                Sample::counter(
                    "footage_queries_total",
                    "Queries answered (any status), by kind",
                    h.count.load(Ordering::Relaxed),
                )
                .label("kind", kind),
            );
        }
    }

    /// The whole exposition: the server's samples, `extra` (the service's and the store's,
    /// gathered by the caller) and every registered source.
    pub fn render(&self, extra: Vec<Sample>) -> String {
        let mut fams = Families::default();
        self.own_samples(&mut fams);
        for s in extra {
            fams.add(s);
        }
        let sources: Vec<SampleSource> =
            self.sources.lock().iter().map(|(_, s)| s.clone()).collect();
        for src in sources {
            for s in src() {
                fams.add(s);
            }
        }
        let mut out = fams.render();
        self.render_histograms(&mut out);
        out
    }

    fn render_histograms(&self, out: &mut String) {
        let name = "footage_query_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time to answer a query, by kind");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (kind, h) in QUERY_KINDS.iter().zip(&self.queries) {
            // Read the count first: buckets read after it are never fewer (they may be more
            // by requests finishing meanwhile, so +Inf is taken as the sum of the buckets
            // read, which keeps the exposition consistent with itself).
            let mut cumulative = 0u64;
            for (i, b) in h.buckets.iter().enumerate() {
                cumulative += b.load(Ordering::Relaxed);
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| format!("{b}"));
                let _ = writeln!(
                    out,
                    "{name}_bucket{{kind=\"{kind}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{kind=\"{kind}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{kind=\"{kind}\"}} {cumulative}");
        }
    }
}

/// Samples grouped by family, in first-seen order of names.
#[derive(Default)]
struct Families {
    order: Vec<String>,
    fams: BTreeMap<String, (String, Kind, Vec<Sample>)>,
}

impl Families {
    fn add(&mut self, s: Sample) {
        if !valid_name(&s.name) || s.labels.iter().any(|(k, _)| !valid_name(k)) {
            tracing::warn!(metric = %s.name, "metric with an invalid name dropped");
            return;
        }
        match self.fams.get_mut(&s.name) {
            Some(f) => f.2.push(s),
            None => {
                self.order.push(s.name.clone());
                self.fams
                    .insert(s.name.clone(), (s.help.clone(), s.kind, vec![s]));
            }
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            let Some((help, kind, samples)) = self.fams.get(name) else {
                continue;
            };
            let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
            let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
            for s in samples {
                out.push_str(name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in s.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", format_value(s.value));
            }
        }
        out
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The read cache's samples (`crate::cache`): hits (and those from memory), misses,
/// evictions and damaged blocks dropped (counters since the store was opened), and its size
/// (files, memory) against its budget.
pub fn read_cache_samples(c: &crate::cache::CacheStats) -> Vec<Sample> {
    vec![
        Sample::counter(
            "footage_read_cache_hits_total",
            "Blocks of evicted footage read from the local read cache",
            c.hits,
        ),
        Sample::counter(
            "footage_read_cache_memory_hits_total",
            "Of the read cache's hits, blocks served from its in-memory layer of verified blocks",
            c.memory_hits,
        ),
        Sample::counter(
            "footage_read_cache_misses_total",
            "Blocks of evicted footage fetched from the cloud for want of a cached copy",
            c.misses,
        ),
        Sample::counter(
            "footage_read_cache_evictions_total",
            "Cached blocks dropped to keep the cache within its budget",
            c.evictions,
        ),
        Sample::counter(
            "footage_read_cache_corrupt_total",
            "Cached blocks that failed their checks, dropped and fetched again",
            c.corrupt,
        ),
        Sample::counter(
            "footage_read_cache_fill_errors_total",
            "Blocks that could not be written to the read cache",
            c.fill_errors,
        ),
        Sample::gauge(
            "footage_read_cache_bytes",
            "Bytes of the read cache's files",
            c.bytes as f64,
        ),
        Sample::gauge(
            "footage_read_cache_blocks",
            "Blocks in the read cache",
            c.blocks as f64,
        ),
        Sample::gauge(
            "footage_read_cache_max_bytes",
            "The read cache's budget in bytes",
            c.max_bytes as f64,
        ),
        Sample::gauge(
            "footage_read_cache_memory_bytes",
            "Bytes of verified blocks the read cache holds in memory",
            c.memory_bytes as f64,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_histograms_and_escaping() {
        let m = Metrics::default();
        m.response(200);
        m.response(503);
        m.query("info", Duration::from_millis(3));
        m.query("info", Duration::from_secs(60));
        m.query("nonsense", Duration::from_millis(1));
        m.register(
            "t",
            Arc::new(|| {
                vec![Sample::gauge("footage_x", "an \"x\"\nhelp", 1.5).label("dir", "a\"b\\c\n")]
            }),
        );
        let text = m.render(vec![]);
        assert!(text.contains("footage_http_responses_total{class=\"2xx\"} 1"));
        assert!(text.contains("footage_http_responses_total{class=\"5xx\"} 1"));
        assert!(
            text.contains("footage_query_duration_seconds_bucket{kind=\"info\",le=\"0.005\"} 1")
        );
        assert!(text.contains("footage_query_duration_seconds_bucket{kind=\"info\",le=\"10\"} 1"));
        assert!(text.contains("footage_query_duration_seconds_bucket{kind=\"info\",le=\"+Inf\"} 2"));
        assert!(text.contains("footage_query_duration_seconds_count{kind=\"info\"} 2"));
        assert!(text.contains("footage_x{dir=\"a\\\"b\\\\c\\n\"} 1.5"));
        assert!(text.contains("# HELP footage_x an \"x\"\\nhelp"));
        assert_eq!(
            text.matches("# TYPE footage_http_responses_total").count(),
            1
        );
    }
}
