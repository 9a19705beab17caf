//! SHA-256 as both transfers need it: the bytes a resumed transfer already moved are hashed
//! from disk, so the checksum at the end covers the whole file.

use sha2::{Digest as _, Sha256};
use tokio::{fs::File, io::AsyncReadExt as _};

/// A digest in lowercase hex, as the server writes checksums.
pub(super) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Feeds the first `length` bytes of `file` to `hasher`, leaving the file positioned there.
pub(super) async fn hash_prefix(
    file: &mut File,
    length: u64,
    hasher: &mut Sha256,
) -> std::io::Result<()> {
    let mut buffer = vec![0; 64 * 1024];
    let mut left = length;
    while left > 0 {
        let want = usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
        let read = file.read(&mut buffer[..want]).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file is shorter than expected",
            ));
        }
        hasher.update(&buffer[..read]);
        left -= read as u64;
    }
    Ok(())
}
