//! The fixed sizes of a segment's cloud copy (docs/FORMAT.md §15): a segment is stored as part
//! objects of [`PART_SIZE`] bytes, each a whole number of [`BLOCK_SIZE`] blocks, every block
//! with its CRC32 in `meta.json` (and, in an encrypted store, sealed on its own). The tier
//! writes and reads this layout; the read cache keeps whole blocks of it.
//!
//! Invariant: changing either size changes the layout of every cloud copy: a new layout
//! version, never an edit.

/// Bytes per part object.
pub const PART_SIZE: u64 = 64 << 20;
/// Bytes per CRC-checked block (a part holds a whole number of them).
pub const BLOCK_SIZE: u64 = 1 << 20;
