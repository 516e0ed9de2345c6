//! Issue 10, items 11, 13, 14 and 15: who may do what, and a trail that cannot be rolled back
//! unnoticed. Everything goes through the `footage` binary (and HTTP for `footage serve`), as an
//! operator or a hostile user would.
//!
//! - 11: a store that has had tokens fails closed when `tokens.json` is moved away or emptied,
//!   until `footage token disable-auth` (audited) turns authentication off;
//! - 13: built-in actor names cannot be token names; the CLI records the OS identity beside
//!   every claimed actor;
//! - 14: releasing a legal hold needs the `holds` role; old `tokens.json` files still read;
//! - 15: a restored older `audit/` is found by `audit --verify --cloud`, a rolled-back log
//!   never overwrites the newer head in the cloud, and `footage serve` publishes the head on a
//!   schedule.

mod common;

use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> &Out {
        assert_eq!(
            self.code, 0,
            "stdout {} stderr {}",
            self.stdout, self.stderr
        );
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn out(o: Output) -> Out {
    Out {
        code: o.status.code().expect("killed by a signal"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn footage_env(store: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_footage"));
    c.arg("--store").arg(store).args(args);
    c.env_remove("FOOTAGE_ACTOR").env_remove("FOOTAGE_STORE");
    for (k, v) in env {
        c.env(k, v);
    }
    out(c.output().unwrap())
}

fn footage(store: &Path, args: &[&str]) -> Out {
    footage_env(store, args, &[])
}

/// A store with one small segment (id 1).
fn store_with_a_segment(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    footage(&store, &["init"]).ok();
    let clip = dir.join("clip.bin");
    std::fs::write(&clip, vec![7u8; 5000]).unwrap();
    let ingest = footage(
        &store,
        &[
            "ingest",
            clip.to_str().unwrap(),
            "--officer",
            "MET-1",
            "--device",
            "AX-1",
            "--start",
            "2025-11-20T14:03:00Z",
            "--end",
            "2025-11-20T14:13:00Z",
        ],
    );
    ingest.ok();
    store
}

fn add_token(store: &Path, args: &[&str]) -> String {
    let mut a = vec!["token", "add"];
    a.extend_from_slice(args);
    let o = footage(store, &a);
    o.ok();
    o.json()["token"].as_str().unwrap().to_string()
}

/// A `footage serve` child on a free loopback port; killed when dropped.
struct Serve {
    child: Option<Child>,
    url: String,
}

impl Serve {
    fn start(store: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(store)
            .args(["serve", "--addr", "127.0.0.1:0", "--quiet"])
            .args(extra)
            .env_remove("FOOTAGE_ACTOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let _ = child.kill();
            let status = child.wait();
            panic!("footage serve did not start ({status:?}): {e}: {line:?}")
        });
        Serve {
            url: v["listening"].as_str().unwrap().to_string(),
            child: Some(child),
        }
    }

    /// Stops the server with SIGTERM (a clean close of the store) and waits for it.
    fn stop(mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            assert!(c.wait().unwrap().success());
        }
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

struct Resp {
    status: u16,
    body: Value,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn finish(r: ureq::http::Response<ureq::Body>) -> Resp {
    let status = r.status().as_u16();
    let body = r.into_body().read_to_vec().unwrap();
    Resp {
        status,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

fn post(url: &str, token: Option<&str>, body: &str) -> Resp {
    let mut req = agent().post(url).header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    finish(req.send(body).unwrap())
}

fn get(url: &str, token: Option<&str>) -> Resp {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    finish(req.call().unwrap())
}

fn audit(store: &Path) -> Vec<Value> {
    let o = footage(store, &["audit"]);
    o.ok();
    o.lines()
}

fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// Issue 10, item 11: a store that has had tokens never serves without one, whether
/// `tokens.json` is moved away or its last token removed, until auth is turned off on purpose.
#[test]
fn item11_missing_tokens_file_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_segment(dir.path());
    // A store that never had tokens serves loopback without one (unchanged).
    let s = Serve::start(&store, &[]);
    let hold = format!("{}/api/segments/1/hold", s.url);
    assert_eq!(post(&hold, None, r#"{"case":"OP-0"}"#).status, 200);
    let token = add_token(&store, &["sgt.jones"]);
    assert_eq!(post(&hold, None, r#"{"case":"OP-1"}"#).status, 401);
    assert_eq!(post(&hold, Some(&token), r#"{"case":"OP-1"}"#).status, 200);

    // tokens.json moved away: every request is refused, none is let in.
    let tokens = store.join("tokens.json");
    let moved = store.join("tokens.json.moved");
    std::fs::rename(&tokens, &moved).unwrap();
    let r = post(&hold, None, r#"{"case":"OP-2"}"#);
    assert!(
        r.status == 503 || r.status == 401,
        "an unauthenticated write with tokens.json moved away answered {} {}",
        r.status,
        r.body
    );
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("disable-auth"),
        "{}",
        r.body
    );
    assert_eq!(get(&format!("{}/api/stats", s.url), None).status, r.status);
    assert_eq!(get(&format!("{}/healthz", s.url), None).status, 200);
    // ... and after a restart too.
    s.stop();
    let s = Serve::start(&store, &[]);
    let hold = format!("{}/api/segments/1/hold", s.url);
    let r = post(&hold, None, r#"{"case":"OP-2"}"#);
    assert!(
        r.status == 503 || r.status == 401,
        "{} {}",
        r.status,
        r.body
    );

    // Restored, then the last token removed: still closed.
    std::fs::rename(&moved, &tokens).unwrap();
    assert_eq!(post(&hold, Some(&token), r#"{"case":"OP-3"}"#).status, 200);
    footage(&store, &["token", "remove", "sgt.jones"]).ok();
    let r = post(&hold, None, r#"{"case":"OP-4"}"#);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("disable-auth"));

    // Turning auth off is deliberate: not while the server holds the store, and audited.
    let busy = footage(&store, &["token", "disable-auth"]);
    assert_eq!(busy.code, 1, "{}", busy.stderr);
    s.stop();
    footage(&store, &["token", "disable-auth"]).ok();
    let entry = audit(&store)
        .into_iter()
        .find(|e| e["action"] == "auth-disabled")
        .expect("disable-auth is audited");
    assert!(
        entry["actor"]
            .as_str()
            .unwrap()
            .contains(&format!("os:uid={}", my_uid())),
        "{entry}"
    );
    let s = Serve::start(&store, &[]);
    let hold = format!("{}/api/segments/1/hold", s.url);
    assert_eq!(post(&hold, None, r#"{"case":"OP-5"}"#).status, 200);
    s.stop();
    let holds = footage(&store, &["info", "1"]).json()["holds"].clone();
    assert_eq!(
        holds,
        serde_json::json!(["OP-0", "OP-1", "OP-3", "OP-5"]),
        "no unauthenticated change got in"
    );
}

/// Issue 10, item 13: a token cannot take the name of a built-in actor.
#[test]
fn item13_builtin_actor_names_are_refused_as_token_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    footage(&store, &["init"]).ok();
    for name in [
        "system",
        "System",
        "local",
        "unknown",
        "uid:0",
        "uid:1000",
        "(footage)",
    ] {
        let o = footage(&store, &["token", "add", name]);
        assert_ne!(o.code, 0, "token {name:?} was accepted: {}", o.stdout);
        assert!(o.stderr.contains("reserved"), "{name}: {}", o.stderr);
    }
    let list = footage(&store, &["token", "list"]);
    list.ok();
    assert_eq!(list.stdout.trim(), "", "no reserved token was stored");
    // An ordinary name still works.
    add_token(&store, &["pc.smith"]);
}

/// Issue 10, item 13: whatever actor the CLI is told, the audit log also records who ran it.
#[test]
fn item13_cli_records_the_os_identity_beside_the_claimed_actor() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_segment(dir.path());
    // The user name is there when the user database knows the uid.
    let os = format!("(os:uid={}", my_uid());
    let before = audit(&store).len();
    footage(&store, &["--actor", "alice", "tag", "1", "night"]).ok();
    footage(&store, &["--actor", "alice", "get", "1"]).ok();
    footage(&store, &["--actor", "alice", "hold", "1", "--case", "OP-1"]).ok();
    footage(
        &store,
        &["--actor", "alice", "release", "1", "--case", "OP-1"],
    )
    .ok();
    // No --actor, a forged USER: the real uid is still recorded.
    footage_env(
        &store,
        &["tag", "1", "day"],
        &[("USER", "sgt.jones"), ("LOGNAME", "sgt.jones")],
    )
    .ok();
    let entries = audit(&store);
    let new = &entries[before..];
    assert_eq!(new.len(), 5, "{new:?}");
    for e in &new[..4] {
        let actor = e["actor"].as_str().unwrap();
        assert!(
            actor.starts_with(&format!("alice {os}")) && actor.ends_with(')'),
            "{actor:?} does not carry the OS identity"
        );
    }
    let forged = new[4]["actor"].as_str().unwrap();
    assert!(forged.starts_with(&format!("sgt.jones {os}")), "{forged:?}");
    // A built-in name cannot be claimed either.
    let o = footage(&store, &["--actor", "system", "tag", "1", "x"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("reserved"), "{}", o.stderr);
}

/// Issue 10, item 14: a read-write token cannot release a legal hold; the `holds` role can,
/// and a refused attempt is in the audit log.
#[test]
fn item14_releasing_a_hold_needs_the_holds_role() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_segment(dir.path());
    let writer = add_token(&store, &["pc.writer"]);
    let keeper = add_token(&store, &["insp.keeper", "--role", "holds"]);
    let viewer = add_token(&store, &["cctv.viewer", "--read-only"]);
    let explicit = add_token(&store, &["pc.explicit", "--role", "write"]);
    let reader = add_token(&store, &["pc.reader", "--role", "read"]);
    let bad = footage(&store, &["token", "add", "x", "--role", "admin"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let both = footage(
        &store,
        &["token", "add", "y", "--role", "write", "--read-only"],
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
    let list = footage(&store, &["token", "list"]);
    let roles: Vec<(String, String)> = list
        .lines()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("pc.writer", "write"),
        ("insp.keeper", "holds"),
        ("cctv.viewer", "read"),
        ("pc.explicit", "write"),
        ("pc.reader", "read"),
    ];
    assert_eq!(
        roles,
        want.map(|(a, b)| (a.to_string(), b.to_string())),
        "{}",
        list.stdout
    );

    let s = Serve::start(&store, &[]);
    let seg = format!("{}/api/segments/1", s.url);
    let who = get(&format!("{}/api/whoami", s.url), Some(&keeper));
    assert_eq!(who.body["role"], "holds", "{}", who.body);
    assert_eq!(
        post(&format!("{seg}/hold"), Some(&viewer), r#"{"case":"OP-7"}"#).status,
        403
    );
    assert_eq!(
        post(&format!("{seg}/hold"), Some(&reader), r#"{"case":"OP-7"}"#).status,
        403
    );
    assert_eq!(
        post(&format!("{seg}/hold"), Some(&writer), r#"{"case":"OP-7"}"#).status,
        200
    );
    for t in [&writer, &explicit, &viewer] {
        let r = post(&format!("{seg}/release"), Some(t), r#"{"case":"OP-7"}"#);
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let r = post(
        &format!("{seg}/release"),
        Some(&writer),
        r#"{"case":"OP-7"}"#,
    );
    assert!(
        r.body["error"].as_str().unwrap().contains("holds"),
        "{}",
        r.body
    );
    let r = post(
        &format!("{seg}/release"),
        Some(&keeper),
        r#"{"case":"OP-7"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["holds"], serde_json::json!([]));
    s.stop();
    let refused: Vec<Value> = audit(&store)
        .into_iter()
        .filter(|e| e["action"] == "release-refused")
        .collect();
    let who: Vec<&str> = refused
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        who,
        ["pc.writer", "pc.explicit", "cctv.viewer", "pc.writer"],
        "each refused release is audited: {refused:?}"
    );
    assert!(refused
        .iter()
        .all(|e| e["segment"] == "1" && e["details"]["case"] == "OP-7"));
}

/// Issue 10, item 14: a `tokens.json` written before roles (`read_only`) still reads: a
/// read-write token becomes `write` (it may no longer release holds), a read-only one `read`.
#[test]
fn item14_old_tokens_file_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_segment(dir.path());
    let rw = format!("ftg_{}", "ab".repeat(32));
    let ro = format!("ftg_{}", "cd".repeat(32));
    let hash = |t: &str| footage_hex(&Sha256::digest(t.as_bytes()));
    let old = format!(
        r#"{{
  "format_version": 1,
  "tokens": [
    {{"name": "old.rw", "sha256": "{}", "read_only": false, "created": "2026-01-01T00:00:00Z"}},
    {{"name": "old.ro", "sha256": "{}", "read_only": true, "created": "2026-01-01T00:00:00Z"}}
  ]
}}
"#,
        hash(&rw),
        hash(&ro)
    );
    std::fs::write(store.join("tokens.json"), old).unwrap();
    let list = footage(&store, &["token", "list"]);
    list.ok();
    let l = list.lines();
    assert_eq!(
        (l[0]["name"].as_str(), l[0]["role"].as_str()),
        (Some("old.rw"), Some("write"))
    );
    assert_eq!(
        (l[1]["name"].as_str(), l[1]["role"].as_str()),
        (Some("old.ro"), Some("read"))
    );
    let s = Serve::start(&store, &[]);
    let seg = format!("{}/api/segments/1", s.url);
    assert_eq!(
        post(&format!("{seg}/hold"), Some(&ro), r#"{"case":"C"}"#).status,
        403
    );
    assert_eq!(
        post(&format!("{seg}/hold"), Some(&rw), r#"{"case":"C"}"#).status,
        200
    );
    assert_eq!(
        post(&format!("{seg}/release"), Some(&rw), r#"{"case":"C"}"#).status,
        403
    );
    s.stop();
    // Adding a token rewrites the file in the new format, keeping the old entries' rights.
    add_token(&store, &["new.keeper", "--role", "holds"]);
    let text = std::fs::read_to_string(store.join("tokens.json")).unwrap();
    assert!(!text.contains("read_only"), "{text}");
    let l = footage(&store, &["token", "list"]).lines();
    let roles: Vec<&str> = l.iter().map(|e| e["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["write", "read", "holds"]);
}

fn footage_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Points the store's policy at a `file://` cloud under `cloud`.
fn use_cloud(store: &Path, cloud: &Path) {
    let p = store.join("policy.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let url = format!("file://{}", cloud.display());
    let new = text.replace("file:///var/lib/footage-cloud", &url);
    assert_ne!(new, text);
    std::fs::write(&p, new).unwrap();
}

fn cloud_head(cloud: &Path) -> Option<Value> {
    fn find(dir: &Path) -> Option<PathBuf> {
        for e in std::fs::read_dir(dir).ok()? {
            let p = e.ok()?.path();
            if p.is_dir() {
                if let Some(f) = find(&p) {
                    return Some(f);
                }
            } else if p.ends_with("audit/HEAD.json") {
                return Some(p);
            }
        }
        None
    }
    let p = find(cloud)?;
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Issue 10, item 15: an older copy of `audit/` put back (dropping an `export` entry) is found
/// by `audit --verify --cloud`, and cannot be published over the newer head.
#[test]
fn item15_a_rolled_back_audit_log_is_found_by_verify_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let store = store_with_a_segment(dir.path());
    use_cloud(&store, &cloud);
    let first = footage(&store, &["audit", "--publish"]);
    first.ok();
    let old_audit = dir.path().join("audit-copy");
    common::copy_dir(&store.join("audit"), &old_audit);
    // The entries a rollback would hide: an export.
    let out = dir.path().join("case");
    footage(
        &store,
        &[
            "--actor",
            "det.moss",
            "export",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    let second = footage(&store, &["audit", "--publish"]);
    second.ok();
    let published = second.json()["count"].as_u64().unwrap();
    assert!(published > first.json()["count"].as_u64().unwrap());
    footage(&store, &["audit", "--verify", "--cloud"]).ok();

    // The older copy is put back: the local chain verifies on its own...
    std::fs::remove_dir_all(store.join("audit")).unwrap();
    common::copy_dir(&old_audit, &store.join("audit"));
    footage(&store, &["audit", "--verify"]).ok();
    // ... but not against the cloud, which names the rollback.
    let v = footage(&store, &["audit", "--verify", "--cloud"]);
    assert_eq!(v.code, 1, "{} {}", v.stdout, v.stderr);
    assert!(v.stderr.contains("rolled back"), "{}", v.stderr);
    assert!(v.stderr.contains(&published.to_string()), "{}", v.stderr);
    // Publishing the rolled-back head would erase the evidence: refused, cloud unchanged.
    let p = footage(&store, &["audit", "--publish"]);
    assert_eq!(p.code, 1, "{} {}", p.stdout, p.stderr);
    assert!(p.stderr.contains("rolled back"), "{}", p.stderr);
    assert_eq!(cloud_head(&cloud).unwrap()["count"], published);
    // The log keeps growing after the restore: still found (the hash no longer matches).
    for n in 0..40 {
        footage(&store, &["tag", "1", &format!("t{n}")]).ok();
    }
    let v = footage(&store, &["audit", "--verify", "--cloud"]);
    assert_eq!(v.code, 1, "{}", v.stderr);
    assert!(v.stderr.contains("rolled back"), "{}", v.stderr);
}

/// Issue 10, item 15: a running `footage serve` keeps the cloud's chain head current.
#[test]
fn item15_serve_publishes_the_chain_head_on_a_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let store = store_with_a_segment(dir.path());
    use_cloud(&store, &cloud);
    let first = footage(&store, &["audit", "--publish"]);
    first.ok();
    let c0 = first.json()["count"].as_u64().unwrap();
    let s = Serve::start(&store, &["--publish-head-every", "1s"]);
    let r = post(
        &format!("{}/api/segments/1/tags", s.url),
        None,
        r#"{"tag":"night"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The tag moved the chain; the server publishes it without being asked.
    let mut seen = c0;
    for _ in 0..600 {
        seen = cloud_head(&cloud)
            .and_then(|h| h["count"].as_u64())
            .unwrap_or(0);
        if seen > c0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        seen > c0,
        "the server never published a newer head ({seen} <= {c0})"
    );
    s.stop();
    footage(&store, &["audit", "--verify", "--cloud"]).ok();
    let bad = footage(&store, &["serve", "--publish-head-every", "soon"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
