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

use crate::support::proxy::{World, expect, world};

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
        let mut agent = Agent {
            child,
            stdin,
            stdout,
        };
        let ready = agent.answer().await;
        assert_eq!(ready["ready"], true, "{ready}");
        agent
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
    let token_id = expect(&tokens, 200)[0]["id"].as_str().unwrap().to_owned();
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

[[role]]
name = "ops"
connections = ["files"]
may_lift = ["command:*"]
max_duration = "1h"
approvals = 1
approvers = ["lead"]
"#,
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

    // The command's own events carry the agent.
    let starts = w.audit("exec.start").await;
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["details"]["via"], "mcp", "{starts:?}");
    assert_eq!(starts[0]["details"]["agent"], CLIENT, "{starts:?}");
}
