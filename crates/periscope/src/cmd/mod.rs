//! One module per subcommand family. Each exposes `XxxArgs` (clap) and `run`.

pub mod account;
pub mod admin;
pub mod audit;
pub mod client;
pub mod connections;
pub mod demo;
pub mod discover;
pub mod exec;
pub mod grants;
pub mod logs;
pub mod output;
pub mod policy;
pub mod recordings;
pub mod redact;
pub mod shell;
pub mod sso_login;
pub mod up;
