//! Home, the request form and the approvals inbox. Every action goes
//! through the grant workflow ([`Gateway::create_request`],
//! [`Gateway::approve`], [`Gateway::deny`]), as the API's do.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use periscope_api as api;
use periscope_policy::RoleConfig;
use serde::Deserialize;

use super::view::{self, countdown, csrf_field, fingerprint, span, when};
use super::{Form, Viewer, is_htmx, posted, viewer};
use crate::api::{Failure, OwnBody};
use crate::gateway::Gateway;
use crate::grants::RequestStatusFilter;

/// How often live regions ask whether they changed.
const POLL: &str = "every 2s";
/// Requests shown on the home page.
const MY_REQUESTS: usize = 20;
/// Durations offered by the request form (those up to the role's maximum).
const DURATIONS: &[u64] = &[
    15 * 60,
    30 * 60,
    3600,
    2 * 3600,
    4 * 3600,
    8 * 3600,
    12 * 3600,
    24 * 3600,
];

/// A serde enum's wire name (`pending`, `active`...).
fn wire_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn status_badge<T: serde::Serialize>(value: &T) -> Markup {
    let name = wire_name(value);
    html! { span class={ "status status-" (name) } { (name) } }
}

pub(super) fn lifts(list: &[String]) -> Markup {
    html! {
        @for (i, lift) in list.iter().enumerate() {
            @if i > 0 { " " }
            code { (lift) }
        }
    }
}

/// The configured connections the viewer's roles cover, with those roles.
fn reachable<'a>(
    config: &'a crate::config::LoadedConfig,
    viewer: &'a Viewer,
) -> Vec<(&'a periscope_policy::ConnectionConfig, Vec<&'a RoleConfig>)> {
    config
        .config
        .connections
        .iter()
        .map(|c| {
            (
                c,
                config
                    .policy
                    .covering_roles(&viewer.caller().policy_identity, &c.name),
            )
        })
        .filter(|(_, roles)| !roles.is_empty())
        .collect()
}

/// What the roles let one ask for, in words.
fn who_approves(roles: &[&RoleConfig]) -> Markup {
    html! {
        ul.approval-rules {
            @for role in roles {
                li {
                    "Through role " code { (role.name) } ": "
                    @if role.approvals == 0 {
                        "granted at once, no approval needed"
                    } @else {
                        (role.approvals) " approval" @if role.approvals > 1 { "s" }
                        " from a member of "
                        @for (i, approver) in role.approvers.iter().enumerate() {
                            @if i > 0 { " or " }
                            code { (approver) }
                        }
                        " (never the requester)"
                    }
                    "; at most " (span(role.max_duration)) "."
                }
            }
        }
    }
}

struct Live {
    grants: Vec<api::Grant>,
    requests: Vec<api::Request>,
}

impl Live {
    async fn load(gateway: &Gateway, viewer: &Viewer) -> Result<Live, Failure> {
        let me = viewer.name().to_string();
        let grants = gateway
            .list_grants(viewer.caller(), true, Some(&me), None)
            .await?;
        let mut requests = gateway
            .list_requests(viewer.caller(), Some(RequestStatusFilter::All), Some(&me))
            .await?;
        requests.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        requests.truncate(MY_REQUESTS);
        Ok(Live { grants, requests })
    }

    fn fingerprint(&self) -> String {
        let mut parts: Vec<String> = self
            .grants
            .iter()
            .map(|g| format!("g {} {}", g.id, wire_name(&g.status)))
            .collect();
        parts.extend(
            self.requests
                .iter()
                .map(|r| format!("r {} {} {}", r.id, wire_name(&r.status), r.approvals.len())),
        );
        fingerprint(&parts)
    }

    fn render(&self, gateway: &Gateway) -> Markup {
        let now = gateway.now();
        html! {
            div #live hx-get={ "/home/live?v=" (self.fingerprint()) } hx-trigger=(POLL) hx-swap="outerHTML" {
                h2 { "My active grants" }
                @if self.grants.is_empty() {
                    p.muted #no-grants { "No active grant: every shield is in force for you." }
                } @else {
                    table #grants {
                        thead { tr { th { "Grant" } th { "Connection" } th { "Lifts" } th { "Ends" } th { "Approved by" } th { "Reason" } } }
                        tbody {
                            @for g in &self.grants {
                                tr data-grant=(g.id) {
                                    td.mono { (g.id) }
                                    td { (g.connection) }
                                    td { (lifts(&g.lifts)) }
                                    td { (countdown(now, g.expires_at)) }
                                    td { (g.approvers.join(", ")) }
                                    td { (g.reason) }
                                }
                            }
                        }
                    }
                }
                h2 { "My requests" }
                @if self.requests.is_empty() {
                    p.muted { "No request yet. " a href="/request" { "Request a grant" } }
                } @else {
                    table #requests {
                        thead { tr { th { "Request" } th { "Connection" } th { "Lifts" } th { "For" } th { "Status" } th { "Approvals" } th { "Asked" } } }
                        tbody {
                            @for r in &self.requests {
                                tr data-request=(r.id) {
                                    td.mono { (r.id) }
                                    td { (r.connection) }
                                    td { (lifts(&r.lifts)) }
                                    td { (span(Duration::from_secs(r.duration_secs))) }
                                    td { (status_badge(&r.status)) }
                                    td { (r.approvals.len()) " of " (r.approvals_required) }
                                    td { (when(r.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct HomeQuery {
    created: Option<String>,
}

/// `GET /`: my connections, active grants (counting down) and requests.
pub(crate) async fn home(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<HomeQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let live = match Live::load(&gateway, &viewer).await {
        Ok(live) => live,
        Err(f) => return view::failure_page(Some(&viewer), &f),
    };
    let config = gateway.config();
    let connections = reachable(&config, &viewer);
    let created = q
        .created
        .as_deref()
        .and_then(|id| live.requests.iter().find(|r| r.id == id));
    let roles = &viewer.caller().identity.roles;
    let body = html! {
        @if let Some(r) = created {
            p.notice #flash role="status" {
                "Request " code { (r.id) } " sent"
                @if r.status == api::RequestStatus::Pending {
                    ": it waits for " (r.approvals_required) " approval(s) from "
                    (r.approver_roles.join(" or "))
                } @else {
                    " (" (status_badge(&r.status)) ")"
                }
                ". Its state below updates by itself."
            }
        }
        p {
            "Signed in as " strong { (viewer.name()) }
            @if roles.is_empty() { " with no role." } @else { " with roles " (roles.join(", ")) "." }
        }
        (live.render(&gateway))
        h2 { "My connections" }
        @if connections.is_empty() {
            p.muted { "Your roles cover no connection." }
        } @else {
            table #connections {
                thead { tr { th { "Connection" } th { "Kind" } th { "My roles may lift" } th { "Longest grant" } th {} } }
                tbody {
                    @for (conn, roles) in &connections {
                        @let patterns: BTreeSet<String> = roles.iter().flat_map(|r| r.may_lift.iter().map(ToString::to_string)).collect();
                        @let longest = roles.iter().map(|r| r.max_duration).max().unwrap_or_default();
                        tr {
                            td { strong { (conn.name) } }
                            td { (wire_name(&conn.kind)) }
                            td {
                                @if patterns.is_empty() { span.muted { "nothing (read-only, masked)" } }
                                @else { (lifts(&patterns.into_iter().collect::<Vec<_>>())) }
                            }
                            td { (span(longest)) }
                            td { a.button href={ "/request?connection=" (url::form_urlencoded::byte_serialize(conn.name.as_bytes()).collect::<String>()) } { "Request" } }
                        }
                    }
                }
            }
        }
    };
    view::page(StatusCode::OK, "Home", Some(&viewer), "home", body)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LiveQuery {
    pub(super) v: Option<String>,
}

/// `GET /home/live?v=FINGERPRINT`: the live region, or 204 when unchanged.
pub(crate) async fn home_live(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<LiveQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match Live::load(&gateway, &viewer).await {
        Ok(live) if q.v.as_deref() == Some(live.fingerprint().as_str()) => unchanged(),
        Ok(live) => view::html_response(StatusCode::OK, live.render(&gateway)),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// 204: htmx leaves the region as it is.
pub(super) fn unchanged() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(OwnBody);
    response
}

/// What the request form shows again after a refusal.
#[derive(Default)]
struct Prefill {
    lifts: Vec<String>,
    other: String,
    duration: Option<String>,
    reason: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RequestQuery {
    connection: Option<String>,
    /// Shields to pre-select, comma-separated (a refusal's "Request this
    /// grant" link names those its hint asks for).
    lifts: Option<String>,
    /// A duration to pre-select (`30m`).
    duration: Option<String>,
}

/// `GET /request`: the form for the chosen connection.
pub(crate) async fn request_form(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Shields the form has a checkbox for are ticked; others (under a
    // wildcard) go to the text field.
    let asked: Vec<String> = q
        .lifts
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let config = gateway.config();
    let exact: BTreeSet<String> = reachable(&config, &viewer)
        .iter()
        .filter(|(c, _)| Some(c.name.as_str()) == q.connection.as_deref())
        .flat_map(|(_, roles)| {
            roles
                .iter()
                .flat_map(|r| r.may_lift.iter().map(ToString::to_string))
        })
        .filter(|p| !p.contains('*'))
        .collect();
    let (checked, other): (Vec<String>, Vec<String>) =
        asked.into_iter().partition(|l| exact.contains(l));
    let prefill = Prefill {
        lifts: checked,
        other: other.join(", "),
        duration: q.duration.filter(|d| humantime::parse_duration(d).is_ok()),
        reason: String::new(),
    };
    request_page(&gateway, &viewer, q.connection.as_deref(), &prefill, None)
}

fn request_page(
    gateway: &Gateway,
    viewer: &Viewer,
    asked: Option<&str>,
    prefill: &Prefill,
    failure: Option<&Failure>,
) -> Response {
    let config = gateway.config();
    let connections = reachable(&config, viewer);
    let Some((conn, roles)) = connections
        .iter()
        .find(|(c, _)| Some(c.name.as_str()) == asked)
        .or_else(|| connections.first())
    else {
        return view::page(
            StatusCode::OK,
            "Request a grant",
            Some(viewer),
            "request",
            html! { p.muted { "Your roles cover no connection, so there is nothing to request." } },
        );
    };
    let patterns: BTreeSet<String> = roles
        .iter()
        .flat_map(|r| r.may_lift.iter().map(ToString::to_string))
        .collect();
    let (wild, exact): (Vec<&String>, Vec<&String>) =
        patterns.iter().partition(|p| p.contains('*'));
    let longest = roles
        .iter()
        .map(|r| r.max_duration)
        .max()
        .unwrap_or_default();
    let mut durations: Vec<u64> = DURATIONS
        .iter()
        .copied()
        .filter(|d| *d <= longest.as_secs())
        .collect();
    if !durations.contains(&longest.as_secs()) && longest.as_secs() > 0 {
        durations.push(longest.as_secs());
    }
    let chosen = prefill.duration.clone().unwrap_or_else(|| {
        let default = durations.iter().copied().find(|d| *d >= 1800).unwrap_or(0);
        span(Duration::from_secs(default))
    });
    let status = failure
        .and_then(|f| StatusCode::from_u16(f.status).ok())
        .unwrap_or(StatusCode::OK);
    let body = html! {
        @if let Some(f) = failure {
            p.notice.error #refusal role="alert" {
                (f.message)
                @if let Some(hint) = &f.hint { " (" (hint) ")" }
            }
        }
        form.choose method="get" action="/request" {
            label for="choose-connection" { "Connection" }
            select #choose-connection name="connection" {
                @for (c, _) in &connections {
                    option value=(c.name) selected[c.name == conn.name] { (c.name) }
                }
            }
            " "
            button type="submit" { "Choose" }
        }
        form #request-form method="post" action="/request" {
            (csrf_field(viewer))
            input type="hidden" name="connection" value=(conn.name);
            h2 { "Lift on " (conn.name) }
            @if patterns.is_empty() {
                p.muted { "Your roles may lift nothing here." }
            }
            @for p in &exact {
                label.check {
                    input type="checkbox" name="lift" value=(p) checked[prefill.lifts.contains(p)];
                    " " code { (p) }
                }
            }
            @if !wild.is_empty() {
                label for="lifts-other" { "Other shields" }
                input #lifts-other type="text" name="lifts_other" value=(prefill.other)
                    placeholder="unmask:email, unmask:card";
                p.help {
                    "Comma-separated shields matching "
                    @for (i, p) in wild.iter().enumerate() { @if i > 0 { ", " } code { (p) } }
                    "."
                }
            }
            label for="duration" { "For" }
            select #duration name="duration" {
                @for d in &durations {
                    @let text = span(Duration::from_secs(*d));
                    option value=(text) selected[text == chosen] { (text) }
                }
            }
            span.help { " at most " (span(longest)) }
            label for="reason" { "Reason" }
            textarea #reason name="reason" required placeholder="INC-4411: refund stuck for customer 42" { (prefill.reason) }
            h2 { "Who must approve" }
            (who_approves(roles))
            p { button.primary #submit-request type="submit" { "Request" } }
        }
    };
    view::page(status, "Request a grant", Some(viewer), "request", body)
}

/// `POST /request`: creates the request through the grant workflow.
pub(crate) async fn request_submit(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, form) = match posted(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let connection = form.get("connection").unwrap_or_default().to_string();
    let other = form.get("lifts_other").unwrap_or_default().to_string();
    let mut lifts = form.all("lift");
    lifts.extend(
        other
            .split([',', ' ', '\n', '\t'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
    let prefill = Prefill {
        lifts: form.all("lift"),
        other,
        duration: form.get("duration").map(str::to_owned),
        reason: form.get("reason").unwrap_or_default().to_string(),
    };
    let request = api::CreateRequest {
        connection: connection.clone(),
        lifts,
        duration: prefill.duration.clone().unwrap_or_default(),
        reason: prefill.reason.clone(),
    };
    match gateway.create_request(viewer.caller(), &request).await {
        Ok((created, _grant)) => view::redirect(&format!("/?created={}", created.id)),
        Err(e) => {
            let failure = Failure::from(e);
            request_page(
                &gateway,
                &viewer,
                Some(&connection),
                &prefill,
                Some(&failure),
            )
        }
    }
}

/// The inbox's content: what waits for the viewer, and the viewer's own
/// pending requests (which only others may decide).
struct Inbox {
    to_decide: Vec<api::Request>,
    mine: Vec<api::Request>,
}

impl Inbox {
    async fn load(gateway: &Gateway, viewer: &Viewer) -> Result<Inbox, Failure> {
        let pending = gateway
            .list_requests(
                viewer.caller(),
                Some(RequestStatusFilter::Only(
                    periscope_policy::RequestStatus::Pending,
                )),
                None,
            )
            .await?;
        let (mine, to_decide) = pending
            .into_iter()
            .partition(|r| r.requester == viewer.name());
        Ok(Inbox { to_decide, mine })
    }

    fn fingerprint(&self) -> String {
        let parts: Vec<String> = self
            .to_decide
            .iter()
            .chain(&self.mine)
            .map(|r| format!("{} {}", r.id, r.approvals.len()))
            .collect();
        fingerprint(&parts)
    }

    fn render(&self, viewer: &Viewer, flash: Option<(bool, String)>) -> Markup {
        html! {
            div #inbox hx-get={ "/approvals/list?v=" (self.fingerprint()) } hx-trigger=(POLL) hx-swap="outerHTML" {
                @if let Some((ok, message)) = &flash {
                    p #flash role="alert" class={ "notice" @if !ok { " error" } } { (message) }
                }
                @if self.to_decide.is_empty() {
                    p.muted #inbox-empty { "Nothing waits for your decision." }
                }
                @for r in &self.to_decide {
                    article.pending data-request=(r.id) {
                        h2 { (r.requester) " asks to lift " (lifts(&r.lifts)) " on " (r.connection) }
                        table {
                            tr { th { "Request" } td.mono { (r.id) } }
                            tr { th { "Reason" } td.reason { (r.reason) } }
                            tr { th { "For" } td { (span(Duration::from_secs(r.duration_secs))) ", from approval" } }
                            tr { th { "Policy" } td {
                                "Role " code { (r.role) } ": " (r.approvals_required) " approval(s) from "
                                (r.approver_roles.join(" or ")) "; " (r.approvals.len()) " so far"
                                @if !r.approvals.is_empty() {
                                    " (" (r.approvals.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>().join(", ")) ")"
                                }
                                "."
                                @if r.break_glass { strong { " BREAK-GLASS: secrets would be unmasked." } }
                            } }
                            tr { th { "Asked" } td { (when(r.created_at)) } }
                        }
                        form.decide method="post" action={ "/approvals/" (r.id) "/approve" } {
                            (csrf_field(viewer))
                            input type="text" name="comment" aria-label="Comment"
                                placeholder="Comment (required to deny)";
                            button.primary type="submit" data-action="approve"
                                hx-post={ "/approvals/" (r.id) "/approve" } hx-target="#inbox" hx-swap="outerHTML" { "Approve" }
                            button.danger type="submit" data-action="deny"
                                formaction={ "/approvals/" (r.id) "/deny" }
                                hx-post={ "/approvals/" (r.id) "/deny" } hx-target="#inbox" hx-swap="outerHTML" { "Deny" }
                        }
                    }
                }
                @if !self.mine.is_empty() {
                    h2 { "Your requests waiting for others" }
                    p.help { "You cannot approve your own requests." }
                    ul #mine {
                        @for r in &self.mine {
                            li data-request=(r.id) {
                                code { (r.id) } " on " (r.connection) ": " (lifts(&r.lifts))
                                ", " (r.approvals.len()) " of " (r.approvals_required) " approval(s) from "
                                (r.approver_roles.join(" or "))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /approvals`: the inbox, refreshed every two seconds.
pub(crate) async fn approvals(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match Inbox::load(&gateway, &viewer).await {
        Ok(inbox) => view::page(
            StatusCode::OK,
            "Approvals",
            Some(&viewer),
            "approvals",
            inbox.render(&viewer, None),
        ),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// `GET /approvals/list?v=FINGERPRINT`: the inbox region, or 204.
pub(crate) async fn approvals_list(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<LiveQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match Inbox::load(&gateway, &viewer).await {
        Ok(inbox) if q.v.as_deref() == Some(inbox.fingerprint().as_str()) => unchanged(),
        Ok(inbox) => view::html_response(StatusCode::OK, inbox.render(&viewer, None)),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// After a decision: htmx gets the inbox with the outcome on top (200, so
/// it swaps even a refusal in); a plain form post gets the outcome as a page.
async fn decided(
    gateway: &Gateway,
    viewer: &Viewer,
    headers: &HeaderMap,
    outcome: Result<String, Failure>,
) -> Response {
    if !is_htmx(headers) {
        return match outcome {
            Ok(_) => view::redirect("/approvals"),
            Err(f) => view::failure_page(Some(viewer), &f),
        };
    }
    let flash = match outcome {
        Ok(message) => (true, message),
        Err(f) => (
            false,
            match &f.hint {
                Some(hint) => format!("{} ({hint})", f.message),
                None => f.message.clone(),
            },
        ),
    };
    match Inbox::load(gateway, viewer).await {
        Ok(inbox) => view::html_response(StatusCode::OK, inbox.render(viewer, Some(flash))),
        Err(f) => view::failure_page(Some(viewer), &f),
    }
}

/// `POST /approvals/{id}/approve` (`comment` optional).
pub(crate) async fn approve(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, form): (Viewer, Form) = match posted(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let outcome = gateway
        .approve(viewer.caller(), &id, form.get("comment"))
        .await
        .map(|done| match done.grant {
            Some(grant) => format!(
                "Approved {}: grant {} for {} on {} is active until {}.",
                done.request.id,
                grant.id,
                grant.identity,
                grant.connection,
                when(grant.expires_at)
            ),
            None => format!(
                "Approved {}: {} of {} approvals so far.",
                done.request.id,
                done.request.approvals.len(),
                done.request.approvals_required
            ),
        })
        .map_err(Failure::from);
    decided(&gateway, &viewer, &headers, outcome).await
}

/// `POST /approvals/{id}/deny` (`comment` required, as the reason).
pub(crate) async fn deny(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, form) = match posted(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let outcome = gateway
        .deny(viewer.caller(), &id, form.get("comment"))
        .await
        .map(|r| format!("Denied {} of {}.", r.id, r.requester))
        .map_err(Failure::from);
    decided(&gateway, &viewer, &headers, outcome).await
}
