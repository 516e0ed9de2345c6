//! The read-back of one uploaded part: the proof, before anything counts, that the cloud holds
//! exactly the stored bytes the upload meant it to hold.
//!
//! A part is read back once, streamed (never copied whole), and every stored 1 MiB block is
//! compared with what the upload knows of it ([`Expected`]):
//! - a part this upload sent: the CRC32 and length of every stored block, computed from the
//!   very buffers that were handed to the object store (the plaintext those buffers hold, or
//!   were sealed from, went through the segment's SHA-256 in the same run);
//! - a part of a plain store found already present (an earlier attempt sent it): the CRC32s of
//!   the local bytes, which are its stored form;
//! - a part of an encrypted store found already present: sealing draws a fresh nonce per block
//!   (`crate::crypt`), so its stored bytes cannot be predicted; each block must open with the
//!   store key at its own position to exactly the local plaintext (the full check), and the
//!   CRC32s of what was read become the part's CRC list.
//!
//! Why a CRC32 per block is enough here (and no SHA-256 of the cloud's bytes): the SHA-256
//! proves the *local* bytes are those hashed at ingest; the read-back only has to prove the
//! cloud holds the same stored bytes, block by block, with the strength every later ranged read
//! relies on (`meta.block_crc32`). An encrypted block is not opened again when its CRC32
//! matches what was sealed: it is then the sealed output itself (up to a CRC32 collision), and
//! every read opens it anyway, so bytes that slipped past the CRC32 would fail their AES-GCM
//! tag at the first read and never be served. `verify --cloud` ([`super::Tier::check`]) still
//! opens every block and checks the whole SHA-256.
//!
//! Invariants: a part passes only if its length and every block match; a part proven wrong
//! (not one that merely could not be read) is deleted, with the segment's `meta.json` first,
//! so that the next attempt uploads it again instead of resuming on it.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt};

use super::{cloud, BLOCK_SIZE};
use crate::crypt::SegmentCipher;
use crate::error::{Error, Result};

/// What the read-back of one part must find.
pub(super) enum Expected {
    /// The CRC32 of every stored block, in order.
    Crcs(Vec<u32>),
    /// An encrypted part found present: its blocks must open (with `cipher`, block numbers
    /// from `first_block`) to exactly `plain`, the local plaintext of the part in pieces.
    Opens {
        cipher: Box<SegmentCipher>,
        first_block: u64,
        plain: Vec<Bytes>,
    },
}

/// One part to read back.
pub(super) struct PartCheck {
    pub path: ObjPath,
    /// The segment's `meta.json`, deleted (before the part) when the part is proven wrong.
    pub meta_path: ObjPath,
    /// Plaintext bytes in the part.
    pub plain_len: u64,
    /// Bytes a stored block has beyond its plaintext (the seal's, or 0).
    pub overhead: u64,
    pub expected: Expected,
}

impl PartCheck {
    fn stored_len(&self) -> u64 {
        self.plain_len + self.overhead * self.plain_len.div_ceil(BLOCK_SIZE)
    }
}

/// Reads part `check.path` back and returns the CRC32 of every stored block, or an error if
/// the cloud's bytes are not the expected ones (the part then deleted) or cannot be read.
pub(super) async fn read_back(store: Arc<dyn ObjectStore>, check: PartCheck) -> Result<Vec<u32>> {
    let path = check.path.clone();
    let meta_path = check.meta_path.clone();
    let unreadable = |e: &dyn std::fmt::Display| Error::Cloud(format!("reading back {path}: {e}"));
    if crate::fail::error("cloud.read_back") {
        return Err(unreadable(&"injected failure"));
    }
    let got = store.get(&path).await.map_err(cloud(format!("reading back {path}")))?;
    let want = check.stored_len();
    let mut blocks = Blocks::new(check);
    let fed = if got.meta.size != want {
        Err(Fed::Mismatch(Mismatch(format!(
            "it holds {} bytes, {want} were uploaded",
            got.meta.size
        ))))
    } else {
        match got.payload {
            // A local directory: read the file in whole blocks (the stream of a file payload
            // comes in 8 KiB pieces, one blocking task each).
            GetResultPayload::File(file, _) => {
                let (b, fed) = tokio::task::spawn_blocking(move || {
                    let fed = blocks.feed_file(file);
                    (blocks, fed)
                })
                .await
                .map_err(|e| unreadable(&e))?;
                blocks = b;
                fed
            }
            GetResultPayload::Stream(mut s) => {
                let mut fed = Ok(());
                while let Some(piece) = s.next().await {
                    let piece = piece.map_err(|e| unreadable(&e))?;
                    fed = blocks.feed(&piece).map_err(Fed::Mismatch);
                    if fed.is_err() {
                        break;
                    }
                }
                fed
            }
        }
    };
    let what = match fed.and_then(|()| blocks.finish().map_err(Fed::Mismatch)) {
        Ok(crcs) => return Ok(crcs),
        // Not proven wrong: the part stays for the next attempt to read again.
        Err(Fed::Io(e)) => return Err(unreadable(&e)),
        Err(Fed::Mismatch(Mismatch(what))) => what,
    };
    // Proven wrong: `meta.json` first (a copy is never taken for whole without a part), then
    // the part, so that the next attempt uploads it again rather than resume on it. Best
    // effort: a part left in place only fails again at the next attempt.
    let removed = match store.delete(&meta_path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => store.delete(&path).await.is_ok(),
        Err(_) => false,
    };
    tracing::error!(part = %path, what = %what, removed, "a part read back differs from what was uploaded");
    Err(Error::Cloud(format!(
        "{path} read back differs from what was uploaded: {what}; {}",
        if removed {
            "the part was deleted and will be uploaded again"
        } else {
            "it could not be deleted: delete it so that it is uploaded again"
        }
    )))
}

/// A part proven to differ from what was uploaded (what differs, in words).
struct Mismatch(String);

/// Why feeding stopped.
enum Fed {
    Mismatch(Mismatch),
    Io(std::io::Error),
}

/// Stored bytes cut into blocks as they arrive, each checked when it is whole.
struct Blocks {
    check: PartCheck,
    /// Index (in the part) of the block being filled, and its bytes so far.
    n: u64,
    filled: u64,
    crc: crc32fast::Hasher,
    /// The block's bytes, kept only when it must be opened.
    buf: Vec<u8>,
    crcs: Vec<u32>,
}

impl Blocks {
    fn new(check: PartCheck) -> Blocks {
        let opens = matches!(check.expected, Expected::Opens { .. });
        let stored_block = (BLOCK_SIZE + check.overhead) as usize;
        Blocks {
            crcs: Vec::with_capacity(check.plain_len.div_ceil(BLOCK_SIZE) as usize),
            check,
            n: 0,
            filled: 0,
            crc: crc32fast::Hasher::new(),
            buf: if opens {
                Vec::with_capacity(stored_block)
            } else {
                Vec::new()
            },
        }
    }

    /// Stored length of block `n` of the part (0 past its end).
    fn block_len(&self, n: u64) -> u64 {
        let plain = self.check.plain_len.saturating_sub(n * BLOCK_SIZE);
        if plain == 0 {
            0
        } else {
            plain.min(BLOCK_SIZE) + self.check.overhead
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> std::result::Result<(), Mismatch> {
        while !data.is_empty() {
            let len = self.block_len(self.n);
            if len == 0 {
                return Err(Mismatch("it is longer than uploaded".into()));
            }
            let take = ((len - self.filled) as usize).min(data.len());
            let (head, rest) = data.split_at(take);
            self.crc.update(head);
            if matches!(self.check.expected, Expected::Opens { .. }) {
                self.buf.extend_from_slice(head);
            }
            self.filled += take as u64;
            data = rest;
            if self.filled == len {
                self.end_block()?;
            }
        }
        Ok(())
    }

    fn feed_file(&mut self, mut file: std::fs::File) -> std::result::Result<(), Fed> {
        let mut buf = vec![0u8; (BLOCK_SIZE + self.check.overhead) as usize];
        loop {
            let len = self.block_len(self.n) as usize;
            if len == 0 {
                return Ok(());
            }
            let b = &mut buf[..len];
            file.read_exact(b).map_err(Fed::Io)?;
            self.feed(b).map_err(Fed::Mismatch)?;
        }
    }

    /// Checks the block just completed.
    fn end_block(&mut self) -> std::result::Result<(), Mismatch> {
        let n = self.n;
        let got = std::mem::take(&mut self.crc).finalize();
        match &self.check.expected {
            Expected::Crcs(want) => {
                let want = want.get(n as usize).copied();
                if want != Some(got) {
                    return Err(Mismatch(format!(
                        "block {n} of the part has CRC32 {got:#010x}, {} was uploaded",
                        want.map_or("none".into(), |w| format!("{w:#010x}"))
                    )));
                }
            }
            Expected::Opens {
                cipher,
                first_block,
                plain,
            } => {
                let opened = cipher
                    .open(crate::crypt::DOMAIN_BLOCK, first_block + n, &self.buf)
                    .map_err(|t| Mismatch(format!("block {n} of the part: {t}")))?;
                if !same_as_local(plain, n * BLOCK_SIZE, &opened) {
                    return Err(Mismatch(format!(
                        "block {n} of the part opens to other bytes than the local copy's"
                    )));
                }
                self.buf.clear();
            }
        }
        self.crcs.push(got);
        self.n += 1;
        self.filled = 0;
        Ok(())
    }

    fn finish(self) -> std::result::Result<Vec<u32>, Mismatch> {
        if self.filled != 0 || self.block_len(self.n) != 0 {
            return Err(Mismatch(format!("it ends inside block {}", self.n)));
        }
        Ok(self.crcs)
    }
}

/// Whether `bytes` equal the local plaintext (in `pieces`) from offset `at`.
fn same_as_local(pieces: &[Bytes], mut at: u64, mut bytes: &[u8]) -> bool {
    for p in pieces {
        let len = p.len() as u64;
        if at >= len {
            at -= len;
            continue;
        }
        let from = &p[at as usize..];
        let n = from.len().min(bytes.len());
        if from[..n] != bytes[..n] {
            return false;
        }
        bytes = &bytes[n..];
        at = 0;
        if bytes.is_empty() {
            return true;
        }
    }
    bytes.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(plain_len: u64, overhead: u64, expected: Expected) -> PartCheck {
        PartCheck {
            path: ObjPath::from("p"),
            meta_path: ObjPath::from("m"),
            plain_len,
            overhead,
            expected,
        }
    }

    fn stored(plain_len: u64, overhead: u64) -> Vec<u8> {
        let len = plain_len + overhead * plain_len.div_ceil(BLOCK_SIZE);
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn crcs(data: &[u8], overhead: u64) -> Vec<u32> {
        data.chunks((BLOCK_SIZE + overhead) as usize)
            .map(crc32fast::hash)
            .collect()
    }

    #[test]
    fn blocks_are_checked_whatever_the_pieces_they_arrive_in() {
        for (plain, overhead) in [(BLOCK_SIZE * 2 + 5, 0), (BLOCK_SIZE * 3, 28), (17, 28)] {
            let data = stored(plain, overhead);
            let want = crcs(&data, overhead);
            for piece in [1usize << 13, 1000, data.len()] {
                let mut b = Blocks::new(check(plain, overhead, Expected::Crcs(want.clone())));
                for p in data.chunks(piece) {
                    assert!(b.feed(p).is_ok());
                }
                assert_eq!(b.finish().ok(), Some(want.clone()));
            }
        }
    }

    #[test]
    fn a_flipped_byte_a_short_part_or_a_long_one_is_a_mismatch() {
        let plain = BLOCK_SIZE + 100;
        let data = stored(plain, 0);
        let want = crcs(&data, 0);
        let fed = |bytes: &[u8]| {
            let mut b = Blocks::new(check(plain, 0, Expected::Crcs(want.clone())));
            b.feed(bytes).and_then(|()| b.finish()).is_ok()
        };
        assert!(fed(&data));
        let mut bad = data.clone();
        bad[BLOCK_SIZE as usize + 3] ^= 1;
        assert!(!fed(&bad));
        assert!(!fed(&data[..data.len() - 1]));
        let mut long = data.clone();
        long.push(0);
        assert!(!fed(&long));
    }

    #[test]
    fn local_plaintext_is_compared_across_pieces() {
        let pieces = vec![Bytes::from_static(b"abcd"), Bytes::from_static(b"efgh")];
        assert!(same_as_local(&pieces, 0, b"abcdefgh"));
        assert!(same_as_local(&pieces, 3, b"def"));
        assert!(same_as_local(&pieces, 4, b"efgh"));
        assert!(!same_as_local(&pieces, 3, b"dxf"));
        assert!(!same_as_local(&pieces, 6, b"ghi"), "past the local bytes");
    }
}
