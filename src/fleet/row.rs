//! One row of the fleet table: a segment as a station publishes it (its catalogue entry, its
//! labels and holds, where its bytes are, its GPS track), and the content hash that tells a
//! publish whether a day's rows changed.
//!
//! Invariants: a row is built from the store's own answers (`Store::info`, `Store::track`)
//! and nothing else; [`rows_hash`] depends on every published field and on the rows' order
//! (callers sort by segment id), so equal hashes mean equal files.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::meta::GpsFix;
use crate::store::Store;
use crate::types::TierState;

/// A segment as the fleet table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetRow {
    /// The publishing station (a partition column of the table).
    pub station: String,
    /// The store's id (32 hex digits): with `segment_id`, names the segment force-wide.
    pub store_id: String,
    /// The segment's id in its store.
    pub segment_id: u64,
    /// Officer id.
    pub officer: String,
    /// Camera id.
    pub device: String,
    /// Recording start, µs since the Unix epoch (UTC).
    pub start_us: i64,
    /// Recording end, µs since the Unix epoch (UTC).
    pub end_us: i64,
    /// Length of the video, bytes.
    pub bytes: u64,
    /// SHA-256 of the video, lower-case hex.
    pub sha256: String,
    /// Retention categories.
    pub categories: Vec<String>,
    /// Case ids.
    pub cases: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Case ids holding the segment.
    pub holds: Vec<String>,
    /// `local`, `local+cloud` or `cloud` ([`TierState::as_str`]).
    pub tier: String,
    /// The prefix of the segment's cloud copy in the bucket (`<store id>/segments/<id, 20
    /// digits>`), when it has one.
    pub cloud_key: Option<String>,
    /// The station no longer holds the segment (deleted by retention); the row stays so the
    /// force knows it existed.
    pub deleted: bool,
    /// The GPS track, in time order.
    pub track: Vec<GpsFix>,
}

/// The object key prefix of segment `id`'s cloud copy in store `store_id`'s tier (as
/// `crate::tier` lays it out).
pub fn cloud_key(store_id: &str, id: u64) -> String {
    format!("{store_id}/segments/{id:020}")
}

impl FleetRow {
    /// The row of segment `id` of `store`, or `None` if the store no longer has it.
    pub fn of(store: &Store, station: &str, store_id: &str, id: u64) -> Result<Option<FleetRow>> {
        let info = match store.info(id) {
            Ok(i) => i,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let track = match store.track(id) {
            Ok(t) => t,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let in_cloud = info.tier != TierState::Local;
        Ok(Some(FleetRow {
            station: station.to_string(),
            store_id: store_id.to_string(),
            segment_id: id,
            sha256: info.sha256_hex(),
            officer: info.officer,
            device: info.device,
            start_us: info.start.as_micros(),
            end_us: info.end.as_micros(),
            bytes: info.bytes,
            categories: info.categories,
            cases: info.cases,
            tags: info.tags,
            holds: info.holds,
            tier: info.tier.as_str().to_string(),
            cloud_key: in_cloud.then(|| cloud_key(store_id, id)),
            deleted: false,
            track,
        }))
    }

    /// The day (UTC date of the start, `YYYY-MM-DD`): the table's other partition column.
    pub fn day(&self) -> String {
        day_of(self.start_us)
    }

    /// The track's box (min lat, min lon, max lat, max lon) in 1e-7 degrees, if it has fixes.
    pub fn bbox(&self) -> Option<(i32, i32, i32, i32)> {
        bbox_of(
            self.track
                .iter()
                .map(|f| (f.lat_e7, f.lat_e7, f.lon_e7, f.lon_e7)),
        )
    }
}

/// The UTC date of a time, `YYYY-MM-DD`.
pub fn day_of(time_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(time_us)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string())
}

/// The union of boxes given as (min lat, max lat, min lon, max lon); `None` if there are none.
pub fn bbox_of(boxes: impl Iterator<Item = (i32, i32, i32, i32)>) -> Option<(i32, i32, i32, i32)> {
    boxes.fold(None, |acc, (a, b, c, d)| {
        Some(match acc {
            None => (a, c, b, d),
            Some((mla, mlo, xla, xlo)) => (mla.min(a), mlo.min(c), xla.max(b), xlo.max(d)),
        })
    })
}

/// SHA-256 over every field of `rows`, in order, each length-prefixed (hex).
pub fn rows_hash(rows: &[FleetRow]) -> String {
    let mut h = Sha256::new();
    let mut s = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    // The table version first: a new version (new columns) rewrites every day once.
    s(&super::TABLE_VERSION.to_le_bytes());
    for r in rows {
        s(r.station.as_bytes());
        s(r.store_id.as_bytes());
        s(&r.segment_id.to_le_bytes());
        s(r.officer.as_bytes());
        s(r.device.as_bytes());
        s(&r.start_us.to_le_bytes());
        s(&r.end_us.to_le_bytes());
        s(&r.bytes.to_le_bytes());
        s(r.sha256.as_bytes());
        for list in [&r.categories, &r.cases, &r.tags, &r.holds] {
            s(&(list.len() as u64).to_le_bytes());
            for v in list {
                s(v.as_bytes());
            }
        }
        s(r.tier.as_bytes());
        s(r.cloud_key.as_deref().unwrap_or("\0").as_bytes());
        s(&[u8::from(r.deleted)]);
        s(&(r.track.len() as u64).to_le_bytes());
        for f in &r.track {
            s(&f.time_us.to_le_bytes());
            s(&f.lat_e7.to_le_bytes());
            s(&f.lon_e7.to_le_bytes());
        }
    }
    crate::util::hex(&h.finalize())
}
