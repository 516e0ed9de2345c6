//! `footage find` (search the index, one JSON object per result) and `footage track`.

use clap::Args;

use super::{print_json, println_out, segment_arg};
use crate::input::time::format_time;
pub use crate::search::{FindLine, SearchArgs as FindArgs};
use crate::Store;

#[derive(Args, Debug)]
pub struct TrackArgs {
    /// Segment id
    #[arg(value_parser = segment_arg)]
    pub id: u64,
    /// Print a GeoJSON Feature (LineString with per-fix times) instead of one fix per line
    #[arg(long)]
    pub geojson: bool,
}

pub fn find(store: &Store, args: FindArgs) -> anyhow::Result<i32> {
    let q = args.query();
    if let Err(e) = q.validate() {
        // A query that cannot be right is a usage error, like a malformed argument.
        eprintln!("error: {e}");
        return Ok(super::EXIT_USAGE);
    }
    let with_hits = q.area.is_some();
    let print = |r: crate::FindResult| -> anyhow::Result<()> {
        println_out(&serde_json::to_string(&FindLine::of(
            store, &r, with_hits,
        )?)?)
    };
    if q.limit.is_some() {
        let page = store.find(&q)?;
        let next = page.next.clone();
        for r in page {
            print(r)?;
        }
        if let Some(c) = next {
            eprintln!("more results: continue with --after {c}");
        }
    } else {
        for r in store.find_all(&q) {
            print(r?)?;
        }
    }
    Ok(super::EXIT_OK)
}

pub fn track(store: &Store, args: TrackArgs) -> anyhow::Result<i32> {
    let fixes = store.track(args.id)?;
    if args.geojson {
        print_json(&crate::meta::track_geojson(args.id, &fixes))?;
    } else {
        for f in fixes {
            let line = serde_json::json!({
                "time": format_time(f.time_us),
                "lat": f.lat(),
                "lon": f.lon(),
            });
            println_out(&line.to_string())?;
        }
    }
    Ok(super::EXIT_OK)
}
