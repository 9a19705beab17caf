-- Files by name, and a start-up that does not look at every stored file.
--
-- A file's name (its sanitised file_name) is what DownloadFile's file_path and ListFiles'
-- name_prefix look up. Several files may share a name; the newest (highest seq) is the one a
-- name finds. The index serves both lookups: `name = ? ORDER BY seq DESC LIMIT 1` and the
-- range `name >= ? AND name < ?` of a prefix.
CREATE INDEX files_name_seq ON files (name, seq);

-- Deletions whose row is gone but whose bytes may still be on disk. DeleteFile removes the
-- `files` row and adds one here in one transaction (the file is gone from that moment on),
-- then removes the bytes, then this row. Start-up finishes what a crash interrupted, so it
-- never has to check every stored file for bytes nothing refers to.
CREATE TABLE file_deletions (
    file_id TEXT PRIMARY KEY NOT NULL -- the bytes live at ab/cd/<file_id>
) WITHOUT ROWID;
