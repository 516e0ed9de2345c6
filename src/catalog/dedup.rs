//! The idempotent-ingest index: (device, SHA-256) → segment id, in 16 bytes per segment.
//!
//! Keys are 64-bit digests of device and hash, so two different segments may share a key
//! (probability ~2^-64 per pair): a lookup returns candidates that the caller confirms against
//! the full SHA-256 in the commit record.
//!
//! Layout: a large sorted run plus a small unsorted tail (at most [`TAIL_MAX`] pairs). When the
//! tail fills it is sorted on its own and merged into the run in one backward pass, in place:
//! O(run + tail log tail) per merge, never a sort of the whole run, and the run grows by exactly
//! the tail's length, so memory stays at 16 bytes per segment (a hash map would take 2-3 times
//! that).

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

    /// Merges the tail into the sorted run (see [`merge_into`]).
    fn merge(&mut self) {
        merge_into(&mut self.sorted, &mut self.tail);
    }

    /// Merges the tail and releases spare capacity (after a log replay at open, so the index
    /// holds 16 bytes per segment and no more).
    pub fn compact(&mut self) {
        self.merge();
        self.sorted.shrink_to_fit();
        self.tail.shrink_to_fit();
    }

    /// Makes room for `n` more pairs in the sorted run without over-allocating.
    pub fn reserve_exact(&mut self, n: usize) {
        self.sorted.reserve_exact(n);
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

    /// All pairs, sorted (for checkpoints): a copy of the run with the tail merged in.
    pub fn pairs(&self) -> Vec<(u64, u64)> {
        let mut all = Vec::with_capacity(self.len());
        all.extend_from_slice(&self.sorted);
        merge_into(&mut all, &mut self.tail.clone());
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

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // called by the tests
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_bytes(&self) -> usize {
        (self.sorted.capacity() + self.tail.capacity()) * 16
    }
}

/// Merges `tail` (any order, at most a few thousand pairs) into the sorted `run` and empties
/// it: the tail is sorted, the run extended by exactly the tail's length, and both merged from
/// the back, so every pair of the run moves at most once and no second buffer is needed.
fn merge_into(run: &mut Vec<(u64, u64)>, tail: &mut Vec<(u64, u64)>) {
    if tail.is_empty() {
        return;
    }
    tail.sort_unstable();
    let old = run.len();
    let add = tail.len();
    run.reserve_exact(add);
    run.resize(old + add, (0, 0));
    // `i` counts the run's pairs not yet placed, `j` the tail's; the next slot to fill from
    // the end is `i + j - 1`, always at or above `i`, so no unplaced pair is overwritten.
    let (mut i, mut j) = (old, add);
    while j > 0 {
        let t = tail[j - 1];
        if i > 0 && run[i - 1] > t {
            run[i + j - 1] = run[i - 1];
            i -= 1;
        } else {
            run[i + j - 1] = t;
            j -= 1;
        }
    }
    tail.clear();
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
    fn merge_keeps_the_run_sorted_and_complete() {
        let mut d = DedupIndex::default();
        let mut expected = Vec::new();
        // Pseudo-random keys, with repeats, across several merges and a partial tail.
        let mut x = 0x1234_5678_9abc_def0u64;
        for id in 0..(3 * TAIL_MAX as u64 + 1234) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 5000;
            d.insert(key, id);
            expected.push((key, id));
        }
        assert!(d.sorted.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(d.sorted.len(), 3 * TAIL_MAX);
        expected.sort_unstable();
        assert_eq!(d.pairs(), expected);
        d.compact();
        assert!(d.tail.is_empty());
        assert_eq!(d.sorted, expected);
        assert_eq!(d.sorted.capacity(), expected.len());
        for &(k, id) in expected.iter().step_by(101) {
            assert!(d.candidates(k).contains(&id));
        }
    }

    #[test]
    fn same_bytes_on_other_device_has_other_key() {
        let sha = [9u8; 32];
        assert_ne!(dedup_key("AX-1", &sha), dedup_key("AX-2", &sha));
    }
}
