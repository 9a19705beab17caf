//! [`InProcessSessions`]: the [`SessionBus`] of a single process.
//!
//! Locking as in chat: a `std` mutex over the map of sessions, taken first and only to find,
//! open or close one, and a mutex per session around its state, under which each change is
//! computed and published. No lock is held across an `.await`; publishing is a `watch` send.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use tokio::sync::watch;

use super::{Action, GameLimits, GameSnapshot, GameState, SessionBus, apply, join, leave};
use crate::{Error, Result, mutex::lock};

/// Sessions held in this process's memory.
#[derive(Debug)]
pub struct InProcessSessions {
    limits: GameLimits,
    sessions: Mutex<HashMap<String, Arc<Mutex<Session>>>>,
}

#[derive(Debug)]
struct Session {
    id: String,
    state: GameState,
    tick: i64,
    states: watch::Sender<Arc<GameSnapshot>>,
}

impl InProcessSessions {
    pub fn new(limits: GameLimits) -> Self {
        Self {
            limits,
            sessions: Mutex::new(HashMap::new()),
        }
    }
}

impl SessionBus for InProcessSessions {
    fn enter(
        &self,
        session_id: &str,
        player_id: &str,
        action: &Action,
    ) -> Result<watch::Receiver<Arc<GameSnapshot>>> {
        let mut sessions = lock(&self.sessions);
        let (session, is_new) = match sessions.get(session_id) {
            Some(session) => (Arc::clone(session), false),
            None => {
                if sessions.len() >= self.limits.max_sessions {
                    return Err(Error::TooManySessions {
                        max: self.limits.max_sessions,
                    });
                }
                (Arc::new(Mutex::new(Session::new(session_id))), true)
            }
        };
        let states = {
            let mut guard = lock(&session);
            let next = apply(&join(&guard.state, player_id)?, player_id, action)?;
            guard.commit(next);
            let mut states = guard.states.subscribe();
            states.mark_changed();
            states
        };
        // Only now: a session whose first player was refused is never opened.
        if is_new {
            sessions.insert(session_id.to_owned(), session);
        }
        Ok(states)
    }

    fn act(&self, session_id: &str, player_id: &str, action: &Action) -> Result<()> {
        let session = lock(&self.sessions)
            .get(session_id)
            .cloned()
            .ok_or_else(|| Error::NotInSession(player_id.to_owned()))?;
        let mut session = lock(&session);
        let next = apply(&session.state, player_id, action)?;
        session.commit(next);
        Ok(())
    }

    fn leave(&self, session_id: &str, player_id: &str) {
        let mut sessions = lock(&self.sessions);
        let Some(session) = sessions.get(session_id).cloned() else {
            return;
        };
        let mut session = lock(&session);
        if !session.state.players.contains_key(player_id) {
            return;
        }
        let next = leave(&session.state, player_id);
        if next.players.is_empty() {
            drop(session);
            sessions.remove(session_id);
        } else {
            session.commit(next);
        }
    }

    fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }
}

impl Session {
    fn new(id: &str) -> Self {
        let state = GameState::default();
        let (states, _) = watch::channel(Arc::new(GameSnapshot {
            session_id: id.to_owned(),
            players: state.players.clone(),
            status: state.status(),
            tick: 0,
            at: SystemTime::now(),
        }));
        Self {
            id: id.to_owned(),
            state,
            tick: 0,
            states,
        }
    }

    /// Makes `next` the session's state and publishes it with the next tick.
    fn commit(&mut self, next: GameState) {
        self.tick += 1;
        self.state = next;
        self.states.send_replace(Arc::new(GameSnapshot {
            session_id: self.id.clone(),
            players: self.state.players.clone(),
            status: self.state.status(),
            tick: self.tick,
            at: SystemTime::now(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{Board, GameHub, GameStatus};

    fn hub(max_sessions: usize) -> (Arc<InProcessSessions>, GameHub) {
        let limits = GameLimits {
            board: Board {
                width: 10,
                height: 10,
            },
            max_sessions,
        };
        let sessions = Arc::new(InProcessSessions::new(limits));
        (sessions.clone(), GameHub::new(sessions, limits.board))
    }

    #[tokio::test]
    async fn every_seat_sees_the_latest_state_with_increasing_ticks() {
        let (_, hub) = hub(4);
        let mut ann = hub.join("s", "ann", &Action::Join).expect("ann");
        let first = ann.next_state().await.expect("state");
        assert_eq!((first.tick, first.status), (1, GameStatus::Waiting));
        let mut bob = hub.join("s", "bob", &Action::Defend).expect("bob");
        bob.act(&Action::Defend).expect("defend");
        let seen_by_bob = bob.next_state().await.expect("state");
        let seen_by_ann = ann.next_state().await.expect("state");
        assert_eq!(
            seen_by_ann, seen_by_bob,
            "conflated to the same latest state"
        );
        assert_eq!(seen_by_ann.tick, 3);
        assert_eq!(seen_by_ann.status, GameStatus::Ongoing);
    }

    #[tokio::test]
    async fn a_refused_first_action_changes_nothing() {
        let (sessions, hub) = hub(4);
        let err = hub
            .join(
                "s",
                "ann",
                &Action::Attack {
                    target: Some("zed".to_owned()),
                },
            )
            .expect_err("no such target");
        assert!(matches!(err, Error::BadParameter { .. }), "{err:?}");
        assert_eq!(sessions.session_count(), 0, "never opened");
        let _ann = hub.join("s", "ann", &Action::Join).expect("ann");
        let err = hub.join("s", "ann", &Action::Join).expect_err("taken");
        assert!(matches!(err, Error::PlayerTaken(_)), "{err:?}");
    }

    #[tokio::test]
    async fn sessions_close_when_empty_and_are_bounded() {
        let (sessions, hub) = hub(1);
        let mut ann = hub.join("s", "ann", &Action::Join).expect("ann");
        let bob = hub.join("s", "bob", &Action::Join).expect("bob");
        let err = hub
            .join("t", "cid", &Action::Join)
            .expect_err("one session only");
        assert!(matches!(err, Error::TooManySessions { max: 1 }), "{err:?}");
        drop(bob);
        let after_leave = ann.next_state().await.expect("state");
        assert!(!after_leave.players.contains_key("bob"));
        assert_eq!(after_leave.tick, 3);
        drop(ann);
        assert_eq!(sessions.session_count(), 0);
    }
}
