//! The grant workflow: `request`, `requests`, `approve`, `deny`, `cancel`,
//! `grants`, `revoke`. Every action answers with what happened and what the next
//! person has to run, so a request never stalls for want of the right command.

use std::process::ExitCode;

use periscope_api::{
    ApproveResponse, CreateRequest, DecisionBody, Grant, GrantStatus, Request, RequestStatus,
};

use super::output::{
    ago, expiry, list, now, plural, relative, render, shell_quote, span_secs, table,
};
use crate::client::{CliError, Client, ConnArgs, print, print_json};

/// Arguments of `periscope request`.
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// Connection name, e.g. pg-prod.
    pub connection: String,
    /// Shield to lift, e.g. unmask:email, write, table:payments.cards (repeat or
    /// list several after one --lift).
    #[arg(long = "lift", value_name = "SHIELD", num_args = 1.., required = true)]
    pub lifts: Vec<String>,
    /// How long the grant should last once approved, e.g. 30m, 2h (at most the
    /// role's maximum).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration_text)]
    pub duration: String,
    /// Why: an incident or ticket reference and a sentence.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Checks humantime syntax locally for a precise error, but sends the text as typed.
fn parse_duration_text(text: &str) -> Result<String, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the duration must be longer than zero".into()),
        Ok(_) => Ok(text.to_owned()),
        Err(e) => Err(format!("{e} (examples: 30m, 2h, 1h30m)")),
    }
}

/// `periscope request`.
pub async fn request(api: &Client, args: &RequestArgs) -> anyhow::Result<ExitCode> {
    if args.reason.trim().is_empty() {
        return Err(CliError::usage("--reason must not be empty")
            .with_hint("give an incident or ticket reference and a sentence")
            .into());
    }
    let answer = api
        .post::<_, Request>(
            api.url(&["v1", "requests"], &[]),
            Some(&CreateRequest {
                connection: args.connection.clone(),
                lifts: args.lifts.clone(),
                duration: args.duration.clone(),
                reason: args.reason.clone(),
            }),
        )
        .await?;
    if args.conn.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &answer.value;
    let mut text = format!(
        "Request {id} created: lift {lifts} on {conn} for {dur} (role {role}).\n",
        id = r.id,
        lifts = list(&r.lifts),
        conn = r.connection,
        dur = span_secs(r.duration_secs),
        role = r.role,
    );
    if r.status == RequestStatus::Approved {
        text.push_str(&format!(
            "Granted at once{}: {}.\n",
            if r.break_glass {
                " through a break-glass role (audited as such)"
            } else {
                ""
            },
            r.grant_id
                .as_deref()
                .map_or("see `periscope grants`".to_owned(), |g| format!(
                    "grant {g}"
                )),
        ));
    } else {
        text.push_str(&format!(
            "It needs {} approval{} from {}.\nAn approver runs:\n  periscope approve {}\n",
            r.approvals_required,
            plural(u64::from(r.approvals_required)),
            approvers_phrase(&r.approver_roles),
            shell_quote(&r.id),
        ));
        text.push_str(&format!(
            "Follow it with `periscope requests --identity {}`; cancel it with `periscope cancel {}`.",
            shell_quote(&r.requester),
            shell_quote(&r.id)
        ));
    }
    print(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn approvers_phrase(roles: &[String]) -> String {
    match roles {
        [] => "nobody (no approver role is configured)".to_owned(),
        [one] => format!("a member of role {one}"),
        many => format!("members of roles {}", many.join(", ")),
    }
}

/// Request statuses `periscope requests --status` accepts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StatusFilter {
    /// Waiting for approvals (the default).
    Pending,
    /// Approved: a grant was created.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Cancelled by the requester.
    Cancelled,
    /// Not decided in time.
    Expired,
    /// Every status.
    All,
}

impl StatusFilter {
    fn as_query(self) -> &'static str {
        match self {
            StatusFilter::Pending => "pending",
            StatusFilter::Approved => "approved",
            StatusFilter::Denied => "denied",
            StatusFilter::Cancelled => "cancelled",
            StatusFilter::Expired => "expired",
            StatusFilter::All => "all",
        }
    }
}

/// Arguments of `periscope requests`.
#[derive(Debug, clap::Args)]
pub struct RequestsArgs {
    /// Every status, not only pending.
    #[arg(long, conflicts_with = "status")]
    pub all: bool,
    /// Only requests in this status.
    #[arg(long, value_enum, value_name = "STATUS")]
    pub status: Option<StatusFilter>,
    /// Only requests by this identity.
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope requests`.
pub async fn requests(api: &Client, args: &RequestsArgs) -> anyhow::Result<ExitCode> {
    let status = if args.all {
        StatusFilter::All
    } else {
        args.status.unwrap_or(StatusFilter::Pending)
    };
    let answer = api
        .get::<Vec<Request>>(api.url(
            &["v1", "requests"],
            &[
                ("status", Some(status.as_query().to_owned())),
                ("identity", args.identity.clone()),
            ],
        ))
        .await?;
    if args.conn.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = now();
    let mut t = table([
        "ID",
        "REQUESTER",
        "CONNECTION",
        "LIFTS",
        "FOR",
        "APPROVALS",
        "STATUS",
        "CREATED",
        "REASON",
    ]);
    for r in &answer.value {
        t.add_row(vec![
            r.id.clone(),
            r.requester.clone(),
            r.connection.clone(),
            list(&r.lifts),
            span_secs(r.duration_secs),
            format!(
                "{}/{} ({})",
                r.approvals.len(),
                r.approvals_required,
                list(&r.approver_roles)
            ),
            request_status(r.status).to_owned(),
            ago(r.created_at, now),
            r.reason.clone(),
        ]);
    }
    let empty = match status {
        StatusFilter::Pending => "No pending requests.".to_owned(),
        other => format!("No requests ({}).", other.as_query()),
    };
    print(&render(&t, &empty))?;
    Ok(ExitCode::SUCCESS)
}

fn request_status(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Pending => "pending",
        RequestStatus::Approved => "approved",
        RequestStatus::Denied => "denied",
        RequestStatus::Cancelled => "cancelled",
        RequestStatus::Expired => "expired",
    }
}

/// Arguments of `periscope approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// Request id (req_...).
    pub id: String,
    /// An optional note, kept in the audit log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope approve ID`.
pub async fn approve(api: &Client, args: &ApproveArgs) -> anyhow::Result<ExitCode> {
    let answer = api
        .post::<_, ApproveResponse>(
            api.url(&["v1", "requests", &args.id, "approve"], &[]),
            Some(&DecisionBody {
                reason: args.reason.clone(),
            }),
        )
        .await?;
    if args.conn.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &answer.value.request;
    let text = match &answer.value.grant {
        Some(g) => format!(
            "Approved {}: grant {} lifts {} on {} for {}, {}.",
            r.id,
            g.id,
            list(&g.lifts),
            g.connection,
            g.identity,
            expiry(g.expires_at, now())
        ),
        None => {
            let missing = u64::from(r.approvals_required).saturating_sub(r.approvals.len() as u64);
            format!(
                "Approved {} ({} of {} approvals); waiting for {missing} more from {}.",
                r.id,
                r.approvals.len(),
                r.approvals_required,
                approvers_phrase(&r.approver_roles)
            )
        }
    };
    print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `periscope deny`.
#[derive(Debug, clap::Args)]
pub struct DenyArgs {
    /// Request id (req_...).
    pub id: String,
    /// Why it is denied; the requester sees it.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope deny ID --reason TEXT`.
pub async fn deny(api: &Client, args: &DenyArgs) -> anyhow::Result<ExitCode> {
    if args.reason.trim().is_empty() {
        return Err(CliError::usage("--reason must not be empty")
            .with_hint("say why, so the requester can ask again the right way")
            .into());
    }
    let answer = api
        .post::<_, Request>(
            api.url(&["v1", "requests", &args.id, "deny"], &[]),
            Some(&DecisionBody {
                reason: Some(args.reason.clone()),
            }),
        )
        .await?;
    if args.conn.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &answer.value;
    print(&format!(
        "Denied {} ({} asked to lift {} on {}): {}",
        r.id,
        r.requester,
        list(&r.lifts),
        r.connection,
        r.decision_reason.as_deref().unwrap_or(&args.reason)
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `periscope cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// Request id (req_...).
    pub id: String,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope cancel ID`.
pub async fn cancel(api: &Client, args: &CancelArgs) -> anyhow::Result<ExitCode> {
    let answer = api
        .post::<DecisionBody, Request>(api.url(&["v1", "requests", &args.id, "cancel"], &[]), None)
        .await?;
    if args.conn.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &answer.value;
    print(&format!(
        "Cancelled {} (lift {} on {}).",
        r.id,
        list(&r.lifts),
        r.connection
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `periscope grants`.
#[derive(Debug, clap::Args)]
pub struct GrantsArgs {
    /// Include expired and revoked grants.
    #[arg(long)]
    pub all: bool,
    /// Only grants for this identity.
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
    /// Only grants on this connection.
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope grants`.
pub async fn grants(api: &Client, args: &GrantsArgs) -> anyhow::Result<ExitCode> {
    let answer = api
        .get::<Vec<Grant>>(api.url(
            &["v1", "grants"],
            &[
                (
                    "status",
                    Some(if args.all { "all" } else { "active" }.to_owned()),
                ),
                ("identity", args.identity.clone()),
                ("connection", args.connection.clone()),
            ],
        ))
        .await?;
    if args.conn.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = now();
    let mut t = table([
        "ID",
        "IDENTITY",
        "CONNECTION",
        "LIFTS",
        "STATUS",
        "TIME LEFT",
        "EXPIRES",
        "APPROVED BY",
        "REASON",
    ]);
    for g in &answer.value {
        let (status, left) = match g.status {
            GrantStatus::Active if g.expires_at > now => {
                ("active", relative(g.expires_at, now).replacen("in ", "", 1))
            }
            GrantStatus::Active => ("active", "ending".to_owned()),
            GrantStatus::Expired => ("expired", "-".to_owned()),
            GrantStatus::Revoked => ("revoked", "-".to_owned()),
        };
        let status = match (&g.revoked_by, g.status) {
            (Some(by), GrantStatus::Revoked) => format!("revoked by {by}"),
            _ if g.break_glass => format!("{status} (break-glass)"),
            _ => status.to_owned(),
        };
        t.add_row(vec![
            g.id.clone(),
            g.identity.clone(),
            g.connection.clone(),
            list(&g.lifts),
            status,
            left,
            super::output::utc(g.expires_at),
            list(&g.approvers),
            g.reason.clone(),
        ]);
    }
    let empty = if args.all {
        "No grants."
    } else {
        "No active grants. Ask for one with `periscope request CONNECTION --lift SHIELD --for 30m --reason TEXT`."
    };
    print(&render(&t, empty))?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `periscope revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Grant id (gr_...).
    pub id: String,
    /// Why it is ended early; kept in the audit log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope revoke ID`: the shields come back at once, live sessions included.
pub async fn revoke(api: &Client, args: &RevokeArgs) -> anyhow::Result<ExitCode> {
    let answer = api
        .post::<_, Grant>(
            api.url(&["v1", "grants", &args.id, "revoke"], &[]),
            Some(&DecisionBody {
                reason: args.reason.clone(),
            }),
        )
        .await?;
    if args.conn.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let g = &answer.value;
    print(&format!(
        "Revoked {}: {} on {} is shielded again for {} (sessions that relied on it are ended).",
        g.id,
        list(&g.lifts),
        g.connection,
        g.identity
    ))?;
    Ok(ExitCode::SUCCESS)
}
