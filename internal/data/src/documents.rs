//! SQLite storage of collaborative documents: `documents` holds each text and revision,
//! `document_ops` the last operations, trimmed on every write so it never outgrows the
//! op log the server keeps in memory.

use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use sqlx::{Row as _, SqlitePool};
use streamhub_biz::{
    Error, Result,
    edit::{AppliedEdit, DocumentRepo, EditKind, LoggedOp, StoredDocument, ot::TextOp},
};

use crate::{
    Database,
    database::{database_error, database_span, in_span},
};

/// [`DocumentRepo`] on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteDocumentRepo {
    pool: SqlitePool,
}

impl SqliteDocumentRepo {
    pub fn new(database: &Database) -> Self {
        Self {
            pool: database.pool().clone(),
        }
    }
}

/// A database failure of the document store: see [`database_error`].
fn database(err: sqlx::Error) -> Error {
    database_error("document store", err)
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The columns (`op`, `position`, `length`, `content`) that store a text change.
fn op_columns(op: &TextOp) -> (&'static str, i64, i64, &str) {
    match op {
        TextOp::Insert { at, text } => ("insert", to_i64(*at), 0, text.as_str()),
        TextOp::Delete { at, len } => ("delete", to_i64(*at), to_i64(*len), ""),
        TextOp::Noop => ("noop", 0, 0, ""),
    }
}

fn op_from_columns(kind: &str, position: i64, length: i64, content: String) -> Result<TextOp> {
    let position = usize::try_from(position)
        .map_err(|_| Error::Storage(format!("negative op position {position}")))?;
    let length = usize::try_from(length)
        .map_err(|_| Error::Storage(format!("negative op length {length}")))?;
    match kind {
        "insert" => Ok(TextOp::insert(position, content)),
        "delete" => Ok(TextOp::delete(position, length)),
        "noop" => Ok(TextOp::Noop),
        other => Err(Error::Storage(format!("unknown stored op {other:?}"))),
    }
}

impl DocumentRepo for SqliteDocumentRepo {
    fn load<'a>(
        &'a self,
        id: &'a str,
        recent_ops: usize,
    ) -> BoxFuture<'a, Result<Option<StoredDocument>>> {
        let span = database_span!("db.documents.load", "SELECT", document_id = id);
        in_span(span, async move {
            let Some(row) = sqlx::query("SELECT text, revision FROM documents WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(database)?
            else {
                return Ok(None);
            };
            let text: String = row.try_get("text").map_err(database)?;
            let revision: i64 = row.try_get("revision").map_err(database)?;
            let rows = sqlx::query(
                "SELECT revision, op, position, length, content FROM document_ops \
                 WHERE document_id = ? ORDER BY revision DESC LIMIT ?",
            )
            .bind(id)
            .bind(to_i64(recent_ops))
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
            let mut recent = rows
                .into_iter()
                .map(|row| {
                    Ok(LoggedOp {
                        revision: row.try_get("revision").map_err(database)?,
                        op: op_from_columns(
                            row.try_get::<&str, _>("op").map_err(database)?,
                            row.try_get("position").map_err(database)?,
                            row.try_get("length").map_err(database)?,
                            row.try_get("content").map_err(database)?,
                        )?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            recent.reverse();
            Ok(Some(StoredDocument {
                text,
                revision,
                recent,
            }))
        })
    }

    fn append<'a>(
        &'a self,
        id: &'a str,
        text: &'a str,
        edits: &'a [AppliedEdit],
        keep_ops: usize,
    ) -> BoxFuture<'a, Result<()>> {
        let span = database_span!(
            "db.documents.append",
            "INSERT",
            document_id = id,
            edits = i64::try_from(edits.len()).unwrap_or(i64::MAX)
        );
        in_span(span, async move {
            let Some(last) = edits.last() else {
                return Ok(());
            };
            let mut tx = self.pool.begin().await.map_err(database)?;
            sqlx::query(
                "INSERT INTO documents (id, text, revision, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET text = excluded.text, \
                 revision = excluded.revision, updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(text)
            .bind(last.revision)
            .bind(millis(last.applied_at))
            .execute(&mut *tx)
            .await
            .map_err(database)?;
            for edit in edits {
                let (op, position, length, inserted) = op_columns(&edit.op);
                let content = if edit.kind == EditKind::Format {
                    edit.format.as_str()
                } else {
                    inserted
                };
                sqlx::query(
                    "INSERT INTO document_ops \
                     (document_id, revision, user_id, kind, op, position, length, content, applied_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(edit.revision)
                .bind(&edit.user_id)
                .bind(edit.kind.as_str())
                .bind(op)
                .bind(position)
                .bind(length)
                .bind(content)
                .bind(millis(edit.applied_at))
                .execute(&mut *tx)
                .await
                .map_err(database)?;
            }
            sqlx::query("DELETE FROM document_ops WHERE document_id = ? AND revision <= ?")
                .bind(id)
                .bind(last.revision - to_i64(keep_ops))
                .execute(&mut *tx)
                .await
                .map_err(database)?;
            tx.commit().await.map_err(database)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use streamhub_conf::DatabaseConf;

    use super::*;

    fn edit(revision: i64, op: TextOp) -> AppliedEdit {
        AppliedEdit {
            revision,
            user_id: "ann".to_owned(),
            kind: EditKind::Insert,
            op,
            format: String::new(),
            applied_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn appended_edits_reload_with_a_trimmed_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = DatabaseConf {
            source: format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            ..DatabaseConf::default()
        };
        let database = Database::open(&conf).await.expect("open");
        let repo = SqliteDocumentRepo::new(&database);
        assert_eq!(repo.load("doc", 10).await.expect("load"), None);

        let ops = [
            TextOp::insert(0, "héllo"),
            TextOp::delete(1, 1),
            TextOp::Noop,
            TextOp::insert(1, "e"),
        ];
        let texts = ["héllo", "hllo", "hllo", "hello"];
        for (i, (op, text)) in ops.iter().zip(texts).enumerate() {
            let revision = i64::try_from(i).expect("small") + 1;
            repo.append("doc", text, &[edit(revision, op.clone())], 2)
                .await
                .expect("append");
        }
        let stored = repo.load("doc", 10).await.expect("load").expect("exists");
        assert_eq!(stored.text, "hello");
        assert_eq!(stored.revision, 4);
        assert_eq!(
            stored.recent,
            vec![
                LoggedOp {
                    revision: 3,
                    op: TextOp::Noop
                },
                LoggedOp {
                    revision: 4,
                    op: TextOp::insert(1, "e")
                },
            ],
            "only the last keep_ops operations remain, oldest first"
        );
        let one = repo.load("doc", 1).await.expect("load").expect("exists");
        assert_eq!(one.recent.len(), 1);

        // A group commit writes several revisions at once.
        let group = [
            edit(5, TextOp::insert(0, "¡")),
            edit(6, TextOp::delete(5, 1)),
        ];
        repo.append("doc", "¡hell", &group, 10)
            .await
            .expect("append a group");
        let stored = repo.load("doc", 10).await.expect("load").expect("exists");
        assert_eq!((stored.text.as_str(), stored.revision), ("¡hell", 6));
        assert_eq!(
            stored
                .recent
                .iter()
                .map(|op| op.revision)
                .collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        database.close().await;
    }
}
