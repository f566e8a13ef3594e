//! What each corpus column holds: a generator per column, producing the text
//! PostgreSQL would print for the cell.

use serde_json::{Value, json};

use super::values::{self as v, DateLayout, Rng};

/// How digits are grouped when written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sep {
    /// `536221234`
    Bare,
    /// `536 22 1234` (the identifier's usual groups)
    Spaced,
    /// `536-22-1234`
    Dashed,
}

/// JSON documents with identifiers at known paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// An order: `$.customer.tax_id` (CPF), `$.customer.email`,
    /// `$.meta.ref` (a SIN under a neutral key), items with SKUs and prices.
    Order,
    /// `$.ids[*]` (Aadhaar numbers in an array), `$.k1` (NINO), tags, score.
    Attrs,
    /// A map keyed by user ids: `$.*.dob`, `$.*.x` (TFN under a neutral key).
    ProfileMap,
    /// An array of events: `$[*].ip`, `$[*].user.email`, types and times.
    Events,
    /// Imported bank details, in a text column: `$.acct.routing` (ABA),
    /// `$.acct.number` (an account number: not an entity),
    /// `$.holder.tax_no` (CPF, formatted).
    RawAcct,
    /// An order with no personal data: numbers, totals, ZIP codes, SKUs.
    OrderDecoy,
    /// Service settings: `$.github.api_token` (a GitHub token), names, retries.
    Config,
    /// A partner record with identifiers under one-letter keys:
    /// `$.party.c` (SSN), `$.party.n` (CPF as a JSON number), `$.party.d`
    /// (date of birth), `$.party.contact.e` / `.p` (email, phone),
    /// `$.payout.acct` (IBAN), `$.payout.cards[*]` (cards).
    Partner,
}

/// A column's generator.
#[derive(Debug, Clone, PartialEq)]
pub enum Gen {
    // Identifiers and personal data.
    /// US SSN.
    Ssn(Sep),
    /// Canadian SIN.
    Sin(Sep),
    /// UK NINO, with or without its suffix, spaced or compact.
    Nino {
        /// The suffix letter.
        suffix: bool,
        /// `AB 12 34 56 C`.
        spaced: bool,
    },
    /// Aadhaar.
    Aadhaar(Sep),
    /// Australian TFN.
    Tfn {
        /// The older 8-digit form.
        eight: bool,
        /// `123 456 782`.
        spaced: bool,
    },
    /// Brazilian CPF, bare or `529.982.247-25`.
    Cpf {
        /// With its punctuation.
        formatted: bool,
    },
    /// Card numbers of several schemes.
    Card(Sep),
    /// Card numbers of one issuer BIN.
    CardOneBin,
    /// ABA routing numbers.
    Aba,
    /// German IBANs.
    Iban,
    /// Emails.
    Email,
    /// Phone numbers.
    Phone,
    /// IPv4 addresses.
    Ip,
    /// Dates of birth.
    Dob(DateLayout),
    /// GitHub tokens.
    GithubToken,
    /// AWS access key ids.
    AwsKey,
    /// Passport numbers.
    Passport,
    /// Driver licence numbers.
    DriverLicense,
    /// Italian fiscal codes (`RSSMRA85T10A562S`).
    FiscalCode,
    /// A person's first and last name.
    PersonName,
    /// SSN placeholders with the last four kept (`XXX-XX-1234`).
    MaskedSsn,
    /// The inner generator's text in lower case.
    Lower(Box<Gen>),
    /// The inner generator's digits as an integer (leading zeros dropped).
    Int(Box<Gen>),
    /// A PostgreSQL array of 1 to 3 elements.
    Array(Box<Gen>),
    /// A JSON document.
    Json(Doc),

    // Look-alikes and ordinary data.
    /// `start + row`.
    Seq(u64),
    /// Nine-digit sequential ids (`100000000 + row`).
    Seq9,
    /// Order numbers: `ORD-` and digits, or 8-12 bare digits.
    OrderNo,
    /// Epoch seconds (10 digits).
    EpochSeconds,
    /// Epoch milliseconds (13 digits).
    EpochMillis,
    /// Amounts in cents.
    Cents,
    /// Prices `12.99`.
    Price,
    /// Small counts.
    Count,
    /// Percentages `37.5`.
    Percent,
    /// Coordinates `48.8566`.
    Coordinate,
    /// Five-digit ZIP codes.
    Zip5,
    /// ZIP+4 without the dash.
    ZipPlus4,
    /// Ten-digit internal ids shaped like NANP numbers, bare.
    PhoneLikeId,
    /// Hex digests of n characters.
    Hash(usize),
    /// UUIDs as text.
    Uuid,
    /// Uniformly random digits of a length (zero-padded).
    Random(usize),
    /// SKUs.
    Sku,
    /// Booking references: NINO-shaped without the suffix.
    BookingRef,
    /// Nine-digit member numbers from one SSN-valid prefix (`123` + 6).
    ClusteredNine,
    /// Timestamps in the last three years (`timestamptz` output).
    CreatedAt,
    /// Dates between two years.
    DateBetween(u64, u64),
    /// Sines and metal contents: decimals in [-1, 1].
    Unit,
    /// Version strings `1.4.2`.
    Version,
    /// `t` / `f`.
    Flag,
    /// Status words.
    Status,
    /// Country codes.
    Country,
    /// Product names.
    Product,
    /// Free text, sometimes with an email inside.
    Note,
    /// Stripe-like tax category codes (`txcd_10000000`).
    TaxCode,
    /// `MM/YY` card expiry.
    Expiry,
    /// Six random letters and digits.
    ShortCode,
    /// Four digits.
    Last4,
    /// IMEIs: 15 digits with a Luhn check digit, like cards, but with
    /// device prefixes no card scheme uses.
    Imei,
}

impl Gen {
    /// One cell's text, before nulls, blanks and dirt.
    pub fn cell(&self, r: &mut Rng, row: u64) -> String {
        match self {
            Gen::Ssn(sep) => {
                let s = v::ssn(r);
                sep_groups(&s, *sep, &[3, 2])
            }
            Gen::Sin(sep) => sep_groups(&v::sin(r), *sep, &[3, 3]),
            Gen::Nino { suffix, spaced } => {
                let s = v::nino(r, *suffix);
                if *spaced {
                    v::group(&s, &[2, 2, 2, 2], " ").trim().to_string()
                } else {
                    s
                }
            }
            Gen::Aadhaar(sep) => sep_groups(&v::aadhaar(r), *sep, &[4, 4]),
            Gen::Tfn { eight, spaced } => {
                let s = v::tfn(r, *eight);
                if *spaced && !*eight {
                    v::group(&s, &[3, 3], " ")
                } else {
                    s
                }
            }
            Gen::Cpf { formatted } => {
                let s = v::cpf(r);
                if *formatted {
                    format!("{}.{}.{}-{}", &s[..3], &s[3..6], &s[6..9], &s[9..])
                } else {
                    s
                }
            }
            Gen::Card(sep) => {
                let s = v::card(r);
                let groups: &[usize] = if s.len() == 15 { &[4, 6] } else { &[4, 4, 4] };
                sep_groups(&s, *sep, groups)
            }
            Gen::CardOneBin => v::card_one_bin(r),
            Gen::Aba => v::aba(r),
            Gen::Iban => v::iban(r),
            Gen::Email => v::email(r),
            Gen::Phone => v::phone(r),
            Gen::Ip => v::ipv4(r),
            Gen::Dob(layout) => v::dob(r, *layout),
            Gen::GithubToken => v::github_token(r),
            Gen::AwsKey => v::aws_key(r),
            Gen::Passport => v::passport(r),
            Gen::DriverLicense => v::driver_license(r),
            Gen::FiscalCode => fiscal_code(r),
            Gen::PersonName => person_name(r),
            Gen::MaskedSsn => format!("XXX-XX-{:04}", r.below(10_000)),
            Gen::Lower(inner) => inner.cell(r, row).to_ascii_lowercase(),
            Gen::Int(inner) => {
                let s = inner.cell(r, row);
                let t = s.trim_start_matches('0');
                if t.is_empty() { "0".into() } else { t.into() }
            }
            Gen::Array(inner) => {
                let n = r.range(1, 3);
                let items: Vec<String> = (0..n).map(|_| array_item(&inner.cell(r, row))).collect();
                format!("{{{}}}", items.join(","))
            }
            Gen::Json(doc) => doc.generate(r).to_string(),
            Gen::Seq(start) => (start + row).to_string(),
            Gen::Seq9 => (100_000_000 + row % 900_000_000).to_string(),
            Gen::OrderNo => {
                if r.chance(50) {
                    format!("ORD-{}", r.range(100_000, 9_999_999))
                } else {
                    let len = r.range(8, 12) as u32;
                    r.range(10u64.pow(len - 1), 10u64.pow(len) - 1).to_string()
                }
            }
            Gen::EpochSeconds => r.range(1_500_000_000, 1_760_000_000).to_string(),
            Gen::EpochMillis => r.range(1_500_000_000_000, 1_760_000_000_000).to_string(),
            Gen::Cents => v::cents(r).to_string(),
            Gen::Price => format!("{}.{:02}", r.range(0, 499), r.below(100)),
            Gen::Count => r.range(0, 250).to_string(),
            Gen::Percent => format!("{}.{}", r.range(0, 99), r.below(10)),
            Gen::Coordinate => format!("{}.{:04}", r.range(0, 89), r.below(10_000)),
            Gen::Zip5 => format!("{:05}", r.range(501, 99950)),
            Gen::ZipPlus4 => v::zip_plus4(r),
            Gen::PhoneLikeId => format!("{}{:09}", r.range(2, 9), r.below(1_000_000_000)),
            Gen::Hash(n) => v::hex(r, *n),
            Gen::Uuid => v::uuid(r),
            Gen::Random(n) => (0..*n)
                .map(|_| char::from(b'0' + r.below(10) as u8))
                .collect(),
            Gen::Sku => v::sku(r),
            Gen::BookingRef => v::booking_ref(r),
            Gen::ClusteredNine => format!("123{:06}", r.range(1, 999_999)),
            Gen::CreatedAt => format!("{}+00", v::timestamp(r)),
            Gen::DateBetween(from, to) => v::date_between(r, *from, *to),
            Gen::Unit => {
                let x = r.below(20_001) as f64 / 10_000.0 - 1.0;
                format!("{x:.4}")
            }
            Gen::Version => format!("{}.{}.{}", r.range(0, 9), r.range(0, 30), r.range(0, 99)),
            Gen::Flag => if r.chance(50) { "t" } else { "f" }.into(),
            Gen::Status => v::status(r),
            Gen::Country => v::country(r),
            Gen::Product => v::product(r),
            Gen::Note => v::note(r),
            Gen::TaxCode => format!("txcd_{}", r.range(10_000_000, 99_999_999)),
            Gen::Expiry => format!("{:02}/{}", r.range(1, 12), r.range(25, 32)),
            Gen::ShortCode => (0..6)
                .map(|_| {
                    char::from(
                        *b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
                            .get(r.below(32) as usize)
                            .unwrap_or(&b'A'),
                    )
                })
                .collect(),
            Gen::Last4 => format!("{:04}", r.below(10_000)),
            Gen::Imei => v::imei(r),
        }
    }

    /// A plausible dirty value for this generator: a placeholder, or the
    /// value with one digit changed (a typo).
    pub fn dirty(&self, r: &mut Rng, row: u64) -> String {
        let clean = self.cell(r, row);
        match r.below(3) {
            0 => r_pick(r, &["N/A", "unknown", "TBD", "0", "-"]).to_string(),
            _ => {
                let mut b = clean.into_bytes();
                if let Some(i) = b.iter().rposition(u8::is_ascii_digit) {
                    b[i] = b'0' + (b[i] - b'0' + 1) % 10;
                }
                String::from_utf8(b).unwrap_or_default()
            }
        }
    }
}

fn r_pick<'a>(r: &mut Rng, items: &[&'a str]) -> &'a str {
    items[r.below(items.len() as u64) as usize]
}

fn sep_groups(s: &str, sep: Sep, sizes: &[usize]) -> String {
    match sep {
        Sep::Bare => s.to_string(),
        Sep::Spaced => v::group(s, sizes, " "),
        Sep::Dashed => v::group(s, sizes, "-"),
    }
}

/// An element of a PostgreSQL array literal, quoted when needed.
fn array_item(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.eq_ignore_ascii_case("null")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@' | b'+'));
    if plain {
        s.to_string()
    } else {
        let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

fn fiscal_code(r: &mut Rng) -> String {
    let letters = |r: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'A' + r.below(26) as u8))
            .collect()
    };
    format!(
        "{}{:02}{}{:02}{}{:03}{}",
        letters(r, 6),
        r.below(100),
        letters(r, 1),
        r.range(1, 71),
        letters(r, 1),
        r.below(1000),
        letters(r, 1)
    )
}

fn person_name(r: &mut Rng) -> String {
    const FIRST: &[&str] = &[
        "Alice", "Bruno", "Chloe", "Deepak", "Elena", "Farah", "Gustav", "Hana",
    ];
    const LAST: &[&str] = &[
        "Moreau", "Okafor", "Silva", "Tanaka", "Weber", "Kowalski", "Haddad",
    ];
    format!("{} {}", r_pick(r, FIRST), r_pick(r, LAST))
}

impl Doc {
    fn generate(self, r: &mut Rng) -> Value {
        match self {
            Doc::Order => {
                let cpf = v::cpf(r);
                let items: Vec<Value> = (0..r.range(1, 3))
                    .map(|_| json!({"sku": v::sku(r), "qty": r.range(1, 5), "price_cents": v::cents(r)}))
                    .collect();
                json!({
                    "customer": {
                        "tax_id": format!("{}.{}.{}-{}", &cpf[..3], &cpf[3..6], &cpf[6..9], &cpf[9..]),
                        "name": person_name(r),
                        "email": v::email(r),
                    },
                    "items": items,
                    "meta": {"ref": v::sin(r), "source": v::status(r)},
                    "created": v::timestamp(r),
                })
            }
            Doc::Attrs => {
                let ids: Vec<Value> = (0..r.range(1, 3)).map(|_| json!(v::aadhaar(r))).collect();
                json!({
                    "ids": ids,
                    "k1": v::nino(r, true),
                    "tags": [v::status(r), v::country(r)],
                    "score": r.range(0, 100),
                })
            }
            Doc::ProfileMap => {
                let mut map = serde_json::Map::new();
                for _ in 0..r.range(1, 3) {
                    map.insert(
                        format!("u_{}", r.range(1_000_000, 9_999_999)),
                        json!({"dob": v::dob(r, DateLayout::Iso), "x": v::tfn(r, false), "plan": v::status(r)}),
                    );
                }
                Value::Object(map)
            }
            Doc::Events => {
                let events: Vec<Value> = (0..r.range(1, 4))
                    .map(|_| {
                        json!({
                            "type": r_pick(r, &["login", "logout", "view", "purchase"]),
                            "ip": v::ipv4(r),
                            "at": v::timestamp(r),
                            "user": {"email": v::email(r), "plan": v::status(r)},
                        })
                    })
                    .collect();
                Value::Array(events)
            }
            Doc::RawAcct => {
                let cpf = v::cpf(r);
                json!({
                    "acct": {"routing": v::aba(r), "number": r.range(10_000_000, 999_999_999_999u64).to_string()},
                    "holder": {"tax_no": format!("{}.{}.{}-{}", &cpf[..3], &cpf[3..6], &cpf[6..9], &cpf[9..]), "country": "BR"},
                })
            }
            Doc::OrderDecoy => {
                let lines: Vec<Value> = (0..r.range(1, 4))
                    .map(|_| json!({"sku": v::sku(r), "qty": r.range(1, 9)}))
                    .collect();
                json!({
                    "order": {"number": r.range(10_000_000, 99_999_999), "total_cents": v::cents(r), "zip": format!("{:05}", r.range(501, 99950))},
                    "lines": lines,
                    "placed": r.range(1_500_000_000, 1_760_000_000),
                })
            }
            Doc::Partner => {
                let cards: Vec<Value> = (0..r.range(1, 2)).map(|_| json!(v::card(r))).collect();
                json!({
                    "party": {
                        "c": v::ssn(r),
                        "n": v::json_number_or_string(&v::cpf(r), true),
                        "d": v::dob(r, DateLayout::Iso),
                        "contact": {"e": v::email(r), "p": v::phone(r)},
                        "kind": v::status(r),
                    },
                    "payout": {"acct": v::iban(r), "cards": cards, "min_cents": v::cents(r)},
                })
            }
            Doc::Config => json!({
                "github": {"api_token": v::github_token(r), "org": "example"},
                "name": v::product(r),
                "retries": r.range(0, 5),
            }),
        }
    }
}
