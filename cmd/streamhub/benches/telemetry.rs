//! Telemetry benchmark: what call metrics cost. The same load runs against the in-process
//! server on 127.0.0.1 with telemetry off and with the Prometheus endpoint on (call metrics,
//! byte counting, domain gauges), then the endpoint is scraped. Prints its figures; asserts
//! nothing about speed.
//!
//! - unary calls (`grpc.health.v1.Health/Check`) from 8 concurrent clients: calls/s, p50/p99;
//! - short server streams (`proto.StreamService/List`, 7 messages): calls/s, p50/p99;
//! - `GET /metrics`: p50/p99 scrape time and body size after the load.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use streamhub_api::proto::{
    StreamPoint, StreamRequest, stream_service_client::StreamServiceClient,
};
use streamhub_testkit::spawn_app_with;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const CLIENTS: usize = 8;
const UNARY_CALLS: usize = 40_000;
const STREAM_CALLS: usize = 10_000;
const SCRAPES: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Runs `calls` calls of `call` spread over `CLIENTS` concurrent clients, each on its own
/// connection; prints calls/s and latency percentiles.
async fn load<F, Fut>(label: &str, channels: &[Channel], calls: usize, call: F)
where
    F: Fn(Channel) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    // Warm-up: connections, allocations, the first entries of every label set.
    for channel in channels {
        call(channel.clone()).await;
    }
    let started = Instant::now();
    let tasks: Vec<_> = channels
        .iter()
        .map(|channel| {
            let channel = channel.clone();
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(calls / CLIENTS);
                for _ in 0..calls / CLIENTS {
                    let begun = Instant::now();
                    call(channel.clone()).await;
                    latencies.push(begun.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(calls);
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    println!(
        "  {label:<28} {:>9.0} calls/s   p50 {:>7.1} µs   p99 {:>7.1} µs",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        micros(percentile(&latencies, 0.50)),
        micros(percentile(&latencies, 0.99)),
    );
}

async fn check(channel: Channel) {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect("Check succeeds");
}

async fn list(channel: Channel) {
    let mut stream = StreamServiceClient::new(channel)
        .list(StreamRequest {
            pt: Some(StreamPoint {
                name: "bench".to_owned(),
                value: 1,
            }),
        })
        .await
        .expect("List starts")
        .into_inner();
    let mut received = 0;
    while stream.message().await.expect("List streams").is_some() {
        received += 1;
    }
    assert_eq!(received, 7);
}

async fn scrape(addr: SocketAddr) -> usize {
    let mut stream = TcpStream::connect(addr).await.expect("connect to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read the response");
    assert!(response.starts_with(b"HTTP/1.1 200"), "scrape answered 200");
    response.len()
}

async fn run(label: &str, metrics: bool) {
    let app = spawn_app_with(|config| {
        if metrics {
            config.server.metrics.addr = Some("127.0.0.1:0".parse().expect("address"));
        }
    })
    .await;
    let mut channels = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        channels.push(app.connect().await);
    }

    println!("{label}");
    load("unary Health/Check", &channels, UNARY_CALLS, check).await;
    load("server stream List (7 msgs)", &channels, STREAM_CALLS, list).await;
    if let Some(metrics_addr) = app.metrics_addr {
        let mut times = Vec::with_capacity(SCRAPES);
        let mut size = 0;
        for _ in 0..SCRAPES {
            let begun = Instant::now();
            size = scrape(metrics_addr).await;
            times.push(begun.elapsed());
        }
        times.sort_unstable();
        println!(
            "  GET /metrics                 p50 {:>7.1} µs   p99 {:>7.1} µs   {size} bytes",
            micros(percentile(&times, 0.50)),
            micros(percentile(&times, 0.99)),
        );
    }
    app.stop().await;
}

#[tokio::main]
async fn main() {
    println!(
        "telemetry benchmark: {CLIENTS} clients, {UNARY_CALLS} unary calls and {STREAM_CALLS} \
         short streams per configuration"
    );
    run("telemetry off", false).await;
    run("server.metrics.addr set (call metrics + /metrics)", true).await;
    // Once more, so the order of the runs does not decide the comparison.
    run("telemetry off (again)", false).await;
}
