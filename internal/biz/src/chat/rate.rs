//! [`MessageRate`]: how fast one chat member may post (`chat.max_messages_per_second`).
//!
//! A member's messages are copied into every other member's queue, so one fast writer costs
//! the whole room; the queues bound memory, this bounds the work. It is a token bucket in its
//! GCRA form: one instant per member (when its bucket would be full again) instead of a count
//! and a refill timer. A full bucket allows a burst of one second's worth.

use std::time::Duration;

use tokio::time::Instant;

/// A member's allowance of messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageRate {
    /// Time one message costs: a second divided by the rate.
    cost: Duration,
    /// The debt a member may run up: one second's worth of messages.
    burst: Duration,
    /// When the member's debt is paid off; never earlier than now minus nothing owed.
    paid_off_at: Instant,
}

impl MessageRate {
    /// `per_second` messages per second, with a burst of as many.
    pub(crate) fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1);
        let cost = Duration::from_secs(1) / per_second;
        Self {
            cost,
            burst: cost * per_second,
            paid_off_at: Instant::now(),
        }
    }

    /// Takes one message's worth at `now`; false (and nothing taken) when the bucket is empty.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let start = self.paid_off_at.max(now);
        let after = start + self.cost;
        if after.saturating_duration_since(now) > self.burst {
            return false;
        }
        self.paid_off_at = after;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let start = Instant::now();
        let mut rate = MessageRate::new(10);
        rate.paid_off_at = start;
        let taken = (0..20).filter(|_| rate.take(start)).count();
        assert_eq!(taken, 10, "a full bucket holds one second's worth");
        assert!(
            !rate.take(start + Duration::from_millis(50)),
            "half a cost later"
        );
        assert!(
            rate.take(start + Duration::from_millis(100)),
            "one cost later"
        );
        assert!(!rate.take(start + Duration::from_millis(100)));
        // After a quiet second the bucket is full again, and no fuller.
        let later = start + Duration::from_secs(5);
        let taken = (0..20).filter(|_| rate.take(later)).count();
        assert_eq!(taken, 10);
    }
}
