//! The bucket beyond one segment's reads and writes: the audit head copy, deleting a segment's
//! objects, and listing stores and `meta.json` records (`recover --from-cloud`).
//!
//! Invariant: a deletion removes `meta.json` first, so a half-deleted segment is never read
//! as complete.

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result};

use super::CloudMeta;
use super::{cloud, local_crc, Tier};

impl Tier {
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
            Err(e) => Err(cloud(format!("reading {path}"))(e)),
        }
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
                Err(e) => return Err(cloud(format!("deleting {meta}"))(e)),
            }
            let mut list = self.store.list(Some(&dir));
            let mut paths = Vec::new();
            while let Some(m) = list.next().await {
                match m {
                    Ok(m) => paths.push(m.location),
                    Err(object_store::Error::NotFound { .. }) => break,
                    Err(e) => return Err(cloud(format!("listing {dir}"))(e)),
                }
            }
            for p in paths {
                match self.store.delete(&p).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(cloud(format!("deleting {p}"))(e)),
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
