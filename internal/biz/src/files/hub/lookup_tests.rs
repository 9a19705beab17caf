//! How the hub resolves names and ids and pages a prefix, over an in-memory store that
//! keeps only committed files (the SQL behind the same trait is tested in data).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use futures_util::{future::BoxFuture, stream};

use super::*;
use crate::{
    files::{
        ByteStream, Checksum, FileName, FilePath, ListedFile, NamePrefix, PartialFile,
        UploadSession, Written,
    },
    mutex::lock,
};

#[derive(Debug, Default)]
struct MemoryFiles {
    /// (seq, file) in commit order.
    files: Mutex<Vec<(i64, StoredFile)>>,
}

fn unused<T>() -> BoxFuture<'static, Result<T>> {
    Box::pin(async { Err(Error::Storage("not used by these tests".to_owned())) })
}

impl FileStore for MemoryFiles {
    fn find_upload<'a>(&'a self, _: &'a UploadId) -> BoxFuture<'a, Result<Option<UploadSession>>> {
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
    fn expired_uploads(&self, _: SystemTime, _: u32) -> BoxFuture<'_, Result<Vec<UploadSession>>> {
        unused()
    }
    fn file<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, Result<Option<StoredFile>>> {
        let files = lock(&self.files);
        let found = files
            .iter()
            .find(|(_, file)| file.id == *id)
            .map(|(_, f)| f.clone());
        Box::pin(async move { Ok(found) })
    }
    fn newest_named<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<StoredFile>>> {
        let files = lock(&self.files);
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
        let files = lock(&self.files);
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
        let mut files = lock(&self.files);
        let before = files.len();
        files.retain(|(_, file)| file.id != *id);
        let deleted = files.len() < before;
        Box::pin(async move { Ok(deleted) })
    }
}

impl MemoryFiles {
    fn commit(&self, name: &str) -> StoredFile {
        let mut files = lock(&self.files);
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
