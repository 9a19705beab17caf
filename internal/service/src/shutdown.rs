//! The server's shutdown as calls see it: two moments, two kinds of call.
//!
//! When shutdown starts ([`Shutdown::stopping`]) every idle or long-lived call (follows,
//! feeds, market, rooms, sessions, documents, client streams waiting for their next message)
//! ends at once with `UNAVAILABLE`, so clients move to another server without waiting. A
//! transfer that is still moving bytes (an upload receiving chunks, a download sending them)
//! may finish, until `server.grpc.shutdown_grace` runs out ([`Shutdown::grace_over`]); then it
//! too ends with `UNAVAILABLE`, a status and never a cut connection.

use std::time::Duration;

use streamhub_biz::Lifecycle;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// How long a transfer may wait for its next message once shutdown has started: an upload
/// whose client sends nothing for this long is idle, not moving bytes, and ends at once.
pub(crate) const TRANSFER_STALL_AFTER_STOP: Duration = Duration::from_millis(500);

/// The two shutdown signals. Cheap to clone; the server cancels them, calls watch them.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled when shutdown starts.
    pub stopping: CancellationToken,
    /// Cancelled when the grace for open calls has run out.
    pub grace_over: CancellationToken,
}

impl Shutdown {
    /// Fresh signals, neither fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// The signals of an application whose background work runs on `lifecycle`: shutdown
    /// starting is the lifecycle's stop.
    pub fn of(lifecycle: &Lifecycle) -> Self {
        Self {
            stopping: lifecycle.stopping().clone(),
            grace_over: CancellationToken::new(),
        }
    }
}

/// The status every call that shutdown ends gets.
pub fn shutting_down() -> Status {
    Status::unavailable("server is shutting down")
}
