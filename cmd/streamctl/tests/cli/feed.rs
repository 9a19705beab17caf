//! `streamctl feed`, and its reconnection when the server restarts mid-stream.

use std::collections::HashMap;

use streamhub_api::streaming::LogEntry;

use streamhub_testkit::{TestApp, spawn_app, spawn_app_in};

use crate::streamctl::{Session, run};

/// Stores `messages` through PushLogs.
async fn push(app: &TestApp, messages: &[String]) {
    let entries: Vec<LogEntry> = messages
        .iter()
        .map(|message| LogEntry {
            service: "feed".into(),
            level: "INFO".into(),
            message: message.clone(),
            metadata: HashMap::new(),
            ..LogEntry::default()
        })
        .collect();
    app.streaming()
        .push_logs(tokio_stream::iter(entries))
        .await
        .expect("PushLogs");
}

fn messages(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|n| format!("entry {n}")).collect()
}

#[tokio::test]
async fn feed_starts_after_from_and_stops_after_count() {
    let app = spawn_app().await;
    push(&app, &messages(1..=6)).await;
    let items = run(
        &app.url(),
        &["--json", "feed", "--from", "2", "--count", "3"],
        "",
    )
    .await
    .json();
    let ids: Vec<i64> = items
        .iter()
        .map(|item| item["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [3, 4, 5]);
    assert_eq!(
        items[0]["data"]["message"], "entry 3",
        "data is an object: {items:?}"
    );
    assert_eq!(items[0]["data"]["service"], "feed");

    let human = run(&app.url(), &["feed", "--from", "5", "--count", "1"], "").await;
    let lines = human.success();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with("#6 INFO  feed: entry 6"), "{lines:?}");
}

#[tokio::test]
async fn feed_survives_a_server_restart_without_gap_or_duplicate() {
    let app = spawn_app().await;
    push(&app, &messages(1..=5)).await;
    let mut feed = Session::start(
        &app.url(),
        &["--json", "feed", "--from", "0", "--count", "12"],
    );
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            feed.json("an entry before the restart").await["id"]
                .as_i64()
                .expect("id"),
        );
    }

    let addr = app.addr;
    let data_dir = app.stop().await;
    feed.stderr_containing("reconnecting").await;
    let app = spawn_app_in(data_dir, |config| config.server.grpc.addr = addr).await;
    // Written while the feed may or may not be back: it must get them from the store or live.
    push(&app, &messages(6..=9)).await;
    for _ in 0..4 {
        ids.push(
            feed.json("an entry after the restart").await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    push(&app, &messages(10..=12)).await;
    let finished = feed.finish().await;
    for line in finished.success() {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        ids.push(value["id"].as_i64().expect("id"));
    }
    assert_eq!(ids, (1..=12).collect::<Vec<i64>>(), "no gap, no duplicate");
}
