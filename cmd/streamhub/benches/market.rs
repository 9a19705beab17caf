//! Benchmarks of the market, sensor and batch RPCs, each through real gRPC clients against the
//! application started in-process on 127.0.0.1:
//!
//! - GetStockPrices: 1,000 subscribers on 10 symbols at 100 ms, ~10 s per shape: delivered
//!   prices/s, tick-to-client latency, process CPU share and memory. The clients run in the same
//!   process as the server, so the CPU and memory figures cover both sides.
//! - CollectSensorData: readings/s over one stream and over 8 concurrent streams.
//! - ProcessBatch: items/s for 100,000 small items over one stream.
//!
//! Run with `cargo bench -p streamhub --bench market` (or `make bench`).

mod support;

use std::{
    fs,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use streamhub_api::streaming::{
    BatchItem, SensorData, StockRequest, streaming_service_client::StreamingServiceClient,
};
use streamhub_testkit::spawn_app_with;
use support::Memory;
use tokio::task::JoinSet;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const SUBSCRIBERS: usize = 1_000;
const SYMBOLS: usize = 10;
const CONNECTIONS: usize = 10;
const PRICE_INTERVAL_MS: i32 = 100;
const MEASURE: Duration = Duration::from_secs(10);
const SENSOR_RUN: Duration = Duration::from_secs(4);
const BATCH_ITEMS: usize = 100_000;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let server = spawn_app_with(|config| config.market.seed = 1).await;
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(server.connect().await);
    }

    println!(
        "== GetStockPrices: {SUBSCRIBERS} subscribers, {SYMBOLS} symbols, {PRICE_INTERVAL_MS} ms, \
         {CONNECTIONS} connections, {} s measured; clients share the server's process",
        MEASURE.as_secs()
    );
    print_memory("idle, before subscribing");
    stock_prices(&channels, 1).await?;
    stock_prices(&channels, SYMBOLS).await?;

    println!("== CollectSensorData: readings streamed as fast as the client encodes them");
    let one = sensor_streams(&channels[..1]).await?;
    println!("1 stream : {one:>12.0} readings/s");
    let eight = sensor_streams(&channels[..8]).await?;
    println!("8 streams: {eight:>12.0} readings/s (all streams together)");

    println!("== ProcessBatch: {BATCH_ITEMS} small items (json/text/binary) over one stream");
    for round in 1..=3 {
        let (rate, failed) = batch(&channels[0]).await?;
        println!("round {round}: {rate:>12.0} items/s ({failed} failed, by design)");
    }

    server.stop().await;
    Ok(())
}

/// `SUBSCRIBERS` streams, each watching `per_subscriber` of the `SYMBOLS` symbols.
async fn stock_prices(channels: &[Channel], per_subscriber: usize) -> anyhow::Result<()> {
    let received = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let mut subscribers = JoinSet::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(SUBSCRIBERS);
    for n in 0..SUBSCRIBERS {
        let symbols = (0..per_subscriber)
            .map(|k| format!("SYM{}", (n + k) % SYMBOLS))
            .collect();
        let mut client = StreamingServiceClient::new(channels[n % channels.len()].clone());
        let received = received.clone();
        let ready = ready_tx.clone();
        let stop = stop.clone();
        let measuring = measuring.clone();
        subscribers.spawn(async move {
            let mut prices = client
                .get_stock_prices(StockRequest {
                    symbols,
                    interval_seconds: 0,
                    interval_ms: PRICE_INTERVAL_MS,
                })
                .await?
                .into_inner();
            let mut lags = Vec::new();
            let mut count = 0u64;
            loop {
                let price = tokio::select! {
                    () = stop.cancelled() => break,
                    price = prices.message() => match price? {
                        Some(price) => price,
                        None => break,
                    },
                };
                if count == 0 {
                    let _ = ready.send(()).await;
                }
                count += 1;
                received.fetch_add(1, Ordering::Relaxed);
                // Every 10th price's age (tick to client) while measuring: enough for
                // percentiles without the samples weighing on the memory figure.
                if count.is_multiple_of(10)
                    && measuring.load(Ordering::Relaxed)
                    && let Some(at) = price.timestamp.and_then(|t| SystemTime::try_from(t).ok())
                {
                    let age = SystemTime::now().duration_since(at).unwrap_or_default();
                    lags.push(u32::try_from(age.as_micros()).unwrap_or(u32::MAX));
                }
            }
            anyhow::Ok(lags)
        });
    }
    drop(ready_tx);
    for _ in 0..SUBSCRIBERS {
        ready_rx.recv().await;
    }
    // Let the initial burst settle before measuring the steady state.
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let cpu_before = process_cpu()?;
    let received_before = received.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(MEASURE).await;
    let wall = started.elapsed();
    let cpu = process_cpu()? - cpu_before;
    let delivered = received.load(Ordering::Relaxed) - received_before;
    let memory = Memory::now();
    stop.cancel();
    let mut lags = Vec::new();
    while let Some(joined) = subscribers.join_next().await {
        lags.append(&mut joined??);
    }
    lags.sort_unstable();
    let percentile = |p: usize| {
        lags.get((lags.len() * p / 100).min(lags.len().saturating_sub(1)))
            .map_or(0.0, |micros| f64::from(*micros) / 1000.0)
    };
    let expected = (SUBSCRIBERS * per_subscriber) as f64 * 1000.0 / f64::from(PRICE_INTERVAL_MS);
    println!(
        "{per_subscriber:>2} symbol(s) per subscriber: {:>9.0} prices/s delivered (ideal {expected:.0}); \
         process CPU {:.1} % of one core ({:.2} s CPU in {:.2} s); {memory}",
        delivered as f64 / wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
    );
    println!(
        "   tick-to-client latency over {} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lags.len(),
        percentile(50),
        percentile(99),
        percentile(100),
    );
    Ok(())
}

/// Streams readings on one stream per channel for `SENSOR_RUN`; returns readings/s overall.
async fn sensor_streams(channels: &[Channel]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let deadline = started + SENSOR_RUN;
    let mut streams = JoinSet::new();
    for (n, channel) in channels.iter().enumerate() {
        let mut client = StreamingServiceClient::new(channel.clone());
        streams.spawn(async move {
            let readings = tokio_stream::iter(0u64..)
                .take_while(move |_| Instant::now() < deadline)
                .map(move |i| SensorData {
                    sensor_id: format!("s{n}-{}", i % 100),
                    temperature: 20.0 + (i % 17) as f64,
                    humidity: 40.0 + (i % 13) as f64,
                    pressure: 1000.0 + (i % 11) as f64,
                    timestamp: None,
                });
            let summary = client.collect_sensor_data(readings).await?.into_inner();
            anyhow::Ok(summary.total_readings as u64 + summary.rejected_readings as u64)
        });
    }
    let mut total = 0;
    while let Some(joined) = streams.join_next().await {
        total += joined??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Sends `BATCH_ITEMS` small items; returns items/s and how many failed.
async fn batch(channel: &Channel) -> anyhow::Result<(f64, i32)> {
    let items: Vec<BatchItem> = (0..BATCH_ITEMS)
        .map(|n| {
            let (kind, data) = match n % 4 {
                0 | 1 => (
                    "json",
                    format!("{{\"n\":{n},\"tags\":[\"a\",\"b\"]}}").into_bytes(),
                ),
                2 => ("text", format!("item number {n}").into_bytes()),
                // Every 1000th binary item is empty, so the failure path is exercised too.
                _ if n % 1000 == 3 => ("binary", Vec::new()),
                _ => ("binary", n.to_le_bytes().to_vec()),
            };
            BatchItem {
                id: format!("item-{n}"),
                r#type: kind.to_owned(),
                data,
            }
        })
        .collect();
    let mut client = StreamingServiceClient::new(channel.clone());
    let started = Instant::now();
    let result = client
        .process_batch(tokio_stream::iter(items))
        .await?
        .into_inner();
    let elapsed = started.elapsed();
    anyhow::ensure!(
        result.processed_count as usize == BATCH_ITEMS,
        "processed {} of {BATCH_ITEMS}",
        result.processed_count
    );
    Ok((
        BATCH_ITEMS as f64 / elapsed.as_secs_f64(),
        result.failed_count,
    ))
}

/// CPU time (user + system) of this process so far, from /proc/self/stat.
fn process_cpu() -> anyhow::Result<Duration> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) start at field 3; utime and
    // stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/self/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second(),
    ))
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

fn print_memory(when: &str) {
    println!("{when}: {}", Memory::now());
}
