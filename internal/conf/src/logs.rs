//! `logs`: the log store behind StreamLogs, PushLogs and the resumable feeds.

use std::time::Duration;

use serde::Deserialize;

use crate::load::{ConfError, all_greater_than_zero, all_longer_than_zero, bad};

/// `logs`: retention of stored entries and the live fan-out to followers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConf {
    /// Entries older than this (by their timestamp) are deleted.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub retention: Duration,
    /// At most this many entries are kept; the oldest go first.
    pub max_entries: u64,
    /// How often the retention task runs.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub retention_interval: Duration,
    /// Entries held in memory for live followers. A follower that falls further behind reads
    /// the missed entries back from the database, so this bounds memory, not correctness.
    pub live_buffer: usize,
}

impl Default for LogsConf {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(7 * 24 * 60 * 60),
            max_entries: 1_000_000,
            retention_interval: Duration::from_secs(60),
            live_buffer: 4096,
        }
    }
}

/// Upper bound of `logs.live_buffer` (entries held in memory for live followers).
const MAX_LIVE_BUFFER: usize = 1 << 20;

impl LogsConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        all_greater_than_zero([
            ("logs.max_entries", self.max_entries),
            ("logs.live_buffer", self.live_buffer as u64),
        ])?;
        all_longer_than_zero([
            ("logs.retention", self.retention),
            ("logs.retention_interval", self.retention_interval),
        ])?;
        // tokio's broadcast channel refuses larger capacities; far below that, memory is the limit.
        if self.live_buffer > MAX_LIVE_BUFFER {
            return Err(bad(
                "logs.live_buffer",
                format!("must be at most {MAX_LIVE_BUFFER}"),
            ));
        }
        Ok(())
    }
}
