//! The audit log and the chain of custody: the hash chain verifies after every kind of action,
//! any flipped bit, truncation or crash is detected or survived as promised, concurrent
//! writers keep one valid chain, exports carry a custody record that matches the file, and
//! `get --verify` refuses bytes that do not match the recorded SHA-256.

mod common;

use footage::AuditAction as Action;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_dir, meta, random_bytes, small_options, volume_files, T0};
use footage::audit::format::FILE_HEADER_LEN;
use footage::audit::scan::{scan, Item};
use footage::{Change, Query, Store};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Opens a store with small chunks. A child process another test is spawning holds a copy of
/// every open descriptor between its fork and exec, so the lock of a store just closed may
/// still be held for a moment: retry briefly.
fn open_small(path: &Path) -> Store {
    let t = std::time::Instant::now();
    loop {
        match footage::testing::open_or_create_with(path, &small_options()) {
            Err(footage::Error::Locked { .. }) if t.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            r => return r.unwrap(),
        }
    }
}

fn open(path: &Path) -> Store {
    open_small(path)
}

fn audit_files(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(store.join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

/// Start and end offsets of every entry frame of an audit file.
fn frames(path: &Path) -> Vec<(usize, usize)> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    scan(&data, FILE_HEADER_LEN, |it| {
        if let Item::Entry { offset, end, .. } = it {
            out.push((offset, end));
        }
    });
    out
}

fn actions(store: &Store, segment: Option<u64>) -> Vec<String> {
    store
        .audit_entries(segment, None)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// A store with some footage and a few recorded actions of every kind, closed.
fn busy_store(path: &Path) -> Vec<u64> {
    let store = open_small(path).with_actor("pc.smith").unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let data = random_bytes(i, 150_000);
        ids.push(
            store
                .ingest_bytes(meta("MET-1", "AX-1", T0 + i as i64), &data)
                .unwrap()
                .id,
        );
    }
    store.read_range(ids[0], 10, 100).unwrap();
    std::io::copy(
        &mut store.open_segment(ids[1]).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
    store.find(&Query::new().officer("MET-1")).unwrap();
    store.categorize(ids[0], "evidential", "sgt.jones").unwrap();
    store.hold(ids[2], "OP-1", "sgt.jones").unwrap();
    store.release(ids[2], "OP-1", "sgt.jones").unwrap();
    store
        .audit(
            "svc.retention",
            Action::Evict,
            Some(ids[1]),
            json!({"why": "31 days"}),
        )
        .unwrap();
    store.close().unwrap();
    ids
}

#[test]
fn the_chain_verifies_after_many_actions_and_shows_who_did_what() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let ids = busy_store(&path);
    let store = open_small(&path);
    let r = store.audit_verify().unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!(r.recorded_head.as_ref().unwrap().count, r.head.count);
    let all = store.audit_entries(None, None).unwrap();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.index, i as u64);
        if i > 0 {
            assert_eq!(e.prev_hash, all[i - 1].hash);
        }
    }
    assert_eq!(
        actions(&store, Some(ids[0])),
        ["ingest", "read", "categorize"]
    );
    assert_eq!(actions(&store, Some(ids[2])), ["ingest", "hold", "release"]);
    assert_eq!(actions(&store, Some(ids[1])), ["ingest", "read", "evict"]);
    let query = all.iter().find(|e| e.action == "query").unwrap();
    assert_eq!(query.actor, "pc.smith");
    assert_eq!(query.details["officers"], json!(["MET-1"]));
    assert_eq!(query.details["results"], 3);
    let ingest = &all[0];
    assert_eq!(
        (ingest.actor.as_str(), ingest.segment),
        ("pc.smith", Some(ids[0]))
    );
    assert_eq!(ingest.details["duplicate"], false);
    let hold = all.iter().find(|e| e.action == "hold").unwrap();
    assert_eq!(hold.actor, "sgt.jones");
    assert_eq!(hold.details["case"], "OP-1");
    assert_eq!(hold.details["changed"], true);
    // The change record's log sequence number, which verify's audit cross-check uses.
    assert!(hold.details["lsn"].as_u64().is_some(), "{:?}", hold.details);
    assert_eq!(all.last().unwrap().action, "head");
    // --since keeps the later entries only.
    let t = all[5].time_us;
    let since = store.audit_entries(None, Some(t)).unwrap();
    assert!(since.iter().all(|e| e.time_us >= t) && since.len() <= all.len() - 5);
    // A handle without an actor records changes as "system", and not its reads.
    let n = all.len();
    store.read_range(ids[0], 0, 1).unwrap();
    let d = store.ingest_bytes(meta("MET-1", "AX-1", T0), &random_bytes(0, 150_000));
    assert!(d.unwrap().duplicate);
    let after = store.audit_entries(None, None).unwrap();
    assert_eq!(after.len(), n + 1);
    assert_eq!(after[n].actor, "system");
    assert_eq!(after[n].details["duplicate"], true);
    // Bad names are refused before anything happens.
    assert!(store.with_actor("").is_err());
    assert!(store.with_actor("(footage)").is_err());
    assert!(store
        .audit("a", Action::Custom("two words".into()), None, json!({}))
        .is_err());
    assert!(store.change(ids[0], &Change::Tag("x".into()), "").is_err());
    assert!(!store.info(ids[0]).unwrap().tags.contains(&"x".to_string()));
}

#[test]
fn a_head_entry_is_written_every_256_entries_and_each_describes_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    for i in 0..600u64 {
        // Batched and durable entries alternate.
        let a = if i % 2 == 0 {
            Action::Read
        } else {
            Action::Custom("note".into())
        };
        store
            .audit("pc.smith", a, Some(i), json!({ "i": i }))
            .unwrap();
    }
    let heads: Vec<_> = store
        .audit_entries(None, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "head")
        .collect();
    assert_eq!(
        heads.iter().map(|h| h.index).collect::<Vec<_>>(),
        [256, 512]
    );
    for h in &heads {
        assert_eq!(h.details["count"], h.index);
        assert_eq!(h.details["head"], footage::hex(&h.prev_hash));
    }
    let (count, hash) = store.audit_head();
    assert_eq!(count, 602);
    assert!(store.audit_verify().unwrap().ok);
    drop(store);
    let store = open_small(dir.path());
    assert_eq!(store.audit_head(), (count, hash));
}

/// Restores the pristine audit dir of `path` from `saved`.
fn restore(path: &Path, saved: &Path) {
    let audit = path.join("audit");
    std::fs::remove_dir_all(&audit).unwrap();
    copy_dir(saved, &audit);
}

#[test]
fn flipping_any_bit_of_the_audit_log_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    busy_store(&path);
    let saved = dir.path().join("saved");
    copy_dir(&path.join("audit"), &saved);
    let file = audit_files(&path)[0].clone();
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    let frames = frames(&file);
    // Every byte of the header and of the first and last entries, and a spread of others.
    let mut positions: Vec<usize> = (0..FILE_HEADER_LEN).collect();
    for &(a, b) in [frames[0], frames[frames.len() - 1]].iter() {
        positions.extend(a..b);
    }
    positions.extend((FILE_HEADER_LEN..len).step_by(37));
    positions.sort_unstable();
    positions.dedup();
    for (k, pos) in positions.into_iter().enumerate() {
        restore(&path, &saved);
        let mut b = std::fs::read(&file).unwrap();
        b[pos] ^= 1 << (k % 8);
        std::fs::write(&file, &b).unwrap();
        let store = open_small(&path);
        let r = store.audit_verify().unwrap();
        assert!(!r.ok, "flipped bit {} of byte {pos} not detected", k % 8);
        let first = r.first_broken.unwrap();
        assert!(!first.what.is_empty());
    }
}

#[test]
fn truncating_the_tail_after_a_head_checkpoint_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    busy_store(&path);
    let saved = dir.path().join("saved");
    copy_dir(&path.join("audit"), &saved);
    let file = audit_files(&path)[0].clone();
    let frames = frames(&file);
    let n = frames.len();
    // Cut whole entries (a clean cut), part of one (torn), or everything after the header.
    for cut in [
        frames[n - 1].0,
        frames[n - 3].0,
        frames[n - 1].0 + 5,
        FILE_HEADER_LEN,
    ] {
        restore(&path, &saved);
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);
        for _ in 0..2 {
            // Reported at once, and still after later opens (HEAD is rewritten by then).
            let store = open_small(&path);
            let r = store.audit_verify().unwrap();
            assert!(!r.ok, "cut at {cut} not detected: {r:#?}");
            let first = r.first_broken.unwrap();
            assert!(first.what.contains("truncated"), "{first:?}");
            store
                .audit("pc.smith", Action::Read, None, json!({}))
                .unwrap();
        }
    }
    // Removing the files altogether is truncation too.
    restore(&path, &saved);
    for f in audit_files(&path) {
        std::fs::remove_file(f).unwrap();
    }
    let r = open_small(&path).audit_verify().unwrap();
    assert!(!r.ok && r.first_broken.unwrap().what.contains("truncated"));
}

#[test]
fn concurrent_writers_keep_one_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let s = store.with_actor(&format!("officer-{t}")).unwrap();
            std::thread::spawn(move || {
                for i in 0..150u64 {
                    match i % 10 {
                        0 => {
                            let m = meta("MET-1", &format!("AX-{t}"), T0 + i as i64);
                            s.ingest_bytes(m, &random_bytes(t * 1000 + i, 3000))
                                .unwrap();
                        }
                        1..=4 => s
                            .audit(s.actor(), Action::Read, Some(i), json!({ "t": t, "i": i }))
                            .unwrap(),
                        _ => s
                            .audit(
                                s.actor(),
                                Action::Upload,
                                Some(i),
                                json!({ "t": t, "i": i }),
                            )
                            .unwrap(),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = store.audit_verify().unwrap();
    assert!(r.ok, "{r:#?}");
    let all = store.audit_entries(None, None).unwrap();
    let heads = all.iter().filter(|e| e.action == "head").count();
    assert_eq!(all.len(), 8 * 150 + heads);
    for t in 0..8u64 {
        let mine: Vec<u64> = all
            .iter()
            .filter(|e| e.actor == format!("officer-{t}") && e.action != "ingest")
            .map(|e| e.details["i"].as_u64().unwrap())
            .collect();
        let mut sorted = mine.clone();
        sorted.sort_unstable();
        assert_eq!(mine, sorted, "thread {t}'s entries are out of order");
        assert_eq!(mine.len(), 135);
    }
}

#[test]
fn a_crash_keeps_every_acknowledged_entry_and_cuts_only_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = open_small(&path).with_actor("pc.smith").unwrap();
    let id = store
        .ingest_bytes(meta("MET-1", "AX-1", T0), &random_bytes(1, 100_000))
        .unwrap()
        .id;
    for i in 0..20 {
        store
            .change(id, &Change::Tag(format!("t{i}")), "sgt.jones")
            .unwrap();
    }
    // The store is still open: copying it is what a power cut leaves (and more).
    let crashed = dir.path().join("crashed");
    copy_dir(&path, &crashed);
    let want = store.audit_entries(None, None).unwrap();
    drop(store);
    let file = audit_files(&crashed).last().unwrap().clone();
    let mut torn = crashed.clone();
    torn.set_file_name("torn");
    copy_dir(&crashed, &torn);
    let copy = |p: &Path| {
        let s = open(p);
        let got = s.audit_entries(None, None).unwrap();
        assert_eq!(got[..want.len()], want[..]);
        let r = s.audit_verify().unwrap();
        assert!(r.ok, "{r:#?}");
        r
    };
    copy(&crashed);
    // A half-written entry after the acknowledged ones is cut (and kept aside).
    let torn_file = torn.join("audit").join(file.file_name().unwrap());
    let whole = std::fs::read(&torn_file).unwrap();
    let last = frames(&torn_file).last().unwrap().0;
    let mut b = whole.clone();
    b.extend_from_slice(&whole[last..last + 20]);
    std::fs::write(&torn_file, &b).unwrap();
    let r = copy(&torn);
    assert!(r.notes.iter().any(|n| n.contains("torn")), "{:?}", r.notes);
    assert!(std::fs::read_dir(torn.join("audit")).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("torn-")));
}

fn footage() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_footage"));
    c.env_remove("FOOTAGE_ACTOR").env_remove("FOOTAGE_STORE");
    c
}

/// Runs the CLI, retrying while the store's lock is still held (see `open_small`).
fn run(store: &Path, args: &[&str]) -> std::process::Output {
    let t = std::time::Instant::now();
    loop {
        let o = footage()
            .arg("--store")
            .arg(store)
            .args(args)
            .output()
            .unwrap();
        let locked = String::from_utf8_lossy(&o.stderr).contains("is locked by another process");
        if !locked || t.elapsed().as_secs() >= 10 {
            return o;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn export_writes_the_footage_and_a_custody_record_that_matches_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let mut mp4 = vec![0, 0, 0, 24];
    mp4.extend_from_slice(b"ftypisom");
    mp4.extend_from_slice(&random_bytes(3, 200_000));
    let (a, b) = {
        let store = open_small(&path).with_actor("pc.smith").unwrap();
        let a = store.ingest_bytes(meta("MET-1", "AX-1", T0), &mp4).unwrap();
        let b = store
            .ingest_bytes(meta("MET-1", "AX-1", T0 + 1), &random_bytes(4, 5000))
            .unwrap();
        store.categorize(a.id, "evidential", "sgt.jones").unwrap();
        (a, b)
    };
    let out = dir.path().join("case 17");
    let store = open_small(&path).with_actor("det.insp.moss").unwrap();
    let e = store.export(a.id, &out).unwrap();
    assert_eq!(e.file, out.join(format!("{}.mp4", a.id)));
    let bytes = std::fs::read(&e.file).unwrap();
    assert_eq!(bytes, mp4);
    let custody: Value = serde_json::from_slice(&std::fs::read(&e.custody).unwrap()).unwrap();
    let sha = footage::hex(&Sha256::digest(&bytes));
    assert_eq!(custody["sha256"], sha);
    assert_eq!(custody["segment"]["sha256"], sha);
    assert_eq!(custody["sha256_verified"], true);
    assert_eq!(custody["exported_by"], "det.insp.moss");
    assert_eq!(custody["segment"]["categories"], json!(["evidential"]));
    let trail: Vec<&str> = custody["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(trail, ["ingest", "categorize", "export"]);
    let export_entry = &custody["audit"][2];
    assert_eq!(export_entry["actor"], "det.insp.moss");
    assert_eq!(export_entry["hash"], custody["export_entry"]["hash"]);
    let head = custody["chain_head"]["count"].as_u64().unwrap();
    assert!(head > custody["export_entry"]["index"].as_u64().unwrap());
    // Nothing else is left in the directory; a second export there is refused.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
    assert!(store.export(a.id, &out).is_err());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
    drop(store);
    // Not an MP4: .bin. Through the CLI, with the actor after the command.
    let out2 = dir.path().join("o2");
    let o = run(
        &path,
        &[
            "export",
            &b.id.to_string(),
            "--out",
            out2.to_str().unwrap(),
            "--actor",
            "pc.jones",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The claimed actor, with the OS identity beside it (issue 10 item 13).
    let by = printed["exported_by"].as_str().unwrap();
    assert!(by.starts_with("pc.jones (os:uid="), "{by}");
    assert!(out2.join(format!("{}.bin", b.id)).exists());
    assert!(out2.join(format!("{}.custody.json", b.id)).exists());
    let store = open_small(&path);
    assert!(store.audit_verify().unwrap().ok);
    assert_eq!(actions(&store, Some(b.id)), ["ingest", "export"]);
}

/// Offset of the first chunk payload of the first volume (its header is at 4064).
const FIRST_PAYLOAD: usize = 4096;

#[test]
fn get_verify_refuses_a_corrupted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let data = random_bytes(9, 300_000);
    let id = {
        let s = open_small(&path);
        s.ingest_bytes(meta("MET-1", "AX-1", T0), &data).unwrap().id
    };
    let ids = id.to_string();
    let out = dir.path().join("clip.mp4");
    let o = run(
        &path,
        &["get", &ids, "--verify", "--out", out.to_str().unwrap()],
    );
    assert!(o.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let o = run(&path, &["get", &ids, "--verify"]);
    assert_eq!(o.stdout, data);
    std::fs::remove_file(&out).unwrap();
    assert!(
        run(&path, &["get", &ids, "--verify", "--offset", "1"])
            .status
            .code()
            == Some(2)
    );

    // Rot one byte of the first chunk and fix nothing: the chunk CRC catches it first.
    let vol = volume_files(&path)[0].clone();
    let pristine = std::fs::read(&vol).unwrap();
    let mut b = pristine.clone();
    b[FIRST_PAYLOAD + 100] ^= 0x04;
    std::fs::write(&vol, &b).unwrap();
    let refused = |o: std::process::Output, out: &Path| {
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.starts_with("error: ") && err.contains(&format!("segment {id}")),
            "{err}"
        );
        assert!(!out.exists());
        // No temporary file (`.NAME.<random>.footage-partial`) is left beside it.
        let dir = out.parent().unwrap();
        assert!(!std::fs::read_dir(dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".footage-partial")));
    };
    refused(
        run(
            &path,
            &["get", &ids, "--verify", "--out", out.to_str().unwrap()],
        ),
        &out,
    );
    // Now make the chunk's CRCs match the rotten bytes: only the SHA-256 can tell.
    common::reseal_chunk(&mut b, FIRST_PAYLOAD - 32);
    std::fs::write(&vol, &b).unwrap();
    let o = run(
        &path,
        &["get", &ids, "--verify", "--out", out.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    refused(o, &out);
    assert!(err.contains("SHA-256"), "{err}");
    // To stdout: the error comes at the end, exit 1, and the last bytes are withheld.
    let o = run(&path, &["get", &ids, "--verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.len() < data.len());
    // Without --verify the CRC-valid bytes are delivered (that is what --verify is for).
    assert_eq!(run(&path, &["get", &ids]).stdout.len(), data.len());
    let s = open(&path);
    let e = s.export(id, &dir.path().join("x")).unwrap_err().to_string();
    assert!(e.contains("SHA-256"), "{e}");
    assert!(!dir.path().join("x").join(format!("{id}.bin")).exists());
    assert_eq!(std::fs::read_dir(dir.path().join("x")).unwrap().count(), 0);
}

#[test]
fn the_cli_lists_the_trail_as_json_lines_and_verify_names_the_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let clip = dir.path().join("a.bin");
    std::fs::write(&clip, random_bytes(5, 1000)).unwrap();
    assert!(run(&path, &["init"]).status.success());
    let ingest = run(
        &path,
        &[
            "--actor",
            "pc.smith",
            "ingest",
            clip.to_str().unwrap(),
            "--officer",
            "MET-1",
            "--device",
            "AX-1",
            "--start",
            "2025-11-20T14:03:00Z",
            "--end",
            "2025-11-20T14:13:00Z",
        ],
    );
    assert!(ingest.status.success());
    let o = run(&path, &["get", "1", "--actor", "sgt.jones"]);
    assert!(o.status.success());
    run(
        &path,
        &["find", "--officer", "MET-1", "--actor", "sgt.jones"],
    );
    run(&path, &["tag", "1", "night", "--actor", "sgt.jones"]);
    let o = run(&path, &["audit", "--segment", "1"]);
    assert!(o.status.success());
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The claimed actor; the OS identity is recorded beside it (issue 10 item 13).
    fn claimed(a: &str) -> &str {
        a.split(" (os:uid=").next().unwrap()
    }
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                claimed(l["actor"].as_str().unwrap()),
                l["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["actor"].as_str().unwrap().contains(" (os:uid=")));
    assert_eq!(
        got,
        [
            ("pc.smith", "ingest"),
            ("sgt.jones", "read"),
            ("sgt.jones", "tag")
        ]
    );
    for l in &lines {
        for k in ["time", "actor", "action", "segment", "details", "hash"] {
            assert!(l.get(k).is_some(), "{k} missing from {l}");
        }
        assert_eq!(l["segment"], "1");
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
    }
    let all = run(&path, &["audit"]);
    assert!(String::from_utf8_lossy(&all.stdout).contains("\"query\""));
    let since = run(&path, &["audit", "--since", "2999-01-01T00:00:00Z"]);
    assert!(since.status.success() && since.stdout.is_empty());
    let ok = run(&path, &["audit", "--verify"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["ok"], true);

    // Alter the details of the ingest entry and fix its CRC: only the hash chain can tell.
    let file = audit_files(&path)[0].clone();
    let mut b = std::fs::read(&file).unwrap();
    let (start, end) = frames(&file)[0];
    let body = &mut b[start + 12..end];
    let at = body.windows(4).position(|w| w == b"1000").unwrap();
    body[at] = b'9';
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[start + 4..start + 8]);
    crc.update(&b[start + 12..end]);
    let c = crc.finalize();
    b[start + 8..start + 12].copy_from_slice(&c.to_le_bytes());
    std::fs::write(&file, &b).unwrap();
    let bad = run(&path, &["audit", "--verify"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.starts_with("error: the audit chain is broken at entry 0 ("),
        "{err}"
    );
    assert!(err.contains("altered"), "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn a_batched_read_is_durable_within_about_a_second_without_more_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_small(dir.path());
    store
        .audit("pc.smith", Action::Tag, Some(1), json!({}))
        .unwrap();
    assert_eq!(store.audit_head().0, 1);
    let t = std::time::Instant::now();
    store
        .audit("pc.smith", Action::Read, Some(1), json!({}))
        .unwrap();
    while store.audit_head().0 < 2 {
        assert!(
            t.elapsed().as_secs() < 5,
            "the batched entry never became durable"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
