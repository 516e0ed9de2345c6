//! The cloud tier: copies of segments in object storage (Azure Blob, S3, GCS, or a local
//! directory through `file://`), through the `object_store` crate.
//!
//! ```text
//! <url prefix>/<store id>/segments/<segment id, 20 digits>/part-00000 ... (64 MiB each)
//! <url prefix>/<store id>/segments/<segment id, 20 digits>/meta.json
//! ```
//! `meta.json` (see [`CloudMeta`]) is written last: it carries the segment's metadata, its
//! SHA-256 and a CRC32 per 1 MiB block, so the bytes are self-describing (`footage recover
//! --from-cloud` rebuilds a catalog from these alone) and ranged reads are verified block by
//! block.
//!
//! Invariants:
//! - an upload is complete only once the SHA-256 of the plaintext it sent (read locally, for
//!   parts resumed) equals the one recorded at ingest, every part was read back and proven to
//!   hold exactly the stored bytes meant for it (each 1 MiB block's length and CRC32, computed
//!   from the buffers sent: `readback.rs`), and `meta.json` was written; only then may local
//!   bytes be dropped;
//! - an upload that stopped part-way is resumed: parts already present with the right size
//!   are kept (each part is written atomically by the object store) and read back against the
//!   local copy (a plain part's CRC32s; an encrypted part's blocks opened and compared, as
//!   sealing is not deterministic); a part proven wrong is deleted and sent again;
//! - every byte a ranged read returns passed its block's CRC32 (and, in an encrypted store,
//!   its AES-256-GCM tag), whether it came from the cloud or the read cache
//!   (`crate::cache`: its files are checked on every read, its memory holds plaintext that
//!   passed those checks); only blocks that passed it are put in the cache;
//! - the block CRC32s are those the upload verified: each upload keeps them locally
//!   ([`local_crc`]) before writing `meta.json`, and [`Tier::meta`] refuses a `meta.json`
//!   whose list differs (a bucket writer changed a part and its CRCs together). Segments
//!   uploaded before this was kept, and stores rebuilt by `recover --from-cloud`, have no
//!   local list and trust `meta.json`;
//! - an encrypted store's tier holds only ciphertext: every 1 MiB block of a part is sealed
//!   on its own (`crate::crypt`, domain `FTB1`, the block number as AAD position), and
//!   `meta.json` is a version-2 envelope whose body (officer, device, times, GPS, labels,
//!   CRCs) is sealed (domain `FTM1`). Such a tier refuses plaintext `meta.json` records, so a
//!   swapped-in plaintext copy is never served as the segment.
//!
//! Here: the connection (`Tier::open`, object paths); `meta.rs` (`meta.json`), `upload.rs`,
//! `readback.rs` (the upload's proof), `read.rs` (ranged reads and the cache), `objects.rs` (audit head, deletion, listings),
//! `check.rs` (checking a copy), `restore.rs` (fetching for a restore), `local_crc.rs`.

mod check;
pub mod local_crc;
mod meta;
mod objects;
mod read;
mod readback;
mod restore;
mod upload;

pub use meta::{meta_for, CloudMeta};

pub use restore::{RESTORE_IN_FLIGHT, RESTORE_SPAN_BLOCKS};

pub use check::{error_problem, CloudProblem};

use std::collections::HashMap;
use std::sync::Arc;

use object_store::path::Path as ObjPath;
use object_store::ObjectStore;
use parking_lot::Mutex;

use crate::error::{Error, Result};

pub use crate::format::cloud::{BLOCK_SIZE, PART_SIZE};
/// Multipart upload piece size.
const UPLOAD_CHUNK: usize = 8 << 20;

/// A connection to the cloud tier.
pub struct Tier {
    store: Arc<dyn ObjectStore>,
    rt: IoRuntime,
    url: String,
    root: ObjPath,
    metas: Mutex<HashMap<u64, Arc<CloudMeta>>>,
    /// The store key's context when the store is encrypted.
    crypt: Option<Arc<crate::crypt::Crypt>>,
    /// The read cache that ranged reads fill and use (`crate::cache`), if any.
    cache: Option<Arc<crate::cache::BlockCache>>,
    /// Where uploads keep each segment's block CRC32 list and `meta` checks the bucket's
    /// against it ([`local_crc`]); none: `meta.json` is trusted as it is.
    crc_dir: Option<std::path::PathBuf>,
}

/// Maps an object store's (or the runtime's) error to [`Error::CloudRequest`], keeping it as
/// the source, with `what` the request that failed.
pub(crate) fn cloud<E: std::error::Error + Send + Sync + 'static>(
    what: impl std::fmt::Display,
) -> impl FnOnce(E) -> Error {
    move |e| Error::CloudRequest {
        what: what.to_string(),
        source: Box::new(e),
    }
}
/// The object store at `url` (file://, az://, s3://, gs://, ...), its path as the root:
/// a local directory is created if missing and written with fsync. Credentials come from the
/// usual environment variables (AZURE_*, AWS_*, GOOGLE_*). The tier and the fleet table
/// (`crate::fleet`) both connect through this.
pub(crate) fn connect(url: &str) -> Result<Arc<dyn ObjectStore>> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::Invalid(format!("cloud url {url:?} is not a URL: {e}")))?;
    Ok(if parsed.scheme() == "file" {
        let dir = parsed
            .to_file_path()
            .map_err(|_| Error::Invalid(format!("cloud url {url:?} is not a local path")))?;
        crate::fsio::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(cloud(format!("cloud directory {}", dir.display())))?
                .with_fsync(true),
        )
    } else {
        let opts = std::env::vars().filter_map(|(k, v)| {
            let l = k.to_ascii_lowercase();
            (l.starts_with("azure_") || l.starts_with("aws_") || l.starts_with("google_"))
                .then_some((l, v))
        });
        let (s, prefix) =
            object_store::parse_url_opts(&parsed, opts).map_err(cloud(format!("cloud url {url}")))?;
        Arc::new(object_store::prefix::PrefixStore::new(s, prefix))
    })
}

impl Tier {
    /// Connects to `url` (file://, az://, s3://, gs://, ...) for store `store_id` (hex).
    /// Credentials come from the usual environment variables (AZURE_*, AWS_*, GOOGLE_*).
    pub fn open(url: &str, store_id: &str) -> Result<Tier> {
        let store = connect(url)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(cloud("cannot start the I/O runtime"))?;
        Ok(Tier {
            store,
            rt: IoRuntime(Some(rt)),
            url: url.to_string(),
            root: ObjPath::from(store_id),
            metas: Mutex::new(HashMap::new()),
            crypt: None,
            cache: None,
            crc_dir: None,
        })
    }
    /// Seals what is uploaded with the store key (and requires sealed records) when `crypt`
    /// is given.
    pub fn with_crypt(mut self, crypt: Option<Arc<crate::crypt::Crypt>>) -> Tier {
        self.crypt = crypt;
        self
    }
    /// Keeps blocks read by [`Tier::read_range`] in `cache` (and reads them from it).
    pub fn with_cache(mut self, cache: Option<Arc<crate::cache::BlockCache>>) -> Tier {
        self.cache = cache;
        self
    }
    /// Keeps each uploaded segment's block CRC32 list in `dir` and checks every `meta.json`
    /// read against it ([`local_crc`]).
    pub fn with_local_crcs(mut self, dir: Option<std::path::PathBuf>) -> Tier {
        self.crc_dir = dir;
        self
    }
    /// The same tier, its requests going through `wrap` (tests: an object store that
    /// corrupts what it is given or returns).
    #[cfg(feature = "internals")]
    pub fn map_object_store(
        mut self,
        wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Tier {
        self.store = wrap(self.store);
        self
    }
    /// Bytes a stored block of `plain` bytes takes in a part.
    fn stored_block(sealed: bool, plain: u64) -> u64 {
        plain
            + if sealed {
                crate::crypt::OVERHEAD as u64
            } else {
                0
            }
    }
    pub fn url(&self) -> &str {
        &self.url
    }
    fn seg_dir(&self, id: u64) -> ObjPath {
        self.root.clone().join("segments").join(format!("{id:020}"))
    }
    fn part_path(&self, id: u64, part: u64) -> ObjPath {
        self.seg_dir(id).join(format!("part-{part:05}"))
    }
    fn meta_path(&self, id: u64) -> ObjPath {
        self.seg_dir(id).join("meta.json")
    }
}

fn hex(b: &[u8]) -> String {
    crate::util::hex(b)
}

/// The tier's tokio runtime, shut down in the background when the tier goes: the last handle
/// on a store may be dropped on a thread of another runtime (the HTTP server's), where
/// dropping a runtime the ordinary way (blocking until its tasks end) panics.
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for IoRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        match &self.0 {
            Some(rt) => rt,
            // Only `drop` takes it out.
            None => unreachable!("the tier's runtime is used after the tier was dropped"),
        }
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
