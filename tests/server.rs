//! `footage serve` in-process: the HTTP API against a temp store, compared with the library
//! (search = Store::find, info, GeoJSON, video bytes), the token rules, and hostile input,
//! after which the store must still verify.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{meta, open_small, random_bytes, T0};
use footage::input::time::format_time;
use footage::server::{self, RunningServer, ServerOptions};
use footage::{GpsFix, Query, Store};
use serde_json::Value;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    server: RunningServer,
    /// (id, bytes) of each segment.
    segs: Vec<(u64, Vec<u8>)>,
}

/// A fake MP4: an `ftyp` box, then random bytes (spans several 64 KiB chunks).
fn fake_mp4(seed: u64, len: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    v.extend(random_bytes(seed, len - v.len()));
    v
}

fn track(start: i64, lat: f64, lon: f64, n: i64) -> Vec<GpsFix> {
    (0..n)
        .map(|i| GpsFix::from_degrees(start + i * 5_000_000, lat + i as f64 * 0.0002, lon).unwrap())
        .collect()
}

fn fixture_with(opts: ServerOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    let mut segs = Vec::new();
    let plan: Vec<(footage::SegmentMeta, Vec<u8>)> = vec![
        (
            footage::SegmentMeta {
                gps: track(T0, 51.5075, -0.1247, 12),
                ..meta("MET-1", "CAM-1", T0)
            },
            fake_mp4(1, 300_000),
        ),
        (
            footage::SegmentMeta {
                gps: track(T0 + 600_000_000, 51.4613, -0.1156, 12),
                categories: vec!["evidential".into()],
                ..meta("MET-2", "CAM-2", T0 + 600_000_000)
            },
            random_bytes(2, 100_000),
        ),
        (
            footage::SegmentMeta {
                gps: track(T0 + 1_200_000_000, 51.5079, -0.1250, 3),
                tags: vec!["arrest".into(), "test".into()],
                cases: vec!["C-1".into()],
                ..meta("MET-1", "CAM-1", T0 + 1_200_000_000)
            },
            fake_mp4(3, 70_000),
        ),
        (
            footage::SegmentMeta {
                gps: vec![],
                ..meta("MET-3", "CAM-3", T0 + 1_800_000_000)
            },
            random_bytes(4, 10),
        ),
    ];
    for (m, bytes) in plan {
        let c = store.ingest_bytes(m, &bytes).unwrap();
        segs.push((c.id, bytes));
    }
    let server = server::spawn(store.clone(), opts).unwrap();
    Fixture {
        _dir: dir,
        store,
        server,
        segs,
    }
}

fn local_opts() -> ServerOptions {
    ServerOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        local_actor: "tester".into(),
        ..ServerOptions::default()
    }
}

fn fixture() -> Fixture {
    fixture_with(local_opts())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

struct Resp {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body {:?} is not JSON: {e}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the status and that the body is a JSON error.
    fn is_error(&self, status: u16) -> &Resp {
        assert_eq!(
            self.status,
            status,
            "body {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(self.json()["error"].is_string(), "{:?}", self.json());
        self
    }
}

fn finish(r: ureq::http::Response<ureq::Body>) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    finish(req.call().unwrap())
}

fn head(url: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = agent().head(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    finish(req.call().unwrap())
}

fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut req = agent().post(url).header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    finish(req.send(body).unwrap())
}

/// Sends raw bytes, returns the raw response (until the server closes or 5 s pass).
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The JSON `footage find` prints for a query, from the library.
fn expected_lines(store: &Store, q: &Query) -> (Vec<Value>, Option<String>) {
    let page = store.find(q).unwrap();
    let lines = page
        .results
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(store.info(r.id).unwrap()).unwrap();
            if q.area.is_some() {
                v["hits"] = r
                    .hits
                    .iter()
                    .map(|h| serde_json::json!({"from": format_time(h.from_us), "to": format_time(h.to_us)}))
                    .collect();
            }
            v
        })
        .collect();
    (lines, page.next)
}

#[test]
fn search_matches_store_find() {
    let f = fixture();
    let url = f.server.url();
    let t = |us: i64| format_time(us);
    let cases: Vec<(String, Query)> = vec![
        (String::new(), Query::new()),
        ("officer=MET-1".into(), Query::new().officer("MET-1")),
        (
            "officer=MET-1&officer=MET-2".into(),
            Query::new().officer("MET-1").officer("MET-2"),
        ),
        ("device=CAM-2".into(), Query::new().device("CAM-2")),
        (
            format!("from={}&to={}", t(T0 + 500_000_000), t(T0 + 1_300_000_000)),
            Query::new().from(T0 + 500_000_000).to(T0 + 1_300_000_000),
        ),
        (
            "near=51.5080,-0.1247&radius=100".into(),
            Query::new().near(51.5080, -0.1247, 100.0),
        ),
        (
            "bbox=51.45,-0.13,51.47,-0.11".into(),
            Query::new().bbox(51.45, -0.13, 51.47, -0.11),
        ),
        ("tag=arrest".into(), Query::new().tag("arrest")),
        ("case=C-1".into(), Query::new().case("C-1")),
        (
            "category=evidential".into(),
            Query::new().category("evidential"),
        ),
        ("officer=NOBODY".into(), Query::new().officer("NOBODY")),
    ];
    for (qs, q) in cases {
        let r = get(&format!("{url}/api/segments?{qs}"), &[]);
        assert_eq!(r.status, 200, "{qs}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let (lines, next) = expected_lines(&f.store, &q.clone().limit(100));
        let got = r.json();
        assert_eq!(got["segments"], Value::Array(lines), "{qs}");
        assert_eq!(got["next"], serde_json::to_value(next).unwrap(), "{qs}");
    }
    // Paging with limit and cursor walks every result once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let qs = match &cursor {
            Some(c) => format!("limit=1&cursor={c}"),
            None => "limit=1".into(),
        };
        let page = get(&format!("{url}/api/segments?{qs}"), &[]).json();
        for s in page["segments"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().parse::<u64>().unwrap());
        }
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let all: Vec<u64> = f.segs.iter().map(|s| s.0).collect();
    assert_eq!(seen, all);
    // Bad parameters are 400 with a JSON error.
    for bad in [
        "near=51.5,-0.12",
        "radius=5",
        "from=yesterday",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "near=95,0&radius=5",
        "limit=0",
        "limit=99999999999999999999999",
        "cursor=nonsense",
        "officer=a%20b",
        "bogus=1",
        "near=%ZZ",
    ] {
        get(&format!("{url}/api/segments?{bad}"), &[]).is_error(400);
    }
}

#[test]
fn info_track_stats_health() {
    let f = fixture();
    let url = f.server.url();
    let (id, _) = f.segs[0];
    let r = get(&format!("{url}/api/segments/{id}"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::to_value(f.store.info(id).unwrap()).unwrap()
    );
    let g = get(&format!("{url}/api/segments/{id}/track.geojson"), &[]);
    assert_eq!(g.status, 200);
    assert_eq!(g.header("content-type"), Some("application/geo+json"));
    let g = g.json();
    assert_eq!(g["type"], "Feature");
    assert_eq!(g["geometry"]["type"], "LineString");
    let fixes = f.store.track(id).unwrap();
    assert_eq!(
        g["geometry"]["coordinates"].as_array().unwrap().len(),
        fixes.len()
    );
    assert_eq!(g["properties"]["times"][0], format_time(fixes[0].time_us));
    assert_eq!(
        g["geometry"]["coordinates"][0][0].as_f64().unwrap(),
        fixes[0].lon()
    );
    get(&format!("{url}/api/segments/999/track.geojson"), &[]).is_error(404);
    get(&format!("{url}/api/segments/999"), &[]).is_error(404);
    for bad in ["abc", "0", "-1", "1.5", "%20", "99999999999999999999999"] {
        get(&format!("{url}/api/segments/{bad}"), &[]).is_error(400);
    }
    let s = get(&format!("{url}/api/stats"), &[]).json();
    assert_eq!(s["segments"], 4);
    assert_eq!(get(&format!("{url}/healthz"), &[]).json()["ok"], true);
    let w = get(&format!("{url}/api/whoami"), &[]).json();
    assert_eq!(w["name"], "tester");
    assert_eq!(w["read_only"], false);
    // The page and its assets are bundled.
    let page = get(&format!("{url}/"), &[]);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<script src=\"/app.js\">"));
    assert!(page.header("content-security-policy").is_some());
    for (asset, ctype) in [("/app.js", "text/javascript"), ("/style.css", "text/css")] {
        let a = get(&format!("{url}{asset}"), &[]);
        assert_eq!(a.status, 200);
        assert!(a.header("content-type").unwrap().starts_with(ctype));
    }
    get(&format!("{url}/nope"), &[]).is_error(404);
    let m = finish(
        agent()
            .delete(&format!("{url}/api/segments/1"))
            .call()
            .unwrap(),
    );
    m.is_error(405);
}

#[test]
fn video_whole_ranges_head_conditional() {
    let f = fixture();
    let url = f.server.url();
    let (id, bytes) = &f.segs[0];
    let len = bytes.len();
    let v = format!("{url}/api/segments/{id}/video");
    let whole = get(&v, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, *bytes);
    assert_eq!(whole.header("content-type"), Some("video/mp4"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.header("content-length"), Some(&*len.to_string()));
    let etag = format!("\"{}\"", f.store.info(*id).unwrap().sha256_hex());
    assert_eq!(whole.header("etag"), Some(&*etag));
    assert_eq!(
        whole.header("cross-origin-resource-policy"),
        Some("same-origin"),
        "no other site may embed the video"
    );
    // Not an MP4: octet-stream.
    let (id2, bytes2) = &f.segs[1];
    let other = get(&format!("{url}/api/segments/{id2}/video"), &[]);
    assert_eq!(other.body, *bytes2);
    assert_eq!(
        other.header("content-type"),
        Some("application/octet-stream")
    );
    // Ranges, including ones across 64 KiB chunk boundaries.
    for (range, from, to) in [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=65500-131100", 65500, 131100),
        ("bytes=-500", len - 500, len - 1),
        ("bytes=299000-", 299000, len - 1),
        ("bytes=250000-99999999", 250000, len - 1),
    ] {
        let r = get(&v, &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(&*format!("bytes {from}-{to}/{len}")),
            "{range}"
        );
        assert_eq!(r.body, bytes[from..=to], "{range}");
        assert_eq!(
            r.header("content-length"),
            Some(&*(to + 1 - from).to_string())
        );
    }
    // HEAD: the headers of a GET, no body.
    let h = head(&v, &[]);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(h.header("content-length"), Some(&*len.to_string()));
    assert_eq!(h.header("content-type"), Some("video/mp4"));
    let h = head(&v, &[("Range", "bytes=10-19")]);
    assert_eq!(h.status, 206);
    assert_eq!(h.header("content-length"), Some("10"));
    // Unsatisfiable, malformed and multi-ranges: 416 with bytes */len.
    for bad in [
        "bytes=999999999999-",
        "bytes=300000-",
        "bytes=5-1",
        "garbage",
        "bytes=",
        "bytes=0-1,5-6",
        "bytes=-0",
        "bytes=99999999999999999999999999999999999999999999-",
        "bytes=1-2-3",
    ] {
        let r = get(&v, &[("Range", bad)]);
        r.is_error(416);
        assert_eq!(
            r.header("content-range"),
            Some(&*format!("bytes */{len}")),
            "{bad}"
        );
    }
    // Conditional requests.
    let r = get(&v, &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(&*etag));
    let r = get(&v, &[("If-None-Match", "\"other\"")]);
    assert_eq!(r.status, 200);
    let r = get(&v, &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")]);
    assert_eq!(r.status, 200, "a stale If-Range gets the whole body");
    assert_eq!(r.body.len(), len);
    let r = get(&v, &[("Range", "bytes=0-9"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    // Unknown and bad ids.
    get(&format!("{url}/api/segments/999/video"), &[]).is_error(404);
    get(&format!("{url}/api/segments/x/video"), &[]).is_error(400);
    // A ticket URL without tokens is the plain path.
    let u = get(&format!("{url}/api/segments/{id}/video-url"), &[]).json();
    assert_eq!(u["url"], format!("/api/segments/{id}/video"));
}

#[test]
fn changes_through_the_api() {
    let f = fixture();
    let url = f.server.url();
    let (id, _) = f.segs[1];
    let p = |what: &str, body: &str| post(&format!("{url}/api/segments/{id}/{what}"), &[], body);
    let r = p("hold", r#"{"case":"OP-7"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["holds"], serde_json::json!(["OP-7"]));
    assert_eq!(
        r.json(),
        serde_json::to_value(f.store.info(id).unwrap()).unwrap()
    );
    p("release", r#"{"case":"OP-8"}"#).is_error(400);
    let r = p("release", r#"{"case":"OP-7"}"#);
    assert_eq!(r.json()["holds"], serde_json::json!([]));
    let r = p("category", r#"{"category":"traffic"}"#);
    assert_eq!(
        r.json()["categories"],
        serde_json::json!(["evidential", "traffic"])
    );
    let r = p("category", r#"{"category":"evidential","remove":true}"#);
    assert_eq!(r.json()["categories"], serde_json::json!(["traffic"]));
    let r = p("tags", r#"{"tag":"cctv"}"#);
    assert_eq!(r.json()["tags"], serde_json::json!(["cctv", "test"]));
    let r = p("tags", r#"{"tag":"cctv","remove":true}"#);
    assert_eq!(r.json()["tags"], serde_json::json!(["test"]));
    // Found by the new label.
    let s = get(&format!("{url}/api/segments?category=traffic"), &[]).json();
    assert_eq!(s["segments"][0]["id"], id.to_string());
    // Bad bodies change nothing.
    let before = f.store.info(id).unwrap();
    for (what, body, status) in [
        ("hold", "{", 400),
        ("hold", "", 400),
        ("hold", "[]", 400),
        ("hold", r#"{"case":"a b"}"#, 400),
        ("hold", r#"{"case":""}"#, 400),
        ("hold", r#"{"case":"OP-7","extra":1}"#, 400),
        ("hold", r#"{"cases":"OP-7"}"#, 400),
        ("category", r#"{"category":5}"#, 400),
        ("tags", r#"{"tag":"x","remove":"yes"}"#, 400),
        ("hold", &format!("{{\"case\":\"{}\"}}", "x".repeat(65)), 400),
    ] {
        p(what, body).is_error(status);
    }
    // Not JSON by content type.
    let r = finish(
        agent()
            .post(&format!("{url}/api/segments/{id}/hold"))
            .header("Content-Type", "text/plain")
            .send(r#"{"case":"OP-9"}"#)
            .unwrap(),
    );
    r.is_error(415);
    // A change from another origin (CSRF) is refused.
    post(
        &format!("{url}/api/segments/{id}/hold"),
        &[("Origin", "http://evil.example")],
        r#"{"case":"OP-9"}"#,
    )
    .is_error(403);
    post(
        &format!("{url}/api/segments/999/hold"),
        &[],
        r#"{"case":"OP-9"}"#,
    )
    .is_error(404);
    post(
        &format!("{url}/api/segments/abc/hold"),
        &[],
        r#"{"case":"OP-9"}"#,
    )
    .is_error(400);
    assert_eq!(f.store.info(id).unwrap(), before);
}

#[test]
fn tokens_gate_every_request() {
    let f = fixture();
    let url = f.server.url();
    let root = f.store.root().to_path_buf();
    let (id, _) = f.segs[0];
    // Tokens added while the server runs take effect at the next request.
    let rw = server::tokens::add(&root, "sgt.jones", false).unwrap();
    let ro = server::tokens::add(&root, "viewer", true).unwrap();
    let auth = |t: &str| format!("Bearer {t}");
    let info = format!("{url}/api/segments/{id}");
    let r = get(&info, &[]);
    r.is_error(401);
    assert!(r.header("www-authenticate").is_some());
    get(&info, &[("Authorization", "Bearer ftg_wrong")]).is_error(401);
    get(&info, &[("Authorization", &rw[..rw.len() - 1])]).is_error(401);
    get(&info, &[("Authorization", "Basic Zm9vOmJhcg==")]).is_error(401);
    get(&format!("{url}/api/segments"), &[]).is_error(401);
    get(&format!("{url}/api/segments/{id}/video"), &[]).is_error(401);
    get(&format!("{url}/api/stats"), &[]).is_error(401);
    // Unknown ids do not leak existence before authentication.
    get(&format!("{url}/api/segments/999"), &[]).is_error(401);
    assert_eq!(get(&info, &[("Authorization", &auth(&ro))]).status, 200);
    assert_eq!(get(&info, &[("Authorization", &auth(&rw))]).status, 200);
    // Health and the static page need no token.
    assert_eq!(get(&format!("{url}/healthz"), &[]).status, 200);
    assert_eq!(get(&format!("{url}/"), &[]).status, 200);
    // Who am I.
    let w = get(
        &format!("{url}/api/whoami"),
        &[("Authorization", &auth(&ro))],
    )
    .json();
    assert_eq!(w["name"], "viewer");
    assert_eq!(w["read_only"], true);
    // Read-only tokens cannot change anything; read-write ones can, as themselves.
    let hold = format!("{url}/api/segments/{id}/hold");
    post(
        &hold,
        &[("Authorization", &auth(&ro))],
        r#"{"case":"OP-1"}"#,
    )
    .is_error(403);
    post(&hold, &[], r#"{"case":"OP-1"}"#).is_error(401);
    assert!(f.store.info(id).unwrap().holds.is_empty());
    let r = post(
        &hold,
        &[("Authorization", &auth(&rw))],
        r#"{"case":"OP-1"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["holds"], serde_json::json!(["OP-1"]));
    // Video tickets: for <video>, which cannot send headers.
    let t = get(
        &format!("{url}/api/segments/{id}/video-url"),
        &[("Authorization", &auth(&ro))],
    )
    .json();
    let ticket_url = format!("{url}{}", t["url"].as_str().unwrap());
    assert!(ticket_url.contains("ticket="));
    let r = get(&ticket_url, &[("Range", "bytes=0-9")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, f.segs[0].1[..10]);
    // A ticket works for its own video only, and only for GET.
    let (id2, _) = f.segs[1];
    let other = ticket_url.replace(&format!("/segments/{id}/"), &format!("/segments/{id2}/"));
    get(&other, &[]).is_error(401);
    let query = ticket_url.split_once('?').unwrap().1;
    get(&format!("{url}/api/segments/{id}?{query}"), &[]).is_error(401);
    get(
        &format!("{url}/api/segments/{id}/video?ticket=nonsense"),
        &[],
    )
    .is_error(401);
    // Removing a token revokes it and its tickets at once.
    server::tokens::remove(&root, "viewer").unwrap();
    get(&info, &[("Authorization", &auth(&ro))]).is_error(401);
    get(&ticket_url, &[]).is_error(401);
    assert_eq!(get(&info, &[("Authorization", &auth(&rw))]).status, 200);
    // A damaged tokens file shuts everyone out rather than letting everyone in.
    std::fs::write(root.join("tokens.json"), "{garbage").unwrap();
    get(&info, &[("Authorization", &auth(&rw))]).is_error(503);
    get(&info, &[]).is_error(503);
    assert_eq!(get(&format!("{url}/healthz"), &[]).status, 200);
}

#[test]
fn without_tokens_only_loopback() {
    let f = fixture();
    // Refused up front on a non-loopback address when there is no token.
    let err = server::spawn(
        f.store.clone(),
        ServerOptions {
            addr: "0.0.0.0:0".parse().unwrap(),
            ..ServerOptions::default()
        },
    )
    .err()
    .expect("must refuse");
    assert!(err.to_string().contains("footage token add"), "{err}");
    // DNS rebinding: a foreign Host name is refused without tokens.
    let addr = f.server.addr();
    let resp = raw(
        addr,
        b"GET /api/segments HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    let resp = raw(
        addr,
        b"GET /api/segments HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[test]
fn hostile_input_leaves_the_store_intact() {
    let f = fixture_with(ServerOptions {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(1),
        ..local_opts()
    });
    let url = f.server.url();
    let addr = f.server.addr();
    let before: Vec<_> = f.segs.iter().map(|s| f.store.info(s.0).unwrap()).collect();
    // Traversal: encoded slashes stay inside the id, which is not a number.
    get(&format!("{url}/api/segments/..%2F..%2Fetc%2Fpasswd"), &[]).is_error(400);
    get(
        &format!("{url}/api/segments/..%2F..%2Fetc%2Fpasswd/video"),
        &[],
    )
    .is_error(400);
    get(&format!("{url}/api/segments/1%00/video"), &[]).is_error(400);
    for path in [
        "/../../etc/passwd",
        "/api/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/app.js/../../etc/passwd",
    ] {
        let resp = raw(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(!resp.starts_with("HTTP/1.1 200"), "{path}: {resp}");
        assert!(!resp.contains("root:"), "{path}");
    }
    // A 10 MB body is refused by its Content-Length before it is read.
    let resp = raw(
        addr,
        b"POST /api/segments/1/hold HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    // ... and a chunked body that grows past the limit is cut off.
    let mut req = b"POST /api/segments/1/hold HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..20 {
        req.extend_from_slice(format!("{:x}\r\n{}\r\n", 8192, "a".repeat(8192)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = raw(addr, &req);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    // Through a normal client too (the server answers before reading the rest).
    let big = format!("{{\"case\":\"{}\"}}", "x".repeat(10 << 20));
    let r = agent()
        .post(&format!("{url}/api/segments/1/hold"))
        .header("Content-Type", "application/json")
        .send(&big[..]);
    if let Ok(r) = r {
        finish(r).is_error(413);
    }
    // Garbage that is not HTTP, and huge headers.
    let resp = raw(
        addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    );
    assert!(!resp.starts_with("HTTP/1.1 2"), "{resp}");
    let huge = format!(
        "GET /api/segments HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let resp = raw(addr, huge.as_bytes());
    assert!(
        !resp.starts_with("HTTP/1.1 2"),
        "{}",
        &resp[..resp.len().min(200)]
    );
    let long_query = format!("{url}/api/segments?officer={}", "A".repeat(70));
    get(&long_query, &[]).is_error(400);
    // A slow client that never finishes its request head is cut off.
    let t = std::time::Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/segments HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "slow client held for {:?}",
        t.elapsed()
    );
    // A client that asks for a video and stops reading is dropped after the idle timeout
    // (the video is larger than what the socket buffers can hold).
    let big = random_bytes(9, 24 << 20);
    let big_id = f
        .store
        .ingest_bytes(meta("MET-9", "CAM-9", T0), &big)
        .unwrap()
        .id;
    let t = std::time::Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        format!("GET /api/segments/{big_id}/video HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = 0usize;
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(
        got < big.len(),
        "the whole video was sent to a stalled client"
    );
    assert!(t.elapsed() < Duration::from_secs(14));
    // The server still works, and the store is unchanged and intact.
    assert_eq!(get(&format!("{url}/healthz"), &[]).status, 200);
    let after: Vec<_> = f.segs.iter().map(|s| f.store.info(s.0).unwrap()).collect();
    assert_eq!(before, after);
    let report = f.store.verify(None, |_| {}).unwrap();
    common::assert_verify_clean(&report, "after the server");
    assert_eq!(report.checked, f.segs.len() + 1);
}

#[test]
fn cli_token_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let footage = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(&store_dir)
            .args(args)
            .output()
            .unwrap()
    };
    // Tokens need a store.
    let out = footage(&["token", "add", "a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store at"));
    assert!(footage(&["init"]).status.success());
    // Without tokens, a non-loopback address is refused with a clear error.
    let out = footage(&["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("footage token add"), "{err}");
    let out = footage(&["token", "add", "sgt.jones"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "sgt.jones");
    let token = v["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ftg_"));
    assert!(footage(&["token", "add", "viewer", "--read-only"])
        .status
        .success());
    assert_eq!(footage(&["token", "add", "viewer"]).status.code(), Some(1));
    assert_eq!(
        footage(&["token", "add", "bad name"]).status.code(),
        Some(2)
    );
    let out = footage(&["token", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert_eq!(list.lines().count(), 2);
    assert!(list.contains("\"read_only\":true") && !list.contains(&token[4..]));
    let file = std::fs::read_to_string(store_dir.join("tokens.json")).unwrap();
    assert!(!file.contains(&token[4..]));
    assert!(footage(&["token", "remove", "viewer"]).status.success());
    assert_eq!(
        footage(&["token", "remove", "viewer"]).status.code(),
        Some(1)
    );

    // footage serve on a free port: prints where it listens, answers, stops on SIGTERM.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
        .arg("--store")
        .arg(&store_dir)
        .args(["serve", "--addr", "127.0.0.1:0", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let url = v["listening"].as_str().unwrap().to_string();
    assert_eq!(v["tokens"], 1);
    get(&format!("{url}/api/stats"), &[]).is_error(401);
    let ok = get(
        &format!("{url}/api/stats"),
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(ok.status, 200);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The store was closed cleanly: it opens again.
    assert!(footage(&["stats"]).status.success());
}

#[test]
fn corrupt_chunk_cuts_the_response_short() {
    let f = fixture();
    let url = f.server.url();
    let (id, bytes) = &f.segs[1];
    // Flip one byte of the segment's second 64 KiB chunk in its volume file.
    let needle = &bytes[70_000..70_032];
    let mut flipped = false;
    for vol in common::volume_files(f.store.root()) {
        let mut data = std::fs::read(&vol).unwrap();
        if let Some(at) = data.windows(needle.len()).position(|w| w == needle) {
            data[at + 7] ^= 0xff;
            let mut file = std::fs::OpenOptions::new().write(true).open(&vol).unwrap();
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start((at + 7) as u64)).unwrap();
            file.write_all(&data[at + 7..at + 8]).unwrap();
            file.sync_all().unwrap();
            flipped = true;
            break;
        }
    }
    assert!(flipped);
    let v = format!("{url}/api/segments/{id}/video");
    // The intact first chunk is still served.
    let r = get(&v, &[("Range", "bytes=0-999")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[..1000]);
    // Anything touching the damaged chunk ends early: never wrong bytes.
    for range in [None, Some("bytes=69000-69999")] {
        let mut req = agent().get(&v);
        if let Some(rg) = range {
            req = req.header("Range", rg);
        }
        let body = req.call().and_then(|r| r.into_body().read_to_vec());
        match body {
            Err(_) => {}
            Ok(b) => {
                let want = match range {
                    None => &bytes[..],
                    Some(_) => &bytes[69000..70000],
                };
                assert!(b.len() < want.len(), "a corrupt chunk was served");
                assert_eq!(b[..], want[..b.len()], "wrong bytes served");
            }
        }
    }
    // The server is fine afterwards.
    assert_eq!(get(&format!("{url}/healthz"), &[]).status, 200);
}

#[test]
fn pins_and_restores_through_the_api() {
    let f = fixture();
    let url = f.server.url();
    let root = f._dir.path();
    let cloud = root.join("cloud");
    std::fs::create_dir_all(&cloud).unwrap();
    std::fs::write(
        root.join("policy.toml"),
        format!(
            "[cloud]\nurl = \"file://{}\"\n\n[category.default]\nupload = true\n\
             evict_after = \"1d\"\ndelete_after = \"never\"\n\n[disk]\nhigh_watermark = 1.0\n",
            cloud.display()
        ),
    )
    .unwrap();
    let (id, ref bytes) = f.segs[2]; // linked to case C-1
    let (other, _) = f.segs[0];
    for s in [id, other] {
        f.store.upload(s, "test", &mut |_| {}).unwrap();
        f.store.evict(s, "test").unwrap();
    }
    let p = |path: &str, body: &str| post(&format!("{url}{path}"), &[], body);

    // A pin with an end: the segment's info comes back with it; evicted, it is queued.
    let r = p(
        &format!("/api/segments/{id}/pin"),
        r#"{"until":"2099-01-01T00:00:00Z"}"#,
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["pinned_until"], "2099-01-01T00:00:00Z");
    assert_eq!(
        r.json(),
        serde_json::to_value(f.store.info(id).unwrap()).unwrap()
    );
    let queued: Vec<u64> = f
        .store
        .restore_queue()
        .unwrap()
        .queued
        .iter()
        .map(|q| q.segment)
        .collect();
    assert_eq!(queued, vec![id]);
    // Restore of another evicted segment: queued, 202; asking again queues nothing more.
    let r = p(&format!("/api/segments/{other}/restore"), "{}");
    assert_eq!(r.status, 202, "{:?}", r.json());
    assert_eq!(
        (&r.json()["queued"], &r.json()["waiting"]),
        (&1.into(), &1.into())
    );
    assert_eq!(r.json()["segments"][0]["tier"], "cloud");
    let r = p(&format!("/api/segments/{other}/restore"), "{}");
    assert_eq!(
        (&r.json()["queued"], &r.json()["waiting"]),
        (&0.into(), &1.into())
    );
    // The service's restore job (run here by hand) brings both back.
    let run = f
        .store
        .run_restore_queue(&footage::RunLimits {
            rate: None,
            budget: None,
        })
        .unwrap();
    assert_eq!(run.restored, 2, "{run:?}");
    assert_eq!(f.store.read_range(id, 0, u64::MAX).unwrap(), *bytes);
    let r = p(&format!("/api/segments/{other}/restore"), "{}");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["segments"][0]["tier"], "local+cloud");

    // Cases: pin with no end, unpin.
    let r = p("/api/cases/C-1/pin", "{}");
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["segments"][0]["id"], id.to_string());
    assert_eq!(r.json()["segments"][0]["pinned_until"], "indefinitely");
    let r = p("/api/cases/C-1/unpin", "{}");
    assert_eq!(r.json()["segments"][0]["pinned_until"], Value::Null);
    p(&format!("/api/segments/{id}/unpin"), "{}").is_error(400); // not pinned any more
    p("/api/cases/NO-SUCH-CASE/pin", "{}").is_error(404);
    p("/api/cases/NO-SUCH-CASE/restore", "{}").is_error(404);
    p("/api/segments/999/restore", "{}").is_error(404);
    p("/api/segments/999/pin", "{}").is_error(404);
    // Bad bodies change nothing.
    let before = f.store.info(id).unwrap();
    for body in [
        r#"{"until":"yesterday"}"#,
        r#"{"until":"2001-01-01T00:00:00Z"}"#,
        r#"{"until":5}"#,
        r#"{"for":"ever"}"#,
        "",
        "[]",
    ] {
        p(&format!("/api/segments/{id}/pin"), body).is_error(400);
    }
    p(&format!("/api/segments/{id}/restore"), r#"{"now":true}"#).is_error(400);
    assert_eq!(f.store.info(id).unwrap(), before);
    // The changes carry the caller's name in the audit log.
    let actors: Vec<String> = f
        .store
        .audit_entries(None, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "pin" || e.action == "unpin")
        .map(|e| e.actor)
        .collect();
    assert_eq!(actors, vec!["tester", "tester", "tester"]);
}

#[test]
fn pins_and_restores_need_a_token_that_may_change_segments() {
    let f = fixture();
    let url = f.server.url();
    let root = f.store.root().to_path_buf();
    let (id, _) = f.segs[0];
    let rw = server::tokens::add(&root, "sgt.jones", false).unwrap();
    let ro = server::tokens::add(&root, "viewer", true).unwrap();
    let dock =
        server::tokens::add_with_role(&root, "dock-1", footage::server::tokens::Role::Ingest)
            .unwrap();
    let auth = |t: &str| format!("Bearer {t}");
    for path in [
        format!("/api/segments/{id}/pin"),
        format!("/api/segments/{id}/unpin"),
        format!("/api/segments/{id}/restore"),
        "/api/cases/C-1/pin".to_string(),
        "/api/cases/C-1/restore".to_string(),
    ] {
        let u = format!("{url}{path}");
        post(&u, &[], "{}").is_error(401);
        post(&u, &[("Authorization", &auth(&ro))], "{}").is_error(403);
        post(&u, &[("Authorization", &auth(&dock))], "{}").is_error(403);
    }
    assert_eq!(f.store.info(id).unwrap().pinned_until, None);
    let r = post(
        &format!("{url}/api/segments/{id}/pin"),
        &[("Authorization", &auth(&rw))],
        "{}",
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(
        f.store.info(id).unwrap().pinned_until,
        Some(footage::PinnedUntil::Indefinitely)
    );
}

/// The server keeps segments it opened for video (`server/video/opened.rs`) so that the next
/// range of the same segment does not read its commit record again. A deletion must end that
/// at once, and a compaction that moves the segment's chunks must not leave it reading the old
/// places: every answer stays exact.
#[test]
fn a_segment_opened_for_video_follows_deletion_and_compaction() {
    let f = fixture();
    let url = f.server.url();
    let kept = fake_mp4(10, 150_000);
    let doomed = random_bytes(11, 600_000);
    let k = f
        .store
        .ingest_bytes(meta("MET-4", "CAM-4", T0 + 2_400_000_000), &kept)
        .unwrap()
        .id;
    let d = f
        .store
        .ingest_bytes(meta("MET-4", "CAM-4", T0 + 3_000_000_000), &doomed)
        .unwrap()
        .id;
    // A filler that seals the volume holding both (it is then read through its map).
    f.store
        .ingest_bytes(
            meta("MET-5", "CAM-5", T0 + 3_600_000_000),
            &random_bytes(12, 1_200_000),
        )
        .unwrap();
    let video = |id: u64| format!("{url}/api/segments/{id}/video");
    let check = |id: u64, bytes: &[u8]| {
        for (from, to) in [
            (0, 99),
            (65_000, 140_000),
            (bytes.len() - 10, bytes.len() - 1),
        ] {
            let r = get(&video(id), &[("Range", &format!("bytes={from}-{to}"))]);
            assert_eq!(r.status, 206, "segment {id} bytes {from}-{to}");
            assert_eq!(r.body, bytes[from..=to], "segment {id} bytes {from}-{to}");
        }
        let whole = get(&video(id), &[]);
        assert_eq!(whole.body, bytes, "segment {id}");
    };
    check(k, &kept);
    check(d, &doomed);
    // Its chunks stay as dead bytes for compaction to reclaim.
    f.store.set_punch_holes(false);
    f.store.delete(d, "tester").unwrap();
    get(&video(d), &[]).is_error(404);
    get(&video(d), &[("Range", "bytes=0-99")]).is_error(404);
    let s = f.store.compact(0.0, "tester").unwrap();
    assert!(
        s.segments_moved > 0,
        "the kept segment's chunks moved: {s:?}"
    );
    check(k, &kept);
    assert_eq!(
        get(&video(k), &[]).header("content-type"),
        Some("video/mp4")
    );
}
