//! Cutting output chunks on UTF-8 character boundaries.
//!
//! Output is forwarded as soon as it is read, never per line, so a read can
//! end in the middle of a multi-byte character. Holding back only that
//! unfinished tail (at most three bytes) until the next read makes every
//! chunk decodable on its own, so watchers never see a replacement character
//! where the program wrote a valid one. Invalid bytes are not held back:
//! they are forwarded as they are.

/// The bytes of one stream not yet forwarded because they may be the start
/// of a character whose remaining bytes have not been read yet.
#[derive(Debug, Default)]
pub(crate) struct Utf8Carry {
    pending: Vec<u8>,
}

impl Utf8Carry {
    /// Joins `read` to what was held back and returns what can be forwarded
    /// now; an unfinished character at the end stays held back.
    pub(crate) fn push(&mut self, read: &[u8]) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(read);
        let keep = unfinished_tail(&data);
        self.pending = data.split_off(data.len() - keep);
        data
    }

    /// Whatever is held back, at end of stream.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// How many bytes at the end of `data` begin a character that is not
/// complete yet (0 when it ends on a boundary or in invalid bytes).
fn unfinished_tail(data: &[u8]) -> usize {
    // A character is at most 4 bytes, so only the last 3 can be unfinished.
    for back in 1..=data.len().min(3) {
        let start = data.len() - back;
        let byte = data[start];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: its lead is further back
        }
        let width = match byte {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        if back >= width {
            return 0;
        }
        // Held back only if what we have so far can still become valid.
        return match std::str::from_utf8(&data[start..]) {
            Err(e) if e.error_len().is_none() => back,
            _ => 0,
        };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_character_is_joined() {
        let euro = "€".as_bytes(); // 3 bytes
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push(&[b'a', euro[0]]), b"a");
        assert_eq!(carry.push(&euro[1..2]), b"");
        assert_eq!(carry.push(&[euro[2], b'b']), "€b".as_bytes());
        assert_eq!(carry.finish(), b"");
    }

    #[test]
    fn complete_text_passes_at_once() {
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push("name? ".as_bytes()), b"name? ");
        assert_eq!(carry.push("ünï".as_bytes()), "ünï".as_bytes());
    }

    #[test]
    fn invalid_bytes_and_nul_are_not_held() {
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push(b"a\0b\xff"), b"a\0b\xff");
        assert_eq!(carry.push(b"x\xc3\x28"), b"x\xc3\x28");
        assert_eq!(carry.push(b"\xed\xa0"), b"\xed\xa0"); // a surrogate can never finish
    }

    #[test]
    fn an_unfinished_tail_is_flushed_at_the_end() {
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push(b"ok\xe2\x82"), b"ok");
        assert_eq!(carry.finish(), b"\xe2\x82");
    }
}
