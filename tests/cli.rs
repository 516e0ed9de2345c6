//! The command-line contract, through the built binary: JSON on stdout, one `error: ...` line
//! on stderr, exit 0 on success, 1 on failure (or corruption found by verify), 2 on bad
//! arguments.

mod common;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const START: &str = "2025-11-20T14:03:00Z";
const END: &str = "2025-11-20T14:13:00Z";

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Out {
    /// The single JSON object printed on stdout.
    fn json(&self) -> Value {
        let text = String::from_utf8(self.stdout.clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "one line expected: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Asserts a failure with `code` and one `error: ...` line containing `want`.
    fn fails(&self, code: i32, want: &str) {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        assert!(
            self.stderr.contains(want),
            "want {want:?} in {}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        if code == 1 {
            assert_eq!(self.stderr.lines().count(), 1, "{}", self.stderr);
        }
    }

    fn ok(&self) -> &Out {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self
    }
}

/// The CLI on `store`, created first with `footage init` unless it exists or the command is
/// `init`: most tests here are about another command.
fn cmd(store: &Path, args: &[&str]) -> Command {
    if args.first() != Some(&"init") && !store.join(footage::CONFIG_FILE).exists() {
        // Created by a child `footage init`, not in this process: a store opened here would
        // leave its lock descriptors in children that sibling tests fork meanwhile. A store
        // path that cannot be created is the command's own error to report.
        let _ = cmd_raw(store, &["init"]).output();
    }
    cmd_raw(store, args)
}

/// The CLI on `store` as it is.
fn cmd_raw(store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_footage"));
    c.arg("--store").arg(store).args(args);
    c
}

fn run_with_stdin(store: &Path, args: &[&str], stdin: &[u8]) -> Out {
    let mut child = cmd(store, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Out {
        code: out.status.code().expect("killed by a signal"),
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn run(store: &Path, args: &[&str]) -> Out {
    run_with_stdin(store, args, b"")
}

/// Runs the CLI on `store` without creating it first.
fn run_raw(store: &Path, args: &[&str]) -> Out {
    let out = cmd_raw(store, args).output().unwrap();
    Out {
        code: out.status.code().expect("killed by a signal"),
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn sha_hex(data: &[u8]) -> String {
    footage::hex(&Sha256::digest(data))
}

/// Writes a file into `dir` and returns its path as a string.
fn file(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_string()
}

fn ingest_args<'a>(path: &'a str, device: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "ingest",
        path,
        "--officer",
        "MET-004217",
        "--device",
        device,
        "--start",
        START,
    ];
    v.extend_from_slice(extra);
    v
}

fn id_of(out: &Out) -> String {
    out.json()["id"].as_str().unwrap().to_string()
}

#[test]
fn ingest_a_file_then_info_and_get_whole_by_range_and_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = random_bytes(1, 2_500_000);
    let clip = file(dir.path(), "clip.bin", &data);
    let out = run(
        &store,
        &ingest_args(
            &clip,
            "AX-B3-00123",
            &[
                "--end",
                END,
                "--case",
                "C-2025-17",
                "--tag",
                "arrest",
                "--category",
                "evidential",
            ],
        ),
    );
    let j = out.ok().json();
    assert_eq!(j["sha256"], sha_hex(&data));
    assert_eq!(j["bytes"], data.len());
    assert_eq!(j["duplicate"], false);
    let id = id_of(&out);

    let info = run(&store, &["info", &id]).ok().json();
    assert_eq!(info["id"], id.as_str());
    assert_eq!(info["officer"], "MET-004217");
    assert_eq!(info["device"], "AX-B3-00123");
    assert_eq!(info["start"], START);
    assert_eq!(info["end"], END);
    assert_eq!(info["bytes"], data.len());
    assert_eq!(info["sha256"], sha_hex(&data));
    assert_eq!(info["cases"], serde_json::json!(["C-2025-17"]));
    assert_eq!(info["tags"], serde_json::json!(["arrest"]));
    assert_eq!(info["categories"], serde_json::json!(["evidential"]));

    let whole = run(&store, &["get", &id]);
    assert!(whole.ok().stdout == data, "whole segment differs");
    for (off, len) in [
        (0, 1),
        (1_048_575, 3),
        (1_000_000, 1_200_000),
        (2_499_990, 100),
    ] {
        let got = run(
            &store,
            &[
                "get",
                &id,
                "--offset",
                &off.to_string(),
                "--length",
                &len.to_string(),
            ],
        );
        let want = &data[off..(off + len).min(data.len())];
        assert!(got.ok().stdout == want, "range {off}+{len}");
    }
    let tail = run(&store, &["get", &id, "--offset", "2499000"]);
    assert!(tail.ok().stdout == data[2_499_000..]);
    let empty = run(&store, &["get", &id, "--offset", &data.len().to_string()]);
    assert!(empty.ok().stdout.is_empty());
    run(&store, &["get", &id, "--offset", "2500001"]).fails(1, "past the end of segment");

    let out_path = dir.path().join("export.mp4");
    let to_file = run(&store, &["get", &id, "--out", out_path.to_str().unwrap()]);
    assert!(to_file.ok().stdout.is_empty());
    assert!(std::fs::read(&out_path).unwrap() == data);
    // An existing file is replaced only with --force (issue 10 item 8).
    run(&store, &["get", &id, "--out", out_path.to_str().unwrap()]).fails(1, "already exists");
    assert!(std::fs::read(&out_path).unwrap() == data);
    let part = run(
        &store,
        &[
            "get",
            &id,
            "--offset",
            "10",
            "--length",
            "20",
            "--force",
            "-o",
            out_path.to_str().unwrap(),
        ],
    );
    part.ok();
    assert_eq!(std::fs::read(&out_path).unwrap(), &data[10..30]);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
    let nowhere = dir.path().join("no/such/dir/x.mp4");
    run(&store, &["get", &id, "--out", nowhere.to_str().unwrap()]).fails(1, "cannot create");
}

#[test]
fn ingest_from_stdin_needs_end_and_duplicates_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = random_bytes(2, 300_000);
    let out = run_with_stdin(&store, &ingest_args("-", "AX-1", &["--end", END]), &data);
    let first = out.ok().json();
    assert_eq!(first["sha256"], sha_hex(&data));
    assert_eq!(first["duplicate"], false);
    let id = id_of(&out);
    assert!(run(&store, &["get", &id]).ok().stdout == data);

    run_with_stdin(&store, &ingest_args("-", "AX-1", &[]), &data)
        .fails(1, "--end is required when reading from stdin");

    // The same bytes again, from stdin and from a file: the same segment, marked duplicate.
    let again = run_with_stdin(&store, &ingest_args("-", "AX-1", &["--end", END]), &data);
    assert_eq!(again.ok().json()["duplicate"], true);
    assert_eq!(id_of(&again), id);
    let clip = file(dir.path(), "same.bin", &data);
    let again = run(&store, &ingest_args(&clip, "AX-1", &["--end", END]));
    assert_eq!(again.ok().json()["duplicate"], true);
    assert_eq!(id_of(&again), id);
    // Another camera's recording with the same bytes is stored.
    let other = run(&store, &ingest_args(&clip, "AX-2", &["--end", END]));
    assert_eq!(other.ok().json()["duplicate"], false);
    assert_ne!(id_of(&other), id);
    let stats = run(&store, &["stats"]).ok().json();
    assert_eq!(stats["segments"], 2);
    assert_eq!(stats["bytes"], 2 * data.len());
}

/// A 2-second H.264 MP4 made by ffmpeg, or None (skipping) when ffmpeg is missing.
fn ffmpeg_clip(dir: &Path) -> Option<PathBuf> {
    let path = dir.join("clip.mp4");
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=2:size=320x240:rate=10")
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&path)
        .status();
    match status {
        Ok(s) if s.success() => Some(path),
        other => {
            skip(
                "an_mp4_without_end_ends_after_its_duration",
                &format!("ffmpeg is missing or failed ({other:?})"),
            );
            None
        }
    }
}

#[test]
fn an_mp4_without_end_ends_after_its_duration() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let bin = file(dir.path(), "raw.bin", &random_bytes(3, 5000));
    run(&store, &ingest_args(&bin, "AX-1", &[])).fails(1, "cannot read a duration from");
    let Some(mp4) = ffmpeg_clip(dir.path()) else {
        return;
    };
    let mp4 = mp4.to_str().unwrap().to_string();
    let out = run(&store, &ingest_args(&mp4, "AX-1", &[]));
    let id = id_of(out.ok());
    let info = run(&store, &["info", &id]).ok().json();
    assert_eq!(info["start"], START);
    assert_eq!(info["end"], "2025-11-20T14:03:02Z");
    assert!(run(&store, &["get", &id]).ok().stdout == std::fs::read(&mp4).unwrap());
    // An explicit --end wins over the MP4's duration.
    let out = run(&store, &ingest_args(&mp4, "AX-2", &["--end", END]));
    let info = run(&store, &["info", &id_of(out.ok())]).ok().json();
    assert_eq!(info["end"], END);
}

const GPX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><trkseg>
  <trkpt lat="-33.8688" lon="-151.2093"><time>2025-11-20T14:03:05Z</time></trkpt>
  <trkpt lat="51.5080" lon="-0.1247"><time>2025-11-20T14:03:01Z</time></trkpt>
  <trkpt lat="-0.5" lon="0.25"><time>2025-11-20T14:03:09Z</time></trkpt>
 </trkseg></trk>
</gpx>"#;

#[test]
fn gps_tracks_from_gpx_and_csv_keep_negative_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let gpx = file(dir.path(), "track.gpx", GPX.as_bytes());
    let csv = file(
        dir.path(),
        "track.csv",
        b"time,lat,lon,accuracy\n2025-11-20T14:03:01Z,-12.5,-45.25,5\n1763647382,-90,-180,3\n",
    );
    let a = file(dir.path(), "a.bin", &random_bytes(4, 1000));
    let b = file(dir.path(), "b.bin", &random_bytes(5, 1000));
    let with_gpx = run(
        &store,
        &ingest_args(&a, "AX-1", &["--end", END, "--gps", &gpx]),
    );
    let with_csv = run(
        &store,
        &ingest_args(&b, "AX-1", &["--end", END, "--gps", &csv]),
    );
    let (ga, gb) = (id_of(with_gpx.ok()), id_of(with_csv.ok()));
    assert_eq!(run(&store, &["info", &ga]).ok().json()["gps_fixes"], 3);
    assert_eq!(run(&store, &["info", &gb]).ok().json()["gps_fixes"], 2);

    let s = footage::testing::open_or_create_default(&store).unwrap();
    let track: Vec<(i64, f64, f64)> = s
        .track(ga.parse().unwrap())
        .unwrap()
        .iter()
        .map(|f| (f.time_us - T0, f.lat(), f.lon()))
        .collect();
    assert_eq!(
        track,
        [
            (1_000_000, 51.508, -0.1247),
            (5_000_000, -33.8688, -151.2093),
            (9_000_000, -0.5, 0.25)
        ]
    );
    let track: Vec<(i64, f64, f64)> = s
        .track(gb.parse().unwrap())
        .unwrap()
        .iter()
        .map(|f| (f.time_us - T0, f.lat(), f.lon()))
        .collect();
    assert_eq!(
        track,
        [(1_000_000, -12.5, -45.25), (2_000_000, -90.0, -180.0)]
    );
}

#[test]
fn malformed_gps_files_are_refused_naming_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let clip = file(dir.path(), "a.bin", &random_bytes(6, 1000));
    let cases: [(&str, &[u8], &str); 7] = [
        (
            "cut.gpx",
            b"<gpx><trk><trkseg>",
            "cut.gpx: not a valid GPX file",
        ),
        (
            "notime.gpx",
            br#"<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg><trkpt lat="1" lon="2"></trkpt></trkseg></trk></gpx>"#,
            "notime.gpx: track point 1 (track 1, segment 1) has no <time>",
        ),
        (
            "lat.csv",
            b"time,lat,lon\n1763647381,1,2\n1763647382,95,-0.12\n",
            "lat.csv line 3: latitude 95 is outside -90..90",
        ),
        (
            "lon.csv",
            b"time,lat,lon\n1763647381,-1,-180.5\n",
            "lon.csv line 2: longitude -180.5 is outside -180..180",
        ),
        (
            "header.csv",
            b"when,lat,lon\n1763647381,1,2\n",
            "header.csv line 1: the header must name the columns time,lat,lon",
        ),
        (
            "time.csv",
            b"time,lat,lon\nyesterday,1,2\n",
            "time.csv line 2: invalid time \"yesterday\"",
        ),
        (
            "text.csv",
            b"time,lat,lon\n1763647381,north,2\n",
            "text.csv line 2: latitude \"north\" is not a number",
        ),
    ];
    for (name, content, want) in cases {
        let gps = file(dir.path(), name, content);
        run(
            &store,
            &ingest_args(&clip, "AX-1", &["--end", END, "--gps", &gps]),
        )
        .fails(1, want);
    }
    let missing = dir.path().join("missing.gpx");
    run(
        &store,
        &ingest_args(
            &clip,
            "AX-1",
            &["--end", END, "--gps", missing.to_str().unwrap()],
        ),
    )
    .fails(1, "missing.gpx");
    // Nothing was stored by the refused ingests.
    assert_eq!(run(&store, &["stats"]).ok().json()["segments"], 0);
}

#[test]
fn verify_and_stats_report_the_store_and_find_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    open_small(&store).close().unwrap();
    let a = random_bytes(7, 200_000);
    let b = random_bytes(8, 90_000);
    let ia = id_of(
        run(
            &store,
            &ingest_args(&file(dir.path(), "a", &a), "AX-1", &["--end", END]),
        )
        .ok(),
    );
    let ib = id_of(
        run(
            &store,
            &ingest_args(&file(dir.path(), "b", &b), "AX-1", &["--end", END]),
        )
        .ok(),
    );

    let stats = run(&store, &["stats"]).ok().json();
    assert_eq!(stats["segments"], 2);
    assert_eq!(stats["bytes"], a.len() + b.len());
    assert_eq!(stats["unavailable_segments"], 0);
    assert_eq!(stats["disks"][0]["available"], true);
    assert!(stats["volumes"].as_u64().unwrap() >= 1);

    let v = run(&store, &["verify"]).ok().json();
    assert_eq!(v["checked"], 2);
    assert_eq!(v["bytes"], a.len() + b.len());
    assert_eq!(
        common::verify_json_findings(&v),
        Vec::<String>::new(),
        "{v}"
    );
    let v = run(&store, &["verify", &ib]).ok().json();
    assert_eq!(v["checked"], 1);
    assert_eq!(
        common::verify_json_findings(&v),
        Vec::<String>::new(),
        "{v}"
    );
    run(&store, &["verify", "99"]).fails(1, "no segment with id 99");

    // Rot one byte of segment a's first chunk (its payload starts at 4096).
    let vol = volume_files(&store)[0].clone();
    let mut bytes = std::fs::read(&vol).unwrap();
    bytes[4096 + 1234] ^= 0x20;
    std::fs::write(&vol, bytes).unwrap();
    let out = run(&store, &["verify"]);
    out.fails(1, &format!("1 of 2 segments are corrupt: {ia}"));
    let v = out.json();
    assert_eq!(v["corrupt"], serde_json::json!([ia.clone()]));
    assert_eq!(
        common::verify_json_findings(&v),
        ["corrupt", "errors", "scrub.findings"],
        "{v}"
    );
    assert_eq!(v["scrub"]["findings"][0]["id"], ia.as_str(), "{v}");
    assert_eq!(v["scrub"]["corrupt_segments"], 1, "{v}");
    assert!(
        v["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("segment {ia} ")),
        "{v}"
    );
    run(&store, &["get", &ia]).fails(1, &format!("segment {ia} is corrupt"));
    let export = dir.path().join("export.mp4");
    run(&store, &["get", &ia, "--out", export.to_str().unwrap()])
        .fails(1, &format!("segment {ia} is corrupt"));
    assert!(!export.exists());
    // No temporary file (`.export.mp4.<random>.footage-partial`) is left behind.
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".footage-partial")));
    assert!(run(&store, &["get", &ib]).ok().stdout == b);
    // Segment b alone verifies; the known corrupt a is still listed, and nothing else.
    let v = run(&store, &["verify", &ib]).ok().json();
    assert_eq!(common::verify_json_findings(&v), ["scrub.findings"], "{v}");
    assert_eq!(v["scrub"]["findings"][0]["id"], ia.as_str(), "{v}");
}

#[test]
fn bad_arguments_exit_2_and_failures_exit_1_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let clip = file(dir.path(), "a.bin", &random_bytes(9, 1000));
    let id = id_of(run(&store, &ingest_args(&clip, "AX-1", &["--end", END])).ok());
    let usage: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "ingest",
                &clip,
                "--officer",
                "M",
                "--device",
                "D",
                "--start",
                "yesterday",
            ],
            "invalid time \"yesterday\"",
        ),
        (
            vec![
                "ingest",
                &clip,
                "--officer",
                "M",
                "--device",
                "D",
                "--start",
                START,
                "--end",
                "2025-11-20 14:13",
            ],
            "expected RFC 3339",
        ),
        (
            vec![
                "ingest",
                &clip,
                "--officer",
                "M",
                "--device",
                "D",
                "--start",
                "1969-12-31T23:59:59Z",
            ],
            "outside the years 1970..=9999",
        ),
        (
            vec![
                "ingest",
                &clip,
                "--officer",
                "MET 1",
                "--device",
                "D",
                "--start",
                START,
            ],
            "contains ' '",
        ),
        (
            vec!["ingest", &clip, "--device", "D", "--start", START],
            "--officer",
        ),
        (
            vec!["ingest", "--manifest", "m.jsonl", "--officer", "M"],
            "cannot be used with",
        ),
        (vec!["info", "0"], "ids are positive whole numbers"),
        (vec!["info", "abc"], "ids are positive whole numbers"),
        (vec!["info", "-5"], "-5"),
        (vec!["get", &id, "--offset", "-1"], "-1"),
        (vec!["get", &id, "--length", "lots"], "lots"),
        (vec!["verify", "x"], "ids are positive whole numbers"),
        (vec!["bogus"], "unrecognized subcommand"),
        (vec![], "Usage"),
    ];
    for (args, want) in &usage {
        let out = run(&store, args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(want),
            "{args:?}: want {want:?} in {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let end_first = ["--end", "2025-11-20T14:02:59Z"];
    run(&store, &ingest_args(&clip, "AX-2", &end_first)).fails(1, "end is before start");
    run(&store, &["info", "99"]).fails(1, "no segment with id 99");
    run(&store, &["get", "99"]).fails(1, "no segment with id 99");
    let missing = dir.path().join("missing.mp4");
    run(
        &store,
        &ingest_args(missing.to_str().unwrap(), "AX-1", &["--end", END]),
    )
    .fails(1, "missing.mp4");
    let d = dir.path().to_str().unwrap();
    run(&store, &ingest_args(d, "AX-1", &["--end", END])).fails(1, "is a directory");
    // A store path that is a file.
    run(Path::new(&clip), &["stats"]).fails(1, "a.bin");
    // Help and version are not errors.
    let help = run(&store, &["--help"]);
    assert!(String::from_utf8_lossy(&help.ok().stdout).contains("Exit codes: 0 success"));
    assert!(
        String::from_utf8_lossy(&run(&store, &["--version"]).ok().stdout).starts_with("footage ")
    );
}

#[test]
fn a_store_held_by_another_process_is_reported_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let clip = file(dir.path(), "a.bin", &random_bytes(10, 1000));
    let id = id_of(run(&store, &ingest_args(&clip, "AX-1", &["--end", END])).ok());

    // This test process holds the store: the CLI is another process.
    let held = footage::testing::open_or_create_default(&store).unwrap();
    run(&store, &["info", &id]).fails(1, "is locked by another process");
    run(&store, &ingest_args(&clip, "AX-2", &["--end", END])).fails(1, "locked");
    drop(held);
    run(&store, &["info", &id]).ok();

    // An ingest from stdin holds the store while it waits for its input.
    let mut holder = cmd(&store, &ingest_args("-", "AX-3", &["--end", END]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it holds the lock, watching /proc/locks (probing with another open would
    // race with it for the lock).
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(store.join("LOCK")).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .any(|l| l.contains("FLOCK") && l.contains(&format!(":{ino} ")))
    {
        assert!(
            holder.try_wait().unwrap().is_none(),
            "the ingest ended early"
        );
        assert!(Instant::now() < deadline, "the ingest never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    run(&store, &["stats"]).fails(1, "is locked by another process");
    assert!(matches!(
        footage::testing::open_or_create_default(&store),
        Err(footage::Error::Locked { .. })
    ));
    let mut stdin = holder.stdin.take().unwrap();
    stdin.write_all(b"streamed").unwrap();
    drop(stdin);
    let out = holder.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["bytes"], 8);
    assert_eq!(run(&store, &["stats"]).ok().json()["segments"], 2);
}

#[test]
fn closing_stdout_early_ends_get_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = random_bytes(11, 3_000_000);
    let id = id_of(
        run(
            &store,
            &ingest_args(&file(dir.path(), "a", &data), "AX-1", &["--end", END]),
        )
        .ok(),
    );
    let mut child = cmd(&store, &["get", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(head, data[..10]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_manifest_is_checked_whole_first_and_reports_failed_clips_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let a = random_bytes(12, 5000);
    file(dir.path(), "a.bin", &a);
    file(dir.path(), "raw.bin", &random_bytes(13, 5000));
    file(dir.path(), "b.bin", &random_bytes(14, 5000));
    let line = |f: &str, end: &str| {
        format!(
            r#"{{"file": "{f}", "officer": "MET-1", "device": "AX-1", "start": "{START}"{end}}}"#
        )
    };
    let end = format!(r#", "end": "{END}""#);
    let bad = format!(
        "{}\n{}\n",
        line("a.bin", &end),
        r#"{"file": "a.bin", "officer": "MET-1"}"#
    );
    let m = file(dir.path(), "bad.jsonl", bad.as_bytes());
    run(&store, &["ingest", "--manifest", &m]).fails(1, "bad.jsonl line 2: missing field `device`");
    let missing = format!("{}\n{}\n", line("a.bin", &end), line("gone.bin", &end));
    let m = file(dir.path(), "missing.jsonl", missing.as_bytes());
    run(&store, &["ingest", "--manifest", &m]).fails(1, "missing.jsonl line 2: cannot read");
    assert_eq!(
        run(&store, &["stats"]).ok().json()["segments"],
        0,
        "nothing stored"
    );

    // A clip that cannot be stored is reported on its line; the others are stored.
    let gps =
        format!(r#"{end}, "gps": [[1763647390, -33.8688, -151.2093], [1763647381, 0.5, -0.25]]"#);
    let mixed = format!(
        "{}\n\n{}\n{}\n{}\n",
        line("a.bin", &end),
        line("raw.bin", ""),
        line("a.bin", &end),
        line("b.bin", &gps)
    );
    let m = file(dir.path(), "mixed.jsonl", mixed.as_bytes());
    let out = run(&store, &["ingest", "--manifest", &m]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["sha256"], sha_hex(&a));
    assert_eq!(lines[0]["duplicate"], false);
    assert_eq!(lines[1]["line"], 3);
    assert!(
        lines[1]["error"].as_str().unwrap().contains("pass --end"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2]["duplicate"], true);
    assert_eq!(lines[2]["id"], lines[0]["id"]);
    assert!(out.stderr.contains("mixed.jsonl line 3"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
    // Negative coordinates in the manifest's gps field are kept, sorted by time.
    let id: u64 = lines[3]["id"].as_str().unwrap().parse().unwrap();
    let track: Vec<(i64, f64, f64)> = footage::testing::open_or_create_default(&store)
        .unwrap()
        .track(id)
        .unwrap()
        .iter()
        .map(|f| (f.time_us - T0, f.lat(), f.lon()))
        .collect();
    assert_eq!(
        track,
        [(1_000_000, 0.5, -0.25), (10_000_000, -33.8688, -151.2093)]
    );
}

#[test]
fn negative_coordinates_are_accepted_where_arguments_take_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let csv = file(
        dir.path(),
        "south-west.csv",
        b"time,lat,lon\n2025-11-20T14:03:01Z,-33.8688,-151.2093\n\
          2025-11-20T14:03:02Z,-33.8689,-151.2094\n",
    );
    let clip = file(dir.path(), "a.bin", &random_bytes(15, 2000));
    let other = file(dir.path(), "b.bin", &random_bytes(16, 2000));
    let id = id_of(
        run(
            &store,
            &ingest_args(&clip, "AX-1", &["--end", END, "--gps", &csv]),
        )
        .ok(),
    );
    run(&store, &ingest_args(&other, "AX-1", &["--end", END])).ok();
    let found = |args: &[&str]| -> Vec<String> {
        let out = run(&store, args);
        String::from_utf8(out.ok().stdout.clone())
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let near = "-33.8688,-151.2093";
    assert_eq!(
        found(&["find", "--near", near, "--radius", "50"]),
        [id.as_str()]
    );
    assert_eq!(
        found(&["find", &format!("--near={near}"), "--radius", "50"]),
        [id.as_str()]
    );
    assert_eq!(
        found(&["find", "--radius", "50", "--near", near]),
        [id.as_str()]
    );
    assert_eq!(
        found(&["find", "--bbox", "-34,-152,-33,-151"]),
        [id.as_str()]
    );
    assert!(found(&["find", "--near", "-33.9,-151.3", "--radius", "50"]).is_empty());
    // MINLON > MAXLON crosses the antimeridian: -151..180 and -180..-152 miss -151.2.
    assert!(found(&["find", "--bbox", "-34,-151,-33,-152"]).is_empty());
    for (args, want) in [
        (
            vec!["find", "--near", "-33.8688", "--radius", "50"],
            "LAT,LON",
        ),
        (
            vec!["find", "--near", "-91,-1", "--radius", "50"],
            "latitude -91",
        ),
        (
            vec!["find", "--near", "-1,-181", "--radius", "50"],
            "longitude -181",
        ),
        (vec!["find", "--near", near, "--radius", "-5"], "radius -5"),
        (
            vec!["find", "--bbox", "-34,-152,-33"],
            "MINLAT,MINLON,MAXLAT,MAXLON",
        ),
    ] {
        let out = run(&store, &args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
    let track: Vec<Value> = String::from_utf8(run(&store, &["track", &id]).ok().stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(track.len(), 2);
    assert_eq!(track[0]["lat"], -33.8688);
    assert_eq!(track[0]["lon"], -151.2093);
}

/// Runs with extra environment variables.
fn run_env(store: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = cmd(store, args)
        .env_remove("FOOTAGE_ACTOR")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Out {
        code: out.status.code().expect("killed by a signal"),
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn only_changes_need_an_actor_and_a_bad_one_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let clip = file(dir.path(), "a.bin", &random_bytes(17, 1000));
    let id = id_of(run(&store, &ingest_args(&clip, "AX-1", &["--end", END])).ok());
    // An OS user name that cannot be an actor does not get in the way of other commands.
    for user in ["jürgen", "", "a b"] {
        let env = [("USER", user), ("LOGNAME", user)];
        run_env(&store, &["info", &id], &env).ok();
        run_env(&store, &["stats"], &env).ok();
        run_env(&store, &["verify"], &env).ok();
        let other = file(dir.path(), "b.bin", user.as_bytes());
        run_env(&store, &ingest_args(&other, "AX-9", &["--end", END]), &env).ok();
        run_env(&store, &["hold", &id, "--case", "OP-1"], &env)
            .fails(1, "the OS user name cannot name the actor");
        let held = run_env(
            &store,
            &["--actor", "sgt.jones", "hold", &id, "--case", "OP-1"],
            &env,
        );
        assert_eq!(held.ok().json()["holds"], serde_json::json!(["OP-1"]));
        run_env(
            &store,
            &["release", &id, "--case", "OP-1", "--actor", "sgt.jones"],
            &env,
        )
        .ok();
    }
    // A bad actor named on purpose is a bad argument.
    let bad = run(&store, &["--actor", "sgt jones", "tag", &id, "night"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("'sgt jones' for '--actor"),
        "{}",
        bad.stderr
    );
    let env = [("FOOTAGE_ACTOR", "")];
    let bad = run_env(&store, &["tag", &id, "night"], &env);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let tagged = run_env(
        &store,
        &["tag", &id, "night"],
        &[("FOOTAGE_ACTOR", "pc.smith")],
    );
    assert!(tagged.ok().json()["tags"]
        .as_array()
        .unwrap()
        .contains(&"night".into()));
}

/// Issue 10, item 2: a mistyped `--store` never creates an empty store beside the real one.
#[test]
fn item02_commands_refuse_a_directory_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo-store");
    let clip = file(dir.path(), "a.bin", b"some video bytes");
    let read_commands: [&[&str]; 8] = [
        &["stats"],
        &["info", "1"],
        &["get", "1"],
        &["find", "--officer", "MET-1"],
        &["verify"],
        &["audit"],
        &["hold", "1", "--case", "op-1"],
        &["token", "list"],
    ];
    let ingest = ingest_args(&clip, "AX-1", &[]);
    for args in read_commands.iter().copied().chain([ingest.as_slice()]) {
        let out = run_raw(&typo, args);
        let want = format!(
            "no store at {} (create one with: footage init --store {})",
            typo.display(),
            typo.display()
        );
        out.fails(1, &want);
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // An empty directory is no store either, and is left empty.
    std::fs::create_dir(&typo).unwrap();
    run_raw(&typo, &["stats"]).fails(1, "no store at");
    assert_eq!(std::fs::read_dir(&typo).unwrap().count(), 0);
    // `init` creates it; then the same commands work; a second `init` is refused.
    run_raw(&typo, &["init"]).ok();
    run_raw(&typo, &["stats"]).ok();
    run_raw(&typo, &["init"]).fails(1, "already holds a store");

    // The library keeps opening and creating apart.
    let lib = dir.path().join("lib-store");
    assert!(matches!(
        footage::Store::open(&lib),
        Err(footage::Error::NoStore { .. })
    ));
    assert!(!lib.exists());
    drop(footage::Store::create(&lib).unwrap());
    assert!(matches!(
        footage::Store::create(&lib),
        Err(footage::Error::StoreExists { .. })
    ));
    footage::Store::open(&lib).unwrap().close().unwrap();
}
