//! [`SqliteFileStore`]: file bytes under `data.storage.root`, their rows in SQLite.
//!
//! Layout: a committed file lives at `<root>/ab/cd/<id>` (two levels of 256 shard directories,
//! so no directory grows large); a partial upload at `<root>/tmp/<file_id>.part`. Every upload
//! has a row in `uploads` from its first chunk on, so whatever a crash leaves behind is found
//! again by [`SqliteFileStore::open`].
//!
//! Commit order, which makes a file visible all at once or not at all: fsync the partial file,
//! rename it into its shard, fsync the shard directory, then one transaction inserts the
//! `files` row and deletes the `uploads` row. Deletion: one transaction deletes the row and
//! records the deletion in `file_deletions` (the file is gone from then on), then the bytes
//! go, then the record. So whatever a crash can leave unfinished has a row of its own
//! (`uploads`, `file_deletions`) or lies in `tmp/`, and start-up looks at those only: its
//! cost grows with the uploads in progress, not with the files stored.
//!
//! Names: a file's name is a column, looked up through the index `files_name_seq` (name,
//! then commit order), for the newest file of a name and for a name prefix.
//!
//! Disk I/O never runs on the async runtime: each upload has a writer thread fed through a
//! bounded queue (a full queue holds back the client's own stream), each download a reader
//! thread feeding a bounded queue (a slow client holds back only its own reader). Both are
//! blocking tasks of the application's tracker, and end when their queue's other side goes.

use std::{
    collections::HashSet,
    fs::{self, File, OpenOptions},
    io::{self, Read as _, Seek as _, SeekFrom, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use bytes::Bytes;
use futures_util::{future::BoxFuture, stream};
use sha2::{Digest as _, Sha256};
use sqlx::{Row as _, sqlite::SqliteRow};
use streamhub_biz::{
    Error, Lifecycle, Result,
    files::{
        ByteStream, Checksum, FileId, FileName, FileStore, ListedFile, NamePrefix, PartialFile,
        StoredFile, UploadId, UploadSession, Written,
    },
    logs::{from_unix_nanos, unix_nanos},
};
use tokio::sync::{mpsc, oneshot};

use crate::{DataError, Database, database::database_error};

/// Directory of partial uploads, inside the root. Shard directories have two hex digits, so
/// the names never meet.
const TMP_DIR: &str = "tmp";
/// Chunks queued between a client's stream and its writer thread.
const WRITE_QUEUE: usize = 4;
/// Chunks a download's reader thread reads ahead of the client.
const READ_AHEAD: usize = 4;
/// Buffer for re-hashing the durable part of a resumed upload.
const REHASH_BUFFER: usize = 1024 * 1024;

/// What start-up found and cleaned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Resumable uploads kept for their clients to continue.
    pub uploads_kept: u64,
    /// Uploads removed: one-shot uploads cut off by the last stop, and expired ones.
    pub uploads_removed: u64,
    /// Files in the partial-upload directory that belonged to no upload.
    pub orphans_removed: u64,
    /// Deletions a crash interrupted after the file's row went: their bytes are removed now.
    pub deletions_finished: u64,
}

/// The file store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteFileStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    database: Database,
    /// Canonical (symlink-free) storage root: every file opened must resolve inside it.
    root: PathBuf,
    tmp: PathBuf,
    lifecycle: Lifecycle,
}

fn storage(context: &str, err: impl std::fmt::Display) -> Error {
    Error::Storage(format!("{context}: {err}"))
}

fn io_error(context: &str, err: &io::Error) -> Error {
    if err.kind() == io::ErrorKind::StorageFull {
        Error::StorageFull
    } else {
        storage(context, err)
    }
}

fn nanos(at: SystemTime) -> i64 {
    unix_nanos(at).unwrap_or(i64::MAX)
}

/// Runs blocking file-system work off the runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| storage("file-system task failed", err))?
}

/// Removes `path`; a file that is already gone is fine.
fn remove_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Makes `dir`'s entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl SqliteFileStore {
    /// Opens the store under `root` (created already) and cleans what the last run left: see
    /// [`Recovered`]. Must run before anything is served.
    pub async fn open(
        database: Database,
        root: &Path,
        lifecycle: &Lifecycle,
    ) -> Result<(Self, Recovered), DataError> {
        let recover_error = |err: Error| DataError::Recover(err.to_string());
        let root = root.to_path_buf();
        let (root, tmp) = blocking(move || {
            let root = fs::canonicalize(&root).map_err(|err| storage("canonicalize root", err))?;
            let tmp = root.join(TMP_DIR);
            fs::create_dir_all(&tmp).map_err(|err| storage("create tmp", err))?;
            Ok((root, tmp))
        })
        .await
        .map_err(recover_error)?;
        let store = Self {
            inner: Arc::new(StoreInner {
                database,
                root,
                tmp,
                lifecycle: lifecycle.clone(),
            }),
        };
        let recovered = store.recover().await.map_err(recover_error)?;
        Ok((store, recovered))
    }

    fn pool(&self) -> &sqlx::SqlitePool {
        self.inner.database.pool()
    }

    fn partial_path(&self, file_id: &FileId) -> PathBuf {
        self.inner.tmp.join(format!("{file_id}.part"))
    }

    fn stored_path(&self, file_id: &FileId) -> PathBuf {
        self.inner.root.join(file_id.shard_path())
    }

    async fn recover(&self) -> Result<Recovered> {
        let mut recovered = Recovered::default();
        let now = nanos(SystemTime::now());
        let sessions: Vec<UploadSession> =
            sqlx::query(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads"))
                .fetch_all(self.pool())
                .await
                .map_err(|err| database_error("read uploads", err))?
                .iter()
                .map(session_from_row)
                .collect::<Result<_>>()?;
        let mut kept = HashSet::new();
        for session in sessions {
            let live = session.upload_id.is_some() && nanos(session.expires_at) > now;
            let committed = self.file(&session.file_id).await?.is_some();
            let partial = self.partial_path(&session.file_id);
            let stored = self.stored_path(&session.file_id);
            let offset = session.durable_offset;
            // A crash between rename and row commit leaves the bytes in the store: a live
            // upload gets them back, anything else loses them.
            let keep = blocking(move || {
                let partial_len = fs::metadata(&partial).map(|meta| meta.len()).ok();
                if live && !committed && partial_len.is_none() && stored.is_file() {
                    fs::rename(&stored, &partial).map_err(|err| storage("restore partial", err))?;
                    return Ok(true);
                }
                if live && partial_len.is_some_and(|len| len >= offset) {
                    return Ok(true);
                }
                remove_if_present(&partial).map_err(|err| storage("remove partial", err))?;
                if !committed {
                    remove_if_present(&stored).map_err(|err| storage("remove stored", err))?;
                }
                Ok(false)
            })
            .await?;
            if keep {
                kept.insert(format!("{}.part", session.file_id));
                recovered.uploads_kept += 1;
            } else {
                sqlx::query("DELETE FROM uploads WHERE file_id = ?1")
                    .bind(session.file_id.as_str())
                    .execute(self.pool())
                    .await
                    .map_err(|err| database_error("delete upload", err))?;
                recovered.uploads_removed += 1;
            }
        }
        let tmp = self.inner.tmp.clone();
        recovered.orphans_removed = blocking(move || {
            let mut removed = 0;
            for entry in fs::read_dir(&tmp).map_err(|err| storage("list tmp", err))? {
                let entry = entry.map_err(|err| storage("list tmp", err))?;
                if kept.contains(entry.file_name().to_string_lossy().as_ref()) {
                    continue;
                }
                let path = entry.path();
                let removal = if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removal.map_err(|err| storage("remove orphan", err))?;
                removed += 1;
            }
            Ok(removed)
        })
        .await?;
        recovered.deletions_finished = self.finish_deletions().await?;
        Ok(recovered)
    }

    /// Removes the bytes of every deletion a crash interrupted, then its record.
    async fn finish_deletions(&self) -> Result<u64> {
        let pending: Vec<String> = sqlx::query_scalar("SELECT file_id FROM file_deletions")
            .fetch_all(self.pool())
            .await
            .map_err(|err| database_error("read deletions", err))?;
        let mut finished = 0;
        for id in pending {
            match FileId::parse("file_id", &id) {
                Ok(file_id) => self.remove_bytes(&file_id).await?,
                Err(_) => tracing::warn!(file_id = %id, "a deletion record names no file id"),
            }
            self.forget_deletion(&id).await?;
            finished += 1;
        }
        Ok(finished)
    }

    /// Removes a deleted file's bytes, durably; bytes already gone are fine.
    async fn remove_bytes(&self, id: &FileId) -> Result<()> {
        let stored = self.stored_path(id);
        blocking(move || {
            if remove_if_present(&stored).map_err(|err| storage("remove stored", err))?
                && let Some(dir) = stored.parent()
            {
                sync_dir(dir).map_err(|err| storage("sync shard", err))?;
            }
            Ok(())
        })
        .await
    }

    async fn forget_deletion(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM file_deletions WHERE file_id = ?1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(|err| database_error("forget deletion", err))?;
        Ok(())
    }
}

const UPLOAD_COLUMNS: &str =
    "file_id, upload_id, file_name, expected_size, expected_sha256, durable_offset, expires_at";
const FILE_COLUMNS: &str = "seq, id, name, size, sha256, created_at";

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

impl FileStore for SqliteFileStore {
    fn find_upload<'a>(
        &'a self,
        upload_id: &'a UploadId,
    ) -> BoxFuture<'a, Result<Option<UploadSession>>> {
        Box::pin(async move {
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
        })
    }

    fn create_upload<'a>(&'a self, session: &'a UploadSession) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
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
        })
    }

    fn open_partial<'a>(
        &'a self,
        session: &'a UploadSession,
    ) -> BoxFuture<'a, Result<Box<dyn PartialFile>>> {
        Box::pin(async move {
            let path = self.partial_path(&session.file_id);
            let tmp = self.inner.tmp.clone();
            let offset = session.durable_offset;
            let resumable = session.upload_id.is_some();
            let (file, hasher) = blocking(move || {
                let opened = open_partial_file(&path, offset)
                    .map_err(|err| io_error("open partial", &err))?;
                if resumable && offset == 0 {
                    // The file's name must survive a crash for the upload to resume.
                    sync_dir(&tmp).map_err(|err| io_error("sync tmp", &err))?;
                }
                Ok(opened)
            })
            .await?;
            let (commands, queue) = mpsc::channel(WRITE_QUEUE);
            let failure = Arc::new(Mutex::new(None));
            // Hashing runs on a thread of its own, beside the writes: each chunk's `Bytes` is
            // shared by both, not copied.
            let (to_hasher, hasher_queue) = std::sync::mpsc::sync_channel::<Bytes>(WRITE_QUEUE);
            let (digest, digest_answer) = std::sync::mpsc::channel();
            self.inner.lifecycle.spawn_blocking(move || {
                let mut hasher = hasher;
                for data in hasher_queue {
                    hasher.update(&data);
                }
                let _ = digest.send(<[u8; 32]>::from(hasher.finalize()));
            });
            let writer = Writer {
                file,
                to_hasher,
                digest: digest_answer,
                len: offset,
                failure: Arc::clone(&failure),
            };
            self.inner
                .lifecycle
                .spawn_blocking(move || writer.run(queue));
            Ok(Box::new(DiskPartial { commands, failure }) as Box<dyn PartialFile>)
        })
    }

    fn record_offset<'a>(
        &'a self,
        file_id: &'a FileId,
        offset: u64,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
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
        })
    }

    fn discard_upload<'a>(&'a self, file_id: &'a FileId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let partial = self.partial_path(file_id);
            blocking(move || {
                remove_if_present(&partial).map_err(|err| storage("remove partial", err))?;
                Ok(())
            })
            .await?;
            sqlx::query("DELETE FROM uploads WHERE file_id = ?1")
                .bind(file_id.as_str())
                .execute(self.pool())
                .await
                .map_err(|err| database_error("delete upload", err))?;
            Ok(())
        })
    }

    fn commit_upload<'a>(
        &'a self,
        session: &'a UploadSession,
        written: Written,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<StoredFile>> {
        Box::pin(async move {
            let partial = self.partial_path(&session.file_id);
            let stored = self.stored_path(&session.file_id);
            let target = stored.clone();
            blocking(move || {
                move_into_store(&partial, &target).map_err(|err| io_error("store", &err))
            })
            .await?;
            let file = StoredFile {
                id: session.file_id.clone(),
                name: session.file_name.clone(),
                size: written.size,
                sha256: written.sha256,
                created_at: at,
            };
            if let Err(err) = self.insert_file(&file).await {
                // The bytes go back to where the session expects them, durable: a resumable
                // upload can still be completed. Should that fail too, start-up recovery
                // moves them back (or removes them with a one-shot upload's session).
                let partial = self.partial_path(&session.file_id);
                let moved_back = blocking(move || {
                    move_out_of_store(&stored, &partial).map_err(|err| storage("move back", err))
                })
                .await;
                if let Err(move_err) = moved_back {
                    tracing::warn!(%move_err, "returning an uncommitted upload's bytes failed");
                }
                return Err(err);
            }
            Ok(file)
        })
    }

    fn expired_uploads(
        &self,
        now: SystemTime,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<UploadSession>>> {
        Box::pin(async move {
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
        })
    }

    fn file<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<Option<StoredFile>>> {
        Box::pin(async move {
            sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1"))
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await
                .map_err(|err| database_error("find file", err))?
                .as_ref()
                .map(|row| listed_from_row(row).map(|listed| listed.file))
                .transpose()
        })
    }

    fn newest_named<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<StoredFile>>> {
        Box::pin(async move {
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
        })
    }

    fn read<'a>(
        &'a self,
        file: &'a StoredFile,
        offset: u64,
        chunk_size: usize,
    ) -> BoxFuture<'a, Result<ByteStream>> {
        Box::pin(async move {
            let path = self.stored_path(&file.id);
            let root = self.inner.root.clone();
            let (id, size) = (file.id.clone(), file.size);
            let opened = blocking(move || open_inside(&root, &path, &id, size, offset)).await?;
            let (chunks, queue) = mpsc::channel(READ_AHEAD);
            let id = file.id.clone();
            self.inner.lifecycle.spawn_blocking(move || {
                read_chunks(opened, size - offset, chunk_size, &id, &chunks);
            });
            let bytes = stream::unfold(queue, |mut queue| async move {
                queue.recv().await.map(|item| (item, queue))
            });
            Ok(Box::pin(bytes) as ByteStream)
        })
    }

    fn list<'a>(
        &'a self,
        after: i64,
        limit: u32,
        prefix: Option<&'a NamePrefix>,
    ) -> BoxFuture<'a, Result<Vec<ListedFile>>> {
        Box::pin(async move {
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
        })
    }

    fn delete<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
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
            // The file is deleted now, whatever happens to its bytes: a failure below leaves
            // the record, and the next start-up removes them.
            if let Err(err) = self.remove_bytes(id).await {
                tracing::warn!(%err, file_id = %id, "removing a deleted file's bytes failed; start-up will");
                return Ok(true);
            }
            if let Err(err) = self.forget_deletion(id.as_str()).await {
                tracing::warn!(%err, file_id = %id, "forgetting a finished deletion failed");
            }
            Ok(true)
        })
    }
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
    /// The commit: the file's row in, the upload's row out, in one transaction.
    async fn insert_file(&self, file: &StoredFile) -> Result<()> {
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
}

/// Opens (creating or truncating) the partial file at its durable `offset`, with the hash of
/// the bytes before it.
fn open_partial_file(path: &Path, offset: u64) -> io::Result<(File, Sha256)> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(offset == 0)
        .open(path)?;
    let mut hasher = Sha256::new();
    if offset > 0 {
        let len = file.metadata()?.len();
        if len < offset {
            return Err(io::Error::other(format!(
                "partial file holds {len} bytes, less than its durable offset {offset}"
            )));
        }
        // Bytes after the durable offset may be torn by a crash: the client sends them again.
        file.set_len(offset)?;
        let mut buffer = vec![0; REHASH_BUFFER];
        let mut remaining = offset;
        while remaining > 0 {
            let want = usize::try_from(remaining).map_or(buffer.len(), |r| r.min(buffer.len()));
            file.read_exact(&mut buffer[..want])?;
            hasher.update(&buffer[..want]);
            remaining -= want as u64;
        }
    }
    file.seek(SeekFrom::Start(offset))?;
    Ok((file, hasher))
}

/// Undoes [`move_into_store`] for a commit that failed: the bytes go back to the partial
/// path, durably.
fn move_out_of_store(stored: &Path, partial: &Path) -> io::Result<()> {
    fs::rename(stored, partial)?;
    let tmp = partial
        .parent()
        .ok_or_else(|| io::Error::other("partial path has no parent"))?;
    sync_dir(tmp)
}

/// Renames the durable partial file to its place in the store and makes the rename durable.
fn move_into_store(partial: &Path, stored: &Path) -> io::Result<()> {
    let shard = stored
        .parent()
        .ok_or_else(|| io::Error::other("stored path has no parent"))?;
    let outer = shard
        .parent()
        .ok_or_else(|| io::Error::other("shard has no parent"))?;
    let new_outer = !outer.exists();
    let new_shard = !shard.exists();
    fs::create_dir_all(shard)?;
    fs::rename(partial, stored)?;
    sync_dir(shard)?;
    // A directory created for this file must itself be durable in its parent.
    if new_shard {
        sync_dir(outer)?;
    }
    if new_outer && let Some(root) = outer.parent() {
        sync_dir(root)?;
    }
    Ok(())
}

/// Opens a committed file's bytes, refusing anything that resolves outside `root` (a link
/// planted in the store) and bytes that do not match the row.
fn open_inside(root: &Path, path: &Path, id: &FileId, size: u64, offset: u64) -> Result<File> {
    let damaged = || Error::StoredFileDamaged(id.to_string());
    let resolved = match fs::canonicalize(path) {
        Ok(resolved) => resolved,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(damaged()),
        Err(err) => return Err(storage("resolve stored file", err)),
    };
    if !resolved.starts_with(root) {
        tracing::warn!(file_id = %id, "stored file resolves outside the storage root; refused");
        return Err(Error::FileNotFound(id.to_string()));
    }
    let mut file = File::open(&resolved).map_err(|err| storage("open stored file", err))?;
    let meta = file
        .metadata()
        .map_err(|err| storage("stat stored file", err))?;
    if !meta.is_file() {
        return Err(Error::FileNotFound(id.to_string()));
    }
    if meta.len() != size {
        tracing::warn!(file_id = %id, expected = size, found = meta.len(), "stored file has the wrong size");
        return Err(damaged());
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|err| storage("seek stored file", err))?;
    Ok(file)
}

/// The reader thread of one download: `remaining` bytes in chunks, until done or the client
/// is gone.
fn read_chunks(
    mut file: File,
    mut remaining: u64,
    chunk_size: usize,
    id: &FileId,
    chunks: &mpsc::Sender<Result<Bytes>>,
) {
    while remaining > 0 {
        let want = usize::try_from(remaining).map_or(chunk_size, |r| r.min(chunk_size));
        let mut buffer = vec![0; want];
        let item = match file.read_exact(&mut buffer) {
            Ok(()) => Ok(Bytes::from(buffer)),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                Err(Error::StoredFileDamaged(id.to_string()))
            }
            Err(err) => Err(storage("read stored file", err)),
        };
        let failed = item.is_err();
        if chunks.blocking_send(item).is_err() || failed {
            return;
        }
        remaining -= want as u64;
    }
}

/// An upload's partial file, as the hub sees it: a queue to its writer thread.
#[derive(Debug)]
struct DiskPartial {
    commands: mpsc::Sender<Command>,
    /// The error that stopped the writer, if one did.
    failure: Arc<Mutex<Option<io::Error>>>,
}

enum Command {
    Write(Bytes),
    Sync(oneshot::Sender<io::Result<u64>>),
    Finish(oneshot::Sender<io::Result<(u64, [u8; 32])>>),
}

impl DiskPartial {
    fn writer_error(failure: &Mutex<Option<io::Error>>) -> Error {
        match failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(err) => io_error("write partial", &err),
            None => storage("write partial", "the writer stopped"),
        }
    }
}

impl PartialFile for DiskPartial {
    fn write(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.commands
                .send(Command::Write(data))
                .await
                .map_err(|_| Self::writer_error(&self.failure))
        })
    }

    fn sync(&mut self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.commands
                .send(Command::Sync(reply))
                .await
                .map_err(|_| Self::writer_error(&self.failure))?;
            answer
                .await
                .map_err(|_| Self::writer_error(&self.failure))?
                .map_err(|err| io_error("sync partial", &err))
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<Written>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.commands
                .send(Command::Finish(reply))
                .await
                .map_err(|_| Self::writer_error(&self.failure))?;
            let (size, digest) = answer
                .await
                .map_err(|_| Self::writer_error(&self.failure))?
                .map_err(|err| io_error("finish partial", &err))?;
            Ok(Written {
                size,
                sha256: Checksum::from_digest(&digest),
            })
        })
    }
}

/// The writer thread of one upload: appends in arrival order and passes each chunk on to the
/// upload's hasher thread.
struct Writer {
    file: File,
    /// The hasher thread's queue; closing it makes the thread send the digest.
    to_hasher: std::sync::mpsc::SyncSender<Bytes>,
    digest: std::sync::mpsc::Receiver<[u8; 32]>,
    len: u64,
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl Writer {
    fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        while let Some(command) = queue.blocking_recv() {
            match command {
                Command::Write(data) => {
                    if let Err(err) = self.file.write_all(&data) {
                        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
                        return;
                    }
                    self.len += data.len() as u64;
                    if self.to_hasher.send(data).is_err() {
                        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(io::Error::other("the hasher thread stopped"));
                        return;
                    }
                }
                Command::Sync(reply) => {
                    let _ = reply.send(self.file.sync_data().map(|()| self.len));
                }
                Command::Finish(reply) => {
                    let Self {
                        file,
                        to_hasher,
                        digest,
                        len,
                        ..
                    } = self;
                    drop(to_hasher);
                    let result = file.sync_all().and_then(|()| {
                        let digest = digest
                            .recv()
                            .map_err(|_| io::Error::other("the hasher thread stopped"))?;
                        Ok((len, digest))
                    });
                    let _ = reply.send(result);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use streamhub_conf::DatabaseConf;

    use super::*;

    async fn open(dir: &Path) -> (SqliteFileStore, Recovered) {
        let database = Database::open(&DatabaseConf {
            source: format!("sqlite://{}", dir.join("streamhub.db").display()),
            ..DatabaseConf::default()
        })
        .await
        .expect("database");
        let root = dir.join("files");
        fs::create_dir_all(&root).expect("root");
        SqliteFileStore::open(database, &root, &Lifecycle::new())
            .await
            .expect("open the store")
    }

    fn session(upload_id: Option<&str>, ttl: Duration) -> UploadSession {
        UploadSession {
            file_id: FileId::generate(),
            upload_id: upload_id.map(|id| UploadId::parse(id).expect("valid")),
            file_name: FileName::default(),
            expected_size: None,
            expected_sha256: None,
            durable_offset: 0,
            expires_at: SystemTime::now() + ttl,
        }
    }

    async fn write_all(store: &SqliteFileStore, session: &UploadSession, data: &[u8]) -> u64 {
        let mut partial = store.open_partial(session).await.expect("open partial");
        partial
            .write(Bytes::copy_from_slice(data))
            .await
            .expect("write");
        partial.sync().await.expect("sync")
    }

    /// A committed file named `name` holding `data`, as an upload leaves it.
    async fn committed(store: &SqliteFileStore, name: &str, data: &[u8]) -> StoredFile {
        let mut session = session(None, Duration::from_secs(60));
        session.file_name = FileName::sanitise(name).expect("valid name");
        store.create_upload(&session).await.expect("create");
        let mut partial = store.open_partial(&session).await.expect("open partial");
        partial
            .write(Bytes::copy_from_slice(data))
            .await
            .expect("write");
        let written = partial.finish().await.expect("finish");
        store
            .commit_upload(&session, written, SystemTime::now())
            .await
            .expect("commit")
    }

    /// What a crash right after DeleteFile's transaction leaves: no row, a deletion record,
    /// the bytes still in place.
    async fn interrupted_delete(store: &SqliteFileStore, id: &FileId) {
        let mut tx = store.pool().begin().await.expect("begin");
        sqlx::query("DELETE FROM files WHERE id = ?1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .expect("delete the row");
        sqlx::query("INSERT INTO file_deletions (file_id) VALUES (?1)")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .expect("record the deletion");
        tx.commit().await.expect("commit");
        assert!(store.stored_path(id).exists(), "the bytes are still there");
    }

    async fn pending_deletions(store: &SqliteFileStore) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM file_deletions")
            .fetch_one(store.pool())
            .await
            .expect("count")
    }

    fn names(listed: &[ListedFile]) -> Vec<&str> {
        listed.iter().map(|item| item.file.name.as_str()).collect()
    }

    #[tokio::test]
    async fn a_name_finds_its_newest_file_and_the_previous_one_after_a_delete() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = open(dir.path()).await;
        let first = committed(&store, "reports/q1.txt", b"first").await;
        let other = committed(&store, "reports/q2.txt", b"other").await;
        let second = committed(&store, "reports/q1.txt", b"second").await;
        let newest = |name: &'static str| {
            let store = store.clone();
            async move { store.newest_named(name).await.expect("query") }
        };
        assert_eq!(newest("reports/q1.txt").await, Some(second.clone()));
        assert_eq!(newest("reports/q2.txt").await, Some(other));
        assert_eq!(newest("reports/q3.txt").await, None);
        assert_eq!(newest("reports/").await, None, "a prefix is not a name");
        assert_eq!(newest("q1.txt").await, None, "nor is the last component");

        assert!(store.delete(&second.id).await.expect("delete"));
        assert!(!store.stored_path(&second.id).exists(), "the bytes went");
        assert_eq!(pending_deletions(&store).await, 0, "the record went too");
        assert_eq!(newest("reports/q1.txt").await, Some(first.clone()));
        assert!(
            !store.delete(&second.id).await.expect("again"),
            "already gone"
        );
        assert!(store.delete(&first.id).await.expect("delete"));
        assert_eq!(newest("reports/q1.txt").await, None);
    }

    #[tokio::test]
    async fn names_are_looked_up_through_the_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = open(dir.path()).await;
        let plan = |sql: String| {
            let store = store.clone();
            async move {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .fetch_all(store.pool())
                        .await
                        .expect("plan");
                rows.into_iter()
                    .map(|(_, _, _, detail)| detail)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let by_name = plan(format!(
            "SELECT {FILE_COLUMNS} FROM files INDEXED BY files_name_seq \
             WHERE name = 'a' ORDER BY seq DESC LIMIT 1"
        ))
        .await;
        assert!(
            by_name.contains("USING INDEX files_name_seq (name=?)")
                && !by_name.contains("TEMP B-TREE"),
            "a name is one index seek, in commit order: {by_name}"
        );
        let by_prefix = plan(format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE seq > 0 AND name >= 'a/' AND name < 'a0' \
             ORDER BY seq LIMIT 10"
        ))
        .await;
        assert!(
            by_prefix.contains("files_name_seq") || by_prefix.contains("PRIMARY KEY"),
            "a prefix is a range of the index, or a walk in commit order: {by_prefix}"
        );
        assert!(
            !by_prefix.contains("SCAN files"),
            "never a full scan: {by_prefix}"
        );
    }

    #[tokio::test]
    async fn a_prefix_lists_matching_names_page_by_page_in_commit_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = open(dir.path()).await;
        for name in [
            "reports/a.txt",
            "reports.txt",
            "reports/2026/b.txt",
            "other/reports/c.txt",
            "reportsX",
            "reports/a.txt",
            "reports/ünï.txt",
            "reports0",
        ] {
            committed(&store, name, name.as_bytes()).await;
        }
        let prefix = NamePrefix::parse("reports/").expect("valid").expect("set");
        let first = store.list(0, 2, Some(&prefix)).await.expect("page 1");
        assert_eq!(names(&first), ["reports/a.txt", "reports/2026/b.txt"]);
        let after = first.last().expect("a page").seq;
        let second = store.list(after, 2, Some(&prefix)).await.expect("page 2");
        assert_eq!(names(&second), ["reports/a.txt", "reports/ünï.txt"]);
        let after = second.last().expect("a page").seq;
        let third = store.list(after, 2, Some(&prefix)).await.expect("page 3");
        assert!(third.is_empty(), "{:?}", names(&third));

        let unicode = NamePrefix::parse("reports/ü").expect("valid").expect("set");
        let listed = store.list(0, 10, Some(&unicode)).await.expect("list");
        assert_eq!(names(&listed), ["reports/ünï.txt"]);
        let everything = store.list(0, 100, None).await.expect("list");
        assert_eq!(everything.len(), 8);
    }

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

    #[tokio::test]
    async fn start_up_removes_what_a_crash_left_and_keeps_live_uploads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = open(dir.path()).await;
        let day = Duration::from_secs(86_400);

        // A one-shot upload cut off mid-stream.
        let one_shot = session(None, day);
        store.create_upload(&one_shot).await.expect("create");
        write_all(&store, &one_shot, b"partial").await;
        // A one-shot upload cut off between rename and row commit.
        let renamed = session(None, day);
        store.create_upload(&renamed).await.expect("create");
        write_all(&store, &renamed, b"renamed").await;
        move_into_store(
            &store.partial_path(&renamed.file_id),
            &store.stored_path(&renamed.file_id),
        )
        .expect("rename");
        // A live resumable upload, with 5 durable bytes.
        let live = session(Some("live"), day);
        store.create_upload(&live).await.expect("create");
        let offset = write_all(&store, &live, b"12345").await;
        store
            .record_offset(&live.file_id, offset, live.expires_at)
            .await
            .expect("record");
        // A resumable upload cut off between rename and row commit: its bytes come back.
        let resumable_renamed = session(Some("renamed"), day);
        store
            .create_upload(&resumable_renamed)
            .await
            .expect("create");
        write_all(&store, &resumable_renamed, b"abc").await;
        move_into_store(
            &store.partial_path(&resumable_renamed.file_id),
            &store.stored_path(&resumable_renamed.file_id),
        )
        .expect("rename");
        // An expired resumable upload.
        let expired = session(Some("old"), Duration::ZERO);
        store.create_upload(&expired).await.expect("create");
        write_all(&store, &expired, b"old").await;
        // A stray file in tmp/, and a committed file whose bytes went.
        fs::write(store.inner.tmp.join("stray.part"), b"x").expect("stray");
        // A deletion cut off after its transaction, before the bytes went.
        let deleted = committed(&store, "deleted.txt", b"gone").await;
        interrupted_delete(&store, &deleted.id).await;
        // A committed file whose bytes someone removed behind the store's back: start-up does
        // not look at stored files, so it stays listed (a download answers DATA_LOSS).
        let lost = committed(&store, "lost.txt", b"x").await;
        fs::remove_file(store.stored_path(&lost.id)).expect("remove the bytes");
        let root = store.inner.root.clone();
        drop(store);

        let (store, recovered) = open(dir.path()).await;
        assert_eq!(
            recovered,
            Recovered {
                uploads_kept: 2,
                uploads_removed: 3,
                orphans_removed: 1,
                deletions_finished: 1,
            }
        );
        assert!(!store.stored_path(&deleted.id).exists(), "its bytes went");
        assert_eq!(pending_deletions(&store).await, 0);
        assert_eq!(
            store.file(&lost.id).await.expect("query"),
            Some(lost.clone())
        );
        let mut left: Vec<String> = fs::read_dir(root.join(TMP_DIR))
            .expect("tmp")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        left.sort();
        let mut expected = vec![
            format!("{}.part", live.file_id),
            format!("{}.part", resumable_renamed.file_id),
        ];
        expected.sort();
        assert_eq!(left, expected);
        assert!(!store.stored_path(&renamed.file_id).exists());
        assert!(!store.stored_path(&resumable_renamed.file_id).exists());
        let resumed = store
            .find_upload(&UploadId::parse("live").expect("valid"))
            .await
            .expect("query")
            .expect("kept");
        assert_eq!(resumed.durable_offset, 5);
        let old = UploadId::parse("old").expect("valid");
        assert_eq!(store.find_upload(&old).await.expect("query"), None);
    }

    #[tokio::test]
    async fn a_reopened_partial_continues_with_the_hash_of_its_prefix() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = open(dir.path()).await;
        let mut session = session(Some("hash"), Duration::from_secs(60));
        store.create_upload(&session).await.expect("create");
        write_all(&store, &session, b"hello ").await;
        // Bytes after the durable offset (a torn write) are dropped on reopening.
        session.durable_offset = 6;
        let path = store.partial_path(&session.file_id);
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(b"torn"))
            .expect("append");
        let mut partial = store.open_partial(&session).await.expect("reopen");
        partial
            .write(Bytes::from_static(b"world"))
            .await
            .expect("write");
        let written = partial.finish().await.expect("finish");
        assert_eq!(written.size, 11);
        assert_eq!(
            written.sha256.as_str(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
