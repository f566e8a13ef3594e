//! A small, forgiving SQL lexer that never fails.
//!
//! The full parser (sqlparser) rejects text it does not understand, yet the audit
//! log must still record refused statements without the literals they carry, and
//! a query string must be cut into statements before each is parsed on its own.
//! This lexer only knows what is needed for that: where literals, quoted
//! identifiers, comments and statement-ending semicolons begin and end. Anything
//! it cannot classify is an "other" character, so it accepts every input.

use crate::SqlDialect;

/// What a lexed span of the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// Whitespace.
    Space,
    /// `-- ...` or `/* ... */` (nested, as PostgreSQL allows).
    Comment,
    /// Any literal: string (all prefixes), dollar-quoted string, number, bit string.
    Literal,
    /// A positional parameter such as `$1`.
    Param,
    /// An unquoted word (identifier or keyword).
    Word,
    /// A quoted identifier.
    QuotedIdent,
    /// `;`
    Semicolon,
    /// Any other single character (operators, punctuation).
    Other,
}

/// One lexed span: `kind` over `start..end` (byte offsets into the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tok {
    pub(crate) kind: TokKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// The lexical rules that differ between dialects.
#[derive(Debug, Clone, Copy)]
struct Rules {
    /// `$tag$ ... $tag$` strings and `$1` parameters (PostgreSQL).
    dollar_quotes: bool,
    /// `E'...'` strings take backslash escapes (PostgreSQL); plain strings do not.
    escape_prefix: bool,
}

impl Rules {
    fn for_dialect(dialect: SqlDialect) -> Self {
        match dialect {
            SqlDialect::PostgreSql => Rules {
                dollar_quotes: true,
                escape_prefix: true,
            },
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Lexes `sql` completely. Unterminated strings, identifiers and comments run to
/// the end of the input (so an unterminated literal is still a literal).
pub(crate) fn lex(sql: &str, dialect: SqlDialect) -> Vec<Tok> {
    let rules = Rules::for_dialect(dialect);
    let b = sql.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' => {
                while i < b.len()
                    && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
                {
                    i += 1;
                }
                TokKind::Space
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                TokKind::Comment
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(b, i);
                TokKind::Comment
            }
            b'\'' => {
                i = skip_quoted(b, i + 1, b'\'', false);
                TokKind::Literal
            }
            b'"' => {
                i = skip_quoted(b, i + 1, b'"', false);
                TokKind::QuotedIdent
            }
            b';' => {
                i += 1;
                TokKind::Semicolon
            }
            b'$' if rules.dollar_quotes => lex_dollar(b, &mut i),
            b'0'..=b'9' => {
                i = skip_number(b, i);
                TokKind::Literal
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = skip_number(b, i);
                TokKind::Literal
            }
            _ => {
                // Decode the character at `i`; `i` is always on a char boundary
                // because every branch above advances over whole ASCII bytes or
                // whole quoted runs that end on ASCII delimiters.
                let ch = sql[i..].chars().next().unwrap_or('\u{fffd}');
                if is_ident_start(ch) {
                    lex_word(sql, b, &mut i, rules)
                } else {
                    i += ch.len_utf8();
                    TokKind::Other
                }
            }
        };
        toks.push(Tok {
            kind,
            start,
            end: i.min(b.len()),
        });
    }
    toks
}

/// A word, or a prefixed literal (`E'..'`, `B'..'`, `X'..'`, `N'..'`, `U&'..'`)
/// or prefixed identifier (`U&".."`).
fn lex_word(sql: &str, b: &[u8], i: &mut usize, rules: Rules) -> TokKind {
    let start = *i;
    // Prefixed strings: one letter immediately followed by a quote.
    let first = b[start].to_ascii_lowercase();
    if b.get(start + 1) == Some(&b'\'') {
        match first {
            b'e' if rules.escape_prefix => {
                *i = skip_quoted(b, start + 2, b'\'', true);
                return TokKind::Literal;
            }
            b'b' | b'x' | b'n' => {
                *i = skip_quoted(b, start + 2, b'\'', false);
                return TokKind::Literal;
            }
            _ => {}
        }
    }
    if first == b'u' && b.get(start + 1) == Some(&b'&') {
        match b.get(start + 2) {
            Some(b'\'') => {
                *i = skip_quoted(b, start + 3, b'\'', false);
                return TokKind::Literal;
            }
            Some(b'"') => {
                *i = skip_quoted(b, start + 3, b'"', false);
                return TokKind::QuotedIdent;
            }
            _ => {}
        }
    }
    let rest = &sql[start..];
    let len = rest
        .char_indices()
        .find(|&(_, c)| !is_ident_continue(c))
        .map_or(rest.len(), |(n, _)| n);
    *i = start + len.max(1);
    TokKind::Word
}

/// `$1` (parameter), `$tag$...$tag$` / `$$...$$` (literal), or a lone `$`.
fn lex_dollar(b: &[u8], i: &mut usize) -> TokKind {
    let start = *i;
    if b.get(start + 1).is_some_and(u8::is_ascii_digit) {
        *i = start + 1;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        return TokKind::Param;
    }
    // A tag is an identifier without `$`; it cannot start with a digit.
    let mut j = start + 1;
    if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_' || b[j] >= 0x80) {
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
            j += 1;
        }
    }
    if b.get(j) != Some(&b'$') {
        *i = start + 1;
        return TokKind::Other;
    }
    let delim = &b[start..=j];
    let body = j + 1;
    *i = match find_subslice(&b[body..], delim) {
        Some(pos) => body + pos + delim.len(),
        None => b.len(),
    };
    TokKind::Literal
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Skips to just past the closing `quote`, treating a doubled quote as an escaped
/// one and, when `backslash` is set, `\x` as an escaped character.
fn skip_quoted(b: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    while i < b.len() {
        let c = b[i];
        if backslash && c == b'\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// Skips a (possibly nested) block comment starting at `i` (`/*`).
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Numbers: `42`, `1_000`, `3.14`, `.5`, `1e-3`, `0x1F`, `0o17`, `0b101`.
fn skip_number(b: &[u8], mut i: usize) -> usize {
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B')) {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    // A fraction, but not the `..` of a range.
    if i < b.len() && b[i] == b'.' && b.get(i + 1) != Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

/// Renders tokens with every literal replaced by `?`, comments dropped and
/// whitespace collapsed to single spaces.
pub(crate) fn render_normalized(sql: &str, toks: &[Tok]) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut pending_space = false;
    for t in toks {
        match t.kind {
            TokKind::Space | TokKind::Comment => pending_space = true,
            kind => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                if kind == TokKind::Literal {
                    out.push('?');
                } else {
                    out.push_str(&sql[t.start..t.end]);
                }
            }
        }
    }
    out
}

/// A statement's place in the input: byte range and the 1-based line and column
/// (in characters) of its first significant character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) toks: Vec<Tok>,
}

/// Cuts the input into statements at top-level semicolons, dropping empty
/// statements. Each piece starts at its first token that is not whitespace or a
/// comment and ends before its semicolon.
pub(crate) fn split_statements(sql: &str, toks: &[Tok]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut current: Vec<Tok> = Vec::new();
    let flush = |current: &mut Vec<Tok>, pieces: &mut Vec<Piece>| {
        let first = current
            .iter()
            .position(|t| !matches!(t.kind, TokKind::Space | TokKind::Comment));
        let last = current
            .iter()
            .rposition(|t| !matches!(t.kind, TokKind::Space | TokKind::Comment));
        if let (Some(f), Some(l)) = (first, last) {
            let toks: Vec<Tok> = current[f..=l].to_vec();
            let start = toks[0].start;
            let end = toks[toks.len() - 1].end;
            let (line, column) = line_col(sql, start);
            pieces.push(Piece {
                start,
                end,
                line,
                column,
                toks,
            });
        }
        current.clear();
    };
    for t in toks {
        if t.kind == TokKind::Semicolon {
            flush(&mut current, &mut pieces);
        } else {
            current.push(*t);
        }
    }
    flush(&mut current, &mut pieces);
    pieces
}

/// 1-based line and character column of byte offset `pos`.
pub(crate) fn line_col(sql: &str, pos: usize) -> (usize, usize) {
    let before = &sql[..pos];
    let line = before.bytes().filter(|&c| c == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The leading words of a piece, lowercased (at most `n`), for recognising
/// statements the parser does not know.
pub(crate) fn leading_words(sql: &str, toks: &[Tok], n: usize) -> Vec<String> {
    toks.iter()
        .filter(|t| !matches!(t.kind, TokKind::Space | TokKind::Comment))
        .take(n)
        .map(|t| {
            if t.kind == TokKind::Word {
                sql[t.start..t.end].to_ascii_lowercase()
            } else {
                String::new()
            }
        })
        .collect()
}

/// The longest run of binary/postfix operators at one nesting level (between
/// commas and brackets): `a || b || c` is 2, `f(a + b, c + d)` is 1.
///
/// Such chains parse without recursion but build trees as deep as they are
/// long, and dropping or walking a tree tens of thousands deep overflows a
/// thread's stack. The parser's recursion limit does not see them, so the
/// analysis refuses chains longer than a bound before parsing.
pub(crate) fn longest_operator_chain(sql: &str, toks: &[Tok]) -> usize {
    const WORD_OPERATORS: &[&str] = &[
        "and",
        "or",
        "not",
        "is",
        "like",
        "ilike",
        "similar",
        "between",
        "in",
        "collate",
        "at",
        "union",
        "intersect",
        "except",
    ];
    let mut counts: Vec<usize> = vec![0];
    let mut longest = 0;
    let mut previous_was_operator = false;
    for t in toks {
        let is_operator = match t.kind {
            TokKind::Space | TokKind::Comment => continue,
            TokKind::Other => {
                let text = &sql[t.start..t.end];
                match text {
                    "(" | "[" => {
                        counts.push(0);
                        false
                    }
                    ")" | "]" => {
                        if counts.len() > 1 {
                            counts.pop();
                        }
                        false
                    }
                    "," => {
                        if let Some(top) = counts.last_mut() {
                            *top = 0;
                        }
                        false
                    }
                    _ => text.chars().all(|c| "+-*/%^<>=~!@#&|?:".contains(c)),
                }
            }
            TokKind::Word => {
                let w = &sql[t.start..t.end];
                WORD_OPERATORS.iter().any(|op| w.eq_ignore_ascii_case(op))
            }
            _ => false,
        };
        if is_operator
            && !previous_was_operator
            && let Some(top) = counts.last_mut()
        {
            *top += 1;
            longest = longest.max(*top);
        }
        previous_was_operator = is_operator;
    }
    longest
}

/// FNV-1a, 64 bits: a stable, dependency-free fingerprint. Stability across
/// processes and versions matters because fingerprints land in the audit log.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A fast non-cryptographic hash, eight bytes at a time, for cache keys: the
/// cache compares the full text on a hit, so collisions cost a miss, never a
/// wrong answer.
pub(crate) fn fast_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        render_normalized(s, &lex(s, SqlDialect::PostgreSql))
    }

    #[test]
    fn every_literal_kind_becomes_a_placeholder() {
        let cases = [
            ("SELECT 'a''b'", "SELECT ?"),
            ("SELECT E'a\\'b', e'x'", "SELECT ?, ?"),
            ("SELECT $$a;b$$, $t$x$$y$t$", "SELECT ?, ?"),
            (
                "SELECT B'0101', x'ff', N'n', U&'d\\0061'",
                "SELECT ?, ?, ?, ?",
            ),
            (
                "SELECT 1, 1.5, .5, 1e-3, 0x1F, 1_000",
                "SELECT ?, ?, ?, ?, ?, ?",
            ),
            ("SELECT $1, t1.c2", "SELECT $1, t1.c2"),
            (
                "SELECT \"it's\" -- 'secret'\n FROM t /* 'x' /* nested */ */",
                "SELECT \"it's\" FROM t",
            ),
            ("SELECT 'unterminated", "SELECT ?"),
            ("SELECT $tag$ never closed", "SELECT ?"),
            ("SELECT a::text, arr[1:2]", "SELECT a::text, arr[?:?]"),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), want, "{input}");
        }
    }

    #[test]
    fn semicolons_inside_literals_and_comments_do_not_split() {
        let sql = "SELECT ';'; /* ; */ SELECT $$;$$ ;; -- ;\n SELECT 3";
        let toks = lex(sql, SqlDialect::PostgreSql);
        let pieces = split_statements(sql, &toks);
        let texts: Vec<&str> = pieces.iter().map(|p| &sql[p.start..p.end]).collect();
        assert_eq!(texts, ["SELECT ';'", "SELECT $$;$$", "SELECT 3"]);
        assert_eq!((pieces[2].line, pieces[2].column), (2, 2));
    }

    #[test]
    fn operator_chains_are_measured_per_nesting_level() {
        let chain = |s: &str| longest_operator_chain(s, &lex(s, SqlDialect::PostgreSql));
        assert_eq!(chain("SELECT a || b || c"), 2);
        assert_eq!(chain("SELECT f(a + b, c + d), e"), 1);
        assert_eq!(chain("SELECT a::text::int"), 2);
        assert_eq!(chain("SELECT 1 WHERE a = 1 AND b = 2"), 3);
        assert_eq!(chain("INSERT INTO t VALUES (-1), (-2), (-3)"), 1);
        assert_eq!(chain("SELECT '+++' || $$--$$"), 1);
        assert_eq!(chain("SELECT 1 UNION SELECT 2 EXCEPT SELECT 3"), 2);
    }

    #[test]
    fn non_ascii_text_is_handled_on_char_boundaries() {
        assert_eq!(norm("SELECT 'é', naïve FROM tß"), "SELECT ?, naïve FROM tß");
        assert_eq!(norm("SELECT «x»"), "SELECT «x»");
    }
}
