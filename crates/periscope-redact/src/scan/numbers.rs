//! Detectors that read digits, and the common numbers they step over.
//!
//! A number is read once as [`Groups`] (runs of digits separated by one of
//! ` - . /`), and each number detector then tries the groups from a given
//! one on: cards (12 to 19 digits, Luhn), US social security numbers,
//! national phone numbers, ABA routing numbers (only after a routing word)
//! and dates of birth (only after a birth word). Phones in international
//! (`+44 ...`) and parenthesised (`(415) ...`) forms start at punctuation and
//! are read here too. Timestamps and times of day, the most common numbers in
//! logs and never sensitive, are recognised at fixed offsets so that the walk
//! skips them as units.
//!
//! Cut here because these detectors share the group reader and the rule for
//! where a number may start ([`numeric_start_ok`]); dotted quads are found
//! while reading a number, but their parser lives with the other addresses in
//! [`super::ids`].

use super::Scanner;
use super::bytes::{HIGH, digit_mask, is_alnum, is_digits, is_hex, run_end, splat};
use super::sink::Sink;
use crate::Entity;
use crate::validate;

impl Scanner {
    pub(super) fn numeric(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        if !numeric_start_ok(t, i) {
            return None;
        }
        let g1 = run_end(t, i, |b| b.is_ascii_digit());
        if g1 - i == 4
            && t.get(g1) == Some(&b'-')
            && let Some(e) = timestamp(t, i)
        {
            return Some(e);
        }
        match t.get(g1) {
            Some(b) if is_alnum(*b) || *b == b'_' => return None,
            Some(b'.') if g1 - i <= 3 && sink.wants(Entity::Ip) => {
                if let Some(e) = self.ipv4(t, i, sink) {
                    return Some(e);
                }
            }
            _ => {}
        }
        // A lone run can only be a routing number (9 digits) or a card (12-19).
        let lone = !matches!(
            (t.get(g1), t.get(g1 + 1)),
            (Some(b' ' | b'-' | b'.' | b'/'), Some(d)) if d.is_ascii_digit()
        );
        if lone && g1 - i != 9 && !(12..=19).contains(&(g1 - i)) {
            return None;
        }
        // Every number detector needs at least 9 digits (8 for a date of birth):
        // amounts, counts, latencies and bare dates stop here, before the
        // groups are recorded.
        let min_total = if self.detect.contains(Entity::DateOfBirth) {
            8
        } else {
            9
        };
        let groups = Groups::read(t, i);
        if groups.len == 0 {
            return None;
        }
        if groups.total() < min_total {
            return Some(groups.end(groups.len - 1));
        }
        let mut k = 0;
        let mut last_end = None;
        while k < groups.len {
            let start_ok = k == 0
                || last_end == Some(k)
                || (groups.sep_before(k) == b' ' && groups.digits(k - 1) <= 2);
            if start_ok && let Some((m, entity)) = self.number_at(t, &groups, k, sink) {
                sink.push(entity, groups.start(k), groups.end(k + m - 1));
                k += m;
                last_end = Some(k);
                continue;
            }
            k += 1;
        }
        Some(groups.end(groups.len - 1))
    }

    /// Tries every number detector on groups `k..`; returns how many groups
    /// matched and the entity.
    fn number_at(&self, t: &[u8], g: &Groups, k: usize, sink: &Sink) -> Option<(usize, Entity)> {
        use Entity::*;
        let avail = g.len - k;
        // Cards: a single run, or groups of 3-6 with one consistent separator.
        if sink.wants(Card) {
            let mut digits = [0u8; 24];
            for m in (1..=avail).rev() {
                // The cheap test first: 12-19 digits in all.
                if !(12..=19).contains(&g.digits_in(k, m)) {
                    continue;
                }
                if m > 1 && !g.uniform(k, m, |s| s == b' ' || s == b'-') {
                    continue;
                }
                if m > 1 && (k..k + m).any(|x| !(3..=6).contains(&g.digits(x))) {
                    continue;
                }
                let n = g.collect(t, k, m, &mut digits);
                if validate::card_valid(&digits[..n]) {
                    return Some((m, Card));
                }
            }
        }
        let d = |x: usize| g.digits(x);
        let same_sep_continues = |m: usize, sep: u8| k + m < g.len && g.sep_before(k + m) == sep;
        // SSN: 3-2-4 with `-` or space.
        if sink.wants(Ssn) && avail >= 3 && d(k) == 3 && d(k + 1) == 2 && d(k + 2) == 4 {
            let sep = g.sep_before(k + 1);
            if (sep == b'-' || sep == b' ')
                && g.uniform(k, 3, |s| s == sep)
                && !same_sep_continues(3, sep)
            {
                let mut digits = [0u8; 24];
                let n = g.collect(t, k, 3, &mut digits);
                if validate::ssn_valid(&digits[..n]) {
                    return Some((3, Ssn));
                }
            }
        }
        if sink.wants(Phone)
            && let Some(m) = national_phone(t, g, k)
        {
            return Some((m, Phone));
        }
        if sink.wants(AbaRouting) && d(k) == 9 && (avail == 1 || g.sep_before(k + 1) == b' ') {
            let s = g.start(k);
            if validate::aba_valid(&t[s..s + 9]) && context_before(t, s, ABA_CONTEXT) {
                return Some((1, AbaRouting));
            }
        }
        if sink.wants(DateOfBirth)
            && avail >= 3
            && let Some(m) = date_of_birth(t, g, k)
        {
            return Some((m, DateOfBirth));
        }
        None
    }

    #[inline(never)]
    pub(super) fn phone_international(
        &self,
        t: &[u8],
        plus: usize,
        sink: &mut Sink,
    ) -> Option<usize> {
        if !sink.wants(Entity::Phone)
            || (plus > 0 && (is_alnum(t[plus - 1]) || t[plus - 1] == b'+'))
        {
            return None;
        }
        let mut digits = [0u8; 16];
        let mut n = 0;
        let mut j = plus + 1;
        let mut last_digit_end = j;
        let mut seps = 0;
        if !t.get(j).copied().is_some_and(|b| b.is_ascii_digit()) {
            return None;
        }
        while j < t.len() {
            let b = t[j];
            if b.is_ascii_digit() {
                // `(0)` after the country code is the national trunk prefix.
                let trunk =
                    b == b'0' && j > 0 && t[j - 1] == b'(' && t.get(j + 1) == Some(&b')') && n <= 3;
                if !trunk {
                    if n == digits.len() {
                        return None;
                    }
                    digits[n] = b;
                    n += 1;
                }
                seps = 0;
                j += 1;
                last_digit_end = j;
            } else if matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/') && seps < 2 && n > 0 {
                seps += 1;
                j += 1;
            } else {
                break;
            }
        }
        let end = last_digit_end;
        if t.get(end)
            .copied()
            .is_some_and(|b| is_alnum(b) || b == b'_')
        {
            return None;
        }
        if !e164_valid(&digits[..n]) {
            return None;
        }
        sink.push(Entity::Phone, plus, end);
        Some(end)
    }

    /// `(415) 555-2671`, US national format with the area code in parentheses.
    #[inline(never)]
    pub(super) fn phone_paren(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        if !sink.wants(Entity::Phone) || (i > 0 && is_alnum(t[i - 1])) {
            return None;
        }
        let r = &t[i..];
        if r.len() < 13 || !r[1..4].iter().all(u8::is_ascii_digit) || r[4] != b')' {
            return None;
        }
        let mut j = 5;
        if r[j] == b' ' {
            j += 1;
        }
        let ex = j;
        if r.len() < ex + 8 || !r[ex..ex + 3].iter().all(u8::is_ascii_digit) {
            return None;
        }
        if !matches!(r[ex + 3], b'-' | b'.' | b' ')
            || !r[ex + 4..ex + 8].iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let end = i + ex + 8;
        if t.get(end)
            .copied()
            .is_some_and(|b| is_alnum(b) || b == b'_')
        {
            return None;
        }
        if !(b'2'..=b'9').contains(&r[1]) || !(b'2'..=b'9').contains(&r[ex]) {
            return None;
        }
        sink.push(Entity::Phone, i, end);
        Some(end)
    }
}

const MAX_GROUPS: usize = 8;

/// Runs of digits separated by exactly one of ` - . /`, as read from a number's
/// first digit: `4111 1111 1111 1111`, `078-05-1120`, `020 7946 0958`.
struct Groups {
    /// (start, end) of each digit run.
    spans: [(usize, usize); MAX_GROUPS],
    /// The byte before each group (0 for the first).
    seps: [u8; MAX_GROUPS],
    /// Digits in groups `0..k`, for each `k` up to `len`.
    upto: [usize; MAX_GROUPS + 1],
    len: usize,
}

impl Groups {
    fn read(t: &[u8], i: usize) -> Groups {
        let mut g = Groups {
            spans: [(0, 0); MAX_GROUPS],
            seps: [0; MAX_GROUPS],
            upto: [0; MAX_GROUPS + 1],
            len: 0,
        };
        let n = t.len();
        let mut j = i;
        let mut total = 0;
        loop {
            let s = j;
            while j < n && t[j].is_ascii_digit() {
                j += 1;
            }
            let after = t.get(j).copied().unwrap_or(0);
            // A group glued to letters (`550e8400`) belongs to another token.
            if j == s || j - s > 19 || (g.len > 0 && (is_alnum(after) || after == b'_')) {
                break;
            }
            total += j - s;
            g.spans[g.len] = (s, j);
            g.seps[g.len] = if g.len == 0 { 0 } else { t[s - 1] };
            g.len += 1;
            g.upto[g.len] = total;
            if total > 24 || g.len == MAX_GROUPS {
                break;
            }
            if matches!(after, b' ' | b'-' | b'.' | b'/')
                && t.get(j + 1).is_some_and(u8::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        g
    }

    /// Digits in all the groups.
    fn total(&self) -> usize {
        self.upto[self.len]
    }

    /// Digits in groups `k..k + m`.
    fn digits_in(&self, k: usize, m: usize) -> usize {
        self.upto[k + m] - self.upto[k]
    }

    fn start(&self, k: usize) -> usize {
        self.spans[k].0
    }

    fn end(&self, k: usize) -> usize {
        self.spans[k].1
    }

    fn digits(&self, k: usize) -> usize {
        self.spans[k].1 - self.spans[k].0
    }

    /// The separator byte before group `k` (0 for the first group or past the end).
    fn sep_before(&self, k: usize) -> u8 {
        if k == 0 || k >= self.len {
            0
        } else {
            self.seps[k]
        }
    }

    fn uniform(&self, k: usize, m: usize, ok: impl Fn(u8) -> bool) -> bool {
        let first = self.sep_before(k + 1);
        (k + 1..k + m).all(|x| {
            let s = self.sep_before(x);
            s == first && ok(s)
        })
    }

    /// Copies the digits of groups `k..k+m` into `out`; returns how many.
    fn collect(&self, t: &[u8], k: usize, m: usize, out: &mut [u8; 24]) -> usize {
        let mut n = 0;
        for x in k..k + m {
            for &b in &t[self.spans[x].0..self.spans[x].1] {
                if n == out.len() {
                    return n;
                }
                out[n] = b;
                n += 1;
            }
        }
        n
    }
}

/// Whether a number starting at `i` starts a token of its own, not the tail of
/// a decimal, a version, an identifier or a signed value.
pub(super) fn numeric_start_ok(t: &[u8], i: usize) -> bool {
    if i == 0 {
        return true;
    }
    let p = t[i - 1];
    if is_alnum(p) || p == b'_' || p == b'+' {
        return false;
    }
    !(matches!(p, b'.' | b'-') && i >= 2 && is_alnum(t[i - 2]))
}

/// Words that must appear shortly before a 9-digit run for it to be read as an
/// ABA routing number: a bare checksum passes for too many ids.
const ABA_CONTEXT: &[&[u8]] = &[b"routing", b"aba", b"rtn", b"transit", b"ach"];
/// Words that must appear shortly before a date for it to be a date of birth.
const DOB_CONTEXT: &[&[u8]] = &[
    b"dob",
    b"birth",
    b"birthday",
    b"birthdate",
    b"born",
    b"geboren",
    b"geburtsdatum",
    b"naissance",
    b"bday",
];

/// Whether one of `words` occurs as a whole word shortly before `s`: within 40
/// bytes, on the same line, and with no other number in between (so that in
/// `routing 021000021 ref 123456789` only the first number has the context).
fn context_before(t: &[u8], s: usize, words: &[&[u8]]) -> bool {
    let mut from = s.saturating_sub(40);
    if let Some(p) = t[from..s]
        .iter()
        .rposition(|&b| b == b'\n' || b.is_ascii_digit())
    {
        from += p + 1;
    }
    let window = &t[from..s];
    words.iter().any(|w| {
        window.windows(w.len()).enumerate().any(|(at, cand)| {
            cand.eq_ignore_ascii_case(w)
                && (at == 0 || !window[at - 1].is_ascii_alphabetic())
                && !window
                    .get(at + w.len())
                    .is_some_and(u8::is_ascii_alphabetic)
        })
    })
}

/// National phone formats: US `415-555-2671`, `1 800 555 0199`; UK/DE with
/// trunk 0 (`020 7946 0958`, `030 12345678`, `089/1234567`); FR `01 23 45 67 89`.
fn national_phone(t: &[u8], g: &Groups, k: usize) -> Option<usize> {
    let avail = g.len - k;
    let d = |x: usize| g.digits(x);
    let first = |x: usize| t[g.start(x)];
    let continues = |m: usize| k + m < g.len && g.sep_before(k + m) == g.sep_before(k + m - 1);
    // US, with an optional leading country code 1.
    let us = |x: usize| -> bool {
        x + 3 <= g.len
            && d(x) == 3
            && d(x + 1) == 3
            && d(x + 2) == 4
            && (b'2'..=b'9').contains(&first(x))
            && (b'2'..=b'9').contains(&first(x + 1))
            && {
                let s1 = g.sep_before(x + 1);
                let s2 = g.sep_before(x + 2);
                matches!(s1, b'-' | b'.' | b' ') && (s1 == s2 || (s1 == b' ' && s2 == b'-'))
            }
    };
    if avail >= 4
        && d(k) == 1
        && first(k) == b'1'
        && matches!(g.sep_before(k + 1), b'-' | b' ' | b'.')
        && us(k + 1)
    {
        return (!continues(4)).then_some(4);
    }
    if avail >= 3 && us(k) {
        return (!continues(3)).then_some(3);
    }
    if first(k) != b'0' || t.get(g.start(k) + 1).is_none_or(|&b| b == b'0') {
        return None;
    }
    // FR: five pairs.
    if avail >= 5 && (k..k + 5).all(|x| d(x) == 2) {
        let sep = g.sep_before(k + 1);
        if matches!(sep, b' ' | b'.' | b'-') && g.uniform(k, 5, |s| s == sep) && !continues(5) {
            return Some(5);
        }
    }
    // UK / DE: area code with trunk 0, then one or two groups.
    if !(3..=5).contains(&d(k)) {
        return None;
    }
    for m in [3, 2] {
        if avail < m {
            continue;
        }
        if !(k + 1..k + m)
            .all(|x| (3..=8).contains(&d(x)) && matches!(g.sep_before(x), b' ' | b'-' | b'/'))
        {
            continue;
        }
        let total: usize = (k..k + m).map(d).sum();
        if (10..=12).contains(&total) && !continues(m) {
            return Some(m);
        }
    }
    None
}

/// Country calling codes of two digits, and two-digit prefixes of three-digit codes.
const CC2: &[u8] = &[
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56,
    57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
];
const CC3_PREFIX: &[u8] = &[
    21, 22, 23, 24, 25, 26, 29, 35, 37, 38, 42, 50, 59, 67, 68, 69, 85, 87, 88, 96, 97, 99,
];

/// E.164 (digits after `+`): a real country code and a plausible length, with
/// the national rules of the US/NANP, UK, Germany and France.
fn e164_valid(d: &[u8]) -> bool {
    let n = d.len();
    if !(8..=15).contains(&n) || d[0] == b'0' {
        return false;
    }
    let cc2 = (d[0] - b'0') * 10 + (d[1] - b'0');
    match d[0] {
        b'1' => n == 11 && (b'2'..=b'9').contains(&d[1]) && (b'2'..=b'9').contains(&d[4]),
        b'7' => n == 11,
        _ => match cc2 {
            44 => (11..=12).contains(&n) && d[2] != b'0',
            49 => (8..=15).contains(&n) && d[2] != b'0',
            33 => n == 11 && d[2] != b'0',
            _ if CC2.contains(&cc2) => (9..=14).contains(&n),
            _ if CC3_PREFIX.contains(&cc2) => (10..=15).contains(&n),
            _ => false,
        },
    }
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    if !(1900..=2099).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d <= days
}

/// Dates of birth: `1984-03-07`, `07/03/1984`, `07.03.1984`, only after a
/// birth keyword and not followed by a time of day (that is a timestamp).
fn date_of_birth(t: &[u8], g: &Groups, k: usize) -> Option<usize> {
    let num = |x: usize| -> u32 {
        t[g.start(x)..g.end(x)]
            .iter()
            .fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'))
    };
    let sep = g.sep_before(k + 1);
    if !matches!(sep, b'-' | b'/' | b'.') || g.sep_before(k + 2) != sep {
        return None;
    }
    let dims = (g.digits(k), g.digits(k + 1), g.digits(k + 2));
    let ok = match dims {
        (4, 2, 2) => valid_date(num(k), num(k + 1), num(k + 2)),
        (2, 2, 4) => {
            let (a, b, y) = (num(k), num(k + 1), num(k + 2));
            valid_date(y, b, a) || valid_date(y, a, b)
        }
        _ => false,
    };
    if !ok || (k + 3 < g.len && g.sep_before(k + 3) == sep) {
        return None;
    }
    let end = g.end(k + 2);
    let r = &t[end..];
    let time_follows = (r.first() == Some(&b'T') && r.get(1).is_some_and(u8::is_ascii_digit))
        || (r.first() == Some(&b' ')
            && r.get(1).is_some_and(u8::is_ascii_digit)
            && r.get(2).is_some_and(u8::is_ascii_digit)
            && r.get(3) == Some(&b':'));
    if time_follows || !context_before(t, g.start(k), DOB_CONTEXT) {
        return None;
    }
    Some(3)
}

/// `12:34`, `12:34:56`, `12:34:56.789`: a time of day, skipped as a unit (it is
/// the most common number in logs and can be nothing sensitive).
pub(super) fn time_of_day(t: &[u8], i: usize) -> Option<usize> {
    let h = run_end(t, i, |b| b.is_ascii_digit());
    if h - i > 2 || t.get(h) != Some(&b':') || !is_digits(t, h + 1, 2) {
        return None;
    }
    let e = seconds_by_bytes(t, h + 3);
    // `12:34:56::1` or `12:34:5a` are not times; let the other detectors look.
    match t.get(e) {
        Some(b) if is_hex(*b) || *b == b':' => None,
        _ => Some(e),
    }
}

/// `2024-05-01T12:34:56.789Z` / `2024-05-01 12:34:56`: a timestamp, skipped as
/// a unit. A bare date is left to the date-of-birth detector.
#[inline(always)]
pub(super) fn timestamp(t: &[u8], i: usize) -> Option<usize> {
    // `YYYY-MM-DD?HH:MM` at fixed offsets, checked eight bytes at a time.
    const fn lanes(idx: &[usize]) -> u64 {
        let mut m = 0;
        let mut k = 0;
        while k < idx.len() {
            m |= 0xff << (8 * idx[k]);
            k += 1;
        }
        m
    }
    const DATE_DIGITS: u64 = lanes(&[0, 1, 2, 3, 5, 6]) & HIGH;
    const DATE_DASHES: u64 = lanes(&[4, 7]);
    const TIME_DIGITS: u64 = lanes(&[0, 1, 3, 4, 6, 7]) & HIGH;
    const TIME_COLON: u64 = lanes(&[5]);
    let w = t.get(i..i + 16)?;
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&w[..8]);
    b.copy_from_slice(&w[8..]);
    let (a, b) = (u64::from_le_bytes(a), u64::from_le_bytes(b));
    let shape = digit_mask(a) & DATE_DIGITS == DATE_DIGITS
        && digit_mask(b) & TIME_DIGITS == TIME_DIGITS
        && a & DATE_DASHES == splat(b'-') & DATE_DASHES
        && b & TIME_COLON == splat(b':') & TIME_COLON
        && (w[10] == b'T' || w[10] == b' ');
    if !shape {
        return None;
    }
    // As `time_of_day` from the hour: seconds and fractions are optional.
    let mut e = i + 16;
    if let Some(c) = t.get(e..e + 8).and_then(|c| c.first_chunk::<8>()) {
        // `:SS.ffff` in one load: the usual millisecond form needs no loop.
        const SECONDS: u64 = lanes(&[1, 2]) & HIGH;
        let x = u64::from_le_bytes(*c);
        let digits = digit_mask(x);
        if c[0] == b':' && digits & SECONDS == SECONDS {
            e += 3;
            if c[3] == b'.' {
                // Digits from byte 4 on, up to the first that is not one
                // (4 when all are: a marker stands for the byte after them).
                let stop = ((!digits & HIGH) >> 32) | (0x80 << 32);
                let run = stop.trailing_zeros() as usize / 8;
                e = match run {
                    0 => e,
                    4 => run_end(t, e + 5, |b| b.is_ascii_digit()),
                    _ => e + 1 + run,
                };
            }
        }
    } else {
        e = seconds_by_bytes(t, e);
    }
    timestamp_end(t, e)
}

/// Past the optional `:SS` and `.fff` that follow `HH:MM` at `e`, read a byte
/// at a time: a bare time of day's, and a timestamp's near the end of the text
/// (where its eight-byte load does not fit).
#[inline(always)]
fn seconds_by_bytes(t: &[u8], mut e: usize) -> usize {
    if t.get(e) == Some(&b':') && is_digits(t, e + 1, 2) {
        e += 3;
        if t.get(e) == Some(&b'.') && t.get(e + 1).is_some_and(u8::is_ascii_digit) {
            e = run_end(t, e + 1, |b| b.is_ascii_digit());
        }
    }
    e
}

/// Where a timestamp whose time ends at `e` ends: after a `Z`, or nowhere
/// when more hex or a colon follows (`12:34:56::1`, `12:34:5a` are not
/// times; the other detectors look at them).
#[inline(always)]
fn timestamp_end(t: &[u8], e: usize) -> Option<usize> {
    match t.get(e) {
        Some(b) if is_hex(*b) || *b == b':' => None,
        Some(b'Z') => Some(e + 1),
        _ => Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `timestamp` as it was written before its eight-byte loads: the shape
    /// byte by byte, the seconds by the byte reader the short tail still uses.
    fn timestamp_by_bytes(t: &[u8], i: usize) -> Option<usize> {
        let w = t.get(i..i + 16)?;
        let shape = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15]
            .iter()
            .all(|&k| w[k].is_ascii_digit())
            && w[4] == b'-'
            && w[7] == b'-'
            && w[13] == b':'
            && (w[10] == b'T' || w[10] == b' ');
        if !shape {
            return None;
        }
        timestamp_end(t, seconds_by_bytes(t, i + 16))
    }

    #[test]
    fn timestamp_fast_path_agrees_with_the_byte_by_byte_reading() {
        let tails = [
            "",
            ":",
            ":5",
            ":56",
            ":56.",
            ":56.1",
            ":56.12",
            ":56.123",
            ":56.1234",
            ":56.12345",
            ":56.123456789",
            ":5a",
            ":56a",
            ":56.1a",
            ":56.1234a",
            ":56:",
            "Z",
        ];
        let ends = [
            "", "Z", "Z ", " x", "\n", ":", "a", "+01:00", "Zq", ".", ",9",
        ];
        for head in ["2024-05-01T12:34", "2024-05-01 12:34", "2024-05-01x12:34"] {
            for tail in tails {
                for end in ends {
                    for pre in ["", "at "] {
                        let text = format!("{pre}{head}{tail}{end}");
                        let i = pre.len();
                        assert_eq!(
                            timestamp(text.as_bytes(), i),
                            timestamp_by_bytes(text.as_bytes(), i),
                            "{text:?}"
                        );
                    }
                }
            }
        }
    }
}
