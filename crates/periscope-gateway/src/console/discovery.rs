//! Discovery (administrators, as `GET /v1/admin/discover/{connection}`):
//! per PostgreSQL connection, the columns run-time learning suspects (their
//! results keep hitting detectors though nothing tags them), the current
//! discovered tags and this gateway's last background profile. Counts and
//! names only, never a value.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use periscope_policy::ConnectionKind;

use super::view;
use super::viewer;
use crate::discover;
use crate::gateway::Gateway;

/// `GET /discovery`.
pub(crate) async fn page(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !viewer.admin {
        return view::error_page(
            Some(&viewer),
            StatusCode::FORBIDDEN,
            &format!(
                "`{}` is not an administrator: discovery needs the `admin` role or a role with \
                 `admin = true`",
                viewer.name()
            ),
        );
    }
    let config = gateway.config();
    let connections: Vec<String> = config
        .config
        .connections
        .iter()
        .filter(|c| c.kind == ConnectionKind::Postgres)
        .map(|c| c.name.clone())
        .collect();
    drop(config);
    let sets = gateway.discovered_sets();
    let body = html! {
        p.help {
            "Columns are " strong { "suspected" } " when content scans keep masking values that come "
            "unchanged from them although no tag covers them (" (discover::suspect::SUSPECT_VALUES)
            " values over " (discover::suspect::SUSPECT_STATEMENTS) " statements). With "
            code { "auto_tag = true" } " on the connection they are tagged at once; otherwise review them with "
            code { "periscope discover CONNECTION --suspected" } " and apply or dismiss."
        }
        @for name in &connections {
            @let suspected = discover::suspect::suspected(&gateway, name);
            @let tags = sets.iter().find(|s| &s.connection == name).map(|s| s.tags.iter().filter(|(_, t)| t.as_str() != "none").count()).unwrap_or(0);
            @let background = discover::background(&gateway, name);
            section.discovery data-connection=(name) {
                h2 { (name) }
                p {
                    (tags) " column(s) tagged by discovery"
                    @if let Some(b) = &background {
                        "; last background profile " code { (b.state) } " (started " (b.started_at) ")"
                    }
                    "."
                }
                @if suspected.is_empty() {
                    p.muted.no-suspects { "No suspected column." }
                } @else {
                    table.suspected {
                        thead { tr { th { "Column" } th { "Entity" } th { "Values masked" } th { "Statements" } th { "Since" } th { "Tagged" } } }
                        tbody {
                            @for s in &suspected {
                                tr data-column=(s.column) {
                                    td.mono { (s.column) }
                                    td { code { (s.entity) } }
                                    td { (s.values) }
                                    td { (s.statements) }
                                    td { (s.since) }
                                    td { @if s.tagged { "yes (auto_tag)" } @else { "no" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if connections.is_empty() {
            p.muted { "No PostgreSQL connection is configured." }
        }
    };
    view::page(
        StatusCode::OK,
        "Discovery",
        Some(&viewer),
        "discovery",
        body,
    )
}
