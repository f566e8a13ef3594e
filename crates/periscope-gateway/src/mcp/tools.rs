//! The tools an agent may call, each acting as the token's identity.
//!
//! Every tool answers with one [`Outcome`]; every call is audited as
//! `mcp.call` (tool, status, connection; never an argument's value) before
//! its answer leaves, with `via = "mcp"` and the client's name. There is no
//! approve tool, on purpose: approval stays human.

use std::time::Duration;

use periscope_api as api;
use periscope_audit::actions;
use periscope_shield::grants::GrantEvent;
use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::json;

use super::McpCaller;
use super::outcome::{Outcome, Refusal, Status};
use crate::agent::Agent;
use crate::gateway::Gateway;
use crate::grants::GrantError;
use crate::sql_client::{self, ResultLimits, SqlError, SqlRequest};

/// Longest SQL text a `query` call accepts.
pub const MAX_SQL_BYTES: usize = 64 * 1024;
/// Longest `wait_for_grant` wait.
pub const MAX_WAIT: Duration = Duration::from_secs(120);
/// `wait_for_grant`'s wait when the call names none.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// Most audit events `audit_search` returns.
const MAX_AUDIT_EVENTS: u32 = 200;

/// The server one MCP session talks to; cheap, made per session.
#[derive(Clone)]
pub struct PeriscopeMcp {
    gateway: Gateway,
    tools: ToolRouter<PeriscopeMcp>,
}

impl std::fmt::Debug for PeriscopeMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriscopeMcp").finish_non_exhaustive()
    }
}

/// Who is calling: the identity (from the bearer token) and the agent.
struct Who {
    mcp: McpCaller,
    agent: Agent,
}

/// `{connection}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionArgs {
    /// The connection's name, as `connections_list` gives it.
    pub connection: String,
}

/// `query`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryArgs {
    /// A PostgreSQL connection's name.
    pub connection: String,
    /// The SQL, as you would type it in psql (read-only unless a grant lifts `write`).
    pub sql: String,
    /// Most rows returned (default 200, at most 5000).
    #[serde(default)]
    pub max_rows: Option<usize>,
    /// Most bytes of cell text returned (default 262144, at most 4194304).
    #[serde(default)]
    pub max_bytes: Option<usize>,
}

/// `schema_describe`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaArgs {
    /// A PostgreSQL connection's name.
    pub connection: String,
    /// Only this schema (`public`).
    #[serde(default)]
    pub schema: Option<String>,
    /// Only this table.
    #[serde(default)]
    pub table: Option<String>,
}

/// `request_grant`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantArgs {
    /// The connection.
    pub connection: String,
    /// Shields to lift (`unmask:email`, `write`, `command:delete *`), as a refusal names them.
    pub lifts: Vec<String>,
    /// How long (`30m`, `2h`), at most the role's maximum.
    pub duration: String,
    /// Why: the incident or ticket and a sentence; approvers read it.
    pub reason: String,
}

/// `{request_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestArgs {
    /// The request id (`req_...`) `request_grant` returned.
    pub request_id: String,
}

/// `wait_for_grant`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// The request id (`req_...`) `request_grant` returned.
    pub request_id: String,
    /// Longest wait in seconds (default 30, at most 120).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// `exec`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// An exec connection's name.
    pub connection: String,
    /// The command line as separate arguments (`["grep", "ERROR", "/var/log/app.log"]`).
    pub args: Vec<String>,
}

/// `logs_tail`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsTailArgs {
    /// A logs connection's name.
    pub connection: String,
    /// The log source (may be left out when the connection has only one).
    #[serde(default)]
    pub source: Option<String>,
    /// Only lines from this long ago (`15m`, `1h`).
    #[serde(default)]
    pub since: Option<String>,
    /// Only lines matching this regular expression, applied to the masked text.
    #[serde(default)]
    pub grep: Option<String>,
}

/// `audit_search`'s arguments (administrators only).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditArgs {
    /// Exactly this actor.
    #[serde(default)]
    pub actor: Option<String>,
    /// Exactly this action, or a prefix ending in `.` (`query.`).
    #[serde(default)]
    pub action: Option<String>,
    /// Exactly this target.
    #[serde(default)]
    pub target: Option<String>,
    /// Text anywhere in the event.
    #[serde(default)]
    pub text: Option<String>,
    /// Most events (default 50, at most 200), newest first.
    #[serde(default)]
    pub limit: Option<u32>,
}

fn outcome_schema() -> std::sync::Arc<rmcp::model::JsonObject> {
    schema_for_output::<Outcome>()
}

#[tool_router(router = tool_router)]
impl PeriscopeMcp {
    /// The server for one MCP session.
    pub fn new(gateway: Gateway) -> PeriscopeMcp {
        PeriscopeMcp {
            gateway,
            tools: Self::tool_router(),
        }
    }

    #[tool(
        description = "Who you act as: the human identity whose token this agent holds, its roles, and whether it administers the gateway. The agent has no identity of its own.",
        output_schema = outcome_schema()
    )]
    async fn whoami(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let config = self.gateway.config();
        let caller = &who.mcp.caller;
        let outcome = Outcome::completed(json!({
            "identity": caller.identity.name,
            "roles": caller.identity.roles,
            "admin": config.policy.is_admin(&caller.policy_identity),
            "token_expires_at": caller.token_expires_at.map(|t| t.unix_timestamp()),
            "via": who.agent.via,
            "client": who.agent.client,
        }));
        self.finish(&who, "whoami", "", outcome).await
    }

    #[tool(
        description = "The connections configured on the gateway (PostgreSQL databases, command sets) and whether you may use each now.",
        output_schema = outcome_schema()
    )]
    async fn connections_list(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let list = crate::api::connection_summaries(&self.gateway, &who.mcp.caller.policy_identity);
        self.finish(&who, "connections_list", "", Outcome::completed(list))
            .await
    }

    #[tool(
        description = "Explains your access to a connection: the roles that cover it, the shields in force (masking per entity, writes, tables), the grants that lift some, and how to request more.",
        output_schema = outcome_schema()
    )]
    async fn policy_explain(
        &self,
        Parameters(args): Parameters<ConnectionArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let outcome = match self
            .gateway
            .decide(&who.mcp.caller.policy_identity, &args.connection)
            .await
        {
            Ok(decision) => Outcome::completed(json!({
                "text": decision.explanation.to_text(),
                "explanation": serde_json::to_value(&decision.explanation).unwrap_or_default(),
            })),
            Err(e) => unavailable(&e),
        };
        self.finish(&who, "policy_explain", &args.connection, outcome)
            .await
    }

    #[tool(
        description = "Tables and columns of a PostgreSQL connection, with each column's type and how it reaches you: masked (the placeholder you will see and the shield that lifts it) or shown. Values in columns not known to be sensitive are still scanned and masked where they hold personal data.",
        output_schema = outcome_schema()
    )]
    async fn schema_describe(
        &self,
        Parameters(args): Parameters<SchemaArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let outcome = super::schema::describe(
            &self.gateway,
            &who.mcp.caller,
            &args.connection,
            args.schema.as_deref(),
            args.table.as_deref(),
        )
        .await;
        self.finish(&who, "schema_describe", &args.connection, outcome)
            .await
    }

    #[tool(
        description = "Runs SQL on a PostgreSQL connection as you, through the same shields as psql: personal data comes back masked (`[email]`), writes and sensitive tables are refused unless a grant lifts their shield. A refusal names the shield and gives the request_grant call that asks for it. Results are bounded (default 200 rows / 256 KiB); `masked` lists the cells that hold masked values.",
        output_schema = outcome_schema()
    )]
    async fn query(
        &self,
        Parameters(args): Parameters<QueryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        if args.sql.len() > MAX_SQL_BYTES {
            let outcome = Outcome::failed(
                format!(
                    "the SQL is {} bytes; a query call takes at most {MAX_SQL_BYTES}",
                    args.sql.len()
                ),
                Some("send a shorter statement".into()),
            );
            return self.finish(&who, "query", &args.connection, outcome).await;
        }
        if args.sql.trim().is_empty() {
            let outcome = Outcome::failed("the SQL is empty", None);
            return self.finish(&who, "query", &args.connection, outcome).await;
        }
        let request = SqlRequest {
            connection: &args.connection,
            identity: who.mcp.caller.name(),
            token: who.mcp.token.as_str(),
            sql: &args.sql,
            agent: Some(&who.agent),
            limits: ResultLimits::bounded(args.max_rows, args.max_bytes),
        };
        let outcome = match sql_client::run(&self.gateway, &request).await {
            Ok(result) => Outcome::completed(result),
            Err(e) => sql_outcome(e),
        };
        self.finish(&who, "query", &args.connection, outcome).await
    }

    #[tool(
        description = "Asks for a grant lifting shields on a connection for a while, with a reason. A human approver decides (never the agent, never the requester): the answer is pending_approval with the request id; follow it with wait_for_grant or grant_status. A role that needs no approval grants at once (completed).",
        output_schema = outcome_schema()
    )]
    async fn request_grant(
        &self,
        Parameters(args): Parameters<GrantArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let body = api::CreateRequest {
            connection: args.connection.clone(),
            lifts: args.lifts,
            duration: args.duration,
            reason: args.reason,
        };
        let outcome = match self.gateway.create_request(&who.mcp.caller, &body).await {
            Ok((request, Some(grant))) => Outcome::completed(json!({
                "request_id": request.id,
                "grant": grant,
            })),
            Ok((request, None)) => Outcome::pending(
                format!(
                    "request {} waits for approval by {} of: {}",
                    request.id,
                    request.approvals_required,
                    request.approver_roles.join(", ")
                ),
                json!({ "request_id": request.id, "request": request }),
            ),
            Err(e) => grant_outcome(e),
        };
        self.finish(&who, "request_grant", &args.connection, outcome)
            .await
    }

    #[tool(
        description = "The state of one of your grant requests: pending_approval, completed (approved, with the grant and its expiry), or failed (denied, cancelled, expired).",
        output_schema = outcome_schema()
    )]
    async fn grant_status(
        &self,
        Parameters(args): Parameters<RequestArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let outcome = self.request_state(&who, &args.request_id).await;
        self.finish(&who, "grant_status", &args.request_id, outcome)
            .await
    }

    #[tool(
        description = "Waits until a grant request is decided (or timeout_secs pass, default 30, at most 120) and returns its state like grant_status. Woken by the gateway's grant events, not by polling.",
        output_schema = outcome_schema()
    )]
    async fn wait_for_grant(
        &self,
        Parameters(args): Parameters<WaitArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let wait = args
            .timeout_secs
            .map_or(DEFAULT_WAIT, Duration::from_secs)
            .min(MAX_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before the first read, so an approval landing between
        // the read and the wait still wakes it.
        let mut bus = self.gateway.subscribe();
        let me = who.mcp.caller.name().to_string();
        let outcome = loop {
            let state = self.request_state(&who, &args.request_id).await;
            if state.status != Status::PendingApproval {
                break state;
            }
            let woken = tokio::select! {
                event = bus.recv() => Some(event),
                () = tokio::time::sleep_until(deadline) => None,
            };
            match woken {
                None => break self.request_state(&who, &args.request_id).await,
                Some(Ok(GrantEvent::Started(started))) if started.identity == me => {}
                Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                Some(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break state,
                // Another identity's grant, or an end: nothing to re-read.
                Some(Ok(_)) => {
                    while tokio::time::Instant::now() < deadline {
                        match tokio::time::timeout_at(deadline, bus.recv()).await {
                            Ok(Ok(GrantEvent::Started(s))) if s.identity == me => break,
                            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => break,
                            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) | Err(_) => {
                                break;
                            }
                            Ok(Ok(_)) => {}
                        }
                    }
                }
            }
        };
        self.finish(&who, "wait_for_grant", &args.request_id, outcome)
            .await
    }

    #[tool(
        description = "Runs an allowed command on an exec connection as you (argv, no shell), its output masked like query results and bounded. Commands outside the connection's patterns are refused; sensitive ones need a grant lifting `command:<pattern>`.",
        output_schema = outcome_schema()
    )]
    async fn exec(
        &self,
        Parameters(args): Parameters<ExecArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let outcome = super::exec::run(
            &self.gateway,
            &who.mcp.caller,
            &who.agent,
            api::ExecRequest {
                connection: args.connection.clone(),
                args: args.args,
            },
        )
        .await;
        self.finish(&who, "exec", &args.connection, outcome).await
    }

    #[tool(
        description = "Reads a log source of a logs connection as you, masked like query results (personal data unless a grant lifts it, secrets always), and returns its newest lines (at most 256 KiB; `truncated` when older ones were left out). Never follows: call again for newer lines.",
        output_schema = outcome_schema()
    )]
    async fn logs_tail(
        &self,
        Parameters(args): Parameters<LogsTailArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let outcome = super::exec::tail(
            &self.gateway,
            &who.mcp.caller,
            &who.agent,
            api::LogsRequest {
                connection: args.connection.clone(),
                source: args.source,
                follow: false,
                since: args.since,
                grep: args.grep,
            },
        )
        .await;
        self.finish(&who, "logs_tail", &args.connection, outcome)
            .await
    }

    #[tool(
        description = "Administrators only: searches the tamper-evident audit log (newest first). Events hold literal-free SQL and masked values, never secrets.",
        output_schema = outcome_schema()
    )]
    async fn audit_search(
        &self,
        Parameters(args): Parameters<AuditArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let outcome = if let Some(refused) = self.admin_only(&who) {
            refused
        } else {
            let limit = args.limit.unwrap_or(50).clamp(1, MAX_AUDIT_EVENTS);
            let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
            let query = periscope_store::AuditQuery {
                actor: non_empty(args.actor),
                action: non_empty(args.action),
                target: non_empty(args.target),
                text: non_empty(args.text),
                limit,
                ..Default::default()
            };
            match self.gateway.store().search_audit(&query).await {
                Ok(events) => Outcome::completed(events),
                Err(e) => unavailable(&e),
            }
        };
        self.finish(&who, "audit_search", "", outcome).await
    }

    #[tool(
        description = "Administrators only: the live sessions through the gateway (who, which connection, since when, under which grants).",
        output_schema = outcome_schema()
    )]
    async fn sessions_list(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let who = who(&ctx)?;
        let outcome = self
            .admin_only(&who)
            .unwrap_or_else(|| Outcome::completed(self.gateway.sessions().list()));
        self.finish(&who, "sessions_list", "", outcome).await
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for PeriscopeMcp {
    /// The SDK's router, after naming an unknown tool and the known ones
    /// (its own error says only "tool not found").
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        if !self.tools.has_route(&request.name) {
            let known: Vec<String> = self
                .tools
                .list_all()
                .into_iter()
                .map(|t| t.name.to_string())
                .collect();
            let mut name: String = request.name.chars().take(64).collect();
            name.retain(|c| !c.is_control());
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`; the tools are: {}", known.join(", ")),
                None,
            ));
        }
        let call = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        self.tools.call(call).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("periscope", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Periscope gateway: you act as the human whose token you hold, through the same \
                 shields. Personal data comes back masked ([email]); a refusal names its shield \
                 and the request_grant call that asks for it; a human approves (never you); \
                 grants expire by themselves. Start with whoami and connections_list.",
            )
    }
}

impl PeriscopeMcp {
    /// Audits the call (`mcp.call`) and renders its outcome; a call whose
    /// record cannot be written does not answer (fail closed).
    async fn finish(
        &self,
        who: &Who,
        tool: &str,
        target: &str,
        outcome: Outcome,
    ) -> Result<CallToolResult, ErrorData> {
        let mut details = json!({
            "via": who.agent.via,
            "agent": who.agent.client,
            "tool": tool,
            "status": outcome.status.as_str(),
            "token_id": who.mcp.caller.token_id,
        });
        if let Some(shield) = outcome.refusal.as_ref().and_then(|r| r.shield.clone()) {
            details["shield"] = shield.into();
        }
        let draft = self
            .gateway
            .draft(who.mcp.caller.name(), actions::MCP_CALL, target)
            .with_details(details);
        if let Err(e) = self.gateway.audit(draft).await {
            tracing::error!(error = %e, tool, "could not audit an MCP call");
            return Ok(Outcome::failed(
                "the gateway could not record this call in its audit log, so it gives no answer; \
                 try again shortly",
                None,
            )
            .into_call_result());
        }
        Ok(outcome.into_call_result())
    }

    fn admin_only(&self, who: &Who) -> Option<Outcome> {
        let config = self.gateway.config();
        if config.policy.is_admin(&who.mcp.caller.policy_identity) {
            return None;
        }
        Some(Outcome::refused(
            "only administrators may use this tool",
            Refusal {
                detail: Some(format!(
                    "`{}` holds no administrator role",
                    who.mcp.caller.name()
                )),
                ..Refusal::default()
            },
        ))
    }

    async fn request_state(&self, who: &Who, id: &str) -> Outcome {
        let request = match self.gateway.get_request(&who.mcp.caller, id).await {
            Ok(r) => r,
            Err(e) => return grant_outcome(e),
        };
        match request.status {
            api::RequestStatus::Pending => Outcome::pending(
                format!(
                    "request {} waits for approval ({} of {} so far)",
                    request.id,
                    request.approvals.len(),
                    request.approvals_required
                ),
                json!({ "request_id": request.id, "request": request }),
            ),
            api::RequestStatus::Approved => {
                let grant = match &request.grant_id {
                    Some(g) => self.gateway.get_grant(&who.mcp.caller, g).await.ok(),
                    None => None,
                };
                Outcome::completed(json!({
                    "request_id": request.id,
                    "request": request,
                    "grant": grant,
                }))
            }
            other => Outcome::failed(
                format!(
                    "request {} was {}{}",
                    request.id,
                    serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    request
                        .decision_reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                Some("request_grant asks again".into()),
            ),
        }
    }
}

/// The caller the authentication layer put in the HTTP request, and the
/// agent's name from the session's `initialize`.
fn who(ctx: &RequestContext<RoleServer>) -> Result<Who, ErrorData> {
    let mcp = ctx
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<McpCaller>())
        .cloned()
        .ok_or_else(|| {
            ErrorData::internal_error(
                "the call reached a tool without an authenticated caller",
                None,
            )
        })?;
    let client = ctx
        .peer
        .peer_info()
        .map(|info| info.client_info.name.clone())
        .unwrap_or_default();
    Ok(Who {
        mcp,
        agent: Agent::mcp(&client),
    })
}

fn unavailable(e: &periscope_store::StoreError) -> Outcome {
    tracing::error!(error = %e, "MCP tool: the store failed");
    Outcome::failed(
        "the gateway cannot read its store right now; try again shortly",
        None,
    )
}

/// A SQL client's answer as an outcome.
fn sql_outcome(e: SqlError) -> Outcome {
    match e {
        SqlError::Refused {
            message,
            detail,
            hint,
            ..
        } => Outcome::refused(message, Refusal::from_hint(hint.as_deref(), detail)),
        SqlError::Rejected { code, message } if code == "42501" || code == "3D000" => {
            Outcome::refused(
                message,
                Refusal {
                    detail: Some(format!("SQLSTATE {code}")),
                    ..Refusal::default()
                },
            )
        }
        SqlError::Rejected { code, message } => {
            Outcome::failed(format!("{message} (SQLSTATE {code})"), None)
        }
        SqlError::Failed {
            code,
            message,
            hint,
        } => {
            let message = match code {
                Some(code) => format!("{message} (SQLSTATE {code})"),
                None => message,
            };
            if hint
                .as_deref()
                .is_some_and(|h| h.contains("periscope request"))
            {
                Outcome::refused(message, Refusal::from_hint(hint.as_deref(), None))
            } else {
                Outcome::failed(message, hint)
            }
        }
        SqlError::Unavailable(message) => Outcome::failed(message, None),
    }
}

/// The grant workflow's refusal as an outcome.
fn grant_outcome(e: GrantError) -> Outcome {
    let hint = e.hint().map(str::to_owned);
    match e {
        GrantError::Forbidden { message, .. } => Outcome::refused(
            message,
            Refusal {
                request_command: hint,
                ..Refusal::default()
            },
        ),
        GrantError::Store(e) => unavailable(&e),
        other => Outcome::failed(other.to_string(), hint),
    }
}
