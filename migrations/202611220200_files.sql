-- Files: committed files and the uploads in progress (issue 3).
--
-- A file is visible exactly when its row is in `files`: the bytes are fsynced and renamed
-- into the store before that row is committed, in the same transaction that removes the
-- upload's row.

-- `seq` orders files by commit and is ListFiles' cursor; AUTOINCREMENT so a page token never
-- comes to mean a different file after deletions.
CREATE TABLE files (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE, -- 32 hex digits; the bytes live at ab/cd/<id>
    name       TEXT    NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     TEXT    NOT NULL,        -- 64 lowercase hex digits
    created_at INTEGER NOT NULL         -- nanoseconds since the Unix epoch
);

-- Every upload in progress has a row, so a crash leaves a record of what to clean up. Only
-- those with an upload_id survive a broken stream (until expires_at).
CREATE TABLE uploads (
    file_id         TEXT    PRIMARY KEY NOT NULL, -- the id the file gets; names tmp/<file_id>.part
    upload_id       TEXT    UNIQUE,               -- the client's name; NULL for a one-shot upload
    file_name       TEXT    NOT NULL,
    expected_size   INTEGER,                      -- total_bytes, if the client declared it
    expected_sha256 TEXT,                         -- checksum, if the client declared it
    durable_offset  INTEGER NOT NULL DEFAULT 0,   -- bytes fsynced; a resumed stream starts here
    updated_at      INTEGER NOT NULL,             -- nanoseconds since the Unix epoch
    expires_at      INTEGER NOT NULL              -- nanoseconds since the Unix epoch
) WITHOUT ROWID;

-- The sweeper looks for expired uploads.
CREATE INDEX uploads_expires_at ON uploads (expires_at);
