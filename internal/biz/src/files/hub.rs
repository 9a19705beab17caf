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
    collections::HashSet,
    fmt,
    pin::pin,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _, stream};

use super::{
    Checksum, FileId, FilePath, FileStore, ListedFile, NamePrefix, StoredFile, UploadChunk,
    UploadHeader, UploadId, UploadProgress, UploadSession,
};
use crate::{Error, Lifecycle, Result, TransferStats};

/// ListFiles' page size when the request leaves it 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// ListFiles' largest page; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// DownloadFile's chunk size when the request leaves it 0.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
/// DownloadFile's chunk size range; requests outside are clamped into it.
pub const MIN_CHUNK_SIZE: usize = 1024;
/// See [`MIN_CHUNK_SIZE`].
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;
/// Sessions the sweeper removes per store query.
const SWEEP_BATCH: u32 = 256;

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

/// Which file a download names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTarget {
    /// `file_id`: exactly this file.
    Id(FileId),
    /// `file_path`: the file whose id it spells, else the newest file of that name.
    Path(FilePath),
}

/// A validated DownloadFile request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    pub target: FileTarget,
    pub offset: u64,
    pub chunk_size: usize,
}

impl DownloadRequest {
    /// A download of `target` from byte `offset`, in chunks of `chunk_size` bytes (the
    /// default when `None`, else clamped to the allowed range).
    pub fn new(target: FileTarget, offset: u64, chunk_size: Option<usize>) -> Self {
        let chunk_size = chunk_size.map_or(DEFAULT_CHUNK_SIZE, |size| {
            size.clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
        });
        Self {
            target,
            offset,
            chunk_size,
        }
    }
}

/// Where a ListFiles page starts: after the file listed last on the page before. The
/// transport encodes it for the client; only cursors this hub handed out are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor(pub i64);

/// What one ListFiles call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Files per page; `None` for the default, larger sizes are clamped to the maximum.
    pub page_size: Option<u32>,
    /// `None` for the first page.
    pub after: Option<PageCursor>,
    /// Only files whose name starts with this.
    pub name_prefix: Option<NamePrefix>,
}

/// One message of a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadPart {
    /// File bytes starting at `offset`.
    Data {
        number: i64,
        offset: u64,
        data: Bytes,
    },
    /// The end: no data; the whole file's size and checksum.
    End {
        number: i64,
        offset: u64,
        size: u64,
        sha256: Checksum,
    },
}

/// A download that passed every check: the file, then its parts.
pub struct Download {
    pub file: StoredFile,
    pub parts: std::pin::Pin<Box<dyn Stream<Item = Result<DownloadPart>> + Send + 'static>>,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// One page of ListFiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePage {
    pub files: Vec<StoredFile>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
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

/// Uploads being written right now.
#[derive(Default)]
struct Claims {
    upload_ids: HashSet<UploadId>,
    file_ids: HashSet<FileId>,
}

impl fmt::Debug for FileHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileHub")
            .field("store", &self.inner.store)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// Releases its claims when dropped, whichever way the upload ends.
struct Claim {
    inner: Arc<Inner>,
    upload_id: Option<UploadId>,
    file_id: Option<FileId>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = self
            .inner
            .claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = &self.upload_id {
            claims.upload_ids.remove(id);
        }
        if let Some(id) = &self.file_id {
            claims.file_ids.remove(id);
        }
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

    /// Checks `request` against the file and starts reading it.
    pub async fn download(&self, request: DownloadRequest) -> Result<Download> {
        let file = match &request.target {
            FileTarget::Id(id) => self
                .inner
                .store
                .file(id)
                .await?
                .ok_or_else(|| Error::FileNotFound(id.to_string()))?,
            FileTarget::Path(path) => self.resolve(path).await?.ok_or(Error::NoFileAtPath)?,
        };
        if request.offset > file.size {
            return Err(Error::OffsetBeyondEnd {
                offset: request.offset,
                size: file.size,
            });
        }
        let chunk_size = request
            .chunk_size
            .min(self.inner.limits.max_chunk_bytes)
            .max(1);
        let bytes = self
            .inner
            .store
            .read(&file, request.offset, chunk_size)
            .await?;
        let cursor = DownloadCursor {
            bytes,
            number: 0,
            offset: request.offset,
            end: Some(DownloadEnd {
                size: file.size,
                sha256: file.sha256.clone(),
            }),
        };
        let transfers = self.inner.transfers.clone();
        let parts = stream::unfold(cursor, move |mut cursor| {
            let transfers = transfers.clone();
            async move {
                // `end` is gone after the end part or an error: the stream is over.
                cursor.end.as_ref()?;
                match cursor.bytes.next().await {
                    Some(Ok(data)) => {
                        let len = data.len() as u64;
                        transfers.downloaded_bytes(len);
                        let part = DownloadPart::Data {
                            number: cursor.number,
                            offset: cursor.offset,
                            data,
                        };
                        cursor.number += 1;
                        cursor.offset += len;
                        Some((Ok(part), cursor))
                    }
                    Some(Err(err)) => {
                        cursor.end = None;
                        Some((Err(err), cursor))
                    }
                    None => {
                        let end = cursor.end.take()?;
                        let part = DownloadPart::End {
                            number: cursor.number,
                            offset: cursor.offset,
                            size: end.size,
                            sha256: end.sha256,
                        };
                        Some((Ok(part), cursor))
                    }
                }
            }
        });
        Ok(Download {
            file,
            parts: Box::pin(parts),
        })
    }

    /// The file a `file_path` names. An id wins over a name: ids are the server's and
    /// unambiguous, while anyone may upload a file *named* like another file's id, which
    /// must not hide that file from a client asking for it by id.
    async fn resolve(&self, path: &FilePath) -> Result<Option<StoredFile>> {
        if let Some(id) = path.file_id()
            && let Some(file) = self.inner.store.file(&id).await?
        {
            return Ok(Some(file));
        }
        self.inner.store.newest_named(path.as_str()).await
    }

    /// One page of files in commit order, only those whose name starts with the query's
    /// prefix when it has one.
    pub async fn list(&self, query: ListQuery) -> Result<FilePage> {
        let limit = query
            .page_size
            .filter(|size| *size > 0)
            .map_or(DEFAULT_PAGE_SIZE, |size| size.min(MAX_PAGE_SIZE));
        let after = query.after.map_or(0, |PageCursor(seq)| seq);
        // One extra row says whether another page follows.
        let mut listed = self
            .inner
            .store
            .list(after, limit + 1, query.name_prefix.as_ref())
            .await?;
        let next = if listed.len() > limit as usize {
            listed.truncate(limit as usize);
            listed.last().map(|last| PageCursor(last.seq))
        } else {
            None
        };
        Ok(FilePage {
            files: listed
                .into_iter()
                .map(|ListedFile { file, .. }| file)
                .collect(),
            next,
        })
    }

    /// Deletes a committed file.
    pub async fn delete(&self, id: &FileId) -> Result<()> {
        if self.inner.store.delete(id).await? {
            Ok(())
        } else {
            Err(Error::FileNotFound(id.to_string()))
        }
    }

    /// Starts removing expired resumable uploads every `interval` until shutdown. Failures
    /// are logged and retried at the next run.
    pub fn spawn_sweeper(&self, interval: Duration) {
        let hub = self.clone();
        self.inner.lifecycle.spawn_every(interval, move || {
            let hub = hub.clone();
            async move {
                match hub.sweep(SystemTime::now()).await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "removed expired uploads"),
                    Err(err) => tracing::warn!(%err, "sweeping expired uploads failed"),
                }
            }
        });
    }

    /// Removes the sessions expired at `now` that no stream is writing; returns how many.
    pub async fn sweep(&self, now: SystemTime) -> Result<usize> {
        let mut removed = 0;
        loop {
            let expired = self.inner.store.expired_uploads(now, SWEEP_BATCH).await?;
            let batch_len = expired.len();
            let mut skipped = 0;
            for session in expired {
                let Some(_claim) = self.inner.claim_for_sweep(&session) else {
                    skipped += 1;
                    continue;
                };
                self.inner.store.discard_upload(&session.file_id).await?;
                removed += 1;
            }
            // A batch of only busy sessions would come back forever: stop.
            if batch_len < SWEEP_BATCH as usize || skipped == batch_len {
                return Ok(removed);
            }
        }
    }
}

struct DownloadEnd {
    size: u64,
    sha256: Checksum,
}

/// Where a download stands: numbers and offsets of the parts sent so far.
struct DownloadCursor {
    bytes: super::ByteStream,
    number: i64,
    offset: u64,
    end: Option<DownloadEnd>,
}

impl Inner {
    fn claim_upload_id(self: &Arc<Self>, upload_id: &UploadId) -> Result<Claim> {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if !claims.upload_ids.insert(upload_id.clone()) {
            return Err(Error::UploadBusy(upload_id.to_string()));
        }
        Ok(Claim {
            inner: Arc::clone(self),
            upload_id: Some(upload_id.clone()),
            file_id: None,
        })
    }

    fn claim_file_id(&self, claim: &mut Claim, file_id: &FileId) {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claims.file_ids.insert(file_id.clone());
        claim.file_id = Some(file_id.clone());
    }

    fn claim_for_sweep(self: &Arc<Self>, session: &UploadSession) -> Option<Claim> {
        let mut claims = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if claims.file_ids.contains(&session.file_id)
            || session
                .upload_id
                .as_ref()
                .is_some_and(|id| claims.upload_ids.contains(id))
        {
            return None;
        }
        claims.file_ids.insert(session.file_id.clone());
        if let Some(id) = &session.upload_id {
            claims.upload_ids.insert(id.clone());
        }
        Some(Claim {
            inner: Arc::clone(self),
            upload_id: session.upload_id.clone(),
            file_id: Some(session.file_id.clone()),
        })
    }

    fn expiry(&self) -> SystemTime {
        SystemTime::now() + self.limits.resume_ttl
    }

    async fn run_upload<S, E>(self: Arc<Self>, chunks: S) -> Result<StoredFile, UploadFailure<E>>
    where
        S: Stream<Item = std::result::Result<UploadChunk, E>> + Send,
    {
        let mut chunks = pin!(chunks);
        let first = chunks
            .next()
            .await
            .transpose()
            .map_err(UploadFailure::Stream)?;
        let header = UploadHeader::from_first(first.as_ref(), self.limits.max_file_bytes)?;
        let mut claim = match &header.upload_id {
            Some(id) => self.claim_upload_id(id)?,
            None => Claim {
                inner: Arc::clone(&self),
                upload_id: None,
                file_id: None,
            },
        };
        let session = self.session_for(header).await?;
        self.claim_file_id(&mut claim, &session.file_id);
        let resumable = session.upload_id.is_some();
        let outcome = self.receive(&session, first, chunks).await;
        let Err((failure, leftover)) = outcome else {
            return outcome.map_err(|(failure, _)| failure);
        };
        let keep = resumable
            && match &failure {
                UploadFailure::Stream(_) => true,
                UploadFailure::Domain(err) => keeps_partial(err),
            };
        if !keep {
            if let Err(err) = self.store.discard_upload(&session.file_id).await {
                tracing::warn!(%err, "discarding a failed upload failed");
            }
            return Err(failure);
        }
        // Everything that arrived becomes durable, so the client resumes from the last byte
        // it sent rather than the last checkpoint.
        let durable = match leftover {
            Leftover::Open(mut partial) => partial.sync().await.map(Some),
            Leftover::Durable(offset) => Ok(Some(offset)),
            Leftover::AsRecorded => Ok(None),
        };
        let recorded = match durable {
            Ok(Some(offset)) => {
                self.store
                    .record_offset(&session.file_id, offset, self.expiry())
                    .await
            }
            Ok(None) => Ok(()),
            Err(err) => Err(err),
        };
        if let Err(err) = recorded {
            // The session still names an offset its bytes cover (offsets are recorded only
            // after a sync), so the upload stays resumable from there.
            tracing::warn!(%err, "recording a broken upload's progress failed");
        }
        Err(failure)
    }

    /// The session this stream writes: a new one, or the live one of its `upload_id`.
    async fn session_for(&self, header: UploadHeader) -> Result<UploadSession> {
        if let Some(upload_id) = &header.upload_id
            && let Some(existing) = self.store.find_upload(upload_id).await?
        {
            if existing.expires_at > SystemTime::now() {
                return Ok(existing);
            }
            // Expired but not swept yet: start afresh.
            self.store.discard_upload(&existing.file_id).await?;
        }
        let session = UploadSession {
            file_id: FileId::generate(),
            upload_id: header.upload_id,
            file_name: header.file_name,
            expected_size: header.expected_size,
            expected_sha256: header.expected_sha256,
            durable_offset: 0,
            expires_at: self.expiry(),
        };
        self.store.create_upload(&session).await?;
        Ok(session)
    }

    /// Writes the stream into the session's partial file and commits it. On failure, hands
    /// back what is left of the bytes so the caller can keep or discard them.
    async fn receive<S, E>(
        &self,
        session: &UploadSession,
        first: Option<UploadChunk>,
        mut chunks: std::pin::Pin<&mut S>,
    ) -> std::result::Result<StoredFile, (UploadFailure<E>, Leftover)>
    where
        S: Stream<Item = std::result::Result<UploadChunk, E>> + Send,
    {
        let mut partial = match self.store.open_partial(session).await {
            Ok(partial) => partial,
            Err(err) => return Err((err.into(), Leftover::AsRecorded)),
        };
        let mut progress = UploadProgress::new(session, self.limits.max_file_bytes);
        let mut checkpoint_at = progress.position() + self.limits.checkpoint_bytes;
        let mut next = first;
        loop {
            if let Some(chunk) = next.take() {
                if let Err(err) = progress.accept(&chunk) {
                    return Err((err.into(), Leftover::Open(partial)));
                }
                let len = chunk.data.len() as u64;
                if let Err(err) = partial.write(chunk.data).await {
                    return Err((err.into(), Leftover::Open(partial)));
                }
                self.transfers.uploaded_bytes(len);
                if session.upload_id.is_some() && progress.position() >= checkpoint_at {
                    checkpoint_at = progress.position() + self.limits.checkpoint_bytes;
                    let recorded = match partial.sync().await {
                        Ok(offset) => {
                            self.store
                                .record_offset(&session.file_id, offset, self.expiry())
                                .await
                        }
                        Err(err) => Err(err),
                    };
                    if let Err(err) = recorded {
                        return Err((err.into(), Leftover::Open(partial)));
                    }
                }
            }
            match chunks.next().await {
                Some(Ok(chunk)) => next = Some(chunk),
                Some(Err(err)) => {
                    return Err((UploadFailure::Stream(err), Leftover::Open(partial)));
                }
                None => break,
            }
        }
        if let Err(err) = progress.finish() {
            return Err((err.into(), Leftover::Open(partial)));
        }
        let written = match partial.finish().await {
            Ok(written) => written,
            Err(err) => return Err((err.into(), Leftover::AsRecorded)),
        };
        if let Err(err) = progress.verify(&written.sha256) {
            return Err((err.into(), Leftover::AsRecorded));
        }
        let size = written.size;
        self.store
            .commit_upload(session, written, SystemTime::now())
            .await
            .map_err(|err| (err.into(), Leftover::Durable(size)))
    }
}

/// What is left of a failed upload's bytes.
enum Leftover {
    /// The partial file is still open: what arrived can be made durable.
    Open(Box<dyn super::PartialFile>),
    /// Every byte is durable in the partial file: the commit itself failed.
    Durable(u64),
    /// Only what the session last recorded is known to be durable.
    AsRecorded,
}

/// Whether a failed resumable upload keeps what arrived: yes when the client may continue
/// (the stream broke, a chunk broke a protocol rule, the server stops, storage failed for a
/// while, even at the commit); no when the content itself is wrong.
fn keeps_partial(error: &Error) -> bool {
    !matches!(
        error,
        Error::ChecksumMismatch { .. }
            | Error::UploadSizeMismatch { .. }
            | Error::FileTooLarge { .. }
    )
}

#[cfg(test)]
mod tests {
    //! How the hub resolves names and ids and pages a prefix, over an in-memory store that
    //! keeps only committed files (the SQL behind the same trait is tested in data).

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::files::{ByteStream, FileName, PartialFile, Written};

    #[derive(Debug, Default)]
    struct MemoryFiles {
        /// (seq, file) in commit order.
        files: Mutex<Vec<(i64, StoredFile)>>,
    }

    fn unused<T>() -> BoxFuture<'static, Result<T>> {
        Box::pin(async { Err(Error::Storage("not used by these tests".to_owned())) })
    }

    impl FileStore for MemoryFiles {
        fn find_upload<'a>(
            &'a self,
            _: &'a UploadId,
        ) -> BoxFuture<'a, Result<Option<UploadSession>>> {
            unused()
        }
        fn create_upload<'a>(&'a self, _: &'a UploadSession) -> BoxFuture<'a, Result<()>> {
            unused()
        }
        fn open_partial<'a>(
            &'a self,
            _: &'a UploadSession,
        ) -> BoxFuture<'a, Result<Box<dyn PartialFile>>> {
            unused()
        }
        fn record_offset<'a>(
            &'a self,
            _: &'a FileId,
            _: u64,
            _: SystemTime,
        ) -> BoxFuture<'a, Result<()>> {
            unused()
        }
        fn discard_upload<'a>(&'a self, _: &'a FileId) -> BoxFuture<'a, Result<()>> {
            unused()
        }
        fn commit_upload<'a>(
            &'a self,
            _: &'a UploadSession,
            _: Written,
            _: SystemTime,
        ) -> BoxFuture<'a, Result<StoredFile>> {
            unused()
        }
        fn expired_uploads(
            &self,
            _: SystemTime,
            _: u32,
        ) -> BoxFuture<'_, Result<Vec<UploadSession>>> {
            unused()
        }
        fn file<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<Option<StoredFile>>> {
            let files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            let found = files
                .iter()
                .find(|(_, file)| file.id == *id)
                .map(|(_, f)| f.clone());
            Box::pin(async move { Ok(found) })
        }
        fn newest_named<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<StoredFile>>> {
            let files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            let found = files
                .iter()
                .rev()
                .find(|(_, file)| file.name.as_str() == name)
                .map(|(_, file)| file.clone());
            Box::pin(async move { Ok(found) })
        }
        fn read<'a>(
            &'a self,
            _: &'a StoredFile,
            _: u64,
            _: usize,
        ) -> BoxFuture<'a, Result<ByteStream>> {
            Box::pin(async { Ok(Box::pin(stream::empty()) as ByteStream) })
        }
        fn list<'a>(
            &'a self,
            after: i64,
            limit: u32,
            prefix: Option<&'a NamePrefix>,
        ) -> BoxFuture<'a, Result<Vec<ListedFile>>> {
            let files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            let page = files
                .iter()
                .filter(|(seq, file)| {
                    *seq > after && prefix.is_none_or(|prefix| prefix.matches(file.name.as_str()))
                })
                .take(limit as usize)
                .map(|(seq, file)| ListedFile {
                    seq: *seq,
                    file: file.clone(),
                })
                .collect();
            Box::pin(async move { Ok(page) })
        }
        fn delete<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<bool>> {
            let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            let before = files.len();
            files.retain(|(_, file)| file.id != *id);
            let deleted = files.len() < before;
            Box::pin(async move { Ok(deleted) })
        }
    }

    impl MemoryFiles {
        fn commit(&self, name: &str) -> StoredFile {
            let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            let file = StoredFile {
                id: FileId::generate(),
                name: FileName::sanitise(name).expect("valid name"),
                size: 0,
                sha256: Checksum::from_digest(&[0; 32]),
                created_at: SystemTime::now(),
            };
            let seq = files.last().map_or(1, |(seq, _)| seq + 1);
            files.push((seq, file.clone()));
            file
        }
    }

    fn hub(store: &Arc<MemoryFiles>) -> FileHub {
        FileHub::new(
            Arc::clone(store) as Arc<dyn FileStore>,
            FileLimits {
                max_file_bytes: 1024,
                resume_ttl: Duration::from_secs(60),
                checkpoint_bytes: 1024,
                max_chunk_bytes: 1024,
            },
            TransferStats::default(),
            &Lifecycle::new(),
        )
    }

    async fn resolved(hub: &FileHub, file_path: &str) -> Result<FileId> {
        let request = DownloadRequest::new(FileTarget::Path(FilePath::parse(file_path)?), 0, None);
        hub.download(request).await.map(|download| download.file.id)
    }

    #[tokio::test]
    async fn a_path_is_an_id_first_then_the_newest_file_of_that_name() {
        let store = Arc::new(MemoryFiles::default());
        let hub = hub(&store);
        let old = store.commit("reports/q1.txt");
        let new = store.commit("reports/q1.txt");
        let impostor = store.commit(old.id.as_str());
        assert_eq!(
            resolved(&hub, "reports/q1.txt").await.ok(),
            Some(new.id.clone())
        );
        assert_eq!(
            resolved(&hub, old.id.as_str()).await.ok(),
            Some(old.id.clone())
        );
        let shard = old.id.shard_path();
        let storage_place = shard.to_str().expect("ascii");
        assert_eq!(
            resolved(&hub, storage_place).await.ok(),
            Some(old.id.clone())
        );

        hub.delete(&new.id).await.expect("delete");
        assert_eq!(
            resolved(&hub, "reports/q1.txt").await.ok(),
            Some(old.id.clone())
        );
        hub.delete(&old.id).await.expect("delete");
        assert_eq!(
            resolved(&hub, old.id.as_str()).await.ok(),
            Some(impostor.id)
        );
        let missing = resolved(&hub, "reports/q1.txt").await;
        assert!(matches!(missing, Err(Error::NoFileAtPath)), "{missing:?}");
    }

    #[tokio::test]
    async fn a_prefix_pages_with_the_same_tokens() {
        let store = Arc::new(MemoryFiles::default());
        let hub = hub(&store);
        let mut expected = Vec::new();
        for n in 0..5 {
            expected.push(store.commit(&format!("reports/{n}.txt")).id);
            store.commit(&format!("other/{n}.txt"));
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = hub
                .list(ListQuery {
                    page_size: Some(2),
                    after,
                    name_prefix: NamePrefix::parse("reports/").expect("a prefix"),
                })
                .await
                .expect("list");
            seen.extend(page.files.into_iter().map(|file| file.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
    }
}
