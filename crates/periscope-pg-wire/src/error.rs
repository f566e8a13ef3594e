//! Errors of the wire codec ([`ProtocolError`]) and of a proxied session
//! ([`SessionError`]), plus the error the proxy itself sends to a client
//! ([`PgError`]) and the SQLSTATE codes it uses ([`sqlstate`]).

use std::borrow::Cow;

/// Why bytes received from a peer are not a valid PostgreSQL protocol message.
///
/// The decoder is exposed to hostile input (anyone who can reach the listener),
/// so every way a frame can be wrong has its own variant naming the message and
/// field, for logs that let an operator tell an attack from a client bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A length word is below the 4 bytes it must at least count (itself), or
    /// negative: the frame cannot be delimited, so the stream is unusable.
    #[error("{what} declares length {len}; a length must be at least {min}")]
    InvalidLength {
        /// Which message or packet.
        what: &'static str,
        /// The declared length.
        len: i64,
        /// The smallest valid length.
        min: usize,
    },
    /// A declared length is above the configured maximum; refused before any
    /// memory is reserved for it.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Which message or packet.
        what: &'static str,
        /// The declared length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A field runs past the end of its message.
    #[error("{what}: message truncated (needs {needed} more bytes, {available} left)")]
    Truncated {
        /// Which field of which message.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the message.
        available: usize,
    },
    /// A string field has no terminating NUL byte inside its message.
    #[error("{what}: string is not NUL-terminated")]
    MissingNul {
        /// Which field of which message.
        what: &'static str,
    },
    /// A string field is not valid UTF-8 (the proxy always speaks UTF8 upstream).
    #[error("{what}: string is not valid UTF-8")]
    InvalidUtf8 {
        /// Which field of which message.
        what: &'static str,
    },
    /// Bytes remain after the last field of a message.
    #[error("{what}: {extra} unexpected bytes after the last field")]
    TrailingBytes {
        /// Which message.
        what: &'static str,
        /// How many bytes are left over.
        extra: usize,
    },
    /// A field holds a value the protocol does not allow (a negative count, a
    /// format code other than 0/1, an unknown transaction status...).
    #[error("{what}: invalid value {value}")]
    InvalidValue {
        /// Which field of which message.
        what: &'static str,
        /// The offending value.
        value: i64,
    },
    /// A message type byte that this direction of the protocol does not define.
    #[error("unknown {direction} message type {ch:?} (0x{tag:02x})", ch = char::from(*.tag))]
    UnknownMessage {
        /// `frontend` or `backend`.
        direction: &'static str,
        /// The type byte.
        tag: u8,
    },
    /// A startup packet asks for a protocol version the proxy does not speak.
    #[error("unsupported frontend protocol {major}.{minor}: the gateway speaks 3.0")]
    UnsupportedProtocol {
        /// Requested major version.
        major: u16,
        /// Requested minor version.
        minor: u16,
    },
    /// A well-formed message arrived where the protocol does not allow it.
    #[error("unexpected {got} while waiting for {expected}")]
    Unexpected {
        /// What the state machine waited for.
        expected: &'static str,
        /// What arrived (message name or type byte).
        got: Cow<'static, str>,
    },
}

/// Severity of an [`PgError`] sent to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the session goes on.
    Error,
    /// The session ends after this message.
    Fatal,
}

impl Severity {
    /// The non-localised severity word the protocol carries in fields `S`/`V`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// An ErrorResponse the proxy composes itself (refusals, FATALs).
///
/// Kept as plain owned fields so the guardrail stage can build one from a
/// policy decision without touching the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    /// ERROR or FATAL.
    pub severity: Severity,
    /// Five-character SQLSTATE, see [`sqlstate`].
    pub code: &'static str,
    /// Primary message, one line.
    pub message: String,
    /// Optional detail (what was decided and why).
    pub detail: Option<String>,
    /// Optional hint (what the user can do, e.g. the grant request command).
    pub hint: Option<String>,
}

impl PgError {
    /// An ERROR: the statement is refused and the session continues.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// A FATAL: the client is told why and the session ends.
    pub fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Fatal,
            ..Self::error(code, message)
        }
    }

    /// Adds a detail line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a hint line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

/// SQLSTATE codes the proxy sends. Named after PostgreSQL's condition names
/// so clients and operators can look them up in the PostgreSQL manual.
pub mod sqlstate {
    /// `protocol_violation`: a malformed or out-of-place message.
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    /// `invalid_authorization_specification`: e.g. TLS required.
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
    /// `invalid_password`: the Periscope token was refused.
    pub const INVALID_PASSWORD: &str = "28P01";
    /// `invalid_catalog_name`: no connection of that name.
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    /// `insufficient_privilege`: not authorised / refused by a shield.
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// `sqlclient_unable_to_establish_sqlconnection`: upstream unreachable.
    pub const UNABLE_TO_CONNECT: &str = "08001";
    /// `sqlserver_rejected_establishment_of_sqlconnection`: upstream refused
    /// the injected credentials.
    pub const SERVER_REJECTED_CONNECTION: &str = "08004";
    /// `connection_failure`: the upstream connection was lost mid-session.
    pub const CONNECTION_FAILURE: &str = "08006";
    /// `connection_does_not_exist`: the client went away while a statement
    /// ran; only the statement's audit outcome carries it.
    pub const CONNECTION_DOES_NOT_EXIST: &str = "08003";
    /// `admin_shutdown`: the gateway ended the session (grant expiry,
    /// revocation, shutdown).
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    /// `too_many_connections`: the listener's session limit is reached.
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    /// `feature_not_supported`: e.g. replication connections.
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// `statement_too_complex`: a statement nests deeper than the analysis
    /// follows.
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    /// `query_canceled`: what a cancelled statement reports.
    pub const QUERY_CANCELED: &str = "57014";
    /// `internal_error`: a bug or an authenticator failure in the gateway.
    pub const INTERNAL_ERROR: &str = "XX000";
    /// `invalid_cursor_name`: what the server answers an `Execute` of a
    /// portal that does not exist (the relay provokes it to fail a batch
    /// that holds a refused statement).
    pub const INVALID_CURSOR_NAME: &str = "34000";
}

/// Why a proxied session, or its setup, ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A socket or TLS read/write failed.
    #[error("{context}: {source}")]
    Io {
        /// What the proxy was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A peer sent bytes that are not the protocol.
    #[error("{peer} protocol error: {source}")]
    Protocol {
        /// `client` or `upstream`.
        peer: &'static str,
        /// What was wrong.
        #[source]
        source: ProtocolError,
    },
    /// A phase did not complete in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The upstream could not be reached or refused the connection; the text
    /// is for the operator's log and may name the upstream, never a secret.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The session was refused with this error (sent to the client as FATAL).
    #[error("refused: {0}")]
    Refused(PgError),
}

impl SessionError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| SessionError::Io { context, source }
    }

    pub(crate) fn client(source: ProtocolError) -> Self {
        SessionError::Protocol {
            peer: "client",
            source,
        }
    }

    pub(crate) fn upstream(source: ProtocolError) -> Self {
        SessionError::Protocol {
            peer: "upstream",
            source,
        }
    }
}
