//! What each detector catches, and the look-alikes it must leave alone.

use periscope_redact::{Entity, Masker, ScanConfig, Scanner};

fn all_entities() -> Scanner {
    let mut config = ScanConfig::new();
    for &e in Entity::ALL {
        config = config.enable(e);
    }
    config.build()
}

/// Asserts that `text` yields exactly one finding, of `entity`, covering `value`.
#[track_caller]
fn finds(scanner: &Scanner, text: &str, entity: Entity, value: &str) {
    let found = scanner.scan(text);
    let got: Vec<(Entity, &str)> = found
        .iter()
        .map(|f| (f.entity, &text[f.span.clone()]))
        .collect();
    assert_eq!(got, vec![(entity, value)], "in {text:?}");
}

#[test]
fn secrets_are_found_with_their_exact_span() {
    let s = Scanner::default();
    let cases: &[(&str, Entity, &str)] = &[
        (
            "aws key AKIAIOSFODNN7EXAMPLE here",
            Entity::AwsAccessKey,
            "AKIAIOSFODNN7EXAMPLE",
        ),
        (
            "sts ASIAY34FZKBOKMUTVV7A,",
            Entity::AwsAccessKey,
            "ASIAY34FZKBOKMUTVV7A",
        ),
        (
            "t=ghp_1234567890abcdefghijABCDEFGHIJ123456",
            Entity::GithubToken,
            "ghp_1234567890abcdefghijABCDEFGHIJ123456",
        ),
        (
            "gho_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789.",
            Entity::GithubToken,
            "gho_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        ),
        (
            "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
            Entity::GithubToken,
            "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
        ),
        (
            "glpat-xYz12AbC34dEf56GhI78jK",
            Entity::GitlabToken,
            "glpat-xYz12AbC34dEf56GhI78jK",
        ),
        (
            "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            Entity::SlackToken,
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        (
            "post https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX ok",
            Entity::SlackWebhook,
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        ),
        (
            "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            Entity::StripeKey,
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        ),
        (
            "rk_live_51H8abcdefghijklmnopqrstuv",
            Entity::StripeKey,
            "rk_live_51H8abcdefghijklmnopqrstuv",
        ),
        (
            "key=AIzaSyD-1234567890abcdefghijklmnopqrstu",
            Entity::GoogleApiKey,
            "AIzaSyD-1234567890abcdefghijklmnopqrstu",
        ),
        (
            "OPENAI sk-proj-AbCdEf1234567890GhIjKl1234567890",
            Entity::OpenaiKey,
            "sk-proj-AbCdEf1234567890GhIjKl1234567890",
        ),
        (
            "sk-ant-api03-AbCdEf1234567890GhIjKl-1234567890xyz",
            Entity::AnthropicKey,
            "sk-ant-api03-AbCdEf1234567890GhIjKl-1234567890xyz",
        ),
        (
            "npm_abcdefghijklmnopqrstuvwxyz0123456789",
            Entity::NpmToken,
            "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        (
            "pypi-AgEIcHlwaS5vcmcCJGE0ZTk1ZDMxLWE5ZjAtNGQ0Ni1hYjQ1LWFiY2RlZjAxMjM0NQ",
            Entity::PypiToken,
            "pypi-AgEIcHlwaS5vcmcCJGE0ZTk1ZDMxLWE5ZjAtNGQ0Ni1hYjQ1LWFiY2RlZjAxMjM0NQ",
        ),
        (
            "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",
            Entity::SendgridKey,
            "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",
        ),
        (
            "VAULT_TOKEN hvs.CAESIJ1234567890abcdefghijklmnop",
            Entity::VaultToken,
            "hvs.CAESIJ1234567890abcdefghijklmnop",
        ),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk end",
            Entity::Jwt,
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ),
        (
            "Authorization: Bearer abc123DEF456ghi789",
            Entity::AuthHeader,
            "abc123DEF456ghi789",
        ),
        (
            "\"authorization\":\"Basic dXNlcjpwYXNzd29yZA==\"",
            Entity::AuthHeader,
            "dXNlcjpwYXNzd29yZA==",
        ),
        (
            "curl -H 'X: Bearer 0123456789abcdefXYZ'",
            Entity::AuthHeader,
            "0123456789abcdefXYZ",
        ),
        (
            "dsn=postgres://app:s3cr3t@db.internal:5432/shop",
            Entity::UrlCredentials,
            "app:s3cr3t",
        ),
        ("password=hunter2 user=bob", Entity::Secret, "hunter2"),
        (
            "DB_PASSWORD: 'correct horse'",
            Entity::Secret,
            "correct horse",
        ),
        ("{\"api_key\": \"k-123-abc\"}", Entity::Secret, "k-123-abc"),
        ("client_secret=Zx9&next=1", Entity::Secret, "Zx9"),
        ("x-api-key: 5f2b9c", Entity::Secret, "5f2b9c"),
        ("{\\\"password\\\":\\\"pa55\\\"}", Entity::Secret, "pa55"),
    ];
    for &(text, entity, value) in cases {
        finds(&s, text, entity, value);
    }
}

#[test]
fn pem_private_keys_are_masked_whole() {
    let s = Scanner::default();
    let text = "k=-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\nnext";
    let found = s.scan(text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entity, Entity::PrivateKey);
    assert_eq!(&text[found[0].span.clone()], &text[2..text.len() - 5]);
    // Unterminated: masked to the end.
    let text = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
    assert_eq!(s.scan(text)[0].span, 0..text.len());
    // Public keys and certificates are not secrets.
    assert!(
        s.scan("-----BEGIN PUBLIC KEY-----\nMFkwEwYH\n-----END PUBLIC KEY-----")
            .is_empty()
    );
}

#[test]
fn pii_is_found_with_its_exact_span() {
    let s = Scanner::default();
    let cases: &[(&str, Entity, &str)] = &[
        (
            "card 4111 1111 1111 1111 exp 12/29",
            Entity::Card,
            "4111 1111 1111 1111",
        ),
        (
            "card=4111-1111-1111-1111",
            Entity::Card,
            "4111-1111-1111-1111",
        ),
        ("pan:5555555555554444;", Entity::Card, "5555555555554444"),
        ("amex 3782 822463 10005.", Entity::Card, "3782 822463 10005"),
        (
            "/orders/6011111111111117/refund",
            Entity::Card,
            "6011111111111117",
        ),
        (
            "qty 2 4111 1111 1111 1111",
            Entity::Card,
            "4111 1111 1111 1111",
        ),
        (
            "iban DE89 3704 0044 0532 0130 00 ok",
            Entity::Iban,
            "DE89 3704 0044 0532 0130 00",
        ),
        (
            "GB82WEST12345698765432",
            Entity::Iban,
            "GB82WEST12345698765432",
        ),
        ("ssn 536-22-1234", Entity::Ssn, "536-22-1234"),
        ("ssn 536 22 1234.", Entity::Ssn, "536 22 1234"),
        (
            "mail Alice.Smith+tag@mail.example.co.uk.",
            Entity::Email,
            "Alice.Smith+tag@mail.example.co.uk",
        ),
        ("<bob@example.io>", Entity::Email, "bob@example.io"),
        ("call +1 415 555 2671", Entity::Phone, "+1 415 555 2671"),
        ("call +14155552671", Entity::Phone, "+14155552671"),
        ("tel (415) 555-2671", Entity::Phone, "(415) 555-2671"),
        ("tel 415-555-2671", Entity::Phone, "415-555-2671"),
        ("tel 1-800-555-0199", Entity::Phone, "1-800-555-0199"),
        ("uk +44 20 7946 0958", Entity::Phone, "+44 20 7946 0958"),
        (
            "uk +44 (0)20 7946 0958",
            Entity::Phone,
            "+44 (0)20 7946 0958",
        ),
        ("uk 020 7946 0958", Entity::Phone, "020 7946 0958"),
        ("uk 07700 900123", Entity::Phone, "07700 900123"),
        ("de +49 30 12345678", Entity::Phone, "+49 30 12345678"),
        ("de 030 12345678", Entity::Phone, "030 12345678"),
        ("de 089/1234567", Entity::Phone, "089/1234567"),
        ("fr +33 1 23 45 67 89", Entity::Phone, "+33 1 23 45 67 89"),
        ("fr 01 23 45 67 89", Entity::Phone, "01 23 45 67 89"),
        ("fr 06.12.34.56.78", Entity::Phone, "06.12.34.56.78"),
        ("from 203.0.113.7:443", Entity::Ip, "203.0.113.7"),
        ("ip=10.0.0.1.", Entity::Ip, "10.0.0.1"),
        (
            "v6 2001:db8::8a2e:370:7334 ok",
            Entity::Ip,
            "2001:db8::8a2e:370:7334",
        ),
        ("[fe80::1]:8080", Entity::Ip, "fe80::1"),
        ("::ffff:192.0.2.1", Entity::Ip, "::ffff:192.0.2.1"),
        (
            "btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
            Entity::CryptoWallet,
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        ),
        (
            "btc 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
            Entity::CryptoWallet,
            "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        ),
        (
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            Entity::CryptoWallet,
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        ),
        ("routing number 021000021", Entity::AbaRouting, "021000021"),
        ("aba=011401533", Entity::AbaRouting, "011401533"),
    ];
    for &(text, entity, value) in cases {
        finds(&s, text, entity, value);
    }
}

#[test]
fn optional_entities_only_when_enabled() {
    let off = Scanner::default();
    let on = all_entities();
    let cases: &[(&str, Entity, &str)] = &[
        (
            "id 550e8400-e29b-41d4-a716-446655440000",
            Entity::Uuid,
            "550e8400-e29b-41d4-a716-446655440000",
        ),
        (
            "mac 00:1a:2b:3c:4d:5e",
            Entity::MacAddress,
            "00:1a:2b:3c:4d:5e",
        ),
        (
            "mac 00-1A-2B-3C-4D-5E",
            Entity::MacAddress,
            "00-1A-2B-3C-4D-5E",
        ),
        ("mac 001a.2b3c.4d5e", Entity::MacAddress, "001a.2b3c.4d5e"),
        ("dob: 1984-03-07", Entity::DateOfBirth, "1984-03-07"),
        ("born 07/03/1984", Entity::DateOfBirth, "07/03/1984"),
        (
            "customer Maria Schmidt called",
            Entity::PersonName,
            "Maria Schmidt",
        ),
    ];
    for &(text, entity, value) in cases {
        assert!(off.scan(text).is_empty(), "off by default: {text}");
        finds(&on, text, entity, value);
    }
    // Dates that are not birth dates: no keyword, or a timestamp.
    assert!(on.scan("created 1984-03-07").is_empty());
    assert!(on.scan("dob 2024-05-01T10:00:00Z").is_empty());
    // Names need a dictionary first name and a capitalised surname.
    assert!(on.scan("Will Retry later, May Fail").is_empty());
    let custom = ScanConfig::new()
        .enable(Entity::PersonName)
        .with_person_names(["Zebulon"])
        .build();
    finds(&custom, "Zebulon Pike", Entity::PersonName, "Zebulon Pike");
}

#[test]
fn look_alikes_survive() {
    let s = all_entities();
    let decoys = [
        "card 4111 1111 1111 1112",                     // Luhn-invalid
        "id 4111111111111112",                          // Luhn-invalid run
        "ts=1714567890123 epoch ms",                    // 13-digit timestamp
        "order 918273645 shipped",                      // 9 digits, no routing context
        "order_id=100000000000000001",                  // long id
        "sha 3f9a1c2b7d4e5f60718293a4b5c6d7e8f9012345", // git SHA
        "version 1.13.2 and v2.4.0.1",                  // versions
        "latency=12.503ms p99=1234.5",                  // latencies
        "amount 1,234.56 EUR total 99.99",              // amounts
        "iban DE88 3704 0044 0532 0130 00",             // wrong check digits
        "ssn 000-12-3456 666-12-3456 912-34-5678 536-00-1234 536-22-0000", // invalid SSNs
        "sample 078-05-1120",                           // the Woolworth sample SSN
        "time 12:34:56.789 date 2024-05-01",            // timestamps
        "release 2024.05.01 build 20240501",            // dotted dates
        "icon@2x.png user@localhost pkg@1.2.3",         // not emails
        "::1 std::io::Error a::b",                      // not (public) IPv6
        "999.1.1.1 1.2.3 10.0.0",                       // not IPv4
        "+1.5% +20 points",                             // not phones
        "555-123-4567",                                 // exchange starting with 1
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",           // wallet with a bad checksum
        "routing 021000022",                            // ABA checksum fails
        "ghp_tooShort sk-short sk_test_4eC39HqLyjWDarjtT1zdp7dc", // not secrets
        "password_changed_at=2024-05-01 token_type=bearer max_tokens=512",
        "password= user=bob password=null secret=[secret]",
        "Bearer token expired",
        "https://github.com/org/repo ssh://git@github.com/org/repo",
        "http://user@example.com/path", // userinfo without password
        "550e8400e29b41d4a716446655440000", // UUID without dashes is a hex id
        "-----BEGIN CERTIFICATE-----",
    ];
    for text in decoys {
        let found = s.scan(text);
        let got: Vec<(Entity, &str)> = found
            .iter()
            .map(|f| (f.entity, &text[f.span.clone()]))
            .collect();
        assert!(got.is_empty(), "{text:?} gave {got:?}");
    }
}

#[test]
fn overlaps_keep_the_most_specific() {
    let s = Scanner::default();
    // A token under a secret-named key is reported as the token.
    finds(
        &s,
        "token=ghp_1234567890abcdefghijABCDEFGHIJ123456",
        Entity::GithubToken,
        "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    );
    // A JWT in an Authorization header is reported as a JWT.
    finds(
        &s,
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature",
        Entity::Jwt,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature",
    );
    // A quoted password containing an email stays one secret.
    finds(
        &s,
        "password=\"alice@example.com 2024\"",
        Entity::Secret,
        "alice@example.com 2024",
    );
    // URL credentials win over the email-looking `pass@host`.
    let found = s.scan("redis://u:pa55@cache.example.com:6379");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entity, Entity::UrlCredentials);
}

#[test]
fn scan_results_are_sorted_and_disjoint_and_contains_any_agrees() {
    let s = Scanner::default();
    let text = "a@b.io 10.0.0.1 4111111111111111 password=x ghp_1234567890abcdefghijABCDEFGHIJ123456 +44 20 7946 0958";
    let found = s.scan(text);
    assert_eq!(found.len(), 6, "{found:?}");
    for w in found.windows(2) {
        assert!(w[0].span.end <= w[1].span.start);
    }
    assert!(s.contains_any(text));
    assert!(!s.contains_any("GET /healthz 200 0.3ms"));
}

#[test]
fn disabled_entities_are_not_found() {
    let s = ScanConfig::new().disable(Entity::Ip).build();
    assert!(s.scan("from 10.0.0.1").is_empty());
    let masker = Masker::new(s);
    assert_eq!(
        masker.mask_str("from 10.0.0.1 a@b.io").text,
        "from 10.0.0.1 [email]"
    );
}

#[test]
fn non_ascii_text_is_handled_on_char_boundaries() {
    let m = Masker::new(all_entities());
    let text = "Grüße an José: josé@example.com ✓ 4111 1111 1111 1111 — 日本 password=秘密の鍵 ok";
    let out = m.mask_str(text);
    assert!(out.text.contains("[card]"), "{}", out.text);
    assert!(out.text.contains("password=[secret] ok"), "{}", out.text);
    assert!(!out.text.contains("秘密"));
}

#[test]
fn a_number_run_stops_before_a_token_glued_to_letters() {
    // With `ip` off, `10.0.0.1` is a plain number run; it must not swallow the
    // digits that start the UUID after it.
    let s = ScanConfig::new()
        .enable(Entity::Uuid)
        .disable(Entity::Ip)
        .build();
    finds(
        &s,
        "10.0.0.1 550e8400-e29b-41d4-a716-446655440000",
        Entity::Uuid,
        "550e8400-e29b-41d4-a716-446655440000",
    );
}
