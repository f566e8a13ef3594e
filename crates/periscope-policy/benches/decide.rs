//! Cost of the policy work a proxy does per session start: `decide()` (with its
//! explanation) and, on reload, parsing and compiling the configuration.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use periscope_policy::{
    ApprovalOutcome, Config, Identity, Opened, Policy, PolicyInput, Shield, apply_approval, decide,
    validate_request,
};

const EXAMPLE: &str = include_str!("../../../periscope.example.toml");

fn bench(c: &mut Criterion) {
    let config = Config::parse(EXAMPLE, "periscope.example.toml").expect("example parses");
    let policy = Policy::new(&config);
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let alice = Identity::new("alice", ["dev"]);
    let bob = Identity::new("bob", ["lead"]);

    // One active grant lifting two shields, as a typical debugging session has.
    let lifts: Vec<Shield> = ["unmask:email", "write"]
        .iter()
        .map(|s| s.parse().expect("valid shield"))
        .collect();
    let plan = validate_request(
        &policy,
        &alice,
        "pg-prod",
        &lifts,
        std::time::Duration::from_secs(1800),
        "INC-4411: refund stuck",
        now,
    )
    .expect("valid request");
    let Opened::Pending(request) = plan.open("req_1") else {
        panic!("dev needs an approval")
    };
    let Ok(ApprovalOutcome::Granted { grant, .. }) = apply_approval(&request, &bob, now) else {
        panic!("one approval grants")
    };
    let grants = [grant.into_grant("gr_1")];

    c.bench_function("decide/allowed_with_grant", |b| {
        b.iter(|| {
            decide(black_box(&PolicyInput {
                policy: &policy,
                identity: &alice,
                connection: "pg-prod",
                grants: &grants,
                now,
            }))
        })
    });
    let nobody = Identity::new("mallory", ["sre-trainee"]);
    c.bench_function("decide/denied", |b| {
        b.iter(|| {
            decide(black_box(&PolicyInput {
                policy: &policy,
                identity: &nobody,
                connection: "pg-prod",
                grants: &[],
                now,
            }))
        })
    });
    c.bench_function("config/parse_and_compile_example", |b| {
        b.iter(|| {
            Policy::new(
                &Config::parse(black_box(EXAMPLE), "periscope.example.toml").expect("parses"),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
