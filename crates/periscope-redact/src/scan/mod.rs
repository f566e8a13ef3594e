//! The scanner: one pass over the bytes, validating only candidates.
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
//!
//! All spans start and end at ASCII bytes (or the ends of the text), so they are
//! always valid `str` boundaries.

use std::net::Ipv6Addr;
use std::ops::Range;

use crate::classify::is_secret_name;
use crate::validate;
use crate::{Entity, Tier};

/// One sensitive value found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// What was found; its tier is `entity.tier()`.
    pub entity: Entity,
    /// Byte range in the scanned text; always on `char` boundaries.
    pub span: Range<usize>,
}

/// A set of entities, as a bit set so that checks on the hot path are one `and`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EntitySet(u64);

impl EntitySet {
    /// No entity.
    pub const EMPTY: EntitySet = EntitySet(0);

    /// Every entity.
    pub fn all() -> EntitySet {
        Entity::ALL.iter().copied().collect()
    }

    /// Every entity of a tier.
    pub fn tier(tier: Tier) -> EntitySet {
        Entity::ALL
            .iter()
            .copied()
            .filter(|e| e.tier() == tier)
            .collect()
    }

    /// What is detected when nothing is configured: secrets and PII.
    pub fn defaults() -> EntitySet {
        EntitySet::tier(Tier::Secret).union(EntitySet::tier(Tier::Pii))
    }

    /// Whether `entity` is in the set.
    pub fn contains(self, entity: Entity) -> bool {
        self.0 & (1 << entity.index()) != 0
    }

    /// Adds `entity`.
    pub fn insert(&mut self, entity: Entity) {
        self.0 |= 1 << entity.index();
    }

    /// Removes `entity`.
    pub fn remove(&mut self, entity: Entity) {
        self.0 &= !(1 << entity.index());
    }

    /// Entities in either set.
    pub fn union(self, other: EntitySet) -> EntitySet {
        EntitySet(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The entities in the set, in [`Entity::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Entity> {
        Entity::ALL
            .iter()
            .copied()
            .filter(move |&e| self.contains(e))
    }
}

impl FromIterator<Entity> for EntitySet {
    fn from_iter<I: IntoIterator<Item = Entity>>(iter: I) -> Self {
        let mut set = EntitySet::EMPTY;
        for e in iter {
            set.insert(e);
        }
        set
    }
}

/// What to look for; built once, then turned into a [`Scanner`].
///
/// Two sets matter: entities *detected* in content, and entities *lifted* (not
/// masked at all, even when a column or key is named after them). By default
/// secrets and PII are detected, optional entities are not detected but are
/// still masked by name (a column named `dob` is sensitive), and nothing is
/// lifted.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    detect: EntitySet,
    lifted: EntitySet,
    person_names: Vec<String>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            detect: EntitySet::defaults(),
            lifted: EntitySet::EMPTY,
            person_names: Vec::new(),
        }
    }
}

impl ScanConfig {
    /// The default configuration: secrets and PII detected, optional entities off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Detects `entity` in content (and masks it by name).
    pub fn enable(mut self, entity: Entity) -> Self {
        self.detect.insert(entity);
        self.lifted.remove(entity);
        self
    }

    /// Neither detects nor masks `entity`: the shield for it is lifted.
    pub fn disable(mut self, entity: Entity) -> Self {
        self.detect.remove(entity);
        self.lifted.insert(entity);
        self
    }

    /// Detects exactly `entities` and lifts every other one.
    pub fn only(mut self, entities: EntitySet) -> Self {
        self.detect = entities;
        self.lifted = EntitySet(!entities.0 & EntitySet::all().0);
        self
    }

    /// Adds first names to the built-in dictionary used by `person_name`.
    pub fn with_person_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.person_names.extend(names.into_iter().map(Into::into));
        self
    }

    /// The entities detected in content.
    pub fn detected(&self) -> EntitySet {
        self.detect
    }

    /// Builds the scanner.
    pub fn build(self) -> Scanner {
        let mut names: Vec<Vec<u8>> = crate::names::FIRST_NAMES
            .iter()
            .map(|n| n.as_bytes().to_vec())
            .chain(
                self.person_names
                    .iter()
                    .map(|n| n.trim().to_ascii_lowercase().into_bytes()),
            )
            .filter(|n| n.len() >= 2)
            .collect();
        names.sort();
        names.dedup();
        Scanner {
            names_on: self.detect.contains(Entity::PersonName),
            hex_optional: self.detect.contains(Entity::Uuid)
                || self.detect.contains(Entity::MacAddress),
            hex_colon: self.detect.contains(Entity::Ip)
                || self.detect.contains(Entity::Uuid)
                || self.detect.contains(Entity::MacAddress),
            detect: self.detect,
            lifted: self.lifted,
            first_names: names,
        }
    }
}

/// Finds sensitive values in text. Built once from a [`ScanConfig`]; cheap to
/// share (`&Scanner` is all a caller needs, across threads too).
#[derive(Debug, Clone)]
pub struct Scanner {
    detect: EntitySet,
    /// Person names need every capitalised word; cached from `detect`.
    names_on: bool,
    /// UUID or MAC detection is on: hex words before `-`/`.` need a look.
    hex_optional: bool,
    /// IPv6, UUID or MAC detection is on: hex words before `:` need a look.
    hex_colon: bool,
    lifted: EntitySet,
    first_names: Vec<Vec<u8>>,
}

impl Default for Scanner {
    fn default() -> Self {
        ScanConfig::default().build()
    }
}

impl Scanner {
    /// Whether content detection is on for `entity`.
    pub fn detects(&self, entity: Entity) -> bool {
        self.detect.contains(entity)
    }

    /// Whether a value known to be of `entity` (by column or key name) is masked.
    pub fn masks_by_name(&self, entity: Entity) -> bool {
        !self.lifted.contains(entity)
    }

    /// [`crate::classify_name`], minus the entities whose shield is lifted.
    pub fn classify_name(&self, name: &str) -> Option<Entity> {
        crate::classify_name(name).filter(|&e| self.masks_by_name(e))
    }

    /// All findings in `text`: non-overlapping and sorted by position. On overlap
    /// the same span keeps the more specific entity, a span containing another
    /// wins, and otherwise the higher tier wins.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut sink = Sink::new(self.detect, false);
        self.run(text.as_bytes(), &mut sink);
        resolve(sink.found)
    }

    /// Whether `text` holds anything to mask; stops at the first finding. The
    /// fast path for callers that usually find nothing.
    pub fn contains_any(&self, text: &str) -> bool {
        let mut sink = Sink::new(self.detect, true);
        self.run(text.as_bytes(), &mut sink);
        !sink.found.is_empty()
    }

    fn run(&self, t: &[u8], sink: &mut Sink) {
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
    /// The groups are read as [`Groups::read`] reads them, and the result is
    /// what [`Scanner::number_word`] returns for such a number: the end of the
    /// last group, or the end of the word when the number does not start a
    /// token of its own. Decimals (`46.737ms`, `0.830`) are the most common
    /// numbers in logs after timestamps.
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

    // ----- secrets ---------------------------------------------------------

    #[inline(never)]
    fn pem(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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

    fn jwt(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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

    fn sendgrid(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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

    fn slack_webhook(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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
    fn bare_bearer(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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
    fn key_value(&self, t: &[u8], sep: usize, sink: &mut Sink) -> usize {
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
    fn url_credentials(&self, t: &[u8], colon: usize, sink: &mut Sink) {
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

    // ----- PII -------------------------------------------------------------

    #[inline(never)]
    fn email(&self, t: &[u8], at: usize, sink: &mut Sink) -> usize {
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

    fn iban(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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

    fn numeric(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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

    /// A dotted quad at `i`: four decimal octets up to 255 without leading
    /// zeros (as `std::net::Ipv4Addr` parses them), one trailing `.` allowed
    /// (it ends a sentence), not followed by a letter, digit, `.` or `_`.
    fn ipv4(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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
    fn ipv6(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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
    fn hex_word(&self, t: &[u8], i: usize, end: usize, sink: &mut Sink) -> Option<usize> {
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

    #[inline(never)]
    fn phone_international(&self, t: &[u8], plus: usize, sink: &mut Sink) -> Option<usize> {
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
    fn phone_paren(&self, t: &[u8], i: usize, sink: &mut Sink) -> Option<usize> {
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

    // ----- wallets and names ----------------------------------------------

    fn wallet_base58(&self, t: &[u8], i: usize, end: usize, sink: &mut Sink) -> Option<usize> {
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

    fn wallet_bech32(&self, t: &[u8], i: usize, end: usize, sink: &mut Sink) -> Option<usize> {
        if !(14..=90).contains(&(end - i)) || !sink.wants(Entity::CryptoWallet) {
            return None;
        }
        if !validate::bech32_wallet_valid(&t[i..end]) {
            return None;
        }
        sink.push(Entity::CryptoWallet, i, end);
        Some(end)
    }

    fn person_name(&self, t: &[u8], i: usize, end: usize, sink: &mut Sink) -> Option<usize> {
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

// ----- the collector and overlap resolution --------------------------------

struct Sink {
    found: Vec<Finding>,
    first_only: bool,
    stop: bool,
    enabled: EntitySet,
}

impl Sink {
    fn new(enabled: EntitySet, first_only: bool) -> Sink {
        Sink {
            found: Vec::new(),
            first_only,
            stop: false,
            enabled,
        }
    }

    fn push(&mut self, entity: Entity, start: usize, end: usize) {
        if start < end {
            self.found.push(Finding {
                entity,
                span: start..end,
            });
            if self.first_only {
                self.stop = true;
            }
        }
    }

    /// Whether the scanner detects `entity`: the cheap check every detector
    /// makes before doing any work.
    fn wants(&self, entity: Entity) -> bool {
        self.enabled.contains(entity)
    }

    /// `prefix` (already checked, `plen` bytes) followed by at least `min`
    /// characters of `class`.
    fn prefixed(
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
    fn exact(
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

/// How specific an entity is when two findings cover exactly the same bytes.
fn rank(entity: Entity) -> u8 {
    match entity {
        Entity::AuthHeader | Entity::UrlCredentials | Entity::Secret => 1,
        e => match e.tier() {
            Tier::Secret => 0,
            Tier::Pii => 2,
            Tier::Optional => 3,
        },
    }
}

fn resolve(mut found: Vec<Finding>) -> Vec<Finding> {
    if found.len() < 2 {
        return found;
    }
    found.sort_by(|a, b| {
        a.span
            .start
            .cmp(&b.span.start)
            .then(b.span.end.cmp(&a.span.end))
    });
    let mut out: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        let Some(last) = out.last_mut() else {
            out.push(f);
            continue;
        };
        if f.span.start >= last.span.end {
            out.push(f);
            continue;
        }
        let same = f.span == last.span;
        let contained = f.span.end <= last.span.end;
        let f_wins = if same {
            rank(f.entity) < rank(last.entity)
        } else if contained {
            false
        } else {
            rank(f.entity) < rank(last.entity)
        };
        if f_wins {
            *last = f;
        }
    }
    out
}

// ----- number groups --------------------------------------------------------

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

// ----- helpers shared by the detectors ------------------------------------------

const C_SKIP: u8 = 0;
const C_WORD: u8 = 1;
const C_PUNCT: u8 = 2;

/// What the main loop does at each byte: skip it, start a word, or look closer.
static CLASS: [u8; 256] = {
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

fn run_end(t: &[u8], mut i: usize, class: impl Fn(u8) -> bool) -> usize {
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
fn word_end_gap(t: &[u8], i: usize) -> (usize, bool) {
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

fn word_end(t: &[u8], mut i: usize) -> usize {
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

const HIGH: u64 = 0x8080_8080_8080_8080;

const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// For each byte of `x`, the high bit is set when the byte is an ASCII digit.
fn digit_mask(x: u64) -> u64 {
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

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_alnum_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_b64url(b: u8) -> bool {
    is_token_char(b)
}

/// RFC 7235 `token68`, what follows `Bearer ` or `Basic `.
fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn is_ipv6_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

fn is_base58(b: u8) -> bool {
    b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l')
}

fn is_base32_upper(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn is_email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$')
}

/// Four-letter prefixes of AWS access key ids (`AKIA` long-term, `ASIA` STS...).
fn is_aws_prefix(p: &[u8]) -> bool {
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

/// Whether a number starting at `i` starts a token of its own, not the tail of
/// a decimal, a version, an identifier or a signed value.
fn numeric_start_ok(t: &[u8], i: usize) -> bool {
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

fn is_digits(t: &[u8], from: usize, n: usize) -> bool {
    t.get(from..from + n)
        .is_some_and(|r| r.iter().all(u8::is_ascii_digit))
}

/// `12:34`, `12:34:56`, `12:34:56.789`: a time of day, skipped as a unit (it is
/// the most common number in logs and can be nothing sensitive).
fn time_of_day(t: &[u8], i: usize) -> Option<usize> {
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
fn timestamp(t: &[u8], i: usize) -> Option<usize> {
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
/// A dotted-quad IPv4 address, parsed as `std::net::Ipv4Addr` does: four
/// decimal octets up to 255, no leading zeros, nothing else.
fn ipv4_valid(s: &[u8]) -> bool {
    let mut octets = 0;
    for part in s.split(|&b| b == b'.') {
        octets += 1;
        let ok = !part.is_empty()
            && part.len() <= 3
            && part.iter().all(u8::is_ascii_digit)
            && !(part.len() > 1 && part[0] == b'0')
            && part.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0')) <= 255;
        if !ok || octets > 4 {
            return false;
        }
    }
    octets == 4
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

    #[test]
    fn ipv4_parser_agrees_with_std() {
        for s in [
            "1.2.3.4",
            "255.255.255.255",
            "0.0.0.0",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.",
            "",
            "1234.1.1.1",
            "10.0.0.00",
        ] {
            assert_eq!(
                ipv4_valid(s.as_bytes()),
                s.parse::<std::net::Ipv4Addr>().is_ok(),
                "{s}"
            );
        }
    }
}
