//! Verifies a JSONL export offline with only the public key: what the planned
//! `periscope audit verify --file` will do, usable by auditors today.
//!
//! `cargo run --release -p periscope-audit --example verify_export -- EXPORT.jsonl KEY.pem [KEY2.pem ...]`
//! (`-` reads the export from standard input). Exits 1 and prints the first broken
//! link when verification fails.

use std::io::BufReader;

use periscope_audit::{AuditVerifierKey, Start, verify_jsonl};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((file, key_files)) = args.split_first().filter(|(_, keys)| !keys.is_empty()) else {
        return Err("usage: verify_export EXPORT.jsonl KEY.pem [KEY2.pem ...]".into());
    };
    let keys = key_files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)?;
            AuditVerifierKey::parse(&text).map_err(|e| format!("{path}: {e}").into())
        })
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    let result = if file == "-" {
        verify_jsonl(std::io::stdin().lock(), &keys, Start::Genesis)
    } else {
        verify_jsonl(
            BufReader::new(std::fs::File::open(file)?),
            &keys,
            Start::Genesis,
        )
    };
    match result {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(err) => {
            eprintln!("verification FAILED: {err}");
            std::process::exit(1);
        }
    }
}
