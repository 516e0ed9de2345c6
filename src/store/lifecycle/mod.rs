//! Lifecycle: what happens to a committed segment after ingest. Changes (labels, cases,
//! holds), pins, tiering (upload, eviction, deletion), restore from the cloud (one segment,
//! the background queue, and the room a restore may use), compaction of mostly dead volumes,
//! evidence exports, and rebuilding a lost store from its cloud copies.
//!
//! Invariants:
//! - every change is a change record in the log, durable (and in the audit log) before it is
//!   applied to the catalog and acknowledged;
//! - local bytes are given up (evicted, punched, compacted away) only after what replaces them
//!   is durable: a verified cloud copy, or the rewritten volume;
//! - a restore writes only into a data dir that stays at or below the policy's high watermark.

pub(crate) mod change;
pub(super) mod cloud_deletes;
pub(crate) mod compact;
pub(super) mod export;
pub(super) mod pin;
pub(super) mod recover;
pub(super) mod restore;
pub(super) mod restore_queue;
pub(super) mod restore_room;
pub(super) mod tiering;
