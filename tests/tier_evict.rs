//! Eviction's punch is not synced (its `Evicted` record is, first): a power cut may put the
//! chunks back as dead bytes. Deleting the segment later must still leave no footage on the
//! disk, and must punch nothing but its own chunks (its volume may have been compacted since).
//!
//! "A punch a power cut undid" is made here by evicting with hole punching off, which leaves
//! the chunks in place exactly as such a cut would.

mod common;

use std::path::Path;

use footage::{SegmentMeta, Store, TierState};

const T0: i64 = 1_763_647_380_000_000;

fn store(dir: &Path) -> Store {
    let root = dir.join("store");
    let store = common::open_small(&root);
    let url = format!("file://{}", dir.join("cloud").display());
    common::write_cloud_policy(&root, &url);
    store
}

fn ingest(store: &Store, seed: u64, len: usize) -> (u64, Vec<u8>) {
    let data = common::random_bytes(seed, len);
    let meta = SegmentMeta {
        officer: "MET-4471".into(),
        device: "AX-B3-00123".into(),
        start_us: T0 + seed as i64 * 60_000_000,
        end_us: T0 + seed as i64 * 60_000_000 + 59_000_000,
        categories: vec!["evidential".into()],
        ..SegmentMeta::default()
    };
    (store.ingest_bytes(meta, &data).unwrap().id, data)
}

/// Whether any 256-byte probe of `data` (one per 64 KiB) is in a volume file of `root`.
fn footage_in_volumes(root: &Path, data: &[u8]) -> bool {
    let probes: Vec<&[u8]> = data
        .chunks(64 * 1024)
        .filter_map(|c| c.get(1024..1280))
        .collect();
    common::volume_files(root).iter().any(|f| {
        let bytes = std::fs::read(f).unwrap();
        probes
            .iter()
            .any(|p| bytes.windows(p.len()).any(|w| w == *p))
    })
}

/// Uploads and evicts `id` with hole punching off (its chunks stay, as after a power cut that
/// undid the punch).
fn evict_unpunched(store: &Store, id: u64) {
    assert!(store.upload(id, "tester", &mut |_| {}).unwrap());
    store.set_punch_holes(false);
    store.evict(id, "tester").unwrap();
    store.set_punch_holes(true);
    assert_eq!(store.info(id).unwrap().tier, TierState::Cloud);
}

#[test]
fn deleting_an_evicted_segment_whose_punch_was_undone_leaves_no_footage() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let root = dir.path().join("store");
    let (id, data) = ingest(&store, 1, 300_000);
    evict_unpunched(&store, id);
    assert!(
        footage_in_volumes(&root, &data),
        "the chunks should still be there"
    );
    store.delete(id, "tester").unwrap();
    assert!(
        !footage_in_volumes(&root, &data),
        "deleted footage left in a volume"
    );
    let report = store.verify(None, |_| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn deleting_an_evicted_segment_after_its_volume_was_compacted_harms_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    // Two segments fill most of the first (1 MiB) volume; the third starts another, so the
    // first is sealed and can be compacted.
    let (a, _) = ingest(&store, 1, 400_000);
    let (b, b_data) = ingest(&store, 2, 400_000);
    let (c, c_data) = ingest(&store, 3, 400_000);
    evict_unpunched(&store, a);
    let s = store.compact(0.1, "tester").unwrap();
    assert!(s.volumes > 0 && s.failed.is_empty(), "{s:?}");
    // Compaction moved b (and a's commit record) into a new volume and removed the old one:
    // deleting a must find nothing of its own to punch and touch nothing else.
    store.delete(a, "tester").unwrap();
    assert_eq!(store.read_range(b, 0, u64::MAX).unwrap(), b_data);
    assert_eq!(store.read_range(c, 0, u64::MAX).unwrap(), c_data);
    let report = store.verify(None, |_| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
}
