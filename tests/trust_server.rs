//! Issue 10, items 6, 10 and 12 (the HTTP server): every request that reveals footage or
//! metadata is audited with what it revealed, token changes are audited with the OS user, a
//! flood of idle sockets from one client does not starve the others, and one user's video
//! tickets never evict another's.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{meta, open_small, random_bytes, T0};
use footage::server::{self, RunningServer, ServerOptions};
use footage::{AuditEntry, GpsFix, Store};
use serde_json::Value;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    server: RunningServer,
    /// (id, len) of each segment.
    segs: Vec<(u64, usize)>,
}

fn fake_mp4(seed: u64, len: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    v.extend(random_bytes(seed, len - v.len()));
    v
}

fn track(start: i64, n: i64) -> Vec<GpsFix> {
    (0..n)
        .map(|i| {
            GpsFix::from_degrees(start + i * 5_000_000, 51.5075 + i as f64 * 0.0002, -0.1247)
                .unwrap()
        })
        .collect()
}

fn opts() -> ServerOptions {
    ServerOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        local_actor: "tester".into(),
        ..ServerOptions::default()
    }
}

/// A store with segments of the given lengths (the first has a 12-fix track) and a server.
fn fixture(lens: &[usize], opts: ServerOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    let mut segs = Vec::new();
    for (i, &len) in lens.iter().enumerate() {
        let start = T0 + i as i64 * 600_000_000;
        let m = footage::SegmentMeta {
            gps: track(start, 12),
            ..meta("MET-1", "CAM-1", start)
        };
        let c = store.ingest_bytes(m, &fake_mp4(i as u64, len)).unwrap();
        segs.push((c.id, len));
    }
    let server = server::spawn(store.clone(), opts).unwrap();
    Fixture {
        _dir: dir,
        store,
        server,
        segs,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn call(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let a = agent();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = a.run(req.body(()).unwrap()).unwrap();
    let status = r.status().as_u16();
    let body = r
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    (status, body)
}

/// Entries recorded after `since` (an index), waiting (bounded) until `pred` holds for one.
fn wait_for(
    store: &Store,
    since: u64,
    what: &str,
    pred: impl Fn(&AuditEntry) -> bool,
) -> Vec<AuditEntry> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let new: Vec<AuditEntry> = store
            .audit_entries(None, None)
            .unwrap()
            .into_iter()
            .filter(|e| e.index >= since)
            .collect();
        if new.iter().any(&pred) {
            return new;
        }
        assert!(
            Instant::now() < deadline,
            "no audit entry {what} appeared; new entries: {:#?}",
            new.iter()
                .map(|e| (&e.actor, &e.action, e.segment, &e.details))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn next_index(store: &Store) -> u64 {
    store.audit_head().0.max(
        store
            .audit_entries(None, None)
            .unwrap()
            .last()
            .map_or(0, |e| e.index + 1),
    )
}

/// The one entry of `action` among `entries`, for `segment`, by `actor`.
fn only<'a>(entries: &'a [AuditEntry], action: &str, actor: &str) -> &'a AuditEntry {
    let found: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| e.action == action && e.actor == actor)
        .collect();
    assert_eq!(found.len(), 1, "entries {action} by {actor}: {entries:#?}");
    found[0]
}

#[test]
fn item06_searches_info_track_and_stats_are_audited() {
    let f = fixture(&[5_000, 5_000, 5_000], opts());
    let root = f.store.root().to_path_buf();
    let token = server::tokens::add(&root, "viewer", true).unwrap();
    let auth = format!("Bearer {token}");
    let url = f.server.url();
    let (id, _) = f.segs[1];

    let since = next_index(&f.store);
    let (s, body) = call(
        "GET",
        &format!("{url}/api/segments?officer=MET-1&limit=2"),
        &[("Authorization", &auth)],
    );
    assert_eq!(s, 200);
    let page: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(page["segments"].as_array().unwrap().len(), 2);
    let new = wait_for(&f.store, since, "query by viewer", |e| {
        e.action == "query" && e.actor == "viewer"
    });
    let q = only(&new, "query", "viewer");
    assert_eq!(q.details["via"], "http");
    assert_eq!(q.details["results"], 2, "{:?}", q.details);
    assert_eq!(
        q.details["query"]["officers"][0], "MET-1",
        "{:?}",
        q.details
    );
    assert_eq!(q.details["query"]["limit"], 2);
    assert_eq!(q.details["next"], true, "{:?}", q.details);

    let since = next_index(&f.store);
    assert_eq!(
        call(
            "GET",
            &format!("{url}/api/segments/{id}"),
            &[("Authorization", &auth)]
        )
        .0,
        200
    );
    let new = wait_for(&f.store, since, "info", |e| e.action == "info");
    let e = only(&new, "info", "viewer");
    assert_eq!(e.segment, Some(id));
    assert_eq!(e.details["via"], "http");

    let since = next_index(&f.store);
    assert_eq!(
        call(
            "GET",
            &format!("{url}/api/segments/{id}/track.geojson"),
            &[("Authorization", &auth)]
        )
        .0,
        200
    );
    let new = wait_for(&f.store, since, "track", |e| e.action == "track");
    let e = only(&new, "track", "viewer");
    assert_eq!(e.segment, Some(id));
    assert_eq!(e.details["fixes"], 12, "{:?}", e.details);

    let since = next_index(&f.store);
    assert_eq!(
        call(
            "GET",
            &format!("{url}/api/stats"),
            &[("Authorization", &auth)]
        )
        .0,
        200
    );
    let new = wait_for(&f.store, since, "stats", |e| e.action == "stats");
    only(&new, "stats", "viewer");
}

#[test]
fn item06_video_requests_are_audited_as_what_they_were() {
    let f = fixture(&[300_000], opts());
    let root = f.store.root().to_path_buf();
    let token = server::tokens::add(&root, "viewer", true).unwrap();
    let auth = format!("Bearer {token}");
    let (id, len) = f.segs[0];
    let video = format!("{}/api/segments/{id}/video", f.server.url());
    let sha = f.store.info(id).unwrap().sha256_hex();

    // A whole GET: one `read` with the bytes sent.
    let since = next_index(&f.store);
    let (s, body) = call("GET", &video, &[("Authorization", &auth)]);
    assert_eq!((s, body.len()), (200, len));
    let new = wait_for(&f.store, since, "read (whole)", |e| e.action == "read");
    let e = only(&new, "read", "viewer");
    assert_eq!(e.segment, Some(id));
    assert_eq!(e.details["method"], "GET");
    assert_eq!(e.details["status"], 200);
    assert_eq!(e.details["bytes_sent"], len as u64, "{:?}", e.details);
    assert_eq!(e.details["complete"], true);
    assert!(e.details["range"].is_null());

    // A range: the range asked and the bytes sent.
    let since = next_index(&f.store);
    let (s, body) = call(
        "GET",
        &video,
        &[("Authorization", &auth), ("Range", "bytes=1000-1099")],
    );
    assert_eq!((s, body.len()), (206, 100));
    let new = wait_for(&f.store, since, "read (range)", |e| e.action == "read");
    let e = only(&new, "read", "viewer");
    assert_eq!(e.details["status"], 206);
    assert_eq!(e.details["range"], "bytes=1000-1099");
    assert_eq!(e.details["bytes_sent"], 100);

    // HEAD, 304 and 416 reveal no footage: recorded as what they were, never as a read.
    let since = next_index(&f.store);
    assert_eq!(call("HEAD", &video, &[("Authorization", &auth)]).0, 200);
    let etag = format!("\"{sha}\"");
    assert_eq!(
        call(
            "GET",
            &video,
            &[("Authorization", &auth), ("If-None-Match", &etag)]
        )
        .0,
        304
    );
    assert_eq!(
        call(
            "GET",
            &video,
            &[("Authorization", &auth), ("Range", "bytes=999999999-")]
        )
        .0,
        416
    );
    let new = wait_for(&f.store, since, "video-range-refused", |e| {
        e.action == "video-range-refused"
    });
    assert!(
        new.iter().all(|e| e.action != "read"),
        "HEAD/304/416 were audited as reads: {new:#?}"
    );
    let h = only(&new, "video-head", "viewer");
    assert_eq!(h.details["status"], 200);
    assert_eq!(h.details["bytes_sent"], 0);
    let n = only(&new, "video-not-modified", "viewer");
    assert_eq!(n.details["status"], 304);
    let r = only(&new, "video-range-refused", "viewer");
    assert_eq!(r.details["status"], 416);
    assert_eq!(r.details["range"], "bytes=999999999-");
    for e in [h, n, r] {
        assert_eq!(e.segment, Some(id));
    }
}

#[test]
fn item06_a_video_cut_off_is_audited_with_the_bytes_sent() {
    // Larger than the socket buffers of both ends, so the client's hang-up cuts it short.
    let len = 24 << 20;
    let f = fixture(&[len], opts());
    let (id, _) = f.segs[0];
    let since = next_index(&f.store);
    let mut s = TcpStream::connect(f.server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /api/segments/{id}/video HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(s);
    let new = wait_for(&f.store, since, "read (cut off)", |e| e.action == "read");
    let e = only(&new, "read", "tester");
    assert_eq!(e.details["complete"], false, "{:?}", e.details);
    let sent = e.details["bytes_sent"].as_u64().unwrap();
    assert!(sent < len as u64, "{:?}", e.details);
    assert_eq!(e.details["status"], 200);
}

fn footage(store: &Path, user: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env("USER", user)
        .env("LOGNAME", user)
        .output()
        .unwrap()
}

fn my_uid() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() as u64
}

#[test]
fn item06_token_changes_are_audited_with_the_os_user() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    assert!(footage(&store_dir, "pc.admin", &["init"]).status.success());
    // No server running: the command records it itself.
    let out = footage(
        &store_dir,
        "pc.admin",
        &["token", "add", "viewer", "--read-only"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = footage(&store_dir, "pc.admin", &["token", "remove", "viewer"]);
    assert!(out.status.success(), "{out:?}");
    let store = Store::open(&store_dir).unwrap();
    let entries = store.audit_entries(None, None).unwrap();
    let add = only(&entries, "token-add", "pc.admin");
    assert_eq!(add.details["name"], "viewer");
    assert_eq!(add.details["read_only"], true);
    assert_eq!(add.details["uid"], my_uid());
    let rm = only(&entries, "token-remove", "pc.admin");
    assert_eq!(rm.details["name"], "viewer");
    assert_eq!(rm.details["uid"], my_uid());

    // While a server holds the store, the server records the change.
    let since = next_index(&store);
    let server = server::spawn(store.clone(), opts()).unwrap();
    let out = footage(&store_dir, "sgt.admin", &["token", "add", "duty"]);
    assert!(out.status.success(), "{out:?}");
    let new = wait_for(&store, since, "token-add by the server", |e| {
        e.action == "token-add"
    });
    let add = only(&new, "token-add", "sgt.admin");
    assert_eq!(add.details["name"], "duty");
    assert_eq!(add.details["read_only"], false);
    server.stop().unwrap();
}

/// Connects from a given loopback source address.
fn connect_from(src: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(format!("{src}:0").parse().unwrap())?;
        let s = sock.connect(to).await?;
        let s = s.into_std()?;
        s.set_nonblocking(false)?;
        Ok(s)
    })
}

#[test]
fn item10_an_idle_socket_flood_does_not_starve_other_clients() {
    const FLOOD: usize = 600;
    // Header and idle timeouts far longer than the probes wait: only admission can help.
    let o = ServerOptions {
        header_timeout: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(300),
        ..opts()
    };
    let cap = o.max_connections_per_client;
    assert!(
        cap * 4 <= o.max_connections,
        "the per-client cap ({cap}) must be well below the global one"
    );
    let f = fixture(&[1_000], o);
    let addr = f.server.addr();
    // One client opens FLOOD idle sockets (bounded; they are closed when the test ends).
    let flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // Others are still answered.
    for i in 0..14 {
        let mut s = connect_from("127.0.0.2", addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let r = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "probe {i} from 127.0.0.2 was not answered during the flood ({r:?}): {text:?}"
        );
    }
    // The flooding client is closed beyond its cap.
    for s in &flood {
        s.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut closed = vec![false; FLOOD];
    loop {
        for (i, mut s) in flood.iter().enumerate() {
            if closed[i] {
                continue;
            }
            let mut b = [0u8; 64];
            match s.read(&mut b) {
                Ok(0) => closed[i] = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => closed[i] = true,
                Ok(_) => {}
            }
        }
        let n = closed.iter().filter(|c| **c).count();
        if n >= FLOOD - cap || Instant::now() > deadline {
            assert_eq!(
                n,
                FLOOD - cap,
                "the server kept {} of one client's {FLOOD} sockets open (cap {cap})",
                FLOOD - n
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(flood);
}

#[test]
fn item12_one_users_tickets_never_evict_anothers() {
    let f = fixture(
        &[1_000],
        ServerOptions {
            max_tickets_per_user: 5,
            ..opts()
        },
    );
    let root = f.store.root().to_path_buf();
    let a = server::tokens::add(&root, "alice", true).unwrap();
    let b = server::tokens::add(&root, "bob", true).unwrap();
    let (id, _) = f.segs[0];
    let url = f.server.url();
    let ticket = |token: &str| -> String {
        let (s, body) = call(
            "GET",
            &format!("{url}/api/segments/{id}/video-url"),
            &[("Authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(s, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        format!("{url}{}", v["url"].as_str().unwrap())
    };
    let alice = ticket(&a);
    let bobs: Vec<String> = (0..12).map(|_| ticket(&b)).collect();
    assert_eq!(
        call("HEAD", &alice, &[]).0,
        200,
        "bob's tickets evicted alice's"
    );
    let works: Vec<bool> = bobs.iter().map(|u| call("HEAD", u, &[]).0 == 200).collect();
    let mut want = vec![false; 7];
    want.extend([true; 5]);
    assert_eq!(works, want, "bob keeps his newest 5 tickets");
}

#[test]
fn item12_issuing_tickets_takes_constant_work_each() {
    // Smaller than the default so that the old quadratic table fails quickly.
    let cap = 500;
    let tickets = server::auth::Tickets::new(cap);
    let sha = "ab".repeat(32);
    let alice = server::Caller::for_tests("alice", true, &sha);
    let bob = server::Caller::for_tests("bob", true, &sha);
    tickets.issue(&alice, "/api/segments/1/video").unwrap();
    let n = 3 * cap as u64;
    for _ in 0..n {
        tickets.issue(&bob, "/api/segments/1/video").unwrap();
    }
    let work = tickets.work();
    assert!(
        work <= 4 * (n + 1),
        "issuing {} tickets touched {work} entries: more than a constant per ticket",
        n + 1
    );
}
