//! The upstream side of a session: connect, optionally upgrade to TLS, start
//! up with the injected credentials, authenticate (SCRAM-SHA-256, MD5 or
//! cleartext), and collect what the client must be told (ParameterStatus) and
//! what the proxy keeps (the real BackendKeyData).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use crate::auth::{SessionTarget, UpstreamTls};
use crate::backend::{Authentication, BackendMessage, TransactionStatus, tag as btag};
use crate::cancel::BackendKey;
use crate::codec::{Frame, Limits};
use crate::error::{ProtocolError, SessionError};
use crate::frontend::encode;
use crate::stream::{NoCertificateVerification, PgStream, Wire, crypto_provider};

/// Why the upstream session could not be established. The texts are for
/// the operator's log: they may name the upstream host, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connect failed or timed out.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// TLS could not be negotiated or the certificate was refused.
    #[error("TLS with {addr} failed: {reason}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server refused the injected credentials.
    #[error("authentication refused by the server: {code} {message}")]
    AuthFailed {
        /// SQLSTATE from the server.
        code: String,
        /// The server's message (may name the upstream role: log only).
        message: String,
    },
    /// The server asked for a method the proxy does not speak, or the SCRAM
    /// exchange did not verify.
    #[error("authentication method problem: {0}")]
    AuthMethod(String),
    /// The server refused the session for another reason (database missing,
    /// too many connections...).
    #[error("server refused the session: {code} {message}")]
    Rejected {
        /// SQLSTATE from the server.
        code: String,
        /// The server's message (log only).
        message: String,
    },
    /// I/O or protocol failure during the handshake.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// An upstream connection ready for queries.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) wire: Wire,
    pub(crate) addr: SocketAddr,
    /// ParameterStatus and NoticeResponse frames of the startup, verbatim, to
    /// forward to the client in order.
    pub(crate) to_client: Bytes,
    pub(crate) key: Option<BackendKey>,
    pub(crate) status: TransactionStatus,
    pub(crate) server_version: Option<String>,
}

/// Timeouts of the upstream handshake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamTimeouts {
    pub(crate) connect: Duration,
    pub(crate) handshake: Duration,
}

/// Opens a ready session on the upstream with the injected credentials and
/// the client parameters the proxy chose to forward.
pub(crate) async fn connect(
    target: &SessionTarget,
    params: &[(&str, &str)],
    timeouts: UpstreamTimeouts,
    limits: Limits,
) -> Result<Upstream, UpstreamError> {
    let addr_text = format!("{}:{}", target.host, target.port);
    let tcp = tokio::time::timeout(
        timeouts.connect,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| UpstreamError::Connect {
        addr: addr_text.clone(),
        reason: format!("timed out after {:?}", timeouts.connect),
    })?
    .map_err(|e| UpstreamError::Connect {
        addr: addr_text.clone(),
        reason: e.to_string(),
    })?;
    crate::tcp::tune_session_socket(&tcp, "upstream");
    let addr = tcp.peer_addr().map_err(|e| UpstreamError::Connect {
        addr: addr_text.clone(),
        reason: e.to_string(),
    })?;

    tokio::time::timeout(timeouts.handshake, async {
        let stream = negotiate_tls(tcp, target, &addr_text).await?;
        let mut wire = Wire::new(stream, "upstream");
        startup(&mut wire, target, params, limits).await?;
        let mut up = finish_startup(wire, limits).await?;
        up.addr = addr;
        Ok(up)
    })
    .await
    .map_err(|_| {
        UpstreamError::Session(SessionError::Timeout("waiting for the upstream handshake"))
    })?
}

async fn negotiate_tls(
    tcp: TcpStream,
    target: &SessionTarget,
    addr: &str,
) -> Result<PgStream, UpstreamError> {
    let tls_err = |reason: String| UpstreamError::Tls {
        addr: addr.to_string(),
        reason,
    };
    let (config, required) = match &target.tls {
        UpstreamTls::Disable => return Ok(PgStream::Plain(tcp)),
        UpstreamTls::Prefer | UpstreamTls::Require => {
            let provider = crypto_provider();
            let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .map_err(|e| tls_err(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCertificateVerification(provider)))
                .with_no_client_auth();
            (config, target.tls == UpstreamTls::Require)
        }
        UpstreamTls::VerifyFull { ca_file } => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(ca_file)
                .map_err(|e| tls_err(format!("reading CA file {}: {e}", ca_file.display())))?;
            for cert in certs {
                let cert = cert
                    .map_err(|e| tls_err(format!("parsing CA file {}: {e}", ca_file.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| tls_err(format!("CA certificate refused: {e}")))?;
            }
            if roots.is_empty() {
                return Err(tls_err(format!(
                    "CA file {} holds no certificate",
                    ca_file.display()
                )));
            }
            let config = rustls::ClientConfig::builder_with_provider(crypto_provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| tls_err(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            (config, true)
        }
    };

    let mut wire = Wire::new(PgStream::Plain(tcp), "upstream");
    let mut out = BytesMut::new();
    encode::ssl_request(&mut out);
    wire.send(&mut out).await?;
    let answer = wire.read_byte().await?;
    // Bytes after the answer would be injected by a man in the middle before
    // encryption starts (CVE-2021-23222): refuse them.
    if !wire.rbuf.is_empty() {
        return Err(tls_err("unencrypted bytes after the SSL answer".into()));
    }
    let PgStream::Plain(tcp) = wire.stream else {
        return Err(tls_err("stream already encrypted".into()));
    };
    match answer {
        b'S' => {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| tls_err(format!("invalid server name {:?}: {e}", target.host)))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| tls_err(e.to_string()))?;
            Ok(PgStream::Client(Box::new(tls)))
        }
        b'N' if !required => Ok(PgStream::Plain(tcp)),
        b'N' => Err(tls_err("the server does not support TLS".into())),
        other => Err(tls_err(format!(
            "unexpected answer {:?} to SSLRequest",
            char::from(other)
        ))),
    }
}

async fn startup(
    wire: &mut Wire,
    target: &SessionTarget,
    params: &[(&str, &str)],
    limits: Limits,
) -> Result<(), UpstreamError> {
    let mut out = BytesMut::with_capacity(256);
    let mut all = vec![
        ("user", target.user.as_str()),
        ("database", target.database.as_str()),
    ];
    all.extend(params.iter().copied());
    all.extend(
        target
            .parameters
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    encode::startup_message(&mut out, all);
    wire.send(&mut out).await?;

    let mut scram: Option<ScramSha256> = None;
    let mut scram_done = false;
    loop {
        let frame = wire.read_frame(limits.max_message).await?;
        let frame = parse(&frame)?;
        match decode(frame)? {
            BackendMessage::Authentication(auth) => match auth {
                Authentication::Ok => {
                    if scram.is_some() && !scram_done {
                        return Err(UpstreamError::AuthMethod(
                            "server accepted before completing SCRAM".into(),
                        ));
                    }
                    return Ok(());
                }
                Authentication::CleartextPassword => {
                    encode::password(&mut out, target.password.expose_secret());
                    wire.send(&mut out).await?;
                }
                Authentication::Md5Password { salt } => {
                    let hash = md5_hash(
                        target.user.as_bytes(),
                        target.password.expose_secret().as_bytes(),
                        salt,
                    );
                    encode::password(&mut out, &hash);
                    wire.send(&mut out).await?;
                }
                Authentication::Sasl(mechanisms) => {
                    if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                        return Err(UpstreamError::AuthMethod(format!(
                            "server offers SASL mechanisms {:?}, the proxy speaks {SCRAM_SHA_256}",
                            mechanisms.iter().collect::<Vec<_>>()
                        )));
                    }
                    // Channel binding is not used: "n,," tells the server so,
                    // which it accepts even when it offers SCRAM-SHA-256-PLUS.
                    let client = ScramSha256::new(
                        target.password.expose_secret().as_bytes(),
                        ChannelBinding::unsupported(),
                    );
                    encode::sasl_initial_response(&mut out, SCRAM_SHA_256, client.message());
                    wire.send(&mut out).await?;
                    scram = Some(client);
                }
                Authentication::SaslContinue(data) => {
                    let client = scram.as_mut().ok_or_else(|| {
                        UpstreamError::AuthMethod("SASL continue without SASL start".into())
                    })?;
                    client
                        .update(data)
                        .map_err(|e| UpstreamError::AuthMethod(format!("SCRAM: {e}")))?;
                    encode::sasl_response(&mut out, client.message());
                    wire.send(&mut out).await?;
                }
                Authentication::SaslFinal(data) => {
                    let client = scram.as_mut().ok_or_else(|| {
                        UpstreamError::AuthMethod("SASL final without SASL start".into())
                    })?;
                    // Verifies the server's signature: a server that does not
                    // know the password cannot fake a completed exchange.
                    client.finish(data).map_err(|e| {
                        UpstreamError::AuthMethod(format!("SCRAM server signature: {e}"))
                    })?;
                    scram_done = true;
                }
                Authentication::Unsupported(code) => {
                    return Err(UpstreamError::AuthMethod(format!(
                        "unsupported authentication request code {code}"
                    )));
                }
            },
            BackendMessage::ErrorResponse(fields) => {
                let code = fields.code().unwrap_or("").to_string();
                let message = fields.message().unwrap_or("").to_string();
                return Err(if code.starts_with("28") {
                    UpstreamError::AuthFailed { code, message }
                } else {
                    UpstreamError::Rejected { code, message }
                });
            }
            BackendMessage::NegotiateProtocolVersion { .. } | BackendMessage::NoticeResponse(_) => {
            }
            _ => {
                return Err(unexpected("authentication", frame.tag()));
            }
        }
    }
}

async fn finish_startup(mut wire: Wire, limits: Limits) -> Result<Upstream, UpstreamError> {
    let mut to_client = BytesMut::new();
    let mut key = None;
    let mut server_version = None;
    loop {
        let raw = wire.read_frame(limits.max_message).await?;
        let frame = parse(&raw)?;
        match decode(frame)? {
            BackendMessage::ParameterStatus { name, value } => {
                if name == "server_version" {
                    server_version = Some(value.to_string());
                }
                to_client.extend_from_slice(&raw);
            }
            BackendMessage::NoticeResponse(_) => to_client.extend_from_slice(&raw),
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => {
                key = Some(BackendKey {
                    process_id,
                    secret_key: secret_key.to_vec(),
                });
            }
            BackendMessage::ReadyForQuery(status) => {
                return Ok(Upstream {
                    wire,
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    to_client: to_client.freeze(),
                    key,
                    status,
                    server_version,
                });
            }
            BackendMessage::ErrorResponse(fields) => {
                return Err(UpstreamError::Rejected {
                    code: fields.code().unwrap_or("").to_string(),
                    message: fields.message().unwrap_or("").to_string(),
                });
            }
            _ => return Err(unexpected("ReadyForQuery", frame.tag())),
        }
    }
}

/// Why a query run by [`UpstreamSession::simple_query`] failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamQueryError {
    /// The server answered with an error (its SQLSTATE and message; for the
    /// operator's log).
    #[error("the upstream refused the query: {code} {message}")]
    Server {
        /// SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The query returned something a simple query cannot (COPY), or the
    /// connection failed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// One row of a [`UpstreamSession::simple_query`] result: text values,
/// `None` for NULL.
pub type TextRow = Vec<Option<String>>;

/// The freshly authenticated upstream connection of a session, lent to
/// [`Authenticator::prepare`](crate::Authenticator::prepare) before the
/// relay starts: the gateway reads what it needs (the catalog) over the
/// session's own credentials instead of a second credential path.
#[derive(Debug)]
pub struct UpstreamSession<'a> {
    pub(crate) wire: &'a mut Wire,
    pub(crate) limits: Limits,
    /// ParameterStatus/NoticeResponse frames to pass on to the client.
    pub(crate) to_client: &'a mut BytesMut,
    pub(crate) user: &'a str,
    pub(crate) server_version: Option<&'a str>,
}

impl UpstreamSession<'_> {
    /// The upstream role the session runs as (what `$user` in a
    /// `search_path` means).
    pub fn upstream_user(&self) -> &str {
        self.user
    }

    /// The upstream's `server_version`, when it reported one.
    pub fn server_version(&self) -> Option<&str> {
        self.server_version
    }

    /// Runs `sql` (one or more statements) with the simple query protocol
    /// and returns the rows of each statement, one list per statement, as
    /// text. Meant for bounded metadata reads: every row is held in memory.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<TextRow>>, UpstreamQueryError> {
        let mut out = BytesMut::new();
        encode::query(&mut out, sql);
        self.wire.send(&mut out).await?;
        let mut results = Vec::new();
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            let raw = self.wire.read_frame(self.limits.max_message).await?;
            let frame = Frame::parse(&raw, self.limits.max_message)
                .map_err(SessionError::upstream)?
                .ok_or_else(|| {
                    SessionError::upstream(ProtocolError::Truncated {
                        what: "upstream frame",
                        needed: 5,
                        available: raw.len(),
                    })
                })?;
            match BackendMessage::decode(frame).map_err(SessionError::upstream)? {
                BackendMessage::DataRow(row) => {
                    let mut values = Vec::with_capacity(row.len());
                    for field in row.fields() {
                        values.push(match field {
                            None => None,
                            Some(bytes) => {
                                Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                                    SessionError::upstream(ProtocolError::InvalidUtf8 {
                                        what: "DataRow value",
                                    })
                                })?)
                            }
                        });
                    }
                    rows.push(values);
                }
                BackendMessage::ErrorResponse(fields) => {
                    failure.get_or_insert(UpstreamQueryError::Server {
                        code: fields.code().unwrap_or("").to_string(),
                        message: fields.message().unwrap_or("").to_string(),
                    });
                }
                BackendMessage::ParameterStatus { .. } | BackendMessage::NoticeResponse(_) => {
                    self.to_client.extend_from_slice(&raw);
                }
                BackendMessage::ReadyForQuery(_) => {
                    return match failure {
                        Some(e) => Err(e),
                        None => Ok(results),
                    };
                }
                BackendMessage::CommandComplete { .. } => results.push(std::mem::take(&mut rows)),
                BackendMessage::RowDescription(_)
                | BackendMessage::EmptyQueryResponse
                | BackendMessage::NotificationResponse { .. } => {}
                _ => return Err(unexpected_session("query results", frame.tag()).into()),
            }
        }
    }
}

fn unexpected_session(expected: &'static str, tag: u8) -> SessionError {
    SessionError::upstream(ProtocolError::Unexpected {
        expected,
        got: format!("message {:?}", char::from(tag)).into(),
    })
}

fn parse(raw: &[u8]) -> Result<Frame<'_>, UpstreamError> {
    Frame::parse(raw, usize::MAX)
        .map_err(SessionError::upstream)?
        .ok_or_else(|| {
            SessionError::upstream(ProtocolError::Truncated {
                what: "upstream frame",
                needed: 5,
                available: raw.len(),
            })
            .into()
        })
}

fn decode(frame: Frame<'_>) -> Result<BackendMessage<'_>, UpstreamError> {
    BackendMessage::decode(frame)
        .map_err(SessionError::upstream)
        .map_err(Into::into)
}

fn unexpected(expected: &'static str, tag: u8) -> UpstreamError {
    let got = if tag == btag::DATA_ROW {
        "DataRow".into()
    } else {
        format!("message {:?}", char::from(tag)).into()
    };
    SessionError::upstream(ProtocolError::Unexpected { expected, got }).into()
}

/// A standalone upstream connection with the injected credentials, for the
/// gateway's own bounded reads (discovery's sampling), outside any client
/// session. Queries go through [`UpstreamConnection::session`]; dropping it
/// closes the socket, [`UpstreamConnection::close`] says goodbye first.
#[derive(Debug)]
pub struct UpstreamConnection {
    upstream: Upstream,
    limits: Limits,
    user: String,
    /// ParameterStatus/NoticeResponse frames nobody forwards.
    discarded: BytesMut,
}

impl UpstreamConnection {
    /// Connects, negotiates TLS and authenticates as `target` says, with
    /// `params` in the startup packet (`application_name`...), each phase
    /// bounded by `timeout`.
    pub async fn open(
        target: &SessionTarget,
        params: &[(&str, &str)],
        timeout: Duration,
        limits: Limits,
    ) -> Result<UpstreamConnection, UpstreamError> {
        let upstream = connect(
            target,
            params,
            UpstreamTimeouts {
                connect: timeout,
                handshake: timeout,
            },
            limits,
        )
        .await?;
        Ok(UpstreamConnection {
            upstream,
            limits,
            user: target.user.clone(),
            discarded: BytesMut::new(),
        })
    }

    /// The connection as an [`UpstreamSession`], to run simple queries on.
    pub fn session(&mut self) -> UpstreamSession<'_> {
        self.discarded.clear();
        UpstreamSession {
            wire: &mut self.upstream.wire,
            limits: self.limits,
            to_client: &mut self.discarded,
            user: &self.user,
            server_version: self.upstream.server_version.as_deref(),
        }
    }

    /// Sends Terminate and closes the connection.
    pub async fn close(mut self) {
        let mut out = BytesMut::new();
        encode::terminate(&mut out);
        let _ = self.upstream.wire.send(&mut out).await;
    }
}
