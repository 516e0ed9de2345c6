//! `footage serve` as a station's service (issue 11, part E): `/metrics` in the Prometheus
//! text format and its counters, the service state in `/api/stats` with a scheduled retention
//! run, the SIGTERM drain, readiness notification to systemd, JSON logs, the `[service]` table
//! of footage.toml, and the ingest counters of the store.
//!
//! Every child `footage serve` is killed when its guard drops (a failing test leaves none).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A generous deadline for anything a test waits for.
const DEADLINE: Duration = Duration::from_secs(60);

fn footage(store: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_footage"));
    c.arg("--store")
        .arg(store)
        .args(args)
        .env_remove("FOOTAGE_ACTOR");
    common::output(&mut c)
}

fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A new store under `dir` with one segment per `(seed, len, start)`; returns its path.
fn store_with(dir: &Path, segments: &[(u64, usize, &str)]) -> PathBuf {
    let store = dir.join("store");
    ok(&footage(&store, &["init"]));
    for (i, (seed, len, start)) in segments.iter().enumerate() {
        let file = dir.join(format!("clip{i}.bin"));
        std::fs::write(&file, common::random_bytes(*seed, *len)).unwrap();
        let end = start.replace(":00Z", ":30Z");
        ok(&footage(
            &store,
            &[
                "ingest",
                file.to_str().unwrap(),
                "--officer",
                "MET-001",
                "--device",
                &format!("AX-{i}"),
                "--start",
                start,
                "--end",
                &end,
            ],
        ));
    }
    store
}

/// A child `footage serve`, killed on drop.
struct Serve {
    child: Option<Child>,
    url: String,
    addr: String,
    stderr: PathBuf,
}

impl Serve {
    fn start(store: &Path, global: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Serve {
        let stderr = store.with_extension(format!("stderr-{}", rand::random::<u32>()));
        let mut c = Command::new(env!("CARGO_BIN_EXE_footage"));
        c.args(global)
            .arg("--store")
            .arg(store)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .env_remove("FOOTAGE_ACTOR")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("FOOTAGE_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = common::spawn(&mut c);
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "footage serve did not start: {e}: {line:?}\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            )
        });
        let url = v["listening"].as_str().unwrap().to_string();
        Serve {
            addr: url.trim_start_matches("http://").to_string(),
            url,
            child: Some(child),
            stderr,
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
    }

    /// Waits for the child to exit (after a SIGTERM); returns its exit code.
    fn wait(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let start = Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s.code();
            }
            if start.elapsed() > DEADLINE {
                let _ = c.kill();
                let _ = c.wait();
                panic!("footage serve did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> String {
        self.sigterm();
        assert_eq!(self.wait(), Some(0), "{}", self.log());
        self.log()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GET: (status, content type, body).
fn get(url: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut r = req.call().unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    (status, ctype, body)
}

fn get_json(url: &str) -> Value {
    let (status, _, body) = get(url, None);
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

// ---- A small parser of the Prometheus text format (0.0.4), strict about what we promise.

/// Samples by `name{k="v",...}` (labels sorted), checked against the format's rules.
type Samples = BTreeMap<String, f64>;

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut l: Vec<_> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    l.sort();
    if l.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", l.join(","))
    }
}

/// Parses `name{labels} value` into (name, labels); labels with escapes undone.
fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    let name = &line[..name_end];
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "bad metric name in {line:?}"
    );
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut end = None;
        loop {
            // label name
            let mut lname = String::new();
            while let Some(&(i, c)) = chars.peek() {
                if c == '=' {
                    break;
                }
                if c == '}' && lname.is_empty() {
                    end = Some(i);
                    break;
                }
                lname.push(c);
                chars.next();
            }
            if end.is_some() {
                break;
            }
            assert_eq!(chars.next().map(|x| x.1), Some('='), "{line:?}");
            assert_eq!(chars.next().map(|x| x.1), Some('"'), "{line:?}");
            let mut v = String::new();
            loop {
                match chars.next().map(|x| x.1) {
                    Some('\\') => match chars.next().map(|x| x.1) {
                        Some('n') => v.push('\n'),
                        Some(c @ ('\\' | '"')) => v.push(c),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    Some('"') => break,
                    Some(c) => v.push(c),
                    None => panic!("unterminated label value in {line:?}"),
                }
            }
            labels.push((lname, v));
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    end = Some(i);
                    break;
                }
                other => panic!("bad label list {other:?} in {line:?}"),
            }
        }
        rest = &r[end.unwrap() + 1..];
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value: {line:?}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    (name.to_string(), labels, value)
}

/// Parses an exposition, checking: HELP and TYPE before a family's samples and once each,
/// counters end in `_total`, histogram buckets cumulative ending in `+Inf` equal to `_count`.
fn parse_metrics(text: &str) -> Samples {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeMap<String, ()> = BTreeMap::new();
    let mut out = Samples::new();
    // histogram family + labels without le -> [(le, value)], count
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    let mut seen_samples_of: BTreeMap<String, ()> = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(r) = line.strip_prefix("# HELP ") {
            let name = r.split(' ').next().unwrap().to_string();
            assert!(
                helps.insert(name.clone(), ()).is_none(),
                "HELP twice: {name}"
            );
            assert!(
                !seen_samples_of.contains_key(&name),
                "HELP after samples: {name}"
            );
            continue;
        }
        if let Some(r) = line.strip_prefix("# TYPE ") {
            let mut it = r.split(' ');
            let name = it.next().unwrap().to_string();
            let t = it.next().unwrap().to_string();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t.as_str()),
                "{line}"
            );
            if t == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {name}");
            }
            assert!(
                !seen_samples_of.contains_key(&name),
                "TYPE after samples: {name}"
            );
            assert!(
                types.insert(name.clone(), t).is_none(),
                "TYPE twice: {name}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment line {line:?}");
        let (name, labels, value) = parse_sample(line);
        // The family: the name itself, or a histogram's base name.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|b| types.get(*b).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(&name)
            .to_string();
        assert!(
            types.contains_key(&family),
            "sample before its TYPE: {line}"
        );
        assert!(
            helps.contains_key(&family),
            "sample before its HELP: {line}"
        );
        seen_samples_of.insert(family.clone(), ());
        let lref: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if types[&family] == "histogram" {
            let rest: Vec<(&str, &str)> =
                lref.iter().copied().filter(|(k, _)| *k != "le").collect();
            let series = key(&family, &rest);
            if name.ends_with("_bucket") {
                let le = lref
                    .iter()
                    .find(|(k, _)| *k == "le")
                    .expect("bucket without le")
                    .1;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                buckets.entry(series).or_default().push((le, value));
            } else if name.ends_with("_count") {
                counts.insert(series, value);
            }
        }
        assert!(
            out.insert(key(&name, &lref), value).is_none(),
            "sample twice: {line}"
        );
    }
    for (series, b) in &buckets {
        for w in b.windows(2) {
            assert!(w[0].0 < w[1].0, "{series}: le not increasing");
            assert!(w[0].1 <= w[1].1, "{series}: buckets not cumulative");
        }
        let last = b.last().unwrap();
        assert!(last.0.is_infinite(), "{series}: no +Inf bucket");
        assert_eq!(
            Some(&last.1),
            counts.get(series),
            "{series}: +Inf != _count"
        );
    }
    out
}

fn scrape(url: &str, token: Option<&str>) -> Samples {
    let (status, ctype, body) = get(&format!("{url}/metrics"), token);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    parse_metrics(&String::from_utf8(body).unwrap())
}

fn val(m: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    *m.get(&key(name, labels))
        .unwrap_or_else(|| panic!("no sample {}", key(name, labels)))
}

const SEG_LEN: usize = 300_000;

#[test]
fn metrics_parse_as_prometheus_text_and_count_queries_and_video_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(
        dir.path(),
        &[
            (1, SEG_LEN, "2026-11-20T14:03:00Z"),
            (2, 1000, "2026-11-20T15:03:00Z"),
        ],
    );
    let s = Serve::start(&store, &[], &[], &[]);
    let before = scrape(&s.url, None);
    assert_eq!(val(&before, "footage_store_segments", &[]), 2.0);
    assert_eq!(
        val(&before, "footage_store_bytes", &[]),
        (SEG_LEN + 1000) as f64
    );
    assert!(before
        .keys()
        .any(|k| k.starts_with("footage_data_dir_free_bytes{dir=")));
    assert_eq!(val(&before, "footage_ingest_segments_total", &[]), 0.0);

    get_json(&format!("{}/api/segments?officer=MET-001", s.url));
    get_json(&format!(
        "{}/api/segments?near=51.5,-0.12&radius=100",
        s.url
    ));
    get_json(&format!("{}/api/segments/1", s.url));
    let (st, _, _) = get(&format!("{}/api/segments/1/track.geojson", s.url), None);
    assert_eq!(st, 200);
    let (st, _, video) = get(&format!("{}/api/segments/1/video", s.url), None);
    assert_eq!(st, 200);
    assert_eq!(video, common::random_bytes(1, SEG_LEN));
    let (st, _, _) = get(&format!("{}/api/segments/99", s.url), None);
    assert_eq!(st, 404);

    let after = scrape(&s.url, None);
    let d = |name: &str, labels: &[(&str, &str)]| {
        val(&after, name, labels) - val(&before, name, labels)
    };
    assert_eq!(
        d("footage_queries_total", &[("kind", "search_officer")]),
        1.0
    );
    assert_eq!(d("footage_queries_total", &[("kind", "search_near")]), 1.0);
    assert_eq!(d("footage_queries_total", &[("kind", "info")]), 2.0);
    assert_eq!(d("footage_queries_total", &[("kind", "track")]), 1.0);
    assert_eq!(d("footage_queries_total", &[("kind", "video")]), 1.0);
    assert_eq!(
        d("footage_query_duration_seconds_count", &[("kind", "info")]),
        2.0
    );
    assert_eq!(d("footage_video_bytes_served_total", &[]), SEG_LEN as f64);
    // 6 answers of 2xx (5 + the first scrape), one 404.
    assert_eq!(d("footage_http_responses_total", &[("class", "2xx")]), 6.0);
    assert_eq!(d("footage_http_responses_total", &[("class", "4xx")]), 1.0);
    s.stop();
}

#[test]
fn metrics_need_a_token_when_the_store_has_tokens_and_are_not_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[(3, 1000, "2026-11-20T14:03:00Z")]);
    let out = ok(&footage(
        &store,
        &["token", "add", "prometheus", "--role", "read"],
    ));
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    let audited = |store: &Path| {
        ok(&footage(store, &["audit"]))
            .lines()
            .filter(|l| l.contains("\"via\":\"http\""))
            .count()
    };
    let http_entries = audited(&store);
    let s = Serve::start(&store, &[], &[], &[]);
    let (st, _, _) = get(&format!("{}/metrics", s.url), None);
    assert_eq!(st, 401);
    for _ in 0..3 {
        let m = scrape(&s.url, Some(&token));
        assert_eq!(val(&m, "footage_store_segments", &[]), 1.0);
    }
    s.stop();
    assert_eq!(audited(&store), http_entries, "a scrape was audited");
}

/// A policy that deletes footage with no category one day after it ends.
fn deleting_policy(store: &Path) {
    std::fs::write(
        store.join("policy.toml"),
        r#"
[cloud]
url = "file:///nonexistent-footage-cloud"
[category.default]
upload = false
evict_after = "1d"
delete_after = "1d"
[disk]
high_watermark = 1.0
compact_below_live = 0
"#,
    )
    .unwrap();
}

#[test]
fn api_stats_shows_the_service_and_a_scheduled_retention_run() {
    let dir = tempfile::tempdir().unwrap();
    // Ended in 2025: due for deletion under the policy, by the real clock.
    let store = store_with(dir.path(), &[(4, 5000, "2025-11-20T14:03:00Z")]);
    deleting_policy(&store);
    let s = Serve::start(
        &store,
        &[],
        &["--retention-every", "1s", "--scrub-rate", "10MB/s"],
        &[],
    );
    let start = Instant::now();
    let stats = loop {
        let v = get_json(&format!("{}/api/stats", s.url));
        if v["service"]["jobs"]["retention"]["runs"]
            .as_u64()
            .unwrap_or(0)
            >= 1
        {
            break v;
        }
        assert!(start.elapsed() < DEADLINE, "no retention run: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let svc = &stats["service"];
    let r = &svc["jobs"]["retention"];
    assert_eq!(r["enabled"], true);
    assert_eq!(r["every_s"], 1);
    assert_eq!(r["last_outcome"]["deleted"], 1, "{svc}");
    assert_eq!(r["last_outcome"]["clock"], "real");
    assert!(r["last_start"].is_string() && r["last_end"].is_string());
    assert!(r["last_error"].is_null());
    for job in ["checkpoint", "audit_head", "disk"] {
        assert!(svc["jobs"][job]["enabled"].is_boolean(), "{job}: {svc}");
    }
    assert_eq!(svc["scrub"]["enabled"], true);
    assert_eq!(svc["scrub"]["bytes_per_sec"], 10_000_000);
    assert_eq!(svc["draining"], false);
    // The disk job reads free space per data dir against the watermark.
    let start = Instant::now();
    loop {
        let v = get_json(&format!("{}/api/stats", s.url));
        let disks = v["service"]["disks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(d) = disks.first() {
            assert_eq!(d["high_watermark"], 1.0);
            assert!(d["free_bytes"].as_u64().is_some(), "{d}");
            assert_eq!(d["over_watermark"], false);
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no disk reading: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = scrape(&s.url, None);
    assert_eq!(
        val(
            &m,
            "footage_retention_actions_total",
            &[("action", "deleted")]
        ),
        1.0
    );
    assert_eq!(val(&m, "footage_store_segments", &[]), 0.0);
    assert!(val(&m, "footage_job_runs_total", &[("job", "retention")]) >= 1.0);
    s.stop();
    // The run is in the audit log under the service's actor.
    let audit = ok(&footage(&store, &["audit"]));
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"action\":\"retention\"")),
        "{audit}"
    );
}

#[test]
fn service_table_of_footage_toml_is_read_checked_and_overridden_by_flags() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[]);
    let cfg = store.join("footage.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{original}\n[service]\nretention_every = \"soon\"\n"),
    )
    .unwrap();
    let bad = footage(&store, &["stats"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("service.retention_every"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    std::fs::write(
        &cfg,
        format!("{original}\n[service]\nretention_every = \"1h\"\ncheckpoint_every = \"7s\"\ndisk_check_every = \"off\"\ndrain_timeout = \"9s\"\n"),
    )
    .unwrap();
    let s = Serve::start(&store, &[], &["--checkpoint-every", "3s"], &[]);
    let v = get_json(&format!("{}/api/stats", s.url));
    let jobs = &v["service"]["jobs"];
    assert_eq!(jobs["retention"]["every_s"], 3600, "{v}");
    assert_eq!(jobs["checkpoint"]["every_s"], 3, "{v}");
    assert_eq!(jobs["disk"]["enabled"], false, "{v}");
    assert_eq!(v["service"]["drain_timeout_s"], 9, "{v}");
    s.stop();
}

/// Reads an HTTP/1.1 response head from `s`; returns it and the body bytes read past it.
fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]).into_owned();
            return (head, buf[p + 4..].to_vec());
        }
    }
}

#[test]
fn sigterm_lets_a_slow_request_finish_refuses_new_connections_and_closes_clean() {
    const BIG: usize = 48 << 20; // more than socket buffers hold: the body stays in flight
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[(5, BIG, "2026-11-20T14:03:00Z")]);
    let mut s = Serve::start(&store, &[], &["--drain-timeout", "60s"], &[]);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        c,
        "GET /api/segments/1/video HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    let (head, mut body) = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s.sigterm();
    // New connections are refused while the slow body is still being sent.
    let start = Instant::now();
    loop {
        match TcpStream::connect(&s.addr) {
            Err(_) => break,
            Ok(_) => {
                assert!(start.elapsed() < DEADLINE, "still accepting after SIGTERM");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let child_running = s.child.as_mut().unwrap().try_wait().unwrap().is_none();
    assert!(
        child_running,
        "the service exited before the request in flight finished"
    );
    // The request in flight completes, whole and right.
    c.read_to_end(&mut body).unwrap();
    assert_eq!(body.len(), BIG);
    assert!(body == common::random_bytes(5, BIG), "wrong bytes");
    assert_eq!(s.wait(), Some(0), "{}", s.log());
    let log = s.log();
    assert!(log.contains("draining"), "{log}");
    assert!(log.contains("store closed"), "{log}");
    // The store reopens clean.
    let st = footage::Store::open(&store).unwrap();
    let report = st.verify(None, |_| {}).unwrap();
    common::assert_verify_clean(&report, "after the drain");
    assert_eq!(st.stats().unwrap().segments, 1);
}

#[test]
fn draining_refuses_uploads_with_503_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let ops = std::sync::Arc::new(footage::service::Ops::default());
    let server = footage::server::spawn(
        store.clone(),
        footage::server::ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            ops: Some(ops.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let post = |path: &str| {
        agent()
            .post(&format!("{}{path}", server.url()))
            .header("Tus-Resumable", "1.0.0")
            .send(&[][..])
            .unwrap()
    };
    // Before the drain the upload paths are not refused by the drain layer.
    assert_ne!(post("/api/uploads").status().as_u16(), 503);
    ops.start_draining();
    for path in ["/api/uploads", "/api/uploads/abc"] {
        let r = post(path);
        assert_eq!(r.status().as_u16(), 503, "{path}");
        assert!(r.headers().get("retry-after").is_some(), "{path}");
    }
    // Reads go on while draining.
    let (st, _, _) = get(&format!("{}/healthz", server.url()), None);
    assert_eq!(st, 200);
    let (st, _, body) = get(&format!("{}/metrics", server.url()), None);
    assert_eq!(st, 200);
    let m = parse_metrics(&String::from_utf8(body).unwrap());
    assert_eq!(val(&m, "footage_drain_refused_requests_total", &[]), 2.0);
    assert_eq!(val(&m, "footage_service_draining", &[]), 1.0);
    server.stop().unwrap();
    store.close().unwrap();
}

fn recv_until(sock: &UnixDatagram, want: &str) -> String {
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut all = String::new();
    let mut buf = [0u8; 4096];
    while !all.lines().any(|l| l == want) {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {want} (got {all:?}): {e}"));
        all.push_str(&String::from_utf8_lossy(&buf[..n]));
        all.push('\n');
    }
    all
}

#[test]
fn readiness_and_stopping_reach_the_notify_socket_by_path_and_abstract_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[]);
    // A socket path.
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let s = Serve::start(
        &store,
        &[],
        &[],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let ready = recv_until(&sock, "READY=1");
    assert!(
        ready.contains(&format!("STATUS=serving on {}", s.url)),
        "{ready}"
    );
    // Ready means accepting: a request succeeds now.
    get_json(&format!("{}/api/stats", s.url));
    s.sigterm();
    recv_until(&sock, "STOPPING=1");
    s.stop();
    // An abstract name (`@...`), as systemd usually gives.
    use std::os::linux::net::SocketAddrExt;
    let name = format!(
        "footage-test-notify-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    let at = format!("@{name}");
    let s = Serve::start(&store, &[], &[], &[("NOTIFY_SOCKET", &at)]);
    recv_until(&sock, "READY=1");
    s.sigterm();
    recv_until(&sock, "STOPPING=1");
    s.stop();
}

#[test]
fn log_format_json_writes_one_object_per_line_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[]);
    let s = Serve::start(&store, &["--log-format", "json"], &[], &[]);
    get_json(&format!("{}/healthz", s.url));
    let log = s.stop();
    let mut lines = 0;
    let mut request_logged = false;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line: {e}: {line:?}\n{log}"));
        assert!(
            v.is_object() && v["level"].is_string() && v["fields"].is_object(),
            "{line}"
        );
        lines += 1;
        if v["target"] == "footage::http" && v["fields"]["path"] == "/healthz" {
            assert_eq!(v["fields"]["status"], 200);
            request_logged = true;
        }
    }
    assert!(lines >= 3, "{log}");
    assert!(request_logged, "{log}");
}

#[test]
fn ingest_counts_count_new_segments_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_small(dir.path());
    let put = |seed: u64, len: usize| {
        let mut w = store
            .begin_segment(common::meta("MET-1", "AX-1", common::T0))
            .unwrap();
        w.write(&common::random_bytes(seed, len)).unwrap();
        w.commit().unwrap()
    };
    assert_eq!(store.ingest_counts(), footage::IngestCounts::default());
    put(1, 100_000);
    put(2, 5_000);
    assert!(put(1, 100_000).duplicate);
    let c = store.ingest_counts();
    assert_eq!((c.segments, c.bytes, c.duplicates), (2, 105_000, 1));
    let samples = footage::service::store_samples(&store);
    let get = |n: &str| samples.iter().find(|s| s.name == n).unwrap().value;
    assert_eq!(get("footage_ingest_segments_total"), 2.0);
    assert_eq!(get("footage_ingest_bytes_total"), 105_000.0);
    assert_eq!(get("footage_store_segments"), 2.0);
    store.close().unwrap();
}

#[test]
fn disk_job_evicts_uploaded_footage_early_past_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(
        dir.path(),
        &[
            (6, 20_000, "2026-11-20T14:03:00Z"),
            (7, 20_000, "2026-11-20T15:03:00Z"),
        ],
    );
    ok(&footage(&store, &["categorize", "1", "evidential"]));
    ok(&footage(&store, &["categorize", "2", "evidential"]));
    let policy = |watermark: &str| {
        std::fs::write(
            store.join("policy.toml"),
            format!(
                r#"
[cloud]
url = "file://{}"
[category.default]
upload = false
evict_after = "31d"
delete_after = "never"
[category.evidential]
upload = true
evict_after = "3650d"
delete_after = "never"
[disk]
high_watermark = {watermark}
compact_below_live = 0
"#,
                dir.path().join("cloud").display()
            ),
        )
        .unwrap()
    };
    // Uploaded, not due for eviction for ten years.
    policy("1.0");
    let applied: Value =
        serde_json::from_str(ok(&footage(&store, &["retention", "apply"])).trim()).unwrap();
    assert_eq!(applied["uploaded"], 2, "{applied}");
    assert_eq!(applied["evicted"], 0, "{applied}");
    // Any real disk is above this watermark: the disk job must relieve it.
    policy("0.000001");
    let s = Serve::start(&store, &[], &["--disk-check-every", "1s"], &[]);
    let start = Instant::now();
    let disk = loop {
        let v = get_json(&format!("{}/api/stats", s.url));
        let d = v["service"]["jobs"]["disk"].clone();
        if d["last_outcome"]["evicted"].as_u64().is_some() {
            assert_eq!(v["service"]["disks"][0]["over_watermark"], true, "{v}");
            break d;
        }
        assert!(start.elapsed() < DEADLINE, "no disk run: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(disk["last_outcome"]["evicted"], 2, "{disk}");
    let m = scrape(&s.url, None);
    assert_eq!(
        val(
            &m,
            "footage_retention_actions_total",
            &[("action", "evicted")]
        ),
        2.0
    );
    s.stop();
    let info: Value = serde_json::from_str(ok(&footage(&store, &["info", "1"])).trim()).unwrap();
    assert_eq!(info["tier"], "cloud", "{info}");
}

/// The nice value of each thread of `pid` named `name` (from /proc, independent of the code
/// under test).
fn nice_of_threads(pid: i32, name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Field 19 is nice; the command name (field 2) may hold spaces, so count after ')'.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        if let Some(n) = stat[close + 2..].split(' ').nth(16) {
            out.push(n.parse().unwrap());
        }
    }
    out
}

/// [`nice_of_threads`] once at least one such thread exists and each has reached `want` (or
/// after [`DEADLINE`]). A thread carries its name from its first instant but lowers its
/// priority as its first step, so a look in between sees it at the service's priority.
fn threads_named(pid: i32, name: &str, want: i32) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let found = nice_of_threads(pid, name);
        let settled = !found.is_empty() && found.iter().all(|&n| n == want);
        if settled || start.elapsed() > DEADLINE {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn upload_workers_and_the_dock_watcher_run_at_the_lowered_bulk_priority() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[]);
    let cfg = store.join("footage.toml");
    let original = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{original}\n[service]\nbulk_nice = 7\n")).unwrap();
    let dock = dir.path().join("dock");
    std::fs::create_dir(&dock).unwrap();
    let s = Serve::start(
        &store,
        &[],
        &["--watch", dock.to_str().unwrap(), "--watch-interval", "1s"],
        &[],
    );
    let base = nice_of_threads(s.pid(), "footage")
        .first()
        .copied()
        .unwrap_or(0);
    let want = (base + 7).min(19);
    // The watcher thread runs lowered from its start (it names itself as it starts: wait).
    let watcher = threads_named(s.pid(), "footage-watch", want);
    assert!(!watcher.is_empty());
    assert!(
        watcher.iter().all(|&n| n == want),
        "{watcher:?}, want {want}"
    );

    // A PATCH in flight: its writer thread exists, lowered, until the body ends.
    const LEN: usize = 4 << 20;
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let meta = format!(
        "officer {},device {},start {},end {}",
        b64("MET-1"),
        b64("AX-NICE"),
        b64("2025-11-20T14:03:00Z"),
        b64("2025-11-20T14:33:00Z")
    );
    let mut c = TcpStream::connect(&s.addr).unwrap();
    write!(
        c,
        "POST /api/uploads HTTP/1.1\r\nHost: {}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Length: {LEN}\r\nUpload-Metadata: {meta}\r\nContent-Length: 0\r\n\r\n",
        s.addr
    )
    .unwrap();
    let (head, _) = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    let loc = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or(l.strip_prefix("Location: "))
        })
        .unwrap()
        .to_string();
    let body = vec![0x5au8; LEN];
    write!(
        c,
        "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {LEN}\r\n\r\n",
        s.addr
    )
    .unwrap();
    c.write_all(&body[..LEN / 2]).unwrap();
    let workers = threads_named(s.pid(), "footage-upload", want);
    // The worker, and any thread it starts (the SHA-256 helper carries the worker's name until
    // it names itself), all lowered by bulk_nice.
    assert!(!workers.is_empty());
    assert!(
        workers.iter().all(|&n| n == want),
        "{workers:?}, want {want}"
    );
    // Searches are not lowered: the threads that serve them keep the service's priority.
    for name in ["tokio-runtime-w", "footage"] {
        for n in nice_of_threads(s.pid(), name) {
            assert_eq!(n, base, "{name}");
        }
    }
    c.write_all(&body[LEN / 2..]).unwrap();
    let (head, _) = read_head(&mut c);
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("footage-segment:"),
        "{head}"
    );
    s.stop();
}
