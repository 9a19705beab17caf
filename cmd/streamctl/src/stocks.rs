//! `streamctl stocks SYMBOL...`: the shared market's prices, one line per tick.

use std::time::Duration;

use serde_json::json;
use streamhub_api::streaming::{StockPrice, StockRequest};

use crate::{
    Failure, Outcome,
    connect::Connection,
    output::{Output, human_time, json_time},
};

#[derive(clap::Args)]
pub(crate) struct StocksArgs {
    /// Symbols to watch (`AAPL MSFT`); case does not matter.
    #[arg(required = true)]
    symbols: Vec<String>,
    /// Time between two prices of a symbol (`500ms`, `2s`); the server's default when absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// Stop after N prices (all symbols together); without it, run until interrupted.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: StocksArgs) -> Outcome {
    let interval_ms = match args.interval {
        None => 0,
        Some(interval) => match i32::try_from(interval.as_millis()) {
            Ok(0) | Err(_) => {
                return Err(Failure::Usage(format!(
                    "--interval {}: must be between 1ms and {}ms",
                    humantime::format_duration(interval),
                    i32::MAX
                )));
            }
            Ok(ms) => ms,
        },
    };
    let mut client = connection.streaming().await?;
    let mut prices = client
        .get_stock_prices(StockRequest {
            symbols: args.symbols,
            interval_seconds: 0,
            interval_ms,
        })
        .await?
        .into_inner();
    let mut printed = 0_u64;
    while args.count.is_none_or(|count| printed < count) {
        let Some(price) = prices.message().await? else {
            break;
        };
        output.record(|| human(&price), || to_json(&price))?;
        printed += 1;
    }
    Ok(())
}

fn human(price: &StockPrice) -> String {
    format!(
        "[{}] {:<6} {:>10.2} {:>+7.2}%  vol {:<8} #{}",
        human_time(price.timestamp.as_ref()),
        price.symbol,
        price.price,
        price.change,
        price.volume,
        price.sequence
    )
}

fn to_json(price: &StockPrice) -> serde_json::Value {
    json!({
        "symbol": price.symbol,
        "price": price.price,
        "change": price.change,
        "volume": price.volume,
        "sequence": price.sequence,
        "timestamp": json_time(price.timestamp.as_ref()),
    })
}
