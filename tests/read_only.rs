//! Read-only opens (`Store::open_read_only` + `refresh`) beside a writer: an in-process
//! writer and a child `footage serve`. They see what was committed before they opened, the
//! rest only after `refresh`, never a torn record, follow deletions, evictions and compaction
//! moves, read the same bytes, write nothing to the store, refuse every change with
//! `Error::ReadOnly`, and record audited reads only through an `AuditSink`.

mod common;

use common::{meta, random_bytes, small_options, T0};
use footage::AuditAction as Action;
use footage::{AuditSink, Change, Error, Key, Query, Store, StoreOptions};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const SEG: usize = 300_000;

fn ro(dir: &Path) -> Store {
    Store::open_read_only(dir, &StoreOptions::default()).unwrap()
}

/// Ingests segment number `n` (bytes seeded by `n`); returns (id, bytes).
fn ingest(store: &Store, n: u64) -> (u64, Vec<u8>) {
    let bytes = random_bytes(n, SEG + n as usize * 1000);
    let m = meta(&format!("PC{}", n % 3), "AX-1", T0 + n as i64 * 120_000_000);
    let id = store.ingest_bytes(m, &bytes).unwrap().id;
    (id, bytes)
}

fn read_all(store: &Store, id: u64) -> Vec<u8> {
    let mut r = store.open_segment(id).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

/// Every file under `dir` with its size, mtime and mode (what "writes nothing" compares).
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let md = std::fs::metadata(&d).unwrap();
        out.insert(
            d.clone(),
            (0, md.modified().unwrap(), md.permissions().mode()),
        );
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path(),
                    (md.len(), md.modified().unwrap(), md.permissions().mode()),
                );
            }
        }
    }
    out
}

/// A store with `n` segments whose writer has been closed; returns the sources by id.
fn closed_store(dir: &Path, n: u64) -> BTreeMap<u64, Vec<u8>> {
    let w = footage::testing::open_or_create_with(dir, &small_options()).unwrap();
    let src = (1..=n).map(|i| ingest(&w, i)).collect();
    w.close().unwrap();
    src
}

#[test]
fn sees_what_was_committed_before_it_opened_and_the_rest_only_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    let mut src: BTreeMap<u64, Vec<u8>> = (1..=3).map(|i| ingest(&w, i)).collect();
    let r = ro(dir.path());
    assert!(r.is_read_only() && !w.is_read_only());
    assert_eq!(r.segment_ids(), src.keys().copied().collect::<Vec<_>>());
    for (id, bytes) in &src {
        assert_eq!(&read_all(&r, *id), bytes);
        assert_eq!(r.info(*id).unwrap(), w.info(*id).unwrap());
    }

    // The writer goes on: new segments, a hold, a category, a tag removed.
    let first = *src.keys().next().unwrap();
    for i in 4..=6 {
        let (id, b) = ingest(&w, i);
        src.insert(id, b);
    }
    w.hold(first, "CASE-7", "sgt").unwrap();
    w.categorize(first, "evidential", "sgt").unwrap();
    w.change(first, &Change::Untag("test".into()), "sgt")
        .unwrap();
    assert_eq!(r.len(), 3, "nothing new is visible before refresh");
    assert!(r.info(first).unwrap().holds.is_empty());

    let rep = r.refresh().unwrap();
    assert_eq!(rep.segments, 3, "{rep:?}");
    assert_eq!(rep.changes, 3, "{rep:?}");
    assert!(!rep.reloaded, "{rep:?}");
    assert_eq!(r.segment_ids(), w.segment_ids());
    assert_eq!(r.info(first).unwrap(), w.info(first).unwrap());
    assert_eq!(r.info(first).unwrap().holds, vec!["CASE-7".to_string()]);
    let held: Vec<u64> = r
        .find(&Query::new().case("CASE-7"))
        .unwrap()
        .results
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(held, vec![first]);
    for (id, bytes) in &src {
        assert_eq!(&read_all(&r, *id), bytes);
    }
    // Nothing new: a refresh finds nothing and reads nothing it read before.
    let again = r.refresh().unwrap();
    assert_eq!((again.segments, again.changes), (0, 0), "{again:?}");
}

#[test]
fn several_read_only_opens_follow_a_writer_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    let mut src: BTreeMap<u64, Vec<u8>> = (1..=2).map(|i| ingest(&w, i)).collect();
    let readers: Vec<Store> = (0..3).map(|_| ro(dir.path())).collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let shared = Arc::new(Mutex::new(src.clone()));
    // Each reader refreshes and reads in its own thread while the writer ingests.
    let threads: Vec<_> = readers
        .iter()
        .cloned()
        .map(|r| {
            let done = Arc::clone(&done);
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut rounds = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) || rounds == 0 {
                    r.refresh().unwrap();
                    for id in r.segment_ids() {
                        let want = shared.lock().unwrap().get(&id).cloned();
                        // A segment visible to a reader is one the writer committed.
                        let want = want.expect("a visible segment the writer acknowledged");
                        assert_eq!(read_all(&r, id), want, "segment {id}");
                    }
                    rounds += 1;
                }
            })
        })
        .collect();
    for i in 3..=10 {
        // Registered before its commit returns, so a reader that sees it finds its source.
        let bytes = random_bytes(i, SEG + i as usize * 1000);
        let id_guess = w.segment_ids().last().copied().unwrap_or(0) + 1;
        shared.lock().unwrap().insert(id_guess, bytes.clone());
        let m = meta(&format!("PC{}", i % 3), "AX-1", T0 + i as i64 * 120_000_000);
        let id = w.ingest_bytes(m, &bytes).unwrap().id;
        assert_eq!(id, id_guess);
        src.insert(id, bytes);
        // Label changes interleave with the ingests.
        w.hold(id, &format!("CASE-{i}"), "sgt").unwrap();
        if i % 2 == 0 {
            w.release(id - 1, &format!("CASE-{}", i - 1), "sgt")
                .unwrap();
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    for r in &readers {
        r.refresh().unwrap();
        assert_eq!(r.segment_ids(), src.keys().copied().collect::<Vec<_>>());
        for id in src.keys() {
            assert_eq!(r.info(*id).unwrap(), w.info(*id).unwrap(), "segment {id}");
        }
    }
}

/// Everything a reader does, on a store made by `closed_store(dir, 5)`.
fn exercise(dir: &Path) {
    let r = Store::open_read_only(dir, &StoreOptions::default()).unwrap();
    r.refresh().unwrap();
    assert_eq!(r.len(), 5);
    for id in r.segment_ids() {
        // closed_store's segment n has id n and bytes seeded by n.
        let want = random_bytes(id, SEG + id as usize * 1000);
        assert_eq!(read_all(&r, id), want);
        r.info(id).unwrap();
        r.track(id).unwrap();
    }
    r.find(&Query::new().officer("PC1")).unwrap();
    r.stats().unwrap();
    assert!(!r.audit_entries(None, None).unwrap().is_empty());
    assert!(r.audit_verify().unwrap().ok);
    assert!(r.verify(None, |_| {}).unwrap().is_clean());
    r.retention_plan(T0, 0).unwrap();
    assert!(matches!(r.checkpoint(), Err(Error::ReadOnly { .. })));
    r.close().unwrap();
}

/// Set in the child that runs [`exercise`] as an unprivileged user.
const CHILD_ENV: &str = "FOOTAGE_READ_ONLY_CHILD";

#[test]
fn a_read_only_open_creates_and_modifies_no_file() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        exercise(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let src = closed_store(&dir, 5);
    assert_eq!(src.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    let before = listing(&dir);
    exercise(&dir);
    assert_eq!(listing(&dir), before, "the store changed");

    // On a store made read-only by its permissions: no write bit anywhere. Root ignores
    // permission bits, so as root the reader runs as `nobody` in a child process.
    let modes: Vec<(PathBuf, u32)> = before.iter().map(|(p, m)| (p.clone(), m.2)).collect();
    let set = |f: &dyn Fn(u32) -> u32| {
        use std::os::unix::fs::PermissionsExt;
        let mut ms = modes.clone();
        ms.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (p, m) in &ms {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(f(*m))).unwrap();
        }
    };
    let root = unsafe { libc::geteuid() } == 0;
    let result = if root {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        set(&|m| (m | 0o555) & !0o222);
        let out = common::output(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "a_read_only_open_creates_and_modifies_no_file",
                    "--nocapture",
                ])
                .env(CHILD_ENV, &dir)
                .uid(65534)
                .gid(65534),
        );
        set(&|m| m);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success()
            && stderr.contains("ermission denied")
            && !stderr.contains("panicked")
        {
            eprintln!(
                "a_read_only_open_creates_and_modifies_no_file: running as root and the test \
                 binary cannot run as nobody ({stderr}): the read-only-permissions part is not run"
            );
            return;
        }
        assert!(
            out.status.success(),
            "the reader as nobody failed: {}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test: {stdout}"
        );
        Ok(())
    } else {
        set(&|m| m & !0o222);
        let r = std::panic::catch_unwind(|| exercise(&dir));
        set(&|m| m);
        r
    };
    assert!(result.is_ok());
    // chmod back and forth moved the ctime, not the mtime; modes are restored.
    assert_eq!(listing(&dir), before);
}

#[test]
fn every_change_is_refused_with_a_read_only_error() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = dir.path().join("cloud");
    let src = closed_store(&dir.path().join("s"), 2);
    let store = dir.path().join("s");
    std::fs::write(store.join("policy.toml"), policy(&cloud)).unwrap();
    let id = *src.keys().next().unwrap();
    let r = ro(&store);
    let before = listing(&store);
    let refused = |what: &str, e: Error| {
        assert!(matches!(e, Error::ReadOnly { .. }), "{what}: {e:?}");
        assert!(e.to_string().contains("opened read-only"), "{e}");
    };
    refused(
        "ingest",
        r.ingest_bytes(meta("PC1", "AX-1", T0), b"x").unwrap_err(),
    );
    refused("hold", r.hold(id, "C-1", "sgt").unwrap_err());
    refused("release", r.release(id, "C-1", "sgt").unwrap_err());
    refused("categorize", r.categorize(id, "x", "sgt").unwrap_err());
    refused("checkpoint", r.checkpoint().unwrap_err());
    refused("compact", r.compact(0.0, "sgt").unwrap_err());
    refused("upload", r.upload(id, "sgt", &mut |_| {}).unwrap_err());
    refused("evict", r.evict(id, "sgt").unwrap_err());
    refused("delete", r.delete(id, "sgt").unwrap_err());
    refused("drop", r.drop_empty_volumes("sgt").unwrap_err());
    refused("repair", r.repair(id).unwrap_err());
    refused("publish", r.publish_audit_head().unwrap_err());
    refused(
        "retention",
        r.retention_apply(T0, false, "sgt", &mut |_| {})
            .unwrap_err(),
    );
    refused(
        "scrub",
        r.start_scrub(footage::ScrubOptions::default())
            .err()
            .unwrap(),
    );
    refused(
        "background retention",
        r.start_retention(footage::RetentionOptions::default())
            .err()
            .unwrap(),
    );
    refused(
        "scrub pass",
        r.scrub_pass(&footage::ScrubOptions::default(), &mut |_| {})
            .unwrap_err(),
    );
    refused(
        "verify --repair",
        r.verify_with(
            None,
            footage::VerifyOptions {
                repair: true,
                ..footage::VerifyOptions::default()
            },
            |_| {},
        )
        .unwrap_err(),
    );
    // A plan (dry run) is a read.
    r.retention_apply(T0, true, "sgt", &mut |_| {}).unwrap();
    assert_eq!(listing(&store), before);
    // The writer was never touched: it opens and holds what it held.
    drop(r);
    let w = footage::testing::open_or_create_with(&store, &small_options()).unwrap();
    assert_eq!(w.segment_ids(), src.keys().copied().collect::<Vec<_>>());
    assert!(w.info(id).unwrap().holds.is_empty());
}

/// A retention policy whose cloud tier is the directory `cloud`.
fn policy(cloud: &Path) -> String {
    format!(
        "[cloud]\nurl = \"file://{}\"\n\n[category.default]\nupload = true\n\
         evict_after = \"3650d\"\ndelete_after = \"3650d\"\n",
        cloud.display()
    )
}

/// A sink that keeps what it is given.
#[derive(Default)]
struct Sink(Mutex<Vec<Relayed>>);

/// What a sink was given: actor, action, segment, details.
type Relayed = (String, String, Option<u64>, serde_json::Value);

impl AuditSink for Sink {
    fn append(
        &self,
        actor: &str,
        action: &Action,
        segment: Option<u64>,
        details: &str,
    ) -> footage::Result<()> {
        self.0.lock().unwrap().push((
            actor.into(),
            action.name().into(),
            segment,
            serde_json::from_str(details).unwrap(),
        ));
        Ok(())
    }
}

#[test]
fn audited_reads_need_a_sink_and_the_sink_receives_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = closed_store(dir.path(), 2);
    let id = *src.keys().next().unwrap();
    let entries_before = ro(dir.path()).audit_entries(None, None).unwrap().len();
    let actor = "rev (os:uid=1000 user=rev)";

    // No sink: an actor handle's reads are refused with the typed error.
    let viewer = ro(dir.path()).with_actor(actor).unwrap();
    let e = viewer.open_segment(id).err().unwrap();
    assert!(matches!(e, Error::AuditSinkRequired { .. }), "{e:?}");
    assert!(e.to_string().contains("control channel"), "{e}");
    assert!(matches!(
        viewer.find(&Query::new()).unwrap_err(),
        Error::AuditSinkRequired { .. }
    ));
    assert!(matches!(
        viewer.read_range(id, 0, 10).unwrap_err(),
        Error::AuditSinkRequired { .. }
    ));
    assert!(matches!(
        viewer.audit(actor, Action::View, Some(id), serde_json::json!({})),
        Err(Error::AuditSinkRequired { .. })
    ));
    // An export is always audited: refused before any file is written.
    let out = tempfile::tempdir().unwrap();
    let e = viewer.export(id, &out.path().join("x")).err().unwrap();
    assert!(matches!(e, Error::AuditSinkRequired { .. }), "{e:?}");
    assert!(!out.path().join("x").exists());

    // With a sink: the reads happen and the sink has one entry for each.
    let sink = Arc::new(Sink::default());
    let r = Store::open_read_only_with(
        dir.path(),
        &StoreOptions::default(),
        Some(sink.clone() as Arc<dyn AuditSink>),
    )
    .unwrap();
    let viewer = r.with_actor(actor).unwrap();
    let mut got = Vec::new();
    viewer
        .open_segment(id)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(&got, &src[&id]);
    assert_eq!(viewer.find(&Query::new()).unwrap().results.len(), 2);
    viewer
        .audit(
            actor,
            Action::View,
            Some(id),
            serde_json::json!({"page": 1}),
        )
        .unwrap();
    let seen = sink.0.lock().unwrap().clone();
    let actions: Vec<(&str, &str, Option<u64>)> = seen
        .iter()
        .map(|(a, b, s, _)| (a.as_str(), b.as_str(), *s))
        .collect();
    assert_eq!(
        actions,
        vec![
            (actor, "read", Some(id)),
            (actor, "query", None),
            (actor, "view", Some(id))
        ]
    );
    assert_eq!(seen[2].3, serde_json::json!({"page": 1}));
    // Nothing was appended locally by the read-only open.
    assert_eq!(r.audit_entries(None, None).unwrap().len(), entries_before);
    // Reads without an actor (the store's own) need no sink.
    assert_eq!(&read_all(&ro(dir.path()), id), &src[&id]);
}

#[test]
fn deletions_evictions_and_compaction_moves_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let cloud = dir.path().join("cloud");
    let w = common::open_gated(&store, &small_options()).unwrap();
    std::fs::write(store.join("policy.toml"), policy(&cloud)).unwrap();
    let src: BTreeMap<u64, Vec<u8>> = (1..=12).map(|i| ingest(&w, i)).collect();
    let ids: Vec<u64> = src.keys().copied().collect();
    let r = ro(&store);
    assert_eq!(r.segment_ids(), ids);

    // Evict one (after a verified upload), delete every other one (leaving their chunks
    // for compaction to reclaim).
    w.set_punch_holes(false);
    let evicted = ids[1];
    assert!(w.upload(evicted, "sgt", &mut |_| {}).unwrap());
    w.evict(evicted, "sgt").unwrap();
    let deleted: Vec<u64> = ids.iter().copied().step_by(2).collect();
    for id in &deleted {
        w.delete(*id, "sgt").unwrap();
    }
    let rep = r.refresh().unwrap();
    assert!(rep.changes >= deleted.len() + 2, "{rep:?}");
    let live: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|i| !deleted.contains(i))
        .collect();
    assert_eq!(r.segment_ids(), live);
    assert_eq!(r.info(evicted).unwrap().tier, footage::TierState::Cloud);
    assert!(matches!(r.info(deleted[0]), Err(Error::NotFound(_))));
    assert_eq!(
        &read_all(&r, evicted),
        &src[&evicted],
        "read through the cloud"
    );

    // Compaction moves the survivors into new volumes and removes the old ones.
    let vols_before = common::volume_files(&store);
    let summary = w.compact(0.0, "sgt").unwrap();
    assert!(summary.segments_moved > 0, "{summary:?}");
    let vols_after = common::volume_files(&store);
    assert!(vols_before.iter().any(|v| !vols_after.contains(v)));
    // Before a refresh the moved segments are still readable (the old files stay open, or
    // the reader catches up), and after it they are read from their new place.
    for id in &live {
        assert_eq!(&read_all(&r, *id), &src[id], "segment {id} before refresh");
    }
    let rep = r.refresh().unwrap();
    // Followed from the log: the moves, the new volumes and the removed ones.
    assert!(!rep.reloaded, "{rep:?}");
    assert_eq!(rep.relocated, summary.segments_moved, "{rep:?}");
    assert!(rep.removed_volumes > 0 && rep.new_volumes > 0, "{rep:?}");
    assert_eq!(r.segment_ids(), live);
    for id in &live {
        assert_eq!(&read_all(&r, *id), &src[id], "segment {id} after refresh");
        assert_eq!(r.info(*id).unwrap(), w.info(*id).unwrap());
    }
    // A fresh read-only open agrees.
    let fresh = ro(&store);
    assert_eq!(fresh.segment_ids(), live);
}

#[test]
fn an_encrypted_store_opens_read_only_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::from_bytes([7; 32]);
    let opts = StoreOptions {
        key: Some(key.clone()),
        ..small_options()
    };
    let w = common::open_gated(dir.path(), &opts).unwrap();
    let src: BTreeMap<u64, Vec<u8>> = (1..=2).map(|i| ingest(&w, i)).collect();
    let e = Store::open_read_only(dir.path(), &StoreOptions::default()).err();
    assert!(matches!(e, Some(Error::KeyRequired { .. })), "{e:?}");
    let wrong = StoreOptions {
        key: Some(Key::from_bytes([8; 32])),
        ..StoreOptions::default()
    };
    let e = Store::open_read_only(dir.path(), &wrong).err();
    assert!(matches!(e, Some(Error::WrongKey { .. })), "{e:?}");
    let with_key = StoreOptions {
        key: Some(key),
        ..StoreOptions::default()
    };
    let r = Store::open_read_only(dir.path(), &with_key).unwrap();
    for (id, bytes) in &src {
        assert_eq!(&read_all(&r, *id), bytes);
    }
    let (id3, b3) = ingest(&w, 3);
    r.refresh().unwrap();
    assert_eq!(read_all(&r, id3), b3);
}

/// The active volume (the newest file) of a store's default data dir.
fn newest_volume(store: &Path) -> PathBuf {
    common::volume_files(store).pop().unwrap()
}

#[test]
fn a_torn_tail_left_by_a_crashed_writer_is_not_yet_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    let (a, bytes_a) = ingest(&w, 1);
    let vol = newest_volume(dir.path());
    let len_a = std::fs::metadata(&vol).unwrap().len();
    let (b, bytes_b) = ingest(&w, 2);
    assert_eq!(newest_volume(dir.path()), vol, "both in one volume");
    // The writer dies without a checkpoint or close (as kill -9 would leave it).
    std::mem::forget(w);
    let full = std::fs::read(&vol).unwrap();
    assert!(full.len() as u64 > len_a);

    // Power cut while B's commit record was written: its last bytes never reached the disk.
    std::fs::write(&vol, &full[..full.len() - 10]).unwrap();
    let before = listing(dir.path());
    let r = ro(dir.path());
    assert_eq!(r.segment_ids(), vec![a], "B's commit is torn: not visible");
    assert_eq!(read_all(&r, a), bytes_a);
    assert!(r.open_report().torn_bytes == 0, "nothing cut");
    assert_eq!(r.refresh().unwrap().segments, 0);
    // Or its bytes there but wrong (a torn sector): still not B.
    let mut garbled = full.clone();
    let n = garbled.len();
    garbled[n - 40] ^= 0x55;
    std::fs::write(&vol, &garbled).unwrap();
    assert_eq!(r.refresh().unwrap().segments, 0);
    assert_eq!(ro(dir.path()).segment_ids(), vec![a]);
    std::fs::write(&vol, &full[..full.len() - 10]).unwrap();
    assert_eq!(
        listing(dir.path())
            .into_iter()
            .map(|(p, (l, _, m))| (p, l, m))
            .collect::<Vec<_>>(),
        before
            .into_iter()
            .map(|(p, (l, _, m))| (p, l, m))
            .collect::<Vec<_>>(),
        "the read-only opens cut and wrote nothing"
    );

    // The rest of the record lands (the writer was only slow): the next refresh shows B.
    let mut f = std::fs::OpenOptions::new().append(true).open(&vol).unwrap();
    f.write_all(&full[full.len() - 10..]).unwrap();
    drop(f);
    let rep = r.refresh().unwrap();
    assert_eq!(rep.segments, 1, "{rep:?}");
    assert_eq!(r.segment_ids(), vec![a, b]);
    assert_eq!(read_all(&r, b), bytes_b);
}

#[test]
fn the_audit_log_reads_beside_its_writer_and_a_partial_entry_is_not_yet() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    let (id, _) = ingest(&w, 1);
    w.hold(id, "C-1", "sgt").unwrap();
    let r = ro(dir.path());
    let n = r.audit_entries(None, None).unwrap().len();
    assert!(n >= 2);
    let report = r.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(r.audit_head().0, n as u64);
    // The writer appends; the reader sees it without reopening.
    w.categorize(id, "evidential", "sgt").unwrap();
    assert_eq!(r.audit_entries(None, None).unwrap().len(), n + 1);
    // A partial frame at the end of the newest file (an append in progress): not yet.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let newest = files.pop().unwrap();
    let data = std::fs::read(&newest).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    f.write_all(&data[data.len() - 50..data.len() - 20])
        .unwrap();
    drop(f);
    let report = r.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries, n as u64 + 1);
    assert_eq!(r.audit_entries(None, None).unwrap().len(), n + 1);
}

#[test]
fn a_directory_without_a_store_is_refused_and_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let e = Store::open_read_only(dir.path(), &StoreOptions::default()).err();
    assert!(matches!(e, Some(Error::NoStore { .. })), "{e:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A child `footage serve` on a store; killed on drop.
struct Serve {
    child: std::process::Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path) -> Serve {
    let mut child = common::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(store)
            .args(["serve", "--addr", "127.0.0.1:0", "--quiet"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let mut line = String::new();
    let out = child.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    let url = v["listening"].as_str().unwrap_or_default().to_string();
    let addr = url.trim_start_matches("http://").to_string();
    let s = Serve { child, addr };
    assert!(!s.addr.is_empty(), "footage serve printed {line:?}");
    s
}

/// POSTs JSON to the service; returns the status line.
fn post(addr: &str, path: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.lines().next().unwrap_or_default().to_string()
}

#[test]
fn a_read_only_open_follows_a_running_footage_serve() {
    let dir = tempfile::tempdir().unwrap();
    let src = closed_store(dir.path(), 3);
    let ids: Vec<u64> = src.keys().copied().collect();
    let service = serve(dir.path());
    // The service owns the store: a read-write open is refused, a read-only one is not.
    assert!(matches!(
        Store::open(dir.path()).err(),
        Some(Error::Locked { .. })
    ));
    let r = ro(dir.path());
    assert_eq!(r.segment_ids(), ids);
    for (id, bytes) in &src {
        assert_eq!(&read_all(&r, *id), bytes);
    }
    // A change made by the service shows after refresh.
    let status = post(
        &service.addr,
        &format!("/api/segments/{}/hold", ids[0]),
        r#"{"case":"CASE-9"}"#,
    );
    assert!(status.contains(" 200"), "{status}");
    assert!(r.info(ids[0]).unwrap().holds.is_empty());
    r.refresh().unwrap();
    assert_eq!(r.info(ids[0]).unwrap().holds, vec!["CASE-9".to_string()]);
    assert!(r.audit_verify().unwrap().ok);
    drop(service);
}

#[test]
fn a_volume_cut_back_below_what_was_read_reloads_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    let (a, bytes_a) = ingest(&w, 1);
    w.checkpoint().unwrap();
    let vol = newest_volume(dir.path());
    let len_a = std::fs::metadata(&vol).unwrap().len();
    let (b, _) = ingest(&w, 2);
    let r = ro(dir.path());
    assert_eq!(r.segment_ids(), vec![a, b]);
    std::mem::forget(w);
    // The writer cut B back (its fsync failed: B was never acknowledged). What the reader
    // read is no longer there: it cannot follow from its position and reloads.
    let f = std::fs::OpenOptions::new().write(true).open(&vol).unwrap();
    f.set_len(len_a).unwrap();
    drop(f);
    let rep = r.refresh().unwrap();
    assert!(rep.reloaded, "{rep:?}");
    assert_eq!(r.segment_ids(), vec![a]);
    assert_eq!(read_all(&r, a), bytes_a);
}

#[test]
fn refresh_reads_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    // Enough for several sealed 1 MiB volumes of one footage day.
    let src: BTreeMap<u64, Vec<u8>> = (1..=12).map(|i| ingest(&w, i)).collect();
    let volumes = common::volume_files(dir.path()).len();
    assert!(volumes >= 3, "{volumes} volumes");
    let r = ro(dir.path());
    assert_eq!(r.len(), src.len());
    // Nothing new: only the active volume (one footage day: one) is looked at again.
    let rep = r.refresh().unwrap();
    assert_eq!(rep.scanned_volumes, 1, "{rep:?}");
    assert_eq!((rep.segments, rep.changes, rep.reloaded), (0, 0, false));
    // One new segment: still only the active volume (or a new one it rolled over to).
    let (id, bytes) = ingest(&w, 13);
    let rep = r.refresh().unwrap();
    assert_eq!(rep.segments, 1, "{rep:?}");
    assert!(rep.scanned_volumes <= 2, "{rep:?}");
    assert_eq!(read_all(&r, id), bytes);
}

/// A sink that does what the service does with a relayed entry: appends it to the owner's log.
struct ToWriter(Store);

impl AuditSink for ToWriter {
    fn append(
        &self,
        actor: &str,
        action: &Action,
        segment: Option<u64>,
        details: &str,
    ) -> footage::Result<()> {
        let details = serde_json::from_str(details)
            .map_err(|e| Error::Invalid(format!("relayed details are not JSON: {e}")))?;
        self.0.audit(actor, action.clone(), segment, details)
    }
}

#[test]
fn reads_and_exports_relayed_to_the_writer_land_in_its_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    let (id, bytes) = ingest(&w, 1);
    let r = Store::open_read_only_with(
        dir.path(),
        &StoreOptions::default(),
        Some(Arc::new(ToWriter(w.clone())) as Arc<dyn AuditSink>),
    )
    .unwrap();
    let actor = "rev (os:uid=1000 user=rev)";
    let viewer = r.with_actor(actor).unwrap();
    assert_eq!(viewer.read_range(id, 0, 100).unwrap(), bytes[..100]);
    let out = tempfile::tempdir().unwrap();
    let exported = viewer.export(id, out.path()).unwrap();
    assert_eq!(std::fs::read(&exported.file).unwrap(), bytes);
    // The writer's log holds both, under the reader's actor; the reader sees them too.
    let mine: Vec<String> = w
        .audit_entries(Some(id), None)
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == actor)
        .map(|e| e.action)
        .collect();
    assert_eq!(mine, vec!["read".to_string(), "export".to_string()]);
    assert_eq!(
        r.audit_entries(Some(id), None).unwrap().len(),
        w.audit_entries(Some(id), None).unwrap().len()
    );
    assert!(r.audit_verify().unwrap().ok);
}

#[test]
fn a_retention_run_of_the_writer_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let cloud = dir.path().join("cloud");
    let opts = StoreOptions {
        simulated_clock: true,
        ..small_options()
    };
    let w = common::open_gated(&store, &opts).unwrap();
    std::fs::write(
        store.join("policy.toml"),
        format!(
            "[cloud]\nurl = \"file://{}\"\n\n[category.default]\nupload = false\n\
             evict_after = \"3650d\"\ndelete_after = \"3650d\"\n\n[category.scratch]\n\
             upload = false\nevict_after = \"1d\"\ndelete_after = \"1d\"\n\n\
             [category.evidential]\nupload = true\nevict_after = \"1d\"\n\
             delete_after = \"3650d\"\n",
            cloud.display()
        ),
    )
    .unwrap();
    let mut src = BTreeMap::new();
    for i in 1..=6 {
        let (id, bytes) = ingest(&w, i);
        let cat = if i % 2 == 0 { "scratch" } else { "evidential" };
        w.categorize(id, cat, "sgt").unwrap();
        src.insert(id, (cat, bytes));
    }
    let held = *src.keys().nth(1).unwrap(); // a scratch one, held for a case
    w.hold(held, "CASE-1", "sgt").unwrap();
    let r = ro(&store);
    assert_eq!(r.len(), 6);
    let summary = w
        .retention_apply(T0 + 10 * 86_400_000_000, false, "retention", &mut |_| {})
        .unwrap();
    // Nothing moves for the reader until it refreshes.
    assert_eq!(r.len(), 6);
    assert!(r.info(held).is_ok());
    r.refresh().unwrap();
    let expect: Vec<u64> = src
        .iter()
        .filter(|(id, (cat, _))| *cat == "evidential" || **id == held)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(r.segment_ids(), expect, "{summary:?}");
    for id in &expect {
        let info = r.info(*id).unwrap();
        assert_eq!(info, w.info(*id).unwrap());
        if src[id].0 == "evidential" {
            assert_eq!(info.tier, footage::TierState::Cloud, "segment {id}");
        }
        assert_eq!(read_all(&r, *id), src[id].1, "segment {id}");
    }
}

#[test]
fn a_change_seen_before_its_segment_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    let (a, _) = ingest(&w, 1);
    let r = ro(dir.path());
    // B's commit goes to the volume of its footage day; its change to today's volume.
    let (b, bytes_b) = ingest(&w, 2);
    w.categorize(b, "evidential", "sgt").unwrap();
    w.hold(b, "CASE-2", "sgt").unwrap();
    let want = w.info(b).unwrap();
    let files = common::volume_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let footage_vol = &files[0];
    let full = std::fs::read(footage_vol).unwrap();
    // The reader reads the footage volume before B's commit record is there, and today's
    // volume after its changes are: hide the end of that commit record.
    std::fs::write(footage_vol, &full[..full.len() - 10]).unwrap();
    let rep = r.refresh().unwrap();
    assert_eq!(rep.segments, 0, "{rep:?}");
    assert_eq!(
        rep.deferred, 2,
        "the changes wait for their segment: {rep:?}"
    );
    assert_eq!(r.segment_ids(), vec![a]);
    std::fs::write(footage_vol, &full).unwrap();
    let rep = r.refresh().unwrap();
    assert_eq!(
        (rep.segments, rep.changes, rep.deferred),
        (1, 2, 0),
        "{rep:?}"
    );
    assert_eq!(r.info(b).unwrap(), want);
    assert_eq!(read_all(&r, b), bytes_b);
}

#[test]
fn an_invalid_record_in_an_active_volume_stops_the_reader_there() {
    let dir = tempfile::tempdir().unwrap();
    let w = common::open_gated(dir.path(), &small_options()).unwrap();
    let (a, _) = ingest(&w, 1);
    let r = ro(dir.path());
    let officer = "OFFICER-WITH-A-NAME-FOUND-ONLY-IN-ITS-COMMIT-RECORD";
    let bytes_b = random_bytes(2, 100_000);
    let b = w
        .ingest_bytes(meta(officer, "AX-1", T0 + 1), &bytes_b)
        .unwrap()
        .id;
    let (c, bytes_c) = ingest(&w, 3);
    let vol = newest_volume(dir.path());
    assert_eq!(common::volume_files(dir.path()).len(), 1);
    let full = std::fs::read(&vol).unwrap();
    let at = full
        .windows(officer.len())
        .position(|x| x == officer.as_bytes())
        .unwrap();
    // B's commit record fails its CRC, C's after it is fine: in a volume still being
    // written that is a record not complete yet, and nothing after it is taken either.
    let mut bad = full.clone();
    bad[at] ^= 0x20;
    std::fs::write(&vol, &bad).unwrap();
    let rep = r.refresh().unwrap();
    assert_eq!(rep.segments, 0, "{rep:?}");
    assert!(rep.damage.is_empty(), "{rep:?}");
    assert_eq!(r.segment_ids(), vec![a]);
    assert_eq!(ro(dir.path()).segment_ids(), vec![a]);
    std::fs::write(&vol, &full).unwrap();
    let rep = r.refresh().unwrap();
    assert_eq!(rep.segments, 2, "{rep:?}");
    assert_eq!(r.segment_ids(), vec![a, b, c]);
    assert_eq!(read_all(&r, b), bytes_b);
    assert_eq!(read_all(&r, c), bytes_c);
}

#[test]
fn segments_a_footage_ingest_process_commits_appear_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let src = closed_store(&store, 1);
    let r = ro(&store);
    assert_eq!(r.len(), 1);
    let clip = dir.path().join("clip.bin");
    let bytes = random_bytes(42, 200_000);
    std::fs::write(&clip, &bytes).unwrap();
    // Another process owns the store while it ingests (it takes the locks), then exits.
    let out = common::output(
        std::process::Command::new(env!("CARGO_BIN_EXE_footage"))
            .arg("--store")
            .arg(&store)
            .arg("ingest")
            .arg(&clip)
            .args([
                "--officer",
                "MET-1",
                "--device",
                "AX-9",
                "--start",
                "2025-11-20T14:03:00Z",
                "--end",
                "2025-11-20T14:04:00Z",
            ]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r.len(), 1, "not before refresh");
    let rep = r.refresh().unwrap();
    assert_eq!(rep.segments, 1, "{rep:?}");
    let new = *r
        .segment_ids()
        .iter()
        .find(|id| !src.contains_key(id))
        .unwrap();
    assert_eq!(read_all(&r, new), bytes);
    assert_eq!(r.info(new).unwrap().officer, "MET-1");
}
