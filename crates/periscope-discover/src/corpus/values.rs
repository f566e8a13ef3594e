//! Value generators: valid identifiers built with their real check digits,
//! and the look-alikes discovery must leave alone.
//!
//! Every value is a function of a seed and a row number, so a table of a
//! million rows can be written in any order, and a sample of 1,000 rows is
//! the same whether it is drawn here or by `TABLESAMPLE` from the loaded
//! table (up to which rows are drawn).

use periscope_redact::validate;
use serde_json::{Value, json};

/// SplitMix64: tiny, fast, the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator for one cell: mixes the parts so neighbouring rows and
    /// columns are unrelated.
    pub fn cell(seed: u64, table: u64, column: u64, row: u64) -> Rng {
        let mut r = Rng(seed ^ table.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let a = r.next_u64() ^ column.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let mut r = Rng(a);
        Rng(r.next_u64() ^ row.wrapping_mul(0x1656_67B1_9E37_79F9))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    fn upper(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'A' + self.below(26) as u8))
            .collect()
    }

    fn from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(*self.pick(alphabet))).collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

/// Completes `prefix` with the digit that makes `valid` hold, if one does.
fn complete(prefix: &str, valid: impl Fn(&[u8]) -> bool) -> Option<String> {
    (b'0'..=b'9')
        .map(|d| format!("{prefix}{}", char::from(d)))
        .find(|s| valid(s.as_bytes()))
}

/// A valid US SSN (area 001-899 but 666, group 01-99, serial 0001-9999).
pub fn ssn(r: &mut Rng) -> String {
    loop {
        let area = r.range(1, 899);
        if area == 666 {
            continue;
        }
        let s = format!("{area:03}{:02}{:04}", r.range(1, 99), r.range(1, 9999));
        if validate::ssn_valid(s.as_bytes()) {
            return s;
        }
    }
}

/// A valid Canadian SIN.
pub fn sin(r: &mut Rng) -> String {
    let first = *r.pick(b"12345679");
    let prefix = format!("{}{}", char::from(first), r.digits(7));
    complete(&prefix, validate::sin_valid).unwrap_or_default()
}

/// A valid UK NINO with its suffix letter.
pub fn nino(r: &mut Rng, suffix: bool) -> String {
    loop {
        let s = format!("{}{}", r.upper(2), r.digits(6));
        let s = if suffix {
            format!("{s}{}", char::from(b'A' + r.below(4) as u8))
        } else {
            s
        };
        if validate::nino_valid(s.as_bytes()) {
            return s;
        }
    }
}

/// A valid Aadhaar number.
pub fn aadhaar(r: &mut Rng) -> String {
    let prefix = format!("{}{}", r.range(2, 9), r.digits(10));
    complete(&prefix, validate::aadhaar_valid).unwrap_or_default()
}

/// A valid 9-digit (or older 8-digit) Australian TFN.
pub fn tfn(r: &mut Rng, eight: bool) -> String {
    loop {
        let prefix = r.digits(if eight { 7 } else { 8 });
        if let Some(s) = complete(&prefix, validate::tfn_valid) {
            return s;
        }
    }
}

/// A valid Brazilian CPF.
pub fn cpf(r: &mut Rng) -> String {
    loop {
        let base = r.digits(9);
        let d: Vec<u64> = base.bytes().map(|b| u64::from(b - b'0')).collect();
        let c1 = (0..9).map(|i| d[i] * (10 - i as u64)).sum::<u64>() * 10 % 11 % 10;
        let c2 = ((0..9).map(|i| d[i] * (11 - i as u64)).sum::<u64>() + c1 * 2) * 10 % 11 % 10;
        let s = format!("{base}{c1}{c2}");
        if validate::cpf_valid(s.as_bytes()) {
            return s;
        }
    }
}

/// A valid card number of a common scheme.
pub fn card(r: &mut Rng) -> String {
    let (prefix, len) = match r.below(4) {
        0 => ("4".to_string(), 16),
        1 => (format!("5{}", r.range(1, 5)), 16),
        2 => (r.pick(&["34", "37"]).to_string(), 15),
        _ => ("6011".to_string(), 16),
    };
    let body = format!("{prefix}{}", r.digits(len - 1 - prefix.len()));
    complete(&body, validate::luhn_valid).unwrap_or_default()
}

/// An IMEI: a device type prefix (`35`, `86`, `01`), 12 digits, a Luhn
/// check digit.
pub fn imei(r: &mut Rng) -> String {
    let body = format!("{}{}", r.pick(&["35", "86", "01"]), r.digits(12));
    complete(&body, validate::luhn_valid).unwrap_or_default()
}

/// A valid card number of one issuer's BIN (a company card programme: the
/// first six digits are the same on every row).
pub fn card_one_bin(r: &mut Rng) -> String {
    let body = format!("455673{}", r.digits(9));
    complete(&body, validate::luhn_valid).unwrap_or_default()
}

/// A valid ABA routing number.
pub fn aba(r: &mut Rng) -> String {
    loop {
        let prefix = *r.pick(&[
            1u64, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21, 22, 26, 31, 32, 61, 63, 67, 71,
        ]);
        let body = format!("{prefix:02}{}", r.digits(6));
        if let Some(s) = complete(&body, validate::aba_valid) {
            return s;
        }
    }
}

/// A valid German IBAN, compact.
pub fn iban(r: &mut Rng) -> String {
    let bban = r.digits(18);
    // Check digits: 98 - (BBAN + "DE00" as digits) mod 97; D=13, E=14.
    let rearranged = format!("{bban}131400");
    let m = rearranged
        .bytes()
        .fold(0u64, |acc, b| (acc * 10 + u64::from(b - b'0')) % 97);
    format!("DE{:02}{bban}", 98 - m)
}

const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf",
];
const LAST: &[&str] = &[
    "smith", "jones", "garcia", "muller", "martin", "rossi", "silva", "kim", "nguyen", "patel",
    "okafor", "larsen",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.example.net",
    "example.co.uk",
    "example.de",
];

/// An email address.
pub fn email(r: &mut Rng) -> String {
    format!(
        "{}.{}{}@{}",
        r.pick(FIRST),
        r.pick(LAST),
        r.below(1000),
        r.pick(DOMAINS)
    )
}

/// A phone number in one of the formats the scanner knows.
pub fn phone(r: &mut Rng) -> String {
    let area = r.range(201, 989);
    let exchange = r.range(200, 999);
    let line = r.below(10_000);
    match r.below(3) {
        0 => format!("+1{area}{exchange}{line:04}"),
        1 => format!("+1 {area} {exchange} {line:04}"),
        _ => format!("+44 20 {:04} {:04}", r.range(3000, 8999), r.below(10_000)),
    }
}

/// An IPv4 address.
pub fn ipv4(r: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        r.range(1, 223),
        r.below(256),
        r.below(256),
        r.range(1, 254)
    )
}

/// A date of birth (ages 18-90 in 2025) in one of several layouts.
pub fn dob(r: &mut Rng, layout: DateLayout) -> String {
    let y = 2025 - r.range(18, 90);
    date(r, y, layout)
}

/// How a date is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateLayout {
    /// `1984-03-07`
    Iso,
    /// `03/07/1984`
    Us,
    /// `07.03.1984`
    Eu,
    /// `19840307`
    Compact,
    /// `1984-03-07 00:00:00`
    Midnight,
}

fn date(r: &mut Rng, y: u64, layout: DateLayout) -> String {
    let m = r.range(1, 12);
    let d = r.range(1, 28);
    match layout {
        DateLayout::Iso => format!("{y}-{m:02}-{d:02}"),
        DateLayout::Us => format!("{m:02}/{d:02}/{y}"),
        DateLayout::Eu => format!("{d:02}.{m:02}.{y}"),
        DateLayout::Compact => format!("{y}{m:02}{d:02}"),
        DateLayout::Midnight => format!("{y}-{m:02}-{d:02} 00:00:00"),
    }
}

/// A date between two years, ISO.
pub fn date_between(r: &mut Rng, from: u64, to: u64) -> String {
    let y = r.range(from, to);
    date(r, y, DateLayout::Iso)
}

/// A timestamp in the last three years, not at midnight.
pub fn timestamp(r: &mut Rng) -> String {
    let y = r.range(2022, 2024);
    let d = date(r, y, DateLayout::Iso);
    format!(
        "{d} {:02}:{:02}:{:02}",
        r.range(0, 23),
        r.range(0, 59),
        r.range(1, 59)
    )
}

/// A GitHub personal access token.
pub fn github_token(r: &mut Rng) -> String {
    let random = r.from(ALNUM, 30);
    let sum = validate::github_checksum(random.as_bytes());
    format!("ghp_{random}{}", String::from_utf8_lossy(&sum))
}

/// An AWS access key id.
pub fn aws_key(r: &mut Rng) -> String {
    format!("AKIA{}", r.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
}

/// A passport number (formats vary by country; no checksum).
pub fn passport(r: &mut Rng) -> String {
    match r.below(3) {
        0 => format!("{}{}", r.upper(1), r.digits(8)),
        1 => r.digits(9),
        _ => format!("{}{}", r.upper(2), r.digits(7)),
    }
}

/// A driver licence number (formats vary by state; no checksum).
pub fn driver_license(r: &mut Rng) -> String {
    format!("{}{}", r.upper(1), r.digits(7))
}

/// A hex digest.
pub fn hex(r: &mut Rng, n: usize) -> String {
    r.from(HEX, n)
}

/// A UUID v4 text.
pub fn uuid(r: &mut Rng) -> String {
    let h = hex(r, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}

/// A product code.
pub fn sku(r: &mut Rng) -> String {
    match r.below(3) {
        0 => format!("{}-{}", r.upper(2), r.digits(5)),
        1 => format!("SKU{}", r.digits(6)),
        _ => format!("{}{}-{}", r.upper(3), r.digits(3), r.upper(1)),
    }
}

/// A booking reference: two letters and six digits, NINO-shaped without
/// the suffix (about half of them pass the NINO rules).
pub fn booking_ref(r: &mut Rng) -> String {
    format!("{}{}", r.upper(2), r.digits(6))
}

/// A US ZIP+4 code written without its dash (nine digits, national spread).
pub fn zip_plus4(r: &mut Rng) -> String {
    format!("{:05}{:04}", r.range(501, 99950), r.range(1, 9999))
}

/// A free-text note, once in a while with an email in it.
pub fn note(r: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "customer",
        "called",
        "about",
        "the",
        "refund",
        "delivery",
        "late",
        "asked",
        "for",
        "invoice",
        "resolved",
        "escalated",
        "waiting",
        "on",
        "warehouse",
    ];
    let mut s: Vec<String> = (0..r.range(4, 12))
        .map(|_| r.pick(WORDS).to_string())
        .collect();
    if r.chance(10) {
        s.push(format!("contact {}", email(r)));
    }
    s.join(" ")
}

/// A product name.
pub fn product(r: &mut Rng) -> String {
    const ADJ: &[&str] = &["Blue", "Large", "Organic", "Classic", "Smart", "Compact"];
    const NOUN: &[&str] = &[
        "Kettle", "Chair", "Coffee", "Lamp", "Backpack", "Monitor", "Tea",
    ];
    format!("{} {}", r.pick(ADJ), r.pick(NOUN))
}

/// A status word.
pub fn status(r: &mut Rng) -> String {
    r.pick(&["active", "pending", "closed", "suspended", "new"])
        .to_string()
}

/// A country code.
pub fn country(r: &mut Rng) -> String {
    r.pick(&["US", "CA", "GB", "DE", "FR", "BR", "IN", "AU"])
        .to_string()
}

/// An amount in cents, spread over five orders of magnitude.
pub fn cents(r: &mut Rng) -> u64 {
    let magnitude = 10u64.pow(r.range(2, 7) as u32);
    r.range(magnitude / 2, magnitude * 5)
}

/// A JSON number or string holding `s` (JSON numbers lose leading zeros).
pub fn json_number_or_string(s: &str, number: bool) -> Value {
    if number && let Ok(n) = s.parse::<u64>() {
        return json!(n);
    }
    json!(s)
}

/// Inserts `sep` after the given digit counts: `group("123456789", &[3, 3], " ")`.
pub fn group(s: &str, sizes: &[usize], sep: &str) -> String {
    let mut out = String::new();
    let mut at = 0;
    for &n in sizes {
        out.push_str(&s[at..at + n]);
        out.push_str(sep);
        at += n;
    }
    out.push_str(&s[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identifiers_validate() {
        let mut r = Rng::new(7);
        for _ in 0..500 {
            assert!(validate::ssn_valid(ssn(&mut r).as_bytes()));
            assert!(validate::sin_valid(sin(&mut r).as_bytes()));
            assert!(validate::nino_valid(nino(&mut r, true).as_bytes()));
            assert!(validate::aadhaar_valid(aadhaar(&mut r).as_bytes()));
            assert!(validate::tfn_valid(tfn(&mut r, false).as_bytes()));
            assert!(validate::tfn_valid(tfn(&mut r, true).as_bytes()));
            assert!(validate::cpf_valid(cpf(&mut r).as_bytes()));
            assert!(validate::card_valid(card(&mut r).as_bytes()));
            assert!(validate::card_valid(card_one_bin(&mut r).as_bytes()));
            assert!(validate::aba_valid(aba(&mut r).as_bytes()));
            assert!(validate::iban_valid(iban(&mut r).as_bytes()));
            assert!(validate::github_token_checksum_valid(
                github_token(&mut r).as_bytes()
            ));
        }
    }

    #[test]
    fn cells_are_deterministic_and_independent() {
        let a = Rng::cell(1, 2, 3, 4).next_u64();
        assert_eq!(a, Rng::cell(1, 2, 3, 4).next_u64());
        assert_ne!(a, Rng::cell(1, 2, 3, 5).next_u64());
        assert_ne!(a, Rng::cell(1, 2, 4, 4).next_u64());
        assert_eq!(group("123456789", &[3, 2], "-"), "123-45-6789");
    }
}
