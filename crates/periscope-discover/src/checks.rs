//! The per-value checks whose pass rates over a column are the evidence.
//!
//! Each check reads one value and says whether it validates as one entity,
//! with the same validators as the text scanner ([`periscope_redact::validate`]).
//! What makes a column-level decision possible is the check's **chance
//! rate**: the share of random values of the same shape (random digits of the
//! right length, random letters where letters go) that pass anyway. A
//! column's observed share is compared with it, not only with a fixed bar; see
//! [`crate::decide`].
//!
//! | check | entity | reads | chance |
//! |---|---|---|---|
//! | `card` | card | 12-19 digits: IIN, length, Luhn, not epoch ms | 0.034 (16 digits) |
//! | `ssn` | ssn | 9 digits: area not 000/666/9xx, group, serial, not a sample | 0.889 |
//! | `aba` | aba_routing | 9 digits: Federal Reserve prefix, 3-7-1 | 0.037 |
//! | `sin` | national_id | 9 digits: first not 0/8, Luhn | 0.080 |
//! | `nino` | national_id | 2 letters, 6 digits, suffix A-D or none | 0.551 (no suffix) |
//! | `aadhaar` | national_id | 12 digits: first 2-9, Verhoeff | 0.080 |
//! | `tfn` | tax_id | 8 or 9 digits, weighted mod 11 | 0.091 |
//! | `cpf` | tax_id | 11 digits, two mod-11 check digits | 0.0096 |
//! | `birth_date` | date_of_birth | a date, midnight if a timestamp, age 0-120 | see below |
//! | `format` | what the scanner finds | the whole value is one finding of the text scanner (email, phone, IP, IBAN, wallets, tokens and keys) | 0 |
//!
//! Separators are dropped before the digit checks (`123-45-6789`,
//! `529.982.247-25`, `4111 1111 1111 1111` and the bare forms read alike).
//! Integer columns and JSON numbers lost their leading zeros, so a value up to
//! two digits short of a fixed length is also tried padded with zeros.
//!
//! The chance rates are measured, not assumed: `chance_rates_match_random_draws`
//! draws random values of each shape and checks these constants. A date of
//! birth has no meaningful random-digit shape: what it must be told apart from
//! is other dates (orders, sign-ups), so its rule is different (a spread of
//! birth years, no contradicting name) and its chance is set to 0.5 to make
//! the significance test ask for a few dozen values.

use periscope_redact::{Entity, Scanner, validate};
use serde::Serialize;

/// One per-value check; see the module documentation for what each reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Payment card numbers.
    Card,
    /// US social security numbers.
    Ssn,
    /// US ABA routing numbers.
    Aba,
    /// Canadian social insurance numbers.
    Sin,
    /// UK National Insurance numbers.
    Nino,
    /// Indian Aadhaar numbers.
    Aadhaar,
    /// Australian tax file numbers.
    Tfn,
    /// Brazilian CPF numbers.
    Cpf,
    /// Dates of birth.
    BirthDate,
    /// The whole value is one finding of the text scanner.
    Format,
}

/// The checks with a fixed entity, in evaluation order.
pub(crate) const VALUE_CHECKS: [Check; 9] = [
    Check::Card,
    Check::Ssn,
    Check::Aba,
    Check::Sin,
    Check::Nino,
    Check::Aadhaar,
    Check::Tfn,
    Check::Cpf,
    Check::BirthDate,
];

/// How many checks have a slot in per-check tables.
pub(crate) const CHECK_COUNT: usize = 10;

/// Checks whose pass rate on random input is high, or whose look-alikes are
/// not random (other dates): they also need a spread of values and no name
/// saying the column is something else.
pub(crate) const WEAK_CHECKS: [Check; 3] = [Check::Ssn, Check::Nino, Check::BirthDate];

impl Check {
    /// A dense index for per-check tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The stable name used in reports (`ssn`, `birth_date`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Check::Card => "card",
            Check::Ssn => "ssn",
            Check::Aba => "aba",
            Check::Sin => "sin",
            Check::Nino => "nino",
            Check::Aadhaar => "aadhaar",
            Check::Tfn => "tfn",
            Check::Cpf => "cpf",
            Check::BirthDate => "birth_date",
            Check::Format => "format",
        }
    }

    /// The entity a passing value is; `None` for [`Check::Format`], whose
    /// entity is whatever the scanner found.
    pub fn entity(self) -> Option<Entity> {
        Some(match self {
            Check::Card => Entity::Card,
            Check::Ssn => Entity::Ssn,
            Check::Aba => Entity::AbaRouting,
            Check::Sin | Check::Nino | Check::Aadhaar => Entity::NationalId,
            Check::Tfn | Check::Cpf => Entity::TaxId,
            Check::BirthDate => Entity::DateOfBirth,
            Check::Format => return None,
        })
    }

    /// The share of random values of the check's shape that pass (module
    /// documentation); the decision requires the observed share to be well
    /// above it.
    pub fn chance(self) -> f64 {
        match self {
            Check::Card => 0.034,
            Check::Ssn => 0.889,
            Check::Aba => 0.037,
            Check::Sin => 0.080,
            Check::Nino => 0.551,
            Check::Aadhaar => 0.080,
            Check::Tfn => 0.091,
            Check::Cpf => 0.0096,
            Check::BirthDate => 0.5,
            Check::Format => 0.0,
        }
    }

    /// Whether the check is weak: SSN rules, NINO, dates of birth (chance
    /// above one half, or look-alikes that are not random).
    pub fn is_weak(self) -> bool {
        WEAK_CHECKS.contains(&self)
    }

    /// The fewest distinct spread keys (SSN areas, NINO prefixes, birth
    /// years) a weak check needs among its matches: sequential ids share one
    /// area, event dates a few recent years.
    pub fn min_spread(self) -> u32 {
        match self {
            Check::Ssn => 10,
            Check::Nino => 5,
            Check::BirthDate => 15,
            _ => 0,
        }
    }
}

/// Spread keys are below this bound (a 1024-bit set per weak check).
pub(crate) const SPREAD_KEYS: usize = 1024;

/// What one value validated as.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ValueMatch {
    /// Bit `Check::index()` set for each passing check of [`VALUE_CHECKS`].
    pub checks: u16,
    /// The spread key of each weak check that passed, in [`WEAK_CHECKS`] order.
    pub spread: [u16; 3],
    /// The entity the scanner found covering the value, if any.
    pub format: Option<Entity>,
    /// Bit `Check::index()` set for checks that passed only once leading
    /// zeros were restored.
    pub padded: u16,
}

impl ValueMatch {
    fn pass(&mut self, check: Check) {
        self.checks |= 1 << check.index();
    }

    fn pass_weak(&mut self, check: Check, key: u16) {
        self.pass(check);
        if let Some(i) = WEAK_CHECKS.iter().position(|&c| c == check) {
            self.spread[i] = key;
        }
    }

    /// Whether `check` passed.
    pub fn passed(&self, check: Check) -> bool {
        self.checks & (1 << check.index()) != 0
    }
}

/// Everything the checks need besides the value.
pub(crate) struct CheckContext<'a> {
    pub scanner: &'a Scanner,
    /// The year ages are counted from (no clock in a pure crate).
    pub as_of_year: i32,
}

/// The longest value worth checking: identifiers and dates are short, and
/// the scanner's whole-value rule never holds for long text.
const MAX_VALUE: usize = 256;

/// Runs every check on one trimmed, non-empty value. `integer` says that
/// leading zeros may have been dropped (integer columns, JSON numbers).
pub(crate) fn check_value(ctx: &CheckContext<'_>, value: &str, integer: bool) -> ValueMatch {
    let mut m = ValueMatch::default();
    if value.len() > MAX_VALUE {
        return m;
    }
    let mut buf = [0u8; 24];
    if let Some(digits) = digit_form(value, integer, &mut buf) {
        digit_checks(digits, integer, &mut m);
    }
    if let Some(prefix) = nino_form(value) {
        m.pass_weak(Check::Nino, prefix);
    }
    if let Some(year) = birth_year(value, ctx.as_of_year) {
        // Year modulo the key space: a 121-year window never wraps twice.
        m.pass_weak(Check::BirthDate, year.rem_euclid(SPREAD_KEYS as i32) as u16);
    }
    // Bare digits are never a whole-value finding the checks above leave to
    // the scanner; anything else may be (an IP address also reads as digit
    // groups).
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        m.format = whole_value_finding(ctx.scanner, value);
    }
    m
}

/// Runs only the date-of-birth check: what a `date` or `timestamp` column
/// can hold.
pub(crate) fn check_date(value: &str, as_of_year: i32) -> ValueMatch {
    let mut m = ValueMatch::default();
    if let Some(year) = birth_year(value, as_of_year) {
        m.pass_weak(Check::BirthDate, year.rem_euclid(SPREAD_KEYS as i32) as u16);
    }
    m
}

/// The value's digits when it is digits and separators only (text) or
/// digits only (integers), 8 to 19 of them, or `None`.
fn digit_form<'b>(value: &str, integer: bool, buf: &'b mut [u8; 24]) -> Option<&'b [u8]> {
    let mut n = 0;
    let mut prev_sep = true;
    for &b in value.as_bytes() {
        match b {
            b'0'..=b'9' => {
                if n == buf.len() {
                    return None;
                }
                buf[n] = b;
                n += 1;
                prev_sep = false;
            }
            // One separator between digit groups, never leading or doubled.
            b' ' | b'-' | b'.' | b'/' if !integer && !prev_sep => prev_sep = true,
            _ => return None,
        }
    }
    (!prev_sep && (6..=19).contains(&n)).then_some(&buf[..n])
}

fn digit_checks(digits: &[u8], integer: bool, m: &mut ValueMatch) {
    // Fixed-length checks, also on the value padded back to length when
    // an integer lost up to two leading zeros.
    let fits = |len: usize| -> Option<[u8; 12]> {
        let n = digits.len();
        let pad = len.checked_sub(n)?;
        if pad > if integer { 2 } else { 0 } {
            return None;
        }
        let mut out = [b'0'; 12];
        out[pad..len].copy_from_slice(digits);
        Some(out)
    };
    if let Some(d) = fits(9) {
        let d = &d[..9];
        if validate::ssn_valid(d) {
            let area =
                u16::from(d[0] - b'0') * 100 + u16::from(d[1] - b'0') * 10 + u16::from(d[2] - b'0');
            m.pass_weak(Check::Ssn, area);
            if digits.len() < 9 {
                m.padded |= 1 << Check::Ssn.index();
            }
        }
        if validate::aba_valid(d) {
            m.pass(Check::Aba);
        }
        if validate::sin_valid(d) {
            m.pass(Check::Sin);
        }
        if validate::tfn_valid(d) {
            m.pass(Check::Tfn);
        }
    }
    if digits.len() == 8 && validate::tfn_valid(digits) {
        m.pass(Check::Tfn);
    }
    if let Some(d) = fits(11)
        && validate::cpf_valid(&d[..11])
    {
        m.pass(Check::Cpf);
    }
    if digits.len() == 12 && validate::aadhaar_valid(digits) {
        m.pass(Check::Aadhaar);
    }
    if validate::card_valid(digits) {
        m.pass(Check::Card);
    }
}

/// A NINO once spaces are dropped (`AB 12 34 56 C`), with its prefix letters
/// as the spread key.
fn nino_form(value: &str) -> Option<u16> {
    let b = value.as_bytes();
    if !(8..=13).contains(&b.len()) || !b[0].is_ascii_alphabetic() {
        return None;
    }
    let mut compact = [0u8; 9];
    let mut n = 0;
    for &c in b {
        if c == b' ' {
            continue;
        }
        if n == compact.len() {
            return None;
        }
        compact[n] = c;
        n += 1;
    }
    let compact = &compact[..n];
    validate::nino_valid(compact).then(|| {
        u16::from(compact[0].to_ascii_uppercase() - b'A') * 26
            + u16::from(compact[1].to_ascii_uppercase() - b'A')
    })
}

/// The entity of the one scanner finding that covers at least 80% of the
/// value (`+44 20 7946 0958`, `alice@example.com`, `ghp_…`); a finding in a
/// sentence is content for the run-time scanner, not a column's identity.
/// Entities with their own check above are left to it.
fn whole_value_finding(scanner: &Scanner, value: &str) -> Option<Entity> {
    let findings = scanner.scan(value);
    let [one] = findings.as_slice() else {
        return None;
    };
    if matches!(
        one.entity,
        Entity::Card | Entity::Ssn | Entity::AbaRouting | Entity::DateOfBirth
    ) {
        return None;
    }
    let covered = one.span.len() * 5 >= value.len() * 4;
    covered.then_some(one.entity)
}

/// The birth year when the value is a date a person alive could be born on:
/// `YYYY-MM-DD` (also with `/` or `.`), `DD/MM/YYYY` or `MM/DD/YYYY` (also
/// with `.` or `-`), `YYYYMMDD`, optionally followed by a midnight time
/// (`T00:00:00`, fractions, a zone); age 0 to 120 at `as_of_year`.
pub(crate) fn birth_year(value: &str, as_of_year: i32) -> Option<i32> {
    let b = value.as_bytes();
    let (date, rest) = if b.len() >= 10 {
        (&b[..10], &b[10..])
    } else {
        (b, &b[b.len()..])
    };
    let (y, mo, d) = parse_date(date)?;
    if !rest.is_empty() && !is_midnight(rest) {
        return None;
    }
    let age = as_of_year - y;
    ((0..=120).contains(&age) && valid_day(y, mo, d)).then_some(y)
}

fn num(b: &[u8]) -> Option<i32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |acc, &c| acc * 10 + i32::from(c - b'0')))
}

fn parse_date(b: &[u8]) -> Option<(i32, i32, i32)> {
    match b.len() {
        8 => Some((num(&b[..4])?, num(&b[4..6])?, num(&b[6..])?)),
        10 if matches!(b[4], b'-' | b'/' | b'.') && b[7] == b[4] => {
            Some((num(&b[..4])?, num(&b[5..7])?, num(&b[8..])?))
        }
        10 if matches!(b[2], b'-' | b'/' | b'.') && b[5] == b[2] => {
            let (p, q, y) = (num(&b[..2])?, num(&b[3..5])?, num(&b[6..])?);
            // Day first unless that cannot be (US month first: 03/27/1984).
            if (1..=12).contains(&q) {
                Some((y, q, p))
            } else {
                Some((y, p, q))
            }
        }
        _ => None,
    }
}

fn valid_day(y: i32, m: i32, d: i32) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// ` 00:00:00`, `T00:00:00.000`, `T00:00:00Z`, ` 00:00:00+02`,
/// `T00:00:00-05:00`: a date stored as a timestamp.
fn is_midnight(rest: &[u8]) -> bool {
    let Some((&sep, rest)) = rest.split_first() else {
        return true;
    };
    if sep != b' ' && sep != b'T' {
        return false;
    }
    let Some(rest) = rest.strip_prefix(b"00:00:00") else {
        return false;
    };
    let rest = match rest.strip_prefix(b".") {
        Some(frac) => {
            let zeros = frac.iter().take_while(|&&c| c == b'0').count();
            if zeros == 0 {
                return false;
            }
            &frac[zeros..]
        }
        None => rest,
    };
    match rest {
        [] | [b'Z'] => true,
        [b'+' | b'-', zone @ ..] => zone.iter().all(|&c| c.is_ascii_digit() || c == b':'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_redact::ScanConfig;

    fn ctx(scanner: &Scanner) -> CheckContext<'_> {
        CheckContext {
            scanner,
            as_of_year: 2025,
        }
    }

    fn passes(value: &str, integer: bool) -> Vec<Check> {
        let scanner = ScanConfig::new().build();
        let m = check_value(&ctx(&scanner), value, integer);
        VALUE_CHECKS.into_iter().filter(|&c| m.passed(c)).collect()
    }

    #[test]
    fn separators_are_dropped_before_digit_checks() {
        assert!(passes("529.982.247-25", false).contains(&Check::Cpf));
        assert!(passes("52998224725", false).contains(&Check::Cpf));
        assert!(passes("4111 1111 1111 1111", false).contains(&Check::Card));
        assert!(passes("536-22-1234", false).contains(&Check::Ssn));
        assert!(passes("130 456 122", false).contains(&Check::Sin));
        assert!(passes("2345 6789 0124", false).contains(&Check::Aadhaar));
        assert!(passes("123 456 782", false).contains(&Check::Tfn));
        assert!(passes("12345677", false).contains(&Check::Tfn));
        // Not separators: letters, doubled or leading ones.
        assert!(passes("529..982.247-25", false).is_empty());
        assert!(passes("-52998224725", false).is_empty());
        assert!(passes("CPF 52998224725", false).is_empty());
    }

    #[test]
    fn integers_get_their_leading_zeros_back() {
        // CPF 000.000.001-91 stored as a bigint.
        assert!(passes("191", true).is_empty(), "too short even padded");
        assert!(passes("39053344705", true).contains(&Check::Cpf));
        // ABA 011000015 as an integer: 11000015.
        assert!(passes("11000015", true).contains(&Check::Aba));
        assert!(!passes("11000015", false).contains(&Check::Aba));
        // Integers do not take separators.
        assert!(passes("536-22-1234", true).is_empty());
    }

    #[test]
    fn nino_with_and_without_spaces() {
        assert_eq!(passes("AB123456C", false), vec![Check::Nino]);
        assert_eq!(passes("ab 12 34 56 c", false), vec![Check::Nino]);
        assert_eq!(passes("AB123456", false), vec![Check::Nino]);
        assert!(passes("GB123456A", false).is_empty());
    }

    #[test]
    fn birth_dates() {
        for ok in [
            "1984-03-07",
            "1984/03/07",
            "07.03.1984",
            "03/27/1984",
            "27/03/1984",
            "19840307",
            "1984-03-07 00:00:00",
            "1984-03-07T00:00:00.000Z",
            "1984-03-07 00:00:00+02",
            "2024-02-29",
        ] {
            assert!(birth_year(ok, 2025).is_some(), "{ok}");
        }
        for bad in [
            "1984-03-07 13:45:00",
            "1984-13-07",
            "1984-02-30",
            "2023-02-29",
            "1899-01-01",
            "2031-01-01",
            "1984-03-0",
            "84-03-07",
            "1984-03-07x",
        ] {
            assert!(birth_year(bad, 2025).is_none(), "{bad}");
        }
    }

    #[test]
    fn whole_values_of_other_entities_come_from_the_scanner() {
        let scanner = ScanConfig::new().build();
        let c = ctx(&scanner);
        assert_eq!(
            check_value(&c, "alice@example.com", false).format,
            Some(Entity::Email)
        );
        assert_eq!(
            check_value(&c, "+44 20 7946 0958", false).format,
            Some(Entity::Phone)
        );
        assert_eq!(
            check_value(&c, "DE89370400440532013000", false).format,
            Some(Entity::Iban)
        );
        assert_eq!(
            check_value(&c, "please write to alice@example.com today", false).format,
            None,
            "a finding inside a sentence is not the column's identity"
        );
        // Cards are the card check's, not the scanner's.
        assert_eq!(check_value(&c, "4111111111111111", false).format, None);
    }

    /// SplitMix64, for the chance-rate draws.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn digits(&mut self, n: usize) -> String {
            (0..n)
                .map(|_| char::from(b'0' + (self.next() % 10) as u8))
                .collect()
        }

        fn letters(&mut self, n: usize) -> String {
            (0..n)
                .map(|_| char::from(b'A' + (self.next() % 26) as u8))
                .collect()
        }
    }

    #[test]
    fn chance_rates_match_random_draws() {
        const DRAWS: usize = 200_000;
        let scanner = ScanConfig::new().build();
        let c = ctx(&scanner);
        let mut rng = Rng(0x5eed);
        type Shape<'a> = &'a dyn Fn(&mut Rng) -> String;
        let shapes: [(Check, Shape<'_>); 8] = [
            (Check::Card, &|r| r.digits(16)),
            (Check::Ssn, &|r| r.digits(9)),
            (Check::Aba, &|r| r.digits(9)),
            (Check::Sin, &|r| r.digits(9)),
            (Check::Tfn, &|r| r.digits(9)),
            (Check::Cpf, &|r| r.digits(11)),
            (Check::Aadhaar, &|r| r.digits(12)),
            (Check::Nino, &|r| format!("{}{}", r.letters(2), r.digits(6))),
        ];
        for (check, shape) in shapes {
            let hits = (0..DRAWS)
                .filter(|_| check_value(&c, &shape(&mut rng), false).passed(check))
                .count();
            let rate = hits as f64 / DRAWS as f64;
            // Three standard errors of a 200,000-draw estimate, at least 0.002.
            let tolerance = (3.0 * (rate * (1.0 - rate) / DRAWS as f64).sqrt()).max(0.002);
            assert!(
                (rate - check.chance()).abs() <= tolerance,
                "{}: measured {rate:.4}, documented {}",
                check.name(),
                check.chance()
            );
        }
        // With the suffix letter, NINO is a strong check; the constant is the
        // weak (suffix-less) shape's.
        let hits = (0..DRAWS)
            .filter(|_| {
                let v = format!("{}{}{}", rng.letters(2), rng.digits(6), rng.letters(1));
                check_value(&c, &v, false).passed(Check::Nino)
            })
            .count();
        assert!((hits as f64 / DRAWS as f64) < 0.1);
    }
}
