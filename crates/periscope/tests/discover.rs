//! Sensitive data discovery end to end: the real gateway samples a real
//! PostgreSQL through `periscope discover`, proposes tags for columns whose
//! names say nothing (and not for look-alikes), never prints a value, refuses
//! non-administrators, and `--apply` makes the gateway mask those columns for
//! new psql sessions at once, lifted by `unmask:<entity>` like any tag.

use std::process::Command;

use crate::support::proxy::{UPSTREAM_USER, World, config, expect, user, world_with};
use periscope_testkit::fixtures;
use serde_json::{Value, json};

/// A small deterministic generator (xorshift), so the data is the same on
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }
}

fn luhn_ok(number: &str) -> bool {
    let body = &number[..number.len() - 1];
    number.ends_with(&fixtures::luhn_check_digit(body).to_string())
}

/// A Canadian SIN: 9 digits, first not 0 or 8, Luhn.
fn sin(rng: &mut Rng) -> String {
    let first = ["1", "2", "3", "4", "5", "6", "7", "9"][(rng.next() % 8) as usize];
    let payload = format!("{first}{}", rng.digits(7));
    format!("{payload}{}", fixtures::luhn_check_digit(&payload))
}

/// A Visa number without separators.
fn card(rng: &mut Rng) -> String {
    let payload = format!("4{}", rng.digits(14));
    format!("{payload}{}", fixtures::luhn_check_digit(&payload))
}

/// A Brazilian CPF (tax id), first digit not 0, as digits.
fn cpf(rng: &mut Rng) -> String {
    loop {
        let first = 1 + rng.next() % 9;
        let mut d: Vec<u32> = std::iter::once(first as u32)
            .chain(rng.digits(8).bytes().map(|b| u32::from(b - b'0')))
            .collect();
        if d.iter().all(|x| *x == d[0]) {
            continue;
        }
        for len in [9usize, 10] {
            let sum: u32 = d
                .iter()
                .enumerate()
                .map(|(i, x)| x * (len as u32 + 1 - i as u32))
                .sum();
            let r = sum % 11;
            d.push(if r < 2 { 0 } else { 11 - r });
        }
        return d.iter().map(|x| char::from(b'0' + *x as u8)).collect();
    }
}

/// A nine-digit number that is no identifier: area 9xx (no SSN), first
/// digit 9 (no routing number), Luhn broken (no SIN).
fn decoy(rng: &mut Rng) -> String {
    loop {
        let n = format!("9{}", rng.digits(8));
        if !luhn_ok(&n) {
            return n;
        }
    }
}

/// The `partners` table: sensitive data under neutral names and look-alikes.
struct Partners {
    sql: String,
    /// Every sensitive value stored: never printed by discovery, masked
    /// once applied.
    values: Vec<String>,
    /// The look-alikes (order numbers, zip codes, decoys): never printed by
    /// discovery either, shown through the proxy.
    innocent: Vec<String>,
    /// The national ids, to check masking and the grant.
    sins: Vec<String>,
}

const ROWS: usize = 300;

fn partners() -> Partners {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut sql = String::from(
        "CREATE TABLE partners (id bigint PRIMARY KEY, ref text, code text, external_id bigint, \
         doc jsonb, order_no bigint, zip text, batch text);\n",
    );
    let mut values = Vec::new();
    let mut innocent = Vec::new();
    let mut sins = Vec::new();
    for i in 0..ROWS {
        let (r, c, x) = (sin(&mut rng), card(&mut rng), cpf(&mut rng));
        let (dn, dc) = (sin(&mut rng), card(&mut rng));
        let email = format!("partner.{i}.{}@example.com", rng.digits(4));
        let doc = json!({ "n": dn, "v": dc, "contact": email, "kind": "retail" });
        let order = 7_300_000 + i as u64;
        let zip = format!("0{}", rng.digits(4));
        let batch = decoy(&mut rng);
        sql.push_str(&format!(
            "INSERT INTO partners VALUES ({i}, '{r}', '{c}', {x}, '{doc}', {order}, '{zip}', '{batch}');\n"
        ));
        sins.push(r.clone());
        values.extend([r, c, x, dn, dc, email]);
        innocent.extend([order.to_string(), zip, batch]);
    }
    sql.push_str("GRANT SELECT ON partners TO periscope_ro;\n");
    Partners {
        sql,
        values,
        innocent,
        sins,
    }
}

async fn seeded() -> (World, Partners) {
    seeded_with("").await
}

async fn seeded_with(extra: &str) -> (World, Partners) {
    let w = world_with(3, extra).await;
    let p = partners();
    tokio::task::block_in_place(|| w.shop.cluster.psql("shop", &p.sql)).unwrap();
    (w, p)
}

/// `periscope discover ARGS` as `token`.
async fn cli(w: &World, token: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_periscope"));
    cmd.arg("discover")
        .args(args)
        .env("PERISCOPE_URL", w.gw.api_url())
        .env("PERISCOPE_TOKEN", token)
        .env("PERISCOPE_CA_FILE", w.ca_file())
        .env("PERISCOPE_CONFIG_DIR", w.gw.data_dir().join("cli"))
        .env_remove("XDG_CONFIG_HOME");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("periscope runs"))
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn assert_no_value(output: &str, values: &[String]) {
    for v in values {
        assert!(
            !output.contains(v.as_str()),
            "a sampled value was printed: {v:?}\n{output}"
        );
    }
}

fn proposed(report: &Value) -> Vec<(String, String)> {
    report["proposed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["column"].as_str().unwrap().to_string(),
                p["entity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn discover_proposes_applies_and_masks_without_restart() {
    let (mut w, p) = seeded().await;
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();
    // The administrator's path alone: pg-prod's background profile (which
    // would tag the same columns itself) is turned off before any session.
    background_off(&mut w).await;

    // Before discovery, the separator-free national ids in `ref` pass: no
    // name and no detector says what they are.
    let before = w.psql("SELECT ref FROM partners ORDER BY id LIMIT 3").await;
    assert!(before.success, "{}", before.all());
    assert!(before.stdout.contains(&p.sins[0]), "{}", before.all());

    // A non-administrator is refused, and the refusal audited.
    let (code, out, err) = cli(&w, &w.alice.token, &["pg-prod"]).await;
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(err.contains("not an administrator"), "{err}");
    let refused = w.audit("discovery.refused").await;
    assert!(
        refused.iter().any(|e| e["actor"] == "alice"),
        "{refused:#?}"
    );

    // The administrator's run: JSON.
    let (code, out, err) = cli(
        &w,
        &admin_token,
        &["pg-prod", "--schema", "public", "--json"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert_no_value(&out, &p.values);
    assert_no_value(&out, &p.innocent);
    assert_no_value(&err, &p.values);
    let report: Value = serde_json::from_str(&out).unwrap();
    let tags = proposed(&report);
    for (column, entity) in [
        ("public.partners.ref", "national_id"),
        ("public.partners.code", "card"),
        ("public.partners.external_id", "tax_id"),
        ("public.partners.doc", "national_id"),
    ] {
        assert!(
            tags.iter().any(|(c, e)| c == column && e == entity),
            "{column} should be {entity}; proposed: {tags:?}"
        );
    }
    for innocent in ["order_no", "zip", "batch", "id"] {
        let column = format!("public.partners.{innocent}");
        assert!(
            !tags.iter().any(|(c, _)| *c == column),
            "{column} is not sensitive; proposed: {tags:?}"
        );
    }
    // The JSON fields are judged one by one.
    let fields = report["fields"].as_array().unwrap();
    let field = |path: &str| {
        fields
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("no field {path}"))
    };
    assert_eq!(field("public.partners.doc.$.n")["proposed"], "national_id");
    assert_eq!(field("public.partners.doc.$.v")["proposed"], "card");
    assert_eq!(field("public.partners.doc.$.contact")["proposed"], "email");
    let reff = field("public.partners.ref");
    assert_eq!(reff["basis"], "content");
    assert_eq!(reff["evidence"][0]["check"], "sin");
    assert!(reff["evidence"][0]["matched"].as_u64().unwrap() >= 290);
    assert!(
        report["snippet"]
            .as_str()
            .unwrap()
            .contains("\"public.partners.ref\" = \"national_id\""),
        "{}",
        report["snippet"]
    );
    assert!(report["applied"].is_null());

    // The human table, then --apply.
    let (code, out, err) = cli(
        &w,
        &admin_token,
        &["pg-prod", "--schema", "public", "--apply"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert_no_value(&out, &p.values);
    assert_no_value(&out, &p.innocent);
    assert!(out.contains("public.partners.ref"), "{out}");
    assert!(out.contains("[connection.data_policy.tags]"), "{out}");
    assert!(out.contains("Applied: version 1"), "{out}");

    // A new psql session masks the tagged columns; the look-alikes pass.
    let after = w
        .psql(
            "SELECT ref, code, external_id, doc, order_no, batch FROM partners ORDER BY id LIMIT 5",
        )
        .await;
    assert!(after.success, "{}", after.all());
    assert_no_value(&after.all(), &p.values);
    for line in after.stdout.lines() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[0], "[national_id]", "{line}");
        assert_eq!(f[1], "[card]", "{line}");
        assert_eq!(f[2], "[tax_id]", "{line}");
        assert_eq!(f[3], "[national_id]", "{line}");
        assert!(f[4].starts_with("73"), "order numbers pass: {line}");
        assert!(f[5].starts_with('9'), "decoys pass: {line}");
    }

    // `policy explain` shows them.
    let explain = w
        .admin
        .get("/v1/policy/explain?identity=alice&connection=pg-prod")
        .await
        .unwrap();
    let explain = expect(&explain, 200);
    let text = explain["text"].as_str().unwrap();
    assert!(text.contains("public.partners.ref"), "{text}");
    assert!(text.contains("tagged by discovery"), "{text}");

    // `--review` lists the stored version.
    let (code, out, err) = cli(&w, &admin_token, &["pg-prod", "--review"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("version 1"), "{out}");
    assert!(out.contains("public.partners.doc"), "{out}");

    // A grant lifting `unmask:national_id` shows the national ids again.
    w.grant(&["unmask:national_id"], "30m").await;
    let lifted = w.psql("SELECT ref FROM partners ORDER BY id LIMIT 3").await;
    assert!(lifted.success, "{}", lifted.all());
    let shown: Vec<&str> = lifted.stdout.lines().collect();
    assert_eq!(shown, p.sins[..3].to_vec(), "{}", lifted.all());

    // The audit has the run and the apply, and no value.
    let runs: Vec<Value> = w
        .audit("discovery.run")
        .await
        .into_iter()
        .filter(|e| e["actor"] != "periscope")
        .collect();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(runs[0]["target"], "pg-prod");
    let applies = w.audit("discovery.apply").await;
    assert_eq!(applies.len(), 1, "{applies:#?}");
    assert_eq!(
        applies[0]["details"]["added"]["public.partners.ref"],
        "national_id"
    );
    let export = w.audit_export().await;
    assert_no_value(&export, &p.values);
}

/// A connection like `pg-prod` that opts out of background profiling, a
/// role to reach it, and an exec connection (nothing to sample).
fn quiet(port: u16) -> String {
    format!(
        r#"
[[connection]]
name = "pg-quiet"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "shop"
user = "{UPSTREAM_USER}"
password_env = "PG_PROD_PASSWORD"
upstream_tls = "disable"
background_discovery = false

[[role]]
name = "quiet"
connections = ["pg-quiet"]

[[connection]]
name = "ops"
kind = "exec"
command = ["/bin/echo"]
allow = ["hello"]
"#
    )
}

/// Turns pg-prod's background profile off (a reload).
async fn background_off(w: &mut World) {
    let port = w.shop.cluster.port();
    let text = config(port, "").replacen(
        "upstream_tls = \"disable\"\n",
        "upstream_tls = \"disable\"\nbackground_discovery = false\n",
        1,
    );
    w.gw.write_config(&text).unwrap();
    let reloaded = w.admin.post("/v1/admin/reload", &json!({})).await.unwrap();
    expect(&reloaded, 200);
}

/// Waits until `connection`'s background profile has run `runs` times
/// (the `discovery.run` events by `periscope`), within a minute.
async fn wait_for_profiles(w: &World, connection: &str, runs: usize) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let b = background_of(w, connection).await;
        assert_ne!(b["background"]["state"], "failed", "{b:#}");
        let done = w
            .audit("discovery.run")
            .await
            .iter()
            .filter(|e| e["actor"] == "periscope" && e["target"] == connection)
            .count();
        if done >= runs && b["background"]["state"] == "done" {
            return b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{connection}: {runs} background profiles did not finish within 60 s: {b:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn background_of(w: &World, connection: &str) -> Value {
    let r = w
        .admin
        .get(&format!("/v1/admin/discover/{connection}"))
        .await
        .unwrap();
    expect(&r, 200)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_session_starts_a_background_profile_unless_the_connection_opts_out() {
    let (mut w, p) = seeded().await;
    // Add `pg-quiet` (opted out) with a reload, and carol who may reach it.
    let port = w.shop.cluster.port();
    w.gw.write_config(&config(port, &quiet(port))).unwrap();
    let reloaded = w.admin.post("/v1/admin/reload", &json!({})).await.unwrap();
    expect(&reloaded, 200);
    let carol = user(&w.gw, &w.admin, "carol", &["quiet"]).await;

    // Discovery samples database columns: an exec connection is refused
    // with a clear error, not sampled.
    let on_exec = w
        .admin
        .post("/v1/admin/discover", &json!({ "connection": "ops" }))
        .await
        .unwrap();
    assert_eq!(on_exec.status, 400, "{}", on_exec.body);
    assert!(
        on_exec
            .body
            .contains("`ops` is not a PostgreSQL connection"),
        "{}",
        on_exec.body
    );

    // No session yet: no profile.
    assert!(background_of(&w, "pg-prod").await["background"].is_null());

    // The first session on pg-prod starts one; it is served at once, its
    // results content-scanned as before (the ids pass).
    let first = w.psql("SELECT ref FROM partners ORDER BY id LIMIT 1").await;
    assert!(first.success, "{}", first.all());
    let done = wait_for_profiles(&w, "pg-prod", 1).await;
    assert_no_value(&done.to_string(), &p.values);
    // The report itself (the answer's timestamps have fractional seconds,
    // which a five-digit zip code could match by chance).
    assert_no_value(&done["background"]["report"].to_string(), &p.innocent);
    let tags = proposed(&done["background"]["report"]);
    assert!(
        tags.iter()
            .any(|(c, e)| c == "public.partners.ref" && e == "national_id"),
        "{tags:?}"
    );
    assert!(
        !tags.iter().any(|(c, _)| c == "public.partners.batch"),
        "{tags:?}"
    );
    // Its findings are in force at once, stored by `periscope`: a new
    // session sees the national ids masked without anyone's action.
    assert_eq!(done["versions"][0]["created_by"], "periscope", "{done:#}");
    assert_eq!(
        done["versions"][0]["tags"]["public.partners.ref"], "national_id",
        "{done:#}"
    );
    let masked = w.psql("SELECT ref FROM partners ORDER BY id LIMIT 1").await;
    assert_eq!(masked.stdout.trim(), "[national_id]", "{}", masked.all());
    let applies = w.audit("discovery.apply").await;
    assert!(
        applies.iter().any(|e| e["actor"] == "periscope"
            && e["details"]["added"]["public.partners.ref"] == "national_id"),
        "{applies:#?}"
    );
    // `--review` says what was found and why, never a value.
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();
    let (code, out, err) = cli(&w, &admin_token, &["pg-prod", "--review"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("public.partners.ref = national_id [masked]"),
        "{out}"
    );
    assert!(out.contains("sin"), "the evidence names its check: {out}");
    assert_no_value(&out, &p.values);
    let runs = w.audit("discovery.run").await;
    assert!(
        runs.iter()
            .any(|e| e["actor"] == "periscope" && e["target"] == "pg-prod"),
        "{runs:#?}"
    );

    // The administrator overrides the finding: the column passes again, the
    // override is audited and shown.
    let (code, out, err) = cli(
        &w,
        &admin_token,
        &["pg-prod", "--dismiss", "public.partners.ref"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Dismissed on `pg-prod`"), "{out}");
    let shown = w.psql("SELECT ref FROM partners ORDER BY id LIMIT 1").await;
    assert_eq!(shown.stdout.trim(), p.sins[0], "{}", shown.all());
    let dismissed = w.audit("discovery.dismiss").await;
    assert_eq!(dismissed.len(), 1, "{dismissed:#?}");
    assert_eq!(dismissed[0]["actor"], "admin");
    let (_, out, _) = cli(&w, &admin_token, &["pg-prod", "--review"]).await;
    assert!(
        out.contains("public.partners.ref = national_id [dismissed]"),
        "{out}"
    );
    // A column that is not a column is refused precisely.
    let (code, _, err) = cli(&w, &admin_token, &["pg-prod", "--dismiss", "ref"]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("`ref` is not a column"), "{err}");

    // pg-quiet opted out: its first session starts nothing (the profile
    // would be registered before the session is served).
    let conninfo = w.conninfo("carol", "pg-quiet");
    let quiet_session = w.psql_as(&conninfo, &carol.token, "SELECT 1").await;
    assert!(quiet_session.success, "{}", quiet_session.all());
    assert!(
        background_of(&w, "pg-quiet").await["background"].is_null(),
        "pg-quiet opted out"
    );
    assert!(
        !w.audit("discovery.run")
            .await
            .iter()
            .any(|e| e["target"] == "pg-quiet")
    );
}

/// A connection profiled every second, and a role to reach it.
fn often(port: u16) -> String {
    format!(
        r#"
[[connection]]
name = "pg-often"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "shop"
user = "{UPSTREAM_USER}"
password_env = "PG_PROD_PASSWORD"
upstream_tls = "disable"
discovery_interval = "1s"

[[role]]
name = "often"
connections = ["pg-often"]
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn background_profiles_run_again_and_mask_a_column_that_filled_up() {
    let (mut w, p) = seeded().await;
    background_off(&mut w).await;
    let port = w.shop.cluster.port();
    let text = config(port, &often(port)).replacen(
        "upstream_tls = \"disable\"\n",
        "upstream_tls = \"disable\"\nbackground_discovery = false\n",
        1,
    );
    w.gw.write_config(&text).unwrap();
    let reloaded = w.admin.post("/v1/admin/reload", &json!({})).await.unwrap();
    expect(&reloaded, 200);
    let carol = user(&w.gw, &w.admin, "carol", &["often"]).await;
    let conninfo = w.conninfo("carol", "pg-often");

    // An imported table, empty when the gateway first profiles.
    tokio::task::block_in_place(|| {
        w.shop.cluster.psql(
            "shop",
            "CREATE TABLE imported (id bigint PRIMARY KEY, acct text); \
             GRANT SELECT ON imported TO periscope_ro;",
        )
    })
    .unwrap();
    let first = w
        .psql_as(&conninfo, &carol.token, "SELECT count(*) FROM imported")
        .await;
    assert!(first.success, "{}", first.all());
    let done = wait_for_profiles(&w, "pg-often", 1).await;
    assert!(
        done["versions"][0]["tags"]["public.imported.acct"].is_null(),
        "an empty column holds nothing yet: {done:#}"
    );

    // It fills up with separator-free national ids under a neutral name.
    let mut insert = String::new();
    for (i, sin) in p.sins.iter().enumerate() {
        insert.push_str(&format!("INSERT INTO imported VALUES ({i}, '{sin}');\n"));
    }
    tokio::task::block_in_place(|| w.shop.cluster.psql("shop", &insert)).unwrap();
    let before = w.audit("discovery.run").await.len();

    // A later profile (every second here) finds and masks it, unasked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let b = background_of(&w, "pg-often").await;
        if b["versions"][0]["tags"]["public.imported.acct"] == "national_id" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no later profile tagged public.imported.acct within 60 s: {b:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(w.audit("discovery.run").await.len() > before);
    let masked = w
        .psql_as(
            &conninfo,
            &carol.token,
            "SELECT acct FROM imported ORDER BY id LIMIT 2",
        )
        .await;
    assert!(masked.success, "{}", masked.all());
    for line in masked.stdout.lines() {
        assert_eq!(line, "[national_id]", "{}", masked.all());
    }
}

/// A table of free text that mentions emails, under a neutral name.
fn notes_table(name: &str) -> (String, Vec<String>) {
    let mut sql = format!(
        "CREATE TABLE {name} (id bigint PRIMARY KEY, blob text); GRANT SELECT ON {name} TO periscope_ro;\n"
    );
    let mut emails = Vec::new();
    for i in 0..8 {
        let email = format!("buyer.{i}.{name}@example.com");
        sql.push_str(&format!(
            "INSERT INTO {name} VALUES ({i}, 'imported row {i}, contact {email}');\n"
        ));
        emails.push(email);
    }
    (sql, emails)
}

/// Polls the admin view of pg-prod until `check` holds, within a minute.
async fn wait_for_view(w: &World, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let b = background_of(w, "pg-prod").await;
        if check(&b) {
            return b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within 60 s: {b:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_whose_results_keep_hitting_detectors_is_suspected_and_auto_tag_masks_it_whole() {
    let (mut w, _p) = seeded().await;
    // Learning from results alone: no profile tags anything first.
    background_off(&mut w).await;
    // Both tables exist before the first session (the gateway's catalog
    // of the connection is loaded then).
    let (sql, emails) = notes_table("imports");
    let (sql2, _) = notes_table("imports2");
    tokio::task::block_in_place(|| w.shop.cluster.psql("shop", &format!("{sql}{sql2}"))).unwrap();
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();

    // Two statements: detectors mask the emails inside the text, but one
    // statement's worth of evidence (or two) is not enough.
    for _ in 0..2 {
        let out = w.psql("SELECT blob FROM imports ORDER BY id LIMIT 5").await;
        assert!(out.success, "{}", out.all());
        assert!(out.stdout.contains("contact [email]"), "{}", out.all());
    }
    assert_eq!(background_of(&w, "pg-prod").await["suspected"], json!([]));
    // The third: ten values or more over three statements.
    let out = w.psql("SELECT blob FROM imports ORDER BY id LIMIT 5").await;
    assert!(out.success, "{}", out.all());
    let view = wait_for_view(&w, "public.imports.blob suspected", |b| {
        b["suspected"][0]["column"] == "public.imports.blob"
    })
    .await;
    let s = &view["suspected"][0];
    assert_eq!(s["entity"], "email", "{view:#}");
    assert_eq!(s["values"], 15, "{view:#}");
    assert_eq!(s["statements"], 3, "{view:#}");
    assert_eq!(s["tagged"], false, "auto_tag is off by default: {view:#}");
    // Still content-masked only: the text around the email shows.
    let out = w.psql("SELECT blob FROM imports ORDER BY id LIMIT 1").await;
    assert_eq!(
        out.stdout.trim(),
        "imported row 0, contact [email]",
        "{}",
        out.all()
    );
    let (code, out, err) = cli(&w, &admin_token, &["pg-prod", "--suspected"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("public.imports.blob"), "{out}");
    assert!(
        out.contains("suspected: values masked by content only"),
        "{out}"
    );
    let events = w.audit("discovery.suspected").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["details"]["column"], "public.imports.blob");
    assert_eq!(events[0]["details"]["auto_tag"], false);
    assert_no_value(&format!("{out}{events:?}{view}"), &emails);

    // With auto_tag, the next suspected column is tagged at once: every
    // later value of it is masked whole, detector or not.
    let port = w.shop.cluster.port();
    let text = config(port, "").replacen(
        "upstream_tls = \"disable\"\n",
        "upstream_tls = \"disable\"\nbackground_discovery = false\nauto_tag = true\n",
        1,
    );
    w.gw.write_config(&text).unwrap();
    let reloaded = w.admin.post("/v1/admin/reload", &json!({})).await.unwrap();
    expect(&reloaded, 200);
    for _ in 0..3 {
        let out = w
            .psql("SELECT blob FROM imports2 ORDER BY id LIMIT 5")
            .await;
        assert!(out.success, "{}", out.all());
    }
    wait_for_view(&w, "public.imports2.blob tagged", |b| {
        b["versions"][0]["tags"]["public.imports2.blob"] == "email"
    })
    .await;
    let out = w
        .psql("SELECT blob FROM imports2 ORDER BY id LIMIT 2")
        .await;
    for line in out.stdout.lines() {
        assert_eq!(line, "[email]", "{}", out.all());
    }
    let events = w.audit("discovery.suspected").await;
    assert!(
        events
            .iter()
            .any(|e| e["details"]["column"] == "public.imports2.blob"
                && e["details"]["auto_tag"] == true),
        "{events:#?}"
    );
}
