//! The decision for a SQL statement: what is refused before anything goes
//! upstream.
//!
//! Every statement of a query string is checked against the session's
//! shields; the first one that stops it decides the [`Refusal`] (the shield
//! named in the message, the exact `periscope request ...` command in the
//! hint; the protocol's glue renders it, PostgreSQL as SQLSTATE 42501). In
//! order:
//!
//! | statement | shield |
//! |---|---|
//! | server-side code: `DO`, `CALL`, `COPY` to/from a file or a program | `write` and `ddl` |
//! | privilege changes (`GRANT`, `REVOKE`, roles), `SET ROLE`, `SET SESSION AUTHORIZATION` (or their `set_config` forms) | `ddl` |
//! | schema changes, `VACUUM`, `ANALYZE`, `CHECKPOINT`, `LOAD`, other unknown commands | `ddl` |
//! | data changes: DML, `COPY FROM`, data-modifying CTEs, `nextval`/`setval`, large-object writes, `SELECT INTO`, row locks (`FOR UPDATE`), `LOCK` in a mode stronger than `ACCESS SHARE` | `write` |
//! | `UPDATE`/`DELETE` without a `WHERE`, `TRUNCATE` | `unbounded-write` (after `write`) |
//! | turning the read-only backstop off: `SET [LOCAL] default_transaction_read_only`/`transaction_read_only` (or `set_config` of them), `SET TRANSACTION`/`SESSION CHARACTERISTICS ... READ WRITE`, `BEGIN`/`START TRANSACTION READ WRITE` | `write` |
//! | a custom setting (a name with a dot: `app.tenant`) changed by `SET` or `set_config` ([`SettingShield::Custom`] says why) | `function:set_config` |
//! | a call to a dangerous function ([`DANGEROUS_FUNCTIONS`], [`DANGEROUS_PREFIXES`]) or a configured `blocked_functions` entry; a `set_config` call with constant arguments is judged as the `SET` it is (the rows above), any other stays here | `function:NAME` |
//! | any access to a configured sensitive table | `table:SCHEMA.TABLE` |
//! | binary `COPY ... TO STDOUT` | none: the masking stage cannot read it |
//! | SQL that does not parse (when `refuse_unanalysable`) | none: refused with the parse position |

use std::sync::Arc;

use periscope_policy::{Allowance, FunctionName, Shield, TableName};
use periscope_sql::{
    Analysis, AnalysisCache, AnalyzeError, AnalyzeOptions, Catalog, CopyFormat, CopyTarget,
    StatementAnalysis, StatementClass,
};

/// Built-in functions refused unless `function:NAME` is lifted: they read or
/// write the server's files, end other sessions, change the server's
/// configuration, reach other servers, read raw WAL changes (bypassing
/// masking), or change settings behind the guardrails' back.
///
/// Not listed, on purpose: `pg_sleep` (holds only the caller's own session;
/// Ctrl-C cancels it), `current_setting` (reads only), `query_to_xml` and
/// friends (their output has unknown lineage and is masked whole).
pub const DANGEROUS_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_stat_file",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_import_system_collations",
    "pg_drop_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_replication_slot_advance",
    "set_config",
    "loread",
    "lowrite",
    "dblink",
];

/// Prefixes of built-in dangerous function families: large objects
/// (`lo_import`, `lo_export`, `lo_get`...), `dblink*`, directory listings
/// (`pg_ls_dir`, `pg_ls_logdir`...), file access (`pg_read_*`, and adminpack's
/// `pg_file_write`, `pg_file_rename`...), logical decoding (raw changes of any
/// table), replication origins, statistics resets.
pub const DANGEROUS_PREFIXES: &[&str] = &[
    "lo_",
    "dblink",
    "pg_ls_",
    "pg_read_",
    "pg_file_",
    "pg_logdir_",
    "pg_logical_slot_",
    "pg_logical_emit_",
    "pg_replication_origin_",
    "pg_stat_reset",
];

/// What the rules of `SET` say about changing one setting (by `SET`, or by
/// a `set_config` call with constant arguments), beyond what the analysis
/// reports as lifting the read-only backstop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingShield {
    /// `role`, `session_authorization`: a privilege change, under `ddl`.
    Ddl,
    /// A custom setting (any name with a dot: `app.tenant`, an extension's
    /// `auto_explain.log_analyze`...), under `function:set_config`. Row-level
    /// security policies commonly read such settings
    /// (`current_setting('app.tenant')`), so setting one, even to a typed
    /// constant, can show another tenant's rows; and a setting holds a value
    /// for later statements to read back, which is how `set_config` with a
    /// computed value would carry data past the masking. Built-in settings
    /// cannot do either.
    Custom,
}

/// The rule for changing the setting `name` (lowercase); `None` for the
/// built-in settings that change only how this session behaves
/// (`search_path`, `statement_timeout`, `DateStyle`, `jit`...).
/// `default_transaction_read_only` and `transaction_read_only` are
/// reported by the analysis as lifting the read-only backstop (`write`).
pub fn setting_shield(name: &str) -> Option<SettingShield> {
    match name {
        "role" | "session authorization" | "session_authorization" => Some(SettingShield::Ddl),
        n if n.contains('.') => Some(SettingShield::Custom),
        _ => None,
    }
}

/// The settings a statement changes: a `SET`'s variable, or each constant
/// `set_config` call's name.
fn setting_names(st: &StatementAnalysis) -> impl Iterator<Item = &str> {
    let set = match &st.class {
        StatementClass::Set { variable } => Some(variable.as_str()),
        _ => None,
    };
    set.into_iter()
        .chain(st.settings.iter().map(|c| c.name.as_str()))
}

/// Whether the built-in list names `name` (unqualified, lowercase).
pub fn is_dangerous_function(name: &str) -> bool {
    DANGEROUS_FUNCTIONS.contains(&name) || DANGEROUS_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// One statement of an analysed query string: what a session keeps per
/// prepared statement, portal or cursor, and what its audit events describe.
/// Cheap to clone (the analysis and the text are shared).
#[derive(Debug, Clone)]
pub struct StatementRef {
    /// The analysis of the whole query string.
    pub analysis: Arc<Analysis>,
    /// Which of its statements.
    pub index: usize,
    /// The query string.
    pub sql: Arc<str>,
}

impl StatementRef {
    /// The statement's analysis.
    pub fn get(&self) -> Option<&StatementAnalysis> {
        self.analysis.statements.get(self.index)
    }

    /// The statement's own text within the query string.
    pub fn text(&self) -> &str {
        self.get()
            .and_then(|st| self.sql.get(st.range.clone()))
            .unwrap_or("")
    }
}

/// Why an action was refused: a permission (a shield, or a rule of the
/// gateway) or a limit of the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Not allowed (PostgreSQL: 42501 insufficient_privilege).
    Forbidden,
    /// Too deeply nested to analyse (PostgreSQL: 54001
    /// statement_too_complex): a limit, not a permission.
    TooComplex,
}

/// A refused action: what the client is told and, for the audit, the shield
/// that stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Permission or limit.
    pub kind: RefusalKind,
    /// What was refused and why, naming the shield.
    pub message: String,
    /// More on the rule, when there is more to say.
    pub detail: Option<String>,
    /// What to do instead: the exact command that requests the grant.
    pub hint: Option<String>,
    /// The shield, when one decided.
    pub shield: Option<Shield>,
}

impl Refusal {
    /// A refusal by `shield`, with the policy's wording and request command.
    pub fn by_shield(allowance: &Allowance, shield: Shield, what: &str) -> Refusal {
        let r = allowance.refusal(&shield, what);
        Refusal {
            kind: RefusalKind::Forbidden,
            message: r.message,
            detail: Some(r.detail),
            hint: Some(r.hint),
            shield: Some(shield),
        }
    }

    /// A refusal by a rule of the gateway rather than a shield.
    pub fn plain(message: impl Into<String>, hint: impl Into<String>) -> Refusal {
        Refusal {
            kind: RefusalKind::Forbidden,
            message: message.into(),
            detail: None,
            hint: Some(hint.into()),
            shield: None,
        }
    }
}

fn by_shield(allowance: &Allowance, shield: Shield, what: &str) -> Refusal {
    Refusal::by_shield(allowance, shield, what)
}

fn plain(message: impl Into<String>, hint: impl Into<String>) -> Refusal {
    Refusal::plain(message, hint)
}

/// The refusal of a query string the analyser could not parse.
pub fn unanalysable(error: &AnalyzeError) -> Refusal {
    let message = format!("statement refused: Periscope could not analyse it ({error})");
    if let AnalyzeError::TooDeep { .. } = error {
        return Refusal {
            kind: RefusalKind::TooComplex,
            message,
            detail: None,
            hint: Some("rewrite the statement with less nesting".into()),
            shield: None,
        };
    }
    plain(
        message,
        "this connection refuses SQL its analyser cannot follow (refuse_unanalysable); \
         rewrite the statement, e.g. without the construct at that position",
    )
}

/// The refusal of a protocol-level function call (PostgreSQL's fast-path
/// FunctionCall message): neither the function nor its arguments can be
/// analysed.
pub fn function_call() -> Refusal {
    plain(
        "fast-path function calls are refused through the Periscope gateway: \
         the function and its arguments cannot be analysed",
        "call the function from SQL instead (SELECT fn(...))",
    )
}

/// The refusal of a statement that arrives before the upstream catalog is
/// loaded (fail closed: nothing can be analysed without it).
pub fn not_ready() -> Refusal {
    Refusal {
        kind: RefusalKind::Forbidden,
        message: "the session is not ready: the upstream catalog is not loaded".into(),
        detail: None,
        hint: None,
        shield: None,
    }
}

/// Analyses a whole query string and checks every statement: the first
/// statement a shield stops refuses all of it. `Ok(None)` when the string
/// could not be analysed but the connection lets such SQL through (every
/// output is then masked whole, its lineage being unknown).
pub fn decide(
    sql: &str,
    catalog: &dyn Catalog,
    analyses: &AnalysisCache,
    options: &AnalyzeOptions,
    allowance: &Allowance,
) -> Result<Option<Arc<Analysis>>, Box<Refusal>> {
    let analysis = match analyses.get_or_analyze(sql, catalog, options) {
        Ok(a) => a,
        Err(e) if allowance.shields().refuses_unanalysable() => {
            return Err(Box::new(unanalysable(&e)));
        }
        Err(_) => return Ok(None),
    };
    let n = analysis.statements.len();
    for (i, st) in analysis.statements.iter().enumerate() {
        let suffix = if n > 1 {
            format!(" (statement {} of {n})", i + 1)
        } else {
            String::new()
        };
        check(st, allowance, &suffix)?;
    }
    Ok(Some(analysis))
}

/// The leading keywords of a statement, for messages (`DELETE`, `CREATE TABLE`).
fn verb(st: &StatementAnalysis) -> String {
    let words: Vec<&str> = st.normalized.split_whitespace().take(2).collect();
    let first = words
        .first()
        .copied()
        .unwrap_or("statement")
        .to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "ALTER" | "DROP" | "SET" | "START" => match words.get(1) {
            Some(w) if w.chars().all(|c| c.is_ascii_alphabetic() || c == '_') => {
                format!("`{first} {}`", w.to_ascii_uppercase())
            }
            _ => format!("`{first}`"),
        },
        _ => format!("`{first}`"),
    }
}

/// Checks one statement. `what_suffix` situates it in a multi-statement
/// query (` (statement 2 of 3)`).
pub fn check(
    st: &StatementAnalysis,
    allowance: &Allowance,
    what_suffix: &str,
) -> Result<(), Box<Refusal>> {
    let shields = allowance.shields();
    let what = format!("{}{what_suffix}", verb(st));

    if st.class.runs_server_code() {
        for shield in [Shield::Write, Shield::Ddl] {
            if shields.is_in_force(&shield) {
                return Err(Box::new(by_shield(allowance, shield, &what)));
            }
        }
    }
    let privilege_change = st.class.is_dcl()
        || setting_names(st).any(|n| setting_shield(n) == Some(SettingShield::Ddl));
    let maintenance = matches!(
        st.class,
        StatementClass::Vacuum | StatementClass::Analyze | StatementClass::Other(_)
    );
    if (privilege_change || st.is_ddl() || maintenance) && shields.blocks_ddl() {
        return Err(Box::new(by_shield(allowance, Shield::Ddl, &what)));
    }
    let writes = st.is_write()
        || st.locks
        || matches!(st.class, StatementClass::Lock { mode } if !mode.is_read());
    if writes && shields.blocks_write() {
        return Err(Box::new(by_shield(allowance, Shield::Write, &what)));
    }
    if st.unbounded_write && shields.blocks_unbounded_write() {
        return Err(Box::new(by_shield(
            allowance,
            Shield::UnboundedWrite,
            &what,
        )));
    }
    if shields.blocks_write() && st.lifts_read_only {
        return Err(Box::new(by_shield(allowance, Shield::Write, &what)));
    }

    if let Some(custom) =
        setting_names(st).find(|n| setting_shield(n) == Some(SettingShield::Custom))
        && let Ok(set_config) = "set_config".parse::<FunctionName>()
        && shields.blocks_function(&set_config, true)
    {
        return Err(Box::new(by_shield(
            allowance,
            Shield::Function(set_config),
            &format!("changing the custom setting {custom}{what_suffix}"),
        )));
    }

    for f in &st.functions {
        let bare = f.rsplit('.').next().unwrap_or(f);
        // Constant `set_config` calls are judged as the `SET` they are.
        if bare == "set_config" && !st.settings.is_empty() {
            continue;
        }
        let builtin = is_dangerous_function(bare);
        let candidates = [f.as_str(), bare];
        for name in candidates {
            let Ok(parsed) = name.parse::<FunctionName>() else {
                continue;
            };
            if shields.blocks_function(&parsed, builtin && name == bare) {
                return Err(Box::new(by_shield(
                    allowance,
                    Shield::Function(parsed),
                    &format!("calling {name}(){what_suffix}"),
                )));
            }
        }
    }

    let sensitive = shields.in_force().filter_map(|s| match s {
        Shield::Table(t) => Some(t.clone()),
        _ => None,
    });
    for table in sensitive {
        let touched = st
            .tables_read
            .iter()
            .chain(st.tables_written.iter())
            .any(|t| match &t.schema {
                Some(schema) => *schema == table.schema && t.name == table.table,
                // Not resolved through the catalog: the same name in any
                // schema counts (fail closed).
                None => t.name == table.table,
            });
        if touched {
            let what = format!("access to {table}{what_suffix}");
            return Err(Box::new(by_shield(
                allowance,
                Shield::Table(TableName::new(&table.schema, &table.table)),
                &what,
            )));
        }
    }

    if let StatementClass::CopyTo {
        target: CopyTarget::Stdout,
        format,
    } = &st.class
        && let Err(e) = format.rows()
    {
        return Err(Box::new(plain(
            format!("COPY refused{what_suffix}: {e}"),
            match format {
                CopyFormat::Binary => "use COPY ... TO STDOUT WITH (FORMAT csv)",
                _ => "use COPY ... TO STDOUT with the text or csv format and default options",
            },
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_policy::{Identity, Policy, PolicyInput, decide};
    use periscope_sql::{AnalyzeOptions, StaticCatalog, analyze};

    const POLICY: &str = r#"
[[connection]]
name = "pg-prod"
kind = "postgres"
host = "db"
database = "shop"
user = "u"
[connection.data_policy]
sensitive_tables = ["payments.cards"]
blocked_functions = ["pg_sleep"]

[[role]]
name = "dev"
connections = ["pg-prod"]
may_lift = ["write", "ddl", "function:pg_read_file", "table:payments.cards"]
approvers = ["lead"]

[[role]]
name = "lead"
"#;

    fn allowance() -> Allowance {
        let policy = Policy::parse(POLICY, "t.toml").unwrap();
        decide(&PolicyInput {
            policy: &policy,
            identity: &Identity::new("alice", ["dev"]),
            connection: "pg-prod",
            grants: &[],
            now: time::OffsetDateTime::UNIX_EPOCH,
        })
        .allowance()
        .unwrap()
        .clone()
    }

    fn refused(sql: &str) -> Option<(Option<String>, String)> {
        let mut catalog = StaticCatalog::new();
        catalog.add_table("public", "customers", &["id", "email"]);
        catalog.add_table("payments", "cards", &["id", "number"]);
        let analysis = analyze(sql, &catalog, &AnalyzeOptions::default()).unwrap();
        let a = allowance();
        for st in &analysis.statements {
            if let Err(r) = check(st, &a, "") {
                return Some((r.shield.map(|s| s.to_string()), r.message));
            }
        }
        None
    }

    #[test]
    fn each_class_is_stopped_by_its_shield() {
        let cases = [
            ("INSERT INTO customers VALUES (1, 'a')", "write"),
            ("UPDATE customers SET email = 'x' WHERE id = 1", "write"),
            ("DELETE FROM customers", "write"),
            (
                "MERGE INTO customers c USING customers d ON c.id = d.id WHEN MATCHED THEN DELETE",
                "write",
            ),
            ("CREATE TABLE t (a int)", "ddl"),
            ("GRANT SELECT ON customers TO public", "ddl"),
            ("COPY customers FROM STDIN", "write"),
            ("COPY customers TO PROGRAM 'cat'", "write"),
            ("DO $$ BEGIN END $$", "write"),
            (
                "WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d",
                "write",
            ),
            ("SELECT * FROM customers FOR UPDATE", "write"),
            ("SELECT nextval('s')", "write"),
            ("SET default_transaction_read_only = off", "write"),
            (
                "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                "write",
            ),
            ("BEGIN READ WRITE", "write"),
            (
                "SELECT pg_read_file('/etc/passwd')",
                "function:pg_read_file",
            ),
            ("SELECT pg_catalog.pg_ls_dir('.')", "function:pg_ls_dir"),
            ("SELECT lo_import('/etc/passwd')", "write"),
            ("SELECT pg_sleep(1)", "function:pg_sleep"),
            (
                "SELECT set_config('x.y', (SELECT email FROM customers), false)",
                "function:set_config",
            ),
            ("SELECT number FROM payments.cards", "table:payments.cards"),
            ("VACUUM customers", "ddl"),
        ];
        for (sql, shield) in cases {
            let (got, message) = refused(sql).unwrap_or_else(|| panic!("{sql} passed"));
            assert_eq!(got.as_deref(), Some(shield), "{sql}: {message}");
        }
        let (shield, message) = refused("COPY customers TO STDOUT (FORMAT binary)").unwrap();
        assert_eq!(shield, None);
        assert!(message.contains("binary COPY"), "{message}");
    }

    #[test]
    fn reads_pass() {
        for sql in [
            "SELECT email FROM customers",
            "BEGIN",
            "BEGIN READ ONLY",
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "SET search_path TO public",
            "RESET default_transaction_read_only",
            "COPY customers TO STDOUT WITH (FORMAT csv, HEADER)",
            "SHOW search_path",
            "EXPLAIN SELECT * FROM customers",
            "SELECT pg_catalog.pg_get_viewdef(1)",
        ] {
            assert_eq!(refused(sql), None, "{sql}");
        }
    }

    #[test]
    fn constant_set_config_follows_the_rules_of_set() {
        // Harmless built-in settings pass, as `SET` does: pg_dump, pgAdmin
        // and asyncpg send these when they connect.
        for sql in [
            "SELECT pg_catalog.set_config('search_path', '', false)",
            "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings \
             WHERE name = 'restrict_nonsystem_relation_kind'",
            "SELECT set_config('bytea_output','hex',false) FROM pg_show_all_settings() \
             WHERE name = 'bytea_output'",
            "SELECT current_setting('jit') AS cur, set_config('jit', 'off', false) AS new",
            "SELECT set_config('jit', $1, false)",
            "SET jit = off",
            "SET LOCAL statement_timeout = 0",
        ] {
            assert_eq!(refused(sql), None, "{sql}");
        }
        let cases = [
            // The backstop and privileges, as for SET.
            (
                "SELECT set_config('default_transaction_read_only', 'off', false)",
                "write",
            ),
            (
                "SELECT set_config('transaction_read_only', 'off', true)",
                "write",
            ),
            ("SELECT set_config('role', 'postgres', false)", "ddl"),
            (
                "SELECT set_config('session_authorization', 'postgres', false)",
                "ddl",
            ),
            ("SET ROLE postgres", "ddl"),
            // Custom settings: what row-level security reads, and where a
            // computed value would wait to be read back.
            (
                "SELECT set_config('app.tenant', '42', false)",
                "function:set_config",
            ),
            ("SET app.tenant = '42'", "function:set_config"),
            ("SET LOCAL app.tenant TO 42", "function:set_config"),
            // Values that are not constants stay refused as a function.
            (
                "SELECT set_config('jit', (SELECT email FROM customers LIMIT 1), false)",
                "function:set_config",
            ),
            (
                "SELECT set_config('search_path', $1, false)",
                "function:set_config",
            ),
            ("SELECT set_config($1, 'off', false)", "function:set_config"),
        ];
        for (sql, shield) in cases {
            let (got, message) = refused(sql).unwrap_or_else(|| panic!("{sql} passed"));
            assert_eq!(got.as_deref(), Some(shield), "{sql}: {message}");
        }
        let (_, message) = refused("SET app.tenant = '42'").unwrap();
        assert!(
            message.starts_with("changing the custom setting app.tenant blocked by shield"),
            "{message}"
        );
    }

    #[test]
    fn lifting_set_config_allows_custom_settings() {
        let policy = POLICY.replace(
            "may_lift = [\"write\"",
            "may_lift = [\"function:set_config\", \"write\"",
        );
        let policy = Policy::parse(&policy, "t.toml").unwrap();
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let grant = periscope_policy::Grant {
            id: "gr_1".into(),
            request_id: "req_1".into(),
            identity: "alice".into(),
            connection: "pg-prod".into(),
            lifts: vec![Shield::Function("set_config".parse().unwrap())],
            role: "dev".into(),
            starts_at: now,
            expires_at: now + time::Duration::hours(1),
            revoked_at: None,
            revoked_by: None,
            break_glass: false,
            reason: "test".into(),
            approvers: Vec::new(),
        };
        let a = decide(&PolicyInput {
            policy: &policy,
            identity: &Identity::new("alice", ["dev"]),
            connection: "pg-prod",
            grants: std::slice::from_ref(&grant),
            now,
        })
        .allowance()
        .unwrap()
        .clone();
        let catalog = StaticCatalog::new();
        for sql in [
            "SET app.tenant = '42'",
            "SELECT set_config('app.tenant', '42', false)",
            "SELECT set_config('x.y', now()::text, false)",
        ] {
            let analysis = analyze(sql, &catalog, &AnalyzeOptions::default()).unwrap();
            assert_eq!(check(&analysis.statements[0], &a, ""), Ok(()), "{sql}");
        }
    }

    #[test]
    fn access_share_lock_is_a_read_and_stronger_locks_are_writes() {
        assert_eq!(
            refused("LOCK TABLE public.customers IN ACCESS SHARE MODE"),
            None
        );
        for sql in [
            "LOCK TABLE public.customers IN ROW EXCLUSIVE MODE",
            "LOCK TABLE public.customers",
            "LOCK public.customers IN SHARE MODE",
        ] {
            assert_eq!(
                refused(sql).and_then(|r| r.0).as_deref(),
                Some("write"),
                "{sql}"
            );
        }
        // A sensitive table stays behind its shield, whatever the lock.
        assert_eq!(
            refused("LOCK TABLE payments.cards IN ACCESS SHARE MODE")
                .and_then(|r| r.0)
                .as_deref(),
            Some("table:payments.cards")
        );
    }

    #[test]
    fn the_hint_has_the_request_command() {
        let a = allowance();
        let catalog = StaticCatalog::new();
        let sql = "DELETE FROM customers WHERE id = 1";
        let analysis = analyze(sql, &catalog, &AnalyzeOptions::default()).unwrap();
        let r = check(&analysis.statements[0], &a, " (statement 1 of 1)").unwrap_err();
        assert_eq!(r.kind, RefusalKind::Forbidden);
        assert!(
            r.message
                .contains("`DELETE` (statement 1 of 1) blocked by shield `write`"),
            "{}",
            r.message
        );
        assert!(
            r.hint
                .as_deref()
                .unwrap()
                .contains("periscope request pg-prod --lift write --for 30m --reason \"...\""),
            "{:?}",
            r.hint
        );
    }
}
