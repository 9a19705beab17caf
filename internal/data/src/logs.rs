//! [`SqliteLogRepo`]: log entries in the `logs` table.
//!
//! Reads are always bounded (`LIMIT`), so a follower catching up over millions of rows holds
//! one page at a time. Retention deletes in chunks, so it never holds the write lock for long
//! while writers wait.

use std::{collections::BTreeMap, time::SystemTime};

use sqlx::{Row as _, sqlite::SqliteRow};
use streamhub_biz::{
    Error, Result,
    logs::{
        Level, LogEntry, LogFilter, LogRepo, NewLogEntry, RepoFuture, from_unix_nanos, unix_nanos,
    },
};

use crate::{
    Database,
    database::{database_error, database_span, in_span},
};

/// Rows per INSERT statement: one statement per row costs a round trip to SQLite's thread
/// each, and 64 rows of 5 values stay far below SQLite's parameter limit.
const INSERT_ROWS: usize = 64;
/// Rows removed per retention transaction.
const DELETE_CHUNK: i64 = 10_000;

/// The SQLite implementation of [`LogRepo`].
#[derive(Debug, Clone)]
pub struct SqliteLogRepo {
    database: Database,
}

impl SqliteLogRepo {
    /// A repository over the (migrated) `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// A database failure of the log store: see [`database_error`].
fn database(err: sqlx::Error) -> Error {
    database_error("log store", err)
}

/// Stored data the log store cannot read back.
pub(crate) fn storage(detail: impl std::fmt::Display) -> Error {
    Error::Storage(detail.to_string())
}

const COLUMNS: &str = "id, service, level, message, timestamp, metadata";

fn entry_from_row(row: &SqliteRow) -> Result<LogEntry> {
    StoredRow {
        id: row.try_get("id").map_err(database)?,
        service: row.try_get("service").map_err(database)?,
        level: row.try_get("level").map_err(database)?,
        message: row.try_get("message").map_err(database)?,
        timestamp: row.try_get("timestamp").map_err(database)?,
        metadata: row.try_get("metadata").map_err(database)?,
    }
    .into_entry()
}

/// A row of the log store as every backend keeps it (level as its rank, time as Unix
/// nanoseconds, metadata as a JSON object); reading it back checks what only a damaged store
/// could have got wrong.
pub(crate) struct StoredRow {
    pub(crate) id: i64,
    pub(crate) service: String,
    pub(crate) level: i64,
    pub(crate) message: String,
    pub(crate) timestamp: i64,
    pub(crate) metadata: String,
}

impl StoredRow {
    pub(crate) fn into_entry(self) -> Result<LogEntry> {
        let level = self.level;
        let level = u8::try_from(level)
            .ok()
            .and_then(Level::from_rank)
            .ok_or_else(|| storage(format!("logs.level holds {level}, not a level")))?;
        let metadata: BTreeMap<String, String> =
            serde_json::from_str(&self.metadata).map_err(|err| {
                storage(format!(
                    "logs.metadata is not a JSON object of strings: {err}"
                ))
            })?;
        Ok(LogEntry {
            id: self.id,
            service: self.service,
            level,
            message: self.message,
            timestamp: from_unix_nanos(self.timestamp),
            metadata,
        })
    }
}

/// The `WHERE` clause of `filter` over `id` bounds ?1 (exclusive) and ?2 (inclusive), level ?3
/// and, when the filter names one, service ?4. Separate texts (rather than `?4 IS NULL OR …`)
/// let SQLite use the service index.
fn filtered(filter: &LogFilter) -> &'static str {
    if filter.service.is_some() {
        "id > ?1 AND id <= ?2 AND level >= ?3 AND service = ?4"
    } else {
        "id > ?1 AND id <= ?2 AND level >= ?3"
    }
}

impl LogRepo for SqliteLogRepo {
    fn append(&self, entries: Vec<NewLogEntry>) -> RepoFuture<'_, Vec<LogEntry>> {
        let span = database_span!(
            "db.logs.append",
            "INSERT",
            entries = i64::try_from(entries.len()).unwrap_or(i64::MAX)
        );
        in_span(span, async move {
            let mut tx = self.database.pool().begin().await.map_err(database)?;
            let mut stored = Vec::with_capacity(entries.len());
            let mut entries = entries.into_iter().peekable();
            while entries.peek().is_some() {
                let rows: Vec<NewLogEntry> = entries.by_ref().take(INSERT_ROWS).collect();
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO logs (service, level, message, timestamp, metadata) ",
                );
                let mut failure = None;
                insert.push_values(&rows, |mut values, entry| {
                    let timestamp = unix_nanos(entry.timestamp).unwrap_or_else(|| {
                        failure = Some(storage("a validated timestamp is out of range"));
                        0
                    });
                    let metadata = serde_json::to_string(&entry.metadata).unwrap_or_else(|err| {
                        failure = Some(storage(err));
                        String::new()
                    });
                    values
                        .push_bind(entry.service.clone())
                        .push_bind(i64::from(entry.level.rank()))
                        .push_bind(entry.message.clone())
                        .push_bind(timestamp)
                        .push_bind(metadata);
                });
                if let Some(err) = failure {
                    return Err(err);
                }
                insert.push(" RETURNING id");
                let mut ids: Vec<i64> = insert
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(database)?;
                // Rows go in in VALUES order with increasing ids; RETURNING promises no order.
                ids.sort_unstable();
                if ids.len() != rows.len() {
                    return Err(storage(format!(
                        "inserted {} log rows but got {} ids back",
                        rows.len(),
                        ids.len()
                    )));
                }
                stored.extend(
                    rows.into_iter()
                        .zip(ids)
                        .map(|(entry, id)| entry.with_id(id)),
                );
            }
            tx.commit().await.map_err(database)?;
            Ok(stored)
        })
    }

    fn page<'a>(
        &'a self,
        filter: &'a LogFilter,
        after_id: i64,
        up_to: i64,
        limit: u32,
    ) -> RepoFuture<'a, Vec<LogEntry>> {
        let span = database_span!("db.logs.page", "SELECT", after_id, limit = i64::from(limit));
        in_span(span, async move {
            let sql = format!(
                "SELECT {COLUMNS} FROM logs WHERE {} ORDER BY id LIMIT ?5",
                filtered(filter)
            );
            let rows = sqlx::query(&sql)
                .bind(after_id)
                .bind(up_to)
                .bind(i64::from(filter.min_level.rank()))
                .bind(filter.service.as_deref())
                .bind(i64::from(limit))
                .fetch_all(self.database.pool())
                .await
                .map_err(database)?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    fn tail_start<'a>(
        &'a self,
        filter: &'a LogFilter,
        count: u32,
        up_to: i64,
    ) -> RepoFuture<'a, Option<i64>> {
        let span = database_span!("db.logs.tail_start", "SELECT", count = i64::from(count));
        in_span(span, async move {
            let sql = format!(
                "SELECT min(id) FROM (SELECT id FROM logs WHERE {} ORDER BY id DESC LIMIT ?5)",
                filtered(filter)
            );
            sqlx::query_scalar::<_, Option<i64>>(&sql)
                .bind(0_i64)
                .bind(up_to)
                .bind(i64::from(filter.min_level.rank()))
                .bind(filter.service.as_deref())
                .bind(i64::from(count))
                .fetch_one(self.database.pool())
                .await
                .map_err(database)
        })
    }

    fn last_id(&self) -> RepoFuture<'_, i64> {
        let span = database_span!("db.logs.last_id", "SELECT");
        in_span(span, async move {
            // sqlite_sequence holds the highest id ever assigned, even if retention removed
            // it; max(id) covers a table that sqlite_sequence does not know yet.
            sqlx::query_scalar::<_, i64>(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'logs'), 0), \
                            coalesce((SELECT max(id) FROM logs), 0))",
            )
            .fetch_one(self.database.pool())
            .await
            .map_err(database)
        })
    }

    fn oldest_id(&self) -> RepoFuture<'_, Option<i64>> {
        let span = database_span!("db.logs.oldest_id", "SELECT");
        in_span(span, async move {
            sqlx::query_scalar::<_, Option<i64>>("SELECT min(id) FROM logs")
                .fetch_one(self.database.pool())
                .await
                .map_err(database)
        })
    }

    fn delete_older_than(&self, cutoff: SystemTime) -> RepoFuture<'_, u64> {
        let span = database_span!("db.logs.delete_older_than", "DELETE");
        in_span(span, async move {
            // Before the epoch nothing is stored; after 2262 everything is older.
            let cutoff = match unix_nanos(cutoff) {
                Some(nanos) => nanos,
                None if cutoff < SystemTime::UNIX_EPOCH => return Ok(0),
                None => i64::MAX,
            };
            self.delete_in_chunks(
                "DELETE FROM logs WHERE id IN \
                 (SELECT id FROM logs WHERE timestamp < ?1 LIMIT ?2)",
                cutoff,
            )
            .await
        })
    }

    fn delete_beyond(&self, keep: u64) -> RepoFuture<'_, u64> {
        let span = database_span!(
            "db.logs.delete_beyond",
            "DELETE",
            keep = i64::try_from(keep).unwrap_or(i64::MAX)
        );
        in_span(span, async move {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            let newest_to_delete: Option<i64> =
                sqlx::query_scalar("SELECT id FROM logs ORDER BY id DESC LIMIT 1 OFFSET ?")
                    .bind(keep)
                    .fetch_optional(self.database.pool())
                    .await
                    .map_err(database)?;
            let Some(newest_to_delete) = newest_to_delete else {
                return Ok(0);
            };
            self.delete_in_chunks(
                "DELETE FROM logs WHERE id IN \
                 (SELECT id FROM logs WHERE id <= ?1 ORDER BY id LIMIT ?2)",
                newest_to_delete,
            )
            .await
        })
    }
}

impl SqliteLogRepo {
    /// Runs `sql` (bound to `bound` and the chunk size) until it deletes less than a chunk.
    async fn delete_in_chunks(&self, sql: &str, bound: i64) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let chunk = sqlx::query(sql)
                .bind(bound)
                .bind(DELETE_CHUNK)
                .execute(self.database.pool())
                .await
                .map_err(database)?
                .rows_affected();
            deleted += chunk;
            if chunk < DELETE_CHUNK as u64 {
                return Ok(deleted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use streamhub_conf::DatabaseConf;

    use super::*;

    async fn repo() -> (SqliteLogRepo, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = DatabaseConf {
            source: format!("sqlite://{}", dir.path().join("logs.db").display()),
            ..DatabaseConf::default()
        };
        let database = Database::open(&conf).await.expect("open");
        (SqliteLogRepo::new(database), dir)
    }

    fn entry(service: &str, level: Level, at: SystemTime) -> NewLogEntry {
        let metadata = BTreeMap::from([("k".to_owned(), "v \"quoted\"".to_owned())]);
        NewLogEntry::new(
            service.to_owned(),
            level.as_str(),
            format!("{service} {level}"),
            Some(at),
            metadata,
            at,
        )
        .expect("valid")
    }

    fn ids(entries: &[LogEntry]) -> Vec<i64> {
        entries.iter().map(|e| e.id).collect()
    }

    #[tokio::test]
    async fn entries_round_trip_with_increasing_ids_and_filters_apply() {
        let (repo, _dir) = repo().await;
        let now = SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000, 42);
        let batch = vec![
            entry("api", Level::Debug, now),
            entry("db", Level::Warn, now),
            entry("api", Level::Error, now),
        ];
        let stored = repo.append(batch.clone()).await.expect("append");
        assert_eq!(ids(&stored), [1, 2, 3]);
        let all = LogFilter::default();
        let read = repo.page(&all, 0, i64::MAX, 10).await.expect("page");
        assert_eq!(read, stored, "what was written is what is read");
        assert_eq!(read[0].timestamp, now, "nanosecond timestamps survive");

        let api = LogFilter {
            service: Some("api".into()),
            min_level: Level::Debug,
        };
        assert_eq!(
            ids(&repo.page(&api, 0, i64::MAX, 10).await.expect("page")),
            [1, 3]
        );
        let warn = LogFilter {
            service: None,
            min_level: Level::Warn,
        };
        assert_eq!(
            ids(&repo.page(&warn, 0, i64::MAX, 10).await.expect("page")),
            [2, 3]
        );
        assert_eq!(ids(&repo.page(&all, 1, 2, 10).await.expect("page")), [2]);
        assert_eq!(
            ids(&repo.page(&all, 0, i64::MAX, 2).await.expect("page")),
            [1, 2]
        );
        assert_eq!(
            repo.tail_start(&all, 2, i64::MAX).await.expect("tail"),
            Some(2)
        );
        assert_eq!(repo.tail_start(&api, 1, 2).await.expect("tail"), Some(1));
        let none = LogFilter {
            service: Some("nobody".into()),
            min_level: Level::Debug,
        };
        assert_eq!(
            repo.tail_start(&none, 5, i64::MAX).await.expect("tail"),
            None
        );
        assert_eq!(repo.last_id().await.expect("last id"), 3);
    }

    #[tokio::test]
    async fn a_batch_larger_than_one_insert_statement_keeps_its_order() {
        let (repo, _dir) = repo().await;
        let now = SystemTime::now();
        let batch: Vec<NewLogEntry> = (0..INSERT_ROWS * 2 + 5)
            .map(|n| entry(&format!("s{n}"), Level::Info, now))
            .collect();
        let stored = repo.append(batch.clone()).await.expect("append");
        let read = repo
            .page(&LogFilter::default(), 0, i64::MAX, 1000)
            .await
            .expect("page");
        assert_eq!(read, stored);
        assert_eq!(ids(&read), (1..=batch.len() as i64).collect::<Vec<_>>());
        let services: Vec<&str> = read.iter().map(|e| e.service.as_str()).collect();
        let expected: Vec<String> = (0..batch.len()).map(|n| format!("s{n}")).collect();
        assert_eq!(
            services, expected,
            "each id belongs to the entry sent in that place"
        );
    }

    #[tokio::test]
    async fn retention_deletes_by_age_and_count_and_ids_are_never_reused() {
        let (repo, _dir) = repo().await;
        let now = SystemTime::now();
        let old = now - Duration::from_secs(3600);
        let mut batch = vec![entry("a", Level::Info, old); 3];
        batch.extend(vec![entry("a", Level::Info, now); 4]);
        repo.append(batch).await.expect("append");

        let cutoff = now - Duration::from_secs(60);
        assert_eq!(repo.delete_older_than(cutoff).await.expect("by age"), 3);
        assert_eq!(repo.delete_beyond(2).await.expect("by count"), 2);
        assert_eq!(repo.delete_beyond(2).await.expect("again"), 0);
        let left = repo
            .page(&LogFilter::default(), 0, i64::MAX, 10)
            .await
            .expect("page");
        assert_eq!(ids(&left), [6, 7]);

        assert_eq!(repo.delete_beyond(0).await.expect("everything"), 2);
        assert_eq!(repo.last_id().await.expect("last id"), 7, "remembered");
        let next = repo
            .append(vec![entry("a", Level::Info, now)])
            .await
            .expect("append");
        assert_eq!(ids(&next), [8], "an id is never reused");
    }
}
