//! The domain's error type: what went wrong, in the domain's words. `streamhub-service` maps
//! each variant to exactly one gRPC status.

/// Result of a domain operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a domain operation can report to its caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server is shutting down; long-lived streams end with this.
    #[error("server is shutting down")]
    ShuttingDown,
    /// Storage failed. The detail is for the log only: it may hold paths or SQL.
    #[error("storage failure: {0}")]
    Storage(String),

    // compat (issue 9): the seeds' small services.
    /// A seed 000 chat client fell `capacity` lines behind and was cut off.
    #[error("slow consumer: more than {capacity} chat messages were waiting for this client")]
    CompatSlowConsumer { capacity: usize },
    /// A reply would exceed the largest message the server sends.
    #[error("the joined data would exceed {limit} bytes, the most one reply can carry")]
    CompatReplyTooLarge { limit: usize },
}
