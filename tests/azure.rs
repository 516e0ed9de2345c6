//! The cloud tier against Azure Blob Storage, emulated by Azurite (started by scripts/test.sh,
//! which sets FOOTAGE_AZURITE_URL and AZURE_STORAGE_USE_EMULATOR). Under CI (`common::in_ci`)
//! a missing Azurite is a failure; under a plain `cargo test` the test skips, saying so
//! (`common::skip`).

mod common;

use common::{random_bytes, small_options};
use footage::{SegmentMeta, Store};

#[test]
fn evicted_segments_read_back_from_azurite_and_a_store_recovers_from_it() {
    let Some(base) = common::azurite_or_skip(
        "evicted_segments_read_back_from_azurite_and_a_store_recovers_from_it",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let store = footage::testing::open_or_create_with(&root, &small_options()).unwrap();
    let unique = format!("{base}/{}", std::process::id());
    let policy = std::fs::read_to_string(root.join("policy.toml"))
        .unwrap()
        .replace("file:///var/lib/footage-cloud", &unique);
    std::fs::write(root.join("policy.toml"), policy).unwrap();
    let data = random_bytes(5, 3 * (1 << 20) + 12_345);
    let meta = SegmentMeta {
        officer: "MET-1".into(),
        device: "AX-1".into(),
        start_us: 1_759_276_800_000_000,
        end_us: 1_759_276_800_000_000 + 600_000_000,
        categories: vec!["evidential".into()],
        ..SegmentMeta::default()
    };
    let id = store.ingest_bytes(meta, &data).unwrap().id;
    let now = 1_759_276_800_000_000 + 40 * 86_400_000_000;
    let s = store.retention_apply(now, false, "t", &mut |_| {}).unwrap();
    assert_eq!((s.uploaded, s.evicted), (1, 1), "{s:?}");
    assert_eq!(store.info(id).unwrap().tier, footage::TierState::Cloud);
    assert_eq!(store.read_range(id, 0, u64::MAX).unwrap(), data);
    for (off, len) in [(0u64, 10u64), ((1 << 20) - 3, 7), (3 << 20, 20_000)] {
        let end = (off + len).min(data.len() as u64) as usize;
        assert_eq!(
            store.read_range(id, off, len).unwrap(),
            &data[off as usize..end]
        );
    }
    drop(store);
    let (new, report) = Store::recover_from_cloud(
        &dir.path().join("new"),
        &unique,
        None,
        &small_options(),
        "t",
    )
    .unwrap();
    assert_eq!(report.recovered, 1);
    assert_eq!(new.read_range(id, 0, u64::MAX).unwrap(), data);
}
