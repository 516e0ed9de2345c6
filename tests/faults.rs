//! Fault injection at every durable I/O call of an ingest (issue #6): the N-th write fails
//! with ENOSPC or EIO, or writes only part of its buffer, or the N-th fsync fails with EIO,
//! for every N the workload reaches: chunk writes, commit records, volume creation, seals,
//! checkpoints (track file and checkpoint file), audit appends, `close`.
//!
//! An injected fsync failure also drops what the file had not made durable (the injector
//! restores the bytes and length of its last successful fsync, as a kernel that lost the dirty
//! pages would), so an engine that ignored the error would lose acknowledged data here.
//!
//! After each case: the failing call returned a typed error (`DiskFull` / `Io` / `Poisoned`);
//! everything acknowledged reads back exactly, before and after a reopen; nothing whose
//! failure came from the log (a volume) is visible; the reopened store verifies, its audit
//! chain verifies, it holds an `ingest` entry for every acknowledged segment, no `.tmp` file
//! is left, and ingest works again (a retried failed segment comes back stored, as a
//! duplicate if it had become durable).

mod common;

use std::path::Path;

use common::{meta, random_bytes, T0};
use footage::faults::{self, Fault, Op};
use footage::{Error, Store, StoreOptions};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// The injector is global: cases run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const DAY_US: i64 = 86_400_000_000;
/// Sizes of the workload's segments: several chunks, a chunk exactly full, a tiny one.
const SIZES: [usize; 6] = [150_000, 70_000, 5_000, 260_000, 2 * 65_504, 90_000];

fn options() -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        // Four chunks: volumes fill, are sealed and new ones created during the workload.
        volume_size: 256 * 1024,
        // Checkpoints (track file + checkpoint file) during the workload.
        checkpoint_every: 2,
        ..StoreOptions::default()
    }
}

struct Attempt {
    meta: footage::SegmentMeta,
    data: Vec<u8>,
    /// The id the segment gets if its commit record is written.
    id: u64,
    result: Result<footage::Committed, Error>,
    /// `last_checkpoint_error` right after the attempt (a later checkpoint may clear it).
    checkpoint_error: Option<String>,
}

fn segment(i: usize) -> (footage::SegmentMeta, Vec<u8>) {
    // Two footage days, so two volumes are active at once.
    let start = T0 + (i as i64 % 2) * DAY_US + i as i64 * 1_000_000;
    let mut m = meta("MET-000001", &format!("AX-{i}"), start);
    m.tags = vec![format!("seg-{i}")];
    (m, random_bytes(1000 + i as u64, SIZES[i % SIZES.len()]))
}

/// Ingests in two writes (one leaves a partial chunk buffered); records the outcome.
fn attempt(store: &Store, m: footage::SegmentMeta, data: Vec<u8>) -> Attempt {
    let mut id = 0;
    let result = (|| {
        let mut w = store.begin_segment(m.clone())?;
        id = w.id();
        let cut = data.len().min(100_000);
        w.write(&data[..cut])?;
        w.write(&data[cut..])?;
        w.commit()
    })();
    Attempt {
        meta: m,
        data,
        id,
        result,
        checkpoint_error: store.last_checkpoint_error(),
    }
}

/// The workload, run with the injector armed. Returns the attempts and `close`'s result.
fn workload(store: Store) -> (Vec<Attempt>, Result<(), Error>) {
    let attempts = (0..SIZES.len())
        .map(|i| {
            let (m, d) = segment(i);
            attempt(&store, m, d)
        })
        .collect();
    (attempts, store.close())
}

/// A fresh directory, in RAM (`/dev/shm`) where there is one: the sweep runs hundreds of
/// cases of about 70 fsyncs each, and the injected faults do not depend on the file system.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// An error from the log itself (a volume file): its segment must never become visible.
fn from_volume(e: &Error) -> bool {
    let path = match e {
        Error::DiskFull { path, .. } | Error::Io { path, .. } | Error::Poisoned { path } => path,
        _ => return false,
    };
    path.extension().is_some_and(|x| x == "ftv")
}

fn is_eio(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.raw_os_error() == Some(libc::EIO))
}

/// Checks the error of a failed operation against the injected fault.
fn check_error(case: &str, e: &Error, fault: Fault, first: bool) {
    match e {
        Error::DiskFull { path, .. } => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("disk full") && msg.contains(&*path.to_string_lossy()),
                "{case}: {msg}"
            );
            assert!(
                !first || matches!(fault, Fault::NoSpace | Fault::ShortThenNoSpace),
                "{case}: disk full from {fault:?}"
            );
        }
        Error::Io { .. } if is_eio(e) => {
            assert!(
                !first || fault == Fault::Eio,
                "{case}: EIO from {fault:?}: {e}"
            )
        }
        Error::Poisoned { .. } => assert!(!first, "{case}: poisoned before any failure: {e}"),
        other => panic!("{case}: unexpected error {other:?}"),
    }
}

fn assert_reads_back(case: &str, store: &Store, id: u64, data: &[u8]) {
    let got = store
        .read_range(id, 0, data.len() as u64 + 1)
        .unwrap_or_else(|e| panic!("{case}: segment {id} unreadable: {e}"));
    assert!(got == data, "{case}: segment {id} reads back wrong bytes");
}

fn no_temporaries(case: &str, root: &Path) {
    for sub in ["", "catalog", "audit"] {
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "{case}: {sub}/{name} left behind");
        }
    }
}

/// A second fault injected with the first: (operation, position, fault).
type Also = Option<(Op, u64, Fault)>;

/// Runs the workload with one fault (and maybe a second); checks everything. Returns whether
/// the fault fired.
fn run_case(op: Op, nth: u64, fault: Fault, sticky: bool, also: Also) -> bool {
    let case = format!(
        "{op:?} #{nth} {fault:?}{}{}",
        if sticky { " sticky" } else { "" },
        also.map(|a| format!(" + {a:?}")).unwrap_or_default()
    );
    let dir = scratch_dir();
    let store = footage::testing::open_or_create_with(dir.path(), &options()).unwrap();
    let probe = store.clone();
    faults::inject(op, nth, fault, sticky);
    if let Some((op, nth, fault)) = also {
        faults::inject_also(op, nth, fault);
    }
    let (attempts, closed) = workload(store);
    let seen = faults::clear();
    let fired = seen.fired > 0;

    // The errors are typed and match the fault; the first one is the fault itself, unless a
    // checkpoint met it first (its audit log sync: a new segment's `ingest` entry is batched,
    // so a checkpoint can be the first to fsync it) and kept it for `last_checkpoint_error`.
    let mut first = true;
    for a in &attempts {
        if let Err(e) = &a.result {
            check_error(&case, e, fault, first);
            first = false;
        }
        if a.checkpoint_error.is_some() {
            first = false;
        }
    }
    if let Err(e) = &closed {
        check_error(&case, e, fault, first);
    }
    if op == Op::Sync && fired {
        // A failed fsync (whose unsynced bytes the injector dropped) surfaced: a call
        // returned an error, or the automatic checkpoint kept it for `last_checkpoint_error`.
        let surfaced = attempts
            .iter()
            .any(|a| a.result.is_err() || a.checkpoint_error.is_some())
            || closed.is_err();
        assert!(
            surfaced,
            "item21 {case}: the fsync failure surfaced nowhere"
        );
    }
    if fault == Fault::ShortCount {
        // A short count is not an error: the write loop finishes the write.
        assert!(
            attempts.iter().all(|a| a.result.is_ok()) && closed.is_ok(),
            "{case}: a short count became an error"
        );
    }
    if sticky {
        // A disk that stays full: nothing written after the fault succeeds.
        let failed_at = attempts.iter().position(|a| a.result.is_err());
        if let Some(k) = failed_at {
            for a in &attempts[k..] {
                match &a.result {
                    Err(e) => assert!(matches!(e, Error::DiskFull { .. }), "{case}: {e}"),
                    Ok(c) => panic!("{case}: {} stored on a full disk", c.id),
                }
            }
        }
    }

    // While still open (the closed store's clone): acknowledged segments read back; a
    // segment whose log write or fsync failed is not visible.
    let visible: Vec<u64> = probe.segment_ids();
    for a in &attempts {
        match &a.result {
            Ok(c) => {
                assert_eq!(c.sha256, sha(&a.data), "{case}");
                assert!(
                    visible.contains(&c.id),
                    "{case}: acknowledged {} lost",
                    c.id
                );
                assert_reads_back(&case, &probe, c.id, &a.data);
            }
            Err(e) if from_volume(e) => {
                assert!(!visible.contains(&a.id), "{case}: failed {} visible", a.id)
            }
            Err(_) => {}
        }
    }
    drop(probe);

    // Reopen: everything checks out.
    let store = footage::testing::open_or_create_with(dir.path(), &options())
        .unwrap_or_else(|e| panic!("{case}: reopen failed: {e}"));
    let report = store.open_report();
    assert!(
        report.damage.is_empty() && report.bad_volumes.is_empty(),
        "{case}: {report:?}"
    );
    let v = store.verify(None, |_| {}).unwrap();
    common::assert_verify_clean(&v, &case);
    let audit = store.audit_verify().unwrap();
    assert!(audit.ok, "{case}: audit: {:?}", audit.problems);
    let ingested: Vec<Option<u64>> = store
        .audit_entries(None, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "ingest")
        .map(|e| e.segment)
        .collect();
    let visible = store.segment_ids();
    for a in &attempts {
        match &a.result {
            Ok(c) => {
                assert!(
                    visible.contains(&c.id),
                    "{case}: acknowledged {} lost",
                    c.id
                );
                assert_reads_back(&case, &store, c.id, &a.data);
                assert!(
                    ingested.contains(&Some(c.id)),
                    "{case}: no audit entry for {}",
                    c.id
                );
            }
            Err(e) if from_volume(e) => {
                assert!(!visible.contains(&a.id), "{case}: failed {} visible", a.id)
            }
            // Failed after its commit record was durable (audit append): stored, complete.
            Err(_) if visible.contains(&a.id) => assert_reads_back(&case, &store, a.id, &a.data),
            Err(_) => {}
        }
    }
    for id in &visible {
        assert!(
            attempts.iter().any(|a| a.id == *id),
            "{case}: unknown segment {id}"
        );
    }
    no_temporaries(&case, dir.path());

    // Ingest works again: failed segments retried, and a new one.
    for a in attempts.iter().filter(|a| a.result.is_err()) {
        let c = store
            .ingest_bytes(a.meta.clone(), &a.data)
            .unwrap_or_else(|e| panic!("{case}: retry failed: {e}"));
        assert_eq!(
            c.duplicate,
            visible.contains(&a.id),
            "{case}: retry of {}",
            a.id
        );
        assert_reads_back(&case, &store, c.id, &a.data);
    }
    let (m, d) = segment(SIZES.len());
    let c = store.ingest_bytes(m, &d).unwrap();
    assert_reads_back(&case, &store, c.id, &d);
    assert!(store.audit_verify().unwrap().ok, "{case}");
    store.close().unwrap();
    fired
}

/// Runs `fault` at every position 1..=count of `op` (and one past the end, where nothing
/// fires); returns (cases, cases where the fault fired).
fn sweep(op: Op, count: u64, fault: Fault, sticky: bool, also: Also) -> (usize, usize) {
    let mut fired = 0;
    for nth in 1..=count + 1 {
        if run_case(op, nth, fault, sticky, also) {
            fired += 1;
        }
    }
    let cases = count as usize + 1;
    println!(
        "{op:?} {fault:?}{}{}: {cases} cases, fault fired in {fired}",
        if sticky { " (sticky)" } else { "" },
        also.map(|a| format!(" + {a:?}")).unwrap_or_default()
    );
    // Only the audit flush thread's rare fsync can shift a position past the end.
    assert!(
        fired + 2 >= count as usize,
        "{op:?} {fault:?}: fired {fired} of {count}"
    );
    (cases, fired)
}

/// Counts the operations the workload makes.
fn dry_run() -> faults::Seen {
    let dir = scratch_dir();
    let store = footage::testing::open_or_create_with(dir.path(), &options()).unwrap();
    faults::count();
    let (attempts, closed) = workload(store);
    let seen = faults::clear();
    assert!(attempts.iter().all(|a| a.result.is_ok()) && closed.is_ok());
    println!(
        "workload: {} segments, {} writes, {} fsyncs",
        attempts.len(),
        seen.writes,
        seen.syncs
    );
    seen
}

#[test]
fn every_failed_write_is_cut_back_and_leaves_the_store_whole() {
    let _g = SERIAL.lock();
    let seen = dry_run();
    let mut total = 0;
    for (fault, sticky) in [
        (Fault::NoSpace, false),
        (Fault::NoSpace, true),
        (Fault::Eio, false),
        (Fault::ShortThenNoSpace, false),
        (Fault::ShortCount, false),
    ] {
        total += sweep(Op::Write, seen.writes, fault, sticky, None).0;
    }
    println!("write faults: {total} cases");
}

#[test]
fn item21_every_failed_fsync_drops_unsynced_bytes_surfaces_and_loses_nothing_acknowledged() {
    let _g = SERIAL.lock();
    let seen = dry_run();
    let (cases, _) = sweep(Op::Sync, seen.syncs, Fault::Eio, false, None);
    println!("fsync faults: {cases} cases");
}

#[test]
fn a_failed_cut_back_poisons_and_the_partial_record_is_cut_at_open() {
    let _g = SERIAL.lock();
    let seen = dry_run();
    // Half a record written, ENOSPC, and the truncation that should remove the half fails
    // too: the writer (volume or audit log) is poisoned, the open cuts the torn tail.
    let also = Some((Op::SetLen, 1, Fault::Eio));
    let (cases, _) = sweep(Op::Write, seen.writes, Fault::ShortThenNoSpace, false, also);
    println!("failed cut-backs: {cases} cases");
}
