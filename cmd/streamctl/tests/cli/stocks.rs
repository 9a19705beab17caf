//! `streamctl stocks`.

use std::collections::HashMap;

use streamhub_testkit::spawn_app;

use crate::streamctl::run;

#[tokio::test]
async fn stocks_prints_count_prices_of_every_symbol() {
    let app = spawn_app().await;
    let prices = run(
        &app.url(),
        &[
            "--json",
            "stocks",
            "aapl",
            "MSFT",
            "--interval",
            "10ms",
            "--count",
            "8",
        ],
        "",
    )
    .await
    .json();
    assert_eq!(prices.len(), 8, "--count 8: {prices:?}");
    let mut last_sequence: HashMap<String, i64> = HashMap::new();
    for price in &prices {
        let symbol = price["symbol"].as_str().expect("symbol").to_owned();
        assert!(symbol == "AAPL" || symbol == "MSFT", "{price}");
        assert!(price["price"].as_f64().expect("price") > 0.0, "{price}");
        assert!(
            price["timestamp"].as_str().expect("time").ends_with('Z'),
            "{price}"
        );
        let sequence = price["sequence"].as_i64().expect("sequence");
        if let Some(before) = last_sequence.insert(symbol, sequence) {
            assert!(sequence > before, "sequences grow per symbol: {prices:?}");
        }
    }
    assert_eq!(last_sequence.len(), 2, "both symbols came: {prices:?}");

    let human = run(&app.url(), &["stocks", "AAPL", "--count", "1"], "").await;
    let lines = human.success();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with('[') && lines[0].contains("AAPL"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_bad_symbol_is_the_server_s_error_and_exits_1() {
    let app = spawn_app().await;
    run(&app.url(), &["stocks", "NOT A SYMBOL!", "--count", "1"], "")
        .await
        .failed_with(1, "INVALID_ARGUMENT");
}
