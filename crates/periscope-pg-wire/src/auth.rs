//! The seam between the proxy and the gateway: who is connecting
//! ([`AuthRequest`]), where their session goes ([`SessionTarget`]) or why it is
//! refused ([`AuthRejection`]).
//!
//! The proxy knows nothing of identities, tokens or policy; the gateway
//! implements [`Authenticator`] and returns, with the target, the per-session
//! [`SessionHooks`] that carry its context
//! (identity, grants) into the relay.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

use crate::error::{PgError, sqlstate};
use crate::hooks::SessionHooks;
use crate::upstream::UpstreamSession;

/// What the client presented, handed to the [`Authenticator`].
#[derive(Debug)]
pub struct AuthRequest {
    /// The `user` startup parameter (the engineer's identity name).
    pub user: String,
    /// The `database` startup parameter: the Periscope connection name.
    pub database: String,
    /// The password message: the Periscope token.
    pub password: SecretString,
    /// Where the client connects from.
    pub client_addr: SocketAddr,
    /// The client's `application_name`, if any.
    pub application_name: Option<String>,
    /// Whether the client connection is TLS-encrypted.
    pub tls: bool,
}

/// How the proxy secures its connection to the upstream server, with the
/// meaning libpq gives the same `sslmode` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTls {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, plain otherwise; the certificate is not
    /// verified (protects against passive eavesdropping only).
    Prefer,
    /// TLS or fail; the certificate is not verified.
    Require,
    /// TLS or fail; the certificate must chain to `ca_file` and name the host.
    VerifyFull {
        /// PEM file with the CA certificate(s) to trust.
        ca_file: PathBuf,
    },
}

/// Where an authenticated session goes, with the credentials the gateway
/// injects. The client never sees any of it.
#[derive(Debug, Clone)]
pub struct SessionTarget {
    /// Upstream host name or address (also the name checked by
    /// [`UpstreamTls::VerifyFull`]).
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// Upstream database name.
    pub database: String,
    /// Upstream role.
    pub user: String,
    /// Upstream password (SCRAM-SHA-256, MD5 or cleartext, as the server asks).
    pub password: SecretString,
    /// How to secure the upstream connection.
    pub tls: UpstreamTls,
    /// Run-time parameters set in the upstream startup packet, after the
    /// client's presentation parameters (e.g. `default_transaction_read_only
    /// = on`). Set there rather than with `SET`, they become the session's
    /// reset values: `RESET ALL` and `DISCARD ALL` return to them.
    pub parameters: Vec<(String, String)>,
}

/// Why the gateway refuses a session; sent to the client as a FATAL
/// ErrorResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRejection {
    /// SQLSTATE, e.g. [`sqlstate::INVALID_PASSWORD`].
    pub code: &'static str,
    /// Message shown to the client.
    pub message: String,
}

impl AuthRejection {
    /// 28P01: the token is wrong, expired or unknown.
    pub fn bad_password(message: impl Into<String>) -> Self {
        Self {
            code: sqlstate::INVALID_PASSWORD,
            message: message.into(),
        }
    }

    /// 3D000: no connection of that name.
    pub fn unknown_connection(message: impl Into<String>) -> Self {
        Self {
            code: sqlstate::INVALID_CATALOG_NAME,
            message: message.into(),
        }
    }

    /// 42501: the identity may not use this connection.
    pub fn not_authorised(message: impl Into<String>) -> Self {
        Self {
            code: sqlstate::INSUFFICIENT_PRIVILEGE,
            message: message.into(),
        }
    }

    pub(crate) fn into_fatal(self) -> PgError {
        PgError::fatal(self.code, self.message)
    }
}

/// A successful authentication: where to go, and the session's hooks (which
/// carry whatever context the gateway keeps per session).
#[derive(Debug)]
pub struct Authenticated<H> {
    /// The upstream to connect to.
    pub target: SessionTarget,
    /// The hooks of this session.
    pub hooks: H,
}

/// Decides who may open a session, and where it goes. Implemented by the
/// gateway (token check, policy, grants); tests implement it to map a fixed
/// token onto a throwaway cluster.
pub trait Authenticator: Send + Sync + 'static {
    /// Hooks created for each accepted session.
    type Hooks: SessionHooks;

    /// Checks a client's credentials. Called once per connection, after the
    /// client sent its password; the proxy applies no timeout of its own
    /// beyond the listener's handshake timeout.
    fn authenticate(
        &self,
        request: &AuthRequest,
    ) -> impl Future<Output = Result<Authenticated<Self::Hooks>, AuthRejection>> + Send;

    /// Called once the upstream session is open and before the client is
    /// told the login succeeded: the authenticator may run queries on the
    /// session's own upstream connection (e.g. read the catalog the masking
    /// stage needs) and finish setting up `hooks`. An error is sent to the
    /// client as FATAL and the session does not start. Bounded by the
    /// listener's handshake timeout.
    fn prepare(
        &self,
        hooks: &mut Self::Hooks,
        upstream: &mut UpstreamSession<'_>,
    ) -> impl Future<Output = Result<(), PgError>> + Send {
        let _ = (hooks, upstream);
        async { Ok(()) }
    }

    /// Whether a client on an unencrypted connection may send its password
    /// for `database` (asked before the password is requested, so a
    /// connection that requires TLS never receives a token in clear). Only
    /// consulted when the listener itself allows plaintext passwords.
    fn allows_plaintext(&self, database: &str) -> bool {
        let _ = database;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn secrets_never_print() {
        let target = SessionTarget {
            host: "db".into(),
            port: 5432,
            database: "shop".into(),
            user: "svc".into(),
            password: SecretString::from("hunter2"),
            tls: UpstreamTls::Disable,
            parameters: Vec::new(),
        };
        let printed = format!("{target:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
        assert_eq!(target.password.expose_secret(), "hunter2");
    }
}
