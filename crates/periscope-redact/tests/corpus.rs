//! Recall and decoy survival on the labelled corpus in `tests/corpus/`.
//!
//! Every line carries inline labels (see `tests/support/labelled.rs`): sensitive
//! values the default scanner must find, and look-alikes it must leave alone.
//! The test prints a per-entity and per-decoy table and fails below 0.99.

use crate::support::labelled;

use std::collections::BTreeMap;

use periscope_redact::{Entity, Masker, ScanConfig};

const MIN_RATE: f64 = 0.99;

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[test]
fn checked_in_corpus_matches_its_generator() {
    for (name, want) in labelled::corpus() {
        let have = std::fs::read_to_string(corpus_dir().join(name)).expect("corpus file exists");
        assert!(
            have == want,
            "tests/corpus/{name} is stale: run `cargo run -p periscope-redact --example gen_corpus`"
        );
    }
}

#[derive(Default)]
struct Tally {
    total: u64,
    ok: u64,
}

impl Tally {
    fn rate(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.ok as f64 / self.total as f64
        }
    }
}

#[test]
fn recall_and_decoy_survival_per_entity() {
    let scanner = ScanConfig::new().build();
    let mut recall: BTreeMap<String, Tally> = BTreeMap::new();
    let mut survival: BTreeMap<String, Tally> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut findings = 0u64;
    let mut lines = 0u64;
    for (name, _) in labelled::corpus() {
        let content = std::fs::read_to_string(corpus_dir().join(name)).expect("corpus file exists");
        for (n, marked) in content.lines().enumerate() {
            lines += 1;
            let (clean, labels) = labelled::strip(marked);
            let found = scanner.scan(&clean);
            findings += found.len() as u64;
            for label in &labels {
                let covers = |f: &periscope_redact::Finding| {
                    f.span.start <= label.span.start && label.span.end <= f.span.end
                };
                let overlaps = |f: &periscope_redact::Finding| {
                    f.span.start < label.span.end && label.span.start < f.span.end
                };
                if label.decoy {
                    let t = survival.entry(label.name.clone()).or_default();
                    t.total += 1;
                    if !found.iter().any(overlaps) {
                        t.ok += 1;
                    } else {
                        eprintln!(
                            "decoy hit {name}:{}: {:?} in {clean}",
                            n + 1,
                            &clean[label.span.clone()]
                        );
                    }
                } else {
                    let t = recall.entry(label.name.clone()).or_default();
                    t.total += 1;
                    if found
                        .iter()
                        .any(|f| f.entity.name() == label.name && covers(f))
                    {
                        t.ok += 1;
                    } else {
                        eprintln!(
                            "missed {name}:{}: {} {:?} got {found:?}",
                            n + 1,
                            label.name,
                            &clean[label.span.clone()]
                        );
                    }
                }
            }
            for f in &found {
                let labelled = labels
                    .iter()
                    .any(|l| !l.decoy && f.span.start <= l.span.start && l.span.end <= f.span.end);
                if !labelled {
                    unexpected.push(format!(
                        "{name}:{}: {} {:?}",
                        n + 1,
                        f.entity,
                        &clean[f.span.clone()]
                    ));
                }
            }
        }
    }

    println!("corpus: {lines} lines, {findings} findings");
    println!(
        "{:<16} {:>8} {:>8} {:>8}",
        "entity", "labels", "found", "recall"
    );
    for (entity, t) in &recall {
        println!("{entity:<16} {:>8} {:>8} {:>8.4}", t.total, t.ok, t.rate());
    }
    println!(
        "{:<16} {:>8} {:>8} {:>8}",
        "decoy", "labels", "intact", "survival"
    );
    for (kind, t) in &survival {
        println!("{kind:<16} {:>8} {:>8} {:>8.4}", t.total, t.ok, t.rate());
    }
    println!("unlabelled findings: {}", unexpected.len());
    for u in unexpected.iter().take(20) {
        println!("  {u}");
    }

    // Every entity of the default set is represented, except those that only
    // column names and column-level discovery find (no text detector).
    let name_only = [
        Entity::NationalId,
        Entity::TaxId,
        Entity::Passport,
        Entity::DriverLicense,
    ];
    for &e in Entity::ALL
        .iter()
        .filter(|e| e.tier() != periscope_redact::Tier::Optional && !name_only.contains(e))
    {
        if e == Entity::Secret
            || e == Entity::AuthHeader
            || e == Entity::UrlCredentials
            || e.tier() == periscope_redact::Tier::Pii
            || e.is_secret()
        {
            assert!(
                recall.contains_key(e.name()),
                "no label for {e} in the corpus"
            );
        }
    }
    for (entity, t) in &recall {
        assert!(
            t.rate() >= MIN_RATE,
            "recall of {entity} is {:.4} < {MIN_RATE}",
            t.rate()
        );
    }
    for (kind, t) in &survival {
        assert!(
            t.rate() >= MIN_RATE,
            "survival of {kind} decoys is {:.4} < {MIN_RATE}",
            t.rate()
        );
    }
    assert!(
        (unexpected.len() as f64) <= findings as f64 * (1.0 - MIN_RATE),
        "{} findings outside any label",
        unexpected.len()
    );
}

#[test]
fn json_mode_masks_every_labelled_value() {
    let masker = Masker::new(ScanConfig::new().build());
    let content =
        std::fs::read_to_string(corpus_dir().join("events.jsonl")).expect("corpus file exists");
    for marked in content.lines() {
        let (clean, labels) = labelled::strip(marked);
        let mut doc: serde_json::Value = serde_json::from_str(&clean).expect("corpus JSON parses");
        masker.mask_json(&mut doc);
        let out = doc.to_string();
        for label in labels.iter().filter(|l| !l.decoy) {
            let value = &clean[label.span.clone()];
            assert!(!out.contains(value), "{value} survived in {out}");
        }
    }
}
