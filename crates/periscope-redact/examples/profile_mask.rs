//! A fixed amount of work for instruction-count profiling: generates the bench
//! corpus (`PERISCOPE_BENCH_MB`, default 2) and masks it once, whole text, then
//! line by line.
//!
//! ```sh
//! cargo build --profile bench -p periscope-redact --example profile_mask
//! valgrind --tool=callgrind --toggle-collect='periscope_redact::mask::Masker::mask_str' \
//!     target/release/examples/profile_mask
//! ```

#[path = "../tests/support/labelled.rs"]
mod labelled;

use std::hint::black_box;

use periscope_redact::{Masker, ScanConfig};

fn main() {
    let mb: usize = std::env::var("PERISCOPE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let text = match std::env::var_os("PROFILE_FILE") {
        Some(path) => std::fs::read_to_string(path).expect("read PROFILE_FILE"),
        None => labelled::mixed_text(42, mb * 1_000_000),
    };
    if let Some(path) = std::env::var_os("PROFILE_DUMP") {
        std::fs::write(path, &text).expect("dump corpus");
        return;
    }
    let masker = Masker::new(ScanConfig::new().build());
    if let Some(reps) = std::env::var("PROFILE_TIME")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // Best thread CPU time of `reps` passes (for quick A/B comparisons).
        let cpu = || -> f64 {
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |ns| ns / 1e9)
        };
        let best = (0..reps)
            .map(|_| {
                let t0 = cpu();
                black_box(masker.mask_str(black_box(&text)).text.len());
                cpu() - t0
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "{:.1} MB/s (best of {reps}, CPU time)",
            text.len() as f64 / 1e6 / best
        );
        return;
    }
    let whole = masker.mask_str(black_box(&text));
    let mut lines = 0u64;
    if std::env::var_os("PROFILE_LINES").is_some() {
        for line in text.lines() {
            lines += masker.mask_str(black_box(line)).counts.total();
        }
    }
    println!(
        "{} bytes, {} findings (whole), {} (by line)",
        text.len(),
        whole.counts.total(),
        lines
    );
}
