//! The contract of [`FileStore`]: what every implementation must do, as tests.
//!
//! Each test is a function over a fresh, empty store. [`file_store_contract!`] turns the
//! whole list into `#[tokio::test]`s for one implementation, so a test added here runs against
//! every store: the in-memory one the hub is tested with (biz's own tests) and SQLite with
//! files on disk (`streamhub-data`'s `tests/contract.rs`). The hub's tests can then trust what
//! they learn from the fake.
//!
//! [`file_store_contract!`]: crate::file_store_contract

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt as _;

use super::{
    Checksum, FileId, FileName, FileStore, NamePrefix, PartialFile, StoredFile, UploadId,
    UploadSession,
};
use crate::Error;

/// Defines one `#[tokio::test]` per contract test of [`FileStore`]. `$make` names an async
/// function returning a fresh, empty store as `Arc<dyn FileStore>` and anything that must
/// live as long as it (a temporary directory).
#[macro_export]
macro_rules! file_store_contract {
    ($make:path) => {
        $crate::file_store_contract!(@tests $make;
            a_session_is_found_by_its_upload_id_until_discarded,
            an_upload_id_names_one_session,
            a_recorded_offset_and_expiry_are_what_is_found,
            expired_sessions_come_oldest_first_up_to_the_limit,
            a_sync_covers_every_byte_written_before_it,
            a_reopened_partial_drops_what_followed_its_durable_offset,
            a_partial_shorter_than_its_durable_offset_is_refused,
            a_commit_makes_the_file_visible_and_ends_its_session,
            an_empty_upload_commits_an_empty_file,
            reads_start_at_the_offset_in_chunks_of_the_size_asked,
            files_list_in_commit_order_from_a_cursor_and_by_prefix,
            a_name_finds_its_newest_file_and_the_previous_one_after_a_delete,
            a_deleted_file_is_gone_and_its_seq_is_not_reused,
        );
    };
    (@tests $make:path; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let (store, _keep) = $make().await;
                $crate::files::contract::$test(&*store).await;
            }
        )+
    };
}

/// A fixed moment, so times round-trip exactly.
fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000 + seconds, 123_456_789)
}

fn session(upload_id: Option<&str>, expires_at: SystemTime) -> UploadSession {
    UploadSession {
        file_id: FileId::generate(),
        upload_id: upload_id.map(|id| UploadId::parse(id).expect("a valid upload id")),
        file_name: FileName::default(),
        expected_size: None,
        expected_sha256: None,
        durable_offset: 0,
        expires_at,
    }
}

fn upload_id(id: &str) -> UploadId {
    UploadId::parse(id).expect("a valid upload id")
}

/// SHA-256 of the texts these tests write.
const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SHA256_ABCDEF: &str = "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721";
const SHA256_HELLO_WORLD: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
const SHA256_DIGITS: &str = "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882";

async fn write(partial: &mut Box<dyn PartialFile>, data: &'static [u8]) {
    partial
        .write(Bytes::from_static(data))
        .await
        .expect("a write");
}

/// Commits a file named `name` holding `data`, as an upload does.
async fn commit(
    store: &dyn FileStore,
    name: &str,
    data: &'static [u8],
    at: SystemTime,
) -> StoredFile {
    let mut session = session(None, at + Duration::from_secs(60));
    session.file_name = FileName::sanitise(name).expect("a valid name");
    store.create_upload(&session).await.expect("create");
    let mut partial = store.open_partial(&session).await.expect("open");
    write(&mut partial, data).await;
    let written = partial.finish().await.expect("finish");
    store
        .commit_upload(&session, written, at)
        .await
        .expect("commit")
}

async fn read_all(
    store: &dyn FileStore,
    file: &StoredFile,
    offset: u64,
    chunk: usize,
) -> Vec<Bytes> {
    let chunks = store.read(file, offset, chunk).await.expect("read");
    chunks.map(|chunk| chunk.expect("a chunk")).collect().await
}

pub async fn a_session_is_found_by_its_upload_id_until_discarded(store: &dyn FileStore) {
    let mut resumable = session(Some("up-1"), at(60));
    resumable.file_name = FileName::sanitise("reports/q1.txt").expect("valid");
    resumable.expected_size = Some(11);
    resumable.expected_sha256 = Some(Checksum::parse(SHA256_HELLO_WORLD).expect("valid"));
    store.create_upload(&resumable).await.expect("create");
    let one_shot = session(None, at(60));
    store.create_upload(&one_shot).await.expect("create");

    let found = store.find_upload(&upload_id("up-1")).await.expect("find");
    assert_eq!(found, Some(resumable.clone()), "every field as created");
    assert_eq!(
        store.find_upload(&upload_id("up-2")).await.expect("find"),
        None
    );

    store
        .discard_upload(&resumable.file_id)
        .await
        .expect("discard");
    assert_eq!(
        store.find_upload(&upload_id("up-1")).await.expect("find"),
        None
    );
    store
        .discard_upload(&resumable.file_id)
        .await
        .expect("discarding what is gone is fine");
    let left = store.expired_uploads(at(1_000), 10).await.expect("expired");
    assert_eq!(left, [one_shot], "only the discarded session went");
}

pub async fn an_upload_id_names_one_session(store: &dyn FileStore) {
    let first = session(Some("twice"), at(60));
    store.create_upload(&first).await.expect("create");
    let second = session(Some("twice"), at(120));
    let refused = store.create_upload(&second).await;
    assert!(
        refused.is_err(),
        "a second session of one upload id must be refused"
    );
    let found = store.find_upload(&upload_id("twice")).await.expect("find");
    assert_eq!(found, Some(first), "the first session is untouched");
}

pub async fn a_recorded_offset_and_expiry_are_what_is_found(store: &dyn FileStore) {
    let created = session(Some("rec"), at(60));
    store.create_upload(&created).await.expect("create");
    store
        .record_offset(&created.file_id, 6, at(600))
        .await
        .expect("record");
    let found = store
        .find_upload(&upload_id("rec"))
        .await
        .expect("find")
        .expect("still there");
    assert_eq!((found.durable_offset, found.expires_at), (6, at(600)));
    assert!(
        store
            .expired_uploads(at(300), 10)
            .await
            .expect("expired")
            .is_empty(),
        "the new expiry counts"
    );
}

pub async fn expired_sessions_come_oldest_first_up_to_the_limit(store: &dyn FileStore) {
    let sessions = [
        session(Some("b"), at(3)),
        session(None, at(1)),
        session(Some("d"), at(5)),
        session(Some("c"), at(2)),
    ];
    for session in &sessions {
        store.create_upload(session).await.expect("create");
    }
    let expired = store.expired_uploads(at(3), 10).await.expect("expired");
    assert_eq!(
        expired,
        [sessions[1].clone(), sessions[3].clone()],
        "expired strictly before now, oldest first, one-shot uploads included"
    );
    let first = store.expired_uploads(at(3), 1).await.expect("expired");
    assert_eq!(first, [sessions[1].clone()]);
}

pub async fn a_sync_covers_every_byte_written_before_it(store: &dyn FileStore) {
    let created = session(Some("sync"), at(60));
    store.create_upload(&created).await.expect("create");
    let mut partial = store.open_partial(&created).await.expect("open");
    write(&mut partial, b"ab").await;
    write(&mut partial, b"cde").await;
    assert_eq!(partial.sync().await.expect("sync"), 5);
    write(&mut partial, b"f").await;
    assert_eq!(partial.sync().await.expect("sync"), 6);
    let written = partial.finish().await.expect("finish");
    assert_eq!((written.size, written.sha256.as_str()), (6, SHA256_ABCDEF));
}

pub async fn a_reopened_partial_drops_what_followed_its_durable_offset(store: &dyn FileStore) {
    let mut created = session(Some("reopen"), at(60));
    store.create_upload(&created).await.expect("create");
    let mut partial = store.open_partial(&created).await.expect("open");
    write(&mut partial, b"hello ").await;
    assert_eq!(partial.sync().await.expect("sync"), 6);
    store
        .record_offset(&created.file_id, 6, at(60))
        .await
        .expect("record");
    // Written and even synced, but never recorded: the client will send it again.
    write(&mut partial, b"torn").await;
    assert_eq!(partial.sync().await.expect("sync"), 10);
    drop(partial);

    created.durable_offset = 6;
    let mut partial = store.open_partial(&created).await.expect("reopen");
    write(&mut partial, b"world").await;
    let written = partial.finish().await.expect("finish");
    assert_eq!(
        (written.size, written.sha256.as_str()),
        (11, SHA256_HELLO_WORLD),
        "the hash covers the kept prefix and what followed the reopening"
    );
    let file = store
        .commit_upload(&created, written, at(10))
        .await
        .expect("commit");
    assert_eq!(read_all(store, &file, 0, 1024).await, [&b"hello world"[..]]);
}

pub async fn a_partial_shorter_than_its_durable_offset_is_refused(store: &dyn FileStore) {
    let mut created = session(Some("short"), at(60));
    store.create_upload(&created).await.expect("create");
    let mut partial = store.open_partial(&created).await.expect("open");
    write(&mut partial, b"abc").await;
    assert_eq!(partial.sync().await.expect("sync"), 3);
    drop(partial);
    created.durable_offset = 5;
    assert!(
        store.open_partial(&created).await.is_err(),
        "3 bytes cannot continue at 5"
    );
    store
        .discard_upload(&created.file_id)
        .await
        .expect("discard");
    created.durable_offset = 3;
    assert!(
        store.open_partial(&created).await.is_err(),
        "a discarded upload's bytes are gone"
    );
}

pub async fn a_commit_makes_the_file_visible_and_ends_its_session(store: &dyn FileStore) {
    let mut created = session(Some("commit"), at(60));
    created.file_name = FileName::sanitise("docs/readme.txt").expect("valid");
    store.create_upload(&created).await.expect("create");
    let mut partial = store.open_partial(&created).await.expect("open");
    write(&mut partial, b"hello world").await;
    let written = partial.finish().await.expect("finish");
    assert_eq!(store.file(&created.file_id).await.expect("file"), None);
    assert_eq!(
        store.newest_named("docs/readme.txt").await.expect("named"),
        None
    );
    assert!(store.list(0, 10, None).await.expect("list").is_empty());

    let file = store
        .commit_upload(&created, written, at(7))
        .await
        .expect("commit");
    let expected = StoredFile {
        id: created.file_id.clone(),
        name: created.file_name.clone(),
        size: 11,
        sha256: Checksum::parse(SHA256_HELLO_WORLD).expect("valid"),
        created_at: at(7),
    };
    assert_eq!(file, expected);
    assert_eq!(
        store.file(&created.file_id).await.expect("file"),
        Some(expected.clone())
    );
    assert_eq!(
        store.newest_named("docs/readme.txt").await.expect("named"),
        Some(expected.clone())
    );
    let listed = store.list(0, 10, None).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].file, expected);
    assert!(
        listed[0].seq > 0,
        "seq {} is a cursor after 0",
        listed[0].seq
    );
    assert_eq!(
        store.find_upload(&upload_id("commit")).await.expect("find"),
        None,
        "the session ended with the commit"
    );
    assert!(
        store
            .expired_uploads(at(1_000), 10)
            .await
            .expect("expired")
            .is_empty()
    );
    assert_eq!(read_all(store, &file, 0, 1024).await, [&b"hello world"[..]]);
}

pub async fn an_empty_upload_commits_an_empty_file(store: &dyn FileStore) {
    let created = session(None, at(60));
    store.create_upload(&created).await.expect("create");
    let partial = store.open_partial(&created).await.expect("open");
    let written = partial.finish().await.expect("finish");
    assert_eq!((written.size, written.sha256.as_str()), (0, SHA256_EMPTY));
    let file = store
        .commit_upload(&created, written, at(1))
        .await
        .expect("commit");
    assert!(read_all(store, &file, 0, 1024).await.is_empty());
}

pub async fn reads_start_at_the_offset_in_chunks_of_the_size_asked(store: &dyn FileStore) {
    let file = commit(store, "digits.txt", b"0123456789", at(1)).await;
    assert_eq!(file.sha256.as_str(), SHA256_DIGITS);
    assert_eq!(
        read_all(store, &file, 0, 4).await,
        [&b"0123"[..], b"4567", b"89"]
    );
    assert_eq!(read_all(store, &file, 3, 4).await, [&b"3456"[..], b"789"]);
    assert_eq!(read_all(store, &file, 9, 4).await, [&b"9"[..]]);
    assert!(
        read_all(store, &file, 10, 4).await.is_empty(),
        "nothing after the end"
    );
}

pub async fn files_list_in_commit_order_from_a_cursor_and_by_prefix(store: &dyn FileStore) {
    let mut committed = Vec::new();
    for name in ["r/a", "x", "r/b", "r", "rx/c"] {
        committed.push(commit(store, name, b"data", at(1)).await);
    }
    let all = store.list(0, 10, None).await.expect("list");
    let files: Vec<&StoredFile> = all.iter().map(|listed| &listed.file).collect();
    assert_eq!(files, committed.iter().collect::<Vec<_>>(), "commit order");
    assert!(
        all.windows(2).all(|pair| pair[0].seq < pair[1].seq),
        "seq grows with commit order"
    );
    let first_two = store.list(0, 2, None).await.expect("list");
    assert_eq!(first_two, all[..2]);
    let rest = store.list(all[1].seq, 10, None).await.expect("list");
    assert_eq!(rest, all[2..], "a page continues after its cursor");

    let prefix = NamePrefix::parse("r/").expect("valid").expect("not empty");
    let names: Vec<String> = store
        .list(0, 10, Some(&prefix))
        .await
        .expect("list")
        .into_iter()
        .map(|listed| listed.file.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["r/a", "r/b"]);
    let after_first = store
        .list(all[0].seq, 10, Some(&prefix))
        .await
        .expect("list");
    assert_eq!(after_first, all[2..3]);
}

pub async fn a_name_finds_its_newest_file_and_the_previous_one_after_a_delete(
    store: &dyn FileStore,
) {
    let first = commit(store, "notes/a.txt", b"first", at(1)).await;
    let other = commit(store, "notes/b.txt", b"other", at(2)).await;
    let second = commit(store, "notes/a.txt", b"second", at(3)).await;
    let newest = |name| store.newest_named(name);
    assert_eq!(
        newest("notes/a.txt").await.expect("named"),
        Some(second.clone())
    );
    assert_eq!(newest("notes/b.txt").await.expect("named"), Some(other));
    assert_eq!(
        newest("notes/").await.expect("named"),
        None,
        "a prefix is no name"
    );
    assert_eq!(
        newest("a.txt").await.expect("named"),
        None,
        "nor is a last component"
    );
    assert!(store.delete(&second.id).await.expect("delete"));
    assert_eq!(newest("notes/a.txt").await.expect("named"), Some(first));
}

pub async fn a_deleted_file_is_gone_and_its_seq_is_not_reused(store: &dyn FileStore) {
    let kept = commit(store, "kept", b"kept", at(1)).await;
    let deleted = commit(store, "deleted", b"deleted", at(2)).await;
    let seq_of_deleted = store.list(0, 10, None).await.expect("list")[1].seq;

    assert!(store.delete(&deleted.id).await.expect("delete"));
    assert_eq!(store.file(&deleted.id).await.expect("file"), None);
    let read = store.read(&deleted, 0, 1024).await.map(|_| ());
    assert!(
        matches!(&read, Err(Error::StoredFileDamaged(id)) if *id == deleted.id.to_string()),
        "a deleted file's bytes are gone: {read:?}"
    );
    assert!(
        !store.delete(&deleted.id).await.expect("delete again"),
        "deleting twice finds nothing the second time"
    );

    let newer = commit(store, "newer", b"newer", at(3)).await;
    let listed = store.list(0, 10, None).await.expect("list");
    let files: Vec<&StoredFile> = listed.iter().map(|listed| &listed.file).collect();
    assert_eq!(files, [&kept, &newer]);
    assert!(
        listed[1].seq > seq_of_deleted,
        "a page token past the deleted file must not skip the newer one: seq {} after {}",
        listed[1].seq,
        seq_of_deleted
    );
}
