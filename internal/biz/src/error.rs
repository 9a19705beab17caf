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
    /// A message names a user other than the one the call authenticated as.
    #[error("{field} {claimed:?} is not the authenticated user {caller:?}")]
    NotTheCaller {
        field: &'static str,
        claimed: String,
        caller: String,
    },
    /// Storage failed. The detail is for the log only: it may hold paths or SQL.
    #[error("storage failure: {0}")]
    Storage(String),
    /// Storage could not take the operation right now (busy, locked, unreachable); the same
    /// operation may succeed when retried. The detail is for the log only.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),

    // compat: the seeds' small services.
    /// A seed 000 chat client fell `capacity` lines behind and was cut off.
    #[error("slow consumer: more than {capacity} chat messages were waiting for this client")]
    CompatSlowConsumer { capacity: usize },
    /// A reply would exceed the largest message the server sends.
    #[error("the joined data would exceed {limit} bytes, the most one reply can carry")]
    CompatReplyTooLarge { limit: usize },
    // Collaborative editing.
    /// The client claims a revision the document has not reached.
    #[error("base_revision {base} is ahead of the document's revision {current}")]
    RevisionAhead { base: i64, current: i64 },
    /// The operations since the client's revision are no longer kept.
    #[error(
        "base_revision {base} is older than the oldest revision the server can transform from ({oldest}); join again for a fresh snapshot"
    )]
    RevisionTooOld { base: i64, oldest: i64 },
    /// The edit does not fit the text it was made against.
    #[error("{0}")]
    EditOutOfRange(crate::edit::ot::OtError),
    /// The edit would make the document larger than allowed.
    #[error("the document would grow to {chars} chars, over the limit of {limit}")]
    DocumentTooLarge { chars: usize, limit: usize },
    /// The edit's update (the whole text after it, plus the edit) would be larger than the
    /// largest message the server sends.
    #[error(
        "this edit would make an update of up to {bytes} bytes (the whole text after it plus the edit), over the {limit} bytes one message may carry (server.grpc.max_encoding_message_size); it was not applied: send smaller edits or keep the document smaller"
    )]
    UpdateTooLarge { bytes: usize, limit: usize },
    /// The document's snapshot would be larger than the largest message the server sends.
    #[error(
        "document {document_id:?} is too large to send: its snapshot would take up to {bytes} bytes, over the {limit} bytes one message may carry (server.grpc.max_encoding_message_size)"
    )]
    DocumentTooLargeToSend {
        document_id: String,
        bytes: usize,
        limit: usize,
    },
    /// Too many documents are open.
    #[error("too many open documents (limit {limit}); try again later")]
    TooManyDocuments { limit: usize },
    /// The stream did not keep up with the document's updates and was cut off.
    #[error("slow consumer: the stream fell too far behind the document's updates")]
    EditorTooSlow,
    /// Writing the document failed, so it was closed (the storage detail is in the log only).
    #[error(
        "document {document_id:?} could not be saved and was closed; its latest edits may be lost; join again"
    )]
    DocumentNotSaved {
        document_id: String,
        /// The store could not be reached (rather than refusing the write).
        store_unavailable: bool,
    },
    /// Joining kept meeting the document's actor just as it stopped.
    #[error("document {document_id:?} kept closing while this stream joined; try again")]
    DocumentKeptClosing { document_id: String },
    // --- market, sensors, batch ---
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
    // logs
    /// A submitted log entry breaks a rule; `field` names the protobuf field.
    #[error("{field} {reason}")]
    InvalidLogEntry { field: &'static str, reason: String },
    /// A level name outside DEBUG, INFO, WARN, ERROR.
    #[error("level {0:?} is unknown; use DEBUG, INFO, WARN or ERROR")]
    UnknownLevel(String),
    // --- chat and game sessions ---
    /// A chat text over `chat.max_message_bytes`.
    #[error("message is {bytes} bytes; the limit is {max} bytes")]
    MessageTooLong { bytes: usize, max: usize },
    /// A chat member's queue overflowed and the room dropped it.
    #[error("slow consumer: this member's queue overflowed and it was removed from the room")]
    SlowConsumer,
    /// A member sent more than `chat.max_messages_per_second`.
    #[error(
        "this member sent more than {max} chat messages per second (chat.max_messages_per_second) and was removed"
    )]
    ChatRateExceeded { max: u32 },
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
    // --- files ---
    /// A field of a file request breaks a rule; `field` names the protobuf field.
    #[error("{field}: {reason}")]
    InvalidFileField { field: &'static str, reason: String },
    /// No committed file has this id.
    #[error("file {0} not found")]
    FileNotFound(String),
    /// `file_path` is neither the name nor the id of a committed file (the message does not
    /// echo the path).
    #[error("file_path: no stored file has this name or id")]
    NoFileAtPath,
    /// A download's offset lies beyond the end of the file.
    #[error("offset {offset} is beyond the end of the file ({size} bytes)")]
    OffsetBeyondEnd { offset: u64, size: u64 },
    /// No live resumable upload has this id.
    #[error("upload {0:?} not found (never started, completed, or expired)")]
    UploadNotFound(String),
    /// Another stream is writing this resumable upload.
    #[error("upload {0:?} is in progress on another stream")]
    UploadBusy(String),
    /// A chunk does not start where the upload stands.
    #[error(
        "offset: chunk {chunk} starts at byte {offset}, but the upload continues at byte {expected} (GetUploadStatus tells the durable offset)"
    )]
    UploadOffsetMismatch {
        chunk: i32,
        offset: u64,
        expected: u64,
    },
    /// The received bytes do not hash to the declared checksum; nothing was kept.
    #[error(
        "checksum mismatch: the chunks declared SHA-256 {expected}, the received bytes hash to {computed}; nothing was kept"
    )]
    ChecksumMismatch { expected: String, computed: String },
    /// The received size differs from the declared `total_bytes`; nothing was kept.
    #[error("total_bytes declared {declared} bytes, but {received} arrived; nothing was kept")]
    UploadSizeMismatch { declared: u64, received: u64 },
    /// The file would exceed `data.storage.max_file_bytes`; nothing was kept.
    #[error("the file exceeds the limit of {limit} bytes; nothing was kept")]
    FileTooLarge { limit: u64 },
    /// The file store's disk is full.
    #[error("the file store is out of space; try again later")]
    StorageFull,
    /// A committed file's bytes are missing or differ from its record.
    #[error("the stored bytes of file {0} are damaged")]
    StoredFileDamaged(String),
}

impl Error {
    /// A storage error once more, for each of several callers that waited on one failed
    /// operation: whether a retry may cure it is kept, the detail is carried as text.
    pub fn again(&self) -> Self {
        match self {
            Self::StorageUnavailable(detail) => Self::StorageUnavailable(detail.clone()),
            other => Self::Storage(other.to_string()),
        }
    }
}
