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

    // --- chat and game sessions (issue 6) ---
    /// A chat text over `chat.max_message_bytes`.
    #[error("message is {bytes} bytes; the limit is {max} bytes")]
    MessageTooLong { bytes: usize, max: usize },
    /// A chat member's queue overflowed and the room dropped it.
    #[error("slow consumer: this member's queue overflowed and it was removed from the room")]
    SlowConsumer,
    /// Opening one more room would exceed `chat.max_rooms`.
    #[error("too many chat rooms are open (limit {max}); try again later")]
    TooManyRooms { max: usize },
    /// Opening one more session would exceed `game.max_sessions`.
    #[error("too many game sessions are open (limit {max}); try again later")]
    TooManySessions { max: usize },
    /// An `action_type` the game does not know.
    #[error("action_type {0:?} is unknown; use JOIN, MOVE, ATTACK or DEFEND")]
    UnknownAction(String),
    /// An action's parameter is missing or wrong.
    #[error("parameters.{name} {reason}")]
    BadParameter { name: &'static str, reason: String },
    /// The player already plays in this session on another stream.
    #[error("player {0:?} is already playing in this session")]
    PlayerTaken(String),
    /// The acting player is not in the session.
    #[error("player {0:?} is not in this session")]
    NotInSession(String),
    /// The acting player was knocked out.
    #[error("player {0:?} is out (health 0) and can no longer act")]
    PlayerOut(String),
    /// The attack's target was knocked out.
    #[error("parameters.target {0:?} is out (health 0) and cannot be attacked")]
    TargetOut(String),
    /// The game is over; only newcomers may join.
    #[error("the game is finished; only a new player can start another round")]
    GameFinished,
}
