//! The restore queue file (`<root>/restore-queue`, FORMAT.md §13b): evicted segments waiting
//! to be brought back from the cloud tier by the service (asked for with `footage restore`
//! beside a running service, or queued by prefetch when a hold or a pin is placed on a
//! case), and the running totals of restores done and failed. Pure encode/decode, no I/O.
//!
//! Invariants: one header and one body covered by a CRC32; the decoder checks the magic, the
//! CRC and then the version before trusting any other field, never trusts a count the
//! remaining bytes could not hold, and refuses trailing bytes; a segment is queued at most
//! once.

use super::DecodeError;

pub const QUEUE_MAGIC: [u8; 8] = *b"FTGRSTQ\0";
pub const QUEUE_VERSION: u16 = 1;
/// Bytes before the CRC-covered body: magic, version, reserved, CRC.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
pub const QUEUE_HEADER_LEN: usize = super::state_file::HEADER_LEN;
/// Most segments queued at once (a case of 100 000 segments is far beyond a station's).
pub const MAX_QUEUED: usize = 1 << 20;
/// Bytes an entry takes at least (id, time, failures, empty actor, empty reason).
const ENTRY_MIN: usize = 8 + 8 + 4 + 2 + 2;

/// One segment waiting to be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub segment: u64,
    pub queued_us: i64,
    /// Attempts that failed so far (a corrupt cloud copy is dropped from the queue at once).
    pub failures: u32,
    /// Who asked (the restore's audit entry names them).
    pub actor: String,
    /// Why: `restore`, `prefetch:hold:<case>` or `prefetch:pin:<case>`.
    pub reason: String,
}

/// Everything in the queue file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreQueue {
    /// Restores done (segments brought back) since the store was created.
    pub done_total: u64,
    /// Restores that failed for good (dropped from the queue).
    pub failed_total: u64,
    /// Bytes brought back since the store was created.
    pub bytes_total: u64,
    pub queued: Vec<Queued>,
}

impl RestoreQueue {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = super::state_file::begin(&QUEUE_MAGIC, QUEUE_VERSION);
        w.u64(self.done_total);
        w.u64(self.failed_total);
        w.u64(self.bytes_total);
        let kept = &self.queued[..self.queued.len().min(MAX_QUEUED)];
        w.u32(kept.len() as u32);
        for q in kept {
            w.u64(q.segment);
            w.i64(q.queued_us);
            w.u32(q.failures);
            w.str16(super::scrub::truncate(&q.actor, 1024));
            w.str16(super::scrub::truncate(&q.reason, 1024));
        }
        super::state_file::seal(w)
    }

    pub fn decode(data: &[u8]) -> Result<RestoreQueue, DecodeError> {
        let mut r = super::state_file::open(
            data,
            &QUEUE_MAGIC,
            QUEUE_VERSION,
            "restore queue",
            "restore queue file",
        )?;
        let mut q = RestoreQueue {
            done_total: r.u64()?,
            failed_total: r.u64()?,
            bytes_total: r.u64()?,
            queued: Vec::new(),
        };
        let n = r.u32()? as usize;
        if n > MAX_QUEUED || n.saturating_mul(ENTRY_MIN) > r.remaining() {
            return Err(DecodeError::invalid(
                "restore queue",
                format!("{n} entries cannot fit"),
            ));
        }
        for _ in 0..n {
            let entry = Queued {
                segment: r.u64()?,
                queued_us: r.i64()?,
                failures: r.u32()?,
                actor: r.str16()?,
                reason: r.str16()?,
            };
            if q.queued.iter().any(|x| x.segment == entry.segment) {
                return Err(DecodeError::invalid(
                    "restore queue",
                    format!("segment {} is queued twice", entry.segment),
                ));
            }
            q.queued.push(entry);
        }
        r.finish()?;
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_round_trips_and_any_damage_is_refused() {
        let q = RestoreQueue {
            done_total: 3,
            failed_total: 1,
            bytes_total: 99 << 20,
            queued: vec![
                Queued {
                    segment: 7,
                    queued_us: 1_700_000_000_000_000,
                    failures: 0,
                    actor: "sgt.jones".into(),
                    reason: "restore".into(),
                },
                Queued {
                    segment: 9,
                    queued_us: 1_700_000_000_000_001,
                    failures: 2,
                    actor: "system".into(),
                    reason: "prefetch:hold:OP-1".into(),
                },
            ],
        };
        let data = q.encode();
        assert_eq!(RestoreQueue::decode(&data).unwrap(), q);
        for n in 0..data.len() {
            assert!(RestoreQueue::decode(&data[..n]).is_err(), "cut at {n}");
        }
        for i in 0..data.len() {
            let mut bad = data.clone();
            bad[i] ^= 0x10;
            assert!(RestoreQueue::decode(&bad).is_err(), "byte {i}");
        }
        let mut twice = q.clone();
        twice.queued[1].segment = 7;
        assert!(RestoreQueue::decode(&twice.encode()).is_err());
    }
}
