//! GetStockPrices: translates the request into a [`StockQuery`] and the shared market's quotes
//! into `StockPrice`s. The market itself (one series per symbol, conflation) lives in biz.

use futures_util::StreamExt as _;
use streamhub_api::streaming::{StockPrice, StockRequest};
use streamhub_biz::market::{Market, Quote, StockQuery};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::{ResponseStream, to_status, until_stopped};

/// Subscribes to the request's symbols; the stream runs until the client cancels or the
/// server stops (then `UNAVAILABLE`), and dropping it releases the symbols.
pub(crate) fn get_stock_prices(
    market: &Market,
    stopping: &CancellationToken,
    request: StockRequest,
) -> Result<ResponseStream<StockPrice>, Status> {
    let query = StockQuery::parse(
        request.symbols,
        request.interval_seconds,
        request.interval_ms,
        market.limits(),
    )
    .map_err(to_status)?;
    let quotes = market
        .subscribe(&query)
        .map_err(to_status)?
        .into_quotes()
        .map(|quote| Ok(stock_price(quote)));
    Ok(until_stopped(quotes, stopping.clone()))
}

fn stock_price(quote: Quote) -> StockPrice {
    StockPrice {
        symbol: quote.symbol.to_string(),
        price: quote.price,
        change: quote.change_percent,
        volume: i64::try_from(quote.volume).unwrap_or(i64::MAX),
        timestamp: Some(quote.at.into()),
        sequence: i64::try_from(quote.sequence).unwrap_or(i64::MAX),
    }
}
