//! `streamctl upload`, `download`, `files` and `rm`, including resumed transfers.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::UploadStatusRequest;
use tonic::Code;

use crate::{
    server::{TestApp, spawn_app},
    streamctl::{Session, run, within},
};

/// `len` bytes that differ from file to file (seeded, and the seed is printed).
fn content(len: usize) -> Vec<u8> {
    let seed = fastrand::u64(..);
    println!("content seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn text(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The one JSON record of a successful run.
async fn one_record(app: &TestApp, args: &[&str]) -> Value {
    let mut records = run(&app.url(), args, "").await.json();
    assert_eq!(records.len(), 1, "one record from {args:?}: {records:?}");
    records.remove(0)
}

#[tokio::test]
async fn upload_list_download_and_remove() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("report.bin");
    let bytes = content(200 * 1024 + 17);
    std::fs::write(&source, &bytes).expect("write the source");

    let uploaded = one_record(
        &app,
        &["--json", "upload", text(&source), "--chunk-size", "16384"],
    )
    .await;
    assert_eq!(uploaded["file_name"], "report.bin", "{uploaded}");
    assert_eq!(uploaded["total_bytes"], bytes.len(), "{uploaded}");
    assert_eq!(uploaded["checksum"], sha256(&bytes), "{uploaded}");
    assert_eq!(uploaded["resumed_from"], 0);
    let file_id = uploaded["file_id"].as_str().expect("file id").to_owned();

    let listed = run(&app.url(), &["--json", "files"], "").await.json();
    assert!(
        listed
            .iter()
            .any(|file| file["file_id"] == file_id.as_str() && file["file_name"] == "report.bin"),
        "{file_id} in {listed:?}"
    );

    let target = dir.path().join("copy.bin");
    let downloaded = one_record(&app, &["--json", "download", &file_id, "-o", text(&target)]).await;
    assert_eq!(downloaded["checksum"], sha256(&bytes), "{downloaded}");
    assert_eq!(std::fs::read(&target).expect("the download"), bytes);
    assert!(
        !dir.path().join("copy.bin.part").exists(),
        "the .part is renamed"
    );

    let removed = run(&app.url(), &["rm", &file_id], "").await;
    assert_eq!(removed.success(), [format!("deleted {file_id}")]);
    let listed = run(&app.url(), &["--json", "files"], "").await.json();
    assert!(
        listed
            .iter()
            .all(|file| file["file_id"] != file_id.as_str()),
        "{listed:?}"
    );

    let gone = dir.path().join("gone.bin");
    run(&app.url(), &["download", &file_id, "-o", text(&gone)], "")
        .await
        .failed_with(1, "NOT_FOUND");
    assert!(
        !dir.path().join("gone.bin.part").exists(),
        "no empty .part is left"
    );
    run(&app.url(), &["rm", &file_id], "")
        .await
        .failed_with(1, "NOT_FOUND");
}

#[tokio::test]
async fn an_empty_file_uploads_and_downloads() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("empty");
    std::fs::write(&source, b"").expect("write the source");
    let uploaded = one_record(
        &app,
        &["--json", "upload", text(&source), "--name", "nothing.txt"],
    )
    .await;
    assert_eq!(uploaded["total_bytes"], 0, "{uploaded}");
    assert_eq!(uploaded["file_name"], "nothing.txt");
    let target = dir.path().join("out");
    let file_id = uploaded["file_id"].as_str().expect("file id");
    one_record(&app, &["--json", "download", file_id, "-o", text(&target)]).await;
    assert_eq!(std::fs::read(&target).expect("the download"), b"");
}

#[tokio::test]
async fn an_interrupted_upload_resumes_where_it_stopped() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("big.bin");
    let bytes = content(1024 * 1024);
    std::fs::write(&source, &bytes).expect("write the source");

    // Slowed down so that it is still running when the test cuts it off.
    let mut slow = Session::start(
        &app.url(),
        &[
            "upload",
            text(&source),
            "--chunk-size",
            "8192",
            "--limit-rate",
            "131072",
        ],
    );
    let started = slow.stderr_containing("starting upload").await;
    let upload_id = started
        .split_whitespace()
        .find(|word| word.starts_with("sc-"))
        .expect("the upload id is printed")
        .to_owned();
    let status = |upload_id: String| {
        let mut client = app.streaming();
        async move {
            client
                .get_upload_status(UploadStatusRequest { upload_id })
                .await
                .map(|status| status.into_inner().offset)
        }
    };
    // Known to the server once its first chunk has arrived.
    within("the upload to reach the server", async {
        loop {
            match status(upload_id.clone()).await {
                Ok(_) => return,
                Err(err) if err.code() == Code::NotFound => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(err) => panic!("GetUploadStatus: {err}"),
            }
        }
    })
    .await;
    slow.kill();
    // The server keeps what arrived before the break.
    let kept = within("the broken upload to be kept", async {
        loop {
            let offset = status(upload_id.clone()).await.expect("GetUploadStatus");
            if offset > 0 {
                return offset;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        kept < bytes.len() as i64,
        "cut off before the end ({kept} bytes)"
    );

    // The same command again, at full speed.
    let resumed = run(
        &app.url(),
        &["--json", "upload", text(&source), "--chunk-size", "8192"],
        "",
    )
    .await;
    assert!(
        resumed
            .stderr
            .contains(&format!("resuming upload {upload_id} at byte {kept}")),
        "{}",
        resumed.stderr
    );
    let record: Value = serde_json::from_str(resumed.success()[0]).expect("JSON record");
    assert_eq!(record["resumed_from"], kept, "{record}");
    assert_eq!(record["checksum"], sha256(&bytes), "{record}");
    let target = dir.path().join("copy.bin");
    let file_id = record["file_id"].as_str().expect("file id");
    one_record(&app, &["--json", "download", file_id, "-o", text(&target)]).await;
    assert_eq!(std::fs::read(&target).expect("the download"), bytes);
}

#[tokio::test]
async fn a_download_resumes_from_its_part_file_and_checks_the_whole() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("data.bin");
    let bytes = content(300 * 1024 + 5);
    std::fs::write(&source, &bytes).expect("write the source");
    let uploaded = one_record(&app, &["--json", "upload", text(&source)]).await;
    let file_id = uploaded["file_id"].as_str().expect("file id");

    // As if an earlier run had stopped after 100 000 bytes.
    let target = dir.path().join("copy.bin");
    let part = dir.path().join("copy.bin.part");
    std::fs::write(&part, &bytes[..100_000]).expect("write the part");
    let resumed = run(
        &app.url(),
        &["--json", "download", file_id, "-o", text(&target)],
        "",
    )
    .await;
    assert!(
        resumed.stderr.contains("resuming download"),
        "{}",
        resumed.stderr
    );
    let record: Value = serde_json::from_str(resumed.success()[0]).expect("JSON record");
    assert_eq!(record["resumed_from"], 100_000, "{record}");
    assert_eq!(std::fs::read(&target).expect("the download"), bytes);
    assert!(!part.exists(), "the .part is renamed");

    // A part file that is not a prefix of the file fails the SHA-256 check and is removed.
    let mut wrong = bytes[..50_000].to_vec();
    wrong[10] ^= 0xff;
    std::fs::write(&part, &wrong).expect("write a corrupt part");
    let other = dir.path().join("copy.bin");
    std::fs::remove_file(&other).expect("remove the first copy");
    run(&app.url(), &["download", file_id, "-o", text(&target)], "")
        .await
        .failed_with(1, "SHA-256 mismatch");
    assert!(!part.exists(), "a corrupt .part is removed");
    assert!(!target.exists(), "nothing unverified is left at the target");
    // So the next run starts over and succeeds.
    run(&app.url(), &["download", file_id, "-o", text(&target)], "")
        .await
        .success();
    assert_eq!(std::fs::read(&target).expect("the download"), bytes);
}
