//! [`PgLogRepo`]: log entries in PostgreSQL's `logs` table, ids from the `log_head` row.
//!
//! An append takes its ids with `UPDATE log_head … RETURNING`, which locks the row until the
//! append commits, then inserts the whole batch in one statement (arrays through `UNNEST`).
//! Appends therefore commit one after another in id order (SCALEOUT.md, principle 1), and a
//! batch costs one round trip for the ids and one for the rows however large it is. Reads are
//! bounded and retention deletes in chunks, as in [`SqliteLogRepo`](crate::SqliteLogRepo).

use std::time::SystemTime;

use sqlx::{Row as _, postgres::PgRow};
use streamhub_biz::{
    Error, Result,
    logs::{LogEntry, LogFilter, LogRepo, NewLogEntry, RepoFuture, unix_nanos},
};

use super::PgDatabase;
use crate::{
    database::{database_error, database_span, in_span},
    logs::{StoredRow, storage},
};

/// Rows removed per retention statement.
const DELETE_CHUNK: i64 = 10_000;

/// The PostgreSQL implementation of [`LogRepo`].
#[derive(Debug, Clone)]
pub struct PgLogRepo {
    database: PgDatabase,
}

impl PgLogRepo {
    /// A repository over the (migrated) `database`.
    pub fn new(database: PgDatabase) -> Self {
        Self { database }
    }
}

/// A database failure of the log store: see [`database_error`].
fn database(err: sqlx::Error) -> Error {
    database_error("log store", err)
}

const COLUMNS: &str = "id, service, level, message, timestamp, metadata";

fn entry_from_row(row: &PgRow) -> Result<LogEntry> {
    StoredRow {
        id: row.try_get("id").map_err(database)?,
        service: row.try_get("service").map_err(database)?,
        level: row.try_get::<i16, _>("level").map_err(database)?.into(),
        message: row.try_get("message").map_err(database)?,
        timestamp: row.try_get("timestamp").map_err(database)?,
        metadata: row.try_get("metadata").map_err(database)?,
    }
    .into_entry()
}

/// The `WHERE` clause of `filter` over `id` bounds $1 (exclusive) and $2 (inclusive), level
/// $3 and, when the filter names one, service $4; and the number of the next parameter.
/// Separate texts (rather than `$4 IS NULL OR …`) let the planner use the service index.
fn filtered(filter: &LogFilter) -> (&'static str, u8) {
    if filter.service.is_some() {
        ("id > $1 AND id <= $2 AND level >= $3 AND service = $4", 5)
    } else {
        ("id > $1 AND id <= $2 AND level >= $3", 4)
    }
}

/// A query over `filtered(filter)` with its first parameters bound.
fn bind_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    filter: &'q LogFilter,
    after_id: i64,
    up_to: i64,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let query = query
        .bind(after_id)
        .bind(up_to)
        .bind(i16::from(filter.min_level.rank()));
    match &filter.service {
        Some(service) => query.bind(service.as_str()),
        None => query,
    }
}

/// The columns of a batch, as the arrays `UNNEST` turns back into rows.
#[derive(Default)]
struct Columns {
    services: Vec<String>,
    levels: Vec<i16>,
    messages: Vec<String>,
    timestamps: Vec<i64>,
    metadata: Vec<String>,
}

impl Columns {
    fn of(entries: &[NewLogEntry]) -> Result<Self> {
        let mut columns = Self::default();
        for entry in entries {
            let timestamp = unix_nanos(entry.timestamp)
                .ok_or_else(|| storage("a validated timestamp is out of range"))?;
            columns.services.push(entry.service.clone());
            columns.levels.push(i16::from(entry.level.rank()));
            columns.messages.push(entry.message.clone());
            columns.timestamps.push(timestamp);
            columns
                .metadata
                .push(serde_json::to_string(&entry.metadata).map_err(storage)?);
        }
        Ok(columns)
    }
}

impl LogRepo for PgLogRepo {
    fn append(&self, entries: Vec<NewLogEntry>) -> RepoFuture<'_, Vec<LogEntry>> {
        let span = database_span!(
            system = "postgresql",
            "db.logs.append",
            "INSERT",
            entries = i64::try_from(entries.len()).unwrap_or(i64::MAX)
        );
        in_span(span, async move {
            if entries.is_empty() {
                // Nothing to number: no id is taken and the counter row is not locked.
                return Ok(Vec::new());
            }
            let count = i64::try_from(entries.len())
                .map_err(|_| storage("a batch of more than i64::MAX entries"))?;
            let columns = Columns::of(&entries)?;
            let mut tx = self.database.pool().begin().await.map_err(database)?;
            // Locks the counter row until commit: the next append waits here, so ids commit
            // in id order.
            let last: i64 =
                sqlx::query_scalar("UPDATE log_head SET last_id = last_id + $1 RETURNING last_id")
                    .bind(count)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(database)?;
            let first = last - count + 1;
            let inserted = sqlx::query(
                "INSERT INTO logs (id, service, level, message, timestamp, metadata) \
                 SELECT $1 + ordinality - 1, service, level, message, timestamp, metadata \
                 FROM UNNEST($2::text[], $3::smallint[], $4::text[], $5::bigint[], $6::text[]) \
                      WITH ORDINALITY AS batch(service, level, message, timestamp, metadata)",
            )
            .bind(first)
            .bind(&columns.services)
            .bind(&columns.levels)
            .bind(&columns.messages)
            .bind(&columns.timestamps)
            .bind(&columns.metadata)
            .execute(&mut *tx)
            .await
            .map_err(database)?
            .rows_affected();
            if inserted != count as u64 {
                return Err(storage(format!(
                    "inserted {inserted} log rows for a batch of {count}"
                )));
            }
            tx.commit().await.map_err(database)?;
            Ok((first..=last)
                .zip(entries)
                .map(|(id, entry)| entry.with_id(id))
                .collect())
        })
    }

    fn page<'a>(
        &'a self,
        filter: &'a LogFilter,
        after_id: i64,
        up_to: i64,
        limit: u32,
    ) -> RepoFuture<'a, Vec<LogEntry>> {
        let span = database_span!(
            system = "postgresql",
            "db.logs.page",
            "SELECT",
            after_id,
            limit = i64::from(limit)
        );
        in_span(span, async move {
            let (condition, next) = filtered(filter);
            let sql =
                format!("SELECT {COLUMNS} FROM logs WHERE {condition} ORDER BY id LIMIT ${next}");
            let rows = bind_filter(sqlx::query(&sql), filter, after_id, up_to)
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
        let span = database_span!(
            system = "postgresql",
            "db.logs.tail_start",
            "SELECT",
            count = i64::from(count)
        );
        in_span(span, async move {
            let (condition, next) = filtered(filter);
            let sql = format!(
                "SELECT min(id) FROM \
                 (SELECT id FROM logs WHERE {condition} ORDER BY id DESC LIMIT ${next}) AS tail"
            );
            let row = bind_filter(sqlx::query(&sql), filter, 0, up_to)
                .bind(i64::from(count))
                .fetch_one(self.database.pool())
                .await
                .map_err(database)?;
            row.try_get::<Option<i64>, _>(0).map_err(database)
        })
    }

    fn last_id(&self) -> RepoFuture<'_, i64> {
        let span = database_span!(system = "postgresql", "db.logs.last_id", "SELECT");
        in_span(span, async move {
            // The counter holds the highest id ever assigned, even if retention removed it.
            sqlx::query_scalar::<_, i64>("SELECT last_id FROM log_head")
                .fetch_one(self.database.pool())
                .await
                .map_err(database)
        })
    }

    fn oldest_id(&self) -> RepoFuture<'_, Option<i64>> {
        let span = database_span!(system = "postgresql", "db.logs.oldest_id", "SELECT");
        in_span(span, async move {
            sqlx::query_scalar::<_, Option<i64>>("SELECT min(id) FROM logs")
                .fetch_one(self.database.pool())
                .await
                .map_err(database)
        })
    }

    fn delete_older_than(&self, cutoff: SystemTime) -> RepoFuture<'_, u64> {
        let span = database_span!(system = "postgresql", "db.logs.delete_older_than", "DELETE");
        in_span(span, async move {
            // Before the epoch nothing is stored; after 2262 everything is older.
            let cutoff = match unix_nanos(cutoff) {
                Some(nanos) => nanos,
                None if cutoff < SystemTime::UNIX_EPOCH => return Ok(0),
                None => i64::MAX,
            };
            self.delete_in_chunks(
                "DELETE FROM logs WHERE id IN \
                 (SELECT id FROM logs WHERE timestamp < $1 LIMIT $2)",
                cutoff,
            )
            .await
        })
    }

    fn delete_beyond(&self, keep: u64) -> RepoFuture<'_, u64> {
        let span = database_span!(
            system = "postgresql",
            "db.logs.delete_beyond",
            "DELETE",
            keep = i64::try_from(keep).unwrap_or(i64::MAX)
        );
        in_span(span, async move {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            let newest_to_delete: Option<i64> =
                sqlx::query_scalar("SELECT id FROM logs ORDER BY id DESC LIMIT 1 OFFSET $1")
                    .bind(keep)
                    .fetch_optional(self.database.pool())
                    .await
                    .map_err(database)?;
            let Some(newest_to_delete) = newest_to_delete else {
                return Ok(0);
            };
            self.delete_in_chunks(
                "DELETE FROM logs WHERE id IN \
                 (SELECT id FROM logs WHERE id <= $1 ORDER BY id LIMIT $2)",
                newest_to_delete,
            )
            .await
        })
    }
}

impl PgLogRepo {
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
