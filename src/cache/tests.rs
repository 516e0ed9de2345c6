//! Unit tests of `cache/mod.rs` (moved out of it whole; the module is `super`).

use super::*;

fn open(dir: &Path, max: u64) -> BlockCache {
    BlockCache::open(dir, [1; 16], false, max, |_| true).unwrap()
}

fn block(n: u8) -> Vec<u8> {
    vec![n; 1000]
}

#[test]
fn least_recently_used_blocks_go_first_and_the_budget_holds() {
    let dir = tempfile::tempdir().unwrap();
    let per = (file::HEADER_LEN + 1000) as u64;
    let c = open(dir.path(), 3 * per);
    for b in 0..3 {
        c.put(1, b, &block(b as u8));
    }
    let crc0 = crc32fast::hash(&block(0));
    assert_eq!(c.get(1, 0, 1000, crc0), Some(block(0)));
    c.put(1, 3, &block(3)); // evicts block 1, the least recently used
    assert_eq!(c.blocks(), vec![(1, 2), (1, 0), (1, 3)]);
    let s = c.stats();
    assert_eq!((s.bytes, s.blocks, s.evictions, s.hits), (3 * per, 3, 1, 1));
    assert!(c.get(1, 1, 1000, crc32fast::hash(&block(1))).is_none());
    assert_eq!(c.stats().hits, 1);
    // A block bigger than the whole budget is not cached.
    c.put(2, 0, &vec![0; 4 * per as usize]);
    assert!(!c.contains(2, 0));
}

#[test]
fn a_deleted_segment_is_never_cached_again() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 20);
    c.put(1, 0, &block(1));
    c.put_memory(1, 0, Bytes::from(block(1)));
    assert_eq!(c.drop_segment(1), 1);
    c.put(1, 1, &block(2));
    c.put_memory(1, 1, Bytes::from(block(2)));
    assert!(!c.contains(1, 0) && !c.contains(1, 1));
    let s = c.stats();
    assert_eq!((s.blocks, s.memory_blocks), (0, 0), "{s:?}");
    // Other segments are cached as before.
    c.put(2, 0, &block(3));
    assert!(c.contains(2, 0));
}

#[test]
fn the_index_survives_a_reopen_and_drops_fills_and_dead_segments() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 20);
    c.put(1, 0, &block(1));
    c.put(2, 0, &block(2));
    drop(c);
    fs::write(dir.path().join("fill-1-1.tmp"), b"half").unwrap();
    fs::write(dir.path().join("README"), b"not ours").unwrap();
    let c = BlockCache::open(dir.path(), [1; 16], false, 1 << 20, |s| s == 1).unwrap();
    assert_eq!(c.blocks(), vec![(1, 0)]);
    assert!(!dir.path().join("fill-1-1.tmp").exists());
    assert!(dir.path().join("README").exists());
    assert_eq!(
        c.get(1, 0, 1000, crc32fast::hash(&block(1))),
        Some(block(1))
    );
}
