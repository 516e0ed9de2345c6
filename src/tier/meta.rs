//! `meta.json`, the self-describing record of one uploaded segment ([`CloudMeta`]): its
//! fields, its encrypted envelope (version 2), and reading and updating it in the bucket.
//!
//! Invariant: a `meta.json` is used only if it is a footage record for the segment asked for,
//! its block CRCs match the list kept at upload (when there is one), and, in an encrypted
//! store, it is the sealed envelope.

use std::sync::Arc;

use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::{cloud, hex, local_crc, Tier, BLOCK_SIZE, PART_SIZE};

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
    pub(super) fn check(&self, id: u64) -> Result<()> {
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

impl Tier {
    /// Encodes a `meta.json`: as is, or sealed in an envelope in an encrypted store.
    pub(super) fn encode_meta(&self, meta: &CloudMeta) -> Result<Vec<u8>> {
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
    pub(super) fn decode_meta(&self, data: &[u8], path: &ObjPath) -> Result<CloudMeta> {
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
