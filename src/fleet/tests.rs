//! Unit tests of the fleet table's pieces: Parquet rows round-trip; hostile or foreign data
//! files and log lines are errors, never panics; station names.

use super::data_file::{decode, encode};
use super::row::{rows_hash, FleetRow};
use super::*;
use crate::meta::GpsFix;

fn row(id: u64, fixes: usize) -> FleetRow {
    FleetRow {
        station: "north".into(),
        store_id: "ab".repeat(16),
        segment_id: id,
        officer: format!("MET-{id}"),
        device: "AX-1".into(),
        start_us: 1_764_547_200_000_000 + id as i64,
        end_us: 1_764_547_260_000_000 + id as i64,
        bytes: 1000 + id,
        sha256: "00".repeat(32),
        categories: vec!["evidential".into()],
        cases: vec![],
        tags: vec!["a".into(), "b".into()],
        holds: vec!["OP-X".into()],
        tier: "cloud".into(),
        cloud_key: id.is_multiple_of(2).then(|| format!("x/segments/{id:020}")),
        deleted: id.is_multiple_of(3),
        track: (0..fixes)
            .map(|i| GpsFix {
                time_us: 1_764_547_200_000_000 + i as i64 * 1_000_000,
                lat_e7: 515_080_000 + i as i32,
                lon_e7: -1_247_000 - i as i32,
            })
            .collect(),
    }
}

#[test]
fn rows_round_trip_through_parquet() {
    let rows: Vec<FleetRow> = (0..50).map(|i| row(i, (i % 7) as usize)).collect();
    let back = decode(encode(&rows).unwrap(), "north").unwrap();
    assert_eq!(back, rows);
    assert_eq!(decode(encode(&[]).unwrap(), "north").unwrap(), vec![]);
}

#[test]
fn the_hash_sees_every_change() {
    let a = vec![row(1, 3), row(2, 0)];
    let mut b = a.clone();
    assert_eq!(rows_hash(&a), rows_hash(&b));
    b[1].tags.push("c".into());
    assert_ne!(rows_hash(&a), rows_hash(&b));
    let mut c = a.clone();
    c[0].track[2].lon_e7 += 1;
    assert_ne!(rows_hash(&a), rows_hash(&c));
}

#[test]
fn hostile_data_files_are_errors() {
    let good = encode(&[row(4, 5)]).unwrap();
    assert!(decode(bytes::Bytes::from_static(b"not parquet"), "n").is_err());
    for cut in [0, 4, good.len() / 2, good.len() - 1] {
        assert!(decode(good.slice(..cut), "n").is_err(), "cut at {cut}");
    }
    let mut rng = 7u64;
    for _ in 0..300 {
        let mut b = good.to_vec();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = (rng >> 33) as usize % b.len();
        b[at] ^= 1 << (rng % 8);
        // Either an error or rows: never a panic.
        let _ = decode(bytes::Bytes::from(b), "n");
    }
    // A fix off the globe is refused.
    let mut r = row(5, 2);
    r.track[0].lat_e7 = 950_000_000;
    assert!(decode(encode(&[r]).unwrap(), "n").is_err());
}

#[test]
fn station_names_are_path_safe() {
    for ok in ["westminster", "ST-01", "a.b_c"] {
        assert!(check_station(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        ".hidden",
        "a/b",
        "a b",
        "ä",
        &"x".repeat(65),
        "..",
        "a=b",
    ] {
        assert!(check_station(bad).is_err(), "{bad}");
    }
    assert!(parse_target("west:42").is_ok());
    assert!(parse_target("west").is_err());
    assert!(parse_target("../x:1").is_err());
}

#[test]
fn h3_cells_hold_every_fix_once_sorted() {
    use super::data_file::h3_cells;
    // A walk of 2 km east along a London street, a fix every 5 m.
    let track: Vec<GpsFix> = (0..400)
        .map(|i| {
            GpsFix::from_degrees(
                i64::from(i) * 1_000_000,
                51.5080,
                -0.1247 + f64::from(i) * 7.2e-5,
            )
            .unwrap()
        })
        .collect();
    let cells = h3_cells(&track);
    assert!(cells.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
    // Cells of about 174 m edge: 2 km crosses 10 to 20 of them.
    assert!((8..=25).contains(&cells.len()), "{}", cells.len());
    for f in &track {
        let ll = h3o::LatLng::new(f64::from(f.lat_e7) / 1e7, f64::from(f.lon_e7) / 1e7).unwrap();
        let c = i64::try_from(u64::from(ll.to_cell(h3o::Resolution::Nine))).unwrap();
        assert!(cells.binary_search(&c).is_ok());
        let centre = h3o::LatLng::from(h3o::CellIndex::try_from(c as u64).unwrap());
        assert!(ll.distance_m(centre) < 260.0, "a fix lies in its cell");
    }
    assert!(h3_cells(&[]).is_empty());
}

#[test]
fn a_data_file_has_the_h3_cells_column_for_other_engines() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let bytes = encode(&[row(1, 5), row(2, 0)]).unwrap();
    let r = SerializedFileReader::new(bytes).unwrap();
    let names: Vec<String> = r
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    assert!(names.contains(&"h3_cells".to_string()), "{names:?}");
}

/// A log with an action footage does not write (`txn`) gets no compaction or checkpoint
/// (they would drop it); versions past 2^63 − 1 in names are not versions.
#[test]
fn foreign_actions_stop_compactions_and_huge_versions_are_not_versions() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let fleet = Fleet::open(&url).unwrap();
    let mut snap = delta::Snapshot::default();
    let lines = concat!(
        r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#,
        "\n",
        r#"{"txn":{"appId":"spark-stream","version":3}}"#,
        "\n"
    );
    delta::apply(&mut snap, 5, lines.as_bytes()).unwrap();
    assert!(snap.foreign);
    compact::write(&fleet, &snap, 0).unwrap();
    checkpoint::write(&fleet, &snap, 0).unwrap();
    assert!(!dir.path().join(TABLE_DIR).exists(), "nothing written");
    let max = format!("{:020}", delta::MAX_VERSION);
    assert_eq!(
        delta::parse_version(&format!("{max}.json")),
        Some(delta::MAX_VERSION)
    );
    assert_eq!(delta::parse_version("18446744073709551615.json"), None);
    assert_eq!(
        compact::parse(&format!("{:020}.18446744073709551615.compacted.json", 0)),
        None
    );
    assert_eq!(
        checkpoint::parse("18446744073709551615.checkpoint.parquet"),
        None
    );
}
