//! The storage chat rooms need, implemented by `streamhub-data`.
//!
//! The store, not the process, owns each room's sequence: ids are handed out inside the
//! transaction that appends the events, so they never repeat when a room empties and reopens
//! or the server restarts, and a store shared by several replicas can hand them out the same
//! way (one counter row per room, locked by the appending transaction).

use std::{fmt, time::SystemTime};

use futures_util::future::BoxFuture;

use super::{ChatEvent, ChatKind};
use crate::Result;

/// An event of a room's sequence before the store has given it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatEvent {
    pub room_id: String,
    /// Author of a message, or who joined or left.
    pub user_id: String,
    /// The message text; empty for join and leave.
    pub text: String,
    /// [`ChatKind::Message`], [`ChatKind::Join`] or [`ChatKind::Leave`]; a reset is never
    /// stored (it describes a gap in one member's replay, not an event of the room).
    pub kind: ChatKind,
    pub at: SystemTime,
}

impl NewChatEvent {
    /// The stored event, with the id the store gave it.
    pub fn with_id(self, id: i64) -> ChatEvent {
        ChatEvent {
            id,
            room_id: self.room_id,
            user_id: self.user_id,
            text: self.text,
            kind: self.kind,
            at: self.at,
        }
    }
}

/// Persistent room sequences and their kept history.
pub trait RoomRepo: Send + Sync + fmt::Debug + 'static {
    /// Durably stores `events` in one transaction and returns them with their ids, in the
    /// same order. Each event takes the next id of its room's sequence (from 1, increasing
    /// by one, never reused); a room keeps only its last `keep` events. Nothing is stored if
    /// it fails.
    fn append(
        &self,
        events: Vec<NewChatEvent>,
        keep: usize,
    ) -> BoxFuture<'_, Result<Vec<ChatEvent>>>;

    /// The kept events of `room_id` with `after_id < id <= up_to`, oldest first. Callers
    /// bound `up_to - after_id`, so the answer is bounded too.
    fn read<'a>(
        &'a self,
        room_id: &'a str,
        after_id: i64,
        up_to: i64,
    ) -> BoxFuture<'a, Result<Vec<ChatEvent>>>;
}
