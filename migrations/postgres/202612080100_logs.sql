-- Log entries on PostgreSQL: the same table as SQLite's, plus the counter row that hands out
-- ids (SCALEOUT.md, principle 1).
--
-- An append is one transaction that first runs `UPDATE log_head SET last_id = last_id + n
-- RETURNING last_id`, which locks the row until the transaction ends, then inserts its rows
-- under the ids it took. The next appender waits on that lock, so ids are gapless and commit
-- in id order: whoever sees id N+1 can rely on N being committed already. (A bigserial would
-- hand out ids at insert, not at commit, and a follower could see N+1 before N.) The row also
-- remembers the highest id ever assigned after retention deleted it, so ids are never reused.
CREATE TABLE log_head (
    -- Exactly one row.
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    last_id  BIGINT  NOT NULL CHECK (last_id >= 0)
);
INSERT INTO log_head (last_id) VALUES (0);

CREATE TABLE logs (
    id        BIGINT   PRIMARY KEY,
    service   TEXT     NOT NULL,
    -- 0 DEBUG, 1 INFO, 2 WARN, 3 ERROR: an integer so "at least WARN" is a range.
    level     SMALLINT NOT NULL CHECK (level BETWEEN 0 AND 3),
    message   TEXT     NOT NULL,
    -- Nanoseconds since the Unix epoch.
    timestamp BIGINT   NOT NULL,
    -- The entry's metadata map as a JSON object, as the writer rendered it.
    metadata  TEXT     NOT NULL DEFAULT '{}'
);

-- StreamLogs filters by service and by minimum level, always reading in id order.
CREATE INDEX logs_service_id ON logs (service, id);
CREATE INDEX logs_level_id ON logs (level, id);
-- Retention deletes by age.
CREATE INDEX logs_timestamp ON logs (timestamp);
