//! `periscope redact`: placeholder until the redaction engine lands.

use std::process::ExitCode;

/// Arguments of `periscope redact`.
#[derive(Debug, clap::Args)]
pub struct RedactArgs {
    /// Files to read; stdin when none is given.
    pub files: Vec<std::path::PathBuf>,
}

/// Runs `periscope redact`.
pub fn run(_args: RedactArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
