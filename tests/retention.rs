//! Retention and the cloud tier through `file://`: policy decisions with a simulated clock,
//! holds, read-through of evicted segments, failures part-way, and recovery from the cloud.

mod common;

use common::{random_bytes, small_options};
use footage::{GpsFix, Query, SegmentMeta, Store};
use std::path::Path;

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_759_276_800_000_000; // 2025-10-01T00:00:00Z

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

[category.scratch]
upload = false
evict_after = "1d"
delete_after = "1d"

[disk]
high_watermark = 1.0
"#;

fn open(dir: &Path, cloud: &Path) -> Store {
    let store = footage::testing::open_or_create_with(dir, &small_options()).unwrap();
    let url = format!("file://{}", cloud.display());
    std::fs::write(dir.join("policy.toml"), POLICY.replace("CLOUD", &url)).unwrap();
    store
}

fn meta(officer: &str, start: i64, categories: &[&str]) -> SegmentMeta {
    SegmentMeta {
        officer: officer.into(),
        device: format!("AX-{officer}"),
        start_us: start,
        end_us: start + 600_000_000,
        gps: vec![GpsFix::from_degrees(start, 51.508, -0.1247).unwrap()],
        categories: categories.iter().map(|c| c.to_string()).collect(),
        ..SegmentMeta::default()
    }
}

fn tier(store: &Store, id: u64) -> String {
    store.info(id).unwrap().tier.to_string()
}

#[test]
fn policy_decides_uploads_evictions_and_deletions_and_holds_win() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let store = open(&dir.path().join("s"), &cloud);
    let mut ids = Vec::new();
    let cats: [&[&str]; 6] = [
        &[],
        &["evidential"],
        &["traffic"],
        &["scratch"],
        &["scratch", "evidential"],
        &["mystery"],
    ];
    let mut data = Vec::new();
    for (i, c) in cats.iter().enumerate() {
        let bytes = random_bytes(i as u64, 150_000 + i * 7_000);
        ids.push(
            store
                .ingest_bytes(meta(&format!("MET-{i}"), T0, c), &bytes)
                .unwrap()
                .id,
        );
        data.push(bytes);
    }
    let [plain, evidential, traffic, scratch, both, mystery] = ids[..] else {
        unreachable!()
    };
    store.hold(plain, "OP-1", "sgt").unwrap();
    let actor = "retention-test";
    let end = T0 + 600_000_000;

    // Day 0.5: uploads only (evidential, traffic, both); nothing is old enough for more.
    let s = store
        .retention_apply(end + DAY / 2, false, actor, &mut |_| {})
        .unwrap();
    assert_eq!(
        (s.uploaded, s.evicted, s.deleted, s.held),
        (3, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(tier(&store, traffic), "local+cloud");
    assert_eq!(tier(&store, plain), "local");
    // A dry run changes nothing.
    let dry = store
        .retention_apply(end + 3 * DAY, true, actor, &mut |_| {})
        .unwrap();
    assert_eq!((dry.evicted, dry.deleted), (1, 1), "{dry:?}");
    assert_eq!(tier(&store, traffic), "local+cloud");
    assert!(store.info(scratch).is_ok());

    // Day 3: traffic evicted (2d), scratch deleted (1d); `both` keeps evidential's terms.
    let s = store
        .retention_apply(end + 3 * DAY, false, actor, &mut |_| {})
        .unwrap();
    assert_eq!((s.uploaded, s.evicted, s.deleted), (0, 1, 1), "{s:?}");
    assert!(s.bytes_reclaimed >= 150_000, "{s:?}");
    assert_eq!(tier(&store, traffic), "cloud");
    assert!(store.info(scratch).is_err());
    assert_eq!(tier(&store, both), "local+cloud");
    // Read-through: whole and ranges, byte-identical.
    assert_eq!(store.read_range(traffic, 0, u64::MAX).unwrap(), data[2]);
    for (off, len) in [(0, 1), (65_000, 70_000), (150_000 + 2 * 7_000 - 5, 100)] {
        let want = &data[2][off as usize..(off as usize + len).min(data[2].len())];
        assert_eq!(store.read_range(traffic, off, len as u64).unwrap(), want);
    }

    // Day 32: plain is past delete_after but held; mystery (default terms) goes; evidential
    // and both are evicted.
    let s = store
        .retention_apply(end + 32 * DAY, false, actor, &mut |_| {})
        .unwrap();
    assert_eq!((s.evicted, s.deleted, s.held), (2, 1, 1), "{s:?}");
    assert!(store.info(mystery).is_err());
    assert_eq!(tier(&store, plain), "local");
    assert_eq!(store.read_range(evidential, 0, u64::MAX).unwrap(), data[1]);
    // The plan shows what comes next, holds included.
    let plan = store.retention_plan(end + 32 * DAY, 100).unwrap();
    assert!(plan
        .iter()
        .any(|p| p.id == traffic.to_string() && p.action == "delete"));
    assert!(plan
        .iter()
        .any(|p| p.id == plain.to_string() && p.action == "held"));

    // After release, the held segment goes at the next apply; deletion also removes the
    // cloud copy and the index entry.
    store.release(plain, "OP-1", "sgt").unwrap();
    let s = store
        .retention_apply(end + 100 * DAY, false, actor, &mut |_| {})
        .unwrap();
    assert_eq!((s.deleted, s.held), (2, 0), "{s:?}");
    assert!(store.info(plain).is_err() && store.info(traffic).is_err());
    let left: Vec<u64> = store
        .find(&Query::new())
        .unwrap()
        .results
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, vec![evidential, both]);
    let traffic_dir = walk(&cloud)
        .into_iter()
        .filter(|p| p.is_file() && p.to_string_lossy().contains(&format!("{traffic:020}")))
        .count();
    assert_eq!(
        traffic_dir, 0,
        "the cloud copy of a deleted segment must go"
    );
    // Everything survives a reopen, and verify (which reads evicted segments from the cloud)
    // passes.
    let root = dir.path().join("s");
    store.close().unwrap();
    let store = footage::testing::open_or_create_with(&root, &small_options()).unwrap();
    assert_eq!(tier(&store, evidential), "cloud");
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after retention");
    assert_eq!(store.read_range(both, 0, u64::MAX).unwrap(), data[4]);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn a_failing_cloud_loses_nothing_and_the_next_apply_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    // The cloud is a file where a directory should be: every upload fails.
    std::fs::write(&cloud, b"not a directory").unwrap();
    let root = dir.path().join("s");
    let store = open(&root, &cloud);
    let data = random_bytes(9, 400_000);
    let id = store
        .ingest_bytes(meta("MET-1", T0, &["traffic"]), &data)
        .unwrap()
        .id;
    let now = T0 + 10 * DAY;
    let s = store.retention_apply(now, false, "t", &mut |_| {}).unwrap();
    assert_eq!((s.uploaded, s.evicted), (0, 0));
    assert_eq!(s.failed.len(), 1, "{s:?}");
    assert_eq!(tier(&store, id), "local");
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    assert!(
        store.evict(id, "t").is_err(),
        "no eviction without a verified copy"
    );
    // A partial upload (one part written, no meta.json) is resumed and verified.
    std::fs::remove_file(&cloud).unwrap();
    let s = store.retention_apply(now, false, "t", &mut |_| {}).unwrap();
    assert_eq!((s.uploaded, s.evicted), (1, 1), "{s:?}");
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    // A corrupted cloud copy is never served: the block CRC catches it.
    let part = walk(&cloud)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "part-00000"))
        .unwrap();
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[1234] ^= 1;
    std::fs::write(&part, bytes).unwrap();
    drop(store);
    let store = footage::testing::open_or_create_with(&root, &small_options()).unwrap();
    let e = store.read_range(id, 0, 10).unwrap_err().to_string();
    assert!(
        e.contains(&format!("segment {id}")) && e.contains("CRC"),
        "{e}"
    );
}

#[test]
fn a_lost_store_is_rebuilt_from_the_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let store = open(&dir.path().join("s"), &cloud);
    let a = random_bytes(1, 300_000);
    let ida = store
        .ingest_bytes(meta("MET-1", T0, &["evidential"]), &a)
        .unwrap()
        .id;
    store
        .ingest_bytes(meta("MET-2", T0, &[]), b"not uploaded")
        .unwrap();
    store.hold(ida, "OP-7", "sgt").unwrap();
    let s = store
        .retention_apply(T0 + DAY, false, "t", &mut |_| {})
        .unwrap();
    assert_eq!(s.uploaded, 1);
    drop(store);
    // The station server is lost; a new one recovers from the bucket.
    let url = format!("file://{}", cloud.display());
    let (new, report) = Store::recover_from_cloud(
        &dir.path().join("new"),
        &url,
        None,
        &small_options(),
        "it-recovery",
    )
    .unwrap();
    assert_eq!(report.recovered, 1);
    let info = new.info(ida).unwrap();
    assert_eq!(
        (info.tier, info.officer.as_str()),
        (footage::TierState::Cloud, "MET-1")
    );
    assert_eq!(info.holds, ["OP-7"]);
    assert_eq!(new.read_range(ida, 0, u64::MAX).unwrap(), a);
    assert_eq!(
        new.find(&Query::new().near(51.508, -0.1247, 10.0))
            .unwrap()
            .results
            .len(),
        1
    );
    // Recovery never overwrites an existing store.
    assert!(
        Store::recover_from_cloud(&dir.path().join("s"), &url, None, &small_options(), "x")
            .is_err()
    );
}

#[test]
fn compaction_moves_live_data_out_of_mostly_dead_volumes_under_open_readers() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let store = open(&root, &dir.path().join("cloud"));
    let policy = std::fs::read_to_string(root.join("policy.toml")).unwrap();
    std::fs::write(
        root.join("policy.toml"),
        policy.replace(
            "high_watermark = 1.0",
            "high_watermark = 1.0\ncompact_below_live = 0",
        ),
    )
    .unwrap();
    let mut data = Vec::new();
    for n in 0..12 {
        let bytes = random_bytes(n, 120_000 + n as usize * 5_000);
        let cats: &[&str] = if n % 3 == 0 { &[] } else { &["scratch"] };
        let id = store
            .ingest_bytes(meta(&format!("MET-{n}"), T0 + n as i64, cats), &bytes)
            .unwrap()
            .id;
        data.push((id, cats.is_empty(), bytes));
        // An interrupted delivery: dead chunks nobody will punch.
        let mut w = store
            .begin_segment(meta("MET-X", T0 + n as i64, &[]))
            .unwrap();
        w.write(&random_bytes(100 + n, 150_000)).unwrap();
        drop(w);
    }
    // Scratch footage goes after a day: punched in place.
    let s = store
        .retention_apply(T0 + 2 * DAY, false, "t", &mut |_| {})
        .unwrap();
    assert_eq!((s.deleted, s.compacted), (8, 0), "{s:?}");
    let (keep_id, _, keep_bytes) = data.iter().find(|d| d.1).cloned().unwrap();
    let mut reader = store.open_segment(keep_id).unwrap();
    let mut first = vec![0u8; 70_000];
    reader.read_exact(&mut first).unwrap();
    let before = store.stats().unwrap();
    let dead_before: u64 = before.volume_list.iter().map(|v| v.dead_bytes).sum();
    assert!(dead_before > 1 << 20, "{:?}", before.volume_list);
    let c = store.compact(0.3, "t").unwrap();
    assert!(c.volumes >= 1 && c.bytes_reclaimed > 0, "{c:?}");
    assert!(c.failed.is_empty(), "{c:?}");
    // The reader opened before the move goes on with the same bytes.
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    first.extend(rest);
    assert_eq!(first, keep_bytes);
    let after = store.stats().unwrap();
    let on_disk = |s: &footage::Stats| s.volume_list.iter().map(|v| v.allocated_bytes).sum::<u64>();
    assert!(on_disk(&after) < on_disk(&before));
    let live: u64 = after.volume_list.iter().map(|v| v.live_bytes).sum();
    let kept: Vec<_> = data.iter().filter(|d| d.1).collect();
    assert_eq!(live, kept.iter().map(|d| d.2.len() as u64).sum::<u64>());
    for (id, _, bytes) in &kept {
        assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), bytes);
    }
    // Nothing left worth compacting: a second run rewrites nothing.
    assert_eq!(store.compact(0.3, "t").unwrap().volumes, 0);
    drop(reader);
    store.close().unwrap();
    let store = footage::testing::open_or_create_with(&root, &small_options()).unwrap();
    assert_eq!(store.len(), kept.len());
    common::assert_verify_clean(&store.verify(None, |_| {}).unwrap(), "after retention");
    for (id, _, bytes) in &kept {
        assert_eq!(&store.read_range(*id, 0, u64::MAX).unwrap(), bytes);
    }
    drop(store);
    // The command line: a bad fraction is refused before anything runs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
        .arg("--store")
        .arg(&root)
        .args(["--actor", "t", "compact", "--min-dead", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
        .arg("--store")
        .arg(&root)
        .args(["--actor", "t", "compact", "--min-dead", "0.5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["volumes"], 0, "{v}");
}

#[test]
fn background_retention_runs_on_its_own_records_errors_and_stops() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let cloud = dir.path().join("cloud");
    // The cloud is a file: every upload fails, and the runs must say so.
    std::fs::write(&cloud, b"not a directory").unwrap();
    let store = open(&root, &cloud);
    let scratch = store
        .ingest_bytes(meta("MET-1", T0, &["scratch"]), b"old scratch footage")
        .unwrap()
        .id;
    let traffic = store
        .ingest_bytes(meta("MET-2", T0, &["traffic"]), &random_bytes(3, 100_000))
        .unwrap()
        .id;
    let clock: std::sync::Arc<dyn Fn() -> i64 + Send + Sync> = std::sync::Arc::new(|| T0 + 3 * DAY);
    let opts = footage::RetentionOptions {
        interval: Duration::from_millis(20),
        actor: "bg-retention".into(),
        clock: Some(clock),
    };
    let handle = store.start_retention(opts.clone()).unwrap();
    assert!(handle.wait_for_runs(2, Duration::from_secs(120)), "no runs");
    handle.stop();
    assert!(
        store.info(scratch).is_err(),
        "scratch footage must be deleted"
    );
    assert_eq!(tier(&store, traffic), "local");
    let entries = store.audit_entries(None, None).unwrap();
    let by_bg: Vec<&str> = entries
        .iter()
        .filter(|e| e.actor == "bg-retention")
        .map(|e| e.action.as_str())
        .collect();
    assert!(by_bg.contains(&"delete"), "{by_bg:?}");
    assert!(by_bg.contains(&"retention-error"), "{by_bg:?}");
    // The cloud comes back: the next run uploads and evicts; dropping the handle stops it.
    std::fs::remove_file(&cloud).unwrap();
    let handle = store.start_retention(opts).unwrap();
    assert!(handle.wait_for_runs(1, Duration::from_secs(120)));
    let last = handle.last().unwrap().unwrap();
    assert!(last.failed.is_empty(), "{last:?}");
    drop(handle);
    assert_eq!(tier(&store, traffic), "cloud");
    // A stopped handle left nothing running: the store closes and reopens.
    store.close().unwrap();
    let store = footage::testing::open_or_create_with(&root, &small_options()).unwrap();
    assert_eq!(tier(&store, traffic), "cloud");
    // A bad actor is refused up front.
    let bad = footage::RetentionOptions {
        actor: String::new(),
        ..footage::RetentionOptions::default()
    };
    assert!(store.start_retention(bad).is_err());
}

/// The audit chain head goes to the cloud after an apply; a local log that no longer reaches
/// it, or disagrees with it, is reported by `audit --verify --cloud`.
#[test]
fn the_audit_head_published_to_the_cloud_detects_a_truncated_or_rewritten_log() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = tempfile::tempdir().unwrap();
    let store = open(dir.path(), cloud.path());
    for n in 0..6 {
        let data = random_bytes(900 + n, 50_000);
        store
            .ingest_bytes(meta("MET-1", T0 + n as i64, &["evidential"]), &data)
            .unwrap();
    }
    let s = store
        .retention_apply(T0 + 40 * DAY, false, "t", &mut |_| {})
        .unwrap();
    assert!(s.uploaded > 0 && s.failed.is_empty(), "{s:?}");
    let (head, problem) = store.audit_check_cloud().unwrap();
    let head = head.expect("apply published the head");
    assert!(head.count > 6 && problem.is_none(), "{head:?} {problem:?}");
    // More entries since: still consistent.
    store.categorize(1, "training", "t").unwrap();
    assert_eq!(store.audit_check_cloud().unwrap().1, None);
    // The cloud's head names an entry the local log does not have: a truncated tail.
    let path = walk(cloud.path())
        .into_iter()
        .find(|p| p.ends_with("audit/HEAD.json"))
        .expect("HEAD.json in the bucket");
    let text = std::fs::read_to_string(&path).unwrap();
    let far = text.replace(
        &format!("\"count\":{}", head.count),
        &format!("\"count\":{}", head.count + 1000),
    );
    assert_ne!(far, text);
    std::fs::write(&path, &far).unwrap();
    let p = store
        .audit_check_cloud()
        .unwrap()
        .1
        .expect("truncation found");
    assert!(p.contains("truncated"), "{p}");
    // Same count, another hash: the log was rewritten.
    let other = text.replace(&head.hash, &"0".repeat(64));
    std::fs::write(&path, &other).unwrap();
    let p = store.audit_check_cloud().unwrap().1.expect("rewrite found");
    assert!(p.contains("rewritten"), "{p}");
    // The CLI says so with exit code 1.
    drop(store);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
        .arg("--store")
        .arg(dir.path())
        .args(["audit", "--verify", "--cloud"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rewritten"));
}

#[test]
fn the_plan_shows_evictions_a_pin_defers_and_when_they_come() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let store = open(&dir.path().join("s"), &cloud);
    let ids: Vec<u64> = (0..3u64)
        .map(|i| {
            let m = meta(&format!("MET-{i}"), T0 + i as i64 * DAY, &["evidential"]);
            store.ingest_bytes(m, &random_bytes(i, 10_000)).unwrap().id
        })
        .collect();
    let now = footage::now_us();
    let until = now + 10 * DAY;
    store.pin(ids[0], Some(until), "sgt").unwrap();
    store.pin(ids[1], None, "sgt").unwrap();
    let shown = store
        .info(ids[0])
        .unwrap()
        .pinned_until
        .unwrap()
        .to_string();
    // What the plan says for one segment, uploads aside: (action, at, pinned_until).
    let of = |days: u32, id: u64| -> Vec<(&'static str, String, Option<String>)> {
        let plan = store.retention_plan(now, days).unwrap();
        plan.into_iter()
            .filter(|p| p.id == id.to_string() && p.action != "upload")
            .map(|p| (p.action, p.at, p.pinned_until))
            .collect()
    };
    let at_now = footage::input::time::format_time(now);
    assert_eq!(
        of(30, ids[0]),
        vec![
            ("pinned", at_now.clone(), Some(shown.clone())),
            ("evict", shown.clone(), Some(shown.clone())),
        ]
    );
    // The pin's end beyond the horizon: only the deferral shows.
    assert_eq!(
        of(5, ids[0]),
        vec![("pinned", at_now.clone(), Some(shown.clone()))]
    );
    assert_eq!(
        of(30, ids[1]),
        vec![("pinned", at_now.clone(), Some("indefinitely".to_string()))]
    );
    assert_eq!(of(30, ids[2]), vec![("evict", at_now, None)]);
    // And apply does what the plan said: only the unpinned one goes.
    let s = store
        .retention_apply(now, false, "retention", &mut |_| {})
        .unwrap();
    assert_eq!((s.uploaded, s.evicted, s.pinned), (3, 1, 2), "{s:?}");
    assert_eq!(tier(&store, ids[2]), "cloud");
    assert_eq!(tier(&store, ids[0]), "local+cloud");
}

/// The last handle on a store whose cloud tier has started its I/O runtime may be dropped on a
/// thread of another runtime (the HTTP server's, when `footage serve` stops): that must not
/// panic ("Cannot drop a runtime in a context where blocking is not allowed").
#[test]
fn dropping_the_store_on_a_thread_of_another_runtime_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let store = open(&dir.path().join("s"), &cloud);
    let id = store
        .ingest_bytes(meta("MET-1", T0, &["traffic"]), &random_bytes(1, 10_000))
        .unwrap()
        .id;
    store.upload(id, "t", &mut |_| {}).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async move { tokio::spawn(async move { drop(store) }).await })
        .expect("the store was dropped without a panic");
}
