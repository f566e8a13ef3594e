//! The client-facing side of a connection: TLS negotiation, the startup
//! packet, the password exchange, the call to the [`Authenticator`], the
//! upstream connection, and the hand-over to the relay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tokio::net::TcpStream;

use secrecy::SecretString;

use crate::auth::{AuthRequest, Authenticated, Authenticator};
use crate::backend::encode as benc;
use crate::cancel::{UpstreamCancel, send_cancel};
use crate::codec::{Frame, StartupPacket};
use crate::error::{PgError, ProtocolError, SessionError, sqlstate};
use crate::frontend::{self, FrontendMessage};
use crate::hooks::{SessionHooks, SessionInfo};
use crate::listener::{ClientTls, Shared};
use crate::relay::{Relay, RelayConfig};
use crate::stream::{PgStream, Wire};
use crate::upstream::{self, UpstreamError, UpstreamSession, UpstreamTimeouts};

/// Startup parameters the proxy passes on to the upstream. They change
/// presentation only. Everything else is dropped, notably `options` (which
/// can set `search_path`, `role` or any GUC with `-c`) and arbitrary GUCs
/// some drivers send as startup parameters; `client_encoding` is forced to
/// UTF8 because masking works on UTF-8 text.
const FORWARDED_PARAMS: &[&str] = &[
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
];

/// The parts of a StartupMessage the session needs, owned.
#[derive(Debug)]
pub(crate) struct ClientStartup {
    user: String,
    database: String,
    application_name: Option<String>,
    forwarded: Vec<(String, String)>,
}

/// The negotiation phase ended without a session.
#[derive(Debug)]
pub(crate) enum Negotiated {
    /// A StartupMessage on a (possibly upgraded) stream.
    Startup(Wire, ClientStartup),
    /// The connection carried a CancelRequest, now handled.
    Cancelled,
}

/// Reads startup-phase packets until a StartupMessage or CancelRequest,
/// answering SSL and GSSENC requests. Protocol errors are answered with a
/// FATAL 08P01 before returning.
pub(crate) async fn negotiate<A: Authenticator>(
    shared: &Shared<A>,
    tcp: TcpStream,
) -> Result<Negotiated, SessionError> {
    let mut wire = Wire::new(PgStream::Plain(tcp), "client");
    let max = shared.config.limits.max_startup;
    let mut gss_refused = false;
    loop {
        let packet = match wire.read_startup_packet(max).await {
            Ok(packet) => packet,
            Err(SessionError::Protocol { source, .. }) => {
                return Err(fatal_protocol(&mut wire, source).await);
            }
            Err(other) => return Err(other),
        };
        let decoded = match StartupPacket::decode(&packet) {
            Ok(decoded) => decoded,
            Err(e) => return Err(fatal_protocol(&mut wire, e).await),
        };
        match decoded {
            StartupPacket::SslRequest => {
                if wire.stream.is_tls() {
                    let e = unexpected("StartupMessage", "SSLRequest inside TLS");
                    return Err(fatal_protocol(&mut wire, e).await);
                }
                // Bytes pipelined after SSLRequest would be read as if they
                // came through TLS (CVE-2021-23214): refuse them.
                if !wire.rbuf.is_empty() {
                    let e = unexpected("TLS handshake", "unencrypted data after SSLRequest");
                    return Err(fatal_protocol(&mut wire, e).await);
                }
                let Some(tls) = shared.config.client_tls.server_config() else {
                    wire.send(&mut BytesMut::from(&b"N"[..])).await?;
                    continue;
                };
                wire.send(&mut BytesMut::from(&b"S"[..])).await?;
                let PgStream::Plain(tcp) = wire.stream else {
                    return Err(SessionError::client(unexpected("TLS", "stream state")));
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
                let tls_stream = acceptor
                    .accept(tcp)
                    .await
                    .map_err(SessionError::io("TLS handshake with the client"))?;
                wire = Wire::new(PgStream::Server(Box::new(tls_stream)), "client");
            }
            StartupPacket::GssEncRequest => {
                if gss_refused || wire.stream.is_tls() {
                    let e = unexpected("StartupMessage", "repeated GSSENCRequest");
                    return Err(fatal_protocol(&mut wire, e).await);
                }
                gss_refused = true;
                wire.send(&mut BytesMut::from(&b"N"[..])).await?;
            }
            StartupPacket::CancelRequest {
                process_id,
                secret_key,
            } => {
                handle_cancel(shared, process_id, secret_key).await;
                return Ok(Negotiated::Cancelled);
            }
            StartupPacket::Startup(msg) => {
                let mut unsupported = Vec::new();
                let mut startup = ClientStartup {
                    user: String::new(),
                    database: String::new(),
                    application_name: None,
                    forwarded: Vec::new(),
                };
                let mut replication = false;
                for (name, value) in msg.params() {
                    match name {
                        "user" => startup.user = value.to_string(),
                        "database" => startup.database = value.to_string(),
                        "application_name" => {
                            startup.application_name = Some(truncate(value, 63).to_string())
                        }
                        "replication" => {
                            replication = !matches!(
                                value.to_ascii_lowercase().as_str(),
                                "false" | "off" | "no" | "0"
                            )
                        }
                        n if n.starts_with("_pq_.") => unsupported.push(n.to_string()),
                        n if FORWARDED_PARAMS.contains(&n) => {
                            startup.forwarded.push((n.to_string(), value.to_string()))
                        }
                        other => tracing::debug!(param = other, "startup parameter not forwarded"),
                    }
                }
                if msg.minor > 0 || !unsupported.is_empty() {
                    let mut out = BytesMut::new();
                    let names: Vec<&str> = unsupported.iter().map(String::as_str).collect();
                    benc::negotiate_protocol_version(&mut out, 0, &names);
                    wire.send(&mut out).await?;
                }
                if replication {
                    let err = PgError::fatal(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        "replication connections are not supported through the Periscope gateway",
                    );
                    return Err(send_fatal(&mut wire, err).await);
                }
                if startup.user.is_empty() {
                    let err = PgError::fatal(
                        sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                        "no user name specified in the startup packet",
                    );
                    return Err(send_fatal(&mut wire, err).await);
                }
                if startup.database.is_empty() {
                    // PostgreSQL's own default.
                    startup.database = startup.user.clone();
                }
                return Ok(Negotiated::Startup(wire, startup));
            }
        }
    }
}

/// A whole connection: negotiation, authentication, upstream, relay.
pub(crate) async fn serve_connection<A: Authenticator>(
    shared: Arc<Shared<A>>,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    crate::tcp::tune_session_socket(&tcp, "client");
    let handshake = tokio::time::timeout(
        shared.config.handshake_timeout,
        handshake(&shared, tcp, peer),
    )
    .await;
    let (wire, startup, authenticated, upstream) = match handshake {
        Ok(Ok(Some(ready))) => ready,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            shared
                .metrics
                .handshake_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(client = %peer, error = %e, "connection ended during the handshake");
            return;
        }
        Err(_) => {
            shared
                .metrics
                .handshake_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(client = %peer, "handshake timed out");
            return;
        }
    };
    run_session(shared, wire, startup, authenticated, upstream, peer).await;
}

type Ready<H> = (Wire, ClientStartup, Authenticated<H>, upstream::Upstream);

async fn handshake<A: Authenticator>(
    shared: &Shared<A>,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Result<Option<Ready<A::Hooks>>, SessionError> {
    let (mut wire, startup) = match negotiate(shared, tcp).await? {
        Negotiated::Startup(wire, startup) => (wire, startup),
        Negotiated::Cancelled => return Ok(None),
    };
    let tls = wire.stream.is_tls();
    if !tls {
        let refusal = match &shared.config.client_tls {
            ClientTls::Required(_) => Some(
                "this Periscope gateway requires TLS: connect with sslmode=require (or verify-full)",
            ),
            _ if !shared.config.allow_plaintext_password => Some(
                "this Periscope gateway does not accept a token over an unencrypted connection: \
                 connect with sslmode=require",
            ),
            _ if !shared.auth.allows_plaintext(&startup.database) => {
                Some("this connection requires TLS: connect with sslmode=require (or verify-full)")
            }
            _ => None,
        };
        if let Some(message) = refusal {
            let err = PgError::fatal(sqlstate::INVALID_AUTHORIZATION_SPECIFICATION, message);
            return Err(send_fatal(&mut wire, err).await);
        }
    }

    // Ask for the token.
    let mut out = BytesMut::new();
    benc::authentication_cleartext_password(&mut out);
    wire.send(&mut out).await?;
    let password = match read_password(&mut wire, shared.config.limits.max_startup).await {
        Ok(password) => password,
        Err(SessionError::Protocol { source, .. }) => {
            return Err(fatal_protocol(&mut wire, source).await);
        }
        Err(other) => return Err(other),
    };

    let request = AuthRequest {
        user: startup.user.clone(),
        database: startup.database.clone(),
        password,
        client_addr: peer,
        application_name: startup.application_name.clone(),
        tls,
    };
    let authenticated = match shared.auth.authenticate(&request).await {
        Ok(authenticated) => authenticated,
        Err(rejection) => {
            shared
                .metrics
                .auth_rejections
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                client = %peer, user = %request.user, connection = %request.database,
                code = rejection.code, "authentication refused"
            );
            return Err(send_fatal(&mut wire, rejection.into_fatal()).await);
        }
    };

    let mut params: Vec<(&str, &str)> = vec![("client_encoding", "UTF8")];
    if let Some(app) = &startup.application_name {
        params.push(("application_name", app));
    }
    params.extend(
        startup
            .forwarded
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
    );
    let timeouts = UpstreamTimeouts {
        connect: shared.config.upstream_connect_timeout,
        handshake: shared.config.handshake_timeout,
    };
    let mut authenticated = authenticated;
    let mut upstream = match upstream::connect(
        &authenticated.target,
        &params,
        timeouts,
        shared.config.limits,
    )
    .await
    {
        Ok(upstream) => upstream,
        Err(e) => {
            shared
                .metrics
                .upstream_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                client = %peer, user = %startup.user, connection = %startup.database,
                upstream = %format!("{}:{}", authenticated.target.host, authenticated.target.port),
                error = %e, "upstream connection failed"
            );
            let err = upstream_error_for_client(&startup.database, &e);
            return Err(send_fatal(&mut wire, err).await);
        }
    };
    let prepared = {
        let mut to_client = BytesMut::from(&upstream.to_client[..]);
        let server_version = upstream.server_version.clone();
        let mut session = UpstreamSession {
            wire: &mut upstream.wire,
            limits: shared.config.limits,
            to_client: &mut to_client,
            user: &authenticated.target.user,
            server_version: server_version.as_deref(),
        };
        let result = shared
            .auth
            .prepare(&mut authenticated.hooks, &mut session)
            .await;
        upstream.to_client = to_client.freeze();
        result
    };
    if let Err(err) = prepared {
        tracing::info!(
            client = %peer, user = %startup.user, connection = %startup.database,
            code = err.code, "session refused while preparing it"
        );
        let err = PgError {
            severity: crate::error::Severity::Fatal,
            ..err
        };
        return Err(send_fatal(&mut wire, err).await);
    }
    Ok(Some((wire, startup, authenticated, upstream)))
}

/// What the client is told when the upstream fails: never the injected user,
/// the upstream's own message, or anything else the engineer must not see.
fn upstream_error_for_client(connection: &str, e: &UpstreamError) -> PgError {
    match e {
        UpstreamError::AuthFailed { .. } | UpstreamError::AuthMethod(_) => PgError::fatal(
            sqlstate::SERVER_REJECTED_CONNECTION,
            format!(
                "upstream authentication for connection \"{connection}\" failed; ask an administrator"
            ),
        ),
        UpstreamError::Rejected { code, .. } => PgError::fatal(
            sqlstate::SERVER_REJECTED_CONNECTION,
            format!(
                "the upstream of connection \"{connection}\" refused the session (SQLSTATE {code}); \
                 ask an administrator"
            ),
        ),
        UpstreamError::Connect { .. } | UpstreamError::Tls { .. } | UpstreamError::Session(_) => {
            PgError::fatal(
                sqlstate::UNABLE_TO_CONNECT,
                format!(
                    "could not connect to the upstream of connection \"{connection}\"; ask an administrator"
                ),
            )
        }
    }
}

async fn run_session<A: Authenticator>(
    shared: Arc<Shared<A>>,
    mut wire: Wire,
    startup: ClientStartup,
    authenticated: Authenticated<A::Hooks>,
    upstream: upstream::Upstream,
    peer: SocketAddr,
) {
    let Authenticated { target, mut hooks } = authenticated;
    // The gateway-issued cancel key, mapped to the upstream's real one.
    let upstream_key = upstream.key.clone();
    let upstream_addr = upstream.addr;
    let registration = match upstream_key.clone() {
        Some(key) => match shared.cancels.register(UpstreamCancel {
            addr: upstream.addr,
            key,
        }) {
            Ok((key, guard)) => Some((key, guard)),
            Err(e) => {
                tracing::error!(error = %e, "no randomness for a cancel key");
                let err = PgError::fatal(
                    sqlstate::INTERNAL_ERROR,
                    "the gateway could not start the session",
                );
                let _ = send_fatal(&mut wire, err).await;
                return;
            }
        },
        None => None,
    };

    let status = upstream.status;
    let handle = shared.register_session();
    let mut out = BytesMut::with_capacity(512 + upstream.to_client.len());
    benc::authentication_ok(&mut out);
    out.extend_from_slice(&upstream.to_client);
    if let Some((key, _)) = &registration {
        benc::backend_key_data(&mut out, key.process_id, &key.secret_key);
    }
    benc::ready_for_query(&mut out, upstream.status);
    if let Err(e) = wire.send(&mut out).await {
        tracing::info!(client = %peer, error = %e, "client left before the session started");
        shared.unregister_session(&handle);
        return;
    }

    let info = SessionInfo {
        client_addr: peer,
        application_name: startup.application_name.clone(),
        user: startup.user.clone(),
        database: startup.database.clone(),
        client_tls: wire.stream.is_tls(),
        upstream_addr: upstream.addr,
        upstream_tls: upstream.wire.stream.is_tls(),
        server_version: upstream.server_version.clone(),
    };
    tracing::info!(
        session = handle.id(), client = %peer, user = %info.user, connection = %info.database,
        upstream = %format!("{}:{}/{}", target.host, target.port, target.database),
        "session started"
    );
    hooks.on_start(&info, &handle);
    shared
        .metrics
        .sessions_total
        .fetch_add(1, Ordering::Relaxed);

    let upstream::Upstream {
        wire: upstream_wire,
        ..
    } = upstream;
    let relay = Relay::new(
        hooks,
        handle.clone(),
        RelayConfig {
            limits: shared.config.limits,
            buffer_size: shared.config.relay_buffer_size,
        },
        status,
        wire.rbuf,
        upstream_wire.rbuf,
        upstream_key.map(|key| UpstreamCancel {
            addr: upstream_addr,
            key,
        }),
    );
    let end = relay.run(wire.stream, upstream_wire.stream).await;
    tracing::info!(session = handle.id(), client = %peer, end = ?end, "session ended");
    shared.unregister_session(&handle);
    drop(registration);
}

async fn read_password(wire: &mut Wire, max: usize) -> Result<SecretString, SessionError> {
    let raw = wire.read_frame(max).await?;
    let frame = Frame::parse(&raw, max)
        .map_err(SessionError::client)?
        .ok_or_else(|| SessionError::client(unexpected("PasswordMessage", "a truncated frame")))?;
    match FrontendMessage::decode(frame).map_err(SessionError::client)? {
        FrontendMessage::AuthResponse(body) => {
            let password = frontend::decode_password(body).map_err(SessionError::client)?;
            Ok(SecretString::from(password))
        }
        FrontendMessage::Terminate => Err(SessionError::Io {
            context: "waiting for the password",
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the client terminated instead of sending a password",
            ),
        }),
        _ => Err(SessionError::client(unexpected(
            "PasswordMessage",
            "another message",
        ))),
    }
}

fn unexpected(expected: &'static str, got: &'static str) -> ProtocolError {
    ProtocolError::Unexpected {
        expected,
        got: got.into(),
    }
}

/// Sends a FATAL and returns the matching error for the caller to propagate.
async fn send_fatal(wire: &mut Wire, err: PgError) -> SessionError {
    let mut out = BytesMut::new();
    benc::error_response(&mut out, &err);
    let _ = wire.send(&mut out).await;
    SessionError::Refused(err)
}

async fn fatal_protocol(wire: &mut Wire, e: ProtocolError) -> SessionError {
    let err = PgError::fatal(
        sqlstate::PROTOCOL_VIOLATION,
        format!("invalid startup: {e}"),
    );
    let mut out = BytesMut::new();
    benc::error_response(&mut out, &err);
    let _ = wire.send(&mut out).await;
    SessionError::client(e)
}

async fn handle_cancel<A: Authenticator>(shared: &Shared<A>, process_id: i32, secret_key: &[u8]) {
    match shared.cancels.lookup(process_id, secret_key) {
        Some(target) => {
            // Counted before sending: the cancelled statement's error can
            // reach the client before this task resumes.
            shared
                .metrics
                .cancels_forwarded
                .fetch_add(1, Ordering::Relaxed);
            match send_cancel(&target, shared.config.upstream_connect_timeout).await {
                Ok(()) => tracing::info!(upstream = %target.addr, "cancel request forwarded"),
                Err(e) => {
                    tracing::warn!(upstream = %target.addr, error = %e, "cancel request failed")
                }
            }
        }
        // Like PostgreSQL: say nothing, so keys cannot be probed.
        None => tracing::info!(process_id, "cancel request with an unknown key ignored"),
    }
}

/// Cuts a string to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
