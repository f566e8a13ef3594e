//! Seeded, deterministic fake data for a shop database: customers with every
//! kind of personal data Periscope must mask, plus orders and payments.
//!
//! Values are realistic enough to pass the engine's validators (Luhn-valid
//! cards, IBANs with correct check digits, SSNs outside reserved ranges) so
//! that a masking test proves something. None of them belongs to a real person.

use std::fmt::Write as _;

/// The schema of the fixture database. Column names are chosen the way a real
/// application would name them, so the name classifier has work to do.
pub const SHOP_SCHEMA: &str = "\
CREATE TABLE customers (
    id          bigint PRIMARY KEY,
    name        text NOT NULL,
    email       text NOT NULL,
    phone       text,
    ssn         text,
    card_number text,
    iban        text,
    notes       text,
    created_at  timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z'
);
CREATE TABLE orders (
    id           bigint PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers(id),
    amount_cents bigint NOT NULL,
    status       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z'
);
CREATE TABLE payments (
    id           bigint PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES orders(id),
    card_number  text NOT NULL,
    amount_cents bigint NOT NULL,
    approved     boolean NOT NULL
);
";

/// One fake customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Primary key, from 1.
    pub id: i64,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone number in international format.
    pub phone: String,
    /// US social security number, `ddd-dd-dddd`.
    pub ssn: String,
    /// Payment card number, digits only, Luhn-valid.
    pub card_number: String,
    /// German IBAN with valid check digits.
    pub iban: String,
    /// Free text written by support staff; often repeats the email or phone,
    /// which only content scanning can catch.
    pub notes: String,
}

impl Customer {
    /// Every sensitive value of this customer: a masking test asserts that
    /// none of them reaches the client.
    pub fn sensitive_values(&self) -> Vec<&str> {
        vec![
            &self.email,
            &self.phone,
            &self.ssn,
            &self.card_number,
            &self.iban,
        ]
    }
}

const FIRST: &[&str] = &[
    "Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kamala", "Lena", "Marco", "Nadia", "Oskar", "Priya",
];
const LAST: &[&str] = &[
    "Schmidt", "Martin", "Okafor", "Nguyen", "Rossi", "Kowalski", "Silva", "Haddad", "Larsen",
    "Moreau", "Tanaka", "Fischer",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "example.net",
    "shop.example.de",
];

/// A small deterministic generator (SplitMix64): fixtures must be identical
/// on every run and machine, and tests must not depend on a `rand` version.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        Seeded(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.range(0, items.len() as u64) as usize]
    }

    /// `n` random decimal digits.
    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.range(0, 10) as u8))
            .collect()
    }
}

/// `n` customers, the same for the same seed.
pub fn customers(n: usize, seed: u64) -> Vec<Customer> {
    let mut rng = Seeded::new(seed);
    (1..=n as i64)
        .map(|id| {
            let first = rng.pick(FIRST);
            let last = rng.pick(LAST);
            let email = format!(
                "{}.{}{}@{}",
                first.to_lowercase(),
                last.to_lowercase(),
                id,
                rng.pick(DOMAINS)
            );
            let phone = phone_number(&mut rng);
            let notes = match rng.range(0, 5) {
                0 => format!("Customer asked to be called back on {phone}."),
                1 => format!("Duplicate account; write to {email} before merging."),
                2 => "Refund issued for order 48213 on 2026-03-01 (EUR 19.99).".to_string(),
                3 => "VIP since 2019, prefers invoices by post.".to_string(),
                _ => String::new(),
            };
            Customer {
                id,
                name: format!("{first} {last}"),
                email,
                phone,
                ssn: ssn(&mut rng),
                card_number: card_number(&mut rng),
                iban: german_iban(&mut rng),
                notes,
            }
        })
        .collect()
}

fn phone_number(rng: &mut Seeded) -> String {
    match rng.range(0, 4) {
        0 => format!("+1 415-{}-{}", rng.range(201, 999), rng.digits(4)),
        1 => format!("+44 20 7946 {}", rng.digits(4)),
        2 => format!("+49 30 {} {}", rng.range(2000, 9999), rng.digits(4)),
        _ => format!("+33 1 42 68 {} {}", rng.digits(2), rng.digits(2)),
    }
}

/// A syntactically valid SSN: area 001-665 or 667-899, group 01-99, serial 0001-9999.
pub fn ssn(rng: &mut Seeded) -> String {
    let mut area = rng.range(1, 900);
    if area == 666 {
        area = 667;
    }
    format!(
        "{area:03}-{:02}-{:04}",
        rng.range(1, 100),
        rng.range(1, 10_000)
    )
}

/// A Luhn-valid 16-digit Visa or Mastercard number.
pub fn card_number(rng: &mut Seeded) -> String {
    let prefix = if rng.range(0, 2) == 0 {
        "4".to_string()
    } else {
        rng.range(51, 56).to_string()
    };
    let body = format!("{prefix}{}", rng.digits(15 - prefix.len()));
    format!("{body}{}", luhn_check_digit(&body))
}

/// The digit that makes `body` followed by it pass the Luhn check.
pub fn luhn_check_digit(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// A German IBAN (`DEkk` + 8-digit bank code + 10-digit account), valid mod 97.
pub fn german_iban(rng: &mut Seeded) -> String {
    let bban = format!("{}{}", rng.digits(8), rng.digits(10));
    let check = 98 - iban_mod97(&format!("{bban}DE00"));
    format!("DE{check:02}{bban}")
}

fn iban_mod97(rearranged: &str) -> u32 {
    rearranged.chars().fold(0u32, |acc, c| {
        let value = c.to_digit(36).unwrap_or(0);
        if value >= 10 {
            (acc * 100 + value) % 97
        } else {
            (acc * 10 + value) % 97
        }
    })
}

/// `INSERT` statements for the given customers, plus one order and one payment
/// each, so joins have something to join.
pub fn insert_sql(customers: &[Customer]) -> String {
    let mut sql = String::new();
    for c in customers {
        let _ = writeln!(
            sql,
            "INSERT INTO customers (id, name, email, phone, ssn, card_number, iban, notes) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {});",
            c.id,
            crate::quote_literal(&c.name),
            crate::quote_literal(&c.email),
            crate::quote_literal(&c.phone),
            crate::quote_literal(&c.ssn),
            crate::quote_literal(&c.card_number),
            crate::quote_literal(&c.iban),
            crate::quote_literal(&c.notes),
        );
        let _ = writeln!(
            sql,
            "INSERT INTO orders (id, customer_id, amount_cents, status) VALUES ({0}, {0}, {1}, 'paid');\n\
             INSERT INTO payments (id, order_id, card_number, amount_cents, approved) VALUES ({0}, {0}, {2}, {1}, true);",
            c.id,
            1000 + c.id * 37 % 9000,
            crate::quote_literal(&c.card_number),
        );
    }
    sql
}

/// SQL that fills `customers` with `rows` rows on the server side (fast even
/// for millions), cycling through `distinct` generated customers whose values
/// are returned so the test can check none of them leaks.
pub fn bulk_customers_sql(rows: u64, distinct: usize, seed: u64) -> (String, Vec<Customer>) {
    let base = customers(distinct, seed);
    let mut sql = String::from("CREATE TEMP TABLE seed_customers (LIKE customers);\n");
    sql.push_str(&insert_sql(&base).replace("INSERT INTO customers", "INSERT INTO seed_customers"));
    // The orders/payments inserts above referenced customers; keep only the seed rows.
    let sql: String = sql
        .lines()
        .filter(|l| !l.starts_with("INSERT INTO orders") && !l.starts_with("INSERT INTO payments"))
        .map(|l| format!("{l}\n"))
        .collect();
    let fill = format!(
        "{sql}INSERT INTO customers (id, name, email, phone, ssn, card_number, iban, notes)\n\
         SELECT g, s.name, s.email, s.phone, s.ssn, s.card_number, s.iban, s.notes\n\
         FROM generate_series(1, {rows}) AS g\n\
         JOIN seed_customers s ON s.id = 1 + (g - 1) % {distinct};\n"
    );
    (fill, base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luhn_valid(number: &str) -> bool {
        let body = &number[..number.len() - 1];
        let check = number[number.len() - 1..].parse::<u32>().unwrap();
        luhn_check_digit(body) == check
    }

    #[test]
    fn generated_values_are_valid_and_deterministic() {
        let a = customers(50, 7);
        assert_eq!(a, customers(50, 7));
        assert_ne!(a, customers(50, 8));
        for c in &a {
            assert!(luhn_valid(&c.card_number), "{}", c.card_number);
            assert_eq!(c.card_number.len(), 16);
            let rearranged = format!("{}{}", &c.iban[4..], &c.iban[..4]);
            assert_eq!(iban_mod97(&rearranged), 1, "{}", c.iban);
            assert!(!c.ssn.starts_with("000") && !c.ssn.starts_with("666"));
        }
    }

    #[test]
    fn known_card_check_digit() {
        // 4111 1111 1111 1111 is the classic Luhn-valid test number.
        assert_eq!(luhn_check_digit("411111111111111"), 1);
    }
}
