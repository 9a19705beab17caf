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

    // logs
    /// A submitted log entry breaks a rule; `field` names the protobuf field.
    #[error("{field} {reason}")]
    InvalidLogEntry { field: &'static str, reason: String },
    /// A level name outside DEBUG, INFO, WARN, ERROR.
    #[error("level {0:?} is unknown; use DEBUG, INFO, WARN or ERROR")]
    UnknownLevel(String),
}
