//! `footage find` and `footage track` through the binary: output contract and errors.

use std::path::Path;
use std::process::Command;

fn footage(store: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_footage"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn find_and_track_print_json_lines_and_refuse_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    assert_eq!(footage(&store, &["init"]).0, 0);
    let csv = dir.path().join("t.csv");
    std::fs::write(
        &csv,
        "time,lat,lon\n2026-11-24T01:10:00Z,-33.8600,151.2100\n\
         2026-11-24T01:10:05Z,-33.8601,151.2102\n2026-11-24T01:10:10Z,-33.8700,151.2200\n",
    )
    .unwrap();
    let video = dir.path().join("v.bin");
    for (i, officer) in ["MET-1", "MET-2", "MET-1"].iter().enumerate() {
        std::fs::write(&video, format!("video {i}")).unwrap();
        let start = format!("2026-11-24T0{}:09:00Z", i + 1);
        let (code, out, err) = footage(
            &store,
            &[
                "ingest",
                video.to_str().unwrap(),
                "--officer",
                officer,
                "--device",
                "AX-1",
                "--start",
                &start,
                "--end",
                &format!("2026-11-24T0{}:20:00Z", i + 1),
                "--gps",
                csv.to_str().unwrap(),
                "--tag",
                "night",
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    // Near, with the hit stretch of the two fixes inside 200 m.
    let (code, out, err) = footage(
        &store,
        &[
            "find",
            "--near",
            "-33.86,151.21",
            "--radius",
            "200",
            "--from",
            "2026-11-24T01:00:00Z",
            "--to",
            "2026-11-24T01:30:00Z",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["id"], "1");
    assert_eq!(lines[0]["officer"], "MET-1");
    assert_eq!(lines[0]["hits"][0]["from"], "2026-11-24T01:10:00Z");
    assert_eq!(lines[0]["hits"][0]["to"], "2026-11-24T01:10:05Z");
    // Officer filter: no hits field; sorted by start.
    let (code, out, _) = footage(&store, &["find", "--officer", "MET-1"]);
    assert_eq!(code, 0);
    let ids: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|v| assert!(v.get("hits").is_none()))
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["1", "3"]);
    // Paging: --limit prints a cursor on stderr, --after continues.
    let (code, out, err) = footage(&store, &["find", "--tag", "night", "--limit", "2"]);
    assert_eq!((code, out.lines().count()), (0, 2));
    let cursor = err.trim().rsplit(' ').next().unwrap().to_string();
    let (code, out, _) = footage(&store, &["find", "--tag", "night", "--after", &cursor]);
    assert_eq!(code, 0);
    assert!(out.contains("\"id\":\"3\""), "{out}");
    // Track as lines and as GeoJSON.
    let (code, out, _) = footage(&store, &["track", "2"]);
    assert_eq!((code, out.lines().count()), (0, 3));
    let (code, out, _) = footage(&store, &["track", "2", "--geojson"]);
    assert_eq!(code, 0);
    let g: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(g["geometry"]["type"], "LineString");
    assert_eq!(g["geometry"]["coordinates"][0][0], 151.21);
    assert_eq!(g["properties"]["times"].as_array().unwrap().len(), 3);
    // Bad arguments: exit 2 with a reason.
    for (args, want) in [
        (vec!["find", "--near", "95,1", "--radius", "3"], "latitude"),
        (vec!["find", "--near", "1,2", "--radius", "-3"], "radius"),
        (vec!["find", "--near", "1,2"], "--radius"),
        (vec!["find", "--bbox", "1,2,3"], "MINLAT"),
        (vec!["find", "--bbox", "3,0,1,1"], "box"),
        (
            vec![
                "find",
                "--from",
                "2026-11-25T00:00:00Z",
                "--to",
                "2026-11-24T00:00:00Z",
            ],
            "after",
        ),
        (vec!["find", "--from", "yesterday"], "time"),
    ] {
        let (code, _, err) = footage(&store, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (code, _, err) = footage(&store, &["track", "99"]);
    assert_eq!(code, 1, "{err}");
}
