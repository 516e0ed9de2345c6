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
//! - an upload is complete only once every part was read back and hashed to the segment's
//!   SHA-256 and `meta.json` was written; only then may local bytes be dropped;
//! - an upload that stopped part-way is resumed: parts already present with the right size
//!   are kept (each part is written atomically by the object store) and re-verified;
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

mod check;
pub mod local_crc;
mod restore;

pub use restore::{RESTORE_IN_FLIGHT, RESTORE_SPAN_BLOCKS};

pub use check::{error_problem, CloudProblem};

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub use crate::format::cloud::{BLOCK_SIZE, PART_SIZE};
/// Multipart upload piece size.
const UPLOAD_CHUNK: usize = 8 << 20;
const META_FORMAT: &str = "footage-segment";
const META_VERSION: u32 = 1;
/// `meta.json` version of an encrypted store's envelope ([`SealedMeta`]).
const META_VERSION_SEALED: u32 = 2;

/// The `meta.json` of an encrypted store: only what is needed to find the key is clear.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedMeta {
    format: String,
    version: u32,
    store_id: String,
    id: u64,
    encryption: String,
    key_id: String,
    /// base64 of nonce ‖ AES-256-GCM(version-1 `meta.json` body) ‖ tag.
    sealed: String,
}

/// The self-describing record of one uploaded segment (`meta.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CloudMeta {
    pub format: String,
    pub version: u32,
    pub store_id: String,
    pub id: u64,
    pub officer: String,
    pub device: String,
    pub start_us: i64,
    pub end_us: i64,
    /// RFC 3339, for people reading the bucket.
    pub start: String,
    pub end: String,
    pub bytes: u64,
    pub sha256: String,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub cases: Vec<String>,
    pub holds: Vec<String>,
    /// GPS fixes as [time_us, lat_e7, lon_e7].
    pub gps: Vec<[i64; 3]>,
    pub committed_us: i64,
    pub uploaded_us: i64,
    pub part_size: u64,
    pub block_size: u64,
    /// CRC32 of every stored block, in order (of the sealed block in an encrypted store).
    pub block_crc32: Vec<u32>,
    /// The parts hold sealed blocks and `meta.json` was sealed (not a JSON field: the
    /// envelope's version says it).
    #[serde(skip)]
    pub sealed: bool,
}

impl CloudMeta {
    fn check(&self, id: u64) -> Result<()> {
        let blocks = self.bytes.div_ceil(BLOCK_SIZE);
        if self.format != META_FORMAT
            || self.version != META_VERSION
            || self.id != id
            || self.part_size != PART_SIZE
            || self.block_size != BLOCK_SIZE
            || self.block_crc32.len() as u64 != blocks
        {
            return Err(Error::Cloud(format!(
                "meta.json of segment {id} is not a footage v{META_VERSION} record for it"
            )));
        }
        Ok(())
    }
}

/// A connection to the cloud tier.
pub struct Tier {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
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

fn cloud<E: std::fmt::Display>(what: impl std::fmt::Display) -> impl FnOnce(E) -> Error {
    move |e| Error::Cloud(format!("{what}: {e}"))
}

impl Tier {
    /// Connects to `url` (file://, az://, s3://, gs://, ...) for store `store_id` (hex).
    /// Credentials come from the usual environment variables (AZURE_*, AWS_*, GOOGLE_*).
    pub fn open(url: &str, store_id: &str) -> Result<Tier> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::Invalid(format!("cloud url {url:?} is not a URL: {e}")))?;
        let store: Arc<dyn ObjectStore> = if parsed.scheme() == "file" {
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
            let (s, prefix) = object_store::parse_url_opts(&parsed, opts)
                .map_err(cloud(format!("cloud url {url}")))?;
            Arc::new(object_store::prefix::PrefixStore::new(s, prefix))
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Cloud(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Tier {
            store,
            rt,
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

    /// Encodes a `meta.json`: as is, or sealed in an envelope in an encrypted store.
    fn encode_meta(&self, meta: &CloudMeta) -> Result<Vec<u8>> {
        let json = serde_json::to_vec_pretty(meta)
            .map_err(|e| Error::Cloud(format!("encoding meta.json: {e}")))?;
        let Some(c) = &self.crypt else {
            return Ok(json);
        };
        use base64::Engine;
        let sealed = c
            .segment(meta.id)
            .seal(crate::crypt::DOMAIN_META, 0, &[&json]);
        let env = SealedMeta {
            format: META_FORMAT.into(),
            version: META_VERSION_SEALED,
            store_id: meta.store_id.clone(),
            id: meta.id,
            encryption: crate::crypt::ALGORITHM.into(),
            key_id: c.key_id(),
            sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
        };
        serde_json::to_vec_pretty(&env)
            .map_err(|e| Error::Cloud(format!("encoding meta.json: {e}")))
    }

    /// Decodes a `meta.json` read from `path`, opening a sealed one with the store key.
    fn decode_meta(&self, data: &[u8], path: &ObjPath) -> Result<CloudMeta> {
        let invalid = |e: &dyn std::fmt::Display| Error::Cloud(format!("{path} is not valid: {e}"));
        let value: serde_json::Value = serde_json::from_slice(data).map_err(|e| invalid(&e))?;
        let version = value.get("version").and_then(|v| v.as_u64());
        if version != Some(u64::from(META_VERSION_SEALED)) {
            if self.crypt.is_some() {
                return Err(Error::Cloud(format!(
                    "{path} is not encrypted but this store is: refused (a plaintext copy in an \
                     encrypted store's bucket was not written by it)"
                )));
            }
            let meta: CloudMeta = serde_json::from_value(value).map_err(|e| invalid(&e))?;
            return Ok(meta);
        }
        let env: SealedMeta = serde_json::from_value(value).map_err(|e| invalid(&e))?;
        let Some(c) = &self.crypt else {
            return Err(Error::Cloud(format!(
                "{path} is encrypted (key id {}): give the store key with --key-file PATH or \
                 FOOTAGE_KEY",
                env.key_id
            )));
        };
        if env.encryption != crate::crypt::ALGORITHM || env.format != META_FORMAT {
            return Err(invalid(&format!(
                "unknown format {:?} or encryption {:?}",
                env.format, env.encryption
            )));
        }
        if !env.key_id.eq_ignore_ascii_case(&c.key_id()) {
            return Err(Error::Cloud(format!(
                "{path} was sealed with key id {}, this store's key has id {}",
                env.key_id,
                c.key_id()
            )));
        }
        use base64::Engine;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(env.sealed.as_bytes())
            .map_err(|e| invalid(&e))?;
        let body = c
            .segment(env.id)
            .open(crate::crypt::DOMAIN_META, 0, &sealed)
            .map_err(|t| Error::Cloud(format!("{path}: {t}")))?;
        let mut meta: CloudMeta = serde_json::from_slice(&body).map_err(|e| invalid(&e))?;
        if meta.id != env.id {
            return Err(invalid(&"the sealed body names another segment"));
        }
        meta.sealed = true;
        Ok(meta)
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

    /// Uploads segment `meta.id` (resuming a previous attempt), verifies it and writes its
    /// `meta.json`. `read` returns verified local bytes of the segment; `progress` gets bytes
    /// uploaded or skipped. In an encrypted store each 1 MiB block is sealed before upload.
    pub fn upload(
        &self,
        mut meta: CloudMeta,
        read: &mut dyn FnMut(u64, usize) -> Result<Vec<u8>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<CloudMeta> {
        let id = meta.id;
        meta.sealed = self.crypt.is_some();
        let cipher = self.crypt.as_ref().map(|c| c.segment(id));
        let parts = meta.bytes.div_ceil(PART_SIZE).max(1);
        let mut hasher = Sha256::new();
        for part in 0..parts {
            let start = part * PART_SIZE;
            let len = (meta.bytes - start).min(PART_SIZE);
            let data = read(start, len as usize)?;
            if data.len() as u64 != len {
                return Err(Error::Invalid(format!(
                    "segment {id}: short local read at {start}"
                )));
            }
            hasher.update(&data);
            let stored_len = len + Tier::stored_block(meta.sealed, 0) * len.div_ceil(BLOCK_SIZE);
            let path = self.part_path(id, part);
            let present = self
                .rt
                .block_on(self.store.head(&path))
                .is_ok_and(|m| m.size == stored_len);
            if !present {
                if crate::fail::error("cloud.put") {
                    return Err(Error::Cloud(format!("uploading {path}: injected failure")));
                }
                let data = match &cipher {
                    None => data,
                    Some(c) => {
                        let first = start / BLOCK_SIZE;
                        let mut out = Vec::with_capacity(stored_len as usize);
                        for (i, b) in data.chunks(BLOCK_SIZE as usize).enumerate() {
                            out.extend_from_slice(&c.seal(
                                crate::crypt::DOMAIN_BLOCK,
                                first + i as u64,
                                &[b],
                            ));
                        }
                        out
                    }
                };
                self.rt.block_on(async {
                    let upload = self
                        .store
                        .put_multipart(&path)
                        .await
                        .map_err(cloud(format!("starting upload of {path}")))?;
                    let mut w = WriteMultipart::new_with_chunk_size(upload, UPLOAD_CHUNK);
                    for piece in data.chunks(UPLOAD_CHUNK) {
                        w.wait_for_capacity(4)
                            .await
                            .map_err(cloud(format!("uploading {path}")))?;
                        w.write(piece);
                    }
                    w.finish()
                        .await
                        .map_err(cloud(format!("finishing upload of {path}")))?;
                    Ok::<(), Error>(())
                })?;
            }
            progress(len);
        }
        crate::fail::point("upload.after_parts");
        let local_sha = hex(&hasher.finalize());
        if local_sha != meta.sha256 {
            return Err(Error::SegmentCorrupt {
                segment: id,
                offset: 0,
                what: "local bytes do not match the SHA-256 recorded at ingest; not uploaded"
                    .into(),
            });
        }
        meta.part_size = PART_SIZE;
        meta.block_size = BLOCK_SIZE;
        // Verify what the cloud holds now, before anyone may drop the local copy; the block
        // CRCs are those of the bytes stored (a resumed upload keeps parts sealed earlier).
        meta.block_crc32 = self.verify_parts(&meta)?;
        // The list the bucket's meta.json will be checked against, durable before meta.json
        // (and so before the `Uploaded` record that eviction requires).
        if let Some(dir) = &self.crc_dir {
            local_crc::write(dir, &meta)?;
        }
        crate::fail::point("upload.after_local_crcs");
        let json = self.encode_meta(&meta)?;
        let path = self.meta_path(id);
        self.rt
            .block_on(self.store.put(&path, PutPayload::from(json)))
            .map_err(cloud(format!("writing {path}")))?;
        crate::fail::point("upload.after_meta");
        self.metas.lock().insert(id, Arc::new(meta.clone()));
        Ok(meta)
    }

    /// Reads every part back, checks the SHA-256 of the whole segment (opening every sealed
    /// block first) and returns the CRC32 of every stored block.
    fn verify_parts(&self, meta: &CloudMeta) -> Result<Vec<u32>> {
        let parts = meta.bytes.div_ceil(PART_SIZE).max(1);
        let cipher = match (&self.crypt, meta.sealed) {
            (Some(c), true) => Some(c.segment(meta.id)),
            (None, false) => None,
            _ => {
                return Err(Error::Cloud(format!(
                    "segment {}: the cloud copy's encryption does not match the store's",
                    meta.id
                )))
            }
        };
        let stored_block = Tier::stored_block(meta.sealed, BLOCK_SIZE) as usize;
        let mut hasher = Sha256::new();
        let mut crcs = Vec::with_capacity(meta.bytes.div_ceil(BLOCK_SIZE) as usize);
        let mut total = 0u64;
        for part in 0..parts {
            let path = self.part_path(meta.id, part);
            let data = self
                .rt
                .block_on(async { self.store.get(&path).await?.bytes().await })
                .map_err(cloud(format!("reading back {path}")))?;
            for b in data.chunks(stored_block) {
                let n = crcs.len() as u64;
                crcs.push(crc32fast::hash(b));
                match &cipher {
                    None => {
                        total += b.len() as u64;
                        hasher.update(b);
                    }
                    Some(c) => {
                        let plain = c.open(crate::crypt::DOMAIN_BLOCK, n, b).map_err(|t| {
                            Error::Cloud(format!(
                                "{path}: block {n}: {t}; it will be uploaded again"
                            ))
                        })?;
                        total += plain.len() as u64;
                        hasher.update(&plain);
                    }
                }
            }
        }
        if total != meta.bytes || hex(&hasher.finalize()) != meta.sha256 {
            return Err(Error::Cloud(format!(
                "the cloud copy of segment {} does not match its SHA-256; it will be uploaded again",
                meta.id
            )));
        }
        Ok(crcs)
    }

    /// Checks the whole cloud copy of a segment against its SHA-256 (`verify --cloud`).
    pub fn verify(&self, id: u64) -> Result<()> {
        let meta = self.meta(id)?;
        self.verify_parts(&meta).map(|_| ())
    }

    /// The `meta.json` of a segment (cached), checked against the block CRC32 list kept
    /// locally at upload when there is one ([`local_crc`]): a list changed in the bucket is
    /// [`Error::SegmentCorrupt`]. Every ranged read, cache fill, restore and repair starts
    /// here.
    pub fn meta(&self, id: u64) -> Result<Arc<CloudMeta>> {
        if let Some(m) = self.metas.lock().get(&id) {
            return Ok(Arc::clone(m));
        }
        let path = self.meta_path(id);
        let data = self
            .rt
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .map_err(cloud(format!("reading {path}")))?;
        let meta = self.decode_meta(&data, &path)?;
        meta.check(id)?;
        if let Some(dir) = &self.crc_dir {
            local_crc::check(dir, &meta)?;
        }
        let meta = Arc::new(meta);
        self.metas.lock().insert(id, Arc::clone(&meta));
        Ok(meta)
    }

    /// Rewrites a segment's `meta.json` with its current labels and holds, so a store rebuilt
    /// from the cloud keeps them (legal holds above all).
    pub fn update_state(&self, id: u64, state: &crate::format::change::SegmentState) -> Result<()> {
        let mut meta = (*self.meta(id)?).clone();
        meta.categories = state.categories.clone();
        meta.tags = state.tags.clone();
        meta.cases = state.cases.clone();
        meta.holds = state.holds.clone();
        let json = self.encode_meta(&meta)?;
        let path = self.meta_path(id);
        self.rt
            .block_on(self.store.put(&path, PutPayload::from(json)))
            .map_err(cloud(format!("writing {path}")))?;
        self.metas.lock().insert(id, Arc::new(meta));
        Ok(())
    }

    /// Writes the audit chain head published to the cloud (`<prefix>/<store>/audit/HEAD.json`).
    pub fn put_audit_head(&self, json: Vec<u8>) -> Result<()> {
        let path = self.root.clone().join("audit").join("HEAD.json");
        self.rt
            .block_on(self.store.put(&path, PutPayload::from(json)))
            .map_err(cloud(format!("writing {path}")))?;
        Ok(())
    }

    /// The audit chain head published to the cloud, if one was.
    pub fn get_audit_head(&self) -> Result<Option<Vec<u8>>> {
        let path = self.root.clone().join("audit").join("HEAD.json");
        match self.rt.block_on(async {
            let r = self.store.get(&path).await?;
            r.bytes().await
        }) {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::Cloud(format!("reading {path}: {e}"))),
        }
    }

    /// Reads `range` of a segment from the cloud, verifying (and, in an encrypted store,
    /// opening) every block it touches. With a read cache ([`Tier::with_cache`]) blocks it
    /// holds are read from it (checked again against `meta.json`'s CRC32) and blocks
    /// fetched from the cloud are kept in it once they passed their CRC32.
    pub fn read_range(&self, id: u64, range: Range<u64>) -> Result<Vec<u8>> {
        self.read_range_with(id, range, true)
    }

    /// [`Tier::read_range`], using the read cache only if `use_cache` (verification and
    /// repair read the cloud copy itself).
    pub fn read_range_with(&self, id: u64, range: Range<u64>, use_cache: bool) -> Result<Vec<u8>> {
        let cache = self.cache.as_ref().filter(|_| use_cache);
        let meta = self.meta(id)?;
        let end = range.end.min(meta.bytes);
        if range.start >= end {
            return Ok(Vec::new());
        }
        let cipher = self.cipher_for(&meta)?;
        // A block of `plain` bytes is stored as `plain + overhead` bytes; every block of a
        // part but the segment's last is full.
        let overhead = Tier::stored_block(meta.sealed, 0);
        let stored = BLOCK_SIZE + overhead;
        let per_part = PART_SIZE / BLOCK_SIZE;
        let plain_len = |n: u64| (meta.bytes - n * BLOCK_SIZE).min(BLOCK_SIZE);
        let first = range.start / BLOCK_SIZE;
        let last = (end - 1) / BLOCK_SIZE;
        let mut out = Vec::with_capacity((end - range.start) as usize);
        // Appends the part of plaintext block `n` (already checked) that lies in the range.
        let mut emit = |n: u64, b: &[u8]| {
            let abs = n * BLOCK_SIZE;
            let lo = range.start.max(abs) - abs;
            let hi = end.min(abs + b.len() as u64) - abs;
            out.extend_from_slice(b.get(lo as usize..hi as usize).unwrap_or_default());
        };
        // Opens stored block `n` (already CRC-checked) of an encrypted store.
        let open =
            |c: &crate::crypt::SegmentCipher, n: u64, b: &[u8], path: &dyn std::fmt::Display| {
                c.open(crate::crypt::DOMAIN_BLOCK, n, b)
                    .map_err(|t| Error::SegmentCorrupt {
                        segment: id,
                        offset: n * BLOCK_SIZE,
                        what: format!("cloud copy block {n} ({path}): {t}"),
                    })
            };
        let crc_of = |n: u64| meta.block_crc32.get(n as usize).copied();
        let mut block = first;
        while block <= last {
            if let Some(c) = cache {
                if let Some(b) = Tier::cached_block(c, &meta, cipher.as_ref(), block)? {
                    emit(block, &b);
                    block += 1;
                    continue;
                }
            }
            // Fetch the run of uncached blocks that lies in one part.
            let part = block / per_part;
            let mut run_last = block;
            while run_last < last
                && (run_last + 1) / per_part == part
                && !cache.is_some_and(|c| c.contains(id, run_last + 1))
            {
                run_last += 1;
            }
            let from = (block - part * per_part) * stored;
            let to = (run_last - part * per_part) * stored + plain_len(run_last) + overhead;
            let path = self.part_path(id, part);
            let data = self
                .rt
                .block_on(self.store.get_range(&path, from..to))
                .map_err(cloud(format!("reading {path}")))?;
            if data.len() as u64 != to - from {
                return Err(Error::Cloud(format!("{path}: short read")));
            }
            if let Some(c) = cache {
                c.missed(run_last - block + 1);
            }
            for (i, b) in data.chunks(stored as usize).enumerate() {
                let n = block + i as u64;
                if crc_of(n) != Some(crc32fast::hash(b)) {
                    return Err(Error::SegmentCorrupt {
                        segment: id,
                        offset: n * BLOCK_SIZE,
                        what: format!("cloud copy block {n} fails its CRC32 ({path})"),
                    });
                }
                if let Some(c) = cache {
                    c.put(id, n, b);
                }
                match &cipher {
                    None => emit(n, b),
                    Some(ci) => emit(n, &open(ci, n, b, &path)?),
                }
            }
            block = run_last + 1;
        }
        Ok(out)
    }

    /// Plaintext block `n` of segment `id`, verified as by [`Tier::read_range`]; shared
    /// rather than copied when the read cache holds it in memory (a reader keeps it and serves
    /// every read within the block from it).
    pub fn read_block(&self, id: u64, n: u64) -> Result<Bytes> {
        if let Some(c) = &self.cache {
            if let Some(b) = c.get_memory(id, n) {
                return Ok(b);
            }
            let meta = self.meta(id)?;
            let cipher = self.cipher_for(&meta)?;
            if let Some(b) = Tier::cached_block(c, &meta, cipher.as_ref(), n)? {
                return Ok(b); // read from its file and checked: no copy
            }
        }
        let start = n.saturating_mul(BLOCK_SIZE);
        let v = self.read_range_with(id, start..start.saturating_add(BLOCK_SIZE), true)?;
        Ok(Bytes::from(v))
    }

    /// What opens the stored blocks of `meta`'s segment: none when they are plaintext.
    fn cipher_for(&self, meta: &CloudMeta) -> Result<Option<crate::crypt::SegmentCipher>> {
        match (meta.sealed, &self.crypt) {
            (true, Some(c)) => Ok(Some(c.segment(meta.id))),
            (false, _) => Ok(None),
            (true, None) => Err(Error::Cloud(format!(
                "segment {}: the cloud copy is encrypted and no key was given",
                meta.id
            ))),
        }
    }

    /// Plaintext block `n` of `meta`'s segment from the read cache `c`: from its memory, or
    /// from its file, checked against `meta.json`'s CRC32 (and opened with `cipher`), then
    /// kept in memory so the next reads of it are not checked again. None: not cached (or its
    /// file failed its checks and was dropped).
    fn cached_block(
        c: &crate::cache::BlockCache,
        meta: &CloudMeta,
        cipher: Option<&crate::crypt::SegmentCipher>,
        n: u64,
    ) -> Result<Option<Bytes>> {
        let id = meta.id;
        if let Some(b) = c.get_memory(id, n) {
            return Ok(Some(b));
        }
        let Some(crc) = meta.block_crc32.get(n as usize).copied() else {
            return Ok(None);
        };
        let plain_len = meta.bytes.saturating_sub(n * BLOCK_SIZE).min(BLOCK_SIZE);
        let len = (plain_len + Tier::stored_block(meta.sealed, 0)) as usize;
        let Some(stored) = c.get(id, n, len, crc) else {
            return Ok(None);
        };
        let plain = match cipher {
            None => stored,
            Some(ci) => ci
                .open(crate::crypt::DOMAIN_BLOCK, n, &stored)
                .map_err(|t| Error::SegmentCorrupt {
                    segment: id,
                    offset: n * BLOCK_SIZE,
                    what: format!("cloud copy block {n} (the read cache): {t}"),
                })?,
        };
        let plain = Bytes::from(plain);
        c.put_memory(id, n, plain.clone());
        Ok(Some(plain))
    }

    /// Whether the read cache holds the block of segment `id` at byte `pos`.
    pub fn is_cached(&self, id: u64, pos: u64) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|c| c.contains(id, pos / BLOCK_SIZE))
    }

    /// Deletes a segment's cloud copy (meta.json first, so a half-deleted copy is never
    /// taken for a whole one). Missing objects are fine.
    pub fn delete(&self, id: u64) -> Result<()> {
        self.metas.lock().remove(&id);
        if let Some(c) = &self.cache {
            c.drop_segment(id);
        }
        if crate::fail::error("cloud.delete") {
            return Err(Error::Cloud(format!(
                "deleting segment {id}: injected failure"
            )));
        }
        let dir = self.seg_dir(id);
        let meta = self.meta_path(id);
        self.rt.block_on(async {
            match self.store.delete(&meta).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::Cloud(format!("deleting {meta}: {e}"))),
            }
            let mut list = self.store.list(Some(&dir));
            let mut paths = Vec::new();
            while let Some(m) = list.next().await {
                match m {
                    Ok(m) => paths.push(m.location),
                    Err(object_store::Error::NotFound { .. }) => break,
                    Err(e) => return Err(Error::Cloud(format!("listing {dir}: {e}"))),
                }
            }
            for p in paths {
                match self.store.delete(&p).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Error::Cloud(format!("deleting {p}: {e}"))),
                }
            }
            Ok(())
        })?;
        // The list goes last: while any object remained, it still guarded them.
        if let Some(dir) = &self.crc_dir {
            local_crc::remove(dir, id)?;
        }
        Ok(())
    }

    /// Every store id with segments under this URL, and every complete segment of one store
    /// (for `recover --from-cloud`).
    pub fn list_stores(&self) -> Result<Vec<String>> {
        self.rt.block_on(async {
            let l = self
                .store
                .list_with_delimiter(None)
                .await
                .map_err(cloud(format!("listing {}", self.url)))?;
            Ok(l.common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .collect())
        })
    }

    /// The `meta.json` of every complete segment of this store.
    pub fn list_metas(&self) -> Result<Vec<CloudMeta>> {
        let dir = self.root.clone().join("segments");
        let paths: Vec<ObjPath> = self.rt.block_on(async {
            let mut list = self.store.list(Some(&dir));
            let mut out = Vec::new();
            while let Some(m) = list.next().await {
                let m = m.map_err(cloud(format!("listing {dir}")))?;
                if m.location.filename() == Some("meta.json") {
                    out.push(m.location);
                }
            }
            Ok::<_, Error>(out)
        })?;
        let mut metas = Vec::new();
        for p in paths {
            let data = self
                .rt
                .block_on(async { self.store.get(&p).await?.bytes().await })
                .map_err(cloud(format!("reading {p}")))?;
            let meta = self.decode_meta(&data, &p)?;
            meta.check(meta.id)?;
            metas.push(meta);
        }
        metas.sort_by_key(|m| m.id);
        Ok(metas)
    }
}

fn hex(b: &[u8]) -> String {
    crate::util::hex(b)
}

/// A `CloudMeta` for a segment, without the block CRCs (filled in by the upload).
#[allow(clippy::too_many_arguments)]
pub fn meta_for(
    store_id: &str,
    id: u64,
    m: &crate::meta::SegmentMeta,
    state: &crate::format::change::SegmentState,
    bytes: u64,
    sha256: &[u8; 32],
    committed_us: i64,
    uploaded_us: i64,
) -> CloudMeta {
    use crate::input::time::format_time;
    CloudMeta {
        format: META_FORMAT.into(),
        version: META_VERSION,
        store_id: store_id.into(),
        id,
        officer: m.officer.clone(),
        device: m.device.clone(),
        start_us: m.start_us,
        end_us: m.end_us,
        start: format_time(m.start_us),
        end: format_time(m.end_us),
        bytes,
        sha256: hex(sha256),
        categories: state.categories.clone(),
        tags: state.tags.clone(),
        cases: state.cases.clone(),
        holds: state.holds.clone(),
        gps: m
            .gps
            .iter()
            .map(|f| [f.time_us, i64::from(f.lat_e7), i64::from(f.lon_e7)])
            .collect(),
        committed_us,
        uploaded_us,
        part_size: PART_SIZE,
        block_size: BLOCK_SIZE,
        block_crc32: Vec::new(),
        sealed: false,
    }
}
