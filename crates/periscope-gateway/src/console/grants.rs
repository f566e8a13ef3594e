//! Grants and live sessions: the active grants the viewer may see (their
//! own, those their roles approve, all for administrators) with a revoke
//! button, and for administrators the live proxy sessions of this replica
//! (as `GET /v1/sessions`), each linking to its timeline with an **End**
//! button (as `POST /v1/admin/sessions/{id}/end`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use periscope_api as api;

use super::pages::{LiveQuery, lifts, unchanged};
use super::view::{self, countdown, csrf_field, fingerprint, when};
use super::{Viewer, is_htmx, posted, viewer};
use crate::api::Failure;
use crate::gateway::Gateway;

struct Board {
    grants: Vec<api::Grant>,
    sessions: Option<Vec<api::SessionSummary>>,
}

impl Board {
    async fn load(gateway: &Gateway, viewer: &Viewer) -> Result<Board, Failure> {
        let grants = gateway
            .list_grants(viewer.caller(), true, None, None)
            .await?;
        let sessions = viewer.admin.then(|| gateway.sessions().list());
        Ok(Board { grants, sessions })
    }

    fn fingerprint(&self) -> String {
        let mut parts: Vec<String> = self.grants.iter().map(|g| g.id.clone()).collect();
        parts.extend(
            self.sessions
                .iter()
                .flatten()
                .map(|s| format!("s {} {}", s.id, s.grants.join(","))),
        );
        fingerprint(&parts)
    }

    fn render(&self, gateway: &Gateway, viewer: &Viewer, flash: Option<(bool, String)>) -> Markup {
        let now = gateway.now();
        html! {
            div #board hx-get={ "/grants/live?v=" (self.fingerprint()) } hx-trigger="every 2s" hx-swap="outerHTML" {
                @if let Some((ok, message)) = &flash {
                    p #flash role="alert" class={ "notice" @if !ok { " error" } } { (message) }
                }
                h2 { "Active grants" }
                @if self.grants.is_empty() {
                    p.muted #no-active-grants { "No active grant you may see." }
                } @else {
                    table #active-grants {
                        thead { tr { th { "Grant" } th { "Identity" } th { "Connection" } th { "Lifts" } th { "Ends" } th { "Reason" } th { "Revoke" } } }
                        tbody {
                            @for g in &self.grants {
                                tr data-grant=(g.id) {
                                    td.mono { (g.id) }
                                    td { (g.identity) }
                                    td { (g.connection) }
                                    td { (lifts(&g.lifts)) }
                                    td { (countdown(now, g.expires_at)) }
                                    td { (g.reason) }
                                    td {
                                        form.decide method="post" action={ "/grants/" (g.id) "/revoke" } {
                                            (csrf_field(viewer))
                                            input type="text" name="reason" aria-label="Reason" placeholder="Reason";
                                            button.danger type="submit" data-action="revoke"
                                                hx-post={ "/grants/" (g.id) "/revoke" } hx-target="#board" hx-swap="outerHTML" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(sessions) = &self.sessions {
                    h2 { "Live sessions on this gateway" }
                    @if sessions.is_empty() {
                        p.muted #no-sessions { "Nobody is connected." }
                    } @else {
                        table #sessions {
                            thead { tr { th { "Session" } th { "Identity" } th { "Connection" } th { "Client" } th { "Since" } th { "Under grants" } th { "End" } } }
                            tbody {
                                @for s in sessions {
                                    tr data-session=(s.id) {
                                        td.mono { a href={ "/sessions/" (s.id) } { (s.id) } }
                                        td { (s.identity) }
                                        td { (s.connection) }
                                        td.mono { (s.client_addr) @if let Some(app) = &s.application_name { " (" (app) ")" } }
                                        td { (when(s.started_at)) }
                                        td.mono { @if s.grants.is_empty() { span.muted { "none" } } @else { (s.grants.join(", ")) } }
                                        td {
                                            form.decide method="post" action={ "/sessions/" (s.id) "/end" } {
                                                (csrf_field(viewer))
                                                input type="hidden" name="back" value="/grants";
                                                input type="text" name="reason" aria-label="Reason" placeholder="Reason";
                                                button.danger type="submit" data-action="end-session" { "End" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        p.help { "Revoking a grant ends the sessions that rely on it within a second; " strong { "End" } " ends one session now (its client is told who ended it and why)." }
                    }
                }
            }
        }
    }
}

/// `GET /grants`.
pub(crate) async fn page(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match Board::load(&gateway, &viewer).await {
        Ok(board) => view::page(
            StatusCode::OK,
            "Grants and sessions",
            Some(&viewer),
            "grants",
            board.render(&gateway, &viewer, None),
        ),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// `GET /grants/live?v=FINGERPRINT`: the board, or 204 when unchanged.
pub(crate) async fn live(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<LiveQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match Board::load(&gateway, &viewer).await {
        Ok(board) if q.v.as_deref() == Some(board.fingerprint().as_str()) => unchanged(),
        Ok(board) => view::html_response(StatusCode::OK, board.render(&gateway, &viewer, None)),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// `POST /grants/{id}/revoke` (`reason` optional), through the grant
/// workflow: who may revoke is the API's rule.
pub(crate) async fn revoke(
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
        .revoke(viewer.caller(), &id, form.get("reason"))
        .await
        .map(|g| format!("Revoked {} of {} on {}.", g.id, g.identity, g.connection))
        .map_err(Failure::from);
    if !is_htmx(&headers) {
        return match outcome {
            Ok(_) => view::redirect("/grants"),
            Err(f) => view::failure_page(Some(&viewer), &f),
        };
    }
    let flash = match outcome {
        Ok(message) => (true, message),
        Err(f) => (false, f.message),
    };
    match Board::load(&gateway, &viewer).await {
        Ok(board) => {
            view::html_response(StatusCode::OK, board.render(&gateway, &viewer, Some(flash)))
        }
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}
