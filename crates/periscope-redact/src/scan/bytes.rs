//! Byte classes and word ends: what the walk and every detector ask about
//! single bytes.
//!
//! [`CLASS`] drives the walk's step at each byte (skip it, start a word, look
//! closer). [`word_end`] and [`word_end_gap`] find the end of a word eight
//! bytes at a time with plain `u64` arithmetic (SWAR: no `unsafe`, no SIMD
//! intrinsics), and [`digit_mask`] gives the timestamp reader the same trick
//! for digits. The `is_*` predicates name the character sets of the formats
//! the detectors read.
//!
//! Cut here because every other file uses these and none of them knows
//! anything about an entity; the SWAR masks are checked against the byte
//! table by the tests below.

pub(super) const C_SKIP: u8 = 0;
pub(super) const C_WORD: u8 = 1;
const C_PUNCT: u8 = 2;

/// What the main loop does at each byte: skip it, start a word, or look closer.
pub(super) static CLASS: [u8; 256] = {
    let mut table = [C_SKIP; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = C_WORD;
        }
        if matches!(c, b'@' | b'=' | b':' | b'+' | b'(' | b'-') {
            table[b] = C_PUNCT;
        }
        b += 1;
    }
    table
};

pub(super) fn run_end(t: &[u8], mut i: usize, class: impl Fn(u8) -> bool) -> usize {
    while i < t.len() && class(t[i]) {
        i += 1;
    }
    i
}

/// The end of the word that starts at `i`, and whether the byte there is one
/// the main loop skips (neither a letter, a digit nor `( + - : = @`), so that
/// it can step over it at once. When the word ends within its first eight
/// bytes, both come from the same load, without reading the text again: the
/// main loop's next step then does not wait for another load.
#[inline(always)]
pub(super) fn word_end_gap(t: &[u8], i: usize) -> (usize, bool) {
    let mut from = i;
    if let Some(bytes) = t.get(i..).and_then(|rest| rest.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*bytes);
        let stop = non_alnum_mask(x);
        if stop != 0 {
            let at = stop.trailing_zeros() & !7;
            let gap = !matches!((x >> at) as u8, b'@' | b'=' | b':' | b'+' | b'(' | b'-');
            return (i + at as usize / 8, gap);
        }
        from = i + 8;
    }
    let end = word_end(t, from);
    let gap = t.get(end).is_some_and(|&b| CLASS[usize::from(b)] == C_SKIP);
    (end, gap)
}

/// The end of the word (run of ASCII letters and digits) that goes on at `i`.
// Inlined into the walk's loop, as it was when the scanner was one file:
// out of line, a call for every word longer than eight bytes.
#[inline]
pub(super) fn word_end(t: &[u8], mut i: usize) -> usize {
    // Eight bytes at a time while they are all alphanumeric (SWAR), then one by one.
    while let Some(chunk) = t.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let not_alnum = non_alnum_mask(u64::from_le_bytes(bytes));
        if not_alnum != 0 {
            return i + (not_alnum.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < t.len() && CLASS[usize::from(t[i])] == C_WORD {
        i += 1;
    }
    i
}

pub(super) const HIGH: u64 = 0x8080_8080_8080_8080;

pub(super) const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// For each byte of `x`, the high bit is set when the byte is an ASCII digit.
pub(super) fn digit_mask(x: u64) -> u64 {
    let y = x & !HIGH;
    ((y + splat(0x80 - b'0')) ^ (y + splat(0x80 - b'9' - 1))) & !x & HIGH
}

/// For each of the eight bytes of `x`, the high bit is set when the byte is
/// not an ASCII letter or digit. Range checks on 7-bit values cannot carry
/// into the next byte, so every byte is tested independently; a byte is in a
/// range when the addition for its lower bound set the high bit and the one
/// for its upper bound did not, and since the second implies the first, `^`
/// tells them apart in one operation.
fn non_alnum_mask(x: u64) -> u64 {
    let y = x & !HIGH;
    let digit = (y + splat(0x80 - b'0')) ^ (y + splat(0x80 - b'9' - 1));
    let z = y | splat(0x20);
    let letter = (z + splat(0x80 - b'a')) ^ (z + splat(0x80 - b'z' - 1));
    ((digit | letter) & !x & HIGH) ^ HIGH
}

pub(super) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

pub(super) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

pub(super) fn is_alnum_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

pub(super) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

pub(super) fn is_b64url(b: u8) -> bool {
    is_token_char(b)
}

/// RFC 7235 `token68`, what follows `Bearer ` or `Basic `.
pub(super) fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

pub(super) fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

pub(super) fn is_ipv6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

pub(super) fn is_base58(b: u8) -> bool {
    b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l')
}

pub(super) fn is_base32_upper(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

pub(super) fn is_email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

pub(super) fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$')
}

pub(super) fn is_digits(t: &[u8], from: usize, n: usize) -> bool {
    t.get(from..from + n)
        .is_some_and(|r| r.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_mask_agrees_with_the_byte_table() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[pos] = b;
                let mask = non_alnum_mask(u64::from_le_bytes(bytes));
                let expect = if b.is_ascii_alphanumeric() {
                    0
                } else {
                    0x80u64 << (8 * pos)
                };
                assert_eq!(mask, expect, "byte {b:#x} at {pos}");
            }
        }
        let text = b"abc123XYZ_def ghi\xff";
        assert_eq!(word_end(text, 0), 9);
        assert_eq!(word_end(b"abcdefghijklmnop", 0), 16);
    }
}
