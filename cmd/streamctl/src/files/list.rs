//! `streamctl files`: the stored files page by page, optionally under a name prefix.

use serde_json::{Value, json};
use streamhub_api::streaming::{FileInfo, ListFilesRequest};

use crate::{
    Outcome,
    connect::Connection,
    output::{Output, human_time, json_time},
    progress::bytes,
};

/// Files listed per ListFiles call.
const LIST_PAGE: i32 = 100;

#[derive(clap::Args)]
pub(crate) struct ListArgs {
    /// Only files whose name starts with this, e.g. `reports/`.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
}

pub(crate) async fn list(connection: &Connection, output: &Output, args: ListArgs) -> Outcome {
    let prefix = args.prefix.unwrap_or_default();
    each_file(connection, &prefix, |file| {
        output.record(|| file_human(file), || file_json(file))
    })
    .await
}

/// Calls `visit` with every file whose name starts with `prefix`, in upload order, page by
/// page.
pub(super) async fn each_file(
    connection: &Connection,
    prefix: &str,
    mut visit: impl FnMut(&FileInfo) -> Outcome,
) -> Outcome {
    let mut client = connection.streaming().await?;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_files(ListFilesRequest {
                page_size: LIST_PAGE,
                page_token: page_token.clone(),
                name_prefix: prefix.to_owned(),
            })
            .await?
            .into_inner();
        for file in &page.files {
            visit(file)?;
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = page.next_page_token;
    }
}

fn file_human(file: &FileInfo) -> String {
    format!(
        "{}  {:>10}  {}  {}  sha256 {}",
        file.file_id,
        bytes(u64::try_from(file.total_bytes).unwrap_or_default()),
        human_time(file.uploaded_at.as_ref()),
        file.file_name,
        file.checksum
    )
}

fn file_json(file: &FileInfo) -> Value {
    json!({
        "file_id": file.file_id,
        "file_name": file.file_name,
        "total_bytes": file.total_bytes,
        "checksum": file.checksum,
        "uploaded_at": json_time(file.uploaded_at.as_ref()),
    })
}
