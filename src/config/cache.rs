//! The optional `[cache]` table of `footage.toml`: the read cache of evicted footage
//! (`crate::cache`).
//!
//! ```toml
//! [cache]
//! max_bytes = 10737418240   # 10 GiB; 0 turns the cache off
//! dir = "cache"             # relative paths are inside the store; default <store>/cache
//! ```
//!
//! Invariants (checked by [`CacheConfig::validate`] when the store is opened): `max_bytes`
//! is at most [`MAX_BYTES`]; `dir`, when given, is not empty and names no parent (`..`)
//! component, so a relative cache directory stays inside the store.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest `max_bytes` accepted (1 PiB): anything larger is a typo.
pub const MAX_BYTES: u64 = 1 << 50;
/// The cache directory when `dir` is absent, relative to the store.
pub const DEFAULT_DIR: &str = "cache";

/// The read cache of evicted footage (`[cache]` in footage.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes the cache files may take at most (headers included); 0: no cache.
    pub max_bytes: u64,
    /// Where the cache files go; absent: `<store>/cache`. Must be private to this store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

impl CacheConfig {
    /// Checks the table; the error says what is wrong (the caller names the file).
    pub fn validate(&self) -> Result<(), String> {
        if self.max_bytes > MAX_BYTES {
            return Err(format!(
                "cache.max_bytes {} is larger than {MAX_BYTES} (1 PiB)",
                self.max_bytes
            ));
        }
        if let Some(d) = &self.dir {
            if d.as_os_str().is_empty() {
                return Err("cache.dir is empty".into());
            }
            if d.components().any(|c| c == Component::ParentDir) {
                return Err(format!("cache.dir {} must not contain '..'", d.display()));
            }
        }
        Ok(())
    }

    /// The cache directory of the store at `root`.
    pub fn dir(&self, root: &Path) -> PathBuf {
        match &self.dir {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => root.join(d),
            None => root.join(DEFAULT_DIR),
        }
    }
}
