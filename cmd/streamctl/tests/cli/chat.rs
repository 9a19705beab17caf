//! `streamctl chat`: two piped clients in one room.

use streamhub_testkit::{spawn_app, spawn_app_in};

use crate::streamctl::Session;

/// `[2026-01-02 15:04:05] rest` with any valid-looking time.
fn assert_stamped(line: &str, rest: &str) {
    let bytes = line.as_bytes();
    let stamped = line.len() > 22
        && bytes[0] == b'['
        && bytes[5] == b'-'
        && bytes[11] == b' '
        && bytes[14] == b':'
        && bytes[20] == b']'
        && bytes[1..5].iter().all(u8::is_ascii_digit);
    assert!(
        stamped && &line[22..] == rest,
        "expected `[time] {rest}`, got {line:?}"
    );
}

#[tokio::test]
async fn two_piped_clients_see_each_other_and_leave_cleanly() {
    let app = spawn_app().await;
    let mut ann = Session::start(&app.url(), &["chat", "--room", "lobby", "--user", "ann"]);
    assert_stamped(&ann.line("ann's own join").await, "* ann joined");

    let mut bob = Session::start(
        &app.url(),
        &["--json", "chat", "--room", "lobby", "--user", "bob"],
    );
    assert_stamped(&ann.line("bob's join").await, "* bob joined");
    bob.json_until("bob's own join", |event| {
        event["kind"] == "join" && event["user"] == "bob"
    })
    .await;

    bob.type_line("hello from bob");
    assert_stamped(&ann.line("bob's message").await, "bob: hello from bob");
    let echo = bob.json("bob's echo").await;
    assert_eq!(echo["kind"], "message");
    assert_eq!(echo["text"], "hello from bob");
    assert_eq!(echo["room"], "lobby");

    ann.type_line("hi bob");
    let heard = bob.json("ann's message").await;
    assert_eq!(
        (heard["user"].as_str(), heard["text"].as_str()),
        (Some("ann"), Some("hi bob"))
    );
    assert!(
        heard["id"].as_i64() > echo["id"].as_i64(),
        "ids grow: {heard} after {echo}"
    );
    assert_stamped(&ann.line("ann's echo").await, "ann: hi bob");

    // `exit` half-closes: ann leaves, bob sees it, ann exits 0.
    ann.type_line("exit");
    ann.finish().await.success();
    let left = bob.json("ann's leave").await;
    assert_eq!(
        (left["kind"].as_str(), left["user"].as_str()),
        (Some("leave"), Some("ann"))
    );

    // Ann comes back: bob sees her join.
    let mut ann = Session::start(&app.url(), &["chat", "--room", "lobby", "--user", "ann"]);
    let joined = bob.json("ann's return").await;
    assert_eq!(
        (joined["kind"].as_str(), joined["user"].as_str()),
        (Some("join"), Some("ann"))
    );
    assert_stamped(&ann.line("ann's own join").await, "* ann joined");

    // End of input half-closes too: bob leaves, ann sees it, bob exits 0.
    bob.close_input();
    bob.finish().await.success();
    assert_stamped(&ann.line("bob's leave").await, "* bob left");
    ann.close_input();
    ann.finish().await.success();
}

#[tokio::test]
async fn since_replays_what_was_missed() {
    let app = spawn_app().await;
    let mut ann = Session::start(
        &app.url(),
        &["--json", "chat", "--room", "r", "--user", "ann"],
    );
    let join = ann.json("ann's join").await;
    ann.type_line("one");
    ann.type_line("two");
    let one = ann.json_until("one", |event| event["text"] == "one").await;
    ann.json_until("two", |event| event["text"] == "two").await;
    let since = one["id"].as_i64().expect("id").to_string();
    assert!(join["id"].as_i64() < one["id"].as_i64());

    let mut late = Session::start(
        &app.url(),
        &[
            "--json", "chat", "--room", "r", "--user", "cy", "--since", &since,
        ],
    );
    let replayed = late.json("the replay").await;
    assert_eq!(replayed["text"], "two", "starts after --since: {replayed}");
    late.close_input();
    late.finish().await.success();
}

#[tokio::test]
async fn chat_rejoins_after_a_server_restart_and_goes_on() {
    let app = spawn_app().await;
    let args = |who: &'static str| ["--json", "chat", "--room", "ops", "--user", who];
    let mut ann = Session::start(&app.url(), &args("ann"));
    // Bob starts once ann is in, so that ann sees him join.
    ann.json_until("ann's join", |event| event["kind"] == "join")
        .await;
    let mut bob = Session::start(&app.url(), &args("bob"));
    ann.json_until("bob's join", |event| {
        event["kind"] == "join" && event["user"] == "bob"
    })
    .await;
    bob.type_line("before");
    let before = ann
        .json_until("bob's message", |event| event["text"] == "before")
        .await;

    let addr = app.addr;
    let data_dir = app.stop().await;
    ann.stderr_containing("reconnecting").await;
    bob.stderr_containing("reconnecting").await;
    let _app = spawn_app_in(data_dir, |config| config.server.grpc.addr = addr).await;

    // A room's sequence is stored: both resume where they were, ids continue, no reset.
    let back = ann
        .json_until("bob back", |event| {
            event["kind"] == "reset" || (event["kind"] == "join" && event["user"] == "bob")
        })
        .await;
    assert_eq!(
        back["kind"], "join",
        "a resume after a restart needs no reset: {back}"
    );
    bob.type_line("after");
    let after = ann
        .json_until("bob's message after the restart", |event| {
            event["kind"] == "message"
        })
        .await;
    assert_eq!(after["text"], "after", "nothing is replayed twice: {after}");
    assert!(
        after["id"].as_i64() > before["id"].as_i64(),
        "ids continue: {before} then {after}"
    );
    ann.close_input();
    ann.finish().await.success();
    bob.close_input();
    bob.finish().await.success();
}
