//! Fuzz targets: one entry point per decoder or parser that reads bytes from outside the
//! process (volumes, checkpoints, the track file, the audit log, user files, HTTP requests).
//!
//! Job: feed arbitrary bytes to the real decoding code and check what must hold for every
//! input. Used by the stable-Rust harness `tests/fuzz.rs` (seed corpora in
//! `tests/fuzz/corpus/<target>/` plus deterministic mutations) and by the cargo-fuzz crate in
//! `fuzz/` (libFuzzer, nightly only).
//!
//! Invariants every target checks (a violated one panics, which is what a fuzzer reports):
//! - no input makes the code under test panic, loop forever or allocate far more than the
//!   input justifies (counts are checked against the bytes present before allocating);
//! - a failure is the layer's typed error (`DecodeError`, `InputError`, `Error`, `ApiError`);
//! - where an encoder exists, a decoded value re-encodes to bytes that decode to the same
//!   value (for the checkpoint: encoding the decoded catalog is a fixed point);
//! - values a parser accepts satisfy the invariants its module documents (times in range,
//!   tracks sorted, byte ranges inside the segment, ...).
//!
//! Checksummed structures are tried twice: as given, and with their CRCs recomputed so that
//! mutated bytes reach the field decoders behind the checksum.

mod audit;
mod catalog;
mod input;
mod log;
mod server;

pub use audit::{audit_entry, audit_head, audit_log};
pub use catalog::{checkpoint_body, checkpoint_file, tracks};
pub use input::{gps_csv, gpx, manifest, mp4, time};
pub use log::{change, commit, record, volume_header};
pub use server::{config, find_query, policy, range, tokens};

/// A fuzz target: takes any bytes, panics only on a violated invariant.
pub type Target = fn(&[u8]);

/// Every target by name (the names of the corpus directories and of the cargo-fuzz targets).
pub const TARGETS: &[(&str, Target)] = &[
    ("record", record),
    ("commit", commit),
    ("change", change),
    ("volume_header", volume_header),
    ("checkpoint_file", checkpoint_file),
    ("checkpoint_body", checkpoint_body),
    ("tracks", tracks),
    ("audit_log", audit_log),
    ("audit_entry", audit_entry),
    ("audit_head", audit_head),
    ("gpx", gpx),
    ("gps_csv", gps_csv),
    ("manifest", manifest),
    ("mp4", mp4),
    ("time", time),
    ("policy", policy),
    ("config", config),
    ("tokens", tokens),
    ("range", range),
    ("find_query", find_query),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Input as text: targets for text formats take the bytes as (lossy) UTF-8, so that every
/// mutation reaches the parser; the exact bytes are tried too when they are valid UTF-8.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Sets the little-endian CRC32 of `data[from..to]` at `data[at..at + 4]`, if all in range.
fn fix_crc(data: &mut [u8], from: usize, to: usize, at: usize) {
    let Some(covered) = data.get(from..to) else {
        return;
    };
    let crc = crc32fast::hash(covered).to_le_bytes();
    if let Some(slot) = data.get_mut(at..at + 4) {
        slot.copy_from_slice(&crc);
    }
}
