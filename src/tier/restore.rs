//! Whole-block reads of a cloud copy for `footage restore` (src/store/restore.rs): spans of
//! whole 1 MiB blocks inside one part, fetched with one request each and
//! [`RESTORE_IN_FLIGHT`] requests at a time on the tier's runtime, every block checked
//! against its CRC32 in `meta.json` (and opened, in an encrypted store) before a byte is
//! handed back. Ranged reads for viewers are [`Tier::read_range`]; this path only serves
//! restores, which fetch a segment front to back.
//!
//! A plain store's spans are handed on as the `Bytes` the object store returned (no copy);
//! an encrypted store's are the opened plaintext.
//!
//! Invariants: a span either comes back whole and verified or is an error naming the block
//! that failed; nothing unverified leaves this module; spans are delivered in order, however
//! many requests are in flight.

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::{cloud, CloudMeta, Tier, BLOCK_SIZE, PART_SIZE};
use crate::error::{Error, Result};

/// Blocks fetched per request by a restore (8 MiB): large enough that a request's cost is
/// small against its bytes, small enough that the requests in flight and the span being
/// written stay a few tens of MiB of memory.
pub const RESTORE_SPAN_BLOCKS: u64 = 8;

/// Requests a restore keeps in flight: the next spans are fetched and checked while this one
/// is written and hashed, and a cloud store's per-request latency is hidden behind the others.
pub const RESTORE_IN_FLIGHT: usize = 3;

impl Tier {
    /// The spans a restore of segment `id` fetches, in order: (first block, blocks), each
    /// inside one part.
    pub fn restore_spans(&self, id: u64) -> Result<Vec<(u64, u64)>> {
        let meta = self.meta(id)?;
        let blocks = meta.bytes.div_ceil(BLOCK_SIZE);
        let per_part = PART_SIZE / BLOCK_SIZE;
        let mut out = Vec::new();
        let mut b = 0;
        while b < blocks {
            let part_end = (b / per_part + 1) * per_part;
            let n = RESTORE_SPAN_BLOCKS.min(part_end - b).min(blocks - b);
            out.push((b, n));
            b += n;
        }
        Ok(out)
    }

    /// Reads `count` whole blocks of segment `id` from block `first` (all in one part) with one
    /// request, checks each against its CRC32 (and opens it in an encrypted store), and
    /// returns their plaintext.
    pub fn read_blocks(&self, id: u64, first: u64, count: u64) -> Result<Bytes> {
        let meta = self.meta(id)?;
        self.rt.block_on(self.fetch_span(&meta, id, first, count))
    }

    /// Fetches `spans` of segment `id` ([`Tier::restore_spans`]) with up to
    /// [`RESTORE_IN_FLIGHT`] requests at a time and hands each verified span to `sink` in
    /// order. Stops at the first error (returned to `sink`, which decides) or when `sink`
    /// returns false.
    pub fn fetch_spans(
        &self,
        id: u64,
        spans: Vec<(u64, u64)>,
        sink: &mut dyn FnMut(Result<Bytes>) -> bool,
    ) -> Result<()> {
        let meta = self.meta(id)?;
        let meta = &meta;
        self.rt.block_on(async {
            let mut fetches = futures::stream::iter(spans)
                .map(|(first, count)| self.fetch_span(meta, id, first, count))
                .buffered(RESTORE_IN_FLIGHT);
            while let Some(r) = fetches.next().await {
                let failed = r.is_err();
                if !sink(r) || failed {
                    break;
                }
            }
        });
        Ok(())
    }

    /// One span: the ranged get and the check of every block in it.
    async fn fetch_span(&self, meta: &CloudMeta, id: u64, first: u64, count: u64) -> Result<Bytes> {
        let blocks = meta.bytes.div_ceil(BLOCK_SIZE);
        let per_part = PART_SIZE / BLOCK_SIZE;
        let last = first + count.max(1) - 1;
        if count == 0 || last >= blocks || first / per_part != last / per_part {
            return Err(Error::Invalid(format!(
                "segment {id}: blocks {first}..={last} are not a span of one part"
            )));
        }
        let cipher = match (meta.sealed, &self.crypt) {
            (true, Some(c)) => Some(c.segment(id)),
            (false, _) => None,
            (true, None) => {
                return Err(Error::Cloud(format!(
                    "segment {id}: the cloud copy is encrypted and no key was given"
                )))
            }
        };
        let overhead = Tier::stored_block(meta.sealed, 0);
        let stored = BLOCK_SIZE + overhead;
        let plain_len = |n: u64| (meta.bytes - n * BLOCK_SIZE).min(BLOCK_SIZE);
        let part = first / per_part;
        let from = (first - part * per_part) * stored;
        let to = (last - part * per_part) * stored + plain_len(last) + overhead;
        let path = self.part_path(id, part);
        if crate::fail::error("cloud.get") {
            return Err(Error::Cloud(format!("reading {path}: injected failure")));
        }
        let data = self
            .store
            .get_range(&path, from..to)
            .await
            .map_err(cloud(format!("reading {path}")))?;
        if data.len() as u64 != to - from {
            return Err(Error::Cloud(format!("{path}: short read")));
        }
        for (i, b) in data.chunks(stored as usize).enumerate() {
            let n = first + i as u64;
            if meta.block_crc32.get(n as usize).copied() != Some(crc32fast::hash(b)) {
                return Err(Error::SegmentCorrupt {
                    segment: id,
                    offset: n * BLOCK_SIZE,
                    what: format!("cloud copy block {n} fails its CRC32 ({path})"),
                });
            }
        }
        let Some(c) = cipher else {
            // Plain: the verified bytes as they came, without a copy.
            return Ok(data);
        };
        let mut out = Vec::with_capacity((count * BLOCK_SIZE) as usize);
        for (i, b) in data.chunks(stored as usize).enumerate() {
            let n = first + i as u64;
            let plain =
                c.open(crate::crypt::DOMAIN_BLOCK, n, b)
                    .map_err(|t| Error::SegmentCorrupt {
                        segment: id,
                        offset: n * BLOCK_SIZE,
                        what: format!("cloud copy block {n} ({path}): {t}"),
                    })?;
            out.extend_from_slice(&plain);
        }
        Ok(Bytes::from(out))
    }
}
