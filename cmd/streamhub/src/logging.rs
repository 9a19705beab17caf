//! The process log: human-readable text or JSON lines, filtered by `RUST_LOG` or `log.level`;
//! and, when traces are exported, the layer that turns streamhub's spans (one per RPC, one per
//! database operation) into OpenTelemetry spans.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use opentelemetry_sdk::trace::SdkTracer;
use streamhub_conf::{LogFormat, ProcessLogConf};
use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer, filter::Targets, fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log.level`. With a
/// `tracer`, streamhub's spans at info level and above are exported whatever the log level:
/// the log filter decides what is printed, not what is traced.
pub fn init_logging(conf: &ProcessLogConf, tracer: Option<SdkTracer>) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("RUST_LOG: invalid filter {directives:?}"))?,
        _ => EnvFilter::try_new(&conf.level)
            .with_context(|| format!("config key log.level: invalid filter {:?}", conf.level))?,
    };
    // Colours only for a person at a terminal, never in files or collectors.
    let text = fmt::layer()
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal());
    let log = match conf.format {
        LogFormat::Text => text.boxed(),
        LogFormat::Json => text.json().flatten_event(true).boxed(),
    };
    let traces = tracer.map(trace_export_layer);
    tracing_subscriber::registry()
        .with(log.with_filter(filter))
        .with(traces)
        .try_init()
        .map_err(|err| anyhow::anyhow!("installing the log subscriber: {err}"))
}

/// The layer that exports streamhub's spans (info and above, targets `streamhub*`) through
/// `tracer`; other crates' spans and events stay out of the traces.
pub fn trace_export_layer<S>(tracer: SdkTracer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(Targets::new().with_target("streamhub", Level::INFO))
}
