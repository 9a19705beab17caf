//! [`run_every`]: the loop of a background chore (log retention, sweeping expired uploads).
//! Each hub that has one spawns it on the application's task tracker; this keeps the timing
//! and shutdown rules the same for all of them.

use std::{future::Future, time::Duration};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Runs `chore` at once and then every `interval` until `stopping` fires, also in the middle
/// of a run. A run that overruns delays the next one instead of causing a burst.
pub async fn run_every<F, Fut>(interval: Duration, stopping: &CancellationToken, mut chore: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            () = chore() => {}
        }
    }
}
