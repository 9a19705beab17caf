-- Chat rooms: each room's sequence and its most recent events (the history a resuming member
-- replays). The sequence is a counter row per room, advanced by the transaction that appends,
-- so ids never repeat when a room empties and reopens or the server restarts. Rows of
-- chat_rooms are never deleted for the same reason: the counter must outlive the room.
CREATE TABLE chat_rooms (
    id      TEXT    PRIMARY KEY NOT NULL,
    -- The highest id handed out (0 before the first event).
    last_id INTEGER NOT NULL
) WITHOUT ROWID;

-- Trimmed on every append to the room's history, so a room's rows stay bounded.
CREATE TABLE chat_events (
    room_id TEXT    NOT NULL REFERENCES chat_rooms (id),
    id      INTEGER NOT NULL,
    kind    TEXT    NOT NULL CHECK (kind IN ('message', 'join', 'leave')),
    user_id TEXT    NOT NULL,
    text    TEXT    NOT NULL,
    -- Nanoseconds since the Unix epoch.
    at      INTEGER NOT NULL,
    PRIMARY KEY (room_id, id)
) WITHOUT ROWID;
