//! Resumable uploads (tus 1.0) at /api/uploads, through real HTTP: interrupted requests
//! resumed from HEAD (a socket cut mid-body included), restarts and kill -9 of a `footage
//! serve` child, duplicates, concurrency, termination, hostile headers, and the commit
//! record version 2 that uploads write.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{random_bytes, T0};
use footage::server::{self, ServerOptions};
use footage::Store;
use sha2::{Digest, Sha256};

/// A response: status and headers (lowercase names), body.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn h(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a whole `Connection: close` response.
fn read_resp(s: &mut TcpStream) -> Resp {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: out[split + 4..].to_vec(),
    }
}

/// A tiny tus client over raw sockets (so a body can be cut off at any byte).
#[derive(Clone)]
struct Tus {
    addr: SocketAddr,
    token: Option<String>,
}

impl Tus {
    fn send(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Resp {
        let mut s = self.start(method, path, headers, Some(body.len()));
        s.write_all(body).unwrap();
        read_resp(&mut s)
    }

    /// Sends the head of a request announcing `len` body bytes; returns the socket.
    fn start(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        len: Option<usize>,
    ) -> TcpStream {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTus-Resumable: 1.0.0\r\n"
        );
        if let Some(t) = &self.token {
            req += &format!("Authorization: Bearer {t}\r\n");
        }
        for (k, v) in headers {
            req += &format!("{k}: {v}\r\n");
        }
        if let Some(n) = len {
            req += &format!("Content-Length: {n}\r\n");
        }
        req += "\r\n";
        s.write_all(req.as_bytes()).unwrap();
        s
    }

    fn create(&self, len: usize, meta: &[(&str, &str)]) -> Resp {
        self.send(
            "POST",
            "/api/uploads",
            &[
                ("Upload-Length", len.to_string()),
                ("Upload-Metadata", metadata(meta)),
            ],
            b"",
        )
    }

    fn head(&self, loc: &str) -> Resp {
        let s = self.start("HEAD", loc, &[], None);
        let mut s = s;
        read_resp(&mut s)
    }

    fn offset(&self, loc: &str) -> u64 {
        let r = self.head(loc);
        assert_eq!(r.status, 200, "{r:?}");
        r.h("upload-offset").unwrap().parse().unwrap()
    }

    fn patch(&self, loc: &str, offset: u64, body: &[u8]) -> Resp {
        self.send("PATCH", loc, &patch_headers(offset), body)
    }

    /// Sends `sent` bytes of a PATCH that announced `body.len()`, then cuts the socket.
    fn cut_patch(&self, loc: &str, offset: u64, body: &[u8], sent: usize) {
        let mut s = self.start("PATCH", loc, &patch_headers(offset), Some(body.len()));
        s.write_all(&body[..sent]).unwrap();
        s.flush().unwrap();
        let _ = s.shutdown(Shutdown::Both);
    }

    /// Creates an upload and sends `data` in one PATCH; returns the final response.
    fn upload(&self, data: &[u8], meta: &[(&str, &str)]) -> Resp {
        let c = self.create(data.len(), meta);
        assert_eq!(c.status, 201, "{c:?}");
        let loc = c.h("location").unwrap().to_string();
        self.patch(&loc, 0, data)
    }
}

fn patch_headers(offset: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Upload-Offset", offset.to_string()),
        ("Content-Type", "application/offset+octet-stream".into()),
    ]
}

fn metadata(pairs: &[(&str, &str)]) -> String {
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

fn start_text() -> String {
    footage::input::time::format_time(T0)
}

fn std_meta(device: &str) -> Vec<(&'static str, String)> {
    vec![
        ("officer", "MET-7".into()),
        ("device", device.into()),
        ("start", start_text()),
        ("end", footage::input::time::format_time(T0 + 60_000_000)),
        ("tag", "dock,night".into()),
        (
            "gps",
            "time,lat,lon\n2025-11-20T14:03:00Z,51.5,-0.12\n".into(),
        ),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Waits (generous deadline) until `f` holds.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn local_opts() -> ServerOptions {
    ServerOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        local_actor: "tester".into(),
        log_requests: false,
        ..ServerOptions::default()
    }
}

fn check_stored(store: &Store, id: u64, data: &[u8], resp: &Resp) {
    assert_eq!(
        resp.h("footage-sha256"),
        Some(hex(&Sha256::digest(data)).as_str())
    );
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    assert_eq!(
        store.info(id).unwrap().sha256_hex(),
        hex(&Sha256::digest(data))
    );
    store.verify_segment(id).unwrap();
}

#[test]
fn patches_cut_at_random_offsets_resume_from_head_and_store_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let tus = Tus {
        addr: srv.addr(),
        token: None,
    };
    let data = random_bytes(11, 1_500_000);
    let meta = std_meta("AX-1");
    let c = tus.create(data.len(), &as_refs(&meta));
    assert_eq!(c.status, 201, "{c:?}");
    assert!(c.h("upload-expires").is_some());
    let loc = c.h("location").unwrap().to_string();
    assert!(loc.starts_with("/api/uploads/"));
    let mut rng = common::random_bytes(5, 64).into_iter();
    let mut offset = 0u64;
    let mut cuts = 0;
    while (offset as usize) < data.len() {
        let rest = &data[offset as usize..];
        let r = rng.next().unwrap_or(7) as usize;
        if !r.is_multiple_of(3) && rest.len() > 10 {
            // Cut the socket after a random part of the body: what arrived becomes durable.
            let sent = 1 + (r * 7919) % (rest.len() - 1).min(300_000);
            tus.cut_patch(&loc, offset, rest, sent);
            let want = offset + sent as u64;
            wait_for("the cut PATCH to be made durable", || {
                tus.offset(&loc) == want
            });
            offset = want;
            cuts += 1;
        } else {
            // A whole request for a random part of what is left.
            let n = (1 + (r * 104_729) % rest.len()).min(rest.len());
            let resp = tus.patch(&loc, offset, &rest[..n]);
            assert_eq!(resp.status, 204, "{resp:?}");
            offset += n as u64;
            assert_eq!(resp.h("upload-offset"), Some(offset.to_string().as_str()));
            if offset as usize == data.len() {
                let id: u64 = resp.h("footage-segment").unwrap().parse().unwrap();
                assert_eq!(resp.h("footage-duplicate"), Some("false"));
                check_stored(&store, id, &data, &resp);
                // HEAD repeats the segment for a dock that lost the answer.
                let h = tus.head(&loc);
                assert_eq!(h.h("footage-segment"), Some(id.to_string().as_str()));
                assert_eq!(h.h("cache-control"), Some("no-store"));
            }
        }
    }
    assert!(cuts >= 3, "only {cuts} cuts");
    let id: u64 = tus
        .head(&loc)
        .h("footage-segment")
        .unwrap()
        .parse()
        .unwrap();
    srv.stop().unwrap();
    let report = store.verify(None, |_| {}).unwrap();
    common::assert_verify_clean(&report, "after the uploads");
    drop(store);
    // A version 2 commit record (short chunks in the middle) reads back after a reopen, and
    // the upload's reserved id is not handed out again.
    let store = common::open_small(dir.path());
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    let other = store
        .ingest_bytes(common::meta("MET-1", "AX-9", T0), &random_bytes(3, 200_000))
        .unwrap();
    assert!(other.id > id);
    // Uniform segments still read as before (version 1).
    assert_eq!(
        store.read_range(other.id, 0, u64::MAX).unwrap(),
        random_bytes(3, 200_000)
    );
}

#[test]
fn duplicates_concurrent_uploads_termination_and_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let tus = Tus {
        addr: srv.addr(),
        token: None,
    };
    let o = tus.send("OPTIONS", "/api/uploads", &[], b"");
    assert_eq!(o.status, 204);
    assert_eq!(o.h("tus-version"), Some("1.0.0"));
    assert!(o.h("tus-extension").unwrap().contains("termination"));
    assert!(o.h("tus-max-size").is_some());
    // 8 docks at once.
    let handles: Vec<_> = (0..8u64)
        .map(|i| {
            let tus = tus.clone();
            std::thread::spawn(move || {
                let data = random_bytes(100 + i, 300_000 + i as usize * 1000);
                let meta = std_meta(&format!("AX-{i}"));
                let r = tus.upload(&data, &as_refs(&meta));
                assert_eq!(r.status, 204, "{r:?}");
                (
                    r.h("footage-segment").unwrap().parse::<u64>().unwrap(),
                    data,
                    r,
                )
            })
        })
        .collect();
    let mut ids = Vec::new();
    for h in handles {
        let (id, data, r) = h.join().unwrap();
        check_stored(&store, id, &data, &r);
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    // The same device sending the same bytes again gets the same segment.
    let again = tus.upload(&random_bytes(103, 303_000), &as_refs(&std_meta("AX-3")));
    assert_eq!(again.h("footage-duplicate"), Some("true"));
    let first = store
        .find_duplicate("AX-3", &Sha256::digest(random_bytes(103, 303_000)).into())
        .unwrap()
        .unwrap();
    assert_eq!(again.h("footage-segment"), Some(first.to_string().as_str()));
    assert_eq!(store.len(), 8);
    // One in progress shows in the list; terminated, it is gone and stores nothing.
    let c = tus.create(1000, &as_refs(&std_meta("AX-T")));
    let loc = c.h("location").unwrap().to_string();
    assert_eq!(tus.patch(&loc, 0, &[1u8; 400]).status, 204);
    let list = tus.send("GET", "/api/uploads", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
    let ups = v["uploads"].as_array().unwrap();
    assert_eq!(ups.len(), 1, "{v}");
    assert_eq!(ups[0]["offset"], 400);
    assert_eq!(ups[0]["device"], "AX-T");
    assert_eq!(ups[0]["caller"], "tester");
    let stats = store.upload_stats();
    assert_eq!((stats.sessions_open, stats.completed_total), (1, 9));
    assert_eq!(tus.send("DELETE", &loc, &[], b"").status, 204);
    assert_eq!(tus.head(&loc).status, 404);
    assert_eq!(tus.patch(&loc, 400, &[1u8; 10]).status, 404);
    assert_eq!(store.len(), 8);
    let audit: Vec<String> = store
        .audit_entries(None, None)
        .unwrap()
        .iter()
        .map(|e| e.action.clone())
        .collect();
    for a in ["upload-create", "upload-complete", "upload-terminate"] {
        assert!(
            audit.iter().any(|x| x == a),
            "{a} missing from the audit log"
        );
    }
    srv.stop().unwrap();
    // Dead chunks of the terminated upload are ordinary dead space: compaction may take them.
    store.compact(0.0, "tester").unwrap();
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after compaction");
    for id in ids {
        store.verify_segment(id).unwrap();
    }
}

#[test]
fn bad_headers_and_roles_never_change_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let reader = server::tokens::add(store.root(), "viewer", true).unwrap();
    let writer = server::tokens::add(store.root(), "dock-1", false).unwrap();
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let tus = Tus {
        addr: srv.addr(),
        token: Some(writer),
    };
    let ro = Tus {
        addr: srv.addr(),
        token: Some(reader),
    };
    let meta = std_meta("AX-B");
    let c = tus.create(100_000, &as_refs(&meta));
    assert_eq!(c.status, 201);
    let loc = c.h("location").unwrap().to_string();
    assert_eq!(tus.patch(&loc, 0, &[9u8; 50_000]).status, 204);
    let volumes = || -> u64 {
        common::volume_files(store.root())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    };
    let before = (volumes(), store.len(), store.uploads());
    let bad_meta: [&[(&str, &str)]; 5] = [
        &[("officer", "MET-1")],
        &[
            ("officer", "MET 1"),
            ("device", "AX"),
            ("start", "2025-11-20T14:03:00Z"),
        ],
        &[
            ("officer", "MET-1"),
            ("device", "AX"),
            ("start", "yesterday"),
        ],
        &[
            ("officer", "M"),
            ("device", "AX"),
            ("start", "2025-11-20T14:03:00Z"),
            ("gps", "not,a\ntrack"),
        ],
        &[
            ("officer", "M"),
            ("device", "AX"),
            ("start", "2025-11-20T14:03:00Z"),
            ("end", "2025-11-20T14:00:00Z"),
        ],
    ];
    for m in bad_meta {
        let r = tus.create(10, m);
        assert_eq!(r.status, 400, "{m:?}: {r:?}");
        assert!(String::from_utf8_lossy(&r.body).contains("error"));
    }
    let bad = [
        // Not base64.
        tus.send(
            "POST",
            "/api/uploads",
            &[
                ("Upload-Length", "5".into()),
                ("Upload-Metadata", "officer ***".into()),
            ],
            b"",
        ),
        tus.send(
            "POST",
            "/api/uploads",
            &[("Upload-Length", "-5".into())],
            b"",
        ),
        tus.send(
            "POST",
            "/api/uploads",
            &[("Upload-Length", "99999999999999999999999".into())],
            b"",
        ),
        tus.send(
            "POST",
            "/api/uploads",
            &[("Upload-Length", (1u64 << 62).to_string())],
            b"",
        ),
        ro.create(10, &as_refs(&meta)),
        ro.patch(&loc, 50_000, &[1u8; 10]),
        ro.send("DELETE", &loc, &[], b""),
        tus.patch(&loc, 49_999, &[1u8; 10]),
        tus.patch(&loc, 50_001, &[1u8; 10]),
        tus.send(
            "PATCH",
            &loc,
            &[
                ("Upload-Offset", "50000".into()),
                ("Content-Type", "application/octet-stream".into()),
            ],
            &[1u8; 10],
        ),
        tus.send(
            "PATCH",
            &loc,
            &[
                ("Upload-Offset", "x".into()),
                ("Content-Type", "application/offset+octet-stream".into()),
            ],
            &[1u8; 10],
        ),
        tus.patch(&loc, 50_000, &[1u8; 50_001]),
        tus.patch(
            "/api/uploads/00000000000000000000000000000000",
            0,
            &[1u8; 10],
        ),
        tus.patch("/api/uploads/..%2F..%2Fetc", 0, &[1u8; 10]),
    ];
    let want = [
        400, 400, 400, 413, 403, 403, 403, 409, 409, 415, 400, 413, 404, 404,
    ];
    for (i, (r, w)) in bad.iter().zip(want).enumerate() {
        assert_eq!(r.status, w, "case {i}: {r:?}");
    }
    // Without Tus-Resumable: 412.
    let mut s = TcpStream::connect(srv.addr()).unwrap();
    s.write_all(b"POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nUpload-Length: 5\r\nContent-Length: 0\r\n\r\n").unwrap();
    let r = read_resp(&mut s);
    assert!(r.status == 412 || r.status == 401, "{r:?}");
    assert_eq!(before, (volumes(), store.len(), store.uploads()));
    assert!(ro.send("GET", "/api/uploads", &[], b"").status == 200);
    // The upload goes on unharmed.
    let r = tus.patch(&loc, 50_000, &[9u8; 50_000]);
    assert_eq!(r.status, 204);
    let id: u64 = r.h("footage-segment").unwrap().parse().unwrap();
    assert_eq!(
        store.read_range(id, 0, u64::MAX).unwrap(),
        vec![9u8; 100_000]
    );
    srv.stop().unwrap();
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after bad requests");
}

/// A `footage serve` child, killed on drop.
struct Serve {
    child: Child,
    tus: Tus,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path) -> Serve {
    serve_env(store, &[])
}

fn serve_env(store: &Path, env: &[(&str, &str)]) -> Serve {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_footage"));
    cmd.arg("--store")
        .arg(store)
        .args(["serve", "--addr", "127.0.0.1:0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = common::spawn(&mut cmd);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line:?}"));
    let url = v["listening"].as_str().unwrap();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    Serve {
        child,
        tus: Tus { addr, token: None },
    }
}

/// `write_bytes` of a process's /proc/PID/io.
fn write_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn uploads_resume_across_a_clean_restart_and_kill_9_of_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let out = common::output(
        Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(&root)
            .arg("init"),
    );
    assert!(out.status.success(), "{out:?}");
    let data = random_bytes(77, 24 << 20);
    let meta = std_meta("AX-K");
    // 1. A third, then a clean stop (SIGTERM).
    let s = serve(&root);
    let c = s.tus.create(data.len(), &as_refs(&meta));
    assert_eq!(c.status, 201, "{c:?}");
    let loc = c.h("location").unwrap().to_string();
    let third = data.len() / 3;
    assert_eq!(s.tus.patch(&loc, 0, &data[..third]).status, 204);
    unsafe {
        libc::kill(s.child.id() as i32, libc::SIGTERM);
    }
    let mut s = s;
    s.child.wait().unwrap();
    drop(s);
    // 2. The service again: HEAD says a third; a PATCH cut off mid-body, then kill -9.
    let s = serve(&root);
    assert_eq!(s.tus.offset(&loc), third as u64);
    let sent = third + 1_234_567;
    s.tus
        .cut_patch(&loc, third as u64, &data[third..], sent - third);
    wait_for("the cut PATCH", || s.tus.offset(&loc) == sent as u64);
    unsafe {
        libc::kill(s.child.id() as i32, libc::SIGKILL);
    }
    drop(s);
    // 3. Between runs a plain CLI ingest opens the store: it must not take the upload's id.
    let other = dir.path().join("other.bin");
    std::fs::write(&other, random_bytes(5, 1000)).unwrap();
    let out = common::output(
        Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(&root)
            .args([
                "ingest",
                "--officer",
                "MET-1",
                "--device",
                "AX-0",
                "--start",
            ])
            .arg(start_text())
            .args(["--end", &start_text()])
            .arg(&other),
    );
    assert!(out.status.success(), "{out:?}");
    let cli_id: u64 = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| {
            v["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or(v["id"].as_u64())
        })
        .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    // 4. Once more: the rest, measured.
    let s = serve(&root);
    assert_eq!(s.tus.offset(&loc), sent as u64);
    let w0 = write_bytes(s.child.id());
    let r = s.tus.patch(&loc, sent as u64, &data[sent..]);
    assert_eq!(r.status, 204, "{r:?}");
    let w1 = write_bytes(s.child.id());
    let ratio = (w1 - w0) as f64 / (data.len() - sent) as f64;
    println!(
        "bytes written to disk per byte ingested over tus: {ratio:.4} ({} of {})",
        w1 - w0,
        data.len() - sent
    );
    assert!(ratio < 1.1, "write amplification {ratio}");
    let id: u64 = r.h("footage-segment").unwrap().parse().unwrap();
    assert_ne!(id, cli_id);
    assert_eq!(
        r.h("footage-sha256"),
        Some(hex(&Sha256::digest(&data)).as_str())
    );
    drop(s);
    let store = footage::Store::open(&root).unwrap();
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after the restarts");
}

#[test]
fn live_sessions_survive_compaction_in_an_encrypted_store_and_expired_ones_are_dead_space() {
    let dir = tempfile::tempdir().unwrap();
    let opts = footage::StoreOptions {
        key: Some(footage::Key::from_bytes([4; 32])),
        ..common::small_options()
    };
    let store = footage::testing::open_or_create_with(dir.path(), &opts).unwrap();
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let tus = Tus {
        addr: srv.addr(),
        token: None,
    };
    // 2.5 MB over 1 MiB volumes: the first volumes are sealed and hold nothing the catalog
    // knows, only the session's chunks.
    let data = random_bytes(21, 2_500_000);
    let c = tus.create(data.len(), &as_refs(&std_meta("AX-C")));
    let loc = c.h("location").unwrap().to_string();
    let part = 2_100_000;
    assert_eq!(tus.patch(&loc, 0, &data[..part]).status, 204);
    let vols_before = common::volume_files(dir.path()).len();
    assert!(vols_before >= 2, "{vols_before} volumes");
    store.compact(0.0, "tester").unwrap();
    store.drop_empty_volumes("tester").unwrap();
    assert_eq!(common::volume_files(dir.path()).len(), vols_before);
    // A restart in between: the session's pins come back from its record.
    srv.stop().unwrap();
    drop(store);
    let store = footage::testing::open_or_create_with(dir.path(), &opts).unwrap();
    store.compact(0.0, "tester").unwrap();
    store.drop_empty_volumes("tester").unwrap();
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let tus = Tus {
        addr: srv.addr(),
        token: None,
    };
    assert_eq!(tus.offset(&loc), part as u64);
    let r = tus.patch(&loc, part as u64, &data[part..]);
    assert_eq!(r.status, 204, "{r:?}");
    let id: u64 = r.h("footage-segment").unwrap().parse().unwrap();
    check_stored(&store, id, &data, &r);
    // The chunk payloads on disk are sealed: the plaintext is nowhere in the volumes.
    let needle = &data[1000..1064];
    for v in common::volume_files(dir.path()) {
        let bytes = std::fs::read(v).unwrap();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    }
    // An expired session is removed, in the audit log, and its chunks become dead space.
    store.set_upload_options(footage::UploadOptions {
        expires_after: Duration::ZERO,
        ..footage::UploadOptions::default()
    });
    let c = tus.create(1_500_000, &as_refs(&std_meta("AX-E")));
    let loc = c.h("location").unwrap().to_string();
    assert_eq!(tus.patch(&loc, 0, &random_bytes(3, 1_200_000)).status, 204);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(store.expire_uploads().unwrap(), 1);
    assert_eq!(tus.head(&loc).status, 404);
    assert!(store.uploads().is_empty());
    assert_eq!(store.upload_stats().expired_total, 1);
    srv.stop().unwrap();
    let s = store.compact(0.0, "tester").unwrap();
    assert!(s.bytes_reclaimed > 0, "{s:?}");
    store.verify_segment(id).unwrap();
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after expiry");
}

#[test]
fn without_an_end_the_mp4_header_gives_it_and_a_non_mp4_cannot_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let tus = Tus {
        addr: srv.addr(),
        token: None,
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/input/tiny.mp4");
    let mp4 = std::fs::read(&fixture).unwrap();
    let duration = footage::input::mp4_info(&fixture)
        .unwrap()
        .and_then(|i| i.duration_us)
        .unwrap();
    let start = start_text();
    let meta = [
        ("officer", "MET-2"),
        ("device", "AX-M"),
        ("start", start.as_str()),
    ];
    let c = tus.create(mp4.len(), &meta);
    assert_eq!(c.status, 201, "{c:?}");
    let loc = c.h("location").unwrap().to_string();
    assert_eq!(tus.patch(&loc, 0, &mp4[..700]).status, 204);
    let r = tus.patch(&loc, 700, &mp4[700..]);
    assert_eq!(r.status, 204, "{r:?}");
    let id: u64 = r.h("footage-segment").unwrap().parse().unwrap();
    let info = store.info(id).unwrap();
    assert_eq!(info.start.to_string(), start);
    assert_eq!(
        info.end.to_string(),
        footage::input::time::format_time(T0 + duration)
    );
    // Not an MP4 and no end: every byte is durable, but no segment can be made.
    let junk = random_bytes(8, 5000);
    let c = tus.create(junk.len(), &meta);
    let loc = c.h("location").unwrap().to_string();
    let r = tus.patch(&loc, 0, &junk);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(String::from_utf8_lossy(&r.body).contains("end"));
    let h = tus.head(&loc);
    assert_eq!(h.status, 200);
    assert_eq!(h.h("upload-offset"), Some("5000"));
    assert!(h.h("footage-segment").is_none());
    assert_eq!(store.len(), 1);
    assert_eq!(tus.send("DELETE", &loc, &[], b"").status, 204);
    srv.stop().unwrap();
}

/// A dock sends a whole recording in one PATCH and the service is killed -9 in the middle of
/// it: what had arrived is not lost with the request. Inside a request the whole chunks are
/// made durable every `PROGRESS_EVERY` bytes, so HEAD after the restart reports at least the
/// last such point, never more than was sent, and the rest completes the same bytes.
#[test]
fn a_service_killed_inside_a_long_patch_keeps_the_progress_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let out = common::output(
        Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(&root)
            .arg("init"),
    );
    assert!(out.status.success(), "{out:?}");
    let every = footage::UPLOAD_PROGRESS_EVERY as usize;
    let data = random_bytes(91, 3 * every);
    let meta = std_meta("AX-LONG");
    let s = serve(&root);
    let c = s.tus.create(data.len(), &as_refs(&meta));
    assert_eq!(c.status, 201, "{c:?}");
    let loc = c.h("location").unwrap().to_string();
    // Announce the whole body, send two progress intervals and a bit, keep the socket open.
    let sent = 2 * every + 100_000;
    let mut sock = s
        .tus
        .start("PATCH", &loc, &patch_headers(0), Some(data.len()));
    sock.write_all(&data[..sent]).unwrap();
    sock.flush().unwrap();
    // The service has recorded (durably) the first interval once its uploads counter says so.
    let metrics = |s: &Serve| -> u64 {
        let mut m = s.tus.start("GET", "/metrics", &[], None);
        let r = read_resp(&mut m);
        String::from_utf8_lossy(&r.body)
            .lines()
            .find_map(|l| l.strip_prefix("footage_upload_bytes_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    wait_for("progress recorded inside the request", || {
        metrics(&s) >= 2 * every as u64 - 2 * (1 << 20)
    });
    unsafe {
        libc::kill(s.child.id() as i32, libc::SIGKILL);
    }
    drop(sock);
    drop(s);
    let s = serve(&root);
    let off = s.tus.offset(&loc);
    assert!(
        off >= (every as u64) && off <= sent as u64,
        "HEAD after kill -9 inside a {sent}-byte PATCH says {off} (progress every {every})"
    );
    let r = s.tus.patch(&loc, off, &data[off as usize..]);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.h("footage-sha256"),
        Some(hex(&Sha256::digest(&data)).as_str())
    );
    let id: u64 = r.h("footage-segment").unwrap().parse().unwrap();
    drop(s);
    let store = footage::Store::open(&root).unwrap();
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    common::assert_verify_clean(
        &store.verify(None, |_| {}).unwrap(),
        "after kill -9 in a PATCH",
    );
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// PATCH headers with an `Upload-Checksum`.
fn checked_headers(offset: u64, checksum: String) -> Vec<(&'static str, String)> {
    let mut h = patch_headers(offset);
    h.push(("Upload-Checksum", checksum));
    h
}

fn sha1_of(b: &[u8]) -> String {
    format!("sha1 {}", b64(&sha1::Sha1::digest(b)))
}

fn sha256_of(b: &[u8]) -> String {
    format!("sha256 {}", b64(&Sha256::digest(b)))
}

/// The tus checksum extension: a PATCH counts only if its body has the digest it announced.
/// A wrong one answers 460 and HEAD keeps the old offset (also for a body longer than the
/// progress interval: nothing of it was recorded), a body cut off counts nothing, an unknown
/// algorithm or a malformed header is 400 before anything is written, and resumed requests
/// complete the upload with the right SHA-256.
#[test]
fn a_patch_with_a_checksum_counts_only_when_its_body_matches() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let tus = Tus {
        addr: srv.addr(),
        token: None,
    };
    let o = tus.send("OPTIONS", "/api/uploads", &[], b"");
    assert!(o.h("tus-extension").unwrap().contains("checksum"), "{o:?}");
    assert_eq!(o.h("tus-checksum-algorithm"), Some("sha1,sha256"));

    let every = footage::UPLOAD_PROGRESS_EVERY as usize;
    let data = random_bytes(460, every + 3_000_000);
    let meta = std_meta("AX-SUM");
    let c = tus.create(data.len(), &as_refs(&meta));
    assert_eq!(c.status, 201, "{c:?}");
    let loc = c.h("location").unwrap().to_string();
    let a = 1_000_000;
    // 1. A right checksum (sha256): counted.
    let r = tus.send(
        "PATCH",
        &loc,
        &checked_headers(0, sha256_of(&data[..a])),
        &data[..a],
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.h("upload-offset"), Some(a.to_string().as_str()));
    let volumes = || -> u64 {
        common::volume_files(store.root())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    };
    // 2. Headers refused before anything is written: 400.
    let before = (volumes(), store.upload_stats());
    for bad in [
        format!("md5 {}", b64(&[0u8; 16])),
        "sha1".into(),
        "sha1 ***".into(),
        format!("sha1 {}", b64(&Sha256::digest(b"x"))),
    ] {
        let r = tus.send(
            "PATCH",
            &loc,
            &checked_headers(a as u64, bad.clone()),
            &data[a..a + 10],
        );
        assert_eq!(r.status, 400, "{bad:?}: {r:?}");
    }
    assert_eq!(before, (volumes(), store.upload_stats()));
    // 3. A wrong checksum over more than a progress interval: 460, the bytes do not count.
    let long = &data[a..];
    assert!(long.len() > every);
    let r = tus.send(
        "PATCH",
        &loc,
        &checked_headers(a as u64, sha1_of(&long[1..])),
        long,
    );
    assert_eq!(r.status, 460, "{r:?}");
    assert_eq!(r.h("upload-offset"), Some(a.to_string().as_str()));
    assert_eq!(tus.offset(&loc), a as u64);
    assert_eq!(store.upload_stats().bytes_received_total, a as u64);
    assert!(
        volumes() > before.0 + every as u64,
        "the bytes went to the volumes"
    );
    // 4. A body cut off counts nothing either: the next request starts at the same offset.
    let b = 2_000_000;
    let mut s = tus.start(
        "PATCH",
        &loc,
        &checked_headers(a as u64, sha1_of(&data[a..a + b])),
        Some(b),
    );
    s.write_all(&data[a..a + b / 2]).unwrap();
    s.flush().unwrap();
    let _ = s.shutdown(Shutdown::Both);
    // 5. Resumed with right checksums (sha1, then sha256): the upload completes.
    let r = tus.send(
        "PATCH",
        &loc,
        &checked_headers(a as u64, sha1_of(&data[a..a + b])),
        &data[a..a + b],
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.h("upload-offset"), Some((a + b).to_string().as_str()));
    let rest = &data[a + b..];
    let r = tus.send(
        "PATCH",
        &loc,
        &checked_headers((a + b) as u64, sha256_of(rest)),
        rest,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let id: u64 = r.h("footage-segment").unwrap().parse().unwrap();
    check_stored(&store, id, &data, &r);
    assert_eq!(store.upload_stats().bytes_received_total, data.len() as u64);
    srv.stop().unwrap();
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after checksums");
    drop(store);
    let store = common::open_small(dir.path());
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
}

/// A service killed inside a long PATCH that announced a checksum records nothing of it (the
/// digest could not be compared): HEAD after the restart gives the offset before the request,
/// and the request sent again completes the same bytes.
#[test]
fn a_service_killed_inside_a_checksummed_patch_keeps_the_old_offset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let out = common::output(
        Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(&root)
            .arg("init"),
    );
    assert!(out.status.success(), "{out:?}");
    let every = footage::UPLOAD_PROGRESS_EVERY as usize;
    let data = random_bytes(461, 2 * every + 500_000);
    let meta = std_meta("AX-SUMK");
    let s = serve(&root);
    let c = s.tus.create(data.len(), &as_refs(&meta));
    assert_eq!(c.status, 201, "{c:?}");
    let loc = c.h("location").unwrap().to_string();
    let first = 300_000;
    let r = s.tus.send(
        "PATCH",
        &loc,
        &checked_headers(0, sha1_of(&data[..first])),
        &data[..first],
    );
    assert_eq!(r.status, 204, "{r:?}");
    let rest = &data[first..];
    let mut sock = s.tus.start(
        "PATCH",
        &loc,
        &checked_headers(first as u64, sha1_of(rest)),
        Some(rest.len()),
    );
    let sent = every + every / 2;
    sock.write_all(&rest[..sent]).unwrap();
    sock.flush().unwrap();
    // The service has written more than a progress interval of it to the volumes.
    let on_disk = || -> u64 {
        common::volume_files(&root)
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    wait_for("the bytes in the volumes", || {
        on_disk() > every as u64 + 100_000
    });
    unsafe {
        libc::kill(s.child.id() as i32, libc::SIGKILL);
    }
    drop(sock);
    drop(s);
    let s = serve(&root);
    assert_eq!(s.tus.offset(&loc), first as u64);
    let r = s.tus.send(
        "PATCH",
        &loc,
        &checked_headers(first as u64, sha1_of(rest)),
        rest,
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.h("footage-sha256"),
        Some(hex(&Sha256::digest(&data)).as_str())
    );
    let id: u64 = r.h("footage-segment").unwrap().parse().unwrap();
    drop(s);
    let store = footage::Store::open(&root).unwrap();
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    common::assert_verify_clean(
        &store.verify(None, |_| {}).unwrap(),
        "after kill -9 in a checksummed PATCH",
    );
}

/// The `ingest` role (a dock's token): its own uploads and nothing else. Every read or change
/// endpoint is 403 for it, another dock's session too (HEAD, PATCH, DELETE), while a `write`
/// token (station staff) may still see any session; `footage token add --role ingest` makes one.
#[test]
fn an_ingest_token_may_only_touch_its_own_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let root = store.root().to_path_buf();
    let staff = server::tokens::add(&root, "sgt.staff", false).unwrap();
    let reader = server::tokens::add(&root, "viewer", true).unwrap();
    let dock_b =
        server::tokens::add_with_role(&root, "dock-b", server::tokens::Role::Ingest).unwrap();
    let out = common::output(
        Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(&root)
            .args(["token", "add", "dock-a", "--role", "ingest"]),
    );
    assert!(out.status.success(), "{out:?}");
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(made["role"], "ingest");
    let dock_a = made["token"].as_str().unwrap().to_string();
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let as_tok = |t: &str| Tus {
        addr: srv.addr(),
        token: Some(t.to_string()),
    };
    let (a, b, w, ro) = (
        as_tok(&dock_a),
        as_tok(&dock_b),
        as_tok(&staff),
        as_tok(&reader),
    );
    // A stored segment, uploaded by dock-a.
    let data = random_bytes(12, 300_000);
    let r = a.upload(&data, &as_refs(&std_meta("AX-A")));
    assert_eq!(r.status, 204, "{r:?}");
    let id: u64 = r.h("footage-segment").unwrap().parse().unwrap();
    check_stored(&store, id, &data, &r);
    let who = a.send("GET", "/api/whoami", &[], b"");
    assert_eq!(who.status, 200);
    assert!(String::from_utf8_lossy(&who.body).contains("\"ingest\""));
    // Every read endpoint, and every change to a segment: 403.
    let seg = format!("/api/segments/{id}");
    let reads = [
        "/api/segments".to_string(),
        "/api/segments?officer=MET-7".into(),
        seg.clone(),
        format!("{seg}/track.geojson"),
        format!("{seg}/video-url"),
        format!("{seg}/video"),
        "/api/stats".into(),
        "/metrics".into(),
        "/api/latest".into(),
        "/api/config".into(),
        "/api/uploads".into(),
    ];
    for path in &reads {
        for t in [&a, &b] {
            let r = t.send("GET", path, &[], b"");
            assert_eq!(r.status, 403, "GET {path}: {r:?}");
        }
        // The same requests are not refused for a read token (the matrix is about the role).
        let r = ro.send("GET", path, &[], b"");
        assert_ne!(r.status, 403, "read token, GET {path}: {r:?}");
    }
    for change in ["hold", "release", "category", "tags"] {
        let r = a.send(
            "POST",
            &format!("{seg}/{change}"),
            &[("Content-Type", "application/json".into())],
            br#"{"case":"C-1","category":"x","add":["t"]}"#,
        );
        assert_eq!(r.status, 403, "POST {change}: {r:?}");
    }
    // Its own session: create, continue, HEAD, terminate.
    let meta = std_meta("AX-A2");
    let c = a.create(100_000, &as_refs(&meta));
    assert_eq!(c.status, 201, "{c:?}");
    let mine = c.h("location").unwrap().to_string();
    assert_eq!(a.patch(&mine, 0, &[5u8; 40_000]).status, 204);
    assert_eq!(a.offset(&mine), 40_000);
    // Another dock's token: refused on it, and nothing changes.
    let before = store.uploads();
    assert_eq!(b.head(&mine).status, 403);
    assert_eq!(b.patch(&mine, 40_000, &[6u8; 10]).status, 403);
    assert_eq!(b.send("DELETE", &mine, &[], b"").status, 403);
    assert_eq!(store.uploads(), before);
    // A read token may not upload; station staff (write) may see any session.
    assert_eq!(ro.create(10, &as_refs(&meta)).status, 403);
    assert_eq!(w.offset(&mine), 40_000);
    assert_eq!(a.send("DELETE", &mine, &[], b"").status, 204);
    assert_eq!(a.head(&mine).status, 404);
    // The audit log names the dock as the creator of its upload.
    let entries = store.audit_entries(None, None).unwrap();
    assert!(entries
        .iter()
        .any(|e| e.action == "upload-create" && e.actor == "dock-a"));
    assert!(!entries
        .iter()
        .any(|e| e.actor == "dock-a" && footage::AuditAction::parse(&e.action).is_access()));
    srv.stop().unwrap();
}

/// A Python with the `tuspy` client: `FOOTAGE_TUS_PYTHON`, else the virtualenv
/// scripts/test.sh makes (`<target>/test-venv`), else `python3` if it has the package.
fn tus_python() -> Option<std::path::PathBuf> {
    let target = common::skip_list()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let candidates = [
        std::env::var_os("FOOTAGE_TUS_PYTHON").map(std::path::PathBuf::from),
        Some(target.join("test-venv/bin/python")),
        Some("python3".into()),
    ];
    candidates.into_iter().flatten().find(|py| {
        Command::new(py)
            .args(["-c", "import tusclient.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// An off-the-shelf tus client (tuspy, with `upload_checksum=True`: a sha1 per request) uploads
/// a recording in several requests, stops half-way, and a second uploader resumes it from HEAD;
/// the segment stored has the file's SHA-256 and the dock's ingest token as its creator.
#[test]
fn tuspy_uploads_with_checksums_and_resumes() {
    let Some(py) = tus_python() else {
        common::skip(
            "tuspy_uploads_with_checksums_and_resumes",
            "no Python with the tuspy package (scripts/test.sh installs it in target/test-venv)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let token =
        server::tokens::add_with_role(store.root(), "dock-py", server::tokens::Role::Ingest)
            .unwrap();
    let srv = server::spawn(store.clone(), local_opts()).unwrap();
    let data = random_bytes(462, 2_500_000);
    let clip = dir.path().join("clip.bin");
    std::fs::write(&clip, &data).unwrap();
    let script = r#"
import json, sys
from tusclient import client
url, token, path, start, end = sys.argv[1:6]
c = client.TusClient(url, headers={"Authorization": "Bearer " + token})
meta = {"officer": "MET-9", "device": "AX-PY", "start": start, "end": end, "tag": "tuspy"}
u = c.uploader(path, chunk_size=700000, metadata=meta, upload_checksum=True)
u.upload(stop_at=1400000)
half = u.offset
# A new uploader (as after a restart of the dock): it asks HEAD for the offset.
v = c.uploader(path, url=u.url, chunk_size=700000, upload_checksum=True)
resumed_at = v.offset
v.upload()
h = v.request.response_headers
print(json.dumps({"half": half, "resumed_at": resumed_at, "offset": v.offset,
                  "segment": h.get("footage-segment"), "sha256": h.get("footage-sha256")}))
"#;
    let out = common::output(
        Command::new(&py)
            .arg("-c")
            .arg(script)
            .arg(format!("http://{}/api/uploads", srv.addr()))
            .arg(&token)
            .arg(&clip)
            .arg(start_text())
            .arg(footage::input::time::format_time(T0 + 60_000_000)),
    );
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["half"], 1_400_000, "{v}");
    assert_eq!(v["resumed_at"], 1_400_000, "{v}");
    assert_eq!(v["offset"], data.len() as u64, "{v}");
    assert_eq!(v["sha256"], hex(&Sha256::digest(&data)), "{v}");
    let id: u64 = v["segment"].as_str().unwrap().parse().unwrap();
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    let entries = store.audit_entries(None, None).unwrap();
    assert!(entries
        .iter()
        .any(|e| e.action == "upload-complete" && e.actor == "dock-py"));
    srv.stop().unwrap();
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after tuspy");
}

/// A crash between an upload's commit record and its completed frame (crash points
/// `ingest.commit_durable`: before the `ingest` audit entry, and `upload.committed`: after
/// it): the completing PATCH's answer is lost; after the restart HEAD finishes the completion
/// and names the segment with `Footage-Duplicate: false` (it is the dock's own segment, not a
/// duplicate of itself), the audit log has its `ingest` entry, and the same bytes sent again
/// by the same device are then a duplicate of it.
#[test]
fn a_crash_between_the_commit_record_and_the_completed_frame_is_not_a_duplicate() {
    for point in ["ingest.commit_durable", "upload.committed"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let out = common::output(
            Command::new(env!("CARGO_BIN_EXE_footage"))
                .arg("--store")
                .arg(&root)
                .arg("init"),
        );
        assert!(out.status.success(), "{out:?}");
        let data = random_bytes(463, 1_200_000);
        let meta = std_meta("AX-DUP");
        let mut s = serve_env(&root, &[("FOOTAGE_FAILPOINT", point)]);
        let c = s.tus.create(data.len(), &as_refs(&meta));
        assert_eq!(c.status, 201, "{point}: {c:?}");
        let loc = c.h("location").unwrap().to_string();
        let mut sock = s
            .tus
            .start("PATCH", &loc, &patch_headers(0), Some(data.len()));
        sock.write_all(&data).unwrap();
        let mut lost = Vec::new();
        let _ = sock.read_to_end(&mut lost);
        let status = s.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGABRT),
            "{point}: the service did not crash there: {status:?}, answer {:?}",
            String::from_utf8_lossy(&lost)
        );
        drop(s);
        let s = serve(&root);
        let h = s.tus.head(&loc);
        assert_eq!(h.status, 200, "{point}: {h:?}");
        assert_eq!(h.h("upload-offset"), Some(data.len().to_string().as_str()));
        assert_eq!(h.h("footage-duplicate"), Some("false"), "{point}: {h:?}");
        assert_eq!(
            h.h("footage-sha256"),
            Some(hex(&Sha256::digest(&data)).as_str())
        );
        let id: u64 = h.h("footage-segment").unwrap().parse().unwrap();
        // Asked again, and after the completed frame: the same answer; no more bytes taken.
        let again = s.tus.head(&loc);
        assert_eq!(again.h("footage-segment"), h.h("footage-segment"));
        assert_eq!(again.h("footage-duplicate"), Some("false"));
        assert_eq!(s.tus.patch(&loc, data.len() as u64, b"").status, 409);
        // The same recording sent again by the same device is a duplicate of it.
        let r = s.tus.upload(&data, &as_refs(&meta));
        assert_eq!(r.status, 204, "{r:?}");
        assert_eq!(r.h("footage-duplicate"), Some("true"));
        assert_eq!(r.h("footage-segment"), Some(id.to_string().as_str()));
        drop(s);
        let store = footage::Store::open(&root).unwrap();
        assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
        assert_eq!(store.len(), 1);
        let ingests: Vec<_> = store
            .audit_entries(Some(id), None)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "ingest")
            .collect();
        assert!(
            ingests.iter().any(|e| e.details["duplicate"] == false),
            "{point}: {ingests:?}"
        );
        common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), point);
    }
}
