//! `info`: everything shown about one segment, from the catalog and its commit record, or
//! from its cloud `meta.json` when the local commit record is out of reach.
//!
//! Invariant: reads only; an answer from the cloud copy is used only for a segment the
//! catalog knows as uploaded.

use crate::error::{Error, Result};
use crate::format::change::{FLAG_EVICTED, FLAG_UPLOADED};
use crate::types::{PinnedUntil, SegmentId, TierState, Timestamp};

use super::{SegmentInfo, Store};

impl Store {
    /// The full metadata of a segment.
    pub fn info(&self, id: u64) -> Result<SegmentInfo> {
        let rec = match self.inner.load_commit(id, true) {
            Ok(rec) => rec,
            Err(e @ Error::NotFound(_)) => return Err(e),
            Err(e) => return self.info_from_cloud(id).map_err(|_| e),
        };
        let state = self.inner.state_with(id, Some(&rec))?;
        let tier = TierState::from_flags(
            state.flags & FLAG_UPLOADED != 0,
            state.flags & FLAG_EVICTED != 0,
        );
        Ok(SegmentInfo {
            id: SegmentId::from(id),
            officer: rec.meta.officer,
            device: rec.meta.device,
            start: Timestamp::from_micros(rec.meta.start_us),
            end: Timestamp::from_micros(rec.meta.end_us),
            bytes: rec.bytes,
            sha256: rec.sha256,
            categories: state.categories,
            cases: state.cases,
            tags: state.tags,
            holds: state.holds,
            gps_fixes: rec.meta.gps.len(),
            tier,
            pinned_until: state
                .pinned_until
                .filter(|t| *t > self.inner.now_us())
                .map(PinnedUntil::from_micros),
            ingested: Timestamp::from_micros(rec.committed_us),
            clock: self.inner.config.clock_name(),
        })
    }
    /// `info` of an uploaded segment whose commit record is out of reach (its disk failed):
    /// the cloud's `meta.json` holds the same facts, the catalog the current state.
    fn info_from_cloud(&self, id: u64) -> Result<SegmentInfo> {
        let flags = self.inner.catalog.read().get(id).map_or(0, |e| e.flags);
        if flags & FLAG_UPLOADED == 0 {
            return Err(Error::NotFound(id.to_string()));
        }
        let state = self
            .inner
            .catalog
            .read()
            .state(id)
            .map(|s| s.state.clone())
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let m = self.inner.tier()?.meta(id)?;
        Ok(SegmentInfo {
            id: SegmentId::from(id),
            officer: m.officer.clone(),
            device: m.device.clone(),
            start: Timestamp::from_micros(m.start_us),
            end: Timestamp::from_micros(m.end_us),
            bytes: m.bytes,
            sha256: crate::util::parse_sha256(&m.sha256).ok_or_else(|| {
                Error::Cloud(format!(
                    "segment {id}: meta.json's sha256 {:?} is not 64 hex digits",
                    m.sha256
                ))
            })?,
            categories: state.categories,
            cases: state.cases,
            tags: state.tags,
            holds: state.holds,
            gps_fixes: m.gps.len(),
            tier: TierState::from_flags(true, flags & FLAG_EVICTED != 0),
            pinned_until: state
                .pinned_until
                .filter(|t| *t > self.inner.now_us())
                .map(PinnedUntil::from_micros),
            ingested: Timestamp::from_micros(m.committed_us),
            clock: self.inner.config.clock_name(),
        })
    }
}
