//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod verify;
#[allow(unused_imports)]
pub use verify::*;

use footage::{GpsFix, SegmentMeta, Store, StoreOptions};
use rand::{Rng, SeedableRng};
use std::path::Path;

pub const T0: i64 = 1_763_647_380_000_000; // 2025-11-20T14:03:00Z

pub fn meta(officer: &str, device: &str, start_us: i64) -> SegmentMeta {
    SegmentMeta {
        officer: officer.into(),
        device: device.into(),
        start_us,
        end_us: start_us + 60_000_000,
        gps: vec![
            GpsFix::from_degrees(start_us, 51.5080, -0.1247).unwrap(),
            GpsFix::from_degrees(start_us + 5_000_000, 51.5082, -0.1249).unwrap(),
        ],
        cases: vec![],
        tags: vec!["test".into()],
        categories: vec![],
    }
}

pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// Options with small chunks and volumes, so tests cross chunk and volume boundaries.
pub fn small_options() -> StoreOptions {
    StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 1 << 20,
        ..StoreOptions::default()
    }
}

pub fn open_small(dir: &Path) -> Store {
    footage::testing::open_or_create_with(dir, &small_options()).unwrap()
}

/// Copies a directory tree (a store) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Volume files of a store's default data dir, sorted by name.
pub fn volume_files(store_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(store_dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ftv"))
        .collect();
    v.sort();
    v
}

/// Whether a value of the `CI` variable means "under CI": set, and not empty, "0" or
/// "false" (any case). Every test decides it here, so `CI=1`, `CI=true` and `CI=yes` agree.
pub fn ci_value_is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// True when tests that need an external tool must fail rather than skip.
pub fn in_ci() -> bool {
    ci_value_is_ci(std::env::var("CI").ok().as_deref())
}

/// The file listing the tests skipped by this build's runs (`<target>/skipped-tests.txt`);
/// scripts/test.sh empties it before `cargo test` and prints it at the end.
pub fn skip_list() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // <target>/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .map_or_else(|| std::path::PathBuf::from("target"), Path::to_path_buf);
    target.join("skipped-tests.txt")
}

/// Skips the calling test because `why` (a missing tool or privilege): under CI (see
/// [`in_ci`]) it panics instead, so nothing skips silently there; otherwise it says so on
/// the real stderr (not captured by the test harness, so `cargo test` shows it) and appends
/// a line to [`skip_list`]. The caller returns right after.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    skip_as(in_ci(), test, why, &skip_list())
}

/// The Azurite container url scripts/test.sh exports (`FOOTAGE_AZURITE_URL`), or `None`
/// after [`skip`]ping `test` (the caller returns).
#[track_caller]
pub fn azurite_or_skip(test: &str) -> Option<String> {
    let url = std::env::var("FOOTAGE_AZURITE_URL").ok();
    if url.is_none() {
        skip(
            test,
            "Azurite is not running (FOOTAGE_AZURITE_URL unset; scripts/test.sh starts it)",
        );
    }
    url
}

/// [`skip`] with the CI decision and the list given (for the test of the rule itself).
#[track_caller]
pub fn skip_as(ci: bool, test: &str, why: &str, list: &Path) {
    use std::io::Write;
    if ci {
        panic!("{test}: {why} (CI is set: failing instead of skipping)");
    }
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let bin = bin.split('-').next().unwrap_or_default().to_string();
    let line = format!("SKIPPED {bin}::{test}: {why}");
    let _ = writeln!(std::io::stderr(), "{line}");
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(list)
        .and_then(|mut f| writeln!(f, "{line}"));
}

/// Starting a child process and opening a store in this test process do not overlap:
/// between a fork and its exec the child holds a copy of every descriptor of the process,
/// among them a sibling test's store `LOCK`, whose flock lives while any copy does; a sibling
/// test that drops its store and reopens it in that moment is refused with `Error::Locked`
/// (the cause of `retention_crash` failing at a reopen now and then). `Command::spawn`
/// returns once the child execs, so this gate, held across it and across every open, keeps
/// the long part of the window shut; the kernel resumes the parent a moment before the
/// child's close-on-exec pass ends, so [`open_gated`] also waits out a `Locked` briefly.
static FORK_GATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long [`open_gated`] waits out a lock held by a sibling's child that is still exec'ing:
/// a guard against a hang, never reached unless something really holds the store.
const LOCKED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn fork_gate() -> std::sync::MutexGuard<'static, ()> {
    FORK_GATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `cmd` (see [`FORK_GATE`]).
pub fn spawn(cmd: &mut std::process::Command) -> std::process::Child {
    let _gate = fork_gate();
    cmd.spawn().expect("spawn")
}

/// Runs `cmd` to its end, capturing stdout and stderr (see [`FORK_GATE`]).
pub fn output(cmd: &mut std::process::Command) -> std::process::Output {
    use std::process::Stdio;
    let child = spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
    child.wait_with_output().expect("wait")
}

/// Opens (creating) the store at `root` (see [`FORK_GATE`]).
pub fn open_gated(root: &Path, opts: &StoreOptions) -> footage::Result<Store> {
    let start = std::time::Instant::now();
    loop {
        let opened = {
            let _gate = fork_gate();
            footage::testing::open_or_create_with(root, opts)
        };
        match opened {
            Err(footage::Error::Locked { .. }) if start.elapsed() < LOCKED_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Makes the chunk record whose header is at `hdr` in the volume bytes `b` consistent again
/// after its data was changed, as a forger who knows the format would: its block CRC trailer
/// (or payload CRC), then the header CRC.
pub fn reseal_chunk(b: &mut [u8], hdr: usize) {
    use footage::format::chunk::{build_trailer, data_len_of, FLAG_BLOCK_CRCS};
    let len = u32::from_le_bytes(b[hdr + 8..hdr + 12].try_into().unwrap());
    let flags = u16::from_le_bytes([b[hdr + 6], b[hdr + 7]]);
    let at = hdr + 32;
    let end = at + len as usize;
    let crc = if flags & FLAG_BLOCK_CRCS != 0 {
        let block = u32::from_le_bytes(b[end - 4..end].try_into().unwrap());
        let data = data_len_of(len, block).unwrap() as usize;
        let trailer = build_trailer(&[&b[at..at + data]]);
        b[at + data..end].copy_from_slice(&trailer);
        crc32fast::hash(&trailer)
    } else {
        crc32fast::hash(&b[at..end])
    };
    b[hdr + 12..hdr + 16].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32fast::hash(&b[hdr..hdr + 28]);
    b[hdr + 28..hdr + 32].copy_from_slice(&hcrc.to_le_bytes());
}

/// Writes a `policy.toml` with a cloud tier at `url`: default footage not uploaded (31 days),
/// evidential footage uploaded, evicted after 30 days, kept 7 years; no disk-pressure eviction.
pub fn write_cloud_policy(root: &Path, url: &str) {
    const POLICY: &str = r#"
[cloud]
url = "CLOUD"

[category.default]
upload = false
evict_after = "31d"
delete_after = "31d"

[category.evidential]
upload = true
evict_after = "30d"
delete_after = "2555d"

[disk]
high_watermark = 1.0
"#;
    std::fs::write(root.join("policy.toml"), POLICY.replace("CLOUD", url)).unwrap();
}
