//! `chat`: the limits of chat rooms. Every one bounds memory: history per room, queue per
//! member, message size and the number of rooms.

use serde::Deserialize;

use crate::load::{ConfError, all_greater_than_zero, bad};

/// `chat`: rooms, their history and their members' queues.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConf {
    /// Messages (joins and leaves included) kept per room in the database for members that
    /// resume with `last_seen_id` (0 keeps none).
    pub history: usize,
    /// Messages queued per member; a member whose queue is full is cut off with
    /// `RESOURCE_EXHAUSTED` so the room never waits for it.
    pub member_queue: usize,
    /// Largest message text, in bytes; longer ones get `INVALID_ARGUMENT`.
    pub max_message_bytes: usize,
    /// Rooms open at once; a join that would open one more gets `RESOURCE_EXHAUSTED`.
    pub max_rooms: usize,
    /// Messages one member may send per second (a burst of as many is allowed); a member
    /// going faster is cut off with `RESOURCE_EXHAUSTED`.
    pub max_messages_per_second: u32,
}

impl Default for ChatConf {
    fn default() -> Self {
        Self {
            history: 1000,
            member_queue: 1024,
            max_message_bytes: 4096,
            max_rooms: 10_000,
            max_messages_per_second: 1000,
        }
    }
}

impl ChatConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        all_greater_than_zero([
            ("chat.member_queue", self.member_queue),
            ("chat.max_message_bytes", self.max_message_bytes),
            ("chat.max_rooms", self.max_rooms),
        ])?;
        if self.max_messages_per_second == 0 {
            return Err(bad(
                "chat.max_messages_per_second",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}
