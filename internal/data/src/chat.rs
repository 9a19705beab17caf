//! [`SqliteRoomRepo`]: chat rooms' sequences in `chat_rooms` and their kept events in
//! `chat_events`.
//!
//! An append is one transaction: per room, one upsert advances the room's counter by the
//! number of its events and returns the new value (the ids are the values it skipped over),
//! then the events go in and the room is trimmed to what it keeps. A store shared by several
//! writers does the same with the counter row locked, so ids are gapless and commit in order.
//!
//! A chat echo is the server's acknowledgement and must survive a power loss: the pool runs
//! with `synchronous = FULL` (see [`crate::Database`]), and the appender commits whole
//! batches, so that is one fsync per batch, not per message.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use sqlx::{Connection as _, Row as _, SqliteConnection, sqlite::SqliteRow};
use streamhub_biz::{
    Error, Result,
    chat::{ChatEvent, ChatKind, NewChatEvent, RoomRepo},
    logs::{from_unix_nanos, unix_nanos},
};

use crate::{
    Database,
    database::{database_error, database_span, in_span},
};

/// Rows per INSERT statement: 64 rows of 6 values stay far below SQLite's parameter limit.
const INSERT_ROWS: usize = 64;

/// The SQLite implementation of [`RoomRepo`].
#[derive(Debug, Clone)]
pub struct SqliteRoomRepo {
    database: Database,
}

impl SqliteRoomRepo {
    /// A repository over the (migrated) `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// A database failure of the chat store: see [`database_error`].
fn database(err: sqlx::Error) -> Error {
    database_error("chat store", err)
}

/// Stored data the chat store cannot read back.
fn storage(detail: impl std::fmt::Display) -> Error {
    Error::Storage(detail.to_string())
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn event_from_row(room_id: &str, row: &SqliteRow) -> Result<ChatEvent> {
    let kind: &str = row.try_get("kind").map_err(database)?;
    let kind = ChatKind::from_name(kind)
        .ok_or_else(|| storage(format!("chat_events.kind holds {kind:?}, not a kind")))?;
    Ok(ChatEvent {
        id: row.try_get("id").map_err(database)?,
        room_id: room_id.to_owned(),
        user_id: row.try_get("user_id").map_err(database)?,
        text: row.try_get("text").map_err(database)?,
        kind,
        at: from_unix_nanos(row.try_get("at").map_err(database)?),
    })
}

/// Stores `events` on `connection` in one transaction; see the module docs.
async fn append_in_transaction(
    connection: &mut SqliteConnection,
    events: Vec<NewChatEvent>,
    keep: usize,
) -> Result<Vec<ChatEvent>> {
    let mut tx = connection.begin().await.map_err(database)?;
    // Each room's count, in the order the rooms first appear.
    let mut rooms: Vec<(&str, i64)> = Vec::new();
    for event in &events {
        match rooms.iter_mut().find(|(room, _)| *room == event.room_id) {
            Some((_, count)) => *count += 1,
            None => rooms.push((&event.room_id, 1)),
        }
    }
    // The next id of each room in this batch.
    let mut next_ids: HashMap<String, i64> = HashMap::with_capacity(rooms.len());
    let mut last_ids: Vec<(String, i64)> = Vec::with_capacity(rooms.len());
    for (room_id, count) in rooms {
        let last_id: i64 = sqlx::query_scalar(
            "INSERT INTO chat_rooms (id, last_id) VALUES (?1, ?2) \
             ON CONFLICT (id) DO UPDATE SET last_id = last_id + excluded.last_id \
             RETURNING last_id",
        )
        .bind(room_id)
        .bind(count)
        .fetch_one(&mut *tx)
        .await
        .map_err(database)?;
        next_ids.insert(room_id.to_owned(), last_id - count + 1);
        last_ids.push((room_id.to_owned(), last_id));
    }
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        let Some(next_id) = next_ids.get_mut(&event.room_id) else {
            return Err(storage("a chat event's room was not counted"));
        };
        stored.push(event.with_id(*next_id));
        *next_id += 1;
    }
    // A room that keeps nothing only needs its counter.
    if keep > 0 {
        for rows in stored.chunks(INSERT_ROWS) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO chat_events (room_id, id, kind, user_id, text, at) ",
            );
            let mut failure = None;
            insert.push_values(rows, |mut values, event| {
                let at = unix_nanos(event.at).unwrap_or_else(|| {
                    failure = Some(storage("a chat event's time is out of range"));
                    0
                });
                values
                    .push_bind(event.room_id.as_str())
                    .push_bind(event.id)
                    .push_bind(event.kind.as_str())
                    .push_bind(event.user_id.as_str())
                    .push_bind(event.text.as_str())
                    .push_bind(at);
            });
            if let Some(err) = failure {
                return Err(err);
            }
            insert.build().execute(&mut *tx).await.map_err(database)?;
        }
    }
    for (room_id, last_id) in &last_ids {
        sqlx::query("DELETE FROM chat_events WHERE room_id = ?1 AND id <= ?2")
            .bind(room_id)
            .bind(last_id.saturating_sub(to_i64(keep)))
            .execute(&mut *tx)
            .await
            .map_err(database)?;
    }
    tx.commit().await.map_err(database)?;
    Ok(stored)
}

impl RoomRepo for SqliteRoomRepo {
    fn append(
        &self,
        events: Vec<NewChatEvent>,
        keep: usize,
    ) -> BoxFuture<'_, Result<Vec<ChatEvent>>> {
        let span = database_span!("db.chat.append", "INSERT", events = to_i64(events.len()));
        in_span(span, async move {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let mut connection = self.database.pool().acquire().await.map_err(database)?;
            append_in_transaction(&mut connection, events, keep).await
        })
    }

    fn read<'a>(
        &'a self,
        room_id: &'a str,
        after_id: i64,
        up_to: i64,
    ) -> BoxFuture<'a, Result<Vec<ChatEvent>>> {
        let span = database_span!("db.chat.read", "SELECT", after_id, up_to);
        in_span(span, async move {
            let rows = sqlx::query(
                "SELECT id, kind, user_id, text, at FROM chat_events \
                     WHERE room_id = ?1 AND id > ?2 AND id <= ?3 ORDER BY id",
            )
            .bind(room_id)
            .bind(after_id)
            .bind(up_to)
            .fetch_all(self.database.pool())
            .await
            .map_err(database)?;
            rows.iter()
                .map(|row| event_from_row(room_id, row))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use streamhub_conf::DatabaseConf;

    use super::*;

    async fn open(dir: &tempfile::TempDir) -> (Database, SqliteRoomRepo) {
        let conf = DatabaseConf {
            source: format!("sqlite://{}", dir.path().join("chat.db").display()),
            ..DatabaseConf::default()
        };
        let database = Database::open(&conf).await.expect("open");
        (database.clone(), SqliteRoomRepo::new(database))
    }

    fn event(room: &str, user: &str, kind: ChatKind, text: &str) -> NewChatEvent {
        NewChatEvent {
            room_id: room.to_owned(),
            user_id: user.to_owned(),
            text: text.to_owned(),
            kind,
            at: SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000, 7),
        }
    }

    fn ids(events: &[ChatEvent]) -> Vec<(String, i64)> {
        events.iter().map(|e| (e.room_id.clone(), e.id)).collect()
    }

    #[tokio::test]
    async fn each_room_has_its_own_sequence_and_events_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database, repo) = open(&dir).await;
        let batch = vec![
            event("a", "ann", ChatKind::Join, ""),
            event("b", "bob", ChatKind::Join, ""),
            event("a", "ann", ChatKind::Message, "héllo"),
            event("a", "ann", ChatKind::Leave, ""),
        ];
        let stored = repo.append(batch, 10).await.expect("append");
        assert_eq!(
            ids(&stored),
            [
                ("a".into(), 1),
                ("b".into(), 1),
                ("a".into(), 2),
                ("a".into(), 3)
            ]
        );
        let read = repo.read("a", 0, i64::MAX).await.expect("read");
        let expected: Vec<ChatEvent> = stored
            .iter()
            .filter(|e| e.room_id == "a")
            .cloned()
            .collect();
        assert_eq!(read, expected, "what was written is what is read");
        assert_eq!(
            ids(&repo.read("a", 1, 2).await.expect("read")),
            [("a".into(), 2)]
        );
        assert!(repo.read("nowhere", 0, 100).await.expect("read").is_empty());
        database.close().await;
    }

    #[tokio::test]
    async fn a_room_keeps_its_last_events_and_its_ids_survive_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database, repo) = open(&dir).await;
        for n in 0..5 {
            repo.append(
                vec![event("r", "ann", ChatKind::Message, &n.to_string())],
                3,
            )
            .await
            .expect("append");
        }
        let kept = repo.read("r", 0, i64::MAX).await.expect("read");
        assert_eq!(kept.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        database.close().await;

        let (database, repo) = open(&dir).await;
        let next = repo
            .append(vec![event("r", "bob", ChatKind::Join, "")], 3)
            .await
            .expect("append after reopening");
        assert_eq!(ids(&next), [("r".into(), 6)], "ids continue, never repeat");
        let kept = repo.read("r", 0, i64::MAX).await.expect("read");
        assert_eq!(kept.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5, 6]);
        database.close().await;
    }

    #[tokio::test]
    async fn a_room_that_keeps_nothing_still_counts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database, repo) = open(&dir).await;
        let events = (0..3)
            .map(|_| event("r", "ann", ChatKind::Message, "x"))
            .collect();
        repo.append(events, 0).await.expect("append");
        let next = repo
            .append(vec![event("r", "ann", ChatKind::Leave, "")], 0)
            .await
            .expect("append");
        assert_eq!(ids(&next), [("r".into(), 4)]);
        assert!(repo.read("r", 0, i64::MAX).await.expect("read").is_empty());
        database.close().await;
    }

    #[tokio::test]
    async fn a_batch_larger_than_one_insert_statement_keeps_its_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database, repo) = open(&dir).await;
        let events: Vec<NewChatEvent> = (0..INSERT_ROWS * 2 + 3)
            .map(|n| event("r", "ann", ChatKind::Message, &n.to_string()))
            .collect();
        let stored = repo.append(events, 1000).await.expect("append");
        let read = repo.read("r", 0, i64::MAX).await.expect("read");
        assert_eq!(read, stored);
        let texts: Vec<String> = read.iter().map(|e| e.text.clone()).collect();
        let expected: Vec<String> = (0..INSERT_ROWS * 2 + 3).map(|n| n.to_string()).collect();
        assert_eq!(
            texts, expected,
            "each id belongs to the event sent in that place"
        );
        database.close().await;
    }
}
