//! Support for benchmarks and tests that need a catalogue far larger than can be ingested
//! through the write path in reasonable time: it writes a store's catalog (checkpoint and
//! track file) for synthetic segments directly, without video. Segments of such a store can
//! be found, listed and have tracks, but their bytes are unavailable.
//!
//! Invariant: the files are produced by the same encoders the store uses, so opening the
//! result exercises the real open path.

use std::path::Path;

use crate::catalog::{checkpoint, Catalog};
use crate::config::{Config, StoreOptions};
use crate::error::{Error, Result};
use crate::format::commit::CommitRecord;
use crate::index::tracks::TrackStore;
use crate::meta::SegmentMeta;

pub use crate::store::lifecycle::change::append_v1_tag;

/// Writes a store at `root` (which must not hold one) whose catalog lists `segments`, with
/// ids 1, 2, ... in order. Returns the number of segments written.
pub fn synthesize_store(
    root: &Path,
    segments: impl IntoIterator<Item = SegmentMeta>,
) -> Result<u64> {
    if root.join(crate::config::CONFIG_FILE).exists() {
        return Err(Error::Invalid(format!(
            "{} already holds a store",
            root.display()
        )));
    }
    crate::fsio::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let config = Config::load_or_create(root, &StoreOptions::default())?;
    let store_id = config
        .store_id_bytes()
        .ok_or_else(|| Error::Invalid("bad store id".into()))?;
    let catalog_dir = root.join("catalog");
    let mut cat = Catalog::new();
    cat.index.tracks = TrackStore::open(&catalog_dir, &store_id, 0)?
        .ok_or_else(|| Error::Invalid("cannot create the track file".into()))?;
    let mut n = 0u64;
    for meta in segments {
        n += 1;
        let rec = CommitRecord {
            segment_id: n,
            lsn: n,
            committed_us: meta.end_us,
            bytes: 0,
            sha256: [0; 32],
            chunk_capacity: 0,
            meta,
            extents: Vec::new(),
            block_crcs: false,
            one_sync: false,
            durable_to: 0,
            actor: None,
        };
        cat.apply_commit(&rec, 0, 0);
    }
    cat.shrink_to_fit();
    let (off, bytes) = cat.index.tracks.pending();
    cat.index.tracks.writer()?.write(off, &bytes)?;
    let body = checkpoint::encode_body(&cat, &store_id);
    let file =
        checkpoint::encode_file(&body, 1, crate::util::now_us()).map_err(|e| Error::io(root, e))?;
    checkpoint::write(&catalog_dir, 1, &file)?;
    Ok(n)
}

/// Tests and benchmarks only: opens the store at `root`, creating it with `opts` first if the
/// directory holds none. The public API keeps the two apart ([`crate::Store::open_with`],
/// [`crate::Store::create_with`]) so that a mistyped path is refused; a test that reopens
/// the same directory many times uses this instead.
pub fn open_or_create(root: &Path, opts: &StoreOptions) -> Result<crate::Store> {
    if root.join(crate::config::CONFIG_FILE).exists() {
        crate::Store::open_with(root, opts)
    } else {
        crate::Store::create_with(root, opts)
    }
}

/// [`open_or_create`] for any path type.
pub fn open_or_create_with(root: impl AsRef<Path>, opts: &StoreOptions) -> Result<crate::Store> {
    open_or_create(root.as_ref(), opts)
}

/// [`open_or_create`] with default options.
pub fn open_or_create_default(root: impl AsRef<Path>) -> Result<crate::Store> {
    open_or_create(root.as_ref(), &StoreOptions::default())
}

/// Tests only: sends every request of `store`'s cloud tier through `wrap`, an object store
/// around the one its policy names (for example one that corrupts a byte of what it is
/// given), from now until the store is closed.
#[cfg(feature = "internals")]
pub fn wrap_cloud(
    store: &crate::Store,
    wrap: impl FnOnce(
        std::sync::Arc<dyn object_store::ObjectStore>,
    ) -> std::sync::Arc<dyn object_store::ObjectStore>,
) -> Result<()> {
    store.inner.wrap_tier(wrap)
}
