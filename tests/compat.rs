//! Format compatibility: stores written by an earlier build, kept under `tests/fixtures/`,
//! must open, verify clean and answer exactly as they did when they were written.
//!
//! Each fixture directory (`tests/fixtures/<name>/`) holds a plain store and an encrypted one
//! (`plain/`, `encrypted/`), each with its `store/` and a `cloud/` directory (the `file://`
//! cloud tier holding the evicted segment's copy and the published audit head), and a
//! `manifest.json` the generating build wrote: every live segment's SHA-256 and labels, its
//! GPS track, the answers to [`queries`], and the audit chain head. The fixture's
//! `policy.toml` names its cloud as `file://@CLOUD@`; the test copies the fixture to a
//! temporary directory and points it at the copy's cloud there.
//!
//! `generate_fixture` (ignored) writes a new fixture with the build it runs in: run it once
//! when a format changes, keep the old fixtures, and add the new directory to [`FIXTURES`].
//! Never regenerate an existing fixture: it stands for the stores already in the field.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use footage::{Change, GpsFix, Key, NewUpload, Query, SegmentMeta, Store, StoreOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Fixtures every build must read: (directory under tests/fixtures, what wrote it).
const FIXTURES: &[&str] = &["v1", "v2", "v3", "v4", "v5"];

/// The key of every encrypted fixture (committed on purpose: it protects test data only).
const FIXTURE_KEY: [u8; 32] = *b"footage-compat-fixture-key-00001";

/// The placeholder for the cloud directory in a fixture's policy.toml.
const CLOUD_PLACEHOLDER: &str = "@CLOUD@";

/// 2025-11-20T14:03:00Z.
const T0: i64 = 1_763_647_380_000_000;
const MINUTE: i64 = 60_000_000;
const DAY: i64 = 24 * 60 * MINUTE;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn options(encrypted: bool) -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 256 * 1024,
        key: encrypted.then(|| Key::from_bytes(FIXTURE_KEY)),
        ..StoreOptions::default()
    }
}

fn policy(cloud: &str) -> String {
    format!(
        r#"
[cloud]
url = "file://{cloud}"

[category.default]
upload = false
evict_after = "never"
delete_after = "never"

[category.evidential]
upload = true
evict_after = "never"
delete_after = "never"

[disk]
high_watermark = 1.0
"#
    )
}

/// The queries whose answers a fixture records, by name.
fn queries() -> Vec<(&'static str, Query)> {
    vec![
        ("officer-101", Query::new().officer("MET-000101")),
        ("officer-103", Query::new().officer("MET-000103")),
        ("device-ax2", Query::new().device("AX-2")),
        (
            "time-first-hour",
            Query::new().from(T0).to(T0 + 60 * MINUTE),
        ),
        ("time-all", Query::new().from(T0 - DAY).to(T0 + 10 * DAY)),
        (
            "near-westminster",
            Query::new().near(51.5080, -0.1247, 500.0),
        ),
        (
            "bbox-manchester",
            Query::new().bbox(53.40, -2.30, 53.55, -2.15),
        ),
        ("case-1", Query::new().case("CASE-1")),
        ("case-cad7", Query::new().case("CAD-7")),
        ("tag-patrol", Query::new().tag("patrol")),
        ("tag-reviewed", Query::new().tag("reviewed")),
        ("category-evidential", Query::new().category("evidential")),
    ]
}

fn sha_hex(b: &[u8]) -> String {
    footage::hex(&Sha256::digest(b))
}

fn track(start: i64, n: usize, lat: f64, lon: f64) -> Vec<GpsFix> {
    (0..n)
        .map(|i| {
            let d = i as f64 * 0.00002;
            GpsFix::from_degrees(start + i as i64 * 1_000_000, lat + d, lon - d).unwrap()
        })
        .collect()
}

fn meta(officer: &str, device: &str, start: i64, gps: Vec<GpsFix>, cats: &[&str]) -> SegmentMeta {
    SegmentMeta {
        officer: officer.into(),
        device: device.into(),
        start_us: start,
        end_us: start + 5 * MINUTE,
        gps,
        categories: cats.iter().map(|c| c.to_string()).collect(),
        tags: vec!["patrol".into()],
        ..SegmentMeta::default()
    }
}

/// Writes one fixture store (plain or encrypted) under `out` (`store/`, `cloud/`,
/// `manifest.json`) with this build.
fn write_fixture_store(out: &Path, encrypted: bool) {
    let root = out.join("store");
    let cloud = out.join("cloud");
    std::fs::create_dir_all(&cloud).unwrap();
    let store = Store::create_with(&root, &options(encrypted)).unwrap();
    std::fs::write(
        root.join("policy.toml"),
        policy(&cloud.display().to_string()),
    )
    .unwrap();
    let bytes = |seed: u64, len: usize| common::random_bytes(seed, len);
    let ingest = |m: SegmentMeta, data: &[u8]| store.ingest_bytes(m, data).unwrap().id;

    // Three segments on day 0, one of them with a long track (the track file).
    let a = ingest(
        meta(
            "MET-000101",
            "AX-1",
            T0,
            track(T0, 240, 51.5080, -0.1247),
            &["evidential"],
        ),
        &bytes(1, 150_000),
    );
    let b = ingest(
        meta(
            "MET-000102",
            "AX-2",
            T0 + 30 * MINUTE,
            track(T0 + 30 * MINUTE, 3, 53.4808, -2.2426),
            &[],
        ),
        &bytes(2, 70_000),
    );
    let c = ingest(
        meta("MET-000101", "AX-1", T0 + 2 * 60 * MINUTE, vec![], &[]),
        &bytes(3, 5_000),
    );
    store.checkpoint().unwrap();

    // Changes, some behind the first checkpoint and some after the last one (replayed).
    store.hold(a, "CASE-1", "sgt.jones").unwrap();
    store
        .change(b, &Change::AddCase("CAD-7".into()), "pc.smith")
        .unwrap();
    store
        .change(b, &Change::Tag("reviewed".into()), "pc.smith")
        .unwrap();
    store.categorize(b, "evidential", "pc.smith").unwrap();
    store.hold(b, "CASE-2", "sgt.jones").unwrap();
    store.release(b, "CASE-2", "insp.brown").unwrap();

    // Day 1: one segment uploaded and evicted (its bytes live only in the cloud), one
    // deleted.
    let d = ingest(
        meta(
            "MET-000103",
            "AX-3",
            T0 + DAY,
            track(T0 + DAY, 20, 51.5200, -0.1000),
            &["evidential"],
        ),
        &bytes(4, 130_000),
    );
    let e = ingest(
        meta("MET-000104", "AX-4", T0 + DAY + 10 * MINUTE, vec![], &[]),
        &bytes(5, 40_000),
    );
    store.checkpoint().unwrap();
    store.upload(d, "system", &mut |_| {}).unwrap();
    store.evict(d, "system").unwrap();
    store.delete(e, "system").unwrap();
    store
        .change(c, &Change::Untag("patrol".into()), "pc.smith")
        .unwrap();
    store
        .change(a, &Change::Tag("reviewed".into()), "pc.smith")
        .unwrap();

    // Since v1 (issues 11 and 12): a segment uploaded over tus in two requests (a short chunk
    // in the middle: commit record v2, an upload session file with its completed frame), an
    // upload still in progress (a session file with a progress frame), a segment evicted and
    // restored (a second commit record and a `restored` change record), and pins (change
    // records v3, checkpoint v3), some of them after the last checkpoint.
    let upload = |length: usize, m: SegmentMeta, actor: &str| {
        store
            .create_upload(
                NewUpload {
                    length: length as u64,
                    meta: m,
                    end_known: true,
                },
                actor,
            )
            .unwrap()
            .id
    };
    let patch = |id: &str, offset: usize, data: &[u8], actor: &str| {
        let mut p = store
            .upload_patch(id, offset as u64, actor, std::time::Duration::ZERO)
            .unwrap();
        p.write(data).unwrap();
        p.finish().unwrap()
    };
    let tus = upload(
        150_000,
        meta(
            "MET-000105",
            "AX-5",
            T0 + DAY + 40 * MINUTE,
            track(T0 + DAY + 40 * MINUTE, 5, 51.4545, -2.5879),
            &[],
        ),
        "dock-01",
    );
    let data = bytes(6, 150_000);
    patch(&tus, 0, &data[..100_000], "dock-01");
    let done = patch(&tus, 100_000, &data[100_000..], "dock-01");
    assert!(done.completed.is_some(), "the upload completed");
    let pending = upload(
        90_000,
        meta("MET-000106", "AX-6", T0 + DAY + 50 * MINUTE, vec![], &[]),
        "dock-02",
    );
    patch(&pending, 0, &bytes(7, 40_000), "dock-02");
    let f = ingest(
        meta("MET-000107", "AX-7", T0 + 2 * DAY, vec![], &["evidential"]),
        &bytes(8, 200_000),
    );
    store.upload(f, "system", &mut |_| {}).unwrap();
    store.evict(f, "system").unwrap();
    store.pin(a, Some(T0 + 400 * DAY), "sgt.jones").unwrap();
    store.checkpoint().unwrap();
    store.restore(f, "sgt.jones").unwrap();
    store.pin(f, None, "sgt.jones").unwrap();
    let head = store.publish_audit_head().unwrap();

    // The manifest: what this build answers.
    let mut segments = BTreeMap::new();
    for id in store.segment_ids() {
        let info = store.info(id).unwrap();
        let data = store.read_range(id, 0, info.bytes).unwrap();
        let fixes: Vec<[i64; 3]> = store
            .track(id)
            .unwrap()
            .iter()
            .map(|f| [f.time_us, i64::from(f.lat_e7), i64::from(f.lon_e7)])
            .collect();
        segments.insert(
            id.to_string(),
            json!({
                "sha256_read": sha_hex(&data),
                "info": serde_json::to_value(&info).unwrap(),
                "track": fixes,
            }),
        );
    }
    let mut finds = BTreeMap::new();
    for (name, q) in queries() {
        let ids: Vec<u64> = store
            .find_all(&q)
            .map(|r| r.unwrap().id)
            .collect::<Vec<_>>();
        finds.insert(name.to_string(), json!(ids));
    }
    let (count, hash) = store.audit_head();
    let entries: Vec<Value> = store
        .audit_entries(None, None)
        .unwrap()
        .iter()
        .map(|e| json!({"index": e.index, "actor": e.actor, "action": e.action, "segment": e.segment, "hash": footage::hex(&e.hash)}))
        .collect();
    let manifest = json!({
        "encrypted": encrypted,
        "written_by": env!("CARGO_PKG_VERSION"),
        "store_id": store.config().store_id,
        "segments": segments,
        "deleted": [e],
        "evicted": [d],
        "restored": [f],
        "upload_in_progress": {"id": pending, "offset": 40_000},
        "finds": finds,
        "audit": {"count": count, "hash": footage::hex(&hash), "published": head.count, "entries": entries},
    });
    // No close: the log after the last checkpoint stays to be replayed, as after a crash.
    drop(store);
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap() + "\n",
    )
    .unwrap();
    std::fs::write(root.join("policy.toml"), policy(CLOUD_PLACEHOLDER)).unwrap();
}

/// Writes a new fixture with this build. Run once, by hand, when a format changes:
/// `FOOTAGE_FIXTURE=v2 cargo test --test compat generate_fixture -- --ignored`.
#[test]
#[ignore]
fn generate_fixture() {
    let name = std::env::var("FOOTAGE_FIXTURE").expect("set FOOTAGE_FIXTURE=<new fixture name>");
    let out = fixtures_dir().join(&name);
    assert!(
        !out.exists(),
        "{} exists: never regenerate a fixture",
        out.display()
    );
    // Written in a temporary directory first, so the paths inside are not this checkout's.
    let tmp = tempfile::tempdir().unwrap();
    for (sub, encrypted) in [("plain", false), ("encrypted", true)] {
        write_fixture_store(&tmp.path().join(sub), encrypted);
    }
    common::copy_dir(tmp.path(), &out);
}

/// A copy of fixture store `sub` of `name` in `tmp`, its policy pointing at the copy's cloud.
fn copy_fixture(name: &str, sub: &str, tmp: &Path) -> (PathBuf, Value) {
    let src = fixtures_dir().join(name).join(sub);
    let dst = tmp.join(sub);
    common::copy_dir(&src, &dst);
    let root = dst.join("store");
    let cloud = dst.join("cloud");
    let policy = std::fs::read_to_string(root.join("policy.toml")).unwrap();
    assert!(
        policy.contains(CLOUD_PLACEHOLDER),
        "{name}/{sub}: policy.toml"
    );
    std::fs::write(
        root.join("policy.toml"),
        policy.replace(CLOUD_PLACEHOLDER, &cloud.display().to_string()),
    )
    .unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    (root, manifest)
}

/// The fields of a segment's `info` a fixture fixes (later builds may add others).
const INFO_FIELDS: &[&str] = &[
    "id",
    "officer",
    "device",
    "start",
    "end",
    "bytes",
    "sha256",
    "categories",
    "cases",
    "tags",
    "holds",
    "gps_fixes",
    "tier",
    "ingested",
    // Since v2 (absent, so null, in v1's manifest).
    "pinned_until",
];

fn check_fixture(name: &str, sub: &str) {
    let ctx = format!("fixture {name}/{sub}");
    let tmp = tempfile::tempdir().unwrap();
    let (root, m) = copy_fixture(name, sub, tmp.path());
    let encrypted = m["encrypted"].as_bool().unwrap();
    if encrypted {
        // Without its key an encrypted fixture refuses to open.
        let e = Store::open_with(&root, &options(false));
        assert!(e.is_err(), "{ctx}: opened without its key");
    }
    let store = Store::open_with(&root, &options(encrypted))
        .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
    assert_eq!(store.config().store_id, m["store_id"].as_str().unwrap());
    assert_eq!(store.config().encrypted(), encrypted, "{ctx}");

    // Verify, with every cloud copy, finds nothing.
    let report = store
        .verify_with(
            None,
            footage::VerifyOptions {
                cloud: true,
                repair: false,
            },
            |_| {},
        )
        .unwrap_or_else(|e| panic!("{ctx}: verify failed: {e}"));
    common::assert_verify_clean(&report, &ctx);
    let segments = m["segments"].as_object().unwrap();
    assert_eq!(report.checked, segments.len(), "{ctx}");
    assert!(report.cloud_checked >= 1, "{ctx}: no cloud copy checked");

    // The same segments, bytes, labels, holds and tracks.
    let ids: Vec<String> = store.segment_ids().iter().map(u64::to_string).collect();
    let mut want_ids: Vec<String> = segments.keys().cloned().collect();
    want_ids.sort_by_key(|s| s.parse::<u64>().unwrap());
    assert_eq!(ids, want_ids, "{ctx}: segment ids");
    for (id, want) in segments {
        let id_n: u64 = id.parse().unwrap();
        let info = serde_json::to_value(store.info(id_n).unwrap()).unwrap();
        for f in INFO_FIELDS {
            assert_eq!(info[f], want["info"][f], "{ctx}: segment {id} {f}");
        }
        let data = store.read_range(id_n, 0, u64::MAX).unwrap();
        assert_eq!(
            sha_hex(&data),
            want["sha256_read"].as_str().unwrap(),
            "{ctx}: bytes of segment {id}"
        );
        assert_eq!(sha_hex(&data), info["sha256"].as_str().unwrap(), "{ctx}");
        let fixes: Vec<[i64; 3]> = store
            .track(id_n)
            .unwrap()
            .iter()
            .map(|f| [f.time_us, i64::from(f.lat_e7), i64::from(f.lon_e7)])
            .collect();
        assert_eq!(json!(fixes), want["track"], "{ctx}: track of segment {id}");
    }
    for id in m["evicted"].as_array().unwrap() {
        let info = store.info(id.as_u64().unwrap()).unwrap();
        assert_eq!(
            info.tier,
            footage::TierState::Cloud,
            "{ctx}: evicted segment {id}"
        );
    }
    // Since v2: an upload session the build left in progress is still resumable at its
    // offset (unless it has expired since: then it is gone, and verify above was clean).
    if let Some(u) = m.get("upload_in_progress") {
        let id = u["id"].as_str().unwrap();
        if let Some(s) = store.uploads().into_iter().find(|s| s.id == id) {
            assert_eq!(
                s.offset,
                u["offset"].as_u64().unwrap(),
                "{ctx}: upload {id}"
            );
        }
    }
    for id in m["deleted"].as_array().unwrap() {
        let e = store.info(id.as_u64().unwrap()).unwrap_err();
        assert!(
            matches!(e, footage::Error::NotFound(_)),
            "{ctx}: deleted segment {id}: {e}"
        );
    }

    // The same find answers.
    for (qname, q) in queries() {
        let got: Vec<u64> = store.find_all(&q).map(|r| r.unwrap().id).collect();
        assert_eq!(json!(got), m["finds"][qname], "{ctx}: find {qname}");
    }

    // The audit chain: intact, the same entries, and the head published to the cloud found.
    let audit = store.audit_verify().unwrap();
    assert!(audit.ok, "{ctx}: audit: {:?}", audit.problems);
    let entries = store.audit_entries(None, None).unwrap();
    let want = m["audit"]["entries"].as_array().unwrap();
    assert!(entries.len() >= want.len(), "{ctx}: audit entries lost");
    for (got, want) in entries.iter().zip(want) {
        assert_eq!(
            json!({"index": got.index, "actor": got.actor, "action": got.action, "segment": got.segment, "hash": footage::hex(&got.hash)}),
            *want,
            "{ctx}: audit entry"
        );
    }
    let (head, problem) = store.audit_check_cloud().unwrap();
    assert_eq!(
        head.map(|h| h.count),
        m["audit"]["published"].as_u64(),
        "{ctx}"
    );
    assert_eq!(problem, None, "{ctx}: audit against the cloud");

    // A hold from the fixture still holds.
    let held: Vec<u64> = segments
        .iter()
        .filter(|(_, s)| s["info"]["holds"].as_array().is_some_and(|h| !h.is_empty()))
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    assert!(!held.is_empty(), "{ctx}: the fixture has no hold");
    for id in held {
        assert!(
            store.delete(id, "compat").is_err(),
            "{ctx}: held segment {id} deleted"
        );
    }
    // And the store takes new footage.
    let new = store
        .ingest_bytes(
            meta("MET-000201", "AX-9", T0 + 3 * DAY, vec![], &[]),
            &common::random_bytes(9, 90_000),
        )
        .unwrap();
    assert_eq!(
        store.read_range(new.id, 0, u64::MAX).unwrap(),
        common::random_bytes(9, 90_000)
    );
    // An upload the earlier build left in progress (since v2, while its session has not
    // expired): this build completes it. The chunks it adds keep the form of the ones the
    // earlier build wrote (plain before commit record version 3), and the segment reads back
    // whole and verified.
    let pending = m.get("upload_in_progress").and_then(|u| u["id"].as_str());
    if let Some(id) = pending.filter(|id| store.uploads().iter().any(|s| s.id == *id)) {
        // This build completes it: the chunks it adds keep the form of the ones the
        // earlier build wrote (plain before commit record version 3), and the segment
        // reads back whole and verified.
        let mut want = common::random_bytes(7, 40_000);
        let rest = common::random_bytes(70, 50_000);
        let mut p = store
            .upload_patch(id, 40_000, "dock-02", std::time::Duration::ZERO)
            .unwrap_or_else(|e| panic!("{ctx}: resume upload {id}: {e:?}"));
        p.write(&rest).unwrap();
        let done = p.finish().unwrap();
        let seg = done.completed.expect("the upload completed");
        want.extend_from_slice(&rest);
        let got = store.read_range(seg.id, 0, u64::MAX).unwrap();
        assert!(got == want, "{ctx}: bytes of the completed upload {id}");
        for offset in [0, 39_990, 40_000, 65_000, 89_999] {
            let got = store.read_range(seg.id, offset, 10).unwrap();
            let end = (offset as usize + 10).min(want.len());
            assert_eq!(got, want[offset as usize..end], "{ctx}: at {offset}");
        }
    }
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), &ctx);
}

/// Issue 10 item 23: every fixture, plain and encrypted, opens, verifies clean (cloud copies
/// included) and answers exactly as the build that wrote it did.
#[test]
fn item23_stores_written_by_earlier_builds_open_verify_and_answer_the_same() {
    for name in FIXTURES {
        for sub in ["plain", "encrypted"] {
            check_fixture(name, sub);
        }
    }
}
