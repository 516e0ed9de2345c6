//! The audit log's part in recovery (FORMAT §11, "Ingest entries recovered from commit
//! records"): which unconfirmed one-sync commits were acknowledged (an `ingest` entry names
//! them), and the `ingest` entries a crash lost.
//!
//! A new segment's `ingest` entry is batched (`store::ingest::commit`): a power cut can lose
//! it after the dock was told the footage is stored. Its commit record then carries the actor
//! (`FLAG_ACTOR`), and a checkpoint makes the audit log durable before it is written, so a
//! lost entry can only belong to a commit record replayed at open: each such segment without
//! an `ingest` entry for its SHA-256 gets one again, marked `"recovered": true`, with the
//! record's actor and commit time.
//!
//! Invariants: only the audit files spanning the replayed commits' times are read (from
//! [`LOOKBACK_US`] before the oldest); a segment that has its entry never gets a second one;
//! an entry that cannot be found because the clock went back further than the look-back is
//! written again (a duplicate `ingest` entry is harmless, a missing one is not).

use std::collections::HashSet;

use crate::audit::{Action, AuditEntry, AuditLog, Durability, STORE_ACTOR};
use crate::error::Result;
use crate::util::{format_time, hex};

/// How far before the oldest commit time the audit log is read: wall-clock steps back (NTP)
/// up to this are tolerated.
pub(crate) const LOOKBACK_US: i64 = 3_600_000_000;

/// A replayed commit of a new segment whose record names its actor.
pub(crate) struct Ingested {
    pub segment: u64,
    pub sha256: [u8; 32],
    pub bytes: u64,
    pub committed_us: i64,
    pub officer: String,
    pub device: String,
    pub actor: String,
}

/// The `ingest` entries (segment, SHA-256 in hex) recorded since `since_us`.
fn ingest_entries(audit: &AuditLog, since_us: i64) -> Result<HashSet<(u64, String)>> {
    let entries: Vec<AuditEntry> = crate::audit::recent_entries(
        &audit.dir,
        audit.written(),
        since_us.saturating_sub(LOOKBACK_US),
    )?;
    Ok(entries
        .into_iter()
        .filter(|e| e.action == Action::Ingest.name())
        .filter_map(|e| {
            let sha = e.details.get("sha256")?.as_str()?.to_string();
            Some((e.segment?, sha))
        })
        .collect())
}

/// The segments among `candidates` (segment, SHA-256, commit time) that the audit log says
/// were acknowledged. Reads the audit log only when there is a candidate (after a crash that
/// left one).
pub(crate) fn acknowledged(audit: &AuditLog, candidates: &[(u64, [u8; 32], i64)]) -> HashSet<u64> {
    let Some(oldest) = candidates.iter().map(|c| c.2).min() else {
        return HashSet::new();
    };
    match ingest_entries(audit, oldest) {
        Ok(found) => candidates
            .iter()
            .filter(|(id, sha, _)| found.contains(&(*id, hex(sha))))
            .map(|c| c.0)
            .collect(),
        Err(e) => {
            // Then every candidate counts as never acknowledged; `verify`'s cross-check of
            // the audit log against the catalog still names any that was.
            tracing::warn!(error = %e, "cannot read the audit log to check unconfirmed commits");
            HashSet::new()
        }
    }
}

/// Appends an `ingest` entry for each of `ingested` that the audit log lacks, and makes them
/// durable; returns their segment ids. A log that cannot be read is reported and nothing is
/// appended (`verify` then names any segment without its entry).
pub(crate) fn rewrite_lost(audit: &AuditLog, ingested: &[Ingested]) -> Result<Vec<u64>> {
    let Some(oldest) = ingested.iter().map(|i| i.committed_us).min() else {
        return Ok(Vec::new());
    };
    let found = match ingest_entries(audit, oldest) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the audit log to check the ingest entries of replayed commits");
            return Ok(Vec::new());
        }
    };
    let mut rewritten = Vec::new();
    for i in ingested {
        let sha = hex(&i.sha256);
        if found.contains(&(i.segment, sha.clone())) {
            continue;
        }
        let mut details = serde_json::json!({
            "sha256": sha,
            "bytes": i.bytes,
            "duplicate": false,
            "officer": i.officer,
            "device": i.device,
            "recovered": true,
            "committed": format_time(i.committed_us),
        });
        // An actor the log refuses (never written by this build) is kept in the details.
        let actor = match crate::audit::validate_actor(&i.actor) {
            Ok(()) => i.actor.as_str(),
            Err(_) => {
                details["actor"] = serde_json::Value::String(i.actor.clone());
                STORE_ACTOR
            }
        };
        audit.append(
            actor,
            Action::Ingest.name(),
            Some(i.segment),
            &details.to_string(),
            Durability::Batched,
        )?;
        rewritten.push(i.segment);
    }
    if !rewritten.is_empty() {
        audit.sync_to(audit.appended())?;
        tracing::warn!(
            segments = rewritten.len(),
            "ingest audit entries lost by a crash were written again from their commit records"
        );
    }
    Ok(rewritten)
}
