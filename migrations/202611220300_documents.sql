-- Collaborative editing: each document's current text and revision, and its most recent
-- applied operations (the server keeps `edit.op_log` of them to transform late edits).
CREATE TABLE documents (
    id         TEXT    PRIMARY KEY NOT NULL,
    text       TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL -- unix milliseconds
);

CREATE TABLE document_ops (
    document_id TEXT    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    revision    INTEGER NOT NULL,
    user_id     TEXT    NOT NULL,
    kind        TEXT    NOT NULL, -- INSERT, DELETE or FORMAT, as the client asked
    op          TEXT    NOT NULL, -- the text change as applied: insert, delete or noop
    position    INTEGER NOT NULL,
    length      INTEGER NOT NULL,
    content     TEXT    NOT NULL, -- inserted text, or the format name
    applied_at  INTEGER NOT NULL, -- unix milliseconds
    PRIMARY KEY (document_id, revision)
) WITHOUT ROWID;
