//! Logs: a persisted, append-only stream of entries with live followers.
//!
//! Writers append batches through [`LogHub::append`]; the store assigns strictly increasing
//! ids in one transaction per batch, and the hub then publishes the batch to live followers.
//! Readers get a [`LogHub::stream`]: the stored entries that match, then (when following) the
//! live ones, handed over without gap or duplicate. The resumable feeds (GetDataStream,
//! ControlledStream, BufferedStream) are views of the same stream.

mod bursts;
#[cfg(any(test, feature = "testing"))]
pub mod contract;
mod entry;
mod hub;
mod repo;

pub use bursts::{BurstPolicy, bursts};
pub use entry::{
    Level, LogEntry, LogFilter, MAX_MESSAGE_BYTES, NewLogEntry, from_unix_nanos, unix_nanos,
};
pub use hub::{Appended, LogHub, LogQuery, RetentionPolicy};
pub use repo::{LogRepo, RepoFuture};
