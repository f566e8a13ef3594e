//! Shared harnesses of the integration tests.

/// Running the built `periscope` CLI.
pub mod cli;
/// A gateway process with the HTTP API and its users.
pub mod gateway;
/// The proxy world: a seeded shop cluster behind a real gateway.
pub mod proxy;
/// The dev OpenID Connect provider wired to a gateway.
pub mod sso;
