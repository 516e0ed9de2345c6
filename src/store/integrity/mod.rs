//! Integrity: is the footage still what was recorded, and what to do when it is not. `verify`
//! (the store's fsck), the SHA-256-checked reader, the per-segment check shared by verify and
//! the background scrub, repair from the verified cloud copy, the audit-log-against-catalog
//! crosscheck, and a failing data dir noticed at run time.
//!
//! Invariants:
//! - checking reads only: nothing here writes to a volume except `repair`, which rewrites a
//!   damaged chunk record in place with exactly the bytes that were committed (verified
//!   against the cloud copy's SHA-256 first);
//! - a local check never goes through the cloud, so a finding is about the local copy;
//! - the findings (corrupt segments) and the scrub's cursor persist in one file written
//!   atomically (FORMAT.md §19).

pub(super) mod check;
pub(super) mod crosscheck;
pub(super) mod lost;
pub(super) mod repair;
pub(super) mod scrub;
pub(super) mod verified;
pub(super) mod verify;
