//! Uploads: an upload's partial file, written by a thread of its own and hashed by another.
//!
//! The hub sees a [`PartialFile`]: a bounded queue of [`WRITE_QUEUE`] chunks to the writer
//! thread, so a full queue holds back the client's own stream and nothing else. The writer
//! appends in arrival order and hands each chunk's `Bytes` on to the hasher thread, which
//! shares it rather than copying it. Both are blocking tasks of the application's tracker and
//! end when the queue's other side goes.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read as _, Seek as _, SeekFrom, Write as _},
    path::Path,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use sha2::{Digest as _, Sha256};
use streamhub_biz::{
    Error, Result,
    files::{Checksum, PartialFile, UploadSession, Written},
};
use tokio::sync::{mpsc, oneshot};

use super::{
    SqliteFileStore,
    disk::{blocking, sync_dir},
    io_error, storage,
};
use crate::mutex::lock;

/// Chunks queued between a client's stream and its writer thread.
const WRITE_QUEUE: usize = 4;
/// Buffer for re-hashing the durable part of a resumed upload.
const REHASH_BUFFER: usize = 1024 * 1024;

impl SqliteFileStore {
    /// Opens `session`'s partial file at its durable offset and starts its writer and hasher
    /// threads.
    pub(super) async fn open_writer(
        &self,
        session: &UploadSession,
    ) -> Result<Box<dyn PartialFile>> {
        let path = self.partial_path(&session.file_id);
        let tmp = self.inner.tmp.clone();
        let offset = session.durable_offset;
        let resumable = session.upload_id.is_some();
        let (file, hasher) = blocking(move || {
            let opened =
                open_partial_file(&path, offset).map_err(|err| io_error("open partial", &err))?;
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
        match lock(failure).take() {
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
                        *lock(&self.failure) = Some(err);
                        return;
                    }
                    self.len += data.len() as u64;
                    if self.to_hasher.send(data).is_err() {
                        *lock(&self.failure) = Some(io::Error::other("the hasher thread stopped"));
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
