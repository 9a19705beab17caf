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

    // --- market, sensors, batch (issue 5) ---
    /// A GetStockPrices request breaks a rule; the message names the field and value.
    #[error("{0}")]
    InvalidStockRequest(String),
    /// Subscribing would make the market simulate more symbols than it may.
    #[error("the market already simulates its limit of {limit} symbols; try again later")]
    MarketFull { limit: usize },
    /// A sensor stream reported more distinct sensors than one stream may.
    #[error("sensor_id: more than {limit} distinct sensors in one stream")]
    TooManySensors { limit: usize },
    /// A batch holds more items than one batch may.
    #[error("more than {limit} items in one batch")]
    BatchTooLarge { limit: usize },
}
