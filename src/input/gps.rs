//! GPS tracks from GPX or CSV files.
//!
//! Job: read a track file a camera or a phone exported and return its fixes as
//! [`GpsFix`] values sorted by time.
//!
//! Formats:
//! - GPX 1.0/1.1: every `<trkpt>` of every `<trk>`/`<trkseg>`, each with a `<time>`;
//!   `<rtept>` and `<wpt>` are ignored (routes and waypoints are plans, not where the
//!   officer was);
//! - CSV: a header naming at least the columns `time`, `lat` and `lon` (any case, any
//!   order, more columns such as `accuracy` allowed); `time` is RFC 3339 or unix seconds.
//!
//! Invariants:
//! - a file whose first non-blank byte (after an optional UTF-8 BOM) is `<` is GPX,
//!   anything else CSV; a file that is empty or only blank holds zero fixes;
//! - every fix went through [`GpsFix::from_degrees`]; the result is stably sorted by time;
//! - files over [`MAX_GPS_FILE_BYTES`] are refused before being read whole;
//! - GPX is read as a stream of XML events (no document tree): memory is the file plus 16
//!   bytes a fix, and a track past [`MAX_GPS_FIXES`] points is refused when its next point is
//!   met;
//! - error messages name the file and, for CSV, the 1-based line (the header is line 1).

use std::io::Read;
use std::path::Path;

use quick_xml::events::Event;

use crate::meta::{GpsFix, MAX_GPS_FIXES};

use super::time::{parse_time, parse_time_or_unix};
use super::InputError;

/// Largest GPS file accepted: 256 MiB.
pub const MAX_GPS_FILE_BYTES: u64 = 256 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// Reads a GPX or CSV track file, detecting the format from its content.
pub fn parse_gps_file(path: &Path) -> Result<Vec<GpsFix>, InputError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let too_big = || {
        InputError::invalid(format!(
            "{name}: GPS file is larger than {} MiB; split the track or drop extra columns",
            MAX_GPS_FILE_BYTES >> 20
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| InputError::io(path, e))?;
    let len = file.metadata().map_err(|e| InputError::io(path, e))?.len();
    if len > MAX_GPS_FILE_BYTES {
        return Err(too_big());
    }
    // Sized from the length up front: no doubling while reading (one copy of the file).
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    // `take` also bounds files that grow while being read, and pipes.
    file.take(MAX_GPS_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::io(path, e))?;
    if bytes.len() as u64 > MAX_GPS_FILE_BYTES {
        return Err(too_big());
    }
    let body = strip_bom(&bytes);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Ok(Vec::new()),
        Some(b'<') => parse_gpx(&bytes, &name),
        Some(_) => parse_csv(&bytes, &name),
    }
}

/// Parses GPX 1.0 or 1.1 content; `name` is used in error messages.
///
/// A streaming read (no document tree): memory is the fixes (16 bytes each) and the element
/// path, and reading stops at the first point past [`MAX_GPS_FIXES`].
pub fn parse_gpx(bytes: &[u8], name: &str) -> Result<Vec<GpsFix>, InputError> {
    // XML allows nothing before `<?xml`, but exports with a leading blank line are common.
    let body = strip_bom(bytes).trim_ascii_start();
    let not_gpx = |what: String| {
        InputError::invalid(format!(
            "{name}: not a valid GPX file: {what}; export the track as GPX 1.1 or as CSV \
             with the columns time,lat,lon"
        ))
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    // The element path from the root; only its first few names matter (gpx/trk/trkseg/
    // trkpt/time), deeper ones are counted, not kept.
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let (mut tracks, mut segments, mut index) = (0usize, 0usize, 0usize);
    // The track point being read: (lat, lon, time text).
    let mut point: Option<(f64, f64, Option<String>)> = None;
    let mut fixes: Vec<GpsFix> = Vec::new();
    let place = |index: usize, t: usize, s: usize| {
        format!("{name}: track point {index} (track {t}, segment {s})")
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| not_gpx(format!("{e} at byte {}", reader.error_position())))?;
        // A self-closing element opens and closes at once.
        let self_closing = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let local = e.local_name().as_ref().to_vec();
                if depth == 0 && seen_root {
                    return Err(not_gpx("more than one root element".into()));
                }
                if !seen_root {
                    if local != b"gpx" {
                        return Err(not_gpx(format!(
                            "the root element is <{}>, not <gpx>",
                            String::from_utf8_lossy(&local)
                        )));
                    }
                    seen_root = true;
                }
                let in_seg = depth == 3 && path_is(&path, &[b"gpx", b"trk", b"trkseg"]);
                if depth == 1 && local == b"trk" && path_is(&path, &[b"gpx"]) {
                    tracks += 1;
                    segments = 0;
                }
                if depth == 2 && local == b"trkseg" && path_is(&path, &[b"gpx", b"trk"]) {
                    segments += 1;
                }
                if in_seg && local == b"trkpt" {
                    index += 1;
                    if fixes.len() == MAX_GPS_FIXES {
                        return Err(InputError::invalid(format!(
                            "{name}: the track has more than {MAX_GPS_FIXES} points; the \
                             limit is {MAX_GPS_FIXES} (24 h at 4 Hz): split or thin the track"
                        )));
                    }
                    let coord = |attr: &str| -> Result<f64, InputError> {
                        let value = e.try_get_attribute(attr).ok().flatten().ok_or_else(|| {
                            not_gpx(format!("track point {index} has no {attr} attribute"))
                        })?;
                        let text = std::str::from_utf8(&value.value).unwrap_or("");
                        text.trim().parse::<f64>().map_err(|_| {
                            not_gpx(format!(
                                "track point {index}: {attr} {text:?} is not a number"
                            ))
                        })
                    };
                    let (lat, lon) = (coord("lat")?, coord("lon")?);
                    // Checked here as the gpx crate did: a point off the globe is bad GPX.
                    GpsFix::from_degrees(0, lat, lon)
                        .map_err(|e| not_gpx(format!("track point {index}: {e}")))?;
                    point = Some((lat, lon, None));
                }
                if self_closing {
                    if in_seg && local == b"trkpt" {
                        finish_point(&mut point, &mut fixes, &place(index, tracks, segments))?;
                    }
                } else {
                    if depth < 5 {
                        path.push(local);
                    }
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth < 5 {
                    let closed = path.pop();
                    if depth == 3
                        && closed.as_deref() == Some(b"trkpt".as_slice())
                        && path_is(&path, &[b"gpx", b"trk", b"trkseg"])
                    {
                        finish_point(&mut point, &mut fixes, &place(index, tracks, segments))?;
                    }
                }
            }
            Event::Text(t)
                if depth == 5
                    && path_is(&path, &[b"gpx", b"trk", b"trkseg", b"trkpt", b"time"]) =>
            {
                if let Some((_, _, time)) = &mut point {
                    let text = t.decode().map_err(|e| not_gpx(e.to_string()))?;
                    time.get_or_insert_with(String::new).push_str(&text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(not_gpx("there is no <gpx> element".into()));
    }
    if depth != 0 {
        return Err(not_gpx(
            "the file ends before its elements are closed".into(),
        ));
    }
    fixes.sort_by_key(|f| f.time_us);
    Ok(fixes)
}

fn path_is(path: &[Vec<u8>], want: &[&[u8]]) -> bool {
    path.len() == want.len() && path.iter().zip(want).all(|(a, b)| a.as_slice() == *b)
}

/// Turns the track point just closed into a fix; it must have had a `<time>`.
fn finish_point(
    point: &mut Option<(f64, f64, Option<String>)>,
    fixes: &mut Vec<GpsFix>,
    place: &str,
) -> Result<(), InputError> {
    let Some((lat, lon, time)) = point.take() else {
        return Ok(());
    };
    let Some(text) = time else {
        return Err(InputError::invalid(format!(
            "{place} has no <time>; every track point needs a timestamp"
        )));
    };
    let time_us = parse_time(text.trim()).map_err(|e| e.context(place))?;
    let fix = GpsFix::from_degrees(time_us, lat, lon)
        .map_err(|e| InputError::invalid(format!("{place}: {e}")))?;
    fixes.push(fix);
    Ok(())
}

fn csv_error(name: &str, e: &csv::Error) -> InputError {
    let hint = "the file must be CSV with a header naming the columns time,lat,lon";
    match e.position() {
        Some(pos) => InputError::invalid(format!("{name} line {}: {e}; {hint}", pos.line())),
        None => InputError::invalid(format!("{name}: {e}; {hint}")),
    }
}

/// Parses CSV content with the columns `time`, `lat`, `lon`; `name` is used in messages.
pub fn parse_csv(bytes: &[u8], name: &str) -> Result<Vec<GpsFix>, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(strip_bom(bytes));
    let headers = reader.headers().map_err(|e| csv_error(name, &e))?.clone();
    // csv skips blank lines before the header but reports the header as line 1.
    let blank_lines = strip_bom(bytes)
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .filter(|&&b| b == b'\n')
        .count();
    let header_line = 1 + blank_lines;
    let find = |column: &str| -> Result<usize, InputError> {
        let mut found = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.trim().eq_ignore_ascii_case(column))
            .map(|(i, _)| i);
        match (found.next(), found.next()) {
            (Some(i), None) => Ok(i),
            (Some(_), Some(_)) => Err(InputError::invalid(format!(
                "{name} line {header_line}: the header names the column {column:?} twice; \
                 keep one"
            ))),
            (None, _) => Err(InputError::invalid(format!(
                "{name} line {header_line}: the header must name the columns time,lat,lon \
                 (found {:?}); add a header line such as `time,lat,lon`",
                headers.iter().collect::<Vec<_>>().join(",")
            ))),
        }
    };
    let (ti, lai, loi) = (find("time")?, find("lat")?, find("lon")?);
    let mut fixes = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(name, &e))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let at = format!("{name} line {line}");
        let field = |i: usize, what: &str| -> Result<&str, InputError> {
            match record.get(i) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(InputError::invalid(format!(
                    "{at}: the {what} column is missing or empty; every row needs time,lat,lon"
                ))),
            }
        };
        let time_us = parse_time_or_unix(field(ti, "time")?).map_err(|e| e.context(&at))?;
        let number = |i: usize, what: &str| -> Result<f64, InputError> {
            let text = field(i, what)?;
            text.parse::<f64>().map_err(|_| {
                InputError::invalid(format!(
                    "{at}: {what} {text:?} is not a number; write decimal degrees \
                     such as -33.8688"
                ))
            })
        };
        let lat = number(lai, "latitude")?;
        let lon = number(loi, "longitude")?;
        let fix = GpsFix::from_degrees(time_us, lat, lon)
            .map_err(|e| InputError::invalid(format!("{at}: {e}")))?;
        fixes.push(fix);
    }
    fixes.sort_by_key(|f| f.time_us);
    Ok(fixes)
}

#[cfg(test)]
mod tests;
