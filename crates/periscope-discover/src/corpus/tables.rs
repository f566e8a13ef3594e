//! The corpus tables and their labels.
//!
//! A label is what a correct discovery proposes: the content's entity for a
//! neutral name, the name's entity when the name says it. Comments say why
//! a look-alike is labelled none.

use periscope_redact::Entity as E;

use super::kinds::{Doc, Gen as G, Sep};
use super::values::DateLayout as D;
use super::{Column, Table};
use crate::path::JsonStep;

/// Rows of a full-size table.
pub(super) const FULL_ROWS: u64 = 1_000_000;

fn c(name: &str, sql_type: &str, generator: G, label: Option<E>) -> Column {
    Column {
        name: name.to_string(),
        sql_type: sql_type.to_string(),
        generator,
        label,
        json_labels: Vec::new(),
        nulls: 0,
        blanks: 0,
        dirty: 0,
    }
}

impl Column {
    fn nulls(mut self, pct: u8) -> Column {
        self.nulls = pct;
        self
    }

    fn blanks(mut self, pct: u8) -> Column {
        self.blanks = pct;
        self
    }

    fn dirty(mut self, pct: u8) -> Column {
        self.dirty = pct;
        self
    }

    /// A sensitive JSON field: `"customer.tax_id"`, `"ids[*]"`, `"*.dob"`,
    /// `"[*].ip"`.
    fn field(mut self, path: &str, e: E) -> Column {
        self.json_labels.push((steps(path), e));
        self
    }
}

fn steps(path: &str) -> Vec<JsonStep> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, arrays) = match part.find("[*]") {
            Some(i) => (&part[..i], part[i..].matches("[*]").count()),
            None => (part, 0),
        };
        match key {
            "" => {}
            "*" => out.push(JsonStep::AnyKey),
            k => out.push(JsonStep::Key(k.to_string())),
        }
        out.extend(std::iter::repeat_n(JsonStep::Elements, arrays));
    }
    out
}

fn t(schema: &str, name: &str, columns: Vec<Column>) -> Table {
    Table {
        schema: schema.to_string(),
        name: name.to_string(),
        rows: FULL_ROWS,
        columns,
        index: 0,
    }
}

fn id() -> Column {
    c("id", "int8", G::Seq(1), None)
}

fn int(g: G) -> G {
    G::Int(Box::new(g))
}

fn arr(g: G) -> G {
    G::Array(Box::new(g))
}

#[allow(clippy::too_many_lines)]
pub(super) fn all() -> Vec<Table> {
    let n = None;
    let s = Some;
    let mut tiny = t(
        "small",
        "pilot_signups",
        vec![
            id(),
            // 60 rows: enough for a checksum (20 values), too few for the
            // weak SSN rules (118), so the SSN column is a known miss.
            c("ref", "text", G::Sin(Sep::Bare), s(E::NationalId)),
            c("code", "text", G::Ssn(Sep::Bare), s(E::Ssn)),
            c("email", "text", G::Email, s(E::Email)),
            c("joined", "date", G::DateBetween(2024, 2025), n),
            c("plan", "text", G::Status, n),
            c("seats", "int4", G::Count, n),
            c("country", "text", G::Country, n),
            c("notes", "text", G::Note, n),
            c("source", "text", G::Product, n),
        ],
    );
    tiny.rows = 60;
    vec![
        t(
            "crm",
            "customers_ca",
            vec![
                id(),
                c("ref", "text", G::Sin(Sep::Bare), s(E::NationalId)),
                c("first_name", "text", G::PersonName, s(E::PersonName)),
                c("email", "text", G::Email, s(E::Email)).nulls(5),
                c("phone", "text", G::Phone, s(E::Phone)).nulls(10),
                c("created_at", "timestamptz", G::CreatedAt, n),
                c("status", "text", G::Status, n),
                c("province", "text", G::Country, n),
                c("notes", "text", G::Note, n).nulls(40),
                c("balance_cents", "int8", G::Cents, n),
                c("code", "text", G::Sku, n),
            ],
        ),
        t(
            "hr",
            "employees_uk",
            vec![
                id(),
                c(
                    "code",
                    "text",
                    G::Nino {
                        suffix: true,
                        spaced: false,
                    },
                    s(E::NationalId),
                ),
                c(
                    "ni_number",
                    "text",
                    G::Nino {
                        suffix: true,
                        spaced: true,
                    },
                    s(E::NationalId),
                )
                .nulls(3),
                c("dob", "date", G::Dob(D::Iso), s(E::DateOfBirth)),
                // Hire dates are birth-date shaped; the name says otherwise.
                c("hired_on", "date", G::DateBetween(1995, 2024), n),
                c("salary_cents", "int8", G::Cents, n),
                c("dept", "text", G::Status, n),
                c("manager_id", "int8", G::Seq(5000), n),
                c("work_email", "text", G::Email, s(E::Email)),
                // Two letters, six digits: the NINO shape without a suffix.
                c("badge", "text", G::BookingRef, n),
            ],
        ),
        t(
            "payroll",
            "au_staff",
            vec![
                id(),
                c(
                    "external_id",
                    "text",
                    G::Tfn {
                        eight: false,
                        spaced: false,
                    },
                    s(E::TaxId),
                ),
                c(
                    "tax_file_number",
                    "text",
                    G::Tfn {
                        eight: false,
                        spaced: true,
                    },
                    s(E::TaxId),
                ),
                c(
                    "legacy_no",
                    "text",
                    G::Tfn {
                        eight: true,
                        spaced: false,
                    },
                    s(E::TaxId),
                )
                .nulls(30),
                c("bsb", "text", G::Random(6), n),
                c("account_no", "text", G::Random(9), n),
                c("amount_cents", "int8", G::Cents, n),
                c("period", "date", G::DateBetween(2023, 2024), n),
                c("approved", "bool", G::Flag, n),
                c("approver", "text", G::Email, s(E::Email)),
            ],
        ),
        t(
            "sales",
            "orders_br",
            vec![
                id(),
                c("doc", "text", G::Cpf { formatted: false }, s(E::TaxId)),
                c(
                    "cliente_cpf",
                    "text",
                    G::Cpf { formatted: true },
                    s(E::TaxId),
                ),
                c("order_no", "text", G::OrderNo, n),
                c("total_cents", "int8", G::Cents, n),
                c("zip", "text", G::Zip5, n),
                c("created_at", "timestamptz", G::CreatedAt, n),
                c("items", "int4", G::Count, n),
                c("channel", "text", G::Status, n),
                c("coupon", "text", G::ShortCode, n).nulls(70),
            ],
        ),
        t(
            "kyc",
            "in_users",
            vec![
                id(),
                c("uid_ref", "text", G::Aadhaar(Sep::Bare), s(E::NationalId)),
                c(
                    "aadhaar_no",
                    "text",
                    G::Aadhaar(Sep::Spaced),
                    s(E::NationalId),
                ),
                // Random 12-digit numbers: one in 12.5 passes Verhoeff.
                c("ref12", "text", G::Random(12), n),
                c("phone", "text", G::Phone, s(E::Phone)),
                c("verified", "bool", G::Flag, n),
                c("verified_at", "timestamptz", G::CreatedAt, n).nulls(20),
                c("state", "text", G::Country, n),
                c("score", "numeric", G::Percent, n),
                c("device", "text", G::Uuid, n),
            ],
        ),
        t(
            "billing",
            "cards",
            vec![
                id(),
                c("val", "text", G::Card(Sep::Bare), s(E::Card)),
                c("card_number", "text", G::Card(Sep::Spaced), s(E::Card)),
                // One issuer BIN for every row: still cards.
                c("ref2", "text", G::CardOneBin, s(E::Card)),
                c("last4", "text", G::Last4, n),
                c("exp", "text", G::Expiry, n),
                // `auth` is a secret word, but `code` describes.
                c("auth_code", "text", G::ShortCode, n),
                // Random 16 digits: about one in 22 is a valid card.
                c("ref16", "text", G::Random(16), n),
                c("brand", "text", G::Status, n),
                c("created_at", "timestamptz", G::CreatedAt, n),
            ],
        ),
        t(
            "banking",
            "transfers",
            vec![
                id(),
                c("routing", "text", G::Aba, s(E::AbaRouting)),
                c("bank_ref", "text", G::Aba, s(E::AbaRouting)),
                c("iban", "text", G::Iban, s(E::Iban)),
                c("beneficiary_acct", "text", G::Iban, s(E::Iban)),
                c("amount_cents", "int8", G::Cents, n),
                c("reference", "text", G::OrderNo, n),
                c("booked_at", "timestamptz", G::CreatedAt, n),
                c("currency", "text", G::Country, n),
                c("memo", "text", G::Note, n).nulls(50),
            ],
        ),
        t(
            "us",
            "members",
            vec![
                id(),
                c("ext_id", "text", G::Ssn(Sep::Bare), s(E::Ssn)),
                c("ssn", "text", G::Ssn(Sep::Dashed), s(E::Ssn)),
                // Sequential nine-digit ids pass the SSN rules, all in one area.
                c("member_no", "text", G::Seq9, n),
                // ZIP+4 without a dash: one in ten starts with 9.
                c("zip4", "text", G::ZipPlus4, n),
                c("zip", "text", G::Zip5, n),
                c("ssn_last4", "text", G::Last4, n),
                c("dob", "text", G::Dob(D::Us), s(E::DateOfBirth)),
                c("phone", "text", G::Phone, s(E::Phone)),
                c("tier", "text", G::Status, n),
            ],
        ),
        t(
            "us",
            "legacy_people",
            vec![
                id(),
                // SSNs as integers: areas below 100 lost their zeros.
                c("pid", "int8", int(G::Ssn(Sep::Bare)), s(E::Ssn)),
                c("c7", "text", G::Ssn(Sep::Bare), s(E::Ssn)).dirty(1),
                // Member numbers from one SSN-valid prefix: clustered.
                c("acct", "text", G::ClusteredNine, n),
                c("r9", "text", G::Random(9), n),
                c("masked_ssn", "text", G::MaskedSsn, s(E::Ssn)),
                c("updated_at", "timestamptz", G::CreatedAt, n),
                c("household", "int4", G::Count, n),
                c("region", "text", G::Country, n),
                c("h", "text", G::Hash(32), n),
            ],
        ),
        t(
            "events",
            "web_sessions",
            vec![
                id(),
                c("ip", "text", G::Ip, s(E::Ip)),
                c("client", "text", G::Ip, s(E::Ip)),
                c("ua", "text", G::Product, n),
                c("started_at", "timestamptz", G::CreatedAt, n),
                c("digest", "text", G::Hash(64), n),
                c("pages", "int4", G::Count, n),
                c("session", "text", G::Uuid, n),
                c("ms", "int8", G::EpochMillis, n),
                c("app_version", "text", G::Version, n),
            ],
        ),
        t(
            "auth",
            "api_clients",
            vec![
                id(),
                c("val", "text", G::GithubToken, s(E::GithubToken)),
                c("k", "text", G::AwsKey, s(E::AwsAccessKey)),
                c("client_id", "text", G::Uuid, n),
                c("created_at", "timestamptz", G::CreatedAt, n),
                c("owner", "text", G::Email, s(E::Email)),
                c("scopes_count", "int4", G::Count, n),
                c("enabled", "bool", G::Flag, n),
                c("label", "text", G::Product, n),
            ],
        ),
        t(
            "docs",
            "travel",
            vec![
                id(),
                c("passport_no", "text", G::Passport, s(E::Passport)),
                c("passport_country", "text", G::Country, n),
                c("passport_expiry", "date", G::DateBetween(2026, 2034), n),
                c("dl_number", "text", G::DriverLicense, s(E::DriverLicense)),
                c("dl_state", "text", G::Country, n),
                c("booking", "text", G::BookingRef, n),
                c("dl_url", "text", G::Product, n),
                c("seat", "text", G::ShortCode, n),
                c("fare_cents", "int8", G::Cents, n),
            ],
        ),
        t(
            "sales",
            "order_docs",
            vec![
                id(),
                c("payload", "jsonb", G::Json(Doc::Order), n)
                    .field("customer.tax_id", E::TaxId)
                    .field("customer.email", E::Email)
                    .field("meta.ref", E::NationalId),
                c("created_at", "timestamptz", G::CreatedAt, n),
                c("status", "text", G::Status, n),
                c("total_cents", "int8", G::Cents, n),
                c("store", "text", G::Product, n),
            ],
        ),
        t(
            "app",
            "user_attrs",
            vec![
                id(),
                c("attrs", "jsonb", G::Json(Doc::Attrs), n)
                    .field("ids[*]", E::NationalId)
                    .field("k1", E::NationalId),
                c("updated_at", "timestamptz", G::CreatedAt, n),
                c("segment", "text", G::Status, n),
                c("visits", "int4", G::Count, n),
            ],
        ),
        t(
            "app",
            "user_profiles",
            vec![
                id(),
                c("profile", "jsonb", G::Json(Doc::ProfileMap), n)
                    .field("*.dob", E::DateOfBirth)
                    .field("*.x", E::TaxId),
                c("updated_at", "timestamptz", G::CreatedAt, n),
                c("locale", "text", G::Country, n),
                c("theme", "text", G::Status, n),
            ],
        ),
        t(
            "logs",
            "events",
            vec![
                id(),
                c("body", "json", G::Json(Doc::Events), n)
                    .field("[*].ip", E::Ip)
                    .field("[*].user.email", E::Email),
                c("received_at", "timestamptz", G::CreatedAt, n),
                c("source", "text", G::Product, n),
                c("bytes", "int8", G::Cents, n),
            ],
        ),
        t(
            "legacy",
            "raw_imports",
            vec![
                id(),
                // JSON in a text column.
                c("raw", "text", G::Json(Doc::RawAcct), n)
                    .field("acct.routing", E::AbaRouting)
                    .field("holder.tax_no", E::TaxId),
                c("imported_at", "timestamptz", G::CreatedAt, n),
                c("batch", "int8", G::Seq(700), n),
                c("file", "text", G::Hash(40), n),
            ],
        ),
        t(
            "shop",
            "order_json",
            vec![
                id(),
                c("doc", "jsonb", G::Json(Doc::OrderDecoy), n),
                c("created_at", "timestamptz", G::CreatedAt, n),
                c("warehouse", "text", G::Country, n),
            ],
        ),
        t(
            "ops",
            "service_config",
            vec![
                id(),
                c("settings", "jsonb", G::Json(Doc::Config), n)
                    .field("github.api_token", E::GithubToken),
                c("service", "text", G::Product, n),
                c("version", "text", G::Version, n),
            ],
        ),
        t(
            "crm",
            "contacts",
            vec![
                id(),
                c("phones", "text[]", arr(G::Phone), s(E::Phone)),
                c("refs", "text[]", arr(G::Sin(Sep::Bare)), s(E::NationalId)),
                c("codes", "text[]", arr(G::Sku), n),
                c(
                    "docs",
                    "_int8",
                    arr(int(G::Cpf { formatted: false })),
                    s(E::TaxId),
                ),
                c("emails", "_text", arr(G::Email), s(E::Email)).nulls(10),
                c("tags", "text[]", arr(G::Status), n),
                c("scores", "_int4", arr(G::Count), n),
                c("created_at", "timestamptz", G::CreatedAt, n),
            ],
        ),
        t(
            "decoys",
            "metrics",
            vec![
                id(),
                c("t", "int8", G::EpochSeconds, n),
                c("tm", "int8", G::EpochMillis, n),
                c("v", "int8", G::Cents, n),
                c("qty", "int4", G::Count, n),
                c("pct", "text", G::Percent, n),
                c("lat", "text", G::Coordinate, n),
                c("version", "text", G::Version, n),
                c("sin", "float8", G::Unit, n),
                c("cos", "text", G::Unit, n),
                c("ok", "bool", G::Flag, n),
            ],
        ),
        t(
            "decoys",
            "inventory",
            vec![
                id(),
                c("sku", "text", G::Sku, n),
                c("product", "text", G::Product, n),
                c("tin_content", "text", G::Unit, n),
                c("dl_count", "int4", G::Count, n),
                c("upc", "text", G::Random(12), n),
                c("code", "text", G::Sku, n),
                c("pass_count", "int4", G::Count, n),
                c("ean", "text", G::Random(13), n),
                c("price", "text", G::Price, n),
            ],
        ),
        t(
            "decoys",
            "ids",
            vec![
                id(),
                c("ext", "text", G::PhoneLikeId, n),
                c("h", "text", G::Hash(40), n),
                c("u", "text", G::Uuid, n),
                c("r11", "text", G::Random(11), n),
                c("r12", "text", G::Random(12), n),
                c("r9", "text", G::Random(9), n),
                c("seq9", "text", G::Seq9, n),
                c("big", "int8", G::Seq(10_000_000_000), n),
                c("order_no", "text", G::OrderNo, n),
            ],
        ),
        t(
            "decoys",
            "dates",
            vec![
                id(),
                c("created_at", "timestamptz", G::CreatedAt, n),
                // Recent dates: within the age range, but six years wide.
                c("d1", "date", G::DateBetween(2019, 2024), n),
                c("valid_until", "date", G::DateBetween(2026, 2030), n),
                c("account_opened", "date", G::DateBetween(1980, 2024), n),
                c("start_date", "text", G::DateBetween(1990, 2024), n),
                c("due", "date", G::DateBetween(2024, 2026), n),
                c("day", "text", G::DateBetween(2023, 2024), n),
                c("epoch", "int8", G::EpochSeconds, n),
                c("zip", "text", G::Zip5, n),
                // Historical dates under a neutral name: as wide as birth
                // dates, and nothing tells them apart (a known false positive).
                c("d2", "date", G::DateBetween(1950, 2020), n),
            ],
        ),
        t(
            "intl",
            "partners",
            vec![
                id(),
                // Named as a tax id; its values are not checkable.
                c("vendor_tin", "text", G::Random(9), s(E::TaxId)),
                c("tin", "text", G::Unit, n),
                c("tax_code", "text", G::TaxCode, n),
                c("fiscal_code", "text", G::FiscalCode, s(E::TaxId)),
                c("tax_amount", "int8", G::Cents, n),
                c("country", "text", G::Country, n),
                c("contact", "text", G::Email, s(E::Email)),
                c("since", "date", G::DateBetween(1990, 2024), n),
                c("rating", "text", G::Percent, n),
            ],
        ),
        t(
            "health",
            "patients",
            vec![
                c("mrn", "int8", G::Seq(100_000), n),
                c("dob", "timestamp", G::Dob(D::Midnight), s(E::DateOfBirth)),
                c(
                    "national_id",
                    "text",
                    G::Aadhaar(Sep::Bare),
                    s(E::NationalId),
                ),
                c("insurance_no", "text", G::Random(10), n),
                c("born_on", "text", G::Dob(D::Eu), s(E::DateOfBirth)),
                c("email", "text", G::Email, s(E::Email)).nulls(20),
                c("weight", "text", G::Price, n),
                c("admitted_at", "timestamptz", G::CreatedAt, n),
                c("ward", "text", G::ShortCode, n),
                c("allergies", "text", G::Note, n).blanks(30),
            ],
        ),
        t(
            "mixed",
            "customer_misc",
            vec![
                id(),
                c("col1", "text", G::Email, s(E::Email)),
                c("col2", "text", G::Phone, s(E::Phone)),
                c("col3", "text", G::Iban, s(E::Iban)),
                c("col4", "text", G::Cpf { formatted: true }, s(E::TaxId)),
                c(
                    "col5",
                    "text",
                    G::Nino {
                        suffix: true,
                        spaced: true,
                    },
                    s(E::NationalId),
                ),
                c("col6", "text", G::Card(Sep::Spaced), s(E::Card)),
                c("col7", "text", G::Ssn(Sep::Dashed), s(E::Ssn)),
                c("col8", "text", G::Dob(D::Eu), s(E::DateOfBirth)),
                c("col9", "text", G::Product, n),
                c("col10", "text", G::Status, n),
            ],
        ),
        t(
            "mixed",
            "more",
            vec![
                id(),
                c("a", "text", G::Sin(Sep::Dashed), s(E::NationalId)).nulls(60),
                c(
                    "b",
                    "text",
                    G::Tfn {
                        eight: true,
                        spaced: false,
                    },
                    s(E::TaxId),
                )
                .blanks(5),
                c("c", "text", G::Aadhaar(Sep::Bare), s(E::NationalId)).dirty(2),
                c("d", "text", G::Email, s(E::Email)).dirty(3),
                c("e", "int8", int(G::Cpf { formatted: false }), s(E::TaxId)),
                c("f", "int8", int(G::Aba), s(E::AbaRouting)),
                c("g", "text", G::BookingRef, n),
                c("h", "text", G::Note, n),
                c(
                    "i",
                    "text",
                    G::Nino {
                        suffix: false,
                        spaced: false,
                    },
                    s(E::NationalId),
                ),
                c("j", "text", G::Dob(D::Compact), s(E::DateOfBirth)),
            ],
        ),
        tiny,
        t(
            "eu",
            "customers_de",
            vec![
                id(),
                c("iban", "text", G::Iban, s(E::Iban)),
                c("kontonummer", "text", G::Random(10), n),
                c("plz", "text", G::Zip5, n),
                c("email", "text", G::Email, s(E::Email)),
                c("telefon", "text", G::Phone, s(E::Phone)),
                c("geburtsdatum", "text", G::Dob(D::Eu), s(E::DateOfBirth)),
                c("kundennummer", "text", G::Seq9, n),
                c("ort", "text", G::Country, n),
                c("umsatz_cents", "int8", G::Cents, n),
            ],
        ),
        t(
            "support",
            "tickets",
            vec![
                id(),
                c("ticket_no", "text", G::OrderNo, n),
                c("customer_email", "text", G::Email, s(E::Email)),
                c("body", "text", G::Note, n),
                c("opened_at", "timestamptz", G::CreatedAt, n),
                c("priority", "text", G::Status, n),
                c("assignee", "text", G::Email, s(E::Email)),
                c("ref", "text", G::Seq9, n),
                c("sla_minutes", "int4", G::Count, n),
                c("channel", "text", G::Product, n),
            ],
        ),
        t(
            "analytics",
            "daily",
            vec![
                c("day", "date", G::DateBetween(2023, 2024), n),
                c("visits", "int8", G::Cents, n),
                c("revenue_cents", "int8", G::Cents, n),
                c("top_sku", "text", G::Sku, n),
                c("ratio", "text", G::Percent, n),
                c("p95_ms", "int4", G::Count, n),
                c("region", "text", G::Country, n),
                c("cohort", "text", G::DateBetween(2020, 2024), n),
                c("build", "text", G::Version, n),
                c("checksum", "text", G::Hash(32), n),
            ],
        ),
        t(
            "warehouse",
            "shipments",
            vec![
                id(),
                c("tracking", "text", G::Random(12), n),
                c("zip4", "text", G::ZipPlus4, n),
                c("weight_g", "int4", G::Count, n),
                c("carrier", "text", G::Status, n),
                c("shipped_at", "timestamptz", G::CreatedAt, n),
                c("recipient_phone", "text", G::Phone, s(E::Phone)),
                c("recipient_email", "text", G::Email, s(E::Email)),
                c("code", "text", G::BookingRef, n),
                c("parcel", "text", G::PhoneLikeId, n),
            ],
        ),
        t(
            "integrations",
            "partner_docs",
            vec![
                id(),
                c("doc", "jsonb", G::Json(Doc::Partner), n)
                    .field("party.c", E::Ssn)
                    .field("party.n", E::TaxId)
                    .field("party.d", E::DateOfBirth)
                    .field("party.contact.e", E::Email)
                    .field("party.contact.p", E::Phone)
                    .field("payout.acct", E::Iban)
                    .field("payout.cards[*]", E::Card),
                c("received_at", "timestamptz", G::CreatedAt, n),
                c("partner", "text", G::Product, n),
            ],
        ),
        t(
            "imports",
            "batch_rows",
            vec![
                id(),
                c("f1", "text", G::Aadhaar(Sep::Spaced), s(E::NationalId)),
                c(
                    "f2",
                    "text",
                    G::Tfn {
                        eight: false,
                        spaced: true,
                    },
                    s(E::TaxId),
                ),
                c("f3", "text", G::Sin(Sep::Spaced), s(E::NationalId)),
                c(
                    "f4",
                    "text",
                    G::Lower(Box::new(G::Nino {
                        suffix: true,
                        spaced: false,
                    })),
                    s(E::NationalId),
                ),
                c("f5", "text[]", arr(G::Aadhaar(Sep::Bare)), s(E::NationalId)),
                // Luhn-valid like cards, but device prefixes.
                c("f6", "text", G::Imei, n),
                c("f7", "text", G::Cpf { formatted: true }, s(E::TaxId)).nulls(25),
                c("f8", "text", G::Random(8), n),
                c("f9", "text", G::OrderNo, n),
                c("batch", "int8", G::Seq(1), n),
            ],
        ),
        t(
            "loyalty",
            "accounts",
            vec![
                id(),
                c("member_ref", "text", G::Card(Sep::Bare), s(E::Card)).nulls(15),
                c("points", "int8", G::Cents, n),
                c("external_id", "text", G::Random(11), n),
                c(
                    "nino",
                    "text",
                    G::Nino {
                        suffix: true,
                        spaced: false,
                    },
                    s(E::NationalId),
                ),
                c("cpf", "int8", int(G::Cpf { formatted: false }), s(E::TaxId)),
                c(
                    "tfn",
                    "text",
                    G::Tfn {
                        eight: false,
                        spaced: false,
                    },
                    s(E::TaxId),
                ),
                c("dob", "date", G::Dob(D::Iso), s(E::DateOfBirth)),
                c("tier", "text", G::Status, n),
                c("enrolled", "date", G::DateBetween(2015, 2024), n),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_label_paths() {
        assert_eq!(
            steps("customer.tax_id"),
            vec![
                JsonStep::Key("customer".into()),
                JsonStep::Key("tax_id".into())
            ]
        );
        assert_eq!(
            steps("ids[*]"),
            vec![JsonStep::Key("ids".into()), JsonStep::Elements]
        );
        assert_eq!(
            steps("*.dob"),
            vec![JsonStep::AnyKey, JsonStep::Key("dob".into())]
        );
        assert_eq!(
            steps("[*].user.email"),
            vec![
                JsonStep::Elements,
                JsonStep::Key("user".into()),
                JsonStep::Key("email".into())
            ]
        );
    }
}
