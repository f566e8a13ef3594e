//! Configuration errors that point at the file, line and column of the mistake.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file, located like a compiler error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given to [`crate::Config::parse`], for messages only.
    pub file: String,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column (in characters) where the offending text starts.
    pub column: usize,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
    /// The offending source line, for the excerpt under the message.
    pub source_line: String,
    /// How many characters of `source_line` to underline from `column`.
    pub width: usize,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        write!(
            f,
            "{:gutter$} | {:pad$}{}",
            "",
            "",
            "^".repeat(self.width.max(1)),
            pad = self.column - 1
        )
    }
}

/// A configuration that was refused; holds every problem found, in file order.
///
/// Syntax and type errors stop parsing at the first one; the semantic checks
/// (unknown names, duplicates, bounds) all run, so one edit-and-retry cycle can
/// fix several mistakes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, sorted by position; never empty.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// The first problem, the one a one-line log message should show.
    pub fn first(&self) -> &Diagnostic {
        self.diagnostics
            .first()
            .expect("a ConfigError is only built with at least one diagnostic")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            d.fmt(f)?;
        }
        Ok(())
    }
}

/// Collects diagnostics against one source text, turning byte spans into lines
/// and columns.
pub(crate) struct Reporter<'a> {
    file: &'a str,
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Reporter {
            file,
            text,
            diagnostics: Vec::new(),
        }
    }

    /// Records a problem at `span` (byte offsets into the source).
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let diagnostic = self.locate(span, message.into());
        self.diagnostics.push(diagnostic);
    }

    /// The 1-based line of a byte offset, to say "first defined on line N".
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        self.text[..offset].matches('\n').count() + 1
    }

    fn locate(&self, span: Range<usize>, message: String) -> Diagnostic {
        let start = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = self.text[..start].matches('\n').count() + 1;
        let source_line = self.text[line_start..line_end].trim_end_matches('\r');
        let column = self.text[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(self.text, span.end.clamp(start, line_end));
        let width = self.text[start..end].chars().count();
        Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message,
            source_line: source_line.to_string(),
            width,
        }
    }

    /// `Ok(())` when nothing was reported, else every diagnostic in file order.
    pub(crate) fn finish(mut self) -> Result<(), ConfigError> {
        if self.diagnostics.is_empty() {
            return Ok(());
        }
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        Err(ConfigError {
            diagnostics: self.diagnostics,
        })
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_become_lines_and_columns() {
        let text = "a = 1\n[x]\nkey = \"vålue\"\n";
        let mut r = Reporter::new("p.toml", text);
        let start = text.find("\"vålue\"").unwrap();
        r.error(start..start + "\"vålue\"".len(), "bad value");
        let err = r.finish().unwrap_err();
        let d = err.first();
        assert_eq!((d.line, d.column, d.width), (3, 7, 7));
        assert_eq!(
            err.to_string(),
            "p.toml:3:7: bad value\n  |\n3 | key = \"vålue\"\n  |       ^^^^^^^"
        );
    }

    #[test]
    fn spans_past_the_end_are_clamped() {
        let mut r = Reporter::new("p.toml", "x = [");
        r.error(5..9, "unexpected end");
        let err = r.finish().unwrap_err();
        assert_eq!((err.first().line, err.first().column), (1, 6));
    }
}
