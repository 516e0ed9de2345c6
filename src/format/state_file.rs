//! The 16-byte header shared by the small state files that are rewritten whole (the scrub
//! state, FORMAT §19, and the restore queue, §13b): magic (8 bytes), version (`u16`), reserved
//! (`u16`, 0), CRC32 (`u32`) of the whole file but the CRC field itself.
//!
//! Invariants: [`open`] checks the magic, then the CRC, then the version, before the caller
//! reads any other field; [`seal`] is the only place the CRC is written.

use super::{DecodeError, Reader, Writer};

/// Bytes of the header.
pub const HEADER_LEN: usize = 16;
/// Where the CRC sits in the header.
const CRC_AT: usize = 12;

/// A writer holding the header (CRC still zero): the caller appends the body, then [`seal`]s.
pub(crate) fn begin(magic: &[u8; 8], version: u16) -> Writer {
    let mut w = Writer::new();
    w.bytes(magic);
    w.u16(version);
    w.u16(0);
    w.u32(0); // CRC, filled in by `seal`
    w
}

/// Fills in the CRC of a file started with [`begin`].
pub(crate) fn seal(w: Writer) -> Vec<u8> {
    let mut buf = w.buf;
    let crc = crc_of(&buf);
    if let Some(field) = buf.get_mut(CRC_AT..HEADER_LEN) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
    buf
}

/// Checks the header of `data` (`what`: the file's name in errors); returns a reader at the
/// start of the body.
pub(crate) fn open<'a>(
    data: &'a [u8],
    magic: &[u8; 8],
    version: u16,
    what: &'static str,
    file: &'static str,
) -> Result<Reader<'a>, DecodeError> {
    let mut r = Reader::new(data, what);
    if r.array::<8>()? != *magic {
        return Err(DecodeError::BadMagic(file));
    }
    let found = r.u16()?;
    let _reserved = r.u16()?;
    let stored = r.u32()?;
    let computed = crc_of(data);
    if stored != computed {
        return Err(DecodeError::Checksum {
            what,
            stored,
            computed,
        });
    }
    if found != version {
        return Err(DecodeError::UnsupportedVersion {
            what,
            found: u32::from(found),
            supported: u32::from(version),
        });
    }
    Ok(r)
}

/// CRC32 of every byte but the CRC field itself.
pub(crate) fn crc_of(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data.get(..CRC_AT).unwrap_or_default());
    h.update(data.get(HEADER_LEN..).unwrap_or_default());
    h.finalize()
}
