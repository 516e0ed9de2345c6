//! The `ingest` audit entry of a new segment is batched (docs/FORMAT.md §11, "Ingest entries
//! recovered from commit records"): the commit record names the actor, a checkpoint makes
//! the audit log durable before it is written, and an open rewrites from its replayed commit
//! records every `ingest` entry a power cut lost. Shown here on power-cut images
//! (`footage::power`) with the audit log's fsync switched off during an ingest.

mod common;

use std::path::Path;

use common::{meta, random_bytes, T0};
use footage::power;
use footage::{Store, StoreOptions};

fn options() -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        checkpoint_every: 1000,
        ..StoreOptions::default()
    }
}

/// The `ingest` entries of segment `id`.
fn ingest_entries(store: &Store, id: u64) -> Vec<footage::AuditEntry> {
    store
        .audit_entries(Some(id), None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "ingest")
        .collect()
}

fn open_image(rec: &power::Recording, cut: usize, dst: &Path) -> Store {
    rec.image(cut, None, dst).unwrap();
    Store::open_with(dst.join("store"), &options()).unwrap()
}

#[test]
fn a_lost_ingest_entry_is_rewritten_from_its_commit_record_and_a_checkpoint_keeps_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let rec_root = tmp.path().join("rec");
    std::fs::create_dir_all(&rec_root).unwrap();
    let root = rec_root.join("store");
    Store::create_with(&root, &options())
        .unwrap()
        .close()
        .unwrap();
    power::start(&rec_root);
    let store = Store::open_with(&root, &options()).unwrap();
    let dock = store.with_actor("dock-07").unwrap();
    // 1. The audit log's fsync does nothing: the entry is lost at a power cut, although the
    //    dock was told the footage is stored.
    power::skip_sync("audit.append");
    let d1 = random_bytes(1, 300_000);
    let a = dock
        .ingest_bytes(meta("MET-000001", "AX-1", T0), &d1)
        .unwrap();
    power::mark("a");
    power::clear_skips();
    // 2. A second segment, then a checkpoint: it covers both commits, so it must make their
    //    entries durable first (recovery replays, and so rewrites, only what follows it).
    let b = dock
        .ingest_bytes(
            meta("MET-000001", "AX-2", T0 + 60_000_000),
            &random_bytes(2, 5_000),
        )
        .unwrap();
    store.checkpoint().unwrap();
    power::mark("b");
    drop(dock);
    store.close().unwrap();
    let rec = power::stop();
    let marks = rec.marks();
    let at = |label: &str| marks.iter().find(|(_, l)| *l == label).unwrap().0;

    // Cut at 1: the segment is there, its entry written again, once.
    let img = tmp.path().join("img-a");
    let s = open_image(&rec, at("a"), &img);
    assert_eq!(s.open_report().recovered_audit_entries, vec![a.id]);
    assert_eq!(s.read_range(a.id, 0, d1.len() as u64).unwrap(), d1);
    let e = ingest_entries(&s, a.id);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].actor, "dock-07");
    assert_eq!(e[0].details["recovered"], true);
    assert_eq!(e[0].details["sha256"], a.sha256_hex());
    assert_eq!(e[0].details["device"], "AX-1");
    assert!(s.audit_verify().unwrap().ok);
    assert!(!s.verify(None, |_| {}).unwrap().has_findings());
    s.close().unwrap();
    // Opening again finds the entry: nothing more is written.
    let s = Store::open_with(img.join("store"), &options()).unwrap();
    assert!(s.open_report().recovered_audit_entries.is_empty());
    assert_eq!(ingest_entries(&s, a.id).len(), 1);
    drop(s);

    // Cut at 2: nothing to replay, and both entries were made durable by the checkpoint.
    let s = open_image(&rec, at("b"), &tmp.path().join("img-b"));
    assert_eq!(s.open_report().replayed, 0);
    assert!(s.open_report().recovered_audit_entries.is_empty());
    for id in [a.id, b.id] {
        let e = ingest_entries(&s, id);
        assert_eq!(e.len(), 1, "segment {id}: {e:?}");
        assert_eq!(e[0].actor, "dock-07");
        assert!(e[0].details.get("recovered").is_none(), "{e:?}");
    }
}
