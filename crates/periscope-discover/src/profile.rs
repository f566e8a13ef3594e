//! Profiling a column: values in, one at a time; verdicts out.
//!
//! A [`ColumnProfile`] keeps counters only ([`crate::tally`]), so the sampler
//! can stream rows into it and drop each value at once: memory per column is
//! bounded by the JSON path limits, not by the sample.

use periscope_redact::{ScanConfig, Scanner};
use serde::Serialize;

use crate::array;
use crate::checks::{CheckContext, check_date, check_value};
use crate::decide::{Thresholds, decide};
use crate::json::{self, Limits, Node, Walker};
use crate::path::{ColumnPath, FieldPath};
use crate::types::{DeclaredType, TypeClass};
use crate::verdict::{ColumnVerdict, Reason};

/// How many rows to sample per column by default.
///
/// The weakest check (the SSN rules, chance 89%) needs 118 all-valid values to
/// be significant, and a JSON path that appears in one document in five still
/// gets 200 values; at 1,000 values the standard error of a share near the
/// 90% bar is under 1 percentage point, so the bars separate real columns from
/// look-alikes by several standard errors. Profiling 1,000 values of a column
/// takes well under a millisecond (see `benches/discover.rs`); the cost of a
/// larger sample is the upstream read, which the sampler bounds.
pub const DEFAULT_SAMPLE_SIZE: usize = 1_000;

/// Settings of a discovery run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiscoverConfig {
    /// The year ages are counted from for dates of birth. Passed in: the
    /// crate reads no clock.
    pub as_of_year: i32,
    /// The decision rule's bars.
    pub thresholds: Thresholds,
    /// Most JSON fields tracked per column; beyond, keys pool under `.*`.
    pub max_json_paths: usize,
    /// Distinct keys under one object beyond which it is a map (keys are data).
    pub map_keys: usize,
    /// Deepest JSON nesting walked.
    pub max_depth: usize,
}

impl DiscoverConfig {
    /// The defaults, counting ages from `as_of_year` (the current year).
    pub fn new(as_of_year: i32) -> DiscoverConfig {
        DiscoverConfig {
            as_of_year,
            thresholds: Thresholds::default(),
            max_json_paths: 1024,
            map_keys: 64,
            max_depth: 16,
        }
    }
}

/// The discovery engine: built once per run, shared by every column.
#[derive(Debug, Clone)]
pub struct Discoverer {
    scanner: Scanner,
    config: DiscoverConfig,
}

impl Discoverer {
    /// An engine with the text scanner's default entities (secrets and PII)
    /// for whole-value formats.
    pub fn new(config: DiscoverConfig) -> Discoverer {
        Discoverer {
            scanner: ScanConfig::new().build(),
            config,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &DiscoverConfig {
        &self.config
    }

    /// Starts profiling a column of declared type `type_name` (as the catalog
    /// spells it: `text`, `int8`, `jsonb`, `_text`...).
    pub fn profile(&self, column: ColumnPath, type_name: &str) -> ColumnProfile<'_> {
        ColumnProfile {
            discoverer: self,
            column,
            declared: DeclaredType::parse(type_name),
            root: Node::default(),
            paths: 0,
            needs_recount: false,
            documents: 0,
        }
    }

    /// Profiles a whole sample at once: the column's verdict first, then one
    /// per JSON path found in it.
    pub fn discover_column<I, S>(
        &self,
        column: ColumnPath,
        type_name: &str,
        values: I,
    ) -> Vec<ColumnVerdict>
    where
        I: IntoIterator<Item = Option<S>>,
        S: AsRef<str>,
    {
        let mut profile = self.profile(column, type_name);
        for v in values {
            profile.push(v.as_ref().map(AsRef::as_ref));
        }
        profile.finish()
    }

    fn ctx(&self) -> CheckContext<'_> {
        CheckContext {
            scanner: &self.scanner,
            as_of_year: self.config.as_of_year,
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_paths: self.config.max_json_paths,
            map_keys: self.config.map_keys,
            max_depth: self.config.max_depth,
        }
    }
}

/// One column being profiled; holds counts only.
#[derive(Debug)]
pub struct ColumnProfile<'d> {
    discoverer: &'d Discoverer,
    column: ColumnPath,
    declared: DeclaredType,
    /// The column's own values at the root; JSON fields below it.
    root: Node,
    paths: usize,
    needs_recount: bool,
    /// JSON objects and arrays walked.
    documents: u32,
}

impl ColumnProfile<'_> {
    /// Adds one sampled value as PostgreSQL prints it; `None` is SQL NULL.
    pub fn push(&mut self, value: Option<&str>) {
        let Some(text) = value else {
            self.root.tally.nulls += 1;
            return;
        };
        if self.declared.array {
            let parsed = array::for_each_element(text, |e| match e {
                Some(e) => self.scalar(e),
                None => self.root.tally.nulls += 1,
            });
            if parsed.is_ok() {
                return;
            }
        }
        self.scalar(text);
    }

    fn scalar(&mut self, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            self.root.tally.blanks += 1;
            return;
        }
        let class = self.declared.class;
        match class {
            TypeClass::Skipped => self.root.tally.values += 1,
            TypeClass::Temporal => {
                let m = check_date(text, self.discoverer.config.as_of_year);
                self.root.tally.record(&m);
            }
            TypeClass::Json | TypeClass::Text | TypeClass::Integer => {
                let document = (class == TypeClass::Json || json::looks_like_document(text))
                    .then(|| json::parse(text))
                    .flatten();
                match document {
                    Some(doc) => self.walk(&doc),
                    None => {
                        let m =
                            check_value(&self.discoverer.ctx(), text, class == TypeClass::Integer);
                        self.root.tally.record(&m);
                    }
                }
            }
        }
    }

    fn walk(&mut self, doc: &serde_json::Value) {
        if doc.is_object() || doc.is_array() {
            self.documents += 1;
        }
        let discoverer = self.discoverer;
        let ctx = discoverer.ctx();
        let mut walker = Walker {
            ctx: &ctx,
            limits: discoverer.limits(),
            paths: self.paths,
            needs_recount: self.needs_recount,
        };
        walker.walk(&mut self.root, doc, 0);
        walker.recount(&self.root);
        self.paths = walker.paths;
        self.needs_recount = walker.needs_recount;
    }

    /// The verdicts: the column's first, then one per JSON field, depth first.
    pub fn finish(self) -> Vec<ColumnVerdict> {
        let t = &self.discoverer.config.thresholds;
        let class = self.declared.class;
        let mut column = decide(
            FieldPath::column(self.column.clone()),
            &self.root.tally,
            class,
            t,
        );
        if column.reason == Reason::NoValues && self.documents > 0 {
            column.reason = Reason::Documents {
                documents: self.documents,
            };
        }
        let mut out = vec![column];
        let mut fields = Vec::new();
        self.root.fields(&mut Vec::new(), &mut fields);
        for (steps, tally) in fields {
            let path = FieldPath {
                column: self.column.clone(),
                json: steps,
            };
            // Inside documents, values are read as JSON gives them.
            out.push(decide(path, tally, TypeClass::Json, t));
        }
        out
    }
}
