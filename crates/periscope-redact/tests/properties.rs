//! Property tests: the validators decide, whatever the formatting and context.

use periscope_redact::{Entity, Masker, ScanConfig, Scanner, validate};
use proptest::prelude::*;

fn entities_found(scanner: &Scanner, text: &str) -> Vec<(Entity, String)> {
    scanner
        .scan(text)
        .into_iter()
        .map(|f| (f.entity, text[f.span].to_string()))
        .collect()
}

/// Completes `body` (all digits but the last) with its Luhn check digit.
fn with_luhn(body: &str, valid: bool) -> String {
    let check = (0..10u8)
        .map(|d| format!("{body}{d}"))
        .find(|s| validate::luhn_valid(s.as_bytes()))
        .expect("one of ten check digits is valid");
    if valid {
        check
    } else {
        let last = check.as_bytes()[check.len() - 1] - b'0';
        format!("{body}{}", (last + 1) % 10)
    }
}

fn group(digits: &str, sizes: &[usize], sep: &str) -> String {
    let mut out = Vec::new();
    let mut at = 0;
    for &n in sizes {
        out.push(&digits[at..at + n]);
        at += n;
    }
    out.join(sep)
}

/// A card body (without check digit) and its usual grouping.
fn card_body() -> impl Strategy<Value = (String, Vec<usize>)> {
    prop_oneof![
        "4[0-9]{14}".prop_map(|b| (b, vec![4, 4, 4, 4])),
        "5[1-5][0-9]{13}".prop_map(|b| (b, vec![4, 4, 4, 4])),
        "2(2[3-9]|[3-6][0-9])[0-9]{12}".prop_map(|b| (b, vec![4, 4, 4, 4])),
        "3[47][0-9]{12}".prop_map(|b| (b, vec![4, 6, 5])),
        "6011[0-9]{11}".prop_map(|b| (b, vec![4, 4, 4, 4])),
        "35[3-8][0-9]{12}".prop_map(|b| (b, vec![4, 4, 4, 4])),
        "4[0-9]{17}".prop_map(|b| (b, vec![4, 4, 4, 4, 3])),
    ]
}

fn context() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just(""),
            Just("card "),
            Just("pan="),
            Just("{\"cc\":\""),
            Just("paid with "),
            Just("x,"),
        ],
        prop_oneof![
            Just(""),
            Just(" ok"),
            Just("\","),
            Just("."),
            Just(";exp=12/29")
        ],
    )
        .prop_map(|(a, b)| (a.to_string(), b.to_string()))
}

fn iban(country: &str, bban: &str, valid: bool) -> String {
    let check = |cd: &str| {
        let compact = format!("{country}{cd}{bban}");
        validate::iban_valid(compact.as_bytes())
    };
    let good = (2..=98u32)
        .map(|n| format!("{n:02}"))
        .find(|cd| check(cd))
        .expect("exactly one pair of check digits is valid");
    let cd = if valid {
        good
    } else {
        let n: u32 = good.parse().expect("two digits");
        format!("{:02}", if n == 98 { 2 } else { n + 1 })
    };
    format!("{country}{cd}{bban}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn luhn_valid_cards_are_caught_in_every_grouping(
        (body, sizes) in card_body(),
        style in 0..3usize,
        (pre, post) in context(),
    ) {
        let number = with_luhn(&body, true);
        let shown = match style {
            0 => number.clone(),
            1 => group(&number, &sizes, " "),
            _ => group(&number, &sizes, "-"),
        };
        let text = format!("{pre}{shown}{post}");
        let found = entities_found(&Scanner::default(), &text);
        prop_assert_eq!(found, vec![(Entity::Card, shown)], "{}", text);
    }

    #[test]
    fn luhn_invalid_cards_are_not(
        (body, sizes) in card_body(),
        style in 0..3usize,
        (pre, post) in context(),
    ) {
        let number = with_luhn(&body, false);
        let shown = match style {
            0 => number.clone(),
            1 => group(&number, &sizes, " "),
            _ => group(&number, &sizes, "-"),
        };
        let text = format!("{pre}{shown}{post}");
        let found = entities_found(&Scanner::default(), &text);
        if sizes.len() == 5 {
            // 19 digits: its first 16 may form a valid card on their own (a card
            // followed by more digits is still caught), but never the whole.
            prop_assert!(found.iter().all(|(e, v)| *e != Entity::Card || *v != shown), "{text}: {found:?}");
        } else {
            prop_assert!(found.iter().all(|(e, _)| *e != Entity::Card), "{text}: {found:?}");
        }
    }

    #[test]
    fn ibans_depend_on_their_check_digits(
        (country, bban) in prop_oneof![
            "[0-9]{18}".prop_map(|b| ("DE", b)),
            "[0-9]{10}[0-9A-Z]{11}[0-9]{2}".prop_map(|b| ("FR", b)),
            "[A-Z]{4}[0-9]{14}".prop_map(|b| ("GB", b)),
            "[A-Z]{4}[0-9]{10}".prop_map(|b| ("NL", b)),
            "[0-9]{20}".prop_map(|b| ("ES", b)),
        ],
        valid in any::<bool>(),
        spaced in any::<bool>(),
    ) {
        let compact = iban(country, &bban, valid);
        let shown = if spaced {
            compact.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
        } else {
            compact.clone()
        };
        let text = format!("pay to {shown} today");
        let found = entities_found(&Scanner::default(), &text);
        let has_iban = found.iter().any(|(e, v)| *e == Entity::Iban && *v == shown);
        prop_assert_eq!(has_iban, valid, "{} {:?}", text, found);
    }

    #[test]
    fn ssn_rules_decide(area in 0..1000u32, grp in 0..100u32, serial in 0..10_000u32, sep in prop_oneof![Just('-'), Just(' ')]) {
        let shown = format!("{area:03}{sep}{grp:02}{sep}{serial:04}");
        let digits = format!("{area:03}{grp:02}{serial:04}");
        let text = format!("ssn {shown}.");
        let found = entities_found(&Scanner::default(), &text);
        let is_ssn = found.iter().any(|(e, _)| *e == Entity::Ssn);
        prop_assert_eq!(is_ssn, validate::ssn_valid(digits.as_bytes()), "{}", text);
    }

    #[test]
    fn github_tokens_with_checksums_are_caught(
        kind in prop_oneof![Just("ghp"), Just("gho"), Just("ghs"), Just("ghu"), Just("ghr")],
        random in "[A-Za-z0-9]{30}",
        (pre, post) in context(),
    ) {
        let sum = validate::github_checksum(random.as_bytes());
        let token = format!("{kind}_{random}{}", String::from_utf8_lossy(&sum));
        prop_assert!(validate::github_token_checksum_valid(token.as_bytes()));
        let text = format!("{pre}{token}{post}");
        let found = entities_found(&Scanner::default(), &text);
        prop_assert_eq!(found, vec![(Entity::GithubToken, token)]);
    }

    #[test]
    fn secret_values_never_survive_in_json_kv_or_urls(
        // Unquoted values end at whitespace, `, ; & |` and closing brackets.
        value in "[A-Za-z0-9!#%^*(_+=/?~-]{6,24}",
        key in prop_oneof![Just("password"), Just("DB_PASSWORD"), Just("api_key"), Just("client-secret"), Just("authToken")],
        shape in 0..5usize,
    ) {
        let text = match shape {
            0 => format!("{{\"{key}\": \"{value}\", \"user\": \"bob\"}}"),
            1 => format!("level=info {key}={value} user=bob"),
            2 => format!("{key}: '{value}'"),
            3 => format!("dsn=postgres://app:{value}@db.internal:5432/shop"),
            _ => format!("GET /cb?{key}={value}&next=1"),
        };
        let masked = Masker::new(ScanConfig::new().build()).mask_str(&text);
        prop_assert!(!masked.text.contains(&value), "{text} -> {}", masked.text);
        prop_assert!(masked.counts.total() >= 1);
    }

    #[test]
    fn masking_never_panics_and_keeps_unfound_text(text in "\\PC{0,200}") {
        let m = Masker::new(ScanConfig::new().build());
        let out = m.mask_str(&text);
        if out.counts.is_empty() {
            prop_assert_eq!(out.text.as_ref(), text.as_str());
        }
    }
}
