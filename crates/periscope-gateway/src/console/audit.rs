//! The audit pages (administrators, as `/v1/audit`): search with keyset
//! paging, one event in full, the chain's status and verify-now, export.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use periscope_audit::{AuditEvent, AuditTime, ChainError, Start};
use periscope_store::AuditQuery;
use serde::Deserialize;
use time::OffsetDateTime;

use super::view::{self, when};
use super::{Viewer, is_htmx, posted, viewer};
use crate::api::Failure;
use crate::api::audit::parse_instant;
use crate::gateway::{Gateway, LastVerify};

/// Events per page.
pub const PAGE: u32 = 50;
/// Events one step of a scanning search examines.
const WINDOW: u64 = 20_000;
/// How long a scanning search may take before it returns what it found
/// (and where to continue).
const BUDGET: std::time::Duration = std::time::Duration::from_millis(120);
/// Longest details summary in the list.
const SUMMARY: usize = 140;

fn admin_only(viewer: &Viewer) -> Option<Response> {
    (!viewer.admin).then(|| {
        view::error_page(
            Some(viewer),
            StatusCode::FORBIDDEN,
            &format!(
                "`{}` is not an administrator: the audit trail needs the `admin` role or a role \
                 with `admin = true`",
                viewer.name()
            ),
        )
    })
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    text: String,
    before: Option<u64>,
}

impl SearchQuery {
    /// The query string of these filters (without `before`).
    fn filters(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("since", &self.since),
                ("until", &self.until),
                ("actor", &self.actor),
                ("action", &self.action),
                ("target", &self.target),
                ("text", &self.text),
            ])
            .finish()
    }
}

/// A time filter: RFC 3339, a duration before now (`1h`), or what a
/// `datetime-local` input sends (`2026-11-29T05:00`, read as UTC).
fn instant(text: &str, field: &str, now: OffsetDateTime) -> Result<Option<AuditTime>, Failure> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match parse_instant(text, field, now) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            let local = if text.len() == 16 {
                format!("{text}:00Z")
            } else {
                format!("{text}Z")
            };
            parse_instant(&local, field, now).map(Some).map_err(|_| e)
        }
    }
}

fn opt(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn summary(event: &AuditEvent) -> String {
    let text = event.details.to_string();
    if text == "{}" || text == "null" {
        return String::new();
    }
    match text.char_indices().nth(SUMMARY) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The session an event belongs to (`details.session`), when it names one
/// that can be looked up.
fn session_of(event: &AuditEvent) -> Option<&str> {
    event
        .details
        .get("session")
        .and_then(|s| s.as_str())
        .filter(|s| s.starts_with("ses_") && crate::recordings::valid_id(s))
}

/// The chain's status panel (replaced by verify-now).
async fn chain_panel(gateway: &Gateway) -> Markup {
    let head = gateway.store().audit_head().await.ok();
    let checkpoint = gateway.store().last_audit_checkpoint().await.ok().flatten();
    let last = gateway.last_verify();
    html! {
        section #chain {
            h2 { "Chain" }
            table {
                tr { th { "Head" } td {
                    @match &head {
                        Some(h) => { "event " (h.seq) " " span.mono.muted { (h.hash.to_hex().get(..16).unwrap_or_default()) "…" } },
                        None => span.muted { "unreadable" },
                    }
                } }
                tr { th { "Last signed checkpoint" } td {
                    @match &checkpoint {
                        Some(cp) => { "event " (cp.seq) " at " (when(cp.time.to_datetime())) " by key " code { (cp.key_id.to_string()) } },
                        None => span.muted { "none yet (the head is signed once a minute when it moved)" },
                    }
                } }
                tr { th { "Last verification" } td #verify-status {
                    @match &last {
                        Some(v) => {
                            span class=(if v.ok { "verify-ok" } else { "verify-bad" }) {
                                (if v.ok { "intact" } else { "BROKEN" })
                            }
                            " up to event " (v.last_seq.map_or_else(|| "-".to_string(), |s| s.to_string()))
                            ", " (when(v.at)) " by " (v.by) ": " (v.summary)
                        },
                        None => span.muted { "not verified since the gateway started" },
                    }
                } }
            }
            form method="post" action="/audit/verify" {
                button #verify-now type="submit" hx-post="/audit/verify" hx-target="#chain" hx-swap="outerHTML" { "Verify now" }
                " "
                a.button #export href="/v1/audit/export" download="audit.jsonl" { "Export (JSONL)" }
            }
        }
    }
}

/// One page of a search, newest first (up to `PAGE + 1` events, the extra
/// one saying there is more).
#[derive(Default)]
struct Found {
    events: Vec<AuditEvent>,
    /// When the search was cut by its time budget: every event from here
    /// up was examined.
    searched_down_to: Option<u64>,
}

/// Searches the chain for one page. Filters an index serves (none, or an
/// identity: `(actor, seq)`) and time ranges run as one query. Filters no
/// index serves (action, target, text) walk the chain down from the
/// newest event in windows of [`WINDOW`] events until the page is full
/// or [`BUDGET`] is spent, so a page answers in bounded time whatever the
/// chain's length, and the next page continues where this one stopped.
async fn search(gateway: &Gateway, mut query: AuditQuery) -> Result<Found, Failure> {
    let scans = query.actor.is_none()
        && (query.action.is_some() || query.target.is_some() || query.text.is_some());
    if !scans {
        let mut events = gateway.store().search_audit(&query).await?;
        events.reverse();
        return Ok(Found {
            events,
            searched_down_to: None,
        });
    }
    let started = std::time::Instant::now();
    let head = gateway.store().audit_head().await?.seq;
    let mut upper = query.before_seq.unwrap_or(head + 1).min(head + 1);
    let mut events: Vec<AuditEvent> = Vec::new();
    while upper > 1 && events.len() <= PAGE as usize {
        let lower = upper.saturating_sub(WINDOW).max(1);
        query.before_seq = Some(upper);
        query.from_seq = Some(lower);
        query.limit = PAGE + 1 - u32::try_from(events.len()).unwrap_or(PAGE);
        let mut window = gateway.store().search_audit(&query).await?;
        window.reverse();
        events.extend(window);
        upper = lower;
        if started.elapsed() >= BUDGET {
            break;
        }
    }
    Ok(Found {
        events,
        searched_down_to: Some(upper),
    })
}

/// `GET /audit`: search, newest first, `PAGE` events a page.
pub(crate) async fn page(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(refused) = admin_only(&viewer) {
        return refused;
    }
    let now = gateway.now();
    let query = (|| {
        Ok::<_, Failure>(AuditQuery {
            actor: opt(&q.actor),
            action: opt(&q.action),
            target: opt(&q.target),
            since: instant(&q.since, "since", now)?,
            until: instant(&q.until, "until", now)?,
            before_seq: q.before,
            from_seq: None,
            text: opt(&q.text),
            limit: PAGE + 1,
        })
    })();
    let (found, error) = match query {
        Ok(query) => match search(&gateway, query).await {
            Ok(found) => (found, None),
            Err(f) => (Found::default(), Some(f)),
        },
        Err(f) => (Found::default(), Some(f)),
    };
    let events = &found.events;
    let more = events.len() > PAGE as usize;
    let shown = &events[..events.len().min(PAGE as usize)];
    // The next page starts below the last event shown, or below the part
    // of the chain already searched when the time budget ran out first.
    let older = if more {
        shown.last().map(|e| e.seq)
    } else {
        found.searched_down_to.filter(|s| *s > 1)
    };
    let filters = q.filters();
    let field = |name: &'static str, label: &'static str, value: &str, hint: &'static str| {
        html! {
            label { (label) input type="search" name=(name) value=(value) placeholder=(hint); }
        }
    };
    let body = html! {
        form.filters #audit-search method="get" action="/audit" {
            (field("since", "Since", &q.since, "1h or 2026-11-29T05:00:00Z"))
            (field("until", "Until", &q.until, "RFC 3339 or duration"))
            (field("actor", "Identity", &q.actor, "alice"))
            (field("action", "Action", &q.action, "request. or grant.start"))
            (field("target", "Target", &q.target, "pg-prod or req_…"))
            (field("text", "Text", &q.text, "anything in the event"))
            button.primary type="submit" { "Search" }
            a href="/audit" { "Clear" }
        }
        @if let Some(f) = &error {
            p.notice.error role="alert" { (f.message) }
        }
        @if shown.is_empty() && error.is_none() {
            p.muted #no-events { "No event matches" @if found.searched_down_to.is_some_and(|s| s > 1) { " yet" } "." }
        }
        @if !shown.is_empty() {
            table #events {
                thead { tr { th { "Seq" } th { "Time" } th { "Identity" } th { "Action" } th { "Target" } th { "Details" } } }
                tbody {
                    @for e in shown {
                        tr data-seq=(e.seq) {
                            td { a href={ "/audit/events/" (e.seq) } { (e.seq) } }
                            td { (when(e.time.to_datetime())) }
                            td { (e.actor) }
                            td { code { (e.action) } }
                            td.mono { (e.target) }
                            td.mono.muted {
                                @if let Some(session) = session_of(e) {
                                    a.session href={ "/sessions/" (session) } { "session" } " "
                                }
                                (summary(e))
                            }
                        }
                    }
                }
            }
            p.pager {
                @if q.before.is_some() {
                    a #newest href={ "/audit?" (filters) } { "Newest" }
                    " "
                }
                @if let Some(before) = older {
                    a #older href={ "/audit?" (filters) "&before=" (before) } { "Older" }
                }
                @if let (false, Some(down_to)) = (more, found.searched_down_to) {
                    @if down_to > 1 {
                        " "
                        span.help #searched {
                            "Searched back to event " (down_to) " within this page's time budget; "
                            "Older goes on from there."
                        }
                    }
                }
            }
        }
        (chain_panel(&gateway).await)
    };
    view::page(StatusCode::OK, "Audit", Some(&viewer), "audit", body)
}

/// `GET /audit/events/{seq}`: one event with its details and hashes.
pub(crate) async fn detail(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(seq): Path<u64>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(refused) = admin_only(&viewer) {
        return refused;
    }
    let event = match gateway.store().audit_event(seq).await {
        Ok(e) => e,
        Err(e) => return view::failure_page(Some(&viewer), &Failure::from(e)),
    };
    let details = serde_json::to_string_pretty(&event.details).unwrap_or_default();
    let body = html! {
        table #event {
            tr { th { "Seq" } td { (event.seq) } }
            tr { th { "Time" } td { (event.time.as_str()) } }
            tr { th { "Identity" } td { a href={ "/audit?actor=" (url::form_urlencoded::byte_serialize(event.actor.as_bytes()).collect::<String>()) } { (event.actor) } } }
            tr { th { "Action" } td { code { (event.action) } } }
            tr { th { "Target" } td.mono { (event.target) } }
            tr { th { "Grants" } td.mono { (event.grant_ids.join(", ")) } }
            @if let Some(session) = session_of(&event) {
                tr { th { "Session" } td.mono { a #session-link href={ "/sessions/" (session) } { (session) } } }
            }
            tr { th { "Previous hash" } td.mono { (event.prev_hash.to_hex()) } }
            tr { th { "Hash" } td.mono { (event.hash.to_hex()) } }
        }
        h2 { "Details" }
        pre #details { (details) }
        p {
            @if event.seq > 1 { a href={ "/audit/events/" (event.seq - 1) } { "Previous" } " " }
            a href={ "/audit/events/" (event.seq + 1) } { "Next" } " "
            a href="/audit" { "Back to the search" }
        }
    };
    view::page(
        StatusCode::OK,
        &format!("Audit event {seq}"),
        Some(&viewer),
        "audit",
        body,
    )
}

/// `POST /audit/verify`: walks the whole chain now (as `POST
/// /v1/audit/verify`) and shows the outcome in the chain panel.
pub(crate) async fn verify(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, _) = match posted(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(refused) = admin_only(&viewer) {
        return refused;
    }
    let keys = [gateway.audit_verifier_key().clone()];
    let outcome = match gateway.store().verify_audit(&keys, Start::Genesis).await {
        Ok(report) => LastVerify {
            at: gateway.now(),
            by: viewer.name().to_string(),
            ok: true,
            summary: report.to_string(),
            last_seq: report.last.map(|h| h.seq),
        },
        Err(ChainError::Read { source, .. }) => {
            return view::error_page(
                Some(&viewer),
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("could not read the audit chain: {source}"),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "AUDIT CHAIN VERIFICATION FAILED");
            LastVerify {
                at: gateway.now(),
                by: viewer.name().to_string(),
                ok: false,
                summary: e.to_string(),
                last_seq: e.seq(),
            }
        }
    };
    gateway.set_last_verify(outcome);
    if is_htmx(&headers) {
        view::html_response(StatusCode::OK, chain_panel(&gateway).await)
    } else {
        view::redirect("/audit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn times_come_as_rfc3339_durations_or_datetime_local() {
        let now = OffsetDateTime::parse("2026-11-29T05:00:00Z", &Rfc3339).unwrap();
        assert_eq!(instant("", "since", now).unwrap(), None);
        assert_eq!(
            instant("1h", "since", now).unwrap().unwrap().as_str(),
            "2026-11-29T04:00:00.000000Z"
        );
        assert_eq!(
            instant("2026-11-29T03:30", "since", now)
                .unwrap()
                .unwrap()
                .as_str(),
            "2026-11-29T03:30:00.000000Z"
        );
        assert!(instant("yesterday", "since", now).is_err());
    }

    #[test]
    fn filters_round_trip_in_the_pager_links() {
        let q = SearchQuery {
            actor: "a&b".into(),
            text: "x y".into(),
            before: Some(7),
            ..SearchQuery::default()
        };
        let f = q.filters();
        assert!(f.contains("actor=a%26b"), "{f}");
        assert!(f.contains("text=x+y"), "{f}");
        assert!(!f.contains("before"), "{f}");
    }
}
