//! Verdicts for 300 columns of 1,000 sampled values each: the engine's share
//! of a discovery run (sampling from PostgreSQL is measured elsewhere).
//!
//! ```sh
//! cargo bench -p periscope-discover
//! ```
//!
//! The columns are the labelled corpus's first 300 (all kinds: identifiers,
//! look-alikes, JSON documents, arrays), with their values generated before
//! the measurement so only discovery is timed.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use periscope_discover::corpus::{Corpus, SEED};
use periscope_discover::{ColumnPath, DEFAULT_SAMPLE_SIZE, DiscoverConfig, Discoverer};

const COLUMNS: usize = 300;

struct Sampled {
    path: ColumnPath,
    sql_type: String,
    values: Vec<Option<String>>,
}

fn sample() -> Vec<Sampled> {
    let corpus = Corpus::generate(SEED);
    let mut out = Vec::new();
    for t in &corpus.tables {
        let rows = corpus.sample_rows(t, DEFAULT_SAMPLE_SIZE);
        for (i, c) in t.columns.iter().enumerate() {
            let mut values: Vec<Option<String>> =
                rows.iter().map(|&r| corpus.value(t, i, r)).collect();
            // Small tables: repeat their rows so every column has 1,000 values.
            let have = values.len();
            for k in have..DEFAULT_SAMPLE_SIZE {
                values.push(values[k % have].clone());
            }
            out.push(Sampled {
                path: t.path(c),
                sql_type: c.sql_type.clone(),
                values,
            });
        }
    }
    out.truncate(COLUMNS);
    assert_eq!(
        out.len(),
        COLUMNS,
        "the corpus has at least {COLUMNS} columns"
    );
    out
}

fn bench(c: &mut Criterion) {
    let columns = sample();
    let engine = Discoverer::new(DiscoverConfig::new(2025));
    let values: u64 = columns.iter().map(|s| s.values.len() as u64).sum();
    let mut group = c.benchmark_group("discover");
    group.throughput(Throughput::Elements(values));
    group.sample_size(20);
    group.bench_function("300 columns x 1000 values", |b| {
        b.iter(|| {
            let mut proposed = 0usize;
            for s in &columns {
                let verdicts = engine.discover_column(
                    s.path.clone(),
                    &s.sql_type,
                    s.values.iter().map(|v| v.as_deref()),
                );
                proposed += verdicts.iter().filter(|v| v.proposed.is_some()).count();
            }
            black_box(proposed)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
