//! The watched dock folder (`footage serve --watch DIR`): complete videos with their sidecars
//! are ingested and moved to done/ with a result file; partial files, missing sidecars, bad
//! sidecars, duplicates, symbolic links and a crash between the commit and the move.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_footage");
/// Generous: the machine running the tests may be busy.
const DEADLINE: Duration = Duration::from_secs(60);

fn footage(store: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.arg("--store").arg(store).args(args);
    common::output(&mut c)
}

fn init(store: &Path) {
    let out = footage(store, &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child `footage serve --watch DIR`, killed (SIGTERM, then SIGKILL) on drop.
struct Serve {
    child: std::process::Child,
}

impl Serve {
    fn start(store: &Path, dock: &Path, settle: &str, failpoint: Option<&str>) -> Serve {
        let mut c = Command::new(BIN);
        c.arg("--store")
            .arg(store)
            .args(["serve", "--addr", "127.0.0.1:0", "--quiet", "--watch"])
            .arg(dock)
            .args(["--watch-settle", settle, "--watch-interval", "100ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        match failpoint {
            Some(fp) => c.env("FOOTAGE_FAILPOINT", fp),
            None => c.env_remove("FOOTAGE_FAILPOINT"),
        };
        let mut child = common::spawn(&mut c);
        // Wait for the listening line: the store is open and the watcher started.
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        assert!(line.contains("listening"), "serve did not start: {line:?}");
        let serve = Serve { child };
        // An answer means the server's loop polled its shutdown future, which installs the
        // SIGTERM handler: a SIGTERM before that would kill it outright.
        let v: Value = serde_json::from_str(&line).unwrap();
        let url = format!("{}/healthz", v["listening"].as_str().unwrap());
        wait_until("/healthz", || ureq::get(&url).call().is_ok());
        serve
    }

    /// Stops it with SIGTERM and waits. Whether it exited cleanly is not asserted: `serve`
    /// installs its SIGTERM handler only when its accept loop first polls the shutdown
    /// future, so a SIGTERM right after start can still end it by the default action (as a
    /// kill would; the store is consistent either way). The checks that follow read the store.
    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    /// Waits for the process to end by itself (an armed fail point aborts it).
    fn wait_for_exit(mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                std::mem::forget(self);
                return s;
            }
            assert!(start.elapsed() < DEADLINE, "serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sidecar(officer: &str, device: &str, extra: &str) -> String {
    format!(
        r#"{{"officer": "{officer}", "device": "{device}", "start": "2025-11-20T14:03:00Z", "end": "2025-11-20T14:13:00Z"{extra}}}"#
    )
}

/// Writes a video, then its sidecar (the dock contract's order).
fn deliver(dock: &Path, name: &str, bytes: &[u8], side: &str) {
    std::fs::write(dock.join(name), bytes).unwrap();
    std::fs::write(dock.join(format!("{name}.json")), side).unwrap();
}

fn result(dock: &Path, slot: &str) -> Value {
    let text =
        std::fs::read_to_string(dock.join("done").join(format!("{slot}.result.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sha_hex(b: &[u8]) -> String {
    footage::hex(&Sha256::digest(b))
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let dock = t.path().join("dock");
    std::fs::create_dir(&dock).unwrap();
    init(&store);
    (t, store, dock)
}

fn info(store: &Path, id: &str) -> Value {
    let out = footage(store, &["info", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn complete_video_is_ingested_and_moved_to_done_with_a_result() {
    let (_t, store, dock) = setup();
    let serve = Serve::start(&store, &dock, "200ms", None);
    let bytes = common::random_bytes(1, 300_000);
    let side = sidecar(
        "MET-004217",
        "AX-B3-00123",
        r#", "gps": [[1763647380, 51.508, -0.1247], [1763647390, 51.509, -0.1249]], "case": "C-2025-17", "tags": ["arrest"], "category": "evidential""#,
    );
    deliver(&dock, "clip.mp4", &bytes, &side);
    wait_until("clip.mp4 in done/", || {
        dock.join("done/clip.mp4.result.json").exists() && !dock.join("clip.mp4").exists()
    });
    serve.stop();
    // Both files moved, nothing left in the folder but done/ and failed/.
    assert_eq!(std::fs::read(dock.join("done/clip.mp4")).unwrap(), bytes);
    assert_eq!(
        std::fs::read_to_string(dock.join("done/clip.mp4.json")).unwrap(),
        side
    );
    let mut left: Vec<_> = std::fs::read_dir(&dock)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["done", "failed"]);
    let r = result(&dock, "clip.mp4");
    assert_eq!(r["version"], 1);
    assert_eq!(r["file"], "clip.mp4");
    assert_eq!(r["sha256"], sha_hex(&bytes));
    assert_eq!(r["bytes"], bytes.len());
    assert_eq!(r["duplicate"], false);
    // The store has it with the sidecar's metadata, recorded under the watcher's actor.
    let id = r["id"].as_str().unwrap();
    let i = info(&store, id);
    assert_eq!(i["officer"], "MET-004217");
    assert_eq!(i["device"], "AX-B3-00123");
    assert_eq!(i["start"], "2025-11-20T14:03:00Z");
    assert_eq!(i["end"], "2025-11-20T14:13:00Z");
    assert_eq!(i["sha256"], sha_hex(&bytes));
    assert_eq!(i["cases"], serde_json::json!(["C-2025-17"]));
    assert_eq!(i["tags"], serde_json::json!(["arrest"]));
    assert_eq!(i["categories"], serde_json::json!(["evidential"]));
    assert_eq!(i["gps_fixes"], 2);
    let out = footage(&store, &["find", "--officer", "MET-004217"]);
    let found = String::from_utf8_lossy(&out.stdout);
    assert!(found.contains(&format!("\"{id}\"")), "{found}");
    let out = footage(&store, &["audit"]);
    let audit = String::from_utf8_lossy(&out.stdout);
    let ingest = audit
        .lines()
        .find(|l| l.contains("\"ingest\""))
        .expect("an ingest entry");
    let dock_canon = dock.canonicalize().unwrap();
    assert!(
        ingest.contains(&format!("watch:{}", dock_canon.display())),
        "{ingest}"
    );
}

#[test]
fn partial_files_are_not_taken_until_complete() {
    let (_t, store, dock) = setup();
    // The sidecar first, then a video that keeps growing: taken only once it stays the same
    // for the settle time (2 s, against appends every 50 ms).
    let serve = Serve::start(&store, &dock, "2s", None);
    let all = common::random_bytes(2, 40 * 16_384);
    std::fs::write(dock.join("slow.mp4.json"), sidecar("PC1", "CAM-SLOW", "")).unwrap();
    // A name that looks partial is never taken, whatever its age.
    deliver(
        &dock,
        "copying.mp4.part",
        b"partial",
        &sidecar("PC1", "CAM-P", ""),
    );
    deliver(
        &dock,
        ".hidden.mp4",
        b"hidden",
        &sidecar("PC1", "CAM-H", ""),
    );
    let mut f = std::fs::File::create(dock.join("slow.mp4")).unwrap();
    for piece in all.chunks(16_384) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            dock.join("slow.mp4").exists(),
            "a file still being appended to was taken"
        );
    }
    drop(f);
    wait_until("slow.mp4 in done/", || {
        dock.join("done/slow.mp4.result.json").exists()
    });
    let r = result(&dock, "slow.mp4");
    assert_eq!(r["sha256"], sha_hex(&all), "the whole file was stored");
    assert_eq!(r["bytes"], all.len());
    // The partial-looking names are still there; renamed to its final name, it is taken.
    assert!(dock.join("copying.mp4.part").exists());
    assert!(dock.join(".hidden.mp4").exists());
    std::fs::rename(
        dock.join("copying.mp4.part.json"),
        dock.join("copying.mp4.json"),
    )
    .unwrap();
    std::fs::rename(dock.join("copying.mp4.part"), dock.join("copying.mp4")).unwrap();
    wait_until("copying.mp4 in done/", || {
        dock.join("done/copying.mp4.result.json").exists()
    });
    assert!(dock.join(".hidden.mp4").exists());
    serve.stop();
}

#[test]
fn missing_sidecar_waits_and_bad_sidecars_fail() {
    let (_t, store, dock) = setup();
    let serve = Serve::start(&store, &dock, "100ms", None);
    std::fs::write(dock.join("a-nosidecar.mp4"), b"waiting for metadata").unwrap();
    deliver(
        &dock,
        "b-bad-officer.mp4",
        b"x",
        &sidecar("PC 1", "CAM1", ""),
    );
    deliver(&dock, "c-not-json.mp4", b"y", "officer=PC1");
    deliver(
        &dock,
        "d-no-end.mp4",
        b"not an mp4",
        r#"{"officer": "PC1", "device": "CAM1", "start": "2025-11-20T14:03:00Z"}"#,
    );
    deliver(
        &dock,
        "e-gps-file.mp4",
        b"z",
        &sidecar("PC1", "CAM1", r#", "gps_file": "/etc/passwd""#),
    );
    // A later name: once it is done, every earlier one was looked at in that pass.
    deliver(
        &dock,
        "z-marker.mp4",
        b"marker",
        &sidecar("PC1", "CAM1", ""),
    );
    wait_until("the marker in done/", || {
        dock.join("done/z-marker.mp4.result.json").exists()
    });
    for (name, says) in [
        ("b-bad-officer.mp4", "officer"),
        ("c-not-json.mp4", "JSON object"),
        ("d-no-end.mp4", "add end to the sidecar"),
        ("e-gps-file.mp4", "gps_file is not accepted"),
    ] {
        let failed = dock.join("failed");
        assert!(failed.join(name).exists(), "{name} in failed/");
        assert!(
            failed.join(format!("{name}.json")).exists(),
            "{name}'s sidecar in failed/"
        );
        let why = std::fs::read_to_string(failed.join(format!("{name}.error"))).unwrap();
        assert!(why.contains(says), "{name}: {why}");
        assert_eq!(why.lines().count(), 1, "{why}");
        assert!(!dock.join(name).exists());
    }
    // Still waiting for its sidecar; given one, it is taken.
    assert!(dock.join("a-nosidecar.mp4").exists());
    std::fs::write(
        dock.join("a-nosidecar.mp4.json"),
        sidecar("PC1", "CAM1", ""),
    )
    .unwrap();
    wait_until("a-nosidecar.mp4 in done/", || {
        dock.join("done/a-nosidecar.mp4.result.json").exists()
    });
    serve.stop();
    // Only the two good videos were stored.
    let out = footage(&store, &["stats"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["segments"], 2, "{stats}");
}

#[test]
fn a_duplicate_goes_to_done_with_the_existing_id() {
    let (_t, store, dock) = setup();
    let serve = Serve::start(&store, &dock, "100ms", None);
    let bytes = common::random_bytes(3, 100_000);
    let side = sidecar("PC7", "CAM-7", "");
    deliver(&dock, "one.mp4", &bytes, &side);
    wait_until("one.mp4 and its sidecar in done/", || {
        dock.join("done/one.mp4.result.json").exists() && dock.join("done/one.mp4.json").exists()
    });
    let first = result(&dock, "one.mp4");
    assert_eq!(first["duplicate"], false);
    // The same bytes from the same camera again, under the same name: stored once, filed
    // under a new name in done/, nothing there replaced.
    deliver(&dock, "one.mp4", &bytes, &side);
    // Filing writes the result first, then moves the video, then its sidecar: wait for the
    // last step.
    wait_until("the second one.mp4 and its sidecar in done/", || {
        dock.join("done/one-1.mp4.result.json").exists()
            && dock.join("done/one-1.mp4.json").exists()
    });
    let second = result(&dock, "one-1.mp4");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["sha256"], first["sha256"]);
    assert_eq!(result(&dock, "one.mp4"), first);
    assert!(dock.join("done/one-1.mp4.json").exists());
    serve.stop();
    let out = footage(&store, &["stats"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["segments"], 1, "{stats}");
}

/// A crash at `failpoint` after the commit, then a restart: the video is filed exactly once,
/// as a duplicate of the segment the crashed run stored.
fn crash_then_restart(failpoint: &str, duplicate: bool) {
    if !footage::fail::COMPILED {
        common::skip(failpoint, "fail points are not compiled in");
        return;
    }
    let (_t, store, dock) = setup();
    let bytes = common::random_bytes(4, 200_000);
    let side = sidecar("PC9", "CAM-9", r#", "tags": ["night"]"#);
    deliver(&dock, "crash.mp4", &bytes, &side);
    let serve = Serve::start(&store, &dock, "100ms", Some(failpoint));
    let status = serve.wait_for_exit();
    assert!(!status.success(), "the fail point aborted it");
    let serve = Serve::start(&store, &dock, "100ms", None);
    wait_until("crash.mp4 filed", || {
        dock.join("done/crash.mp4.result.json").exists()
            && dock.join("done/crash.mp4.json").exists()
            && !dock.join("crash.mp4").exists()
            && !dock.join("crash.mp4.json").exists()
    });
    serve.stop();
    let r = result(&dock, "crash.mp4");
    assert_eq!(r["sha256"], sha_hex(&bytes));
    assert_eq!(r["duplicate"], duplicate, "{r}");
    assert_eq!(std::fs::read(dock.join("done/crash.mp4")).unwrap(), bytes);
    assert_eq!(
        std::fs::read_to_string(dock.join("done/crash.mp4.json")).unwrap(),
        side
    );
    assert!(!dock.join("done/crash-1.mp4").exists());
    let out = footage(&store, &["stats"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["segments"], 1, "{stats}");
    let i = info(&store, r["id"].as_str().unwrap());
    assert_eq!(i["sha256"], sha_hex(&bytes));
    assert_eq!(i["tags"], serde_json::json!(["night"]));
    let out = footage(&store, &["verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_crash_between_commit_and_move_is_finished_by_the_restart() {
    // The restart found the segment the crashed run stored: a duplicate.
    crash_then_restart("watch.before_move", true);
}

#[test]
fn a_crash_between_the_video_and_sidecar_moves_is_repaired() {
    // The crashed run had written the result and moved the video; the restart moves the
    // sidecar beside it.
    crash_then_restart("watch.between_moves", false);
}

#[test]
fn links_and_special_files_are_refused() {
    let (t, store, dock) = setup();
    let outside = t.path().join("secret.mp4");
    std::fs::write(&outside, b"outside the dock").unwrap();
    std::os::unix::fs::symlink(&outside, dock.join("link.mp4")).unwrap();
    std::fs::write(dock.join("link.mp4.json"), sidecar("PC1", "CAM1", "")).unwrap();
    // A real video whose sidecar is a link to a file outside.
    let side_outside = t.path().join("side.json");
    std::fs::write(&side_outside, sidecar("PC1", "CAM1", "")).unwrap();
    std::fs::write(dock.join("linked-side.mp4"), b"video").unwrap();
    std::os::unix::fs::symlink(&side_outside, dock.join("linked-side.mp4.json")).unwrap();
    // A FIFO (opening it for reading would block) and a directory.
    let fifo = std::ffi::CString::new(dock.join("pipe.mp4").as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::write(dock.join("pipe.mp4.json"), sidecar("PC1", "CAM1", "")).unwrap();
    std::fs::create_dir(dock.join("subdir.mp4")).unwrap();
    let serve = Serve::start(&store, &dock, "100ms", None);
    deliver(
        &dock,
        "z-marker.mp4",
        b"marker",
        &sidecar("PC1", "CAM1", ""),
    );
    wait_until("the marker in done/", || {
        dock.join("done/z-marker.mp4.result.json").exists()
    });
    serve.stop();
    let failed = dock.join("failed");
    for (name, says) in [
        ("link.mp4", "symbolic link"),
        ("linked-side.mp4", "sidecar is a symbolic link"),
        ("pipe.mp4", "not a regular file"),
    ] {
        let why = std::fs::read_to_string(failed.join(format!("{name}.error"))).unwrap();
        assert!(why.contains(says), "{name}: {why}");
    }
    // The links were moved as links, never followed; their targets are untouched.
    assert!(std::fs::symlink_metadata(failed.join("link.mp4"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&outside).unwrap(), b"outside the dock");
    assert!(
        std::fs::symlink_metadata(failed.join("linked-side.mp4.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(side_outside.exists());
    assert!(
        dock.join("subdir.mp4").is_dir(),
        "directories are left alone"
    );
    let out = footage(&store, &["stats"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["segments"], 1, "only the marker: {stats}");
}

#[test]
fn dock_passes_in_process_count_what_they_see() {
    let t = tempfile::tempdir().unwrap();
    let dock = t.path().join("dock");
    std::fs::create_dir(&dock).unwrap();
    let store =
        common::open_gated(&t.path().join("store"), &footage::StoreOptions::default()).unwrap();
    let mut opts = footage::watch::WatchOptions::new(&dock);
    opts.settle = Duration::ZERO;
    let mut d = footage::watch::Dock::open(&store, opts).unwrap();
    let stop = AtomicBool::new(false);
    // A name with bytes that are not UTF-8, a video with no sidecar, a sidecar with GPS as
    // CSV text and `file` naming its video.
    let odd = OsStr::from_bytes(b"cam\xff\x01.mp4");
    std::fs::write(dock.join(odd), b"odd name").unwrap();
    let mut side = odd.as_bytes().to_vec();
    side.extend_from_slice(b".json");
    std::fs::write(
        dock.join(OsStr::from_bytes(&side)),
        sidecar("PC1", "CAM1", ""),
    )
    .unwrap();
    std::fs::write(dock.join("lonely.mp4"), b"no sidecar").unwrap();
    deliver(
        &dock,
        "track.mp4",
        b"with a track",
        &sidecar(
            "PC2",
            "CAM2",
            r#", "file": "track.mp4", "gps": "time,lat,lon\n1763647380,51.5,-0.12\n1763647381,51.6,-0.13\n""#,
        ),
    );
    d.pass(&stop);
    let s = d.stats();
    assert_eq!((s.done, s.failed, s.duplicates), (2, 0, 0), "{s:?}");
    assert_eq!((s.pending, s.waiting_for_sidecar), (1, 1), "{s:?}");
    assert_eq!(s.bytes, (b"odd name".len() + b"with a track".len()) as u64);
    assert!(dock.join("done").join(odd).exists());
    let r = result(&dock, "track.mp4");
    let id = footage::parse_id(r["id"].as_str().unwrap()).unwrap();
    assert_eq!(store.info(id).unwrap().gps_fixes, 2);
    // A sidecar naming another file fails; a stop before a pass leaves everything in place.
    deliver(
        &dock,
        "x.mp4",
        b"x",
        &sidecar("PC3", "CAM3", r#", "file": "y.mp4""#),
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    d.pass(&stop);
    assert!(dock.join("x.mp4").exists());
    stop.store(false, std::sync::atomic::Ordering::SeqCst);
    d.pass(&stop);
    let why = std::fs::read_to_string(dock.join("failed/x.mp4.error")).unwrap();
    assert!(why.contains("is not this sidecar's video"), "{why}");
    let s = d.stats();
    assert_eq!(s.failed, 1);
    assert!(s.last_error.unwrap_or_default().contains("x.mp4"));
    // done/ and failed/ that are links (or files) are refused at start, and swapped for a
    // link while it runs, nothing is moved through it.
    let other = t.path().join("other");
    std::fs::create_dir_all(other.join("done")).unwrap();
    std::fs::rename(dock.join("done"), dock.join("done-kept")).unwrap();
    std::os::unix::fs::symlink(other.join("done"), dock.join("done")).unwrap();
    deliver(&dock, "y.mp4", b"y", &sidecar("PC3", "CAM3", ""));
    d.pass(&stop);
    assert!(dock.join("y.mp4").exists());
    assert!(!other.join("done/y.mp4").exists());
    let err = d.stats().last_error.unwrap_or_default();
    assert!(err.contains("not a directory"), "{err}");
    let dock2 = t.path().join("dock2");
    std::fs::create_dir(&dock2).unwrap();
    std::os::unix::fs::symlink(other.join("done"), dock2.join("done")).unwrap();
    let e = footage::watch::Dock::open(&store, footage::watch::WatchOptions::new(&dock2))
        .err()
        .expect("a link for done/ is refused")
        .to_string();
    assert!(e.contains("not a link"), "{e}");
    let e = footage::watch::Dock::open(
        &store,
        footage::watch::WatchOptions::new(t.path().join("nope")),
    )
    .err()
    .expect("a missing folder is refused")
    .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn watcher_thread_ingests_reports_and_stops() {
    let t = tempfile::tempdir().unwrap();
    let dock = t.path().join("dock");
    std::fs::create_dir(&dock).unwrap();
    let store =
        common::open_gated(&t.path().join("store"), &footage::StoreOptions::default()).unwrap();
    let mut opts = footage::watch::WatchOptions::new(&dock);
    opts.settle = Duration::from_millis(50);
    opts.interval = Duration::from_millis(20);
    let w = footage::watch::Watcher::start(&store, opts).unwrap();
    let handle = w.stats_handle();
    deliver(&dock, "a.mp4", b"first", &sidecar("PC1", "CAM1", ""));
    wait_until("a.mp4 done", || handle.snapshot().done == 1);
    let s = w.stats();
    assert_eq!((s.done, s.failed, s.bytes), (1, 0, 5), "{s:?}");
    assert!(s.passes >= 1);
    assert_eq!(s.dir, dock.canonicalize().unwrap().display().to_string());
    let id = result(&dock, "a.mp4")["id"].as_str().unwrap().to_string();
    let info = store.info(footage::parse_id(&id).unwrap()).unwrap();
    assert_eq!(info.officer, "PC1");
    w.stop();
    // Stopped: a new delivery stays where it is.
    let passes = handle.snapshot().passes;
    deliver(&dock, "b.mp4", b"second", &sidecar("PC1", "CAM1", ""));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(handle.snapshot().passes, passes);
    assert!(dock.join("b.mp4").exists());
}

#[test]
fn watch_settings_parse() {
    use footage::watch::{looks_partial, parse_duration};
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("-1s").is_err());
    for name in [
        "a.part",
        "A.PART",
        "b.tmp",
        "c.crdownload",
        "d.mp4~",
        ".e.mp4",
        "f.mp4.json",
    ] {
        assert!(looks_partial(OsStr::new(name)), "{name}");
    }
    for name in ["clip.mp4", "clip", "part.mp4"] {
        assert!(!looks_partial(OsStr::new(name)), "{name}");
    }
    let actor = footage::watch::default_actor(Path::new("/srv/dock\nx"), Some("os:uid=1"));
    assert_eq!(actor, "watch:/srv/dock?x (os:uid=1)");
}

/// A tmpfs mounted for one test, unmounted when dropped (also when the test panics).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount_at(path: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    path: path.to_path_buf(),
                })
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        common::skip(test, &format!("cannot mount a tmpfs (needs root): {why}"));
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn disk_full_is_transient_and_a_mounted_done_is_refused() {
    let test = "disk_full_is_transient_and_a_mounted_done_is_refused";
    let t = tempfile::tempdir().unwrap();
    let dock = t.path().join("dock");
    let disk = t.path().join("disk");
    std::fs::create_dir(&dock).unwrap();
    std::fs::create_dir(&disk).unwrap();
    let Some(_fs) = Tmpfs::mount_at(&disk, "16m", test) else {
        return;
    };
    let opts = footage::StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 2 << 20,
        ..footage::StoreOptions::default()
    };
    let store = common::open_gated(&disk.join("store"), &opts).unwrap();
    let mut wopts = footage::watch::WatchOptions::new(&dock);
    wopts.settle = Duration::ZERO;
    wopts.interval = Duration::from_millis(10);
    let mut d = footage::watch::Dock::open(&store, wopts).unwrap();
    let stop = AtomicBool::new(false);
    // Fill the store's file system, then deliver: the video stays, to be tried again.
    let filler = disk.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0x5a; 64 * 1024];
        while f.write_all(&block).is_ok() {}
    }
    let bytes = common::random_bytes(5, 3_000_000);
    deliver(&dock, "big.mp4", &bytes, &sidecar("PC1", "CAM1", ""));
    d.pass(&stop);
    let s = d.stats();
    assert_eq!((s.done, s.failed, s.retrying), (0, 0, 1), "{s:?}");
    let err = s.last_error.unwrap_or_default();
    assert!(
        err.contains("disk full") && err.contains("will try again"),
        "{err}"
    );
    assert!(dock.join("big.mp4").exists() && dock.join("big.mp4.json").exists());
    assert!(!dock.join("failed/big.mp4.error").exists());
    // Space again: a later try (after the delay) stores it.
    std::fs::remove_file(&filler).unwrap();
    wait_until("big.mp4 done", || {
        d.pass(&stop);
        d.stats().done == 1
    });
    assert_eq!(result(&dock, "big.mp4")["sha256"], sha_hex(&bytes));
    // done/ on another file system (a mount point) is refused at start.
    let dock2 = t.path().join("dock2");
    std::fs::create_dir_all(dock2.join("done")).unwrap();
    let Some(_m) = Tmpfs::mount_at(&dock2.join("done"), "1m", test) else {
        return;
    };
    let e = footage::watch::Dock::open(&store, footage::watch::WatchOptions::new(&dock2))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("another file system"), "{e}");
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_files_each_video_once() {
    use rand::{Rng, SeedableRng};
    let (_t, store, dock) = setup();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let n = 12;
    let clips: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("clip{i:02}.mp4"),
                common::random_bytes(100 + i, 6_000_000),
            )
        })
        .collect();
    for (i, (name, bytes)) in clips.iter().enumerate() {
        deliver(&dock, name, bytes, &sidecar("PC1", &format!("CAM{i}"), ""));
    }
    let all_filed = || {
        clips.iter().all(|(name, _)| {
            !dock.join(name).exists() && !dock.join(format!("{name}.json")).exists()
        })
    };
    // SIGKILL the service at random moments while it works through the folder.
    let mut killed_mid_work = 0;
    for _ in 0..8 {
        let serve = Serve::start(&store, &dock, "0", None);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        drop(serve);
        if all_filed() {
            break;
        }
        killed_mid_work += 1;
    }
    eprintln!("killed with work left: {killed_mid_work} times");
    let serve = Serve::start(&store, &dock, "0", None);
    wait_until("every clip filed", all_filed);
    serve.stop();
    // Each video is in done/ exactly once, under its own name, with its sidecar and a result
    // naming a segment with its bytes; the store holds each exactly once.
    let mut ids = std::collections::BTreeSet::new();
    for (i, (name, bytes)) in clips.iter().enumerate() {
        assert_eq!(&std::fs::read(dock.join("done").join(name)).unwrap(), bytes);
        assert!(dock.join("done").join(format!("{name}.json")).exists());
        let r = result(&dock, name);
        assert_eq!(r["sha256"], sha_hex(bytes), "{name}");
        let stem = name.trim_end_matches(".mp4");
        assert!(
            !dock.join("done").join(format!("{stem}-1.mp4")).exists(),
            "{name} filed twice"
        );
        let id = r["id"].as_str().unwrap().to_string();
        let info = info(&store, &id);
        assert_eq!(info["device"], format!("CAM{i}"));
        assert_eq!(info["sha256"], sha_hex(bytes));
        ids.insert(id);
    }
    assert_eq!(ids.len(), clips.len());
    assert_eq!(std::fs::read_dir(dock.join("failed")).unwrap().count(), 0);
    let out = footage(&store, &["stats"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["segments"], n, "{stats}");
    let out = footage(&store, &["verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_stop_during_an_ingest_finishes_it_or_leaves_it_unacknowledged() {
    let t = tempfile::tempdir().unwrap();
    let dock = t.path().join("dock");
    std::fs::create_dir(&dock).unwrap();
    let store =
        common::open_gated(&t.path().join("store"), &footage::StoreOptions::default()).unwrap();
    let mut opts = footage::watch::WatchOptions::new(&dock);
    opts.settle = Duration::ZERO;
    opts.interval = Duration::from_millis(10);
    let bytes = common::random_bytes(6, 64 << 20);
    deliver(&dock, "long.mp4", &bytes, &sidecar("PC1", "CAM1", ""));
    let w = footage::watch::Watcher::start(&store, opts).unwrap();
    let handle = w.stats_handle();
    wait_until("the ingest to start", || {
        let s = handle.snapshot();
        s.ingesting.is_some() || s.done > 0
    });
    w.stop();
    // Either it was committed and then filed, or nothing was stored and it is still there:
    // never stored and left, never filed and not stored.
    let s = handle.snapshot();
    assert_eq!(s.ingesting, None);
    if s.done == 1 {
        assert!(!dock.join("long.mp4").exists());
        assert_eq!(result(&dock, "long.mp4")["sha256"], sha_hex(&bytes));
        assert_eq!(store.len(), 1);
    } else {
        assert!(dock.join("long.mp4").exists() && dock.join("long.mp4.json").exists());
        assert!(!dock.join("done/long.mp4.result.json").exists());
        assert_eq!(store.len(), 0);
    }
}

#[test]
fn sidecars_use_the_manifest_line_rules() {
    use footage::input::{parse_manifest, parse_sidecar};
    let dir = Path::new("/srv/dock");
    let video = OsStr::new("clip.mp4");
    // Pretty-printed over several lines, with a BOM, GPS as GPX text.
    let gpx = r#"<gpx version=\"1.1\"><trk><trkseg><trkpt lat=\"51.5\" lon=\"-0.12\"><time>2025-11-20T14:03:01Z</time></trkpt><trkpt lat=\"51.6\" lon=\"-0.13\"><time>2025-11-20T14:03:00Z</time></trkpt></trkseg></trk></gpx>"#;
    let text = format!(
        "\u{feff}{{\n  \"officer\": \"PC1\",\n  \"device\": \"CAM1\",\n  \"start\": 1763647380,\n  \"gps\": \"{gpx}\",\n  \"tags\": [\"a\"]\n}}\n"
    );
    let e = parse_sidecar(&text, dir, video).unwrap();
    assert_eq!(e.file, dir.join("clip.mp4"));
    assert_eq!((e.officer.as_str(), e.device.as_str()), ("PC1", "CAM1"));
    assert_eq!(e.end_us, None);
    assert_eq!(e.gps.len(), 2);
    assert!(e.gps[0].time_us < e.gps[1].time_us, "sorted by time");
    // The same text rules as a manifest line: bad values are errors naming the field.
    let err = |t: &str| parse_sidecar(t, dir, video).unwrap_err().to_string();
    let base = r#""officer": "PC1", "device": "CAM1", "start": "2025-11-20T14:03:00Z""#;
    assert!(err(&format!(
        "{{{base}, \"gps\": \"time,lat,lon\\n1,2,200\\n\"}}"
    ))
    .contains("200"));
    assert!(
        err(&format!("{{{base}, \"file\": \"other.mp4\"}}")).contains("not this sidecar's video")
    );
    assert!(
        err(&format!("{{{base}, \"gps_file\": \"t.gpx\"}}")).contains("gps_file is not accepted")
    );
    assert!(err(&format!("{{{base}, \"colour\": \"red\"}}")).contains("colour"));
    assert!(err(r#"{"officer": "PC1", "device": "CAM1"}"#).contains("start"));
    assert!(err("[1, 2]").contains("JSON object"));
    assert!(parse_sidecar(&format!("{{{base}, \"file\": \"clip.mp4\"}}"), dir, video).is_ok());
    // A manifest line still needs its file, and takes GPS text too.
    let m = parse_manifest(&format!("{{{base}}}"), dir)
        .unwrap_err()
        .to_string();
    assert!(m.contains("missing field `file`"), "{m}");
    let m = parse_manifest(
        &format!(
            "{{{base}, \"file\": \"a.mp4\", \"gps\": \"time,lat,lon\\n1763647380,51.5,-0.1\\n\"}}"
        ),
        dir,
    )
    .unwrap();
    assert_eq!(m[0].gps.len(), 1);
}
