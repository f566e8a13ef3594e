//! The MCP server end to end: the official Python SDK (PyPI's `mcp`, a real
//! MCP client written by others) drives `/mcp` on the real gateway in front
//! of a seeded shop. The agent acts as alice: masked data, a refusal with
//! its request hint, a grant requested by the agent and approved by bob
//! through the API, the lifted shield, its expiry; bad input answered
//! precisely; every call audited with `via = "mcp"` and the client's name.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::support::console::Driver;
use crate::support::proxy::{World, expect, world};
use crate::support::sso::{Browser as Http, crypto};
use periscope_testkit::ApiResponse;

/// The client name the scripted agent declares in `initialize`.
const CLIENT: &str = "periscope-test-agent";

/// The venv's python with the `mcp` SDK, or a failure saying what to install.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PERISCOPE_MCP_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("PERISCOPE_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("periscope")))
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/periscope")
        });
    let python = cache.join("mcp-client/venv/bin/python");
    assert!(
        python.exists(),
        "the MCP tests need the official Python MCP SDK: run scripts/install-mcp-client \
         (or scripts/install-test-deps), or point PERISCOPE_MCP_PYTHON at a python with \
         `mcp` installed; looked for {}",
        python.display()
    );
    python
}

/// The scripted agent: one JSON command in, one JSON answer out.
struct Agent {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Agent {
    async fn start(w: &World, token: &str) -> Agent {
        let mut agent = Agent::spawn(w, token);
        let ready = agent.answer().await;
        assert_eq!(ready["ready"], true, "{ready}");
        agent
    }

    /// The agent without waiting for its session (with `--oauth` it first
    /// asks for its human's browser).
    fn spawn(w: &World, token: &str) -> Agent {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/mcp_agent.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg(format!("{}/mcp", w.gw.api_url()))
            .arg(w.ca_file())
            .arg(token)
            .arg(CLIENT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the python MCP agent starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Agent {
            child,
            stdin,
            stdout,
        }
    }

    async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn answer(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(90), self.stdout.next_line())
            .await
            .expect("the agent answers within 90 s")
            .unwrap()
            .unwrap_or_else(|| panic!("the agent exited: {:?}", self.child.try_wait()));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Calls a tool; returns the whole answer (`ok`, `structured`, `is_error`).
    async fn call_raw(&mut self, tool: &str, args: Value) -> Value {
        self.send(json!({"op": "call", "tool": tool, "args": args}))
            .await;
        self.answer().await
    }

    /// Calls a tool that must answer with a structured outcome.
    async fn call(&mut self, tool: &str, args: Value) -> Value {
        let answer = self.call_raw(tool, args).await;
        assert_eq!(answer["ok"], true, "{tool}: {answer}");
        answer["structured"].clone()
    }
}

/// Every cell of a `query` outcome's rows, as text.
fn cells(outcome: &Value) -> Vec<String> {
    outcome["result"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("rows: {outcome}"))
        .iter()
        .flat_map(|r| r.as_array().unwrap().clone())
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect()
}

async fn approve_as_bob(w: &World, request_id: &str) -> String {
    let approved = w
        .bob
        .api
        .post(&format!("/v1/requests/{request_id}/approve"), &json!({}))
        .await
        .unwrap();
    expect(&approved, 200)["grant"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_acts_as_its_human_through_the_same_shields() {
    let mut w = world().await;
    let mut agent = Agent::start(&w, &w.alice.token).await;

    // The tools, each with an input and an output schema; none approves.
    agent.send(json!({"op": "list_tools"})).await;
    let listed = agent.answer().await;
    let tools = listed["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for expected in [
        "whoami",
        "connections_list",
        "policy_explain",
        "schema_describe",
        "query",
        "request_grant",
        "grant_status",
        "wait_for_grant",
        "exec",
        "logs_tail",
        "audit_search",
        "sessions_list",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("approve")), "{names:?}");
    for tool in tools {
        assert_eq!(tool["output_schema"]["type"], "object", "{tool}");
    }

    // Who it acts as: alice, through MCP, under its declared name.
    let me = agent.call("whoami", json!({})).await;
    assert_eq!(me["status"], "completed", "{me}");
    assert_eq!(me["result"]["identity"], "alice");
    assert_eq!(me["result"]["via"], "mcp");
    assert_eq!(me["result"]["client"], CLIENT);

    // The schema says which columns come back masked and what lifts them.
    let schema = agent
        .call(
            "schema_describe",
            json!({"connection": "pg-prod", "table": "customers"}),
        )
        .await;
    assert_eq!(schema["status"], "completed", "{schema}");
    let columns = schema["result"]["tables"][0]["columns"].as_array().unwrap();
    let email = columns.iter().find(|c| c["name"] == "email").unwrap();
    assert_eq!(email["masked_as"], "[email]", "{email}");
    assert_eq!(email["lifted_by"], "unmask:email", "{email}");
    let id = columns.iter().find(|c| c["name"] == "id").unwrap();
    assert!(id.get("masked_as").is_none(), "{id}");

    // Masked data, marked cell by cell.
    let sql = "SELECT id, email FROM customers ORDER BY id LIMIT 3";
    let masked = agent
        .call("query", json!({"connection": "pg-prod", "sql": sql}))
        .await;
    assert_eq!(masked["status"], "completed", "{masked}");
    assert_eq!(masked["result"]["columns"], json!(["id", "email"]));
    assert!(cells(&masked).contains(&"[email]".to_string()), "{masked}");
    assert_eq!(
        masked["result"]["masked"][0],
        json!({"row": 0, "column": 1, "entities": ["email"]})
    );
    let raw = w.shop.raw_values();
    let text = masked.to_string();
    for value in &raw {
        assert!(!text.contains(value.as_str()), "{value} leaked: {text}");
    }

    // A write is refused with the shield and the call that requests it.
    let refused = agent
        .call(
            "query",
            json!({"connection": "pg-prod", "sql": "UPDATE customers SET name = 'x' WHERE id = 1"}),
        )
        .await;
    assert_eq!(refused["status"], "refused", "{refused}");
    assert_eq!(refused["refusal"]["shield"], "write", "{refused}");
    assert!(
        refused["refusal"]["request_command"]
            .as_str()
            .unwrap()
            .contains("periscope request pg-prod --lift write"),
        "{refused}"
    );
    assert_eq!(
        refused["refusal"]["request_grant"]["arguments"]["lifts"],
        json!(["write"])
    );

    // The agent asks to see emails; the request waits for a human.
    let requested = agent
        .call(
            "request_grant",
            json!({"connection": "pg-prod", "lifts": ["unmask:email"], "duration": "2m",
                   "reason": "INC-4242: customer cannot log in"}),
        )
        .await;
    assert_eq!(requested["status"], "pending_approval", "{requested}");
    let request_id = requested["result"]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waited = agent
        .call(
            "wait_for_grant",
            json!({"request_id": request_id, "timeout_secs": 1}),
        )
        .await;
    assert_eq!(waited["status"], "pending_approval", "{waited}");
    let status = agent
        .call("grant_status", json!({"request_id": request_id}))
        .await;
    assert_eq!(status["status"], "pending_approval", "{status}");

    // bob approves through the API while the agent waits.
    agent
        .send(json!({"op": "call", "tool": "wait_for_grant",
                     "args": {"request_id": request_id, "timeout_secs": 60}}))
        .await;
    let grant_id = approve_as_bob(&w, &request_id).await;
    let approved = agent.answer().await;
    assert_eq!(approved["structured"]["status"], "completed", "{approved}");
    assert_eq!(
        approved["structured"]["result"]["grant"]["id"],
        grant_id.as_str()
    );

    // The shield is lifted for the next query.
    let lifted = agent
        .call("query", json!({"connection": "pg-prod", "sql": sql}))
        .await;
    assert_eq!(lifted["status"], "completed", "{lifted}");
    let first = &w.shop.customers[0].email;
    assert!(cells(&lifted).contains(first), "{lifted}");
    assert_eq!(lifted["result"]["masked"], json!([]), "{lifted}");

    // It expires by itself: masked again.
    w.advance_clock("3m").await;
    crate::support::gateway::eventually("the grant's expiry", Duration::from_secs(10), || async {
        let r = w
            .alice
            .api
            .get(&format!("/v1/grants/{grant_id}"))
            .await
            .unwrap();
        (expect(&r, 200)["status"] == "expired").then_some(())
    })
    .await;
    let expired = agent
        .call("query", json!({"connection": "pg-prod", "sql": sql}))
        .await;
    assert!(
        cells(&expired).contains(&"[email]".to_string()),
        "{expired}"
    );
    assert!(!expired.to_string().contains(first.as_str()), "{expired}");

    // The audit log: the human as actor, via mcp, the client's name, on the
    // calls and on the SQL sessions they opened.
    let calls = w.audit("mcp.call").await;
    let query_calls: Vec<&Value> = calls
        .iter()
        .filter(|e| e["details"]["tool"] == "query")
        .collect();
    assert_eq!(query_calls.len(), 4, "{calls:?}");
    for e in &calls {
        assert_eq!(e["actor"], "alice", "{e}");
        assert_eq!(e["details"]["via"], "mcp", "{e}");
        assert_eq!(e["details"]["agent"], CLIENT, "{e}");
    }
    assert!(
        query_calls
            .iter()
            .any(|e| e["details"]["status"] == "refused" && e["details"]["shield"] == "write"),
        "{query_calls:?}"
    );
    let starts = w.audit("session.start").await;
    let via_mcp: Vec<&Value> = starts
        .iter()
        .filter(|e| e["details"]["via"] == "mcp")
        .collect();
    assert_eq!(via_mcp.len(), 4, "{starts:?}");
    for e in via_mcp {
        assert_eq!(e["actor"], "alice");
        assert_eq!(e["details"]["agent"], CLIENT);
        assert_eq!(e["details"]["application_name"], format!("mcp:{CLIENT}"));
    }
    let queries = w.audit("query").await;
    assert!(
        queries
            .iter()
            .any(|e| e["details"]["via"] == "mcp" && e["details"]["agent"] == CLIENT),
        "{queries:?}"
    );
    let export = w.audit_export().await;
    assert!(
        !export.contains(&w.alice.token),
        "the token is never audited"
    );

    // An agent still connected (its event stream open) does not hold the
    // gateway's shutdown: its MCP session ends at once (without that, the
    // API's graceful shutdown waits for the stream until its own deadline,
    // about 10 s).
    let stopping = std::time::Instant::now();
    let status = tokio::task::block_in_place(|| w.gw.stop()).expect("the gateway stops");
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "the gateway took {:?} to stop with an agent connected",
        stopping.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_precise_errors_and_the_session_stays_healthy() {
    let w = world().await;
    let mcp = w.alice.api.clone();

    // No token, a wrong token: 401 pointing at the protected-resource metadata.
    let anonymous = mcp
        .with_token(None)
        .send_raw("POST", "/mcp", "application/json", "{}")
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let challenge = anonymous.header("www-authenticate").unwrap().to_owned();
    assert!(
        challenge.contains("resource_metadata=\"https://")
            && challenge.contains("/.well-known/oauth-protected-resource/mcp\""),
        "{challenge}"
    );
    let metadata = mcp
        .with_token(None)
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .unwrap();
    let metadata = expect(&metadata, 200);
    assert!(
        metadata["resource"].as_str().unwrap().ends_with("/mcp"),
        "{metadata}"
    );
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    let wrong = mcp
        .with_token(Some("psk_not-a-real-token"))
        .send_raw("POST", "/mcp", "application/json", "{}")
        .await
        .unwrap();
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(
        !wrong.body.contains("psk_not-a-real-token"),
        "{}",
        wrong.body
    );

    // An expired token: 401 like a wrong one, saying it expired, never
    // echoing it.
    let short = w
        .admin
        .post(
            "/v1/admin/users/alice/tokens",
            &json!({"description": "short-lived agent token", "expires_in": "10m"}),
        )
        .await
        .unwrap();
    let short = expect(&short, 201)["token"].as_str().unwrap().to_owned();
    let fresh = mcp
        .with_token(Some(&short))
        .send_raw("POST", "/mcp", "application/json", "{}")
        .await
        .unwrap();
    assert_ne!(fresh.status, 401, "valid before its expiry: {}", fresh.body);
    w.advance_clock("11m").await;
    let expired = mcp
        .with_token(Some(&short))
        .send_raw("POST", "/mcp", "application/json", "{}")
        .await
        .unwrap();
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert!(!expired.body.contains(&short), "{}", expired.body);

    // Malformed JSON-RPC and an oversized body: refused before any tool runs.
    let accept = mcp.with_header("accept", "application/json, text/event-stream");
    let malformed = accept
        .send_raw(
            "POST",
            "/mcp",
            "application/json",
            "{\"jsonrpc\": \"2.0\", \"id\": 1, ",
        )
        .await
        .unwrap();
    assert!(
        (400..500).contains(&malformed.status),
        "{} {}",
        malformed.status,
        malformed.body
    );
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"query\",\"arguments\":{{\"connection\":\"pg-prod\",\"sql\":\"SELECT '{}'\"}}}}}}",
        "x".repeat(300 * 1024)
    );
    let oversized = accept
        .send_raw("POST", "/mcp", "application/json", &huge)
        .await
        .unwrap();
    assert_eq!(oversized.status, 413, "{}", oversized.body);

    // Through the real client: each mistake answered precisely, the session
    // carrying on after each.
    let mut agent = Agent::start(&w, &w.alice.token).await;
    let unknown = agent.call_raw("drop_database", json!({})).await;
    let unknown_text = unknown.to_string();
    assert!(
        unknown["ok"] == false || unknown["is_error"] == true,
        "{unknown}"
    );
    assert!(unknown_text.contains("drop_database"), "{unknown}");
    let missing = agent
        .call_raw("query", json!({"connection": "pg-prod"}))
        .await;
    assert!(
        missing.to_string().contains("sql"),
        "a missing argument is named: {missing}"
    );
    let extra = agent
        .call_raw(
            "query",
            json!({"connection": "pg-prod", "sql": "SELECT 1", "approve": true}),
        )
        .await;
    assert!(extra.to_string().contains("approve"), "{extra}");
    let long = agent
        .call(
            "query",
            json!({"connection": "pg-prod", "sql": format!("SELECT '{}'", "y".repeat(100 * 1024))}),
        )
        .await;
    assert_eq!(long["status"], "failed", "{long}");
    assert!(
        long["message"].as_str().unwrap().contains("at most 65536"),
        "{long}"
    );
    let table = agent
        .call(
            "query",
            json!({"connection": "pg-prod", "sql": "SELECT * FROM payments"}),
        )
        .await;
    assert_eq!(table["status"], "refused", "{table}");
    assert_eq!(
        table["refusal"]["shield"], "table:public.payments",
        "{table}"
    );
    let unknown_connection = agent
        .call(
            "query",
            json!({"connection": "pg-nowhere", "sql": "SELECT 1"}),
        )
        .await;
    assert_eq!(
        unknown_connection["status"], "refused",
        "{unknown_connection}"
    );
    assert!(
        unknown_connection["message"]
            .as_str()
            .unwrap()
            .contains("pg-nowhere"),
        "{unknown_connection}"
    );
    let admin_only = agent.call("audit_search", json!({})).await;
    assert_eq!(admin_only["status"], "refused", "{admin_only}");
    let ok = agent
        .call(
            "query",
            json!({"connection": "pg-prod", "sql": "SELECT 1 AS one"}),
        )
        .await;
    assert_eq!(
        ok["result"]["rows"],
        json!([["1"]]),
        "the session is healthy: {ok}"
    );

    // Bounded results: at most max_rows, and it says so.
    let bounded = agent
        .call(
            "query",
            json!({"connection": "pg-prod", "sql": "SELECT id FROM customers", "max_rows": 5}),
        )
        .await;
    assert_eq!(bounded["result"]["rows"].as_array().unwrap().len(), 5);
    assert_eq!(bounded["result"]["truncated"], true, "{bounded}");

    // A grant revoked mid-session: the next call is masked again.
    let grant = w.grant(&["unmask:email"], "30m").await;
    let sql = "SELECT email FROM customers ORDER BY id LIMIT 1";
    let seen = agent
        .call("query", json!({"connection": "pg-prod", "sql": sql}))
        .await;
    assert_eq!(cells(&seen), vec![w.shop.customers[0].email.clone()]);
    let revoked = w
        .bob
        .api
        .post(
            &format!("/v1/grants/{grant}/revoke"),
            &json!({"reason": "done"}),
        )
        .await
        .unwrap();
    expect(&revoked, 200);
    let after = agent
        .call("query", json!({"connection": "pg-prod", "sql": sql}))
        .await;
    assert_eq!(cells(&after), vec!["[email]".to_string()], "{after}");

    // The token revoked: the very next call is refused, nothing else changes.
    let tokens = w.admin.get("/v1/admin/users/alice/tokens").await.unwrap();
    let token_id = expect(&tokens, 200)
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["description"] != "short-lived agent token")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = w
        .admin
        .delete(&format!("/v1/admin/tokens/{token_id}"))
        .await
        .unwrap();
    assert!(gone.status < 300, "{}", gone.body);
    // The SDK ends its session on an HTTP error: its last word names the 401.
    let refused = agent.call_raw("whoami", json!({})).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("401"),
        "{refused}"
    );
    assert!(!refused.to_string().contains(&w.alice.token), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_allowed_commands_masked_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "login by alice.martin@example.com failed\n").unwrap();
    let extra = format!(
        r#"
[[connection]]
name = "files"
kind = "exec"
command = ["/bin/cat"]
allow = ["{}"]
sensitive = ["/etc/*"]
timeout = "1m"

[[connection]]
name = "applogs"
kind = "logs"
sources = {{ app = {{ files = ["{}"] }} }}

[[role]]
name = "ops"
connections = ["files", "applogs"]
may_lift = ["command:*"]
max_duration = "1h"
approvals = 1
approvers = ["lead"]
"#,
        log.display(),
        log.display()
    );
    let w = crate::support::proxy::world_with(3, &extra).await;
    let patched = w
        .admin
        .patch("/v1/admin/users/alice", &json!({"roles": ["dev", "ops"]}))
        .await
        .unwrap();
    expect(&patched, 200);
    let mut agent = Agent::start(&w, &w.alice.token).await;

    // Allowed: the output comes back masked, with the exit code.
    let ran = agent
        .call(
            "exec",
            json!({"connection": "files", "args": [log.display().to_string()]}),
        )
        .await;
    assert_eq!(ran["status"], "completed", "{ran}");
    assert_eq!(ran["result"]["exit_code"], 0, "{ran}");
    assert_eq!(
        ran["result"]["stdout"], "login by [email] failed\n",
        "{ran}"
    );
    assert_eq!(ran["result"]["masked"], 1, "{ran}");
    assert!(!ran.to_string().contains("alice.martin@example.com"));

    // Sensitive: refused with the shield and the call that requests it.
    let refused = agent
        .call(
            "exec",
            json!({"connection": "files", "args": ["/etc/passwd"]}),
        )
        .await;
    assert_eq!(refused["status"], "refused", "{refused}");
    assert_eq!(refused["refusal"]["shield"], "command:/etc/*", "{refused}");
    assert_eq!(
        refused["refusal"]["request_grant"]["arguments"]["connection"],
        "files"
    );

    // exec on a PostgreSQL connection, query on an exec one: precise failures.
    let wrong = agent
        .call("exec", json!({"connection": "pg-prod", "args": ["x"]}))
        .await;
    assert_eq!(wrong["status"], "failed", "{wrong}");
    assert!(
        wrong["message"]
            .as_str()
            .unwrap()
            .contains("not an exec connection"),
        "{wrong}"
    );
    let wrong = agent
        .call("query", json!({"connection": "files", "sql": "SELECT 1"}))
        .await;
    assert_ne!(wrong["status"], "completed", "{wrong}");
    assert!(
        wrong["message"]
            .as_str()
            .unwrap()
            .contains("not a PostgreSQL connection"),
        "{wrong}"
    );

    // The command's own events carry the agent, its refusals too.
    let starts = w.audit("exec.start").await;
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["details"]["via"], "mcp", "{starts:?}");
    assert_eq!(starts[0]["details"]["agent"], CLIENT, "{starts:?}");
    let refusals = w.audit("exec.refused").await;
    assert_eq!(refusals[0]["details"]["via"], "mcp", "{refusals:?}");
    assert_eq!(refusals[0]["details"]["agent"], CLIENT, "{refusals:?}");

    // logs_tail: the newest lines of a log source, masked, filtered on the
    // masked text, never following.
    let mut lines = String::new();
    for i in 0..20_000 {
        lines.push_str(&format!("{i:05} GET /orders ok\n"));
    }
    lines.push_str("login by alice.martin@example.com failed\n");
    std::fs::write(&log, &lines).unwrap();
    let tail = agent
        .call("logs_tail", json!({"connection": "applogs"}))
        .await;
    assert_eq!(tail["status"], "completed", "{tail}");
    let text = tail["result"]["stdout"].as_str().unwrap();
    assert!(
        text.ends_with("19999 GET /orders ok\nlogin by [email] failed\n"),
        "the newest lines, masked: {}",
        &text[text.len().saturating_sub(200)..]
    );
    assert_eq!(tail["result"]["truncated"], true);
    assert!(text.len() <= 256 * 1024 && text.starts_with(|c: char| c.is_ascii_digit()));
    let grepped = agent
        .call(
            "logs_tail",
            json!({"connection": "applogs", "grep": "\\[email\\]"}),
        )
        .await;
    assert_eq!(
        grepped["result"]["stdout"], "login by [email] failed\n",
        "{grepped}"
    );
    let probing = agent
        .call(
            "logs_tail",
            json!({"connection": "applogs", "grep": "alice\\.martin"}),
        )
        .await;
    assert_eq!(
        probing["result"]["stdout"], "",
        "grep cannot probe a masked value"
    );
    let unknown = agent
        .call(
            "logs_tail",
            json!({"connection": "applogs", "source": "nope"}),
        )
        .await;
    assert_eq!(unknown["status"], "failed", "{unknown}");
    let logs_starts = w.audit("logs.start").await;
    assert_eq!(logs_starts.len(), 3, "{logs_starts:?}");
    assert_eq!(logs_starts[0]["details"]["via"], "mcp", "{logs_starts:?}");
    assert_eq!(
        logs_starts[0]["details"]["agent"], CLIENT,
        "{logs_starts:?}"
    );
    assert!(!w.audit_export().await.contains("alice.martin@example.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_client_signs_its_human_in_with_oauth_and_pkce_in_a_real_browser() {
    let w = world().await;
    // The SDK meets 401 at /mcp, discovers this gateway as its
    // authorization server, registers and sends its human's browser here.
    let mut agent = Agent::spawn(&w, "--oauth");
    let asked = agent.answer().await;
    let authorize = asked["authorize"]
        .as_str()
        .unwrap_or_else(|| panic!("the agent asks for a browser: {asked}"))
        .to_owned();
    let gateway = w.gw.api_url().to_string();
    assert!(
        authorize.starts_with(&format!("{gateway}/oauth/authorize?"))
            && authorize.contains("code_challenge_method=S256")
            && authorize.contains("code_challenge="),
        "{authorize}"
    );

    // The human: signed out, so the sign-in page first, then the consent.
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.goto(&authorize).await;
    assert_eq!(browser.path().await, "/signin");
    browser.fill("#token", &w.alice.token).await;
    browser.click("#signin").await;
    let consent = browser.wait_text("#consent-client").await;
    assert!(
        consent.contains(CLIENT) && consent.contains("alice"),
        "the page names the client and who it will act as: {consent}"
    );
    let redirect = browser.wait_text("#consent-redirect").await;
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    browser.screenshot("console-oauth-consent").await;
    browser.click("#allow").await;

    // The agent now holds alice's token: it acts as her, masked.
    let ready = agent.answer().await;
    assert_eq!(ready["ready"], true, "{ready}");
    browser.close().await;
    let me = agent.call("whoami", json!({})).await;
    assert_eq!(me["result"]["identity"], "alice", "{me}");
    let rows = agent
        .call(
            "query",
            json!({"connection": "pg-prod", "sql": "SELECT email FROM customers ORDER BY id LIMIT 1"}),
        )
        .await;
    assert_eq!(cells(&rows), vec!["[email]".to_string()], "{rows}");

    // Audited: alice's consent naming the client, the token it got.
    let consents = w.audit("oauth.consent").await;
    let consent = consents.last().expect("an oauth.consent event");
    assert_eq!(consent["actor"], "alice", "{consent}");
    assert_eq!(consent["details"]["decision"], "allowed", "{consent}");
    assert_eq!(consent["details"]["agent"], CLIENT, "{consent}");
    let created = w.audit("token.create").await;
    let token = created
        .iter()
        .rev()
        .find(|e| e["details"]["via"] == "oauth")
        .unwrap_or_else(|| panic!("a token.create via oauth: {created:?}"));
    assert_eq!(token["actor"], "alice", "{token}");
    assert_eq!(token["details"]["agent"], CLIENT, "{token}");

    // Revoking that token ends the client's access at its next call.
    let token_id = token["target"].as_str().unwrap().to_owned();
    let gone = w
        .admin
        .delete(&format!("/v1/admin/tokens/{token_id}"))
        .await
        .unwrap();
    assert!(gone.status < 300, "{}", gone.body);
    // Its next call meets 401, so the client asks its human again.
    agent
        .send(json!({"op": "call", "tool": "whoami", "args": {}}))
        .await;
    let again = agent.answer().await;
    assert!(
        again["authorize"]
            .as_str()
            .is_some_and(|u| u.contains("/oauth/authorize?")),
        "the revoked token is refused and the client signs in again: {again}"
    );
}

/// Registers a client the way the SDK does (its name an XSS probe);
/// returns its id.
async fn register(w: &World, redirect: &str) -> String {
    let registered = w
        .alice
        .api
        .with_token(None)
        .send_raw(
            "POST",
            "/oauth/register",
            "application/json",
            &json!({"client_name": "<b>probe</b>", "redirect_uris": [redirect]}).to_string(),
        )
        .await
        .unwrap();
    expect(&registered, 201)["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// POSTs a form to the token endpoint, as a client does (no token).
async fn token_call(w: &World, pairs: &[(&str, String)]) -> ApiResponse {
    let body = reqwest::Url::parse_with_params("http://x/", pairs)
        .unwrap()
        .query()
        .unwrap_or_default()
        .to_string();
    w.alice
        .api
        .with_token(None)
        .send_raw(
            "POST",
            "/oauth/token",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await
        .unwrap()
}

/// The `code` of a consent answer's redirect.
fn code_in(location: Option<String>) -> String {
    let to = reqwest::Url::parse(&location.expect("a redirect")).unwrap();
    to.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code in {to}"))
        .1
        .into_owned()
}

/// A value between `marker` and the next quote in a page.
fn after(body: &str, marker: &str) -> String {
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {body}"))
        + marker.len();
    let end = body[start..].find('"').unwrap() + start;
    body[start..end].replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_refuses_what_a_client_or_a_forger_gets_wrong() {
    crypto();
    let w = world().await;
    let gw = w.gw.api_url().to_string();
    let api = w.alice.api.with_token(None);
    let metadata = expect(
        &api.get("/.well-known/oauth-authorization-server")
            .await
            .unwrap(),
        200,
    );
    assert_eq!(metadata["issuer"], gw.as_str(), "{metadata}");
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let resource = expect(
        &api.get("/.well-known/oauth-protected-resource/mcp")
            .await
            .unwrap(),
        200,
    );
    assert_eq!(resource["authorization_servers"], json!([gw.as_str()]));

    // Registration: only redirect URIs a code may safely reach.
    for bad in ["http://evil.example.com/cb", "javascript:alert(1)"] {
        let refused = api
            .send_raw(
                "POST",
                "/oauth/register",
                "application/json",
                &json!({"redirect_uris": [bad]}).to_string(),
            )
            .await
            .unwrap();
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
        assert_eq!(
            refused.json()["error"],
            "invalid_redirect_uri",
            "{}",
            refused.body
        );
    }
    let malformed = api
        .send_raw(
            "POST",
            "/oauth/register",
            "application/json",
            "{\"redirect_uris\": ",
        )
        .await
        .unwrap();
    assert_eq!(
        malformed.json()["error"],
        "invalid_client_metadata",
        "{}",
        malformed.body
    );

    let redirect = "http://127.0.0.1:9/callback";
    let client_id = register(&w, redirect).await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let authorize = |client: &str, redirect: &str, pkce: bool| {
        let mut url = reqwest::Url::parse(&format!("{gw}/oauth/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "st4te");
        if pkce {
            url.query_pairs_mut()
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
        url.to_string()
    };
    let mut http = Http::new(&w.ca_file());

    // An altered client id, a redirect URI it never registered: a page,
    // never a redirect.
    let forged = format!("{}x", &client_id);
    let page = http.get(&authorize(&forged, redirect, true)).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("not registered"), "{}", page.body);
    let elsewhere = http
        .get(&authorize(&client_id, "http://127.0.0.1:9/elsewhere", true))
        .await;
    assert_eq!(elsewhere.status, 400, "{}", elsewhere.body);
    assert!(elsewhere.location.is_none());
    // Without PKCE: the error goes back to the client.
    let no_pkce = http.get(&authorize(&client_id, redirect, false)).await;
    assert_eq!(no_pkce.status, 303);
    let location = no_pkce.location.unwrap();
    assert!(
        location.starts_with(redirect)
            && location.contains("error=invalid_request")
            && location.contains("state=st4te"),
        "{location}"
    );

    // Signed out: to the sign-in page and back to the consent after it.
    let to_signin = http.get(&authorize(&client_id, redirect, true)).await;
    assert_eq!(to_signin.status, 303);
    let signin = to_signin.location.unwrap();
    assert!(
        signin.starts_with("/signin?return_to=%2Foauth%2Fauthorize"),
        "{signin}"
    );
    let form = http.get(&format!("{gw}{signin}")).await;
    let check = after(&form.body, "name=\"signin_check\" value=\"");
    let return_to = after(&form.body, "name=\"return_to\" value=\"");
    let signed_in = http
        .post_form(
            &format!("{gw}/signin"),
            &[
                ("signin_check", &check),
                ("token", &w.alice.token),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let back = signed_in.location.unwrap();
    assert!(back.starts_with("/oauth/authorize?"), "{back}");
    let consent = http.get(&format!("{gw}{back}")).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    // The client's chosen name is text, not markup.
    assert!(
        consent.body.contains("&lt;b&gt;probe&lt;/b&gt;") && !consent.body.contains("<b>probe</b>"),
        "{}",
        consent.body
    );
    let csp = consent.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    let csrf = after(&consent.body, "name=\"csrf_token\" value=\"");
    let fields = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect),
        ("state", "st4te"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];

    // A forged cross-site POST (no CSRF token) issues nothing.
    let mut forged_post: Vec<(&str, &str)> = fields.to_vec();
    forged_post.push(("decision", "allow"));
    let forged_answer = http
        .post_form(&format!("{gw}/oauth/authorize"), &forged_post)
        .await;
    assert_eq!(forged_answer.status, 403, "{}", forged_answer.body);
    assert!(forged_answer.location.is_none());

    // Denied: the client hears `access_denied`, and it is audited.
    let mut deny = fields.to_vec();
    deny.extend([("decision", "deny"), ("csrf_token", csrf.as_str())]);
    let denied = http
        .post_form(&format!("{gw}/oauth/authorize"), &deny)
        .await;
    assert_eq!(denied.status, 303, "{}", denied.body);
    let denied_to = denied.location.unwrap();
    assert!(
        denied_to.starts_with(redirect) && denied_to.contains("error=access_denied"),
        "{denied_to}"
    );
    let consents = w.audit("oauth.consent").await;
    assert_eq!(consents.last().unwrap()["details"]["decision"], "denied");

    // Allowed: a code, redeemable once, only with the right verifier.
    let mut allow = fields.to_vec();
    allow.extend([("decision", "allow"), ("csrf_token", csrf.as_str())]);
    let allowed = http
        .post_form(&format!("{gw}/oauth/authorize"), &allow)
        .await;
    let to = reqwest::Url::parse(&allowed.location.unwrap()).unwrap();
    let pairs: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "st4te");
    assert_eq!(pairs["iss"], gw);
    let code = pairs["code"].clone();
    let redeem = |code: &str, client: &str| {
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("client_id", client),
            ("code_verifier", verifier),
        ]
        .map(|(k, v)| (k, v.to_owned()))
    };
    let other_client = register(&w, redirect).await;
    let wrong_client = token_call(&w, &redeem(&code, &other_client)).await;
    assert_eq!(
        wrong_client.json()["error"],
        "invalid_grant",
        "{}",
        wrong_client.body
    );
    // That attempt used the code up: even the right verifier is refused now.
    let replay = token_call(&w, &redeem(&code, &client_id)).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(replay.json()["error"], "invalid_grant", "{}", replay.body);

    // A fresh code: a wrong verifier is refused, the right one gets a token
    // that works as alice and only once.
    let again = http
        .post_form(&format!("{gw}/oauth/authorize"), &allow)
        .await;
    let mut wrong = redeem(&code_in(again.location), &client_id);
    wrong[4].1 = "x".repeat(43);
    let wrong_verifier = token_call(&w, &wrong).await;
    assert_eq!(
        wrong_verifier.json()["error"],
        "invalid_grant",
        "{}",
        wrong_verifier.body
    );
    let a_third = http
        .post_form(&format!("{gw}/oauth/authorize"), &allow)
        .await;
    let good = redeem(&code_in(a_third.location), &client_id);
    let issued = token_call(&w, &good).await;
    let issued = expect(&issued, 200);
    assert_eq!(issued["token_type"], "Bearer");
    let token = issued["access_token"].as_str().unwrap();
    let whoami = expect(
        &w.alice
            .api
            .with_token(Some(token))
            .get("/v1/whoami")
            .await
            .unwrap(),
        200,
    );
    assert_eq!(whoami["identity"], "alice", "{whoami}");
    let twice = token_call(&w, &good).await;
    assert_eq!(twice.json()["error"], "invalid_grant", "{}", twice.body);
    let unsupported = token_call(
        &w,
        &[
            ("grant_type", "password".to_owned()),
            ("username", "a".to_owned()),
        ],
    )
    .await;
    assert_eq!(
        unsupported.json()["error"],
        "unsupported_grant_type",
        "{}",
        unsupported.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consent_signs_its_human_in_with_single_sign_on_first() {
    crypto();
    let sso = crate::support::sso::sso_world().await;
    let w = &sso.world;
    let gw = w.gw.api_url().to_string();
    let redirect = "http://127.0.0.1:9/callback";
    let client_id = register(w, redirect).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let mut authorize = reqwest::Url::parse(&format!("{gw}/oauth/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &format!("{gw}/mcp"));
    let mut http = Http::new(&w.ca_file());
    let to_signin = http.get(authorize.as_str()).await;
    let signin = http
        .get(&format!("{gw}{}", to_signin.location.unwrap()))
        .await;
    // The provider's button carries the way back to the consent page.
    let login = format!("/sso/login?{}", after(&signin.body, "href=\"/sso/login?"));
    assert!(login.contains("return_to=%2Foauth%2Fauthorize"), "{login}");
    let begun = http.get(&format!("{gw}{login}")).await;
    assert_eq!(begun.status, 303, "{}", begun.body);
    let at_idp = http
        .get(&crate::support::sso::as_person(
            &begun.location.unwrap(),
            "carol",
        ))
        .await;
    let landed = http.get(&at_idp.location.unwrap()).await;
    assert_eq!(landed.status, 303, "{}", landed.body);
    let back = landed.location.unwrap();
    assert!(back.starts_with("/oauth/authorize?"), "{back}");
    let consent = http.get(&format!("{gw}{back}")).await;
    assert!(consent.body.contains("carol"), "{}", consent.body);
    let csrf = after(&consent.body, "name=\"csrf_token\" value=\"");
    let allowed = http
        .post_form(
            &format!("{gw}/oauth/authorize"),
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", redirect),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "S256"),
                ("resource", &format!("{gw}/mcp")),
                ("decision", "allow"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    let code = code_in(allowed.location);
    let issued = token_call(
        w,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ]
        .map(|(k, v)| (k, v.to_owned())),
    )
    .await;
    let token = expect(&issued, 200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let whoami = expect(
        &w.alice
            .api
            .with_token(Some(&token))
            .get("/v1/whoami")
            .await
            .unwrap(),
        200,
    );
    assert_eq!(whoami["identity"], "carol", "{whoami}");
}
