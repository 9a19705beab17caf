//! Crash safety: the real binary is killed with SIGKILL while clients write (PushLogs,
//! CollaborativeEdit), then restarted on the same data directory. Every acknowledged write
//! must be there, nothing unacknowledged may be half there, and SQLite's own check must pass.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use sqlx::{Connection as _, sqlite::SqliteConnectOptions};
use streamhub_api::streaming::{EditOperation, LogEntry, LogRequest};
use streamhub_testkit::{BinaryServer, next, open_edit, within};
use tokio::sync::watch;

use crate::binary::{local_config, start_binary};

/// Starts the real server on `dir/data`, a data directory that outlives it.
pub(crate) fn start_server(dir: &Path) -> BinaryServer {
    start_binary(&local_config(dir, &dir.join("data")))
}

fn database(dir: &Path) -> PathBuf {
    dir.join("data").join("streamhub.db")
}

/// `PRAGMA integrity_check` of the database a killed server left behind.
pub(crate) async fn integrity_check(dir: &Path) -> String {
    let options = SqliteConnectOptions::new().filename(database(dir));
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the database");
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .expect("run integrity_check");
    connection.close().await.expect("close");
    result
}

const BATCH: usize = 50;

fn sent_entry(batch: usize, index: usize) -> LogEntry {
    LogEntry {
        service: "crash".to_owned(),
        level: "INFO".to_owned(),
        message: format!("b{batch}-e{index}"),
        metadata: [
            ("batch".to_owned(), batch.to_string()),
            ("index".to_owned(), index.to_string()),
        ]
        .into(),
        ..LogEntry::default()
    }
}

#[tokio::test]
async fn a_sigkill_during_push_logs_keeps_every_acknowledged_entry_and_no_half_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_server(dir.path());
    let client = server.streaming().await;

    // Batches go out back to back; each acknowledged one is recorded with its ids.
    let acked: Arc<Mutex<Vec<(usize, i64, i64)>>> = Arc::default();
    let (progress, mut acked_count) = watch::channel(0_usize);
    let writer = tokio::spawn({
        let acked = Arc::clone(&acked);
        let mut client = client.clone();
        async move {
            for batch in 0.. {
                let entries = (0..BATCH).map(move |index| sent_entry(batch, index));
                let Ok(result) = client.push_logs(tokio_stream::iter(entries)).await else {
                    return;
                };
                let result = result.into_inner();
                assert_eq!(result.accepted, BATCH as i64);
                let mut acked = acked.lock().expect("lock");
                acked.push((batch, result.first_id, result.last_id));
                progress.send_replace(acked.len());
            }
        }
    });
    within(
        "20 acknowledged batches",
        acked_count.wait_for(|n| *n >= 20),
    )
    .await
    .expect("the writer is running");
    server.kill();
    // The writer sees the connection drop and stops; its in-flight batch is unacknowledged.
    within("the writer to stop", writer)
        .await
        .expect("writer task");
    let acked = acked.lock().expect("lock").clone();

    assert_eq!(integrity_check(dir.path()).await, "ok");
    let server = start_server(dir.path());
    let mut client = server.streaming().await;
    let mut stored = client
        .stream_logs(LogRequest::default())
        .await
        .expect("StreamLogs")
        .into_inner();
    // batch -> (index -> id), from what the restarted server has.
    let mut found: BTreeMap<usize, BTreeMap<usize, i64>> = BTreeMap::new();
    while let Some(entry) = within("the stored entries", stored.message())
        .await
        .expect("no error")
    {
        let (batch, index) = entry
            .message
            .strip_prefix('b')
            .and_then(|rest| rest.split_once("-e"))
            .and_then(|(b, i)| Some((b.parse().ok()?, i.parse().ok()?)))
            .unwrap_or_else(|| panic!("a stored entry nobody sent: {entry:?}"));
        let sent = sent_entry(batch, index);
        assert_eq!(
            (&entry.service, &entry.level, &entry.metadata),
            (&sent.service, &sent.level, &sent.metadata),
            "entry {} is stored whole",
            entry.message
        );
        let previous = found.entry(batch).or_default().insert(index, entry.id);
        assert!(previous.is_none(), "{} is stored twice", entry.message);
    }
    for (batch, first_id, last_id) in &acked {
        let ids: Vec<i64> = found
            .get(batch)
            .map(|entries| entries.values().copied().collect())
            .unwrap_or_default();
        let expected: Vec<i64> = (*first_id..=*last_id).collect();
        assert_eq!(ids, expected, "acknowledged batch {batch} is all there");
    }
    for (batch, entries) in &found {
        let indexes: Vec<usize> = entries.keys().copied().collect();
        let prefix: Vec<usize> = (0..indexes.len()).collect();
        assert_eq!(
            indexes, prefix,
            "batch {batch}: what is stored is a prefix of what was sent, in order"
        );
        assert!(
            *batch <= acked.len(),
            "batch {batch} was never sent ({} acknowledged)",
            acked.len()
        );
    }
    server.kill();
    assert_eq!(integrity_check(dir.path()).await, "ok");
}

fn insert_at_start(index: usize) -> EditOperation {
    EditOperation {
        user_id: "writer".to_owned(),
        document_id: "doc".to_owned(),
        operation_type: "INSERT".to_owned(),
        position: 0,
        content: format!("w{index};"),
        ..EditOperation::default()
    }
}

/// The text after the first `revision` inserts (each goes to the start).
fn text_after(revision: i64) -> String {
    (0..usize::try_from(revision).expect("non-negative"))
        .rev()
        .map(|index| format!("w{index};"))
        .collect()
}

#[tokio::test]
async fn a_sigkill_during_document_edits_keeps_every_acknowledged_revision() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_server(dir.path());
    let join = EditOperation {
        user_id: "writer".to_owned(),
        document_id: "doc".to_owned(),
        operation_type: "JOIN".to_owned(),
        ..EditOperation::default()
    };
    let (ops, mut updates) = within(
        "CollaborativeEdit to open",
        open_edit(server.connect().await, join, 16),
    )
    .await;
    // Edits stream out as fast as the server takes them (up to 16 queued).
    let sender = tokio::spawn(async move {
        for index in 0.. {
            if ops.send(insert_at_start(index)).await.is_err() {
                return;
            }
        }
    });
    // An update is the server's acknowledgement: the edit is applied and persisted.
    let mut acked = 0_i64;
    while acked < 300 {
        let update = next("the next update", &mut updates).await;
        if update.operation.is_some() {
            assert_eq!(update.content, text_after(update.revision));
            acked = update.revision;
        }
    }
    server.kill();
    sender.abort();

    assert_eq!(integrity_check(dir.path()).await, "ok");
    let server = start_server(dir.path());
    let mut client = server.streaming().await;
    let mut snapshot = client
        .collaborative_edit(tokio_stream::iter([EditOperation {
            user_id: "reader".to_owned(),
            document_id: "doc".to_owned(),
            operation_type: "JOIN".to_owned(),
            ..EditOperation::default()
        }]))
        .await
        .expect("CollaborativeEdit opens")
        .into_inner();
    let restored = next("the snapshot after restart", &mut snapshot).await;
    assert!(
        restored.revision >= acked,
        "acknowledged revision {acked} survives, restored {}",
        restored.revision
    );
    assert_eq!(
        restored.content,
        text_after(restored.revision),
        "the restored text is exactly the first {} edits",
        restored.revision
    );
    server.kill();
    assert_eq!(integrity_check(dir.path()).await, "ok");
}
