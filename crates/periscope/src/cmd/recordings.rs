//! `periscope recordings`: list the sealed recordings of exec and PostgreSQL
//! sessions you may see, and play one back in the terminal (at real speed or
//! faster): a terminal session's output as it streamed, a PostgreSQL
//! session as a transcript of its statements with their masked result
//! samples. Or dump the file as stored.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use periscope_api::RecordingSummary;

use super::output::{render, table};

mod sql;
use crate::client::{CliError, Client, ConnArgs, print, print_json};

/// Arguments of `periscope recordings`.
#[derive(Debug, clap::Args)]
pub struct RecordingsArgs {
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: RecordingsCommand,
}

/// Subcommands of `periscope recordings`.
#[derive(Debug, clap::Subcommand)]
pub enum RecordingsCommand {
    /// The newest sealed recordings (exec runs and PostgreSQL sessions):
    /// yours, or everyone's for administrators.
    List {
        /// Only this connection's.
        #[arg(long, value_name = "NAME")]
        connection: Option<String>,
        /// At most this many (newest first kept).
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u32,
    },
    /// Play a recording in the terminal, with its timing.
    Play {
        /// The recording id (the session id, from `periscope recordings list`).
        id: String,
        /// Play this many times faster (0.1 to 1000).
        #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// Cut any pause longer than this (e.g. 1s, 500ms).
        #[arg(long, value_name = "DURATION", value_parser = parse_idle)]
        max_idle: Option<Duration>,
        /// Write the asciicast v2 file as it is stored, instead of playing it.
        #[arg(long)]
        raw: bool,
    },
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.1..=1000.0).contains(&v) => Ok(v),
        _ => Err("expected a number between 0.1 and 1000, e.g. 2 or 0.5".into()),
    }
}

fn parse_idle(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}; write a duration such as 1s or 500ms"))
}

/// Runs `periscope recordings`.
pub async fn run(api: &Client, args: &RecordingsArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        RecordingsCommand::List { connection, limit } => {
            list(api, connection.clone(), *limit, args.conn.json).await
        }
        RecordingsCommand::Play {
            id,
            speed,
            max_idle,
            raw,
        } => play(api, id, *speed, *max_idle, *raw).await,
    }
}

async fn list(
    api: &Client,
    connection: Option<String>,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let url = api.url(
        &["v1", "recordings"],
        &[
            ("connection", connection),
            ("limit", Some(limit.to_string())),
        ],
    );
    let answer = api.get::<Vec<RecordingSummary>>(url).await?;
    if json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table([
        "ID",
        "KIND",
        "CONNECTION",
        "IDENTITY",
        "STARTED",
        "DURATION",
        "BYTES",
        "SHA-256",
        "NOTE",
    ]);
    for r in &answer.value {
        let mut note = Vec::new();
        if r.truncated {
            note.push("truncated".to_string());
        }
        if r.dropped_bytes > 0 {
            note.push(format!("{} bytes dropped", r.dropped_bytes));
        }
        if let Some(n) = r.statements {
            note.push(format!("{n} statement{}", if n == 1 { "" } else { "s" }));
        }
        let kind = if r.format == periscope_api::RECORDING_FORMAT_SQL {
            "sql"
        } else {
            "terminal"
        };
        t.add_row(vec![
            r.id.clone(),
            kind.to_string(),
            r.connection.clone(),
            r.identity.clone(),
            r.started_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            format!("{:.1}s", r.duration_ms as f64 / 1000.0),
            r.bytes.to_string(),
            r.sha256.chars().take(12).collect(),
            note.join(", "),
        ]);
    }
    print(&render(&t, "No recordings."))?;
    Ok(ExitCode::SUCCESS)
}

async fn play(
    api: &Client,
    id: &str,
    speed: f64,
    max_idle: Option<Duration>,
    raw: bool,
) -> anyhow::Result<ExitCode> {
    let mut response = api.stream(api.url(&["v1", "recordings", id], &[])).await?;
    let stdout = std::io::stdout();
    if raw {
        while let Some(chunk) = response.chunk().await.map_err(|e| api.transport(&e))? {
            let mut out = stdout.lock();
            out.write_all(&chunk)?;
        }
        stdout.lock().flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut player = Player::new(speed, max_idle);
    let mut pending: Vec<u8> = Vec::new();
    let mut first = true;
    let mut transcript: Option<sql::Transcript> = None;
    loop {
        let chunk = response.chunk().await.map_err(|e| api.transport(&e))?;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            pending.extend_from_slice(&chunk);
        } else if !pending.is_empty() {
            pending.push(b'\n');
        }
        while let Some(newline) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline).collect();
            if first {
                first = false;
                transcript = check_header(&line)?;
                if let Some(t) = &transcript {
                    let mut out = stdout.lock();
                    out.write_all(t.banner().as_bytes())?;
                    out.flush()?;
                }
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Some(transcript) = &transcript {
                let entry = sql::parse_line(&line)?;
                if let Some(wait) = player.wait_before(entry.at()) {
                    tokio::time::sleep(wait).await;
                }
                match entry {
                    sql::Line::Note { at, text } => eprintln!("periscope: [{at:.1}s] {text}"),
                    sql::Line::Statement(st) => {
                        let mut out = stdout.lock();
                        out.write_all(transcript.render(&st).as_bytes())?;
                        out.flush()?;
                    }
                    sql::Line::Other => {}
                }
                continue;
            }
            let event = parse_event(&line)?;
            if let Some(wait) = player.wait_before(event.0) {
                tokio::time::sleep(wait).await;
            }
            match event.1.as_str() {
                "o" => {
                    let mut out = stdout.lock();
                    out.write_all(event.2.as_bytes())?;
                    out.flush()?;
                }
                "m" => eprintln!("periscope: [{:.1}s] {}", event.0, event.2),
                _ => {}
            }
        }
        if done {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bad_cast(detail: String) -> CliError {
    CliError::refused(format!(
        "the recording is not a valid asciicast v2 file: {detail}"
    ))
    .with_hint("`periscope recordings play ID --raw` shows the file as stored")
}

/// Checks the header line; a SQL recording's header gives its transcript.
fn check_header(line: &[u8]) -> Result<Option<sql::Transcript>, CliError> {
    let header: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| bad_cast(format!("header: {e}")))?;
    if header["format"] == periscope_api::RECORDING_FORMAT_SQL {
        return Ok(Some(sql::Transcript::new(&header)));
    }
    if header["version"] != 2 {
        return Err(bad_cast(format!(
            "version {}, expected 2",
            header["version"]
        )));
    }
    Ok(None)
}

fn parse_event(line: &[u8]) -> Result<(f64, String, String), CliError> {
    serde_json::from_slice::<(f64, String, String)>(line)
        .map_err(|e| bad_cast(format!("event: {e}")))
}

/// Timing of a playback: how long to wait before each event.
struct Player {
    speed: f64,
    max_idle: Option<Duration>,
    last: f64,
}

impl Player {
    fn new(speed: f64, max_idle: Option<Duration>) -> Player {
        Player {
            speed,
            max_idle,
            last: 0.0,
        }
    }

    /// The pause before an event at `at` seconds: the gap since the last
    /// one, capped at `max_idle`, divided by the speed.
    fn wait_before(&mut self, at: f64) -> Option<Duration> {
        let gap = (at - self.last).max(0.0);
        self.last = at.max(self.last);
        let mut gap = Duration::try_from_secs_f64(gap).ok()?;
        if let Some(max) = self.max_idle {
            gap = gap.min(max);
        }
        let wait = gap.div_f64(self.speed);
        (!wait.is_zero()).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_follows_the_cast_capped_and_sped_up() {
        let mut p = Player::new(2.0, Some(Duration::from_secs(1)));
        assert_eq!(p.wait_before(0.0), None);
        assert_eq!(p.wait_before(1.0), Some(Duration::from_millis(500)));
        // 10 s idle capped at 1 s, then halved.
        assert_eq!(p.wait_before(11.0), Some(Duration::from_millis(500)));
        assert_eq!(p.wait_before(11.0), None);
        assert!(parse_speed("0").is_err());
        assert!(parse_idle("soon").is_err());
        assert!(parse_event(br#"[1.5, "o", "hi"]"#).is_ok());
        assert!(parse_event(br#"{"x":1}"#).is_err());
    }
}
