//! The file store's SQL: every statement on `uploads`, `files` and `file_deletions`, and the
//! rows they read back.
//!
//! Times are stored as Unix nanoseconds. Names are looked up through the index
//! `files_name_seq` (name, then commit order): the newest file of a name is one seek, and a
//! name prefix is a range of it.

use std::time::SystemTime;

use sqlx::{Row as _, sqlite::SqliteRow};
use streamhub_biz::{
    Error, Result,
    files::{
        Checksum, FileId, FileName, ListedFile, NamePrefix, StoredFile, UploadId, UploadSession,
    },
    logs::{from_unix_nanos, unix_nanos},
};

use super::{SqliteFileStore, storage};
use crate::database::database_error;

pub(super) const UPLOAD_COLUMNS: &str =
    "file_id, upload_id, file_name, expected_size, expected_sha256, durable_offset, expires_at";
pub(super) const FILE_COLUMNS: &str = "seq, id, name, size, sha256, created_at";

/// `at` as stored: Unix nanoseconds, the far future past 2262.
pub(super) fn nanos(at: SystemTime) -> i64 {
    unix_nanos(at).unwrap_or(i64::MAX)
}

fn column_error(err: sqlx::Error) -> Error {
    storage("read column", err)
}

fn session_from_row(row: &SqliteRow) -> Result<UploadSession> {
    let file_id: String = row.try_get("file_id").map_err(column_error)?;
    let upload_id: Option<String> = row.try_get("upload_id").map_err(column_error)?;
    let expected_size: Option<i64> = row.try_get("expected_size").map_err(column_error)?;
    let expected_sha256: Option<String> = row.try_get("expected_sha256").map_err(column_error)?;
    let durable_offset: i64 = row.try_get("durable_offset").map_err(column_error)?;
    let corrupt = |what: &str| storage("uploads row", format!("{what} is not valid"));
    Ok(UploadSession {
        file_id: FileId::parse("file_id", &file_id).map_err(|_| corrupt("file_id"))?,
        upload_id: upload_id
            .map(|id| UploadId::parse(&id))
            .transpose()
            .map_err(|_| corrupt("upload_id"))?,
        file_name: FileName::from_stored(row.try_get("file_name").map_err(column_error)?),
        expected_size: expected_size.and_then(|size| u64::try_from(size).ok()),
        expected_sha256: expected_sha256
            .map(|sum| Checksum::parse(&sum))
            .transpose()
            .map_err(|_| corrupt("expected_sha256"))?,
        durable_offset: u64::try_from(durable_offset).map_err(|_| corrupt("durable_offset"))?,
        expires_at: from_unix_nanos(row.try_get("expires_at").map_err(column_error)?),
    })
}

fn listed_from_row(row: &SqliteRow) -> Result<ListedFile> {
    let id: String = row.try_get("id").map_err(column_error)?;
    let size: i64 = row.try_get("size").map_err(column_error)?;
    let sha256: String = row.try_get("sha256").map_err(column_error)?;
    let corrupt = |what: &str| storage("files row", format!("{what} is not valid"));
    Ok(ListedFile {
        seq: row.try_get("seq").map_err(column_error)?,
        file: StoredFile {
            id: FileId::parse("id", &id).map_err(|_| corrupt("id"))?,
            name: FileName::from_stored(row.try_get("name").map_err(column_error)?),
            size: u64::try_from(size).map_err(|_| corrupt("size"))?,
            sha256: Checksum::parse(&sha256).map_err(|_| corrupt("sha256"))?,
            created_at: from_unix_nanos(row.try_get("created_at").map_err(column_error)?),
        },
    })
}

/// The smallest string greater than every string that starts with `prefix`: its last
/// character that has a successor, advanced by one, with what followed dropped. `None` when
/// there is none (only U+10FFFF characters): then every name from `prefix` on matches.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            // Past the surrogates, which are no characters.
            0xD800 => Some('\u{E000}'),
            code => char::from_u32(code),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl SqliteFileStore {
    /// Every upload in progress, for start-up.
    pub(super) async fn select_uploads(&self) -> Result<Vec<UploadSession>> {
        sqlx::query(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads"))
            .fetch_all(self.pool())
            .await
            .map_err(|err| database_error("read uploads", err))?
            .iter()
            .map(session_from_row)
            .collect()
    }

    pub(super) async fn select_upload(
        &self,
        upload_id: &UploadId,
    ) -> Result<Option<UploadSession>> {
        sqlx::query(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?1"
        ))
        .bind(upload_id.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|err| database_error("find upload", err))?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    pub(super) async fn insert_upload(&self, session: &UploadSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO uploads (file_id, upload_id, file_name, expected_size, \
             expected_sha256, durable_offset, updated_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(session.file_id.as_str())
        .bind(session.upload_id.as_ref().map(UploadId::as_str))
        .bind(session.file_name.as_str())
        .bind(session.expected_size.map(|size| size as i64))
        .bind(session.expected_sha256.as_ref().map(Checksum::as_str))
        .bind(session.durable_offset as i64)
        .bind(nanos(SystemTime::now()))
        .bind(nanos(session.expires_at))
        .execute(self.pool())
        .await
        .map_err(|err| database_error("create upload", err))?;
        Ok(())
    }

    pub(super) async fn update_offset(
        &self,
        file_id: &FileId,
        offset: u64,
        expires_at: SystemTime,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE uploads SET durable_offset = ?2, updated_at = ?3, expires_at = ?4 \
             WHERE file_id = ?1",
        )
        .bind(file_id.as_str())
        .bind(offset as i64)
        .bind(nanos(SystemTime::now()))
        .bind(nanos(expires_at))
        .execute(self.pool())
        .await
        .map_err(|err| database_error("record offset", err))?;
        Ok(())
    }

    pub(super) async fn delete_upload(&self, file_id: &FileId) -> Result<()> {
        sqlx::query("DELETE FROM uploads WHERE file_id = ?1")
            .bind(file_id.as_str())
            .execute(self.pool())
            .await
            .map_err(|err| database_error("delete upload", err))?;
        Ok(())
    }

    pub(super) async fn select_expired(
        &self,
        now: SystemTime,
        limit: u32,
    ) -> Result<Vec<UploadSession>> {
        sqlx::query(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE expires_at < ?1 \
             ORDER BY expires_at LIMIT ?2"
        ))
        .bind(nanos(now))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(|err| database_error("find expired uploads", err))?
        .iter()
        .map(session_from_row)
        .collect()
    }

    /// The commit: the file's row in, the upload's row out, in one transaction.
    pub(super) async fn insert_file(&self, file: &StoredFile) -> Result<()> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(|err| database_error("begin commit", err))?;
        sqlx::query(
            "INSERT INTO files (id, name, size, sha256, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(file.id.as_str())
        .bind(file.name.as_str())
        .bind(file.size as i64)
        .bind(file.sha256.as_str())
        .bind(nanos(file.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|err| database_error("insert file", err))?;
        sqlx::query("DELETE FROM uploads WHERE file_id = ?1")
            .bind(file.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|err| database_error("delete upload", err))?;
        tx.commit()
            .await
            .map_err(|err| database_error("commit file", err))
    }

    pub(super) async fn select_file(&self, id: &FileId) -> Result<Option<StoredFile>> {
        sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(|err| database_error("find file", err))?
            .as_ref()
            .map(|row| listed_from_row(row).map(|listed| listed.file))
            .transpose()
    }

    pub(super) async fn select_newest_named(&self, name: &str) -> Result<Option<StoredFile>> {
        sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM files INDEXED BY files_name_seq \
             WHERE name = ?1 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(|err| database_error("find file by name", err))?
        .as_ref()
        .map(|row| listed_from_row(row).map(|listed| listed.file))
        .transpose()
    }

    pub(super) async fn select_page(
        &self,
        after: i64,
        limit: u32,
        prefix: Option<&NamePrefix>,
    ) -> Result<Vec<ListedFile>> {
        // A prefix is the range [prefix, its successor) of names (UTF-8 in byte order
        // sorts like code points, which is SQLite's BINARY collation), which the name
        // index can serve; LIKE could not (its wildcards and case folding).
        let lower = prefix.map(NamePrefix::as_str);
        let upper = lower.and_then(successor);
        let range = match (lower, &upper) {
            (None, _) => "",
            (Some(_), None) => "AND name >= ?3",
            (Some(_), Some(_)) => "AND name >= ?3 AND name < ?4",
        };
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE seq > ?1 {range} ORDER BY seq LIMIT ?2"
        );
        let mut query = sqlx::query(&sql).bind(after).bind(i64::from(limit));
        if let Some(lower) = lower {
            query = query.bind(lower);
        }
        if let Some(upper) = upper {
            query = query.bind(upper);
        }
        query
            .fetch_all(self.pool())
            .await
            .map_err(|err| database_error("list files", err))?
            .iter()
            .map(listed_from_row)
            .collect()
    }

    /// Deletes the file's row and records the deletion, in one transaction; false when there
    /// was no such row.
    pub(super) async fn delete_file_row(&self, id: &FileId) -> Result<bool> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(|err| database_error("begin delete", err))?;
        let deleted = sqlx::query("DELETE FROM files WHERE id = ?1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|err| database_error("delete file row", err))?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT OR IGNORE INTO file_deletions (file_id) VALUES (?1)")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|err| database_error("record deletion", err))?;
        tx.commit()
            .await
            .map_err(|err| database_error("commit deletion", err))?;
        Ok(true)
    }

    /// The file ids of the deletions whose bytes may still be on disk.
    pub(super) async fn select_deletions(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT file_id FROM file_deletions")
            .fetch_all(self.pool())
            .await
            .map_err(|err| database_error("read deletions", err))
    }

    pub(super) async fn forget_deletion(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM file_deletions WHERE file_id = ?1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(|err| database_error("forget deletion", err))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successor_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(successor("reports/").as_deref(), Some("reports0"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        for (prefix, name, inside) in [
            ("ab", "ab", true),
            ("ab", "abz\u{10FFFF}", true),
            ("ab", "ac", false),
            ("ab", "aa\u{10FFFF}", false),
            ("aü", "aü\u{10FFFF}x", true),
            ("aü", "aý", false),
        ] {
            let upper = successor(prefix).expect("bounded");
            let in_range = name >= prefix && name < upper.as_str();
            assert_eq!(in_range, inside, "{prefix:?} {name:?}");
            assert_eq!(name.starts_with(prefix), inside, "{prefix:?} {name:?}");
        }
    }
}
