//! The data format of `COPY ... TO`: what a masking stage needs to read the
//! rows the server streams back.
//!
//! The format is an output of the analysis, not something the proxy works out
//! again: this crate is the only one that parses SQL. Text and CSV rows can be
//! split into fields and masked; binary rows carry no type information, and a
//! few options (a foreign `ENCODING`, a multi-byte delimiter) would make the
//! rows unreadable by a byte-level splitter, so those are reported as such and
//! the proxy refuses the statement before it runs.

use sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};

/// How the rows of a `COPY ... TO` are encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CopyFormat {
    /// PostgreSQL's text format or CSV: rows a masking stage can split.
    Rows(CopyRowFormat),
    /// `FORMAT binary`: values without types, which cannot be inspected.
    Binary,
    /// An option a byte-level reader cannot follow; the reason names it.
    Unreadable(String),
}

impl CopyFormat {
    /// The readable row format, or why there is none (for the refusal).
    pub fn rows(&self) -> Result<&CopyRowFormat, String> {
        match self {
            CopyFormat::Rows(f) => Ok(f),
            CopyFormat::Binary => Err(
                "binary COPY output cannot be inspected by the masking stage; use FORMAT text or FORMAT csv"
                    .to_owned(),
            ),
            CopyFormat::Unreadable(reason) => Err(reason.clone()),
        }
    }
}

/// Text or CSV, and the characters that delimit them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CopyRowFormat {
    /// CSV (else PostgreSQL's text format).
    pub csv: bool,
    /// Field delimiter.
    pub delimiter: u8,
    /// The text of a NULL.
    pub null: String,
    /// CSV quote character.
    pub quote: u8,
    /// CSV escape character.
    pub escape: u8,
    /// Whether the first row is a header (column names, not values).
    pub header: bool,
}

impl CopyRowFormat {
    /// PostgreSQL's text format with its defaults: tab-delimited, `\N` for
    /// NULL, no header.
    pub fn text() -> CopyRowFormat {
        CopyRowFormat {
            csv: false,
            delimiter: b'\t',
            null: "\\N".into(),
            quote: b'"',
            escape: b'"',
            header: false,
        }
    }

    /// CSV with PostgreSQL's defaults: comma-delimited, an empty unquoted
    /// field for NULL, `"` to quote and to escape, no header.
    pub fn csv() -> CopyRowFormat {
        CopyRowFormat {
            csv: true,
            delimiter: b',',
            null: String::new(),
            ..CopyRowFormat::text()
        }
    }
}

fn single_byte(c: char, what: &str) -> Result<u8, String> {
    u8::try_from(c)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| unsupported(&format!("{what} '{c}' (not one ASCII character)")))
}

fn unsupported(option: &str) -> String {
    format!("COPY option {option} is not supported through the Periscope gateway")
}

/// The format asked for by a `COPY` statement's options (modern and legacy
/// syntax).
pub(crate) fn format_of(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> CopyFormat {
    match read_format(options, legacy) {
        Ok(Some(f)) => CopyFormat::Rows(f),
        Ok(None) => CopyFormat::Binary,
        Err(reason) => CopyFormat::Unreadable(reason),
    }
}

/// `Ok(None)` is binary.
fn read_format(
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<Option<CopyRowFormat>, String> {
    let mut f = CopyRowFormat::text();
    let (mut delimiter, mut null, mut escape) = (None, None, None);
    for o in options {
        match o {
            CopyOption::Format(name) => match name.value.to_ascii_lowercase().as_str() {
                "text" => f.csv = false,
                "csv" => f.csv = true,
                "binary" => return Ok(None),
                other => return Err(unsupported(&format!("FORMAT {other}"))),
            },
            CopyOption::Delimiter(c) => delimiter = Some(single_byte(*c, "DELIMITER")?),
            CopyOption::Null(s) => null = Some(s.clone()),
            CopyOption::Header(h) => f.header = *h,
            CopyOption::Quote(c) => f.quote = single_byte(*c, "QUOTE")?,
            CopyOption::Escape(c) => escape = Some(single_byte(*c, "ESCAPE")?),
            // Quoting choices and FREEZE do not change what a field holds.
            CopyOption::ForceQuote(_)
            | CopyOption::ForceNotNull(_)
            | CopyOption::ForceNull(_)
            | CopyOption::Freeze(_) => {}
            CopyOption::Encoding(e) => return Err(unsupported(&format!("ENCODING '{e}'"))),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => return Ok(None),
            CopyLegacyOption::Delimiter(c) => delimiter = Some(single_byte(*c, "DELIMITER")?),
            CopyLegacyOption::Null(s) => null = Some(s.clone()),
            CopyLegacyOption::Csv(csv) => {
                f.csv = true;
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => f.header = true,
                        CopyLegacyCsvOption::Quote(q) => f.quote = single_byte(*q, "QUOTE")?,
                        CopyLegacyCsvOption::Escape(e) => escape = Some(single_byte(*e, "ESCAPE")?),
                        CopyLegacyCsvOption::ForceQuote(_)
                        | CopyLegacyCsvOption::ForceNotNull(_) => {}
                    }
                }
            }
            other => return Err(unsupported(&other.to_string())),
        }
    }
    if f.csv {
        f.delimiter = delimiter.unwrap_or(b',');
        f.null = null.unwrap_or_default();
        f.escape = escape.unwrap_or(f.quote);
    } else {
        f.delimiter = delimiter.unwrap_or(b'\t');
        f.null = null.unwrap_or_else(|| "\\N".into());
    }
    Ok(Some(f))
}
