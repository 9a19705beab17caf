//! The store's tests: what start-up recovers, names and prefixes through the index, and a
//! resumed upload's hash, against a temporary SQLite file and storage root.

use std::{
    fs,
    io::Write as _,
    path::Path,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use streamhub_biz::{
    Lifecycle,
    files::{
        FileId, FileName, FileStore as _, ListedFile, NamePrefix, StoredFile, UploadId,
        UploadSession,
    },
};
use streamhub_conf::DatabaseConf;

use super::{Recovered, SqliteFileStore, TMP_DIR, disk::move_into_store, sql::FILE_COLUMNS};
use crate::Database;

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
        by_name.contains("USING INDEX files_name_seq (name=?)") && !by_name.contains("TEMP B-TREE"),
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
