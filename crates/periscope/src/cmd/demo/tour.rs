//! What the newcomer reads: the tour with its exact commands, and live
//! notes when a grant starts or ends.

use std::io::Write as _;
use std::time::Duration;

use periscope_gateway::{EndReason, GrantEvent};

use crate::cmd::output::shell_quote;

use super::database::conninfo_value;
use super::{CONNECTION, DATABASE, Demo, DemoArgs, EXEC_CONNECTION, LOGS_CONNECTION, Ready};

/// Tells, in the demo's terminal, when a grant starts and ends.
pub(super) async fn narrate(gateway: periscope_gateway::Gateway) {
    let mut events = gateway.subscribe();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let line = match event {
            GrantEvent::Started(g) => format!(
                "grant {} started: {} now sees what it lifts on {}, in sessions opened from now on",
                g.grant_id, g.identity, g.connection
            ),
            GrantEvent::Ended(g) => {
                let why = match g.reason {
                    EndReason::Expired => "expired".to_string(),
                    EndReason::Revoked { by } => format!("revoked by {by}"),
                };
                format!(
                    "grant {} {why}: the shields are back for {} on {}, and sessions that relied on it are ended",
                    g.grant_id, g.identity, g.connection
                )
            }
            _ => continue,
        };
        println!("periscope demo: {line}");
    }
}

/// The banner, the tour and the ready line.
pub(super) fn print_tour(
    args: &DemoArgs,
    demo: &Demo,
    ready: &Ready,
    elapsed: Duration,
) -> std::io::Result<()> {
    let dir = &demo.dir.path;
    let env = |name: &str| shell_quote(&dir.join(format!("env/{name}.env")).display().to_string());
    let conninfo = format!(
        "host={} port={} user=alice dbname={CONNECTION} sslmode=verify-full sslrootcert={}",
        ready.pg_addr.ip(),
        ready.pg_addr.port(),
        conninfo_value(&ready.ca_file.display().to_string())
    );
    let psql = format!("psql \"{}\"", conninfo.replace('"', "\\\""));
    let for_ = &args.expire_in;
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "Periscope demo {}, ready in {:.1}s.",
        env!("CARGO_PKG_VERSION"),
        elapsed.as_secs_f64()
    )?;
    let kept = if args.keep || demo.dir.resumed {
        "kept on exit"
    } else {
        "removed on Ctrl-C; --keep keeps it"
    };
    writeln!(out, "  directory:   {} ({kept})", dir.display())?;
    writeln!(
        out,
        "  gateway:     {} (API), {} (PostgreSQL)",
        ready.api_url, ready.pg_addr
    )?;
    writeln!(
        out,
        "  connection:  {CONNECTION} -> {}",
        ready.upstream_label
    )?;
    if let Some(c) = &ready.counts {
        writeln!(
            out,
            "  data:        {} customers, {} orders, {} payments, {} integrations (all fake)",
            c.customers, c.orders, c.payments, c.integrations
        )?;
    }
    writeln!(
        out,
        "  identities:  alice (role developer), bob (role approver), admin; tokens in {}",
        dir.join("env").display()
    )?;
    for note in &ready.notes {
        writeln!(out, "  note:        {note}")?;
    }
    let steps: Vec<(String, Vec<String>)> = vec![
        (
            "Act as alice, a developer: her token and the gateway's CA are in an env file.".into(),
            vec![format!(". {}", env("alice"))],
        ),
        (
            "Read customers through the gateway. Emails, phones and card numbers arrive masked, \
             in the notes too: nobody asked to see them, so they never leave the gateway in clear. \
             So does external_ref, whose name says nothing: the gateway profiled the data when it \
             started and found national ids written without separators."
                .into(),
            vec![format!(
                "{psql} -c \"SELECT id, name, email, phone, card_number, external_ref, notes FROM customers ORDER BY id LIMIT 5\""
            )],
        ),
        (
            "Secrets stay masked even under a grant: API keys, and the GitHub token pasted into a note."
                .into(),
            vec![format!(
                "{psql} -c \"SELECT provider, api_key, notes FROM integrations ORDER BY id LIMIT 3\""
            )],
        ),
        (
            "Try to change data: refused with SQLSTATE 42501, because a connection is read-only \
             until a grant lifts `write`; the HINT is the exact command to ask for it."
                .into(),
            vec![format!(
                "{psql} -v VERBOSITY=verbose -c \"UPDATE customers SET email = 'new@example.com' WHERE id = 1\""
            )],
        ),
        (
            format!(
                "Ask to see emails for {for_}, with a reason. Role developer needs one approval \
                 from role approver; note the request id it prints."
            ),
            vec![format!(
                "periscope request {CONNECTION} --lift unmask:email --for {for_} --reason \"INC-1042: customer 1 says the receipt never arrived\""
            )],
        ),
        (
            format!(
                "Act as bob, an approver, and approve it: in a browser, open {}/approvals, sign \
                 in with the PERISCOPE_TOKEN of {} and press Approve on alice's request (its \
                 reason and the policy's explanation are shown); or in the shell (put the id \
                 from the previous step in place of REQUEST_ID). Nobody can approve their own \
                 request.",
                ready.api_url,
                env("bob")
            ),
            vec![
                format!(". {}", env("bob")),
                "periscope approve REQUEST_ID".into(),
            ],
        ),
        (
            "Back as alice, in a new session: emails are in clear now, phones and cards stay \
             masked (the grant lifts unmask:email only; role developer may never lift card)."
                .into(),
            vec![
                format!(". {}", env("alice")),
                format!(
                    "{psql} -c \"SELECT id, email, phone, card_number FROM customers ORDER BY id LIMIT 5\""
                ),
            ],
        ),
        (
            format!(
                "Keep a session open and let the grant expire ({for_} after the approval; \
                 `periscope grants` shows the time left). The gateway ends sessions that relied \
                 on it: the next statement gets FATAL, and a new session sees masked emails again."
            ),
            vec![psql.clone()],
        ),
        (
            format!(
                "Read the shop's application log through the gateway: the emails, the card \
                 number, the bearer token and the AWS key in it arrive masked. No grant is needed \
                 to read logs, because what you read is masked; --grep runs on the masked text, \
                 so it cannot probe a masked value ({} has the log)",
                dir.join("logs/shop.log").display()
            ),
            vec![
                format!("periscope logs {LOGS_CONNECTION} app"),
                format!("periscope logs {LOGS_CONNECTION} app --grep checkout"),
            ],
        ),
        (
            "Run a command through the gateway: an exec connection runs only the argument \
             patterns an administrator allowed, argv only, and its output is masked as it \
             streams."
                .into(),
            vec![format!(
                "periscope exec {EXEC_CONNECTION} -- {}",
                shell_quote(&dir.join("logs/shop.log").display().to_string())
            )],
        ),
        (
            "A sensitive command is refused: reading /etc is a `command:/etc/*` shield on this \
             connection, and the hint is the exact command that requests a grant for it."
                .into(),
            vec![format!("periscope exec {EXEC_CONNECTION} -- /etc/hostname")],
        ),
        (
            format!(
                "Every session is recorded as you saw it, masked, and its SHA-256 sealed into \
                 the audit log. List your SQL sessions' recordings and play the newest back \
                 (put its ID, the last row, in place of RECORDING_ID): each statement with a \
                 sample of its masked result, here at 1000x speed. `periscope recordings list` \
                 without --connection also shows the {EXEC_CONNECTION} run."
            ),
            vec![
                format!("periscope recordings list --connection {CONNECTION}"),
                "periscope recordings play RECORDING_ID --speed 1000 --max-idle 10ms".into(),
            ],
        ),
        (
            "Check the trail as the administrator: every login, statement, refusal, request, \
             approval and expiry is in a hash-chained audit log with signed checkpoints."
                .into(),
            vec![
                format!(". {}", env("admin")),
                "periscope audit tail -n 30".into(),
                "periscope audit verify".into(),
            ],
        ),
        (
            "As the administrator, see why external_ref is masked: what the background profile \
             found, with its evidence as counts and shares (never a value); `--dismiss COLUMN` \
             overrides a finding."
                .into(),
            vec![format!("periscope discover {CONNECTION} --review")],
        ),
    ];
    writeln!(out)?;
    writeln!(
        out,
        "The tour: run these in another terminal (lines after $ are commands)."
    )?;
    for (i, (text, commands)) in steps.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "{}. {}", i + 1, wrap(text, 3))?;
        for command in commands {
            writeln!(out, "   $ {command}")?;
        }
        if i == 7 {
            writeln!(
                out,
                "   {CONNECTION}=> SELECT id, email FROM customers WHERE id = 1;"
            )?;
            writeln!(
                out,
                "   (again once the grant has expired; then quit with \\q)"
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "Web console: {}",
        wrap(
            &format!(
                "{}/ in a browser that trusts {} (docs/console.md). Sign in with a \
                 PERISCOPE_TOKEN from the env files: as bob, approve alice's request at \
                 {}/approvals instead of with `periscope approve`, and watch her grant count \
                 down on her home page.",
                ready.api_url,
                ready.ca_file.display(),
                ready.api_url
            ),
            3
        )
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "AI agents (MCP): {}",
        wrap(
            &format!(
                "{}/mcp serves the Model Context Protocol (docs/mcp.md). An agent holding \
                 alice's token acts as alice through the same shields, and can ask for a grant \
                 but never approve one. Add it to Claude Code (Node clients trust the demo's CA \
                 through NODE_EXTRA_CA_CERTS={}):",
                ready.api_url,
                ready.ca_file.display()
            ),
            3
        )
    )?;
    writeln!(
        out,
        "   {}",
        wrap(
            "Without the header, the client signs alice in itself (OAuth with PKCE): it \
             opens the browser on the gateway's sign-in and consent page, alice allows it, and \
             it receives her token; no secret is pasted.",
            3
        )
    )?;
    // Not `$ ` lines: those are the tour's steps, which the demo test runs.
    writeln!(out, "     . {}", env("alice"))?;
    writeln!(
        out,
        "     claude mcp add --transport http periscope {}/mcp --header \"Authorization: Bearer $PERISCOPE_TOKEN\"",
        ready.api_url
    )?;
    writeln!(
        out,
        "   or in a client's JSON configuration (.mcp.json, Cursor's mcp.json):"
    )?;
    let snippet = serde_json::json!({
        "mcpServers": {
            "periscope": {
                "type": "http",
                "url": format!("{}/mcp", ready.api_url),
                "headers": { "Authorization": "Bearer ${PERISCOPE_TOKEN}" }
            }
        }
    });
    for line in serde_json::to_string_pretty(&snippet)
        .unwrap_or_default()
        .lines()
    {
        writeln!(out, "     {line}")?;
    }
    if let Some(issuer) = &ready.sso_issuer {
        let people: Vec<String> = super::sso::PEOPLE
            .iter()
            .map(|(name, group, role)| format!("{name} (group {group}, role {role})"))
            .collect();
        writeln!(out)?;
        writeln!(
            out,
            "Single sign-on: {}",
            wrap(
                &format!(
                    "a test identity provider runs at {issuer} with two people who sign in \
                     without a password: {}. Sign in from a terminal (a browser opens; pick a \
                     person), or with --device on a machine without a browser:",
                    people.join(" and ")
                ),
                3
            )
        )?;
        writeln!(
            out,
            "   $ periscope login --sso --url {} --ca-file {}",
            ready.api_url,
            shell_quote(&ready.ca_file.display().to_string())
        )?;
        writeln!(out, "   $ periscope whoami")?;
        writeln!(
            out,
            "   In a browser (trust {} first): {}/sso/login",
            ready.ca_file.display(),
            ready.api_url
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "periscope: ready api={} pg={} data_dir={}",
        ready.api_url,
        ready.pg_addr,
        dir.display()
    )?;
    let keep = args.keep || demo.dir.resumed;
    let mut stops = vec!["the gateway"];
    if demo.cluster.is_some() {
        stops.push("PostgreSQL");
    }
    let then = match (keep, demo.created_database.is_some()) {
        (true, _) => "keeps the directory".to_string(),
        (false, true) => format!("drops {DATABASE} and removes the directory"),
        (false, false) => "removes the directory".to_string(),
    };
    writeln!(out, "Ctrl-C stops {} and {then}.", stops.join(" and "))?;
    out.flush()
}

/// Wraps a sentence to fit 88 columns after a prefix of `indent`
/// characters; continuation lines are indented by as much.
fn wrap(text: &str, indent: usize) -> String {
    let width = 88 - indent;
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}
