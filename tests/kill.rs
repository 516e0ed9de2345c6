//! Real crashes: `footage ingest --manifest` killed with SIGKILL at random moments. Every
//! segment the process printed before it died (acknowledged) must read back with its SHA-256,
//! `verify` must pass, and finishing the manifest afterwards must store nothing twice.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILES: usize = 36;
const KILLS: usize = 24;

/// One manifest line: the clip's bytes, its device and SHA-256.
struct Entry {
    data: Vec<u8>,
    device: String,
    sha: String,
}

/// Writes FILES clips plus two lines that repeat earlier clips from the same camera.
fn write_manifest(dir: &Path) -> (PathBuf, Vec<Entry>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(36);
    let mut entries = Vec::new();
    let mut lines = String::new();
    for i in 0..FILES + 2 {
        let (file, data, device) = if i < FILES {
            let data = random_bytes(1000 + i as u64, rng.random_range(1_000..200_000));
            let file = format!("clip-{i:02}.bin");
            std::fs::write(dir.join(&file), &data).unwrap();
            (file, data, format!("AX-{}", i % 3))
        } else {
            let j = (i - FILES) * 7 + 3;
            let e: &Entry = &entries[j];
            (format!("clip-{j:02}.bin"), e.data.clone(), e.device.clone())
        };
        lines.push_str(&format!(
            r#"{{"file": "{file}", "officer": "MET-{i}", "device": "{device}", "start": "2025-11-20T14:03:00Z", "end": "2025-11-20T14:13:00Z"}}"#
        ));
        lines.push('\n');
        let sha = hex(&Sha256::digest(&data));
        entries.push(Entry { data, device, sha });
    }
    let manifest = dir.join("dock.jsonl");
    std::fs::write(&manifest, lines).unwrap();
    (manifest, entries)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A store with small chunks and volumes (the CLI keeps the settings of an existing store).
fn new_store(dir: &Path) {
    open_small(dir).close().unwrap();
}

/// What one run printed before it ended: complete lines only.
struct Run {
    lines: Vec<serde_json::Value>,
    killed: bool,
    code: Option<i32>,
}

/// When to kill a run: once it has printed `lines` lines, `then` later.
#[derive(Debug, Clone, Copy)]
struct KillAt {
    lines: usize,
    then: Duration,
}

/// Runs the ingest, killing it with SIGKILL at `kill` if it is still running then.
fn run_ingest(store: &Path, manifest: &Path, kill: Option<KillAt>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_footage"))
        .arg("--store")
        .arg(store)
        .arg("ingest")
        .arg("--manifest")
        .arg(manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            // A line cut short by the kill was never fully printed: not acknowledged.
            if line.ends_with('\n') {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let _ = tx.send(v);
            }
            line.clear();
        }
    });
    let mut lines = Vec::new();
    if let Some(k) = kill {
        while lines.len() < k.lines {
            match rx.recv() {
                Ok(v) => lines.push(v),
                Err(_) => break,
            }
        }
        let deadline = Instant::now() + k.then;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_micros(100).min(deadline - Instant::now()));
        }
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    Run {
        lines,
        killed: status.signal() == Some(libc::SIGKILL),
        code: status.code(),
    }
}

/// Records what a run acknowledged: line i is manifest entry i.
fn acknowledge(run: &Run, entries: &[Entry], acked: &mut BTreeMap<u64, usize>) {
    for (i, line) in run.lines.iter().enumerate() {
        let id: u64 = line["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(line["sha256"], entries[i].sha.as_str(), "line {i}: {line}");
        assert_eq!(line["bytes"], entries[i].data.len(), "line {i}");
        if let Some(&j) = acked.get(&id) {
            assert_eq!(entries[j].sha, entries[i].sha, "id {id} reused");
        }
        acked.insert(id, i);
    }
}

/// Every acknowledged segment reads back exactly, nothing is stored twice or from nowhere,
/// and `verify` passes.
fn check_store(dir: &Path, entries: &[Entry], acked: &BTreeMap<u64, usize>, ctx: &str) {
    let store = footage::testing::open_or_create_default(dir)
        .unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
    for (&id, &i) in acked {
        let info = store
            .info(id)
            .unwrap_or_else(|e| panic!("{ctx}: acknowledged segment {id} lost: {e}"));
        assert_eq!(info.sha256_hex(), entries[i].sha, "{ctx}: segment {id}");
        let bytes = store.read_range(id, 0, u64::MAX).unwrap();
        assert!(bytes == entries[i].data, "{ctx}: segment {id} differs");
    }
    let known: HashSet<(&str, &str)> = entries
        .iter()
        .map(|e| (e.device.as_str(), e.sha.as_str()))
        .collect();
    let mut seen = HashSet::new();
    for id in store.segment_ids() {
        let info = store.info(id).unwrap();
        let key = (info.device.clone(), info.sha256_hex());
        assert!(
            known.contains(&(key.0.as_str(), key.1.as_str())),
            "{ctx}: segment {id} is no clip of the manifest"
        );
        assert!(seen.insert(key), "{ctx}: segment {id} stored twice");
    }
    let report = store.verify(None, |_| {}).unwrap();
    common::assert_verify_clean(&report, ctx);
}

/// Runs the manifest to the end: every clip is stored once, earlier ones are duplicates.
fn finish(dir: &Path, manifest: &Path, entries: &[Entry], acked: &mut BTreeMap<u64, usize>) {
    let before = acked.clone();
    let run = run_ingest(dir, manifest, None);
    assert_eq!(run.code, Some(0), "the ingest failed");
    assert_eq!(run.lines.len(), entries.len());
    for (i, line) in run.lines.iter().enumerate() {
        let id: u64 = line["id"].as_str().unwrap().parse().unwrap();
        if before.contains_key(&id) || i >= FILES {
            assert_eq!(line["duplicate"], true, "line {i}: {line}");
        }
    }
    acknowledge(&run, entries, acked);
    let ids: HashSet<u64> = acked.keys().copied().collect();
    assert_eq!(ids.len(), FILES, "each clip has one id");
    check_store(dir, entries, acked, "finished");
    assert_eq!(
        footage::testing::open_or_create_default(dir).unwrap().len(),
        FILES
    );
    let again = run_ingest(dir, manifest, None);
    assert_eq!(again.code, Some(0));
    assert!(again.lines.iter().all(|l| l["duplicate"] == true));
}

#[test]
fn sigkill_during_ingest_loses_nothing_acknowledged_and_stores_nothing_twice() {
    let base = tempfile::tempdir().unwrap();
    let (manifest, entries) = write_manifest(base.path());
    // How long one clip takes here, to spread the kills over the work between two lines.
    let scratch = base.path().join("scratch");
    new_store(&scratch);
    let t = Instant::now();
    let run = run_ingest(&scratch, &manifest, None);
    let per_entry = t.elapsed() / entries.len() as u32;
    assert_eq!((run.code, run.lines.len()), (Some(0), entries.len()));

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9);
    let mut round = 0;
    let mut dir = base.path().join("store-0");
    new_store(&dir);
    let mut acked = BTreeMap::new();
    let (mut kills, mut attempts) = (0, 0);
    while kills < KILLS {
        attempts += 1;
        assert!(attempts < 20 * KILLS, "only {kills} kills landed");
        let at = KillAt {
            lines: rng.random_range(0..entries.len()),
            then: per_entry.mul_f64(rng.random_range(0.0..2.0)),
        };
        let run = run_ingest(&dir, &manifest, Some(at));
        acknowledge(&run, &entries, &mut acked);
        let ctx = format!("kill {kills} at {at:?} ({} printed)", run.lines.len());
        // Sometimes the next run, not this test, recovers the store (and may be killed
        // while it does).
        if !run.killed || rng.random_bool(0.6) {
            check_store(&dir, &entries, &acked, &ctx);
        }
        if run.killed {
            kills += 1;
        } else {
            // The run got to the end: finish this store and start another.
            assert_eq!(run.code, Some(0));
            finish(&dir, &manifest, &entries, &mut acked);
            round += 1;
            dir = base.path().join(format!("store-{round}"));
            new_store(&dir);
            acked.clear();
        }
    }
    finish(&dir, &manifest, &entries, &mut acked);
}
