//! `periscope audit`: read the hash-chained log (`tail`, `search`), take it away
//! (`export`), and prove it intact (`verify`), either through the gateway or
//! offline from an export and the public key alone.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt as _;
use periscope_api::VerifyResponse;
use periscope_audit::{
    AuditEvent, AuditVerifierKey, ChainError, ChainHash, ChainVerifier, Head, JsonlReader,
    JsonlRecord, Start, VerifyReport,
};
use periscope_gateway::recordings::verify::Collector;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::output::{plural, render, table};
use crate::client::{CliError, Client, ConnArgs, print, print_json};

/// Arguments of `periscope audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// Subcommands of `periscope audit`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// The latest events, oldest first; --follow keeps printing new ones (Ctrl-C stops).
    Tail {
        /// How many of the latest events to print first.
        #[arg(short = 'n', long = "lines", default_value_t = 20, value_name = "N")]
        lines: u32,
        /// Keep polling for new events (every 0.5 s while busy, backing off to 5 s
        /// when quiet).
        #[arg(short, long)]
        follow: bool,
    },
    /// Events matching all the given filters.
    Search {
        /// Who did it (identity name, or `gateway`).
        #[arg(long, value_name = "NAME")]
        actor: Option<String>,
        /// What happened, e.g. request.create, grant.expire, query.refused.
        #[arg(long, value_name = "ACTION")]
        action: Option<String>,
        /// What it was done to, e.g. a connection or a request id.
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
        /// Only events at or after this time: RFC 3339, or a duration back from
        /// now such as 1h or 7d.
        #[arg(long, value_name = "WHEN", value_parser = parse_when)]
        since: Option<String>,
        /// Only events before this time (same forms as --since).
        #[arg(long, value_name = "WHEN", value_parser = parse_when)]
        until: Option<String>,
        /// At most this many events.
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Stream the log in the audit JSONL format (events with their signed
    /// checkpoints), to stdout or a file, for offline verification.
    Export {
        /// Start at this time: RFC 3339, or a duration back from now (1h, 7d).
        #[arg(long, value_name = "WHEN", value_parser = parse_when, conflicts_with = "since_seq")]
        since: Option<String>,
        /// Start at this event seq.
        #[arg(long, value_name = "N")]
        since_seq: Option<u64>,
        /// Write to this file instead of stdout (written aside, then renamed, so an
        /// interrupted export never leaves a file that looks complete).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Verify the chain: on the gateway, or offline with --file and --public-key.
    Verify {
        /// Verify this export offline (no gateway needed); `-` reads stdin.
        #[arg(long, value_name = "FILE", requires = "public_key")]
        file: Option<PathBuf>,
        /// The public key that verifies the checkpoints (PEM, 64 hex digits or
        /// base64); repeat for rotated keys. Obtain it out of band.
        #[arg(long, value_name = "PATH", requires = "file")]
        public_key: Vec<PathBuf>,
        /// The file is a partial export (`audit export --since`): take its first
        /// event's link as given instead of requiring the log to start at seq 1.
        #[arg(long, requires = "file", conflicts_with = "after")]
        partial: bool,
        /// Resume after a position verified before, as SEQ:HASH (the "last event"
        /// line of an earlier verification).
        #[arg(long, value_name = "SEQ:HASH", requires = "file", value_parser = parse_head)]
        after: Option<Head>,
        /// Also check the recordings sealed in the file against this
        /// directory (the gateway's `recordings/`, copied): each file's
        /// SHA-256 must match its `recording.sealed` event.
        #[arg(long, value_name = "DIR", requires = "file")]
        recordings: Option<PathBuf>,
    },
}

/// RFC 3339 or a humantime duration; checked here, sent as typed, so the gateway
/// resolves durations against its own clock.
fn parse_when(text: &str) -> Result<String, String> {
    if OffsetDateTime::parse(text, &Rfc3339).is_ok() || humantime::parse_duration(text).is_ok() {
        Ok(text.to_owned())
    } else {
        Err("expected an RFC 3339 time (2026-11-29T05:00:00Z) or a duration (30m, 1h, 7d)".into())
    }
}

fn parse_head(text: &str) -> Result<Head, String> {
    let (seq, hash) = text
        .split_once(':')
        .ok_or_else(|| "expected SEQ:HASH, e.g. 1200:9f86d0...".to_owned())?;
    let seq = seq
        .trim()
        .parse::<u64>()
        .map_err(|e| format!("the seq {seq:?} is not a number: {e}"))?;
    let hash = ChainHash::from_hex(hash.trim()).map_err(|e| format!("the hash: {e}"))?;
    Ok(Head { seq, hash })
}

/// Whether `audit` needs the gateway (offline verify does not).
pub fn needs_gateway(args: &AuditArgs) -> bool {
    !matches!(&args.command, AuditCommand::Verify { file: Some(_), .. })
}

/// Runs the offline verification (no client, no network).
pub fn run_offline(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify {
        file: Some(file),
        public_key,
        partial,
        after,
        recordings,
    } = &args.command
    else {
        return Err(CliError::usage("offline verification needs --file").into());
    };
    let start = match (after, partial) {
        (Some(head), _) => Start::After(*head),
        (None, true) => Start::AsGiven,
        (None, false) => Start::Genesis,
    };
    verify_file(
        file,
        public_key,
        start,
        recordings.as_deref(),
        args.conn.json,
    )
}

/// Runs the subcommands that talk to the gateway.
pub async fn run(api: &Client, args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let json = args.conn.json;
    match &args.command {
        AuditCommand::Tail { lines, follow } => tail(api, *lines, *follow, json).await,
        AuditCommand::Search {
            actor,
            action,
            target,
            since,
            until,
            limit,
        } => {
            let url = api.url(
                &["v1", "audit", "events"],
                &[
                    ("actor", actor.clone()),
                    ("action", action.clone()),
                    ("target", target.clone()),
                    ("since", since.clone()),
                    ("until", until.clone()),
                    ("limit", limit.map(|n| n.to_string())),
                ],
            );
            let answer = api.get::<Vec<AuditEvent>>(url).await?;
            if json {
                print_json(&answer.raw)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table([
                "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "GRANTS", "DETAILS",
            ]);
            for e in &answer.value {
                t.add_row(vec![
                    e.seq.to_string(),
                    short_time(e),
                    e.actor.clone(),
                    e.action.clone(),
                    dash(&e.target),
                    dash(&e.grant_ids.join(",")),
                    details(e),
                ]);
            }
            print(&render(&t, "No matching audit events."))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export {
            since,
            since_seq,
            output,
        } => export(api, since.clone(), *since_seq, output.as_deref()).await,
        AuditCommand::Verify { .. } => verify_online(api, json).await,
    }
}

/// `2026-11-29T05:00:00Z`: the event time to the second (the log keeps microseconds).
fn short_time(e: &AuditEvent) -> String {
    let text = e.time.as_str();
    match text.get(..19) {
        Some(head) => format!("{head}Z"),
        None => text.to_owned(),
    }
}

fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

fn details(e: &AuditEvent) -> String {
    match &e.details {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::Object(map) if map.is_empty() => "-".to_owned(),
        other => other.to_string(),
    }
}

/// One event per line, like a log: `seq time actor action target details [grants]`.
fn event_line(e: &AuditEvent) -> String {
    let mut line = format!(
        "{:>6}  {}  {}  {}  {}",
        e.seq,
        short_time(e),
        e.actor,
        e.action,
        dash(&e.target)
    );
    let d = details(e);
    if d != "-" {
        line.push_str("  ");
        line.push_str(&d);
    }
    if !e.grant_ids.is_empty() {
        line.push_str(&format!("  grants={}", e.grant_ids.join(",")));
    }
    line
}

fn show(events: &[AuditEvent], json: bool) -> io::Result<()> {
    let mut text = String::new();
    for e in events {
        let line = if json {
            serde_json::to_string(e).map_err(io::Error::other)?
        } else {
            event_line(e)
        };
        text.push_str(&line);
        text.push('\n');
    }
    if text.is_empty() {
        return Ok(());
    }
    print(&text)
}

/// Shortest and longest pause between polls of `tail --follow`.
const POLL_MIN: Duration = Duration::from_millis(500);
const POLL_MAX: Duration = Duration::from_secs(5);

async fn tail(api: &Client, lines: u32, follow: bool, json: bool) -> anyhow::Result<ExitCode> {
    let url = api.url(
        &["v1", "audit", "events"],
        &[("tail", Some(lines.to_string()))],
    );
    let answer = api.get::<Vec<AuditEvent>>(url).await?;
    let mut events = answer.value;
    events.sort_by_key(|e| e.seq);
    if !follow && json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !follow && events.is_empty() {
        print("The audit log is empty.")?;
        return Ok(ExitCode::SUCCESS);
    }
    // Under --follow, --json prints one event per line (JSON Lines) so that the
    // output can be consumed while it grows.
    show(&events, json)?;
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut last = events.last().map_or(0, |e| e.seq);
    let mut delay = POLL_MIN;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(delay) => {}
        }
        let fresh = tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            fresh = events_after(api, last) => fresh?,
        };
        if let Some(e) = fresh.last() {
            last = e.seq;
            show(&fresh, json)?;
            delay = POLL_MIN;
        } else {
            delay = (delay * 2).min(POLL_MAX);
        }
    }
}

/// Events with seq > `last`, read from the export stream (the one route that
/// pages by seq), line by line.
async fn events_after(api: &Client, last: u64) -> anyhow::Result<Vec<AuditEvent>> {
    // `since_seq` is inclusive; anything at or before `last` is dropped below anyway.
    let url = api.url(
        &["v1", "audit", "export"],
        &[("since_seq", Some(last.saturating_add(1).to_string()))],
    );
    let response = api.stream(url).await?;
    let mut body = response.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let take = |line: &[u8], out: &mut Vec<AuditEvent>| -> anyhow::Result<()> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match JsonlReader::new(line).next() {
            Some(Ok(JsonlRecord::Event(e))) if e.seq > last => out.push(e),
            Some(Ok(_)) | None => {}
            Some(Err(err)) => {
                return Err(CliError::refused(format!(
                    "the gateway's audit stream holds a line that cannot be read: {}",
                    err.problem
                ))
                .into());
            }
        }
        Ok(())
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| api.transport(&e))?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            take(&line, &mut out)?;
        }
    }
    take(&pending, &mut out)?;
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

async fn export(
    api: &Client,
    since: Option<String>,
    since_seq: Option<u64>,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let url = api.url(
        &["v1", "audit", "export"],
        &[
            ("since", since),
            ("since_seq", since_seq.map(|n| n.to_string())),
        ],
    );
    // Ask before creating any file, so a refusal leaves nothing behind.
    let response = api.stream(url).await?;
    let Some(path) = output else {
        let mut out = io::stdout().lock();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| api.transport(&e))?;
            out.write_all(&chunk)?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    let part = part_path(path);
    let result = async {
        let mut file = io::BufWriter::new(
            File::create(&part)
                .map_err(|e| CliError::usage(format!("cannot create {}: {e}", part.display())))?,
        );
        let progress = if io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} exporting: {bytes} ({bytes_per_sec}), {msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        let (mut bytes, mut lines) = (0u64, 0u64);
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| api.transport(&e))?;
            file.write_all(&chunk)
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", part.display())))?;
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            if let Some(bar) = &progress {
                bar.set_position(bytes);
                bar.set_message(format!("{lines} lines"));
            }
        }
        let file = file.into_inner().map_err(|e| {
            CliError::usage(format!("cannot write {}: {}", part.display(), e.error()))
        })?;
        file.sync_all()
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", part.display())))?;
        std::fs::rename(&part, path).map_err(|e| {
            CliError::usage(format!(
                "cannot rename {} to {}: {e}",
                part.display(),
                path.display()
            ))
        })?;
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        Ok::<_, anyhow::Error>((bytes, lines))
    }
    .await;
    let (bytes, lines) = match result {
        Ok(counts) => counts,
        Err(err) => {
            let _ = std::fs::remove_file(&part);
            return Err(err);
        }
    };
    eprintln!(
        "Exported {lines} line{} ({bytes} bytes) to {}.\n\
         Verify it offline: periscope audit verify --file {} --public-key audit-verify.pub",
        plural(lines),
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `FILE` → `FILE.part` beside it (same directory, so the rename is atomic).
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

async fn verify_online(api: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let answer = api
        .post::<(), VerifyResponse>(api.url(&["v1", "audit", "verify"], &[]), None)
        .await?;
    let v = &answer.value;
    if json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::from(if v.ok {
            0
        } else {
            crate::client::EXIT_REFUSED
        }));
    }
    if v.ok {
        print(&v.summary)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut err = CliError::refused(format!("audit verification failed: {}", v.summary));
    if let Some(seq) = v.broken_at {
        err = err.with_hint(format!(
            "inspect the events around seq {seq} with `periscope audit search`, and compare \
             with an earlier export"
        ));
    }
    Err(err.into())
}

fn verify_file(
    file: &Path,
    key_files: &[PathBuf],
    start: Start,
    recordings: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut keys = Vec::new();
    for path in key_files {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::usage(format!(
                "cannot read the public key {}: {e}",
                path.display()
            ))
        })?;
        let key = AuditVerifierKey::parse(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is not an audit public key: {e}",
                path.display()
            ))
        })?;
        keys.push(key);
    }
    let input: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(BufReader::new(io::stdin().lock()))
    } else {
        Box::new(BufReader::new(File::open(file).map_err(|e| {
            CliError::usage(format!("cannot open {}: {e}", file.display()))
        })?))
    };
    let mut notes = Vec::new();
    let mut seals = Collector::default();
    let outcome = verify_stream(input, &keys, start, &mut notes, &mut seals);
    for note in &notes {
        eprintln!("periscope: note: {note}");
    }
    match outcome {
        Ok(report) => {
            if let Some(dir) = recordings {
                let checked = seals.check(dir);
                if !checked.ok() {
                    if json {
                        print_json(&serde_json::json!({
                            "ok": false,
                            "chain": report_json(&report),
                            "recordings": checked.problem_lines(),
                            "error": checked.to_string(),
                        }))?;
                    }
                    return Err(CliError::refused(format!(
                        "audit verification of {} failed: the chain is intact, but {checked}",
                        file.display()
                    ))
                    .with_hint(
                        "a recording that differs from its seal was altered after the session;                          one that is missing was deleted or not copied",
                    )
                    .into());
                }
                if !json {
                    print(&format!("{}: {checked}", dir.display()))?;
                }
            }
            if json {
                print_json(&report_json(&report))?;
            } else {
                print(&format!("{}: {report}", file.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if json {
                print_json(&serde_json::json!({
                    "ok": false,
                    "broken_at": err.seq(),
                    "error": err.to_string(),
                }))?;
            }
            let mut failure = CliError::refused(format!(
                "audit verification of {} failed: {err}",
                file.display()
            ));
            if start == Start::Genesis && matches!(err, ChainError::Missing { after: 0, .. }) {
                failure = failure.with_hint(
                    "if this file is a partial export (`audit export --since`), verify it \
                     with --partial, or with --after SEQ:HASH from an earlier verification",
                );
            } else if matches!(err, ChainError::UnknownKey { .. }) {
                failure = failure.with_hint(
                    "use the public key of the gateway that wrote this log (keys/audit-verify.pub \
                     in its data dir), obtained out of band",
                );
            }
            Err(failure.into())
        }
    }
}

/// Feeds the export to the streaming verifier, noting a header that names a key
/// the auditor was not given (a hint only: headers are not signed).
fn verify_stream(
    input: impl BufRead,
    keys: &[AuditVerifierKey],
    start: Start,
    notes: &mut Vec<String>,
    seals: &mut Collector,
) -> Result<VerifyReport, ChainError> {
    let mut verifier = ChainVerifier::new(keys, start);
    for record in JsonlReader::new(input) {
        match record {
            Ok(JsonlRecord::Header(header)) => {
                if let Some(id) = header.key_id
                    && !keys.iter().any(|k| k.key_id() == id)
                {
                    notes.push(format!(
                        "the file's header says its checkpoints are signed by key {id}, which is \
                         not among the keys given ({})",
                        keys.iter()
                            .map(|k| k.key_id().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            Ok(JsonlRecord::Event(event)) => {
                verifier.add_event(&event)?;
                seals.add(&event);
            }
            Ok(JsonlRecord::Checkpoint(checkpoint)) => verifier.add_checkpoint(checkpoint)?,
            Err(error) => {
                return Err(ChainError::Jsonl {
                    after: verifier.last_seq(),
                    error,
                });
            }
        }
    }
    verifier.finish()
}

fn report_json(r: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "ok": true,
        "events_checked": r.events_checked,
        "events_skipped": r.events_skipped,
        "first_seq": r.first_seq,
        "last_seq": r.last.map(|h| h.seq),
        "last_hash": r.last.map(|h| h.hash.to_hex()),
        "checkpoints_verified": r.checkpoints_verified,
        "checkpoints_before_start": r.checkpoints_before_start,
        "last_checkpoint_seq": r.last_checkpoint_seq,
        "uncovered_events": r.uncovered_events,
        "anchor_vouched": r.anchor_vouched,
        "warnings": r.warnings(),
    })
}
