//! Ranged reads of an uploaded segment, block by block, through the read cache.
//!
//! Invariant: every byte returned passed its block's CRC32 (and, in an encrypted store, its
//! AES-256-GCM tag), whether it came from the cloud or the cache; only blocks that passed are
//! cached.

use std::ops::Range;

use bytes::Bytes;
use object_store::ObjectStoreExt;

use crate::error::{Error, Result};

use super::CloudMeta;
use super::{cloud, Tier, BLOCK_SIZE, PART_SIZE};

impl Tier {
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
            tracing::debug!(segment = id, %path, bytes = to - from, "ranged read from the cloud tier");
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
                    tracing::error!(segment = id, block = n, %path, "a cloud copy block fails its CRC32");
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
}
