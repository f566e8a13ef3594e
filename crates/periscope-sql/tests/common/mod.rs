//! Shared fixture: a realistic shop schema plus PostgreSQL 15's own catalog.
#![allow(dead_code)]

use std::collections::BTreeSet;

use periscope_sql::{
    AnalyzeOptions, ColumnRef, Lineage, Relation, RelationKind, StatementAnalysis, StaticCatalog,
    analyze,
};

/// The columns of `customers`, in attribute order.
pub const CUSTOMER_COLUMNS: &[&str] = &[
    "id",
    "name",
    "email",
    "phone",
    "ssn",
    "card_number",
    "iban",
    "notes",
    "created_at",
];

/// The fixture catalog: `public.customers`, `orders`, `payments`,
/// `app.customers` (same name, other schema), views `customer_contacts`
/// (name, email), `contact_emails` (a view of that view), a materialized view,
/// views that loop, a view without definition, and every pg_catalog /
/// information_schema relation of PostgreSQL 15 (with view definitions), as
/// captured in `tests/fixtures/pg-catalog.tsv`.
pub fn catalog() -> StaticCatalog {
    let mut c = StaticCatalog::new();
    c.add_table("public", "customers", CUSTOMER_COLUMNS);
    c.add_table(
        "public",
        "orders",
        &["id", "customer_id", "total", "status", "created_at"],
    );
    c.add_table(
        "public",
        "payments",
        &["id", "order_id", "amount", "card_number", "paid_at"],
    );
    c.add_table("app", "customers", &["id", "secret_code"]);
    c.add_table(
        "public",
        "pgbench_accounts",
        &["aid", "bid", "abalance", "filler"],
    );
    c.add_view(
        "public",
        "customer_contacts",
        &["name", "email"],
        " SELECT customers.name,\n    customers.email\n   FROM customers;",
    );
    c.add_view(
        "public",
        "contact_emails",
        &["contact"],
        " SELECT customer_contacts.email AS contact\n   FROM customer_contacts;",
    );
    c.insert(Relation {
        schema: "public".into(),
        name: "customer_stats".into(),
        kind: RelationKind::MaterializedView,
        columns: vec!["domain".into(), "n".into()],
        definition: Some(
            " SELECT split_part(customers.email, '@', 2) AS domain, count(*) AS n FROM customers GROUP BY 1;"
                .into(),
        ),
    });
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
    load_pg_catalog(&mut c);
    c
}

fn load_pg_catalog(c: &mut StaticCatalog) {
    let tsv = include_str!("../fixtures/pg-catalog.tsv");
    for line in tsv.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let kind = RelationKind::from_relkind(f[2].chars().next().unwrap_or('r'));
        let definition = f
            .get(4)
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.to_string());
        c.insert(Relation {
            schema: f[0].into(),
            name: f[1].into(),
            kind,
            columns: f[3].split(',').map(str::to_owned).collect(),
            definition,
        });
    }
}

/// Analyses one statement against the fixture.
pub fn one(sql: &str) -> StatementAnalysis {
    let a = analyze(sql, &catalog(), &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(a.statements.len(), 1, "{sql}");
    a.statements.into_iter().next().expect("one statement")
}

/// `"customers.email"` or `"app.customers.id"` as a column reference.
pub fn col(spec: &str) -> ColumnRef {
    let parts: Vec<&str> = spec.split('.').collect();
    match parts.as_slice() {
        [t, c] => ColumnRef::new("public", t, c),
        [s, t, c] => ColumnRef::new(s, t, c),
        _ => panic!("bad column spec {spec}"),
    }
}

/// A set of column references.
pub fn cols(specs: &[&str]) -> BTreeSet<ColumnRef> {
    specs.iter().map(|s| col(s)).collect()
}

/// Pass-through lineage.
pub fn pass(specs: &[&str]) -> Lineage {
    Lineage::Sources {
        columns: cols(specs),
        transformed: false,
    }
}

/// Derived (transformed) lineage.
pub fn derived(specs: &[&str]) -> Lineage {
    Lineage::Sources {
        columns: cols(specs),
        transformed: true,
    }
}
