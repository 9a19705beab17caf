//! Chat rooms: members, a per-room message sequence, bounded history and resume.
//!
//! Handlers see [`RoomHub`] and the [`Membership`] it hands out; how messages travel between
//! members is behind [`RoomBus`], so that a message broker can stand behind it later (several
//! replicas) without touching the handlers. [`InProcessRooms`] is the bus of a single process.
//! Each room's sequence and its kept history live in the store ([`RoomRepo`]), not in the
//! process: they outlive the room emptying and the server restarting, so a `last_seen_id`
//! keeps its meaning, and an event reaches members (its author included: that copy is the
//! author's acknowledgement) only once it is durable.
//!
//! Every member has a bounded queue that the room fills without ever waiting: a member whose
//! queue is full is cut off (its stream ends with `RESOURCE_EXHAUSTED`), so one slow reader can
//! neither stall a room nor make the server's memory grow.

mod in_process;
#[cfg(test)]
mod memory_repo;
mod rate;
mod repo;

use std::{
    collections::VecDeque,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::SystemTime,
};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub use in_process::InProcessRooms;
use rate::MessageRate;
pub use repo::{NewChatEvent, RoomRepo};

use crate::{Error, Lifecycle, Result};

/// What a chat event announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// A member's text.
    Message,
    /// A member joined the room.
    Join,
    /// A member left the room (or was cut off).
    Leave,
    /// Sent only at the start of a resume: messages after the client's `last_seen_id` are no
    /// longer kept, so the replay that follows is not contiguous with what it saw.
    Reset,
}

impl ChatKind {
    /// The kind named `name` (as [`ChatKind::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "message" => Some(Self::Message),
            "join" => Some(Self::Join),
            "leave" => Some(Self::Leave),
            "reset" => Some(Self::Reset),
            _ => None,
        }
    }

    /// The wire name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Reset => "reset",
        }
    }
}

/// One entry of a room's sequence, as every member receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEvent {
    /// Per-room sequence number, from 1. A `reset` carries the last id the replay skips.
    pub id: i64,
    pub room_id: String,
    /// Author of a message, or who joined or left; empty for a reset.
    pub user_id: String,
    /// The message text; for a reset, how many messages were lost; empty for join and leave.
    pub text: String,
    pub kind: ChatKind,
    /// Server clock when the room accepted it.
    pub at: SystemTime,
}

/// The limits that keep chat's memory and disk bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatLimits {
    /// Events kept (in the store) per room for resuming members.
    pub history: usize,
    /// Events queued per member before it is cut off.
    pub member_queue: usize,
    /// Largest message text, in bytes.
    pub max_message_bytes: usize,
    /// Rooms open at once.
    pub max_rooms: usize,
    /// Messages one member may send per second, with a burst of as many.
    pub max_messages_per_second: u32,
}

/// Identifies one membership (one stream) within a bus; a user may hold several.
pub type MemberId = u64;

/// The publish/subscribe seam of chat. An implementation appends every event to the room's
/// stored sequence before any member sees it, and guarantees that a subscriber's replay and
/// live feed neither overlap nor leave a gap.
pub trait RoomBus: fmt::Debug + Send + Sync + 'static {
    /// Makes `user_id` a member of `room_id` (opening the room if needed) and announces the
    /// join to every member, the new one included. With `last_seen_id` > 0 the subscription
    /// first replays what the member missed (see [`ChatKind::Reset`]).
    fn subscribe<'a>(
        &'a self,
        room_id: &'a str,
        user_id: &'a str,
        last_seen_id: i64,
    ) -> BoxFuture<'a, Result<Subscription>>;

    /// Queues `text` from `member` for the room, behind everything the member queued before.
    /// Once it is stored, every member receives it, the author included. Waits only while the
    /// queue to the store is full.
    fn publish<'a>(
        &'a self,
        room_id: &'a str,
        member: MemberId,
        text: String,
    ) -> BoxFuture<'a, Result<()>>;

    /// Removes `member`, after whatever it published before, and announces its leave; closes
    /// the room when it was the last one. Removing a member that is already gone does
    /// nothing. Never waits (it is called from `Drop`).
    fn unsubscribe(&self, room_id: &str, member: MemberId);

    /// What the bus holds now, for metrics. Called on every scrape: must be cheap and must
    /// not wait on a room for long.
    fn stats(&self) -> RoomStats;
}

/// A snapshot of the rooms, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomStats {
    /// Rooms open now.
    pub rooms: usize,
    /// Memberships (streams) in all rooms now.
    pub members: usize,
    /// Members cut off for reading too slowly since start.
    pub slow_consumers_cut_off: u64,
}

/// What [`RoomBus::subscribe`] hands to a new member.
#[derive(Debug)]
pub struct Subscription {
    pub member: MemberId,
    /// Missed events, oldest first, to deliver before `live`.
    pub replay: Vec<Arc<ChatEvent>>,
    pub live: LiveFeed,
}

/// The receiving end of a member's bounded queue.
#[derive(Debug)]
pub struct LiveFeed {
    events: mpsc::Receiver<Arc<ChatEvent>>,
    ending: Arc<AtomicU8>,
    /// The end has been reported: from now on the feed only says `None`.
    ended: bool,
}

/// The room's end of a member's queue.
#[derive(Debug)]
pub struct MemberQueue {
    events: mpsc::Sender<Arc<ChatEvent>>,
    ending: Arc<AtomicU8>,
}

/// Why the room dropped a member, as its feed will report it (an [`AtomicU8`]).
const STILL_MEMBER: u8 = 0;
const CUT_OFF: u8 = 1;
const STORE_FAILED: u8 = 2;

/// What became of an event offered to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The queue is full: the member reads too slowly and must be cut off.
    Full,
    /// The member's stream is gone.
    Gone,
}

impl LiveFeed {
    /// A member queue holding up to `capacity` events.
    pub fn channel(capacity: usize) -> (MemberQueue, LiveFeed) {
        let (events_tx, events_rx) = mpsc::channel(capacity.max(1));
        let ending = Arc::new(AtomicU8::new(STILL_MEMBER));
        (
            MemberQueue {
                events: events_tx,
                ending: Arc::clone(&ending),
            },
            LiveFeed {
                events: events_rx,
                ending,
                ended: false,
            },
        )
    }

    /// The next queued event; once the room has dropped this member, what was queued before
    /// and then `None` (it left), one [`Error::SlowConsumer`] (it was cut off) or one
    /// [`Error::Storage`] (the store refused its message). Cancel-safe: no event is lost if
    /// the future is dropped.
    pub async fn next(&mut self) -> Option<Result<Arc<ChatEvent>>> {
        match self.events.recv().await {
            Some(event) => Some(Ok(event)),
            None if std::mem::replace(&mut self.ended, true) => None,
            None => self.ending().map(Err),
        }
    }

    /// Why the room dropped this member; `None` while it is a member or after a plain leave.
    fn ending(&self) -> Option<Error> {
        match self.ending.load(Ordering::SeqCst) {
            CUT_OFF => Some(Error::SlowConsumer),
            STORE_FAILED => Some(store_failed()),
            _ => None,
        }
    }
}

/// What a member whose message the store refused is told; the cause is in the server log.
fn store_failed() -> Error {
    Error::Storage("the room's store failed to append this member's message".to_owned())
}

impl MemberQueue {
    /// Queues `event` without ever waiting.
    pub fn offer(&self, event: Arc<ChatEvent>) -> Offer {
        match self.events.try_send(event) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        }
    }

    /// Marks the member as cut off; its feed reports it once the queue is dropped and drained.
    pub fn cut_off(&self) {
        self.ending.store(CUT_OFF, Ordering::SeqCst);
    }

    /// Marks the member as dropped because the store refused its message; its feed reports
    /// it once the queue is dropped and drained.
    pub fn store_failed(&self) {
        self.ending.store(STORE_FAILED, Ordering::SeqCst);
    }
}

/// The chat rooms of the server: a cheap handle shared by every chat stream.
#[derive(Debug, Clone)]
pub struct RoomHub {
    bus: Arc<dyn RoomBus>,
    max_message_bytes: usize,
    /// Messages per second per member; `None`: unlimited.
    max_messages_per_second: Option<u32>,
}

impl RoomHub {
    /// Rooms carried by `bus`.
    pub fn new(bus: Arc<dyn RoomBus>, max_message_bytes: usize) -> Self {
        Self {
            bus,
            max_message_bytes,
            max_messages_per_second: None,
        }
    }

    /// Limits each member to `per_second` messages per second (a burst of as many); a
    /// member sending faster gets [`Error::ChatRateExceeded`].
    #[must_use]
    pub fn with_message_rate(mut self, per_second: u32) -> Self {
        self.max_messages_per_second = Some(per_second);
        self
    }

    /// Rooms whose members live in this process and whose sequences and history live in
    /// `repo`. The task that appends to `repo` runs on `lifecycle` and ends once shutdown has
    /// started and the last member has left.
    pub fn in_process(repo: Arc<dyn RoomRepo>, limits: ChatLimits, lifecycle: &Lifecycle) -> Self {
        Self::new(
            Arc::new(InProcessRooms::new(repo, limits, lifecycle)),
            limits.max_message_bytes,
        )
        .with_message_rate(limits.max_messages_per_second)
    }

    /// Rooms, members and slow-consumer cut-offs, for metrics.
    pub fn stats(&self) -> RoomStats {
        self.bus.stats()
    }

    /// Checks a message text against the size limit, before anything is published.
    pub fn check_text(&self, text: &str) -> Result<()> {
        if text.len() > self.max_message_bytes {
            return Err(Error::MessageTooLong {
                bytes: text.len(),
                max: self.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Joins `room_id` as `user_id`; see [`RoomBus::subscribe`]. The membership ends (and the
    /// others see the leave) when it is dropped or [`Membership::leave`] is called.
    pub async fn join(
        &self,
        room_id: &str,
        user_id: &str,
        last_seen_id: i64,
    ) -> Result<Membership> {
        let subscription = self.bus.subscribe(room_id, user_id, last_seen_id).await?;
        Ok(Membership {
            rate: self.max_messages_per_second.map(MessageRate::new),
            hub: self.clone(),
            room_id: room_id.to_owned(),
            user_id: user_id.to_owned(),
            member: subscription.member,
            replay: subscription.replay.into(),
            live: subscription.live,
            delivered: 0,
            joined: true,
        })
    }
}

/// One stream's place in a room.
#[derive(Debug)]
pub struct Membership {
    hub: RoomHub,
    room_id: String,
    user_id: String,
    member: MemberId,
    replay: VecDeque<Arc<ChatEvent>>,
    live: LiveFeed,
    /// Id of the last event handed out; a live event at or below it was already replayed.
    delivered: i64,
    joined: bool,
    /// This member's allowance.
    rate: Option<MessageRate>,
}

impl Membership {
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Publishes `text` to the room; the author receives its own copy, with its id, once it
    /// is stored. Fails at once when the room has already dropped this member (its feed says
    /// why).
    pub async fn send(&mut self, text: String) -> Result<()> {
        self.hub.check_text(&text)?;
        if let Some(rate) = &mut self.rate
            && !rate.take(tokio::time::Instant::now())
        {
            return Err(Error::ChatRateExceeded {
                max: self.hub.max_messages_per_second.unwrap_or_default(),
            });
        }
        if let Some(dropped) = self.live.ending() {
            return Err(dropped);
        }
        self.hub.bus.publish(&self.room_id, self.member, text).await
    }

    /// The next event for this member: the replay first, then live ones. `None` once the
    /// member has left and its queue is drained. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Arc<ChatEvent>>> {
        if let Some(event) = self.replay.pop_front() {
            self.delivered = self.delivered.max(event.id);
            return Some(Ok(event));
        }
        loop {
            let event = match self.live.next().await? {
                Ok(event) => event,
                Err(err) => return Some(Err(err)),
            };
            // The hand-over rule: live events that the replay already carried are dropped.
            if event.id > self.delivered {
                self.delivered = event.id;
                return Some(Ok(event));
            }
        }
    }

    /// Leaves the room. Events queued before the leave can still be read with [`Self::next`].
    pub fn leave(&mut self) {
        if std::mem::take(&mut self.joined) {
            self.hub.bus.unsubscribe(&self.room_id, self.member);
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.leave();
    }
}
