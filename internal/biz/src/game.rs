//! Shared game sessions: the rules as pure functions over a [`GameState`], and the hub that
//! holds one authoritative state per session and fans it out.
//!
//! The rules never touch shared state: [`join`], [`apply`] and [`leave`] take a state and
//! return the next one (or the reason the action is refused), so each rule is tested alone.
//! Sessions are reached through [`SessionBus`] (in-process today: [`InProcessSessions`]), and
//! states travel in a `watch` channel: a slow stream skips to the latest state instead of
//! queueing a backlog.

mod in_process;

use std::{collections::BTreeMap, collections::HashMap, fmt, sync::Arc, time::SystemTime};

use tokio::sync::watch;

pub use in_process::InProcessSessions;

use crate::{Error, Result};

/// Health of a new player, and the most DEFEND can restore.
pub const MAX_HEALTH: i32 = 100;
/// Health an ATTACK takes from its target.
pub const ATTACK_DAMAGE: i32 = 10;
/// Score an ATTACK earns.
pub const ATTACK_SCORE: i32 = 10;
/// Health a DEFEND restores.
pub const DEFEND_HEAL: i32 = 5;

/// The board positions are on: `x` in `0..width`, `y` in `0..height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    pub width: u32,
    pub height: u32,
}

/// A square of the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub x: u32,
    pub y: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.x, self.y)
    }
}

/// One player's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    pub health: i32,
    pub score: i32,
    pub position: Position,
}

impl Player {
    fn new() -> Self {
        Self {
            health: MAX_HEALTH,
            score: 0,
            position: Position::default(),
        }
    }

    /// A player at health 0 is out: it stays on the board but can no longer act.
    pub fn is_out(&self) -> bool {
        self.health == 0
    }
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameStatus {
    /// Fewer than two players.
    Waiting,
    Ongoing,
    /// Someone was knocked out and one player with health is left.
    Finished,
}

impl GameStatus {
    /// The wire name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "WAITING",
            Self::Ongoing => "ONGOING",
            Self::Finished => "FINISHED",
        }
    }
}

/// The authoritative state of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GameState {
    pub players: BTreeMap<String, Player>,
    /// Whether anyone was ever knocked out here; a knocked-out player that leaves does not
    /// undo a finished game.
    knockout: bool,
}

impl GameState {
    pub fn status(&self) -> GameStatus {
        let standing = self.players.values().filter(|p| !p.is_out()).count();
        if self.knockout && standing <= 1 && !self.players.is_empty() {
            GameStatus::Finished
        } else if self.players.len() < 2 {
            GameStatus::Waiting
        } else {
            GameStatus::Ongoing
        }
    }
}

/// What a player does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Enter without acting.
    Join,
    Move(Position),
    /// Score; with a target, also hurt it.
    Attack {
        target: Option<String>,
    },
    Defend,
}

impl Action {
    /// Reads an action from its wire form: `action_type` (case-insensitive) and its
    /// `parameters`, which must fit `board`.
    pub fn parse(
        action_type: &str,
        parameters: &HashMap<String, String>,
        board: Board,
    ) -> Result<Self> {
        match action_type.to_ascii_uppercase().as_str() {
            "JOIN" => Ok(Self::Join),
            "MOVE" => {
                let raw = parameters
                    .get("position")
                    .ok_or_else(|| Error::BadParameter {
                        name: "position",
                        reason: "is required for MOVE (\"x,y\")".to_owned(),
                    })?;
                Ok(Self::Move(parse_position(raw, board)?))
            }
            "ATTACK" => Ok(Self::Attack {
                target: parameters
                    .get("target")
                    .filter(|target| !target.is_empty())
                    .cloned(),
            }),
            "DEFEND" => Ok(Self::Defend),
            _ => Err(Error::UnknownAction(action_type.to_owned())),
        }
    }
}

fn parse_position(raw: &str, board: Board) -> Result<Position> {
    let bad = |reason: String| Error::BadParameter {
        name: "position",
        reason,
    };
    let (x, y) = raw
        .split_once(',')
        .ok_or_else(|| bad(format!("{raw:?} is not \"x,y\"")))?;
    let coordinate = |text: &str, size: u32, axis: &str| -> Result<u32> {
        let value: i64 = text
            .trim()
            .parse()
            .map_err(|_| bad(format!("{raw:?}: {axis} {text:?} is not an integer")))?;
        u32::try_from(value)
            .ok()
            .filter(|value| *value < size)
            .ok_or_else(|| {
                bad(format!(
                    "{raw:?} is off the {}x{} board ({axis} must be in 0..{size})",
                    board.width, board.height
                ))
            })
    };
    Ok(Position {
        x: coordinate(x, board.width, "x")?,
        y: coordinate(y, board.height, "y")?,
    })
}

/// `player_id` enters the session with health 100, score 0, at `0,0`.
pub fn join(state: &GameState, player_id: &str) -> Result<GameState> {
    if state.players.contains_key(player_id) {
        return Err(Error::PlayerTaken(player_id.to_owned()));
    }
    let mut next = state.clone();
    next.players.insert(player_id.to_owned(), Player::new());
    Ok(next)
}

/// `player_id`, already in the session, does `action`.
pub fn apply(state: &GameState, player_id: &str, action: &Action) -> Result<GameState> {
    let player = state
        .players
        .get(player_id)
        .ok_or_else(|| Error::NotInSession(player_id.to_owned()))?;
    if player.is_out() {
        return Err(Error::PlayerOut(player_id.to_owned()));
    }
    if state.status() == GameStatus::Finished && *action != Action::Join {
        return Err(Error::GameFinished);
    }
    let mut next = state.clone();
    match action {
        Action::Join => {}
        Action::Move(position) => mutate(&mut next, player_id).position = *position,
        Action::Attack { target } => {
            if let Some(target_id) = target {
                if target_id == player_id {
                    return Err(Error::BadParameter {
                        name: "target",
                        reason: "a player cannot attack itself".to_owned(),
                    });
                }
                let target =
                    next.players
                        .get_mut(target_id)
                        .ok_or_else(|| Error::BadParameter {
                            name: "target",
                            reason: format!("no player {target_id:?} in this session"),
                        })?;
                if target.is_out() {
                    return Err(Error::TargetOut(target_id.clone()));
                }
                target.health = (target.health - ATTACK_DAMAGE).max(0);
                if target.is_out() {
                    next.knockout = true;
                }
            }
            mutate(&mut next, player_id).score += ATTACK_SCORE;
        }
        Action::Defend => {
            let player = mutate(&mut next, player_id);
            player.health = (player.health + DEFEND_HEAL).min(MAX_HEALTH);
        }
    }
    Ok(next)
}

/// `player_id` leaves the session (its stream ended).
pub fn leave(state: &GameState, player_id: &str) -> GameState {
    let mut next = state.clone();
    next.players.remove(player_id);
    next
}

/// The acting player, whose presence [`apply`] has checked.
fn mutate<'a>(state: &'a mut GameState, player_id: &str) -> &'a mut Player {
    state
        .players
        .entry(player_id.to_owned())
        .or_insert_with(Player::new)
}

/// A state as every stream of the session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameSnapshot {
    pub session_id: String,
    pub players: BTreeMap<String, Player>,
    pub status: GameStatus,
    /// Increases by one with every change of the session's state.
    pub tick: i64,
    /// Server clock at the change.
    pub at: SystemTime,
}

/// The limits of game sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GameLimits {
    pub board: Board,
    /// Sessions open at once.
    pub max_sessions: usize,
}

/// The publish/subscribe seam of game sessions: it owns each session's authoritative state
/// and publishes every change to the session's subscribers, conflated.
pub trait SessionBus: fmt::Debug + Send + Sync + 'static {
    /// Seats `player_id` in `session_id` (opening it if needed) and applies its first
    /// `action`, as one change; nothing changes if either is refused. The receiver holds the
    /// resulting state, marked unseen.
    fn enter(
        &self,
        session_id: &str,
        player_id: &str,
        action: &Action,
    ) -> Result<watch::Receiver<Arc<GameSnapshot>>>;

    /// Applies `action` of a seated player and publishes the new state.
    fn act(&self, session_id: &str, player_id: &str, action: &Action) -> Result<()>;

    /// Removes the player and publishes the new state; closes the session when it was the
    /// last player. Removing a player that is gone does nothing.
    fn leave(&self, session_id: &str, player_id: &str);

    /// Sessions open now, for metrics. Called on every scrape: must be cheap.
    fn session_count(&self) -> usize;
}

/// The game sessions of the server: a cheap handle shared by every game stream.
#[derive(Debug, Clone)]
pub struct GameHub {
    bus: Arc<dyn SessionBus>,
    board: Board,
}

impl GameHub {
    /// Sessions carried by `bus`, played on `board`.
    pub fn new(bus: Arc<dyn SessionBus>, board: Board) -> Self {
        Self { bus, board }
    }

    /// Sessions living in this process only.
    pub fn in_process(limits: GameLimits) -> Self {
        Self::new(Arc::new(InProcessSessions::new(limits)), limits.board)
    }

    /// Sessions open now, for metrics.
    pub fn session_count(&self) -> usize {
        self.bus.session_count()
    }

    /// Reads an action in its wire form against this hub's board; see [`Action::parse`].
    pub fn parse_action(
        &self,
        action_type: &str,
        parameters: &HashMap<String, String>,
    ) -> Result<Action> {
        Action::parse(action_type, parameters, self.board)
    }

    /// Seats `player_id` in `session_id` with its first action; see [`SessionBus::enter`].
    /// The player leaves when the seat is dropped or [`Seat::leave`] is called.
    pub fn join(&self, session_id: &str, player_id: &str, action: &Action) -> Result<Seat> {
        let states = self.bus.enter(session_id, player_id, action)?;
        Ok(Seat {
            bus: Arc::clone(&self.bus),
            session_id: session_id.to_owned(),
            player_id: player_id.to_owned(),
            states,
            seated: true,
        })
    }
}

/// One stream's player in a session.
#[derive(Debug)]
pub struct Seat {
    bus: Arc<dyn SessionBus>,
    session_id: String,
    player_id: String,
    states: watch::Receiver<Arc<GameSnapshot>>,
    seated: bool,
}

impl Seat {
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn player_id(&self) -> &str {
        &self.player_id
    }

    /// Applies `action` for this player.
    pub fn act(&self, action: &Action) -> Result<()> {
        self.bus.act(&self.session_id, &self.player_id, action)
    }

    /// The latest state not yet returned, waiting for a change if there is none; states in
    /// between are skipped. `None` if the session is gone. Cancel-safe.
    pub async fn next_state(&mut self) -> Option<Arc<GameSnapshot>> {
        self.states.changed().await.ok()?;
        Some(Arc::clone(&self.states.borrow_and_update()))
    }

    /// The latest state if it has not been returned yet, without waiting.
    pub fn take_unseen(&mut self) -> Option<Arc<GameSnapshot>> {
        if self.states.has_changed().unwrap_or(false) {
            Some(Arc::clone(&self.states.borrow_and_update()))
        } else {
            None
        }
    }

    /// Leaves the session.
    pub fn leave(&mut self) {
        if std::mem::take(&mut self.seated) {
            self.bus.leave(&self.session_id, &self.player_id);
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOARD: Board = Board {
        width: 100,
        height: 100,
    };

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn with_players(ids: &[&str]) -> GameState {
        ids.iter().fold(GameState::default(), |state, id| {
            join(&state, id).expect("join")
        })
    }

    fn attack(target: &str) -> Action {
        Action::Attack {
            target: Some(target.to_owned()),
        }
    }

    #[test]
    fn join_adds_a_fresh_player_once() {
        let state = with_players(&["ann"]);
        assert_eq!(
            state.players["ann"],
            Player {
                health: 100,
                score: 0,
                position: Position { x: 0, y: 0 }
            }
        );
        assert!(matches!(join(&state, "ann"), Err(Error::PlayerTaken(_))));
        let same = apply(&state, "ann", &Action::Join).expect("JOIN of a seated player");
        assert_eq!(same, state);
    }

    #[test]
    fn status_waits_for_two_players() {
        assert_eq!(with_players(&["ann"]).status(), GameStatus::Waiting);
        assert_eq!(with_players(&["ann", "bob"]).status(), GameStatus::Ongoing);
        assert_eq!(
            leave(&with_players(&["ann", "bob"]), "bob").status(),
            GameStatus::Waiting
        );
    }

    #[test]
    fn move_sets_a_position_inside_the_board() {
        let action = Action::parse("move", &params(&[("position", " 99, 7")]), BOARD)
            .expect("valid position");
        assert_eq!(action, Action::Move(Position { x: 99, y: 7 }));
        let state = apply(&with_players(&["ann"]), "ann", &action).expect("move");
        assert_eq!(state.players["ann"].position.to_string(), "99,7");
    }

    #[test]
    fn move_refuses_missing_malformed_or_off_board_positions() {
        for raw in ["", "3", "a,b", "1,2,3", "100,0", "0,100", "-1,0", "1.5,2"] {
            let err = Action::parse("MOVE", &params(&[("position", raw)]), BOARD)
                .expect_err("bad position");
            assert!(
                matches!(
                    err,
                    Error::BadParameter {
                        name: "position",
                        ..
                    }
                ),
                "{raw:?}: {err:?}"
            );
        }
        let err = Action::parse("MOVE", &params(&[]), BOARD).expect_err("missing");
        assert!(err.to_string().contains("required"), "{err}");
    }

    #[test]
    fn unknown_actions_are_refused() {
        let err = Action::parse("DANCE", &params(&[]), BOARD).expect_err("unknown");
        assert!(matches!(err, Error::UnknownAction(ref name) if name == "DANCE"));
    }

    #[test]
    fn attack_scores_and_hurts_an_active_target() {
        let state = with_players(&["ann", "bob"]);
        let alone = apply(&state, "ann", &Action::Attack { target: None }).expect("attack");
        assert_eq!(alone.players["ann"].score, 10);
        assert_eq!(alone.players["bob"].health, 100);
        let hit = apply(&alone, "ann", &attack("bob")).expect("attack bob");
        assert_eq!(hit.players["ann"].score, 20);
        assert_eq!(hit.players["bob"].health, 90);
        assert_eq!(hit.players["ann"].health, 100);
    }

    #[test]
    fn attack_refuses_itself_unknown_and_knocked_out_targets() {
        let state = with_players(&["ann", "bob", "cid"]);
        assert!(matches!(
            apply(&state, "ann", &attack("ann")),
            Err(Error::BadParameter { name: "target", .. })
        ));
        assert!(matches!(
            apply(&state, "ann", &attack("zed")),
            Err(Error::BadParameter { name: "target", .. })
        ));
        let mut state = state;
        for _ in 0..10 {
            state = apply(&state, "ann", &attack("bob")).expect("attack");
        }
        assert!(matches!(
            apply(&state, "cid", &attack("bob")),
            Err(Error::TargetOut(ref id)) if id == "bob"
        ));
    }

    #[test]
    fn defend_heals_up_to_the_cap() {
        let state = apply(&with_players(&["ann", "bob"]), "ann", &attack("bob")).expect("hit");
        let healed = apply(&state, "bob", &Action::Defend).expect("defend");
        assert_eq!(healed.players["bob"].health, 95);
        let healed = apply(&healed, "bob", &Action::Defend).expect("defend");
        assert_eq!(healed.players["bob"].health, 100);
        let capped = apply(&healed, "bob", &Action::Defend).expect("defend");
        assert_eq!(capped.players["bob"].health, 100);
    }

    #[test]
    fn a_knock_out_finishes_the_game_and_the_loser_can_no_longer_act() {
        let mut state = with_players(&["ann", "bob"]);
        for _ in 0..9 {
            state = apply(&state, "ann", &attack("bob")).expect("attack");
            assert_eq!(state.status(), GameStatus::Ongoing);
        }
        state = apply(&state, "ann", &attack("bob")).expect("knock-out");
        assert_eq!(state.players["bob"].health, 0);
        assert_eq!(state.status(), GameStatus::Finished);
        assert!(matches!(
            apply(&state, "bob", &Action::Defend),
            Err(Error::PlayerOut(_))
        ));
        assert!(matches!(
            apply(&state, "ann", &Action::Defend),
            Err(Error::GameFinished)
        ));
        assert_eq!(
            leave(&state, "bob").status(),
            GameStatus::Finished,
            "the winner is still the one left standing"
        );
        let rematch = join(&state, "cid").expect("a newcomer");
        assert_eq!(rematch.status(), GameStatus::Ongoing);
    }

    #[test]
    fn health_never_goes_below_zero() {
        let mut state = with_players(&["ann", "bob"]);
        for _ in 0..7 {
            state = apply(&state, "bob", &Action::Defend).expect("defend");
        }
        state.players.get_mut("bob").expect("bob").health = 5;
        state = apply(&state, "ann", &attack("bob")).expect("attack");
        assert_eq!(state.players["bob"].health, 0);
    }

    #[test]
    fn only_seated_players_act() {
        assert!(matches!(
            apply(&GameState::default(), "ann", &Action::Defend),
            Err(Error::NotInSession(_))
        ));
    }
}
