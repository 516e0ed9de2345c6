//! The idempotent-ingest index: (device, SHA-256) → segment id, in 16 bytes per segment.
//!
//! Keys are 64-bit digests of device and hash, so two different segments may share a key
//! (probability ~2^-64 per pair): a lookup returns candidates that the caller confirms against
//! the full SHA-256 in the commit record.
//!
//! Layout: a large sorted run plus a small unsorted tail, merged when the tail fills, so memory
//! stays at 16 bytes per segment (a hash map would take 2-3 times that).

/// Entries in the unsorted tail before it is merged into the sorted run.
const TAIL_MAX: usize = 4096;

#[derive(Debug, Default, Clone)]
pub struct DedupIndex {
    sorted: Vec<(u64, u64)>,
    tail: Vec<(u64, u64)>,
}

/// The index key of a segment: the first 8 bytes of its SHA-256 mixed with its device id.
pub fn dedup_key(device: &str, sha256: &[u8; 32]) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&sha256[..8]);
    let dev = u64::from(crc32fast::hash(device.as_bytes()));
    u64::from_le_bytes(prefix) ^ dev.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl DedupIndex {
    pub fn insert(&mut self, key: u64, id: u64) {
        self.tail.push((key, id));
        if self.tail.len() >= TAIL_MAX {
            self.merge();
        }
    }

    fn merge(&mut self) {
        self.sorted.append(&mut self.tail);
        self.sorted.sort_unstable();
        self.sorted.shrink_to_fit();
    }

    /// Segment ids whose key is `key` (usually none or one).
    pub fn candidates(&self, key: u64) -> Vec<u64> {
        let start = self.sorted.partition_point(|&(k, _)| k < key);
        let mut out: Vec<u64> = self.sorted[start..]
            .iter()
            .take_while(|&&(k, _)| k == key)
            .map(|&(_, id)| id)
            .collect();
        out.extend(
            self.tail
                .iter()
                .filter(|&&(k, _)| k == key)
                .map(|&(_, id)| id),
        );
        out
    }

    /// All pairs, sorted (for checkpoints).
    pub fn pairs(&self) -> Vec<(u64, u64)> {
        let mut all = self.sorted.clone();
        all.extend_from_slice(&self.tail);
        all.sort_unstable();
        all
    }

    pub fn from_pairs(mut pairs: Vec<(u64, u64)>) -> DedupIndex {
        pairs.sort_unstable();
        DedupIndex {
            sorted: pairs,
            tail: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_bytes(&self) -> usize {
        (self.sorted.capacity() + self.tail.capacity()) * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_run_and_tail() {
        let mut d = DedupIndex::default();
        for i in 0..10_000u64 {
            d.insert(i * 7919 % 10_007, i);
        }
        for i in (0..10_000u64).step_by(97) {
            assert!(d.candidates(i * 7919 % 10_007).contains(&i));
        }
        assert!(d.candidates(10_008).is_empty());
        assert_eq!(DedupIndex::from_pairs(d.pairs()).len(), 10_000);
    }

    #[test]
    fn same_bytes_on_other_device_has_other_key() {
        let sha = [9u8; 32];
        assert_ne!(dedup_key("AX-1", &sha), dedup_key("AX-2", &sha));
    }
}
