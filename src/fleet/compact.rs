//! Log compaction of the fleet table (Delta Lake's log compaction files,
//! `_delta_log/<x>.<y>.compacted.json`): the reconciled actions of versions x to y in one
//! object, so that a reader replays one file and the commits after y, not every commit.
//! footage writes compactions from version 0 (`0.<y>`) after every [`COMPACT_EVERY`]th
//! commit and reads the newest one that reads; an engine that does not use compactions
//! replays the commits, which all stay, and sees the same table.
//!
//! Invariants: a compaction holds the protocol, the metadata and the `add` of every live
//! file of version y, after the `remove` tombstones younger than [`TOMBSTONE_MS`] of files
//! not live, so applying it gives the same live files as applying commits 0 to y; it is
//! written whole by one put (a reader never sees a part of it); two publishers may write
//! the same compaction, and either is right; one that does not read is passed over (the
//! commits are replayed instead).

use bytes::Bytes;

use super::delta::{self, Snapshot, LOG_DIR};
use super::Fleet;
use crate::error::Result;

/// A compaction is written after each commit whose version + 1 is a multiple of this.
pub const COMPACT_EVERY: u64 = 100;
/// `remove` tombstones kept in a compaction: a week (Delta's default
/// `deletedFileRetentionDuration`), for engines that vacuum.
const TOMBSTONE_MS: i64 = 7 * 86_400_000;

fn name(y: u64) -> String {
    format!("{LOG_DIR}/{:020}.{y:020}.compacted.json", 0)
}

/// (x, y) of a compaction's file name.
pub(super) fn parse(name: &str) -> Option<(u64, u64)> {
    let (x, y) = name.strip_suffix(".compacted.json")?.split_once('.')?;
    Some((delta::version_digits(x)?, delta::version_digits(y)?))
}

/// The table at the newest compaction from version 0 among the log's `names`, if one reads
/// (an error if one could not be read: the cloud, not the compaction, failed).
pub fn newest(fleet: &Fleet, names: &[String]) -> Result<Option<Snapshot>> {
    let mut ends: Vec<u64> = names
        .iter()
        .filter_map(|n| parse(n))
        .filter(|&(x, y)| x == 0 && y > x)
        .map(|(_, y)| y)
        .collect();
    ends.sort_unstable();
    for y in ends.into_iter().rev() {
        if let Some(snap) = at(fleet, y)? {
            return Ok(Some(snap));
        }
    }
    Ok(None)
}

/// The table at the compaction of versions 0 to `y`: `None` if it is absent or does not
/// parse (passed over, with a warning), an error if the cloud could not be read.
pub fn at(fleet: &Fleet, y: u64) -> Result<Option<Snapshot>> {
    let Some(text) = fleet.read(&name(y))? else {
        return Ok(None);
    };
    let mut snap = Snapshot::default();
    match delta::apply(&mut snap, y, &text) {
        Ok(()) => Ok(Some(snap)),
        Err(e) => {
            tracing::warn!(compaction = y, error = %e, "fleet table: a log compaction does not read; replaying commits");
            Ok(None)
        }
    }
}

/// The actions of `snap` reconciled (as JSON lines): the protocol, the metadata, the
/// `remove` tombstones younger than [`TOMBSTONE_MS`] of files not live, then the `add` of
/// every live file. A compaction and a checkpoint (`checkpoint.rs`) hold these.
pub(super) fn reconciled(snap: &Snapshot, now_ms: i64) -> Vec<&str> {
    let mut out: Vec<&str> = [&snap.protocol, &snap.metadata]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    // The newest tombstone of each path (a file name can come back: it holds a hash).
    let mut seen = std::collections::HashSet::new();
    let mut tombstones: Vec<&str> = Vec::new();
    for (at, path, line) in snap.removes.iter().rev() {
        if now_ms.saturating_sub(*at) < TOMBSTONE_MS
            && !snap.adds.contains_key(path)
            && seen.insert(path)
        {
            tombstones.push(line);
        }
    }
    out.extend(tombstones.into_iter().rev());
    out.extend(snap.adds.values().map(String::as_str));
    out
}

/// Whether a compaction is due after committing `version`.
pub fn due(version: u64) -> bool {
    (version + 1).is_multiple_of(COMPACT_EVERY)
}

/// Writes the compaction of versions 0 to `snap`'s.
pub fn write(fleet: &Fleet, snap: &Snapshot, now_ms: i64) -> Result<()> {
    let Some(y) = snap.version.filter(|&y| y > 0 && !snap.foreign) else {
        return Ok(());
    };
    let mut out = String::new();
    for line in reconciled(snap, now_ms) {
        out.push_str(line);
        out.push('\n');
    }
    fleet.put(&name(y), Bytes::from(out))
}
