//! A bounded cache of analyses, so a statement sent thousands of times a second
//! (pgbench, an ORM's hot query) costs a hash lookup instead of a parse.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use crate::AnalyzeOptions;
use crate::analyze::analyze;
use crate::catalog::Catalog;
use crate::error::AnalyzeError;
use crate::lexer::fast_hash;
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
    sql: Box<str>,
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
        let key = cache_key(sql, opts);
        let version = catalog.version();
        {
            let mut inner = self.lock();
            if inner.catalog_version != Some(version) {
                inner.lru.clear();
                inner.catalog_version = Some(version);
            }
            let hit = inner
                .lru
                .get(&key)
                .filter(|e| &*e.sql == sql && e.opts == *opts)
                .map(|e| Arc::clone(&e.analysis));
            if let Some(a) = hit {
                inner.hits += 1;
                return Ok(a);
            }
            inner.misses += 1;
        }
        // Analyse without holding the lock: other sessions keep hitting.
        let analysis = Arc::new(analyze(sql, catalog, opts)?);
        let mut inner = self.lock();
        if inner.catalog_version == Some(version) {
            inner.lru.put(
                key,
                Entry {
                    sql: sql.into(),
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
}
