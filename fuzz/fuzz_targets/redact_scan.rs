//! Fuzz target: the scanner and every masking path on arbitrary bytes.
//!
//! It must never panic, and its findings must be sorted, disjoint, on `char`
//! boundaries and agree with `contains_any`.
//!
//! ```sh
//! RUSTC_BOOTSTRAP=1 cargo fuzz run redact_scan fuzz/seeds/redact_scan -- -max_total_time=60
//! ```

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use periscope_redact::{Entity, LineFormat, LineRedactor, Masker, Operator, ScanConfig, TokenKey};

struct Maskers {
    redact: Masker,
    mixed: Masker,
}

fn maskers() -> &'static Maskers {
    static MASKERS: OnceLock<Maskers> = OnceLock::new();
    MASKERS.get_or_init(|| {
        let mut all = ScanConfig::new();
        for &e in Entity::ALL {
            all = all.enable(e);
        }
        let scanner = all.build();
        let mut mixed = Masker::new(scanner.clone()).with_token_key(&TokenKey::from_bytes([42; 32]));
        let ops = [Operator::Partial, Operator::Token, Operator::Drop, Operator::Redact];
        for (i, &e) in Entity::ALL.iter().enumerate() {
            mixed = mixed.with_operator(e, ops[i % ops.len()]);
        }
        Maskers {
            redact: Masker::new(scanner),
            mixed,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let m = maskers();
    let text = String::from_utf8_lossy(data);
    let scanner = m.redact.scanner();

    let findings = scanner.scan(&text);
    let mut last_end = 0;
    for f in &findings {
        assert!(f.span.start < f.span.end, "empty span {f:?}");
        assert!(f.span.start >= last_end, "overlap or disorder at {f:?}");
        assert!(f.span.end <= text.len());
        assert!(text.is_char_boundary(f.span.start) && text.is_char_boundary(f.span.end));
        last_end = f.span.end;
    }
    assert_eq!(scanner.contains_any(&text), !findings.is_empty());

    let masked = m.redact.mask_str(&text);
    assert_eq!(masked.counts.total(), findings.len() as u64);
    let _ = m.mixed.mask_str(&text);
    for f in findings.iter().take(8) {
        let _ = m.mixed.mask_value_as(f.entity, &text[f.span.clone()]);
    }

    if let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = m.mixed.mask_json(&mut doc);
    }

    for format in [LineFormat::Text, LineFormat::Json] {
        let mut out = Vec::new();
        let mut lines = LineRedactor::new(&m.mixed, format);
        lines.process(data, &mut out).expect("writing to a Vec cannot fail");
        let newlines_in = data.iter().filter(|&&b| b == b'\n').count();
        let newlines_out = out.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(newlines_in, newlines_out, "one output line per input line");
    }
});
