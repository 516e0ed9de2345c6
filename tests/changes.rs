//! Changes to segments (categories, tags, cases, legal holds) are durable log records: they
//! show in `info` and in queries, and survive clean reopen, crash recovery and full rebuilds.

mod common;

use common::{copy_dir, meta, small_options, T0};
use footage::{Change, Query, Store};

fn ids(store: &Store, q: Query) -> Vec<u64> {
    store
        .find(&q)
        .unwrap()
        .results
        .iter()
        .map(|r| r.id)
        .collect()
}

#[test]
fn changes_show_everywhere_and_survive_reopen_crash_and_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = footage::testing::open_or_create_with(&path, &small_options()).unwrap();
    let a = store
        .ingest_bytes(meta("MET-1", "AX-1", T0), b"a")
        .unwrap()
        .id;
    let b = store
        .ingest_bytes(meta("MET-2", "AX-2", T0 + 10), b"b")
        .unwrap()
        .id;
    store.categorize(a, "evidential", "sgt.jones").unwrap();
    store.hold(a, "OP-TRIDENT", "sgt.jones").unwrap();
    store
        .change(b, &Change::Untag("test".into()), "pc.smith")
        .unwrap();
    store
        .change(b, &Change::AddCase("CAD-7".into()), "pc.smith")
        .unwrap();
    // Adding what is there already writes nothing and succeeds.
    store.categorize(a, "evidential", "sgt.jones").unwrap();
    let e = store.release(b, "OP-TRIDENT", "x").unwrap_err().to_string();
    assert!(e.contains("not held"), "{e}");
    assert!(store.hold(a, "bad case", "x").is_err());

    let check = |s: &Store| {
        let ia = s.info(a).unwrap();
        assert_eq!(ia.categories, ["evidential"]);
        assert_eq!(ia.holds, ["OP-TRIDENT"]);
        assert_eq!(ia.cases, ["OP-TRIDENT"]);
        let ib = s.info(b).unwrap();
        assert!(ib.tags.is_empty());
        assert_eq!(ib.cases, ["CAD-7"]);
        assert_eq!(ids(s, Query::new().category("evidential")), [a]);
        assert_eq!(ids(s, Query::new().case("OP-TRIDENT")), [a]);
        assert_eq!(ids(s, Query::new().case("CAD-7")), [b]);
        assert_eq!(ids(s, Query::new().tag("test")), [a]);
    };
    check(&store);
    // Crash: the copy has no checkpoint covering the changes.
    copy_dir(&path, &dir.path().join("crash"));
    let crashed =
        footage::testing::open_or_create_with(dir.path().join("crash"), &small_options()).unwrap();
    assert!(crashed.open_report().replayed_changes >= 4);
    check(&crashed);
    drop(crashed);
    store.close().unwrap();
    let store = footage::testing::open_or_create_with(&path, &small_options()).unwrap();
    assert_eq!(store.open_report().replayed_changes, 0);
    check(&store);
    // Release, then a full rebuild from the log (no checkpoint, no track file).
    store.release(a, "OP-TRIDENT", "sgt.jones").unwrap();
    drop(store);
    for e in std::fs::read_dir(path.join("catalog")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let store = footage::testing::open_or_create_with(&path, &small_options()).unwrap();
    assert!(store.info(a).unwrap().holds.is_empty());
    assert_eq!(store.info(a).unwrap().categories, ["evidential"]);
    assert_eq!(ids(&store, Query::new().case("CAD-7")), [b]);
}
