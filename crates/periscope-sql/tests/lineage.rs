//! Output-column lineage over the fixture schema: every path and every
//! transformation the proxy relies on to mask derived values.

use crate::common::{CUSTOMER_COLUMNS, col, cols, derived, one, pass};
use periscope_sql::{Lineage, RowEncoding, RowField};

fn constant() -> Lineage {
    Lineage::Constant
}

fn row(encoding: RowEncoding, fields: &[(&str, Lineage)]) -> Lineage {
    Lineage::WholeRow {
        encoding,
        fields: fields
            .iter()
            .map(|(k, l)| RowField {
                key: (*k).to_owned(),
                lineage: l.clone(),
            })
            .collect(),
    }
}

fn customers_row(encoding: RowEncoding) -> Lineage {
    let fields: Vec<(&str, Lineage)> = CUSTOMER_COLUMNS
        .iter()
        .map(|c| (*c, pass(&[&format!("customers.{c}")])))
        .collect();
    row(encoding, &fields)
}

fn all_customer_columns() -> Vec<String> {
    CUSTOMER_COLUMNS
        .iter()
        .map(|c| format!("customers.{c}"))
        .collect()
}

/// Checks names and lineages of every output column.
fn check(sql: &str, want: &[(&str, Lineage)]) {
    let st = one(sql);
    let got: Vec<(String, Lineage)> = st
        .outputs
        .iter()
        .map(|o| (o.name.clone(), o.lineage.clone()))
        .collect();
    let want: Vec<(String, Lineage)> = want
        .iter()
        .map(|(n, l)| ((*n).to_owned(), l.clone()))
        .collect();
    assert_eq!(got, want, "\nSQL: {sql}");
    assert!(st.outputs_exact, "outputs should be exact for {sql}");
}

#[test]
fn pass_through_keeps_the_column_through_every_binding() {
    let email = || pass(&["customers.email"]);
    let cases: Vec<(&str, Vec<(&str, Lineage)>)> = vec![
        ("SELECT email FROM customers", vec![("email", email())]),
        ("SELECT c.email AS e FROM customers c", vec![("e", email())]),
        (
            "SELECT \"email\" FROM public.customers",
            vec![("email", email())],
        ),
        (
            "SELECT public.customers.email FROM public.customers",
            vec![("email", email())],
        ),
        ("SELECT (email) FROM customers", vec![("email", email())]),
        (
            "SELECT x.e FROM (SELECT email AS e FROM customers) x",
            vec![("e", email())],
        ),
        (
            "SELECT e FROM (SELECT email FROM customers) AS x(e)",
            vec![("e", email())],
        ),
        (
            "WITH t AS (SELECT email FROM customers) SELECT email FROM t",
            vec![("email", email())],
        ),
        (
            "WITH t(addr) AS (SELECT email FROM customers) SELECT addr FROM t",
            vec![("addr", email())],
        ),
        (
            "WITH a AS (SELECT email FROM customers), b AS (SELECT email AS m FROM a) SELECT m FROM b",
            vec![("m", email())],
        ),
        (
            "SELECT email FROM customer_contacts",
            vec![("email", email())],
        ),
        (
            "SELECT contact FROM contact_emails",
            vec![("contact", email())],
        ),
        (
            "SELECT v.contact AS c FROM contact_emails v",
            vec![("c", email())],
        ),
        (
            "SELECT x.e FROM customers c, LATERAL (SELECT c.email AS e) x",
            vec![("e", email())],
        ),
        (
            "SELECT x.e FROM customers c CROSS JOIN LATERAL (SELECT c.email AS e) x",
            vec![("e", email())],
        ),
        (
            "SELECT DISTINCT ON (email) email FROM customers ORDER BY email, id",
            vec![("email", email())],
        ),
        (
            "SELECT email, count(*) FROM customers GROUP BY email HAVING count(*) > 1",
            vec![("email", email()), ("count", constant())],
        ),
        (
            "SELECT email COLLATE \"C\" FROM customers",
            vec![("email", email())],
        ),
        (
            "SELECT (c).email FROM customers c",
            vec![("email", email())],
        ),
        (
            "SELECT email FROM customers FOR UPDATE",
            vec![("email", email())],
        ),
    ];
    for (sql, want) in cases {
        check(sql, &want);
    }
}

#[test]
fn set_operations_union_sources_by_position() {
    check(
        "SELECT email FROM customers UNION SELECT card_number FROM payments",
        &[("email", pass(&["customers.email", "payments.card_number"]))],
    );
    check(
        "SELECT email, id FROM customers INTERSECT SELECT card_number, id FROM payments",
        &[
            ("email", pass(&["customers.email", "payments.card_number"])),
            ("id", pass(&["customers.id", "payments.id"])),
        ],
    );
    check(
        "SELECT ssn FROM customers EXCEPT SELECT 'x' UNION ALL (SELECT upper(iban) FROM customers)",
        &[("ssn", derived(&["customers.ssn", "customers.iban"]))],
    );
}

#[test]
fn joins_merge_using_and_natural_columns() {
    check(
        "SELECT id FROM customers JOIN orders USING (id)",
        &[("id", pass(&["customers.id", "orders.id"]))],
    );
    let mut want: Vec<(&str, Lineage)> = vec![
        ("id", pass(&["customers.id", "orders.id"])),
        (
            "created_at",
            pass(&["customers.created_at", "orders.created_at"]),
        ),
    ];
    for c in [
        "name",
        "email",
        "phone",
        "ssn",
        "card_number",
        "iban",
        "notes",
    ] {
        want.push((c, pass(&[&format!("customers.{c}")])));
    }
    for c in ["customer_id", "total", "status"] {
        want.push((c, pass(&[&format!("orders.{c}")])));
    }
    check("SELECT * FROM customers NATURAL JOIN orders", &want);
    check(
        "SELECT c.email, o.total FROM customers c LEFT JOIN orders o ON o.customer_id = c.id",
        &[
            ("email", pass(&["customers.email"])),
            ("total", pass(&["orders.total"])),
        ],
    );
    check(
        "SELECT j.email FROM (customers c JOIN orders o ON o.customer_id = c.id) AS j",
        &[("email", pass(&["customers.email"]))],
    );
}

#[test]
fn star_expansion_uses_catalog_column_order() {
    let want: Vec<(&str, Lineage)> = CUSTOMER_COLUMNS
        .iter()
        .map(|c| (*c, pass(&[&format!("customers.{c}")])))
        .collect();
    check("SELECT * FROM customers", &want);
    check("TABLE customers", &want);
    check(
        "SELECT c.* FROM customers c JOIN orders o ON o.customer_id = c.id",
        &want,
    );
    check("SELECT * FROM (SELECT * FROM customers) s", &want);
    check(
        "WITH s AS (SELECT * FROM customers) SELECT s.* FROM s",
        &want,
    );
    check("COPY customers TO STDOUT", &want);
    check(
        "SELECT * FROM customer_contacts",
        &[
            ("name", pass(&["customers.name"])),
            ("email", pass(&["customers.email"])),
        ],
    );
}

#[test]
fn every_transformation_is_derived_from_its_sources() {
    let cases: Vec<(&str, &str, &[&str])> = vec![
        (
            "SELECT upper(email) FROM customers",
            "upper",
            &["customers.email"],
        ),
        (
            "SELECT lower(email) FROM customers",
            "lower",
            &["customers.email"],
        ),
        (
            "SELECT reverse(card_number) FROM customers",
            "reverse",
            &["customers.card_number"],
        ),
        (
            "SELECT encode(email::bytea, 'hex') FROM customers",
            "encode",
            &["customers.email"],
        ),
        (
            "SELECT encode(convert_to(ssn, 'UTF8'), 'base64') FROM customers",
            "encode",
            &["customers.ssn"],
        ),
        (
            "SELECT substr(ssn, 1, 3) FROM customers",
            "substr",
            &["customers.ssn"],
        ),
        (
            "SELECT substring(ssn from 1 for 3) FROM customers",
            "substring",
            &["customers.ssn"],
        ),
        (
            "SELECT left(card_number, 4) || right(card_number, 4) FROM customers",
            "?column?",
            &["customers.card_number"],
        ),
        (
            "SELECT email || ' ' || phone AS contact FROM customers",
            "contact",
            &["customers.email", "customers.phone"],
        ),
        (
            "SELECT email::bytea FROM customers",
            "email",
            &["customers.email"],
        ),
        (
            "SELECT CAST(iban AS bytea) FROM customers",
            "iban",
            &["customers.iban"],
        ),
        (
            "SELECT ssn::text::bytea FROM customers",
            "ssn",
            &["customers.ssn"],
        ),
        (
            "SELECT translate(card_number, '0123456789', 'abcdefghij') FROM customers",
            "translate",
            &["customers.card_number"],
        ),
        (
            "SELECT replace(email, '@', ' at ') FROM customers",
            "replace",
            &["customers.email"],
        ),
        (
            "SELECT regexp_replace(email, '@.*', '') FROM customers",
            "regexp_replace",
            &["customers.email"],
        ),
        (
            "SELECT split_part(email, '@', 1) FROM customers",
            "split_part",
            &["customers.email"],
        ),
        ("SELECT md5(ssn) FROM customers", "md5", &["customers.ssn"]),
        (
            "SELECT concat(name, email) FROM customers",
            "concat",
            &["customers.name", "customers.email"],
        ),
        (
            "SELECT concat_ws(',', phone, iban) FROM customers",
            "concat_ws",
            &["customers.phone", "customers.iban"],
        ),
        (
            "SELECT format('%s', ssn) FROM customers",
            "format",
            &["customers.ssn"],
        ),
        (
            "SELECT overlay(card_number placing 'x' from 1 for 4) FROM customers",
            "overlay",
            &["customers.card_number"],
        ),
        (
            "SELECT trim(both ' ' from phone) FROM customers",
            "btrim",
            &["customers.phone"],
        ),
        (
            "SELECT position('@' in email) FROM customers",
            "position",
            &["customers.email"],
        ),
        (
            "SELECT length(email) FROM customers",
            "length",
            &["customers.email"],
        ),
        (
            "SELECT string_agg(email, ',') FROM customers",
            "string_agg",
            &["customers.email"],
        ),
        (
            "SELECT string_agg(email, ',' ORDER BY id) FROM customers",
            "string_agg",
            &["customers.email"],
        ),
        (
            "SELECT array_agg(ssn) FROM customers",
            "array_agg",
            &["customers.ssn"],
        ),
        (
            "SELECT json_agg(email) FROM customers",
            "json_agg",
            &["customers.email"],
        ),
        (
            "SELECT jsonb_agg(DISTINCT phone) FROM customers",
            "jsonb_agg",
            &["customers.phone"],
        ),
        (
            "SELECT min(ssn), 1 FROM customers",
            "min",
            &["customers.ssn"],
        ),
        (
            "SELECT max(card_number) AS m FROM customers",
            "m",
            &["customers.card_number"],
        ),
        (
            "SELECT count(email) FROM customers",
            "count",
            &["customers.email"],
        ),
        (
            "SELECT to_jsonb(email) FROM customers",
            "to_jsonb",
            &["customers.email"],
        ),
        (
            "SELECT CASE WHEN id > 10 THEN email ELSE phone END FROM customers",
            "case",
            &["customers.id", "customers.email", "customers.phone"],
        ),
        (
            "SELECT CASE ssn WHEN '1' THEN 'a' ELSE 'b' END FROM customers",
            "case",
            &["customers.ssn"],
        ),
        (
            "SELECT coalesce(email, phone) FROM customers",
            "coalesce",
            &["customers.email", "customers.phone"],
        ),
        (
            "SELECT nullif(iban, '') FROM customers",
            "nullif",
            &["customers.iban"],
        ),
        (
            "SELECT greatest(email, phone) FROM customers",
            "greatest",
            &["customers.email", "customers.phone"],
        ),
        (
            "SELECT ARRAY[email, phone] FROM customers",
            "array",
            &["customers.email", "customers.phone"],
        ),
        (
            "SELECT ARRAY(SELECT email FROM customers)",
            "array",
            &["customers.email"],
        ),
        (
            "SELECT (SELECT email FROM customers LIMIT 1) AS e",
            "e",
            &["customers.email"],
        ),
        (
            "SELECT (SELECT max(o.total) FROM orders o WHERE o.customer_id = c.id) FROM customers c",
            "max",
            &["orders.total"],
        ),
        (
            "SELECT lag(email) OVER (ORDER BY id) FROM customers",
            "lag",
            &["customers.email"],
        ),
        (
            "SELECT first_value(ssn) OVER w FROM customers WINDOW w AS (ORDER BY id)",
            "first_value",
            &["customers.ssn"],
        ),
        (
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ssn) FROM customers",
            "percentile_disc",
            &["customers.ssn"],
        ),
        (
            "SELECT mode() WITHIN GROUP (ORDER BY email) FROM customers",
            "mode",
            &["customers.email"],
        ),
        (
            "SELECT email ~ '^a' FROM customers",
            "?column?",
            &["customers.email"],
        ),
        (
            "SELECT email LIKE 'a%' FROM customers",
            "?column?",
            &["customers.email"],
        ),
        (
            "SELECT ssn IS NULL FROM customers",
            "?column?",
            &["customers.ssn"],
        ),
        ("SELECT -id FROM customers", "?column?", &["customers.id"]),
        (
            "SELECT email IN (SELECT card_number FROM payments) FROM customers",
            "?column?",
            &["customers.email", "payments.card_number"],
        ),
        (
            "SELECT (row_to_json(c))->>'email' FROM customers c",
            "?column?",
            &[],
        ),
        (
            "SELECT notes::jsonb #>> '{a,b}' FROM customers",
            "?column?",
            &["customers.notes"],
        ),
        (
            "SELECT extract(year from created_at) FROM customers",
            "extract",
            &["customers.created_at"],
        ),
        (
            "SELECT upper(contact) FROM contact_emails",
            "upper",
            &["customers.email"],
        ),
        (
            "SELECT domain FROM customer_stats",
            "domain",
            &["customers.email"],
        ),
        (
            "SELECT unnest(ARRAY[email, iban]) FROM customers",
            "unnest",
            &["customers.email", "customers.iban"],
        ),
        (
            "SELECT regexp_matches(email, '(.*)@') FROM customers",
            "regexp_matches",
            &["customers.email"],
        ),
    ];
    for (sql, name, sources) in cases {
        let st = one(sql);
        let first = &st.outputs[0];
        assert_eq!(first.name, name, "{sql}");
        let expected = if sources.is_empty() {
            let all = all_customer_columns();
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            derived(&all)
        } else {
            derived(sources)
        };
        assert_eq!(first.lineage, expected, "{sql}");
    }
}

#[test]
fn set_returning_functions_in_from_carry_their_arguments() {
    check(
        "SELECT u FROM customers, unnest(ARRAY[email, phone]) AS u",
        &[("u", derived(&["customers.email", "customers.phone"]))],
    );
    check(
        "SELECT t.e, t.n FROM unnest(ARRAY(SELECT ssn FROM customers)) WITH ORDINALITY AS t(e, n)",
        &[("e", derived(&["customers.ssn"])), ("n", constant())],
    );
    check(
        "SELECT m FROM customers c, regexp_matches(c.email, '(.*)@') AS m",
        &[("m", derived(&["customers.email"]))],
    );
    let all = all_customer_columns();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    check(
        "SELECT key, value FROM customers c, jsonb_each(to_jsonb(c))",
        &[("key", derived(&all)), ("value", derived(&all))],
    );
    check(
        "SELECT * FROM customers c, jsonb_to_record(to_jsonb(c)) AS r(email text)",
        &{
            let mut w: Vec<(&str, Lineage)> = CUSTOMER_COLUMNS
                .iter()
                .map(|c| (*c, pass(&[&format!("customers.{c}")])))
                .collect();
            w.push(("email", derived(&all)));
            w
        },
    );
    check(
        "SELECT * FROM generate_series(1, 3)",
        &[("generate_series", constant())],
    );
    check(
        "SELECT g FROM generate_series(1, 3) g",
        &[("g", constant())],
    );
}

#[test]
fn recursive_ctes_reach_a_conservative_fixpoint() {
    check(
        "WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM customers UNION ALL SELECT n + 1, e FROM r WHERE n < 3) SELECT n, e FROM r",
        &[("n", constant()), ("e", pass(&["customers.email"]))],
    );
    check(
        "WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM customers UNION ALL SELECT n + 1, upper(phone || e) FROM r, customers WHERE n < 3) SELECT e FROM r",
        &[("e", derived(&["customers.email", "customers.phone"]))],
    );
}

#[test]
fn whole_rows_keep_their_keys() {
    for sql in [
        "SELECT row_to_json(c) FROM customers c",
        "SELECT to_json(c) FROM customers c",
        "SELECT to_jsonb(c.*) FROM customers c",
        "SELECT json_agg(c) FROM customers c",
        "SELECT jsonb_agg(customers) FROM customers",
        "SELECT row_to_json(x) FROM (SELECT * FROM customers) x",
    ] {
        let st = one(sql);
        assert_eq!(st.outputs.len(), 1, "{sql}");
        assert_eq!(
            st.outputs[0].lineage,
            customers_row(RowEncoding::Json),
            "{sql}"
        );
    }
    check(
        "SELECT c FROM customers c",
        &[("c", customers_row(RowEncoding::Composite))],
    );
    check(
        "SELECT row_to_json(t) FROM (SELECT id, upper(email) AS e FROM customers) t",
        &[(
            "row_to_json",
            row(
                RowEncoding::Json,
                &[
                    ("id", pass(&["customers.id"])),
                    ("e", derived(&["customers.email"])),
                ],
            ),
        )],
    );
    check(
        "SELECT jsonb_build_object('e', email, 'u', upper(ssn), 'n', 1) AS j FROM customers",
        &[(
            "j",
            row(
                RowEncoding::Json,
                &[
                    ("e", pass(&["customers.email"])),
                    ("u", derived(&["customers.ssn"])),
                    ("n", constant()),
                ],
            ),
        )],
    );
    check(
        "SELECT json_build_object('c', row_to_json(c)) FROM customers c",
        &[(
            "json_build_object",
            row(
                RowEncoding::Json,
                &[("c", customers_row(RowEncoding::Json))],
            ),
        )],
    );
    check(
        "SELECT json_build_object(name, email) FROM customers",
        &[(
            "json_build_object",
            derived(&["customers.name", "customers.email"]),
        )],
    );
    check(
        "SELECT ROW(id, email) FROM customers",
        &[(
            "row",
            row(
                RowEncoding::Composite,
                &[
                    ("f1", pass(&["customers.id"])),
                    ("f2", pass(&["customers.email"])),
                ],
            ),
        )],
    );
    let all = all_customer_columns();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    check(
        "SELECT array_agg(c) FROM customers c",
        &[("array_agg", derived(&all))],
    );
    check("SELECT c::text FROM customers c", &[("c", derived(&all))]);
}

#[test]
fn constants_have_no_sources() {
    check(
        "SELECT 1, 'a', now(), version(), current_user, current_date, $1::int AS p, NULL, true, interval '1 day'",
        &[
            ("?column?", constant()),
            ("?column?", constant()),
            ("now", constant()),
            ("version", constant()),
            ("current_user", constant()),
            ("current_date", constant()),
            ("p", constant()),
            ("?column?", constant()),
            ("?column?", constant()),
            ("interval", constant()),
        ],
    );
    check("SELECT count(*) FROM customers", &[("count", constant())]);
    check("SELECT '1'::int", &[("int4", constant())]);
    check(
        "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(n, s)",
        &[("n", constant()), ("s", constant())],
    );
    check(
        "SELECT EXISTS (SELECT 1 FROM customers WHERE ssn = '1')",
        &[("exists", constant())],
    );
}

#[test]
fn values_mixing_literals_and_columns_keep_the_columns() {
    check(
        "SELECT column1 FROM (VALUES ('x'), ((SELECT ssn FROM customers LIMIT 1))) v",
        &[("column1", derived(&["customers.ssn"]))],
    );
}

#[test]
fn returning_and_copy_outputs() {
    check(
        "DELETE FROM customers WHERE id = 1 RETURNING email, upper(ssn) AS s",
        &[
            ("email", pass(&["customers.email"])),
            ("s", derived(&["customers.ssn"])),
        ],
    );
    check(
        "UPDATE customers c SET name = 'x' FROM orders o WHERE o.customer_id = c.id RETURNING c.iban",
        &[("iban", pass(&["customers.iban"]))],
    );
    let st = one(
        "UPDATE orders o SET status = 'x' FROM customers c WHERE c.id = o.customer_id RETURNING *",
    );
    let names: Vec<&str> = st.outputs.iter().map(|o| o.name.as_str()).collect();
    let mut want = vec!["id", "customer_id", "total", "status", "created_at"];
    want.extend(CUSTOMER_COLUMNS);
    assert_eq!(
        names, want,
        "RETURNING * includes the FROM relations' columns"
    );
    assert_eq!(st.outputs[7].lineage, pass(&["customers.email"]));
    check(
        "INSERT INTO customers (name) VALUES ('a') RETURNING id, email",
        &[
            ("id", pass(&["customers.id"])),
            ("email", pass(&["customers.email"])),
        ],
    );
    check(
        "WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING *) SELECT d.ssn FROM d",
        &[("ssn", pass(&["customers.ssn"]))],
    );
    check(
        "COPY customers (email, phone) TO STDOUT WITH (FORMAT csv)",
        &[
            ("email", pass(&["customers.email"])),
            ("phone", pass(&["customers.phone"])),
        ],
    );
    check(
        "COPY (SELECT reverse(card_number) FROM customers) TO STDOUT",
        &[("reverse", derived(&["customers.card_number"]))],
    );
    check(
        "PREPARE q(int) AS SELECT email FROM customers WHERE id = $1",
        &[("email", pass(&["customers.email"]))],
    );
    check(
        "DECLARE c CURSOR FOR SELECT ssn FROM customers",
        &[("ssn", pass(&["customers.ssn"]))],
    );
}

#[test]
fn schemas_and_search_path_pick_the_right_relation() {
    check(
        "SELECT secret_code FROM app.customers",
        &[("secret_code", pass(&["app.customers.secret_code"]))],
    );
    let a = periscope_sql::analyze(
        "SET search_path = app; SELECT * FROM customers; RESET search_path; SELECT id FROM customers",
        &crate::common::catalog(),
        &periscope_sql::AnalyzeOptions::default(),
    )
    .expect("analyses");
    assert_eq!(a.statements.len(), 4);
    assert_eq!(
        a.statements[1].outputs[1].lineage,
        pass(&["app.customers.secret_code"])
    );
    assert_eq!(a.statements[3].outputs[0].lineage, pass(&["customers.id"]));
}

#[test]
fn unknown_lineage_fails_closed() {
    let unknown = |sql: &str| {
        let st = one(sql);
        assert!(st.has_unknown_outputs(), "{sql}: {:?}", st.outputs);
        st
    };
    let st = unknown("SELECT * FROM no_such_table");
    assert!(!st.outputs_exact);
    assert_eq!(st.outputs.len(), 1);
    let st = unknown("SELECT a FROM no_such_table");
    assert!(
        matches!(&st.outputs[0].lineage, Lineage::Unknown { reason } if reason.contains("no_such_table"))
    );
    let st = unknown("SELECT email, x FROM customers, no_such_table");
    assert_eq!(st.outputs[0].lineage, pass(&["customers.email"]));
    unknown("SELECT * FROM my_set_returning_function()");
    unknown("SELECT lookup_ssn(id) FROM customers");
    unknown("SELECT x FROM loop_a");
    unknown("SELECT a FROM opaque_view");
    unknown("SELECT t.* FROM customers c JOIN no_such_table t ON true");
    unknown("SELECT nope FROM customers");
    unknown("SELECT query_to_xml('select email from customers', true, true, '')");
    unknown("SELECT pg_catalog.table_to_xml('customers', true, true, '')");
    unknown("SELECT * FROM ts_stat('select to_tsvector(notes) from customers')");
    unknown("SELECT * FROM customers c JOIN no_such_table t USING (id)");
    let st = unknown("SELECT * FROM customers UNION SELECT * FROM no_such_table");
    assert!(!st.outputs_exact);
    // The reason names the cause for the refusal message.
    let st = one("SELECT x FROM loop_a");
    assert!(
        matches!(&st.outputs[0].lineage, Lineage::Unknown { reason } if reason.contains("itself")),
        "{:?}",
        st.outputs
    );
}

#[test]
fn predicates_record_the_columns_they_read() {
    let st = one("SELECT id FROM customers WHERE email LIKE 'a%' AND ssn IS NOT NULL");
    assert_eq!(
        st.filter_columns,
        cols(&["customers.email", "customers.ssn"])
    );
    assert_eq!(st.outputs[0].lineage, pass(&["customers.id"]));
    let st = one(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY o.id HAVING max(c.iban) > 'X'",
    );
    assert_eq!(
        st.filter_columns,
        cols(&["customers.id", "orders.customer_id", "customers.iban"])
    );
    let st = one("SELECT count(*) FILTER (WHERE ssn LIKE '1%') FROM customers");
    assert_eq!(st.filter_columns, cols(&["customers.ssn"]));
    let st = one("SELECT row_number() OVER (PARTITION BY phone ORDER BY email) FROM customers");
    assert_eq!(st.outputs[0].lineage, Lineage::Constant);
    assert_eq!(
        st.filter_columns,
        cols(&["customers.phone", "customers.email"])
    );
    let st = one("SELECT 1 WHERE EXISTS (SELECT 1 FROM customers WHERE card_number = '4111')");
    assert_eq!(st.filter_columns, cols(&["customers.card_number"]));
    // Ordering with LIMIT/OFFSET is an oracle too.
    let st = one("SELECT id FROM customers ORDER BY ssn LIMIT 1 OFFSET 10");
    assert_eq!(st.filter_columns, cols(&["customers.ssn"]));
    let st = one("SELECT id, upper(email) AS e FROM customers ORDER BY e, 1");
    assert_eq!(
        st.filter_columns,
        cols(&["customers.email", "customers.id"])
    );
    let st = one("SELECT email FROM customers UNION SELECT iban FROM customers ORDER BY 1");
    assert_eq!(
        st.filter_columns,
        cols(&["customers.email", "customers.iban"])
    );
    let st = one("SELECT rank() OVER w FROM customers WINDOW w AS (PARTITION BY iban)");
    assert_eq!(st.filter_columns, cols(&["customers.iban"]));
    let st = one("SELECT DISTINCT ON (phone) id FROM customers");
    assert_eq!(st.filter_columns, cols(&["customers.phone"]));
    let st = one("DELETE FROM customers WHERE iban = 'x'");
    assert_eq!(st.filter_columns, cols(&["customers.iban"]));
    let st =
        one("SELECT id FROM customer_contacts, customers WHERE name = 'x' AND customers.id = 1");
    assert!(st.filter_columns.contains(&col("customers.id")));
}
