//! The file store's disk primitives: blocking file-system work run off the runtime, and the
//! durable moves and removals the commit order is built from.
//!
//! A rename or a new file is durable only once its directory is synced, so every move here
//! syncs the directories it changed before it returns.

use std::{
    fs::{self, File},
    io,
    path::Path,
};

use streamhub_biz::Result;

use super::storage;

/// Runs blocking file-system work off the runtime.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| storage("file-system task failed", err))?
}

/// Removes `path`; a file that is already gone is fine.
pub(super) fn remove_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Makes `dir`'s entries (a rename, a new file) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Undoes [`move_into_store`] for a commit that failed: the bytes go back to the partial
/// path, durably.
pub(super) fn move_out_of_store(stored: &Path, partial: &Path) -> io::Result<()> {
    fs::rename(stored, partial)?;
    let tmp = partial
        .parent()
        .ok_or_else(|| io::Error::other("partial path has no parent"))?;
    sync_dir(tmp)
}

/// Renames the durable partial file to its place in the store and makes the rename durable.
pub(super) fn move_into_store(partial: &Path, stored: &Path) -> io::Result<()> {
    let shard = stored
        .parent()
        .ok_or_else(|| io::Error::other("stored path has no parent"))?;
    let outer = shard
        .parent()
        .ok_or_else(|| io::Error::other("shard has no parent"))?;
    let new_outer = !outer.exists();
    let new_shard = !shard.exists();
    fs::create_dir_all(shard)?;
    fs::rename(partial, stored)?;
    sync_dir(shard)?;
    // A directory created for this file must itself be durable in its parent.
    if new_shard {
        sync_dir(outer)?;
    }
    if new_outer && let Some(root) = outer.parent() {
        sync_dir(root)?;
    }
    Ok(())
}
