//! Issue 10, items 1, 3 and 4: the store's lifecycle can be trusted.
//!
//! - item 1: `retention apply` refuses a time later than the real clock unless the store was
//!   created with a simulated clock, and such a store says so everywhere;
//! - item 3: deleting `LOCK` does not let a second writer in, and `verify` reports an
//!   acknowledged change (in the audit log) that the catalog lacks;
//! - item 4: space punched at the tail of an active volume is not damage; real damage there
//!   still is.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{random_bytes, small_options};
use footage::Store;
use serde_json::Value;

const DAY: i64 = 86_400_000_000;
const START: &str = "2025-11-20T14:03:00Z";
const END: &str = "2025-11-20T14:13:00Z";
const FUTURE: &str = "2099-01-01T00:00:00Z";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!("not one JSON value ({e}): {}", self.stdout);
        })
    }
    fn ok(&self) -> &Out {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self
    }
}

fn footage(store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_footage"));
    c.arg("--store").arg(store).args(args);
    c.env_remove("FOOTAGE_STORE").env_remove("FOOTAGE_KEY");
    c
}

fn run(store: &Path, args: &[&str]) -> Out {
    let out = footage(store, args).stdin(Stdio::null()).output().unwrap();
    Out {
        code: out.status.code().expect("killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn ingest(store: &Path, dir: &Path, name: &str, seed: u64) -> String {
    let clip = dir.join(name);
    std::fs::write(&clip, random_bytes(seed, 5000)).unwrap();
    let out = run(
        store,
        &[
            "--actor",
            "MET-000001",
            "ingest",
            clip.to_str().unwrap(),
            "--officer",
            "MET-004217",
            "--device",
            "AX-1",
            "--start",
            START,
            "--end",
            END,
        ],
    );
    out.ok().json()["id"].as_str().unwrap().to_string()
}

/// Reopens a store this process closed. A sibling test that spawns a process holds copies of
/// every descriptor (the store's locks too) between its fork and its exec: wait that out.
fn reopen(root: &Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Store::open(root) {
            Err(footage::Error::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Item 1: evidence deleted early by a pretend clock.

#[test]
fn item01_apply_refuses_now_past_real_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    run(&store, &["init"]).ok();
    let id = ingest(&store, dir.path(), "a.bin", 1);

    let out = run(&store, &["retention", "apply", "--now", FUTURE]);
    assert_eq!(out.code, 2, "stdout {} stderr {}", out.stdout, out.stderr);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("real clock") && out.stderr.contains("--simulated-clock"),
        "the message says why: {}",
        out.stderr
    );
    // Nothing was deleted, and looking ahead is still allowed.
    run(&store, &["info", &id]).ok();
    let dry = run(
        &store,
        &["retention", "apply", "--now", FUTURE, "--dry-run"],
    );
    assert_eq!(dry.ok().json()["deleted"], 1);
    run(&store, &["retention", "plan", "--now", FUTURE]).ok();
    run(&store, &["info", &id]).ok();
    // The real clock (no --now) is accepted and recorded as such.
    let real = run(&store, &["retention", "apply"]);
    assert_eq!(real.ok().json()["clock"], "real");
    // A store created before the field existed, or without the flag, is a real-clock store.
    let toml = std::fs::read_to_string(store.join("footage.toml")).unwrap();
    assert!(!toml.contains("clock"), "{toml}");
    assert_eq!(run(&store, &["stats"]).ok().json()["clock"], "real");
}

#[test]
fn item01_library_refuses_future_now_and_background_clock() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::create(&root).unwrap();
    // Recorded an hour ago: not due for anything by the real clock.
    let t = footage::now_us() - 3_600_000_000;
    store
        .ingest_bytes(common::meta("MET-1", "AX-1", t), &random_bytes(2, 3000))
        .unwrap();
    let ahead = footage::now_us() + 3650 * DAY;
    let err = store
        .retention_apply(ahead, false, "t", &mut |_| {})
        .expect_err("a time past the real clock must be refused");
    assert!(err.to_string().contains("real clock"), "{err}");
    assert!(matches!(err, footage::Error::ClockAhead { .. }), "{err:?}");
    // A dry run may look anywhere; a time within the skew tolerance is the real clock.
    assert_eq!(
        store
            .retention_apply(ahead, true, "t", &mut |_| {})
            .unwrap()
            .deleted,
        1
    );
    store
        .retention_apply(footage::now_us() + 5_000_000, false, "t", &mut |_| {})
        .unwrap();
    assert_eq!(store.segment_ids().len(), 1);

    // Background retention with a custom clock obeys the same rule.
    let clock: footage::RetentionClock = std::sync::Arc::new(move || ahead);
    let handle = store
        .start_retention(footage::RetentionOptions {
            clock: Some(clock),
            ..footage::RetentionOptions::default()
        })
        .unwrap();
    assert!(handle.wait_for_runs(1, Duration::from_secs(60)));
    let last = handle.last().unwrap();
    handle.stop();
    let why = last.expect_err("the background run must be refused");
    assert!(why.contains("real clock"), "{why}");
    assert_eq!(store.segment_ids().len(), 1, "nothing was deleted");
}

#[test]
fn item01_simulated_clock_store_says_so_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let created = run(&store, &["init", "--simulated-clock"]);
    assert_eq!(created.ok().json()["clock"], "simulated");
    let toml = std::fs::read_to_string(store.join("footage.toml")).unwrap();
    assert!(toml.contains("clock = \"simulated\""), "{toml}");
    // The cloud tier (the audit head is published after a deletion) in a directory of ours.
    let policy = store.join("policy.toml");
    let cloud = format!("file://{}", dir.path().join("cloud").display());
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text.contains("file:///var/lib/footage-cloud"), "{text}");
    std::fs::write(
        &policy,
        text.replace("file:///var/lib/footage-cloud", &cloud),
    )
    .unwrap();
    let id = ingest(&store, dir.path(), "a.bin", 3);
    let other = ingest(&store, dir.path(), "b.bin", 4);
    run(&store, &["hold", &other, "--case", "OP-KEEP"]).ok();

    assert_eq!(run(&store, &["stats"]).ok().json()["clock"], "simulated");
    assert_eq!(
        run(&store, &["info", &id]).ok().json()["clock"],
        "simulated"
    );
    let out = dir.path().join("export");
    let exported = run(&store, &["export", &id, "--out", out.to_str().unwrap()]);
    assert_eq!(exported.ok().json()["clock"], "simulated");
    let custody: Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("{id}.custody.json"))).unwrap())
            .unwrap();
    assert_eq!(custody["clock"], "simulated");

    // A simulated-clock store may run retention at any time; every entry says so.
    let applied = run(&store, &["retention", "apply", "--now", FUTURE]);
    let summary = applied.ok().json();
    assert_eq!(summary["deleted"], 1, "{summary}");
    assert_eq!(summary["clock"], "simulated");
    assert_eq!(summary["now"], FUTURE);
    run(&store, &["info", &other]).ok();
    let audit = run(&store, &["audit", "--segment", &id]);
    let delete: Value = audit
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["action"] == "delete")
        .expect("a delete entry");
    assert_eq!(delete["details"]["clock"], "simulated", "{delete}");
    assert_eq!(delete["details"]["now"], FUTURE, "{delete}");
    // The deletion is in the audit log, so verify does not call the segment lost.
    run(&store, &["verify"]).ok();
}

// ---------------------------------------------------------------------------------------
// Item 3: a lost legal hold.

/// Waits until some process holds an flock on `path`'s inode.
fn wait_for_flock(path: &Path, holder: &mut std::process::Child) {
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .any(|l| l.contains("FLOCK") && l.contains(&format!(":{ino} ")))
    {
        assert!(
            holder.try_wait().unwrap().is_none(),
            "the holder ended early"
        );
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn item03_deleted_lock_file_does_not_let_a_second_writer_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    run(&store, &["init"]).ok();
    let id = ingest(&store, dir.path(), "a.bin", 5);

    // A long-running writer: an ingest waiting for its input holds the store.
    let mut holder = footage(
        &store,
        &[
            "ingest",
            "-",
            "--officer",
            "MET-1",
            "--device",
            "AX-9",
            "--start",
            START,
            "--end",
            END,
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_flock(&store.join("LOCK"), &mut holder);
    // The careless operator.
    std::fs::remove_file(store.join("LOCK")).unwrap();

    let hold = run(&store, &["hold", &id, "--case", "OP-LOST"]);
    assert_eq!(hold.code, 1, "a second writer got in: {}", hold.stdout);
    assert!(hold.stderr.contains("locked"), "{}", hold.stderr);
    assert!(matches!(
        Store::open(&store),
        Err(footage::Error::Locked { .. })
    ));

    let mut stdin = holder.stdin.take().unwrap();
    stdin.write_all(b"streamed").unwrap();
    drop(stdin);
    let out = holder.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Once the owner is gone, the store opens again (a new LOCK is made).
    run(&store, &["hold", &id, "--case", "OP-LOST"]).ok();
    assert_eq!(
        run(&store, &["info", &id]).ok().json()["holds"],
        serde_json::json!(["OP-LOST"])
    );
    run(&store, &["verify"]).ok();
}

#[test]
fn item03_verify_reports_acknowledged_changes_the_catalog_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::create_with(&root, &small_options()).unwrap();
    let t = common::T0;
    let a = store
        .ingest_bytes(common::meta("MET-1", "AX-1", t), &random_bytes(6, 3000))
        .unwrap()
        .id;
    store.categorize(a, "evidential", "sgt.a").unwrap();
    store.close().unwrap();
    let before = dir.path().join("before");
    common::copy_dir(&root, &before);

    // Acknowledged changes: a hold and a new segment.
    let store = reopen(&root);
    store.hold(a, "OP-TRIDENT", "sgt.a").unwrap();
    let b = store
        .ingest_bytes(
            common::meta("MET-1", "AX-1", t + DAY),
            &random_bytes(7, 3000),
        )
        .unwrap()
        .id;
    let clean = store.verify(None, |_| {}).unwrap();
    assert!(!clean.has_findings(), "{clean:?}");
    store.close().unwrap();

    // The store loses them, its audit log does not (the trail of the lost-hold defect).
    std::fs::remove_dir_all(before.join("audit")).unwrap();
    common::copy_dir(&root.join("audit"), &before.join("audit"));
    let lost = reopen(&before);
    let report = lost.verify(None, |_| {}).unwrap();
    assert!(report.has_findings(), "{report:?}");
    let text = serde_json::to_string(&report).unwrap();
    assert!(
        text.contains("OP-TRIDENT"),
        "the lost hold is named: {text}"
    );
    assert!(
        text.contains(&format!("segment {b}")),
        "the lost segment is named: {text}"
    );
    drop(lost);
    let cli = run(&before, &["verify"]);
    assert_eq!(cli.code, 1, "{}", cli.stdout);
    assert!(cli.stderr.contains("OP-TRIDENT"), "{}", cli.stderr);
}

// ---------------------------------------------------------------------------------------
// Item 4: a fresh demo store fails verify.

#[test]
fn item04_fresh_demo_store_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = footage(
        dir.path(),
        &[
            "demo",
            "--dir",
            demo.to_str().unwrap(),
            "--officers",
            "1",
            "--no-ffmpeg",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = demo.join("store");
    let toml = std::fs::read_to_string(store.join("footage.toml")).unwrap();
    assert!(toml.contains("clock = \"simulated\""), "{toml}");
    let v = run(&store, &["verify"]);
    assert_eq!(v.code, 0, "stdout {} stderr {}", v.stdout, v.stderr);
}

/// A store whose active volume ends in the punched records of a deleted segment. Returns the
/// root and the path of that volume.
fn punched_tail_store(root: &Path) -> std::path::PathBuf {
    let store = Store::create_with(root, &small_options()).unwrap();
    let t = common::T0;
    let keep = store
        .ingest_bytes(common::meta("MET-1", "AX-1", t), &random_bytes(8, 150_000))
        .unwrap()
        .id;
    let gone = store
        .ingest_bytes(
            common::meta("MET-1", "AX-2", t + 1),
            &random_bytes(9, 200_000),
        )
        .unwrap()
        .id;
    assert_ne!(keep, gone);
    store.checkpoint().unwrap();
    // The Deleted record goes to today's volume; the old day's volume keeps a punched tail.
    store.delete(gone, "retention").unwrap();
    store.checkpoint().unwrap();
    let report = store.verify(None, |_| {}).unwrap();
    assert!(
        !report.has_findings(),
        "punched space is not damage: {report:?}"
    );
    store.close().unwrap();
    let data = root.join("data");
    let mut vols: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    vols.sort();
    vols[0].clone()
}

#[test]
fn item04_punched_tail_of_active_volume_is_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let vol = punched_tail_store(&root);
    // Reopened (the scan at open sees the punched tail too), still clean.
    let store = reopen(&root);
    let report = store.verify(None, |_| {}).unwrap();
    assert!(!report.has_findings(), "{report:?}");
    drop(store);
    run(&root, &["verify"]).ok();

    // Real damage in the punched tail: non-zero garbage where only zeros may be.
    let len = std::fs::metadata(&vol).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&vol).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0xA5; 100], len - 8192).unwrap();
    drop(f);
    let v = run(&root, &["verify"]);
    assert_eq!(v.code, 1, "garbage in the punched tail: {}", v.stdout);
}

#[test]
fn item04_flipped_bit_in_last_live_record_is_still_damage() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let vol = punched_tail_store(&root);
    // The last non-zero byte before the punched tail belongs to the last live record.
    let bytes = std::fs::read(&vol).unwrap();
    let last = bytes.iter().rposition(|&b| b != 0).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&vol).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[bytes[last] ^ 0x10], last as u64).unwrap();
    drop(f);
    let store = reopen(&root);
    let report = store.verify(None, |_| {}).unwrap();
    assert!(report.has_findings(), "a flipped bit must be found");
}
