//! Chat across restarts of the real binary: a room's ids never repeat and a `last_seen_id`
//! from before a graceful stop (SIGTERM) or a crash (SIGKILL) still means what it meant, and
//! every message the server acknowledged (echoed to its author) is still there.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use streamhub_api::streaming::ChatMessage;
use streamhub_testkit::{ChatMember, within};
use tokio::sync::watch;

use crate::crash::{integrity_check, start_server};

fn summary(message: &ChatMessage) -> (i64, &str, &str, &str) {
    (
        message.id,
        message.kind.as_str(),
        message.user_id.as_str(),
        message.message.as_str(),
    )
}

/// Asserts `events` carry consecutive ids from `first`.
fn assert_consecutive(events: &[ChatMessage], first: i64) {
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    let expected: Vec<i64> = (first..first + ids.len() as i64).collect();
    assert_eq!(ids, expected, "no gap, no duplicate: {events:?}");
}

#[tokio::test]
async fn a_resume_after_a_graceful_restart_replays_what_was_missed_and_ids_continue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_server(dir.path());
    let channel = server.connect().await;
    let mut ann = ChatMember::join(&channel, "r", "ann", 0).await; // 1
    // Two streams' first messages race each other to the room: ann must be in before bob
    // joins, or she never hears of his join.
    ann.until("join", "ann").await;
    let mut bob = ChatMember::join(&channel, "r", "bob", 0).await; // 2
    ann.until("join", "bob").await;
    bob.until("join", "bob").await;
    for i in 0..5 {
        ann.say(&format!("before {i}")).await; // 3..=7
    }
    let read = bob.until("message", "ann").await; // bob has read up to 3
    let bob_last_seen = read.last().expect("an event").id;
    assert_eq!(bob_last_seen, 3);
    let acked = ann.until("message", "ann").await.len(); // 3
    assert_eq!(acked, 1);
    let mut acked_up_to = 3;
    while acked_up_to < 7 {
        acked_up_to = ann.next().await.id;
    }

    server.terminate();
    let status = server.exit().await;
    assert!(status.success(), "exit status {status} after SIGTERM");
    // Both streams end with the shutdown; what matters is what the store kept.
    drop((ann, bob));

    let server = start_server(dir.path());
    let channel = server.connect().await;
    let mut bob = ChatMember::join(&channel, "r", "bob", bob_last_seen).await;
    let replay = bob.until("join", "bob").await;
    assert_consecutive(&replay, bob_last_seen + 1);
    let messages: Vec<&str> = replay
        .iter()
        .filter(|event| event.kind == "message")
        .map(|event| event.message.as_str())
        .collect();
    assert_eq!(
        messages,
        ["before 1", "before 2", "before 3", "before 4"],
        "every acknowledged message after bob's last_seen_id, once, in order"
    );
    assert!(
        replay.iter().all(|event| event.kind != "reset"),
        "the history covers the gap: no reset, {replay:?}"
    );
    // The shutdown stored both leaves before the server exited.
    let leaves: Vec<&str> = replay
        .iter()
        .filter(|event| event.kind == "leave")
        .map(|event| event.user_id.as_str())
        .collect();
    assert_eq!(leaves.len(), 2, "ann's and bob's leaves: {replay:?}");
    let join = replay.last().expect("the join");
    assert_eq!(
        summary(join),
        (10, "join", "bob", ""),
        "ids continue above 9"
    );
    server.kill();
    assert_eq!(integrity_check(dir.path()).await, "ok");
}

#[tokio::test]
async fn a_sigkill_during_chat_keeps_every_acknowledged_message_and_ids_continue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_server(dir.path());
    let channel = server.connect().await;
    let mut writer = ChatMember::join(&channel, "r", "writer", 0).await; // 1
    writer.until("join", "writer").await;

    // An echo is the server's acknowledgement of a message.
    let acked: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let (progress, mut acked_count) = watch::channel(0_usize);
    let ChatMember {
        outbound,
        mut inbound,
        ..
    } = writer;
    let outbound = outbound.expect("not half-closed");
    let mut window = acked_count.clone();
    let sending = tokio::spawn(async move {
        for i in 0.. {
            // At most 16 unacknowledged, which also keeps the writer under its message rate.
            if window.wait_for(|acked| acked + 16 > i).await.is_err() {
                return;
            }
            let message = ChatMessage {
                message: format!("m{i}"),
                ..ChatMessage::default()
            };
            if outbound.send(message).await.is_err() {
                return;
            }
        }
    });
    let reading = tokio::spawn({
        let acked = Arc::clone(&acked);
        async move {
            loop {
                match inbound.message().await {
                    Ok(Some(echo)) => {
                        let mut acked = acked.lock().expect("lock");
                        acked.insert(echo.id, echo.message);
                        progress.send_replace(acked.len());
                    }
                    // The end: the server was killed (or, if too early, why not).
                    end => return end.err(),
                }
            }
        }
    });
    let running = within(
        "300 acknowledged messages",
        acked_count.wait_for(|n| *n >= 300),
    )
    .await
    .map(|_| ());
    server.kill();
    let end = within("the reader to see the connection drop", reading)
        .await
        .expect("reader task");
    assert!(running.is_ok(), "the writer's stream ended early: {end:?}");
    sending.abort();
    let acked = acked.lock().expect("lock").clone();
    let last_acked = *acked.keys().last().expect("acknowledged messages");

    assert_eq!(integrity_check(dir.path()).await, "ok");
    let server = start_server(dir.path());
    let channel = server.connect().await;
    // Resume from the very start: the whole (kept) room replays.
    let mut checker = ChatMember::join(&channel, "r", "checker", 1).await;
    let replay = checker.until("join", "checker").await;
    assert!(
        replay.iter().all(|event| event.kind != "reset"),
        "the default history keeps all of it: {:?}",
        replay.first()
    );
    assert_consecutive(&replay, 2);
    let stored: BTreeMap<i64, &str> = replay
        .iter()
        .filter(|event| event.kind == "message")
        .map(|event| (event.id, event.message.as_str()))
        .collect();
    for (id, text) in &acked {
        assert_eq!(
            stored.get(id).copied(),
            Some(text.as_str()),
            "acknowledged message {id} survives the crash"
        );
    }
    let texts: Vec<&str> = stored.values().copied().collect();
    let sent_prefix: Vec<String> = (0..texts.len()).map(|i| format!("m{i}")).collect();
    assert_eq!(
        texts, sent_prefix,
        "what is stored is a prefix of what was sent, in order, once each"
    );
    let join = replay.last().expect("the join");
    assert!(
        join.id > last_acked,
        "ids continue above the last acknowledged one ({last_acked}): {join:?}"
    );
    server.kill();
    assert_eq!(integrity_check(dir.path()).await, "ok");
}
