//! Single sign-on over HTTP: the browser's pages and redirects
//! (`/sso/login`, `/sso/callback`, `/sso/logout`, `/sso/session`) and the
//! CLI's JSON calls (`/v1/sso/...`, no token needed: they are how one is
//! obtained). The flows themselves are [`crate::sso`]'s.
//!
//! Browser routes answer with small HTML pages (escaped, no script, nothing
//! loaded from elsewhere) rather than the API's JSON errors: a person reads
//! them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use periscope_api as api;
use serde::Deserialize;

use super::OwnBody;
use super::failure::Failure;
use crate::client_addr::ClientAddr;
use crate::gateway::Gateway;
use crate::sso::{
    CallbackParams, DevicePoll, FlowStart, Landing, Refusal, STATE_COOKIE, WEB_FLOW_TTL,
};
use crate::websession::{
    self, CSRF_FIELD, CSRF_HEADER, END_SIGN_OUT, clear_session_cookie, session_cookie,
};

/// Where a browser lands after signing in when it did not say.
pub const DEFAULT_LANDING: &str = "/sso/session";

type Client = Option<axum::Extension<ConnectInfo<ClientAddr>>>;

fn addr(client: &Client) -> Option<std::net::SocketAddr> {
    client.as_ref().map(|c| c.0.0.0)
}

/// The style of the sign-in pages (inline: they work before the console's
/// assets are reachable, and the CSP allows inline style only).
const PAGE_STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;\
    padding:0 1em;color:#1b1f24}code{background:#eef1f4;padding:0 .2em}\
    button,a.button{font:inherit;padding:.4em 1em}";

/// A small page around `body` (maud escapes every interpolated value).
fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Periscope" }
                style { (PreEscaped(PAGE_STYLE)) }
            }
            body { h1 { (title) } (body) }
        }
    };
    let mut response = (status, html.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response.extensions_mut().insert(OwnBody);
    response
}

fn refusal_page(refusal: &Refusal) -> Response {
    let failure = Failure::from_refusal(refusal);
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_REQUEST);
    page(
        status,
        "Sign-in refused",
        html! {
            p { (failure.message) }
            @if let Some(hint) = &failure.hint { p { (hint) } }
            p { a href="/sso/login" { "Sign in again" } }
        },
    )
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Err(_) => return Failure::internal("a redirect URL is not a valid header").into_response(),
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(OwnBody);
    response
}

/// A local path to land on: absolute, on this host (`/x`, not `//x` or a
/// URL), so the sign-in cannot be turned into an open redirect.
pub(crate) fn landing_path(asked: Option<&str>) -> Result<String, String> {
    let Some(path) = asked.filter(|p| !p.is_empty()) else {
        return Ok(DEFAULT_LANDING.to_string());
    };
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && path.len() <= 8 * 1024
        && path.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if ok {
        Ok(path.to_string())
    } else {
        Err(format!(
            "`return_to` must be a path on this gateway such as `/`, not {path:?}"
        ))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    provider: Option<String>,
    return_to: Option<String>,
}

/// `GET /sso/login`: to the provider (a picker first when there are several
/// and none was chosen).
pub(crate) async fn login(
    State(gateway): State<Gateway>,
    Query(q): Query<LoginQuery>,
    client: Client,
) -> Response {
    let return_to = match landing_path(q.return_to.as_deref()) {
        Ok(path) => path,
        Err(message) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Cannot sign in",
                html! { p { (message) } },
            );
        }
    };
    let providers = gateway.sso_providers();
    if q.provider.is_none() && providers.len() > 1 {
        let return_q: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let items = html! {
            @for (name, display) in &providers {
                @let name_q: String =
                    url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
                li {
                    a class="button" href={ "/sso/login?provider=" (name_q) "&return_to=" (return_q) } {
                        (display)
                    }
                }
            }
        };
        return page(
            StatusCode::OK,
            "Sign in",
            html! { p { "Sign in to Periscope with:" } ul { (items) } },
        );
    }
    match gateway
        .sso_begin(
            q.provider.as_deref(),
            FlowStart::Web { return_to },
            addr(&client),
        )
        .await
    {
        Ok(begun) => {
            let mut response = redirect(&begun.authorize_url);
            let cookie = format!(
                "{STATE_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
                begun.state.as_str(),
                WEB_FLOW_TTL.as_secs()
            );
            if let Ok(mut value) = HeaderValue::from_str(&cookie) {
                value.set_sensitive(true);
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(refusal) => refusal_page(&refusal),
    }
}

fn clear_state_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-periscope_sso_state=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
    )
}

/// `GET /sso/callback`: where every provider sends the browser back.
pub(crate) async fn callback(
    State(gateway): State<Gateway>,
    Query(params): Query<CallbackParams>,
    headers: HeaderMap,
    client: Client,
) -> Response {
    let state_cookie = websession::cookie(&headers, STATE_COOKIE);
    let mut response = match gateway
        .sso_callback(&params, state_cookie, addr(&client))
        .await
    {
        Ok(Landing::Web {
            session, return_to, ..
        }) => {
            let mut response = redirect(&return_to);
            response
                .headers_mut()
                .append(header::SET_COOKIE, session.set_cookie());
            response
        }
        Ok(Landing::Cli { redirect: to }) => redirect(&to),
        Err((refusal, Some(loopback))) => match url::Url::parse(&loopback) {
            Ok(mut url) => {
                url.query_pairs_mut()
                    .append_pair("error", refusal.code())
                    .append_pair("error_description", &refusal.to_string());
                redirect(url.as_str())
            }
            Err(_) => refusal_page(&refusal),
        },
        Err((refusal, None)) => refusal_page(&refusal),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_state_cookie());
    response
}

/// The CSRF token sent with a form post, by header or form field.
fn presented_csrf(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(value) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(value.to_string());
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
}

/// `POST /sso/logout`: ends the browser session (CSRF token required).
pub(crate) async fn logout(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed_out = || {
        let mut response = page(
            StatusCode::OK,
            "Signed out",
            html! {
                p { "You are signed out of Periscope." }
                p { a href="/sso/login" { "Sign in" } }
            },
        );
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear_session_cookie());
        response
    };
    let Some(cookie) = session_cookie(&headers) else {
        return signed_out();
    };
    let web = match gateway.web_session(cookie).await {
        Ok(web) => web,
        Err(websession::WebSessionFailure::Unavailable(e)) => {
            return Failure::from(e).into_response();
        }
        Err(_) => return signed_out(),
    };
    let presented = presented_csrf(&headers, &body).unwrap_or_default();
    if !gateway.csrf_ok(&web.session_id, &presented) {
        return page(
            StatusCode::FORBIDDEN,
            "Not signed out",
            html! {
                p {
                    "The request did not carry this session's CSRF token. Use the sign-out \
                     button of a Periscope page."
                }
            },
        );
    }
    match gateway
        .end_web_session(&web.session_id, web.caller.name(), END_SIGN_OUT)
        .await
    {
        Ok(_) => signed_out(),
        Err(e) => Failure::from(e).into_response(),
    }
}

/// `GET /sso/session`: who this browser is signed in as, with a sign-out
/// button (the landing page until the console takes `/`).
pub(crate) async fn session(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let web = match session_cookie(&headers) {
        Some(cookie) => gateway.web_session(cookie).await.ok(),
        None => None,
    };
    let Some(web) = web else {
        return page(
            StatusCode::OK,
            "Not signed in",
            html! { p { a class="button" href="/sso/login" { "Sign in" } } },
        );
    };
    let roles = if web.caller.identity.roles.is_empty() {
        "no role".to_string()
    } else {
        web.caller.identity.roles.join(", ")
    };
    let until = web
        .caller
        .token_expires_at
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "Signed in",
        html! {
            p {
                "Signed in as " strong { (web.caller.name()) } " (" (roles) "), until "
                (until) "."
            }
            form method="post" action="/sso/logout" {
                input type="hidden" name=(CSRF_FIELD) value=(web.csrf_token);
                button type="submit" { "Sign out" }
            }
        },
    )
}

/// `GET /v1/sso/providers`.
pub(crate) async fn providers(State(gateway): State<Gateway>) -> Json<api::SsoProviders> {
    let providers: Vec<api::SsoProvider> = gateway
        .sso_providers()
        .into_iter()
        .map(|(name, display_name)| api::SsoProvider { name, display_name })
        .collect();
    let redirect_url = if providers.is_empty() {
        None
    } else {
        gateway.sso_redirect_url().ok()
    };
    Json(api::SsoProviders {
        providers,
        redirect_url,
    })
}

/// Whether the CLI's redirect is a loopback HTTP URL with a port (RFC 8252).
fn loopback_redirect(uri: &str) -> Result<(), Failure> {
    let bad = || {
        Failure::bad_request(format!(
            "`redirect_uri` must be http://127.0.0.1:PORT/... or http://[::1]:PORT/..., not {uri:?}"
        ))
    };
    let url = url::Url::parse(uri).map_err(|_| bad())?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]"));
    if url.scheme() != "http"
        || !loopback
        || url.port().is_none()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad());
    }
    Ok(())
}

/// `POST /v1/sso/cli/start`.
pub(crate) async fn cli_start(
    State(gateway): State<Gateway>,
    client: Client,
    Json(body): Json<api::SsoCliStart>,
) -> Result<Json<api::SsoCliStarted>, Failure> {
    loopback_redirect(&body.redirect_uri)?;
    if !crate::sso::valid_challenge(&body.code_challenge) {
        return Err(Failure::bad_request(
            "`code_challenge` must be the S256 challenge of a PKCE verifier (43 base64url \
             characters)",
        ));
    }
    let begun = gateway
        .sso_begin(
            body.provider.as_deref(),
            FlowStart::Cli {
                loopback: body.redirect_uri,
                challenge: body.code_challenge,
            },
            addr(&client),
        )
        .await
        .map_err(|r| Failure::from_refusal(&r))?;
    Ok(Json(api::SsoCliStarted {
        authorize_url: begun.authorize_url,
        provider: begun.provider,
        expires_at: begun.expires_at,
    }))
}

fn token_body(collected: crate::sso::Collected) -> api::SsoToken {
    api::SsoToken {
        token: collected.token.to_string(),
        token_id: collected.token_id,
        identity: collected.identity,
        roles: collected.roles,
        expires_at: collected.expires_at,
    }
}

/// `POST /v1/sso/cli/token`.
pub(crate) async fn cli_token(
    State(gateway): State<Gateway>,
    client: Client,
    Json(body): Json<api::SsoCliToken>,
) -> Result<Json<api::SsoToken>, Failure> {
    let collected = gateway
        .sso_collect(&body.code, &body.code_verifier, addr(&client))
        .await
        .map_err(|r| Failure::from_refusal(&r))?;
    Ok(Json(token_body(collected)))
}

/// `POST /v1/sso/device/start`.
pub(crate) async fn device_start(
    State(gateway): State<Gateway>,
    client: Client,
    body: Option<Json<api::SsoDeviceStart>>,
) -> Result<Json<api::SsoDeviceStarted>, Failure> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let started = gateway
        .sso_device_start(body.provider.as_deref(), addr(&client))
        .await
        .map_err(|r| Failure::from_refusal(&r))?;
    Ok(Json(api::SsoDeviceStarted {
        device_code: started.device_code.to_string(),
        user_code: started.user_code,
        verification_uri: started.verification_uri,
        verification_uri_complete: started.verification_uri_complete,
        interval: started.interval,
        expires_at: started.expires_at,
        provider: started.provider,
    }))
}

/// `POST /v1/sso/device/poll`: waits up to 20 s for the approval.
pub(crate) async fn device_poll(
    State(gateway): State<Gateway>,
    client: Client,
    Json(body): Json<api::SsoDevicePoll>,
) -> Result<Json<api::SsoDevicePolled>, Failure> {
    let polled = gateway
        .sso_device_poll(&body.device_code, addr(&client))
        .await
        .map_err(|r| Failure::from_refusal(&r))?;
    Ok(Json(match polled {
        DevicePoll::Pending => api::SsoDevicePolled {
            status: "pending".into(),
            token: None,
        },
        DevicePoll::Done(collected) => api::SsoDevicePolled {
            status: "done".into(),
            token: Some(token_body(collected)),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_paths_stay_on_this_gateway() {
        assert_eq!(landing_path(None).unwrap(), DEFAULT_LANDING);
        assert_eq!(
            landing_path(Some("/requests?x=1")).unwrap(),
            "/requests?x=1"
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "x",
            "/a b",
        ] {
            assert!(landing_path(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_redirects_are_loopback_with_a_port() {
        assert!(loopback_redirect("http://127.0.0.1:5555/callback").is_ok());
        assert!(loopback_redirect("http://[::1]:5555/cb").is_ok());
        for bad in [
            "http://127.0.0.1/callback",
            "https://127.0.0.1:5555/cb",
            "http://evil.example:5555/cb",
            "http://u:p@127.0.0.1:5555/cb",
            "http://localhost.evil.example:80/",
        ] {
            assert!(loopback_redirect(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn page_text_is_escaped() {
        let hostile = "<script>alert(1)</script>\"&";
        let response = page(StatusCode::OK, hostile, html! { p { (hostile) } });
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(!body.contains("<script>"), "{body}");
        assert_eq!(
            body.matches("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;")
                .count(),
            3,
            "title, heading and paragraph: {body}"
        );
    }
}
