//! [`InProcessRooms`]: the [`RoomBus`] of a single process.
//!
//! Locking: one `std` mutex over the map of rooms, and one per room. The map lock is taken
//! first and held only to find, open or close a room, so rooms never contend with each other
//! on publish. A join holds the room's lock while it snapshots the history, registers the
//! member and announces it, which is what makes the replay and the live feed meet with no gap
//! and no duplicate. No lock is ever held across an `.await`: members are fed with `try_send`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use super::{
    ChatEvent, ChatKind, ChatLimits, LiveFeed, MemberId, MemberQueue, Offer, RoomBus, RoomStats,
    Subscription,
};
use crate::{Error, Result};

/// Rooms held in this process's memory.
#[derive(Debug)]
pub struct InProcessRooms {
    limits: ChatLimits,
    rooms: Mutex<HashMap<String, Arc<Mutex<Room>>>>,
    next_member: AtomicU64,
    /// Members cut off as slow consumers, shared with every room.
    cut_offs: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Room {
    id: String,
    cut_offs: Arc<AtomicU64>,
    next_id: i64,
    history: VecDeque<Arc<ChatEvent>>,
    history_limit: usize,
    members: HashMap<MemberId, Member>,
}

#[derive(Debug)]
struct Member {
    user_id: String,
    queue: MemberQueue,
}

/// A poisoned lock only means another stream panicked mid-update; the room's data is still
/// consistent enough to serve (every update is a push or a remove), so carry on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InProcessRooms {
    pub fn new(limits: ChatLimits) -> Self {
        Self {
            limits,
            rooms: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(1),
            cut_offs: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Rooms currently open.
    pub fn room_count(&self) -> usize {
        lock(&self.rooms).len()
    }
}

impl RoomBus for InProcessRooms {
    fn subscribe(&self, room_id: &str, user_id: &str, last_seen_id: i64) -> Result<Subscription> {
        let mut rooms = lock(&self.rooms);
        let room = match rooms.get(room_id) {
            Some(room) => Arc::clone(room),
            None => {
                if rooms.len() >= self.limits.max_rooms {
                    return Err(Error::TooManyRooms {
                        max: self.limits.max_rooms,
                    });
                }
                let room = Arc::new(Mutex::new(Room::new(
                    room_id,
                    self.limits.history,
                    Arc::clone(&self.cut_offs),
                )));
                rooms.insert(room_id.to_owned(), Arc::clone(&room));
                room
            }
        };
        // Still under the map lock, so no leave can close this room before we are in it.
        let mut room = lock(&room);
        let replay = room.replay_after(last_seen_id);
        let (queue, live) = LiveFeed::channel(self.limits.member_queue);
        let member = self.next_member.fetch_add(1, Ordering::Relaxed);
        room.members.insert(
            member,
            Member {
                user_id: user_id.to_owned(),
                queue,
            },
        );
        room.post(user_id.to_owned(), ChatKind::Join, String::new());
        Ok(Subscription {
            member,
            replay,
            live,
        })
    }

    fn publish(&self, room_id: &str, member: MemberId, text: String) -> Result<()> {
        // A live member's room is always open, and only the room can remove a member whose
        // stream is still reading: not finding it means it was cut off.
        let room = lock(&self.rooms)
            .get(room_id)
            .cloned()
            .ok_or(Error::SlowConsumer)?;
        let mut room = lock(&room);
        let user_id = room
            .members
            .get(&member)
            .ok_or(Error::SlowConsumer)?
            .user_id
            .clone();
        room.post(user_id, ChatKind::Message, text);
        Ok(())
    }

    fn unsubscribe(&self, room_id: &str, member: MemberId) {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get(room_id).cloned() else {
            return;
        };
        let mut room = lock(&room);
        if let Some(left) = room.members.remove(&member) {
            room.post(left.user_id, ChatKind::Leave, String::new());
        }
        // Members cut off by a publish leave an empty room behind them; whoever unsubscribes
        // last closes it.
        if room.members.is_empty() {
            drop(room);
            rooms.remove(room_id);
        }
    }

    fn stats(&self) -> RoomStats {
        // Copy the handles out so no room lock is taken under the map lock.
        let rooms: Vec<_> = lock(&self.rooms).values().cloned().collect();
        RoomStats {
            rooms: rooms.len(),
            members: rooms.iter().map(|room| lock(room).members.len()).sum(),
            slow_consumers_cut_off: self.cut_offs.load(Ordering::Relaxed),
        }
    }
}

impl Room {
    fn new(id: &str, history_limit: usize, cut_offs: Arc<AtomicU64>) -> Self {
        Self {
            id: id.to_owned(),
            cut_offs,
            next_id: 1,
            history: VecDeque::new(),
            history_limit,
            members: HashMap::new(),
        }
    }

    /// What a member that has seen up to `last_seen_id` missed, oldest first, led by a reset
    /// when the history no longer reaches back that far.
    fn replay_after(&self, last_seen_id: i64) -> Vec<Arc<ChatEvent>> {
        if last_seen_id <= 0 {
            return Vec::new();
        }
        let latest = self.next_id - 1;
        let first_kept = self.history.front().map_or(self.next_id, |event| event.id);
        // Ids restart when an emptied room reopens: an id beyond the latest is from an earlier
        // life of the room, and everything kept now is new to that client.
        let reopened = last_seen_id > latest;
        let resume_after = if reopened { 0 } else { last_seen_id };
        let lost = first_kept - resume_after - 1;
        let mut replay = Vec::with_capacity(self.history.len() + 1);
        if reopened || lost > 0 {
            let text = if reopened {
                format!(
                    "last_seen_id {last_seen_id} is beyond this room's latest id {latest}: the \
                     room was reopened since and its ids restarted; {lost} of its messages are \
                     no longer kept, replay starts at id {first_kept}"
                )
            } else {
                format!(
                    "{lost} messages after id {last_seen_id} are no longer kept; replay starts \
                     at id {first_kept}"
                )
            };
            replay.push(Arc::new(ChatEvent {
                id: first_kept - 1,
                room_id: self.id.clone(),
                user_id: String::new(),
                text,
                kind: ChatKind::Reset,
                at: SystemTime::now(),
            }));
        }
        replay.extend(
            self.history
                .iter()
                .filter(|event| event.id > resume_after)
                .cloned(),
        );
        replay
    }

    /// Appends an event to the sequence and offers it to every member. A member that cannot
    /// take it is removed, and its leave is posted in turn.
    fn post(&mut self, user_id: String, kind: ChatKind, text: String) {
        let mut pending = VecDeque::from([(user_id, kind, text)]);
        while let Some((user_id, kind, text)) = pending.pop_front() {
            let event = Arc::new(ChatEvent {
                id: self.next_id,
                room_id: self.id.clone(),
                user_id,
                text,
                kind,
                at: SystemTime::now(),
            });
            self.next_id += 1;
            if self.history_limit > 0 {
                if self.history.len() == self.history_limit {
                    self.history.pop_front();
                }
                self.history.push_back(Arc::clone(&event));
            }
            self.members
                .retain(|_, member| match member.queue.offer(Arc::clone(&event)) {
                    Offer::Queued => true,
                    Offer::Full => {
                        member.queue.cut_off();
                        self.cut_offs.fetch_add(1, Ordering::Relaxed);
                        pending.push_back((member.user_id.clone(), ChatKind::Leave, String::new()));
                        false
                    }
                    Offer::Gone => {
                        pending.push_back((member.user_id.clone(), ChatKind::Leave, String::new()));
                        false
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::RoomHub;

    fn limits() -> ChatLimits {
        ChatLimits {
            history: 5,
            member_queue: 16,
            max_message_bytes: 10,
            max_rooms: 2,
            max_messages_per_second: 1000,
        }
    }

    fn hub_with(limits: ChatLimits) -> (Arc<InProcessRooms>, RoomHub) {
        let rooms = Arc::new(InProcessRooms::new(limits));
        let hub = RoomHub::new(rooms.clone(), limits.max_message_bytes);
        (rooms, hub)
    }

    /// Reads every event already queued (or replayed) for `member`.
    fn drain(member: &mut crate::chat::Membership) -> Vec<(i64, ChatKind, String, String)> {
        let mut seen = Vec::new();
        while let Some(event) = member.replay.pop_front() {
            seen.push((
                event.id,
                event.kind,
                event.user_id.clone(),
                event.text.clone(),
            ));
        }
        while let Ok(event) = member.live.events.try_recv() {
            seen.push((
                event.id,
                event.kind,
                event.user_id.clone(),
                event.text.clone(),
            ));
        }
        seen
    }

    fn msg(id: i64, kind: ChatKind, user: &str, text: &str) -> (i64, ChatKind, String, String) {
        (id, kind, user.to_owned(), text.to_owned())
    }

    #[test]
    fn every_member_gets_every_event_with_the_room_sequence() {
        let (_, hub) = hub_with(limits());
        let mut ann = hub.join("r", "ann", 0).expect("join");
        let mut bob = hub.join("r", "bob", 0).expect("join");
        ann.send("hi".to_owned()).expect("send");
        assert_eq!(
            drain(&mut ann),
            [
                msg(1, ChatKind::Join, "ann", ""),
                msg(2, ChatKind::Join, "bob", ""),
                msg(3, ChatKind::Message, "ann", "hi"),
            ]
        );
        assert_eq!(
            drain(&mut bob),
            [
                msg(2, ChatKind::Join, "bob", ""),
                msg(3, ChatKind::Message, "ann", "hi")
            ]
        );
        bob.leave();
        assert_eq!(drain(&mut ann), [msg(4, ChatKind::Leave, "bob", "")]);
    }

    #[test]
    fn a_resume_replays_exactly_what_was_missed() {
        let (_, hub) = hub_with(limits());
        let ann = hub.join("r", "ann", 0).expect("join"); // 1
        ann.send("a".to_owned()).expect("send"); // 2
        ann.send("b".to_owned()).expect("send"); // 3
        let mut bob = hub.join("r", "bob", 2).expect("join"); // 4
        assert_eq!(
            drain(&mut bob),
            [
                msg(3, ChatKind::Message, "ann", "b"),
                msg(4, ChatKind::Join, "bob", "")
            ]
        );
    }

    #[test]
    fn a_resume_beyond_the_history_starts_with_a_reset() {
        let (_, hub) = hub_with(limits());
        let ann = hub.join("r", "ann", 0).expect("join"); // 1
        for text in ["a", "b", "c", "d", "e", "f"] {
            ann.send(text.to_owned()).expect("send"); // 2..=7; history keeps 3..=7
        }
        let mut bob = hub.join("r", "bob", 1).expect("join");
        let seen = drain(&mut bob);
        assert_eq!(seen[0].0, 2, "the reset carries the last lost id");
        assert_eq!(seen[0].1, ChatKind::Reset);
        assert!(
            seen[0].3.starts_with("1 messages after id 1"),
            "{}",
            seen[0].3
        );
        let ids: Vec<i64> = seen[1..].iter().map(|event| event.0).collect();
        assert_eq!(ids, [3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_resume_into_a_reopened_room_is_told_so() {
        let (_, hub) = hub_with(limits());
        let mut bob = hub.join("r", "bob", 40).expect("join");
        let seen = drain(&mut bob);
        assert_eq!(seen[0].1, ChatKind::Reset);
        assert!(seen[0].3.contains("reopened"), "{}", seen[0].3);
        assert_eq!(seen[1], msg(1, ChatKind::Join, "bob", ""));
    }

    #[tokio::test]
    async fn a_full_queue_cuts_the_member_off_and_the_others_see_it_leave() {
        let (_, hub) = hub_with(ChatLimits {
            member_queue: 4,
            ..limits()
        });
        let mut slow = hub.join("r", "slow", 0).expect("join"); // queue: 1
        let mut fast = hub.join("r", "fast", 0).expect("join"); // queue: 1, 2
        for text in ["a", "b", "c"] {
            fast.send(text.to_owned()).expect("send"); // slow's queue is full after "b"
            drain(&mut fast);
        }
        let mut events = Vec::new();
        while let Some(event) = slow.next().await {
            events.push(event.map(|event| event.id));
        }
        let last = events.pop().expect("a final error");
        assert!(matches!(last, Err(Error::SlowConsumer)), "{last:?}");
        let ids: Vec<i64> = events.into_iter().map(|id| id.expect("event")).collect();
        assert_eq!(ids, [1, 2, 3, 4], "what was queued comes before the error");
        assert!(matches!(
            slow.send("x".to_owned()),
            Err(Error::SlowConsumer)
        ));
    }

    #[test]
    fn the_cut_off_member_leave_is_announced() {
        let (_, hub) = hub_with(ChatLimits {
            member_queue: 3,
            ..limits()
        });
        let _slow = hub.join("r", "slow", 0).expect("join"); // slow: 1
        let mut fast = hub.join("r", "fast", 0).expect("join"); // slow: 1, 2
        fast.send("a".to_owned()).expect("send"); // slow: 1, 2, 3 (full)
        drain(&mut fast);
        assert_eq!(
            hub.stats(),
            RoomStats {
                rooms: 1,
                members: 2,
                slow_consumers_cut_off: 0
            }
        );
        fast.send("b".to_owned()).expect("send"); // slow is cut off
        assert_eq!(
            drain(&mut fast),
            [
                msg(4, ChatKind::Message, "fast", "b"),
                msg(5, ChatKind::Leave, "slow", ""),
            ]
        );
        assert_eq!(
            hub.stats(),
            RoomStats {
                rooms: 1,
                members: 1,
                slow_consumers_cut_off: 1
            }
        );
    }

    #[test]
    fn rooms_open_on_first_join_close_when_empty_and_are_bounded() {
        let (rooms, hub) = hub_with(limits());
        let a = hub.join("a", "ann", 0).expect("join");
        let a2 = hub.join("a", "bob", 0).expect("join");
        let b = hub.join("b", "ann", 0).expect("join");
        assert_eq!(rooms.room_count(), 2);
        let err = hub.join("c", "ann", 0).expect_err("a third room");
        assert!(matches!(err, Error::TooManyRooms { max: 2 }), "{err:?}");
        drop(a);
        assert_eq!(rooms.room_count(), 2, "a room with members stays open");
        drop(a2);
        drop(b);
        assert_eq!(rooms.room_count(), 0);
        let mut again = hub.join("a", "ann", 0).expect("join");
        assert_eq!(
            drain(&mut again),
            [msg(1, ChatKind::Join, "ann", "")],
            "a reopened room starts a new sequence"
        );
    }

    #[test]
    fn a_text_over_the_limit_is_refused() {
        let (_, hub) = hub_with(limits());
        let ann = hub.join("r", "ann", 0).expect("join");
        let err = ann.send("x".repeat(11)).expect_err("too long");
        assert!(
            matches!(err, Error::MessageTooLong { bytes: 11, max: 10 }),
            "{err:?}"
        );
        ann.send("x".repeat(10)).expect("exactly the limit");
    }
}
