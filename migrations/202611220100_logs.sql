-- Log entries: the store behind StreamLogs, PushLogs and the resumable feeds.
-- AUTOINCREMENT (not just INTEGER PRIMARY KEY) so an id is never reused, even after the newest
-- rows are deleted by retention: a client resuming "after id N" must never see a new entry
-- under an id it already passed.
CREATE TABLE logs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    service   TEXT    NOT NULL,
    -- 0 DEBUG, 1 INFO, 2 WARN, 3 ERROR: an integer so "at least WARN" is a range.
    level     INTEGER NOT NULL CHECK (level BETWEEN 0 AND 3),
    message   TEXT    NOT NULL,
    -- Nanoseconds since the Unix epoch.
    timestamp INTEGER NOT NULL,
    -- The entry's metadata map as a JSON object.
    metadata  TEXT    NOT NULL DEFAULT '{}'
);

-- StreamLogs filters by service and by minimum level, always reading in id order.
CREATE INDEX logs_service_id ON logs (service, id);
CREATE INDEX logs_level_id ON logs (level, id);
-- Retention deletes by age.
CREATE INDEX logs_timestamp ON logs (timestamp);
