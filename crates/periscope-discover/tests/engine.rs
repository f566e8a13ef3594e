//! The decision rule on hand-built columns: what is found, what is left
//! alone, and the reason given.

use periscope_discover::corpus::values::{self, Rng};
use periscope_discover::{
    Basis, Check, ColumnPath, ColumnVerdict, DiscoverConfig, Discoverer, JsonStep, Reason,
    Shortfall,
};
use periscope_redact::Entity;

fn engine() -> Discoverer {
    Discoverer::new(DiscoverConfig::new(2025))
}

fn col(name: &str) -> ColumnPath {
    ColumnPath::new("public", "t", name)
}

/// `n` values from a generator, as text.
fn draw(n: usize, mut f: impl FnMut(&mut Rng) -> String) -> Vec<Option<String>> {
    let mut r = Rng::new(42);
    (0..n).map(|_| Some(f(&mut r))).collect()
}

fn discover(name: &str, ty: &str, values: &[Option<String>]) -> Vec<ColumnVerdict> {
    engine().discover_column(col(name), ty, values.iter().map(|v| v.as_deref()))
}

fn one(name: &str, ty: &str, values: &[Option<String>]) -> ColumnVerdict {
    let mut v = discover(name, ty, values);
    assert_eq!(v.len(), 1, "{v:#?}");
    v.remove(0)
}

fn shortfall(v: &ColumnVerdict) -> Option<(Check, Shortfall)> {
    match v.reason {
        Reason::Shortfall {
            check, shortfall, ..
        } => Some((check, shortfall)),
        _ => None,
    }
}

#[test]
fn neutral_names_with_separator_free_identifiers_are_found() {
    let cases: Vec<(&str, Vec<Option<String>>, Entity, Check)> = vec![
        (
            "ref",
            draw(1000, values::sin),
            Entity::NationalId,
            Check::Sin,
        ),
        (
            "code",
            draw(1000, |r| values::nino(r, true)),
            Entity::NationalId,
            Check::Nino,
        ),
        (
            "val",
            draw(1000, values::aadhaar),
            Entity::NationalId,
            Check::Aadhaar,
        ),
        (
            "external_id",
            draw(1000, |r| values::tfn(r, false)),
            Entity::TaxId,
            Check::Tfn,
        ),
        ("col7", draw(1000, values::cpf), Entity::TaxId, Check::Cpf),
        ("x", draw(1000, values::ssn), Entity::Ssn, Check::Ssn),
        ("y", draw(1000, values::card), Entity::Card, Check::Card),
        ("z", draw(1000, values::aba), Entity::AbaRouting, Check::Aba),
        ("w", draw(1000, values::iban), Entity::Iban, Check::Format),
    ];
    for (name, vals, entity, check) in cases {
        let v = one(name, "text", &vals);
        assert_eq!(v.proposed, Some(entity), "{name}: {}", v.reason);
        assert_eq!(v.basis, Some(Basis::Content));
        let e = v.deciding_evidence().expect("content decided");
        assert_eq!(
            (e.check, e.matched, e.sampled),
            (check, 1000, 1000),
            "{name}"
        );
        assert_eq!(e.share, 1.0);
    }
}

#[test]
fn random_nine_digit_numbers_are_not_ssns() {
    // Uniform 9-digit numbers pass the SSN rules 89% of the time: below the
    // 97.8% bar.
    let v = one(
        "ref",
        "text",
        &draw(1000, |r| format!("{:09}", r.below(1_000_000_000))),
    );
    assert_eq!(v.proposed, None, "{}", v.reason);
    let ssn = v
        .evidence
        .iter()
        .find(|e| e.check == Check::Ssn)
        .expect("ssn evidence");
    assert!((0.86..0.92).contains(&ssn.share), "{}", ssn.share);
    assert_eq!(ssn.shortfall, Some(Shortfall::Share));
}

#[test]
fn sequential_ids_cluster_and_padded_integers_are_not_ssns() {
    let seq: Vec<Option<String>> = (0..1000)
        .map(|i| Some((200_100_000 + i * 37).to_string()))
        .collect();
    let v = one("member_no", "text", &seq);
    assert_eq!(v.proposed, None);
    assert_eq!(
        shortfall(&v),
        Some((Check::Ssn, Shortfall::Clustered { needed: 10 }))
    );

    // Eight-digit order numbers in an integer column: padded to nine
    // digits they pass the SSN rules (areas 010-099), but a column of SSNs
    // stored as integers has mostly nine digits.
    let orders = draw(1000, |r| r.range(10_000_000, 99_999_999).to_string());
    let v = one("ref", "int8", &orders);
    assert_eq!(v.proposed, None, "{}", v.reason);
    assert_eq!(shortfall(&v), Some((Check::Ssn, Shortfall::MostlyPadded)));

    // Real SSNs as integers: areas below 100 lost their zeros, still found.
    let ints = draw(1000, |r| values::ssn(r).trim_start_matches('0').to_string());
    assert!(ints.iter().any(|v| v.as_ref().is_some_and(|s| s.len() < 9)));
    let v = one("pid", "int8", &ints);
    assert_eq!(v.proposed, Some(Entity::Ssn), "{}", v.reason);
}

#[test]
fn weak_checks_need_more_values_and_no_contradicting_name() {
    let ssns = draw(100, values::ssn);
    let v = one("ref", "text", &ssns);
    assert_eq!(v.proposed, None);
    assert_eq!(shortfall(&v), Some((Check::Ssn, Shortfall::NotSignificant)));
    let v = one("ref", "text", &draw(130, values::ssn));
    assert_eq!(v.proposed, Some(Entity::Ssn), "{}", v.reason);

    let v = one("zip_plus4", "text", &draw(1000, values::ssn));
    assert_eq!(v.proposed, None);
    assert_eq!(
        shortfall(&v),
        Some((Check::Ssn, Shortfall::ContradictingName { word: "zip" }))
    );
    // A strong checksum is not vetoed by the name.
    let v = one("order_ref", "text", &draw(1000, values::cpf));
    assert_eq!(v.proposed, Some(Entity::TaxId));
}

#[test]
fn dates_of_birth_against_other_dates() {
    let dobs = draw(1000, |r| values::dob(r, values::DateLayout::Iso));
    let v = one("d", "date", &dobs);
    assert_eq!(v.proposed, Some(Entity::DateOfBirth), "{}", v.reason);
    let recent = draw(1000, |r| values::date_between(r, 2019, 2024));
    let v = one("d", "date", &recent);
    assert_eq!(
        shortfall(&v),
        Some((Check::BirthDate, Shortfall::Clustered { needed: 15 }))
    );
    let future = draw(1000, |r| values::date_between(r, 2026, 2030));
    assert_eq!(one("d", "date", &future).reason, Reason::NoMatch);
    let stamps = draw(1000, values::timestamp);
    assert_eq!(one("d", "timestamptz", &stamps).reason, Reason::NoMatch);
}

#[test]
fn nulls_and_blanks_are_counted_apart() {
    let mut vals = draw(600, values::sin);
    vals.extend((0..300).map(|_| None));
    vals.extend((0..100).map(|_| Some("  ".to_string())));
    let v = one("ref", "varchar(9)", &vals);
    assert_eq!((v.sampled, v.nulls, v.blanks), (600, 300, 100));
    assert_eq!(v.proposed, Some(Entity::NationalId));
    assert_eq!(v.deciding_evidence().map(|e| e.share), Some(1.0));

    let few = draw(10, values::sin);
    let v = one("ref", "text", &few);
    assert_eq!(
        v.reason,
        Reason::TooFewValues {
            sampled: 10,
            needed: 20
        }
    );
}

#[test]
fn names_alone_and_names_against_content() {
    // Passports have no checksum: the name decides.
    let v = one("passport_no", "text", &draw(100, values::passport));
    assert_eq!(
        (v.proposed, v.basis),
        (Some(Entity::Passport), Some(Basis::Name))
    );
    assert_eq!(v.reason, Reason::Name);
    // Name and content agree.
    let v = one("tax_id", "text", &draw(100, values::cpf));
    assert_eq!(v.basis, Some(Basis::NameAndContent));
    // A secret's name outranks the content's entity.
    let v = one("api_token", "text", &draw(100, values::email));
    assert_eq!(v.proposed, Some(Entity::Secret));
    assert_eq!(
        v.reason,
        Reason::NameOverContent {
            content: Entity::Email
        }
    );
    // A less sensitive name does not: content wins and says so.
    let v = one("dob", "text", &draw(100, values::cpf));
    assert_eq!(v.proposed, Some(Entity::TaxId));
    assert!(matches!(
        v.reason,
        Reason::Content {
            overrode_name: Some(Entity::DateOfBirth),
            ..
        }
    ));
    // Types that hold no identifiers are not read, names still count.
    let v = one("session", "uuid", &draw(100, values::uuid));
    assert!(matches!(v.reason, Reason::NotProfiled { .. }));
    let v = one("ssn", "bool", &[Some("t".into())]);
    assert_eq!(v.proposed, Some(Entity::Ssn));
}

#[test]
fn json_documents_are_walked_by_path() {
    let docs = draw(300, |r| {
        serde_json::json!({
            "customer": {"tax_id": values::cpf(r), "ref": values::sin(r)},
            "items": [{"sku": values::sku(r)}, {"sku": values::sku(r)}],
            "by_user": {format!("u_{}", r.range(1_000_000, 9_999_999)): {"n": values::aadhaar(r)}},
        })
        .to_string()
    });
    let verdicts = discover("payload", "jsonb", &docs);
    let got: Vec<(String, Option<Entity>)> = verdicts
        .iter()
        .map(|v| (v.path.to_string(), v.proposed))
        .collect();
    assert_eq!(
        got,
        vec![
            ("public.t.payload".to_string(), None),
            (
                "public.t.payload.$.by_user.*.n".to_string(),
                Some(Entity::NationalId)
            ),
            (
                "public.t.payload.$.customer.ref".to_string(),
                Some(Entity::NationalId)
            ),
            (
                "public.t.payload.$.customer.tax_id".to_string(),
                Some(Entity::TaxId)
            ),
            ("public.t.payload.$.items[*].sku".to_string(), None),
        ]
    );
    assert_eq!(verdicts[0].reason, Reason::Documents { documents: 300 });
    // `[*]` pools: two SKUs per document.
    assert_eq!(verdicts[4].sampled, 600);
    assert_eq!(verdicts[1].path.json[1], JsonStep::AnyKey);

    // The same documents in a text column are walked too.
    let verdicts = discover("raw", "text", &docs);
    assert_eq!(verdicts.len(), 5);
}

#[test]
fn array_elements_are_pooled() {
    let arrays = draw(200, |r| {
        format!("{{{},{},NULL}}", values::sin(r), values::sin(r))
    });
    let v = one("refs", "text[]", &arrays);
    assert_eq!((v.sampled, v.nulls), (400, 200));
    assert_eq!(v.proposed, Some(Entity::NationalId));
    let ints = draw(200, |r| {
        format!("{{{}}}", values::cpf(r).trim_start_matches('0'))
    });
    let v = one("docs", "_int8", &ints);
    assert_eq!(v.proposed, Some(Entity::TaxId), "{}", v.reason);
}

#[test]
fn strongest_evidence_wins_among_passing_checks() {
    // Routing numbers also pass the SSN rules; the 3-7-1 checksum is the
    // more specific evidence.
    let v = one("bank", "text", &draw(1000, values::aba));
    assert_eq!(v.proposed, Some(Entity::AbaRouting));
    let ssn = v.evidence.iter().find(|e| e.check == Check::Ssn);
    assert!(ssn.is_some_and(|e| e.share > 0.9), "{:?}", v.evidence);
}
