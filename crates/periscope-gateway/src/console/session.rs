//! One session: its timeline from the audit log and its recording.
//!
//! - **Timeline.** The session's events (`details.session`), read through
//!   the store's session index and the actor index over the session's seq
//!   range ([`periscope_store::Store::session_events`]), never a walk of the
//!   log: each statement with its class, tables and literal-free text, its
//!   outcome (rows, masked counts, duration, error) from its `query.result`,
//!   refusals with their shield, an administrator ending it, its end.
//! - **Who may look.** Administrators, and the identity whose session it is
//!   (as for recordings); anyone else gets 404, so ids cannot be probed.
//! - **Recording.** When the session sealed one (`recording.sealed`), its
//!   file is read (bounded) and shown as escaped text in a `<pre>`: an
//!   asciicast's output events one `span.frame` each (its time in
//!   `data-t`), which `console.js` steps or plays; any other format line by
//!   line, as text. Terminal escape sequences are dropped, nothing is
//!   interpreted.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use periscope_audit::AuditEvent;
use serde::Deserialize;
use serde_json::Value;

use super::view::{self, csrf_field, when};
use super::{Viewer, posted, viewer};
use crate::api::Failure;
use crate::gateway::Gateway;

/// Statements a page of the timeline shows.
const PAGE: u32 = 200;
/// Most bytes of a recording file shown.
const MAX_RECORDING: u64 = 512 * 1024;

#[derive(Debug, Deserialize)]
pub(crate) struct SessionQuery {
    after: Option<u64>,
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `{"email": 3, "card": 1}` as `email 3, card 1` (zeros left out).
fn masked_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Object(map)) => map
            .iter()
            .filter(|(_, n)| n.as_u64() != Some(0))
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn duration_text(details: &Value) -> String {
    if let Some(us) = details.get("duration_us").and_then(Value::as_u64) {
        if us < 1000 {
            return format!("{us} µs");
        }
        if us < 10_000_000 {
            return format!("{:.1} ms", us as f64 / 1000.0);
        }
        return view::span(std::time::Duration::from_micros(us));
    }
    if let Some(ms) = details.get("duration_ms").and_then(Value::as_u64) {
        return format!("{ms} ms");
    }
    String::new()
}

/// What the events say about the session as a whole.
struct Summary<'a> {
    start: Option<&'a AuditEvent>,
    end: Option<&'a AuditEvent>,
    ended_by: Option<&'a AuditEvent>,
}

fn summarise(events: &[AuditEvent]) -> Summary<'_> {
    Summary {
        start: events.iter().find(|e| e.action.ends_with(".start")),
        end: events.iter().rev().find(|e| e.action.ends_with(".end")),
        ended_by: events
            .iter()
            .find(|e| e.action == periscope_audit::actions::SESSION_ENDED_BY_ADMIN.as_str()),
    }
}

fn not_found(viewer: &Viewer, id: &str) -> Response {
    view::error_page(
        Some(viewer),
        StatusCode::NOT_FOUND,
        &format!("No session `{id}` you may see in the audit log."),
    )
}

/// `GET /sessions/{id}?after=SEQ`.
pub(crate) async fn page(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<SessionQuery>,
) -> Response {
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let found = match gateway.store().session_events(&id, q.after, PAGE).await {
        Ok(found) => found,
        Err(e) => return view::failure_page(Some(&viewer), &Failure::from(e)),
    };
    let Some(found) = found else {
        return not_found(&viewer, &id);
    };
    if !viewer.admin && found.identity != viewer.name() {
        return not_found(&viewer, &id);
    }
    let live = gateway.sessions().get(&id);
    let events = &found.events;
    let summary = summarise(events);
    // Each statement's outcome, by the seq of its `query` event.
    let results: HashMap<u64, &AuditEvent> = events
        .iter()
        .filter(|e| e.action == "query.result")
        .filter_map(|e| {
            e.details
                .get("query_seq")
                .and_then(Value::as_u64)
                .map(|s| (s, e))
        })
        .collect();
    let seals: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.action == periscope_audit::actions::RECORDING_SEALED.as_str())
        .collect();
    let mut recordings = Vec::new();
    for seal in &seals {
        recordings.push(recording(&gateway, seal).await);
    }
    let connection = summary.start.map_or("", |e| e.target.as_str());
    let body = html! {
        table #session-summary {
            tr { th { "Session" } td.mono { (id) } }
            tr { th { "Identity" } td { (found.identity) } }
            @if !connection.is_empty() { tr { th { "Connection" } td { (connection) } } }
            @if let Some(start) = summary.start {
                tr { th { "Started" } td {
                    (when(start.time.to_datetime()))
                    @if let Some(via) = str_of(&start.details, "via") { " via " code { (via) } }
                    @if let Some(agent) = str_of(&start.details, "agent") { " (" (agent) ")" }
                    @if let Some(addr) = str_of(&start.details, "client_addr") { " from " span.mono { (addr) } }
                } }
                @if !start.grant_ids.is_empty() {
                    tr { th { "Under grants" } td.mono { (start.grant_ids.join(", ")) } }
                }
            }
            tr { th { "State" } td #session-state {
                @if let Some(end) = summary.end {
                    "ended " (when(end.time.to_datetime()))
                    @let d = duration_text(&end.details);
                    @if !d.is_empty() { " after " (d) }
                    @if let Some(by) = summary.ended_by {
                        ", ended by administrator " strong { (by.actor) }
                        @if let Some(reason) = str_of(&by.details, "reason") { ": " (reason) }
                    } @else if let Some(reason) = str_of(&end.details, "reason") {
                        " (" (reason) ")"
                    }
                } @else if live.is_some() {
                    span.status.status-active { "live" } " on this gateway"
                } @else if found.more {
                    "see the later events"
                } @else {
                    "no end recorded (live on another replica, or the gateway stopped)"
                }
            } }
        }
        @if let (Some(_), true) = (&live, viewer.admin) {
            form.decide #end-session-form method="post" action={ "/sessions/" (id) "/end" } {
                (csrf_field(&viewer))
                input type="text" name="reason" aria-label="Reason" placeholder="Reason (shown to the client)";
                button.danger #end-session type="submit" { "End this session" }
            }
        }
        h2 { "Timeline" }
        @if events.is_empty() {
            p.muted { "No event after this point." }
        } @else {
            table #timeline {
                thead { tr { th { "Seq" } th { "Time" } th { "What" } th { "Statement or details" } th { "Outcome" } th { "Masked" } th { "Took" } } }
                tbody {
                    @for e in events {
                        @if e.action != "query.result" || !e.details.get("query_seq").and_then(Value::as_u64).is_some_and(|s| events.iter().any(|q| q.seq == s)) {
                            (timeline_row(&viewer, e, &results))
                        }
                    }
                }
            }
            @if found.more {
                @if let Some(last) = events.last() {
                    p.pager { a #later href={ "/sessions/" (id) "?after=" (last.seq) } { "Later events" } }
                }
            }
        }
        @for r in &recordings { (r) }
    };
    view::page(
        StatusCode::OK,
        &format!("Session {id}"),
        Some(&viewer),
        if viewer.admin { "grants" } else { "" },
        body,
    )
}

fn tables(details: &Value) -> String {
    details
        .get("tables")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// A statement's literal-free text, with the tables it touches under it.
fn statement_cell(d: &Value) -> Markup {
    let tables = tables(d);
    html! {
        td.sql {
            span.mono { (str_of(d, "text").unwrap_or_default()) }
            @if !tables.is_empty() { br; span.muted { "tables: " (tables) } }
        }
    }
}

fn what_cell(label: Markup, d: &Value) -> Markup {
    html! {
        td {
            (label)
            @if let Some(class) = str_of(d, "class") { br; code.class { (class) } }
        }
    }
}

/// A session event other than a statement, in words: what its details
/// say that a reader wants (who, from where, why), the rest left to the
/// audit event itself.
fn event_summary(e: &AuditEvent) -> Markup {
    let d = &e.details;
    let list = |key: &str| {
        d.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
    };
    let number = |key: &str| d.get(key).and_then(Value::as_u64);
    match e.action.as_str() {
        a if a.ends_with(".start") => html! {
            @if let Some(via) = str_of(d, "via") { "via " code { (via) } " " }
            @if let Some(agent) = str_of(d, "agent") { "(" (agent) ") " }
            @if let Some(addr) = str_of(d, "client_addr") { "from " span.mono { (addr) } " " }
            @if let Some(app) = str_of(d, "application_name") { "as " (app) " " }
            @if let Some(args) = list("args") { "args " span.mono { (args) } " " }
            @if let Some(roles) = list("roles") { "roles " (roles) " " }
            @if let Some(grants) = list("grants") { "under " span.mono { (grants) } " " }
            @if d.get("read_only").and_then(Value::as_bool) == Some(true) { "read-only" }
        },
        a if a.ends_with(".end") => html! {
            @if let Some(n) = number("statements") { (n) " statement(s)" }
            @if let Some(n) = number("refused") { ", " (n) " refused" }
            @if let Some(code) = d.get("exit_code").and_then(Value::as_i64) { "exit code " (code) }
            @if let Some(message) = str_of(d, "message") { " " (message) }
        },
        "session.ended_by_admin" => html! {
            "by administrator " strong { (e.actor) }
            @if let Some(reason) = str_of(d, "reason") { ": " (reason) }
        },
        "recording.sealed" => html! {
            "recording " span.mono { (str_of(d, "recording").unwrap_or_default()) }
            @if let Some(bytes) = number("bytes") { ", " (bytes) " bytes" }
            @if let Some(sha) = str_of(d, "sha256").and_then(|s| s.get(..16)) { ", SHA-256 " span.mono { (sha) "…" } }
            @if let Some(error) = str_of(d, "error") { ", not written: " (error) }
        },
        _ => {
            let mut rest = d.clone();
            if let Some(map) = rest.as_object_mut() {
                for key in ["session", "masked", "duration_us", "duration_ms"] {
                    map.remove(key);
                }
            }
            html! { span.mono.muted.details { (compact(&rest)) } }
        }
    }
}

fn timeline_row(viewer: &Viewer, e: &AuditEvent, results: &HashMap<u64, &AuditEvent>) -> Markup {
    let d = &e.details;
    let seq_cell = html! {
        td { @if viewer.admin { a href={ "/audit/events/" (e.seq) } { (e.seq) } } @else { (e.seq) } }
        td.nowrap { (when(e.time.to_datetime())) }
    };
    match e.action.as_str() {
        "query" => {
            let result = results.get(&e.seq);
            let outcome = result.map(|r| {
                let rows = r.details.get("rows").and_then(Value::as_u64).unwrap_or(0);
                match str_of(&r.details, "outcome") {
                    Some("error") => format!(
                        "error {}",
                        str_of(&r.details, "sqlstate").unwrap_or_default()
                    ),
                    _ => format!("ok, {rows} row(s)"),
                }
            });
            html! {
                tr.statement data-seq=(e.seq) {
                    (seq_cell)
                    (what_cell(html! { "statement" }, d))
                    (statement_cell(d))
                    td { (outcome.unwrap_or_else(|| "running".into())) }
                    td.masked-counts { (masked_text(result.and_then(|r| r.details.get("masked")))) }
                    td.nowrap { (result.map(|r| duration_text(&r.details)).unwrap_or_default()) }
                }
            }
        }
        "query.refused" => html! {
            tr.refused data-seq=(e.seq) {
                (seq_cell)
                (what_cell(html! { (view::shield_icon()) " refused" }, d))
                (statement_cell(d))
                td colspan="3" {
                    @if let Some(shield) = str_of(d, "shield") { "shield " code { (shield) } ": " }
                    (str_of(d, "message").unwrap_or_default())
                }
            }
        },
        "query.result" => html! {
            tr data-seq=(e.seq) {
                (seq_cell)
                (what_cell(html! { "outcome" }, d))
                td {}
                td { (str_of(d, "outcome").unwrap_or_default()) ", " (d.get("rows").and_then(Value::as_u64).unwrap_or(0)) " row(s)" }
                td.masked-counts { (masked_text(d.get("masked"))) }
                td.nowrap { (duration_text(d)) }
            }
        },
        action => html! {
            tr.event data-seq=(e.seq) data-action=(action) {
                (seq_cell)
                td { code { (action) } }
                td { (event_summary(e)) }
                td { (str_of(d, "reason").filter(|_| action != "session.ended_by_admin").unwrap_or_default()) }
                td.masked-counts { (masked_text(d.get("masked"))) }
                td.nowrap { (duration_text(d)) }
            }
        },
    }
}

/// Details as short text for the timeline.
fn compact(v: &Value) -> String {
    let text = v.to_string();
    if text == "{}" || text == "null" {
        return String::new();
    }
    match text.char_indices().nth(240) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The playback of one sealed recording (or why there is none).
async fn recording(gateway: &Gateway, seal: &AuditEvent) -> Markup {
    let d = &seal.details;
    let id = str_of(d, "recording").unwrap_or_default();
    let heading = html! {
        h2 { "Recording " span.mono { (id) } }
        p.help {
            "As the engineer saw it (masked), sealed in audit event "
            (seal.seq) " (SHA-256 " span.mono { (str_of(d, "sha256").unwrap_or("-").get(..16).unwrap_or("-")) "…" } ")"
            @if d.get("truncated").and_then(Value::as_bool) == Some(true) { "; cut at its size bound" }
            "."
        }
    };
    let file = str_of(d, "file").filter(|f| {
        let stem = f.rsplit_once('.').map_or(*f, |(s, _)| s);
        crate::recordings::valid_id(stem) && !f.contains('/') && !f.starts_with('.')
    });
    let Some(file) = file else {
        return html! { (heading) p.notice.error { "The recording could not be written when the session ran." } };
    };
    let path = crate::recordings::recordings_dir(gateway).join(file);
    let bytes = match read_bounded(&path).await {
        Ok(b) => b,
        Err(e) => {
            return html! {
                (heading)
                p.notice.error #recording-missing {
                    "Its file cannot be read (" (e.kind().to_string()) "): the retention sweep may have deleted it."
                }
            };
        }
    };
    let (cut, bytes) = bytes;
    let text = String::from_utf8_lossy(&bytes);
    let body = match parse_cast(&text) {
        Some(frames) => player(&frames),
        None => html! {
            p.help { "Format not played here: shown as text." }
            pre.playback #playback-text { (strip_controls(&text)) }
        },
    };
    html! {
        section.recording data-recording=(id) {
            (heading)
            (body)
            @if cut { p.muted { "Only the first " (MAX_RECORDING / 1024) " KiB are shown: " code { "periscope recordings play " (id) } " plays it all." } }
        }
    }
}

async fn read_bounded(path: &std::path::Path) -> std::io::Result<(bool, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut bytes = Vec::new();
    file.take(MAX_RECORDING + 1).read_to_end(&mut bytes).await?;
    let cut = bytes.len() as u64 > MAX_RECORDING;
    bytes.truncate(MAX_RECORDING as usize);
    Ok((cut, bytes))
}

/// The output events of an asciicast v2 text (header line first), or
/// `None` when it is not one.
fn parse_cast(text: &str) -> Option<Vec<(f64, String)>> {
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next()?).ok()?;
    if header.get("version").and_then(Value::as_u64) != Some(2) {
        return None;
    }
    let mut frames = Vec::new();
    for line in lines {
        let Ok(Value::Array(event)) = serde_json::from_str::<Value>(line) else {
            // The last line of a cut file may be partial.
            continue;
        };
        if let [Value::Number(t), Value::String(kind), Value::String(data)] = event.as_slice()
            && kind == "o"
        {
            frames.push((t.as_f64().unwrap_or(0.0), strip_controls(data)));
        }
    }
    Some(frames)
}

fn player(frames: &[(f64, String)]) -> Markup {
    html! {
        div.player #player data-frames=(frames.len()) {
            button #play type="button" data-play disabled { "Play" }
            " "
            button #step type="button" data-step disabled { "Step" }
            " "
            button #show-all type="button" data-all disabled { "Show all" }
            " "
            span.muted #position data-position { (frames.len()) " / " (frames.len()) }
        }
        pre.playback #playback {
            @for (t, data) in frames {
                span.frame data-t=(format!("{t:.3}")) { (data) }
            }
        }
    }
}

/// Terminal text without its escape sequences and control characters
/// (newlines and tabs kept; `\r\n` made `\n`), for showing as plain text.
fn strip_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `POST /sessions/{id}/end` (`reason` optional): an administrator ends a
/// live session, as `POST /v1/admin/sessions/{id}/end`.
pub(crate) async fn end(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, form) = match posted(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !viewer.admin {
        return view::error_page(
            Some(&viewer),
            StatusCode::FORBIDDEN,
            &format!(
                "`{}` is not an administrator: ending a session needs the `admin` role or a role \
                 with `admin = true`",
                viewer.name()
            ),
        );
    }
    match gateway
        .end_session(viewer.name(), &id, form.get("reason"))
        .await
    {
        Ok(_) => {
            let back = form
                .get("back")
                .filter(|b| *b == "/grants")
                .map_or_else(|| format!("/sessions/{id}?ended=1"), str::to_owned);
            view::redirect(&back)
        }
        Err(e) => view::failure_page(Some(&viewer), &Failure::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_dropped_and_text_kept() {
        assert_eq!(
            strip_controls("\u{1b}[31mred\u{1b}[0m [email]\r\n\u{1b}]0;title\u{7}x\u{7}"),
            "red [email]\nx"
        );
    }

    #[test]
    fn a_cast_becomes_frames_and_anything_else_is_text() {
        let cast = "{\"version\":2,\"width\":80,\"height\":24}\n[0.01,\"o\",\"one [email]\\n\"]\n[0.5,\"i\",\"typed\"]\n[1.25,\"o\",\"<b>two</b>\\n\"]\n[2.0,\"o\",\"cut";
        let frames = parse_cast(cast).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], (1.25, "<b>two</b>\n".to_string()));
        let html = player(&frames).into_string();
        assert!(html.contains("&lt;b&gt;two&lt;/b&gt;"), "{html}");
        assert!(html.contains("data-t=\"1.250\""), "{html}");
        assert!(parse_cast("{\"kind\":\"sql\"}\n{\"statement\":1}").is_none());
        assert!(parse_cast("not json").is_none());
    }

    #[test]
    fn masked_counts_read_as_words() {
        let v = serde_json::json!({"email": 3, "card": 0, "phone": 1});
        assert_eq!(masked_text(Some(&v)), "email 3, phone 1");
        assert_eq!(masked_text(None), "");
    }
}
