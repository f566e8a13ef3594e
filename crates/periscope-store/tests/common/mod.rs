//! Runs each store test body against both backends: a fresh SQLite file and a fresh
//! database in a throwaway PostgreSQL cluster.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use periscope_store::{AuditTime, Clock, Store, StoreOptions};
use periscope_testkit::PgCluster;

/// What every test body returns.
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A fresh store plus whatever keeps its database alive.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _keep: Keep,
}

enum Keep {
    Sqlite(tempfile::TempDir),
    Postgres(PgCluster),
}

impl TestDb {
    pub async fn sqlite() -> Result<TestDb, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let url = periscope_store::sqlite_url(&dir.path().join("periscope.db"))?;
        let store = Store::open(&url, &StoreOptions::default()).await?;
        Ok(TestDb {
            store,
            url,
            _keep: Keep::Sqlite(dir),
        })
    }

    pub async fn postgres() -> Result<TestDb, Box<dyn std::error::Error + Send + Sync>> {
        let cluster = tokio::task::spawn_blocking(
            || -> Result<PgCluster, periscope_testkit::TestkitError> {
                let cluster = PgCluster::start()?;
                cluster.create_database("periscope")?;
                Ok(cluster)
            },
        )
        .await??;
        let url = cluster.url("periscope");
        let store = Store::open(&url, &StoreOptions::default()).await?;
        Ok(TestDb {
            store,
            url,
            _keep: Keep::Postgres(cluster),
        })
    }

    /// A second, independent `Store` on the same database: another replica.
    pub async fn replica(&self) -> Store {
        Store::open(&self.url, &StoreOptions::default())
            .await
            .expect("a second store opens the same database")
    }

    /// A raw connection, for tests that must reach under the store's API.
    pub async fn raw(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("raw connection to the test database")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self._keep, Keep::Postgres(_))
    }
}

/// `2026-11-29T05:00:00.000000Z` plus `secs` seconds.
pub fn t(secs: i64) -> AuditTime {
    AuditTime::from_unix_micros(1_795_928_400_000_000 + secs * 1_000_000).unwrap()
}

/// A clock the test moves by hand; starts at `t(0)`.
pub fn manual_clock() -> (Clock, Arc<AtomicI64>) {
    let secs = Arc::new(AtomicI64::new(0));
    let read = secs.clone();
    (Arc::new(move || t(read.load(Ordering::SeqCst))), secs)
}

/// Declares `NAME::sqlite` and `NAME::postgres`, each running `async fn NAME(db:
/// TestDb) -> TestResult` on a fresh database of that backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> $crate::common::TestResult {
                super::$name($crate::common::TestDb::sqlite().await?).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> $crate::common::TestResult {
                super::$name($crate::common::TestDb::postgres().await?).await
            }
        }
    )+};
}
