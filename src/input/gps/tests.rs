//! Unit tests of `input/gps.rs` (moved out of it whole; the module is `super`).

use super::*;

const T0: i64 = 1_763_647_380_000_000; // 2025-11-20T14:03:00Z

fn gpx_doc(points: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <trk><name>patrol</name><trkseg>{points}</trkseg></trk>
</gpx>"#
    )
}

fn err(r: Result<Vec<GpsFix>, InputError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn gpx_valid_multi_segment_sorted() {
    let doc = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
 <wpt lat="1" lon="1"><name>ignored</name></wpt>
 <trk><trkseg>
  <trkpt lat="-33.8688" lon="151.2093"><ele>12</ele><time>2025-11-20T14:03:01Z</time></trkpt>
  <trkpt lat="-33.8689" lon="151.2094"><time>2025-11-20T15:03:00+01:00</time></trkpt>
 </trkseg><trkseg>
  <trkpt lat="51.5" lon="-0.12"><time>2025-11-20T14:03:02.5Z</time></trkpt>
 </trkseg></trk>
 <trk><trkseg><trkpt lat="0" lon="0"><time>2025-11-20T14:02:59Z</time></trkpt></trkseg></trk>
</gpx>"#;
    let fixes = parse_gpx(doc.as_bytes(), "t.gpx").unwrap();
    let times: Vec<i64> = fixes.iter().map(|f| f.time_us - T0).collect();
    assert_eq!(times, [-1_000_000, 0, 1_000_000, 2_500_000]);
    assert_eq!(fixes[1].lat_e7, -338_689_000);
    assert_eq!(fixes[1].lon_e7, 1_512_094_000);
    assert_eq!(fixes[3].lon_e7, -1_200_000);
}

#[test]
fn gpx_10_and_bom_and_empty() {
    let doc = "\u{feff}  <?xml version=\"1.0\"?>\n<gpx version=\"1.0\" creator=\"t\" \
               xmlns=\"http://www.topografix.com/GPX/1/0\"><trk><trkseg>\
               <trkpt lat=\"10\" lon=\"20\"><time>2025-11-20T14:03:00Z</time></trkpt>\
               </trkseg></trk></gpx>";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.gpx");
    std::fs::write(&path, doc).unwrap();
    let fixes = parse_gps_file(&path).unwrap();
    assert_eq!(fixes, [GpsFix::from_degrees(T0, 10.0, 20.0).unwrap()]);
    let empty = parse_gpx(gpx_doc("").as_bytes(), "e.gpx").unwrap();
    assert!(empty.is_empty());
}

#[test]
fn gpx_point_without_time() {
    let doc = gpx_doc(
        r#"<trkpt lat="1" lon="2"><time>2025-11-20T14:03:00Z</time></trkpt>
           <trkpt lat="1" lon="2"></trkpt>"#,
    );
    let e = err(parse_gpx(doc.as_bytes(), "t.gpx"));
    assert!(
        e.contains("t.gpx: track point 2 (track 1, segment 1) has no <time>"),
        "{e}"
    );
}

#[test]
fn gpx_malformed() {
    let e = err(parse_gpx(b"<gpx><trk><trkseg>", "bad.gpx"));
    assert!(e.starts_with("bad.gpx: not a valid GPX file"), "{e}");
    let e = err(parse_gpx(b"<html></html>", "page.gpx"));
    assert!(e.starts_with("page.gpx: not a valid GPX file"), "{e}");
    let doc = gpx_doc(r#"<trkpt lat="91" lon="2"><time>2025-11-20T14:03:00Z</time></trkpt>"#);
    let e = err(parse_gpx(doc.as_bytes(), "lat.gpx"));
    assert!(e.starts_with("lat.gpx: not a valid GPX file"), "{e}");
    let doc = gpx_doc(r#"<trkpt lat="1" lon="2"><time>1960-01-01T00:00:00Z</time></trkpt>"#);
    let e = err(parse_gpx(doc.as_bytes(), "old.gpx"));
    assert!(
        e.contains("old.gpx: track point 1 (track 1, segment 1)"),
        "{e}"
    );
    assert!(e.contains("1970..=9999"), "{e}");
}

#[test]
fn csv_rfc3339_and_extra_columns() {
    let text = "accuracy, LON ,Time,lat\n5,151.2093,2025-11-20T14:03:01Z,-33.8688\n\
                7,-0.5,2025-11-20T14:03:00Z,51.5\n";
    let fixes = parse_csv(text.as_bytes(), "t.csv").unwrap();
    assert_eq!(fixes.len(), 2);
    assert_eq!(fixes[0], GpsFix::from_degrees(T0, 51.5, -0.5).unwrap());
    assert_eq!(
        fixes[1],
        GpsFix::from_degrees(T0 + 1_000_000, -33.8688, 151.2093).unwrap()
    );
}

#[test]
fn csv_unix_seconds_crlf_bom_negative() {
    let text = "\u{feff}time,lat,lon\r\n1763647380.5,-12.5,-45.25\r\n\r\n1763647380,-90,-180\r\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("track.csv");
    std::fs::write(&path, text).unwrap();
    let fixes = parse_gps_file(&path).unwrap();
    assert_eq!(
        fixes,
        [
            GpsFix::from_degrees(T0, -90.0, -180.0).unwrap(),
            GpsFix::from_degrees(T0 + 500_000, -12.5, -45.25).unwrap(),
        ]
    );
    assert_eq!(fixes[1].lat_e7, -125_000_000);
}

#[test]
fn csv_stable_sort_and_header_only() {
    let text = "time,lat,lon\n1763647380,1,1\n1763647380,2,2\n1763647379,3,3\n";
    let fixes = parse_csv(text.as_bytes(), "t.csv").unwrap();
    let lats: Vec<i32> = fixes.iter().map(|f| f.lat_e7 / 10_000_000).collect();
    assert_eq!(lats, [3, 1, 2]);
    assert!(parse_csv(b"time,lat,lon\n", "t.csv").unwrap().is_empty());
    assert!(parse_csv(b"time,lat,lon", "t.csv").unwrap().is_empty());
}

#[test]
fn csv_bad_header() {
    let e = err(parse_csv(b"when,lat,lon\n1763647380,1,1\n", "t.csv"));
    assert!(
        e.starts_with("t.csv line 1: the header must name the columns time,lat,lon"),
        "{e}"
    );
    let e = err(parse_csv(b"1763647380,1,1\n", "t.csv"));
    assert!(e.starts_with("t.csv line 1:"), "{e}");
    let e = err(parse_csv(b"\n\ntime,lat,lat,lon\n", "t.csv"));
    assert!(e.starts_with("t.csv line 3:"), "{e}");
    assert!(e.contains("\"lat\" twice"), "{e}");
}

#[test]
fn csv_bad_values_name_lines() {
    let cases: [(&str, &str); 7] = [
        (
            "time,lat,lon\n1763647380,1,1\n1763647380,abc,1\n",
            "t.csv line 3: latitude \"abc\" is not a number",
        ),
        (
            "time,lat,lon\n1763647380,1,x1\n",
            "t.csv line 2: longitude \"x1\" is not a number",
        ),
        (
            "time,lat,lon\n\n1763647380,1,1\n1763647380,1,1\n1763647380,91,1\n",
            "t.csv line 5: latitude 91 is outside -90..90",
        ),
        (
            "time,lat,lon\n1763647380,-91,1\n",
            "t.csv line 2: latitude -91 is outside -90..90",
        ),
        (
            "time,lat,lon\n1763647380,1,180.5\n",
            "t.csv line 2: longitude 180.5 is outside -180..180",
        ),
        (
            "time,lat,lon\n1763647380,NaN,1\n",
            "t.csv line 2: latitude NaN is outside",
        ),
        (
            "time,lat,lon\nyesterday,1,1\n",
            "t.csv line 2: invalid time \"yesterday\"",
        ),
    ];
    for (text, want) in cases {
        let e = err(parse_csv(text.as_bytes(), "t.csv"));
        assert!(e.starts_with(want), "got {e:?}, want {want:?}");
    }
    let e = err(parse_csv(b"time,lat,lon\n1763647380,1\n", "t.csv"));
    assert!(
        e.starts_with("t.csv line 2: the longitude column is missing"),
        "{e}"
    );
    let e = err(parse_csv(b"time,lat,lon\n1763647380,,1\n", "t.csv"));
    assert!(
        e.starts_with("t.csv line 2: the latitude column is missing or empty"),
        "{e}"
    );
    let e = err(parse_csv(b"time,lat,lon\n1763647380,\xff,1\n", "t.csv"));
    assert!(e.starts_with("t.csv line 2:"), "{e}");
    let e = err(parse_csv(b"time,lat,lon\n-5,1,1\n", "t.csv"));
    assert!(e.contains("line 2") && e.contains("1970..=9999"), "{e}");
}

#[test]
fn file_level_checks() {
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.csv");
    std::fs::write(&blank, "\u{feff} \n").unwrap();
    assert!(parse_gps_file(&blank).unwrap().is_empty());
    let missing = dir.path().join("nope.gpx");
    assert!(matches!(
        parse_gps_file(&missing),
        Err(InputError::Io { .. })
    ));
    let big = dir.path().join("big.csv");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(MAX_GPS_FILE_BYTES + 1).unwrap();
    let e = parse_gps_file(&big).unwrap_err().to_string();
    assert!(
        e.contains("big.csv: GPS file is larger than 256 MiB"),
        "{e}"
    );
}
