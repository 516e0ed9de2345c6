//! Synthetic footage for `footage demo`: officers on day, late and night shifts from London
//! stations, segments spread over each shift, GPS tracks walking or driving away from the
//! station with dropouts, and video bytes (real H.264 MP4 clips when ffmpeg is installed,
//! random bytes otherwise).
//!
//! Invariant: everything is derived from a fixed seed and the demo day, so two runs on the
//! same day build the same catalogue.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::meta::{GpsFix, SegmentMeta};

/// (name, latitude, longitude) of the stations the demo officers work from.
pub const STATIONS: [(&str, f64, f64); 4] = [
    ("Charing Cross", 51.5080, -0.1247),
    ("Brixton", 51.4613, -0.1156),
    ("Hackney", 51.5450, -0.0553),
    ("Lewisham", 51.4615, -0.0104),
];

/// One segment to ingest: its metadata and which clip provides its bytes.
pub struct PlannedSegment {
    pub meta: SegmentMeta,
    pub clip: usize,
}

/// Base clip lengths in seconds (one MP4 is made per length).
pub const CLIP_SECONDS: [i64; 6] = [30, 45, 60, 90, 120, 180];

const HOUR_US: i64 = 3_600_000_000;

/// Plans a day of shifts: `officers` officers, starting at `day_us` (00:00 UTC of the day).
pub fn plan(day_us: i64, officers: usize, seed: u64) -> Vec<PlannedSegment> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for o in 0..officers {
        let station = if o < officers / 2 {
            0
        } else {
            rng.random_range(0..STATIONS.len())
        };
        let officer = format!("MET-{:06}", 4200 + o * 17);
        let device = format!("AX-B3-{:05}", 100 + o);
        // Night shifts start the evening before; day 06:00; late 14:00.
        let shift_start = match o % 3 {
            0 => day_us - 2 * HOUR_US,
            1 => day_us + 6 * HOUR_US,
            _ => day_us + 14 * HOUR_US,
        };
        let shift_len = rng.random_range(8..=10) * HOUR_US;
        let driving = rng.random_bool(0.4);
        let n = rng.random_range(8..=12);
        let (slat, slon) = (STATIONS[station].1, STATIONS[station].2);
        let (mut lat, mut lon) = (slat, slon);
        for s in 0..n {
            let clip = rng.random_range(0..CLIP_SECONDS.len());
            let secs = CLIP_SECONDS[clip];
            let slot = shift_len / n as i64;
            let start = shift_start + slot * s as i64 + rng.random_range(0..(slot / 2).max(1));
            let start = start - start % 1_000_000;
            // Drift back towards the station between segments, then patrol.
            lat = slat + (lat - slat) * 0.5 + rng.random_range(-0.002..0.002);
            lon = slon + (lon - slon) * 0.5 + rng.random_range(-0.003..0.003);
            let speed = if driving { 9.0 } else { 1.4 };
            let mut heading: f64 = rng.random_range(0.0..std::f64::consts::TAU);
            let mut gps = Vec::new();
            let mut t = 0;
            while t <= secs {
                if rng.random_bool(0.02) {
                    t += rng.random_range(20..60); // a dropout under a bridge or indoors
                    continue;
                }
                if let Ok(f) = GpsFix::from_degrees(start + t * 1_000_000, lat, lon) {
                    gps.push(f);
                }
                heading += rng.random_range(-0.5..0.5);
                let step = speed * 5.0;
                lat += step * heading.cos() / 111_195.0;
                lon += step * heading.sin() / (111_195.0 * lat.to_radians().cos());
                t += 5;
            }
            let mut categories = Vec::new();
            let mut tags = vec![if driving { "response" } else { "foot-patrol" }.to_string()];
            let mut cases = Vec::new();
            if rng.random_bool(0.2) {
                categories.push("evidential".to_string());
                cases.push(format!("CAD-{}", 1000 + rng.random_range(0..40)));
            }
            if rng.random_bool(0.1) {
                tags.push("stop-and-search".to_string());
            }
            if rng.random_bool(0.05) {
                tags.push("use-of-force".to_string());
            }
            let mut meta = SegmentMeta {
                officer: officer.clone(),
                device: device.clone(),
                start_us: start,
                end_us: start + secs * 1_000_000,
                gps,
                cases,
                tags,
                categories,
            };
            meta.normalize();
            out.push(PlannedSegment { meta, clip });
        }
    }
    out.sort_by_key(|p| (p.meta.start_us, p.meta.officer.clone()));
    out
}

/// Whether ffmpeg can be run.
pub fn have_ffmpeg() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes one H.264 MP4 per clip length in `dir` (fast-start, so a browser can seek at once).
pub fn make_clips(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for (i, secs) in CLIP_SECONDS.iter().enumerate() {
        let path = dir.join(format!("clip-{secs}s.mp4"));
        let pattern = [
            "testsrc",
            "testsrc2",
            "smptebars",
            "rgbtestsrc",
            "testsrc",
            "testsrc2",
        ][i];
        let status = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg(format!("{pattern}=duration={secs}:size=320x240:rate=10"))
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-movflags", "+faststart"])
            .arg(&path)
            .status()?;
        if !status.success() {
            anyhow::bail!("ffmpeg failed making {}", path.display());
        }
        out.push(path);
    }
    Ok(out)
}

/// The bytes of one segment: its clip remuxed with the segment's identity in the MP4
/// metadata (so every segment is distinct, as real recordings are), or random bytes.
pub fn segment_bytes(
    clips: Option<&[PathBuf]>,
    p: &PlannedSegment,
    n: usize,
    tmp: &Path,
) -> anyhow::Result<Vec<u8>> {
    match clips.and_then(|c| c.get(p.clip)) {
        Some(clip) => {
            let out = tmp.join(format!("seg-{n}.mp4"));
            let status = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
                .arg(clip)
                .args(["-c", "copy", "-movflags", "+faststart", "-metadata"])
                .arg(format!(
                    "comment={} {} {}",
                    p.meta.officer, p.meta.device, p.meta.start_us
                ))
                .arg(&out)
                .status()?;
            if !status.success() {
                anyhow::bail!("ffmpeg failed remuxing {}", clip.display());
            }
            let bytes = std::fs::read(&out)?;
            let _ = std::fs::remove_file(&out);
            Ok(bytes)
        }
        None => {
            let mut rng = StdRng::seed_from_u64(n as u64);
            let len = 256 * 1024 * (1 + CLIP_SECONDS[p.clip] as usize / 30);
            let mut v = vec![0u8; len];
            rng.fill(&mut v[..]);
            Ok(v)
        }
    }
}
