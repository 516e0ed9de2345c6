//! Unit tests of `input/mp4.rs` (moved out of it whole; the module is `super`).

use super::*;
use mp4_atom::{Encode, Mdia, Moov, Mvex, Trak};
use std::path::PathBuf;
use std::process::Command;

const T0: i64 = 1_763_647_380_000_000; // 2025-11-20T14:03:00Z

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/input/tiny.mp4")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn ftyp() -> Vec<u8> {
    b"\0\0\0\x14ftypisom\0\0\x02\0mp41".to_vec()
}

fn moov_bytes(moov: &Moov) -> Vec<u8> {
    let mut out = Vec::new();
    moov.encode(&mut out).unwrap();
    out
}

fn movie(duration: u64, timescale: u32) -> Moov {
    let mut moov = Moov::default();
    moov.mvhd.duration = duration;
    moov.mvhd.timescale = timescale;
    moov
}

#[test]
fn fixture_duration_and_creation_time() {
    let info = mp4_info(&fixture()).unwrap().unwrap();
    assert_eq!(info.duration_us, Some(1_000_000));
    assert_eq!(info.creation_time_us, Some(T0));
    assert_eq!(mp4_duration_us(&fixture()).unwrap(), Some(1_000_000));
    assert_eq!(mp4_creation_time_us(&fixture()).unwrap(), Some(T0));
}

#[test]
fn non_mp4_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    for (name, bytes) in [
        ("noise.bin", noise.as_slice()),
        ("empty.bin", b"".as_slice()),
        ("short.bin", b"\0\0\0".as_slice()),
        ("text.txt", b"time,lat,lon\n1,2,3\n".as_slice()),
    ] {
        let path = write(dir.path(), name, bytes);
        assert_eq!(mp4_info(&path).unwrap(), None, "{name}");
    }
    // An ftyp, then media data but no moov (a recording cut off before its header).
    let mut cut = ftyp();
    cut.extend_from_slice(b"\0\0\x10\0mdat");
    cut.extend_from_slice(&[0u8; 100]);
    let path = write(dir.path(), "cut.mp4", &cut);
    assert_eq!(mp4_duration_us(&path).unwrap(), None);
    let missing = dir.path().join("missing.mp4");
    assert!(matches!(mp4_info(&missing), Err(InputError::Io { .. })));
}

#[test]
fn truncated_or_damaged_moov_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture()).unwrap();
    // The fixture is faststart: ftyp (32 bytes) then moov.
    for cut in [40, 100, 300, 500] {
        let path = write(dir.path(), "cut.mp4", &good[..cut]);
        let e = mp4_info(&path).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{cut}: {e}");
        assert!(e.contains("cut.mp4"), "{cut}: {e}");
    }
    // mvhd claiming more bytes than moov holds.
    let mut bad = good.clone();
    bad[0x2a] = 0xff;
    let path = write(dir.path(), "bad.mp4", &bad);
    let e = mp4_info(&path).unwrap_err().to_string();
    assert!(e.contains("damaged MP4 header inside moov"), "{e}");
    // mvhd with an unknown version.
    let mut bad = good.clone();
    bad[0x30] = 7;
    let path = write(dir.path(), "bad.mp4", &bad);
    let e = mp4_info(&path).unwrap_err().to_string();
    assert!(e.contains("cannot decode moov/mvhd"), "{e}");
    // Every single-byte corruption of the header must give a value or an error.
    for i in 0..good.len().min(0x400) {
        let mut bad = good.clone();
        bad[i] ^= 0xa5;
        let path = write(dir.path(), "flip.mp4", &bad);
        let _ = mp4_info(&path);
    }
}

#[test]
fn huge_moov_is_refused_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = ftyp();
    bytes.extend_from_slice(b"\0\0\0\x01moov\0\0\0\0\x10\0\0\0");
    let path = write(dir.path(), "huge.mp4", &bytes);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(0x1000_0100).unwrap(); // sparse, so cheap
    let e = mp4_info(&path).unwrap_err().to_string();
    assert!(e.contains("limit is 64 MiB"), "{e}");
}

#[test]
fn walks_largesize_and_to_end_boxes() {
    let dir = tempfile::tempdir().unwrap();
    // ftyp, mdat with a 64-bit size, then moov (mvhd version 1 as mp4-atom writes it).
    let mut bytes = ftyp();
    bytes.extend_from_slice(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x20");
    bytes.extend_from_slice(&[0u8; 16]);
    let mut moov = movie(90_000 * 3 / 2, 90_000);
    moov.mvhd.creation_time = 0;
    bytes.extend_from_slice(&moov_bytes(&moov));
    let path = write(dir.path(), "large.mp4", &bytes);
    let info = mp4_info(&path).unwrap().unwrap();
    assert_eq!(info.duration_us, Some(1_500_000));
    assert_eq!(info.creation_time_us, None);
    // moov with size 0 (runs to the end of the file) after a free box.
    let mut bytes = ftyp();
    bytes.extend_from_slice(b"\0\0\0\x0afree\0\0");
    let mut m = moov_bytes(&movie(2_000, 1_000));
    m[..4].copy_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(&m);
    bytes.extend_from_slice(&[0, 0, 0, 0]); // QuickTime-style terminator padding
    let path = write(dir.path(), "toend.mp4", &bytes);
    assert_eq!(mp4_duration_us(&path).unwrap(), Some(2_000_000));
}

#[test]
fn falls_back_to_mehd_then_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let mut moov = movie(0, 1_000);
    moov.mvex = Some(Mvex {
        mehd: Some(Mehd {
            fragment_duration: 4_500,
        }),
        trex: Vec::new(),
    });
    let mut bytes = ftyp();
    bytes.extend_from_slice(&moov_bytes(&moov));
    let path = write(dir.path(), "frag.mp4", &bytes);
    assert_eq!(mp4_duration_us(&path).unwrap(), Some(4_500_000));

    let track = |tkhd_ticks: u64, mdhd_ticks: u64, scale: u32| Trak {
        tkhd: Tkhd {
            duration: tkhd_ticks,
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                duration: mdhd_ticks,
                timescale: scale,
                language: "und".into(),
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let mut moov = movie(u64::MAX, 1_000);
    moov.trak = vec![track(0, 48_000 * 3, 48_000), track(2_500, 0, 90_000)];
    let mut bytes = ftyp();
    bytes.extend_from_slice(&moov_bytes(&moov));
    let path = write(dir.path(), "tracks.mp4", &bytes);
    assert_eq!(mp4_duration_us(&path).unwrap(), Some(3_000_000));

    let mut bytes = ftyp();
    bytes.extend_from_slice(&moov_bytes(&movie(0, 1_000)));
    let path = write(dir.path(), "unknown.mp4", &bytes);
    assert_eq!(mp4_info(&path).unwrap().unwrap().duration_us, None);

    let mut bytes = ftyp();
    bytes.extend_from_slice(&moov_bytes(&movie(5, 0)));
    let path = write(dir.path(), "zero.mp4", &bytes);
    let e = mp4_info(&path).unwrap_err().to_string();
    assert!(e.contains("timescale of 0"), "{e}");

    let mut bytes = ftyp();
    bytes.extend_from_slice(b"\0\0\0\x10moov\0\0\0\x08free");
    let path = write(dir.path(), "nomvhd.mp4", &bytes);
    let e = mp4_info(&path).unwrap_err().to_string();
    assert!(e.contains("no mvhd"), "{e}");
}

fn ffmpeg_clip(dir: &Path, name: &str, faststart: bool) -> Option<PathBuf> {
    let out = dir.join(name);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=30:duration=2")
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]);
    if faststart {
        cmd.args(["-movflags", "+faststart"]);
    }
    match cmd.arg(&out).status() {
        Ok(status) => {
            assert!(status.success(), "ffmpeg failed: {status}");
            Some(out)
        }
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("ffmpeg is required under CI=true but could not run: {e}");
            }
            eprintln!("note: skipping the ffmpeg clip test, ffmpeg could not run: {e}");
            None
        }
    }
}

#[test]
fn real_ffmpeg_clips() {
    let dir = tempfile::tempdir().unwrap();
    for faststart in [true, false] {
        let name = if faststart { "fast.mp4" } else { "slow.mp4" };
        let Some(path) = ffmpeg_clip(dir.path(), name, faststart) else {
            return;
        };
        let bytes = std::fs::read(&path).unwrap();
        let moov_at = bytes.windows(4).position(|w| w == b"moov").unwrap();
        let mdat_at = bytes.windows(4).position(|w| w == b"mdat").unwrap();
        assert_eq!(moov_at < mdat_at, faststart, "{name}");
        let us = mp4_duration_us(&path).unwrap().unwrap();
        assert!((1_900_000..=2_100_000).contains(&us), "{name}: {us}");
    }
}
