//! Logs benchmark: ingest, replay and live fan-out latency, through real gRPC against the
//! in-process server on 127.0.0.1. Prints its figures; asserts nothing about speed.
//!
//! - PushLogs entries/s with one stream and with 8 concurrent streams;
//! - StreamLogs replay entries/s over a store of 1,000,000 entries;
//! - latency from a pushed entry leaving the writer to 100 followers receiving it (the
//!   commit is on that path), p50/p99.

mod support;

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime},
};

use streamhub_api::streaming::{
    LogEntry, LogRequest, streaming_service_client::StreamingServiceClient,
};
use streamhub_testkit::spawn_app_with;
use support::Memory;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

const STORE_SIZE: usize = 1_000_000;
const FOLLOWERS: usize = 100;
const LATENCY_SAMPLES: usize = 1_000;
const LATENCY_INTERVAL: Duration = Duration::from_millis(2);

fn entry(n: usize) -> LogEntry {
    LogEntry {
        service: "bench".to_owned(),
        level: if n.is_multiple_of(10) { "WARN" } else { "INFO" }.to_owned(),
        message: format!("request {n} handled in 12 ms by worker {}", n % 16),
        metadata: HashMap::from([("host".to_owned(), "bench-1".to_owned())]),
        ..LogEntry::default()
    }
}

async fn push(channel: Channel, count: usize) {
    let mut client = StreamingServiceClient::new(channel);
    let result = client
        .push_logs(tokio_stream::iter((0..count).map(entry)))
        .await
        .expect("PushLogs succeeds")
        .into_inner();
    assert_eq!(result.accepted as usize, count);
}

/// Pushes `total` entries as one PushLogs call per channel, concurrently; returns entries/s.
async fn push_rate(channels: &[Channel], total: usize) -> f64 {
    let started = Instant::now();
    let calls: Vec<_> = channels
        .iter()
        .map(|channel| tokio::spawn(push(channel.clone(), total / channels.len())))
        .collect();
    for call in calls {
        call.await.expect("push task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::main]
async fn main() {
    // Retention stays out of the measurements.
    let server = spawn_app_with(|config| config.logs.max_entries = 10 * STORE_SIZE as u64).await;
    let channel = server.connect().await;

    println!("logs benchmark (release build, SQLite WAL in a temp dir, 127.0.0.1)");
    let one = push_rate(std::slice::from_ref(&channel), 100_000).await;
    println!("PushLogs, 1 stream:             {one:>10.0} entries/s (100,000 entries)");
    // One connection per stream, as separate writers would have.
    let mut writers = Vec::new();
    for _ in 0..8 {
        writers.push(server.connect().await);
    }
    let eight = push_rate(&writers, 200_000).await;
    println!("PushLogs, 8 concurrent streams: {eight:>10.0} entries/s (200,000 entries)");

    // Fill the store to STORE_SIZE, then replay it.
    let fill = STORE_SIZE - 300_000;
    push_rate(&writers, fill).await;
    let mut client = StreamingServiceClient::new(channel.clone());
    let started = Instant::now();
    let mut replay = client
        .stream_logs(LogRequest::default())
        .await
        .expect("StreamLogs starts")
        .into_inner();
    let mut replayed = 0_usize;
    while replay.message().await.expect("no error").is_some() {
        replayed += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(replayed, STORE_SIZE);
    println!(
        "StreamLogs replay:              {:>10.0} entries/s ({replayed} stored entries in {elapsed:.2?})",
        replayed as f64 / elapsed.as_secs_f64()
    );
    println!("memory after replay:            {}", Memory::now());

    // Latency: FOLLOWERS live followers over 4 connections, one writer pacing single entries.
    let mut followers = Vec::new();
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(FOLLOWERS);
    for n in 0..FOLLOWERS {
        let channel = if n.is_multiple_of(25) {
            server.connect().await
        } else {
            channel.clone()
        };
        let ready = ready_tx.clone();
        followers.push(tokio::spawn(async move {
            let mut client = StreamingServiceClient::new(channel);
            let mut live = client
                .stream_logs(LogRequest {
                    follow: true,
                    after_id: STORE_SIZE as i64,
                    ..LogRequest::default()
                })
                .await
                .expect("follow starts")
                .into_inner();
            let _ = ready.send(()).await;
            let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
            while latencies.len() < LATENCY_SAMPLES {
                let entry = live.message().await.expect("no error").expect("open");
                let sent: SystemTime = entry
                    .timestamp
                    .expect("timestamp")
                    .try_into()
                    .expect("valid time");
                latencies.push(SystemTime::now().duration_since(sent).unwrap_or_default());
            }
            latencies
        }));
    }
    for _ in 0..FOLLOWERS {
        ready_rx.recv().await.expect("follower ready");
    }
    let (writer, entries) = mpsc::channel::<LogEntry>(16);
    let mut pusher = StreamingServiceClient::new(channel.clone());
    let push_call =
        tokio::spawn(async move { pusher.push_logs(ReceiverStream::new(entries)).await });
    let mut ticks = tokio::time::interval(LATENCY_INTERVAL);
    for n in 0..LATENCY_SAMPLES {
        ticks.tick().await;
        let mut entry = entry(n);
        entry.timestamp = Some(SystemTime::now().into());
        writer.send(entry).await.expect("writer open");
    }
    drop(writer);
    push_call
        .await
        .expect("push task")
        .expect("PushLogs succeeds");
    let mut latencies = Vec::new();
    for follower in followers {
        latencies.extend(follower.await.expect("follower task"));
    }
    latencies.sort();
    println!(
        "push -> {FOLLOWERS} followers latency: p50 {:.2?}, p99 {:.2?}, max {:.2?} ({} samples, one entry every {LATENCY_INTERVAL:?})",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        latencies.len()
    );
    println!("memory at the end:              {}", Memory::now());

    server.stop().await;
}
