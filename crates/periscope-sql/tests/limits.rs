//! Hostile input: deep nesting, long chains, recursive views, bad syntax.
//! Never a panic or a stack overflow; precise errors.

use periscope_sql::{AnalyzeError, AnalyzeOptions, Lineage, StaticCatalog, analyze};

fn run(sql: &str) -> Result<periscope_sql::Analysis, AnalyzeError> {
    analyze(sql, &crate::common::catalog(), &AnalyzeOptions::default())
}

#[test]
fn ten_thousand_nested_parentheses_are_refused_cleanly() {
    let sql = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(run(&sql), Err(AnalyzeError::TooDeep { limit: 100 }));
    let sql = format!(
        "SELECT * FROM {}customers{}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(matches!(run(&sql), Err(AnalyzeError::TooDeep { .. })));
}

#[test]
fn deeply_nested_calls_and_subqueries_are_refused_cleanly() {
    let sql = format!(
        "SELECT {}email{} FROM customers",
        "upper(".repeat(5_000),
        ")".repeat(5_000)
    );
    assert!(matches!(run(&sql), Err(AnalyzeError::TooDeep { .. })));
    let sql = format!(
        "SELECT * FROM {}customers{}",
        "(SELECT * FROM ".repeat(2_000),
        ") x".repeat(2_000)
    );
    assert!(matches!(run(&sql), Err(AnalyzeError::TooDeep { .. })));
}

#[test]
fn moderate_nesting_is_analysed() {
    let sql = format!(
        "SELECT {}ssn{} FROM customers",
        "upper(".repeat(20),
        ")".repeat(20)
    );
    let st = &run(&sql).expect("20 nested calls parse").statements[0];
    assert_eq!(
        st.outputs[0].lineage,
        crate::common::derived(&["customers.ssn"])
    );
    let sql = format!(
        "SELECT e FROM {}(SELECT email AS e FROM customers) x{}",
        "(SELECT e FROM ".repeat(10),
        ") x".repeat(10)
    );
    let st = &run(&sql).expect("10 nested subqueries parse").statements[0];
    assert_eq!(
        st.outputs[0].lineage,
        crate::common::pass(&["customers.email"])
    );
}

#[test]
fn long_operator_chains_do_not_exhaust_the_stack() {
    // The longest accepted chain (just under the default bound) is walked
    // iteratively, not once per operator, on a test thread's 2 MiB stack.
    let sql = format!("SELECT email{} FROM customers", " || phone".repeat(1_999));
    let st = &run(&sql).expect("a long chain parses").statements[0];
    assert_eq!(
        st.outputs[0].lineage,
        crate::common::derived(&["customers.email", "customers.phone"])
    );
}

#[test]
fn operator_chains_too_long_to_walk_safely_are_refused() {
    // 30,000 terms would build a tree deep enough to overflow a 2 MiB stack
    // when dropped or visited: refused before parsing.
    let sql = format!("SELECT 1{}", " + 1".repeat(30_000));
    assert_eq!(run(&sql), Err(AnalyzeError::TooDeep { limit: 2000 }));
    let sql = format!("SELECT 1 WHERE {}", vec!["a = 1"; 30_000].join(" AND "));
    assert!(matches!(run(&sql), Err(AnalyzeError::TooDeep { .. })));
    let sql = vec!["SELECT 1"; 30_000].join(" UNION ALL ");
    assert!(matches!(run(&sql), Err(AnalyzeError::TooDeep { .. })));
    let sql = format!("SELECT 1{}", "::text".repeat(30_000));
    assert!(matches!(run(&sql), Err(AnalyzeError::TooDeep { .. })));
    // A long IN list or VALUES list is flat, not a chain.
    let list = (0..30_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT email FROM customers WHERE id IN ({list})");
    assert_eq!(
        run(&sql).expect("a long IN list is fine").statements.len(),
        1
    );
}

#[test]
fn the_walker_depth_limit_is_enforced() {
    let opts = AnalyzeOptions {
        max_depth: 10,
        ..AnalyzeOptions::default()
    };
    let sql = format!(
        "SELECT {}ssn{} FROM customers",
        "lower(".repeat(20),
        ")".repeat(20)
    );
    let r = analyze(&sql, &crate::common::catalog(), &opts);
    assert_eq!(r, Err(AnalyzeError::TooDeep { limit: 10 }));
}

#[test]
fn view_chains_deeper_than_the_limit_become_unknown() {
    let mut cat = StaticCatalog::new();
    cat.add_table("public", "customers", crate::common::CUSTOMER_COLUMNS);
    cat.add_view("public", "v0", &["e"], "SELECT email AS e FROM customers");
    for i in 1..40 {
        cat.add_view(
            "public",
            &format!("v{i}"),
            &["e"],
            &format!("SELECT e FROM v{}", i - 1),
        );
    }
    let opts = AnalyzeOptions::default();
    let ok = analyze("SELECT e FROM v10", &cat, &opts).expect("analyses");
    assert_eq!(
        ok.statements[0].outputs[0].lineage,
        crate::common::pass(&["customers.email"])
    );
    let deep = analyze("SELECT e FROM v39", &cat, &opts).expect("analyses");
    match &deep.statements[0].outputs[0].lineage {
        Lineage::Unknown { reason } => assert!(reason.contains("nest deeper"), "{reason}"),
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[test]
fn a_view_definition_with_a_huge_operator_chain_is_unknown_not_a_crash() {
    let mut cat = StaticCatalog::new();
    cat.add_table("public", "customers", crate::common::CUSTOMER_COLUMNS);
    let def = format!(
        "SELECT email{} AS e FROM customers",
        " || email".repeat(30_000)
    );
    cat.add_view("public", "bomb", &["e"], &def);
    let a = analyze("SELECT e FROM bomb", &cat, &AnalyzeOptions::default()).expect("analyses");
    match &a.statements[0].outputs[0].lineage {
        Lineage::Unknown { reason } => assert!(reason.contains("too deeply nested"), "{reason}"),
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[test]
fn mutually_recursive_views_become_unknown() {
    let st = &run("SELECT * FROM loop_a").expect("analyses").statements[0];
    assert!(st.has_unknown_outputs());
}

#[test]
fn views_whose_definition_does_not_match_the_catalog_are_unknown() {
    let mut cat = StaticCatalog::new();
    cat.add_table("public", "customers", crate::common::CUSTOMER_COLUMNS);
    cat.add_view("public", "bad", &["a", "b"], "SELECT email FROM customers");
    cat.add_view("public", "garbage", &["a"], "SELEKT nonsense");
    for sql in ["SELECT a FROM bad", "SELECT a FROM garbage"] {
        let a = analyze(sql, &cat, &AnalyzeOptions::default()).expect("analyses");
        assert!(a.statements[0].has_unknown_outputs(), "{sql}");
    }
}

#[test]
fn parse_errors_say_where_and_what() {
    let err = run("SELECT email\nFROM customers\nWHERE id = = 1").expect_err("invalid");
    match err {
        AnalyzeError::Parse {
            statement,
            line,
            column,
            message,
        } => {
            assert_eq!((statement, line, column), (1, 3, 12));
            assert_eq!(message, "expected an expression, found =");
        }
        other => panic!("{other:?}"),
    }
    let err = run("SELECT 1;\nSELECT 'unterminated").expect_err("invalid");
    assert!(
        matches!(
            err,
            AnalyzeError::Parse {
                statement: 2,
                line: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let err = run("SELECT 1;\n  SELECT email FROM customers WHERE (id = 1").expect_err("invalid");
    assert_eq!(
        err,
        AnalyzeError::Parse {
            statement: 2,
            line: 2,
            column: 44,
            message: "expected ), found EOF".to_owned()
        }
    );
    let msg = run("SELEC 1").expect_err("invalid").to_string();
    assert!(
        msg.starts_with("syntax error in statement 1 at line 1, column 1"),
        "{msg}"
    );
}

#[test]
fn statements_of_other_dialects_are_unsupported() {
    for sql in ["USE mydb", "PRAGMA foo"] {
        match run(sql) {
            Err(AnalyzeError::Unsupported(_)) | Err(AnalyzeError::Parse { .. }) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
}

#[test]
fn many_statements_in_one_string() {
    let sql = "SELECT email FROM customers WHERE id = 1;".repeat(2_000);
    let a = run(&sql).expect("analyses");
    assert_eq!(a.statements.len(), 2_000);
    assert_eq!(
        a.statements[1999].outputs[0].lineage,
        crate::common::pass(&["customers.email"])
    );
}
