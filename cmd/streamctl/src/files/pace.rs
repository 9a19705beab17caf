//! `--limit-rate`: a transfer that runs ahead of its allowance sleeps until it is within it.

use std::time::{Duration, Instant};

/// Keeps a transfer under `--limit-rate` by sleeping when it runs ahead of the allowance.
pub(super) struct Pace {
    bytes_per_second: Option<u64>,
    started: Instant,
}

impl Pace {
    pub(super) fn new(bytes_per_second: Option<u64>) -> Self {
        Self {
            bytes_per_second,
            started: Instant::now(),
        }
    }

    /// Waits until `moved` bytes are within the allowance.
    pub(super) async fn after(&self, moved: u64) {
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        let due = Duration::from_secs_f64(moved as f64 / rate as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}
