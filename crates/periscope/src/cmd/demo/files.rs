//! What the demo writes: the gateway configuration, the env files the tour
//! sources, and private files (0600) for secrets.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, anyhow};

use crate::cmd::output::shell_quote;

use super::database::{Database, upstream_tls};
use super::{
    CONNECTION, DEFAULT_API, DEFAULT_PG, DemoDir, EXEC_CONNECTION, LOGS_CONNECTION, PASSWORD_FILE,
    in_file,
};

/// The gateway configuration: one connection, two roles.
pub(super) fn config_toml(dir: &DemoDir, db: &Database, api: SocketAddr, pg: SocketAddr) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let path = |rel: &str| q(&dir.join(rel).display().to_string());
    let mut text = format!(
        "# Written by `periscope demo`: a gateway in front of a fake shop database.\n\
         # `periscope demo --data-dir {dir}` serves it again (after --keep).\n\
         \n\
         [server]\n\
         api_listen = {api}\n\
         pg_listen = {pg}\n\
         data_dir = {data_dir}\n\
         \n\
         [audit]\n\
         # Signed checkpoints often, so `periscope audit verify` has some to check.\n\
         checkpoint_every = 20\n\
         \n\
         # No data_policy: the connection is fully shielded (read-only, every\n\
         # secret and personal value masked) until a grant lifts a shield.\n\
         [[connection]]\n\
         name = {name}\n\
         kind = \"postgres\"\n\
         host = {host}\n\
         port = {port}\n\
         database = {database}\n\
         user = {user}\n",
        dir = dir.path.display(),
        api = q(&in_file(api, DEFAULT_API)),
        pg = q(&in_file(pg, DEFAULT_PG)),
        data_dir = path("gateway"),
        name = q(CONNECTION),
        host = q(&db.host),
        port = db.port,
        database = q(&db.dbname),
        user = q(&db.user),
    );
    if db.password.is_some() {
        let _ = writeln!(text, "password_file = {}", path(PASSWORD_FILE));
    }
    let tls = db
        .sslmode
        .as_deref()
        .and_then(upstream_tls)
        .unwrap_or("prefer");
    let _ = writeln!(text, "upstream_tls = {}", q(tls));
    if let Some(ca) = &db.sslrootcert
        && matches!(tls, "require" | "verify-full")
    {
        let _ = writeln!(text, "upstream_ca_file = {}", q(ca));
    }
    text.push_str("labels = { env = \"prod\" }\n");
    let _ = write!(
        text,
        "\n\
         # The shop's application log: read masked, no grant needed (docs/logs.md).\n\
         [[connection]]\n\
         name = {logs}\n\
         kind = \"logs\"\n\
         \n\
         [connection.sources.app]\n\
         files = [{log_glob}]\n\
         \n\
         # A harmless local command: `cat` of the demo's logs runs, anything under\n\
         # /etc is a sensitive flow that needs a grant (docs/exec.md).\n\
         [[connection]]\n\
         name = {tools}\n\
         kind = \"exec\"\n\
         command = [\"/bin/cat\"]\n\
         allow = [{allow}]\n\
         sensitive = [\"/etc/*\"]\n\
         timeout = \"1m\"\n\
         \n",
        logs = q(LOGS_CONNECTION),
        tools = q(EXEC_CONNECTION),
        log_glob = q(&dir.join("logs").join("shop*.log").display().to_string()),
        allow = q(&dir.join("logs").join("*").display().to_string()),
    );
    text.push_str(
        "\
         # Developers reach shop-prod, its logs and tools, and may ask to see emails\n\
         # and phones, to write, or to read /etc, for up to an hour, with one\n\
         # approval from an approver.\n\
         [[role]]\n\
         name = \"developer\"\n\
         connections = [\"shop-prod\", \"shop-logs\", \"shop-tools\"]\n\
         may_lift = [\"unmask:email\", \"unmask:phone\", \"write\", \"command:/etc/*\"]\n\
         max_duration = \"1h\"\n\
         approvals = 1\n\
         approvers = [\"approver\"]\n\
         \n\
         # Approvers decide on requests; they reach no connection themselves.\n\
         [[role]]\n\
         name = \"approver\"\n",
    );
    text
}

/// The shop's application log the `shop-logs` connection reads: fake
/// personal data and tokens, as real logs hold them.
pub(super) const SHOP_LOG: &str = "\
2026-12-06T18:02:11Z INFO checkout ok order=1042 user=maria.garcia@example.com card=4111 1111 1111 1111
2026-12-06T18:02:12Z INFO token refresh Authorization: Bearer 7f3c9a1e5b2d4c8f9a0b1c2d3e4f5a6b
2026-12-06T18:02:13Z WARN checkout failed order=1043 user=li.wei@example.org reason=card_declined
2026-12-06T18:02:14Z ERROR s3 upload failed key=AKIAIOSFODNN7EXAMPLE bucket=receipts
2026-12-06T18:02:15Z INFO receipt sent to maria.garcia@example.com
";

/// Writes the shop's log under `logs/` (the `shop-logs` source).
pub(super) fn shop_log(dir: &DemoDir) -> anyhow::Result<()> {
    write_file(&dir.join("logs/shop.log"), SHOP_LOG, 0o644)
}

pub(super) fn env_file(
    path: &Path,
    name: &str,
    role: &str,
    token: &str,
    api_url: &str,
    ca_file: &Path,
    bin_dir: Option<&Path>,
) -> String {
    let mut text = format!(
        "# periscope demo: act as {name} ({role}). Load it with `. {}`.\n",
        shell_quote(&path.display().to_string())
    );
    if let Some(dir) = bin_dir {
        let _ = writeln!(
            text,
            "# The periscope binary that runs the demo comes first on PATH.\nexport PATH={}:\"$PATH\"",
            shell_quote(&dir.display().to_string())
        );
    }
    let _ = write!(
        text,
        "export PERISCOPE_URL={}\n\
         export PERISCOPE_TOKEN={}\n\
         export PERISCOPE_CA_FILE={}\n\
         # psql asks the gateway for a password: the Periscope token is it.\n\
         export PGPASSWORD=\"$PERISCOPE_TOKEN\"\n",
        shell_quote(api_url),
        shell_quote(token),
        shell_quote(&ca_file.display().to_string()),
    );
    text
}

/// Writes `contents` to `path` with `mode`, creating parent directories (0700).
pub(super) fn write_file(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub(super) fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

pub(super) fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness for a password: {e}"))?;
    Ok(hex::encode(bytes))
}
