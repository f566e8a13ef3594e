//! Administration (administrators only): identities (add, roles, disable),
//! their API tokens (create, shown once; revoke), the loaded configuration
//! (read-only, no secret) and reload.
//!
//! Every change goes through the very handler of the admin API
//! (`/v1/admin/...`) with the browser's caller, so the console checks,
//! refuses and audits exactly as the API and `periscope admin` do.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::{Form, Viewer, posted, view, viewer};
use crate::api;
use crate::config::ConfigSource;
use crate::gateway::Gateway;

/// What to say above a page after a change.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Notice {
    done: Option<String>,
}

/// The signed-in administrator, or the page that refuses.
async fn administrator(gateway: &Gateway, headers: &HeaderMap) -> Result<Viewer, Response> {
    let viewer = viewer(gateway, headers).await?;
    if viewer.admin {
        Ok(viewer)
    } else {
        Err(not_admin(&viewer))
    }
}

fn not_admin(viewer: &Viewer) -> Response {
    view::error_page(
        Some(viewer),
        StatusCode::FORBIDDEN,
        &format!(
            "`{}` is not an administrator: administration needs the `admin` role or a role \
             with `admin = true`",
            viewer.name()
        ),
    )
}

/// A posted change by an administrator.
async fn admin_post(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Viewer, Form), Response> {
    let (viewer, form) = posted(gateway, headers, body).await?;
    if !viewer.admin {
        return Err(not_admin(&viewer));
    }
    Ok((viewer, form))
}

/// Back to `path` saying what was done.
fn done(path: &str, what: &str) -> Response {
    let what: String = url::form_urlencoded::byte_serialize(what.as_bytes()).collect();
    view::redirect(&format!("{path}?done={what}"))
}

fn notice(n: &Notice) -> Markup {
    html! {
        @if let Some(done) = &n.done {
            p.notice #admin-done role="status" { (done) }
        }
    }
}

/// `GET /admin`.
pub(crate) async fn page(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Query(n): Query<Notice>,
) -> Response {
    let viewer = match administrator(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let identities = match api::admin_list_users(&gateway, viewer.caller()).await {
        Ok(list) => list,
        Err(f) => return view::failure_page(Some(&viewer), &f),
    };
    let config = gateway.config();
    let roles: Vec<String> = config.role_names().iter().map(|r| r.to_string()).collect();
    let source = config.source.clone();
    drop(config);
    let shown = configuration_text(&source);
    let body = html! {
        (notice(&n))
        section #identities {
            h2 { "Identities" }
            table {
                thead { tr { th { "Name" } th { "Roles" } th { "State" } th { "Since" } th { "" } } }
                tbody {
                    @for i in &identities {
                        tr data-identity=(i.name) {
                            td { a href={ "/admin/identities/" (i.name) } { (i.name) } }
                            td {
                                form.inline method="post" action={ "/admin/identities/" (i.name) } {
                                    (view::csrf_field(&viewer))
                                    input type="text" name="roles" value=(i.roles.join(", "))
                                        aria-label={ "roles of " (i.name) };
                                    button.secondary type="submit" name="change" value="roles" { "Set roles" }
                                }
                            }
                            td.state { @if i.disabled { "disabled" } @else { "enabled" } }
                            td { (view::when(i.created_at)) }
                            td {
                                form.inline method="post" action={ "/admin/identities/" (i.name) } {
                                    (view::csrf_field(&viewer))
                                    @if i.disabled {
                                        button.secondary type="submit" name="change" value="enable" { "Enable" }
                                    } @else {
                                        button.danger type="submit" name="change" value="disable" { "Disable" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Add an identity" }
            form #add-identity method="post" action="/admin/identities" {
                (view::csrf_field(&viewer))
                label for="new-name" { "Name" }
                input #new-name type="text" name="name" required;
                fieldset {
                    legend { "Roles" }
                    @for role in &roles {
                        label.check { input type="checkbox" name="role" value=(role); " " (role) }
                    }
                }
                button #add type="submit" { "Add" }
            }
        }
        section #configuration {
            h2 { "Configuration" }
            p {
                "The file " code #config-source { (source) } " as it is on disk now, read-only here: edit it, then reload. "
                "Secrets are never in it (only the names of the variables or files that hold them); "
                "the values of " code { "env" } " tables are hidden."
            }
            form method="post" action="/admin/reload" {
                (view::csrf_field(&viewer))
                button #reload type="submit" { "Reload the configuration" }
            }
            pre #config-text { (shown) }
        }
    };
    view::page(
        StatusCode::OK,
        "Administration",
        Some(&viewer),
        "admin",
        body,
    )
}

/// The configuration file as it is on disk now, with every value of an `env` table
/// (an exec or shell program's environment, the one place a value could be
/// sensitive) and every key that names a secret replaced by `[hidden]`.
fn configuration_text(source: &ConfigSource) -> String {
    let ConfigSource::File(path) = source else {
        return "# built-in defaults: no connection, only the `admin` role".into();
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return format!("# could not read {}: {e}", path.display()),
    };
    match text.parse::<toml::Table>() {
        Ok(mut table) => {
            hide(&mut table);
            toml::to_string_pretty(&table).unwrap_or_else(|e| format!("# not shown: {e}"))
        }
        Err(e) => format!(
            "# the file no longer parses (the loaded configuration stays in force): {}",
            e.message()
        ),
    }
}

fn hide(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        let secret_like = {
            let k = key.to_ascii_lowercase();
            (k.contains("secret") || k.contains("password") || k.contains("token"))
                && !k.ends_with("_env")
                && !k.ends_with("_file")
        };
        if key == "env" {
            if let toml::Value::Table(env) = value {
                for (_, v) in env.iter_mut() {
                    *v = toml::Value::String("[hidden]".into());
                }
            }
        } else if secret_like && !matches!(value, toml::Value::Table(_) | toml::Value::Array(_)) {
            *value = toml::Value::String("[hidden]".into());
        } else {
            hide_value(value);
        }
    }
}

fn hide_value(value: &mut toml::Value) {
    match value {
        toml::Value::Table(t) => hide(t),
        toml::Value::Array(items) => items.iter_mut().for_each(hide_value),
        _ => {}
    }
}

/// `POST /admin/identities`: adds one (fields `name`, `role` repeated).
pub(crate) async fn add(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, form) = match admin_post(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = form.get("name").unwrap_or("").to_string();
    let request = periscope_api::CreateIdentity {
        name: name.clone(),
        roles: form.all("role"),
    };
    match api::admin_create_user(&gateway, viewer.caller(), request).await {
        Ok(()) => done("/admin", &format!("Identity {name} added.")),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// `POST /admin/identities/{name}`: `change` = `roles` (field `roles`,
/// comma-separated), `disable` or `enable`.
pub(crate) async fn change(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (viewer, form) = match admin_post(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (update, said) = match form.get("change") {
        Some("roles") => {
            let roles: Vec<String> = form
                .get("roles")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect();
            let said = format!("Roles of {name}: {}.", roles.join(", "));
            (
                periscope_api::UpdateIdentity {
                    roles: Some(roles),
                    disabled: None,
                },
                said,
            )
        }
        Some("disable") => (
            periscope_api::UpdateIdentity {
                roles: None,
                disabled: Some(true),
            },
            format!("{name} is disabled: its sessions ended."),
        ),
        Some("enable") => (
            periscope_api::UpdateIdentity {
                roles: None,
                disabled: Some(false),
            },
            format!("{name} is enabled."),
        ),
        _ => {
            return view::error_page(
                Some(&viewer),
                StatusCode::BAD_REQUEST,
                "say what to change: `roles`, `disable` or `enable`",
            );
        }
    };
    match api::admin_update_user(&gateway, viewer.caller(), &name, update).await {
        Ok(()) => done("/admin", &said),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// `GET /admin/identities/{name}`: its API tokens.
pub(crate) async fn identity(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(n): Query<Notice>,
) -> Response {
    let viewer = match administrator(&gateway, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let tokens = match api::admin_list_tokens(&gateway, viewer.caller(), &name).await {
        Ok(t) => t,
        Err(f) => return view::failure_page(Some(&viewer), &f),
    };
    let body = html! {
        (notice(&n))
        p { a href="/admin" { "← Administration" } }
        section #tokens {
            h2 { "API tokens" }
            @if tokens.is_empty() {
                p.muted { "No API token." }
            } @else {
                table {
                    thead { tr { th { "Id" } th { "Description" } th { "Created" } th { "Expires" } th { "Last used" } th { "" } } }
                    tbody {
                        @for t in &tokens {
                            tr data-token=(t.id) {
                                td.mono { (t.id) }
                                td { (t.description.as_deref().unwrap_or("")) }
                                td { (view::when(t.created_at)) }
                                td { @if let Some(at) = t.expires_at { (view::when(at)) } @else { "never" } }
                                td { @if let Some(at) = t.last_used_at { (view::when(at)) } @else { "-" } }
                                td {
                                    @if let Some(at) = t.revoked_at {
                                        "revoked " (view::when(at))
                                    } @else {
                                        form.inline method="post" action={ "/admin/tokens/" (t.id) "/revoke" } {
                                            (view::csrf_field(&viewer))
                                            button.danger type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Create a token" }
            form #create-token method="post" action={ "/admin/identities/" (name) "/tokens" } {
                (view::csrf_field(&viewer))
                label for="description" { "Description" }
                input #description type="text" name="description";
                label for="expires_in" { "Expires in (e.g. 90d; empty: never)" }
                input #expires_in type="text" name="expires_in";
                button #create type="submit" { "Create" }
            }
        }
    };
    view::page(
        StatusCode::OK,
        &format!("Identity {name}"),
        Some(&viewer),
        "admin",
        body,
    )
}

/// `POST /admin/identities/{name}/tokens`: the new token, shown once.
pub(crate) async fn create_token(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (viewer, form) = match admin_post(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let request = periscope_api::CreateToken {
        description: form.get("description").map(str::to_string),
        expires_in: form.get("expires_in").map(str::to_string),
    };
    match api::admin_create_token(&gateway, viewer.caller(), &name, request).await {
        Ok(created) => {
            let body = html! {
                p.notice role="alert" {
                    "Give this token to " strong { (name) } " now: it is shown only once, and "
                    "the gateway keeps only its keyed hash."
                }
                pre #new-token { (created.token) }
                p { "Id " code { (created.summary.id) } ". " a href={ "/admin/identities/" (name) } { "Back to the tokens" } }
            };
            view::page(
                StatusCode::CREATED,
                "New token",
                Some(&viewer),
                "admin",
                body,
            )
        }
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// `POST /admin/tokens/{id}/revoke`: back to its identity's tokens.
pub(crate) async fn revoke_token(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (viewer, _) = match admin_post(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match api::admin_revoke_token(&gateway, viewer.caller(), &id).await {
        Ok(identity) => done(
            &format!("/admin/identities/{identity}"),
            &format!("Token {id} revoked."),
        ),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

/// `POST /admin/reload`.
pub(crate) async fn reload(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (viewer, _) = match admin_post(&gateway, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match api::admin_reload(&gateway, viewer.caller()).await {
        Ok(message) => done("/admin", &format!("Reloaded: {message}")),
        Err(f) => view::failure_page(Some(&viewer), &f),
    }
}

#[cfg(test)]
mod tests {
    use super::hide;

    #[test]
    fn env_values_and_secret_like_keys_are_hidden_references_are_not() {
        let mut table: toml::Table = r#"
[[connection]]
name = "tools"
env = { API_KEY = "sk_live_x", HOME = "/srv" }
password_env = "PG_PASSWORD"
[webhook]
secret_file = "/etc/periscope/webhook.key"
token = "inline"
"#
        .parse()
        .unwrap();
        hide(&mut table);
        let shown = toml::to_string(&table).unwrap();
        assert!(
            !shown.contains("sk_live_x") && !shown.contains("/srv"),
            "{shown}"
        );
        assert!(!shown.contains("inline"), "{shown}");
        assert!(
            shown.contains("PG_PASSWORD") && shown.contains("webhook.key"),
            "{shown}"
        );
    }
}
