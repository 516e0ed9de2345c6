//! Unit tests of `input/manifest/` (moved out of it whole; the module is `super`).

use super::*;

const T0: i64 = 1_763_647_380_000_000; // 2025-11-20T14:03:00Z
const BASE: &str = "/evidence/batch7";

fn parse(text: &str) -> Result<Vec<ManifestEntry>, InputError> {
    parse_manifest_named(text, Path::new(BASE), "manifest.jsonl")
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn line(extra: &str) -> String {
    format!(
        r#"{{"file": "a.mp4", "officer": "PC1234", "device": "CAM-07", "start": "2025-11-20T14:03:00Z"{extra}}}"#
    )
}

#[test]
fn minimal_and_full_entries() {
    let text = format!(
        "\u{feff}{}\n\n   \r\n{}\r\n",
        line(""),
        r#"{"file": "/abs/b.mp4", "officer": "PC9", "device": "D1", "start": 1763647380.5, "end": "2025-11-20T14:13:00Z", "gps": [[1763647390, -33.5, 151.25], [1763647381.25, 90, -180]], "case": "C-1", "cases": ["C-2"], "tags": ["arrest", "use-of-force"], "category": null, "categories": ["evidence"]}"#
    );
    let entries = parse(&text).unwrap();
    assert_eq!(entries.len(), 2);
    let a = &entries[0];
    assert_eq!(a.line, 1);
    assert_eq!(a.file, Path::new(BASE).join("a.mp4"));
    assert_eq!(
        (a.officer.as_str(), a.device.as_str()),
        ("PC1234", "CAM-07")
    );
    assert_eq!((a.start_us, a.end_us), (T0, None));
    assert!(a.gps.is_empty() && a.cases.is_empty() && a.tags.is_empty());
    assert!(a.categories.is_empty());
    let b = &entries[1];
    assert_eq!(b.line, 4);
    assert_eq!(b.file, PathBuf::from("/abs/b.mp4"));
    assert_eq!(b.start_us, T0 + 500_000);
    assert_eq!(b.end_us, Some(T0 + 600_000_000));
    assert_eq!(
        b.gps,
        [
            GpsFix::from_degrees(T0 + 1_250_000, 90.0, -180.0).unwrap(),
            GpsFix::from_degrees(T0 + 10_000_000, -33.5, 151.25).unwrap(),
        ]
    );
    assert_eq!(b.cases, ["C-1", "C-2"]);
    assert_eq!(b.tags, ["arrest", "use-of-force"]);
    assert_eq!(b.categories, ["evidence"]);
    assert!(parse("").unwrap().is_empty());
    let nulls = parse(&line(
        r#", "end": null, "gps": null, "case": null, "tags": null"#,
    ));
    assert_eq!(nulls.unwrap()[0].end_us, None);
    let unix = parse(&line(r#", "end": 1763647400"#)).unwrap();
    assert_eq!(unix[0].end_us, Some(T0 + 20_000_000));
}

#[test]
fn json_and_field_errors_name_the_line() {
    let good = line("");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{good}\n{{not json"),
            "manifest.jsonl line 2: key must be a string",
        ),
        (
            format!("{good}\n\n[1,2]"),
            "manifest.jsonl line 3: expected a JSON object {...} on each line, found \"[1,2]\"",
        ),
        (
            line(r#", "colour": "red""#),
            "line 1: unknown field `colour`",
        ),
        (
            r#"{"file": "a.mp4", "device": "D", "start": 0}"#.into(),
            "line 1: missing field `officer`",
        ),
        (
            line(r#", "tags": "arrest""#),
            "line 1: invalid type: string \"arrest\", expected a sequence",
        ),
        (
            r#"{"file": 5, "officer": "P", "device": "D", "start": 0}"#.into(),
            "line 1: invalid type: integer `5`",
        ),
        (
            line(r#", "file": "b.mp4""#),
            "line 1: duplicate field `file`",
        ),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.contains(want), "got {e:?}, want {want:?}");
        assert!(e.starts_with("manifest.jsonl line "), "{e}");
        assert!(!e.contains("at line 1 column"), "{e}");
    }
}

#[test]
fn value_errors() {
    let base = r#"{"file": "a.mp4", "officer": "PC1", "device": "CAM1""#;
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{base}, "start": "yesterday"}}"#),
            "line 1: start: invalid time \"yesterday\": expected RFC 3339",
        ),
        (
            format!(r#"{base}, "start": null}}"#),
            "line 1: start is required",
        ),
        (
            format!(r#"{base}, "start": true}}"#),
            "line 1: start must be an RFC 3339 string",
        ),
        (
            format!(r#"{base}, "start": -5}}"#),
            "line 1: start: time \"-5\" is outside the years 1970..=9999",
        ),
        (
            format!(r#"{base}, "start": 1e13}}"#),
            "outside the years 1970..=9999",
        ),
        (
            line(r#", "end": "2025-11-20T14:02:59Z""#),
            "line 1: end 2025-11-20T14:02:59Z is before start 2025-11-20T14:03:00Z",
        ),
        (
            line(r#", "end": {}"#),
            "line 1: end must be an RFC 3339 string",
        ),
        (
            r#"{"file": " ", "officer": "P", "device": "D", "start": 0}"#.into(),
            "line 1: file must name the clip",
        ),
        (
            r#"{"file": "a", "officer": "P C", "device": "D", "start": 0}"#.into(),
            "line 1: officer \"P C\" contains ' '",
        ),
        (
            r#"{"file": "a", "officer": "P", "device": "", "start": 0}"#.into(),
            "line 1: device must not be empty",
        ),
        (
            line(r#", "case": "ok", "cases": ["bad case"]"#),
            "line 1: case \"bad case\" contains",
        ),
        (line(r#", "tags": ["é"]"#), "line 1: tag \"é\" contains"),
        (
            line(r#", "categories": ["x", ""]"#),
            "line 1: category must not be empty",
        ),
        (
            line(r#", "gps": [[1763647380, 1]]"#),
            "line 1: gps[0] is [1763647380,1]; each GPS point must be [unix_seconds, lat, lon]",
        ),
        (
            line(r#", "gps": [[1763647380, 1, 2], [1763647380, "1", 2]]"#),
            "line 1: gps[1] is",
        ),
        (line(r#", "gps": [5]"#), "line 1: gps[0] is 5;"),
        (line(r#", "gps": [[1763647380, 1, 2, 3]]"#), "three numbers"),
        (
            line(r#", "gps": [[1763647380, 91, 2]]"#),
            "line 1: gps[0]: latitude 91 is outside -90..90",
        ),
        (
            line(r#", "gps": [[1763647380, 1, -181]]"#),
            "line 1: gps[0]: longitude -181 is outside -180..180",
        ),
        (
            line(r#", "gps": [[-1, 1, 2]]"#),
            "line 1: gps[0] time: time \"-1\" is outside",
        ),
        (
            line(r#", "gps": [], "gps_file": "t.csv""#),
            "line 1: give either gps or gps_file, not both",
        ),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.contains(want), "got {e:?}, want {want:?}");
        assert!(e.starts_with("manifest.jsonl line 1:"), "{e}");
    }
    let e = parse_manifest(&line(r#", "x": 1"#), Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("manifest line 1: unknown field `x`"), "{e}");
}

#[test]
fn gps_file_and_read_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tracks")).unwrap();
    std::fs::write(
        dir.path().join("tracks/t.csv"),
        "time,lat,lon\n1763647381,1,2\n1763647380,3,4\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tracks/bad.csv"),
        "time,lat,lon\n1763647381,1,200\n",
    )
    .unwrap();
    let text = format!(
        "{}\n{}\n",
        line(r#", "gps_file": "tracks/t.csv""#),
        line(r#", "gps_file": "tracks/bad.csv""#)
    );
    let manifest = dir.path().join("batch.jsonl");
    std::fs::write(&manifest, &text).unwrap();
    let e = read_manifest(&manifest).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "batch.jsonl line 2: gps_file \"tracks/bad.csv\": bad.csv line 2: longitude 200"
        ),
        "{e}"
    );
    let first = text.lines().next().unwrap_or_default();
    std::fs::write(&manifest, first).unwrap();
    let entries = read_manifest(&manifest).unwrap();
    assert_eq!(entries[0].file, dir.path().join("a.mp4"));
    assert_eq!(
        entries[0].gps,
        [
            GpsFix::from_degrees(T0, 3.0, 4.0).unwrap(),
            GpsFix::from_degrees(T0 + 1_000_000, 1.0, 2.0).unwrap(),
        ]
    );
    std::fs::write(&manifest, line(r#", "gps_file": "missing.gpx""#)).unwrap();
    let e = read_manifest(&manifest).unwrap_err().to_string();
    assert!(
        e.starts_with("batch.jsonl line 1: cannot read gps_file"),
        "{e}"
    );
    assert!(e.contains("missing.gpx"), "{e}");
    std::fs::write(&manifest, b"{\"file\": \"\xff\"}").unwrap();
    let e = read_manifest(&manifest).unwrap_err().to_string();
    assert!(e.contains("batch.jsonl: manifest is not UTF-8"), "{e}");
    let missing = dir.path().join("nope.jsonl");
    assert!(matches!(
        read_manifest(&missing),
        Err(InputError::Io { .. })
    ));
}
