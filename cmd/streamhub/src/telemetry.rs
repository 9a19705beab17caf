//! [`Telemetry`]: the OpenTelemetry pipelines of the process, built from `telemetry.*` and
//! `server.metrics.addr`.
//!
//! - Traces: with `telemetry.otlp.endpoint` set, a tracer provider exports spans over
//!   OTLP/gRPC (batched every `export_interval`, sampled parent-first then by
//!   `sampling_ratio`); [`Telemetry::tracer`]
//!   feeds the `tracing` layer that turns the RPC and database spans into OpenTelemetry spans.
//! - Metrics: with the endpoint set and/or `server.metrics.addr` set, a meter provider with a
//!   periodic OTLP reader and/or a scrape reader for `/metrics`. [`Telemetry::register_domain`]
//!   adds the observable gauges over the biz hubs (biz itself knows nothing of OpenTelemetry;
//!   the hubs expose cheap counters and this module reads them at collection time).
//!
//! With neither set, nothing is built: no provider, no instrument, no exporter.

use anyhow::Context as _;
use opentelemetry::{
    KeyValue,
    metrics::{Meter, MeterProvider as _},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider},
    trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider},
};
use streamhub_biz::{
    TransferStats, chat::RoomHub, compat::ConversationHub, edit::EditHub, game::GameHub,
    logs::LogHub,
};
use streamhub_conf::Config;
use streamhub_server::{MetricsScraper, RpcMetrics, RpcTelemetry, ScrapeReader};

/// Instrumentation scope of everything streamhub records.
const SCOPE: &str = "streamhub";

/// The process's telemetry pipelines; each part exists only when configured.
#[derive(Debug, Default)]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    scraper: Option<MetricsScraper>,
}

/// The hubs whose state the domain gauges report.
#[derive(Debug)]
pub(crate) struct DomainHubs<'a> {
    pub(crate) rooms: &'a RoomHub,
    pub(crate) games: &'a GameHub,
    pub(crate) edits: &'a EditHub,
    pub(crate) logs: &'a LogHub,
    pub(crate) compat_chat: Option<&'a ConversationHub>,
    pub(crate) transfers: &'a TransferStats,
}

impl Telemetry {
    /// Builds what `config` asks for. Must run inside a Tokio runtime when an OTLP endpoint is
    /// set (the exporters' gRPC channels live on it).
    pub fn start(config: &Config) -> anyhow::Result<Self> {
        let otlp = &config.telemetry.otlp;
        let export = !otlp.endpoint.is_empty();
        let scrape = config.server.metrics.addr.is_some();
        if !export && !scrape {
            return Ok(Self::default());
        }
        let resource = Resource::builder()
            .with_service_name(config.telemetry.service_name.clone())
            .build();

        let mut metrics = SdkMeterProvider::builder().with_resource(resource.clone());
        let mut scraper = None;
        if scrape {
            let (reader, handle) = ScrapeReader::new();
            metrics = metrics.with_reader(reader);
            scraper = Some(handle);
        }
        let mut tracer_provider = None;
        if export {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(&otlp.endpoint)
                .build()
                .context("telemetry.otlp.endpoint: building the metric exporter")?;
            metrics = metrics.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(otlp.export_interval)
                    .build(),
            );
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&otlp.endpoint)
                .build()
                .context("telemetry.otlp.endpoint: building the span exporter")?;
            tracer_provider = Some(
                SdkTracerProvider::builder()
                    .with_resource(resource)
                    .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                        otlp.sampling_ratio,
                    ))))
                    .with_span_processor(
                        BatchSpanProcessor::builder(exporter)
                            .with_batch_config(
                                BatchConfigBuilder::default()
                                    .with_scheduled_delay(otlp.export_interval)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            );
        }
        Ok(Self {
            tracer_provider,
            meter_provider: Some(metrics.build()),
            scraper,
        })
    }

    /// The tracer for the `tracing` layer, when traces are exported.
    pub fn tracer(&self) -> Option<SdkTracer> {
        self.tracer_provider
            .as_ref()
            .map(|provider| provider.tracer(SCOPE))
    }

    /// The `/metrics` renderer, when `server.metrics.addr` is set.
    pub fn scraper(&self) -> Option<MetricsScraper> {
        self.scraper.clone()
    }

    fn meter(&self) -> Option<Meter> {
        self.meter_provider
            .as_ref()
            .map(|provider| provider.meter(SCOPE))
    }

    /// What the per-call layer records.
    pub(crate) fn rpc(&self) -> RpcTelemetry {
        RpcTelemetry {
            metrics: self.meter().map(|meter| RpcMetrics::new(&meter)),
            traces: self.tracer_provider.is_some(),
        }
    }

    /// Registers the domain gauges and counters over `hubs`; each callback reads the hubs'
    /// counters when metrics are collected, so recording costs the hubs nothing.
    pub(crate) fn register_domain(&self, hubs: DomainHubs<'_>) {
        let Some(meter) = self.meter() else {
            return;
        };
        let rooms = hubs.rooms.clone();
        meter
            .u64_observable_gauge("streamhub.chat.rooms")
            .with_description("Chat rooms open now")
            .with_callback(move |observer| observer.observe(rooms.stats().rooms as u64, &[]))
            .build();
        let rooms = hubs.rooms.clone();
        meter
            .u64_observable_gauge("streamhub.chat.members")
            .with_description("Chat room memberships (streams) now")
            .with_callback(move |observer| observer.observe(rooms.stats().members as u64, &[]))
            .build();
        let games = hubs.games.clone();
        meter
            .u64_observable_gauge("streamhub.game.sessions")
            .with_description("Game sessions open now")
            .with_callback(move |observer| observer.observe(games.session_count() as u64, &[]))
            .build();
        let edits = hubs.edits.clone();
        meter
            .u64_observable_gauge("streamhub.edit.open_documents")
            .with_description("Documents open for collaborative editing now")
            .with_callback(move |observer| observer.observe(edits.open_documents() as u64, &[]))
            .build();
        let logs = hubs.logs.clone();
        meter
            .u64_observable_gauge("streamhub.logs.followers")
            .with_description("Streams following new log entries now")
            .with_callback(move |observer| observer.observe(logs.followers() as u64, &[]))
            .build();

        let rooms = hubs.rooms.clone();
        let edits = hubs.edits.clone();
        let compat_chat = hubs.compat_chat.cloned();
        meter
            .u64_observable_counter("streamhub.slow_consumer.disconnects")
            .with_description(
                "Streams cut off with RESOURCE_EXHAUSTED for reading too slowly, by hub",
            )
            .with_callback(move |observer| {
                observer.observe(
                    rooms.stats().slow_consumers_cut_off,
                    &[KeyValue::new("hub", "chat")],
                );
                observer.observe(
                    edits.slow_consumers_cut_off(),
                    &[KeyValue::new("hub", "edit")],
                );
                if let Some(chat) = &compat_chat {
                    observer.observe(
                        chat.slow_consumers_cut_off(),
                        &[KeyValue::new("hub", "compat_chat")],
                    );
                }
            })
            .build();

        let transfers = hubs.transfers.clone();
        meter
            .u64_observable_counter("streamhub.files.uploaded")
            .with_description("File bytes uploaded and stored")
            .with_unit("By")
            .with_callback(move |observer| observer.observe(transfers.uploaded(), &[]))
            .build();
        let transfers = hubs.transfers.clone();
        meter
            .u64_observable_counter("streamhub.files.downloaded")
            .with_description("File bytes sent to downloaders")
            .with_unit("By")
            .with_callback(move |observer| observer.observe(transfers.downloaded(), &[]))
            .build();
    }

    /// Flushes and stops the exporters. Blocks while the last batch is sent, so it runs on a
    /// blocking thread: the exporters' channels need the runtime to make progress meanwhile.
    pub async fn shutdown(self) {
        if self.tracer_provider.is_none() && self.meter_provider.is_none() {
            return;
        }
        let flushed = tokio::task::spawn_blocking(move || {
            if let Some(provider) = self.tracer_provider
                && let Err(err) = provider.shutdown()
            {
                tracing::warn!(%err, "flushing traces at shutdown failed");
            }
            if let Some(provider) = self.meter_provider
                && let Err(err) = provider.shutdown()
            {
                tracing::warn!(%err, "flushing metrics at shutdown failed");
            }
        })
        .await;
        if let Err(err) = flushed {
            tracing::warn!(%err, "telemetry shutdown task failed");
        }
    }
}
