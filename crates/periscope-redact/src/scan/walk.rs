//! The walk: one pass over the text, and the dispatch from each byte to the
//! few detectors that can start there.
//!
//! This is the scanner's state machine and its hot loop; it knows which
//! detector to wake at a position, not how any detector reads its value
//! (that is in [`super::secrets`], [`super::numbers`] and [`super::ids`]).
//! The cheap filters in front of the detectors ([`Scanner::may_start`],
//! [`Scanner::small_number`], [`Scanner::leading_timestamp`]) live here, next
//! to the loop that calls them, and must agree with the detectors they stand
//! in for: the tests below check that they do.
//!
//! # How it stays fast
//!
//! Running one regex per entity over the text costs one pass per entity and
//! wakes up on every digit. Instead the scanner walks the text once and stops
//! only at a handful of places:
//!
//! * the **start of a word** (an ASCII letter or digit after a non-alphanumeric
//!   byte): the first byte picks the few detectors that can start there, e.g. `g`
//!   looks for `ghp_`/`github_pat_`/`glpat-`, a digit starts the number-group
//!   reader (cards, SSNs, phones, IPv4, routing numbers, dates) unless the
//!   number is a timestamp or too short for any of them (decimals, versions);
//!   then the scanner jumps to the end of the word;
//! * `@` (emails), `=` and `:` (secret-named keys, `Authorization`, URL
//!   credentials, IPv6 starting with `::`), `+` and `(` (phones), `-` (PEM blocks).
//!
//! Everything else (most of a log line) costs one table lookup per byte.
//! Candidates then go through the validators in [`crate::validate`].

use super::Scanner;
use super::bytes::{
    C_SKIP, C_WORD, CLASS, is_alnum, is_alnum_dash, is_base32_upper, is_hex, is_ipv6_char,
    is_token_char, is_word, run_end, word_end, word_end_gap,
};
use super::numbers::{numeric_start_ok, time_of_day, timestamp};
use super::secrets::is_aws_prefix;
use super::sink::Sink;
use crate::Entity;

impl Scanner {
    /// Walks `t` once, waking the detectors at the places the module doc
    /// lists; they push into `sink`. Returns early when the sink says stop.
    pub(super) fn run(&self, t: &[u8], sink: &mut Sink) {
        let n = t.len();
        let mut i = 0;
        loop {
            // Spaces, quotes, slashes, commas...: one table lookup each.
            let mut class = C_SKIP;
            while i < n {
                class = CLASS[usize::from(t[i])];
                if class != C_SKIP {
                    break;
                }
                i += 1;
            }
            if i >= n {
                return;
            }
            let b0 = t[i];
            let next = if class == C_WORD {
                // A word start: the byte before is not alphanumeric (see below).
                let (end, gap) = word_end_gap(t, i);
                let next = if !self.may_start(t, i, end) {
                    // Most words: no detector starts there. The byte after the
                    // word is most often a space or a quote: stepped over here.
                    i = end + usize::from(gap);
                    continue;
                } else if let Some(e) = self.leading_timestamp(t, i, end) {
                    // The most common number in logs, skipped as a unit.
                    e
                } else if let Some(e) = self.small_number(t, i, end) {
                    // Decimals, versions, sizes: too few digits for anything.
                    // Nothing was found, and `e` ends a group of digits that
                    // no letter follows, so no word goes on there.
                    i = e;
                    continue;
                } else {
                    self.word(t, i, end, sink)
                };
                // A detector that stopped in the middle of a word: the rest of
                // the word starts nothing.
                if next > end && next < n && is_alnum(t[next - 1]) && is_alnum(t[next]) {
                    word_end(t, next)
                } else {
                    next.max(end)
                }
            } else {
                // `-`, `(` and `+` only matter before `-` (PEM) or a digit (phones).
                let after = t.get(i + 1).copied().unwrap_or(0);
                let worth = match b0 {
                    b'-' => after == b'-',
                    b'(' | b'+' => after.is_ascii_digit(),
                    _ => true,
                };
                if !worth {
                    i += 1;
                    continue;
                }
                let next = self.punct(t, i, sink);
                if next > i + 1 && next < n && is_alnum(t[next - 1]) && is_alnum(t[next]) {
                    word_end(t, next)
                } else {
                    next.max(i + 1)
                }
            };
            if sink.stop {
                return;
            }
            i = next;
        }
    }

    /// The end of a timestamp starting with the four-digit word `i..end`, if
    /// there is one: what [`Scanner::number_word`] checks first, done before
    /// the call since most lines start with one.
    #[inline(always)]
    fn leading_timestamp(&self, t: &[u8], i: usize, end: usize) -> Option<usize> {
        if end - i != 4
            || !t[i].is_ascii_digit()
            || t.get(end) != Some(&b'-')
            || self.hex_optional
            || !numeric_start_ok(t, i)
        {
            return None;
        }
        timestamp(t, i)
    }

    /// Where scanning resumes after the number that the word `i..end` starts
    /// with a digit, when that number cannot be anything: fewer than eight
    /// digits in all its groups (every number detector needs more) and fewer
    /// than four groups (no dotted quad), or digits glued to letters. `None`
    /// when it may be something: [`Scanner::word`] then decides.
    ///
    /// The groups are read as `Groups::read` (in [`super::numbers`]) reads
    /// them, and the result is what [`Scanner::number_word`] returns for such
    /// a number: the end of the last group, or the end of the word when the
    /// number does not start a token of its own. Decimals (`46.737ms`,
    /// `0.830`) are the most common numbers in logs after timestamps.
    #[inline(always)]
    fn small_number(&self, t: &[u8], i: usize, end: usize) -> Option<usize> {
        const MAX_DIGITS: usize = 8;
        const MAX_TOTAL: usize = 11;
        let len = end - i;
        if self.hex_optional || !t[i].is_ascii_digit() {
            return None;
        }
        let colon = t.get(end) == Some(&b':');
        if !t[i..end].iter().all(u8::is_ascii_digit) {
            // Digits glued to letters (`2521ms`, `13f62e6c`) are no number;
            // only a Base58 wallet or, before `:`, an IPv6 group may start so.
            let wallet = (26..=35).contains(&len);
            return (!(wallet || (colon && len <= 4))).then_some(end);
        }
        // After `:` come times and IPv6 addresses, not number groups.
        if colon {
            return None;
        }
        if len >= MAX_DIGITS {
            // Epoch milliseconds standing alone (13 digits from `1`) are never
            // a card (see `validate::is_epoch_millis`), and a lone run of 13
            // digits can be nothing else.
            let lone = !matches!(
                (t.get(end), t.get(end + 1)),
                (Some(b' ' | b'-' | b'.' | b'/'), Some(d)) if d.is_ascii_digit()
            );
            return (len == 13 && t[i] == b'1' && lone).then_some(end);
        }
        // Up to three groups: their digit counts, and whether one starts with
        // `0` (the trunk prefix of national phone numbers).
        let mut digits = [len, 0, 0];
        let mut zero_led = t[i] == b'0';
        let mut groups = 1;
        let mut total = len;
        let mut last = end;
        while let (Some(b' ' | b'-' | b'.' | b'/'), Some(&d)) = (t.get(last), t.get(last + 1))
            && d.is_ascii_digit()
        {
            let s = last + 1;
            let e = run_end(t, s, |b| b.is_ascii_digit());
            // A group glued to letters belongs to another token: not read.
            if t.get(e).is_some_and(|&b| is_alnum(b) || b == b'_') {
                break;
            }
            if groups == 3 || total + (e - s) > MAX_TOTAL {
                return None;
            }
            digits[groups] = e - s;
            zero_led |= d == b'0';
            groups += 1;
            total += e - s;
            last = e;
        }
        // With fewer than 8 digits nothing matches. Up to 11, in at most three
        // groups, only these can: a social security number (3-2-4), a US phone
        // number (3-3-4), another national phone number (trunk `0`), a routing
        // number (a group of 9) or, when enabled, a date of birth (8 digits).
        // Cards need 12 digits, a dotted quad four groups.
        let may_match = total >= MAX_DIGITS
            && (self.detect.contains(Entity::DateOfBirth)
                || zero_led
                || digits.contains(&9)
                || matches!(digits, [3, 2, 4] | [3, 3, 4]));
        if may_match {
            return None;
        }
        Some(if numeric_start_ok(t, i) { last } else { end })
    }

    /// Whether any detector may start at the word `i..end`, judging by its
    /// first two bytes, its length and the byte after it: the cheap test that
    /// lets the loop skip most words without a call. [`Scanner::word`] does the
    /// same tests again on the words that pass.
    #[inline(always)]
    fn may_start(&self, t: &[u8], i: usize, end: usize) -> bool {
        let b0 = t[i];
        let b1 = t.get(i + 1).copied().unwrap_or(0);
        let len = end - i;
        if b0.is_ascii_lowercase() {
            // `sk_`, `sk-`, `rk_`: the word before the `_` or `-` is two
            // letters; `ht` only matters in `http://` and `https://`.
            let pair = lower_pair(b0, b1)
                && (b1 != b'k' || len == 2)
                && (b1 != b't' || b0 != b'h' || t.get(end) == Some(&b':'));
            return pair || (is_hex(b0) && self.hexish(t, i, end));
        }
        if b0.is_ascii_digit() {
            // A short lone run (`200`, `4567,`) can be nothing: no separator
            // continues it and its length fits no detector.
            let after = t.get(end).copied().unwrap_or(b'\n');
            let continues = match after {
                b':' => true,
                b'-' | b'.' if self.hex_optional => true,
                b' ' | b'-' | b'.' | b'/' => t.get(end + 1).is_some_and(u8::is_ascii_digit),
                _ => false,
            };
            return continues || len == 9 || (12..=19).contains(&len) || (26..=35).contains(&len);
        }
        // Upper case: the prefixes and shapes `upper_word` looks for.
        let iban_shape = t.len() - i >= 15
            && b1.is_ascii_uppercase()
            && t[i + 2].is_ascii_digit()
            && t[i + 3].is_ascii_digit();
        let prefix = match b0 {
            // `AKIA` + 16 (exactly 20), `AIza`.
            b'A' => len == 20 || b1 == b'I',
            // `SG.`
            b'S' => b1 == b'G',
            // `Bearer `, `BC1`.
            b'B' => b1 == b'e' || b1 == b'C',
            // `TB1`.
            b'T' => b1 == b'B',
            // Base58 wallets (Litecoin, Dogecoin).
            b'L' | b'M' | b'D' => (26..=35).contains(&len),
            _ => false,
        };
        prefix || iban_shape || self.names_on || (is_hex(b0) && self.hexish(t, i, end))
    }

    /// A word starts at `i` and ends at `end` (alphanumeric run). Returns where
    /// scanning resumes.
    ///
    /// Out of line on purpose: most words never get here (`may_start` and
    /// `small_number` turn them away). Inlined into [`Scanner::run`], as the
    /// compiler chose once the scanner was split into files, it made the walk
    /// run about 9% more instructions and the throughput bench 3 to 8% slower.
    #[inline(never)]
    fn word(&self, t: &[u8], i: usize, end: usize, sink: &mut Sink) -> usize {
        let b0 = t[i];
        if b0.is_ascii_digit() {
            return self.number_word(t, i, end, sink);
        }
        if self.hexish(t, i, end)
            && is_hex(b0)
            && let Some(e) = self.hex_word(t, i, end, sink)
        {
            return e;
        }
        let found = if b0.is_ascii_uppercase() {
            self.upper_word(t, i, end, sink)
        } else {
            self.lower_word(t, i, end, &t[i..], sink)
        };
        found.unwrap_or(end)
    }

    /// Whether a word at `i..end` made of hex digits may start an IPv6
    /// address, a MAC address or a UUID, judging by its length and the byte
    /// after it.
    fn hexish(&self, t: &[u8], i: usize, end: usize) -> bool {
        match t.get(end) {
            Some(b':') => end - i <= 4 && self.hex_colon,
            Some(b'-' | b'.') => end - i <= 8 && self.hex_optional,
            _ => false,
        }
    }

    /// A word starting with a digit at `i` (alphanumeric up to `end`).
    fn number_word(&self, t: &[u8], i: usize, end: usize, sink: &mut Sink) -> usize {
        let len = end - i;
        let after = t.get(end).copied().unwrap_or(b'\n');
        // Timestamps (`2024-05-01T12:34:56.789Z`), the most common number in
        // logs, are recognised at fixed offsets and skipped as a unit. (With
        // UUID or MAC detection on, hex words are tried first, below.)
        if len == 4 && after == b'-' && !self.hex_optional {
            if !numeric_start_ok(t, i) {
                return end;
            }
            if let Some(e) = timestamp(t, i) {
                return e;
            }
        }
        // The most common number, a short lone run (`200`, `4567,`), can be
        // nothing: no separator continues it and its length fits no detector.
        let continues = match after {
            b':' => true,
            b'-' | b'.' if self.hex_optional => true,
            b' ' | b'-' | b'.' | b'/' => t.get(end + 1).is_some_and(u8::is_ascii_digit),
            _ => false,
        };
        if !continues && len != 9 && !(12..=19).contains(&len) && !(26..=35).contains(&len) {
            return end;
        }
        if len <= 2
            && after == b':'
            && let Some(e) = time_of_day(t, i)
        {
            return e;
        }
        if self.hexish(t, i, end)
            && let Some(e) = self.hex_word(t, i, end, sink)
        {
            return e;
        }
        if (26..=35).contains(&len)
            && let Some(e) = self.wallet_base58(t, i, end, sink)
        {
            return e;
        }
        self.numeric(t, i, sink).unwrap_or(end)
    }

    fn lower_word(
        &self,
        t: &[u8],
        i: usize,
        end: usize,
        rest: &[u8],
        sink: &mut Sink,
    ) -> Option<usize> {
        use Entity::*;
        // The second letter rules out almost every ordinary word at once.
        let pair = matches!(
            (rest[0], rest.get(1).copied().unwrap_or(0)),
            (b'g', b'h' | b'i' | b'l')
                | (b'x', b'o' | b'a')
                | (b's' | b'r', b'k')
                | (b'n', b'p')
                | (b'p', b'y')
                | (b'h', b'v' | b't' | b'o')
                | (b'e', b'y')
                | (b'b', b'c' | b'e')
                | (b't', b'b')
                | (b'l', b't')
        );
        if !pair {
            return None;
        }
        match rest[0] {
            b'g' => {
                if rest.len() > 4
                    && rest.starts_with(b"gh")
                    && rest[3] == b'_'
                    && matches!(rest[2], b'p' | b'o' | b's' | b'u' | b'r')
                {
                    return sink.prefixed(t, i, 4, GithubToken, is_alnum, 36);
                }
                if rest.starts_with(b"github_pat_") {
                    return sink.prefixed(t, i, 11, GithubToken, is_word, 40);
                }
                if rest.starts_with(b"glpat-") {
                    return sink.prefixed(t, i, 6, GitlabToken, is_token_char, 20);
                }
            }
            b'x' => {
                if rest.len() > 5
                    && rest.starts_with(b"xox")
                    && rest[4] == b'-'
                    && matches!(rest[3], b'a' | b'b' | b'p' | b'o' | b's' | b'r' | b'e')
                {
                    return sink.prefixed(t, i, 5, SlackToken, is_alnum_dash, 10);
                }
                if rest.starts_with(b"xapp-") {
                    return sink.prefixed(t, i, 5, SlackToken, is_alnum_dash, 10);
                }
            }
            b's' => {
                if rest.starts_with(b"sk_live_") {
                    return sink.prefixed(t, i, 8, StripeKey, is_alnum, 20);
                }
                if rest.starts_with(b"sk-ant-") {
                    return sink.prefixed(t, i, 7, AnthropicKey, is_token_char, 20);
                }
                if rest.starts_with(b"sk-") {
                    return sink.prefixed(t, i, 3, OpenaiKey, is_token_char, 20);
                }
            }
            b'r' if rest.starts_with(b"rk_live_") => {
                return sink.prefixed(t, i, 8, StripeKey, is_alnum, 20);
            }
            b'n' if rest.starts_with(b"npm_") => {
                return sink.prefixed(t, i, 4, NpmToken, is_alnum, 36);
            }
            b'p' if rest.starts_with(b"pypi-") => {
                return sink.prefixed(t, i, 5, PypiToken, is_token_char, 50);
            }
            b'h' => {
                if rest.starts_with(b"hvs.") || rest.starts_with(b"hvb.") {
                    return sink.prefixed(t, i, 4, VaultToken, is_token_char, 24);
                }
                if rest.starts_with(b"http") {
                    return self.slack_webhook(t, i, sink);
                }
                if rest.starts_with(b"hooks.slack.com/") {
                    return self.slack_webhook(t, i, sink);
                }
            }
            b'e' if rest.starts_with(b"eyJ") => return self.jwt(t, i, sink),
            b'b' => {
                if rest.starts_with(b"bc1") {
                    return self.wallet_bech32(t, i, end, sink);
                }
                if rest.starts_with(b"bearer ") {
                    return self.bare_bearer(t, i, sink);
                }
            }
            b't' if rest.starts_with(b"tb1") => return self.wallet_bech32(t, i, end, sink),
            b'l' if rest.starts_with(b"ltc1") => return self.wallet_bech32(t, i, end, sink),
            _ => {}
        }
        None
    }

    fn upper_word(&self, t: &[u8], i: usize, end: usize, sink: &mut Sink) -> Option<usize> {
        use Entity::*;
        let rest = &t[i..];
        let iban_shape = rest.len() >= 15
            && rest[1].is_ascii_uppercase()
            && rest[2].is_ascii_digit()
            && rest[3].is_ascii_digit();
        if !iban_shape
            && !self.names_on
            && !matches!(rest[0], b'A' | b'S' | b'B' | b'T' | b'L' | b'M' | b'D')
        {
            return None;
        }
        if rest.len() >= 20
            && rest[0] == b'A'
            && is_aws_prefix(&rest[..4])
            && let Some(e) = sink.exact(t, i, 4, AwsAccessKey, is_base32_upper, 16)
        {
            return Some(e);
        }
        if rest.starts_with(b"AIza")
            && let Some(e) = sink.prefixed(t, i, 4, GoogleApiKey, is_token_char, 35)
        {
            return Some(e);
        }
        if rest.starts_with(b"SG.")
            && let Some(e) = self.sendgrid(t, i, sink)
        {
            return Some(e);
        }
        if rest.starts_with(b"Bearer ")
            && let Some(e) = self.bare_bearer(t, i, sink)
        {
            return Some(e);
        }
        if (rest.starts_with(b"BC1") || rest.starts_with(b"TB1"))
            && let Some(e) = self.wallet_bech32(t, i, end, sink)
        {
            return Some(e);
        }
        if rest.len() >= 15
            && rest[1].is_ascii_uppercase()
            && rest[2].is_ascii_digit()
            && rest[3].is_ascii_digit()
            && sink.wants(Iban)
            && let Some(e) = self.iban(t, i, sink)
        {
            return Some(e);
        }
        if matches!(rest[0], b'L' | b'M' | b'D')
            && let Some(e) = self.wallet_base58(t, i, end, sink)
        {
            return Some(e);
        }
        if sink.wants(PersonName) {
            return self.person_name(t, i, end, sink);
        }
        None
    }

    fn punct(&self, t: &[u8], i: usize, sink: &mut Sink) -> usize {
        match t[i] {
            b'@' => self.email(t, i, sink),
            b'=' => self.key_value(t, i, sink),
            b':' => {
                if t[i + 1..].starts_with(b"//") {
                    self.url_credentials(t, i, sink);
                    i + 3
                } else if t.get(i + 1) == Some(&b':') {
                    let prev_ok = i == 0 || !is_ipv6_char(t[i - 1]);
                    if prev_ok
                        && self.detect.contains(Entity::Ip)
                        && let Some(e) = self.ipv6(t, i, sink)
                    {
                        return e;
                    }
                    i + 2
                } else {
                    self.key_value(t, i, sink)
                }
            }
            b'+' => self.phone_international(t, i, sink).unwrap_or(i + 1),
            b'(' => self.phone_paren(t, i, sink).unwrap_or(i + 1),
            b'-' if t.get(i + 1) == Some(&b'-') => self.pem(t, i, sink).unwrap_or(i + 1),
            _ => i + 1,
        }
    }
}

/// Whether a lowercase word starting with `b0 b1` may start a detector:
/// `gh gi gl` (GitHub, GitLab), `xo xa` (Slack), `sk rk` (Stripe, OpenAI,
/// Anthropic), `np` (npm), `py` (PyPI), `hv ht ho` (Vault, Slack webhooks),
/// `ey` (JWT), `bc be tb lt` (Bech32, bearer). One table lookup per word.
fn lower_pair(b0: u8, b1: u8) -> bool {
    b1.is_ascii_lowercase() && PAIRS[usize::from(b0 - b'a')] & (1 << (b1 - b'a')) != 0
}

static PAIRS: [u32; 26] = {
    let mut table = [0u32; 26];
    let pairs: [&[u8; 2]; 17] = [
        b"gh", b"gi", b"gl", b"xo", b"xa", b"sk", b"rk", b"np", b"py", b"hv", b"ht", b"ho", b"ey",
        b"bc", b"be", b"tb", b"lt",
    ];
    let mut i = 0;
    while i < pairs.len() {
        let p = pairs[i];
        table[(p[0] - b'a') as usize] |= 1 << (p[1] - b'a');
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScanConfig;

    /// Where `small_number` ends the word at `start`, if it takes it: always
    /// where the full word reader ends it, and with nothing found.
    fn small_number_agrees(scanner: &Scanner, t: &[u8], start: usize, end: usize) -> Option<usize> {
        let e = scanner.small_number(t, start, end)?;
        let text = String::from_utf8_lossy(t);
        let mut sink = Sink::new(scanner.detect, false);
        let w = scanner.word(t, start, end, &mut sink);
        assert!(sink.found.is_empty(), "{text:?}");
        assert_eq!(e, w.max(end), "{text:?}");
        Some(e)
    }

    #[test]
    fn small_numbers_resume_where_the_number_reader_does() {
        let scanners = [
            ScanConfig::new().build(),
            ScanConfig::new().enable(Entity::DateOfBirth).build(),
        ];
        let pres = ["", " ", "x", ".", "a.", "+", "-", "a-", "$", "_"];
        let groups = [
            "1",
            "12",
            "123",
            "1234",
            "0",
            "00",
            "255",
            "256",
            "12345",
            "1234567",
            "2521ms",
            "13f6",
            "1a2b",
            "2001",
            "12345678",
            "200",
            "0151",
            "45",
            "6789",
            "555",
            "2671",
            "1727884813914",
            "4222222222222",
            "1234567890123",
            "123456789",
            "078",
            "05",
            "1120",
            "415",
            "020",
            "7946",
            "0958",
            "1984",
            "03",
            "07",
        ];
        let seps = [
            " ", "-", ".", "/", ":", "::", "_", "a", "..", ". ", " x", "", "ms", ",", "-a",
        ];
        // A small linear congruential generator: reproducible, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut pick = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        // Shapes that only just miss or only just make a detector.
        let directed = [
            "555-45-1234 x",
            "555 45 1234",
            "415 555 2671",
            "415-555-2671.",
            "020 7946 0958",
            "030 12345678",
            "089/1234567",
            "12 123456789",
            "5686 200 67.85ms",
            "12465 200 461.293ms",
            "1984-03-07",
            "07/03/1984 ",
            "01 23 45 67 89",
            "dob 1984-12-17",
            "born 17.12.1984",
            "birthday 17/12/1984",
        ];
        for text in directed {
            let t = text.as_bytes();
            let start = t.iter().position(u8::is_ascii_digit).unwrap_or(0);
            let end = word_end(t, start);
            for scanner in &scanners {
                small_number_agrees(scanner, t, start, end);
            }
        }
        let mut checked = 0;
        for _ in 0..200_000 {
            let mut text = String::from(pres[pick(pres.len())]);
            let start = text.len();
            for _ in 0..1 + pick(5) {
                text.push_str(groups[pick(groups.len())]);
                text.push_str(seps[pick(seps.len())]);
            }
            let t = text.as_bytes();
            if start > 0 && is_alnum(t[start - 1]) {
                continue;
            }
            let end = word_end(t, start);
            for scanner in &scanners {
                if let Some(e) = small_number_agrees(scanner, t, start, end) {
                    // The main loop resumes there without looking for the
                    // rest of a word.
                    assert!(!t.get(e).copied().is_some_and(is_alnum), "{text:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 50_000, "{checked}");
    }
}
