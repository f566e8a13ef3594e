//! The identity a benchmark or soak run connects as, created through the
//! gateway's API with its bootstrap administrator.

use anyhow::{Context as _, bail};
use periscope_testkit::GatewayProcess;

/// Creates identity `name` with role `role` and returns a fresh API token of
/// it (the password its PostgreSQL clients give).
pub async fn identity_token(
    process: &GatewayProcess,
    name: &str,
    role: &str,
    description: &str,
) -> anyhow::Result<String> {
    let admin = process
        .bootstrap_token()
        .context("the gateway printed no bootstrap token")?
        .to_owned();
    let api = process.client(Some(&admin))?;
    let user = api
        .post(
            "/v1/admin/users",
            &serde_json::json!({"name": name, "roles": [role]}),
        )
        .await?;
    if user.status != 201 {
        bail!(
            "creating the identity {name}: {} {}",
            user.status,
            user.body
        );
    }
    let token = api
        .post(
            &format!("/v1/admin/users/{name}/tokens"),
            &serde_json::json!({"description": description}),
        )
        .await?;
    if token.status != 201 {
        bail!(
            "creating the token of {name}: {} {}",
            token.status,
            token.body
        );
    }
    Ok(token.json()["token"]
        .as_str()
        .context("no token in the answer")?
        .to_owned())
}
