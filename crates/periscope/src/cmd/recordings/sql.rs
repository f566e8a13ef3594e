//! A PostgreSQL session's recording played back as a transcript: each
//! statement as audited, then its masked result sample as a table (or its
//! refusal, or its error), in the order and with the timing it ran.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

use crate::client::CliError;

/// What the header says, for the banner and the prompts.
#[derive(Debug)]
pub struct Transcript {
    connection: String,
    banner: String,
}

/// One line of the recording after its header.
#[derive(Debug)]
pub enum Line {
    /// A statement with its outcome and sample.
    Statement(Box<Statement>),
    /// The gateway's own note (the recorder fell behind, `max_size`).
    Note {
        /// Seconds from the session's start.
        at: f64,
        /// The note.
        text: String,
    },
    /// A line of a kind this client does not know (a newer gateway).
    Other,
}

impl Line {
    /// Seconds from the session's start.
    pub fn at(&self) -> f64 {
        match self {
            Line::Statement(s) => s.t,
            Line::Note { at, .. } => *at,
            Line::Other => 0.0,
        }
    }
}

/// A statement line (docs/recordings.md).
#[derive(Debug, Deserialize)]
pub struct Statement {
    #[serde(default)]
    t: f64,
    #[serde(default)]
    text: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    sqlstate: Option<String>,
    #[serde(default)]
    shield: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    rows: u64,
    #[serde(default)]
    masked: Value,
    #[serde(default)]
    columns: Vec<Column>,
    #[serde(default)]
    sample: Vec<Vec<Option<String>>>,
    #[serde(default)]
    sample_truncated: bool,
}

#[derive(Debug, Deserialize)]
struct Column {
    name: String,
}

fn bad(detail: String) -> CliError {
    CliError::refused(format!("the SQL recording cannot be read: {detail}"))
        .with_hint("`periscope recordings play ID --raw` shows the file as stored")
}

/// Reads one line after the header.
pub fn parse_line(line: &[u8]) -> Result<Line, CliError> {
    let value: Value = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
    match value["type"].as_str() {
        Some("statement") => serde_json::from_value(value)
            .map(|s| Line::Statement(Box::new(s)))
            .map_err(|e| bad(e.to_string())),
        Some("note") => Ok(Line::Note {
            at: value["t"].as_f64().unwrap_or(0.0),
            text: value["text"].as_str().unwrap_or_default().to_string(),
        }),
        _ => Ok(Line::Other),
    }
}

impl Transcript {
    /// The transcript of the recording whose header is `header`.
    pub fn new(header: &Value) -> Transcript {
        let s = |k: &str| header[k].as_str().unwrap_or("?").to_string();
        let app = header["application_name"]
            .as_str()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let banner = format!(
            "-- PostgreSQL session {} of {} on {} from {}{app}, started {}\n\
             -- as the engineer saw it (masked); results sampled: first {} rows, {} bytes per statement\n",
            s("session"),
            s("identity"),
            s("connection"),
            s("client_addr"),
            s("started_at"),
            header["sample_rows"],
            header["sample_bytes"],
        );
        Transcript {
            connection: s("connection"),
            banner,
        }
    }

    /// The lines printed before the first statement.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// One statement as a psql user would have seen it, sample only.
    pub fn render(&self, st: &Statement) -> String {
        let mut out = String::new();
        let text = st.text.trim_end();
        let end = if text.ends_with(';') { "" } else { ";" };
        let _ = writeln!(out, "\n{}=> {text}{end}", self.connection);
        match st.outcome.as_str() {
            "refused" => {
                let shield = st
                    .shield
                    .as_deref()
                    .map(|s| format!(" by shield `{s}`"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "REFUSED{shield}: {}",
                    st.message.as_deref().unwrap_or("")
                );
            }
            "error" => {
                let _ = writeln!(
                    out,
                    "ERROR: SQLSTATE {}",
                    st.sqlstate.as_deref().unwrap_or("?")
                );
            }
            _ => {
                if !st.columns.is_empty() {
                    out.push_str(&table(&st.columns, &st.sample));
                }
                let mut note = format!("({} row{}", st.rows, if st.rows == 1 { "" } else { "s" });
                if st.sample_truncated || (st.sample.len() as u64) < st.rows {
                    let _ = write!(note, ", {} shown", st.sample.len());
                }
                if let Some(masked) = st.masked.as_object().filter(|m| !m.is_empty()) {
                    let counts: Vec<String> =
                        masked.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    let _ = write!(note, "; masked: {}", counts.join(", "));
                }
                note.push(')');
                let _ = writeln!(out, "{note}");
            }
        }
        out
    }
}

/// An aligned table, psql style (`NULL` for SQL NULL; one line per row,
/// newlines shown as `\n`).
fn table(columns: &[Column], rows: &[Vec<Option<String>>]) -> String {
    let cell = |v: &Option<String>| match v {
        Some(t) => t.replace('\n', "\\n"),
        None => "NULL".to_string(),
    };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.name.chars().count()).collect();
    for row in &rows {
        for (i, v) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(v.chars().count());
            }
        }
    }
    let pad = |text: &str, width: usize| {
        let n = text.chars().count();
        format!(" {text}{} ", " ".repeat(width.saturating_sub(n)))
    };
    let mut out = String::new();
    let head: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|(c, w)| pad(&c.name, *w))
        .collect();
    let _ = writeln!(out, "{}", head.join("|").trim_end());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    let _ = writeln!(out, "{}", rule.join("+"));
    for row in &rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(v, w)| pad(v, *w)).collect();
        let _ = writeln!(out, "{}", line.join("|").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_statement_renders_as_a_psql_transcript() {
        let t = Transcript::new(&json!({"connection": "shop", "session": "ses_1",
            "identity": "alice", "sample_rows": 10, "sample_bytes": 8192}));
        assert!(t.banner().contains("ses_1 of alice on shop"));
        let line = json!({"type": "statement", "t": 0.5, "text": "SELECT id, email FROM c LIMIT ?",
            "outcome": "ok", "rows": 3, "masked": {"email": 3},
            "columns": [{"name": "id", "type": "int4"}, {"name": "email", "type": "text", "masked": "email"}],
            "sample": [["1", "[email]"], ["2", null]], "sample_truncated": true});
        let Line::Statement(st) = parse_line(line.to_string().as_bytes()).unwrap() else {
            panic!()
        };
        let shown = t.render(&st);
        assert!(
            shown.contains("shop=> SELECT id, email FROM c LIMIT ?;"),
            "{shown}"
        );
        assert!(shown.contains(" id | email"), "{shown}");
        assert!(shown.contains(" 1  | [email]"), "{shown}");
        assert!(shown.contains(" 2  | NULL"), "{shown}");
        assert!(
            shown.contains("(3 rows, 2 shown; masked: email 3)"),
            "{shown}"
        );
        let refused = json!({"type": "statement", "t": 1.0, "text": "UPDATE c SET email = ?",
            "outcome": "refused", "shield": "write", "message": "`UPDATE` blocked"});
        let Line::Statement(st) = parse_line(refused.to_string().as_bytes()).unwrap() else {
            panic!()
        };
        assert!(
            t.render(&st)
                .contains("REFUSED by shield `write`: `UPDATE` blocked")
        );
        assert!(matches!(
            parse_line(br#"{"type":"note","t":2,"text":"x"}"#).unwrap(),
            Line::Note { .. }
        ));
    }
}
