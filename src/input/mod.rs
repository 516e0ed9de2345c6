//! Reading what a camera or an officer hands the ingest path: times, GPS tracks, MP4 clips
//! and ingest manifests.
//!
//! Job: turn untrusted text and files into the typed values of [`crate::meta`], with error
//! messages a person can act on (file name, line number, what is wrong, how to fix it).
//!
//! Invariants:
//! - nothing here panics on input data: no `unwrap`, no unchecked indexing;
//! - every time is microseconds since the Unix epoch (UTC), years 1970..=9999;
//! - every GPS fix went through [`crate::meta::GpsFix::from_degrees`] and a returned track is
//!   sorted by time (stable);
//! - large media files are never read whole: only box headers and the `moov` box are read.

pub mod gps;
pub mod manifest;
pub mod mp4;
pub mod time;

// Re-exported for the frontends and (with `internals`) the tests.
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use gps::{parse_csv, parse_gps_file, parse_gpx};
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use manifest::{
    parse_manifest, parse_manifest_named, parse_sidecar, read_manifest, ManifestEntry,
};
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use mp4::{
    mp4_creation_time_us, mp4_duration_us, mp4_info, mp4_info_bytes, mp4_info_reader, Mp4Info,
};
#[cfg_attr(not(feature = "internals"), allow(unused_imports))]
pub use time::{format_time, parse_time, parse_time_or_unix, unix_seconds_to_us};

/// Everything that can go wrong while reading input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The content is wrong; the message names the file, the line where it applies, what is
    /// wrong and how to fix it.
    #[error("{what}")]
    Invalid { what: String },
}

impl InputError {
    /// An [`InputError::Invalid`] with the given message.
    pub fn invalid(what: impl Into<String>) -> InputError {
        InputError::Invalid { what: what.into() }
    }

    /// An [`InputError::Io`] for `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> InputError {
        InputError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// The same error with `prefix: ` put before an `Invalid` message (for example a file
    /// name and line number); I/O errors are returned unchanged.
    pub fn context(self, prefix: &str) -> InputError {
        match self {
            InputError::Invalid { what } => InputError::Invalid {
                what: format!("{prefix}: {what}"),
            },
            other => other,
        }
    }
}
