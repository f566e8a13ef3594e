//! The labelled schema corpus: 33 generated tables whose every column (and
//! every sensitive JSON field) carries its true entity or none.
//!
//! It exists to measure discovery on what defeats names and per-value
//! detectors: identifiers without separators under neutral names (`ref`,
//! `code`, `external_id`, `val`, `col7`), integers that lost their leading
//! zeros, identifiers inside JSON documents under unknown keys, in arrays and
//! in maps keyed by user ids, next to look-alikes (order numbers, epoch
//! times, amounts in cents, ZIP and ZIP+4 codes, phone-shaped internal ids,
//! sequential and clustered nine-digit ids, hashes, UUIDs, random 9/11/12/16
//! digit numbers, SKUs, NINO-shaped booking references, recent and future
//! dates) and names that look sensitive but are not (`sin` as a sine,
//! `tin_content`, `dl_count`, `pass_count`, `tax_code`, `ssn_last4`).
//! Columns have nulls, blanks and a little dirt (placeholders, typos).
//!
//! Everything is a function of the seed: [`Corpus::value`] gives any cell,
//! [`Corpus::write_sql`] the whole corpus as `CREATE TABLE` + `COPY` text for
//! a real PostgreSQL (any number of rows per table, and [`Corpus::scaled`]
//! any number of tables), and [`measure`] the accuracy of a discovery run
//! against the labels.
//!
//! The labels say what a correct discovery should propose: the entity of the
//! content, or of the name when the name says it (`first_name` is
//! `person_name`, `passport_no` is `passport` whatever its values).
//! Passports and driver licences appear only under their names: they have no
//! checksum a column of them could be recognised by.

mod kinds;
mod sql;
mod tables;
pub mod values;

use std::collections::BTreeMap;
use std::fmt;

use periscope_redact::Entity;

use crate::path::{ColumnPath, FieldPath, JsonStep};
use crate::profile::Discoverer;
use crate::verdict::{ColumnVerdict, Reason};

pub use kinds::{Doc, Gen, Sep};
use values::Rng;

/// The seed of the corpus the accuracy test and `docs/discovery.md` use.
pub const SEED: u64 = 0x5EED_D15C_0BE2;

/// One generated column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The column name.
    pub name: String,
    /// Its declared type (`text`, `int8`, `jsonb`, `text[]`...).
    pub sql_type: String,
    /// What it holds.
    pub generator: Gen,
    /// What discovery should propose for the column itself.
    pub label: Option<Entity>,
    /// JSON fields inside it that discovery should propose, with their
    /// entity; every other JSON field found is labelled none.
    pub json_labels: Vec<(Vec<JsonStep>, Entity)>,
    /// Percent of NULL cells.
    pub nulls: u8,
    /// Percent of empty strings.
    pub blanks: u8,
    /// Percent of dirty values (placeholders, typos).
    pub dirty: u8,
}

/// One generated table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// How many rows it has (a sample draws from these).
    pub rows: u64,
    /// Its columns.
    pub columns: Vec<Column>,
    /// Its position, part of every cell's seed.
    index: u64,
}

impl Table {
    /// The column's path.
    pub fn path(&self, column: &Column) -> ColumnPath {
        ColumnPath::new(&self.schema, &self.name, &column.name)
    }
}

/// The labelled corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The seed every value derives from.
    pub seed: u64,
    /// The tables.
    pub tables: Vec<Table>,
}

impl Corpus {
    /// The 33 tables, with a million rows each (a few are small on purpose).
    pub fn generate(seed: u64) -> Corpus {
        let tables = tables::all()
            .into_iter()
            .enumerate()
            .map(|(i, mut t)| {
                t.index = i as u64;
                t
            })
            .collect();
        Corpus { seed, tables }
    }

    /// `count` tables: the 33 cycled, the copies in schemas `c1`, `c2`...,
    /// each with its own values. For load and speed tests at scale (100
    /// tables of a million rows).
    pub fn scaled(seed: u64, count: usize) -> Corpus {
        let base = Corpus::generate(seed).tables;
        let tables = (0..count)
            .map(|i| {
                let mut t = base[i % base.len()].clone();
                let copy = i / base.len();
                if copy > 0 {
                    t.schema = format!("c{copy}_{}", t.schema);
                }
                t.index = i as u64;
                t
            })
            .collect();
        Corpus { seed, tables }
    }

    /// Sets every table's row count to `rows`, except tables smaller on
    /// purpose, which keep theirs when it is smaller.
    pub fn with_rows(mut self, rows: u64) -> Corpus {
        for t in &mut self.tables {
            t.rows = if t.rows == tables::FULL_ROWS {
                rows
            } else {
                t.rows.min(rows)
            };
        }
        self
    }

    /// How many columns in all tables.
    pub fn column_count(&self) -> usize {
        self.tables.iter().map(|t| t.columns.len()).sum()
    }

    /// The text PostgreSQL would print for a cell, `None` for NULL.
    pub fn value(&self, table: &Table, column: usize, row: u64) -> Option<String> {
        let c = &table.columns[column];
        let mut r = Rng::cell(self.seed, table.index, column as u64, row);
        let roll = r.below(100);
        let nulls = u64::from(c.nulls);
        let blanks = nulls + u64::from(c.blanks);
        let dirty = blanks + u64::from(c.dirty);
        if roll < nulls {
            None
        } else if roll < blanks {
            Some(String::new())
        } else if roll < dirty {
            Some(c.generator.dirty(&mut r, row))
        } else {
            Some(c.generator.cell(&mut r, row))
        }
    }

    /// The rows a sample of `n` draws from `table`: all of them when the
    /// table is that small, else `n` random rows (as `TABLESAMPLE` or
    /// `ORDER BY random() LIMIT n` would).
    pub fn sample_rows(&self, table: &Table, n: usize) -> Vec<u64> {
        if table.rows <= n as u64 {
            return (0..table.rows).collect();
        }
        let mut r = Rng::cell(self.seed, table.index, u64::MAX, 0);
        (0..n).map(|_| r.below(table.rows)).collect()
    }

    /// Every labelled field: each column, and the sensitive JSON fields.
    pub fn labels(&self) -> BTreeMap<FieldPath, Option<Entity>> {
        let mut out = BTreeMap::new();
        for t in &self.tables {
            for c in &t.columns {
                let column = t.path(c);
                out.insert(FieldPath::column(column.clone()), c.label);
                for (steps, e) in &c.json_labels {
                    out.insert(
                        FieldPath {
                            column: column.clone(),
                            json: steps.clone(),
                        },
                        Some(*e),
                    );
                }
            }
        }
        out
    }
}

/// One field whose proposal differs from its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// The field.
    pub path: FieldPath,
    /// Its label.
    pub truth: Option<Entity>,
    /// What discovery proposed.
    pub proposed: Option<Entity>,
    /// Why discovery decided so (`None` when it produced no verdict).
    pub reason: Option<Reason>,
}

/// Discovery's accuracy against the labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    /// (label, proposal) → fields.
    pub confusion: BTreeMap<(Option<Entity>, Option<Entity>), u32>,
    /// Fields scored.
    pub fields: u32,
    /// Fields labelled with an entity.
    pub sensitive: u32,
    /// Sensitive fields proposed as their entity.
    pub found: u32,
    /// Fields with a proposal.
    pub proposals: u32,
    /// Proposals equal to the label.
    pub correct: u32,
    /// Every disagreement.
    pub misses: Vec<Miss>,
}

impl Score {
    /// Sensitive fields proposed as their entity, over sensitive fields.
    pub fn recall(&self) -> f64 {
        f64::from(self.found) / f64::from(self.sensitive.max(1))
    }

    /// Correct proposals over proposals.
    pub fn precision(&self) -> f64 {
        f64::from(self.correct) / f64::from(self.proposals.max(1))
    }
}

/// Scores verdicts against labels: every verdict's field (unlabelled JSON
/// fields count as labelled none) and every labelled field without a verdict.
pub fn score(labels: &BTreeMap<FieldPath, Option<Entity>>, verdicts: &[ColumnVerdict]) -> Score {
    let mut s = Score::default();
    let mut seen = std::collections::BTreeSet::new();
    let add = |s: &mut Score,
               path: &FieldPath,
               truth: Option<Entity>,
               proposed: Option<Entity>,
               reason: Option<Reason>| {
        s.fields += 1;
        *s.confusion.entry((truth, proposed)).or_default() += 1;
        if truth.is_some() {
            s.sensitive += 1;
            if truth == proposed {
                s.found += 1;
            }
        }
        if proposed.is_some() {
            s.proposals += 1;
            if truth == proposed {
                s.correct += 1;
            }
        }
        if truth != proposed {
            s.misses.push(Miss {
                path: path.clone(),
                truth,
                proposed,
                reason,
            });
        }
    };
    for v in verdicts {
        seen.insert(v.path.clone());
        let truth = labels.get(&v.path).copied().flatten();
        add(&mut s, &v.path, truth, v.proposed, Some(v.reason.clone()));
    }
    for (path, truth) in labels {
        if !seen.contains(path) {
            add(&mut s, path, *truth, None, None);
        }
    }
    s
}

/// Samples `sample` rows of every table (the same rows for every column of
/// a table, as a table sample would), runs discovery on each column, and
/// scores the verdicts.
pub fn measure(
    discoverer: &Discoverer,
    corpus: &Corpus,
    sample: usize,
) -> (Vec<ColumnVerdict>, Score) {
    let mut verdicts = Vec::new();
    for t in &corpus.tables {
        let rows = corpus.sample_rows(t, sample);
        for (i, c) in t.columns.iter().enumerate() {
            let values = rows.iter().map(|&row| corpus.value(t, i, row));
            verdicts.extend(discoverer.discover_column(t.path(c), &c.sql_type, values));
        }
    }
    let s = score(&corpus.labels(), &verdicts);
    (verdicts, s)
}

fn name(e: Option<Entity>) -> &'static str {
    e.map_or("-", Entity::name)
}

impl fmt::Display for Score {
    /// The confusion table (rows: label, columns: proposal) and the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut labels: Vec<Option<Entity>> = Vec::new();
        for &(t, p) in self.confusion.keys() {
            for e in [t, p] {
                if !labels.contains(&e) {
                    labels.push(e);
                }
            }
        }
        labels.sort();
        write!(f, "{:<16}", "label \\ proposed")?;
        for &l in &labels {
            write!(f, " {:>8}", abbreviate(name(l)))?;
        }
        writeln!(f)?;
        for &t in &labels {
            write!(f, "{:<16}", name(t))?;
            for &p in &labels {
                match self.confusion.get(&(t, p)) {
                    Some(n) => write!(f, " {n:>8}")?,
                    None => write!(f, " {:>8}", ".")?,
                }
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "fields {}, sensitive {}, found {}, proposals {}, correct {}",
            self.fields, self.sensitive, self.found, self.proposals, self.correct
        )?;
        write!(
            f,
            "recall {:.4}, precision {:.4}",
            self.recall(),
            self.precision()
        )
    }
}

fn abbreviate(s: &str) -> &str {
    &s[..s.len().min(8)]
}
