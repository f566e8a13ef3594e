//! `periscope up`: run the gateway in the foreground.
//!
//! Logs go to stderr (`RUST_LOG`, default `info`). Stdout carries a short
//! banner, on the first start the bootstrap administrator's token (shown only
//! then), and finally exactly one machine-readable line that scripts and the
//! test harness wait for:
//!
//! ```text
//! periscope: ready api=https://127.0.0.1:8443 pg=127.0.0.1:15432 data_dir=/srv/periscope-data
//! ```
//!
//! SIGTERM or SIGINT stops it gracefully: no new connections, in-flight
//! requests finish (bounded), the audit writer drains and signs a final
//! checkpoint, exit 0. Shutdown is bounded (10 s for requests and sessions),
//! so no second signal is needed. SIGHUP reloads the configuration (all or
//! nothing).

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use periscope_gateway::{
    ConfigSource, Gateway, GatewayOptions, PgProxy, Running, ServerOverrides, StartError,
};
use tokio::signal::unix::{SignalKind, signal};

/// Arguments of `periscope up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Configuration file; without one, built-in defaults (no connection, only
    /// the admin role).
    #[arg(long, short = 'c', env = "PERISCOPE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Data directory (store, TLS certificate, keys); overrides `server.data_dir`.
    #[arg(long, env = "PERISCOPE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// API listen address; overrides `server.api_listen` (port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT")]
    api_listen: Option<SocketAddr>,

    /// PostgreSQL listen address; overrides `server.pg_listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pg_listen: Option<SocketAddr>,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Test only: let an administrator move the gateway's clock forward
    /// through `POST /v1/test/clock`.
    #[arg(long, hide = true)]
    test_clock: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Log lines on stderr; `RUST_LOG` wins over `default_filter`.
pub(crate) fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second subscriber (tests calling `run` twice) is not an error here.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs `periscope up` until a stop signal.
pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format, "info,sqlx=warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: UpArgs) -> anyhow::Result<ExitCode> {
    let source = match &args.config {
        Some(path) => ConfigSource::File(path.clone()),
        None => ConfigSource::Builtin,
    };
    let overrides = ServerOverrides {
        api_listen: args.api_listen,
        pg_listen: args.pg_listen,
    };
    let options = gateway_options(source, args.data_dir.clone(), overrides, args.test_clock);
    // Signal handlers first, so a SIGTERM during start-up is not lost.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;

    let mut running = match periscope_gateway::start(options).await {
        Ok(running) => running,
        Err(e) => return Ok(start_failed(&e)),
    };
    print_banner(&mut running).context("cannot write to stdout")?;

    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    match running.shutdown().await {
        Ok(()) => {
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("periscope: error: shutdown did not complete cleanly: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The options `periscope up` starts the gateway with. `periscope demo` starts
/// its gateway with the same, so both run one code path (protocol listeners,
/// reload on SIGHUP, shutdown grace).
pub(crate) fn gateway_options(
    config: ConfigSource,
    data_dir: Option<PathBuf>,
    overrides: ServerOverrides,
    test_clock: bool,
) -> GatewayOptions {
    let mut options = GatewayOptions::new(config);
    options.data_dir = data_dir;
    options.overrides = overrides;
    options.test_clock = test_clock;
    options.listeners = vec![Box::new(PgProxy)];
    options.reload_on_sighup = true;
    options.shutdown_grace = Duration::from_secs(10);
    options
}

/// Reports a failed start (configuration problems with file:line:col) and
/// returns the documented exit code.
pub(crate) fn start_failed(e: &StartError) -> ExitCode {
    match e {
        StartError::Config(inner) => {
            eprintln!("periscope: error: the configuration was refused\n{inner}");
        }
        other => eprintln!("periscope: error: {other}"),
    }
    ExitCode::from(e.exit_code())
}

/// `https://HOST:PORT` for people and the CLI: an unspecified bind address
/// becomes the public host (or loopback).
pub(crate) fn api_url(gateway: &Gateway, addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        gateway
            .config()
            .config
            .server
            .public_host
            .clone()
            .unwrap_or_else(|| "127.0.0.1".to_string())
    } else {
        addr.ip().to_string()
    };
    if host.contains(':') {
        format!("https://[{host}]:{}", addr.port())
    } else {
        format!("https://{host}:{}", addr.port())
    }
}

fn print_banner(running: &mut Running) -> std::io::Result<()> {
    let gateway = running.gateway().clone();
    let endpoints = running.endpoints();
    let api = api_url(&gateway, running.api_addr());
    let ca = gateway.ca_file().display().to_string();
    let data_dir = gateway.data_dir().display().to_string();
    let config = gateway.config();
    let pg = endpoints
        .protocol("pg")
        .map_or_else(|| "off".to_string(), |a| a.to_string());
    let mut out = std::io::stdout().lock();
    writeln!(out, "Periscope gateway {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "  config:     {}", config.source)?;
    writeln!(out, "  data dir:   {data_dir}")?;
    writeln!(
        out,
        "  store:      {}",
        format!("{:?}", gateway.store().backend()).to_lowercase()
    )?;
    writeln!(out, "  API:        {api}")?;
    writeln!(out, "  CA:         {ca}  (clients trust this certificate)")?;
    match endpoints.protocol("pg") {
        Some(addr) => writeln!(out, "  PostgreSQL: {addr}")?,
        None => writeln!(out, "  PostgreSQL: not started")?,
    }
    writeln!(
        out,
        "  connections: {}, roles: {}",
        config.config.connections.len(),
        config.config.roles.len()
    )?;
    if gateway.test_clock().is_some() {
        writeln!(
            out,
            "  WARNING: test clock enabled; never use this in production"
        )?;
    }
    if let Some(bootstrap) = running.take_bootstrap() {
        writeln!(out)?;
        writeln!(
            out,
            "First start: created the administrator `{}`. Its token is shown only this once:",
            bootstrap.identity
        )?;
        writeln!(out, "  admin token: {}", bootstrap.token.as_str())?;
        writeln!(out, "Log in with:")?;
        writeln!(
            out,
            "  periscope login --url {api} --token {} --ca-file {ca}",
            bootstrap.token.as_str()
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "periscope: ready api={api} pg={pg} data_dir={data_dir}"
    )?;
    out.flush()
}
