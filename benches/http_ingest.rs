//! HTTP ingest throughput: 8 concurrent uploads of 64 MiB over loopback through tus (one
//! POST and one PATCH each, into a fresh store served by `footage::server`) against plain
//! HTTP PUTs of the same bytes into files with one fsync per upload (a minimal axum PUT
//! handler in this bench: the body streamed to a file, `sync_data`, 201), same run.
//!
//! Every iteration starts from a fresh store / empty directory (created outside the timed
//! region); each upload gets a unique stamp so the engine never takes its duplicate path.
//! After the criterion groups an interleaved pass (`FOOTAGE_BENCH_ROUNDS`, default 3) runs
//! all four back to back per round (order rotated) and prints MB/s (best and median) and the
//! ratios tus / PUT (goal ≥ 0.8), tus / (PUT + SHA-256 of the body as it streams: the hash a
//! chain of custody cannot skip, which on 2 cores costs CPU the plain PUT does not spend), and
//! (tus with a sha1 `Upload-Checksum` on each PATCH) / tus: the cost of the checksum extension.
//!
//! Environment: `FOOTAGE_BENCH_MIB` (default 64) per upload, `FOOTAGE_BENCH_STREAMS`
//! (default 8), `FOOTAGE_BENCH_CRITERION=0` to run only the interleaved pass,
//! `FOOTAGE_BENCH_CLIENT_NICE` (default 10: the clients stand in for other machines),
//! `FOOTAGE_BENCH_BULK_NICE` (the tus server's `bulk_nice`, default 10 as `footage serve`).
//!
//! Run: `cargo bench --bench http_ingest`.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use criterion::{Criterion, Throughput};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

fn payload(len: usize) -> Vec<u8> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn put_upload(addr: SocketAddr, data: &[u8], name: &str) {
    let r = common::request(
        addr,
        &format!(
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n",
            data.len()
        ),
        data,
    );
    assert!(r.starts_with("HTTP/1.1 201"), "{r}");
}

/// The baseline: PUT /put/NAME streams the body into DIR/NAME, fsyncs it once, answers 201.
async fn put_handler(
    State(dir): State<Arc<PathBuf>>,
    Path(name): Path<String>,
    body: Body,
) -> StatusCode {
    put_body(&dir, &name, body, false).await
}

/// The second baseline: the same, and the body's SHA-256 computed as it streams (what a store
/// that keeps a chain of custody cannot skip), answered in a header.
async fn put_sha_handler(
    State(dir): State<Arc<PathBuf>>,
    Path(name): Path<String>,
    body: Body,
) -> StatusCode {
    put_body(&dir, &name, body, true).await
}

async fn put_body(dir: &std::path::Path, name: &str, body: Body, hash: bool) -> StatusCode {
    use sha2::Digest;
    let path = dir.join(name);
    let Ok(mut f) = tokio::fs::File::create(&path).await else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    let mut sha = sha2::Sha256::new();
    let mut s = body.into_data_stream();
    while let Some(Ok(b)) = s.next().await {
        if hash {
            sha.update(&b);
        }
        if f.write_all(&b).await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    if f.sync_data().await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    std::hint::black_box(sha.finalize());
    StatusCode::CREATED
}

struct PutServer {
    addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

fn put_server(dir: PathBuf) -> PutServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/put/{name}", put(put_handler))
        .route("/putsha/{name}", put(put_sha_handler))
        .with_state(Arc::new(dir));
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    PutServer { addr, _rt: rt }
}

/// Runs `streams` uploads at once; returns the wall time. The clients stand in for docks,
/// which are other machines: their threads run `FOOTAGE_BENCH_CLIENT_NICE` steps lowered
/// (default 10, the same for every server under test), so they do not take the cores from the
/// server they measure.
fn concurrent(streams: usize, data: &Arc<Vec<u8>>, go: impl Fn(usize, &[u8]) + Sync) -> Duration {
    let nice = common::env_usize("FOOTAGE_BENCH_CLIENT_NICE", 10) as i32;
    let t = Instant::now();
    std::thread::scope(|s| {
        for i in 0..streams {
            let go = &go;
            let data = Arc::clone(data);
            s.spawn(move || {
                footage::priority::lower_current_thread(nice);
                go(i, &data)
            });
        }
    });
    t.elapsed()
}

fn stamped(base: &[u8], round: u64) -> Arc<Vec<u8>> {
    let mut v = base.to_vec();
    v[..8].copy_from_slice(&round.to_le_bytes());
    Arc::new(v)
}

/// 8 concurrent tus uploads into a fresh store; `checksum`: each PATCH carries a sha1
/// `Upload-Checksum` (computed before the clock starts).
fn tus_round(streams: usize, data: &Arc<Vec<u8>>, round: u64, checksum: bool) -> Duration {
    let dir = tempfile::tempdir_in(bench_root()).expect("tempdir");
    let store = footage::Store::create(dir.path()).expect("store");
    let srv = footage::server::spawn(
        store.clone(),
        footage::server::ServerOptions {
            addr: "127.0.0.1:0".parse().expect("addr"),
            log_requests: false,
            bulk_nice: common::env_usize(
                "FOOTAGE_BENCH_BULK_NICE",
                footage::priority::BULK_NICE as usize,
            ) as i32,
            ..footage::server::ServerOptions::default()
        },
    )
    .expect("server");
    let addr = srv.addr();
    let data = stamped(data, round);
    let sum = checksum.then(|| {
        use sha1::Digest;
        format!(
            "sha1 {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                sha1::Sha1::digest(&data[..])
            )
        )
    });
    let t = concurrent(streams, &data, |i, d| {
        common::tus_upload(addr, d, &format!("AX-{round}-{i}"), sum.as_deref())
    });
    let _ = srv.stop();
    t
}

fn put_round(streams: usize, data: &Arc<Vec<u8>>, round: u64) -> Duration {
    put_round_at(streams, data, round, "put")
}

fn put_sha_round(streams: usize, data: &Arc<Vec<u8>>, round: u64) -> Duration {
    put_round_at(streams, data, round, "putsha")
}

fn put_round_at(streams: usize, data: &Arc<Vec<u8>>, round: u64, route: &str) -> Duration {
    let dir = tempfile::tempdir_in(bench_root()).expect("tempdir");
    let srv = put_server(dir.path().to_path_buf());
    let addr = srv.addr;
    let data = stamped(data, round);
    concurrent(streams, &data, |i, d| {
        put_upload(addr, d, &format!("{route}/f{round}-{i}"))
    })
}

fn bench_root() -> PathBuf {
    let p = std::env::var("FOOTAGE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    std::fs::create_dir_all(&p).ok();
    p
}

fn main() {
    let mib = common::env_usize("FOOTAGE_BENCH_MIB", 64);
    let streams = common::env_usize("FOOTAGE_BENCH_STREAMS", 8);
    let data = Arc::new(payload(mib << 20));
    let total = (streams * (mib << 20)) as u64;
    if std::env::var("FOOTAGE_BENCH_CRITERION").as_deref() != Ok("0") {
        let mut c = Criterion::default().configure_from_args();
        let mut g = c.benchmark_group(format!("http_ingest/{streams}x{mib}MiB"));
        g.sample_size(10).throughput(Throughput::Bytes(total));
        let mut round = 1_000u64;
        g.bench_function("tus", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        round += 1;
                        tus_round(streams, &data, round, false)
                    })
                    .sum()
            })
        });
        g.bench_function("put_fsync", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        round += 1;
                        put_round(streams, &data, round)
                    })
                    .sum()
            })
        });
        g.finish();
        c.final_summary();
    }
    let rounds = common::env_usize("FOOTAGE_BENCH_ROUNDS", 3) as u64;
    // Interleaved rounds, the order rotated so no side always runs on a warmer page cache.
    let (mut tus, mut put, mut putsha, mut tussum) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        for k in 0..4 {
            match (r + k) % 4 {
                0 => tus.push(tus_round(streams, &data, r, false)),
                1 => put.push(put_round(streams, &data, r)),
                2 => putsha.push(put_sha_round(streams, &data, r)),
                _ => tussum.push(tus_round(streams, &data, r + rounds, true)),
            }
        }
    }
    let mbs = |d: Duration| total as f64 / d.as_secs_f64() / 1e6;
    let best = |v: &mut Vec<Duration>| {
        v.sort();
        (v[0], v[v.len() / 2])
    };
    let (t, p, ps, tc) = (
        best(&mut tus),
        best(&mut put),
        best(&mut putsha),
        best(&mut tussum),
    );
    println!(
        "http_ingest {streams}x{mib} MiB, {rounds} interleaved rounds (best / median):\n  \
         tus {:.0} / {:.0} MB/s\n  PUT+fsync {:.0} / {:.0} MB/s: ratio tus/PUT {:.3} / {:.3} \
         (goal >= 0.8)\n  PUT+fsync+SHA-256 {:.0} / {:.0} MB/s: ratio tus/(PUT+SHA) {:.3} / {:.3}\n  \
         tus with a sha1 Upload-Checksum {:.0} / {:.0} MB/s: ratio (tus+checksum)/tus {:.3} / {:.3}",
        mbs(t.0),
        mbs(t.1),
        mbs(p.0),
        mbs(p.1),
        p.0.as_secs_f64() / t.0.as_secs_f64(),
        p.1.as_secs_f64() / t.1.as_secs_f64(),
        mbs(ps.0),
        mbs(ps.1),
        ps.0.as_secs_f64() / t.0.as_secs_f64(),
        ps.1.as_secs_f64() / t.1.as_secs_f64(),
        mbs(tc.0),
        mbs(tc.1),
        t.0.as_secs_f64() / tc.0.as_secs_f64(),
        t.1.as_secs_f64() / tc.1.as_secs_f64(),
    );
}
