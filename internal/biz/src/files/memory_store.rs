//! [`MemoryFileStore`]: a [`FileStore`] in memory, for the hub's unit tests.
//!
//! It keeps the promises of the real store (the suite in [`super::contract`] runs against
//! both) and can be told what a disk and a database cannot be told on cue: fail one operation
//! ([`MemoryFileStore::fail_next`]), hold every call of one until the test lets it go
//! ([`MemoryFileStore::hold`], to line up a race deterministically), and say what it was asked
//! to do, in order ([`MemoryFileStore::journal`]).
//!
//! Bytes: a partial file is a buffer named by its file id, as a file is named by its path.
//! A [`PartialFile`] writes to the buffer it opened, so one that outlives a discard writes
//! into nothing, like a file descriptor on an unlinked file; a commit then finds no partial.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use futures_util::{future::BoxFuture, stream};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Notify, Semaphore};

use super::{
    ByteStream, Checksum, FileId, FileStore, ListedFile, NamePrefix, PartialFile, StoredFile,
    UploadId, UploadSession, Written,
};
use crate::{Error, Result, mutex::lock};

/// An operation of the store or of a partial file, to fail or hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    FindUpload,
    CreateUpload,
    OpenPartial,
    Write,
    Sync,
    Finish,
    RecordOffset,
    DiscardUpload,
    CommitUpload,
    ExpiredUploads,
}

/// What the store did, in the order it did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Created(FileId),
    /// A partial file opened at this offset.
    Opened(FileId, u64),
    /// Bytes appended to a partial file.
    Wrote(FileId, usize),
    /// A partial file made durable; it holds this many bytes.
    Synced(FileId, u64),
    /// A partial file finished (made durable and hashed) holding this many bytes.
    Finished(FileId, u64),
    Recorded(FileId, u64),
    Discarded(FileId),
    Committed(FileId),
    /// A call failed as the test asked.
    Failed(Op),
}

/// The store; cheap to clone, the clones share everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryFileStore {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Failures queued per operation; each is returned once, in order.
    faults: Mutex<HashMap<Op, VecDeque<Error>>>,
    holds: Mutex<HashMap<Op, Arc<Hold>>>,
    journal: Mutex<Vec<Event>>,
    /// Woken on every journal entry.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<FileId, UploadSession>,
    partials: HashMap<FileId, Buffer>,
    /// In commit order.
    files: Vec<Committed>,
    last_seq: i64,
}

type Buffer = Arc<Mutex<Vec<u8>>>;

#[derive(Debug)]
struct Committed {
    seq: i64,
    file: StoredFile,
    bytes: Bytes,
}

/// Calls of one operation wait here until the test releases them.
#[derive(Debug)]
pub(crate) struct Hold {
    open: Semaphore,
    arrived: Semaphore,
}

impl Hold {
    /// Waits until one more call has arrived at the hold (and is waiting, or was let through).
    pub(crate) async fn arrival(&self) {
        if let Ok(permit) = self.arrived.acquire().await {
            permit.forget();
        }
    }

    /// Lets every call, held or to come, go on.
    pub(crate) fn open_for_good(&self) {
        self.open.close();
    }
}

impl MemoryFileStore {
    /// Makes the next call of `op` fail with `error` (after any failures queued before).
    pub(crate) fn fail_next(&self, op: Op, error: Error) {
        lock(&self.shared.faults)
            .entry(op)
            .or_default()
            .push_back(error);
    }

    /// Makes every later call of `op` wait until the returned hold lets it go.
    pub(crate) fn hold(&self, op: Op) -> Arc<Hold> {
        let hold = Arc::new(Hold {
            open: Semaphore::new(0),
            arrived: Semaphore::new(0),
        });
        lock(&self.shared.holds).insert(op, Arc::clone(&hold));
        hold
    }

    /// Everything the store did so far.
    pub(crate) fn journal(&self) -> Vec<Event> {
        lock(&self.shared.journal).clone()
    }

    /// Waits until the journal satisfies `condition`.
    pub(crate) async fn until(&self, condition: impl Fn(&[Event]) -> bool) {
        loop {
            let changed = self.shared.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if condition(&lock(&self.shared.journal)) {
                return;
            }
            changed.await;
        }
    }

    /// The session of `upload_id`, if the store has one.
    pub(crate) fn session(&self, upload_id: &str) -> Option<UploadSession> {
        lock(&self.shared.state)
            .sessions
            .values()
            .find(|session| session.upload_id.as_ref().map(UploadId::as_str) == Some(upload_id))
            .cloned()
    }

    /// Every session, in no particular order.
    pub(crate) fn sessions(&self) -> Vec<UploadSession> {
        lock(&self.shared.state)
            .sessions
            .values()
            .cloned()
            .collect()
    }

    /// The bytes of `file_id`'s partial file, if it has one.
    pub(crate) fn partial(&self, file_id: &FileId) -> Option<Vec<u8>> {
        let buffer = lock(&self.shared.state).partials.get(file_id).cloned()?;
        let bytes = lock(&buffer).clone();
        Some(bytes)
    }

    /// How many partial files there are.
    pub(crate) fn partials(&self) -> usize {
        lock(&self.shared.state).partials.len()
    }

    /// The committed files, in commit order.
    pub(crate) fn files(&self) -> Vec<StoredFile> {
        lock(&self.shared.state)
            .files
            .iter()
            .map(|committed| committed.file.clone())
            .collect()
    }

    /// The bytes of committed file `id`.
    pub(crate) fn bytes(&self, id: &FileId) -> Option<Bytes> {
        lock(&self.shared.state)
            .files
            .iter()
            .find(|committed| committed.file.id == *id)
            .map(|committed| committed.bytes.clone())
    }

    /// Moves the expiry of `upload_id`'s session to long ago.
    pub(crate) fn expire(&self, upload_id: &str) {
        let mut state = lock(&self.shared.state);
        let session = state
            .sessions
            .values_mut()
            .find(|session| session.upload_id.as_ref().map(UploadId::as_str) == Some(upload_id));
        if let Some(session) = session {
            session.expires_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        }
    }

    fn log(&self, event: Event) {
        lock(&self.shared.journal).push(event);
        self.shared.changed.notify_waiters();
    }

    /// Where every call starts: waits at a hold on `op`, then fails if a failure is queued.
    async fn enter(&self, op: Op) -> Result<()> {
        let hold = lock(&self.shared.holds).get(&op).cloned();
        if let Some(hold) = hold {
            hold.arrived.add_permits(1);
            // A closed hold lets everything through.
            if let Ok(permit) = hold.open.acquire().await {
                permit.forget();
            }
        }
        let fault = lock(&self.shared.faults)
            .get_mut(&op)
            .and_then(VecDeque::pop_front);
        match fault {
            Some(error) => {
                self.log(Event::Failed(op));
                Err(error)
            }
            None => Ok(()),
        }
    }

    fn listed(&self) -> Vec<ListedFile> {
        lock(&self.shared.state)
            .files
            .iter()
            .map(|committed| ListedFile {
                seq: committed.seq,
                file: committed.file.clone(),
            })
            .collect()
    }
}

impl FileStore for MemoryFileStore {
    fn find_upload<'a>(
        &'a self,
        upload_id: &'a UploadId,
    ) -> BoxFuture<'a, Result<Option<UploadSession>>> {
        Box::pin(async move {
            self.enter(Op::FindUpload).await?;
            Ok(self.session(upload_id.as_str()))
        })
    }

    fn create_upload<'a>(&'a self, session: &'a UploadSession) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.enter(Op::CreateUpload).await?;
            {
                let mut state = lock(&self.shared.state);
                let taken = state.sessions.values().any(|other| {
                    other.file_id == session.file_id
                        || (session.upload_id.is_some() && other.upload_id == session.upload_id)
                });
                if taken {
                    // What the real store's unique keys answer.
                    return Err(Error::Storage("the session's ids are taken".to_owned()));
                }
                state
                    .sessions
                    .insert(session.file_id.clone(), session.clone());
            }
            self.log(Event::Created(session.file_id.clone()));
            Ok(())
        })
    }

    fn open_partial<'a>(
        &'a self,
        session: &'a UploadSession,
    ) -> BoxFuture<'a, Result<Box<dyn PartialFile>>> {
        Box::pin(async move {
            self.enter(Op::OpenPartial).await?;
            let offset = session.durable_offset;
            let (buffer, hasher) = {
                let mut state = lock(&self.shared.state);
                let buffer = Arc::clone(state.partials.entry(session.file_id.clone()).or_default());
                let mut bytes = lock(&buffer);
                let len = bytes.len() as u64;
                if len < offset {
                    return Err(Error::Storage(format!(
                        "partial file holds {len} bytes, less than its durable offset {offset}"
                    )));
                }
                // What followed the durable offset may be torn: the client sends it again.
                bytes.truncate(usize::try_from(offset).unwrap_or(usize::MAX));
                let hasher = Sha256::new_with_prefix(&*bytes);
                drop(bytes);
                (buffer, hasher)
            };
            self.log(Event::Opened(session.file_id.clone(), offset));
            Ok(Box::new(MemoryPartial {
                store: self.clone(),
                file_id: session.file_id.clone(),
                buffer,
                hasher,
            }) as Box<dyn PartialFile>)
        })
    }

    fn record_offset<'a>(
        &'a self,
        file_id: &'a FileId,
        offset: u64,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.enter(Op::RecordOffset).await?;
            if let Some(session) = lock(&self.shared.state).sessions.get_mut(file_id) {
                session.durable_offset = offset;
                session.expires_at = expires_at;
            }
            self.log(Event::Recorded(file_id.clone(), offset));
            Ok(())
        })
    }

    fn discard_upload<'a>(&'a self, file_id: &'a FileId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.enter(Op::DiscardUpload).await?;
            {
                let mut state = lock(&self.shared.state);
                state.partials.remove(file_id);
                state.sessions.remove(file_id);
            }
            self.log(Event::Discarded(file_id.clone()));
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
            self.enter(Op::CommitUpload).await?;
            let file = {
                let mut state = lock(&self.shared.state);
                if state.files.iter().any(|c| c.file.id == session.file_id) {
                    return Err(Error::Storage("the file id is taken".to_owned()));
                }
                let Some(buffer) = state.partials.remove(&session.file_id) else {
                    return Err(Error::Storage("the partial file is gone".to_owned()));
                };
                let bytes = Bytes::from(lock(&buffer).clone());
                state.sessions.remove(&session.file_id);
                state.last_seq += 1;
                let file = StoredFile {
                    id: session.file_id.clone(),
                    name: session.file_name.clone(),
                    size: written.size,
                    sha256: written.sha256,
                    created_at: at,
                };
                let seq = state.last_seq;
                state.files.push(Committed {
                    seq,
                    file: file.clone(),
                    bytes,
                });
                file
            };
            self.log(Event::Committed(file.id.clone()));
            Ok(file)
        })
    }

    fn expired_uploads(
        &self,
        now: SystemTime,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<UploadSession>>> {
        Box::pin(async move {
            self.enter(Op::ExpiredUploads).await?;
            let mut expired: Vec<UploadSession> = lock(&self.shared.state)
                .sessions
                .values()
                .filter(|session| session.expires_at < now)
                .cloned()
                .collect();
            expired.sort_by_key(|session| session.expires_at);
            expired.truncate(limit as usize);
            Ok(expired)
        })
    }

    fn file<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<Option<StoredFile>>> {
        let found = self.files().into_iter().find(|file| file.id == *id);
        Box::pin(async move { Ok(found) })
    }

    fn newest_named<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<StoredFile>>> {
        let found = self
            .files()
            .into_iter()
            .rev()
            .find(|file| file.name.as_str() == name);
        Box::pin(async move { Ok(found) })
    }

    fn read<'a>(
        &'a self,
        file: &'a StoredFile,
        offset: u64,
        chunk_size: usize,
    ) -> BoxFuture<'a, Result<ByteStream>> {
        let bytes = self
            .bytes(&file.id)
            .filter(|bytes| bytes.len() as u64 == file.size);
        Box::pin(async move {
            let bytes = bytes.ok_or_else(|| Error::StoredFileDamaged(file.id.to_string()))?;
            let from = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let chunks: Vec<Result<Bytes>> = bytes
                .slice(from..)
                .chunks(chunk_size.max(1))
                .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                .collect();
            Ok(Box::pin(stream::iter(chunks)) as ByteStream)
        })
    }

    fn list<'a>(
        &'a self,
        after: i64,
        limit: u32,
        prefix: Option<&'a NamePrefix>,
    ) -> BoxFuture<'a, Result<Vec<ListedFile>>> {
        let page = self
            .listed()
            .into_iter()
            .filter(|listed| {
                listed.seq > after
                    && prefix.is_none_or(|prefix| prefix.matches(listed.file.name.as_str()))
            })
            .take(limit as usize)
            .collect();
        Box::pin(async move { Ok(page) })
    }

    fn delete<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<bool>> {
        let mut state = lock(&self.shared.state);
        let before = state.files.len();
        state.files.retain(|committed| committed.file.id != *id);
        let deleted = state.files.len() < before;
        Box::pin(async move { Ok(deleted) })
    }
}

/// A partial file: a buffer in the store, and the hash of everything in it.
struct MemoryPartial {
    store: MemoryFileStore,
    file_id: FileId,
    buffer: Buffer,
    hasher: Sha256,
}

impl fmt::Debug for MemoryPartial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPartial")
            .field("file_id", &self.file_id)
            .finish_non_exhaustive()
    }
}

impl PartialFile for MemoryPartial {
    fn write(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.store.enter(Op::Write).await?;
            lock(&self.buffer).extend_from_slice(&data);
            self.hasher.update(&data);
            self.store
                .log(Event::Wrote(self.file_id.clone(), data.len()));
            Ok(())
        })
    }

    fn sync(&mut self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            self.store.enter(Op::Sync).await?;
            let len = lock(&self.buffer).len() as u64;
            self.store.log(Event::Synced(self.file_id.clone(), len));
            Ok(len)
        })
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<Written>> {
        Box::pin(async move {
            self.store.enter(Op::Finish).await?;
            let size = lock(&self.buffer).len() as u64;
            self.store.log(Event::Finished(self.file_id.clone(), size));
            Ok(Written {
                size,
                sha256: Checksum::from_digest(&self.hasher.finalize().into()),
            })
        })
    }
}

/// The contract every store keeps, run against this one.
mod contract {
    use std::sync::Arc;

    use super::MemoryFileStore;
    use crate::files::FileStore;

    async fn memory_store() -> (Arc<dyn FileStore>, ()) {
        (Arc::new(MemoryFileStore::default()), ())
    }

    crate::file_store_contract!(memory_store);
}
