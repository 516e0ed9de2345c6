//! Reading a whole segment with its SHA-256 checked on the way (`footage get --verify`,
//! exports): the hash is computed while streaming and compared with the one recorded at
//! ingest before the final bytes are handed out.
//!
//! Invariant: a [`VerifiedReader`] never returns the last bytes of a segment whose SHA-256
//! does not match: the read that would complete the segment fails instead
//! ([`Error::SegmentCorrupt`]). Every earlier byte passed its chunk CRC, but may already have
//! been handed out, so a caller that must not deliver unverified bytes at all writes to a
//! temporary file first (as `--out` and exports do).

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{hex, SegmentReader, Store};

/// A reader over a whole segment that checks its SHA-256 before handing out its end.
pub struct VerifiedReader<R = SegmentReader> {
    inner: R,
    id: u64,
    len: u64,
    pos: u64,
    expected: [u8; 32],
    hasher: Sha256,
}

impl Store {
    /// Opens a whole segment for reading with its SHA-256 checked (recorded as a `read`
    /// through an actor handle).
    pub fn open_verified(&self, id: u64) -> Result<VerifiedReader> {
        let expected = self.inner.load_commit(id, false)?.sha256;
        let r = self.reader(id)?;
        let details = serde_json::json!({ "bytes": r.len(), "verify": true });
        self.record_access(crate::audit::Action::Read, Some(id), details)?;
        let len = r.len();
        Ok(VerifiedReader::new(r, id, len, expected))
    }
}

impl<R: Read> VerifiedReader<R> {
    /// Wraps `inner`, which must yield exactly `len` bytes whose SHA-256 is `expected`.
    pub fn new(inner: R, id: u64, len: u64, expected: [u8; 32]) -> VerifiedReader<R> {
        VerifiedReader {
            inner,
            id,
            len,
            pos: 0,
            expected,
            hasher: Sha256::new(),
        }
    }

    /// Bytes this reader yields in all, whatever has been read so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it yields no byte at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The SHA-256 the bytes must have (and, once the reader has returned `Ok(0)`, have).
    pub fn sha256(&self) -> [u8; 32] {
        self.expected
    }

    fn corrupt(&self, what: String) -> io::Error {
        let e = Error::SegmentCorrupt {
            segment: self.id,
            offset: self.pos,
            what,
        };
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    /// Compares the hash of everything read with the recorded one.
    fn check(&self) -> io::Result<()> {
        let got: [u8; 32] = self.hasher.clone().finalize().into();
        if got == self.expected {
            return Ok(());
        }
        Err(self.corrupt(format!(
            "SHA-256 is {} but {} was recorded at ingest; the last bytes were withheld",
            hex(&got),
            hex(&self.expected)
        )))
    }
}

impl<R: Read> Read for VerifiedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len - self.pos;
        if left == 0 {
            return if self.len == 0 {
                self.check().map(|_| 0)
            } else {
                Ok(0)
            };
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(self.corrupt(format!("ended after {} of {} bytes", self.pos, self.len)));
        }
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        if self.pos == self.len {
            self.check()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sha_mismatch_withholds_the_last_bytes_and_names_both_hashes() {
        let data = vec![7u8; 10_000];
        let good: [u8; 32] = Sha256::digest(&data).into();
        let mut out = Vec::new();
        let mut r = VerifiedReader::new(&data[..], 9, data.len() as u64, good);
        io::copy(&mut r, &mut out).unwrap();
        assert_eq!(out, data);

        let mut bad = good;
        bad[0] ^= 1;
        let mut r = VerifiedReader::new(&data[..], 9, data.len() as u64, bad);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("a mismatch must not end cleanly"),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert!(out.len() < data.len(), "the final bytes were handed out");
        let msg = err.to_string();
        assert!(
            msg.contains("segment 9") && msg.contains(&hex(&bad)),
            "{msg}"
        );
        assert!(msg.contains(&hex(&good)), "{msg}");

        // A source that ends early is refused too.
        let mut r = VerifiedReader::new(&data[..100], 9, 200, good);
        assert!(io::copy(&mut r, &mut Vec::new()).is_err());
        // An empty segment is checked when it is read.
        let empty: [u8; 32] = Sha256::digest(b"").into();
        let mut r = VerifiedReader::new(&b""[..], 1, 0, empty);
        assert_eq!(io::copy(&mut r, &mut Vec::new()).unwrap(), 0);
        let mut r = VerifiedReader::new(&b""[..], 1, 0, good);
        assert!(io::copy(&mut r, &mut Vec::new()).is_err());
    }
}
