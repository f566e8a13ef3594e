//! The result types of an analysis: what the proxy decides on.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::catalog::TableName;
use crate::copy::CopyFormat;
use crate::effects::SessionEffect;
use crate::settings::SettingChange;

/// Where `COPY ... TO` sends rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyTarget {
    /// To the client: the rows flow through the proxy and are masked.
    Stdout,
    /// To a file on the database server: refused, the proxy cannot see it.
    File,
    /// To a shell command on the database server: code execution.
    Program,
}

/// Where `COPY ... FROM` reads rows from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopySource {
    /// From the client (a write through the proxy).
    Stdin,
    /// From a file on the database server.
    File,
    /// From a shell command on the database server: code execution.
    Program,
}

/// What kind of statement this is, for the guardrails.
///
/// The classes follow what a shield can lift (`write`, `ddl`, ...), not the
/// grammar: `CREATE TABLE AS` and `SELECT INTO` are DDL, `EXPLAIN ANALYZE` is its
/// inner statement because it runs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatementClass {
    /// `SELECT`, `VALUES`, `TABLE t`, `WITH ... SELECT`.
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `MERGE`.
    Merge,
    /// Schema changes: CREATE/ALTER/DROP/TRUNCATE/COMMENT/REFRESH/SELECT INTO...
    Ddl,
    /// Privilege changes: GRANT/REVOKE/CREATE, ALTER and DROP ROLE or USER.
    Dcl,
    /// `COPY ... TO`.
    CopyTo {
        /// Where the rows go.
        target: CopyTarget,
        /// How the rows are encoded (what a masking stage must read).
        format: CopyFormat,
    },
    /// `COPY ... FROM`.
    CopyFrom {
        /// Where the rows come from.
        source: CopySource,
    },
    /// BEGIN/START/COMMIT/END/ROLLBACK/SAVEPOINT/RELEASE/PREPARE TRANSACTION...
    Transaction,
    /// `SET name ...` (`variable` lowercased: `search_path`, `role`,
    /// `session authorization`, `transaction`, ...).
    Set {
        /// The setting being changed.
        variable: String,
    },
    /// `SHOW name`.
    Show,
    /// `RESET name` / `RESET ALL`.
    Reset,
    /// `EXPLAIN [ANALYZE] statement`.
    Explain {
        /// Whether the inner statement is executed (`EXPLAIN ANALYZE`).
        analyze: bool,
        /// The class of the explained statement.
        inner: Box<StatementClass>,
    },
    /// `PREPARE name AS statement` (SQL level). The analysis carries the inner
    /// statement's facts and outputs, so the proxy can remember them by name.
    Prepare {
        /// The prepared statement's name.
        name: String,
        /// The class of the prepared statement.
        inner: Box<StatementClass>,
    },
    /// `EXECUTE name(...)`: runs a prepared statement; its outputs are those of
    /// the matching [`StatementClass::Prepare`].
    Execute {
        /// The prepared statement's name.
        name: String,
    },
    /// `DEALLOCATE name` / `DEALLOCATE ALL`.
    Deallocate,
    /// `DECLARE name CURSOR FOR query`; outputs are the query's, for `FETCH`.
    Declare {
        /// The cursor's name.
        name: String,
        /// The class of the cursor's query.
        inner: Box<StatementClass>,
    },
    /// `FETCH`/`MOVE` from a cursor; outputs are the matching `Declare`'s.
    Fetch {
        /// The cursor's name.
        cursor: String,
    },
    /// `CLOSE cursor`.
    Close,
    /// `CALL procedure(...)`: runs arbitrary server code.
    Call,
    /// `DO $$ ... $$`: an anonymous code block; arbitrary server code.
    Do,
    /// `LISTEN` / `UNLISTEN`.
    Listen,
    /// `NOTIFY`.
    Notify,
    /// `VACUUM`.
    Vacuum,
    /// `ANALYZE`.
    Analyze,
    /// `DISCARD`.
    Discard,
    /// `LOCK TABLE`.
    Lock {
        /// The mode asked for (`ACCESS EXCLUSIVE` when none is written).
        mode: LockMode,
    },
    /// Anything else, named by its leading keywords.
    Other(String),
}

impl StatementClass {
    /// Whether running the statement modifies table data (lifted by `write`).
    pub fn is_data_write(&self) -> bool {
        match self {
            StatementClass::Insert
            | StatementClass::Update
            | StatementClass::Delete
            | StatementClass::Merge
            | StatementClass::CopyFrom { .. } => true,
            StatementClass::Explain {
                analyze: true,
                inner,
            } => inner.is_data_write(),
            StatementClass::Prepare { inner, .. } | StatementClass::Declare { inner, .. } => {
                inner.is_data_write()
            }
            _ => false,
        }
    }

    /// Whether the statement changes the schema (lifted by `ddl`).
    pub fn is_ddl(&self) -> bool {
        match self {
            StatementClass::Ddl => true,
            StatementClass::Explain {
                analyze: true,
                inner,
            }
            | StatementClass::Prepare { inner, .. } => inner.is_ddl(),
            _ => false,
        }
    }

    /// Whether the statement changes privileges.
    pub fn is_dcl(&self) -> bool {
        matches!(self, StatementClass::Dcl)
    }

    /// Whether the statement runs server-side code or touches the server's
    /// filesystem: `DO`, `CALL`, `COPY` to/from a file or a program.
    pub fn runs_server_code(&self) -> bool {
        match self {
            StatementClass::Do | StatementClass::Call => true,
            StatementClass::CopyTo { target, .. } => *target != CopyTarget::Stdout,
            StatementClass::CopyFrom { source } => *source != CopySource::Stdin,
            StatementClass::Explain {
                analyze: true,
                inner,
            }
            | StatementClass::Prepare { inner, .. } => inner.runs_server_code(),
            _ => false,
        }
    }

    /// A short lowercase name for audit records (`select`, `copy_to`, ...).
    pub fn name(&self) -> &str {
        match self {
            StatementClass::Select => "select",
            StatementClass::Insert => "insert",
            StatementClass::Update => "update",
            StatementClass::Delete => "delete",
            StatementClass::Merge => "merge",
            StatementClass::Ddl => "ddl",
            StatementClass::Dcl => "dcl",
            StatementClass::CopyTo { .. } => "copy_to",
            StatementClass::CopyFrom { .. } => "copy_from",
            StatementClass::Transaction => "transaction",
            StatementClass::Set { .. } => "set",
            StatementClass::Show => "show",
            StatementClass::Reset => "reset",
            StatementClass::Explain { .. } => "explain",
            StatementClass::Prepare { .. } => "prepare",
            StatementClass::Execute { .. } => "execute",
            StatementClass::Deallocate => "deallocate",
            StatementClass::Declare { .. } => "declare",
            StatementClass::Fetch { .. } => "fetch",
            StatementClass::Close => "close",
            StatementClass::Call => "call",
            StatementClass::Do => "do",
            StatementClass::Listen => "listen",
            StatementClass::Notify => "notify",
            StatementClass::Vacuum => "vacuum",
            StatementClass::Analyze => "analyze",
            StatementClass::Discard => "discard",
            StatementClass::Lock { .. } => "lock",
            StatementClass::Other(name) => name,
        }
    }
}

/// The table lock modes of PostgreSQL's `LOCK TABLE`, weakest first.
///
/// Only [`LockMode::AccessShare`] is what a plain `SELECT` takes (it
/// conflicts with `ACCESS EXCLUSIVE` alone, like any open read
/// transaction): pg_dump takes it on every table it dumps. Every stronger
/// mode blocks other sessions' writes or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    /// `ACCESS SHARE`: what `SELECT` takes.
    AccessShare,
    /// `ROW SHARE`: what `SELECT ... FOR UPDATE/SHARE` takes.
    RowShare,
    /// `ROW EXCLUSIVE`: what `INSERT`/`UPDATE`/`DELETE` take.
    RowExclusive,
    /// `SHARE UPDATE EXCLUSIVE`: `VACUUM`, `ANALYZE`, `CREATE INDEX CONCURRENTLY`.
    ShareUpdateExclusive,
    /// `SHARE`: `CREATE INDEX`.
    Share,
    /// `SHARE ROW EXCLUSIVE`: `CREATE TRIGGER`.
    ShareRowExclusive,
    /// `EXCLUSIVE`: `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Exclusive,
    /// `ACCESS EXCLUSIVE`: DDL, `VACUUM FULL`; the default of `LOCK TABLE`.
    AccessExclusive,
}

impl LockMode {
    /// Whether the lock is no stronger than the one a `SELECT` takes.
    pub fn is_read(self) -> bool {
        self == LockMode::AccessShare
    }
}

/// A column of a relation in the catalog: where sensitive data lives.
///
/// The names are shared (`Arc<str>`): lineage sets are cloned at every level of
/// a query, and a reference count is cheaper than three string copies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnRef {
    /// Schema of the relation.
    pub schema: Arc<str>,
    /// Table (or view, when the view's definition could not be expanded).
    pub table: Arc<str>,
    /// Column name.
    pub column: Arc<str>,
}

impl ColumnRef {
    /// Builds a reference; mostly for tests and the proxy's lookups.
    pub fn new(schema: &str, table: &str, column: &str) -> Self {
        ColumnRef {
            schema: schema.into(),
            table: table.into(),
            column: column.into(),
        }
    }
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.schema, self.table, self.column)
    }
}

/// How a whole-row value is encoded in the output, so the proxy knows where
/// the keys of [`Lineage::WholeRow`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowEncoding {
    /// A JSON object whose keys are the fields, or a JSON array of such
    /// objects (`json_agg(c)`).
    Json,
    /// A composite value in PostgreSQL's record text form `(v1,v2,...)`,
    /// fields in order (`SELECT c FROM customers c`).
    Composite,
}

/// One field of a whole-row value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowField {
    /// The JSON key or composite field name.
    pub key: String,
    /// Where the field's value comes from (itself possibly a whole row).
    pub lineage: Lineage,
}

/// Where the values of one output column come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lineage {
    /// No column contributes: literals, parameters, `now()`, `current_user`.
    Constant,
    /// Derived from these catalog columns. `transformed` is false for a plain
    /// pass-through (`SELECT email`, through aliases, CTEs, views, UNION) and
    /// true once any expression touched the value (`upper(email)`, casts,
    /// concatenation, aggregates, CASE, ...).
    Sources {
        /// Every catalog column the value may derive from.
        columns: BTreeSet<ColumnRef>,
        /// Whether any expression transformed the value.
        transformed: bool,
    },
    /// A whole row rendered as JSON or a composite, with each key's lineage, so
    /// the proxy can mask sensitive keys inside the value instead of all of it.
    WholeRow {
        /// How the row is encoded.
        encoding: RowEncoding,
        /// The fields, in output order.
        fields: Vec<RowField>,
    },
    /// The analysis could not establish where the value comes from. Fail
    /// closed: the proxy masks the column or refuses the statement.
    Unknown {
        /// Why, for the refusal message and for debugging.
        reason: String,
    },
}

impl Lineage {
    /// A pass-through of one column.
    pub fn column(c: ColumnRef) -> Self {
        Lineage::Sources {
            columns: BTreeSet::from([c]),
            transformed: false,
        }
    }

    /// An unknown lineage with a reason.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Lineage::Unknown {
            reason: reason.into(),
        }
    }

    /// Every catalog column this value may derive from, at any depth of a
    /// whole row: the set a proxy checks when it masks the value as a whole.
    pub fn all_sources(&self) -> BTreeSet<&ColumnRef> {
        let mut out = BTreeSet::new();
        self.collect_sources(&mut out);
        out
    }

    fn collect_sources<'a>(&'a self, out: &mut BTreeSet<&'a ColumnRef>) {
        match self {
            Lineage::Constant | Lineage::Unknown { .. } => {}
            Lineage::Sources { columns, .. } => out.extend(columns.iter()),
            Lineage::WholeRow { fields, .. } => {
                for f in fields {
                    f.lineage.collect_sources(out);
                }
            }
        }
    }

    /// Whether any part of this lineage is unknown.
    pub fn has_unknown(&self) -> bool {
        match self {
            Lineage::Unknown { .. } => true,
            Lineage::WholeRow { fields, .. } => fields.iter().any(|f| f.lineage.has_unknown()),
            _ => false,
        }
    }

    /// The lineage of a value computed from this one: pass-through becomes
    /// transformed, a whole row collapses to its sources (its keys no longer
    /// line up with anything).
    pub(crate) fn transformed(self) -> Lineage {
        match self {
            Lineage::Sources { columns, .. } => Lineage::Sources {
                columns,
                transformed: true,
            },
            Lineage::WholeRow { .. } => {
                if let Some(reason) = self.first_unknown() {
                    return Lineage::Unknown { reason };
                }
                let columns: BTreeSet<ColumnRef> =
                    self.all_sources().into_iter().cloned().collect();
                if columns.is_empty() {
                    Lineage::Constant
                } else {
                    Lineage::Sources {
                        columns,
                        transformed: true,
                    }
                }
            }
            other => other,
        }
    }

    fn first_unknown(&self) -> Option<String> {
        match self {
            Lineage::Unknown { reason } => Some(reason.clone()),
            Lineage::WholeRow { fields, .. } => {
                fields.iter().find_map(|f| f.lineage.first_unknown())
            }
            _ => None,
        }
    }

    /// Combines two alternatives for the same value (UNION branches, CASE
    /// results, COALESCE arguments): the result may come from either.
    pub(crate) fn merge(self, other: Lineage) -> Lineage {
        match (self, other) {
            (u @ Lineage::Unknown { .. }, _) | (_, u @ Lineage::Unknown { .. }) => u,
            (Lineage::Constant, x) | (x, Lineage::Constant) => x,
            (
                Lineage::Sources {
                    mut columns,
                    transformed: t1,
                },
                Lineage::Sources {
                    columns: c2,
                    transformed: t2,
                },
            ) => {
                columns.extend(c2);
                Lineage::Sources {
                    columns,
                    transformed: t1 || t2,
                }
            }
            (
                Lineage::WholeRow {
                    encoding: e1,
                    fields: mut f1,
                },
                Lineage::WholeRow {
                    encoding: e2,
                    fields: f2,
                },
            ) if e1 == e2 && e1 == RowEncoding::Json => {
                for f in f2 {
                    if let Some(existing) = f1.iter_mut().find(|x| x.key == f.key) {
                        let old = std::mem::replace(&mut existing.lineage, Lineage::Constant);
                        existing.lineage = old.merge(f.lineage);
                    } else {
                        f1.push(f);
                    }
                }
                Lineage::WholeRow {
                    encoding: e1,
                    fields: f1,
                }
            }
            (a, b) => {
                let a = a.transformed();
                let b = b.transformed();
                a.merge(b)
            }
        }
    }
}

/// One column of the statement's result, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutputColumn {
    /// The column name as PostgreSQL reports it in RowDescription (best effort
    /// for expressions; positions, not names, are what the proxy matches on).
    pub name: String,
    /// Where its values come from.
    pub lineage: Lineage,
}

/// Everything learnt about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementAnalysis {
    /// What kind of statement it is.
    pub class: StatementClass,
    /// Whether the statement was fully parsed. Statements the parser does not
    /// know but that are recognised by their leading keywords (`DO`,
    /// `CHECKPOINT`, `ALTER SYSTEM`...) have a class but no lineage or facts.
    pub parsed: bool,
    /// Whether running it modifies data anywhere: a write class, a
    /// data-modifying CTE, `nextval`/`setval`, large-object writes, `SELECT INTO`.
    pub writes: bool,
    /// Whether it takes row locks (`FOR UPDATE`, `FOR SHARE`...) or a table
    /// lock stronger than a `SELECT`'s (`LOCK TABLE` in any mode but
    /// `ACCESS SHARE`).
    pub locks: bool,
    /// `UPDATE`/`DELETE` (anywhere in the statement) without a `WHERE`, or with
    /// a constant-true one such as `WHERE true` or `WHERE 1 = 1`.
    pub unbounded_write: bool,
    /// Relations read, resolved through the catalog when possible; includes
    /// views and the relations under them.
    pub tables_read: BTreeSet<TableName>,
    /// Relations written or changed (DML targets, DDL targets, COPY FROM).
    pub tables_written: BTreeSet<TableName>,
    /// Every function called anywhere, lowercased, schema-qualified when written
    /// so (`pg_catalog.pg_read_file`). See [`StatementAnalysis::calls`].
    pub functions: BTreeSet<String>,
    /// The result columns, in order. Empty for statements without rows.
    pub outputs: Vec<OutputColumn>,
    /// False when `outputs` cannot be matched to result columns by position: a
    /// `*` over a relation of unknown columns (its single entry is named `*`),
    /// or rows whose shape lives elsewhere (`EXECUTE`, `FETCH`, `SHOW`). The
    /// proxy must then treat every result column as unknown.
    pub outputs_exact: bool,
    /// Catalog columns referenced in predicates (WHERE, JOIN ON, HAVING, FILTER,
    /// window PARTITION/ORDER BY, CASE conditions): a predicate can be used as an
    /// oracle on a value that is never output.
    pub filter_columns: BTreeSet<ColumnRef>,
    /// The statement's text with every literal replaced by `?`, comments removed
    /// and whitespace collapsed: safe for the audit log and a cache key.
    pub normalized: String,
    /// A stable 64-bit fingerprint (FNV-1a) of `normalized`.
    pub fingerprint: u64,
    /// What the statement changes in the session (`search_path`, prepared
    /// statements, cursors) once it ran, for the proxy to track.
    pub effects: Vec<SessionEffect>,
    /// Whether it switches the session or its transaction to read-write,
    /// turning off the proxy's read-only backstop.
    pub lifts_read_only: bool,
    /// The settings it changes through `set_config` calls with constant
    /// arguments, a `SET` in disguise. Non-empty only when every
    /// `set_config` call of the statement is such a call (the calls stay in
    /// [`StatementAnalysis::functions`]); a guard applies the rules of `SET`
    /// to these instead of refusing the function.
    pub settings: Vec<SettingChange>,
    /// Byte range of the statement in the analysed text.
    pub range: Range<usize>,
}

impl StatementAnalysis {
    /// Whether the statement calls `name` (lowercase, unqualified), whether
    /// written bare or schema-qualified.
    pub fn calls(&self, name: &str) -> bool {
        self.functions
            .iter()
            .any(|f| f == name || f.rsplit_once('.').is_some_and(|(_, n)| n == name))
    }

    /// Whether this statement needs the `write` shield lifted.
    pub fn is_write(&self) -> bool {
        self.writes || self.class.is_data_write()
    }

    /// Whether this statement needs the `ddl` shield lifted.
    pub fn is_ddl(&self) -> bool {
        self.class.is_ddl()
    }

    /// Whether some output column's lineage is unknown or the outputs cannot be
    /// matched by position: the proxy must mask or refuse.
    pub fn has_unknown_outputs(&self) -> bool {
        !self.outputs_exact || self.outputs.iter().any(|o| o.lineage.has_unknown())
    }
}

/// The analysis of a whole query string: one entry per statement, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Analysis {
    /// The statements, in order. Empty for an empty query string.
    pub statements: Vec<StatementAnalysis>,
}

impl Analysis {
    /// Whether any statement writes (see [`StatementAnalysis::is_write`]).
    pub fn is_write(&self) -> bool {
        self.statements.iter().any(StatementAnalysis::is_write)
    }

    /// Whether any statement changes the schema.
    pub fn is_ddl(&self) -> bool {
        self.statements.iter().any(StatementAnalysis::is_ddl)
    }

    /// The literal-free text of every statement, joined with `; `: what the audit
    /// log records for the whole query string.
    pub fn normalized(&self) -> String {
        self.statements
            .iter()
            .map(|s| s.normalized.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}
