//! Step 1 of a restore, the pipeline that brings a segment's bytes back: spans fetched from
//! the cloud on one thread, hashed on a second and appended as chunk records on the caller's,
//! all three overlapped.
//!
//! Invariants: every span is CRC-checked before it is appended; the SHA-256 returned covers
//! every byte appended, in order; a failure on any thread ends all three and is returned.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::SegmentWriter;

/// Step 1 of a restore: fetches the spans (a thread of their own, [`RESTORE_IN_FLIGHT`]
/// requests in flight, each span CRC-checked), hashes them on another thread and appends them
/// on this one, all three overlapped; returns the SHA-256 of every byte appended. A span is
/// handed to the hash thread before it is written, so the hash of a span runs beside its
/// write and the fetch of the next ones.
///
/// [`RESTORE_IN_FLIGHT`]: crate::tier::RESTORE_IN_FLIGHT
pub(super) fn fetch_hash_append(
    tier: &Arc<crate::tier::Tier>,
    id: u64,
    spans: Vec<(u64, u64)>,
    w: &mut SegmentWriter,
    pace: &mut dyn FnMut(u64),
) -> Result<[u8; 32]> {
    std::thread::scope(|s| -> Result<[u8; 32]> {
        // One span waits for the writer and one for the hasher: with the requests in flight,
        // the span being written and the one being hashed, a restore holds at most
        // RESTORE_IN_FLIGHT + 5 spans (8 MiB each: 64 MiB) in memory.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Bytes>>(1);
        let (hash_tx, hash_rx) = std::sync::mpsc::sync_channel::<Bytes>(1);
        let spawn_err =
            |e: std::io::Error| Error::Invalid(format!("cannot start a restore thread: {e}"));
        let fetcher = std::thread::Builder::new()
            .name("footage-restore-fetch".into())
            .spawn_scoped(s, move || {
                tier.fetch_spans(id, spans, &mut |r| tx.send(r).is_ok())
            })
            .map_err(spawn_err)?;
        let hasher = std::thread::Builder::new()
            .name("footage-restore-sha256".into())
            .spawn_scoped(s, move || {
                let mut h = Sha256::new();
                for span in hash_rx {
                    h.update(&span);
                }
                <[u8; 32]>::from(h.finalize())
            })
            .map_err(spawn_err)?;
        let mut result = Ok(());
        for span in rx.iter() {
            let step = span.and_then(|data| {
                hash_tx
                    .send(data.clone())
                    .map_err(|_| Error::Invalid("the restore hash thread stopped".into()))?;
                w.write_hashed_by_caller(&data)?;
                pace(data.len() as u64);
                Ok(())
            });
            if let Err(e) = step {
                result = Err(e);
                break; // dropping the receiver ends the fetcher
            }
        }
        drop(rx);
        drop(hash_tx);
        let fetched = fetcher
            .join()
            .map_err(|_| Error::Invalid("the restore fetch thread panicked".into()))?;
        let sha256 = hasher
            .join()
            .map_err(|_| Error::Invalid("the restore hash thread panicked".into()))?;
        result?;
        fetched?;
        Ok(sha256)
    })
}
