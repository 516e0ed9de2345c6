//! Query latency of the station service while docks ingest, against the same queries on an
//! idle service, in the same run (issue 11: "query latency p50/p99 while ingest runs against
//! the idle figure; goal: p99 within 2x").
//!
//! Fixture: a store under `target/bench-tmp/` with `FOOTAGE_BENCH_SERVICE_SEGMENTS` segments
//! (default 2,000; 64 KiB of video each, a GPS track of one fix every 5 s for 5 to 30 minutes
//! around central London, 40 officers), ingested through the library, then served by the
//! library's HTTP server ([`footage::server::Server`], as `footage serve` runs it) on loopback.
//!
//! Queries (HTTP GET /api/segments, the review page's own calls): officer + 2 h window, 1 h
//! time window, near (200 m) + 2 h window, bounding box + 2 h window, round-robin over seeded
//! instances drawn around real segments. Each query kind runs `FOOTAGE_BENCH_SERVICE_QUERIES`
//! times (default 200) on the idle service and again while 8 docks upload 64 MiB segments back
//! to back over tus (`FOOTAGE_BENCH_SERVICE_MB` sets the size) into the same service: the
//! disk, the page cache, the catalog lock and the CPU are shared, as in a station. The
//! service's upload workers run `FOOTAGE_BENCH_SERVICE_BULK_NICE` steps lowered (default
//! 10, `[service] bulk_nice`); the docks' client threads `FOOTAGE_BENCH_SERVICE_CLIENT_NICE`
//! (default 10; on a station they are other machines).
//! Reported: p50 and p99 per kind and overall, idle and loaded, the loaded/idle ratios, and
//! the ingest throughput reached during the loaded pass. Criterion times the idle query mix
//! as well (the load runs only for the loaded pass, which would otherwise fill the disk).
//!
//! Run: `cargo bench --bench service` (about 2 min).

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use footage::server::ServerOptions;
use footage::{GpsFix, SegmentMeta, Store, StoreOptions};

const STREAMS: usize = 8;
const LAT0: f64 = 51.5074;
const LON0: f64 = -0.1278;

/// Segment `n` of the fixture: officer, times and a track wandering from a point near LAT0/LON0.
fn fixture_meta(n: u64, rng: &mut common::Rng) -> SegmentMeta {
    let start = common::DAY0_US + (n as i64) * 45_000_000;
    let minutes = 5 + rng.below(26) as i64;
    let end = start + minutes * 60_000_000;
    let mut lat = LAT0 + (rng.below(2000) as f64 - 1000.0) * 1e-5;
    let mut lon = LON0 + (rng.below(2000) as f64 - 1000.0) * 1e-5;
    let mut gps = Vec::new();
    let mut t = start;
    while t <= end {
        gps.push(GpsFix::from_degrees(t, lat, lon).expect("fix on the globe"));
        lat += (rng.below(200) as f64 - 100.0) * 1e-7;
        lon += (rng.below(200) as f64 - 100.0) * 1e-7;
        t += 5_000_000;
    }
    SegmentMeta {
        officer: format!("MET-{:06}", n % 40),
        device: format!("AX-{:05}", n % 40),
        start_us: start,
        end_us: end,
        gps,
        ..SegmentMeta::default()
    }
}

fn iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("time in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Seeded query instances of each kind, around real segments: (kind, query string).
fn queries(metas: &[SegmentMeta], per_kind: usize) -> Vec<(&'static str, String)> {
    let mut rng = common::Rng(7);
    let mut out = Vec::new();
    for i in 0..per_kind {
        let m = &metas[rng.below(metas.len() as u64) as usize];
        let (from, to) = (
            iso(m.start_us - 3_600_000_000),
            iso(m.start_us + 3_600_000_000),
        );
        let fix = m.gps[rng.below(m.gps.len() as u64) as usize];
        let (lat, lon) = (f64::from(fix.lat_e7) * 1e-7, f64::from(fix.lon_e7) * 1e-7);
        let kind = ["officer", "window", "near", "bbox"][i % 4];
        let q = match kind {
            "officer" => format!("officer={}&from={from}&to={to}", m.officer),
            "window" => format!(
                "from={}&to={}",
                iso(m.start_us - 1_800_000_000),
                iso(m.start_us + 1_800_000_000)
            ),
            "near" => format!("near={lat:.6},{lon:.6}&radius=200&from={from}&to={to}"),
            _ => format!(
                "bbox={:.6},{:.6},{:.6},{:.6}&from={from}&to={to}",
                lat - 0.002,
                lon - 0.003,
                lat + 0.002,
                lon + 0.003
            ),
        };
        out.push((kind, q));
    }
    out
}

struct Service {
    _dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    base: String,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn start_service(segments: usize) -> (Service, Vec<SegmentMeta>) {
    let dir = common::scratch("service-");
    let root = dir.path().join("store");
    let store = Store::create_with(&root, &StoreOptions::default()).expect("create store");
    let mut rng = common::Rng(42);
    let video = common::random_bytes(64 * 1024, 3);
    let mut metas = Vec::with_capacity(segments);
    let t = Instant::now();
    for n in 0..segments as u64 {
        let meta = fixture_meta(n, &mut rng);
        let mut bytes = video.clone();
        common::stamp(&mut bytes, n);
        store
            .ingest_bytes(meta.clone(), &bytes)
            .expect("ingest fixture");
        metas.push(meta);
    }
    eprintln!(
        "fixture: {segments} segments ingested in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let opts = ServerOptions {
        addr: "127.0.0.1:0".parse().expect("addr"),
        log_requests: false,
        bulk_nice: common::env_usize("FOOTAGE_BENCH_SERVICE_BULK_NICE", 10) as i32,
        ..ServerOptions::default()
    };
    let common::Served { rt, addr, stop } = common::serve(&store, opts);
    let base = format!("http://{addr}");
    (
        Service {
            _dir: dir,
            addr,
            base,
            rt,
            stop: Some(stop),
        },
        metas,
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// One query; panics on a non-200 answer (a benchmark of errors would measure nothing).
fn query(agent: &ureq::Agent, base: &str, q: &str) -> Duration {
    let t = Instant::now();
    let mut r = agent
        .get(format!("{base}/api/segments?{q}"))
        .call()
        .expect("query");
    let body = r.body_mut().read_to_string().expect("body");
    let d = t.elapsed();
    assert_eq!(r.status(), 200, "{q}: {body}");
    d
}

/// 8 docks uploading `mb` MiB segments back to back over tus (POST, then one PATCH of the
/// whole body) until `stop`; returns the bytes stored. The docks are other machines at a
/// station; here they share the service's 2 cores, so their threads (the HTTP clients, which
/// only copy bytes into a socket) run `FOOTAGE_BENCH_SERVICE_CLIENT_NICE` steps lowered
/// (default 10, as the service's own upload workers: `footage::priority`); 0 lets them
/// compete with the service's query threads as equals.
fn ingest_load(
    addr: std::net::SocketAddr,
    mb: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<u64>> {
    let next = Arc::new(AtomicU64::new(1 << 40));
    let nice = common::env_usize("FOOTAGE_BENCH_SERVICE_CLIENT_NICE", 10) as i32;
    (0..STREAMS)
        .map(|s| {
            let (stop, next) = (Arc::clone(&stop), Arc::clone(&next));
            std::thread::spawn(move || {
                footage::priority::lower_current_thread(nice);
                let mut bytes = common::random_bytes(mb << 20, 100 + s as u64);
                let mut stored = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    common::stamp(&mut bytes, n);
                    common::tus_upload(addr, &bytes, &format!("AX-LOAD-{s}"), None);
                    stored += bytes.len() as u64;
                }
                stored
            })
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Times every instance once; returns latencies by kind and all together.
fn pass(
    agent: &ureq::Agent,
    base: &str,
    qs: &[(&'static str, String)],
) -> Vec<(&'static str, Duration)> {
    qs.iter()
        .map(|(k, q)| (*k, query(agent, base, q)))
        .collect()
}

fn summarize(label: &str, lat: &[(&'static str, Duration)]) -> Vec<(String, Duration, Duration)> {
    let mut rows = Vec::new();
    for kind in ["officer", "window", "near", "bbox", "all"] {
        let mut v: Vec<Duration> = lat
            .iter()
            .filter(|(k, _)| kind == "all" || *k == kind)
            .map(|x| x.1)
            .collect();
        v.sort();
        if v.is_empty() {
            continue;
        }
        let (p50, p99) = (percentile(&v, 0.5), percentile(&v, 0.99));
        println!(
            "{label:<8} {kind:<8} n={:<5} p50 {:>10} p99 {:>10}",
            v.len(),
            common::fmt_duration(p50),
            common::fmt_duration(p99)
        );
        rows.push((kind.to_string(), p50, p99));
    }
    rows
}

fn bench_service(c: &mut Criterion) {
    let segments = common::env_usize("FOOTAGE_BENCH_SERVICE_SEGMENTS", 2_000);
    let per_kind = common::env_usize("FOOTAGE_BENCH_SERVICE_QUERIES", 200);
    let mb = common::env_usize("FOOTAGE_BENCH_SERVICE_MB", 64);
    let test_mode = common::cli_test_mode();
    let (segments, per_kind) = if test_mode {
        (40, 4)
    } else {
        (segments, per_kind)
    };
    let (mut svc, metas) = start_service(segments);
    let qs = queries(&metas, per_kind * 4);
    let agent = agent();
    // Warm the page cache and the connection.
    pass(&agent, &svc.base, &qs);

    let idle = pass(&agent, &svc.base, &qs);
    let stop = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let mb = if test_mode { 1 } else { mb };
    let load = ingest_load(svc.addr, mb, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(if test_mode { 10 } else { 2000 }));
    let loaded = pass(&agent, &svc.base, &qs);
    // The load stops with the pass: 8 docks write several hundred MB/s, and a longer loaded
    // phase would only fill the disk (the store is on the real disk, target/bench-tmp).
    stop.store(true, Ordering::Relaxed);
    let stored: u64 = load
        .into_iter()
        .map(|h| h.join().expect("ingest thread"))
        .sum();
    let elapsed = t.elapsed();

    let mut group = c.benchmark_group("service/query-mix");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    group.bench_function("idle", |b| {
        b.iter(|| {
            i = (i + 1) % qs.len();
            query(&agent, &svc.base, &qs[i].1)
        })
    });
    group.finish();

    println!();
    println!("== service: query latency over HTTP, idle vs while 8 streams ingest ==");
    let a = summarize("idle", &idle);
    let b = summarize("loaded", &loaded);
    println!(
        "ingest during the loaded pass: {} ({} segments of {mb} MiB)",
        common::fmt_bytes_per_s(stored as f64, elapsed),
        stored / ((mb as u64) << 20).max(1)
    );
    for ((kind, p50a, p99a), (_, p50b, p99b)) in a.iter().zip(&b) {
        println!(
            "loaded/idle {kind:<8} p50 {:.2}x  p99 {:.2}x",
            p50b.as_secs_f64() / p50a.as_secs_f64(),
            p99b.as_secs_f64() / p99a.as_secs_f64()
        );
    }
    if let Some(tx) = svc.stop.take() {
        let _ = tx.send(());
    }
    svc.rt
        .block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
}

criterion_group!(benches, bench_service);
criterion_main!(benches);
