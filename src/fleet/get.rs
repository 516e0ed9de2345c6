//! `fleet get STATION:ID`: a segment of any station, from its cloud copy, into a writer;
//! every 1 MiB block checked against its CRC32 (`meta.json`, as every tier read), the whole
//! against the SHA-256 the station published and `meta.json`'s; the read recorded in the
//! local store's audit log under the `fleet` actor.
//!
//! Invariants: bytes are written to the caller's writer as they are verified block by block,
//! and the call fails (the caller must discard what it got) unless the SHA-256 of all of them
//! equals the published one; a segment whose store is encrypted is refused (its key is that
//! station's), as is one with no cloud copy (ask its station).

use sha2::{Digest, Sha256};

use super::delta;
use super::{check_station, Fleet, FLEET_ACTOR};
use crate::audit::Action;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::tier::Tier;

/// Bytes fetched per request.
const STEP: u64 = 16 << 20;

/// Parses `STATION:ID` (`ID` as `footage` prints segment ids).
pub fn parse_target(s: &str) -> Result<(String, u64)> {
    let (station, id) = s
        .rsplit_once(':')
        .ok_or_else(|| Error::Invalid(format!("{s:?}: expected STATION:ID")))?;
    check_station(station)?;
    Ok((station.to_string(), crate::store::parse_id(id)?))
}

/// What [`Fleet::get`] fetched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fetched {
    pub station: String,
    pub store_id: String,
    pub segment_id: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl Fleet {
    /// Writes segment `id` of `station` to `out` from its cloud copy, verified, and records
    /// the read in `local`'s audit log (actor [`FLEET_ACTOR`]).
    pub fn get(
        &self,
        local: &Store,
        station: &str,
        id: u64,
        out: &mut dyn std::io::Write,
    ) -> Result<Fetched> {
        check_station(station)?;
        let snap = delta::snapshot(self)?;
        let mut row = None;
        for f in snap.files.values().filter(|f| f.station == station) {
            row = self
                .read_rows(f)?
                .into_iter()
                .find(|r| r.segment_id == id && !r.deleted);
            if row.is_some() {
                break;
            }
        }
        let row = row.ok_or_else(|| {
            Error::NotFound(format!(
                "segment {id} of station {station} in the fleet table"
            ))
        })?;
        if row.cloud_key.is_none() {
            return Err(Error::Invalid(format!(
                "segment {id} of station {station} has no cloud copy (tier {}): ask the station",
                row.tier
            )));
        }
        let tier = Tier::open(self.cloud_url(), &row.store_id)?;
        let meta = tier.meta(id).map_err(|e| match e {
            Error::Invalid(m) if m.contains("encrypt") => Error::Invalid(format!(
                "segment {id} of station {station} is encrypted with that station's key: fetch it through the station"
            )),
            e => e,
        })?;
        if meta.sha256 != row.sha256 || meta.bytes != row.bytes {
            return Err(Error::Invalid(format!(
                "segment {id} of station {station}: the cloud copy's meta.json (SHA-256 {}, {} bytes) \
                 differs from the published row (SHA-256 {}, {} bytes)",
                meta.sha256, meta.bytes, row.sha256, row.bytes
            )));
        }
        let mut h = Sha256::new();
        let mut pos = 0;
        while pos < meta.bytes {
            let end = (pos + STEP).min(meta.bytes);
            let chunk = tier.read_range_with(id, pos..end, false)?;
            if chunk.len() as u64 != end - pos {
                return Err(Error::Invalid(format!(
                    "segment {id} of station {station}: short read at {pos}"
                )));
            }
            h.update(&chunk);
            out.write_all(&chunk)
                .map_err(|e| Error::io(std::path::Path::new("<output>"), e))?;
            pos = end;
        }
        let sha = crate::util::hex(&h.finalize());
        if sha != row.sha256 {
            return Err(Error::Invalid(format!(
                "segment {id} of station {station}: SHA-256 of the bytes read is {sha}, published {}",
                row.sha256
            )));
        }
        let fetched = Fetched {
            station: station.to_string(),
            store_id: row.store_id,
            segment_id: id,
            bytes: meta.bytes,
            sha256: sha,
        };
        local.audit(
            FLEET_ACTOR,
            Action::Download,
            None,
            serde_json::json!({"fleet": fetched, "by": local.actor(), "table": self.table_url()}),
        )?;
        Ok(fetched)
    }
}
