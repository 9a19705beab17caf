//! Logs and the resumable feeds: PushLogs validation and batching, StreamLogs filters and
//! follow, the gap-free hand-over from stored to live entries under concurrent writers, and
//! GetDataStream, ControlledStream and BufferedStream.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, SystemTime},
};

use streamhub_api::streaming::{
    LogEntry, LogRequest, PushLogsResult, StreamData, StreamRequest,
    streaming_service_client::StreamingServiceClient,
};
use streamhub_testkit::{TestApp, next, spawn_app, spawn_app_with, within};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming, transport::Channel};

fn entry(service: &str, level: &str, message: &str) -> LogEntry {
    LogEntry {
        service: service.to_owned(),
        level: level.to_owned(),
        message: message.to_owned(),
        metadata: HashMap::from([("source".to_owned(), "test".to_owned())]),
        ..LogEntry::default()
    }
}

fn numbered(count: usize) -> Vec<LogEntry> {
    (0..count)
        .map(|n| entry("svc", "INFO", &format!("entry {n}")))
        .collect()
}

async fn push(
    client: &mut StreamingServiceClient<Channel>,
    entries: Vec<LogEntry>,
) -> Result<PushLogsResult, Status> {
    client
        .push_logs(tokio_stream::iter(entries))
        .await
        .map(tonic::Response::into_inner)
}

/// Every stored entry matching `request` (which must not follow).
async fn stored(app: &TestApp, request: LogRequest) -> Vec<LogEntry> {
    assert!(!request.follow);
    let mut stream = app
        .streaming()
        .stream_logs(request)
        .await
        .expect("StreamLogs starts")
        .into_inner();
    let mut entries = Vec::new();
    while let Some(entry) = within("the next stored entry", stream.message())
        .await
        .expect("no error")
    {
        entries.push(entry);
    }
    entries
}

fn ids(entries: &[LogEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

/// Reads `stream` until it delivers `last_id`, returning every id it delivered.
async fn ids_until<T>(
    stream: &mut Streaming<T>,
    last_id: i64,
    id_of: impl Fn(&T) -> i64,
) -> Vec<i64> {
    let mut seen = Vec::new();
    while seen.last() != Some(&last_id) {
        let item = within(
            &format!("id {last_id} (last seen {:?})", seen.last()),
            stream.message(),
        )
        .await
        .expect("no error")
        .expect("the stream stays open");
        seen.push(id_of(&item));
    }
    seen
}

#[tokio::test]
async fn push_logs_assigns_increasing_ids_and_reports_them() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let first = push(&mut client, numbered(300)).await.expect("accepted");
    assert_eq!(first.accepted, 300);
    assert_eq!(first.last_id - first.first_id, 299);
    let second = push(&mut client, numbered(2)).await.expect("accepted");
    assert!(second.first_id > first.last_id, "{first:?} then {second:?}");

    let all = stored(&app, LogRequest::default()).await;
    assert_eq!(all.len(), 302);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let one = &all[0];
    assert_eq!(
        (
            one.service.as_str(),
            one.level.as_str(),
            one.message.as_str()
        ),
        ("svc", "INFO", "entry 0")
    );
    assert_eq!(one.metadata.get("source").map(String::as_str), Some("test"));
    assert!(
        one.timestamp.is_some(),
        "the server stamps entries sent without a time"
    );
    let empty = push(&mut client, Vec::new())
        .await
        .expect("an empty stream is fine");
    assert_eq!(empty.accepted, 0);
}

#[tokio::test]
async fn a_bad_entry_is_invalid_argument_naming_the_field_and_keeps_the_ones_before() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let cases = [
        (entry("", "INFO", "m"), "service"),
        (entry("svc", "LOUD", "m"), "level"),
        (entry("svc", "", "m"), "level"),
        (entry("svc", "INFO", ""), "message"),
        (entry("svc", "INFO", &"x".repeat(64 * 1024 + 1)), "message"),
        (
            LogEntry {
                timestamp: Some(prost_types::Timestamp {
                    seconds: -10,
                    nanos: 0,
                }),
                ..entry("svc", "INFO", "before 1970")
            },
            "timestamp",
        ),
    ];
    let mut expected_stored = 0;
    for (bad, field) in cases {
        let mut entries = numbered(3);
        entries.push(bad);
        entries.extend(numbered(2));
        let err = push(&mut client, entries)
            .await
            .expect_err("a bad entry fails the stream");
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err}");
        assert!(
            err.message().contains(field) && err.message().contains("entry 3"),
            "{:?} should name the field {field} and entry 3",
            err.message()
        );
        expected_stored += 3;
        let all = stored(&app, LogRequest::default()).await;
        assert_eq!(
            all.len(),
            expected_stored,
            "{field}: the entries before the bad one stay, the ones after do not"
        );
    }
    // Exactly at the limit is accepted.
    let at_limit = entry("svc", "INFO", &"x".repeat(64 * 1024));
    push(&mut client, vec![at_limit])
        .await
        .expect("64 KiB is allowed");
}

#[tokio::test]
async fn stream_logs_filters_by_level_service_after_id_and_tail() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    push(
        &mut client,
        vec![
            entry("api", "DEBUG", "1"),
            entry("db", "info", "2"),
            entry("api", "Warn", "3"),
            entry("db", "ERROR", "4"),
            entry("api", "INFO", "5"),
        ],
    )
    .await
    .expect("accepted");
    let messages = |entries: Vec<LogEntry>| {
        entries
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
            .join(",")
    };
    let request = |service: &str, level: &str, after_id: i64, tail: i32| LogRequest {
        service: service.to_owned(),
        level: level.to_owned(),
        follow: false,
        after_id,
        tail,
    };
    let cases = [
        (request("", "", 0, 0), "1,2,3,4,5"),
        (request("", "warn", 0, 0), "3,4"),
        (request("api", "", 0, 0), "1,3,5"),
        (request("api", "INFO", 0, 0), "3,5"),
        (request("", "", 3, 0), "4,5"),
        (request("", "", 0, 2), "4,5"),
        (request("db", "", 0, 1), "4"),
        (request("", "", 0, 50), "1,2,3,4,5"),
        // after_id wins over tail.
        (request("", "", 1, 1), "2,3,4,5"),
        (request("nobody", "", 0, 0), ""),
    ];
    for (request, expected) in cases {
        let got = messages(stored(&app, request.clone()).await);
        assert_eq!(got, expected, "{request:?}");
    }
    let stored_levels: Vec<String> = stored(&app, LogRequest::default())
        .await
        .into_iter()
        .map(|e| e.level)
        .collect();
    assert_eq!(stored_levels, ["DEBUG", "INFO", "WARN", "ERROR", "INFO"]);

    for (bad, field) in [
        (request("", "verbose", 0, 0), "level"),
        (request("", "", -1, 0), "after_id"),
        (request("", "", 0, -1), "tail"),
    ] {
        let err = client
            .stream_logs(bad)
            .await
            .expect_err("a bad request is refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        assert!(err.message().contains(field), "{err}");
    }
}

#[tokio::test]
async fn follow_delivers_stored_then_live_entries() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    push(&mut client, vec![entry("api", "ERROR", "old")])
        .await
        .expect("accepted");
    let mut follow = client
        .stream_logs(LogRequest {
            service: "api".into(),
            level: "WARN".into(),
            follow: true,
            ..LogRequest::default()
        })
        .await
        .expect("follow starts")
        .into_inner();
    let old = next("the stored entry", &mut follow).await;
    assert_eq!(old.message, "old");
    push(
        &mut client,
        vec![
            entry("api", "INFO", "too quiet"),
            entry("db", "ERROR", "other service"),
            entry("api", "WARN", "new"),
        ],
    )
    .await
    .expect("accepted");
    let new = next("the live entry", &mut follow).await;
    assert_eq!(new.message, "new");
    assert!(new.id > old.id);
}

/// Writers push `streams` PushLogs calls of `per_stream` entries each, concurrently, while
/// followers start at staggered points; each follower must see every stored id after its start
/// exactly once, in order.
async fn no_gap_no_duplicate(app: &TestApp, label: &str) {
    const WRITERS: usize = 4;
    const STREAMS: usize = 10;
    const PER_STREAM: usize = 100;
    const FOLLOWERS: usize = 6;
    let pushed = Arc::new(AtomicI64::new(0));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut client = app.streaming();
        let pushed = Arc::clone(&pushed);
        writers.push(tokio::spawn(async move {
            for _ in 0..STREAMS {
                let entries = (0..PER_STREAM)
                    .map(|n| entry(&format!("writer{writer}"), "INFO", &format!("{n}")))
                    .collect();
                let result = push(&mut client, entries).await.expect("accepted");
                pushed.fetch_max(result.last_id, Ordering::SeqCst);
            }
        }));
    }

    let mut followers = Vec::new();
    for follower in 0..FOLLOWERS {
        // Start once the writers are a fraction of the way through, from an id behind them
        // (stored entries to page through) or, for follower 0, from the very beginning.
        let threshold = (follower * WRITERS * STREAMS * PER_STREAM / FOLLOWERS) as i64;
        within("the writers to make progress", async {
            while pushed.load(Ordering::SeqCst) < threshold {
                tokio::task::yield_now().await;
            }
        })
        .await;
        let after_id = pushed.load(Ordering::SeqCst) / 2;
        let stream = app
            .streaming()
            .stream_logs(LogRequest {
                follow: true,
                after_id,
                ..LogRequest::default()
            })
            .await
            .expect("follow starts")
            .into_inner();
        followers.push((after_id, stream));
    }
    for writer in writers {
        within("the writers to finish", writer)
            .await
            .expect("writer task");
    }
    let all = ids(&stored(app, LogRequest::default()).await);
    assert_eq!(all.len(), WRITERS * STREAMS * PER_STREAM, "{label}");
    let last = *all.last().expect("entries");
    for (n, (after_id, mut stream)) in followers.into_iter().enumerate() {
        let seen = ids_until(&mut stream, last, |e: &LogEntry| e.id).await;
        let expected: Vec<i64> = all.iter().copied().filter(|&id| id > after_id).collect();
        assert_eq!(
            seen.len(),
            expected.len(),
            "{label}: follower {n} after id {after_id} saw {} entries, expected {}",
            seen.len(),
            expected.len()
        );
        assert!(
            seen == expected,
            "{label}: follower {n} after id {after_id} saw a gap, a duplicate or disorder"
        );
    }
}

#[tokio::test]
async fn followers_joining_under_concurrent_writers_see_every_entry_once_in_order() {
    let app = spawn_app().await;
    no_gap_no_duplicate(&app, "default live buffer").await;
}

#[tokio::test]
async fn followers_that_overrun_a_tiny_live_buffer_catch_up_without_gap_or_duplicate() {
    let app = spawn_app_with(|config| config.logs.live_buffer = 4).await;
    no_gap_no_duplicate(&app, "live buffer of 4").await;
}

fn feed(start_from_id: i64, limit: i32) -> StreamRequest {
    StreamRequest {
        start_from_id,
        limit,
    }
}

fn data_id(data: &StreamData) -> i64 {
    data.id
}

#[tokio::test]
async fn get_data_stream_resumes_from_the_last_id_without_gap_or_duplicate() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    push(&mut client, numbered(100)).await.expect("accepted");

    let mut first = client
        .get_data_stream(feed(0, 0))
        .await
        .expect("feed starts")
        .into_inner();
    let mut seen = Vec::new();
    for _ in 0..30 {
        let item = next("a feed item", &mut first).await;
        let json: serde_json::Value = serde_json::from_str(&item.data).expect("data is JSON");
        assert_eq!(json["id"], item.id, "{}", item.data);
        assert_eq!(json["service"], "svc");
        assert_eq!(json["level"], "INFO");
        seen.push(item.id);
    }
    drop(first);

    // Writers keep going while the client is away and while it reconnects.
    let writer = {
        let mut client = app.streaming();
        tokio::spawn(async move {
            let mut last = 0;
            for _ in 0..10 {
                last = push(&mut client, numbered(50))
                    .await
                    .expect("accepted")
                    .last_id;
            }
            last
        })
    };
    let resume_from = *seen.last().expect("seen some");
    let mut second = client
        .get_data_stream(feed(resume_from, 0))
        .await
        .expect("feed resumes")
        .into_inner();
    let last = within("the writer", writer).await.expect("writer task");
    seen.extend(ids_until(&mut second, last, data_id).await);

    let all = ids(&stored(&app, LogRequest::default()).await);
    assert_eq!(all.len(), 600);
    assert!(
        seen == all,
        "the two connections together saw every entry once, in order"
    );

    let err = client
        .get_data_stream(feed(-1, 0))
        .await
        .expect_err("a negative start is refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("start_from_id"), "{err}");
}

async fn collect_data(
    client: &mut StreamingServiceClient<Channel>,
    request: StreamRequest,
) -> Vec<i64> {
    let mut stream = client
        .controlled_stream(request)
        .await
        .expect("ControlledStream starts")
        .into_inner();
    let mut ids = Vec::new();
    while let Some(item) = within("the next item", stream.message())
        .await
        .expect("no error")
    {
        ids.push(item.id);
    }
    ids
}

#[tokio::test]
async fn controlled_stream_delivers_up_to_the_limit_in_id_order_then_ends() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let pushed = push(&mut client, numbered(150)).await.expect("accepted");
    let first = pushed.first_id;
    let range = |from: i64, to: i64| (from..=to).collect::<Vec<_>>();

    assert_eq!(
        collect_data(&mut client, feed(0, 0)).await,
        range(first, first + 99),
        "the default limit is 100"
    );
    assert_eq!(
        collect_data(&mut client, feed(first + 49, 20)).await,
        range(first + 50, first + 69)
    );
    assert_eq!(
        collect_data(&mut client, feed(first + 139, 100)).await,
        range(first + 140, first + 149),
        "fewer stored than the limit: what there is, then the end"
    );
    assert_eq!(
        collect_data(&mut client, feed(0, 100_000)).await,
        range(first, first + 149),
        "a huge limit is clamped, not refused"
    );

    let err = client
        .controlled_stream(feed(0, -5))
        .await
        .expect_err("a negative limit is refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("limit"), "{err}");
}

#[tokio::test]
async fn buffered_stream_delivers_every_entry_stored_and_live() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let stored_part = push(&mut client, numbered(250)).await.expect("accepted");
    let mut stream = client
        .buffered_stream(feed(0, 0))
        .await
        .expect("BufferedStream starts")
        .into_inner();
    let mut seen = ids_until(&mut stream, stored_part.last_id, data_id).await;
    // Three live entries: fewer than a full burst, so they go out when the period ends.
    let live_part = push(&mut client, numbered(3)).await.expect("accepted");
    seen.extend(ids_until(&mut stream, live_part.last_id, data_id).await);
    let expected: Vec<i64> = (stored_part.first_id..=live_part.last_id).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn shutdown_ends_an_idle_follow_with_unavailable_and_the_server_stops() {
    let mut app = spawn_app().await;
    let mut follow = app
        .streaming()
        .stream_logs(LogRequest {
            follow: true,
            ..LogRequest::default()
        })
        .await
        .expect("follow starts")
        .into_inner();
    let mut feed_stream = app
        .streaming()
        .buffered_stream(feed(0, 0))
        .await
        .expect("feed starts")
        .into_inner();
    // An open PushLogs stream must not hold the server either.
    let (writer, entries) = mpsc::channel::<LogEntry>(1);
    let mut pusher = app.streaming();
    let push_call =
        tokio::spawn(async move { pusher.push_logs(ReceiverStream::new(entries)).await });
    writer
        .send(entry("svc", "INFO", "before shutdown"))
        .await
        .expect("queued");

    let stopped = app.begin_shutdown();
    let err = within("the follow to end", follow.message())
        .await
        .expect_err("ends with a status");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let err = within("the feed to end", feed_stream.message())
        .await
        .expect_err("ends with a status");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let pushed = within("the push to end", push_call).await.expect("task");
    let err = pushed.expect_err("an open push ends with a status");
    assert!(
        matches!(err.code(), Code::Unavailable | Code::Cancelled),
        "{err}"
    );
    within("the server to stop", stopped)
        .await
        .expect("server task")
        .expect("the server stops cleanly");
    drop(writer);
}

#[tokio::test]
async fn retention_removes_entries_past_the_age_and_count_limits() {
    let app = spawn_app_with(|config| {
        config.logs.max_entries = 5;
        config.logs.retention = Duration::from_secs(24 * 3600);
        config.logs.retention_interval = Duration::from_millis(50);
    })
    .await;
    let mut client = app.streaming();
    let month_ago = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    let old = LogEntry {
        timestamp: Some(month_ago.into()),
        ..entry("svc", "INFO", "expired")
    };
    let mut entries = numbered(3);
    entries.insert(1, old);
    push(&mut client, entries).await.expect("accepted");
    let fresh = |entries: &[LogEntry]| entries.iter().all(|e| e.message != "expired");
    let left = within("the expired entry to go", async {
        loop {
            let left = stored(&app, LogRequest::default()).await;
            if fresh(&left) {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(left.len(), 3, "only the expired entry went");

    let pushed = push(&mut client, numbered(10)).await.expect("accepted");
    let left = within("the store to shrink to max_entries", async {
        loop {
            let left = stored(&app, LogRequest::default()).await;
            if left.len() <= 5 {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        ids(&left),
        (pushed.last_id - 4..=pushed.last_id).collect::<Vec<_>>(),
        "the newest max_entries stay"
    );
}
