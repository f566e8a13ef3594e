//! The analysis cache answers a text it has not seen from an entry for
//! another text only when that answer is exactly what analysing the text
//! would give: checked here on generated `SELECT`s whose numbers change.

use periscope_sql::{AnalysisCache, AnalyzeOptions, StaticCatalog, analyze};
use proptest::prelude::*;

/// Where a number goes in a generated query.
const SLOT: &str = "{}";

/// One piece of a WHERE clause, with number slots: comparisons of a column
/// (blanked from the key) and the forms whose numbers the analysis reads.
fn predicate() -> impl Strategy<Value = String> {
    let column = prop_oneof![Just("a"), Just("t.b"), Just("\"email\""), Just("b")];
    let op = prop_oneof![
        Just("="),
        Just("<>"),
        Just("!="),
        Just("<"),
        Just(">="),
        Just(" = ")
    ];
    prop_oneof![
        (column.clone(), op).prop_map(|(c, o)| format!("{c}{o}{SLOT}")),
        Just(format!("{SLOT} = {SLOT}")),
        column.clone().prop_map(|c| format!("{c} = -{SLOT}")),
        column.clone().prop_map(|c| format!("{c} =-{SLOT}")),
        Just(format!("TRUE = {SLOT}")),
        column
            .clone()
            .prop_map(|c| format!("{c} IN ({SLOT}, {SLOT})")),
        column.prop_map(|c| format!("length({c}) = {SLOT}")),
    ]
}

/// A single SELECT over `t` with number slots.
fn template() -> impl Strategy<Value = String> {
    let output = prop_oneof![
        Just("a".to_owned()),
        Just("email".to_owned()),
        Just("b".to_owned()),
        Just(format!("a = {SLOT} AS flag")),
        Just("count(*) AS n".to_owned()),
    ];
    (
        proptest::collection::vec(output, 1..4),
        proptest::collection::vec(predicate(), 0..4),
        proptest::option::of(Just(format!(" ORDER BY {SLOT}"))),
        proptest::option::of(Just(format!(" LIMIT {SLOT}"))),
        any::<bool>(),
    )
        .prop_map(|(outputs, predicates, order, limit, semicolon)| {
            let mut sql = format!("SELECT {} FROM t", outputs.join(", "));
            if !predicates.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&predicates.join(" AND "));
            }
            sql.push_str(order.as_deref().unwrap_or(""));
            sql.push_str(limit.as_deref().unwrap_or(""));
            if semicolon {
                sql.push(';');
            }
            sql
        })
}

fn fill(template: &str, numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut numbers = numbers.iter().cycle();
    for (i, part) in template.split(SLOT).enumerate() {
        if i > 0 {
            out.push_str(&numbers.next().copied().unwrap_or(1).to_string());
        }
        out.push_str(part);
    }
    out
}

fn catalog() -> StaticCatalog {
    let mut cat = StaticCatalog::new();
    cat.add_table("public", "t", &["a", "b", "email"]);
    cat
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn another_numbers_answer_is_a_fresh_analysis(
        template in template(),
        first in proptest::collection::vec(0u32..4, 1..6),
        second in proptest::collection::vec(prop_oneof![0u32..4, 0u32..2_000_000], 1..6),
    ) {
        let cat = catalog();
        let opts = AnalyzeOptions::default();
        let warm = fill(&template, &first);
        let asked = fill(&template, &second);
        let cache = AnalysisCache::new(16);
        let warmed = cache.get_or_analyze(&warm, &cat, &opts);
        prop_assert_eq!(warmed.is_ok(), analyze(&warm, &cat, &opts).is_ok());
        let answer = cache.get_or_analyze(&asked, &cat, &opts);
        match analyze(&asked, &cat, &opts) {
            Ok(fresh) => prop_assert_eq!(&*answer.expect("the cache analyses what analyze does"), &fresh, "{} then {}", warm, asked),
            Err(_) => prop_assert!(answer.is_err(), "{} then {}", warm, asked),
        }
    }
}

/// The cache does share entries for the pgbench shape, or the property above
/// would hold trivially.
#[test]
fn inlined_pgbench_values_share_one_entry() {
    let cat = catalog();
    let opts = AnalyzeOptions::default();
    let cache = AnalysisCache::new(16);
    for aid in [1, 42, 99_999, 1_000_000] {
        let sql = format!("SELECT a FROM t WHERE b = {aid};");
        cache.get_or_analyze(&sql, &cat, &opts).expect("analyses");
    }
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits, stats.len), (1, 3, 1));
}
