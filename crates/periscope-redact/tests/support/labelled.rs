//! Deterministic generator of labelled log, JSON and CSV lines with sensitive
//! values and look-alike decoys. Shared by the corpus generator
//! (`examples/gen_corpus.rs`), the corpus test and the throughput benchmark.
//!
//! Labels are inline markers: `«email|alice@example.com»` is a value the
//! scanner must find as `email`, `«~git_sha|3f9a...»` a decoy it must leave
//! alone. [`strip`] removes the markers and returns the labels with their byte
//! spans in the clean line.

#![allow(dead_code)]

use periscope_redact::validate;
use sha2::{Digest, Sha256};

/// SplitMix64: tiny, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| *self.pick(alphabet) as char)
            .collect::<String>()
    }

    pub fn digits(&mut self, n: usize) -> String {
        self.from(DIGITS, n)
    }
}

const DIGITS: &[u8] = b"0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const TOKEN: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const HEXL: &[u8] = b"0123456789abcdef";
const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const PASS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%*+=?~";

fn mark(name: &str, value: &str) -> String {
    format!("«{name}|{value}»")
}

fn decoy(kind: &str, value: &str) -> String {
    format!("«~{kind}|{value}»")
}

/// One label of a stripped line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Entity name, or decoy kind for decoys.
    pub name: String,
    pub decoy: bool,
    pub span: std::ops::Range<usize>,
}

/// Removes the markers; returns the clean line and its labels.
pub fn strip(marked: &str) -> (String, Vec<Label>) {
    let mut out = String::with_capacity(marked.len());
    let mut labels = Vec::new();
    let mut rest = marked;
    while let Some(open) = rest.find('«') {
        out.push_str(&rest[..open]);
        let after = &rest[open + '«'.len_utf8()..];
        let bar = after.find('|').expect("marker has a bar");
        let close = after.find('»').expect("marker is closed");
        let (name, decoy) = match after[..bar].strip_prefix('~') {
            Some(kind) => (kind.to_string(), true),
            None => (after[..bar].to_string(), false),
        };
        let value = &after[bar + 1..close];
        let start = out.len();
        out.push_str(value);
        labels.push(Label {
            name,
            decoy,
            span: start..out.len(),
        });
        rest = &after[close + '»'.len_utf8()..];
    }
    out.push_str(rest);
    (out, labels)
}

// ----- valid values ------------------------------------------------------------

fn luhn_complete(body: &str) -> String {
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|s| validate::luhn_valid(s.as_bytes()))
        .expect("one check digit fits")
}

fn group(digits: &str, sizes: &[usize], sep: &str) -> String {
    let mut parts = Vec::new();
    let mut at = 0;
    for &n in sizes {
        parts.push(&digits[at..at + n]);
        at += n;
    }
    parts.join(sep)
}

fn card_digits(rng: &mut Rng, valid: bool) -> (String, Vec<usize>) {
    let (prefix, len, sizes): (String, usize, Vec<usize>) = match rng.below(6) {
        0 => ("4".into(), 16, vec![4, 4, 4, 4]),
        1 => (format!("5{}", rng.range(1, 5)), 16, vec![4, 4, 4, 4]),
        2 => (format!("3{}", rng.pick(&[4, 7])), 15, vec![4, 6, 5]),
        3 => ("6011".into(), 16, vec![4, 4, 4, 4]),
        4 => (format!("35{}", rng.range(28, 89)), 16, vec![4, 4, 4, 4]),
        _ => (format!("22{}", rng.range(21, 99)), 16, vec![4, 4, 4, 4]),
    };
    let body = format!("{prefix}{}", rng.digits(len - 1 - prefix.len()));
    let good = luhn_complete(&body);
    if valid {
        return (good, sizes);
    }
    let last = good.as_bytes()[len - 1] - b'0';
    (format!("{body}{}", (last + 3) % 10), sizes)
}

fn show_card(rng: &mut Rng, digits: &str, sizes: &[usize]) -> String {
    match rng.below(3) {
        0 => digits.to_string(),
        1 => group(digits, sizes, " "),
        _ => group(digits, sizes, "-"),
    }
}

pub fn card(rng: &mut Rng) -> String {
    let (d, sizes) = card_digits(rng, true);
    show_card(rng, &d, &sizes)
}

pub fn card_bad(rng: &mut Rng) -> String {
    let (d, sizes) = card_digits(rng, false);
    show_card(rng, &d, &sizes)
}

fn iban_with(rng: &mut Rng, valid: bool) -> String {
    let (cc, bban) = match rng.below(6) {
        0 => ("DE", rng.digits(18)),
        1 => (
            "GB",
            format!(
                "{}{}",
                rng.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                rng.digits(14)
            ),
        ),
        2 => ("FR", rng.digits(23)),
        3 => (
            "NL",
            format!(
                "{}{}",
                rng.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                rng.digits(10)
            ),
        ),
        4 => ("ES", rng.digits(20)),
        _ => (
            "IT",
            format!(
                "{}{}",
                rng.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1),
                rng.digits(22)
            ),
        ),
    };
    let good = (2..=98)
        .map(|n| format!("{n:02}"))
        .find(|cd| validate::iban_valid(format!("{cc}{cd}{bban}").as_bytes()))
        .expect("one pair of check digits fits");
    let cd = if valid {
        good
    } else {
        let n: u32 = good.parse().expect("digits");
        format!("{:02}", if n >= 97 { 2 } else { n + 1 })
    };
    let compact = format!("{cc}{cd}{bban}");
    if rng.chance(50) {
        compact
    } else {
        compact
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn iban(rng: &mut Rng) -> String {
    iban_with(rng, true)
}

pub fn iban_bad(rng: &mut Rng) -> String {
    iban_with(rng, false)
}

pub fn ssn(rng: &mut Rng) -> String {
    loop {
        let area = rng.range(1, 899);
        let s = format!("{area:03}{:02}{:04}", rng.range(1, 99), rng.range(1, 9999));
        if validate::ssn_valid(s.as_bytes()) {
            let sep = if rng.chance(80) { "-" } else { " " };
            return format!("{}{sep}{}{sep}{}", &s[..3], &s[3..5], &s[5..]);
        }
    }
}

pub fn ssn_bad(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => format!("000-{:02}-{:04}", rng.range(1, 99), rng.range(1, 9999)),
        1 => format!("666-{:02}-{:04}", rng.range(1, 99), rng.range(1, 9999)),
        2 => format!(
            "9{:02}-{:02}-{:04}",
            rng.below(100),
            rng.range(1, 99),
            rng.range(1, 9999)
        ),
        3 => format!("{:03}-00-{:04}", rng.range(1, 665), rng.range(1, 9999)),
        _ => "078-05-1120".to_string(),
    }
}

const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
];
const LAST: &[&str] = &[
    "smith", "jones", "muller", "martin", "garcia", "rossi", "kowalski", "dubois",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "acme.io",
    "shop.co.uk",
    "firma.de",
    "societe.fr",
    "corp.net",
];

pub fn email(rng: &mut Rng) -> String {
    let sep = rng.pick(&[".", "_", "", "+"]);
    let tag = if *sep == "+" { "news" } else { "" };
    format!(
        "{}{sep}{}{tag}{}@{}",
        rng.pick(FIRST),
        if *sep == "+" { "" } else { rng.pick(LAST) },
        rng.below(100),
        rng.pick(DOMAINS)
    )
}

pub fn email_bad(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("icon-{}@2x.png", rng.below(50)),
        1 => format!("{}@localhost", rng.pick(FIRST)),
        2 => format!("lodash@4.{}.{}", rng.below(20), rng.below(30)),
        _ => format!("worker@build-{}.internal", rng.below(99)),
    }
}

fn us_line(rng: &mut Rng) -> (u64, u64, u64) {
    (rng.range(201, 989), rng.range(200, 999), rng.range(0, 9999))
}

pub fn phone(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => {
            let (a, e, l) = us_line(rng);
            format!("({a}) {e}-{l:04}")
        }
        1 => {
            let (a, e, l) = us_line(rng);
            format!("{a}-{e}-{l:04}")
        }
        2 => {
            let (a, e, l) = us_line(rng);
            format!("+1 {a} {e} {l:04}")
        }
        3 => {
            let (a, e, l) = us_line(rng);
            format!("+1{a}{e}{l:04}")
        }
        4 => format!("+44 20 {} {}", rng.range(3000, 8999), rng.digits(4)),
        5 => format!("020 {} {}", rng.range(3000, 8999), rng.digits(4)),
        6 => format!("07{} {}", rng.range(100, 999), rng.digits(6)),
        7 => format!("+49 30 {}", rng.range(1_000_000, 99_999_999)),
        8 => format!("0151 {}", rng.range(10_000_000, 99_999_999)),
        9 => format!("089/{}", rng.range(1_000_000, 9_999_999)),
        10 => format!(
            "+33 {} {} {} {} {}",
            rng.range(1, 9),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2)
        ),
        _ => format!(
            "0{} {} {} {} {}",
            rng.range(1, 9),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2)
        ),
    }
}

pub fn phone_bad(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("555-1{:02}-{:04}", rng.below(100), rng.below(10_000)),
        1 => format!("+{}.{}%", rng.below(9), rng.below(9)),
        2 => format!("{}-{}", rng.range(1000, 9999), rng.range(10, 99)),
        _ => format!("0{}", rng.digits(5)),
    }
}

pub fn ip(rng: &mut Rng) -> String {
    if rng.chance(75) {
        format!(
            "{}.{}.{}.{}",
            rng.range(1, 223),
            rng.below(256),
            rng.below(256),
            rng.range(1, 254)
        )
    } else if rng.chance(50) {
        format!(
            "2001:db8:{:x}:{:x}::{:x}",
            rng.below(65536),
            rng.below(65536),
            rng.range(1, 65535)
        )
    } else {
        (0..8)
            .map(|_| format!("{:x}", rng.below(65536)))
            .collect::<Vec<_>>()
            .join(":")
    }
}

pub fn ip_bad(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!(
            "{}.{}.{}.{}",
            rng.range(256, 999),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        1 => format!("{}.{}.{}", rng.range(1, 20), rng.below(30), rng.below(30)),
        _ => format!(
            "{}.{}.{}.{}.{}",
            rng.below(10),
            rng.below(10),
            rng.below(10),
            rng.below(10),
            rng.below(10)
        ),
    }
}

fn base58check(rng: &mut Rng, valid: bool) -> String {
    let mut bytes = vec![*rng.pick(&[0x00u8, 0x05])];
    bytes.extend((0..20).map(|_| rng.below(256) as u8));
    let sum = Sha256::digest(Sha256::digest(&bytes));
    bytes.extend_from_slice(&sum[..4]);
    if !valid {
        bytes[24] ^= 0x5a;
    }
    bs58::encode(bytes).into_string()
}

pub fn wallet(rng: &mut Rng) -> String {
    if rng.chance(70) {
        base58check(rng, true)
    } else {
        let program: Vec<u8> = (0..20).map(|_| rng.below(256) as u8).collect();
        bech32::segwit::encode_v0(bech32::hrp::BC, &program).expect("20-byte program is valid")
    }
}

pub fn wallet_bad(rng: &mut Rng) -> String {
    base58check(rng, false)
}

pub fn aba(rng: &mut Rng) -> String {
    loop {
        let body = format!("{:02}{}", rng.range(1, 12), rng.digits(6));
        for d in 0..10 {
            let s = format!("{body}{d}");
            if validate::aba_valid(s.as_bytes()) {
                return s;
            }
        }
    }
}

pub fn order_id(rng: &mut Rng) -> String {
    loop {
        let n = rng.range(6, 18) as usize;
        let s = format!("{}{}", rng.range(1, 9), rng.digits(n - 1));
        if !validate::card_valid(s.as_bytes()) {
            return s;
        }
    }
}

pub fn git_sha(rng: &mut Rng) -> String {
    rng.from(HEXL, 40)
}

pub fn uuid(rng: &mut Rng) -> String {
    let h = rng.from(HEXL, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}

pub fn version(rng: &mut Rng) -> String {
    format!("{}.{}.{}", rng.below(5), rng.below(40), rng.below(30))
}

pub fn latency(rng: &mut Rng) -> String {
    format!("{}.{}ms", rng.below(900), rng.below(1000))
}

pub fn amount(rng: &mut Rng) -> String {
    format!("{}.{:02}", rng.range(1, 9999), rng.below(100))
}

pub fn epoch_ms(rng: &mut Rng) -> String {
    format!("17{}", rng.digits(11))
}

pub fn timestamp(rng: &mut Rng) -> String {
    format!(
        "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        rng.range(1, 12),
        rng.range(1, 28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

pub fn jwt(rng: &mut Rng) -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(
        format!(
            r#"{{"sub":"{}","iat":{}}}"#,
            rng.below(1_000_000),
            1_700_000_000 + rng.below(9_999_999)
        )
        .as_bytes(),
    );
    format!("{header}.{payload}.{}", rng.from(TOKEN, 43))
}

/// A secret of a random kind, as (entity name, value).
pub fn secret_token(rng: &mut Rng) -> (&'static str, String) {
    match rng.below(15) {
        0 => (
            "aws_access_key",
            format!("{}{}", rng.pick(&["AKIA", "ASIA"]), rng.from(B32, 16)),
        ),
        1 => {
            let random = rng.from(ALNUM, 30);
            let sum = validate::github_checksum(random.as_bytes());
            let kind = rng.pick(&["ghp", "gho", "ghs", "ghu", "ghr"]);
            (
                "github_token",
                format!("{kind}_{random}{}", String::from_utf8_lossy(&sum)),
            )
        }
        2 => (
            "github_token",
            format!("github_pat_{}_{}", rng.from(ALNUM, 22), rng.from(ALNUM, 59)),
        ),
        3 => ("gitlab_token", format!("glpat-{}", rng.from(ALNUM, 20))),
        4 => (
            "slack_token",
            format!(
                "xox{}-{}-{}-{}",
                rng.pick(&["b", "p"]),
                rng.digits(12),
                rng.digits(13),
                rng.from(ALNUM, 24)
            ),
        ),
        5 => (
            "slack_webhook",
            format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                rng.from(B32, 8),
                rng.from(B32, 10),
                rng.from(ALNUM, 24)
            ),
        ),
        6 => (
            "stripe_key",
            format!("{}_live_{}", rng.pick(&["sk", "rk"]), rng.from(ALNUM, 24)),
        ),
        7 => ("google_api_key", format!("AIza{}", rng.from(TOKEN, 35))),
        8 => ("openai_key", format!("sk-proj-{}", rng.from(ALNUM, 48))),
        9 => (
            "anthropic_key",
            format!("sk-ant-api03-{}", rng.from(TOKEN, 80)),
        ),
        10 => ("npm_token", format!("npm_{}", rng.from(ALNUM, 36))),
        11 => (
            "pypi_token",
            format!("pypi-AgEIcHlwaS5vcmc{}", rng.from(TOKEN, 60)),
        ),
        12 => (
            "sendgrid_key",
            format!("SG.{}.{}", rng.from(TOKEN, 22), rng.from(TOKEN, 43)),
        ),
        13 => ("vault_token", format!("hvs.{}", rng.from(TOKEN, 90))),
        _ => ("jwt", jwt(rng)),
    }
}

pub fn token_lookalike(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => format!("sk_test_{}", rng.from(ALNUM, 24)),
        1 => format!("ghp_{}", rng.from(ALNUM, 8)),
        2 => format!("sha256:{}", rng.from(HEXL, 64)),
        3 => format!("pk_live_{}", rng.from(ALNUM, 24)),
        _ => format!("AKIA{}", rng.from(B32, 8)),
    }
}

pub fn password(rng: &mut Rng) -> String {
    let n = rng.range(8, 20) as usize;
    rng.from(PASS, n)
}

pub fn pem(rng: &mut Rng) -> String {
    let kind = rng.pick(&[
        "RSA PRIVATE KEY",
        "PRIVATE KEY",
        "EC PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
    ]);
    let body = (0..3)
        .map(|_| {
            rng.from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                64,
            )
        })
        .collect::<Vec<_>>()
        .join("\\n");
    format!("-----BEGIN {kind}-----\\n{body}\\n-----END {kind}-----")
}

// ----- lines ---------------------------------------------------------------------

fn level(rng: &mut Rng) -> &'static str {
    const LEVELS: [&str; 4] = ["INFO ", "DEBUG", "WARN ", "ERROR"];
    LEVELS[rng.below(4) as usize]
}

/// A log line; `sensitive` chooses between templates with sensitive values and
/// templates with only decoys and ordinary noise.
pub fn log_line(rng: &mut Rng, sensitive: bool) -> String {
    let ts = timestamp(rng);
    let lvl = level(rng);
    if !sensitive {
        return match rng.below(10) {
            0 => format!(
                "{ts} {lvl} http request_id={} method=GET path=/v1/orders/{} status=200 latency={}",
                decoy("uuid", &uuid(rng)),
                decoy("order_id", &order_id(rng)),
                decoy("latency", &latency(rng))
            ),
            1 => format!(
                "{ts} {lvl} deploy version={} commit={} epoch={}",
                decoy("version", &version(rng)),
                decoy("git_sha", &git_sha(rng)),
                decoy("epoch_ms", &epoch_ms(rng))
            ),
            2 => format!(
                "{ts} {lvl} payment declined card={} amount={} EUR",
                decoy("card_luhn", &card_bad(rng)),
                decoy("amount", &amount(rng))
            ),
            3 => format!(
                "{ts} {lvl} payout rejected iban={} reason=checksum",
                decoy("iban_checksum", &iban_bad(rng))
            ),
            4 => format!(
                "{ts} {lvl} kyc rejected ssn={} reason=invalid",
                decoy("ssn_rules", &ssn_bad(rng))
            ),
            5 => format!(
                "{ts} {lvl} sms not sent to {} (invalid) retry in {}",
                decoy("phone_shape", &phone_bad(rng)),
                decoy("latency", &latency(rng))
            ),
            6 => format!(
                "{ts} {lvl} peer {} ignored, asset {} cached",
                decoy("ip_shape", &ip_bad(rng)),
                decoy("email_shape", &email_bad(rng))
            ),
            7 => format!(
                "{ts} {lvl} withdrawal blocked for {} (bad checksum), order {} shipped",
                decoy("wallet_checksum", &wallet_bad(rng)),
                decoy("order_id", &order_id(rng))
            ),
            8 => format!(
                "{ts} {lvl} config test_key={} Bearer token expired, ttl={}s",
                decoy("token_lookalike", &token_lookalike(rng)),
                rng.below(3600)
            ),
            _ => format!(
                "{ts} {lvl} gc pause={} heap={}MB build {} trace={}",
                decoy("latency", &latency(rng)),
                rng.below(4096),
                decoy("version", &version(rng)),
                decoy("git_sha", &git_sha(rng))
            ),
        };
    }
    match rng.below(14) {
        0 => format!(
            "{ts} {lvl} auth login failed for {} from {} attempt={}",
            mark("email", &email(rng)),
            mark("ip", &ip(rng)),
            rng.below(5)
        ),
        1 => format!(
            "{ts} {lvl} payment card={} amount={} order={}",
            mark("card", &card(rng)),
            decoy("amount", &amount(rng)),
            decoy("order_id", &order_id(rng))
        ),
        2 => format!(
            "{ts} {lvl} payout to {} routing number {} ref={}",
            mark("iban", &iban(rng)),
            mark("aba_routing", &aba(rng)),
            decoy("order_id", &order_id(rng))
        ),
        3 => format!(
            "{ts} {lvl} db connect failed dsn=postgres://{}@db.internal:5432/shop",
            mark(
                "url_credentials",
                &format!("app_{}:{}", rng.below(9), password(rng))
            )
        ),
        4 => format!(
            "{ts} {lvl} outbound Authorization: Bearer {} trace={}",
            mark("auth_header", &rng.from(ALNUM, 40)),
            decoy("git_sha", &git_sha(rng))
        ),
        5 => format!(
            "{ts} {lvl} config loaded password={} timeout=30s",
            mark("secret", &password(rng))
        ),
        6 => format!(
            "{ts} {lvl} sms sent to {} status=queued id={}",
            mark("phone", &phone(rng)),
            decoy("uuid", &uuid(rng))
        ),
        7 => format!(
            "{ts} {lvl} kyc ssn={} checked in {}",
            mark("ssn", &ssn(rng)),
            decoy("latency", &latency(rng))
        ),
        8 | 9 => {
            let (name, value) = secret_token(rng);
            format!(
                "{ts} {lvl} credential seen value={} build={}",
                mark(name, &value),
                decoy("version", &version(rng))
            )
        }
        10 => format!(
            "{ts} {lvl} withdrawal to {} fee={}",
            mark("crypto_wallet", &wallet(rng)),
            decoy("amount", &amount(rng))
        ),
        11 => format!("{ts} {lvl} loaded key={}", mark("private_key", &pem(rng))),
        12 => format!(
            "{ts} {lvl} user {} changed phone to {}",
            mark("email", &email(rng)),
            mark("phone", &phone(rng))
        ),
        _ => {
            let (name, value) = secret_token(rng);
            format!(
                "{ts} {lvl} env dump HOME=/root TOKEN_VALUE {} PATH=/usr/bin",
                mark(name, &value)
            )
        }
    }
}

/// A JSON line (one document).
pub fn json_line(rng: &mut Rng, sensitive: bool) -> String {
    let ts = timestamp(rng);
    if !sensitive {
        return match rng.below(4) {
            0 => format!(
                r#"{{"ts":"{ts}","level":"info","event":"deploy","version":"{}","commit":"{}"}}"#,
                decoy("version", &version(rng)),
                decoy("git_sha", &git_sha(rng))
            ),
            1 => format!(
                r#"{{"ts":"{ts}","event":"order","order_id":"{}","amount":{},"trace_id":"{}"}}"#,
                decoy("order_id", &order_id(rng)),
                decoy("amount", &amount(rng)),
                decoy("uuid", &uuid(rng))
            ),
            2 => format!(
                r#"{{"ts":"{ts}","event":"metrics","latency":"{}","epoch_ms":{}}}"#,
                decoy("latency", &latency(rng)),
                decoy("epoch_ms", &epoch_ms(rng))
            ),
            _ => format!(
                r#"{{"ts":"{ts}","event":"declined","card":"{}","iban":"{}"}}"#,
                decoy("card_luhn", &card_bad(rng)),
                decoy("iban_checksum", &iban_bad(rng))
            ),
        };
    }
    match rng.below(7) {
        0 => format!(
            r#"{{"ts":"{ts}","event":"signup","user":{{"email":"{}","phone":"{}"}},"ip":"{}","trace_id":"{}"}}"#,
            mark("email", &email(rng)),
            mark("phone", &phone(rng)),
            mark("ip", &ip(rng)),
            decoy("uuid", &uuid(rng))
        ),
        1 => format!(
            r#"{{"ts":"{ts}","event":"payment","card":"{}","amount":{},"order_id":"{}"}}"#,
            mark("card", &card(rng)),
            decoy("amount", &amount(rng)),
            decoy("order_id", &order_id(rng))
        ),
        2 => format!(
            r#"{{"ts":"{ts}","event":"config","db":{{"host":"db.internal","password":"{}"}}}}"#,
            mark("secret", &password(rng))
        ),
        3 => format!(
            r#"{{"ts":"{ts}","event":"api_call","headers":{{"authorization":"Bearer {}"}}}}"#,
            mark("auth_header", &rng.from(ALNUM, 32))
        ),
        4 => format!(
            r#"{{"ts":"{ts}","event":"kyc","ssn":"{}","iban":"{}"}}"#,
            mark("ssn", &ssn(rng)),
            mark("iban", &iban(rng))
        ),
        5 => {
            let (name, value) = secret_token(rng);
            format!(
                r#"{{"ts":"{ts}","event":"leak_check","value":"{}","commit":"{}"}}"#,
                mark(name, &value),
                decoy("git_sha", &git_sha(rng))
            )
        }
        _ => format!(
            r#"{{"ts":"{ts}","event":"payout","wallet":"{}","routing":"aba {}"}}"#,
            mark("crypto_wallet", &wallet(rng)),
            mark("aba_routing", &aba(rng))
        ),
    }
}

/// The CSV header matching [`csv_line`].
pub const CSV_HEADER: &str = "id,customer,email,phone,card,iban,created_at,amount,note";

/// A CSV row.
pub fn csv_line(rng: &mut Rng, sensitive: bool) -> String {
    let id = decoy("order_id", &order_id(rng));
    let ts = timestamp(rng);
    let amt = decoy("amount", &amount(rng));
    let customer = format!("customer-{}", rng.below(100_000));
    if !sensitive {
        let note = match rng.below(3) {
            0 => format!("retry {}", decoy("uuid", &uuid(rng))),
            1 => format!("declined {}", decoy("card_luhn", &card_bad(rng))),
            _ => format!("build {}", decoy("version", &version(rng))),
        };
        return format!("{id},{customer},,,,,{ts},{amt},{note}");
    }
    let note = match rng.below(4) {
        0 => format!("\"call {} after 5pm\"", mark("phone", &phone(rng))),
        1 => format!("ssn {}", mark("ssn", &ssn(rng))),
        2 => format!("from {}", mark("ip", &ip(rng))),
        _ => "ok".to_string(),
    };
    format!(
        "{id},{customer},{},{},{},{},{ts},{amt},{note}",
        mark("email", &email(rng)),
        mark("phone", &phone(rng)),
        mark("card", &card(rng)),
        mark("iban", &iban(rng)),
    )
}

/// The seed of the checked-in corpus.
pub const CORPUS_SEED: u64 = 0x5EED_2026;

/// The labelled corpus, as (file name, content); regenerated by
/// `cargo run -p periscope-redact --example gen_corpus`.
pub fn corpus() -> Vec<(&'static str, String)> {
    let mut rng = Rng::new(CORPUS_SEED);
    let mut log = String::new();
    for _ in 0..2000 {
        let sensitive = rng.chance(45);
        log.push_str(&log_line(&mut rng, sensitive));
        log.push('\n');
    }
    let mut json = String::new();
    for _ in 0..1500 {
        let sensitive = rng.chance(50);
        json.push_str(&json_line(&mut rng, sensitive));
        json.push('\n');
    }
    let mut csv = format!("{CSV_HEADER}\n");
    for _ in 0..1500 {
        let sensitive = rng.chance(60);
        csv.push_str(&csv_line(&mut rng, sensitive));
        csv.push('\n');
    }
    vec![
        ("app.log", log),
        ("events.jsonl", json),
        ("customers.csv", csv),
    ]
}

/// An ordinary line: timestamps, paths, ids, durations, SQL, no sensitive value
/// and no deliberate look-alike. Most of a real log is like this.
pub fn plain_line(rng: &mut Rng) -> String {
    let ts = timestamp(rng);
    match rng.below(8) {
        0 => format!(
            "{ts} INFO  http GET /api/v1/items/{} 200 {} bytes={} ua=\"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\"",
            rng.below(100_000),
            latency(rng),
            rng.below(90_000)
        ),
        1 => format!(
            "{ts} DEBUG worker job={} queue=default attempts={} duration={}",
            rng.below(1_000_000),
            rng.range(1, 3),
            latency(rng)
        ),
        2 => format!(
            "{ts} INFO  cache stats hit_ratio=0.{} keys={} evictions={} shard={}",
            rng.below(1000),
            rng.below(100_000),
            rng.below(500),
            rng.below(16)
        ),
        3 => format!(
            "{ts} WARN  slow query took {}ms: SELECT id, status, total FROM orders WHERE created_at > now() - interval '1 day' LIMIT {}",
            rng.range(200, 5000),
            rng.below(500)
        ),
        4 => format!(
            r#"{{"ts":"{ts}","level":"info","msg":"request completed","method":"GET","path":"/healthz","status":200,"duration_ms":{}}}"#,
            rng.below(50)
        ),
        5 => format!(
            r#"{{"ts":"{ts}","level":"debug","msg":"scheduler tick","pending":{},"running":{},"node":"worker-{}"}}"#,
            rng.below(100),
            rng.below(16),
            rng.below(8)
        ),
        6 => format!(
            "sku-{},Widget model {},{},{},in_stock,{ts}",
            rng.below(100_000),
            rng.below(500),
            amount(rng),
            rng.below(1000)
        ),
        _ => format!(
            "{ts} ERROR upstream timeout after {} retries, circuit open for {}s (service=inventory region=eu-west-1)",
            rng.range(1, 5),
            rng.range(5, 60)
        ),
    }
}

/// Unlabelled text for benchmarks: 70% ordinary lines, 20% lines with
/// look-alike decoys, 10% lines with sensitive values (log, JSON and CSV mixed),
/// until `bytes` are reached.
pub fn mixed_text(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(bytes + 512);
    while out.len() < bytes {
        let kind = rng.below(10);
        if kind < 7 {
            out.push_str(&plain_line(&mut rng));
            out.push('\n');
            continue;
        }
        let sensitive = kind == 9;
        let line = match rng.below(10) {
            0..=5 => log_line(&mut rng, sensitive),
            6..=7 => json_line(&mut rng, sensitive),
            _ => csv_line(&mut rng, sensitive),
        };
        out.push_str(&strip(&line).0);
        out.push('\n');
    }
    out
}
