//! The block CRC32 lists of uploaded segments, kept locally (`<root>/cloud-crc/`, one file
//! per segment, [`crate::format::cloud_crc`]): whoever can write the bucket can change a
//! part and, in an unencrypted store, the CRC32s in `meta.json` along with it, so the tier
//! checks the bucket's list against the one it verified at upload before it trusts a block.
//!
//! Invariants:
//! - a segment's list is written durably (temp file, fsync, rename, directory fsync) by the
//!   upload once the SHA-256 of the bytes it sent matched the ingest SHA-256 (while the last
//!   part may still be read back: the list holds the CRC32s of the stored blocks sent, which
//!   the read-back then proves the cloud holds) and before `meta.json`, hence before the
//!   `Uploaded` record that eviction requires: no segment uploaded by this version is evicted
//!   without its list;
//! - a `meta.json` whose length, encryption or block CRC32s differ from the local list is
//!   refused ([`Error::SegmentCorrupt`]) by [`super::Tier::meta`], which every ranged read,
//!   cache fill, restore and repair goes through;
//! - no list (a segment uploaded before this version, or a store rebuilt by `recover
//!   --from-cloud`) means the bucket's `meta.json` is trusted as before; a list that fails its
//!   own checks is an error, never taken as "no list";
//! - a segment's list is removed after its cloud copy was deleted.

use std::path::{Path, PathBuf};

use super::{CloudMeta, BLOCK_SIZE};
use crate::error::{Error, Result};
use crate::format::cloud_crc::CloudCrcs;

/// Directory of the lists, in the store's root.
pub const LOCAL_CRC_DIR: &str = "cloud-crc";

/// The list file of segment `id` in `dir`.
pub fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.crc"))
}

/// Writes (replaces) the list of `meta`'s segment durably.
pub fn write(dir: &Path, meta: &CloudMeta) -> Result<()> {
    let list = CloudCrcs {
        segment: meta.id,
        bytes: meta.bytes,
        sealed: meta.sealed,
        block_crc32: meta.block_crc32.clone(),
    };
    crate::log::write_atomic(&path(dir, meta.id), &list.encode())
}

/// The list of segment `id`, if one was kept.
pub fn read(dir: &Path, id: u64) -> Result<Option<CloudCrcs>> {
    let p = path(dir, id);
    let data = match std::fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&p, e)),
    };
    let list = CloudCrcs::decode(&data).map_err(|e| Error::corruption(&p, 0, e.to_string()))?;
    if list.segment != id {
        return Err(Error::corruption(
            &p,
            0,
            format!("holds the list of segment {}, not {id}", list.segment),
        ));
    }
    Ok(Some(list))
}

/// Removes the list of segment `id` (gone already is fine).
pub fn remove(dir: &Path, id: u64) -> Result<()> {
    let p = path(dir, id);
    match crate::fsio::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// Checks the bucket's `meta` against the local list of its segment, if there is one.
pub fn check(dir: &Path, meta: &CloudMeta) -> Result<()> {
    let id = meta.id;
    let Some(local) = read(dir, id)? else {
        tracing::debug!(
            segment = id,
            "no local block CRC list (uploaded before they were kept, or recovered from the cloud): trusting meta.json"
        );
        return Ok(());
    };
    let changed = |offset: u64, what: String| Error::SegmentCorrupt {
        segment: id,
        offset,
        what: format!(
            "the cloud copy's meta.json changed since the upload: {what} (the list kept at \
             upload is {}); the cloud copy was altered and is not used",
            path(dir, id).display()
        ),
    };
    if local.bytes != meta.bytes || local.sealed != meta.sealed {
        return Err(changed(
            0,
            format!(
                "it says {} bytes{}, the upload verified {} bytes{}",
                meta.bytes,
                if meta.sealed { " (sealed)" } else { "" },
                local.bytes,
                if local.sealed { " (sealed)" } else { "" }
            ),
        ));
    }
    let differs = local
        .block_crc32
        .iter()
        .zip(&meta.block_crc32)
        .position(|(a, b)| a != b);
    if let Some(n) = differs {
        return Err(changed(
            n as u64 * BLOCK_SIZE,
            format!(
                "block {n}'s CRC32 is {:#010x} there, {:#010x} at upload",
                meta.block_crc32.get(n).copied().unwrap_or_default(),
                local.block_crc32.get(n).copied().unwrap_or_default()
            ),
        ));
    }
    if local.block_crc32.len() != meta.block_crc32.len() {
        return Err(changed(
            0,
            format!(
                "it lists {} blocks, the upload {}",
                meta.block_crc32.len(),
                local.block_crc32.len()
            ),
        ));
    }
    Ok(())
}
