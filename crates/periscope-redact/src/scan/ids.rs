//! Detectors for identifiers with a shape of their own: email addresses, IPv4
//! and IPv6 addresses, MAC addresses, UUIDs, IBANs, crypto wallet addresses
//! and person names.
//!
//! Each reads one word-like value and checks it locally: an address parser,
//! a checksum ([`crate::validate`]) or the first-name dictionary. None of them
//! reads runs of digit groups (that is [`super::numbers`], which hands dotted
//! quads to [`Scanner::ipv4`]) or depends on a key name (that is
//! [`super::secrets`]).

use std::net::Ipv6Addr;

use super::Scanner;
use super::bytes::{is_alnum, is_base58, is_email_local, is_hex, is_ipv6_char, run_end};
use super::sink::Sink;
use crate::Entity;
use crate::validate;

impl Scanner {
    #[inline(never)]
    pub(super) fn email(&self, t: &[u8], at: usize, sink: &mut Sink) -> usize {
        let next = at + 1;
        if !sink.wants(Entity::Email) {
            return next;
        }
        let mut ls = at;
        while ls > 0 && at - ls < 64 && is_email_local(t[ls - 1]) {
            ls -= 1;
        }
        while ls < at && matches!(t[ls], b'.' | b'-' | b'+') {
            ls += 1;
        }
        // `ssh://git@host`: URL userinfo, not a mailbox.
        if ls == at || t[at - 1] == b'.' || (ls >= 2 && &t[ls - 2..ls] == b"//") {
            return next;
        }
        // Domain labels.
        let mut j = at + 1;
        let mut labels = 0;
        let mut last_label = (j, j);
        loop {
            let ls2 = j;
            let le = run_end(t, j, |b| is_alnum(b) || b == b'-');
            if le == ls2 || t[ls2] == b'-' || t[le - 1] == b'-' || le - ls2 > 63 {
                break;
            }
            labels += 1;
            last_label = (ls2, le);
            j = le;
            if t.get(j) == Some(&b'.') && t.get(j + 1).copied().is_some_and(is_alnum) {
                j += 1;
            } else {
                break;
            }
        }
        if labels < 2 || j - at > 254 {
            return next;
        }
        let end = last_label.1;
        if !validate::tld_plausible(&t[last_label.0..end]) {
            return next;
        }
        if t.get(end).copied().is_some_and(|b| b == b'_' || b == b'@') {
            return next;
        }
        sink.push(Entity::Email, ls, end);
        end
    }

    pub(super) fn iban(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        let want = validate::iban_length(&t[i..i + 2])?;
        let mut compact = [0u8; 34];
        let mut n = 0;
        let mut j = i;
        let mut group = 0;
        while n < want && j < t.len() {
            let b = t[j];
            if b.is_ascii_uppercase() || b.is_ascii_digit() {
                compact[n] = b;
                n += 1;
                group += 1;
                j += 1;
            } else if b == b' ' && group == 4 && t.get(j + 1).copied().is_some_and(is_alnum) {
                group = 0;
                j += 1;
            } else {
                break;
            }
        }
        if n != want || t.get(j).copied().is_some_and(is_alnum) {
            return None;
        }
        if !validate::iban_valid(&compact[..n]) {
            // A whole IBAN-shaped value with wrong check digits: skip it as a
            // unit, so that its digit groups are not read as a card number.
            return Some(j);
        }
        sink.push(Entity::Iban, i, j);
        Some(j)
    }

    /// A dotted quad at `i`: four decimal octets up to 255 without leading
    /// zeros (as `std::net::Ipv4Addr` parses them), one trailing `.` allowed
    /// (it ends a sentence), not followed by a letter, digit, `.` or `_`.
    pub(super) fn ipv4(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        let mut j = i;
        for k in 0..4 {
            let s = j;
            let mut v = 0u32;
            while j < t.len() && j - s < 4 && t[j].is_ascii_digit() {
                v = v * 10 + u32::from(t[j] - b'0');
                j += 1;
            }
            let len = j - s;
            if len == 0 || len > 3 || v > 255 || (len > 1 && t[s] == b'0') {
                return None;
            }
            if k < 3 {
                if t.get(j) != Some(&b'.') {
                    return None;
                }
                j += 1;
            }
        }
        let end = j;
        match t.get(end) {
            // `1.2.3.4.5` or `1.2.3.4..`: more parts, not an address.
            Some(b'.')
                if t.get(end + 1)
                    .is_some_and(|&b| b.is_ascii_digit() || b == b'.') =>
            {
                return None;
            }
            Some(&b) if is_alnum(b) || b == b'_' => return None,
            _ => {}
        }
        sink.push(Entity::Ip, i, end);
        Some(end)
    }

    #[inline(never)]
    pub(super) fn ipv6(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        let mut end = run_end(t, i, is_ipv6_char);
        if end - i > 45 {
            return None;
        }
        while end > i && t[end - 1] == b'.' {
            end -= 1;
        }
        let cand = &t[i..end];
        let colons = cand.iter().filter(|&&b| b == b':').count();
        let double = memchr::memmem::find(cand, b"::").is_some();
        if colons < 2 || (!double && colons != 7) || !cand.iter().any(u8::is_ascii_digit) {
            return None;
        }
        let groups = cand.split(|&b| b == b':').filter(|g| !g.is_empty()).count();
        if groups < 2 {
            return None;
        }
        if t.get(end)
            .copied()
            .is_some_and(|b| is_alnum(b) || b == b'_')
        {
            return None;
        }
        let s = std::str::from_utf8(cand).ok()?;
        s.parse::<Ipv6Addr>().ok()?;
        sink.push(Entity::Ip, i, end);
        Some(end)
    }

    /// Words of hex digits followed by `:`, `-` or `.`: IPv6, MAC, UUID.
    pub(super) fn hex_word(
        &self,
        t: &[u8],
        i: usize,
        end: usize,
        sink: &mut Sink,
    ) -> Option<usize> {
        if !t[i..end].iter().all(|&b| is_hex(b))
            || (i > 0 && matches!(t[i - 1], b':' | b'.' | b'-'))
        {
            return None;
        }
        let sep = t[end];
        let len = end - i;
        if sep == b':'
            && len <= 4
            && sink.wants(Entity::Ip)
            && let Some(e) = self.ipv6(t, i, sink)
        {
            return Some(e);
        }
        if len == 8
            && sep == b'-'
            && sink.wants(Entity::Uuid)
            && let Some(e) = uuid_at(t, i)
        {
            sink.push(Entity::Uuid, i, e);
            return Some(e);
        }
        if sink.wants(Entity::MacAddress)
            && let Some(e) = mac_at(t, i)
        {
            sink.push(Entity::MacAddress, i, e);
            return Some(e);
        }
        None
    }

    pub(super) fn wallet_base58(
        &self,
        t: &[u8],
        i: usize,
        end: usize,
        sink: &mut Sink,
    ) -> Option<usize> {
        let len = end - i;
        if !(26..=35).contains(&len)
            || !matches!(t[i], b'1' | b'3' | b'L' | b'M' | b'D' | b'm' | b'n' | b'2')
        {
            return None;
        }
        if !sink.wants(Entity::CryptoWallet) || !t[i..end].iter().all(|&b| is_base58(b)) {
            return None;
        }
        if !validate::base58check_wallet_valid(&t[i..end]) {
            return None;
        }
        sink.push(Entity::CryptoWallet, i, end);
        Some(end)
    }

    pub(super) fn wallet_bech32(
        &self,
        t: &[u8],
        i: usize,
        end: usize,
        sink: &mut Sink,
    ) -> Option<usize> {
        if !(14..=90).contains(&(end - i)) || !sink.wants(Entity::CryptoWallet) {
            return None;
        }
        if !validate::bech32_wallet_valid(&t[i..end]) {
            return None;
        }
        sink.push(Entity::CryptoWallet, i, end);
        Some(end)
    }

    pub(super) fn person_name(
        &self,
        t: &[u8],
        i: usize,
        end: usize,
        sink: &mut Sink,
    ) -> Option<usize> {
        let first = &t[i..end];
        if first.len() < 2 || first.len() > 20 || !first[1..].iter().all(u8::is_ascii_lowercase) {
            return None;
        }
        let mut lower = [0u8; 20];
        for (d, s) in lower.iter_mut().zip(first) {
            *d = s.to_ascii_lowercase();
        }
        if self
            .first_names
            .binary_search_by(|n| n.as_slice().cmp(&lower[..first.len()]))
            .is_err()
        {
            return None;
        }
        // A capitalised surname must follow.
        if t.get(end) != Some(&b' ') || !t.get(end + 1).is_some_and(u8::is_ascii_uppercase) {
            return None;
        }
        let se = run_end(t, end + 1, |b| {
            b.is_ascii_alphabetic() || b == b'-' || b == b'\''
        });
        let surname = &t[end + 1..se];
        if surname.len() < 2 || !surname[1..].iter().any(u8::is_ascii_lowercase) {
            return None;
        }
        if t.get(se).copied().is_some_and(is_alnum) {
            return None;
        }
        sink.push(Entity::PersonName, i, se);
        Some(se)
    }
}

fn uuid_at(t: &[u8], i: usize) -> Option<usize> {
    let r = t.get(i..i + 36)?;
    for (x, &b) in r.iter().enumerate() {
        let ok = if matches!(x, 8 | 13 | 18 | 23) {
            b == b'-'
        } else {
            is_hex(b)
        };
        if !ok {
            return None;
        }
    }
    let end = i + 36;
    if t.get(end)
        .copied()
        .is_some_and(|b| is_alnum(b) || b == b'-')
    {
        return None;
    }
    Some(end)
}

fn mac_at(t: &[u8], i: usize) -> Option<usize> {
    let end = if let Some(r) = t.get(i..i + 17) {
        let sep = r[2];
        let ok = matches!(sep, b':' | b'-')
            && r.iter()
                .enumerate()
                .all(|(x, &b)| if x % 3 == 2 { b == sep } else { is_hex(b) });
        if !ok {
            return mac_dotted(t, i);
        }
        if t.get(i + 17) == Some(&sep) {
            return None;
        }
        i + 17
    } else {
        return mac_dotted(t, i);
    };
    if t.get(end).copied().is_some_and(is_alnum) {
        return None;
    }
    Some(end)
}

/// Cisco style `0011.2233.4455`.
fn mac_dotted(t: &[u8], i: usize) -> Option<usize> {
    let r = t.get(i..i + 14)?;
    let ok = r
        .iter()
        .enumerate()
        .all(|(x, &b)| if x % 5 == 4 { b == b'.' } else { is_hex(b) });
    let end = i + 14;
    (ok && !t
        .get(end)
        .copied()
        .is_some_and(|b| is_alnum(b) || b == b'.'))
    .then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::EntitySet;

    /// Whether [`Scanner::ipv4`] takes all of `s`, and reports it as one IP.
    fn ipv4_takes_all(scanner: &Scanner, s: &str) -> bool {
        let mut sink = Sink::new(EntitySet::all(), false);
        let end = scanner.ipv4(s.as_bytes(), 0, &mut sink);
        let all = end == Some(s.len());
        let reported = sink.found.len() == 1 && sink.found[0].span == (0..s.len());
        assert_eq!(
            all, reported,
            "{s:?}: returned {end:?}, found {:?}",
            sink.found
        );
        all
    }

    /// The scanner's own dotted-quad reader accepts exactly what
    /// `std::net::Ipv4Addr` parses, on every quad built from octets at and
    /// around the limits (leading zeros, 255/256, four digits, empty).
    #[test]
    fn ipv4_reader_agrees_with_std() {
        let octets = [
            "", "0", "1", "9", "00", "01", "09", "10", "99", "010", "100", "199", "200", "249",
            "250", "255", "256", "259", "260", "300", "999", "0000", "1000", "2555",
        ];
        let scanner = Scanner::default();
        let mut checked = 0;
        for a in octets {
            for b in octets {
                for c in octets {
                    for d in octets {
                        let s = format!("{a}.{b}.{c}.{d}");
                        let std_ok = s.parse::<std::net::Ipv4Addr>().is_ok();
                        assert_eq!(ipv4_takes_all(&scanner, &s), std_ok, "{s:?}");
                        checked += usize::from(std_ok);
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
        for s in ["1.2.3", "1.2.3.", "1..2.3", "1.2.3.4.5", "", "1.2.3.4.5.6"] {
            assert!(!ipv4_takes_all(&scanner, s), "{s:?}");
        }
    }
}
