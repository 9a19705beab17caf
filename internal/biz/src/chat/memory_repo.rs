//! [`MemoryRoomRepo`]: a [`RoomRepo`] in memory, for the hub's unit tests. It keeps the
//! contract of the real store (per-room sequences that never repeat, history trimmed to
//! `keep`, all or nothing per append) and can be told to refuse appends.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use futures_util::future::BoxFuture;

use super::{ChatEvent, NewChatEvent, RoomRepo};
use crate::{Error, Result};

#[derive(Debug, Default)]
pub(crate) struct MemoryRoomRepo {
    rooms: Mutex<HashMap<String, StoredRoom>>,
    /// While set, every append fails and stores nothing.
    refuse: AtomicBool,
    /// Appends (transactions) so far, refused ones included.
    appends: AtomicUsize,
}

#[derive(Debug, Default)]
struct StoredRoom {
    last_id: i64,
    kept: VecDeque<ChatEvent>,
}

impl MemoryRoomRepo {
    fn rooms(&self) -> MutexGuard<'_, HashMap<String, StoredRoom>> {
        self.rooms.lock().expect("not poisoned")
    }

    /// Makes every later append fail (`true`) or succeed again.
    pub(crate) fn refuse_appends(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// How many appends (transactions) were attempted.
    pub(crate) fn appends(&self) -> usize {
        self.appends.load(Ordering::SeqCst)
    }

    /// The ids `room_id` keeps now.
    pub(crate) fn kept_ids(&self, room_id: &str) -> Vec<i64> {
        self.rooms()
            .get(room_id)
            .map(|room| room.kept.iter().map(|event| event.id).collect())
            .unwrap_or_default()
    }
}

impl RoomRepo for MemoryRoomRepo {
    fn append(
        &self,
        events: Vec<NewChatEvent>,
        keep: usize,
    ) -> BoxFuture<'_, Result<Vec<ChatEvent>>> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        let result = if self.refuse.load(Ordering::SeqCst) {
            Err(Error::Storage("the test refuses appends".to_owned()))
        } else {
            let mut rooms = self.rooms();
            Ok(events
                .into_iter()
                .map(|event| {
                    let room = rooms.entry(event.room_id.clone()).or_default();
                    room.last_id += 1;
                    let event = event.with_id(room.last_id);
                    room.kept.push_back(event.clone());
                    while room.kept.len() > keep {
                        room.kept.pop_front();
                    }
                    event
                })
                .collect())
        };
        Box::pin(async move { result })
    }

    fn read<'a>(
        &'a self,
        room_id: &'a str,
        after_id: i64,
        up_to: i64,
    ) -> BoxFuture<'a, Result<Vec<ChatEvent>>> {
        let events = self
            .rooms()
            .get(room_id)
            .map(|room| {
                room.kept
                    .iter()
                    .filter(|event| event.id > after_id && event.id <= up_to)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Box::pin(async move { Ok(events) })
    }
}
