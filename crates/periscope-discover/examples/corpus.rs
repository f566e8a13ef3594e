//! The labelled corpus from the command line.
//!
//! ```sh
//! # accuracy of discovery on the corpus (confusion table, disagreements)
//! cargo run -p periscope-discover --example corpus -- report [--seed N] [--sample N]
//! # the corpus as SQL for a real PostgreSQL
//! cargo run --release -p periscope-discover --example corpus -- sql [--rows N] [--tables N] | psql ...
//! ```

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use periscope_discover::corpus::{Corpus, SEED, measure};
use periscope_discover::{Basis, DEFAULT_SAMPLE_SIZE, DiscoverConfig, Discoverer};

fn flag(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let seed = flag(args, "--seed", SEED)?;
    match args.first().map(String::as_str) {
        Some("report") => {
            let sample = flag(args, "--sample", DEFAULT_SAMPLE_SIZE as u64)? as usize;
            let corpus = Corpus::generate(seed);
            let engine = Discoverer::new(DiscoverConfig::new(2025));
            let (verdicts, score) = measure(&engine, &corpus, sample);
            println!(
                "seed {seed:#x}, {} tables, {} columns, {} fields, sample {sample}",
                corpus.tables.len(),
                corpus.column_count(),
                verdicts.len()
            );
            println!("{score}");
            let basis = |b| verdicts.iter().filter(|v| v.basis == Some(b)).count();
            println!(
                "proposals by basis: content {}, name and content {}, name {}",
                basis(Basis::Content),
                basis(Basis::NameAndContent),
                basis(Basis::Name)
            );
            for m in &score.misses {
                println!(
                    "  {}: label {}, proposed {}: {}",
                    m.path,
                    m.truth.map_or("-", |e| e.name()),
                    m.proposed.map_or("-", |e| e.name()),
                    m.reason
                        .as_ref()
                        .map_or("no verdict".to_string(), ToString::to_string)
                );
            }
            Ok(())
        }
        Some("sql") => {
            let rows = flag(args, "--rows", 1_000_000)?;
            let tables = flag(args, "--tables", 0)? as usize;
            let corpus = if tables == 0 {
                Corpus::generate(seed)
            } else {
                Corpus::scaled(seed, tables)
            };
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            corpus
                .write_sql(rows, &mut out)
                .and_then(|()| out.flush())
                .map_err(|e| format!("writing SQL: {e}"))
        }
        _ => Err(
            "usage: corpus report [--seed N] [--sample N] | sql [--rows N] [--tables N] [--seed N]"
                .into(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corpus: {e}");
            ExitCode::from(2)
        }
    }
}
