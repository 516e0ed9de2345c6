//! Targets for what the ingest path reads from users and cameras: GPX and CSV tracks, JSONL
//! manifests, MP4 headers and times.

use std::path::Path;

use super::text;
use crate::input::time::{MAX_US, MIN_US};
use crate::input::{
    format_time, mp4_info_bytes, parse_csv, parse_gpx, parse_manifest, parse_time,
    parse_time_or_unix, unix_seconds_to_us,
};
use crate::meta::{validate_id, GpsFix};

/// Checks what every parsed track must be: fixes on the globe, in the accepted years, sorted.
fn check_track(fixes: &[GpsFix]) {
    for f in fixes {
        assert!((-900_000_000..=900_000_000).contains(&f.lat_e7), "{f:?}");
        assert!(
            (-1_800_000_000..=1_800_000_000).contains(&f.lon_e7),
            "{f:?}"
        );
    }
    assert!(
        fixes.windows(2).all(|w| w[0].time_us <= w[1].time_us),
        "track not sorted by time"
    );
}

fn check_times(fixes: &[GpsFix]) {
    for f in fixes {
        assert!((MIN_US..=MAX_US).contains(&f.time_us), "{f:?}");
    }
}

/// A GPX document.
pub fn gpx(data: &[u8]) {
    if let Ok(fixes) = parse_gpx(data, "fuzz.gpx") {
        check_track(&fixes);
        check_times(&fixes);
    }
}

/// A CSV track.
pub fn gps_csv(data: &[u8]) {
    if let Ok(fixes) = parse_csv(data, "fuzz.csv") {
        check_track(&fixes);
        check_times(&fixes);
    }
}

/// A JSONL ingest manifest. Relative `gps_file` paths point into a directory that does not
/// exist; inputs naming device or kernel files are skipped (the target must not read them).
pub fn manifest(data: &[u8]) {
    let text = text(data);
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    let base = Path::new("/nonexistent/footage-fuzz");
    let Ok(entries) = parse_manifest(&text, base) else {
        return;
    };
    let mut prev_line = 0;
    for e in &entries {
        assert!(e.line > prev_line, "manifest lines out of order");
        prev_line = e.line;
        assert!(validate_id("officer", &e.officer).is_ok());
        assert!(validate_id("device", &e.device).is_ok());
        for l in e.cases.iter().chain(&e.tags).chain(&e.categories) {
            assert!(validate_id("label", l).is_ok(), "{l:?}");
        }
        assert!((MIN_US..=MAX_US).contains(&e.start_us));
        if let Some(end) = e.end_us {
            assert!(end >= e.start_us && end <= MAX_US);
        }
        check_track(&e.gps);
    }
}

/// An MP4/MOV file (only its box headers and `moov` are decoded).
pub fn mp4(data: &[u8]) {
    if let Ok(Some(info)) = mp4_info_bytes(data) {
        if let Some(d) = info.duration_us {
            assert!((0..=MAX_US).contains(&d), "duration {d}");
        }
        if let Some(c) = info.creation_time_us {
            assert!((MIN_US..=MAX_US).contains(&c), "creation time {c}");
        }
    }
}

/// A time as text (RFC 3339 or unix seconds); the first 8 bytes also as an integer and a
/// float of seconds.
pub fn time(data: &[u8]) {
    let text = text(data);
    for us in [parse_time(&text), parse_time_or_unix(&text)]
        .into_iter()
        .flatten()
    {
        assert!((MIN_US..=MAX_US).contains(&us), "{us} out of range");
        let shown = format_time(us);
        assert_eq!(
            parse_time(&shown).ok(),
            Some(us),
            "{shown} does not round trip"
        );
    }
    if let Some(b) = data.get(..8) {
        let raw = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        let _ = format_time(i64::from_le_bytes(raw));
        if let Ok(us) = unix_seconds_to_us(f64::from_le_bytes(raw)) {
            assert!((MIN_US..=MAX_US).contains(&us));
        }
    }
}
