//! The audit log: an append-only, hash-chained record of who did what to which segment
//! (ingest, reads, exports, queries, category/tag/case/hold changes, uploads, evictions,
//! deletions, token changes), for the chain of custody of evidence.
//!
//! ```text
//! <store>/audit/audit-00000001.log   96-byte header, then entry frames (FORMAT.md §14)
//! <store>/audit/audit-00000002.log   the next file once one reaches 16 MiB
//! <store>/audit/HEAD                 the last durable chain head checkpoint (count, hash)
//! <store>/audit/torn-<seq>-<off>.bin bytes of a torn tail cut at open, kept for inspection
//! ```
//!
//! - [`Action`]: what an entry records, and the durability that follows from it;
//! - [`format`]: pure encoding of file headers, entry frames and `HEAD`;
//! - [`scan`]: walking the frames of a file, resynchronising after damage;
//! - [`files`]: naming, listing, atomic creation, `HEAD`, saved torn tails;
//! - [`open`]: finding the chain head at open, cutting a torn tail, truncation against `HEAD`;
//! - [`log`]: the live log: appends, group commit, roll-over, head checkpoints;
//! - [`verify`]: listing entries and checking the whole chain.
//!
//! Invariants:
//! - entry `i` holds the SHA-256 of entry `i - 1` and its own SHA-256 over everything else,
//!   so changing, removing or reordering any entry breaks the chain at that entry;
//! - an entry recording a change is durable before the change is acknowledged
//!   ([`Durability::Durable`]); reads and queries may be batched ([`Durability::Batched`]);
//! - bytes after the last valid entry of the newest file (a torn write) are cut at open
//!   after being saved; nothing else is ever removed or rewritten;
//! - every problem is reported with the index (and, where known, time) of the entry where
//!   the chain breaks.

mod action;
pub mod files;
pub mod format;
mod log;
mod open;
pub mod scan;
mod verify;

pub use action::Action;
#[cfg_attr(not(feature = "internals"), allow(unused_imports))] // some only for the tests
pub use log::{validate_actor, AuditLog, Chain, OpenFindings, HEAD_EVERY, MAX_FILE, STORE_ACTOR};
pub(crate) use verify::{entries, recent_entries, verify};

use serde::Serialize;

use crate::input::time::format_time;
use crate::util::hex;
use format::RawEntry;

/// The `written` mark of a log opened read-only: read every file as it is now, and the
/// newest only up to the end of its last complete, valid entry (a partial entry there is one
/// another process is still writing: "not yet", not damage).
pub const LIVE: (u32, u64) = (u32::MAX, u64::MAX);

/// When an entry must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// fsynced (shared with concurrent writers) before the call returns: for changes.
    Durable,
    /// written before the call returns and fsynced in batches by a background thread (never
    /// on the caller's thread): with the next durable entry, at once when 64 are waiting or
    /// the last fsync is a second old, every second, and when the store is closed or
    /// dropped: for reads and queries. A power cut can lose about the last second of batched
    /// entries, never a durable one.
    Batched,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Position in the chain, from 0.
    pub index: u64,
    /// When it was recorded, µs since the Unix epoch.
    pub time_us: i64,
    /// Who did it: a user name, a token's name, or the engine itself ([`crate::SYSTEM_ACTOR`]).
    pub actor: String,
    /// What was done (for example `ingest`, `read`, `hold`, `delete`).
    pub action: String,
    /// The segment it was done to, if any.
    pub segment: Option<u64>,
    /// Details of the action as JSON (for example a read's byte range).
    pub details: serde_json::Value,
    /// SHA-256 of the previous entry (zeros for the first).
    pub prev_hash: [u8; 32],
    /// SHA-256 of this entry.
    pub hash: [u8; 32],
}

impl AuditEntry {
    pub(crate) fn from_raw(e: RawEntry) -> AuditEntry {
        let details = serde_json::from_str(&e.details)
            .unwrap_or_else(|_| serde_json::Value::String(e.details.clone()));
        AuditEntry {
            index: e.index,
            time_us: e.time_us,
            actor: e.actor,
            action: e.action,
            segment: e.segment,
            details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }

    /// The entry as printed by `footage audit` (see [`AuditEntry`]'s `Serialize`), as a
    /// JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// An entry as printed, fields in this order: time as RFC 3339, segment id as a string,
/// hashes as hex.
#[derive(Serialize)]
struct Printed<'a> {
    index: u64,
    time: String,
    actor: &'a str,
    action: &'a str,
    segment: Option<String>,
    details: &'a serde_json::Value,
    prev: String,
    hash: String,
}

impl Serialize for AuditEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Printed {
            index: self.index,
            time: format_time(self.time_us),
            actor: &self.actor,
            action: &self.action,
            segment: self.segment.map(|id| id.to_string()),
            details: &self.details,
            prev: hex(&self.prev_hash),
            hash: hex(&self.hash),
        }
        .serialize(s)
    }
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// Index of the first entry that is missing, damaged or does not link.
    pub index: u64,
    /// When that entry was recorded, if it could be read.
    pub time: Option<String>,
    /// The audit file the entry is in (name inside `<store>/audit/`).
    pub file: String,
    /// Byte offset of the entry in that file.
    pub offset: u64,
    /// What is wrong with it.
    pub what: String,
}

/// A chain head: entries so far and the hash of the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditHead {
    /// Number of entries in the chain.
    pub count: u64,
    /// SHA-256 of the last entry, lower-case hex.
    pub hash: String,
    /// When it was recorded (for the `HEAD` file).
    pub time: Option<String>,
}

/// The outcome of [`crate::Store::audit_verify`].
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// No problem found: every entry is intact and linked, and the log is not shorter than
    /// `HEAD` recorded.
    pub ok: bool,
    /// Valid entries read.
    pub entries: u64,
    /// Audit files read.
    pub files: usize,
    /// The head of the chain as read.
    pub head: AuditHead,
    /// The head recorded in `HEAD`.
    pub recorded_head: Option<AuditHead>,
    /// The first problem, in chain order.
    pub first_broken: Option<BrokenLink>,
    /// Every problem found, in chain order.
    pub problems: Vec<BrokenLink>,
    /// Things worth knowing that are not problems (a torn tail cut at open, no `HEAD` yet).
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests;
