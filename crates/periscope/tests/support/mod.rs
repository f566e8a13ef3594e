//! Shared harnesses of the integration tests.

/// Running the built `periscope` CLI.
pub mod cli;
/// Headless Chromium through chromedriver, for the web console.
pub mod console;
/// A gateway process with the HTTP API and its users.
pub mod gateway;
/// The proxy world: a seeded shop cluster behind a real gateway.
pub mod proxy;
/// The dev OpenID Connect provider wired to a gateway.
pub mod sso;
