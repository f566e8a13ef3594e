//! The console's static files, embedded in the binary: htmx (vendored,
//! `assets/htmx-LICENSE`), the countdown script and the style sheet.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::view;

/// htmx 2.0.11, `dist/htmx.min.js` of the npm package `htmx.org`
/// (sha256 d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717).
const HTMX: &[u8] = include_bytes!("../../assets/htmx-2.0.11.min.js");
const HTMX_LICENSE: &[u8] = include_bytes!("../../assets/htmx-LICENSE");
const CONSOLE_JS: &[u8] = include_bytes!("../../assets/console.js");
const CONSOLE_CSS: &[u8] = include_bytes!("../../assets/console.css");

/// `GET /static/{file}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "htmx-LICENSE.txt" => (HTMX_LICENSE, "text/plain; charset=utf-8"),
        "console.js" => (CONSOLE_JS, "text/javascript; charset=utf-8"),
        "console.css" => (CONSOLE_CSS, "text/css; charset=utf-8"),
        _ => return view::error_page(None, StatusCode::NOT_FOUND, "no such file"),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Not versioned by name: short caching, so an upgrade shows within minutes.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    view::secure(&mut response);
    response
}
