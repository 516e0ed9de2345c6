//! Scrubbing and repair: bit flips found by the background scrub, repaired byte-identically
//! from verified cloud copies (file:// tier) and reported otherwise; the scrub's cursor
//! surviving a restart; `verify --cloud` finding damaged cloud copies; crashes at every
//! repair fail point leaving a consistent store that a rerun repairs.

#[path = "common/damage.rs"]
mod damage;
#[path = "common/verify.rs"]
mod verify_report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use damage::*;
use footage::{ScrubOptions, Store, VerifyOptions};

const ACTOR: &str = "sgt.test";

fn ingest(store: &Store, i: u64, len: usize, evidential: bool) -> (u64, Vec<u8>) {
    let data = bytes(i, len);
    let c = store.ingest_bytes(meta(i, evidential), &data).unwrap();
    if evidential {
        assert!(store.upload(c.id, ACTOR, &mut |_| {}).unwrap());
    }
    (c.id, data)
}

fn actions(store: &Store, id: u64) -> Vec<String> {
    store
        .audit_entries(Some(id), None)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[test]
fn scrub_repairs_uploaded_segments_byte_identically_and_reports_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cloud) = (dir.path().join("s"), dir.path().join("cloud"));
    let store = open(&root, &cloud, &["data"]);
    let dirs = vec![root.join("data")];
    let (a, da) = ingest(&store, 1, 300_000, true); // chunk payload rot
    let (b, db) = ingest(&store, 2, 200_000, true); // chunk header rot
    let (c, dc) = ingest(&store, 3, 250_000, false); // no cloud copy
    let (d, dd) = ingest(&store, 4, 150_000, true); // left alone
    rot_chunk(&dirs, a, 1, 777);
    rot_chunk(&dirs, a, 3, 5);
    let (vb, pb) = find_chunk(&dirs, b, 0);
    flip(&vb, pb + 9); // the header's `len`
    rot_chunk(&dirs, c, 2, 100);

    let scrub = store
        .start_scrub(ScrubOptions {
            bytes_per_sec: 1 << 30,
            pass_pause: Duration::from_secs(3600),
            ..ScrubOptions::default()
        })
        .unwrap();
    wait_until(120, || scrub.status().passes_done >= 1);
    let status = scrub.stop();
    assert_eq!(status.checked, 4, "{status:?}");
    assert_eq!((status.corrupt, status.repaired), (3, 2), "{status:?}");

    // Repaired byte for byte: the SHA-256 recorded at ingest matches again.
    for (id, data) in [(a, &da), (b, &db), (d, &dd)] {
        let back = read_all(&store, id).unwrap();
        assert_eq!(sha(&back), sha(data), "segment {id}");
        assert_eq!(
            footage::hex(&sha(&back)),
            store.info(id).unwrap().sha256_hex()
        );
    }
    // The segment without a cloud copy is reported, never deleted or changed.
    let err = read_all(&store, c).unwrap_err();
    assert!(matches!(err, footage::Error::SegmentCorrupt { segment, .. } if segment == c));
    let findings = store.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].segment, c);
    assert!(!findings[0].cloud_copy);
    assert!(actions(&store, a).contains(&"corruption".to_string()));
    assert!(actions(&store, a).contains(&"repair".to_string()));
    assert!(actions(&store, b).contains(&"repair".to_string()));
    assert!(actions(&store, c).contains(&"corruption".to_string()));
    assert!(!actions(&store, c).contains(&"repair".to_string()));
    assert!(!actions(&store, d).contains(&"corruption".to_string()));
    let stats = store.stats().unwrap();
    assert_eq!(stats.scrub.corrupt_segments, 1);
    assert_eq!(stats.scrub.repaired_total, 2);
    assert_eq!(stats.scrub.findings[0].id, c.to_string());

    // verify agrees, and the finding survives a reopen; the data of c is untouched.
    let v = store.verify(None, |_| {}).unwrap();
    verify_report::assert_verify_only_corrupt(&v, &[c], "verify after the scrub");
    drop(store);
    let store = footage::testing::open_or_create_default(&root).unwrap();
    assert_eq!(store.findings().len(), 1);
    assert_eq!(store.scrub_summary().findings[0].id, c.to_string());
    assert_eq!(store.info(c).unwrap().bytes, dc.len() as u64);
    assert!(store.audit_verify().unwrap().problems.is_empty());
}

#[test]
fn scrub_makes_progress_at_a_limited_rate_and_resumes_from_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cloud) = (dir.path().join("s"), dir.path().join("cloud"));
    let store = open(&root, &cloud, &["data"]);
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(ingest(&store, 100 + i, 64_000, false).0);
    }
    // ~1.5 MB at 256 KB/s: several seconds, so it is stopped part-way.
    let opts = ScrubOptions {
        bytes_per_sec: 256 << 10,
        pass_pause: Duration::from_secs(3600),
        ..ScrubOptions::default()
    };
    let scrub = store.start_scrub(opts.clone()).unwrap();
    assert!(
        store.start_scrub(opts.clone()).is_err(),
        "one scrub per store"
    );
    wait_until(120, || scrub.status().cursor >= ids[3]);
    let first_run = scrub.stop();
    assert_eq!(first_run.first, Some(ids[0]));
    let cursor = store.scrub_summary().cursor;
    assert!(cursor >= ids[3], "{first_run:?}");
    assert_eq!(store.scrub_summary().pass, 1);
    drop(store);

    // A new process (reopen) resumes after the saved cursor, then finishes the pass.
    let store = footage::testing::open_or_create_default(&root).unwrap();
    assert_eq!(store.scrub_summary().cursor, cursor);
    let scrub = store.start_scrub(opts).unwrap();
    wait_until(120, || scrub.status().passes_done >= 1);
    let second = scrub.stop();
    let next = *ids.iter().find(|&&id| id > cursor).unwrap();
    assert_eq!(second.first, Some(next), "{second:?}");
    assert_eq!(
        second.checked as usize,
        ids.iter().filter(|&&id| id > cursor).count()
    );
    let summary = store.scrub_summary();
    assert_eq!((summary.pass, summary.cursor), (2, 0));
    assert!(summary.last_pass_done.is_some());
}

fn verify_cloud(store: &Store) -> footage::VerifyReport {
    store
        .verify_with(
            None,
            VerifyOptions {
                cloud: true,
                repair: false,
            },
            |_| {},
        )
        .unwrap()
}

#[test]
fn verify_cloud_finds_a_deleted_part_a_flipped_byte_and_a_bad_meta() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cloud) = (dir.path().join("s"), dir.path().join("cloud"));
    let store = open(&root, &cloud, &["data"]);
    let ids: Vec<u64> = (0..4)
        .map(|i| ingest(&store, 200 + i, 100_000 + i as usize * 1000, true).0)
        .collect();
    let local = ingest(&store, 300, 50_000, false).0;
    let v = verify_cloud(&store);
    assert_eq!(v.cloud_checked, 4);
    verify_report::assert_verify_clean(&v, "verify --cloud");

    std::fs::remove_file(cloud_dir(&store, &cloud, ids[0]).join("part-00000")).unwrap();
    flip(
        &cloud_dir(&store, &cloud, ids[1]).join("part-00000"),
        12_345,
    );
    std::fs::write(
        cloud_dir(&store, &cloud, ids[2]).join("meta.json"),
        b"{\"format\":",
    )
    .unwrap();
    let v = verify_cloud(&store);
    // Local copies are fine: only the cloud is reported.
    verify_report::assert_verify_only_cloud(
        &v,
        &[
            (ids[0].to_string(), "missing_part"),
            (ids[1].to_string(), "bad_part"),
            (ids[2].to_string(), "bad_meta"),
        ],
        "verify --cloud",
    );
    assert!(!v.cloud_problems.iter().any(|p| p.id == local.to_string()));
    drop(store);

    // The command: JSON on stdout, exit 1, the ids on stderr.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
        .args(["--store", root.to_str().unwrap(), "verify", "--cloud"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cloud_problems"].as_array().unwrap().len(), 3);
    assert_eq!(
        verify_report::verify_json_findings(&json),
        ["cloud_problems"],
        "{json}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 cloud copies are missing or damaged"),
        "{err}"
    );
}

const FAIL_POINTS: &[&str] = &[
    "repair.fetched",
    "repair.torn",
    "repair.torn@2",
    "repair.written",
    "repair.checked",
];

/// A store with one uploaded segment rotted in two chunks and one untouched segment.
fn rotted_store(root: &Path, cloud: &Path) -> (u64, Vec<u8>, u64, Vec<u8>) {
    let store = open(root, cloud, &["data"]);
    let (a, da) = ingest(&store, 1, 400_000, true);
    let (b, db) = ingest(&store, 2, 120_000, false);
    store.close().unwrap();
    let dirs: Vec<PathBuf> = vec![root.join("data")];
    rot_chunk(&dirs, a, 1, 10);
    rot_chunk(&dirs, a, 4, 20_000);
    (a, da, b, db)
}

#[test]
fn a_crash_at_every_repair_fail_point_leaves_a_consistent_store_that_a_rerun_repairs() {
    for point in FAIL_POINTS {
        let dir = tempfile::tempdir().unwrap();
        let (root, cloud) = (dir.path().join("s"), dir.path().join("cloud"));
        let (a, da, b, db) = rotted_store(&root, &cloud);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
            .args(["--store", root.to_str().unwrap(), "verify", "--repair"])
            .env("FOOTAGE_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(
            !out.status.success() && out.status.code().is_none(),
            "{point}: the process should abort: {out:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("failpoint"), "{point}: {err}");

        // After the crash: opens, the other segment is intact, the rotted one is either still
        // reported corrupt or whole (never other bytes).
        let store = footage::testing::open_or_create_default(&root).unwrap();
        assert_eq!(read_all(&store, b).unwrap(), db, "{point}");
        match read_all(&store, a) {
            Ok(back) => assert_eq!(sha(&back), sha(&da), "{point}"),
            Err(e) => assert!(
                matches!(e, footage::Error::SegmentCorrupt { .. }),
                "{point}: {e}"
            ),
        }
        assert!(store.audit_verify().unwrap().problems.is_empty(), "{point}");
        drop(store);

        // A rerun repairs.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
            .args(["--store", root.to_str().unwrap(), "verify", "--repair"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{point}: {out:?}");
        let store = footage::testing::open_or_create_default(&root).unwrap();
        assert_eq!(sha(&read_all(&store, a).unwrap()), sha(&da), "{point}");
        assert!(store.findings().is_empty(), "{point}");
        let v = store.verify(None, |_| {}).unwrap();
        verify_report::assert_verify_clean(&v, point);
    }
}

#[test]
fn the_scrub_command_runs_a_pass_reports_and_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cloud) = (dir.path().join("s"), dir.path().join("cloud"));
    let store = open(&root, &cloud, &["data"]);
    let (a, da) = ingest(&store, 1, 200_000, true);
    let (c, _) = ingest(&store, 2, 100_000, false);
    store.close().unwrap();
    let scrub = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
            .args(["--store", root.to_str().unwrap(), "scrub"])
            .args(args)
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), json)
    };
    let (code, json) = scrub(&[]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["run"]["checked"], 2);
    assert_eq!(json["store"]["pass"], 2);

    let dirs = vec![root.join("data")];
    rot_chunk(&dirs, a, 2, 3);
    rot_chunk(&dirs, c, 0, 3);
    let (code, json) = scrub(&["--rate", "100MB/s"]);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(
        (
            json["run"]["corrupt"].as_u64(),
            json["run"]["repaired"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(json["store"]["corrupt_segments"], 1);
    assert_eq!(json["store"]["findings"][0]["id"], c.to_string());
    let store = footage::testing::open_or_create_default(&root).unwrap();
    assert_eq!(sha(&read_all(&store, a).unwrap()), sha(&da));
    let stats = store.stats().unwrap();
    assert_eq!(stats.scrub.corrupt_segments, 1);
    assert_eq!(stats.scrub.pass, 3);
}
