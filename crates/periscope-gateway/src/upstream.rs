//! A connection's upstream target with its injected credentials: what the
//! PostgreSQL front end and discovery's sampling both connect with.

use periscope_pg_wire::{SessionTarget, UpstreamTls};
use periscope_policy::UpstreamTls as ConfigTls;
use secrecy::SecretString;

use crate::config::read_secret;

/// Why a connection's upstream target could not be built (details are
/// logged, never shown: they may name a secret's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// The upstream password could not be read.
    Password,
    /// `upstream_tls = "verify-full"` without `upstream_ca_file`.
    CaFile,
}

/// The upstream of `conn` with its injected credentials (read now from
/// `password_env`/`password_file`) and the run-time `parameters` for its
/// startup packet: what proxy sessions and discovery's sampling connect
/// with.
pub fn upstream_target(
    conn: &periscope_policy::ConnectionConfig,
    parameters: Vec<(String, String)>,
) -> Result<SessionTarget, TargetError> {
    let password = match &conn.password {
        Some(reference) => match read_secret(reference) {
            Ok(v) => v,
            Err(detail) => {
                tracing::error!(connection = %conn.name, source = %reference, %detail, "cannot read the upstream password");
                return Err(TargetError::Password);
            }
        },
        None => SecretString::from(""),
    };
    let tls = match conn.upstream_tls {
        ConfigTls::Disable => UpstreamTls::Disable,
        ConfigTls::Prefer => UpstreamTls::Prefer,
        ConfigTls::Require => UpstreamTls::Require,
        ConfigTls::VerifyFull => match &conn.upstream_ca_file {
            Some(ca) => UpstreamTls::VerifyFull {
                ca_file: ca.clone(),
            },
            None => {
                tracing::error!(connection = %conn.name, "upstream_tls = verify-full needs upstream_ca_file");
                return Err(TargetError::CaFile);
            }
        },
    };
    Ok(SessionTarget {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
        password,
        tls,
        parameters,
    })
}
