//! Query from the browser: SQL on a PostgreSQL connection through the very
//! path `psql` takes.
//!
//! - **One path.** The statement runs through [`crate::sql_client`], which
//!   opens a session on the gateway's own PostgreSQL listener over loopback
//!   TLS as the signed-in identity: the decision, masking, refusals with
//!   their `periscope request ...` hint, audit (`via: "console"`, `agent`:
//!   the browser session's id) and grant expiry are the listener's, not a
//!   copy of them.
//! - **Credential.** A browser session holds no API token, so the console
//!   mints a `periscope connect` session secret for the identity and the
//!   connection ([`Gateway::issue_session_secret_for`], audited as
//!   `token.create` with `via: "console"`) and keeps it in memory, per
//!   browser session and connection, until a minute before it expires. It
//!   is never sent to the browser.
//! - **Bounded.** At most [`LIMITS`] rows and bytes per statement; the
//!   last result of each browser session is kept in memory (at most
//!   [`MAX_KEPT`] sessions' worth, for [`KEEP_FOR`]) so its pages can be
//!   turned without running the statement again.
//! - **Masked cells** are marked (`td.masked`, the entity in `data-masked`)
//!   from the placeholders the shields wrote, as the MCP tool reports them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use periscope_policy::ConnectionKind;
use serde::Deserialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::view::{self, csrf_field};
use super::{Viewer, is_htmx, posted, viewer};
use crate::agent::Agent;
use crate::gateway::Gateway;
use crate::mcp::outcome::Refusal;
use crate::sql_client::{self, ResultLimits, SqlError, SqlRequest, SqlResult};

/// Rows and bytes one statement from the browser returns at most.
pub const LIMITS: ResultLimits = ResultLimits {
    max_rows: 1000,
    max_bytes: 1024 * 1024,
};
/// Longest SQL text accepted.
const MAX_SQL: usize = 64 * 1024;
/// Rows a page of results shows.
pub const PAGE_ROWS: usize = 50;
/// Browser sessions whose last result is kept for paging.
const MAX_KEPT: usize = 64;
/// How long a result is kept for paging.
const KEEP_FOR: Duration = Duration::from_secs(30 * 60);
/// A kept session secret is replaced this long before it expires.
const SECRET_MARGIN: time::Duration = time::Duration::seconds(60);

/// Browser session id and connection: what a kept session secret is for.
type SecretKey = (String, String);

/// The console's query state: session secrets and last results, in memory
/// only (a restart forgets them; a browser just runs its query again).
#[derive(Default)]
pub(crate) struct QueryState {
    /// By (browser session id, connection): the secret and its expiry.
    secrets: Mutex<HashMap<SecretKey, (Zeroizing<String>, OffsetDateTime)>>,
    /// By browser session id: its last result.
    results: Mutex<HashMap<String, Arc<Kept>>>,
}

/// One browser session's last result.
struct Kept {
    /// Names this result in page links, so a stale link says so.
    id: String,
    connection: String,
    result: SqlResult,
    at: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is one insert, lookup or removal.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl QueryState {
    fn secret(
        &self,
        web: &str,
        connection: &str,
        now: OffsetDateTime,
    ) -> Option<Zeroizing<String>> {
        let mut secrets = lock(&self.secrets);
        secrets.retain(|_, (_, expires)| *expires - SECRET_MARGIN > now);
        secrets
            .get(&(web.to_string(), connection.to_string()))
            .map(|(s, _)| s.clone())
    }

    fn keep_secret(
        &self,
        web: &str,
        connection: &str,
        secret: Zeroizing<String>,
        expires: OffsetDateTime,
    ) {
        lock(&self.secrets).insert((web.to_string(), connection.to_string()), (secret, expires));
    }

    fn forget_secret(&self, web: &str, connection: &str) {
        lock(&self.secrets).remove(&(web.to_string(), connection.to_string()));
    }

    fn keep(&self, web: &str, connection: &str, result: SqlResult) -> Arc<Kept> {
        let kept = Arc::new(Kept {
            id: crate::identity::random_id("qr_"),
            connection: connection.to_string(),
            result,
            at: Instant::now(),
        });
        let mut results = lock(&self.results);
        results.retain(|_, k| k.at.elapsed() < KEEP_FOR);
        if results.len() >= MAX_KEPT
            && !results.contains_key(web)
            && let Some(oldest) = results
                .iter()
                .min_by_key(|(_, k)| k.at)
                .map(|(w, _)| w.clone())
        {
            results.remove(&oldest);
        }
        results.insert(web.to_string(), Arc::clone(&kept));
        kept
    }

    fn kept(&self, web: &str) -> Option<Arc<Kept>> {
        lock(&self.results)
            .get(web)
            .filter(|k| k.at.elapsed() < KEEP_FOR)
            .cloned()
    }
}

/// The PostgreSQL connections the viewer's roles cover.
fn pg_connections(gateway: &Gateway, viewer: &Viewer) -> Vec<String> {
    let config = gateway.config();
    config
        .config
        .connections
        .iter()
        .filter(|c| c.kind == ConnectionKind::Postgres)
        .filter(|c| {
            !config
                .policy
                .covering_roles(&viewer.caller().policy_identity, &c.name)
                .is_empty()
        })
        .map(|c| c.name.clone())
        .collect()
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueryPageQuery {
    connection: Option<String>,
}

/// `GET /query`: the form, and the last result of this browser session.
pub(crate) async fn page(
    State(gateway): State<Gateway>,
    Extension(state): Extension<Arc<QueryState>>,
    headers: HeaderMap,
    Query(q): Query<QueryPageQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let kept = state.kept(&viewer.web.session_id);
    let chosen = q
        .connection
        .or_else(|| kept.as_ref().map(|k| k.connection.clone()));
    let results = match &kept {
        Some(k) => result_table(k, 0),
        None => html! { div #results {} },
    };
    render_page(
        &gateway,
        &viewer,
        chosen.as_deref(),
        "",
        results,
        StatusCode::OK,
    )
}

fn render_page(
    gateway: &Gateway,
    viewer: &Viewer,
    chosen: Option<&str>,
    sql: &str,
    results: Markup,
    status: StatusCode,
) -> Response {
    let connections = pg_connections(gateway, viewer);
    let body = html! {
        @if connections.is_empty() {
            p.muted #no-pg { "Your roles cover no PostgreSQL connection." }
        } @else {
            form #query-form method="post" action="/query" {
                (csrf_field(viewer))
                label for="query-connection" { "Connection" }
                select #query-connection name="connection" {
                    @for c in &connections {
                        option value=(c) selected[Some(c.as_str()) == chosen] { (c) }
                    }
                }
                label for="sql" { "SQL" }
                textarea #sql.sql name="sql" required spellcheck="false"
                    placeholder="SELECT id, email FROM customers ORDER BY id LIMIT 20" { (sql) }
                p {
                    button.primary #run type="submit" hx-post="/query" hx-target="#results" hx-swap="outerHTML" { "Run" }
                    span.help {
                        " Through the same shields as psql: personal data comes back masked, "
                        "writes and sensitive tables are refused unless a grant lifts their shield. "
                        "At most " (LIMITS.max_rows) " rows (" (LIMITS.max_bytes / 1024) " KiB); every statement is audited."
                    }
                }
            }
        }
        (results)
    };
    view::page(status, "Query", Some(viewer), "query", body)
}

/// `POST /query` (`connection`, `sql`): runs the statement as the viewer.
pub(crate) async fn run(
    State(gateway): State<Gateway>,
    Extension(state): Extension<Arc<QueryState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, form) = match posted(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let connection = form.get("connection").unwrap_or_default().to_string();
    // The SQL as typed (not trimmed inside: only the form's own whitespace).
    let sql = form
        .0
        .iter()
        .find(|(k, _)| k == "sql")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let results = execute(&gateway, &state, &viewer, &connection, &sql).await;
    if is_htmx(&headers) {
        return view::html_response(StatusCode::OK, results);
    }
    render_page(
        &gateway,
        &viewer,
        Some(&connection),
        &sql,
        results,
        StatusCode::OK,
    )
}

async fn execute(
    gateway: &Gateway,
    state: &QueryState,
    viewer: &Viewer,
    connection: &str,
    sql: &str,
) -> Markup {
    if sql.trim().is_empty() {
        return failed("Enter a statement to run.", None);
    }
    if sql.len() > MAX_SQL {
        return failed(
            &format!(
                "The statement is {} bytes; the console takes at most {MAX_SQL}.",
                sql.len()
            ),
            Some("use psql through `periscope connect` for longer scripts"),
        );
    }
    let config = gateway.config();
    match config.config.connection(connection).map(|c| c.kind) {
        Some(ConnectionKind::Postgres) => {}
        Some(_) => {
            return failed(
                &format!(
                    "`{connection}` is not a PostgreSQL connection: the console runs SQL only."
                ),
                None,
            );
        }
        None if connection.is_empty() => return failed("Choose a connection.", None),
        // Unknown: the gateway's own refusal (audited) says so below.
        None => {}
    }
    drop(config);
    let web = viewer.web.session_id.clone();
    let agent = Agent::console(&web);
    // A kept secret may have been revoked meanwhile (its identity disabled
    // and enabled again...): on a refused login, mint a new one once.
    for attempt in 0..2 {
        let secret = match state.secret(&web, connection, gateway.now()) {
            Some(secret) => secret,
            None => match gateway
                .issue_session_secret_for(
                    viewer.caller(),
                    connection,
                    "console",
                    format!("web console ({web}) on {connection}"),
                )
                .await
            {
                Ok((secret, expires)) => {
                    state.keep_secret(&web, connection, secret.clone(), expires);
                    secret
                }
                Err(e) => {
                    let f = crate::api::Failure::from(e);
                    return failed(&f.message, f.hint.as_deref());
                }
            },
        };
        let request = SqlRequest {
            connection,
            identity: viewer.name(),
            token: secret.as_str(),
            sql,
            agent: Some(&agent),
            limits: LIMITS,
        };
        match sql_client::run(gateway, &request).await {
            Ok(result) => {
                let kept = state.keep(&web, connection, result);
                return result_table(&kept, 0);
            }
            Err(SqlError::Rejected { code, .. }) if code == "28P01" && attempt == 0 => {
                state.forget_secret(&web, connection);
            }
            Err(e) => return error_view(connection, e),
        }
    }
    failed("The gateway refused the console's session secret.", None)
}

/// A statement that did not run, as the shields or the server said.
fn error_view(connection: &str, e: SqlError) -> Markup {
    match e {
        SqlError::Refused {
            code,
            message,
            detail,
            hint,
        } => {
            let refusal = Refusal::from_hint(hint.as_deref(), detail.clone());
            let request_link = refusal.request_grant.as_ref().map(|call| {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("connection", &call.arguments.connection)
                    .append_pair("lifts", &call.arguments.lifts.join(","))
                    .append_pair("duration", &call.arguments.duration)
                    .finish();
                format!("/request?{query}")
            });
            html! {
                div #results {
                    div.refusal #refusal role="alert" {
                        p.shield-line {
                            (view::shield_icon())
                            " Refused"
                            @if let Some(shield) = &refusal.shield {
                                " by the shield " code #refused-shield { (shield) }
                            }
                            " on " (connection) " "
                            span.muted { "(SQLSTATE " (code) ")" }
                        }
                        p #refusal-message { (message) }
                        @if let Some(detail) = &detail { p.muted { (detail) } }
                        @if let Some(hint) = &hint {
                            p { "To ask for it: " code #refusal-hint { (hint) } }
                        }
                        @if let Some(link) = &request_link {
                            p { a.button.primary #request-lift href=(link) { "Request this grant" } }
                        }
                    }
                }
            }
        }
        SqlError::Rejected { message, .. } => failed(&message, None),
        SqlError::Failed {
            message,
            hint,
            code,
        } => {
            let message = match code {
                Some(code) => format!("{message} (SQLSTATE {code})"),
                None => message,
            };
            failed(&message, hint.as_deref())
        }
        SqlError::Unavailable(message) => failed(&message, None),
    }
}

fn failed(message: &str, hint: Option<&str>) -> Markup {
    html! {
        div #results {
            p.notice.error #query-error role="alert" {
                (message)
                @if let Some(hint) = hint { br; span.muted { (hint) } }
            }
        }
    }
}

/// One page of a kept result.
fn result_table(kept: &Kept, page: usize) -> Markup {
    let r = &kept.result;
    let pages = r.rows.len().div_ceil(PAGE_ROWS).max(1);
    let page = page.min(pages - 1);
    let first = page * PAGE_ROWS;
    let shown = &r.rows[first.min(r.rows.len())..(first + PAGE_ROWS).min(r.rows.len())];
    let masked: HashMap<(usize, usize), String> = r
        .masked
        .iter()
        .map(|m| ((m.row, m.column), m.entities.join(" ")))
        .collect();
    let masked_total = r.masked.len();
    let link = |p: usize| format!("/query/results?r={}&page={p}", kept.id);
    html! {
        div #results data-result=(kept.id) {
            p #result-summary {
                @if r.columns.is_empty() {
                    "Done"
                    @if let Some(n) = r.rows_affected { ": " (n) " row(s)." } @else { "." }
                } @else {
                    (r.rows.len()) " row(s)"
                    @if r.truncated { ", cut at the console's bound (" (LIMITS.max_rows) " rows, " (LIMITS.max_bytes / 1024) " KiB)" }
                    "; " span #masked-count { (masked_total) } " cell(s) masked"
                    @if pages > 1 { "; page " (page + 1) " of " (pages) }
                    "."
                }
            }
            @if !r.columns.is_empty() {
                div.scroll {
                    table #result-table {
                        thead { tr { @for c in &r.columns { th { (c) } } } }
                        tbody {
                            @for (i, row) in shown.iter().enumerate() {
                                tr {
                                    @for (j, cell) in row.iter().enumerate() {
                                        @let entities = masked.get(&(first + i, j));
                                        @match (cell, entities) {
                                            (None, _) => td.null { "NULL" },
                                            (Some(text), Some(entities)) => td.masked data-masked=(entities) title={ "masked: " (entities) } { (text) },
                                            (Some(text), None) => td { (text) },
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if pages > 1 {
                    p.pager {
                        @if page > 0 {
                            a #prev-page href=(link(page - 1)) hx-get=(link(page - 1)) hx-target="#results" hx-swap="outerHTML" { "Previous" }
                            " "
                        }
                        @if page + 1 < pages {
                            a #next-page href=(link(page + 1)) hx-get=(link(page + 1)) hx-target="#results" hx-swap="outerHTML" { "Next" }
                        }
                    }
                }
                p.help { "Cells marked " span.masked-sample { "like this" } " hold values the shields masked." }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResultsQuery {
    r: Option<String>,
    page: Option<usize>,
}

/// `GET /query/results?r=ID&page=N`: a page of this browser session's last
/// result (a fragment for htmx, the page otherwise).
pub(crate) async fn results(
    State(gateway): State<Gateway>,
    Extension(state): Extension<Arc<QueryState>>,
    headers: HeaderMap,
    Query(q): Query<ResultsQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let kept = state
        .kept(&viewer.web.session_id)
        .filter(|k| q.r.as_deref().is_none_or(|r| r == k.id));
    let (markup, connection) = match &kept {
        Some(k) => (
            result_table(k, q.page.unwrap_or(0)),
            Some(k.connection.clone()),
        ),
        None => (
            failed(
                "That result is no longer kept (a newer statement replaced it, or it is older than 30 minutes): run the statement again.",
                None,
            ),
            None,
        ),
    };
    if is_htmx(&headers) {
        return view::html_response(StatusCode::OK, markup);
    }
    render_page(
        &gateway,
        &viewer,
        connection.as_deref(),
        "",
        markup,
        StatusCode::OK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql_client::MaskedCell;

    fn kept(rows: usize) -> Kept {
        Kept {
            id: "qr_1".into(),
            connection: "pg-prod".into(),
            result: SqlResult {
                columns: vec!["id".into(), "email".into()],
                rows: (0..rows)
                    .map(|i| vec![Some(i.to_string()), Some("[email]".into())])
                    .collect(),
                masked: (0..rows)
                    .map(|row| MaskedCell {
                        row,
                        column: 1,
                        entities: vec!["email"],
                    })
                    .collect(),
                truncated: false,
                rows_affected: Some(rows as u64),
            },
            at: Instant::now(),
        }
    }

    #[test]
    fn results_are_paged_and_masked_cells_marked() {
        let k = kept(120);
        let first = result_table(&k, 0).into_string();
        assert!(first.contains("page 1 of 3"), "{first}");
        assert_eq!(first.matches("class=\"masked\"").count(), PAGE_ROWS);
        assert!(first.contains("data-masked=\"email\""));
        assert!(first.contains("id=\"next-page\"") && !first.contains("id=\"prev-page\""));
        let last = result_table(&k, 99).into_string();
        assert!(last.contains("page 3 of 3"), "{last}");
        assert_eq!(last.matches("class=\"masked\"").count(), 20);
        assert!(last.contains("<td>119</td>"));
    }

    #[test]
    fn cells_are_text_not_markup() {
        let mut k = kept(1);
        k.result.rows[0][0] = Some("<script>alert(1)</script>".into());
        let html = result_table(&k, 0).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn a_refusal_links_to_the_request_it_needs() {
        let html = error_view(
            "pg-prod",
            SqlError::Refused {
                code: "42501".into(),
                message: "writes are blocked".into(),
                detail: None,
                hint: Some(
                    "periscope request pg-prod --lift write --for 30m --reason \"...\"".into(),
                ),
            },
        )
        .into_string();
        assert!(html.contains("id=\"refused-shield\">write<"), "{html}");
        assert!(
            html.contains("/request?connection=pg-prod&amp;lifts=write&amp;duration=30m"),
            "{html}"
        );
    }

    #[test]
    fn the_last_result_is_kept_per_browser_session_and_bounded() {
        let state = QueryState::default();
        for i in 0..(MAX_KEPT + 5) {
            state.keep(&format!("ws_{i}"), "pg-prod", SqlResult::default());
        }
        assert_eq!(lock(&state.results).len(), MAX_KEPT);
        assert!(state.kept("ws_0").is_none(), "the oldest went first");
        assert!(state.kept(&format!("ws_{}", MAX_KEPT + 4)).is_some());
    }
}
