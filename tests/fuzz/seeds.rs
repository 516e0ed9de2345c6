//! Seed inputs for the fuzz targets, made by the real encoders: a small real store (volumes,
//! checkpoint, track file, audit log, config, tokens) plus hand-written user files.

use std::path::Path;

use footage::format::record::{next_header_pos, record_end, Kind, RecordHeader, HEADER_LEN};
use footage::{GpsFix, SegmentMeta, StoreOptions};

type Seed = (&'static str, String, Vec<u8>);

const T0: i64 = 1_763_647_380_000_000; // 2025-11-20T14:03:00Z

fn meta(i: i64) -> SegmentMeta {
    let start = T0 + i * 600_000_000;
    SegmentMeta {
        officer: format!("MET-00421{}", i % 2),
        device: format!("AX-B3-0012{i}"),
        start_us: start,
        end_us: start + 120_000_000,
        gps: (0..6)
            .map(|k| {
                GpsFix::from_degrees(start + k * 1_000_000, 51.5080 + 0.0002 * k as f64, -0.1247)
                    .unwrap()
            })
            .collect(),
        cases: if i == 0 {
            vec!["CASE-17".into()]
        } else {
            vec![]
        },
        tags: vec![format!("shift-{i}")],
        categories: if i == 1 {
            vec!["evidential".into()]
        } else {
            vec![]
        },
    }
}

/// A small store with sealed and active volumes, changes, a checkpoint and an audit log.
fn store_seeds(root: &Path) -> Vec<Seed> {
    let opts = StoreOptions {
        chunk_size: 64 * 1024,
        volume_size: 256 * 1024,
        ..StoreOptions::default()
    };
    let store = footage::testing::open_or_create_with(root, &opts).unwrap();
    let mut ids = Vec::new();
    for i in 0..4i64 {
        let len = [100usize, 70_000, 150_000, 5][i as usize];
        let data: Vec<u8> = (0..len).map(|b| (b * 7 + i as usize) as u8).collect();
        ids.push(store.ingest_bytes(meta(i), &data).unwrap().id);
    }
    store.categorize(ids[0], "evidential", "sgt.jones").unwrap();
    store.hold(ids[0], "CASE-17", "sgt.jones").unwrap();
    store.read_range(ids[1], 0, 10).unwrap();
    store.checkpoint().unwrap();
    store.close().unwrap();
    footage::server::tokens::add(root, "reviewer", true).unwrap();

    let mut out: Vec<Seed> = Vec::new();
    let read = |p: &Path| std::fs::read(p).unwrap();
    let mut ckpts: Vec<_> = std::fs::read_dir(root.join("catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .collect();
    ckpts.sort();
    let ckpt = read(ckpts.last().unwrap());
    let body = footage::decode_checkpoint_file(&ckpt).unwrap();
    out.push(("checkpoint_file", "store.ckpt".into(), ckpt));
    out.push(("checkpoint_body", "store.body".into(), body));
    out.push((
        "tracks",
        "tracks.ftt".into(),
        read(&root.join("catalog/tracks.ftt")),
    ));
    out.push((
        "config",
        "footage.toml".into(),
        read(&root.join("footage.toml")),
    ));
    out.push((
        "tokens",
        "tokens.json".into(),
        read(&root.join("tokens.json")),
    ));
    out.push((
        "policy",
        "default.toml".into(),
        read(&root.join("policy.toml")),
    ));
    out.push(("audit_head", "HEAD".into(), read(&root.join("audit/HEAD"))));
    for e in std::fs::read_dir(root.join("audit")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".log") {
            continue;
        }
        let log = read(&p);
        // Entry bodies, for the audit_entry target.
        let mut pos = 96;
        let mut n = 0;
        while pos + 12 <= log.len() && n < 6 {
            let len = u32::from_le_bytes(log[pos + 4..pos + 8].try_into().unwrap()) as usize;
            out.push((
                "audit_entry",
                format!("{name}-{n}.body"),
                log[pos + 12..pos + 12 + len].to_vec(),
            ));
            pos += 12 + len;
            n += 1;
        }
        out.push(("audit_log", name, log));
    }
    let mut vols: Vec<_> = std::fs::read_dir(root.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    vols.sort();
    let (mut chunks, mut commits, mut changes) = (0, 0, 0);
    for v in vols {
        let data = read(&v);
        let name = v.file_name().unwrap().to_string_lossy().into_owned();
        out.push(("volume_header", format!("{name}.head"), data[..64].to_vec()));
        let mut pos = 4064u64;
        while pos + HEADER_LEN <= data.len() as u64 {
            let Ok(h) = RecordHeader::decode(&data[pos as usize..]) else {
                break;
            };
            let end = record_end(pos, h.len);
            let rec = data[pos as usize..end as usize].to_vec();
            let payload = rec[HEADER_LEN as usize..].to_vec();
            let label = format!("{name}-{pos}");
            match h.kind {
                Kind::Chunk if chunks < 2 && h.len < 4096 => {
                    chunks += 1;
                    out.push(("record", format!("{label}.chunk"), rec));
                }
                Kind::Commit if commits < 4 => {
                    commits += 1;
                    out.push(("record", format!("{label}.commit"), rec));
                    out.push(("commit", format!("{label}.commit"), payload));
                }
                Kind::Change if changes < 3 => {
                    changes += 1;
                    out.push(("record", format!("{label}.change"), rec));
                    out.push(("change", format!("{label}.change"), payload));
                }
                Kind::Seal => out.push(("record", format!("{label}.seal"), rec)),
                _ => {}
            }
            pos = next_header_pos(end);
        }
    }
    out
}

fn text_seeds() -> Vec<Seed> {
    let mut out: Vec<Seed> = Vec::new();
    let mut add = |t: &'static str, name: &str, s: &str| out.push((t, name.into(), s.into()));
    add(
        "gpx",
        "track.gpx",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="fuzz" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="51.5" lon="-0.12"><name>plan</name></wpt>
  <trk><name>patrol</name><trkseg>
    <trkpt lat="51.5080" lon="-0.1247"><ele>12</ele><time>2025-11-20T14:03:00Z</time></trkpt>
    <trkpt lat="51.5082" lon="-0.1249"><time>2025-11-20T14:03:05.250Z</time></trkpt>
  </trkseg><trkseg>
    <trkpt lat="-33.8688" lon="151.2093"><time>2025-11-20T15:03:00+01:00</time></trkpt>
  </trkseg></trk>
</gpx>
"#,
    );
    add(
        "gpx",
        "gpx10.gpx",
        "<?xml version=\"1.0\"?>\n<gpx version=\"1.0\"><trk><trkseg><trkpt lat=\"0\" lon=\"0\"><time>1970-01-01T00:00:00Z</time></trkpt></trkseg></trk></gpx>",
    );
    add(
        "gps_csv",
        "track.csv",
        "time,lat,lon,accuracy\n2025-11-20T14:03:00Z,51.5080,-0.1247,5\n1763647385.5,51.5082,-0.1249,4\n",
    );
    add(
        "gps_csv",
        "reordered.csv",
        "\u{feff}\n LON , Lat ,TIME\n-0.1247,51.508,1763647380\n151.2093,-33.8688,2025-11-20T15:03:00+01:00\n",
    );
    add(
        "manifest",
        "manifest.jsonl",
        r#"{"file": "clips/a.mp4", "officer": "PC1234", "device": "CAM-07", "start": "2026-11-20T14:03:00Z", "end": null, "gps": [[1763647380, -33.8688, 151.2093], [1763647381.5, -33.8689, 151.2094]], "case": "C-2026-17", "tags": ["arrest"], "category": "evidence"}

{"file": "b.mp4", "officer": "PC1", "device": "CAM1", "start": 1763647380, "end": "2026-11-20T15:03:00+01:00", "cases": ["C-1", "C-2"], "categories": ["traffic"], "gps_file": "b.gpx"}
"#,
    );
    for (i, t) in [
        "2026-11-20T14:03:00Z",
        "2026-11-20T15:03:00.25+01:00",
        "1970-01-01T00:00:00.000001Z",
        "9999-12-31T23:59:59.999999Z",
        "1763647380",
        "1763647380.123456789",
        " 0.5 ",
    ]
    .iter()
    .enumerate()
    {
        add("time", &format!("t{i}"), t);
    }
    add(
        "policy",
        "short.toml",
        "[cloud]\nurl = \"az://footage/station-7\"\n[category.default]\nupload = false\nevict_after = \"36h\"\ndelete_after = \"never\"\n[disk]\nhigh_watermark = 1.0\n",
    );
    add(
        "tokens",
        "empty.json",
        "{\"format_version\": 1, \"tokens\": []}",
    );
    for (i, q) in [
        "officer=MET-000&officer=MET-001&from=2025-11-20T00:00:00Z&to=2025-11-21T00:00:00Z&limit=2",
        "near=51.5080,-0.1247&radius=500&category=evidential",
        "bbox=51.4,-0.2,51.6,0.1&case=C-1&tag=t1&cursor=1763647380000000.1",
        "device=AX-1&limit=1&cursor=1763647980000000.2",
        "bbox=-10,170,10,-170",
    ]
    .iter()
    .enumerate()
    {
        add("find_query", &format!("q{i}"), q);
    }
    for (i, (len, r)) in [
        (1000u64, "bytes=0-99"),
        (1000, "bytes=500-"),
        (1000, "bytes=-200"),
        (0, "bytes=-1"),
        (1000, "bytes=0-0,5-9"),
        (u64::MAX, "bytes=18446744073709551614-"),
    ]
    .iter()
    .enumerate()
    {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(r.as_bytes());
        out.push(("range", format!("r{i}"), v));
    }
    out
}

/// Every seed: (target, file name, bytes).
pub fn all() -> Vec<Seed> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = store_seeds(dir.path());
    out.extend(text_seeds());
    let mp4 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/input/tiny.mp4");
    out.push(("mp4", "tiny.mp4".into(), std::fs::read(mp4).unwrap()));
    out
}
