//! The gateway's own SQL client: runs one statement for an authenticated
//! identity through the gateway's PostgreSQL front end, exactly as `psql`
//! would, and returns bounded, text-only results.
//!
//! Why a client of our own listener rather than a second path to the
//! upstream: every decision, mask, refusal (with its `periscope request ...`
//! hint), audit event, session registration and grant cut lives in the
//! PostgreSQL session (`pg`, `periscope-pg`'s `ShieldedSession`). Going
//! through the listener means an agent (MCP today, the console's "query from
//! the browser" later) gets the same answers as `psql`, and a change to the
//! shields reaches every front end at once, with nothing to keep in step.
//!
//! - **Transport**: `tokio-postgres` over a loopback TCP connection to
//!   `server.pg_listen`, TLS verified against the gateway's own CA, the
//!   identity's API token as the password (never stored, never logged).
//! - **Agent marking**: the local socket is bound first and its address
//!   registered with the gateway (`agent::AgentPeers`) for the length of
//!   the handshake, so the front end marks the session `via = "mcp"` with
//!   the client's name from where it comes, which a client elsewhere cannot
//!   claim (an `application_name` can be set by anyone; it is set too, as
//!   `mcp:<client>`, for `/v1/sessions`).
//! - **One session per statement**: each call is decided with the grants in
//!   force at that moment, so an expired or revoked grant cannot outlive a
//!   call, and nothing stays open between calls.
//! - **Bounds**: the simple query protocol streams rows as text; reading
//!   stops at [`ResultLimits`] (rows and bytes of cell text) and the session
//!   is closed, so memory per call stays bounded whatever the result size.
//! - **Masked cells** are reported by position: a cell whose text holds a
//!   placeholder (`[email]`) or token (`[card:tok_...]`) of a known entity.

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use periscope_redact::Entity;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::tls::{ChannelBinding, TlsConnect};

use crate::agent::Agent;
use crate::gateway::Gateway;

/// How long connecting and authenticating may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows and bytes a call returns at most, chosen by the caller within
/// [`ResultLimits::CAP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultLimits {
    /// Most rows returned; reading stops after them.
    pub max_rows: usize,
    /// Most bytes of cell text returned (column names not counted).
    pub max_bytes: usize,
}

impl ResultLimits {
    /// The default: enough to look at, small enough for an agent's context.
    pub const DEFAULT: ResultLimits = ResultLimits {
        max_rows: 200,
        max_bytes: 256 * 1024,
    };
    /// The most any caller may ask for.
    pub const CAP: ResultLimits = ResultLimits {
        max_rows: 5_000,
        max_bytes: 4 * 1024 * 1024,
    };

    /// The default with the caller's choices, each clamped to `1..=CAP`.
    pub fn bounded(max_rows: Option<usize>, max_bytes: Option<usize>) -> ResultLimits {
        ResultLimits {
            max_rows: max_rows
                .unwrap_or(Self::DEFAULT.max_rows)
                .clamp(1, Self::CAP.max_rows),
            max_bytes: max_bytes
                .unwrap_or(Self::DEFAULT.max_bytes)
                .clamp(1, Self::CAP.max_bytes),
        }
    }
}

impl Default for ResultLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One statement to run.
#[derive(Debug, Clone)]
pub struct SqlRequest<'a> {
    /// The connection (the PostgreSQL `dbname`).
    pub connection: &'a str,
    /// The identity (the PostgreSQL `user`): must own `token`.
    pub identity: &'a str,
    /// The identity's API token, the session's password.
    pub token: &'a str,
    /// The SQL text, as a client would send it (simple query protocol).
    pub sql: &'a str,
    /// The agent acting for the identity, when one is.
    pub agent: Option<&'a Agent>,
    /// Result bounds.
    pub limits: ResultLimits,
}

/// A masked cell: where, and which entities its text shows masked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MaskedCell {
    /// Row index in [`SqlResult::rows`].
    pub row: usize,
    /// Column index in [`SqlResult::columns`].
    pub column: usize,
    /// Entity names whose placeholders or tokens the cell holds.
    pub entities: Vec<&'static str>,
}

/// The answer to a statement that ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SqlResult {
    /// Column names of the (last) result set; empty for a statement that
    /// returns no rows.
    pub columns: Vec<String>,
    /// Rows as text (`None` for SQL NULL), masked as the identity may see them.
    pub rows: Vec<Vec<Option<String>>>,
    /// Cells that hold masked values.
    pub masked: Vec<MaskedCell>,
    /// Whether reading stopped at a limit (more rows existed).
    pub truncated: bool,
    /// Rows reported by the server's command tag when the statement
    /// completed (None when reading stopped early).
    pub rows_affected: Option<u64>,
}

/// Why a statement did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// A shield or rule refused it (SQLSTATE 42501 and the like): the
    /// message names the shield, the hint is the command that requests it.
    #[error("{message}")]
    Refused {
        /// SQLSTATE.
        code: String,
        /// What was refused and why.
        message: String,
        /// More on the rule.
        detail: Option<String>,
        /// The exact `periscope request ...` command, when a grant would lift it.
        hint: Option<String>,
    },
    /// The session could not open: bad credentials, unknown or uncovered
    /// connection, not a PostgreSQL connection, upstream down.
    #[error("{message}")]
    Rejected {
        /// SQLSTATE.
        code: String,
        /// Why, as the front end said it.
        message: String,
    },
    /// The statement ran and failed upstream (syntax, missing table...), or
    /// the session was cut (a grant ended).
    #[error("{message}")]
    Failed {
        /// SQLSTATE, when the server gave one.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// The server's hint, when it gave one.
        hint: Option<String>,
    },
    /// The gateway's PostgreSQL front end is not reachable from inside.
    #[error("{0}")]
    Unavailable(String),
}

/// SQLSTATEs the shields answer with when they refuse a statement.
const REFUSAL_CODES: &[&str] = &["42501", "0A000", "54000"];

/// Runs `request.sql` through the gateway's PostgreSQL front end as
/// `request.identity` and returns its rows, bounded.
pub async fn run(gateway: &Gateway, request: &SqlRequest<'_>) -> Result<SqlResult, SqlError> {
    let listen = gateway.endpoints().protocol("pg").ok_or_else(|| {
        SqlError::Unavailable(
            "the gateway has no PostgreSQL listener (server.pg_listen): SQL cannot run".into(),
        )
    })?;
    let target = loopback(listen);
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .and_then(|s| {
        s.bind(SocketAddr::new(loopback_ip(target), 0))?;
        Ok(s)
    })
    .map_err(|e| SqlError::Unavailable(format!("cannot open a local socket: {e}")))?;
    let local = socket
        .local_addr()
        .map_err(|e| SqlError::Unavailable(format!("cannot open a local socket: {e}")))?;
    let _peer = request
        .agent
        .map(|agent| PeerGuard::new(gateway, local, agent));

    let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let tcp = socket.connect(target).await.map_err(|e| {
            SqlError::Unavailable(format!("cannot reach the PostgreSQL listener: {e}"))
        })?;
        let _ = tcp.set_nodelay(true);
        let mut config = tokio_postgres::Config::new();
        config
            .user(request.identity)
            .dbname(request.connection)
            .password(request.token)
            .ssl_mode(tokio_postgres::config::SslMode::Require)
            .host("localhost");
        if let Some(agent) = request.agent {
            config.application_name(agent.application_name());
        }
        let tls = LoopbackTls::new(gateway)?;
        config
            .connect_raw(tcp, tls)
            .await
            .map_err(|e| classify(&e, true))
    })
    .await
    .map_err(|_| {
        SqlError::Unavailable("the PostgreSQL listener did not answer in time".into())
    })??;
    let (client, connection) = connected;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = read_bounded(&client, request.sql, request.limits).await;
    drop(client);
    // Dropping the client sends Terminate; the driver then ends. A call
    // that stopped at a limit does not wait for the rest of the rows.
    driver.abort();
    result
}

async fn read_bounded(
    client: &tokio_postgres::Client,
    sql: &str,
    limits: ResultLimits,
) -> Result<SqlResult, SqlError> {
    let stream = client
        .simple_query_raw(sql)
        .await
        .map_err(|e| classify(&e, false))?;
    futures_util::pin_mut!(stream);
    let mut out = SqlResult::default();
    let mut bytes = 0usize;
    while let Some(message) = stream.next().await {
        match message.map_err(|e| classify(&e, false))? {
            SimpleQueryMessage::RowDescription(columns) => {
                // A new result set: the last one is the answer.
                out.columns = columns.iter().map(|c| c.name().to_string()).collect();
                out.rows.clear();
                out.masked.clear();
                out.rows_affected = None;
                bytes = 0;
            }
            SimpleQueryMessage::Row(row) => {
                if out.rows.len() >= limits.max_rows {
                    out.truncated = true;
                    break;
                }
                let mut cells = Vec::with_capacity(row.len());
                let mut size = 0usize;
                for i in 0..row.len() {
                    let cell = row.get(i).map(str::to_owned);
                    size += cell.as_ref().map_or(0, String::len);
                    cells.push(cell);
                }
                if bytes + size > limits.max_bytes {
                    out.truncated = true;
                    break;
                }
                bytes += size;
                let index = out.rows.len();
                for (column, cell) in cells.iter().enumerate() {
                    if let Some(text) = cell {
                        let entities = masked_entities(text);
                        if !entities.is_empty() {
                            out.masked.push(MaskedCell {
                                row: index,
                                column,
                                entities,
                            });
                        }
                    }
                }
                out.rows.push(cells);
            }
            SimpleQueryMessage::CommandComplete(n) => out.rows_affected = Some(n),
            _ => {}
        }
    }
    Ok(out)
}

/// The entities whose placeholder (`[email]`) or token (`[card:tok_...]`)
/// `text` holds, in the engine's stable order.
pub fn masked_entities(text: &str) -> Vec<&'static str> {
    if !text.contains('[') {
        return Vec::new();
    }
    Entity::ALL
        .iter()
        .map(|e| e.name())
        .filter(|name| {
            text.match_indices('[').any(|(at, _)| {
                let rest = &text[at + 1..];
                rest.strip_prefix(name)
                    .is_some_and(|after| after.starts_with(']') || after.starts_with(':'))
            })
        })
        .collect()
}

/// A driver error as one of ours: the server's SQLSTATE, message, detail
/// and hint kept (they are the front end's words: masked, no secret).
fn classify(e: &tokio_postgres::Error, opening: bool) -> SqlError {
    let Some(db) = e.as_db_error() else {
        let message = if opening {
            format!("could not open a session through the gateway: {e}")
        } else {
            format!("the session through the gateway ended: {e}")
        };
        return SqlError::Failed {
            code: None,
            message,
            hint: None,
        };
    };
    let code = db.code().code().to_string();
    if opening {
        return SqlError::Rejected {
            code,
            message: db.message().to_string(),
        };
    }
    let requestable = db.hint().is_some_and(|h| h.contains("periscope request"));
    if code == "42501" || (REFUSAL_CODES.contains(&code.as_str()) && requestable) {
        return SqlError::Refused {
            code,
            message: db.message().to_string(),
            detail: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
        };
    }
    SqlError::Failed {
        code: Some(code),
        message: db.message().to_string(),
        hint: db.hint().map(str::to_owned),
    }
}

/// The listener's address as reachable from here: a wildcard bind is
/// reached on loopback.
fn loopback(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        SocketAddr::new(loopback_ip(listen), listen.port())
    } else {
        listen
    }
}

fn loopback_ip(addr: SocketAddr) -> std::net::IpAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        SocketAddr::V4(a) if a.ip().is_loopback() => (*a.ip()).into(),
        SocketAddr::V6(a) if a.ip().is_loopback() => (*a.ip()).into(),
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// Registers the local address as an agent's for as long as it lives.
struct PeerGuard {
    gateway: Gateway,
    addr: SocketAddr,
}

impl PeerGuard {
    fn new(gateway: &Gateway, addr: SocketAddr, agent: &Agent) -> PeerGuard {
        gateway.inner.agent_peers.insert(addr, agent.clone());
        PeerGuard {
            gateway: gateway.clone(),
            addr,
        }
    }
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        self.gateway.inner.agent_peers.remove(&self.addr);
    }
}

/// TLS towards our own listener, verified against the gateway's CA (the
/// listener's certificate names `localhost`).
struct LoopbackTls {
    config: Arc<rustls::ClientConfig>,
}

impl LoopbackTls {
    fn new(gateway: &Gateway) -> Result<LoopbackTls, SqlError> {
        let fail = |what: String| SqlError::Unavailable(format!("loopback TLS: {what}"));
        let ca = CertificateDer::from_pem_file(gateway.ca_file())
            .map_err(|e| fail(format!("{}: {e}", gateway.ca_file().display())))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).map_err(|e| fail(e.to_string()))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(LoopbackTls {
            config: Arc::new(config),
        })
    }
}

impl TlsConnect<TcpStream> for LoopbackTls {
    type Stream = LoopbackTlsStream;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<LoopbackTlsStream, std::io::Error>>;

    fn connect(self, stream: TcpStream) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            let name = ServerName::try_from("localhost")
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let tls = connector.connect(name, stream).await?;
            Ok(LoopbackTlsStream(Box::new(tls)))
        })
    }
}

/// The TLS stream `tokio-postgres` reads and writes.
struct LoopbackTlsStream(Box<tokio_rustls::client::TlsStream<TcpStream>>);

impl AsyncRead for LoopbackTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for LoopbackTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl tokio_postgres::tls::TlsStream for LoopbackTlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_cells_name_their_entities() {
        assert_eq!(masked_entities("[email]"), vec!["email"]);
        assert_eq!(
            masked_entities("to [email] card [card:tok_ab12]"),
            vec!["card", "email"]
        );
        assert!(masked_entities("[emailx] [] [unknown] plain").is_empty());
        assert!(masked_entities("no brackets").is_empty());
    }

    #[test]
    fn limits_are_clamped_to_the_cap() {
        assert_eq!(ResultLimits::bounded(None, None), ResultLimits::DEFAULT);
        let big = ResultLimits::bounded(Some(usize::MAX), Some(usize::MAX));
        assert_eq!(big, ResultLimits::CAP);
        assert_eq!(ResultLimits::bounded(Some(0), Some(0)).max_rows, 1);
    }
}
