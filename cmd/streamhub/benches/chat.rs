//! Chat throughput, latency and memory, against the real server in-process over loopback gRPC.
//!
//! 1. One room, 100 members, each sending 100 messages with at most 4 of its own unacknowledged
//!    (a member's own copy is its acknowledgement, so no member falls `chat.member_queue`
//!    behind): deliveries per second, and the send→receipt latency seen by the other members.
//! 2. 10,000 idle members in 100 rooms: the server's resident memory per member. The idle
//!    clients run in a child process (this executable again, with `IDLE_CLIENT_ENV` set), so
//!    the server's RSS delta is its own.
//!
//! Run with `cargo bench -p streamhub --bench chat`; it prints its figures.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use streamhub_api::streaming::ChatMessage;
use streamhub_testkit::{bounded, connect, open_chat, spawn_app_with};
use support::{ChildClients, Memory, hold_until_parent_stops, next};
use tokio::{
    sync::{Barrier, mpsc},
    task::JoinSet,
};
use tonic::{Streaming, transport::Channel};

const MEMBERS: usize = 100;
const MESSAGES_EACH: usize = 100;
const WINDOW: usize = 4;
const BUSY_CONNECTIONS: usize = 4;

const IDLE_ROOMS: usize = 100;
const IDLE_PER_ROOM: usize = 100;
/// Below the server's default `max_concurrent_streams` (256) per connection.
const STREAMS_PER_CONNECTION: usize = 200;

/// Any step that takes longer means the bench is broken, not slow.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// Set (to the server's endpoint) in the child process that plays the idle members.
const IDLE_CLIENT_ENV: &str = "STREAMHUB_BENCH_IDLE_CLIENT";

#[tokio::main]
async fn main() {
    if let Ok(endpoint) = std::env::var(IDLE_CLIENT_ENV) {
        idle_client(&endpoint).await;
        return;
    }
    // The idle part holds 10,000 Chat calls open at once; leave room above it.
    let server =
        spawn_app_with(|config| config.server.limits.max_streams_per_method = 20_000).await;
    let endpoint = server.url();

    one_busy_room(&endpoint).await;
    idle_members(&endpoint).await;

    server.stop().await;
}

/// Opens a chat stream whose first message joins `room` as `user`.
async fn join(
    channel: Channel,
    room: &str,
    user: &str,
    queue: usize,
) -> (mpsc::Sender<ChatMessage>, Streaming<ChatMessage>) {
    let join = ChatMessage {
        room_id: room.to_owned(),
        user_id: user.to_owned(),
        ..ChatMessage::default()
    };
    open_chat(channel, join, queue).await
}

async fn one_busy_room(endpoint: &str) {
    let mut channels = Vec::new();
    for _ in 0..BUSY_CONNECTIONS {
        channels.push(connect(endpoint).await);
    }
    let start_line = Arc::new(Barrier::new(MEMBERS + 1));
    let epoch = Instant::now();
    let mut members = JoinSet::new();
    for index in 0..MEMBERS {
        members.spawn(busy_member(
            channels[index % BUSY_CONNECTIONS].clone(),
            index,
            Arc::clone(&start_line),
            epoch,
        ));
    }
    bounded(STEP_LIMIT, "the members to join", start_line.wait()).await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(MEMBERS * (MEMBERS - 1) * MESSAGES_EACH);
    while let Some(seen) = bounded(STEP_LIMIT, "the members to finish", members.join_next()).await {
        latencies.extend(seen.expect("member task"));
    }
    let elapsed = started.elapsed();
    let deliveries = MEMBERS * MEMBERS * MESSAGES_EACH;
    latencies.sort_unstable();
    let percentile = |p: usize| {
        let nanos = latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        Duration::from_nanos(nanos).as_secs_f64() * 1e3
    };
    println!(
        "chat: one room, {MEMBERS} members x {MESSAGES_EACH} messages each \
         (at most {WINDOW} unacknowledged per member, {BUSY_CONNECTIONS} connections)"
    );
    println!(
        "  {deliveries} deliveries in {:.2} s = {:.0} deliveries/s",
        elapsed.as_secs_f64(),
        deliveries as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  send -> receipt by another member: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        percentile(50),
        percentile(99),
        percentile(100),
        latencies.len()
    );
}

/// One member of the busy room; returns the latencies (ns) of the others' messages.
async fn busy_member(
    channel: Channel,
    index: usize,
    start_line: Arc<Barrier>,
    epoch: Instant,
) -> Vec<u64> {
    let user = format!("member-{index}");
    let (outbound, mut inbound) = join(channel, "busy", &user, WINDOW * 2).await;
    loop {
        let event = next(&mut inbound).await;
        if event.kind == "join" && event.user_id == user {
            break;
        }
    }
    start_line.wait().await;

    let stamp = || ChatMessage {
        message: epoch.elapsed().as_nanos().to_string(),
        ..ChatMessage::default()
    };
    let mut sent = 0;
    while sent < WINDOW.min(MESSAGES_EACH) {
        outbound.send(stamp()).await.expect("send");
        sent += 1;
    }
    let expected = MEMBERS * MESSAGES_EACH;
    let mut received = 0;
    let mut latencies = Vec::with_capacity((MEMBERS - 1) * MESSAGES_EACH);
    while received < expected {
        let event = next(&mut inbound).await;
        if event.kind != "message" {
            continue;
        }
        received += 1;
        if event.user_id == user {
            // Our own copy acknowledges one message: the window moves on.
            if sent < MESSAGES_EACH {
                outbound.send(stamp()).await.expect("send");
                sent += 1;
            }
        } else {
            let sent_at: u64 = event.message.parse().expect("a timestamp text");
            let now = epoch.elapsed().as_nanos() as u64;
            latencies.push(now.saturating_sub(sent_at));
        }
    }
    latencies
}

/// Starts the idle members in a child process and reports the server's memory per member.
async fn idle_members(endpoint: &str) {
    let total = IDLE_ROOMS * IDLE_PER_ROOM;
    let before = Memory::now();
    // "ready SECONDS CLIENT_RSS_KIB" once every member has joined and read every join.
    let (child, ready) = ChildClients::start(IDLE_CLIENT_ENV, endpoint, STEP_LIMIT).await;
    let after = Memory::now();
    let fields: Vec<f64> = ready
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    let (opened_in, client_rss_kib) = (fields[0], fields[1]);
    let per_member_kib = after.rss_kib.saturating_sub(before.rss_kib) as f64 / total as f64;
    println!(
        "chat: {total} idle members in {IDLE_ROOMS} rooms, {} connections from a child process \
         (opened in {opened_in:.2} s)",
        total.div_ceil(STREAMS_PER_CONNECTION)
    );
    println!(
        "  server VmRSS {:.1} MiB -> {:.1} MiB (VmHWM {:.1} MiB): {per_member_kib:.1} KiB per member \
         (client process: {:.1} KiB per member)",
        before.rss_kib as f64 / 1024.0,
        after.rss_kib as f64 / 1024.0,
        after.hwm_kib as f64 / 1024.0,
        client_rss_kib / total as f64
    );
    child.stop(STEP_LIMIT).await;
}

/// The child process: opens the idle members, reports, and holds them until stdin closes.
async fn idle_client(endpoint: &str) {
    let total = IDLE_ROOMS * IDLE_PER_ROOM;
    let before = Memory::now();
    let mut channels = Vec::new();
    for _ in 0..total.div_ceil(STREAMS_PER_CONNECTION) {
        channels.push(connect(endpoint).await);
    }
    let started = Instant::now();
    let mut rooms = JoinSet::new();
    for room in 0..IDLE_ROOMS {
        let channel = channels[room * IDLE_PER_ROOM / STREAMS_PER_CONNECTION].clone();
        rooms.spawn(idle_room(channel, room));
    }
    let mut held = Vec::with_capacity(IDLE_ROOMS);
    while let Some(room) = bounded(STEP_LIMIT, "the idle rooms to fill", rooms.join_next()).await {
        held.push(room.expect("room task"));
    }
    let after = Memory::now();
    let report = format!(
        "{:.3} {}",
        started.elapsed().as_secs_f64(),
        after.rss_kib.saturating_sub(before.rss_kib)
    );
    hold_until_parent_stops(&report, held).await;
}

/// Fills one room with idle members, and waits until each has read every join: from then
/// on nothing is queued anywhere and the streams are truly idle.
async fn idle_room(
    channel: Channel,
    room: usize,
) -> Vec<(mpsc::Sender<ChatMessage>, Streaming<ChatMessage>)> {
    let room_id = format!("idle-{room}");
    let mut members = Vec::with_capacity(IDLE_PER_ROOM);
    for index in 0..IDLE_PER_ROOM {
        members.push(join(channel.clone(), &room_id, &format!("idle-{index}"), 1).await);
    }
    let last_join = IDLE_PER_ROOM as i64;
    for (_, inbound) in &mut members {
        while next(inbound).await.id < last_join {}
    }
    members
}
