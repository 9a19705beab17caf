//! ListFiles: pages of committed files in commit order, optionally by name prefix.

use super::FileHub;
use crate::{
    Result,
    files::{ListedFile, NamePrefix, StoredFile},
};

/// ListFiles' page size when the request leaves it 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// ListFiles' largest page; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Where a ListFiles page starts: after the file listed last on the page before. The
/// transport encodes it for the client; only cursors this hub handed out are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor(pub i64);

/// What one ListFiles call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Files per page; `None` for the default, larger sizes are clamped to the maximum.
    pub page_size: Option<u32>,
    /// `None` for the first page.
    pub after: Option<PageCursor>,
    /// Only files whose name starts with this.
    pub name_prefix: Option<NamePrefix>,
}

/// One page of ListFiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePage {
    pub files: Vec<StoredFile>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}

impl FileHub {
    pub async fn list(&self, query: ListQuery) -> Result<FilePage> {
        let limit = query
            .page_size
            .filter(|size| *size > 0)
            .map_or(DEFAULT_PAGE_SIZE, |size| size.min(MAX_PAGE_SIZE));
        let after = query.after.map_or(0, |PageCursor(seq)| seq);
        // One extra row says whether another page follows.
        let mut listed = self
            .inner
            .store
            .list(after, limit + 1, query.name_prefix.as_ref())
            .await?;
        let next = if listed.len() > limit as usize {
            listed.truncate(limit as usize);
            listed.last().map(|last| PageCursor(last.seq))
        } else {
            None
        };
        Ok(FilePage {
            files: listed
                .into_iter()
                .map(|ListedFile { file, .. }| file)
                .collect(),
            next,
        })
    }
}
