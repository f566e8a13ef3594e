//! The few HTML pages a person (or headless Chromium) sees: sign-in with a
//! user picker, device approval, and errors. Plain forms, inline CSS, no
//! JavaScript and nothing fetched from elsewhere, so they work offline and
//! under a strict Content-Security-Policy.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::model::User;

/// Escapes text for an HTML element or a double-quoted attribute.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page with the shared look.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Periscope dev IdP</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         h1{{font-size:1.3rem}} label{{display:block;margin:.8rem 0 .3rem}}\
         select,input{{font-size:1rem;padding:.3rem;width:100%;box-sizing:border-box}}\
         button{{font-size:1rem;padding:.4rem 1rem;margin:1rem .5rem 0 0}}\
         .note{{color:#666;font-size:.9rem}} .error{{color:#a00}}\
         </style></head><body>\n<h1>{title}</h1>\n{body}\n\
         <p class=\"note\">Periscope's development identity provider: no passwords, \
         for demos and tests only.</p>\n</body></html>\n",
        title = escape(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        // No form-action: the sign-in form's answer redirects to the client,
        // and browsers apply form-action to that redirect too.
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error a person reads (never redirected to a client that could not be
/// verified).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Cannot continue",
        &format!("<p class=\"error\" id=\"error\">{}</p>", escape(message)),
    )
}

/// `<option>`s for a user picker, `selected` pre-chosen.
fn user_options(users: &[User], selected: Option<&str>) -> String {
    users
        .iter()
        .map(|u| {
            let label = match &u.email {
                Some(email) => format!("{} ({email})", u.username),
                None => u.username.clone(),
            };
            let sel = if selected == Some(u.username.as_str()) {
                " selected"
            } else {
                ""
            };
            format!(
                "<option value=\"{}\"{sel}>{}</option>",
                escape(&u.username),
                escape(&label)
            )
        })
        .collect()
}

/// The sign-in page: the authorization request's parameters as hidden
/// fields, a user picker named `login_hint`, and approve/deny buttons.
pub(crate) fn login_page(client_id: &str, params: &[(String, String)], users: &[User]) -> Response {
    let hidden: String = params
        .iter()
        .filter(|(name, _)| name != "login_hint" && name != "decision")
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let body = format!(
        "<p>Sign in to <strong id=\"client\">{client}</strong> as:</p>\
         <form method=\"post\" action=\"/authorize\">{hidden}\
         <label for=\"login_hint\">User</label>\
         <select id=\"login_hint\" name=\"login_hint\">{options}</select>\
         <button type=\"submit\" id=\"approve\" name=\"decision\" value=\"approve\">Sign in</button>\
         <button type=\"submit\" id=\"deny\" name=\"decision\" value=\"deny\">Cancel</button>\
         </form>",
        client = escape(client_id),
        options = user_options(users, None),
    );
    page(StatusCode::OK, "Sign in", &body)
}

/// The device verification page: the user code (pre-filled when the
/// verification URI carried it), a user picker, approve/deny.
pub(crate) fn device_page(
    user_code: Option<&str>,
    users: &[User],
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "{error}<p>Enter the code shown on your device.</p>\
         <form method=\"post\" action=\"/device\">\
         <label for=\"user_code\">Code</label>\
         <input id=\"user_code\" name=\"user_code\" value=\"{code}\" autocomplete=\"off\">\
         <label for=\"user\">User</label>\
         <select id=\"user\" name=\"user\">{options}</select>\
         <button type=\"submit\" id=\"approve\" name=\"action\" value=\"approve\">Approve</button>\
         <button type=\"submit\" id=\"deny\" name=\"action\" value=\"deny\">Deny</button>\
         </form>",
        code = escape(user_code.unwrap_or("")),
        options = user_options(users, None),
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page(status, "Connect a device", &body)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_neutralises_markup_and_attribute_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
