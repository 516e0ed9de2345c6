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

use footage::{Change, GpsFix, Key, Query, SegmentMeta, Store, StoreOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Fixtures every build must read: (directory under tests/fixtures, what wrote it).
const FIXTURES: &[&str] = &["v1"];

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
        encrypt: encrypted,
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
        ("time-first-hour", Query::new().from(T0).to(T0 + 60 * MINUTE)),
        ("time-all", Query::new().from(T0 - DAY).to(T0 + 10 * DAY)),
        ("near-westminster", Query::new().near(51.5080, -0.1247, 500.0)),
        ("bbox-manchester", Query::new().bbox(53.40, -2.30, 53.55, -2.15)),
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
    assert!(!out.exists(), "{} exists: never regenerate a fixture", out.display());
    // Written in a temporary directory first, so the paths inside are not this checkout's.
    let tmp = tempfile::tempdir().unwrap();
    for (sub, encrypted) in [("plain", false), ("encrypted", true)] {
        write_fixture_store(&tmp.path().join(sub), encrypted);
    }
    common::copy_dir(tmp.path(), &out);
}
