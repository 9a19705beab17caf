//! GameSession: one authoritative state per session shared by every stream, each rule and
//! error of the contract, leaving, knock-out, and conflated states with increasing ticks.

use std::collections::HashMap;

use streamhub_api::streaming::{GameAction, GameState, PlayerState};
use streamhub_testkit::{TestApp, spawn_app, spawn_app_with, within};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

/// One player's stream.
struct Player {
    id: String,
    session: String,
    outbound: Option<mpsc::Sender<GameAction>>,
    inbound: Streaming<GameState>,
    /// The last tick this stream saw; ticks must only grow.
    last_tick: i64,
}

fn action(player: &str, session: &str, kind: &str, parameters: &[(&str, &str)]) -> GameAction {
    GameAction {
        player_id: player.to_owned(),
        action_type: kind.to_owned(),
        parameters: parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
        session_id: session.to_owned(),
    }
}

impl Player {
    /// Opens a stream whose first action is JOIN.
    async fn join(app: &TestApp, session: &str, id: &str) -> Self {
        Self::open(app, action(id, session, "JOIN", &[])).await
    }

    async fn open(app: &TestApp, first: GameAction) -> Self {
        let (outbound, requests) = mpsc::channel(16);
        let id = first.player_id.clone();
        let session = first.session_id.clone();
        outbound.send(first).await.expect("queue the first action");
        let inbound = within(
            "the game stream to open",
            app.streaming().game_session(ReceiverStream::new(requests)),
        )
        .await
        .expect("GameSession opens")
        .into_inner();
        Self {
            id,
            session,
            outbound: Some(outbound),
            inbound,
            last_tick: 0,
        }
    }

    async fn act(&self, kind: &str, parameters: &[(&str, &str)]) {
        self.send(action(&self.id, &self.session, kind, parameters))
            .await;
    }

    async fn send(&self, action: GameAction) {
        self.outbound
            .as_ref()
            .expect("not half-closed")
            .send(action)
            .await
            .expect("the request stream is open");
    }

    async fn next_state(&mut self) -> GameState {
        let state = within(&format!("{}'s next state", self.id), self.inbound.message())
            .await
            .unwrap_or_else(|err| panic!("{} got {err} instead of a state", self.id))
            .unwrap_or_else(|| panic!("{}'s stream ended instead of a state", self.id));
        assert!(
            state.tick > self.last_tick,
            "ticks must increase: {} after {}",
            state.tick,
            self.last_tick
        );
        self.last_tick = state.tick;
        state
    }

    /// Skips (conflated) states until the one at `tick`.
    async fn state_at(&mut self, tick: i64) -> GameState {
        loop {
            let state = self.next_state().await;
            if state.tick >= tick {
                assert_eq!(state.tick, tick, "state {tick} was expected next");
                return state;
            }
        }
    }

    /// Reads until the stream ends with an error, which it returns.
    async fn error(&mut self) -> Status {
        loop {
            match within("the stream to end", self.inbound.message()).await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("{}'s stream ended OK instead of with an error", self.id),
                Err(status) => return status,
            }
        }
    }
}

fn standing(state: &GameState, player: &str) -> (i32, i32, String) {
    let PlayerState {
        health,
        score,
        position,
        ..
    } = state
        .players
        .get(player)
        .unwrap_or_else(|| panic!("{player} is missing from {state:?}"));
    (*health, *score, position.clone())
}

#[tokio::test]
async fn players_of_a_session_share_one_state() {
    let app = spawn_app().await;
    let mut ann = Player::join(&app, "s", "ann").await;
    let first = ann.state_at(1).await;
    assert_eq!(first.game_status, "WAITING");
    assert_eq!(first.session_id, "s");
    assert_eq!(standing(&first, "ann"), (100, 0, "0,0".to_owned()));
    assert_eq!(first.players["ann"].player_id, "ann");

    let mut bob = Player::join(&app, "s", "bob").await;
    let seen_by_ann = ann.state_at(2).await;
    let seen_by_bob = bob.state_at(2).await;
    assert_eq!(seen_by_ann, seen_by_bob, "the same authoritative state");
    assert_eq!(seen_by_ann.game_status, "ONGOING");
    assert_eq!(seen_by_ann.players.len(), 2);
    assert!(seen_by_ann.timestamp.is_some());

    // Another session is another state.
    let mut cid = Player::join(&app, "t", "cid").await;
    let other = cid.state_at(1).await;
    assert_eq!(other.players.len(), 1);
    assert_eq!(other.game_status, "WAITING");
}

#[tokio::test]
async fn each_rule_changes_the_shared_state() {
    let app = spawn_app().await;
    let mut ann = Player::join(&app, "s", "ann").await;
    let mut bob = Player::join(&app, "s", "bob").await;
    bob.state_at(2).await;

    ann.act("MOVE", &[("position", "5,7")]).await;
    assert_eq!(
        standing(&bob.state_at(3).await, "ann"),
        (100, 0, "5,7".to_owned())
    );
    ann.act("ATTACK", &[("target", "bob")]).await;
    let state = bob.state_at(4).await;
    assert_eq!(standing(&state, "ann"), (100, 10, "5,7".to_owned()));
    assert_eq!(standing(&state, "bob").0, 90);
    ann.act("ATTACK", &[]).await;
    let state = bob.state_at(5).await;
    assert_eq!(
        standing(&state, "ann").1,
        20,
        "an attack without target scores"
    );
    assert_eq!(standing(&state, "bob").0, 90, "and hurts nobody");
    bob.act("DEFEND", &[]).await;
    assert_eq!(standing(&bob.state_at(6).await, "bob").0, 95);
    bob.act("defend", &[]).await;
    bob.act("DEFEND", &[]).await;
    assert_eq!(
        standing(&bob.state_at(8).await, "bob").0,
        100,
        "DEFEND heals up to 100"
    );
    let final_by_ann = ann.state_at(8).await;
    assert_eq!(standing(&final_by_ann, "bob").0, 100);
}

#[tokio::test]
async fn an_action_before_join_enters_the_player_and_acts() {
    let app = spawn_app().await;
    let mut ann = Player::open(&app, action("ann", "", "MOVE", &[("position", "1,2")])).await;
    let state = ann.state_at(1).await;
    assert_eq!(
        state.session_id, "default",
        "an empty session_id means default"
    );
    assert_eq!(standing(&state, "ann"), (100, 0, "1,2".to_owned()));
}

#[tokio::test]
async fn a_knock_out_finishes_the_game_and_the_loser_is_out() {
    let app = spawn_app().await;
    let mut ann = Player::join(&app, "s", "ann").await;
    let mut bob = Player::join(&app, "s", "bob").await;
    for _ in 0..10 {
        ann.act("ATTACK", &[("target", "bob")]).await;
    }
    let state = bob.state_at(12).await;
    assert_eq!(standing(&state, "bob").0, 0);
    assert_eq!(standing(&state, "ann").1, 100);
    assert_eq!(state.game_status, "FINISHED");
    assert_eq!(ann.state_at(12).await, state);

    bob.act("DEFEND", &[]).await;
    let status = bob.error().await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    assert!(status.message().contains("out"), "{status}");
}

#[tokio::test]
async fn a_knocked_out_target_cannot_be_attacked_and_the_last_one_standing_wins() {
    let app = spawn_app().await;
    let mut ann = Player::join(&app, "s", "ann").await;
    let mut bob = Player::join(&app, "s", "bob").await;
    let mut cid = Player::join(&app, "s", "cid").await;
    for _ in 0..10 {
        ann.act("ATTACK", &[("target", "bob")]).await;
    }
    let state = cid.state_at(13).await;
    assert_eq!(standing(&state, "bob").0, 0);
    assert_eq!(state.game_status, "ONGOING", "ann and cid still stand");

    cid.act("ATTACK", &[("target", "bob")]).await;
    let status = cid.error().await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    assert!(status.message().contains("\"bob\" is out"), "{status}");

    // cid's stream ended, so cid left: ann is the one left standing.
    let state = ann.state_at(14).await;
    assert!(!state.players.contains_key("cid"));
    assert_eq!(state.game_status, "FINISHED");
    ann.act("DEFEND", &[]).await;
    let status = ann.error().await;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    assert!(status.message().contains("finished"), "{status}");
    bob.act("DEFEND", &[]).await;
    assert_eq!(bob.error().await.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_player_whose_stream_ends_leaves_and_the_session_closes_when_empty() {
    let app = spawn_app_with(|config| config.game.max_sessions = 1).await;
    let mut ann = Player::join(&app, "s", "ann").await;
    let mut bob = Player::join(&app, "s", "bob").await;
    let cid = Player::join(&app, "s", "cid").await;
    ann.state_at(3).await;

    // A half-close is a normal end, after the state of the player's last action.
    bob.act("MOVE", &[("position", "9,9")]).await;
    bob.outbound = None;
    let mut last = None;
    loop {
        match within("bob's stream to end", bob.inbound.message()).await {
            Ok(Some(state)) => last = Some(state),
            Ok(None) => break,
            Err(status) => panic!("a half-close ends OK, got {status}"),
        }
    }
    let last = last.expect("bob got states");
    assert_eq!((last.tick, standing(&last, "bob").2.as_str()), (4, "9,9"));
    let state = ann.state_at(5).await;
    assert!(!state.players.contains_key("bob"), "{state:?}");
    assert_eq!(state.game_status, "ONGOING");

    // So is a disconnect.
    drop(cid);
    let state = ann.state_at(6).await;
    assert_eq!(state.players.keys().collect::<Vec<_>>(), ["ann"]);
    assert_eq!(state.game_status, "WAITING");

    // Only one session may be open; once ann leaves, another can open.
    let mut dan = Player::join(&app, "t", "dan").await;
    assert_eq!(dan.error().await.code(), Code::ResourceExhausted);
    // The server closes the session before it ends the last player's half-closed stream.
    ann.outbound = None;
    while within("ann's stream to end", ann.inbound.message())
        .await
        .expect("a half-close ends OK")
        .is_some()
    {}
    let mut eve = Player::join(&app, "t", "eve").await;
    let opened = eve.next_state().await;
    assert_eq!(opened.tick, 1, "a new session starts its own ticks");
}

#[tokio::test]
async fn bad_actions_end_only_their_own_stream_with_the_contract_status() {
    let app = spawn_app().await;
    let mut ann = Player::join(&app, "s", "ann").await;
    ann.state_at(1).await;

    let cases: [(&str, GameAction, Code, &str); 8] = [
        (
            "an unknown action",
            action("bob", "s", "DANCE", &[]),
            Code::InvalidArgument,
            "DANCE",
        ),
        (
            "a MOVE without position",
            action("bob", "s", "MOVE", &[]),
            Code::InvalidArgument,
            "parameters.position",
        ),
        (
            "a position off the board",
            action("bob", "s", "MOVE", &[("position", "100,3")]),
            Code::InvalidArgument,
            "100x100",
        ),
        (
            "a position that is not x,y",
            action("bob", "s", "MOVE", &[("position", "north")]),
            Code::InvalidArgument,
            "parameters.position",
        ),
        (
            "an unknown target",
            action("bob", "s", "ATTACK", &[("target", "zed")]),
            Code::InvalidArgument,
            "parameters.target",
        ),
        (
            "another player on the same stream",
            action("mallory", "s", "DEFEND", &[]),
            Code::InvalidArgument,
            "player_id",
        ),
        (
            "another session on the same stream",
            action("bob", "t", "DEFEND", &[]),
            Code::InvalidArgument,
            "session_id",
        ),
        (
            "a player already playing on another stream",
            action("ann", "s", "JOIN", &[]),
            Code::AlreadyExists,
            "ann",
        ),
    ];
    let mut tick = 1;
    for (what, bad, code, names) in cases {
        // The player-taken case is refused at the join itself.
        let first = if bad.player_id == "ann" {
            bad.clone()
        } else {
            action("bob", "s", "JOIN", &[])
        };
        let mut bob = Player::open(&app, first).await;
        if bad.player_id != "ann" {
            tick += 1;
            bob.state_at(tick).await;
            bob.send(bad).await;
        }
        let status = bob.error().await;
        assert_eq!(status.code(), code, "{what}: {status}");
        assert!(
            status.message().contains(names),
            "{what}: {:?} should name {names}",
            status.message()
        );
        if bad_joined(&status) {
            tick += 1; // bob's leave
        }
    }
    // Ann never noticed anything but bob coming and going.
    let state = ann.state_at(tick).await;
    assert_eq!(state.players.keys().collect::<Vec<_>>(), ["ann"]);

    let mut nobody = Player::open(&app, action("", "s", "JOIN", &[])).await;
    let status = nobody.error().await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("player_id"), "{status}");
}

/// Whether the refused stream had joined first (every case but the taken player).
fn bad_joined(status: &Status) -> bool {
    status.code() != Code::AlreadyExists
}

#[tokio::test]
async fn shutdown_ends_game_streams_with_unavailable() {
    let mut app = spawn_app().await;
    let mut ann = Player::join(&app, "s", "ann").await;
    ann.state_at(1).await;
    let stopped = app.begin_shutdown();
    assert_eq!(ann.error().await.code(), Code::Unavailable);
    within("the server to stop", stopped)
        .await
        .expect("server task")
        .expect("clean stop");
}
