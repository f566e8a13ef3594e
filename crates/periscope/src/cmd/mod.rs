//! One module per subcommand family. Each exposes `XxxArgs` (clap) and `run`.

pub mod redact;
