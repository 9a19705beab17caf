//! `game`: the board of game sessions and how many sessions may be open.

use serde::Deserialize;

use crate::load::{ConfError, all_greater_than_zero};

/// `game`: shared game sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GameConf {
    /// Board width: a MOVE's `x` must be in `0..board_width`.
    pub board_width: u32,
    /// Board height: a MOVE's `y` must be in `0..board_height`.
    pub board_height: u32,
    /// Sessions open at once; a join that would open one more gets `RESOURCE_EXHAUSTED`.
    pub max_sessions: usize,
}

impl Default for GameConf {
    fn default() -> Self {
        Self {
            board_width: 100,
            board_height: 100,
            max_sessions: 10_000,
        }
    }
}

impl GameConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        all_greater_than_zero([
            ("game.board_width", u64::from(self.board_width)),
            ("game.board_height", u64::from(self.board_height)),
            ("game.max_sessions", self.max_sessions as u64),
        ])
    }
}
