//! Crash safety of retention: `footage retention apply` is killed at every named step of
//! upload → verify → evict → reclaim (drop, compaction) → delete (an injected abort through
//! `FOOTAGE_FAILPOINT`, also at the 2nd/3rd pass mid-batch, and random SIGKILLs), or its
//! cloud fails part-way. After each: the store opens, `verify` passes, every segment that
//! is still listed reads back its original bytes (so none lost its last copy), the audit
//! chain verifies, the per-volume live counts add up, and a second apply reaches exactly the
//! state a single uninterrupted apply reaches (segments, tiers, holds, cloud objects).

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{copy_dir, random_bytes, small_options};
use footage::{GpsFix, SegmentMeta, Store};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_759_276_800_000_000; // 2025-10-01T00:00:00Z
/// The crashed apply and the reference apply run at T0 + 40 days.
const NOW: &str = "2025-11-10T00:00:00Z";

const POLICY: &str = r#"
[cloud]
url = "CLOUD"

[category.default]
upload = false
evict_after = "31d"
delete_after = "31d"

[category.evidential]
upload = true
evict_after = "30d"
delete_after = "2555d"

[category.traffic]
upload = true
evict_after = "2d"
delete_after = "90d"

[category.short]
upload = true
evict_after = "1d"
delete_after = "35d"

[category.keep]
upload = false
evict_after = "never"
delete_after = "never"

[disk]
high_watermark = 1.0
compact_below_live = 0.6
"#;

/// Every crash point a first apply of the fixture passes, with the pass to abort at.
const POINTS: &[&str] = &[
    "upload.after_parts",
    "upload.after_local_crcs",
    "upload.after_meta",
    "upload.after_record",
    "upload.after_record@2",
    "evict.after_punch",
    "evict.after_punch@2",
    "evict.after_record",
    "delete.before_record",
    "delete.after_record",
    "delete.after_record@3",
    "delete.after_local",
    "delete.after_local@2",
    "delete.after_cloud",
    "drop_volume.after_restate",
    "drop_volume.after_checkpoint",
    "drop_volume.after_unlink",
    "compact.after_restate",
    "compact.after_chunks",
    "compact.after_copy",
    "compact.after_rename",
    "compact.after_rename@2",
    "compact.after_switch",
    "compact.after_checkpoint",
    "compact.after_unlink",
];

fn meta(n: usize, start: i64, categories: &[&str]) -> SegmentMeta {
    SegmentMeta {
        officer: format!("MET-{n:04}"),
        device: format!("AX-{n:04}"),
        start_us: start,
        end_us: start + 600_000_000,
        gps: vec![GpsFix::from_degrees(start, 51.508, -0.1247).unwrap()],
        categories: categories.iter().map(|c| c.to_string()).collect(),
        ..SegmentMeta::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    /// A store and its cloud, before any apply (copied for every case).
    base: PathBuf,
    /// Original bytes of every segment.
    data: BTreeMap<u64, Vec<u8>>,
    /// The state one uninterrupted apply reaches.
    expected: FinalState,
}

#[derive(Debug, PartialEq, Eq)]
struct FinalState {
    /// id -> (tier, holds)
    segments: BTreeMap<u64, (String, Vec<String>)>,
    /// Segment ids with a `meta.json` in the cloud.
    cloud: Vec<u64>,
    compacted_or_dropped: bool,
}

/// Writes the store: 40 segments of several categories over one footage day (a run of ten
/// plain ones in the middle, so whole volumes die), with the chunks of interrupted
/// deliveries (dead, never punched) between them, so volumes become worth compacting; an
/// earlier apply uploaded some and evicted the `short` ones.
fn build(root: &Path, cloud: &Path) -> BTreeMap<u64, Vec<u8>> {
    let store = common::open_gated(root, &small_options()).unwrap();
    let url = format!("file://{}", cloud.display());
    let policy = POLICY.replace("CLOUD", &url);
    // No compaction in the earlier apply: the dead bytes are for the apply under test.
    std::fs::write(
        root.join("policy.toml"),
        policy.replace("compact_below_live = 0.6", "compact_below_live = 0"),
    )
    .unwrap();
    let cats: [&[&str]; 6] = [
        &[],                  // deleted at 31 d (unless held)
        &["evidential"],      // uploaded, evicted at 30 d
        &["traffic"],         // uploaded, evicted at 2 d
        &["keep"],            // stays local
        &["short"],           // uploaded and evicted earlier, deleted at 35 d
        &["traffic", "keep"], // uploaded, never evicted
    ];
    let mut data = BTreeMap::new();
    for n in 0..40 {
        let bytes = random_bytes(n as u64, 90_000 + n * 2_001);
        let c = if (12..22).contains(&n) {
            cats[0]
        } else {
            cats[n % cats.len()]
        };
        let id = store
            .ingest_bytes(meta(n, T0 + n as i64 * 1000, c), &bytes)
            .unwrap()
            .id;
        data.insert(id, bytes);
        if n % 5 == 3 {
            // A dock that dropped the connection: dead chunks, never committed.
            let mut w = store.begin_segment(meta(100 + n, T0, &[])).unwrap();
            w.write(&random_bytes(1000 + n as u64, 300_000)).unwrap();
            drop(w);
        }
    }
    // Two plain segments held: past delete_after but kept.
    for id in [1u64, 7] {
        store.hold(id, "OP-9", "sgt").unwrap();
    }
    // An earlier apply: uploads, and evicts the `short` ones (1 d).
    let s = store
        .retention_apply(T0 + 2 * DAY, false, "setup", &mut |_| {})
        .unwrap();
    assert!(s.failed.is_empty(), "{s:?}");
    assert_eq!(s.compacted, 0, "{s:?}");
    // Made evidential since: uploaded by the apply under test (and kept local: `keep`).
    let keep: Vec<u64> = store
        .find(&footage::Query::new().category("keep"))
        .unwrap()
        .results
        .iter()
        .map(|r| r.id)
        .filter(|id| store.info(*id).unwrap().categories == ["keep"])
        .take(3)
        .collect();
    assert_eq!(keep.len(), 3);
    for id in keep {
        store.categorize(id, "evidential", "sgt").unwrap();
    }
    store.close().unwrap();
    std::fs::write(root.join("policy.toml"), policy).unwrap();
    data
}

fn cloud_ids(cloud: &Path) -> Vec<u64> {
    let mut out = Vec::new();
    let mut stack = vec![cloud.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "meta.json") {
                let id = p.parent().unwrap().file_name().unwrap().to_str().unwrap();
                out.push(id.parse::<u64>().unwrap());
            }
        }
    }
    out.sort_unstable();
    out
}

fn apply(root: &Path, failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_footage"));
    cmd.arg("--store")
        .arg(root)
        .args(["--actor", "crash-test", "retention", "apply", "--now", NOW])
        .stdin(Stdio::null());
    cmd.env_remove("FOOTAGE_FAILPOINT");
    if let Some(fp) = failpoint {
        cmd.env("FOOTAGE_FAILPOINT", fp);
    }
    common::output(&mut cmd)
}

/// Opens (creating) the store at `root` with default options, never while a sibling test's
/// child is between fork and exec (`common::open_gated`): the cause of a reopen refused as
/// `Locked` that failed this file's tests now and then.
fn open_default(root: impl AsRef<Path>) -> footage::Result<Store> {
    common::open_gated(root.as_ref(), &footage::StoreOptions::default())
}

/// Checks a store after a crash (or at the end): it opens, verifies, reads back every
/// listed segment's original bytes, its audit chain holds and its live counts add up.
fn check_consistent(root: &Path, data: &BTreeMap<u64, Vec<u8>>, case: &str) -> Store {
    let store = open_default(root).unwrap_or_else(|e| panic!("{case}: open failed: {e}"));
    let report = store.verify(None, |_| {}).unwrap();
    common::assert_verify_clean(&report, case);
    for id in store.segment_ids() {
        let want = data
            .get(&id)
            .unwrap_or_else(|| panic!("{case}: unknown segment {id}"));
        let got = store
            .read_range(id, 0, u64::MAX)
            .unwrap_or_else(|e| panic!("{case}: segment {id} unreadable: {e}"));
        assert!(&got == want, "{case}: segment {id} reads back other bytes");
    }
    let audit = store.audit_verify().unwrap();
    assert!(audit.ok, "{case}: audit chain: {:?}", audit.first_broken);
    // Live chunk bytes per volume add up to the bytes of the segments held locally: no
    // segment is counted in two volumes (or none) after a move.
    let stats = store.stats().unwrap();
    let live: u64 = stats.volume_list.iter().map(|v| v.live_bytes).sum();
    let local: u64 = store
        .segment_ids()
        .into_iter()
        .filter(|id| store.info(*id).unwrap().tier != footage::TierState::Cloud)
        .map(|id| data[&id].len() as u64)
        .sum();
    assert_eq!(live, local, "{case}: live bytes per volume do not add up");
    let commits: u64 = stats
        .volume_list
        .iter()
        .map(|v| u64::from(v.live_commits))
        .sum();
    assert_eq!(commits, store.len() as u64, "{case}: live commit records");
    store
}

fn final_state(root: &Path, cloud: &Path, compacted_or_dropped: bool) -> FinalState {
    let store = open_default(root).unwrap();
    let segments = store
        .segment_ids()
        .into_iter()
        .map(|id| {
            let i = store.info(id).unwrap();
            (id, (i.tier.to_string(), i.holds))
        })
        .collect();
    assert!(
        !root.join("cloud-deletes").exists(),
        "cloud deletions left pending"
    );
    FinalState {
        segments,
        cloud: cloud_ids(cloud),
        compacted_or_dropped,
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let data = build(&base.join("store"), &base.join("cloud"));
    // The reference: one apply, never interrupted.
    let reference = dir.path().join("reference");
    copy_base(&base, &reference);
    let before = open_default(reference.join("store"))
        .unwrap()
        .stats()
        .unwrap();
    let out = apply(&reference.join("store"), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("reference apply: {summary}");
    assert!(summary["compacted"].as_u64().unwrap() >= 2, "{summary}");
    assert!(summary["deleted"].as_u64().unwrap() >= 10, "{summary}");
    let after = open_default(reference.join("store"))
        .unwrap()
        .stats()
        .unwrap();
    let on_disk = |s: &footage::Stats| s.volume_list.iter().map(|v| v.allocated_bytes).sum::<u64>();
    assert!(
        on_disk(&after) < on_disk(&before),
        "compaction gave nothing back"
    );
    let expected = final_state(&reference.join("store"), &reference.join("cloud"), true);
    // The fixture exercises every kind of move.
    let tiers: Vec<&str> = expected
        .segments
        .values()
        .map(|(t, _)| t.as_str())
        .collect();
    for t in ["cloud", "local", "local+cloud"] {
        assert!(tiers.contains(&t), "no {t} segment in {expected:?}");
    }
    check_consistent(&reference.join("store"), &data, "reference");
    Fixture {
        _dir: dir,
        base,
        data,
        expected,
    }
}

/// Copies the base store and its cloud to `to`, pointing the copy's policy at its own cloud.
fn copy_base(base: &Path, to: &Path) {
    copy_dir(base, to);
    let root = to.join("store");
    let policy = std::fs::read_to_string(root.join("policy.toml"))
        .unwrap()
        .replace(
            &base.join("cloud").display().to_string(),
            &to.join("cloud").display().to_string(),
        );
    std::fs::write(root.join("policy.toml"), policy).unwrap();
}

/// Copies the base, lets `crash` interrupt a first apply, checks, re-applies, compares.
fn run_case(fx: &Fixture, case: &str, crash: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("w");
    copy_base(&fx.base, &work);
    let (root, cloud) = (work.join("store"), work.join("cloud"));
    crash(&root);
    drop(check_consistent(&root, &fx.data, case));
    let out = apply(&root, None);
    assert!(
        out.status.success(),
        "{case}: second apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(check_consistent(&root, &fx.data, case));
    let got = final_state(&root, &cloud, true);
    assert_eq!(got, fx.expected, "{case}: final state differs");
}

#[test]
fn a_crash_at_every_step_of_retention_loses_nothing_and_a_second_apply_finishes() {
    let fx = fixture();
    for point in POINTS {
        run_case(&fx, point, |root| {
            let out = apply(root, Some(point));
            let stderr = String::from_utf8_lossy(&out.stderr);
            let name = point.split('@').next().unwrap();
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGABRT),
                "{point}: the apply was not stopped there (never reached?): {stderr}"
            );
            assert!(
                stderr.contains(&format!("failpoint {name} reached")),
                "{stderr}"
            );
        });
    }
}

#[test]
fn a_cloud_failing_part_way_is_retried_by_the_next_apply() {
    let fx = fixture();
    for spec in [
        "err:cloud.put@2",
        "err:cloud.delete",
        "err:cloud.put@1,err:cloud.delete@2",
    ] {
        run_case(&fx, spec, |root| {
            let out = apply(root, Some(spec));
            assert_eq!(
                out.status.code(),
                Some(1),
                "{spec}: failures must be reported"
            );
            let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(
                !summary["failed"].as_array().unwrap().is_empty(),
                "{spec}: {summary}"
            );
        });
    }
}

/// Tries before a random kill that keeps missing (the apply finishing first) fails the test.
const KILL_TRIES: u32 = 10;

#[test]
fn random_kills_during_apply_lose_nothing() {
    use rand::{Rng, SeedableRng};
    let fx = fixture();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for round in 0..4 {
        let first = std::time::Duration::from_millis(rng.random_range(5..400));
        run_case(&fx, &format!("kill round {round}"), |root| {
            // The kill must land: a SIGKILL sent to a running apply. An apply that finished
            // first is thrown away (a fresh copy of the base) and the kill tried earlier.
            let mut delay = first;
            for _ in 0..KILL_TRIES {
                let mut child = common::spawn(
                    Command::new(env!("CARGO_BIN_EXE_footage"))
                        .arg("--store")
                        .arg(root)
                        .args(["--actor", "crash-test", "retention", "apply", "--now", NOW])
                        .env_remove("FOOTAGE_FAILPOINT")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null()),
                );
                std::thread::sleep(delay);
                let sent = child.try_wait().unwrap().is_none() && child.kill().is_ok();
                let status = child.wait().unwrap();
                // A kill "sent" can still miss: the apply may exit between `try_wait` and
                // `kill` (signalling a child that has exited but is not yet reaped succeeds).
                // Only a death by SIGKILL counts; a clean exit is a miss, tried again earlier.
                if sent && status.signal() == Some(libc::SIGKILL) {
                    eprintln!("round {round}: apply killed after {delay:?}");
                    return;
                }
                assert!(
                    status.success(),
                    "round {round}: the apply failed: {status}"
                );
                let work = root.parent().unwrap();
                std::fs::remove_dir_all(work).unwrap();
                copy_base(&fx.base, work);
                delay /= 2;
            }
            panic!("round {round}: every apply finished before its SIGKILL ({KILL_TRIES} tries)");
        });
    }
}

/// Issue 10 item 22: a sibling test's child, between its fork and its exec, holds a copy of
/// this test's store `LOCK` descriptor; a reopen in that moment was refused (`Locked`), which
/// failed `random_kills_during_apply_lose_nothing` at its final open once in four runs. The
/// child here is held in that moment on purpose (a `pre_exec` hook that waits), and the
/// reopen must still succeed: it waits for the child's exec instead of racing it.
#[test]
fn item22_a_reopen_never_races_a_sibling_tests_fork() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let store = open_default(dir.path()).unwrap();
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (rfd, wfd) = (fds[0], fds[1]);
    let sibling = std::thread::spawn(move || {
        let mut cmd = Command::new("true");
        // SAFETY: only async-signal-safe calls (write, nanosleep) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::write(wfd, b"x".as_ptr().cast(), 1);
                libc::usleep(300_000);
                Ok(())
            });
        }
        common::spawn(&mut cmd).wait().unwrap()
    });
    // Once the child is forked (it holds the LOCK copy), close and reopen the store.
    let mut b = [0u8; 1];
    assert_eq!(unsafe { libc::read(rfd, b.as_mut_ptr().cast(), 1) }, 1);
    drop(store);
    let reopened = open_default(dir.path());
    assert!(reopened.is_ok(), "reopen: {:?}", reopened.err());
    assert!(sibling.join().unwrap().success());
    unsafe {
        libc::close(rfd);
        libc::close(wfd);
    }
}

/// Issue 10 item 22: one rule decides "under CI" (set, and not empty, "0" or "false"), and a
/// skip under CI is a failure; outside CI it is listed in `<target>/skipped-tests.txt`.
#[test]
fn item22_ci_is_one_rule_and_never_skips_silently() {
    for (v, ci) in [
        (None, false),
        (Some(""), false),
        (Some("0"), false),
        (Some("false"), false),
        (Some("FALSE"), false),
        (Some("1"), true),
        (Some("true"), true),
        (Some("True"), true),
        (Some("yes"), true),
    ] {
        assert_eq!(common::ci_value_is_ci(v), ci, "CI={v:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("skipped-tests.txt");
    let under_ci = std::panic::catch_unwind(|| common::skip_as(true, "t", "no tool", &list));
    assert!(under_ci.is_err(), "a skip under CI did not fail");
    assert!(!list.exists(), "a failing skip was listed as a skip");
    common::skip_as(false, "some_test", "no tool", &list);
    let listed = std::fs::read_to_string(&list).unwrap();
    assert!(listed.contains("some_test: no tool"), "{listed}");
    assert!(common::skip_list().ends_with("target/skipped-tests.txt"));
}
