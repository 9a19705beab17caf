//! `streamctl game`: typed commands from two players in one session.

use serde_json::Value;

use streamhub_testkit::spawn_app;

use crate::streamctl::Session;

/// The state of `player` in a GameState record.
fn player<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["players"]
        .as_array()
        .expect("players")
        .iter()
        .find(|player| player["player"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {state}"))
}

#[tokio::test]
async fn typed_commands_move_attack_and_defend() {
    let app = spawn_app().await;
    let args = |who: &'static str| ["--json", "game", "--session", "arena", "--player", who];
    let mut ann = Session::start(&app.url(), &args("ann"));
    let first = ann.json("ann's seat").await;
    assert_eq!(first["status"], "WAITING", "{first}");
    assert_eq!(first["session"], "arena");

    let mut bob = Session::start(&app.url(), &args("bob"));
    ann.json_until("bob's arrival", |state| state["status"] == "ONGOING")
        .await;

    ann.type_line("move 3,4");
    let moved = ann
        .json_until("ann's move", |state| {
            player(state, "ann")["position"] == "3,4"
        })
        .await;
    assert_eq!(player(&moved, "ann")["health"], 100);

    // A typo is explained on stderr and not sent; the session goes on.
    bob.type_line("dance");
    bob.stderr_containing("not a command").await;
    bob.type_line("attack ann");
    let hit = ann
        .json_until("bob's attack", |state| player(state, "ann")["health"] == 90)
        .await;
    assert_eq!(player(&hit, "bob")["score"], 10, "{hit}");

    ann.type_line("defend");
    ann.json_until("ann's defence", |state| {
        player(state, "ann")["health"] == 95
    })
    .await;

    ann.close_input();
    ann.finish().await.success();
    bob.json_until("ann's leave", |state| {
        state["players"]
            .as_array()
            .is_some_and(|players| players.len() == 1)
    })
    .await;
    bob.type_line("exit");
    bob.finish().await.success();
}

#[tokio::test]
async fn a_move_off_the_board_ends_with_the_server_s_error() {
    let app = spawn_app().await;
    let mut ann = Session::start(&app.url(), &["game", "--player", "ann"]);
    let state = ann.line("ann's seat").await;
    assert!(
        state.contains("WAITING") && state.contains("ann hp 100 score 0 at 0,0"),
        "{state}"
    );
    ann.type_line("move 1000,1000");
    ann.finish().await.failed_with(1, "INVALID_ARGUMENT");
}
