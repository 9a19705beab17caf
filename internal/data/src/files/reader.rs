//! Downloads: a committed file's bytes, read by a thread of their own into a bounded queue.
//!
//! The reader thread runs ahead of the client by [`READ_AHEAD`] chunks at most, so a slow
//! client holds back only its own reader; it ends when the bytes do or when the client's side
//! of the queue goes.

use std::{
    fs::{self, File},
    io::{self, Read as _, Seek as _, SeekFrom},
    path::Path,
};

use bytes::Bytes;
use futures_util::stream;
use streamhub_biz::{
    Error, Result,
    files::{ByteStream, FileId, StoredFile},
};
use tokio::sync::mpsc;

use super::{SqliteFileStore, disk::blocking, storage};

/// Chunks a download's reader thread reads ahead of the client.
const READ_AHEAD: usize = 4;

impl SqliteFileStore {
    /// The bytes of `file` from `offset` on, in chunks of `chunk_size`, from a reader thread
    /// of the application's tracker.
    pub(super) async fn open_reader(
        &self,
        file: &StoredFile,
        offset: u64,
        chunk_size: usize,
    ) -> Result<ByteStream> {
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
    }
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
