//! Masking operators and the [`Masker`] that applies them.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::{Entity, Scanner};

type HmacSha256 = hmac::Hmac<Sha256>;

/// How a sensitive value is rendered, chosen per entity by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Operator {
    /// A typed placeholder such as `[email]`: the reader knows what was there.
    #[default]
    Redact,
    /// Keep a harmless part: last four digits of a card, the domain of an email.
    Partial,
    /// A deterministic keyed token such as `[email:tok_3f9a1c2b7d4e]`, so equal
    /// values can still be correlated and joined without being seen.
    Token,
    /// Remove the value entirely.
    Drop,
}

impl Operator {
    /// Every operator.
    pub const ALL: [Operator; 4] = [
        Operator::Redact,
        Operator::Partial,
        Operator::Token,
        Operator::Drop,
    ];

    /// The stable lowercase name used in config and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Operator::Redact => "redact",
            Operator::Partial => "partial",
            Operator::Token => "token",
            Operator::Drop => "drop",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an operator; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operator `{0}` (known: redact, partial, token, drop)")]
pub struct UnknownOperator(pub String);

impl FromStr for Operator {
    type Err = UnknownOperator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operator::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| UnknownOperator(s.to_string()))
    }
}

/// The per-deployment key of the `token` operator (32 bytes, HMAC-SHA-256).
///
/// Tokens are keyed so that nobody can confirm a guess ("is this token the
/// email alice@example.com?") by hashing candidates; an unkeyed hash of a card
/// number or an email is trivially reversible by enumeration.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// Wraps 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> TokenKey {
        TokenKey(bytes)
    }

    /// Parses 64 hexadecimal characters (surrounding whitespace ignored), the
    /// format of key files.
    pub fn from_hex(text: &str) -> Result<TokenKey, MaskError> {
        let text = text.trim();
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(MaskError::BadTokenKey(format!(
                "expected 64 hex characters, found {}",
                bytes.len()
            )));
        }
        let mut key = [0u8; 32];
        for (slot, pair) in key.iter_mut().zip(bytes.chunks(2)) {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(hi), Some(lo)) => *slot = hi << 4 | lo,
                _ => {
                    return Err(MaskError::BadTokenKey(
                        "not hexadecimal (expected 0-9, a-f)".to_string(),
                    ));
                }
            }
        }
        Ok(TokenKey(key))
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// Errors building a [`Masker`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// The `token` operator was chosen for an entity but no key was given.
    #[error("the token operator is set for `{0}` but no token key was configured")]
    MissingTokenKey(Entity),
    /// A token key could not be read.
    #[error("invalid token key: {0}")]
    BadTokenKey(String),
}

/// How many values of each entity were masked; indexed by [`Entity::index`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Counts([u32; Entity::COUNT]);

impl Default for Counts {
    fn default() -> Self {
        Counts([0; Entity::COUNT])
    }
}

impl Counts {
    /// The count for one entity.
    pub fn get(&self, entity: Entity) -> u32 {
        self.0[entity.index()]
    }

    /// Adds one finding of `entity`.
    pub fn add(&mut self, entity: Entity) {
        self.0[entity.index()] = self.0[entity.index()].saturating_add(1);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    /// What was added since `earlier`, a copy of these counts taken before:
    /// lets a caller learn what one call added to a running tally without
    /// a tally of its own per call.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let mut added = *self;
        for (a, b) in added.0.iter_mut().zip(earlier.0) {
            *a = a.saturating_sub(b);
        }
        added
    }

    /// The sum over all entities.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&c| u64::from(c)).sum()
    }

    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&c| c == 0)
    }

    /// The non-zero counts, in [`Entity::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Entity, u32)> + '_ {
        Entity::ALL
            .iter()
            .map(|&e| (e, self.get(e)))
            .filter(|&(_, c)| c > 0)
    }
}

impl fmt::Debug for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The result of [`Masker::mask_str`]: the text (borrowed when nothing was
/// found, so the common case allocates nothing) and what was masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked<'a> {
    /// The masked text.
    pub text: Cow<'a, str>,
    /// Findings masked, per entity.
    pub counts: Counts,
}

/// Applies per-entity operators to what a [`Scanner`] finds. Built once, shared.
#[derive(Clone)]
pub struct Masker {
    scanner: Scanner,
    ops: [Operator; Entity::COUNT],
    /// HMAC state already keyed, cloned per token (saves re-keying each time).
    keyed: Option<HmacSha256>,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("scanner", &self.scanner)
            .field("ops", &self.ops)
            .field("token_key", &self.keyed.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Masker {
    /// A masker that redacts every entity with a typed placeholder.
    pub fn new(scanner: Scanner) -> Masker {
        Masker {
            scanner,
            ops: [Operator::Redact; Entity::COUNT],
            keyed: None,
        }
    }

    /// Sets the operator of one entity. `Token` needs a key, see
    /// [`Masker::with_token_key`] and [`Masker::check`].
    pub fn with_operator(mut self, entity: Entity, op: Operator) -> Masker {
        self.ops[entity.index()] = op;
        self
    }

    /// Sets the per-deployment key used by the `token` operator.
    pub fn with_token_key(mut self, key: &TokenKey) -> Masker {
        // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
        self.keyed = HmacSha256::new_from_slice(&key.0).ok();
        self
    }

    /// Fails when an entity uses `token` without a key; call it after building.
    pub fn check(self) -> Result<Masker, MaskError> {
        if self.keyed.is_none()
            && let Some(&e) = Entity::ALL
                .iter()
                .find(|e| self.ops[e.index()] == Operator::Token)
        {
            return Err(MaskError::MissingTokenKey(e));
        }
        Ok(self)
    }

    /// The operator applied to `entity`.
    pub fn operator(&self, entity: Entity) -> Operator {
        self.ops[entity.index()]
    }

    /// The scanner used to find values.
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// Masks every finding in `text`. Borrows when nothing is found.
    pub fn mask_str<'a>(&self, text: &'a str) -> Masked<'a> {
        let findings = self.scanner.scan(text);
        let mut counts = Counts::default();
        if findings.is_empty() {
            return Masked {
                text: Cow::Borrowed(text),
                counts,
            };
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for f in &findings {
            out.push_str(&text[last..f.span.start]);
            self.render(f.entity, &text[f.span.clone()], &mut out);
            counts.add(f.entity);
            last = f.span.end;
        }
        out.push_str(&text[last..]);
        Masked {
            text: Cow::Owned(out),
            counts,
        }
    }

    /// Masks a whole value known to be of `entity` (a column or key classified
    /// sensitive by name) with that entity's operator: `partial` on a card
    /// column keeps the last four digits, `redact` gives `[card]`.
    pub fn mask_value_as(&self, entity: Entity, value: &str) -> String {
        let mut out = String::with_capacity(value.len().min(64) + 8);
        self.render(entity, value, &mut out);
        out
    }

    /// Appends the rendering of one value of `entity` to `out`.
    pub(crate) fn render(&self, entity: Entity, value: &str, out: &mut String) {
        match self.ops[entity.index()] {
            Operator::Redact => placeholder(entity, out),
            Operator::Drop => {}
            Operator::Token => self.token(entity, value, out),
            Operator::Partial => partial(entity, value, out),
        }
    }

    fn token(&self, entity: Entity, value: &str, out: &mut String) {
        let Some(keyed) = &self.keyed else {
            // `check` refuses this configuration; without a key the only safe
            // rendering is the placeholder.
            placeholder(entity, out);
            return;
        };
        let mut mac = keyed.clone();
        mac.update(entity.name().as_bytes());
        mac.update(&[0]);
        mac.update(canonical(entity, value).as_bytes());
        let digest = mac.finalize().into_bytes();
        out.push('[');
        out.push_str(entity.name());
        out.push_str(":tok_");
        for b in &digest[..6] {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
        out.push(']');
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn placeholder(entity: Entity, out: &mut String) {
    out.push('[');
    out.push_str(entity.name());
    out.push(']');
}

/// The form hashed by `token`, so that `4111 1111 1111 1111` and
/// `4111111111111111`, `Alice@Example.com` and `alice@example.com`, or
/// `529.982.247-25` and `52998224725`, give the same token and still join.
fn canonical(entity: Entity, value: &str) -> Cow<'_, str> {
    use Entity::*;
    match entity {
        Card | Ssn | AbaRouting | Phone => value.chars().filter(char::is_ascii_digit).collect(),
        Iban | NationalId | TaxId | Passport | DriverLicense => value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect(),
        Email | Uuid => Cow::Owned(value.to_ascii_lowercase()),
        MacAddress => value
            .chars()
            .filter(char::is_ascii_hexdigit)
            .map(|c| c.to_ascii_lowercase())
            .collect(),
        Ip => match value.parse::<IpAddr>() {
            Ok(ip) => Cow::Owned(ip.to_string()),
            Err(_) => Cow::Borrowed(value),
        },
        _ => Cow::Borrowed(value),
    }
}

/// Prefixes that name a secret's kind without carrying any of its entropy.
const SECRET_PREFIXES: &[&str] = &[
    "github_pat_",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxo-",
    "xoxr-",
    "xoxs-",
    "xoxe-",
    "xapp-",
    "sk_live_",
    "rk_live_",
    "sk-ant-",
    "sk-proj-",
    "sk-",
    "npm_",
    "pypi-",
    "SG.",
    "hvs.",
    "hvb.",
    "AIza",
    "eyJ",
    "https://hooks.slack.com/",
];

/// The `partial` rendering: keep what identifies the value's kind or a small
/// harmless part, star the rest. Entities with nothing harmless to keep fall
/// back to the placeholder.
fn partial(entity: Entity, value: &str, out: &mut String) {
    use Entity::*;
    match entity {
        Card | Ssn | AbaRouting => keep_last_digits(value, 4, out),
        Phone => keep_last_digits(value, 2, out),
        Iban => {
            let total = value.bytes().filter(u8::is_ascii_alphanumeric).count();
            let mut seen = 0;
            for c in value.chars() {
                if c.is_ascii_alphanumeric() {
                    seen += 1;
                    out.push(if seen <= 2 || seen + 4 > total {
                        c
                    } else {
                        '*'
                    });
                } else {
                    out.push(c);
                }
            }
        }
        Email => match value.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&value[at..]);
            }
            None => placeholder(entity, out),
        },
        Ip => match value.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => {
                let [a, b, _, _] = v4.octets();
                out.push_str(&format!("{a}.{b}.*.*"));
            }
            Ok(IpAddr::V6(v6)) => {
                let s = v6.segments();
                out.push_str(&format!("{:x}:{:x}:*", s[0], s[1]));
            }
            Err(_) => placeholder(entity, out),
        },
        CryptoWallet => keep_first(value, 4, out),
        Uuid => keep_first(value, 8, out),
        MacAddress => keep_first(value, 8, out),
        DateOfBirth => {
            // Keep the year, the part that says "adult" without naming a day.
            let year_at = value
                .as_bytes()
                .windows(4)
                .position(|w| w.iter().all(u8::is_ascii_digit));
            for (i, c) in value.char_indices() {
                let in_year = year_at.is_some_and(|y| (y..y + 4).contains(&i));
                out.push(if c.is_ascii_digit() && !in_year {
                    '*'
                } else {
                    c
                });
            }
        }
        PersonName => {
            for (n, word) in value.split_whitespace().enumerate() {
                if n > 0 {
                    out.push(' ');
                }
                if let Some(c) = word.chars().next() {
                    out.push(c);
                    out.push('.');
                }
            }
        }
        AwsAccessKey if value.len() >= 4 && value.is_char_boundary(4) => {
            out.push_str(&value[..4]);
            out.push_str("****");
        }
        _ => match SECRET_PREFIXES.iter().find(|p| value.starts_with(**p)) {
            Some(p) if entity.is_secret() => {
                out.push_str(p);
                out.push_str("****");
            }
            _ => placeholder(entity, out),
        },
    }
}

fn keep_last_digits(value: &str, keep: usize, out: &mut String) {
    let total = value.bytes().filter(u8::is_ascii_digit).count();
    if total < keep * 2 {
        out.extend(
            value
                .chars()
                .map(|c| if c.is_ascii_digit() { '*' } else { c }),
        );
        return;
    }
    let mut seen = 0;
    for c in value.chars() {
        if c.is_ascii_digit() {
            seen += 1;
            out.push(if seen + keep > total { c } else { '*' });
        } else {
            out.push(c);
        }
    }
}

fn keep_first(value: &str, keep: usize, out: &mut String) {
    for (i, c) in value.chars().enumerate() {
        out.push(if i < keep || !c.is_ascii_alphanumeric() {
            c
        } else {
            '*'
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScanConfig;

    fn key() -> TokenKey {
        TokenKey::from_bytes([7; 32])
    }

    #[test]
    fn operators_parse_by_name() {
        for op in Operator::ALL {
            assert_eq!(op.name().parse::<Operator>(), Ok(op));
        }
        let err = "mask".parse::<Operator>().unwrap_err();
        assert!(err.to_string().contains("partial"));
    }

    #[test]
    fn since_gives_what_was_added_to_a_running_tally() {
        let mut tally = Counts::default();
        tally.add(Entity::Email);
        let before = tally;
        tally.add(Entity::Email);
        tally.add(Entity::Card);
        let added = tally.since(&before);
        assert_eq!((added.get(Entity::Email), added.get(Entity::Card)), (1, 1));
        assert_eq!(added.total(), 2);
        assert!(tally.since(&tally).is_empty());
    }

    #[test]
    fn token_requires_a_key() {
        let m = Masker::new(Scanner::default()).with_operator(Entity::Email, Operator::Token);
        assert_eq!(
            m.check().unwrap_err(),
            MaskError::MissingTokenKey(Entity::Email)
        );
    }

    #[test]
    fn tokens_are_deterministic_keyed_and_canonical() {
        let m = Masker::new(Scanner::default())
            .with_operator(Entity::Card, Operator::Token)
            .with_token_key(&key());
        let a = m.mask_value_as(Entity::Card, "4111 1111 1111 1111");
        let b = m.mask_value_as(Entity::Card, "4111111111111111");
        assert_eq!(a, b);
        assert!(
            a.starts_with("[card:tok_") && a.len() == "[card:tok_]".len() + 12,
            "{a}"
        );
        let other = Masker::new(Scanner::default())
            .with_operator(Entity::Card, Operator::Token)
            .with_token_key(&TokenKey::from_bytes([8; 32]));
        assert_ne!(a, other.mask_value_as(Entity::Card, "4111111111111111"));
        assert_ne!(a, m.mask_value_as(Entity::Card, "5555555555554444"));
        // Identity numbers join whatever their punctuation and case.
        let m = m
            .with_operator(Entity::TaxId, Operator::Token)
            .with_operator(Entity::NationalId, Operator::Token);
        assert_eq!(
            m.mask_value_as(Entity::TaxId, "529.982.247-25"),
            m.mask_value_as(Entity::TaxId, "52998224725")
        );
        assert_eq!(
            m.mask_value_as(Entity::NationalId, "ab 12 34 56 c"),
            m.mask_value_as(Entity::NationalId, "AB123456C")
        );
    }

    #[test]
    fn partial_keeps_only_the_harmless_part() {
        let mut m = Masker::new(ScanConfig::new().build());
        for &e in Entity::ALL {
            m = m.with_operator(e, Operator::Partial);
        }
        let cases = [
            (Entity::Card, "4111 1111 1111 1111", "**** **** **** 1111"),
            (Entity::Ssn, "536-22-1234", "***-**-1234"),
            (Entity::Email, "alice@example.com", "***@example.com"),
            (
                Entity::Iban,
                "DE89 3704 0044 0532 0130 00",
                "DE** **** **** **** **30 00",
            ),
            (Entity::Ip, "192.168.10.20", "192.168.*.*"),
            (Entity::Phone, "+44 20 7946 0958", "+** ** **** **58"),
            (
                Entity::GithubToken,
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "ghp_****",
            ),
            (Entity::Secret, "hunter2", "[secret]"),
            (Entity::DateOfBirth, "1984-03-07", "1984-**-**"),
        ];
        for (e, value, want) in cases {
            assert_eq!(m.mask_value_as(e, value), want, "{e}");
        }
    }

    #[test]
    fn drop_removes_and_redact_types() {
        let m = Masker::new(Scanner::default()).with_operator(Entity::Email, Operator::Drop);
        let out = m.mask_str("to alice@example.com from 10.1.2.3");
        assert_eq!(out.text, "to  from [ip]");
        assert_eq!(out.counts.get(Entity::Email), 1);
        assert_eq!(out.counts.get(Entity::Ip), 1);
    }

    #[test]
    fn nothing_found_borrows() {
        let m = Masker::new(Scanner::default());
        let out = m.mask_str("GET /healthz 200 3ms");
        assert!(matches!(out.text, Cow::Borrowed(_)));
        assert!(out.counts.is_empty());
    }

    #[test]
    fn token_key_hex() {
        let hex = "00".repeat(31) + "ff";
        assert!(TokenKey::from_hex(&format!(" {hex}\n")).is_ok());
        assert!(TokenKey::from_hex("abc").is_err());
        assert!(TokenKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{:?}", key()), "TokenKey(..)");
    }
}
