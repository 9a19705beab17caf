//! `GameSession`: one bidirectional stream per player of one shared session.
//!
//! Like chat, the response stream reads actions and session states in one `select!`. States
//! come from the session's `watch`: a stream that falls behind gets the latest state only.
//! The stream owns the player's seat, so the player leaves when the stream ends for any
//! reason; a half-close is a normal end (OK), after the latest state not yet sent.

use std::sync::Arc;

use futures_util::stream;
use streamhub_api::streaming::{GameAction, GameState, PlayerState};
use streamhub_biz::{
    auth::Caller,
    game::{GameHub, GameSnapshot, Seat},
};
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::{status::to_status, stream::ResponseStream, until_stopped};

/// The session of an action that names none.
const DEFAULT_SESSION: &str = "default";
/// Longest `session_id` or `player_id`, in bytes: they live as long as the session.
const MAX_ID_BYTES: usize = 256;

/// The response stream of one `GameSession` call.
pub(crate) fn game_session(
    hub: GameHub,
    caller: Caller,
    inbound: Streaming<GameAction>,
    stopping: CancellationToken,
) -> ResponseStream<GameState> {
    let state = GameStream {
        hub,
        caller,
        inbound,
        seat: None,
        finished: false,
    };
    until_stopped(stream::unfold(state, GameStream::step), stopping)
}

struct GameStream {
    hub: GameHub,
    /// Who the call authenticated as; the stream's player_id must be that user.
    caller: Caller,
    inbound: Streaming<GameAction>,
    /// Set by the first action.
    seat: Option<Seat>,
    finished: bool,
}

enum Wake {
    State(Option<Arc<GameSnapshot>>),
    Inbound(Result<Option<GameAction>, Status>),
}

impl GameStream {
    async fn step(mut self) -> Option<(Result<GameState, Status>, Self)> {
        if self.finished {
            return None;
        }
        loop {
            let Some(seat) = self.seat.as_mut() else {
                match self.inbound.message().await {
                    Ok(Some(first)) => match self.join(first) {
                        Ok(()) => continue,
                        Err(status) => return self.fail(status),
                    },
                    Ok(None) => return None,
                    Err(status) => return self.fail(status),
                }
            };
            let wake = tokio::select! {
                state = seat.next_state() => Wake::State(state),
                action = self.inbound.message() => Wake::Inbound(action),
            };
            match wake {
                Wake::State(Some(snapshot)) => return Some((Ok(to_state(&snapshot)), self)),
                Wake::State(None) => return None,
                Wake::Inbound(Ok(Some(action))) => {
                    if let Err(status) = self.act(action) {
                        return self.fail(status);
                    }
                }
                // Half-close: the player leaves and the stream ends normally, after the
                // state its last action produced if that is not out yet.
                Wake::Inbound(Ok(None)) => {
                    let last = seat.take_unseen();
                    self.seat = None;
                    self.finished = true;
                    return last.map(|snapshot| (Ok(to_state(&snapshot)), self));
                }
                Wake::Inbound(Err(status)) => return self.fail(status),
            }
        }
    }

    /// The first action seats its player in its session, then takes effect.
    fn join(&mut self, first: GameAction) -> Result<(), Status> {
        if first.player_id.is_empty() {
            return Err(Status::invalid_argument(
                "player_id must not be empty: the first action names the player",
            ));
        }
        let session_id = if first.session_id.is_empty() {
            DEFAULT_SESSION
        } else {
            &first.session_id
        };
        for (field, value) in [("session_id", session_id), ("player_id", &first.player_id)] {
            if value.len() > MAX_ID_BYTES {
                return Err(Status::invalid_argument(format!(
                    "{field} is {} bytes; the limit is {MAX_ID_BYTES} bytes",
                    value.len()
                )));
            }
        }
        self.caller
            .check_claim("player_id", &first.player_id)
            .map_err(to_status)?;
        let action = self
            .hub
            .parse_action(&first.action_type, &first.parameters)
            .map_err(to_status)?;
        let seat = self
            .hub
            .join(session_id, &first.player_id, &action)
            .map_err(to_status)?;
        self.seat = Some(seat);
        Ok(())
    }

    /// A later action: same player, same session.
    fn act(&self, action: GameAction) -> Result<(), Status> {
        let Some(seat) = &self.seat else {
            return Err(Status::internal("game action before the join"));
        };
        if !action.session_id.is_empty() && action.session_id != seat.session_id() {
            return Err(Status::invalid_argument(format!(
                "session_id {:?} differs from this stream's session {:?}: one session per stream",
                action.session_id,
                seat.session_id()
            )));
        }
        if !action.player_id.is_empty() {
            // Acting for someone else is an authorization matter before a shape one.
            self.caller
                .check_claim("player_id", &action.player_id)
                .map_err(to_status)?;
        }
        if !action.player_id.is_empty() && action.player_id != seat.player_id() {
            return Err(Status::invalid_argument(format!(
                "player_id {:?} differs from this stream's player {:?}: one player per stream",
                action.player_id,
                seat.player_id()
            )));
        }
        let parsed = self
            .hub
            .parse_action(&action.action_type, &action.parameters)
            .map_err(to_status)?;
        seat.act(&parsed).map_err(to_status)
    }

    /// Ends the stream with `status`; the player leaves at once.
    fn fail(mut self, status: Status) -> Option<(Result<GameState, Status>, Self)> {
        self.seat = None;
        self.finished = true;
        Some((Err(status), self))
    }
}

fn to_state(snapshot: &GameSnapshot) -> GameState {
    GameState {
        players: snapshot
            .players
            .iter()
            .map(|(id, player)| {
                (
                    id.clone(),
                    PlayerState {
                        player_id: id.clone(),
                        health: player.health,
                        score: player.score,
                        position: player.position.to_string(),
                    },
                )
            })
            .collect(),
        game_status: snapshot.status.as_str().to_owned(),
        timestamp: Some(snapshot.at.into()),
        session_id: snapshot.session_id.clone(),
        tick: snapshot.tick,
    }
}
