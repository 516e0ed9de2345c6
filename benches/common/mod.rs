//! Helpers shared by the benchmarks: scratch directories on the real disk, segment metadata,
//! distinct segment contents, and a small results table printed after criterion's output.
//!
//! Each bench file includes this module with `#[path = "common/mod.rs"] mod common;`, so not
//! every helper is used by every bench.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use footage::SegmentMeta;

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// A fixed UTC day (2025-11-20 14:03 UTC), so every benchmark segment lands in the same
/// footage-day bucket and therefore in the same active volume.
pub const DAY0_US: i64 = 1_763_647_380_000_000;

/// Root of all benchmark scratch space: `<crate>/target/bench-tmp`, on the real disk (not
/// /tmp, which may be tmpfs and would make every fsync free).
pub fn bench_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-tmp");
    std::fs::create_dir_all(&root).expect("create target/bench-tmp");
    root
}

/// A fresh, empty directory under [`bench_root`], removed when dropped.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(bench_root())
        .expect("create scratch dir")
}

/// Removes a scratch directory and waits until the removal is committed to the journal (an
/// fsync of the parent directory). The root filesystem here is mounted with `discard`: without
/// this, the discards for the freed blocks are issued at the next journal commit, i.e. inside
/// the next timed fsync, adding up to ~0.7 s to whichever benchmark runs next.
pub fn remove_and_settle(dir: tempfile::TempDir) {
    drop(dir);
    std::fs::File::open(bench_root())
        .and_then(|d| d.sync_all())
        .expect("sync bench-tmp");
}

/// Metadata for segment `n` of stream `stream`. Officers and devices cycle through
/// `ids` distinct values so the name interner holds a realistic handful of names.
pub fn meta(stream: usize, n: u64, ids: usize) -> SegmentMeta {
    let who = (stream + n as usize) % ids.max(1);
    let start = DAY0_US + (n as i64 % 1000) * 1_000_000;
    SegmentMeta {
        officer: format!("BENCH-OFF-{who:05}"),
        device: format!("BENCH-DEV-{who:05}"),
        start_us: start,
        end_us: start + 600_000_000,
        ..SegmentMeta::default()
    }
}

/// `len` pseudo-random bytes (xorshift64*; incompressible, fast to make).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a unique stamp into the first 8 bytes, so no two segments share a SHA-256 and
/// ingest never takes its duplicate path.
pub fn stamp(buf: &mut [u8], unique: u64) {
    buf[..8].copy_from_slice(&unique.to_le_bytes());
}

/// Deterministic pseudo-random numbers for offsets (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Criterion options that take a value (so the value is not mistaken for a filter).
const VALUE_OPTIONS: &[&str] = &[
    "--save-baseline",
    "-s",
    "--baseline",
    "-b",
    "--baseline-lenient",
    "--load-baseline",
    "--color",
    "-c",
    "--output-format",
    "--format",
    "--plotting-backend",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
];

/// The benchmark filter given on the command line (`cargo bench --bench X -- FILTER`), if any.
/// Used as a plain substring, so cases that criterion will skip are not even set up.
pub fn cli_filter() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if VALUE_OPTIONS.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// True under `cargo bench -- --test` (or `--list`): run everything once, measure nothing.
pub fn cli_test_mode() -> bool {
    std::env::args().any(|a| a == "--test" || a == "--list")
}

/// Resident set size of this process in bytes (VmRSS from /proc/self/status).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub fn fmt_bytes_per_s(bytes: f64, d: Duration) -> String {
    let mbs = bytes / d.as_secs_f64() / 1e6;
    if mbs >= 1000.0 {
        format!("{:.2} GB/s", mbs / 1000.0)
    } else {
        format!("{mbs:.1} MB/s")
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Every timed batch of every benchmark, by (group, function): (iterations, bytes per
/// iteration, time for the batch). Criterion prints its own statistics; the table printed by
/// [`print_ratio_table`] adds the footage/baseline ratio, which criterion does not compute.
type Batches = Vec<(u64, u64, Duration)>;
static RESULTS: Mutex<BTreeMap<(String, String), Batches>> = Mutex::new(BTreeMap::new());

/// Records one timed batch of `iters` iterations of `bytes` each (criterion's warm-up batches
/// included: they are real measurements too).
pub fn record(group: &str, func: &str, iters: u64, bytes: u64, d: Duration) {
    RESULTS
        .lock()
        .unwrap()
        .entry((group.to_string(), func.to_string()))
        .or_default()
        .push((iters, bytes, d));
}

/// Median and minimum over batches of the time per iteration, with the bytes per iteration
/// and the number of iterations measured, for one (group, function).
pub fn stats(group: &str, func: &str) -> Option<Summary> {
    let results = RESULTS.lock().unwrap();
    let v = results.get(&(group.to_string(), func.to_string()))?;
    let mut per_iter: Vec<Duration> = v
        .iter()
        .map(|&(n, _, d)| d / u32::try_from(n.max(1)).unwrap_or(u32::MAX))
        .collect();
    per_iter.sort();
    Some(Summary {
        bytes: v.first().map_or(0, |x| x.1),
        median: per_iter[per_iter.len() / 2],
        best: per_iter[0],
        iters: v.iter().map(|x| x.0).sum(),
    })
}

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub bytes: u64,
    pub median: Duration,
    pub best: Duration,
    pub iters: u64,
}

/// Prints one line per (group, function): median and best time per iteration, median
/// throughput, and for each entry of `baselines` the throughput ratio to that baseline in the
/// same group (above 1: faster than the baseline), from the medians and from the best times.
/// The disk's noise is additive (host write-back stalls), so the best-time ratio is the
/// cleaner signal when the medians disagree.
pub fn print_ratio_table(title: &str, baselines: &[&str], funcs: &[&str]) {
    let groups: Vec<String> = {
        let results = RESULTS.lock().unwrap();
        let mut g: Vec<String> = results.keys().map(|k| k.0.clone()).collect();
        g.dedup();
        g
    };
    println!();
    println!("== {title}: time per iteration over all timed batches ==");
    print!(
        "{:<24} {:<20} {:>11} {:>11} {:>11} {:>6}",
        "group", "function", "median", "best", "median rate", "iters"
    );
    for b in baselines {
        print!(" {:>14} {:>9}", format!("/{b}"), "(best)");
    }
    println!();
    for g in groups {
        let bases: Vec<Option<Summary>> = baselines.iter().map(|b| stats(&g, b)).collect();
        for f in baselines.iter().chain(funcs) {
            let Some(x) = stats(&g, f) else {
                continue;
            };
            let rate = if x.bytes > 0 {
                fmt_bytes_per_s(x.bytes as f64, x.median)
            } else {
                "-".into()
            };
            print!(
                "{:<24} {:<20} {:>11} {:>11} {:>11} {:>6}",
                g,
                f,
                fmt_duration(x.median),
                fmt_duration(x.best),
                rate,
                x.iters
            );
            for base in &bases {
                let (m, b) = base.map_or((String::from("-"), String::from("-")), |y| {
                    // Same bytes per iteration within a group: the ratio of throughputs is the
                    // inverse ratio of times.
                    (
                        format!("{:.3}", y.median.as_secs_f64() / x.median.as_secs_f64()),
                        format!("{:.3}", y.best.as_secs_f64() / x.best.as_secs_f64()),
                    )
                });
                print!(" {m:>14} {b:>9}");
            }
            println!();
        }
    }
}

/// Sends one request with a body and reads the response; returns the status line and head.
pub fn request(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).ok();
    s.write_all(head.as_bytes()).expect("send head");
    let sent = s.write_all(body);
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok();
    let resp = String::from_utf8_lossy(&out).into_owned();
    // A server that answers before the body ends (an error) closes the connection.
    if let Err(e) = sent {
        panic!("send body: {e}; the server answered: {resp:?}");
    }
    resp
}

pub fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// One tus upload to a `footage` server: create, then the whole body in one PATCH (with
/// `Upload-Checksum: checksum` if given: the tus checksum extension); panics unless the answer
/// names the stored segment.
pub fn tus_upload(addr: std::net::SocketAddr, data: &[u8], device: &str, checksum: Option<&str>) {
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let meta = format!(
        "officer {},device {},start {},end {}",
        b64("MET-1"),
        b64(device),
        b64("2025-11-20T14:03:00Z"),
        b64("2025-11-20T14:33:00Z")
    );
    let created = request(
        addr,
        &format!(
            "POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Tus-Resumable: 1.0.0\r\nUpload-Length: {}\r\nUpload-Metadata: {meta}\r\n\
             Content-Length: 0\r\n\r\n",
            data.len()
        ),
        b"",
    );
    let loc = header(&created, "location").expect("Location").to_string();
    let sum = checksum.map_or(String::new(), |c| format!("Upload-Checksum: {c}\r\n"));
    let done = request(
        addr,
        &format!(
            "PATCH {loc} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n{sum}\
             Content-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
            data.len()
        ),
        data,
    );
    assert!(header(&done, "footage-segment").is_some(), "{done}");
}

/// A running `footage::server::Server` on loopback (as `footage serve` runs it): its runtime,
/// address and the sender that stops it.
pub struct Served {
    pub rt: tokio::runtime::Runtime,
    pub addr: std::net::SocketAddr,
    pub stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts the library's HTTP server for `store` with `opts` on its own multi-thread runtime.
pub fn serve(store: &footage::Store, opts: footage::server::ServerOptions) -> Served {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(footage::server::Server::bind(store.clone(), opts))
        .expect("bind");
    let addr = server.local_addr();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        let _ = server
            .run(async {
                let _ = rx.await;
            })
            .await;
    });
    Served { rt, addr, stop }
}

/// The number in environment variable `name`, or `default` when it is unset or not a number.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
