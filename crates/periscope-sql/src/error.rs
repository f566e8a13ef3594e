//! Why an analysis failed.

use thiserror::Error;

/// Why a query string could not be analysed. The proxy refuses such a query
/// (fail closed) and shows this message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// The text is not valid SQL for the dialect.
    #[error("syntax error in statement {statement} at line {line}, column {column}: {message}")]
    Parse {
        /// 1-based index of the statement in the query string.
        statement: usize,
        /// 1-based line in the whole query string.
        line: usize,
        /// 1-based column (in characters) in that line.
        column: usize,
        /// What the parser expected and found.
        message: String,
    },
    /// Nesting exceeds a limit (parser recursion or the analysis' own depth):
    /// refused rather than risking the stack.
    #[error("statement nests deeper than the analysis allows ({limit} levels)")]
    TooDeep {
        /// The limit that was hit.
        limit: usize,
    },
    /// A statement the parser accepts for another dialect but that has no
    /// meaning here.
    #[error("unsupported statement: {0}")]
    Unsupported(String),
}
