//! What one analysis costs, cold (parse + lineage) and through the cache.
//!
//! `cargo bench -p periscope-sql`. The proxy analyses every statement before
//! forwarding it, so this is latency added to every query; the cached path is
//! what pgbench-style repeated statements pay.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use periscope_sql::{AnalysisCache, AnalyzeOptions, StaticCatalog, analyze};

fn catalog() -> StaticCatalog {
    let mut c = StaticCatalog::new();
    c.add_table(
        "public",
        "pgbench_accounts",
        &["aid", "bid", "abalance", "filler"],
    );
    c.add_table(
        "public",
        "customers",
        &[
            "id",
            "name",
            "email",
            "phone",
            "ssn",
            "card_number",
            "iban",
            "notes",
            "created_at",
        ],
    );
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
    c.add_view(
        "public",
        "customer_contacts",
        &["name", "email"],
        "SELECT customers.name, customers.email FROM customers",
    );
    c
}

const PGBENCH: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

const JOIN_WITH_CTE: &str = "WITH recent AS (
    SELECT o.id, o.customer_id, o.total FROM orders o WHERE o.created_at > now() - interval '7 days'
)
SELECT c.name, upper(c.email) AS email, r.total, p.amount, p.card_number
FROM customers c
JOIN recent r ON r.customer_id = c.id
LEFT JOIN payments p ON p.order_id = r.id
WHERE c.created_at < now() AND r.total > 100
ORDER BY r.total DESC LIMIT 50";

/// A report of about 200 lines: a dozen CTEs with aggregates, CASE, windows,
/// joins and a UNION, as analytics dashboards send.
fn report_query() -> String {
    let mut sql = String::from("WITH\n");
    for i in 0..12 {
        sql.push_str(&format!(
            "stage{i} AS (
    SELECT c.id AS customer_id,
           c.name,
           lower(c.email) AS email_key,
           CASE WHEN o.total > {i}00 THEN 'big'
                WHEN o.total > {i}0 THEN 'medium'
                ELSE 'small' END AS bucket,
           sum(o.total) OVER (PARTITION BY c.id ORDER BY o.created_at) AS running,
           count(p.id) AS payments,
           coalesce(max(p.amount), 0) AS max_payment
    FROM customers c
    JOIN orders o ON o.customer_id = c.id
    LEFT JOIN payments p ON p.order_id = o.id
    WHERE o.status IN ('paid', 'shipped') AND o.created_at > now() - interval '{i} days'
    GROUP BY c.id, c.name, c.email, o.total, o.created_at
),
"
        ));
    }
    sql.push_str(
        "totals AS (
    SELECT customer_id, sum(running) AS total FROM stage0 GROUP BY customer_id
)
SELECT s.customer_id,
       s.name,
       s.email_key,
       s.bucket,
       t.total,
       rank() OVER (ORDER BY t.total DESC) AS rank,
       (SELECT count(*) FROM stage1 s1 WHERE s1.customer_id = s.customer_id) AS n1,
       (SELECT max(max_payment) FROM stage2 s2 WHERE s2.customer_id = s.customer_id) AS m2
FROM stage0 s
JOIN totals t USING (customer_id)
JOIN stage3 s3 ON s3.customer_id = s.customer_id
JOIN stage4 s4 ON s4.customer_id = s.customer_id
JOIN stage5 s5 ON s5.customer_id = s.customer_id
JOIN stage6 s6 ON s6.customer_id = s.customer_id
WHERE s.payments > 0
UNION ALL
SELECT s7.customer_id, s8.name, s9.email_key, s10.bucket, s11.running, 0, 0, 0
FROM stage7 s7, stage8 s8, stage9 s9, stage10 s10, stage11 s11
WHERE s7.customer_id = s8.customer_id
ORDER BY 5 DESC
LIMIT 100",
    );
    sql
}

fn bench(c: &mut Criterion) {
    let cat = catalog();
    let opts = AnalyzeOptions::default();
    let report = report_query();
    let queries = [
        ("pgbench_select", PGBENCH.to_owned()),
        ("join3_cte", JOIN_WITH_CTE.to_owned()),
        ("report_200_lines", report),
    ];
    for (name, sql) in &queries {
        analyze(sql, &cat, &opts).expect("benchmark queries analyse");
        c.bench_function(&format!("cold/{name}"), |b| {
            b.iter(|| analyze(black_box(sql), &cat, &opts))
        });
        let cache = AnalysisCache::new(1024);
        c.bench_function(&format!("cached/{name}"), |b| {
            b.iter(|| cache.get_or_analyze(black_box(sql), &cat, &opts))
        });
    }
    // The simple protocol inlines the value: every text is new, and the
    // literal-blind key serves them all from one entry.
    let inlined: Vec<String> = (1..=1000)
        .map(|aid| PGBENCH.replace("$1", &(aid * 997).to_string()))
        .collect();
    let cache = AnalysisCache::new(1024);
    let mut next = inlined.iter().cycle();
    c.bench_function("cached/pgbench_select_inlined_values", |b| {
        b.iter(|| {
            cache.get_or_analyze(
                black_box(next.next().map_or("", String::as_str)),
                &cat,
                &opts,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
