//! [`InProcessRooms`]: the [`RoomBus`] of a single process, over a [`RoomRepo`].
//!
//! Members live in this process; each room's sequence and kept history live in the store.
//! Every event (message, join, leave) goes through one queue to one appender task, which
//! commits whatever has queued up since its last commit in a single transaction (group
//! commit: a busy server pays for one transaction per batch, not per message) and only then
//! offers the stored events to the rooms' members, in id order. So a member, the author
//! included, never sees an event the store could still lose, and members see every room's
//! events in the order of their ids.
//!
//! A join is an event like the others: the appender adds the new member to its room at the
//! join's place in the sequence, so its live feed starts exactly at its join. Its replay is then
//! read from the store below that id (subscribe first, read stored second), and the membership
//! drops any live event the replay already carried.
//!
//! Queues: the appender's queue is bounded and its senders wait (they are the members' own
//! streams, and the appender never waits on a member). Members' queues are filled with
//! `try_send` only: a full one cuts its member off. Locking: one `std` mutex over the rooms,
//! taken by the appender to fan a batch out and by joins to open a room; never held across an
//! `.await`.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    ChatEvent, ChatKind, ChatLimits, LiveFeed, MemberId, MemberQueue, NewChatEvent, Offer, RoomBus,
    RoomRepo, RoomStats, Subscription,
};
use crate::{Error, Lifecycle, Result, mutex::lock};

/// Requests waiting for the appender; senders wait when it is full.
const APPEND_QUEUE: usize = 1024;
/// Most requests committed in one transaction, so one commit (and the fan-out after it)
/// stays short even when the queue is full.
const MAX_BATCH: usize = 512;

/// Rooms whose members live in this process's memory.
#[derive(Debug)]
pub struct InProcessRooms {
    limits: ChatLimits,
    shared: Arc<Shared>,
    repo: Arc<dyn RoomRepo>,
    appends: mpsc::Sender<Request>,
    next_member: AtomicU64,
    lifecycle: Lifecycle,
}

/// What the handles and the appender share.
#[derive(Debug, Default)]
struct Shared {
    rooms: Mutex<HashMap<String, Room>>,
    /// Members cut off as slow consumers since start.
    cut_offs: AtomicU64,
}

#[derive(Debug, Default)]
struct Room {
    members: HashMap<MemberId, Member>,
    /// Joins queued for the appender: they already count as the room being open.
    joining: usize,
}

#[derive(Debug)]
struct Member {
    user_id: String,
    queue: MemberQueue,
    /// Its leave is in the batch being committed: nothing else may announce it.
    leaving: bool,
}

/// What the appender is asked to do.
#[derive(Debug)]
enum Request {
    Join {
        room_id: String,
        user_id: String,
        member: MemberId,
        queue: MemberQueue,
        /// The id of the join once it is stored.
        reply: oneshot::Sender<Result<i64>>,
    },
    Message {
        room_id: String,
        member: MemberId,
        text: String,
    },
    Leave {
        room_id: String,
        member: MemberId,
    },
    /// The leave of a member the room has already dropped (cut off, stream gone, refused by
    /// the store): only the event is still to be stored and announced.
    Announce {
        room_id: String,
        user_id: String,
    },
}

/// Who is waiting for a stored event, in the order of the batch.
#[derive(Debug)]
enum Origin {
    Join {
        member: MemberId,
        queue: MemberQueue,
        reply: oneshot::Sender<Result<i64>>,
    },
    Message {
        member: MemberId,
    },
    Leave {
        member: MemberId,
    },
    Announce,
}

/// Events the store keeps per room for a history of `history`. A resuming member's join is
/// stored before its replay is read (that is what puts its live feed and its replay end to
/// end), so one more slot than the history keeps that join from pushing the oldest of the
/// `history` events before it out of the store before the member has read them.
fn stored_per_room(history: usize) -> usize {
    if history == 0 {
        0
    } else {
        history.saturating_add(1)
    }
}

impl Shared {
    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Room>> {
        lock(&self.rooms)
    }
}

/// Closes `room_id` if nobody is in it or on the way in.
fn close_if_empty(rooms: &mut HashMap<String, Room>, room_id: &str) {
    if rooms
        .get(room_id)
        .is_some_and(|room| room.members.is_empty() && room.joining == 0)
    {
        rooms.remove(room_id);
    }
}

/// Gives back a room place taken for a join that never reached the appender.
struct JoinReservation<'a> {
    shared: &'a Shared,
    room_id: &'a str,
    armed: bool,
}

impl Drop for JoinReservation<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut rooms = self.shared.rooms();
            if let Some(room) = rooms.get_mut(self.room_id) {
                room.joining = room.joining.saturating_sub(1);
            }
            close_if_empty(&mut rooms, self.room_id);
        }
    }
}

impl InProcessRooms {
    /// Rooms over `repo`; the appender task runs on `lifecycle` until shutdown has started and
    /// every member has left (so the leaves of a shutdown are stored too).
    pub fn new(repo: Arc<dyn RoomRepo>, limits: ChatLimits, lifecycle: &Lifecycle) -> Self {
        let shared = Arc::new(Shared::default());
        let (appends, queue) = mpsc::channel(APPEND_QUEUE);
        let appender = Appender {
            shared: Arc::clone(&shared),
            repo: Arc::clone(&repo),
            keep: stored_per_room(limits.history),
            queue,
            pending: Vec::new(),
            stopping: lifecycle.stopping().clone(),
        };
        lifecycle.spawn(appender.run());
        Self {
            limits,
            shared,
            repo,
            appends,
            next_member: AtomicU64::new(1),
            lifecycle: lifecycle.clone(),
        }
    }

    /// Rooms currently open.
    pub fn room_count(&self) -> usize {
        self.shared.rooms().len()
    }

    /// Counts a join toward `room_id`, opening the room if it has to and may.
    fn reserve<'a>(&'a self, room_id: &'a str) -> Result<JoinReservation<'a>> {
        let mut rooms = self.shared.rooms();
        if !rooms.contains_key(room_id) && rooms.len() >= self.limits.max_rooms {
            return Err(Error::TooManyRooms {
                max: self.limits.max_rooms,
            });
        }
        rooms.entry(room_id.to_owned()).or_default().joining += 1;
        Ok(JoinReservation {
            shared: &self.shared,
            room_id,
            armed: true,
        })
    }

    /// What a member that has seen up to `last_seen_id` missed before its join (whose id is
    /// `latest + 1`), oldest first, led by a reset when the store no longer keeps all of it.
    async fn replay(
        &self,
        room_id: &str,
        last_seen_id: i64,
        latest: i64,
    ) -> Result<Vec<Arc<ChatEvent>>> {
        if last_seen_id <= 0 {
            return Ok(Vec::new());
        }
        // Nothing at or below this id is kept; reading from there bounds the answer.
        let history = i64::try_from(self.limits.history).unwrap_or(i64::MAX);
        let below_kept = latest.saturating_sub(history).max(0);
        // An id beyond the latest was never handed out by this store (its data was replaced):
        // everything kept is new to that client.
        let unknown = last_seen_id > latest;
        let resume_after = if unknown { 0 } else { last_seen_id };
        let kept = if resume_after.max(below_kept) < latest {
            self.repo
                .read(room_id, resume_after.max(below_kept), latest)
                .await?
        } else {
            Vec::new()
        };
        let first_kept = kept.first().map_or(latest + 1, |event| event.id);
        let lost = first_kept - resume_after - 1;
        let mut replay = Vec::with_capacity(kept.len() + 1);
        if unknown || lost > 0 {
            let text = if unknown {
                format!(
                    "last_seen_id {last_seen_id} is beyond this room's latest id {latest}: the \
                     server has no record of it; {lost} of the room's messages are no longer \
                     kept, replay starts at id {first_kept}"
                )
            } else {
                format!(
                    "{lost} messages after id {last_seen_id} are no longer kept; replay starts \
                     at id {first_kept}"
                )
            };
            replay.push(Arc::new(ChatEvent {
                id: first_kept - 1,
                room_id: room_id.to_owned(),
                user_id: String::new(),
                text,
                kind: ChatKind::Reset,
                at: SystemTime::now(),
            }));
        }
        replay.extend(kept.into_iter().map(Arc::new));
        Ok(replay)
    }
}

impl RoomBus for InProcessRooms {
    fn subscribe<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
        last_seen_id: i64,
    ) -> BoxFuture<'a, Result<Subscription>> {
        Box::pin(async move {
            if self.lifecycle.is_stopping() {
                return Err(Error::ShuttingDown);
            }
            let mut reservation = self.reserve(room_id)?;
            let (queue, live) = LiveFeed::channel(self.limits.member_queue);
            let member = self.next_member.fetch_add(1, Ordering::Relaxed);
            let (reply, joined) = oneshot::channel();
            let join = Request::Join {
                room_id: room_id.to_owned(),
                user_id: user_id.to_owned(),
                member,
                queue,
                reply,
            };
            self.appends
                .send(join)
                .await
                .map_err(|_| Error::ShuttingDown)?;
            // The appender owns the reservation now: it ends it when the join is stored or fails.
            reservation.armed = false;
            let join_id = joined.await.map_err(|_| Error::ShuttingDown)??;
            match self.replay(room_id, last_seen_id, join_id - 1).await {
                Ok(replay) => Ok(Subscription {
                    member,
                    replay,
                    live,
                }),
                Err(err) => {
                    // Joined but cannot be told what it missed: leave again.
                    self.unsubscribe(room_id, member);
                    Err(err)
                }
            }
        })
    }

    fn publish<'a>(
        &'a self,
        room_id: &'a str,
        member: MemberId,
        text: String,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let message = Request::Message {
                room_id: room_id.to_owned(),
                member,
                text,
            };
            self.appends
                .send(message)
                .await
                .map_err(|_| Error::ShuttingDown)
        })
    }

    fn unsubscribe(&self, room_id: &str, member: MemberId) {
        let leave = Request::Leave {
            room_id: room_id.to_owned(),
            member,
        };
        if let Err(mpsc::error::TrySendError::Full(leave)) = self.appends.try_send(leave) {
            // The appender is busy: hand the leave to a task so it is still stored and
            // announced. A closed queue means the appender is gone, and the room with it.
            let appends = self.appends.clone();
            self.lifecycle.spawn(async move {
                let _ = appends.send(leave).await;
            });
        }
    }

    fn stats(&self) -> RoomStats {
        let rooms = self.shared.rooms();
        RoomStats {
            rooms: rooms.len(),
            members: rooms.values().map(|room| room.members.len()).sum(),
            slow_consumers_cut_off: self.shared.cut_offs.load(Ordering::Relaxed),
        }
    }
}

/// The task that stores every event and then fans it out.
struct Appender {
    shared: Arc<Shared>,
    repo: Arc<dyn RoomRepo>,
    /// Events each room keeps (`chat.history`).
    keep: usize,
    queue: mpsc::Receiver<Request>,
    /// Requests the last fan-out produced (leaves of dropped members); they go first.
    pending: Vec<Request>,
    stopping: CancellationToken,
}

impl Appender {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            batch.append(&mut self.pending);
            if batch.is_empty() {
                // At shutdown, stay until the members' streams have ended and their leaves
                // are stored: a member resuming after a restart then sees who left.
                if self.stopping.is_cancelled() && self.shared.rooms().is_empty() {
                    break;
                }
                tokio::select! {
                    request = self.queue.recv() => match request {
                        Some(request) => batch.push(request),
                        None => break,
                    },
                    () = self.stopping.cancelled(), if !self.stopping.is_cancelled() => continue,
                }
            }
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch).await;
        }
        self.queue.close();
        while let Ok(request) = self.queue.try_recv() {
            if let Request::Join { reply, .. } = request {
                let _ = reply.send(Err(Error::ShuttingDown));
            }
        }
    }

    /// Stores the events `batch` asks for in one transaction, then hands them out.
    async fn commit(&mut self, batch: &mut Vec<Request>) {
        let now = SystemTime::now();
        let mut events = Vec::with_capacity(batch.len());
        let mut origins = Vec::with_capacity(batch.len());
        {
            let mut rooms = self.shared.rooms();
            for request in batch.drain(..) {
                let (room_id, user_id, text, kind, origin) = match request {
                    Request::Join {
                        room_id,
                        user_id,
                        member,
                        queue,
                        reply,
                    } => (
                        room_id,
                        user_id,
                        String::new(),
                        ChatKind::Join,
                        Origin::Join {
                            member,
                            queue,
                            reply,
                        },
                    ),
                    Request::Message {
                        room_id,
                        member,
                        text,
                    } => {
                        // A member the room has dropped (cut off, refused) speaks no more.
                        let Some(author) = rooms
                            .get(&room_id)
                            .and_then(|room| room.members.get(&member))
                        else {
                            continue;
                        };
                        let user_id = author.user_id.clone();
                        (
                            room_id,
                            user_id,
                            text,
                            ChatKind::Message,
                            Origin::Message { member },
                        )
                    }
                    Request::Leave { room_id, member } => {
                        let Some(leaver) = rooms
                            .get_mut(&room_id)
                            .and_then(|room| room.members.get_mut(&member))
                            .filter(|leaver| !leaver.leaving)
                        else {
                            continue;
                        };
                        leaver.leaving = true;
                        let user_id = leaver.user_id.clone();
                        (
                            room_id,
                            user_id,
                            String::new(),
                            ChatKind::Leave,
                            Origin::Leave { member },
                        )
                    }
                    Request::Announce { room_id, user_id } => (
                        room_id,
                        user_id,
                        String::new(),
                        ChatKind::Leave,
                        Origin::Announce,
                    ),
                };
                events.push(NewChatEvent {
                    room_id,
                    user_id,
                    text,
                    kind,
                    at: now,
                });
                origins.push(origin);
            }
        }
        if events.is_empty() {
            return;
        }
        let rooms_of: Vec<String> = events.iter().map(|event| event.room_id.clone()).collect();
        match self.repo.append(events, self.keep).await {
            Ok(stored) if stored.len() == origins.len() => self.fan_out(stored, origins),
            Ok(stored) => {
                let err = Error::Storage(format!(
                    "the store returned {} chat events for {} appended",
                    stored.len(),
                    origins.len()
                ));
                self.refuse(rooms_of, origins, &err);
            }
            Err(err) => self.refuse(rooms_of, origins, &err),
        }
    }

    /// Offers each stored event to its room's members, in order, and answers the joins.
    fn fan_out(&mut self, stored: Vec<ChatEvent>, origins: Vec<Origin>) {
        let mut rooms = self.shared.rooms();
        let mut touched = HashSet::new();
        for (event, origin) in stored.into_iter().zip(origins) {
            let event = Arc::new(event);
            if !touched.contains(&event.room_id) {
                touched.insert(event.room_id.clone());
            }
            let room = match origin {
                Origin::Join {
                    member,
                    queue,
                    reply,
                } => {
                    let room = rooms.entry(event.room_id.clone()).or_default();
                    room.joining = room.joining.saturating_sub(1);
                    room.members.insert(
                        member,
                        Member {
                            user_id: event.user_id.clone(),
                            queue,
                            leaving: false,
                        },
                    );
                    if reply.send(Ok(event.id)).is_err() {
                        // The joining stream went away while its join was stored.
                        self.pending.push(Request::Leave {
                            room_id: event.room_id.clone(),
                            member,
                        });
                    }
                    Some(room)
                }
                Origin::Leave { member } => {
                    let mut room = rooms.get_mut(&event.room_id);
                    if let Some(room) = room.as_deref_mut() {
                        room.members.remove(&member);
                    }
                    room
                }
                Origin::Message { .. } | Origin::Announce => rooms.get_mut(&event.room_id),
            };
            // A room nobody is in any more still has the event stored; nobody to tell.
            let Some(room) = room else { continue };
            let pending = &mut self.pending;
            let cut_offs = &self.shared.cut_offs;
            room.members.retain(
                |_, listener| match listener.queue.offer(Arc::clone(&event)) {
                    Offer::Queued => true,
                    Offer::Full => {
                        listener.queue.cut_off();
                        cut_offs.fetch_add(1, Ordering::Relaxed);
                        if !listener.leaving {
                            pending.push(Request::Announce {
                                room_id: event.room_id.clone(),
                                user_id: listener.user_id.clone(),
                            });
                        }
                        false
                    }
                    Offer::Gone => {
                        if !listener.leaving {
                            pending.push(Request::Announce {
                                room_id: event.room_id.clone(),
                                user_id: listener.user_id.clone(),
                            });
                        }
                        false
                    }
                },
            );
        }
        for room_id in touched {
            close_if_empty(&mut rooms, &room_id);
        }
    }

    /// The store refused the batch: joins fail, authors are dropped with the store's error,
    /// leavers go without their leave being stored. Members that only read are untouched.
    fn refuse(&mut self, rooms_of: Vec<String>, origins: Vec<Origin>, err: &Error) {
        tracing::error!(%err, events = origins.len(), "storing chat events failed");
        let mut rooms = self.shared.rooms();
        for (room_id, origin) in rooms_of.into_iter().zip(origins) {
            match origin {
                Origin::Join { reply, .. } => {
                    if let Some(room) = rooms.get_mut(&room_id) {
                        room.joining = room.joining.saturating_sub(1);
                    }
                    let _ = reply.send(Err(Error::Storage(err.to_string())));
                }
                Origin::Message { member } => {
                    let author = rooms
                        .get_mut(&room_id)
                        .and_then(|room| room.members.remove(&member));
                    if let Some(author) = author {
                        author.queue.store_failed();
                        self.pending.push(Request::Announce {
                            room_id: room_id.clone(),
                            user_id: author.user_id,
                        });
                    }
                }
                Origin::Leave { member } => {
                    if let Some(room) = rooms.get_mut(&room_id) {
                        room.members.remove(&member);
                    }
                }
                // Announcing a leave that cannot be stored is given up: the member is gone.
                Origin::Announce => {}
            }
            close_if_empty(&mut rooms, &room_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::chat::{Membership, RoomHub, memory_repo::MemoryRoomRepo};

    fn limits() -> ChatLimits {
        ChatLimits {
            history: 5,
            member_queue: 16,
            max_message_bytes: 10,
            max_rooms: 2,
            max_messages_per_second: 1000,
        }
    }

    struct Fixture {
        repo: Arc<MemoryRoomRepo>,
        rooms: Arc<InProcessRooms>,
        hub: RoomHub,
        lifecycle: Lifecycle,
    }

    fn fixture_with(limits: ChatLimits) -> Fixture {
        let repo = Arc::new(MemoryRoomRepo::default());
        let lifecycle = Lifecycle::new();
        let rooms = Arc::new(InProcessRooms::new(repo.clone(), limits, &lifecycle));
        let hub = RoomHub::new(rooms.clone(), limits.max_message_bytes);
        Fixture {
            repo,
            rooms,
            hub,
            lifecycle,
        }
    }

    fn fixture() -> Fixture {
        fixture_with(limits())
    }

    type Seen = (i64, ChatKind, String, String);

    fn msg(id: i64, kind: ChatKind, user: &str, text: &str) -> Seen {
        (id, kind, user.to_owned(), text.to_owned())
    }

    /// The next `count` events of `member`, each awaited with a timeout.
    async fn take(member: &mut Membership, count: usize) -> Vec<Seen> {
        let mut seen = Vec::with_capacity(count);
        while seen.len() < count {
            let event = tokio::time::timeout(Duration::from_secs(5), member.next())
                .await
                .unwrap_or_else(|_| panic!("no event after {seen:?}"))
                .unwrap_or_else(|| panic!("the feed ended after {seen:?}"))
                .unwrap_or_else(|err| panic!("{err} after {seen:?}"));
            seen.push((
                event.id,
                event.kind,
                event.user_id.clone(),
                event.text.clone(),
            ));
        }
        seen
    }

    /// Asserts that nothing more is queued for `member` right now.
    fn nothing_queued(member: &mut Membership) {
        assert!(member.replay.is_empty(), "{:?}", member.replay);
        let queued = member.live.events.try_recv();
        assert!(queued.is_err(), "unexpected {queued:?}");
    }

    #[tokio::test]
    async fn every_member_gets_every_event_with_the_room_sequence() {
        let Fixture { hub, .. } = fixture();
        let mut ann = hub.join("r", "ann", 0).await.expect("join");
        let mut bob = hub.join("r", "bob", 0).await.expect("join");
        ann.send("hi".to_owned()).await.expect("send");
        assert_eq!(
            take(&mut ann, 3).await,
            [
                msg(1, ChatKind::Join, "ann", ""),
                msg(2, ChatKind::Join, "bob", ""),
                msg(3, ChatKind::Message, "ann", "hi"),
            ]
        );
        assert_eq!(
            take(&mut bob, 2).await,
            [
                msg(2, ChatKind::Join, "bob", ""),
                msg(3, ChatKind::Message, "ann", "hi")
            ]
        );
        bob.leave();
        assert_eq!(
            take(&mut ann, 1).await,
            [msg(4, ChatKind::Leave, "bob", "")]
        );
        nothing_queued(&mut ann);
    }

    #[tokio::test]
    async fn a_resume_replays_exactly_what_was_missed() {
        let Fixture { hub, .. } = fixture();
        let mut ann = hub.join("r", "ann", 0).await.expect("join"); // 1
        ann.send("a".to_owned()).await.expect("send"); // 2
        ann.send("b".to_owned()).await.expect("send"); // 3
        take(&mut ann, 3).await;
        let mut bob = hub.join("r", "bob", 2).await.expect("join"); // 4
        assert_eq!(
            take(&mut bob, 2).await,
            [
                msg(3, ChatKind::Message, "ann", "b"),
                msg(4, ChatKind::Join, "bob", "")
            ]
        );
        nothing_queued(&mut bob);
    }

    #[tokio::test]
    async fn a_resume_beyond_the_history_starts_with_a_reset() {
        let Fixture { hub, .. } = fixture();
        let mut ann = hub.join("r", "ann", 0).await.expect("join"); // 1
        for text in ["a", "b", "c", "d", "e", "f"] {
            ann.send(text.to_owned()).await.expect("send"); // 2..=7; history keeps 3..=7
        }
        take(&mut ann, 7).await;
        let mut bob = hub.join("r", "bob", 1).await.expect("join");
        let seen = take(&mut bob, 7).await;
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

    #[tokio::test]
    async fn an_emptied_room_reopens_with_its_sequence_and_history() {
        let Fixture { hub, repo, .. } = fixture_with(ChatLimits {
            history: 100,
            ..limits()
        });
        let mut ann = hub.join("r", "ann", 0).await.expect("join"); // 1
        ann.send("a".to_owned()).await.expect("send"); // 2
        assert_eq!(take(&mut ann, 2).await.last().map(|e| e.0), Some(2));
        drop(ann); // 3: ann's leave; the room is empty and closes

        let mut bob = hub.join("r", "bob", 0).await.expect("join");
        assert_eq!(
            take(&mut bob, 1).await,
            [msg(4, ChatKind::Join, "bob", "")],
            "ids continue above those the room used before it emptied"
        );
        bob.send("b".to_owned()).await.expect("send"); // 5
        take(&mut bob, 1).await;

        let mut ann = hub.join("r", "ann", 2).await.expect("resume");
        assert_eq!(
            take(&mut ann, 4).await,
            [
                msg(3, ChatKind::Leave, "ann", ""),
                msg(4, ChatKind::Join, "bob", ""),
                msg(5, ChatKind::Message, "bob", "b"),
                msg(6, ChatKind::Join, "ann", ""),
            ]
        );
        nothing_queued(&mut ann);
        assert_eq!(repo.kept_ids("r"), [1, 2, 3, 4, 5, 6]);
    }

    #[tokio::test]
    async fn a_resume_beyond_the_latest_id_is_told_so() {
        let Fixture { hub, .. } = fixture();
        let mut bob = hub.join("r", "bob", 40).await.expect("join");
        let seen = take(&mut bob, 2).await;
        assert_eq!(seen[0].1, ChatKind::Reset);
        assert!(seen[0].3.contains("beyond"), "{}", seen[0].3);
        assert_eq!(seen[1], msg(1, ChatKind::Join, "bob", ""));
    }

    #[tokio::test]
    async fn the_store_keeps_only_the_history_of_each_room() {
        let Fixture { hub, repo, .. } = fixture();
        let mut ann = hub.join("r", "ann", 0).await.expect("join");
        for text in ["a", "b", "c", "d", "e", "f"] {
            ann.send(text.to_owned()).await.expect("send");
        }
        take(&mut ann, 7).await;
        assert_eq!(
            repo.kept_ids("r"),
            [2, 3, 4, 5, 6, 7],
            "the history and a slot for a resuming member's join"
        );
    }

    #[tokio::test]
    async fn messages_queued_together_are_stored_in_one_transaction() {
        let Fixture { hub, repo, .. } = fixture_with(ChatLimits {
            member_queue: 64,
            ..limits()
        });
        let mut ann = hub.join("r", "ann", 0).await.expect("join");
        let before = repo.appends();
        // On this single-threaded runtime the appender runs only when the test waits, by
        // which time all 40 are queued.
        for n in 0..40 {
            ann.send(n.to_string()).await.expect("send");
        }
        let seen = take(&mut ann, 41).await;
        assert_eq!(seen.last().map(|e| e.0), Some(41));
        assert_eq!(repo.appends() - before, 1, "one transaction for the 40");
    }

    #[tokio::test]
    async fn a_refused_append_ends_its_author_and_spares_the_readers() {
        let Fixture { hub, repo, .. } = fixture();
        let mut ann = hub.join("r", "ann", 0).await.expect("join");
        let mut bob = hub.join("r", "bob", 0).await.expect("join");
        take(&mut ann, 2).await;
        take(&mut bob, 1).await;

        repo.refuse_appends(true);
        ann.send("lost".to_owned()).await.expect("queued");
        let end = tokio::time::timeout(Duration::from_secs(5), ann.next())
            .await
            .expect("ann's feed ends");
        assert!(matches!(end, Some(Err(Error::Storage(_)))), "{end:?}");
        assert!(
            matches!(ann.send("again".to_owned()).await, Err(Error::Storage(_))),
            "a dropped author cannot send"
        );

        repo.refuse_appends(false);
        bob.send("fine".to_owned()).await.expect("send");
        let seen = take(&mut bob, 1).await;
        assert_eq!(seen, [msg(3, ChatKind::Message, "bob", "fine")]);
    }

    #[tokio::test]
    async fn a_refused_join_fails_and_frees_its_room() {
        let Fixture {
            hub, repo, rooms, ..
        } = fixture();
        repo.refuse_appends(true);
        let err = hub.join("r", "ann", 0).await.expect_err("refused");
        assert!(matches!(err, Error::Storage(_)), "{err:?}");
        assert_eq!(rooms.room_count(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_cuts_the_member_off_and_the_others_see_it_leave() {
        let Fixture { hub, .. } = fixture_with(ChatLimits {
            member_queue: 4,
            ..limits()
        });
        let mut slow = hub.join("r", "slow", 0).await.expect("join"); // slow: 1
        let mut fast = hub.join("r", "fast", 0).await.expect("join"); // slow: 1, 2
        take(&mut fast, 1).await;
        for text in ["a", "b", "c"] {
            // slow's queue is full after "b"; "c" cuts it off.
            fast.send(text.to_owned()).await.expect("send");
            take(&mut fast, 1).await;
        }
        assert_eq!(
            take(&mut fast, 1).await,
            [msg(6, ChatKind::Leave, "slow", "")]
        );
        let mut events = Vec::new();
        while let Some(event) = slow.next().await {
            events.push(event.map(|event| event.id));
        }
        let last = events.pop().expect("a final error");
        assert!(matches!(last, Err(Error::SlowConsumer)), "{last:?}");
        let ids: Vec<i64> = events.into_iter().map(|id| id.expect("event")).collect();
        assert_eq!(ids, [1, 2, 3, 4], "what was queued comes before the error");
        assert!(matches!(
            slow.send("x".to_owned()).await,
            Err(Error::SlowConsumer)
        ));
        assert_eq!(
            hub.stats(),
            RoomStats {
                rooms: 1,
                members: 1,
                slow_consumers_cut_off: 1
            }
        );
    }

    #[tokio::test]
    async fn rooms_open_on_first_join_close_when_empty_and_are_bounded() {
        let Fixture { hub, rooms, .. } = fixture();
        let a = hub.join("a", "ann", 0).await.expect("join");
        let mut a2 = hub.join("a", "bob", 0).await.expect("join");
        let b = hub.join("b", "ann", 0).await.expect("join");
        assert_eq!(rooms.room_count(), 2);
        let err = hub.join("c", "ann", 0).await.expect_err("a third room");
        assert!(matches!(err, Error::TooManyRooms { max: 2 }), "{err:?}");
        drop(a);
        // The leave is stored before bob's later message: once bob has that, ann is gone.
        a2.send("x".to_owned()).await.expect("send");
        assert_eq!(
            take(&mut a2, 3).await[1..],
            [
                msg(3, ChatKind::Leave, "ann", ""),
                msg(4, ChatKind::Message, "bob", "x")
            ]
        );
        assert_eq!(rooms.room_count(), 2, "a room with members stays open");
        // A feed ends when its member is out of the room, which closes in the same step.
        for mut last in [a2, b] {
            last.leave();
            while let Some(event) = last.next().await {
                event.expect("no error");
            }
        }
        assert_eq!(rooms.room_count(), 0);
        let mut probe = hub.join("c", "cid", 0).await.expect("a place is free");
        take(&mut probe, 1).await;
        assert_eq!(rooms.room_count(), 1, "only c is open");
    }

    #[tokio::test]
    async fn a_text_over_the_limit_is_refused() {
        let Fixture { hub, .. } = fixture();
        let mut ann = hub.join("r", "ann", 0).await.expect("join");
        let err = ann.send("x".repeat(11)).await.expect_err("too long");
        assert!(
            matches!(err, Error::MessageTooLong { bytes: 11, max: 10 }),
            "{err:?}"
        );
        ann.send("x".repeat(10)).await.expect("exactly the limit");
    }

    #[tokio::test]
    async fn at_shutdown_the_leaves_are_stored_before_the_appender_ends() {
        let Fixture {
            hub,
            repo,
            lifecycle,
            ..
        } = fixture();
        let ann = hub.join("r", "ann", 0).await.expect("join");
        let bob = hub.join("r", "bob", 0).await.expect("join");
        lifecycle.stop();
        let err = hub.join("r", "cid", 0).await.expect_err("no joins now");
        assert!(matches!(err, Error::ShuttingDown), "{err:?}");
        drop(ann);
        drop(bob);
        assert!(
            lifecycle.stop_and_wait(Duration::from_secs(5)).await,
            "the appender ends once the rooms are empty"
        );
        assert_eq!(repo.kept_ids("r"), [1, 2, 3, 4], "both leaves are stored");
    }
}
