//! HTTP Range GETs of a 256 MiB segment through footage's own HTTP server
//! ([`footage::server::Server`], as `footage serve` runs it: `GET /api/segments/{id}/video`
//! with `Range: bytes=a-b`) against nginx serving the same bytes from a plain file, same run
//! (issue 14: "keep-alive client, random offsets; goal ≥ 0.8 of nginx's throughput, p99
//! within 2×").
//!
//! Fixture: a store under `target/bench-tmp/` with `volume_size` 64 MiB holding one 256 MiB
//! segment of random bytes (ingested through the library), then a 64 MiB filler segment of the
//! same day: the filler cannot fit in what is left of the volume holding the segment's tail,
//! so that volume is sealed too, and every byte of the segment is read through the memory map
//! of a sealed volume (checked through `Store::stats` before timing). The same 256 MiB are
//! written to `seg.bin` in a directory served by `/usr/sbin/nginx` (a child process with a
//! generated config in the scratch dir: `daemon off`, 2 workers as there are 2 cores,
//! `sendfile on`, `tcp_nodelay on` (no `tcp_nopush`: with it a 64 KiB answer waited ~40 ms
//! for a delayed ACK), `access_log off`, keep-alive without limit), killed at the end or on a
//! panic. Without nginx the baseline is skipped with a message. footage runs without tokens
//! (loopback only), as the service bench does; each of its video answers writes an audit
//! entry, which nginx does not (`access_log off`): that is part of what is measured.
//!
//! Client: a minimal HTTP/1.1 client over one `TcpStream` per thread (keep-alive, Nagle off):
//! it sends `GET` with a `Range` header, reads the head and exactly `Content-Length` bytes,
//! and checks the status is 206 and the length right; the warm-up pass (every byte of both
//! servers read once, so both work from the page cache) also compares every byte with the
//! file's. Offsets are unaligned, from a seeded RNG, the same sequence for both servers.
//!
//! Cases: random 64 KiB ranges and random 1 MiB ranges, one client and 4 concurrent clients.
//! The interleaved pass (`FOOTAGE_BENCH_ROUNDS`, default 5) runs both servers back to back
//! per round (order alternating) and prints per case the throughput (median over rounds) of
//! each, the ratio footage / nginx as median of round ratios and ratio of best rounds, and
//! the p50 / p99 latency per request over all rounds with the p99 ratio. Criterion also times
//! single requests of each case (`FOOTAGE_BENCH_CRITERION=0` skips that).
//! `FOOTAGE_BENCH_RANGE_MB` (default 128) sets the bytes each server sends per case per round.
//!
//! Run: `cargo bench --bench http_range` (about 2 min).

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use footage::server::ServerOptions;
use footage::{Store, StoreOptions};

const SEG_LEN: usize = 256 * common::MIB;
const NGINX: &str = "/usr/sbin/nginx";

/// Rounds of the interleaved pass (`FOOTAGE_BENCH_ROUNDS`, default 5).
fn rounds() -> usize {
    common::env_usize("FOOTAGE_BENCH_ROUNDS", 5).max(1)
}

fn criterion_runs() -> bool {
    std::env::var("FOOTAGE_BENCH_CRITERION").map_or(true, |v| v != "0")
}

/// One server under test: where to connect and the path of the 256 MiB.
#[derive(Clone)]
struct Target {
    name: &'static str,
    addr: SocketAddr,
    path: String,
}

/// A keep-alive HTTP/1.1 connection doing Range GETs.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    path: String,
    line: String,
}

impl Conn {
    fn new(t: &Target) -> Conn {
        let s = TcpStream::connect(t.addr).expect("connect");
        s.set_nodelay(true).ok();
        Conn {
            w: s.try_clone().expect("clone stream"),
            r: BufReader::with_capacity(64 * 1024, s),
            path: t.path.clone(),
            line: String::new(),
        }
    }

    /// GETs bytes `[start, start + buf.len())` into `buf`; panics unless the answer is a 206 of
    /// exactly that length.
    fn get(&mut self, start: u64, buf: &mut [u8]) {
        let end = start + buf.len() as u64 - 1;
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes={start}-{end}\r\n\r\n",
            self.path
        );
        self.w.write_all(req.as_bytes()).expect("send request");
        let mut status = None;
        let mut len = None;
        let mut range = None;
        loop {
            self.line.clear();
            let n = self.r.read_line(&mut self.line).expect("read head");
            assert!(n > 0, "connection closed in the head");
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if status.is_none() {
                status = l.split(' ').nth(1).map(str::to_string);
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<u64>().ok();
                } else if k.eq_ignore_ascii_case("content-range") {
                    range = Some(v.trim().to_string());
                }
            }
        }
        assert_eq!(status.as_deref(), Some("206"), "{}: not a 206", self.path);
        assert_eq!(len, Some(buf.len() as u64), "{}: Content-Length", self.path);
        assert_eq!(
            range.as_deref().and_then(|r| r.split('/').next()),
            Some(format!("bytes {start}-{end}").as_str()),
            "Content-Range"
        );
        self.r.read_exact(buf).expect("read body");
    }
}

/// nginx as a child process; stopped (SIGTERM, then waited for) when dropped, also on a panic.
struct Nginx {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; it has not been waited for, so the pid is
        // still ours.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Starts nginx serving `root` on a free loopback port, its config, logs and temp paths in
/// `dir`; None (with a message) when there is no nginx or it does not come up.
fn start_nginx(dir: &Path, root: &Path) -> Option<Nginx> {
    if !Path::new(NGINX).exists() {
        eprintln!("http_range: {NGINX} not found: the nginx baseline is skipped");
        return None;
    }
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 2;\n\
         error_log {d}/err.log;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nodelay on;\n\
         keepalive_requests 1000000;\n  keepalive_timeout 120s;\n\
         default_type application/octet-stream;\n\
         client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n\
         server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
        root.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("err.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("http_range: cannot start {NGINX}: {e}: the nginx baseline is skipped");
            return None;
        }
    };
    let mut n = Nginx {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(n.addr).is_ok() {
            return Some(n);
        }
        if let Ok(Some(st)) = n.child.try_wait() {
            let log = std::fs::read_to_string(dir.join("err.log")).unwrap_or_default();
            eprintln!("http_range: nginx exited ({st}): {log}; the nginx baseline is skipped");
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("http_range: nginx did not listen within 10 s: the nginx baseline is skipped");
    None
}

/// footage's server on a loopback port, stopped when dropped.
struct Footage {
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    addr: SocketAddr,
    /// Dropped after `rt` (fields drop in order): the store's last handle must not be dropped
    /// on a runtime thread (it owns a runtime of its own, whose drop panics there).
    _store: Store,
}

impl Drop for Footage {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.rt
            .block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    }
}

/// The store: the 256 MiB segment, then a filler of `volume_size` bytes of the same day so
/// the volume holding the segment's tail is sealed. Returns the store and the segment's id.
fn build_store(root: &Path, data: &[u8]) -> (Store, u64) {
    let volume = 64 * common::MIB as u64;
    let opts = StoreOptions {
        volume_size: volume,
        ..StoreOptions::default()
    };
    let store = Store::create_with(root, &opts).expect("create store");
    let t = Instant::now();
    let id = store
        .ingest_bytes(common::meta(0, 0, 1), data)
        .expect("ingest segment")
        .id;
    let mut filler = common::random_bytes(volume as usize, 99);
    common::stamp(&mut filler, 1);
    store
        .ingest_bytes(common::meta(0, 1, 1), &filler)
        .expect("ingest filler");
    let stats = store.stats().expect("stats");
    let vols: Vec<String> = stats
        .volume_list
        .iter()
        .map(|v| format!("{}:{}", v.id, if v.sealed { "sealed" } else { "active" }))
        .collect();
    eprintln!(
        "fixture: 256 MiB segment {id} + 64 MiB filler ingested in {:.1} s; volumes {}",
        t.elapsed().as_secs_f64(),
        vols.join(" ")
    );
    (store, id)
}

fn start_footage(store: Store) -> Footage {
    let opts = ServerOptions {
        addr: "127.0.0.1:0".parse().expect("addr"),
        log_requests: false,
        ..ServerOptions::default()
    };
    let common::Served { rt, addr, stop } = common::serve(&store, opts);
    Footage {
        rt,
        stop: Some(stop),
        addr,
        _store: store,
    }
}

/// Reads all 256 MiB of `t` in 1 MiB ranges (warming the page cache) and compares every byte.
fn warm_and_verify(t: &Target, data: &[u8]) {
    let mut c = Conn::new(t);
    let mut buf = vec![0u8; common::MIB];
    for (i, want) in data.chunks(common::MIB).enumerate() {
        let b = &mut buf[..want.len()];
        c.get((i * common::MIB) as u64, b);
        assert!(b == want, "{}: wrong bytes at MiB {i}", t.name);
    }
    // And a few unaligned ranges.
    let mut rng = common::Rng(5);
    for _ in 0..64 {
        let len = 1 + rng.below(common::MIB as u64) as usize;
        let start = rng.below((SEG_LEN - len) as u64) as usize;
        c.get(start as u64, &mut buf[..len]);
        assert!(
            buf[..len] == data[start..start + len],
            "{}: wrong bytes at {start}+{len}",
            t.name
        );
    }
}

/// `n` unaligned offsets of ranges of `size` bytes, from `seed`.
fn offsets(seed: u64, n: usize, size: usize) -> Vec<u64> {
    let mut rng = common::Rng(seed);
    (0..n)
        .map(|_| rng.below((SEG_LEN - size) as u64 + 1))
        .collect()
}

/// One timed run of a case on one server: `clients` threads, each on its own keep-alive
/// connection (made before the clock starts), each GETting its own seeded offsets. Returns
/// the wall time and every request's latency.
fn run_case(t: &Target, size: usize, per_client: usize, clients: usize, seed: u64) -> Run {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|k| {
            let t = t.clone();
            let barrier = std::sync::Arc::clone(&barrier);
            let offs = offsets(seed * 1000 + k as u64, per_client, size);
            std::thread::spawn(move || {
                let mut c = Conn::new(&t);
                let mut buf = vec![0u8; size];
                let mut lat = Vec::with_capacity(offs.len());
                // One untimed request first: nginx sets TCP_NODELAY only once a connection is
                // kept alive, so a fresh connection's first answer can wait ~40 ms for a
                // delayed ACK.
                c.get(0, &mut buf);
                barrier.wait();
                for &o in &offs {
                    let s = Instant::now();
                    c.get(o, &mut buf);
                    lat.push(s.elapsed());
                }
                std::hint::black_box(&buf);
                lat
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.join().expect("client thread"));
    }
    Run {
        wall: start.elapsed(),
        bytes: (size * per_client * clients) as u64,
        lat,
    }
}

struct Run {
    wall: Duration,
    bytes: u64,
    lat: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Case {
    name: &'static str,
    size: usize,
    clients: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "64KiB x1",
        size: 64 * common::KIB,
        clients: 1,
    },
    Case {
        name: "1MiB x1",
        size: common::MIB,
        clients: 1,
    },
    Case {
        name: "64KiB x4",
        size: 64 * common::KIB,
        clients: 4,
    },
    Case {
        name: "1MiB x4",
        size: common::MIB,
        clients: 4,
    },
];

/// The interleaved pass; returns the lines of its table.
fn interleaved(targets: &[Target], rounds: usize, mb: usize, test_mode: bool) -> Vec<String> {
    let mut out = Vec::new();
    for case in CASES {
        let total = if test_mode {
            4 * case.size * case.clients
        } else {
            (mb * common::MIB).max(case.size * case.clients)
        };
        let per_client = total / case.size / case.clients;
        // runs[r][server]
        let mut runs: Vec<Vec<Run>> = Vec::new();
        for r in 0..rounds {
            let mut order: Vec<usize> = (0..targets.len()).collect();
            if r % 2 == 1 {
                order.reverse();
            }
            let mut row: Vec<Option<Run>> = (0..targets.len()).map(|_| None).collect();
            for i in order {
                row[i] = Some(run_case(
                    &targets[i],
                    case.size,
                    per_client,
                    case.clients,
                    r as u64 + 1,
                ));
            }
            runs.push(row.into_iter().map(|x| x.expect("ran")).collect());
        }
        let rate = |i: usize| {
            median_f64(
                runs.iter()
                    .map(|row| row[i].bytes as f64 / row[i].wall.as_secs_f64() / 1e6)
                    .collect(),
            )
        };
        let best = |i: usize| {
            runs.iter()
                .map(|row| row[i].wall.as_secs_f64())
                .fold(f64::INFINITY, f64::min)
        };
        let lat = |i: usize| {
            let mut v: Vec<Duration> = runs.iter().flat_map(|row| row[i].lat.clone()).collect();
            v.sort();
            (percentile(&v, 0.5), percentile(&v, 0.99), v.len())
        };
        let (f50, f99, n) = lat(0);
        let mut line = format!(
            "{:<9} {:>5} {:>10.1} {:>10} {:>10}",
            case.name,
            n,
            rate(0),
            common::fmt_duration(f50),
            common::fmt_duration(f99)
        );
        if targets.len() > 1 {
            let (n50, n99, _) = lat(1);
            let ratio = median_f64(
                runs.iter()
                    .map(|row| row[1].wall.as_secs_f64() / row[0].wall.as_secs_f64())
                    .collect(),
            );
            line += &format!(
                " {:>10.1} {:>10} {:>10} {:>7.3}/{:<6.3} {:>6.2}x {:>6.2}x",
                rate(1),
                common::fmt_duration(n50),
                common::fmt_duration(n99),
                ratio,
                best(1) / best(0),
                f50.as_secs_f64() / n50.as_secs_f64(),
                f99.as_secs_f64() / n99.as_secs_f64()
            );
        }
        out.push(line);
    }
    out
}

fn main() {
    let test_mode = common::cli_test_mode();
    let rounds = if test_mode { 1 } else { rounds() };
    let mb = common::env_usize("FOOTAGE_BENCH_RANGE_MB", 128);

    let dir = common::scratch("http-range-");
    let data = common::random_bytes(SEG_LEN, 14);
    let (store, id) = build_store(&dir.path().join("store"), &data);
    // The filler (one volume's worth) spans at least two volumes, so the segment lies wholly
    // in volumes before the last one: all of those must be sealed.
    let sealed = {
        let vols = store.stats().expect("stats").volume_list;
        let last = vols.iter().map(|v| v.id).max().unwrap_or(0);
        vols.len() > 1 && vols.iter().all(|v| v.sealed || v.id == last)
    };
    let footage = start_footage(store);

    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www dir");
    {
        let mut f = std::fs::File::create(www.join("seg.bin")).expect("seg.bin");
        f.write_all(&data).expect("write seg.bin");
        f.sync_all().expect("sync seg.bin");
    }
    let ngx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&ngx_dir).expect("nginx dir");
    let nginx = start_nginx(&ngx_dir, &www);

    let mut targets = vec![Target {
        name: "footage",
        addr: footage.addr,
        path: format!("/api/segments/{id}/video"),
    }];
    if let Some(n) = &nginx {
        targets.push(Target {
            name: "nginx",
            addr: n.addr,
            path: "/seg.bin".into(),
        });
    }
    for t in &targets {
        warm_and_verify(t, &data);
    }
    drop(data);
    eprintln!(
        "warm-up: every byte of {} read and checked",
        targets
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(" and ")
    );

    if criterion_runs() {
        let mut c = Criterion::default()
            .configure_from_args()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for case in CASES.iter().filter(|c| c.clients == 1) {
            let mut group = c.benchmark_group(format!("http_range/{}", case.name));
            group.throughput(Throughput::Bytes(case.size as u64));
            for t in &targets {
                let mut conn = Conn::new(t);
                let mut buf = vec![0u8; case.size];
                conn.get(0, &mut buf);
                let mut rng = common::Rng(77);
                let gname = format!("http_range/{}", case.name);
                group.bench_function(t.name, |b| {
                    b.iter_custom(|iters| {
                        let offs: Vec<u64> = (0..iters)
                            .map(|_| rng.below((SEG_LEN - case.size) as u64 + 1))
                            .collect();
                        let s = Instant::now();
                        for &o in &offs {
                            conn.get(o, &mut buf);
                        }
                        let d = s.elapsed();
                        common::record(&gname, t.name, iters, case.size as u64, d);
                        d
                    })
                });
            }
            group.finish();
        }
        if !test_mode {
            common::print_ratio_table("http_range (criterion batches)", &["nginx"], &["footage"]);
        }
    }

    println!();
    println!(
        "== http_range: Range GETs of a 256 MiB segment ({}), interleaved pass: {rounds} \
         rounds, {mb} MiB per server per case per round, order alternating ==",
        if sealed {
            "its volumes sealed: read through mmap"
        } else {
            "its volumes NOT all sealed"
        }
    );
    println!(
        "throughput MB/s = median over rounds; footage/nginx = median of round ratios / ratio \
         of best rounds (goal ≥ 0.8); p50/p99 per request over all rounds; p99 ratio goal ≤ 2"
    );
    println!(
        "{:<9} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>14} {:>7} {:>7}",
        "case",
        "reqs",
        "footage",
        "f p50",
        "f p99",
        "nginx",
        "n p50",
        "n p99",
        "thru ratio",
        "p50 x",
        "p99 x"
    );
    for l in interleaved(&targets, rounds, mb, test_mode) {
        println!("{l}");
    }
    drop(nginx);
    drop(footage);
    common::remove_and_settle(dir);
}
