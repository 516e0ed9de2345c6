//! The volume file header (offset 0) and the seal record payload.
//!
//! ```text
//! volume header, 64 bytes at offset 0:
//!  0  8  magic       b"FTGVOL\0\0"
//!  8  2  version     1
//! 10  2  reserved    0
//! 12  4  volume_id
//! 16 16  store_id    random id of the store that created the volume
//! 32  8  created_us  creation time, µs since the Unix epoch
//! 40  4  chunk_size  bytes per full chunk record (header + payload), a multiple of 4096
//! 44  8  age_day     footage age bucket: UTC day (days since the Unix epoch) of the
//!                    recordings it holds, so footage of similar age shares a volume
//! 52  8  reserved    0
//! 60  4  header_crc  CRC32 of bytes 0..60
//! ```
//! The first record header is at offset 4064; bytes 64..4064 are zero.

use super::{check_crc, DecodeError, Reader, Writer};

pub const VOLUME_MAGIC: [u8; 8] = *b"FTGVOL\0\0";
pub const VOLUME_VERSION: u16 = 1;
pub const VOLUME_HEADER_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeHeader {
    pub volume_id: u32,
    pub store_id: [u8; 16],
    pub created_us: i64,
    pub chunk_size: u32,
    pub age_day: i64,
}

impl VolumeHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&VOLUME_MAGIC);
        w.u16(VOLUME_VERSION);
        w.u16(0);
        w.u32(self.volume_id);
        w.bytes(&self.store_id);
        w.i64(self.created_us);
        w.u32(self.chunk_size);
        w.i64(self.age_day);
        w.bytes(&[0u8; 8]);
        let crc = crc32fast::hash(&w.buf);
        w.u32(crc);
        w.buf
    }

    pub fn decode(data: &[u8]) -> Result<VolumeHeader, DecodeError> {
        let data = data
            .get(..VOLUME_HEADER_LEN)
            .ok_or(DecodeError::Truncated("volume header"))?;
        let mut r = Reader::new(data, "volume header");
        if r.array::<8>()? != VOLUME_MAGIC {
            return Err(DecodeError::BadMagic("footage volume"));
        }
        let version = r.u16()?;
        let body = data
            .get(..60)
            .ok_or(DecodeError::Truncated("volume header"))?;
        let stored = u32::from_le_bytes(
            data.get(60..64)
                .and_then(|s| s.try_into().ok())
                .ok_or(DecodeError::Truncated("volume header"))?,
        );
        check_crc("volume header", stored, body)?;
        if version != VOLUME_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "volume",
                found: u32::from(version),
                supported: u32::from(VOLUME_VERSION),
            });
        }
        r.u16()?;
        let volume_id = r.u32()?;
        let store_id = r.array::<16>()?;
        let created_us = r.i64()?;
        let chunk_size = r.u32()?;
        let age_day = r.i64()?;
        Ok(VolumeHeader {
            volume_id,
            store_id,
            created_us,
            chunk_size,
            age_day,
        })
    }
}

/// Payload of a seal record: the volume is full and will never be appended to again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    pub volume_id: u32,
    pub sealed_us: i64,
}

impl Seal {
    /// Bytes of an encoded seal record's payload.
    pub const LEN: u32 = 12;

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(self.volume_id);
        w.i64(self.sealed_us);
        w.buf
    }

    pub fn decode(data: &[u8]) -> Result<Seal, DecodeError> {
        let mut r = Reader::new(data, "seal record");
        let s = Seal {
            volume_id: r.u32()?,
            sealed_us: r.i64()?,
        };
        r.finish()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_header_round_trips_and_detects_corruption() {
        let h = VolumeHeader {
            volume_id: 3,
            store_id: [7; 16],
            created_us: 123,
            chunk_size: 1 << 20,
            age_day: 20_000,
        };
        let enc = h.encode();
        assert_eq!(enc.len(), VOLUME_HEADER_LEN);
        assert_eq!(VolumeHeader::decode(&enc).unwrap(), h);
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x10;
            assert!(VolumeHeader::decode(&bad).is_err(), "byte {i}");
        }
    }
}
