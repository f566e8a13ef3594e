//! Discovery's accuracy on the labelled schema corpus, at the default sample
//! size: recall of sensitive fields at least 0.99, precision at least 0.95.
//! Prints the confusion table and every disagreement with its reason.
//!
//! ```sh
//! cargo nextest run -p periscope-discover -E 'test(/^corpus::/)' --no-capture
//! ```

use periscope_discover::corpus::{Corpus, SEED, measure};
use periscope_discover::{
    ColumnPath, ColumnVerdict, DEFAULT_SAMPLE_SIZE, DiscoverConfig, Discoverer, FieldPath,
    render_tags,
};

#[test]
fn recall_and_precision_at_the_default_sample_size() {
    let corpus = Corpus::generate(SEED);
    assert!(corpus.tables.len() >= 30, "{} tables", corpus.tables.len());
    assert!(
        corpus.column_count() >= 300,
        "{} columns",
        corpus.column_count()
    );
    let engine = Discoverer::new(DiscoverConfig::new(2025));
    let (verdicts, score) = measure(&engine, &corpus, DEFAULT_SAMPLE_SIZE);
    println!(
        "{} tables, {} columns, {} fields with verdicts, sample {DEFAULT_SAMPLE_SIZE}",
        corpus.tables.len(),
        corpus.column_count(),
        verdicts.len()
    );
    println!("{score}");
    for m in &score.misses {
        println!(
            "  {}: label {}, proposed {}: {}",
            m.path,
            m.truth.map_or("-", |e| e.name()),
            m.proposed.map_or("-", |e| e.name()),
            m.reason
                .as_ref()
                .map_or("no verdict".to_string(), |r| r.to_string())
        );
    }
    assert!(score.recall() >= 0.99, "recall {:.4}", score.recall());
    assert!(
        score.precision() >= 0.95,
        "precision {:.4}",
        score.precision()
    );
}

/// Verdicts, their reasons and the snippet go to people and logs unmasked:
/// they must hold no sampled value. Every identifier in the corpus has at
/// least five digits in a row, every email an `@`; neither may appear.
#[test]
fn verdicts_and_snippets_hold_no_sampled_value() {
    let corpus = Corpus::generate(SEED);
    let engine = Discoverer::new(DiscoverConfig::new(2025));
    let (verdicts, _) = measure(&engine, &corpus, DEFAULT_SAMPLE_SIZE);
    let mut text = serde_json::to_string(&verdicts).expect("verdicts serialise");
    for v in &verdicts {
        text.push_str(&v.reason.to_string());
        text.push('\n');
    }
    text.push_str(&render_tags(&verdicts));
    assert!(!text.contains('@'), "an email leaked");
    let mut run = 0;
    for b in text.bytes() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        assert!(run < 5, "a run of {run} digits leaked");
    }
    // The map keyed by user ids is there, as `.*`.
    assert!(text.contains("app.user_profiles.profile.$.*.x"));
}

#[test]
fn the_tags_snippet_is_toml_naming_the_proposed_fields() {
    let corpus = Corpus::generate(SEED);
    let engine = Discoverer::new(DiscoverConfig::new(2025));
    let (verdicts, _) = measure(&engine, &corpus, DEFAULT_SAMPLE_SIZE);
    let snippet = render_tags(&verdicts);
    println!("{snippet}");
    let doc: toml::Table = toml::from_str(&snippet).expect("the snippet is TOML");
    let tags = doc["connection"]["data_policy"]["tags"]
        .as_table()
        .expect("a tags table");
    let proposed: Vec<&ColumnVerdict> = verdicts.iter().filter(|v| v.proposed.is_some()).collect();
    assert_eq!(tags.len(), proposed.len());
    for v in proposed {
        let key = v.path.to_string();
        let entity = v.proposed.map(|e| e.name());
        assert_eq!(tags.get(&key).and_then(|t| t.as_str()), entity, "{key}");
        assert_eq!(key.parse::<FieldPath>().as_ref(), Ok(&v.path));
    }
    assert_eq!(
        tags.get("mixed.customer_misc.col4")
            .and_then(|t| t.as_str()),
        Some("tax_id")
    );
    assert_eq!(
        tags.get("sales.order_docs.payload.$.meta.ref")
            .and_then(|t| t.as_str()),
        Some("national_id")
    );
}

#[test]
fn mixed_case_columns_are_rendered_commented_out() {
    let engine = Discoverer::new(DiscoverConfig::new(2025));
    let values: Vec<Option<&str>> = ["52998224725", "39053344705", "11144477735"]
        .iter()
        .cycle()
        .take(30)
        .map(|s| Some(*s))
        .collect();
    let verdicts =
        engine.discover_column(ColumnPath::new("public", "Clients", "Doc"), "text", values);
    let snippet = render_tags(&verdicts);
    let line = snippet
        .lines()
        .find(|l| l.contains("Clients"))
        .expect("rendered");
    assert!(
        line.starts_with("# \"public.Clients.Doc\" = \"tax_id\""),
        "{line}"
    );
    let doc: toml::Table = toml::from_str(&snippet).expect("still TOML");
    assert!(
        doc["connection"]["data_policy"]["tags"]
            .as_table()
            .is_some_and(|t| t.is_empty())
    );
}

#[test]
fn sql_text_is_deterministic_copy_format() {
    let corpus = Corpus::generate(SEED);
    let mut a = Vec::new();
    corpus.write_sql(3, &mut a).expect("writes to memory");
    let mut b = Vec::new();
    corpus.write_sql(3, &mut b).expect("writes to memory");
    assert_eq!(a, b, "same seed, same text");
    let mut other = Vec::new();
    Corpus::generate(SEED + 1)
        .write_sql(3, &mut other)
        .expect("writes to memory");
    assert_ne!(a, other);

    let text = String::from_utf8(a).expect("UTF-8");
    assert!(text.starts_with("CREATE SCHEMA IF NOT EXISTS "));
    assert!(text.contains(
        "CREATE TABLE mixed.customer_misc (id int8, col1 text, col2 text, col3 text, col4 text, col5 text, col6 text, col7 text, col8 text, col9 text, col10 text);"
    ));
    // Every COPY block has 3 rows with one field per column, then `\.`.
    let mut lines = text.lines();
    let mut blocks = 0;
    while let Some(line) = lines.next() {
        let Some(cols) = line
            .strip_prefix("COPY ")
            .and_then(|l| l.split_once(" ("))
            .map(|(_, c)| c.trim_end_matches(") FROM STDIN;").split(", ").count())
        else {
            continue;
        };
        blocks += 1;
        for _ in 0..3 {
            let row = lines.next().expect("a row");
            assert_eq!(row.split('\t').count(), cols, "{row}");
        }
        assert_eq!(lines.next(), Some("\\."));
    }
    assert_eq!(blocks, corpus.tables.len());
    assert!(text.contains("\\N"), "NULLs are written as \\N");

    // At scale: 100 tables, distinct names, a million rows each by default.
    let big = Corpus::scaled(SEED, 100);
    assert_eq!(big.tables.len(), 100);
    let mut names: Vec<String> = big
        .tables
        .iter()
        .map(|t| format!("{}.{}", t.schema, t.name))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 100);
    assert!(big.tables.iter().filter(|t| t.rows == 1_000_000).count() >= 97);
    let small = big.with_rows(2_000);
    assert!(small.tables.iter().all(|t| t.rows <= 2_000));
}
