//! Seed 000's chat: one conversation that every connected client is in.
//!
//! Every line goes to every member, the sender included (the seed's clients print their own
//! lines from the server's copy). Each member has a bounded queue; [`ChatMember::say`] never
//! waits for anyone: a member whose queue is full is cut off (its stream ends with
//! [`Error::CompatSlowConsumer`] after the lines already queued), so one slow client can
//! neither stall the others nor grow memory.
//!
//! The member table is behind a `std::sync::Mutex`: it is held only to walk the table and
//! `try_send`, never across an `.await`, and holding it for the whole broadcast gives every
//! member the same order of lines.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::{Error, Result};

/// One chat message: seed 000's `Message{user, text, timestamp}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    pub user: String,
    pub text: String,
    /// Unix seconds.
    pub timestamp: i64,
}

impl ChatLine {
    /// The line as it is broadcast: the seed's clients stamp their lines themselves, and that
    /// stamp is kept; a line without one (0) gets `now`.
    pub fn stamped(mut self, now: i64) -> Self {
        if self.timestamp == 0 {
            self.timestamp = now;
        }
        self
    }
}

/// The one conversation every connected client shares: no rooms, no history, unlike
/// [`RoomHub`](crate::chat::RoomHub). Cheap to clone; every clone is the same hub.
#[derive(Debug, Clone)]
pub struct ConversationHub {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Lines a member may have queued before it is cut off.
    capacity: usize,
    members: Mutex<Members>,
    /// Members cut off as slow consumers since start.
    cut_offs: AtomicU64,
}

#[derive(Debug, Default)]
struct Members {
    next_id: u64,
    by_id: HashMap<u64, Mailbox>,
}

#[derive(Debug)]
struct Mailbox {
    sender: mpsc::Sender<Arc<ChatLine>>,
    cut_off: Arc<AtomicBool>,
}

impl ConversationHub {
    /// A hub whose members may each have `capacity` lines queued (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                capacity: capacity.max(1),
                members: Mutex::new(Members::default()),
                cut_offs: AtomicU64::new(0),
            }),
        }
    }

    /// Joins the conversation: the member receives every line said from now on.
    pub fn join(&self) -> ChatMember {
        let (sender, receiver) = mpsc::channel(self.shared.capacity);
        let cut_off = Arc::new(AtomicBool::new(false));
        let mut members = self.shared.lock();
        let id = members.next_id;
        members.next_id += 1;
        members.by_id.insert(
            id,
            Mailbox {
                sender,
                cut_off: Arc::clone(&cut_off),
            },
        );
        ChatMember {
            id,
            shared: Arc::clone(&self.shared),
            receiver,
            cut_off,
        }
    }

    /// How many members currently receive lines.
    pub fn members(&self) -> usize {
        self.shared.lock().by_id.len()
    }

    /// Members cut off for reading too slowly since start, for metrics.
    pub fn slow_consumers_cut_off(&self) -> u64 {
        self.shared.cut_offs.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Members> {
        // The table stays consistent even if a holder panicked: every update is one call.
        crate::mutex::lock(&self.members)
    }

    fn broadcast(&self, line: ChatLine) {
        let line = Arc::new(line);
        let mut members = self.lock();
        members.by_id.retain(
            |_, mailbox| match mailbox.sender.try_send(Arc::clone(&line)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    // Removing the mailbox drops its sender: the member's queue drains and
                    // then reports the cut-off.
                    mailbox.cut_off.store(true, Ordering::Release);
                    self.cut_offs.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            },
        );
    }
}

/// One client's place in the conversation. Dropping it leaves.
#[derive(Debug)]
pub struct ChatMember {
    id: u64,
    shared: Arc<Shared>,
    receiver: mpsc::Receiver<Arc<ChatLine>>,
    cut_off: Arc<AtomicBool>,
}

impl ChatMember {
    /// Says `line` to every member, this one included, stamping it if it has no time.
    pub fn say(&self, line: ChatLine) {
        self.shared.broadcast(line.stamped(unix_now()));
    }

    /// Stops receiving new lines; the ones already queued are still delivered, after which
    /// [`next_line`](Self::next_line) ends. This is the half-close of the seed's client: it
    /// gets the replies to everything it said, then a clean end.
    pub fn leave(&mut self) {
        self.shared.lock().by_id.remove(&self.id);
    }

    /// The next line; `None` once the member has left and its queue is empty; an error once
    /// its queue has drained after it was cut off for falling behind.
    pub async fn next_line(&mut self) -> Option<Result<Arc<ChatLine>>> {
        match self.receiver.recv().await {
            Some(line) => Some(Ok(line)),
            None if self.cut_off.swap(false, Ordering::AcqRel) => {
                Some(Err(Error::CompatSlowConsumer {
                    capacity: self.shared.capacity,
                }))
            }
            None => None,
        }
    }
}

impl Drop for ChatMember {
    fn drop(&mut self) {
        self.leave();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(user: &str, text: &str) -> ChatLine {
        ChatLine {
            user: user.to_owned(),
            text: text.to_owned(),
            timestamp: 7,
        }
    }

    async fn texts_until_end(member: &mut ChatMember) -> Vec<String> {
        let mut texts = Vec::new();
        while let Some(next) = member.next_line().await {
            texts.push(next.expect("not cut off").text.clone());
        }
        texts
    }

    #[test]
    fn a_line_keeps_the_clients_stamp_and_gets_one_when_it_has_none() {
        assert_eq!(line("a", "b").stamped(100).timestamp, 7);
        let unstamped = ChatLine {
            timestamp: 0,
            ..line("a", "b")
        };
        assert_eq!(unstamped.stamped(100).timestamp, 100);
    }

    #[tokio::test]
    async fn every_member_gets_every_line_in_the_same_order_sender_included() {
        let hub = ConversationHub::new(16);
        let mut alice = hub.join();
        let mut bob = hub.join();
        alice.say(line("alice", "1"));
        bob.say(line("bob", "2"));
        alice.say(line("alice", "3"));
        alice.leave();
        bob.leave();
        assert_eq!(texts_until_end(&mut alice).await, ["1", "2", "3"]);
        assert_eq!(texts_until_end(&mut bob).await, ["1", "2", "3"]);
    }

    #[tokio::test]
    async fn a_member_that_left_still_gets_what_was_queued_then_ends() {
        let hub = ConversationHub::new(16);
        let mut alice = hub.join();
        let bob = hub.join();
        for i in 0..10 {
            alice.say(line("alice", &i.to_string()));
        }
        alice.leave();
        bob.say(line("bob", "after alice left"));
        let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(texts_until_end(&mut alice).await, expected);
        assert_eq!(hub.members(), 1);
    }

    #[tokio::test]
    async fn a_slow_member_is_cut_off_after_its_queue_and_the_others_go_on() {
        let hub = ConversationHub::new(2);
        let mut slow = hub.join();
        let mut fast = hub.join();
        for i in 0..3 {
            fast.say(line("fast", &i.to_string()));
            let got = fast.next_line().await.expect("open").expect("not cut off");
            assert_eq!(got.text, i.to_string());
        }
        assert_eq!(hub.members(), 1, "the slow member left the table");
        for expected in ["0", "1"] {
            let got = slow.next_line().await.expect("queued line").expect("line");
            assert_eq!(got.text, expected);
        }
        let err = slow
            .next_line()
            .await
            .expect("the cut-off is reported")
            .expect_err("cut off");
        assert!(
            matches!(err, Error::CompatSlowConsumer { capacity: 2 }),
            "{err:?}"
        );
        assert!(
            slow.next_line().await.is_none(),
            "nothing after the cut-off"
        );
    }

    #[tokio::test]
    async fn dropping_a_member_leaves() {
        let hub = ConversationHub::new(4);
        let member = hub.join();
        let other = hub.join();
        assert_eq!(hub.members(), 2);
        drop(member);
        other.say(line("other", "nobody else"));
        assert_eq!(hub.members(), 1);
    }
}
