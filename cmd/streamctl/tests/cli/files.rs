//! `streamctl upload`, `download`, `files` and `rm`, including resumed transfers.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::{FileChunk, UploadStatusRequest};
use streamhub_testkit::{TestApp, bounded, spawn_app};
use tonic::Code;

use crate::streamctl::{Session, WAIT, run};

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
    bounded(WAIT, "the upload to reach the server", async {
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
    let kept = bounded(WAIT, "the broken upload to be kept", async {
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

/// Writes `bytes` to `dir/file` and uploads it under `name`; returns the file id.
async fn upload_as(app: &TestApp, dir: &Path, name: &str, bytes: &[u8]) -> String {
    let source = dir.join("source.bin");
    std::fs::write(&source, bytes).expect("write the source");
    let uploaded = one_record(app, &["--json", "upload", text(&source), "--name", name]).await;
    assert_eq!(uploaded["file_name"], name, "{uploaded}");
    uploaded["file_id"].as_str().expect("file id").to_owned()
}

#[tokio::test]
async fn download_and_rm_take_a_name_meaning_its_newest_file() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (old, new) = (content(3000), content(4000));
    let old_id = upload_as(&app, dir.path(), "reports/q1.txt", &old).await;
    let new_id = upload_as(&app, dir.path(), "reports/q1.txt", &new).await;

    let target = dir.path().join("q1.txt");
    let downloaded = one_record(
        &app,
        &["--json", "download", "reports/q1.txt", "-o", text(&target)],
    )
    .await;
    assert_eq!(downloaded["file_name"], "reports/q1.txt", "{downloaded}");
    assert_eq!(
        std::fs::read(&target).expect("the download"),
        new,
        "the newest"
    );
    let by_id = dir.path().join("old.txt");
    one_record(&app, &["--json", "download", &old_id, "-o", text(&by_id)]).await;
    assert_eq!(
        std::fs::read(&by_id).expect("the download"),
        old,
        "an id is exact"
    );

    // rm by name removes the newest, and the name falls back to the previous file.
    let removed = run(&app.url(), &["rm", "reports/q1.txt"], "").await;
    assert_eq!(
        removed.success(),
        [format!("deleted reports/q1.txt (file id {new_id})")]
    );
    std::fs::remove_file(&target).expect("remove the first copy");
    one_record(
        &app,
        &["--json", "download", "reports/q1.txt", "-o", text(&target)],
    )
    .await;
    assert_eq!(std::fs::read(&target).expect("the download"), old);
    let removed = one_record(&app, &["--json", "rm", "reports/q1.txt"]).await;
    assert_eq!(removed["deleted"], old_id.as_str(), "{removed}");

    run(&app.url(), &["rm", "reports/q1.txt"], "")
        .await
        .failed_with(1, "NOT_FOUND");
    let gone = dir.path().join("gone.txt");
    run(
        &app.url(),
        &["download", "reports/q1.txt", "-o", text(&gone)],
        "",
    )
    .await
    .failed_with(1, "NOT_FOUND");
}

#[tokio::test]
async fn an_id_wins_over_a_file_named_like_it() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let genuine = content(1000);
    let genuine_id = upload_as(&app, dir.path(), "genuine.bin", &genuine).await;
    let impostor = content(1200);
    let impostor_id = upload_as(&app, dir.path(), &genuine_id, &impostor).await;

    let target = dir.path().join("out.bin");
    one_record(
        &app,
        &["--json", "download", &genuine_id, "-o", text(&target)],
    )
    .await;
    assert_eq!(std::fs::read(&target).expect("the download"), genuine);

    let removed = run(&app.url(), &["rm", &genuine_id], "").await;
    assert_eq!(removed.success(), [format!("deleted {genuine_id}")]);
    // No file has that id any more: the argument is a name now.
    let removed = one_record(&app, &["--json", "rm", &genuine_id]).await;
    assert_eq!(removed["deleted"], impostor_id.as_str(), "{removed}");
}

#[tokio::test]
async fn files_lists_only_names_with_the_prefix() {
    let app = spawn_app().await;
    let client = app.streaming();
    let upload = |name: String| {
        let chunk = FileChunk {
            data: name.clone().into(),
            is_last: true,
            file_name: name,
            ..FileChunk::default()
        };
        let mut client = client.clone();
        async move {
            client
                .upload_file(tokio_stream::iter([chunk]))
                .await
                .expect("UploadFile")
                .into_inner()
                .file_id
        }
    };
    let mut expected = Vec::new();
    // More than one page (streamctl asks for 100 at a time) under the prefix.
    for n in 0..105 {
        expected.push(upload(format!("reports/{n:03}.txt")).await);
        if n % 50 == 0 {
            upload(format!("other/{n}.txt")).await;
            upload("reports.txt".to_owned()).await;
        }
    }
    let listed = run(&app.url(), &["--json", "files", "--prefix", "reports/"], "")
        .await
        .json();
    let ids: Vec<&str> = listed
        .iter()
        .map(|file| file["file_id"].as_str().expect("file id"))
        .collect();
    assert_eq!(ids, expected, "every reports/ file once, in upload order");
    assert!(
        listed.iter().all(|file| file["file_name"]
            .as_str()
            .is_some_and(|name| name.starts_with("reports/"))),
        "{listed:?}"
    );
    let everything = run(&app.url(), &["--json", "files"], "").await.json();
    assert_eq!(everything.len(), 105 + 6);
    run(&app.url(), &["files", "--prefix", "/reports"], "")
        .await
        .failed_with(1, "INVALID_ARGUMENT: name_prefix: starts with '/'");
}
