//! Scan-and-mask throughput on a mixed 50 MB corpus, single thread, next to a
//! naive baseline measured in the same run:
//!
//! ```sh
//! cargo bench -p periscope-redact
//! ```
//!
//! The corpus is generated in memory from a fixed seed: 70% ordinary log, JSON
//! and CSV lines, 20% lines full of look-alike decoys and 10% lines carrying
//! sensitive values, as in `tests/corpus/`. The baseline
//! is what one would write first: one regex per entity, each run over the whole
//! text with `find_iter`, matches checked with the same validators, overlaps
//! resolved, then the text rebuilt with placeholders. Its regexes use ASCII word
//! boundaries so that the regex engine can use its fast DFA; the comparison is
//! with a reasonable naive design, not a strawman.
//!
//! Environment: `PERISCOPE_BENCH_MB` changes the corpus size (default 50);
//! `PERISCOPE_BENCH_ENGINE_ONLY=1` skips the baseline (for profiling).

#[path = "../tests/support/labelled.rs"]
mod labelled;

use std::hint::black_box;
use std::time::{Duration, Instant};

use periscope_redact::{Entity, Masker, ScanConfig, classify_name, validate};
use regex::Regex;

fn main() {
    let mb: usize = std::env::var("PERISCOPE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let text = labelled::mixed_text(42, mb * 1_000_000);
    let size_mb = text.len() as f64 / 1e6;
    println!(
        "corpus: {size_mb:.1} MB, {} lines (70% ordinary, 20% look-alikes, 10% sensitive)",
        text.lines().count()
    );

    let masker = Masker::new(ScanConfig::new().build());

    // Warm up, and check both produce a comparable amount of masking.
    let engine_found = masker.mask_str(&text).counts.total();
    let baseline = Baseline::new();
    if std::env::var_os("PERISCOPE_BENCH_ENGINE_ONLY").is_none() {
        let (baseline_out, baseline_found) = baseline.mask(&text);
        black_box(baseline_out);
        println!("findings: engine {engine_found}, baseline {baseline_found}");
    }

    let whole = best_of(5, || {
        let out = masker.mask_str(black_box(&text));
        black_box(out.text.len());
    });
    let per_line = best_of(3, || {
        let mut n = 0;
        for line in text.lines() {
            n += masker.mask_str(black_box(line)).text.len();
        }
        black_box(n);
    });
    let contains = best_of(3, || {
        let mut n = 0;
        for line in text.lines() {
            n += usize::from(masker.scanner().contains_any(black_box(line)));
        }
        black_box(n);
    });
    let line = |name: &str, t: Timing| {
        let cpu = t.cpu.map_or("n/a".to_string(), |c| {
            format!("{:.1}", size_mb / c.as_secs_f64())
        });
        println!(
            "{name:<34} {:>8.1} MB/s wall {:>8} MB/s cpu",
            size_mb / t.wall.as_secs_f64(),
            cpu
        );
    };
    line("engine   mask_str, whole text", whole);
    line("engine   mask_str, line by line", per_line);
    line("engine   contains_any, by line", contains);
    if std::env::var_os("PERISCOPE_BENCH_ENGINE_ONLY").is_some() {
        return;
    }
    let naive = best_of(1, || {
        let (out, _) = baseline.mask(black_box(&text));
        black_box(out.len());
    });
    line("baseline regex per entity", naive);
    let secs = |t: Timing| t.cpu.unwrap_or(t.wall).as_secs_f64();
    println!(
        "speedup (whole text / baseline): {:.1}x",
        secs(naive) / secs(whole)
    );
}

/// Time of the best run: wall clock, and CPU time of this thread when the
/// kernel exposes it (`/proc/thread-self/schedstat`). On a shared machine the
/// CPU time is the fair figure: wall time also counts waiting for a core.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Option<Duration>,
}

fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Timing {
    (0..runs)
        .map(|_| {
            let cpu0 = thread_cpu();
            let start = Instant::now();
            f();
            let wall = start.elapsed();
            let cpu = cpu0.and_then(|c0| thread_cpu().map(|c1| c1.saturating_sub(c0)));
            Timing { wall, cpu }
        })
        .min_by_key(|t| t.cpu.unwrap_or(t.wall))
        .expect("at least one run")
}

type Check = fn(&Regex, &str) -> bool;

/// One regex per entity, run in turn; the same validators as the engine.
struct Baseline {
    patterns: Vec<(Entity, Regex, Check)>,
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes().filter(u8::is_ascii_digit).collect()
}

fn yes(_: &Regex, _: &str) -> bool {
    true
}

impl Baseline {
    fn new() -> Baseline {
        use Entity::*;
        let specs: Vec<(Entity, &str, Check)> = vec![
            (
                PrivateKey,
                r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?s:.*?)-----END [A-Z ]*PRIVATE KEY-----",
                yes,
            ),
            (
                AwsAccessKey,
                r"(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?-u:\b)",
                yes,
            ),
            (
                GithubToken,
                r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
                yes,
            ),
            (GitlabToken, r"glpat-[A-Za-z0-9_-]{20,}", yes),
            (SlackToken, r"(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}", yes),
            (
                SlackWebhook,
                r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,}",
                yes,
            ),
            (StripeKey, r"(?-u:\b)[sr]k_live_[A-Za-z0-9]{20,}", yes),
            (GoogleApiKey, r"AIza[A-Za-z0-9_-]{35,}", yes),
            (OpenaiKey, r"(?-u:\b)sk-[A-Za-z0-9_-]{20,}", |_, m| {
                !m.starts_with("sk-ant-")
            }),
            (AnthropicKey, r"(?-u:\b)sk-ant-[A-Za-z0-9_-]{20,}", yes),
            (NpmToken, r"(?-u:\b)npm_[A-Za-z0-9]{36,}", yes),
            (PypiToken, r"pypi-[A-Za-z0-9_-]{50,}", yes),
            (
                SendgridKey,
                r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",
                yes,
            ),
            (VaultToken, r"(?-u:\b)hv[sb]\.[A-Za-z0-9_-]{24,}", yes),
            (
                Jwt,
                r"(?-u:\b)eyJ[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
                yes,
            ),
            (
                AuthHeader,
                r#"(?i-u)authorization["']?\s*[:=]\s*["']?(?:bearer|basic|token)\s+[A-Za-z0-9._~+/=-]+"#,
                yes,
            ),
            (
                UrlCredentials,
                r#"[A-Za-z][A-Za-z0-9+.-]+://[^\s/@:"']+:[^\s@"']+@"#,
                yes,
            ),
            (
                Secret,
                r#"(?i)([A-Za-z0-9_.-]*(?:pass|pwd|secret|token|key|auth|cred|cookie)[A-Za-z0-9_.-]*)["']?\s*[:=]\s*["']?[^\s"',;&]+"#,
                |re, m| {
                    re.captures(m)
                        .is_some_and(|c| classify_name(&c[1]) == Some(Entity::Secret))
                },
            ),
            (Card, r"(?-u:\b)\d(?:[ -]?\d){11,18}(?-u:\b)", |_, m| {
                validate::card_valid(&digits(m))
            }),
            (
                Iban,
                r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?-u:\b)",
                |_, m| {
                    let compact: Vec<u8> = m.bytes().filter(|b| *b != b' ').collect();
                    validate::iban_valid(&compact)
                },
            ),
            (Ssn, r"(?-u:\b)\d{3}[- ]\d{2}[- ]\d{4}(?-u:\b)", |_, m| {
                validate::ssn_valid(&digits(m))
            }),
            (
                Email,
                r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
                |_, m| {
                    m.rsplit('.')
                        .next()
                        .is_some_and(|tld| validate::tld_plausible(tld.as_bytes()))
                },
            ),
            (
                Phone,
                r"\+\d[\d ().-]{7,20}\d|\(\d{3}\) ?\d{3}[-. ]\d{4}|(?-u:\b)\d{3}[-. ]\d{3}[-. ]\d{4}(?-u:\b)|(?-u:\b)0\d{2,4}[ /-]\d{3,8}(?:[ -]\d{3,8})?(?-u:\b)|(?-u:\b)0\d(?:[ .-]\d{2}){4}(?-u:\b)",
                |_, m| (8..=15).contains(&digits(m).len()),
            ),
            (Ip, r"(?-u:\b)\d{1,3}(?:\.\d{1,3}){3}(?-u:\b)", |_, m| {
                m.parse::<std::net::Ipv4Addr>().is_ok()
            }),
            (Ip, r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}", |_, m| {
                m.contains("::") && m.parse::<std::net::Ipv6Addr>().is_ok()
            }),
            (
                CryptoWallet,
                r"(?-u:\b)(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|bc1[02-9ac-hj-np-z]{11,71})(?-u:\b)",
                |_, m| {
                    validate::base58check_wallet_valid(m.as_bytes())
                        || validate::bech32_wallet_valid(m.as_bytes())
                },
            ),
            (
                AbaRouting,
                r"(?i)(?:routing|aba|rtn)\D{0,20}(\d{9})(?-u:\b)",
                |re, m| {
                    re.captures(m).is_some_and(|c| {
                        validate::aba_valid(c[1].as_bytes())
                            && !m.ends_with(|ch: char| !ch.is_ascii_digit())
                    })
                },
            ),
        ];
        let patterns = specs
            .into_iter()
            .map(|(e, p, check)| (e, Regex::new(p).expect("baseline regex compiles"), check))
            .collect();
        Baseline { patterns }
    }

    fn mask(&self, text: &str) -> (String, u64) {
        let mut found: Vec<(usize, usize, Entity)> = Vec::new();
        for (entity, re, check) in &self.patterns {
            for m in re.find_iter(text) {
                if check(re, m.as_str()) {
                    found.push((m.start(), m.end(), *entity));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut count = 0;
        for (start, end, entity) in found {
            if start < last {
                continue;
            }
            out.push_str(&text[last..start]);
            out.push('[');
            out.push_str(entity.name());
            out.push(']');
            last = end;
            count += 1;
        }
        out.push_str(&text[last..]);
        (out, count)
    }
}
