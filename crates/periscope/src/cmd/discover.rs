//! `periscope discover CONNECTION`: find the columns that hold sensitive
//! data whatever their names, by sampling them on the gateway
//! (administrators). Prints evidence as counts and shares, never a value.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use periscope_api::{
    AppliedTags, DISMISSED_TAG, DiscoverRequest, DiscoverResponse, DiscoveredTags, DismissRequest,
};

use super::output::{render, table};
use crate::client::{Client, ConnArgs, print, print_json};

/// Longest the CLI waits for a discovery run (the gateway samples the
/// upstream table by table, each statement bounded by its own timeout).
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(600);

/// Arguments of `periscope discover`.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Connection to profile, e.g. pg-prod.
    pub connection: String,
    /// Only this schema [default: every schema but the system's].
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// Rows sampled per column (10 to 100000) [default: 1000].
    #[arg(long, value_name = "N")]
    pub sample: Option<u32>,
    /// Store the proposed tags: the gateway masks those columns at once
    /// (versioned and audited; `unmask:<entity>` lifts them).
    #[arg(long, conflicts_with_all = ["review", "dismiss"])]
    pub apply: bool,
    /// Override discovery on a column (schema.table.column, repeatable):
    /// its discovered tag is removed and later profiles leave it alone.
    #[arg(long, value_name = "COLUMN", conflicts_with = "review")]
    pub dismiss: Vec<String>,
    /// List what the background profile found and the tags discovery
    /// stored for the connection, version by version, instead of sampling.
    #[arg(long)]
    pub review: bool,
    /// List the untagged columns whose values keep hitting detectors in
    /// results on the gateway (run-time learning), instead of sampling.
    #[arg(long, conflicts_with_all = ["review", "apply", "dismiss"])]
    pub suspected: bool,
    /// Also list the columns with no proposal.
    #[arg(long)]
    pub all: bool,
}

/// Runs `periscope discover ...`.
pub async fn run(api: &Client, args: &DiscoverArgs) -> anyhow::Result<ExitCode> {
    if args.suspected {
        let answer = api
            .get::<DiscoveredTags>(api.url(&["v1", "admin", "discover", &args.connection], &[]))
            .await?;
        if args.conn.json {
            print_json(&answer.raw["suspected"])?;
        } else {
            print(&suspected_text(&answer.value))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.review {
        let answer = api
            .get::<DiscoveredTags>(api.url(&["v1", "admin", "discover", &args.connection], &[]))
            .await?;
        if args.conn.json {
            print_json(&answer.raw)?;
        } else {
            print(&review_text(&answer.value))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.dismiss.is_empty() {
        let answer = api
            .post::<_, AppliedTags>(
                api.url(
                    &["v1", "admin", "discover", &args.connection, "dismiss"],
                    &[],
                ),
                Some(&DismissRequest {
                    columns: args.dismiss.clone(),
                }),
            )
            .await?;
        if args.conn.json {
            print_json(&answer.raw)?;
        } else {
            print(&format!(
                "Dismissed on `{}`: {}. Version {} of the discovered tags ({} in force); \
                 new sessions no longer mask these columns by discovery, and later profiles leave them alone.\n",
                args.connection,
                args.dismiss.join(", "),
                answer.value.version,
                answer.value.total
            ))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let body = DiscoverRequest {
        connection: args.connection.clone(),
        schema: args.schema.clone(),
        sample: args.sample,
        apply: args.apply,
    };
    let spinner = (!args.conn.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!(
            "sampling `{}` on the gateway (read-only, bounded)...",
            args.connection
        ));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let answer = api
        .post_slow::<_, DiscoverResponse>(
            api.url(&["v1", "admin", "discover"], &[]),
            &body,
            DISCOVER_TIMEOUT,
        )
        .await;
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    let answer = answer?;
    if args.conn.json {
        print_json(&answer.raw)?;
    } else {
        print(&report_text(&answer.value, args.all))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The human report: a summary, the fields table, the proposed tags and the
/// snippet.
pub fn report_text(r: &DiscoverResponse, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Discovery on `{}`{}: {} tables, {} columns, {} rows sampled (up to {} per column) in {:.1}s",
        r.connection,
        r.schema
            .as_ref()
            .map_or(String::new(), |s| format!(" (schema {s})")),
        r.tables,
        r.columns,
        r.rows_sampled,
        r.sample,
        r.elapsed_ms as f64 / 1000.0
    );
    let mut t = table(["FIELD", "PROPOSED", "BASIS", "EVIDENCE", "WHY"]);
    for f in &r.fields {
        if f.proposed.is_none() && !all {
            continue;
        }
        let evidence: Vec<String> = f
            .evidence
            .iter()
            .take(2)
            .map(|e| {
                format!(
                    "{} {}/{} ({}, chance {})",
                    e.check,
                    e.matched,
                    e.sampled,
                    pct(e.share),
                    pct(e.chance)
                )
            })
            .collect();
        t.add_row(vec![
            f.path.clone(),
            f.proposed.clone().unwrap_or_else(|| "-".into()),
            f.basis.clone().unwrap_or_else(|| "-".into()),
            if evidence.is_empty() {
                format!("{} sampled", f.sampled)
            } else {
                evidence.join("; ")
            },
            f.reason.clone(),
        ]);
    }
    out.push('\n');
    out.push_str(&render(
        &t,
        "No field holds sensitive data by the evidence.",
    ));
    out.push('\n');
    if !r.skipped.is_empty() {
        out.push_str("\nNot sampled:\n");
        for s in &r.skipped {
            let _ = writeln!(out, "  {}: {}", s.table, s.reason);
        }
    }
    if !r.proposed.is_empty() {
        out.push_str("\nProposed column tags:\n");
        for p in &r.proposed {
            let _ = write!(out, "  {} = {}", p.column, p.entity);
            if p.from.iter().any(|f| f != &p.column) {
                let _ = write!(out, "  (from {})", p.from.join(", "));
            }
            if let Some(c) = &p.configured {
                let _ = write!(out, "  [the configuration already tags it `{c}`]");
            }
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&r.snippet);
    }
    match &r.applied {
        Some(a) => {
            let _ = writeln!(
                out,
                "\nApplied: version {} of `{}`'s discovered tags ({} added, {} in force); \
                 new sessions mask these columns now. `periscope policy explain USER {}` shows them.",
                a.version,
                r.connection,
                a.added.len(),
                a.total,
                r.connection
            );
        }
        None if !r.proposed.is_empty() => {
            let _ = writeln!(
                out,
                "\nNothing stored. Run again with --apply to mask these columns now, or paste the snippet under the connection in periscope.toml."
            );
        }
        None => {}
    }
    out
}

fn suspected_text(t: &DiscoveredTags) -> String {
    if t.suspected.is_empty() {
        return format!(
            "No suspected column on `{}`: results have not kept showing detected values in an untagged column (since this gateway started).\n",
            t.connection
        );
    }
    let mut tab = table([
        "COLUMN",
        "ENTITY",
        "VALUES MASKED",
        "STATEMENTS",
        "SINCE",
        "STATE",
    ]);
    for s in &t.suspected {
        tab.add_row(vec![
            s.column.clone(),
            s.entity.clone(),
            s.values.to_string(),
            s.statements.to_string(),
            s.since.clone(),
            if s.tagged {
                "tagged (auto_tag): masked whole".to_string()
            } else {
                "suspected: values masked by content only".to_string()
            },
        ]);
    }
    let mut out = render(&tab, "");
    out.push('\n');
    if t.suspected.iter().any(|s| !s.tagged) {
        let _ = writeln!(
            out,
            "\nMask a suspected column whole with `periscope discover {} --apply` (after sampling) or a tag in the configuration; `auto_tag = true` on the connection does it at once.",
            t.connection
        );
    }
    out
}

fn review_text(t: &DiscoveredTags) -> String {
    let mut out = String::new();
    match &t.background {
        None => {}
        Some(b) if b.state == "running" => {
            let _ = writeln!(
                out,
                "Background profile of `{}`: running since {}.\n",
                t.connection, b.started_at
            );
        }
        Some(b) => match (&b.report, &b.error) {
            (Some(report), _) => {
                let _ = writeln!(
                    out,
                    "Background profile of `{}` ({}): {} tables, {} columns, {} rows sampled.",
                    t.connection,
                    b.finished_at.as_deref().unwrap_or("-"),
                    report.tables,
                    report.columns,
                    report.rows_sampled
                );
                let stored = t.versions.first().map(|v| &v.tags);
                if report.proposed.is_empty() {
                    out.push_str("It found no sensitive column.\n\n");
                } else {
                    out.push_str("What it found, and why (counts and shares, never a value):\n");
                    for p in &report.proposed {
                        let why = report
                            .fields
                            .iter()
                            .find(|f| p.from.first() == Some(&f.path))
                            .map_or(String::new(), |f| format!("  ({})", f.reason));
                        let state = match (stored.and_then(|s| s.get(&p.column)), &p.configured) {
                            (_, Some(c)) => format!("configured as `{c}`"),
                            (Some(tag), None) if tag == DISMISSED_TAG => "dismissed".to_string(),
                            (Some(_), None) => "masked".to_string(),
                            (None, None) => "masked by its name".to_string(),
                        };
                        let _ = writeln!(out, "  {} = {} [{state}]{why}", p.column, p.entity);
                    }
                    let _ = writeln!(
                        out,
                        "Override a finding with `periscope discover {} --dismiss COLUMN`, or tag the column in the configuration.\n",
                        t.connection
                    );
                }
            }
            (None, error) => {
                let _ = writeln!(
                    out,
                    "Background profile of `{}` failed: {}\n",
                    t.connection,
                    error.as_deref().unwrap_or("unknown error")
                );
            }
        },
    }
    let Some(current) = t.versions.first() else {
        let _ = writeln!(
            out,
            "No discovered tags stored for `{}`. Run `periscope discover {} --apply`.",
            t.connection, t.connection
        );
        return out;
    };
    let _ = writeln!(
        out,
        "Discovered tags in force on `{}`: version {} by {} at {}\n",
        t.connection, current.version, current.created_by, current.created_at
    );
    let mut tab = table(["COLUMN", "TAG"]);
    for (column, tag) in &current.tags {
        let tag = if tag == DISMISSED_TAG {
            "none (dismissed)".to_string()
        } else {
            tag.clone()
        };
        tab.add_row(vec![column.clone(), tag]);
    }
    out.push_str(&render(&tab, "(none)"));
    out.push('\n');
    if t.versions.len() > 1 {
        out.push_str("\nHistory:\n");
        for v in &t.versions {
            let _ = writeln!(
                out,
                "  v{} {} by {}: {} tags",
                v.version,
                v.created_at,
                v.created_by,
                v.tags.len()
            );
        }
    }
    out
}
