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
//!
//! This file holds the store and the orders above; the parts live beside it: [`sql`] (every
//! statement and row), [`recovery`] (start-up), [`disk`] (durable moves and removals),
//! [`writer`] (an upload's writer and hasher threads) and [`reader`] (a download's reader
//! thread).

mod disk;
mod reader;
mod recovery;
mod sql;
#[cfg(test)]
mod tests;
mod writer;

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use futures_util::future::BoxFuture;
use streamhub_biz::{
    Error, Lifecycle, Result,
    files::{
        ByteStream, FileId, FileStore, ListedFile, NamePrefix, PartialFile, StoredFile, UploadId,
        UploadSession, Written,
    },
};

use self::disk::{blocking, move_into_store, move_out_of_store, remove_if_present, sync_dir};
pub use self::recovery::Recovered;
use crate::{
    DataError, Database,
    database::{database_span, in_span},
};

/// Directory of partial uploads, inside the root. Shard directories have two hex digits, so
/// the names never meet.
const TMP_DIR: &str = "tmp";

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
}

impl FileStore for SqliteFileStore {
    fn find_upload<'a>(
        &'a self,
        upload_id: &'a UploadId,
    ) -> BoxFuture<'a, Result<Option<UploadSession>>> {
        let span = database_span!("db.files.find_upload", "SELECT");
        in_span(span, self.select_upload(upload_id))
    }

    fn create_upload<'a>(&'a self, session: &'a UploadSession) -> BoxFuture<'a, Result<()>> {
        let span = database_span!("db.files.create_upload", "INSERT", file_id = %session.file_id);
        in_span(span, self.insert_upload(session))
    }

    fn open_partial<'a>(
        &'a self,
        session: &'a UploadSession,
    ) -> BoxFuture<'a, Result<Box<dyn PartialFile>>> {
        Box::pin(self.open_writer(session))
    }

    fn record_offset<'a>(
        &'a self,
        file_id: &'a FileId,
        offset: u64,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<()>> {
        let span = database_span!(
            "db.files.record_offset",
            "UPDATE",
            file_id = %file_id,
            offset = i64::try_from(offset).unwrap_or(i64::MAX)
        );
        in_span(span, self.update_offset(file_id, offset, expires_at))
    }

    fn discard_upload<'a>(&'a self, file_id: &'a FileId) -> BoxFuture<'a, Result<()>> {
        let span = database_span!("db.files.discard_upload", "DELETE", file_id = %file_id);
        in_span(span, async move {
            let partial = self.partial_path(file_id);
            blocking(move || {
                remove_if_present(&partial).map_err(|err| storage("remove partial", err))?;
                Ok(())
            })
            .await?;
            self.delete_upload(file_id).await
        })
    }

    fn commit_upload<'a>(
        &'a self,
        session: &'a UploadSession,
        written: Written,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<StoredFile>> {
        let span = database_span!(
            "db.files.commit_upload",
            "INSERT",
            file_id = %session.file_id
        );
        in_span(span, async move {
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
        let span = database_span!(
            "db.files.expired_uploads",
            "SELECT",
            limit = i64::from(limit)
        );
        in_span(span, self.select_expired(now, limit))
    }

    fn file<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<Option<StoredFile>>> {
        let span = database_span!("db.files.file", "SELECT", file_id = %id);
        in_span(span, self.select_file(id))
    }

    fn newest_named<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<StoredFile>>> {
        let span = database_span!("db.files.newest_named", "SELECT");
        in_span(span, self.select_newest_named(name))
    }

    fn read<'a>(
        &'a self,
        file: &'a StoredFile,
        offset: u64,
        chunk_size: usize,
    ) -> BoxFuture<'a, Result<ByteStream>> {
        Box::pin(self.open_reader(file, offset, chunk_size))
    }

    fn list<'a>(
        &'a self,
        after: i64,
        limit: u32,
        prefix: Option<&'a NamePrefix>,
    ) -> BoxFuture<'a, Result<Vec<ListedFile>>> {
        let span = database_span!("db.files.list", "SELECT", after, limit = i64::from(limit));
        in_span(span, self.select_page(after, limit, prefix))
    }

    fn delete<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<bool>> {
        let span = database_span!("db.files.delete", "DELETE", file_id = %id);
        in_span(span, async move {
            if !self.delete_file_row(id).await? {
                return Ok(false);
            }
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
