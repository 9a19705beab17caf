//! `streamctl upload`, `download`, `files` and `rm`: the file store, with transfers that
//! resume where they stopped and end with a SHA-256 check.
//!
//! Upload resume: the upload id is derived from the file's absolute path, size and
//! modification time (`sc-` + 40 hex digits of their SHA-256), so re-running the same
//! command on the same, unchanged file names the same upload without any state on disk
//! beside the file; a changed file is a new upload (the server drops the stale partial one
//! after `storage.resume_ttl`). The command asks GetUploadStatus how many bytes the server
//! holds durably and sends the rest.
//!
//! Download resume: data goes to `PATH.part`; a later run continues from its length. Only
//! after the whole file's SHA-256 matches the server's is it renamed to `PATH`; on a
//! mismatch `PATH.part` is removed so the next run starts clean (which is also what happens
//! when a download by name resumes after a newer file of that name was uploaded).
//!
//! Ids and names: `download` and `rm` take either. The server's rule, which `rm` follows on
//! this side (DeleteFile takes only an id), is that an id wins: an argument that is the id of
//! a stored file means that file, anything else the newest file of that name.
//!
//! One file per command ([`upload`](mod@upload), [`download`](mod@download), [`list`](mod@list),
//! [`remove`](mod@remove)); what both transfers use is in [`checksum`] (hashing what is
//! already on disk) and [`pace`] (`--limit-rate`).

mod checksum;
mod download;
mod list;
mod pace;
mod remove;
mod upload;

pub(crate) use self::{
    download::{DownloadArgs, download},
    list::{ListArgs, list},
    remove::{RemoveArgs, remove},
    upload::{UploadArgs, upload},
};

/// Largest chunk the server accepts for a download, and a sensible cap for uploads.
const MAX_CHUNK: u32 = 1024 * 1024;

/// A byte count or offset as the protocol's `int64`.
fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
