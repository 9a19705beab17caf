//! [`FileHub`]'s upload logic over [`MemoryFileStore`], a store the tests steer: claims,
//! resuming, checkpoints, the sweeper's races, cancels and storage failures. The end-to-end
//! tests (`cmd/streamhub/tests/api/files.rs`) cover the same promises through gRPC and a real
//! disk; these pin the hub's part of them, including orders of events a real store cannot be
//! made to produce on cue.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use futures_util::{Stream, stream};
use sha2::{Digest as _, Sha256};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{
    FileHub, FileLimits, StoredFile, UploadChunk, UploadFailure, UploadId,
    memory_store::{Event, MemoryFileStore, Op},
};
use crate::{Error, Lifecycle, TransferStats};

const TTL: Duration = Duration::from_secs(3600);

const LIMITS: FileLimits = FileLimits {
    max_file_bytes: 1024 * 1024,
    resume_ttl: TTL,
    checkpoint_bytes: 1024 * 1024,
    max_chunk_bytes: 64 * 1024,
};

fn upload_id(id: &str) -> UploadId {
    UploadId::parse(id).expect("an upload id")
}

/// The one place these tests make a hub.
fn hub(store: &MemoryFileStore, limits: FileLimits) -> FileHub {
    FileHub::new(
        Arc::new(store.clone()),
        limits,
        TransferStats::default(),
        &Lifecycle::new(),
    )
}

/// How a client's stream breaks (a cancel, a reset, the server shutting down).
#[derive(Debug, PartialEq, Eq)]
struct Broken;

type Sent = Result<UploadChunk, Broken>;
type Outcome = Result<StoredFile, UploadFailure<Broken>>;

/// A client stream the test feeds: `send(Ok(..))` a chunk, `send(Err(Broken))` to break it,
/// drop the sender to half-close.
fn client() -> (
    mpsc::UnboundedSender<Sent>,
    impl Stream<Item = Sent> + Send + 'static,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let chunks = stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    (sender, chunks)
}

/// A client stream that sends `chunks` and half-closes.
fn whole(chunks: Vec<UploadChunk>) -> impl Stream<Item = Sent> + Send + 'static {
    stream::iter(chunks.into_iter().map(Ok))
}

/// Uploads on a task of its own, as the service does.
fn start(hub: &FileHub, chunks: impl Stream<Item = Sent> + Send + 'static) -> JoinHandle<Outcome> {
    let hub = hub.clone();
    tokio::spawn(async move { hub.upload(chunks).await })
}

fn chunk(upload_id: &str, number: i32, offset: usize, data: &[u8]) -> UploadChunk {
    UploadChunk {
        data: Bytes::copy_from_slice(data),
        chunk_number: number,
        offset: i64::try_from(offset).expect("small"),
        upload_id: upload_id.to_owned(),
        ..UploadChunk::default()
    }
}

/// `data` from byte `from` on as chunks of `size`, numbered from 0 like every stream's.
fn chunks(upload_id: &str, data: &[u8], from: usize, size: usize) -> Vec<UploadChunk> {
    data[from..]
        .chunks(size)
        .enumerate()
        .map(|(number, piece)| {
            let number = i32::try_from(number).expect("few");
            let offset = from + usize::try_from(number).expect("few") * size;
            chunk(upload_id, number, offset, piece)
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `len` bytes that differ from position to position.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Awaits `future`, failing after a generous bound: a hang is a bug these tests catch.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits until the store has seen `count` writes.
async fn writes(store: &MemoryFileStore, count: usize) {
    let what = format!("{count} writes");
    within(
        &what,
        store.until(|journal| {
            journal
                .iter()
                .filter(|event| matches!(event, Event::Wrote(..)))
                .count()
                >= count
        }),
    )
    .await;
}

async fn finished(upload: JoinHandle<Outcome>) -> Outcome {
    within("the upload to end", upload)
        .await
        .expect("the upload task")
}

/// A resumable upload `upload_id` holding `data`, its stream broken.
async fn broken_upload(hub: &FileHub, store: &MemoryFileStore, upload_id: &str, data: &[u8]) {
    let (sender, chunks) = client();
    let upload = start(hub, chunks);
    for piece in self::chunks(upload_id, data, 0, data.len().max(1)) {
        sender.send(Ok(piece)).expect("the upload reads");
    }
    sender.send(Err(Broken)).expect("the upload reads");
    let outcome = finished(upload).await;
    assert!(
        matches!(outcome, Err(UploadFailure::Stream(Broken))),
        "{outcome:?}"
    );
    assert_eq!(
        store.session(upload_id).map(|s| s.durable_offset),
        Some(data.len() as u64),
        "what arrived is durable"
    );
}

fn domain_error(outcome: Outcome) -> Error {
    match outcome {
        Err(UploadFailure::Domain(err)) => err,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

/// The durability events of the journal: syncs, recorded offsets, finishes.
fn durability(store: &MemoryFileStore) -> Vec<Event> {
    store
        .journal()
        .into_iter()
        .filter(|event| {
            matches!(
                event,
                Event::Synced(..) | Event::Recorded(..) | Event::Finished(..)
            )
        })
        .collect()
}

#[tokio::test]
async fn a_busy_upload_id_is_refused_until_its_stream_lets_go() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    let (first, stream) = client();
    let upload = start(&hub, stream);
    first
        .send(Ok(chunk("busy", 0, 0, b"abc")))
        .expect("the upload reads");
    writes(&store, 1).await;

    let second = hub.upload(whole(vec![chunk("busy", 0, 0, b"xyz")])).await;
    let err = domain_error(second);
    assert!(
        matches!(&err, Error::UploadBusy(id) if id == "busy"),
        "{err:?}"
    );
    assert_eq!(
        store.sessions().len(),
        1,
        "the refused stream created nothing"
    );

    first.send(Err(Broken)).expect("the upload reads");
    let outcome = finished(upload).await;
    assert!(matches!(outcome, Err(UploadFailure::Stream(Broken))));
    assert_eq!(
        hub.upload_status(&upload_id("busy")).await.expect("status"),
        3
    );
    let mut last = chunk("busy", 0, 3, b"def");
    last.is_last = true;
    let file = hub
        .upload(whole(vec![last]))
        .await
        .expect("the id is free once its stream broke");
    assert_eq!(store.bytes(&file.id).as_deref(), Some(&b"abcdef"[..]));

    let again = hub
        .upload(whole(vec![chunk("busy", 0, 0, b"new")]))
        .await
        .expect("the id is free once its upload committed");
    assert_ne!(again.id, file.id, "a new upload, not the committed one");
    assert_eq!(store.bytes(&again.id).as_deref(), Some(&b"new"[..]));
}

/// A stream that fails for any reason lets go of its upload id: the next stream of the id is
/// never refused as busy.
#[tokio::test]
async fn a_claim_is_released_whichever_way_the_upload_fails() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    let mut wrong_number = chunk("claim", 0, 0, b"abc");
    wrong_number.chunk_number = 5;
    let mut wrong_checksum = chunk("claim", 0, 0, b"abc");
    wrong_checksum.checksum = "00".repeat(32);
    let failures: Vec<(&str, Vec<UploadChunk>, Option<Op>)> = vec![
        ("a chunk breaking a rule", vec![wrong_number], None),
        ("a wrong checksum", vec![wrong_checksum], None),
        (
            "a failed write",
            vec![chunk("claim", 0, 0, b"abc")],
            Some(Op::Write),
        ),
        (
            "a failed commit",
            vec![chunk("claim", 0, 0, b"abc")],
            Some(Op::CommitUpload),
        ),
    ];
    for (how, stream, failing) in failures {
        if let Some(op) = failing {
            store.fail_next(op, Error::StorageUnavailable("the test".to_owned()));
        }
        let outcome = hub.upload(whole(stream)).await;
        assert!(outcome.is_err(), "{how}: {outcome:?}");
        let offset = store.session("claim").map_or(0, |s| s.durable_offset);
        let next = chunk("claim", 0, usize::try_from(offset).expect("small"), b"");
        let next = hub.upload(whole(vec![next])).await;
        assert!(next.is_ok(), "after {how}: {next:?}");
    }
}

/// When a client cancels, the service drops the call: the upload's own task must still see
/// the broken stream and clean up.
#[tokio::test]
async fn an_upload_whose_caller_went_away_still_cleans_up() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    let (sender, stream) = client();
    let caller = start(&hub, stream);
    sender
        .send(Ok(chunk("", 0, 0, b"one-shot")))
        .expect("the upload reads");
    writes(&store, 1).await;
    caller.abort();
    let _ = caller.await;
    sender
        .send(Err(Broken))
        .expect("the upload task still reads");
    within(
        "the cut upload to be discarded",
        store.until(|journal| journal.iter().any(|e| matches!(e, Event::Discarded(_)))),
    )
    .await;
    assert!(store.sessions().is_empty());
    assert_eq!(store.partials(), 0);
}

#[tokio::test]
async fn a_broken_upload_resumes_from_its_status_and_the_whole_is_checksummed() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    let data = content(3000);
    let mut first = chunks("resume", &data[..1300], 0, 500);
    first[0].checksum = sha256(&data);
    first[0].total_bytes = 3000;
    let (sender, stream) = client();
    let upload = start(&hub, stream);
    for piece in first {
        sender.send(Ok(piece)).expect("the upload reads");
    }
    writes(&store, 3).await;
    sender.send(Err(Broken)).expect("the upload reads");
    let outcome = finished(upload).await;
    assert!(matches!(outcome, Err(UploadFailure::Stream(Broken))));
    assert_eq!(
        hub.upload_status(&upload_id("resume"))
            .await
            .expect("status"),
        1300,
        "every byte that arrived, not only the last checkpoint"
    );
    let file_id = store.session("resume").expect("kept").file_id;
    let journal = store.journal();
    let tail = &journal[journal.len() - 2..];
    assert_eq!(
        tail,
        [
            Event::Synced(file_id.clone(), 1300),
            Event::Recorded(file_id.clone(), 1300)
        ],
        "synced before the offset is recorded"
    );

    let wrong = hub.upload(whole(chunks("resume", &data, 0, 500))).await;
    let err = domain_error(wrong);
    assert!(
        matches!(
            err,
            Error::UploadOffsetMismatch {
                offset: 0,
                expected: 1300,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        hub.upload_status(&upload_id("resume"))
            .await
            .expect("status"),
        1300
    );

    let file = hub
        .upload(whole(chunks("resume", &data, 1300, 700)))
        .await
        .expect("the rest commits");
    assert_eq!(file.id, file_id, "the upload's file, not a new one");
    assert_eq!(
        (file.size, file.sha256.as_str()),
        (3000, sha256(&data).as_str())
    );
    assert_eq!(store.bytes(&file.id).as_deref(), Some(&data[..]));
    let status = hub.upload_status(&upload_id("resume")).await;
    assert!(
        matches!(status, Err(Error::UploadNotFound(_))),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_resumable_upload_is_made_durable_every_checkpoint_bytes() {
    let store = MemoryFileStore::default();
    let hub = hub(
        &store,
        FileLimits {
            checkpoint_bytes: 10,
            ..LIMITS
        },
    );
    let data = content(28);
    let (sender, stream) = client();
    let upload = start(&hub, stream);
    let mut pieces = chunks("ckpt", &data, 0, 4).into_iter();
    for _ in 0..2 {
        sender
            .send(Ok(pieces.next().expect("a chunk")))
            .expect("the upload reads");
    }
    writes(&store, 2).await;
    assert_eq!(
        hub.upload_status(&upload_id("ckpt")).await.expect("status"),
        0,
        "8 bytes: no checkpoint yet"
    );
    sender
        .send(Ok(pieces.next().expect("a chunk")))
        .expect("the upload reads");
    within(
        "the first checkpoint",
        store.until(|journal| journal.iter().any(|e| matches!(e, Event::Recorded(..)))),
    )
    .await;
    assert_eq!(
        hub.upload_status(&upload_id("ckpt")).await.expect("status"),
        12
    );
    for piece in pieces {
        sender.send(Ok(piece)).expect("the upload reads");
    }
    drop(sender);
    let file = finished(upload).await.expect("commits");
    let id = file.id;
    assert_eq!(
        durability(&store),
        [
            Event::Synced(id.clone(), 12),
            Event::Recorded(id.clone(), 12),
            Event::Synced(id.clone(), 24),
            Event::Recorded(id.clone(), 24),
            Event::Finished(id.clone(), 28),
        ],
        "a checkpoint at the first chunk to reach each 10 bytes more, synced before recorded"
    );

    let one_shot = MemoryFileStore::default();
    let file = hub_with_checkpoints(&one_shot)
        .upload(whole(chunks("", &data, 0, 4)))
        .await
        .expect("commits");
    assert_eq!(
        durability(&one_shot),
        [Event::Finished(file.id, 28)],
        "a one-shot upload has nothing to resume: no checkpoints"
    );
}

fn hub_with_checkpoints(store: &MemoryFileStore) -> FileHub {
    hub(
        store,
        FileLimits {
            checkpoint_bytes: 10,
            ..LIMITS
        },
    )
}

#[tokio::test]
async fn the_sweeper_removes_expired_uploads_but_not_those_being_written() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    broken_upload(&hub, &store, "idle", b"abc").await;
    let (busy, stream) = client();
    let busy_upload = start(&hub, stream);
    busy.send(Ok(chunk("busy", 0, 0, b"abc")))
        .expect("the upload reads");
    let (one_shot, stream) = client();
    let one_shot_upload = start(&hub, stream);
    one_shot
        .send(Ok(chunk("", 0, 0, b"abc")))
        .expect("the upload reads");
    writes(&store, 3).await;
    assert_eq!(store.sessions().len(), 3);

    // Every session has expired by then; only the idle one may go.
    let later = SystemTime::now() + 2 * TTL;
    assert_eq!(hub.sweep(later).await.expect("sweep"), 1);
    assert!(store.session("idle").is_none());
    assert!(store.session("busy").is_some());
    assert_eq!(store.sessions().len(), 2, "the one-shot upload is kept");
    assert_eq!(store.partials(), 2, "the idle upload's bytes went");

    busy.send(Ok(chunk("busy", 1, 3, b"def")))
        .expect("the upload reads");
    drop(busy);
    drop(one_shot);
    let busy_file = finished(busy_upload).await.expect("commits");
    let one_shot_file = finished(one_shot_upload).await.expect("commits");
    assert_eq!(store.bytes(&busy_file.id).as_deref(), Some(&b"abcdef"[..]));
    assert_eq!(store.bytes(&one_shot_file.id).as_deref(), Some(&b"abc"[..]));
    assert_eq!(hub.sweep(later).await.expect("sweep"), 0);
}

/// The sweeper lists a session as expired just as a stream resumes it: the stream has
/// claimed the upload id (and is looking the session up), so the sweeper must leave it.
#[tokio::test]
async fn a_sweep_racing_a_resume_leaves_the_upload_to_the_stream() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    broken_upload(&hub, &store, "late", b"abc").await;
    let lookup = store.hold(Op::FindUpload);
    let resume = start(&hub, whole(vec![chunk("late", 0, 3, b"def")]));
    within("the resume to look its session up", lookup.arrival()).await;

    let later = SystemTime::now() + 2 * TTL;
    assert_eq!(hub.sweep(later).await.expect("sweep"), 0);
    assert!(
        store.session("late").is_some(),
        "the session is the stream's"
    );

    lookup.open_for_good();
    let file = finished(resume).await.expect("the resume commits");
    assert_eq!(store.bytes(&file.id).as_deref(), Some(&b"abcdef"[..]));
}

/// A stream arrives while the sweeper is removing its expired session: it is told the
/// upload is busy (not handed a session being removed), and starts afresh after.
#[tokio::test]
async fn an_upload_arriving_while_the_sweeper_removes_it_is_busy_then_starts_afresh() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    broken_upload(&hub, &store, "gone", b"abc").await;
    let removal = store.hold(Op::DiscardUpload);
    let sweep = tokio::spawn({
        let hub = hub.clone();
        async move { hub.sweep(SystemTime::now() + 2 * TTL).await }
    });
    within("the sweeper to remove the session", removal.arrival()).await;

    let during = hub.upload(whole(vec![chunk("gone", 0, 3, b"def")])).await;
    let err = domain_error(during);
    assert!(matches!(err, Error::UploadBusy(_)), "{err:?}");

    removal.open_for_good();
    let removed = within("the sweep", sweep).await.expect("sweep task");
    assert_eq!(removed.expect("sweep"), 1);
    let file = hub
        .upload(whole(vec![chunk("gone", 0, 0, b"fresh")]))
        .await
        .expect("a fresh upload of the id");
    assert_eq!(store.bytes(&file.id).as_deref(), Some(&b"fresh"[..]));
}

#[tokio::test]
async fn an_expired_upload_is_started_afresh_not_resumed() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    broken_upload(&hub, &store, "old", b"abc").await;
    let old = store.session("old").expect("kept").file_id;
    store.expire("old");
    let status = hub.upload_status(&upload_id("old")).await;
    assert!(
        matches!(status, Err(Error::UploadNotFound(_))),
        "{status:?}"
    );

    let resumed = hub.upload(whole(vec![chunk("old", 0, 3, b"def")])).await;
    let err = domain_error(resumed);
    assert!(
        matches!(
            err,
            Error::UploadOffsetMismatch {
                offset: 3,
                expected: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(store.journal().contains(&Event::Discarded(old.clone())));
    assert_eq!(store.partial(&old), None, "the expired bytes went");
    let file = hub
        .upload(whole(vec![chunk("old", 0, 0, b"abcdef")]))
        .await
        .expect("a fresh upload");
    assert_ne!(file.id, old);
}

/// A one-shot upload that breaks, and any upload whose content is wrong, leave nothing: no
/// session, no bytes, no file.
#[tokio::test]
async fn a_cancelled_or_wrong_upload_commits_nothing_and_keeps_nothing() {
    let mut wrong_checksum = chunk("sum", 0, 0, b"abc");
    wrong_checksum.checksum = sha256(b"abd");
    let mut too_short = chunk("short", 0, 0, b"abc");
    too_short.total_bytes = 4;
    let too_large = chunk("large", 0, 0, &[0; 2048]);
    for (how, sent) in [
        (
            "a broken one-shot upload",
            vec![Ok(chunk("", 0, 0, b"abc")), Err(Broken)],
        ),
        ("a wrong checksum", vec![Ok(wrong_checksum)]),
        ("fewer bytes than declared", vec![Ok(too_short)]),
        ("more bytes than allowed", vec![Ok(too_large)]),
    ] {
        let store = MemoryFileStore::default();
        let hub = hub(
            &store,
            FileLimits {
                max_file_bytes: 1024,
                ..LIMITS
            },
        );
        let outcome = hub.upload(stream::iter(sent)).await;
        assert!(outcome.is_err(), "{how}: {outcome:?}");
        assert!(store.sessions().is_empty(), "{how}: a session is left");
        assert_eq!(store.partials(), 0, "{how}: bytes are left");
        assert!(store.files().is_empty(), "{how}: a file was committed");
        assert!(
            store
                .journal()
                .iter()
                .any(|event| matches!(event, Event::Discarded(_))),
            "{how}: never discarded"
        );
    }
}

#[tokio::test]
async fn a_failed_commit_keeps_a_resumable_upload_resumable_from_its_last_byte() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    store.fail_next(
        Op::CommitUpload,
        Error::StorageUnavailable("database is locked".to_owned()),
    );
    let outcome = hub.upload(whole(chunks("commit", b"abcdef", 0, 3))).await;
    let err = domain_error(outcome);
    assert!(matches!(err, Error::StorageUnavailable(_)), "{err:?}");
    assert!(store.files().is_empty(), "nothing visible");
    assert_eq!(
        hub.upload_status(&upload_id("commit"))
            .await
            .expect("still resumable"),
        6,
        "every byte, durable before the commit was tried"
    );

    let mut end = chunk("commit", 0, 6, b"");
    end.is_last = true;
    let file = hub
        .upload(whole(vec![end]))
        .await
        .expect("an empty resume commits");
    assert_eq!(
        (file.size, file.sha256.as_str()),
        (6, sha256(b"abcdef").as_str())
    );
    assert_eq!(store.bytes(&file.id).as_deref(), Some(&b"abcdef"[..]));

    store.fail_next(
        Op::CommitUpload,
        Error::StorageUnavailable("database is locked".to_owned()),
    );
    let one_shot = hub.upload(whole(chunks("", b"abc", 0, 3))).await;
    assert!(one_shot.is_err(), "{one_shot:?}");
    assert!(store.sessions().is_empty(), "a one-shot upload is not kept");
    assert_eq!(store.partials(), 0);
}

#[tokio::test]
async fn a_failed_checkpoint_keeps_every_byte_that_arrived() {
    let store = MemoryFileStore::default();
    let hub = hub_with_checkpoints(&store);
    store.fail_next(
        Op::RecordOffset,
        Error::StorageUnavailable("database is locked".to_owned()),
    );
    let (sender, stream) = client();
    let upload = start(&hub, stream);
    for piece in chunks("ckpt", &content(24)[..12], 0, 4) {
        sender.send(Ok(piece)).expect("the upload reads");
    }
    let err = domain_error(finished(upload).await);
    assert!(matches!(err, Error::StorageUnavailable(_)), "{err:?}");
    assert_eq!(
        hub.upload_status(&upload_id("ckpt"))
            .await
            .expect("resumable"),
        12,
        "recorded once the store answered again"
    );

    // When even the record after the failure fails, the upload resumes from what was
    // recorded before; the bytes after it are dropped and sent again.
    let data = content(24);
    store.fail_next(
        Op::RecordOffset,
        Error::Storage("disk I/O error".to_owned()),
    );
    store.fail_next(
        Op::RecordOffset,
        Error::Storage("disk I/O error".to_owned()),
    );
    let outcome = hub.upload(whole(chunks("ckpt", &data, 12, 4))).await;
    let err = domain_error(outcome);
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert_eq!(
        hub.upload_status(&upload_id("ckpt"))
            .await
            .expect("resumable"),
        12
    );
    let file = hub
        .upload(whole(chunks("ckpt", &data, 12, 4)))
        .await
        .expect("commits");
    assert_eq!(store.bytes(&file.id).as_deref(), Some(&data[..]));
    assert_eq!(file.sha256.as_str(), sha256(&data));
}

/// A full disk keeps a resumable upload (space may come back) and discards a one-shot one.
#[tokio::test]
async fn a_failed_write_keeps_a_resumable_upload_only() {
    let store = MemoryFileStore::default();
    let hub = hub(&store, LIMITS);
    let (sender, stream) = client();
    let upload = start(&hub, stream);
    sender
        .send(Ok(chunk("full", 0, 0, b"abc")))
        .expect("the upload reads");
    writes(&store, 1).await;
    store.fail_next(Op::Write, Error::StorageFull);
    sender
        .send(Ok(chunk("full", 1, 3, b"def")))
        .expect("the upload reads");
    let err = domain_error(finished(upload).await);
    assert!(matches!(err, Error::StorageFull), "{err:?}");
    assert_eq!(
        hub.upload_status(&upload_id("full")).await.expect("kept"),
        3
    );

    store.fail_next(Op::Write, Error::StorageFull);
    let one_shot = hub.upload(whole(chunks("", b"abc", 0, 3))).await;
    assert!(
        matches!(&one_shot, Err(UploadFailure::Domain(Error::StorageFull))),
        "{one_shot:?}"
    );
    assert_eq!(
        store.sessions().len(),
        1,
        "only the resumable upload is kept"
    );
}
