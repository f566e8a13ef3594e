//! Opening a store: URL forms, connection settings, migrations, write transactions.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

use periscope_policy::AuditDurability;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, Connection, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::StoreError;
use crate::live_chain::{ChainPause, LiveChain};
use crate::sqlite_chain::SqliteFile;

/// File name of the embedded database inside the data directory. SQLite keeps two
/// companions beside it while open: `periscope.db-wal` and `periscope.db-shm`.
pub const SQLITE_FILE_NAME: &str = "periscope.db";

/// Key of the PostgreSQL advisory lock that serialises appends to the audit chain
/// across every replica sharing the database (the ASCII bytes of `periscop`).
pub(crate) const AUDIT_CHAIN_LOCK: i64 = 0x7065_7269_7363_6f70;

/// One step of the schema: the same SQL on both backends where it can be.
struct SchemaStep {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl SchemaStep {
    const fn shared(version: i64, name: &'static str, sql: &'static str) -> SchemaStep {
        SchemaStep {
            version,
            name,
            sqlite: sql,
            postgres: sql,
        }
    }
}

/// The schema, applied in order.
const MIGRATIONS: &[SchemaStep] = &[
    SchemaStep::shared(1, "core", include_str!("../migrations/0001_core.sql")),
    SchemaStep::shared(
        2,
        "requests grants",
        include_str!("../migrations/0002_requests_grants.sql"),
    ),
    SchemaStep {
        version: 3,
        name: "audit indexes",
        sqlite: include_str!("../migrations/0003_audit_indexes.sqlite.sql"),
        postgres: include_str!("../migrations/0003_audit_indexes.postgres.sql"),
    },
    SchemaStep::shared(4, "sso", include_str!("../migrations/0004_sso.sql")),
    SchemaStep::shared(
        5,
        "discovered tags",
        include_str!("../migrations/0005_discovered_tags.sql"),
    ),
    SchemaStep {
        version: 6,
        name: "session index",
        sqlite: include_str!("../migrations/0006_session_index.sqlite.sql"),
        postgres: include_str!("../migrations/0006_session_index.postgres.sql"),
    },
];

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One embedded file: the default, for a single gateway.
    Sqlite,
    /// A shared server: for several gateway replicas.
    Postgres,
}

/// Connection settings. The defaults suit a gateway; tests and tools may shrink them.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Most connections the pool opens. Readers and the audit writer share them; on
    /// SQLite writes are serialised anyway, so a few suffice.
    pub max_connections: u32,
    /// How long a SQLite write waits for another process holding the file's write
    /// lock (e.g. a CLI command run beside the gateway) before failing.
    pub busy_timeout: Duration,
    /// How long to wait for a free pool connection before failing.
    pub acquire_timeout: Duration,
    /// Which failure a committed write (an acknowledged audit event) survives
    /// (`[audit] durability`).
    pub durability: AuditDurability,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
            durability: AuditDurability::default(),
        }
    }
}

/// Handle to the gateway's database; cheap to clone (clones share one pool).
///
/// Every method is one transaction: state changes and the audit events that record
/// them commit together or not at all.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer per file. Writers of this process queue here, in
    /// order, instead of spinning on the file lock; the busy timeout still covers
    /// writers in other processes. `None` on PostgreSQL.
    write_gate: Option<Arc<Mutex<()>>>,
    /// The embedded file, for the audit writer's own connection; `None` on
    /// PostgreSQL.
    sqlite_file: Option<SqliteFile>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to
    /// date. Accepted forms:
    ///
    /// - `sqlite:///absolute/path/periscope.db` or `sqlite://relative/path.db`
    ///   (the file is created when missing);
    /// - `postgres://user:password@host:port/database` (also `postgresql://`).
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        Store::open_at_schema(url, options, i64::MAX).await
    }

    /// [`Store::open`], migrating the schema up to `version` only (tests start
    /// from an older schema).
    async fn open_at_schema(
        url: &str,
        options: &StoreOptions,
        version: i64,
    ) -> Result<Store, StoreError> {
        let backend = backend_of(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        install_drivers();
        let connect: AnyConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("invalid database URL: {e}")))?;
        if backend == Backend::Sqlite {
            // WAL is a property of the file, and switching to it needs an exclusive
            // lock: set it once, on a lone connection, before the pool exists.
            let mut conn = sqlx::AnyConnection::connect_with(&connect).await?;
            sqlite_session_settings(&mut conn, options.busy_timeout, options.durability).await?;
            let mode: (String,) = sqlx::query_as("PRAGMA journal_mode = WAL")
                .fetch_one(&mut conn)
                .await?;
            if !mode.0.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Invalid(format!(
                    "SQLite refused WAL mode (journal_mode is {}); is the file on a network file system?",
                    mode.0
                )));
            }
            conn.close().await?;
        }
        let busy_timeout = options.busy_timeout;
        let durability = options.durability;
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        sqlite_session_settings(conn, busy_timeout, durability).await?;
                    } else if durability == AuditDurability::ProcessCrash {
                        // A commit returns once the server has it in memory; its
                        // WAL writer flushes it within a few hundred milliseconds.
                        conn.execute("SET synchronous_commit = off").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let sqlite_file = match &write_gate {
            Some(write_gate) => {
                let path = url
                    .parse::<SqliteConnectOptions>()
                    .map_err(|e| StoreError::Invalid(format!("invalid database URL: {e}")))?
                    .get_filename()
                    .to_path_buf();
                // An in-memory database has no file another connection could open.
                path.is_file().then(|| SqliteFile {
                    path,
                    busy_timeout,
                    durability,
                    write_gate: write_gate.clone(),
                })
            }
            None => None,
        };
        let store = Store {
            pool,
            backend,
            write_gate,
            sqlite_file,
        };
        store.migrate_up_to(version).await?;
        if let Some(file) = store.sqlite_file.clone() {
            // Events acknowledged by a gateway that stopped before indexing
            // them (a crash) go into the index before anything reads it.
            tokio::task::spawn_blocking(move || crate::live_chain::recover(&file))
                .await
                .map_err(|e| {
                    StoreError::Backend(Arc::new(std::io::Error::other(e.to_string())))
                })??;
        }
        Ok(store)
    }

    /// Opens the embedded database file at `path` (created when missing).
    pub async fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        Store::open(&sqlite_url(path)?, options).await
    }

    /// Opens `periscope.db` in the gateway's data directory: what `periscope up` uses
    /// when no database URL is configured.
    pub async fn open_data_dir(dir: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        Store::open_sqlite(&dir.join(SQLITE_FILE_NAME), options).await
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the audit writer opens its own connection, on SQLite.
    pub(crate) fn sqlite_file(&self) -> Option<&SqliteFile> {
        self.sqlite_file.as_ref()
    }

    /// The live audit chain of this store's file, if one runs in this
    /// process (see `live_chain`): audit reads wait for its index, and
    /// write transactions that append pause it.
    pub(crate) fn live_chain(&self) -> Option<Arc<LiveChain>> {
        self.sqlite_file
            .as_ref()
            .and_then(|file| crate::live_chain::running(&file.path))
    }

    /// Waits until every audit event acknowledged so far can be read
    /// through the pool (see `live_chain`); at once without a live chain.
    pub(crate) async fn audit_readable(&self) -> Result<(), StoreError> {
        match self.live_chain() {
            Some(chain) => chain.indexed_to_head().await,
            None => Ok(()),
        }
    }

    /// Closes every pooled connection; on SQLite this also folds the WAL back into
    /// the main file. Further calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Applies pending migrations up to `version`. Safe when several replicas
    /// start at once: the migrator takes its own database lock.
    async fn migrate_up_to(&self, version: i64) -> Result<(), StoreError> {
        // An upgrade may rebuild the audit table (schema 3 on SQLite): say so
        // before a start that can take minutes on a large log. A new database
        // has no migrations table yet, and nothing to say.
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await
            .unwrap_or(None);
        let target = MIGRATIONS
            .iter()
            .map(|step| step.version)
            .filter(|&v| v <= version)
            .max()
            .unwrap_or(0);
        if let Some(applied) = applied
            && applied < target
        {
            tracing::info!(
                from = applied,
                to = target,
                "upgrading the store's schema (on SQLite the audit table is rebuilt, about 9 s per million events)"
            );
        }
        let migrations = MIGRATIONS
            .iter()
            .filter(|step| step.version <= version)
            .map(|step| {
                let sql = match self.backend {
                    Backend::Sqlite => step.sqlite,
                    Backend::Postgres => step.postgres,
                };
                Migration::new(
                    step.version,
                    Cow::Borrowed(step.name),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    /// Starts a write transaction. On SQLite it takes the file's write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write inside never fails half-way on a
    /// lock upgrade; on PostgreSQL rows are locked as they are touched.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            backend: self.backend,
            chain_locked: false,
            live: self.live_chain(),
            pause: None,
            _gate: gate,
        })
    }
}

/// A write transaction in progress; rolled back if dropped without
/// [`WriteTx::commit`].
pub(crate) struct WriteTx {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) backend: Backend,
    chain_locked: bool,
    /// The store's live chain, paused by [`WriteTx::lock_audit_chain`].
    live: Option<Arc<LiveChain>>,
    pub(crate) pause: Option<ChainPause>,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Makes this transaction the only audit appender until it ends. PostgreSQL: a
    /// transaction-scoped advisory lock, released by commit or rollback, shared by
    /// every replica on the database. SQLite: already exclusive since `BEGIN
    /// IMMEDIATE`.
    pub(crate) async fn lock_audit_chain(&mut self) -> Result<(), StoreError> {
        if self.chain_locked {
            return Ok(());
        }
        if self.backend == Backend::Sqlite {
            // The write gate already keeps other writers of this process out;
            // a live chain must also stop linking until this commits.
            self.pause = self.live.as_ref().map(LiveChain::pause);
            self.chain_locked = true;
            return Ok(());
        }
        // The function returns `void`, which the generic driver cannot decode:
        // count the one row instead.
        sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS chain_lock")
            .bind(AUDIT_CHAIN_LOCK)
            .execute(&mut *self.tx)
            .await?;
        self.chain_locked = true;
        Ok(())
    }

    /// Commits: only now is anything written visible or durable.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        let WriteTx { tx, pause, .. } = self;
        tx.commit().await.map_err(StoreError::from)?;
        if let Some(pause) = pause {
            pause.committed();
        }
        Ok(())
    }
}

/// Per-connection SQLite settings (they do not persist in the file).
async fn sqlite_session_settings(
    conn: &mut sqlx::AnyConnection,
    busy_timeout: Duration,
    durability: AuditDurability,
) -> Result<(), sqlx::Error> {
    let millis = busy_timeout.as_millis().min(i32::MAX as u128);
    // `FULL`: in WAL mode, every commit is fsynced before it returns, so an
    // acknowledged audit event survives power loss, not just a process crash.
    // `NORMAL`: the commit is in the WAL file (the OS's page cache) when it
    // returns, which a crash of this process cannot undo.
    let synchronous = match durability {
        AuditDurability::PowerLoss => "FULL",
        AuditDurability::ProcessCrash => "NORMAL",
    };
    let settings = format!(
        "PRAGMA busy_timeout = {millis}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous};"
    );
    conn.execute(sqlx::AssertSqlSafe(settings)).await?;
    Ok(())
}

fn install_drivers() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(sqlx::any::install_default_drivers);
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        _ => Err(StoreError::Invalid(format!(
            "unsupported database URL scheme {scheme:?}: use sqlite:///path/to/periscope.db \
             or postgres://user:password@host:port/database"
        ))),
    }
}

/// The `sqlite://` URL of a file path, escaping the characters a URL would misread.
pub fn sqlite_url(path: &Path) -> Result<String, StoreError> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| StoreError::Invalid(format!("cannot resolve {}: {e}", path.display())))?
            .join(path)
    };
    let text = absolute.to_str().ok_or_else(|| {
        StoreError::Invalid(format!(
            "database path {} is not valid UTF-8",
            absolute.display()
        ))
    })?;
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '?' => escaped.push_str("%3F"),
            '#' => escaped.push_str("%23"),
            ' ' => escaped.push_str("%20"),
            c => escaped.push(c),
        }
    }
    Ok(format!("sqlite://{escaped}?mode=rwc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous_of(durability: AuditDurability) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            durability,
            ..StoreOptions::default()
        };
        let store = Store::open_data_dir(dir.path(), &options).await.unwrap();
        let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        store.close().await;
        level
    }

    #[tokio::test]
    async fn sqlite_flushes_each_commit_unless_told_process_crash_is_enough() {
        // 2 = FULL (fsync per commit), 1 = NORMAL (WAL write, fsync at checkpoints).
        assert_eq!(synchronous_of(AuditDurability::PowerLoss).await, 2);
        assert_eq!(synchronous_of(AuditDurability::ProcessCrash).await, 1);
    }

    /// Column types and primary-key flags of `audit_events`, and the names of
    /// its explicit indexes.
    async fn audit_events_shape(store: &Store) -> (Vec<(String, String, i64)>, Vec<String>) {
        let columns: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, type, pk FROM pragma_table_info('audit_events')")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' \
             ORDER BY name",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        (columns, indexes.into_iter().map(|(n,)| n).collect())
    }

    #[tokio::test]
    async fn sqlite_schema_3_keeps_the_chain_and_checkpoints_of_an_older_file() {
        use periscope_audit::{AuditSigner, AuditTime, EventDraft, Start};
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(&dir.path().join(SQLITE_FILE_NAME)).unwrap();
        let options = StoreOptions::default();
        let signer = AuditSigner::from_seed(&[3; 32]);
        let time = |s: i64| AuditTime::from_unix_micros(s * 1_000_000).unwrap();

        // A file as schema 2 left it: events, a checkpoint, and the old indexes.
        let old = Store::open_at_schema(&url, &options, 2).await.unwrap();
        let (_, old_indexes) = audit_events_shape(&old).await;
        assert_eq!(old_indexes.len(), 5, "{old_indexes:?}");
        let drafts = (0..50)
            .map(|i| {
                EventDraft::new(
                    time(i),
                    ["alice", "bob"][i as usize % 2],
                    "query",
                    "pg-prod",
                )
                .with_details(serde_json::json!({"n": i}))
            })
            .collect();
        let written = old.append_audit(drafts).await.unwrap();
        let checkpoint = signer.sign_checkpoint(old.audit_head().await.unwrap(), time(60));
        old.add_checkpoint(&checkpoint).await.unwrap();
        old.close().await;

        let store = Store::open(&url, &options).await.unwrap();
        let (columns, indexes) = audit_events_shape(&store).await;
        assert!(
            columns.contains(&("seq".into(), "INTEGER".into(), 1)),
            "seq is the rowid: {columns:?}"
        );
        // Schema 3's two indexes, and migration 6's partial index of a
        // session's non-statement events.
        assert_eq!(
            indexes,
            [
                "audit_events_by_actor",
                "audit_events_by_session",
                "audit_events_by_time"
            ]
        );
        let tail = store.audit_tail(100).await.unwrap();
        assert_eq!(tail, written);
        assert_eq!(
            store.audit_checkpoints(None).await.unwrap(),
            vec![checkpoint]
        );
        let report = store
            .verify_audit(&[signer.verifier_key()], Start::Genesis)
            .await
            .unwrap();
        assert_eq!(
            (report.events_checked, report.checkpoints_verified),
            (50, 1)
        );
        // Searches still find what they did, and the chain goes on from its head.
        let bob = store
            .search_audit(&crate::AuditQuery {
                actor: Some("bob".into()),
                ..crate::AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(bob.len(), 25);
        let next = store
            .append_audit(vec![EventDraft::new(
                time(70),
                "carol",
                "session.start",
                "pg-prod",
            )])
            .await
            .unwrap();
        assert_eq!(next[0].seq, 51);
        assert_eq!(next[0].prev_hash, written[49].hash);
        // A checkpoint still needs its event: the rebuilt reference holds.
        let orphan = signer.sign_checkpoint(
            periscope_audit::Head {
                seq: 999,
                hash: next[0].hash,
            },
            time(80),
        );
        assert!(store.add_checkpoint(&orphan).await.is_err());
        store.close().await;
    }
}
