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
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown, caller_of,
    status::to_status,
    stream::ResponseStream,
    stream_identity::{IdField, IdentityRule, Ids},
    until_stopped,
};

/// One session and one player per stream; an action that names no session plays in
/// `default`.
const SESSION_STREAM: IdentityRule = IdentityRule {
    scope: IdField {
        name: "session_id",
        noun: "session",
    },
    user: IdField {
        name: "player_id",
        noun: "player",
    },
    default_scope: Some("default"),
};

/// The GameSession handler: the sessions plus the shutdown that ends every player's stream.
#[derive(Debug, Clone)]
pub(crate) struct GameHandlers {
    games: GameHub,
    shutdown: Shutdown,
}

impl GameHandlers {
    pub(crate) fn new(games: GameHub, shutdown: &Shutdown) -> Self {
        Self {
            games,
            shutdown: shutdown.clone(),
        }
    }

    /// The response stream of one player: seated by the first action, leaving when the
    /// stream ends.
    pub(crate) fn game_session(
        &self,
        request: Request<Streaming<GameAction>>,
    ) -> Result<Response<ResponseStream<GameState>>, Status> {
        let state = GameStream {
            hub: self.games.clone(),
            caller: caller_of(&request),
            inbound: request.into_inner(),
            seat: None,
            finished: false,
        };
        Ok(Response::new(until_stopped(
            stream::unfold(state, GameStream::step),
            self.shutdown.stopping.clone(),
        )))
    }
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
        let ids = SESSION_STREAM.first(
            &self.caller,
            Ids {
                scope: &first.session_id,
                user: &first.player_id,
            },
        )?;
        let action = self
            .hub
            .parse_action(&first.action_type, &first.parameters)
            .map_err(to_status)?;
        let seat = self
            .hub
            .join(ids.scope, ids.user, &action)
            .map_err(to_status)?;
        self.seat = Some(seat);
        Ok(())
    }

    /// A later action: same player, same session.
    fn act(&self, action: GameAction) -> Result<(), Status> {
        let Some(seat) = &self.seat else {
            return Err(Status::internal("game action before the join"));
        };
        SESSION_STREAM.later(
            &self.caller,
            Ids {
                scope: seat.session_id(),
                user: seat.player_id(),
            },
            Ids {
                scope: &action.session_id,
                user: &action.player_id,
            },
        )?;
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
