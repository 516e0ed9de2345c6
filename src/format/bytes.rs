//! Bounds-checked little-endian reader and writer used by every decoder and encoder.
//!
//! Invariant: [`Reader`] never panics; running out of input is a [`DecodeError::Truncated`].

use super::DecodeError;

/// Appends little-endian values to a byte vector.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// A string of at most 65,535 bytes: u16 length, then UTF-8 bytes.
    pub fn str16(&mut self, s: &str) {
        let b = s.as_bytes();
        let n = b.len().min(usize::from(u16::MAX));
        self.u16(n as u16);
        self.buf.extend_from_slice(b.get(..n).unwrap_or_default());
    }
    /// A list of short strings: u16 count, then each as [`Writer::str16`].
    pub fn str_list(&mut self, list: &[String]) {
        let n = list.len().min(usize::from(u16::MAX));
        self.u16(n as u16);
        for s in list.iter().take(n) {
            self.str16(s);
        }
    }
    /// Unsigned LEB128 varint.
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    /// Signed varint, zigzag-encoded.
    pub fn svarint(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
}

/// Reads little-endian values from a byte slice, checking bounds on every read.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the structure in errors ("commit record", "checkpoint").
    pub fn new(data: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { data, pos: 0, what }
    }
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated(self.what))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated(self.what))?;
        self.pos = end;
        Ok(s)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn str16(&mut self) -> Result<String, DecodeError> {
        let n = usize::from(self.u16()?);
        let b = self.take(n)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| DecodeError::invalid(self.what, "string is not UTF-8"))
    }
    pub fn str_list(&mut self) -> Result<Vec<String>, DecodeError> {
        let n = usize::from(self.u16()?);
        // Each string needs at least its 2-byte length: refuse counts the input cannot hold.
        if n.saturating_mul(2) > self.remaining() {
            return Err(DecodeError::Truncated(self.what));
        }
        (0..n).map(|_| self.str16()).collect()
    }
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::invalid(
            self.what,
            "varint longer than 10 bytes",
        ))
    }
    pub fn svarint(&mut self) -> Result<i64, DecodeError> {
        let u = self.varint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    /// Fails unless every byte has been consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::invalid(
                self.what,
                format!("{} unexpected trailing bytes", self.remaining()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_extremes() {
        let mut w = Writer::new();
        let vals = [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN, 1 << 40];
        for v in vals {
            w.svarint(v);
        }
        w.varint(u64::MAX);
        let mut r = Reader::new(&w.buf, "test");
        for v in vals {
            assert_eq!(r.svarint().unwrap(), v);
        }
        assert_eq!(r.varint().unwrap(), u64::MAX);
        r.finish().unwrap();
    }

    #[test]
    fn reading_past_the_end_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[1, 2, 3], "test");
        assert!(r.u64().is_err());
        let mut r = Reader::new(&[0xff; 20], "test");
        assert!(r.varint().is_err());
        let mut r = Reader::new(&[0xff, 0xff], "test");
        assert!(r.str_list().is_err());
    }
}
