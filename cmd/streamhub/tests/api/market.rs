//! GetStockPrices: one shared, seeded market; immediate first price; conflation; validation;
//! symbols dropped with their last subscriber; shutdown.

use std::{collections::HashMap, time::SystemTime};

use streamhub_api::streaming::{
    StockPrice, StockRequest, streaming_service_client::StreamingServiceClient,
};
use streamhub_biz::market::Series;
use streamhub_testkit::{TestApp, next, spawn_app_with, within};
use tonic::{Code, Streaming, transport::Endpoint};

const SEED: u64 = 42;

async fn seeded_app() -> TestApp {
    spawn_app_with(|config| config.market.seed = SEED).await
}

fn request(symbols: &[&str], interval_seconds: i32, interval_ms: i32) -> StockRequest {
    StockRequest {
        symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
        interval_seconds,
        interval_ms,
    }
}

async fn subscribe(
    client: &mut StreamingServiceClient<tonic::transport::Channel>,
    request: StockRequest,
) -> Streaming<StockPrice> {
    client
        .get_stock_prices(request)
        .await
        .expect("GetStockPrices starts")
        .into_inner()
}

async fn next_price(prices: &mut Streaming<StockPrice>) -> StockPrice {
    next("the next price", prices).await
}

/// The price the seeded simulation has for `symbol` at `sequence`.
fn expected_price(symbol: &str, sequence: i64) -> f64 {
    let mut series = Series::open(SEED, symbol.into(), SystemTime::now());
    while (series.quote().sequence as i64) < sequence {
        series.tick(SystemTime::now());
    }
    series.quote().price
}

#[tokio::test]
async fn the_first_price_comes_at_once_from_the_seeded_series() {
    let app = seeded_app().await;
    // An hour between prices: only the immediate first one can arrive within the test's wait.
    let mut prices = subscribe(&mut app.streaming(), request(&["ibm", "BRK.B"], 3600, 0)).await;
    let mut first = vec![next_price(&mut prices).await, next_price(&mut prices).await];
    first.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    for price in &first {
        assert_eq!(price.sequence, 1, "{price:?}");
        assert_eq!(price.change, 0.0);
        assert_eq!(price.price, expected_price(&price.symbol, 1), "{price:?}");
        assert!((0..1_000_000).contains(&price.volume));
        assert!(price.timestamp.is_some());
    }
    let symbols: Vec<&str> = first.iter().map(|p| p.symbol.as_str()).collect();
    assert_eq!(symbols, ["BRK.B", "IBM"], "symbols come back upper-cased");
}

#[tokio::test]
async fn two_subscribers_see_the_same_sequence_and_price() {
    let app = seeded_app().await;
    let mut one = subscribe(&mut app.streaming(), request(&["AAPL"], 0, 10)).await;
    let mut two = subscribe(&mut app.streaming(), request(&["aapl", "MSFT"], 0, 10)).await;

    let mut seen_by_one = HashMap::new();
    let mut seen_by_two = HashMap::new();
    while seen_by_one.len() < 30 {
        let price = next_price(&mut one).await;
        assert_eq!(price.symbol, "AAPL");
        seen_by_one.insert(price.sequence, price.price);
    }
    while seen_by_two.len() < 30 {
        let price = next_price(&mut two).await;
        if price.symbol == "AAPL" {
            seen_by_two.insert(price.sequence, price.price);
        }
    }
    let mut common = 0;
    for (sequence, price) in &seen_by_one {
        if let Some(other) = seen_by_two.get(sequence) {
            assert_eq!(price, other, "tick {sequence} differs between subscribers");
            common += 1;
        }
    }
    assert!(common >= 10, "only {common} ticks seen by both subscribers");
    for (sequence, price) in seen_by_one.iter().chain(&seen_by_two) {
        assert_eq!(*price, expected_price("AAPL", *sequence), "tick {sequence}");
    }
}

#[tokio::test]
async fn a_slow_subscriber_gets_recent_prices_not_a_backlog() {
    let app = seeded_app().await;
    // A small HTTP/2 window so that little can wait in transit for the reader that pauses.
    let slow_channel = Endpoint::from_shared(format!("http://{}", app.addr))
        .expect("endpoint")
        .initial_stream_window_size(1024)
        .connect()
        .await
        .expect("connect");
    let mut slow = subscribe(
        &mut StreamingServiceClient::new(slow_channel),
        request(&["SLOW"], 0, 10),
    )
    .await;
    let mut fast = subscribe(&mut app.streaming(), request(&["SLOW"], 0, 10)).await;
    let paused_at = next_price(&mut slow).await.sequence;

    // The slow reader does not read while 200 ticks go by.
    let mut now = 0;
    while now < paused_at + 200 {
        now = next_price(&mut fast).await.sequence;
    }

    let mut read = 0;
    let mut previous = paused_at;
    let mut largest_jump = 0;
    while previous < now {
        let sequence = next_price(&mut slow).await.sequence;
        assert!(sequence > previous, "tick {sequence} after {previous}");
        largest_jump = largest_jump.max(sequence - previous);
        previous = sequence;
        read += 1;
    }
    println!(
        "slow reader: {read} prices to cover {} ticks, largest jump {largest_jump}",
        now - paused_at
    );
    assert!(
        read < 100,
        "the slow reader read {read} prices to catch up {} ticks: a backlog",
        now - paused_at
    );
    assert!(largest_jump > 1, "no tick was skipped");
}

#[tokio::test]
async fn a_symbol_is_dropped_with_its_last_subscriber() {
    let app = seeded_app().await;
    let mut client = app.streaming();
    let mut prices = subscribe(&mut client, request(&["GONE"], 0, 10)).await;
    while next_price(&mut prices).await.sequence < 5 {}
    drop(prices);

    // Once the server has seen the cancellation, a new subscriber starts a fresh series.
    within("the series to restart", async {
        loop {
            let mut again = subscribe(&mut client, request(&["GONE"], 0, 10)).await;
            let first = next_price(&mut again).await;
            if first.sequence == 1 {
                assert_eq!(first.price, expected_price("GONE", 1));
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_field() {
    let app = spawn_app_with(|config| config.market.max_symbols = 3).await;
    let mut client = app.streaming();
    let many: Vec<String> = (0..101).map(|n| format!("S{n}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases = [
        (request(&[], 0, 0), Code::InvalidArgument, "symbols"),
        (request(&many, 0, 0), Code::InvalidArgument, "101 symbols"),
        (
            request(&["AA PL"], 0, 0),
            Code::InvalidArgument,
            "\"AA PL\"",
        ),
        (
            request(&["TOOLONGSYMBOL"], 0, 0),
            Code::InvalidArgument,
            "\"TOOLONGSYMBOL\"",
        ),
        (
            request(&["A"], -1, 0),
            Code::InvalidArgument,
            "interval_seconds: -1",
        ),
        (
            request(&["A"], 0, -1),
            Code::InvalidArgument,
            "interval_ms: -1",
        ),
        (
            request(&["A"], 0, 5),
            Code::InvalidArgument,
            "interval: 5ms is below the minimum",
        ),
        (
            request(&["A", "B", "C", "D"], 0, 0),
            Code::ResourceExhausted,
            "3 symbols",
        ),
    ];
    for (request, code, needle) in cases {
        let shown = format!("{:?}", request.symbols.iter().take(4).collect::<Vec<_>>());
        let err = client
            .get_stock_prices(request)
            .await
            .expect_err("the request is refused");
        assert_eq!(err.code(), code, "{shown}: {err:?}");
        assert!(
            err.message().contains(needle),
            "{shown}: {:?} lacks {needle:?}",
            err.message()
        );
    }
}

#[tokio::test]
async fn shutdown_ends_the_stream_with_unavailable() {
    let mut app = seeded_app().await;
    let mut prices = subscribe(&mut app.streaming(), request(&["AAPL"], 0, 10)).await;
    next_price(&mut prices).await;
    let stopped = app.begin_shutdown();
    let err = within("the stream to end", async {
        loop {
            match prices.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => {
                    panic!("the stream ended OK; it must end only with the shutdown status")
                }
                Err(status) => break status,
            }
        }
    })
    .await;
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    within("the server to stop", stopped)
        .await
        .expect("server task")
        .expect("clean stop");
}
