//! The review page in a real browser: builds a small store of ffmpeg MP4 clips with GPS tracks
//! near 51.508,-0.1247, runs `footage serve` with a token, and drives headless Chromium with
//! tests/browser/review.mjs (playwright-core): the opening view (latest footage and its tracks
//! on the Leaflet map over the degree grid), the uploads and service panels (fixtures), text
//! from docks shown as text, near query, result rows, map, video playback from the first hit,
//! a change, and a screenshot under target/browser/; then again with a station tile server in
//! footage.toml (`[map]`), whose tile requests the browser must make (and no other).
//!
//! Needs ffmpeg, node, Chromium (/usr/bin/chromium or $CHROMIUM) and
//! tests/browser/node_modules (scripts/test.sh installs them all). Without them the test
//! skips, saying so, unless under CI (`common::in_ci`), where it fails.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_footage");

fn runs(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What is missing to run the browser test, if anything.
fn missing(chromium: &Path, browser_dir: &Path) -> Vec<String> {
    let mut m = Vec::new();
    if !runs("ffmpeg", "-version") {
        m.push("ffmpeg".to_string());
    }
    if !runs("node", "--version") {
        m.push("node".to_string());
    }
    if !chromium.exists() {
        m.push(format!("Chromium ({})", chromium.display()));
    }
    if !browser_dir.join("node_modules/playwright-core").exists() {
        m.push("tests/browser/node_modules (npm ci in tests/browser)".to_string());
    }
    m
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small H.264 MP4 of `secs` seconds.
fn clip(path: &Path, secs: u32, hue: u32) {
    run(Command::new("ffmpeg").args([
        "-y",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size=320x240:rate=15:duration={secs}"),
        "-vf",
        &format!("hue=h={hue}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        path.to_str().unwrap(),
    ]));
}

/// A CSV track: one fix a second from `start`, moving north from `lat0` by `dlat` a second.
fn track(path: &Path, start: i64, lat0: f64, lon: f64, dlat: f64, n: i64) {
    let mut s = String::from("time,lat,lon\n");
    for i in 0..n {
        s += &format!("{},{:.7},{lon}\n", start + i, lat0 + dlat * i as f64);
    }
    std::fs::write(path, s).unwrap();
}

/// An officer id that is also markup: the page must show it as text.
const HOSTILE_OFFICER: &str = "<img/src=x/onerror=window.__xss=1>";

/// A tile server for the second run: nothing listens there; the browser's requests are
/// answered by review.mjs (page.route).
const TILES: &str = "http://tiles.station.test:8099/{z}/{x}/{y}.png";

struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

#[test]
fn review_page_in_headless_chromium() {
    let t = Instant::now();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = manifest.join("tests/browser");
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    let lacking = missing(&chromium, &browser_dir);
    if !lacking.is_empty() {
        let msg = format!(
            "browser test needs {}: run scripts/test.sh, which installs them",
            lacking.join(", ")
        );
        common::skip("review_page_in_headless_chromium", &msg);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let footage = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("--store").arg(&store).args(args);
        run(&mut c)
    };
    footage(&["init"]);
    // Three clips: two pass 51.5080,-0.1247 (at +3 s and +1 s), one is in Brixton.
    let base = 1_763_960_400; // 2025-11-24T05:00:00Z
    let plan = [
        (
            "MET-000101",
            "AX-1",
            base,
            51.5080 - 3.0 * 0.0003,
            -0.1247,
            0.0003,
            30,
        ),
        (
            "MET-000202",
            "AX-2",
            base + 600,
            51.5080 - 0.0003,
            -0.1247,
            0.0003,
            90,
        ),
        (
            "MET-000303",
            "AX-3",
            base + 1200,
            51.4613,
            -0.1156,
            0.0003,
            150,
        ),
        // The newest, in Croydon; its officer id (printable ASCII, so accepted) is markup
        // that must be shown as text.
        (
            HOSTILE_OFFICER,
            "AX-4",
            base + 1800,
            51.3762,
            -0.0982,
            0.0003,
            210,
        ),
    ];
    for (i, (officer, device, start, lat0, lon, dlat, hue)) in plan.iter().enumerate() {
        let mp4 = dir.path().join(format!("clip{i}.mp4"));
        let csv = dir.path().join(format!("clip{i}.csv"));
        clip(&mp4, 6, *hue);
        track(&csv, *start, *lat0, *lon, *dlat, 6);
        let start = footage::input::time::format_time(start * 1_000_000);
        footage(&[
            "ingest",
            mp4.to_str().unwrap(),
            "--officer",
            officer,
            "--device",
            device,
            "--start",
            &start,
            "--gps",
            csv.to_str().unwrap(),
        ]);
    }
    let info1: Value = serde_json::from_str(&footage(&["info", "1"])).unwrap();
    let token: Value = serde_json::from_str(&footage(&["token", "add", "sgt.jones"])).unwrap();
    let token = token["token"].as_str().unwrap().to_string();

    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("review.png");
    let _ = std::fs::remove_file(&shot);
    let expect = serde_json::json!({
        "mode": "grid",
        "near": "51.5080,-0.1247",
        "radius": 20,
        "ids": ["1", "2"],
        "officers": ["MET-000101", "MET-000202"],
        "latest_ids": ["4", "3", "2", "1"],
        "hostile_officer": HOSTILE_OFFICER,
        "first_hit_s": 3.0,
        "sha256": info1["sha256"],
    });
    let (serve, url) = start_serve(&store);
    run_review(&browser_dir, &chromium, &url, &token, &expect, &shot);
    assert!(shot.exists(), "no screenshot at {}", shot.display());
    drop(serve);
    // The change made in the browser is durable and recorded as the token's name.
    let info: Value = serde_json::from_str(&footage(&["info", "1"])).unwrap();
    assert_eq!(info["tags"], serde_json::json!(["reviewed"]));
    assert_eq!(info["pinned_until"], "indefinitely", "pinned from the page");
    // The page opened on the latest footage through the audited path.
    let audit = footage(&["audit"]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"latest\"") && l.contains("sgt.jones")),
        "no audited latest query by sgt.jones in:\n{audit}"
    );

    // Second run: footage.toml names the station's tile server.
    let cfg = store.join("footage.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text += &format!(
        "\n[map]\ntiles = \"{TILES}\"\nattribution = \"Station <b>map</b>\"\nmax_zoom = 18\n"
    );
    std::fs::write(&cfg, text).unwrap();
    let (serve, url) = start_serve(&store);
    let shot2 = out_dir.join("review-tiles.png");
    let expect = serde_json::json!({
        "mode": "tiles",
        "tiles": TILES,
        "attribution": "Station <b>map</b>",
        "latest_ids": ["4", "3", "2", "1"],
    });
    run_review(&browser_dir, &chromium, &url, &token, &expect, &shot2);
    drop(serve);
    eprintln!(
        "browser test: {:.1} s, screenshot {}",
        t.elapsed().as_secs_f64(),
        shot.display()
    );
}

/// Starts `footage serve` on a free loopback port; returns it and its URL.
fn start_serve(store: &Path) -> (Serve, String) {
    let mut child = Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(["serve", "--addr", "127.0.0.1:0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let serve = Serve(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let url = serde_json::from_str::<Value>(&line).unwrap()["listening"]
        .as_str()
        .unwrap()
        .to_string();
    (serve, url)
}

/// Child processes killed when dropped (a failed assertion must not leave a browser behind).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs review.mjs against `url`; fails the test with its output unless it succeeds.
fn run_review(
    browser_dir: &Path,
    chromium: &Path,
    url: &str,
    token: &str,
    expect: &Value,
    shot: &Path,
) {
    let child = Command::new("node")
        .arg(browser_dir.join("review.mjs"))
        .env("FOOTAGE_URL", url)
        .env("FOOTAGE_TOKEN", token)
        .env("FOOTAGE_EXPECT", expect.to_string())
        .env("FOOTAGE_SHOT", shot)
        .env("CHROMIUM", chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut node = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = node.0.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            panic!("review.mjs did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut o) = node.0.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = node.0.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(status.success(), "review.mjs failed:\n{stdout}\n{stderr}");
    eprintln!("{stdout}");
}
