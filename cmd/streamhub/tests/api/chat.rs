//! Chat: shared rooms with ids, presence, history and resume, the slow-member policy, and the
//! ends of a stream (half-close, disconnect, bad message, shutdown).

use sqlx::Connection as _;
use streamhub_api::streaming::ChatMessage;
use streamhub_testkit::{ChatMember, spawn_app, spawn_app_with, within};
use tonic::Code;

fn event(id: i64, kind: &str, user: &str, text: &str) -> (i64, String, String, String) {
    (id, kind.to_owned(), user.to_owned(), text.to_owned())
}

fn summary(message: &ChatMessage) -> (i64, String, String, String) {
    (
        message.id,
        message.kind.clone(),
        message.user_id.clone(),
        message.message.clone(),
    )
}

#[tokio::test]
async fn every_message_reaches_every_member_including_its_sender_with_ids() {
    let app = spawn_app().await;
    let mut ann = ChatMember::join(&app.channel, "lobby", "ann", 0).await;
    assert_eq!(summary(&ann.next().await), event(1, "join", "ann", ""));
    let mut bob = ChatMember::join(&app.channel, "lobby", "bob", 0).await;
    for member in [&mut ann, &mut bob] {
        assert_eq!(summary(&member.next().await), event(2, "join", "bob", ""));
    }

    ann.say("hello").await;
    bob.say("hi ann").await;
    for member in [&mut ann, &mut bob] {
        let first = member.next().await;
        let second = member.next().await;
        assert_eq!(summary(&first), event(3, "message", "ann", "hello"));
        assert_eq!(summary(&second), event(4, "message", "bob", "hi ann"));
        for message in [first, second] {
            assert_eq!(message.room_id, "lobby");
            assert!(message.timestamp.is_some(), "the server stamps every event");
        }
    }

    // Another room is another sequence and another audience.
    let mut cid = ChatMember::join(&app.channel, "elsewhere", "cid", 0).await;
    assert_eq!(summary(&cid.next().await), event(1, "join", "cid", ""));
    cid.say("anyone?").await;
    assert_eq!(
        summary(&cid.next().await),
        event(2, "message", "cid", "anyone?")
    );
    ann.say("still here").await;
    assert_eq!(
        summary(&bob.next().await),
        event(5, "message", "ann", "still here")
    );
}

#[tokio::test]
async fn a_first_message_with_text_joins_and_posts() {
    let app = spawn_app().await;
    let mut ann = ChatMember::open(
        &app.channel,
        ChatMessage {
            room_id: "r".to_owned(),
            user_id: "ann".to_owned(),
            message: "hello on arrival".to_owned(),
            ..ChatMessage::default()
        },
    )
    .await;
    assert_eq!(summary(&ann.next().await), event(1, "join", "ann", ""));
    assert_eq!(
        summary(&ann.next().await),
        event(2, "message", "ann", "hello on arrival")
    );
}

#[tokio::test]
async fn a_half_close_delivers_everything_then_ends_ok_and_others_see_the_leave() {
    // Seed 000's client: send ten messages, half-close, then read. The seed's server ended
    // the stream under it ("transport is closing"); here it gets all of them and a clean end.
    let app = spawn_app().await;
    let mut watcher = ChatMember::join(&app.channel, "r", "watcher", 0).await;
    watcher.next_matching("join", "watcher").await;
    let mut user1 = ChatMember::join(&app.channel, "r", "User1", 0).await;
    for i in 0..10 {
        user1.say(&format!("Hello from User1! Message {i}")).await;
    }
    user1.half_close();

    assert_eq!(summary(&user1.next().await), event(2, "join", "User1", ""));
    for i in 0..10 {
        assert_eq!(
            summary(&user1.next().await),
            event(
                3 + i,
                "message",
                "User1",
                &format!("Hello from User1! Message {i}")
            )
        );
    }
    let end = within("the stream to end", user1.inbound.message()).await;
    assert!(
        matches!(end, Ok(None)),
        "a half-closed stream ends OK, got {end:?}"
    );

    watcher.next_matching("join", "User1").await;
    for i in 0..10 {
        assert_eq!(watcher.next().await.id, 3 + i);
    }
    assert_eq!(
        summary(&watcher.next().await),
        event(13, "leave", "User1", "")
    );
}

#[tokio::test]
async fn an_abrupt_disconnect_is_seen_as_a_leave() {
    let app = spawn_app().await;
    let mut ann = ChatMember::join(&app.channel, "r", "ann", 0).await;
    // In before bob, or ann would never hear of his join.
    ann.next_matching("join", "ann").await;
    let mut bob = ChatMember::join(&app.channel, "r", "bob", 0).await;
    bob.next_matching("join", "bob").await;
    ann.next_matching("join", "bob").await;
    drop(bob); // no half-close: the client just goes away
    assert_eq!(summary(&ann.next().await), event(3, "leave", "bob", ""));
}

#[tokio::test]
async fn a_resume_replays_what_was_missed_without_gap_or_duplicate_during_live_traffic() {
    let app = spawn_app().await;
    let mut ann = ChatMember::join(&app.channel, "r", "ann", 0).await; // id 1
    for i in 0..20 {
        ann.say(&format!("before {i}")).await; // ids 2..=21
    }
    for _ in 0..21 {
        ann.next().await;
    }

    // Bob talks without pause while cid resumes from id 10.
    const LIVE: usize = 300;
    let mut bob = ChatMember::join(&app.channel, "r", "bob", 0).await;
    let talking = tokio::spawn(async move {
        for i in 0..LIVE {
            bob.say(&format!("live {i}")).await;
        }
        // Keep bob's stream open (and read) until cid has seen everything.
        while let Ok(Some(_)) = bob.inbound.message().await {}
    });
    let mut cid = ChatMember::join(&app.channel, "r", "cid", 10).await;

    let mut expected_id = 11;
    let mut live_seen = 0;
    while live_seen < LIVE {
        let message = cid.next().await;
        assert_eq!(
            message.id, expected_id,
            "ids after last_seen_id come once each, in order (got {message:?})"
        );
        expected_id += 1;
        if message.user_id == "bob" && message.kind == "message" {
            assert_eq!(message.message, format!("live {live_seen}"));
            live_seen += 1;
        }
    }
    talking.abort();
}

#[tokio::test]
async fn a_resume_beyond_the_kept_history_starts_with_a_reset() {
    let app = spawn_app_with(|config| config.chat.history = 5).await;
    let mut ann = ChatMember::join(&app.channel, "r", "ann", 0).await; // id 1
    for i in 0..10 {
        ann.say(&format!("m{i}")).await; // ids 2..=11; 7..=11 are kept
    }
    for _ in 0..11 {
        ann.next().await;
    }
    let mut bob = ChatMember::join(&app.channel, "r", "bob", 2).await;
    let reset = bob.next().await;
    assert_eq!(reset.kind, "reset", "{reset:?}");
    assert_eq!(reset.id, 6, "the reset carries the last id that was lost");
    assert!(
        reset.message.contains("4 messages after id 2"),
        "the reset says how many were lost: {:?}",
        reset.message
    );
    for id in 7..=11 {
        assert_eq!(bob.next().await.id, id);
    }
    assert_eq!(summary(&bob.next().await), event(12, "join", "bob", ""));

    // Resuming from within the kept history needs no reset.
    let mut cid = ChatMember::join(&app.channel, "r", "cid", 9).await;
    assert_eq!(
        summary(&cid.next().await),
        event(10, "message", "ann", "m8")
    );
}

#[tokio::test]
async fn a_member_that_stops_reading_is_cut_off_and_the_room_goes_on() {
    let app = spawn_app_with(|config| config.chat.member_queue = 16).await;
    // Never reads: its transport buffers fill, then its queue, then the room drops it.
    let mut slow = ChatMember::join(&app.channel, "r", "slow", 0).await;
    let mut watcher = ChatMember::join(&app.channel, "r", "watcher", 0).await;
    watcher.next_matching("join", "watcher").await;
    // The flooder reads everything it gets in a task of its own; the watcher paces the flood:
    // the next message goes out only when the watcher has received the last, so the watcher
    // never falls behind itself.
    let ChatMember {
        outbound, inbound, ..
    } = ChatMember::join(&app.channel, "r", "flooder", 0).await;
    let flood = outbound.expect("open");
    let flooder_reads = tokio::spawn(async move {
        let mut inbound = inbound;
        let mut received = 0_usize;
        while let Ok(Some(_)) = inbound.message().await {
            received += 1;
        }
        received
    });
    let say = |text: &str| ChatMessage {
        room_id: "r".to_owned(),
        user_id: "flooder".to_owned(),
        message: text.to_owned(),
        ..ChatMessage::default()
    };
    let big = "x".repeat(4000);
    let mut cut_off = false;
    for _round in 0..20_000 {
        flood
            .send(say(&big))
            .await
            .expect("the flooder's stream is open");
        loop {
            let event = watcher.next().await;
            if event.kind == "leave" && event.user_id == "slow" {
                cut_off = true;
            }
            if event.kind == "message" && event.user_id == "flooder" {
                break;
            }
        }
        if cut_off {
            break;
        }
    }
    assert!(cut_off, "the slow member was never cut off");

    let status = slow.error().await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("slow consumer"), "{status}");

    // The others never waited and still talk.
    flood.send(say("after")).await.expect("open");
    let event = watcher.next_matching("message", "flooder").await;
    assert_eq!(event.message, "after");
    drop(flood); // half-close: the flooder's stream ends once it has everything
    assert!(
        within("the flooder to finish", flooder_reads)
            .await
            .expect("reader task")
            > 0
    );
}

#[tokio::test]
async fn bad_messages_end_only_their_own_stream() {
    let app = spawn_app().await;
    let mut ann = ChatMember::join(&app.channel, "r", "ann", 0).await;
    ann.next_matching("join", "ann").await;

    let cases: [(&str, ChatMessage, &str); 4] = [
        (
            "another room",
            ChatMessage {
                room_id: "other".to_owned(),
                message: "hi".to_owned(),
                ..ChatMessage::default()
            },
            "room_id",
        ),
        (
            "another user",
            ChatMessage {
                user_id: "mallory".to_owned(),
                message: "hi".to_owned(),
                ..ChatMessage::default()
            },
            "user_id",
        ),
        (
            "a text over chat.max_message_bytes",
            ChatMessage {
                message: "y".repeat(4097),
                ..ChatMessage::default()
            },
            "4096",
        ),
        (
            "a text over the limit in the same room",
            ChatMessage {
                room_id: "r".to_owned(),
                message: "y".repeat(5000),
                ..ChatMessage::default()
            },
            "message",
        ),
    ];
    for (what, bad, names) in cases {
        let mut bob = ChatMember::join(&app.channel, "r", "bob", 0).await;
        bob.next_matching("join", "bob").await;
        bob.send_raw(bad).await;
        let status = bob.error().await;
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status}");
        assert!(
            status.message().contains(names),
            "{what}: {:?} should name {names}",
            status.message()
        );
        // Bob is gone, ann is unaffected.
        ann.next_matching("leave", "bob").await;
    }
    ann.say("fine").await;
    assert_eq!(ann.next_matching("message", "ann").await.message, "fine");
}

#[tokio::test]
async fn a_first_message_must_name_a_room_and_a_user() {
    let app = spawn_app().await;
    let cases = [
        (
            ChatMessage {
                user_id: "ann".to_owned(),
                ..ChatMessage::default()
            },
            "room_id",
        ),
        (
            ChatMessage {
                room_id: "r".to_owned(),
                ..ChatMessage::default()
            },
            "user_id",
        ),
        (
            ChatMessage {
                room_id: "r".to_owned(),
                user_id: "ann".to_owned(),
                last_seen_id: -1,
                ..ChatMessage::default()
            },
            "last_seen_id",
        ),
        (
            ChatMessage {
                room_id: "r".to_owned(),
                user_id: "ann".to_owned(),
                message: "z".repeat(4097),
                ..ChatMessage::default()
            },
            "4096",
        ),
    ];
    for (first, names) in cases {
        let mut member = ChatMember::open(&app.channel, first.clone()).await;
        let status = member.error().await;
        assert_eq!(status.code(), Code::InvalidArgument, "{first:?}: {status}");
        assert!(status.message().contains(names), "{status}");
    }
}

#[tokio::test]
async fn rooms_are_bounded() {
    let app = spawn_app_with(|config| config.chat.max_rooms = 1).await;
    let mut ann = ChatMember::join(&app.channel, "one", "ann", 0).await;
    ann.next().await;
    let mut bob = ChatMember::join(&app.channel, "two", "bob", 0).await;
    let status = bob.error().await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("limit 1"), "{status}");

    // A room closes with its last member, which frees its place. The server leaves the room
    // before it ends a half-closed stream, so the end is the signal.
    ann.half_close();
    let end = within("ann's stream to end", ann.inbound.message()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    let mut cid = ChatMember::join(&app.channel, "two", "cid", 0).await;
    assert_eq!(summary(&cid.next().await), event(1, "join", "cid", ""));
}

#[tokio::test]
async fn shutdown_ends_chat_streams_with_unavailable() {
    let mut app = spawn_app().await;
    let mut ann = ChatMember::join(&app.channel, "r", "ann", 0).await;
    ann.next().await;
    let stopped = app.begin_shutdown();
    let status = ann.error().await;
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    within("the server to stop", stopped)
        .await
        .expect("server task")
        .expect("clean stop");
}

#[tokio::test]
async fn a_resume_into_an_emptied_and_reopened_room_replays_exactly_what_was_missed() {
    let app = spawn_app().await;
    let mut ann = ChatMember::join(&app.channel, "r", "ann", 0).await; // id 1
    for text in ["one", "two", "three"] {
        ann.say(text).await; // ids 2..=4
    }
    let mut last_seen = 0;
    for _ in 0..4 {
        last_seen = ann.next().await.id;
    }
    assert_eq!(last_seen, 4);
    // Ann leaves; the server ends her stream once it has left, so the room is empty now.
    ann.half_close();
    let end = within("ann's stream to end", ann.inbound.message()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");

    let mut bob = ChatMember::join(&app.channel, "r", "bob", 0).await;
    let bob_join = bob.next().await;
    assert_eq!(
        summary(&bob_join),
        event(6, "join", "bob", ""),
        "the reopened room continues above the ids it used (5 is ann's leave)"
    );
    for i in 0..8 {
        bob.say(&format!("bob {i}")).await;
    }
    for i in 0..8 {
        // Bob's own copies: each is stored by now.
        assert_eq!(
            summary(&bob.next().await),
            event(7 + i, "message", "bob", &format!("bob {i}"))
        );
    }

    let mut ann = ChatMember::join(&app.channel, "r", "ann", last_seen).await;
    let mut expected = vec![event(5, "leave", "ann", ""), event(6, "join", "bob", "")];
    expected.extend((0..8).map(|i| event(7 + i, "message", "bob", &format!("bob {i}"))));
    expected.push(event(15, "join", "ann", ""));
    let mut replayed = Vec::new();
    for _ in 0..expected.len() {
        replayed.push(summary(&ann.next().await));
    }
    assert_eq!(
        replayed, expected,
        "exactly what ann missed, no reset, then her join"
    );
    assert_eq!(
        summary(&bob.next().await),
        event(15, "join", "ann", ""),
        "bob sees the same sequence"
    );
}

#[tokio::test]
async fn a_refused_append_ends_its_author_with_internal_and_spares_the_others() {
    let app = spawn_app().await;
    let mut ann = ChatMember::join(&app.channel, "r", "ann", 0).await;
    let mut bob = ChatMember::join(&app.channel, "r", "bob", 0).await;
    ann.next_matching("join", "bob").await;
    bob.next_matching("join", "bob").await;

    // Take the events table away behind the server's back: the next append fails.
    let database = app.data_dir().join("streamhub.db");
    let mut outside = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&database),
    )
    .await
    .expect("open the database");
    sqlx::query("ALTER TABLE chat_events RENAME TO chat_events_away")
        .execute(&mut outside)
        .await
        .expect("rename");
    ann.say("lost").await;
    let status = ann.error().await;
    assert_eq!(status.code(), Code::Internal, "{status}");
    assert!(
        !status.message().contains("chat_events"),
        "no storage detail reaches the client: {status}"
    );

    sqlx::query("ALTER TABLE chat_events_away RENAME TO chat_events")
        .execute(&mut outside)
        .await
        .expect("rename back");
    outside.close().await.expect("close");
    bob.say("still here").await;
    let echo = bob.next_matching("message", "bob").await;
    assert_eq!(echo.message, "still here");
}
