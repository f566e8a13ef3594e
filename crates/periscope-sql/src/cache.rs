//! A bounded cache of analyses, so a statement sent thousands of times a second
//! (pgbench, an ORM's hot query) costs a hash lookup instead of a parse.
//!
//! Clients that inline their values (the simple protocol: pgbench `-M simple`,
//! many ORMs, `psql`) send `... WHERE id = 41`, then `... WHERE id = 42`: a
//! different text each time. For those the key is the text with such numbers
//! blanked out (see [`literal_blind_key`]), but only where the number's value
//! cannot change the analysis.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use crate::AnalyzeOptions;
use crate::analyze::analyze;
use crate::catalog::Catalog;
use crate::error::AnalyzeError;
use crate::lexer::{self, Tok, TokKind, fast_hash};
use crate::model::Analysis;

/// Hit and miss counts, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that ran the analysis.
    pub misses: u64,
    /// Entries currently held.
    pub len: usize,
}

struct Entry {
    /// The text the entry was analysed from.
    sql: Box<str>,
    /// The literal-blind key of `sql`, when it has one.
    blind: Option<Box<str>>,
    opts: AnalyzeOptions,
    analysis: Arc<Analysis>,
}

struct Inner {
    lru: LruCache<u64, Entry>,
    catalog_version: Option<u64>,
    hits: u64,
    misses: u64,
}

/// A least-recently-used cache of [`Analysis`] keyed by the raw query text and
/// the options, shared by the sessions of one catalog.
///
/// Entries are checked against the full text and options on every hit, so a
/// hash collision can never return another statement's analysis. When the
/// catalog's [`Catalog::version`] changes, every entry is dropped: lineage
/// depends on the catalog. Errors are not cached (a refused query is rare and
/// cheap to refuse again). The proxy keeps its own map from prepared-statement
/// name to the returned `Arc<Analysis>`.
pub struct AnalysisCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AnalysisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl AnalysisCache {
    /// A cache holding at most `capacity` analyses (at least one).
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        AnalysisCache {
            inner: Mutex::new(Inner {
                lru: LruCache::new(cap),
                catalog_version: None,
                hits: 0,
                misses: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The guarded state stays consistent even if a holder panicked: every
        // mutation is a single LRU call.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached analysis of `sql`, or a fresh one (then cached).
    ///
    /// # Errors
    ///
    /// Those of [`analyze`].
    pub fn get_or_analyze(
        &self,
        sql: &str,
        catalog: &dyn Catalog,
        opts: &AnalyzeOptions,
    ) -> Result<Arc<Analysis>, AnalyzeError> {
        let blind = literal_blind_key(sql, opts);
        let key = cache_key(blind.as_ref().map_or(sql, |b| b.key.as_str()), opts);
        let version = catalog.version();
        {
            let mut inner = self.lock();
            if inner.catalog_version != Some(version) {
                inner.lru.clear();
                inner.catalog_version = Some(version);
            }
            // The entry's analysis, and whether it is of this very text.
            let hit = inner.lru.get(&key).and_then(|e| {
                if e.opts != *opts {
                    return None;
                }
                let same_text = &*e.sql == sql;
                let same_blind_key = matches!(
                    (&blind, &e.blind),
                    (Some(b), Some(k)) if b.key == **k
                );
                (same_text || same_blind_key).then(|| (Arc::clone(&e.analysis), same_text))
            });
            if hit.is_some() {
                inner.hits += 1;
            } else {
                inner.misses += 1;
            }
            drop(inner);
            // Another text's analysis is copied outside the lock.
            match (hit, &blind) {
                (Some((analysis, true)), _) => return Ok(analysis),
                (Some((analysis, false)), Some(b)) => {
                    if let Some(rebased) = rebased(&analysis, sql, &b.toks) {
                        return Ok(rebased);
                    }
                }
                _ => {}
            }
        }
        // Analyse without holding the lock: other sessions keep hitting.
        let analysis = Arc::new(analyze(sql, catalog, opts)?);
        let mut inner = self.lock();
        if inner.catalog_version == Some(version) {
            inner.lru.put(
                key,
                Entry {
                    sql: sql.into(),
                    blind: blind.map(|b| b.key.into_boxed_str()),
                    opts: opts.clone(),
                    analysis: Arc::clone(&analysis),
                },
            );
        }
        Ok(analysis)
    }

    /// Drops every entry (the proxy calls it when it refreshes the catalog
    /// without a version number).
    pub fn clear(&self) {
        self.lock().lru.clear();
    }

    /// Current hit/miss counts and size.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            hits: inner.hits,
            misses: inner.misses,
            len: inner.lru.len(),
        }
    }
}

fn cache_key(sql: &str, opts: &AnalyzeOptions) -> u64 {
    let mut h = fast_hash(sql.as_bytes());
    for s in &opts.search_path {
        h = h.rotate_left(5) ^ fast_hash(s.as_bytes());
    }
    h
}

/// What stands for a blanked-out number in a literal-blind key: a NUL, which no
/// PostgreSQL query text can contain, so no raw text looks like a key.
const BLANK: char = '\0';

/// A query string's literal-blind key, with the tokens it was cut into.
struct BlindKey {
    key: String,
    toks: Vec<Tok>,
}

/// The key under which texts that differ only in the value of some numbers
/// share one analysis, or `None` when `sql` has no such number.
///
/// Only one thing is blanked out: a number compared to a column, as in
/// `WHERE aid = 42` or `AND price >= 10.5`: a number right after one of `=`,
/// `<>`, `!=`, `<`, `>`, `<=`, `>=`, itself right after a (possibly quoted)
/// identifier, in a query string that is a single `SELECT`. The analysis
/// never reads such a number's value: a column compared to a constant is a
/// filter on that column whatever the constant. Every number whose value the
/// analysis does read stays in the key: `ORDER BY 2` (which output is the
/// filter), `WHERE 1 = 1` (a constant-true predicate), `x = -1` (a different
/// operator, `=-`), numbers after `TRUE`, `FALSE` or `NULL` (literals, not
/// columns), and all strings (function arguments such as JSON keys and
/// `regclass` names).
fn literal_blind_key(sql: &str, opts: &AnalyzeOptions) -> Option<BlindKey> {
    // Cheap refusal before lexing (a comment before SELECT only costs the
    // blind key, never correctness).
    let start = sql.trim_start().as_bytes();
    if !start
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"select"))
    {
        return None;
    }
    if !has_compared_number(start) {
        return None;
    }
    let toks = lexer::lex(sql, opts.dialect);
    let significant = |t: &&Tok| !matches!(t.kind, TokKind::Space | TokKind::Comment);
    let first = toks.iter().find(significant)?;
    if !sql[first.start..first.end].eq_ignore_ascii_case("select") {
        return None;
    }
    // One statement: nothing significant after a semicolon.
    if let Some(semi) = toks.iter().position(|t| t.kind == TokKind::Semicolon)
        && toks[semi + 1..].iter().any(|t| significant(&t))
    {
        return None;
    }
    let mut key = String::with_capacity(sql.len());
    let mut copied = 0;
    for (i, tok) in toks.iter().enumerate() {
        if is_blind_number(sql, &toks, i) {
            key.push_str(&sql[copied..tok.start]);
            key.push(BLANK);
            copied = tok.end;
        }
    }
    if copied == 0 {
        return None;
    }
    key.push_str(&sql[copied..]);
    Some(BlindKey { key, toks })
}

/// Whether some `=`, `<` or `>` is followed, after optional spaces, by a digit or
/// a dot: a byte scan that spares the lexer the texts that cannot have a blind key
/// (prepared statements with `$1` among them).
fn has_compared_number(sql: &[u8]) -> bool {
    sql.iter().enumerate().any(|(i, b)| {
        matches!(b, b'=' | b'<' | b'>')
            && sql[i + 1..]
                .iter()
                .find(|c| !c.is_ascii_whitespace())
                .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
    })
}

/// Whether `toks[i]` is a number compared to a column (see [`literal_blind_key`]).
fn is_blind_number(sql: &str, toks: &[Tok], i: usize) -> bool {
    let tok = &toks[i];
    let text = |t: &Tok| &sql[t.start..t.end];
    if tok.kind != TokKind::Literal
        || !text(tok).starts_with(|c: char| c.is_ascii_digit() || c == '.')
    {
        return false;
    }
    // The operator: the run of single-character tokens before the number
    // (whitespace allowed between it and the number; tokens are contiguous, so
    // a run without whitespace is one operator to PostgreSQL, e.g. `=-`).
    let mut j = i;
    while j > 0 && toks[j - 1].kind == TokKind::Space {
        j -= 1;
    }
    let op_end = j;
    while j > 0 && toks[j - 1].kind == TokKind::Other {
        j -= 1;
    }
    if j == op_end {
        return false;
    }
    let op = &sql[toks[j].start..toks[op_end - 1].end];
    if !matches!(op, "=" | "<>" | "!=" | "<" | ">" | "<=" | ">=") {
        return false;
    }
    // The operand before the operator: an identifier.
    let Some(before) = toks[..j].iter().rev().find(|t| t.kind != TokKind::Space) else {
        return false;
    };
    match before.kind {
        TokKind::QuotedIdent => true,
        TokKind::Word => {
            let word = text(before);
            !["true", "false", "null"]
                .iter()
                .any(|w| word.eq_ignore_ascii_case(w))
        }
        _ => false,
    }
}

/// `analysis` (of another text with the same literal-blind key) as the analysis
/// of `sql`: only the statement's byte range differs, since blanked numbers may
/// have other lengths. `None` if the statements do not line up.
fn rebased(analysis: &Analysis, sql: &str, toks: &[Tok]) -> Option<Arc<Analysis>> {
    let pieces = lexer::split_statements(sql, toks);
    if pieces.len() != analysis.statements.len() {
        return None;
    }
    let mut rebased = analysis.clone();
    for (st, piece) in rebased.statements.iter_mut().zip(&pieces) {
        st.range = piece.start..piece.end;
    }
    Some(Arc::new(rebased))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StaticCatalog;

    #[test]
    fn repeated_text_is_served_from_the_cache_until_the_catalog_changes() {
        let mut cat = StaticCatalog::new();
        cat.add_table("public", "t", &["a"]);
        let cache = AnalysisCache::new(8);
        let opts = AnalyzeOptions::default();
        let a1 = cache
            .get_or_analyze("SELECT a FROM t", &cat, &opts)
            .expect("analyses");
        let a2 = cache
            .get_or_analyze("SELECT a FROM t", &cat, &opts)
            .expect("analyses");
        assert!(Arc::ptr_eq(&a1, &a2));
        assert_eq!(cache.stats().hits, 1);

        cat.add_table("public", "t", &["a", "b"]);
        let a3 = cache
            .get_or_analyze("SELECT a FROM t", &cat, &opts)
            .expect("analyses");
        assert!(!Arc::ptr_eq(&a1, &a3), "a catalog change must invalidate");
    }

    #[test]
    fn other_options_are_other_entries_and_capacity_is_bounded() {
        let cat = StaticCatalog::new();
        let cache = AnalysisCache::new(2);
        let opts = AnalyzeOptions::default();
        let other = AnalyzeOptions {
            search_path: vec!["app".to_owned()],
            ..AnalyzeOptions::default()
        };
        let a = cache
            .get_or_analyze("SELECT 1", &cat, &opts)
            .expect("analyses");
        let b = cache
            .get_or_analyze("SELECT 1", &cat, &other)
            .expect("analyses");
        assert!(!Arc::ptr_eq(&a, &b));
        for i in 0..10 {
            cache
                .get_or_analyze(&format!("SELECT {i}"), &cat, &opts)
                .expect("analyses");
        }
        assert_eq!(cache.stats().len, 2);
    }

    fn blinded(sql: &str) -> Option<String> {
        literal_blind_key(sql, &AnalyzeOptions::default()).map(|b| b.key.replace(BLANK, "#"))
    }

    #[test]
    fn only_numbers_compared_to_a_column_are_blanked() {
        assert_eq!(
            blinded("SELECT abalance FROM pgbench_accounts WHERE aid = 86234;").as_deref(),
            Some("SELECT abalance FROM pgbench_accounts WHERE aid = #;")
        );
        assert_eq!(
            blinded("select a from t where t.b>=1.5 and \"C\"<>.5 and d!=0x1F").as_deref(),
            Some("select a from t where t.b>=# and \"C\"<># and d!=#")
        );
        for kept in [
            "SELECT a FROM t ORDER BY 2",
            "SELECT a FROM t WHERE 1 = 1",
            "SELECT a FROM t WHERE a = -1",
            "SELECT a FROM t WHERE a =-1",
            "SELECT a FROM t WHERE TRUE = 1 OR null = 2",
            "SELECT a FROM t WHERE f(a) = 1",
            "SELECT a FROM t WHERE a = '1'",
            "SELECT a FROM t WHERE a = $1",
            "SELECT a FROM t WHERE a IN (1, 2) LIMIT 3",
            "SELECT a FROM t -- where a = 1",
            "SELECT 'a = 1'",
            "DELETE FROM t WHERE a = 1",
            "SELECT a FROM t WHERE a = 1; SELECT 2",
        ] {
            assert_eq!(blinded(kept), None, "{kept}");
        }
    }

    /// Every pair: the first text warms the cache, the second is answered from
    /// it or not; either way the answer must equal a fresh analysis.
    #[test]
    fn an_answer_for_another_number_is_the_analysis_of_that_text() {
        let mut cat = StaticCatalog::new();
        cat.add_table("public", "t", &["a", "b", "email"]);
        let opts = AnalyzeOptions::default();
        let cases = [
            (
                "SELECT a FROM t WHERE b = 7",
                "SELECT a FROM t WHERE b = 123456",
                true,
            ),
            (
                "  SELECT a FROM t WHERE b = 123456 ;",
                "  SELECT a FROM t WHERE b = 7 ;",
                true,
            ),
            (
                "SELECT email FROM t WHERE a < 1 AND b > 2",
                "SELECT email FROM t WHERE a < 10 AND b > 20",
                true,
            ),
            (
                "SELECT a, email FROM t ORDER BY 1",
                "SELECT a, email FROM t ORDER BY 2",
                false,
            ),
            (
                "SELECT a FROM t WHERE 1 = 2",
                "SELECT a FROM t WHERE 1 = 1",
                false,
            ),
            (
                "SELECT a FROM t WHERE a = 1 ORDER BY 1",
                "SELECT a FROM t WHERE a = 2 ORDER BY 2",
                false,
            ),
        ];
        for (warm, asked, shared) in cases {
            let cache = AnalysisCache::new(8);
            cache.get_or_analyze(warm, &cat, &opts).expect("analyses");
            let answer = cache.get_or_analyze(asked, &cat, &opts).expect("analyses");
            let fresh = analyze(asked, &cat, &opts).expect("analyses");
            assert_eq!(*answer, fresh, "{warm} then {asked}");
            assert_eq!(
                &asked[answer.statements[0].range.clone()],
                asked[fresh.statements[0].range.clone()].to_string()
            );
            assert_eq!(cache.stats().hits, u64::from(shared), "{warm} then {asked}");
        }
    }
}
