//! The lib0 primitives that y-protocols frames are built from: unsigned
//! varints, signed varints, length-prefixed byte arrays and strings.
//!
//! Everything a client sends is read through [`Reader`], which never trusts a
//! declared length: a length or count is checked against the bytes that are
//! actually left before anything is sliced or allocated, a varint may not run
//! past ten bytes or 64 bits, and strings must be UTF-8. Running out of bytes
//! is [`ProtocolError::Truncated`]; every other defect is
//! [`ProtocolError::Malformed`]. The writers at the bottom are the mirror
//! image, used to build the frames the room sends.

use super::error::ProtocolError;

/// Client ids are 53-bit numbers (`Number.MAX_SAFE_INTEGER` in Yjs).
const MAX_CLIENT_ID_EXCLUSIVE: u64 = 1 << 53;

/// A bounds-checked cursor over one frame (or one nested byte array).
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the first byte of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// One raw byte.
    pub(crate) fn read_u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        let byte = *self
            .buf
            .get(self.pos)
            .ok_or(ProtocolError::Truncated { what })?;
        self.pos += 1;
        Ok(byte)
    }

    /// Skips `n` raw bytes (fixed-width numbers).
    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), ProtocolError> {
        if n > self.remaining() {
            return Err(ProtocolError::Truncated { what });
        }
        self.pos += n;
        Ok(())
    }

    /// An unsigned lib0 varint: seven bits per byte, least significant first,
    /// high bit set on every byte but the last. At most ten bytes, and the
    /// value must fit in 64 bits.
    pub(crate) fn read_var_u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let mut value: u64 = 0;
        for index in 0..10u32 {
            let byte = self.read_u8(what)?;
            let bits = u64::from(byte & 0x7f);
            let shift = 7 * index;
            // The tenth byte may only carry the single bit that is left.
            if index == 9 && bits > 1 {
                return Err(malformed(what, "number does not fit in 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed(what, "varint longer than ten bytes"))
    }

    /// A Yjs client id: an unsigned varint below 2^53 (Yjs ids are JavaScript
    /// safe integers). yrs asserts this in debug builds and silently folds
    /// larger ids together in release builds, so they are refused here.
    pub(crate) fn read_client_id(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let value = self.read_var_u64(what)?;
        if value >= MAX_CLIENT_ID_EXCLUSIVE {
            return Err(malformed(what, "client id does not fit in 53 bits"));
        }
        Ok(value)
    }

    /// An unsigned varint that must fit in 32 bits (clocks, counts).
    pub(crate) fn read_var_u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        let value = self.read_var_u64(what)?;
        u32::try_from(value).map_err(|_| malformed(what, "number does not fit in 32 bits"))
    }

    /// Skips a signed lib0 varint (sign in the first byte). Capped at nine
    /// bytes (62 bits of magnitude): lib0 writes at most 53 bits, and yrs's
    /// reader overflows on longer ones.
    pub(crate) fn skip_var_i64(&mut self, what: &'static str) -> Result<(), ProtocolError> {
        for _ in 0..9 {
            if self.read_u8(what)? & 0x80 == 0 {
                return Ok(());
            }
        }
        Err(malformed(what, "signed varint longer than nine bytes"))
    }

    /// A count of items that each take at least `min_item_bytes` bytes; a
    /// count the rest of the buffer cannot possibly hold is refused before
    /// anyone allocates for it.
    pub(crate) fn read_count(
        &mut self,
        what: &'static str,
        min_item_bytes: usize,
    ) -> Result<usize, ProtocolError> {
        let count = self.read_var_u64(what)?;
        let fits = usize::try_from(count)
            .ok()
            .filter(|&c| c.saturating_mul(min_item_bytes.max(1)) <= self.remaining());
        fits.ok_or(malformed(what, "count larger than the message can hold"))
    }

    /// A varint length followed by that many bytes.
    pub(crate) fn read_bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let len = self.read_var_u64(what)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= self.remaining())
            .ok_or(malformed(what, "length runs past the end of the message"))?;
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    /// A varint length followed by that many bytes of UTF-8.
    pub(crate) fn read_string(&mut self, what: &'static str) -> Result<&'a str, ProtocolError> {
        let bytes = self.read_bytes(what)?;
        std::str::from_utf8(bytes).map_err(|_| malformed(what, "text is not valid UTF-8"))
    }

    /// Succeeds only if every byte has been read.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), ProtocolError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ProtocolError::TrailingBytes { what, count }),
        }
    }
}

/// Shorthand for a [`ProtocolError::Malformed`].
pub(crate) fn malformed(what: &'static str, reason: &'static str) -> ProtocolError {
    ProtocolError::Malformed { what, reason }
}

/// Appends an unsigned lib0 varint.
pub(crate) fn write_var_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a length-prefixed byte array.
pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a length-prefixed UTF-8 string.
pub(crate) fn write_string(out: &mut Vec<u8>, text: &str) {
    write_bytes(out, text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_var_u64(&mut out, value);
        out
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let bytes = var(value);
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.read_var_u64("n").ok(), Some(value));
            assert!(reader.finish("n").is_ok());
        }
        assert_eq!(var(300), vec![0xac, 0x02]);
    }

    #[test]
    fn bad_varints_are_refused() {
        let truncated = [0x80, 0x80];
        assert_eq!(
            Reader::new(&truncated).read_var_u64("n"),
            Err(ProtocolError::Truncated { what: "n" })
        );
        let too_long = [0xff; 11];
        assert!(matches!(
            Reader::new(&too_long).read_var_u64("n"),
            Err(ProtocolError::Malformed { .. })
        ));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(Reader::new(&over).read_var_u64("n").is_err());
        let big = var(u64::from(u32::MAX) + 1);
        assert!(Reader::new(&big).read_var_u32("n").is_err());
    }

    #[test]
    fn lengths_and_counts_are_checked_against_what_is_left() {
        let mut absurd = var(u64::MAX / 2);
        absurd.extend_from_slice(b"abc");
        assert!(Reader::new(&absurd).read_bytes("b").is_err());
        assert!(Reader::new(&absurd).read_count("c", 1).is_err());
        let mut ok = var(3);
        ok.extend_from_slice(b"abc");
        assert_eq!(Reader::new(&ok).read_string("s"), Ok("abc"));
        let mut bad_utf8 = var(2);
        bad_utf8.extend_from_slice(&[0xc3, 0x28]);
        assert!(Reader::new(&bad_utf8).read_string("s").is_err());
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let bytes = [1, 2, 3];
        let mut reader = Reader::new(&bytes);
        assert!(reader.read_u8("x").is_ok());
        assert_eq!(
            reader.finish("x"),
            Err(ProtocolError::TrailingBytes {
                what: "x",
                count: 2
            })
        );
    }
}
