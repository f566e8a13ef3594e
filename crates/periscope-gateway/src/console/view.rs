//! The console's page frame, responses and small formatters.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Viewer;
use crate::api::OwnBody;
use crate::websession::CSRF_FIELD;

/// Scripts and styles from this origin only; no inline script, no eval,
/// no framing, forms only to this origin.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// htmx settings: no `eval` (so the CSP needs no `unsafe-eval`), no
/// injected `<style>` (so it needs no `unsafe-inline`), no scripts run from
/// swapped content.
const HTMX_CONFIG: &str = r#"{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"historyCacheSize":0,"selfRequestsOnly":true}"#;

/// The security headers every console response carries.
pub(crate) fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response.extensions_mut().insert(OwnBody);
}

/// An HTML response: a page or an htmx fragment, never cached.
pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(&mut response);
    response
}

/// A 303 to a path on this gateway.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(&mut response);
    response
}

/// The CSRF token as a hidden form field.
pub(crate) fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(viewer.web.csrf_token); }
}

/// A whole page: head, navigation (when signed in), `body`.
pub(crate) fn page(
    status: StatusCode,
    title: &str,
    viewer: Option<&Viewer>,
    active: &str,
    body: Markup,
) -> Response {
    let hx_headers = viewer.map(|v| {
        serde_json::json!({ crate::websession::CSRF_HEADER: v.web.csrf_token }).to_string()
    });
    let nav_item = |href: &str, key: &str, label: &str| {
        html! {
            a href=(href) class=[(key == active).then_some("active")] { (label) }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · Periscope" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/htmx.min.js" defer {}
                script src="/static/console.js" defer {}
            }
            body hx-headers=[hx_headers] {
                header {
                    span.brand { "Periscope" }
                    @if let Some(v) = viewer {
                        nav {
                            (nav_item("/", "home", "Home"))
                            (nav_item("/request", "request", "Request"))
                            (nav_item("/approvals", "approvals", "Approvals"))
                            (nav_item("/grants", "grants", "Grants"))
                            (nav_item("/query", "query", "Query"))
                            @if v.admin {
                                (nav_item("/audit", "audit", "Audit"))
                                (nav_item("/discovery", "discovery", "Discovery"))
                                (nav_item("/admin", "admin", "Admin"))
                            }
                        }
                        form.signout method="post" action="/signout" {
                            (csrf_field(v))
                            span #whoami { (v.name()) }
                            button #signout type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    html_response(status, markup)
}

/// A small shield, drawn inline (no font has one everywhere; an inline
/// SVG is markup, not a script, so the CSP allows it).
pub(crate) fn shield_icon() -> Markup {
    html! {
        svg.shield-icon viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" {
            path fill="currentColor" d="M12 2 4 5v6c0 5.2 3.4 9.6 8 11 4.6-1.4 8-5.8 8-11V5z" {}
        }
    }
}

/// A page saying what went wrong.
pub(crate) fn error_page(viewer: Option<&Viewer>, status: StatusCode, message: &str) -> Response {
    let title = match status.as_u16() {
        400 => "Not accepted",
        401 => "Not signed in",
        403 => "Refused",
        404 => "Not found",
        409 => "Conflict",
        503 => "Unavailable",
        _ => "Error",
    };
    page(
        status,
        title,
        viewer,
        "",
        html! { p.notice.error role="alert" { (message) } p { a href="/" { "Back to the console" } } },
    )
}

/// An API failure as a page (same message and hint as the API's JSON).
pub(crate) fn failure_page(viewer: Option<&Viewer>, failure: &crate::api::Failure) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_REQUEST);
    let message = match &failure.hint {
        Some(hint) => format!("{} ({hint})", failure.message),
        None => failure.message.clone(),
    };
    error_page(viewer, status, &message)
}

/// `2026-11-29 06:25:03 UTC`.
pub(crate) fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An RFC 3339 time for `<time datetime>`.
pub(crate) fn machine_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `1h 30m`, `45m`, `20s`.
pub(crate) fn span(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// A live countdown to `until` (seconds left as the server sees them now;
/// `console.js` counts down from there, so a browser's own clock does not
/// matter).
pub(crate) fn countdown(now: OffsetDateTime, until: OffsetDateTime) -> Markup {
    let left = (until - now).whole_seconds().max(0);
    let left_u = u64::try_from(left).unwrap_or(0);
    html! {
        time.countdown datetime=(machine_time(until)) data-remaining=(left) title=(when(until)) {
            (span(Duration::from_secs(left_u))) " left"
        }
    }
}

/// A compact fingerprint of what a live region shows: the poll answers
/// 204 (nothing to swap) while it is unchanged, so a half-typed comment in
/// the region survives the polling.
pub(crate) fn fingerprint(parts: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_durations() {
        assert_eq!(span(Duration::from_secs(20)), "20s");
        assert_eq!(span(Duration::from_secs(1800)), "30m");
        assert_eq!(span(Duration::from_secs(95)), "1m 35s");
        assert_eq!(span(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(span(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let reason = "<script>alert(1)</script>";
        let markup = html! { p { (reason) } }.into_string();
        assert_eq!(markup, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_no_framing() {
        assert!(CSP.contains("script-src 'self';"));
        assert!(!CSP.contains("unsafe"));
        assert!(CSP.contains("frame-ancestors 'none'"));
    }
}
