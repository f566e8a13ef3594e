//! Fuzz target: SQL analysis of any text a client can send, against a fixture
//! catalog (a shop schema with views, view loops, an opaque view, and every
//! pg_catalog / information_schema relation of PostgreSQL 15 with its view
//! definition).
//!
//! It must never panic or overflow the stack, and what it returns must be
//! coherent: statement ranges on char boundaries inside the text, the
//! fingerprint that of the normalised text, the literal scrubber total.
//!
//! ```sh
//! RUSTC_BOOTSTRAP=1 cargo fuzz run sql_analyze fuzz/seeds/sql_analyze -- -max_total_time=60
//! ```

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use periscope_sql::{
    AnalysisCache, AnalyzeOptions, Relation, RelationKind, SqlDialect, StaticCatalog, analyze,
    fingerprint, scrub_literals,
};

/// PostgreSQL 15's own relations, as the SQL crate's tests capture them:
/// schema, name, relkind, columns, view definition (tab-separated).
const PG_CATALOG: &str = include_str!("../../crates/periscope-sql/tests/fixtures/pg-catalog.tsv");

fn catalog() -> &'static StaticCatalog {
    static CATALOG: OnceLock<StaticCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut c = StaticCatalog::new();
        c.add_table(
            "public",
            "customers",
            &[
                "id", "name", "email", "phone", "ssn", "card_number", "iban", "notes",
                "created_at",
            ],
        );
        c.add_table("public", "orders", &["id", "customer_id", "total", "status"]);
        c.add_table("public", "payments", &["id", "order_id", "amount", "card_number"]);
        c.add_table("app", "customers", &["id", "secret_code"]);
        c.add_table("public", "pgbench_accounts", &["aid", "bid", "abalance", "filler"]);
        c.add_view(
            "public",
            "customer_contacts",
            &["name", "email"],
            "SELECT customers.name, customers.email FROM customers",
        );
        c.add_view(
            "public",
            "contact_emails",
            &["contact"],
            "SELECT customer_contacts.email AS contact FROM customer_contacts",
        );
        c.add_view("public", "loop_a", &["x"], "SELECT x FROM loop_b");
        c.add_view("public", "loop_b", &["x"], "SELECT x FROM loop_a");
        c.insert(Relation {
            schema: "public".into(),
            name: "opaque_view".into(),
            kind: RelationKind::View,
            columns: vec!["a".into()],
            definition: None,
        });
        c.add_user_function("public", "lookup_ssn");
        for line in PG_CATALOG.lines().filter(|l| !l.starts_with('#')) {
            let mut f = line.split('\t');
            let (Some(schema), Some(name), Some(kind), Some(columns)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            let definition = f.next().map(str::trim).filter(|d| !d.is_empty());
            c.insert(Relation {
                schema: schema.into(),
                name: name.into(),
                kind: RelationKind::from_relkind(kind.chars().next().unwrap_or('r')),
                columns: columns.split(',').map(Into::into).collect(),
                definition: definition.map(Into::into),
            });
        }
        c
    })
}

fn cache() -> &'static AnalysisCache {
    static CACHE: OnceLock<AnalysisCache> = OnceLock::new();
    CACHE.get_or_init(|| AnalysisCache::new(64))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let options = AnalyzeOptions::default();

    let scrubbed = scrub_literals(&text, SqlDialect::PostgreSql);
    assert!(scrubbed.len() <= text.len() * 2 + 16, "scrubbing grew the text");

    let direct = analyze(&text, catalog(), &options);
    if let Ok(analysis) = &direct {
        for st in &analysis.statements {
            assert!(st.range.start <= st.range.end && st.range.end <= text.len());
            assert!(text.is_char_boundary(st.range.start) && text.is_char_boundary(st.range.end));
            assert_eq!(st.fingerprint, fingerprint(&st.normalized));
            for output in &st.outputs {
                let _ = (&output.name, &output.lineage);
            }
        }
    }
    // The cache answers as the analysis does, on a miss and on a hit.
    let miss = cache().get_or_analyze(&text, catalog(), &options).is_ok();
    let hit = cache().get_or_analyze(&text, catalog(), &options).is_ok();
    assert_eq!(miss, direct.is_ok());
    assert_eq!(hit, direct.is_ok());
});
