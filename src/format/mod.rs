//! Pure encoding and decoding of every on-disk structure (no I/O), as specified byte by byte
//! in docs/FORMAT.md. Everything is little-endian.
//!
//! Invariants:
//! - every structure starts with a magic and a format version and is covered by a CRC32;
//!   decoders check magic, version and CRC before trusting any other field, and refuse
//!   unknown versions with [`DecodeError::UnsupportedVersion`];
//! - decoders never panic and never allocate more than the input could justify: every length
//!   is checked against the bytes actually present.

mod bytes;
pub mod change;
pub mod chunk;
pub mod cloud;
pub mod cloud_crc;
pub mod commit;
pub mod record;
pub mod restore;
pub mod scrub;
mod state_file;
pub mod upload;
pub mod volume;

pub use bytes::{Reader, Writer};

/// Why some bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("bad magic (not a {0})")]
    BadMagic(&'static str),
    #[error("{what} format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        what: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("{what} checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        what: &'static str,
        stored: u32,
        computed: u32,
    },
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

impl DecodeError {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// The block size of volumes: chunk payloads start on multiples of it so that the space of a
/// dead chunk can be freed in place with `FALLOC_FL_PUNCH_HOLE`.
pub const BLOCK: u64 = 4096;

/// Rounds `x` up to a multiple of [`BLOCK`].
pub const fn align_up(x: u64) -> u64 {
    x.div_ceil(BLOCK) * BLOCK
}

pub(crate) fn check_crc(what: &'static str, stored: u32, data: &[u8]) -> Result<(), DecodeError> {
    let computed = crc32fast::hash(data);
    if computed == stored {
        Ok(())
    } else {
        Err(DecodeError::Checksum {
            what,
            stored,
            computed,
        })
    }
}
