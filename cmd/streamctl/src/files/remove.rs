//! `streamctl rm`: deletes a stored file by id or by name, an id winning as on the server.

use serde_json::json;
use streamhub_api::streaming::{DeleteFileRequest, FileInfo};
use tonic::Code;

use super::list::each_file;
use crate::{Failure, Outcome, connect::Connection, output::Output};

#[derive(clap::Args)]
pub(crate) struct RemoveArgs {
    /// The file's id or its name (the newest file of that name, so that removing it makes
    /// the name mean the previous one); an id wins when both match.
    #[arg(value_name = "ID_OR_NAME")]
    file: String,
}

pub(crate) async fn remove(connection: &Connection, output: &Output, args: RemoveArgs) -> Outcome {
    let mut client = connection.streaming().await?;
    if looks_like_id(&args.file) {
        match client
            .delete_file(DeleteFileRequest {
                file_id: args.file.clone(),
            })
            .await
        {
            Ok(_) => {
                return output.record(
                    || format!("deleted {}", args.file),
                    || json!({ "deleted": args.file }),
                );
            }
            // No file has this id: it may still be a name.
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => return Err(status.into()),
        }
    }
    let Some(newest) = newest_named(connection, &args.file).await? else {
        return Err(Failure::Server(tonic::Status::not_found(format!(
            "no stored file has the id or name {:?}",
            args.file
        ))));
    };
    client
        .delete_file(DeleteFileRequest {
            file_id: newest.file_id.clone(),
        })
        .await?;
    output.record(
        || format!("deleted {} (file id {})", newest.file_name, newest.file_id),
        || json!({ "deleted": newest.file_id, "file_name": newest.file_name }),
    )
}

/// Whether `text` has the form of a file id: 32 hex digits.
fn looks_like_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The newest file named exactly `name`: the last one in upload order among those whose name
/// starts with it.
async fn newest_named(connection: &Connection, name: &str) -> Result<Option<FileInfo>, Failure> {
    let mut newest = None;
    each_file(connection, name, |file| {
        if file.file_name == name {
            newest = Some(file.clone());
        }
        Ok(())
    })
    .await?;
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_32_hex_digits_look_like_an_id() {
        assert!(looks_like_id("0123456789abcdefABCDEF0123456789"));
        assert!(!looks_like_id("0123456789abcdef0123456789abcde"));
        assert!(!looks_like_id("0123456789abcdef0123456789abcdeg"));
        assert!(!looks_like_id("report.txt"));
    }
}
