//! Seeded, deterministic fake data for a shop database: customers with every
//! kind of personal data Periscope must mask, their orders and payments, and
//! integrations holding API keys ([`Shop`], what `periscope demo` loads).
//!
//! Values are realistic enough to pass the engine's validators (Luhn-valid
//! cards, IBANs with correct check digits, SSNs outside reserved ranges,
//! GitHub tokens with their checksum) so that a masking test proves
//! something. None of them belongs to a real person or works anywhere.

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
    created_at  timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z',
    external_ref text
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
    Customers::new(seed).take(n).collect()
}

/// Customers one at a time, in the order [`customers`] returns them, so a
/// large data set can be written without holding it in memory.
#[derive(Debug, Clone)]
pub struct Customers {
    rng: Seeded,
    next_id: i64,
}

impl Customers {
    /// The customers of `seed`, from id 1.
    pub fn new(seed: u64) -> Self {
        Customers {
            rng: Seeded::new(seed),
            next_id: 1,
        }
    }
}

impl Iterator for Customers {
    type Item = Customer;

    fn next(&mut self) -> Option<Customer> {
        let id = self.next_id;
        self.next_id += 1;
        let rng = &mut self.rng;
        let first = rng.pick(FIRST);
        let last = rng.pick(LAST);
        let email = format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            id,
            rng.pick(DOMAINS)
        );
        let phone = phone_number(rng);
        let notes = match rng.range(0, 5) {
            0 => format!("Customer asked to be called back on {phone}."),
            1 => format!("Duplicate account; write to {email} before merging."),
            2 => "Refund issued for order 48213 on 2026-03-01 (EUR 19.99).".to_string(),
            3 => "VIP since 2019, prefers invoices by post.".to_string(),
            _ => String::new(),
        };
        Some(Customer {
            id,
            name: format!("{first} {last}"),
            email,
            phone,
            ssn: ssn(rng),
            card_number: card_number(rng),
            iban: german_iban(rng),
            notes,
        })
    }
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

/// The reference a customer carries over from a Canadian partner's
/// system: a social insurance number written without separators, in a
/// column whose name (`external_ref`) says nothing. Neither the name
/// classifier nor the content scanner can tell it from any nine-digit
/// number; only discovery's column-level evidence can (nearly every value
/// passes the SIN rules: first digit, Luhn). Derived from the id, so the
/// generator's random stream (and every other value) stays as it was.
pub fn external_ref(id: i64) -> String {
    let first = [1u64, 2, 3, 4, 5, 6, 7, 9][id.unsigned_abs() as usize % 8];
    let middle = id.unsigned_abs().wrapping_mul(2_654_435_761) % 10_000_000;
    let body = format!("{first}{middle:07}");
    format!("{body}{}", luhn_check_digit(&body))
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

/// Third-party integrations of the shop: each row holds a live-looking API
/// key, the kind of secret that stays masked even under a grant.
pub const INTEGRATIONS_SCHEMA: &str = "\
CREATE TABLE integrations (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    provider    text NOT NULL,
    api_key     text NOT NULL,
    webhook_url text,
    notes       text,
    created_at  timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z'
);
";

/// Indexes a real shop would have, so joins on the demo data stay quick.
pub const SHOP_INDEXES: &str = "\
CREATE INDEX orders_customer_id ON orders (customer_id);
CREATE INDEX payments_order_id ON payments (order_id);
CREATE INDEX integrations_customer_id ON integrations (customer_id);
";

/// The seed of the demo shop: `periscope demo` and its tests generate the
/// same customers from it.
pub const DEMO_SEED: u64 = 20_260_301;

/// How many rows one [`ShopBatch`] (or a whole shop) adds, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShopCounts {
    /// Rows in `customers`.
    pub customers: u64,
    /// Rows in `orders`.
    pub orders: u64,
    /// Rows in `payments`.
    pub payments: u64,
    /// Rows in `integrations`.
    pub integrations: u64,
}

impl ShopCounts {
    /// All rows.
    pub fn total(&self) -> u64 {
        self.customers + self.orders + self.payments + self.integrations
    }

    fn add(&mut self, other: ShopCounts) {
        self.customers += other.customers;
        self.orders += other.orders;
        self.payments += other.payments;
        self.integrations += other.integrations;
    }
}

/// One transaction's worth of shop data: `INSERT` statements for some
/// customers and everything that belongs to them.
#[derive(Debug, Clone)]
pub struct ShopBatch {
    /// The statements (several rows per `INSERT`).
    pub sql: String,
    /// What they add.
    pub counts: ShopCounts,
}

/// A shop of `customers` customers ([`customers`] with the same seed), each
/// with zero to four orders, one payment per order (usually with the
/// customer's card, sometimes another one) and, for about one customer in
/// twelve, an integration whose API key, webhook URL or notes hold a secret.
/// Produced in batches so that progress can be shown and memory stays flat.
#[derive(Debug, Clone)]
pub struct Shop {
    customers: Customers,
    remaining: usize,
    batch: usize,
    rng: Seeded,
    next_order: i64,
    next_integration: i64,
    total: ShopCounts,
}

const ORDER_STATUSES: &[&str] = &[
    "delivered",
    "delivered",
    "delivered",
    "shipped",
    "paid",
    "refunded",
    "cancelled",
];

impl Shop {
    /// The shop of `seed` with `customers` customers, `batch` customers per
    /// [`ShopBatch`].
    pub fn new(customers: usize, seed: u64, batch: usize) -> Self {
        Shop {
            customers: Customers::new(seed),
            remaining: customers,
            batch: batch.max(1),
            // A stream of its own, so the customers stay those of `customers(n, seed)`.
            rng: Seeded::new(seed ^ 0x5EED_0F0D_E25A_11E5),
            next_order: 1,
            next_integration: 1,
            total: ShopCounts::default(),
        }
    }

    /// The schema every batch expects: [`SHOP_SCHEMA`], [`INTEGRATIONS_SCHEMA`]
    /// and [`SHOP_INDEXES`].
    pub fn schema() -> String {
        format!("{SHOP_SCHEMA}{INTEGRATIONS_SCHEMA}{SHOP_INDEXES}")
    }

    /// What the batches produced so far add up to.
    pub fn produced(&self) -> ShopCounts {
        self.total
    }

    fn integration(&mut self, customer: &Customer) -> String {
        let id = self.next_integration;
        self.next_integration += 1;
        let rng = &mut self.rng;
        let (provider, api_key) = match rng.range(0, 4) {
            0 => ("github", github_token(rng)),
            1 => ("stripe", format!("sk_live_{}", alphanumeric(rng, 24))),
            2 => (
                "sendgrid",
                format!("SG.{}.{}", alphanumeric(rng, 22), alphanumeric(rng, 43)),
            ),
            _ => (
                "slack",
                format!(
                    "xoxb-{}-{}-{}",
                    rng.digits(12),
                    rng.digits(13),
                    alphanumeric(rng, 24)
                ),
            ),
        };
        let webhook = if provider == "slack" {
            format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                upper_alphanumeric(rng, 8),
                upper_alphanumeric(rng, 10),
                alphanumeric(rng, 24)
            )
        } else {
            format!("https://shop.example.com/hooks/{provider}/{id}")
        };
        let notes = match rng.range(0, 3) {
            0 => format!(
                "Rotated after {} was pasted into ticket #{}; confirm with {}.",
                github_token(rng),
                rng.range(1000, 9999),
                customer.email
            ),
            1 => format!("Owner: {}, on call {}.", customer.name, customer.phone),
            _ => "Sandbox first, then production.".to_string(),
        };
        format!(
            "({id}, {}, {}, {}, {}, {}, {})",
            customer.id,
            crate::quote_literal(provider),
            crate::quote_literal(&api_key),
            crate::quote_literal(&webhook),
            crate::quote_literal(&notes),
            minutes_after_2024(rng.range(0, 60 * 24 * 800)),
        )
    }
}

impl Iterator for Shop {
    type Item = ShopBatch;

    fn next(&mut self) -> Option<ShopBatch> {
        if self.remaining == 0 {
            return None;
        }
        let take = self.remaining.min(self.batch);
        self.remaining -= take;
        let mut customers = Vec::with_capacity(take);
        let mut orders = Vec::new();
        let mut payments = Vec::new();
        let mut integrations = Vec::new();
        let batch: Vec<Customer> = self.customers.by_ref().take(take).collect();
        for customer in batch {
            let joined = self.rng.range(0, 60 * 24 * 700);
            customers.push(format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, '{}', {})",
                customer.id,
                crate::quote_literal(&customer.name),
                crate::quote_literal(&customer.email),
                crate::quote_literal(&customer.phone),
                crate::quote_literal(&customer.ssn),
                crate::quote_literal(&customer.card_number),
                crate::quote_literal(&customer.iban),
                crate::quote_literal(&customer.notes),
                external_ref(customer.id),
                minutes_after_2024(joined),
            ));
            for _ in 0..self.rng.range(0, 5) {
                let id = self.next_order;
                self.next_order += 1;
                let amount = self.rng.range(199, 45_000);
                let status = self.rng.pick(ORDER_STATUSES);
                let at = joined + self.rng.range(60, 60 * 24 * 90);
                orders.push(format!(
                    "({id}, {}, {amount}, '{status}', {})",
                    customer.id,
                    minutes_after_2024(at)
                ));
                let card = if self.rng.range(0, 10) == 0 {
                    card_number(&mut self.rng)
                } else {
                    customer.card_number.clone()
                };
                payments.push(format!(
                    "({id}, {id}, {}, {amount}, {})",
                    crate::quote_literal(&card),
                    status != "cancelled"
                ));
            }
            if self.rng.range(0, 12) == 0 {
                integrations.push(self.integration(&customer));
            }
        }
        let counts = ShopCounts {
            customers: customers.len() as u64,
            orders: orders.len() as u64,
            payments: payments.len() as u64,
            integrations: integrations.len() as u64,
        };
        let mut sql = format!(
            "INSERT INTO customers (id, name, email, phone, ssn, card_number, iban, notes, external_ref, created_at) VALUES\n{};\n",
            customers.join(",\n")
        );
        for (table, columns, rows) in [
            (
                "orders",
                "id, customer_id, amount_cents, status, created_at",
                &orders,
            ),
            (
                "payments",
                "id, order_id, card_number, amount_cents, approved",
                &payments,
            ),
            (
                "integrations",
                "id, customer_id, provider, api_key, webhook_url, notes, created_at",
                &integrations,
            ),
        ] {
            if !rows.is_empty() {
                let _ = writeln!(
                    sql,
                    "INSERT INTO {table} ({columns}) VALUES\n{};",
                    rows.join(",\n")
                );
            }
        }
        self.total.add(counts);
        Some(ShopBatch { sql, counts })
    }
}

/// A timestamp literal `minutes` after 2024-01-01 UTC.
fn minutes_after_2024(minutes: u64) -> String {
    format!("timestamptz '2024-01-01 00:00:00+00' + interval '{minutes} minutes'")
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn alphanumeric(rng: &mut Seeded, n: usize) -> String {
    (0..n)
        .map(|_| char::from(ALPHANUMERIC[rng.range(0, ALPHANUMERIC.len() as u64) as usize]))
        .collect()
}

fn upper_alphanumeric(rng: &mut Seeded, n: usize) -> String {
    (0..n)
        .map(|_| {
            let pool = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            char::from(pool[rng.range(0, pool.len() as u64) as usize])
        })
        .collect()
}

/// A classic GitHub token: `ghp_`, 30 random base62 characters and the six
/// base62 digits of their CRC-32, as GitHub issues them.
pub fn github_token(rng: &mut Seeded) -> String {
    let random = alphanumeric(rng, 30);
    let mut n = crc32(random.as_bytes());
    let mut check = [b'0'; 6];
    for slot in check.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    format!("ghp_{random}{}", String::from_utf8_lossy(&check))
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC-32 (IEEE, reflected), bit by bit: a few dozen bytes per token.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
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
    fn external_refs_are_separator_free_sins() {
        let refs: Vec<String> = (1..=500).map(external_ref).collect();
        for r in &refs {
            assert_eq!(r.len(), 9, "{r}");
            assert!(r.bytes().all(|b| b.is_ascii_digit()), "{r}");
            assert!(!r.starts_with('0') && !r.starts_with('8'), "{r}");
            assert!(luhn_valid(r), "{r}");
        }
        let distinct: std::collections::BTreeSet<&String> = refs.iter().collect();
        assert_eq!(distinct.len(), refs.len(), "one reference per customer");
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
    fn a_shop_is_the_customers_of_its_seed_with_their_orders() {
        let batches: Vec<ShopBatch> = Shop::new(250, 3, 100).collect();
        assert_eq!(batches.len(), 3);
        let mut total = ShopCounts::default();
        for b in &batches {
            total.add(b.counts);
        }
        assert_eq!(total.customers, 250);
        assert_eq!(total.orders, total.payments);
        assert!(
            total.orders > 250,
            "about two orders per customer: {total:?}"
        );
        assert!(total.integrations > 5, "{total:?}");
        let sql: String = batches.iter().map(|b| b.sql.as_str()).collect();
        for c in customers(250, 3) {
            assert!(sql.contains(&format!("'{}'", c.email)), "{}", c.email);
        }
        assert!(sql.contains("ghp_") && sql.contains("sk_live_"));
        // Same seed, same shop.
        let again: String = Shop::new(250, 3, 100).map(|b| b.sql).collect();
        assert_eq!(sql, again);
    }

    #[test]
    fn github_tokens_carry_their_checksum() {
        // CRC-32 of "123456789" is the standard check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let token = github_token(&mut Seeded::new(1));
        assert_eq!(token.len(), 40);
        assert!(token.starts_with("ghp_"));
    }

    #[test]
    fn known_card_check_digit() {
        // 4111 1111 1111 1111 is the classic Luhn-valid test number.
        assert_eq!(luhn_check_digit("411111111111111"), 1);
    }
}
