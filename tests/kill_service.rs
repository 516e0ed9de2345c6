//! The kill campaign over the station service: a real `footage serve --watch DIR
//! --retention-every 1s` child, fed by a driver in this test (several concurrent tus uploads
//! of 0.5–8 MiB sent in several PATCHes each, and video + sidecar pairs dropped into DIR), is
//! ended at random moments: a SIGKILL after a random delay, or an armed crash point
//! (`FOOTAGE_FAILPOINT`, see `footage::fail`) at its N-th pass.
//!
//! After every kill a clean service is started and the oracle checks:
//! - every upload the driver saw completed (`Footage-Segment` received, with
//!   `Footage-Duplicate: false`: each upload's bytes are unique) is in the store with
//!   its SHA-256 (an upload in the `scratch` category may instead have been deleted by the
//!   background retention, whose policy deletes only that category);
//! - every unfinished upload whose creation was acknowledged (201) answers HEAD with 200 (never
//!   404) and an offset between the last one acknowledged to the driver and the bytes it sent,
//!   or with its segment when the completing request's answer was lost; the driver then
//!   resumes it from that offset in the next round, and the final round completes every one
//!   with the right SHA-256;
//! - every video dropped into DIR ends in done/ exactly once (no second slot, nothing in
//!   failed/), its result naming a segment the store holds with its SHA-256;
//! - nothing is stored twice (same device and SHA-256);
//! - at the end `footage verify` finds nothing and `footage audit --verify` is clean.
//!
//! A crash-point kill counts only when the child died of SIGABRT and its stderr names the
//! point; a timed SIGKILL only when the child was still running when it was sent. Every point
//! of [`POINTS`] must land at least once per run. `FOOTAGE_KILLS=N` sets the number of kills
//! (default [`DEFAULT_KILLS`]). For debugging: `FOOTAGE_KEEP=1` keeps the store and dock
//! folder (the path is printed), `FOOTAGE_SERVICE_RETENTION=off` (or another interval) changes
//! `--retention-every`.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_footage");
/// Generous: the machine running the tests may be busy.
const DEADLINE: Duration = Duration::from_secs(90);
/// Kills by default (about a minute here; `FOOTAGE_KILLS=200` for the full campaign).
const DEFAULT_KILLS: usize = 80;
/// Concurrent uploads the driver keeps going.
const UPLOADERS: usize = 3;
/// How long an armed service may run before the point counts as missed (then SIGKILLed).
const MISS_AFTER: Duration = Duration::from_secs(8);

/// Crash points, and how many passes may come before the crash.
const POINTS: &[(&str, u64)] = &[
    ("upload.chunks_durable", 6),
    ("upload.progress_durable", 6),
    ("upload.committed", 2),
    ("watch.before_move", 2),
    ("watch.between_moves", 2),
    ("ingest.chunks_durable", 3),
    ("ingest.before_audit", 3),
    ("ingest.audited", 3),
    ("ingest.commit_durable", 3),
];

/// Deletes only `scratch` footage (a day after its end: all of it, the clips start in
/// 2025), never anything else, so every other check is exact.
const POLICY: &str = r#"
[cloud]
url = "CLOUD"
[category.default]
upload = false
evict_after = "never"
delete_after = "never"
[category.scratch]
upload = false
evict_after = "never"
delete_after = "1d"
[disk]
high_watermark = 1.0
"#;

const START: &str = "2025-11-20T14:03:00Z";
const END: &str = "2025-11-20T14:13:00Z";

fn sha_hex(b: &[u8]) -> String {
    footage::hex(&Sha256::digest(b))
}

// ---------------------------------------------------------------------------------------
// A tus client that reports a dead service as an error instead of panicking.

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    /// Shown (through `Debug`) when a check fails.
    #[allow(dead_code)]
    body: String,
}

impl Resp {
    fn h(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn io_err(what: String) -> std::io::Error {
    std::io::Error::other(what)
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(DEADLINE))?;
    s.set_write_timeout(Some(DEADLINE))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTus-Resumable: 1.0.0\r\n"
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    if let Some(b) = body {
        req += &format!("Content-Length: {}\r\n", b.len());
    }
    req += "\r\n";
    s.write_all(req.as_bytes())?;
    if let Some(b) = body {
        for piece in b.chunks(256 * 1024) {
            s.write_all(piece)?;
        }
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io_err("no response head".into()))?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io_err(format!("bad status line in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = String::from_utf8_lossy(&out[split + 4..]).into_owned();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn metadata(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {}",
                base64::engine::general_purpose::STANDARD.encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------
// The service child.

/// A `footage serve --watch` child, SIGKILLed on drop; its stderr collected by a thread.
struct Serve {
    child: Child,
    addr: Option<SocketAddr>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Serve {
    /// Starts it; `addr` is None when it died before listening (a point met in recovery).
    fn start(store: &Path, dock: &Path, failpoint: Option<&str>) -> Serve {
        let mut c = Command::new(BIN);
        c.arg("--store")
            .arg(store)
            .args(["serve", "--addr", "127.0.0.1:0", "--quiet", "--watch"])
            .arg(dock)
            .args(["--watch-settle", "0", "--watch-interval", "50ms"])
            .args([
                "--retention-every",
                &std::env::var("FOOTAGE_SERVICE_RETENTION").unwrap_or_else(|_| "1s".into()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match failpoint {
            Some(fp) => c.env(footage::fail::ENV, fp),
            None => c.env_remove(footage::fail::ENV),
        };
        let mut child = common::spawn(&mut c);
        let err = child.stderr.take().map(|e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = BufReader::new(e).read_to_string(&mut s);
                s
            })
        });
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let addr = serde_json::from_str::<Value>(&line).ok().and_then(|v| {
            v["listening"]
                .as_str()
                .and_then(|u| u.trim_start_matches("http://").parse().ok())
        });
        let serve = Serve {
            child,
            addr,
            stderr: err,
        };
        if let Some(a) = serve.addr {
            // The accept loop answers: the SIGTERM handler is in place.
            let t = Instant::now();
            while request(a, "GET", "/healthz", &[], None).is_err() {
                if serve.exited() {
                    break;
                }
                assert!(t.elapsed() < DEADLINE, "/healthz never answered");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        serve
    }

    fn exited(&self) -> bool {
        // SAFETY-free: a signal-0 probe would race with reaping; try_wait needs &mut.
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map(|s| s.split(' ').nth(2) == Some("Z"))
            .unwrap_or(true)
    }

    /// Waits for its end (at most `limit`); None if still running.
    fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if t.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its status and stderr, once ended.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, err)
    }

    /// SIGTERM, then waits (a clean drain or, early, the default action: either is fine).
    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        if self.wait_for(DEADLINE).is_none() {
            let _ = self.child.kill();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The driver's state, kept across kills.

/// One upload as the driver knows it.
struct Upload {
    data: Arc<Vec<u8>>,
    device: String,
    scratch: bool,
    /// Location, once the creation was acknowledged (201).
    loc: Option<String>,
    /// The last offset acknowledged to the driver (PATCH 204 or HEAD).
    acked: u64,
    /// The end of the furthest body the driver sent (an upper bound on what arrived).
    sent: u64,
}

/// A completed upload: its segment and bytes' SHA-256.
#[derive(Clone)]
struct Done {
    id: u64,
    sha: String,
    scratch: bool,
}

#[derive(Default)]
struct Book {
    /// The upload in progress per uploader slot.
    slots: Vec<Option<Upload>>,
    done: Vec<Done>,
    /// Videos dropped into DIR: name -> SHA-256, and whether in the `scratch` category.
    dropped: BTreeMap<String, (String, bool)>,
    /// Creations sent but never acknowledged (nothing to check: cleanly gone or expiring).
    unacked_creations: usize,
    /// HEADs after a kill that found bytes beyond the last acknowledged offset.
    beyond_ack: usize,
    /// Completions learned from HEAD (the completing answer was lost).
    completed_by_head: usize,
}

struct Driver {
    addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    stop: Arc<AtomicBool>,
    seed: Arc<AtomicU64>,
}

fn lock(b: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    b.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one upload step ended with.
enum Step {
    /// Go on.
    More,
    /// The service is gone (a refused or cut connection).
    Dead,
    /// This slot has nothing left to do (the final round).
    Idle,
}

impl Driver {
    /// One request of uploader `k`: a creation, or a PATCH of a random part of what is left.
    fn step(&self, k: usize, finishing: bool, rng: &mut rand::rngs::StdRng) -> Step {
        let mut book = lock(&self.book);
        if book.slots[k].is_none() {
            if finishing {
                return Step::Idle;
            }
            let seed = self.seed.fetch_add(1, Ordering::Relaxed);
            let len = rng.random_range(512 * 1024..=8 << 20);
            book.slots[k] = Some(Upload {
                data: Arc::new(common::random_bytes(seed, len)),
                device: format!("DOCK-{k}"),
                scratch: rng.random_bool(0.25),
                loc: None,
                acked: 0,
                sent: 0,
            });
        }
        let Some(u) = book.slots[k].as_mut() else {
            return Step::Idle;
        };
        let Some(loc) = u.loc.clone() else {
            let mut meta = vec![
                ("officer", "MET-7".to_string()),
                ("device", u.device.clone()),
                ("start", START.to_string()),
                ("end", END.to_string()),
            ];
            if u.scratch {
                meta.push(("category", "scratch".into()));
            }
            let len = u.data.len();
            drop(book);
            let r = request(
                self.addr,
                "POST",
                "/api/uploads",
                &[
                    ("Upload-Length", len.to_string()),
                    ("Upload-Metadata", metadata(&meta)),
                ],
                Some(b""),
            );
            let mut book = lock(&self.book);
            return match r {
                Ok(r) if r.status == 201 => {
                    let loc = r.h("location").expect("Location").to_string();
                    if let Some(u) = book.slots[k].as_mut() {
                        u.loc = Some(loc);
                    }
                    Step::More
                }
                Ok(r) if r.status == 503 || r.status == 429 => Step::More,
                Ok(r) => panic!("creation answered {r:?}"),
                Err(_) => {
                    // Sent, never acknowledged: the upload is forgotten.
                    book.slots[k] = None;
                    book.unacked_creations += 1;
                    Step::Dead
                }
            };
        };
        let (data, from) = (Arc::clone(&u.data), u.acked as usize);
        let rest = data.len() - from;
        let n = if rest <= 64 * 1024 {
            rest
        } else {
            rng.random_range(64 * 1024..=rest.min(3 << 20))
        };
        u.sent = u.sent.max((from + n) as u64);
        drop(book);
        let r = request(
            self.addr,
            "PATCH",
            &loc,
            &[
                ("Upload-Offset", from.to_string()),
                ("Content-Type", "application/offset+octet-stream".into()),
            ],
            Some(&data[from..from + n]),
        );
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                assert!(
                    !finishing,
                    "PATCH {loc} at {from} (+{n}) in the final round: {e}"
                );
                return Step::Dead;
            }
        };
        if r.status == 503 || r.status == 429 {
            return Step::More;
        }
        assert_eq!(r.status, 204, "PATCH {loc} at {from} (+{n}): {r:?}");
        let off: u64 = r
            .h("upload-offset")
            .and_then(|v| v.parse().ok())
            .expect("Upload-Offset");
        assert_eq!(off, (from + n) as u64, "{loc}: {r:?}");
        let mut book = lock(&self.book);
        if off as usize == data.len() {
            let id: u64 = r
                .h("footage-segment")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no segment in the completing answer {r:?}"));
            assert_eq!(r.h("footage-sha256"), Some(sha_hex(&data).as_str()));
            assert_eq!(r.h("footage-duplicate"), Some("false"), "{loc}: {r:?}");
            let scratch = book.slots[k].as_ref().is_some_and(|u| u.scratch);
            book.done.push(Done {
                id,
                sha: sha_hex(&data),
                scratch,
            });
            book.slots[k] = None;
        } else if let Some(u) = book.slots[k].as_mut() {
            u.acked = off;
        }
        Step::More
    }

    /// Runs uploader `k` until the service dies, `stop` is set, or (finishing) it is idle.
    fn uploader(&self, k: usize, finishing: bool) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed.fetch_add(1, Ordering::Relaxed));
        while !self.stop.load(Ordering::Relaxed) {
            match self.step(k, finishing, &mut rng) {
                Step::More => {}
                Step::Dead | Step::Idle => return,
            }
        }
    }

    /// Drops video + sidecar pairs into `dock` (each renamed in whole) until `stop`.
    fn docker(&self, dock: &Path, stage: &Path) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed.fetch_add(1, Ordering::Relaxed));
        while !self.stop.load(Ordering::Relaxed) {
            let pending = std::fs::read_dir(dock)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_file())
                        .count()
                })
                .unwrap_or(0);
            if pending < 4 {
                let seed = self.seed.fetch_add(1, Ordering::Relaxed);
                let name = format!("clip{seed:06}.mp4");
                let bytes = common::random_bytes(seed, rng.random_range(512 * 1024..=3 << 20));
                let scratch = rng.random_bool(0.3);
                let cat = if scratch {
                    r#", "category": "scratch""#
                } else {
                    ""
                };
                let side = format!(
                    r#"{{"officer": "PC1", "device": "CAM-{seed}", "start": "{START}", "end": "{END}"{cat}}}"#
                );
                std::fs::write(stage.join(&name), &bytes).unwrap();
                std::fs::write(stage.join(format!("{name}.json")), side).unwrap();
                lock(&self.book)
                    .dropped
                    .insert(name.clone(), (sha_hex(&bytes), scratch));
                std::fs::rename(stage.join(&name), dock.join(&name)).unwrap();
                std::fs::rename(
                    stage.join(format!("{name}.json")),
                    dock.join(format!("{name}.json")),
                )
                .unwrap();
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(20..200)));
        }
    }
}

/// Runs the driver against `serve` until `until` says stop; joins it.
fn drive(
    serve: &mut Serve,
    book: &Arc<Mutex<Book>>,
    seed: &Arc<AtomicU64>,
    dock: &Path,
    stage: &Path,
    finishing: bool,
    until: impl FnOnce(&mut Serve),
) {
    let Some(addr) = serve.addr else {
        until(serve);
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let d = Arc::new(Driver {
        addr,
        book: Arc::clone(book),
        stop: Arc::clone(&stop),
        seed: Arc::clone(seed),
    });
    let mut handles: Vec<_> = (0..UPLOADERS)
        .map(|k| {
            let d = Arc::clone(&d);
            std::thread::spawn(move || d.uploader(k, finishing))
        })
        .collect();
    if !finishing {
        let (d, dock, stage) = (Arc::clone(&d), dock.to_path_buf(), stage.to_path_buf());
        handles.push(std::thread::spawn(move || d.docker(&dock, &stage)));
    }
    until(serve);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        if let Err(e) = h.join() {
            std::panic::resume_unwind(e);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The oracle.

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks everything against a clean service `serve` (see the module comment).
fn check(store: &Path, dock: &Path, serve: &Serve, book: &Mutex<Book>, ctx: &str) {
    let addr = serve
        .addr
        .unwrap_or_else(|| panic!("{ctx}: the clean service did not start"));
    // Unfinished uploads: HEAD.
    {
        let mut guard = lock(book);
        let b = &mut *guard;
        for slot in b.slots.iter_mut() {
            let Some(u) = slot.as_mut() else { continue };
            let Some(loc) = u.loc.clone() else {
                continue;
            };
            let r = request(addr, "HEAD", &loc, &[], None)
                .unwrap_or_else(|e| panic!("{ctx}: HEAD {loc}: {e}"));
            assert_eq!(
                r.status, 200,
                "{ctx}: an upload acknowledged as created is gone: {loc}: {r:?}"
            );
            let off: u64 = r
                .h("upload-offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: no offset {r:?}"));
            assert!(
                off >= u.acked && off <= u.sent,
                "{ctx}: {loc}: HEAD offset {off} outside [acked {}, sent {}]",
                u.acked,
                u.sent
            );
            if off > u.acked {
                b.beyond_ack += 1;
            }
            if let Some(id) = r.h("footage-segment") {
                assert_eq!(off as usize, u.data.len(), "{ctx}: {r:?}");
                assert_eq!(r.h("footage-sha256"), Some(sha_hex(&u.data).as_str()));
                // Every upload's bytes are its own: completed by HEAD after a crash between
                // its commit record and its completed frame, it is still not a duplicate.
                assert_eq!(r.h("footage-duplicate"), Some("false"), "{ctx}: {r:?}");
                b.done.push(Done {
                    id: id.parse().expect("segment id"),
                    sha: sha_hex(&u.data),
                    scratch: u.scratch,
                });
                b.completed_by_head += 1;
                *slot = None;
            } else {
                if off as usize == u.data.len() {
                    // Every byte durable but not completed: HEAD retried the completion and
                    // it failed. Ask a PATCH for the reason.
                    let p = request(
                        addr,
                        "PATCH",
                        &loc,
                        &[
                            ("Upload-Offset", off.to_string()),
                            ("Content-Type", "application/offset+octet-stream".into()),
                        ],
                        Some(b""),
                    );
                    panic!("{ctx}: {loc}: every byte durable, the completion fails: {p:?}");
                }
                u.acked = off;
            }
        }
    }
    // The dock: every video filed exactly once.
    let dropped = lock(book).dropped.clone();
    wait_until("every dropped video filed", || {
        dropped
            .keys()
            .all(|n| !dock.join(n).exists() && !dock.join(format!("{n}.json")).exists())
    });
    let mut dock_ids = Vec::new();
    for (name, (sha, scratch)) in &dropped {
        assert!(
            dock.join("done").join(name).exists(),
            "{ctx}: {name} not in done/"
        );
        assert!(dock.join("done").join(format!("{name}.json")).exists());
        let stem = name.trim_end_matches(".mp4");
        assert!(
            !dock.join("done").join(format!("{stem}-1.mp4")).exists(),
            "{ctx}: {name} filed twice"
        );
        let text = std::fs::read_to_string(dock.join("done").join(format!("{name}.result.json")))
            .unwrap_or_else(|e| panic!("{ctx}: {name}: no result: {e}"));
        let v: Value = serde_json::from_str(&text).expect("result JSON");
        assert_eq!(v["sha256"].as_str(), Some(sha.as_str()), "{ctx}: {name}");
        let id: u64 = v["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{ctx}: {name}: {v}"));
        dock_ids.push((id, sha.clone(), *scratch));
    }
    let failed = std::fs::read_dir(dock.join("failed"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(failed, 0, "{ctx}: something went to failed/");
    // The store, read-only beside the service.
    let s = footage::Store::open_read_only(store, &footage::StoreOptions::default())
        .unwrap_or_else(|e| panic!("{ctx}: read-only open: {e}"));
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut infos = HashMap::new();
    for id in s.segment_ids() {
        let Ok(i) = s.info(id) else { continue }; // deleted meanwhile by retention
        assert!(
            seen.insert((i.device.clone(), i.sha256_hex())),
            "{ctx}: stored twice: {} {}",
            i.device,
            i.sha256_hex()
        );
        infos.insert(id, i.sha256_hex());
    }
    for d in lock(book).done.iter() {
        match infos.get(&d.id) {
            Some(sha) => assert_eq!(sha, &d.sha, "{ctx}: upload segment {}", d.id),
            None => assert!(d.scratch, "{ctx}: completed upload {} is lost", d.id),
        }
    }
    for (id, sha, scratch) in &dock_ids {
        match infos.get(id) {
            Some(got) => assert_eq!(got, sha, "{ctx}: dock segment {id}"),
            None => assert!(scratch, "{ctx}: filed dock segment {id} is lost"),
        }
    }
}

fn footage(store: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.arg("--store").arg(store).args(args);
    c.env_remove(footage::fail::ENV);
    common::output(&mut c)
}

#[test]
fn service_kill_campaign_loses_nothing_acknowledged() {
    let kills_wanted: usize = std::env::var("FOOTAGE_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    let t = tempfile::tempdir().unwrap();
    let t_path = t.path().to_path_buf();
    let _keep = if std::env::var_os("FOOTAGE_KEEP").is_some() {
        eprintln!("keeping {}", t_path.display());
        #[allow(deprecated)]
        let _ = t.into_path();
        None
    } else {
        Some(())
    };
    let t = &t_path;
    let (store, dock, stage, cloud) = (
        t.join("store"),
        t.join("dock"),
        t.join("stage"),
        t.join("cloud"),
    );
    for d in [&dock, &stage, &cloud] {
        std::fs::create_dir(d).unwrap();
    }
    let out = footage(&store, &["init"]);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(
        store.join("policy.toml"),
        POLICY.replace("CLOUD", &format!("file://{}", cloud.display())),
    )
    .unwrap();
    let book = Arc::new(Mutex::new(Book {
        slots: (0..UPLOADERS).map(|_| None).collect(),
        ..Book::default()
    }));
    let seed = Arc::new(AtomicU64::new(1000));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x05e5_71ce);
    let mut landed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut misses: HashMap<&str, u32> = HashMap::new();
    let (mut kills, mut timed, mut in_recovery, mut rounds) = (0usize, 0usize, 0usize, 0usize);
    let started = Instant::now();
    let all_landed = |l: &BTreeMap<&str, usize>| POINTS.iter().all(|(p, _)| l.contains_key(p));
    while kills < kills_wanted || !all_landed(&landed) {
        rounds += 1;
        assert!(
            rounds <= 4 * kills_wanted.max(POINTS.len()),
            "points not landing: {landed:?}, misses {misses:?}"
        );
        let point = if rng.random_bool(0.55) {
            let unhit: Vec<&(&str, u64)> = POINTS
                .iter()
                .filter(|(p, _)| !landed.contains_key(p))
                .collect();
            let &(p, max) = if unhit.is_empty() {
                &POINTS[rng.random_range(0..POINTS.len())]
            } else {
                unhit[rng.random_range(0..unhit.len())]
            };
            let max = (max >> misses.get(p).copied().unwrap_or(0).min(8)).max(1);
            Some((p, rng.random_range(1..=max)))
        } else {
            None
        };
        let armed = point.map(|(p, n)| format!("{p}@{n}"));
        let ctx = format!("round {rounds} ({armed:?})");
        let mut serve = Serve::start(&store, &dock, armed.as_deref());
        let delay = Duration::from_millis(rng.random_range(50..1500));
        let mut sent_kill = false;
        drive(&mut serve, &book, &seed, &dock, &stage, false, |s| {
            let limit = if point.is_some() { MISS_AFTER } else { delay };
            if s.wait_for(limit).is_none() {
                let _ = s.child.kill();
                sent_kill = true;
            }
        });
        let was_listening = serve.addr.is_some();
        let (status, stderr) = serve.finish();
        match (status.signal(), point) {
            (Some(libc::SIGABRT), Some((p, _)))
                if stderr.contains(&format!("footage: failpoint {p} reached")) =>
            {
                *landed.entry(p).or_default() += 1;
                kills += 1;
                if !was_listening {
                    in_recovery += 1;
                }
            }
            (Some(libc::SIGKILL), _) if sent_kill => {
                if let Some((p, _)) = point {
                    *misses.entry(p).or_default() += 1;
                }
                timed += 1;
                kills += 1;
            }
            _ => panic!("{ctx}: the service ended in a way no kill explains ({status}):\n{stderr}"),
        }
        eprintln!("{ctx}: {status}, kill sent {sent_kill}");
        // Restart cleanly and check.
        let serve = Serve::start(&store, &dock, None);
        check(&store, &dock, &serve, &book, &ctx);
        serve.stop();
    }
    // The final round: every unfinished upload completes, the dock drains.
    let mut serve = Serve::start(&store, &dock, None);
    drive(&mut serve, &book, &seed, &dock, &stage, true, |_| {
        wait_until("every upload to complete", || {
            lock(&book).slots.iter().all(Option::is_none)
        })
    });
    check(&store, &dock, &serve, &book, "final round");
    {
        let b = lock(&book);
        let left: Vec<_> = b
            .slots
            .iter()
            .flatten()
            .map(|u| (u.loc.clone(), u.acked, u.data.len()))
            .collect();
        assert!(
            left.is_empty(),
            "uploads left unfinished in the final round: {left:?}"
        );
    }
    serve.stop();
    let out = footage(&store, &["verify"]);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("verify: {out:?}"));
    assert!(
        out.status.success() && common::verify_json_findings(&v).is_empty(),
        "verify: {v:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = footage(&store, &["audit", "--verify"]);
    assert!(out.status.success(), "audit --verify: {out:?}");
    let b = lock(&book);
    let out = footage(&store, &["audit"]);
    let scratch_gone = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(r#""actor":"retention","action":"delete""#))
        .count();
    eprintln!(
        "service kill campaign: {kills} kills in {rounds} rounds ({timed} timed SIGKILLs, crash \
         points {landed:?}, {in_recovery} of them in recovery, misses {misses:?}); {} uploads \
         completed ({} learned from HEAD, {} HEADs past the last acknowledged offset, {} \
         creations never acknowledged), {} videos filed, {scratch_gone} scratch segments \
         deleted by the background retention; {:.0?}",
        b.done.len(),
        b.completed_by_head,
        b.beyond_ack,
        b.unacked_creations,
        b.dropped.len(),
        started.elapsed()
    );
    assert!(!b.done.is_empty() && !b.dropped.is_empty());
}
