//! [`FileHub`]: uploads, downloads, listing and deletion over a [`FileStore`].
//!
//! An upload runs in a task of its own (tracked, so shutdown waits for it): when a client
//! cancels, tonic drops the handler, but the task still sees the broken stream and cleans up
//! (or, for a resumable upload, makes what arrived durable). The chunk stream it is given
//! decides when the upload is over: it ends (`None`) only for a client that half-closed, and
//! with an error for one that cancelled or a server that shuts down. Uploads in progress are claimed in
//! an in-memory set so one `upload_id` is written by one stream at a time and the sweeper never
//! removes an upload that is being written.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use futures_util::Stream;

use super::{FileId, FileStore, StoredFile, UploadChunk, UploadId};
use crate::{Error, Lifecycle, Result, TransferStats};

mod claims;
mod download;
mod listing;
mod sweep;
mod upload_task;

pub use download::{
    DEFAULT_CHUNK_SIZE, Download, DownloadPart, DownloadRequest, FileTarget, MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
};
pub use listing::{DEFAULT_PAGE_SIZE, FilePage, ListQuery, MAX_PAGE_SIZE, PageCursor};

use claims::Claims;

/// The limits of the file service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// How long a resumable upload is kept after its last progress.
    pub resume_ttl: Duration,
    /// A resumable upload makes its bytes durable (and its offset visible to
    /// GetUploadStatus) at least every this many bytes, besides when its stream breaks.
    pub checkpoint_bytes: u64,
    /// Largest download chunk the transport can send (its message limit less framing);
    /// requests for larger chunks get this size.
    pub max_chunk_bytes: usize,
}

/// How an upload failed: a rule or storage ([`Error`]), or the client's stream itself (`E`,
/// which the caller passes through: a transport error, or a chunk it could not convert).
#[derive(Debug)]
pub enum UploadFailure<E> {
    Domain(Error),
    Stream(E),
}

impl<E> From<Error> for UploadFailure<E> {
    fn from(error: Error) -> Self {
        Self::Domain(error)
    }
}

/// A cheap handle on the file service.
#[derive(Clone)]
pub struct FileHub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn FileStore>,
    limits: FileLimits,
    claims: Mutex<Claims>,
    lifecycle: Lifecycle,
    /// Bytes received and sent, for the metrics.
    transfers: TransferStats,
}

impl fmt::Debug for FileHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileHub")
            .field("store", &self.inner.store)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl FileHub {
    /// A hub over `store`. Upload tasks and the sweeper run on `lifecycle`; every byte
    /// received or sent is counted into `transfers`.
    pub fn new(
        store: Arc<dyn FileStore>,
        limits: FileLimits,
        transfers: TransferStats,
        lifecycle: &Lifecycle,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                limits,
                claims: Mutex::new(Claims::default()),
                lifecycle: lifecycle.clone(),
                transfers,
            }),
        }
    }

    /// Receives one UploadFile stream and, when it ends (the client half-closed), commits the
    /// file. A stream that fails instead keeps a resumable upload's bytes for a later stream.
    pub async fn upload<S, E>(&self, chunks: S) -> Result<StoredFile, UploadFailure<E>>
    where
        S: Stream<Item = std::result::Result<UploadChunk, E>> + Send + 'static,
        E: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        self.inner
            .lifecycle
            .spawn(async move { inner.run_upload(chunks).await })
            .await
            .map_err(|err| Error::Storage(format!("upload task failed: {err}")))?
    }

    /// How many bytes of resumable upload `upload_id` are durably stored.
    pub async fn upload_status(&self, upload_id: &UploadId) -> Result<u64> {
        match self.inner.store.find_upload(upload_id).await? {
            Some(session) if session.expires_at > SystemTime::now() => Ok(session.durable_offset),
            _ => Err(Error::UploadNotFound(upload_id.to_string())),
        }
    }

    /// Deletes a committed file.
    pub async fn delete(&self, id: &FileId) -> Result<()> {
        if self.inner.store.delete(id).await? {
            Ok(())
        } else {
            Err(Error::FileNotFound(id.to_string()))
        }
    }
}

#[cfg(test)]
mod lookup_tests;
