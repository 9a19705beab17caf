//! What the file service needs from storage; `streamhub-data` implements it (bytes on disk,
//! rows in SQLite).
//!
//! One trait covers both bytes and rows because the promise that matters spans them: a file is
//! visible exactly when its bytes are durable in the store *and* its row is committed.

use std::{fmt, pin::Pin, time::SystemTime};

use bytes::Bytes;
use futures_util::{Stream, future::BoxFuture};

use super::{Checksum, FileId, FileName, NamePrefix, UploadId};
use crate::Result;

/// A committed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub id: FileId,
    pub name: FileName,
    pub size: u64,
    pub sha256: Checksum,
    pub created_at: SystemTime,
}

/// A file as ListFiles pages through them: `seq` orders files by commit and is the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub seq: i64,
    pub file: StoredFile,
}

/// An upload in progress, as stored. Every upload has one (so a crash mid-upload leaves a
/// record of what to clean up); only those with an `upload_id` survive a broken stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    /// The id the file gets when the upload commits; also names its partial bytes.
    pub file_id: FileId,
    /// The client's name for a resumable upload; `None` for a one-shot upload.
    pub upload_id: Option<UploadId>,
    pub file_name: FileName,
    /// `total_bytes` as the client declared it, if it did.
    pub expected_size: Option<u64>,
    /// `checksum` as the client declared it, if it did.
    pub expected_sha256: Option<Checksum>,
    /// Bytes stored durably: a resumed stream continues here.
    pub durable_offset: u64,
    /// After this the session may be swept.
    pub expires_at: SystemTime,
}

/// What a finished partial file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    pub sha256: Checksum,
}

/// A boxed stream of a file's bytes in chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'static>>;

/// The partial bytes of one upload, written and hashed off the async runtime. Writes are
/// queued (bounded: a full queue makes [`PartialFile::write`] wait, which holds back the
/// client's own stream).
pub trait PartialFile: Send + fmt::Debug {
    /// Queues `data` to be appended.
    fn write(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>>;
    /// Waits for every queued write, makes the bytes durable and returns how many there are.
    fn sync(&mut self) -> BoxFuture<'_, Result<u64>>;
    /// Like [`PartialFile::sync`], and returns size and SHA-256 of the whole content.
    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<Written>>;
}

/// Storage of committed files and of partial uploads.
pub trait FileStore: Send + Sync + fmt::Debug + 'static {
    /// The live session of `upload_id`, if any (expired ones included; the caller checks).
    fn find_upload<'a>(
        &'a self,
        upload_id: &'a UploadId,
    ) -> BoxFuture<'a, Result<Option<UploadSession>>>;

    /// Records a new session (its partial file starts empty).
    fn create_upload<'a>(&'a self, session: &'a UploadSession) -> BoxFuture<'a, Result<()>>;

    /// Opens the session's partial file at its durable offset (dropping anything written
    /// after it) with the hash of the bytes before it.
    fn open_partial<'a>(
        &'a self,
        session: &'a UploadSession,
    ) -> BoxFuture<'a, Result<Box<dyn PartialFile>>>;

    /// Records that `offset` bytes of the session are durable, and its new expiry.
    fn record_offset<'a>(
        &'a self,
        file_id: &'a FileId,
        offset: u64,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<()>>;

    /// Removes the session and its partial bytes.
    fn discard_upload<'a>(&'a self, file_id: &'a FileId) -> BoxFuture<'a, Result<()>>;

    /// Moves the (finished, durable) partial file into the store and commits its row in the
    /// same transaction that removes the session. Only then is the file visible.
    fn commit_upload<'a>(
        &'a self,
        session: &'a UploadSession,
        written: Written,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<StoredFile>>;

    /// Up to `limit` sessions that expired before `now`.
    fn expired_uploads(
        &self,
        now: SystemTime,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<UploadSession>>>;

    /// The committed file `id`, if it exists.
    fn file<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<Option<StoredFile>>>;

    /// The most recently committed file named exactly `name`, if any. Looked up through an
    /// index on name and commit order, never a scan of every file.
    fn newest_named<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<StoredFile>>>;

    /// The bytes of `file` from `offset` on, in chunks of `chunk_size` (the last may be
    /// shorter). Fails before returning if the bytes are missing or do not match the row.
    fn read<'a>(
        &'a self,
        file: &'a StoredFile,
        offset: u64,
        chunk_size: usize,
    ) -> BoxFuture<'a, Result<ByteStream>>;

    /// Up to `limit` files committed after the one with `seq` `after`, in commit order; with
    /// `prefix`, only those whose name starts with it.
    fn list<'a>(
        &'a self,
        after: i64,
        limit: u32,
        prefix: Option<&'a NamePrefix>,
    ) -> BoxFuture<'a, Result<Vec<ListedFile>>>;

    /// Deletes file `id`; `false` if it did not exist. Once this returns `true` the file is
    /// gone for good (its name means the previous file of that name again), even if the
    /// process dies before its bytes are removed.
    fn delete<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<bool>>;
}
