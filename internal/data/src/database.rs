//! The SQLite pool: WAL journal, a busy timeout, foreign keys on, migrations applied; and
//! what every repository on it shares: [`database_error`] classifies its failures,
//! [`database_span!`] and [`in_span`] trace its operations.

use std::{future::Future, path::Path, str::FromStr};

use futures_util::future::BoxFuture;

use sqlx::{
    SqlitePool,
    postgres::PgDatabaseError,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use streamhub_biz::Error;
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
            // FULL: every commit is on disk before it returns, so whatever the server
            // acknowledges (an upload's row, a GetUploadStatus offset, log entries, edits)
            // survives a power loss, not only a process crash as with NORMAL. Writers
            // group-commit, so this costs one fsync per batch, not per row.
            .synchronous(SqliteSynchronous::Full)
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

/// A database failure in the domain's words: one a retry may cure (the database is busy or
/// locked past the busy timeout, no connection could be had, the connection broke, the server
/// is shutting down or out of connections, a serialization conflict) is
/// [`Error::StorageUnavailable`]; anything else is [`Error::Storage`]. `context` says what was
/// being done, for the log.
pub(crate) fn database_error(context: &str, err: sqlx::Error) -> Error {
    let transient = match &err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => postgres_transient(pg.code()),
            None => db.code().is_some_and(|code| sqlite_transient(&code)),
        },
        _ => false,
    };
    let detail = format!("{context}: {err}");
    if transient {
        Error::StorageUnavailable(detail)
    } else {
        Error::Storage(detail)
    }
}

/// SQLite's "busy" (5) and "locked" (6), also as extended codes, which carry the primary code
/// in their low byte.
fn sqlite_transient(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// PostgreSQL's SQLSTATEs a retry may cure: class 08 (connection exception), class 53
/// (insufficient resources: too many connections, out of memory or disk), 57P01–57P03 (the
/// server is shutting down, crashed or starting), 40001 and 40P01 (serialization failure,
/// deadlock: the transaction was rolled back and may be run again).
fn postgres_transient(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

/// The span of one repository operation, `db.<store>.<operation>` (the caller's `$name`):
/// a child of the call that asked for it, carrying the attributes every database span has
/// (`db.system`, `db.operation`) and the caller's own fields, in `tracing::info_span!` syntax.
/// A macro because a span's name and fields are fixed at compile time. `system = "postgresql",`
/// first names another database than SQLite.
macro_rules! database_span {
    (system = $system:literal, $name:literal, $operation:literal $(, $($fields:tt)+)?) => {
        tracing::info_span!(
            $name,
            db.system = $system,
            db.operation = $operation
            $(, $($fields)+)?
        )
    };
    ($name:literal, $operation:literal $(, $($fields:tt)+)?) => {
        tracing::info_span!(
            $name,
            db.system = "sqlite",
            db.operation = $operation
            $(, $($fields)+)?
        )
    };
}
pub(crate) use database_span;

/// `work` run inside `span`, boxed as the repository traits return their futures.
pub(crate) fn in_span<'a, T>(
    span: tracing::Span,
    work: impl Future<Output = T> + Send + 'a,
) -> BoxFuture<'a, T> {
    Box::pin(tracing::Instrument::instrument(work, span))
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
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(database.pool())
            .await
            .expect("synchronous");
        assert_eq!(
            synchronous, 2,
            "FULL: a commit is on disk before it returns"
        );
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

    #[test]
    fn busy_locked_and_lost_connections_are_unavailable_other_failures_are_not() {
        for code in ["5", "6", "261", "517", "262"] {
            assert!(sqlite_transient(code), "SQLite {code}");
        }
        for code in ["1", "19", "2067", "SQLITE"] {
            assert!(!sqlite_transient(code), "SQLite {code}");
        }
        for sqlstate in [
            "08006", "08001", "53300", "57P01", "57P03", "40001", "40P01",
        ] {
            assert!(postgres_transient(sqlstate), "PostgreSQL {sqlstate}");
        }
        for sqlstate in ["23505", "42P01", "22003", "57014"] {
            assert!(!postgres_transient(sqlstate), "PostgreSQL {sqlstate}");
        }
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            database_error("x", sqlx::Error::Io(io)),
            Error::StorageUnavailable(_)
        ));
        assert!(matches!(
            database_error("x", sqlx::Error::RowNotFound),
            Error::Storage(_)
        ));
    }
}
