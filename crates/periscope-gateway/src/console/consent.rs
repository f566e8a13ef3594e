//! The OAuth consent page (`/oauth/authorize`): where a person lets an MCP
//! client act as them ([`crate::oauth`] holds the protocol).
//!
//! Signed out, the browser goes to the sign-in page (single sign-on or a
//! token) and comes back here. Signed in, the page names the client, where
//! it returns to and what it will be able to do; only the session's own
//! CSRF-checked "Allow" issues a code. Both answers are audited as
//! `oauth.consent`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::html;
use periscope_audit::actions;
use serde_json::json;

use super::{Form, Viewer, posted, view, viewer};
use crate::gateway::Gateway;
use crate::oauth::{Authorization, AuthorizeError, AuthorizeParams, check_authorize};

/// `GET /oauth/authorize`: checks the request, then asks the signed-in
/// person (signing them in first).
pub(crate) async fn page(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let params: AuthorizeParams = serde_urlencoded_lenient(&query);
    let base = crate::mcp::base_url(&gateway, &headers);
    let to = match check_authorize(&gateway, &base, &params) {
        Ok(to) => to,
        Err(e) => return refused(&base, e),
    };
    let viewer = match viewer(&gateway, &headers).await {
        Ok(v) => v,
        Err(_) => {
            let back = format!("{}?{query}", crate::oauth::AUTHORIZE_PATH);
            let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
            return view::redirect(&format!("/signin?return_to={encoded}"));
        }
    };
    consent_page(&gateway, &viewer, &params, &to)
}

/// `POST /oauth/authorize`: the person's answer (CSRF-checked).
pub(crate) async fn answer(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, form) = match posted(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let params = params_of(&form);
    let base = crate::mcp::base_url(&gateway, &headers);
    let to = match check_authorize(&gateway, &base, &params) {
        Ok(to) => to,
        Err(e) => return refused(&base, e),
    };
    let allowed = form.get("decision") == Some("allow");
    let draft = gateway
        .draft(viewer.name(), actions::OAUTH_CONSENT, &to.client.name)
        .with_details(json!({
            "identity": viewer.name(),
            "agent": to.client.name,
            "redirect_uri": to.redirect_uri,
            "decision": if allowed { "allowed" } else { "denied" },
        }));
    if let Err(e) = gateway.audit(draft).await {
        return view::error_page(
            Some(&viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the audit log is unavailable, so nothing was decided: {e}"),
        );
    }
    if !allowed {
        return view::redirect(&to.redirect_with(
            &base,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "the person declined to let this client act as them",
                ),
            ],
        ));
    }
    match gateway.issue_oauth_code(&to, viewer.name()).await {
        Ok(code) => view::redirect(&to.redirect_with(&base, &[("code", code.as_str())])),
        Err(e) => view::error_page(
            Some(&viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("could not issue the authorization: {e}"),
        ),
    }
}

/// Parses the query leniently: a repeated or odd field is the check's
/// business, not a 400 before it.
fn serde_urlencoded_lenient(query: &str) -> AuthorizeParams {
    let mut params = AuthorizeParams::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        set(&mut params, &k, v.into_owned());
    }
    params
}

fn params_of(form: &Form) -> AuthorizeParams {
    let mut params = AuthorizeParams::default();
    for (k, v) in &form.0 {
        set(&mut params, k, v.clone());
    }
    params
}

fn set(params: &mut AuthorizeParams, name: &str, value: String) {
    let slot = match name {
        "response_type" => &mut params.response_type,
        "client_id" => &mut params.client_id,
        "redirect_uri" => &mut params.redirect_uri,
        "state" => &mut params.state,
        "code_challenge" => &mut params.code_challenge,
        "code_challenge_method" => &mut params.code_challenge_method,
        "resource" => &mut params.resource,
        "scope" => &mut params.scope,
        _ => return,
    };
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// An error page, or the error sent back to a client we can trust.
fn refused(base: &str, error: AuthorizeError) -> Response {
    match error {
        AuthorizeError::Page(message) => view::error_page(
            None,
            StatusCode::BAD_REQUEST,
            &format!("This authorization request was refused: {message}."),
        ),
        AuthorizeError::Redirect {
            to,
            error,
            description,
        } => view::redirect(&to.redirect_with(
            base,
            &[("error", error), ("error_description", &description)],
        )),
    }
}

/// The consent form. Its CSP lets the form's answer leave for the
/// client's redirect URI (browsers hold a redirect after a form post to
/// `form-action`), and nowhere else.
fn consent_page(
    gateway: &Gateway,
    viewer: &Viewer,
    params: &AuthorizeParams,
    to: &Authorization,
) -> Response {
    let roles = viewer.caller().identity.roles.join(", ");
    let hours = gateway.sso_token_lifetime().as_secs().div_ceil(3600);
    let body = html! {
        section.consent {
            p #consent-client {
                strong { (to.client.name) } " asks to act as "
                strong { (viewer.name()) } " through this gateway's MCP server."
            }
            ul {
                li { "It will use your roles (" (roles) ") and your grants, through the same shields as you: masked values stay masked, refusals stay refused." }
                li { "Every call it makes is audited as " code { (viewer.name()) " via mcp" } " with its name." }
                li { "It cannot approve requests. Its access lasts " (hours) " h, or until you revoke its token." }
                li { "It returns to " code #consent-redirect { (to.redirect_uri) } "." }
            }
            p.help { "Allow only a client you started yourself, just now." }
            form method="post" action=(crate::oauth::AUTHORIZE_PATH) {
                (view::csrf_field(viewer))
                @for (name, value) in params.fields() {
                    input type="hidden" name=(name) value=(value);
                }
                button #allow type="submit" name="decision" value="allow" { "Allow" }
                " "
                button #deny.secondary type="submit" name="decision" value="deny" { "Deny" }
            }
        }
    };
    let mut response = view::page(
        StatusCode::OK,
        "Allow an MCP client?",
        Some(viewer),
        "",
        body,
    );
    if let Some(origin) = form_target(&to.redirect_uri)
        && let Ok(csp) = HeaderValue::from_str(&view::CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {origin}"),
        ))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The CSP source of a redirect URI: its origin, or its scheme for a
/// private-use scheme.
fn form_target(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    match url.scheme() {
        "http" | "https" => {
            let origin = url.origin().ascii_serialization();
            (origin != "null").then_some(origin)
        }
        scheme => Some(format!("{scheme}:")),
    }
}
