//! Uploading a segment: parts (resumed when present with the right size), each read back and
//! hashed to the segment's SHA-256, then `meta.json` written last.
//!
//! Invariant: an upload is complete only once every part was verified and `meta.json` was
//! written; only then may local bytes be dropped.

use std::sync::Arc;

use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::CloudMeta;
use super::{cloud, hex, local_crc, Tier, BLOCK_SIZE, PART_SIZE, UPLOAD_CHUNK};

impl Tier {
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
}
