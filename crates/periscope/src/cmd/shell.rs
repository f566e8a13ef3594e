//! `periscope shell CONNECTION`: the interactive shell of a `shell`
//! connection, over the gateway's `GET /v1/shell` WebSocket.
//!
//! On a terminal, the CLI puts it in raw mode (every key, Ctrl-C included,
//! goes to the remote shell as bytes), sends the window size at start and on
//! each SIGWINCH, and restores the terminal on every way out (the guard's
//! `Drop`). Without a terminal (stdin piped), it sends what it reads and,
//! at the end of its input, Ctrl-D (and again whenever the output then goes
//! quiet for 200 ms: a Ctrl-D that reaches the terminal before the shell
//! reads it is lost there), so that a shell reading a script ends by itself.
//! The CLI exits with the remote shell's exit code; a refusal is
//! printed with its hint, like any other.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use periscope_api::{ShellClientFrame, ShellServerFrame};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::ExposeSecret;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::client::{CliError, Client, ConnArgs, api_error};

/// Arguments of `periscope shell`.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// Connection name (`kind = "shell"`, see `periscope connections`).
    pub connection: String,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Quiet time after which a piped session sends Ctrl-D again.
const EOF_AGAIN: std::time::Duration = std::time::Duration::from_millis(200);

/// Restores the terminal when dropped: raw mode never outlives the command.
struct RawMode;

impl RawMode {
    fn enable() -> Option<RawMode> {
        crossterm::terminal::enable_raw_mode()
            .ok()
            .map(|()| RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The local window size, when stdout is a terminal.
fn window_size() -> Option<(u16, u16)> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .filter(|(c, r)| *c > 0 && *r > 0)
}

/// `periscope shell`.
pub async fn shell(api: &Client, args: &ShellArgs) -> anyhow::Result<ExitCode> {
    let size = window_size();
    let mut url = api.url(
        &["v1", "shell"],
        &[
            ("connection", Some(args.connection.clone())),
            ("cols", size.map(|s| s.0.to_string())),
            ("rows", size.map(|s| s.1.to_string())),
        ],
    );
    let _ = url.set_scheme("wss");
    let socket = connect(api, &url).await?;
    let (mut sink, mut stream) = socket.split();

    // Raw mode only once the gateway accepted: a refusal prints normally.
    let interactive = std::io::stdin().is_terminal();
    let raw = if interactive { RawMode::enable() } else { None };
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        .ok()
        .filter(|_| size.is_some());
    // Killed or hung up: leave cleanly (the terminal restored, the remote
    // shell ended by the close).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut stopped: Option<u8> = None;
    let mut stdin = stdin_reader();
    let mut stdin_open = true;
    // After the end of a piped input: Ctrl-D again whenever the output goes
    // quiet (one typed before the shell reads its terminal is lost there).
    let eof_again = tokio::time::sleep(EOF_AGAIN);
    tokio::pin!(eof_again);
    let mut eof_armed = false;
    let stdout = std::io::stdout();
    let end = loop {
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(message)) = frame else { break None };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break None,
                    _ => continue,
                };
                let frame: ShellServerFrame = match serde_json::from_str(text.as_str()) {
                    Ok(f) => f,
                    Err(e) => {
                        drop(raw);
                        return Err(CliError::refused(format!(
                            "the gateway sent a frame the CLI cannot read: {e}"
                        ))
                        .with_hint("the CLI and the gateway may be different versions: compare \
                                    `periscope --version`")
                        .into());
                    }
                };
                match frame {
                    ShellServerFrame::Start { .. } => {}
                    ShellServerFrame::Output { data } => {
                        let mut out = stdout.lock();
                        out.write_all(data.as_bytes())?;
                        out.flush()?;
                        if !stdin_open && !interactive {
                            eof_again.as_mut().reset(tokio::time::Instant::now() + EOF_AGAIN);
                            eof_armed = true;
                        }
                    }
                    ShellServerFrame::Error { message } => {
                        // A frame of ours was refused: say so, go on.
                        let mut err = std::io::stderr().lock();
                        let _ = write!(err, "\r\nperiscope: the gateway refused a frame: {message}\r\n");
                    }
                    end @ ShellServerFrame::End { .. } => break Some(end),
                }
            }
            read = stdin.recv(), if stdin_open => {
                match read {
                    None => {
                        stdin_open = false;
                        // End of a piped input: Ctrl-D, as a terminal would
                        // send at the start of a line.
                        if !interactive {
                            let _ = sink.send(Message::Binary(vec![4u8].into())).await;
                        }
                    }
                    Some(bytes) => {
                        if sink.send(Message::Binary(bytes.into())).await.is_err() {
                            break None;
                        }
                    }
                }
            }
            () = &mut eof_again, if eof_armed => {
                eof_armed = false;
                let _ = sink.send(Message::Binary(vec![4u8].into())).await;
            }
            _ = term.recv() => { stopped = Some(128 + 15); break None; }
            _ = hup.recv() => { stopped = Some(128 + 1); break None; }
            Some(()) = async { match winch.as_mut() { Some(w) => w.recv().await, None => std::future::pending().await } } => {
                if let Some((cols, rows)) = window_size() {
                    let frame = serde_json::to_string(&ShellClientFrame::Resize { cols, rows })
                        .unwrap_or_default();
                    let _ = sink.send(Message::Text(frame.into())).await;
                }
            }
        }
    };
    let _ = sink.close().await;
    drop(raw);
    if let Some(code) = stopped {
        eprintln!("periscope: stopped by a signal; the remote shell was ended");
        return Ok(ExitCode::from(code));
    }
    match end {
        Some(ShellServerFrame::End {
            exit_code,
            message,
            hint,
            ..
        }) => {
            if let Some(message) = message {
                eprintln!("periscope: {message}");
            }
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
            Ok(ExitCode::from(
                u8::try_from(exit_code.clamp(0, 255)).unwrap_or(1),
            ))
        }
        _ => Err(
            CliError::refused("the connection to the gateway ended before the shell did")
                .with_hint("the gateway may have restarted; its audit log has the shell's end")
                .into(),
        ),
    }
}

/// Reads stdin on a thread of its own. Not tokio's stdin: its blocking read
/// runs on the runtime's blocking pool, which the runtime's shutdown waits
/// for, so the CLI would hang after the shell ended until a key was pressed.
/// A plain thread dies with the process.
fn stdin_reader() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 8192];
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens the WebSocket: TLS (the CA file, or the system's roots), then the
/// handshake with the bearer token. A refusal (403 with the shield and the
/// hint) is the gateway's ordinary error body.
async fn connect(api: &Client, url: &reqwest::Url) -> Result<Socket, CliError> {
    let host = url
        .host_str()
        .ok_or_else(|| CliError::usage("the gateway URL has no host"))?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let config = tls_config(api)?;
    let unreachable = |e: &dyn std::fmt::Display| {
        CliError::refused(format!("cannot reach the gateway at {host}:{port}: {e}"))
            .with_hint("check the URL (`periscope login`) and that the gateway runs")
    };
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| unreachable(&e))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|e| CliError::usage(format!("bad gateway host `{host}`: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            CliError::refused(format!("TLS failed with the gateway at {host}:{port}: {e}"))
                .with_hint(
                    "the gateway's certificate is not trusted: pass its CA with --ca-file PATH \
                     (tls/ca.pem in the gateway's data dir), or set PERISCOPE_CA_FILE",
                )
        })?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| CliError::usage(format!("bad shell URL: {e}")))?;
    let auth = format!("Bearer {}", api.token().expose_secret());
    let mut value = tungstenite::http::HeaderValue::from_str(&auth)
        .map_err(|_| CliError::usage("the API token is not a valid header value"))?;
    value.set_sensitive(true);
    request
        .headers_mut()
        .insert(tungstenite::http::header::AUTHORIZATION, value);
    match tokio_tungstenite::client_async(request, tls).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let status = reqwest::StatusCode::from_u16(response.status().as_u16())
                .unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
            let body = response.body().clone().unwrap_or_default();
            Err(api_error(status, &body))
        }
        Err(e) => Err(unreachable(&e)),
    }
}

/// The client's TLS settings: the CA file given, else the platform's roots.
fn tls_config(api: &Client) -> Result<rustls::ClientConfig, CliError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match api.ca_file() {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                CliError::usage(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(CliError::usage(format!(
                    "the CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            Ok(rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth())
        }
        None => {
            use rustls_platform_verifier::ConfigVerifierExt;
            rustls::ClientConfig::with_platform_verifier()
                .map_err(|e| CliError::usage(format!("cannot set up TLS: {e}")))
        }
    }
}
