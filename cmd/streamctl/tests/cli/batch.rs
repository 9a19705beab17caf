//! `streamctl batch`.

use streamhub_testkit::spawn_app;

use crate::streamctl::run;

#[tokio::test]
async fn a_jsonl_file_is_validated_item_by_item() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("items.jsonl");
    std::fs::write(
        &file,
        "{\"id\":\"a\",\"type\":\"json\",\"data\":{\"ok\":true}}\n\
         {\"id\":\"b\",\"type\":\"json\",\"data\":\"{broken\"}\n\
         \n\
         {\"id\":\"c\",\"type\":\"binary\",\"data_base64\":\"AAEC\"}\n\
         {\"id\":\"a\",\"type\":\"text\",\"data\":\"again\"}\n",
    )
    .expect("write items");
    let path = file.to_str().expect("utf-8 path");
    let result = run(&app.url(), &["--json", "batch", path], "").await.json();
    assert_eq!(result.len(), 1, "{result:?}");
    let result = &result[0];
    assert_eq!(result["processed"], 4, "{result}");
    assert_eq!(result["succeeded"], 2, "{result}");
    assert_eq!(result["failed"], 2, "{result}");
    let failed: Vec<&str> = result["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["id"].as_str().expect("id"))
        .collect();
    assert_eq!(failed, ["b", "a"], "in arrival order: {result}");

    let human = run(
        &app.url(),
        &["batch", "-"],
        "{\"id\":\"x\",\"type\":\"xml\",\"data\":\"<a/>\"}\n",
    )
    .await;
    let lines = human.success();
    assert_eq!(lines[0], "processed 1: 0 succeeded, 1 failed", "{lines:?}");
    assert!(lines[1].starts_with("  x: "), "{lines:?}");
}

#[tokio::test]
async fn a_missing_file_is_a_usage_error() {
    let app = spawn_app().await;
    run(&app.url(), &["batch", "/no/such/items.jsonl"], "")
        .await
        .failed_with(2, "/no/such/items.jsonl");
}
