//! Checking a segment's cloud copy end to end (`footage verify --cloud`): `meta.json`
//! present, decodable and describing this segment; every part present with the right size;
//! every 1 MiB block matching its CRC32 (in an encrypted store: every sealed block opening
//! with the store key); the whole copy matching the SHA-256 recorded at ingest.
//!
//! Invariant: a check only reads; it re-reads `meta.json` rather than trusting the cached
//! one, and reports every problem it finds for the segment (not only the first).

use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{CloudMeta, Tier, BLOCK_SIZE, PART_SIZE};
use crate::error::{Error, Result};

/// What was wrong with one segment's cloud copy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CloudProblem {
    /// The segment id (decimal).
    pub id: String,
    /// `missing` (no meta.json), `bad_meta`, `missing_part`, `bad_part`, `sha256`, `error`.
    pub kind: &'static str,
    /// What is wrong, in words.
    pub detail: String,
}

impl Tier {
    /// Re-reads a segment's `meta.json` (bypassing and refreshing the cache).
    pub fn fresh_meta(&self, id: u64) -> Result<std::sync::Arc<CloudMeta>> {
        self.metas.lock().remove(&id);
        self.meta(id)
    }

    /// Checks segment `id`'s cloud copy against the SHA-256 and length recorded at ingest.
    /// `progress` gets bytes read. Returns the problems found (empty: the copy is whole).
    pub fn check(
        &self,
        id: u64,
        sha256: &str,
        bytes: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Vec<CloudProblem> {
        let problem = |kind: &'static str, detail: String| CloudProblem {
            id: id.to_string(),
            kind,
            detail,
        };
        let path = self.meta_path(id);
        let raw = match self
            .rt
            .block_on(async { self.store.get(&path).await?.bytes().await })
        {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => {
                return vec![problem("missing", format!("{path} does not exist"))]
            }
            Err(e) => return vec![problem("error", format!("reading {path}: {e}"))],
        };
        self.metas.lock().remove(&id);
        // Through the same decoder as reads: an encrypted store's meta.json is sealed.
        let meta: CloudMeta = match self.decode_meta(&raw, &path) {
            Ok(m) => m,
            Err(e) => return vec![problem("bad_meta", e.to_string())],
        };
        if let Err(e) = meta.check(id) {
            return vec![problem("bad_meta", e.to_string())];
        }
        if let Some(dir) = &self.crc_dir {
            if let Err(e) = super::local_crc::check(dir, &meta) {
                return vec![problem("bad_meta", e.to_string())];
            }
        }
        if meta.sha256 != sha256 || meta.bytes != bytes {
            return vec![problem(
                "bad_meta",
                format!(
                    "{path} names SHA-256 {} and {} bytes, the store recorded {sha256} and {bytes}",
                    meta.sha256, meta.bytes
                ),
            )];
        }
        let mut out = Vec::new();
        let mut hasher = Sha256::new();
        // An encrypted store's copy holds sealed blocks: each stored block is its plaintext
        // plus the seal's overhead, its CRC32 covers the sealed bytes and the SHA-256 the
        // opened ones (as reads do).
        let cipher = match (&self.crypt, meta.sealed) {
            (Some(c), true) => Some(c.segment(id)),
            (None, false) => None,
            _ => {
                return vec![problem(
                    "bad_meta",
                    format!("{path}: the cloud copy's encryption does not match the store's"),
                )]
            }
        };
        let overhead = Tier::stored_block(meta.sealed, 0);
        let stored_block = (BLOCK_SIZE + overhead) as usize;
        let parts = meta.bytes.div_ceil(PART_SIZE).max(1);
        let mut complete = true;
        for part in 0..parts {
            let ppath = self.part_path(id, part);
            let plain = (meta.bytes - part * PART_SIZE).min(PART_SIZE);
            let want = plain + overhead * plain.div_ceil(BLOCK_SIZE);
            let got = self.rt.block_on(async {
                let mut s = self.store.get(&ppath).await?.into_stream();
                let mut buf = Vec::with_capacity(want as usize);
                while let Some(piece) = s.next().await {
                    buf.extend_from_slice(&piece?);
                }
                Ok::<_, object_store::Error>(buf)
            });
            let data = match got {
                Ok(d) => d,
                Err(object_store::Error::NotFound { .. }) => {
                    out.push(problem("missing_part", format!("{ppath} does not exist")));
                    complete = false;
                    continue;
                }
                Err(e) => {
                    out.push(problem("error", format!("reading {ppath}: {e}")));
                    complete = false;
                    continue;
                }
            };
            progress(data.len() as u64);
            if data.len() as u64 != want {
                out.push(problem(
                    "bad_part",
                    format!("{ppath} holds {} bytes, {want} expected", data.len()),
                ));
                complete = false;
                continue;
            }
            let first = part * PART_SIZE / BLOCK_SIZE;
            for (i, b) in data.chunks(stored_block).enumerate() {
                let n = first + i as u64;
                if meta.block_crc32.get(n as usize).copied() != Some(crc32fast::hash(b)) {
                    out.push(problem(
                        "bad_part",
                        format!(
                            "{ppath}: block {n} (bytes {}..) fails its CRC32",
                            n * BLOCK_SIZE
                        ),
                    ));
                    complete = false;
                    continue;
                }
                match &cipher {
                    None => hasher.update(b),
                    Some(c) => match c.open(crate::crypt::DOMAIN_BLOCK, n, b) {
                        Ok(opened) => hasher.update(&opened),
                        Err(t) => {
                            out.push(problem("bad_part", format!("{ppath}: block {n}: {t}")));
                            complete = false;
                        }
                    },
                }
            }
        }
        if complete && out.is_empty() && super::hex(&hasher.finalize()) != meta.sha256 {
            out.push(problem(
                "sha256",
                "every block passes its CRC32 but the whole copy does not match its SHA-256".into(),
            ));
        }
        out
    }
}

impl Tier {
    /// Checks the whole cloud copy of a segment end to end against its `meta.json` (every
    /// block's CRC32, every sealed block opened, the SHA-256 of the whole): [`Tier::check`]
    /// as one result.
    pub fn verify(&self, id: u64) -> Result<()> {
        let meta = self.fresh_meta(id)?;
        match self.check(id, &meta.sha256, meta.bytes, &mut |_| {}).first() {
            None => Ok(()),
            Some(p) => Err(Error::Cloud(format!(
                "the cloud copy of segment {id} does not verify ({}): {}",
                p.kind, p.detail
            ))),
        }
    }
}

/// Converts an error met before any object was read into a problem of segment `id`.
pub fn error_problem(id: u64, e: &Error) -> CloudProblem {
    CloudProblem {
        id: id.to_string(),
        kind: "error",
        detail: e.to_string(),
    }
}
