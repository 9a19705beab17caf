//! The SQLite pool: WAL journal, a busy timeout, foreign keys on, migrations applied.

use std::{path::Path, str::FromStr};

use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use streamhub_conf::DatabaseConf;

use crate::{DataError, create_dir};

/// Migrations from the workspace's `migrations/`, embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A migrated SQLite pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Connects to `conf.source`, creating the file and its directory if needed, and applies
    /// every pending migration.
    pub async fn open(conf: &DatabaseConf) -> Result<Self, DataError> {
        let open_error = |reason: String| DataError::Open {
            source_url: conf.source.clone(),
            reason,
        };
        let options = SqliteConnectOptions::from_str(&conf.source)
            .map_err(|err| open_error(err.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across process crashes in WAL mode; only a power loss can
            // drop the last transactions, and those paths that promise more fsync themselves.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(conf.busy_timeout)
            .foreign_keys(true);
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty() && *dir != Path::new(":memory:"))
        {
            create_dir(dir, "data.database.source").await?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(conf.max_connections)
            .connect_with(options)
            .await
            .map_err(|err| open_error(err.to_string()))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|err| DataError::Migrate(err.to_string()))?;
        Ok(Self { pool })
    }

    /// The pool, for repositories in this crate.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Waits for every connection to return and closes them.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn open_creates_the_file_and_sets_the_pragmas() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested/dir/streamhub.db");
        let conf = DatabaseConf {
            source: format!("sqlite://{}", path.display()),
            max_connections: 2,
            busy_timeout: Duration::from_millis(1500),
        };
        let database = Database::open(&conf).await.expect("open");
        assert!(path.is_file(), "database file created with its directories");

        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(database.pool())
            .await
            .expect("journal_mode");
        assert_eq!(journal, "wal");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(database.pool())
            .await
            .expect("foreign_keys");
        assert_eq!(foreign_keys, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(database.pool())
            .await
            .expect("busy_timeout");
        assert_eq!(busy, 1500);
        let migrations_table: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
        )
        .fetch_one(database.pool())
        .await
        .expect("sqlite_master");
        assert_eq!(migrations_table, 1, "the migrator ran");
        database.close().await;
    }

    #[tokio::test]
    async fn an_unusable_source_is_reported_with_its_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let conf = DatabaseConf {
            source: format!("sqlite://{}/sub/db.sqlite", blocker.display()),
            ..DatabaseConf::default()
        };
        let err = Database::open(&conf)
            .await
            .expect_err("cannot create a dir under a file");
        assert!(err.to_string().contains("data.database.source"), "{err}");
    }
}
