//! ProcessBatch: the deterministic rules of the contract, through a real client stream.

use streamhub_api::streaming::{BatchItem, BatchResult};
use streamhub_testkit::{spawn_app, spawn_app_with, within};
use tonic::Code;

fn item(id: &str, kind: &str, data: &[u8]) -> BatchItem {
    BatchItem {
        id: id.to_owned(),
        r#type: kind.to_owned(),
        data: data.to_vec(),
    }
}

#[tokio::test]
async fn every_item_is_judged_and_each_failure_explained_in_order() {
    let app = spawn_app().await;
    let items = vec![
        item("doc-1", "json", br#"{"ok": true}"#),
        item("note", "text", "grüße".as_bytes()),
        item("blob", "binary", &[0, 1, 2]),
        item("doc-2", "json", b"{not json"),
        item("doc-1", "json", b"{}"),
        item("", "text", b"x"),
        item("feed", "xml", b"<a/>"),
        item("raw", "binary", b""),
        item("bad-text", "text", b"\xc3\x28"),
        item(&"i".repeat(129), "text", b"x"),
    ];
    let result: BatchResult = within(
        "the result",
        app.streaming().process_batch(tokio_stream::iter(items)),
    )
    .await
    .expect("result")
    .into_inner();

    assert_eq!(result.processed_count, 10);
    assert_eq!(result.success_count, 3);
    assert_eq!(result.failed_count, 7);
    let reasons: Vec<(&str, &str)> = result
        .errors
        .iter()
        .map(|e| (e.id.as_str(), e.reason.as_str()))
        .collect();
    let long_id_shown = format!("{}…", "i".repeat(128));
    let expected = [
        ("doc-2", "data is not valid JSON: key must be a string"),
        ("doc-1", "duplicate id"),
        ("", "id is empty"),
        ("feed", "unknown type 'xml'"),
        ("raw", "binary data is empty"),
        ("bad-text", "data is not valid UTF-8 text"),
        (long_id_shown.as_str(), "id is 129 bytes, longer than 128"),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:#?}");
    for ((id, reason), (expected_id, expected_reason)) in reasons.iter().zip(expected) {
        assert_eq!(*id, expected_id);
        assert!(reason.starts_with(expected_reason), "{id}: {reason:?}");
    }
    let failed_ids: Vec<&str> = expected.iter().map(|(id, _)| *id).collect();
    assert_eq!(result.failed_ids, failed_ids);
}

#[tokio::test]
async fn size_and_count_limits_come_from_the_config() {
    let app = spawn_app_with(|config| {
        config.batch.max_item_bytes = 4;
        config.batch.max_items = 3;
    })
    .await;
    let result = app
        .streaming()
        .process_batch(tokio_stream::iter(vec![
            item("small", "binary", b"1234"),
            item("large", "binary", b"12345"),
        ]))
        .await
        .expect("result")
        .into_inner();
    assert_eq!((result.success_count, result.failed_count), (1, 1));
    assert_eq!(
        result.errors[0].reason,
        "data is 5 bytes, over the limit of 4"
    );

    let err = app
        .streaming()
        .process_batch(tokio_stream::iter(
            (0..4).map(|n| item(&n.to_string(), "text", b"x")),
        ))
        .await
        .expect_err("a fourth item");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("more than 3 items"), "{err:?}");
}

#[tokio::test]
async fn an_empty_batch_is_all_zeros() {
    let app = spawn_app().await;
    let result = app
        .streaming()
        .process_batch(tokio_stream::iter(Vec::<BatchItem>::new()))
        .await
        .expect("result")
        .into_inner();
    assert_eq!(result, BatchResult::default());
}
