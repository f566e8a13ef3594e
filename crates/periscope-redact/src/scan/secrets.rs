//! Detectors for secrets: everything in the `secret` tier.
//!
//! * Private keys: PEM blocks, which the line redactor also follows across
//!   lines through [`pem_unterminated`] and [`pem_end`].
//! * Provider tokens known by their prefix (GitHub, GitLab, Slack, Stripe,
//!   OpenAI, Anthropic, npm, PyPI, Vault, Google, AWS): the walk matches the
//!   prefix and [`Sink::prefixed`] or [`Sink::exact`] reads the rest; JWTs,
//!   SendGrid keys and Slack webhook URLs have readers of their own.
//! * Credentials by context: the value of a key named like a secret
//!   (`password=...`, `"api_key": "..."`), `Authorization` values and bare
//!   `Bearer` credentials, and the `user:password` of a URL.
//!
//! Cut here because the key-value detectors share the key reader and its
//! letter-set gate ([`key_before`], [`key_gate`]), the fastest-moving part of
//! the scanner after the walk, and because these are the values that stay
//! masked even under a grant.

use super::Scanner;
use super::bytes::{
    is_alnum, is_alnum_dash, is_b64url, is_key_char, is_token_char, is_token68, run_end,
};
use super::sink::Sink;
use crate::Entity;
use crate::classify::is_secret_name;

impl Scanner {
    #[inline(never)]
    pub(super) fn pem(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        if !t[i..].starts_with(b"-----BEGIN ") || !sink.wants(Entity::PrivateKey) {
            return None;
        }
        let close = pem_label(t, i + 11)?;
        let label = &t[i + 11..close];
        if !label.ends_with(b"PRIVATE KEY") {
            return None;
        }
        let body = close + 5;
        let end = match memchr::memmem::find(&t[body..], b"-----END ") {
            Some(off) => {
                let end_label = body + off + 9;
                match pem_label(t, end_label) {
                    Some(c) => c + 5,
                    None => t.len(),
                }
            }
            None => t.len(),
        };
        sink.push(Entity::PrivateKey, i, end);
        Some(end)
    }

    pub(super) fn jwt(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        if !sink.wants(Entity::Jwt) {
            return None;
        }
        let seg1 = run_end(t, i, is_b64url);
        if seg1 - i < 10 || t.get(seg1) != Some(&b'.') {
            return None;
        }
        let seg2 = run_end(t, seg1 + 1, is_b64url);
        if seg2 - seg1 - 1 < 8 || t.get(seg2) != Some(&b'.') {
            return None;
        }
        let seg3 = run_end(t, seg2 + 1, is_b64url);
        sink.push(Entity::Jwt, i, seg3);
        Some(seg3)
    }

    pub(super) fn sendgrid(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        if !sink.wants(Entity::SendgridKey) {
            return None;
        }
        let a = run_end(t, i + 3, is_token_char);
        if a - i - 3 < 16 || t.get(a) != Some(&b'.') {
            return None;
        }
        let b = run_end(t, a + 1, is_token_char);
        if b - a - 1 < 16 {
            return None;
        }
        sink.push(Entity::SendgridKey, i, b);
        Some(b)
    }

    pub(super) fn slack_webhook(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        if !sink.wants(Entity::SlackWebhook) {
            return None;
        }
        let rest = &t[i..];
        let host_at = if rest.starts_with(b"https://") {
            8
        } else if rest.starts_with(b"http://") {
            7
        } else {
            0
        };
        let after_host = &rest[host_at..];
        if !after_host.starts_with(b"hooks.slack.com/") {
            return None;
        }
        let path = &after_host[16..];
        let kind_len = [&b"services/"[..], b"workflows/", b"triggers/"]
            .iter()
            .find(|k| path.starts_with(k))?
            .len();
        let start = i + host_at + 16 + kind_len;
        let end = run_end(t, start, |b| {
            is_alnum(b) || b == b'/' || b == b'_' || b == b'-'
        });
        if end - start < 20 {
            return None;
        }
        sink.push(Entity::SlackWebhook, i, end);
        Some(end)
    }

    /// `Bearer <credential>` outside a header line (curl commands, stack traces).
    pub(super) fn bare_bearer(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
        if !sink.wants(Entity::AuthHeader) {
            return None;
        }
        let start = i + 7;
        let end = run_end(t, start, is_token68);
        let cred = &t[start..end];
        if cred.len() < 16 || !cred.iter().any(u8::is_ascii_digit) {
            return None;
        }
        sink.push(Entity::AuthHeader, start, end);
        // Keep scanning inside: a JWT or a known token there is more specific.
        Some(start)
    }

    /// `key=value` / `key: value` / `"key": "value"` where the key is named like a
    /// secret, and `Authorization: <scheme> <credential>`.
    #[inline(always)]
    pub(super) fn key_value(&self, t: &[u8], sep: usize, sink: &mut Sink) -> usize {
        let next = sep + 1;
        // `12:34:56`, `host:5432`: keys do not end in a digit before a colon.
        if t[sep] == b':' && sep > 0 && t[sep - 1].is_ascii_digit() {
            return next;
        }
        if !(sink.wants(Entity::Secret) || sink.wants(Entity::AuthHeader)) {
            return next;
        }
        let Some((ks, ke)) = key_before(t, sep) else {
            return next;
        };
        self.key_value_at(t, sep, ks, ke, sink);
        next
    }

    /// The rest of [`Scanner::key_value`] once the key at `ks..ke` has the
    /// letters of a secret stem (rare: out of line).
    #[inline(never)]
    fn key_value_at(&self, t: &[u8], sep: usize, ks: usize, ke: usize, sink: &mut Sink) {
        let next = sep + 1;
        let key = &t[ks..ke];
        if !key_gate(key) {
            return;
        }
        // Safe: key bytes are ASCII by construction.
        let key_str = std::str::from_utf8(key).unwrap_or("");
        let Some((vs, quoted)) = value_start(t, next) else {
            return;
        };
        let is_auth = is_authorization_key(key);
        if is_auth && sink.wants(Entity::AuthHeader) {
            if let Some((cs, ce)) = auth_credential(t, vs, quoted) {
                sink.push(Entity::AuthHeader, cs, ce);
            }
            return;
        }
        if !is_auth && sink.wants(Entity::Secret) && is_secret_name(key_str) {
            let ve = value_end(t, vs, quoted);
            let value = &t[vs..ve];
            // `password= user=bob`: the value is empty, `user=bob` is the next pair.
            let next_pair = !quoted && vs > next && looks_like_pair(value);
            if !next_pair && !is_placeholder_value(value) {
                sink.push(Entity::Secret, vs, ve);
            }
        }
    }

    #[inline(never)]
    pub(super) fn url_credentials(&self, t: &[u8], colon: usize, sink: &mut Sink) {
        if !sink.wants(Entity::UrlCredentials) {
            return;
        }
        // Scheme: letters, digits, `+ . -`, starting with a letter.
        let mut s = colon;
        while s > 0 && (is_alnum(t[s - 1]) || matches!(t[s - 1], b'+' | b'.' | b'-')) {
            s -= 1;
        }
        if colon - s < 2 || !t[s].is_ascii_alphabetic() {
            return;
        }
        let start = colon + 3;
        let limit = t.len().min(start + 512);
        let stop = start
            + t[start..limit]
                .iter()
                .position(|&b| {
                    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`')
                })
                .unwrap_or(limit - start);
        let run = &t[start..stop];
        // `user:pass@host`: the colon must come before any slash, so that a
        // path or query such as `/search?q=a:b@c` is not read as credentials.
        // Passwords may contain `@ / # ?`: the last `@` that fits wins.
        let Some(colon_in) = memchr::memchr(b':', run) else {
            return;
        };
        if colon_in == 0 || run[..colon_in].contains(&b'/') {
            return;
        }
        let Some(at_in) = memchr::memrchr(b'@', run) else {
            return;
        };
        if at_in <= colon_in + 1 || !run.get(at_in + 1).copied().is_some_and(is_alnum) {
            return;
        }
        let at = start + at_in;
        sink.push(Entity::UrlCredentials, start, at);
    }
}

/// The two shapes of provider tokens: a known prefix, which the walk has
/// matched, then a run of the token's characters.
impl Sink {
    /// `prefix` (already checked, `plen` bytes) followed by at least `min`
    /// characters of `class`.
    pub(super) fn prefixed(
        &mut self,
        t: &[u8],
        i: usize,
        plen: usize,
        entity: Entity,
        class: fn(u8) -> bool,
        min: usize,
    ) -> Option<usize> {
        if !self.wants(entity) {
            return None;
        }
        let mut end = run_end(t, i + plen, class);
        // Tokens do not end in punctuation: `token.` ends a sentence.
        while end > i + plen && matches!(t[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if end - i - plen < min {
            return None;
        }
        self.push(entity, i, end);
        Some(end)
    }

    /// Exactly `len` characters of `class` after the prefix, then a boundary.
    pub(super) fn exact(
        &mut self,
        t: &[u8],
        i: usize,
        plen: usize,
        entity: Entity,
        class: fn(u8) -> bool,
        len: usize,
    ) -> Option<usize> {
        if !self.wants(entity) {
            return None;
        }
        let end = run_end(t, i + plen, class);
        if end - i - plen != len || t.get(end).copied().is_some_and(is_alnum) {
            return None;
        }
        self.push(entity, i, end);
        Some(end)
    }
}

/// Four-letter prefixes of AWS access key ids (`AKIA` long-term, `ASIA` STS...).
pub(super) fn is_aws_prefix(p: &[u8]) -> bool {
    matches!(
        p,
        b"AKIA"
            | b"ASIA"
            | b"AGPA"
            | b"AIDA"
            | b"AROA"
            | b"AIPA"
            | b"ANPA"
            | b"ANVA"
            | b"ABIA"
            | b"ACCA"
    )
}

/// Where a PEM label (`RSA PRIVATE KEY`) that starts at `from` is closed by `-----`.
fn pem_label(t: &[u8], from: usize) -> Option<usize> {
    let limit = t.len().min(from + 64);
    let mut j = from;
    while j < limit && (t[j].is_ascii_uppercase() || t[j] == b' ' || t[j].is_ascii_digit()) {
        j += 1;
    }
    t[j..].starts_with(b"-----").then_some(j)
}

/// Whether `text` opens a PEM private key block that it does not close; the line
/// redactor then masks the following lines until the `-----END` line.
pub(crate) fn pem_unterminated(text: &str) -> bool {
    let t = text.as_bytes();
    let mut from = 0;
    let mut open = false;
    while let Some(off) = memchr::memmem::find(&t[from..], b"-----") {
        let at = from + off;
        if t[at..].starts_with(b"-----BEGIN ") {
            if let Some(close) = pem_label(t, at + 11) {
                if t[at + 11..close].ends_with(b"PRIVATE KEY") {
                    open = true;
                }
                from = close + 5;
                continue;
            }
        } else if t[at..].starts_with(b"-----END ") {
            open = false;
        }
        from = at + 5;
    }
    open
}

/// The end of a PEM `-----END ... PRIVATE KEY-----` marker in `text`, if any.
pub(crate) fn pem_end(text: &str) -> Option<usize> {
    let t = text.as_bytes();
    let at = memchr::memmem::find(t, b"-----END ")?;
    pem_label(t, at + 9).map(|c| c + 5)
}

/// The key before a `=` or `:` at `sep`, skipping spaces and closing quotes:
/// `password=`, `"password": `, `\"password\":`.
#[inline(always)]
fn key_before(t: &[u8], sep: usize) -> Option<(usize, usize)> {
    let head = &t[..sep];
    let mut ke = sep;
    let skip_to = sep.saturating_sub(6);
    // Most keys end at the separator (`job=`) or one quote before it.
    if !is_key_char(head.last().copied().unwrap_or(b'=')) {
        while ke > skip_to && matches!(head[ke - 1], b' ' | b'\t' | b'"' | b'\'' | b'\\') {
            ke -= 1;
        }
    }
    // Letters seen in the key, one bit per letter: a key without the letters
    // of any secret stem is rejected here, before any comparison. A key is at
    // most 64 bytes: the window holds one more to tell a longer run apart.
    let lo = ke.saturating_sub(65);
    let mut letters = 0u32;
    let mut len = 0;
    for &b in head[lo..ke].iter().rev() {
        let bits = KEY_BYTES[usize::from(b)];
        if bits == 0 {
            break;
        }
        letters |= bits;
        len += 1;
    }
    let ks = ke - len;
    // Every stem has a `p`, `c`, `k` or `h`: most keys are turned away by that
    // one test before the full comparison.
    if ks == ke
        || ke - ks > 64
        || letters & ANY_STEM == 0
        || !STEM_LETTERS.iter().any(|&stem| has_all(letters, stem))
    {
        return None;
    }
    Some((ks, ke))
}

/// For each byte that may appear in a key name: bit 31 set, plus the bit of
/// its letter (case-folded) if it is one; zero for every other byte.
static KEY_BYTES: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'$') {
            table[b] = 1 << 31;
            if c.is_ascii_alphabetic() {
                table[b] |= 1 << ((c | 0x20) - b'a');
            }
        }
        b += 1;
    }
    table
};

/// The letters of each stem `key_gate` looks for, as bit sets.
const STEM_LETTERS: [u32; 8] = [
    letters(b"pas"),
    letters(b"pwd"),
    letters(b"secret"),
    letters(b"token"),
    letters(b"key"),
    letters(b"auth"),
    letters(b"cred"),
    letters(b"cookie"),
];

/// Letters of which every stem in [`STEM_LETTERS`] has at least one.
const ANY_STEM: u32 = letters(b"pckh");

// Checked when compiling: a stem without any of them would be turned away.
const _: () = {
    let mut k = 0;
    while k < STEM_LETTERS.len() {
        assert!(STEM_LETTERS[k] & ANY_STEM != 0);
        k += 1;
    }
};

fn has_all(letters: u32, stem: u32) -> bool {
    letters & stem == stem
}

const fn letters(word: &[u8]) -> u32 {
    let mut m = 0;
    let mut i = 0;
    while i < word.len() {
        m |= 1 << (word[i] - b'a');
        i += 1;
    }
    m
}

/// A cheap filter before the full name rules: every secret-like name contains
/// one of these stems. One pass over the key: each window of three bytes,
/// case-folded, is compared with the stems' first three letters, and only a
/// hit is compared in full.
///
/// `key` at the very start of a key made only of letters and digits (`keys`,
/// `keyspace`) is not counted: such a name is lowercased as it is, so no
/// secret stem or word can contain that `key` (they would need letters before
/// it), and a trailing `key` word needs a qualifier before it. Cache stats
/// (`keys=51942`) are common in logs and would otherwise reach the full rules.
fn key_gate(key: &[u8]) -> bool {
    const fn head(stem: &[u8]) -> u32 {
        stem[0] as u32 | (stem[1] as u32) << 8 | (stem[2] as u32) << 16
    }
    const PASS: u32 = head(b"pass");
    const PWD: u32 = head(b"pwd");
    const SECRET: u32 = head(b"secret");
    const TOKEN: u32 = head(b"token");
    const KEY: u32 = head(b"key");
    const AUTH: u32 = head(b"auth");
    const CRED: u32 = head(b"cred");
    const COOKIE: u32 = head(b"cookie");
    let plain = key.iter().all(u8::is_ascii_alphanumeric);
    key.windows(3).enumerate().any(|(i, w)| {
        // `| 0x20` lowercases letters and turns no other key byte (digits,
        // `_ - . $`) into a letter, so only letters can match a stem's head.
        let folded = (u32::from(w[0]) | u32::from(w[1]) << 8 | u32::from(w[2]) << 16) | 0x20_2020;
        let stem: &[u8] = match folded {
            PASS => b"pass",
            PWD => b"pwd",
            SECRET => b"secret",
            TOKEN => b"token",
            KEY if i > 0 || !plain => b"key",
            AUTH => b"auth",
            CRED => b"cred",
            COOKIE => b"cookie",
            _ => return false,
        };
        key[i..].len() >= stem.len() && key[i..i + stem.len()].eq_ignore_ascii_case(stem)
    })
}

fn is_authorization_key(key: &[u8]) -> bool {
    key.len() >= 13 && key[key.len() - 13..].eq_ignore_ascii_case(b"authorization")
}

/// Where a value starts after a separator, and whether it is quoted.
fn value_start(t: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut j = from;
    if t.get(j) == Some(&b'>') {
        j += 1; // `key => value`
    }
    let mut spaces = 0;
    while j < t.len() && spaces < 8 && matches!(t[j], b' ' | b'\t') {
        j += 1;
        spaces += 1;
    }
    let mut quoted = false;
    let mut quotes = 0;
    while j < t.len() && quotes < 3 && matches!(t[j], b'"' | b'\'' | b'\\') {
        quoted |= t[j] != b'\\';
        j += 1;
        quotes += 1;
    }
    if j >= t.len() || matches!(t[j], b'\n' | b'\r') {
        return None;
    }
    Some((j, quoted))
}

fn value_end(t: &[u8], vs: usize, quoted: bool) -> usize {
    if quoted {
        let limit = t.len().min(vs + 4096);
        if let Some(off) = t[vs..limit]
            .iter()
            .position(|&b| matches!(b, b'"' | b'\'' | b'\\' | b'\n' | b'\r'))
        {
            return vs + off;
        }
    }
    let limit = t.len().min(vs + 1024);
    let mut j = vs;
    while j < limit {
        let b = t[j];
        let ends = b.is_ascii_whitespace()
            || matches!(b, b'&' | b',' | b';' | b'"' | b'\'' | b'\\' | b'|')
            // Closing brackets end `User(password=x)` but may start a password.
            || (j > vs && matches!(b, b'<' | b'>' | b')' | b']' | b'}'));
        if ends {
            break;
        }
        j += 1;
    }
    j
}

/// `key=...` or `key:...`: the start of another pair, not a value.
fn looks_like_pair(v: &[u8]) -> bool {
    let k = run_end(v, 0, is_key_char);
    k > 0 && matches!(v.get(k), Some(b'=' | b':')) && !matches!(v.get(k + 1), Some(b'=') | None)
}

/// Values that are not secrets even under a secret-named key: empty, null-ish,
/// booleans, and values that are already masked (`[secret]`, `***`).
fn is_placeholder_value(v: &[u8]) -> bool {
    if v.is_empty() || v.iter().all(|&b| b == b'*') || matches!(v[0], b'[' | b'{' | b'<') {
        return true;
    }
    const WORDS: &[&[u8]] = &[
        b"null",
        b"none",
        b"nil",
        b"true",
        b"false",
        b"undefined",
        b"redacted",
    ];
    WORDS.iter().any(|w| v.eq_ignore_ascii_case(w))
}

/// The credential of an `Authorization` value: what follows the scheme.
fn auth_credential(t: &[u8], vs: usize, quoted: bool) -> Option<(usize, usize)> {
    let scheme_end = run_end(t, vs, is_alnum_dash);
    let scheme = &t[vs..scheme_end];
    const SCHEMES: &[&[u8]] = &[
        b"bearer",
        b"basic",
        b"token",
        b"digest",
        b"negotiate",
        b"ntlm",
        b"bot",
        b"apikey",
        b"aws4-hmac-sha256",
        b"hmac",
    ];
    let known = SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s));
    let (cs, ce) = if known && t.get(scheme_end) == Some(&b' ') {
        let cs = run_end(t, scheme_end, |b| b == b' ');
        let ce = if scheme.eq_ignore_ascii_case(b"digest") || scheme.len() > 10 {
            run_end(t, cs, |b| {
                !(matches!(b, b'\n' | b'\r') || (quoted && b == b'"'))
            })
        } else {
            run_end(t, cs, is_token68)
        };
        (cs, ce)
    } else {
        (vs, value_end(t, vs, quoted))
    };
    (ce > cs && !is_placeholder_value(&t[cs..ce])).then_some((cs, ce))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `key_gate` as it was written before its three-byte windows.
    fn key_gate_by_bytes(key: &[u8]) -> bool {
        if key.len() < 3 {
            return false;
        }
        let starts = |rest: &[u8], stem: &[u8]| {
            rest.len() >= stem.len() && rest[..stem.len()].eq_ignore_ascii_case(stem)
        };
        let plain = key.iter().all(u8::is_ascii_alphanumeric);
        (0..key.len() - 2).any(|i| {
            let rest = &key[i..];
            match rest[0] | 0x20 {
                b'p' => starts(rest, b"pass") || starts(rest, b"pwd"),
                b's' => starts(rest, b"secret"),
                b't' => starts(rest, b"token"),
                b'k' => (i > 0 || !plain) && starts(rest, b"key"),
                b'a' => starts(rest, b"auth"),
                b'c' => starts(rest, b"cred") || starts(rest, b"cookie"),
                _ => false,
            }
        })
    }

    #[test]
    fn key_gate_agrees_with_the_byte_by_byte_gate() {
        let parts = [
            "", "pass", "PaSs", "pas", "pwd", "PWD", "secret", "SECRE", "token", "toke", "key",
            "KEY", "ke", "auth", "aut", "cred", "CRE", "cookie", "cooki", "_", "-", ".", "$", "x",
            "api", "s", "9", "@", "[", "^",
        ];
        for a in parts {
            for b in parts {
                for c in parts {
                    let name = format!("{a}{b}{c}");
                    assert_eq!(
                        key_gate(name.as_bytes()),
                        key_gate_by_bytes(name.as_bytes()),
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn key_gate_turns_away_only_names_the_full_rules_reject() {
        let heads = ["key", "Key", "KEY", "keys", "kEy"];
        let tails = [
            "", "s", "space", "word", "Id", "id", "count", "Token", "token", "Pass", "pass",
            "secret", "Secret", "apikey", "Key", "auth", "cred", "cookie", "pwd", "2", "_x",
            "-token", ".secret", "$key", "_key", "tok_en",
        ];
        for head in heads {
            for tail in tails {
                let name = format!("{head}{tail}");
                if !key_gate(name.as_bytes()) {
                    assert!(!is_secret_name(&name), "{name}");
                }
            }
        }
        assert!(!key_gate(b"keys"));
        assert!(key_gate(b"api_key") && key_gate(b"key_token") && key_gate(b"keyToken"));
    }
}
