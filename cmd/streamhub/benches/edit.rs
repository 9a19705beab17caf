//! CollaborativeEdit throughput and memory, against the real server in-process over loopback.
//!
//! 1. One hot document, 8 concurrent editors. Each editor keeps at most `WINDOW` of its own
//!    operations unacknowledged (its own update is the acknowledgement), bases every operation
//!    on the last revision it saw, and inserts or deletes at a random position of the text it
//!    saw, so the server transforms most operations. Printed: operations applied per second
//!    and the send→own-update latency.
//! 2. 10,000 idle open documents, each with one joined stream: the server's resident memory
//!    per open document. The idle editors run in a child process (this executable again, with
//!    `IDLE_CLIENT_ENV` set), so the server's RSS delta is its own.
//!
//! Run with `cargo bench -p streamhub --bench edit`; it prints its figures.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use streamhub_api::streaming::{DocumentUpdate, EditOperation};
use streamhub_biz::SplitMix64;
use streamhub_testkit::{bounded, connect, open_edit, spawn_app_with};
use support::{ChildClients, Memory, hold_until_parent_stops, next};
use tokio::{
    sync::{Barrier, mpsc},
    task::JoinSet,
};
use tonic::{Streaming, transport::Channel};

const EDITORS: usize = 8;
const OPS_EACH: usize = 2_000;
const WINDOW: usize = 8;
/// Deletes start once the text is this long, so the document stays a realistic size.
const TARGET_CHARS: usize = 2_000;

const IDLE_DOCUMENTS: usize = 10_000;
/// Below the server's default `max_concurrent_streams` (256) per connection.
const STREAMS_PER_CONNECTION: usize = 200;

/// Any step that takes longer means the bench is broken, not slow.
const STEP_LIMIT: Duration = Duration::from_secs(120);

/// Set (to the server's endpoint) in the child process that plays the idle editors.
const IDLE_CLIENT_ENV: &str = "STREAMHUB_BENCH_IDLE_EDITORS";

#[tokio::main]
async fn main() {
    if let Ok(endpoint) = std::env::var(IDLE_CLIENT_ENV) {
        idle_client(&endpoint).await;
        return;
    }
    let server = spawn_app_with(|config| {
        config.edit.max_open_documents = IDLE_DOCUMENTS + 1;
        // The idle part holds one CollaborativeEdit call per document.
        config.server.limits.max_streams_per_method = 2 * IDLE_DOCUMENTS;
    })
    .await;
    let endpoint = server.url();

    hot_document(&endpoint).await;
    idle_documents(&endpoint).await;

    server.stop().await;
}

fn operation(user: &str, doc: &str, kind: &str) -> EditOperation {
    EditOperation {
        user_id: user.to_owned(),
        document_id: doc.to_owned(),
        operation_type: kind.to_owned(),
        ..EditOperation::default()
    }
}

/// Opens a CollaborativeEdit stream on `doc` as `user` and returns it after the snapshot.
async fn join(
    channel: Channel,
    doc: &str,
    user: &str,
    queue: usize,
) -> (
    mpsc::Sender<EditOperation>,
    Streaming<DocumentUpdate>,
    DocumentUpdate,
) {
    let (outbound, mut inbound) = open_edit(channel, operation(user, doc, "JOIN"), queue).await;
    let snapshot = next(&mut inbound).await;
    (outbound, inbound, snapshot)
}

async fn hot_document(endpoint: &str) {
    let channel = connect(endpoint).await;
    let start_line = Arc::new(Barrier::new(EDITORS + 1));
    let mut editors = JoinSet::new();
    for index in 0..EDITORS {
        editors.spawn(hot_editor(channel.clone(), index, Arc::clone(&start_line)));
    }
    bounded(STEP_LIMIT, "the editors to join", start_line.wait()).await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(EDITORS * OPS_EACH);
    let mut last_revisions = Vec::new();
    while let Some(done) = bounded(STEP_LIMIT, "the editors to finish", editors.join_next()).await {
        let (seen, last_revision) = done.expect("editor task");
        latencies.extend(seen);
        last_revisions.push(last_revision);
    }
    let elapsed = started.elapsed();
    let applied = EDITORS * OPS_EACH;
    latencies.sort_unstable();
    let percentile = |p: usize| {
        let nanos = latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        Duration::from_nanos(nanos).as_secs_f64() * 1e3
    };
    println!(
        "edit: one hot document, {EDITORS} editors x {OPS_EACH} operations each \
         (at most {WINDOW} unacknowledged per editor, random insert/delete around {TARGET_CHARS} chars)"
    );
    println!(
        "  {applied} operations applied in {:.2} s = {:.0} operations/s (final revisions seen: {:?})",
        elapsed.as_secs_f64(),
        applied as f64 / elapsed.as_secs_f64(),
        last_revisions.iter().max()
    );
    println!(
        "  send -> own update: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(50),
        percentile(99),
        percentile(100)
    );
}

/// One editor of the hot document; returns its acknowledgement latencies (ns) and the last
/// revision it saw, after it saw every editor's operations applied.
async fn hot_editor(channel: Channel, index: usize, start_line: Arc<Barrier>) -> (Vec<u64>, i64) {
    let user = format!("editor-{index}");
    let (outbound, mut inbound, snapshot) = join(channel, "hot", &user, WINDOW * 2).await;
    let mut random = SplitMix64(index as u64 + 1);
    let mut revision = snapshot.revision;
    let mut chars = snapshot.content.chars().count();
    start_line.wait().await;

    let target = snapshot.revision + (EDITORS * OPS_EACH) as i64;
    let mut in_flight = std::collections::VecDeque::with_capacity(WINDOW);
    let mut latencies = Vec::with_capacity(OPS_EACH);
    let mut sent = 0;
    loop {
        while sent < OPS_EACH && in_flight.len() < WINDOW {
            let mut op = if chars >= TARGET_CHARS && random.below(2) == 0 {
                let mut op = operation(&user, "hot", "DELETE");
                op.position = random.below(chars) as i32;
                op.length = 1;
                op
            } else {
                let mut op = operation(&user, "hot", "INSERT");
                op.position = random.below(chars + 1) as i32;
                op.content = "x".to_owned();
                op
            };
            op.base_revision = Some(revision);
            outbound.send(op).await.expect("send");
            in_flight.push_back(Instant::now());
            sent += 1;
        }
        if revision >= target {
            break;
        }
        let update = next(&mut inbound).await;
        revision = update.revision;
        chars = update.content.chars().count();
        if update.user_id == user
            && update.operation.is_some()
            && let Some(sent_at) = in_flight.pop_front()
        {
            latencies.push(sent_at.elapsed().as_nanos() as u64);
        }
    }
    (latencies, revision)
}

/// Starts the idle editors in a child process and reports the server's memory per document.
async fn idle_documents(endpoint: &str) {
    let before = Memory::now();
    // "ready SECONDS" once every document is open and its snapshot read.
    let (child, ready) = ChildClients::start(IDLE_CLIENT_ENV, endpoint, STEP_LIMIT).await;
    let after = Memory::now();
    let opened_in: f64 = ready.trim().parse().ok().unwrap_or(f64::NAN);
    let per_document_kib =
        after.rss_kib.saturating_sub(before.rss_kib) as f64 / IDLE_DOCUMENTS as f64;
    println!(
        "edit: {IDLE_DOCUMENTS} idle open documents, one joined stream each, {} connections \
         from a child process (opened in {opened_in:.2} s)",
        IDLE_DOCUMENTS.div_ceil(STREAMS_PER_CONNECTION)
    );
    println!(
        "  server VmRSS {:.1} MiB -> {:.1} MiB (VmHWM {:.1} MiB): {per_document_kib:.1} KiB per open document",
        before.rss_kib as f64 / 1024.0,
        after.rss_kib as f64 / 1024.0,
        after.hwm_kib as f64 / 1024.0,
    );
    child.stop(STEP_LIMIT).await;
}

/// The child process: opens the idle documents, reports, and holds them until stdin closes.
async fn idle_client(endpoint: &str) {
    let mut channels = Vec::new();
    for _ in 0..IDLE_DOCUMENTS.div_ceil(STREAMS_PER_CONNECTION) {
        channels.push(connect(endpoint).await);
    }
    let started = Instant::now();
    let mut opening = JoinSet::new();
    for (slot, channel) in channels.iter().enumerate() {
        let channel = channel.clone();
        opening.spawn(async move {
            let mut held = Vec::with_capacity(STREAMS_PER_CONNECTION);
            let first = slot * STREAMS_PER_CONNECTION;
            for doc in first..(first + STREAMS_PER_CONNECTION).min(IDLE_DOCUMENTS) {
                let (outbound, inbound, _) =
                    join(channel.clone(), &format!("idle-{doc}"), "idle", 1).await;
                held.push((outbound, inbound));
            }
            held
        });
    }
    let mut held = Vec::with_capacity(IDLE_DOCUMENTS);
    while let Some(streams) = bounded(
        STEP_LIMIT,
        "the idle documents to open",
        opening.join_next(),
    )
    .await
    {
        held.extend(streams.expect("opening task"));
    }
    hold_until_parent_stops(&format!("{:.3}", started.elapsed().as_secs_f64()), held).await;
}
