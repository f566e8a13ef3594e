//! The integration tests of the `periscope` binary, as one test binary (one
//! build, one link): the real `periscope` process in front of throwaway
//! PostgreSQL clusters, driven by real clients. One module per area; shared
//! harnesses live in `support/`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// Harnesses: the CLI runner, the gateway API world, the proxy world, SSO.
mod support;

/// The crate layering and the gateway's module graph, as docs/architecture.md says.
mod architecture;
/// Where the CLI finds its gateway, token and CA.
mod cli_config;
/// The CLI end to end against a real `periscope up`.
mod cli_e2e;
/// Offline verification of an exported audit log.
mod cli_verify;
/// Real PostgreSQL clients through the gateway, compared with direct (issue 18).
mod client_matrix;
/// The web console in a real browser (Chromium) and over plain HTTPS.
mod console;
/// Administration in the browser: identities, tokens, configuration, reload.
mod console_admin;
/// Query from the browser: masked cells, refusals with their hint, the audit trail.
mod console_query;
/// Live sessions in the console: ending one, its timeline and recording.
mod console_sessions;
/// `periscope demo` end to end.
mod demo_tour;
/// `periscope discover` end to end: proposals, apply, background profiles.
mod discover;
/// Commands through the gateway: `periscope exec` on exec connections.
mod exec_commands;
/// Recordings of exec sessions: masked casts, sealed, played, verified.
mod exec_recordings;
/// The gateway SIGKILLed mid-statement: the audit log keeps every acknowledged statement.
mod fault_gateway;
/// The upstream PostgreSQL dies mid-query.
mod fault_upstream;
/// The grant workflow through the real binary's API.
mod gateway_grants;
/// `periscope up` as a process: start, restart, bad config, shutdown.
mod gateway_lifecycle;
/// Two gateways on one shared PostgreSQL store.
mod gateway_postgres;
/// Webhook notifications to a real local receiver.
mod gateway_webhook;
/// Hostile clients against the PostgreSQL listener.
mod hostile_protocol;
/// A short concurrent-session load run.
mod load_sessions;
/// Log sources through the gateway: `periscope logs` on logs connections.
mod logs_tail;
/// AI agents through the MCP server, driven by the official Python SDK.
mod mcp;
/// Who gets in through the PostgreSQL listener.
mod proxy_access;
/// Guardrails and grants through the real gateway.
mod proxy_grants;
/// Masking through the real gateway.
mod proxy_masking;
/// Bounded memory on huge results and slow clients.
mod proxy_memory;
/// `periscope redact` end to end.
mod redact_cli;
/// The interactive shell: `kind = "shell"` over the WebSocket and `periscope shell`.
mod shell_pty;
/// Recordings of PostgreSQL sessions: statements with masked samples, sealed, played, verified.
mod sql_recordings;
/// Single sign-on end to end with the dev OpenID Connect provider.
mod sso;
