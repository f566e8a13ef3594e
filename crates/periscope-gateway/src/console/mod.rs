//! The web console (`docs/console.md`): HTML
//! pages served at `/` on the API listener, a second client of the same
//! model as the CLI.
//!
//! - **Rendering.** Server-side with `maud` (compiled templates, every
//!   interpolated value escaped), htmx 2 vendored in `assets/` and embedded
//!   in the binary with [`include_bytes!`]; no build step, nothing loaded
//!   from elsewhere. The only script of our own, `assets/console.js`, counts
//!   grants down; `Content-Security-Policy` allows scripts and styles from
//!   this origin only (no inline script, no `eval`: htmx's `allowEval` is
//!   off) and `frame-ancestors 'none'`.
//! - **Sign-in.** An API token of a local identity, or single sign-on when
//!   `[sso]` is configured; both end in the same server-side browser
//!   session ([`crate::websession`]). The token form carries a
//!   double-submit token (a `__Host-` cookie equal to a hidden field), so a
//!   forged cross-site form cannot sign a browser in as someone else.
//! - **Authorisation.** Every page takes the session's [`Caller`] and calls
//!   the same [`Gateway`] methods as the API (`create_request`, `approve`,
//!   `deny`, `list_grants`...), which apply the same rules: what the API
//!   refuses, the console refuses, with the same message.
//! - **CSRF.** Every POST must carry the session's CSRF token, as the
//!   `csrf_token` form field or the `x-csrf-token` header (htmx sends it
//!   from the `hx-headers` of `<body>`); a POST without it is refused with
//!   403 before anything else happens.

mod admin;
mod assets;
mod audit;
mod consent;
mod discovery;
mod grants;
mod pages;
mod query;
mod session;
mod view;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use maud::html;
use serde::Deserialize;

use crate::api::{OwnBody, RequestId};
use crate::client_addr::ClientAddr;
use crate::gateway::{Caller, Gateway};
use crate::identity::random_bytes;
use crate::websession::{
    self, CSRF_FIELD, CSRF_HEADER, END_SIGN_OUT, WebCaller, WebSessionFailure,
    clear_session_cookie, session_cookie,
};

/// The double-submit cookie of the token sign-in form.
const SIGNIN_COOKIE: &str = "__Host-periscope_signin";
/// The sign-in form's field that must equal [`SIGNIN_COOKIE`].
const SIGNIN_FIELD: &str = "signin_check";
/// How a token sign-in is recorded in the session (`auth.web_session.start`).
pub(crate) const TOKEN_METHOD: &str = "token";

/// The console's routes, merged into the API router (outside `/v1`).
pub(crate) fn routes() -> Router<Gateway> {
    Router::new()
        .route("/", get(pages::home))
        .route("/home/live", get(pages::home_live))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route(
            "/request",
            get(pages::request_form).post(pages::request_submit),
        )
        .route("/approvals", get(pages::approvals))
        .route("/approvals/list", get(pages::approvals_list))
        .route("/approvals/{id}/approve", post(pages::approve))
        .route("/approvals/{id}/deny", post(pages::deny))
        .route("/grants", get(grants::page))
        .route("/grants/live", get(grants::live))
        .route("/grants/{id}/revoke", post(grants::revoke))
        .route("/audit", get(audit::page))
        .route("/audit/events/{seq}", get(audit::detail))
        .route("/audit/verify", post(audit::verify))
        .route("/query", get(query::page).post(query::run))
        .route("/query/results", get(query::results))
        .route("/sessions/{id}", get(session::page))
        .route("/sessions/{id}/end", post(session::end))
        .route("/discovery", get(discovery::page))
        .route("/static/{file}", get(assets::serve))
        .route("/admin", get(admin::page))
        .route("/admin/identities", post(admin::add))
        .route(
            "/admin/identities/{name}",
            get(admin::identity).post(admin::change),
        )
        .route("/admin/identities/{name}/tokens", post(admin::create_token))
        .route("/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/admin/reload", post(admin::reload))
        .route(
            crate::oauth::AUTHORIZE_PATH,
            get(consent::page).post(consent::answer),
        )
        .layer(axum::Extension(std::sync::Arc::new(
            query::QueryState::default(),
        )))
}

type Client = Option<axum::Extension<ConnectInfo<ClientAddr>>>;

fn addr(client: &Client) -> Option<SocketAddr> {
    client.as_ref().map(|c| c.0.0.0)
}

/// Whether htmx made the request (it wants a fragment, not a page).
fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// A signed-in browser: the session and whether it may administer.
pub(crate) struct Viewer {
    web: WebCaller,
    admin: bool,
}

impl Viewer {
    fn caller(&self) -> &Caller {
        &self.web.caller
    }

    fn name(&self) -> &str {
        self.web.caller.name()
    }
}

/// The signed-in browser behind a request, or the response that sends it
/// to the sign-in page (htmx gets an `HX-Redirect`, a page a 303).
async fn viewer(gateway: &Gateway, headers: &HeaderMap) -> Result<Viewer, Response> {
    let to_signin = |why: Option<&str>| {
        let location = match why {
            Some(reason) => format!(
                "/signin?ended={}",
                url::form_urlencoded::byte_serialize(reason.as_bytes()).collect::<String>()
            ),
            None => "/signin".to_string(),
        };
        if is_htmx(headers) {
            let mut response = StatusCode::OK.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert("hx-redirect", value);
            }
            response.extensions_mut().insert(OwnBody);
            response
        } else {
            view::redirect(&location)
        }
    };
    let Some(cookie) = session_cookie(headers) else {
        return Err(to_signin(None));
    };
    match gateway.web_session(cookie).await {
        Ok(web) => {
            let admin = gateway
                .config()
                .policy
                .is_admin(&web.caller.policy_identity);
            Ok(Viewer { web, admin })
        }
        Err(WebSessionFailure::Ended { reason }) => Err(to_signin(Some(&reason))),
        Err(WebSessionFailure::Unknown) => Err(to_signin(None)),
        Err(WebSessionFailure::Unavailable(e)) => Err(view::error_page(
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("sessions are unavailable: {e}"),
        )),
    }
}

/// A posted form's fields, in order (checkboxes repeat a name).
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; `None` when absent or empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`.
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// A state-changing request of a signed-in browser: its session checked,
/// then its CSRF token (header or form field); the form parsed.
async fn posted(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Viewer, Form), Response> {
    let viewer = viewer(gateway, headers).await?;
    let form = Form::parse(body);
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| form.get(CSRF_FIELD))
        .unwrap_or("");
    if !gateway.csrf_ok(&viewer.web.session_id, presented) {
        tracing::warn!(identity = %viewer.name(), "a console POST without its CSRF token was refused");
        return Err(view::error_page(
            Some(&viewer),
            StatusCode::FORBIDDEN,
            "This request did not carry the session's CSRF token, so nothing was changed. \
             Use the forms of the console's own pages.",
        ));
    }
    Ok((viewer, form))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SigninQuery {
    ended: Option<String>,
    signed_out: Option<String>,
    return_to: Option<String>,
}

/// Where a sign-in lands: the page that sent the browser here (a path on
/// this gateway, e.g. an MCP client's consent page), else home.
fn landing(asked: Option<&str>) -> String {
    match asked.filter(|p| !p.is_empty()) {
        Some(path) => crate::api::landing_path(Some(path)).unwrap_or_else(|_| "/".to_string()),
        None => "/".to_string(),
    }
}

fn signin_cookie(value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SIGNIN_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
    ))
    .ok()
}

fn clear_signin_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-periscope_signin=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// The sign-in page with a fresh double-submit token; `message` says why
/// it is shown again; the browser lands on `return_to` once signed in.
fn signin_form(
    gateway: &Gateway,
    status: StatusCode,
    message: Option<&str>,
    return_to: &str,
) -> Response {
    let return_q: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    let check = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<24>());
    let providers = gateway.sso_providers();
    let body = html! {
        section.signin {
            @if let Some(message) = message {
                p.notice role="alert" { (message) }
            }
            @if !providers.is_empty() {
                h2 { "Single sign-on" }
                @for (name, display) in &providers {
                    p {
                        a.button href={ "/sso/login?return_to=" (return_q) "&provider="
                            (url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()) } {
                            "Sign in with " (display)
                        }
                    }
                }
                h2 { "Or with an API token" }
            }
            form method="post" action="/signin" {
                input type="hidden" name=(SIGNIN_FIELD) value=(check);
                input type="hidden" name="return_to" value=(return_to);
                label for="token" { "API token" }
                input #token type="password" name="token" autocomplete="off"
                    placeholder="psc_…" required;
                button #signin type="submit" { "Sign in" }
            }
            p.help { "A local identity's token, as given by " code { "periscope admin token create" } "." }
        }
    };
    let mut response = view::page(status, "Sign in", None, "signin", body);
    if let Some(cookie) = signin_cookie(&check) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /signin`.
async fn signin_page(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(q): Query<SigninQuery>,
) -> Response {
    if let Some(cookie) = session_cookie(&headers)
        && gateway.web_session(cookie).await.is_ok()
    {
        return view::redirect(&landing(q.return_to.as_deref()));
    }
    let message = match (&q.ended, &q.signed_out) {
        (_, Some(_)) => Some("You are signed out.".to_string()),
        (Some(reason), None) => Some(format!("Your session ended ({reason}): sign in again.")),
        (None, None) => None,
    };
    signin_form(
        &gateway,
        StatusCode::OK,
        message.as_deref(),
        &landing(q.return_to.as_deref()),
    )
}

/// `POST /signin`: a token sign-in. The token is checked like an API call
/// (failures audited as `auth.login_failed`), then a browser session starts.
async fn signin(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    client: Client,
    request_id: Option<axum::Extension<RequestId>>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let return_to = landing(form.get("return_to"));
    let expected = websession::cookie(&headers, SIGNIN_COOKIE).unwrap_or("");
    let presented = form.get(SIGNIN_FIELD).unwrap_or("");
    let same = {
        use subtle::ConstantTimeEq;
        !expected.is_empty()
            && expected.len() == presented.len()
            && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    };
    if !same {
        return signin_form(
            &gateway,
            StatusCode::FORBIDDEN,
            Some(
                "This sign-in form was not issued to this browser (or it expired): sign in again from this page.",
            ),
            &return_to,
        );
    }
    let Some(token) = form.get("token") else {
        return signin_form(
            &gateway,
            StatusCode::BAD_REQUEST,
            Some("Enter an API token."),
            &return_to,
        );
    };
    let request_id = request_id.map(|r| r.0.0).unwrap_or_default();
    let caller = match gateway
        .authenticate_api(Some(token), addr(&client), &request_id)
        .await
    {
        Ok(caller) => caller,
        Err(crate::identity::AuthFailure::Unavailable(e)) => {
            return view::error_page(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("sign-in is unavailable: {e}"),
            );
        }
        Err(e) => {
            return signin_form(
                &gateway,
                StatusCode::UNAUTHORIZED,
                Some(&format!("Sign-in refused: {e}.")),
                &return_to,
            );
        }
    };
    match gateway
        .start_web_session(caller.name(), TOKEN_METHOD, addr(&client))
        .await
    {
        Ok(started) => {
            let mut response = view::redirect(&return_to);
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, started.set_cookie());
            headers.append(header::SET_COOKIE, clear_signin_cookie());
            response
        }
        Err(e) => view::error_page(
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("could not start a session: {e}"),
        ),
    }
}

/// `POST /signout`: ends the session (CSRF token required).
async fn signout(State(gateway): State<Gateway>, headers: HeaderMap, body: Bytes) -> Response {
    let (viewer, _) = match posted(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if let Err(e) = gateway
        .end_web_session(&viewer.web.session_id, viewer.name(), END_SIGN_OUT)
        .await
    {
        return view::error_page(
            Some(&viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("could not end the session: {e}"),
        );
    }
    let mut response = view::redirect("/signin?signed_out=1");
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_session_cookie());
    response
}
