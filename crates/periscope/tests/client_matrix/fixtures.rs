//! Every fixture of tests/fixtures/clients (the catalog queries pgAdmin,
//! DBeaver, DataGrip, Metabase and pgjdbc send, and whole pg_dump, pgcli and
//! asyncpg sessions) replayed directly and through the gateway with libpq,
//! then compared statement by statement.

use std::collections::BTreeMap;

use serde_json::Value;

use super::world::{World, assert_no_raw, python, run_ok, script};

/// Fixtures that read customer rows: the values that differ must be
/// placeholders.
const CUSTOMER_DATA: &[&str] = &[
    "dbeaver/23-view-data.sql",
    "pgadmin/31-view-data-primary-key.sql",
    "pgadmin/32-view-data-rows.sql",
    "metabase/16-scan-field-values.sql",
    "metabase/17-fingerprint-sample.sql",
    "metabase/18-question-with-remark.sql",
    "sessions/pg_dump-15.20.sql",
];

/// Fixtures whose values change from one run to the next (process ids,
/// clocks, transaction ids, statistics counters, the session's own
/// statement text): only their shape is compared, and no placeholder but
/// [`QUERY_TEXT`] may appear.
const VOLATILE: &[&str] = &[
    "datagrip/08-introspect-startup-time.sql",
    "datagrip/09-introspect-oldest-transaction.sql",
    "datagrip/10-introspect-current-txid.sql",
    "dbeaver/18-table-statistics.sql",
    "dbeaver/19-schema-statistics.sql",
    "pgadmin/20-table-statistics.sql",
    "pgadmin/28-dashboard-graphs.sql",
    "pgadmin/29-dashboard-activity.sql",
];

/// Other sessions' statement text, masked whole on purpose.
const QUERY_TEXT: &str = "[query_text]";

/// Placeholders a catalog fixture shows on purpose: IP addresses are
/// personal data to the content scanner wherever they appear (other
/// sessions' client addresses, the server's `listen_addresses`).
const PII_METADATA: &[(&str, &str)] = &[
    ("pgadmin/29-dashboard-activity.sql", "[ip]"),
    ("dbeaver/22-server-settings.sql", "[ip]"),
    ("pgadmin/30-dashboard-configuration.sql", "[ip]"),
];

/// Fixtures listing the session's settings (`pg_settings`): through the
/// gateway the upstream session runs with the read-only backstop and the
/// gateway's own startup parameters, so those rows differ by design.
const SESSION_SETTINGS: &[&str] = &[
    "dbeaver/22-server-settings.sql",
    "pgadmin/30-dashboard-configuration.sql",
];

/// The settings the gateway's upstream session sets itself.
const GATEWAY_SETTINGS: &[&str] = &[
    "default_transaction_read_only",
    "transaction_read_only",
    "client_encoding",
];

/// A result as the replay script prints it.
#[derive(Debug, Clone)]
struct Outcome {
    ok: bool,
    code: String,
    message: String,
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

fn outcome(v: &Value) -> Outcome {
    let rows = v["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    Outcome {
        ok: v["ok"].as_bool().unwrap(),
        code: v["code"].as_str().unwrap_or("").to_string(),
        message: v["message"].as_str().unwrap_or("").to_string(),
        columns: v["columns"]
            .as_array()
            .map(|c| c.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default(),
        rows,
    }
}

/// `(fixture, statement)` -> outcome, in order.
async fn replay(conninfo: &str) -> (Vec<(String, String)>, BTreeMap<(String, String), Outcome>) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/clients");
    let stdout = run_ok(
        tokio::process::Command::new(python())
            .arg(script("replay_fixtures.py"))
            .arg(conninfo)
            .arg(root),
        "replay_fixtures.py",
    )
    .await;
    let mut order = Vec::new();
    let mut map = BTreeMap::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = (
            v["fixture"].as_str().unwrap().to_string(),
            v["statement"].as_str().unwrap().to_string(),
        );
        order.push(key.clone());
        map.insert(key, outcome(&v));
    }
    (order, map)
}

fn is_placeholder(v: &str) -> bool {
    let Some(inner) = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return v.contains("[email]")
            || v.contains("[phone]")
            || v.contains("[card]")
            || v.contains("[iban]")
            || v.contains("[ssn]")
            || v.contains("[secret]");
    };
    !inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// What went wrong with one statement, if anything.
fn judge(fixture: &str, direct: &Outcome, gateway: &Outcome) -> Option<String> {
    if !gateway.ok {
        if !direct.ok && direct.code == gateway.code {
            return None;
        }
        return Some(format!(
            "gateway {} {} (direct: {})",
            gateway.code,
            gateway.message,
            if direct.ok {
                "ok".to_string()
            } else {
                direct.code.clone()
            }
        ));
    }
    if !direct.ok {
        return Some(format!(
            "direct failed {} but the gateway answered",
            direct.code
        ));
    }
    if direct.columns != gateway.columns {
        return Some(format!(
            "columns {:?} vs {:?}",
            direct.columns, gateway.columns
        ));
    }
    let volatile = VOLATILE.contains(&fixture);
    let customer_data = CUSTOMER_DATA.contains(&fixture);
    if !volatile && direct.rows.len() != gateway.rows.len() {
        return Some(format!(
            "{} rows directly, {} through the gateway",
            direct.rows.len(),
            gateway.rows.len()
        ));
    }
    for (r, row) in gateway.rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            let Some(value) = value else { continue };
            let column = gateway.columns.get(c).map_or("copy", String::as_str);
            let direct_value = direct.rows.get(r).and_then(|d| d.get(c)).cloned().flatten();
            if direct_value.as_deref() == Some(value.as_str()) {
                continue;
            }
            if value == QUERY_TEXT || PII_METADATA.contains(&(fixture, value.as_str())) {
                continue;
            }
            let setting = row.first().cloned().flatten().unwrap_or_default();
            if SESSION_SETTINGS.contains(&fixture) && GATEWAY_SETTINGS.contains(&setting.as_str()) {
                continue;
            }
            if is_placeholder(value) {
                if customer_data {
                    continue;
                }
                return Some(format!("row {r} column {column}: {value}"));
            }
            if !volatile {
                return Some(format!(
                    "row {r} ({setting}) column {column}: {value:?}, directly {direct_value:?}"
                ));
            }
        }
    }
    None
}

#[tokio::test]
async fn every_fixture_is_answered_like_a_direct_connection() {
    let world = World::start().await;
    let (order, direct) = replay(&world.direct()).await;
    let (_, gateway) = replay(&world.gateway()).await;
    assert!(order.len() > 200, "{} statements replayed", order.len());

    let mut problems = Vec::new();
    let mut masked = BTreeMap::<String, usize>::new();
    for key in &order {
        let d = &direct[key];
        let g = gateway
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} was not replayed through the gateway"));
        if let Some(problem) = judge(&key.0, d, g) {
            problems.push(format!("{} statement {}: {problem}", key.0, key.1));
        }
        let placeholders = g
            .rows
            .iter()
            .flatten()
            .flatten()
            .filter(|v| {
                is_placeholder(v)
                    && *v != QUERY_TEXT
                    && !PII_METADATA.contains(&(key.0.as_str(), v.as_str()))
            })
            .count();
        if placeholders > 0 {
            *masked.entry(key.0.clone()).or_default() += placeholders;
        }
        let text = serde_json::to_string(&g.rows).unwrap();
        assert_no_raw(&text, &world.raw_values());
    }
    assert!(
        problems.is_empty(),
        "{} of {} statements differ:\n{}",
        problems.len(),
        order.len(),
        problems.join("\n")
    );
    // Customer data is masked where it is read, and only there.
    for fixture in masked.keys() {
        assert!(
            CUSTOMER_DATA.contains(&fixture.as_str()),
            "{fixture} has placeholders"
        );
    }
    for fixture in [
        "dbeaver/23-view-data.sql",
        "pgadmin/32-view-data-rows.sql",
        "sessions/pg_dump-15.20.sql",
    ] {
        assert!(masked.contains_key(fixture), "{fixture} masked nothing");
    }
}
